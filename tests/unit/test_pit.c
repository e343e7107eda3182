/* Host unit tests of vdev/pit.c: the 8254 and port 0x61 on a device bus against a fake guest TSC,
 * programmed as Linux (PIT clock events, pit_calibrate_tsc, quick_pit_calibrate) and the
 * hypervisor's own arch/x86/time.c program them. */
#include <stdint.h>
#include <string.h>
#include "vdev/pit.h"
#include "vdev/vdev.h"
#include "tests/unit/fake_bus.h"
#include "tests/unit/unit.h"

#define KHZ   2000000ull           /* a 2 GHz guest TSC */
#define HZ    (KHZ * 1000)
#define T0    1000000000000ull     /* the fake TSC starts far from 0, as a real one does */

static struct vpit pit;
static uint64_t now;
static unsigned irqs, lowers;
static uint64_t irq_at[64];
static bool level;

static uint64_t fake_clock(void *ctx)
{
	CHECK(ctx == &pit);
	return now;
}

static void irq_set(void *ctx, unsigned gsi, bool l)
{
	CHECK(ctx == &pit);
	CHECK_EQ(gsi, 0);
	if (l && !level && irqs < 64)
		irq_at[irqs] = now;
	if (l && !level)
		irqs++;
	if (!l && level)
		lowers++;
	level = l;
}

/* Absolute PIT ticks at TSC `tsc`, and the first TSC of tick `k` (the reference, in 128 bits). */
static uint64_t ticks(uint64_t tsc)
{
	return (unsigned __int128)tsc * VPIT_HZ / HZ;
}

static uint64_t tsc_of(uint64_t k)
{
	return ((unsigned __int128)k * HZ + VPIT_HZ - 1) / VPIT_HZ;
}

static uint16_t inw_lohi(uint16_t port)
{
	uint8_t lo = inb(port);

	return lo | inb(port) << 8;
}

/* Runs the device timers as the VMX layer would at `t`; returns the next deadline. */
static uint64_t run_timers(uint64_t t)
{
	now = t;
	return vdev_timers_update(&bus, now);
}

static void setup(void)
{
	struct irq_line l = { irq_set, &pit, 0 };

	vdev_bus_init(&bus, "t", NULL);
	vpit_init(&pit, KHZ, l);
	vpit_set_clock(&pit, fake_clock, &pit);
	CHECK_EQ(vpit_register(&pit, &bus), 0);
	now = T0;
	irqs = lowers = 0;
	level = false;
	memset(irq_at, 0, sizeof(irq_at));
}

static void test_time_base(void)
{
	static const uint64_t khz[] = { 1000, 1193, 2000000, 2893123, 3999999, 5000000 };
	static const uint64_t tscs[] = { 0, 1, 1675, 1676, 999999999, T0, 1ull << 50, 1ull << 60 };

	/* The device's floor/ceil conversions against 128-bit ones, through the count read-back of a
	 * running mode 2 counter (count = N - elapsed % N). */
	for (unsigned i = 0; i < sizeof(khz) / sizeof(khz[0]); i++) {
		for (unsigned j = 0; j < sizeof(tscs) / sizeof(tscs[0]); j++) {
			struct irq_line l = { irq_set, &pit, 0 };
			uint64_t hz = khz[i] * 1000, t0 = tscs[j], t1 = t0 + hz / 7 + 12345;
			uint64_t e = (unsigned __int128)t1 * VPIT_HZ / hz - (unsigned __int128)t0 * VPIT_HZ / hz;
			struct vdev_access a = { .addr = 0x43, .size = 1, .write = true, .value = 0x34 };

			vpit_init(&pit, khz[i], l);
			vpit_io(&pit, &a, t0);
			a.addr = 0x40;
			a.value = 0;                 /* N = 65536 */
			vpit_io(&pit, &a, t0);
			vpit_io(&pit, &a, t0);
			a.write = false;
			vpit_io(&pit, &a, t1);
			uint64_t lo = a.value;
			vpit_io(&pit, &a, t1);
			CHECK_EQ(lo | a.value << 8, (65536 - e % 65536) % 65536);
			CHECK(pit.timer.deadline >= t0);
		}
	}
}

static void test_access_modes(void)
{
	setup();
	/* Channel 2 with its gate off: mode 0 does not count, the values stand still. */
	outb(0x43, 0x90);                    /* channel 2, LSB only, mode 0 */
	outb(0x42, 0x34);
	CHECK_EQ(inb(0x42), 0x34);
	CHECK_EQ(inb(0x42), 0x34);
	outb(0x43, 0xd8);                    /* read-back: count of channel 2 */
	CHECK_EQ(inb(0x42), 0x34);
	outb(0x43, 0xa0);                    /* MSB only */
	outb(0x42, 0x12);
	CHECK_EQ(inb(0x42), 0x12);
	CHECK_EQ(inb(0x42), 0x12);
	outb(0x43, 0xd8);
	CHECK_EQ(inb(0x42), 0x12);           /* the MSB of 0x1200 */
	outb(0x43, 0xb0);                    /* LSB then MSB */
	outb(0x42, 0x78);
	outb(0x42, 0x56);
	CHECK_EQ(inb(0x42), 0x78);
	CHECK_EQ(inb(0x42), 0x56);
	CHECK_EQ(inb(0x42), 0x78);
	CHECK_EQ(inb(0x42), 0x56);
	/* A control word resets the flip-flops: a half-read count starts over. */
	CHECK_EQ(inb(0x42), 0x78);
	outb(0x43, 0xb0);
	outb(0x42, 0x22);
	outb(0x42, 0x11);
	CHECK_EQ(inw_lohi(0x42), 0x1122);
	/* The control port is write-only. */
	CHECK_EQ(inb(0x43), 0xff);
	/* A word access is two byte cycles; a dword reaches past port 0x43 into nothing. */
	struct vdev_access a = { .addr = 0x42, .size = 2 };
	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
	CHECK_EQ(a.value, 0xff22);
}

static void test_latch(void)
{
	setup();
	outb(0x43, 0x34);                    /* channel 0, LSB/MSB, mode 2 (Linux's periodic tick) */
	outb(0x40, 1000 & 0xff);
	outb(0x40, 1000 >> 8);
	uint64_t start = ticks(now);
	now = tsc_of(start + 100);
	outb(0x43, 0x00);                    /* latch channel 0 */
	now = tsc_of(start + 300);
	outb(0x43, 0x00);                    /* ignored: the first latch is not read yet */
	CHECK_EQ(inw_lohi(0x40), 900);
	CHECK_EQ(inw_lohi(0x40), 700);       /* live again */
	/* A latch read half-way holds its MSB; the next latch waits until it was read. */
	outb(0x43, 0x00);
	CHECK_EQ(inb(0x40), 700 & 0xff);
	now = tsc_of(start + 400);
	CHECK_EQ(inb(0x40), 700 >> 8);
	CHECK_EQ(inw_lohi(0x40), 600);
	/* Latches of channels 1 and 2 through 0x43. */
	outb(0x43, 0x74);                    /* channel 1, mode 2 */
	outb(0x41, 0x10);
	outb(0x41, 0x00);
	outb(0x43, 0x40);
	now = tsc_of(ticks(now) + 5);
	CHECK_EQ(inw_lohi(0x41), 0x10);
	CHECK_EQ(inw_lohi(0x41), 0x10 - 5);
}

static void test_read_back(void)
{
	setup();
	outb(0x43, 0x34);
	CHECK_EQ(inb(0x40) | 0, 0);
	outb(0x43, 0xe2);                    /* status of channel 0 only: null count after the CW */
	CHECK_EQ(inb(0x40), 0x40 | 0x80 | 0x34);  /* OUT high (mode 2), NULL, LSB/MSB, mode 2 */
	outb(0x40, 0x00);
	outb(0x40, 0x10);                    /* 4096 */
	uint64_t start = ticks(now);
	now = tsc_of(start + 96);
	outb(0x43, 0xc2);                    /* count and status of channel 0 */
	now = tsc_of(start + 500);
	CHECK_EQ(inb(0x40), 0x80 | 0x34);    /* status first, count loaded */
	CHECK_EQ(inw_lohi(0x40), 4000);
	/* Several counters at once; the second status latch before reading is ignored. */
	outb(0x43, 0xb0);                    /* channel 2 mode 0, gate off */
	outb(0x42, 0x00);
	outb(0x42, 0x02);
	outb(0x43, 0xda);                    /* counts of 0 and 2, no status */
	outb(0x43, 0xe8);                    /* status of 2, after its count was latched */
	outb(0x43, 0xe8);
	CHECK_EQ(inb(0x42), 0x30);           /* OUT low (mode 0), loaded, LSB/MSB, mode 0 */
	CHECK_EQ(inw_lohi(0x42), 0x200);
	CHECK_EQ(inw_lohi(0x40), 4096 - 500);
	/* Modes 6 and 7 are 2 and 3; BCD shows in the status. */
	outb(0x43, 0x7d);                    /* channel 1, LSB/MSB, mode 6, BCD */
	outb(0x43, 0xe4);                    /* status of 1 */
	CHECK_EQ(inb(0x41), 0x80 | 0x40 | 0x30 | 0x04 | 0x01);
}

/* Linux's PIT clock event in one-shot mode: 0x30, then LSB and MSB of each delta. */
static void test_mode0_timing(void)
{
	setup();
	CHECK_EQ(run_timers(now), 0);        /* no count: no timer */
	outb(0x43, 0x30);
	outb(0x40, 1000 & 0xff);
	CHECK_EQ(pit.timer.deadline, 0);
	outb(0x40, 1000 >> 8);
	uint64_t start = ticks(now), due = tsc_of(start + 1000);
	CHECK_EQ(run_timers(now), due);
	CHECK_EQ(run_timers(due - 1), due);
	CHECK_EQ(irqs, 0);
	now = tsc_of(start + 400);
	CHECK_EQ(inw_lohi(0x40), 600);
	now = tsc_of(start + 401);
	CHECK_EQ(inw_lohi(0x40), 599);
	CHECK_EQ(run_timers(due), 0);        /* one interrupt, then none */
	CHECK_EQ(irqs, 1);
	CHECK_EQ(lowers, 1);                 /* pulsed */
	CHECK_EQ(irq_at[0], due);
	CHECK_EQ(run_timers(due + 100 * HZ / 1000), 0);
	CHECK_EQ(irqs, 1);
	/* After terminal count the counter wraps and goes on down. */
	now = tsc_of(start + 1010);
	CHECK_EQ(inw_lohi(0x40), 65536 - 10);
	/* The next delta: a new count re-arms. */
	outb(0x40, 50);
	outb(0x40, 0);
	start = ticks(now);
	CHECK_EQ(run_timers(now), tsc_of(start + 50));
	CHECK_EQ(run_timers(tsc_of(start + 50)), 0);
	CHECK_EQ(irqs, 2);
	/* A count rewritten before it expires: only the new one fires. */
	outb(0x40, 100);
	outb(0x40, 0);
	start = ticks(now);
	now = tsc_of(start + 60);
	outb(0x40, 100);
	outb(0x40, 0);
	uint64_t start2 = ticks(now);
	CHECK_EQ(run_timers(tsc_of(start + 100)), tsc_of(start2 + 100));
	CHECK_EQ(irqs, 2);
	CHECK_EQ(run_timers(tsc_of(start2 + 100)), 0);
	CHECK_EQ(irqs, 3);
	/* A timer that runs late still interrupts for an edge that passed before reprogramming. */
	outb(0x40, 10);
	outb(0x40, 0);
	now = tsc_of(ticks(now) + 20);
	outb(0x43, 0x30);
	CHECK_EQ(irqs, 4);
	CHECK_EQ(pit.timer.deadline, 0);
}

/* Linux's periodic PIT tick: 0x34, LATCH = (1193182 + HZ/2) / HZ. */
static void test_mode2_timing(void)
{
	const unsigned n = (VPIT_HZ + 125) / 250;   /* HZ = 250: 4773 */

	setup();
	outb(0x43, 0x34);
	outb(0x40, n & 0xff);
	outb(0x40, n >> 8);
	uint64_t start = ticks(now), next = run_timers(now);

	CHECK_EQ(next, tsc_of(start + n));
	for (unsigned k = 1; k <= 20; k++) {
		CHECK_EQ(run_timers(next - 1), next);
		CHECK_EQ(irqs, k - 1);
		next = run_timers(next);
		CHECK_EQ(irqs, k);
		CHECK_EQ(irq_at[k - 1], tsc_of(start + (uint64_t)k * n));
		CHECK_EQ(next, tsc_of(start + (uint64_t)(k + 1) * n));
	}
	CHECK_EQ(pit.lost, 0);
	/* Count read-back within a period: N down to 1, decreasing. */
	uint16_t prev = 0xffff;
	for (unsigned i = 0; i < n; i += 97) {
		now = tsc_of(start + 20ull * n + i);
		uint16_t c = inw_lohi(0x40);

		CHECK_EQ(c, n - i);
		CHECK(c < prev);
		prev = c;
	}
	/* OUT: low for the one tick before the reload (status bit 7). */
	now = tsc_of(start + 21ull * n - 1);
	outb(0x43, 0xe2);
	CHECK_EQ(inb(0x40) & 0x80, 0);
	now = tsc_of(start + 21ull * n);
	outb(0x43, 0xe2);
	CHECK_EQ(inb(0x40) & 0x80, 0x80);
	/* Stopping it: a new control word, no more interrupts, but the edge at 21 N that passed
	 * before it (its timer had not run yet) is not lost. */
	outb(0x43, 0x34);
	CHECK_EQ(irqs, 21);
	CHECK_EQ(run_timers(now + HZ), 0);
	CHECK_EQ(irqs, 21);
}

/* The BIOS's 18.2 Hz square wave: 0x36, count 0 (65536). */
static void test_mode3_timing(void)
{
	setup();
	outb(0x43, 0x36);
	outb(0x40, 0);
	outb(0x40, 0);
	uint64_t start = ticks(now), next = run_timers(now);

	CHECK_EQ(next, tsc_of(start + 65536));
	for (unsigned k = 1; k <= 5; k++) {
		/* High for the first half, low for the second; the count steps by 2 in each. */
		now = tsc_of(start + (k - 1) * 65536ull + 10);
		outb(0x43, 0xc2);
		CHECK_EQ(inb(0x40) & 0x80, 0x80);
		CHECK_EQ(inw_lohi(0x40), 65536 - 20);
		now = tsc_of(start + (k - 1) * 65536ull + 32768 + 10);
		outb(0x43, 0xc2);
		CHECK_EQ(inb(0x40) & 0x80, 0);
		CHECK_EQ(inw_lohi(0x40), 65536 - 20);
		CHECK_EQ(irqs, k - 1);
		next = run_timers(next);
		CHECK_EQ(irqs, k);                /* on the rising edge */
		CHECK_EQ(irq_at[k - 1], tsc_of(start + k * 65536ull));
	}
	/* An odd count: high (N+1)/2, low (N-1)/2. */
	outb(0x43, 0x36);
	outb(0x40, 5);
	outb(0x40, 0);
	start = ticks(now);
	bool out[10];
	for (unsigned i = 0; i < 10; i++) {
		now = tsc_of(start + i);
		outb(0x43, 0xe2);
		out[i] = inb(0x40) & 0x80;
	}
	CHECK(out[0] && out[1] && out[2] && !out[3] && !out[4] && out[5] && out[7] && !out[8]);
	CHECK_EQ(run_timers(tsc_of(start + 5)), tsc_of(start + 10));
}

/* With a tiny period, a late timer raises once and skips ahead: bounded work per callback. */
static void test_coalescing(void)
{
	setup();
	outb(0x43, 0x34);
	outb(0x40, 2);
	outb(0x40, 0);
	uint64_t start = ticks(now);
	uint64_t next = run_timers(tsc_of(start + 1001));

	CHECK_EQ(irqs, 1);
	CHECK_EQ(pit.lost, 499);
	CHECK_EQ(next, tsc_of(start + 1002));
	CHECK(next > now);
	next = run_timers(tsc_of(start + 1000000));   /* a long pause */
	CHECK_EQ(irqs, 2);
	CHECK_EQ(next, tsc_of(start + 1000002));
	/* Count 1 (illegal in mode 2 on the chip): still one interrupt per callback. */
	outb(0x40, 1);
	outb(0x40, 0);
	start = ticks(now);
	next = run_timers(now + HZ);            /* one second: 1193182 periods */
	CHECK_EQ(irqs, 3);
	CHECK(next > now);
	CHECK(next - now <= HZ / VPIT_HZ + 1);
	/* Mode 3, count 4: same. */
	outb(0x43, 0x36);
	outb(0x40, 4);
	outb(0x40, 0);
	next = run_timers(now + HZ / 10);
	CHECK_EQ(irqs, 4);
	CHECK(next > now);
}

/* Linux's pit_calibrate_tsc() and the hypervisor's arch/x86/time.c: channel 2, mode 0, poll 0x61
 * bit 5. */
static void test_ch2_calibration(void)
{
	const unsigned latch = VPIT_HZ / (1000 / 50);   /* Linux: CAL_MS 50 */

	setup();
	CHECK_EQ(inb(0x61) & 0x23, 0);       /* gate off, speaker off, OUT2 low */
	outb(0x61, (inb(0x61) & ~0x02) | 0x01);
	outb(0x43, 0xb0);
	outb(0x42, latch & 0xff);
	outb(0x42, latch >> 8);
	uint64_t start = ticks(now), t = now, polls = 0;

	while (!(inb(0x61) & 0x20) && polls < 10000000) {
		t += 997;                        /* a few hundred cycles per exit */
		now = t;
		polls++;
	}
	CHECK(ticks(now) >= start + latch);
	CHECK(ticks(now - 997) < start + latch);
	CHECK_EQ(inb(0x61) & 0x01, 0x01);
	CHECK_EQ(irqs, 0);                   /* channel 2 raises nothing */
	/* Gate off: the output stays, a new count stops... and gate off during a count pauses it. */
	outb(0x43, 0xb0);
	CHECK_EQ(inb(0x61) & 0x20, 0);       /* mode 0 control word: OUT low */
	outb(0x42, 100);
	outb(0x42, 0);
	start = ticks(now);
	now = tsc_of(start + 40);
	outb(0x61, 0x00);                    /* gate off at 40 */
	now = tsc_of(start + 500);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	CHECK_EQ(inw_lohi(0x42), 60);
	outb(0x61, 0x01);                    /* on again: 60 more */
	uint64_t resume = ticks(now);
	now = tsc_of(resume + 59);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	now = tsc_of(resume + 60);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);
	outb(0x61, 0x00);
}

/* Linux's quick_pit_calibrate(): count 0xffff in mode 0, read LSB then MSB of the live counter,
 * waiting for the MSB to step down. */
static void test_ch2_quick_calibrate(void)
{
	setup();
	outb(0x61, (inb(0x61) & ~0x02) | 0x01);
	outb(0x43, 0xb0);
	outb(0x42, 0xff);
	outb(0x42, 0xff);
	uint64_t start = ticks(now);
	unsigned expect = 0xff, reads = 0;

	for (unsigned i = 0; i < 40000; i++) {
		now += 301;
		inb(0x42);                       /* LSB, ignored */
		unsigned msb = inb(0x42);
		reads += 2;
		uint64_t e = ticks(now) - start;

		CHECK_EQ(msb, ((0xffff - e) >> 8) & 0xff);
		CHECK(msb == expect || msb == expect - 1);
		expect = msb;
	}
	CHECK(expect < 0xff - 10);
	CHECK_EQ(reads, 80000);
}

static void test_port61(void)
{
	setup();
	outb(0x61, 0xff);
	CHECK_EQ(inb(0x61) & 0xcf, 0x0f);    /* bits 0-3 as written, 6-7 zero */
	outb(0x61, 0x02);
	CHECK_EQ(inb(0x61) & 0x0f, 0x02);
	/* Refresh: toggles every 18 ticks of guest time... */
	uint64_t base = (ticks(now) / 18 + 1) * 18;
	now = tsc_of(base);
	uint8_t r0 = inb(0x61) & 0x10;
	now = tsc_of(base + 17);
	CHECK_EQ(inb(0x61) & 0x10, r0);
	now = tsc_of(base + 18);
	CHECK_EQ(inb(0x61) & 0x10, r0 ^ 0x10);
	now = tsc_of(base + 36);
	CHECK_EQ(inb(0x61) & 0x10, r0);
	/* ... and on each read that finds no time passed: a spin on it never hangs. */
	for (unsigned i = 0; i < 8; i++) {
		uint8_t a = inb(0x61) & 0x10, b = inb(0x61) & 0x10;

		CHECK(a != b);
	}
	/* Without a clock, too. */
	vpit_set_clock(&pit, NULL, NULL);
	uint8_t a = inb(0x61) & 0x10;
	CHECK(a != (inb(0x61) & 0x10));
	vpit_set_clock(&pit, fake_clock, &pit);
}

/* Channel 2 in the gate-driven modes 1 and 5, mode 4, and mode 2 with its gate. */
static void test_ch2_modes(void)
{
	setup();
	/* Mode 1: the gate's rising edge starts a low pulse N ticks long; retriggerable. */
	outb(0x43, 0xb2);
	outb(0x42, 10);
	outb(0x42, 0);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);    /* high until triggered */
	outb(0x43, 0xe8);
	CHECK_EQ(inb(0x42) & 0x40, 0x40);    /* null count until the trigger */
	outb(0x61, 0x01);
	uint64_t s = ticks(now);
	now = tsc_of(s + 9);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	outb(0x61, 0x00);                    /* gate low: no effect in mode 1 */
	now = tsc_of(s + 10);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);
	outb(0x61, 0x01);                    /* retrigger */
	s = ticks(now);
	now = tsc_of(s + 5);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	CHECK_EQ(inw_lohi(0x42), 5);
	outb(0x61, 0x00);

	/* Mode 4: OUT low for one tick at terminal count, counting only with the gate high. */
	outb(0x43, 0xb8);
	outb(0x61, 0x01);
	outb(0x42, 20);
	outb(0x42, 0);
	s = ticks(now);
	now = tsc_of(s + 19);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);
	now = tsc_of(s + 20);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	now = tsc_of(s + 21);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);

	/* Mode 5: like 4, started by the gate's rising edge. */
	outb(0x61, 0x00);
	outb(0x43, 0xba);
	outb(0x42, 20);
	outb(0x42, 0);
	now = tsc_of(ticks(now) + 100);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);
	outb(0x61, 0x01);
	s = ticks(now);
	now = tsc_of(s + 20);
	CHECK_EQ(inb(0x61) & 0x20, 0);

	/* Mode 2 with the gate: low stops it with OUT high, the rising edge reloads. */
	outb(0x43, 0xb4);
	outb(0x42, 10);
	outb(0x42, 0);
	s = ticks(now);
	now = tsc_of(s + 9);
	CHECK_EQ(inb(0x61) & 0x20, 0);
	outb(0x61, 0x00);
	CHECK_EQ(inb(0x61) & 0x20, 0x20);
	CHECK_EQ(inw_lohi(0x42), 1);
	now = tsc_of(s + 100);
	CHECK_EQ(inw_lohi(0x42), 1);
	outb(0x61, 0x01);
	CHECK_EQ(inw_lohi(0x42), 10);
	CHECK_EQ(irqs, 0);
}

static void test_bcd(void)
{
	setup();
	outb(0x43, 0x31);                    /* channel 0, LSB/MSB, mode 0, BCD */
	outb(0x40, 0x00);
	outb(0x40, 0x10);                    /* 1000 */
	uint64_t s = ticks(now);
	now = tsc_of(s + 1);
	CHECK_EQ(inw_lohi(0x40), 0x0999);
	now = tsc_of(s + 999);
	CHECK_EQ(inw_lohi(0x40), 0x0001);
	now = tsc_of(s + 1001);
	CHECK_EQ(inw_lohi(0x40), 0x9999);    /* wraps within 0-9999 */
	CHECK_EQ(run_timers(now), 0);
	CHECK_EQ(irqs, 1);
	CHECK_EQ(irq_at[0], tsc_of(s + 1001));   /* the callback ran late, at s + 1001 */
	/* Count 0 in BCD is 10000. */
	outb(0x43, 0x35);
	outb(0x40, 0);
	outb(0x40, 0);
	s = ticks(now);
	CHECK_EQ(run_timers(now), tsc_of(s + 10000));
}

/* The device timers' keeper is vCPU 0: an access by another vCPU that brings a deadline forward
 * tells it (vdev_bus_on_timers_moved), once; vCPU 0's own accesses and later deadlines do not. */
static unsigned told;

static void keeper_told(void *arg)
{
	CHECK(arg == &bus);
	told++;
}

static void out_as(unsigned vcpu, uint16_t port, uint8_t v)
{
	struct vdev_access a = { .addr = port, .size = 1, .write = true, .value = v, .vcpu = vcpu };

	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
}

static void test_keeper_told(void)
{
	uint64_t first, sooner;

	setup();
	told = 0;
	vdev_bus_on_timers_moved(&bus, keeper_told, &bus);
	out_as(0, 0x43, 0x30);               /* channel 0, LSB/MSB, mode 0: a new count restarts it */
	out_as(0, 0x40, 0x00);
	out_as(0, 0x40, 0x40);               /* 0x4000 counts */
	CHECK_EQ(told, 0);                   /* vCPU 0 looks at its next entry itself */
	first = run_timers(now);
	CHECK(first > now);
	out_as(1, 0x43, 0x30);
	out_as(1, 0x40, 0x00);
	out_as(1, 0x40, 0x80);               /* 0x8000: later than what vCPU 0 holds */
	CHECK_EQ(told, 0);
	CHECK_EQ(run_timers(now), first + (first - now));  /* twice the counts: the later deadline */
	out_as(1, 0x43, 0x30);
	out_as(1, 0x40, 0x00);
	out_as(1, 0x40, 0x10);               /* 0x1000: sooner */
	CHECK_EQ(told, 1);
	out_as(1, 0x43, 0x00);               /* vCPU 1 latches channel 0, the deadline as it is: told once */
	CHECK_EQ(told, 1);
	sooner = run_timers(now);
	CHECK(sooner > now && sooner < first);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_time_base);
	RUN(test_access_modes);
	RUN(test_latch);
	RUN(test_read_back);
	RUN(test_mode0_timing);
	RUN(test_mode2_timing);
	RUN(test_mode3_timing);
	RUN(test_coalescing);
	RUN(test_ch2_calibration);
	RUN(test_ch2_quick_calibrate);
	RUN(test_port61);
	RUN(test_ch2_modes);
	RUN(test_bcd);
	RUN(test_keeper_told);
	return unit_report(argv[0]);
}
