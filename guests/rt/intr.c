/*
 * GDT, IDT and interrupt stubs for the 32-bit guests (see intr.h).
 */
#ifndef __x86_64__
#include "intr.h"
#include "rt.h"

/* Flat 4 GiB code and data (SDM 3A, 3.4.5); the AP trampoline loads this GDT too (smp.c). */
uint64_t rt_gdt[3] __attribute__((aligned(8))) = { 0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull };
static uint64_t idt[256] __attribute__((aligned(8)));
static irq_handler_t handlers[256];
static int tables_built;
volatile uint32_t spurious_count;

void irq_dispatch(struct irq_frame *f);
extern char isr_stubs[];

/*
 * 256 stubs, 16 bytes apart: push a 0 where the CPU pushes no error code (all but 8, 10-14, 17, 21,
 * 29, 30: SDM 3A, Table 6-1 and 6.13), push the vector, join the common path, which saves the
 * general registers, calls irq_dispatch(frame) and returns with IRET.
 */
__asm__(".pushsection .text\n"
	".align 16\n"
	"isr_stubs:\n"
	".set vec, 0\n"
	".rept 256\n"
	".align 16\n"
	".if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)\n"
	".else\n"
	"\tpushl $0\n"
	".endif\n"
	"\tpushl $vec\n"
	"\tjmp isr_common\n"
	".set vec, vec + 1\n"
	".endr\n"
	"isr_common:\n"
	"\tpushal\n"
	"\tcld\n"
	"\tmovl %esp, %eax\n"
	"\tpushl %eax\n"
	"\tcall irq_dispatch\n"
	"\taddl $4, %esp\n"
	"\tpopal\n"
	"\taddl $8, %esp\n"
	"\tiretl\n"
	".popsection\n");

static void spurious(struct irq_frame *f)
{
	(void)f;
	__atomic_fetch_add(&spurious_count, 1, __ATOMIC_RELAXED);
}

void irq_dispatch(struct irq_frame *f)
{
	irq_handler_t h = handlers[f->vector & 0xff];

	if (h) {
		h(f);
		return;
	}
	if (f->vector < 32)
		printf("rt: exception %u error 0x%x at eip 0x%x\n", f->vector, f->error, f->eip);
	else
		printf("rt: unexpected interrupt vector 0x%x at eip 0x%x\n", f->vector, f->eip);
	exit(2);
}

void irq_set_handler(unsigned vector, irq_handler_t h)
{
	handlers[vector & 0xff] = h;
}

void intr_init(void)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) gdtr = { sizeof(rt_gdt) - 1, (uint32_t)(uintptr_t)rt_gdt },
				  idtr = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };

	if (!__atomic_exchange_n(&tables_built, 1, __ATOMIC_ACQ_REL)) {
		for (int v = 0; v < 256; v++) {
			uint32_t a = (uint32_t)(uintptr_t)isr_stubs + 16 * v;
			/* 32-bit interrupt gate (IF cleared on entry): offset, selector, P DPL0 type 0xE. */
			idt[v] = (a & 0xffff) | ((uint64_t)SEL_CODE32 << 16) | (0x8eull << 40) |
				 ((uint64_t)(a >> 16) << 48);
		}
		handlers[VEC_SPURIOUS] = spurious;
	}
	__asm__ volatile("lgdt %0\n\t"
			 "ljmp $0x08, $1f\n"
			 "1:\tmovw $0x10, %%ax\n\t"
			 "movw %%ax, %%ds\n\tmovw %%ax, %%es\n\tmovw %%ax, %%ss\n\t"
			 "movw %%ax, %%fs\n\tmovw %%ax, %%gs\n\t"
			 "lidt %1"
			 :
			 : "m"(gdtr), "m"(idtr)
			 : "eax", "memory");
}
#endif
