/* The PC each guest gets besides its local APICs: the 8259A pair, the 8254 PIT, the I/O APIC, the
 * CMOS RTC, the ACPI PM1 registers and PM timer, their interrupt router, and the wiring between them as on a PC (vdev/irq.h). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vdev/ioapic.h"
#include "vdev/irqchip.h"
#include "vdev/pic.h"
#include "vdev/pit.h"
#include "vdev/pmtimer.h"
#include "vdev/rtc.h"
#include "vdev/vdev.h"

#define PC_IRQ_PIT  0       /* ISA IRQs (the router maps IRQ 0 to I/O APIC pin 2) */
#define PC_IRQ_COM1 4
#define PC_IRQ_RTC  8
#define PC_IRQ_SCI  9       /* the ACPI SCI (FADT SCI_INT), level-triggered */

struct vpc {
	struct vdev_bus *bus;    /* its lock serializes every device below, their timers and lines */
	struct vpic pic;
	struct vpit pit;
	struct vioapic ioapic;
	struct vrtc rtc;
	struct vpm pm;
	struct virqchip chip;
	void (*intr_changed)(void *ctx);   /* the PIC's INTR output may have changed: vCPU 0 looks */
	void *ctx;
	volatile bool intr;      /* the PIC's INTR output as last reported: read without the lock */
};

/*
 * Builds the platform on `bus` (ports 0x20/0xA0/0x4D0 PIC, 0x40-0x43/0x61 PIT, 0x70/0x71 RTC, the
 * ACPI PM block at `pm_base` with \_S5's SLP_TYP `s5_typ` (vdev/pmtimer.h), MMIO 0xFEC00000 I/O
 * APIC) for a guest with `ram_bytes` of RAM, whose local APICs are `lapics`; the RTC
 * starts at `epoch_seconds` now. `intr_changed(ctx)` runs when the PIC's INTR output changes (the
 * caller kicks vCPU 0, whose LINT0 it reaches). 0 or a negative error.
 */
int vpc_init(struct vpc *pc, struct vdev_bus *bus, struct vlapic_group *lapics, uint64_t tsc_khz,
	     uint64_t ram_bytes, uint64_t epoch_seconds, uint16_t pm_base, uint8_t s5_typ,
	     void (*intr_changed)(void *ctx), void *ctx);
/* An irq_line for a device on ISA IRQ `irq` (the UART's IRQ 4). */
struct irq_line vpc_irq_line(struct vpc *pc, unsigned irq);
/* The PIC's INTR output, and its acknowledge cycle (the vector), for vCPU 0's LINT0 (ExtINT).
 * vpc_extint_pending reads the output the PIC last reported (no lock: vCPU 0 is kicked when it
 * changes); vpc_extint_ack takes the bus lock. */
bool vpc_extint_pending(struct vpc *pc);
int vpc_extint_ack(struct vpc *pc);
/* A level-triggered vector retired by an EOI on some local APIC: the I/O APIC learns of it. */
void vpc_eoi(struct vpc *pc, uint8_t vector);
