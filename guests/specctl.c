/*
 * specctl: the speculation-control MSRs as a guest sees them (arch/x86/spec.c, vcpu/msr.c). Where
 * CPUID.(EAX=7,ECX=0):EDX enumerates them (`expect=on`): IA32_SPEC_CTRL reads and writes without #GP
 * and keeps the value this guest wrote across `rounds=` yields (run two guests with different
 * `value=` on one CPU: the other's vCPU runs in between), #GP on a bit CPUID does not enumerate;
 * IA32_PRED_CMD takes an IBPB, #GPs on a read and on a reserved bit; IA32_FLUSH_CMD likewise (with
 * L1D_FLUSH); IA32_ARCH_CAPABILITIES reads and #GPs on a write; IA32_CORE_CAPABILITIES is not
 * enumerated. Where they are not (`expect=off`): every access #GPs (SDM Vol. 4, Table 2-2; Vol. 2B
 * RDMSR/WRMSR: #GP for an MSR the CPU does not have). One line per check, ` ok`/` FAIL`, then
 * `specctl: N checks, F failed` (exit 0 if F = 0).
 */
#include "intr.h"
#include "rt.h"

#define SPEC_CTRL  0x48
#define PRED_CMD   0x49
#define ARCH_CAPS  0x10a
#define FLUSH_CMD  0x10b
#define EDX_IBRS_IBPB (1u << 26)
#define EDX_STIBP     (1u << 27)
#define EDX_L1D_FLUSH (1u << 28)
#define EDX_ARCH_CAPS (1u << 29)
#define EDX_CORE_CAPS (1u << 30)
#define EDX_SSBD      (1u << 31)

static volatile unsigned gp_count;

/* #GP: counted, and the faulting RDMSR/WRMSR (two bytes, 0F 32 / 0F 30) skipped. */
static void on_gp(struct irq_frame *f)
{
	gp_count++;
	f->eip += 2;
}

/* RDMSR: whether it raised #GP; *v its value otherwise. */
static bool rd_gp(uint32_t msr, uint64_t *v)
{
	unsigned before = gp_count;
	uint32_t lo = 0, hi = 0;

	__asm__ volatile("rdmsr" : "+a"(lo), "+d"(hi) : "c"(msr) : "memory");
	*v = ((uint64_t)hi << 32) | lo;
	return gp_count != before;
}

static bool wr_gp(uint32_t msr, uint64_t v)
{
	unsigned before = gp_count;

	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)) : "memory");
	return gp_count != before;
}

int main(void)
{
	const char *want = getarg("expect");
	uint64_t value = getarg_num("value", 1), rounds = getarg_num("rounds", 4), v = 0, bits = 0, last = 0;
	uint32_t r[4];
	bool on, gp;

	intr_init();
	irq_set_handler(13, on_gp);
	cpuid(0, 0, r);
	if (r[0] >= 7)
		cpuid(7, 0, r);
	else
		r[3] = 0;
	on = r[3] & EDX_IBRS_IBPB;
	printf("specctl: cpuid 7.0 edx 0x%x\n", r[3]);
	if (want)
		check(on == !strcmp(want, "on"), "specctl: IBRS/IBPB enumerated %u, expected %s", on, want);
	check(!(r[3] & EDX_CORE_CAPS), "specctl: CORE_CAPABILITIES not enumerated");

	if (!on) {
		check(rd_gp(SPEC_CTRL, &v), "specctl: rdmsr SPEC_CTRL #GP");
		check(wr_gp(SPEC_CTRL, 0), "specctl: wrmsr SPEC_CTRL #GP");
		check(wr_gp(PRED_CMD, 1), "specctl: wrmsr PRED_CMD #GP");
		check(rd_gp(ARCH_CAPS, &v) == !(r[3] & EDX_ARCH_CAPS), "specctl: rdmsr ARCH_CAPABILITIES #GP");
		check(wr_gp(FLUSH_CMD, 1) == !(r[3] & EDX_L1D_FLUSH), "specctl: wrmsr FLUSH_CMD #GP");
		printf("specctl: %d checks, %d failed\n", check_count, check_failed);
		return check_failed != 0;
	}

	bits = 1 | (r[3] & EDX_STIBP ? 2 : 0) | (r[3] & EDX_SSBD ? 4 : 0);
	value &= bits;
	/* Each read before its check: check's arguments would be evaluated in any order. */
	gp = rd_gp(SPEC_CTRL, &v);
	check(!gp && v == 0, "specctl: rdmsr SPEC_CTRL 0x%x%08x at reset", (uint32_t)(v >> 32), (uint32_t)v);
	for (uint64_t i = 0; i < rounds; i++) {
		uint64_t mine = i & 1 ? value : value ^ 1;   /* IBRS toggles between rounds */

		last = mine;

		check(!wr_gp(SPEC_CTRL, mine), "specctl: round %u wrmsr SPEC_CTRL 0x%x", (unsigned)i, (unsigned)mine);
		hc_yield();
		gp = rd_gp(SPEC_CTRL, &v);
		check(!gp && v == mine, "specctl: round %u rdmsr SPEC_CTRL 0x%x after a yield (want 0x%x)",
		      (unsigned)i, (unsigned)v, (unsigned)mine);
	}
	check(wr_gp(SPEC_CTRL, 8) && wr_gp(SPEC_CTRL, 1ull << 32), "specctl: wrmsr SPEC_CTRL reserved bits #GP");
	gp = rd_gp(SPEC_CTRL, &v);
	check(!gp && v == last, "specctl: SPEC_CTRL 0x%x unchanged by the refused writes", (unsigned)v);
	if (!(bits & 4))
		check(wr_gp(SPEC_CTRL, 4), "specctl: wrmsr SPEC_CTRL.SSBD #GP without SSBD");
	check(!wr_gp(SPEC_CTRL, 0), "specctl: wrmsr SPEC_CTRL 0");

	check(!wr_gp(PRED_CMD, 1), "specctl: wrmsr PRED_CMD IBPB");
	check(wr_gp(PRED_CMD, 2), "specctl: wrmsr PRED_CMD reserved bit #GP");
	check(rd_gp(PRED_CMD, &v), "specctl: rdmsr PRED_CMD #GP (write-only)");
	if (r[3] & EDX_L1D_FLUSH) {
		check(!wr_gp(FLUSH_CMD, 1), "specctl: wrmsr FLUSH_CMD L1D flush");
		check(wr_gp(FLUSH_CMD, 2), "specctl: wrmsr FLUSH_CMD reserved bit #GP");
		check(rd_gp(FLUSH_CMD, &v), "specctl: rdmsr FLUSH_CMD #GP (write-only)");
	} else {
		check(wr_gp(FLUSH_CMD, 1), "specctl: wrmsr FLUSH_CMD #GP without L1D_FLUSH");
	}
	if (r[3] & EDX_ARCH_CAPS) {
		gp = rd_gp(ARCH_CAPS, &v);
		check(!gp, "specctl: rdmsr ARCH_CAPABILITIES 0x%x%08x", (uint32_t)(v >> 32), (uint32_t)v);
		check(wr_gp(ARCH_CAPS, v), "specctl: wrmsr ARCH_CAPABILITIES #GP (read-only)");
	}
	printf("specctl: %d checks, %d failed\n", check_count, check_failed);
	return check_failed != 0;
}
