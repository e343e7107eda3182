/* Multiboot1 kernels (Multiboot Specification 0.6.96): the header with its a.out-kludge address
 * fields (3.1), the machine state (3.2) and the information block (3.3). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "loader/common.h"
#include "loader/elf.h"
#include "loader/loader.h"

#define MB1_HEADER_MAGIC     0x1badb002u /* the header's first word (3.1.2) */
#define MB1_BOOTLOADER_MAGIC 0x2badb002u /* EAX at entry (3.2) */
#define MB1_SEARCH           8192u       /* the header lies in the first 8 KiB, 4-aligned (3.1.1) */

/* Header flags (3.1.2): bits 0-15 are requirements a loader must meet or refuse, 16-31 optional. */
#define MB1_HF_PAGE_ALIGN    (1u << 0)   /* modules page aligned */
#define MB1_HF_MEMINFO       (1u << 1)   /* mem_* fields (and the memory map if any) */
#define MB1_HF_VIDEO         (1u << 2)   /* a video mode table (3.1.4): we have no display */
#define MB1_HF_REQUIRED      0x0000ffffu
#define MB1_HF_AOUT_KLUDGE   (1u << 16)  /* header_addr..entry_addr valid: load by them, not by ELF */

/*
 * The header (3.1.1), u32 fields:
 *   +0 magic  +4 flags  +8 checksum (the three sum to 0 mod 2^32)
 *   +12 header_addr  +16 load_addr  +20 load_end_addr  +24 bss_end_addr  +28 entry_addr  (flags[16])
 *   +32 mode_type  +36 width  +40 height  +44 depth                                     (flags[2])
 */
struct mb1_header {
	uint32_t magic, flags, checksum;
	uint32_t header_addr, load_addr, load_end_addr, bss_end_addr, entry_addr;
	uint32_t mode_type, width, height, depth;
};
#define MB1_HDR_MAGIC_LEN    12          /* magic, flags, checksum */
#define MB1_HDR_ADDR_LEN     32          /* ... and the address fields */
#define MB1_HDR_VIDEO_LEN    48          /* ... and the graphics fields */
_Static_assert(sizeof(struct mb1_header) == MB1_HDR_VIDEO_LEN, "Multiboot 0.6.96, 3.1.1");

/* Information flags (3.3): which fields of struct mb1_info are valid. */
#define MB1_INFO_MEMORY      (1u << 0)   /* mem_lower, mem_upper */
#define MB1_INFO_BOOTDEV     (1u << 1)
#define MB1_INFO_CMDLINE     (1u << 2)
#define MB1_INFO_MODS        (1u << 3)   /* mods_count, mods_addr */
#define MB1_INFO_AOUT_SYMS   (1u << 4)
#define MB1_INFO_ELF_SHDR    (1u << 5)
#define MB1_INFO_MEM_MAP     (1u << 6)   /* mmap_length, mmap_addr */
#define MB1_INFO_DRIVES      (1u << 7)
#define MB1_INFO_CONFIG      (1u << 8)
#define MB1_INFO_LOADER_NAME (1u << 9)   /* boot_loader_name */
#define MB1_INFO_APM         (1u << 10)
#define MB1_INFO_VBE         (1u << 11)
#define MB1_INFO_FRAMEBUFFER (1u << 12)

/* The information structure (3.3); addresses are 32-bit physical. */
struct mb1_info {
	uint32_t flags;
	uint32_t mem_lower, mem_upper;       /* KiB from 0, KiB from 1 MiB */
	uint32_t boot_device;
	uint32_t cmdline;
	uint32_t mods_count, mods_addr;
	uint32_t syms[4];                    /* a.out symbol table or ELF section headers */
	uint32_t mmap_length, mmap_addr;
	uint32_t drives_length, drives_addr;
	uint32_t config_table;
	uint32_t boot_loader_name;
	uint32_t apm_table;
	uint32_t vbe_control_info, vbe_mode_info;
	uint16_t vbe_mode, vbe_interface_seg, vbe_interface_off, vbe_interface_len;
	uint8_t framebuffer[28];             /* framebuffer_addr .. color_info: flags[12], never set */
};
_Static_assert(sizeof(struct mb1_info) == 116, "Multiboot 0.6.96, 3.3");
_Static_assert(__builtin_offsetof(struct mb1_info, mmap_length) == 44, "Multiboot 0.6.96, 3.3");
_Static_assert(__builtin_offsetof(struct mb1_info, boot_loader_name) == 64, "Multiboot 0.6.96, 3.3");

/* A module (3.3, mods_addr): [mod_start, mod_end) and its string. */
struct mb1_module {
	uint32_t mod_start, mod_end, string, reserved;
};
_Static_assert(sizeof(struct mb1_module) == 16, "Multiboot 0.6.96, 3.3");

/* A memory map entry (3.3): `size` (20: the bytes after it) comes first; mmap_addr points at it.
 * base_addr and length are 64-bit, split because they sit 4 bytes off 8-byte alignment. */
struct mb1_mmap_entry {
	uint32_t size;
	uint32_t base_lo, base_hi, len_lo, len_hi;
	uint32_t type;                       /* 1 usable RAM, anything else reserved */
};
_Static_assert(sizeof(struct mb1_mmap_entry) == 24, "Multiboot 0.6.96, 3.3");

/* Is there a Multiboot1 header (magic at a 4-byte boundary in the first 8 KiB)? 2: with the right
 * checksum, 1: the magic only, 0: none. */
int mb1_header_seen(const void *file, size_t size);

/* How an a.out-kludge image loads: file bytes [off, off + len) at guest_image.lo, then zero to .hi. */
struct mb1_kludge {
	bool used;             /* false: an ELF image, loaded by its program headers */
	uint64_t off, len;
};

/*
 * Checks a Multiboot1 kernel: the header (found, checksum, long enough, no requirement we cannot meet),
 * then with flags[16] the a.out-kludge address fields (3.1.3), else the ELF image (elf.h); everything
 * inside `lim`. Fills *img and *k. -ENOEXEC, -ENODEV or -EFAULT and a reason.
 */
int mb1_check(const void *file, size_t size, const struct elf_limits *lim, struct guest_image *img,
	      struct mb1_kludge *k, char *why, size_t whylen);

/*
 * Builds the information block for placement at guest-physical `gpa` (pointers inside are GPAs):
 * the struct (flags MEMORY | CMDLINE | MEM_MAP | LOADER_NAME, and MODS when there are modules), the
 * memory map of loader.h, the module list, then the strings. NULL strings count as "". Returns its
 * size, or 0 if it does not fit in bufsize.
 */
size_t mb1_build_info(void *buf, size_t bufsize, uint64_t gpa, const char *cmdline, const char *loader_name,
		      uint64_t ram, const struct loader_module *mods, unsigned nmods);

/* The vCPU state a Multiboot1 kernel starts in (3.2): as Multiboot2's with EAX = 0x2BADB002. */
void mb1_start_state(struct vcpu_state *s, uint64_t entry, uint64_t info_gpa);

/* loader_load_guest for a Multiboot1 image (loader.h). */
int mb1_load_guest(const void *file, size_t size, const char *cmdline, uint64_t ram,
		   const struct loader_file *extra, unsigned nextra,
		   loader_write_fn write, void *ctx, struct vcpu_state *start, char *why, size_t whylen);
