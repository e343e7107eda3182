/* The interrupt router of a guest's PC: each interrupt line a device drives reaches the 8259A pair
 * and the I/O APIC as the PC and the ACPI MADT wire them. See vdev/irqchip.c. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vdev/irq.h"

struct vioapic;

#define VIRQCHIP_LINES 24        /* ISA IRQ 0-15, then PCI/other lines 16-23 = I/O APIC pins 16-23 */
#define VIRQCHIP_PIT_PIN 2       /* the I/O APIC pin of ISA IRQ 0 (MADT interrupt source override) */

/*
 * Devices name their line by its ISA IRQ number (the PIT 0, the UART 4, the RTC 8): irq_line.gsi
 * holds that number. The router sends ISA IRQ n (0-15) to PIC input n and to I/O APIC pin n, except
 * IRQ 0 -> pin 2 (the override the MADT reports, ACPI 6.x 5.2.12.5) and IRQ 2 (the PIC cascade, no
 * device) -> no pin; lines 16-23 go to the I/O APIC only. Pin 0 (the 8259A's INTR on a PC) is left
 * undriven: the PIC reaches vCPU 0 through LINT0.
 * The caller serializes (the guest's platform lock); pic_set or ioapic may be NULL (a platform
 * without that controller).
 */
struct virqchip {
	struct vioapic *ioapic;
	void (*pic_set)(void *pic, unsigned irq, bool level);
	void *pic;
	uint32_t level;          /* bit n: line n's level as last driven */
};

void virqchip_init(struct virqchip *c, struct vioapic *ioapic,
		   void (*pic_set)(void *pic, unsigned irq, bool level), void *pic);
/* The irq_line `set` function: drives line `gsi` (an ISA IRQ number, or 16-23) to `level`. Only a
 * change of level reaches the controllers: a second raise of a raised line is no new edge. */
void virqchip_set(void *chip, unsigned gsi, bool level);
/* The irq_line for a device on line `irq` of `c`. */
struct irq_line virqchip_line(struct virqchip *c, unsigned irq);
/* The I/O APIC pin ISA IRQ `irq` (or line 16-23) reaches; -1 none. */
int virqchip_ioapic_pin(unsigned irq);
