/* Walks a guest's own page tables, GVA -> GPA, with the checks its CPU makes and, when asked, the
 * accessed and dirty flags it sets. SDM Vol. 3A, chapter 4. */
#include <stdbool.h>
#include <stdint.h>
#include "shadow/gpt.h"

/*
 * The three paging modes (SDM Vol. 3A, 4.1.1, Table 4-1), and how a linear address splits:
 *
 *   32-bit (CR4.PAE=0):         31    22 21    12 11      0
 *                               |  PD   |  PT   | offset  |        4-byte entries; PSE: 4 MiB PDEs
 *
 *   PAE (CR4.PAE=1, LMA=0):     31 30 29   21 20   12 11      0
 *                               |PDPT| PD   |  PT   | offset |      8-byte entries; 4 PDPTEs in the VMCS
 *
 *   4-level (LMA=1):            47   39 38   30 29   21 20   12 11      0
 *                               | PML4 | PDPT | PD   |  PT   | offset |   1 GiB PDPTEs, 2 MiB PDEs
 */
enum gpt_mode { GPT_32BIT, GPT_PAE, GPT_4LEVEL };

#define SIZE_4K (1ull << 12)
#define SIZE_2M (1ull << 21)
#define SIZE_4M (1ull << 22)
#define SIZE_1G (1ull << 30)

/* Bits lo..hi set. */
#define BITS(hi, lo) ((~0ull >> (63 - (hi))) & (~0ull << (lo)))

static unsigned phys_bits(const struct gpt_ctx *c)
{
	if (c->phys_bits == 0 || c->phys_bits > 52)
		return 52;
	return c->phys_bits < 32 ? 32 : c->phys_bits;
}

/*
 * The reserved bits of a present entry at `level` (4 PML4 .. 1 PT) whose PS bit is `ps`, for
 * MAXPHYADDR m (SDM 4.3, 4.4.2, 4.5.4 and the "Reserved" rows of Tables 4-5..4-11, 4-14..4-20).
 */
static uint64_t reserved_bits(enum gpt_mode mode, unsigned level, bool ps, unsigned m, bool nxe)
{
	uint64_t r, xd = nxe ? 0 : GPT_NX;

	switch (mode) {
	case GPT_32BIT:
		/* Only a 4 MiB PDE: bits 21:(M-19), M = min(MAXPHYADDR, 40); the bits below hold
		 * physical-address bits 39:32 (PSE-36, Table 4-4). */
		if (level == 2 && ps) {
			unsigned m40 = m < 40 ? m : 40;
			return BITS(21, m40 - 19);
		}
		return 0;
	case GPT_PAE:
		if (level == 3)
			return BITS(63, m) | BITS(8, 5) | BITS(2, 1);  /* PDPTE, Table 4-8 */
		r = BITS(62, m) | xd;
		if (level == 2 && ps)
			r |= BITS(20, 13);                            /* 2 MiB PDE, Table 4-9 */
		return r;
	case GPT_4LEVEL:
	default:
		/* Bits 62:52 are ignored (62:59 are protection keys in a leaf); 51:M are reserved. */
		r = BITS(51, m) | xd;   /* empty when m = 52 */
		if (level == 4)
			r |= GPT_PS;                                  /* PML4E, Table 4-15 */
		else if (level == 3 && ps)
			r |= BITS(29, 13);                            /* 1 GiB PDPTE, Table 4-16 */
		else if (level == 2 && ps)
			r |= BITS(20, 13);                            /* 2 MiB PDE, Table 4-18 */
		return r;
	}
}

/* Ends the walk with `fault` and, for a #PF, its error code (SDM 4.7). */
static int fail(const struct gpt_ctx *c, struct gpt_result *r, int fault, bool write, bool user, bool fetch)
{
	uint32_t e = 0;

	r->fault = fault;
	if (fault == GPT_NOT_PRESENT || fault == GPT_RESERVED || fault == GPT_PERM) {
		if (fault != GPT_NOT_PRESENT)
			e |= GPT_PF_P;   /* the entry was present: a protection or reserved-bit fault */
		if (fault == GPT_RESERVED)
			e |= GPT_PF_RSVD;
		if (write)
			e |= GPT_PF_W;
		if (user)
			e |= GPT_PF_US;
		/* I/D is reported only when XD can be in force (PAE/4-level with NXE) or with SMEP. */
		if (fetch && (((c->cr4 & GPT_CR4_PAE) && (c->efer & GPT_EFER_NXE)) || (c->cr4 & GPT_CR4_SMEP)))
			e |= GPT_PF_ID;
	}
	r->pf_error = e;
	return fault;
}

/* One walk: translation and access rights, no A/D update. */
static int walk_once(const struct gpt_ctx *c, uint64_t gva, unsigned acc, struct gpt_result *r)
{
	bool write = acc & GPT_ACC_WRITE, user = acc & GPT_ACC_USER, fetch = acc & GPT_ACC_FETCH;
	unsigned m = phys_bits(c), level, shift, esize;
	uint64_t addr_mask = BITS(m - 1, 12), table, entry, size;
	bool nxe = c->efer & GPT_EFER_NXE;
	enum gpt_mode mode;

	*r = (struct gpt_result){ .gva = gva, .writable = true, .user = true };
	if (!(c->cr0 & GPT_CR0_PG)) {
		r->gpa = c->efer & GPT_EFER_LMA ? gva : (uint32_t)gva;
		return 0;
	}
	if (!(c->cr4 & GPT_CR4_PAE)) {
		mode = GPT_32BIT;
		gva = (uint32_t)gva;
		level = 2, shift = 22, esize = 4;
		table = c->cr3 & 0xfffff000;
	} else if (!(c->efer & GPT_EFER_LMA)) {
		mode = GPT_PAE;
		gva = (uint32_t)gva;
		level = 3, shift = 30, esize = 8;
		table = c->cr3 & 0xffffffe0;   /* CR3 bits 31:5: the PDPT (4.4.1) */
	} else {
		if (c->cr4 & GPT_CR4_LA57)
			return fail(c, r, GPT_UNSUPPORTED, write, user, fetch);
		/* Bits 63:47 must all equal bit 47 (3.3.7.1); else #GP, or #SS for stack accesses. */
		if ((uint64_t)((int64_t)(gva << 16) >> 16) != gva)
			return fail(c, r, GPT_NONCANONICAL, write, user, fetch);
		mode = GPT_4LEVEL;
		level = 4, shift = 39, esize = 8;
		table = c->cr3 & addr_mask;
	}
	r->gva = gva;

	for (;; level--, shift -= mode == GPT_32BIT ? 10 : 9) {
		unsigned index = (unsigned)(gva >> shift) & (mode == GPT_32BIT ? 0x3ff : 0x1ff);
		uint64_t at = table + (uint64_t)index * esize;
		bool ps, leaf;

		if (mode == GPT_PAE && level == 3) {
			index &= 3;
			at = table + index * 8;
			entry = c->pdpte[index];
		} else {
			uint64_t e64 = 0;
			uint32_t e32 = 0;

			if (esize == 4 ? c->read_gpa(c->arg, at, &e32, 4) : c->read_gpa(c->arg, at, &e64, 8)) {
				r->gpa = at;
				return fail(c, r, GPT_BAD_GPA, write, user, fetch);
			}
			entry = esize == 4 ? e32 : e64;
		}
		r->steps[r->nsteps++] = (struct gpt_step){ .table_gpa = table, .entry_gpa = at, .entry = entry,
							   .level = level };

		if (!(entry & GPT_P))
			return fail(c, r, GPT_NOT_PRESENT, write, user, fetch);
		/* PS makes a leaf of a 4-level PDPTE, a PAE/4-level PDE, a 32-bit PDE with CR4.PSE. */
		ps = (entry & GPT_PS) && (level == 2 || (level == 3 && mode == GPT_4LEVEL)) &&
		     (mode != GPT_32BIT || (c->cr4 & GPT_CR4_PSE));
		if (entry & reserved_bits(mode, level, ps, m, nxe))
			return fail(c, r, GPT_RESERVED, write, user, fetch);

		/* Access rights combine over every level but the PAE PDPTEs, which have none (4.6.1). */
		if (!(mode == GPT_PAE && level == 3)) {
			r->writable &= !!(entry & GPT_W);
			r->user &= !!(entry & GPT_US);
			if (nxe && (entry & GPT_NX))
				r->nx = true;
		}

		leaf = level == 1 || ps;
		if (leaf) {
			uint64_t base;

			size = 1ull << shift;
			if (mode == GPT_32BIT && level == 2)
				/* 4 MiB page: bits 31:22 in place, bits 39:32 from PDE bits 20:13. */
				base = (entry & 0xffc00000) | (((entry >> 13) & 0xff) << 32);
			else
				base = entry & addr_mask & ~(size - 1);
			r->gpa = base | (gva & (size - 1));
			r->page_size = size;
			/* G is bit 8 of a leaf in every mode (Tables 4-4, 4-6, 4-9, 4-11, 4-16, 4-18, 4-20). */
			r->global = entry & GPT_G;
			break;
		}
		table = entry & (mode == GPT_32BIT ? 0xfffff000 : addr_mask);
	}
	if (acc & GPT_ACC_PEEK)
		return 0;
	return gpt_check_rights(c, acc, r);
}

int gpt_check_rights(const struct gpt_ctx *c, unsigned acc, struct gpt_result *r)
{
	bool write = acc & GPT_ACC_WRITE, user = acc & GPT_ACC_USER, fetch = acc & GPT_ACC_FETCH, deny;

	/* SDM 4.6.1. A user-mode address is one with U/S=1 at every level (r->user). */
	if (user) {
		/* User accesses: user-mode addresses only; writes need R/W everywhere whatever CR0.WP. */
		deny = !r->user || (write && !r->writable) || (fetch && r->nx);
	} else {
		bool smx = !(acc & GPT_ACC_NO_SMX);
		/* SMAP: supervisor data accesses to a user-mode address, unless explicit with AC=1. */
		bool smap = smx && (c->cr4 & GPT_CR4_SMAP) && r->user && !fetch &&
			    ((acc & GPT_ACC_IMPLICIT) || !(c->rflags & GPT_RFLAGS_AC));
		/* SMEP: no supervisor fetch from a user-mode address, whatever XD says. */
		bool smep = smx && (c->cr4 & GPT_CR4_SMEP) && r->user && fetch;

		deny = smap || smep || (write && !r->writable && (c->cr0 & GPT_CR0_WP)) || (fetch && r->nx);
	}
	if (deny)
		return fail(c, r, GPT_PERM, write, user, fetch);
	return 0;
}

/*
 * SDM 4.8: A in every entry the translation used, D in the one that maps the page for a write, each a
 * locked read-modify-write. 0, 1 when an entry changed since the walk read it (walk again), or -1
 * (r->gpa: the entry's GPA) when an entry is not in RAM any more.
 */
static int set_ad(const struct gpt_ctx *c, struct gpt_result *r, bool write)
{
	bool pae = (c->cr4 & GPT_CR4_PAE) && !(c->efer & GPT_EFER_LMA);
	unsigned esize = c->cr4 & GPT_CR4_PAE ? 8 : 4, i;

	for (i = 0; i < r->nsteps; i++) {
		struct gpt_step *st = &r->steps[i];
		uint64_t want = st->entry | GPT_A;
		int e;

		if (pae && st->level == 3)
			continue;   /* the PDPTEs have no A flag (Table 4-8), and come from the CPU's copy */
		if (i == r->nsteps - 1 && write)
			want |= GPT_D;
		if (want == st->entry)
			continue;
		e = c->cmpxchg_gpa(c->arg, st->entry_gpa, st->entry, want, esize);
		if (e < 0)
			r->gpa = st->entry_gpa;
		if (e)
			return e;
		st->entry = want;
	}
	return 0;
}

int gpt_translate(const struct gpt_ctx *c, uint64_t gva, unsigned acc, struct gpt_result *r)
{
	bool write = acc & GPT_ACC_WRITE, user = acc & GPT_ACC_USER, fetch = acc & GPT_ACC_FETCH;
	unsigned tries;

	for (tries = 0; tries < 8; tries++) {
		int f = walk_once(c, gva, acc, r), e;

		if (f || !(acc & GPT_ACC_SET_AD) || (acc & GPT_ACC_PEEK) || !(c->cr0 & GPT_CR0_PG))
			return f;
		e = set_ad(c, r, write);
		if (e == 0)
			return 0;
		if (e < 0)
			return fail(c, r, GPT_BAD_GPA, write, user, fetch);
	}
	return fail(c, r, GPT_RACE, write, user, fetch);
}

int gpt_walk(const struct gpt_ctx *c, uint64_t gva, bool write, bool user, bool fetch, struct gpt_result *r)
{
	return gpt_translate(c, gva, (write ? GPT_ACC_WRITE : 0) | (user ? GPT_ACC_USER : 0) |
			     (fetch ? GPT_ACC_FETCH : 0) | GPT_ACC_NO_SMX, r);
}

int gpt_load_pdptes(const struct gpt_ctx *c, uint64_t pdpte[4])
{
	uint64_t table = c->cr3 & 0xffffffe0, e[4], rsvd;
	unsigned i;

	/* 4.4.1: the 32-byte PDPT at CR3[31:5]; a present PDPTE with a reserved bit is #GP(0). */
	rsvd = reserved_bits(GPT_PAE, 3, false, phys_bits(c), c->efer & GPT_EFER_NXE);
	for (i = 0; i < 4; i++) {
		if (c->read_gpa(c->arg, table + i * 8, &e[i], 8))
			return GPT_BAD_GPA;
		if ((e[i] & GPT_P) && (e[i] & rsvd))
			return GPT_RESERVED;
	}
	for (i = 0; i < 4; i++)
		pdpte[i] = e[i];
	return 0;
}

int gpt_read(const struct gpt_ctx *c, uint64_t gva, void *dst, unsigned len, bool fetch,
	     struct gpt_result *r)
{
	struct gpt_result local;
	uint8_t *p = dst;
	bool user = c->cpl == 3;
	uint64_t wrap = c->efer & GPT_EFER_LMA ? ~0ull : 0xffffffffull;

	if (!r)
		r = &local;
	*r = (struct gpt_result){ .gva = gva };
	while (len) {
		unsigned chunk = (unsigned)(SIZE_4K - (gva & (SIZE_4K - 1)));
		int f = gpt_walk(c, gva, false, user, fetch, r);

		if (f)
			return f;
		if (chunk > len)
			chunk = len;
		/* One 4 KiB page at a time even inside a large page: read_gpa never crosses one. */
		if (c->read_gpa(c->arg, r->gpa, p, chunk)) {
			r->fault = GPT_BAD_GPA;
			return GPT_BAD_GPA;
		}
		p += chunk;
		len -= chunk;
		gva = (gva + chunk) & wrap;
	}
	return 0;
}
