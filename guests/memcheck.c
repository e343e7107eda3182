/*
 * memcheck: an ELF64 guest in long mode on its own page tables (set up by rt/entry64.asm), so its
 * paging runs under EPT. Fills all its free RAM with a pattern unique to this guest, pass and
 * address, yields the CPU `yields=N` times (default 8) with a busy wait of `spin=N` loops (default
 * 1000000) after each, then checks every word; that `passes=N` times (default 1; 0: until it is
 * stopped, for a test that must find it running whenever it types). Exits 0 if all is intact, 1 at
 * the first mismatch.
 */
#include "rt.h"

#define MSR_EFER 0xC0000080
#define EFER_LMA (1ull << 10)  /* IA-32e mode active (SDM 3A 2.2.1) */
#define CR0_PG   (1ul << 31)

static uint64_t key;

static inline uint64_t pattern(uint64_t addr)
{
	return key ^ addr;
}

/* Free RAM of one region: from the end of the image (page tables included) to the region's end. */
static bool free_range(int i, uint64_t *lo, uint64_t *hi)
{
	uint64_t start = align_up((uintptr_t)_end, 8);
	*lo = ram[i].base > start ? align_up(ram[i].base, 8) : start;
	*hi = ram[i].end & ~7ull;
	return *lo < *hi;
}

/* One pass: write the pattern, let the others run, check it. 0 if intact, else 1 (after saying where). */
static int check_pass(bool hv, uint64_t yields, uint64_t spin)
{
	uint64_t bytes = 0;

	for (int i = 0; i < ram_count; i++) {
		uint64_t lo, hi;
		if (!free_range(i, &lo, &hi))
			continue;
		for (uint64_t a = lo; a < hi; a += 8)
			*(volatile uint64_t *)a = pattern(a);
		bytes += hi - lo;
	}
	printf("memcheck: wrote %llu MiB\n", (unsigned long long)(bytes >> 20));

	/* Let the other guests on this CPU run, and write their memory, before we look again. */
	for (uint64_t n = 0; n < yields; n++) {
		if (hv)
			hc_yield();
		spin_loops(spin);
	}

	for (int i = 0; i < ram_count; i++) {
		uint64_t lo, hi;
		if (!free_range(i, &lo, &hi))
			continue;
		for (uint64_t a = lo; a < hi; a += 8) {
			uint64_t v = *(volatile uint64_t *)a;
			if (v != pattern(a)) {
				printf("memcheck: mismatch at 0x%llx read 0x%llx want 0x%llx\n",
				       (unsigned long long)a, (unsigned long long)v,
				       (unsigned long long)pattern(a));
				return 1;
			}
		}
	}
	printf("memcheck: %llu MiB intact\n", (unsigned long long)(bytes >> 20));
	return 0;
}

int main(void)
{
	struct hv_info info = { 0 };
	bool hv = hv_present();
	uint64_t yields = getarg_num("yields", 8), spin = getarg_num("spin", 1000000);
	uint64_t passes = getarg_num("passes", 1), base_key;

	if (!(rdmsr(MSR_EFER) & EFER_LMA) || !(read_cr0() & CR0_PG)) {
		printf("memcheck: not in long mode with paging\n");
		return 1;
	}
	if (hv)
		hc_guest_info(&info);
	else
		printf("memcheck: no hypervisor, skipping hypercalls (id 0, no yields)\n");
	/* Golden-ratio multiple: patterns of different guests differ in every word. */
	base_key = (info.id + 1ull) * 0x9E3779B97F4A7C15ull;
	printf("memcheck: long mode, paging on, RAM to 0x%llx, image end 0x%llx\n",
	       (unsigned long long)ram_end(), (unsigned long long)(uintptr_t)_end);

	for (uint64_t pass = 1; passes == 0 || pass <= passes; pass++) {
		/* A pattern of its own each pass: words left over from the pass before do not pass. */
		key = base_key ^ (pass - 1) * 0xD1B54A32D192ED03ull;
		if (check_pass(hv, yields, spin))
			return 1;
	}
	return 0;
}
