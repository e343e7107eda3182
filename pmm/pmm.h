/* Physical memory: the memory map, the page allocator and guest partitions. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "arch/x86/paging.h"  /* phys_to_virt: the host map is 1:1 */

#define PAGE_SIZE      4096ull
#define PAGE_SHIFT     12
#define SIZE_2M        (2ull << 20)
#define SIZE_1G        (1ull << 30)

/* Memory-map region types, numbered as Multiboot2 numbers them (spec 3.6.8). */
enum mem_type {
	MEM_USABLE = 1,
	MEM_RESERVED = 2,
	MEM_ACPI_RECLAIMABLE = 3,
	MEM_ACPI_NVS = 4,
	MEM_BAD = 5,
};

struct mem_region {
	uint64_t base;
	uint64_t len;
	uint32_t type; /* enum mem_type */
};

/* Is [base, base + len) all MEM_USABLE in `map` (n regions, unsorted, possibly overlapping)? */
bool pmm_range_usable(const struct mem_region *map, size_t n, uint64_t base, uint64_t len);

/*
 * Builds the free-page set: every whole page of MEM_USABLE regions, minus the first MiB and minus each
 * range in `reserved` (the hypervisor image, the Multiboot2 information, the modules, ...). The map may
 * be unsorted, overlapping (reserved wins over usable) and unaligned (usable ranges shrink to whole
 * pages). The allocator's own bookkeeping is placed in free memory and reserved too.
 * Returns 0, or -ENOMEM when there is no usable memory at all.
 */
int pmm_init(const struct mem_region *map, size_t n, const struct mem_region *reserved, size_t nres);

/* One page; returns its physical address, or 0 when memory is exhausted (page 0 is never handed out). */
uint64_t pmm_alloc_page(void);
void pmm_free_page(uint64_t phys);
/* One page below the physical address `limit` (a PAE-format page table's top, whose address must fit
 * CR3's 32 bits), the lowest free one; 0 when there is none. Free it with pmm_free_page. */
uint64_t pmm_alloc_page_below(uint64_t limit);

/* Use-after-free detection (the hypervisor's poison=1, for tests): pmm_free_page fills the page with
 * a pattern (its first word tagged with its address), and pmm_alloc_page, before handing out a page
 * so tagged, checks the pattern: a page written after it was freed is reported, "hv: pmm: page 0x...
 * was written after it was freed: word N is 0x... (of M words changed)". Only single pages: the
 * hypervisor's own (VMCS, APIC pages, EPT tables, 4 KiB guest chunks). */
void pmm_set_poison(bool on);

/* `count` contiguous pages whose first address is a multiple of `align` (a power of two, >= PAGE_SIZE).
 * 0 and *phys set, or -ENOMEM / -EINVAL. Not zeroed. */
int pmm_alloc_pages(size_t count, uint64_t align, uint64_t *phys);
void pmm_free_pages(uint64_t phys, size_t count);

/* A guest partition: `size` bytes rounded up to 2 MiB, contiguous, zeroed, aligned to `align` (a
 * power of two of at least 2 MiB; 1 GiB lets the EPT map it with 1 GiB pages).
 * 0 and *phys set, or -EINVAL / -ENOMEM (nothing is allocated then). Give it back with pmm_free_pages. */
int pmm_carve_partition(uint64_t size, uint64_t align, uint64_t *phys);

uint64_t pmm_usable_bytes(void); /* all usable memory in the map, before reservations */
uint64_t pmm_free_bytes(void);   /* what the allocator can still hand out */

