/*
 * hostile: a guest that does random privileged things from a seed, as a new user trying to break the
 * machine would (issue 10), catches every fault it causes and goes on; then checks its own world.
 *
 *   seed=N     the PRNG seed (default: the TSC); printed first, so `seed=N actions=M` replays a run
 *   actions=N  how many random actions (default 200)
 *   mode=      default: only actions the hypervisor answers (the run ends with `exited code=0`);
 *              pastend: then reads the dword just past its RAM (stopped: EPT violation read ...)
 *              apicbad: then a 2-byte write to the local APIC current-count register (stopped:
 *                       local APIC write of 2 bytes ...)
 *              init:    then an INIT IPI to itself (1 vCPU: nothing can ever send it a SIPI)
 *              reset:   then a reset, seed % 5: 8042 0xFE, 8042 output port, 0x92, 0xCF9, ACPI S5 (port 0x600)
 *
 * One line per action: `hostile: #i ACTION args -> result`, where result is what the CPU answered
 * (a value, `ok`, or `fault #GP(0x0)`). At the end the in-guest checks (`hostile: check ... ok|FAIL`):
 * general registers, debug registers, SYSENTER MSRs, PAT, CR0/CR3/CR4 and EFER survive a yield to
 * another guest; a data breakpoint fires; an APIC timer interrupt wakes a HLT; the guest's code is
 * unchanged. Last: `hostile: done N actions, F faults caught, C checks failed`, exit 0 if C == 0.
 *
 * 32-bit protected mode (ELF32). Ring 3 is entered with IRET and left through a call gate (or by the
 * fault it takes); virtual-8086 mode with IRET (VM=1) and left by its #GP. Paging is switched between
 * off, 32-bit with 4 MiB pages and PAE with 2 MiB pages, all identity maps except two holes (not
 * present; supervisor only, onto guest RAM at 0) at 0xC0000000 and 0xC0400000.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"
#include "tessera/hypercall.h"

/* --- PRNG: xorshift64* ------------------------------------------------------------------------- */

static uint64_t rng_state;

static uint32_t rnd(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545F4914F6CDD1Dull) >> 32);
}

static uint32_t rnd_below(uint32_t n)
{
	return n ? rnd() % n : 0;
}

#define PICK(arr) ((arr)[rnd_below(sizeof(arr) / sizeof((arr)[0]))])

/* --- descriptor tables: ring 0/3 segments, a TSS, a call gate ----------------------------------- */

#define SEL_UCODE   0x1b   /* GDT 3, RPL 3 */
#define SEL_UDATA   0x23   /* GDT 4, RPL 3 */
#define SEL_TSS     0x28
#define SEL_GATE    0x33   /* call gate to ring 0, DPL 3 */

static uint64_t gdt[8] __attribute__((aligned(8))) = {
	0, 0x00cf9a000000ffffull, 0x00cf92000000ffffull,
	0x00cffa000000ffffull, /* ring 3 code, flat */
	0x00cff2000000ffffull, /* ring 3 data, flat */
	0, 0, 0 };
/* A 32-bit TSS (SDM Vol. 3A, 8.2.1): only SS0:ESP0 matter (the stack for entries from ring 3 and
 * virtual-8086 mode); the I/O map base past the limit: no I/O bitmap, so ring 3 I/O faults. */
static uint32_t tss[26] __attribute__((aligned(128)));
static uint8_t kstack[8192] __attribute__((aligned(16)));
static uint8_t ustack[4096] __attribute__((aligned(16)));

void callgate_entry(void);
void try_recover(void);
void user_main(void);
extern char seg_stubs[];
uint32_t orig_gate[32];
/* Exception gates 0-31 lead first to a stub that loads flat ring-0 data segments (an exception in
 * virtual-8086 mode arrives with DS = ES = FS = GS = 0, SDM Vol. 3A, 20.3.1.1) and then jumps to the
 * runtime's stub for that vector. */
__asm__(".pushsection .text\n"
	".align 32\n"
	".globl seg_stubs\n"
	"seg_stubs:\n"
	".set vec, 0\n"
	".rept 32\n"
	".align 32\n"
	"\tpushl %eax\n"
	"\tmovl $0x10, %eax\n"
	"\tmovw %ax, %ds\n\tmovw %ax, %es\n\tmovw %ax, %fs\n\tmovw %ax, %gs\n"
	"\tpopl %eax\n"
	"\tjmp *%cs:orig_gate + 4 * vec\n"
	".set vec, vec + 1\n"
	".endr\n"
	".popsection\n");

static void tables_init(void)
{
	struct {
		uint16_t limit;
		uint32_t base;
	} __attribute__((packed)) gdtr = { sizeof(gdt) - 1, (uint32_t)(uintptr_t)gdt }, idtr;
	uint32_t t = (uint32_t)(uintptr_t)tss, g = (uint32_t)(uintptr_t)callgate_entry;

	tss[1] = (uint32_t)(uintptr_t)(kstack + sizeof(kstack));
	tss[2] = 0x10;
	tss[25] = 104u << 16;
	gdt[5] = 103 | ((uint64_t)(t & 0xffffff) << 16) | (0x89ull << 40) | ((uint64_t)(t >> 24) << 56);
	/* 32-bit call gate (type 0xC), P, DPL 3, to 0x08:callgate_entry, no parameters. */
	gdt[6] = (g & 0xffff) | (0x08ull << 16) | (0xecull << 40) | ((uint64_t)(g >> 16) << 48);
	__asm__ volatile("lgdt %0\n\t"
			 "ljmp $0x08, $1f\n"
			 "1:\tmovw $0x10, %%ax\n\t"
			 "movw %%ax, %%ds\n\tmovw %%ax, %%es\n\tmovw %%ax, %%ss\n\t"
			 "movw %%ax, %%fs\n\tmovw %%ax, %%gs\n\t"
			 "movw $0x28, %%ax\n\tltr %%ax\n\t"
			 "sidt %1"
			 : : "m"(gdtr), "m"(idtr) : "eax", "memory");
	uint64_t *idt = (uint64_t *)(uintptr_t)idtr.base;
	for (int v = 0; v < 32; v++) {
		uint64_t e = idt[v];
		uint32_t s = (uint32_t)(uintptr_t)seg_stubs + 32 * v;

		orig_gate[v] = (uint32_t)(e & 0xffff) | (uint32_t)((e >> 48) << 16);
		idt[v] = (e & 0x0000ffffffff0000ull) | (s & 0xffff) | ((uint64_t)(s >> 16) << 48);
	}
}

/* --- faults: try_call(fn) runs fn, returns 0, or 1 if it faulted (last_* say how) --------------- */

volatile uint32_t try_esp, in_try;
static volatile uint32_t last_vec, last_err, last_eip, last_cr2, last_dr6;
static volatile uint32_t faults_caught, interrupts_seen, nmis_seen, db_traps;
static volatile uint32_t vec_count[256];
static volatile bool apic_sane;          /* the handler may EOI through the xAPIC page at 0xFEE00000 */
int try_call(void (*fn)(void));

__asm__(".pushsection .text\n"
	".globl try_call, try_recover, callgate_entry\n"
	"try_call:\n"
	"\tpushl %ebp\n\tpushl %ebx\n\tpushl %esi\n\tpushl %edi\n"
	"\tmovl %esp, try_esp\n"
	"\tmovl $1, in_try\n"
	"\tcall *20(%esp)\n"
	"\txorl %eax, %eax\n"
	"try_out:\n"
	"\tmovl $0, in_try\n"
	"\tpushl $2\n\tpopfl\n"                       /* IF, DF, TF, AC, NT clear */
	"\tpopl %edi\n\tpopl %esi\n\tpopl %ebx\n\tpopl %ebp\n"
	"\tret\n"
	"try_recover:\n"                               /* the exception handler IRETs here */
	"\tmovl $0x10, %eax\n"
	"\tmovw %ax, %ds\n\tmovw %ax, %es\n\tmovw %ax, %fs\n\tmovw %ax, %gs\n\tmovw %ax, %ss\n"
	"\tmovl try_esp, %esp\n"
	"\tmovl $1, %eax\n"
	"\tjmp try_out\n"
	"callgate_entry:\n"                            /* ring 3 came back through the call gate */
	"\tmovl $0x10, %eax\n"
	"\tmovw %ax, %ds\n\tmovw %ax, %es\n\tmovw %ax, %fs\n\tmovw %ax, %gs\n\tmovw %ax, %ss\n"
	"\tmovl try_esp, %esp\n"
	"\txorl %eax, %eax\n"
	"\tjmp try_out\n"
	".popsection\n");

static void raw_puts(const char *s)
{
	while (*s)
		putc(*s++);
}

static void maybe_eoi(unsigned v)
{
	uint64_t base;

	if (!apic_sane)
		return;
	base = rdmsr(MSR_APIC_BASE);
	if (!(base & APIC_BASE_EN))
		return;
	if (base & APIC_BASE_EXTD) {
		if ((rdmsr(MSR_X2APIC_BASE + (APIC_ISR >> 4) + v / 32) >> (v % 32)) & 1)
			wrmsr(MSR_X2APIC_BASE + (APIC_EOI >> 4), 0);
	} else if ((base & APIC_BASE_ADDR) == APIC_DEFAULT_BASE) {
		volatile uint32_t *a = (volatile uint32_t *)(uintptr_t)APIC_DEFAULT_BASE;
		if ((a[(APIC_ISR + (v / 32) * 0x10) / 4] >> (v % 32)) & 1)
			a[APIC_EOI / 4] = 0;
	}
}

#define DR6_BD (1u << 13)
#define DR6_BS (1u << 14)
#define EFLAGS_TF (1u << 8)
#define EFLAGS_RF (1u << 16)

static void on_vector(struct irq_frame *f)
{
	unsigned v = f->vector & 0xff;

	vec_count[v]++;
	if (v >= 32) {
		interrupts_seen++;
		maybe_eoi(v);
		return;
	}
	if (v == 2) {
		nmis_seen++;
		return;
	}
	if (v == 1) {
		uint32_t dr6;

		__asm__ volatile("mov %%dr6, %0" : "=r"(dr6));
		__asm__ volatile("mov %0, %%dr6" : : "r"(0xffff0ff0u));
		last_dr6 = dr6;
		f->eflags = (f->eflags & ~EFLAGS_TF) | EFLAGS_RF;
		if (!(dr6 & DR6_BD) || !in_try) {     /* a trap (data breakpoint, single step): go on */
			db_traps++;
			return;
		}
	}
	if (!in_try) {
		/* Our own code faulted outside an action: nothing to recover to. */
		raw_puts("hostile: unexpected exception outside an action\n");
		printf("hostile: vector %u error 0x%x eip 0x%x\n", v, f->error, f->eip);
		exit(2);
	}
	last_vec = v;
	last_err = f->error;
	last_eip = f->eip;
	if (v == 14)
		__asm__ volatile("mov %%cr2, %0" : "=r"(last_cr2));
	faults_caught++;
	f->eip = (uint32_t)(uintptr_t)try_recover;
	f->cs = 0x08;
	f->eflags = 0x2;
}

static const char *const vec_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#CSO", "#TS", "#NP", "#SS", "#GP",
	"#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "#22", "#23", "#24", "#25", "#26", "#27",
	"#HV", "#VC", "#SX", "#31" };

/* Vectors that push an error code (SDM Vol. 3A, Table 6-1). */
static bool has_error(unsigned v)
{
	return v == 8 || (v >= 10 && v <= 14) || v == 17 || v == 21 || v == 29 || v == 30;
}

static char resbuf[96];

static char *hex(char *p, uint32_t v)
{
	char t[9];
	int n = 0;
	*p++ = '0', *p++ = 'x';
	do {
		t[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		*p++ = t[--n];
	*p = 0;
	return p;
}

static char *str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	*p = 0;
	return p;
}

/* "fault #GP(0x0)" (+ " cr2 0x..." for #PF), or `ok` text given. */
static const char *result(int faulted, const char *ok)
{
	char *p = resbuf;
	if (!faulted)
		return ok;
	p = str(p, "fault ");
	p = str(p, vec_names[last_vec & 31]);
	if (has_error(last_vec)) {
		p = str(p, "(");
		p = hex(p, last_err);
		p = str(p, ")");
	}
	if (last_vec == 14) {
		p = str(p, " cr2 ");
		p = hex(p, last_cr2);
	}
	return resbuf;
}

/* --- shared operands of the actions -------------------------------------------------------------- */

static volatile uint32_t g_a, g_b, g_c, g_d;
static uint32_t idx;           /* the action number, for the line */
static uint32_t checks_failed;

#define LINE(fmt, ...) printf("hostile: #%u " fmt "\n", idx, ##__VA_ARGS__)

static bool hv_check(bool ok, const char *what)
{
	if (!ok)
		checks_failed++;
	return check(ok, "hostile: check %s", what);
}

/* --- paging: off, 32-bit with 4 MiB pages, PAE with 2 MiB pages ---------------------------------- */

#define CR0_PE (1u << 0)
#define CR0_TS (1u << 3)
#define CR0_WP (1u << 16)
#define CR0_AM (1u << 18)
#define CR0_NW (1u << 29)
#define CR0_CD (1u << 30)
#define CR0_PG (1u << 31)
#define CR4_PSE (1u << 4)
#define CR4_PAE (1u << 5)
#define CR4_PGE (1u << 7)
#define CR4_OSXSAVE (1u << 18)
#define CR4_SMEP (1u << 20)
#define CR4_SMAP (1u << 21)
#define HOLE_NP   0xC0000000u  /* not present */
#define HOLE_SUP  0xC0400000u  /* supervisor only */

static uint32_t pd32[1024] __attribute__((aligned(4096)));
static uint64_t pdpt[4] __attribute__((aligned(32)));
static uint64_t pdpae[4][512] __attribute__((aligned(4096)));
static int paging;             /* 0 off, 1 32-bit, 2 PAE */
static const char *const paging_names[3] = { "off", "32-bit", "pae" };

static uint32_t rd_cr0(void) { uint32_t v; __asm__ volatile("mov %%cr0, %0" : "=r"(v)); return v; }
static uint32_t rd_cr3(void) { uint32_t v; __asm__ volatile("mov %%cr3, %0" : "=r"(v)); return v; }
static uint32_t rd_cr4(void) { uint32_t v; __asm__ volatile("mov %%cr4, %0" : "=r"(v)); return v; }
static void wr_cr0(uint32_t v) { __asm__ volatile("mov %0, %%cr0; jmp 1f; 1:" : : "r"(v) : "memory"); }
static void wr_cr3(uint32_t v) { __asm__ volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }
static void wr_cr4(uint32_t v) { __asm__ volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

static uint32_t base_cr0, base_cr4;  /* what each action leaves: set by paging_set */

static void paging_tables(void)
{
	for (uint32_t i = 0; i < 1024; i++)
		pd32[i] = (i << 22) | 0x87;             /* P, RW, US, PS */
	pd32[HOLE_NP >> 22] = 0;
	pd32[HOLE_SUP >> 22] = 0x83;                /* no US; onto RAM at 0 (only ever read) */
	for (uint32_t k = 0; k < 4; k++) {
		for (uint32_t j = 0; j < 512; j++)
			pdpae[k][j] = ((uint64_t)k << 30) | ((uint64_t)j << 21) | 0x87;
		pdpt[k] = (uint32_t)(uintptr_t)pdpae[k] | 1;
	}
	pdpae[3][0] = pdpae[3][1] = 0;               /* 0xC0000000: 4 MiB, two 2 MiB entries */
	pdpae[3][2] = 0x83;                          /* 0xC0400000: supervisor, onto RAM at 0 */
	pdpae[3][3] = 0x200000 | 0x83;
}

static void paging_set(int mode)
{
	uint32_t cr0 = rd_cr0(), cr4 = rd_cr4();

	if (cr0 & CR0_PG)
		wr_cr0(cr0 & ~CR0_PG);
	cr4 &= ~(CR4_PSE | CR4_PAE | CR4_PGE | CR4_SMEP | CR4_SMAP);
	if (mode == 1) {
		wr_cr3((uint32_t)(uintptr_t)pd32);
		wr_cr4(cr4 | CR4_PSE);
	} else if (mode == 2) {
		wr_cr3((uint32_t)(uintptr_t)pdpt);
		wr_cr4(cr4 | CR4_PAE);
	} else {
		wr_cr4(cr4);
	}
	if (mode)
		wr_cr0(rd_cr0() | CR0_PG);
	paging = mode;
	base_cr0 = rd_cr0();
	base_cr4 = rd_cr4();
}

/* --- the local APIC back to a known state ----------------------------------------------------- */

static void op_apic_base_write(void) { wrmsr(MSR_APIC_BASE, ((uint64_t)g_d << 32) | g_a); }

static void apic_restore(void)
{
	uint64_t b = rdmsr(MSR_APIC_BASE);
	uint64_t want = APIC_DEFAULT_BASE | APIC_BASE_EN | (b & APIC_BASE_BSP);

	apic_sane = false;
	if (b != want) {
		g_a = APIC_DEFAULT_BASE | (uint32_t)(b & APIC_BASE_BSP), g_d = 0;   /* disabled: resets it */
		try_call(op_apic_base_write);
		g_a = (uint32_t)want;
		try_call(op_apic_base_write);
	}
	apic_x2 = false;
	apic_mmio = (volatile uint32_t *)(uintptr_t)APIC_DEFAULT_BASE;
	apic_setup();
	apic_write(APIC_TMICT, 0);
	apic_sane = (rdmsr(MSR_APIC_BASE) == want);
}

/* --- the actions ------------------------------------------------------------------------------- */

static const uint16_t ports[] = {
	0x20, 0x21, 0xa0, 0xa1, 0x40, 0x41, 0x42, 0x43, 0x60, 0x64, 0x61, 0x70, 0x71, 0x80, 0x92, 0xcf8,
	0xcfc, 0xcfd, 0xcf9, 0x3f9, 0x3fa, 0x3fb, 0x3fc, 0x3fd, 0x3fe, 0x3ff, 0x400, 0x402, 0x4d0, 0x4d1,
	0x510, 0x511, 0x8900, 0xb000, 0xb004, 0xe9, 0x2f8, 0x3f0, 0x1f0, 0x170 };

static uint16_t pick_port(void)
{
	uint16_t p;

	switch (rnd_below(4)) {
	case 0: p = 0x400 + rnd_below(0x100); break;
	case 1: p = (uint16_t)rnd(); break;
	default: p = PICK(ports); break;
	}
	if (p >= 0xf0 && p <= 0xf7)      /* the exit port (0xF4-0xF7) and accesses reaching into it */
		p = 0x80;
	if (p == 0x3f8)                  /* THR: the byte would land in our own console line */
		p = 0x3ff;
	return p;
}

static void op_in8(void) { uint8_t v; __asm__ volatile("inb %w1, %0" : "=a"(v) : "Nd"((uint16_t)g_c)); g_a = v; }
static void op_in16(void) { uint16_t v; __asm__ volatile("inw %w1, %0" : "=a"(v) : "Nd"((uint16_t)g_c)); g_a = v; }
static void op_in32(void) { uint32_t v; __asm__ volatile("inl %w1, %0" : "=a"(v) : "Nd"((uint16_t)g_c)); g_a = v; }
static void op_out8(void) { __asm__ volatile("outb %b0, %w1" : : "a"(g_a), "Nd"((uint16_t)g_c)); }
static void op_out16(void) { __asm__ volatile("outw %w0, %w1" : : "a"(g_a), "Nd"((uint16_t)g_c)); }
static void op_out32(void) { __asm__ volatile("outl %0, %w1" : : "a"(g_a), "Nd"((uint16_t)g_c)); }

static void uart_fix(void)
{
	outb(0x3fb, 0x03);   /* LCR: 8N1, DLAB off, so THR is the THR again */
	outb(0x3fc, 0x00);   /* MCR as at reset: loopback (bit 4) off, else THR never reaches the line */
}

/*
 * Resets end this guest by design (`stopped: reset requested (...)`, vdev/reset.c), and an ACPI S5
 * write (SLP_EN, bit 5, at the sleep port 0x600; bit 13 of PM1a_CNT at 0xB004) powers it off: the default mix writes
 * everything to those ports but that; mode=reset does one of them at the end.
 */
static uint32_t no_reset(uint16_t port, unsigned sz, uint32_t v)
{
	/* PM1a_CNT at 0xB004 (the FADT's, vdev/pmtimer.h): SLP_EN is its bit 13, bit 5 of byte 0xB005,
	 * whatever the access's size. */
	if (port <= 0xb005 && port + (1u << sz) > 0xb005)
		v &= ~(0x20u << (8 * (0xb005 - port)));
	if (sz != 0)
		return v;                    /* the reset registers take bytes only */
	switch (port) {
	case 0x64: return (v & 0xff) == 0xfe || (v & 0xff) == 0xd1 ? 0xaa : v;
	case 0x92: return v & ~1u;
	case 0xcf9: return v & ~4u;
	case 0x600: return v & ~0x20u;
	case 0x21: case 0xa1: return (v & 0xff) < 0x20 ? v | 0x20 : v;   /* as ICW2: no vector below 32 */
	}
	return v;
}

static void act_port(void)
{
	static void (*const ins[3])(void) = { op_in8, op_in16, op_in32 };
	static void (*const outs[3])(void) = { op_out8, op_out16, op_out32 };
	unsigned sz = rnd_below(3), in = rnd_below(2);
	uint16_t port = pick_port();
	int f;

	g_c = port;
	if (in) {
		f = try_call(ins[sz]);
		LINE("in%u port 0x%x -> %s0x%x", 8u << sz, port, f ? result(f, "") : "", f ? 0 : g_a);
		return;
	}
	/* Values that mean something to some device: resets, PCI config addresses, CMOS indexes. */
	switch (port) {
	case 0x64: g_a = rnd_below(2) ? 0xfe : rnd(); break;
	case 0x92: g_a = rnd() | 1; break;
	case 0xcf9: g_a = PICK(((const uint8_t[]){ 0x02, 0x04, 0x06, 0x0e })); break;
	case 0xcf8: g_a = 0x80000000u | (rnd() & 0xfffffc); sz = 2; break;
	case 0x70: g_a = rnd() & 0xff; break;
	default: g_a = rnd();
	}
	g_a = no_reset(port, sz, g_a);
	f = try_call(outs[sz]);
	uart_fix();
	LINE("out%u port 0x%x value 0x%x -> %s", 8u << sz, port, g_a & (sz == 2 ? ~0u : (1u << (8 << sz)) - 1),
	     result(f, "ok"));
}

static void act_reset(void)
{
	static const uint8_t vals[] = { 0xfe, 0xd1, 0x01, 0x06, 0x0e, 0x3c, 0x34 };
	static const uint16_t rports[] = { 0x64, 0x64, 0x92, 0xcf9, 0xcf9, 0x600, 0x600 };
	unsigned k = rnd_below(sizeof(vals));
	/* The same ports with the reset bits clear, and wider accesses the devices ignore. */
	outb(rports[k], (uint8_t)no_reset(rports[k], 0, vals[k]));
	__asm__ volatile("outw %w0, %w1" : : "a"(0xffff), "Nd"((uint16_t)0xcf9));
	__asm__ volatile("outw %w0, %w1" : : "a"(0x2020), "Nd"((uint16_t)0x600));
	__asm__ volatile("outl %0, %w1" : : "a"(0xffffffffu), "Nd"((uint16_t)0x91));
	LINE("reset-ports 0x%x value 0x%x (reset bit clear), outw 0xcf9, outw 0x600, outl 0x91 -> still running",
	     rports[k], no_reset(rports[k], 0, vals[k]));
}

/* String I/O. */
static uint8_t sbuf[256];
static void op_strio(void)
{
	uint32_t si = g_b, di = g_b, cx = g_c;
	uint16_t port = (uint16_t)g_d;

	switch (g_a) {
	case 0: __asm__ volatile("rep insb" : "+D"(di), "+c"(cx) : "d"(port) : "memory"); break;
	case 1: __asm__ volatile("rep insw" : "+D"(di), "+c"(cx) : "d"(port) : "memory"); break;
	case 2: __asm__ volatile("rep insl" : "+D"(di), "+c"(cx) : "d"(port) : "memory"); break;
	case 3: __asm__ volatile("rep outsb" : "+S"(si), "+c"(cx) : "d"(port) : "memory"); break;
	case 4: __asm__ volatile("rep outsw" : "+S"(si), "+c"(cx) : "d"(port) : "memory"); break;
	case 5: __asm__ volatile("rep outsl" : "+S"(si), "+c"(cx) : "d"(port) : "memory"); break;
	case 6: __asm__ volatile("std; rep insb; cld" : "+D"(di), "+c"(cx) : "d"(port) : "memory"); break;
	case 7: __asm__ volatile("std; rep outsb; cld" : "+S"(si), "+c"(cx) : "d"(port) : "memory"); break;
	case 8: __asm__ volatile("insl" : "+D"(di) : "d"(port) : "memory"); break;
	}
	g_b = g_a == 3 || g_a == 4 || g_a == 5 || g_a == 7 ? si : di;
	g_c = cx;
}

static void act_strio(void)
{
	static const char *const names[9] = { "rep insb", "rep insw", "rep insl", "rep outsb", "rep outsw",
					       "rep outsl", "std rep insb", "std rep outsb", "insl" };
	/* Ports: the UART's scratch register, empty ports (COM2, POST, COM4, 0x400, PCI data), the UART's
	 * LCR (written only). Not the RTC's 0x70: a word from it reads 0x71, the CMOS data, not all ones. */
	static const uint16_t sports[] = { 0x3ff, 0x3ff, 0x2f8, 0x80, 0x2e8, 0x3fb, 0x400, 0xcfc };
	unsigned op = rnd_below(9), size = (op == 1 || op == 4) ? 2 : (op == 2 || op == 5 || op == 8) ? 4 : 1;
	uint16_t port = PICK(sports);
	uint32_t n = op == 8 ? 1 : rnd_below(256 / size + 1), start, want;
	uint8_t scr = (uint8_t)rnd();
	int f;
	bool down = op == 6 || op == 7, in = op <= 2 || op == 6 || op == 8;

	if (in && port == 0x3fb)
		port = 0x3ff;
	outb(0x3ff, scr);
	memset(sbuf, 0x11, sizeof(sbuf));
	start = (uint32_t)(uintptr_t)(down ? &sbuf[sizeof(sbuf) - 1] : sbuf);
	g_a = op, g_b = start, g_c = n, g_d = port;
	f = try_call(op_strio);
	uart_fix();
	want = down ? start - n * size : start + (op == 8 ? size : n * size);
	if (f) {
		LINE("%s port 0x%x count %u -> %s", names[op], port, n, result(f, ""));
		return;
	}
	/* What the bytes must be: the scratch register's value (1-byte INS from 0x3FF), all ones from an
	 * empty port or a wider access to the UART, untouched for OUTS. */
	uint8_t expect = !in ? 0x11 : (port == 0x3ff && size == 1) ? scr : 0xff;
	uint32_t bytes = op == 8 ? 4 : n * size, lo = down ? start - bytes + 1 : start, bad = 0;
	for (uint32_t i = 0; i < bytes; i++)
		if (((uint8_t *)(uintptr_t)lo)[i] != expect)
			bad++;
	bool ok = (op == 8 || g_c == 0) && g_b == want && bad == 0;
	LINE("%s port 0x%x count %u -> ecx %u index %s%u, %u bytes wrong%s", names[op], port, n, g_c,
	     g_b >= start ? "+" : "-", g_b >= start ? g_b - start : start - g_b, bad, ok ? "" : " FAIL");
	if (!ok)
		checks_failed++;
}

/* MSRs. */
static void op_rdmsr(void) { uint32_t lo, hi; __asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(g_c)); g_a = lo, g_d = hi; }
static void op_wrmsr(void) { __asm__ volatile("wrmsr" : : "c"(g_c), "a"(g_a), "d"(g_d) : "memory"); }

static const uint32_t msrs[] = {
	0x1b, 0x3a, 0x6e0, 0x174, 0x175, 0x176, 0xc0000080, 0x277, 0x10, 0x1a0, 0x8b, 0xfe, 0x2ff, 0x200, 0x250,
	0x480, 0x481, 0x482, 0x48b, 0x48c, 0x491, 0x9b, 0x34, 0xce, 0x140, 0x64e, 0x1d9, 0x345, 0x38d, 0xc1,
	0x186, 0xe7, 0xe8, 0x3b, 0xc0000081, 0xc0000082, 0xc0000084, 0xc0000100, 0xc0000101, 0xc0000102,
	0xc0000103, 0x4b564d00, 0x40000000, 0x6a0, 0x6a2, 0xda0, 0x1c9, 0xd90 };

static uint32_t pick_msr(void)
{
	switch (rnd_below(5)) {
	case 0: return rnd();
	case 1: return 0x800 + rnd_below(0x100);
	default: return PICK(msrs);
	}
}

/* A value worth writing to `msr`; and whether the write must be undone afterwards. */
static uint64_t msr_value(uint32_t msr)
{
	switch (msr) {
	case 0x1b:
		switch (rnd_below(6)) {
		case 0: return APIC_DEFAULT_BASE;                                     /* disable */
		case 1: return APIC_DEFAULT_BASE | APIC_BASE_EN | APIC_BASE_EXTD;     /* x2APIC */
		case 2: return APIC_DEFAULT_BASE | APIC_BASE_EXTD;                    /* invalid */
		case 3: return 0xFED00000u | APIC_BASE_EN | APIC_BASE_BSP;            /* relocate */
		case 4: return (0xE0000000u | (rnd() & 0x0ffff000u)) | APIC_BASE_EN;   /* relocate high */
		default: return ((uint64_t)rnd() << 32) | rnd();                      /* reserved bits */
		}
	case 0xc0000080: return PICK(((const uint32_t[]){ 0, 1, 0x800, 0x801, 0x400, 0x100, 0x2, 0x4000 })) |
			 (rnd_below(4) ? 0 : (uint64_t)rnd() << 32);
	case 0x277: {
		uint64_t v = 0;
		for (int i = 0; i < 8; i++)
			v |= (uint64_t)PICK(((const uint8_t[]){ 0, 1, 4, 5, 6, 7, 2, 3, 8 })) << (8 * i);
		return v;
	}
	case 0x174: return rnd() & 0xffff;
	default: return rnd_below(3) ? rnd() : ((uint64_t)rnd() << 32) | rnd();
	}
}

/* Vectors 16-31 from the APIC would arrive on exception gates with no error code pushed; keep APIC
 * vectors at 0-15 (illegal: an APIC error) or 32-255. */
static uint32_t apic_vec(uint32_t v)
{
	uint32_t x = v & 0xff;
	return x >= 16 && x < 32 ? v + 0x20 : v;
}

static void act_msr(void)
{
	uint32_t msr = pick_msr();
	int f;

	g_c = msr;
	if (rnd_below(2)) {
		f = try_call(op_rdmsr);
		if (f)
			LINE("rdmsr 0x%x -> %s", msr, result(f, ""));
		else
			LINE("rdmsr 0x%x -> 0x%x%08x", msr, g_d, g_a);
		return;
	}
	/* Keep what we can restore: the SYSENTER MSRs, PAT, EFER, the TSC deadline. */
	uint32_t save_a = 0, save_d = 0;
	int saved = !try_call(op_rdmsr);
	save_a = g_a, save_d = g_d;
	uint64_t v = msr_value(msr);
	/* x2APIC ICR: no INIT to ourselves (see act_ipi). */
	if (msr == 0x830 && ((v >> 8) & 7) == 5)
		v &= ~0x700ull;
	if (msr >= 0x800 && msr <= 0x8ff)
		v = apic_vec((uint32_t)v) | (v & ~0xffffffffull);
	apic_sane = false;
	g_c = msr, g_a = (uint32_t)v, g_d = (uint32_t)(v >> 32);
	f = try_call(op_wrmsr);
	LINE("wrmsr 0x%x value 0x%x%08x -> %s", msr, g_d, g_a, result(f, "ok"));
	if (saved && !f && msr != 0x1b && (msr < 0x800 || msr > 0x8ff) && msr != 0x10) {
		g_c = msr, g_a = save_a, g_d = save_d;
		try_call(op_wrmsr);
	}
	apic_restore();
}

/* Control registers. */
static void op_wr_cr0(void) { wr_cr0(g_a); }
static void op_wr_cr3(void) { wr_cr3(g_a); }
static void op_wr_cr4(void) { wr_cr4(g_a); }
static void op_wr_cr1(void) { __asm__ volatile(".byte 0x0f, 0x22, 0xc8" : : "a"(g_a)); }   /* mov cr1, eax: #UD */
static void op_rd_cr8(void) { __asm__ volatile(".byte 0xf0, 0x0f, 0x20, 0xc0" : : : "eax"); }   /* LOCK MOV CR0: CR8 on AMD, #UD on Intel */
static void op_pe_toggle(void)
{
	/* Real mode for two instructions and back (CS keeps its 32-bit cache): interrupts are off. */
	__asm__ volatile("mov %%cr0, %%eax\n\tand $~1, %%eax\n\tmov %%eax, %%cr0\n\t"
			 "or $1, %%eax\n\tmov %%eax, %%cr0\n\tljmp $0x08, $1f\n1:\t"
			 "mov $0x10, %%eax\n\tmov %%ax, %%ds\n\tmov %%ax, %%es\n\tmov %%ax, %%ss"
			 : : : "eax", "memory");
}

static void act_cr(void)
{
	unsigned kind = rnd_below(9);
	int f;

	switch (kind) {
	case 0: case 1: {                /* CR0: one bit flipped, or a random value kept sane */
		static const uint32_t bits[] = { 1u << 1, 1u << 2, CR0_TS, 1u << 4, 1u << 5, CR0_WP, CR0_AM,
						 CR0_NW, CR0_CD, CR0_CD | CR0_NW, 1u << 7, 1u << 12, 1u << 24 };
		uint32_t v = base_cr0 ^ PICK(bits);
		if (kind == 1)
			v = (rnd() & ~(CR0_PG | CR0_TS | 1u << 2)) | CR0_PE | (base_cr0 & CR0_PG);
		g_a = v;
		f = try_call(op_wr_cr0);
		uint32_t got = rd_cr0();
		wr_cr0(base_cr0);
		LINE("mov cr0 0x%x -> %s (read 0x%x)", v, result(f, "ok"), got);
		break;
	}
	case 2: {                        /* the edges: PG without PE, NW without CD, PE off and on */
		unsigned e = rnd_below(3);
		if (e == 2) {
			f = try_call(op_pe_toggle);
			LINE("cr0 pe off and on (real mode for 2 instructions) -> %s", result(f, "ok"));
		} else {
			g_a = e == 0 ? (base_cr0 | CR0_PG) & ~CR0_PE : (base_cr0 | CR0_NW) & ~CR0_CD;
			f = try_call(op_wr_cr0);
			wr_cr0(base_cr0);
			LINE("mov cr0 0x%x (%s) -> %s", g_a, e == 0 ? "pg without pe" : "nw without cd", result(f, "ok"));
		}
		break;
	}
	case 3: {                        /* CR3: random with paging off; flag bits only with paging on */
		uint32_t old = rd_cr3(), v = paging ? (old & ~0x18u) | (rnd() & 0x18) : rnd();
		g_a = v;
		f = try_call(op_wr_cr3);
		uint32_t got = rd_cr3();
		wr_cr3(old);
		LINE("mov cr3 0x%x (paging %s) -> %s (read 0x%x)", v, paging_names[paging], result(f, "ok"), got);
		break;
	}
	case 4: case 5: {                /* CR4: one bit, VMXE among them */
		static const uint8_t bits[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 13, 14, 15, 16, 17,
						18, 19, 20, 21, 22, 23, 24, 25, 28, 31 };
		unsigned b = PICK(bits);
		uint32_t v = base_cr4 ^ (1u << b);
		/* With paging on, PAE and PSE define how our own code is mapped; SMEP/SMAP would forbid it
		 * (all pages are user pages). */
		if (paging && (b == 4 || b == 5 || b == 20 || b == 21))
			v = base_cr4 | (1u << 13);
		g_a = v;
		f = try_call(op_wr_cr4);
		uint32_t got = rd_cr4();
		wr_cr4(base_cr4);
		LINE("mov cr4 0x%x (bit %u) -> %s (read 0x%x)", v, b, result(f, "ok"), got);
		break;
	}
	case 6: {
		g_a = rnd() & 0xf;
		f = try_call(rnd_below(2) ? op_wr_cr1 : op_rd_cr8);
		wr_cr0(base_cr0);
		LINE("mov cr1 / lock mov cr0 (the AMD cr8 alias; cr8 needs REX, 64-bit only) -> %s", result(f, "ok"));
		break;
	}
	case 7: case 8: {                /* paging mode changes */
		int m = rnd_below(3);
		paging_set(m);
		LINE("paging %s (cr0 0x%x cr3 0x%x cr4 0x%x) -> ok", paging_names[m], base_cr0, rd_cr3(), base_cr4);
		break;
	}
	}
}

/* Memory through paging: the holes, and the last dword of RAM. */
static void op_read(void) { g_a = *(volatile uint32_t *)(uintptr_t)g_c; }
static void op_write(void) { *(volatile uint32_t *)(uintptr_t)g_c = g_a; }

static void act_mem(void)
{
	uint32_t end = (uint32_t)ram_end();
	unsigned k = rnd_below(4);
	int f;

	if (k == 0 || !paging) {         /* the last dword of RAM (past it stops us: mode=pastend) */
		g_c = end - 4 - 4 * rnd_below(4);
		g_a = rnd();
		uint32_t keep = *(volatile uint32_t *)(uintptr_t)g_c;
		f = try_call(rnd_below(2) ? op_read : op_write);
		*(volatile uint32_t *)(uintptr_t)g_c = keep;
		LINE("access 0x%x (ram end 0x%x) -> %s", g_c, end, result(f, "ok"));
		return;
	}
	g_c = (k == 1 ? HOLE_NP : HOLE_SUP) + (rnd() & 0x3ffffc);
	f = try_call(k == 1 && rnd_below(2) ? op_write : op_read);   /* the supervisor page is our low RAM */
	LINE("access 0x%x (%s, paging %s, ring 0) -> %s", g_c, k == 1 ? "not present" : "supervisor page",
	     paging_names[paging], result(f, "ok"));
}

/* Debug registers. */
static uint8_t bp_area[0x2000] __attribute__((aligned(4096)));   /* nothing else touches it */
#define BP_AREA ((uint32_t)(uintptr_t)bp_area)
static uint32_t rd_dr(int n)
{
	uint32_t v = 0;
	switch (n) {
	case 0: __asm__ volatile("mov %%dr0, %0" : "=r"(v)); break;
	case 1: __asm__ volatile("mov %%dr1, %0" : "=r"(v)); break;
	case 2: __asm__ volatile("mov %%dr2, %0" : "=r"(v)); break;
	case 3: __asm__ volatile("mov %%dr3, %0" : "=r"(v)); break;
	case 6: __asm__ volatile("mov %%dr6, %0" : "=r"(v)); break;
	case 7: __asm__ volatile("mov %%dr7, %0" : "=r"(v)); break;
	}
	return v;
}

static void wr_dr(int n, uint32_t v)
{
	switch (n) {
	case 0: __asm__ volatile("mov %0, %%dr0" : : "r"(v)); break;
	case 1: __asm__ volatile("mov %0, %%dr1" : : "r"(v)); break;
	case 2: __asm__ volatile("mov %0, %%dr2" : : "r"(v)); break;
	case 3: __asm__ volatile("mov %0, %%dr3" : : "r"(v)); break;
	case 6: __asm__ volatile("mov %0, %%dr6" : : "r"(v)); break;
	case 7: __asm__ volatile("mov %0, %%dr7" : : "r"(v)); break;
	}
}

static void op_dr_write(void) { wr_dr((int)g_c, g_a); }
static void op_dr_gd(void) { wr_dr(7, 0x2400); g_a = rd_dr(0); }   /* GD: the next MOV DR faults (#DB) */
static void op_dr4(void) { __asm__ volatile(".byte 0x0f, 0x21, 0xe0" : : : "eax"); }  /* mov eax, dr4 */

static void act_dr(void)
{
	unsigned k = rnd_below(5);
	int f;

	if (k == 0) {
		f = try_call(op_dr_gd);
		wr_dr(7, 0x400);
		LINE("dr7 GD then mov dr0 -> %s dr6 0x%x", result(f, "ok"), last_dr6);
	} else if (k == 1) {
		/* DR4 is DR6 with CR4.DE clear and #UD with it set (SDM Vol. 3B, 18.2.2). */
		uint32_t de = rnd_below(2) ? 8 : 0;
		g_a = base_cr4 | de;
		try_call(op_wr_cr4);
		f = try_call(op_dr4);
		wr_cr4(base_cr4);
		LINE("mov eax, dr4 with cr4.de=%u -> %s", de ? 1 : 0, result(f, "ok"));
	} else if (k == 2) {             /* a random data breakpoint in the area, then a write there */
		uint32_t n = rnd_below(4), len = PICK(((const uint32_t[]){ 0, 1, 3, 2 }));
		uint32_t addr = BP_AREA + (rnd() & 0xff0), before = db_traps;
		wr_dr((int)n, addr);
		wr_dr(7, 0x400 | (1u << (2 * n)) | (1u << (16 + 4 * n)) | (len << (18 + 4 * n)));
		*(volatile uint32_t *)(uintptr_t)addr = rnd();
		wr_dr(7, 0x400);
		bool ok = db_traps == before + 1;
		LINE("data breakpoint dr%u 0x%x len %u, write -> %u #DB%s", n, addr, len, db_traps - before,
		     ok ? "" : " FAIL");
		if (!ok)
			checks_failed++;
	} else {                          /* random values into DR0-3, DR6, DR7 (enables masked off) */
		static const int regs[] = { 0, 1, 2, 3, 6, 7 };
		int r = PICK(regs);
		uint32_t v = rnd();
		if (r == 7)
			v &= ~0xffu & ~(1u << 13);     /* no enables, no GD: a random breakpoint on our code */
		else if (r < 4)
			v = BP_AREA + (v & 0xfff);
		g_c = r, g_a = v;
		f = try_call(op_dr_write);
		uint32_t got = rd_dr(r);
		wr_dr(7, 0x400);
		LINE("mov dr%d 0x%x -> %s (read 0x%x)", r, v, result(f, "ok"), got);
	}
}

/* VMX instructions and hypercalls. */
static uint64_t vmx_region[512] __attribute__((aligned(4096)));
static void op_vmxon(void) { __asm__ volatile("vmxon %0" : : "m"(vmx_region[0]) : "memory", "cc"); }
static void op_vmxoff(void) { __asm__ volatile("vmxoff" : : : "memory", "cc"); }
static void op_vmclear(void) { __asm__ volatile("vmclear %0" : : "m"(vmx_region[0]) : "memory", "cc"); }
static void op_vmptrld(void) { __asm__ volatile("vmptrld %0" : : "m"(vmx_region[0]) : "memory", "cc"); }
static void op_vmptrst(void) { __asm__ volatile("vmptrst %0" : "=m"(vmx_region[1]) : : "memory", "cc"); }
static void op_vmread(void) { uint32_t v; __asm__ volatile("vmread %1, %0" : "=r"(v) : "r"(g_c) : "cc"); g_a = v; }
static void op_vmwrite(void) { __asm__ volatile("vmwrite %0, %1" : : "r"(g_a), "r"(g_c) : "cc"); }
static void op_vmlaunch(void) { __asm__ volatile("vmlaunch" : : : "memory", "cc"); }
static void op_vmresume(void) { __asm__ volatile("vmresume" : : : "memory", "cc"); }
static void op_invept(void) { __asm__ volatile("invept %0, %1" : : "m"(vmx_region[2]), "r"(g_c) : "memory", "cc"); }
static void op_invvpid(void) { __asm__ volatile("invvpid %0, %1" : : "m"(vmx_region[2]), "r"(g_c) : "memory", "cc"); }
static void op_vmfunc(void) { __asm__ volatile(".byte 0x0f, 0x01, 0xd4" : : "a"(0), "c"(0) : "memory"); }
static void op_getsec(void) { __asm__ volatile(".byte 0x0f, 0x37" : : "a"(0) : "ebx", "ecx", "memory"); }
static void op_monitor(void) { __asm__ volatile("monitor" : : "a"(vmx_region), "c"(0), "d"(0)); }
static void op_mwait(void) { __asm__ volatile("mwait" : : "a"(0), "c"(0)); }
static void op_rdpmc(void) { uint32_t lo, hi; __asm__ volatile("rdpmc" : "=a"(lo), "=d"(hi) : "c"(g_c)); g_a = lo; }
static void op_invd(void) { __asm__ volatile("invd" : : : "memory"); }
static void op_wbinvd(void) { __asm__ volatile("wbinvd" : : : "memory"); }
static void op_invlpg(void) { __asm__ volatile("invlpg (%0)" : : "r"(g_c) : "memory"); }
static void op_vmcall(void)
{
	uint32_t a = g_a, b = g_b, c = g_c, d = g_d;
	__asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c), "+d"(d) : : "memory");
	g_a = a, g_b = b, g_c = c, g_d = d;
}

static void act_vmx(void)
{
	static const struct { const char *name; void (*fn)(void); } ops[] = {
		{ "vmxon", op_vmxon }, { "vmxoff", op_vmxoff }, { "vmclear", op_vmclear }, { "vmptrld", op_vmptrld },
		{ "vmptrst", op_vmptrst }, { "vmread", op_vmread }, { "vmwrite", op_vmwrite }, { "vmlaunch", op_vmlaunch },
		{ "vmresume", op_vmresume }, { "invept", op_invept }, { "invvpid", op_invvpid }, { "vmfunc", op_vmfunc },
		{ "getsec", op_getsec }, { "monitor", op_monitor }, { "mwait", op_mwait }, { "rdpmc", op_rdpmc },
		{ "invd", op_invd }, { "wbinvd", op_wbinvd }, { "invlpg", op_invlpg } };
	unsigned i = rnd_below(sizeof(ops) / sizeof(ops[0]));

	vmx_region[0] = rnd();           /* a revision id the CPU would check */
	g_c = rnd_below(2) ? rnd() & 0xffff : rnd();
	g_a = rnd();
	int f = try_call(ops[i].fn);
	LINE("%s -> %s", ops[i].name, result(f, "ok"));
}

static void act_vmcall(void)
{
	uint32_t nr;

	do
		nr = rnd_below(2) ? rnd_below(16) : rnd();
	while (nr == HC_EXIT || nr == HC_PUTCHAR);
	g_a = nr, g_b = rnd(), g_c = rnd(), g_d = rnd();
	int f = try_call(op_vmcall);
	bool ok = f || nr == HC_YIELD || nr == HC_GUEST_INFO ? true : (int32_t)g_a == HC_ERR_NOSYS;
	LINE("vmcall eax 0x%x -> %s eax %d%s", nr, result(f, "ok"), (int32_t)g_a, ok ? "" : " FAIL");
	if (!ok)
		checks_failed++;
}

/* CPUID and XSETBV. */
static void op_xsetbv(void)
{
	__asm__ volatile("xsetbv" : : "c"(g_c), "a"(g_a), "d"(g_d) : "memory");
}
static void op_xgetbv(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	g_a = lo, g_d = hi;
}

static void act_cpuid(void)
{
	static const uint32_t leaves[] = { 0, 1, 2, 4, 6, 7, 0xa, 0xb, 0xd, 0xf, 0x10, 0x12, 0x14, 0x15, 0x16,
					   0x1f, 0x40000000, 0x40000001, 0x40000010, 0x40000100, 0x80000000,
					   0x80000001, 0x80000008, 0x8000001f, 0xc0000000 };
	uint32_t leaf = rnd_below(3) ? PICK(leaves) : rnd(), sub = rnd_below(3) ? rnd_below(4) : rnd(), r[4];

	cpuid(leaf, sub, r);
	LINE("cpuid 0x%x.%u -> %x %x %x %x", leaf, sub, r[0], r[1], r[2], r[3]);
}

static void act_xsetbv(void)
{
	uint32_t r[4];
	bool xsave;

	cpuid(1, 0, r);
	xsave = r[2] & (1u << 26);
	bool osx = xsave && rnd_below(4);
	g_a = base_cr4 | (osx ? CR4_OSXSAVE : 0);
	try_call(op_wr_cr4);
	uint32_t old_a = 1, old_d = 0;
	if (osx && !try_call(op_xgetbv))
		old_a = g_a, old_d = g_d;
	g_c = rnd_below(4) ? 0 : rnd();
	g_a = PICK(((const uint32_t[]){ 0, 1, 3, 5, 7, 0x1f, 0xe7, 0x207, rnd() }));
	g_d = rnd_below(4) ? 0 : rnd();
	uint32_t a = g_a, c = g_c, d = g_d;
	int f = try_call(op_xsetbv);
	if (osx) {
		g_c = 0, g_a = old_a, g_d = old_d;
		try_call(op_xsetbv);
	}
	wr_cr4(base_cr4);
	LINE("xsetbv xcr%u 0x%x%08x cr4.osxsave=%u -> %s", c, d, a, osx ? 1 : 0, result(f, "ok"));
}

/* The local APIC: MMIO at 0xFEE00000 with sizes it takes (1/2/4-byte reads inside a register's first
 * dword, aligned 4-byte writes); IPIs. */
static const uint16_t apic_regs[] = { 0x20, 0x30, 0x80, 0x90, 0xa0, 0xb0, 0xd0, 0xe0, 0xf0, 0x100, 0x170,
				      0x180, 0x200, 0x280, 0x2f0, 0x310, 0x320, 0x330, 0x340, 0x350, 0x360,
				      0x370, 0x380, 0x390, 0x3e0, 0x3f0 };
static void op_mmio_r8(void) { g_a = *(volatile uint8_t *)(uintptr_t)g_c; }
static void op_mmio_r16(void) { g_a = *(volatile uint16_t *)(uintptr_t)g_c; }
static void op_mmio_r32(void) { g_a = *(volatile uint32_t *)(uintptr_t)g_c; }
static void op_mmio_w32(void) { *(volatile uint32_t *)(uintptr_t)g_c = g_a; }

static void act_apic_mmio(void)
{
	uint32_t off = rnd_below(3) ? PICK(apic_regs) : (rnd() & 0xff0);
	unsigned write = rnd_below(2);
	int f;

	apic_sane = false;
	if (write) {
		uint32_t v = rnd();
		if (off == 0x300)
			off = 0x310;          /* ICR: act_ipi's, where INIT to ourselves is filtered */
		if (off == 0x320 || off == 0x380)
			v = rnd_below(2) ? v : (off == 0x380 ? v & 0xfff : v | LVT_MASKED);
		v = apic_vec(v);
		g_c = APIC_DEFAULT_BASE + off, g_a = v;
		f = try_call(op_mmio_w32);
		LINE("apic mmio write32 0x%x value 0x%x -> %s", off, v, result(f, "ok"));
	} else {
		unsigned sz = rnd_below(3), in = sz == 2 ? 0 : rnd_below(sz == 1 ? 3 : 4);
		static void (*const rd[3])(void) = { op_mmio_r8, op_mmio_r16, op_mmio_r32 };
		g_c = APIC_DEFAULT_BASE + off + in;
		f = try_call(rd[sz]);
		LINE("apic mmio read%u 0x%x -> %s0x%x", 8u << sz, off + in, f ? result(f, "") : "", f ? 0 : g_a);
	}
	apic_restore();
}

static void act_ipi(void)
{
	static const uint32_t modes[] = { ICR_FIXED, ICR_FIXED, ICR_LOWEST, ICR_NMI, ICR_INIT, ICR_STARTUP,
					  2u << 8 /* SMI */, 3u << 8, 7u << 8 };
	static const uint32_t shorts[] = { 0, 0, ICR_SELF, ICR_ALL, ICR_ALL_BUT_SELF };
	bool x2 = rnd_below(3) == 0 && cpu_has_x2apic();
	uint32_t me, mode = PICK(modes), sh = PICK(shorts), vec = rnd_below(8) ? 0x30 + rnd_below(0xcf) : rnd_below(16);
	uint32_t dest = rnd_below(2) ? rnd_below(8) : rnd();
	uint32_t icr = mode | vec | sh | (rnd_below(2) ? ICR_LOGICAL : 0) | (rnd_below(2) ? ICR_ASSERT : 0) |
		       (rnd_below(4) ? 0 : ICR_LEVEL);
	uint32_t nmis = nmis_seen;

	if (x2)
		apic_enable_x2apic();
	me = apic_id();
	if (!x2)
		dest &= 0xff;
	/* INIT to ourselves would leave our only vCPU waiting for a SIPI for ever (mode=init does it):
	 * INIT only to a physical destination that is not us and not a broadcast. */
	if (mode == ICR_INIT) {
		sh = 0;
		icr = (icr & ~(ICR_LOGICAL | (3u << 18)));
		if (dest == me || dest == (x2 ? 0xffffffffu : 0xffu) || (x2 && (dest & 0xff) == 0xff))
			dest = me == 1 ? 2 : 1;
	}
	apic_sane = true;    /* an NMI or fixed IPI to ourselves arrives now or at the next STI */
	bool idle = apic_send_ipi(dest, icr);
	uint32_t esr;
	apic_write(APIC_ESR, 0);
	esr = apic_read(APIC_ESR);
	LINE("ipi %s dest 0x%x icr 0x%x (my id 0x%x) -> %s esr 0x%x nmis %u", x2 ? "x2apic" : "xapic", dest, icr,
	     me, idle ? "sent" : "busy", esr, nmis_seen - nmis);
	apic_restore();
}

/* x2APIC MSRs 0x800-0x8FF in x2APIC mode (in xAPIC mode act_msr's reads and writes #GP). */
static void act_x2apic(void)
{
	if (!cpu_has_x2apic()) {
		LINE("x2apic -> not offered");
		return;
	}
	apic_sane = false;
	apic_enable_x2apic();
	uint32_t msr = 0x800 + (rnd_below(2) ? rnd_below(0x40) : rnd_below(0x100));
	int f;
	g_c = msr;
	if (rnd_below(2)) {
		f = try_call(op_rdmsr);
		LINE("x2apic rdmsr 0x%x -> %s0x%x", msr, f ? result(f, "") : "", f ? 0 : g_a);
	} else {
		g_a = rnd_below(2) ? rnd() : rnd() & 0xff, g_d = rnd_below(4) ? 0 : rnd();
		if (msr == 0x830)
			g_a &= ~0x700u;   /* fixed delivery: no INIT to ourselves */
		g_a = apic_vec(g_a);
		f = try_call(op_wrmsr);
		LINE("x2apic wrmsr 0x%x value 0x%x%08x -> %s", msr, g_d, g_a, result(f, "ok"));
	}
	apic_restore();
}

/* HLT with interrupts on and the APIC timer armed: the interrupt wakes it. */
#define TIMER_VEC 0x41
static bool hlt_timer(uint32_t us, uint32_t *halts)
{
	uint32_t before = vec_count[TIMER_VEC];
	uint64_t t0 = rdtsc(), limit = us_to_tsc(200000) + us_to_tsc(us);

	apic_restore();
	apic_write(APIC_TDCR, TDCR_DIV1);
	apic_write(APIC_LVT_TIMER, TIMER_VEC | LVT_TIMER_ONESHOT);
	apic_write(APIC_TMICT, (uint32_t)udiv64((uint64_t)apic_timer_khz * us, 1000, NULL) + 1);
	*halts = 0;
	while (vec_count[TIMER_VEC] == before && rdtsc() - t0 < limit) {
		sti_hlt();
		cli();
		(*halts)++;
	}
	apic_write(APIC_TMICT, 0);
	return vec_count[TIMER_VEC] == before + 1;
}

static void act_hlt(void)
{
	uint32_t us = 100 + rnd_below(2000), halts;
	bool ok = hlt_timer(us, &halts);
	LINE("sti; hlt with the apic timer in %u us -> %s after %u hlt", us, ok ? "woken" : "not woken FAIL", halts);
	if (!ok)
		checks_failed++;
}

/* Software interrupts and faults of our own. */
static void op_int3(void) { __asm__ volatile("int3"); }
static void op_ud2(void) { __asm__ volatile("ud2"); }
static void op_div0(void) { __asm__ volatile("xor %%edx, %%edx; xor %%ecx, %%ecx; mov $1, %%eax; div %%ecx" : : : "eax", "ecx", "edx"); }
static void op_into(void) { __asm__ volatile("mov $0x7fffffff, %%eax; add $1, %%eax; into" : : : "eax", "cc"); }
static void op_bound(void) { static int32_t b[2] = { 10, 20 }; __asm__ volatile("bound %0, %1" : : "r"(5), "m"(b[0])); }
static void op_lldt(void) { __asm__ volatile("lldt %w0" : : "r"((uint16_t)g_c)); }
static void op_ltr(void) { __asm__ volatile("ltr %w0" : : "r"((uint16_t)g_c)); }
static void op_movss(void) { __asm__ volatile("mov %%ss, %%eax; mov %w0, %%ss; mov %%eax, %%ss" : : "r"((uint16_t)g_c) : "eax"); }
static void op_movds(void) { __asm__ volatile("mov %w0, %%ds; mov $0x10, %%eax; mov %%eax, %%ds" : : "r"((uint16_t)g_c) : "eax"); }
static void op_ljmp_null(void) { static const uint32_t far[2] = { 0, 0 }; __asm__ volatile("ljmp *%0" : : "m"(far)); }
static void op_iret_bad(void) { __asm__ volatile("pushl $2; pushl $0x38; pushl $0; iretl" : : : "memory"); }
static void op_sysenter(void) { __asm__ volatile("sysenter" : : : "memory"); }
static void op_rdtscp(void) { uint32_t a, c, d; __asm__ volatile("rdtscp" : "=a"(a), "=c"(c), "=d"(d)); g_a = a; }
static void op_swint(void) { __asm__ volatile("int $0x30"); }
static void op_cli_sti(void) { __asm__ volatile("sti; nop; nop; cli"); }

static void act_misc(void)
{
	static const struct { const char *name; void (*fn)(void); } ops[] = {
		{ "int3", op_int3 }, { "ud2", op_ud2 }, { "div by 0", op_div0 }, { "into", op_into },
		{ "bound", op_bound }, { "lldt random", op_lldt }, { "ltr random", op_ltr },
		{ "mov ss random", op_movss }, { "mov ds random", op_movds }, { "ljmp null", op_ljmp_null },
		{ "iret to bad cs", op_iret_bad }, { "sysenter (cs 0)", op_sysenter }, { "rdtscp", op_rdtscp },
		{ "int 0x30", op_swint }, { "sti; nop; nop; cli", op_cli_sti } };
	unsigned i = rnd_below(sizeof(ops) / sizeof(ops[0]));

	g_c = rnd() & 0xffff;
	int f = try_call(ops[i].fn);
	LINE("%s 0x%x -> %s", ops[i].name, g_c, result(f, "ok"));
}

/* Ring 3: IRET to a CPL-3 code segment that does one privileged thing, back through the call gate
 * (or the fault). */
static volatile uint32_t u_op, u_ret;
static volatile uint32_t u_misaligned[4];

static void user_op(void)
{
	switch (u_op) {
	case 0: __asm__ volatile("cli"); break;
	case 1: __asm__ volatile("hlt"); break;
	case 2: __asm__ volatile("inb $0x80, %%al" : : : "eax"); break;
	case 3: __asm__ volatile("outb %%al, $0x80" : : "a"(0)); break;
	case 4: __asm__ volatile("rdmsr" : : "c"(0x1b) : "eax", "edx"); break;
	case 5: __asm__ volatile("mov %%cr0, %%eax; mov %%eax, %%cr0" : : : "eax"); break;
	case 6: { uint64_t z = 0; __asm__ volatile("lgdt %0" : : "m"(z)); break; }
	case 7: __asm__ volatile("wbinvd"); break;
	case 8: __asm__ volatile("int $0x30"); break;
	case 9: { uint32_t a = HC_GUEST_INFO, b = 0, c = 0, d = 0;
		__asm__ volatile("vmcall" : "+a"(a), "+b"(b), "+c"(c), "+d"(d)); u_ret = a; break; }
	case 10: __asm__ volatile("rdpmc" : : "c"(0) : "eax", "edx"); break;
	case 11: { uint32_t a, d; __asm__ volatile("rdtsc" : "=a"(a), "=d"(d)); u_ret = a; break; }
	case 12: __asm__ volatile("mov %%dr7, %%eax" : : : "eax"); break;
	case 13: /* EFLAGS.AC with CR0.AM: a misaligned load raises #AC(0) */
		__asm__ volatile("pushfl; orl $0x40000, (%%esp); popfl; movl (%0), %%eax"
				 : : "r"((uintptr_t)u_misaligned + 1) : "eax", "cc");
		break;
	case 14: { uint32_t r[4]; cpuid(0x40000000, 0, r); u_ret = r[1]; break; }
	case 15: __asm__ volatile("sti"); break;
	case 16: __asm__ volatile("vmxon %0" : : "m"(u_misaligned[0])); break;
	case 17: __asm__ volatile("movl (%0), %%eax" : : "r"(HOLE_SUP + 0x10) : "eax"); break;
	case 18: __asm__ volatile("invd"); break;
	case 19: __asm__ volatile("clts"); break;
	case 20: __asm__ volatile("xsetbv" : : "a"(1), "c"(0), "d"(0)); break;
	case 21: __asm__ volatile("sysexit"); break;
	}
}
#define USER_OPS 22
static const char *const user_names[USER_OPS] = {
	"cli", "hlt", "in 0x80", "out 0x80", "rdmsr 0x1b", "mov cr0", "lgdt", "wbinvd", "int 0x30",
	"vmcall guest-info", "rdpmc", "rdtsc", "mov dr7", "misaligned load with AC", "cpuid", "sti", "vmxon",
	"load supervisor page", "invd", "clts", "xsetbv", "sysexit" };

void user_main(void)
{
	user_op();
	__asm__ volatile("lcall $0x33, $0" : : : "memory");
	for (;;)
		;
}

static uint32_t u_eflags;
static void op_ring3(void)
{
	__asm__ volatile("pushl $0x23\n\t"
			 "pushl %0\n\t"
			 "pushl %1\n\t"
			 "pushl $0x1b\n\t"
			 "pushl %2\n\t"
			 "movl $0x23, %%eax\n\tmovw %%ax, %%ds\n\tmovw %%ax, %%es\n\tmovw %%ax, %%fs\n\tmovw %%ax, %%gs\n\t"
			 "iretl"
			 : : "r"((uint32_t)(uintptr_t)(ustack + sizeof(ustack) - 16)), "r"(u_eflags),
			   "r"((uint32_t)(uintptr_t)user_main)
			 : "eax", "memory");
}

static void act_ring3(void)
{
	u_op = rnd_below(USER_OPS);
	if (u_op == 17 && !paging)
		u_op = 14;          /* without paging the "supervisor page" is an address outside RAM */
	u_ret = 0;
	u_eflags = 0x2 | (rnd_below(4) ? 0 : 0x3000);     /* IOPL 0, sometimes 3 */
	if (u_op == 13)
		wr_cr0(base_cr0 | CR0_AM);
	int f = try_call(op_ring3);
	wr_cr0(base_cr0);
	bool ok = true;
	if (u_op == 9 && !f)
		ok = (int32_t)u_ret == HC_ERR_PERM;       /* hypercalls are for ring 0 */
	LINE("ring3 %s iopl %u paging %s -> %s ret 0x%x%s", user_names[u_op], (u_eflags >> 12) & 3,
	     paging_names[paging], result(f, "back through the call gate"), u_ret, ok ? "" : " FAIL");
	if (!ok)
		checks_failed++;
}

/* Virtual-8086 mode: IRET with EFLAGS.VM into 16-bit code below 1 MiB; every sequence ends in #GP
 * (IOPL < 3 sensitive instructions, or I/O without an I/O bitmap). */
#define V86_CODE 0x5000u
static const uint8_t v86_seqs[][8] = {
	{ 0xf4 },                       /* hlt */
	{ 0xfa },                       /* cli */
	{ 0xe4, 0x80 },                 /* in al, 0x80 */
	{ 0xcd, 0x10 },                 /* int 0x10 */
	{ 0x9c, 0x9d, 0xcc },           /* pushf; popf; int3 */
	{ 0x0f, 0x01, 0xc1 },           /* vmcall */
	{ 0x66, 0x31, 0xc0, 0x0f, 0xa2, 0xf4 },   /* xor eax, eax; cpuid; hlt */
	{ 0x0f, 0x20, 0xc0 },           /* mov eax, cr0 */
	{ 0xee },                       /* out dx, al */
	{ 0x0f, 0x0b },                 /* ud2 */
};
static uint32_t v86_eflags;
static void op_v86(void)
{
	__asm__ volatile("pushl $0\n\tpushl $0\n\tpushl $0\n\tpushl $0\n\t"   /* GS FS DS ES */
			 "pushl $0\n\tpushl $0x4ff0\n\t"                        /* SS:SP */
			 "pushl %0\n\t"
			 "pushl %1\n\tpushl $0\n\t"                             /* CS:IP */
			 "iretl"
			 : : "r"(v86_eflags), "r"(V86_CODE >> 4) : "memory");
}

static void act_v86(void)
{
	unsigned s = rnd_below(sizeof(v86_seqs) / sizeof(v86_seqs[0]));

	if (paging) {
		paging_set(0);       /* 16-bit code below 1 MiB, not mapped for user in the holes: keep it simple */
	}
	/* Then HLT, which faults in virtual-8086 mode whatever the IOPL (CPL 3): the sequence cannot run on. */
	memset((void *)V86_CODE, 0xf4, 64);
	for (unsigned i = 0; i < sizeof(v86_seqs[s]) && v86_seqs[s][i]; i++)
		((uint8_t *)V86_CODE)[i] = v86_seqs[s][i];
	v86_eflags = 0x20002 | (rnd_below(3) ? 0 : 0x3000);
	int f = try_call(op_v86);
	LINE("v86 seq %u (%02x %02x %02x) iopl %u -> %s at 0x%x", s, v86_seqs[s][0], v86_seqs[s][1], v86_seqs[s][2],
	     (v86_eflags >> 12) & 3, result(f, "returned?"), f ? last_eip : 0);
}

/* Yield to another guest with state worth keeping; everything must come back as it was. */
uint32_t yr_in[6], yr_out[6];
void yield_regs(void);
__asm__(".pushsection .text\n"
	".globl yield_regs\n"
	"yield_regs:\n"
	"\tpushl %ebp\n\tpushl %ebx\n\tpushl %esi\n\tpushl %edi\n"
	"\tmovl yr_in + 4, %ebx\n\tmovl yr_in + 8, %ecx\n\tmovl yr_in + 12, %edx\n"
	"\tmovl yr_in + 16, %esi\n\tmovl yr_in + 20, %edi\n\tmovl yr_in + 0, %ebp\n"
	"\tmovl $2, %eax\n"
	"\tvmcall\n"
	"\tmovl %eax, yr_out + 0\n\tmovl %ebx, yr_out + 4\n\tmovl %ecx, yr_out + 8\n"
	"\tmovl %edx, yr_out + 12\n\tmovl %esi, yr_out + 16\n\tmovl %edi, yr_out + 20\n"
	"\tcmpl yr_in, %ebp\n\tje 1f\n\tmovl $0xdead, yr_out\n1:\n"
	"\tpopl %edi\n\tpopl %esi\n\tpopl %ebx\n\tpopl %ebp\n"
	"\tret\n"
	".popsection\n");

static void yield_check(bool verbose)
{
	uint32_t dr[4], dr7, cs = 0x08, esp = rnd() & ~3u, eip = rnd(), cr0 = rd_cr0(), cr3 = rd_cr3(), cr4 = rd_cr4();
	uint64_t pat = 0, efer = rdmsr(0xc0000080);
	unsigned n = rnd_below(4);
	bool regs_ok, dr_ok, msr_ok, cr_ok, bp_ok;

	for (int i = 0; i < 6; i++)
		yr_in[i] = rnd();
	for (int i = 0; i < 8; i++)
		pat |= (uint64_t)PICK(((const uint8_t[]){ 0, 1, 4, 5, 6, 7 })) << (8 * i);
	for (int i = 0; i < 4; i++)
		wr_dr(i, dr[i] = BP_AREA + 0x1000 + 16 * i);
	/* Breakpoint n: write, 4 bytes; all four enabled locally (the area is ours alone). */
	dr7 = 0x400 | 0x55 | (0xdu << 16) | (0xdu << 20) | (0xdu << 24) | (0xdu << 28);
	wr_dr(7, dr7);
	wrmsr(0x174, cs), wrmsr(0x175, esp), wrmsr(0x176, eip), wrmsr(0x277, pat);
	yield_regs();
	regs_ok = yr_out[0] == 0 && yr_out[1] == yr_in[1] && yr_out[2] == yr_in[2] && yr_out[3] == yr_in[3] &&
		  yr_out[4] == yr_in[4] && yr_out[5] == yr_in[5];
	dr_ok = rd_dr(0) == dr[0] && rd_dr(1) == dr[1] && rd_dr(2) == dr[2] && rd_dr(3) == dr[3] &&
		rd_dr(7) == dr7;
	msr_ok = rdmsr(0x174) == cs && rdmsr(0x175) == esp && rdmsr(0x176) == eip && rdmsr(0x277) == pat &&
		 rdmsr(0xc0000080) == efer;
	cr_ok = rd_cr0() == cr0 && rd_cr3() == cr3 && rd_cr4() == cr4;
	uint32_t before = db_traps;
	*(volatile uint32_t *)(uintptr_t)dr[n] = 1;      /* breakpoint n fires after the yield */
	bp_ok = db_traps == before + 1 && (last_dr6 & (1u << n));
	wr_dr(7, 0x400);
	wrmsr(0x277, 0x0007040600070406ull);
	wrmsr(0x174, 0), wrmsr(0x175, 0), wrmsr(0x176, 0);   /* sysenter must #GP again */
	if (verbose || !(regs_ok && dr_ok && msr_ok && cr_ok && bp_ok)) {
		hv_check(regs_ok, "general registers survive a yield");
		hv_check(dr_ok, "DR0-DR3, DR7 survive a yield");
		hv_check(msr_ok, "SYSENTER_CS/ESP/EIP, PAT, EFER survive a yield");
		hv_check(cr_ok, "CR0, CR3, CR4 survive a yield");
		check(bp_ok, "hostile: check a data breakpoint fires after a yield (%u #DB, dr6 0x%x, bp %u)",
		      db_traps - before, last_dr6, n);
		checks_failed += !bp_ok;
	}
	if (!verbose)
		LINE("yield with state (paging %s) -> regs %s dr %s msrs %s crs %s breakpoint %s", paging_names[paging],
		     regs_ok ? "ok" : "FAIL", dr_ok ? "ok" : "FAIL", msr_ok ? "ok" : "FAIL", cr_ok ? "ok" : "FAIL",
		     bp_ok ? "ok" : "FAIL");
}

static void act_yield(void) { yield_check(false); }

/* --- the mix ------------------------------------------------------------------------------------ */

static const struct { const char *name; void (*fn)(void); unsigned weight; } actions[] = {
	{ "port", act_port, 14 }, { "reset", act_reset, 1 }, { "strio", act_strio, 6 }, { "msr", act_msr, 12 },
	{ "cr", act_cr, 10 }, { "mem", act_mem, 4 }, { "dr", act_dr, 6 }, { "vmx", act_vmx, 6 },
	{ "vmcall", act_vmcall, 4 }, { "cpuid", act_cpuid, 3 }, { "xsetbv", act_xsetbv, 3 },
	{ "apic", act_apic_mmio, 6 }, { "ipi", act_ipi, 5 }, { "x2apic", act_x2apic, 3 }, { "hlt", act_hlt, 3 },
	{ "misc", act_misc, 6 }, { "ring3", act_ring3, 8 }, { "v86", act_v86, 3 }, { "yield", act_yield, 3 } };

static unsigned weight[sizeof(actions) / sizeof(actions[0])];

/* Is `w` one of the comma-separated words of `list`? */
static bool word_in(const char *w, const char *list)
{
	size_t n = strlen(w);
	for (const char *p = list; *p;) {
		const char *e = p;
		while (*e && *e != ',')
			e++;
		size_t i = 0;
		while (i < n && p + i < e && p[i] == w[i])
			i++;
		if (i == n && p + n == e)
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

static uint32_t text_sum(void)
{
	/* From the image start (text first, then read-only data: guest.ld) to a read-only table. */
	uint32_t s = 0;
	for (const uint32_t *p = (const uint32_t *)__image_start; p < (const uint32_t *)(uintptr_t)vec_names; p++)
		s = s * 31 + *p;
	return s;
}

int main(void)
{
	uint64_t seed = getarg_num("seed", rdtsc());
	uint32_t n = (uint32_t)getarg_num("actions", 200), total = 0;
	const char *mode = getarg("mode");
	const char *only = getarg("only");   /* one action class, e.g. only=ring3 (for replaying) */
	const char *avoid = getarg("avoid"); /* classes left out, e.g. avoid=cr,v86 */
	uint32_t halts, sum0;

	if (!mode)
		mode = "default";
	printf("hostile: seed %llu actions %u mode %s\n", (unsigned long long)seed, n, mode);
	if (!hv_present()) {
		printf("hostile: not under tessera (hypercalls would #UD): stopping\n");
		return 3;
	}
	rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
	intr_init();
	for (unsigned v = 0; v < 255; v++)
		irq_set_handler(v, on_vector);
	tables_init();
	paging_tables();
	paging_set(0);
	time_init();
	apic_restore();
	apic_timer_calibrate();
	sum0 = text_sum();
	for (unsigned i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
		weight[i] = actions[i].weight;
		if (avoid && word_in(actions[i].name, avoid))
			weight[i] = 0;
		total += weight[i];
	}

	for (idx = 1; idx <= n; idx++) {
		unsigned i = 0;
		if (only) {
			while (i < sizeof(actions) / sizeof(actions[0]) - 1 && strcmp(actions[i].name, only))
				i++;
		} else {
			uint32_t r = rnd_below(total);
			while (r >= weight[i])
				r -= weight[i], i++;
		}
		actions[i].fn();
		uart_fix();
	}

	/* The end: the checks every run makes, whatever the mix did. */
	paging_set(0);
	apic_restore();
	yield_check(true);
	paging_set(2);
	yield_check(true);
	paging_set(0);
	hv_check(hlt_timer(1000, &halts), "sti; hlt wakes on the APIC timer");
	hv_check(text_sum() == sum0, "our code and read-only data unchanged");
	if (strcmp(mode, "default")) {
		printf("hostile: mode %s after %u actions\n", mode, n);
		if (!strcmp(mode, "pastend")) {
			g_c = (uint32_t)ram_end();
			op_read();
		} else if (!strcmp(mode, "apicbad")) {
			/* The current-count register: never a write the CPU's APIC virtualization
			 * stores itself (SDM Vol. 3C, 30.4.3.1), so the hypervisor's emulation sees it
			 * (and refuses the size) with or without APIC virtualization. */
			*(volatile uint16_t *)(uintptr_t)(APIC_DEFAULT_BASE + 0x390) = 0;
		} else if (!strcmp(mode, "reset")) {
			static const char *const how[5] = { "kbc 0xfe", "kbc output port", "port 0x92", "cf9", "acpi s5" };
			unsigned k = (unsigned)seed % 5;   /* the seed picks it, whatever the mix did */
			printf("hostile: reset by %s\n", how[k]);
			switch (k) {
			case 0: outb(0x64, 0xfe); break;
			case 1: outb(0x64, 0xd1); outb(0x60, 0xfe); break;
			case 2: outb(0x92, inb(0x92) & ~1); outb(0x92, 1); break;
			case 3: outb(0xcf9, 0x02); outb(0xcf9, 0x06); break;
			case 4: outb(0x600, 0x20 | (5 << 2)); outb(0x600, 0x20 | (7 << 2)); outb(0x600, 0x20); break;
			}
		} else if (!strcmp(mode, "init")) {
			apic_send_ipi(apic_id(), ICR_INIT | ICR_ASSERT);
			udelay(1000);
		}
		printf("hostile: mode %s: still running\n", mode);
	}
	printf("hostile: done %u actions, %u faults caught, %u checks failed\n", n, faults_caught,
	       checks_failed);
	return checks_failed ? 1 : 0;
}
