/* Host unit tests of vcpu/cpuid_policy.c, the CPUID a guest sees: a host whose every CPUID bit is set
 * gives guests only the allowed bits (against the allow-list, and against exact values written here
 * bit by bit from SDM Vol. 2A, CPUID, so that the test is not the table checked against itself); a host
 * with every bit clear gives no feature but those emulated regardless; out-of-range leaves answer as
 * the highest basic leaf. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "tessera/hypercall.h"
#include "vcpu/cpuid_cache.h"
#include "vcpu/cpuid_policy.h"
#include "tests/unit/unit.h"

#define B(n) (1u << (n))

static const struct cpuid_regs ONES = { ~0u, ~0u, ~0u, ~0u }, ZEROS = { 0, 0, 0, 0 };

/* A host that has every leaf and bit; a guest of 3 vCPUs, this one vCPU 1, every control there. */
static struct cpuid_cfg cfg_ones(void)
{
	return (struct cpuid_cfg){
		.host_max_basic = ~0u, .host_max_ext = ~0u,
		.xcr0_allowed = 0x2e7,          /* x87, SSE, AVX, AVX-512 (opmask, ZMM_Hi256, Hi16_ZMM), PKRU */
		.tsc_khz = 2000000, .invpcid = true, .rdtscp = true, .tsc_adjust = true,
		.index = 1, .nvcpus = 3, .apic_enabled = true, .cr4 = 0,
	};
}

/* The guest's answer to CPUID (leaf, sub) on a host whose every leaf returns `host`. */
static struct cpuid_regs ask(const struct cpuid_cfg *c, uint32_t leaf, uint32_t sub, struct cpuid_regs host)
{
	uint32_t l = cpuid_guest_leaf(c, leaf);

	return cpuid_guest(c, l, sub, cpuid_needs_host(c, l) ? host : ZEROS);
}

#define CHECK_REGS(r, a, b, c_, d) do { CHECK_EQ((r).eax, a); CHECK_EQ((r).ebx, b); \
	CHECK_EQ((r).ecx, c_); CHECK_EQ((r).edx, d); } while (0)

/* Fields the policy computes rather than passes (hand-written, per leaf): what may come out beyond
 * cpuid_allowed() with an all-ones host. */
static struct cpuid_regs computed(uint32_t leaf, uint32_t sub)
{
	switch (leaf) {
	case 0: return (struct cpuid_regs){ ~0u, 0, 0, 0 };                   /* max leaf */
	case 1: return (struct cpuid_regs){ 0, 0xffff0000u, B(21) | B(24) | B(27) | B(31), B(9) | B(28) };
	case 4: return (struct cpuid_regs){ 0xfffu << 14, 0, 0, 0 };          /* threads sharing */
	case 7: return sub == 0 ? (struct cpuid_regs){ ~0u, B(1) | B(10), B(4) | B(22), 0 } : ZEROS;
	case 0xb: case 0x1f: case 0x15: case 0x16: case HV_CPUID_BASE: case HV_CPUID_TIMING:
		return ONES;
	case 0xd: return sub == 0 ? (struct cpuid_regs){ ~0u, 0, 0, ~0u } : ZEROS;  /* XCR0 bits */
	case 0x80000000: return (struct cpuid_regs){ ~0u, 0, 0, 0 };
	case 0x80000001: return (struct cpuid_regs){ 0, 0, 0, B(27) };
	}
	return ZEROS;
}

static const uint32_t leaves[] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0xa, 0xb, 0xc, 0xd, 0xe, 0xf, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15,
	0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x23, 0x24, 0x100,
	0x40000000, 0x40000001, 0x4000000f, 0x40000010, 0x40000011, 0x4fffffff, 0x50000000,
	0x80000000, 0x80000001, 0x80000002, 0x80000003, 0x80000004, 0x80000005, 0x80000006, 0x80000007,
	0x80000008, 0x80000009, 0x8000000a, 0x80000021, 0x8fffffff, 0xc0000000, 0xffffffff,
};
#define NLEAVES (sizeof(leaves) / sizeof(leaves[0]))

/* Every leaf and subleaf 0..70 of an all-ones host: nothing beyond the allow-list and the computed
 * fields; and the same with the speculation-control hook's bits: none reach a guest today. */
static void test_ones_within_allow_list(void)
{
	struct cpuid_cfg c = cfg_ones();

	for (unsigned i = 0; i < NLEAVES; i++)
		for (uint32_t sub = 0; sub <= 70; sub++) {
			uint32_t l = cpuid_guest_leaf(&c, leaves[i]);
			struct cpuid_regs r = ask(&c, leaves[i], sub, ONES);
			struct cpuid_regs a = cpuid_allowed(l, sub), k = computed(l, sub);
			struct cpuid_regs s = cpuid_spec_bits(l, sub);

			CHECK_EQ(r.eax & ~(a.eax | k.eax), 0);
			CHECK_EQ(r.ebx & ~(a.ebx | k.ebx), 0);
			CHECK_EQ(r.ecx & ~(a.ecx | k.ecx), 0);
			CHECK_EQ(r.edx & ~(a.edx | k.edx), 0);
			CHECK_EQ(s.eax | s.ebx | s.ecx | s.edx, 0);
		}
}

/* Exact answers of an all-ones host, written out bit by bit (SDM Vol. 2A, Tables 3-10, 3-11, and
 * the leaf 07H rows of Table 3-8). */
static void test_ones_exact(void)
{
	struct cpuid_cfg c = cfg_ones();
	struct cpuid_regs r;

	r = ask(&c, 0, 0, ONES);
	CHECK_REGS(r, 0x1f, ~0u, ~0u, ~0u);                 /* max basic leaf clamped to 1FH */

	r = ask(&c, 1, 0, ONES);
	CHECK_EQ(r.eax, ~0u);
	CHECK_EQ(r.ebx, 1u << 24 | 3u << 16 | 0xffff);      /* APIC ID 1, 3 logical processors */
	CHECK_EQ(r.ecx, B(0) /* SSE3 */ | B(1) /* PCLMULQDQ */ | B(9) /* SSSE3 */ | B(12) /* FMA */ |
		 B(13) /* CMPXCHG16B */ | B(17) /* PCID */ | B(19) /* SSE4.1 */ | B(20) /* SSE4.2 */ |
		 B(21) /* x2APIC */ | B(22) /* MOVBE */ | B(23) /* POPCNT */ | B(24) /* TSC-deadline */ |
		 B(25) /* AESNI */ | B(26) /* XSAVE */ | B(28) /* AVX */ | B(29) /* F16C */ |
		 B(30) /* RDRAND */ | B(31) /* hypervisor */);
	CHECK_EQ(r.edx, B(0) /* FPU */ | B(1) /* VME */ | B(2) /* DE */ | B(3) /* PSE */ | B(4) /* TSC */ |
		 B(5) /* MSR */ | B(6) /* PAE */ | B(8) /* CX8 */ | B(9) /* APIC */ | B(11) /* SEP */ |
		 B(12) /* MTRR */ | B(13) /* PGE */ | B(15) /* CMOV */ | B(16) /* PAT */ | B(17) /* PSE-36 */ |
		 B(19) /* CLFSH */ | B(23) /* MMX */ | B(24) /* FXSR */ | B(25) /* SSE */ | B(26) /* SSE2 */ |
		 B(27) /* SS */ | B(28) /* HTT */);

	r = ask(&c, 6, 0, ONES);
	CHECK_REGS(r, B(2) /* ARAT */, 0, 0, 0);

	r = ask(&c, 7, 0, ONES);
	CHECK_EQ(r.eax, 2);                                  /* subleaves 0..2 */
	CHECK_EQ(r.ebx, B(0) /* FSGSBASE */ | B(1) /* TSC_ADJUST */ | B(3) /* BMI1 */ | B(4) /* HLE */ |
		 B(5) /* AVX2 */ | B(6) /* FDP_EXCPTN_ONLY */ | B(7) /* SMEP */ | B(8) /* BMI2 */ |
		 B(9) /* ERMS */ | B(10) /* INVPCID */ | B(11) /* RTM */ | B(13) /* FPU CS/DS */ |
		 B(16) /* AVX512F */ | B(17) /* AVX512DQ */ | B(18) /* RDSEED */ | B(19) /* ADX */ |
		 B(20) /* SMAP */ | B(21) /* AVX512_IFMA */ | B(23) /* CLFLUSHOPT */ | B(24) /* CLWB */ |
		 B(26) /* AVX512PF */ | B(27) /* AVX512ER */ | B(28) /* AVX512CD */ | B(29) /* SHA */ |
		 B(30) /* AVX512BW */ | B(31) /* AVX512VL */);
	CHECK_EQ(r.ecx, B(0) /* PREFETCHWT1 */ | B(1) /* AVX512_VBMI */ | B(2) /* UMIP */ | B(3) /* PKU */ |
		 B(6) /* AVX512_VBMI2 */ | B(8) /* GFNI */ | B(9) /* VAES */ | B(10) /* VPCLMULQDQ */ |
		 B(11) /* AVX512_VNNI */ | B(12) /* AVX512_BITALG */ | B(14) /* AVX512_VPOPCNTDQ */ |
		 B(22) /* RDPID */ | B(25) /* CLDEMOTE */ | B(27) /* MOVDIRI */ | B(28) /* MOVDIR64B */);
	CHECK_EQ(r.edx, B(2) /* AVX512_4VNNIW */ | B(3) /* AVX512_4FMAPS */ | B(4) /* FSRM */ |
		 B(8) /* AVX512_VP2INTERSECT */ | B(11) /* RTM_ALWAYS_ABORT */ | B(14) /* SERIALIZE */ |
		 B(16) /* TSXLDTRK */ | B(23) /* AVX512_FP16 */);
	/* Named ones that must not pass: AMX-BF16/TILE/INT8, the speculation controls, UINTR, PCONFIG,
	 * arch LBR, CET; WAITPKG, LA57, Key Locker, ENQCMD, PKS. */
	CHECK_EQ(r.edx & (B(22) | B(24) | B(25) | B(9) | B(10) | B(26) | B(27) | B(28) | B(29) | B(31) |
			  B(5) | B(18) | B(19) | B(20)), 0);
	CHECK_EQ(r.ecx & (B(5) | B(7) | B(16) | B(23) | B(29) | B(31)), 0);

	r = ask(&c, 7, 1, ONES);
	CHECK_REGS(r, B(4) /* AVX-VNNI */ | B(5) /* AVX512_BF16 */ | B(10) | B(11) | B(12) /* fast REP */,
		   0, 0, 0);                                 /* no FRED (17), LKGS, LAM, HRESET */
	r = ask(&c, 7, 2, ONES);
	CHECK_REGS(r, 0, 0, 0, 0);                           /* only IA32_SPEC_CTRL bits live there */

	r = ask(&c, 0xb, 0, ONES);
	CHECK_REGS(r, 2, 3, 0x100, 1);                       /* 2 ID bits, 3 threads, SMT, x2APIC ID 1 */
	r = ask(&c, 0xb, 1, ONES);
	CHECK_REGS(r, 0, 0, 1, 1);                           /* level 1: invalid, the end */
	r = ask(&c, 0x1f, 0, ONES);
	CHECK_REGS(r, 2, 3, 0x100, 1);

	r = ask(&c, 4, 0, ONES);
	CHECK_EQ(r.eax, 0x3fff | 3u << 14);                  /* 4 IDs share every cache, 1 core */

	r = ask(&c, 0xd, 0, ONES);
	CHECK_REGS(r, 0x2e7, ~0u, ~0u, 0);                   /* XCR0: exactly the allowed bits */
	r = ask(&c, 0xd, 1, ONES);
	CHECK_REGS(r, B(0) | B(1) | B(2), ~0u, 0, 0);        /* no XSAVES, XFD, no IA32_XSS bits */
	r = ask(&c, 0xd, 2, ONES);
	CHECK_REGS(r, ~0u, ~0u, 2, 0);                       /* AVX state: size, offset */
	for (uint32_t sub = 3; sub <= 4; sub++) {            /* MPX, not allowed */
		r = ask(&c, 0xd, sub, ONES);
		CHECK_REGS(r, 0, 0, 0, 0);
	}
	r = ask(&c, 0xd, 17, ONES);                          /* AMX TILECFG, not allowed */
	CHECK_REGS(r, 0, 0, 0, 0);
	r = ask(&c, 0xd, 9, ONES);                           /* PKRU */
	CHECK_REGS(r, ~0u, ~0u, 2, 0);

	r = ask(&c, 0x15, 0, ONES);
	CHECK_REGS(r, 1, 1, 2000000000u, 0);
	r = ask(&c, 0x16, 0, ONES);
	CHECK_REGS(r, 2000, 2000, 2000, 0);

	/* Leaves in range but not described: zero, whatever the host has. */
	static const uint32_t zero_leaves[] = { 3, 5, 8, 9, 0xa, 0xc, 0xe, 0xf, 0x10, 0x11, 0x12, 0x13, 0x14,
						0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x80000005 };
	for (unsigned i = 0; i < sizeof(zero_leaves) / sizeof(zero_leaves[0]); i++)
		for (uint32_t sub = 0; sub < 3; sub++) {
			r = ask(&c, zero_leaves[i], sub, ONES);
			CHECK_REGS(r, 0, 0, 0, 0);
		}

	r = ask(&c, HV_CPUID_BASE, 0, ONES);
	CHECK_REGS(r, HV_CPUID_TIMING, 0x73736554 /* "Tess" */, 0x48617265 /* "eraH" */, 0x56 /* "V" */);
	r = ask(&c, HV_CPUID_BASE + 1, 0, ONES);
	CHECK_REGS(r, 0, 0, 0, 0);
	r = ask(&c, HV_CPUID_TIMING, 0, ONES);
	CHECK_REGS(r, 2000000, 2000000, 0, 0);

	r = ask(&c, 0x80000000, 0, ONES);
	CHECK_REGS(r, 0x80000008, 0, 0, 0);
	r = ask(&c, 0x80000001, 0, ONES);
	CHECK_REGS(r, ~0u, 0, B(0) /* LAHF */ | B(5) /* LZCNT */ | B(8) /* PREFETCHW */,
		   B(11) /* SYSCALL */ | B(20) /* NX */ | B(26) /* 1 GB pages */ | B(27) /* RDTSCP */ | B(29) /* LM */);
	r = ask(&c, 0x80000002, 0, ONES);
	CHECK_REGS(r, ~0u, ~0u, ~0u, ~0u);                   /* the brand string */
	r = ask(&c, 0x80000006, 0, ONES);
	CHECK_REGS(r, 0, 0, ~0u, 0);
	r = ask(&c, 0x80000007, 0, ONES);
	CHECK_REGS(r, 0, 0, 0, B(8));                        /* invariant TSC */
	r = ask(&c, 0x80000008, 0, ONES);
	CHECK_REGS(r, 0xffff, 0, 0, 0);                      /* address sizes; no WNOINVD */
}

/* An all-zeros host: nothing but what is emulated whatever the host has. */
static void test_zeros(void)
{
	struct cpuid_cfg c = cfg_ones();
	struct cpuid_regs r;

	c.host_max_basic = 0x1f;
	c.host_max_ext = 0x80000008;
	for (unsigned i = 0; i < NLEAVES; i++)
		for (uint32_t sub = 0; sub < 4; sub++) {
			uint32_t l = cpuid_guest_leaf(&c, leaves[i]);
			struct cpuid_regs k = computed(l, sub);

			r = ask(&c, leaves[i], sub, ZEROS);
			CHECK_EQ(r.eax & ~k.eax, 0);
			CHECK_EQ(r.ebx & ~k.ebx, 0);
			CHECK_EQ(r.ecx & ~k.ecx, 0);
			CHECK_EQ(r.edx & ~k.edx, 0);
		}
	r = ask(&c, 1, 0, ZEROS);
	CHECK_REGS(r, 0, 1u << 24 | 3u << 16, B(21) | B(24) | B(31), B(9) | B(28));
	r = ask(&c, 7, 0, ZEROS);
	CHECK_REGS(r, 0, B(1), 0, 0);                        /* TSC_ADJUST: emulated, not the host's */
	r = ask(&c, 0x80000001, 0, ZEROS);
	CHECK_REGS(r, 0, 0, 0, 0);                           /* RDTSCP only if the host has it */
	r = ask(&c, 0xd, 0, ZEROS);
	CHECK_REGS(r, 0, 0, 0, 0);
	r = ask(&c, 4, 0, ZEROS);
	CHECK_REGS(r, 0, 0, 0, 0);                           /* no cache: no sharing either */
}

/* The vCPU's state and the controls switch their bits. */
static void test_config(void)
{
	struct cpuid_cfg c = cfg_ones();
	struct cpuid_regs r;

	c.cr4 = 1ull << 18 | 1ull << 22;                     /* OSXSAVE, PKE */
	c.apic_enabled = false;
	c.nvcpus = 1;
	c.index = 0;
	r = ask(&c, 1, 0, ONES);
	CHECK_EQ(r.ecx & B(27), B(27));
	CHECK_EQ(r.edx & (B(9) | B(28)), 0);                 /* no APIC while disabled, no HTT */
	CHECK_EQ(r.ebx >> 16, 1);
	r = ask(&c, 7, 0, ONES);
	CHECK_EQ(r.ecx & B(4), B(4));
	r = ask(&c, 0xb, 0, ONES);
	CHECK_REGS(r, 0, 1, 0x100, 0);
	r = ask(&c, 4, 0, ONES);
	CHECK_EQ(r.eax, 0x3fff);

	c = cfg_ones();
	c.invpcid = c.rdtscp = c.tsc_adjust = false;
	r = ask(&c, 7, 0, ONES);
	CHECK_EQ(r.ebx & (B(1) | B(10)), 0);
	CHECK_EQ(r.ecx & B(22), 0);
	r = ask(&c, 0x80000001, 0, ONES);
	CHECK_EQ(r.edx & B(27), 0);

	/* PCID: the host's on EPT or NPT; on shadow paging offered whatever the host has. */
	c = cfg_ones();
	r = ask(&c, 1, 0, (struct cpuid_regs){ 0, 0, 0, 0 });
	CHECK_EQ(r.ecx & B(17), 0);
	c.pcid_emulated = true;
	r = ask(&c, 1, 0, (struct cpuid_regs){ 0, 0, 0, 0 });
	CHECK_EQ(r.ecx & B(17), B(17));

	/* PKU and OSPKE: the host's on EPT or NPT; none on shadow paging, whose leaves have no keys,
	 * whatever the guest's CR4 claims; the other leaf-7 ECX bits stay. */
	c = cfg_ones();
	c.cr4 = 1ull << 22;                                   /* PKE */
	r = ask(&c, 7, 0, ONES);
	CHECK_EQ(r.ecx & (B(3) | B(4)), B(3) | B(4));
	c.no_pkeys = true;
	r = ask(&c, 7, 0, ONES);
	CHECK_EQ(r.ecx & (B(3) | B(4)), 0);
	CHECK_EQ(r.ecx & (B(2) | B(22)), B(2) | B(22));

	c = cfg_ones();
	c.nvcpus = 64;
	r = ask(&c, 0xb, 0, ONES);
	CHECK_REGS(r, 6, 64, 0x100, 1);
	r = ask(&c, 1, 0, ONES);
	CHECK_EQ((r.ebx >> 16) & 0xff, 64);
}

/* Beyond the maximum of its range a leaf answers as the highest basic leaf, subleaf kept; in range
 * but not on the host, it is zero (or made up, for the leaves the policy makes up). */
static void test_ranges(void)
{
	struct cpuid_cfg c = cfg_ones();
	struct cpuid_regs r, top;

	static const uint32_t beyond[] = { 0x20, 0x24, 0x100, 0x40000011, 0x4fffffff, 0x50000000,
					   0x80000009, 0x80000021, 0xc0000000, 0xffffffff };
	for (unsigned i = 0; i < sizeof(beyond) / sizeof(beyond[0]); i++) {
		CHECK_EQ(cpuid_guest_leaf(&c, beyond[i]), 0x1f);
		r = ask(&c, beyond[i], 0, ONES);
		top = ask(&c, 0x1f, 0, ONES);
		CHECK_REGS(r, top.eax, top.ebx, top.ecx, top.edx);
		r = ask(&c, beyond[i], 1, ONES);
		CHECK_REGS(r, 0, 0, 1, 1);                    /* ECX honoured: leaf 1FH subleaf 1 */
	}
	CHECK_EQ(cpuid_guest_leaf(&c, 0x1f), 0x1f);
	CHECK_EQ(cpuid_guest_leaf(&c, 0x40000001), 0x40000001);
	CHECK_EQ(cpuid_guest_leaf(&c, 0x80000008), 0x80000008);

	/* An older host: basic leaves up to 0DH, extended up to 80000001H. The guest's range still
	 * reaches 16H (the TSC leaves); leaves 0EH..14H are zero even if the host answered them with
	 * its highest leaf's data; 17H and up and 80000002H and up answer as 16H. */
	c.host_max_basic = 0xd;
	c.host_max_ext = 0x80000001;
	r = ask(&c, 0, 0, ONES);
	CHECK_EQ(r.eax, 0x16);
	r = ask(&c, 0x80000000, 0, ONES);
	CHECK_EQ(r.eax, 0x80000001);
	for (uint32_t l = 0xe; l <= 0x14; l++) {
		CHECK_EQ(cpuid_guest_leaf(&c, l), l);
		CHECK_EQ(cpuid_needs_host(&c, l), false);
		r = cpuid_guest(&c, l, 0, ONES);              /* even handed the host's garbage */
		CHECK_REGS(r, 0, 0, 0, 0);
	}
	r = ask(&c, 0xb, 0, ONES);                            /* made up: the host need not have it */
	CHECK_REGS(r, 2, 3, 0x100, 1);
	CHECK_EQ(cpuid_guest_leaf(&c, 0x17), 0x16);
	CHECK_EQ(cpuid_guest_leaf(&c, 0x1f), 0x16);
	CHECK_EQ(cpuid_guest_leaf(&c, 0x80000002), 0x16);
	r = ask(&c, 0x80000008, 0, ONES);
	CHECK_REGS(r, 2000, 2000, 2000, 0);                  /* leaf 16H's data */

	/* A host with more than we describe: clamped. */
	c = cfg_ones();
	c.host_max_basic = 0x23;
	c.host_max_ext = 0x80000021;
	CHECK_EQ(ask(&c, 0, 0, ONES).eax, 0x1f);
	CHECK_EQ(ask(&c, 0x80000000, 0, ONES).eax, 0x80000008);

	/* The leaves the policy makes up whole need no host CPUID (the exit skips it). */
	c = cfg_ones();
	CHECK_EQ(cpuid_needs_host(&c, HV_CPUID_BASE), false);
	CHECK_EQ(cpuid_needs_host(&c, 0xb), false);
	CHECK_EQ(cpuid_needs_host(&c, 0x15), false);
	CHECK_EQ(cpuid_needs_host(&c, 1), true);
	CHECK_EQ(cpuid_needs_host(&c, 0xd), true);
}

/* The speculation controls spec.c gives guests (cpuid_cfg.spec_7_edx, spec_80000008_ebx) pass from
 * the host, no more: not its other bits, not a bit the host lacks, nothing when it gives none. */
static void test_spec_bits(void)
{
	struct cpuid_cfg c = cfg_ones();
	struct cpuid_regs none = ask(&c, 7, 0, ONES), host = ONES, r;

	CHECK_EQ(none.edx & 0xfc000000u, 0);
	c.spec_7_edx = B(26) /* IBRS/IBPB */ | B(31) /* SSBD */ | B(0) /* not a spec bit */;
	r = ask(&c, 7, 0, ONES);
	CHECK_EQ(r.edx, none.edx | B(26) | B(31));
	CHECK_EQ(r.eax, none.eax);
	CHECK_EQ(r.ebx, none.ebx);
	CHECK_EQ(r.ecx, none.ecx);
	host.edx = ~B(31);
	r = ask(&c, 7, 0, host);
	CHECK_EQ(r.edx & 0xfc000000u, B(26));
	r = ask(&c, 7, 1, ONES);
	CHECK_EQ(r.edx & 0xfc000000u, 0);

	/* AMD's enumeration, Fn8000_0008_EBX (IBPB 12, IBRS 14, STIBP 15, SSBD 24): the same rule. */
	c = cfg_ones();
	none = ask(&c, 0x80000008, 0, ONES);
	CHECK_EQ(none.ebx, 0);
	c.spec_80000008_ebx = B(12) | B(14) | B(15) | B(24) | B(17) /* STIBP always on */ | B(25) /* VIRT_SSBD */;
	r = ask(&c, 0x80000008, 0, ONES);
	CHECK_REGS(r, none.eax, B(12) | B(14) | B(15) | B(24), none.ecx, none.edx);
	host.ebx = ~B(14);
	r = ask(&c, 0x80000008, 0, host);
	CHECK_EQ(r.ebx, B(12) | B(15) | B(24));
	r = ask(&c, 7, 0, ONES);                         /* and nothing of it in leaf 7 */
	CHECK_EQ(r.edx & 0xfc000000u, 0);
}

/* vcpu/cpuid_cache.h: what the policy answers differently when CR4 or IA32_APIC_BASE.EN change
 * (the vCPU state a guest changes) is never kept; the cache keeps and finds by EAX and ECX, and an
 * empty cache finds nothing. */
static void test_cache(void)
{
	struct cpuid_cfg a = cfg_ones(), b = cfg_ones();
	struct vcpu_cpuid_cache cache;
	const struct vcpu_cpuid_entry *e;

	a.cr4 = 0;
	a.apic_enabled = false;
	b.cr4 = ~0ull;
	b.apic_enabled = true;
	for (unsigned i = 0; i < NLEAVES; i++)
		for (uint32_t sub = 0; sub <= 70; sub++) {
			struct cpuid_regs x = ask(&a, leaves[i], sub, ONES), y = ask(&b, leaves[i], sub, ONES);

			if (x.eax != y.eax || x.ebx != y.ebx || x.ecx != y.ecx || x.edx != y.edx)
				CHECK(!vcpu_cpuid_keepable(cpuid_guest_leaf(&a, leaves[i])));
		}
	CHECK(!vcpu_cpuid_keepable(0xd));                   /* EBX: the size for the XCR0 loaded */
	CHECK(vcpu_cpuid_keepable(0) && vcpu_cpuid_keepable(HV_CPUID_BASE) && vcpu_cpuid_keepable(0xb));

	vcpu_cpuid_cache_init(&cache);
	for (unsigned i = 0; i < NLEAVES; i++)
		for (uint32_t sub = 0; sub <= 2; sub++)
			CHECK(vcpu_cpuid_lookup(&cache, leaves[i], sub) == NULL);
	for (uint32_t l = 0; l < 64; l++)
		CHECK(vcpu_cpuid_lookup(&cache, l, 0) == NULL);

	vcpu_cpuid_keep(&cache, HV_CPUID_BASE, 0, 1, 2, 3, 4);
	vcpu_cpuid_keep(&cache, 0x80000008, 0, 5, 6, 7, 8);
	e = vcpu_cpuid_lookup(&cache, HV_CPUID_BASE, 0);
	CHECK(e && e->eax == 1 && e->ebx == 2 && e->ecx == 3 && e->edx == 4);
	CHECK(vcpu_cpuid_lookup(&cache, HV_CPUID_BASE, 1) == NULL);   /* another subleaf */
	e = vcpu_cpuid_lookup(&cache, 0x80000008, 0);
	CHECK(e && e->eax == 5 && e->edx == 8);
	CHECK(vcpu_cpuid_slot(0) != vcpu_cpuid_slot(HV_CPUID_BASE) && vcpu_cpuid_slot(0) != vcpu_cpuid_slot(0x80000000));
	/* A leaf of the same slot replaces the one there. */
	for (uint32_t l = 0; l < 0x100; l++)
		if (l != HV_CPUID_BASE && vcpu_cpuid_slot(l) == vcpu_cpuid_slot(HV_CPUID_BASE)) {
			vcpu_cpuid_keep(&cache, l, 0, 9, 9, 9, 9);
			CHECK(vcpu_cpuid_lookup(&cache, HV_CPUID_BASE, 0) == NULL);
			CHECK(vcpu_cpuid_lookup(&cache, l, 0) != NULL);
			break;
		}
}

/* The CR4 bits a guest may set, from what its CPUID shows (SDM Vol. 3A, 2.5), bit by bit: on an
 * all-ones host, what the policy passes; the hidden features' bits (MCE, LA57, VMXE, SMXE, KL, CET,
 * PKS, UINTR) and the reserved ones never; on an all-zeros host only PCE. */
static void test_cr4_allowed(void)
{
	struct cpuid_cfg c = cfg_ones();
	uint64_t m = cpuid_cr4_allowed(ask(&c, 1, 0, ONES), ask(&c, 7, 0, ONES));
	uint64_t want = B(0) | B(1) | B(2) | B(3) | B(4) | B(5) | B(7) | B(8) | B(9) | B(10) | B(11) |
			B(16) | B(17) | B(18) | B(20) | B(21) | B(22);

	CHECK_EQ(m, want);
	CHECK_EQ(cpuid_cr4_allowed(ONES, ONES), 0x3ff7fffull);   /* every feature: all of 25:0 but 15 */
	CHECK_EQ(cpuid_cr4_allowed(ZEROS, ZEROS), B(8));
	/* One feature at a time: PKU alone gives PKE alone; CET by either of its two bits. */
	CHECK_EQ(cpuid_cr4_allowed(ZEROS, (struct cpuid_regs){ 0, 0, B(3), 0 }), B(8) | B(22));
	CHECK_EQ(cpuid_cr4_allowed(ZEROS, (struct cpuid_regs){ 0, 0, 0, B(20) }), B(8) | B(23));
	CHECK_EQ(cpuid_cr4_allowed((struct cpuid_regs){ 0, 0, 0, B(1) }, ZEROS), B(8) | B(0) | B(1));
	/* Shadow paging offers PCID whatever the host has: PCIDE with it. */
	c = cfg_ones();
	c.pcid_emulated = true;
	CHECK(cpuid_cr4_allowed(ask(&c, 1, 0, (struct cpuid_regs){ ~0u, ~0u, ~B(17), ~0u }), ZEROS) & B(17));
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_ones_within_allow_list);
	RUN(test_ones_exact);
	RUN(test_zeros);
	RUN(test_config);
	RUN(test_ranges);
	RUN(test_spec_bits);
	RUN(test_cache);
	RUN(test_cr4_allowed);
	return unit_report(argv[0]);
}
