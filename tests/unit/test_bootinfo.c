/* Host tests of the Multiboot2 walker: information blocks built in memory, well-formed and broken. */
#include <stdint.h>
#include <string.h>
#include "core/bootinfo.h"
#include "core/multiboot2.h"
#include "lib/errno.h"
#include "tests/unit/unit.h"

#define MBI_PHYS 0x10000ull /* where the tests pretend the block lies */

/* A block under construction: 8-byte aligned storage, tags appended with padding as GRUB does. */
static uint64_t store[8192];
static uint8_t *const blk = (uint8_t *)store;
static size_t blen;

static void mb_begin(void)
{
	memset(store, 0xcc, sizeof(store)); /* padding and unused space are garbage, not zeros */
	blen = 8;
}

/* Appends a tag of `size` bytes (header included) with `payload`; returns its offset. */
static size_t mb_tag(uint32_t type, uint32_t size, const void *payload)
{
	size_t off = blen;

	memcpy(blk + off, &type, 4);
	memcpy(blk + off + 4, &size, 4);
	if (size > 8 && payload)
		memcpy(blk + off + 8, payload, size - 8);
	blen += (size + 7) & ~7u;
	return off;
}

static void mb_end(void)
{
	uint32_t total;

	mb_tag(MB2_TAG_END, 8, NULL);
	total = (uint32_t)blen;
	memcpy(blk, &total, 4);
	memset(blk + 4, 0, 4);
}

static void set_total(uint32_t total)
{
	memcpy(blk, &total, 4);
}

static size_t mb_string(uint32_t type, const char *s)
{
	return mb_tag(type, 8 + (uint32_t)strlen(s) + 1, s);
}

static size_t mb_module(uint32_t start, uint32_t end, const char *cmdline)
{
	uint8_t p[256];
	size_t l = strlen(cmdline) + 1;

	memcpy(p, &start, 4);
	memcpy(p + 4, &end, 4);
	memcpy(p + 8, cmdline, l);
	return mb_tag(MB2_TAG_MODULE, (uint32_t)(16 + l), p);
}

/* A memory map tag with `n` entries of `entry_size` bytes (>= 24: the extra bytes are junk). */
static size_t mb_mmap(const struct mb2_mmap_entry *e, size_t n, uint32_t entry_size)
{
	static uint8_t p[8 + 200 * 40];
	size_t i;

	memcpy(p, &entry_size, 4);
	memset(p + 4, 0, 4);
	for (i = 0; i < n; i++) {
		memset(p + 8 + i * entry_size, 0xee, entry_size);
		memcpy(p + 8 + i * entry_size, &e[i], sizeof(e[i]));
	}
	return mb_tag(MB2_TAG_MMAP, (uint32_t)(16 + n * entry_size), p);
}

static struct bootinfo bi;

static void test_well_formed(void)
{
	static const struct mb2_mmap_entry map[] = {
		{ 0x0, 0x9fc00, 1, 0 },
		{ 0x9fc00, 0x400, 2, 0 },
		{ 0x100000, 0x7ee0000, 1, 0 },
		{ 0x7fe0000, 0x20000, 3, 0 },
		{ 0xfffc0000, 0x40000, 4, 0 },
		{ 0x100000000ull, 0x0, 1, 0 },       /* empty: dropped */
		{ 0x200000000ull, 0x1000, 5, 0 },
		{ 0x300000000ull, 0x1000, 12, 0 },   /* unknown type: reserved */
	};
	uint8_t rsdp1[20], rsdp2[36], efimap[8 + 48 * 5], fb[24], efi64[8];
	uint32_t v;
	size_t off_rsdp2, off_cmd, off_mod1;

	memset(rsdp1, 'R', sizeof(rsdp1));
	memset(rsdp2, 'X', sizeof(rsdp2));
	v = 48;
	memset(efimap, 0, sizeof(efimap));
	memcpy(efimap, &v, 4); /* descr_size: 48, wider than the 40-byte EFI_MEMORY_DESCRIPTOR */
	memset(fb, 0, sizeof(fb));
	{
		uint64_t addr = 0xfd000000ull;
		uint32_t pitch = 4096, width = 1024, height = 768;

		memcpy(fb, &addr, 8);
		memcpy(fb + 8, &pitch, 4);
		memcpy(fb + 12, &width, 4);
		memcpy(fb + 16, &height, 4);
		fb[20] = 32;
		fb[21] = 1;
	}
	memset(efi64, 0x11, sizeof(efi64));

	mb_begin();
	off_cmd = mb_string(MB2_TAG_CMDLINE, "loglevel=3 cpus=2");
	mb_string(MB2_TAG_LOADER_NAME, "GRUB 2.06");
	mb_tag(MB2_TAG_BASIC_MEMINFO, 16, "\x80\x02\0\0\0\0\x02\0");
	mb_mmap(map, 8, 24);
	off_mod1 = mb_module(0x800000, 0x812345, "guests/hello.elf mem=64M");
	mb_module(0x900000, 0x900000, "");
	mb_tag(MB2_TAG_ACPI_OLD, 8 + 20, rsdp1);
	off_rsdp2 = mb_tag(MB2_TAG_ACPI_NEW, 8 + 36, rsdp2);
	mb_tag(MB2_TAG_FRAMEBUFFER, 32, fb);
	mb_tag(MB2_TAG_EFI_MMAP, 16 + 48 * 5, efimap); /* 16-byte header + 5 descriptors */
	mb_tag(99, 13, "unknown tag"); /* skipped by size, padded to 16 */
	mb_end();

	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
	CHECK_EQ(unit_log[0], 0);
	CHECK_EQ(bi.mbi_start, MBI_PHYS);
	CHECK_EQ(bi.mbi_end, MBI_PHYS + blen);
	CHECK(strcmp(bi.cmdline, "loglevel=3 cpus=2") == 0);
	CHECK(bi.cmdline == (const char *)blk + off_cmd + 8); /* points into the block, not copied */
	CHECK(strcmp(bi.loader_name, "GRUB 2.06") == 0);

	CHECK_EQ(bi.nregions, 7);
	CHECK_EQ(bi.regions[0].base, 0);
	CHECK_EQ(bi.regions[0].len, 0x9fc00);
	CHECK_EQ(bi.regions[0].type, MEM_USABLE);
	CHECK_EQ(bi.regions[1].type, MEM_RESERVED);
	CHECK_EQ(bi.regions[2].base, 0x100000);
	CHECK_EQ(bi.regions[2].len, 0x7ee0000);
	CHECK_EQ(bi.regions[3].type, MEM_ACPI_RECLAIMABLE);
	CHECK_EQ(bi.regions[4].type, MEM_ACPI_NVS);
	CHECK_EQ(bi.regions[5].base, 0x200000000ull);
	CHECK_EQ(bi.regions[5].type, MEM_BAD);
	CHECK_EQ(bi.regions[6].base, 0x300000000ull);
	CHECK_EQ(bi.regions[6].type, MEM_RESERVED);

	CHECK_EQ(bi.nmodules, 2);
	CHECK_EQ(bi.modules[0].start, 0x800000);
	CHECK_EQ(bi.modules[0].end, 0x812345);
	CHECK(strcmp(bi.modules[0].cmdline, "guests/hello.elf mem=64M") == 0);
	CHECK(bi.modules[0].cmdline == (const char *)blk + off_mod1 + 16);
	CHECK_EQ(bi.modules[1].start, 0x900000);
	CHECK_EQ(bi.modules[1].end, 0x900000);
	CHECK(strcmp(bi.modules[1].cmdline, "") == 0);

	/* The new RSDP wins over the old, and its address is that of the copy inside the tag. */
	CHECK_EQ(bi.rsdp, MBI_PHYS + off_rsdp2 + 8);
	CHECK_EQ(bi.rsdp_revision, 2);

	CHECK(bi.has_framebuffer);
	CHECK_EQ(bi.fb.addr, 0xfd000000ull);
	CHECK_EQ(bi.fb.pitch, 4096);
	CHECK_EQ(bi.fb.width, 1024);
	CHECK_EQ(bi.fb.height, 768);
	CHECK_EQ(bi.fb.bpp, 32);
	CHECK_EQ(bi.fb.type, 1);

	CHECK_EQ(bi.efi_mmap_entries, 5);
	CHECK(bi.efi);
}

static void test_minimal_and_rsdp_v1(void)
{
	uint8_t rsdp1[20];
	size_t off;

	/* Only an END tag: well-formed, every field empty but the strings "". */
	mb_begin();
	mb_end();
	memset(&bi, 0x5a, sizeof(bi));
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
	CHECK(bi.cmdline && bi.cmdline[0] == 0);
	CHECK(bi.loader_name && bi.loader_name[0] == 0);
	CHECK_EQ(bi.nregions, 0);
	CHECK_EQ(bi.nmodules, 0);
	CHECK_EQ(bi.rsdp, 0);
	CHECK(!bi.has_framebuffer);
	CHECK(!bi.efi);
	CHECK_EQ(bi.efi_mmap_entries, 0);
	CHECK_EQ(bi.mbi_end, MBI_PHYS + 16);

	/* An old RSDP after a new one does not replace it; alone it gives revision 0. */
	memset(rsdp1, 'R', sizeof(rsdp1));
	mb_begin();
	off = mb_tag(MB2_TAG_ACPI_OLD, 28, rsdp1);
	mb_tag(MB2_TAG_EFI64, 16, "\1\2\3\4\5\6\7\x8");
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
	CHECK_EQ(bi.rsdp, MBI_PHYS + off + 8);
	CHECK_EQ(bi.rsdp_revision, 0);
	CHECK(bi.efi);

	mb_begin();
	off = mb_tag(MB2_TAG_ACPI_NEW, 44, NULL);
	mb_tag(MB2_TAG_ACPI_OLD, 28, rsdp1);
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
	CHECK_EQ(bi.rsdp, MBI_PHYS + off + 8);
	CHECK_EQ(bi.rsdp_revision, 2);
}

static void test_mmap_entry_size(void)
{
	struct mb2_mmap_entry map[3] = {
		{ 0x100000, 0x1000000, 1, 0 },
		{ 0x2000000, 0x3000, 2, 0 },
		{ 0x4000000, 0x5000, 1, 0 },
	};

	/* Entries 32 bytes apart (a future loader's wider entries): the walker must step by entry_size. */
	mb_begin();
	mb_mmap(map, 3, 32);
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
	CHECK_EQ(bi.nregions, 3);
	CHECK_EQ(bi.regions[1].base, 0x2000000);
	CHECK_EQ(bi.regions[1].len, 0x3000);
	CHECK_EQ(bi.regions[2].base, 0x4000000);
	CHECK_EQ(bi.regions[2].type, MEM_USABLE);

	/* An entry_size below 24 cannot hold an entry. */
	mb_begin();
	mb_mmap(map, 3, 16);
	mb_end();
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(strstr(unit_log, "hv: multiboot2: ") != NULL);
	CHECK_EQ(bi.nregions, 0);
}

static void test_truncated_total(void)
{
	uint32_t total;

	/* total_size below the header plus one tag, zero, huge. */
	static const uint32_t bad[] = { 0, 4, 8, 12, 0xffffffffu, 0x40000000u };
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		mb_begin();
		mb_end();
		set_total(bad[i]);
		unit_log_clear();
		CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
		CHECK(strstr(unit_log, "hv: multiboot2: ") != NULL);
	}

	/* total_size cut in the middle of the list: what came before the cut is kept. */
	mb_begin();
	mb_string(MB2_TAG_CMDLINE, "keep me");
	mb_module(0x800000, 0x801000, "mod");
	mb_string(MB2_TAG_LOADER_NAME, "GRUB");
	mb_end();
	memcpy(&total, blk, 4);
	set_total(total - 16); /* drops the END tag and half the loader name */
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(strcmp(bi.cmdline, "keep me") == 0);
	CHECK_EQ(bi.nmodules, 1);
	CHECK(bi.loader_name[0] == 0);
	CHECK(strstr(unit_log, "hv: multiboot2: ") != NULL);

	/* Cut exactly before END: every tag fits, but the list never ends. */
	set_total(total - 8);
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(strcmp(bi.loader_name, "GRUB") == 0);
	CHECK(strstr(unit_log, "END") != NULL);
}

static void test_tag_past_end(void)
{
	size_t off;
	uint32_t size;

	mb_begin();
	mb_string(MB2_TAG_CMDLINE, "first");
	off = mb_string(MB2_TAG_LOADER_NAME, "second");
	mb_end();
	/* The loader-name tag claims to run 4 KiB: past the block, though the memory after it exists. */
	size = 4096;
	memcpy(blk + off + 4, &size, 4);
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(strcmp(bi.cmdline, "first") == 0);
	CHECK(bi.loader_name[0] == 0);
	CHECK(strstr(unit_log, "hv: multiboot2: ") != NULL);
	CHECK(strstr(unit_log, "past") != NULL);

	/* A size so large that offset + size would wrap a 32-bit sum. */
	size = 0xfffffff8u;
	memcpy(blk + off + 4, &size, 4);
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);

	/* A tag whose size reaches exactly one byte past total_size. */
	mb_begin();
	off = mb_tag(42, 16, "12345678");
	mb_end();
	size = (uint32_t)(blen - off + 1);
	memcpy(blk + off + 4, &size, 4);
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
}

static void test_zero_size_tag(void)
{
	size_t off;
	uint32_t size = 0;

	mb_begin();
	mb_string(MB2_TAG_CMDLINE, "before");
	off = mb_tag(42, 16, "abcdefgh");
	mb_module(0x800000, 0x801000, "after");
	mb_end();
	memcpy(blk + off + 4, &size, 4);
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL); /* and it terminates: no endless loop */
	CHECK(strcmp(bi.cmdline, "before") == 0);
	CHECK_EQ(bi.nmodules, 0);
	CHECK(strstr(unit_log, "hv: multiboot2: ") != NULL);

	size = 7;
	memcpy(blk + off + 4, &size, 4);
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(strstr(unit_log, "size 7") != NULL); /* refused for its size, not by luck further on */
	/* An empty tag (header only) of a type we do not know is fine. */
	mb_begin();
	mb_tag(42, 8, NULL);
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
}

static void test_missing_end(void)
{
	uint32_t total;

	mb_begin();
	mb_string(MB2_TAG_CMDLINE, "no end");
	total = (uint32_t)blen;
	set_total(total);
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(strcmp(bi.cmdline, "no end") == 0);
	CHECK(strstr(unit_log, "hv: multiboot2: ") != NULL);
}

static void test_misaligned(void)
{
	/* The block itself must start 8-byte aligned: both the pointer and its physical address. */
	mb_begin();
	mb_string(MB2_TAG_CMDLINE, "x");
	mb_end();
	memmove(blk + 4, blk, blen);
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk + 4, MBI_PHYS + 4, &bi), -EINVAL);
	CHECK(strstr(unit_log, "aligned") != NULL);
	CHECK(bi.cmdline[0] == 0);
	memmove(blk, blk + 4, blen);
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS + 4, &bi), -EINVAL);
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
	CHECK(strcmp(bi.cmdline, "x") == 0);

	/* A tag not padded to 8 by its writer: the next tag is read at the padded place, finds garbage. */
	mb_begin();
	mb_tag(42, 12, "abcd");
	blen -= 4; /* the next tag written at offset 20, not 24 */
	mb_string(MB2_TAG_CMDLINE, "unpadded");
	mb_end();
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(bi.cmdline[0] == 0);
}

static void test_bad_strings(void)
{
	uint8_t p[160];

	/* A command line without its NUL inside the tag. */
	mb_begin();
	mb_tag(MB2_TAG_CMDLINE, 8 + 4, "abcd");
	mb_end();
	unit_log_clear();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(bi.cmdline[0] == 0);
	CHECK(strstr(unit_log, "hv: multiboot2: ") != NULL);

	/* An empty string tag (no room even for the NUL). */
	mb_begin();
	mb_tag(MB2_TAG_LOADER_NAME, 8, NULL);
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);

	/* A module tag too short for its addresses, one ending before it starts. */
	mb_begin();
	mb_tag(MB2_TAG_MODULE, 12, "abcd");
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK_EQ(bi.nmodules, 0);
	/* A module command line without its NUL inside the tag. */
	mb_begin();
	mb_tag(MB2_TAG_MODULE, 16 + 4, "\0\0\x80\0\0\0\x81\0abcd");
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK_EQ(bi.nmodules, 0);
	mb_begin();
	mb_module(0x900000, 0x800000, "backwards");
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK_EQ(bi.nmodules, 0);

	/* Tags too small for their fixed fields. */
	memset(p, 0, sizeof(p));
	mb_begin();
	mb_tag(MB2_TAG_ACPI_NEW, 8 + 20, p); /* an ACPI 1.0-sized RSDP in the 2.0 tag */
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK_EQ(bi.rsdp, 0);
	mb_begin();
	mb_tag(MB2_TAG_FRAMEBUFFER, 24, p);
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK(!bi.has_framebuffer);
	mb_begin();
	mb_tag(MB2_TAG_EFI_MMAP, 16, p); /* descr_size 0: no division by zero */
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	p[0] = 24; /* smaller than an EFI_MEMORY_DESCRIPTOR */
	mb_begin();
	mb_tag(MB2_TAG_EFI_MMAP, 16 + 48, p);
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), -EINVAL);
	CHECK_EQ(bi.efi_mmap_entries, 0);
	/* Only whole descriptors count: 2 of 48 bytes and 40 bytes of a third. */
	p[0] = 48;
	mb_begin();
	mb_tag(MB2_TAG_EFI_MMAP, 16 + 2 * 48 + 40, p);
	mb_end();
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
	CHECK_EQ(bi.efi_mmap_entries, 2);
	CHECK(bi.efi);
}

static void test_too_many(void)
{
	static struct mb2_mmap_entry map[BOOTINFO_MAX_REGIONS + 10];
	char cmd[32];
	size_t i;

	mb_begin();
	for (i = 0; i < BOOTINFO_MAX_MODULES + 5; i++) {
		snprintf(cmd, sizeof(cmd), "mod%zu", i);
		mb_module((uint32_t)(0x1000000 + i * 0x10000), (uint32_t)(0x1000000 + i * 0x10000 + 0x100), cmd);
	}
	for (i = 0; i < BOOTINFO_MAX_REGIONS + 10; i++)
		map[i] = (struct mb2_mmap_entry){ 0x100000000ull + i * 0x1000, 0x1000, 1, 0 };
	mb_mmap(map, BOOTINFO_MAX_REGIONS + 10, 24);
	mb_string(MB2_TAG_CMDLINE, "after them");
	mb_end();
	unit_log_clear();
	/* Too many is reported and the first ones kept; the list itself is well-formed. */
	CHECK_EQ(bootinfo_parse(blk, MBI_PHYS, &bi), 0);
	CHECK_EQ(bi.nmodules, BOOTINFO_MAX_MODULES);
	CHECK(strcmp(bi.modules[0].cmdline, "mod0") == 0);
	CHECK(strcmp(bi.modules[BOOTINFO_MAX_MODULES - 1].cmdline, "mod31") == 0);
	CHECK_EQ(bi.modules[BOOTINFO_MAX_MODULES - 1].start, 0x1000000 + 31 * 0x10000);
	CHECK_EQ(bi.nregions, BOOTINFO_MAX_REGIONS);
	CHECK_EQ(bi.regions[BOOTINFO_MAX_REGIONS - 1].base, 0x100000000ull + (BOOTINFO_MAX_REGIONS - 1) * 0x1000);
	CHECK(strcmp(bi.cmdline, "after them") == 0); /* the walk went on */
	CHECK(strstr(unit_log, "hv: multiboot2: more than 32 modules") != NULL);
	CHECK(strstr(unit_log, "hv: multiboot2: more than 128 memory regions") != NULL);
	/* Reported once, not once per extra module. */
	CHECK(strstr(strstr(unit_log, "32 modules") + 1, "32 modules") == NULL);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_well_formed);
	RUN(test_minimal_and_rsdp_v1);
	RUN(test_mmap_entry_size);
	RUN(test_truncated_total);
	RUN(test_tag_past_end);
	RUN(test_zero_size_tag);
	RUN(test_missing_end);
	RUN(test_misaligned);
	RUN(test_bad_strings);
	RUN(test_too_many);
	return unit_report(argv[0]);
}
