/* The host's I/O APICs: masking every pin, routing one GSI to a local APIC vector. Intel 82093AA I/O
 * APIC datasheet (section 3): registers are reached indirectly through IOREGSEL (offset 0x00, the
 * register index) and IOWIN (offset 0x10, its 32-bit value); the MADT gives each one's address and first
 * GSI (ACPI 6.5, 5.2.12.3). */
#include "arch/x86/acpi.h"
#include "arch/x86/ioapic.h"
#include "arch/x86/paging.h"
#include "arch/x86/spinlock.h"
#include "console/printk.h"
#include "lib/errno.h"

#define IOREGSEL     0x00
#define IOWIN        0x10
#define IOAPICVER    0x01        /* bits 23:16: maximum redirection entry (pins - 1) */
#define IOREDTBL(n)  (0x10 + 2 * (n)) /* redirection entry n: low dword; high dword at + 1 */

/*
 * A redirection table entry (82093AA datasheet, 3.2.4):
 *
 *   63     56 55      17  16   15   14   13   12   11  10   8 7      0
 *  +---------+----------+----+----+----+----+----+----+------+--------+
 *  |  dest   | reserved |mask|trig|rIRR|pol |busy|dstm| dlvm | vector |
 *  +---------+----------+----+----+----+----+----+----+------+--------+
 *
 * dest: APIC ID in physical destination mode; dlvm 000 fixed; dstm 0 physical; pol 1 active low;
 * trig 1 level; mask 1 masked (an edge that arrives masked is dropped, a level is seen on unmask).
 */
#define RTE_POLARITY_LOW (1u << 13)
#define RTE_LEVEL        (1u << 15)
#define RTE_MASKED       (1u << 16)

struct ioapic {
	volatile uint32_t *regs;
	uint32_t gsi_base;
	unsigned pins;
};

static struct ioapic ioapics[ACPI_MAX_IOAPICS];
static unsigned nioapics;
static spinlock_t lock = SPINLOCK_INIT;   /* IOREGSEL then IOWIN: one pair at a time */

static uint32_t reg_read(struct ioapic *a, unsigned reg)
{
	a->regs[IOREGSEL / 4] = reg;
	return a->regs[IOWIN / 4];
}

static void reg_write(struct ioapic *a, unsigned reg, uint32_t val)
{
	a->regs[IOREGSEL / 4] = reg;
	a->regs[IOWIN / 4] = val;
}

unsigned ioapic_init(void)
{
	for (unsigned i = 0; i < acpi.nioapics; i++) {
		const struct acpi_ioapic *m = &acpi.ioapics[i];
		struct ioapic *a = &ioapics[nioapics];

		if (!paging_set_uncached(m->addr)) {
			pr_warn("hv: ioapic: the I/O APIC at 0x%x is outside the host map, not used\n", m->addr);
			continue;
		}
		a->regs = (volatile uint32_t *)(uint64_t)m->addr;
		a->gsi_base = m->gsi_base;
		a->pins = ((reg_read(a, IOAPICVER) >> 16) & 0xff) + 1;
		for (unsigned pin = 0; pin < a->pins; pin++) {
			reg_write(a, IOREDTBL(pin), RTE_MASKED);
			reg_write(a, IOREDTBL(pin) + 1, 0);
		}
		pr_debug("hv: ioapic: id %u at 0x%x, GSI %u-%u, all pins masked\n", m->id, m->addr, a->gsi_base,
			 a->gsi_base + a->pins - 1);
		nioapics++;
	}
	return nioapics;
}

static struct ioapic *find(uint32_t gsi, unsigned *index)
{
	for (unsigned i = 0; i < nioapics; i++)
		if (gsi >= ioapics[i].gsi_base && gsi - ioapics[i].gsi_base < ioapics[i].pins) {
			if (index)
				*index = i;
			return &ioapics[i];
		}
	return NULL;
}

int ioapic_route(uint32_t gsi, uint8_t vector, uint32_t apic_id, bool active_low, bool level,
		 unsigned *ioapic, unsigned *pin)
{
	unsigned i;
	struct ioapic *a = find(gsi, &i);
	unsigned p;

	if (!a)
		return -ENODEV;
	if (apic_id > 0xff)
		return -EINVAL;       /* 8 destination bits; more needs interrupt remapping (VT-d) */
	p = gsi - a->gsi_base;
	spin_lock(&lock);
	reg_write(a, IOREDTBL(p), RTE_MASKED);                  /* masked while it changes */
	reg_write(a, IOREDTBL(p) + 1, apic_id << 24);
	reg_write(a, IOREDTBL(p), RTE_MASKED | (active_low ? RTE_POLARITY_LOW : 0) | (level ? RTE_LEVEL : 0) |
		  vector);                                     /* fixed delivery, physical destination */
	spin_unlock(&lock);
	if (ioapic)
		*ioapic = i;
	if (pin)
		*pin = p;
	return 0;
}

void ioapic_set_masked(uint32_t gsi, bool masked)
{
	struct ioapic *a = find(gsi, NULL);
	unsigned p;
	uint32_t lo;

	if (!a)
		return;
	p = gsi - a->gsi_base;
	spin_lock(&lock);
	lo = reg_read(a, IOREDTBL(p));
	reg_write(a, IOREDTBL(p), masked ? lo | RTE_MASKED : lo & ~RTE_MASKED);
	spin_unlock(&lock);
}
