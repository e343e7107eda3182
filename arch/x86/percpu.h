/* Per-CPU data of the host: one block per CPU, found through GS (this_cpu_id() reads its first word).
 * Only what arch/x86 itself uses: the layers above keep their per-CPU state in arrays of their own,
 * indexed by this_cpu_id() (vmx/vmx.c: VMX operation; vcpu/vcpu.h: vcpu_cpu[], the current vCPU and
 * the vCPUs pinned to the CPU; core/hv.c: the scheduler's), so that this file knows none of their types. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86/spinlock.h"

#define MAX_CPUS 64
#define CPU_MAX_CALLS 8       /* cross-CPU calls waiting at one CPU */

/* A function another CPU asked this one to run (cpu_call, arch/x86/call.c). */
struct cpu_call {
	void (*fn)(void *arg);
	void *arg;
	volatile int *done;   /* set to 1 once fn returned, when the caller waits */
};
#define HOST_STACK_SIZE (16 * 1024)

/* 64-bit TSS. SDM Vol. 3A, 8.7 (Figure 8-11). */
struct tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));
_Static_assert(sizeof(struct tss) == 104, "SDM Vol. 3A 8.7");

struct percpu {
	unsigned id;            /* must stay first: this_cpu_id() reads %gs:0 */
	uint32_t apic_id;
	volatile bool online;   /* set by the CPU itself once it runs C code */
	uint64_t stack_top;     /* its host stack (also HOST_RSP base for VMX) */
	uint64_t gdt[6];        /* null, code64, data, code32, TSS (two slots) */
	struct tss tss;
	/* NMI, #DF and #MC each run on a known-good stack of their own (IST1-3): a machine check
	 * during an NMI must not overwrite the NMI's frame. */
	uint8_t ist_stack[3][4096] __attribute__((aligned(16)));

	/* Set by the console's receive interrupt (arch/x86/trap.c): input waits for the scheduler loop of
	 * this CPU, which leaves the guest it runs at the exit the interrupt caused (vmx/exit.c). */
	volatile bool input_waiting;
	volatile uint64_t input_at;  /* TSC of the first console interrupt since it was cleared (0) */

	/* Cross-CPU calls (arch/x86/call.c): filled by other CPUs, run here on the wake-up IPI. */
	spinlock_t call_lock;
	struct cpu_call calls[CPU_MAX_CALLS];
	volatile unsigned ncalls;
};

extern struct percpu percpu[MAX_CPUS];
extern unsigned cpu_count;   /* CPUs online, boot CPU included */
extern unsigned cpu_present; /* CPUs the MADT lists (1 if there is no MADT) */

static inline struct percpu *this_cpu(void)
{
	extern struct percpu percpu[];
	unsigned id;

	asm volatile("movl %%gs:0, %0" : "=r"(id));
	return &percpu[id];
}

/* Loads this CPU's GDT, TSS and the shared IDT, and points GS at its block. */
void cpu_init_tables(struct percpu *pc);
