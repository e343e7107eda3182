/*
 * timer: checks the local APIC timer from inside (SDM Vol. 3A, 10.5.4 "APIC Timer"), first in xAPIC
 * mode (MMIO), then in x2APIC mode (MSRs; skipped if CPUID.1:ECX[21] is 0). `mode=`:
 *   oneshot   the current count counts down to 0; one interrupt, not before its time; a masked LVT
 *             delivers nothing; with IF = 0 the expired timer waits in the IRR and is taken right
 *             after STI; EOI: the ISR bit is set in the handler, holds back a second interrupt of
 *             the same vector until the EOI, and is clear after it
 *   periodic  `ticks=N` (1000) interrupts at `hz=N` (1000), period measured with the TSC within 5%
 *   deadline  TSC-deadline mode (MSR 0x6E0; skipped if CPUID.1:ECX[24] is 0): a deadline in the past
 *             fires at once, +10 ms fires at or after it, the MSR reads 0 after either fired, +1 h
 *             stays quiet for 50 ms and reads back, writing 0 disarms
 *   tsc       the TSC moved by WRMSR (SDM Vol. 3B, 18.17): a TSC write moves RDTSC, and with
 *             IA32_TSC_ADJUST (CPUID.7.0:EBX[1]; skipped without it) moves TSC_ADJUST by as much, a
 *             TSC_ADJUST write moves the TSC by as much (18.17.3); the deadline checks above again
 *             with the TSC behind and ahead of the host's, and a TSC jump past an armed deadline
 *             fires it (the timer compares the TSC, 11.5.4.1)
 *   all       (default) every one of them
 * One line per check, ending in "ok" or "FAIL"; then `timer: all N checks passed` (exit 0) or
 * `timer: F of N checks failed` (exit 1). Usage errors exit 3, no time source 4.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"

#define TIMER_VEC 0x40

static const char *m; /* "xapic" or "x2apic", for the verdict lines */

static volatile uint32_t ticks;
static volatile uint64_t t_first, t_last;
static volatile bool no_eoi, isr_in_handler;

static void on_timer(struct irq_frame *f)
{
	uint64_t now = rdtsc();
	(void)f;
	if (++ticks == 1)
		t_first = now;
	t_last = now;
	isr_in_handler = apic_isr_bit(TIMER_VEC);
	if (!no_eoi)
		apic_eoi();
}

static void timer_stop(void)
{
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_TMICT, 0);
	if (cpu_has_tsc_deadline())
		wrmsr(MSR_TSC_DEADLINE, 0);
}

static void timer_reset(uint32_t lvt)
{
	timer_stop();
	ticks = 0, t_first = t_last = 0;
	no_eoi = false, isr_in_handler = false;
	apic_write(APIC_TDCR, TDCR_DIV1);
	apic_write(APIC_LVT_TIMER, lvt | TIMER_VEC);
	/* SDM 3A 10.5.4.1: an LVT write in xAPIC mode and a following WRMSR to IA32_TSC_DEADLINE are
	 * not ordered; MFENCE orders them. */
	__asm__ volatile("mfence" : : : "memory");
}

/* Busy-waits with interrupts on until `n` ticks arrived or `us` passed; true if they did. */
static bool wait_ticks(uint32_t n, uint64_t us)
{
	uint64_t end = rdtsc() + us_to_tsc(us);
	sti();
	while (ticks < n && rdtsc() < end)
		cpu_relax();
	return ticks >= n;
}

static uint32_t counts_for_us(uint64_t us)
{
	return (uint32_t)udiv64((uint64_t)apic_timer_khz * us, 1000, NULL);
}

static void check_oneshot(void)
{
	uint32_t count = counts_for_us(10000);

	timer_reset(LVT_TIMER_ONESHOT);
	sti();
	uint64_t t0 = rdtsc();
	apic_write(APIC_TMICT, count);
	uint32_t c1 = apic_read(APIC_TMCCT);
	udelay(2000);
	uint32_t c2 = apic_read(APIC_TMCCT);
	wait_ticks(1, 500000);
	udelay(30000); /* time for a wrong second interrupt */
	uint32_t c3 = apic_read(APIC_TMCCT);
	uint32_t fire_us = ticks ? (uint32_t)tsc_to_us(t_first - t0) : 0;
	check(c1 > 0 && c1 <= count && c2 < c1 && c3 == 0,
	      "timer: oneshot %s current count %u -> %u -> %u (want falling from %u to 0)", m, c1, c2, c3, count);
	check(ticks == 1 && fire_us >= 9500 && fire_us <= 30000,
	      "timer: oneshot %s fired %u times after %u us (want 1 after 10000 us, -5%%/+20 ms)", m, ticks,
	      fire_us);
	timer_stop();
}

static void check_masked(void)
{
	timer_reset(LVT_TIMER_ONESHOT | LVT_MASKED);
	sti();
	apic_write(APIC_TMICT, counts_for_us(1000));
	udelay(20000);
	uint32_t cur = apic_read(APIC_TMCCT);
	bool irr = apic_irr_bit(TIMER_VEC);
	check(ticks == 0 && cur == 0 && !irr,
	      "timer: masked %s one-shot gave %u interrupts, count %u, irr %u (want 0, 0, 0)", m, ticks, cur, irr);
	timer_stop();
}

static void check_pending(void)
{
	timer_reset(LVT_TIMER_ONESHOT);
	cli();
	apic_write(APIC_TMICT, counts_for_us(1000));
	udelay(10000); /* spin with IF = 0 well past the expiry */
	uint32_t before = ticks;
	bool irr = apic_irr_bit(TIMER_VEC);
	/* STI's shadow covers the NOP; the interrupt comes at the boundary after it (SDM 2B, STI). */
	__asm__ volatile("sti; nop" : : : "memory");
	uint32_t after = ticks;
	bool irr_after = apic_irr_bit(TIMER_VEC);
	check(before == 0 && irr && after == 1 && !irr_after,
	      "timer: pending %s with IF=0: ticks %u, irr %u; after sti ticks %u, irr %u (want 0, 1; 1, 0)", m,
	      before, irr, after, irr_after);
	timer_stop();
}

static void check_eoi(void)
{
	timer_reset(LVT_TIMER_ONESHOT);
	no_eoi = true; /* the first interrupt stays in service */
	sti();
	apic_write(APIC_TMICT, counts_for_us(1000));
	wait_ticks(1, 500000);
	bool in_handler = isr_in_handler, held = apic_isr_bit(TIMER_VEC);
	no_eoi = false;
	/* A second one of the same vector: its priority class is not above the PPR (SDM 3A, 10.8.3.1),
	 * so it waits in the IRR until the EOI. */
	apic_write(APIC_TMICT, counts_for_us(1000));
	udelay(10000);
	uint32_t blocked = ticks;
	bool irr = apic_irr_bit(TIMER_VEC);
	apic_eoi();
	wait_ticks(2, 100000);
	uint32_t after = ticks;
	bool isr_after = apic_isr_bit(TIMER_VEC);
	check(in_handler && held && blocked == 1 && irr && after == 2 && !isr_after,
	      "timer: eoi %s isr in handler %u, before eoi %u, second held %u irr %u, after eoi ticks %u isr %u "
	      "(want 1, 1, 1 1, 2 0)",
	      m, in_handler, held, blocked == 1, irr, after, isr_after);
	timer_stop();
}

static void check_periodic(uint32_t n, uint32_t hz)
{
	uint32_t count = (uint32_t)udiv64((uint64_t)apic_timer_khz * 1000, hz, NULL);
	uint64_t want_us = udiv64((uint64_t)n * 1000000, hz, NULL);

	timer_reset(LVT_TIMER_PERIODIC);
	sti();
	apic_write(APIC_TMICT, count);
	/* n periods lie between tick 1 and tick n + 1. */
	bool done = wait_ticks(n + 1, 2 * want_us + 1000000);
	timer_stop();
	uint64_t got_us = done ? tsc_to_us(t_last - t_first) : 0;
	uint32_t want_period = (uint32_t)udiv64(1000000, hz, NULL);
	uint32_t period = done ? (uint32_t)udiv64(got_us, n, NULL) : 0;
	uint64_t tol = udiv64(want_us, 20, NULL);
	check(done && got_us + tol >= want_us && got_us <= want_us + tol,
	      "timer: periodic %s %u ticks period %u us (want %u +-5%%)", m, done ? n : ticks - 1, period,
	      want_period);
}

static void check_deadline(void)
{
	if (!cpu_has_tsc_deadline()) {
		printf("timer: deadline %s: not available (CPUID.1:ECX[24]=0), skipped\n", m);
		return;
	}
	/* In the past: fires at once, and the MSR reads 0 once it has (SDM 3A, 10.5.4.1). */
	timer_reset(LVT_TIMER_DEADLINE);
	sti();
	uint64_t t0 = rdtsc();
	wrmsr(MSR_TSC_DEADLINE, t0 - 1);
	wait_ticks(1, 100000);
	uint32_t lat = ticks ? (uint32_t)tsc_to_us(t_first - t0) : 0;
	uint64_t msr_past = rdmsr(MSR_TSC_DEADLINE);
	check(ticks == 1 && lat < 1000, "timer: deadline %s past fired %u times after %u us (want 1 after < 1000 us)", m,
	      ticks, lat);

	/* 10 ms ahead: not before the deadline (exact, in TSC ticks). */
	timer_reset(LVT_TIMER_DEADLINE);
	sti();
	t0 = rdtsc();
	uint64_t dl = t0 + us_to_tsc(10000);
	wrmsr(MSR_TSC_DEADLINE, dl);
	wait_ticks(1, 500000);
	udelay(20000);
	lat = ticks ? (uint32_t)tsc_to_us(t_first - t0) : 0;
	uint64_t msr_10ms = rdmsr(MSR_TSC_DEADLINE);
	check(ticks == 1 && t_first >= dl && lat <= 30000,
	      "timer: deadline %s +10 ms fired %u times after %u us (want 1 at >= 10000 us, +20 ms)", m, ticks,
	      lat);
	/* "When the timer generates an interrupt, it disarms itself and clears the IA32_TSC_DEADLINE
	 * MSR" (SDM 3A, 10.5.4.1). */
	check(msr_past == 0 && msr_10ms == 0, "timer: deadline %s msr after firing: past 0x%llx, +10 ms 0x%llx (want 0, 0)",
	      m, msr_past, msr_10ms);

	/* An hour ahead: quiet for 50 ms, reads back, and 0 disarms it. */
	timer_reset(LVT_TIMER_DEADLINE);
	sti();
	dl = rdtsc() + us_to_tsc(3600ull * 1000000);
	wrmsr(MSR_TSC_DEADLINE, dl);
	udelay(50000);
	uint32_t quiet = ticks;
	uint64_t msr = rdmsr(MSR_TSC_DEADLINE);
	wrmsr(MSR_TSC_DEADLINE, 0);
	uint64_t msr0 = rdmsr(MSR_TSC_DEADLINE);
	check(quiet == 0 && msr == dl && msr0 == 0,
	      "timer: deadline %s +1 h gave %u interrupts in 50 ms, reads back %s, 0 after cancel %s (want 0, yes, yes)",
	      m, quiet, msr == dl ? "yes" : "no", msr0 == 0 ? "yes" : "no");

	/* Cancelled before it is due: nothing comes. */
	timer_reset(LVT_TIMER_DEADLINE);
	sti();
	wrmsr(MSR_TSC_DEADLINE, rdtsc() + us_to_tsc(20000));
	wrmsr(MSR_TSC_DEADLINE, 0);
	udelay(50000);
	check(ticks == 0, "timer: deadline %s +20 ms cancelled gave %u interrupts in 50 ms (want 0)", m, ticks);
	timer_stop();
}

#define MSR_TSC          0x10   /* IA32_TIME_STAMP_COUNTER (SDM Vol. 4, Table 2-2) */
#define MSR_TSC_ADJUST   0x3b

static bool cpu_has_tsc_adjust(void)
{
	uint32_t r[4];

	cpuid(0, 0, r);
	if (r[0] < 7)
		return false;
	cpuid(7, 0, r);
	return r[1] & (1u << 1);
}

static void check_tsc(void)
{
	const uint64_t d = 1ull << 40, slack = us_to_tsc(100000);   /* 100 ms for the WRMSR's exit */
	bool adj = cpu_has_tsc_adjust();

	/* A TSC write: RDTSC continues from the value written (18.17). */
	uint64_t t0 = rdtsc();
	wrmsr(MSR_TSC, t0 + d);
	uint64_t t1 = rdtsc();
	check(t1 - t0 >= d && t1 - t0 <= d + slack, "timer: tsc write of +2^40 moved the TSC by 0x%llx (want 0x%llx + < 0x%llx)",
	      t1 - t0, d, slack);
	if (!adj) {
		printf("timer: tsc_adjust: not available (CPUID.7.0:EBX[1]=0), skipped\n");
		return;
	}
	/* ... and TSC_ADJUST (0 at reset) by what it moved the TSC (18.17.3). */
	uint64_t a0 = rdmsr(MSR_TSC_ADJUST);
	check(a0 <= d && a0 >= d - slack, "timer: tsc_adjust after the tsc write 0x%llx (want 0x%llx - < 0x%llx)", a0, d,
	      slack);
	/* A TSC_ADJUST write of -2^41 relative moves the TSC 2^41 back. */
	t0 = rdtsc();
	wrmsr(MSR_TSC_ADJUST, a0 - 2 * d);
	t1 = rdtsc();
	uint64_t a1 = rdmsr(MSR_TSC_ADJUST);
	check(t1 - (t0 - 2 * d) <= slack && a1 == a0 - 2 * d,
	      "timer: tsc_adjust write of -2^41 moved the TSC by -0x%llx, reads 0x%llx (want -0x%llx + < 0x%llx, 0x%llx)",
	      t0 - t1, a1, 2 * d, slack, a0 - 2 * d);

	/* The TSC-deadline timer counts the guest's TSC: behind the host's, then ahead of it. */
	const char *saved = m;
	m = "tsc behind";
	check_deadline();
	wrmsr(MSR_TSC_ADJUST, a0 + 2 * d);
	m = "tsc ahead";
	check_deadline();
	m = saved;

	/* An hour ahead, then the TSC jumps two hours: the deadline has passed, the timer fires. */
	timer_reset(LVT_TIMER_DEADLINE);
	sti();
	uint64_t hour = us_to_tsc(3600ull * 1000000);
	wrmsr(MSR_TSC_DEADLINE, rdtsc() + hour);
	udelay(20000);
	uint32_t before = ticks;
	wrmsr(MSR_TSC_ADJUST, rdmsr(MSR_TSC_ADJUST) + 2 * hour);
	wait_ticks(1, 100000);
	uint64_t msr = rdmsr(MSR_TSC_DEADLINE);
	check(before == 0 && ticks == 1 && msr == 0,
	      "timer: tsc_adjust +2 h past a deadline +1 h: %u interrupts before, %u after, msr 0x%llx (want 0, 1, 0)",
	      before, ticks, msr);
	timer_stop();
	wrmsr(MSR_TSC_ADJUST, 0);                 /* the host's TSC again */
	check(rdmsr(MSR_TSC_ADJUST) == 0, "timer: tsc_adjust back to 0 reads 0x%llx (want 0)", rdmsr(MSR_TSC_ADJUST));
}

int main(void)
{
	const char *mode = getarg("mode");
	uint32_t n = (uint32_t)getarg_num("ticks", 1000), hz = (uint32_t)getarg_num("hz", 1000);
	bool all, oneshot, periodic, deadline, tsc;

	if (!mode)
		mode = "all";
	all = !strcmp(mode, "all");
	oneshot = all || !strcmp(mode, "oneshot");
	periodic = all || !strcmp(mode, "periodic");
	deadline = all || !strcmp(mode, "deadline");
	tsc = all || !strcmp(mode, "tsc");
	if (!(oneshot || periodic || deadline || tsc) || !n || !hz || hz > 100000) {
		printf("timer: usage: mode=all|oneshot|periodic|deadline|tsc ticks=N hz=N (1..100000)\n");
		return 3;
	}
	intr_init();
	irq_set_handler(TIMER_VEC, on_timer);
	if (!apic_probe()) {
		printf("timer: the local APIC is disabled in IA32_APIC_BASE\n");
		return 1;
	}
	if (!time_init())
		return 4;
	apic_setup();
	apic_timer_calibrate();
	printf("timer: tsc %u kHz (%s), apic timer %u kHz (%s), apic id %u, mode %s ticks=%u hz=%u\n", tsc_khz,
	       tsc_source, apic_timer_khz, apic_timer_source, apic_id(), mode, n, hz);
	if (!apic_timer_khz) {
		printf("timer: the APIC timer does not count\n");
		return 1;
	}

	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0) {
			if (apic_x2) {
				printf("timer: xapic: the APIC is in x2APIC mode already, skipped\n");
				continue;
			}
			m = "xapic";
		} else {
			if (!apic_x2 && !apic_enable_x2apic()) {
				printf("timer: x2apic: not available (CPUID.1:ECX[21]=0), skipped\n");
				continue;
			}
			m = "x2apic";
			apic_setup();
		}
		if (oneshot) {
			check_oneshot();
			check_masked();
			check_pending();
			check_eoi();
		}
		if (periodic)
			check_periodic(n, hz);
		if (deadline)
			check_deadline();
		cli();
	}
	if (tsc)
		check_tsc();              /* once, in the APIC mode the loop left */
	cli();
	if (check_failed) {
		printf("timer: %d of %d checks failed\n", check_failed, check_count);
		return 1;
	}
	printf("timer: all %d checks passed\n", check_count);
	return 0;
}
