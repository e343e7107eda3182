/* A fake page allocator for host unit tests: pmm.h over the fake physical memory, with a settable
 * limit (to run out of memory on purpose) and leak accounting. Not the real pmm/pmm.c. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/errno.h"
#include "pmm/pmm.h"
#include "tests/unit/unit.h"

#include "tests/unit/fake_pmm.h"

#define POISON 0xAA /* what freshly handed-out, not-zeroed memory holds: never 0, so "forgot to clear" shows */

static uint64_t base, npages, outstanding, limit, alloc_calls;
static unsigned char *used; /* one byte per page: simple beats clever here */
#define USED     1          /* handed out, not freed */
#define WRITTEN  2          /* may hold something other than zero (calloc's fresh memory does not) */
static bool poison_on_alloc;
static uint64_t lowest_free;  /* every page below it is in use: where a search starts */
static bool top_down;         /* pmm_alloc_page takes the highest free page */

void fake_pmm_init(uint64_t phys_base, uint64_t size)
{
	fake_pmm_init_sparse(phys_base, size);
	poison_on_alloc = true;
	memset(phys_to_virt(base), POISON, npages * PAGE_SIZE);
	memset(used, WRITTEN, npages);
}

void fake_pmm_init_sparse(uint64_t phys_base, uint64_t size)
{
	fake_phys_init(phys_base, size);
	base = phys_base;
	npages = size / PAGE_SIZE;
	used = calloc(npages, 1);
	if (!used)
		abort();
	outstanding = 0;
	alloc_calls = 0;
	limit = UINT64_MAX;
	poison_on_alloc = false;
	lowest_free = 0;
	top_down = false;
}

void fake_pmm_set_top_down(bool on)
{
	top_down = on;
}

void fake_pmm_fini(void)
{
	free(used);
	used = NULL;
	fake_phys_fini();
}

/* At most `pages` pages outstanding from now on: fake_pmm_set_limit(fake_pmm_outstanding()) exhausts. */
void fake_pmm_set_limit(uint64_t pages)
{
	limit = pages;
}

uint64_t fake_pmm_outstanding(void)
{
	return outstanding;
}

uint64_t fake_pmm_alloc_calls(void)
{
	return alloc_calls;
}

/* Dirties every free page, as memory a previous owner left behind. */
void fake_pmm_fill_free(int byte)
{
	uint64_t i;

	for (i = 0; i < npages; i++)
		if (!(used[i] & USED)) {
			used[i] |= WRITTEN;
			memset(phys_to_virt(base + i * PAGE_SIZE), byte, PAGE_SIZE);
		}
}

static int alloc_run(size_t count, uint64_t align, uint64_t *phys)
{
	uint64_t i, j;

	alloc_calls++;
	if (!count || !align || (align & (align - 1)) || align < PAGE_SIZE)
		return -EINVAL;
	if (outstanding + count > limit)
		return -ENOMEM;
	for (i = lowest_free; i + count <= npages; i++) {
		uint64_t addr = base + i * PAGE_SIZE;

		if (addr == 0 || (addr & (align - 1)))
			continue;
		for (j = 0; j < count && !(used[i + j] & USED); j++)
			;
		if (j < count) {
			i += j; /* skip past the used page */
			continue;
		}
		for (j = 0; j < count; j++)
			used[i + j] |= USED | (poison_on_alloc ? WRITTEN : 0);
		outstanding += count;
		while (lowest_free < npages && (used[lowest_free] & USED))
			lowest_free++;
		if (poison_on_alloc)
			memset(phys_to_virt(addr), POISON, count * PAGE_SIZE);
		*phys = addr;
		return 0;
	}
	return -ENOMEM;
}

/* Hands out the free page `i`. */
static uint64_t take_page(uint64_t i)
{
	uint64_t addr = base + i * PAGE_SIZE;

	used[i] |= USED | (poison_on_alloc ? WRITTEN : 0);
	outstanding++;
	while (lowest_free < npages && (used[lowest_free] & USED))
		lowest_free++;
	if (poison_on_alloc)
		memset(phys_to_virt(addr), POISON, PAGE_SIZE);
	return addr;
}

static void free_run(uint64_t phys, size_t count)
{
	uint64_t i, first = (phys - base) / PAGE_SIZE;

	if (phys < base || (phys & (PAGE_SIZE - 1)) || first + count > npages) {
		fprintf(stderr, "fake pmm: free of 0x%llx (%zu pages) outside memory\n",
			(unsigned long long)phys, count);
		abort();
	}
	for (i = 0; i < count; i++) {
		if (!(used[first + i] & USED)) {
			fprintf(stderr, "fake pmm: double free of page 0x%llx\n",
				(unsigned long long)(phys + i * PAGE_SIZE));
			abort();
		}
		used[first + i] = WRITTEN;   /* its holder may have written anything */
	}
	outstanding -= count;
	if (first < lowest_free)
		lowest_free = first;
}

uint64_t pmm_alloc_page(void)
{
	uint64_t phys;

	if (top_down) {
		/* The highest free page: the real allocator's next-fit hint once it has risen. */
		alloc_calls++;
		for (uint64_t i = npages; i-- > lowest_free && outstanding < limit;)
			if (!(used[i] & USED))
				return take_page(i);
		return 0;
	}
	return alloc_run(1, PAGE_SIZE, &phys) ? 0 : phys;
}

uint64_t pmm_alloc_page_below(uint64_t below)
{
	alloc_calls++;
	for (uint64_t i = lowest_free; i < npages && base + i * PAGE_SIZE < below && outstanding < limit; i++)
		if (!(used[i] & USED) && base + i * PAGE_SIZE != 0)
			return take_page(i);
	return 0;
}

void pmm_free_page(uint64_t phys)
{
	free_run(phys, 1);
}

int pmm_alloc_pages(size_t count, uint64_t align, uint64_t *phys)
{
	return alloc_run(count, align, phys);
}

void pmm_free_pages(uint64_t phys, size_t count)
{
	free_run(phys, count);
}

int pmm_carve_partition(uint64_t size, uint64_t align, uint64_t *phys)
{
	uint64_t rounded = (size + SIZE_2M - 1) & ~(SIZE_2M - 1);
	uint64_t i, first;
	int err;

	if (!size || align < SIZE_2M || (align & (align - 1)))
		return -EINVAL;
	/* Only pages that were ever written need clearing: a sparse fake of many GiB is never
	 * written as a whole. */
	err = alloc_run(rounded / PAGE_SIZE, align, phys);
	if (err)
		return err;
	first = (*phys - base) / PAGE_SIZE;
	for (i = 0; i < rounded / PAGE_SIZE; i++)
		if (used[first + i] & WRITTEN)
			memset(phys_to_virt(*phys + i * PAGE_SIZE), 0, PAGE_SIZE);
	return 0;
}

uint64_t pmm_usable_bytes(void)
{
	return npages * PAGE_SIZE;
}

uint64_t pmm_free_bytes(void)
{
	uint64_t free_pages = npages - outstanding;
	uint64_t under_limit = limit > outstanding ? limit - outstanding : 0;

	return (free_pages < under_limit ? free_pages : under_limit) * PAGE_SIZE;
}
