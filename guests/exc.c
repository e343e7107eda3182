/*
 * exc: exceptions as the guest's handler sees them, where the hypervisor gives or passes them on
 * (vmx/exit.c intercepts #DB and #AC, and injects the faults of instructions it refuses), and the
 * #AC loop a guest can build (CVE-2015-5307). `do=`:
 *   checks  (default) one line per check ending ` ok`/` FAIL`, then `exc: N checks, F failed` (0 if
 *           F = 0):
 *           - #AC at CPL 3 (CR0.AM, EFLAGS.AC, a misaligned load) reaches the CPL-0 handler with
 *             error code 0, the faulting EIP, CS 0x1b and RF = 1 in the pushed EFLAGS;
 *           - #DB: single step (DR6.BS, EIP past the instruction, also past a CPUID that exits; over
 *             REP OUTSB one #DB per iteration, RF = 1 pushed but after the last),
 *             an instruction breakpoint (DR6.B0, a fault: RF = 0 pushed, resumed with RF = 1 set by
 *             the handler, no second #DB), a data breakpoint (DR6.B1, a trap), general detect (DR6.BD,
 *             DR7.GD clear in the handler, RF = 1), INT1 (EIP past it);
 *           - the EFLAGS.RF pushed with each fault the hypervisor injects (RDMSR and WRMSR of an
 *             MSR that does not exist, MOV CR4 setting VMXE, RDPMC, VMXON) is 1 like the CPU's own
 *             (UD2), and 0 for INT3 (a trap) (SDM Vol. 3B, 18.3.1.1);
 *           `stepexit=0` leaves out the two single steps over instructions that exit (CPUID, REP
 *           OUTSB), which a CPU that raises the guest's trap in the host cannot run (Bochs 2.7 ryzen:
 *           docs/hardware.md);
 *   acloop  #AC at CPL 3 whose handler is CPL-3 code on a misaligned stack: delivering the #AC
 *           raises #AC again, forever. Prints `exc: entering the #AC loop` first; never ends.
 * (The #DB loop needs a stack that does not move: crash64's do=dbloop, through an IST.)
 * 32-bit protected mode, paging off, runtime IDT (rt/intr.c) plus its own GDT with CPL-3 segments
 * and a TSS (SDM Vol. 3A, 7.12.1: a handler at CPL 0 entered from CPL 3 takes its stack from it).
 */
#include "intr.h"
#include "rt.h"

#define SEL_UCODE 0x1b     /* GDT index 3, RPL 3 */
#define SEL_UDATA 0x23     /* GDT index 4, RPL 3 */
#define SEL_TSS   0x28

#define CR0_AM    (1u << 18)
#define EFL_TF    (1u << 8)
#define EFL_RF    (1u << 16)
#define EFL_AC    (1u << 18)
#define DR6_BD    (1u << 13)
#define DR6_BS    (1u << 14)
#define DR7_GD    (1u << 13)

/* Flat code and data at DPL 0 (0x08, 0x10, as the runtime's) and DPL 3 (0x18, 0x20), and a TSS. */
static uint64_t gdt[6] __attribute__((aligned(8))) = {
	0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull, 0x00cffa000000ffffull, 0x00cff2000000ffffull, 0 };
static uint32_t tss[26] __attribute__((aligned(128)));   /* 32-bit TSS (SDM Vol. 3A, 8.2.1): ESP0 at 4, SS0 at 8 */
static uint8_t kstack[4096] __attribute__((aligned(16)));  /* CPL-0 stack for exceptions from CPL 3 */
static uint8_t ustack[4096] __attribute__((aligned(16)));
uint32_t misaligned[4];        /* user_ac loads from 1 byte into it */

static void load_gdt_tss(void)
{
	uint32_t base = (uint32_t)(uintptr_t)tss, limit = sizeof(tss) - 1;
	struct { uint16_t limit; uint32_t base; } __attribute__((packed)) gdtr = { sizeof(gdt) - 1,
		(uint32_t)(uintptr_t)gdt };

	tss[1] = (uint32_t)(uintptr_t)(kstack + sizeof(kstack));
	tss[2] = 0x10;
	tss[25] = sizeof(tss) << 16;     /* I/O map base past the limit: no I/O bitmap */
	/* Available 32-bit TSS (type 9, present, DPL 0; SDM Vol. 3A, 8.2.2). */
	gdt[5] = (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | (0x89ull << 40) |
		 ((uint64_t)(limit >> 16) << 48) | ((uint64_t)(base >> 24) << 56);
	__asm__ volatile("lgdt %0\n\tljmp $0x08, $1f\n1:\tmovw $0x10, %%ax\n\tmovw %%ax, %%ds\n\t"
			 "movw %%ax, %%es\n\tmovw %%ax, %%ss\n\tltr %w1" : : "m"(gdtr), "r"(SEL_TSS) : "eax", "memory");
}

static uint64_t *idt_base(void)
{
	struct { uint16_t limit; uint32_t base; } __attribute__((packed)) idtr;

	__asm__ volatile("sidt %0" : "=m"(idtr));
	return (uint64_t *)(uintptr_t)idtr.base;
}

/* Into CPL 3 and back: enter_user(eip, esp, eflags) IRETs to CPL-3 code; a CPL-0 handler calls
 * back_to_kernel(), which returns from enter_user on the stack it was called on (the handler's own
 * frame on kstack is abandoned). */
uint32_t kernel_esp;
void enter_user(uint32_t eip, uint32_t esp, uint32_t eflags);
__attribute__((noreturn)) void back_to_kernel(void);
__asm__(".pushsection .text\n"
	"enter_user:\n"
	"\tpushl %ebp\n\tpushl %ebx\n\tpushl %esi\n\tpushl %edi\n"
	"\tmovl %esp, kernel_esp\n"
	"\tmovl 20(%esp), %eax\n\tmovl 24(%esp), %ecx\n\tmovl 28(%esp), %edx\n"
	"\tmovw $0x23, %bx\n\tmovw %bx, %ds\n\tmovw %bx, %es\n\tmovw %bx, %fs\n\tmovw %bx, %gs\n"
	"\tpushl $0x23\n\tpushl %ecx\n\tpushl %edx\n\tpushl $0x1b\n\tpushl %eax\n"
	"\tiretl\n"
	"back_to_kernel:\n"
	"\tmovw $0x10, %ax\n\tmovw %ax, %ds\n\tmovw %ax, %es\n\tmovw %ax, %fs\n\tmovw %ax, %gs\n"
	"\tmovl kernel_esp, %esp\n"
	"\tpopl %edi\n\tpopl %esi\n\tpopl %ebx\n\tpopl %ebp\n"
	"\tret\n"
	/* CPL-3 code: a misaligned load (#AC with AC and AM set), never passed; a CPU without
	 * alignment checking (QEMU 7.2's TCG) comes back through the #UD of the UD2 instead. */
	"user_ac:\n"
	"\tmovl $misaligned + 1, %eax\n"
	"user_ac_fault:\n"
	"\tmovl (%eax), %eax\n"
	"\tud2\n"
	/* The #AC handler of do=acloop: CPL-3 code, so delivery stays on the CPL-3 stack. */
	"user_ac_handler:\n"
	"\tjmp .\n"
	".popsection\n");
extern char user_ac[], user_ac_fault[], user_ac_handler[];

/* What the last exception looked like to its handler, and how the handler resumes. */
static volatile uint32_t seen_count, seen_vector, seen_error, seen_eip, seen_cs, seen_eflags, seen_dr6, seen_dr7;
static volatile uint32_t resume_eip;     /* non-zero: continue there */
static volatile bool resume_rf;          /* set RF in the frame (an instruction breakpoint's handler) */
static volatile bool to_kernel;          /* back_to_kernel() (an exception from CPL 3) */
static volatile bool keep_tf;            /* leave EFLAGS.TF set: single-step on */
static volatile uint32_t rep_rf;         /* single step over REP: bit i = the RF the #DB at EIP fault_eip pushed, i-th */
uint32_t fault_eip, after_eip;           /* labels the asm below stores */
static bool step_exits = true;           /* stepexit=0: no single step over CPUID and REP OUTSB */

static void on_exception(struct irq_frame *f)
{
	uint32_t dr6, dr7;

	__asm__ volatile("mov %%dr6, %0; mov %%dr7, %1" : "=r"(dr6), "=r"(dr7));
	seen_count++;
	seen_vector = f->vector;
	seen_error = f->error;
	seen_eip = f->eip;
	seen_cs = f->cs;
	seen_eflags = f->eflags;
	seen_dr6 = dr6;
	seen_dr7 = dr7;
	__asm__ volatile("mov %0, %%dr6" : : "r"(0xffff0ff0u));   /* only software clears DR6 */
	if (f->vector == 1 && f->eip == fault_eip)
		rep_rf |= !!(f->eflags & EFL_RF) << (seen_count - 1);
	if (!keep_tf || f->eip != fault_eip)      /* single step over REP: on until past it */
		f->eflags &= ~EFL_TF;
	if (resume_rf)
		f->eflags |= EFL_RF;
	if (resume_eip)
		f->eip = resume_eip;
	if (to_kernel)
		back_to_kernel();
}

static void reset_seen(void)
{
	seen_count = seen_vector = seen_error = seen_eip = seen_cs = seen_eflags = seen_dr6 = seen_dr7 = 0;
	resume_eip = 0;
	resume_rf = to_kernel = keep_tf = false;
	rep_rf = 0;
}

/* An instruction expected to fault, resumed at the label after it: fault_eip = its address. */
#define FAULTING(insn, ...) \
	__asm__ volatile("movl $2f, fault_eip\n\tmovl $1f, resume_eip\n2:\t" insn "\n1:" : : __VA_ARGS__)

static void check_fault(const char *what, unsigned vector, uint32_t error, bool rf)
{
	check(seen_count == 1 && seen_vector == vector && seen_error == error && seen_eip == fault_eip &&
	      !!(seen_eflags & EFL_RF) == rf,
	      "exc: %s: vector %u error %u at the instruction %s, RF=%u pushed (want %u)", what, seen_vector,
	      seen_error, seen_eip == fault_eip ? "yes" : "no", !!(seen_eflags & EFL_RF), rf);
}

static void checks_rf(void)
{
	uint32_t cr4;

	reset_seen();
	FAULTING("ud2", "i"(0) : "memory");
	check_fault("UD2 (the CPU's own #UD)", 6, 0, true);
	reset_seen();
	FAULTING("rdmsr", "c"(0x12345678) : "eax", "edx", "memory");
	check_fault("RDMSR of an MSR that does not exist (#GP injected)", 13, 0, true);
	reset_seen();
	FAULTING("wrmsr", "c"(0x12345678), "a"(0), "d"(0) : "memory");
	check_fault("WRMSR of an MSR that does not exist (#GP injected)", 13, 0, true);
	reset_seen();
	__asm__ volatile("mov %%cr4, %0" : "=r"(cr4));
	FAULTING("mov %0, %%cr4", "r"(cr4 | 0x2000) : "memory");
	check_fault("MOV CR4 setting VMXE (#GP injected)", 13, 0, true);
	reset_seen();
	FAULTING("rdpmc", "c"(0) : "eax", "edx", "memory");
	check_fault("RDPMC (#GP injected)", 13, 0, true);
	/* The CPU's own #GP, with an error code: a selector beyond the GDT's limit, whose error code is
	 * the selector without its RPL (SDM Vol. 3A, 6.13 "Error Code"; MOV--Move, "#GP(selector)").
	 * SVM with shadow paging on a CPU without PCID intercepts #GP (svm/spt.c): it must come back
	 * as it was. */
	reset_seen();
	FAULTING("movw %w0, %%fs", "r"(0xfffb) : "memory");
	check_fault("MOV to FS of a selector beyond the GDT (the CPU's own #GP)", 13, 0xfff8, true);
	{
		static uint64_t region;

		reset_seen();
		FAULTING("vmxon %0", "m"(region) : "memory", "cc");
		check_fault("VMXON (#UD injected)", 6, 0, true);
	}
	/* #BP is a trap: EIP past INT3, RF as it was (0). */
	reset_seen();
	__asm__ volatile("movl $1f, fault_eip\n\tint3\n1:" : : : "memory");
	check(seen_count == 1 && seen_vector == 3 && seen_eip == fault_eip && !(seen_eflags & EFL_RF),
	      "exc: INT3: vector %u past the instruction, RF=%u pushed (want 0)", seen_vector, !!(seen_eflags & EFL_RF));
}

/* Single steps over instructions that exit: the hypervisor completes each and raises the trap. */
static void checks_step_exits(void)
{
	static const char bytes[3] = "abc";
	const char *src = bytes;
	uint32_t n = sizeof(bytes);

	/* CPUID: the hypervisor completes it and the #DB still comes after it. */
	reset_seen();
	__asm__ volatile("movl $1f, fault_eip\n\tpushfl\n\torl $0x100, (%%esp)\n\tpopfl\n\tcpuid\n1:"
			 : : "a"(0), "c"(0) : "ebx", "edx", "memory");
	check(seen_count == 1 && seen_vector == 1 && seen_eip == fault_eip && (seen_dr6 & (DR6_BS | 0xf)) == DR6_BS,
	      "exc: single step over CPUID: %u #DB, DR6 0x%x (BS), EIP past the CPUID %s", seen_count, seen_dr6,
	      seen_eip == fault_eip ? "yes" : "no");

	/* REP OUTSB, which exits at each iteration: a #DB after each; those after an iteration
	 * but the last push RF = 1 and point at the instruction, the last pushes RF = 0 and points past
	 * it (SDM Vol. 3B, 18.3.1.1; Bochs 2.7 itself pushes RF = 0 each time). */
	reset_seen();
	keep_tf = true;
	rep_rf = 0;
	__asm__ volatile("movl $2f, fault_eip\n\tmovl $1f, after_eip\n\tpushfl\n\torl $0x100, (%%esp)\n\tpopfl\n"
			 "2:\trep outsb\n1:"
			 : "+S"(src), "+c"(n) : "d"(0x3ff) : "memory", "cc");
	check(seen_count == 3 && rep_rf == 3 && seen_eip == after_eip && !(seen_eflags & EFL_RF) && n == 0,
	      "exc: single step over REP OUTSB: %u #DB, RF pushed 1, 1 then %u (bits 0x%x, want 0x3), EIP past it %s",
	      seen_count, !!(seen_eflags & EFL_RF), rep_rf, seen_eip == after_eip ? "yes" : "no");
	keep_tf = false;
}

static void checks_db(void)
{
	static volatile uint32_t target;
	uint32_t dr7;

	/* Single step: POPF sets TF, the #DB comes after the next instruction (SDM Vol. 3B, 18.3.1.4). */
	reset_seen();
	__asm__ volatile("movl $1f, fault_eip\n\tpushfl\n\torl $0x100, (%%esp)\n\tpopfl\n\tnop\n1:" : : : "memory");
	check(seen_count == 1 && seen_vector == 1 && seen_eip == fault_eip && (seen_dr6 & (DR6_BS | 0xf)) == DR6_BS,
	      "exc: single step: %u #DB, DR6 0x%x (BS), EIP past the NOP %s", seen_count, seen_dr6,
	      seen_eip == fault_eip ? "yes" : "no");
	/* ... over instructions that exit (CPUID, REP OUTSB). */
	if (step_exits)
		checks_step_exits();

	/* Instruction breakpoint in DR0 (R/W0 = 00, LEN0 = 00): a fault, RF pushed as it was (0); the
	 * handler sets RF so that the instruction then runs (SDM Vol. 3B, 18.3.1.1). */
	reset_seen();
	resume_rf = true;
	__asm__ volatile("movl $2f, fault_eip\n\tmovl $2f, %%eax\n\tmov %%eax, %%dr0\n\tmov %0, %%dr7\n"
			 "\tjmp 2f\n2:\tnop\n\tmov %1, %%dr7" : : "r"(0x401u), "r"(0x400u) : "eax", "memory");
	check(seen_count == 1 && seen_vector == 1 && seen_eip == fault_eip && (seen_dr6 & 0xf) == 1 &&
	      !(seen_eflags & EFL_RF),
	      "exc: instruction breakpoint: %u #DB, DR6 0x%x (B0), at the instruction %s, RF=%u pushed (want 0)",
	      seen_count, seen_dr6, seen_eip == fault_eip ? "yes" : "no", !!(seen_eflags & EFL_RF));

	/* Data breakpoint in DR1 on a 4-byte write (R/W1 = 01, LEN1 = 11): a trap after the write. */
	reset_seen();
	dr7 = 0x400 | (1u << 2) | (1u << 20) | (3u << 22);
	__asm__ volatile("mov %1, %%dr1\n\tmov %2, %%dr7\n\tmovl $1f, fault_eip\n\tmovl $5, %0\n1:\tmov %3, %%dr7"
			 : "=m"(target) : "r"(&target), "r"(dr7), "r"(0x400u) : "memory");
	check(seen_count == 1 && seen_vector == 1 && seen_eip == fault_eip && (seen_dr6 & 0xf) == 2 && target == 5,
	      "exc: data breakpoint: %u #DB, DR6 0x%x (B1), EIP past the write %s", seen_count, seen_dr6,
	      seen_eip == fault_eip ? "yes" : "no");

	/* General detect: with DR7.GD a MOV DR faults with DR6.BD; delivery clears GD so the handler
	 * may use the debug registers, and the MOV then runs (SDM Vol. 3B, 18.2.4). */
	reset_seen();
	__asm__ volatile("mov %0, %%dr7\n\tmovl $2f, fault_eip\n2:\tmov %%dr0, %%eax" : : "r"(0x400u | DR7_GD) : "eax", "memory");
	check(seen_count == 1 && seen_vector == 1 && seen_eip == fault_eip && (seen_dr6 & DR6_BD) &&
	      !(seen_dr7 & DR7_GD) && (seen_eflags & EFL_RF),
	      "exc: general detect: %u #DB, DR6 0x%x (BD), DR7 0x%x in the handler (GD clear), at the MOV %s, RF=%u "
	      "pushed (want 1)", seen_count, seen_dr6, seen_dr7, seen_eip == fault_eip ? "yes" : "no",
	      !!(seen_eflags & EFL_RF));

	/* INT1 (ICEBP, 0xF1): #DB after the instruction. Resumed past it whatever comes, so that a CPU
	 * without it (#UD: QEMU 7.2's TCG) fails the check rather than loop on it. */
	reset_seen();
	__asm__ volatile("movl $1f, fault_eip\n\tmovl $1f, resume_eip\n\t.byte 0xf1\n1:" : : : "memory");
	check(seen_count == 1 && seen_vector == 1 && seen_eip == fault_eip,
	      "exc: INT1: %u #DB (vector %u), EIP past the instruction %s", seen_count, seen_vector,
	      seen_eip == fault_eip ? "yes" : "no");
}

static void set_cr0_am(void)
{
	__asm__ volatile("mov %%cr0, %%eax\n\tor %0, %%eax\n\tmov %%eax, %%cr0" : : "i"(CR0_AM) : "eax");
}

static void checks_ac(void)
{
	set_cr0_am();
	reset_seen();
	to_kernel = true;
	enter_user((uint32_t)(uintptr_t)user_ac, (uint32_t)(uintptr_t)(ustack + sizeof(ustack)), 0x2 | EFL_AC);
	check(seen_count == 1 && seen_vector == 17 && seen_error == 0 && seen_eip == (uint32_t)(uintptr_t)user_ac_fault &&
	      seen_cs == SEL_UCODE && (seen_eflags & EFL_RF) && (seen_eflags & EFL_AC),
	      "exc: #AC at CPL 3: vector %u error %u, at the load %s, CS 0x%x, RF=%u pushed (want 1)", seen_vector,
	      seen_error, seen_eip == (uint32_t)(uintptr_t)user_ac_fault ? "yes" : "no", seen_cs,
	      !!(seen_eflags & EFL_RF));
}

int main(void)
{
	const char *what = getarg("do");

	if (!what)
		what = "checks";
	intr_init();
	load_gdt_tss();
	for (unsigned v = 0; v < 32; v++)
		irq_set_handler(v, on_exception);
	if (!strcmp(what, "checks")) {
		step_exits = getarg_num("stepexit", 1) != 0;
		checks_rf();
		checks_db();
		checks_ac();
		printf("exc: %d checks, %d failed\n", check_count, check_failed);
		return check_failed ? 1 : 0;
	}
	if (!strcmp(what, "acloop")) {
		uint64_t *idt = idt_base();
		uint32_t a = (uint32_t)(uintptr_t)user_ac_handler;

		/* #AC through a 32-bit interrupt gate to the DPL-3 code segment: no privilege change, so
		 * delivery pushes on the CPL-3 stack, 2 bytes off alignment (SDM Vol. 3A, 7.12.1). */
		idt[17] = (a & 0xffff) | ((uint64_t)(SEL_UCODE & ~3) << 16) | (0x8eull << 40) | ((uint64_t)(a >> 16) << 48);
		set_cr0_am();
		printf("exc: entering the #AC loop\n");
		enter_user((uint32_t)(uintptr_t)user_ac, (uint32_t)(uintptr_t)(ustack + sizeof(ustack) - 2), 0x2 | EFL_AC);
	} else {
		printf("exc: unknown do=%s\n", what);
		return 3;
	}
	printf("exc: still running after do=%s\n", what);
	return 1;
}
