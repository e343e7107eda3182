/*
 * crash: misbehaves on purpose, one way per run, so tests can check that the hypervisor stops (or
 * corrects) exactly this guest and nothing else. `do=`:
 *   hlt     CLI; HLT: nothing can ever wake it           -> stopped: halted with interrupts disabled
 *   triple  no IDT, then INT3                            -> stopped: triple fault
 *   stackless  paging on, ESP at a page that is not present, then UD2: the #UD's frame faults, the
 *           #PF's too (a #DF), and the #DF's: shutdown (SDM Vol. 3A, 7.15, Table 7-5 and
 *           Interrupt 8)                                 -> stopped: triple fault
 *   strio   INS/OUTS, REP or not, sizes 1/2/4, DF=0/1, FS override, 16-bit addresses, pages that
 *           are not contiguous or not present (paging on)   -> lines checked, #PF caught: exit 0
 *   gp      RDMSR of an MSR that does not exist          -> #GP injected, caught by its own IDT: exit 0
 *   ud      VMXON (no nested VMX)                        -> #UD injected, caught by its own IDT: exit 0
 *   port    IN from port 0x2F8 (COM2), where it has no device -> reads 0xff, reported once: exit 0
 *   cr4     MOV CR4 with VMXE set                        -> #GP injected, caught: exit 0
 *   rdpmc   RDPMC of counter 0 at CPL 0 (no counters for guests: CPUID leaf 0xA and
 *           Fn8000_0001_ECX.PerfCtrExtCore read 0)      -> #GP injected, caught: exit 0
 *   invd    INVD                                         -> completes (as WBINVD): exit 0
 *   taskswitch  JMP to a TSS                             -> stopped: hardware task switch ... not supported
 *   dbg     a data breakpoint on a write that exits (first touch with alloc=lazy, mem=4M)
 *                                                        -> #DB caught, DR7 kept across a yield: exit 0
 */
#include "intr.h"
#include "rt.h"

/* A flat GDT and an IDT whose every gate leads to one handler: interrupt delivery in protected mode
 * reads both (SDM Vol. 3A, 6.12.1), and the hypervisor starts us with neither. */
static uint64_t gdt[3] = { 0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull };
static uint64_t idt[32];
static volatile int expected_vector = -1;

void on_exception(unsigned vector);
void on_exception(unsigned vector)
{
	printf("crash: caught exception %u%s\n", vector, (int)vector == expected_vector ? " as expected" : "");
	exit((int)vector == expected_vector ? 0 : 1);
}

/* One stub per vector of interest pushes its number and calls on_exception (which never returns). */
#define STUB(n) \
	void stub_##n(void); \
	__asm__(".pushsection .text\n" "stub_" #n ":\n\tpushl $" #n "\n\tcall on_exception\n\thlt\n" ".popsection");
STUB(6)
STUB(13)
STUB(8)

static void set_gate(int vec, void (*fn)(void))
{
	uint32_t a = (uint32_t)(uintptr_t)fn;

	/* 32-bit interrupt gate: offset 15:0, selector 0x08, type 0x8E (P, DPL 0), offset 31:16. */
	idt[vec] = (a & 0xffff) | (0x08ull << 16) | (0x8eull << 40) | ((uint64_t)(a >> 16) << 48);
}

static void load_tables(void)
{
	struct { uint16_t limit; uint32_t base; } __attribute__((packed)) gdtr = { sizeof(gdt) - 1, (uint32_t)(uintptr_t)gdt },
		idtr = { sizeof(idt) - 1, (uint32_t)(uintptr_t)idt };

	for (int v = 0; v < 32; v++)
		set_gate(v, stub_8);        /* anything unexpected reports as 8: it fails the test */
	set_gate(6, stub_6);
	set_gate(13, stub_13);
	__asm__ volatile("lgdt %0" : : "m"(gdtr));
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* --- do=strio ----------------------------------------------------------------------------------- */

#define COM1       0x3f8
#define COM1_SCR   0x3ff           /* the 16550's scratch register: reads back what was written */
#define NO_DEVICE  0x2f8           /* COM2: no device behind it, reads all ones */

/* One string instruction with ESI, EDI, ECX, DX in and ESI, EDI, ECX out. */
struct sregs {
	uint32_t esi, edi, ecx;
};
#define STRING_OP(insn, r, port) \
	__asm__ volatile(insn : "+S"((r).esi), "+D"((r).edi), "+c"((r).ecx) : "d"(port) : "memory", "cc")

static uint8_t buf[64];

/* A flat GDT plus a data segment at base 0x100 (0x18) for the FS override, and a TSS (0x28). */
#define FS_BASE 0x100
static uint64_t big_gdt[6] __attribute__((aligned(8))) = {
	0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull, 0x00cf92000100ffffull, 0, 0 };

static void load_big_gdt(void)
{
	struct { uint16_t limit; uint32_t base; } __attribute__((packed)) gdtr = { sizeof(big_gdt) - 1,
		(uint32_t)(uintptr_t)big_gdt };

	__asm__ volatile("lgdt %0" : : "m"(gdtr));
}

/* 32-bit paging (SDM Vol. 3A, 4.3): the first 4 MiB 1:1, except three pages at LIN:
 *   LIN          -> PHYS_A      LIN + 0x1000 -> PHYS_B (below A: not contiguous)
 *   LIN + 0x2000 -> not present (until the #PF handler maps it to PHYS_C)                       */
#define LIN     0x300000u
#define PHYS_A  0x310000u
#define PHYS_B  0x305000u
#define PHYS_C  0x320000u
static uint32_t pd[1024] __attribute__((aligned(4096)));
static uint32_t pt[1024] __attribute__((aligned(4096)));

static void paging_on(void)
{
	for (unsigned i = 0; i < 1024; i++)
		pt[i] = i * 4096 | 3;                  /* present, writable */
	pt[LIN >> 12] = PHYS_A | 3;
	pt[(LIN >> 12) + 1] = PHYS_B | 3;
	pt[(LIN >> 12) + 2] = 0;
	pd[0] = (uint32_t)(uintptr_t)pt | 3;
	__asm__ volatile("mov %0, %%cr3; mov %%cr0, %%eax; or $0x80000000, %%eax; mov %%eax, %%cr0"
			 : : "r"(pd) : "eax", "memory");
}

/* What the #PF handler saw; pf_recover: where to resume (0: map the page and retry the instruction). */
static volatile uint32_t pf_count, pf_cr2, pf_error, pf_ecx, pf_esi, pf_edi, pf_recover;

static void on_pf(struct irq_frame *f)
{
	uint32_t cr2;

	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	pf_count++;
	pf_cr2 = cr2;
	pf_error = f->error;
	pf_ecx = f->ecx;
	pf_esi = f->esi;
	pf_edi = f->edi;
	if (pf_recover) {
		f->eip = pf_recover;
		pf_recover = 0;
	} else {                                       /* no printing here: a line may be half out */
		pt[(LIN >> 12) + 2] = PHYS_C | 3;
		__asm__ volatile("invlpg (%0)" : : "r"(LIN + 0x2000) : "memory");
	}
}

static bool all(const uint8_t *p, unsigned n, uint8_t v)
{
	for (unsigned i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static int do_strio(void)
{
	static const char line[] = "strio: rep outsb prints this line\n";
	static const char fsline[] = "strio: fs override ok\n";
	static const char fwd[] = "strio: backwards ok\n";
	static const char low[] = "strio: addr16 ok\n";
	static char rev[sizeof(fwd)];
	unsigned n = sizeof(fwd) - 1;
	struct sregs r;

	intr_init();
	irq_set_handler(14, on_pf);
	load_big_gdt();

	/* OUTS: REP, DF = 0, DS. */
	r = (struct sregs){ (uint32_t)(uintptr_t)line, 0, sizeof(line) - 1 };
	STRING_OP("rep outsb", r, COM1);
	check(r.ecx == 0 && r.esi == (uint32_t)(uintptr_t)line + sizeof(line) - 1, "strio: rep outsb ecx=%u esi+%u",
	      r.ecx, r.esi - (uint32_t)(uintptr_t)line);
	/* FS override (64 F3 6E: fs rep outsb), FS based at 0x100. */
	__asm__ volatile("mov $0x18, %%ax; mov %%ax, %%fs" : : : "eax");
	r = (struct sregs){ (uint32_t)(uintptr_t)fsline - FS_BASE, 0, sizeof(fsline) - 1 };
	STRING_OP(".byte 0x64, 0xf3, 0x6e", r, COM1);
	__asm__ volatile("mov $0x10, %%ax; mov %%ax, %%fs" : : : "eax");
	/* DF = 1: from the last byte down. */
	for (unsigned i = 0; i < n; i++)
		rev[i] = fwd[n - 1 - i];
	r = (struct sregs){ (uint32_t)(uintptr_t)&rev[n - 1], 0, n };
	STRING_OP("std; rep outsb; cld", r, COM1);
	check(r.ecx == 0 && r.esi == (uint32_t)(uintptr_t)rev - 1, "strio: std; rep outsb leaves esi below the buffer");
	/* 16-bit address size (67 F3 6E): SI and CX only, the upper halves of ESI and ECX untouched. */
	memcpy((void *)0x6000, low, sizeof(low));
	r = (struct sregs){ 0xabcd6000u, 0, 0x55550000u | (sizeof(low) - 1) };
	STRING_OP(".byte 0x67, 0xf3, 0x6e", r, COM1);
	check(r.ecx == 0x55550000u && r.esi == 0xabcd6000u + sizeof(low) - 1,
	      "strio: addr16 rep outsb ecx=0x%x esi=0x%x", r.ecx, r.esi);
	/* OUTS without REP, sizes 2 and 4, to a port with no device: only ESI moves. */
	r = (struct sregs){ (uint32_t)(uintptr_t)buf, 0, 77 };
	STRING_OP("outsw", r, NO_DEVICE);
	STRING_OP("outsl", r, NO_DEVICE);
	check(r.ecx == 77 && r.esi == (uint32_t)(uintptr_t)buf + 6, "strio: outsw; outsl move esi by 6, ecx kept");

	/* INS from the scratch register, REP and not, DF = 0 and 1. */
	outb(COM1_SCR, 0x5a);
	memset(buf, 0, sizeof(buf));
	r = (struct sregs){ 0, (uint32_t)(uintptr_t)buf, 40 };
	STRING_OP("rep insb", r, COM1_SCR);
	check(r.ecx == 0 && r.edi == (uint32_t)(uintptr_t)buf + 40 && all(buf, 40, 0x5a) && all(buf + 40, 24, 0),
	      "strio: rep insb from the scratch register fills 40 bytes");
	outb(COM1_SCR, 0xa5);
	r = (struct sregs){ 0, (uint32_t)(uintptr_t)&buf[63], 10 };
	STRING_OP("std; rep insb; cld", r, COM1_SCR);
	check(r.ecx == 0 && r.edi == (uint32_t)(uintptr_t)&buf[53] && all(buf + 54, 10, 0xa5) && buf[53] == 0,
	      "strio: std; rep insb fills downwards");
	memset(buf, 0, sizeof(buf));
	r = (struct sregs){ 0, (uint32_t)(uintptr_t)buf, 5 };
	STRING_OP("insb", r, NO_DEVICE);
	STRING_OP("rep insw", r, NO_DEVICE);
	r.ecx = 2;
	STRING_OP("rep insl", r, NO_DEVICE);
	check(r.ecx == 0 && r.edi == (uint32_t)(uintptr_t)buf + 19 && all(buf, 19, 0xff) && buf[19] == 0,
	      "strio: insb, rep insw, rep insl from an empty port read all ones");
	r = (struct sregs){ 0, (uint32_t)(uintptr_t)buf, 0 };
	STRING_OP("rep insb", r, COM1_SCR);
	check(r.edi == (uint32_t)(uintptr_t)buf && buf[0] == 0xff, "strio: rep insb with ecx=0 does nothing");

	/* Paging on: elements across two pages that are not contiguous in physical memory. */
	paging_on();
	memset((void *)PHYS_A, 0, 0x2000);             /* PHYS_A's page and the one after it (1:1) */
	memset((void *)PHYS_B, 0, 0x1000);
	outb(COM1_SCR, 0x3c);
	r = (struct sregs){ 0, LIN + 0xff0, 32 };
	STRING_OP("rep insb", r, COM1_SCR);
	check(all((uint8_t *)PHYS_A + 0xff0, 16, 0x3c) && all((uint8_t *)PHYS_B, 16, 0x3c) &&
	      ((uint8_t *)PHYS_B)[16] == 0 && all((uint8_t *)PHYS_A + 0x1000, 16, 0),
	      "strio: rep insb across two pages lands in both physical pages");
	/* As the CPU's own writes would (SDM Vol. 3A, 4.8): A in the PDE, A and D in both PTEs. */
	check((pd[0] & 0x20) && (pt[LIN >> 12] & 0x60) == 0x60 && (pt[(LIN >> 12) + 1] & 0x60) == 0x60,
	      "strio: rep insb set the accessed and dirty flags (PTEs 0x%x 0x%x)", pt[LIN >> 12], pt[(LIN >> 12) + 1]);
	r = (struct sregs){ 0, LIN + 0xffe, 1 };
	STRING_OP("insl", r, NO_DEVICE);
	check(all((uint8_t *)PHYS_A + 0xffe, 2, 0xff) && all((uint8_t *)PHYS_B, 2, 0xff) &&
	      ((uint8_t *)PHYS_A)[0x1000] == 0, "strio: insl straddling two pages writes 2 bytes to each");
	/* An element straddling into the page that is not present: #PF at that page, nothing written. */
	memset((void *)(PHYS_B + 0xff0), 0, 16);
	pf_count = 0;
	r = (struct sregs){ 0, LIN + 0x1ffe, 1 };
	__asm__ volatile("movl $1f, %[rec]\n\tinsl\n1:" : [rec] "=m"(pf_recover), "+D"(r.edi) : "d"(NO_DEVICE)
			 : "memory");
	check(pf_count == 1 && pf_cr2 == LIN + 0x2000 && pf_error == 2 && pf_edi == LIN + 0x1ffe &&
	      all((uint8_t *)PHYS_B + 0xffe, 2, 0), "strio: insl into a not-present page: #PF cr2=0x%x error=%u",
	      pf_cr2, pf_error);
	/* REP OUTSB running into the not-present page: #PF after 3 bytes with ECX and ESI there; the
	 * handler maps the page and the instruction resumes with the rest of the line. */
	{
		static const char pfline[] = "strio: #PF in rep outsb resumed ok\n";
		unsigned len = sizeof(pfline) - 1;

		memcpy((void *)(PHYS_B + 0xffd), pfline, 3);
		memcpy((void *)PHYS_C, pfline + 3, len - 3);
		pf_count = 0;
		r = (struct sregs){ LIN + 0x1ffd, 0, len };
		STRING_OP("rep outsb", r, COM1);
		check(pf_count == 1 && pf_cr2 == LIN + 0x2000 && pf_error == 0 && pf_ecx == len - 3 &&
		      pf_esi == LIN + 0x2000 && r.ecx == 0 && r.esi == LIN + 0x1ffd + len,
		      "strio: rep outsb #PF cr2=0x%x error=%u ecx=%u esi=0x%x", pf_cr2, pf_error, pf_ecx, pf_esi);
		check((pt[(LIN >> 12) + 2] & 0x60) == 0x20, "strio: rep outsb set accessed, not dirty (PTE 0x%x)",
		      pt[(LIN >> 12) + 2]);
	}
	printf("strio: %d checks, %d failed\n", check_count, check_failed);
	return check_failed ? 1 : 0;
}

/* --- do=dbg ------------------------------------------------------------------------------------- */

#define CHUNK2 0x200000u   /* the second 2 MiB chunk: with alloc=lazy, its first write is an EPT violation */
static volatile uint32_t db_count, db_dr6;

static void on_db(struct irq_frame *f)
{
	uint32_t dr6;

	(void)f;
	__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
	db_count++;
	db_dr6 = dr6;
	__asm__ volatile("mov %0, %%dr6" : : "r"(0xffff0ff0u));   /* DR6 is never cleared by the CPU */
}

static uint32_t read_dr7(void)
{
	uint32_t v;

	__asm__ volatile("mov %%dr7, %0" : "=r"(v));
	return v;
}

static int do_dbg(void)
{
	/* DR7: L0 (bit 0), R/W0 = 01 (break on data writes, bits 17:16), LEN0 = 00 (1 byte), bit 10
	 * reads as 1 (SDM Vol. 3B, 18.2.4). */
	uint32_t dr7 = 0x400 | 1 | (1u << 16), dr0;

	intr_init();
	irq_set_handler(1, on_db);
	__asm__ volatile("mov %0, %%dr0; mov %1, %%dr7" : : "r"(CHUNK2), "r"(dr7));
	*(volatile uint8_t *)CHUNK2 = 1;               /* exits (first touch), then re-executes */
	check(db_count == 1 && (db_dr6 & 1), "dbg: breakpoint on a first-touch write fired (%u, DR6 0x%x)",
	      db_count, db_dr6);
	check(read_dr7() == dr7, "dbg: DR7 after the exit is 0x%x", read_dr7());
	hc_yield();
	__asm__ volatile("mov %%dr0, %0" : "=r"(dr0));
	check(read_dr7() == dr7 && dr0 == CHUNK2, "dbg: DR7 0x%x, DR0 0x%x after a yield", read_dr7(), dr0);
	*(volatile uint8_t *)CHUNK2 = 2;
	check(db_count == 2 && (db_dr6 & 1), "dbg: breakpoint fires again after the yield (%u)", db_count);
	__asm__ volatile("mov %0, %%dr7" : : "r"(0x400));
	printf("dbg: %d checks, %d failed\n", check_count, check_failed);
	return check_failed ? 1 : 0;
}

/* --- do=taskswitch ------------------------------------------------------------------------------ */

static uint32_t tss[26] __attribute__((aligned(128)));   /* 104 bytes: a 32-bit TSS (SDM Vol. 3A, 8.2.1) */

static void do_taskswitch(void)
{
	uint32_t base = (uint32_t)(uintptr_t)tss, limit = sizeof(tss) - 1;

	/* Available 32-bit TSS descriptor (type 9, present, DPL 0; SDM Vol. 3A, 8.2.2) at index 5. */
	big_gdt[5] = (limit & 0xffff) | ((uint64_t)(base & 0xffffff) << 16) | (0x89ull << 40) |
		     ((uint64_t)(limit >> 16) << 48) | ((uint64_t)(base >> 24) << 56);
	load_big_gdt();
	__asm__ volatile("ljmp $0x28, $0" : : : "memory");
}

int main(void)
{
	const char *what = getarg("do");

	if (!what) {
		printf("crash: usage: do=hlt|triple|stackless|strio|gp|ud|port|cr4|rdpmc|invd|taskswitch|dbg\n");
		return 3;
	}
	printf("crash: doing %s\n", what);
	if (!strcmp(what, "hlt")) {
		__asm__ volatile("cli; hlt");
	} else if (!strcmp(what, "triple")) {
		struct { uint16_t limit; uint32_t base; } __attribute__((packed)) none = { 0, 0 };

		__asm__ volatile("lidt %0; int3" : : "m"(none));
	} else if (!strcmp(what, "stackless")) {
		paging_on();
		__asm__ volatile("mov %0, %%esp; ud2" : : "r"(LIN + 0x3000) : "memory");
	} else if (!strcmp(what, "strio")) {
		return do_strio();
	} else if (!strcmp(what, "dbg")) {
		return do_dbg();
	} else if (!strcmp(what, "taskswitch")) {
		do_taskswitch();
	} else if (!strcmp(what, "invd")) {
		__asm__ volatile("invd" : : : "memory");
		printf("crash: invd completed\n");
		return 0;
	} else if (!strcmp(what, "gp")) {
		load_tables();
		expected_vector = 13;
		__asm__ volatile("rdmsr" : : "c"(0x12345678) : "eax", "edx");
	} else if (!strcmp(what, "ud")) {
		static uint64_t region;

		load_tables();
		expected_vector = 6;
		__asm__ volatile("vmxon %0" : : "m"(region) : "memory", "cc");
	} else if (!strcmp(what, "cr4")) {
		load_tables();
		expected_vector = 13;
		__asm__ volatile("mov %%cr4, %%eax; or $0x2000, %%eax; mov %%eax, %%cr4" : : : "eax");
	} else if (!strcmp(what, "rdpmc")) {
		load_tables();
		expected_vector = 13;
		__asm__ volatile("rdpmc" : : "c"(0) : "eax", "edx");
	} else if (!strcmp(what, "port")) {
		uint8_t a = inb(0x2f8), b = inb(0x2f8);

		printf("crash: port 0x2f8 read 0x%x then 0x%x\n", a, b);
		return a == 0xff && b == 0xff ? 0 : 1;
	} else {
		printf("crash: unknown do=%s\n", what);
		return 3;
	}
	printf("crash: still running after do=%s\n", what);
	return 1;
}
