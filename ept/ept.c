/* Extended Page Tables and nested page tables: builds, walks and frees one guest's 4-level GPA -> HPA
 * paging structures in either format (ept.h). */
#include "ept/ept.h"
#include "lib/errno.h"
#include "lib/string.h"
#include "npt/npt.h"
#include "pmm/pmm.h"

/*
 * A guest-physical address as the 4-level walk splits it (SDM Vol. 3C, 29.3.2):
 *
 *   47      39 38      30 29      21 20      12 11         0
 *  +----------+----------+----------+----------+------------+
 *  |  PML4    |  PDPT    |   PD     |   PT     |   offset   |
 *  +----------+----------+----------+----------+------------+
 *
 * Level 4 is the PML4, level 1 the page table. A leaf may sit at level 3 (1 GiB, PDPTE bit 7),
 * level 2 (2 MiB, PDE bit 7) or level 1 (4 KiB).
 */
#define EPT_LEVELS      4
#define EPT_ENTRIES     512
#define EPT_GPA_LIMIT   (1ull << 48)  /* a 4-level walk uses GPA bits 47:0 only (29.3.2) */
#define EPT_HPA_LIMIT   (1ull << 52)  /* entries hold physical-address bits 51:12 (Tables 29-1..29-6) */
#define EPT_MT_MASK     (7ull << EPT_MT_SHIFT)

static unsigned level_shift(int level)
{
	return PAGE_SHIFT + 9 * (unsigned)(level - 1);
}

static uint64_t level_size(int level)
{
	return 1ull << level_shift(level);
}

static unsigned level_index(uint64_t gpa, int level)
{
	return (unsigned)(gpa >> level_shift(level)) & (EPT_ENTRIES - 1);
}

/* An EPT entry is present when any of bits 2:0 is set (SDM Vol. 3C, 29.3.2, "not present"); an NPT
 * entry when bit 0 (P) is (APM Vol. 2, 5.4.1). */
static bool present(const struct ept *ept, uint64_t e)
{
	if (ept->format == EPT_FORMAT_NPT)
		return (e & NPT_P) != 0;
	return (e & EPT_RWX) != 0;
}

/* What a non-leaf entry grants besides its address. EPT: RWX, as the CPU ANDs permissions along the
 * walk (29.3.3.2). NPT: P, R/W and U/S, U/S because every nested access is a user access (APM Vol. 2,
 * 15.25.5); NX clear, so again the leaf decides. */
static uint64_t table_bits(const struct ept *ept)
{
	return ept->format == EPT_FORMAT_NPT ? NPT_TABLE : EPT_RWX;
}

/* A leaf's bits in the table's format from EPT-style `flags` (ept.h): the same for EPT; for NPT
 * P | U/S for read, R/W for write, NX without exec, PWT/PCD choosing the host PAT entry of the memory
 * type (npt/npt.h). `level` > 1 adds the page-size bit, bit 7 in both formats (SDM Vol. 3C, Tables
 * 29-2 and 29-4; APM Vol. 2, 5.3.4 and 5.3.5). */
static uint64_t leaf_bits(const struct ept *ept, uint64_t flags, int level)
{
	uint64_t e;

	if (ept->format != EPT_FORMAT_NPT)
		return flags | (level > 1 ? EPT_LARGE : 0);
	e = NPT_P | NPT_US;
	if (flags & EPT_WRITE)
		e |= NPT_RW;
	if (!(flags & EPT_EXEC))
		e |= NPT_NX;
	if (((flags >> EPT_MT_SHIFT) & 7) == EPT_MT_UC)
		e |= NPT_MT_UC;
	return e | (level > 1 ? NPT_PS : 0);
}

/* Bit 7 marks a leaf in a PDPTE or PDE; every present PTE is a leaf (Tables 29-2, 29-4, 29-6; for
 * NPT the PS bit, the same bit 7: APM Vol. 2, 5.3.4, 5.3.5). */
static bool is_leaf(uint64_t e, int level)
{
	return level == 1 || (e & EPT_LARGE);
}

static uint64_t *table_of(uint64_t e)
{
	return phys_to_virt(e & EPT_ADDR_MASK);
}

/* Whether this EPT may put a leaf at `level`: 4 KiB always, larger ones when the CPU offers them
 * (IA32_VMX_EPT_VPID_CAP bits 16 and 17, SDM Vol. 3D, A.10). */
static bool leaf_allowed(const struct ept *ept, int level)
{
	switch (level) {
	case 1: return true;
	case 2: return ept->page_sizes & EPT_PAGE_2M;
	case 3: return ept->page_sizes & EPT_PAGE_1G;
	default: return false;
	}
}

/* Publishes an entry the CPU may be walking at this moment: one 8-byte store it cannot see half of,
 * ordered after the writes that filled the table it points to. Going from not present to present
 * needs no INVEPT: the CPU caches nothing from a not-present entry (SDM Vol. 3C, 29.4.3.4). */
static void set_entry(uint64_t *slot, uint64_t e)
{
	__atomic_store_n(slot, e, __ATOMIC_RELEASE);
}

/* A zeroed table (all 512 entries not present), or 0 when memory is exhausted. */
static uint64_t alloc_table(struct ept *ept)
{
	uint64_t phys = pmm_alloc_page();

	if (!phys)
		return 0;
	memset(phys_to_virt(phys), 0, PAGE_SIZE);
	ept->tables++;
	return phys;
}

/* The table below *slot, allocating and linking it when the slot is empty; NULL when out of memory.
 * Non-leaf entries grant everything (table_bits), so the leaf decides. */
static uint64_t *table_below(struct ept *ept, uint64_t *slot)
{
	uint64_t phys;

	if (present(ept, *slot))
		return table_of(*slot);
	phys = alloc_table(ept);
	if (!phys)
		return NULL;
	set_entry(slot, phys | table_bits(ept));
	return phys_to_virt(phys);
}

int ept_init(struct ept *ept, unsigned page_sizes)
{
	return ept_init_format(ept, page_sizes, EPT_FORMAT_EPT);
}

int ept_init_format(struct ept *ept, unsigned page_sizes, enum ept_format format)
{
	ept->format = format;
	ept->page_sizes = (page_sizes & (EPT_PAGE_2M | EPT_PAGE_1G)) | EPT_PAGE_4K;
	ept->tables = 0;
	ept->root = alloc_table(ept);
	return ept->root ? 0 : -ENOMEM;
}

/*
 * Whether [gpa, end) holds no leaf. Walks from the root for each piece; a not-present entry clears the
 * whole region it governs at once, so an empty range costs one walk per 512 GiB / 1 GiB / 2 MiB.
 */
static bool range_is_free(const struct ept *ept, uint64_t gpa, uint64_t end)
{
	while (gpa < end) {
		const uint64_t *table = phys_to_virt(ept->root);
		int level;

		for (level = EPT_LEVELS; level >= 1; level--) {
			uint64_t e = table[level_index(gpa, level)];

			if (!present(ept, e))
				break;
			if (is_leaf(e, level))
				return false;
			table = table_of(e);
		}
		/* The not-present entry at `level` governs the aligned region of its size around gpa. */
		gpa = (gpa & ~(level_size(level) - 1)) + level_size(level);
	}
	return true;
}

/* Leaf bits the caller may choose: permissions, memory type, ignore-PAT, A/D, bits 63:52. NPT has no
 * execute-only page: a present entry is readable (APM Vol. 2, 5.6.1). */
static bool leaf_flags_valid(const struct ept *ept, uint64_t flags)
{
	uint64_t mt = (flags & EPT_MT_MASK) >> EPT_MT_SHIFT;

	if (flags & (EPT_ADDR_MASK | EPT_LARGE))
		return false;
	/* No access at all would be "not present"; write without read is a misconfiguration, as are
	 * memory types 2, 3 and 7 (SDM Vol. 3C, 29.3.3.1). */
	if (!(flags & EPT_RWX) || (flags & (EPT_READ | EPT_WRITE)) == EPT_WRITE)
		return false;
	if (ept->format == EPT_FORMAT_NPT && (!(flags & EPT_READ) || (mt != EPT_MT_WB && mt != EPT_MT_UC)))
		return false;           /* and only the two memory types npt/npt.h has PAT entries for */
	return mt != 2 && mt != 3 && mt != 7;
}

int ept_map(struct ept *ept, uint64_t gpa, uint64_t hpa, uint64_t size, uint64_t flags)
{
	uint64_t end = gpa + size;

	if ((gpa | hpa | size) & (PAGE_SIZE - 1) || !size || end < gpa || end > EPT_GPA_LIMIT ||
	    hpa + size < hpa || hpa + size > EPT_HPA_LIMIT || !leaf_flags_valid(ept, flags))
		return -EINVAL;
	/* Check the whole range before changing anything, so a refusal leaves the EPT as it was. */
	if (!range_is_free(ept, gpa, end))
		return -EEXIST;

	while (gpa < end) {
		uint64_t *table = phys_to_virt(ept->root);
		int level;

		for (level = EPT_LEVELS; ; level--) {
			uint64_t *slot = &table[level_index(gpa, level)];
			uint64_t ps = level_size(level);

			/* The largest leaf that fits: allowed, both addresses aligned to it, not past the
			 * end, and nothing here yet (an existing table means we go inside it). */
			if (level <= 3 && leaf_allowed(ept, level) && !present(ept, *slot) &&
			    !((gpa | hpa) & (ps - 1)) && end - gpa >= ps) {
				set_entry(slot, hpa | leaf_bits(ept, flags, level));
				gpa += ps;
				hpa += ps;
				break;
			}
			table = table_below(ept, slot);
			if (!table)
				return -ENOMEM;
		}
	}
	return 0;
}

int ept_prepare(struct ept *ept, uint64_t gpa, uint64_t size, uint64_t leaf_size)
{
	uint64_t end = gpa + size;
	int leaf_level;

	switch (leaf_size) {
	case PAGE_SIZE: leaf_level = 1; break;
	case SIZE_2M:   leaf_level = 2; break;
	case SIZE_1G:   leaf_level = 3; break;
	default:        return -EINVAL;
	}
	if (!leaf_allowed(ept, leaf_level) || (gpa | size) & (leaf_size - 1) || end < gpa ||
	    end > EPT_GPA_LIMIT)
		return -EINVAL;

	/* One walk per table at leaf_level: afterwards skip to the region the next such table governs. */
	while (gpa < end) {
		uint64_t *table = phys_to_virt(ept->root);
		uint64_t span = level_size(leaf_level + 1);
		int level;

		for (level = EPT_LEVELS; level > leaf_level; level--) {
			uint64_t *slot = &table[level_index(gpa, level)];

			if (present(ept, *slot) && is_leaf(*slot, level)) {
				/* Already mapped by a larger leaf: nothing can be mapped there anyway. */
				span = level_size(level);
				break;
			}
			table = table_below(ept, slot);
			if (!table)
				return -ENOMEM;
		}
		gpa = (gpa & ~(span - 1)) + span;
	}
	return 0;
}

bool ept_walk(const struct ept *ept, uint64_t gpa, struct ept_walk *w)
{
	uint64_t table;
	int level;

	w->nsteps = 0;
	w->mapped = false;
	w->hpa = w->page_size = 0;
	w->stop_level = 0;
	if (!ept->root || gpa >= EPT_GPA_LIMIT)
		return false;
	table = ept->root;
	for (level = EPT_LEVELS; level >= 1; level--) {
		unsigned idx = level_index(gpa, level);
		uint64_t e = __atomic_load_n((uint64_t *)phys_to_virt(table) + idx, __ATOMIC_ACQUIRE);

		w->steps[w->nsteps++] = (struct ept_walk_step){ level, idx, table, e };
		if (!present(ept, e)) {
			w->stop_level = level;
			return false;
		}
		if (level <= 3 && is_leaf(e, level)) {
			uint64_t ps = level_size(level);

			/* The page frame is bits 51:log2(ps) of the leaf, the offset the GPA's low bits. */
			w->hpa = (e & EPT_ADDR_MASK & ~(ps - 1)) | (gpa & (ps - 1));
			w->page_size = ps;
			w->mapped = true;
			return true;
		}
		table = e & EPT_ADDR_MASK;
	}
	return false;   /* not reached: a present PTE is a leaf */
}

bool ept_translate(const struct ept *ept, uint64_t gpa, uint64_t *hpa, uint64_t *leaf, uint64_t *page_size)
{
	struct ept_walk w;

	if (!ept_walk(ept, gpa, &w))
		return false;
	if (hpa)
		*hpa = w.hpa;
	if (leaf)
		*leaf = w.steps[w.nsteps - 1].entry;
	if (page_size)
		*page_size = w.page_size;
	return true;
}

/* Frees the table at `phys` (at `level`) and every table below it; leaves point at guest memory,
 * which belongs to the caller. */
int ept_unmap_4k(struct ept *ept, uint64_t gpa)
{
	uint64_t *table;

	if (!ept->root || gpa >= EPT_GPA_LIMIT || (gpa & (PAGE_SIZE - 1)))
		return -EINVAL;
	table = phys_to_virt(ept->root);
	for (int level = EPT_LEVELS; level >= 1; level--) {
		uint64_t *slot = &table[level_index(gpa, level)], e = __atomic_load_n(slot, __ATOMIC_ACQUIRE);

		if (!present(ept, e))
			return -ENOENT;
		if (level == 1) {
			set_entry(slot, 0);
			return 0;
		}
		if (is_leaf(e, level))
			return -EINVAL;        /* inside a larger page: pages are never split */
		table = table_of(e);
	}
	return -ENOENT;
}

static void free_table(struct ept *ept, uint64_t phys, int level)
{
	const uint64_t *table = phys_to_virt(phys);
	unsigned i;

	if (level > 1) {
		for (i = 0; i < EPT_ENTRIES; i++)
			if (present(ept, table[i]) && !is_leaf(table[i], level))
				free_table(ept, table[i] & EPT_ADDR_MASK, level - 1);
	}
	pmm_free_page(phys);
	ept->tables--;
}

void ept_destroy(struct ept *ept)
{
	if (ept->root)
		free_table(ept, ept->root, EPT_LEVELS);
	ept->root = 0;
}

uint64_t ept_pointer(const struct ept *ept, bool ad)
{
	/* Bits 2:0 memory type of the structures, 5:3 walk length - 1, 6 A/D enable, 51:12 the PML4
	 * (SDM Vol. 3C, 25.6.11, Table 25-9). */
	return (ept->root & EPT_ADDR_MASK) | EPTP_MT_WB | EPTP_WALK_4 | (ad ? EPTP_AD : 0);
}

uint64_t ept_ncr3(const struct ept *ept)
{
	return ept->root & NPT_ADDR_MASK;  /* bits 51:12; PWT (3) = PCD (4) = 0: WB tables (APM Vol. 2, 3.1.2) */
}
