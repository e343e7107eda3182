/* Host unit tests of vdev/ioapic.c and vdev/irqchip.c: an I/O APIC sending to a group of four real
 * local APICs (vdev/lapic.c), driven through MMIO access records, and the router in front of it. */
#include <stdint.h>
#include <string.h>
#include "vdev/ioapic.h"
#include "vdev/irqchip.h"
#include "vdev/lapic.h"
#include "tests/unit/unit.h"

#define N 4

static uint32_t pages[N][1024] __attribute__((aligned(4096)));
static struct vlapic L[N];
static struct vlapic_group G;
static struct vioapic IO;

/* The platform's EOI hook: a level-triggered EOI reaches the I/O APIC. */
static void eoi_cb(struct vlapic *l, uint8_t vector)
{
	(void)l;
	vioapic_eoi(&IO, vector);
}

static void mw(struct vlapic *l, uint32_t off, uint32_t v)
{
	CHECK_EQ(vlapic_mmio_write(l, off, 4, v, 0), 0);
}

static void setup(void)
{
	memset(pages, 0, sizeof(pages));
	memset(&G, 0, sizeof(G));
	for (unsigned i = 0; i < N; i++) {
		vlapic_init(&L[i], &G, i, pages[i]);
		G.member[i] = &L[i];
		mw(&L[i], VLAPIC_SVR, 0x1ff);              /* software enable */
	}
	G.count = N;
	G.eoi_level = eoi_cb;
	vioapic_init(&IO, &G);
}

/* One MMIO access record at offset `off` of the I/O APIC page. */
static enum vdev_result acc(uint32_t off, unsigned size, bool write, uint64_t *val)
{
	struct vdev_access a = { VIOAPIC_BASE + off, size, write, write ? *val : 0xdeadbeef, 0 };
	enum vdev_result r = vioapic_access(&IO, &a);

	if (!write)
		*val = a.value;
	return r;
}

static uint32_t ind_read(uint32_t reg)
{
	uint64_t v = reg;

	CHECK_EQ(acc(VIOAPIC_IOREGSEL, 4, true, &v), VDEV_DONE);
	CHECK_EQ(acc(VIOAPIC_IOWIN, 4, false, &v), VDEV_DONE);
	return (uint32_t)v;
}

static void ind_write(uint32_t reg, uint32_t val)
{
	uint64_t v = reg;

	CHECK_EQ(acc(VIOAPIC_IOREGSEL, 4, true, &v), VDEV_DONE);
	v = val;
	CHECK_EQ(acc(VIOAPIC_IOWIN, 4, true, &v), VDEV_DONE);
}

/* Programs pin `pin`'s entry, high half first (as Linux does, so the low half unmasks last). */
static void rte(unsigned pin, uint64_t e)
{
	ind_write(VIOAPIC_REG_REDTBL + 2 * pin + 1, (uint32_t)(e >> 32));
	ind_write(VIOAPIC_REG_REDTBL + 2 * pin, (uint32_t)e);
}

static uint64_t rte_read(unsigned pin)
{
	return ind_read(VIOAPIC_REG_REDTBL + 2 * pin) |
	       (uint64_t)ind_read(VIOAPIC_REG_REDTBL + 2 * pin + 1) << 32;
}

static bool bit(struct vlapic *l, uint32_t reg, unsigned v)
{
	return (l->regs[(reg + 0x10 * (v / 32)) / 4] >> (v % 32)) & 1;
}

/* Which APICs (bit i = L[i]) have IRR bit `v`. */
static unsigned got_irr(unsigned v)
{
	unsigned m = 0;

	for (unsigned i = 0; i < N; i++)
		m |= (unsigned)bit(&L[i], VLAPIC_IRR, v) << i;
	return m;
}

static void clear_irr(void)
{
	for (unsigned i = 0; i < N; i++)
		for (unsigned w = 0; w < 8; w++)
			L[i].regs[(VLAPIC_IRR + 0x10 * w) / 4] = 0;
}

/* The vCPU takes `v` and writes EOI, as a guest's handler would. */
static void take_and_eoi(struct vlapic *l, unsigned v)
{
	CHECK_EQ(vlapic_pending_vector(l), v);
	vlapic_accept(l, (int)v);
	mw(l, VLAPIC_EOI, 0);
}

#define DEST(id)     ((uint64_t)(id) << VIOAPIC_RTE_DEST_SHIFT)
#define DM(m)        ((uint64_t)(m) << VIOAPIC_RTE_DM_SHIFT)

static void test_registers(void)
{
	uint64_t v;

	setup();
	CHECK_EQ(ind_read(VIOAPIC_REG_VER), 0x00170011);
	CHECK_EQ(ind_read(VIOAPIC_REG_ID), 0);
	ind_write(VIOAPIC_REG_ID, 0xffffffff);
	CHECK_EQ(ind_read(VIOAPIC_REG_ID), 0x0f000000);
	CHECK_EQ(ind_read(VIOAPIC_REG_ARB), 0x0f000000);
	ind_write(VIOAPIC_REG_VER, 0);                      /* read-only */
	CHECK_EQ(ind_read(VIOAPIC_REG_VER), 0x00170011);
	ind_write(VIOAPIC_REG_ARB, 0);
	CHECK_EQ(ind_read(VIOAPIC_REG_ARB), 0x0f000000);
	/* IOREGSEL keeps 8 bits and reads back. */
	v = 0x12345611;
	CHECK_EQ(acc(VIOAPIC_IOREGSEL, 4, true, &v), VDEV_DONE);
	CHECK_EQ(acc(VIOAPIC_IOREGSEL, 4, false, &v), VDEV_DONE);
	CHECK_EQ(v, 0x11);
	/* Reset: every entry masked, nothing else. */
	for (unsigned p = 0; p < VIOAPIC_PINS; p++)
		CHECK_EQ(rte_read(p), VIOAPIC_RTE_MASKED);
	/* Writable bits stick; reserved bits, delivery status and remote IRR do not. */
	rte(5, 0xffffffffffffffffull);
	CHECK_EQ(rte_read(5), 0xff0000000001afffull);
	rte(5, 0);
	CHECK_EQ(rte_read(5), 0);
	/* Halves are independent. */
	ind_write(VIOAPIC_REG_REDTBL + 2 * 7 + 1, 0x03000000);
	CHECK_EQ(rte_read(7), 0x0300000000010000ull);
	/* Registers past the table, and unused indexes, read 0 and ignore writes. */
	ind_write(0x40, 0x1234);
	CHECK_EQ(ind_read(0x40), 0);
	CHECK_EQ(ind_read(0x03), 0);
	CHECK_EQ(ind_read(0xff), 0);
	/* Other offsets of the page read 0, any size; odd accesses to the two registers are refused. */
	v = 1;
	CHECK_EQ(acc(0x40, 4, true, &v), VDEV_DONE);
	CHECK_EQ(acc(0x40, 4, false, &v), VDEV_DONE);
	CHECK_EQ(v, 0);
	CHECK_EQ(acc(0x20, 1, false, &v), VDEV_DONE);
	CHECK_EQ(acc(0xffc, 4, false, &v), VDEV_DONE);
	CHECK_EQ(v, 0);
	CHECK_EQ(acc(VIOAPIC_IOREGSEL, 1, true, &v), VDEV_BAD_ACCESS);
	CHECK_EQ(acc(VIOAPIC_IOWIN, 2, false, &v), VDEV_BAD_ACCESS);
	CHECK_EQ(acc(VIOAPIC_IOREGSEL, 8, false, &v), VDEV_BAD_ACCESS);
	CHECK_EQ(acc(VIOAPIC_IOWIN + 1, 1, false, &v), VDEV_BAD_ACCESS);
	CHECK_EQ(acc(0x0e, 4, false, &v), VDEV_BAD_ACCESS);  /* straddles IOWIN */
	/* Registration claims the page at 0xFEC00000. */
	{
		static struct vdev_bus bus;
		struct vdev_access a = { VIOAPIC_BASE + VIOAPIC_IOWIN, 2, false, 0, 0 };

		memset(&bus, 0, sizeof(bus));
		CHECK_EQ(vioapic_register(&IO, &bus), 0);
		CHECK_EQ(bus.nmmio, 1);
		CHECK_EQ(bus.mmio[0].base, 0xfec00000);
		CHECK_EQ(bus.mmio[0].len, 0x1000);
		CHECK_EQ(bus.mmio[0].handler(bus.mmio[0].dev, &a), VDEV_BAD_ACCESS);
		CHECK(strstr(bus.why, "I/O APIC read of 2 bytes at offset 0x10") != NULL);
	}
}

static void test_edge(void)
{
	setup();
	rte(4, DEST(1) | 0x31);                              /* fixed, physical, edge, active high */
	CHECK_EQ(got_irr(0x31), 0);
	vioapic_set_irq(&IO, 4, true);
	CHECK_EQ(got_irr(0x31), 1u << 1);
	CHECK(!bit(&L[1], VLAPIC_TMR, 0x31));
	CHECK_EQ(IO.messages, 1);
	CHECK_EQ(rte_read(4) & VIOAPIC_RTE_RIRR, 0);         /* no remote IRR for edge */
	vioapic_set_irq(&IO, 4, true);                       /* no new edge */
	CHECK_EQ(IO.messages, 1);
	take_and_eoi(&L[1], 0x31);
	vioapic_set_irq(&IO, 4, false);
	CHECK_EQ(IO.messages, 1);
	CHECK_EQ(got_irr(0x31), 0);
	vioapic_set_irq(&IO, 4, true);                       /* the next rising edge */
	CHECK_EQ(IO.messages, 2);
	CHECK_EQ(got_irr(0x31), 1u << 1);
	/* Pins out of range are ignored. */
	vioapic_set_irq(&IO, 24, true);
	vioapic_set_irq(&IO, 1000, true);
	CHECK_EQ(IO.messages, 2);
}

static void test_masked(void)
{
	setup();
	rte(3, DEST(0) | VIOAPIC_RTE_MASKED | 0x33);
	vioapic_set_irq(&IO, 3, true);
	CHECK_EQ(IO.messages, 0);
	CHECK_EQ(got_irr(0x33), 0);
	rte(3, DEST(0) | 0x33);                              /* unmasking does not replay a lost edge */
	CHECK_EQ(IO.messages, 0);
	vioapic_set_irq(&IO, 3, false);
	vioapic_set_irq(&IO, 3, true);
	CHECK_EQ(got_irr(0x33), 1u << 0);
	/* A masked level pin sends nothing while masked, and at once when unmasked while asserted. */
	rte(9, DEST(2) | VIOAPIC_RTE_LEVEL | VIOAPIC_RTE_MASKED | 0x59);
	vioapic_set_irq(&IO, 9, true);
	CHECK_EQ(got_irr(0x59), 0);
	CHECK_EQ(rte_read(9) & VIOAPIC_RTE_RIRR, 0);
	rte(9, DEST(2) | VIOAPIC_RTE_LEVEL | 0x59);
	CHECK_EQ(got_irr(0x59), 1u << 2);
	CHECK(rte_read(9) & VIOAPIC_RTE_RIRR);
	/* Masking leaves remote IRR alone; the EOI still clears it, and masked means no re-send. */
	rte(9, DEST(2) | VIOAPIC_RTE_LEVEL | VIOAPIC_RTE_MASKED | 0x59);
	CHECK(rte_read(9) & VIOAPIC_RTE_RIRR);
	take_and_eoi(&L[2], 0x59);
	CHECK_EQ(rte_read(9) & VIOAPIC_RTE_RIRR, 0);
	CHECK_EQ(got_irr(0x59), 0);
	CHECK_EQ(IO.messages, 2);
}

static void test_level(void)
{
	setup();
	rte(9, DEST(0) | VIOAPIC_RTE_LEVEL | 0x59);
	vioapic_set_irq(&IO, 9, true);
	CHECK_EQ(got_irr(0x59), 1u << 0);
	CHECK(bit(&L[0], VLAPIC_TMR, 0x59));                 /* level: TMR set, so EOI reports it */
	CHECK(rte_read(9) & VIOAPIC_RTE_RIRR);
	CHECK_EQ(IO.messages, 1);
	/* While remote IRR is set, nothing more is sent, whatever the line does. */
	vioapic_set_irq(&IO, 9, false);
	vioapic_set_irq(&IO, 9, true);
	CHECK_EQ(IO.messages, 1);
	/* EOI with the line still asserted: remote IRR cleared and the message sent again. */
	take_and_eoi(&L[0], 0x59);
	CHECK_EQ(L[0].last_level_eoi, 0x59);
	CHECK_EQ(IO.messages, 2);
	CHECK_EQ(got_irr(0x59), 1u << 0);
	CHECK(rte_read(9) & VIOAPIC_RTE_RIRR);
	/* The device lowers its line, then the EOI: remote IRR clear, silence. */
	vioapic_set_irq(&IO, 9, false);
	take_and_eoi(&L[0], 0x59);
	CHECK_EQ(IO.messages, 2);
	CHECK_EQ(got_irr(0x59), 0);
	CHECK_EQ(rte_read(9) & VIOAPIC_RTE_RIRR, 0);
	/* An EOI of another vector does not touch this pin. */
	vioapic_set_irq(&IO, 9, true);
	CHECK_EQ(IO.messages, 3);
	vioapic_eoi(&IO, 0x58);
	CHECK(rte_read(9) & VIOAPIC_RTE_RIRR);
	CHECK_EQ(IO.messages, 3);
	/* Two pins sharing a vector: one EOI clears both, the asserted ones re-send. */
	rte(10, DEST(0) | VIOAPIC_RTE_LEVEL | 0x59);
	vioapic_set_irq(&IO, 10, true);                      /* pin 10 sends too (its own remote IRR) */
	CHECK_EQ(IO.messages, 4);
	vioapic_set_irq(&IO, 9, false);
	vioapic_eoi(&IO, 0x59);
	CHECK_EQ(IO.messages, 5);                            /* only pin 10 is still asserted */
	CHECK_EQ(rte_read(9) & VIOAPIC_RTE_RIRR, 0);
	CHECK(rte_read(10) & VIOAPIC_RTE_RIRR);
	/* Writing the entry as edge clears a stuck remote IRR (Linux's recovery on version 0x11). */
	rte(10, DEST(0) | 0x59);
	CHECK_EQ(rte_read(10) & VIOAPIC_RTE_RIRR, 0);
	/* Writing it back as level with the line asserted sends again. */
	rte(10, DEST(0) | VIOAPIC_RTE_LEVEL | 0x59);
	CHECK_EQ(IO.messages, 6);
	CHECK(rte_read(10) & VIOAPIC_RTE_RIRR);
	/* Level NMI: edge-only mode, no remote IRR. */
	rte(11, DEST(1) | VIOAPIC_RTE_LEVEL | DM(4));
	vioapic_set_irq(&IO, 11, true);
	CHECK_EQ(L[1].nmi_pending, 1);
	CHECK_EQ(rte_read(11) & VIOAPIC_RTE_RIRR, 0);
}

static void test_polarity(void)
{
	setup();
	/* Active-low edge: the falling edge of the line asserts. */
	rte(6, DEST(3) | VIOAPIC_RTE_LOW | 0x46);
	CHECK_EQ(IO.messages, 0);                            /* the entry write is no edge */
	vioapic_set_irq(&IO, 6, true);                       /* deasserted */
	CHECK_EQ(IO.messages, 0);
	vioapic_set_irq(&IO, 6, false);                      /* asserted */
	CHECK_EQ(IO.messages, 1);
	CHECK_EQ(got_irr(0x46), 1u << 3);
	vioapic_set_irq(&IO, 6, true);
	CHECK_EQ(IO.messages, 1);
	/* Active-low level: an idle low line is asserted, so the unmasked entry sends at once. */
	rte(12, DEST(2) | VIOAPIC_RTE_LOW | VIOAPIC_RTE_LEVEL | 0x4c);
	CHECK_EQ(IO.messages, 2);
	CHECK_EQ(got_irr(0x4c), 1u << 2);
	vioapic_set_irq(&IO, 12, true);                      /* deasserted: the EOI brings nothing */
	take_and_eoi(&L[2], 0x4c);
	CHECK_EQ(IO.messages, 2);
	vioapic_set_irq(&IO, 12, false);                     /* asserted again */
	CHECK_EQ(IO.messages, 3);
	/* Active high on a high line, switched to active low: deasserted, nothing sent after the EOI. */
	rte(13, DEST(1) | VIOAPIC_RTE_LEVEL | VIOAPIC_RTE_MASKED | 0x4d);
	vioapic_set_irq(&IO, 13, true);
	rte(13, DEST(1) | VIOAPIC_RTE_LEVEL | VIOAPIC_RTE_LOW | 0x4d);
	CHECK_EQ(got_irr(0x4d), 0);
}

static void test_destinations(void)
{
	setup();
	/* Physical: one APIC by ID; 0xFF: all of them. */
	rte(1, DEST(2) | 0x41);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x41), 1u << 2);
	rte(1, DEST(0xff) | 0x42);
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x42), 0xf);
	rte(1, DEST(7) | 0x43);                              /* no such APIC */
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x43), 0);

	/* Logical flat: LDR bit i for APIC i, destination 0x06 = APICs 1 and 2. */
	for (unsigned i = 0; i < N; i++)
		mw(&L[i], VLAPIC_LDR, (1u << i) << 24);
	rte(1, DEST(0x06) | VIOAPIC_RTE_LOGICAL | 0x51);
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x51), 0x6);

	/* Lowest priority among APICs 0-3: the lowest PPR wins (TPR raised on the others). */
	clear_irr();
	mw(&L[0], VLAPIC_TPR, 0x30);
	mw(&L[1], VLAPIC_TPR, 0x20);
	mw(&L[2], VLAPIC_TPR, 0x10);
	mw(&L[3], VLAPIC_TPR, 0x40);
	rte(1, DEST(0x0f) | VIOAPIC_RTE_LOGICAL | DM(1) | 0x52);
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x52), 1u << 2);
	/* ... among the addressed ones only (APICs 0 and 1 here). */
	rte(1, DEST(0x03) | VIOAPIC_RTE_LOGICAL | DM(1) | 0x53);
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x53), 1u << 1);

	/* Logical cluster: DFR 0000b, LDR cluster 1 for APICs 2-3, cluster 0 for 0-1. */
	for (unsigned i = 0; i < N; i++) {
		mw(&L[i], VLAPIC_DFR, 0x0fffffff);
		mw(&L[i], VLAPIC_LDR, (((i / 2) << 4) | (1u << (i % 2))) << 24);
	}
	rte(1, DEST(0x12) | VIOAPIC_RTE_LOGICAL | 0x54);     /* cluster 1, member bit 1: APIC 3 */
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x54), 1u << 3);
	rte(1, DEST(0xf1) | VIOAPIC_RTE_LOGICAL | 0x55);     /* every cluster, member bit 0: APICs 0, 2 */
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x55), 0x5);

	/* x2APIC targets: physical by their 32-bit ID, logical cluster 0 with bit = ID. */
	CHECK_EQ(vlapic_msr_write(&L[1], VLAPIC_MSR_APIC_BASE, L[1].base | VLAPIC_BASE_EXTD, 0), 0);
	rte(1, DEST(1) | 0x56);
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x56), 1u << 1);
	rte(1, DEST(0x02) | VIOAPIC_RTE_LOGICAL | 0x57);     /* x2APIC LDR of ID 1: cluster 0, bit 1 */
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK(got_irr(0x57) & (1u << 1));

	/* A software-disabled APIC takes no fixed message. */
	mw(&L[2], VLAPIC_SVR, 0xff);
	rte(1, DEST(2) | 0x58);
	vioapic_set_irq(&IO, 1, false);
	vioapic_set_irq(&IO, 1, true);
	CHECK_EQ(got_irr(0x58), 0);
}

static void test_modes(void)
{
	setup();
	rte(2, DEST(1) | DM(4));                             /* NMI */
	vioapic_set_irq(&IO, 2, true);
	CHECK_EQ(L[1].nmi_pending, 1);
	CHECK_EQ(L[0].nmi_pending, 0);
	rte(2, DEST(3) | DM(5));                             /* INIT */
	vioapic_set_irq(&IO, 2, false);
	vioapic_set_irq(&IO, 2, true);
	CHECK(L[3].init_pending);
	CHECK(!L[0].init_pending);
	rte(2, DEST(0xff) | DM(7) | 0x60);                   /* ExtINT: dropped (the PIC uses LINT0) */
	vioapic_set_irq(&IO, 2, false);
	vioapic_set_irq(&IO, 2, true);
	CHECK_EQ(got_irr(0x60), 0);
	rte(2, DEST(0xff) | DM(2) | 0x61);                   /* SMI: dropped */
	vioapic_set_irq(&IO, 2, false);
	vioapic_set_irq(&IO, 2, true);
	CHECK_EQ(got_irr(0x61), 0);
	CHECK_EQ(L[0].sipi_vector, -1);
	rte(2, DEST(0xff) | DM(6) | 0x62);                   /* reserved (Start-up): dropped */
	vioapic_set_irq(&IO, 2, false);
	vioapic_set_irq(&IO, 2, true);
	CHECK_EQ(L[0].sipi_vector, -1);
	CHECK_EQ(got_irr(0x62), 0);
	/* An illegal vector: the receiver's ESR says so. */
	rte(2, DEST(0) | 0x05);
	vioapic_set_irq(&IO, 2, false);
	vioapic_set_irq(&IO, 2, true);
	mw(&L[0], VLAPIC_ESR, 0);
	CHECK(L[0].regs[VLAPIC_ESR / 4] & VLAPIC_ESR_RECV_VECTOR);
}

/* The router: a recording PIC and the real I/O APIC. */
static unsigned pic_calls, pic_irq;
static bool pic_level;

static void pic_set(void *pic, unsigned irq, bool level)
{
	CHECK(pic == &pic_calls);
	pic_calls++;
	pic_irq = irq;
	pic_level = level;
}

static void test_router(void)
{
	struct virqchip c;
	struct irq_line pit, rtc, pci, cascade;

	setup();
	virqchip_init(&c, &IO, pic_set, &pic_calls);
	pit = virqchip_line(&c, 0);
	rtc = virqchip_line(&c, 8);
	pci = virqchip_line(&c, 17);
	cascade = virqchip_line(&c, 2);
	CHECK_EQ(virqchip_ioapic_pin(0), 2);
	CHECK_EQ(virqchip_ioapic_pin(2), -1);
	CHECK_EQ(virqchip_ioapic_pin(4), 4);
	CHECK_EQ(virqchip_ioapic_pin(23), 23);
	CHECK_EQ(virqchip_ioapic_pin(24), -1);
	rte(0, DEST(0) | 0x70);
	rte(2, DEST(0) | 0x72);
	rte(8, DEST(1) | 0x78);
	rte(17, DEST(1) | VIOAPIC_RTE_LEVEL | VIOAPIC_RTE_LOW | VIOAPIC_RTE_MASKED | 0x81);

	/* The PIT's IRQ 0: PIC input 0 and I/O APIC pin 2 (the override), never pin 0. */
	irq_pulse(&pit);
	CHECK_EQ(pic_calls, 2);
	CHECK_EQ(pic_irq, 0);
	CHECK(!pic_level);
	CHECK_EQ(got_irr(0x72), 1u << 0);
	CHECK_EQ(got_irr(0x70), 0);
	CHECK_EQ(IO.line, 0);
	/* A second raise of a raised line is no new edge, for either controller. */
	irq_raise(&rtc);
	CHECK_EQ(pic_calls, 3);
	CHECK_EQ(pic_irq, 8);
	CHECK(pic_level);
	CHECK_EQ(got_irr(0x78), 1u << 1);
	CHECK_EQ(IO.messages, 2);
	irq_raise(&rtc);
	CHECK_EQ(pic_calls, 3);
	CHECK_EQ(IO.messages, 2);
	irq_lower(&rtc);
	CHECK_EQ(pic_calls, 4);
	CHECK(!pic_level);
	/* IRQ 2 is the cascade: PIC input 2 only (the PIC ignores it), no I/O APIC pin. */
	irq_raise(&cascade);
	CHECK_EQ(pic_calls, 5);
	CHECK_EQ(pic_irq, 2);
	CHECK_EQ(IO.line, 0);
	CHECK_EQ(IO.messages, 2);
	/* Lines 16-23: the I/O APIC only. */
	irq_raise(&pci);
	CHECK_EQ(pic_calls, 5);
	CHECK_EQ(IO.line, 1u << 17);
	/* Out of range: nothing. */
	virqchip_set(&c, 24, true);
	virqchip_set(&c, 99, true);
	CHECK_EQ(pic_calls, 5);
	CHECK_EQ(IO.line, 1u << 17);
	/* Without a PIC or an I/O APIC (a platform with one of them only). */
	virqchip_init(&c, NULL, pic_set, &pic_calls);
	virqchip_set(&c, 4, true);
	CHECK_EQ(pic_calls, 6);
	virqchip_init(&c, &IO, NULL, NULL);
	rte(4, DEST(3) | 0x74);
	virqchip_set(&c, 4, true);
	CHECK_EQ(pic_calls, 6);
	CHECK_EQ(got_irr(0x74), 1u << 3);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_registers);
	RUN(test_edge);
	RUN(test_masked);
	RUN(test_level);
	RUN(test_polarity);
	RUN(test_destinations);
	RUN(test_modes);
	RUN(test_router);
	return unit_report(argv[0]);
}
