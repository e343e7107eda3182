/* The SVM back end: SVM on every CPU, a VMCB per vCPU, the run loop and its #VMEXITs (svm/vcpu.c).
 * A vCPU's VMCB and ASID are in its struct svm_vcpu (below). AMD APM Vol. 2, chapter 15. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86/cpu.h"
#include "arch/x86/paging.h"
#include "svm/vmcb.h"
#include "vcpu/backend.h"
#include "vcpu/decode.h"
#include "vcpu/guest.h"
#include "vcpu/vcpu.h"

/* The back end's table (vcpu/backend.h). */
extern const struct vcpu_backend svm_backend;

/* The nested page sizes gmem may use: 4 KiB, 2 MiB, and 1 GiB where CPUID says so (15.25.3). */
unsigned svm_npt_page_sizes(void);

/* The back end's vcpu_snapshot (vcpu/backend.h), svm/snapshot.c. */
bool svm_vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s);
/* svm/vcpu.c, for svm/spt.c: up to `n` bytes of the instruction at the guest's RIP, through its page
 * tables (bytes read). (The code segment's mode: guest_mode, vcpu/handler.h.) */
unsigned svm_fetch_insn(struct vcpu *v, uint8_t *insn, unsigned n);
/* svm/guest.c, for svm/vcpu.c: the next VMRUN drops v's ASID's translations (TLB_CONTROL, 15.16.1). */
void svm_flush_asid(struct vcpu *v);

/* struct svm_vcpu's nmi_block: NMI blocking kept by the hypervisor (svm/vcpu.c says how). */
#define NMI_BLOCKED   (1u << 0)  /* an NMI was injected; its handler has not reached its IRET */
#define NMI_IRET      (1u << 1)  /* the IRET at nmi_iret_rip is about to run */
#define NMI_STEP      (1u << 2)  /* ... stepped over: the #DB after it is the hypervisor's */
#define NMI_GUEST_TF  (1u << 3)  /* ... and the guest had TF set itself: its #DB too */

/* SVM's part of a vCPU (struct vcpu's `be`, vcpu/vcpu.h): only svm/ reads and writes it. */
struct __attribute__((may_alias)) svm_vcpu {
	uint64_t vmcb;               /* physical address of its VMCB */
	uint32_t asid;               /* its ASID (svm/vcpu.c, asid_alloc), 0 none */
	uint8_t nmi_block;           /* NMI_* (svm/vcpu.c): NMIs blocked from an injected NMI to its IRET */
	uint64_t nmi_iret_rip;       /* the RIP of that IRET, intercepted before it ran */
	uint64_t gcr0, gcr4;         /* paging=shadow: the guest's CR0 and CR4 (the VMCB holds the CPU's, svm/spt.c) */
};
_Static_assert(sizeof(struct svm_vcpu) <= VCPU_BACKEND_BYTES, "struct vcpu's be[] holds SVM's part");

static inline __attribute__((always_inline)) struct svm_vcpu *svm_of(const struct vcpu *v)
{
	return (struct svm_vcpu *)v->be;
}

/* v's VMCB, through the direct map. */
static inline __attribute__((always_inline)) struct vmcb *vmcb_of(const struct vcpu *v)
{
	return phys_to_virt(svm_of(v)->vmcb);
}

/* The instruction retired (svm_skip, and the exit handlers' own skip): its interrupt shadow (STI,
 * MOV SS) covered only it (INTERRUPT_SHADOW, APM Vol. 2, 15.21.5); RFLAGS.RF and TF, rarely set,
 * take the out-of-line part (svm/guest.c: RF cleared, the single-step trap). */
void svm_finish_rest(struct vcpu *v);
static inline __attribute__((always_inline)) void svm_finish(struct vcpu *v, struct vmcb *b)
{
	b->ctl.int_state &= ~VMCB_INT_SHADOW;
	if (__builtin_expect(b->save.rflags & (RFLAGS_TF | RFLAGS_RF), 0))
		svm_finish_rest(v);
}
