/*
 * idle: a periodic local APIC timer at `hz=N` (100) and nothing else to do: the guest sits in
 * `sti; hlt` between ticks and counts them in the handler. It measures the TSC time of `ticks=N`
 * (200) periods (tick 1 to tick N+1) and prints
 *   idle: N ticks in T ms, H halts (want ~W ms +-5%) ok|FAIL
 * exiting 0 if T is within `tol=P` percent (5) of N*1000/hz, else 1 (3: usage, 4: no time source). With `late=1`
 * T may be any longer (an emulator on a busy host, whose vCPU thread the host deschedules, delivers
 * ticks late, which merge as on hardware): only too short a T fails, and every tick must still come.
 * Run next to a
 * `spin` guest on the same host CPU, it shows that a halted guest leaves its CPU to the others while
 * its timer still wakes it on time.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"

#define TIMER_VEC 0x40

static volatile uint32_t ticks, stop_at;
static volatile uint64_t t_first, t_last;

static void on_timer(struct irq_frame *f)
{
	uint64_t now = rdtsc();
	(void)f;
	if (++ticks == 1)
		t_first = now;
	if (ticks == stop_at) {
		t_last = now;
		apic_write(APIC_TMICT, 0); /* stop: no tick beyond N+1 */
	}
	apic_eoi();
}

int main(void)
{
	uint32_t hz = (uint32_t)getarg_num("hz", 100), n = (uint32_t)getarg_num("ticks", 200);
	uint32_t pct = (uint32_t)getarg_num("tol", 5), late = (uint32_t)getarg_num("late", 0);

	if (!hz || hz > 100000 || !n || !pct || pct > 100 || late > 1) {
		printf("idle: usage: hz=N (1..100000) ticks=N (>0) tol=P (1..100) late=0|1\n");
		return 3;
	}
	intr_init();
	irq_set_handler(TIMER_VEC, on_timer);
	if (!apic_probe()) {
		printf("idle: the local APIC is disabled\n");
		return 1;
	}
	if (!time_init())
		return 4;
	apic_setup();
	apic_timer_calibrate();
	uint32_t count = (uint32_t)udiv64((uint64_t)apic_timer_khz * 1000, hz, NULL);
	uint64_t want_us = udiv64((uint64_t)n * 1000000, hz, NULL);
	printf("idle: tsc %u kHz (%s), apic timer %u kHz (%s), %u ticks at %u Hz\n", tsc_khz, tsc_source,
	       apic_timer_khz, apic_timer_source, n, hz);

	stop_at = n + 1;
	apic_write(APIC_TDCR, TDCR_DIV1);
	apic_write(APIC_LVT_TIMER, LVT_TIMER_PERIODIC | TIMER_VEC);
	apic_write(APIC_TMICT, count);
	/* Check with IF = 0, then STI; HLT: a tick between the check and the HLT still wakes it. */
	uint32_t halts = 0;
	uint64_t limit_us = late ? 100 * want_us + 60000000 : 2 * want_us + 2000000, limit = rdtsc() + us_to_tsc(limit_us);
	cli();
	while (ticks < n + 1) {
		if (rdtsc() > limit)
			break;
		sti_hlt();
		cli();
		halts++;
	}
	sti();
	apic_write(APIC_TMICT, 0);
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	if (ticks < n + 1) {
		check(false, "idle: only %u of %u ticks in %u ms, %u halts (want ~%u ms +-%u%%)", ticks ? ticks - 1 : 0, n,
		      (uint32_t)udiv64(limit_us, 1000, NULL), halts, (uint32_t)udiv64(want_us, 1000, NULL), pct);
		return 1;
	}
	uint64_t got_us = tsc_to_us(t_last - t_first), tol = udiv64(want_us * pct, 100, NULL);
	bool ok = got_us + tol >= want_us && (late || got_us <= want_us + tol);
	check(ok, "idle: %u ticks in %u ms, %u halts (want ~%u ms %s%u%%)", n, (uint32_t)udiv64(got_us, 1000, NULL), halts,
	      (uint32_t)udiv64(want_us, 1000, NULL), late ? "-" : "+-", pct);
	return ok ? 0 : 1;
}
