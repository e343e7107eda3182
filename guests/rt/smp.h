/*
 * Application processors (SDM Vol. 3A, 8.4 "Multiple-Processor (MP) Initialization"): a real-mode
 * trampoline copied below 1 MiB, where a STARTUP IPI with vector SMP_TRAMPOLINE >> 12 starts an AP
 * at CS:IP = vector << 8 : 0. It loads the runtime's GDT, enters 32-bit protected mode, takes the
 * next CPU index and its stack, loads the IDT and calls the function given to smp_prepare() with
 * its index (1, 2, ... in arrival order) and APIC ID. 32-bit guests only.
 */
#pragma once

#include <stdint.h>

/* 4 KiB-aligned, below 1 MiB, in guest RAM, clear of the Multiboot2 information tessera puts at
 * 0x8000-0x8FFF: one page at 0x7000, SIPI vector 0x07. */
#define SMP_TRAMPOLINE 0x7000u
#define SMP_SIPI_VECTOR (SMP_TRAMPOLINE >> 12)
#define SMP_MAX_CPUS 16
#define SMP_AP_STACK 8192

typedef void (*ap_main_t)(unsigned index, uint32_t apic_id);

/* Copies the trampoline to SMP_TRAMPOLINE and records `fn`; then send INIT-SIPI-SIPI. */
void smp_prepare(ap_main_t fn);
/* APs that reached the trampoline's protected-mode code (whether or not they had a slot). */
extern volatile uint32_t smp_ap_arrived;
