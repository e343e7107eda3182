/* VM-exit dispatch: one handler per exit reason. */
#pragma once
#include <stdbool.h>
#include "vmx/vcpu.h"

/* Handles the exit that just happened. false: resume the guest. true: stop running it, *action says why. */
bool vmx_handle_exit(struct vcpu *v, enum vcpu_action *action);

/* CR0/CR4 ownership (vcpu.c): the guest/host masks and the real value for a guest-visible one. */
uint64_t vcpu_cr0_mask(void);
uint64_t vcpu_cr4_mask(void);
uint64_t vcpu_cr0_real(uint64_t guest);
uint64_t vcpu_cr4_real(uint64_t guest);
