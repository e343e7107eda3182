/* Guest memory: backs one guest's RAM eagerly, lazily or on demand, and maps it in the guest's EPT. */
#include "gmem/gmem.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/string.h"
#include "pmm/pmm.h"

/*
 * Where clearing happens. No guest may see what another guest (or the hypervisor) left in memory, yet
 * nothing is cleared when memory goes back to pmm: every path that hands memory to a guest clears it
 * first instead. pmm_carve_partition zeroes the EAGER partition; LAZY and DEMAND clear each chunk on
 * its first touch, before the EPT entry that lets the guest reach it is written (never after: a vCPU
 * could read the old contents in between). So destroy stays cheap and nothing is cleared twice.
 */

/* RAM is ordinary write-back memory the guest may read, write and execute. The guest's PAT is
 * ignored (EPT_IGNORE_PAT, SDM Vol. 3C, 29.3.7.2): the host maps the same memory write-back, and
 * mixing memory types for one page is what the SDM warns against (Vol. 3A, 13.12.4). */
#define GMEM_EPT_FLAGS  (EPT_RWX | (EPT_MT_WB << EPT_MT_SHIFT) | EPT_IGNORE_PAT)

static uint64_t chunk_pages(const struct gmem *gm)
{
	return gm->chunk / PAGE_SIZE;
}

/* pmm_carve_partition rounds the partition up to 2 MiB; give back exactly what it took. */
static uint64_t partition_pages(const struct gmem *gm)
{
	if (gm->mode == GMEM_EAGER)
		return ((gm->size + SIZE_2M - 1) & ~(SIZE_2M - 1)) / PAGE_SIZE;
	return gm->size / PAGE_SIZE;
}

int gmem_create(struct gmem *gm, enum gmem_mode mode, uint64_t size, uint64_t chunk, unsigned ept_page_sizes)
{
	int err;

	if ((mode != GMEM_EAGER && mode != GMEM_LAZY && mode != GMEM_DEMAND) ||
	    (chunk != SIZE_2M && chunk != PAGE_SIZE) || !size || size % chunk)
		return -EINVAL;
	memset(gm, 0, sizeof(*gm));
	gm->mode = mode;
	gm->size = size;
	/* A 2 MiB chunk is one 2 MiB EPT leaf; without that page size it would be 512 leaves, and
	 * touching one 4 KiB page would commit 2 MiB for nothing. */
	gm->chunk = (chunk == SIZE_2M && (ept_page_sizes & EPT_PAGE_2M)) ? SIZE_2M : PAGE_SIZE;
	gm->nchunks = size / gm->chunk;
	gm->lock = (spinlock_t)SPINLOCK_INIT;

	err = ept_init(&gm->ept, ept_page_sizes);
	if (err)
		return err;

	switch (mode) {
	case GMEM_EAGER:
		/* A 1 GiB-aligned partition lets the EPT use 1 GiB leaves (fewer TLB misses); take one
		 * when the CPU has that page size and memory allows, else any 2 MiB-aligned one. */
		if (!(ept_page_sizes & EPT_PAGE_1G) || size < SIZE_1G ||
		    pmm_carve_partition(size, SIZE_1G, &gm->base))
			if ((err = pmm_carve_partition(size, SIZE_2M, &gm->base)))
				break;
		err = ept_map(&gm->ept, 0, gm->base, size, GMEM_EPT_FLAGS);
		if (err) {
			pmm_free_pages(gm->base, partition_pages(gm));
			break;
		}
		gm->touched_chunks = gm->nchunks;
		break;
	case GMEM_LAZY:
		/* 2 MiB-aligned so that a 2 MiB chunk at a 2 MiB GPA is one 2 MiB leaf. */
		err = pmm_alloc_pages(partition_pages(gm), SIZE_2M, &gm->base);
		if (err)
			break;
		err = ept_prepare(&gm->ept, 0, size, gm->chunk);
		if (err)
			pmm_free_pages(gm->base, partition_pages(gm));
		break;
	case GMEM_DEMAND:
		break;
	}
	if (err) {
		ept_destroy(&gm->ept);
		gm->base = 0;
		return err;
	}
	return 0;
}

/* Host memory for the chunk at chunk-aligned `gpa`, not yet cleared; 0 when there is none. */
static uint64_t chunk_backing(struct gmem *gm, uint64_t gpa)
{
	uint64_t hpa;

	if (gm->mode == GMEM_LAZY)
		return gm->base + gpa;
	if (gm->chunk == PAGE_SIZE)
		return pmm_alloc_page();
	return pmm_alloc_pages(chunk_pages(gm), SIZE_2M, &hpa) ? 0 : hpa;
}

static void chunk_release(struct gmem *gm, uint64_t hpa)
{
	if (gm->mode != GMEM_DEMAND)
		return; /* part of the partition, freed with it */
	if (gm->chunk == PAGE_SIZE)
		pmm_free_page(hpa);
	else
		pmm_free_pages(hpa, chunk_pages(gm));
}

enum gmem_fault gmem_touch(struct gmem *gm, uint64_t gpa, bool count_exit)
{
	uint64_t at = gpa & ~(gm->chunk - 1);
	enum gmem_fault ret = GMEM_MAPPED;
	uint64_t hpa;
	int err;

	if (gpa >= gm->size)
		return GMEM_OUTSIDE;
	/*
	 * Check, back, clear and map under one lock: two vCPUs faulting on one chunk must not both map
	 * it (a DEMAND chunk would leak, a LAZY one be cleared under a guest already writing to it).
	 * Clearing 2 MiB under the lock makes the other vCPUs of this guest wait that long at most once
	 * per chunk.
	 */
	spin_lock(&gm->lock);
	if (ept_translate(&gm->ept, at, NULL, NULL, NULL)) {
		ret = GMEM_PRESENT;
		goto out;
	}
	hpa = chunk_backing(gm, at);
	if (!hpa) {
		ret = GMEM_NOMEM;
		goto out;
	}
	memset(phys_to_virt(hpa), 0, gm->chunk);
	err = ept_map(&gm->ept, at, hpa, gm->chunk, GMEM_EPT_FLAGS);
	if (err) {
		/* DEMAND: a table could not be had. LAZY: cannot happen (ept_prepare), but if the
		 * invariant broke, stopping this guest is enough. */
		if (gm->mode != GMEM_DEMAND)
			pr_err("gmem: mapping GPA 0x%llx failed (%d) despite prepared tables\n",
			       (unsigned long long)at, err);
		chunk_release(gm, hpa);
		ret = GMEM_NOMEM;
		goto out;
	}
	__atomic_store_n(&gm->touched_chunks, gm->touched_chunks + 1, __ATOMIC_RELAXED);
	if (count_exit)
		gm->first_touch_exits++;
out:
	spin_unlock(&gm->lock);
	return ret;
}

void *gmem_hva(struct gmem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t hpa;

	if (!len || gpa >= gm->size || len > gm->size - gpa ||
	    (gpa & ~(gm->chunk - 1)) != ((gpa + len - 1) & ~(gm->chunk - 1)))
		return NULL;
	if (gmem_touch(gm, gpa, false) == GMEM_NOMEM)
		return NULL;
	/* Mapped now, and a chunk is never unmapped before gmem_destroy: the walk cannot miss. */
	if (!ept_translate(&gm->ept, gpa, &hpa, NULL, NULL))
		return NULL;
	return phys_to_virt(hpa);
}

/* Copies between guest memory and `buf`, one chunk at a time (DEMAND chunks are scattered). */
static int gmem_copy(struct gmem *gm, uint64_t gpa, void *buf, uint64_t len, bool to_guest)
{
	unsigned char *p = buf;

	if (gpa > gm->size || len > gm->size - gpa)
		return -EFAULT;
	while (len) {
		uint64_t n = gm->chunk - (gpa & (gm->chunk - 1));
		void *hva;

		if (n > len)
			n = len;
		hva = gmem_hva(gm, gpa, n);
		if (!hva)
			return -ENOMEM;
		if (to_guest)
			memcpy(hva, p, n);
		else
			memcpy(p, hva, n);
		gpa += n;
		p += n;
		len -= n;
	}
	return 0;
}

int gmem_write(struct gmem *gm, uint64_t gpa, const void *src, uint64_t len)
{
	return gmem_copy(gm, gpa, (void *)src, len, true);
}

int gmem_read(struct gmem *gm, uint64_t gpa, void *dst, uint64_t len)
{
	return gmem_copy(gm, gpa, dst, len, false);
}

uint64_t gmem_touched_bytes(const struct gmem *gm)
{
	if (gm->mode == GMEM_EAGER)
		return gm->size;
	return __atomic_load_n(&gm->touched_chunks, __ATOMIC_RELAXED) * gm->chunk;
}

void gmem_destroy(struct gmem *gm)
{
	uint64_t gpa, hpa;

	/* The EPT is the record of which DEMAND chunk lives where: read it before freeing it. */
	if (gm->mode == GMEM_DEMAND && gm->touched_chunks) {
		for (gpa = 0; gpa < gm->size; gpa += gm->chunk)
			if (ept_translate(&gm->ept, gpa, &hpa, NULL, NULL))
				chunk_release(gm, hpa);
	} else if (gm->mode != GMEM_DEMAND && gm->base) {
		pmm_free_pages(gm->base, partition_pages(gm));
	}
	ept_destroy(&gm->ept);
	gm->base = 0;
	gm->touched_chunks = 0;
}
