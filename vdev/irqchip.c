/* The interrupt router: one guest's interrupt lines, from the devices to the PIC and the I/O APIC. */

/*
 * A PC in symmetric I/O mode with the 8259A pair beside it (MP spec 1.4, 3.6.2; ACPI 6.x 5.2.12.5):
 * every ISA interrupt line runs to a PIC input and to an I/O APIC pin at once, and the guest chooses
 * which controller it listens to by masking the other. One scheme throughout: devices drive ISA IRQ
 * numbers; the override of the PC (ISA IRQ 0, the PIT, on I/O APIC pin 2, with pin 0 the 8259A's
 * INTR) is applied here, on the I/O APIC side only, and the guest learns it from the MADT. IRQ 2 is
 * the cascade input of the master PIC inside the pair: no device drives it and it has no pin.
 * Lines 16-23 (PCI on a PC) reach only the I/O APIC.
 * Each line is driven by one device (no wired-OR sharing); its level is kept so that a repeated
 * raise is not a second edge and a controller sees every transition exactly once.
 */
#include <stddef.h>
#include "vdev/ioapic.h"
#include "vdev/irqchip.h"

void virqchip_init(struct virqchip *c, struct vioapic *ioapic,
		   void (*pic_set)(void *pic, unsigned irq, bool level), void *pic)
{
	c->ioapic = ioapic;
	c->pic_set = pic_set;
	c->pic = pic;
	c->level = 0;
}

int virqchip_ioapic_pin(unsigned irq)
{
	if (irq == 0)
		return VIRQCHIP_PIT_PIN;
	if (irq == 2 || irq >= VIRQCHIP_LINES)
		return -1;
	return (int)irq;
}

void virqchip_set(void *chip, unsigned gsi, bool level)
{
	struct virqchip *c = chip;
	uint32_t bit = 1u << (gsi & 31);
	int pin;

	if (gsi >= VIRQCHIP_LINES || !!(c->level & bit) == level)
		return;
	c->level = level ? c->level | bit : c->level & ~bit;
	if (gsi < 16 && c->pic_set)
		c->pic_set(c->pic, gsi, level);
	if (c->ioapic && (pin = virqchip_ioapic_pin(gsi)) >= 0)
		vioapic_set_irq(c->ioapic, (unsigned)pin, level);
}

struct irq_line virqchip_line(struct virqchip *c, unsigned irq)
{
	return (struct irq_line){ virqchip_set, c, irq };
}
