/* Host tests of the guest loader: the real guest ELFs, synthetic broken images, segment copy, boot info. */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "loader/loader.h"
#include "loader/mb2.h"
#include "loader/multiboot2.h"
#include "lib/errno.h"
#include "tests/unit/fake_ram.h"
#include "tests/unit/unit.h"

#define MiB      (1ull << 20)
#define RAM      (16 * MiB)
#define RESERVED 0x10000ull   /* what the tests pretend the boot information area is */

static char why[160];

/* ------------------------------------------------------------------------------------------------
 * Synthetic images: ELF header at 0, program headers at PH_OFF, the Multiboot2 header at MB_OFF,
 * segment bytes from DATA_OFF. 8-byte aligned storage, like a module GRUB loads.
 */
#define PH_OFF   0x40
#define MB_OFF   0x400
#define DATA_OFF 0x1000
#define IMG_MAX  0xa000

static uint64_t store[IMG_MAX / 8];
static uint8_t *const img = (uint8_t *)store;
static size_t img_size;
static int img_elf64;

static void put_ehdr(int elf64, uint16_t machine, uint16_t phnum, uint64_t entry)
{
	img_elf64 = elf64;
	if (elf64) {
		Elf64_Ehdr h = { 0 };

		memcpy(h.e_ident, ELFMAG, SELFMAG);
		h.e_ident[EI_CLASS] = ELFCLASS64;
		h.e_ident[EI_DATA] = ELFDATA2LSB;
		h.e_ident[EI_VERSION] = EV_CURRENT;
		h.e_type = ET_EXEC;
		h.e_machine = machine;
		h.e_version = EV_CURRENT;
		h.e_entry = entry;
		h.e_phoff = PH_OFF;
		h.e_ehsize = sizeof(h);
		h.e_phentsize = sizeof(Elf64_Phdr);
		h.e_phnum = phnum;
		memcpy(img, &h, sizeof(h));
	} else {
		Elf32_Ehdr h = { 0 };

		memcpy(h.e_ident, ELFMAG, SELFMAG);
		h.e_ident[EI_CLASS] = ELFCLASS32;
		h.e_ident[EI_DATA] = ELFDATA2LSB;
		h.e_ident[EI_VERSION] = EV_CURRENT;
		h.e_type = ET_EXEC;
		h.e_machine = machine;
		h.e_version = EV_CURRENT;
		h.e_entry = (uint32_t)entry;
		h.e_phoff = PH_OFF;
		h.e_ehsize = sizeof(h);
		h.e_phentsize = sizeof(Elf32_Phdr);
		h.e_phnum = phnum;
		memcpy(img, &h, sizeof(h));
	}
}

static void put_phdr(unsigned i, uint32_t type, uint64_t off, uint64_t vaddr, uint64_t paddr,
		     uint64_t filesz, uint64_t memsz)
{
	if (img_elf64) {
		Elf64_Phdr p = { type, PF_R | PF_W | PF_X, off, vaddr, paddr, filesz, memsz, 0x1000 };

		memcpy(img + PH_OFF + i * sizeof(p), &p, sizeof(p));
	} else {
		Elf32_Phdr p = { type, (uint32_t)off, (uint32_t)vaddr, (uint32_t)paddr, (uint32_t)filesz,
				 (uint32_t)memsz, PF_R | PF_W | PF_X, 0x1000 };

		memcpy(img + PH_OFF + i * sizeof(p), &p, sizeof(p));
	}
}

/* Header tags under construction, appended after the 16 fixed bytes; mb_finish closes and sums. */
static size_t mb_at, mb_len;

static void mb_begin(size_t at)
{
	mb_at = at;
	mb_len = 16;
}

static void mb_tag(uint16_t type, uint16_t flags, uint32_t size, const void *payload)
{
	uint8_t *t = img + mb_at + mb_len;

	memcpy(t, &type, 2);
	memcpy(t + 2, &flags, 2);
	memcpy(t + 4, &size, 4);
	if (size > 8 && payload)
		memcpy(t + 8, payload, size - 8);
	mb_len += (size + 7) & ~7u;
}

static void mb_finish_arch(uint32_t arch)
{
	uint32_t h[4];

	mb_tag(0, 0, 8, NULL);
	h[0] = MB2_HEADER_MAGIC;
	h[1] = arch;
	h[2] = (uint32_t)mb_len;
	h[3] = -(h[0] + h[1] + h[2]);
	memcpy(img + mb_at, h, sizeof(h));
}

static void mb_finish(void)
{
	mb_finish_arch(0);
}

/*
 * The base case every broken image starts from: one PT_LOAD of 0x100 file bytes (a pattern) and
 * 0x200 bytes in memory at 1 MiB, entry 0x100010, a header with only the end tag.
 */
static void base(int elf64)
{
	memset(store, 0, sizeof(store));
	put_ehdr(elf64, elf64 ? EM_X86_64 : EM_386, 1, 0x100010);
	put_phdr(0, PT_LOAD, DATA_OFF, 0x100000, 0x100000, 0x100, 0x200);
	for (unsigned i = 0; i < 0x100; i++)
		img[DATA_OFF + i] = (uint8_t)(i * 7 + 3);
	mb_begin(MB_OFF);
	mb_finish();
	img_size = DATA_OFF + 0x100;
}

static int check(void)
{
	struct guest_image gi;

	memset(why, 0, sizeof(why));
	return loader_check(img, img_size, RAM, RESERVED, &gi, why, sizeof(why));
}

/* Expects loader_check to fail with err and a reason containing `phrase`. */
#define CHECK_FAILS(err, phrase) do { \
	CHECK_EQ(check(), (err)); \
	CHECK(strstr(why, (phrase)) != NULL); \
	if (!strstr(why, (phrase))) \
		fprintf(stderr, "    reason was: '%s'\n", why); \
} while (0)

/* ------------------------------------------------------------------------------------------------
 * Real guests from `make guests`, read from disk; their expectations come from the host's <elf.h>.
 */
static uint8_t *read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	*size = (size_t)n;
	return buf;
}

/* A PT_LOAD as the host's <elf.h> reads it, for both classes. */
struct hseg {
	uint64_t off, vaddr, paddr, filesz, memsz;
};

static unsigned host_segs(const uint8_t *f, struct hseg *s, uint64_t *entry)
{
	unsigned n = 0;

	if (f[EI_CLASS] == ELFCLASS64) {
		const Elf64_Ehdr *h = (const void *)f;

		*entry = h->e_entry;
		for (unsigned i = 0; i < h->e_phnum; i++) {
			const Elf64_Phdr *p = (const void *)(f + h->e_phoff + i * sizeof(*p));

			if (p->p_type == PT_LOAD && p->p_memsz)
				s[n++] = (struct hseg){ p->p_offset, p->p_vaddr, p->p_paddr, p->p_filesz, p->p_memsz };
		}
	} else {
		const Elf32_Ehdr *h = (const void *)f;

		*entry = h->e_entry;
		for (unsigned i = 0; i < h->e_phnum; i++) {
			const Elf32_Phdr *p = (const void *)(f + h->e_phoff + i * sizeof(*p));

			if (p->p_type == PT_LOAD && p->p_memsz)
				s[n++] = (struct hseg){ p->p_offset, p->p_vaddr, p->p_paddr, p->p_filesz, p->p_memsz };
		}
	}
	return n;
}

static void check_real(const char *path, int want_elf64)
{
	struct guest_image gi;
	struct hseg segs[16];
	struct fake_ram r = { 0 };
	uint64_t entry = 0, lo = UINT64_MAX, hi = 0, want_entry = 0;
	unsigned n, writes = 0;
	size_t size = 0;
	uint8_t *f = read_file(path, &size), *copy;

	CHECK(f != NULL);
	if (!f) {
		fprintf(stderr, "    cannot read %s: run `make guests` first (from the repo root)\n", path);
		return;
	}
	n = host_segs(f, segs, &entry);
	CHECK(n >= 1);
	for (unsigned i = 0; i < n; i++) {
		if (segs[i].paddr < lo)
			lo = segs[i].paddr;
		if (segs[i].paddr + segs[i].memsz > hi)
			hi = segs[i].paddr + segs[i].memsz;
		if (entry >= segs[i].vaddr && entry < segs[i].vaddr + segs[i].memsz)
			want_entry = segs[i].paddr + (entry - segs[i].vaddr);
		writes += segs[i].filesz != 0;
	}

	CHECK_EQ(loader_check(f, size, RAM, RESERVED, &gi, why, sizeof(why)), 0);
	CHECK_EQ(why[0], 0);
	CHECK_EQ(gi.elf64, want_elf64);
	CHECK_EQ(gi.nsegments, n);
	CHECK_EQ(gi.lo, lo);
	CHECK_EQ(gi.hi, hi);
	CHECK_EQ(gi.entry, want_entry);
	/* The guests link at 1 MiB (guests/README.md). */
	CHECK_EQ(gi.lo, MiB);
	CHECK(gi.entry >= gi.lo && gi.entry < gi.hi);

	/* Copy: each segment's file bytes at its GPA, everything else still zero. */
	r.size = 4 * MiB;
	r.mem = calloc(1, r.size);
	CHECK_EQ(loader_load(f, size, ram_write, &r), 0);
	CHECK_EQ(r.calls, writes);
	for (unsigned i = 0; i < n; i++) {
		CHECK_EQ(memcmp(r.mem + segs[i].paddr, f + segs[i].off, segs[i].filesz), 0);
		for (uint64_t b = segs[i].filesz; b < segs[i].memsz; b++)
			if (r.mem[segs[i].paddr + b]) {
				CHECK_EQ(r.mem[segs[i].paddr + b], 0);
				break;
			}
	}
	for (uint64_t a = 0; a < r.size; a++) {
		if (a == lo) {
			a = hi - 1;
			continue;
		}
		if (r.mem[a]) {
			CHECK_EQ(a, ~0ull);   /* a byte outside the image was written */
			break;
		}
	}

	/* A write error stops the copy and comes back. */
	r.fail_with = -ENOMEM;
	r.calls = 0;
	r.fail_at = 1;
	CHECK_EQ(loader_load(f, size, ram_write, &r), -ENOMEM);
	CHECK_EQ(r.calls, 1);
	free(r.mem);

	/* Too little RAM for the image; reserved area over it. */
	CHECK_EQ(loader_check(f, size, hi - 1, RESERVED, &gi, why, sizeof(why)), -EFAULT);
	CHECK(strstr(why, "outside its RAM") != NULL);
	CHECK_EQ(loader_check(f, size, RAM, lo + 1, &gi, why, sizeof(why)), -EFAULT);
	CHECK_EQ(loader_check(f, size, hi, lo, &gi, why, sizeof(why)), 0);   /* exact fit */

	/* Any truncation is an error (never a crash), the full file is fine; an unaligned copy too. */
	for (size_t cut = 0; cut < size; cut += cut < 256 ? 1 : 61) {
		copy = malloc(cut ? cut : 1);
		memcpy(copy, f, cut);
		if (loader_check(copy, cut, RAM, RESERVED, &gi, why, sizeof(why)) == 0) {
			/* Only trailing bytes no segment or header uses may go. */
			for (unsigned i = 0; i < n; i++)
				CHECK(segs[i].off + segs[i].filesz <= cut);
		}
		free(copy);
	}
	copy = malloc(size + 1);
	memcpy(copy + 1, f, size);
	CHECK_EQ(loader_check(copy + 1, size, RAM, RESERVED, &gi, why, sizeof(why)), 0);
	CHECK_EQ(gi.entry, want_entry);
	free(copy);

	/* Random byte damage in the headers: errors or success, never a crash or a bad read. */
	srand(12345);
	copy = malloc(size);
	for (int round = 0; round < 3000; round++) {
		memcpy(copy, f, size);
		for (int k = 0; k < 1 + round % 4; k++) {
			size_t at = (size_t)rand() % (size < 0x1100 ? size : 0x1100);

			copy[at] = (uint8_t)rand();
		}
		if (loader_check(copy, size, RAM, RESERVED, &gi, why, sizeof(why)) == 0) {
			CHECK(gi.lo >= RESERVED && gi.hi <= RAM && gi.entry >= gi.lo && gi.entry < gi.hi);
			r.size = gi.hi;        /* every write lands below the image's end: RAM past it is not needed */
			r.mem = calloc(1, r.size);
			r.fail_with = 0;
			CHECK_EQ(loader_load(copy, size, ram_write, &r), 0);
			free(r.mem);
		} else {
			CHECK(why[0] != 0);
		}
	}
	free(copy);
	free(f);
}

static void test_real_hello(void)
{
	check_real("build/guests/hello.elf", 0);
}

static void test_real_memcheck(void)
{
	check_real("build/guests/memcheck.elf", 1);
}

/* ------------------------------------------------------------------------------------------------ */

static void test_base_ok(void)
{
	struct guest_image gi;
	struct fake_ram r = { 0 };

	for (int elf64 = 0; elf64 <= 1; elf64++) {
		base(elf64);
		CHECK_EQ(loader_check(img, img_size, RAM, RESERVED, &gi, why, sizeof(why)), 0);
		CHECK_EQ(gi.elf64, elf64);
		CHECK_EQ(gi.entry, 0x100010);
		CHECK_EQ(gi.lo, 0x100000);
		CHECK_EQ(gi.hi, 0x100200);
		CHECK_EQ(gi.nsegments, 1);
		/* NULL why is allowed. */
		CHECK_EQ(loader_check(img, img_size, RAM, RESERVED, &gi, NULL, 0), 0);

		r.size = 2 * MiB;
		r.mem = calloc(1, r.size);
		r.calls = 0;
		CHECK_EQ(loader_load(img, img_size, ram_write, &r), 0);
		CHECK_EQ(r.calls, 1);
		CHECK_EQ(memcmp(r.mem + 0x100000, img + DATA_OFF, 0x100), 0);
		for (uint64_t a = 0; a < r.size; a++)
			if ((a < 0x100000 || a >= 0x100100) && r.mem[a]) {
				CHECK_EQ(a, ~0ull);
				break;
			}
		free(r.mem);
	}
}

static void test_not_elf(void)
{
	struct guest_image gi;

	memset(store, 0, sizeof(store));
	memcpy(img, "hello, world", 12);
	img_size = 12;
	CHECK_FAILS(-ENOEXEC, "not an ELF file");
	img_size = 0;
	CHECK_FAILS(-ENOEXEC, "not an ELF file");
	CHECK_EQ(loader_check(NULL, 0, RAM, RESERVED, &gi, why, sizeof(why)), -ENOEXEC);

	base(0);
	img[EI_CLASS] = 3;
	CHECK_FAILS(-ENOEXEC, "class");
	base(0);
	img[EI_DATA] = ELFDATA2MSB;
	CHECK_FAILS(-ENOEXEC, "little-endian");
	base(0);
	img[EI_VERSION] = 0;
	CHECK_FAILS(-ENOEXEC, "version");
	base(1);
	{
		uint16_t t = ET_DYN;

		memcpy(img + 16, &t, 2);
	}
	CHECK_FAILS(-ENOEXEC, "ET_EXEC");
	/* A long reason is cut to the buffer, still NUL-terminated. */
	memset(why, 'x', sizeof(why));
	CHECK_EQ(loader_check(img, img_size, RAM, RESERVED, &gi, why, 8), -ENOEXEC);
	CHECK_EQ(strlen(why), 7);
}

static void test_truncated(void)
{
	base(0);
	img_size = sizeof(Elf32_Ehdr) - 1;
	CHECK_FAILS(-ENOEXEC, "truncated");
	base(1);
	img_size = sizeof(Elf64_Ehdr) - 1;
	CHECK_FAILS(-ENOEXEC, "truncated");
	base(1);
	img_size = EI_NIDENT;
	CHECK_FAILS(-ENOEXEC, "truncated");
}

static void test_phdrs(void)
{
	uint64_t off;
	uint16_t v;

	/* Table runs past the end of the file. */
	base(0);
	img_size = PH_OFF + sizeof(Elf32_Phdr) - 1;
	CHECK_FAILS(-ENOEXEC, "program headers lie outside");
	/* phoff near 2^64: offset + size wraps. */
	base(1);
	off = ~0ull - 8;
	memcpy(img + offsetof(Elf64_Ehdr, e_phoff), &off, 8);
	CHECK_FAILS(-ENOEXEC, "program headers lie outside");
	/* phoff far past the file, 32-bit. */
	base(0);
	off = 0xfffffff0;
	memcpy(img + offsetof(Elf32_Ehdr, e_phoff), &off, 4);
	CHECK_FAILS(-ENOEXEC, "program headers lie outside");
	/* Huge counts. */
	base(0);
	v = LOADER_MAX_PHNUM + 1;
	memcpy(img + offsetof(Elf32_Ehdr, e_phnum), &v, 2);
	CHECK_FAILS(-ENOEXEC, "program headers, more than");
	base(1);
	v = 0xffff;
	memcpy(img + offsetof(Elf64_Ehdr, e_phnum), &v, 2);
	CHECK_FAILS(-ENOEXEC, "more than");
	base(1);
	v = 0;
	memcpy(img + offsetof(Elf64_Ehdr, e_phnum), &v, 2);
	CHECK_FAILS(-ENOEXEC, "no program headers");
	/* Wrong entry size. */
	base(1);
	v = sizeof(Elf32_Phdr);
	memcpy(img + offsetof(Elf64_Ehdr, e_phentsize), &v, 2);
	CHECK_FAILS(-ENOEXEC, "program header size");
	/* LOADER_MAX_PHNUM exactly is fine (the rest are PT_NULL, all inside the file). */
	base(1);
	v = LOADER_MAX_PHNUM;
	memcpy(img + offsetof(Elf64_Ehdr, e_phnum), &v, 2);
	memmove(img + 0x5000, img + MB_OFF, 0x100);     /* the table now covers MB_OFF */
	memset(img + MB_OFF, 0, 0x100);
	img_size = 0x5100;
	CHECK_EQ(check(), 0);
	/* Only PT_NOTE: nothing to load. */
	base(0);
	put_phdr(0, PT_NOTE, DATA_OFF, 0x100000, 0x100000, 0x100, 0x100);
	CHECK_FAILS(-ENOEXEC, "no loadable segments");
}

static void test_machine(void)
{
	base(0);
	put_ehdr(0, EM_X86_64, 1, 0x100010);
	CHECK_FAILS(-ENOEXEC, "machine 62");
	base(1);
	put_ehdr(1, EM_386, 1, 0x100010);
	CHECK_FAILS(-ENOEXEC, "machine 3");
	base(1);
	put_ehdr(1, EM_ARM, 1, 0x100010);
	CHECK_FAILS(-ENOEXEC, "not x86-64");
}

static void test_segment_file_range(void)
{
	base(0);
	put_phdr(0, PT_LOAD, DATA_OFF, 0x100000, 0x100000, 0x101, 0x200);  /* one byte past the end */
	CHECK_FAILS(-ENOEXEC, "outside the file");
	base(0);
	put_phdr(0, PT_LOAD, 0xfffffff0, 0x100000, 0x100000, 0x20, 0x200);
	CHECK_FAILS(-ENOEXEC, "outside the file");
	base(1);
	put_phdr(0, PT_LOAD, ~0ull - 7, 0x100000, 0x100000, 0x10, 0x200);  /* offset + filesz wraps */
	CHECK_FAILS(-ENOEXEC, "outside the file");
	base(1);
	put_phdr(0, PT_LOAD, DATA_OFF, 0x100000, 0x100000, 0x100, 0xff);
	CHECK_FAILS(-ENOEXEC, "above its memory size");
	/* A pure bss segment may point anywhere in the file (filesz 0). */
	base(1);
	put_phdr(0, PT_LOAD, 0, 0x100000, 0x100000, 0, 0x200);
	CHECK_EQ(check(), 0);
}

static void test_segment_ram(void)
{
	base(0);
	put_phdr(0, PT_LOAD, DATA_OFF, RAM - 0x100, RAM - 0x100, 0x100, 0x200);
	put_ehdr(0, EM_386, 1, RAM - 0x100);
	CHECK_FAILS(-EFAULT, "is outside its RAM");
	CHECK(strstr(why, "GPA 0xffff00") != NULL);
	/* Ending exactly at RAM's end is fine. */
	put_phdr(0, PT_LOAD, DATA_OFF, RAM - 0x200, RAM - 0x200, 0x100, 0x200);
	put_ehdr(0, EM_386, 1, RAM - 0x200);
	CHECK_EQ(check(), 0);
	/* paddr + memsz wraps around 2^64. */
	base(1);
	put_phdr(0, PT_LOAD, DATA_OFF, 0x100000, ~0ull - 0xff, 0x100, 0x200);
	CHECK_FAILS(-EFAULT, "outside its RAM");
	base(1);
	put_phdr(0, PT_LOAD, DATA_OFF, 0x100000, 0x100000, 0x100, ~0ull - 0x10);
	CHECK_FAILS(-EFAULT, "outside its RAM");
	/* Below the reserved area's end; starting at it is fine. */
	base(0);
	put_phdr(0, PT_LOAD, DATA_OFF, RESERVED - 0x10, RESERVED - 0x10, 0x100, 0x200);
	put_ehdr(0, EM_386, 1, RESERVED);
	CHECK_FAILS(-EFAULT, "below 0x10000");
	put_phdr(0, PT_LOAD, DATA_OFF, RESERVED, RESERVED, 0x100, 0x200);
	CHECK_EQ(check(), 0);
}

static void test_overlap(void)
{
	struct guest_image gi;

	base(1);
	put_ehdr(1, EM_X86_64, 3, 0x100010);
	put_phdr(0, PT_LOAD, DATA_OFF, 0x100000, 0x100000, 0x100, 0x200);
	put_phdr(1, PT_NOTE, DATA_OFF, 0x100000, 0x100000, 0x100, 0x100);  /* not loaded: may overlap */
	put_phdr(2, PT_LOAD, DATA_OFF, 0x100200, 0x100200, 0x80, 0x1000);  /* adjacent: fine */
	CHECK_EQ(loader_check(img, img_size, RAM, RESERVED, &gi, why, sizeof(why)), 0);
	CHECK_EQ(gi.nsegments, 2);
	CHECK_EQ(gi.lo, 0x100000);
	CHECK_EQ(gi.hi, 0x101200);
	put_phdr(2, PT_LOAD, DATA_OFF, 0x1001ff, 0x1001ff, 0x80, 0x1000);
	CHECK_FAILS(-ENOEXEC, "overlaps");
	/* Contained inside, and the second one below the first. */
	put_phdr(2, PT_LOAD, DATA_OFF, 0x100080, 0x100080, 0x10, 0x10);
	CHECK_FAILS(-ENOEXEC, "overlaps");
	put_phdr(2, PT_LOAD, DATA_OFF, 0xff000, 0xff000, 0x80, 0x1001);
	CHECK_FAILS(-ENOEXEC, "overlaps");
	/* Zero-memsz segments occupy nothing. */
	put_phdr(2, PT_LOAD, DATA_OFF, 0x100080, 0x100080, 0, 0);
	CHECK_EQ(loader_check(img, img_size, RAM, RESERVED, &gi, why, sizeof(why)), 0);
	CHECK_EQ(gi.nsegments, 1);
}

static void test_entry(void)
{
	struct guest_image gi;

	base(0);
	put_ehdr(0, EM_386, 1, 0x100200);   /* one past memsz */
	CHECK_FAILS(-EFAULT, "entry point 0x100200 is outside");
	put_ehdr(0, EM_386, 1, 0x1001ff);   /* in bss: still loaded memory */
	CHECK_EQ(check(), 0);
	/* Virtual entry translated through its segment. */
	base(0);
	put_ehdr(0, EM_386, 1, 0xc0100020);
	put_phdr(0, PT_LOAD, DATA_OFF, 0xc0100000, 0x100000, 0x100, 0x200);
	CHECK_EQ(loader_check(img, img_size, RAM, RESERVED, &gi, why, sizeof(why)), 0);
	CHECK_EQ(gi.entry, 0x100020);
	/* The physical address as entry is not in a segment's virtual range. */
	put_ehdr(0, EM_386, 1, 0x100020);
	CHECK_FAILS(-EFAULT, "outside the loaded segments");
	/* ELF64 with the segment above 4 GiB: the entry cannot be reached from 32-bit mode. */
	base(1);
	put_ehdr(1, EM_X86_64, 1, 0x100000010ull);
	put_phdr(0, PT_LOAD, DATA_OFF, 0x100000000ull, 0x100000000ull, 0x100, 0x200);
	CHECK_EQ(loader_check(img, img_size, 8ull << 30, RESERVED, &gi, why, sizeof(why)), -EFAULT);
	CHECK(strstr(why, "above 4 GiB") != NULL);
}

static void test_mb2_header(void)
{
	uint32_t w;

	/* None. */
	base(0);
	memset(img + MB_OFF, 0, 0x40);
	CHECK_FAILS(-ENOEXEC, "no Multiboot2 header in the first 32 KiB");
	/* Not 8-byte aligned: not a header. */
	base(0);
	memmove(img + MB_OFF + 4, img + MB_OFF, 0x20);
	memset(img + MB_OFF, 0, 4);
	CHECK_FAILS(-ENOEXEC, "no Multiboot2 header");
	/* Beyond 32 KiB, in a file long enough to hold it. */
	base(0);
	memset(img + MB_OFF, 0, 0x40);
	mb_begin(0x8000);
	mb_finish();
	img_size = 0x8100;
	CHECK_FAILS(-ENOEXEC, "no Multiboot2 header");
	/* Starting inside 32 KiB but running past it. */
	base(0);
	memset(img + MB_OFF, 0, 0x40);
	mb_begin(0x8000 - 16);
	mb_finish();
	img_size = 0x8100;
	CHECK_FAILS(-ENOEXEC, "runs past the first 32 KiB");
	/* Ending exactly at 32 KiB is fine. */
	base(0);
	memset(img + MB_OFF, 0, 0x40);
	mb_begin(0x8000 - 24);
	mb_finish();
	img_size = 0x8100;
	CHECK_EQ(check(), 0);
	/* Running past the end of a short file. */
	base(0);
	img_size = MB_OFF + 20;
	CHECK_FAILS(-ENOEXEC, "Multiboot2 header length");
	/* Bad checksum. */
	base(0);
	memcpy(&w, img + MB_OFF + 12, 4);
	w++;
	memcpy(img + MB_OFF + 12, &w, 4);
	CHECK_FAILS(-ENOEXEC, "Multiboot2 header checksum is wrong");
	/* A stray magic word before the real header does not hide it. */
	base(0);
	w = MB2_HEADER_MAGIC;
	memcpy(img + MB_OFF - 8, &w, 4);
	CHECK_EQ(check(), 0);
	/* Wrong architecture (4: MIPS), checksum right. */
	base(0);
	mb_begin(MB_OFF);
	mb_finish_arch(4);
	CHECK_FAILS(-ENOEXEC, "architecture 4");
	/* header_length too small to hold an end tag (checksum right). */
	base(0);
	{
		uint32_t h[4] = { MB2_HEADER_MAGIC, 0, 16, -(MB2_HEADER_MAGIC + 16) };

		memcpy(img + MB_OFF, h, sizeof(h));
	}
	CHECK_FAILS(-ENOEXEC, "Multiboot2 header length 16");
}

static void test_mb2_tags(void)
{
	struct guest_image gi;
	uint32_t addr[4] = { 0x100000, 0x100000, 0x100100, 0x100200 };
	uint32_t entry = 0x100080, fb[3] = { 1024, 768, 32 };
	uint32_t ok_req[4] = { 1, 6, 4, 2 }, bad_req[2] = { 6, 8 };

	/* Address tag (a.out kludge): refused if required, ignored if optional. */
	base(0);
	mb_begin(MB_OFF);
	mb_tag(2, 0, 24, addr);
	mb_finish();
	CHECK_FAILS(-ENODEV, "address");
	mb_begin(MB_OFF);
	mb_tag(2, 1, 24, addr);
	mb_finish();
	CHECK_EQ(check(), 0);
	/* Framebuffer, EFI boot services, an unknown type: the same rule. */
	mb_begin(MB_OFF);
	mb_tag(5, 0, 20, fb);
	mb_finish();
	CHECK_FAILS(-ENODEV, "framebuffer");
	mb_begin(MB_OFF);
	mb_tag(5, 1, 20, fb);
	mb_tag(7, 0, 8, NULL);
	mb_finish();
	CHECK_FAILS(-ENODEV, "EFI boot services");
	mb_begin(MB_OFF);
	mb_tag(99, 1, 12, &entry);
	mb_tag(6, 0, 8, NULL);               /* module alignment: met, no modules */
	mb_finish();
	CHECK_EQ(check(), 0);
	mb_begin(MB_OFF);
	mb_tag(99, 0, 8, NULL);
	mb_finish();
	CHECK_FAILS(-ENODEV, "type 99");

	/* Information request: what we provide is fine; more is refused only if required. */
	mb_begin(MB_OFF);
	mb_tag(1, 0, 8 + sizeof(ok_req), ok_req);
	mb_finish();
	CHECK_EQ(check(), 0);
	mb_begin(MB_OFF);
	mb_tag(1, 0, 8 + sizeof(bad_req), bad_req);
	mb_finish();
	CHECK_FAILS(-ENODEV, "boot information tag 8");
	mb_begin(MB_OFF);
	mb_tag(1, 1, 8 + sizeof(bad_req), bad_req);
	mb_finish();
	CHECK_EQ(check(), 0);

	/* Entry address tag: a physical address that overrides e_entry. */
	mb_begin(MB_OFF);
	mb_tag(3, 0, 12, &entry);
	mb_finish();
	CHECK_EQ(loader_check(img, img_size, RAM, RESERVED, &gi, why, sizeof(why)), 0);
	CHECK_EQ(gi.entry, 0x100080);
	/* ... even when e_entry is virtual and elsewhere. */
	put_ehdr(0, EM_386, 1, 0xc0100010);
	put_phdr(0, PT_LOAD, DATA_OFF, 0xc0100000, 0x100000, 0x100, 0x200);
	CHECK_EQ(loader_check(img, img_size, RAM, RESERVED, &gi, why, sizeof(why)), 0);
	CHECK_EQ(gi.entry, 0x100080);
	/* Outside the segments. */
	entry = 0x100200;
	mb_begin(MB_OFF);
	mb_tag(3, 0, 12, &entry);
	mb_finish();
	CHECK_FAILS(-EFAULT, "entry point 0x100200");
	/* Too short to hold the address. */
	mb_begin(MB_OFF);
	mb_tag(3, 0, 8, NULL);
	mb_finish();
	CHECK_FAILS(-ENOEXEC, "too short");

	/* Malformed tag lists: a size below 8, a size past header_length, no end tag. */
	base(0);
	mb_begin(MB_OFF);
	mb_tag(6, 0, 4, NULL);
	mb_finish();
	CHECK_FAILS(-ENOEXEC, "bad size 4");
	base(0);
	{
		uint32_t h[4] = { MB2_HEADER_MAGIC, 0, 32, -(MB2_HEADER_MAGIC + 32) };
		uint32_t t[4] = { 6, 0x100, 0, 0 };           /* type 6, flags 0, size 0x100 */

		memcpy(img + MB_OFF, h, sizeof(h));
		memcpy(img + MB_OFF + 16, t, sizeof(t));
	}
	CHECK_FAILS(-ENOEXEC, "bad size 256");
	base(0);
	{
		uint32_t h[4] = { MB2_HEADER_MAGIC, 0, 32, -(MB2_HEADER_MAGIC + 32) };
		uint32_t t[4] = { 6, 8, 6, 8 };               /* two module-align tags, no end */

		memcpy(img + MB_OFF, h, sizeof(h));
		memcpy(img + MB_OFF + 16, t, sizeof(t));
	}
	CHECK_FAILS(-ENOEXEC, "no end tag");
}

/* ------------------------------------------------------------------------------------------------
 * mb2_build_info: parse the block back.
 */
static uint64_t ibuf[1024];
static uint8_t *const info = (uint8_t *)ibuf;

static uint32_t u32at(size_t off)
{
	uint32_t v;

	memcpy(&v, info + off, 4);
	return v;
}

struct parsed {
	const char *cmdline, *name;
	uint32_t mem_lower, mem_upper;
	unsigned nents;
	struct mb2_mmap_entry ents[8];
	int seen[16];
	unsigned nmods;
	uint32_t mod_start[4], mod_end[4];
	const char *mod_str[4];
	uint32_t acpi_type, acpi_len;
	const uint8_t *acpi;
};

/* Walks the block strictly: every tag aligned, inside total_size, padding zero, END last. */
static void parse_info(size_t total, struct parsed *p)
{
	size_t off = 8;

	memset(p, 0, sizeof(*p));
	CHECK_EQ(u32at(0), total);
	CHECK_EQ(u32at(4), 0);
	CHECK_EQ(total % 8, 0);
	while (off + 8 <= total) {
		uint32_t type = u32at(off), size = u32at(off + 4);

		CHECK_EQ(off % 8, 0);
		CHECK(size >= 8 && off + size <= total);
		if (size < 8 || off + size > total)
			return;
		for (size_t pad = off + size; pad < ((off + size + 7) & ~7ul); pad++)
			CHECK_EQ(info[pad], 0);
		if (type < 16)
			p->seen[type]++;
		switch (type) {
		case MB2_TAG_END:
			CHECK_EQ(size, 8);
			CHECK_EQ(off + 8, total);
			return;
		case MB2_TAG_CMDLINE:
		case MB2_TAG_LOADER_NAME:
			CHECK_EQ(info[off + size - 1], 0);
			CHECK_EQ(strlen((char *)info + off + 8), size - 9);
			if (type == MB2_TAG_CMDLINE)
				p->cmdline = (char *)info + off + 8;
			else
				p->name = (char *)info + off + 8;
			break;
		case MB2_TAG_BASIC_MEMINFO:
			CHECK_EQ(size, 16);
			p->mem_lower = u32at(off + 8);
			p->mem_upper = u32at(off + 12);
			break;
		case MB2_TAG_MMAP:
			CHECK_EQ(u32at(off + 8), 24);
			CHECK_EQ(u32at(off + 12), 0);
			CHECK_EQ((size - 16) % 24, 0);
			p->nents = (size - 16) / 24;
			CHECK(p->nents <= 8);
			if (p->nents <= 8)
				memcpy(p->ents, info + off + 16, p->nents * 24);
			break;
		case MB2_TAG_MODULE:
			CHECK(size > 16);
			CHECK_EQ(info[off + size - 1], 0);
			CHECK(p->nmods < 4);
			if (p->nmods < 4) {
				p->mod_start[p->nmods] = u32at(off + 8);
				p->mod_end[p->nmods] = u32at(off + 12);
				p->mod_str[p->nmods] = (char *)info + off + 16;
				p->nmods++;
			}
			break;
		case MB2_TAG_ACPI_OLD:
		case MB2_TAG_ACPI_NEW:
			p->acpi_type = type;
			p->acpi_len = size - 8;
			p->acpi = info + off + 8;
			break;
		default:
			CHECK_EQ(type, ~0u);   /* a tag we did not mean to write */
		}
		off += (size + 7) & ~7u;
	}
	CHECK(0);   /* no END tag */
}

static void check_ent(const struct mb2_mmap_entry *e, uint64_t base_addr, uint64_t len, uint32_t type)
{
	CHECK_EQ(e->base_addr, base_addr);
	CHECK_EQ(e->length, len);
	CHECK_EQ(e->type, type);
	CHECK_EQ(e->reserved, 0);
}

static void test_info(void)
{
	struct parsed p;
	size_t n;

	memset(ibuf, 0xaa, sizeof(ibuf));
	n = mb2_build_info(info, sizeof(ibuf), "a=1 b=2", "tessera", 64 * MiB);
	CHECK(n > 0);
	CHECK_EQ(n, 8 + 16 + 16 + 16 + (16 + 3 * 24) + 8);
	parse_info(n, &p);
	for (int t = 0; t < 7; t++)
		CHECK_EQ(p.seen[t], t == 0 || t == 1 || t == 2 || t == 4 || t == 6);
	CHECK(p.cmdline && strcmp(p.cmdline, "a=1 b=2") == 0);
	CHECK(p.name && strcmp(p.name, "tessera") == 0);
	CHECK_EQ(p.mem_lower, 639);
	CHECK_EQ(p.mem_upper, 63 * 1024);
	CHECK_EQ(p.nents, 3);
	check_ent(&p.ents[0], 0, 0x9fc00, 1);
	check_ent(&p.ents[1], 0x9fc00, 0x100000 - 0x9fc00, 2);
	check_ent(&p.ents[2], 0x100000, 63 * MiB, 1);
	CHECK_EQ(info[n], 0xaa);   /* nothing written past the block */

	/* NULL and empty strings; a string whose tag ends on an 8-byte boundary (8 + 7 + NUL). */
	n = mb2_build_info(info, sizeof(ibuf), NULL, "1234567", 2 * MiB);
	parse_info(n, &p);
	CHECK(p.cmdline && p.cmdline[0] == 0);
	CHECK(p.name && strcmp(p.name, "1234567") == 0);
	CHECK_EQ(p.mem_upper, 1024);

	/* Tiny RAM: 512 KiB has only conventional memory. */
	n = mb2_build_info(info, sizeof(ibuf), "", "", 512 * 1024);
	parse_info(n, &p);
	CHECK_EQ(p.mem_lower, 512);
	CHECK_EQ(p.mem_upper, 0);
	CHECK_EQ(p.nents, 1);
	check_ent(&p.ents[0], 0, 512 * 1024, 1);
	/* Into the hole, exactly 1 MiB, and zero. */
	n = mb2_build_info(info, sizeof(ibuf), "", "", 0xa0000);
	parse_info(n, &p);
	CHECK_EQ(p.mem_lower, 639);
	CHECK_EQ(p.nents, 2);
	check_ent(&p.ents[1], 0x9fc00, 0x400, 2);
	n = mb2_build_info(info, sizeof(ibuf), "", "", MiB);
	parse_info(n, &p);
	CHECK_EQ(p.mem_upper, 0);
	CHECK_EQ(p.nents, 2);
	check_ent(&p.ents[1], 0x9fc00, 0x60400, 2);
	n = mb2_build_info(info, sizeof(ibuf), "", "", 0);
	parse_info(n, &p);
	CHECK_EQ(p.mem_lower, 0);
	CHECK_EQ(p.nents, 0);
	/* Exactly 3 GiB: all of it below the hole, one usable range from 1 MiB, as for any smaller guest. */
	n = mb2_build_info(info, sizeof(ibuf), "", "", 3ull << 30);
	parse_info(n, &p);
	CHECK_EQ(p.mem_upper, (3u << 20) - 1024);
	CHECK_EQ(p.nents, 3);
	check_ent(&p.ents[2], MiB, (3ull << 30) - MiB, 1);
	/* 5 GiB: RAM to 3 GiB, the hole for the I/O APIC and local APIC left out, the other 2 GiB from
	 * 4 GiB; mem_upper ends at the hole ("the first upper memory hole", Multiboot 3.3). */
	n = mb2_build_info(info, sizeof(ibuf), "", "", 5ull << 30);
	parse_info(n, &p);
	CHECK_EQ(p.mem_lower, 639);
	CHECK_EQ(p.mem_upper, (3u << 20) - 1024);
	CHECK_EQ(p.nents, 4);
	check_ent(&p.ents[0], 0, 0x9fc00, 1);
	check_ent(&p.ents[1], 0x9fc00, 0x100000 - 0x9fc00, 2);
	check_ent(&p.ents[2], MiB, (3ull << 30) - MiB, 1);
	check_ent(&p.ents[3], 4ull << 30, 2ull << 30, 1);
	/* Huge RAM: the rest above 4 GiB, none of it in the hole. */
	n = mb2_build_info(info, sizeof(ibuf), "", "", 1ull << 50);
	parse_info(n, &p);
	CHECK_EQ(p.mem_upper, (3u << 20) - 1024);
	check_ent(&p.ents[3], 4ull << 30, (1ull << 50) - (3ull << 30), 1);

	/* Every buffer too small returns 0 and writes nothing past its end; the exact size works. */
	{
		size_t need = mb2_build_info(info, sizeof(ibuf), "console=ttyS0", "tessera", 64 * MiB);

		for (size_t sz = 0; sz < need; sz++) {
			memset(ibuf, 0xaa, sizeof(ibuf));
			CHECK_EQ(mb2_build_info(info, sz, "console=ttyS0", "tessera", 64 * MiB), 0);
			for (size_t b = sz; b < sizeof(ibuf); b++)
				if (info[b] != 0xaa) {
					CHECK_EQ(b, ~0ull);
					break;
				}
		}
		CHECK_EQ(mb2_build_info(info, need, "console=ttyS0", "tessera", 64 * MiB), need);
		CHECK_EQ(mb2_build_info(NULL, 4096, "", "", MiB), 0);
	}
}

/* ------------------------------------------------------------------------------------------------
 * loader_load_guest with a Multiboot2 image: segments, modules, the ACPI tag, the block in guest RAM.
 */
static struct vcpu_state st;

static int load_guest(const struct loader_file *ex, unsigned n, const void *rsdp, size_t rsdp_len,
		      struct fake_ram *r)
{
	memset(why, 0, sizeof(why));
	return loader_load_guest(&(struct loader_job){
		.file = img, .size = img_size, .cmdline = "a=1", .ram = RAM, .extra = ex, .nextra = n,
		.rsdp_gpa = rsdp ? 0xe0000 : 0, .rsdp = rsdp, .rsdp_len = rsdp_len,
		.write = r ? ram_write : NULL, .ctx = r, .start = &st, .why = why, .whylen = sizeof(why) });
}

/* Copies the block at EBX (st.rbx) out of guest RAM and parses it. */
static void parse_guest_info(const struct fake_ram *r, struct parsed *p)
{
	uint32_t total;

	CHECK(st.rbx < r->size && r->size - st.rbx >= LOADER_INFO_MAX);
	memcpy(&total, r->mem + st.rbx, 4);
	CHECK(total <= LOADER_INFO_MAX);
	memcpy(info, r->mem + st.rbx, total <= LOADER_INFO_MAX ? total : 8);
	parse_info(total <= LOADER_INFO_MAX ? total : 8, p);
}

static void test_load_guest(void)
{
	static const char m1[] = "module one", m2[] = "two";
	struct loader_file ex[2] = { { m1, sizeof(m1), "m1 x=y" }, { m2, sizeof(m2), NULL } };
	uint8_t rsdp[36] = "RSD PTR ";
	struct fake_ram r = { 0 };
	struct parsed p;

	/* Without extras: the same block guest.c builds today, the segment at its place. */
	base(1);
	r.size = RAM;
	r.mem = calloc(1, RAM);
	CHECK_EQ(load_guest(NULL, 0, NULL, 0, &r), 0);
	CHECK(strstr(why, "Multiboot2 ELF64, entry 0x100010, 0 modules") != NULL);
	CHECK_EQ(memcmp(r.mem + 0x100000, img + DATA_OFF, 0x100), 0);
	parse_guest_info(&r, &p);
	CHECK(p.cmdline && strcmp(p.cmdline, "a=1") == 0);
	CHECK(p.name && strcmp(p.name, "tessera") == 0);
	CHECK_EQ(p.nmods, 0);
	CHECK_EQ(p.seen[MB2_TAG_ACPI_OLD] + p.seen[MB2_TAG_ACPI_NEW], 0);
	CHECK_EQ(p.nents, 3);
	check_ent(&p.ents[2], MiB, RAM - MiB, 1);
	CHECK_EQ(st.rax, MB2_BOOTLOADER_MAGIC);
	CHECK_EQ(st.rbx, LOADER_INFO_GPA);
	CHECK_EQ(st.rip, 0x100010);
	CHECK_EQ(st.cs.ar, AR_CODE32);
	CHECK_EQ(st.cr0, 0x11);
	free(r.mem);

	/* Two modules, page aligned above the image (which ends at 0x100200), and a revision 2 RSDP. */
	rsdp[15] = 2;
	rsdp[20] = 36;
	for (int i = 21; i < 36; i++)
		rsdp[i] = (uint8_t)i;
	r.mem = calloc(1, RAM);
	CHECK_EQ(load_guest(ex, 2, rsdp, sizeof(rsdp), &r), 0);
	parse_guest_info(&r, &p);
	CHECK_EQ(p.nmods, 2);
	CHECK_EQ(p.mod_start[0], 0x101000);
	CHECK_EQ(p.mod_end[0], 0x101000 + sizeof(m1));
	CHECK_EQ(p.mod_start[1], 0x102000);
	CHECK_EQ(p.mod_end[1], 0x102000 + sizeof(m2));
	CHECK(p.mod_str[0] && strcmp(p.mod_str[0], "m1 x=y") == 0);
	CHECK(p.mod_str[1] && strcmp(p.mod_str[1], "") == 0);
	CHECK_EQ(memcmp(r.mem + 0x101000, m1, sizeof(m1)), 0);
	CHECK_EQ(memcmp(r.mem + 0x102000, m2, sizeof(m2)), 0);
	CHECK_EQ(p.acpi_type, MB2_TAG_ACPI_NEW);
	CHECK_EQ(p.acpi_len, 36);
	CHECK(p.acpi && memcmp(p.acpi, rsdp, 36) == 0);
	free(r.mem);

	/* An ACPI 1.0 RSDP (revision 0, 20 bytes): the old tag. */
	rsdp[15] = 0;
	r.mem = calloc(1, RAM);
	CHECK_EQ(load_guest(NULL, 0, rsdp, 20, &r), 0);
	parse_guest_info(&r, &p);
	CHECK_EQ(p.acpi_type, MB2_TAG_ACPI_OLD);
	CHECK_EQ(p.acpi_len, 20);
	CHECK(p.acpi && memcmp(p.acpi, rsdp, 20) == 0);
	free(r.mem);
	/* Revision 2 but only 20 bytes given: the old tag too. */
	rsdp[15] = 2;
	r.mem = calloc(1, RAM);
	CHECK_EQ(load_guest(NULL, 0, rsdp, 20, &r), 0);
	parse_guest_info(&r, &p);
	CHECK_EQ(p.acpi_type, MB2_TAG_ACPI_OLD);
	free(r.mem);
	CHECK_EQ(load_guest(NULL, 0, rsdp, 19, NULL), -EINVAL);

	/* A required information request for ACPI: met with an RSDP, refused without; modules always. */
	{
		uint32_t req[2] = { 15, 3 };

		mb_begin(MB_OFF);
		mb_tag(1, 0, 8 + sizeof(req), req);
		mb_finish();
		CHECK_EQ(load_guest(NULL, 0, rsdp, 36, NULL), 0);
		CHECK_EQ(load_guest(NULL, 0, NULL, 0, NULL), -ENODEV);
		CHECK(strstr(why, "boot information tag 15") != NULL);
		/* loader_check (today's path) provides neither. */
		CHECK_FAILS(-ENODEV, "tag 15");
	}

	/* The reserved area is refused here (loader_check leaves that to its caller's reserved_end). */
	base(0);
	put_phdr(0, PT_LOAD, DATA_OFF, 0xff000, 0xff000, 0x100, 0x2000);
	put_ehdr(0, EM_386, 1, 0xff000);
	CHECK_EQ(load_guest(NULL, 0, NULL, 0, NULL), -EFAULT);
	CHECK(strstr(why, "reserved area") != NULL);
	CHECK_EQ(check(), 0);
	/* A segment in the boot information's usual page: the block goes to the lowest free page
	 * instead, and the segment's bytes stay as loaded; below 0x1000 (page 0) is refused. */
	put_phdr(0, PT_LOAD, DATA_OFF, 0x8800, 0x8800, 0x100, 0x200);
	put_ehdr(0, EM_386, 1, 0x8800);
	{
		struct fake_ram low;
		struct parsed lp;

		ram_init(&low, RAM);
		low.disjoint = true;
		CHECK_EQ(load_guest(NULL, 0, NULL, 0, &low), 0);
		CHECK_EQ(st.rbx, 0x1000);
		CHECK(strstr(why, "information at 0x1000") != NULL);
		CHECK_EQ(memcmp(low.mem + 0x8800, img + DATA_OFF, 0x100), 0);
		parse_guest_info(&low, &lp);
		CHECK(lp.cmdline && strcmp(lp.cmdline, "a=1") == 0);
		CHECK_EQ(lp.nents, 3);
		free(low.mem);
	}
	put_phdr(0, PT_LOAD, DATA_OFF, 0x800, 0x800, 0x100, 0x200);
	put_ehdr(0, EM_386, 1, 0x800);
	CHECK_EQ(load_guest(NULL, 0, NULL, 0, NULL), -EFAULT);
	CHECK(strstr(why, "segment at GPA 0x800 is below 0x1000") != NULL);

	/* Modules too big for RAM; a write error comes back with a reason. */
	base(0);
	ex[0].size = RAM;
	CHECK_EQ(load_guest(ex, 1, NULL, 0, NULL), -EFAULT);
	CHECK(strstr(why, "module 1") != NULL);
	ex[0].size = sizeof(m1);
	r.mem = calloc(1, RAM);
	r.fail_with = -ENOMEM;
	r.fail_at = r.calls + 1;             /* the next write */
	CHECK_EQ(load_guest(ex, 1, NULL, 0, &r), -ENOMEM);
	CHECK(why[0] != 0);
	free(r.mem);
	r.fail_with = 0;

	/* Nothing we know: the reason names all three. */
	memset(store, 0, sizeof(store));
	memcpy(img, "\177ELF", 4);
	img_size = 64;
	CHECK_EQ(load_guest(NULL, 0, NULL, 0, NULL), -ENOEXEC);
	CHECK(strstr(why, "no Linux setup header") != NULL && strstr(why, "Multiboot2") != NULL);
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_real_hello);
	RUN(test_real_memcheck);
	RUN(test_base_ok);
	RUN(test_not_elf);
	RUN(test_truncated);
	RUN(test_phdrs);
	RUN(test_machine);
	RUN(test_segment_file_range);
	RUN(test_segment_ram);
	RUN(test_overlap);
	RUN(test_entry);
	RUN(test_mb2_header);
	RUN(test_mb2_tags);
	RUN(test_info);
	RUN(test_load_guest);
	return unit_report(argv[0]);
}
