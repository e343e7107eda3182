/* Cross-CPU calls (arch/x86/call.h): a small queue per CPU in its percpu block, filled under a lock
 * by other CPUs and emptied by the owner in its wake-up interrupt. */
#include "arch/x86/call.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/smp.h"

void cpu_kick(unsigned cpu)
{
	if (cpu != this_cpu_id())
		smp_wake(cpu);
}

void cpu_calls_run(void)
{
	struct percpu *pc = this_cpu();

	while (__atomic_load_n(&pc->ncalls, __ATOMIC_ACQUIRE)) {
		struct cpu_call c;

		spin_lock(&pc->call_lock);
		c = pc->calls[0];
		for (unsigned i = 1; i < pc->ncalls; i++)
			pc->calls[i - 1] = pc->calls[i];
		pc->ncalls--;
		spin_unlock(&pc->call_lock);
		c.fn(c.arg);
		if (c.done)
			__atomic_store_n(c.done, 1, __ATOMIC_RELEASE);
	}
}

void cpu_call(unsigned cpu, void (*fn)(void *arg), void *arg, bool wait)
{
	struct percpu *pc = &percpu[cpu];
	volatile int done = 0;

	if (cpu == this_cpu_id()) {
		fn(arg);
		return;
	}
	for (;;) {
		spin_lock(&pc->call_lock);
		if (pc->ncalls < CPU_MAX_CALLS)
			break;
		spin_unlock(&pc->call_lock);
		cpu_calls_run();        /* the target may be waiting on us for room in our queue */
		cpu_relax();
	}
	pc->calls[pc->ncalls] = (struct cpu_call){ fn, arg, wait ? &done : 0 };
	__atomic_store_n(&pc->ncalls, pc->ncalls + 1, __ATOMIC_RELEASE);
	spin_unlock(&pc->call_lock);
	smp_wake(cpu);
	while (wait && !__atomic_load_n(&done, __ATOMIC_ACQUIRE)) {
		cpu_calls_run();
		cpu_relax();
	}
}
