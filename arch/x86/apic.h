/* The local APIC: identity, end of interrupt, and the inter-processor interrupts SMP needs. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Enables this CPU's local APIC (xAPIC MMIO, or x2APIC MSRs where firmware turned x2APIC on). */
void lapic_init(void);
uint32_t lapic_id(void);
void lapic_eoi(void);
/* The host timer: set up on this CPU (after lapic_init), then armed for a one-shot wake-up interrupt
 * (VEC_WAKEUP) at TSC value `tsc_deadline`, or disarmed with 0. A past deadline fires at once. */
void lapic_timer_init(void);
void lapic_timer_arm(uint64_t tsc_deadline);
/* A fixed-delivery IPI with `vector` to the CPU with `apic_id`. */
void lapic_send_ipi(uint32_t apic_id, uint8_t vector);
/* INIT, then start-up with `vector` (= trampoline page >> 12). SDM Vol. 3A, 9.4.4.1. */
void lapic_send_init(uint32_t apic_id);
void lapic_send_sipi(uint32_t apic_id, uint8_t vector);
/* An NMI to every CPU but this one: how panic() stops them. */
void lapic_nmi_others(void);
/* Physical address of the xAPIC MMIO page (for the escape tests and the host map). */
uint64_t lapic_mmio_base(void);
