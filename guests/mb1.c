/*
 * mb1: a Multiboot1 kernel (Multiboot 0.6.96) checks the information block its loader gave it.
 * Built twice: mb1.elf (ELF32, the loader places its segments) and mb1-aout.bin (a flat binary whose
 * header carries the a.out-kludge address fields, 3.1.3); both carry guests/rt/mb1.inc's header, which
 * asks for page-aligned modules (flags[0]) and the memory information (flags[1]).
 *   mods=N     the number of modules it must get (`module2 FILE for=NAME ...` lines), default 0
 * Prints one line per check (`mb1: ... ok` / `FAIL`), then per module
 *   `mb1: module I at 0xSTART size N fnv1a 0xHASH cmdline 'STRING'`
 * (the scenario compares N and the FNV-1a hash with the file on the host, and the string with its
 * module line), and `mb1: N checks, F failed` (exit 0 if F = 0, else 1).
 * The guest's RAM size comes from the hypervisor (HC_GUEST_INFO), not from the block under test.
 */
#include "rt.h"

#define MB1_BOOT_MAGIC 0x2badb002u

/* The information block (3.3): offsets of the fields checked here. */
struct mb1_info {
	uint32_t flags;                  /* 0 */
	uint32_t mem_lower, mem_upper;   /* 4, 8: KiB below 640 KiB and from 1 MiB (flags[0]) */
	uint32_t boot_device;            /* 12 (flags[1]) */
	uint32_t cmdline;                /* 16 (flags[2]) */
	uint32_t mods_count, mods_addr;  /* 20, 24 (flags[3]) */
	uint32_t syms[4];                /* 28..43 (flags[4] or [5]) */
	uint32_t mmap_length, mmap_addr; /* 44, 48 (flags[6]) */
	uint32_t drives_length, drives_addr; /* 52, 56 (flags[7]) */
	uint32_t config_table;           /* 60 (flags[8]) */
	uint32_t boot_loader_name;       /* 64 (flags[9]) */
} __attribute__((packed));
_Static_assert(__builtin_offsetof(struct mb1_info, mmap_addr) == 48, "Multiboot 0.6.96, 3.3");
_Static_assert(__builtin_offsetof(struct mb1_info, boot_loader_name) == 64, "Multiboot 0.6.96, 3.3");

#define MB1_INFO_MEMORY      (1u << 0)
#define MB1_INFO_CMDLINE     (1u << 2)
#define MB1_INFO_MODS        (1u << 3)
#define MB1_INFO_MEM_MAP     (1u << 6)
#define MB1_INFO_LOADER_NAME (1u << 9)

struct mb1_module {                      /* 3.3, "mods_addr": 16 bytes each */
	uint32_t mod_start, mod_end, string, reserved;
};

/* A memory map entry: `size` (the bytes after it, at least 20), then these (3.3, "mmap_addr"). */
struct mb1_mmap_entry {
	uint32_t size;
	uint64_t base, length;
	uint32_t type;
} __attribute__((packed));

#define LOW_END  0x9fc00u   /* where tessera's map ends conventional RAM: 639 KiB (loader/loader.h) */
#define HIGH     0x100000u

/* FNV-1a, 32 bits (offset basis 2166136261, prime 16777619): the scenario computes the same on the host. */
static uint32_t fnv1a(const uint8_t *p, uint32_t n)
{
	uint32_t h = 2166136261u;

	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

/* A string of the block, checked to end (NUL) below 640 KiB, where the block lives. */
static const char *str(uint32_t addr)
{
	uint32_t n = 0;

	if (!addr || addr >= LOW_END)
		return NULL;
	while (addr + n < LOW_END && ((const char *)(uintptr_t)addr)[n])
		n++;
	return addr + n < LOW_END ? (const char *)(uintptr_t)addr : NULL;
}

int main(void)
{
	const struct mb1_info *mbi = (const struct mb1_info *)(uintptr_t)boot_info;
	uint32_t want_mods = (uint32_t)getarg_num("mods", 0), cr0, ram_bytes = 0;
	uint64_t usable = 0, prev_end = 0;
	const char *s;
	struct hv_info info;
	unsigned n = 0;

	__asm__ volatile("mov %%cr0, %0" : "=r"(cr0));
	check(boot_magic == MB1_BOOT_MAGIC, "mb1: magic 0x%x in EAX (want 0x2badb002)", boot_magic);
	if (boot_magic != MB1_BOOT_MAGIC)
		return 1;
	check((cr0 & 0x80000001u) == 1, "mb1: CR0 0x%x: protected mode, paging off (3.2)", cr0);
	check(hv_present() && hc_guest_info(&info) == 0, "mb1: the hypervisor says its RAM");
	ram_bytes = info.ram_kib << 10;
	/* Nothing of the block may lie in the image, wherever the image is linked (mb1-low: 0x8000). */
	check(boot_info && boot_info + sizeof(*mbi) <= LOW_END &&
	      (boot_info + sizeof(*mbi) <= (uintptr_t)__image_start || boot_info >= (uintptr_t)_end),
	      "mb1: information block at 0x%x, below 640 KiB, outside the image 0x%x-0x%x", boot_info,
	      (uint32_t)(uintptr_t)__image_start, (uint32_t)(uintptr_t)_end);
	check((mbi->flags & (MB1_INFO_MEMORY | MB1_INFO_CMDLINE | MB1_INFO_MEM_MAP | MB1_INFO_LOADER_NAME)) ==
	      (MB1_INFO_MEMORY | MB1_INFO_CMDLINE | MB1_INFO_MEM_MAP | MB1_INFO_LOADER_NAME) &&
	      !!(mbi->flags & MB1_INFO_MODS) == (want_mods != 0),
	      "mb1: flags 0x%x: memory, cmdline, mmap, loader name%s", mbi->flags, want_mods ? ", modules" : "");

	/* 3.3: mem_lower at most 640 KiB, mem_upper "the first upper memory hole minus 1 MiB". */
	check(mbi->mem_lower == LOW_END / 1024, "mb1: mem_lower %u KiB (want %u)", mbi->mem_lower, LOW_END / 1024);
	check(mbi->mem_upper == info.ram_kib - 1024, "mb1: mem_upper %u KiB (want %u: RAM %u KiB - 1 MiB)",
	      mbi->mem_upper, info.ram_kib - 1024, info.ram_kib);

	/* The map: RAM below 639 KiB, the reserved BIOS area, RAM from 1 MiB to the end, in order. */
	for (uint32_t e = mbi->mmap_addr; e + 4 <= mbi->mmap_addr + mbi->mmap_length && n < 8; n++) {
		const struct mb1_mmap_entry *m = (const struct mb1_mmap_entry *)(uintptr_t)e;
		static const struct { uint64_t base, end; uint32_t type; } want[3] = {
			{ 0, LOW_END, 1 }, { LOW_END, HIGH, 2 }, { HIGH, 0, 1 } };
		uint64_t end = m->base + m->length, want_end = n < 3 && want[n].end ? want[n].end : ram_bytes;

		check(n < 3 && m->size == 20 && m->base == want[n].base && end == want_end && m->type == want[n].type,
		      "mb1: mmap %u: size %u base 0x%x length 0x%x type %u", n, m->size, (uint32_t)m->base,
		      (uint32_t)m->length, m->type);
		if (m->type == 1)
			usable += m->length;
		e += m->size + 4;
	}
	check(n == 3 && usable == (uint64_t)(mbi->mem_lower + mbi->mem_upper) << 10,
	      "mb1: mmap has %u entries, usable %u KiB = mem_lower + mem_upper", n, (uint32_t)(usable >> 10));

	s = str(mbi->cmdline);
	check(s != NULL, "mb1: cmdline '%s'", s ? s : "(none)");
	s = str(mbi->boot_loader_name);
	check(s && !strcmp(s, "tessera"), "mb1: boot loader name '%s'", s ? s : "(none)");

	/* Modules: page aligned (we asked, flags[0]), above the image, in RAM, in order, not overlapping. */
	check(mbi->mods_count == want_mods, "mb1: %u modules (want %u)", mbi->mods_count, want_mods);
	prev_end = (uintptr_t)_end;
	for (uint32_t i = 0; i < mbi->mods_count && i < 16; i++) {
		const struct mb1_module *m = (const struct mb1_module *)(uintptr_t)(mbi->mods_addr + 16 * i);
		uint32_t size = m->mod_end - m->mod_start;

		s = str(m->string);
		check(!(m->mod_start & 0xfff) && m->mod_start >= prev_end && m->mod_end >= m->mod_start &&
		      m->mod_end <= ram_bytes, "mb1: module %u at 0x%x-0x%x: page aligned, after 0x%x, in RAM", i + 1,
		      m->mod_start, m->mod_end, (uint32_t)prev_end);
		printf("mb1: module %u at 0x%x size %u fnv1a 0x%x cmdline '%s'\n", i + 1, m->mod_start, size,
		       fnv1a((const uint8_t *)(uintptr_t)m->mod_start, size), s ? s : "(none)");
		prev_end = m->mod_end;
	}
	printf("mb1: %d checks, %d failed\n", check_count, check_failed);
	return check_failed ? 1 : 0;
}
