/* Multiboot2 kernels (Multiboot2 specification 1.0): ELF32/ELF64 images with a Multiboot2 header, their
 * information block (loader/multiboot2.h) and start state. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "loader/common.h"
#include "loader/elf.h"
#include "loader/loader.h"

/* Where the Multiboot2 header may be: completely inside the image's first 32 KiB (spec 3.1.1). */
#define LOADER_MB2_SEARCH 32768u

/* Is there a Multiboot2 header (magic at an 8-byte boundary in the first 32 KiB)? 2: with the right
 * checksum, 1: the magic only, 0: none. */
int mb2_header_seen(const void *file, size_t size);

/*
 * Checks that `file` (size bytes, untrusted, any alignment) is a Multiboot2 ELF kernel that can run in
 * `ram` bytes of guest RAM with its segments at or above `reserved_end` (the low area that holds the
 * boot information): the ELF header, the Multiboot2 header and its tags, the segments and the entry
 * (elf.h). On success fills *img and returns 0. On failure returns -ENOEXEC (not a kernel we
 * understand), -ENODEV (it requires a Multiboot2 feature we do not provide) or -EFAULT (it does not fit
 * in guest RAM), and writes a one-line English reason, NUL-terminated, into why[0..whylen) (why may be
 * NULL). The boot information it may require is what mb2_build_info gives.
 */
int loader_check(const void *file, size_t size, uint64_t ram, uint64_t reserved_end,
		 struct guest_image *img, char *why, size_t whylen);

/* Copies the segments of an image loader_check accepted (elf_load). */
int loader_load(const void *file, size_t size, loader_write_fn write, void *ctx);

/* What a Multiboot2 information block carries. NULL strings count as "". */
struct mb2_info_args {
	const char *cmdline, *loader_name;
	uint64_t ram;
	const struct loader_module *mods;
	unsigned nmods;
	const void *rsdp;        /* NULL: no ACPI tag */
	size_t rsdp_len;         /* >= 20; 36 with revision >= 2 makes it a type 15 (new) tag */
};

/*
 * Builds the Multiboot2 information block a guest finds in EBX (spec 3.6) in buf: total size, cmdline
 * (type 1), boot loader name (type 2), basic meminfo (type 4), memory map (type 6: the map of loader.h),
 * a module tag per module (type 3), the ACPI RSDP (type 14 or 15), end tag; each tag 8-byte aligned,
 * padding zero. Returns the block's size, or 0 if it does not fit in bufsize.
 */
size_t mb2_build_info_full(void *buf, size_t bufsize, const struct mb2_info_args *a);

/* The same without modules or ACPI (as core/guest.c builds it today). */
size_t mb2_build_info(void *buf, size_t bufsize, const char *cmdline, const char *loader_name, uint64_t ram);

/* The vCPU state a Multiboot2 kernel starts in (spec 3.3), at `entry` with EBX = `info_gpa`. */
void mb2_start_state(struct vcpu_state *s, uint64_t entry, uint64_t info_gpa);

/* loader_load_guest for a Multiboot2 image (loader.h): segments from LOADER_IMAGE_MIN up and clear of
 * the reserved area, modules above them, the information block where neither is (loader_place_info). */
int mb2_load_guest(const void *file, size_t size, const char *cmdline, uint64_t ram,
		   const struct loader_file *extra, unsigned nextra, const void *rsdp, size_t rsdp_len,
		   loader_write_fn write, void *ctx, struct vcpu_state *start, char *why, size_t whylen);
