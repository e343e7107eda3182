/* Guest memory: where one guest's RAM lies (gmem/layout.h), how it is backed by host memory, and its
 * mapping in the guest's EPT or nested page table (one of the two formats of ept/ept.h). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86/spinlock.h"
#include "ept/ept.h"
#include "gmem/layout.h"

/*
 * When a guest's RAM gets host memory behind it:
 *
 *   GMEM_EAGER   all of it at create: a zeroed contiguous partition (pmm_carve_partition), mapped
 *                RWX WB with the largest pages the CPU offers. No EPT violation ever happens in RAM.
 *   GMEM_LAZY    the contiguous partition is reserved at create (not cleared) and every EPT table is
 *                pre-allocated (ept_prepare); nothing is mapped. The first touch of a chunk clears it
 *                and maps it. After a successful create nothing can fail for lack of memory.
 *   GMEM_DEMAND  nothing is reserved: the first touch of a chunk takes it (and any EPT table it needs)
 *                from free memory, clears it and maps it. That can fail (GMEM_NOMEM): the caller
 *                stops the guest.
 *
 * A chunk is the unit of first touch: 2 MiB or 4 KiB. It keeps its size for the guest's life: a page
 * is never split or merged while the guest runs, which is what the iTLB multihit erratum
 * (CVE-2018-12207) punishes.
 *
 * RAM is the ranges of gmem_layout (a hole for devices from 3 GiB to 4 GiB); only they are backed,
 * touched, copied or freed here. gmem keeps its own record of which host chunk backs each chunk of RAM
 * (LAZY and DEMAND: the chunk map; EAGER: the partition); the EPT is a view it writes, never read back
 * to learn what gmem owns. What others map into the EPT outside RAM (gmem_map_device) is not gmem's.
 */
enum gmem_mode { GMEM_EAGER, GMEM_LAZY, GMEM_DEMAND };

/* What gmem_touch found. */
enum gmem_fault {
	GMEM_MAPPED,   /* this call backed and mapped the chunk */
	GMEM_PRESENT,  /* the chunk was mapped already: another vCPU won the race, or (on an EPT
			  violation) the access broke the page's permissions: the caller decides */
	GMEM_OUTSIDE,  /* the GPA is not RAM */
	GMEM_NOMEM,    /* no host memory (GMEM_DEMAND) to back the chunk: stop this guest */
};

struct gmem {
	enum gmem_mode mode;
	uint64_t size;               /* bytes of RAM, a multiple of chunk */
	struct gmem_range ram[GMEM_MAX_RANGES]; /* where it lies: gmem_layout(size) */
	unsigned nram;
	uint64_t chunk;              /* the chunk size chosen: SIZE_2M, or PAGE_SIZE */
	uint64_t base;               /* EAGER/LAZY: HPA of the partition; DEMAND: 0 */
	uint64_t nchunks;            /* size / chunk */
	uint64_t touched_chunks;     /* chunks mapped so far (EAGER: all of them) */
	uint64_t first_touch_exits;  /* EPT-violation exits resolved by mapping a chunk */
	uint64_t map_root;           /* LAZY/DEMAND: HPA of the chunk map's top node (gmem.c) */
	unsigned map_levels;         /*   its depth: 512^levels >= nchunks */
	uint64_t map_nodes;          /*   pages it uses */
	struct ept ept;              /* the guest's EPT: RAM in it belongs to gmem */
	spinlock_t lock;             /* serializes check-back-map of a chunk and every EPT change */
};

/*
 * Sets up the guest's RAM: `size` bytes (nonzero, a multiple of `chunk`) laid out by gmem_layout (the
 * part beyond 3 GiB from 4 GiB on), `chunk` SIZE_2M or PAGE_SIZE;
 * 2 MiB chunks need 2 MiB EPT pages in `ept_page_sizes` (enum ept_page_size, what the CPU offers),
 * else gm->chunk falls back to 4 KiB. 0, -EINVAL, or -ENOMEM (then nothing is left allocated).
 * The EPT (gm->ept, for ept_pointer) is ready on success.
 */
int gmem_create(struct gmem *gm, enum gmem_mode mode, uint64_t size, uint64_t chunk, unsigned ept_page_sizes);

/* gmem_create with the map's tables in `format` (EPT for VMX, NPT for SVM: ept/ept.h); gmem_create is
 * EPT_FORMAT_EPT. Everything else (modes, chunks, the chunk map) is the same in both. */
int gmem_create_format(struct gmem *gm, enum ept_format format, enum gmem_mode mode, uint64_t size, uint64_t chunk,
		       unsigned ept_page_sizes);

/*
 * Backs and maps the chunk holding `gpa` if it is not mapped yet (GMEM_OUTSIDE when gpa is not RAM). Called on an EPT violation
 * (count_exit true: a mapping counts in first_touch_exits) or by the hypervisor before it writes
 * guest memory (count_exit false). A chunk reads as zero when the guest first sees it. Safe from any
 * number of CPUs at once: one of them maps the chunk, the others get GMEM_PRESENT.
 */
enum gmem_fault gmem_touch(struct gmem *gm, uint64_t gpa, bool count_exit);

/*
 * A hypervisor pointer to guest memory [gpa, gpa+len), which must lie within one chunk (chunks of
 * GMEM_DEMAND are not contiguous in host memory), backing and mapping it first. NULL when the range is
 * empty, leaves RAM or crosses a chunk boundary, or when memory ran out.
 */
void *gmem_hva(struct gmem *gm, uint64_t gpa, uint64_t len);

/* Where guest RAM at `gpa` is backed now, without backing it (shadow paging's GPA map, shadow.h):
 * 0 with *hpa its host address and *size the naturally aligned block around it (4 KiB or 2 MiB) that
 * lies in one RAM range and maps to a likewise aligned host block; -1 when `gpa` is not RAM or not
 * backed yet. Devices mapped with gmem_map_device are not RAM: -1. */
int gmem_lookup(struct gmem *gm, uint64_t gpa, uint64_t *hpa, uint64_t *size);

/* Copy into / out of guest memory across any number of chunks, backing them first.
 * 0, -EFAULT when [gpa, gpa+len) is not inside RAM, or -ENOMEM. gmem_read of 4 or 8 bytes at an
 * address so aligned is one atomic load (a guest paging entry, read as the CPU reads it). */
int gmem_write(struct gmem *gm, uint64_t gpa, const void *src, uint64_t len);
int gmem_read(struct gmem *gm, uint64_t gpa, void *dst, uint64_t len);

/* Is [gpa, gpa + len) (len > 0) inside one range of the guest's RAM? */
bool gmem_is_ram(const struct gmem *gm, uint64_t gpa, uint64_t len);

/* Maps [gpa, gpa + size) outside RAM to host memory that is not gmem's (the APIC-access page), with
 * `flags` (ept_map's). -EEXIST when the range touches RAM or is mapped already, else ept_map's result.
 * The caller owns that memory and frees it; gmem_destroy only removes the mapping with the EPT. */
int gmem_map_device(struct gmem *gm, uint64_t gpa, uint64_t hpa, uint64_t size, uint64_t flags);

/* Removes the 4 KiB device mapping at `gpa` (outside RAM: -EINVAL for a RAM GPA), as ept_unmap_4k;
 * the caller invalidates cached translations (INVEPT). */
int gmem_unmap_device(struct gmem *gm, uint64_t gpa);

/* Host memory backing the guest now: touched chunks times the chunk size (EAGER: size). */
uint64_t gmem_touched_bytes(const struct gmem *gm);

/* Unmaps everything, frees the EPT tables and the chunk map and returns to pmm the memory gmem took
 * (the partition, or each chunk the map records), nothing else. No vCPU may run the guest
 * any more (and none may hold this EPT's cached translations: VMCLEAR/INVEPT first). */
void gmem_destroy(struct gmem *gm);
