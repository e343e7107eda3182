/* spec_choose and spec_describe (arch/x86/spec.c): what CPUID leaf 7 and Fn8000_0008 and
 * IA32_ARCH_CAPABILITIES say -> the mitigations chosen, what stays open, what guests get; for the
 * Bochs models the scenarios run on and for the generations of real Intel and AMD CPUs whose reports
 * differ in the bits that decide. */
#include <string.h>
#include "arch/x86/spec.h"
#include "tests/unit/unit.h"

#define EDX_ALL (CPUID_7_0_EDX_MD_CLEAR | CPUID_7_0_EDX_IBRS_IBPB | CPUID_7_0_EDX_STIBP | \
		 CPUID_7_0_EDX_L1D_FLUSH | CPUID_7_0_EDX_ARCH_CAPS | CPUID_7_0_EDX_SSBD)
#define SPEC_CTRL_ALL (SPEC_CTRL_IBRS | SPEC_CTRL_STIBP | SPEC_CTRL_SSBD)

static struct spec_policy choose(bool intel, uint32_t ebx, uint32_t edx, uint64_t caps)
{
	struct spec_cpu cpu = { intel, ebx, edx, caps, 0 };
	struct spec_policy p;

	memset(&p, 0xa5, sizeof(p));                 /* every field must be written */
	spec_choose(&cpu, &p);
	return p;
}

static const char *describe(bool intel, uint32_t ebx, uint32_t edx, uint64_t caps)
{
	static char buf[400];
	struct spec_cpu cpu = { intel, ebx, edx, caps, 0 };
	struct spec_policy p;

	spec_choose(&cpu, &p);
	spec_describe(&cpu, &p, buf, sizeof(buf));
	return buf;
}

/* Bochs 2.7 tigerlake: leaf 7 EDX has MD_CLEAR and bits 26-31; ARCH_CAPABILITIES reads 0x1F (RDCL_NO,
 * IBRS_ALL, RSBA, SKIP_L1DFL_VMENTRY, SSB_NO: cpu/msr.cc), no MDS_NO. */
static void test_bochs_tigerlake(void)
{
	struct spec_policy p = choose(true, 0, EDX_ALL | CPUID_7_0_EDX_CORE_CAPS, 0x1f);

	CHECK_EQ(p.on, SPEC_VERW | SPEC_IBPB | SPEC_RSB_CALL | SPEC_EIBRS);  /* no PBRSB_NO: one CALL */
	CHECK_EQ(p.open, 0);
	CHECK_EQ(p.host_spec_ctrl, SPEC_CTRL_IBRS);
	CHECK_EQ(p.guest_spec_ctrl_bits, SPEC_CTRL_ALL);
	CHECK_EQ(p.guest_cpuid7_edx, EDX_ALL & CPUID_7_0_EDX_SPEC_MSRS);     /* not CORE_CAPABILITIES */
	CHECK_EQ(p.guest_arch_caps, 0x1f);
	CHECK(!strcmp(describe(true, 0, EDX_ALL | CPUID_7_0_EDX_CORE_CAPS, 0x1f),
		      "on: VERW on VM entry, IBPB on guest switch, RSB CALL on VM exit (PBRSB), eIBRS, retpolines; "
		      "not needed: L1D flush (RDCL_NO); "
		      "guests get: SPEC_CTRL, PRED_CMD, FLUSH_CMD, ARCH_CAPABILITIES"));
}

/* Bochs 2.7 corei7_icelake_u: the same without MD_CLEAR: MDS reported (no MDS_NO), no remedy. */
static void test_bochs_icelake(void)
{
	uint32_t edx = EDX_ALL & ~CPUID_7_0_EDX_MD_CLEAR;
	struct spec_policy p = choose(true, 0, edx, 0x1f);

	CHECK_EQ(p.on, SPEC_IBPB | SPEC_RSB_CALL | SPEC_EIBRS);
	CHECK_EQ(p.open, SPEC_OPEN_MDS);
	CHECK(strstr(describe(true, 0, edx, 0x1f), "; OPEN: MDS (no MD_CLEAR); guests get: SPEC_CTRL,"));
}

/* Bochs 2.7 corei7_skylake_x (and every older model): no speculation controls at all, no
 * ARCH_CAPABILITIES: an Intel CPU that says nothing is taken as affected by everything. */
static void test_bochs_skylake_x(void)
{
	struct spec_policy p = choose(true, 0, 0, 0x1f);        /* the MSR value is ignored: no bit 29 */

	CHECK_EQ(p.on, SPEC_RSB_FILL);
	CHECK_EQ(p.open, SPEC_OPEN_L1TF | SPEC_OPEN_MDS | SPEC_OPEN_IBPB);
	CHECK_EQ(p.host_spec_ctrl, 0);
	CHECK_EQ(p.guest_spec_ctrl_bits, 0);
	CHECK_EQ(p.guest_cpuid7_edx, 0);
	CHECK_EQ(p.guest_arch_caps, 0);
	CHECK(!strcmp(describe(true, 0, 0, 0),
		      "on: RSB fill on VM exit, retpolines; not needed: none; "
		      "OPEN: L1TF (no L1D_FLUSH), MDS (no MD_CLEAR), guest-to-guest BTI (no IBPB); guests get: none"));
}

/* A Skylake server with current microcode: every control, no ARCH_CAPABILITIES. L1TF: flush on every
 * entry, which also clears the MDS buffers (no VERW); no eIBRS: retpolines and the RSB fill. */
static void test_skylake_microcode(void)
{
	uint32_t edx = EDX_ALL & ~CPUID_7_0_EDX_ARCH_CAPS;
	struct spec_policy p = choose(true, CPUID_7_0_EBX_RTM, edx, 0);

	CHECK_EQ(p.on, SPEC_L1D_FLUSH | SPEC_IBPB | SPEC_RSB_FILL);
	CHECK_EQ(p.open, 0);
	CHECK_EQ(p.host_spec_ctrl, 0);
	CHECK_EQ(p.guest_spec_ctrl_bits, SPEC_CTRL_ALL);
	CHECK_EQ(p.guest_cpuid7_edx, edx & CPUID_7_0_EDX_SPEC_MSRS);
	CHECK_EQ(p.guest_arch_caps, 0);
}

/* Cascade Lake: RDCL_NO, IBRS_ALL, SKIP_L1DFL_VMENTRY, MDS_NO, but TSX without TAA_NO: VERW for TAA.
 * With TAA_NO, or without TSX, no VERW; eIBRS needs only the one CALL, none with PBRSB_NO. */
static void test_cascade_lake_taa(void)
{
	uint64_t caps = ARCH_CAP_RDCL_NO | ARCH_CAP_IBRS_ALL | ARCH_CAP_SKIP_L1DFL_VMENTRY | ARCH_CAP_MDS_NO;

	CHECK_EQ(choose(true, CPUID_7_0_EBX_RTM, EDX_ALL, caps).on, SPEC_VERW | SPEC_IBPB | SPEC_RSB_CALL | SPEC_EIBRS);
	CHECK_EQ(choose(true, CPUID_7_0_EBX_RTM, EDX_ALL, caps | ARCH_CAP_TAA_NO).on,
		 SPEC_IBPB | SPEC_RSB_CALL | SPEC_EIBRS);
	CHECK_EQ(choose(true, 0, EDX_ALL, caps).on, SPEC_IBPB | SPEC_RSB_CALL | SPEC_EIBRS);
	CHECK_EQ(choose(true, 0, EDX_ALL, caps | ARCH_CAP_PBRSB_NO).on, SPEC_IBPB | SPEC_EIBRS);
	CHECK(strstr(describe(true, 0, EDX_ALL, caps | ARCH_CAP_PBRSB_NO),
		     "not needed: L1D flush (RDCL_NO), VERW (MDS_NO, TAA_NO), RSB fill (eIBRS, PBRSB_NO);"));
	/* TSX without TAA_NO but no MD_CLEAR: open. */
	CHECK_EQ(choose(true, CPUID_7_0_EBX_RTM, EDX_ALL & ~CPUID_7_0_EDX_MD_CLEAR, caps).open, SPEC_OPEN_MDS);
}

/* PBRSB_NO without eIBRS (IBRS_ALL clear, or no IBRS at all) changes nothing: the whole RSB is filled. */
static void test_rsb_fill_needs_eibrs(void)
{
	uint32_t on = choose(true, 0, EDX_ALL, ARCH_CAP_RDCL_NO | ARCH_CAP_MDS_NO | ARCH_CAP_PBRSB_NO).on;

	CHECK((on & (SPEC_RSB_FILL | SPEC_RSB_CALL)) == SPEC_RSB_FILL);
	CHECK(choose(true, 0, CPUID_7_0_EDX_ARCH_CAPS, ARCH_CAP_IBRS_ALL | ARCH_CAP_PBRSB_NO).on & SPEC_RSB_FILL);
	CHECK(!(choose(true, 0, CPUID_7_0_EDX_ARCH_CAPS, ARCH_CAP_IBRS_ALL).on & SPEC_EIBRS));  /* no IBRS bit */
}

/* SKIP_L1DFL_VMENTRY without RDCL_NO (a CPU, or an outer hypervisor, that flushes for us): no flush,
 * and then MDS needs its own VERW. */
static void test_skip_l1d_flush(void)
{
	struct spec_policy p = choose(true, 0, EDX_ALL, ARCH_CAP_SKIP_L1DFL_VMENTRY);

	CHECK_EQ(p.on, SPEC_VERW | SPEC_IBPB | SPEC_RSB_FILL);
	CHECK(strstr(describe(true, 0, EDX_ALL, ARCH_CAP_SKIP_L1DFL_VMENTRY),
		     "not needed: L1D flush (SKIP_L1DFL_VMENTRY);"));
}

/* L1TF without the flush command (old microcode) stays open; VERW still covers MDS. */
static void test_l1tf_without_flush_cmd(void)
{
	struct spec_policy p = choose(true, 0, CPUID_7_0_EDX_MD_CLEAR | CPUID_7_0_EDX_IBRS_IBPB, 0);

	CHECK_EQ(p.on, SPEC_VERW | SPEC_IBPB | SPEC_RSB_FILL);
	CHECK_EQ(p.open, SPEC_OPEN_L1TF);
	CHECK_EQ(p.guest_spec_ctrl_bits, SPEC_CTRL_IBRS);        /* only what CPUID enumerates */
	CHECK_EQ(p.guest_cpuid7_edx, CPUID_7_0_EDX_IBRS_IBPB);
}

/* Register file data sampling: MDS_NO, yet RFDS_CLEAR says VERW is needed and works. */
static void test_rfds(void)
{
	uint64_t caps = ARCH_CAP_RDCL_NO | ARCH_CAP_MDS_NO | ARCH_CAP_TAA_NO | ARCH_CAP_RFDS_CLEAR;

	CHECK(choose(true, 0, EDX_ALL & ~CPUID_7_0_EDX_MD_CLEAR, caps).on & SPEC_VERW);
	CHECK(!(choose(true, 0, EDX_ALL, caps & ~ARCH_CAP_RFDS_CLEAR).on & SPEC_VERW));
}

/* Not Intel: L1TF, MDS and TAA are Intel's; branch target injection between guests is not. */
static void test_not_intel(void)
{
	struct spec_policy p = choose(false, CPUID_7_0_EBX_RTM, 0, 0);

	CHECK_EQ(p.on, SPEC_RSB_FILL);
	CHECK_EQ(p.open, SPEC_OPEN_IBPB);
	CHECK(!strcmp(describe(false, 0, 0, 0),
		      "on: RSB fill on VM exit, retpolines; not needed: L1D flush and VERW (not Intel); "
		      "OPEN: guest-to-guest BTI (no IBPB); guests get: none"));
}

/* AMD enumerates its controls in CPUID Fn8000_0008_EBX and leaves leaf 7's EDX bits clear ("Software
 * Techniques for Managing Speculation on AMD Processors"). A Zen 2 (EPYC Rome) reports IBPB 12, IBRS
 * 14, STIBP 15, STIBP always on 17, IBRS preferred 18, SSBD 24 (and VIRT_SSBD 25 under a hypervisor):
 * IBPB between guests, IA32_SPEC_CTRL's three bits for guests, and guests see the four control bits
 * only. */
static struct spec_policy choose_amd(uint32_t x8, char *line, unsigned size)
{
	struct spec_cpu cpu = { .intel = false, .cpuid80000008_ebx = x8 };
	struct spec_policy p;

	memset(&p, 0xa5, sizeof(p));
	spec_choose(&cpu, &p);
	spec_describe(&cpu, &p, line, size);
	return p;
}

static void test_amd_zen2(void)
{
	uint32_t x8 = CPUID_80000008_EBX_IBPB | CPUID_80000008_EBX_IBRS | CPUID_80000008_EBX_STIBP |
		      (1u << 17) | (1u << 18) | CPUID_80000008_EBX_SSBD | (1u << 25) | (1u << 9) /* WBNOINVD */;
	char line[400];
	struct spec_policy p = choose_amd(x8, line, sizeof(line));

	CHECK_EQ(p.on, SPEC_IBPB | SPEC_RSB_FILL);
	CHECK_EQ(p.open, 0);
	CHECK_EQ(p.host_spec_ctrl, 0);
	CHECK_EQ(p.guest_spec_ctrl_bits, SPEC_CTRL_ALL);
	CHECK_EQ(p.guest_cpuid7_edx, 0);
	CHECK_EQ(p.guest_cpuid80000008_ebx, CPUID_80000008_EBX_IBPB | CPUID_80000008_EBX_IBRS |
		 CPUID_80000008_EBX_STIBP | CPUID_80000008_EBX_SSBD);
	CHECK_EQ(p.guest_arch_caps, 0);
	CHECK(spec_guest_pred_cmd(&p));
	CHECK(!strcmp(line, "on: IBPB on guest switch, RSB fill on VM exit, retpolines; "
		      "not needed: L1D flush and VERW (not Intel); guests get: SPEC_CTRL, PRED_CMD"));
}

/* A Zen 1 with the first microcode: IBPB only. PRED_CMD for guests, no IA32_SPEC_CTRL; each bit of
 * IA32_SPEC_CTRL for guests only as its own CPUID bit says. */
static void test_amd_ibpb_only(void)
{
	char line[400];
	struct spec_policy p = choose_amd(CPUID_80000008_EBX_IBPB, line, sizeof(line));

	CHECK_EQ(p.on, SPEC_IBPB | SPEC_RSB_FILL);
	CHECK_EQ(p.guest_spec_ctrl_bits, 0);
	CHECK_EQ(p.guest_cpuid80000008_ebx, CPUID_80000008_EBX_IBPB);
	CHECK(spec_guest_pred_cmd(&p));
	CHECK(strstr(line, "; guests get: PRED_CMD") != NULL);
	CHECK_EQ(choose_amd(CPUID_80000008_EBX_SSBD, line, sizeof(line)).guest_spec_ctrl_bits, SPEC_CTRL_SSBD);
	CHECK(strstr(line, "OPEN: guest-to-guest BTI (no IBPB); guests get: SPEC_CTRL") != NULL);
	CHECK_EQ(choose_amd(CPUID_80000008_EBX_STIBP, line, sizeof(line)).guest_spec_ctrl_bits, SPEC_CTRL_STIBP);
}

/* Bochs 2.7 ryzen and QEMU 7.2's EPYC models under TCG: Fn8000_0008_EBX has none of the bits (QEMU
 * drops ibpb, ibrs, amd-stibp, amd-ssbd: "TCG doesn't support requested feature"). */
static void test_amd_emulated(void)
{
	char line[400];
	struct spec_policy p = choose_amd(0, line, sizeof(line));

	CHECK_EQ(p.on, SPEC_RSB_FILL);
	CHECK_EQ(p.open, SPEC_OPEN_IBPB);
	CHECK(!spec_guest_pred_cmd(&p));
	CHECK(!strcmp(line, "on: RSB fill on VM exit, retpolines; not needed: L1D flush and VERW (not Intel); "
		      "OPEN: guest-to-guest BTI (no IBPB); guests get: none"));
}

/* Guests read only the ARCH_CAPABILITIES bits that need no MSR of their own: TSX_CTRL (7), MCU
 * control (9), package controls (10, 11), FB_CLEAR_CTRL (18), GDS_CTRL (26)... are filtered. */
static void test_guest_arch_caps_filter(void)
{
	uint64_t named_msrs = (1ull << 7) | (1ull << 9) | (1ull << 10) | (1ull << 11) | (1ull << 18) | (1ull << 26);
	uint64_t caps = ARCH_CAP_RDCL_NO | ARCH_CAP_MDS_NO | ARCH_CAP_TAA_NO | ARCH_CAP_PBRSB_NO | ARCH_CAP_GDS_NO;

	CHECK_EQ(choose(true, 0, EDX_ALL, caps | named_msrs | (1ull << 63)).guest_arch_caps, caps);
	CHECK_EQ(ARCH_CAP_GUEST_BITS & named_msrs, 0);
}

/* A short buffer: the text is cut, never overrun, and NUL-terminated. */
static void test_describe_short_buffer(void)
{
	struct spec_cpu cpu = { true, 0, 0, 0, 0 };
	struct spec_policy p;
	char buf[24];

	spec_choose(&cpu, &p);
	memset(buf, 'x', sizeof(buf));
	spec_describe(&cpu, &p, buf, 20);
	CHECK_EQ(strlen(buf), 19);
	CHECK_EQ(buf[20], 'x');
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_bochs_tigerlake);
	RUN(test_bochs_icelake);
	RUN(test_bochs_skylake_x);
	RUN(test_skylake_microcode);
	RUN(test_cascade_lake_taa);
	RUN(test_rsb_fill_needs_eibrs);
	RUN(test_skip_l1d_flush);
	RUN(test_l1tf_without_flush_cmd);
	RUN(test_rfds);
	RUN(test_not_intel);
	RUN(test_amd_zen2);
	RUN(test_amd_ibpb_only);
	RUN(test_amd_emulated);
	RUN(test_guest_arch_caps_filter);
	RUN(test_describe_short_buffer);
	return unit_report(argv[0]);
}
