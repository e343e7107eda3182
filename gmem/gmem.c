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
 * mixing memory types for one page is what the SDM warns against (Vol. 3A, 13.12.4). An NPT map
 * gets P, R/W, U/S and the host PAT's WB entry from these (ept.h); NPT cannot ignore the guest's
 * PAT (APM Vol. 2, 15.25.8 combines both). */
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

bool gmem_is_ram(const struct gmem *gm, uint64_t gpa, uint64_t len)
{
	return gmem_layout_contains(gm->size, gpa, len, NULL);
}

/*
 * The chunk map: gmem's record of the host chunk behind each chunk of RAM (LAZY and DEMAND; an EAGER
 * guest's chunk n is simply at base + n * chunk). A radix tree over chunk numbers (RAM offset / chunk,
 * hole left out), nodes of 512 8-byte slots, like a page table of its own:
 *
 *   level map_levels ... level 2: slot = HPA of the node below | MAP_PRESENT
 *   level 1 (leaves):             slot = HPA of the chunk's host memory | MAP_PRESENT; 0 = not backed
 *
 * 64 GiB of 4 KiB chunks (2^24) take 3 levels, of 2 MiB chunks (2^15) 2. A slot changes from 0 to its
 * final value once, under gm->lock, with a release store; readers outside the lock (gmem_hva) load it
 * with acquire. Nodes are freed only by gmem_destroy.
 */
#define MAP_FANOUT   512
#define MAP_PRESENT  1ull

/* The leaf slot of chunk `n`, allocating missing nodes when `alloc`; NULL when a node is missing
 * (and could not be had). */
static uint64_t *map_slot(struct gmem *gm, uint64_t n, bool alloc)
{
	uint64_t *node = phys_to_virt(gm->map_root);

	for (unsigned level = gm->map_levels; level > 1; level--) {
		uint64_t *slot = &node[(n >> (9 * (level - 1))) % MAP_FANOUT];
		uint64_t e = __atomic_load_n(slot, __ATOMIC_ACQUIRE), phys;

		if (!e) {
			if (!alloc || !(phys = pmm_alloc_page()))
				return NULL;
			memset(phys_to_virt(phys), 0, PAGE_SIZE);
			gm->map_nodes++;
			e = phys | MAP_PRESENT;
			__atomic_store_n(slot, e, __ATOMIC_RELEASE);
		}
		node = phys_to_virt(e & ~MAP_PRESENT);
	}
	return &node[n % MAP_FANOUT];
}

/* Frees the node at `phys` (at `level`) and those below; at the leaves, DEMAND chunks go back to pmm. */
static void map_free(struct gmem *gm, uint64_t phys, unsigned level)
{
	const uint64_t *node = phys_to_virt(phys);

	for (unsigned i = 0; i < MAP_FANOUT; i++) {
		if (!node[i])
			continue;
		if (level > 1)
			map_free(gm, node[i] & ~MAP_PRESENT, level - 1);
		else if (gm->mode == GMEM_DEMAND && gm->chunk == PAGE_SIZE)
			pmm_free_page(node[i] & ~MAP_PRESENT);
		else if (gm->mode == GMEM_DEMAND)
			pmm_free_pages(node[i] & ~MAP_PRESENT, chunk_pages(gm));
	}
	pmm_free_page(phys);
	gm->map_nodes--;
}

/* An empty map deep enough for nchunks; LAZY also gets every node now, so its touches never
 * allocate. 0 or -ENOMEM (what was allocated stays, for gmem_destroy). */
static int map_create(struct gmem *gm)
{
	uint64_t n;

	gm->map_levels = 1;
	for (n = MAP_FANOUT; n < gm->nchunks; n *= MAP_FANOUT)
		gm->map_levels++;
	if (!(gm->map_root = pmm_alloc_page()))
		return -ENOMEM;
	memset(phys_to_virt(gm->map_root), 0, PAGE_SIZE);
	gm->map_nodes = 1;
	if (gm->mode == GMEM_LAZY)
		for (n = 0; n < gm->nchunks; n += MAP_FANOUT)
			if (!map_slot(gm, n, true))
				return -ENOMEM;
	return 0;
}

/* Everything gmem_create may have taken, given back: the chunk map (and DEMAND's chunks), the
 * partition, the EPT's tables. */
static void release_all(struct gmem *gm)
{
	if (gm->map_root)
		map_free(gm, gm->map_root, gm->map_levels);
	if (gm->mode != GMEM_DEMAND && gm->base)
		pmm_free_pages(gm->base, partition_pages(gm));
	ept_destroy(&gm->ept);
	gm->map_root = 0;
	gm->base = 0;
	gm->touched_chunks = 0;
}

int gmem_create(struct gmem *gm, enum gmem_mode mode, uint64_t size, uint64_t chunk, unsigned ept_page_sizes)
{
	return gmem_create_format(gm, EPT_FORMAT_EPT, mode, size, chunk, ept_page_sizes);
}

int gmem_create_format(struct gmem *gm, enum ept_format format, enum gmem_mode mode, uint64_t size, uint64_t chunk,
		       unsigned ept_page_sizes)
{
	unsigned i;
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
	/* Both ranges start at multiples of 1 GiB and have multiples of `chunk` as lengths: a chunk
	 * never straddles the hole. */
	gm->nram = gmem_layout(size, gm->ram);
	gm->lock = (spinlock_t)SPINLOCK_INIT;

	err = ept_init_format(&gm->ept, ept_page_sizes, format);
	if (err)
		return err;

	switch (mode) {
	case GMEM_EAGER:
		/* A 1 GiB-aligned partition lets the EPT use 1 GiB leaves (fewer TLB misses); take one
		 * when the CPU has that page size and memory allows, else any 2 MiB-aligned one. Each
		 * RAM range maps its own part of it (the hole maps none). */
		if (!(ept_page_sizes & EPT_PAGE_1G) || size < SIZE_1G ||
		    pmm_carve_partition(size, SIZE_1G, &gm->base))
			if ((err = pmm_carve_partition(size, SIZE_2M, &gm->base)))
				break;
		for (i = 0; i < gm->nram && !err; i++)
			err = ept_map(&gm->ept, gm->ram[i].base, gm->base + gm->ram[i].offset, gm->ram[i].len,
				      GMEM_EPT_FLAGS);
		gm->touched_chunks = gm->nchunks;
		break;
	case GMEM_LAZY:
		/* 2 MiB-aligned so that a 2 MiB chunk at a 2 MiB GPA is one 2 MiB leaf. */
		err = pmm_alloc_pages(partition_pages(gm), SIZE_2M, &gm->base);
		for (i = 0; i < gm->nram && !err; i++)
			err = ept_prepare(&gm->ept, gm->ram[i].base, gm->ram[i].len, gm->chunk);
		if (!err)
			err = map_create(gm);
		break;
	case GMEM_DEMAND:
		err = map_create(gm);
		break;
	}
	if (err) {
		release_all(gm);
		return err;
	}
	return 0;
}

/* Host memory for the chunk at RAM offset `off`, not yet cleared; 0 when there is none. */
static uint64_t chunk_backing(struct gmem *gm, uint64_t off)
{
	uint64_t hpa;

	if (gm->mode == GMEM_LAZY)
		return gm->base + off;
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
	uint64_t at = gpa & ~(gm->chunk - 1), off, hpa, *slot;
	enum gmem_fault ret = GMEM_MAPPED;
	int err;

	/* Only RAM: the hole and what lies beyond RAM are the devices' (or nobody's), even where
	 * something else is mapped there (the APIC-access page). */
	if (!gmem_layout_contains(gm->size, gpa, 1, &off))
		return GMEM_OUTSIDE;
	if (gm->mode == GMEM_EAGER)
		return GMEM_PRESENT;
	off &= ~(gm->chunk - 1);
	/*
	 * Check, back, clear and map under one lock: two vCPUs faulting on one chunk must not both map
	 * it (a DEMAND chunk would leak, a LAZY one be cleared under a guest already writing to it).
	 * Clearing 2 MiB under the lock makes the other vCPUs of this guest wait that long at most once
	 * per chunk.
	 */
	spin_lock(&gm->lock);
	slot = map_slot(gm, off / gm->chunk, gm->mode == GMEM_DEMAND);
	if (!slot) {
		ret = GMEM_NOMEM;         /* DEMAND: no page for the map (LAZY's was prepared) */
		goto out;
	}
	if (*slot) {
		ret = GMEM_PRESENT;
		goto out;
	}
	hpa = chunk_backing(gm, off);
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
	__atomic_store_n(slot, hpa | MAP_PRESENT, __ATOMIC_RELEASE);
	__atomic_store_n(&gm->touched_chunks, gm->touched_chunks + 1, __ATOMIC_RELAXED);
	if (count_exit)
		gm->first_touch_exits++;
out:
	spin_unlock(&gm->lock);
	return ret;
}

void *gmem_hva(struct gmem *gm, uint64_t gpa, uint64_t len)
{
	uint64_t off, e, *slot;

	if (!gmem_layout_contains(gm->size, gpa, len, &off) ||
	    (gpa & ~(gm->chunk - 1)) != ((gpa + len - 1) & ~(gm->chunk - 1)))
		return NULL;
	if (gm->mode == GMEM_EAGER)
		return phys_to_virt(gm->base + off);
	if (gmem_touch(gm, gpa, false) == GMEM_NOMEM)
		return NULL;
	/* Backed now, and a chunk keeps its backing until gmem_destroy: the slot is set for good. */
	slot = map_slot(gm, off / gm->chunk, false);
	e = slot ? __atomic_load_n(slot, __ATOMIC_ACQUIRE) : 0;
	if (!e)
		return NULL;
	return phys_to_virt((e & ~MAP_PRESENT) + (off & (gm->chunk - 1)));
}

int gmem_lookup(struct gmem *gm, uint64_t gpa, uint64_t *hpa, uint64_t *size)
{
	uint64_t off, e, *slot, base;

	if (!gmem_layout_contains(gm->size, gpa, 1, &off))
		return -1;
	if (gm->mode == GMEM_EAGER) {
		e = gm->base + off;
	} else {
		slot = map_slot(gm, off / gm->chunk, false);
		if (!slot || !(e = __atomic_load_n(slot, __ATOMIC_ACQUIRE)))
			return -1;
		e = (e & ~MAP_PRESENT) + (off & (gm->chunk - 1));
	}
	*hpa = e;
	*size = PAGE_SIZE;
	/* 2 MiB when the block is RAM of one range and one chunk (EAGER: the partition is contiguous)
	 * and GPA and HPA agree modulo 2 MiB. */
	base = gpa & ~(SIZE_2M - 1);
	if ((gm->mode == GMEM_EAGER || gm->chunk == SIZE_2M) && !((gpa ^ e) & (SIZE_2M - 1)) &&
	    gmem_layout_contains(gm->size, base, SIZE_2M, NULL))
		*size = SIZE_2M;
	return 0;
}

/* Copies between guest memory and `buf`, one chunk at a time (DEMAND chunks are scattered). */
static int gmem_copy(struct gmem *gm, uint64_t gpa, void *buf, uint64_t len, bool to_guest)
{
	unsigned char *p = buf;

	if (len && !gmem_is_ram(gm, gpa, len))
		return -EFAULT;
	while (len) {
		uint64_t n = gm->chunk - (gpa & (gm->chunk - 1));
		void *hva;

		if (n > len)
			n = len;
		hva = gmem_hva(gm, gpa, n);
		if (!hva)
			return -ENOMEM;
		/* An aligned 4- or 8-byte read is one load, as the CPU reads a paging-structure entry
		 * (SDM Vol. 3A, 9.1.1: aligned accesses up to 8 bytes are atomic): memcpy copies byte by
		 * byte (rep movsb), and an entry another vCPU rewrites meanwhile would read as half old,
		 * half new, a translation the guest never wrote (the shadow walker, shadow/gpt.c). */
		if (!to_guest && n == 4 && !(gpa & 3)) {
			uint32_t e = __atomic_load_n((uint32_t *)hva, __ATOMIC_RELAXED);

			memcpy(p, &e, 4);
		} else if (!to_guest && n == 8 && !(gpa & 7)) {
			uint64_t e = __atomic_load_n((uint64_t *)hva, __ATOMIC_RELAXED);

			memcpy(p, &e, 8);
		} else if (to_guest)
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

int gmem_map_device(struct gmem *gm, uint64_t gpa, uint64_t hpa, uint64_t size, uint64_t flags)
{
	int err;

	for (unsigned i = 0; i < gm->nram; i++)
		if (gpa < gm->ram[i].base + gm->ram[i].len && gpa + size > gm->ram[i].base)
			return -EEXIST;
	spin_lock(&gm->lock);
	err = ept_map(&gm->ept, gpa, hpa, size, flags);
	spin_unlock(&gm->lock);
	return err;
}

int gmem_unmap_device(struct gmem *gm, uint64_t gpa)
{
	int err;

	if (gmem_is_ram(gm, gpa, PAGE_SIZE))
		return -EINVAL;
	spin_lock(&gm->lock);
	err = ept_unmap_4k(&gm->ept, gpa);
	spin_unlock(&gm->lock);
	return err;
}

uint64_t gmem_touched_bytes(const struct gmem *gm)
{
	if (gm->mode == GMEM_EAGER)
		return gm->size;
	return __atomic_load_n(&gm->touched_chunks, __ATOMIC_RELAXED) * gm->chunk;
}

void gmem_destroy(struct gmem *gm)
{
	/* What gmem took, from its own records: never from the EPT's leaves, which may map memory
	 * that is not the guest's (gmem_map_device). */
	release_all(gm);
}
