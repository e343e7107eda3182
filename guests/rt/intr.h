/*
 * Interrupts for the 32-bit guests: a flat GDT and a 256-entry IDT whose every gate leads to a small
 * stub (SDM Vol. 3A, 6.10-6.12: protected-mode delivery reads both tables), and a C handler per
 * vector. Without a handler an exception or interrupt is reported and the guest exits 2.
 * Not built into the 64-bit runtime.
 */
#pragma once

#include <stdint.h>

/* What the stub leaves on the stack: PUSHA's registers, the vector, the error code (0 where the
 * CPU pushes none), then the CPU's EIP, CS, EFLAGS (no privilege change: no ESP, SS). */
struct irq_frame {
	uint32_t edi, esi, ebp, esp, ebx, edx, ecx, eax;
	uint32_t vector, error;
	uint32_t eip, cs, eflags;
};

typedef void (*irq_handler_t)(struct irq_frame *f);

#define SEL_CODE32 0x08
#define SEL_DATA32 0x10
#define VEC_NMI 2
#define VEC_SPURIOUS 0xFF /* the spurious-interrupt vector the runtime programs into the SVR */

/* Builds the tables (once) and loads them on this CPU; APs call it too. */
void intr_init(void);
void irq_set_handler(unsigned vector, irq_handler_t h);
/* Spurious interrupts (VEC_SPURIOUS) seen, over all CPUs: counted, never EOIed (SDM 3A, 10.9). */
extern volatile uint32_t spurious_count;
