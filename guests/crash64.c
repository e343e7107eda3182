/*
 * crash64: the ways of misbehaving that need 64-bit mode (crash.c has the 32-bit ones). An ELF64
 * guest: rt/entry64.asm has put it in long mode on 1:1 page tables. `do=`:
 *   cr8      RDMSR of an MSR that does not exist (#GP injected, caught), then MOV to and from CR8:
 *            both complete (CR8 exists only in 64-bit mode, SDM Vol. 3A, 2.5)   -> exit 0
 *   pgoff64  MOV CR0 clearing PG in 64-bit mode: #GP(0) (SDM Vol. 2B, MOV CR; Vol. 3A, 10.8.5.4),
 *            caught, still in long mode; MOV CR0 setting bit 32: #GP(0) (the same page: bits 63:32
 *            are reserved), CR0 unchanged; CLTS after setting CR0.TS clears it; MOV CR4 setting
 *            MCE, which CPUID hides: #GP(0)                                      -> exit 0
 *   mmio     loads from an emulated device register (the I/O APIC's, mapped uncached at 0xFEC00000)
 *            by MOV and MOVSXD, each against the value the CPU would load        -> exit 0
 *   mmiostack  a #GP (a load from a non-canonical address) with RSP in the I/O APIC's page: the
 *            exception's delivery pushes its frame into a device, which no instruction at RIP did;
 *            the hypervisor stops the guest saying so                          -> stopped
 *   dbloop   a data breakpoint on the IDT's #DB gate, delivered on an IST stack, then a read of the
 *            gate: each #DB's delivery reads the gate and raises the next, on the same stack, forever
 *            (CVE-2015-8104). Prints `crash64: entering the #DB loop`          -> never ends
 *   cacheops WBINVD and WBNOINVD at CPL 0 complete (the hypervisor makes them no-ops); MONITOR and
 *            MWAIT, which CPUID hides, raise #UD (SDM Vol. 2B and APM Vol. 3: #UD where
 *            CPUID.01H:ECX.MONITOR = 0)                                       -> exit 0
 *   softint  INT3 and INT 0x30 with RSP at the top of a page nothing has touched (with alloc=lazy
 *            chunk=4K not backed yet: the delivery's pushes exit to the hypervisor): each handler,
 *            which counts its entries and returns, runs exactly once        -> exit 0
 *            (`intn=0`: INT3 only; Bochs 2.7's SVM reports no EXITINTINFO of its own for INT n)
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
static uint64_t idt[128] __attribute__((aligned(16)));   /* 64 gates: 32-63 absent, but softint's */
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

	uint64_t cr0 = read_cr0();
	caught_vector = ~0ull;
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\tmovq %%rax, recover_rip(%%rip)\n\t"
			 "movq %%cr0, %%rax\n\tbtsq $32, %%rax\n\tmovq %%rax, %%cr0\n1:" : : : "rax", "memory");
	recover_rip = (uint64_t)(uintptr_t)unexpected;
	check(caught_vector == 13 && read_cr0() == cr0, "crash64: setting CR0 bit 32 raised vector %llu, CR0 0x%llx",
	      (unsigned long long)caught_vector, (unsigned long long)read_cr0());

	/* CR0.TS set by MOV, cleared by CLTS (SDM Vol. 2A, CLTS): no FPU instruction in between. */
	__asm__ volatile("movq %%cr0, %%rax\n\tbtsq $3, %%rax\n\tmovq %%rax, %%cr0" : : : "rax", "memory");
	uint64_t ts = read_cr0() & 8;
	__asm__ volatile("clts" : : : "memory");
	check(ts && !(read_cr0() & 8), "crash64: CLTS cleared CR0.TS (set before: %s)", ts ? "yes" : "no");

	/* CR4.MCE while CPUID.01H:EDX.MCE[7] says there is no machine-check exception: a reserved bit
	 * for this CPU, #GP(0) (SDM Vol. 3A, 2.5; Vol. 2B, MOV CR). */
	uint32_t r[4];
	cpuid(1, 0, r);
	caught_vector = ~0ull;
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\tmovq %%rax, recover_rip(%%rip)\n\t"
			 "movq %%cr4, %%rax\n\tbtsq $6, %%rax\n\tmovq %%rax, %%cr4\n1:" : : : "rax", "memory");
	recover_rip = (uint64_t)(uintptr_t)unexpected;
	check(!(r[3] & (1u << 7)) && caught_vector == 13, "crash64: CR4.MCE with CPUID's MCE %s raised vector %llu",
	      r[3] & (1u << 7) ? "set" : "clear", (unsigned long long)caught_vector);
	return check_failed ? 1 : 0;
}

/* --- do=mmio ------------------------------------------------------------------------------------ */

/* The I/O APIC at its usual base (the MADT's), 1:1 in a 2 MiB page of its own, cache disabled. Its
 * register select at offset 0, its window at 0x10 (82093AA datasheet, 3.0); register 0x11 is the
 * upper half of redirection entry 0, whose bits 31:24 are the destination (3.2.4). A hypervisor
 * emulates each load: MOVSXD sign-extends the dword loaded (SDM Vol. 2B, MOVSX/MOVSXD), MOV of 32
 * bits clears bits 63:32 (Vol. 1, 3.4.1.1). */
#define IOAPIC_BASE 0xfec00000ull

static void map_ioapic(void)
{
	uint64_t *pml4 = (uint64_t *)(uintptr_t)(read_cr3() & ~0xfffull);
	uint64_t *pdpt = (uint64_t *)(uintptr_t)(pml4[0] & ~0xfffull);
	uint64_t *pd3 = (uint64_t *)(uintptr_t)(pdpt[3] & 0x000ffffffffff000ull);

	/* P, W, PCD, PS (SDM Vol. 3A, Table 4-17) */
	pd3[(IOAPIC_BASE >> 21) & 511] = (IOAPIC_BASE & ~0x1fffffull) | 0x1 | 0x2 | 0x10 | 0x80;
	__asm__ volatile("invlpg (%0)" : : "r"(IOAPIC_BASE) : "memory");
}

static int do_mmio(void)
{
	volatile uint32_t *sel = (volatile uint32_t *)(uintptr_t)IOAPIC_BASE;
	volatile uint32_t *win = (volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + 0x10);
	static const uint32_t dest[] = { 0xff000000u, 0x7f000000u, 0x80000000u };

	map_ioapic();
	for (unsigned i = 0; i < sizeof(dest) / sizeof(dest[0]); i++) {
		uint64_t sx = 0x5555555555555555ull, zx = 0x5555555555555555ull;

		*sel = 0x11;
		*win = dest[i];
		__asm__ volatile("movslq %1, %0" : "=r"(sx) : "m"(*win));
		__asm__ volatile("movl %1, %k0" : "+r"(zx) : "m"(*win));
		check(sx == (uint64_t)(int64_t)(int32_t)dest[i] && zx == dest[i],
		      "crash64: MMIO dword 0x%x: MOVSXD loaded 0x%llx, MOV 0x%llx", dest[i], (unsigned long long)sx,
		      (unsigned long long)zx);
	}
	*sel = 0x11;
	*win = 0;
	return check_failed ? 1 : 0;
}

/* The #GP's 48-byte frame (SS, RSP, RFLAGS, CS, RIP, error code: SDM Vol. 3A, 7.14.2) goes below
 * RSP = the page's 0x40, over the I/O APIC's window at 0x10: a load of the window is what the
 * instruction at RIP would be, were its operand the faulting address. */
static void do_mmiostack(void)
{
	map_ioapic();
	printf("crash64: a #GP with RSP in the I/O APIC's page\n");
	__asm__ volatile("movq %0, %%rsp\n\tmovl (%1), %%eax"
			 : : "r"(IOAPIC_BASE + 0x40), "r"(0x8000000000000000ull) : "rax", "memory");
	printf("crash64: still running after the #GP\n");
}

/* --- do=dbloop ---------------------------------------------------------------------------------- */

/* The runtime's GDT (code 0x08, data 0x10) and a 64-bit TSS at 0x18, whose IST1 the #DB gate names:
 * every delivery of vector 1 then starts on the same stack (SDM Vol. 3A, 7.14.5), so nested #DBs do
 * not use it up. */
static uint64_t gdt64[5] __attribute__((aligned(8))) = { 0, 0x00AF9A000000FFFFull, 0x00CF92000000FFFFull, 0, 0 };
static uint32_t tss64[26] __attribute__((aligned(16)));    /* 104 bytes (SDM Vol. 3A, 8.7, Figure 8-11) */
static uint8_t ist_stack[4096] __attribute__((aligned(16)));

static void do_dbloop(void)
{
	struct { uint16_t limit; uint64_t base; } __attribute__((packed)) gdtr = { sizeof(gdt64) - 1,
		(uint64_t)(uintptr_t)gdt64 };
	uint64_t base = (uint64_t)(uintptr_t)tss64, limit = sizeof(tss64) - 1, ist = (uint64_t)(uintptr_t)(ist_stack + sizeof(ist_stack));
	uint32_t dr7 = 0x400 | 1u | (3u << 16) | (3u << 18);  /* L0, R/W0 = 11 (read or write), LEN0 = 11 (4 bytes) */

	tss64[9] = (uint32_t)ist;                  /* IST1 at byte 36 */
	tss64[10] = (uint32_t)(ist >> 32);
	tss64[25] = (uint32_t)sizeof(tss64) << 16; /* I/O map base past the limit */
	/* Available 64-bit TSS (type 9, present), 16 bytes (SDM Vol. 3A, 8.2.3, Figure 8-4). */
	gdt64[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) | ((limit >> 16) << 48) |
		   (((base >> 24) & 0xff) << 56);
	gdt64[4] = base >> 32;
	__asm__ volatile("lgdt %0\n\tltr %w1" : : "m"(gdtr), "r"(0x18) : "memory");
	idt[2] |= 1ull << 32;                      /* vector 1's gate: IST 1 (bits 34:32) */
	printf("crash64: entering the #DB loop\n");
	__asm__ volatile("mov %0, %%dr0\n\tmov %1, %%dr7\n\tmovl (%0), %%eax"
			 : : "r"(&idt[2]), "r"((uint64_t)dr7) : "rax", "memory");
	printf("crash64: still running after the #DB loop\n");
}

/* --- do=cacheops --------------------------------------------------------------------------------- */

static int do_cacheops(void)
{
	__asm__ volatile("wbinvd" : : : "memory");
	__asm__ volatile(".byte 0xf3, 0x0f, 0x09" : : : "memory");    /* WBNOINVD: WBINVD where the CPU lacks it */
	printf("crash64: wbinvd and wbnoinvd completed\n");
	caught_vector = ~0ull;
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\tmovq %%rax, recover_rip(%%rip)\n\t"
			 "movq %%rsp, %%rax\n\txorl %%ecx, %%ecx\n\txorl %%edx, %%edx\n\tmonitor\n1:"
			 : : : "rax", "rcx", "rdx", "memory");
	check(caught_vector == 6, "crash64: MONITOR raised vector %lld", (long long)caught_vector);
	caught_vector = ~0ull;
	__asm__ volatile("leaq 1f(%%rip), %%rax\n\tmovq %%rax, recover_rip(%%rip)\n\t"
			 "xorl %%eax, %%eax\n\txorl %%ecx, %%ecx\n\tmwait\n1:" : : : "rax", "rcx", "memory");
	check(caught_vector == 6, "crash64: MWAIT raised vector %lld", (long long)caught_vector);
	recover_rip = (uint64_t)(uintptr_t)unexpected;
	return check_failed ? 1 : 0;
}

/* --- do=softint ---------------------------------------------------------------------------------- */

/* Handlers that count their entries and return past the instruction (IRETQ to the pushed RIP). */
#define VEC_SOFTINT 0x30
volatile uint64_t bp_entries, softint_entries;
extern char bp_entry[], softint_entry[];
__asm__(".pushsection .text\n"
	"bp_entry:\n\tincq bp_entries(%rip)\n\tiretq\n"
	"softint_entry:\n\tincq softint_entries(%rip)\n\tiretq\n"
	".popsection\n");

/* A 64-bit interrupt gate, DPL 0 (SDM Vol. 3A, 6.14.1), as load_idt makes them. */
static void set_gate(unsigned v, const void *handler)
{
	uint64_t a = (uint64_t)(uintptr_t)handler;

	idt[2 * v] = (a & 0xffff) | ((uint64_t)SEL_CODE64 << 16) | (0x8eull << 40) | (((a >> 16) & 0xffff) << 48);
	idt[2 * v + 1] = a >> 32;
}

/* The first 4 KiB page of RAM from `from` up that neither the image nor the boot information
 * covers: nothing has written it (with alloc=lazy it is not backed yet); 0 if none. */
static uint64_t untouched_page(uint64_t from)
{
	for (uint64_t a = from; a + 4096 <= ram_end(); a += 4096) {
		bool in_ram = false;

		for (int i = 0; i < ram_count; i++)
			in_ram |= a >= ram[i].base && a + 4096 <= ram[i].end;
		if (in_ram && !(a < (uintptr_t)_end && a + 4096 > (uintptr_t)__image_start) &&
		    !(a < mbi_end && a + 4096 > mbi_base))
			return a;
	}
	return 0;
}

static int do_softint(void)
{
	uint64_t a = untouched_page(2ull << 20), b = a ? untouched_page(a + 4096) : 0, saved;

	if (!b) {
		printf("crash64: no untouched page for the stacks\n");
		return 3;
	}
	set_gate(3, bp_entry);
	set_gate(VEC_SOFTINT, softint_entry);
	/* The delivery pushes SS, RSP, RFLAGS, CS, RIP onto the untouched page (SDM Vol. 3A, 7.14.2). */
	__asm__ volatile("movq %%rsp, %0\n\tmovq %1, %%rsp\n\tint3\n\tmovq %0, %%rsp"
			 : "=&r"(saved) : "r"(a + 4096) : "memory");
	check(bp_entries == 1, "crash64: int3 with RSP on an untouched page entered the #BP handler %llu time(s)",
	      (unsigned long long)bp_entries);
	if (!getarg_num("intn", 1))
		return check_failed ? 1 : 0;
	__asm__ volatile("movq %%rsp, %0\n\tmovq %1, %%rsp\n\tint %2\n\tmovq %0, %%rsp"
			 : "=&r"(saved) : "r"(b + 4096), "i"(VEC_SOFTINT) : "memory");
	check(softint_entries == 1, "crash64: int 0x%x with RSP on an untouched page entered its handler %llu time(s)",
	      VEC_SOFTINT, (unsigned long long)softint_entries);
	return check_failed ? 1 : 0;
}

int main(void)
{
	const char *what = getarg("do");

	if (!what) {
		printf("crash64: usage: do=cr8|pgoff64|mmio|mmiostack|cacheops|softint|dbloop\n");
		return 3;
	}
	printf("crash64: doing %s\n", what);
	load_idt();
	if (!strcmp(what, "cr8"))
		return do_cr8();
	if (!strcmp(what, "pgoff64"))
		return do_pgoff64();
	if (!strcmp(what, "mmio"))
		return do_mmio();
	if (!strcmp(what, "mmiostack")) {
		do_mmiostack();
		return 1;
	}
	if (!strcmp(what, "cacheops"))
		return do_cacheops();
	if (!strcmp(what, "softint"))
		return do_softint();
	if (!strcmp(what, "dbloop")) {
		do_dbloop();
		return 1;
	}
	printf("crash64: unknown do=%s\n", what);
	return 3;
}
