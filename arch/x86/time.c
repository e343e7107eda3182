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
	while (!(inb(0x61) & 0x20))          /* bit 5: channel 2 output goes high at terminal count */
		;
	t1 = rdtsc();
	outb(0x61, gate);
	tsc_khz = (t1 - t0) / CALIBRATE_MS;
	if (tsc_khz == 0)
		tsc_khz = 1000000; /* no PIT answer: assume 1 GHz rather than divide by zero */
	pr_info("hv: tsc %lu kHz\n", tsc_khz);
}

void udelay(uint64_t us)
{
	uint64_t end = rdtsc() + us_to_tsc(us);

	while (rdtsc() < end)
		cpu_relax();
}
