/* The core: VMX bring-up on every CPU, guest creation, and each CPU's scheduler loop.
 *
 * Each host CPU runs the vCPUs pinned to it (vcpu_cpu[].vcpus[], vcpu/vcpu.h) round robin, one time slice (quantum=)
 * each, cut by the VMX-preemption timer. vCPUs never migrate, so a VMCS is only ever current on one
 * CPU. A vCPU that halts (HLT) or waits for its Start-up IPI is skipped until an event makes it
 * runnable; a CPU with nothing runnable arms its APIC timer for the earliest guest timer deadline
 * and halts, woken by that timer or by the wake-up IPI another CPU sends when it posts an event to
 * one of this CPU's vCPUs.
 *
 * The boot CPU also reads the console (core/monitor.c) on every pass of its loop. Input comes by the
 * UART's interrupt where the I/O APIC routes it to this CPU (arch/x86/irq.c): the interrupt wakes the
 * CPU from its idle halt, and a guest running here leaves the CPU at the exit it causes (vmx/exit.c).
 * Without it the console is polled: at least every time slice while vCPUs run, and every
 * MONITOR_POLL_US while the CPU idles. */
#include "arch/x86/apic.h"
#include "arch/x86/call.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/power.h"
#include "arch/x86/smp.h"
#include "arch/x86/spec.h"
#include "arch/x86/spinlock.h"
#include "arch/x86/time.h"
#include "console/console.h"
#include "console/printk.h"
#include "core/config.h"
#include "core/guest.h"
#include "core/hv.h"
#include "core/main.h"
#include "core/monitor.h"
#include "ept/ept.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "pmm/pmm.h"
#include "svm/svm.h"
#include "vdev/vdev.h"
#include "vmx/vcpu.h"

static volatile bool vmx_go;            /* the boot CPU chose the back end: APs may turn it on */
static volatile bool run_go;            /* guests are created: vCPU lists may be used */
static uint64_t free_before_guests;     /* pmm_free_bytes() before the first guest was created */
static uint64_t run_started;            /* TSC when the guests were let run */
static uint64_t idle_ticks[MAX_CPUS];   /* TSC ticks each CPU spent halted with nothing to run */
static volatile uint64_t idle_since[MAX_CPUS]; /* TSC when it last halted so; 0 while it runs */
static bool ran_guests[MAX_CPUS];       /* the CPU ran a vCPU at least once */
/* The scheduler's own per-CPU state (its run list is vcpu_cpu[], vcpu/vcpu.h), a cache line each:
 * written at every pick. */
static struct {
	unsigned next;                  /* where pick() starts looking: after the vCPU it picked last */
} __attribute__((aligned(64))) sched_cpu[MAX_CPUS];

/* pick() on v's CPU reads the list without the lock: the entry is in place before the count says so. */
static void sched_add(struct vcpu *v)
{
	struct vcpu_cpu *pc = &vcpu_cpu[v->cpu];

	spin_lock(&pc->lock);
	pc->vcpus[pc->nvcpus] = v;
	__atomic_store_n(&pc->nvcpus, pc->nvcpus + 1, __ATOMIC_RELEASE);
	spin_unlock(&pc->lock);
}

void hv_schedule(struct vm *g)
{
	for (unsigned i = 0; i < g->nvcpus; i++)
		sched_add(&g->vcpus[i]);
	for (unsigned i = 0; i < g->nvcpus; i++)
		vcpu_kick(&g->vcpus[i]);       /* new: the vCPU running there gives way (vcpu_others_want_cpu) */
}

static void sched_remove(struct vcpu_cpu *pc, struct vcpu *v)
{
	spin_lock(&pc->lock);
	for (unsigned i = 0; i < pc->nvcpus; i++)
		if (pc->vcpus[i] == v) {
			pc->vcpus[i] = pc->vcpus[--pc->nvcpus];
			break;
		}
	spin_unlock(&pc->lock);
}

/* The next vCPU to run, round robin from the one after the last; NULL if none can run now. Also the
 * earliest timer deadline among those that sleep (0 if none), for the host timer. A vCPU whose guest
 * is ending counts as runnable: it must come off its CPU. */
static struct vcpu *pick(unsigned cpu, uint64_t *wake)
{
	const struct vcpu_cpu *pc = &vcpu_cpu[cpu];
	uint64_t now = rdtsc();

	*wake = 0;
	for (unsigned k = 0; k < pc->nvcpus; k++) {
		unsigned i = (sched_cpu[cpu].next + k) % pc->nvcpus;
		struct vcpu *v = pc->vcpus[i];
		uint64_t d;

		if (v->vm->ending || vcpu_wakes(v, now)) {
			sched_cpu[cpu].next = i + 1;
			return v;
		}
		if ((d = vcpu_next_deadline(v)) && (!*wake || d < *wake))
			*wake = d;
	}
	return NULL;
}

/*
 * A vCPU alone on its CPU shares it with nobody: its slice only bounds how long the CPU goes without a
 * pass of this loop, and no pass should be needed, because everything that needs one interrupts the
 * guest (an event for it from another CPU, a new guest placed here or a cross-CPU call: the wake-up
 * IPI; console input on the boot CPU: the UART's interrupt). So it gets LONE_SLICE_US instead of
 * quantum= (a Linux boot alone on its CPU took 2,700 preemption exits, 2 ms apart, for nothing).
 * Timer deadlines are not affected: the preemption timer is armed for the earliest of the slice's end
 * and the guest's own deadlines (vmx/exit.c). Polled console input keeps quantum= on the boot CPU.
 *
 * The bound matters where the interrupt's exit does not come. Bochs 2.7 (to its current source)
 * computes which interrupts a VM entry leaves unmasked before it marks the CPU as in VMX non-root
 * operation (vmx.cc: handleCpuContextChange, then in_vmx_guest = 1), so a guest entered with
 * RFLAGS.IF = 0 keeps the host's interrupts masked until it changes IF itself, whereas
 * external-interrupt exiting makes IF irrelevant to interrupt blocking (SDM Vol. 3C, 25.6.1, Table
 * 25-5, bit 0; the exit: 26.2). A guest that never exits and never sets IF (spin) kept the key's
 * interrupt, or the wake-up IPI of a cross-CPU call, pending in the local APIC for ever. Now the loop
 * takes them at each pass, and a key reaches the monitor, and a cross-CPU call its CPU, within 50 ms:
 * the other half of the monitor's 100 ms is for the command's bytes and its answer. The cost is at
 * most 20 preemption exits a second where a guest computes alone (it was 10).
 */
#define LONE_SLICE_US 50000

static uint64_t slice_for(unsigned cpu, uint64_t quantum)
{
	uint64_t lone = us_to_tsc(LONE_SLICE_US);

	uint64_t slice = vcpu_cpu[cpu].nvcpus == 1 && (cpu != 0 || console_input_by_irq()) && lone > quantum ?
			 lone : quantum;

	/* While output waits in the console's ring, the boot CPU comes back to feed the UART each time
	 * its FIFO has emptied (1.4 ms at 115200 baud), whatever runs elsewhere (console/printk.c). */
	if (cpu == 0 && console_pending()) {
		uint64_t kick = us_to_tsc(console_kick_us());

		if (slice > kick)
			slice = kick;
	}
	return slice;
}

/* How long each CPU that ran guests was halted with nothing to run, against the time since guests
 * started: an idle guest waiting on its timer should leave its CPU idle. */
static void report_idle(void)
{
	uint64_t now = rdtsc(), total = now - run_started;

	for (unsigned c = 0; c < cpu_count; c++) {
		uint64_t idle = idle_ticks[c] + (idle_since[c] ? now - idle_since[c] : 0);

		if (ran_guests[c] && total)
			pr_info("hv: cpu %u idle %lu ms of %lu ms (%lu%%) while guests ran\n", c,
				idle / (tsc_khz ? tsc_khz : 1), total / (tsc_khz ? tsc_khz : 1), idle * 100 / total);
	}
}

/* This CPU's scheduler loop. */
static __attribute__((noreturn)) void cpu_loop(void)
{
	struct percpu *pc = this_cpu();
	uint64_t quantum = us_to_tsc(config.quantum_us);

	for (;;) {
		uint64_t wake;
		struct vcpu *v;
		bool typed = false;

		/* Interrupts waiting at the local APIC (console input, a wake-up IPI with its cross-CPU
		 * calls) come in when a guest's external-interrupt exit opens a window (vmx/exit.c), or
		 * here, once a pass, for two cases where that exit never comes: a guest in an exception
		 * loop never reaches an instruction boundary where one could exit (each entry's injected
		 * #AC or #DB raises the next during its delivery), and under Bochs a guest with IF = 0
		 * does not exit for host interrupts at all (see LONE_SLICE_US): only its slice's end
		 * brings the CPU back. Then the console's output ring gets its turn. */
		irq_window();
		console_kick();
		if (pc->id == 0) {
			pc->input_waiting = false;      /* what the interrupt brought is read now */
			typed = monitor_poll();         /* more input may wait: do not sleep */
		}
		v = pick(pc->id, &wake);
		if (!v && typed)
			continue;
		if (!v) {
			if (pc->id == 0 && !console_input_by_irq()) {   /* wake up to poll the console */
				uint64_t poll = rdtsc() + us_to_tsc(MONITOR_POLL_US);

				if (!wake || poll < wake)
					wake = poll;
			}
			if (console_pending()) {                 /* wake up to feed the UART */
				uint64_t kick = rdtsc() + us_to_tsc(console_kick_us());

				if (!wake || kick < wake)
					wake = kick;
			}
			idle_since[pc->id] = rdtsc();
			lapic_timer_arm(wake);
			pc->input_at = 0;
			sti_hlt();              /* until the host timer, a wake-up IPI or a key */
			lapic_timer_arm(0);
			if (pc->input_at)       /* taken at once: the CPU was halted with interrupts on */
				monitor_key_came(pc->input_at);
			idle_ticks[pc->id] += rdtsc() - idle_since[pc->id];
			idle_since[pc->id] = 0;
			continue;
		}
		if (v->vm->ending) {
			sched_remove(&vcpu_cpu[pc->id], v);
			if (guest_detach(v) == 0) {
				pr_info("hv: all guests finished\n");
				pr_info("hv: memory free %lu KiB after the guests, %lu KiB before them\n",
					pmm_free_bytes() >> 10, free_before_guests >> 10);
				report_idle();
				if (config.poweroff)
					hv_shutdown();
				pr_info("hv: the console stays up: Ctrl-] m, then 'start NAME' or 'poweroff' "
					"(poweroff=1 powers off here instead)\n");
			}
			continue;
		}
		if (!v->ready) {
			/* Start-up cost: creating the guest, then its VMCS on this CPU; the console lines
			 * printed in between are not part of it (a line costs milliseconds of UART time).
			 * "at TSC": the TSC before this line, about when the guest's first entry comes
			 * (the Linux benchmark counts the guest's boot from it). */
			uint64_t t0 = rdtsc(), setup;

			vcpu_load(v);
			setup = rdtsc() - t0;
			if (v->index == 0)
				pr_info("hv: guest %s start-up: %lu TSC ticks (create %lu, VMCS set-up %lu) "
					"at TSC %lu\n", v->vm->name, v->vm->create_ticks + setup,
					v->vm->create_ticks, setup, t0 + setup);
		} else {
			vcpu_load(v);
		}
		ran_guests[pc->id] = true;
		/* Input left in the ring (a paste: one line per pass) brings no interrupt: a short slice. */
		vcpu_run(v, typed ? quantum : slice_for(pc->id, quantum)); /* its end shows in vm->ending */
	}
}

/* Nothing to run. With poweroff=1 the system ends (hv_start returns to kmain); without, the console
 * stays up for the monitor (the boot CPU never returns). */
static void stay_up(void)
{
	if (config.poweroff)
		return;
	monitor_banner();
	monitor_idle();
}

void hv_ap_main(struct percpu *pc)
{
	(void)pc;
	while (!vmx_go)
		sti_hlt();
	lapic_timer_init();
	spec_cpu_on();
	vcpu_backend->cpu_on();         /* its result: cpu_state(), which the boot CPU waits for */
	while (!run_go)
		sti_hlt();
	cpu_loop();
}

static uint64_t tsc_now(void)
{
	return rdtsc();
}

bool hv_paging_ept_ok = true, hv_paging_shadow_ok, hv_paging_no_ept;

/*
 * Chooses the back end guests run on: VMX, else SVM (issue 15), each probe printing its informative
 * line. When neither vendor's extension can run guests, the contract line
 * `hv: no virtualization: VMX: REASON; SVM: REASON` and NULL.
 */
static const struct vcpu_backend *choose_backend(const struct bootinfo *bi)
{
	struct vcpu_probe vmx = { .why = "" }, svm = { .why = "" };
	const struct vcpu_backend *b = NULL;
	const struct vcpu_probe *p = NULL;

	if (vmx_backend.probe(config.apicv, &vmx))
		b = &vmx_backend, p = &vmx;
	else if (svm_backend.probe(config.apicv, &svm))
		b = &svm_backend, p = &svm;
	if (!b) {
		pr_err("hv: no virtualization: VMX: %s; SVM: %s\n", vmx.why, svm.why);
		for (size_t i = 0; i < bi->nmodules; i++)
			pr_err("hv: module %lu not started: no VMX or SVM on this machine\n", i);
		return NULL;
	}
	/* The paging each guest may ask for (core/guest.c); without a nested map every guest gets
	 * shadow paging. */
	hv_paging_ept_ok = p->paging_nested;
	hv_paging_shadow_ok = p->paging_shadow;
	hv_paging_no_ept = p->no_nested;
	if (!p->paging_nested)
		config.paging = VM_PAGING_SHADOW;
	return b;
}

/* Turns the back end on on every CPU, creates the guests and runs them on this CPU's loop. */
static void start_guests(const struct bootinfo *bi)
{
	uint64_t cpus = 0;
	unsigned started = 0;

	/* Every CPU turns VMX (SVM) on for itself; guests go only where that worked. */
	vmx_go = true;
	for (unsigned c = 1; c < cpu_count; c++)
		smp_wake(c);
	lapic_timer_init();
	spec_cpu_on();
	vcpu_backend->cpu_on();
	for (unsigned c = 0; c < cpu_count; c++) {
		uint64_t deadline = rdtsc() + us_to_tsc(1000000);

		while (!vcpu_backend->cpu_state(c) && rdtsc() < deadline)
			cpu_relax();
		if (vcpu_backend->cpu_state(c) == 1)
			cpus |= 1ull << c;
		else if (vcpu_vendor == VCPU_SVM)
			pr_err("hv: cpu %u: SVM could not be turned on; no guests run there\n", c);
		else
			pr_err("hv: cpu %u: VMXON failed; no guests run there\n", c);
	}

	if (!cpus) {
		pr_err("hv: no CPU could turn %s on; no guests\n", vcpu_backend->name);
		pr_info("hv: ready\n");
		stay_up();
		return;
	}
	if (vcpu_global_init()) {
		pr_err("hv: out of memory for the MSR bitmap; no guests\n");
		pr_info("hv: ready\n");
		stay_up();
		return;
	}
	vdev_clock = tsc_now;                   /* the guests' print limits count in TSC time */
	vdev_clock_hz = tsc_khz * 1000;
	free_before_guests = pmm_free_bytes();
	for (size_t i = 0; i < bi->nmodules; i++)
		guest_file_module(&bi->modules[i], i);
	for (size_t i = 0; i < bi->nmodules; i++) {
		struct vm *g;

		if (guest_is_file_module(&bi->modules[i]))
			continue;
		g = guest_create(&bi->modules[i], i, cpus);

		if (g) {
			for (unsigned v = 0; v < g->nvcpus; v++)
				sched_add(&g->vcpus[v]);
			started++;
		}
	}
	guest_file_modules_check();
	pr_info("hv: ready\n");
	if (!started) {
		pr_info("hv: no guests to run\n");
		stay_up();
		return;
	}
	monitor_banner();
	console_start_async();          /* from here no CPU waits for the UART (console/printk.c) */
	run_started = rdtsc();
	run_go = true;
	for (unsigned c = 1; c < cpu_count; c++)
		if (vcpu_cpu[c].nvcpus)
			smp_wake(c);
	cpu_loop();
}

void hv_start(const struct bootinfo *bi)
{
	const struct vcpu_backend *b;

	spec_init();                        /* its line, with or without VMX */
	if (!(b = choose_backend(bi))) {
		pr_info("hv: ready\n");
		stay_up();                      /* a console-only system: nothing to run */
		return;
	}
	vcpu_backend_choose(b);
	start_guests(bi);
}

/* Another CPU's last act before a reset: out of VMX operation, then halted. */
static void park_for_reset(void *arg)
{
	(void)arg;
	if (vcpu_backend)               /* none on a machine without VMX or SVM */
		vcpu_backend->cpu_off();
	halt_forever();
}

void hv_reboot(void)
{
	/* The 8042's reset and a triple fault's shutdown reach a PC's CPUs as INIT, which VMX root
	 * operation blocks (SDM Vol. 3C, 24.8): every CPU leaves VMX first (a guest running on one
	 * leaves it at the wake-up IPI's exit). The FADT's reset register and 0xCF9 need none of it. */
	for (unsigned c = 0; c < cpu_count; c++)
		if (c != this_cpu_id())
			cpu_call(c, park_for_reset, NULL, false);
	udelay(10000);
	if (vcpu_backend)
		vcpu_backend->cpu_off();
	machine_reset();
}
