/* VM-exit dispatch: one handler per exit reason. */
#pragma once
#include <stdbool.h>
#include "vcpu/exit.h"
#include "vmx/vcpu.h"

/* An exit handler returns HANDLED (resume the guest), RETIRED (vcpu/exit.h) or an enum vcpu_action. */

/* The event-injection step before every VM entry (from vcpu_run, and `resuming` from the exit stub's
 * fast path):
 * delivers a pending exception, NMI or interrupt when the guest can take it, else asks for an
 * interrupt- or NMI-window exit; arms the preemption timer for the slice or the APIC timer, whichever
 * comes first. HANDLED to enter, or an action for the scheduler (host work, INIT, the guest ending). */
int vmx_prepare_entry(struct vcpu *v, bool resuming);

/* Called by vmx/entry.asm on every VM exit, to handle it. 0: resume the guest at once. 1: return to
 * vcpu_run, v->action saying why. */
int vmx_exit_dispatch(struct vcpu *v);

/* The exits the neutral handlers take, read from the VMCS into a struct vcpu_exit (guest.c). */
int vmx_exit_cr(struct vcpu *v);
int vmx_exit_npf(struct vcpu *v);
int vmx_exit_apic_access(struct vcpu *v);
int vmx_exit_apic_write(struct vcpu *v);
int vmx_exit_hlt(struct vcpu *v);
int vmx_exit_string_io(struct vcpu *v, uint64_t q);   /* IN/OUT's exit (exit.c) when it is INS/OUTS */

/* CR0/CR4 ownership (vcpu.c): the guest/host masks and the real value for a guest-visible one. */
uint64_t vcpu_cr0_mask(void);
uint64_t vcpu_cr4_mask(void);
uint64_t vcpu_cr0_real(uint64_t guest);
uint64_t vcpu_cr4_real(uint64_t guest);
/* CR0 and CR4 as the guest sees them: the bits it owns from the real register (a MOV that changes
 * only those does not exit, so the read shadow does not follow), the others from the shadow (SDM
 * Vol. 3C, 25.6.6). Of the current VMCS. */
uint64_t vcpu_guest_cr0(void);
uint64_t vcpu_guest_cr4(void);
