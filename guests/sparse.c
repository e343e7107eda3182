/*
 * sparse: first-touch memory test. Touches one 4 KiB page every `stride=SIZE` (default 1M, K/M/G
 * suffixes; a multiple of 4K) from 2 MiB upward, at most `count=N` pages (default: all that fit),
 * skipping the image and the boot information. Each page must read all zero before its first write
 * (exit 1 if not), then hold the pattern written (exit 2 if not). Usage errors exit 3.
 */
#include "rt.h"

#define PAGE 4096ull
#define START (2ull << 20)

static bool overlaps(uint64_t a, uint64_t lo, uint64_t hi)
{
	return a < hi && a + PAGE > lo;
}

static bool in_ram(uint64_t a)
{
	for (int i = 0; i < ram_count; i++)
		if (a >= ram[i].base && a + PAGE <= ram[i].end)
			return true;
	return false;
}

int main(void)
{
	uint64_t stride = getarg_num("stride", 1ull << 20);
	uint64_t count = getarg_num("count", ~0ull);
	uint64_t n = 0, first = 0, last = 0, end = ram_end();

	if (stride < PAGE || stride % PAGE) {
		printf("sparse: stride must be a multiple of 4K\n");
		return 3;
	}
	for (uint64_t a = START; a + PAGE <= end && n < count; a += stride) {
		if (overlaps(a, (uintptr_t)__image_start, (uintptr_t)_end) ||
		    overlaps(a, mbi_base, mbi_end) || !in_ram(a))
			continue;
		volatile uint32_t *w = (volatile uint32_t *)(uintptr_t)a;
		for (unsigned i = 0; i < PAGE / 4; i++) {
			if (w[i]) {
				printf("sparse: page 0x%llx not zero before first write\n",
				       (unsigned long long)a);
				return 1;
			}
		}
		for (unsigned i = 0; i < PAGE / 4; i++)
			w[i] = (uint32_t)a ^ (i * 0x9E3779B9u);
		for (unsigned i = 0; i < PAGE / 4; i++) {
			if (w[i] != ((uint32_t)a ^ (i * 0x9E3779B9u))) {
				printf("sparse: page 0x%llx readback mismatch at +0x%x\n",
				       (unsigned long long)a, i * 4);
				return 2;
			}
		}
		if (!n)
			first = a;
		last = a;
		n++;
	}
	printf("sparse: touched %llu pages span %llu KiB\n", (unsigned long long)n,
	       (unsigned long long)(n ? (last + PAGE - first) >> 10 : 0));
	return 0;
}
