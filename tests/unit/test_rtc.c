/* Host unit tests of vdev/rtc.c: the MC146818 model driven through port access records against a
 * fake TSC at 1 GHz, its IRQ 8 line recorded. */
#include <stdint.h>
#include <string.h>
#include "vdev/rtc.h"
#include "tests/unit/unit.h"

#define KHZ   1000000ull               /* 1 GHz: a tick is a nanosecond */
#define SEC   (KHZ * 1000)
#define MS    (KHZ)
#define US    (KHZ / 1000)
#define BASE  5000000000ull            /* the guest TSC at the host time given */
#define T0    1700000000ull            /* 2023-11-14 22:13:20 UTC, a Tuesday */
#define MIB   (1024ull * 1024)

static struct vrtc R;
static bool line;
static unsigned raises, lowers;

static void irq_set(void *ctx, unsigned gsi, bool level)
{
	CHECK(ctx == &R);
	CHECK_EQ(gsi, VRTC_IRQ);
	CHECK(level != line);              /* the device only reports changes */
	line = level;
	if (level)
		raises++;
	else
		lowers++;
}

static void setup_at(uint64_t epoch, uint64_t ram)
{
	line = false;
	raises = lowers = 0;
	vrtc_init(&R, epoch, BASE, KHZ, ram, (struct irq_line){ irq_set, &R, VRTC_IRQ });
}

static void setup(void)
{
	setup_at(T0, 128 * MIB);
}

static void outb(uint16_t port, uint8_t v, uint64_t now)
{
	struct vdev_access a = { port, 1, true, v, 0 };

	CHECK_EQ(vrtc_access(&R, &a, now), VDEV_DONE);
}

static uint8_t inb(uint16_t port, uint64_t now)
{
	struct vdev_access a = { port, 1, false, 0x1234, 0 };

	CHECK_EQ(vrtc_access(&R, &a, now), VDEV_DONE);
	CHECK(a.value <= 0xff);
	return (uint8_t)a.value;
}

static uint8_t rd(unsigned reg, uint64_t now)
{
	outb(VRTC_PORT_INDEX, (uint8_t)reg, now);
	return inb(VRTC_PORT_DATA, now);
}

static void wr(unsigned reg, uint8_t v, uint64_t now)
{
	outb(VRTC_PORT_INDEX, (uint8_t)reg, now);
	outb(VRTC_PORT_DATA, v, now);
}

/* Runs the device timer as the bus would, once its deadline is reached. */
static void run_timer_to(uint64_t now)
{
	if (R.timer.deadline && R.timer.deadline <= now)
		R.timer.fire(R.timer.dev, now);
}

static void test_read_bcd_binary(void)
{
	uint64_t t = BASE + SEC / 2;

	setup();
	CHECK_EQ(rd(VRTC_SECONDS, t), 0x20);
	CHECK_EQ(rd(VRTC_MINUTES, t), 0x13);
	CHECK_EQ(rd(VRTC_HOURS, t), 0x22);
	CHECK_EQ(rd(VRTC_DAY_OF_WEEK, t), 3);
	CHECK_EQ(rd(VRTC_DAY_OF_MONTH, t), 0x14);
	CHECK_EQ(rd(VRTC_MONTH, t), 0x11);
	CHECK_EQ(rd(VRTC_YEAR, t), 0x23);
	CHECK_EQ(rd(VRTC_CENTURY, t), 0x20);
	CHECK_EQ(rd(VRTC_REG_A, t), 0x26);
	CHECK_EQ(rd(VRTC_REG_B, t), 0x02);
	CHECK_EQ(rd(VRTC_REG_C, t), VRTC_C_PF);              /* rate 6 runs from power-on */
	CHECK_EQ(rd(VRTC_REG_D, t), 0x80);
	CHECK_EQ(vrtc_seconds(&R, t), T0);
	/* Binary. */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_DM, t);
	CHECK_EQ(rd(VRTC_SECONDS, t), 20);
	CHECK_EQ(rd(VRTC_MINUTES, t), 13);
	CHECK_EQ(rd(VRTC_HOURS, t), 22);
	CHECK_EQ(rd(VRTC_DAY_OF_MONTH, t), 14);
	CHECK_EQ(rd(VRTC_MONTH, t), 11);
	CHECK_EQ(rd(VRTC_YEAR, t), 23);
	CHECK_EQ(rd(VRTC_CENTURY, t), 20);
	/* Time runs with the TSC. */
	CHECK_EQ(rd(VRTC_SECONDS, BASE + 3 * SEC + SEC / 2), 23);
	CHECK_EQ(rd(VRTC_SECONDS, BASE + 40 * SEC), 0);
	CHECK_EQ(rd(VRTC_MINUTES, BASE + 40 * SEC), 14);
	CHECK_EQ(rd(VRTC_DAY_OF_MONTH, BASE + 86400 * SEC), 15);
	CHECK_EQ(rd(VRTC_DAY_OF_WEEK, BASE + 86400 * SEC), 4);
	/* Many days on, no drift: 1000 days at 1 GHz. */
	CHECK_EQ(vrtc_seconds(&R, BASE + 86400000ull * SEC), T0 + 86400000ull);
	/* Before the base instant: the base time. */
	CHECK_EQ(vrtc_seconds(&R, 0), T0);

	/* A leap day and the turn of a century. */
	setup_at(1709251199, 16 * MIB);                     /* 2024-02-29 23:59:59, Thursday */
	CHECK_EQ(rd(VRTC_DAY_OF_MONTH, BASE), 0x29);
	CHECK_EQ(rd(VRTC_MONTH, BASE), 0x02);
	CHECK_EQ(rd(VRTC_DAY_OF_WEEK, BASE), 5);
	CHECK_EQ(rd(VRTC_DAY_OF_MONTH, BASE + SEC), 0x01);
	CHECK_EQ(rd(VRTC_MONTH, BASE + SEC), 0x03);
	CHECK_EQ(rd(VRTC_DAY_OF_WEEK, BASE + SEC), 6);
	setup_at(4102444800ull - 1, 16 * MIB);               /* 2099-12-31 23:59:59 */
	CHECK_EQ(rd(VRTC_YEAR, BASE), 0x99);
	CHECK_EQ(rd(VRTC_CENTURY, BASE), 0x20);
	CHECK_EQ(rd(VRTC_YEAR, BASE + SEC), 0x00);
	CHECK_EQ(rd(VRTC_CENTURY, BASE + SEC), 0x21);
	CHECK_EQ(rd(VRTC_DAY_OF_WEEK, BASE + SEC), 6);       /* 2100-01-01 was a Friday */
}

static void test_12h(void)
{
	setup();                                             /* 22:13:20 */
	wr(VRTC_REG_B, 0, BASE);                             /* BCD, 12 h */
	CHECK_EQ(rd(VRTC_HOURS, BASE), 0x90);                /* 10 PM */
	wr(VRTC_REG_B, VRTC_B_DM, BASE);                     /* binary, 12 h */
	CHECK_EQ(rd(VRTC_HOURS, BASE), 0x8a);
	setup_at(1700006400, 16 * MIB);                      /* 00:00:00 */
	wr(VRTC_REG_B, 0, BASE);
	CHECK_EQ(rd(VRTC_HOURS, BASE), 0x12);                /* 12 AM */
	CHECK_EQ(rd(VRTC_HOURS, BASE + 3600 * SEC), 0x01);
	setup_at(1700049600, 16 * MIB);                      /* 12:00:00 */
	wr(VRTC_REG_B, 0, BASE);
	CHECK_EQ(rd(VRTC_HOURS, BASE), 0x92);                /* 12 PM */
	CHECK_EQ(rd(VRTC_HOURS, BASE + 3600 * SEC), 0x81);
	/* Setting the time in 12 h mode: 11 PM BCD. */
	wr(VRTC_HOURS, 0x91, BASE);
	CHECK_EQ(rd(VRTC_HOURS, BASE), 0x91);
	wr(VRTC_REG_B, VRTC_B_24H, BASE);
	CHECK_EQ(rd(VRTC_HOURS, BASE), 0x23);
	wr(VRTC_REG_B, 0, BASE);
	wr(VRTC_HOURS, 0x12, BASE);                          /* 12 AM = 00 */
	wr(VRTC_REG_B, VRTC_B_24H, BASE);
	CHECK_EQ(rd(VRTC_HOURS, BASE), 0x00);
}

static void test_uip(void)
{
	setup();
	CHECK_EQ(rd(VRTC_REG_A, BASE + SEC / 2) & VRTC_A_UIP, 0);
	CHECK_EQ(rd(VRTC_REG_A, BASE + SEC - 300 * US) & VRTC_A_UIP, 0);
	CHECK(rd(VRTC_REG_A, BASE + SEC - 240 * US) & VRTC_A_UIP);
	CHECK(rd(VRTC_REG_A, BASE + 7 * SEC - 1) & VRTC_A_UIP);
	CHECK_EQ(rd(VRTC_REG_A, BASE + 7 * SEC) & VRTC_A_UIP, 0);
	CHECK_EQ(rd(VRTC_REG_A, BASE + 7 * SEC + 1 * US) & VRTC_A_UIP, 0);
	/* The time during UIP is still the old second. */
	CHECK_EQ(rd(VRTC_SECONDS, BASE + 8 * SEC - 100 * US), 0x27);
	/* UIP is a read-only bit; A keeps the rest. */
	wr(VRTC_REG_A, 0xa3, BASE + SEC / 2);
	CHECK_EQ(rd(VRTC_REG_A, BASE + SEC / 2), 0x23);
	/* Never while SET. */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_SET, BASE + 9 * SEC - 100 * US);
	CHECK_EQ(rd(VRTC_REG_A, BASE + 9 * SEC - 100 * US) & VRTC_A_UIP, 0);
	/* A guest's polling loop (Linux mc146818_get_time) sees UIP for ~244 us in each second. */
	{
		unsigned seen = 0;

		setup();
		for (uint64_t t = BASE + 11 * SEC - 2 * MS; t < BASE + 11 * SEC + 1 * MS; t += US)
			seen += !!(rd(VRTC_REG_A, t) & VRTC_A_UIP);
		CHECK(seen >= 244 && seen <= 245);
	}
}

static void test_register_c(void)
{
	setup();
	/* Flags rise with time whatever the enables, read C returns and clears them, no IRQ. */
	CHECK_EQ(rd(VRTC_REG_C, BASE + SEC / 2), VRTC_C_PF);   /* 1024 Hz periodic ran */
	CHECK_EQ(rd(VRTC_REG_C, BASE + SEC / 2), 0);
	CHECK_EQ(rd(VRTC_REG_C, BASE + SEC + 1), VRTC_C_PF | VRTC_C_UF);
	CHECK_EQ(rd(VRTC_REG_C, BASE + SEC + 2), 0);
	CHECK_EQ(raises, 0);
	CHECK_EQ(R.timer.deadline, 0);                          /* nothing enabled: no timer */
	/* C and D are read-only. */
	wr(VRTC_REG_C, 0xff, BASE + SEC + 3);
	wr(VRTC_REG_D, 0x00, BASE + SEC + 3);
	CHECK_EQ(rd(VRTC_REG_C, BASE + SEC + 4), 0);
	CHECK_EQ(rd(VRTC_REG_D, BASE + SEC + 4), VRTC_D_VRT);
	/* A flag already set when its enable comes on raises IRQ 8; clearing the enable lowers it. */
	CHECK_EQ(rd(VRTC_REG_C, BASE + 3 * SEC), VRTC_C_PF | VRTC_C_UF);
	(void)rd(VRTC_REG_A, BASE + 4 * SEC);                   /* flags latch at any access */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_UIE, BASE + 4 * SEC);
	CHECK(line);
	wr(VRTC_REG_B, VRTC_B_24H, BASE + 4 * SEC);
	CHECK(!line);
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_UIE, BASE + 4 * SEC);
	CHECK(line);
	CHECK_EQ(rd(VRTC_REG_C, BASE + 4 * SEC), VRTC_C_IRQF | VRTC_C_PF | VRTC_C_UF);
	CHECK(!line);
	CHECK_EQ(raises, 2);
	CHECK_EQ(lowers, 2);
}

static void test_periodic(void)
{
	uint64_t t = BASE + 3 * SEC, prev = 0, end;
	unsigned n = 0;

	setup();
	(void)rd(VRTC_REG_C, t);
	wr(VRTC_REG_A, 0x26, t);                             /* rate 6: 1024 Hz */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_PIE, t);
	CHECK(!line);
	CHECK(R.timer.deadline > t);
	CHECK(R.timer.deadline <= t + 976563);
	end = t + SEC;
	/* The guest's handler reads C at each interrupt: 1024 of them in a second, 976562.5 ns apart. */
	while (R.timer.deadline && R.timer.deadline <= end) {
		uint64_t d = R.timer.deadline;

		run_timer_to(d);
		CHECK(line);
		CHECK_EQ(R.timer.deadline, 0);                     /* one outstanding at a time */
		/* (the last edge is also the second's update: UF with it) */
		CHECK_EQ(rd(VRTC_REG_C, d + 2 * US) & ~VRTC_C_UF, VRTC_C_IRQF | VRTC_C_PF);
		CHECK(!line);
		if (prev)
			CHECK(d - prev == 976562 || d - prev == 976563);
		prev = d;
		n++;
	}
	CHECK_EQ(n, 1024);
	CHECK_EQ(raises, 1024);

	/* The guest stops reading C: one interrupt stays outstanding and the timer stops (no work). */
	t = R.timer.deadline;
	run_timer_to(t);
	CHECK(line);
	CHECK_EQ(R.timer.deadline, 0);
	/* Ten seconds later it reads C: one PF (coalesced), then the timer runs again. */
	CHECK_EQ(rd(VRTC_REG_C, t + 10 * SEC), VRTC_C_IRQF | VRTC_C_PF | VRTC_C_UF);
	CHECK(R.timer.deadline > t + 10 * SEC && R.timer.deadline <= t + 10 * SEC + 976563);
	/* A late timer (vCPU 0 away for a second) fires once. */
	run_timer_to(t + 11 * SEC);
	CHECK(line);
	CHECK_EQ(rd(VRTC_REG_C, t + 11 * SEC), VRTC_C_IRQF | VRTC_C_PF | VRTC_C_UF);

	/* Other rates: 2 Hz (RS 15), 256 Hz (RS 1), 8192 Hz (RS 3); RS 0 stops it. */
	{
		static const struct { uint8_t rs; unsigned per_sec; } rates[] = {
			{ 15, 2 }, { 1, 256 }, { 3, 8192 },
		};

		for (unsigned i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
			uint64_t s = BASE + (20 + i) * SEC;

			wr(VRTC_REG_A, 0x20 | rates[i].rs, s);
			(void)rd(VRTC_REG_C, s);
			n = 0;
			while (R.timer.deadline && R.timer.deadline <= s + SEC) {
				uint64_t d = R.timer.deadline;

				run_timer_to(d);
				(void)rd(VRTC_REG_C, d);
				n++;
			}
			CHECK_EQ(n, rates[i].per_sec);
		}
		wr(VRTC_REG_A, 0x20, BASE + 30 * SEC);
		CHECK_EQ(R.timer.deadline, 0);
		(void)rd(VRTC_REG_C, BASE + 30 * SEC);
		CHECK_EQ(rd(VRTC_REG_C, BASE + 31 * SEC) & VRTC_C_PF, 0);
	}
}

static void test_update_ended(void)
{
	setup();
	wr(VRTC_REG_A, 0x20, BASE);                           /* no periodic flags, to keep C simple */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_UIE, BASE + SEC / 2);
	CHECK_EQ(R.timer.deadline, BASE + SEC);
	run_timer_to(BASE + SEC);
	CHECK(line);
	CHECK_EQ(rd(VRTC_REG_C, BASE + SEC + 5 * US), VRTC_C_IRQF | VRTC_C_UF);
	CHECK_EQ(rd(VRTC_SECONDS, BASE + SEC + 5 * US), 0x21);
	CHECK_EQ(R.timer.deadline, BASE + 2 * SEC);
	/* SET clears UIE and stops updates. */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_UIE | VRTC_B_SET, BASE + SEC + 10 * US);
	CHECK_EQ(rd(VRTC_REG_B, BASE + SEC + 10 * US), VRTC_B_24H | VRTC_B_SET);
	CHECK_EQ(R.timer.deadline, 0);
	wr(VRTC_REG_B, VRTC_B_24H, BASE + 5 * SEC);
	CHECK_EQ(rd(VRTC_REG_C, BASE + 5 * SEC), 0);           /* no update while SET */
}

static void test_alarm(void)
{
	setup();                                             /* 22:13:20 */
	wr(VRTC_REG_A, 0x20, BASE);
	wr(VRTC_HOURS_ALARM, 0x22, BASE);
	wr(VRTC_MINUTES_ALARM, 0x13, BASE);
	wr(VRTC_SECONDS_ALARM, 0x25, BASE);
	CHECK_EQ(rd(VRTC_SECONDS_ALARM, BASE), 0x25);
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_AIE, BASE);
	for (unsigned s = 1; s <= 4; s++) {
		run_timer_to(BASE + s * SEC);
		CHECK(!line);
	}
	run_timer_to(BASE + 5 * SEC);                        /* 22:13:25 */
	CHECK(line);
	CHECK_EQ(rd(VRTC_REG_C, BASE + 5 * SEC), VRTC_C_IRQF | VRTC_C_AF | VRTC_C_UF);
	run_timer_to(BASE + 6 * SEC);
	CHECK(!line);
	CHECK_EQ(rd(VRTC_REG_C, BASE + 6 * SEC), VRTC_C_UF);
	/* Don't-care hours and minutes: every minute at second 30 (22:13:30, 22:14:30). */
	wr(VRTC_HOURS_ALARM, 0xc0, BASE + 6 * SEC);
	wr(VRTC_MINUTES_ALARM, 0xff, BASE + 6 * SEC);
	wr(VRTC_SECONDS_ALARM, 0x30, BASE + 6 * SEC);
	raises = 0;
	for (unsigned s = 7; s <= 80; s++) {
		run_timer_to(BASE + s * SEC);
		if (line)
			CHECK_EQ(rd(VRTC_REG_C, BASE + s * SEC), VRTC_C_IRQF | VRTC_C_AF | VRTC_C_UF);
		CHECK_EQ(line, false);
	}
	CHECK_EQ(raises, 2);
	/* Polled (AIE off) across a long gap: the alarm time passed within it, or did not. */
	wr(VRTC_REG_B, VRTC_B_24H, BASE + 100 * SEC);
	(void)rd(VRTC_REG_C, BASE + 100 * SEC);
	wr(VRTC_HOURS_ALARM, 0x03, BASE + 100 * SEC);
	wr(VRTC_MINUTES_ALARM, 0x00, BASE + 100 * SEC);
	wr(VRTC_SECONDS_ALARM, 0x00, BASE + 100 * SEC);
	CHECK_EQ(rd(VRTC_REG_C, BASE + 3600 * SEC), VRTC_C_UF);          /* 23:13: not yet 03:00 */
	CHECK_EQ(rd(VRTC_REG_C, BASE + 6 * 3600 * SEC), VRTC_C_UF | VRTC_C_AF); /* 04:13 next day */
	CHECK_EQ(rd(VRTC_REG_C, BASE + 400 * 86400 * SEC), VRTC_C_UF | VRTC_C_AF); /* a year on */
	/* An impossible alarm (minute 0x61) never matches, even over days. */
	wr(VRTC_MINUTES_ALARM, 0x61, BASE + 400 * 86400 * SEC);
	CHECK_EQ(rd(VRTC_REG_C, BASE + 403 * 86400 * SEC), VRTC_C_UF);
	/* Alarm in binary 12 h mode: 10:13:25 PM = hours 0x8a. */
	setup();
	wr(VRTC_REG_A, 0x20, BASE);
	wr(VRTC_REG_B, VRTC_B_DM | VRTC_B_AIE, BASE);
	wr(VRTC_HOURS_ALARM, 0x8a, BASE);
	wr(VRTC_MINUTES_ALARM, 13, BASE);
	wr(VRTC_SECONDS_ALARM, 22, BASE);
	run_timer_to(BASE + SEC);
	CHECK(!line);
	run_timer_to(BASE + 2 * SEC);
	CHECK(line);
}

static void test_set_time(void)
{
	uint64_t t = BASE + SEC / 2;

	setup();
	/* Linux's mc146818_set_time: SET, the registers in BCD, then B back without SET. */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_SET, t);
	CHECK_EQ(rd(VRTC_SECONDS, t), 0x20);                 /* the time when SET went up */
	wr(VRTC_YEAR, 0x30, t);
	wr(VRTC_MONTH, 0x01, t);
	wr(VRTC_DAY_OF_MONTH, 0x01, t);
	wr(VRTC_HOURS, 0x00, t);
	wr(VRTC_MINUTES, 0x00, t);
	wr(VRTC_SECONDS, 0x00, t);
	wr(VRTC_CENTURY, 0x20, t);
	/* Frozen and as written while SET. */
	CHECK_EQ(rd(VRTC_YEAR, t + 5 * SEC), 0x30);
	CHECK_EQ(rd(VRTC_SECONDS, t + 5 * SEC), 0x00);
	CHECK_EQ(rd(VRTC_DAY_OF_WEEK, t + 5 * SEC), 3);       /* not written: the snapshot's */
	wr(VRTC_REG_B, VRTC_B_24H, t + 5 * SEC);
	CHECK_EQ(vrtc_seconds(&R, t + 5 * SEC), 1893456000); /* 2030-01-01 00:00:00 */
	CHECK_EQ(rd(VRTC_DAY_OF_WEEK, t + 5 * SEC), 3);       /* a Tuesday, from the date */
	CHECK_EQ(rd(VRTC_SECONDS, t + 7 * SEC), 0x02);
	CHECK_EQ(rd(VRTC_YEAR, t + 7 * SEC), 0x30);
	/* Without SET: one register at once, the others keep running. */
	wr(VRTC_MINUTES, 0x45, t + 7 * SEC);
	CHECK_EQ(rd(VRTC_MINUTES, t + 8 * SEC), 0x45);
	CHECK_EQ(rd(VRTC_SECONDS, t + 8 * SEC), 0x03);
	CHECK_EQ(vrtc_seconds(&R, t + 8 * SEC), 1893456000 + 45 * 60 + 3);
	/* Binary, and out-of-range values clamped, a day past the month rolling over (Feb 30). */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_DM | VRTC_B_SET, t + 8 * SEC);
	wr(VRTC_YEAR, 25, t + 8 * SEC);
	wr(VRTC_MONTH, 2, t + 8 * SEC);
	wr(VRTC_DAY_OF_MONTH, 30, t + 8 * SEC);
	wr(VRTC_HOURS, 77, t + 8 * SEC);
	wr(VRTC_MINUTES, 0, t + 8 * SEC);
	wr(VRTC_SECONDS, 0, t + 8 * SEC);
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_DM, t + 8 * SEC);
	CHECK_EQ(rd(VRTC_MONTH, t + 8 * SEC), 3);
	CHECK_EQ(rd(VRTC_DAY_OF_MONTH, t + 8 * SEC), 2);
	CHECK_EQ(rd(VRTC_HOURS, t + 8 * SEC), 23);
	CHECK_EQ(rd(VRTC_YEAR, t + 8 * SEC), 25);
	CHECK_EQ(rd(VRTC_CENTURY, t + 8 * SEC), 20);
}

static void test_memory_size(void)
{
	setup_at(T0, 128 * MIB);
	CHECK_EQ(rd(0x15, BASE), 0x80);                      /* 640 KiB */
	CHECK_EQ(rd(0x16, BASE), 0x02);
	CHECK_EQ(rd(0x17, BASE), 0x00);                      /* 63 MiB = 64512 KiB = 0xFC00 */
	CHECK_EQ(rd(0x18, BASE), 0xfc);
	CHECK_EQ(rd(0x30, BASE), 0x00);
	CHECK_EQ(rd(0x31, BASE), 0xfc);
	CHECK_EQ(rd(0x34, BASE), 0x00);                      /* 112 MiB / 64 KiB = 0x0700 */
	CHECK_EQ(rd(0x35, BASE), 0x07);
	CHECK_EQ(rd(0x2e, BASE) << 8 | rd(0x2f, BASE), 0x80 + 0x02 + 0xfc);
	setup_at(T0, 3072 * MIB);                            /* all below the hole at 3 GiB */
	CHECK_EQ(rd(0x34, BASE) | rd(0x35, BASE) << 8, 0xbf00); /* 3056 MiB / 64 KiB */
	CHECK_EQ(rd(0x5b, BASE) | rd(0x5c, BASE) << 8 | rd(0x5d, BASE) << 16, 0);
	setup_at(T0, 4096 * MIB);                            /* 3 GiB below the hole, 1 GiB from 4 GiB */
	CHECK_EQ(rd(0x17, BASE), 0x00);
	CHECK_EQ(rd(0x18, BASE), 0xfc);
	CHECK_EQ(rd(0x34, BASE), 0x00);                      /* (3072 - 16) MiB / 64 KiB = 0xBF00 */
	CHECK_EQ(rd(0x35, BASE), 0xbf);
	CHECK_EQ(rd(0x5b, BASE) | rd(0x5c, BASE) << 8 | rd(0x5d, BASE) << 16, 0x4000); /* 1 GiB / 64 KiB */
	setup_at(T0, 16 * MIB);
	CHECK_EQ(rd(0x17, BASE), 0x00);                      /* 15 MiB = 0x3C00 KiB */
	CHECK_EQ(rd(0x18, BASE), 0x3c);
	CHECK_EQ(rd(0x30, BASE) | rd(0x31, BASE) << 8, 0x3c00);
	CHECK_EQ(rd(0x34, BASE) | rd(0x35, BASE) << 8, 0);
	setup_at(T0, 64 * 1024 * MIB);                       /* 64 GiB: 61 GiB of it from 4 GiB */
	CHECK_EQ(rd(0x34, BASE) | rd(0x35, BASE) << 8, 0xbf00);
	CHECK_EQ(rd(0x5b, BASE) | rd(0x5c, BASE) << 8 | rd(0x5d, BASE) << 16, 0xf4000);
	/* The general-purpose bytes are the guest's to use. */
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != VRTC_CENTURY)
			wr(i, (uint8_t)(i ^ 0x5a), BASE);
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != VRTC_CENTURY)
			CHECK_EQ(rd(i, BASE), (uint8_t)(i ^ 0x5a));
}

static void test_index_nmi(void)
{
	struct vdev_access a = { VRTC_PORT_INDEX, 2, false, 0, 0 };

	setup();
	CHECK(!vrtc_nmi_masked(&R));
	outb(VRTC_PORT_INDEX, 0x80 | VRTC_REG_D, BASE);       /* NMIs off, register D */
	CHECK(vrtc_nmi_masked(&R));
	CHECK_EQ(inb(VRTC_PORT_DATA, BASE), VRTC_D_VRT);
	outb(VRTC_PORT_INDEX, VRTC_SECONDS, BASE);           /* NMIs on */
	CHECK(!vrtc_nmi_masked(&R));
	CHECK_EQ(inb(VRTC_PORT_DATA, BASE), 0x20);
	CHECK_EQ(inb(VRTC_PORT_INDEX, BASE), 0xff);          /* write-only port */
	/* Index 0xFF selects 0x7F (7 bits) and masks NMIs. */
	outb(VRTC_PORT_INDEX, 0xff, BASE);
	outb(VRTC_PORT_DATA, 0x77, BASE);
	CHECK(vrtc_nmi_masked(&R));
	CHECK_EQ(rd(0x7f, BASE), 0x77);
	/* A 16-bit IN from 0x70: port 0x70 (0xFF), then 0x71 (the selected register). */
	outb(VRTC_PORT_INDEX, VRTC_MINUTES, BASE);
	CHECK_EQ(vrtc_access(&R, &a, BASE), VDEV_DONE);
	CHECK_EQ(a.value, 0x13ff);
}

static uint64_t fake_tsc;

static uint64_t fake_clock(void *ctx)
{
	CHECK(ctx == &fake_tsc);
	return fake_tsc;
}

static void test_register_bus(void)
{
	static struct vdev_bus bus;
	struct vdev_access a = { VRTC_PORT_INDEX, 1, true, VRTC_SECONDS, 0 };

	setup();
	memset(&bus, 0, sizeof(bus));
	vrtc_set_clock(&R, fake_clock, &fake_tsc);
	CHECK_EQ(vrtc_register(&R, &bus), 0);
	CHECK_EQ(bus.npio, 1);
	CHECK_EQ(bus.pio[0].base, 0x70);
	CHECK_EQ(bus.pio[0].len, 2);
	CHECK_EQ(bus.ntimers, 1);
	CHECK(bus.timers[0] == &R.timer);
	fake_tsc = BASE + 9 * SEC;
	CHECK_EQ(bus.pio[0].handler(bus.pio[0].dev, &a), VDEV_DONE);
	a = (struct vdev_access){ VRTC_PORT_DATA, 1, false, 0, 0 };
	CHECK_EQ(bus.pio[0].handler(bus.pio[0].dev, &a), VDEV_DONE);
	CHECK_EQ(a.value, 0x29);
	/* The bus's timer pass drives the update-ended interrupt. */
	wr(VRTC_REG_B, VRTC_B_24H | VRTC_B_UIE, fake_tsc);
	CHECK_EQ(vdev_timers_update(&bus, BASE + 10 * SEC), 0);
	CHECK(line);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_read_bcd_binary);
	RUN(test_12h);
	RUN(test_uip);
	RUN(test_register_c);
	RUN(test_periodic);
	RUN(test_update_ended);
	RUN(test_alarm);
	RUN(test_set_time);
	RUN(test_memory_size);
	RUN(test_index_nmi);
	RUN(test_register_bus);
	return unit_report(argv[0]);
}
