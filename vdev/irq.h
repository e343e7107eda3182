/* A guest's interrupt lines as a PC wires them: devices drive global system interrupts (GSIs), which
 * reach the 8259A pair (GSI 0-15 = IRQ 0-15) and the I/O APIC (GSI 0-23) at once; the PIC's output
 * goes to vCPU 0's LINT0 (ExtINT), the I/O APIC sends messages to the local APICs. (MP spec 1.4,
 * 3.6.2 "virtual wire" and "symmetric I/O" modes; ACPI 6.x 5.2.12.5 ISA interrupt source overrides:
 * the PIT's IRQ 0 is GSI 2 on the I/O APIC.) */
#pragma once
#include <stdbool.h>

/* One interrupt line a device drives: set(ctx, gsi, level). Edge-triggered devices pulse it (1, 0);
 * level-triggered ones hold it. The router behind it is vdev/irqchip.c. */
struct irq_line {
	void (*set)(void *ctx, unsigned gsi, bool level);
	void *ctx;
	unsigned gsi;
};

static inline void irq_raise(const struct irq_line *l)
{
	if (l->set)
		l->set(l->ctx, l->gsi, true);
}

static inline void irq_lower(const struct irq_line *l)
{
	if (l->set)
		l->set(l->ctx, l->gsi, false);
}

static inline void irq_pulse(const struct irq_line *l)
{
	irq_raise(l);
	irq_lower(l);
}
