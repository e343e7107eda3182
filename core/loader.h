/* The guest kernel loader: checks a Multiboot2 ELF image, copies its segments, builds its boot information. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vmx/vcpu_state.h"

/* More program headers than any kernel we run has (GNU ld emits a handful); a bigger count is garbage. */
#define LOADER_MAX_PHNUM 64

/* Where the Multiboot2 header may be: completely inside the image's first 32 KiB (Multiboot2 spec 3.1.1). */
#define LOADER_MB2_SEARCH 32768u

/* The low memory map the guest sees (mb2_build_info): conventional memory ends at 639 KiB, then the
 * EBDA / VGA / BIOS hole up to 1 MiB, as on a PC. */
#define LOADER_LOW_END   0x9fc00ull
#define LOADER_HIGH_BASE 0x100000ull

/* What a guest image needs, found by loader_check. */
struct guest_image {
	uint64_t entry;        /* guest-physical entry point */
	uint64_t lo, hi;       /* GPA span [lo, hi) covered by the loadable segments (memsz) */
	bool elf64;
	unsigned nsegments;    /* PT_LOAD segments with a non-zero memsz */
};

/*
 * Checks that `file` (size bytes, untrusted, any alignment) is a Multiboot2 ELF kernel that can run in
 * `ram` bytes of guest RAM with its segments at or above `reserved_end` (the low area that holds the
 * boot information). See loader.c for the full list of checks. On success fills *img and returns 0.
 * On failure returns -ENOEXEC (not a kernel we understand), -ENODEV (it requires a Multiboot2 feature
 * we do not provide) or -EFAULT (it does not fit in guest RAM), and writes a one-line English reason,
 * NUL-terminated, into why[0..whylen) (why may be NULL).
 */
int loader_check(const void *file, size_t size, uint64_t ram, uint64_t reserved_end,
		 struct guest_image *img, char *why, size_t whylen);

/* Writes len bytes from src to guest-physical gpa; 0 or a negative errno. */
typedef int (*loader_write_fn)(void *ctx, uint64_t gpa, const void *src, uint64_t len);

/*
 * Copies each PT_LOAD segment's file bytes to its p_paddr through `write`, in program-header order.
 * Guest memory is already zero, so the bss part (memsz beyond filesz) is not written. Call only after
 * loader_check succeeded on the same file; the ELF bounds are checked again (-ENOEXEC) rather than trusted.
 * Returns 0 or the first error `write` returned.
 */
int loader_load(const void *file, size_t size, loader_write_fn write, void *ctx);

/*
 * Builds the Multiboot2 information block a guest finds in EBX (Multiboot2 spec 3.6) in buf:
 * total size, cmdline (type 1), boot loader name (type 2), basic meminfo (type 4), memory map
 * (type 6: usable [0, 639 KiB), reserved [639 KiB, 1 MiB), usable [1 MiB, ram), each clipped to ram),
 * end tag; each tag 8-byte aligned, padding zero. NULL strings count as "". Returns the block's size,
 * or 0 if it does not fit in bufsize.
 */
size_t mb2_build_info(void *buf, size_t bufsize, const char *cmdline, const char *loader_name, uint64_t ram);

/* The vCPU state a Multiboot2 kernel starts in (Multiboot2 spec 3.3), at `entry` with EBX = `info_gpa`. */
void mb2_start_state(struct vcpu_state *s, uint64_t entry, uint64_t info_gpa);
