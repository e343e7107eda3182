/* VMX's basic exit reasons as the vendor-neutral exit kinds they count as (vcpu/exit_kind.h). */
#pragma once
#include <stdint.h>
#include "vcpu/exit_kind.h"
#include "vmx/vmcs.h"

/* Indexed by basic exit reason 0..EXIT_REASON_MAX; a reason no control tessera sets can cause is
 * VCPU_EXIT_UNEXPECTED. Every reason vmx_exit_dispatch handles has its own kind (checked by
 * tests/check_exit_kinds.py), named as exit_reason_name names it (tests/unit/test_exit_kind.c). */
extern const uint8_t vmx_exit_kinds[EXIT_REASON_MAX + 1];

/* The SDM's name of a basic exit reason ("cpuid", "EPT violation" is "ept-violation"...), for the
 * messages that stop a guest on a reason it should not have caused. */
const char *exit_reason_name(unsigned reason);
