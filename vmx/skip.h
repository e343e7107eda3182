/* Finishing or faulting the instruction that exited, on VMX: inline, for the exit dispatcher's short
 * paths (CPUID, VMCALL, IN/OUT are what `make bench` times, and the code the compiler lays out around
 * them). The neutral handlers return RETIRED, or call vcpu_skip and vcpu_inject_exception (vmx/guest.c),
 * for the same. Not for use outside vmx/. */
#pragma once
#include <stdint.h>
#include <stdbool.h>
#include "arch/x86/cpu.h"
#include "arch/x86/trap.h"
#include "vcpu/exit.h"
#include "vmx/vcpu.h"
#include "vmx/vmcs.h"

void vmx_finish_rest(void);   /* (guest.c) skip_bytes's blocking and single-step part, out of line */

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
		vmx_finish_rest();
}

/* skip_bytes past the instruction that exited (its length: SDM Vol. 3C, 28.2.5). */
static inline __attribute__((always_inline)) void skip_instruction(void)
{
	skip_bytes(vmcs_read(GUEST_RIP), vmcs_read(VM_EXIT_INSTRUCTION_LEN));
}

/* A neutral handler's result as the dispatcher acts on it: RETIRED moves RIP past the instruction
 * that exited and resumes (HANDLED); anything else is passed on. */
static inline __attribute__((always_inline)) int vmx_retire(int r)
{
	if (r == RETIRED) {
		skip_instruction();
		return HANDLED;
	}
	return r;
}

/* Queues a hardware exception for the next entry (SDM Vol. 3C, 27.6), in the vCPU: whether an
 * exception is pending is the vCPU's to know, never read back from the VM-entry interruption-
 * information field, whose stale contents a VM exit leaves behind with only the valid bit cleared
 * (SDM Vol. 3C, 28.2: a VM exit clears bit 31 of that field and nothing else). In real mode (CR0.PE =
 * 0, possible with unrestricted guest) exceptions push no error code, and VM entry insists on that
 * (SDM Vol. 3C, 27.2.1.3).
 * RFLAGS.RF: the CPU pushes RF = 1 for every fault but an instruction-breakpoint #DB (SDM Vol. 3B,
 * 18.3.1.1), but VM entry pushes the guest-state RFLAGS as it is, whatever the event (SDM Vol. 3C,
 * 27.6.1.1), and a VM exit caused by an instruction saves RF = 0 (28.3.3): so a fault given for an
 * instruction that exited (refused, or emulated up to its fault) sets RF itself. A #DB or #AC that
 * exited comes with the RF its own delivery would have pushed (28.3.3): unchanged for #DB. */
static inline __attribute__((always_inline)) void vmx_queue_exception(struct vcpu *v, unsigned vector, bool has_code,
									uint32_t code)
{
	if (!(vmcs_read(GUEST_CR0) & CR0_PE))
		has_code = false;
	if (exception_is_fault(vector))
		vmcs_write(GUEST_RFLAGS, vmcs_read(GUEST_RFLAGS) | RFLAGS_RF);
	vmx_of(v)->event = (struct vmx_event){ true,
		INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | (has_code ? INTR_INFO_DELIVER_CODE : 0) | vector,
		code, 0 };
	vcpu_work_post(&v->work, VCPU_WORK_ENTRY);     /* the entry goes the long way (vcpu/work.h) */
}
