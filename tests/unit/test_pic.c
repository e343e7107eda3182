/* Host unit tests of vdev/pic.c: the 8259A pair driven through its ports on a device bus, as Linux
 * and a BIOS program it, with the router's vpic_set_irq and the VMX layer's vpic_has_intr/vpic_ack. */
#include <stdint.h>
#include <string.h>
#include "vdev/pic.h"
#include "vdev/vdev.h"
#include "tests/unit/fake_bus.h"
#include "tests/unit/unit.h"

static struct vpic pic;
static unsigned changes;

static void intr_cb(void *ctx)
{
	CHECK(ctx == &pic);
	changes++;
}

static uint8_t irr(uint16_t base)
{
	outb(base, 0x0a);                    /* OCW3: read IRR */
	return inb(base);
}

static uint8_t isr(uint16_t base)
{
	uint8_t v;

	outb(base, 0x0b);                    /* OCW3: read ISR */
	v = inb(base);
	outb(base, 0x0a);
	return v;
}

/* Linux's init_8259A(): mask all, ICW1 0x11, ICW2 0x20/0x28, ICW3 4/2, ICW4 1, then unmask all. */
static void linux_init(uint8_t icw4)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	outb(0x20, 0x11);
	outb(0x21, 0x20);
	outb(0x21, 0x04);
	outb(0x21, icw4);
	outb(0xa0, 0x11);
	outb(0xa1, 0x28);
	outb(0xa1, 0x02);
	outb(0xa1, icw4);
	outb(0x21, 0x00);
	outb(0xa1, 0x00);
}

static void setup(void)
{
	vdev_bus_init(&bus, "t", NULL);
	vpic_init(&pic, intr_cb, &pic);
	CHECK_EQ(vpic_register(&pic, &bus), 0);
	changes = 0;
}

static void test_reset_state(void)
{
	setup();
	CHECK_EQ(inb(0x21), 0xff);           /* as a BIOS leaves it: all masked */
	CHECK_EQ(inb(0xa1), 0xff);
	CHECK_EQ(inb(0x4d0), 0);
	CHECK_EQ(inb(0x4d1), 0);
	vpic_set_irq(&pic, 0, true);
	CHECK(!vpic_has_intr(&pic));
	CHECK_EQ(irr(0x20), 0x01);           /* the mask acts after IRR */
	outb(0x21, 0xfe);
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x08);      /* BIOS vector base */
	outb(0x20, 0x20);
	/* The slave at 0x70 */
	outb(0x21, 0xfb);
	outb(0xa1, 0xfe);
	vpic_set_irq(&pic, 8, true);
	CHECK_EQ(vpic_ack(&pic), 0x70);
}

static void test_linux_init(void)
{
	setup();
	vpic_set_irq(&pic, 4, true);         /* high across the initialization: no edge after it */
	linux_init(0x01);
	CHECK_EQ(inb(0x21), 0);
	CHECK_EQ(inb(0xa1), 0);
	CHECK_EQ(irr(0x20), 0);
	CHECK(!vpic_has_intr(&pic));
	vpic_set_irq(&pic, 4, false);
	vpic_set_irq(&pic, 4, true);
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x24);
	CHECK_EQ(isr(0x20), 0x10);
	outb(0x20, 0x20);
	CHECK_EQ(isr(0x20), 0);

	/* ICW1 without IC4, single: ICW2 only, then the data port is OCW1 again. */
	outb(0xa0, 0x12);
	outb(0xa1, 0x50);
	outb(0xa1, 0x3c);
	CHECK_EQ(inb(0xa1), 0x3c);
	/* ICW1 with IC4 but single: ICW2, ICW4, then OCW1. */
	outb(0xa0, 0x13);
	outb(0xa1, 0x30);
	outb(0xa1, 0x01);
	outb(0xa1, 0x77);
	CHECK_EQ(inb(0xa1), 0x77);
}

static void test_mask_and_callback(void)
{
	setup();
	linux_init(0x01);
	changes = 0;
	outb(0x21, 0x08);                    /* mask IRQ 3 */
	vpic_set_irq(&pic, 3, true);
	CHECK(!vpic_has_intr(&pic));
	CHECK_EQ(changes, 0);
	CHECK_EQ(irr(0x20), 0x08);
	outb(0x21, 0x00);
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(changes, 1);
	outb(0x21, 0x08);                    /* masked again before the INTA */
	CHECK(!vpic_has_intr(&pic));
	CHECK_EQ(changes, 2);
	outb(0x21, 0x00);
	CHECK_EQ(vpic_ack(&pic), 0x23);
	CHECK(!vpic_has_intr(&pic));
	CHECK_EQ(changes, 4);
	outb(0x20, 0x20);
	CHECK_EQ(changes, 4);
	/* Masking the slave's IR2 on the master hides every slave request. */
	outb(0x21, 0x04);
	vpic_set_irq(&pic, 9, true);
	CHECK(!vpic_has_intr(&pic));
	outb(0x21, 0x00);
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x29);
	/* Bad inputs are ignored. */
	vpic_set_irq(&pic, 16, true);
	vpic_set_irq(&pic, 2, true);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK(!vpic_has_intr(&pic));
}

static void test_priority_nesting(void)
{
	setup();
	linux_init(0x01);
	vpic_set_irq(&pic, 5, true);
	vpic_set_irq(&pic, 1, true);
	vpic_set_irq(&pic, 12, true);        /* slave: in IR2's place, between 1 and 5 */
	CHECK_EQ(vpic_ack(&pic), 0x21);
	CHECK(!vpic_has_intr(&pic));         /* everything else is lower than IRQ 1 in service */
	vpic_set_irq(&pic, 0, true);
	CHECK(vpic_has_intr(&pic));          /* IRQ 0 nests over IRQ 1 */
	CHECK_EQ(vpic_ack(&pic), 0x20);
	CHECK_EQ(isr(0x20), 0x03);
	outb(0x20, 0x20);                    /* non-specific EOI: the highest in service, IRQ 0 */
	CHECK_EQ(isr(0x20), 0x02);
	CHECK(!vpic_has_intr(&pic));
	outb(0x20, 0x20);
	CHECK_EQ(vpic_ack(&pic), 0x2c);      /* IRQ 12 before IRQ 5 */
	CHECK_EQ(isr(0x20), 0x04);
	CHECK_EQ(isr(0xa0), 0x10);
	CHECK(!vpic_has_intr(&pic));
	outb(0xa0, 0x20);
	CHECK(!vpic_has_intr(&pic));         /* the master still has IR2 in service */
	outb(0x20, 0x20);
	CHECK_EQ(vpic_ack(&pic), 0x25);
	outb(0x20, 0x20);
	CHECK(!vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x27);      /* nothing: spurious */
	CHECK_EQ(isr(0x20), 0);
	/* Slave priority inside the slave: IRQ 8 over IRQ 15. */
	vpic_set_irq(&pic, 15, true);
	vpic_set_irq(&pic, 8, true);
	CHECK_EQ(vpic_ack(&pic), 0x28);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK_EQ(vpic_ack(&pic), 0x2f);
	CHECK_EQ(isr(0xa0), 0x80);           /* a real IRQ 15: in service */
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK_EQ(isr(0xa0), 0);
}

static void test_specific_eoi(void)
{
	setup();
	linux_init(0x01);
	vpic_set_irq(&pic, 6, true);
	CHECK_EQ(vpic_ack(&pic), 0x26);
	vpic_set_irq(&pic, 3, true);
	CHECK_EQ(vpic_ack(&pic), 0x23);
	CHECK_EQ(isr(0x20), 0x48);
	outb(0x20, 0x66);                    /* specific EOI of IRQ 6, not the highest */
	CHECK_EQ(isr(0x20), 0x08);
	outb(0x20, 0x65);                    /* of one not in service: nothing */
	CHECK_EQ(isr(0x20), 0x08);
	outb(0x20, 0x63);
	CHECK_EQ(isr(0x20), 0);
	/* Linux's slave EOI: specific EOI 0x60 + (irq & 7) to the slave, 0x62 to the master. */
	vpic_set_irq(&pic, 11, true);
	CHECK_EQ(vpic_ack(&pic), 0x2b);
	outb(0xa0, 0x63);
	outb(0x20, 0x62);
	CHECK_EQ(isr(0x20), 0);
	CHECK_EQ(isr(0xa0), 0);
	outb(0x20, 0x40);                    /* OCW2 no-op */
	CHECK(!vpic_has_intr(&pic));
}

static void test_auto_eoi(void)
{
	setup();
	linux_init(0x03);                    /* ICW4: 8086 mode, auto-EOI */
	vpic_set_irq(&pic, 3, true);
	vpic_set_irq(&pic, 4, true);
	CHECK_EQ(vpic_ack(&pic), 0x23);
	CHECK_EQ(isr(0x20), 0);
	CHECK(vpic_has_intr(&pic));          /* nothing in service: IRQ 4 right away */
	CHECK_EQ(vpic_ack(&pic), 0x24);
	/* Cascade with auto-EOI on both chips: two slave requests come one after the other. */
	vpic_set_irq(&pic, 9, true);
	vpic_set_irq(&pic, 14, true);
	CHECK_EQ(vpic_ack(&pic), 0x29);
	CHECK_EQ(isr(0x20), 0);
	CHECK_EQ(isr(0xa0), 0);
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x2e);
	CHECK(!vpic_has_intr(&pic));
	/* Rotate in auto-EOI mode: the acknowledged level becomes the lowest. */
	outb(0x20, 0x80);
	vpic_set_irq(&pic, 3, false);
	vpic_set_irq(&pic, 4, false);
	vpic_set_irq(&pic, 3, true);
	vpic_set_irq(&pic, 4, true);
	CHECK_EQ(vpic_ack(&pic), 0x23);
	vpic_set_irq(&pic, 3, false);
	vpic_set_irq(&pic, 3, true);         /* IRQ 3 is now the lowest: 4 goes first */
	CHECK_EQ(vpic_ack(&pic), 0x24);
	CHECK_EQ(vpic_ack(&pic), 0x23);
	outb(0x20, 0x00);                    /* rotate in auto-EOI clear */
}

static void test_level_edge(void)
{
	setup();
	linux_init(0x01);
	outb(0x4d0, 0xff);
	outb(0x4d1, 0xff);
	CHECK_EQ(inb(0x4d0), 0xf8);          /* IRQ 0, 1, 2 are always edge */
	CHECK_EQ(inb(0x4d1), 0xde);          /* IRQ 8, 13 too */
	outb(0x4d0, 0x20);                   /* IRQ 5 level */
	outb(0x4d1, 0x04);                   /* IRQ 10 level */

	/* Level: IRR follows the line, masked or not; the INTA leaves it; after EOI it comes back. */
	outb(0x21, 0x20);
	vpic_set_irq(&pic, 5, true);
	CHECK_EQ(irr(0x20), 0x20);
	vpic_set_irq(&pic, 5, false);
	CHECK_EQ(irr(0x20), 0x00);
	vpic_set_irq(&pic, 5, true);
	outb(0x21, 0x00);
	CHECK_EQ(vpic_ack(&pic), 0x25);
	CHECK_EQ(irr(0x20), 0x20);
	CHECK(!vpic_has_intr(&pic));
	outb(0x20, 0x20);
	CHECK(vpic_has_intr(&pic));          /* still asserted: again */
	CHECK_EQ(vpic_ack(&pic), 0x25);
	vpic_set_irq(&pic, 5, false);        /* the handler quiets the device, then EOI */
	outb(0x20, 0x20);
	CHECK(!vpic_has_intr(&pic));

	/* Edge: a line held high interrupts once; it must fall and rise again. */
	vpic_set_irq(&pic, 6, true);
	CHECK_EQ(vpic_ack(&pic), 0x26);
	CHECK_EQ(irr(0x20), 0);
	outb(0x20, 0x20);
	CHECK(!vpic_has_intr(&pic));
	vpic_set_irq(&pic, 6, true);         /* still high: no edge */
	CHECK(!vpic_has_intr(&pic));
	vpic_set_irq(&pic, 6, false);
	vpic_set_irq(&pic, 6, true);
	CHECK_EQ(vpic_ack(&pic), 0x26);
	outb(0x20, 0x20);
	/* Edge: a pulse latched while masked is delivered on unmask. */
	outb(0x21, 0x40);
	vpic_set_irq(&pic, 6, false);
	vpic_set_irq(&pic, 6, true);
	vpic_set_irq(&pic, 6, false);
	CHECK(!vpic_has_intr(&pic));
	outb(0x21, 0x00);
	CHECK_EQ(vpic_ack(&pic), 0x26);
	outb(0x20, 0x20);

	/* Level on the slave. */
	vpic_set_irq(&pic, 10, true);
	CHECK_EQ(vpic_ack(&pic), 0x2a);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x2a);
	vpic_set_irq(&pic, 10, false);
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	CHECK(!vpic_has_intr(&pic));

	/* Switching an input to level while its line is high: IRR follows at once. */
	vpic_set_irq(&pic, 7, true);
	CHECK_EQ(vpic_ack(&pic), 0x27);
	outb(0x20, 0x20);
	outb(0x4d0, 0xa0);
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(irr(0x20), 0x80);
	vpic_set_irq(&pic, 7, false);
	CHECK_EQ(irr(0x20), 0);

	/* ICW1 LTIM: the whole chip level-triggered. */
	outb(0x4d0, 0);
	outb(0x20, 0x19);
	outb(0x21, 0x20);
	outb(0x21, 0x04);
	outb(0x21, 0x01);
	vpic_set_irq(&pic, 3, true);
	CHECK_EQ(vpic_ack(&pic), 0x23);
	outb(0x20, 0x20);
	CHECK(vpic_has_intr(&pic));
	vpic_set_irq(&pic, 3, false);
	CHECK(!vpic_has_intr(&pic));
}

static void test_spurious(void)
{
	setup();
	linux_init(0x01);
	outb(0x4d0, 0x20);
	outb(0x4d1, 0x04);
	CHECK_EQ(vpic_ack(&pic), 0x27);      /* INTA with nothing at all */
	CHECK_EQ(isr(0x20), 0);
	/* IRQ 7 spurious: the level request goes away between INTR and INTA. */
	vpic_set_irq(&pic, 5, true);
	CHECK(vpic_has_intr(&pic));
	vpic_set_irq(&pic, 5, false);
	CHECK(!vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x27);
	CHECK_EQ(isr(0x20), 0);
	CHECK_EQ(irr(0x20), 0);
	/* IRQ 15 spurious: the slave's request goes away after its INT latched the master's IR2. */
	vpic_set_irq(&pic, 10, true);
	CHECK_EQ(irr(0x20), 0x04);
	vpic_set_irq(&pic, 10, false);
	CHECK_EQ(irr(0x20), 0x04);           /* IR2 is an edge input: latched */
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x2f);
	CHECK_EQ(isr(0xa0), 0);              /* the slave set nothing */
	CHECK_EQ(isr(0x20), 0x04);           /* the master did: it needs its EOI */
	vpic_set_irq(&pic, 9, true);
	CHECK(!vpic_has_intr(&pic));         /* blocked behind the master's IR2 until then */
	outb(0x20, 0x20);
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x29);
	/* Masked on the slave after its INT rose: also spurious 15. */
	outb(0xa0, 0x20);
	outb(0x20, 0x20);
	vpic_set_irq(&pic, 11, true);
	outb(0xa1, 0x08);
	CHECK_EQ(vpic_ack(&pic), 0x2f);
	outb(0x20, 0x20);
	CHECK(!vpic_has_intr(&pic));
	outb(0xa1, 0x00);
	CHECK_EQ(vpic_ack(&pic), 0x2b);      /* unmasked: the latched edge is delivered */
}

static void test_poll_rotate_smm(void)
{
	setup();
	linux_init(0x01);
	/* Poll: bit 7 and the level, and the read acknowledges. */
	outb(0x20, 0x0c);
	CHECK_EQ(inb(0x20), 0x00);
	vpic_set_irq(&pic, 6, true);
	outb(0x20, 0x0c);
	CHECK_EQ(inb(0x21), 0x86);           /* either port */
	CHECK_EQ(isr(0x20), 0x40);
	CHECK(!vpic_has_intr(&pic));
	outb(0x20, 0x20);
	CHECK_EQ(inb(0x21), 0x00);           /* the next read is the mask again */

	/* Set priority: IR3 lowest, so IR4 highest: 5 wins over 1. */
	outb(0x20, 0xc3);
	vpic_set_irq(&pic, 1, true);
	vpic_set_irq(&pic, 5, true);
	CHECK_EQ(vpic_ack(&pic), 0x25);
	CHECK(!vpic_has_intr(&pic));         /* IRQ 1 is lower than 5 now */
	outb(0x20, 0xa0);                    /* rotate on non-specific EOI: IR5 becomes the lowest */
	CHECK_EQ(isr(0x20), 0);
	vpic_set_irq(&pic, 5, false);
	vpic_set_irq(&pic, 5, true);
	vpic_set_irq(&pic, 7, true);
	CHECK_EQ(vpic_ack(&pic), 0x27);      /* order now 6, 7, 0, 1, ..., 5 */
	outb(0x20, 0xe7);                    /* rotate on specific EOI 7: order 0, 1, ..., 7 */
	CHECK_EQ(vpic_ack(&pic), 0x21);
	outb(0x20, 0x20);
	CHECK_EQ(vpic_ack(&pic), 0x25);
	outb(0x20, 0x20);

	/* Special mask mode: a masked in-service level stops blocking lower ones. */
	vpic_set_irq(&pic, 3, true);
	CHECK_EQ(vpic_ack(&pic), 0x23);
	vpic_set_irq(&pic, 4, true);
	CHECK(!vpic_has_intr(&pic));
	outb(0x21, 0x08);
	outb(0x20, 0x68);                    /* OCW3: set special mask mode */
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x24);
	outb(0x20, 0x64);                    /* specific EOI 4 */
	outb(0x20, 0x48);                    /* reset special mask mode */
	outb(0x21, 0x00);
	vpic_set_irq(&pic, 4, false);
	vpic_set_irq(&pic, 4, true);
	CHECK(!vpic_has_intr(&pic));         /* IRQ 3 blocks again */
	outb(0x20, 0x63);
	CHECK_EQ(vpic_ack(&pic), 0x24);
}

static void test_sfnm_and_word_access(void)
{
	struct vdev_access a = { .addr = 0x20, .size = 2 };

	setup();
	linux_init(0x01);
	outb(0x20, 0x11);                    /* master in special fully nested mode */
	outb(0x21, 0x20);
	outb(0x21, 0x04);
	outb(0x21, 0x11);
	vpic_set_irq(&pic, 12, true);
	CHECK_EQ(vpic_ack(&pic), 0x2c);
	vpic_set_irq(&pic, 9, true);         /* higher on the slave: passes the master's IR2 */
	CHECK(vpic_has_intr(&pic));
	CHECK_EQ(vpic_ack(&pic), 0x29);
	CHECK_EQ(isr(0xa0), 0x12);

	/* A word read at 0x20 is IRR (or ISR) then IMR, two byte cycles. */
	outb(0x21, 0x5a);
	outb(0x20, 0x0b);
	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
	CHECK_EQ(a.value, 0x5a04);
	a = (struct vdev_access){ .addr = 0x4d0, .size = 2, .write = true, .value = 0x0420 };
	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
	CHECK_EQ(inb(0x4d0), 0x20);
	CHECK_EQ(inb(0x4d1), 0x04);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_reset_state);
	RUN(test_linux_init);
	RUN(test_mask_and_callback);
	RUN(test_priority_nesting);
	RUN(test_specific_eoi);
	RUN(test_auto_eoi);
	RUN(test_level_edge);
	RUN(test_spurious);
	RUN(test_poll_rotate_smm);
	RUN(test_sfnm_and_word_access);
	return unit_report(argv[0]);
}
