/* The physical page allocator: one bitmap over every page frame below the top of usable memory. */
#include "pmm/pmm.h"
#include "arch/x86/spinlock.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/string.h"

/*
 * Two bitmaps, one bit per 4 KiB frame from frame 0 up to the last usable frame:
 *
 *   used[]     1 = the frame cannot be handed out (allocated, reserved, not RAM, or past the end)
 *   managed[]  1 = the frame is RAM the allocator owns (free or allocated), 0 = never ours
 *
 * A free frame is managed and not used. `managed` exists only so that freeing a frame that was never
 * ours (the first MiB, the hypervisor image, a reserved range, the bitmaps) is caught, not silently
 * turned into free memory. Both live in one run of usable pages found in the map itself, reached only
 * through phys_to_virt() so that host tests can run this over a fake memory.
 */

#define LOW_LIMIT      (1ull << 20) /* the first MiB: real-mode IVT, BDA, EBDA, option ROMs, AP trampoline */
/* The architectural limit on MAXPHYADDR (SDM Vol. 3A, 4.1.4): no RAM can lie above it. */
#define PHYS_LIMIT     (1ull << 52)
#define BITS_PER_WORD  64

static spinlock_t pmm_lock = SPINLOCK_INIT;
static uint64_t *used, *managed;
static uint64_t npages;        /* frames covered by the bitmaps */
static uint64_t nwords;        /* 64-bit words in each bitmap */
static uint64_t nfree;
static uint64_t usable_bytes;
static uint64_t next_hint;     /* word where the next single-page search starts */
static bool poison;            /* pmm_set_poison */
#define POISON_TAG     0x5045524d49544f4eull  /* word 0 of a poisoned page, XORed with its address */
/* The other words: one bit per 32-bit word, so that a stray bit set in the freed page shows (an IRR
 * or ISR bit), and so that a freed local-APIC page still reads as an enabled xAPIC with APIC ID 0
 * (ID bits 31:24 = 0, SVR bit 8 = 1, SDM Vol. 3A 11.4.6, 11.4.7.2): interrupts routed to it after it
 * was freed are taken as they were before, and leave their bits (lapic.c, receive_fixed). */
#define POISON_PATTERN 0x0000010000000100ull

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static uint64_t round_down(uint64_t x, uint64_t a)
{
	return x & ~(a - 1);
}

/* End of a region, clamped so that a length reaching past 2^64 (or past PHYS_LIMIT) cannot wrap. */
static uint64_t region_end(const struct mem_region *r)
{
	uint64_t end = r->base + r->len;

	if (end < r->base || end > PHYS_LIMIT)
		end = PHYS_LIMIT;
	return end;
}

/* Whole pages inside a usable region: [*lo, *hi) shrinks inward. Returns false if no page fits. */
static bool usable_pages(const struct mem_region *r, uint64_t *lo, uint64_t *hi)
{
	if (r->type != MEM_USABLE || r->len == 0 || r->base >= PHYS_LIMIT)
		return false;
	*lo = round_up(r->base, PAGE_SIZE);
	*hi = round_down(region_end(r), PAGE_SIZE);
	return *lo < *hi;
}

/* Every page touched by a blocking range: [*lo, *hi) grows outward. Returns false if it is empty. */
static bool blocked_pages(const struct mem_region *r, uint64_t *lo, uint64_t *hi)
{
	if (r->len == 0 || r->base >= PHYS_LIMIT)
		return false;
	*lo = round_down(r->base, PAGE_SIZE);
	*hi = round_up(region_end(r), PAGE_SIZE);
	return true;
}

/* Sets (val = true) or clears bits [from, to) of bm, a word at a time in the middle. */
static void bits_assign(uint64_t *bm, uint64_t from, uint64_t to, bool val)
{
	while (from < to && (from % BITS_PER_WORD)) {
		if (val)
			bm[from / BITS_PER_WORD] |= 1ull << (from % BITS_PER_WORD);
		else
			bm[from / BITS_PER_WORD] &= ~(1ull << (from % BITS_PER_WORD));
		from++;
	}
	while (from + BITS_PER_WORD <= to) {
		bm[from / BITS_PER_WORD] = val ? ~0ull : 0;
		from += BITS_PER_WORD;
	}
	while (from < to) {
		if (val)
			bm[from / BITS_PER_WORD] |= 1ull << (from % BITS_PER_WORD);
		else
			bm[from / BITS_PER_WORD] &= ~(1ull << (from % BITS_PER_WORD));
		from++;
	}
}

/* Page-address range [lo, hi) into bit range, clipped to the bitmap. */
static void pages_assign(uint64_t *bm, uint64_t lo, uint64_t hi, bool val)
{
	uint64_t from = lo >> PAGE_SHIFT, to = hi >> PAGE_SHIFT;

	if (to > npages)
		to = npages;
	if (from < to)
		bits_assign(bm, from, to, val);
}

/*
 * First bit in [from, to) equal to `want` (true: a set bit in used[], i.e. a busy frame; false: a clear
 * one, a free frame), or `to` if there is none. Whole words that cannot match are skipped at once.
 */
static uint64_t find_bit(uint64_t from, uint64_t to, bool want)
{
	while (from < to) {
		uint64_t w = used[from / BITS_PER_WORD];

		if (!want)
			w = ~w;
		w &= ~0ull << (from % BITS_PER_WORD); /* ignore bits below `from` in its word */
		if (w) {
			uint64_t bit = round_down(from, BITS_PER_WORD) + (uint64_t)__builtin_ctzll(w);
			return bit < to ? bit : to;
		}
		from = round_down(from, BITS_PER_WORD) + BITS_PER_WORD;
	}
	return to;
}

static uint64_t count_clear(const uint64_t *bm)
{
	uint64_t n = 0, i;

	for (i = 0; i < nwords; i++)
		n += (uint64_t)__builtin_popcountll(~bm[i]);
	return n;
}

/* Does [lo, hi) overlap any blocking range: a non-usable map region, a reserved range, the first MiB? */
static bool find_blocker(uint64_t lo, uint64_t hi, const struct mem_region *map, size_t n,
			 const struct mem_region *reserved, size_t nres, uint64_t *blk_end)
{
	uint64_t b_lo, b_hi;
	size_t i;

	if (lo < LOW_LIMIT) {
		*blk_end = LOW_LIMIT;
		return true;
	}
	for (i = 0; i < n; i++)
		if (map[i].type != MEM_USABLE && blocked_pages(&map[i], &b_lo, &b_hi) &&
		    b_lo < hi && lo < b_hi) {
			*blk_end = b_hi;
			return true;
		}
	for (i = 0; i < nres; i++)
		if (blocked_pages(&reserved[i], &b_lo, &b_hi) && b_lo < hi && lo < b_hi) {
			*blk_end = b_hi;
			return true;
		}
	return false;
}

/*
 * The lowest run of `bytes` (whole pages) inside one usable region that no blocking range touches.
 * Each time a candidate hits a blocker it moves past that blocker, so the search ends.
 */
static int place_bitmaps(const struct mem_region *map, size_t n, const struct mem_region *reserved,
			 size_t nres, uint64_t bytes, uint64_t *where)
{
	uint64_t best = ~0ull, lo, hi, c, blk_end;
	size_t i;

	for (i = 0; i < n; i++) {
		if (!usable_pages(&map[i], &lo, &hi))
			continue;
		c = lo;
		while (c < hi && hi - c >= bytes) {
			if (!find_blocker(c, c + bytes, map, n, reserved, nres, &blk_end)) {
				if (c < best)
					best = c;
				break;
			}
			c = blk_end;
		}
	}
	if (best == ~0ull)
		return -ENOMEM;
	*where = best;
	return 0;
}

/* Regions may be unsorted and overlap: extend coverage from `base` until no usable region continues it. */
bool pmm_range_usable(const struct mem_region *map, size_t n, uint64_t base, uint64_t len)
{
	uint64_t at = base, end = base + len;
	bool moved = true;

	while (at < end && moved) {
		moved = false;
		for (size_t i = 0; i < n; i++)
			if (map[i].type == MEM_USABLE && map[i].base <= at && map[i].base + map[i].len > at) {
				at = map[i].base + map[i].len;
				moved = true;
			}
	}
	return at >= end;
}

int pmm_init(const struct mem_region *map, size_t n, const struct mem_region *reserved, size_t nres)
{
	uint64_t top = 0, lo, hi, bytes, where;
	size_t i;

	for (i = 0; i < n; i++)
		if (usable_pages(&map[i], &lo, &hi) && hi > top)
			top = hi;

	spin_lock(&pmm_lock);
	used = managed = NULL;
	npages = nwords = nfree = usable_bytes = next_hint = 0;
	if (top == 0) {
		spin_unlock(&pmm_lock);
		return -ENOMEM;
	}

	npages = top >> PAGE_SHIFT;
	nwords = (npages + BITS_PER_WORD - 1) / BITS_PER_WORD;
	bytes = round_up(2 * nwords * sizeof(uint64_t), PAGE_SIZE);
	if (place_bitmaps(map, n, reserved, nres, bytes, &where) < 0) {
		npages = nwords = 0;
		spin_unlock(&pmm_lock);
		return -ENOMEM;
	}
	used = phys_to_virt(where);
	managed = used + nwords;

	/*
	 * Order matters, not the map's: first all usable pages become free, then every blocking range is
	 * marked over them, so a non-usable or reserved range wins wherever it overlaps usable memory.
	 */
	memset(used, 0xff, nwords * sizeof(uint64_t));
	for (i = 0; i < n; i++)
		if (usable_pages(&map[i], &lo, &hi))
			pages_assign(used, lo, hi, false);
	for (i = 0; i < n; i++)
		if (map[i].type != MEM_USABLE && blocked_pages(&map[i], &lo, &hi))
			pages_assign(used, lo, hi, true);
	usable_bytes = count_clear(used) << PAGE_SHIFT;

	pages_assign(used, 0, LOW_LIMIT, true);
	for (i = 0; i < nres; i++)
		if (blocked_pages(&reserved[i], &lo, &hi))
			pages_assign(used, lo, hi, true);
	pages_assign(used, where, where + bytes, true);

	/* What is free now is exactly what the allocator owns for good. */
	for (i = 0; i < nwords; i++)
		managed[i] = ~used[i];
	nfree = count_clear(used);
	spin_unlock(&pmm_lock);

	pr_debug("hv: pmm: %llu MiB usable, %llu MiB free, bitmaps at 0x%llx (%llu KiB)\n",
		(unsigned long long)(usable_bytes >> 20), (unsigned long long)((nfree << PAGE_SHIFT) >> 20),
		(unsigned long long)where, (unsigned long long)(bytes >> 10));
	return 0;
}

void pmm_set_poison(bool on)
{
	poison = on;
}

/* A page freed with poison on: is it as pmm_free_page left it? Reported if not (it is ours now). */
static void poison_check(uint64_t phys)
{
	uint64_t *w = phys_to_virt(phys);
	unsigned first = 0, changed = 0;

	if (w[0] != (POISON_TAG ^ phys))
		return;                 /* not poisoned (never freed with poison on, or written at word 0) */
	for (unsigned i = 1; i < PAGE_SIZE / 8; i++)
		if (w[i] != POISON_PATTERN && !changed++)
			first = i;
	if (changed)
		pr_err("hv: pmm: page 0x%lx was written after it was freed: word %u is 0x%lx (of %u words changed)\n",
		       phys, first, w[first], changed);
}

static void poison_fill(uint64_t phys)
{
	uint64_t *w = phys_to_virt(phys);

	w[0] = POISON_TAG ^ phys;
	for (unsigned i = 1; i < PAGE_SIZE / 8; i++)
		w[i] = POISON_PATTERN;
}

uint64_t pmm_alloc_page(void)
{
	uint64_t bit;

	spin_lock(&pmm_lock);
	if (nfree == 0) {
		spin_unlock(&pmm_lock);
		return 0;
	}
	/* Next-fit from the word of the last allocation: the frames below it are usually all taken. */
	bit = find_bit(next_hint * BITS_PER_WORD, npages, false);
	if (bit == npages)
		bit = find_bit(0, npages, false);
	if (bit == npages) /* nfree disagrees with the bitmap */
		panic("pmm: %llu pages free but none found\n", (unsigned long long)nfree);
	used[bit / BITS_PER_WORD] |= 1ull << (bit % BITS_PER_WORD);
	nfree--;
	next_hint = bit / BITS_PER_WORD;
	spin_unlock(&pmm_lock);
	if (poison)
		poison_check(bit << PAGE_SHIFT);
	return bit << PAGE_SHIFT;
}

uint64_t pmm_alloc_page_below(uint64_t limit)
{
	uint64_t bit, end = limit >> PAGE_SHIFT;

	if (end > npages)
		end = npages;
	spin_lock(&pmm_lock);
	/* From the bottom, and the next-fit hint left alone: the hint only rises while memory above
	 * `limit` is free, so a search from it would never come back down here. */
	bit = nfree ? find_bit(0, end, false) : end;
	if (bit >= end) {
		spin_unlock(&pmm_lock);
		return 0;
	}
	used[bit / BITS_PER_WORD] |= 1ull << (bit % BITS_PER_WORD);
	nfree--;
	spin_unlock(&pmm_lock);
	if (poison)
		poison_check(bit << PAGE_SHIFT);
	return bit << PAGE_SHIFT;
}

/*
 * The lowest run of `count` free frames starting at a multiple of `step` frames. A candidate that hits
 * a busy frame is abandoned for the first free frame past it, rounded up to the next step: busy stretches
 * are crossed a word at a time and candidates advance by whole alignment steps, never bit by bit.
 */
static int find_run(uint64_t count, uint64_t step, uint64_t *first)
{
	uint64_t c = 0, busy;

	while (c < npages && npages - c >= count) {
		busy = find_bit(c, c + count, true);
		if (busy == c + count) {
			*first = c;
			return 0;
		}
		c = find_bit(busy + 1, npages, false);
		c = round_up(c, step);
	}
	return -ENOMEM;
}

int pmm_alloc_pages(size_t count, uint64_t align, uint64_t *phys)
{
	uint64_t first;
	int ret;

	if (count == 0 || align < PAGE_SIZE || (align & (align - 1)) || !phys)
		return -EINVAL;

	spin_lock(&pmm_lock);
	if (count > nfree) {
		spin_unlock(&pmm_lock);
		return -ENOMEM;
	}
	/* An alignment beyond all memory can only be met by frame 0, which is never free. */
	if ((align >> PAGE_SHIFT) >= npages) {
		spin_unlock(&pmm_lock);
		return -ENOMEM;
	}
	ret = find_run(count, align >> PAGE_SHIFT, &first);
	if (ret == 0) {
		bits_assign(used, first, first + count, true);
		nfree -= count;
		*phys = first << PAGE_SHIFT;
	}
	spin_unlock(&pmm_lock);
	return ret;
}

/* Caller holds the lock. Every frame must be ours and allocated: anything else is a double free. */
static void free_locked(uint64_t phys, uint64_t count)
{
	uint64_t first = phys >> PAGE_SHIFT, i;

	if (phys % PAGE_SIZE || first >= npages || count > npages - first)
		panic("pmm: free of [0x%llx, +%llu pages): not page-aligned or outside memory\n",
		      (unsigned long long)phys, (unsigned long long)count);
	for (i = first; i < first + count; i++) {
		uint64_t bit = 1ull << (i % BITS_PER_WORD);

		if (!(managed[i / BITS_PER_WORD] & bit))
			panic("pmm: free of page 0x%llx, which the allocator does not own\n",
			      (unsigned long long)(i << PAGE_SHIFT));
		if (!(used[i / BITS_PER_WORD] & bit))
			panic("pmm: free of page 0x%llx, which is not allocated\n",
			      (unsigned long long)(i << PAGE_SHIFT));
	}
	bits_assign(used, first, first + count, false);
	nfree += count;
}

void pmm_free_page(uint64_t phys)
{
	if (poison && phys % PAGE_SIZE == 0)    /* a bad address still reaches free_locked's panic */
		poison_fill(phys);
	spin_lock(&pmm_lock);
	free_locked(phys, 1);
	spin_unlock(&pmm_lock);
}

void pmm_free_pages(uint64_t phys, size_t count)
{
	if (count == 0)
		return;
	spin_lock(&pmm_lock);
	free_locked(phys, count);
	spin_unlock(&pmm_lock);
}

int pmm_carve_partition(uint64_t size, uint64_t align, uint64_t *phys)
{
	uint64_t base, bytes, off;
	int ret;

	if (size == 0 || !phys || align < SIZE_2M || (align & (align - 1)))
		return -EINVAL;
	if (size > PHYS_LIMIT) /* more than any machine has; also keeps the rounding below from wrapping */
		return -ENOMEM;
	bytes = round_up(size, SIZE_2M);
	ret = pmm_alloc_pages(bytes >> PAGE_SHIFT, align, &base);
	if (ret < 0)
		return ret;
	/*
	 * Zeroed so that no guest reads what the hypervisor or an earlier guest left there. A page at a
	 * time through phys_to_virt(): the run is contiguous physically, not necessarily virtually.
	 * Outside the lock: the pages are already ours.
	 */
	for (off = 0; off < bytes; off += PAGE_SIZE)
		memset(phys_to_virt(base + off), 0, PAGE_SIZE);
	*phys = base;
	return 0;
}

uint64_t pmm_usable_bytes(void)
{
	uint64_t n;

	spin_lock(&pmm_lock);
	n = usable_bytes;
	spin_unlock(&pmm_lock);
	return n;
}

uint64_t pmm_free_bytes(void)
{
	uint64_t n;

	spin_lock(&pmm_lock);
	n = nfree << PAGE_SHIFT;
	spin_unlock(&pmm_lock);
	return n;
}
