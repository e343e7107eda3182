/* ACPI tables the hypervisor reads: the MADT (which CPUs exist) and the FADT (how to power off). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64
#define ACPI_MAX_IOAPICS 8

/* An I/O APIC from the MADT (ACPI 6.5, 5.2.12.3): its registers' address and its first GSI. */
struct acpi_ioapic {
	uint8_t id;
	uint32_t addr;
	uint32_t gsi_base;
};

/* How an ISA IRQ reaches the I/O APICs: its GSI, polarity and trigger mode. Without an interrupt source
 * override (ACPI 6.5, 5.2.12.5) ISA IRQ n is GSI n, active high, edge triggered (ISA bus conventions). */
struct acpi_isa_irq {
	uint32_t gsi;
	bool active_low;
	bool level;
};

/* A Generic Address Structure (ACPI 6.5, 5.2.3.2, Table 5.1): where a register is. */
#define ACPI_GAS_MEMORY 0
#define ACPI_GAS_IO     1
#define ACPI_GAS_PCI    2     /* PCI configuration space of bus 0 */
struct acpi_gas {
	uint8_t space;
	uint8_t bit_width;
	uint64_t addr;
};

struct acpi_info {
	bool found;                     /* an RSDT/XSDT was read */
	bool has_madt;
	uint32_t apic_ids[ACPI_MAX_CPUS]; /* enabled (or online-capable) processors, MADT order */
	unsigned ncpus;
	uint16_t pm1a_cnt, pm1b_cnt;    /* PM1 control ports from the FADT, 0 if none */
	uint16_t slp_typ_s5;            /* SLP_TYPa for S5 from the DSDT's \_S5 package */
	uint16_t slp_typb_s5;           /* SLP_TYPb, for PM1b */
	bool has_s5;
	struct acpi_ioapic ioapics[ACPI_MAX_IOAPICS]; /* MADT order */
	unsigned nioapics;
	struct acpi_isa_irq isa_irq[16]; /* ISA IRQ 0-15, overrides applied (acpi_init fills the defaults) */
	bool has_reset;                 /* the FADT's RESET_REG is supported (Flags.RESET_REG_SUP) */
	struct acpi_gas reset_reg;
	uint8_t reset_value;
};

extern struct acpi_info acpi;

/* Reads the tables from the RSDP at `rsdp` (physical; `revision` 2 when the boot loader gave the
 * ACPI 2.0 copy, whose XSDT address is then used). Tables at or above `mapped_top` (not in the host
 * map) are ignored. Reports problems, never fails hard. */
void acpi_init(uint64_t rsdp, int revision, uint64_t mapped_top);
