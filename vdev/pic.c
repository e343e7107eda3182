/* The virtual 8259A pair: requests, masks, priorities, EOIs and the INTA cycle of a PC's two PICs. */

/*
 * Emulates, after the Intel 8259A datasheet (order no. 231468) and the PC/AT wiring (master at
 * 0x20/0x21, slave at 0xA0/0xA1 with its INT on the master's IR2; PIIX/ICH ELCR at 0x4D0/0x4D1):
 *  - the initialization sequence ICW1-ICW4 ("Initialization Command Words"): ICW1 resets the chip
 *    (IMR cleared, IR7 lowest priority, special mask mode off, IRR selected for reads, edge-sense
 *    latches reset); SNGL skips ICW3, IC4 = 0 means ICW4 = 0; ICW2 bits 7:3 are the vector base;
 *  - OCW1 (the mask), OCW2 (non-specific and specific EOI, rotate on non-specific or specific EOI,
 *    set priority, rotate in auto-EOI mode set/clear: rotation is emulated, not only accepted),
 *    OCW3 (read IRR/ISR, poll command, special mask mode);
 *  - automatic EOI (ICW4 AEOI), special fully nested mode (ICW4 SFNM, master only);
 *  - edge and level triggering: level when the input's ELCR bit is set (or ICW1 LTIM for the whole
 *    chip). Level: IRR follows the input, masked or not (the mask acts after IRR, datasheet Figure
 *    "Interrupt Sequence"), and an INTA leaves it set. Edge: a rising edge latches IRR, the INTA
 *    clears it, and a request that goes away before the INTA stays latched;
 *  - fixed priority IR0 (highest) .. IR7, or rotated; the slave's eight inputs take the master's IR2
 *    place: the slave's INT output is the master's IR2 input, edge-triggered like any other;
 *  - the INTA cycle (vpic_ack): the master resolves, and hands the vector to the slave when it
 *    chose IR2. With no request left (it went away, or was masked, between INTR and INTA) the chip
 *    answers with its IR7 vector and sets no ISR bit: spurious IRQ 7 (base + 7). A spurious
 *    request from the slave is IRQ 15 (slave base + 7), but the master did acknowledge IR2 and set
 *    its ISR bit 2: the OS must send the master (only) an EOI, as Linux's and the OSDev wiki's
 *    spurious-IRQ handling do;
 *  - the ELCR: IRQ 0, 1, 2, 8 and 13 cannot be level (their bits read 0, as on the PIIX).
 * Not emulated: MCS-80/85 mode (ICW4 uPM = 0 is treated as 8086 mode: the CPU is an x86), buffered
 * mode (stored only), ICW3 (stored: the cascade is wired as on a PC whatever it says), the vectors'
 * ICW1 address bits (8080 only), the ISR bit of a slave seen through the master in SFNM beyond what
 * the datasheet's priority rule gives.
 *
 * Concurrency: none inside. The caller serializes every call, port accesses and vpic_set_irq,
 * vpic_has_intr, vpic_ack alike, under one lock per guest (the device bus lock); intr_changed runs
 * under that lock.
 */
#include "lib/string.h"
#include "vdev/pic.h"

#define ICW1_IC4     0x01  /* ICW4 follows */
#define ICW1_SNGL    0x02  /* single chip: no ICW3 */
#define ICW1_LTIM    0x08  /* level-triggered inputs */
#define ICW1_INIT    0x10  /* command port write with this bit: ICW1 */
#define ICW4_UPM     0x01  /* 8086/8088 mode */
#define ICW4_AEOI    0x02  /* automatic end of interrupt */
#define ICW4_SFNM    0x10  /* special fully nested mode */
#define OCW3_SEL     0x08  /* command port write with bit 4 clear: OCW3 if set, OCW2 if clear */
#define OCW3_RIS     0x01  /* read ISR (with RR) */
#define OCW3_RR      0x02  /* read register command */
#define OCW3_POLL    0x04  /* poll command */
#define OCW3_SMM     0x20  /* special mask mode set (with ESMM) / reset */
#define OCW3_ESMM    0x40  /* enable the SMM bit */

/* OCW2 bits 7:5 (R, SL, EOI). */
enum {
	OCW2_ROTATE_AEOI_CLEAR = 0, OCW2_EOI = 1, OCW2_NOP = 2, OCW2_SPECIFIC_EOI = 3,
	OCW2_ROTATE_AEOI_SET = 4, OCW2_ROTATE_EOI = 5, OCW2_SET_PRIORITY = 6, OCW2_ROTATE_SPECIFIC_EOI = 7,
};

static bool is_master(const struct vpic *p, const struct vpic_chip *c)
{
	return c == &p->chip[0];
}

static uint8_t level_bits(const struct vpic_chip *c)
{
	return (c->icw1 & ICW1_LTIM) ? 0xff : c->elcr;
}

/* Priority rank of input `ir`: 0 is the highest; after a rotation `lowest` has rank 7. */
static unsigned rank(const struct vpic_chip *c, unsigned ir)
{
	return (ir - c->lowest - 1) & 7;
}

/* The highest-priority input in `bits`, or -1. */
static int highest(const struct vpic_chip *c, uint8_t bits)
{
	for (unsigned r = 0; r < 8; r++) {
		unsigned ir = (c->lowest + 1 + r) & 7;

		if (bits & (1u << ir))
			return ir;
	}
	return -1;
}

/* The input this chip would interrupt for now, or -1: the highest unmasked request whose priority
 * beats every in-service level that still blocks (special mask mode: masked levels do not block;
 * SFNM on the master: the slave's own level does not block further slave requests). */
static int chip_pending(const struct vpic *p, const struct vpic_chip *c)
{
	int req = highest(c, c->irr & ~c->imr);
	uint8_t blocking = c->isr;
	int cur;

	if (req < 0)
		return -1;
	if (c->special_mask)
		blocking &= ~c->imr;
	if (is_master(p, c) && (c->icw4 & ICW4_SFNM))
		blocking &= ~(1u << VPIC_CASCADE);
	cur = highest(c, blocking);
	if (cur >= 0 && rank(c, cur) <= rank(c, req))
		return -1;
	return req;
}

/* Drives input `ir` of one chip to `level` (no cascade or INTR update). */
static void chip_set_input(struct vpic_chip *c, unsigned ir, bool level)
{
	uint8_t bit = 1u << ir;

	if (level_bits(c) & bit) {
		if (level)
			c->irr |= bit;
		else
			c->irr &= ~bit;
	} else if (level && !(c->line & bit)) {
		c->irr |= bit;                       /* rising edge */
	}
	if (level)
		c->line |= bit;
	else
		c->line &= ~bit;
}

/* After any change: the slave's INT to the master's IR2, then the master's INT to the caller. */
static void update(struct vpic *p)
{
	bool intr;

	chip_set_input(&p->chip[0], VPIC_CASCADE, chip_pending(p, &p->chip[1]) >= 0);
	intr = chip_pending(p, &p->chip[0]) >= 0;
	if (intr != p->intr) {
		p->intr = intr;
		if (p->intr_changed)
			p->intr_changed(p->ctx);
	}
}

/* Acknowledges input `ir` (the INTA's first pulse): IRR edge cleared, ISR set or auto-EOI. */
static void chip_ack(struct vpic_chip *c, unsigned ir)
{
	uint8_t bit = 1u << ir;

	if (!(level_bits(c) & bit))
		c->irr &= ~bit;
	if (!(c->icw4 & ICW4_AEOI))
		c->isr |= bit;
	else if (c->rotate_aeoi)
		c->lowest = ir;
}

static void chip_reset(struct vpic_chip *c, uint8_t icw1)
{
	c->icw1 = icw1;
	c->imr = 0;
	c->isr = 0;
	c->irr = c->line & level_bits(c);    /* edge latches reset: a high edge input needs a new edge */
	c->lowest = 7;
	c->read_isr = false;
	c->poll = false;
	c->special_mask = false;
	c->rotate_aeoi = false;
	c->icw4 = 0;
	c->init_step = 2;
}

void vpic_init(struct vpic *p, void (*intr_changed)(void *ctx), void *ctx)
{
	static const uint8_t bases[2] = { 0x08, 0x70 }, icw3[2] = { 1u << VPIC_CASCADE, VPIC_CASCADE };

	memset(p, 0, sizeof(*p));
	p->intr_changed = intr_changed;
	p->ctx = ctx;
	p->chip[0].elcr_mask = 0xf8;             /* IRQ 0, 1, 2 always edge */
	p->chip[1].elcr_mask = 0xde;             /* IRQ 8, 13 always edge */
	for (unsigned i = 0; i < 2; i++) {
		struct vpic_chip *c = &p->chip[i];

		chip_reset(c, ICW1_INIT | ICW1_IC4);
		c->base = bases[i];
		c->icw3 = icw3[i];
		c->icw4 = ICW4_UPM;
		c->init_step = 0;
		c->imr = 0xff;
	}
}

/* The poll command's read: bit 7 = a request, bits 2:0 its level; acknowledges it like an INTA
 * (datasheet, "The Poll Command"). Through the master, a slave request reads as IR2; the slave must
 * be polled too, as the datasheet's cascade note says. */
static uint8_t chip_poll(struct vpic *p, struct vpic_chip *c)
{
	int ir = chip_pending(p, c);

	c->poll = false;
	if (ir < 0)
		return 0;
	chip_ack(c, ir);
	return 0x80 | ir;
}

static void chip_eoi(struct vpic_chip *c, uint8_t ocw2)
{
	unsigned level = ocw2 & 7;
	int ir;

	switch (ocw2 >> 5) {
	case OCW2_EOI:
	case OCW2_ROTATE_EOI:
		ir = highest(c, c->isr);
		if (ir < 0)
			return;
		c->isr &= ~(1u << ir);
		if (ocw2 >> 5 == OCW2_ROTATE_EOI)
			c->lowest = ir;
		break;
	case OCW2_SPECIFIC_EOI:
	case OCW2_ROTATE_SPECIFIC_EOI:
		c->isr &= ~(1u << level);
		if (ocw2 >> 5 == OCW2_ROTATE_SPECIFIC_EOI)
			c->lowest = level;
		break;
	case OCW2_SET_PRIORITY:
		c->lowest = level;
		break;
	case OCW2_ROTATE_AEOI_SET:
		c->rotate_aeoi = true;
		break;
	case OCW2_ROTATE_AEOI_CLEAR:
		c->rotate_aeoi = false;
		break;
	default:                                 /* OCW2_NOP */
		break;
	}
}

static void chip_write(struct vpic_chip *c, unsigned a0, uint8_t v)
{
	if (!a0) {
		if (v & ICW1_INIT) {
			chip_reset(c, v);
		} else if (v & OCW3_SEL) {
			if (v & OCW3_ESMM)
				c->special_mask = v & OCW3_SMM;
			if (v & OCW3_RR)
				c->read_isr = v & OCW3_RIS;
			c->poll = v & OCW3_POLL;
		} else {
			chip_eoi(c, v);
		}
		return;
	}
	switch (c->init_step) {
	case 2:
		c->base = v & 0xf8;
		c->init_step = (c->icw1 & ICW1_SNGL) ? 4 : 3;
		if (c->init_step == 4 && !(c->icw1 & ICW1_IC4))
			c->init_step = 0;
		break;
	case 3:
		c->icw3 = v;
		c->init_step = (c->icw1 & ICW1_IC4) ? 4 : 0;
		break;
	case 4:
		c->icw4 = v;
		c->init_step = 0;
		break;
	default:
		c->imr = v;                          /* OCW1 */
		break;
	}
}

static uint8_t chip_read(struct vpic *p, struct vpic_chip *c, unsigned a0)
{
	if (c->poll)
		return chip_poll(p, c);
	if (a0)
		return c->imr;
	return c->read_isr ? c->isr : c->irr;
}

/* One byte at `port` (0x20, 0x21, 0xA0, 0xA1, 0x4D0, 0x4D1). */
static uint8_t port_byte(struct vpic *p, uint16_t port, bool write, uint8_t v)
{
	if (port == VPIC_ELCR || port == VPIC_ELCR + 1) {
		struct vpic_chip *c = &p->chip[port - VPIC_ELCR];

		if (!write)
			return c->elcr;
		c->elcr = v & c->elcr_mask;
		/* Inputs that became level: IRR follows the line from now on. */
		c->irr = (c->irr & ~level_bits(c)) | (c->line & level_bits(c));
		return 0;
	}
	struct vpic_chip *c = &p->chip[port >= VPIC_SLAVE];

	if (!write)
		return chip_read(p, c, port & 1);
	chip_write(c, port & 1, v);
	return 0;
}

enum vdev_result vpic_access(void *dev, struct vdev_access *a)
{
	struct vpic *p = dev;
	uint64_t r = 0;

	/* A word access is two byte cycles on the ISA bus: this port, then the next. */
	for (unsigned i = 0; i < a->size; i++) {
		uint16_t port = a->addr + i;
		bool ours = port == VPIC_MASTER || port == VPIC_MASTER + 1 || port == VPIC_SLAVE ||
			    port == VPIC_SLAVE + 1 || port == VPIC_ELCR || port == VPIC_ELCR + 1;
		uint8_t b = ours ? port_byte(p, port, a->write, a->value >> (8 * i)) : 0xff;

		r |= (uint64_t)b << (8 * i);
	}
	if (!a->write)
		a->value = r;
	update(p);
	return VDEV_DONE;
}

int vpic_register(struct vpic *p, struct vdev_bus *bus)
{
	int err;

	if ((err = vdev_add_pio(bus, VPIC_MASTER, 2, vpic_access, p, "pic")) ||
	    (err = vdev_add_pio(bus, VPIC_SLAVE, 2, vpic_access, p, "pic")))
		return err;
	return vdev_add_pio(bus, VPIC_ELCR, 2, vpic_access, p, "elcr");
}

void vpic_set_irq(struct vpic *p, unsigned irq, bool level)
{
	if (irq >= 16 || irq == VPIC_CASCADE)
		return;                              /* IR2 is the slave's INT, not a bus line */
	chip_set_input(&p->chip[irq >> 3], irq & 7, level);
	update(p);
}

bool vpic_has_intr(struct vpic *p)
{
	return chip_pending(p, &p->chip[0]) >= 0;
}

int vpic_ack(struct vpic *p)
{
	struct vpic_chip *m = &p->chip[0], *s = &p->chip[1];
	int ir = chip_pending(p, m), vector;

	if (ir < 0) {
		vector = m->base + 7;                /* spurious IRQ 7: ISR untouched */
	} else if (ir != VPIC_CASCADE) {
		chip_ack(m, ir);
		vector = m->base + ir;
	} else {
		int sir = chip_pending(p, s);

		chip_ack(m, ir);                     /* the master's half of the cycle happens anyway */
		m->line &= ~(1u << VPIC_CASCADE);    /* the slave's INT drops during the INTA cycle: a
						      * request still pending after it is a new edge */
		if (sir < 0) {
			vector = s->base + 7;        /* spurious IRQ 15: only the master's ISR bit 2 */
		} else {
			chip_ack(s, sir);
			vector = s->base + sir;
		}
	}
	update(p);
	return vector;
}
