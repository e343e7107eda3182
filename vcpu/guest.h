/* The vendor interface under the neutral vCPU logic: the guest state of the vCPU whose exit is being
 * handled, on its own CPU (VMX: its VMCS is current; SVM: its VMCB), in neutral formats. Each back end
 * implements every vcpu_NAME below as vmx_NAME (vmx/guest.c) and svm_NAME (svm/guest.c); vcpu_NAME is
 * an inline test of vcpu_vendor (vcpu/backend.h: set once at probe time, read-mostly) and a direct
 * call, so the handlers are compiled once for both, without the indirect call (a retpoline on this
 * host) a table would cost on the exit path. The general registers but RSP are in v->regs (struct
 * guest_regs), where the exit stub saved them; everything else is read and written here. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vcpu/backend.h"
#include "vcpu/decode.h"
#include "vcpu/seg.h"

struct vcpu;

/* vcpu_NAME(PARAMS) returning RET: the two back ends' declarations and the dispatch. */
#define VCPU_VENDOR_FN(ret, name, params, args)                                         \
	ret vmx_##name params;                                                           \
	ret svm_##name params;                                                           \
	static inline __attribute__((always_inline)) ret vcpu_##name params              \
	{                                                                                \
		return __builtin_expect(vcpu_vendor == VCPU_SVM, 0) ? svm_##name args : vmx_##name args; \
	}
#define VCPU_VENDOR_PROC(name, params, args)                                            \
	void vmx_##name params;                                                          \
	void svm_##name params;                                                          \
	static inline __attribute__((always_inline)) void vcpu_##name params             \
	{                                                                                \
		if (__builtin_expect(vcpu_vendor == VCPU_SVM, 0))                        \
			svm_##name args;                                                 \
		else                                                                     \
			vmx_##name args;                                                 \
	}

/* The general registers numbered as in ModRM and exit records (0 RAX, 1 RCX, 2 RDX, 3 RBX, 4 RSP,
 * 5 RBP, 6 RSI, 7 RDI, 8-15 R8-R15; SDM Vol. 2A, 2.1.5, Table 2-2). */
VCPU_VENDOR_FN(uint64_t, get_gpr, (struct vcpu *v, unsigned n), (v, n))
VCPU_VENDOR_PROC(set_gpr, (struct vcpu *v, unsigned n, uint64_t val), (v, n, val))

VCPU_VENDOR_FN(uint64_t, get_rip, (struct vcpu *v), (v))
VCPU_VENDOR_FN(uint64_t, get_rflags, (struct vcpu *v), (v))
VCPU_VENDOR_PROC(set_rflags, (struct vcpu *v, uint64_t rflags), (v, rflags))

/* Moves RIP `len` bytes past the instruction at RIP and finishes it as the CPU would (blocking by STI
 * or MOV SS covered only that instruction, RFLAGS.TF makes a single-step #DB due, RF is cleared):
 * vcpu_finish_instruction. */
VCPU_VENDOR_PROC(skip, (struct vcpu *v, unsigned len), (v, len))
VCPU_VENDOR_PROC(finish_instruction, (struct vcpu *v), (v))

/* The control registers and EFER as the guest reads them (bits the back end owns show the guest's
 * value). The setters take the guest's value; the back end keeps whatever its CPU needs beside it
 * (VMX: the read shadows and the fixed bits; IA-32e mode's entry control follows EFER.LMA). */
VCPU_VENDOR_FN(uint64_t, get_cr0, (struct vcpu *v), (v))
VCPU_VENDOR_FN(uint64_t, get_cr3, (struct vcpu *v), (v))
VCPU_VENDOR_FN(uint64_t, get_cr4, (struct vcpu *v), (v))
VCPU_VENDOR_FN(uint64_t, get_efer, (struct vcpu *v), (v))
VCPU_VENDOR_PROC(set_cr0, (struct vcpu *v, uint64_t cr0), (v, cr0))
VCPU_VENDOR_PROC(set_cr4, (struct vcpu *v, uint64_t cr4), (v, cr4))
VCPU_VENDOR_PROC(set_efer, (struct vcpu *v, uint64_t efer), (v, efer))
/* The guest's CR2, for a #PF the hypervisor injects (SDM Vol. 3A, 4.7). VMX: not in the VMCS (SDM
 * Vol. 3C, 25.4.1), so the CPU's own CR2 at entry; SVM: the VMCB save area, offset 240h (AMD APM
 * Vol. 2, Appendix B, Table B-2), which VMRUN loads. */
VCPU_VENDOR_PROC(set_cr2, (struct vcpu *v, uint64_t cr2), (v, cr2))
/* The CR4 bits this CPU lets a guest set (VMX: IA32_VMX_CR4_FIXED1, SDM Vol. 3D, A.8). */
VCPU_VENDOR_FN(uint64_t, cr4_settable, (void), ())

/* PAE paging's four PDPTEs as the CPU holds them (SDM Vol. 3A, 4.4.1). */
VCPU_VENDOR_FN(uint64_t, get_pdpte, (struct vcpu *v, unsigned i), (v, i))
VCPU_VENDOR_PROC(set_pdptes, (struct vcpu *v, const uint64_t pdpte[4]), (v, pdpte))
/* Whether the MOV to CR0 that turns PAE paging on loads the PDPTEs and #GPs for a reserved bit in
 * one: Intel's PDPTE registers (SDM Vol. 3A, 4.4.1), true on VMX; false on SVM (svm/guest.c). */
VCPU_VENDOR_FN(bool, pdptes_at_mov, (void), ())

VCPU_VENDOR_FN(uint64_t, get_pat, (struct vcpu *v), (v))
VCPU_VENDOR_PROC(set_pat, (struct vcpu *v, uint64_t pat), (v, pat))
/* The TSC offset the CPU adds to the guest's RDTSC (v->tsc.offset when it changed). */
VCPU_VENDOR_PROC(set_tsc_offset, (struct vcpu *v, uint64_t offset), (v, offset))

VCPU_VENDOR_FN(struct vcpu_seg, get_seg, (struct vcpu *v, enum vcpu_seg_reg r), (v, r))
/* The code segment's mode (cpu_mode_of, vcpu/decode.h, over the back end's CR0.PE, RFLAGS.VM,
 * EFER.LMA and CS's L and D bits, read straight from its own state: the instruction fetches of
 * the decoders, SVM's VMCALL among them, ask it). */
VCPU_VENDOR_FN(enum cpu_mode, get_mode, (struct vcpu *v), (v))
/* The current privilege level (SDM Vol. 3A, 5.5: SS.DPL on VMX; the VMCB's CPL on SVM). */
VCPU_VENDOR_FN(unsigned, get_cpl, (struct vcpu *v), (v))

/* Queues a hardware exception for the next entry: `vector`, with `code` when has_code (dropped in
 * real mode, where none is pushed); a fault sets RFLAGS.RF. */
VCPU_VENDOR_PROC(inject_exception, (struct vcpu *v, unsigned vector, bool has_code, uint32_t code), (v, vector, has_code, code))

/* Is an event queued for the next entry (an exception a handler raised, an event an exit
 * interrupted)? VMX: struct vmx_event; SVM: the VMCB's EVENTINJ (APM Vol. 2, 15.20). */
VCPU_VENDOR_FN(bool, event_queued, (struct vcpu *v), (v))

/* Instructions the back end lets guests execute, which CPUID reports (VMX: the secondary controls
 * "enable INVPCID" and "enable RDTSCP", SDM Vol. 3C, 25.6.2; otherwise they raise #UD). */
#define VCPU_OFFERS_INVPCID (1u << 0)
#define VCPU_OFFERS_RDTSCP  (1u << 1)
VCPU_VENDOR_FN(unsigned, offers, (void), ())

/* A back end's answer after host time spent for the guest (a UART line, clearing a chunk): HANDLED,
 * or VCPU_PREEMPTED when the slice is over. VMX: always HANDLED, its entry path checks the TSC
 * (vmx/exit.c); SVM: the TSC against the slice's end (svm/guest.c). */
VCPU_VENDOR_FN(int, slice_left, (struct vcpu *v), (v))

/* Can a guest's TSC move (VMX: "use TSC offsetting"; SVM: always, 15.5.1)? Then WRMSR of the TSC
 * and IA32_TSC_ADJUST are emulated and CPUID shows TSC_ADJUST. */
VCPU_VENDOR_FN(bool, tsc_adjust_emulated, (void), ())

/* v's guest wrote its IA32_APIC_BASE (the model took the write): the back end follows the mode (VMX:
 * APIC virtualization, vmx/vcpu.c; SVM: nothing, its APIC is emulated). On v's CPU. */
VCPU_VENDOR_PROC(apic_base_changed, (struct vcpu *v), (v))

/* paging=shadow (vcpu/spt.c): the CPU's CR0 and CR4 for the guest's current ones (VMX: the guest
 * fields beside the read shadows; SVM: the VMCB's, the guest's own kept aside); CR3 = the shadow root
 * `root` (nothing flushed: the shadow's request that comes with it does, shadow.h); the shadow dropped
 * or changed entries the CPU may have cached: the page at `gva`, or all of them with gva = ~0 (VMX:
 * INVVPID, or nothing without VPIDs, where every VM entry flushes; SVM: INVLPGA or the ASID's flush). */
VCPU_VENDOR_PROC(spt_set_controls, (struct vcpu *v), (v))
VCPU_VENDOR_PROC(spt_set_root, (struct vcpu *v, uint64_t root), (v, root))
VCPU_VENDOR_PROC(spt_flush, (struct vcpu *v, uint64_t gva), (v, gva))

struct gpt_ctx;
/* The guest's paging state over the accessors above, for walking its page tables (shadow/gpt.c):
 * neutral, vcpu/mmio.c. RFLAGS is not read: a walk that checks SMAP (gpt_translate) sets c->rflags. */
void vcpu_gpt_context(struct vcpu *v, struct gpt_ctx *c);
/* Guest memory for the page walkers (`arg` the guest's struct gmem), as vcpu_gpt_context gives
 * them: reads (gpt_ctx.read_gpa; an aligned entry is one load, gmem_read), and the locked
 * compare-exchange of A/D updates (gpt_ctx.cmpxchg_gpa). */
int vcpu_gpa_read(void *arg, uint64_t gpa, void *dst, unsigned len);
int vcpu_gpa_cmpxchg(void *arg, uint64_t gpa, uint64_t old, uint64_t val, unsigned len);
