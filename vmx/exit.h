/* VM-exit dispatch: one handler per exit reason. */
#pragma once
#include <stdbool.h>
#include "vmx/vcpu.h"

/* Called by vmx/entry.asm on every VM exit, to handle it. 0: resume the guest at once. 1: return to
 * vcpu_run, v->action saying why. */
int vmx_exit_dispatch(struct vcpu *v);

/* CR0/CR4 ownership (vcpu.c): the guest/host masks and the real value for a guest-visible one. */
uint64_t vcpu_cr0_mask(void);
uint64_t vcpu_cr4_mask(void);
uint64_t vcpu_cr0_real(uint64_t guest);
uint64_t vcpu_cr4_real(uint64_t guest);
