/* Host unit tests of arch/x86/debugreg.h (DR6 after a #DB the hypervisor gives back to a guest) and of
 * trap.h's exception classes (which injected exceptions push RF = 1). */
#include <stdint.h>
#include "arch/x86/debugreg.h"
#include "arch/x86/trap.h"
#include "tests/unit/unit.h"

/* What the CPU leaves in DR6 (SDM Vol. 3B, 18.2.3), as Bochs 2.7 shows it natively (guests/exc.c on
 * bare Bochs: single step 0xffff4ff0, B0 0xffff0ff1, B1 0xffff0ff2, BD 0xffff2ff0 from a cleared DR6). */
static void test_dr6_from_clear(void)
{
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, DR6_BS), 0xffff4ff0);
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, 1), 0xffff0ff1);
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, 2), 0xffff0ff2);
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, DR6_BD), 0xffff2ff0);
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, DR6_BT), 0xffff8ff0);
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, 0), DR6_ACTIVE_LOW);     /* INT1-like: nothing reported */
}

/* B0-B3 are reported afresh; BD, BS, BT stay until software clears them; the reserved bits read as
 * 1 and bit 12 as 0 whatever was written. */
static void test_dr6_sticky(void)
{
	CHECK_EQ(dr6_after_db(0xffff0ff2, 1), 0xffff0ff1);             /* B1 from before: gone */
	CHECK_EQ(dr6_after_db(0xffff4ff0, 4), 0xffff4ff4);             /* BS kept */
	CHECK_EQ(dr6_after_db(0xffff2ff0, DR6_BS), 0xffff6ff0);        /* BD kept */
	CHECK_EQ(dr6_after_db(0, 8), 0xffff0ff8);                      /* reserved ones restored */
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, 1u << 12 | 1), 0xffff0ff1); /* "enabled breakpoint": not in DR6 */
	CHECK_EQ(dr6_after_db(0xffffffffffff0ff0ull, 1) >> 32, 0);    /* DR6 is 32 bits wide */
}

/* The exit qualification and the pending debug exceptions carry RTM and BLD active high; DR6 active
 * low (SDM Vol. 3C, 28.2.1, Table 28-1). */
static void test_dr6_active_low(void)
{
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, DR6_RTM | 1), 0xfffe0ff1);
	CHECK_EQ(dr6_after_db(DR6_ACTIVE_LOW, DR6_BLD), 0xffff07f0);
	CHECK_EQ(dr6_after_db(0xfffe0ff0, 2), 0xffff0ff2);             /* a later #DB outside RTM: 1 again */
}

/* SDM Vol. 3A, 7.3, Table 7-1: the class of each exception. */
static void test_fault_class(void)
{
	static const unsigned faults[] = { 0, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 19, 20, 21, 22, 31 };
	static const unsigned others[] = { 1, 2, 3, 4, 8, 18, 32, 0x80, 255 };

	for (unsigned i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		CHECK(exception_is_fault(faults[i]));
	for (unsigned i = 0; i < sizeof(others) / sizeof(others[0]); i++)
		CHECK(!exception_is_fault(others[i]));
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_dr6_from_clear);
	RUN(test_dr6_sticky);
	RUN(test_dr6_active_low);
	RUN(test_fault_class);
	return unit_report(argv[0]);
}
