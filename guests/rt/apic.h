/*
 * The local APIC (SDM Vol. 3A, ch. 10 "Advanced Programmable Interrupt Controller"; ch. 11 in newer
 * editions) in xAPIC mode (4 KiB of MMIO at the base in IA32_APIC_BASE) or x2APIC mode (MSRs
 * 0x800 + offset/16, SDM 3A 10.12), one set of accessors for both; and time: the TSC frequency and
 * the APIC timer's input frequency.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define MSR_APIC_BASE      0x1B
#define APIC_BASE_BSP      (1u << 8)
#define APIC_BASE_EXTD     (1u << 10) /* x2APIC mode */
#define APIC_BASE_EN       (1u << 11) /* APIC globally enabled */
#define APIC_BASE_ADDR     0xFFFFF000u
#define APIC_DEFAULT_BASE  0xFEE00000u
#define MSR_TSC_DEADLINE   0x6E0
#define MSR_X2APIC_BASE    0x800

#define CPUID1_EDX_APIC        (1u << 9)
#define CPUID1_ECX_X2APIC      (1u << 21)
#define CPUID1_ECX_TSCDEADLINE (1u << 24)

/* Register offsets in the xAPIC page (SDM 3A, Table 10-1); x2APIC MSR = 0x800 + offset / 16. */
#define APIC_ID        0x020
#define APIC_VERSION   0x030
#define APIC_TPR       0x080
#define APIC_PPR       0x0A0
#define APIC_EOI       0x0B0
#define APIC_LDR       0x0D0
#define APIC_DFR       0x0E0 /* xAPIC only */
#define APIC_SVR       0x0F0
#define APIC_ISR       0x100 /* 8 registers, 0x10 apart */
#define APIC_TMR       0x180
#define APIC_IRR       0x200
#define APIC_ESR       0x280
#define APIC_ICR       0x300 /* x2APIC: one 64-bit MSR 0x830, destination in bits 63:32 */
#define APIC_ICR2      0x310 /* xAPIC only: destination in bits 31:24 */
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_LINT1 0x360
#define APIC_LVT_ERROR 0x370
#define APIC_TMICT     0x380 /* timer initial count */
#define APIC_TMCCT     0x390 /* timer current count */
#define APIC_TDCR      0x3E0 /* timer divide configuration */
#define APIC_SELF_IPI  0x3F0 /* x2APIC only */

#define APIC_SVR_ENABLE (1u << 8)

/* ICR low word (SDM 3A, 10.6.1). */
#define ICR_FIXED        (0u << 8)
#define ICR_LOWEST       (1u << 8)
#define ICR_NMI          (4u << 8)
#define ICR_INIT         (5u << 8)
#define ICR_STARTUP      (6u << 8)
#define ICR_LOGICAL      (1u << 11)
#define ICR_BUSY         (1u << 12) /* xAPIC delivery status: send pending */
#define ICR_ASSERT       (1u << 14)
#define ICR_LEVEL        (1u << 15)
#define ICR_SELF         (1u << 18)
#define ICR_ALL          (2u << 18)
#define ICR_ALL_BUT_SELF (3u << 18)

/* LVT entries (SDM 3A, 10.5.1). */
#define LVT_MASKED         (1u << 16)
#define LVT_TIMER_ONESHOT  (0u << 17)
#define LVT_TIMER_PERIODIC (1u << 17)
#define LVT_TIMER_DEADLINE (2u << 17)
#define TDCR_DIV1          0xB

extern bool apic_x2;          /* the accessors use x2APIC MSRs */
extern volatile uint32_t *apic_mmio; /* the xAPIC page */

bool cpu_has_x2apic(void);
bool cpu_has_tsc_deadline(void);
/* Reads IA32_APIC_BASE and uses what it says (mode, MMIO base). False if the APIC is disabled. */
bool apic_probe(void);
/* Turns x2APIC mode on (EN | EXTD) and switches the accessors; false if the CPU lacks it. */
bool apic_enable_x2apic(void);
uint32_t apic_read(uint32_t off);
void apic_write(uint32_t off, uint32_t v);
uint32_t apic_id(void);          /* xAPIC: ID[31:24]; x2APIC: the 32-bit ID */
/* Software-enables this CPU's APIC: SVR = enable | VEC_SPURIOUS, TPR 0, LINT0/1 and error masked,
 * timer masked, ESR cleared. */
void apic_setup(void);
void apic_eoi(void);
bool apic_irr_bit(unsigned vector);
bool apic_isr_bit(unsigned vector);
/* Sends an IPI: `icr` is the ICR low word, `dest` an 8-bit (xAPIC) or 32-bit (x2APIC) destination.
 * In xAPIC mode waits (bounded) for the delivery status to go idle; false if it stays busy. */
bool apic_send_ipi(uint32_t dest, uint32_t icr);

/* Time. tsc_khz from the hypervisor's timing leaf, else the PIT, else CPUID 0x15/0x16. */
#ifndef HV_CPUID_TIMING /* also in include/tessera/hypercall.h */
#define HV_CPUID_TIMING 0x40000010u /* EAX = TSC kHz, EBX = APIC timer input kHz (VMware/ACRN style) */
#endif
extern uint32_t tsc_khz, apic_timer_khz;
extern const char *tsc_source, *apic_timer_source;
bool time_init(void);                 /* false: no TSC frequency found (printed) */
/* APIC timer input frequency (divide by 1): the timing leaf, else measured against the TSC with a
 * masked one-shot. Needs apic_setup(). */
void apic_timer_calibrate(void);
uint64_t tsc_to_us(uint64_t ticks);
uint64_t us_to_tsc(uint64_t us);
void udelay(uint64_t us);
