/* Local APIC driver, xAPIC (MMIO) and x2APIC (MSR) modes. SDM Vol. 3A, chapter 11 (Advanced
 * Programmable Interrupt Controller). */
#include "arch/x86/apic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/trap.h"

/* Register offsets in the xAPIC page; x2APIC MSR = 0x800 + offset / 16 (SDM Vol. 3A, 11.12.1.2). */
#define APIC_ID     0x020
#define APIC_EOI    0x0b0
#define APIC_VER    0x030   /* version; bits 23:16 = number of LVT entries - 1 */
#define APIC_SVR    0x0f0   /* spurious-interrupt vector register; bit 8 = APIC software enable */
#define APIC_LVT_CMCI    0x2f0 /* local vector table (SDM Vol. 3A, 11.5.1, Figure 11-8) */
#define APIC_LVT_TIMER   0x320
#define APIC_LVT_THERMAL 0x330
#define APIC_LVT_PERF    0x340
#define APIC_LVT_LINT0   0x350
#define APIC_LVT_LINT1   0x360
#define APIC_LVT_ERROR   0x370
#define LVT_MASKED       (1u << 16)
#define APIC_TIMER_INIT  0x380 /* initial count (SDM Vol. 3A, 11.5.4) */
#define APIC_TIMER_CUR   0x390 /* current count */
#define APIC_TIMER_DIV   0x3e0 /* divide configuration; 0xb = divide by 1 (Figure 11-10) */
#define LVT_TSC_DEADLINE (2u << 17) /* timer mode bits 18:17 (Figure 11-8) */
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define APIC_ICR_LO 0x300   /* interrupt command register (SDM Vol. 3A, 11.6.1, Figure 11-12) */
#define APIC_ICR_HI 0x310

#define APIC_BASE_X2APIC (1ull << 10)  /* IA32_APIC_BASE.EXTD: x2APIC mode */
#define APIC_BASE_EN     (1ull << 11)  /* IA32_APIC_BASE.EN: global enable */

#define ICR_FIXED     (0u << 8)
#define ICR_NMI       (4u << 8)
#define ICR_INIT      (5u << 8)
#define ICR_STARTUP   (6u << 8)
#define ICR_PENDING   (1u << 12) /* xAPIC delivery status: still sending */
#define ICR_ASSERT    (1u << 14)
#define ICR_OTHERS    (3u << 18) /* destination shorthand: all excluding self */

static bool x2apic;
static volatile uint32_t *mmio;

static uint32_t apic_read(uint32_t reg)
{
	return x2apic ? (uint32_t)rdmsr(0x800 + (reg >> 4)) : mmio[reg / 4];
}

static void apic_write(uint32_t reg, uint32_t val)
{
	if (x2apic)
		wrmsr(0x800 + (reg >> 4), val);
	else
		mmio[reg / 4] = val;
}

uint64_t lapic_mmio_base(void)
{
	return rdmsr(MSR_IA32_APIC_BASE) & 0xffffff000ull;
}

void lapic_init(void)
{
	uint64_t base = rdmsr(MSR_IA32_APIC_BASE);
	unsigned max_lvt;

	if (!(base & APIC_BASE_EN))
		wrmsr(MSR_IA32_APIC_BASE, base |= APIC_BASE_EN);
	x2apic = base & APIC_BASE_X2APIC;
	mmio = (volatile uint32_t *)(base & 0xffffff000ull); /* mapped 1:1, uncached (paging.c) */
	apic_write(APIC_SVR, 0x100 | VEC_SPURIOUS);

	/* No local interrupt source is used: mask them all, so none can arrive on a vector the IDT
	 * has no gate for. The optional ones exist per the version register's LVT count. */
	max_lvt = (apic_read(APIC_VER) >> 16) & 0xff;
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_LVT_LINT0, LVT_MASKED);
	apic_write(APIC_LVT_LINT1, LVT_MASKED);
	apic_write(APIC_LVT_ERROR, LVT_MASKED);
	if (max_lvt >= 4)
		apic_write(APIC_LVT_PERF, LVT_MASKED);
	if (max_lvt >= 5)
		apic_write(APIC_LVT_THERMAL, LVT_MASKED);
	if (max_lvt >= 6)
		apic_write(APIC_LVT_CMCI, LVT_MASKED);
}

uint32_t lapic_id(void)
{
	return x2apic ? apic_read(APIC_ID) : apic_read(APIC_ID) >> 24;
}

/* Host timer: a one-shot interrupt on VEC_WAKEUP at a TSC deadline, which wakes a CPU that halted
 * while its vCPUs sleep. TSC-deadline mode where CPUID.1:ECX[24] offers it (SDM Vol. 3A, 11.5.4.1);
 * else one-shot count mode, converted from TSC ticks by a ratio measured once, on the first CPU that
 * needs it (the APIC timers of all CPUs run off the same bus clock). */
static bool tsc_deadline_mode;

void lapic_timer_init(void)
{
	tsc_deadline_mode = cpu_has(0x1, 2, 24);
	if (tsc_deadline_mode) {
		apic_write(APIC_LVT_TIMER, LVT_MASKED | LVT_TSC_DEADLINE | VEC_WAKEUP);
		wrmsr(MSR_IA32_TSC_DEADLINE, 0);
		apic_write(APIC_LVT_TIMER, LVT_TSC_DEADLINE | VEC_WAKEUP);
	} else {
		apic_write(APIC_TIMER_DIV, 0xb);
		apic_write(APIC_LVT_TIMER, VEC_WAKEUP);  /* one-shot */
	}
}

/* APIC timer ticks per 2^16 TSC ticks, measured over about 2^20 TSC ticks with the timer counting. */
static uint64_t apic_per_tsc16(void)
{
	static uint64_t ratio;
	uint64_t t0, t1;
	uint32_t c0, c1;

	if (ratio)
		return ratio;
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_TIMER_INIT, 0xffffffffu);
	c0 = apic_read(APIC_TIMER_CUR);
	t0 = rdtsc();
	while ((t1 = rdtsc()) - t0 < (1u << 20))
		cpu_relax();
	c1 = apic_read(APIC_TIMER_CUR);
	apic_write(APIC_TIMER_INIT, 0);
	apic_write(APIC_LVT_TIMER, VEC_WAKEUP);
	ratio = ((uint64_t)(c0 - c1) << 16) / (t1 - t0);
	return ratio ? ratio : 1;
}

void lapic_timer_arm(uint64_t tsc_deadline)
{
	uint64_t now, count;

	if (tsc_deadline_mode) {
		wrmsr(MSR_IA32_TSC_DEADLINE, tsc_deadline);
		return;
	}
	if (!tsc_deadline) {
		apic_write(APIC_TIMER_INIT, 0);
		return;
	}
	now = rdtsc();
	count = tsc_deadline > now ? ((tsc_deadline - now) * apic_per_tsc16()) >> 16 : 0;
	apic_write(APIC_TIMER_INIT, count == 0 ? 1 : count > 0xffffffffull ? 0xffffffffu : (uint32_t)count);
}

void lapic_eoi(void)
{
	apic_write(APIC_EOI, 0);
}

static void icr_send(uint32_t dest, uint32_t lo)
{
	if (x2apic) {
		/* x2APIC: one 64-bit write, destination in the high half (SDM Vol. 3A, 11.12.9). */
		wrmsr(0x830, ((uint64_t)dest << 32) | lo);
		return;
	}
	while (apic_read(APIC_ICR_LO) & ICR_PENDING)
		cpu_relax();
	apic_write(APIC_ICR_HI, dest << 24);
	apic_write(APIC_ICR_LO, lo); /* writing the low half sends */
	while (apic_read(APIC_ICR_LO) & ICR_PENDING)
		cpu_relax();
}

void lapic_send_ipi(uint32_t apic_id, uint8_t vector)
{
	icr_send(apic_id, ICR_FIXED | ICR_ASSERT | vector);
}

void lapic_send_init(uint32_t apic_id)
{
	icr_send(apic_id, ICR_INIT | ICR_ASSERT);
}

void lapic_send_sipi(uint32_t apic_id, uint8_t vector)
{
	icr_send(apic_id, ICR_STARTUP | ICR_ASSERT | vector);
}

void lapic_nmi_others(void)
{
	if (!x2apic && !mmio)
		return; /* a panic before lapic_init: nobody else runs yet */
	icr_send(0, ICR_NMI | ICR_ASSERT | ICR_OTHERS);
}
