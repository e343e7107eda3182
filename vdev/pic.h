/* The virtual 8259A PIC pair of a PC: master at 0x20, slave at 0xA0 on the master's IR2, and the
 * edge/level control registers at 0x4D0/0x4D1. Intel 8259A datasheet; what is and is not emulated is
 * listed at the top of vdev/pic.c. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vdev/vdev.h"

#define VPIC_MASTER   0x20   /* command (A0=0) and data (A0=1) ports of the master */
#define VPIC_SLAVE    0xa0   /* ... of the slave */
#define VPIC_ELCR     0x4d0  /* ELCR1 (IRQ 0-7) and ELCR2 (IRQ 8-15) at 0x4D1: bit set = level */
#define VPIC_CASCADE  2      /* the master's input the slave's INT drives (PC/AT) */

/* One 8259A. Bit n of each 8-bit register is input IRn. */
struct vpic_chip {
	uint8_t irr;            /* interrupt request register */
	uint8_t isr;            /* in-service register */
	uint8_t imr;            /* interrupt mask register (OCW1) */
	uint8_t line;           /* input levels as last driven: rising edges latch IRR in edge mode */
	uint8_t elcr;           /* edge/level control: 1 = level-triggered input */
	uint8_t elcr_mask;      /* ELCR bits that exist (IRQ 0, 1, 2, 8, 13 are always edge) */
	uint8_t base;           /* ICW2: vector of IR0 (bits 7:3) */
	uint8_t icw1, icw3, icw4;
	uint8_t init_step;      /* 0: ready; 2, 3, 4: the next data-port write is that ICW */
	uint8_t lowest;         /* the IR with the lowest priority (rotation; 7 after ICW1) */
	bool read_isr;          /* OCW3 RR/RIS: reads of the command port give ISR (else IRR) */
	bool poll;              /* OCW3 P: the next read is the poll byte (and acknowledges) */
	bool special_mask;      /* OCW3 special mask mode */
	bool rotate_aeoi;       /* OCW2 rotate in automatic EOI mode */
};

/* The pair. The caller serializes every call (one lock per guest, the device bus lock). */
struct vpic {
	struct vpic_chip chip[2];                 /* [0] master, [1] slave */
	bool intr;                                /* the master's INT output as last reported */
	void (*intr_changed)(void *ctx);
	void *ctx;
};

/* Resets the pair to what a PC BIOS leaves (ICW1 0x11, bases 0x08 and 0x70, cascade on IR2, 8086
 * mode, every input masked, all edge-triggered). `intr_changed(ctx)` runs, with the caller's lock
 * held and from inside the vpic_* call that caused it, whenever the INTR output changes level; it
 * may call vpic_has_intr but must not take the lock again. */
void vpic_init(struct vpic *p, void (*intr_changed)(void *ctx), void *ctx);
/* Registers ports 0x20-0x21, 0xA0-0xA1 and 0x4D0-0x4D1 on `bus`. 0 or a negative error. */
int vpic_register(struct vpic *p, struct vdev_bus *bus);
/* Drives input IRQ `irq` (0-15; 2 is the internal cascade and is ignored) to `level`. */
void vpic_set_irq(struct vpic *p, unsigned irq, bool level);
/* INTR: an unmasked request with a higher priority than any in service. */
bool vpic_has_intr(struct vpic *p);
/* The INTA cycle: the vector to deliver (IRR edge cleared, ISR set unless auto-EOI); with nothing
 * pending the spurious vector of IR7 (of the slave when the master chose IR2), ISR unchanged. */
int vpic_ack(struct vpic *p);
/* The port handler (also for tests and callers that decode on their own). */
enum vdev_result vpic_access(void *dev, struct vdev_access *a);
