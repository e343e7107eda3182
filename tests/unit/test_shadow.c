/* Host unit tests of shadow/shadow.c against a model of the two-stage walk: random guest tables in
 * every paging mode and random GPA maps; every access through the shadow (walked as the CPU walks it,
 * with shadow_page_fault on each #PF) must end as the guest's own CPU would end it (gpt_translate on a
 * copy of guest memory): the same HPA or the same #PF, rights the intersection, the same A/D bits in
 * guest memory; and again after random guest table writes followed by INVLPG or a CR3 reload. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/errno.h"
#include "pmm/pmm.h"
#include "shadow/shadow.h"
#include "tests/unit/fake_pmm.h"
#include "tests/unit/unit.h"

#define P   GPT_P
#define W   GPT_W
#define US  GPT_US
#define PS  GPT_PS
#define NX  GPT_NX
#define A   GPT_A
#define D   GPT_D

#define GMEM_SIZE  (2ull << 20)       /* guest RAM holding tables: GPA 0..2 MiB ("not RAM" above) */
#define POOL       0x100000ull        /* random table pages */
#define POOL_PAGES 48
#define PDPTS      0xf0000ull         /* PAE: the PDPTs, 32 bytes each, never rewritten at random */
#define HOST_BASE  0x1000000ull       /* fake host memory for shadow tables: 16 MiB.. */
#define HOST_SIZE  (48ull << 20)

static uint8_t *gmem, *refmem;        /* the guest's memory, and the reference CPU's copy */
static uint64_t rng;
static uint64_t map_seed;
static unsigned map_calls;

static uint64_t rnd(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

static uint64_t hash(uint64_t x)
{
	x ^= map_seed;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static int read_mem(void *arg, uint64_t gpa, void *dst, unsigned len)
{
	if (gpa >= GMEM_SIZE || len > GMEM_SIZE - gpa)
		return -1;
	memcpy(dst, (uint8_t *)arg + gpa, len);
	return 0;
}

static int cmpxchg_mem(void *arg, uint64_t gpa, uint64_t old, uint64_t val, unsigned len)
{
	uint64_t cur = 0;

	if (gpa >= GMEM_SIZE)
		return -1;
	memcpy(&cur, (uint8_t *)arg + gpa, len);
	if (cur != old)
		return 1;
	memcpy((uint8_t *)arg + gpa, &val, len);
	return 0;
}

/*
 * The random GPA map, a function of map_seed: each 2 MiB of guest-physical space is unbacked (1 in 8),
 * one 2 MiB host block (3 in 8), or 4 KiB pages each with its own host page (1 in 16 unbacked).
 * Rights: writable 7 in 8, executable 7 in 8. Host addresses lie in 4 GiB..1 TiB: never dereferenced.
 */
static uint64_t map_4k_lo, map_4k_hi;   /* directed cases: 4 KiB pages, all rights, HPA = GPA + 4 GiB */

static bool gpa_map(uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights)
{
	uint64_t h = hash(gpa >> 21), k = h % 8;

	if (gpa >= map_4k_lo && gpa < map_4k_hi) {
		*size = PAGE_SIZE;
		*hpa = gpa + (1ull << 32);
		*rights = SHADOW_MAP_W | SHADOW_MAP_X;
		return true;
	}
	if (k == 0)
		return false;
	if (k <= 3) {
		*size = SIZE_2M;
		*hpa = (((h >> 8) & 0x7fffe00000ull) | (1ull << 32)) + (gpa & (SIZE_2M - 1));
	} else {
		h = hash((gpa >> 12) | (1ull << 60));
		if (h % 16 == 0)
			return false;
		*size = PAGE_SIZE;
		*hpa = (((h >> 8) & 0xfffffff000ull) | (1ull << 32)) + (gpa & (PAGE_SIZE - 1));
	}
	*rights = ((h >> 4) % 8 ? SHADOW_MAP_W : 0) | ((h >> 7) % 8 ? SHADOW_MAP_X : 0);
	return true;
}

static int map_gpa(void *arg, uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights)
{
	(void)arg;
	map_calls++;
	return gpa_map(gpa, hpa, size, rights) ? 0 : -1;
}

/* The CPU walking the shadow: host memory is the fake physical memory. */
static int read_host(void *arg, uint64_t hpa, void *dst, unsigned len)
{
	(void)arg;
	if (hpa < HOST_BASE || hpa + len > HOST_BASE + HOST_SIZE)
		return -1;
	memcpy(dst, phys_to_virt(hpa), len);
	return 0;
}

static struct gpt_ctx hw_ctx(const struct shadow *s, uint64_t root)
{
	struct gpt_ctx h = { .cr0 = GPT_CR0_PG | GPT_CR0_WP, .cr3 = root, .cr4 = GPT_CR4_PAE, .efer = GPT_EFER_NXE,
			     .phys_bits = 46, .cpl = s->g.cpl, .rflags = s->g.rflags, .read_gpa = read_host };

	if (s->g.cr0 & GPT_CR0_PG)
		h.cr4 |= s->g.cr4 & (GPT_CR4_SMEP | GPT_CR4_SMAP);
	if (s->cur->levels == 4)
		h.efer |= GPT_EFER_LMA;
	else
		memcpy(h.pdpte, phys_to_virt(root), sizeof(h.pdpte));
	return h;
}

/*
 * The CPU's TLB over the shadow (SDM Vol. 3A, 4.10.2), kept across VM exits and entries and root
 * switches as with a VPID or an ASID: one entry per 4 KiB page (a larger leaf cached in 4 KiB pieces,
 * which 4.10.2.3 allows), direct-mapped, with the page's HPA and the shadow walk's combined rights.
 * Entries go only when the shadow asks (shadow_take_flush: the page, or everything): a #PF taken on
 * one invalidates it on a CPU that delivers it (4.10.4.1), but this one exits to the hypervisor, and
 * the model does not count on it. A hit whose rights allow the access is used without a walk. Not
 * modelled: the paging-structure caches (for them every freed table asks for everything).
 */
#define TLB_SETS 256
static struct tlb_entry {
	uint64_t page, hpa;
	bool valid, writable, user, nx;
} tlb[TLB_SETS];
static unsigned long long n_tlb_hits, n_tlb_pf, n_flush_page, n_flush_all;

static struct tlb_entry *tlb_slot(uint64_t gva)
{
	return &tlb[(gva >> 12) % TLB_SETS];
}

/* Before the guest runs again: what the shadow's operations asked the CPU to drop. */
static void tlb_take(struct shadow *s)
{
	uint64_t gva;

	switch (shadow_take_flush(s, &gva)) {
	case SHADOW_FLUSH_PAGE:
		if (tlb_slot(gva)->page == gva >> 12)
			tlb_slot(gva)->valid = false;
		n_flush_page++;
		break;
	case SHADOW_FLUSH_ALL:
		memset(tlb, 0, sizeof(tlb));
		n_flush_all++;
		break;
	default:
		break;
	}
}

/* --- checks ------------------------------------------------------------------------------------- */

static unsigned long long n_access, n_hpa, n_inject, n_gpa, n_fills, n_exact, n_emulated, n_pat;
static unsigned bad;

#define EXPECT(cond, ...) do { \
	if (!(cond)) { \
		if (bad++ < 10) { \
			fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fprintf(stderr, "\n"); \
		} \
	} \
} while (0)

/*
 * One access `acc` at `gva` by the reference CPU (ref: no TLB, walks and sets A/D every time) and by
 * the CPU on the shadow (faults handled by shadow_page_fault), compared.
 */
static void access(struct shadow *s, struct gpt_ctx *ref, uint64_t root, uint64_t gva, unsigned acc)
{
	struct gpt_ctx hw = hw_ctx(s, root);
	struct gpt_result rr, hr;
	struct shadow_fault f = { 0 };
	uint64_t hpa = 0, msize, leaf;
	unsigned rights = 0, lvl, tries;
	int fr = gpt_translate(ref, gva, acc | GPT_ACC_SET_AD, &rr), hf = -1;
	enum shadow_pf pf = SHADOW_UNSUPPORTED;
	bool mapped = fr == 0 && gpa_map(rr.gpa, &hpa, &msize, &rights), filled = false;
	struct tlb_entry *te = tlb_slot(gva);

	n_access++;
	tlb_take(s);             /* what the operations since the last access asked, before the guest runs */
	for (tries = 0; tries < 4; tries++) {
		if (te->valid && te->page == gva >> 12) {
			/* A hit: the entry's rights decide, without a walk. A #PF on it is not assumed
			 * to drop it (it exits to the hypervisor): the shadow's request must. */
			hr = (struct gpt_result){ .gva = gva, .writable = te->writable, .user = te->user, .nx = te->nx };
			hf = gpt_check_rights(&hw, acc, &hr);
			if (hf == 0) {
				n_tlb_hits++;
				hr.gpa = te->hpa | (gva & (PAGE_SIZE - 1));
				break;
			}
			n_tlb_pf++;
		} else {
			hf = gpt_translate(&hw, gva, acc, &hr);
			if (hf == 0) {
				*te = (struct tlb_entry){ .page = gva >> 12, .hpa = hr.gpa & ~(PAGE_SIZE - 1), .valid = true,
							  .writable = hr.writable, .user = hr.user, .nx = hr.nx };
				break;
			}
			EXPECT(hf == GPT_NOT_PRESENT || hf == GPT_PERM, "gva 0x%llx: the CPU's walk of the shadow: %d",
			       (unsigned long long)gva, hf);
		}
		pf = shadow_page_fault(s, gva, hr.pf_error, &f);
		tlb_take(s);
		if (pf != SHADOW_FILLED && pf != SHADOW_RETRY)
			break;
		filled = true;
	}
	if (fr == GPT_NOT_PRESENT || fr == GPT_RESERVED || fr == GPT_PERM) {
		n_inject++;
		EXPECT(hf != 0 && pf == SHADOW_INJECT && f.pf_error == rr.pf_error && f.cr2 == rr.gva,
		       "gva 0x%llx acc %x: the guest faults (%d, error %x) but the shadow: hw %d pf %d error %x",
		       (unsigned long long)gva, acc, fr, rr.pf_error, hf, pf, f.pf_error);
		return;
	}
	if (fr == GPT_BAD_GPA) {
		EXPECT(hf != 0 && pf == SHADOW_TABLE_GPA && f.gpa == rr.gpa, "gva 0x%llx: table outside RAM",
		       (unsigned long long)gva);
		return;
	}
	EXPECT(fr == 0, "gva 0x%llx: reference walk %d", (unsigned long long)gva, fr);
	if (!mapped || ((acc & GPT_ACC_WRITE) && !(rights & SHADOW_MAP_W)) ||
	    ((acc & GPT_ACC_FETCH) && !(rights & SHADOW_MAP_X))) {
		n_gpa++;
		EXPECT(hf != 0 && pf == SHADOW_GPA && f.gpa == rr.gpa,
		       "gva 0x%llx acc %x: the GPA map refuses GPA 0x%llx, shadow: hw %d pf %d",
		       (unsigned long long)gva, acc, (unsigned long long)rr.gpa, hf, pf);
		return;
	}
	/* CR0.WP = 0's supervisor write into a read-only user page under SMAP: the shadow leaves the page
	 * read-only and has the store emulated at the GPA (SHADOW_EMULATE), exactly then. */
	if ((ref->cr0 & GPT_CR0_PG) && (acc & GPT_ACC_WRITE) && !(acc & GPT_ACC_USER) && !(ref->cr0 & GPT_CR0_WP) &&
	    !rr.writable && rr.user && (ref->cr4 & GPT_CR4_SMAP)) {
		n_emulated++;
		EXPECT(hf != 0 && pf == SHADOW_EMULATE && f.gpa == rr.gpa,
		       "gva 0x%llx acc %x: a store to emulate at GPA 0x%llx, shadow: hw %d pf %d GPA 0x%llx",
		       (unsigned long long)gva, acc, (unsigned long long)rr.gpa, hf, pf, (unsigned long long)f.gpa);
		return;
	}
	n_hpa++;
	EXPECT(hf == 0 && hr.gpa == hpa, "gva 0x%llx acc %x: GPA 0x%llx HPA 0x%llx, the shadow gives %d 0x%llx (pf %d)",
	       (unsigned long long)gva, acc, (unsigned long long)rr.gpa, (unsigned long long)hpa, hf,
	       (unsigned long long)hr.gpa, pf);
	if (hf != 0 || !shadow_lookup(s, gva, &leaf, &lvl)) {
		EXPECT(hf != 0, "gva 0x%llx: translated but no leaf", (unsigned long long)gva);
		return;
	}
	/* Rights: the intersection (exactly, for a leaf this access filled; at most it, for an older
	 * one: a leaf may lag behind a D another alias of the page set since). */
	{
		bool paging = ref->cr0 & GPT_CR0_PG, wp0 = leaf & SHADOW_SW_WP0;
		uint64_t gleaf = paging ? rr.steps[rr.nsteps - 1].entry : D;
		bool w = rr.writable && (gleaf & D) && (rights & SHADOW_MAP_W);
		bool u = rr.user, nx = rr.nx || !(rights & SHADOW_MAP_X);
		bool lw = leaf & W, lu = leaf & US, lnx = leaf & NX;

		if (wp0) {
			EXPECT(paging && !(ref->cr0 & GPT_CR0_WP) && !lu && lw, "gva 0x%llx: WP=0 leaf 0x%llx",
			       (unsigned long long)gva, (unsigned long long)leaf);
			if (u && (ref->cr4 & GPT_CR4_SMEP))
				EXPECT(lnx, "gva 0x%llx: WP=0 leaf of a user page without XD under SMEP",
				       (unsigned long long)gva);
			return;
		}
		EXPECT((leaf & (GPT_PWT | GPT_PCD)) == (gleaf & (GPT_PWT | GPT_PCD)) || !paging,
		       "gva 0x%llx: leaf 0x%llx, the guest's caching bits 0x%llx", (unsigned long long)gva,
		       (unsigned long long)leaf, (unsigned long long)gleaf);
		/* PAT: bit 7 of a 4 KiB entry, bit 12 of a larger leaf, in the guest's and in the shadow's
		 * (SDM 4.9.2); none with paging off. */
		{
			bool gpat = paging && (gleaf & (rr.page_size == PAGE_SIZE ? GPT_PAT : GPT_PAT_LARGE));
			bool spat = leaf & (lvl == 1 ? GPT_PAT : GPT_PAT_LARGE);

			if (gpat)
				n_pat++;
			EXPECT(spat == gpat, "gva 0x%llx: leaf 0x%llx (level %u), the guest's 0x%llx (%llu bytes): PAT %d, want %d",
			       (unsigned long long)gva, (unsigned long long)leaf, lvl, (unsigned long long)gleaf,
			       (unsigned long long)rr.page_size, spat, gpat);
		}
		if (filled) {
			n_exact++;
			EXPECT(lw == w && lu == u && lnx == nx, "gva 0x%llx acc %x: leaf 0x%llx, want W%d U%d XD%d",
			       (unsigned long long)gva, acc, (unsigned long long)leaf, w, u, nx);
		} else {
			EXPECT((!lw || w) && lu == u && (lnx || !nx), "gva 0x%llx acc %x: leaf 0x%llx exceeds W%d U%d XD%d",
			       (unsigned long long)gva, acc, (unsigned long long)leaf, w, u, nx);
		}
		n_fills += filled;
	}
}

/*
 * Every leaf of the current root, checked against the guest's tables as they are now and the GPA map
 * (once the guest has invalidated what it changed, no leaf may be stale): it maps what the guest's
 * walk and the map give for its first address, no larger than either page, with no right that either
 * refuses. The shadow can never reach a host page the EPT twin could not.
 */
static unsigned long long n_audited;

static void audit_table(const struct shadow *s, uint64_t hpa, unsigned level, uint64_t base)
{
	const struct shadow_root *r = s->cur;
	const uint64_t *t = phys_to_virt(hpa);
	unsigned i, n = r->levels == 3 && level == 3 ? 4 : 512;
	bool pae_guest = (s->g.cr4 & GPT_CR4_PAE) && !(s->g.efer & GPT_EFER_LMA), paging = s->g.cr0 & GPT_CR0_PG;

	for (i = 0; i < n; i++) {
		uint64_t e = t[i], a = base + ((uint64_t)i << (12 + 9 * (level - 1))), gva, mhpa, msize, size;
		struct gpt_result g;
		unsigned rights, k;

		if (!(e & P))
			continue;
		if (level == 3 && r->levels == 3) {
			audit_table(s, e & 0xffffffffff000ull, 2, a);
			continue;
		}
		if (level > 1 && !(e & PS)) {
			audit_table(s, e & 0xffffffffff000ull, level - 1, a);
			continue;
		}
		n_audited++;
		gva = r->levels == 4 ? (uint64_t)((int64_t)(a << 16) >> 16) : a;
		size = level == 2 ? SIZE_2M : PAGE_SIZE;
		if (gpt_translate(&s->g, gva, GPT_ACC_PEEK, &g) || !gpa_map(g.gpa, &mhpa, &msize, &rights)) {
			EXPECT(0, "leaf 0x%llx for GVA 0x%llx: the guest or the map no longer maps it",
			       (unsigned long long)e, (unsigned long long)gva);
			continue;
		}
		for (k = 0; paging && k < g.nsteps; k++)
			EXPECT((g.steps[k].entry & A) || (pae_guest && g.steps[k].level == 3),
			       "leaf for GVA 0x%llx: the guest's entry %u has no A", (unsigned long long)gva, k);
		EXPECT((e & 0xffffffffff000ull & ~(size - 1)) == (mhpa & ~(size - 1)) && msize >= size &&
		       (!paging || g.page_size >= size),
		       "leaf 0x%llx for GVA 0x%llx: GPA 0x%llx is HPA 0x%llx in a block of 0x%llx",
		       (unsigned long long)e, (unsigned long long)gva, (unsigned long long)g.gpa,
		       (unsigned long long)mhpa, (unsigned long long)msize);
		EXPECT(!(e & W) || ((rights & SHADOW_MAP_W) && (!paging || (g.steps[g.nsteps - 1].entry & D)) &&
				    (g.writable || ((e & SHADOW_SW_WP0) && !(s->g.cr0 & GPT_CR0_WP)))),
		       "leaf 0x%llx for GVA 0x%llx: writable beyond the guest or the map", (unsigned long long)e,
		       (unsigned long long)gva);
		EXPECT(!!(e & (level == 1 ? GPT_PAT : GPT_PAT_LARGE)) ==
		       (paging && (g.steps[g.nsteps - 1].entry & (g.page_size == PAGE_SIZE ? GPT_PAT : GPT_PAT_LARGE))),
		       "leaf 0x%llx for GVA 0x%llx: not the guest's PAT bit", (unsigned long long)e, (unsigned long long)gva);
		EXPECT(!(e & US) || g.user, "leaf 0x%llx for GVA 0x%llx: user beyond the guest", (unsigned long long)e,
		       (unsigned long long)gva);
		EXPECT((e & NX) || (!g.nx && (rights & SHADOW_MAP_X)),
		       "leaf 0x%llx for GVA 0x%llx: executable beyond the guest or the map", (unsigned long long)e,
		       (unsigned long long)gva);
	}
}

static void audit(const struct shadow *s)
{
	audit_table(s, s->cur->hpa, s->cur->levels, 0);
}

/* --- random guests ------------------------------------------------------------------------------ */

enum { M_OFF, M_32, M_32PSE, M_PAE, M_PAENX, M_LONG, M_LONGNOX, M_COUNT };

static bool wide(int mode)
{
	return mode >= M_PAE;
}

/* A random entry: mostly a pointer into the table pool, else a page frame (large with PS). */
static uint64_t gen_entry(int mode)
{
	uint64_t r = rnd(), e, fl = r >> 40;

	if (r % 8 == 0)
		return rnd() & ~(uint64_t)P;            /* not present: any bits */
	if ((r >> 3) % 4)
		e = POOL + ((r >> 5) % POOL_PAGES) * PAGE_SIZE;
	else if ((fl >> 10) & 1)
		e = rnd() & (wide(mode) ? 0xffffff000ull : 0xfffff000ull);
	else   /* a large page (or a table) aligned as one, so that its reserved bits are clear; its PAT
		* bit (12) set 1 in 4 */
		e = (rnd() & (wide(mode) ? ((fl >> 11) & 1 ? 0xfc0000000ull : 0xfffe00000ull) : 0xffc00000ull)) | PS |
		    ((fl >> 20) % 4 == 0 ? GPT_PAT_LARGE : 0);
	e |= P | (fl % 4 ? W : 0) | ((fl >> 2) % 4 ? US : 0) | ((fl >> 4) & 1 ? A : 0) | ((fl >> 5) & 1 ? D : 0);
	e |= (fl >> 6) % 8 == 0 ? GPT_PCD : 0;
	e |= (fl >> 9) % 8 == 0 ? GPT_G : 0;
	if (wide(mode) && (fl >> 12) % 4 == 0)
		e |= NX;
	if ((fl >> 14) % 64 == 0)
		e |= 1ull << (wide(mode) ? 51 : 21);   /* a reserved bit (above MAXPHYADDR; 4 MiB PDE bit 21) */
	return wide(mode) ? e : (uint32_t)e;
}

static void put_entry(int mode, uint64_t at, uint64_t e)
{
	memcpy(gmem + at, &e, wide(mode) ? 8 : 4);
	memcpy(refmem + at, &e, wide(mode) ? 8 : 4);
}

/* Entry index `i` of pool page `p`. */
static uint64_t pool_entry(int mode, unsigned p, unsigned i)
{
	return POOL + p * PAGE_SIZE + (uint64_t)i * (wide(mode) ? 8 : 4);
}

static uint64_t space_cr3(int mode, unsigned as)
{
	if (mode == M_PAE || mode == M_PAENX)
		return PDPTS + as * 32;
	return POOL + as * PAGE_SIZE;
}

#define NAS   6     /* address spaces: more than SHADOW_ROOTS, so roots are evicted */
#define NGVA  48    /* sampled addresses per case, in clusters sharing tables and large pages */

static uint64_t gen_gva(int mode, uint64_t anchor)
{
	uint64_t g = anchor ^ (rnd() & (rnd() & 1 ? 0x7fffff : 0x3fffffff));

	if (mode == M_LONG || mode == M_LONGNOX)
		return (uint64_t)((int64_t)(g << 16) >> 16);
	return (uint32_t)g;
}

static int switch_to(struct shadow *s, struct gpt_ctx *ref, uint64_t cr3, uint64_t *root)
{
	int e = shadow_cr3_write(s, cr3, root);

	ref->cr3 = cr3;
	memcpy(ref->pdpte, s->g.pdpte, sizeof(ref->pdpte));
	if (s->g.cr0 & GPT_CR0_PG && (s->g.cr4 & GPT_CR4_PAE) && !(s->g.efer & GPT_EFER_LMA)) {
		uint64_t pd[4];

		CHECK_EQ(gpt_load_pdptes(ref, pd), 0);
		CHECK(memcmp(pd, s->g.pdpte, sizeof(pd)) == 0);
	}
	return e;
}

static unsigned random_acc(const struct gpt_ctx *g)
{
	unsigned acc = (unsigned)rnd() % 3 == 0 ? GPT_ACC_WRITE : 0;

	if (!acc && rnd() % 3 == 0)
		acc = GPT_ACC_FETCH;
	if (g->cpl == 3)
		acc |= rnd() % 8 ? GPT_ACC_USER : GPT_ACC_IMPLICIT;
	return acc;
}

static unsigned long long n_invlpg, n_reload, n_writes, n_skipped;
static struct shadow_stats total;
static uint64_t max_peak;

static void one_case(unsigned ncase)
{
	int mode = (int)(ncase % M_COUNT);
	struct shadow s;
	struct gpt_ctx ref;
	uint64_t gvas[NGVA], anchor = 0, root = 0, cr0, cr4 = 0, efer = 0;
	unsigned i, j, as = 0, phase;

	memset(gmem, 0, GMEM_SIZE);
	for (i = 0; i < POOL_PAGES; i++)
		for (j = 0; j < (wide(mode) ? 512u : 1024u); j++)
			put_entry(mode, pool_entry(mode, i, j), gen_entry(mode));
	for (i = 0; i < NAS * 4; i++)   /* PAE PDPTs: pointer or not present, no reserved bit */
		put_entry(M_PAE, PDPTS + i * 8, rnd() % 8 ? (POOL + (rnd() % POOL_PAGES) * PAGE_SIZE) | P : 0);
	memcpy(refmem, gmem, GMEM_SIZE);
	map_seed = rnd();

	cr0 = mode == M_OFF ? 0 : GPT_CR0_PG;
	cr0 |= rnd() % 4 ? GPT_CR0_WP : 0;
	cr4 |= mode == M_32PSE ? GPT_CR4_PSE : 0;
	cr4 |= mode >= M_PAE ? GPT_CR4_PAE : 0;
	efer |= mode == M_PAENX || mode == M_LONG ? GPT_EFER_NXE : 0;
	efer |= mode >= M_LONG ? GPT_EFER_LMA : 0;
	cr4 |= rnd() % 2 ? GPT_CR4_SMEP : 0;
	cr4 |= rnd() % 2 ? GPT_CR4_SMAP : 0;

	memset(&s, 0, sizeof(s));
	memset(tlb, 0, sizeof(tlb));
	shadow_init(&s);
	s.g = (struct gpt_ctx){ .cr0 = cr0, .cr4 = cr4, .efer = efer, .phys_bits = 36, .cpl = rnd() % 2 ? 3 : 0,
				.rflags = rnd() % 2 ? GPT_RFLAGS_AC : 0, .read_gpa = read_mem, .cmpxchg_gpa = cmpxchg_mem,
				.arg = gmem };
	s.map_gpa = map_gpa;
	ref = s.g;
	ref.arg = refmem;

	for (i = 0; i < NGVA; i++) {
		if (i % 8 == 0)
			anchor = rnd();
		gvas[i] = gen_gva(mode, anchor);
	}
	CHECK_EQ(switch_to(&s, &ref, space_cr3(mode, 0), &root), 0);

	for (phase = 0; phase < 8; phase++) {
		uint64_t mod[8];
		unsigned nmod = 1 + (unsigned)(rnd() % 8);

		/* accesses: every sampled address, random kinds, twice (the second mostly hits) */
		for (j = 0; j < 2; j++)
			for (i = 0; i < NGVA; i++)
				access(&s, &ref, root, gvas[i], random_acc(&s.g));
		if (memcmp(gmem, refmem, GMEM_SIZE))
			EXPECT(0, "case %u phase %u: guest memory (A/D) differs from the reference CPU's", ncase, phase);
		audit(&s);

		if (phase % 3 == 2) {
			/* process switches: other address spaces, a pass of accesses in each (six spaces
			 * over SHADOW_ROOTS roots: some are evicted, some come back to a cached root) */
			for (j = 0; j < 3; j++) {
				as = (unsigned)(rnd() % NAS);
				CHECK_EQ(switch_to(&s, &ref, space_cr3(mode, as), &root), 0);
				audit(&s);
				for (i = 0; j < 2 && i < NGVA; i++)
					access(&s, &ref, root, gvas[i], random_acc(&s.g));
			}
			continue;
		}
		/* the guest rewrites entries of its tables... */
		struct gpt_result before[NGVA];
		for (i = 0; i < NGVA; i++)
			gpt_translate(&ref, gvas[i], GPT_ACC_PEEK, &before[i]);
		for (i = 0; i < nmod; i++) {
			unsigned p = (unsigned)(rnd() % POOL_PAGES), k;
			uint64_t e, old = 0;

			/* mostly an entry a sampled address uses, sometimes any */
			if (rnd() % 4) {
				struct gpt_result *b = &before[rnd() % NGVA];

				k = b->nsteps ? (unsigned)(rnd() % b->nsteps) : 0;
				mod[i] = b->nsteps ? b->steps[k].entry_gpa : pool_entry(mode, p, 0);
				if (mod[i] < POOL || mod[i] >= POOL + POOL_PAGES * PAGE_SIZE)
					mod[i] = pool_entry(mode, p, 0);
			} else {
				mod[i] = pool_entry(mode, p, (unsigned)(rnd() % (wide(mode) ? 512 : 1024)));
			}
			memcpy(&old, gmem + mod[i], wide(mode) ? 8 : 4);
			switch (rnd() % 4) {
			case 0:
				e = old & ~(A | D);                   /* page aging, write-back: A/D cleared */
				break;
			case 1:
				e = old ^ (W | US | (wide(mode) ? NX : 0));   /* rights changed */
				break;
			case 2:
				e = old ^ PS;                         /* a large page becomes a table, or back */
				break;
			default:
				e = gen_entry(mode);                  /* anything */
				break;
			}
			put_entry(mode, mod[i], e);
			n_writes++;
		}
		/* ...and invalidates as the SDM requires (4.10.4.2): INVLPG of each page whose
		 * translation used a changed entry (one address of a large page is enough), or a
		 * reload of CR3 */
		if (rnd() % 2) {
			for (i = 0; i < NGVA; i++) {
				bool hit = false, large_leaf_only = true;
				unsigned k, m;

				for (k = 0; k < before[i].nsteps; k++)
					for (m = 0; m < nmod; m++)
						if (before[i].steps[k].entry_gpa == mod[m]) {
							hit = true;
							if (k != before[i].nsteps - 1 || before[i].page_size <= PAGE_SIZE ||
							    before[i].fault)
								large_leaf_only = false;
						}
				if (!hit)
					continue;
				if (large_leaf_only) {
					/* another sampled address of the same large page, if any, does it */
					uint64_t pg = before[i].gva & ~(before[i].page_size - 1);

					for (k = 0; k < i; k++)
						if (before[k].fault == 0 && before[k].page_size == before[i].page_size &&
						    (before[k].gva & ~(before[k].page_size - 1)) == pg &&
						    before[k].steps[before[k].nsteps - 1].entry_gpa ==
						    before[i].steps[before[i].nsteps - 1].entry_gpa)
							break;
					if (k < i) {
						n_skipped++;
						continue;
					}
				}
				shadow_invlpg(&s, gvas[i]);
				n_invlpg++;
			}
		} else {
			CHECK_EQ(switch_to(&s, &ref, space_cr3(mode, as), &root), 0);
			n_reload++;
		}
		audit(&s);
	}
	CHECK(s.pages <= s.peak_pages);
	CHECK_EQ(s.pages, fake_pmm_outstanding());
	total.fills += s.stats.fills, total.injects += s.stats.injects, total.gpa_faults += s.stats.gpa_faults;
	total.cr3_hits += s.stats.cr3_hits, total.cr3_misses += s.stats.cr3_misses;
	total.evictions += s.stats.evictions, total.sync_kept += s.stats.sync_kept;
	total.sync_dropped += s.stats.sync_dropped;
	if (s.peak_pages > max_peak)
		max_peak = s.peak_pages;
	shadow_destroy(&s);
	CHECK_EQ(fake_pmm_outstanding(), 0);
}

static void test_random(void)
{
	unsigned c, ncases = 1000;

	rng = 0x9e3779b97f4a7c15ull;
	bad = 0;
	map_4k_lo = map_4k_hi = 0;
	for (c = 0; c < ncases; c++)
		one_case(c);
	CHECK_EQ(bad, 0);
	CHECK(n_hpa > 1000 && n_inject > 1000 && n_gpa > 100 && n_exact > 1000 && n_invlpg > 100 && n_reload > 100);
	CHECK(n_emulated > 10);
	CHECK(n_pat > 100);
	CHECK(n_audited > 10000);
	CHECK(n_tlb_hits > 10000 && n_tlb_pf > 100 && n_flush_page > 100 && n_flush_all > 1000);
	CHECK(total.cr3_hits > 100 && total.evictions > 100 && total.sync_kept > 100 && total.sync_dropped > 100);
	fprintf(stderr, "    shadow: %llu fills, %llu #PF injected, %llu GPA refusals; CR3 %llu hits, %llu misses, "
		"%llu evictions; CR3 syncs kept %llu leaves, dropped %llu; at most %llu table pages per vCPU\n",
		(unsigned long long)total.fills, (unsigned long long)total.injects,
		(unsigned long long)total.gpa_faults, (unsigned long long)total.cr3_hits,
		(unsigned long long)total.cr3_misses, (unsigned long long)total.evictions,
		(unsigned long long)total.sync_kept, (unsigned long long)total.sync_dropped,
		(unsigned long long)max_peak);
	fprintf(stderr, "    %u cases, %llu accesses: %llu translated (%llu checked exactly after a fill), "
		"%llu guest faults, %llu GPA-map refusals, %llu stores to emulate, %llu with the guest's PAT bit; %llu table writes, %llu INVLPG (%llu more pieces of large pages left to them), %llu CR3 reloads; %llu leaves audited\n",
		ncases, n_access, n_hpa, n_exact, n_inject, n_gpa, n_emulated, n_pat, n_writes, n_invlpg, n_skipped, n_reload, n_audited);
	fprintf(stderr, "    TLB over the shadow: %llu hits, %llu #PF on a cached entry; the shadow asked to flush "
		"%llu pages, everything %llu times\n", n_tlb_hits, n_tlb_pf, n_flush_page, n_flush_all);
}

/* --- directed cases ----------------------------------------------------------------------------- */

static void setup_shadow(struct shadow *s, struct gpt_ctx *ref, uint64_t cr0, uint64_t cr4, uint64_t efer)
{
	memset(gmem, 0, GMEM_SIZE);
	memset(refmem, 0, GMEM_SIZE);
	memset(s, 0, sizeof(*s));
	memset(tlb, 0, sizeof(tlb));
	shadow_init(s);
	s->g = (struct gpt_ctx){ .cr0 = cr0, .cr4 = cr4, .efer = efer, .phys_bits = 36, .read_gpa = read_mem,
				 .cmpxchg_gpa = cmpxchg_mem, .arg = gmem };
	s->map_gpa = map_gpa;
	*ref = s->g;
	ref->arg = refmem;
}

/* The directed cases' GPA map backs [lo, hi) with 4 KiB pages, all rights (map_4k_lo..hi): large
 * guest pages there are shadowed by 4 KiB leaves, the case where INVLPG must find the pieces. */
static void seed_4k_map(uint64_t lo, uint64_t hi)
{
	map_4k_lo = lo;
	map_4k_hi = hi;
}

/* The bug of the lost first version: a 4 MiB page of 32-bit paging, shadowed in PAE format by two
 * 2 MiB halves (here by 4 KiB pieces); INVLPG of an address in one half must drop the other half too,
 * also when the half holding the address was never filled. */
static void test_invlpg_4m(void)
{
	struct shadow s;
	struct gpt_ctx ref;
	uint64_t root, leaf, pd = 0x10000, gva_lo = 0x00c01000, gva_hi = 0x00e03000;
	unsigned lvl;

	setup_shadow(&s, &ref, GPT_CR0_PG | GPT_CR0_WP, GPT_CR4_PSE, 0);
	seed_4k_map(0x00400000, 0x00c00000);
	memcpy(gmem + pd + 3 * 4, &(uint32_t){ 0x00400000 | P | W | PS }, 4);   /* GVA 12..16M -> GPA 4..8M */
	memcpy(refmem, gmem, GMEM_SIZE);
	CHECK_EQ(switch_to(&s, &ref, pd, &root), 0);

	/* fill only the upper half, then INVLPG an address of the lower half */
	access(&s, &ref, root, gva_hi, 0);
	CHECK(shadow_lookup(&s, gva_hi, &leaf, &lvl));
	CHECK_EQ(lvl, 1);
	CHECK_EQ(leaf >> SHADOW_SW_SIZE_SHIFT & 3, SHADOW_G4M);
	CHECK(!shadow_lookup(&s, gva_lo, &leaf, &lvl));
	memcpy(gmem + pd + 3 * 4, &(uint32_t){ 0x00800000 | P | W | PS }, 4);   /* now GPA 8..12M */
	memcpy(refmem, gmem, GMEM_SIZE);
	shadow_invlpg(&s, gva_lo);
	CHECK(!shadow_lookup(&s, gva_hi, &leaf, &lvl));
	access(&s, &ref, root, gva_hi, 0);

	/* both halves filled, INVLPG of one: both go */
	access(&s, &ref, root, gva_lo, GPT_ACC_WRITE);
	CHECK(shadow_lookup(&s, gva_lo, &leaf, &lvl));
	CHECK(shadow_lookup(&s, gva_hi, &leaf, &lvl));
	memcpy(gmem + pd + 3 * 4, &(uint32_t){ 0x00400000 | P | PS }, 4);        /* read-only, GPA 4..8M */
	memcpy(refmem, gmem, GMEM_SIZE);
	shadow_invlpg(&s, gva_hi + 0x5000);
	CHECK(!shadow_lookup(&s, gva_lo, &leaf, &lvl));
	CHECK(!shadow_lookup(&s, gva_hi, &leaf, &lvl));
	access(&s, &ref, root, gva_lo, GPT_ACC_WRITE);   /* now the guest's own fault */
	access(&s, &ref, root, gva_hi, 0);
	CHECK_EQ(bad, 0);

	/* a 4 KiB page next to it: INVLPG drops only its own leaf */
	CHECK(shadow_lookup(&s, gva_hi, &leaf, &lvl));
	shadow_invlpg(&s, 0x00401000);
	CHECK(shadow_lookup(&s, gva_hi, &leaf, &lvl));
	shadow_destroy(&s);
	CHECK_EQ(fake_pmm_outstanding(), 0);
}

/* A 1 GiB page of 4-level paging shadowed by 4 KiB pieces, and a 2 MiB one by 2 MiB leaves. */
static void test_invlpg_1g(void)
{
	struct shadow s;
	struct gpt_ctx ref;
	uint64_t root, leaf, pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000;
	unsigned lvl;

	setup_shadow(&s, &ref, GPT_CR0_PG | GPT_CR0_WP, GPT_CR4_PAE, GPT_EFER_LMA | GPT_EFER_NXE);
	seed_4k_map(0x40000000, 0x40400000);
	memcpy(gmem + pml4, &(uint64_t){ pdpt | P | W | US }, 8);
	memcpy(gmem + pdpt + 8, &(uint64_t){ 0x40000000 | P | W | US | PS }, 8);
	memcpy(gmem + pdpt + 16, &(uint64_t){ pd | P | W | US }, 8);
	memcpy(gmem + pd, &(uint64_t){ 0x40000000 | P | W | US | PS }, 8);
	memcpy(refmem, gmem, GMEM_SIZE);
	CHECK_EQ(switch_to(&s, &ref, pml4, &root), 0);
	access(&s, &ref, root, 0x40001000, 0);
	access(&s, &ref, root, 0x40201000, 0);
	CHECK(shadow_lookup(&s, 0x40201000, &leaf, &lvl));
	CHECK_EQ(lvl, 1);
	shadow_invlpg(&s, 0x7fff0000);   /* the same 1 GiB guest page, never touched there */
	CHECK(!shadow_lookup(&s, 0x40001000, &leaf, &lvl));
	CHECK(!shadow_lookup(&s, 0x40201000, &leaf, &lvl));
	CHECK_EQ(bad, 0);
	shadow_destroy(&s);
	CHECK_EQ(fake_pmm_outstanding(), 0);
}

/* CR0.WP=0: a supervisor write to a read-only page works through a supervisor-only writable leaf;
 * a user access then gets the read-only user leaf back; with SMEP that leaf is XD. */
static void test_wp0(void)
{
	struct shadow s;
	struct gpt_ctx ref;
	uint64_t root, leaf, pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	unsigned lvl;

	setup_shadow(&s, &ref, GPT_CR0_PG, GPT_CR4_PAE | GPT_CR4_SMEP, GPT_EFER_LMA | GPT_EFER_NXE);
	seed_4k_map(0x200000, 0x201000);
	memcpy(gmem + pml4, &(uint64_t){ pdpt | P | W | US }, 8);
	memcpy(gmem + pdpt, &(uint64_t){ pd | P | W | US }, 8);
	memcpy(gmem + pd, &(uint64_t){ pt | P | W | US }, 8);
	memcpy(gmem + pt + 8, &(uint64_t){ 0x200000 | P | US }, 8);   /* user, read-only */
	memcpy(refmem, gmem, GMEM_SIZE);
	CHECK_EQ(switch_to(&s, &ref, pml4, &root), 0);
	access(&s, &ref, root, 0x1000, GPT_ACC_WRITE);
	CHECK(shadow_lookup(&s, 0x1000, &leaf, &lvl));
	CHECK((leaf & SHADOW_SW_WP0) && (leaf & W) && !(leaf & US) && (leaf & NX));
	CHECK(gmem[pt + 8] & D);
	s.g.cpl = ref.cpl = 3;
	access(&s, &ref, root, 0x1000, GPT_ACC_USER);
	CHECK(shadow_lookup(&s, 0x1000, &leaf, &lvl));
	CHECK(!(leaf & SHADOW_SW_WP0) && !(leaf & W) && (leaf & US));
	access(&s, &ref, root, 0x1000, GPT_ACC_USER | GPT_ACC_WRITE);   /* the guest's own fault */
	s.g.cpl = ref.cpl = 0;
	access(&s, &ref, root, 0x1000, GPT_ACC_FETCH);                  /* SMEP: the guest's own fault */
	CHECK_EQ(bad, 0);
	shadow_destroy(&s);
}

/* An implicit supervisor access (a descriptor table, an event's stack) at CPL 0 with RFLAGS.AC = 1 to a
 * user page under SMAP: SMAP faults it whatever AC (SDM Vol. 3A, 4.6.1), but its error code looks like
 * an explicit access's (4.7), which AC = 1 allows. The shadow fills the leaf for the explicit reading;
 * the CPU then faults on that very leaf, and the fault must go to the guest with the CPU's error
 * code, not be filled again for ever. A protection fault that a fill does change (the write that sets
 * D) is still filled. */
static void test_implicit_smap(void)
{
	struct shadow s;
	struct gpt_ctx ref, hw;
	struct gpt_result hr;
	struct shadow_fault f;
	uint64_t root, pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;

	setup_shadow(&s, &ref, GPT_CR0_PG | GPT_CR0_WP, GPT_CR4_PAE | GPT_CR4_SMAP, GPT_EFER_LMA | GPT_EFER_NXE);
	seed_4k_map(0x200000, 0x202000);
	memcpy(gmem + pml4, &(uint64_t){ pdpt | P | W | US }, 8);
	memcpy(gmem + pdpt, &(uint64_t){ pd | P | W | US }, 8);
	memcpy(gmem + pd, &(uint64_t){ pt | P | W | US }, 8);
	memcpy(gmem + pt + 8, &(uint64_t){ 0x200000 | P | W | US }, 8);    /* user, writable, D clear */
	memcpy(refmem, gmem, GMEM_SIZE);
	s.g.rflags = ref.rflags = GPT_RFLAGS_AC;
	CHECK_EQ(switch_to(&s, &ref, pml4, &root), 0);
	access(&s, &ref, root, 0x1000, 0);                    /* explicit read, AC = 1: filled, read-only */
	CHECK_EQ(bad, 0);
	/* The implicit write: the CPU's walk of the shadow faults (D clear: W = 0 in the leaf), P = 1;
	 * the fill sets D and widens the leaf: filled, not injected. */
	hw = hw_ctx(&s, root);
	CHECK(gpt_translate(&hw, 0x1000, GPT_ACC_WRITE | GPT_ACC_IMPLICIT, &hr) != 0);
	CHECK_EQ(hr.pf_error, GPT_PF_P | GPT_PF_W);
	CHECK_EQ(shadow_page_fault(&s, 0x1000, hr.pf_error, &f), SHADOW_FILLED);
	CHECK(gmem[pt + 8] & D);
	/* Again: now SMAP is all that refuses it, on the leaf a fill would make as it is. */
	hw = hw_ctx(&s, root);
	CHECK(gpt_translate(&hw, 0x1000, GPT_ACC_WRITE | GPT_ACC_IMPLICIT, &hr) != 0);
	CHECK_EQ(shadow_page_fault(&s, 0x1000, hr.pf_error, &f), SHADOW_INJECT);
	CHECK_EQ(f.pf_error, GPT_PF_P | GPT_PF_W);
	CHECK_EQ(f.cr2, 0x1000);
	/* The reference CPU, told it is implicit, faults with the same error code. */
	CHECK(gpt_translate(&ref, 0x1000, GPT_ACC_WRITE | GPT_ACC_IMPLICIT, &hr) != 0);
	CHECK_EQ(hr.pf_error, GPT_PF_P | GPT_PF_W);
	shadow_destroy(&s);
}

/* What each operation asks the CPU to drop (shadow.h, enum shadow_flush), one case at a time: nothing
 * for a fill of a not-present entry, the page for a 4 KiB leaf replaced or dropped, everything for a
 * larger leaf, a root load other than keeping the current one, an emptied current root, a reclaim. */
static enum shadow_flush take(struct shadow *s, uint64_t *gva)
{
	*gva = ~0ull;
	return shadow_take_flush(s, gva);
}

static void test_flush_requests(void)
{
	struct shadow s;
	struct gpt_ctx ref;
	struct shadow_fault f;
	uint64_t root, gva, pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000, pml4b = 0x14000;

	setup_shadow(&s, &ref, GPT_CR0_PG, GPT_CR4_PAE, GPT_EFER_LMA | GPT_EFER_NXE);   /* CR0.WP = 0 */
	seed_4k_map(0x200000, 0x400000);
	memcpy(gmem + pml4, &(uint64_t){ pdpt | P | W | US }, 8);
	memcpy(gmem + pml4b, &(uint64_t){ pdpt | P | W | US }, 8);
	memcpy(gmem + pdpt, &(uint64_t){ pd | P | W | US }, 8);
	memcpy(gmem + pd, &(uint64_t){ pt | P | W | US }, 8);
	memcpy(gmem + pd + 8, &(uint64_t){ 0x200000 | P | W | US | PS | D }, 8);   /* GVA 2M..4M: 4K pieces */
	memcpy(gmem + pt + 8, &(uint64_t){ 0x200000 | P | US }, 8);                /* user, read-only */
	memcpy(gmem + pt + 16, &(uint64_t){ 0x201000 | P | W | US | D }, 8);

	CHECK_EQ(shadow_cr3_write(&s, pml4, &root), 0);
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);                     /* a root load */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_NONE);                    /* taken: cleared */
	CHECK_EQ(shadow_page_fault(&s, 0x2000, 0, &f), SHADOW_FILLED);
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_NONE);                    /* not present before */
	CHECK_EQ(shadow_page_fault(&s, 0x1000, GPT_PF_W, &f), SHADOW_FILLED);   /* WP = 0's copy */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_NONE);
	s.g.cpl = 3;                                                    /* the user read replaces it */
	CHECK_EQ(shadow_page_fault(&s, 0x1000, GPT_PF_P | GPT_PF_US, &f), SHADOW_FILLED);
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_PAGE);
	CHECK_EQ(gva, 0x1000);
	s.g.cpl = 0;
	shadow_invlpg(&s, 0x2abc);                                      /* a 4 KiB leaf */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_PAGE);
	CHECK_EQ(gva, 0x2abc);
	shadow_invlpg(&s, 0x7000);                                      /* nothing there */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_NONE);
	CHECK_EQ(shadow_page_fault(&s, 0x2000, 0, &f), SHADOW_FILLED);
	shadow_invlpg(&s, 0x1000);
	shadow_invlpg(&s, 0x2000);                                      /* two pages: everything */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);
	CHECK_EQ(shadow_page_fault(&s, 0x203000, 0, &f), SHADOW_FILLED);   /* a piece of the 2 MiB page */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_NONE);
	shadow_invlpg(&s, 0x3ff000);                                    /* the large page: every piece */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);
	{
		/* A 2 MiB leaf the guest turned into a table without INVLPG: the fill that needs the table
		 * finds the stale leaf and drops it. A 2 MiB GPA block of the random map backs it. */
		uint64_t blk = 0x400000, hpa, size;
		unsigned rights = 0;

		while (!gpa_map(blk, &hpa, &size, &rights) || size != SIZE_2M || !(rights & SHADOW_MAP_W))
			blk += SIZE_2M;
		memcpy(gmem + pd + 16, &(uint64_t){ blk | P | W | US | PS }, 8);   /* GVA 4M..6M, no D */
		CHECK_EQ(shadow_page_fault(&s, 0x401000, 0, &f), SHADOW_FILLED);
		CHECK(shadow_lookup(&s, 0x401000, &gva, &rights) && rights == 2);
		CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_NONE);
		memcpy(gmem + pd + 16, &(uint64_t){ pt | P | W | US }, 8);          /* now the table... */
		memcpy(gmem + pt + 8 * 5, &(uint64_t){ 0x205000 | P | W | US | D }, 8);
		CHECK_EQ(shadow_page_fault(&s, 0x405000, GPT_PF_P | GPT_PF_W, &f), SHADOW_FILLED);   /* ...no INVLPG */
		CHECK(shadow_lookup(&s, 0x405000, &gva, &rights) && rights == 1);
		CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);
	}

	CHECK_EQ(shadow_cr3_write(&s, pml4, &root), 0);                 /* the same root, revalidated */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);
	CHECK_EQ(shadow_cr3_load_keep(&s, pml4, &root), 0);             /* kept, and current: nothing */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_NONE);
	CHECK_EQ(shadow_cr3_load_keep(&s, pml4b, &root), 0);            /* another root */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);
	shadow_invpcid(&s, 1, 5, 0);                                    /* no root of PCID 5 */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_NONE);
	shadow_invpcid(&s, 1, 0, 0);                                    /* the current root's PCID */
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);
	shadow_flush_all(&s);
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);

	CHECK_EQ(shadow_cr3_write(&s, pml4, &root), 0);
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);
	s.limit_pages = s.pages + 2;                                    /* three new tables: a reclaim */
	CHECK_EQ(shadow_page_fault(&s, 0x203000, 0, &f), SHADOW_FILLED);
	CHECK(s.stats.reclaims > 0);
	CHECK_EQ(take(&s, &gva), SHADOW_FLUSH_ALL);
	shadow_destroy(&s);
	CHECK_EQ(fake_pmm_outstanding(), 0);
}

/* The root cache: four roots, LRU; a hit revalidates, a miss starts empty; memory is accounted,
 * bounded by limit_pages, and all given back. */
static void test_roots_and_memory(void)
{
	struct shadow s;
	struct gpt_ctx ref;
	uint64_t root, roots[6], leaf;
	unsigned i, lvl;

	setup_shadow(&s, &ref, GPT_CR0_PG | GPT_CR0_WP, GPT_CR4_PAE, GPT_EFER_LMA | GPT_EFER_NXE);
	seed_4k_map(0x200000, 0x280000);
	for (i = 0; i < 6; i++) {   /* six address spaces, each mapping GVA 0..512K to GPA 2M.. */
		uint64_t pml4 = 0x10000 + i * 0x4000;

		memcpy(gmem + pml4, &(uint64_t){ (pml4 + 0x1000) | P | W | US }, 8);
		memcpy(gmem + pml4 + 0x1000, &(uint64_t){ (pml4 + 0x2000) | P | W | US }, 8);
		memcpy(gmem + pml4 + 0x2000, &(uint64_t){ (pml4 + 0x3000) | P | W | US }, 8);
		for (unsigned k = 0; k < 128; k++)
			memcpy(gmem + pml4 + 0x3000 + k * 8, &(uint64_t){ (0x200000 + k * 0x1000) | P | W | US }, 8);
	}
	memcpy(refmem, gmem, GMEM_SIZE);
	for (i = 0; i < 4; i++) {
		CHECK_EQ(switch_to(&s, &ref, 0x10000 + i * 0x4000, &roots[i]), 0);
		access(&s, &ref, roots[i], 0x5000, 0);
	}
	CHECK_EQ(s.stats.cr3_misses, 4);
	CHECK_EQ(s.pages, 4 * 4);                          /* PML4, PDPT, PD, PT each */
	CHECK_EQ(shadow_bytes(&s), 16 * PAGE_SIZE);
	CHECK_EQ(switch_to(&s, &ref, 0x10000, &root), 0);   /* a hit: the same root, its leaf kept */
	CHECK_EQ(root, roots[0]);
	CHECK_EQ(s.stats.cr3_hits, 1);
	CHECK_EQ(s.stats.sync_kept, 1);
	CHECK(shadow_lookup(&s, 0x5000, &leaf, &lvl));
	/* the guest unmaps the page while running elsewhere: the next switch back drops it */
	CHECK_EQ(switch_to(&s, &ref, 0x14000, &root), 0);
	memset(gmem + 0x13000 + 5 * 8, 0, 8);
	memset(refmem + 0x13000 + 5 * 8, 0, 8);
	CHECK_EQ(switch_to(&s, &ref, 0x10000, &root), 0);
	CHECK_EQ(s.stats.sync_dropped, 1);
	CHECK(!shadow_lookup(&s, 0x5000, &leaf, &lvl));
	access(&s, &ref, root, 0x5000, 0);
	/* a fifth address space evicts the least recently used (the third) */
	CHECK_EQ(switch_to(&s, &ref, 0x10000 + 4 * 0x4000, &root), 0);
	CHECK_EQ(s.stats.evictions, 1);
	CHECK_EQ(switch_to(&s, &ref, 0x10000 + 2 * 0x4000, &root), 0);
	CHECK_EQ(s.stats.cr3_misses, 6);
	/* a mode change is another root */
	s.g.cr0 &= ~GPT_CR0_WP;
	CHECK_EQ(switch_to(&s, &ref, 0x10000 + 2 * 0x4000, &root), 0);
	CHECK_EQ(s.stats.cr3_misses, 7);
	s.g.cr0 |= GPT_CR0_WP;

	/* a limit: the tables stay within it, by dropping the other roots, then the current one's */
	s.limit_pages = s.pages + 2;
	for (i = 0; i < 128; i++)
		access(&s, &ref, s.cur->hpa, (uint64_t)i << 21 | 0x5000, 0);   /* 128 PDs apart: new PTs */
	for (i = 0; i < 128; i++)
		access(&s, &ref, s.cur->hpa, 0x1000 * i, GPT_ACC_WRITE);
	CHECK(s.peak_pages <= 6 * 4 + 8);
	CHECK(s.pages <= s.limit_pages);
	CHECK(s.stats.reclaims > 0);
	CHECK_EQ(bad, 0);
	CHECK_EQ(s.pages, fake_pmm_outstanding());
	shadow_destroy(&s);
	CHECK_EQ(s.pages, 0);
	CHECK_EQ(fake_pmm_outstanding(), 0);

	/* PAE: a PDPTE with a reserved bit is the guest's #GP, and the CR3 is not taken */
	setup_shadow(&s, &ref, GPT_CR0_PG | GPT_CR0_WP, GPT_CR4_PAE, 0);
	memcpy(gmem + 0x10000, &(uint64_t){ 0x11000 | P | W }, 8);
	CHECK_EQ(shadow_cr3_write(&s, 0x10000, &root), -EINVAL);
	CHECK_EQ(s.g.cr3, 0);
	CHECK_EQ(shadow_cr3_write(&s, 0x400000, &root), -EFAULT);
	shadow_destroy(&s);
}

/* A host with RAM on both sides of 4 GiB whose allocator hands out its highest pages (next-fit, once
 * its hint has risen past 4 GiB): a PAE-format root (paging off, PAE and 32-bit guests) still gets a
 * top page below 4 GiB; its PDs may lie anywhere. */
static void test_pae_root_low(void)
{
	struct shadow s;
	struct gpt_ctx ref;
	uint64_t root, high;

	fake_pmm_fini();
	fake_pmm_init((1ull << 32) - 64 * PAGE_SIZE, 128 * PAGE_SIZE);
	fake_pmm_set_top_down(true);
	high = pmm_alloc_page();
	CHECK(high >= (1ull << 32));                                     /* what next-fit gives now */
	pmm_free_page(high);
	setup_shadow(&s, &ref, 0, 0, 0);                                 /* paging off: a PAE root */
	CHECK_EQ(shadow_cr3_write(&s, 0, &root), 0);
	CHECK(root != 0 && root < (1ull << 32));
	CHECK(s.cur && s.cur->levels == 3);
	shadow_destroy(&s);
	setup_shadow(&s, &ref, GPT_CR0_PG | GPT_CR0_WP, GPT_CR4_PAE, 0);   /* PAE paging */
	memcpy(gmem + 0x10000, &(uint64_t){ 0x11000 | P }, 8);
	CHECK_EQ(shadow_cr3_write(&s, 0x10000, &root), 0);
	CHECK(root != 0 && root < (1ull << 32));
	shadow_destroy(&s);
	CHECK_EQ(fake_pmm_outstanding(), 0);
	fake_pmm_fini();
	fake_pmm_init(HOST_BASE, HOST_SIZE);
}

/* 4-level paging with CR4.PCIDE: two PML4s at `a` and `b` sharing the PDPT at `pdpt`, whose PD at `pd`
 * maps 0x40200000 by a 2 MiB page. */
static void setup_two_pcids(struct shadow *s, struct gpt_ctx *ref, uint64_t a, uint64_t b, uint64_t pdpt,
			    uint64_t pd)
{
	setup_shadow(s, ref, GPT_CR0_PG | GPT_CR0_WP, GPT_CR4_PAE | SHADOW_CR4_PCIDE,
		     GPT_EFER_LMA | GPT_EFER_NXE);
	seed_4k_map(0x40000000, 0x40800000);
	memcpy(gmem + a, &(uint64_t){ pdpt | P | W | US }, 8);
	memcpy(gmem + b, &(uint64_t){ pdpt | P | W | US }, 8);
	memcpy(gmem + pdpt + 8, &(uint64_t){ pd | P | W | US }, 8);
	memcpy(gmem + pd + 8, &(uint64_t){ 0x40200000 | P | W | US | PS }, 8);
	memcpy(refmem, gmem, GMEM_SIZE);
}

/* CR4.PCIDE: a CR3 load with bit 63 takes the PCID's cached root as it is, stale entries included
 * (the TLB may keep them, SDM 4.10.4.1); INVLPG on another root reaches it; a flushing load of the
 * same PCID with another CR3 makes the next keeping load revalidate it; shadow_mark_stale likewise. */
static void test_pcid_keep(void)
{
	struct shadow s;
	struct gpt_ctx ref;
	uint64_t root, leaf, leaf2, a = 0x10000, b = 0x13000, pdpt = 0x11000, pd = 0x12000, gva = 0x40201000;
	unsigned lvl;

	setup_two_pcids(&s, &ref, a, b, pdpt, pd);
	CHECK_EQ(switch_to(&s, &ref, a | 1, &root), 0);
	access(&s, &ref, root, gva, 0);
	CHECK(shadow_lookup(&s, gva, &leaf, &lvl));

	/* the guest remaps the page without INVLPG, runs B (PCID 2), comes back to A keeping PCID 1 */
	memcpy(gmem + pd + 8, &(uint64_t){ 0x40400000 | P | W | US | PS }, 8);
	CHECK_EQ(shadow_cr3_write(&s, b | 2, &root), 0);
	CHECK_EQ(shadow_cr3_load_keep(&s, a | 1, &root), 0);
	CHECK(shadow_lookup(&s, gva, &leaf2, &lvl));
	CHECK_EQ(leaf2, leaf);                       /* kept, stale as a TLB entry may be */
	CHECK_EQ(s.stats.cr3_kept, 1);

	/* INVLPG while B runs drops the page in A's root too */
	CHECK_EQ(shadow_cr3_write(&s, b | 2, &root), 0);
	shadow_invlpg(&s, gva);
	CHECK_EQ(shadow_cr3_load_keep(&s, a | 1, &root), 0);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	memcpy(refmem, gmem, GMEM_SIZE);
	access(&s, &ref, root, gva, 0);
	CHECK(shadow_lookup(&s, gva, &leaf, &lvl));

	/* a flushing load of PCID 1 with B: A's root is stale, the next keeping load revalidates it */
	memcpy(gmem + pd + 8, &(uint64_t){ 0x40600000 | P | W | US | PS }, 8);
	CHECK_EQ(shadow_cr3_write(&s, b | 1, &root), 0);
	CHECK_EQ(shadow_cr3_load_keep(&s, a | 1, &root), 0);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	memcpy(refmem, gmem, GMEM_SIZE);
	access(&s, &ref, root, gva, 0);

	/* a control change marks every root stale */
	memcpy(gmem + pd + 8, &(uint64_t){ 0x40200000 | P | W | US | PS }, 8);
	shadow_mark_stale(&s);
	CHECK_EQ(shadow_cr3_load_keep(&s, a | 1, &root), 0);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	memcpy(refmem, gmem, GMEM_SIZE);
	access(&s, &ref, root, gva, 0);
	CHECK_EQ(bad, 0);
	shadow_destroy(&s);
	CHECK_EQ(fake_pmm_outstanding(), 0);
}

/* INVPCID by type (SDM Vol. 2B, INVPCID): type 1 empties only the roots of its PCID, type 3 every
 * root, type 0 drops the page in every root; a root of another PCID keeps its entries, stale as the
 * TLB may keep them. */
static void test_invpcid(void)
{
	struct shadow s;
	struct gpt_ctx ref;
	uint64_t root, leaf, leaf2, a = 0x10000, b = 0x13000, pdpt = 0x11000, pd = 0x12000, gva = 0x40201000;
	unsigned lvl;

	setup_two_pcids(&s, &ref, a, b, pdpt, pd);
	CHECK_EQ(switch_to(&s, &ref, a | 1, &root), 0);
	access(&s, &ref, root, gva, 0);
	CHECK_EQ(switch_to(&s, &ref, b | 2, &root), 0);
	access(&s, &ref, root, gva, 0);
	CHECK(shadow_lookup(&s, gva, &leaf, &lvl));

	/* the guest remaps the page; INVPCID type 1 of PCID 1 while B (PCID 2) runs: B keeps its entry */
	memcpy(gmem + pd + 8, &(uint64_t){ 0x40400000 | P | W | US | PS }, 8);
	shadow_invpcid(&s, 1, 1, 0);
	CHECK(shadow_lookup(&s, gva, &leaf2, &lvl));
	CHECK_EQ(leaf2, leaf);
	/* ... and A's root, emptied, has nothing for a load that keeps PCID 1 */
	CHECK_EQ(shadow_cr3_load_keep(&s, a | 1, &root), 0);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	CHECK_EQ(s.stats.cr3_kept, 1);
	memcpy(refmem, gmem, GMEM_SIZE);
	access(&s, &ref, root, gva, 0);
	CHECK(shadow_lookup(&s, gva, &leaf, &lvl));
	/* B was not flushed: a keeping load takes its stale entry as it is */
	CHECK_EQ(shadow_cr3_load_keep(&s, b | 2, &root), 0);
	CHECK(shadow_lookup(&s, gva, &leaf2, &lvl));
	CHECK(leaf2 != leaf);
	CHECK_EQ(s.stats.cr3_kept, 2);

	/* type 1 of the current PCID empties the current root */
	shadow_invpcid(&s, 1, 2, 0);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	access(&s, &ref, root, gva, 0);

	/* type 3 while A is loaded: A's root and B's */
	memcpy(gmem + pd + 8, &(uint64_t){ 0x40600000 | P | W | US | PS }, 8);
	CHECK_EQ(shadow_cr3_load_keep(&s, a | 1, &root), 0);
	CHECK(shadow_lookup(&s, gva, &leaf2, &lvl));
	shadow_invpcid(&s, 3, 0, 0);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	CHECK_EQ(shadow_cr3_load_keep(&s, b | 2, &root), 0);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	memcpy(refmem, gmem, GMEM_SIZE);
	access(&s, &ref, root, gva, 0);

	/* type 0 drops the page in every root, as INVLPG */
	CHECK_EQ(shadow_cr3_load_keep(&s, a | 1, &root), 0);
	access(&s, &ref, root, gva, 0);
	CHECK_EQ(shadow_cr3_load_keep(&s, b | 2, &root), 0);
	shadow_invpcid(&s, 0, 2, gva);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	CHECK_EQ(shadow_cr3_load_keep(&s, a | 1, &root), 0);
	CHECK(!shadow_lookup(&s, gva, &leaf2, &lvl));
	CHECK_EQ(s.stats.invpcids, 3);           /* types 1, 1 and 3 */
	CHECK_EQ(bad, 0);
	shadow_destroy(&s);
	CHECK_EQ(fake_pmm_outstanding(), 0);
}

int main(int argc, char **argv)
{
	(void)argc;
	gmem = calloc(1, GMEM_SIZE);
	refmem = calloc(1, GMEM_SIZE);
	fake_pmm_init(HOST_BASE, HOST_SIZE);
	RUN(test_invlpg_4m);
	RUN(test_pcid_keep);
	RUN(test_invpcid);
	RUN(test_invlpg_1g);
	RUN(test_wp0);
	RUN(test_implicit_smap);
	RUN(test_flush_requests);
	RUN(test_roots_and_memory);
	RUN(test_pae_root_low);
	RUN(test_random);
	fake_pmm_fini();
	free(gmem);
	free(refmem);
	return unit_report(argv[0]);
}
