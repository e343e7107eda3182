/* A vCPU's time-stamp counter: the host's TSC plus the VMCS TSC offset (SDM Vol. 3C, 26.3, "use TSC
 * offsetting": RDTSC, RDTSCP and RDMSR of the TSC return TSC + offset), and IA32_TSC_ADJUST over it
 * (SDM Vol. 3B, 18.17.3). Pure arithmetic, so the host unit test sees it (tests/unit/test_tsc.c). */
#pragma once
#include <stdint.h>

#define MSR_IA32_TIME_STAMP_COUNTER 0x10   /* SDM Vol. 4, Table 2-2 */
#define MSR_IA32_TSC_ADJUST         0x3b

struct vtsc {
	uint64_t offset;     /* guest TSC = host TSC + offset (mod 2^64): the VMCS TSC_OFFSET */
	uint64_t adjust;     /* IA32_TSC_ADJUST as the guest reads it; 0 at power-up */
	uint64_t deadline;   /* IA32_TSC_DEADLINE as the guest last wrote it (the APIC model holds
			      * the same deadline in host TSC ticks, vtsc_deadline_to_host) */
};

static inline uint64_t vtsc_guest(const struct vtsc *t, uint64_t host_tsc)
{
	return host_tsc + t->offset;
}

/* WRMSR IA32_TIME_STAMP_COUNTER = `val` at host TSC `host_tsc`: "If an execution of WRMSR to the
 * IA32_TIME_STAMP_COUNTER MSR adds (or subtracts) value X from the TSC, the logical processor also
 * adds (or subtracts) value X from the IA32_TSC_ADJUST MSR" (SDM Vol. 3B, 18.17.3). */
static inline void vtsc_write_tsc(struct vtsc *t, uint64_t host_tsc, uint64_t val)
{
	uint64_t x = val - vtsc_guest(t, host_tsc);

	t->offset += x;
	t->adjust += x;
}

/* WRMSR IA32_TSC_ADJUST = `val`: "If an execution of WRMSR to the IA32_TSC_ADJUST MSR adds (or
 * subtracts) value X from that MSR, the logical processor also adds (or subtracts) value X from the
 * TSC" (18.17.3). */
static inline void vtsc_write_adjust(struct vtsc *t, uint64_t val)
{
	t->offset += val - t->adjust;
	t->adjust = val;
}

/* The host-TSC deadline at which a guest IA32_TSC_DEADLINE of `g` is due (0: disarmed). The timer
 * fires once the guest TSC is >= g (SDM Vol. 3A, 11.5.4.1), unsigned: a deadline already passed in
 * guest time is due at once (1), one beyond the host counter's range never (~0). */
static inline uint64_t vtsc_deadline_to_host(const struct vtsc *t, uint64_t host_tsc, uint64_t g)
{
	uint64_t now = vtsc_guest(t, host_tsc), h;

	if (!g || !t->offset)
		return g;                  /* no offset: the same counter (what every guest had so far) */
	if (g <= now)
		return 1;
	h = host_tsc + (g - now);
	return h < host_tsc ? ~0ull : h;
}
