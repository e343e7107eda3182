/* Host tests of the Multiboot1 loader through loader_load_guest: a synthetic ELF kernel and an a.out-kludge
 * image, their memory, the information block, modules, the start state; malformed headers. */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/errno.h"
#include "loader/loader.h"
#include "loader/mb1.h"
#include "loader/multiboot2.h"
#include "tests/unit/fake_ram.h"
#include "tests/unit/unit.h"

#define MiB      (1ull << 20)
#define RAM      (16 * MiB)

static char why[200];

/* The 32-bit word at guest-physical gpa. */
static uint32_t u32at(const struct fake_ram *r, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, r->mem + gpa, 4);
	return v;
}

/* ------------------------------------------------------------------------------------------------
 * Synthetic images. ELF: header at 0, program headers at PH_OFF, the Multiboot header at MB_OFF,
 * segment bytes at DATA_OFF (0x100 file bytes, 0x200 in memory at 1 MiB, entry 0x100010).
 * a.out kludge: no ELF, the header at KL_HDR; the whole file (KL_SIZE bytes) loads at 1 MiB, bss to
 * 0x101800, entry 0x100040.
 */
#define PH_OFF   0x40
#define MB_OFF   0x100
#define DATA_OFF 0x1000
#define IMG_MAX  0x6000
#define KL_HDR   0x20
#define KL_SIZE  0x400

static uint64_t store[IMG_MAX / 8];
static uint8_t *const img = (uint8_t *)store;
static size_t img_size;

static void put_mb1(size_t at, uint32_t flags, const uint32_t *addr /* 5 words or NULL */)
{
	uint32_t h[8] = { MB1_HEADER_MAGIC, flags, -(MB1_HEADER_MAGIC + flags) };

	if (addr)
		memcpy(h + 3, addr, 20);
	memcpy(img + at, h, addr ? 32 : 12);
}

static void elf_image(int elf64, uint32_t flags)
{
	memset(store, 0, sizeof(store));
	if (elf64) {
		Elf64_Ehdr h = { .e_type = ET_EXEC, .e_machine = EM_X86_64, .e_version = EV_CURRENT,
				 .e_entry = 0x100010, .e_phoff = PH_OFF, .e_ehsize = sizeof(h),
				 .e_phentsize = sizeof(Elf64_Phdr), .e_phnum = 1 };
		Elf64_Phdr p = { PT_LOAD, PF_R | PF_X, DATA_OFF, 0x100000, 0x100000, 0x100, 0x200, 0x1000 };

		memcpy(h.e_ident, ELFMAG, SELFMAG);
		h.e_ident[EI_CLASS] = ELFCLASS64;
		h.e_ident[EI_DATA] = ELFDATA2LSB;
		h.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(img, &h, sizeof(h));
		memcpy(img + PH_OFF, &p, sizeof(p));
	} else {
		Elf32_Ehdr h = { .e_type = ET_EXEC, .e_machine = EM_386, .e_version = EV_CURRENT,
				 .e_entry = 0x100010, .e_phoff = PH_OFF, .e_ehsize = sizeof(h),
				 .e_phentsize = sizeof(Elf32_Phdr), .e_phnum = 1 };
		Elf32_Phdr p = { PT_LOAD, DATA_OFF, 0x100000, 0x100000, 0x100, 0x200, PF_R | PF_X, 0x1000 };

		memcpy(h.e_ident, ELFMAG, SELFMAG);
		h.e_ident[EI_CLASS] = ELFCLASS32;
		h.e_ident[EI_DATA] = ELFDATA2LSB;
		h.e_ident[EI_VERSION] = EV_CURRENT;
		memcpy(img, &h, sizeof(h));
		memcpy(img + PH_OFF, &p, sizeof(p));
	}
	for (unsigned i = 0; i < 0x100; i++)
		img[DATA_OFF + i] = (uint8_t)(i * 7 + 3);
	put_mb1(MB_OFF, flags, NULL);
	img_size = DATA_OFF + 0x100;
}

static void set_phdr32(uint32_t paddr, uint32_t memsz)
{
	Elf32_Phdr p = { PT_LOAD, DATA_OFF, paddr, paddr, 0x100, memsz, PF_R | PF_X, 0x1000 };
	Elf32_Ehdr h;

	memcpy(img + PH_OFF, &p, sizeof(p));
	memcpy(&h, img, sizeof(h));
	h.e_entry = paddr + 0x10;
	memcpy(img, &h, sizeof(h));
}

/* header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr */
static uint32_t kl[5];

static void kludge_image(void)
{
	memset(store, 0, sizeof(store));
	for (unsigned i = 0; i < KL_SIZE; i++)
		img[i] = (uint8_t)(i * 13 + 1);
	kl[0] = 0x100000 + KL_HDR;
	kl[1] = 0x100000;
	kl[2] = 0x100000 + KL_SIZE;
	kl[3] = 0x101800;
	kl[4] = 0x100040;
	put_mb1(KL_HDR, MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO | MB1_HF_AOUT_KLUDGE, kl);
	img_size = KL_SIZE;
}

static void kludge_set(void)
{
	put_mb1(KL_HDR, MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO | MB1_HF_AOUT_KLUDGE, kl);
}

static struct vcpu_state st;

static int load(const struct loader_file *extra, unsigned n, const char *cmdline, uint64_t ram,
		struct fake_ram *r)
{
	memset(why, 0, sizeof(why));
	memset(&st, 0xee, sizeof(st));
	return loader_load_guest(&(struct loader_job){
		.file = img, .size = img_size, .cmdline = cmdline, .ram = ram, .extra = extra, .nextra = n,
		.write = r ? ram_write : NULL, .ctx = r, .start = &st, .why = why, .whylen = sizeof(why) });
}

/* Expects a load (check-only) to fail with err and a reason containing `phrase`. */
#define FAILS(err, phrase) do { \
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), (err)); \
	CHECK(strstr(why, (phrase)) != NULL); \
	if (!strstr(why, (phrase))) \
		fprintf(stderr, "    reason was: '%s'\n", why); \
} while (0)

/* ------------------------------------------------------------------------------------------------
 * The information block, read back from guest memory with the spec's offsets (3.3).
 */
static void check_info(const struct fake_ram *r, uint64_t ram, const char *cmdline, unsigned nmods,
		       const uint64_t *mod_start, const uint64_t *mod_size, const char *const *mod_str)
{
	uint64_t b = st.rbx;           /* where the loader put the block (check_start says where that must be) */
	uint32_t flags = u32at(r, b), mmap = u32at(r, b + 48), mlen = u32at(r, b + 44);
	uint64_t want[3][3] = { { 0, 0x9fc00, 1 }, { 0x9fc00, 0x60400, 2 }, { MiB, ram - MiB, 1 } };

	CHECK_EQ(flags, MB1_INFO_MEMORY | MB1_INFO_CMDLINE | MB1_INFO_MEM_MAP | MB1_INFO_LOADER_NAME |
		 (nmods ? MB1_INFO_MODS : 0));
	CHECK_EQ(u32at(r, b + 4), 639);
	CHECK_EQ(u32at(r, b + 8), (ram - MiB) / 1024);
	CHECK_EQ(u32at(r, b + 12), 0);                        /* boot_device: not given */
	CHECK_EQ(strcmp((char *)r->mem + u32at(r, b + 16), cmdline), 0);
	CHECK_EQ(strcmp((char *)r->mem + u32at(r, b + 64), "tessera"), 0);
	CHECK_EQ(u32at(r, b + 20), nmods);
	if (!nmods)
		CHECK_EQ(u32at(r, b + 24), 0);
	/* The memory map: 24-byte entries whose size field (20) comes first. */
	CHECK_EQ(mlen, 3 * 24);
	CHECK(mmap >= b && mmap + mlen <= b + LOADER_INFO_MAX);
	for (unsigned i = 0; i < 3 && mlen == 72; i++) {
		uint64_t base, len;

		CHECK_EQ(u32at(r, mmap + 24 * i), 20);
		memcpy(&base, r->mem + mmap + 24 * i + 4, 8);
		memcpy(&len, r->mem + mmap + 24 * i + 12, 8);
		CHECK_EQ(base, want[i][0]);
		CHECK_EQ(len, want[i][1]);
		CHECK_EQ(u32at(r, mmap + 24 * i + 20), want[i][2]);
	}
	/* Modules: 16-byte entries, [mod_start, mod_end), a string, zero. */
	for (unsigned i = 0; i < nmods; i++) {
		uint64_t m = u32at(r, b + 24) + 16 * i;

		CHECK_EQ(u32at(r, m), mod_start[i]);
		CHECK_EQ(u32at(r, m + 4), mod_start[i] + mod_size[i]);
		CHECK_EQ(strcmp((char *)r->mem + u32at(r, m + 8), mod_str[i]), 0);
		CHECK_EQ(u32at(r, m + 12), 0);
	}
	/* Everything the block points at lies in its page. */
	CHECK(u32at(r, b + 16) >= b && u32at(r, b + 16) < b + LOADER_INFO_MAX);
	CHECK(u32at(r, b + 64) >= b && u32at(r, b + 64) < b + LOADER_INFO_MAX);
}

static void check_start(uint64_t entry)
{
	CHECK_EQ(st.rip, entry);
	CHECK_EQ(st.rax, MB1_BOOTLOADER_MAGIC);
	CHECK_EQ(st.rbx, LOADER_INFO_GPA);
	CHECK_EQ(st.cr0, 0x11);        /* PE, ET: paging off */
	CHECK_EQ(st.rflags, 0x2);      /* IF = 0 */
	CHECK_EQ(st.cs.ar, AR_CODE32);
	CHECK_EQ(st.cs.base, 0);
	CHECK_EQ(st.cs.limit, 0xffffffff);
	CHECK_EQ(st.ds.ar, AR_DATA32);
	CHECK_EQ(st.ss.ar, AR_DATA32);
	CHECK_EQ(st.es.limit, 0xffffffff);
	CHECK_EQ(st.cr4, 0);
	CHECK_EQ(st.efer, 0);
	CHECK_EQ(st.tr.ar, AR_TSS32_BUSY);
}

/* ------------------------------------------------------------------------------------------------ */

static void test_elf(void)
{
	for (int elf64 = 0; elf64 <= 1; elf64++) {
		struct fake_ram r;

		elf_image(elf64, MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO);
		ram_init(&r, RAM);
		CHECK_EQ(load(NULL, 0, "root=/dev/x quiet", RAM, &r), 0);
		CHECK(strstr(why, elf64 ? "Multiboot1 ELF64" : "Multiboot1 ELF32") != NULL);
		CHECK_EQ(memcmp(r.mem + 0x100000, img + DATA_OFF, 0x100), 0);
		CHECK_EQ(first_nonzero(&r, 0x100100, RAM), RAM);    /* bss and the rest zero */
		CHECK_EQ(first_nonzero(&r, 0, LOADER_INFO_GPA), LOADER_INFO_GPA);
		CHECK_EQ(first_nonzero(&r, LOADER_INFO_END, 0x100000), 0x100000);
		check_info(&r, RAM, "root=/dev/x quiet", 0, NULL, NULL, NULL);
		check_start(0x100010);
		CHECK_EQ(r.calls, 2);   /* the segment, the block */
		free(r.mem);
	}
}

static void test_kludge(void)
{
	struct fake_ram r;

	kludge_image();
	ram_init(&r, RAM);
	CHECK_EQ(load(NULL, 0, NULL, RAM, &r), 0);
	CHECK(strstr(why, "a.out-kludge") != NULL);
	CHECK_EQ(memcmp(r.mem + 0x100000, img, KL_SIZE), 0);   /* from the file's start: header at 0x20 */
	CHECK_EQ(first_nonzero(&r, 0x100000 + KL_SIZE, RAM), RAM);
	check_info(&r, RAM, "", 0, NULL, NULL, NULL);
	check_start(0x100040);
	free(r.mem);

	/* The load starts inside the file: header at 0x20, header_addr - load_addr = 0x10. */
	kludge_image();
	kl[1] = 0x100010;
	kl[2] = 0x100010 + 0x200;
	kludge_set();
	ram_init(&r, RAM);
	CHECK_EQ(load(NULL, 0, "", RAM, &r), 0);
	CHECK_EQ(memcmp(r.mem + 0x100010, img + 0x10, 0x200), 0);
	CHECK_EQ(first_nonzero(&r, 0x100010 + 0x200, RAM), RAM);
	CHECK_EQ(first_nonzero(&r, LOADER_INFO_END, 0x100010), 0x100010);
	free(r.mem);

	/* load_end_addr 0: the whole file from load_addr's offset; bss_end_addr 0: no bss. */
	kludge_image();
	kl[2] = 0;
	kl[3] = 0;
	kludge_set();
	ram_init(&r, RAM);
	CHECK_EQ(load(NULL, 0, "", RAM, &r), 0);
	CHECK_EQ(memcmp(r.mem + 0x100000, img, KL_SIZE), 0);
	free(r.mem);

	/* An ELF file with flags[16]: the address fields win over the program headers (3.1.2). */
	elf_image(0, MB1_HF_AOUT_KLUDGE);
	{
		uint32_t a[5] = { 0x200000 + MB_OFF, 0x200000, 0x200000 + 0x800, 0x201000, 0x200000 + MB_OFF + 12 };

		put_mb1(MB_OFF, MB1_HF_AOUT_KLUDGE, a);
	}
	ram_init(&r, RAM);
	CHECK_EQ(load(NULL, 0, "", RAM, &r), 0);
	CHECK_EQ(memcmp(r.mem + 0x200000, img, 0x800), 0);
	CHECK_EQ(first_nonzero(&r, 0x100000, 0x200000), 0x200000);   /* nothing at the ELF paddr */
	CHECK_EQ(st.rip, 0x200000 + MB_OFF + 12);
	free(r.mem);
}

static void test_modules(void)
{
	static const char m1[] = "first module bytes", m2[] = "second";
	uint8_t *big = malloc(0x3001);
	struct loader_file ex[3] = { { m1, sizeof(m1), "mod1 arg=1" }, { big, 0x3001, NULL },
				     { m2, sizeof(m2), "m2" } };
	uint64_t start[3], size[3] = { sizeof(m1), 0x3001, sizeof(m2) };
	const char *strs[3] = { "mod1 arg=1", "", "m2" };
	struct fake_ram r;

	for (unsigned i = 0; i < 0x3001; i++)
		big[i] = (uint8_t)(i ^ 0x5a);
	/* a.out kludge image ending (bss) at 0x101800: modules from 0x102000, each page aligned. */
	kludge_image();
	ram_init(&r, RAM);
	CHECK_EQ(load(ex, 3, "k", RAM, &r), 0);
	start[0] = 0x102000;
	start[1] = 0x103000;
	start[2] = 0x107000;
	check_info(&r, RAM, "k", 3, start, size, strs);
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(memcmp(r.mem + start[i], ex[i].data, ex[i].size), 0);
	CHECK(strstr(why, "3 modules") != NULL);
	free(r.mem);

	/* An ELF kernel low in memory: a module that would reach into the reserved area goes to 1 MiB. */
	elf_image(0, MB1_HF_PAGE_ALIGN);
	set_phdr32(0x90000, 0x1000);
	ram_init(&r, RAM);
	CHECK_EQ(load(ex, 3, "", RAM, &r), 0);
	{
		uint64_t m0 = u32at(&r, u32at(&r, LOADER_INFO_GPA + 24));
		uint64_t m1s = u32at(&r, u32at(&r, LOADER_INFO_GPA + 24) + 16);

		CHECK_EQ(m0, 0x91000);
		CHECK_EQ(m1s, 0x92000);
	}
	free(r.mem);
	set_phdr32(0x9c000, 0x1000);
	ram_init(&r, RAM);
	CHECK_EQ(load(ex, 3, "", RAM, &r), 0);
	{
		uint64_t list = u32at(&r, LOADER_INFO_GPA + 24);

		CHECK_EQ(u32at(&r, list), 0x9d000);           /* fits below 0x9fc00 */
		CHECK_EQ(u32at(&r, list + 16), 0x100000);     /* 0x9e000 + 0x3001 would not */
		CHECK_EQ(u32at(&r, list + 32), 0x104000);
		CHECK_EQ(memcmp(r.mem + 0x100000, big, 0x3001), 0);
	}
	CHECK_EQ(first_nonzero(&r, 0x9fc00, 0x100000), 0x100000);
	free(r.mem);

	/* Modules that do not fit in RAM. */
	kludge_image();
	ex[1].size = RAM;
	CHECK_EQ(load(ex, 3, "", RAM, NULL), -EFAULT);
	CHECK(strstr(why, "module 2") != NULL);
	ex[1].size = 0x3001;
	/* Just fits: the last module ends at RAM's end. */
	ex[2].size = RAM - 0x107000;
	ex[2].data = calloc(1, ex[2].size);
	CHECK_EQ(load(ex, 3, "", RAM, NULL), 0);
	ex[2].size++;
	CHECK_EQ(load(ex, 3, "", RAM, NULL), -EFAULT);
	free((void *)ex[2].data);
	free(big);
}

/* Check-only runs write nothing; a write error stops the load and comes back. */
static void test_dry_run_and_errors(void)
{
	struct fake_ram r;

	kludge_image();
	CHECK_EQ(load(NULL, 0, "x", RAM, NULL), 0);
	check_start(0x100040);
	for (unsigned at = 1; at <= 2; at++) {
		ram_init(&r, RAM);
		r.fail_with = -ENOMEM;
		r.fail_at = at;
		CHECK_EQ(load(NULL, 0, "x", RAM, &r), -ENOMEM);
		CHECK(strstr(why, "cannot write") != NULL);
		CHECK_EQ(r.calls, at);
		free(r.mem);
	}
	elf_image(1, 0);
	ram_init(&r, RAM);
	r.fail_with = -ENOMEM;
	r.fail_at = 1;
	CHECK_EQ(load(NULL, 0, "x", RAM, &r), -ENOMEM);
	free(r.mem);
	/* A command line too long for the 4 KiB block. */
	{
		char *longline = malloc(5000);

		memset(longline, 'a', 4999);
		longline[4999] = 0;
		CHECK_EQ(load(NULL, 0, longline, RAM, NULL), -EINVAL);
		CHECK(strstr(why, "does not fit") != NULL);
		longline[3800] = 0;
		CHECK_EQ(load(NULL, 0, longline, RAM, NULL), 0);
		free(longline);
	}
}

static void test_header(void)
{
	uint32_t w;

	/* No header at all (an ELF without either Multiboot header). */
	elf_image(0, 0);
	memset(img + MB_OFF, 0, 12);
	FAILS(-ENOEXEC, "not a kernel we can boot");
	/* Beyond the first 8 KiB. */
	elf_image(0, 0);
	memset(img + MB_OFF, 0, 12);
	put_mb1(0x2000, 0, NULL);
	img_size = 0x2100;
	FAILS(-ENOEXEC, "not a kernel we can boot");
	/* Ending exactly at 8 KiB is fine; not 4-aligned is no header. */
	elf_image(0, 0);
	memset(img + MB_OFF, 0, 12);
	put_mb1(0x2000 - 12, 0, NULL);
	img_size = 0x2100;
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	elf_image(0, 0);
	memmove(img + MB_OFF + 2, img + MB_OFF, 12);
	memset(img + MB_OFF, 0, 2);
	FAILS(-ENOEXEC, "not a kernel we can boot");
	/* Bad checksum. */
	elf_image(0, 0);
	memcpy(&w, img + MB_OFF + 8, 4);
	w++;
	memcpy(img + MB_OFF + 8, &w, 4);
	FAILS(-ENOEXEC, "Multiboot header checksum is wrong");
	/* A video mode (bit 2), an unknown requirement (bit 5): refused; an unknown optional bit: fine. */
	elf_image(0, MB1_HF_VIDEO);
	{
		uint32_t v[12] = { MB1_HEADER_MAGIC, MB1_HF_VIDEO, -(MB1_HEADER_MAGIC + MB1_HF_VIDEO),
				   0, 0, 0, 0, 0, 1, 80, 25, 0 };

		memcpy(img + MB_OFF, v, sizeof(v));
	}
	FAILS(-ENODEV, "video mode");
	elf_image(0, 1u << 5);
	FAILS(-ENODEV, "flags 0x20");
	elf_image(0, 1u << 20);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	/* Not ELF and no address fields. */
	kludge_image();
	put_mb1(KL_HDR, MB1_HF_MEMINFO, NULL);
	FAILS(-ENOEXEC, "not ELF");
	/* The address fields run past the end of the file. */
	kludge_image();
	img_size = KL_HDR + 20;
	FAILS(-ENOEXEC, "runs past the end of the file");
	/* A bad ELF behind a good header: the ELF's reason. */
	elf_image(0, 0);
	img[EI_CLASS] = 9;
	FAILS(-ENOEXEC, "ELF class 9");
}

static void test_kludge_fields(void)
{
	kludge_image();
	kl[1] = kl[0] + 4;                       /* load_addr above header_addr */
	kludge_set();
	FAILS(-ENOEXEC, "above header_addr");
	kludge_image();
	kl[1] = kl[0] - KL_HDR - 0x10;           /* would start before the file */
	kludge_set();
	FAILS(-ENOEXEC, "before the header");
	kludge_image();
	kl[2] = kl[1] + KL_SIZE + 1;             /* one byte more than the file has */
	kludge_set();
	FAILS(-ENOEXEC, "load_end_addr");
	kludge_image();
	kl[2] = kl[1] - 1;
	kludge_set();
	FAILS(-ENOEXEC, "below load_addr");
	kludge_image();
	kl[3] = kl[2] - 1;                       /* bss ending inside the loaded part */
	kludge_set();
	FAILS(-ENOEXEC, "bss_end_addr");
	kludge_image();
	kl[4] = kl[3];                           /* entry one past the end */
	kludge_set();
	FAILS(-EFAULT, "entry_addr");
	kl[4] = kl[1] - 1;
	kludge_set();
	FAILS(-EFAULT, "entry_addr");
	kl[4] = kl[3] - 1;                       /* in the bss: still the image */
	kludge_set();
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	/* Placement: too big for RAM, exactly fitting, into the reserved area, over the boot information. */
	kludge_image();
	kl[3] = RAM + 1;
	kludge_set();
	FAILS(-EFAULT, "outside its RAM");
	kl[3] = RAM;
	kludge_set();
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	kludge_image();
	kl[0] = 0x9f900 + KL_HDR;
	kl[1] = 0x9f900;                         /* [0x9f900, 0x9fd00): into the EBDA */
	kl[2] = 0;
	kl[3] = 0;
	kl[4] = 0x9f900;
	kludge_set();
	FAILS(-EFAULT, "reserved area");
	kl[0] = 0x9f000 - 0x400 + KL_HDR;
	kl[1] = 0x9f000 - 0x400;
	kl[4] = kl[1];
	kludge_set();
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);       /* ends at 0x9f000: below the EBDA */
	/* Where the block usually goes ([0x8800, 0x8c00) meets the page at 0x8000): the block moves to
	 * the lowest free page, 0x1000 (GRUB puts it wherever its relocator finds room). */
	kl[0] = 0x8800 + KL_HDR;
	kl[1] = 0x8800;
	kl[4] = 0x8800;
	kludge_set();
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK_EQ(st.rbx, 0x1000);
	kl[0] = 0xf00 + KL_HDR;
	kl[1] = 0xf00;
	kl[4] = 0xf00;
	kludge_set();
	FAILS(-EFAULT, "load_addr 0xf00 is below 0x1000");
	/* load_end == load_addr and no bss: nothing to load. */
	kludge_image();
	kl[2] = kl[1];
	kl[3] = 0;
	kludge_set();
	FAILS(-ENOEXEC, "load nothing");
	/* ... but a pure-bss image is fine. */
	kl[3] = kl[1] + 0x1000;
	kl[4] = kl[1];
	kludge_set();
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
}

static void test_elf_placement(void)
{
	elf_image(0, 0);
	set_phdr32(0x9f000, 0x1000);
	FAILS(-EFAULT, "reserved area");
	set_phdr32(0xf00, 0x200);
	FAILS(-EFAULT, "segment at GPA 0xf00 is below 0x1000");
	set_phdr32(RAM - 0x100, 0x200);
	FAILS(-EFAULT, "outside its RAM");
	set_phdr32(0x9000, 0x200);
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK_EQ(st.rip, 0x9010);
	/* Too little RAM for even the boot information. */
	CHECK_EQ(load(NULL, 0, "", 0x8000, NULL), -EFAULT);
	CHECK(strstr(why, "boot information") != NULL);
}

/*
 * A kernel whose segments cover where the information block usually goes (a test kernel linked at
 * 0x8000 for `qemu -kernel`, which puts its own block at 0x9000): the block goes to the lowest free
 * page-aligned place, clear of the image and the modules, and the image's bytes stay as loaded.
 */
static void test_info_placement(void)
{
	static const char m1[] = "first module bytes", m2[] = "second";
	uint8_t *big = calloc(1, 0x3001);
	struct loader_file ex[3] = { { m1, sizeof(m1), "mod1 arg=1" }, { big, 0x3001, NULL },
				     { m2, sizeof(m2), "m2" } };
	const char *strs[3] = { "mod1 arg=1", "", "m2" };
	uint64_t start[3], size[3] = { sizeof(m1), 0x3001, sizeof(m2) };
	struct fake_ram r;

	for (int elf64 = 0; elf64 <= 1; elf64++) {
		/* Linked at 0x8000 (0x100 file bytes, 0x200 in memory): the block at 0x1000. */
		elf_image(elf64, MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO);
		if (elf64) {
			Elf64_Phdr p = { PT_LOAD, PF_R | PF_X, DATA_OFF, 0x8000, 0x8000, 0x100, 0x200, 0x1000 };
			Elf64_Ehdr h;

			memcpy(img + PH_OFF, &p, sizeof(p));
			memcpy(&h, img, sizeof(h));
			h.e_entry = 0x8010;
			memcpy(img, &h, sizeof(h));
		} else {
			set_phdr32(0x8000, 0x200);
		}
		ram_init(&r, RAM);
		r.disjoint = true;
		CHECK_EQ(load(NULL, 0, "at 0x8000", RAM, &r), 0);
		CHECK(strstr(why, "information at 0x1000") != NULL);
		CHECK_EQ(st.rbx, 0x1000);
		CHECK_EQ(st.rip, 0x8010);
		CHECK_EQ(memcmp(r.mem + 0x8000, img + DATA_OFF, 0x100), 0);   /* the kernel's bytes, intact */
		CHECK_EQ(first_nonzero(&r, 0x8100, 0x9000), 0x9000);           /* its bss still zero */
		check_info(&r, RAM, "at 0x8000", 0, NULL, NULL, NULL);
		CHECK_EQ(first_nonzero(&r, 0x2000, 0x8000), 0x8000);
		CHECK_EQ(first_nonzero(&r, 0x9000, RAM), RAM);
		free(r.mem);
	}

	/* The a.out kludge at 0x8000 too (the block's page), modules after it. */
	kludge_image();
	kl[0] = 0x8000 + KL_HDR;
	kl[1] = 0x8000;
	kl[2] = 0x8000 + KL_SIZE;
	kl[3] = 0x9800;
	kl[4] = 0x8040;
	kludge_set();
	ram_init(&r, RAM);
	r.disjoint = true;
	CHECK_EQ(load(ex, 3, "k", RAM, &r), 0);
	CHECK_EQ(st.rbx, 0x1000);
	CHECK_EQ(memcmp(r.mem + 0x8000, img, KL_SIZE), 0);
	start[0] = 0xa000;
	start[1] = 0xb000;
	start[2] = 0xf000;
	check_info(&r, RAM, "k", 3, start, size, strs);
	free(r.mem);

	/* Low memory all image ([0x1000, 0x9f000)): the block goes to 1 MiB; with the modules there
	 * too, after the last of them. */
	elf_image(0, 0);
	set_phdr32(0x1000, 0x9e000);
	ram_init(&r, RAM);
	r.disjoint = true;
	CHECK_EQ(load(NULL, 0, "", RAM, &r), 0);
	CHECK_EQ(st.rbx, 0x100000);
	check_info(&r, RAM, "", 0, NULL, NULL, NULL);
	free(r.mem);
	ram_init(&r, RAM);
	r.disjoint = true;
	CHECK_EQ(load(ex, 3, "", RAM, &r), 0);
	start[0] = 0x9f000;                       /* fits below the EBDA */
	start[1] = 0x100000;
	start[2] = 0x104000;
	check_info(&r, RAM, "", 3, start, size, strs);
	CHECK_EQ(st.rbx, 0x105000);
	free(r.mem);

	/* No room at all: RAM ends where the image does. */
	set_phdr32(0x1000, 0x8000);
	CHECK_EQ(load(NULL, 0, "", 0x9000, NULL), -EFAULT);
	CHECK(strstr(why, "no room for the Multiboot information") != NULL);
	free(big);
}

/* With both headers, Multiboot2 wins (as GRUB's multiboot2 command): EAX tells which. */
static void test_both_headers(void)
{
	uint32_t h2[6] = { MB2_HEADER_MAGIC, 0, 24, -(MB2_HEADER_MAGIC + 24), 0, 8 };

	elf_image(0, 0);
	memcpy(img + 0x200, h2, sizeof(h2));
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK_EQ(st.rax, MB2_BOOTLOADER_MAGIC);
	CHECK(strstr(why, "Multiboot2") != NULL);
	/* A Multiboot2 magic with a bad checksum beside a good Multiboot1 header: Multiboot1. */
	h2[3]++;
	memcpy(img + 0x200, h2, sizeof(h2));
	CHECK_EQ(load(NULL, 0, "", RAM, NULL), 0);
	CHECK_EQ(st.rax, MB1_BOOTLOADER_MAGIC);
	/* Both broken: the Multiboot2 reason. */
	img[MB_OFF + 8]++;
	FAILS(-ENOEXEC, "Multiboot2 header checksum is wrong");
}

/* The block builder alone: sizes, every too-small buffer refused without writing past it. */
static void test_build_info(void)
{
	static uint8_t buf[4096];
	struct loader_module mods[2] = { { 0x200000, 0x200010, "a" }, { 0x201000, 0x201001, "bb" } };
	size_t need = mb1_build_info(buf, sizeof(buf), 0x8000, "cmd", "tessera", 32 * MiB, mods, 2);

	CHECK_EQ(need, 120 + 3 * 24 + 2 * 16 + 4 + 8 + 2 + 3);
	for (size_t sz = 0; sz < need; sz++) {
		memset(buf, 0xaa, sizeof(buf));
		CHECK_EQ(mb1_build_info(buf, sz, 0x8000, "cmd", "tessera", 32 * MiB, mods, 2), 0);
		for (size_t b = sz; b < sizeof(buf); b++)
			if (buf[b] != 0xaa) {
				CHECK_EQ(b, ~0ull);
				break;
			}
	}
	CHECK_EQ(mb1_build_info(buf, need, 0x8000, "cmd", "tessera", 32 * MiB, mods, 2), need);
	/* Small RAM: mem_upper 0, a one-entry map; pointers must be 32-bit. */
	CHECK(mb1_build_info(buf, sizeof(buf), 0x8000, NULL, NULL, 512 * 1024, NULL, 0) == 120 + 24 + 2);
	CHECK_EQ(buf[8], 0);
	CHECK_EQ(mb1_build_info(buf, sizeof(buf), 1ull << 32, "", "", MiB, NULL, 0), 0);
	CHECK_EQ(mb1_build_info(NULL, 4096, 0x8000, "", "", MiB, NULL, 0), 0);
}

/* Truncations and random damage: an error with a reason or a load inside RAM, never a crash. */
static void test_damage(void)
{
	struct fake_ram r;
	static uint8_t copy[IMG_MAX];
	static const char mod[] = "module";
	struct loader_file ex = { mod, sizeof(mod), "m" };

	ram_init(&r, RAM);
	r.disjoint = true;
	for (int kind = 0; kind < 3; kind++) {
		size_t size;

		if (kind == 2)
			kludge_image();
		else
			elf_image(kind, MB1_HF_PAGE_ALIGN | MB1_HF_MEMINFO);
		size = img_size;
		memcpy(copy, img, size);
		for (size_t cut = 0; cut < size; cut++) {
			int err;

			ram_forget(&r);
			err = loader_load_guest(&(struct loader_job){
				.file = copy, .size = cut, .cmdline = "c", .ram = RAM, .extra = &ex, .nextra = 1,
				.write = ram_write, .ctx = &r, .start = &st, .why = why, .whylen = sizeof(why) });

			CHECK(err == 0 || why[0] != 0);
		}
		srand(4242 + kind);
		for (int round = 0; round < 4000; round++) {
			uint8_t *d = malloc(size);
			int err;

			memcpy(d, copy, size);
			for (int k = 0; k < 1 + round % 4; k++) {
				size_t at = (size_t)rand() % (kind == 2 ? 0x60 : 0x180);

				d[at] = (uint8_t)rand();
			}
			ram_forget(&r);
			err = loader_load_guest(&(struct loader_job){
				.file = d, .size = size, .cmdline = "c", .ram = RAM, .extra = &ex, .nextra = 1,
				.write = ram_write, .ctx = &r, .start = &st, .why = why, .whylen = sizeof(why) });
			/* Loaded: the block in a page of usable RAM of its own (ram_write checked it met
			 * nothing else written). */
			CHECK(err == 0 ? st.rbx % 4096 == 0 && st.rbx >= 0x1000 : why[0] != 0);
			CHECK(err == 0 || err == -ENOEXEC || err == -ENODEV || err == -EFAULT);
			free(d);
		}
	}
	free(r.mem);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_elf);
	RUN(test_kludge);
	RUN(test_modules);
	RUN(test_dry_run_and_errors);
	RUN(test_header);
	RUN(test_kludge_fields);
	RUN(test_elf_placement);
	RUN(test_info_placement);
	RUN(test_both_headers);
	RUN(test_build_info);
	RUN(test_damage);
	return unit_report(argv[0]);
}
