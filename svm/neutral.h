/* The vendor-neutral exit handlers (vmx/cpuid.c, msr.c, cr.c, mmio.c, strio.c, insn.c: they see the
 * guest only through vcpu/guest.h and struct vcpu_exit) compiled a second time for SVM: included
 * first by svm/n_*.c, these names make that copy call SVM's accessors (svm/guest.c) and carry names of
 * its own, so both back ends link into one image with no dispatch on VMX's exit path. Until the
 * accessors dispatch per back end, this is how SVM reuses the handlers instead of duplicating them. */
#pragma once

#define vcpu_get_gpr            svm_get_gpr
#define vcpu_set_gpr            svm_set_gpr
#define vcpu_get_rip            svm_get_rip
#define vcpu_get_rflags         svm_get_rflags
#define vcpu_set_rflags         svm_set_rflags
#define vcpu_skip               svm_skip
#define vcpu_finish_instruction svm_finish_instruction
#define vcpu_get_cr0            svm_get_cr0
#define vcpu_get_cr3            svm_get_cr3
#define vcpu_get_cr4            svm_get_cr4
#define vcpu_get_efer           svm_get_efer
#define vcpu_set_cr0            svm_set_cr0
#define vcpu_set_cr4            svm_set_cr4
#define vcpu_set_efer           svm_set_efer
#define vcpu_set_cr2            svm_set_cr2
#define vcpu_cr4_settable       svm_cr4_settable
#define vcpu_get_pdpte          svm_get_pdpte
#define vcpu_set_pdptes         svm_set_pdptes
#define vcpu_pdptes_at_mov      svm_pdptes_at_mov
#define vcpu_get_pat            svm_get_pat
#define vcpu_set_pat            svm_set_pat
#define vcpu_set_tsc_offset     svm_set_tsc_offset
#define vcpu_get_seg            svm_get_seg
#define vcpu_get_cpl            svm_get_cpl
#define vcpu_inject_exception   svm_inject_exception
#define vcpu_offers             svm_offers
#define vcpu_gpt_context        svm_gpt_context
#define vcpu_slice_left         svm_slice_left
#define vcpu_tsc_adjust_emulated svm_tsc_adjust_emulated
#define vcpu_handle_cpuid       svm_handle_cpuid
#define vcpu_handle_rdmsr       svm_handle_rdmsr
#define vcpu_handle_wrmsr       svm_handle_wrmsr
#define vcpu_handle_cr          svm_handle_cr
#define vcpu_handle_xsetbv      svm_handle_xsetbv
#define vcpu_handle_npf         svm_handle_npf
#define vcpu_handle_apic_access svm_handle_apic_access
#define vcpu_handle_string_io   svm_handle_string_io
#define vcpu_handle_hlt         svm_handle_hlt

#include "vcpu/exit.h"
#include "vcpu/guest.h"
struct gpt_ctx;
void svm_gpt_context(struct vcpu *v, struct gpt_ctx *c);
int svm_slice_left(struct vcpu *v);
/* SVM always has TSC_OFFSET (15.30.5): the guest's TSC can move, IA32_TSC_ADJUST is emulated. */
#include <stdbool.h>
bool svm_tsc_adjust_emulated(void);
/* svm/guest.c, for svm/vcpu.c: the next VMRUN drops v's ASID's translations (TLB_CONTROL, 15.16.1). */
void svm_flush_asid(struct vcpu *v);
