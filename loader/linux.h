/* Linux bzImage kernels by the x86 boot protocol, 2.06 and later: Documentation/arch/x86/boot.rst
 * ("The Real-Mode Kernel Header", "Details of Header Fields", "Loading The Rest of The Kernel",
 * "32-bit Boot Protocol") and zero-page.rst (struct boot_params). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "loader/loader.h"

/* The setup header: file offsets in the bzImage, the same offsets in boot_params (boot.rst, "The
 * Real-Mode Kernel Header"). Protocol version in brackets where newer than 2.00. */
#define LINUX_SETUP_SECTS       0x1f1   /* u8: setup code in 512-byte sectors after the boot sector; 0 = 4 */
#define LINUX_SYSSIZE           0x1f4   /* u32 [2.04]: protected-mode code in 16-byte paragraphs */
#define LINUX_BOOT_FLAG         0x1fe   /* u16: 0xAA55 */
#define LINUX_JUMP              0x200   /* u8 0xEB, then s8: the header ends at 0x202 + this byte */
#define LINUX_HEADER            0x202   /* u32: "HdrS" */
#define LINUX_VERSION           0x206   /* u16: (major << 8) | minor */
#define LINUX_TYPE_OF_LOADER    0x210   /* u8, write: 0xFF = a loader without an assigned id */
#define LINUX_LOADFLAGS         0x211   /* u8, modify */
#define LINUX_CODE32_START      0x214   /* u32, modify: the 32-bit entry = the load address */
#define LINUX_RAMDISK_IMAGE     0x218   /* u32, write */
#define LINUX_RAMDISK_SIZE      0x21c   /* u32, write */
#define LINUX_HEAP_END_PTR      0x224   /* u16 [2.01], write: heap end - 0x200 */
#define LINUX_CMD_LINE_PTR      0x228   /* u32 [2.02], write */
#define LINUX_INITRD_ADDR_MAX   0x22c   /* u32 [2.03]: highest byte an initrd may occupy */
#define LINUX_KERNEL_ALIGNMENT  0x230   /* u32 [2.05]: alignment a relocatable kernel wants */
#define LINUX_RELOCATABLE       0x234   /* u8 [2.05]: non-zero = loadable at any aligned address */
#define LINUX_XLOADFLAGS        0x236   /* u16 [2.12] */
#define LINUX_CMDLINE_SIZE      0x238   /* u32 [2.06]: longest command line, NUL excluded */
#define LINUX_SETUP_DATA        0x250   /* u64 [2.09], write: a list of struct setup_data; we give none */
#define LINUX_PREF_ADDRESS      0x258   /* u64 [2.10]: where it wants to run (LOAD_PHYSICAL_ADDR) */
#define LINUX_INIT_SIZE         0x260   /* u32 [2.10]: memory it needs from where it runs, to boot */

#define LINUX_HDRS_MAGIC        0x53726448u /* "HdrS" */
#define LINUX_BOOT_FLAG_MAGIC   0xaa55u
#define LINUX_MIN_VERSION       0x0203u     /* initrd_addr_max: the oldest protocol we (and GRUB's
						     * 32-bit `linux`) load */
#define LINUX_CMDLINE_OLD_MAX   255         /* boot.rst, cmdline_size: the limit before protocol 2.06 */

/* loadflags bits */
#define LINUX_LOADED_HIGH       (1u << 0)   /* read: protected-mode code at 0x100000 (a bzImage) */
#define LINUX_CAN_USE_HEAP      (1u << 7)   /* write: heap_end_ptr is valid */
/* xloadflags bits */
#define LINUX_XLF_KERNEL_64     (1u << 0)   /* a 64-bit entry at +0x200 (unused: we take the 32-bit one) */
#define LINUX_XLF_ABOVE_4G      (1u << 1)   /* kernel, boot_params, cmdline, ramdisk may be above 4 GiB */

/* boot_params beyond the setup header (zero-page.rst). */
#define LINUX_BP_SIZE           4096
#define LINUX_BP_ACPI_RSDP_ADDR 0x070       /* u64 */
#define LINUX_BP_E820_ENTRIES   0x1e8       /* u8 */
#define LINUX_BP_HDR_END        0x290       /* the setup header must end by here (edd_mbr_sig_buffer) */
#define LINUX_BP_E820_TABLE     0x2d0       /* 128 x struct boot_e820_entry */
#define LINUX_E820_ENTRY_SIZE   20          /* u64 addr | u64 size | u32 type, packed */
#define LINUX_E820_MAX          128

/* The boot.rst "Sample Boot Configuration" heap end for a real-mode part below 0x90000: unused by the
 * 32-bit protocol (the real-mode setup code does not run) but filled as the protocol asks. */
#define LINUX_HEAP_END          0xe000u

/* GDT descriptors for __BOOT_CS (0x10) and __BOOT_DS (0x18): base 0, limit 4 GiB (G), 32-bit (D/B),
 * present, DPL 0; code execute/read, data read/write (SDM Vol. 3A, 3.4.5). */
#define LINUX_BOOT_CS           0x10
#define LINUX_BOOT_DS           0x18
#define LINUX_GDT_CODE          0x00cf9b000000ffffull
#define LINUX_GDT_DATA          0x00cf93000000ffffull

/* Where the protected-mode kernel goes: 0x100000 for a bzImage (boot.rst, "Loading The Rest of The
 * Kernel"). A relocatable kernel then moves itself to where it runs (its pref_address at the least). */
#define LINUX_LOAD_ADDR         0x100000ull

/* Is this a bzImage, i.e. is "HdrS" at 0x202? */
bool linux_is_bzimage(const void *file, size_t size);

/*
 * loader_load_guest for a bzImage (loader.h): the setup header checked, the protected-mode kernel at
 * 0x100000, the command line, boot_params with its e820 map, the initrd (the extra files concatenated,
 * each 4-byte aligned) as high as initrd_addr_max and RAM allow, a GDT, and the 32-bit boot protocol's
 * start state with ESI = boot_params.
 */
int linux_load_guest(const void *file, size_t size, const char *cmdline, uint64_t ram,
		     const struct loader_file *extra, unsigned nextra, uint64_t rsdp_gpa,
		     loader_write_fn write, void *ctx, struct vcpu_state *start, char *why, size_t whylen);
