/*
 * touchall: writes one byte to every 4 KiB page of its RAM above the image, once, and reports how
 * long it took in TSC ticks: under EPT, the cost of first touches. `percent=P` touches only the
 * first P% of those pages.
 */
#include "rt.h"

#define PAGE 4096ull

int main(void)
{
	uint64_t percent = getarg_num("percent", 100);
	uint64_t image_end = align_up((uintptr_t)_end, PAGE), total = 0;

	if (percent > 100) {
		printf("touchall: percent must be 0..100\n");
		return 3;
	}
	for (int i = 0; i < ram_count; i++) {
		uint64_t lo = ram[i].base > image_end ? align_up(ram[i].base, PAGE) : image_end;
		uint64_t hi = ram[i].end & ~(PAGE - 1);
		if (lo < hi)
			total += (hi - lo) / PAGE;
	}
	uint64_t want = udiv64(total * percent, 100, NULL), n = 0;

	uint64_t t0 = tsc_begin();
	for (int i = 0; i < ram_count && n < want; i++) {
		uint64_t lo = ram[i].base > image_end ? align_up(ram[i].base, PAGE) : image_end;
		uint64_t hi = ram[i].end & ~(PAGE - 1);
		for (uint64_t a = lo; a < hi && n < want; a += PAGE, n++)
			*(volatile uint8_t *)(uintptr_t)a = 1;
	}
	uint64_t t1 = tsc_end();
	printf("touchall: %llu pages in %llu ticks\n", (unsigned long long)n,
	       (unsigned long long)(t1 - t0));
	return 0;
}
