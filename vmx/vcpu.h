/* VMX's side of a vCPU (vmx/vcpu.c, vmx/exit.c, vmx/snapshot.c): the back-end table, the guest's EFER
 * as the CPU runs it, APIC virtualization, the entry stub. Not for use outside vmx/. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vcpu/backend.h"
#include "vcpu/vcpu.h"
#include "vmx/realmode.h"

/* An event for the next VM entry to deliver (SDM Vol. 3C, 27.6): an exception an exit handler raised,
 * or an event that a VM exit interrupted (IDT-vectoring information, 28.2.4). (SVM keeps its own in
 * the VMCB's EVENTINJ.) */
struct vmx_event {
	bool valid;
	uint32_t info;       /* VM-entry interruption-information format (Table 25-17) */
	uint32_t error_code;
	uint32_t insn_len;   /* software interrupts and exceptions: the instruction's length */
};

/* VMX's part of a vCPU (struct vcpu's `be`, vcpu/vcpu.h): only vmx/ reads and writes it. */
struct __attribute__((may_alias)) vmx_vcpu {
	uint64_t vmcs;               /* physical address of its VMCS */
	uint16_t vpid;               /* its VPID, 0 none (vmx_caps.vpid off, or paging=shadow) */
	uint64_t *efer_msrs;         /* without the EFER VM-entry/exit controls (vmx_caps.efer_ctls): the
				      * VM-entry MSR-load list at [0..1] (the guest's EFER) and the VM-exit
				      * one at [2..3] (the host's), SDM Vol. 3C, 25.7.2 and 25.8.2 */
	uint64_t pat;                /* the guest's IA32_PAT where the CPU has no PAT VM-entry/exit controls
				      * (Bochs's penryn): then the VMCS has no such field (SDM Vol. 3D, B.2.3)
				      * and the value is only kept (vmx_get_pat) */
	uint32_t cpu_ctls;           /* primary processor-based controls now in the VMCS */
	bool apicv;                  /* the CPU's APIC virtualization is on for this vCPU */
	bool apicv_x2;               /* ... for its APIC in x2APIC mode ("virtualize x2APIC mode") */
	uint8_t spec_entry;          /* VCPU_SPEC_* below: what entries and exits write besides the VMCS.
				        Computed after each WRMSR exit, the only place spec_ctrl changes
				        (vmx/exit.c, vmx_exit_dispatch), and at creation: one byte the exit
				        path tests */
	uint32_t eoi_exit[8];        /* the TMR the EOI-exit bitmap was last written from */
	struct vmx_event event;      /* the event its next entry delivers */
	struct vmx_rm rm;            /* its real mode, in virtual-8086 mode (vmx/realmode.c) */
};
_Static_assert(sizeof(struct vmx_vcpu) <= VCPU_BACKEND_BYTES, "struct vcpu's be[] holds VMX's part");

static inline __attribute__((always_inline)) struct vmx_vcpu *vmx_of(const struct vcpu *v)
{
	return (struct vmx_vcpu *)v->be;
}

/* struct vmx_vcpu.spec_entry */
#define VCPU_SPEC_SWAP 1u            /* IA32_SPEC_CTRL differs in the guest (spec_ctrl_in_guest): switched
					at every entry and exit */
#define VCPU_SPEC_L1D  2u            /* the L1D is flushed before every entry (SPEC_L1D_FLUSH) */

extern const struct vcpu_backend vmx_backend;
/* The back end's vcpu_snapshot (vcpu/backend.h), vmx/snapshot.c. */
bool vmx_vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s);

#ifndef HOST_TEST                   /* spec.h's policy is the hypervisor's, not the host tests' */
/* struct vmx_vcpu.spec_entry for a guest whose IA32_SPEC_CTRL is `spec_ctrl`. */
static inline uint8_t vcpu_spec_entry(uint64_t spec_ctrl)
{
	return (spec_ctrl_in_guest(spec_ctrl) != spec.host_spec_ctrl ? VCPU_SPEC_SWAP : 0) |
	       (spec.on & SPEC_L1D_FLUSH ? VCPU_SPEC_L1D : 0);
}
#endif

/* The guest's IA32_EFER as the CPU runs it: the VMCS field, or the VM-entry MSR-load list where the CPU
 * has no "load IA32_EFER" (then the field does not exist: SDM Vol. 3C, 25.4.2). v's VMCS is current. */
uint64_t vmx_guest_efer(const struct vcpu *v);
void vmx_set_guest_efer(struct vcpu *v, uint64_t efer);

/* APIC virtualization: turns it off for `v` (its VMCS loaded). */
void vcpu_apicv_off(struct vcpu *v);
/* A vCPU of the guest moved its APIC away from what APIC virtualization covers (another base,
 * x2APIC, disabled): off for the whole guest, for good (as KVM does on a relocated APIC base): the
 * APIC-access page leaves the EPT (INVEPT on every CPU of the guest) and each vCPU falls back to
 * the emulated APIC at its next entry, but for those in x2APIC mode with x2APIC virtualization,
 * which do not use that page. On v's CPU. */
void vcpu_apicv_inhibit(struct vcpu *v);

/* The preemption timer counts guest time only (SDM Vol. 3C, 26.5.1): the host time of the exits
 * since it was armed makes it late. Every exit reads the TSC against the earliest deadline and ends
 * the slice at the first exit after its end; for a guest that then stops exiting, the timer is
 * armed afresh once a quarter (1 >> VCPU_REARM_SHIFT) of the slice left has passed, so exits' host
 * time (an I/O exit's UART line: 87 us a character) stretches a slice by at most a quarter. */
#define VCPU_REARM_SHIFT 2

/* Prints the registers and key fields of the current VMCS, which is v's: before vmx/exit.c stops the
 * guest for a failed VM entry, an unexpected exit or a triple fault. (The monitor's `regs` prints its
 * own snapshot, core/monitor.c.) */
void vcpu_dump(const struct vcpu *v);

/* entry.asm: enter the guest; returns 0 after a VM exit, 1 if VMLAUNCH/VMRESUME itself failed. */
int vmx_enter(struct vcpu *v, uint64_t launched);
void vmx_exit_stub(void);
