/* Host unit tests of vdev/pmtimer.c: the ACPI PM1a registers and PM timer on a device bus against a
 * fake guest TSC, accessed as ACPICA and Linux's acpi_pm do (16-bit PM1 registers, 32-bit timer reads). */
#include <stdint.h>
#include <string.h>
#include "vdev/pmtimer.h"
#include "vdev/vdev.h"
#include "tests/unit/fake_bus.h"
#include "tests/unit/unit.h"

#define KHZ   2000000ull            /* a 2 GHz guest TSC */
#define HZ    (KHZ * 1000)
#define T0    1000000000000ull      /* the fake TSC starts far from 0 */
#define BASE  0xb000
#define S5    5

static struct vpm pm;
static uint64_t now;
static bool sci;
static unsigned sci_changes;

static uint64_t fake_clock(void *ctx)
{
	CHECK(ctx == &pm);
	return now;
}

static void sci_set(void *ctx, unsigned gsi, bool l)
{
	CHECK(ctx == &pm);
	CHECK_EQ(gsi, 9);
	sci_changes += l != sci;
	sci = l;
}

static enum vdev_result io(uint16_t port, unsigned size, bool write, uint32_t *v)
{
	struct vdev_access a = { .addr = port, .size = size, .write = write, .value = write ? *v : 0x5a5a5a5a };
	enum vdev_result r = vdev_pio(&bus, &a);

	*v = (uint32_t)a.value;              /* a read's result; after a power-off, the exit code */
	return r;
}

static uint32_t in(uint16_t port, unsigned size)
{
	uint32_t v;

	CHECK_EQ(io(port, size, false, &v), VDEV_DONE);
	return v;
}

static void out(uint16_t port, unsigned size, uint32_t v)
{
	CHECK_EQ(io(port, size, true, &v), VDEV_DONE);
}

static void setup(void)
{
	now = T0;
	sci = false;
	sci_changes = 0;
	vdev_bus_init(&bus, "t", NULL);
	vpm_init(&pm, BASE, S5, KHZ, (struct irq_line){ sci_set, &pm, 9 }, fake_clock, &pm);
	CHECK_EQ(vpm_register(&pm, &bus), 0);
}

/* The reference count: floor(tsc * 3579545 / HZ) in 128 bits, low 32 bits. */
static uint32_t ref(uint64_t tsc)
{
	return (uint32_t)((unsigned __int128)tsc * VPM_TMR_HZ / HZ);
}

/* The timer counts at 3.579545 MHz of the guest TSC, 32 bits, read whole or by halves or bytes. */
static void test_timer_rate(void)
{
	setup();
	CHECK_EQ(in(BASE + 8, 4), ref(now));
	uint32_t t0 = in(BASE + 8, 4);
	now += HZ;                                               /* one second */
	CHECK_EQ(in(BASE + 8, 4) - t0, VPM_TMR_HZ);
	now += HZ / 1000;                                        /* + 1 ms */
	CHECK_EQ(in(BASE + 8, 4) - t0, VPM_TMR_HZ + 3579);
	for (uint64_t step = 1; step < HZ * 5000; step = step * 7 + 3) {
		now += step;
		uint32_t v = in(BASE + 8, 4);
		CHECK_EQ(v, ref(now));
		CHECK_EQ(in(BASE + 8, 2) | in(BASE + 10, 2) << 16, v);
		CHECK_EQ(in(BASE + 8, 1) | in(BASE + 9, 1) << 8 | in(BASE + 10, 1) << 16 | in(BASE + 11, 1) << 24, v);
	}
	/* Writes to the timer do nothing; time never goes back for it. */
	uint32_t v = in(BASE + 8, 4);
	out(BASE + 8, 4, 0);
	CHECK_EQ(in(BASE + 8, 4), v);
	now -= 1000;
	CHECK_EQ(in(BASE + 8, 4), v);
}

/* PM1 control: SCI_EN reads 1 whatever is written (no SMI_CMD: ACPI mode always); SLP_TYP and BM_RLD
 * read back; SLP_EN and GBL_RLS read 0; a PM1 enable bit reads back (ACPICA checks GBL_EN). */
static void test_registers(void)
{
	setup();
	CHECK_EQ(in(BASE + 4, 2), 1);
	out(BASE + 4, 2, 0);
	CHECK_EQ(in(BASE + 4, 2), 1);
	out(BASE + 4, 2, 3u << 10 | 1u << 1 | 1u << 2);          /* SLP_TYP 3, BM_RLD, GBL_RLS */
	CHECK_EQ(in(BASE + 4, 2), 3u << 10 | 1u << 1 | 1);
	CHECK_EQ(in(BASE + 2, 2), 0);
	out(BASE + 2, 2, 0xffff);
	CHECK_EQ(in(BASE + 2, 2), VPM_EN_BITS);
	out(BASE + 3, 1, 0);                                     /* the high byte alone */
	CHECK_EQ(in(BASE + 2, 2), VPM_EN_BITS & 0xff);
	out(BASE + 2, 2, 1u << 5);                               /* GBL_EN */
	CHECK_EQ(in(BASE + 2, 2), 1u << 5);
	CHECK_EQ(in(BASE + 0, 4) >> 16, 1u << 5);                /* status and enable in one dword */
	CHECK_EQ(in(BASE + 6, 2), 0);                            /* reserved */
	CHECK_EQ(in(BASE + 12, 1), 0xff);                        /* past the block: the empty bus */
	/* A sleep state other than S5 returns at once, WAK_STS set; write 1 clears it. */
	out(BASE + 4, 2, 1u << 13 | 1u << 10);
	CHECK(in(BASE, 2) & VPM_WAK_STS);
	out(BASE, 2, VPM_WAK_STS);
	CHECK(!(in(BASE, 2) & VPM_WAK_STS));
	CHECK(!sci);
}

/* SLP_TYP = \_S5 with SLP_EN, as ACPICA's acpi_hw_legacy_sleep writes it (the type, then type and
 * enable, 16 bits, SCI_EN kept): the guest ends with code 0. The type alone does not. */
static void test_s5(void)
{
	uint32_t v;

	setup();
	uint32_t cnt = in(BASE + 4, 2) & ~(7u << 10 | 1u << 13);
	out(BASE + 4, 2, cnt | S5 << 10);
	v = cnt | S5 << 10 | 1u << 13;
	CHECK_EQ(io(BASE + 4, 2, true, &v), VDEV_GUEST_EXIT);
	CHECK_EQ(v, 0);
	setup();                                                 /* the high byte alone, as a byte write */
	out(BASE + 4, 1, 0);
	v = (S5 << 2) | 1u << 5;
	CHECK_EQ(io(BASE + 5, 1, true, &v), VDEV_GUEST_EXIT);
	setup();                                                 /* a dword write across CNT and reserved */
	v = S5 << 10 | 1u << 13;
	CHECK_EQ(io(BASE + 4, 4, true, &v), VDEV_GUEST_EXIT);
}

/* TMR_STS sets when bit 31 of the count changes; with TMR_EN the SCI is raised then (by the device
 * timer) and held until TMR_STS is cleared. */
static void test_tmr_sts_sci(void)
{
	setup();
	uint64_t flip = (((uint64_t)ref(now) >> 31) + 1) << 31;        /* the next change of bit 31 */
	flip += (uint64_t)(((unsigned __int128)now * VPM_TMR_HZ / HZ) >> 32) << 32;
	uint64_t t_flip = (uint64_t)(((unsigned __int128)flip * HZ + VPM_TMR_HZ - 1) / VPM_TMR_HZ);

	CHECK_EQ(in(BASE, 2) & VPM_TMR_STS, 0);
	out(BASE + 2, 2, VPM_TMR_STS);                           /* TMR_EN */
	CHECK(!sci);
	uint64_t next = vdev_timers_update(&bus, now);
	CHECK_EQ(next, t_flip);
	now = t_flip - 1;
	CHECK_EQ(in(BASE, 2) & VPM_TMR_STS, 0);
	CHECK_EQ(vdev_timers_update(&bus, now), t_flip);
	CHECK(!sci);
	now = t_flip;
	vdev_timers_update(&bus, now);
	CHECK(sci);
	CHECK_EQ(in(BASE, 2) & VPM_TMR_STS, VPM_TMR_STS);
	out(BASE, 2, VPM_TMR_STS);                               /* clear: the SCI drops */
	CHECK(!sci);
	CHECK_EQ(in(BASE, 2) & VPM_TMR_STS, 0);
	CHECK_EQ(sci_changes, 2);
	/* Without TMR_EN the status still sets but no SCI, no timer. */
	out(BASE + 2, 2, 0);
	CHECK_EQ(vdev_timers_update(&bus, now), 0);
	now += (uint64_t)(((unsigned __int128)1 << 31) * HZ / VPM_TMR_HZ) + HZ;
	CHECK_EQ(in(BASE, 2) & VPM_TMR_STS, VPM_TMR_STS);
	CHECK(!sci);
	out(BASE + 2, 2, VPM_TMR_STS);                           /* enabling with the status set: at once */
	CHECK(sci);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_timer_rate);
	RUN(test_registers);
	RUN(test_s5);
	RUN(test_tmr_sts_sci);
	return unit_report(argv[0]);
}
