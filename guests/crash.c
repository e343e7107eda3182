/*
 * crash: misbehaves on purpose, one way per run, so tests can check that the hypervisor stops (or
 * corrects) exactly this guest and nothing else. `do=`:
 *   hlt     CLI; HLT: nothing can ever wake it           -> stopped: halted with interrupts disabled
 *   triple  no IDT, then INT3                            -> stopped: triple fault
 *   strio   REP OUTSB to the UART (string I/O)           -> stopped: string I/O ... not supported
 *   gp      RDMSR of an MSR that does not exist          -> #GP injected, caught by its own IDT: exit 0
 *   ud      VMXON (no nested VMX)                        -> #UD injected, caught by its own IDT: exit 0
 *   port    IN from port 0x70, where it has no device     -> reads 0xff, reported once: exit 0
 *   cr4     MOV CR4 with VMXE set                        -> #GP injected, caught: exit 0
 */
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

int main(void)
{
	const char *what = getarg("do");

	if (!what) {
		printf("crash: usage: do=hlt|triple|strio|gp|ud|port|cr4\n");
		return 3;
	}
	printf("crash: doing %s\n", what);
	if (!strcmp(what, "hlt")) {
		__asm__ volatile("cli; hlt");
	} else if (!strcmp(what, "triple")) {
		struct { uint16_t limit; uint32_t base; } __attribute__((packed)) none = { 0, 0 };

		__asm__ volatile("lidt %0; int3" : : "m"(none));
	} else if (!strcmp(what, "strio")) {
		static const char msg[] = "string I/O\n";

		__asm__ volatile("rep outsb" : : "S"(msg), "c"(sizeof(msg) - 1), "d"(0x3f8) : "memory");
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
	} else if (!strcmp(what, "port")) {
		uint8_t a = inb(0x70), b = inb(0x70);

		printf("crash: port 0x70 read 0x%x then 0x%x\n", a, b);
		return a == 0xff && b == 0xff ? 0 : 1;
	} else {
		printf("crash: unknown do=%s\n", what);
		return 3;
	}
	printf("crash: still running after do=%s\n", what);
	return 1;
}
