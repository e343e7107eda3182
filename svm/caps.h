/* AMD SVM capabilities: what CPUID and VM_CR say about Secure Virtual Machine on this CPU.
 * AMD APM Vol. 2, 15.4 "Enabling SVM", 15.30.1 "VM_CR MSR"; CPUID bits: APM Vol. 3, Appendix E. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* CPUID Fn8000_0001_ECX bit 2: SVM (APM Vol. 3, E.4.2). */
#define CPUID_80000001_ECX_SVM        (1u << 2)
/* CPUID Fn8000_000A: EAX[7:0] SVM revision, EBX number of ASIDs, EDX features (APM Vol. 3, E.4.9;
 * Vol. 2, 15.4). */
#define CPUID_8000000A              0x8000000Au
#define CPUID_8000000A_EDX_NP         (1u << 0)   /* nested paging (15.25) */
#define CPUID_8000000A_EDX_SVML       (1u << 2)   /* SVM lock: SVMDIS can be unlocked with a key (15.31) */
#define CPUID_8000000A_EDX_NRIPS      (1u << 3)   /* nRIP save: next RIP in the VMCB on #VMEXIT (15.7.1) */
#define CPUID_8000000A_EDX_VMCBCLEAN  (1u << 5)   /* VMCB clean bits (15.15) */
#define CPUID_8000000A_EDX_FLUSHASID  (1u << 6)   /* TLB_CONTROL 3 and 7: flush this ASID only (15.16.1) */
#define CPUID_8000000A_EDX_DECODE     (1u << 7)   /* decode assists (15.8) */

/* VM_CR MSR (APM Vol. 2, 15.30.1). */
#define MSR_VM_CR                   0xc0010114u
#define VM_CR_LOCK                    (1ull << 3)  /* SVMDIS is read-only (until unlocked with the key) */
#define VM_CR_SVMDIS                  (1ull << 4)  /* EFER.SVME cannot be set */

/* IA32_PAT (MSR 277h): eight 8-bit entries, entry i in bits 8i+2:8i, a memory type each (APM Vol. 2,
 * 7.8.1, Table 7-10). The nested page tables' leaves select entry 0 for WB and entry 3 for UC
 * (npt/npt.h), so those two must hold those types. */
#define PAT_ENTRY(pat, i)           (((pat) >> (8 * (i))) & 7)
#define PAT_TYPE_UC                   0
#define PAT_TYPE_WB                   6

/* What the probe read, as raw as the CPU gave it (so the decision is a pure function: tests/unit). */
struct svm_cpu {
	bool amd;                   /* vendor "AuthenticAMD" or "HygonGenuine" */
	uint32_t max_ext_leaf;      /* CPUID Fn8000_0000_EAX */
	uint32_t ext1_ecx;          /* CPUID Fn8000_0001_ECX */
	uint32_t a_eax, a_ebx, a_edx; /* CPUID Fn8000_000A (when max_ext_leaf reaches it) */
	uint64_t vm_cr;             /* VM_CR (read only when SVM is reported) */
	uint64_t pat;               /* IA32_PAT (read only when SVM is reported) */
};

struct svm_caps {
	bool present;               /* CPUID shows SVM and leaf 0x8000000A: the fields below are read */
	unsigned revision;          /* Fn8000_000A_EAX[7:0] */
	uint32_t nasid;             /* ASIDs, ASID 0 (the host) included */
	bool npt, nrip_save, flush_by_asid, decode_assists, vmcb_clean;
};

extern struct svm_caps svm_caps;

/*
 * Decides from what was read whether our guests can run on SVM: fills *caps (everything zero when
 * CPUID shows no SVM) and returns true, or returns false with *why saying what is missing. Follows
 * APM Vol. 2, 15.4's sequence: CPUID SVM, then VM_CR.SVMDIS (with SVML telling "locked by firmware"
 * from "unlockable with a key"); then what this hypervisor needs: at least one ASID for guests, and
 * IA32_PAT entries 0 and 3 WB and UC, as at reset (npt/npt.h). Nested paging is not needed: without
 * it guests run on shadow paging (svm/spt.c).
 */
bool svm_caps_decide(const struct svm_cpu *cpu, struct svm_caps *caps, const char **why);

/* The informative line's text: "NPT yes, ASIDs 16, nRIP save no, flush by ASID no, decode assists no".
 * Returns the length (as snprintf), at most size - 1 written. */
unsigned svm_caps_describe(const struct svm_caps *caps, char *buf, unsigned size);

/* Reads CPUID and VM_CR on this CPU and decides (svm_caps_decide) into svm_caps. */
bool svm_probe(const char **why);
