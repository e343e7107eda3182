/* The host's I/O APICs (from the MADT): where an ISA device's interrupt line enters the APIC system.
 * Intel 82093AA I/O APIC datasheet. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Maps every I/O APIC the MADT lists uncached and masks all their pins (the firmware may have left
 * some on, with vectors the host IDT has no gate for). The number of I/O APICs found. */
unsigned ioapic_init(void);

/* Points GSI `gsi` at `vector` of the local APIC `apic_id` (fixed delivery, physical destination) with
 * the given polarity and trigger mode, masked. 0; -ENODEV when no I/O APIC has that GSI; -EINVAL for an
 * APIC ID an I/O APIC cannot name (above 255). *ioapic and *pin say where (either may be NULL). */
int ioapic_route(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool active_low, bool level,
		 unsigned *ioapic, unsigned *pin);
/* Masks or unmasks a routed GSI. */
void ioapic_set_masked(uint32_t gsi, bool masked);
