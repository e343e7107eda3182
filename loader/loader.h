/* The guest loader: recognizes a guest's image (Linux bzImage, Multiboot2, Multiboot1), lays out its
 * memory (image, boot information, modules or initrd) and produces its initial vCPU state. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "vcpu/vcpu_state.h"

/*
 * The guest-physical memory map every guest sees, whatever its boot protocol (a PC's):
 *
 *   0x000000-0x09fbff  usable: conventional memory (639 KiB). Linux needs RAM here for its real-mode
 *                      trampoline; the loader's boot data sits in its first 36 KiB (below).
 *   0x09fc00-0x0fffff  reserved: EBDA, VGA, BIOS area (the ACPI tables at 0xe0000-0xfffff).
 *   0x100000-low       usable: the kernel image, then modules or the initrd; low = min(ram, 3 GiB).
 *   (low-4 GiB         not listed: the hole for devices, I/O APIC and local APIC (gmem/layout.h))
 *   4 GiB-             usable: the rest of RAM, ram - 3 GiB bytes, when ram > 3 GiB.
 *
 * Each range is clipped to the guest's RAM. What the loader places (images, boot information,
 * modules, initrd) lies below the hole: the boot protocols it speaks start in 32-bit mode. The loader's boot data in low memory:
 *
 *   0x0000-0x4fff  nothing (real-mode IVT and BDA stay zero)
 *   0x5000-0x501f  Linux: a GDT with __BOOT_CS 0x10 and __BOOT_DS 0x18 (boot.rst, "32-bit Boot Protocol")
 *   0x6000-0x6fff  Linux: the command line
 *   0x7000-0x7fff  Linux: boot_params, the "zero page", with its e820 table
 *   0x8000-0x8fff  Multiboot1/2: the information block (EBX), its memory map, module list and strings,
 *                  when the kernel's image and modules leave it free (loader_place_info); else the
 *                  lowest free page-aligned 4 KiB of usable RAM below 4 GiB, as GRUB's relocator picks
 *                  any free chunk for it (grub-core/loader/multiboot_mbi2.c)
 *   0x1000-        a Multiboot kernel's segments may start anywhere in usable RAM from here (page 0
 *                  is the real-mode IVT and BDA); a Linux kernel always loads at 1 MiB
 *
 * The loader writes only what differs from zero: guest RAM must be zero before it loads (as gmem
 * gives it), so bss and the untouched parts of boot_params are not written.
 */
#define LOADER_LOW_END      0x9fc00ull  /* end of conventional memory: the EBDA starts here */
#define LOADER_HIGH_BASE    0x100000ull /* 1 MiB: end of the BIOS area, start of high memory */
#define LOADER_GDT_GPA      0x5000ull
#define LOADER_CMDLINE_GPA  0x6000ull   /* Linux command line, NUL included: at most LOADER_CMDLINE_MAX */
#define LOADER_CMDLINE_MAX  0x1000ull
#define LOADER_ZERO_PAGE_GPA 0x7000ull  /* Linux boot_params (ESI) */
#define LOADER_INFO_GPA     0x8000ull   /* Multiboot information (EBX); = GUEST_INFO_GPA in core/guest.h */
#define LOADER_INFO_MAX     0x1000ull
#define LOADER_INFO_END     (LOADER_INFO_GPA + LOADER_INFO_MAX) /* the Linux boot data ends below this */
#define LOADER_IMAGE_MIN    0x1000ull   /* the lowest GPA a Multiboot kernel's segments may occupy */

#define LOADER_MAX_FILES    16          /* extra files (modules, initrd parts) one guest may get */
#define LOADER_NAME         "tessera"   /* the boot loader name a Multiboot guest reads */

/* Writes len bytes from src to guest-physical gpa; 0 or a negative errno. */
typedef int (*loader_write_fn)(void *ctx, uint64_t gpa, const void *src, uint64_t len);

/* A file handed to a guest besides its image (a `for=NAME` module line): an initrd part for Linux, a
 * module for Multiboot. cmdline (NULL = "") is the module's string in the Multiboot module list. */
struct loader_file {
	const void *data;
	size_t size;
	const char *cmdline;
};

/* One guest to load: what loader_load_guest reads and where it writes, by name (designated
 * initializers; a field left out is 0/NULL, which means "none" for each optional one). */
struct loader_job {
	const void *file;               /* the guest's image (its module) */
	size_t size;
	const char *cmdline;            /* its command line (the module line's words) */
	uint64_t ram;                   /* bytes of guest RAM from GPA 0 */
	const struct loader_file *extra;  /* the files `for=NAME` lines hand it, in order */
	unsigned nextra;
	uint64_t rsdp_gpa;              /* ACPI RSDP for boot_params.acpi_rsdp_addr (0 = none) */
	const void *rsdp;               /* a copy of its bytes for the Multiboot2 ACPI tag (NULL = no tag) */
	size_t rsdp_len;
	loader_write_fn write;          /* writes guest memory; NULL = check only, write nothing */
	void *ctx;                      /* write's first argument */
	struct vcpu_state *start;       /* filled: the first vCPU's start state */
	char *why;                      /* filled: a one-line reason or description (NULL = none) */
	size_t whylen;
};

/*
 * Recognizes job->file (Linux bzImage by its setup header "HdrS" at 0x202; Multiboot2 header; Multiboot1
 * header (magic 0x1BADB002 in the first 8 KiB); else a clear error), checks it fits `ram` bytes of guest
 * RAM, writes the guest's memory through `write` (segments, boot information / boot_params + command
 * line + e820 + initrd/modules placement), and fills *start. `extra` lists the files handed to this
 * guest by `for=NAME` module lines (initrd for Linux, its parts concatenated; MB1/MB2 modules in
 * order), `rsdp_gpa` the ACPI RSDP for boot_params.acpi_rsdp_addr (0 = none) and rsdp/rsdp_len a copy
 * of its bytes for the Multiboot2 ACPI tag (type 15 for a revision 2 RSDP of 36 bytes, else type 14
 * with its first 20; NULL = no tag). On error returns negative and a one-line reason in why.
 *
 * Errors: -ENOEXEC the image is none we understand or is malformed (truncated, bad header fields);
 * -ENODEV it requires a feature we do not provide; -EFAULT it, its modules or initrd do not fit in
 * `ram`; -EINVAL the caller's arguments are wrong (command line too long for the kernel, RSDP copy
 * not an RSDP, more than LOADER_MAX_FILES extra files); or the first error `write` returned.
 * `write` may be NULL: then everything is checked and *start filled, but nothing is written (so a
 * caller can refuse a guest before it allocates its memory). On success why holds a one-line
 * description of what was loaded, e.g. "Linux bzImage, boot protocol 2.15, ...".
 */
int loader_load_guest(const struct loader_job *job);

