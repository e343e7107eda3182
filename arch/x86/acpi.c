/* ACPI table walk: RSDP -> RSDT/XSDT -> MADT and FADT (-> DSDT for the S5 sleep type).
 * ACPI 6.5 specification, 5.2 (System Description Tables). Every table's checksum is verified. */
#include "arch/x86/acpi.h"
#include "console/printk.h"
#include "lib/string.h"

struct acpi_info acpi;

struct rsdp {
	char signature[8];      /* "RSD PTR " */
	uint8_t checksum;       /* first 20 bytes sum to 0 */
	char oem_id[6];
	uint8_t revision;       /* 0: ACPI 1.0, 2: ACPI 2.0+ */
	uint32_t rsdt;
	uint32_t length;        /* from here on ACPI 2.0+ */
	uint64_t xsdt;
	uint8_t ext_checksum;
	uint8_t reserved[3];
} __attribute__((packed));

struct sdt_header {
	char signature[4];
	uint32_t length;
	uint8_t revision, checksum;
	char oem_id[6], oem_table_id[8];
	uint32_t oem_revision, creator_id, creator_revision;
} __attribute__((packed));
_Static_assert(sizeof(struct sdt_header) == 36, "ACPI 5.2.6");

static bool checksum_ok(const void *p, uint32_t len)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (len--)
		sum += *b++;
	return sum == 0;
}

static uint64_t mapped_top;   /* tables must lie below: the rest is not in the host map */

static const struct sdt_header *table_at(uint64_t phys)
{
	const struct sdt_header *h = (const void *)phys;

	if (!phys || phys >= mapped_top || mapped_top - phys < sizeof(*h)) {
		pr_warn("hv: acpi: table address 0x%lx is outside memory, ignored\n", phys);
		return NULL;
	}
	if (h->length < sizeof(*h) || h->length > (16u << 20) || h->length > mapped_top - phys ||
	    !checksum_ok(h, h->length)) {
		pr_warn("hv: acpi: table at 0x%lx is damaged (bad length or checksum), ignored\n", phys);
		return NULL;
	}
	return h;
}

/* MADT interrupt entries: an I/O APIC (type 1, ACPI 6.5, 5.2.12.3: ID at 2, address at 4, GSI base
 * at 8) and an interrupt source override (type 2, 5.2.12.5: bus 0 = ISA at 2, source IRQ at 3, GSI at
 * 4, MPS INTI flags at 8: polarity bits 1:0, trigger mode bits 3:2; 00 = as the bus does, 01 = active
 * high / edge, 11 = active low / level, Table 5.50). */
static void parse_madt_irq(const uint8_t *p)
{
	uint32_t addr, gsi;
	uint16_t flags;

	if (p[0] == 1 && p[1] >= 12) {
		memcpy(&addr, p + 4, 4);
		memcpy(&gsi, p + 8, 4);
		if (acpi.nioapics < ACPI_MAX_IOAPICS)
			acpi.ioapics[acpi.nioapics++] = (struct acpi_ioapic){ p[2], addr, gsi };
		else
			pr_warn("hv: acpi: more than %d I/O APICs, the one at 0x%x ignored\n", ACPI_MAX_IOAPICS, addr);
	} else if (p[0] == 2 && p[1] >= 10 && p[2] == 0 && p[3] < 16) {
		memcpy(&gsi, p + 4, 4);
		memcpy(&flags, p + 8, 2);
		acpi.isa_irq[p[3]] = (struct acpi_isa_irq){ gsi, (flags & 3) == 3, ((flags >> 2) & 3) == 3 };
	}
}

/* MADT: processor entries. ACPI 6.5, 5.2.12.2 (type 0, local APIC) and 5.2.12.12 (type 9, x2APIC). */
static void parse_madt(const struct sdt_header *h)
{
	const uint8_t *p = (const uint8_t *)h + 44, *end = (const uint8_t *)h + h->length;

	acpi.has_madt = true;
	while (p + 2 <= end && p[1] >= 2 && p + p[1] <= end) {
		uint32_t id = 0, flags = 0;
		bool cpu = false;

		parse_madt_irq(p);
		if (p[0] == 0 && p[1] >= 8) {
			id = p[3];
			memcpy(&flags, p + 4, 4);
			cpu = true;
		} else if (p[0] == 9 && p[1] >= 16) {
			memcpy(&id, p + 4, 4);
			memcpy(&flags, p + 8, 4);
			cpu = true;
		}
		/* flags bit 0: enabled. Bit 1 (online capable) marks a hot-plug slot, not a CPU to start.
		 * A CPU may be listed twice (a type 0 and a type 9 entry): start it once. */
		for (unsigned i = 0; cpu && i < acpi.ncpus; i++)
			if (acpi.apic_ids[i] == id)
				cpu = false;
		if (cpu && (flags & 1)) {
			if (acpi.ncpus < ACPI_MAX_CPUS)
				acpi.apic_ids[acpi.ncpus++] = id;
			else
				pr_warn("hv: acpi: more than %d CPUs, APIC id %u ignored\n", ACPI_MAX_CPUS, id);
		}
		p += p[1];
	}
}

/* The DSDT holds \_S5 as AML: NameOp "_S5_" PackageOp PkgLength NumElements {SLP_TYPa, SLP_TYPb ...}.
 * A byte search for it is the usual shortcut short of an AML interpreter (ACPI 6.5, 7.4.2 and 20.2). */
/* One AML integer (ZeroOp, OneOp, BytePrefix, WordPrefix, DWordPrefix; ACPI 6.5, 20.2.3) at *pp. */
static bool aml_integer(const uint8_t **pp, const uint8_t *end, uint32_t *val)
{
	const uint8_t *p = *pp;
	unsigned len = 0;

	if (p >= end)
		return false;
	switch (*p) {
	case 0x00: *val = 0; break;                       /* ZeroOp */
	case 0x01: *val = 1; break;                       /* OneOp */
	case 0x0a: len = 1; break;                        /* BytePrefix */
	case 0x0b: len = 2; break;                        /* WordPrefix */
	case 0x0c: len = 4; break;                        /* DWordPrefix */
	default:   *val = *p; break;                      /* some firmware writes the byte bare */
	}
	if (len) {
		if (p + 1 + len > end)
			return false;
		*val = 0;
		memcpy(val, p + 1, len);
		p += len;
	}
	*pp = p + 1;
	return true;
}

/* The DSDT holds \_S5 as AML: NameOp "_S5_" PackageOp PkgLength NumElements {SLP_TYPa, SLP_TYPb ...}.
 * A byte search for it is the usual shortcut short of an AML interpreter (ACPI 6.5, 7.4.2 and 20.2). */
static void find_s5(const struct sdt_header *dsdt)
{
	const uint8_t *p = (const uint8_t *)dsdt + sizeof(*dsdt);
	const uint8_t *end = (const uint8_t *)dsdt + dsdt->length;
	uint32_t a, b;

	for (; p + 8 < end; p++) {
		if (memcmp(p, "_S5_", 4) || p[4] != 0x12)
			continue;
		p += 5;
		p += ((*p & 0xc0) >> 6) + 1;   /* PkgLength: lead byte bits 7:6 = extra bytes */
		p++;                           /* NumElements */
		if (!aml_integer(&p, end, &a) || !aml_integer(&p, end, &b))
			return;
		acpi.slp_typ_s5 = a & 7;       /* SLP_TYP is 3 bits wide */
		acpi.slp_typb_s5 = b & 7;
		acpi.has_s5 = true;
		return;
	}
}

/* FADT fields used (ACPI 6.5, 5.2.9, Table 5.9): DSDT at 40, PM1a/PM1b control blocks at 64/68,
 * Flags at 112 (bit 10 RESET_REG_SUP), RESET_REG (a Generic Address Structure: space ID at +0, bit
 * width at +1, address at +4) at 116 and RESET_VALUE at 128 (ACPI 2.0+), X_DSDT at 140 (ACPI 2.0+). */
static void parse_fadt(const struct sdt_header *h)
{
	const uint8_t *f = (const uint8_t *)h;
	uint32_t dsdt32 = 0, pm1a = 0, pm1b = 0;
	uint64_t dsdt = 0;

	if (h->length >= 72) {
		memcpy(&dsdt32, f + 40, 4);
		memcpy(&pm1a, f + 64, 4);
		memcpy(&pm1b, f + 68, 4);
	}
	if (h->length >= 129) {
		uint32_t flags;

		memcpy(&flags, f + 112, 4);
		acpi.reset_reg.space = f[116];
		acpi.reset_reg.bit_width = f[117];
		memcpy(&acpi.reset_reg.addr, f + 120, 8);
		acpi.reset_value = f[128];
		/* Some firmware leaves RESET_REG_SUP clear with a good 8-bit register (Linux's acpi_reboot
		 * takes the register then too, and so does this). */
		acpi.has_reset = acpi.reset_reg.addr && ((flags & (1u << 10)) || acpi.reset_reg.bit_width == 8);
	}
	if (h->length >= 148)
		memcpy(&dsdt, f + 140, 8);
	acpi.pm1a_cnt = pm1a;
	acpi.pm1b_cnt = pm1b;
	if (!dsdt)
		dsdt = dsdt32;
	if (dsdt && (h = table_at(dsdt)) && !memcmp(h->signature, "DSDT", 4))
		find_s5(h);
}

void acpi_init(uint64_t rsdp_phys, int revision, uint64_t top)
{
	const struct rsdp *rsdp = (const void *)rsdp_phys;
	const struct sdt_header *root;
	bool xsdt;
	unsigned n, entry_size;

	for (unsigned irq = 0; irq < 16; irq++)
		acpi.isa_irq[irq] = (struct acpi_isa_irq){ irq, false, false };
	if (!rsdp_phys) {
		pr_warn("hv: acpi: no RSDP from the boot loader\n");
		return;
	}
	if (memcmp(rsdp->signature, "RSD PTR ", 8) || !checksum_ok(rsdp, 20)) {
		pr_warn("hv: acpi: RSDP at 0x%lx is damaged, ignored\n", rsdp_phys);
		return;
	}
	mapped_top = top;
	/* The XSDT fields exist only in the 36-byte ACPI 2.0 RSDP, which has its own checksum over
	 * `length` bytes (ACPI 6.5, 5.2.5.3); the 20-byte copy of an ACPI 1.0 tag ends before them. */
	xsdt = revision >= 2 && rsdp->revision >= 2 && rsdp->length >= 36 && rsdp->length <= 4096 &&
	       checksum_ok(rsdp, rsdp->length) && rsdp->xsdt;
	root = table_at(xsdt ? rsdp->xsdt : rsdp->rsdt);
	if (!root)
		return;
	acpi.found = true;
	entry_size = xsdt ? 8 : 4;
	n = (root->length - sizeof(*root)) / entry_size;
	for (unsigned i = 0; i < n; i++) {
		uint64_t addr = 0;
		const struct sdt_header *h;

		memcpy(&addr, (const uint8_t *)root + sizeof(*root) + i * entry_size, entry_size);
		if (!(h = table_at(addr)))
			continue;
		if (!memcmp(h->signature, "APIC", 4))
			parse_madt(h);
		else if (!memcmp(h->signature, "FACP", 4))
			parse_fadt(h);
	}
}
