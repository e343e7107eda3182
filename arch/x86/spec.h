/* The CPU's speculative-execution vulnerabilities and the mitigations chosen for them: what CPUID and
 * IA32_ARCH_CAPABILITIES report, the choice (spec_choose, pure logic, unit-tested), and the state the
 * entry/exit path and the guests' MSR and CPUID handling read. References: SDM Vol. 2A, CPUID leaf 07H
 * (Table 3-8, EDX); SDM Vol. 4, Table 2-2 (IA32_SPEC_CTRL, IA32_PRED_CMD, IA32_ARCH_CAPABILITIES,
 * IA32_FLUSH_CMD); AMD APM Vol. 3, Appendix E (CPUID Fn8000_0008_EBX); AMD's "Software Techniques for
 * Managing Speculation on AMD Processors" and "Speculative Store Bypass Disable"; Intel's "Speculative
 * Execution Side Channel Mitigations", "Deep Dive: Intel Analysis of L1 Terminal Fault", "Deep Dive:
 * Intel Analysis of Microarchitectural Data Sampling", "Retpoline: A Branch Target Injection
 * Mitigation" and "Post-barrier Return Stack Buffer Predictions". */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* CPUID.(EAX=07H,ECX=0):EDX bits (SDM Vol. 2A, Table 3-8). */
#define CPUID_7_0_EDX_MD_CLEAR    (1u << 10)  /* VERW overwrites the CPU's buffers (MDS) */
#define CPUID_7_0_EDX_IBRS_IBPB   (1u << 26)  /* IA32_SPEC_CTRL.IBRS and IA32_PRED_CMD.IBPB */
#define CPUID_7_0_EDX_STIBP       (1u << 27)  /* IA32_SPEC_CTRL.STIBP */
#define CPUID_7_0_EDX_L1D_FLUSH   (1u << 28)  /* IA32_FLUSH_CMD.L1D_FLUSH */
#define CPUID_7_0_EDX_ARCH_CAPS   (1u << 29)  /* IA32_ARCH_CAPABILITIES exists */
#define CPUID_7_0_EDX_CORE_CAPS   (1u << 30)  /* IA32_CORE_CAPABILITIES exists */
#define CPUID_7_0_EDX_SSBD        (1u << 31)  /* IA32_SPEC_CTRL.SSBD */
/* Every leaf-7 EDX bit that names a speculation-control MSR or one of its bits: guests see those of
 * spec_guest_cpuid7_edx() only. */
#define CPUID_7_0_EDX_SPEC_MSRS   (CPUID_7_0_EDX_IBRS_IBPB | CPUID_7_0_EDX_STIBP | CPUID_7_0_EDX_L1D_FLUSH | \
				   CPUID_7_0_EDX_ARCH_CAPS | CPUID_7_0_EDX_CORE_CAPS | CPUID_7_0_EDX_SSBD)
_Static_assert(CPUID_7_0_EDX_SPEC_MSRS == 0xfc000000u, "SDM Vol. 2A, Table 3-8: EDX bits 26-31");
#define CPUID_7_0_EBX_RTM         (1u << 11)  /* TSX restricted transactional memory (TAA needs it) */

/* CPUID Fn8000_0008_EBX bits: AMD's enumeration of the same MSRs (APM Vol. 3, Appendix E; AMD's
 * "Software Techniques for Managing Speculation on AMD Processors", IBPB/IBRS/STIBP; "Speculative
 * Store Bypass Disable", SSBD). AMD CPUs leave leaf 7's EDX bits 26-31 clear; MSRs 48h and 49h and
 * their bits 0-2 are Intel's. */
#define CPUID_80000008_EBX_IBPB   (1u << 12)  /* IA32_PRED_CMD.IBPB */
#define CPUID_80000008_EBX_IBRS   (1u << 14)  /* IA32_SPEC_CTRL.IBRS */
#define CPUID_80000008_EBX_STIBP  (1u << 15)  /* IA32_SPEC_CTRL.STIBP */
#define CPUID_80000008_EBX_SSBD   (1u << 24)  /* IA32_SPEC_CTRL.SSBD */
/* The bits that name one of those MSRs or bits: guests see those of spec_guest_cpuid80000008_ebx()
 * only. Not given: STIBP always on 17, IBRS preferred 18, IBRS same mode 19 (hints on how the host
 * should use them, not controls), VIRT_SSBD 25 (MSR C001_011Fh, not emulated). */
#define CPUID_80000008_EBX_SPEC_MSRS (CPUID_80000008_EBX_IBPB | CPUID_80000008_EBX_IBRS | \
				      CPUID_80000008_EBX_STIBP | CPUID_80000008_EBX_SSBD)

/* The MSRs. SDM Vol. 4, Table 2-2. */
#define MSR_IA32_SPEC_CTRL        0x48
#define SPEC_CTRL_IBRS            (1ull << 0)  /* indirect branch restricted speculation */
#define SPEC_CTRL_STIBP           (1ull << 1)  /* single thread indirect branch predictors */
#define SPEC_CTRL_SSBD            (1ull << 2)  /* speculative store bypass disable */
#define MSR_IA32_PRED_CMD         0x49         /* write-only */
#define PRED_CMD_IBPB             (1ull << 0)  /* indirect branch prediction barrier */
#define MSR_IA32_ARCH_CAPABILITIES 0x10a       /* read-only */
#define ARCH_CAP_RDCL_NO          (1ull << 0)  /* not affected by rogue data cache load (nor L1TF) */
#define ARCH_CAP_IBRS_ALL         (1ull << 1)  /* enhanced IBRS: IBRS may stay set */
#define ARCH_CAP_RSBA             (1ull << 2)  /* RET may predict from the BTB when the RSB is empty */
#define ARCH_CAP_SKIP_L1DFL_VMENTRY (1ull << 3) /* a VMM need not flush the L1D on VM entry */
#define ARCH_CAP_SSB_NO           (1ull << 4)  /* not affected by speculative store bypass */
#define ARCH_CAP_MDS_NO           (1ull << 5)  /* not affected by microarchitectural data sampling */
#define ARCH_CAP_IF_PSCHANGE_MC_NO (1ull << 6) /* no machine check on instruction-fetch page-size change */
#define ARCH_CAP_TSX_CTRL         (1ull << 7)  /* IA32_TSX_CTRL exists */
#define ARCH_CAP_TAA_NO           (1ull << 8)  /* not affected by TSX asynchronous abort */
#define ARCH_CAP_SBDR_SSDP_NO     (1ull << 13) /* MMIO stale data: not affected by SBDR/SSDP */
#define ARCH_CAP_FBSDP_NO         (1ull << 14) /* ... nor FBSDP */
#define ARCH_CAP_PSDP_NO          (1ull << 15) /* ... nor PSDP */
#define ARCH_CAP_FB_CLEAR         (1ull << 17) /* VERW clears the fill buffers */
#define ARCH_CAP_RRSBA            (1ull << 19) /* restricted RSB alternate behaviour */
#define ARCH_CAP_BHI_NO           (1ull << 20) /* not affected by branch history injection */
#define ARCH_CAP_PBRSB_NO         (1ull << 24) /* not affected by post-barrier RSB predictions */
#define ARCH_CAP_GDS_NO           (1ull << 27) /* not affected by gather data sampling */
#define ARCH_CAP_RFDS_NO          (1ull << 28) /* not affected by register file data sampling */
#define ARCH_CAP_RFDS_CLEAR       (1ull << 29) /* affected by RFDS, and VERW clears the register files */
/* What guests may read of the host's value: the "not affected" and capability bits that need no MSR
 * of their own (TSX_CTRL, MCU_CONTROL, MISC_PACKAGE_CTRLS, FB_CLEAR_CTRL, GDS_CTRL... name MSRs that
 * msr.c does not emulate). */
#define ARCH_CAP_GUEST_BITS (ARCH_CAP_RDCL_NO | ARCH_CAP_IBRS_ALL | ARCH_CAP_RSBA | \
			     ARCH_CAP_SKIP_L1DFL_VMENTRY | ARCH_CAP_SSB_NO | ARCH_CAP_MDS_NO | \
			     ARCH_CAP_IF_PSCHANGE_MC_NO | ARCH_CAP_TAA_NO | ARCH_CAP_SBDR_SSDP_NO | \
			     ARCH_CAP_FBSDP_NO | ARCH_CAP_PSDP_NO | ARCH_CAP_FB_CLEAR | ARCH_CAP_RRSBA | \
			     ARCH_CAP_BHI_NO | ARCH_CAP_PBRSB_NO | ARCH_CAP_GDS_NO | ARCH_CAP_RFDS_NO | \
			     ARCH_CAP_RFDS_CLEAR)
#define MSR_IA32_FLUSH_CMD        0x10b        /* write-only */
#define FLUSH_CMD_L1D             (1ull << 0)  /* write back and invalidate the L1 data cache */

/* What the CPU reports: the input of the choice. */
struct spec_cpu {
	bool intel;              /* GenuineIntel: L1TF, MDS and TAA are Intel's (others: not affected) */
	uint32_t cpuid7_ebx;     /* CPUID.(EAX=07H,ECX=0):EBX and EDX, 0 without leaf 7 */
	uint32_t cpuid7_edx;
	uint64_t arch_caps;      /* IA32_ARCH_CAPABILITIES, 0 when CPUID.7.0:EDX[29] is clear */
	uint32_t cpuid80000008_ebx; /* CPUID Fn8000_0008_EBX (AMD's bits), 0 without that leaf */
};

/* Mitigations in force (spec_policy.on). */
#define SPEC_L1D_FLUSH   (1u << 0)  /* IA32_FLUSH_CMD.L1D_FLUSH before every VM entry (L1TF; MDS too) */
#define SPEC_VERW        (1u << 1)  /* VERW before every VM entry (MDS, TAA, RFDS) */
#define SPEC_IBPB        (1u << 2)  /* IBPB when a CPU goes from one guest's vCPU to another guest's */
#define SPEC_RSB_FILL    (1u << 3)  /* 32 RSB entries overwritten after every VM exit */
#define SPEC_RSB_CALL    (1u << 5)  /* eIBRS with PBRSB: one round (2 CALLs) of the same after every exit */
#define SPEC_EIBRS       (1u << 4)  /* IA32_SPEC_CTRL.IBRS kept set in the hypervisor (enhanced IBRS) */
/* Vulnerabilities the CPU has that nothing here mitigates (spec_policy.open). */
#define SPEC_OPEN_L1TF   (1u << 0)  /* affected, no L1D_FLUSH command */
#define SPEC_OPEN_MDS    (1u << 1)  /* affected (MDS, TAA or RFDS), VERW does not clear the buffers */
#define SPEC_OPEN_IBPB   (1u << 2)  /* no IBPB: guests can train each other's indirect branches */

struct spec_policy {
	uint32_t on, open;
	uint64_t host_spec_ctrl;      /* IA32_SPEC_CTRL while the hypervisor runs */
	uint64_t guest_spec_ctrl_bits; /* IA32_SPEC_CTRL bits a guest may set; 0: no such MSR for guests */
	uint32_t guest_cpuid7_edx;    /* the CPUID_7_0_EDX_SPEC_MSRS bits guests see */
	uint32_t guest_cpuid80000008_ebx; /* the CPUID_80000008_EBX_SPEC_MSRS bits guests see */
	uint64_t guest_arch_caps;     /* what a guest reads in IA32_ARCH_CAPABILITIES */
};

/* Guests may write IA32_PRED_CMD (an IBPB), enumerated to them by either vendor's bit. */
static inline bool spec_guest_pred_cmd(const struct spec_policy *p)
{
	return (p->guest_cpuid7_edx & CPUID_7_0_EDX_IBRS_IBPB) ||
	       (p->guest_cpuid80000008_ebx & CPUID_80000008_EBX_IBPB);
}

/* The choice, from what the CPU reports only. */
void spec_choose(const struct spec_cpu *cpu, struct spec_policy *p);
/* The console line's text for a policy: "on: ...; not needed: ...; OPEN: ...; guests: ...". */
unsigned spec_describe(const struct spec_cpu *cpu, const struct spec_policy *p, char *buf, unsigned size);

#ifndef HOST_TEST
#include "arch/x86/cpu.h"

extern struct spec_policy spec;
/* Read by vmx/entry.asm: rounds of two CALLs that overwrite the RSB after each VM exit (16, 1 or 0),
 * and 1 to VERW before each VM entry. */
extern uint8_t spec_rsb_rounds, spec_verw_on_entry;
extern const uint16_t spec_verw_sel;

/* Reads the CPU, chooses, prints the `hv: spec:` line. Once, on the boot CPU. */
void spec_init(void);
/* Applies the host's part on the calling CPU (IA32_SPEC_CTRL): every CPU before it runs guests. */
void spec_cpu_on(void);
/* CPUID.7.0:EDX's speculation-control bits a guest may see (vcpu/cpuid.c): the mask of
 * CPUID_7_0_EDX_SPEC_MSRS to keep; the other bits of that set must be cleared. */
uint32_t spec_guest_cpuid7_edx(void);
/* The same for CPUID Fn8000_0008_EBX: the mask of CPUID_80000008_EBX_SPEC_MSRS to keep. */
uint32_t spec_guest_cpuid80000008_ebx(void);

/* IA32_SPEC_CTRL while a guest whose own value is `guest` runs: its value, with IBRS kept set under
 * enhanced IBRS (the guest's own protection, never less than it asked for; it reads back its own
 * value, vcpu/msr.c). Equal to the host's value in the common cases: then no WRMSR at all. */
static inline uint64_t spec_ctrl_in_guest(uint64_t guest)
{
	return guest | (spec.host_spec_ctrl & SPEC_CTRL_IBRS);
}

/* The last steps before VM entry (vmx/exit.c, prepare_entry): the guest's IA32_SPEC_CTRL, then the
 * L1D flush, last, so that nothing the hypervisor reads after it is left for the guest (VERW, which
 * must follow every load of others' data, is in vmx/entry.asm). */
static inline void spec_before_entry(uint64_t guest_spec_ctrl)
{
	uint64_t ctrl = spec_ctrl_in_guest(guest_spec_ctrl);

	if (__builtin_expect(ctrl != spec.host_spec_ctrl, 0))
		wrmsr(MSR_IA32_SPEC_CTRL, ctrl);
	if (spec.on & SPEC_L1D_FLUSH)
		wrmsr(MSR_IA32_FLUSH_CMD, FLUSH_CMD_L1D);
}

/* The first step after a VM exit (or a failed VM entry): the hypervisor's IA32_SPEC_CTRL back. */
static inline void spec_after_exit(uint64_t guest_spec_ctrl)
{
	if (__builtin_expect(spec_ctrl_in_guest(guest_spec_ctrl) != spec.host_spec_ctrl, 0))
		wrmsr(MSR_IA32_SPEC_CTRL, spec.host_spec_ctrl);
}

/* IBPB: indirect branches after it predict nothing learnt before it (SDM Vol. 4, IA32_PRED_CMD). */
static inline void spec_ibpb(void)
{
	wrmsr(MSR_IA32_PRED_CMD, PRED_CMD_IBPB);
}
#endif
