/*
 * Local APIC access in xAPIC and x2APIC mode, and TSC / APIC-timer frequencies (see apic.h).
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"
#include "tessera/hypercall.h"

bool apic_x2;
volatile uint32_t *apic_mmio = (volatile uint32_t *)(uintptr_t)APIC_DEFAULT_BASE;

bool cpu_has_x2apic(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	return r[2] & CPUID1_ECX_X2APIC;
}

bool cpu_has_tsc_deadline(void)
{
	uint32_t r[4];
	cpuid(1, 0, r);
	return r[2] & CPUID1_ECX_TSCDEADLINE;
}

bool apic_probe(void)
{
	uint64_t b = rdmsr(MSR_APIC_BASE);
	apic_mmio = (volatile uint32_t *)(uintptr_t)(b & APIC_BASE_ADDR);
	apic_x2 = (b & APIC_BASE_EXTD) != 0;
	return (b & APIC_BASE_EN) != 0;
}

bool apic_enable_x2apic(void)
{
	if (!cpu_has_x2apic())
		return false;
	/* xAPIC -> x2APIC is a legal transition (SDM 3A, 10.12.5, Figure 10-27). */
	wrmsr(MSR_APIC_BASE, rdmsr(MSR_APIC_BASE) | APIC_BASE_EN | APIC_BASE_EXTD);
	apic_x2 = true;
	return true;
}

uint32_t apic_read(uint32_t off)
{
	if (apic_x2)
		return (uint32_t)rdmsr(MSR_X2APIC_BASE + (off >> 4));
	return apic_mmio[off / 4];
}

void apic_write(uint32_t off, uint32_t v)
{
	if (apic_x2)
		wrmsr(MSR_X2APIC_BASE + (off >> 4), v);
	else
		apic_mmio[off / 4] = v;
}

uint32_t apic_id(void)
{
	uint32_t id = apic_read(APIC_ID);
	return apic_x2 ? id : id >> 24;
}

/* Masks every line of both 8259 PICs (OCW1), so no legacy interrupt reaches LINT0 (ExtINT) any
 * more. Before LINT0 is masked: QEMU drops a PIC request it already raised only while LINT0 still
 * accepts it. tessera has no PIC; the ports would read all ones. */
static void pic_mask_all(void)
{
	if (hv_present())
		return;
	outb(0xA1, 0xff);
	outb(0x21, 0xff);
}

void apic_setup(void)
{
	if (rdmsr(MSR_APIC_BASE) & APIC_BASE_BSP)
		pic_mask_all();
	apic_write(APIC_SVR, APIC_SVR_ENABLE | VEC_SPURIOUS);
	apic_write(APIC_TPR, 0);
	apic_write(APIC_LVT_TIMER, LVT_MASKED);
	apic_write(APIC_LVT_LINT0, LVT_MASKED);
	apic_write(APIC_LVT_LINT1, LVT_MASKED);
	apic_write(APIC_LVT_ERROR, LVT_MASKED);
	apic_write(APIC_ESR, 0); /* writes latch the errors, SDM 3A 10.5.3 */
	apic_write(APIC_ESR, 0);
}

void apic_eoi(void)
{
	apic_write(APIC_EOI, 0); /* x2APIC: a non-zero value raises #GP */
}

bool apic_irr_bit(unsigned v)
{
	return (apic_read(APIC_IRR + (v / 32) * 0x10) >> (v % 32)) & 1;
}

bool apic_isr_bit(unsigned v)
{
	return (apic_read(APIC_ISR + (v / 32) * 0x10) >> (v % 32)) & 1;
}

bool apic_send_ipi(uint32_t dest, uint32_t icr)
{
	if (apic_x2) {
		/* One WRMSR sends it (SDM 3A, 10.12.9); x2APIC has no delivery status bit. */
		wrmsr(MSR_X2APIC_BASE + (APIC_ICR >> 4), ((uint64_t)dest << 32) | icr);
		return true;
	}
	unsigned long f = irq_save(); /* ICR2 then ICR: nothing on this CPU may send in between */
	apic_write(APIC_ICR2, dest << 24);
	apic_write(APIC_ICR, icr);
	bool idle = false;
	for (int i = 0; i < 1000000 && !idle; i++) {
		idle = !(apic_read(APIC_ICR) & ICR_BUSY);
		if (!idle)
			cpu_relax();
	}
	irq_restore(f);
	return idle;
}

/* --- time --- */

uint32_t tsc_khz, apic_timer_khz;
const char *tsc_source = "none", *apic_timer_source = "none";
static uint32_t hv_apic_khz;

#define PIT_HZ 1193182u
#define PIT_MS 50

/* 8254 channel 2 in mode 0, its output read back in port 0x61 bit 5 (as arch/x86/time.c). */
static uint32_t pit_calibrate(void)
{
	uint8_t gate = inb(0x61);
	uint16_t count = PIT_HZ * PIT_MS / 1000;
	uint64_t t0, t1;

	if (gate == 0xff)
		return 0; /* no port there (tessera answers all ones for ports it does not have) */
	outb(0x61, (gate & ~0x02) | 0x01); /* speaker off, channel 2 gate on */
	outb(0x43, 0xb0);                  /* channel 2, lobyte/hibyte, mode 0 */
	outb(0x42, count & 0xff);
	outb(0x42, count >> 8);
	t0 = rdtsc();
	for (uint32_t spins = 0; !(inb(0x61) & 0x20); spins++)
		if (spins > 100000000u) {
			outb(0x61, gate);
			return 0;
		}
	t1 = rdtsc();
	outb(0x61, gate);
	return (uint32_t)udiv64(t1 - t0, PIT_MS, NULL);
}

bool time_init(void)
{
	uint32_t r[4];

	cpuid(1, 0, r);
	if (hv_present()) {
		cpuid(HV_CPUID_BASE, 0, r);
		if (r[0] >= HV_CPUID_TIMING) {
			cpuid(HV_CPUID_TIMING, 0, r);
			if (r[0]) {
				tsc_khz = r[0], tsc_source = "cpuid 0x40000010";
				hv_apic_khz = r[1];
				return true;
			}
		}
	}
	tsc_khz = pit_calibrate();
	if (tsc_khz) {
		tsc_source = "pit";
		return true;
	}
	cpuid(0, 0, r);
	uint32_t max = r[0];
	if (max >= 0x15) {
		cpuid(0x15, 0, r); /* TSC = crystal (ECX Hz) * EBX / EAX */
		if (r[0] && r[1] && r[2]) {
			tsc_khz = (uint32_t)udiv64((uint64_t)r[2] * r[1], r[0] * 1000u, NULL);
			tsc_source = "cpuid 0x15";
			return true;
		}
	}
	if (max >= 0x16) {
		cpuid(0x16, 0, r);
		if (r[0]) {
			tsc_khz = r[0] * 1000u, tsc_source = "cpuid 0x16";
			return true;
		}
	}
	printf("rt: no TSC frequency: no timing leaf, no PIT, no CPUID 0x15/0x16\n");
	return false;
}

uint64_t tsc_to_us(uint64_t ticks)
{
	return udiv64(ticks * 1000, tsc_khz, NULL);
}

uint64_t us_to_tsc(uint64_t us)
{
	return udiv64(us * tsc_khz, 1000, NULL);
}

void udelay(uint64_t us)
{
	uint64_t end = rdtsc() + us_to_tsc(us);
	while (rdtsc() < end)
		cpu_relax();
}

void apic_timer_calibrate(void)
{
	if (hv_apic_khz) {
		apic_timer_khz = hv_apic_khz, apic_timer_source = "cpuid 0x40000010";
		return;
	}
	/* Masked one-shot from 0xFFFFFFFF at divide 1; how far it counts in 20 ms of TSC time. */
	apic_write(APIC_LVT_TIMER, LVT_MASKED | LVT_TIMER_ONESHOT);
	apic_write(APIC_TDCR, TDCR_DIV1);
	uint64_t t0 = rdtsc();
	apic_write(APIC_TMICT, 0xffffffffu);
	uint64_t end = t0 + us_to_tsc(20000);
	while (rdtsc() < end)
		cpu_relax();
	uint32_t cur = apic_read(APIC_TMCCT);
	uint64_t t1 = rdtsc();
	apic_write(APIC_TMICT, 0);
	uint64_t us = tsc_to_us(t1 - t0);
	apic_timer_khz = (uint32_t)udiv64((uint64_t)(0xffffffffu - cur) * 1000, (uint32_t)us, NULL);
	apic_timer_source = "measured";
}
