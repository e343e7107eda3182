/* Bringing up the other CPUs (application processors) found in the ACPI MADT. */
#pragma once
#include <stdint.h>
#include "arch/x86/percpu.h"

/* Where the AP trampoline goes: a free page below 1 MiB, chosen by the caller from the memory map. */
#define TRAMPOLINE_DEFAULT 0x8000ull

/*
 * Starts every CPU the MADT lists, one at a time, with INIT-SIPI-SIPI through the trampoline copied to
 * `tramp_page`. Each AP sets up its tables and local APIC, marks itself online and calls
 * `ap_main(its percpu)`, which must not return. A CPU that does not answer in time is reported and
 * skipped. `alloc_stack` gives each AP its stack (top address), or 0 when memory runs out.
 * Sets cpu_count and cpu_present.
 */
void smp_boot(uint64_t tramp_page, uint64_t (*alloc_stack)(void), void (*ap_main)(struct percpu *));

/* Sends the wake-up IPI to CPU `cpu` (halted in its idle loop). */
void smp_wake(unsigned cpu);
