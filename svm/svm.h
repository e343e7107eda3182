/* The SVM back end: SVM on every CPU, a VMCB per vCPU, the run loop and its #VMEXITs (svm/vcpu.c).
 * The vCPU and guest structures are the VMX side's (vmx/vcpu.h) until the neutral vCPU layer lands:
 * a vCPU's VMCB page is its `vmcs` page, its ASID lives in `vpid`. AMD APM Vol. 2, chapter 15. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vmx/vcpu.h"

/* On the calling CPU: EFER.SVME, a host save area in VM_HSAVE_PA (15.30.4), and the host's
 * VMSAVE area (the state VMRUN does not switch, 15.5.2). Result in svm_cpu_state(). */
void svm_cpu_on(void);
/* 0 not yet, 1 SVM on, -1 failed (no memory). */
int svm_cpu_state(unsigned cpu);
/* SVM off on the calling CPU (before a reset). */
void svm_cpu_off(void);

/* What all vCPUs share: the IOPM and MSRPM (15.10, 15.11), and vcpu_global_init's FPU sizes.
 * Once, before the first vCPU is created. 0 or -ENOMEM. */
int svm_global_init(void);
/* The nested page sizes gmem may use: 4 KiB, 2 MiB, and 1 GiB where CPUID says so (15.25.1). */
unsigned svm_npt_page_sizes(void);

/* vcpu_load, vcpu_run and vcpu_leave of vmx/vcpu.h for SVM (vcpu_create, vcpu_free, vcpu_runnable,
 * vcpu_kick are shared: they touch no VMCS). */
void svm_vcpu_load(struct vcpu *v);
enum vcpu_action svm_vcpu_run(struct vcpu *v, uint64_t quantum_tsc);
bool svm_vcpu_leave(struct vcpu *v);
/* vcpu_snapshot (vcpu/snapshot.h) for SVM: v's state from its VMCB, read on v's CPU. */
void svm_vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s);
