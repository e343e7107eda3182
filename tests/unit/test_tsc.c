/* Host unit tests of vcpu/tsc.h: the guest TSC and IA32_TSC_ADJUST over the VMCS TSC offset (SDM Vol.
 * 3B, 18.17.3: a write to either moves the other by the same amount), and where a TSC deadline set in
 * guest ticks falls in host ticks. */
#include <stdint.h>
#include "vcpu/tsc.h"
#include "tests/unit/unit.h"

/* The two writes, by hand: a TSC_ADJUST write moves the TSC by the difference, a TSC write moves
 * TSC_ADJUST by what it moved the TSC, backwards and across 2^64 alike. */
static void test_writes(void)
{
	struct vtsc t = { 0, 0, 0 };
	uint64_t h = 1000000;

	CHECK_EQ(vtsc_guest(&t, h), 1000000);
	vtsc_write_adjust(&t, 5000);
	CHECK_EQ(t.adjust, 5000);
	CHECK_EQ(vtsc_guest(&t, h), 1005000);
	CHECK_EQ(vtsc_guest(&t, h + 7), 1005007);          /* it still counts */
	vtsc_write_adjust(&t, 2000);                       /* down by 3000 */
	CHECK_EQ(vtsc_guest(&t, h), 1002000);

	vtsc_write_tsc(&t, h + 100, 50);                   /* the TSC back to 50: X = 50 - 1002100 */
	CHECK_EQ(vtsc_guest(&t, h + 100), 50);
	CHECK_EQ(vtsc_guest(&t, h + 130), 80);
	CHECK_EQ(t.adjust, 2000 + 50 - 1002100);           /* negative, as a 64-bit MSR holds it */
	CHECK_EQ((int64_t)t.adjust, -1000050);

	vtsc_write_tsc(&t, h + 200, ~0ull - 9);            /* 10 ticks before the wrap */
	CHECK_EQ(vtsc_guest(&t, h + 200), ~0ull - 9);
	CHECK_EQ(vtsc_guest(&t, h + 215), 5);              /* it wraps, as the counter does */
	vtsc_write_adjust(&t, 0);                          /* TSC_ADJUST 0: the host's TSC again */
	CHECK_EQ(t.offset, 0);
	CHECK_EQ(vtsc_guest(&t, h + 300), h + 300);
}

/* Random writes of both at random host times: TSC = host TSC + TSC_ADJUST always (both start at 0 and
 * every write moves both by X), each write takes exact effect. */
static void test_random(void)
{
	struct vtsc t = { 0, 0, 0 };
	uint64_t x = 88172645463325252ull, h = 12345;

	for (int i = 0; i < 100000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		h += x % 100000;
		uint64_t before = vtsc_guest(&t, h), adj = t.adjust;

		if (x & 1ull << 40) {
			vtsc_write_tsc(&t, h, x);
			CHECK_EQ(vtsc_guest(&t, h), x);
			CHECK_EQ(t.adjust - adj, x - before);
		} else {
			vtsc_write_adjust(&t, x);
			CHECK_EQ(t.adjust, x);
			CHECK_EQ(vtsc_guest(&t, h) - before, x - adj);
		}
		CHECK_EQ(t.offset, t.adjust);
	}
}

/* A TSC deadline in guest ticks: due when the guest TSC reaches it, in host ticks. */
static void test_deadline(void)
{
	struct vtsc t = { 0, 0, 0 };
	uint64_t h = 1ull << 40;

	CHECK_EQ(vtsc_deadline_to_host(&t, h, 0), 0);          /* 0 disarms */
	CHECK_EQ(vtsc_deadline_to_host(&t, h, h + 5), h + 5);  /* no offset: the same value */
	CHECK_EQ(vtsc_deadline_to_host(&t, h, 3), 3);          /* (past: as before) */

	vtsc_write_adjust(&t, 1ull << 50);                     /* the guest 2^50 ahead */
	uint64_t g = vtsc_guest(&t, h);
	CHECK_EQ(vtsc_deadline_to_host(&t, h, g + 1000), h + 1000);
	CHECK_EQ(vtsc_deadline_to_host(&t, h, 0), 0);
	CHECK_EQ(vtsc_deadline_to_host(&t, h, g), 1);          /* reached: at once */
	CHECK_EQ(vtsc_deadline_to_host(&t, h, 5), 1);          /* long past for the guest (g - offset
								* would have wrapped to never) */
	CHECK_EQ(vtsc_deadline_to_host(&t, h, ~0ull), ~0ull - (1ull << 50)); /* far, but in range */

	vtsc_write_tsc(&t, h, 100);                            /* the guest behind the host */
	CHECK_EQ(vtsc_deadline_to_host(&t, h, 1100), h + 1000);
	CHECK_EQ(vtsc_deadline_to_host(&t, h, 100), 1);
	CHECK_EQ(vtsc_deadline_to_host(&t, h, 99), 1);
	CHECK_EQ(vtsc_deadline_to_host(&t, h, ~0ull), ~0ull);  /* h + 2^64 - 101 overflows: never */
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_writes);
	RUN(test_random);
	RUN(test_deadline);
	return unit_report(argv[0]);
}
