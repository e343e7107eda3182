/* TSC calibration against the 8254 PIT's channel 2, the one whose output software can read back
 * through port 0x61 (the classic PC/AT wiring; Intel 8254 datasheet, mode 0). */
#include "arch/x86/cpu.h"
#include "arch/x86/time.h"
#include "console/printk.h"

#define PIT_HZ 1193182u
#define CALIBRATE_MS 10

uint64_t tsc_khz;

void time_init(void)
{
	uint16_t count = PIT_HZ * CALIBRATE_MS / 1000;
	uint8_t gate = inb(0x61);
	uint64_t t0, t1;

	outb(0x61, (gate & ~0x02) | 0x01);   /* speaker off, channel 2 gate on */
	outb(0x43, 0xb0);                    /* channel 2, lobyte/hibyte, mode 0 (interrupt on count) */
	outb(0x42, count & 0xff);
	outb(0x42, count >> 8);
	t0 = rdtsc();
	/* Bit 5: channel 2's output goes high at terminal count. Bounded: a board whose PIT does not
	 * count must not hang the boot (10 ms is ~10^7 cycles even at 1 GHz; allow far more). */
	for (uint64_t spins = 0; !(inb(0x61) & 0x20); spins++)
		if (spins > 100000000ull) {
			t1 = t0;
			goto no_pit;
		}
	t1 = rdtsc();
no_pit:
	outb(0x61, gate);
	tsc_khz = (t1 - t0) / CALIBRATE_MS;
	if (tsc_khz == 0) {
		/* No PIT answer: the TSC's nominal rate from CPUID leaf 0x16 (base MHz), else 1 GHz. */
		struct cpuid_regs r = cpuid(0, 0).eax >= 0x16 ? cpuid(0x16, 0) : (struct cpuid_regs){ 0, 0, 0, 0 };

		tsc_khz = r.eax ? r.eax * 1000ull : 1000000;
		pr_warn("hv: the PIT did not count; assuming a %lu kHz TSC\n", tsc_khz);
	}
	pr_info("hv: tsc %lu kHz\n", tsc_khz);
}

void udelay(uint64_t us)
{
	uint64_t end = rdtsc() + us_to_tsc(us);

	while (rdtsc() < end)
		cpu_relax();
}
