/* What the loader's format files share (loader/loader.c): reasons, reading untrusted bytes, the guest's
 * memory map, placing modules, writing guest memory. Not for use outside loader/. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lib/string.h"
#include "loader/loader.h"

/* Writes a one-line reason, NUL-terminated, into why[0..whylen) (why may be NULL). */
__attribute__((format(printf, 3, 4)))
void loader_say(char *why, size_t whylen, const char *fmt, ...);

/* Does [off, off + len) lie inside a file of `size` bytes? Written so that nothing can overflow. */
static inline bool in_file(uint64_t off, uint64_t len, size_t size)
{
	return off <= size && len <= size - off;
}

/* Little-endian fields at any alignment (the image is untrusted and may be unaligned). */
static inline uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void wr16(uint8_t *p, uint16_t v) { memcpy(p, &v, sizeof(v)); }
static inline void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, sizeof(v)); }
static inline void wr64(uint8_t *p, uint64_t v) { memcpy(p, &v, sizeof(v)); }

/* v rounded up to a multiple of a (a power of two); UINT64_MAX if that overflows. */
static inline uint64_t align_up(uint64_t v, uint64_t a)
{
	return v > UINT64_MAX - (a - 1) ? UINT64_MAX : (v + a - 1) & ~(a - 1);
}

static inline uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static inline uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* One range of the memory map (loader.h): the e820 and Multiboot types agree on 1 and 2. */
struct loader_region {
	uint64_t base, len;
	uint32_t type;
};
#define LOADER_MEM_USABLE   1
#define LOADER_MEM_RESERVED 2

/* The memory map of a guest with `ram` bytes (loader.h): at most LOADER_MAP_MAX ranges, in address order. */
#define LOADER_MAP_MAX 4
unsigned loader_memory_map(uint64_t ram, struct loader_region map[LOADER_MAP_MAX]);

/* Is [gpa, gpa + len) inside the RAM of a guest with `ram` bytes (gmem_layout: not in the hole below
 * 4 GiB) and clear of the reserved area [LOADER_LOW_END, 1 MiB)? If not,
 * says why ("<what> at GPA ... (... bytes) is outside its RAM ..." / "... overlaps the reserved ...")
 * and returns -EFAULT. */
int loader_check_range(const char *what, uint64_t gpa, uint64_t len, uint64_t ram, char *why, size_t whylen);

/* A module as a Multiboot information block lists it. */
struct loader_module {
	uint64_t start, end;     /* GPA range [start, end) */
	const char *cmdline;     /* never NULL */
};

/* Places the extra files one after the other from `from` up, each page aligned, none in the reserved
 * area (a file that would reach into it moves to 1 MiB); fills mods[0..n). -EFAULT and a reason if
 * one does not fit below ram. */
int loader_place_modules(const struct loader_file *extra, unsigned n, uint64_t from, uint64_t ram,
			 struct loader_module *mods, char *why, size_t whylen);

/*
 * Where a Multiboot information block (at most LOADER_INFO_MAX bytes) goes: LOADER_INFO_GPA when the
 * image's span [img_lo, img_hi) and the modules leave it free, else the lowest page-aligned address in
 * usable RAM below 4 GiB (the block's pointers are 32-bit) clear of both. 0 and a reason if there is
 * none. The image span covers every segment (and bss), so nothing the kernel owns is overwritten.
 */
uint64_t loader_place_info(uint64_t img_lo, uint64_t img_hi, const struct loader_module *mods, unsigned nmods,
			   uint64_t ram, char *why, size_t whylen);

/* write(ctx, gpa, src, len), unless write is NULL (a check-only run); a failure gets a reason. */
int loader_put(loader_write_fn write, void *ctx, uint64_t gpa, const void *src, uint64_t len,
	       char *why, size_t whylen);

/* The vCPU state a Multiboot kernel starts in (Multiboot 0.6.96, 3.2; Multiboot2 1.0, 3.3): 32-bit
 * protected mode with flat segments, paging and interrupts off, EAX = magic, EBX = info. */
void loader_mb_start_state(struct vcpu_state *s, uint64_t entry, uint32_t magic, uint64_t info_gpa);
