/* SMP bring-up: the universal INIT-SIPI-SIPI start-up sequence (SDM Vol. 3A, 9.4.4.1, "Typical BSP
 * Initialization Sequence"), one AP at a time through one trampoline page below 1 MiB. */
#include "arch/x86/acpi.h"
#include "arch/x86/apic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/paging.h"
#include "arch/x86/smp.h"
#include "arch/x86/time.h"
#include "arch/x86/trap.h"
#include "console/printk.h"
#include "lib/string.h"

extern char trampoline_start[], trampoline_end[], tr_gdt[], tr32[], tr64[];
extern char tr_gdt_desc[], tr_far32[], tr_far64[], tr_cr3[], tr_efer[], tr_stack[], tr_entry[], tr_arg[];

#define AP_ANSWER_US 1000000 /* how long an AP may take to report in after its SIPIs (emulators
			      * under load are slow; real CPUs take microseconds) */

static void (*ap_main_fn)(struct percpu *);

/* Where the trampoline's variable `sym` lives in the copy at `page`. */
static void *tr_var(uint64_t page, char *sym)
{
	return (void *)(page + (uint64_t)(sym - trampoline_start));
}

static void ap_entry(struct percpu *pc)
{
	cpu_init_tables(pc);
	paging_load();
	lapic_init();
	__atomic_store_n(&pc->online, true, __ATOMIC_RELEASE);
	ap_main_fn(pc);
	panic("hv: ap_main returned on cpu %u", pc->id);
}

static bool start_ap(uint64_t page, unsigned idx, uint32_t apic_id, uint64_t stack_top)
{
	struct percpu *pc = &percpu[idx];
	uint64_t deadline;

	pc->id = idx;
	pc->apic_id = apic_id;
	pc->stack_top = stack_top;
	pc->online = false;
	*(uint64_t *)tr_var(page, tr_stack) = stack_top;
	*(uint64_t *)tr_var(page, tr_arg) = (uint64_t)pc;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);

	lapic_send_init(apic_id);
	udelay(10000);                       /* SDM 9.4.4.1: wait 10 ms after INIT */
	for (int sipi = 0; sipi < 2; sipi++) {
		lapic_send_sipi(apic_id, page >> 12);
		udelay(200);                     /* SDM 9.4.4.1: 200 us between the two SIPIs */
		if (__atomic_load_n(&pc->online, __ATOMIC_ACQUIRE))
			return true;
	}
	deadline = rdtsc() + us_to_tsc(AP_ANSWER_US);
	while (rdtsc() < deadline)
		if (__atomic_load_n(&pc->online, __ATOMIC_ACQUIRE))
			return true;
	return false;
}

void smp_boot(uint64_t page, uint64_t (*alloc_stack)(void), void (*ap_main)(struct percpu *))
{
	uint32_t self = lapic_id();
	unsigned idx = 1;

	percpu[0].apic_id = self;
	if (!acpi.has_madt) {
		pr_warn("hv: smp: no ACPI MADT, running on the boot CPU only\n");
		cpu_present = cpu_count = 1;
		return;
	}
	cpu_present = acpi.ncpus;
	ap_main_fn = ap_main;

	/* The trampoline's absolute addresses depend on the page it runs from: patch them in. */
	memcpy((void *)page, trampoline_start, trampoline_end - trampoline_start);
	*(uint32_t *)tr_var(page, tr_gdt_desc + 2) = (uint32_t)(uint64_t)tr_var(page, tr_gdt);
	*(uint32_t *)tr_var(page, tr_far32) = (uint32_t)(uint64_t)tr_var(page, tr32);
	*(uint32_t *)tr_var(page, tr_far64) = (uint32_t)(uint64_t)tr_var(page, tr64);
	*(uint64_t *)tr_var(page, tr_cr3) = host_cr3;
	*(uint64_t *)tr_var(page, tr_efer) = host_efer_bits;
	*(uint64_t *)tr_var(page, tr_entry) = (uint64_t)ap_entry;

	for (unsigned i = 0; i < acpi.ncpus; i++) {
		uint32_t id = acpi.apic_ids[i];
		uint64_t stack;

		if (id == self)
			continue;
		if (idx >= MAX_CPUS) {
			pr_warn("hv: smp: more than %d CPUs, APIC id %u not started\n", MAX_CPUS, id);
			continue;
		}
		if (!(stack = alloc_stack())) {
			pr_err("hv: smp: no memory for a stack, APIC id %u not started\n", id);
			continue;
		}
		if (start_ap(page, idx, id, stack)) {
			idx++;
		} else {
			pr_err("hv: smp: cpu with APIC id %u did not answer its start-up IPIs, skipped\n", id);
			/* INIT parks it in wait-for-SIPI again, so a late start cannot run the trampoline
			 * with the next AP's stack; later SIPIs name other APIC ids. */
			lapic_send_init(id);
		}
	}
	cpu_count = idx;
}

void smp_wake(unsigned cpu)
{
	lapic_send_ipi(percpu[cpu].apic_id, VEC_WAKEUP);
}
