/* TSC calibration against the 8254 PIT's channel 2, the one whose output software can read back
 * through port 0x61 (the classic PC/AT wiring; Intel 8254 datasheet, mode 0). */
#include "arch/x86/cpu.h"
#include "arch/x86/time.h"
#include "console/printk.h"
#include "lib/string.h"

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

/* The host's CMOS clock (MC146818A datasheet; the PC's RTC at ports 0x70/0x71): wait out an update
 * in progress (register A bit 7), read the fields twice until they agree, undo BCD (register B bit 2
 * clear) and 12-hour mode (bit 1 clear: bit 7 of the hour is PM). The century is taken as 20xx. */
static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);           /* bit 7 clear: NMIs stay enabled */
	return inb(0x71);
}

static unsigned bcd(uint8_t v, bool binary)
{
	return binary ? v : (v >> 4) * 10 + (v & 15);
}

uint64_t host_epoch_seconds(void)
{
	uint8_t t[6], again[6], b;
	unsigned sec, min, hour, day, mon, year, days;
	static const unsigned before_month[12] = { 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334 };

	for (int tries = 0; tries < 1000; tries++) {
		for (unsigned spins = 0; (cmos(0x0a) & 0x80) && spins < 1000000; spins++)
			cpu_relax();
		t[0] = cmos(0x00), t[1] = cmos(0x02), t[2] = cmos(0x04);
		t[3] = cmos(0x07), t[4] = cmos(0x08), t[5] = cmos(0x09);
		again[0] = cmos(0x00), again[1] = cmos(0x02), again[2] = cmos(0x04);
		again[3] = cmos(0x07), again[4] = cmos(0x08), again[5] = cmos(0x09);
		if (!memcmp(t, again, sizeof(t)))
			break;
	}
	b = cmos(0x0b);
	sec = bcd(t[0], b & 4);
	min = bcd(t[1], b & 4);
	hour = bcd(t[2] & 0x7f, b & 4);
	if (!(b & 2) && (t[2] & 0x80))
		hour = hour % 12 + 12;
	else if (!(b & 2) && hour == 12)
		hour = 0;
	day = bcd(t[3], b & 4);
	mon = bcd(t[4], b & 4);
	year = 2000 + bcd(t[5], b & 4);
	if (mon < 1 || mon > 12 || day < 1 || day > 31)
		return 0;                  /* no sensible clock: the epoch itself */
	/* Days since 1970-01-01: whole years, leap days before this year, this year's days. */
	days = (year - 1970) * 365 + (year - 1969) / 4 - (year - 1901) / 100 + (year - 1601) / 400;
	days += before_month[mon - 1] + day - 1;
	if (mon > 2 && (year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)))
		days++;
	return (uint64_t)days * 86400 + hour * 3600 + min * 60 + sec;
}
