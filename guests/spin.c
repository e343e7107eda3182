/*
 * spin: computes without ever exiting to the hypervisor (no I/O, CPUID or hypercall) for `loops=N`
 * iterations (default 5000000000, seconds on hardware), between `spin: start` and `spin: done`.
 * Shows that a guest that never yields cannot starve another on the same CPU.
 */
#include "rt.h"

int main(void)
{
	uint64_t loops = getarg_num("loops", 5000000000ull);

	printf("spin: start\n");
	spin_loops(loops);
	printf("spin: done\n");
	return 0;
}
