/* What the boot loader told us, read once from the Multiboot2 information into plain C. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "pmm/pmm.h"

#define BOOTINFO_MAX_REGIONS 128
#define BOOTINFO_MAX_MODULES 32

struct boot_module {
	uint64_t start, end;  /* physical, end exclusive */
	const char *cmdline;  /* points into the information block, NUL-terminated ("" if none) */
};

struct boot_framebuffer {
	uint64_t addr;
	uint32_t pitch, width, height;
	uint8_t bpp, type;    /* type as in the tag: 0 indexed, 1 RGB, 2 EGA text */
};

struct bootinfo {
	uint64_t mbi_start, mbi_end;  /* the information block itself, end exclusive */
	const char *cmdline;          /* "" if absent */
	const char *loader_name;      /* "" if absent */
	struct mem_region regions[BOOTINFO_MAX_REGIONS];
	size_t nregions;
	size_t efi_mmap_entries;      /* descriptors in the EFI memory map tag, 0 if absent */
	struct boot_module modules[BOOTINFO_MAX_MODULES];
	size_t nmodules;
	uint64_t rsdp;                /* physical address of the ACPI RSDP copy inside the block, 0 if none */
	int rsdp_revision;            /* 0: ACPI 1.0 (RSDT), 2: ACPI 2.0+ (XSDT); from the tag type */
	bool has_framebuffer;
	struct boot_framebuffer fb;
	bool efi;                     /* booted from UEFI (an EFI system table or EFI memory map tag) */
};

/*
 * Walks the tag list at `mbi` (whose first word is its total size). Every tag is checked to lie inside
 * the block, be at least 8 bytes and be 8-byte aligned, and the list must end with an END tag; a
 * malformed list is reported through printk and the walk stops there, keeping what was read before.
 * `mbi_phys` is the physical address of `mbi` (the hypervisor maps 1:1; host tests pass a fake one).
 * Returns 0 for a well-formed list, -EINVAL otherwise.
 */
int bootinfo_parse(const void *mbi, uint64_t mbi_phys, struct bootinfo *bi);
