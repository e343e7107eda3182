/* What the VM-exit handlers share (exit.c and, by subject, cpuid.c, msr.c, cr.c, mmio.c, strio.c):
 * finishing or faulting the instruction that exited, the guest's registers and modes, its slice, and
 * the handlers the dispatcher calls. Not for use outside vmx/. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arch/x86/cpu.h"
#include "arch/x86/trap.h"
#include "vmx/decode.h"
#include "vmx/exit.h"
#include "shadow/gpt.h"
#include "vmx/vmx.h"

void vmx_finish_instruction(void);   /* (exit.c) skip_bytes's blocking and single-step part, out of line */

/* Moves RIP past the `len`-byte instruction at `rip`, finishing it as the CPU would: blocking by STI
 * or MOV SS covered only that instruction (SDM Vol. 3C, 25.4.2, Table 25-3), with RFLAGS.TF set a
 * single-step #DB is due after it, which VM entry delivers from the BS bit of the pending debug
 * exceptions (SDM Vol. 3C, 25.4.2 and 27.7.3), and RFLAGS.RF is clear once an instruction completes
 * (SDM Vol. 3B, 18.3.1.1). RF is 0 after an exit an instruction caused, 1 after an EPT violation
 * (SDM Vol. 3C, 28.3.3): MMIO emulation is where it is cleared. */
static inline __attribute__((always_inline)) void skip_bytes(uint64_t rip, uint64_t len)
{
	vmcs_write(GUEST_RIP, rip + len);
	if (__builtin_expect((vmcs_read(GUEST_INTERRUPTIBILITY_INFO) & 3) |
			     (vmcs_read(GUEST_RFLAGS) & (RFLAGS_TF | RFLAGS_RF)), 0))
		vmx_finish_instruction();
}

/* skip_bytes past the instruction that exited (its length: SDM Vol. 3C, 28.2.5). MMIO emulation calls
 * skip_bytes with the length its own decoder found. */
static inline __attribute__((always_inline)) void skip_instruction(void)
{
	skip_bytes(vmcs_read(GUEST_RIP), vmcs_read(VM_EXIT_INSTRUCTION_LEN));
}

/* Queues a hardware exception for the next entry (SDM Vol. 3C, 27.6), in the vCPU: whether an
 * exception is pending is the vCPU's to know, never read back from the VM-entry interruption-
 * information field, whose stale contents a VM exit leaves behind with only the valid bit cleared
 * (SDM Vol. 3C, 28.2: a VM exit clears bit 31 of that field and nothing else). In real mode (CR0.PE = 0, possible with
 * unrestricted guest) exceptions push no error code, and VM entry insists on that (SDM Vol. 3C,
 * 27.2.1.3).
 * RFLAGS.RF: the CPU pushes RF = 1 for every fault but an instruction-breakpoint #DB (SDM Vol. 3B,
 * 18.3.1.1), but VM entry pushes the guest-state RFLAGS as it is, whatever the event (SDM Vol. 3C,
 * 27.6.1.1), and a VM exit caused by an instruction saves RF = 0 (28.3.3): so a fault given for an
 * instruction that exited (refused, or emulated up to its fault) sets RF itself. A #DB or #AC that
 * exited comes with the RF its own delivery would have pushed (28.3.3): unchanged for #DB. */
static inline void inject_exception(struct vcpu *v, unsigned vector, bool has_code, uint32_t code)
{
	if (!(vmcs_read(GUEST_CR0) & CR0_PE))
		has_code = false;
	if (exception_is_fault(vector))
		vmcs_write(GUEST_RFLAGS, vmcs_read(GUEST_RFLAGS) | RFLAGS_RF);
	v->event = (struct vcpu_event){ true,
		INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | (has_code ? INTR_INFO_DELIVER_CODE : 0) | vector,
		code, 0 };
}
#define inject_gp(v) inject_exception(v, VEC_GP, true, 0)
#define inject_ud(v) inject_exception(v, VEC_UD, false, 0)

/* The guest's CR2, for a #PF the hypervisor injects: CR2 is not in the VMCS (SDM Vol. 3C, 25.4.1).
 * Both copies: the exit stub's fast path resumes with the CPU's CR2 as it is (the host takes no
 * page faults), vmx_enter loads the saved one. */
static inline void set_guest_cr2(struct vcpu *v, uint64_t cr2)
{
	v->regs.cr2 = cr2;
	asm volatile("mov %0, %%cr2" : : "r"(cr2) : "memory");
}

/* The general registers numbered as in exit qualifications (SDM Vol. 3C, Table 28-3): 0 RAX, 1 RCX,
 * 2 RDX, 3 RBX, 4 RSP (in the VMCS, not in struct guest_regs), 5 RBP, 6 RSI, 7 RDI, 8-15 R8-R15. */
static inline uint64_t *gpr_slot(struct vcpu *v, unsigned n)
{
	struct guest_regs *r = &v->regs;
	uint64_t *regs[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, NULL, &r->rbp, &r->rsi,
			       &r->rdi, &r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15 };
	return regs[n & 15];
}

static inline uint64_t get_gpr(struct vcpu *v, unsigned n)
{
	return (n & 15) == 4 ? vmcs_read(GUEST_RSP) : *gpr_slot(v, n);
}

static inline void set_gpr(struct vcpu *v, unsigned n, uint64_t val)
{
	if ((n & 15) == 4)
		vmcs_write(GUEST_RSP, val);
	else
		*gpr_slot(v, n) = val;
}

static inline bool guest_long_mode(void)
{
	return vmcs_read(GUEST_IA32_EFER) & EFER_LMA;
}

/* The code-segment size the instruction at RIP was fetched with (SDM Vol. 3A, 3.4.5: CS.L and CS.D). */
static inline enum cpu_mode guest_mode(void)
{
	uint32_t cs = vmcs_read32(GUEST_CS_AR_BYTES);

	if (!(vmcs_read(GUEST_CR0) & CR0_PE) || (vmcs_read(GUEST_RFLAGS) & (1u << 17)))
		return MODE_REAL;                       /* real or virtual-8086 mode */
	if ((vmcs_read(GUEST_IA32_EFER) & EFER_LMA) && (cs & (1u << 13)))
		return MODE_LONG64;
	return cs & (1u << 14) ? MODE_PROT32 : MODE_PROT16;
}

/* The guest's paging state, for walking its page tables (shadow/gpt.c). (mmio.c) */
void vmx_gpt_context(struct vcpu *v, struct gpt_ctx *c);

/* Host time spent for the guest (a UART line, clearing a chunk) counts against its slice: the
 * preemption timer counts only guest time (SDM Vol. 3C, 26.5.1), so make the next entry set it
 * afresh from the TSC. HANDLED, or VCPU_PREEMPTED when the slice is over. (exit.c) */
int vmx_slice_left(struct vcpu *v);

/* The handlers of the exits each file owns, called by vmx_exit_dispatch: HANDLED or an action. */
int vmx_handle_cpuid(struct vcpu *v);                 /* cpuid.c */
int vmx_handle_rdmsr(struct vcpu *v);                 /* msr.c */
int vmx_handle_wrmsr(struct vcpu *v);
int vmx_handle_cr(struct vcpu *v);                    /* cr.c: MOV to/from CRn, LMSW */
int vmx_handle_xsetbv(struct vcpu *v);
int vmx_handle_ept_violation(struct vcpu *v);         /* mmio.c */
int vmx_handle_apic_access(struct vcpu *v);
int vmx_handle_apic_write(struct vcpu *v);
int vmx_handle_string_io(struct vcpu *v, uint64_t q); /* strio.c: INS, OUTS; q the exit qualification */
