/* The guest-physical map's tables: build, walk and tear down one guest's GPA -> HPA map in either of two
 * formats, Intel's EPT (SDM Vol. 3C, 29.3) or AMD's nested page tables (npt/npt.h, APM Vol. 2, 15.25). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* EPT paging-structure entry bits. SDM Vol. 3C, 29.3.2, Tables 29-1..29-6. */
#define EPT_READ        (1ull << 0)  /* read access */
#define EPT_WRITE       (1ull << 1)  /* write access */
#define EPT_EXEC        (1ull << 2)  /* instruction fetch (supervisor fetch with mode-based control) */
#define EPT_RWX         (EPT_READ | EPT_WRITE | EPT_EXEC)
#define EPT_MT_SHIFT    3            /* bits 5:3 of a leaf: memory type (Table 29-6) */
#define EPT_MT_UC       0ull
#define EPT_MT_WB       6ull
#define EPT_IGNORE_PAT  (1ull << 6)  /* leaf: ignore the guest's PAT */
#define EPT_LARGE       (1ull << 7)  /* PDPTE/PDE: maps a 1 GiB / 2 MiB page */
#define EPT_ACCESSED    (1ull << 8)
#define EPT_DIRTY       (1ull << 9)
#define EPT_ADDR_MASK   0x000ffffffffff000ull /* bits 51:12: physical address */

/* EPTP. SDM Vol. 3C, 25.6.11 (Table 25-9). */
#define EPTP_MT_WB      6ull         /* bits 2:0: memory type of the paging structures */
#define EPTP_WALK_4     (3ull << 3)  /* bits 5:3: page-walk length minus one */
#define EPTP_AD         (1ull << 6)  /* bit 6: enable accessed and dirty flags */

/* Page sizes a leaf may have; bitmask of what the CPU offers (IA32_VMX_EPT_VPID_CAP, SDM Vol. 3D, A.10). */
enum ept_page_size { EPT_PAGE_4K = 1 << 0, EPT_PAGE_2M = 1 << 1, EPT_PAGE_1G = 1 << 2 };

/*
 * The two formats share the shape (4 levels of 512 entries, leaves at levels 3..1 with bit 7 above level 1,
 * address in bits 51:12) and differ in the entry bits. Callers always give a leaf's permissions and memory
 * type in EPT terms (EPT_READ/WRITE/EXEC, EPT_MT_*); an NPT table translates them (ept.c, leaf_bits):
 *
 *   EPT_READ -> P | U/S    EPT_WRITE -> R/W    no EPT_EXEC -> NX    EPT_MT_WB -> PAT 0   EPT_MT_UC -> PAT 3
 *
 * NPT cannot express execute-only (present means readable): such flags are refused there (-EINVAL);
 * every other caller bit (EPT_IGNORE_PAT, the EPT accessed/dirty bits 8 and 9, bits 63:52) has no
 * NPT counterpart at that place and is dropped. Walk results (ept_walk, ept_translate) show the
 * entries as the CPU reads them, in the table's own format.
 */
enum ept_format { EPT_FORMAT_EPT = 0, EPT_FORMAT_NPT = 1 };

struct ept {
	uint64_t root;        /* HPA of the PML4 table */
	unsigned page_sizes;  /* enum ept_page_size bits the CPU allows; 4K always */
	uint64_t tables;      /* paging-structure pages in use, root included */
	enum ept_format format;
};

/* An empty EPT (everything unmapped). 0, or -ENOMEM. */
int ept_init(struct ept *ept, unsigned page_sizes);

/* An empty map in `format` (ept_init is EPT_FORMAT_EPT); page_sizes as ept_init (for NPT: 2 MiB pages
 * always exist in long mode, 1 GiB ones when CPUID 0x80000001 EDX bit 26 says so). 0, or -ENOMEM. */
int ept_init_format(struct ept *ept, unsigned page_sizes, enum ept_format format);

/*
 * Maps [gpa, gpa+size) to [hpa, hpa+size) with `flags` (EPT_READ/WRITE/EXEC, memory type, ...), using
 * the largest page size in ept->page_sizes that alignment of both addresses and the remaining size allow.
 * gpa, hpa and size must be 4 KiB-aligned, gpa+size within the 48 bits a 4-level walk translates, and
 * `flags` a valid leaf (not write-only, a memory type the SDM defines): else -EINVAL. A range that
 * overlaps an existing mapping is refused with -EEXIST and nothing is changed. Where a table already
 * exists (ept_prepare, or a smaller mapping nearby), leaves go inside it instead of one larger leaf
 * replacing it: a table is never freed while the EPT may be in use. -ENOMEM when a table cannot be
 * allocated (what was mapped stays mapped). Callers serialize ept_map/ept_prepare on one EPT.
 */
int ept_map(struct ept *ept, uint64_t gpa, uint64_t hpa, uint64_t size, uint64_t flags);

/* Removes the 4 KiB leaf that maps `gpa` (the table stays). 0; -ENOENT when nothing maps it; -EINVAL
 * for an unaligned gpa or one inside a larger page (never split). The caller invalidates cached
 * translations (INVEPT) on every CPU that may hold them. */
int ept_unmap_4k(struct ept *ept, uint64_t gpa);

/* One walk of the EPT for one GPA, entry by entry, as the CPU reads them (SDM Vol. 3C, 29.3.2): for
 * whoever shows or checks it (the monitor's `ept` and `gva`). */
struct ept_walk_step {
	int level;            /* 4 = PML4E, 3 = PDPTE, 2 = PDE, 1 = PTE */
	unsigned index;       /* the entry's slot in its table (GPA bits 47:39, 38:30, 29:21, 20:12) */
	uint64_t table;       /* HPA of that table */
	uint64_t entry;       /* the entry's value */
};
struct ept_walk {
	unsigned nsteps;      /* entries read, steps[0] the PML4E; 0 when there was nothing to read */
	struct ept_walk_step steps[4];
	bool mapped;          /* the last step is a leaf: */
	uint64_t hpa;         /*   the GPA's host-physical address */
	uint64_t page_size;   /*   the leaf's page size in bytes (4 KiB, 2 MiB, 1 GiB) */
	int stop_level;       /* not mapped: the level of the entry that is not present; 0 when nothing was read
			       * (no root, or a GPA beyond the 48 bits a 4-level walk translates) */
};

/* Walks the EPT as the CPU would and records every entry read. true when gpa is mapped. */
bool ept_walk(const struct ept *ept, uint64_t gpa, struct ept_walk *w);

/* Walks the EPT as the CPU would. true when gpa is mapped, and then (each pointer may be NULL) the HPA,
 * the leaf entry and the leaf's page size in bytes. */
bool ept_translate(const struct ept *ept, uint64_t gpa, uint64_t *hpa, uint64_t *leaf, uint64_t *page_size);

/* Frees every paging-structure page (not the memory mapped). */
void ept_destroy(struct ept *ept);

/*
 * Pre-allocates every paging-structure table that leaves of `leaf_size` bytes (4 KiB, 2 MiB or 1 GiB,
 * allowed by ept->page_sizes) covering [gpa, gpa+size) would need; maps nothing. Afterwards an ept_map
 * of any range inside [gpa, gpa+size) whose gpa, hpa and size are multiples of leaf_size never
 * allocates, so it cannot fail with -ENOMEM: a policy that maps on a guest's first touch calls this
 * when the guest is created, where failing is still harmless. Where a table exists, ept_map places
 * leaves inside it rather than a larger leaf above it (see ept_map), so prepared ranges get leaves of
 * exactly leaf_size. gpa and size must be multiples of leaf_size (-EINVAL). 0, -EINVAL, or -ENOMEM
 * (the tables allocated so far stay in the EPT and are freed by ept_destroy).
 */
int ept_prepare(struct ept *ept, uint64_t gpa, uint64_t size, uint64_t leaf_size);

/* The EPTP value for this EPT: WB structures, 4-level walk, `ad` to enable accessed/dirty flags. */
uint64_t ept_pointer(const struct ept *ept, bool ad);

/* The VMCB's N_CR3 for an NPT-format map: the PML4's address, PWT = PCD = 0 (the tables are WB).
 * APM Vol. 2, 15.25.3 (nCR3 has the layout of CR3, 3.1.2). */
uint64_t ept_ncr3(const struct ept *ept);
