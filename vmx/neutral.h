/* VMX's formats translated to the vendor-neutral ones (vcpu/seg.h, vcpu/snapshot.h), at the back
 * end's edge. Pure: the host unit test checks them (tests/unit/test_exit_kind.c). */
#pragma once
#include <stdint.h>
#include "vcpu/seg.h"
#include "vcpu/snapshot.h"
#include "vcpu/vcpu_state.h"
#include "vmx/vmcs.h"

/* An event in the VM-entry interruption-information format (SDM Vol. 3C, 25.8.3, Table 25-17: vector
 * in 7:0, type in 10:8, deliver-error-code 11, valid 31). */
static inline struct vcpu_pending_event vmx_event_neutral(uint32_t info, uint32_t error_code)
{
	static const enum vcpu_event_type types[8] = {
		VCPU_EVENT_EXTINT, VCPU_EVENT_OTHER, VCPU_EVENT_NMI, VCPU_EVENT_EXCEPTION,
		VCPU_EVENT_SOFT_INT, VCPU_EVENT_PRIV_SOFT_EXC, VCPU_EVENT_SOFT_EXC, VCPU_EVENT_OTHER,
	};
	bool code = info & INTR_INFO_DELIVER_CODE;

	return (struct vcpu_pending_event){ .valid = (info & INTR_INFO_VALID) != 0, .vector = (uint8_t)info,
					    .type = types[(info & INTR_TYPE_MASK) >> 8],
					    .has_error_code = code, .error_code = code ? error_code : 0 };
}

/* Blocking by STI, MOV SS and NMI from the guest interruptibility state (SDM Vol. 3C, 25.4.2,
 * Table 25-3). */
static inline unsigned vmx_blocking_neutral(uint32_t interruptibility)
{
	return (interruptibility & BLOCKING_BY_STI ? VCPU_BLOCK_STI : 0) |
	       (interruptibility & BLOCKING_BY_MOV_SS ? VCPU_BLOCK_MOV_SS : 0) |
	       (interruptibility & BLOCKING_BY_NMI ? VCPU_BLOCK_NMI : 0);
}
