/* The core: VMX bring-up on every CPU, guest creation, and each CPU's scheduler loop.
 *
 * Each host CPU has a run queue of the vCPUs pinned to it and runs them round robin, one time slice
 * (quantum=) each, cut by the VMX-preemption timer; a vCPU also gives up the CPU by HC_YIELD or HLT.
 * vCPUs never migrate, so a VMCS is only ever current on one CPU. A CPU with nothing to run halts
 * until a wake-up IPI. */
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/smp.h"
#include "arch/x86/spinlock.h"
#include "arch/x86/time.h"
#include "console/printk.h"
#include "core/config.h"
#include "core/guest.h"
#include "core/hv.h"
#include "ept/ept.h"
#include "pmm/pmm.h"
#include "vmx/vmx.h"

struct runq {
	spinlock_t lock;
	struct vcpu *head, *tail;
};

static struct runq runqs[MAX_CPUS];
static volatile bool vmx_go;            /* the boot CPU settled vmx_caps: APs may VMXON */
static volatile int vmx_state[MAX_CPUS]; /* 0 pending, 1 on, -1 failed */
static volatile bool run_go;            /* guests are created: run queues may be used */
static uint64_t free_before_guests;     /* pmm_free_bytes() before the first guest was created */

static void runq_push(struct runq *q, struct vcpu *v)
{
	spin_lock(&q->lock);
	v->next = NULL;
	if (q->tail)
		q->tail->next = v;
	else
		q->head = v;
	q->tail = v;
	spin_unlock(&q->lock);
}

static struct vcpu *runq_pop(struct runq *q)
{
	struct vcpu *v;

	spin_lock(&q->lock);
	if ((v = q->head) && !(q->head = v->next))
		q->tail = NULL;
	spin_unlock(&q->lock);
	return v;
}

static struct guest *guest_of(struct vcpu *v)
{
	return (struct guest *)((char *)v->vm - __builtin_offsetof(struct guest, vm));
}

/* This CPU's scheduler loop. */
static __attribute__((noreturn)) void cpu_loop(void)
{
	struct runq *q = &runqs[this_cpu_id()];
	struct vcpu *loaded = NULL;
	uint64_t quantum = us_to_tsc(config.quantum_us);

	for (;;) {
		struct vcpu *v = runq_pop(q);
		enum vcpu_action why;

		if (!v) {
			sti_hlt();              /* until a wake-up IPI */
			continue;
		}
		if (!v->ready) {
			/* Start-up cost: creating the guest, then its VMCS on this CPU; the console lines
			 * printed in between are not part of it (a line costs milliseconds of UART time). */
			struct guest *g = guest_of(v);
			uint64_t t0 = rdtsc(), setup;

			vcpu_load(v, loaded);
			setup = rdtsc() - t0;
			pr_info("hv: guest %s start-up: %lu TSC ticks (create %lu, VMCS set-up %lu)\n",
				v->vm->name, g->create_ticks + setup, g->create_ticks, setup);
		} else {
			vcpu_load(v, loaded);
		}
		loaded = v;
		why = vcpu_run(v, quantum);
		switch (why) {
		case VCPU_PREEMPTED:
		case VCPU_YIELD:
			runq_push(q, v);
			break;
		case VCPU_EXITED:
		case VCPU_STOPPED:
			loaded = NULL;
			if (guest_end(guest_of(v), why) == 0) {
				pr_info("hv: all guests finished\n");
				pr_info("hv: memory free %lu KiB after the guests, %lu KiB before them\n",
					pmm_free_bytes() >> 10, free_before_guests >> 10);
				hv_shutdown();
			}
			break;
		}
	}
}

void hv_ap_main(struct percpu *pc)
{
	while (!vmx_go)
		sti_hlt();
	vmx_state[pc->id] = vmx_cpu_on() ? -1 : 1;
	while (!run_go)
		sti_hlt();
	cpu_loop();
}

void hv_start(const struct bootinfo *bi)
{
	const char *why = "";
	uint64_t cpus = 0;
	unsigned started = 0;

	if (!vmx_probe(&why)) {
		pr_err("hv: no VMX: %s\n", why);
		for (size_t i = 0; i < bi->nmodules; i++)
			pr_err("hv: module %lu not started: no VMX on this machine\n", i);
		pr_info("hv: ready\n");
		return;                         /* a console-only system: nothing to run */
	}
	pr_info("hv: vmx: EPT pages%s%s 4K, VPID %s, preemption timer 2^%u TSC, unrestricted guest\n",
		vmx_caps.ept_page_sizes & EPT_PAGE_1G ? " 1G" : "", vmx_caps.ept_page_sizes & EPT_PAGE_2M ? " 2M" : "",
		vmx_caps.vpid ? "on" : "off", vmx_caps.preemption_shift);

	/* Every CPU turns VMX on for itself; guests go only where that worked. */
	vmx_go = true;
	for (unsigned c = 1; c < cpu_count; c++)
		smp_wake(c);
	vmx_state[0] = vmx_cpu_on() ? -1 : 1;
	for (unsigned c = 0; c < cpu_count; c++) {
		uint64_t deadline = rdtsc() + us_to_tsc(1000000);

		while (!vmx_state[c] && rdtsc() < deadline)
			cpu_relax();
		if (vmx_state[c] == 1)
			cpus |= 1ull << c;
		else
			pr_err("hv: cpu %u: VMXON failed; no guests run there\n", c);
	}

	if (!cpus) {
		pr_err("hv: no CPU could turn VMX on; no guests\n");
		pr_info("hv: ready\n");
		return;
	}
	if (vcpu_global_init()) {
		pr_err("hv: out of memory for the MSR bitmap; no guests\n");
		pr_info("hv: ready\n");
		return;
	}
	free_before_guests = pmm_free_bytes();
	for (size_t i = 0; i < bi->nmodules; i++) {
		struct guest *g = guest_create(&bi->modules[i], i, cpus);

		if (g) {
			runq_push(&runqs[g->cpu], &g->vcpu);
			started++;
		}
	}
	pr_info("hv: ready\n");
	if (!started) {
		pr_info("hv: no guests to run\n");
		return;
	}
	run_go = true;
	for (unsigned c = 1; c < cpu_count; c++)
		if (runqs[c].head)
			smp_wake(c);
	cpu_loop();
}
