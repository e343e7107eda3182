/*
 * counter: prints `counter: 1` .. `counter: N` (`count=N`, default 5) with `delay=N` busy loops
 * (default 20000000) between lines, then `counter: done`.
 */
#include "rt.h"

int main(void)
{
	uint64_t count = getarg_num("count", 5), delay = getarg_num("delay", 20000000);

	for (uint64_t i = 1; i <= count; i++) {
		printf("counter: %llu\n", (unsigned long long)i);
		if (i < count)
			spin_loops(delay);
	}
	printf("counter: done\n");
	return 0;
}
