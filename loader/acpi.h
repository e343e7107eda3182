/* A guest's ACPI tables: RSDP, XSDT, RSDT, FADT, FACS, MADT and DSDT for one guest's platform, built
 * into a buffer that the caller copies to guest-physical memory. ACPI 6.3, 5.2 (tables) and 4.8 (the
 * fixed hardware of a PC: PM1 event and control blocks, the PM timer, the SCI; not hardware-reduced).
 *
 * The platform the tables promise, which the hypervisor's devices must keep:
 *
 *   local APIC   xAPIC at ACPI_LAPIC_BASE; vCPU i has APIC ID i and ACPI processor UID i (MADT type 0),
 *                LINT1 of every vCPU is NMI (MADT type 4, UID 0xFF = all).
 *   I/O APIC     (config ioapic) ID ACPI_IOAPIC_ID at ACPI_IOAPIC_BASE, GSIs 0..23 (MADT type 1); ISA
 *                IRQ n is GSI n, edge, active high, except IRQ 0 (the PIT) which is GSI 2 (MADT type 2,
 *                flags 0 = as the ISA bus: edge, high) and IRQ 9 (the SCI), GSI 9 level, active high
 *                (MADT type 2, flags 0xD, as QEMU's tables). The device's ID register must read
 *                ACPI_IOAPIC_ID.
 *   8259 pair    (config pic) MADT flag PCAT_COMPAT.
 *   CMOS RTC     (config rtc) without it the FADT says "CMOS RTC not present" (IAPC_BOOT_ARCH bit 5).
 *   no 8042, no VGA (IAPC_BOOT_ARCH bit 1 clear, bit 2 set); no fixed power or sleep button.
 *   COM1         the DSDT's \_SB.COM1: PNP0501, _UID 1, ports 0x3F8-0x3FF, ISA IRQ 4 (loader/dsdt.asl).
 *   ACPI PM      (config pm_base, required) the ports of vdev/pmtimer.h: PM1a_EVT_BLK at pm_base + 0
 *                (PM1_EVT_LEN 4), PM1a_CNT_BLK at + 4 (PM1_CNT_LEN 2), PM_TMR_BLK at + 8 (PM_TMR_LEN 4,
 *                32 bits: FADT TMR_VAL_EXT); SCI_INT = ISA IRQ 9; SMI_CMD 0 (ACPI mode always, SCI_EN
 *                reads 1). SLP_EN with SLP_TYP = ACPI_S5_SLP_TYP (the DSDT's \_S5) in PM1a_CNT powers
 *                the guest off. A FACS (no waking vector).
 *   0xCF9        reset register (ACPI 6.3, 4.8.4.6): the OS writes ACPI_RESET_VALUE (0x06: bit 2 "reset
 *                CPU" going 0 -> 1, bit 1 "hard reset", as the Intel PCH reset control register) = reset.
 *
 * ACPI_PM_PORT_DEFAULT (0x600) is no longer in the tables: it is the sleep port of tessera's own guests
 * (vdev/reset.h: SLP_EN bit 5, SLP_TYP bits 4:2 of a byte), which the hardware-reduced tables named.
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_LAPIC_BASE      0xfee00000u /* local APIC MMIO base (MADT) */
#define ACPI_IOAPIC_BASE     0xfec00000u /* I/O APIC MMIO base */
#define ACPI_IOAPIC_ID       0           /* its APIC ID, as QEMU's; an OS does not compare it with CPUs' */
#define ACPI_IOAPIC_PINS     24          /* GSIs 0..23 (GSI base 0) */

#define ACPI_PM_PORT_DEFAULT 0x600       /* tessera's guests' sleep port (vdev/reset.h), not in the tables */
#define ACPI_PM_BASE         0xb000      /* the PM block's ports (the Bochs BIOS's PM base) */
#define ACPI_PM1_EVT         0           /* PM1a_EVT_BLK = pm_base + 0 */
#define ACPI_PM1_CNT         4           /* PM1a_CNT_BLK = pm_base + 4 */
#define ACPI_PM_TMR          8           /* PM_TMR_BLK = pm_base + 8 */
#define ACPI_PM_LEN          12          /* the whole block */
#define ACPI_PM1_EVT_LEN     4           /* status (2 bytes) then enable (2 bytes) */
#define ACPI_PM1_CNT_LEN     2
#define ACPI_PM_TMR_LEN      4
#define ACPI_SCI_IRQ         9           /* FADT SCI_INT: ISA IRQ 9 = GSI 9 */
#define ACPI_S5_SLP_TYP      5           /* \_S5's SLP_TYPa in loader/dsdt.asl: soft off */
#define ACPI_RESET_PORT      0xcf9       /* FADT RESET_REG */
#define ACPI_RESET_VALUE     0x06        /* FADT RESET_VALUE */

#define ACPI_RSDP_AREA_START 0xe0000     /* the BIOS area where an OS scans for "RSD PTR " on */
#define ACPI_RSDP_AREA_END   0x100000    /* 16-byte boundaries (ACPI 6.3, 5.2.5.1) */
#define ACPI_MAX_VCPUS       255         /* xAPIC IDs 0..254 (0xFF is the broadcast) */
#define ACPI_TABLES_MAX      4096        /* acpi_build never needs more, even for ACPI_MAX_VCPUS */
#define ACPI_RSDP_LEN        36          /* the RSDP of ACPI 2.0 and later (5.2.5.3) */

struct acpi_config {
	unsigned nvcpus;                 /* 1..ACPI_MAX_VCPUS: local APIC IDs 0..nvcpus-1 */
	bool ioapic;                     /* an I/O APIC (and the IRQ 0 -> GSI 2 override) */
	bool pic;                        /* the 8259 pair exists: MADT PCAT_COMPAT */
	bool rtc;                        /* a CMOS RTC at 0x70/0x71 */
	uint16_t pm_base;                /* the ACPI PM block's ports (ACPI_PM_*); 0 is refused */
};

/* Writes RSDP, XSDT, RSDT, FADT, MADT, DSDT and FACS into buf (size bytes) for placement at guest-physical
 * `gpa`: the RSDP first, at the first 16-byte boundary at or after gpa, each table after it on a
 * 16-byte boundary, bytes in between zero. An OS that scans for the RSDP finds it if the caller puts
 * gpa in ACPI_RSDP_AREA_START..END (and the RSDP below the end). Returns the bytes used (from buf)
 * and the RSDP's GPA in *rsdp_gpa; 0 if they do not fit in size, if they would not end below 4 GiB
 * (the RSDT holds 32-bit addresses), if nvcpus is out of range or pm_base is 0 or too high. */
size_t acpi_build(void *buf, size_t size, uint64_t gpa, const struct acpi_config *c, uint64_t *rsdp_gpa);

/* The DSDT's AML, compiled from loader/dsdt.asl by iasl at build time (build/loader/dsdt_aml.c). */
extern const unsigned char dsdt_aml[];
extern const size_t dsdt_aml_len;
