/* Descriptor tables of the host: a GDT and TSS per CPU, one IDT for all. SDM Vol. 3A, 3.4 and 6.14. */
#include "arch/x86/apic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/gdt.h"
#include "arch/x86/percpu.h"
#include "arch/x86/trap.h"
#include "console/console.h"
#include "lib/string.h"

struct percpu percpu[MAX_CPUS];
unsigned cpu_count = 1;
unsigned cpu_present = 1;

/* 64-bit IDT gate. SDM Vol. 3A, 6.14.1 (Figure 6-8). */
struct idt_gate {
	uint16_t offset_lo;
	uint16_t selector;
	uint8_t ist;        /* bits 2:0: interrupt stack table index, 0 = none */
	uint8_t type_attr;  /* P, DPL, type 0xE = 64-bit interrupt gate */
	uint16_t offset_mid;
	uint32_t offset_hi;
	uint32_t reserved;
} __attribute__((packed));
_Static_assert(sizeof(struct idt_gate) == 16, "SDM Vol. 3A 6.14.1");

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static struct idt_gate idt[256] __attribute__((aligned(16)));

extern const uint64_t boot_gdt[GDT_BOOT_SLOTS];  /* boot/entry.asm */
_Static_assert(SEL_TSS / 8 + 2 <= sizeof(((struct percpu *)0)->gdt) / 8, "a TSS descriptor: 2 slots");
_Static_assert(SEL_TSS / 8 == GDT_BOOT_SLOTS, "the TSS follows boot_gdt's slots");

static void set_gate(int vec, void (*fn)(void), int ist)
{
	uint64_t a = (uint64_t)fn;

	idt[vec] = (struct idt_gate){
		.offset_lo = a & 0xffff, .selector = SEL_CODE64, .ist = ist,
		.type_attr = 0x8e, /* present, DPL 0, 64-bit interrupt gate (IF cleared on entry) */
		.offset_mid = (a >> 16) & 0xffff, .offset_hi = a >> 32,
	};
}

/* panic()'s way to stop the other CPUs (console/console.h): the first caller marks the system as
 * stopping and sends the others an NMI, whose handler parks them (trap.c); a later caller gets false. */
static bool stop_other_cpus(void)
{
	if (__atomic_exchange_n(&system_stopping, 1, __ATOMIC_SEQ_CST))
		return false;
	lapic_nmi_others();
	return true;
}

static void idt_build(void)
{
	static bool built;

	if (built)
		return;
	for (int v = 0; v < 32; v++)
		/* NMI, #DF and #MC may hit with a broken stack: give each a known-good one (IST1-3). */
		set_gate(v, trap_stubs[v], v == 2 ? 1 : v == 8 ? 2 : v == 18 ? 3 : 0);
	set_gate(VEC_WAKEUP, trap_stub_wakeup, 0);
	set_gate(VEC_CONSOLE, trap_stub_console, 0);
	set_gate(VEC_SPURIOUS, trap_stub_spurious, 0);
	panic_stop_others = stop_other_cpus; /* the NMI gate that parks them exists from here on */
	built = true;
}

void cpu_init_tables(struct percpu *pc)
{
	uint64_t tss = (uint64_t)&pc->tss;
	struct desc_ptr gdtr = { sizeof(pc->gdt) - 1, (uint64_t)pc->gdt };
	struct desc_ptr idtr = { sizeof(idt) - 1, (uint64_t)idt };

	memcpy(pc->gdt, boot_gdt, sizeof(boot_gdt)); /* null, code64, data, code32: boot/defs.inc */
	/* 64-bit TSS descriptor, 16 bytes: type 9 (available TSS), present. SDM Vol. 3A, 8.2.3. */
	pc->gdt[SEL_TSS / 8] = (sizeof(struct tss) - 1) | ((tss & 0xffffff) << 16) | (0x89ull << 40) |
		     ((tss >> 24) & 0xff) << 56;
	pc->gdt[SEL_TSS / 8 + 1] = tss >> 32;
	memset(&pc->tss, 0, sizeof(pc->tss));
	for (int i = 0; i < 3; i++)
		pc->tss.ist[i] = (uint64_t)pc->ist_stack[i] + sizeof(pc->ist_stack[i]);
	pc->tss.iomap_base = sizeof(struct tss); /* no I/O bitmap */

	idt_build();
	asm volatile("lgdt %0" : : "m"(gdtr));
	asm volatile("lidt %0" : : "m"(idtr));
	/* Reload CS through a far return, then the data segments, then the task register. */
	asm volatile("pushq %0; leaq 1f(%%rip), %%rax; pushq %%rax; lretq; 1:"
		     : : "i"(SEL_CODE64) : "rax", "memory");
	asm volatile("movw %w0, %%ds; movw %w0, %%es; movw %w0, %%ss" : : "r"(SEL_DATA));
	asm volatile("ltr %w0" : : "r"(SEL_TSS));
	/* FS/GS selectors 0; GS base = this CPU's block. */
	asm volatile("movw %w0, %%fs; movw %w0, %%gs" : : "r"(0));
	wrmsr(MSR_GS_BASE, (uint64_t)pc);
}
