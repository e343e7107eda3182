/* Host unit tests of ept/ept.c: build EPTs over a fake memory and walk them as the CPU would. */
#include <stdint.h>
#include "ept/ept.h"
#include "lib/errno.h"
#include "pmm/pmm.h"
#include "tests/unit/unit.h"

#include "tests/unit/fake_pmm.h"

#define FAKE_BASE  0x40000000ull   /* the fake memory the tables come from */
#define FAKE_SIZE  (32ull << 20)
#define FLAGS      (EPT_RWX | (EPT_MT_WB << EPT_MT_SHIFT))
#define HPA_OFF    0x100000000ull  /* mapped HPAs: never touched, 4 GiB keeps every alignment */

/*
 * A range whose alignment allows every page size in turn:
 *   3 x 4K | 2M | 1G | 2M | 5 x 4K, starting 2M + 12K below 1 GiB.
 */
#define MIX_GPA   (SIZE_1G - SIZE_2M - 3 * PAGE_SIZE)
#define MIX_SIZE  (3 * PAGE_SIZE + SIZE_2M + SIZE_1G + SIZE_2M + 5 * PAGE_SIZE)

static void setup(void)
{
	fake_pmm_init(FAKE_BASE, FAKE_SIZE);
}

static void teardown(void)
{
	CHECK_EQ(fake_pmm_outstanding(), 0);
	fake_pmm_fini();
}

/* Walks every 4 KiB page of [gpa, gpa+size): each translates to hpa + offset with FLAGS; counts leaves
 * by size in n[0] (4K), n[1] (2M), n[2] (1G). */
static void walk_range(const struct ept *ept, uint64_t gpa, uint64_t hpa, uint64_t size, uint64_t n[3])
{
	uint64_t off, got, leaf, ps;
	unsigned bad = 0;

	n[0] = n[1] = n[2] = 0;
	for (off = 0; off < size; off += PAGE_SIZE) {
		if (!ept_translate(ept, gpa + off, &got, &leaf, &ps) || got != hpa + off ||
		    (leaf & 0x7f) != FLAGS || !!(leaf & EPT_LARGE) != (ps != PAGE_SIZE)) {
			if (bad++ < 5)
				CHECK_EQ(gpa + off, ~0ull); /* reports the failing GPA */
			continue;
		}
		/* A leaf is counted once, at its first page. */
		if (((gpa + off) & (ps - 1)) == 0)
			n[ps == PAGE_SIZE ? 0 : ps == SIZE_2M ? 1 : 2]++;
	}
	CHECK_EQ(bad, 0);
}

static void test_page_sizes(void)
{
	static const struct {
		unsigned sizes;
		uint64_t n4k, n2m, n1g;
	} cases[] = {
		{ EPT_PAGE_4K, 3 + 512 + 262144 + 512 + 5, 0, 0 },
		{ EPT_PAGE_4K | EPT_PAGE_2M, 8, 1 + 512 + 1, 0 },
		{ EPT_PAGE_4K | EPT_PAGE_1G, 3 + 512 + 512 + 5, 0, 1 },
		{ EPT_PAGE_4K | EPT_PAGE_2M | EPT_PAGE_1G, 8, 2, 1 },
		{ EPT_PAGE_2M | EPT_PAGE_1G, 8, 2, 1 }, /* 4K is implied */
	};
	unsigned i;

	setup();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ept ept;
		uint64_t n[3];

		CHECK_EQ(ept_init(&ept, cases[i].sizes), 0);
		CHECK_EQ(ept.tables, 1);
		CHECK_EQ(ept_map(&ept, MIX_GPA, MIX_GPA + HPA_OFF, MIX_SIZE, FLAGS), 0);
		walk_range(&ept, MIX_GPA, MIX_GPA + HPA_OFF, MIX_SIZE, n);
		CHECK_EQ(n[0], cases[i].n4k);
		CHECK_EQ(n[1], cases[i].n2m);
		CHECK_EQ(n[2], cases[i].n1g);
		if (i == 3) /* PML4, PDPT, 2 PDs (the 1G in between has none), 2 PTs */
			CHECK_EQ(ept.tables, 6);
		CHECK_EQ(ept.tables, fake_pmm_outstanding());
		ept_destroy(&ept);
		CHECK_EQ(ept.tables, 0);
		CHECK_EQ(fake_pmm_outstanding(), 0);
	}
	teardown();
}

/* The page size follows the alignment of both addresses and of what remains. */
static void test_alignment(void)
{
	struct ept ept;
	uint64_t n[3];

	setup();
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K | EPT_PAGE_2M | EPT_PAGE_1G), 0);
	/* HPA 4K off 2M alignment: 4K leaves only. */
	CHECK_EQ(ept_map(&ept, 4 * SIZE_2M, HPA_OFF + PAGE_SIZE, 2 * SIZE_2M, FLAGS), 0);
	walk_range(&ept, 4 * SIZE_2M, HPA_OFF + PAGE_SIZE, 2 * SIZE_2M, n);
	CHECK_EQ(n[0], 1024);
	CHECK_EQ(n[1] + n[2], 0);
	/* GPA 1G-aligned, HPA only 2M-aligned: 2M leaves. */
	CHECK_EQ(ept_map(&ept, 2 * SIZE_1G, HPA_OFF + SIZE_2M, SIZE_1G, FLAGS), 0);
	walk_range(&ept, 2 * SIZE_1G, HPA_OFF + SIZE_2M, SIZE_1G, n);
	CHECK_EQ(n[1], 512);
	CHECK_EQ(n[0] + n[2], 0);
	/* Both 2M-aligned but the size 4K short of 2M: 4K leaves. */
	CHECK_EQ(ept_map(&ept, 4 * SIZE_1G, HPA_OFF, SIZE_2M - PAGE_SIZE, FLAGS), 0);
	walk_range(&ept, 4 * SIZE_1G, HPA_OFF, SIZE_2M - PAGE_SIZE, n);
	CHECK_EQ(n[0], 511);
	/* Both 1G-aligned: one 1G leaf, and an offset inside it translates to the same offset. */
	CHECK_EQ(ept_map(&ept, 5 * SIZE_1G, 3 * SIZE_1G, SIZE_1G, FLAGS), 0);
	{
		uint64_t hpa, ps;

		CHECK(ept_translate(&ept, 5 * SIZE_1G + 0x12345678, &hpa, NULL, &ps));
		CHECK_EQ(hpa, 3 * SIZE_1G + 0x12345678);
		CHECK_EQ(ps, SIZE_1G);
	}
	ept_destroy(&ept);
	teardown();
}

static bool mapped(const struct ept *ept, uint64_t gpa)
{
	return ept_translate(ept, gpa, NULL, NULL, NULL);
}

/* Nothing outside a mapped range translates: probes at the edges and a sampled sweep. */
static void test_nothing_outside(void)
{
	const uint64_t end = MIX_GPA + MIX_SIZE;
	struct ept ept;
	uint64_t gpa, in = 0;

	setup();
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K | EPT_PAGE_2M | EPT_PAGE_1G), 0);
	CHECK_EQ(ept_map(&ept, MIX_GPA, MIX_GPA + HPA_OFF, MIX_SIZE, FLAGS), 0);
	CHECK(!mapped(&ept, MIX_GPA - 1));
	CHECK(!mapped(&ept, MIX_GPA - PAGE_SIZE));
	CHECK(!mapped(&ept, MIX_GPA - SIZE_2M));
	CHECK(!mapped(&ept, 0));
	CHECK(mapped(&ept, MIX_GPA));
	CHECK(mapped(&ept, end - 1));
	CHECK(!mapped(&ept, end));
	CHECK(!mapped(&ept, end + PAGE_SIZE));
	CHECK(!mapped(&ept, (end & ~(SIZE_2M - 1)) + SIZE_2M));
	CHECK(!mapped(&ept, 3 * SIZE_1G));
	CHECK(!mapped(&ept, 512 * SIZE_1G + MIX_GPA)); /* same indexes one PML4 entry up */
	CHECK(!mapped(&ept, (1ull << 48) - PAGE_SIZE));
	CHECK(!mapped(&ept, 1ull << 48));
	/* An odd stride visits every offset class; [0, 4G) holds the range and plenty around it. */
	for (gpa = 0; gpa < 4 * SIZE_1G; gpa += 0x1001 * 7) {
		bool want = gpa >= MIX_GPA && gpa < end;
		uint64_t hpa = 0;

		if (ept_translate(&ept, gpa, &hpa, NULL, NULL) != want || (want && hpa != gpa + HPA_OFF)) {
			CHECK_EQ(gpa, ~0ull);
			break;
		}
		in += want;
	}
	CHECK(in > 0);
	ept_destroy(&ept);
	teardown();
}

/* An overlapping map is refused and changes nothing, wherever the overlap is. */
static void test_overlap(void)
{
	const uint64_t x = SIZE_1G + 4 * SIZE_2M; /* [x, x + 4M): two 2M leaves */
	static const struct { uint64_t gpa, size; } tries[] = {
		{ SIZE_1G + 4 * SIZE_2M - PAGE_SIZE, 2 * PAGE_SIZE },     /* across the start */
		{ SIZE_1G + 6 * SIZE_2M - PAGE_SIZE, 2 * PAGE_SIZE },     /* across the end */
		{ SIZE_1G + 4 * SIZE_2M + 0x10000, PAGE_SIZE },           /* inside a 2M leaf */
		{ SIZE_1G, SIZE_1G },                                      /* containing all of it */
		{ 0, SIZE_1G + 4 * SIZE_2M + PAGE_SIZE },                  /* free for a long way first */
		{ 7 * SIZE_1G + SIZE_2M, PAGE_SIZE },                      /* inside the 1G leaf */
		{ 8 * SIZE_1G - PAGE_SIZE, 2 * PAGE_SIZE },                /* across the 1G leaf's end */
	};
	struct ept ept;
	uint64_t tables;
	unsigned i;

	setup();
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K | EPT_PAGE_2M | EPT_PAGE_1G), 0);
	CHECK_EQ(ept_map(&ept, x, HPA_OFF, 2 * SIZE_2M, FLAGS), 0);
	CHECK_EQ(ept_map(&ept, 7 * SIZE_1G, 2 * SIZE_1G, SIZE_1G, FLAGS), 0);
	CHECK_EQ(ept_map(&ept, x + 2 * SIZE_2M, HPA_OFF, PAGE_SIZE, FLAGS), 0); /* adjacent is fine */
	tables = ept.tables;
	for (i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		CHECK_EQ(ept_map(&ept, tries[i].gpa, 0x200000000ull, tries[i].size, FLAGS), -EEXIST);
		CHECK(!mapped(&ept, tries[i].gpa) || (tries[i].gpa >= x && tries[i].gpa < x + 4 * SIZE_2M) ||
		      tries[i].gpa >= 7 * SIZE_1G);
	}
	CHECK_EQ(ept.tables, tables);
	CHECK_EQ(fake_pmm_outstanding(), tables);
	CHECK(!mapped(&ept, 0));
	CHECK(!mapped(&ept, x - PAGE_SIZE));
	CHECK(!mapped(&ept, 8 * SIZE_1G));
	CHECK(!mapped(&ept, 7 * SIZE_1G - PAGE_SIZE));
	ept_destroy(&ept);
	teardown();
}

/* After ept_prepare, maps inside the range need no memory at all. */
static void test_prepare(void)
{
	struct ept ept;
	uint64_t gpa, hpa, ps, tables;
	unsigned fails = 0;

	setup();
	/* 4K leaves over 64 MiB: 1 PML4 + 1 PDPT + 1 PD + 32 PTs. */
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K | EPT_PAGE_2M | EPT_PAGE_1G), 0);
	CHECK_EQ(ept_prepare(&ept, 0, 64ull << 20, PAGE_SIZE), 0);
	CHECK_EQ(ept.tables, 35);
	CHECK(!mapped(&ept, 0));
	fake_pmm_set_limit(fake_pmm_outstanding());
	/* A 2M-aligned 2M map goes into the prepared page table as 4K leaves. */
	CHECK_EQ(ept_map(&ept, 0, HPA_OFF, SIZE_2M, FLAGS), 0);
	CHECK(ept_translate(&ept, 0, &hpa, NULL, &ps));
	CHECK_EQ(ps, PAGE_SIZE);
	for (gpa = SIZE_2M; gpa < (64ull << 20); gpa += PAGE_SIZE)
		fails += ept_map(&ept, gpa, HPA_OFF + gpa, PAGE_SIZE, FLAGS) != 0;
	CHECK_EQ(fails, 0);
	CHECK_EQ(ept.tables, 35);
	/* Outside the prepared range the allocator is empty. */
	CHECK_EQ(ept_map(&ept, 64ull << 20, HPA_OFF, PAGE_SIZE, FLAGS), -ENOMEM);
	CHECK_EQ(ept_map(&ept, SIZE_1G, HPA_OFF, PAGE_SIZE, FLAGS), -ENOMEM);
	fake_pmm_set_limit(UINT64_MAX);

	/* 2M leaves over [1G, 1G + 64M): one more PD. */
	tables = ept.tables;
	CHECK_EQ(ept_prepare(&ept, SIZE_1G, 64ull << 20, SIZE_2M), 0);
	CHECK_EQ(ept.tables, tables + 1);
	fake_pmm_set_limit(fake_pmm_outstanding());
	for (gpa = SIZE_1G; gpa < SIZE_1G + (64ull << 20); gpa += SIZE_2M)
		fails += ept_map(&ept, gpa, gpa, SIZE_2M, FLAGS) != 0;
	CHECK_EQ(fails, 0);
	CHECK(ept_translate(&ept, SIZE_1G + SIZE_2M + 5, &hpa, NULL, &ps));
	CHECK_EQ(ps, SIZE_2M);
	CHECK_EQ(hpa, SIZE_1G + SIZE_2M + 5);
	fake_pmm_set_limit(UINT64_MAX);

	/* 1G leaves across a PML4 boundary: one more PDPT. Re-preparing is free. */
	tables = ept.tables;
	CHECK_EQ(ept_prepare(&ept, 510 * SIZE_1G, 4 * SIZE_1G, SIZE_1G), 0);
	CHECK_EQ(ept.tables, tables + 1);
	CHECK_EQ(ept_prepare(&ept, 0, 64ull << 20, PAGE_SIZE), 0);
	CHECK_EQ(ept_prepare(&ept, 510 * SIZE_1G, 4 * SIZE_1G, SIZE_1G), 0);
	CHECK_EQ(ept.tables, tables + 1);
	fake_pmm_set_limit(fake_pmm_outstanding());
	for (gpa = 510 * SIZE_1G; gpa < 514 * SIZE_1G; gpa += SIZE_1G)
		fails += ept_map(&ept, gpa, SIZE_1G, SIZE_1G, FLAGS) != 0;
	CHECK_EQ(fails, 0);
	CHECK(ept_translate(&ept, 513 * SIZE_1G, &hpa, NULL, &ps));
	CHECK_EQ(ps, SIZE_1G);
	fake_pmm_set_limit(UINT64_MAX);

	/* Bad arguments. */
	CHECK_EQ(ept_prepare(&ept, PAGE_SIZE, SIZE_2M, SIZE_2M), -EINVAL);
	CHECK_EQ(ept_prepare(&ept, 0, SIZE_2M, 8192), -EINVAL);
	ept_destroy(&ept);
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K), 0);
	CHECK_EQ(ept_prepare(&ept, 0, SIZE_2M, SIZE_2M), -EINVAL); /* no 2M pages on this CPU */
	ept_destroy(&ept);

	/* Out of memory part-way: what was allocated stays in the EPT and destroy frees it. */
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K), 0);
	fake_pmm_set_limit(fake_pmm_outstanding() + 3);
	CHECK_EQ(ept_prepare(&ept, 0, 64ull << 20, PAGE_SIZE), -ENOMEM);
	CHECK_EQ(ept.tables, 4);
	ept_destroy(&ept);
	fake_pmm_set_limit(0);
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K), -ENOMEM);
	fake_pmm_set_limit(UINT64_MAX);
	teardown();
}

/* Destroy returns every table, however many levels were built. */
static void test_destroy(void)
{
	struct ept ept;
	uint64_t gpa;

	setup();
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K | EPT_PAGE_2M), 0);
	for (gpa = 0; gpa < 40 * SIZE_1G; gpa += SIZE_1G + 5 * SIZE_2M + 3 * PAGE_SIZE)
		CHECK_EQ(ept_map(&ept, gpa, gpa, SIZE_2M + PAGE_SIZE, FLAGS), 0);
	CHECK_EQ(ept_map(&ept, 600 * SIZE_1G, 0, PAGE_SIZE, FLAGS), 0); /* a second PML4 entry */
	CHECK(ept.tables > 40);
	CHECK_EQ(ept.tables, fake_pmm_outstanding());
	ept_destroy(&ept);
	CHECK_EQ(ept.tables, 0);
	CHECK_EQ(ept.root, 0);
	CHECK(!mapped(&ept, 0));
	teardown();
}

static void test_invalid(void)
{
	struct ept ept;

	setup();
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K | EPT_PAGE_2M), 0);
	CHECK_EQ(ept_map(&ept, 0x800, 0, PAGE_SIZE, FLAGS), -EINVAL);
	CHECK_EQ(ept_map(&ept, 0, 0x800, PAGE_SIZE, FLAGS), -EINVAL);
	CHECK_EQ(ept_map(&ept, 0, 0, 0x800, FLAGS), -EINVAL);
	CHECK_EQ(ept_map(&ept, 0, 0, 0, FLAGS), -EINVAL);
	CHECK_EQ(ept_map(&ept, (1ull << 48) - PAGE_SIZE, 0, 2 * PAGE_SIZE, FLAGS), -EINVAL);
	CHECK_EQ(ept_map(&ept, 0, 1ull << 52, PAGE_SIZE, FLAGS), -EINVAL);
	CHECK_EQ(ept_map(&ept, 0, 0, PAGE_SIZE, EPT_WRITE), -EINVAL);              /* write-only */
	CHECK_EQ(ept_map(&ept, 0, 0, PAGE_SIZE, EPT_WRITE | EPT_EXEC), -EINVAL);   /* write/execute */
	CHECK_EQ(ept_map(&ept, 0, 0, PAGE_SIZE, 0), -EINVAL);                      /* not present */
	CHECK_EQ(ept_map(&ept, 0, 0, PAGE_SIZE, EPT_READ | (2ull << EPT_MT_SHIFT)), -EINVAL);
	CHECK_EQ(ept_map(&ept, 0, 0, PAGE_SIZE, EPT_READ | EPT_LARGE), -EINVAL);
	CHECK_EQ(ept.tables, 1);
	/* Read-only UC is a fine leaf. */
	CHECK_EQ(ept_map(&ept, 0, 0xfee00000, PAGE_SIZE, EPT_READ | (EPT_MT_UC << EPT_MT_SHIFT)), 0);
	ept_destroy(&ept);
	teardown();
}

static void test_eptp(void)
{
	struct ept ept;
	uint64_t p;

	setup();
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K), 0);
	p = ept_pointer(&ept, false);
	CHECK_EQ(p & 0xfff, 6 | (3 << 3));    /* WB, walk length 4 - 1, A/D off */
	CHECK_EQ(p & ~0xfffull, ept.root);
	CHECK_EQ(ept.root & 0xfff, 0);
	p = ept_pointer(&ept, true);
	CHECK_EQ(p & 0xfff, 6 | (3 << 3) | (1 << 6));
	ept_destroy(&ept);
	teardown();
}

/* ept_walk records each entry the CPU reads: the PML4E first, each table the one the entry above points
 * to, the slot the GPA's bits select; it ends at the leaf (HPA, page size) or at the entry that is not
 * present (its level). */
static void check_chain(const struct ept *ept, uint64_t gpa, const struct ept_walk *w)
{
	CHECK(w->nsteps >= 1 && w->nsteps <= 4);
	for (unsigned i = 0; i < w->nsteps; i++) {
		CHECK_EQ(w->steps[i].level, 4 - (int)i);
		CHECK_EQ(w->steps[i].index, (gpa >> (12 + 9 * (3 - i))) & 511);
		CHECK_EQ(w->steps[i].table, i ? w->steps[i - 1].entry & EPT_ADDR_MASK : ept->root);
		CHECK_EQ(w->steps[i].entry, ((uint64_t *)phys_to_virt(w->steps[i].table))[w->steps[i].index]);
	}
}

static void test_walk(void)
{
	static const struct {
		uint64_t gpa;
		bool mapped;
		unsigned nsteps;
		uint64_t page_size;     /* mapped: the leaf's size; else 0 */
		int stop_level;
	} cases[] = {
		{ MIX_GPA, true, 4, PAGE_SIZE, 0 },                               /* first 4K leaf */
		{ MIX_GPA + 3 * PAGE_SIZE + 0x1234, true, 3, SIZE_2M, 0 },        /* inside the 2M leaf */
		{ SIZE_1G + 0x12345678, true, 2, SIZE_1G, 0 },                    /* inside the 1G leaf */
		{ MIX_GPA + MIX_SIZE - PAGE_SIZE + 0xfff, true, 4, PAGE_SIZE, 0 }, /* last byte mapped */
		{ MIX_GPA + MIX_SIZE, false, 4, 0, 1 },                            /* PTE not present */
		{ MIX_GPA - PAGE_SIZE, false, 4, 0, 1 },                           /* PTE before the range */
		{ 8 * SIZE_1G, false, 2, 0, 3 },                                   /* PDPTE not present */
		{ 1ull << 40, false, 1, 0, 4 },                                    /* PML4E not present */
		{ 1ull << 48, false, 0, 0, 0 },                                    /* beyond a 4-level walk */
	};
	struct ept ept;
	struct ept_walk w;

	setup();
	CHECK_EQ(ept_init(&ept, EPT_PAGE_4K | EPT_PAGE_2M | EPT_PAGE_1G), 0);
	CHECK_EQ(ept_map(&ept, MIX_GPA, MIX_GPA + HPA_OFF, MIX_SIZE, FLAGS), 0);
	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t gpa = cases[i].gpa, hpa = 0, leaf = 0, ps = 0;
		bool t = ept_translate(&ept, gpa, &hpa, &leaf, &ps);

		CHECK_EQ(ept_walk(&ept, gpa, &w), cases[i].mapped);
		CHECK_EQ(w.mapped, cases[i].mapped);
		CHECK_EQ(w.nsteps, cases[i].nsteps);
		CHECK_EQ(w.stop_level, cases[i].stop_level);
		CHECK_EQ(w.page_size, cases[i].page_size);
		CHECK_EQ(t, cases[i].mapped);                      /* ept_translate agrees */
		if (w.nsteps)
			check_chain(&ept, gpa, &w);
		if (cases[i].mapped) {
			const struct ept_walk_step *last = &w.steps[w.nsteps - 1];

			CHECK_EQ(w.hpa, gpa + HPA_OFF);
			CHECK_EQ(hpa, w.hpa);
			CHECK_EQ(ps, w.page_size);
			CHECK_EQ(leaf, last->entry);
			CHECK_EQ(last->entry & 0x7f, FLAGS);
			CHECK_EQ(!!(last->entry & EPT_LARGE), w.page_size != PAGE_SIZE);
		} else if (w.nsteps) {
			CHECK_EQ(w.steps[w.nsteps - 1].entry & EPT_RWX, 0);
			CHECK_EQ(w.steps[w.nsteps - 1].level, w.stop_level);
			CHECK_EQ(w.hpa, 0);
		}
	}
	/* An EPT with no root reads nothing. */
	{
		struct ept none = { 0, EPT_PAGE_4K, 0, EPT_FORMAT_EPT };

		CHECK(!ept_walk(&none, 0, &w));
		CHECK_EQ(w.nsteps, 0);
		CHECK_EQ(w.stop_level, 0);
	}
	ept_destroy(&ept);
	teardown();
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_page_sizes);
	RUN(test_alignment);
	RUN(test_nothing_outside);
	RUN(test_overlap);
	RUN(test_prepare);
	RUN(test_destroy);
	RUN(test_invalid);
	RUN(test_eptp);
	RUN(test_walk);
	return unit_report(argv[0]);
}
