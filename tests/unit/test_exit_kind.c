/* The neutral exit kinds against VMX's reasons (vmx/exit_kind.c) and the VMX-to-neutral formats
 * (vmx/neutral.h): the contract's `exits:` lines print as they did when counted per VMX reason. */
#include <assert.h>
#include <stdio.h>
#include <string.h>
#include "vcpu/exit_kind.h"
#include "vmx/exit_kind.h"
#include "vmx/neutral.h"

int main(void)
{
	struct vcpu_exit_counts c = { 0 };
	char buf[256];
	int last = -1;

	/* Each mapped reason's kind has the reason's old name, and the kinds keep the reasons' order. */
	for (unsigned r = 0; r <= EXIT_REASON_MAX; r++) {
		unsigned k = vmx_exit_kinds[r];

		assert(k < VCPU_EXIT_KINDS);
		if (k == VCPU_EXIT_UNEXPECTED)
			continue;
		assert(!strcmp(vcpu_exit_kind_name(k), exit_reason_name(r)));
		assert((int)k > last);
		last = (int)k;
	}
	/* docs/console.md's example line. */
	c.n[vmx_exit_kinds[EXIT_CPUID]] = 5, c.n[vmx_exit_kinds[EXIT_HLT]] = 358, c.n[vmx_exit_kinds[EXIT_CR_ACCESS]] = 1;
	c.n[vmx_exit_kinds[EXIT_IO_INSTRUCTION]] = 751, c.n[vmx_exit_kinds[EXIT_MSR_READ]] = 2;
	c.n[vmx_exit_kinds[EXIT_PREEMPTION_TIMER]] = 1, c.n[vmx_exit_kinds[EXIT_APIC_WRITE]] = 10;
	vcpu_exit_summary(&c, buf, sizeof(buf));
	assert(!strcmp(buf, "total 1128, cpuid 5, hlt 358, cr 1, io 751, rdmsr 2, preemption 1, APIC write 10"));

	/* Segments: CS of 32-bit flat code; an unusable LDTR. */
	struct vcpu_seg s = vcpu_seg_of_ar(8, 0, 0xffffffff, 0xc09b);
	assert(s.attr == (0xb | SEG_ATTR_S | SEG_ATTR_P | SEG_ATTR_DB | SEG_ATTR_G) && !s.unusable);
	assert(SEG_ATTR_DPL(vcpu_seg_of_ar(0x23, 0, 0, 0x00f3).attr) == 3);
	s = vcpu_seg_of_ar(0, 0, 0, 0x10000);
	assert(s.unusable && s.attr == 0);
	/* Events: #PF with an error code; an external interrupt. */
	struct vcpu_pending_event e = vmx_event_neutral(INTR_INFO_VALID | INTR_TYPE_HW_EXCEPTION | INTR_INFO_DELIVER_CODE | 14, 2);
	assert(e.valid && e.vector == 14 && e.type == VCPU_EVENT_EXCEPTION && e.has_error_code && e.error_code == 2);
	e = vmx_event_neutral(INTR_INFO_VALID | INTR_TYPE_EXT_INTR | 0x30, 7);
	assert(e.type == VCPU_EVENT_EXTINT && e.vector == 0x30 && !e.has_error_code && !e.error_code);
	assert(vmx_blocking_neutral(BLOCKING_BY_MOV_SS | BLOCKING_BY_NMI) == (VCPU_BLOCK_MOV_SS | VCPU_BLOCK_NMI));
	puts("test_exit_kind: ok");
	return 0;
}
