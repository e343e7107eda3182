/* Host tests of arch/x86/acpi.c, the hypervisor's own reading of the firmware's tables: the MADT's I/O
 * APICs and ISA interrupt source overrides, the FADT's reset register. The tables are built here byte by
 * byte at the offsets of ACPI 6.5 (5.2.5 RSDP, 5.2.7 RSDT, 5.2.9 FADT, 5.2.12 MADT), in host memory
 * whose address stands for the physical one (the host map is 1:1). */
#include <stdint.h>
#include <string.h>
#include "arch/x86/acpi.h"
#include "tests/unit/unit.h"

static uint8_t mem[4096] __attribute__((aligned(16)));

static void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void checksum(uint8_t *p, size_t n, uint8_t *field)
{
	uint8_t s = 0;

	*field = 0;
	for (size_t i = 0; i < n; i++)
		s += p[i];
	*field = (uint8_t)-s;
}

static uint8_t *header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	wr32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, "TEST  ", 6);
	return t;
}

/* RSDP (ACPI 2.0, 36 bytes) at mem, XSDT at +64 naming a MADT at +128 and a FADT at +512 (64-bit
 * addresses: host memory may lie above 4 GiB). */
static uint64_t build(bool reset_sup, uint8_t reset_space, uint8_t reset_width, bool bad_madt_sum)
{
	uint8_t *rsdp = mem, *xsdt = mem + 64, *madt = mem + 128, *fadt = mem + 512, *p;
	uint32_t madt_len;

	memset(mem, 0, sizeof(mem));
	memcpy(rsdp, "RSD PTR ", 8);
	rsdp[15] = 2;                                   /* revision */
	wr32(rsdp + 20, 36);                            /* length */
	wr64(rsdp + 24, (uint64_t)(uintptr_t)xsdt);
	checksum(rsdp, 20, rsdp + 8);
	checksum(rsdp, 36, rsdp + 32);

	header(xsdt, "XSDT", 36 + 16, 1);
	wr64(xsdt + 36, (uint64_t)(uintptr_t)madt);
	wr64(xsdt + 44, (uint64_t)(uintptr_t)fadt);
	checksum(xsdt, 36 + 16, xsdt + 9);

	/* MADT: local APIC address and flags, then entries (type, length, ...). */
	p = madt + 44;
	p[0] = 0, p[1] = 8, p[2] = 0, p[3] = 0, wr32(p + 4, 1), p += 8;        /* CPU, APIC ID 0, enabled */
	p[0] = 1, p[1] = 12, p[2] = 2, wr32(p + 4, 0xfec00000), wr32(p + 8, 0), p += 12;  /* I/O APIC 2, GSI 0 */
	p[0] = 1, p[1] = 12, p[2] = 3, wr32(p + 4, 0xfec01000), wr32(p + 8, 24), p += 12; /* I/O APIC 3, GSI 24 */
	p[0] = 2, p[1] = 10, p[2] = 0, p[3] = 0, wr32(p + 4, 2), wr16(p + 8, 0), p += 10; /* IRQ 0 -> GSI 2 */
	p[0] = 2, p[1] = 10, p[2] = 0, p[3] = 9, wr32(p + 4, 9), wr16(p + 8, 0xf), p += 10; /* IRQ 9: level, low */
	p[0] = 2, p[1] = 10, p[2] = 0, p[3] = 4, wr32(p + 4, 28), wr16(p + 8, 0x5), p += 10; /* IRQ 4 -> 28, edge high */
	p[0] = 2, p[1] = 10, p[2] = 1, p[3] = 3, wr32(p + 4, 40), wr16(p + 8, 0xf), p += 10; /* bus 1: not ISA */
	p[0] = 2, p[1] = 10, p[2] = 0, p[3] = 16, wr32(p + 4, 40), wr16(p + 8, 0xf), p += 10; /* no ISA IRQ 16 */
	madt_len = (uint32_t)(p - madt);
	header(madt, "APIC", madt_len, 3);
	wr32(madt + 36, 0xfee00000);
	wr32(madt + 40, 1);                                                     /* PCAT_COMPAT */
	checksum(madt, madt_len, madt + 9);
	if (bad_madt_sum)
		madt[9]++;

	/* FADT (276 bytes, revision 6): Flags at 112, RESET_REG at 116, RESET_VALUE at 128. */
	header(fadt, "FACP", 276, 6);
	wr32(fadt + 112, reset_sup ? 1u << 10 : 0);
	fadt[116] = reset_space, fadt[117] = reset_width;
	wr64(fadt + 120, reset_space == 2 ? (3ull << 32 | 1ull << 16 | 0x44) : 0xcf9);
	fadt[128] = 0x06;
	checksum(fadt, 276, fadt + 9);
	return (uint64_t)(uintptr_t)rsdp;
}

static void test_madt_irqs(void)
{
	memset(&acpi, 0, sizeof(acpi));
	acpi_init(build(true, 1, 8, false), 2, ~0ull);
	CHECK(acpi.has_madt);
	CHECK_EQ(acpi.ncpus, 1);
	CHECK_EQ(acpi.nioapics, 2);
	CHECK_EQ(acpi.ioapics[0].id, 2);
	CHECK_EQ(acpi.ioapics[0].addr, 0xfec00000);
	CHECK_EQ(acpi.ioapics[0].gsi_base, 0);
	CHECK_EQ(acpi.ioapics[1].id, 3);
	CHECK_EQ(acpi.ioapics[1].addr, 0xfec01000);
	CHECK_EQ(acpi.ioapics[1].gsi_base, 24);
	/* Overrides: IRQ 0 to GSI 2 as the bus does (edge, high); IRQ 9 level, active low; IRQ 4 moved. */
	CHECK_EQ(acpi.isa_irq[0].gsi, 2);
	CHECK(!acpi.isa_irq[0].level && !acpi.isa_irq[0].active_low);
	CHECK_EQ(acpi.isa_irq[9].gsi, 9);
	CHECK(acpi.isa_irq[9].level && acpi.isa_irq[9].active_low);
	CHECK_EQ(acpi.isa_irq[4].gsi, 28);
	CHECK(!acpi.isa_irq[4].level && !acpi.isa_irq[4].active_low);
	/* No override: ISA IRQ n is GSI n, edge, active high; a non-ISA bus's entry changes nothing. */
	CHECK_EQ(acpi.isa_irq[3].gsi, 3);
	CHECK(!acpi.isa_irq[3].level && !acpi.isa_irq[3].active_low);
	CHECK_EQ(acpi.isa_irq[15].gsi, 15);
	/* The reset register in I/O space. */
	CHECK(acpi.has_reset);
	CHECK_EQ(acpi.reset_reg.space, ACPI_GAS_IO);
	CHECK_EQ(acpi.reset_reg.addr, 0xcf9);
	CHECK_EQ(acpi.reset_value, 6);
}

static void test_reset_reg(void)
{
	/* In PCI configuration space, RESET_REG_SUP clear but an 8-bit register: taken (as Linux does). */
	memset(&acpi, 0, sizeof(acpi));
	acpi_init(build(false, 2, 8, false), 2, ~0ull);
	CHECK(acpi.has_reset);
	CHECK_EQ(acpi.reset_reg.space, ACPI_GAS_PCI);
	CHECK_EQ(acpi.reset_reg.addr, 3ull << 32 | 1ull << 16 | 0x44);
	/* Neither the flag nor an 8-bit width: not a reset register. */
	memset(&acpi, 0, sizeof(acpi));
	acpi_init(build(false, 1, 16, false), 2, ~0ull);
	CHECK(!acpi.has_reset);
}

static void test_damaged_madt(void)
{
	/* A MADT with a bad checksum is ignored whole: no I/O APIC, ISA IRQs at their defaults. */
	memset(&acpi, 0, sizeof(acpi));
	acpi_init(build(true, 1, 8, true), 2, ~0ull);
	CHECK(!acpi.has_madt);
	CHECK_EQ(acpi.nioapics, 0);
	CHECK_EQ(acpi.isa_irq[0].gsi, 0);
	CHECK_EQ(acpi.isa_irq[4].gsi, 4);
	CHECK(acpi.has_reset);
	/* No RSDP: the defaults still. */
	memset(&acpi, 0xff, sizeof(acpi.isa_irq));
	acpi_init(0, 0, ~0ull);
	CHECK_EQ(acpi.isa_irq[9].gsi, 9);
	CHECK(!acpi.isa_irq[9].level);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_madt_irqs);
	RUN(test_reset_reg);
	RUN(test_damaged_madt);
	return unit_report(argv[0]);
}
