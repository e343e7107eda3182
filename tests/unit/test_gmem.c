/* Host unit tests of gmem/gmem.c: eager, lazy and demand backing of guest RAM over a fake memory. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include "gmem/gmem.h"
#include "lib/errno.h"
#include "npt/npt.h"
#include "pmm/pmm.h"
#include "tests/unit/unit.h"

#include "tests/unit/fake_pmm.h"

#define FAKE_BASE  0x40000000ull
#define FAKE_SIZE  (64ull << 20)
#define ALL_SIZES  (EPT_PAGE_4K | EPT_PAGE_2M | EPT_PAGE_1G)
#define WB_RWX     (EPT_RWX | (EPT_MT_WB << EPT_MT_SHIFT) | EPT_IGNORE_PAT)

static void setup(void)
{
	fake_pmm_init(FAKE_BASE, FAKE_SIZE);
	fake_pmm_fill_free(0xAA); /* what a previous guest left behind */
}

static void teardown(void)
{
	CHECK_EQ(fake_pmm_outstanding(), 0);
	fake_pmm_fini();
}

static bool all_bytes(const void *p, int byte, uint64_t len)
{
	const unsigned char *c = p;
	uint64_t i;

	for (i = 0; i < len; i++)
		if (c[i] != (unsigned char)byte)
			return false;
	return true;
}

/* The chunk holding gpa: mapped, with the chunk's page size and RWX WB. */
static bool chunk_mapped(const struct gmem *gm, uint64_t gpa, uint64_t *hpa)
{
	uint64_t leaf, ps;

	if (!ept_translate(&gm->ept, gpa, hpa, &leaf, &ps))
		return false;
	CHECK_EQ(leaf & 0x7f, WB_RWX);
	if (gm->mode != GMEM_EAGER)
		CHECK_EQ(ps, gm->chunk);
	return true;
}

/* A permutation of the chunk indexes: touch order should not matter. */
static uint64_t scrambled(uint64_t i, uint64_t n)
{
	return (i * 7919) % n; /* 7919 is prime, n a power of two: a bijection */
}

static void test_eager(void)
{
	static const struct { uint64_t size, chunk; unsigned sizes; } cases[] = {
		{ 16ull << 20, SIZE_2M, ALL_SIZES },
		{ 16ull << 20, PAGE_SIZE, ALL_SIZES },
		{ (3ull << 20) + PAGE_SIZE, PAGE_SIZE, EPT_PAGE_4K }, /* partition rounded up to 2M */
	};
	unsigned i;

	setup();
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct gmem gm;
		uint64_t gpa, hpa, off;
		unsigned bad = 0;
		static unsigned char buf[SIZE_2M];

		CHECK_EQ(gmem_create(&gm, GMEM_EAGER, cases[i].size, cases[i].chunk, cases[i].sizes), 0);
		CHECK_EQ(gmem_touched_bytes(&gm), cases[i].size);
		CHECK_EQ(gm.touched_chunks, gm.nchunks);
		CHECK_EQ(gm.base & (SIZE_2M - 1), 0);
		CHECK_EQ(fake_pmm_outstanding(),
			 ((cases[i].size + SIZE_2M - 1) & ~(SIZE_2M - 1)) / PAGE_SIZE + gm.ept.tables);
		/* Everything mapped at once, to the partition, zeroed. */
		for (gpa = 0; gpa < cases[i].size; gpa += PAGE_SIZE)
			bad += !chunk_mapped(&gm, gpa, &hpa) || hpa != gm.base + gpa;
		CHECK_EQ(bad, 0);
		CHECK(!ept_translate(&gm.ept, cases[i].size, NULL, NULL, NULL));
		for (off = 0; off < cases[i].size; off += sizeof(buf)) {
			uint64_t n = cases[i].size - off < sizeof(buf) ? cases[i].size - off : sizeof(buf);

			CHECK_EQ(gmem_read(&gm, off, buf, n), 0);
			bad += !all_bytes(buf, 0, n);
		}
		CHECK_EQ(bad, 0);
		if (cases[i].sizes & EPT_PAGE_2M) {
			uint64_t ps;

			CHECK(ept_translate(&gm.ept, 0, NULL, NULL, &ps));
			CHECK(ps >= SIZE_2M); /* the largest pages */
		}
		/* A violation in RAM can only be a permission fault: the caller's business. */
		CHECK_EQ(gmem_touch(&gm, 0, true), GMEM_PRESENT);
		CHECK_EQ(gmem_touch(&gm, cases[i].size - 1, true), GMEM_PRESENT);
		CHECK_EQ(gmem_touch(&gm, cases[i].size, true), GMEM_OUTSIDE);
		CHECK_EQ(gm.first_touch_exits, 0);
		CHECK_EQ(gmem_touched_bytes(&gm), cases[i].size);
		gmem_destroy(&gm);
		CHECK_EQ(fake_pmm_outstanding(), 0);
	}
	teardown();
}

/* Lazy: all memory and tables at create, nothing mapped; first touches never allocate. */
static void lazy_case(uint64_t size, uint64_t chunk, unsigned sizes, uint64_t want_chunk)
{
	struct gmem gm;
	uint64_t i, calls, hpa, tables;
	unsigned bad = 0;

	setup();
	CHECK_EQ(gmem_create(&gm, GMEM_LAZY, size, chunk, sizes), 0);
	CHECK_EQ(gm.chunk, want_chunk);
	CHECK_EQ(gm.nchunks, size / want_chunk);
	CHECK_EQ(gm.base & (SIZE_2M - 1), 0);
	CHECK_EQ(gmem_touched_bytes(&gm), 0);
	tables = gm.ept.tables;
	CHECK_EQ(fake_pmm_outstanding(), size / PAGE_SIZE + tables + gm.map_nodes);
	/* Reserved, not cleared: the cost of clearing is paid on first touch only. */
	CHECK(all_bytes(phys_to_virt(gm.base), 0xAA, size));
	for (i = 0; i < size; i += PAGE_SIZE)
		bad += ept_translate(&gm.ept, i, NULL, NULL, NULL);
	CHECK_EQ(bad, 0);

	/* No memory left at all: every first touch must still succeed. */
	fake_pmm_set_limit(fake_pmm_outstanding());
	calls = fake_pmm_alloc_calls();
	for (i = 0; i < gm.nchunks; i++) {
		uint64_t gpa = scrambled(i, gm.nchunks) * gm.chunk + (i % 3) * 8; /* anywhere in the chunk */
		unsigned char *p;

		bad += gmem_touch(&gm, gpa, true) != GMEM_MAPPED;
		bad += !chunk_mapped(&gm, gpa, &hpa) || hpa != gm.base + gpa;
		p = gmem_hva(&gm, gpa & ~(gm.chunk - 1), gm.chunk);
		bad += !p || !all_bytes(p, 0, gm.chunk);
		if (p)
			memset(p, 0x5C, gm.chunk); /* the guest's data */
		bad += gmem_touch(&gm, gpa, true) != GMEM_PRESENT;
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(fake_pmm_alloc_calls(), calls);
	CHECK_EQ(gm.ept.tables, tables);
	CHECK_EQ(gm.touched_chunks, gm.nchunks);
	CHECK_EQ(gm.first_touch_exits, gm.nchunks);
	CHECK_EQ(gmem_touched_bytes(&gm), size);
	/* A second touch neither clears nor counts. */
	CHECK(all_bytes(phys_to_virt(gm.base), 0x5C, size));
	CHECK_EQ(gmem_touch(&gm, size, true), GMEM_OUTSIDE);
	CHECK_EQ(gmem_touch(&gm, ~0ull, true), GMEM_OUTSIDE);
	fake_pmm_set_limit(UINT64_MAX);
	gmem_destroy(&gm);
	teardown();
}

static void test_lazy(void)
{
	lazy_case(16ull << 20, SIZE_2M, ALL_SIZES, SIZE_2M);
	lazy_case(4ull << 20, PAGE_SIZE, ALL_SIZES, PAGE_SIZE);
	lazy_case(4ull << 20, SIZE_2M, EPT_PAGE_4K, PAGE_SIZE); /* no 2M EPT pages: 4K chunks */
}

/* The hypervisor's own touches (loading the image) map without counting exits. */
static void test_lazy_hypervisor_touch(void)
{
	struct gmem gm;
	const char msg[] = "tessera";
	char back[sizeof(msg)];

	setup();
	CHECK_EQ(gmem_create(&gm, GMEM_LAZY, 8ull << 20, SIZE_2M, ALL_SIZES), 0);
	CHECK_EQ(gmem_write(&gm, SIZE_2M - 3, msg, sizeof(msg)), 0); /* spans chunks 0 and 1 */
	CHECK_EQ(gm.touched_chunks, 2);
	CHECK_EQ(gm.first_touch_exits, 0);
	CHECK_EQ(gmem_read(&gm, SIZE_2M - 3, back, sizeof(back)), 0);
	CHECK(memcmp(msg, back, sizeof(msg)) == 0);
	CHECK_EQ(gmem_touch(&gm, SIZE_2M, true), GMEM_PRESENT);
	CHECK_EQ(gm.first_touch_exits, 0);
	gmem_destroy(&gm);
	teardown();
}

static void demand_case(uint64_t chunk)
{
	const uint64_t size = 32ull << 20;
	struct gmem gm;
	uint64_t hpa0, hpa1, out, i, mapped = 0;
	unsigned char *p;

	setup();
	CHECK_EQ(gmem_create(&gm, GMEM_DEMAND, size, chunk, ALL_SIZES), 0);
	CHECK_EQ(gm.chunk, chunk);
	CHECK_EQ(gm.base, 0);
	CHECK_EQ(fake_pmm_outstanding(), 2); /* the EPT's root and the chunk map's */
	CHECK_EQ(gmem_touched_bytes(&gm), 0);

	/* First touch: allocated, cleared, mapped; the second one finds it. */
	CHECK_EQ(gmem_touch(&gm, 5 * chunk + 100, true), GMEM_MAPPED);
	CHECK(chunk_mapped(&gm, 5 * chunk, &hpa0));
	CHECK_EQ(hpa0 & (chunk - 1), 0);
	p = gmem_hva(&gm, 5 * chunk, chunk);
	CHECK(p && all_bytes(p, 0, chunk));
	memset(p, 0x11, chunk);
	out = fake_pmm_outstanding();
	CHECK_EQ(gmem_touch(&gm, 5 * chunk, true), GMEM_PRESENT);
	CHECK_EQ(fake_pmm_outstanding(), out);
	CHECK(chunk_mapped(&gm, 5 * chunk, &hpa1));
	CHECK_EQ(hpa1, hpa0);
	CHECK(all_bytes(p, 0x11, chunk));
	CHECK_EQ(gm.touched_chunks, 1);
	CHECK_EQ(gm.first_touch_exits, 1);
	CHECK_EQ(gmem_touch(&gm, size, true), GMEM_OUTSIDE);
	CHECK(!gmem_hva(&gm, size, 1));

	/* Out of memory: the chunk's own allocation fails; nothing changes. */
	fake_pmm_set_limit(fake_pmm_outstanding());
	CHECK_EQ(gmem_touch(&gm, 6 * chunk, true), GMEM_NOMEM);
	CHECK(!gmem_hva(&gm, 6 * chunk, 1));
	CHECK_EQ(gmem_write(&gm, 6 * chunk, "x", 1), -ENOMEM);
	CHECK_EQ(fake_pmm_outstanding(), out);
	CHECK(!ept_translate(&gm.ept, 6 * chunk, NULL, NULL, NULL));
	CHECK_EQ(gm.touched_chunks, 1);
	CHECK_EQ(gm.first_touch_exits, 1);
	CHECK(all_bytes(p, 0x11, chunk));

	/* Fill all of RAM: every chunk mapped before stays where it was, with its data. */
	fake_pmm_set_limit(UINT64_MAX);
	for (i = 0; i < gm.nchunks; i++) {
		uint64_t gpa = scrambled(i, gm.nchunks) * chunk;
		enum gmem_fault f = gmem_touch(&gm, gpa, false);

		mapped += f == GMEM_MAPPED;
		p = gmem_hva(&gm, gpa, 1);
		CHECK(p != NULL);
		if (gpa == 5 * chunk)
			CHECK(p && all_bytes(p, 0x11, chunk));
		else if (p)
			*p = (unsigned char)(i + 1);
	}
	CHECK_EQ(mapped, gm.nchunks - 1);
	CHECK_EQ(gm.touched_chunks, gm.nchunks);
	CHECK(chunk_mapped(&gm, 5 * chunk, &hpa1));
	CHECK_EQ(hpa1, hpa0);
	for (i = 0; i < gm.nchunks; i++) {
		uint64_t gpa = scrambled(i, gm.nchunks) * chunk;

		p = gmem_hva(&gm, gpa, 1);
		if (gpa != 5 * chunk)
			CHECK(p && *p == (unsigned char)(i + 1));
	}
	CHECK_EQ(fake_pmm_outstanding(), gm.nchunks * (chunk / PAGE_SIZE) + gm.ept.tables + gm.map_nodes);
	gmem_destroy(&gm);
	CHECK_EQ(fake_pmm_outstanding(), 0);

	/* The chunk is had but an EPT table is not: the chunk goes back, nothing changes. */
	CHECK_EQ(gmem_create(&gm, GMEM_DEMAND, size, chunk, ALL_SIZES), 0);
	fake_pmm_set_limit(fake_pmm_outstanding() + chunk / PAGE_SIZE);
	CHECK_EQ(gmem_touch(&gm, 0, true), GMEM_NOMEM);
	CHECK_EQ(fake_pmm_outstanding(), 1 + gm.map_nodes);
	CHECK_EQ(gm.touched_chunks, 0);
	CHECK_EQ(gm.first_touch_exits, 0);
	fake_pmm_set_limit(UINT64_MAX);
	gmem_destroy(&gm);
	CHECK_EQ(fake_pmm_outstanding(), 0);

	/* Exhaustion in the middle of a run. */
	CHECK_EQ(gmem_create(&gm, GMEM_DEMAND, size, chunk, ALL_SIZES), 0);
	fake_pmm_set_limit(fake_pmm_outstanding() + (8ull << 20) / PAGE_SIZE);
	mapped = 0;
	for (i = 0; i < gm.nchunks; i++) {
		enum gmem_fault f = gmem_touch(&gm, i * chunk, true);

		if (f != GMEM_MAPPED) {
			CHECK_EQ(f, GMEM_NOMEM);
			break;
		}
		p = gmem_hva(&gm, i * chunk, chunk);
		CHECK(p && all_bytes(p, 0, chunk));
		if (p)
			memset(p, (int)(i & 0xff) | 1, chunk);
		mapped++;
	}
	CHECK(mapped > 0 && mapped < gm.nchunks);
	CHECK_EQ(gm.touched_chunks, mapped);
	CHECK_EQ(gm.first_touch_exits, mapped);
	CHECK_EQ(gmem_touched_bytes(&gm), mapped * chunk);
	for (i = 0; i < mapped; i++) {
		p = gmem_hva(&gm, i * chunk, chunk);
		CHECK(p && all_bytes(p, (int)(i & 0xff) | 1, chunk));
	}
	CHECK_EQ(gmem_touch(&gm, 0, true), GMEM_PRESENT);
	fake_pmm_set_limit(UINT64_MAX);
	CHECK_EQ(gmem_touch(&gm, mapped * chunk, true), GMEM_MAPPED); /* memory is back: so is the guest */
	gmem_destroy(&gm);
	teardown();
}

static void test_demand(void)
{
	demand_case(SIZE_2M);
	demand_case(PAGE_SIZE);
}

/* Several vCPUs faulting on the same chunks at once: each chunk is mapped exactly once. */
#define THREADS 4
static struct gmem race_gm;
static uint64_t race_mapped[THREADS];

static void *race_thread(void *arg)
{
	uintptr_t t = (uintptr_t)arg;
	uint64_t i;

	for (i = 0; i < race_gm.nchunks; i++) {
		uint64_t c = t & 1 ? race_gm.nchunks - 1 - i : i;

		if (gmem_touch(&race_gm, c * race_gm.chunk, true) == GMEM_MAPPED)
			race_mapped[t]++;
	}
	return NULL;
}

static void test_race(void)
{
	static const enum gmem_mode modes[] = { GMEM_LAZY, GMEM_DEMAND };
	unsigned m;

	setup();
	for (m = 0; m < 2; m++) {
		pthread_t th[THREADS];
		uint64_t total = 0, tables;
		uintptr_t t;

		CHECK_EQ(gmem_create(&race_gm, modes[m], 4ull << 20, PAGE_SIZE, ALL_SIZES), 0);
		for (t = 0; t < THREADS; t++) {
			race_mapped[t] = 0;
			CHECK_EQ(pthread_create(&th[t], NULL, race_thread, (void *)t), 0);
		}
		for (t = 0; t < THREADS; t++) {
			pthread_join(th[t], NULL);
			total += race_mapped[t];
		}
		tables = race_gm.ept.tables;
		CHECK_EQ(total, race_gm.nchunks);
		CHECK_EQ(race_gm.touched_chunks, race_gm.nchunks);
		CHECK_EQ(race_gm.first_touch_exits, race_gm.nchunks);
		CHECK_EQ(fake_pmm_outstanding(), (4ull << 20) / PAGE_SIZE + tables + race_gm.map_nodes);
		gmem_destroy(&race_gm);
		CHECK_EQ(fake_pmm_outstanding(), 0);
	}
	teardown();
}

/* A guest page-table entry read while another vCPU rewrites it with one 8-byte (or 4-byte) store:
 * gmem_read sees the old or the new entry, never a mix (SDM Vol. 3A, 9.1.1). The host's memcpy
 * happens to copy 8 bytes in one load, so this pins the contract rather than reproducing the kernel's
 * byte-wise rep movsb. */
static volatile bool tear_stop;

static void *tear_writer(void *arg)
{
	uint64_t *e64 = arg;
	uint32_t *e32 = (uint32_t *)(e64 + 1);
	unsigned i = 0;

	while (!__atomic_load_n(&tear_stop, __ATOMIC_RELAXED)) {
		__atomic_store_n(e64, i & 1 ? 0x8000000012345067ull : 0, __ATOMIC_RELAXED);
		__atomic_store_n(e32, i & 1 ? 0xfedcb067u : 0, __ATOMIC_RELAXED);
		i++;
	}
	return NULL;
}

static void test_entry_read(void)
{
	struct gmem gm;
	pthread_t th;
	uint64_t *e64;
	unsigned i, torn = 0;

	setup();
	CHECK_EQ(gmem_create(&gm, GMEM_DEMAND, 4ull << 20, PAGE_SIZE, ALL_SIZES), 0);
	e64 = gmem_hva(&gm, 0x3008, 16);
	CHECK(e64 != NULL);
	tear_stop = false;
	CHECK_EQ(pthread_create(&th, NULL, tear_writer, e64), 0);
	for (i = 0; i < 200000; i++) {
		uint64_t v64;
		uint32_t v32;

		CHECK_EQ(gmem_read(&gm, 0x3008, &v64, 8), 0);
		CHECK_EQ(gmem_read(&gm, 0x3010, &v32, 4), 0);
		torn += (v64 != 0 && v64 != 0x8000000012345067ull) + (v32 != 0 && v32 != 0xfedcb067u);
	}
	__atomic_store_n(&tear_stop, true, __ATOMIC_RELAXED);
	pthread_join(th, NULL);
	CHECK_EQ(torn, 0);
	gmem_destroy(&gm);
	teardown();
}

static void test_hva(void)
{
	struct gmem gm;
	char buf[3 * PAGE_SIZE], back[3 * PAGE_SIZE];
	unsigned i;

	setup();
	CHECK_EQ(gmem_create(&gm, GMEM_DEMAND, 1ull << 20, PAGE_SIZE, ALL_SIZES), 0);
	CHECK(!gmem_hva(&gm, 0, 0));
	CHECK(!gmem_hva(&gm, PAGE_SIZE - 1, 2));          /* crosses a chunk */
	CHECK(!gmem_hva(&gm, (1ull << 20) - 1, 2));       /* leaves RAM */
	CHECK(!gmem_hva(&gm, ~0ull, 1));
	CHECK_EQ(gm.touched_chunks, 0);
	CHECK(gmem_hva(&gm, PAGE_SIZE - 1, 1) != NULL);
	CHECK_EQ(gm.touched_chunks, 1);
	CHECK_EQ(gm.first_touch_exits, 0);
	/* Copies across scattered chunks. */
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = (char)(i * 13);
	CHECK_EQ(gmem_write(&gm, 100, buf, sizeof(buf)), 0);
	CHECK_EQ(gm.touched_chunks, 4);
	CHECK_EQ(gmem_read(&gm, 100, back, sizeof(back)), 0);
	CHECK(memcmp(buf, back, sizeof(buf)) == 0);
	CHECK_EQ(gmem_write(&gm, (1ull << 20) - 1, buf, 2), -EFAULT);
	CHECK_EQ(gmem_read(&gm, ~0ull, back, 2), -EFAULT);
	CHECK_EQ(gmem_write(&gm, 1ull << 20, buf, 0), 0);
	gmem_destroy(&gm);
	teardown();
}

/* A failed create leaves nothing allocated. */
static void test_create_fails(void)
{
	struct gmem gm;
	uint64_t limit;

	setup();
	CHECK_EQ(gmem_create(&gm, GMEM_EAGER, 0, SIZE_2M, ALL_SIZES), -EINVAL);
	CHECK_EQ(gmem_create(&gm, GMEM_LAZY, SIZE_2M + PAGE_SIZE, SIZE_2M, ALL_SIZES), -EINVAL);
	CHECK_EQ(gmem_create(&gm, GMEM_LAZY, SIZE_2M, 8192, ALL_SIZES), -EINVAL);
	CHECK_EQ(gmem_create(&gm, (enum gmem_mode)7, SIZE_2M, SIZE_2M, ALL_SIZES), -EINVAL);
	CHECK_EQ(fake_pmm_outstanding(), 0);
	CHECK_EQ(gmem_create(&gm, GMEM_EAGER, 128ull << 20, SIZE_2M, ALL_SIZES), -ENOMEM); /* > memory */
	CHECK_EQ(gmem_create(&gm, GMEM_LAZY, 128ull << 20, SIZE_2M, ALL_SIZES), -ENOMEM);
	CHECK_EQ(fake_pmm_outstanding(), 0);
	/* Each limit short of what create needs: every step's failure path. */
	for (limit = 0; limit < 8; limit++) { /* lazy 4M of 4K chunks: 1024 pages + 5 tables + 3 map nodes */
		fake_pmm_set_limit(limit);
		CHECK_EQ(gmem_create(&gm, GMEM_EAGER, 4ull << 20, PAGE_SIZE, ALL_SIZES), -ENOMEM);
		CHECK_EQ(gmem_create(&gm, GMEM_LAZY, 4ull << 20, PAGE_SIZE, ALL_SIZES), -ENOMEM);
		CHECK_EQ(fake_pmm_outstanding(), 0);
		fake_pmm_set_limit((4ull << 20) / PAGE_SIZE + limit);
		CHECK_EQ(gmem_create(&gm, GMEM_LAZY, 4ull << 20, PAGE_SIZE, ALL_SIZES), -ENOMEM);
		CHECK_EQ(fake_pmm_outstanding(), 0);
	}
	fake_pmm_set_limit(0);
	CHECK_EQ(gmem_create(&gm, GMEM_DEMAND, 4ull << 20, PAGE_SIZE, ALL_SIZES), -ENOMEM);
	fake_pmm_set_limit(UINT64_MAX);
	CHECK_EQ(fake_pmm_outstanding(), 0);
	teardown();
}

/*
 * A guest of 5 GiB: RAM is [0, 3 GiB) and [4 GiB, 6 GiB); the hole between (the I/O APIC at
 * 0xFEC00000, the local APIC at 0xFEE00000) is not RAM whatever the EPT maps there. Memory is touched
 * on both sides of the hole, a device page is mapped in it, and destroy gives back exactly what gmem
 * took: not the device page (the shared APIC-access page, which gmem freed as a guest chunk before).
 */
static void hole_case(enum gmem_mode mode, uint64_t chunk)
{
	static const uint64_t ram_gpas[] = { 0x1000, GMEM_HOLE_START - 1, GMEM_HIGH_BASE, (6ull << 30) - 1 };
	static const uint64_t not_ram[] = { GMEM_HOLE_START, 0xFEC00000, 0xFEE00000, 0xFEE00000 + 0x300,
					    GMEM_HIGH_BASE - 1, 6ull << 30, ~0ull };
	const uint64_t size = 5ull << 30;
	struct gmem gm;
	uint64_t dev, hpa, ps, took, before;
	char msg[] = "both sides", back[sizeof(msg)];
	unsigned i;

	fake_pmm_init_sparse(FAKE_BASE, size + (1ull << 30)); /* room for a 1 GiB-aligned partition */
	CHECK_EQ(gmem_create(&gm, mode, size, chunk, ALL_SIZES), 0);
	CHECK_EQ(gm.nram, 2);
	CHECK_EQ(gm.ram[0].base, 0);
	CHECK_EQ(gm.ram[0].len, 3ull << 30);
	CHECK_EQ(gm.ram[1].base, 4ull << 30);
	CHECK_EQ(gm.ram[1].len, 2ull << 30);
	CHECK_EQ(gm.ram[1].offset, 3ull << 30);

	/* The shared APIC-access page, as vmx/vcpu.c maps it: only outside RAM. */
	dev = pmm_alloc_page();
	CHECK(dev != 0);
	CHECK_EQ(gmem_map_device(&gm, 0xFEE00000, dev, PAGE_SIZE, EPT_READ | EPT_WRITE), 0);
	CHECK_EQ(gmem_map_device(&gm, 0x1000, dev, PAGE_SIZE, EPT_READ | EPT_WRITE), -EEXIST);
	CHECK_EQ(gmem_map_device(&gm, GMEM_HOLE_START - PAGE_SIZE, dev, PAGE_SIZE, EPT_READ), -EEXIST);
	CHECK_EQ(gmem_map_device(&gm, GMEM_HIGH_BASE, dev, PAGE_SIZE, EPT_READ), -EEXIST);
	CHECK(ept_translate(&gm.ept, 0xFEE00000, &hpa, NULL, NULL) && hpa == dev);
	CHECK_EQ(gmem_unmap_device(&gm, 0x1000), -EINVAL);
	before = fake_pmm_outstanding();

	for (i = 0; i < sizeof(ram_gpas) / sizeof(ram_gpas[0]); i++) {
		uint64_t gpa = ram_gpas[i], at = gpa & ~(gm.chunk - 1);
		unsigned char *p;

		CHECK(gmem_is_ram(&gm, gpa, 1));
		CHECK_EQ(gmem_touch(&gm, gpa, true), mode == GMEM_EAGER ? GMEM_PRESENT : GMEM_MAPPED);
		CHECK_EQ(gmem_touch(&gm, gpa, true), GMEM_PRESENT);
		CHECK(chunk_mapped(&gm, at, &hpa));
		if (mode != GMEM_DEMAND) /* the partition holds RAM without the hole: 4 GiB is at base + 3 GiB */
			CHECK_EQ(hpa, gm.base + (gpa < GMEM_HIGH_BASE ? at : at - (1ull << 30)));
		p = gmem_hva(&gm, gpa, 1);
		CHECK(p && *p == 0 && p == (unsigned char *)phys_to_virt(hpa) + (gpa - at));
	}
	CHECK_EQ(gmem_write(&gm, GMEM_HIGH_BASE + 100, msg, sizeof(msg)), 0);
	CHECK(ept_translate(&gm.ept, GMEM_HIGH_BASE + 100, &hpa, NULL, &ps));
	CHECK(memcmp(phys_to_virt(hpa), msg, sizeof(msg)) == 0);   /* what the guest sees */
	CHECK_EQ(gmem_read(&gm, GMEM_HIGH_BASE + 100, back, sizeof(back)), 0);
	CHECK(memcmp(back, msg, sizeof(msg)) == 0);
	if (mode == GMEM_EAGER)
		CHECK_EQ(ps, SIZE_1G);   /* both ranges 1 GiB-aligned in a 1 GiB-aligned partition */
	else
		CHECK_EQ(ps, gm.chunk);

	/* Nothing outside RAM is reachable through gmem, the device page included. */
	for (i = 0; i < sizeof(not_ram) / sizeof(not_ram[0]); i++) {
		CHECK(!gmem_is_ram(&gm, not_ram[i], 1));
		CHECK_EQ(gmem_touch(&gm, not_ram[i], true), GMEM_OUTSIDE);
		CHECK(!gmem_hva(&gm, not_ram[i], 1));
		{
			uint64_t h, sz;

			CHECK_EQ(gmem_lookup(&gm, not_ram[i], &h, &sz), -1);   /* shadow paging's map too */
		}
		CHECK_EQ(gmem_read(&gm, not_ram[i], back, 1), -EFAULT);
		CHECK_EQ(gmem_write(&gm, not_ram[i], msg, 1), -EFAULT);
	}
	CHECK_EQ(gmem_write(&gm, GMEM_HOLE_START - 4, msg, 8), -EFAULT);   /* runs into the hole */
	CHECK_EQ(gmem_read(&gm, GMEM_HIGH_BASE - 4, back, 8), -EFAULT);
	CHECK(!gmem_hva(&gm, GMEM_HOLE_START - 1, 2));
	CHECK_EQ(gm.first_touch_exits, mode == GMEM_EAGER ? 0 : 4);
	CHECK_EQ(gm.touched_chunks, mode == GMEM_EAGER ? gm.nchunks : 4);

	/* What gmem took: the partition (EAGER, LAZY) or the 4 touched chunks, its tables and map. */
	took = mode == GMEM_DEMAND ? 4 * (gm.chunk / PAGE_SIZE) : size / PAGE_SIZE;
	CHECK_EQ(fake_pmm_outstanding(), took + gm.ept.tables + gm.map_nodes + 1);
	if (mode == GMEM_DEMAND)
		CHECK(fake_pmm_outstanding() > before);
	else
		CHECK_EQ(fake_pmm_outstanding(), before);   /* touching EAGER or LAZY memory never allocates */
	gmem_destroy(&gm);
	CHECK_EQ(fake_pmm_outstanding(), 1);   /* the device page is its owner's */
	pmm_free_page(dev);
	CHECK_EQ(fake_pmm_outstanding(), 0);
	fake_pmm_fini();
}

static void test_hole(void)
{
	hole_case(GMEM_EAGER, SIZE_2M);
	hole_case(GMEM_LAZY, SIZE_2M);
	hole_case(GMEM_LAZY, PAGE_SIZE);
	hole_case(GMEM_DEMAND, SIZE_2M);
	hole_case(GMEM_DEMAND, PAGE_SIZE);
}

/* gmem_lookup, shadow paging's GPA map: RAM as backed now, never backing it; the block is 2 MiB only
 * where the chunk (EAGER: the partition) keeps GPA and HPA congruent modulo 2 MiB. */
static void lookup_case(enum gmem_mode mode, uint64_t chunk)
{
	const uint64_t size = 8ull << 20, gpas[] = { 0, 0x1234, SIZE_2M + 0x5678, size - 1 };
	struct gmem gm;
	uint64_t hpa, bsize;

	setup();
	CHECK_EQ(gmem_create(&gm, mode, size, chunk, ALL_SIZES), 0);
	for (unsigned i = 0; i < sizeof(gpas) / sizeof(gpas[0]) && mode != GMEM_EAGER; i++)
		CHECK_EQ(gmem_lookup(&gm, gpas[i], &hpa, &bsize), -1);         /* not backed, and not backed by it */
	CHECK_EQ(gm.touched_chunks, mode == GMEM_EAGER ? gm.nchunks : 0);
	for (unsigned i = 0; i < sizeof(gpas) / sizeof(gpas[0]); i++) {
		uint64_t g = gpas[i];

		CHECK(gmem_hva(&gm, g, 1) != NULL);
		CHECK_EQ(gmem_lookup(&gm, g, &hpa, &bsize), 0);
		CHECK(phys_to_virt(hpa) == gmem_hva(&gm, g, 1));
		CHECK_EQ(bsize, chunk == SIZE_2M || mode == GMEM_EAGER ? SIZE_2M : PAGE_SIZE);
		CHECK_EQ((hpa ^ g) & (bsize - 1), 0);
	}
	CHECK_EQ(gmem_lookup(&gm, size, &hpa, &bsize), -1);
	gmem_destroy(&gm);
	teardown();
}

static void test_lookup(void)
{
	lookup_case(GMEM_EAGER, SIZE_2M);
	lookup_case(GMEM_LAZY, SIZE_2M);
	lookup_case(GMEM_LAZY, PAGE_SIZE);
	lookup_case(GMEM_DEMAND, SIZE_2M);
	lookup_case(GMEM_DEMAND, PAGE_SIZE);
}

/* The layout itself: up to 3 GiB one range, as before the hole; beyond, the rest from 4 GiB. */
static void test_layout(void)
{
	struct gmem_range r[GMEM_MAX_RANGES];
	uint64_t off;

	CHECK_EQ(gmem_layout(0, r), 0);
	CHECK_EQ(gmem_layout(32ull << 20, r), 1);
	CHECK(r[0].base == 0 && r[0].len == 32ull << 20 && r[0].offset == 0);
	CHECK_EQ(gmem_layout(3ull << 30, r), 1);
	CHECK(r[0].base == 0 && r[0].len == 3ull << 30);
	CHECK_EQ(gmem_layout((3ull << 30) + SIZE_2M, r), 2);
	CHECK(r[1].base == 4ull << 30 && r[1].len == SIZE_2M && r[1].offset == 3ull << 30);
	CHECK_EQ(gmem_layout(64ull << 30, r), 2);
	CHECK(r[1].base + r[1].len == 65ull << 30);
	CHECK_EQ(gmem_low_end(32ull << 20), 32ull << 20);
	CHECK_EQ(gmem_low_end(5ull << 30), 3ull << 30);
	CHECK(gmem_layout_contains(5ull << 30, (4ull << 30) + 5, 3, &off) && off == (3ull << 30) + 5);
	CHECK(!gmem_layout_contains(5ull << 30, 0xFEE00000, 1, NULL));
	CHECK(!gmem_layout_contains(5ull << 30, 0, 0, NULL));
	CHECK(!gmem_layout_contains(5ull << 30, ~0ull, 2, NULL));
	CHECK(!gmem_layout_contains(5ull << 30, 5, ~0ull, NULL));
	/* The hole covers every device address the platform decodes. */
	CHECK(GMEM_HOLE_START <= 0xFEC00000 && GMEM_HIGH_BASE > 0xFEE00FFF);
}

/*
 * The same GPA map written in both formats and walked back: the same walk (levels, indexes, page sizes,
 * HPAs), and in each format exactly the entry bits it must have. EPT: tables RWX, leaves the caller's
 * flags (+ bit 7 above level 1), as before NPT existed. NPT: P | R/W | U/S at every level (U/S on every
 * level: APM Vol. 2, 15.25.5), PS on large leaves, NX where exec is not granted, PWT|PCD for UC.
 */
static void check_entries(const struct ept_walk *w, enum ept_format f, uint64_t leaf_want)
{
	for (unsigned i = 0; i < w->nsteps; i++) {
		uint64_t e = w->steps[i].entry, low = e & ~EPT_ADDR_MASK;
		bool leaf = i == w->nsteps - 1;

		if (!leaf)
			CHECK_EQ(low, f == EPT_FORMAT_NPT ? NPT_TABLE : EPT_RWX);
		else
			CHECK_EQ(low, leaf_want | (w->page_size > PAGE_SIZE ? EPT_LARGE : 0));
		if (f == EPT_FORMAT_NPT)
			CHECK_EQ(e & NPT_US, NPT_US);
	}
}

static void test_formats(void)
{
	static const struct { uint64_t gpa, hpa, size, flags; } maps[] = {
		{ 0,                 0x80000000ull,  SIZE_1G,           WB_RWX },        /* one 1G leaf */
		{ SIZE_1G,           0xc0000000ull,  4 * SIZE_2M,       WB_RWX },        /* 2M leaves */
		{ SIZE_1G + 0x900000, 0x123456000ull, 3 * PAGE_SIZE,    WB_RWX },        /* 4K leaves */
		{ 0xfee00000ull,     0x7ff000ull,    PAGE_SIZE,         EPT_READ | EPT_WRITE | (EPT_MT_UC << EPT_MT_SHIFT) },
		{ 5ull << 30,        0x200000000ull, SIZE_2M,           EPT_READ | (EPT_MT_WB << EPT_MT_SHIFT) },
	};
	static const uint64_t probes[] = { 0, 0x12345, SIZE_1G - 1, SIZE_1G, SIZE_1G + 0x7ff123, SIZE_1G + 0x901008,
					   SIZE_1G + 0x903000, 0xfee00040ull, 0xfee01000ull, (5ull << 30) + 0x1fffff,
					   (5ull << 30) + SIZE_2M, 1ull << 47, 1ull << 48 };
	struct ept t[2];
	unsigned i, p;

	setup();
	for (unsigned f = 0; f < 2; f++) {
		CHECK_EQ(ept_init_format(&t[f], ALL_SIZES, f ? EPT_FORMAT_NPT : EPT_FORMAT_EPT), 0);
		for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
			CHECK_EQ(ept_map(&t[f], maps[i].gpa, maps[i].hpa, maps[i].size, maps[i].flags), 0);
	}
	CHECK_EQ(t[0].tables, t[1].tables);
	for (p = 0; p < sizeof(probes) / sizeof(probes[0]); p++) {
		struct ept_walk w[2];
		uint64_t flags = 0;

		for (i = 0; i < sizeof(maps) / sizeof(maps[0]); i++)
			if (probes[p] >= maps[i].gpa && probes[p] - maps[i].gpa < maps[i].size)
				flags = maps[i].flags;
		CHECK_EQ(ept_walk(&t[0], probes[p], &w[0]), flags != 0);
		CHECK_EQ(ept_walk(&t[1], probes[p], &w[1]), flags != 0);
		CHECK_EQ(w[0].nsteps, w[1].nsteps);
		CHECK_EQ(w[0].hpa, w[1].hpa);
		CHECK_EQ(w[0].page_size, w[1].page_size);
		CHECK_EQ(w[0].stop_level, w[1].stop_level);
		for (i = 0; i < w[0].nsteps && i < w[1].nsteps; i++) {
			CHECK_EQ(w[0].steps[i].level, w[1].steps[i].level);
			CHECK_EQ(w[0].steps[i].index, w[1].steps[i].index);
		}
		if (flags) /* the leaves point at the same page (the tables above them are each map's own) */
			CHECK_EQ(w[0].steps[w[0].nsteps - 1].entry & EPT_ADDR_MASK & ~(w[0].page_size - 1),
				 w[1].steps[w[1].nsteps - 1].entry & EPT_ADDR_MASK & ~(w[1].page_size - 1));
		if (!flags)
			continue;
		check_entries(&w[0], EPT_FORMAT_EPT, flags);
		check_entries(&w[1], EPT_FORMAT_NPT, NPT_P | NPT_US |
			      (flags & EPT_WRITE ? NPT_RW : 0) | (flags & EPT_EXEC ? 0 : NPT_NX) |
			      (((flags >> EPT_MT_SHIFT) & 7) == EPT_MT_UC ? NPT_MT_UC : 0));
	}
	/* NPT has no execute-only page and no PAT entry for WT here: refused, nothing changed. */
	CHECK_EQ(ept_map(&t[1], 8ull << 30, 0, PAGE_SIZE, EPT_EXEC | (EPT_MT_WB << EPT_MT_SHIFT)), -EINVAL);
	CHECK_EQ(ept_map(&t[1], 8ull << 30, 0, PAGE_SIZE, EPT_RWX | (4ull << EPT_MT_SHIFT)), -EINVAL);
	CHECK_EQ(ept_map(&t[0], 8ull << 30, 0, PAGE_SIZE, EPT_EXEC | (EPT_MT_WB << EPT_MT_SHIFT)), 0);
	CHECK_EQ(ept_unmap_4k(&t[1], 0xfee00000ull), 0);
	CHECK(!ept_translate(&t[1], 0xfee00000ull, NULL, NULL, NULL));
	CHECK_EQ(ept_ncr3(&t[1]), t[1].root);
	ept_destroy(&t[0]);
	ept_destroy(&t[1]);

	/* Through gmem: a DEMAND guest in each format, the same chunks touched, the same shape. */
	for (unsigned f = 0; f < 2; f++) {
		struct gmem gm;
		struct ept_walk w;
		uint64_t hpa;

		CHECK_EQ(gmem_create_format(&gm, f ? EPT_FORMAT_NPT : EPT_FORMAT_EPT, GMEM_DEMAND, 16ull << 20,
					    SIZE_2M, ALL_SIZES), 0);
		CHECK_EQ(gm.ept.format, f ? EPT_FORMAT_NPT : EPT_FORMAT_EPT);
		CHECK_EQ(gmem_touch(&gm, 0x400123, true), GMEM_MAPPED);
		CHECK(ept_walk(&gm.ept, 0x400123, &w));
		CHECK_EQ(w.nsteps, 3);
		CHECK_EQ(w.page_size, SIZE_2M);
		check_entries(&w, f ? EPT_FORMAT_NPT : EPT_FORMAT_EPT, f ? NPT_P | NPT_RW | NPT_US : WB_RWX);
		CHECK(gmem_hva(&gm, 0x400123, 1) != NULL);
		CHECK(ept_translate(&gm.ept, 0x400123, &hpa, NULL, NULL));
		CHECK_EQ(phys_to_virt(hpa), gmem_hva(&gm, 0x400123, 1));
		gmem_destroy(&gm);
	}
	teardown();
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_eager);
	RUN(test_lazy);
	RUN(test_lazy_hypervisor_touch);
	RUN(test_demand);
	RUN(test_race);
	RUN(test_entry_read);
	RUN(test_hva);
	RUN(test_create_fails);
	RUN(test_layout);
	RUN(test_hole);
	RUN(test_lookup);
	RUN(test_formats);
	return unit_report(argv[0]);
}
