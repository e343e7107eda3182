/* Shadow paging on SVM (paging=shadow): the VMCB side of vcpu/spt.c (svm/spt.c). Not for use outside
 * svm/. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "svm/svm.h"
#include "vcpu/spt.h"
#include "vcpu/vcpu_state.h"

/* The CPU's CR0, CR4 and EFER for the guest's values (svm/spt.c says which bits are the host's). */
uint64_t svm_spt_cr0_real(uint64_t guest);
uint64_t svm_spt_cr4_real(uint64_t guest, uint64_t guest_cr0);
uint64_t svm_spt_efer_real(uint64_t guest);

/* vmcb_setup's part for a vCPU on shadow paging (start state `s`): no nested paging, the intercepts,
 * the CPU's CR0/CR4/EFER, the guest's own aside; the root is built by vcpu_spt_run before VMRUN. */
void svm_spt_setup(struct vcpu *v, const struct vcpu_state *s);

/* The exits: #PF (exception intercept 14), INVLPG, SMSW (under the CR0 read intercept). HANDLED or an
 * action; INVLPG and SMSW RETIRED too, with the instruction's length. */
int svm_spt_exit_pf(struct vcpu *v);
int svm_spt_exit_invlpg(struct vcpu *v, unsigned *len);
int svm_spt_exit_smsw(struct vcpu *v, unsigned *len);
