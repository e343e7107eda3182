/* Host tests of loader/acpi.c: the tables are read back as an OS reads them (scan for the RSDP, follow
 * the XSDT and RSDT, walk the MADT), by byte offsets of ACPI 6.3 rather than the builder's structs,
 * and, where acpica-tools is installed, disassembled by `iasl -d` and loaded by acpiexec (ACPICA, the
 * table code Linux runs), which must report no problem. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "loader/acpi.h"
#include "tests/unit/unit.h"

#define AREA      ACPI_RSDP_AREA_START
#define AREA_SIZE (ACPI_RSDP_AREA_END - ACPI_RSDP_AREA_START)

/* Guest-physical 0xE0000-0xFFFFF, where the tests put the tables. */
static uint8_t bios[AREA_SIZE];

static unsigned rd8(const uint8_t *p) { return p[0]; }
static unsigned rd16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

/* The bytes at a GPA of the area, or NULL when [gpa, gpa + len) is not inside what acpi_build wrote. */
static size_t used_end;  /* GPA just past the tables */
static const uint8_t *at(uint64_t gpa, size_t len)
{
	if (gpa < AREA || gpa > used_end || len > used_end - gpa)
		return NULL;
	return bios + (gpa - AREA);
}

/* A table at gpa with its signature, length (at least min), checksum; NULL (after failed CHECKs) if not. */
static const uint8_t *table(uint64_t gpa, const char *sig, size_t min)
{
	const uint8_t *t = at(gpa, 36);

	CHECK(t != NULL);
	if (!t)
		return NULL;
	CHECK(!memcmp(t, sig, 4));
	CHECK(gpa % 16 == 0);
	uint32_t len = rd32(t + 4);
	CHECK(len >= min);
	CHECK(at(gpa, len) != NULL);
	if (len < min || !at(gpa, len) || memcmp(t, sig, 4))
		return NULL;
	CHECK_EQ(sum(t, len), 0);
	CHECK(!memcmp(t + 10, "TESSER", 6));     /* OEM ID */
	CHECK(!memcmp(t + 16, "TesseraH", 8));   /* OEM table ID */
	return t;
}

/* Scans the area on 16-byte boundaries for "RSD PTR " with a right checksum, as Linux does. */
static uint64_t scan_rsdp(void)
{
	for (uint64_t g = AREA; g + 20 <= ACPI_RSDP_AREA_END; g += 16)
		if (!memcmp(bios + (g - AREA), "RSD PTR ", 8) && sum(bios + (g - AREA), 20) == 0)
			return g;
	return 0;
}

struct found { const uint8_t *fadt, *madt, *dsdt; uint64_t fadt_gpa, madt_gpa, dsdt_gpa; };

/* Builds for config c at gpa, checks the RSDP and both root tables, and returns the tables they list. */
static struct found build_and_walk(const struct acpi_config *c, uint64_t gpa)
{
	struct found f = { 0 };
	uint64_t rsdp_gpa = 0;

	memset(bios, 0xa5, sizeof(bios));
	size_t n = acpi_build(bios + (gpa - AREA), ACPI_TABLES_MAX, gpa, c, &rsdp_gpa);
	CHECK(n > 0 && n <= ACPI_TABLES_MAX);
	used_end = gpa + n;
	CHECK(rsdp_gpa >= gpa && rsdp_gpa < gpa + 16 && rsdp_gpa % 16 == 0);
	memset(bios, 0, gpa - AREA);                             /* nothing else in the area looks like one */
	memset(bios + (used_end - AREA), 0, ACPI_RSDP_AREA_END - used_end);
	CHECK_EQ(scan_rsdp(), rsdp_gpa);

	const uint8_t *r = at(rsdp_gpa, 36);
	CHECK(r != NULL);
	if (!r)
		return f;
	CHECK_EQ(sum(r, 20), 0);
	CHECK_EQ(sum(r, 36), 0);
	CHECK_EQ(rd8(r + 15), 2);                                /* revision: ACPI 2.0+ */
	CHECK_EQ(rd32(r + 20), 36);                              /* length */
	CHECK(!memcmp(r + 9, "TESSER", 6));

	/* The XSDT (64-bit entries) and the RSDT (32-bit) list the same tables. */
	const uint8_t *x = table(rd64(r + 24), "XSDT", 36), *rs = table(rd32(r + 16), "RSDT", 36);
	if (!x || !rs)
		return f;
	unsigned nx = (rd32(x + 4) - 36) / 8, nr = (rd32(rs + 4) - 36) / 4;
	CHECK_EQ(rd32(x + 4), 36 + 8 * nx);
	CHECK_EQ(nx, 2);
	CHECK_EQ(nr, nx);
	for (unsigned i = 0; i < nx && i < nr; i++) {
		uint64_t g = rd64(x + 36 + 8 * i);
		CHECK_EQ(rd32(rs + 36 + 4 * i), g);
		const uint8_t *t = at(g, 36);
		CHECK(t != NULL);
		if (t && !memcmp(t, "FACP", 4)) {
			CHECK(!f.fadt);
			f.fadt = table(g, "FACP", 276);
			f.fadt_gpa = g;
		} else if (t && !memcmp(t, "APIC", 4)) {
			CHECK(!f.madt);
			f.madt = table(g, "APIC", 44);
			f.madt_gpa = g;
		} else {
			CHECK(!"an XSDT entry is neither FACP nor APIC");
		}
	}
	CHECK(f.fadt && f.madt);
	if (f.fadt) {
		f.dsdt_gpa = rd64(f.fadt + 140);                 /* X_DSDT */
		CHECK_EQ(rd32(f.fadt + 40), f.dsdt_gpa);         /* DSDT: the same */
		f.dsdt = table(f.dsdt_gpa, "DSDT", 36);
	}
	return f;
}

/* A Generic Address Structure: system I/O, 8 bits, offset 0, byte access, at port. */
static void check_gas_port8(const uint8_t *g, unsigned port)
{
	CHECK_EQ(rd8(g + 0), 1);
	CHECK_EQ(rd8(g + 1), 8);
	CHECK_EQ(rd8(g + 2), 0);
	CHECK_EQ(rd8(g + 3), 1);
	CHECK_EQ(rd64(g + 4), port);
}

/* A Generic Address Structure: system I/O, `bits` wide, offset 0, access size `access`, at port. */
static void check_gas_io(const uint8_t *g, unsigned port, unsigned bits, unsigned access)
{
	CHECK_EQ(rd8(g + 0), 1);
	CHECK_EQ(rd8(g + 1), bits);
	CHECK_EQ(rd8(g + 2), 0);
	CHECK_EQ(rd8(g + 3), access);
	CHECK_EQ(rd64(g + 4), port);
}

/* The FADT of a PC that is not hardware-reduced (ACPI 6.3, 5.2.9, Table 5-34): PM1a event and control
 * blocks and the PM timer at pm_base + 0, 4, 8 with lengths 4, 2, 4, each in its 32-bit field and its
 * X_ GAS (same port, width = length); the SCI on IRQ 9; no SMI command port; a FACS. */
static void check_fadt(const uint8_t *f, const struct acpi_config *c)
{
	CHECK_EQ(rd32(f + 4), 276);                              /* length of revision 6 */
	CHECK_EQ(rd8(f + 8), 6);                                 /* revision (major) */
	CHECK_EQ(rd8(f + 131), 3);                               /* minor: ACPI 6.3 */
	uint32_t flags = rd32(f + 112);
	CHECK(!(flags & (1u << 20)));                            /* not HW_REDUCED_ACPI */
	CHECK(flags & (1u << 8));                                /* TMR_VAL_EXT: a 32-bit PM timer */
	CHECK(flags & (1u << 10));                               /* RESET_REG_SUP */
	CHECK(flags & (1u << 4) && flags & (1u << 5));           /* no fixed power/sleep button */
	unsigned boot = rd16(f + 109);
	CHECK(!(boot & (1u << 1)));                              /* no 8042 */
	CHECK(boot & (1u << 2));                                 /* VGA not present */
	CHECK_EQ(!!(boot & (1u << 5)), !c->rtc);                 /* CMOS RTC not present */
	CHECK_EQ(rd16(f + 46), 9);                               /* SCI_INT */
	CHECK_EQ(rd32(f + 48), 0);                               /* SMI_CMD: none, ACPI mode always */
	CHECK_EQ(rd32(f + 56), c->pm_base);                      /* PM1a_EVT_BLK */
	CHECK_EQ(rd32(f + 60), 0);                               /* PM1b_EVT_BLK */
	CHECK_EQ(rd32(f + 64), c->pm_base + 4u);                 /* PM1a_CNT_BLK */
	CHECK_EQ(rd32(f + 68), 0);                               /* PM1b_CNT_BLK */
	CHECK_EQ(rd32(f + 72), 0);                               /* PM2_CNT_BLK */
	CHECK_EQ(rd32(f + 76), c->pm_base + 8u);                 /* PM_TMR_BLK */
	CHECK_EQ(rd32(f + 80), 0);                               /* GPE0_BLK */
	CHECK_EQ(rd32(f + 84), 0);                               /* GPE1_BLK */
	CHECK_EQ(rd8(f + 88), 4);                                /* PM1_EVT_LEN */
	CHECK_EQ(rd8(f + 89), 2);                                /* PM1_CNT_LEN */
	CHECK_EQ(rd8(f + 90), 0);                                /* PM2_CNT_LEN */
	CHECK_EQ(rd8(f + 91), 4);                                /* PM_TMR_LEN */
	CHECK_EQ(rd8(f + 92), 0);                                /* GPE0_BLK_LEN */
	CHECK_EQ(rd8(f + 93), 0);                                /* GPE1_BLK_LEN */
	CHECK(rd16(f + 96) > 100 && rd16(f + 98) > 1000);        /* P_LVL2_LAT, P_LVL3_LAT: no C2, C3 */
	check_gas_io(f + 148, c->pm_base, 32, 2);                /* X_PM1a_EVT_BLK */
	check_gas_io(f + 172, c->pm_base + 4, 16, 2);            /* X_PM1a_CNT_BLK */
	check_gas_io(f + 208, c->pm_base + 8, 32, 3);            /* X_PM_TMR_BLK */
	for (unsigned off = 160; off < 172; off++)               /* X_PM1b_EVT_BLK */
		CHECK_EQ(f[off], 0);
	for (unsigned off = 184; off < 208; off++)               /* X_PM1b_CNT_BLK, X_PM2_CNT_BLK */
		CHECK_EQ(f[off], 0);
	for (unsigned off = 220; off < 268; off++)               /* X_GPE0/1, SLEEP_CONTROL/STATUS_REG */
		CHECK_EQ(f[off], 0);
	check_gas_port8(f + 116, ACPI_RESET_PORT);               /* RESET_REG */
	CHECK_EQ(rd8(f + 128), ACPI_RESET_VALUE);
	CHECK(!memcmp(f + 268, "TesseraH", 8));                  /* hypervisor vendor identity */

	/* The FACS (5.2.10, Table 5-37): FIRMWARE_CTRL = X_FIRMWARE_CTRL, 64-byte aligned, no checksum. */
	uint64_t facs = rd64(f + 132);
	CHECK_EQ(rd32(f + 36), facs);
	CHECK(facs % 64 == 0);
	const uint8_t *fc = at(facs, 64);
	CHECK(fc != NULL);
	if (fc) {
		CHECK(!memcmp(fc, "FACS", 4));
		CHECK_EQ(rd32(fc + 4), 64);
		CHECK_EQ(rd32(fc + 12), 0);                      /* no waking vector */
		CHECK_EQ(rd32(fc + 16), 0);                      /* global lock free */
		CHECK_EQ(rd8(fc + 32), 2);                       /* version */
	}
}

static void check_madt(const uint8_t *m, const struct acpi_config *c)
{
	uint32_t len = rd32(m + 4);
	unsigned nlapic = 0, nioapic = 0, novr = 0, nnmi = 0, off;
	uint8_t seen[256] = { 0 };

	CHECK_EQ(rd8(m + 8), 5);                                 /* revision: ACPI 6.3 */
	CHECK_EQ(rd32(m + 36), 0xfee00000);
	CHECK_EQ(rd32(m + 40), c->pic ? 1 : 0);                  /* PCAT_COMPAT */
	for (off = 44; off + 2 <= len; off += m[off + 1]) {
		const uint8_t *e = m + off;
		CHECK(e[1] >= 2 && off + e[1] <= len);
		if (e[1] < 2 || off + e[1] > len)
			return;
		switch (e[0]) {
		case 0:                                          /* Processor Local APIC */
			CHECK_EQ(e[1], 8);
			CHECK_EQ(e[2], e[3]);                    /* UID = APIC ID */
			CHECK_EQ(e[3], nlapic);                  /* IDs 0, 1, ... in order */
			CHECK(!seen[e[3]]++);
			CHECK_EQ(rd32(e + 4), 1);                /* enabled */
			nlapic++;
			break;
		case 1:                                          /* I/O APIC */
			CHECK_EQ(e[1], 12);
			CHECK_EQ(e[2], ACPI_IOAPIC_ID);
			CHECK_EQ(rd32(e + 4), 0xfec00000);
			CHECK_EQ(rd32(e + 8), 0);                /* GSI base */
			nioapic++;
			break;
		case 2:                                          /* Interrupt Source Override */
			CHECK_EQ(e[1], 10);
			CHECK_EQ(e[2], 0);                       /* bus ISA */
			if (novr == 0) {
				CHECK_EQ(e[3], 0);               /* IRQ 0 */
				CHECK_EQ(rd32(e + 4), 2);        /* -> GSI 2 */
				CHECK_EQ(rd16(e + 8), 0);        /* as the bus */
			} else {
				CHECK_EQ(e[3], 9);               /* IRQ 9, the SCI */
				CHECK_EQ(rd32(e + 4), 9);        /* -> GSI 9 */
				CHECK_EQ(rd16(e + 8), 0xd);      /* level (3:2 = 11), active high (1:0 = 01) */
			}
			novr++;
			break;
		case 4:                                          /* Local APIC NMI */
			CHECK_EQ(e[1], 6);
			CHECK_EQ(e[2], 0xff);                    /* all processors */
			CHECK_EQ(rd16(e + 3), 0);
			CHECK_EQ(e[5], 1);                       /* LINT1 */
			nnmi++;
			break;
		default:
			CHECK(!"unexpected MADT entry type");
		}
	}
	CHECK_EQ(off, len);                                      /* the entries fill the table exactly */
	CHECK_EQ(nlapic, c->nvcpus);
	CHECK_EQ(nioapic, c->ioapic);
	CHECK_EQ(novr, 2u * c->ioapic);
	CHECK_EQ(nnmi, 1);
}

static const uint8_t *find(const uint8_t *hay, size_t n, const void *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (!memcmp(hay + i, needle, k))
			return hay + i;
	return NULL;
}

static void check_dsdt(const uint8_t *d)
{
	uint32_t len = rd32(d + 4);
	static const uint8_t eisa_pnp0501[] = { 0x0c, 0x41, 0xd0, 0x05, 0x01 };  /* DWordConst 0x0105D041 */
	static const uint8_t io_3f8[] = { 0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03 };  /* IO Decode16 0x3F8-0x3F8 */
	static const uint8_t irq4[] = { 0x22, 0x10, 0x00 };                      /* IRQNoFlags {4} */

	CHECK_EQ(rd8(d + 8), 2);                                 /* revision 2: 64-bit integers */
	CHECK_EQ(len, 36 + (dsdt_aml_len - 36));
	CHECK(!memcmp(d, dsdt_aml, dsdt_aml_len));
	CHECK(find(d, len, "COM1", 4) != NULL);
	CHECK(find(d, len, eisa_pnp0501, sizeof(eisa_pnp0501)) != NULL);
	CHECK(find(d, len, io_3f8, sizeof(io_3f8)) != NULL);
	CHECK(find(d, len, irq4, sizeof(irq4)) != NULL);

	/* Name (\_S5, Package (4) {SLP_TYPa, ...}): "_S5_" 12 PkgLength NumElements, then SLP_TYPa as a
	 * ByteConst (0A nn), ZeroOp (00) or OneOp (01). */
	const uint8_t *s5 = find(d, len, "_S5_", 4);
	CHECK(s5 != NULL);
	if (s5 && s5 + 8 <= d + len) {
		CHECK_EQ(s5[4], 0x12);                           /* PackageOp */
		CHECK(s5[5] < 0x40);                             /* one-byte PkgLength */
		CHECK(s5[6] >= 1);
		unsigned typ = s5[7] == 0x0a ? s5[8] : s5[7] == 0x01 ? 1u : s5[7] == 0x00 ? 0u : 0xffu;
		CHECK_EQ(typ, ACPI_S5_SLP_TYP);
	}
}

/* Runs cmd (in a shell) and checks its exit status and output: no line that speaks of a problem, and
 * every string of want[] somewhere. Lines after a "Raw Table Data" dump are not read (bytes as text). */
static void check_tool(const char *cmd, const char *what, const char *const *want, unsigned nwant)
{
	char line[512];
	unsigned bad = 0, lines = 0, found[8] = { 0 };
	bool raw = false;
	FILE *p = popen(cmd, "r");

	CHECK(p != NULL);
	if (!p)
		return;
	while (fgets(line, sizeof(line), p)) {
		lines++;
		raw |= strstr(line, "Raw Table Data") != NULL;
		if (!raw && (strstr(line, "ncorrect") || strstr(line, "rror") || strstr(line, "arning") ||
			     strstr(line, "nvalid") || strstr(line, "nknown") || strstr(line, "ailure"))) {
			fprintf(stderr, "  %s: %s", what, line);
			bad++;
		}
		for (unsigned i = 0; i < nwant; i++)
			found[i] |= strstr(line, want[i]) != NULL;
	}
	CHECK_EQ(pclose(p), 0);
	CHECK_EQ(bad, 0);
	CHECK(lines > 10);
	for (unsigned i = 0; i < nwant; i++) {
		CHECK(found[i]);
		if (!found[i])
			fprintf(stderr, "  %s: no \"%s\" in its output\n", what, want[i]);
	}
}

/* With acpica-tools installed: writes each table to DIR/NAME.dat, disassembles it with `iasl -d` (the
 * RSDP excepted: iasl reads only tables with a header), then has acpiexec load FADT, MADT and DSDT
 * through ACPICA's table manager, the code Linux runs (its FADT checks, tbfadt.c), and evaluate \_S5
 * and COM1's _CRS. No warning, no error, the values the platform promises. */
static void check_acpica(const struct found *f, uint64_t rsdp_gpa, const char *tag)
{
	if (system("command -v iasl >/dev/null 2>&1 && command -v acpiexec >/dev/null 2>&1") != 0) {
		fprintf(stderr, "  (no iasl/acpiexec: acpica-tools not installed, ACPICA checks skipped)\n");
		return;
	}
	char dir[] = "/tmp/tessera-acpi-XXXXXX", cmd[512], what[64];
	CHECK(mkdtemp(dir) != NULL);
	const struct { const char *name; uint64_t gpa; } t[] = {
		{ "xsdt", rd64(at(rsdp_gpa, 36) + 24) }, { "rsdt", rd32(at(rsdp_gpa, 36) + 16) },
		{ "facp", f->fadt_gpa }, { "apic", f->madt_gpa }, { "dsdt", f->dsdt_gpa },
	};
	for (unsigned i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char path[128];
		size_t len = rd32(at(t[i].gpa, 8) + 4);
		snprintf(path, sizeof(path), "%s/%s.dat", dir, t[i].name);
		FILE *o = fopen(path, "wb");
		CHECK(o != NULL);
		if (!o)
			continue;
		CHECK_EQ(fwrite(at(t[i].gpa, len), 1, len, o), len);
		fclose(o);
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -d %s.dat >%s.log 2>&1 && cat %s.log %s.dsl",
			 dir, t[i].name, t[i].name, t[i].name, t[i].name);
		snprintf(what, sizeof(what), "iasl -d %s (%s)", t[i].name, tag);
		static const char *const decoded[] = { "decoded" }, *const parsed[] = { "Disassembly completed" };
		check_tool(cmd, what, i < 4 ? decoded : parsed, 1);
	}
	static const char *const want[] = {
		"ACPI: FACP", "ACPI: APIC", "ACPI: DSDT", "1 ACPI AML tables successfully acquired and loaded",
		"[Integer] = 0000000000000005",                         /* \_S5's SLP_TYPa */
		"47 01 F8 03 F8 03 01 08 22 10 00 79 00",               /* IO 0x3F8 x 8, IRQ 4, end tag */
	};
	_Static_assert(ACPI_S5_SLP_TYP == 5, "the acpiexec check expects SLP_TYPa 5");
	snprintf(cmd, sizeof(cmd), "cd %s && timeout 20 acpiexec -b 'evaluate \\_S5; evaluate \\_SB.COM1._CRS' "
		 "facp.dat apic.dat dsdt.dat 2>&1 </dev/null", dir);
	snprintf(what, sizeof(what), "acpiexec (%s)", tag);
	check_tool(cmd, what, want, sizeof(want) / sizeof(want[0]));
	snprintf(cmd, sizeof(cmd), getenv("KEEP") ? "echo \"  kept %s\" >&2" : "rm -rf %s", dir); /* KEEP=1: look */
	CHECK_EQ(system(cmd), 0);
}

/* acpica: also the ACPICA checks (about a second each: acpiexec sleeps as it ends). */
static void check_config(const struct acpi_config *c, uint64_t gpa, const char *tag, bool acpica)
{
	struct found f = build_and_walk(c, gpa);

	if (f.fadt)
		check_fadt(f.fadt, c);
	if (f.madt)
		check_madt(f.madt, c);
	if (f.dsdt)
		check_dsdt(f.dsdt);
	if (acpica && f.fadt && f.madt && f.dsdt)
		check_acpica(&f, scan_rsdp(), tag);
}

static void test_vcpus_1_2_16(void)
{
	static const unsigned n[] = { 1, 2, 16 };

	for (unsigned i = 0; i < 3; i++) {
		struct acpi_config c = { .nvcpus = n[i], .ioapic = true, .pic = true, .rtc = false,
					 .pm_base = ACPI_PM_BASE };
		char tag[32];
		snprintf(tag, sizeof(tag), "%u vcpus", n[i]);
		check_config(&c, AREA, tag, true);
	}
}

static void test_platform_options(void)
{
	struct acpi_config c = { .nvcpus = 4, .ioapic = false, .pic = false, .rtc = true, .pm_base = 0x600 };

	check_config(&c, AREA + 0x1000, "no ioapic, no pic, rtc", true);
	c.pm_base = 0xfff0;                                      /* the highest block that fits */
	c.ioapic = true;
	check_config(&c, ACPI_RSDP_AREA_END - ACPI_TABLES_MAX, "pm_base 0xfff0", true);
	c.nvcpus = ACPI_MAX_VCPUS;                               /* fits in ACPI_TABLES_MAX */
	check_config(&c, AREA, "255 vcpus", true);
}

/* A GPA off a 16-byte boundary: the RSDP moves up to the next one, the tables follow (the same tables
 * but their addresses: no ACPICA run). */
static void test_unaligned_gpa(void)
{
	struct acpi_config c = { .nvcpus = 2, .ioapic = true, .pic = true, .pm_base = ACPI_PM_BASE };

	for (uint64_t gpa = AREA + 0x101; gpa < AREA + 0x110; gpa += 5)
		check_config(&c, gpa, "unaligned gpa", false);
}

/* Too small a buffer, a bad vCPU count or tables above 4 GiB: 0 and nothing written past the buffer. */
static void test_refusals(void)
{
	struct acpi_config c = { .nvcpus = 16, .ioapic = true, .pic = true, .pm_base = ACPI_PM_BASE };
	uint64_t rsdp = 0;
	size_t need = acpi_build(bios, sizeof(bios), AREA, &c, &rsdp);

	CHECK(need > 0);
	for (size_t size = 0; size < need; size++) {
		uint8_t *b = malloc(size ? size : 1);            /* ASan catches a write past it */
		CHECK_EQ(acpi_build(b, size, AREA, &c, &rsdp), 0);
		free(b);
	}
	uint8_t *b = malloc(need);
	CHECK_EQ(acpi_build(b, need, AREA, &c, &rsdp), need);
	free(b);

	c.nvcpus = 0;
	CHECK_EQ(acpi_build(bios, sizeof(bios), AREA, &c, &rsdp), 0);
	c.nvcpus = ACPI_MAX_VCPUS + 1;
	CHECK_EQ(acpi_build(bios, sizeof(bios), AREA, &c, &rsdp), 0);
	c.nvcpus = 1;
	c.pm_base = 0;                                           /* a PC has its PM block */
	CHECK_EQ(acpi_build(bios, sizeof(bios), AREA, &c, &rsdp), 0);
	c.pm_base = 0xfff5;                                      /* its 12 ports past 0xFFFF */
	CHECK_EQ(acpi_build(bios, sizeof(bios), AREA, &c, &rsdp), 0);
	c.pm_base = ACPI_PM_BASE;
	CHECK(acpi_build(bios, sizeof(bios), 0x100000000ull - ACPI_TABLES_MAX, &c, &rsdp) > 0);
	CHECK_EQ(acpi_build(bios, sizeof(bios), 0x100000000ull - 16, &c, &rsdp), 0);
	CHECK_EQ(acpi_build(bios, sizeof(bios), 0x100000000ull, &c, &rsdp), 0);
	CHECK_EQ(acpi_build(bios, sizeof(bios), ~0ull - 64, &c, &rsdp), 0);
}

/* Every build's size, printed for the record. */
static void test_sizes(void)
{
	static const unsigned n[] = { 1, 2, 16, 255 };

	for (unsigned i = 0; i < 4; i++) {
		struct acpi_config c = { .nvcpus = n[i], .ioapic = true, .pic = true, .pm_base = ACPI_PM_BASE };
		uint64_t rsdp = 0;
		size_t used = acpi_build(bios, sizeof(bios), AREA, &c, &rsdp);
		fprintf(stderr, "    %3u vcpus: %zu bytes (DSDT %zu)\n", n[i], used, dsdt_aml_len);
		CHECK(used > 0 && used <= ACPI_TABLES_MAX);
	}
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_vcpus_1_2_16);
	RUN(test_platform_options);
	RUN(test_unaligned_gpa);
	RUN(test_refusals);
	RUN(test_sizes);
	return unit_report(argv[0]);
}
