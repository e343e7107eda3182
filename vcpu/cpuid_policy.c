/* What CPUID tells a guest, leaf by leaf: an allow-list over the host's values. A bit reaches a guest
 * only if it is named below with what makes it safe: the instruction runs natively and touches only
 * state the vCPU switch saves (XSAVE, the VMCS), or the MSR it enumerates is emulated (msr.c,
 * vdev/lapic.c), or the bit only describes (caches, address sizes). Everything else, including every
 * feature of a CPU newer than this list, reads 0: a guest sees a CPU without it, and an OS that
 * checks CPUID never touches its MSRs or instructions. Bit names and numbers: SDM Vol. 2A, CPUID,
 * Table 3-8 (leaves), Tables 3-10/3-11 (leaf 1), Table 3-8's leaf 07H rows; MSRs: SDM Vol. 4, 2.1. */
#include "vcpu/cpuid_policy.h"

#define BIT(n) (1u << (n))

/* --- Leaf 1: version and features (Tables 3-10, 3-11) ------------------------------------------- */
/* ECX from the host: instructions that run natively on registers the vCPU switch saves (FXSAVE/
 * XSAVE state): SSE3, PCLMULQDQ, SSSE3, FMA, CMPXCHG16B, SSE4.1, SSE4.2, MOVBE, POPCNT, AESNI, AVX,
 * F16C, RDRAND (no RDRAND exiting); PCID (CR4.PCIDE, checked in cr.c; EPT tags TLBs by VPID too);
 * XSAVE (XSETBV is emulated, cr.c, over the XCR0 bits the host allows). */
#define L1_ECX (BIT(0) | BIT(1) | BIT(9) | BIT(12) | BIT(13) | L1_ECX_PCID | BIT(19) | BIT(20) | \
		BIT(22) | BIT(23) | BIT(25) | BIT(26) | BIT(28) | BIT(29) | BIT(30))
#define L1_ECX_PCID       BIT(17)   /* also where the host has none, on shadow paging (pcid_emulated) */
/* Hidden (their MSRs or instructions are not emulated): DTES64 2, MONITOR 3 (MWAIT/MONITOR exit and
 * #UD), DS-CPL 4, VMX 5 (no nested VMX), SMX 6 (GETSEC), EIST 7, TM2 8, CNXT-ID 10 and xTPR 14
 * (IA32_MISC_ENABLE bits), SDBG 11 (IA32_DEBUG_INTERFACE), PDCM 15 (IA32_PERF_CAPABILITIES), DCA 18. */
#define L1_ECX_X2APIC     BIT(21)   /* emulated: vdev/lapic.c, MSRs 0x800-0x8ff */
#define L1_ECX_TSC_DL     BIT(24)   /* emulated: IA32_TSC_DEADLINE, vdev/lapic.c */
#define L1_ECX_OSXSAVE    BIT(27)   /* the guest's CR4.OSXSAVE */
#define L1_ECX_HYPERVISOR BIT(31)   /* reserved for hypervisors by convention */
/* EDX from the host: FPU, VME, DE, PSE, TSC, MSR, PAE, CX8, SEP (SYSENTER MSRs in the VMCS), MTRR
 * (IA32_MTRRCAP reads 0 ranges, MTRR_DEF_TYPE emulated), PGE, CMOV, PAT (emulated), PSE-36, CLFSH,
 * MMX, FXSR, SSE, SSE2, SS (describes the caches). Hidden: MCE 7 and MCA 14 (MCG_* MSRs), PSN 18,
 * DS 21, ACPI 22 (thermal MSRs), TM 29, PBE 31. */
#define L1_EDX (BIT(0) | BIT(1) | BIT(2) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(8) | BIT(11) | \
		BIT(12) | BIT(13) | BIT(15) | BIT(16) | BIT(17) | BIT(19) | BIT(23) | BIT(24) | BIT(25) | \
		BIT(26) | BIT(27))
#define L1_EDX_APIC BIT(9)          /* the virtual local APIC, while IA32_APIC_BASE.EN */
#define L1_EDX_HTT  BIT(28)         /* more than one logical processor in the package */

/* --- Leaf 7: structured extended features --------------------------------------------------------- */
/* Subleaf 0 EBX from the host: FSGSBASE 0 (the bases live in the VMCS), BMI1 3, HLE 4, AVX2 5,
 * FDP_EXCPTN_ONLY 6, SMEP 7, BMI2 8, ERMS 9, RTM 11, FPU CS/DS deprecated 13, AVX512F 16, AVX512DQ 17,
 * RDSEED 18, ADX 19, SMAP 20, AVX512_IFMA 21, CLFLUSHOPT 23, CLWB 24, AVX512PF 26, AVX512ER 27,
 * AVX512CD 28, SHA 29, AVX512BW 30, AVX512VL 31. Hidden: SGX 2, RDT-M 12 and RDT-A 15 (IA32_PQR_*),
 * MPX 14 (IA32_BNDCFGS; its XCR0 bits are refused too, vcpu.c), Intel PT 25. */
#define L7_EBX (BIT(0) | BIT(3) | BIT(4) | BIT(5) | BIT(6) | BIT(7) | BIT(8) | BIT(9) | BIT(11) | \
		BIT(13) | BIT(16) | BIT(17) | BIT(18) | BIT(19) | BIT(20) | BIT(21) | BIT(23) | BIT(24) | \
		BIT(26) | BIT(27) | BIT(28) | BIT(29) | BIT(30) | BIT(31))
#define L7_EBX_TSC_ADJUST BIT(1)    /* emulated: IA32_TSC_ADJUST over the VMCS TSC offset (msr.c) */
#define L7_EBX_INVPCID    BIT(10)   /* only with "enable INVPCID", else it #UDs (SDM Vol. 3C, 26.3) */
/* ECX from the host: PREFETCHWT1 0, AVX512_VBMI 1, UMIP 2 (CR4.UMIP: SGDT & co. #GP at CPL > 0
 * natively), PKU 3 (PKRU is XSAVE state), AVX512_VBMI2 6, GFNI 8, VAES 9, VPCLMULQDQ 10,
 * AVX512_VNNI 11, AVX512_BITALG 12, AVX512_VPOPCNTDQ 14, CLDEMOTE 25, MOVDIRI 27, MOVDIR64B 28.
 * Hidden: WAITPKG 5 (needs a control we do not set), CET_SS 7 (IA32_U_CET/S_CET), TME 13, LA57 16
 * (the hypervisor's guest page walker, gpt.c, has 4 levels), MAWAU 21:17 (MPX),
 * Key Locker 23, BUS_LOCK_DETECT 24, ENQCMD 29 (IA32_PASID), SGX_LC 30, PKS 31 (IA32_PKRS). */
#define L7_ECX (BIT(0) | BIT(1) | BIT(2) | L7_ECX_PKU | BIT(6) | BIT(8) | BIT(9) | BIT(10) | BIT(11) | \
		BIT(12) | BIT(14) | BIT(25) | BIT(27) | BIT(28))
#define L7_ECX_PKU   BIT(3)         /* hidden on shadow paging (no_pkeys) */
#define L7_ECX_OSPKE BIT(4)         /* the guest's CR4.PKE */
#define L7_ECX_RDPID BIT(22)        /* only with "enable RDTSCP", else it #UDs (SDM Vol. 3C, 26.3) */
/* EDX from the host: AVX512_4VNNIW 2, AVX512_4FMAPS 3, fast short REP MOV 4, AVX512_VP2INTERSECT 8,
 * RTM_ALWAYS_ABORT 11 (describes RTM), SERIALIZE 14, TSXLDTRK 16, AVX512_FP16 23. Hidden: SGX-KEYS 1,
 * UINTR 5, TSX_FORCE_ABORT 13 (its MSR), hybrid 15 (leaf 1AH is not described), PCONFIG 18, arch LBR
 * 19, CET_IBT 20, AMX 22/24/25 (tile state is not switched, vcpu.c), CORE_CAPABILITIES 30; and the
 * speculation controls (9, 10, 26-29, 31), see cpuid_spec_bits. */
#define L7_EDX (BIT(2) | BIT(3) | BIT(4) | BIT(8) | BIT(11) | BIT(14) | BIT(16) | BIT(23))
/* Subleaf 1 EAX from the host: AVX-VNNI 4, AVX512_BF16 5, fast zero-length REP MOVSB 10, fast short
 * REP STOSB 11 and CMPSB/SCASB 12. Hidden: everything newer, e.g. HRESET 22 (IA32_HRESET_ENABLE),
 * LAM 26 (CR3/CR4 bits), FRED 17 and LKGS 18 (FRED's MSRs and state are not switched). */
#define L7_1_EAX (BIT(4) | BIT(5) | BIT(10) | BIT(11) | BIT(12))
/* IBRS/IBPB 26, STIBP 27, L1D_FLUSH 28, ARCH_CAPABILITIES 29, CORE_CAPABILITIES 30, SSBD 31: at
 * most those of cpuid_cfg.spec_7_edx (the MSRs arch/x86/spec.c gives guests on this CPU). */
#define L7_EDX_SPEC_MSRS 0xfc000000u
#define L7_MAX_SUB 2u                /* subleaf 2 holds only speculation-control bits */

/* --- Leaf 0DH: XSAVE (SDM Vol. 1, 13.2) ---------------------------------------------------------- */
/* Subleaf 1 EAX: XSAVEOPT 0, XSAVEC 1, XGETBV with ECX = 1 2. Hidden: XSAVES/XRSTORS 3 ("enable
 * XSAVES/XRSTORS" is not set: they #UD, and IA32_XSS is not emulated), XFD 4 (IA32_XFD). */
#define LD_1_EAX (BIT(0) | BIT(1) | BIT(2))
#define LD_N_ECX BIT(1)              /* component n: 64-byte aligned in the compacted format */

/* --- Extended leaves -------------------------------------------------------------------------------- */
/* 80000001H ECX: LAHF/SAHF 0, LZCNT 5, PREFETCHW 8. EDX: SYSCALL 11 (STAR & co. switched), NX 20,
 * 1-GByte pages 26 (the guest's own page tables), LM 29; RDTSCP 27 only with "enable RDTSCP". */
#define LX1_ECX (BIT(0) | BIT(5) | BIT(8))
#define LX1_EDX (BIT(11) | BIT(20) | BIT(26) | BIT(29))
#define LX1_EDX_RDTSCP BIT(27)
#define LX7_EDX BIT(8)               /* 80000007H: invariant TSC (the guest TSC is the host's, offset) */
#define LX8_EAX 0xffffu              /* 80000008H: physical and linear address bits (EPT's width) */
/* 80000008H EBX: IBPB 12, IBRS 14, STIBP 15, SSBD 24 (AMD's enumeration of IA32_PRED_CMD and
 * IA32_SPEC_CTRL's bits, APM Vol. 3, Appendix E): at most those of cpuid_cfg.spec_80000008_ebx. */
#define LX8_EBX_SPEC_MSRS (BIT(12) | BIT(14) | BIT(15) | BIT(24))

/* The speculation-control bits, all hidden until arch/x86/spec.c emulates their MSRs. Candidates:
 * leaf 7.0 EDX SRBDS_CTRL 9 (IA32_MCU_OPT_CTRL), MD_CLEAR 10 (VERW), IBRS/IBPB 26, STIBP 27,
 * L1D_FLUSH 28 (IA32_FLUSH_CMD), ARCH_CAPABILITIES 29, SSBD 31 (IA32_SPEC_CTRL, IA32_PRED_CMD); leaf
 * 7.2 EDX: PSFD, IPRED_CTRL, RRSBA_CTRL, DDPD_U, BHI_CTRL, MCDT_NO (more IA32_SPEC_CTRL bits); leaf
 * 80000008H EBX: IBPB 12, IBRS 14, STIBP 15, STIBP always on 17, IBRS preferred 18, IBRS same mode
 * 19, SSBD 24, VIRT_SSBD 25 (MSR C001_011FH), SSB_NO 26, PSFD 28 (AMD's enumeration). To
 * open one, return it here: cpuid_guest and the unit test take the allow-list with it. */
struct cpuid_regs cpuid_spec_bits(uint32_t leaf, uint32_t sub)
{
	(void)leaf, (void)sub;
	return (struct cpuid_regs){ 0, 0, 0, 0 };
}

static struct cpuid_regs or_regs(struct cpuid_regs a, struct cpuid_regs b)
{
	return (struct cpuid_regs){ a.eax | b.eax, a.ebx | b.ebx, a.ecx | b.ecx, a.edx | b.edx };
}

struct cpuid_regs cpuid_allowed(uint32_t leaf, uint32_t sub)
{
	struct cpuid_regs m = { 0, 0, 0, 0 };

	switch (leaf) {
	case 0:                   /* EBX, EDX, ECX: the vendor string (EAX is computed) */
		m = (struct cpuid_regs){ 0, ~0u, ~0u, ~0u };
		break;
	case 1:                   /* EAX: family, model, stepping; EBX[15:0]: brand index, CLFLUSH size */
		m = (struct cpuid_regs){ ~0u, 0xffff, L1_ECX, L1_EDX };
		break;
	case 2:                   /* cache and TLB descriptors: they only describe */
		m = (struct cpuid_regs){ ~0u, ~0u, ~0u, ~0u };
		break;
	case 4:                   /* deterministic cache parameters; EAX[31:14] (sharing) is computed */
		m = (struct cpuid_regs){ 0x3fff, ~0u, ~0u, ~0u };
		break;
	case 6:                   /* ARAT only: the virtual APIC timer runs in every state (no APERF/MPERF,
				   * HWP, thermal or energy MSRs for guests) */
		m.eax = BIT(2);
		break;
	case 7:
		if (sub == 0)
			m = (struct cpuid_regs){ 0, L7_EBX, L7_ECX, L7_EDX };
		else if (sub == 1)
			m.eax = L7_1_EAX;
		break;
	case 0xd:
		if (sub == 0)             /* EBX, ECX: sizes (EAX, EDX: the XCR0 bits, computed) */
			m = (struct cpuid_regs){ 0, ~0u, ~0u, 0 };
		else if (sub == 1)        /* EBX: a size; ECX, EDX: IA32_XSS bits, none */
			m = (struct cpuid_regs){ LD_1_EAX, ~0u, 0, 0 };
		else if (sub < 64)        /* size and offset of component `sub`, if allowed (cpuid_guest) */
			m = (struct cpuid_regs){ ~0u, ~0u, LD_N_ECX, 0 };
		break;
	case 0x80000001:          /* EAX: extended signature */
		m = (struct cpuid_regs){ ~0u, 0, LX1_ECX, LX1_EDX };
		break;
	case 0x80000002: case 0x80000003: case 0x80000004:   /* the brand string */
		m = (struct cpuid_regs){ ~0u, ~0u, ~0u, ~0u };
		break;
	case 0x80000006:          /* ECX: L2 cache size and associativity */
		m.ecx = ~0u;
		break;
	case 0x80000007:
		m.edx = LX7_EDX;
		break;
	case 0x80000008:          /* EBX bit 9 WBNOINVD hidden: not needed, one instruction less;
				   * the speculation controls: cpuid_guest */
		m.eax = LX8_EAX;
		break;
	}
	/* Every other leaf in range reads 0: 3 (PSN), 5 (MONITOR), 8, 9 (DCA), 0AH (performance
	 * monitoring: RDPMC #GPs), 0CH, 0EH, 0FH and 10H (RDT), 11H, 12H (SGX), 13H, 14H (PT), 17H-1EH
	 * (SoC vendor, TLB, Key Locker, hybrid, PCONFIG, LBR, AMX), 80000005H. */
	return or_regs(m, cpuid_spec_bits(leaf, sub));
}

/* CR4's bits and the features that enumerate them (SDM Vol. 3A, 2.5, the bits of Figure 2-7 each
 * "if CPUID reports ..."; Vol. 2A, CPUID, Tables 3-10, 3-11 and leaf 07H). A bit whose feature a
 * guest never sees (CET, KL, PKS, UINTR, LA57: hidden above) stays reserved for it even where the
 * CPU has it; one not listed (15, 26-27, 29-31; LAM_SUP 28 and FRED 32, whose leaf 7.1 bits are
 * hidden) is reserved for every guest. */
static const struct { uint8_t leaf7, reg, bit; uint32_t cr4; } cr4_features[] = {
	{ 0, 3, 1, 1u << 0 | 1u << 1 },   /* VME: CR4.VME, CR4.PVI */
	{ 0, 3, 4, 1u << 2 },             /* TSC: CR4.TSD */
	{ 0, 3, 2, 1u << 3 },             /* DE: CR4.DE */
	{ 0, 3, 3, 1u << 4 },             /* PSE: CR4.PSE */
	{ 0, 3, 6, 1u << 5 },             /* PAE: CR4.PAE */
	{ 0, 3, 7, 1u << 6 },             /* MCE: CR4.MCE */
	{ 0, 3, 13, 1u << 7 },            /* PGE: CR4.PGE */
	{ 0, 3, 24, 1u << 9 },            /* FXSR: CR4.OSFXSR */
	{ 0, 3, 25, 1u << 10 },           /* SSE: CR4.OSXMMEXCPT */
	{ 1, 2, 2, 1u << 11 },            /* UMIP: CR4.UMIP */
	{ 1, 2, 16, 1u << 12 },           /* LA57: CR4.LA57 */
	{ 0, 2, 5, 1u << 13 },            /* VMX: CR4.VMXE */
	{ 0, 2, 6, 1u << 14 },            /* SMX: CR4.SMXE */
	{ 1, 1, 0, 1u << 16 },            /* FSGSBASE: CR4.FSGSBASE */
	{ 0, 2, 17, 1u << 17 },           /* PCID: CR4.PCIDE */
	{ 0, 2, 26, 1u << 18 },           /* XSAVE: CR4.OSXSAVE */
	{ 1, 2, 23, 1u << 19 },           /* KL: CR4.KL */
	{ 1, 1, 7, 1u << 20 },            /* SMEP: CR4.SMEP */
	{ 1, 1, 20, 1u << 21 },           /* SMAP: CR4.SMAP */
	{ 1, 2, 3, 1u << 22 },            /* PKU: CR4.PKE */
	{ 1, 2, 7, 1u << 23 },            /* CET_SS: CR4.CET */
	{ 1, 3, 20, 1u << 23 },           /* CET_IBT: CR4.CET */
	{ 1, 2, 31, 1u << 24 },           /* PKS: CR4.PKS */
	{ 1, 3, 5, 1u << 25 },            /* UINTR: CR4.UINTR */
};

uint64_t cpuid_cr4_allowed(struct cpuid_regs l1, struct cpuid_regs l7)
{
	uint64_t m = 1u << 8;             /* PCE: RDPMC at any CPL (it #GPs anyway: no counters) */

	for (unsigned i = 0; i < sizeof(cr4_features) / sizeof(cr4_features[0]); i++) {
		const struct cpuid_regs *r = cr4_features[i].leaf7 ? &l7 : &l1;
		uint32_t reg = cr4_features[i].reg == 1 ? r->ebx : cr4_features[i].reg == 2 ? r->ecx : r->edx;

		if (reg & BIT(cr4_features[i].bit))
			m |= cr4_features[i].cr4;
	}
	return m;
}

static uint32_t max_basic(const struct cpuid_cfg *c)
{
	uint32_t m = c->host_max_basic;

	return m < CPUID_MIN_BASIC ? CPUID_MIN_BASIC : m > CPUID_MAX_BASIC ? CPUID_MAX_BASIC : m;
}

static uint32_t max_ext(const struct cpuid_cfg *c)
{
	uint32_t m = c->host_max_ext;

	return m < 0x80000000u ? 0x80000000u : m > CPUID_MAX_EXT ? CPUID_MAX_EXT : m;
}

uint32_t cpuid_guest_leaf(const struct cpuid_cfg *c, uint32_t leaf)
{
	if (leaf <= max_basic(c) || (leaf >= HV_CPUID_BASE && leaf <= HV_CPUID_TIMING) ||
	    (leaf >= 0x80000000u && leaf <= max_ext(c)))
		return leaf;
	return max_basic(c);
}

/* Does the host itself have `leaf`? (Beyond its maximum it would answer with another leaf.) */
static bool host_has(const struct cpuid_cfg *c, uint32_t leaf)
{
	return leaf < 0x80000000u ? leaf <= c->host_max_basic && leaf < HV_CPUID_BASE
				  : leaf <= c->host_max_ext;
}

bool cpuid_needs_host(const struct cpuid_cfg *c, uint32_t leaf)
{
	struct cpuid_regs m;

	if (!host_has(c, leaf))
		return false;
	m = or_regs(cpuid_allowed(leaf, 0), cpuid_allowed(leaf, 2));
	return m.eax | m.ebx | m.ecx | m.edx;
}

/* log2 of the number of logical processors a topology level covers: the x2APIC ID bits of the
 * SMT level, the only level (leaf 0BH). */
static unsigned smt_shift(unsigned nvcpus)
{
	unsigned shift = 0;

	while ((1u << shift) < nvcpus)
		shift++;
	return shift;
}

/* The leaves made up whole, whatever the host has. */
static struct cpuid_regs made_up(const struct cpuid_cfg *c, uint32_t leaf, uint32_t sub)
{
	struct cpuid_regs r = { 0, 0, 0, 0 };

	switch (leaf) {
	case 0xb:
	case 0x1f:
		/* Extended topology (SDM Vol. 2A, CPUID leaf 0BH): one SMT level of `nvcpus` logical
		 * processors; EDX is the x2APIC ID, the vCPU's, never the host CPU's. */
		if ((sub & 0xff) == 0) {
			r.eax = smt_shift(c->nvcpus);
			r.ebx = c->nvcpus;
			r.ecx = 1u << 8;           /* level type 1: SMT */
		} else {
			r.ecx = sub & 0xff;        /* level type 0: invalid, the end of the list */
		}
		r.edx = c->index;
		break;
	case 0x15:
		/* TSC and core crystal clock (SDM Vol. 2A, CPUID leaf 15H): TSC = ECX * EBX / EAX Hz. The
		 * guest's local APIC timer counts TSC ticks (vdev/lapic.c), so the "crystal" is the TSC
		 * itself, ratio 1: a kernel then knows both clocks without calibrating them (Linux:
		 * native_calibrate_tsc, lapic_timer_period). Unknown (ECX = 0) past 4.29 GHz. */
		r.eax = r.ebx = 1;
		r.ecx = c->tsc_khz * 1000 <= 0xffffffffull ? (uint32_t)(c->tsc_khz * 1000) : 0;
		break;
	case 0x16:
		/* Processor base/maximum/bus frequencies in MHz (leaf 16H): the TSC's rate for all three. */
		r.eax = r.ebx = r.ecx = (uint32_t)(c->tsc_khz / 1000);
		break;
	}
	return r;
}

struct cpuid_regs cpuid_guest(const struct cpuid_cfg *c, uint32_t leaf, uint32_t sub, struct cpuid_regs host)
{
	struct cpuid_regs m, r;

	if (leaf >= HV_CPUID_BASE && leaf < 0x80000000u)
		return cpuid_hv_leaf(c->tsc_khz, leaf);
	switch (leaf) {
	case 0xb: case 0x1f: case 0x15: case 0x16:
		return made_up(c, leaf, sub);
	}
	m = cpuid_allowed(leaf, sub);
	if (!host_has(c, leaf))
		host = (struct cpuid_regs){ 0, 0, 0, 0 };
	r = (struct cpuid_regs){ host.eax & m.eax, host.ebx & m.ebx, host.ecx & m.ecx, host.edx & m.edx };

	switch (leaf) {
	case 0:
		r.eax = max_basic(c);
		break;
	case 1:
		/* Initial APIC ID = vCPU number; logical processors in the package = the guest's vCPUs. */
		r.ebx |= c->index << 24 | (c->nvcpus & 0xff) << 16;
		r.ecx |= L1_ECX_X2APIC | L1_ECX_TSC_DL | L1_ECX_HYPERVISOR;
		if (c->cr4 & CR4_OSXSAVE)
			r.ecx |= L1_ECX_OSXSAVE;   /* mirrors CR4 (SDM Vol. 2A, CPUID, Table 3-10) */
		if (c->pcid_emulated)
			r.ecx |= L1_ECX_PCID;
		if (c->apic_enabled)
			r.edx |= L1_EDX_APIC;      /* "APIC On-Chip": IA32_APIC_BASE.EN clears it */
		if (c->nvcpus > 1)
			r.edx |= L1_EDX_HTT;
		break;
	case 4:
		/* Cache sharing as leaf 0BH describes the guest: every vCPU a thread of one core, so every
		 * cache is shared by all; EAX[25:14] is (threads sharing - 1), EAX[31:26] (cores - 1). */
		if (r.eax & 0x1f)
			r.eax |= ((1u << smt_shift(c->nvcpus)) - 1) << 14;
		break;
	case 7:
		if (sub == 0) {
			r.eax = host.eax < L7_MAX_SUB ? host.eax : L7_MAX_SUB;
			if (c->tsc_adjust)
				r.ebx |= L7_EBX_TSC_ADJUST;
			r.ebx |= host.ebx & (c->invpcid ? L7_EBX_INVPCID : 0);
			r.edx |= host.edx & c->spec_7_edx & L7_EDX_SPEC_MSRS;
			r.ecx |= host.ecx & (c->rdtscp ? L7_ECX_RDPID : 0);
			if (c->cr4 & CR4_PKE)
				r.ecx |= L7_ECX_OSPKE;
			if (c->no_pkeys)
				r.ecx &= ~(L7_ECX_PKU | L7_ECX_OSPKE);
		}
		break;
	case 0xd:
		if (sub == 0) {                    /* the XCR0 bits a guest may set (cr.c) */
			r.eax = host.eax & (uint32_t)c->xcr0_allowed;
			r.edx = host.edx & (uint32_t)(c->xcr0_allowed >> 32);
		} else if (sub >= 2 && (sub >= 64 || !(c->xcr0_allowed >> sub & 1))) {
			r = (struct cpuid_regs){ 0, 0, 0, 0 };   /* a component the guest cannot enable */
		}
		break;
	case 0x80000000:
		r.eax = max_ext(c);
		break;
	case 0x80000001:
		r.edx |= host.edx & (c->rdtscp ? LX1_EDX_RDTSCP : 0);
		break;
	case 0x80000008:
		r.ebx |= host.ebx & c->spec_80000008_ebx & LX8_EBX_SPEC_MSRS;
		break;
	}
	return r;
}
