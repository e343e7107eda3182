/* Host tests of the Linux bzImage loader through loader_load_guest: a synthetic bzImage built here (setup
 * header by boot.rst's offsets), boot_params, e820, the kernel copy, command line, initrd placement,
 * the start state; refusals: old protocol, no HdrS, too big for RAM, truncated file, bad fields. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "lib/errno.h"
#include "loader/linux.h"
#include "loader/loader.h"
#include "tests/unit/fake_ram.h"
#include "tests/unit/unit.h"

#define MiB      (1ull << 20)
#define RAM      (64 * MiB)

static char why[300];


/* ------------------------------------------------------------------------------------------------
 * A synthetic bzImage as arch/x86/boot/tools/build.c lays one out: boot sector + SETUP_SECTS sectors
 * of setup (the header at 0x1f1), then syssize * 16 bytes of protected-mode kernel (a pattern here).
 * Protocol 2.15, relocatable, 2 MiB aligned, pref_address 16 MiB, init_size 32 MiB: it needs RAM up
 * to 48 MiB.
 */
#define SETUP_SECTS 4
#define PM_OFF      ((SETUP_SECTS + 1) * 512)
#define PM_SIZE     0x3000
#define IMG_MAX     (PM_OFF + PM_SIZE + 0x1000)
#define HDR_END     0x26c                       /* 2.15: through kernel_info_offset */

static uint8_t img[IMG_MAX];
static size_t img_size;

static void w8(size_t off, uint8_t v) { img[off] = v; }
static void w16(size_t off, uint16_t v) { memcpy(img + off, &v, 2); }
static void w32(size_t off, uint32_t v) { memcpy(img + off, &v, 4); }
static void w64(size_t off, uint64_t v) { memcpy(img + off, &v, 8); }
static uint16_t r16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint32_t r32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t r64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static void bzimage(void)
{
	memset(img, 0, sizeof(img));
	for (size_t i = 0; i < PM_OFF; i++)
		img[i] = (uint8_t)(i * 3 + 1);          /* boot sector and setup code: not loaded */
	memset(img + 0x1f1, 0, HDR_END - 0x1f1);
	w8(0x1f1, SETUP_SECTS);                  /* setup_sects */
	w16(0x1f2, 1);                           /* root_flags */
	w32(0x1f4, PM_SIZE / 16);                /* syssize */
	w16(0x1fa, 0xffff);                      /* vid_mode */
	w16(0x1fe, 0xaa55);                      /* boot_flag */
	w8(0x200, 0xeb);                         /* jump ... */
	w8(0x201, HDR_END - 0x202);              /* ... to the end of the header */
	memcpy(img + 0x202, "HdrS", 4);
	w16(0x206, 0x020f);                      /* version 2.15 */
	w16(0x20e, 0x1000);                      /* kernel_version */
	w8(0x211, 0x01);                         /* loadflags: LOADED_HIGH */
	w32(0x214, 0x100000);                    /* code32_start */
	w32(0x22c, 0x7fffffff);                  /* initrd_addr_max */
	w32(0x230, 0x200000);                    /* kernel_alignment */
	w8(0x234, 1);                            /* relocatable_kernel */
	w8(0x235, 21);                           /* min_alignment */
	w16(0x236, 0x3);                         /* xloadflags: KERNEL_64, CAN_BE_LOADED_ABOVE_4G */
	w32(0x238, 2047);                        /* cmdline_size */
	w32(0x248, 0x3b0);                       /* payload_offset */
	w32(0x24c, 0x2000);                      /* payload_length */
	w64(0x250, 0xdead000);                   /* setup_data: garbage the loader must not pass on */
	w64(0x258, 16 * MiB);                    /* pref_address */
	w32(0x260, 32 * MiB);                    /* init_size */
	w32(0x268, 0x2800);                      /* kernel_info_offset */
	for (size_t i = 0; i < PM_SIZE; i++)
		img[PM_OFF + i] = (uint8_t)(i * 7 + 5);
	img_size = PM_OFF + PM_SIZE;
}

static struct vcpu_state st;

static int load_rsdp(const struct loader_file *extra, unsigned n, const char *cmdline, uint64_t ram,
		     uint64_t rsdp_gpa, struct fake_ram *r)
{
	memset(why, 0, sizeof(why));
	memset(&st, 0xee, sizeof(st));
	return loader_load_guest(&(struct loader_job){
		.file = img, .size = img_size, .cmdline = cmdline, .ram = ram, .extra = extra, .nextra = n,
		.rsdp_gpa = rsdp_gpa, .write = r ? ram_write : NULL, .ctx = r, .start = &st,
		.why = why, .whylen = sizeof(why) });
}

static int load(const struct loader_file *extra, unsigned n, const char *cmdline, uint64_t ram,
		struct fake_ram *r)
{
	return load_rsdp(extra, n, cmdline, ram, 0, r);
}

#define FAILS_RAM(ram, err, phrase) do { \
	CHECK_EQ(load(NULL, 0, "console=ttyS0", (ram), NULL), (err)); \
	CHECK(strstr(why, (phrase)) != NULL); \
	if (!strstr(why, (phrase))) \
		fprintf(stderr, "    reason was: '%s'\n", why); \
} while (0)
#define FAILS(err, phrase) FAILS_RAM(RAM, err, phrase)

/* ------------------------------------------------------------------------------------------------
 * What the guest finds, read back with the offsets of boot.rst and zero-page.rst.
 */
static void check_start(void)
{
	/* boot.rst, "32-bit Boot Protocol". */
	CHECK_EQ(st.rip, 0x100000);
	CHECK_EQ(st.rsi, LOADER_ZERO_PAGE_GPA);
	CHECK_EQ(st.rbp, 0);
	CHECK_EQ(st.rdi, 0);
	CHECK_EQ(st.rbx, 0);
	CHECK_EQ(st.cr0, 0x11);            /* protected mode, paging off */
	CHECK_EQ(st.cr4, 0);
	CHECK_EQ(st.efer, 0);
	CHECK_EQ(st.rflags, 0x2);          /* interrupts off */
	CHECK_EQ(st.cs.sel, 0x10);
	CHECK_EQ(st.cs.ar, AR_CODE32);
	CHECK_EQ(st.cs.base, 0);
	CHECK_EQ(st.cs.limit, 0xffffffff);
	CHECK_EQ(st.ds.sel, 0x18);
	CHECK_EQ(st.es.sel, 0x18);
	CHECK_EQ(st.ss.sel, 0x18);
	CHECK_EQ(st.ds.ar, AR_DATA32);
	CHECK_EQ(st.ss.limit, 0xffffffff);
	CHECK_EQ(st.gdtr_base, LOADER_GDT_GPA);
	CHECK_EQ(st.gdtr_limit, 31);
	CHECK_EQ(st.tr.ar, AR_TSS32_BUSY);
}

/* The GDT: 0x10 flat execute/read code, 0x18 flat read/write data, as the start state's caches say. */
static void check_gdt(const struct fake_ram *r)
{
	const uint8_t *g = r->mem + LOADER_GDT_GPA;
	uint64_t code = r64(g + 0x10), data = r64(g + 0x18);

	CHECK_EQ(r64(g), 0);
	CHECK_EQ(r64(g + 8), 0);
	CHECK_EQ(code & 0xffff, 0xffff);                         /* limit 15:0 */
	CHECK_EQ((code >> 48) & 0xf, 0xf);                       /* limit 19:16 */
	CHECK_EQ((code >> 16) & 0xffffff, 0);                    /* base 23:0 */
	CHECK_EQ(code >> 56, 0);                                 /* base 31:24 */
	CHECK_EQ((code >> 40) & 0xff, st.cs.ar & 0xff);          /* type, S, DPL, P */
	CHECK_EQ((code >> 52) & 0xf, (st.cs.ar >> 12) & 0xf);    /* AVL, L, D, G */
	CHECK_EQ((data >> 40) & 0xff, st.ds.ar & 0xff);
	CHECK_EQ((data >> 52) & 0xf, (st.ds.ar >> 12) & 0xf);
	CHECK_EQ(data & 0xffff, 0xffff);
}

struct want {
	uint64_t ram, initrd, initrd_size, rsdp;
	const char *cmdline;
};

static void check_boot_params(const struct fake_ram *r, const struct want *w)
{
	const uint8_t *bp = r->mem + LOADER_ZERO_PAGE_GPA;
	uint64_t e820[3][3] = { { 0, 0x9fc00, 1 }, { 0x9fc00, 0x60400, 2 }, { MiB, w->ram - MiB, 1 } };

	/* The setup header, copied: every byte as in the file but the ones a loader writes. */
	for (size_t off = 0x1f1; off < HDR_END; off++) {
		if (off == 0x210 || off == 0x211 || (off >= 0x214 && off < 0x220) || (off >= 0x224 && off < 0x22c) ||
		    (off >= 0x250 && off < 0x258))
			continue;
		if (bp[off] != img[off]) {
			CHECK_EQ(off, ~0ull);
			break;
		}
	}
	CHECK_EQ(bp[0x210], 0xff);                      /* type_of_loader */
	CHECK_EQ(bp[0x211], 0x81);                      /* loadflags: LOADED_HIGH | CAN_USE_HEAP */
	CHECK_EQ(r16(bp + 0x224), 0xe000 - 0x200);      /* heap_end_ptr */
	CHECK_EQ(r32(bp + 0x214), 0x100000);            /* code32_start */
	CHECK_EQ(r32(bp + 0x218), w->initrd);           /* ramdisk_image */
	CHECK_EQ(r32(bp + 0x21c), w->initrd_size);      /* ramdisk_size */
	CHECK_EQ(r32(bp + 0x228), LOADER_CMDLINE_GPA);  /* cmd_line_ptr */
	CHECK_EQ(r32(bp + 0x220), 0);                   /* bootsect_kludge */
	CHECK_EQ(r64(bp + 0x250), 0);                   /* setup_data */
	CHECK_EQ(r64(bp + 0x070), w->rsdp);             /* acpi_rsdp_addr */
	CHECK_EQ(bp[0x1e8], 3);                         /* e820_entries */
	for (unsigned i = 0; i < 3; i++) {
		const uint8_t *e = bp + 0x2d0 + 20 * i;

		CHECK_EQ(r64(e), e820[i][0]);
		CHECK_EQ(r64(e + 8), e820[i][1]);
		CHECK_EQ(r32(e + 16), e820[i][2]);
	}
	/* Everything else zero: before the header, between it and the table, after the table. */
	for (size_t off = 0; off < 4096; off++) {
		if (off == 0x1e8 || (off >= 0x1f1 && off < HDR_END) || (off >= 0x2d0 && off < 0x2d0 + 60) ||
		    (off >= 0x70 && off < 0x78))
			continue;
		if (bp[off]) {
			CHECK_EQ(off, ~0ull);
			break;
		}
	}
	CHECK_EQ(strcmp((const char *)r->mem + LOADER_CMDLINE_GPA, w->cmdline), 0);
}

/* Nothing written outside the GDT, command line, boot_params, kernel and initrd. */
static void check_nothing_else(const struct fake_ram *r, const struct want *w)
{
	uint64_t cl_end = LOADER_CMDLINE_GPA + strlen(w->cmdline) + 1;

	CHECK_EQ(first_nonzero(r, 0, LOADER_GDT_GPA), LOADER_GDT_GPA);
	CHECK_EQ(first_nonzero(r, LOADER_GDT_GPA + 32, LOADER_CMDLINE_GPA), LOADER_CMDLINE_GPA);
	CHECK_EQ(first_nonzero(r, cl_end, LOADER_ZERO_PAGE_GPA), LOADER_ZERO_PAGE_GPA);
	CHECK_EQ(first_nonzero(r, LOADER_ZERO_PAGE_GPA + 4096, 0x100000), 0x100000);
	CHECK_EQ(first_nonzero(r, 0x100000 + PM_SIZE, w->initrd_size ? w->initrd : r->size),
		 w->initrd_size ? w->initrd : r->size);
	if (w->initrd_size)
		CHECK_EQ(first_nonzero(r, w->initrd + w->initrd_size, r->size), r->size);
}

/* ------------------------------------------------------------------------------------------------ */

static void test_basic(void)
{
	struct fake_ram r;
	struct want w = { RAM, 0, 0, 0, "console=ttyS0 quiet" };

	bzimage();
	ram_init(&r, RAM);
	CHECK_EQ(load(NULL, 0, w.cmdline, RAM, &r), 0);
	CHECK(strstr(why, "Linux bzImage, boot protocol 2.15, 64-bit, kernel 0x3000 bytes at 0x100000") != NULL);
	CHECK(strstr(why, "runs at 0x1000000") != NULL);
	check_start();
	check_gdt(&r);
	check_boot_params(&r, &w);
	CHECK_EQ(memcmp(r.mem + 0x100000, img + PM_OFF, PM_SIZE), 0);
	check_nothing_else(&r, &w);
	CHECK_EQ(r.calls, 4);        /* GDT, command line, boot_params, kernel */
	free(r.mem);

	/* With the RSDP's address and no command line. */
	ram_init(&r, RAM);
	w.rsdp = 0xe0000;
	w.cmdline = "";
	CHECK_EQ(load_rsdp(NULL, 0, NULL, RAM, 0xe0000, &r), 0);
	check_boot_params(&r, &w);
	free(r.mem);
}

static void test_initrd(void)
{
	static const char part2[] = "second cpio";
	uint8_t *part1 = malloc(0x2345);
	struct loader_file ex[2] = { { part1, 0x2345, "initrd.gz" }, { part2, sizeof(part2), NULL } };
	struct want w = { RAM, 0, 0, 0, "rdinit=/init" };
	struct fake_ram r;

	for (unsigned i = 0; i < 0x2345; i++)
		part1[i] = (uint8_t)(i * 11 + 7);
	bzimage();
	/* One file: as high as RAM allows, page aligned. */
	ram_init(&r, RAM);
	CHECK_EQ(load(ex, 1, w.cmdline, RAM, &r), 0);
	w.initrd_size = 0x2345;
	w.initrd = (RAM - 0x2345) & ~0xfffull;
	check_boot_params(&r, &w);
	CHECK_EQ(memcmp(r.mem + w.initrd, part1, 0x2345), 0);
	check_nothing_else(&r, &w);
	check_start();
	free(r.mem);

	/* Two files: concatenated, the second 4-byte aligned (0x2348). */
	ram_init(&r, RAM);
	CHECK_EQ(load(ex, 2, w.cmdline, RAM, &r), 0);
	w.initrd_size = 0x2348 + sizeof(part2);
	w.initrd = (RAM - w.initrd_size) & ~0xfffull;
	check_boot_params(&r, &w);
	CHECK_EQ(memcmp(r.mem + w.initrd, part1, 0x2345), 0);
	CHECK_EQ(memcmp(r.mem + w.initrd + 0x2348, part2, sizeof(part2)), 0);
	check_nothing_else(&r, &w);
	free(r.mem);

	/* initrd_addr_max below RAM's end: the initrd ends by it (the highest byte it may occupy). */
	w32(0x22c, 0x37ffffff);
	CHECK_EQ(load(ex, 1, "", 2048 * MiB, NULL), 0);
	CHECK(strstr(why, "initrd 0x2345 bytes at 0x37ffd000") != NULL);
	w32(0x22c, 48 * MiB + 0x2344);          /* the initrd fits exactly above the kernel's 48 MiB */
	CHECK_EQ(load(ex, 1, "", RAM, NULL), 0);
	CHECK(strstr(why, "at 0x3000000") != NULL);
	w32(0x22c, 48 * MiB + 0x2343);          /* one byte short */
	CHECK_EQ(load(ex, 1, "", RAM, NULL), -EFAULT);
	CHECK(strstr(why, "initrd (0x2345 bytes) does not fit") != NULL);
	bzimage();
	/* Too big for what RAM leaves above the kernel (48 MiB). */
	ex[0].size = 16 * MiB + 1;
	ex[0].data = calloc(1, ex[0].size);
	CHECK_EQ(load(ex, 1, "", RAM, NULL), -EFAULT);
	CHECK(strstr(why, "does not fit") != NULL);
	ex[0].size = 16 * MiB;
	CHECK_EQ(load(ex, 1, "", RAM, NULL), 0);
	free((void *)ex[0].data);
	/* Empty files give no initrd. */
	ex[0].size = 0;
	ex[0].data = NULL;
	CHECK_EQ(load(ex, 1, "", RAM, NULL), 0);
	CHECK(strstr(why, "initrd 0x0 bytes at 0x0") != NULL);
	free(part1);
}

/* Writes that must stay below the hole at 3 GiB (gmem/layout.h), into a fake RAM. */
static int low_write(void *ctx, uint64_t gpa, const void *src, uint64_t len)
{
	CHECK(gpa < (3ull << 30) && len <= (3ull << 30) - gpa);
	return ram_write(ctx, gpa, src, len);
}

/* A 5 GiB guest: e820 lists RAM to 3 GiB and the other 2 GiB from 4 GiB, not the hole between (the
 * I/O APIC, the local APIC); the initrd goes to the top of RAM below the hole, even for a kernel that
 * would take it up to 4 GiB. */
static void test_big_guest(void)
{
	static const uint64_t e820[4][3] = { { 0, 0x9fc00, 1 }, { 0x9fc00, 0x60400, 2 },
					     { MiB, (3ull << 30) - MiB, 1 }, { 4ull << 30, 2ull << 30, 1 } };
	static const char initrd[] = "cpio";
	struct loader_file ex = { initrd, sizeof(initrd), NULL };
	struct fake_ram r;
	const uint8_t *bp;

	bzimage();
	w32(0x22c, 0xffffffff);                   /* initrd_addr_max: anywhere below 4 GiB */
	memset(&r, 0, sizeof(r));
	r.size = 5ull << 30;                      /* sparse: only what is written costs memory */
	r.mem = mmap(NULL, r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK(r.mem != MAP_FAILED);
	if (r.mem == MAP_FAILED)
		return;
	memset(why, 0, sizeof(why));
	CHECK_EQ(loader_load_guest(&(struct loader_job){
		.file = img, .size = img_size, .cmdline = "", .ram = r.size, .extra = &ex, .nextra = 1,
		.write = low_write, .ctx = &r, .start = &st, .why = why, .whylen = sizeof(why) }), 0);
	bp = r.mem + LOADER_ZERO_PAGE_GPA;
	CHECK_EQ(bp[0x1e8], 4);                   /* e820_entries */
	for (unsigned i = 0; i < 4; i++) {
		const uint8_t *e = bp + 0x2d0 + 20 * i;

		CHECK_EQ(r64(e), e820[i][0]);
		CHECK_EQ(r64(e + 8), e820[i][1]);
		CHECK_EQ(r32(e + 16), e820[i][2]);
	}
	CHECK_EQ(r32(bp + 0x218), (3ull << 30) - 0x1000);   /* ramdisk_image: below the hole */
	CHECK_EQ(memcmp(r.mem + (3ull << 30) - 0x1000, initrd, sizeof(initrd)), 0);
	munmap(r.mem, r.size);
	bzimage();
}

static void test_placement(void)
{
	/* Exactly enough RAM for pref_address + init_size; one page less is refused. */
	bzimage();
	CHECK_EQ(load(NULL, 0, "", 48 * MiB, NULL), 0);
	FAILS_RAM(48 * MiB - 4096, -EFAULT, "needs RAM up to 0x3000000");
	/* Relocatable, 4 MiB aligned, pref_address lower than that: runs at align_up(1 MiB) = 4 MiB. */
	w32(0x230, 4 * MiB);
	w64(0x258, 2 * MiB);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK(strstr(why, "runs at 0x400000, needs to 0x2400000") != NULL);
	/* Not relocatable: it runs at pref_address whatever the alignment. */
	bzimage();
	w8(0x234, 0);
	w64(0x258, 20 * MiB);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK(strstr(why, "runs at 0x1400000") != NULL);
	FAILS_RAM(52 * MiB - 1, -EFAULT, "not relocatable");
	w64(0x258, 0x90000);
	FAILS(-EFAULT, "below 1 MiB");
	/* A kernel whose compressed image is bigger than what it needs to run (init_size small). */
	bzimage();
	w32(0x260, 0x1000);
	w64(0x258, 1 * MiB);
	w32(0x230, 0x1000);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK(strstr(why, "needs to 0x103000") != NULL);
	/* Protocol 2.06: no pref_address or init_size; header to 0x23c. */
	bzimage();
	w16(0x206, 0x0206);
	w8(0x201, 0x23c - 0x202);
	memset(img + 0x23c, 0, HDR_END - 0x23c);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK(strstr(why, "boot protocol 2.06") != NULL);
	CHECK(strstr(why, "runs at 0x200000") != NULL);   /* align_up(1 MiB, 2 MiB) */
	/* Above 4 GiB: refused even with the RAM for it. */
	bzimage();
	w8(0x234, 0);
	w64(0x258, 1ull << 32);
	FAILS_RAM(8192 * MiB, -EFAULT, "4 GiB");
}

/*
 * Protocols 2.03 to 2.05 (GRUB's `linux` takes 2.03 and up): the header ends earlier, nothing is
 * relocatable before 2.05, syssize is 16 bits before 2.04 (ignored: the file's length counts), the
 * command line is at most 255 bytes before 2.06, and without init_size (before 2.10) the initrd stays
 * above GRUB's estimate of the decompressed kernel, three times the file.
 */
static void test_old_protocols(void)
{
	char line[300];
	struct fake_ram r;

	memset(line, 'x', sizeof(line));
	for (uint16_t v = 0x0203; v <= 0x0205; v++) {
		bzimage();
		w16(0x206, v);
		w8(0x201, (v == 0x0205 ? 0x235 : 0x230) - 0x202);
		memset(img + (v == 0x0205 ? 0x235 : 0x230), 0, HDR_END - (v == 0x0205 ? 0x235 : 0x230));
		w8(0x234, v < 0x0205);                   /* relocatable_kernel: read from 2.05 on only */
		if (v == 0x0203)
			w32(0x1f4, 0);                   /* syssize: not read before 2.04 */
		ram_init(&r, RAM);
		r.disjoint = true;
		line[255] = 0;
		CHECK_EQ(load(NULL, 0, line, RAM, &r), 0);
		CHECK_EQ(memcmp(r.mem + 0x100000, img + PM_OFF, PM_SIZE), 0);
		CHECK(strstr(why, "runs at 0x100000, needs to 0x109000") != NULL);   /* 1 MiB + 3 x 0x3000 */
		check_start();
		free(r.mem);
		line[255] = 'x';
		line[256] = 0;
		CHECK_EQ(load(NULL, 0, line, RAM, NULL), -EINVAL);
		CHECK(strstr(why, "at most 255") != NULL);
		/* A header that stops before initrd_addr_max (or relocatable_kernel for 2.05). */
		w8(0x201, (v == 0x0205 ? 0x234 : 0x22f) - 0x202);
		FAILS(-ENOEXEC, "Linux setup header ends at");
	}
	/* 2.05 relocatable: kernel_alignment counts (2 MiB here). */
	bzimage();
	w16(0x206, 0x0205);
	w8(0x201, 0x235 - 0x202);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK(strstr(why, "runs at 0x200000") != NULL);
}

static void test_cmdline(void)
{
	char line[5000];

	bzimage();
	memset(line, 'x', sizeof(line));
	line[2047] = 0;
	CHECK_EQ(load(NULL, 0, line, RAM, NULL), 0);
	line[2047] = 'x';
	line[2048] = 0;
	CHECK_EQ(load(NULL, 0, line, RAM, NULL), -EINVAL);
	CHECK(strstr(why, "command line is 2048 bytes; the kernel takes at most 2047") != NULL);
	/* A kernel taking more than our 4 KiB page: the page is the limit. */
	w32(0x238, 100000);
	line[2048] = 'x';
	line[4095] = 0;
	CHECK_EQ(load(NULL, 0, line, RAM, NULL), 0);
	line[4095] = 'x';
	line[4096] = 0;
	CHECK_EQ(load(NULL, 0, line, RAM, NULL), -EINVAL);
	CHECK(strstr(why, "at most 4095") != NULL);
}

static void test_refusals(void)
{
	/* Not a bzImage at all. */
	bzimage();
	memcpy(img + 0x202, "HdrT", 4);
	FAILS(-ENOEXEC, "no Linux setup header (\"HdrS\" at 0x202)");
	/* Too old for the 32-bit boot protocol (GRUB's `linux`: "version too old for 32-bit boot"). */
	bzimage();
	w16(0x206, 0x0202);
	FAILS(-ENOEXEC, "Linux boot protocol 2.02 is older than 2.03");
	w16(0x206, 0x0104);
	FAILS(-ENOEXEC, "protocol 1.04");
	/* boot_flag, jump, header length. */
	bzimage();
	w16(0x1fe, 0x55aa);
	FAILS(-ENOEXEC, "boot_flag");
	bzimage();
	w8(0x200, 0xe9);
	FAILS(-ENOEXEC, "jump 0xe9");
	bzimage();
	w8(0x201, 0x260 - 0x202);               /* 2.15 needs init_size, to 0x264 */
	FAILS(-ENOEXEC, "Linux setup header ends at 0x260");
	w8(0x201, 0x291 - 0x202);               /* past boot_params' room */
	FAILS(-ENOEXEC, "ends at 0x291");
	/* zImage. */
	bzimage();
	w8(0x211, 0);
	FAILS(-ENOEXEC, "zImage");
	/* syssize 0; kernel_alignment not a power of two (relocatable only). */
	bzimage();
	w32(0x1f4, 0);
	FAILS(-ENOEXEC, "syssize is 0");
	bzimage();
	w32(0x230, 0x300000);
	FAILS(-ENOEXEC, "kernel_alignment 0x300000");
	w32(0x230, 0);
	FAILS(-ENOEXEC, "kernel_alignment 0x0");
	w8(0x234, 0);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	/* Too big for RAM: a 2.15 kernel needs pref_address + init_size. */
	bzimage();
	FAILS_RAM(32 * MiB, -EFAULT, "Linux kernel needs RAM up to 0x3000000");
	w32(0x260, 0x7ffff000);
	FAILS_RAM(2048 * MiB, -EFAULT, "needs RAM up to 0x80fff000");
	/* setup_sects 0 means 4. */
	bzimage();
	w8(0x1f1, 0);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	/* Too little RAM for the boot information. */
	CHECK_EQ(load(NULL, 0, "", 0x4000, NULL), -EFAULT);
}

static void test_truncated(void)
{
	/* syssize counts 16-byte paragraphs, rounded up: a file ending 1 to 15 bytes before syssize * 16
	 * is whole (a real 2.12 bzImage is like that; GRUB and QEMU load what the file has). Its bytes
	 * load, nothing after them. 16 bytes short is a cut file. */
	for (size_t short_by = 1; short_by < 16; short_by++) {
		struct fake_ram r;
		struct want w = { RAM, 0, 0, 0, "" };

		bzimage();
		img_size = PM_OFF + PM_SIZE - short_by;
		ram_init(&r, RAM);
		r.disjoint = true;
		CHECK_EQ(load(NULL, 0, "", RAM, &r), 0);
		CHECK_EQ(memcmp(r.mem + 0x100000, img + PM_OFF, PM_SIZE - short_by), 0);
		CHECK_EQ(first_nonzero(&r, 0x100000 + PM_SIZE - short_by, RAM), RAM);
		check_nothing_else(&r, &w);
		check_start();
		free(r.mem);
	}
	bzimage();
	img_size = PM_OFF + PM_SIZE - 16;
	FAILS(-ENOEXEC, "truncated: syssize says 0x3000 bytes of kernel from offset 0xa00, the file has 14832 bytes");
	img_size = PM_OFF + PM_SIZE - 1;
	w32(0x1f4, PM_SIZE / 16 + 1);            /* syssize one paragraph more: 17 bytes short */
	FAILS(-ENOEXEC, "truncated: syssize says 0x3010 bytes");
	bzimage();
	img_size = PM_OFF;
	FAILS(-ENOEXEC, "truncated: its setup code (4 sectors)");
	img_size = 0x300;
	FAILS(-ENOEXEC, "truncated: its setup code");
	img_size = HDR_END - 1;
	FAILS(-ENOEXEC, "runs past the end of the file");
	img_size = 0x207;
	FAILS(-ENOEXEC, "setup header is truncated");
	img_size = 0x205;                        /* "HdrS" cut: nothing we know */
	FAILS(-ENOEXEC, "not a kernel we can boot");
	/* Bytes after syssize's end (a signature) are not loaded. */
	img_size = PM_OFF + PM_SIZE + 0x100;
	memset(img + PM_OFF + PM_SIZE, 0x77, 0x100);
	{
		struct fake_ram r;
		struct want w = { RAM, 0, 0, 0, "" };

		ram_init(&r, RAM);
		CHECK_EQ(load(NULL, 0, "", RAM, &r), 0);
		check_nothing_else(&r, &w);
		free(r.mem);
	}
}

static void test_write_errors(void)
{
	struct fake_ram r;
	static const char rd[] = "initrd";
	struct loader_file ex = { rd, sizeof(rd), NULL };

	bzimage();
	/* A check-only run writes nothing and still gives the start state. */
	CHECK_EQ(load(&ex, 1, "", RAM, NULL), 0);
	check_start();
	for (unsigned at = 1; at <= 5; at++) {
		ram_init(&r, RAM);
		r.fail_with = -ENOMEM;
		r.fail_at = at;
		CHECK_EQ(load(&ex, 1, "", RAM, &r), -ENOMEM);
		CHECK_EQ(r.calls, at);
		CHECK(strstr(why, "cannot write") != NULL);
		free(r.mem);
	}
	/* Caller mistakes: too many files, a file without data, an RSDP copy that is none. */
	{
		struct loader_file many[LOADER_MAX_FILES + 1] = { { 0 } };
		static const uint8_t notrsdp[36];

		CHECK_EQ(load(many, LOADER_MAX_FILES + 1, "", RAM, NULL), -EINVAL);
		many[0].size = 1;
		CHECK_EQ(load(many, 1, "", RAM, NULL), -EINVAL);
		CHECK_EQ(loader_load_guest(&(struct loader_job){
			.file = img, .size = img_size, .cmdline = "", .ram = RAM, .rsdp = notrsdp,
			.rsdp_len = sizeof(notrsdp), .start = &st, .why = why, .whylen = sizeof(why) }), -EINVAL);
		CHECK(strstr(why, "not an RSDP") != NULL);
	}
}

/* Truncations and random damage to the setup header: a reason or a load inside RAM, never a crash. */
static void test_damage(void)
{
	struct fake_ram r;
	static uint8_t copy[IMG_MAX];
	static const char rd[] = "initrd bytes";
	struct loader_file ex = { rd, sizeof(rd), NULL };
	size_t size;
	unsigned ok = 0;

	bzimage();
	size = img_size;
	memcpy(copy, img, size);
	ram_init(&r, RAM);
	r.disjoint = true;
	for (size_t cut = 0; cut <= size; cut += cut < 0x300 ? 1 : 97) {
		uint8_t *d = malloc(cut ? cut : 1);
		int err;

		memcpy(d, copy, cut);
		ram_forget(&r);
		err = loader_load_guest(&(struct loader_job){
			.file = d, .size = cut, .cmdline = "c", .ram = RAM, .extra = &ex, .nextra = 1,
			.write = ram_write, .ctx = &r, .start = &st, .why = why, .whylen = sizeof(why) });
		CHECK(err == 0 ? cut > PM_OFF + PM_SIZE - 16 : why[0] != 0);
		free(d);
	}
	srand(777);
	for (int round = 0; round < 6000; round++) {
		uint8_t *d = malloc(size);
		int err;

		memcpy(d, copy, size);
		for (int k = 0; k < 1 + round % 4; k++)
			d[0x1f1 + (size_t)rand() % (HDR_END - 0x1f1)] = (uint8_t)rand();
		ram_forget(&r);
		err = loader_load_guest(&(struct loader_job){
			.file = d, .size = size, .cmdline = "c", .ram = RAM, .extra = &ex, .nextra = 1,
			.write = ram_write, .ctx = &r, .start = &st, .why = why, .whylen = sizeof(why) });
		if (err == 0) {
			ok++;
			CHECK_EQ(st.rsi, LOADER_ZERO_PAGE_GPA);
		} else {
			CHECK(why[0] != 0);
			CHECK(err == -ENOEXEC || err == -EFAULT || err == -EINVAL);
		}
		free(d);
	}
	CHECK(ok > 0);
	free(r.mem);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_basic);
	RUN(test_initrd);
	RUN(test_big_guest);
	RUN(test_placement);
	RUN(test_old_protocols);
	RUN(test_cmdline);
	RUN(test_refusals);
	RUN(test_truncated);
	RUN(test_write_errors);
	RUN(test_damage);
	return unit_report(argv[0]);
}
