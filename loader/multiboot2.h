/* Multiboot2 boot information: tag layouts, as in the Multiboot2 specification 1.0, section 3.6 (what GRUB
 * gives the hypervisor, core/bootinfo.c, and what the loader gives a Multiboot2 guest, loader/mb2.c). */
#pragma once
#include <stdint.h>

#define MB2_BOOTLOADER_MAGIC 0x36d76289u /* EAX at entry (spec 3.3) */
#define MB2_HEADER_MAGIC     0xe85250d6u /* first word of a kernel's Multiboot2 header (spec 3.1.1) */

enum mb2_tag_type {
	MB2_TAG_END = 0,
	MB2_TAG_CMDLINE = 1,
	MB2_TAG_LOADER_NAME = 2,
	MB2_TAG_MODULE = 3,
	MB2_TAG_BASIC_MEMINFO = 4,
	MB2_TAG_BOOTDEV = 5,
	MB2_TAG_MMAP = 6,
	MB2_TAG_FRAMEBUFFER = 8,
	MB2_TAG_EFI32 = 11,
	MB2_TAG_EFI64 = 12,
	MB2_TAG_ACPI_OLD = 14,
	MB2_TAG_ACPI_NEW = 15,
	MB2_TAG_EFI_MMAP = 17,
	MB2_TAG_EFI_BS = 18,
	MB2_TAG_LOAD_BASE_ADDR = 21,
};

/* The information block starts with total_size, reserved; tags follow, each 8-byte aligned. */
struct mb2_info_header {
	uint32_t total_size;
	uint32_t reserved;
};

struct mb2_tag {
	uint32_t type;
	uint32_t size; /* of this tag, header included, padding not */
};

struct mb2_tag_string { /* cmdline, boot loader name */
	uint32_t type, size;
	char string[];
};

struct mb2_tag_module {
	uint32_t type, size;
	uint32_t mod_start, mod_end;
	char cmdline[];
};

struct mb2_tag_basic_meminfo {
	uint32_t type, size;
	uint32_t mem_lower, mem_upper; /* KiB below 1 MiB, KiB above 1 MiB */
};

struct mb2_mmap_entry {
	uint64_t base_addr, length;
	uint32_t type, reserved;
};

struct mb2_tag_mmap {
	uint32_t type, size;
	uint32_t entry_size, entry_version;
	struct mb2_mmap_entry entries[];
};

struct mb2_tag_framebuffer {
	uint32_t type, size;
	uint64_t addr;
	uint32_t pitch, width, height;
	uint8_t bpp;
	uint8_t fb_type; /* 0 indexed, 1 direct RGB, 2 EGA text */
	uint16_t reserved;
	/* colour information follows */
};

struct mb2_tag_efi_mmap {
	uint32_t type, size;
	uint32_t descr_size, descr_vers;
	uint8_t descrs[];
};

_Static_assert(sizeof(struct mb2_mmap_entry) == 24, "Multiboot2 spec 3.6.8");
_Static_assert(sizeof(struct mb2_tag_framebuffer) == 32, "Multiboot2 spec 3.6.12");
