/* Host device interrupts: the console UART's receive interrupt, routed ISA IRQ -> I/O APIC pin -> the
 * boot CPU's local APIC -> VEC_CONSOLE (arch/x86/trap.c). The 8259As stay masked (pic.c), as ACPI's
 * APIC mode wants them (ACPI 6.5, 5.2.12, MADT flag PCAT_COMPAT: "the 8259 vectors must be disabled
 * (that is, masked) when enabling the ACPI APIC operation"); and under Bochs an unmasked 8259 would
 * reach the CPU whatever LINT0 says (docs/console.md). Without an I/O APIC, input stays polled. */
#include "arch/x86/acpi.h"
#include "arch/x86/apic.h"
#include "arch/x86/ioapic.h"
#include "arch/x86/irq.h"
#include "arch/x86/trap.h"
#include "console/console.h"
#include "console/printk.h"
#include "lib/errno.h"

/* The ISA IRQ of a serial port by its base: COM1 0x3F8 IRQ 4, COM2 0x2F8 IRQ 3 (IBM PC/AT Technical
 * Reference, "System I/O Channel" interrupt assignments); COM3 0x3E8 and COM4 0x2E8 share IRQ 4 and 3
 * by the same convention. -1 for any other port. */
static int isa_irq_of(uint16_t port)
{
	switch (port) {
	case 0x3f8: case 0x3e8: return 4;
	case 0x2f8: case 0x2e8: return 3;
	default: return -1;
	}
}

bool irq_console_init(bool use_irq)
{
	uint16_t port = uart_io_port();
	int irq = isa_irq_of(port);
	unsigned nio = ioapic_init(), ioapic, pin;
	const struct acpi_isa_irq *r;
	int err;

	if (!port)
		return false;
	if (!use_irq) {
		pr_info("hv: console: input by polling (console_irq=0)\n");
		return false;
	}
	if (irq < 0) {
		pr_info("hv: console: input by polling (port 0x%x has no known ISA IRQ)\n", port);
		return false;
	}
	if (!nio) {
		pr_info("hv: console: input by polling (no I/O APIC)\n");
		return false;
	}
	r = &acpi.isa_irq[irq];
	err = ioapic_route(r->gsi, VEC_CONSOLE, lapic_id(), r->active_low, r->level, &ioapic, &pin);
	if (err) {
		pr_info("hv: console: input by polling (IRQ %d = GSI %u: %s)\n", irq, r->gsi,
			err == -EINVAL ? "the boot CPU's APIC ID is above 255" : "no I/O APIC pin");
		return false;
	}
	/* UART first, pin second, then read what came meanwhile: an edge that arrived while the pin was
	 * masked is lost (82093AA datasheet, 3.2.4, Interrupt Mask), and the line stays high until the
	 * FIFO is read empty. */
	uart_rx_irq_on();
	ioapic_set_masked(r->gsi, false);
	uart_rx_poll();
	pr_info("hv: console: input by interrupt (IRQ %d, I/O APIC %u pin %u, %s %s, vector 0x%x)\n", irq, ioapic,
		pin, r->level ? "level" : "edge", r->active_low ? "active low" : "active high", VEC_CONSOLE);
	return true;
}
