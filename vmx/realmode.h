/* Real mode without unrestricted guest (paging=shadow, vmx/realmode.c): the guest's real-mode code runs
 * in virtual-8086 mode, with an emulator for what vm86 refuses. Not for use outside vmx/. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

struct vcpu;
struct vm;

/* In struct vcpu: whether its CPU runs the guest's real mode in vm86 mode, what vm86 hides of the
 * guest, and the figures. */
struct vmx_rm {
	bool vm86;                   /* RFLAGS.VM = 1, CR4.VME = 1, TR on the hypervisor's TSS */
	uint64_t iopl;               /* the guest's RFLAGS.IOPL (bits 13:12); the CPU runs with 3 */
	uint32_t bitmap;             /* the exception bitmap outside vm86 (every exception exits inside) */
	uint16_t tr_sel;             /* the guest's TR, put back when it leaves real mode */
	uint64_t tr_base;
	uint32_t tr_limit, tr_ar;
	uint64_t exits_at_enter;     /* vcpu_exit_total when vm86 began */
	/* Figures (vmx_rm_report): */
	uint32_t runs;               /* times it entered vm86 mode (a start-up IPI, each) */
	uint32_t exits;              /* VM exits while in vm86 mode */
	uint32_t emulated;           /* instructions emulated (#GP in vm86 mode) */
	uint32_t delivered;          /* interrupts and exceptions delivered through the IVT */
};

/* The guest's CR0.PE is 0 and its CPU not in vm86 mode yet (vmx_spt_run): HANDLED, or VCPU_STOPPED
 * with the reason when its segments cannot be run in vm86 mode. */
int vmx_rm_enter(struct vcpu *v);
/* A new start state (INIT, SIPI, a restart) replaced the guest state: forget vm86 mode. */
void vmx_rm_reset(struct vcpu *v);
/* A guest exception or #GP that exited in vm86 mode (but #PF, #DB, #AC and NMIs, which the
 * dispatcher takes as always): HANDLED or an action. */
int vmx_rm_exception(struct vcpu *v, uint32_t intr_info);
/* Delivers the event `intr_info` (VM-entry interruption-information format) through the real-mode
 * IVT, as VM entry would have through the IDT; `len` the instruction's for software ones. */
void vmx_rm_deliver(struct vcpu *v, uint32_t intr_info, uint32_t len);
/* The shadow's GPA map in vm86 mode: true and the page of the hypervisor's TSS when `gpa` is in it. */
bool vmx_rm_map(uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights);
/* The back end's guest_report (vcpu/backend.h): `hv: guest NAME real mode: ...` when any of g's vCPUs
 * ran in vm86 mode. */
void vmx_rm_report(const struct vm *g);
