/* What the vendor-neutral exit handlers share (cpuid.c, msr.c, cr.c, mmio.c, strio.c, insn.c): the
 * guest's modes and registers over the vendor interface (vcpu/guest.h), faulting the instruction
 * that exited, its slice. They see the guest only through vcpu/guest.h and struct vcpu_exit, never
 * a VMCS or VMCB (tests/check_deps.py checks that vcpu/ includes no back end's header); the back ends'
 * dispatchers (vmx/exit.c and guest.c, svm/vcpu.c) call them. Not for use outside vcpu/. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arch/x86/cpu.h"
#include "arch/x86/trap.h"
#include "vcpu/exit.h"
#include "vcpu/guest.h"
#include "vcpu/vcpu.h"
#include "vcpu/decode.h"
#include "shadow/gpt.h"

#define inject_gp(v) vcpu_inject_exception(v, VEC_GP, true, 0)
#define inject_ud(v) vcpu_inject_exception(v, VEC_UD, false, 0)

static inline bool guest_long_mode(struct vcpu *v)
{
	return vcpu_get_efer(v) & EFER_LMA;
}

/* The code-segment size the instruction at RIP was fetched with (cpu_mode_of, vcpu/decode.h). */
static inline enum cpu_mode guest_mode(struct vcpu *v)
{
	return vcpu_get_mode(v);
}

