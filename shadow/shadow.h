/* Shadow page tables: for one vCPU, tables the CPU walks that map the guest's linear addresses straight
 * to host-physical ones (GVA -> HPA), composed from the guest's own tables (GVA -> GPA, gpt.h) and the
 * guest-physical map (GPA -> HPA, gmem/). Built here, host-testable; run by vcpu/spt.c on both back ends
 * (paging=shadow: vmx/spt.c, svm/spt.c). Entry formats: SDM Vol. 3A, 4.4 (PAE: Tables 4-8..4-11) and 4.5 (4-level: Tables 4-14..4-20). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "shadow/gpt.h"

/*
 * Which tables the CPU walks (the hardware paging mode while the guest runs):
 *
 *   guest paging      shadow format       why
 *   off, 32-bit, PAE  PAE (CR4.PAE=1)     64-bit entries: host addresses above 4 GiB and XD; the
 *                                         32-bit guest's 4 GiB is the PAE linear space. The PDPT page
 *                                         lies below 4 GiB (CR3 has 32 bits in PAE paging) and its
 *                                         four PDs exist from the start, so the PDPTEs the CPU loads
 *                                         at VM entry (SDM 3C 28.3.2.4, without EPT) never change.
 *   4-level           4-level             the guest's own mode (IA-32e needs it).
 *
 * The CPU runs the guest with CR0.WP=1 and EFER.NXE=1 whatever the guest set (what the guest reads
 * back is its own value): the GPA map's read-only and no-execute pages must hold for supervisor
 * code too. CR4.SMEP and CR4.SMAP are the guest's (cleared while its paging is off): the shadow's U/S
 * is the guest's.
 *
 * Coherence: the out-of-sync model, as KVM's unsync shadow pages and as the TLB itself. A shadow
 * entry is a cached translation; the guest's tables are never write-protected, so a guest write to
 * its tables leaves the shadow stale exactly as it leaves the TLB stale, and the guest already
 * invalidates what it changed (INVLPG, MOV to CR3: SDM 4.10.4). We resync on those two:
 * shadow_invlpg drops the translation of the page (the whole page of a 2M/4M/1G guest page,
 * SDM 4.10.4.1), shadow_cr3_write revalidates every entry of the root it switches to against the
 * guest's tables. The other choice, write-protecting every guest table page, costs an exit per guest
 * page-table write (a fork copies hundreds of entries) and a reverse map from guest tables to shadow
 * entries; out of sync costs a revalidation walk per CR3 write, done in the hypervisor without exits.
 *
 * Accessed and dirty flags: a shadow entry exists only after the guest's walk set A in every entry
 * it used (gpt_translate with GPT_ACC_SET_AD, as the CPU does when it caches a translation, SDM 4.8);
 * a shadow entry is writable only when the guest's leaf already has D, so the first write faults
 * and sets D, as the CPU does on its first write through a translation.
 */

#define SHADOW_ROOTS 4              /* roots cached per vCPU, keyed by guest CR3 (and paging mode) */

/* shadow_ops.map_gpa's rights for a GPA. */
#define SHADOW_MAP_W (1u << 0)      /* writes allowed */
#define SHADOW_MAP_X (1u << 1)      /* instruction fetches allowed */

/* The software bits of a shadow entry (bits 9-11 are ignored by the CPU in every entry, Tables 4-8..4-20).
 *   leaf:      bits 10:9 the size of the guest page it is part of (SHADOW_G4K..SHADOW_G1G);
 *              bit 11 set when it is CR0.WP=0's supervisor-writable copy of a read-only page.
 *   non-leaf:  bits 10:9 the largest guest page of at least this entry's span with a piece below
 *              (what INVLPG of any address in that guest page must drop). */
#define SHADOW_SW_SIZE_SHIFT 9
#define SHADOW_SW_SIZE  (3ull << 9)
#define SHADOW_SW_WP0   (1ull << 11)
enum { SHADOW_G4K, SHADOW_G2M, SHADOW_G4M, SHADOW_G1G };

/* What shadow_page_fault decided. */
enum shadow_pf {
	SHADOW_FILLED,       /* the shadow now maps the access: re-enter the guest */
	SHADOW_INJECT,       /* the guest's own #PF: inject it, error code f->pf_error, CR2 f->cr2 */
	SHADOW_GPA,          /* the guest's tables allow it but the GPA map does not (not backed yet, MMIO,
				read-only or no-execute GPA): f->gpa; back it and re-enter, or emulate */
	SHADOW_EMULATE,      /* a store the shadow cannot map as the guest allows it (CR0.WP = 0 under
				CR4.SMAP, shadow_page_fault): emulate it at f->gpa, the page stays read-only */
	SHADOW_TABLE_GPA,    /* a guest paging structure is not in RAM (f->gpa): stop the guest */
	SHADOW_RETRY,        /* the guest's entries kept changing under the A/D update: re-enter */
	SHADOW_NOMEM,        /* no host memory for a shadow table even after dropping the others */
	SHADOW_UNSUPPORTED,  /* 5-level paging, or no root (shadow_cr3_write first) */
};

struct shadow_fault {
	uint64_t cr2;        /* SHADOW_INJECT: the faulting linear address */
	uint64_t gpa;        /* SHADOW_GPA, SHADOW_EMULATE, SHADOW_TABLE_GPA */
	uint32_t pf_error;   /* SHADOW_INJECT: the #PF error code (SDM 4.7) */
};

struct shadow_root {
	uint64_t hpa;        /* the top table (0: slot unused); PAE: the PDPT */
	uint64_t key_cr3;    /* the guest CR3's table address (0 with paging off) */
	uint64_t key_mode;   /* the paging controls it was built for (shadow.c, mode_key) */
	unsigned key_pcid;   /* the PCID it was loaded with (CR3[11:0] with CR4.PCIDE; else 0) */
	bool stale;          /* its PCID was flushed while another root ran: revalidate on the next load */
	uint64_t pdpte[4];   /* PAE guest: the PDPTEs loaded with it */
	unsigned levels;     /* its format: 3 PAE (the top table has 4 entries), 4 4-level */
	uint64_t last_use;   /* LRU clock */
};

struct shadow_stats {
	uint64_t fills, injects, gpa_faults;     /* shadow_page_fault outcomes */
	uint64_t invlpgs, invpcids, cr3_hits, cr3_misses, evictions, reclaims;   /* invpcids: types 1-3 */
	uint64_t cr3_kept;                       /* hits of a CR3 load with CR3[63] (PCID kept): no revalidation */
	uint64_t sync_kept, sync_dropped;        /* leaves revalidated on CR3 switches */
};

/*
 * What the CPU may still hold of the shadow that the shadow no longer says: its TLB and paging-structure
 * caches are tagged with the vCPU (VPID, SDM Vol. 3C, 29.1; ASID, AMD APM Vol. 2, 15.16), not with the
 * root, so they survive VM exits and entries and a root switch (the hypervisor writes the CPU's CR3 in
 * the VMCS or VMCB, which flushes nothing: no MOV to CR3 runs). Every operation below that drops or
 * changes an entry the current root had, or switches roots, says so in s->flush, and the caller flushes
 * that before the guest runs again (shadow_take_flush):
 *   SHADOW_FLUSH_PAGE  one 4 KiB leaf dropped or changed: the translations of `flush_gva` (INVVPID
 *                      individual-address, INVLPGA)
 *   SHADOW_FLUSH_ALL   anything else: a larger leaf, a table freed (a paging-structure cache may
 *                      point into it), a root switched or emptied (INVVPID single-context, the ASID's
 *                      flush)
 * A fill of a not-present entry needs nothing: translations are cached only from present entries
 * (SDM Vol. 3A, 4.10.2.3, 4.10.3.1).
 */
enum shadow_flush { SHADOW_FLUSH_NONE, SHADOW_FLUSH_PAGE, SHADOW_FLUSH_ALL };

struct shadow {
	/* The guest's paging state and how to read/update its memory: cr0, cr3, cr4, efer, phys_bits,
	 * cpl, rflags (AC), read_gpa, cmpxchg_gpa, arg. The caller keeps cr0/cr4/efer/cpl/rflags current;
	 * shadow_cr3_write sets cr3 and pdpte[]. */
	struct gpt_ctx g;
	/* The guest-physical map: 0 with *hpa the host address of `gpa`, *size the naturally aligned
	 * block around it (4 KiB, 2 MiB or 1 GiB) that maps to a likewise aligned host block with the
	 * same *rights (SHADOW_MAP_*); -1 when `gpa` is not backed (not RAM, or not touched yet). */
	int (*map_gpa)(void *arg, uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights);
	void *map_arg;
	uint64_t limit_pages;                     /* at most this many table pages (0: no limit) */

	struct shadow_root roots[SHADOW_ROOTS];
	struct shadow_root *cur;                  /* the root the guest runs on, NULL before a CR3 write */
	uint64_t clock;
	uint64_t pages, peak_pages;               /* host pages held by shadow tables, and the most ever */
	struct shadow_stats stats;
	enum shadow_flush flush;                  /* what the CPU must drop before the guest runs on */
	uint64_t flush_gva;                       /* SHADOW_FLUSH_PAGE: the page */
};

/* What the operations since the last call dropped that the CPU may have cached (SHADOW_FLUSH_PAGE:
 * *gva the page); the request is cleared. */
enum shadow_flush shadow_take_flush(struct shadow *s, uint64_t *gva);

/* Empties *s but for g, map_gpa, map_arg and limit_pages, which the caller sets before or after. */
void shadow_init(struct shadow *s);

/* CR4.PCIDE (SDM Vol. 3A, 2.5): CR3[11:0] is the PCID of the translations cached (4.10.1). */
#define SHADOW_CR4_PCIDE (1ull << 17)

/*
 * The guest wrote CR3 (or changed CR0.PG/WP, CR4.PAE/PSE/SMEP/SMAP, EFER.LMA/NXE: call again with the
 * same CR3, as those writes flush the TLB too). Loads the PDPTEs in PAE paging, picks the cached root
 * for this CR3, PCID and mode and revalidates it, or builds an empty one (evicting the least recently
 * used of SHADOW_ROOTS). Every such write is a full flush of the PCID (SDM Vol. 3A, 4.10.4.1: MOV to
 * CR3 without CR3[63] invalidates the PCID's non-global translations): the other roots of the same
 * PCID are marked stale. 0 with *root_hpa the CR3 to run on; -EINVAL when a PDPTE has a reserved bit
 * (inject #GP(0), s->g keeps the old CR3), -EFAULT when the PDPT is not in RAM, -ENOMEM.
 */
int shadow_cr3_write(struct shadow *s, uint64_t cr3, uint64_t *root_hpa);

/*
 * MOV to CR3 with CR4.PCIDE and CR3[63] (bit 63 already stripped from `cr3`): "no TLB entries are
 * invalidated" (SDM Vol. 3A, 4.10.4.1). A root cached for this CR3 and PCID and not stale is taken
 * as it is: its entries are translations the TLB could hold for the PCID, as every invalidation the
 * guest made since it last ran has reached it (INVLPG drops the page in every root, INVPCID and
 * control changes flush every root, a flushing load of the PCID marks it stale). Otherwise as
 * shadow_cr3_write.
 */
int shadow_cr3_load_keep(struct shadow *s, uint64_t cr3, uint64_t *root_hpa);

/* The guest changed a control whose write flushes every PCID's translations, global ones included
 * (CR4.PGE, CR4.PCIDE cleared, CR0.PG...: SDM Vol. 3A, 4.10.4.1): every root is revalidated when next
 * loaded. */
void shadow_mark_stale(struct shadow *s);

/*
 * A #PF the CPU raised walking the shadow at linear address `gva` with hardware error code `error`
 * (SDM 4.7: P, W/R, U/S, I/D; an implicit supervisor access at CPL 3 shows U/S=0). Walks the guest's
 * tables as its CPU would for that access (setting A/D) and decides: the guest's own fault, or a shadow
 * miss to fill (the leaf gets the intersection of the guest's and the GPA map's rights).
 */
enum shadow_pf shadow_page_fault(struct shadow *s, uint64_t gva, uint32_t error, struct shadow_fault *f);

/* The guest ran INVLPG `gva`: drop its page's translation in every root (all of a large guest page's
 * pieces): INVLPG invalidates the current PCID's entries for the page and the global ones of every
 * PCID (SDM Vol. 3A, 4.10.4.1), and a shadow entry does not know whether it was global. */
void shadow_invlpg(struct shadow *s, uint64_t gva);

/*
 * The guest ran INVPCID (SDM Vol. 2B, INVPCID; Vol. 3A, 4.10.4.1) with `type` 0-3, already checked
 * with its descriptor (`pcid`, `gva`). Type 0 (one address of one PCID) drops the page in every root,
 * as INVLPG; type 1 (every translation of `pcid` but global ones) empties the roots of that PCID;
 * types 2 and 3 (every PCID's, with or without global ones) empty every root. Global leaves go too:
 * a processor may invalidate more than it is asked to (4.10.4.1), never less. Emptying, not
 * revalidating: a guest walk per cached leaf costs more than refilling what is touched before the
 * next flush (docs/performance.md, INVPCID).
 */
void shadow_invpcid(struct shadow *s, unsigned type, unsigned pcid, uint64_t gva);

/* Drops every translation of every root (a guest PAT or MTRR change...). */
void shadow_flush_all(struct shadow *s);

/* The current root's leaf for `gva`: true with *entry and *level (1: 4 KiB, 2: 2 MiB) when present. */
bool shadow_lookup(const struct shadow *s, uint64_t gva, uint64_t *entry, unsigned *level);

/* Host memory held by shadow tables, in bytes. */
uint64_t shadow_bytes(const struct shadow *s);

/* Frees every root and table. */
void shadow_destroy(struct shadow *s);
