/* A guest's ACPI tables: RSDP, XSDT, RSDT, FADT, MADT and DSDT for one guest's platform, built into a
 * buffer that the caller copies to guest-physical memory. ACPI 6.3, 5.2 (tables) and 4.1
 * ("Hardware-Reduced ACPI"): no PM1 event/control blocks, no SCI, no GPEs, no PM timer, no FACS.
 *
 * The platform the tables promise, which the hypervisor's devices must keep:
 *
 *   local APIC   xAPIC at ACPI_LAPIC_BASE; vCPU i has APIC ID i and ACPI processor UID i (MADT type 0),
 *                LINT1 of every vCPU is NMI (MADT type 4, UID 0xFF = all).
 *   I/O APIC     (config ioapic) ID ACPI_IOAPIC_ID at ACPI_IOAPIC_BASE, GSIs 0..23 (MADT type 1); ISA
 *                IRQ n is GSI n, edge, active high, except IRQ 0 (the PIT) which is GSI 2 (MADT type 2,
 *                flags 0 = as the ISA bus: edge, high). The device's ID register must read ACPI_IOAPIC_ID.
 *   8259 pair    (config pic) MADT flag PCAT_COMPAT. Linux ignores the PIC under hardware-reduced ACPI.
 *   CMOS RTC     (config rtc) without it the FADT says "CMOS RTC not present" (IAPC_BOOT_ARCH bit 5).
 *   no 8042, no VGA (IAPC_BOOT_ARCH bit 1 clear, bit 2 set); no fixed power or sleep button.
 *   COM1         the DSDT's \_SB.COM1: PNP0501, _UID 1, ports 0x3F8-0x3FF, ISA IRQ 4 (loader/dsdt.asl).
 *
 * Power ports (FADT SLEEP_CONTROL_REG, SLEEP_STATUS_REG, RESET_REG: system I/O, 8 bits, byte access):
 *
 *   pm_port + 0  sleep control (ACPI 6.3, 4.8.3.7), write:   7  6  5      4:2      1  0
 *                                                            -  -  SLP_EN SLP_TYP  -  -
 *                SLP_EN with SLP_TYP = ACPI_S5_SLP_TYP (the DSDT's \_S5) powers the guest off; the DSDT
 *                names no other sleep state. Reads 0.
 *   pm_port + 1  sleep status: bit 7 WAK_STS, write 1 to clear. Linux clears it before it sleeps.
 *   0xCF9        reset register (ACPI 6.3, 4.8.3.6): the OS writes ACPI_RESET_VALUE (0x06: bit 2 "reset
 *                CPU" going 0 -> 1, bit 1 "hard reset", as the Intel PCH reset control register) = reset.
 *
 * vdev/reset.c implements these: vreset_init(r, bus, pm_port, ACPI_S5_SLP_TYP).
 */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ACPI_LAPIC_BASE      0xfee00000u /* local APIC MMIO base (MADT) */
#define ACPI_IOAPIC_BASE     0xfec00000u /* I/O APIC MMIO base */
#define ACPI_IOAPIC_ID       0           /* its APIC ID, as QEMU's; an OS does not compare it with CPUs' */
#define ACPI_IOAPIC_PINS     24          /* GSIs 0..23 (GSI base 0) */

#define ACPI_PM_PORT_DEFAULT 0x600       /* a free I/O range for pm_port */
#define ACPI_PM_PORTS        2           /* pm_port + 0: sleep control, + 1: sleep status */
#define ACPI_SLP_TYP_SHIFT   2           /* sleep control bits 4:2: the sleep type */
#define ACPI_SLP_TYP_MASK    (7u << 2)
#define ACPI_SLP_EN          (1u << 5)   /* sleep control: enter the sleep state SLP_TYP names */
#define ACPI_WAK_STS         (1u << 7)   /* sleep status: woken (write 1 to clear) */
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
	uint16_t pm_port;                /* base of the sleep control/status ports; 0: no ACPI power-off */
};

/* Writes RSDP, XSDT, RSDT, FADT, MADT and DSDT into buf (size bytes) for placement at guest-physical
 * `gpa`: the RSDP first, at the first 16-byte boundary at or after gpa, each table after it on a
 * 16-byte boundary, bytes in between zero. An OS that scans for the RSDP finds it if the caller puts
 * gpa in ACPI_RSDP_AREA_START..END (and the RSDP below the end). Returns the bytes used (from buf)
 * and the RSDP's GPA in *rsdp_gpa; 0 if they do not fit in size, if they would not end below 4 GiB
 * (the RSDT holds 32-bit addresses) or if nvcpus is out of range. */
size_t acpi_build(void *buf, size_t size, uint64_t gpa, const struct acpi_config *c, uint64_t *rsdp_gpa);

/* The DSDT's AML, compiled from loader/dsdt.asl by iasl at build time (build/loader/dsdt_aml.c). */
extern const unsigned char dsdt_aml[];
extern const size_t dsdt_aml_len;
