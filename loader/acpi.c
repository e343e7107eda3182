/* Builds a guest's ACPI tables (loader/acpi.h): the table layouts of ACPI 6.3, chapter 5.2, and the
 * values that describe the guest's platform. The DSDT is AML that iasl compiled from loader/dsdt.asl. */
#include "lib/string.h"
#include "loader/acpi.h"

#define PACKED __attribute__((packed))

/* Identity of the tables' maker (OEM fields of every header, the FADT's hypervisor vendor). */
#define OEM_ID          "TESSER"        /* 6 bytes */
#define OEM_TABLE_ID    "TesseraH"      /* 8 bytes */
#define OEM_REVISION    1
#define CREATOR_ID      "TSRA"          /* 4 bytes */
#define CREATOR_REV     1

/* Root System Description Pointer. ACPI 6.3, 5.2.5.3, Table 5-27. */
struct rsdp {
	char signature[8];              /* "RSD PTR " */
	uint8_t checksum;               /* bytes 0..19 (the ACPI 1.0 part) sum to 0 */
	char oem_id[6];
	uint8_t revision;               /* 2: ACPI 2.0 and later (XSDT, length, extended checksum) */
	uint32_t rsdt_address;
	uint32_t length;                /* 36 */
	uint64_t xsdt_address;
	uint8_t extended_checksum;      /* all 36 bytes sum to 0 */
	uint8_t reserved[3];
} PACKED;
_Static_assert(sizeof(struct rsdp) == 36, "ACPI 6.3 Table 5-27");
_Static_assert(__builtin_offsetof(struct rsdp, xsdt_address) == 24, "ACPI 6.3 Table 5-27");

/* System description table header. ACPI 6.3, 5.2.6, Table 5-29. */
struct sdt_header {
	char signature[4];
	uint32_t length;                /* the whole table, header included */
	uint8_t revision;
	uint8_t checksum;               /* the whole table sums to 0 */
	char oem_id[6];
	char oem_table_id[8];
	uint32_t oem_revision;
	char creator_id[4];
	uint32_t creator_revision;
} PACKED;
_Static_assert(sizeof(struct sdt_header) == 36, "ACPI 6.3 Table 5-29");

/* Generic Address Structure. ACPI 6.3, 5.2.3.2, Table 5-25. */
struct gas {
	uint8_t space_id;               /* GAS_SYSTEM_IO */
	uint8_t bit_width;
	uint8_t bit_offset;
	uint8_t access_size;            /* GAS_BYTE */
	uint64_t address;
} PACKED;
_Static_assert(sizeof(struct gas) == 12, "ACPI 6.3 Table 5-25");

#define GAS_SYSTEM_IO   1               /* address space: system I/O ports */
#define GAS_BYTE        1               /* access size: byte */
#define GAS_WORD        2
#define GAS_DWORD       3

/* Fixed ACPI Description Table, revision 6. ACPI 6.3, 5.2.9, Table 5-34. A PC's fixed hardware: the
 * PM1a event and control blocks and the PM timer, each in its 32-bit field and its X_ GAS (the same
 * port and length, as ACPICA compares them); no PM1b, PM2 or GPE blocks, no SMI command port. */
struct fadt {
	struct sdt_header h;            /* "FACP", revision 6 */
	uint32_t firmware_ctrl;         /* the FACS (= x_firmware_ctrl) */
	uint32_t dsdt;                  /* = x_dsdt, for OSes that read only this one */
	uint8_t reserved0;
	uint8_t preferred_pm_profile;   /* 0: unspecified */
	uint16_t sci_int;               /* the SCI's ISA IRQ (ACPI_SCI_IRQ) */
	uint32_t smi_cmd;               /* no SMM: ACPI is always enabled */
	uint8_t acpi_enable, acpi_disable, s4bios_req, pstate_cnt;
	uint32_t pm1a_evt_blk, pm1b_evt_blk, pm1a_cnt_blk, pm1b_cnt_blk, pm2_cnt_blk, pm_tmr_blk;
	uint32_t gpe0_blk, gpe1_blk;
	uint8_t pm1_evt_len, pm1_cnt_len, pm2_cnt_len, pm_tmr_len, gpe0_blk_len, gpe1_blk_len, gpe1_base;
	uint8_t cst_cnt;
	uint16_t p_lvl2_lat, p_lvl3_lat, flush_size, flush_stride;
	uint8_t duty_offset, duty_width, day_alrm, mon_alrm, century;
	uint16_t iapc_boot_arch;        /* IAPC_* */
	uint8_t reserved1;
	uint32_t flags;                 /* FADT_* */
	struct gas reset_reg;
	uint8_t reset_value;
	uint16_t arm_boot_arch;
	uint8_t minor_version;          /* 3: ACPI 6.3 */
	uint64_t x_firmware_ctrl;
	uint64_t x_dsdt;
	struct gas x_pm1a_evt_blk, x_pm1b_evt_blk, x_pm1a_cnt_blk, x_pm1b_cnt_blk, x_pm2_cnt_blk;
	struct gas x_pm_tmr_blk, x_gpe0_blk, x_gpe1_blk;
	struct gas sleep_control_reg;
	struct gas sleep_status_reg;
	char hypervisor_vendor[8];      /* ACPI 6.0 and later */
} PACKED;
_Static_assert(__builtin_offsetof(struct fadt, iapc_boot_arch) == 109, "ACPI 6.3 Table 5-34");
_Static_assert(__builtin_offsetof(struct fadt, flags) == 112, "ACPI 6.3 Table 5-34");
_Static_assert(__builtin_offsetof(struct fadt, reset_reg) == 116, "ACPI 6.3 Table 5-34");
_Static_assert(__builtin_offsetof(struct fadt, minor_version) == 131, "ACPI 6.3 Table 5-34");
_Static_assert(__builtin_offsetof(struct fadt, x_dsdt) == 140, "ACPI 6.3 Table 5-34");
_Static_assert(__builtin_offsetof(struct fadt, sleep_control_reg) == 244, "ACPI 6.3 Table 5-34");
_Static_assert(__builtin_offsetof(struct fadt, sleep_status_reg) == 256, "ACPI 6.3 Table 5-34");
_Static_assert(sizeof(struct fadt) == 276, "ACPI 6.3 Table 5-34");

/* IAPC_BOOT_ARCH (ACPI 6.3, 5.2.9.3, Table 5-35). */
#define IAPC_LEGACY_DEVICES  (1u << 0)  /* ISA-style devices on legacy ports (COM1) */
#define IAPC_8042            (1u << 1)  /* an 8042 keyboard controller: never (0x64 only resets) */
#define IAPC_VGA_NOT_PRESENT (1u << 2)  /* do not probe VGA */
#define IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)

/* FADT flags (ACPI 6.3, Table 5-34). */
#define FADT_WBINVD          (1u << 0)  /* WBINVD flushes the caches */
#define FADT_PROC_C1         (1u << 2)  /* C1 (HLT) works on every processor */
#define FADT_PWR_BUTTON      (1u << 4)  /* no fixed-feature power button */
#define FADT_SLP_BUTTON      (1u << 5)  /* no fixed-feature sleep button */
#define FADT_TMR_VAL_EXT     (1u << 8)  /* the PM timer counts 32 bits, not 24 */
#define FADT_RESET_REG_SUP   (1u << 10) /* RESET_REG and RESET_VALUE are valid */
/* Not set: HW_REDUCED_ACPI (bit 20). A hardware-reduced platform (ACPI 6.3, 4.1) has no PM timer, and
 * Linux takes the PIC and the PIT away from it (acpi_reduced_hw_init): on an AMD CPU, whose TSC rate
 * no CPUID leaf gives, it then has nothing to calibrate the TSC and the APIC timer against. */

/* Firmware ACPI Control Structure. ACPI 6.3, 5.2.10, Table 5-37: required without HW_REDUCED_ACPI;
 * 64-byte aligned; no checksum. No waking vector (no S3), the global lock free. */
struct facs {
	char signature[4];              /* "FACS" */
	uint32_t length;                /* 64 */
	uint32_t hardware_signature;
	uint32_t firmware_waking_vector;
	uint32_t global_lock;
	uint32_t flags;
	uint64_t x_firmware_waking_vector;
	uint8_t version;                /* 2 */
	uint8_t reserved0[3];
	uint32_t ospm_flags;
	uint8_t reserved1[24];
} PACKED;
_Static_assert(sizeof(struct facs) == 64, "ACPI 6.3 Table 5-37");

/* Multiple APIC Description Table. ACPI 6.3, 5.2.12, Table 5-43; its entries Tables 5-46..5-52. */
struct madt {
	struct sdt_header h;            /* "APIC", revision 5 */
	uint32_t lapic_address;
	uint32_t flags;                 /* MADT_PCAT_COMPAT */
} PACKED;
#define MADT_PCAT_COMPAT     (1u << 0)  /* a dual 8259 set-up exists as well */

struct madt_lapic {                     /* type 0: Processor Local APIC, Table 5-46 */
	uint8_t type, length;           /* 0, 8 */
	uint8_t processor_uid;
	uint8_t apic_id;
	uint32_t flags;                 /* LAPIC_ENABLED */
} PACKED;
#define LAPIC_ENABLED        (1u << 0)

struct madt_ioapic {                    /* type 1: I/O APIC, Table 5-48 */
	uint8_t type, length;           /* 1, 12 */
	uint8_t ioapic_id;
	uint8_t reserved;
	uint32_t address;
	uint32_t gsi_base;
} PACKED;

struct madt_override {                  /* type 2: Interrupt Source Override, Table 5-49 */
	uint8_t type, length;           /* 2, 10 */
	uint8_t bus;                    /* 0: ISA */
	uint8_t source;                 /* the ISA IRQ */
	uint32_t gsi;
	uint16_t flags;                 /* MPS INTI flags, Table 5-50: 0 = as the bus (ISA: edge, high) */
} PACKED;
#define INTI_ACTIVE_HIGH     (1u << 0)  /* polarity, bits 1:0 = 01 */
#define INTI_LEVEL           (3u << 2)  /* trigger mode, bits 3:2 = 11 */

struct madt_lapic_nmi {                 /* type 4: Local APIC NMI, Table 5-52 */
	uint8_t type, length;           /* 4, 6 */
	uint8_t processor_uid;          /* 0xFF: all processors */
	uint16_t flags;                 /* MPS INTI flags: 0 = as the bus */
	uint8_t lint;                   /* LINT1 */
} PACKED;
_Static_assert(sizeof(struct madt) == 44 && sizeof(struct madt_lapic) == 8 &&
	       sizeof(struct madt_ioapic) == 12 && sizeof(struct madt_override) == 10 &&
	       sizeof(struct madt_lapic_nmi) == 6, "ACPI 6.3 Tables 5-43..5-52");

static uint8_t checksum(const void *p, size_t n)
{
	const uint8_t *b = p;
	uint8_t sum = 0;

	while (n--)
		sum += *b++;
	return (uint8_t)-sum;
}

static void header(struct sdt_header *h, const char *sig, uint32_t length, uint8_t revision)
{
	memcpy(h->signature, sig, 4);
	h->length = length;
	h->revision = revision;
	memcpy(h->oem_id, OEM_ID, 6);
	memcpy(h->oem_table_id, OEM_TABLE_ID, 8);
	h->oem_revision = OEM_REVISION;
	memcpy(h->creator_id, CREATOR_ID, 4);
	h->creator_revision = CREATOR_REV;
}

static void seal(struct sdt_header *h)
{
	h->checksum = 0;
	h->checksum = checksum(h, h->length);
}

static struct gas port8(uint16_t port)
{
	return (struct gas){ .space_id = GAS_SYSTEM_IO, .bit_width = 8, .access_size = GAS_BYTE, .address = port };
}

static struct gas port_block(uint16_t port, unsigned bytes, uint8_t access)
{
	return (struct gas){ .space_id = GAS_SYSTEM_IO, .bit_width = (uint8_t)(8 * bytes), .access_size = access,
			     .address = port };
}

static size_t align16(size_t n)
{
	return (n + 15) & ~(size_t)15;
}

static size_t align64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

static size_t madt_length(const struct acpi_config *c)
{
	return sizeof(struct madt) + c->nvcpus * sizeof(struct madt_lapic) + sizeof(struct madt_lapic_nmi) +
	       (c->ioapic ? sizeof(struct madt_ioapic) + 2 * sizeof(struct madt_override) : 0);
}

static void build_madt(struct madt *m, const struct acpi_config *c)
{
	uint8_t *p = (uint8_t *)(m + 1);

	header(&m->h, "APIC", (uint32_t)madt_length(c), 5);
	m->lapic_address = ACPI_LAPIC_BASE;
	m->flags = c->pic ? MADT_PCAT_COMPAT : 0;
	for (unsigned i = 0; i < c->nvcpus; i++, p += sizeof(struct madt_lapic)) {
		struct madt_lapic e = { .type = 0, .length = sizeof(e), .processor_uid = (uint8_t)i,
					.apic_id = (uint8_t)i, .flags = LAPIC_ENABLED };
		memcpy(p, &e, sizeof(e));
	}
	if (c->ioapic) {
		struct madt_ioapic io = { .type = 1, .length = sizeof(io), .ioapic_id = ACPI_IOAPIC_ID,
					  .address = ACPI_IOAPIC_BASE, .gsi_base = 0 };
		struct madt_override irq0 = { .type = 2, .length = sizeof(irq0), .bus = 0, .source = 0, .gsi = 2 };
		/* The SCI, level-triggered as ACPI 6.3, 5.2.9 (SCI_INT) wants it, active high as the PIC's
		 * ELCR input and QEMU's tables have it: the device drives one level to the 8259A and the
		 * I/O APIC (vdev/irqchip.h), high while asserted. */
		struct madt_override sci = { .type = 2, .length = sizeof(sci), .bus = 0, .source = ACPI_SCI_IRQ,
					     .gsi = ACPI_SCI_IRQ, .flags = INTI_ACTIVE_HIGH | INTI_LEVEL };

		memcpy(p, &io, sizeof(io));
		p += sizeof(io);
		memcpy(p, &irq0, sizeof(irq0));
		p += sizeof(irq0);
		memcpy(p, &sci, sizeof(sci));
		p += sizeof(sci);
	}
	struct madt_lapic_nmi nmi = { .type = 4, .length = sizeof(nmi), .processor_uid = 0xff, .lint = 1 };
	memcpy(p, &nmi, sizeof(nmi));
	seal(&m->h);
}

static void build_fadt(struct fadt *f, const struct acpi_config *c, uint64_t dsdt, uint64_t facs)
{
	uint16_t evt = (uint16_t)(c->pm_base + ACPI_PM1_EVT), cnt = (uint16_t)(c->pm_base + ACPI_PM1_CNT);
	uint16_t tmr = (uint16_t)(c->pm_base + ACPI_PM_TMR);

	header(&f->h, "FACP", sizeof(*f), 6);
	f->minor_version = 3;
	f->firmware_ctrl = (uint32_t)facs;
	f->x_firmware_ctrl = facs;
	f->dsdt = (uint32_t)dsdt;
	f->x_dsdt = dsdt;
	f->sci_int = ACPI_SCI_IRQ;
	f->smi_cmd = 0;                 /* no SMM: ACPI mode always, SCI_EN reads 1 (4.8.2.5) */
	f->pm1a_evt_blk = evt;
	f->pm1a_cnt_blk = cnt;
	f->pm_tmr_blk = tmr;
	f->pm1_evt_len = ACPI_PM1_EVT_LEN;
	f->pm1_cnt_len = ACPI_PM1_CNT_LEN;
	f->pm_tmr_len = ACPI_PM_TMR_LEN;
	f->p_lvl2_lat = 101;            /* > 100: no C2 (Table 5-34) */
	f->p_lvl3_lat = 1001;           /* > 1000: no C3 */
	f->iapc_boot_arch = IAPC_LEGACY_DEVICES | IAPC_VGA_NOT_PRESENT | (c->rtc ? 0 : IAPC_CMOS_RTC_NOT_PRESENT);
	f->flags = FADT_WBINVD | FADT_PROC_C1 | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_TMR_VAL_EXT |
		   FADT_RESET_REG_SUP;
	f->reset_reg = port8(ACPI_RESET_PORT);
	f->reset_value = ACPI_RESET_VALUE;
	f->x_pm1a_evt_blk = port_block(evt, ACPI_PM1_EVT_LEN, GAS_WORD);
	f->x_pm1a_cnt_blk = port_block(cnt, ACPI_PM1_CNT_LEN, GAS_WORD);
	f->x_pm_tmr_blk = port_block(tmr, ACPI_PM_TMR_LEN, GAS_DWORD);
	/* SLEEP_CONTROL_REG and SLEEP_STATUS_REG stay 0: they are for hardware-reduced platforms only
	 * (5.2.9); sleep goes through PM1a_CNT. */
	memcpy(f->hypervisor_vendor, OEM_TABLE_ID, 8);
	seal(&f->h);
}

/*
 * Layout, each part on a 16-byte boundary of guest-physical memory, the FACS on a 64-byte one:
 *
 *   RSDP (36) | XSDT (36 + 2 x 8) | RSDT (36 + 2 x 4) | FADT (276) | MADT (44 + ...) | DSDT (AML) | FACS (64)
 *
 * The XSDT and RSDT list the FADT and the MADT; the FADT points at the DSDT and the FACS.
 */
size_t acpi_build(void *buf, size_t size, uint64_t gpa, const struct acpi_config *c, uint64_t *rsdp_gpa)
{
	size_t rsdp_off = (size_t)(-gpa & 15);     /* buf + rsdp_off is at a 16-byte boundary of GPA */
	size_t xsdt_off = rsdp_off + align16(sizeof(struct rsdp));
	size_t rsdt_off = xsdt_off + align16(sizeof(struct sdt_header) + 2 * 8);
	size_t fadt_off = rsdt_off + align16(sizeof(struct sdt_header) + 2 * 4);
	size_t madt_off = fadt_off + align16(sizeof(struct fadt));
	size_t dsdt_off = madt_off + align16(madt_length(c));
	size_t facs_off = (size_t)(align64((size_t)gpa + dsdt_off + dsdt_aml_len) - (size_t)gpa);
	size_t end = facs_off + sizeof(struct facs);
	uint8_t *b = buf;

	if (c->nvcpus < 1 || c->nvcpus > ACPI_MAX_VCPUS || !c->pm_base || c->pm_base > 0xffff - ACPI_PM_LEN ||
	    end > size || gpa > 0x100000000ull - end)
		return 0;
	memset(b, 0, end);

	uint64_t xsdt = gpa + xsdt_off, rsdt = gpa + rsdt_off, fadt = gpa + fadt_off, madt = gpa + madt_off;
	uint64_t dsdt = gpa + dsdt_off, facs = gpa + facs_off;
	struct facs *fc = (struct facs *)(b + facs_off);

	memcpy(b + dsdt_off, dsdt_aml, dsdt_aml_len);
	seal((struct sdt_header *)(b + dsdt_off));      /* iasl's checksum already; kept right regardless */
	build_madt((struct madt *)(b + madt_off), c);
	build_fadt((struct fadt *)(b + fadt_off), c, dsdt, facs);
	memcpy(fc->signature, "FACS", 4);
	fc->length = sizeof(*fc);
	fc->version = 2;

	struct sdt_header *h = (struct sdt_header *)(b + rsdt_off);
	uint32_t rsdt_entries[2] = { (uint32_t)fadt, (uint32_t)madt };
	header(h, "RSDT", sizeof(*h) + sizeof(rsdt_entries), 1);
	memcpy(h + 1, rsdt_entries, sizeof(rsdt_entries));
	seal(h);

	h = (struct sdt_header *)(b + xsdt_off);
	uint64_t xsdt_entries[2] = { fadt, madt };
	header(h, "XSDT", sizeof(*h) + sizeof(xsdt_entries), 1);
	memcpy(h + 1, xsdt_entries, sizeof(xsdt_entries));
	seal(h);

	struct rsdp *r = (struct rsdp *)(b + rsdp_off);
	memcpy(r->signature, "RSD PTR ", 8);
	memcpy(r->oem_id, OEM_ID, 6);
	r->revision = 2;
	r->rsdt_address = (uint32_t)rsdt;
	r->length = sizeof(*r);
	r->xsdt_address = xsdt;
	r->checksum = checksum(r, 20);
	r->extended_checksum = checksum(r, sizeof(*r));

	*rsdp_gpa = gpa + rsdp_off;
	return end;
}
