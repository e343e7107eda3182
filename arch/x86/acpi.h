/* ACPI tables the hypervisor reads: the MADT (which CPUs exist) and the FADT (how to power off). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define ACPI_MAX_CPUS 64

struct acpi_info {
	bool found;                     /* an RSDT/XSDT was read */
	bool has_madt;
	uint32_t apic_ids[ACPI_MAX_CPUS]; /* enabled (or online-capable) processors, MADT order */
	unsigned ncpus;
	uint16_t pm1a_cnt, pm1b_cnt;    /* PM1 control ports from the FADT, 0 if none */
	uint16_t slp_typ_s5;            /* SLP_TYPa for S5 from the DSDT's \_S5 package */
	uint16_t slp_typb_s5;           /* SLP_TYPb, for PM1b */
	bool has_s5;
};

extern struct acpi_info acpi;

/* Reads the tables from the RSDP at `rsdp` (physical; `revision` 2 when the boot loader gave the
 * ACPI 2.0 copy, whose XSDT address is then used). Tables at or above `mapped_top` (not in the host
 * map) are ignored. Reports problems, never fails hard. */
void acpi_init(uint64_t rsdp, int revision, uint64_t mapped_top);
