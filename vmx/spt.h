/* Shadow paging on VMX (paging=shadow): the VMCS side of shadow/shadow.h (vmx/spt.c). Not for use
 * outside vmx/. */
#pragma once
#include <stdint.h>
#include "vmx/vcpu.h"

#include "vcpu/spt.h"

static inline bool vmx_spt_on(const struct vcpu *v)
{
	return vcpu_spt_on(v);
}

/* The guest/host masks and the CPU's CR0, CR4, IA32_EFER for the guest's values (SDM Vol. 3C, 25.6.6). */
uint64_t vmx_spt_cr0_mask(void);
uint64_t vmx_spt_cr4_mask(void);
uint64_t vmx_spt_cr0_real(uint64_t guest);
uint64_t vmx_spt_cr4_real(uint64_t guest, uint64_t guest_cr0);
uint64_t vmx_spt_efer_real(uint64_t guest);

/* At vcpu_create: the shadow's callbacks into the guest's memory (vcpu_spt_init, and the vm86 TSS). */
void vmx_spt_init(struct vcpu *v);
/* A new start state (vcpu.c, apply_state): the guest's CR3 and EFER (vcpu_spt_apply), vm86 mode left. */
void vmx_spt_apply(struct vcpu *v, uint64_t cr3, uint64_t efer);
/* Before a run: real mode into virtual-8086 mode (vmx/realmode.c), the root built after vmx_spt_apply.
 * HANDLED or VCPU_STOPPED. */
int vmx_spt_run(struct vcpu *v);
/* The guest's CR0, CR4 or EFER changed (vmx/guest.c's setters): re-roots when a paging control did;
 * stops the guest on failure. */
void vmx_spt_controls_changed(struct vcpu *v);

/* The exits go to vcpu/spt.c: vcpu_spt_cr3, vcpu_spt_invlpg, vcpu_spt_invpcid, vcpu_spt_page_fault. */
