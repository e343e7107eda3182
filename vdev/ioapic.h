/* The virtual I/O APIC of a guest: 24 pins, each a redirection entry that turns the pin into a
 * message to the local APICs. Intel 82093AA I/O APIC datasheet (order 290566-001); what is and is
 * not emulated is listed at the top of vdev/ioapic.c. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vdev/vdev.h"

#define VIOAPIC_BASE       0xfec00000ull /* where a PC's first I/O APIC decodes (datasheet 3.0) */
#define VIOAPIC_SIZE       0x1000        /* the page the MMIO region claims */
#define VIOAPIC_PINS       24
#define VIOAPIC_ID_DEFAULT 0             /* IOAPICID after reset here; the MADT must give the same */

/* Memory-mapped registers (datasheet 3.1, Table 1): an index and a data window. */
#define VIOAPIC_IOREGSEL   0x00          /* bits 7:0: the register IOWIN reads and writes */
#define VIOAPIC_IOWIN      0x10          /* the selected register, 32 bits */

/* Indirect registers (datasheet 3.2, Table 2). */
#define VIOAPIC_REG_ID     0x00          /* IOAPICID: bits 27:24 the ID (R/W) */
#define VIOAPIC_REG_VER    0x01          /* IOAPICVER: 23:16 max redirection entry, 7:0 version (RO) */
#define VIOAPIC_REG_ARB    0x02          /* IOAPICARB: 27:24 arbitration ID (RO) */
#define VIOAPIC_REG_REDTBL 0x10          /* IOREDTBL0..23: 0x10 + 2n low half, 0x11 + 2n high half */

#define VIOAPIC_VERSION    0x00170011u   /* max redirection entry 23, version 0x11 */
#define VIOAPIC_ID_MASK    0x0f000000u   /* IOAPICID and IOAPICARB bits 27:24 */

/* Redirection table entry bits (datasheet 3.2.4). */
#define VIOAPIC_RTE_VECTOR   0xffull          /* 7:0 interrupt vector (0x10-0xFE) */
#define VIOAPIC_RTE_DM_SHIFT 8                /* 10:8 delivery mode: 000 fixed, 001 lowest priority, */
#define VIOAPIC_RTE_DM       (7ull << 8)      /*   010 SMI, 100 NMI, 101 INIT, 111 ExtINT */
#define VIOAPIC_RTE_LOGICAL  (1ull << 11)     /* destination mode: 1 logical, 0 physical */
#define VIOAPIC_RTE_STATUS   (1ull << 12)     /* delivery status (RO): 1 send pending */
#define VIOAPIC_RTE_LOW      (1ull << 13)     /* interrupt input pin polarity: 1 active low */
#define VIOAPIC_RTE_RIRR     (1ull << 14)     /* remote IRR (RO, level only): accepted, EOI not yet seen */
#define VIOAPIC_RTE_LEVEL    (1ull << 15)     /* trigger mode: 1 level, 0 edge */
#define VIOAPIC_RTE_MASKED   (1ull << 16)     /* interrupt mask */
#define VIOAPIC_RTE_DEST_SHIFT 56             /* 63:56 destination: APIC ID or logical set */
/* The bits a guest's write may change (17-55 are reserved and read 0). */
#define VIOAPIC_RTE_WRITABLE (VIOAPIC_RTE_VECTOR | VIOAPIC_RTE_DM | VIOAPIC_RTE_LOGICAL | \
			      VIOAPIC_RTE_LOW | VIOAPIC_RTE_LEVEL | VIOAPIC_RTE_MASKED | (0xffull << 56))

struct vlapic_group;

/* The caller serializes every call (one lock per guest platform: the device bus lock), including
 * vioapic_eoi from the EOI of a vCPU's local APIC. */
struct vioapic {
	struct vlapic_group *lapics;  /* where messages go (vlapic_deliver) */
	struct vdev_bus *bus;         /* for bus->why on a bad access; NULL until registered */
	uint32_t regsel;              /* IOREGSEL bits 7:0 */
	uint32_t id;                  /* IOAPICID, bits 27:24 */
	uint32_t line;                /* bit n: the electrical level pin n is driven to (1 = high) */
	uint64_t rte[VIOAPIC_PINS];   /* redirection entries */
	uint64_t messages;            /* sent so far (statistics and tests) */
};

/* Reset state (datasheet 3.2.4): every entry masked and 0 otherwise, ID VIOAPIC_ID_DEFAULT, all
 * lines low. Messages go to the local APICs of `g`. */
void vioapic_init(struct vioapic *io, struct vlapic_group *g);
/* Claims [VIOAPIC_BASE, + VIOAPIC_SIZE) on `bus`. 0 or a negative error. */
int vioapic_register(struct vioapic *io, struct vdev_bus *bus);
/* Drives pin `pin` (0-23; others ignored) to electrical level `level`. Whether that asserts the pin
 * depends on the entry's polarity: active high asserts on high, active low on low. */
void vioapic_set_irq(struct vioapic *io, unsigned pin, bool level);
/* A local APIC retired level-triggered `vector` (the group's eoi_level callback must call this,
 * under the platform lock): every pin with that vector and remote IRR set gets remote IRR cleared,
 * and one still asserted and unmasked sends again. */
void vioapic_eoi(struct vioapic *io, uint8_t vector);
/* The MMIO handler (also for tests and callers that decode on their own); a->addr is absolute. */
enum vdev_result vioapic_access(void *dev, struct vdev_access *a);
