/* The vendor interface under the neutral vCPU logic: the guest state of the vCPU whose exit is being
 * handled, on its own CPU (VMX: its VMCS is current; SVM: its VMCB), in neutral formats. Implemented
 * by each back end (vmx/guest.c). The general registers but RSP are in v->regs (struct guest_regs),
 * where the exit stub saved them; everything else is read and written here. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vcpu/seg.h"

struct vcpu;

/* The general registers numbered as in ModRM and exit records (0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP,
 * 5 RBP, 6 RSI, 7 RDI, 8-15 R8-R15; SDM Vol. 2A, 2.1.5, Table 2-2). */
uint64_t vcpu_get_gpr(struct vcpu *v, unsigned n);
void vcpu_set_gpr(struct vcpu *v, unsigned n, uint64_t val);

uint64_t vcpu_get_rip(struct vcpu *v);
uint64_t vcpu_get_rflags(struct vcpu *v);
void vcpu_set_rflags(struct vcpu *v, uint64_t rflags);

/* Moves RIP `len` bytes past the instruction at RIP and finishes it as the CPU would (blocking by STI
 * or MOV SS covered only that instruction, RFLAGS.TF makes a single-step #DB due, RF is cleared):
 * vcpu_finish_instruction. */
void vcpu_skip(struct vcpu *v, unsigned len);
void vcpu_finish_instruction(struct vcpu *v);

/* The control registers and EFER as the guest reads them (bits the back end owns show the guest's
 * value). The setters take the guest's value; the back end keeps whatever its CPU needs beside it
 * (VMX: the read shadows and the fixed bits; IA-32e mode's entry control follows EFER.LMA). */
uint64_t vcpu_get_cr0(struct vcpu *v);
uint64_t vcpu_get_cr3(struct vcpu *v);
uint64_t vcpu_get_cr4(struct vcpu *v);
uint64_t vcpu_get_efer(struct vcpu *v);
void vcpu_set_cr0(struct vcpu *v, uint64_t cr0);
void vcpu_set_cr4(struct vcpu *v, uint64_t cr4);
void vcpu_set_efer(struct vcpu *v, uint64_t efer);
/* The guest's CR2, for a #PF the hypervisor injects (SDM Vol. 3A, 4.7). VMX: not in the VMCS (SDM
 * Vol. 3C, 25.4.1), so the CPU's own CR2 at entry; SVM: the VMCB save area, offset 240h (AMD APM
 * Vol. 2, Appendix B, Table B-2), which VMRUN loads. */
void vcpu_set_cr2(struct vcpu *v, uint64_t cr2);
/* The CR4 bits this CPU lets a guest set (VMX: IA32_VMX_CR4_FIXED1, SDM Vol. 3D, A.8). */
uint64_t vcpu_cr4_settable(void);

/* PAE paging's four PDPTEs as the CPU holds them (SDM Vol. 3A, 4.4.1). */
uint64_t vcpu_get_pdpte(struct vcpu *v, unsigned i);
void vcpu_set_pdptes(struct vcpu *v, const uint64_t pdpte[4]);
/* Whether the MOV to CR0 that turns PAE paging on loads the PDPTEs and #GPs for a reserved bit in
 * one: Intel's PDPTE registers (SDM Vol. 3A, 4.4.1), true on VMX; false on SVM (svm/guest.c). */
bool vcpu_pdptes_at_mov(void);

uint64_t vcpu_get_pat(struct vcpu *v);
void vcpu_set_pat(struct vcpu *v, uint64_t pat);
/* The TSC offset the CPU adds to the guest's RDTSC (v->tsc.offset when it changed). */
void vcpu_set_tsc_offset(struct vcpu *v, uint64_t offset);

struct vcpu_seg vcpu_get_seg(struct vcpu *v, enum vcpu_seg_reg r);
/* The current privilege level (SDM Vol. 3A, 5.5: SS.DPL on VMX; the VMCB's CPL on SVM). */
unsigned vcpu_get_cpl(struct vcpu *v);

/* Queues a hardware exception for the next entry: `vector`, with `code` when has_code (dropped in
 * real mode, where none is pushed); a fault sets RFLAGS.RF. */
void vcpu_inject_exception(struct vcpu *v, unsigned vector, bool has_code, uint32_t code);

/* Instructions the back end lets guests execute, which CPUID reports (VMX: the secondary controls
 * "enable INVPCID" and "enable RDTSCP", SDM Vol. 3C, 25.6.2; otherwise they raise #UD). */
#define VCPU_OFFERS_INVPCID (1u << 0)
#define VCPU_OFFERS_RDTSCP  (1u << 1)
unsigned vcpu_offers(void);
