/* The virtual I/O APIC: one guest's 24 interrupt pins and the messages they send to its local APICs. */

/*
 * Emulates the Intel 82093AA I/O APIC (datasheet 290566-001) at 0xFEC00000:
 *  - IOREGSEL (0x00) and IOWIN (0x10), 32-bit accesses (3.1); the indirect registers IOAPICID (R/W
 *    bits 27:24), IOAPICVER (0x00170011: version 0x11, 24 entries), IOAPICARB (the ID, as the chip
 *    loads it from IOAPICID) and the 24 64-bit redirection entries (3.2.4), each written and read a
 *    32-bit half at a time; reserved bits read 0;
 *  - edge-triggered pins: a deassert-to-assert transition of an unmasked pin sends one message; an
 *    edge on a masked pin is lost (3.2.4, "Interrupt Mask");
 *  - level-triggered pins: while asserted, unmasked and remote IRR clear, the pin sends and sets
 *    remote IRR; the local APIC's EOI of that vector (vioapic_eoi) clears remote IRR and, with the
 *    pin still asserted, sends again. Unmasking (or any entry write) of an asserted level pin with
 *    remote IRR clear sends at once, as the chip's level-sensitive input would;
 *  - polarity: the pin is asserted when its electrical level equals the active level (bit 13);
 *  - physical and logical destinations and every delivery mode through vlapic_deliver (fixed, lowest
 *    priority, NMI, INIT; SMI and ExtINT are dropped there, see vdev/lapic.c).
 * Defined here where the datasheet leaves it open:
 *  - remote IRR is cleared by writing the entry with edge trigger mode (what Linux does to recover a
 *    stuck pin on version 0x11 chips, which have no EOI register), and is set only by level messages
 *    of fixed or lowest-priority mode (the other modes are edge-only, 3.2.4);
 *  - delivery status always reads 0 (idle): a message is delivered at once;
 *  - other offsets of the 4 KiB page (0x04-0x0F, 0x14-0xFFF, e.g. the EOI register of version 0x20
 *    chips at 0x40) read 0 and ignore writes, of any size; an access to IOREGSEL or IOWIN that is not
 *    32 bits wide at its start is undefined in the datasheet and stops the guest (VDEV_BAD_ACCESS);
 *  - IOREGSEL values that select no register: IOWIN reads 0, writes are ignored.
 * Not emulated: the APIC serial bus and its arbitration (messages are function calls), the
 * 0x20 version's EOI register, the PCI IRQ pin assertion register.
 *
 * Concurrency: none here; the caller serializes (one lock per guest platform).
 */
#include <stddef.h>
#include "lib/format.h"
#include "vdev/ioapic.h"
#include "vdev/lapic.h"

void vioapic_init(struct vioapic *io, struct vlapic_group *g)
{
	io->lapics = g;
	io->bus = NULL;
	io->regsel = 0;
	io->id = VIOAPIC_ID_DEFAULT << 24;
	io->line = 0;
	io->messages = 0;
	for (unsigned i = 0; i < VIOAPIC_PINS; i++)
		io->rte[i] = VIOAPIC_RTE_MASKED;
}

/* Whether pin `pin` is asserted: its level equals the entry's active level. */
static bool asserted(const struct vioapic *io, unsigned pin)
{
	bool high = io->line & (1u << pin), active_low = io->rte[pin] & VIOAPIC_RTE_LOW;

	return high != active_low;
}

/* Sends pin `pin`'s message; a level-triggered fixed or lowest-priority one sets remote IRR. */
static void send(struct vioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];
	unsigned mode = (e & VIOAPIC_RTE_DM) >> VIOAPIC_RTE_DM_SHIFT;
	bool level = e & VIOAPIC_RTE_LEVEL;

	if (level && mode <= 1)
		io->rte[pin] |= VIOAPIC_RTE_RIRR;
	io->messages++;
	vlapic_deliver(io->lapics, (uint32_t)(e >> VIOAPIC_RTE_DEST_SHIFT), e & VIOAPIC_RTE_LOGICAL, mode,
		       (uint8_t)(e & VIOAPIC_RTE_VECTOR), level);
}

/* A level-triggered pin sends whenever it is asserted, unmasked and not waiting for its EOI. */
static void level_check(struct vioapic *io, unsigned pin)
{
	uint64_t e = io->rte[pin];

	if ((e & VIOAPIC_RTE_LEVEL) && !(e & (VIOAPIC_RTE_MASKED | VIOAPIC_RTE_RIRR)) && asserted(io, pin))
		send(io, pin);
}

void vioapic_set_irq(struct vioapic *io, unsigned pin, bool level)
{
	bool was;

	if (pin >= VIOAPIC_PINS)
		return;
	was = asserted(io, pin);
	if (level)
		io->line |= 1u << pin;
	else
		io->line &= ~(1u << pin);
	if (io->rte[pin] & VIOAPIC_RTE_LEVEL)
		level_check(io, pin);
	else if (!was && asserted(io, pin) && !(io->rte[pin] & VIOAPIC_RTE_MASKED))
		send(io, pin);
}

void vioapic_eoi(struct vioapic *io, uint8_t vector)
{
	for (unsigned pin = 0; pin < VIOAPIC_PINS; pin++) {
		uint64_t e = io->rte[pin];

		if ((e & VIOAPIC_RTE_VECTOR) != vector || !(e & VIOAPIC_RTE_RIRR))
			continue;
		io->rte[pin] &= ~VIOAPIC_RTE_RIRR;
		level_check(io, pin);
	}
}

/* --- registers ---------------------------------------------------------------------------------- */

static uint32_t read_reg(const struct vioapic *io, uint32_t reg)
{
	switch (reg) {
	case VIOAPIC_REG_ID:
	case VIOAPIC_REG_ARB:      /* the arbitration ID is loaded from the ID */
		return io->id;
	case VIOAPIC_REG_VER:
		return VIOAPIC_VERSION;
	}
	if (reg >= VIOAPIC_REG_REDTBL && reg < VIOAPIC_REG_REDTBL + 2 * VIOAPIC_PINS) {
		uint64_t e = io->rte[(reg - VIOAPIC_REG_REDTBL) / 2];

		return reg & 1 ? (uint32_t)(e >> 32) : (uint32_t)e;
	}
	return 0;
}

static void write_reg(struct vioapic *io, uint32_t reg, uint32_t v)
{
	unsigned pin;
	uint64_t e;

	if (reg == VIOAPIC_REG_ID) {
		io->id = v & VIOAPIC_ID_MASK;
		return;
	}
	if (reg < VIOAPIC_REG_REDTBL || reg >= VIOAPIC_REG_REDTBL + 2 * VIOAPIC_PINS)
		return;                                    /* read-only or no register */
	pin = (reg - VIOAPIC_REG_REDTBL) / 2;
	e = io->rte[pin];
	if (reg & 1)
		e = (e & 0xffffffffull) | ((uint64_t)v << 32);
	else
		e = (e & ~0xffffffffull) | v;
	/* Keep the read-only bits; an entry switched to edge has no remote IRR any more. */
	e = (e & VIOAPIC_RTE_WRITABLE) | (io->rte[pin] & VIOAPIC_RTE_RIRR);
	if (!(e & VIOAPIC_RTE_LEVEL))
		e &= ~VIOAPIC_RTE_RIRR;
	io->rte[pin] = e;
	level_check(io, pin);
}

/* Whether [off, off + size) overlaps the 32-bit register at `reg`. */
static bool overlaps(uint32_t off, unsigned size, uint32_t reg)
{
	return off < reg + 4 && reg < off + size;
}

enum vdev_result vioapic_access(void *dev, struct vdev_access *a)
{
	struct vioapic *io = dev;
	uint32_t off = (uint32_t)(a->addr & (VIOAPIC_SIZE - 1));
	bool sel = overlaps(off, a->size, VIOAPIC_IOREGSEL), win = overlaps(off, a->size, VIOAPIC_IOWIN);

	if (!sel && !win) {                               /* nothing decodes there */
		if (!a->write)
			a->value = 0;
		return VDEV_DONE;
	}
	if (a->size != 4 || (off != VIOAPIC_IOREGSEL && off != VIOAPIC_IOWIN)) {
		if (io->bus)
			snformat(io->bus->why, sizeof(io->bus->why),
				 "I/O APIC %s of %u bytes at offset 0x%x (IOREGSEL and IOWIN take 32-bit accesses)",
				 a->write ? "write" : "read", a->size, off);
		return VDEV_BAD_ACCESS;
	}
	if (sel) {
		if (a->write)
			io->regsel = (uint32_t)a->value & 0xff;
		else
			a->value = io->regsel;
	} else if (a->write) {
		write_reg(io, io->regsel, (uint32_t)a->value);
	} else {
		a->value = read_reg(io, io->regsel);
	}
	return VDEV_DONE;
}

int vioapic_register(struct vioapic *io, struct vdev_bus *bus)
{
	io->bus = bus;
	return vdev_add_mmio(bus, VIOAPIC_BASE, VIOAPIC_SIZE, vioapic_access, io, "ioapic");
}
