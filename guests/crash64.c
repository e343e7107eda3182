/*
 * crash64: the ways of misbehaving that need 64-bit mode (crash.c has the 32-bit ones). An ELF64
 * guest: rt/entry64.asm has put it in long mode on 1:1 page tables. `do=`:
 *   cr8      RDMSR of an MSR that does not exist (#GP injected, caught), then MOV to and from CR8:
 *            both complete (CR8 exists only in 64-bit mode, SDM Vol. 3A, 2.5)   -> exit 0
 *   pgoff64  MOV CR0 clearing PG in 64-bit mode: #GP(0) (SDM Vol. 2B, MOV CR; Vol. 3A, 10.8.5.4),
 *            caught, still in long mode                                          -> exit 0
 */
#include "rt.h"

#define MSR_EFER 0xC0000080
#define EFER_LMA (1ull << 10)
#define SEL_CODE64 0x08    /* rt/entry64.asm's GDT */

/*
 * A 32-vector IDT of 64-bit interrupt gates (SDM Vol. 3A, 6.14.1). Every stub pushes a 0 where the
 * CPU pushes no error code, then its vector; the common path records the vector, drops both words
 * and returns with IRETQ to `recover_rip`: a label after the instruction meant to fault, or
 * unexpected() for any other exception.
 */
static uint64_t idt[64] __attribute__((aligned(16)));
volatile uint64_t caught_vector = ~0ull, recover_rip;
extern char stubs64[];

__asm__(".pushsection .text\n"
	".align 16\n"
	"stubs64:\n"
	".set vec, 0\n"
	".rept 32\n"
	".align 16\n"
	".if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)\n"
	".else\n"
	"\tpushq $0\n"
	".endif\n"
	"\tpushq $vec\n"
	"\tjmp common64\n"
	".set vec, vec + 1\n"
	".endr\n"
	"common64:\n"
	"\tpopq caught_vector(%rip)\n"   /* the vector */
	"\taddq $8, %rsp\n"              /* the error code */
	"\tpushq %rax\n"
	"\tmovq recover_rip(%rip), %rax\n"
	"\tmovq %rax, 8(%rsp)\n"         /* the return RIP of the frame */
	"\tpopq %rax\n"
	"\tiretq\n"
	".popsection\n");

__attribute__((noreturn)) void unexpected(void);
void unexpected(void)
{
	printf("crash64: unexpected exception %llu\n", (unsigned long long)caught_vector);
	exit(2);
}

static void load_idt(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) idtr = { sizeof(idt) - 1,
		(uint64_t)(uintptr_t)idt };

	for (unsigned v = 0; v < 32; v++) {
		uint64_t a = (uint64_t)(uintptr_t)stubs64 + 16 * v;

		/* offset 15:0, selector, type 0xE (interrupt gate) P DPL 0, offset 31:16; offset 63:32. */
		idt[2 * v] = (a & 0xffff) | ((uint64_t)SEL_CODE64 << 16) | (0x8eull << 40) | (((a >> 16) & 0xffff) << 48);
		idt[2 * v + 1] = a >> 32;
	}
	recover_rip = (uint64_t)(uintptr_t)unexpected;
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

static int do_cr8(void)
{
	uint64_t in = 7, out = 0;

	__asm__ volatile("leaq 1f(%%rip), %%rax\n\tmovq %%rax, recover_rip(%%rip)\n\t"
			 "movl $0x12345678, %%ecx\n\trdmsr\n1:" : : : "rax", "rcx", "rdx", "memory");
	recover_rip = (uint64_t)(uintptr_t)unexpected;
	check(caught_vector == 13, "crash64: RDMSR 0x12345678 raised vector %llu", (unsigned long long)caught_vector);
	__asm__ volatile("mov %1, %%cr8\n\tmov %%cr8, %0" : "=r"(out) : "r"(in) : "memory");
	check(out == 7, "crash64: after the injected #GP, mov cr8 wrote 7 and read %llu", (unsigned long long)out);
	__asm__ volatile("mov %0, %%cr8" : : "r"(0ull) : "memory");
	return check_failed ? 1 : 0;
}

static int do_pgoff64(void)
{
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\tmovq %%rax, recover_rip(%%rip)\n\t"
			 "movq %%cr0, %%rax\n\tbtrq $31, %%rax\n\tmovq %%rax, %%cr0\n1:" : : : "rax", "memory");
	recover_rip = (uint64_t)(uintptr_t)unexpected;
	check(caught_vector == 13, "crash64: clearing CR0.PG in 64-bit mode raised vector %llu",
	      (unsigned long long)caught_vector);
	check((read_cr0() & (1ul << 31)) && (rdmsr(MSR_EFER) & EFER_LMA), "crash64: still in long mode with paging");
	return check_failed ? 1 : 0;
}

int main(void)
{
	const char *what = getarg("do");

	if (!what) {
		printf("crash64: usage: do=cr8|pgoff64\n");
		return 3;
	}
	printf("crash64: doing %s\n", what);
	load_idt();
	if (!strcmp(what, "cr8"))
		return do_cr8();
	if (!strcmp(what, "pgoff64"))
		return do_pgoff64();
	printf("crash64: unknown do=%s\n", what);
	return 3;
}
