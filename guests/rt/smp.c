/*
 * The AP trampoline and AP entry (see smp.h).
 */
#ifndef __x86_64__
#include "apic.h"
#include "intr.h"
#include "rt.h"
#include "smp.h"

extern uint64_t rt_gdt[3];
extern char ap_tramp_start[], ap_tramp_end[];
void ap_c_entry(uint32_t index);

static ap_main_t ap_main;
volatile uint32_t smp_ap_arrived;
volatile uint32_t ap_next_index = 1; /* the BSP is index 0 */
uint8_t ap_stacks[SMP_MAX_CPUS * SMP_AP_STACK] __attribute__((aligned(16), section(".noinit")));

/*
 * Real mode at CS = vector << 8, IP = 0 (SDM 3A, 8.4.4.1): DS = CS addresses the copied page, so
 * the GDT pointer is found at its offset in the page. LGDT with a 32-bit operand takes a 32-bit base
 * (the runtime's GDT above 1 MiB). CR0.PE, then a far jump with a 32-bit offset straight into the
 * image's protected-mode code. There: flat segments, an index from LOCK XADD, the stack for it.
 */
__asm__(".pushsection .text\n"
	".code16\n"
	".align 16\n"
	".global ap_tramp_start, ap_tramp_end\n"
	"ap_tramp_start:\n"
	"\tcli\n"
	"\tcld\n"
	"\tmovw %cs, %ax\n"
	"\tmovw %ax, %ds\n"
	"\tlgdtl (ap_tramp_gdtr - ap_tramp_start)\n"
	"\tmovl %cr0, %eax\n"
	"\torl $1, %eax\n"
	"\tmovl %eax, %cr0\n"
	"\tljmpl $0x08, $ap_pm_entry\n"
	".align 8\n"
	"ap_tramp_gdtr:\n"
	"\t.word 23\n"
	"\t.long rt_gdt\n"
	"ap_tramp_end:\n"
	".code32\n"
	"ap_pm_entry:\n"
	"\tmovw $0x10, %ax\n"
	"\tmovw %ax, %ds\n\tmovw %ax, %es\n\tmovw %ax, %ss\n\tmovw %ax, %fs\n\tmovw %ax, %gs\n"
	"\tlock incl smp_ap_arrived\n"
	"\tmovl $1, %eax\n"
	"\tlock xaddl %eax, ap_next_index\n"
	"\tcmpl $" "16" ", %eax\n" /* SMP_MAX_CPUS */
	"\tjae 9f\n"
	"\tmovl %eax, %esp\n"
	"\tshll $13, %esp\n" /* * SMP_AP_STACK: the top of slot `index - 1` */
	"\taddl $ap_stacks, %esp\n"
	"\tsubl $12, %esp\n"
	"\tpushl %eax\n"
	"\tcall ap_c_entry\n"
	"9:\tcli\n"
	"\thlt\n"
	"\tjmp 9b\n"
	".popsection\n");
_Static_assert(SMP_MAX_CPUS == 16 && SMP_AP_STACK == 1 << 13, "the trampoline's constants");

void ap_c_entry(uint32_t index)
{
	intr_init();
	ap_main(index, apic_id());
	for (;;)
		__asm__ volatile("cli; hlt");
}

void smp_prepare(ap_main_t fn)
{
	volatile uint8_t *dst = (volatile uint8_t *)(uintptr_t)SMP_TRAMPOLINE;

	ap_main = fn;
	for (const char *s = ap_tramp_start; s < ap_tramp_end; s++)
		*dst++ = (uint8_t)*s;
}
#endif
