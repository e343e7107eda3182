/* Shadow page tables for one vCPU: filled on the guest's page faults from its own tables and the
 * GPA map, kept coherent by resyncing on INVLPG and CR3 writes, cached per guest CR3 (shadow.h). */
#include <stdbool.h>
#include <stdint.h>
#include "lib/errno.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "shadow/shadow.h"

/*
 * A shadow table is one host page of 512 8-byte entries (the PAE top: 4), in the CPU's format:
 *
 *   non-leaf   addr | P | R/W | U/S | A        every right granted: the leaf holds the intersection
 *                                                (PAE PDPTE: addr | P, Table 4-8 has no rights)
 *   leaf       addr | P | A | D | [R/W] [U/S] [XD] | PWT PCD (the guest's) | PS (2 MiB) | sw 11:9
 *
 * A and D are preset so the CPU never writes the shadow (the guest's own A/D are set by the walk).
 * Leaves are 4 KiB or 2 MiB: the guest page, the GPA map's block and 2 MiB, whichever is smallest.
 * Global pages get no G: a CR3 switch revalidates rather than keeps (shadow.h).
 */
#define SH_ADDR   0x000ffffffffff000ull   /* bits 51:12 */
#define SH_NONLEAF (GPT_P | GPT_W | GPT_US | GPT_A)
#define SH_SIZE_4K (1ull << 12)
#define SH_SIZE_2M (1ull << 21)
#define SH_SIZE_4M (1ull << 22)
#define SH_SIZE_1G (1ull << 30)
#define LIN48      0x0000ffffffffffffull

/* The linear span of one entry at `level` (1 PT .. 4 PML4). */
static uint64_t span(unsigned level)
{
	return 1ull << (12 + 9 * (level - 1));
}

static uint64_t cls_size(unsigned cls)
{
	static const uint64_t sz[] = { SH_SIZE_4K, SH_SIZE_2M, SH_SIZE_4M, SH_SIZE_1G };

	return sz[cls & 3];
}

static unsigned cls_of(uint64_t e)
{
	return (unsigned)((e & SHADOW_SW_SIZE) >> SHADOW_SW_SIZE_SHIFT);
}

static uint64_t *tab(uint64_t hpa)
{
	return phys_to_virt(hpa);
}

static bool is_leaf(uint64_t e, unsigned level)
{
	return level == 1 || (level == 2 && (e & GPT_PS));
}

static unsigned nentries(const struct shadow_root *r, unsigned level)
{
	return r->levels == 3 && level == 3 ? 4 : 512;
}

static unsigned idx(const struct shadow_root *r, uint64_t lin, unsigned level)
{
	return (unsigned)(lin >> (12 + 9 * (level - 1))) & (nentries(r, level) - 1);
}

/* Linear addresses inside the tables: 48 bits (4-level) or 32 bits (PAE), and back. */
static uint64_t norm(const struct shadow_root *r, uint64_t gva)
{
	return r->levels == 4 ? gva & LIN48 : (uint32_t)gva;
}

static uint64_t canon(const struct shadow_root *r, uint64_t lin)
{
	return r->levels == 4 ? (uint64_t)((int64_t)(lin << 16) >> 16) : lin;
}

static bool guest_paging(const struct shadow *s)
{
	return s->g.cr0 & GPT_CR0_PG;
}

/* What a root's entries depend on besides the tables: a change of any of these is a new root. */
static uint64_t mode_key(const struct gpt_ctx *g)
{
	uint64_t k = g->cr0 & (GPT_CR0_PG | GPT_CR0_WP);

	if (g->cr0 & GPT_CR0_PG) {
		k |= g->cr4 & (GPT_CR4_PSE | GPT_CR4_PAE | GPT_CR4_SMEP | GPT_CR4_SMAP | GPT_CR4_LA57);
		k |= (g->efer & (GPT_EFER_LMA | GPT_EFER_NXE)) << 32;
	}
	return k;
}

/* --- what the CPU must drop (shadow.h, enum shadow_flush) --------------------------------------- */

/* A 4 KiB leaf of the current root at `gva` (canonical, as INVVPID's individual-address type wants
 * it, SDM Vol. 3C, 31.3) changed or went (~0: anything else): added to the request. */
static void want_flush(struct shadow *s, uint64_t gva)
{
	if (gva == ~0ull || (s->flush == SHADOW_FLUSH_PAGE && (s->flush_gva ^ gva) >> 12))
		s->flush = SHADOW_FLUSH_ALL;
	else if (s->flush == SHADOW_FLUSH_NONE)
		s->flush = SHADOW_FLUSH_PAGE, s->flush_gva = gva;
}

enum shadow_flush shadow_take_flush(struct shadow *s, uint64_t *gva)
{
	enum shadow_flush f = s->flush;

	*gva = s->flush_gva;
	s->flush = SHADOW_FLUSH_NONE;
	return f;
}

/* --- host pages -------------------------------------------------------------------------------- */

/* A zeroed table page; `below` nonzero: one under that physical address. */
static uint64_t alloc_table_below(struct shadow *s, uint64_t below)
{
	uint64_t hpa;

	if (s->limit_pages && s->pages >= s->limit_pages)
		return 0;
	hpa = below ? pmm_alloc_page_below(below) : pmm_alloc_page();
	if (!hpa)
		return 0;
	memset(tab(hpa), 0, PAGE_SIZE);
	if (++s->pages > s->peak_pages)
		s->peak_pages = s->pages;
	return hpa;
}

static uint64_t alloc_table(struct shadow *s)
{
	return alloc_table_below(s, 0);
}

static void free_table(struct shadow *s, uint64_t hpa)
{
	pmm_free_page(hpa);
	s->pages--;
}

/* Frees the table at `hpa` (its entries are of `level`) and every table below it. */
static void free_tree(struct shadow *s, const struct shadow_root *r, uint64_t hpa, unsigned level)
{
	uint64_t *t = tab(hpa);
	unsigned i, n = nentries(r, level);

	for (i = 0; level > 1 && i < n; i++)
		if ((t[i] & GPT_P) && !is_leaf(t[i], level))
			free_tree(s, r, t[i] & SH_ADDR, level - 1);
	free_table(s, hpa);
}

/* Empties a table, freeing what hangs below it (the PAE top keeps its four PDs, emptied). */
static void clear_table(struct shadow *s, const struct shadow_root *r, uint64_t hpa, unsigned level)
{
	uint64_t *t = tab(hpa);
	unsigned i, n = nentries(r, level);

	for (i = 0; i < n; i++) {
		if (!(t[i] & GPT_P))
			continue;
		if (r->levels == 3 && level == 3) {
			clear_table(s, r, t[i] & SH_ADDR, 2);
			continue;
		}
		if (!is_leaf(t[i], level))
			free_tree(s, r, t[i] & SH_ADDR, level - 1);
		t[i] = 0;
	}
}

static void root_free(struct shadow *s, struct shadow_root *r)
{
	if (r->hpa)
		free_tree(s, r, r->hpa, r->levels);
	if (s->cur == r)
		s->cur = NULL;
	*r = (struct shadow_root){ 0 };
}

/* A new empty root of `levels`; PAE: the PDPT below 4 GiB and its four PDs. The PDPT is asked for
 * below 4 GiB explicitly (CR3 holds bits 31:5 of its address in PAE paging, SDM Vol. 3A, 4.4.1,
 * Table 4-7; AMD's legacy-mode PAE CR3 the same, APM Vol. 2, 5.2): on a host with RAM above 4 GiB
 * the allocator's next-fit search hands out only pages up there once its hint has passed 4 GiB. */
static int root_create(struct shadow *s, struct shadow_root *r, unsigned levels)
{
	uint64_t top = alloc_table_below(s, levels == 3 ? 1ull << 32 : 0);
	unsigned i;

	r->levels = levels;
	if (!top)
		return -ENOMEM;
	r->hpa = top;
	if (levels == 3) {
		for (i = 0; i < 4; i++) {
			uint64_t pd = alloc_table(s);

			if (!pd)
				goto fail;
			tab(top)[i] = pd | GPT_P;
		}
	}
	return 0;
fail:
	free_tree(s, r, top, levels);
	r->hpa = 0;
	return -ENOMEM;
}

/* Gives back memory: every root but the current one, else the current root's contents. */
static void reclaim(struct shadow *s)
{
	uint64_t before = s->pages;
	unsigned i;

	s->stats.reclaims++;
	want_flush(s, ~0ull);
	for (i = 0; i < SHADOW_ROOTS; i++)
		if (s->roots[i].hpa && &s->roots[i] != s->cur) {
			root_free(s, &s->roots[i]);
			s->stats.evictions++;
		}
	if (s->pages == before && s->cur)
		clear_table(s, s->cur, s->cur->hpa, s->cur->levels);
}

/* --- composing a leaf --------------------------------------------------------------------------- */

/* A supervisor write the guest's CR0.WP = 0 lets into a page its entries make read-only (SDM Vol. 3A,
 * 4.6.1); the CPU runs the guest with WP = 1. */
static bool wp0_write(const struct shadow *s, const struct gpt_result *g, unsigned acc)
{
	return guest_paging(s) && (acc & GPT_ACC_WRITE) && !(acc & GPT_ACC_USER) && !(s->g.cr0 & GPT_CR0_WP) &&
	       !g->writable;
}

/*
 * The shadow leaf for the guest's translation *g (of an access `acc`, 0 for none) of a GPA the map
 * backs at `hpa` in a block of `msize` with `rights`; *level 1 or 2.
 *
 *   R/W  the guest's R/W at every level, its leaf's D (else the first write must fault to set it),
 *        and the map's W
 *   U/S  the guest's U/S at every level
 *   XD   the guest's XD at any level (with NXE), or the map's no-execute
 *
 * CR0.WP=0 (the CPU runs with WP=1): a supervisor write the guest allows to a read-only page gets a
 * supervisor-only writable leaf, so its user accesses fault and get the read-only one back (KVM does
 * the same); with SMEP that leaf is also XD, or a supervisor fetch from the user page would pass.
 * Under SMAP a user page gets no such leaf (shadow_page_fault: the store is emulated).
 */
static uint64_t compose(const struct shadow *s, const struct gpt_result *g, uint64_t hpa, uint64_t msize,
			unsigned rights, unsigned acc, unsigned *level)
{
	bool paging = guest_paging(s);
	uint64_t gsize = paging ? g->page_size : SH_SIZE_1G, size = SH_SIZE_2M, leaf = GPT_P | GPT_A | GPT_D;
	uint64_t gleaf = paging ? g->steps[g->nsteps - 1].entry : GPT_D;
	unsigned cls = !paging ? SHADOW_G4K : gsize == SH_SIZE_1G ? SHADOW_G1G : gsize == SH_SIZE_4M ? SHADOW_G4M :
		       gsize == SH_SIZE_2M ? SHADOW_G2M : SHADOW_G4K;
	bool w = g->writable && (gleaf & GPT_D) && (rights & SHADOW_MAP_W);
	bool user = g->user, nx = g->nx || !(rights & SHADOW_MAP_X);

	if (gsize < size)
		size = gsize;
	if (msize < size)
		size = msize;
	*level = size == SH_SIZE_2M ? 2 : 1;
	if (wp0_write(s, g, acc)) {
		w = rights & SHADOW_MAP_W;
		if (user && (s->g.cr4 & GPT_CR4_SMEP))
			nx = true;
		user = false;
		leaf |= SHADOW_SW_WP0;
	}
	/* The memory type the guest chose: PAT, PCD, PWT select its PAT entry (SDM Vol. 3A, 4.9.2,
	 * 13.12.3). PAT is bit 7 of a 4 KiB entry and bit 12 of a large leaf (Tables 4-4..4-20): a
	 * large guest page shadowed by 4 KiB leaves, or a 4 KiB shadow leaf for any guest page, moves
	 * it. */
	leaf |= (hpa & ~(size - 1) & SH_ADDR) | (gleaf & (GPT_PWT | GPT_PCD));
	if (paging && (gleaf & (gsize == SH_SIZE_4K ? GPT_PAT : GPT_PAT_LARGE)))
		leaf |= *level == 2 ? GPT_PAT_LARGE : GPT_PAT;
	leaf |= (*level == 2 ? GPT_PS : 0) | (w ? GPT_W : 0) | (user ? GPT_US : 0) | (nx ? GPT_NX : 0);
	return leaf | (uint64_t)cls << SHADOW_SW_SIZE_SHIFT;
}

/* The leaf a fill for a read would make for `gva` now, from the guest's tables as they are (no A/D
 * written: an entry whose A is clear was not cached by the CPU either); 0 when there is none. */
static uint64_t natural_leaf(const struct shadow *s, uint64_t gva, unsigned *level)
{
	bool pae = (s->g.cr4 & GPT_CR4_PAE) && !(s->g.efer & GPT_EFER_LMA);
	struct gpt_result g;
	uint64_t hpa, msize;
	unsigned rights, i;

	if (gpt_translate(&s->g, gva, GPT_ACC_PEEK, &g))
		return 0;
	for (i = 0; guest_paging(s) && i < g.nsteps; i++)
		if (!(g.steps[i].entry & GPT_A) && !(pae && g.steps[i].level == 3))
			return 0;
	if (s->map_gpa(s->map_arg, g.gpa, &hpa, &msize, &rights))
		return 0;
	return compose(s, &g, hpa, msize, rights, 0, level);
}

/* Installs `leaf` (of `level`, for a guest page of class `cls`) for `gva` in the current root,
 * building the tables on the way and marking them for INVLPG of large guest pages. */
static int fill(struct shadow *s, uint64_t gva, unsigned level, uint64_t leaf, unsigned cls)
{
	struct shadow_root *r = s->cur;
	uint64_t lin = norm(r, gva), t = r->hpa, e;
	unsigned lvl, i;

	for (lvl = r->levels; lvl > level; lvl--) {
		i = idx(r, lin, lvl);
		e = tab(t)[i];
		if (r->levels == 3 && lvl == 3) {
			t = e & SH_ADDR;
			continue;
		}
		if ((e & GPT_P) && is_leaf(e, lvl)) {
			e = 0;   /* a 2 MiB leaf where a table is needed now: it was stale */
			want_flush(s, ~0ull);
		}
		if (!(e & GPT_P)) {
			uint64_t n = alloc_table(s);

			if (!n)
				return -ENOMEM;
			e = n | SH_NONLEAF;
		}
		/* A piece of a guest page at least this entry's span: INVLPG of any of its addresses
		 * finds the mark on its way down and drops the whole guest page. */
		if (cls != SHADOW_G4K && cls_size(cls) >= span(lvl) && cls > cls_of(e))
			e = (e & ~SHADOW_SW_SIZE) | (uint64_t)cls << SHADOW_SW_SIZE_SHIFT;
		tab(t)[i] = e;
		t = e & SH_ADDR;
	}
	i = idx(r, lin, level);
	e = tab(t)[i];
	if (level == 2 && (e & GPT_P) && !(e & GPT_PS))
		free_tree(s, r, e & SH_ADDR, 1);   /* a table where a 2 MiB leaf goes now */
	/* A present entry replaced (a permission fault on it: the write that sets the guest's D, a
	 * CR0.WP=0 copy): the CPU may hold the old one. */
	if (e & GPT_P)
		want_flush(s, level == 1 ? canon(r, lin) : ~0ull);
	tab(t)[i] = leaf;
	return 0;
}

/* --- dropping translations ---------------------------------------------------------------------- */

/* Drops every translation of [lo, hi) (table-internal linear addresses) from the table at `hpa`
 * whose entries are of `level` and whose first entry maps `base`. */
static void zap_range(struct shadow *s, const struct shadow_root *r, uint64_t hpa, unsigned level,
		      uint64_t base, uint64_t lo, uint64_t hi)
{
	uint64_t *t = tab(hpa), sp = span(level);
	unsigned i, n = nentries(r, level);

	for (i = 0; i < n; i++) {
		uint64_t a = base + i * sp, e = t[i];

		if (a + sp <= lo || a >= hi || !(e & GPT_P))
			continue;
		if (r->levels == 3 && level == 3) {
			zap_range(s, r, e & SH_ADDR, 2, a, lo, hi);
		} else if (is_leaf(e, level) || (a >= lo && a + sp <= hi)) {
			if (!is_leaf(e, level))
				free_tree(s, r, e & SH_ADDR, level - 1);
			t[i] = 0;
		} else {
			zap_range(s, r, e & SH_ADDR, level - 1, a, lo, hi);
		}
	}
}

static void zap_page(struct shadow *s, const struct shadow_root *r, uint64_t lin, uint64_t size)
{
	uint64_t lo = lin & ~(size - 1);

	zap_range(s, r, r->hpa, r->levels, 0, lo, lo + size);
}

/*
 * SDM 4.10.4.1: INVLPG invalidates the TLB entries for the page holding the address, all of them for
 * a page larger than 4 KiB, whatever size the tables say now. A large guest page may be shadowed by
 * smaller leaves (the GPA map is 4 KiB there, or 4 MiB does not exist in PAE format), and the address
 * may fall in a part never filled: the marks fill() left on the way down name the guest page's size,
 * and for a 4 MiB page of 32-bit paging the other 2 MiB half (the neighbouring PDE) is looked at too.
 */
static void invlpg_root(struct shadow *s, const struct shadow_root *r, uint64_t gva)
{
	uint64_t flush = r == s->cur ? ~0ull : 0;   /* only the current root's entries can be cached */
	bool paging32 = guest_paging(s) && !(s->g.cr4 & GPT_CR4_PAE);
	uint64_t lin, t, e;
	unsigned lvl, i, c;

	lin = norm(r, gva);
	t = r->hpa;
	for (lvl = r->levels; lvl >= 1; lvl--) {
		i = idx(r, lin, lvl);
		e = tab(t)[i];
		if (r->levels == 3 && lvl == 3) {
			t = e & SH_ADDR;
			continue;
		}
		if (lvl == 2 && paging32) {
			uint64_t buddy = tab(t)[i ^ 1];

			if ((buddy & GPT_P) && cls_of(buddy) == SHADOW_G4M) {
				zap_page(s, r, lin, SH_SIZE_4M);
				if (flush)
					want_flush(s, flush);
				return;
			}
		}
		if (!(e & GPT_P))
			return;
		c = cls_of(e);
		if (c != SHADOW_G4K && cls_size(c) >= span(lvl)) {
			zap_page(s, r, lin, cls_size(c));
			if (flush)
				want_flush(s, flush);
			return;
		}
		if (is_leaf(e, lvl)) {
			tab(t)[i] = 0;
			if (flush)
				want_flush(s, lvl == 1 ? canon(r, lin) : ~0ull);
			return;
		}
		t = e & SH_ADDR;
	}
}

/* Every root, not only the current one: a global page's entry is dropped for every PCID (SDM
 * 4.10.4.1), and the other roots may be loaded again without a flush (shadow_cr3_load_keep). The
 * roots of another paging mode are rebuilt or revalidated before use anyway (mode_key). */
void shadow_invlpg(struct shadow *s, uint64_t gva)
{
	unsigned i;

	s->stats.invlpgs++;
	for (i = 0; i < SHADOW_ROOTS; i++)
		if (s->roots[i].hpa && s->roots[i].key_mode == mode_key(&s->g))
			invlpg_root(s, &s->roots[i], gva);
}

void shadow_mark_stale(struct shadow *s)
{
	unsigned i;

	for (i = 0; i < SHADOW_ROOTS; i++)
		s->roots[i].stale = true;
}

void shadow_flush_all(struct shadow *s)
{
	unsigned i;

	for (i = 0; i < SHADOW_ROOTS; i++)
		if (s->roots[i].hpa)
			clear_table(s, &s->roots[i], s->roots[i].hpa, s->roots[i].levels);
	want_flush(s, ~0ull);
}

/* Revalidates every leaf below the table at `hpa` (entries of `level`, the first mapping `base`):
 * kept when it is what a fill would make now, else dropped. */
static void sync_table(struct shadow *s, const struct shadow_root *r, uint64_t hpa, unsigned level,
		       uint64_t base)
{
	uint64_t *t = tab(hpa);
	unsigned i, n = nentries(r, level);

	for (i = 0; i < n; i++) {
		uint64_t e = t[i], a = base + i * span(level);
		unsigned nl = 0;

		if (!(e & GPT_P))
			continue;
		if (!is_leaf(e, level) || (r->levels == 3 && level == 3)) {
			sync_table(s, r, e & SH_ADDR, level - 1, a);
			continue;
		}
		if (natural_leaf(s, canon(r, a), &nl) == e && nl == level) {
			s->stats.sync_kept++;
		} else {
			t[i] = 0;
			s->stats.sync_dropped++;
		}
	}
}

/* --- the interface ------------------------------------------------------------------------------ */

void shadow_init(struct shadow *s)
{
	s->cur = NULL;
	s->clock = 0;
	s->pages = s->peak_pages = 0;
	memset(s->roots, 0, sizeof(s->roots));
	memset(&s->stats, 0, sizeof(s->stats));
	s->flush = SHADOW_FLUSH_NONE;
}

static int cr3_load(struct shadow *s, uint64_t cr3, bool keep, uint64_t *root_hpa)
{
	struct gpt_ctx g = s->g;
	bool lma = (g.cr0 & GPT_CR0_PG) && (g.efer & GPT_EFER_LMA);
	bool pae = (g.cr0 & GPT_CR0_PG) && (g.cr4 & GPT_CR4_PAE) && !lma;
	struct shadow_root *r = NULL, *prev = s->cur;
	uint64_t key_cr3, key_mode;
	unsigned i, pcid;
	bool kept = false;

	g.cr3 = cr3;
	if (lma && (g.cr4 & GPT_CR4_LA57))
		return -EINVAL;
	if (pae) {
		int e = gpt_load_pdptes(&g, g.pdpte);

		if (e)
			return e == GPT_RESERVED ? -EINVAL : -EFAULT;
	}
	s->g.cr3 = cr3;
	memcpy(s->g.pdpte, g.pdpte, sizeof(g.pdpte));
	key_cr3 = !(g.cr0 & GPT_CR0_PG) ? 0 : lma ? cr3 & SH_ADDR : pae ? cr3 & 0xffffffe0 : cr3 & 0xfffff000;
	key_mode = mode_key(&g);
	pcid = lma && (g.cr4 & SHADOW_CR4_PCIDE) ? (unsigned)(cr3 & 0xfff) : 0;

	for (i = 0; i < SHADOW_ROOTS; i++)
		if (s->roots[i].hpa && s->roots[i].key_cr3 == key_cr3 && s->roots[i].key_mode == key_mode &&
		    s->roots[i].key_pcid == pcid)
			r = &s->roots[i];
	/* A flushing load invalidates the PCID's translations whatever CR3 they came from (SDM
	 * 4.10.4.1): the PCID's other roots may no longer be loaded as they are. */
	for (i = 0; !keep && i < SHADOW_ROOTS; i++)
		if (&s->roots[i] != r && s->roots[i].key_pcid == pcid)
			s->roots[i].stale = true;
	if (r && keep && !r->stale) {
		s->stats.cr3_hits++;
		s->stats.cr3_kept++;
		s->cur = r;
		kept = true;
	} else if (r) {
		s->stats.cr3_hits++;
		s->cur = r;
		/* A MOV to CR3 flushes the TLB (SDM 4.10.4.1): what this root holds may be stale. */
		sync_table(s, r, r->hpa, r->levels, 0);
		r->stale = false;
	} else {
		s->stats.cr3_misses++;
		for (i = 0; i < SHADOW_ROOTS; i++)
			if (!r || !s->roots[i].hpa || (r->hpa && s->roots[i].last_use < r->last_use))
				r = &s->roots[i];
		if (r->hpa) {
			root_free(s, r);
			s->stats.evictions++;
		}
		s->cur = NULL;
		if (root_create(s, r, lma ? 4 : 3)) {
			reclaim(s);
			if (root_create(s, r, lma ? 4 : 3))
				return -ENOMEM;
		}
		r->key_cr3 = key_cr3;
		r->key_mode = key_mode;
		r->key_pcid = pcid;
		s->cur = r;
	}
	/* Another root, or this one revalidated: the CPU's translations are the old root's (one kept
	 * for this CR3 and PCID is what the guest asked to keep). */
	if (!kept || r != prev)
		want_flush(s, ~0ull);
	memcpy(r->pdpte, g.pdpte, sizeof(r->pdpte));
	r->last_use = ++s->clock;
	*root_hpa = r->hpa;
	return 0;
}

int shadow_cr3_write(struct shadow *s, uint64_t cr3, uint64_t *root_hpa)
{
	return cr3_load(s, cr3, false, root_hpa);
}

int shadow_cr3_load_keep(struct shadow *s, uint64_t cr3, uint64_t *root_hpa)
{
	return cr3_load(s, cr3, true, root_hpa);
}

void shadow_invpcid(struct shadow *s, unsigned type, unsigned pcid, uint64_t gva)
{
	unsigned i;

	if (type == 0) {
		shadow_invlpg(s, gva);
		return;
	}
	s->stats.invpcids++;
	for (i = 0; i < SHADOW_ROOTS; i++)
		if (s->roots[i].hpa && (type != 1 || s->roots[i].key_pcid == pcid)) {
			clear_table(s, &s->roots[i], s->roots[i].hpa, s->roots[i].levels);
			if (&s->roots[i] == s->cur)
				want_flush(s, ~0ull);
		}
}

enum shadow_pf shadow_page_fault(struct shadow *s, uint64_t gva, uint32_t error, struct shadow_fault *f)
{
	unsigned acc = GPT_ACC_SET_AD, rights, level, old_level;
	struct gpt_result g;
	uint64_t hpa, msize, leaf, old;

	*f = (struct shadow_fault){ 0 };
	if (!s->cur)
		return SHADOW_UNSUPPORTED;
	acc |= error & GPT_PF_W ? GPT_ACC_WRITE : 0;
	acc |= error & GPT_PF_US ? GPT_ACC_USER : 0;
	acc |= error & GPT_PF_ID ? GPT_ACC_FETCH : 0;
	/* An implicit supervisor access (descriptor tables...) at CPL 3 shows U/S=0 (SDM 4.7). */
	if (!(error & GPT_PF_US) && s->g.cpl == 3)
		acc |= GPT_ACC_IMPLICIT;

	switch (gpt_translate(&s->g, gva, acc, &g)) {
	case GPT_OK:
		break;
	case GPT_NOT_PRESENT:
	case GPT_RESERVED:
	case GPT_PERM:
		f->cr2 = g.gva;
		f->pf_error = g.pf_error;
		s->stats.injects++;
		return SHADOW_INJECT;
	case GPT_BAD_GPA:
		f->gpa = g.gpa;
		return SHADOW_TABLE_GPA;
	case GPT_RACE:
		return SHADOW_RETRY;
	default:
		return SHADOW_UNSUPPORTED;
	}
	if (s->map_gpa(s->map_arg, g.gpa, &hpa, &msize, &rights) ||
	    ((acc & GPT_ACC_WRITE) && !(rights & SHADOW_MAP_W)) || ((acc & GPT_ACC_FETCH) && !(rights & SHADOW_MAP_X))) {
		f->gpa = g.gpa;
		s->stats.gpa_faults++;
		return SHADOW_GPA;
	}
	/* A supervisor write that CR0.WP = 0 lets into a read-only user page under CR4.SMAP: explicit, with
	 * RFLAGS.AC = 1, or gpt_translate refused it (SDM Vol. 3A, 4.6.1). WP = 0's supervisor-only leaf
	 * (compose) would let through every later supervisor access to the page that SMAP faults: the
	 * implicit ones and those with AC = 0. So the caller emulates this one store (gpt_translate has set
	 * the guest's A and D for it) and the shadow keeps the page as the guest maps it: read-only, user. */
	if (wp0_write(s, &g, acc) && g.user && (s->g.cr4 & GPT_CR4_SMAP)) {
		f->cr2 = g.gva;
		f->gpa = g.gpa;
		return SHADOW_EMULATE;
	}
	leaf = compose(s, &g, hpa, msize, rights, acc, &level);
	/* A protection fault (P = 1) on the very leaf the shadow would make again: the guest's entries
	 * allow the access as the error code shows it, yet the CPU refused it. Only an access the error
	 * code does not tell whole does that: an implicit supervisor access (a descriptor table's, an
	 * event's stack) at CPL 0-2 with RFLAGS.AC = 1, which looks explicit (SDM Vol. 3A, 4.7) and which
	 * SMAP faults whatever AC (4.6.1). The fault is the guest's, with the CPU's error code; refilling
	 * would loop. (The CPU holds no narrower copy of the leaf: every change to a present leaf asks
	 * for its flush, shadow_take_flush.) */
	if ((error & GPT_PF_P) && shadow_lookup(s, gva, &old, &old_level) && old == leaf && old_level == level) {
		f->cr2 = gva;
		f->pf_error = error;
		s->stats.injects++;
		return SHADOW_INJECT;
	}
	if (fill(s, gva, level, leaf, cls_of(leaf))) {
		reclaim(s);
		if (fill(s, gva, level, leaf, cls_of(leaf)))
			return SHADOW_NOMEM;
	}
	s->stats.fills++;
	return SHADOW_FILLED;
}

bool shadow_lookup(const struct shadow *s, uint64_t gva, uint64_t *entry, unsigned *level)
{
	const struct shadow_root *r = s->cur;
	uint64_t lin, t, e;
	unsigned lvl;

	if (!r)
		return false;
	lin = norm(r, gva);
	t = r->hpa;
	for (lvl = r->levels; lvl >= 1; lvl--) {
		e = tab(t)[idx(r, lin, lvl)];
		if (!(e & GPT_P))
			return false;
		if (!(r->levels == 3 && lvl == 3) && is_leaf(e, lvl)) {
			*entry = e;
			*level = lvl;
			return true;
		}
		t = e & SH_ADDR;
	}
	return false;
}

uint64_t shadow_bytes(const struct shadow *s)
{
	return s->pages * PAGE_SIZE;
}

void shadow_destroy(struct shadow *s)
{
	unsigned i;

	for (i = 0; i < SHADOW_ROOTS; i++)
		if (s->roots[i].hpa)
			root_free(s, &s->roots[i]);
	s->cur = NULL;
}
