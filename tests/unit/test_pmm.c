/* Host tests of the page allocator: map sanitizing, single pages, aligned runs, partitions, a random model. */
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "lib/errno.h"
#include "pmm/pmm.h"
#include "tests/unit/unit.h"

#define MIB (1ull << 20)

static uint64_t round_down_2m(uint64_t x)
{
	return x & ~(SIZE_2M - 1);
}

/* The independent model of what pmm_init must make free: brute force over every page. */
static int page_touches(uint64_t p, const struct mem_region *r)
{
	uint64_t end = r->base + r->len;

	return r->len && r->base < p + PAGE_SIZE && p < end;
}

static int page_inside(uint64_t p, const struct mem_region *r)
{
	return r->base <= p && p + PAGE_SIZE <= r->base + r->len;
}

static int model_usable(uint64_t p, const struct mem_region *map, size_t n)
{
	int in = 0;
	size_t i;

	for (i = 0; i < n; i++) {
		if (map[i].type == MEM_USABLE && page_inside(p, &map[i]))
			in = 1;
		if (map[i].type != MEM_USABLE && page_touches(p, &map[i]))
			return 0;
	}
	return in;
}

static int model_free(uint64_t p, const struct mem_region *map, size_t n, const struct mem_region *res, size_t nres)
{
	size_t i;

	if (p < MIB || !model_usable(p, map, n))
		return 0;
	for (i = 0; i < nres; i++)
		if (page_touches(p, &res[i]))
			return 0;
	return 1;
}

/*
 * Initializes with `map`, drains every single page and compares the set with the model: the drained
 * pages are model-free, distinct, and all model-free pages but the bitmaps' one are handed out.
 */
static void check_map(const struct mem_region *map, size_t n, const struct mem_region *res, size_t nres,
		      uint64_t top)
{
	uint64_t npages = top / PAGE_SIZE, p, expect_free = 0, expect_usable = 0, got = 0, phys;
	unsigned char *seen = calloc(npages, 1);

	for (p = 0; p < top; p += PAGE_SIZE) {
		expect_free += model_free(p, map, n, res, nres);
		expect_usable += model_usable(p, map, n);
	}
	CHECK_EQ(pmm_init(map, n, res, nres), 0);
	CHECK_EQ(pmm_usable_bytes(), expect_usable * PAGE_SIZE);
	/* The bitmaps for up to 2^18 pages fit in one page (2 bits per page). */
	CHECK_EQ(pmm_free_bytes(), (expect_free - 1) * PAGE_SIZE);
	while ((phys = pmm_alloc_page()) != 0) {
		CHECK(phys % PAGE_SIZE == 0);
		CHECK(phys < top);
		if (phys >= top)
			break;
		CHECK(model_free(phys, map, n, res, nres));
		CHECK(!seen[phys / PAGE_SIZE]);
		seen[phys / PAGE_SIZE] = 1;
		got++;
	}
	CHECK_EQ(got, expect_free - 1);
	CHECK_EQ(pmm_free_bytes(), 0);
	/* The one model-free page not handed out holds the bitmaps: it was zeroed and written by pmm_init. */
	for (p = 0; p < top; p += PAGE_SIZE)
		if (model_free(p, map, n, res, nres) && !seen[p / PAGE_SIZE]) {
			const uint64_t *bm = phys_to_virt(p);
			CHECK(bm[0] != 0); /* frames 0..63 are below 1 MiB: all used */
		}
	free(seen);
}

static void test_map_sanitizing(void)
{
	struct mem_region map[] = {
		{ 0x1000100, 0x1000000 - 0x100, MEM_USABLE },     /* unaligned start: first page 0x1001000 */
		{ 0x0, 0x9fc00, MEM_USABLE },                     /* below 1 MiB: never handed out */
		{ 0x1f00000, 0x10000, MEM_ACPI_RECLAIMABLE },     /* inside usable: wins */
		{ 0x100000, 0x700000, MEM_USABLE },
		{ 0x300800, 0x800, MEM_RESERVED },                /* half a page: blocks the whole page */
		{ 0x1800000, 0x100000, MEM_USABLE },              /* overlaps a usable region */
		{ 0x3000000, 0xfff, MEM_USABLE },                 /* less than a page: nothing */
		{ 0x600000, 0x200000, MEM_BAD },                  /* overlaps the end of a usable region */
		{ 0x7ff000, 0, MEM_RESERVED },                    /* empty: blocks nothing */
		{ 0x1ffffff, 0x2, MEM_USABLE },                   /* straddles a page: no whole page */
	};
	struct mem_region res[] = {
		{ 0x200000, 0x80000, 0 },   /* the hypervisor image */
		{ 0x500000, 1, 0 },         /* one byte reserves its page */
		{ 0x1400fff, 2, 0 },        /* two bytes across a page boundary reserve two pages */
	};
	size_t n = sizeof(map) / sizeof(map[0]), i;
	struct mem_region rev[sizeof(map) / sizeof(map[0])];

	fake_phys_init(0, 0x2000000);
	check_map(map, n, res, 3, 0x2000000);
	/* The order of the map must not matter: the same map reversed gives the same pages. */
	for (i = 0; i < n; i++)
		rev[i] = map[n - 1 - i];
	check_map(rev, n, res, 3, 0x2000000);
	/* Spot checks the model could share a mistake with. */
	CHECK(!model_free(0x300000, map, n, res, 3));
	CHECK(model_free(0x301000, map, n, res, 3));
	CHECK(!model_free(0x1000000, map, n, res, 3));
	CHECK(model_free(0x1001000, map, n, res, 3));
	CHECK(!model_free(0x1400000, map, n, res, 3) && !model_free(0x1401000, map, n, res, 3));
	fake_phys_fini();
}

static void test_no_memory(void)
{
	struct mem_region low[] = { { 0, 0x9fc00, MEM_USABLE } };
	struct mem_region acpi[] = { { 0x100000, 0x1000000, MEM_ACPI_NVS } };
	struct mem_region all_reserved[] = { { 0x100000, 0x100000, MEM_USABLE } };
	struct mem_region res[] = { { 0x100000, 0x100000, 0 } };
	uint64_t phys;

	fake_phys_init(0, 0x200000);
	CHECK_EQ(pmm_init(NULL, 0, NULL, 0), -ENOMEM);
	CHECK_EQ(pmm_init(low, 1, NULL, 0), -ENOMEM);
	CHECK_EQ(pmm_init(acpi, 1, NULL, 0), -ENOMEM);
	CHECK_EQ(pmm_init(all_reserved, 1, res, 1), -ENOMEM);
	CHECK_EQ(pmm_alloc_page(), 0);
	CHECK_EQ(pmm_alloc_pages(1, PAGE_SIZE, &phys), -ENOMEM);
	CHECK_EQ(pmm_free_bytes(), 0);
	fake_phys_fini();
}

static void test_aligned_runs(void)
{
	struct mem_region map[] = { { 0x100000, 63 * MIB, MEM_USABLE } };
	uint64_t phys, runs[64], p;
	int n = 0, i;

	fake_phys_init(0, 64 * MIB);
	CHECK_EQ(pmm_init(map, 1, NULL, 0), 0);
	CHECK_EQ(pmm_alloc_pages(0, PAGE_SIZE, &phys), -EINVAL);
	CHECK_EQ(pmm_alloc_pages(1, 0x3000, &phys), -EINVAL);
	CHECK_EQ(pmm_alloc_pages(1, 0x800, &phys), -EINVAL);
	CHECK_EQ(pmm_alloc_pages(1, 0, &phys), -EINVAL);
	CHECK_EQ(pmm_alloc_pages(1, SIZE_1G, &phys), -ENOMEM);

	CHECK_EQ(pmm_alloc_pages(1, 16 * MIB, &phys), 0);
	CHECK_EQ(phys, 16 * MIB);
	pmm_free_pages(phys, 1);
	CHECK_EQ(pmm_alloc_pages(3, 0x8000, &phys), 0);
	CHECK(phys % 0x8000 == 0 && phys >= MIB);
	pmm_free_pages(phys, 3);

	/* The bitmaps take the page at 1 MiB; 2 MiB runs are then the 31 blocks from 2 MiB up. */
	while (n < 64 && pmm_alloc_pages(512, SIZE_2M, &phys) == 0)
		runs[n++] = phys;
	CHECK_EQ(n, 31);
	for (i = 0; i < n; i++) {
		CHECK(runs[i] % SIZE_2M == 0);
		CHECK(runs[i] >= 2 * MIB && runs[i] + SIZE_2M <= 64 * MIB);
		if (i)
			CHECK(runs[i] != runs[i - 1]);
	}
	/* What is left is below 2 MiB: 255 pages, no run of 256 and nothing 2 MiB-aligned. */
	CHECK_EQ(pmm_free_bytes(), 255 * PAGE_SIZE);
	CHECK_EQ(pmm_alloc_pages(256, PAGE_SIZE, &phys), -ENOMEM);
	CHECK_EQ(pmm_alloc_pages(1, SIZE_2M, &phys), -ENOMEM);
	CHECK_EQ(pmm_alloc_pages(255, PAGE_SIZE, &phys), 0);
	CHECK_EQ(phys, MIB + PAGE_SIZE);
	CHECK_EQ(pmm_alloc_page(), 0);
	CHECK_EQ(pmm_alloc_pages(1, PAGE_SIZE, &phys), -ENOMEM);

	/* Give back two 2 MiB blocks and put one single page into one of them: that block is skipped. */
	pmm_free_pages(runs[5], 512);
	pmm_free_pages(runs[9], 512);
	CHECK_EQ(pmm_free_bytes(), 1024 * PAGE_SIZE);
	p = pmm_alloc_page();
	CHECK((p >= runs[5] && p < runs[5] + SIZE_2M) || (p >= runs[9] && p < runs[9] + SIZE_2M));
	CHECK_EQ(pmm_alloc_pages(512, SIZE_2M, &phys), 0);
	CHECK_EQ(phys, p >= runs[9] ? runs[5] : runs[9]);
	CHECK_EQ(pmm_alloc_pages(512, PAGE_SIZE, &phys), -ENOMEM);
	CHECK_EQ(pmm_alloc_pages(511, PAGE_SIZE, &phys), 0); /* the page went to one end of its block */
	CHECK(p < phys || p >= phys + 511 * PAGE_SIZE);
	CHECK_EQ(round_down_2m(phys), round_down_2m(p));
	CHECK_EQ(pmm_free_bytes(), 0);
	fake_phys_fini();
}

/* A 32-bit xorshift, seeded: the random test runs the same sequence every time. */
static uint32_t rng_state = 0x2545f491u;
static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

struct alloc { uint64_t phys, count; uint32_t tag; };

static void test_random_model(void)
{
	/* Three usable ranges with holes and a reserved range between, 28 MiB in all. */
	struct mem_region map[] = {
		{ 0x100000, 0xf00000, MEM_USABLE },
		{ 0x1000000, 0x800000, MEM_USABLE },
		{ 0x1a00000, 0x600000, MEM_USABLE },
		{ 0xc00000, 0x10000, MEM_RESERVED },
	};
	struct mem_region res[] = { { 0x180000, 0x20000, 0 } };
	const uint64_t top = 0x2000000, npages = top / PAGE_SIZE;
	static struct alloc allocs[8192];
	unsigned char *owner = calloc(npages, 1); /* 0 free or never ours, 1 allocated, 2 not allocatable */
	uint64_t p, model_free_pages = 0, phys, k, initial_free;
	size_t nallocs = 0, op, i;
	int fails = 0, run_ok = 0;

	fake_phys_init(0, top);
	CHECK_EQ(pmm_init(map, 4, res, 1), 0);
	for (p = 0; p < top; p += PAGE_SIZE) {
		if (model_free(p, map, 4, res, 1))
			model_free_pages++;
		else
			owner[p / PAGE_SIZE] = 2;
	}
	model_free_pages--; /* the bitmaps' page */
	CHECK_EQ(pmm_free_bytes(), model_free_pages * PAGE_SIZE);
	initial_free = pmm_free_bytes();
	/* The bitmaps' page is the lowest model-free one (1 MiB): not ours to hand out. */
	owner[MIB / PAGE_SIZE] = 2;

	for (op = 0; op < 6000; op++) {
		uint32_t r = rng() % 100;

		if (r < 60 || nallocs == 0) {
			uint64_t count = 1, align = PAGE_SIZE;
			int ret = 0;

			if (r < 20) {
				phys = pmm_alloc_page();
				if (!phys)
					ret = -ENOMEM;
			} else {
				count = 1 + rng() % 1200;
				align = PAGE_SIZE << (rng() % 10); /* 4 KiB .. 2 MiB */
				ret = pmm_alloc_pages(count, align, &phys);
			}
			if (ret < 0) {
				/* A failure must be real: no aligned run of free pages of that length in the model. */
				uint64_t s, run = 0;
				int exists = 0;

				fails++;
				for (s = 0; s < npages && !exists; s++) {
					run = owner[s] == 0 ? run + 1 : 0;
					if (run >= count && ((s + 1 - count) * PAGE_SIZE) % align == 0)
						exists = 1;
				}
				CHECK(!exists);
				continue;
			}
			run_ok++;
			CHECK(phys % align == 0);
			for (k = 0; k < count; k++) {
				uint64_t pg = phys / PAGE_SIZE + k;

				CHECK(pg < npages);
				if (pg >= npages)
					break;
				CHECK_EQ(owner[pg], 0); /* free, allocatable, not handed out twice */
				owner[pg] = 1;
				/* Stamp every page: an overlapping allocation would overwrite a stamp. */
				*(uint32_t *)phys_to_virt(pg * PAGE_SIZE) = (uint32_t)op;
			}
			model_free_pages -= count;
			allocs[nallocs++] = (struct alloc){ phys, count, (uint32_t)op };
		} else {
			i = rng() % nallocs;
			for (k = 0; k < allocs[i].count; k++) {
				uint64_t pg = allocs[i].phys / PAGE_SIZE + k;

				CHECK_EQ(*(uint32_t *)phys_to_virt(pg * PAGE_SIZE), allocs[i].tag);
				owner[pg] = 0;
			}
			if (allocs[i].count == 1 && rng() % 2)
				pmm_free_page(allocs[i].phys);
			else
				pmm_free_pages(allocs[i].phys, allocs[i].count);
			model_free_pages += allocs[i].count;
			allocs[i] = allocs[--nallocs];
		}
		if (op % 64 == 0)
			CHECK_EQ(pmm_free_bytes(), model_free_pages * PAGE_SIZE);
	}
	CHECK_EQ(pmm_free_bytes(), model_free_pages * PAGE_SIZE);
	/* Both outcomes must have been exercised for the test to mean something. */
	fprintf(stderr, "    %d allocations, %d refused\n", run_ok, fails);
	CHECK(fails > 10);
	CHECK(run_ok > 1000);
	while (nallocs) {
		nallocs--;
		pmm_free_pages(allocs[nallocs].phys, allocs[nallocs].count);
	}
	CHECK_EQ(pmm_free_bytes(), initial_free);
	free(owner);
	fake_phys_fini();
}

static void test_carve_partition(void)
{
	struct mem_region map[] = { { 0x100000, 63 * MIB, MEM_USABLE } };
	uint64_t a, b, c, off, before;
	int dirty;

	fake_phys_init(0, 64 * MIB);
	memset(phys_to_virt(0), 0xaa, 64 * MIB); /* what an earlier owner left behind */
	CHECK_EQ(pmm_init(map, 1, NULL, 0), 0);
	before = pmm_free_bytes();
	CHECK_EQ(pmm_carve_partition(0, SIZE_2M, &a), -EINVAL);
	CHECK_EQ(pmm_carve_partition(3 * MIB, SIZE_2M, &a), 0);
	CHECK(a % SIZE_2M == 0);
	CHECK_EQ(pmm_free_bytes(), before - 4 * MIB);
	dirty = 0;
	for (off = 0; off < 4 * MIB; off++)
		dirty |= ((unsigned char *)phys_to_virt(a))[off];
	CHECK_EQ(dirty, 0);
	/* Just past the partition is still the old content: the zeroing stops at its end. */
	CHECK_EQ(((unsigned char *)phys_to_virt(a + 4 * MIB))[0], 0xaa);

	CHECK_EQ(pmm_carve_partition(1, SIZE_2M, &b), 0);
	CHECK(b % SIZE_2M == 0);
	CHECK(b + SIZE_2M <= a || b >= a + 4 * MIB);
	CHECK_EQ(pmm_free_bytes(), before - 6 * MIB);

	/* Too big: -ENOMEM and nothing taken. */
	c = 0x1234;
	CHECK_EQ(pmm_carve_partition(64 * MIB, SIZE_2M, &c), -ENOMEM);
	CHECK_EQ(pmm_carve_partition(UINT64_MAX, SIZE_2M, &c), -ENOMEM); /* rounding up must not wrap to 0 */
	CHECK_EQ(pmm_carve_partition(UINT64_MAX - SIZE_2M + 2, SIZE_2M, &c), -ENOMEM);
	CHECK_EQ(c, 0x1234);
	CHECK_EQ(pmm_free_bytes(), before - 6 * MIB);

	/* Alignment: as asked, and anything below 2 MiB or not a power of two refused. */
	CHECK_EQ(pmm_carve_partition(SIZE_2M, 16 * MIB, &c), 0);
	CHECK(c % (16 * MIB) == 0);
	pmm_free_pages(c, SIZE_2M / PAGE_SIZE);
	CHECK_EQ(pmm_carve_partition(SIZE_2M, PAGE_SIZE, &c), -EINVAL);
	CHECK_EQ(pmm_carve_partition(SIZE_2M, 3 * SIZE_2M, &c), -EINVAL);
	CHECK_EQ(pmm_free_bytes(), before - 6 * MIB);

	/* Given back, the space is reusable and comes back zeroed again after being dirtied. */
	memset(phys_to_virt(a), 0x55, 4 * MIB);
	pmm_free_pages(a, 4 * MIB / PAGE_SIZE);
	CHECK_EQ(pmm_carve_partition(4 * MIB, SIZE_2M, &c), 0);
	CHECK_EQ(c, a);
	dirty = 0;
	for (off = 0; off < 4 * MIB; off++)
		dirty |= ((unsigned char *)phys_to_virt(c))[off];
	CHECK_EQ(dirty, 0);
	fake_phys_fini();
}

/* Freeing what is not allocated is a broken invariant: the allocator must panic, not absorb it. */
static int dies(void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		/* Keep the child's abort quiet and fast: no core, no ASan report of leaks. */
		fclose(stderr);
		fn();
		_exit(0);
	}
	waitpid(pid, &status, 0);
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
}

static void double_free(void)
{
	uint64_t p = pmm_alloc_page();

	pmm_free_page(p);
	pmm_free_page(p);
}

static void free_reserved(void) { pmm_free_page(0x200000); }
static void free_low(void) { pmm_free_page(0x1000); }
static void free_unaligned(void)
{
	uint64_t p = pmm_alloc_page();

	pmm_free_page(p + 8);
}
static void free_outside(void) { pmm_free_pages(0x3ff000, 2); }
static void free_ok(void)
{
	uint64_t p;

	if (pmm_alloc_pages(4, PAGE_SIZE, &p) == 0)
		pmm_free_pages(p, 4);
}

static void test_bad_free(void)
{
	struct mem_region map[] = { { 0x100000, 0x300000, MEM_USABLE } };
	struct mem_region res[] = { { 0x200000, 0x1000, 0 } };

	fake_phys_init(0, 0x400000);
	CHECK_EQ(pmm_init(map, 1, res, 1), 0);
	CHECK(!dies(free_ok));
	CHECK(dies(double_free));
	CHECK(dies(free_reserved));
	CHECK(dies(free_low));
	CHECK(dies(free_unaligned));
	CHECK(dies(free_outside));
	fake_phys_fini();
}

/* A 2 GiB machine: 512K pages. Every path must stay far from quadratic in pages. */
static void test_large_machine(void)
{
	struct mem_region map[] = {
		{ 0, 0x9f000, MEM_USABLE },
		{ 0xf0000, 0x10000, MEM_RESERVED },
		{ 0x100000, 2 * SIZE_1G - 0x100000 - 16 * MIB, MEM_USABLE },
		{ 2 * SIZE_1G - 16 * MIB, 16 * MIB, MEM_RESERVED },
	};
	struct mem_region res[] = { { 0x100000, 0x400000, 0 } };
	clock_t t0 = clock();
	uint64_t phys, n, total, p, first;
	double secs;

	fake_phys_init(0, 8 * MIB); /* only the bitmaps are touched, right after the image */
	CHECK_EQ(pmm_init(map, 4, res, 1), 0);
	total = pmm_free_bytes();
	/* Below 2 GiB - 16 MiB: minus the first 5 MiB (low memory, image) and 32 pages of bitmaps (2 bits a page). */
	CHECK_EQ(total, 2 * SIZE_1G - 16 * MIB - 5 * MIB - 32 * PAGE_SIZE);
	for (n = 0; pmm_alloc_pages(512, SIZE_2M, &phys) == 0; n++)
		CHECK(phys % SIZE_2M == 0 && phys >= 6 * MIB && phys < 2 * SIZE_1G - 16 * MIB);
	/* 1024 blocks minus the 8 at the top and the 3 covering [0, 6 MiB). */
	CHECK_EQ(n, 1024 - 8 - 3);
	for (n = 0; (p = pmm_alloc_page()) != 0; n++)
		CHECK(p >= 5 * MIB + 32 * PAGE_SIZE && p < 6 * MIB);
	CHECK_EQ(n, (MIB - 32 * PAGE_SIZE) / PAGE_SIZE);
	CHECK_EQ(pmm_free_bytes(), 0);
	/* Free the 2 MiB runs and take 512 MiB at a 1 GiB boundary: only 1 GiB qualifies. */
	for (p = 6 * MIB; p < 2 * SIZE_1G - 16 * MIB; p += SIZE_2M)
		pmm_free_pages(p, 512);
	CHECK_EQ(pmm_alloc_pages(512 * MIB / PAGE_SIZE, SIZE_1G, &first), 0);
	CHECK_EQ(first, SIZE_1G);
	CHECK_EQ(pmm_alloc_pages(512 * MIB / PAGE_SIZE, SIZE_1G, &phys), -ENOMEM);
	/* Then every remaining page singly: next-fit must wrap around to the low ones. */
	for (n = 0; (p = pmm_alloc_page()) != 0; n++)
		CHECK(p < first || p >= first + 512 * MIB);
	CHECK_EQ(n, (2 * SIZE_1G - 16 * MIB - 6 * MIB - 512 * MIB) / PAGE_SIZE);
	secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
	fprintf(stderr, "    2 GiB machine: %.3f s\n", secs);
	CHECK(secs < 5.0);
	fake_phys_fini();
}

/* A host with RAM above 4 GiB: once next-fit has moved up there, pmm_alloc_page stays there, but a
 * PAE-format table's top must lie below 4 GiB: pmm_alloc_page_below finds the free pages under it. */
static void test_alloc_below(void)
{
	struct mem_region map[] = {
		{ 0, 0x9f000, MEM_USABLE },
		{ 0x100000, 7 * MIB, MEM_USABLE },                         /* 1..8 MiB */
		{ (1ull << 32) - 2 * MIB, 4 * MIB, MEM_USABLE },           /* 4 GiB - 2 MiB .. 4 GiB + 2 MiB */
	};
	struct mem_region res[] = { { 0x100000, 0x400000, 0 } };          /* the image: 1..5 MiB */
	uint64_t p, low[4], n;

	fake_phys_init(0, (1ull << 32) + 2 * MIB);
	CHECK_EQ(pmm_init(map, 3, res, 1), 0);
	/* Take everything below 4 GiB and the first page above it: the hint is now above 4 GiB. */
	while ((p = pmm_alloc_page()) != 0 && p < (1ull << 32))
		;
	CHECK(p >= (1ull << 32));
	CHECK_EQ(pmm_alloc_page_below(1ull << 32), 0);                  /* none left below */
	/* Free a few low pages: next-fit keeps handing out pages above 4 GiB... */
	low[0] = 6 * MIB, low[1] = 7 * MIB, low[2] = (1ull << 32) - 2 * MIB, low[3] = (1ull << 32) - PAGE_SIZE;
	for (n = 0; n < 4; n++)
		pmm_free_page(low[n]);
	p = pmm_alloc_page();
	CHECK(p >= (1ull << 32));
	pmm_free_page(p);
	/* ...and the ceiling finds them, lowest first, never at or above the limit. */
	CHECK_EQ(pmm_alloc_page_below(6 * MIB), 0);
	for (n = 0; n < 4; n++)
		CHECK_EQ(pmm_alloc_page_below(1ull << 32), low[n]);
	CHECK_EQ(pmm_alloc_page_below(1ull << 32), 0);
	CHECK_EQ(pmm_alloc_page_below(~0ull), p);                        /* no ceiling: any page */
	fake_phys_fini();
}

/* pmm_range_usable, which the host map asks before it uses a 1 GiB page. */
static void test_range_usable(void)
{
	const struct mem_region map[] = {
		{ 0x100000000ull, 0x40000000, MEM_USABLE },    /* 4-5 GiB, listed first */
		{ 0x100000, 0x7ff00000, MEM_USABLE },          /* 1 MiB - 2 GiB */
		{ 0x80000000, 0x1000, MEM_RESERVED },          /* a hole at 2 GiB */
		{ 0x80001000, 0x3ffff000, MEM_USABLE },        /* to 3 GiB */
		{ 0x140000000ull, 0x40000000, MEM_USABLE },    /* 5-6 GiB: touches the first */
		{ 0x150000000ull, 0x1000, MEM_USABLE },        /* overlapping, inside it */
	};
	size_t n = sizeof(map) / sizeof(map[0]);

	CHECK(pmm_range_usable(map, n, 0x40000000, 0x40000000));     /* 1-2 GiB */
	CHECK(!pmm_range_usable(map, n, 0, 0x40000000));             /* the first MiB is not listed */
	CHECK(!pmm_range_usable(map, n, 0x80000000, 0x40000000));    /* starts in the hole */
	CHECK(!pmm_range_usable(map, n, 0x7ffff000, 0x2000));        /* spans the hole */
	CHECK(pmm_range_usable(map, n, 0x80001000, 0x1000));
	CHECK(!pmm_range_usable(map, n, 0xc0000000, 0x40000000));    /* 3-4 GiB: nothing */
	CHECK(pmm_range_usable(map, n, 0x100000000ull, 0x80000000)); /* 4-6 GiB across two regions */
	CHECK(!pmm_range_usable(map, n, 0x140000000ull, 0x40001000));/* one page past the end */
	CHECK(!pmm_range_usable(NULL, 0, 0x100000, 0x1000));
}

/* poison=1: a page freed and written afterwards is reported when handed out again, with the first
 * word changed; one freed and left alone, or never freed, is not. */
static void test_poison(void)
{
	struct mem_region map[] = { { 0x100000, 0x10000, MEM_USABLE } };   /* 16 pages, the bitmaps take one */
	uint64_t pages[16], n = 0, p;
	uint32_t *w;

	fake_phys_init(0, 0x200000);
	CHECK_EQ(pmm_init(map, 1, NULL, 0), 0);
	pmm_set_poison(true);
	unit_log_clear();
	while (n < 16 && (p = pmm_alloc_page()))
		pages[n++] = p;
	CHECK(n >= 8);
	CHECK(!strstr(unit_log, "written after it was freed"));   /* never freed: not checked */
	for (unsigned i = 0; i < n; i++)
		pmm_free_page(pages[i]);
	w = phys_to_virt(pages[3]);
	w[0x220 / 4] |= 1;                     /* an IRR bit set in a freed APIC page */
	for (unsigned i = 0; i < n; i++)       /* every page back, the written one among them */
		CHECK(pmm_alloc_page() != 0);
	CHECK(strstr(unit_log, "was written after it was freed: word 68 is 0x10000000101 (of 1 words changed)"));
	{
		unsigned reports = 0;

		for (const char *q = unit_log; (q = strstr(q, "written after it was freed")); q++)
			reports++;
		CHECK_EQ(reports, 1);              /* only the page written */
	}
	pmm_set_poison(false);
	fake_phys_fini();
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_map_sanitizing);
	RUN(test_no_memory);
	RUN(test_aligned_runs);
	RUN(test_random_model);
	RUN(test_carve_partition);
	RUN(test_bad_free);
	RUN(test_large_machine);
	RUN(test_alloc_below);
	RUN(test_range_usable);
	RUN(test_poison);
	return unit_report(argv[0]);
}
