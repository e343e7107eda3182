/* Exceptions and the few interrupts the host takes: vectors, the saved frame, the entry stubs. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define VEC_DB       1     /* debug exception */
#define VEC_NMI      2
#define VEC_UD       6     /* invalid opcode */
#define VEC_DF       8     /* double fault */
#define VEC_SS       12    /* stack fault */
#define VEC_GP       13    /* general protection */
#define VEC_PF       14    /* page fault */
#define VEC_AC       17    /* alignment check */
#define VEC_CONSOLE  0x40  /* the console UART's receive interrupt, from the I/O APIC (arch/x86/irq.c) */
#define VEC_WAKEUP   0xf0  /* IPI: "you have work", wakes a CPU halted in the idle loop */
#define VEC_SPURIOUS 0xff  /* the local APIC's spurious vector (SDM Vol. 3A, 11.9) */

/* Whether exception `vector` is a fault: the class for which the CPU pushes RFLAGS with RF = 1, so
 * that the handler's IRET to the faulting instruction does not meet its instruction breakpoint
 * again (SDM Vol. 3B, 18.3.1.1; classes: SDM Vol. 3A, 7.3, Table 7-1). Not a fault: #DB (a fault
 * only for instruction breakpoints, which push RF as it was, and general detect; a trap otherwise),
 * NMI, #BP and #OF (traps), #DF and #MC (aborts). The reserved vectors count as faults. */
static inline bool exception_is_fault(unsigned vector)
{
	return vector < 32 && !((1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 8 | 1u << 18) >> vector & 1);
}

/* What the stubs push, lowest address first: general registers, then vector and error code, then the
 * CPU's own interrupt frame (SDM Vol. 3A, 6.14.2, Figure 6-9). Layout mirrored in arch/x86/entry.asm. */
struct trap_frame {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;
};
_Static_assert(sizeof(struct trap_frame) == 22 * 8, "entry.asm pushes 22 words");

extern void (*const trap_stubs[32])(void);
void trap_stub_wakeup(void);
void trap_stub_console(void);
void trap_stub_spurious(void);

/* Called by the stubs. */
void trap_handler(struct trap_frame *f);

/* Set by panic(): an NMI then parks the CPU that receives it. */
extern volatile int system_stopping;
