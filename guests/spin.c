/*
 * spin: computes without ever exiting to the hypervisor (no I/O, CPUID or hypercall) for `loops=N`
 * iterations (default 5000000000, seconds on hardware), between `spin: start` and `spin: done`.
 * Shows that a guest that never yields cannot starve another on the same CPU. `sti=1` spins with
 * RFLAGS.IF = 1, as an OS's user code does (no interrupt comes: the guest programs no device): Bochs
 * gives no external-interrupt exit to a guest entered with IF = 0 (core/hv.c, LONE_SLICE_US), which
 * matters where the host's APIC timer is the only slice timer (Bochs's penryn, SVM).
 */
#include "rt.h"

int main(void)
{
	uint64_t loops = getarg_num("loops", 5000000000ull);

	if (getarg_num("sti", 0))
		sti();
	printf("spin: start\n");
	spin_loops(loops);
	printf("spin: done\n");
	return 0;
}
