/*
 * apicstorm: isolation of the local APIC. Sends INIT, NMI, fixed (vector 0x40) and STARTUP IPIs at
 * every physical destination 0..255 (xAPIC) and at x2APIC IDs 0..255, some far ones and 0xFFFFFFFF,
 * in logical mode and with each shorthand, and counts what comes back to itself: with one vCPU only
 * the IPIs that target its own ID, a broadcast, its logical ID or "self" arrive. INIT and STARTUP
 * are never aimed at itself (an INIT would reset this CPU): not to its own ID, not to a broadcast,
 * not with the "all including self" shorthand. Each expected interrupt is waited for before the next
 * IPI goes out (a second NMI or fixed IPI while one is pending would merge with it).
 * After the xAPIC storm: the APIC base moved (IA32_APIC_BASE) to `base=` (0xFED00000) answers there
 * (version, ID, TPR write and read back) and is moved back; the old base is not touched while
 * relocated (under tessera a read of unmapped memory stops the guest), except off tessera when the
 * new base does not answer, to tell a platform that ignores relocation (QEMU TCG) from a failure.
 * Then the x2APIC storm (after switching to x2APIC mode). Last, the APIC is disabled (EN = 0:
 * CPUID.1:EDX[9] reads 0) and re-enabled in xAPIC mode: it must be in its reset
 * state (SVR 0xFF, LVTs masked) and, set up again, a one-shot timer fires.
 * Arguments: `mode=xapic|x2apic|both` (both) which IPI storms to send; `base=ADDR`.
 * Lines: one per check ending in "ok" or "FAIL"; last `apicstorm: done, got fixed=X nmi=Y`; exit 0,
 * or 1 if a check failed (3: usage, 4: no time source).
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"

#define VEC_FIXED 0x40
#define VEC_TIMER 0x41

static volatile uint32_t fixed, nmi, timer_ticks;
static uint32_t want_fixed, want_nmi, sent, wrong;
static uint32_t self_id;

static void on_fixed(struct irq_frame *f)
{
	(void)f;
	fixed++;
	apic_eoi();
}

static void on_nmi(struct irq_frame *f)
{
	(void)f;
	nmi++;
}

static void on_timer(struct irq_frame *f)
{
	(void)f;
	timer_ticks++;
	apic_eoi();
}

/* Sends one IPI; if it is to arrive here, waits (up to 100 ms) until it did. */
static void ipi(uint32_t dest, uint32_t icr, bool arrives)
{
	bool is_nmi = (icr & (7u << 8)) == ICR_NMI, is_fixed = (icr & (7u << 8)) == ICR_FIXED;

	sent++;
	apic_send_ipi(dest, icr);
	if (!arrives)
		return;
	volatile uint32_t *ctr = is_nmi ? &nmi : &fixed;
	uint32_t want = is_nmi ? ++want_nmi : is_fixed ? ++want_fixed : 0;
	uint64_t end = rdtsc() + us_to_tsc(100000);
	while (*ctr < want && rdtsc() < end)
		cpu_relax();
}

/* All four kinds at one destination; INIT and STARTUP only if it cannot be this CPU. If the fixed
 * or NMI IPI came back although it should not have, the platform takes this destination for us (a
 * wrong broadcast or a truncated ID): INIT would then reset this CPU, so it is not sent, and the
 * counts at the end fail the check. */
static void four(uint32_t dest, uint32_t mode_bits, bool hits_self)
{
	ipi(dest, mode_bits | ICR_FIXED | VEC_FIXED, hits_self);
	ipi(dest, mode_bits | ICR_NMI, hits_self);
	if (!hits_self) {
		udelay(500);
		if (fixed != want_fixed || nmi != want_nmi) {
			printf("apicstorm: destination 0x%x mode 0x%x reached this CPU (fixed %u nmi %u, want %u %u); "
			       "INIT/SIPI not sent there\n", dest, mode_bits, fixed, nmi, want_fixed, want_nmi);
			want_fixed = fixed, want_nmi = nmi; /* report each wrong one once; the check fails below */
			wrong++;
			return;
		}
		ipi(dest, mode_bits | ICR_INIT | ICR_ASSERT, false);
		ipi(dest, mode_bits | ICR_STARTUP | 0x07, false);
	}
}

static void settle_and_check(const char *m)
{
	udelay(20000); /* anything else that was going to come */
	check(fixed == want_fixed && nmi == want_nmi && !wrong,
	      "apicstorm: %s storm of %u ipis, got fixed=%u nmi=%u (want %u %u), %u destinations wrongly here (want 0)", m,
	      sent, fixed, nmi, want_fixed, want_nmi, wrong);
	wrong = 0;
}

static void storm_xapic(void)
{
	sent = 0;
	for (uint32_t id = 0; id < 256; id++)
		four(id, 0, id == self_id || id == 0xff); /* physical 0xFF: broadcast (SDM 3A, 10.6.2.1) */
	four(0xff, ICR_LOGICAL, true);                  /* logical flat: every CPU */
	four(0x01, ICR_LOGICAL, true);                  /* our own logical ID */
	four(0xfe, ICR_LOGICAL, false);                 /* everyone else */
	four(0, ICR_ALL_BUT_SELF, false);
	ipi(0, ICR_ALL | ICR_FIXED | VEC_FIXED, true);
	ipi(0, ICR_ALL | ICR_NMI, true);
	ipi(0, ICR_SELF | ICR_FIXED | VEC_FIXED, true);
	printf("apicstorm: xapic: INIT/SIPI not sent to own ID %u, physical 0xff, logical 0xff/0x01, all-incl-self\n",
	       self_id);
	settle_and_check("xapic");
}

static void storm_x2apic(void)
{
	static const uint32_t far_ids[] = { 0x100, 0x1ff, 0xffff, 0x10000, 0x7fffffff, 0xfffffffe };
	uint32_t ldr = apic_read(APIC_LDR); /* x2APIC: cluster << 16 | 1 << (ID & 15), read-only */

	sent = 0;
	for (uint32_t id = 0; id < 256; id++)
		four(id, 0, id == self_id);
	for (unsigned i = 0; i < sizeof(far_ids) / sizeof(far_ids[0]); i++)
		four(far_ids[i], 0, far_ids[i] == self_id);
	four(0xffffffffu, 0, true);                              /* x2APIC physical broadcast */
	four(0xffffffffu, ICR_LOGICAL, true);                    /* logical broadcast */
	four(ldr, ICR_LOGICAL, true);                            /* our own logical ID */
	four((ldr & 0xffff0000u) | (~ldr & 0xffff), ICR_LOGICAL, false); /* the rest of our cluster */
	four(0, ICR_ALL_BUT_SELF, false);
	four(0xffffffffu, ICR_ALL_BUT_SELF, false);
	ipi(0, ICR_ALL | ICR_FIXED | VEC_FIXED, true);
	ipi(0, ICR_SELF | ICR_FIXED | VEC_FIXED, true);
	/* The SELF IPI register (SDM 3A, 10.12.11). */
	sent++;
	apic_write(APIC_SELF_IPI, VEC_FIXED);
	uint64_t end = rdtsc() + us_to_tsc(100000);
	want_fixed++;
	while (fixed < want_fixed && rdtsc() < end)
		cpu_relax();
	printf("apicstorm: x2apic: ldr 0x%x; INIT/SIPI not sent to own ID %u, 0xffffffff, own ldr, all-incl-self\n", ldr,
	       self_id);
	settle_and_check("x2apic");
}

static void relocate(uint32_t new_base)
{
	uint64_t msr = rdmsr(MSR_APIC_BASE);
	uint32_t old_base = (uint32_t)msr & APIC_BASE_ADDR;
	uint32_t ver = apic_read(APIC_VERSION), id = apic_read(APIC_ID);

	cli();
	wrmsr(MSR_APIC_BASE, (msr & ~(uint64_t)APIC_BASE_ADDR) | new_base);
	apic_mmio = (volatile uint32_t *)(uintptr_t)new_base;
	uint32_t nver = apic_read(APIC_VERSION), nid = apic_read(APIC_ID);
	apic_write(APIC_TPR, 0x20);
	uint32_t tpr = apic_read(APIC_TPR);
	apic_write(APIC_TPR, 0);
	bool ok = nver == ver && nid == id && (tpr & 0xff) == 0x20;
	bool ignored = false;
	if (!ok && !hv_present()) {
		/* Not tessera: the old base may be looked at. Does the APIC still answer there? */
		volatile uint32_t *old = (volatile uint32_t *)(uintptr_t)old_base;
		ignored = old[APIC_VERSION / 4] == ver && old[APIC_ID / 4] == id;
	}
	wrmsr(MSR_APIC_BASE, msr);
	apic_mmio = (volatile uint32_t *)(uintptr_t)old_base;
	uint32_t back = apic_read(APIC_VERSION);
	sti();
	if (ignored) {
		printf("apicstorm: relocate to 0x%x: version 0x%x there, the APIC still at 0x%x: this platform ignores "
		       "relocation (QEMU TCG does), skipped\n", new_base, nver, old_base);
		return;
	}
	check(ok && back == ver,
	      "apicstorm: relocate 0x%x -> 0x%x: version 0x%x id 0x%x tpr 0x%x there, version 0x%x back at 0x%x (want 0x%x 0x%x 0x20)",
	      old_base, new_base, nver, nid, tpr, back, old_base, ver, id);
}

/* `msr`: the xAPIC-mode IA32_APIC_BASE to come back to. From x2APIC mode too, EN = EXTD = 0 is a
 * legal step (SDM 3A, 10.12.5). Returns false if the APIC cannot be enabled again (off tessera). */
static bool disable_enable(uint64_t msr)
{
	uint32_t r[4];

	cli();
	wrmsr(MSR_APIC_BASE, msr & ~(uint64_t)(APIC_BASE_EN | APIC_BASE_EXTD));
	uint64_t off = rdmsr(MSR_APIC_BASE);
	cpuid(1, 0, r);
	bool cpuid_apic = r[3] & CPUID1_EDX_APIC;
	wrmsr(MSR_APIC_BASE, msr);
	apic_x2 = false;
	apic_mmio = (volatile uint32_t *)(uintptr_t)(msr & APIC_BASE_ADDR);
	uint64_t on = rdmsr(MSR_APIC_BASE);
	cpuid(1, 0, r);
	bool cpuid_apic_on = r[3] & CPUID1_EDX_APIC;
	if (!(on & APIC_BASE_EN) && !hv_present()) {
		printf("apicstorm: disable/enable: the APIC stays disabled (emulators such as QEMU TCG and Bochs cannot enable it again), skipped\n");
		return false;
	}
	uint32_t svr = apic_read(APIC_SVR), lvt = apic_read(APIC_LVT_TIMER), lint0 = apic_read(APIC_LVT_LINT0);
	uint32_t tpr = apic_read(APIC_TPR);
	check(!(off & APIC_BASE_EN) && !cpuid_apic && (on & APIC_BASE_EN) && cpuid_apic_on && svr == 0xff &&
		      lvt == LVT_MASKED && lint0 == LVT_MASKED && tpr == 0,
	      "apicstorm: disable/enable: en %u cpuid.apic %u while off; en %u cpuid.apic %u, svr 0x%x lvt timer 0x%x "
	      "lint0 0x%x tpr 0x%x after (want 0 0; 1 1, 0xff 0x10000 0x10000 0)",
	      !!(off & APIC_BASE_EN), cpuid_apic, !!(on & APIC_BASE_EN), cpuid_apic_on, svr, lvt, lint0, tpr);

	/* Set up again: a one-shot still fires. */
	apic_setup();
	apic_write(APIC_DFR, 0xffffffffu);
	apic_write(APIC_LDR, 1u << 24);
	timer_ticks = 0;
	apic_write(APIC_TDCR, TDCR_DIV1);
	apic_write(APIC_LVT_TIMER, LVT_TIMER_ONESHOT | VEC_TIMER);
	sti();
	apic_write(APIC_TMICT, (uint32_t)udiv64(apic_timer_khz, 1, NULL)); /* 1 ms */
	uint64_t end = rdtsc() + us_to_tsc(100000);
	while (!timer_ticks && rdtsc() < end)
		cpu_relax();
	udelay(10000);
	check(timer_ticks == 1, "apicstorm: one-shot after re-enable fired %u times (want 1)", timer_ticks);
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	return true;
}

int main(void)
{
	const char *mode = getarg("mode");
	uint32_t base = (uint32_t)getarg_num("base", 0xFED00000u);
	bool x = !mode || !strcmp(mode, "both") || !strcmp(mode, "xapic");
	bool x2 = !mode || !strcmp(mode, "both") || !strcmp(mode, "x2apic");

	if ((!x && !x2) || (base & 0xfff) || base == APIC_DEFAULT_BASE) {
		printf("apicstorm: usage: mode=xapic|x2apic|both base=ADDR (4 KiB aligned, not 0xfee00000)\n");
		return 3;
	}
	intr_init();
	irq_set_handler(VEC_NMI, on_nmi);
	irq_set_handler(VEC_FIXED, on_fixed);
	irq_set_handler(VEC_TIMER, on_timer);
	if (!apic_probe() || apic_x2) {
		printf("apicstorm: the local APIC is %s\n", apic_x2 ? "in x2APIC mode already" : "disabled");
		return 1;
	}
	if (!time_init())
		return 4;
	apic_setup();
	apic_timer_calibrate();
	apic_write(APIC_DFR, 0xffffffffu);
	apic_write(APIC_LDR, 1u << 24);
	self_id = apic_id();
	printf("apicstorm: apic id %u, version 0x%x, base 0x%x, mode %s\n", self_id, apic_read(APIC_VERSION),
	       (uint32_t)(uintptr_t)apic_mmio, mode ? mode : "both");
	sti();

	uint64_t xapic_msr = rdmsr(MSR_APIC_BASE);
	if (x)
		storm_xapic();
	relocate(base);
	if (x2) {
		if (apic_enable_x2apic()) {
			apic_setup();
			self_id = apic_id();
			storm_x2apic();
		} else {
			printf("apicstorm: x2apic: not available (CPUID.1:ECX[21]=0), skipped\n");
		}
	}
	disable_enable(xapic_msr); /* last: QEMU TCG cannot enable the APIC again */
	printf("apicstorm: done, got fixed=%u nmi=%u\n", fixed, nmi);
	if (check_failed) {
		printf("apicstorm: %d of %d checks failed\n", check_failed, check_count);
		return 1;
	}
	return 0;
}
