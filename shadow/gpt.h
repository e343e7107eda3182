/* The guest's own page tables, walked as its CPU walks them: guest-linear -> guest-physical, with the
 * CPU's access-rights checks and, when asked, its accessed and dirty bits. A model of the CPU for the
 * hypervisor's own reads (MMIO decode, string I/O, the monitor) and for shadow paging (shadow.c).
 * SDM Vol. 3A, chapter 4: 4.1 paging modes, 4.3 32-bit paging, 4.4 PAE paging (4.4.1 the PDPTEs),
 * 4.5 4-level paging, 4.6 access rights, 4.7 page-fault error code, 4.8 accessed and dirty flags. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* Paging-structure entry bits. SDM Vol. 3A, Tables 4-4..4-11 and 4-14..4-20. */
#define GPT_P        (1ull << 0)   /* present */
#define GPT_W        (1ull << 1)   /* R/W: writes allowed */
#define GPT_US       (1ull << 2)   /* U/S: user-mode accesses allowed */
#define GPT_PWT      (1ull << 3)   /* page-level write-through */
#define GPT_PCD      (1ull << 4)   /* page-level cache disable */
#define GPT_A        (1ull << 5)   /* accessed */
#define GPT_D        (1ull << 6)   /* dirty (leaf) */
#define GPT_PS       (1ull << 7)   /* PDE/PDPTE: maps a 4M/2M/1G page */
#define GPT_G        (1ull << 8)   /* global (leaf, with CR4.PGE) */
#define GPT_PAT      (1ull << 7)   /* a 4 KiB PTE: PAT, with PCD and PWT the page's PAT entry (SDM 4.9.2) */
#define GPT_PAT_LARGE (1ull << 12) /* a 4M/2M/1G leaf: its PAT bit (bit 7 is PS there) */
#define GPT_NX       (1ull << 63)  /* XD: no instruction fetch (PAE and 4-level, with EFER.NXE) */

/* Control bits the walk reads. SDM Vol. 3A, 2.5 (CR0, CR4) and 2.2.1 (IA32_EFER). */
#define GPT_CR0_WP   (1ull << 16)  /* supervisor writes honour R/W */
#define GPT_CR0_PG   (1ull << 31)  /* paging */
#define GPT_CR4_PSE  (1ull << 4)   /* 32-bit paging: 4 MiB pages */
#define GPT_CR4_PAE  (1ull << 5)   /* PAE or 4-level paging */
#define GPT_CR4_SMEP (1ull << 20)  /* supervisor fetches from user-mode addresses fault (4.6.1) */
#define GPT_CR4_SMAP (1ull << 21)  /* supervisor data accesses to user-mode addresses fault unless AC (4.6.1) */
#define GPT_CR4_LA57 (1ull << 12)  /* 5-level paging: not supported */
#define GPT_EFER_LMA (1ull << 10)  /* IA-32e mode active: 4-level paging */
#define GPT_EFER_NXE (1ull << 11)  /* XD bits are honoured (else bit 63 is reserved) */
#define GPT_RFLAGS_AC (1ull << 18) /* alignment check / access control: lifts SMAP for explicit accesses */

/* #PF error code. SDM Vol. 3A, 4.7 (Figure 4-12). */
#define GPT_PF_P     (1u << 0)     /* 0: not-present page; 1: protection or reserved-bit violation */
#define GPT_PF_W     (1u << 1)     /* the access was a write */
#define GPT_PF_US    (1u << 2)     /* the access was a user-mode access */
#define GPT_PF_RSVD  (1u << 3)     /* a reserved bit was set in a paging-structure entry */
#define GPT_PF_ID    (1u << 4)     /* the access was an instruction fetch (with PAE and NXE, or SMEP) */

/* gpt_result.fault: why the walk stopped. The first three are a #PF the guest would take. */
enum gpt_fault {
	GPT_OK = 0,
	GPT_NOT_PRESENT,   /* #PF: an entry on the way has P=0 */
	GPT_RESERVED,      /* #PF: a present entry has a reserved bit set (RSVD in pf_error) */
	GPT_PERM,          /* #PF: the combined R/W, U/S, XD forbid this access */
	GPT_BAD_GPA,       /* a paging structure is not in guest RAM (read_gpa failed); gpa = its address */
	GPT_UNSUPPORTED,   /* 5-level paging (CR4.LA57) */
	GPT_NONCANONICAL,  /* 4-level paging: the address is not canonical (#GP or #SS, not #PF) */
	GPT_RACE,          /* GPT_ACC_SET_AD: the entries kept changing under the A/D update: retry later */
};

/* gpt_translate's access: what the CPU is doing. Without WRITE/FETCH a data read. */
#define GPT_ACC_WRITE    (1u << 0)  /* a data write */
#define GPT_ACC_USER     (1u << 1)  /* a user-mode access (CPL 3, not implicit) */
#define GPT_ACC_FETCH    (1u << 2)  /* an instruction fetch */
#define GPT_ACC_IMPLICIT (1u << 3)  /* an implicit supervisor access (GDT, IDT, TSS...): SMAP ignores AC */
#define GPT_ACC_SET_AD   (1u << 4)  /* set A and D as the CPU would (needs cmpxchg_gpa) */
#define GPT_ACC_PEEK     (1u << 5)  /* translate only: no access-rights check (r->writable etc. still set) */
#define GPT_ACC_NO_SMX   (1u << 6)  /* ignore CR4.SMEP and CR4.SMAP (gpt_walk: callers without RFLAGS) */

struct gpt_ctx {
	uint64_t cr0, cr3, cr4, efer;     /* guest values (CR0.PG off: GVA = GPA) */
	uint64_t pdpte[4];                /* PAE mode: the PDPTEs the CPU loaded (from the VMCS) */
	unsigned phys_bits;               /* guest MAXPHYADDR (CPUID 80000008H EAX[7:0]); bits of an
					   * entry's address at and above it are reserved. 0: 52 */
	unsigned cpl;                     /* gpt_read: the guest's CPL; 3 makes its accesses user accesses */
	uint64_t rflags;                  /* gpt_translate: only AC (SMAP) is read */
	/* Reads `len` bytes of guest-physical memory at `gpa`: 4 or 8 for an entry (aligned), up to
	 * 4096 within one 4 KiB page for gpt_read. 0, or -1 (not RAM). An entry must be read in one
	 * atomic load, as the CPU reads it (SDM Vol. 3A, 9.1.1), not byte by byte: another vCPU may be
	 * rewriting it. */
	int (*read_gpa)(void *arg, uint64_t gpa, void *dst, unsigned len);
	/* GPT_ACC_SET_AD: atomically replaces the `len`-byte (4 or 8, aligned) entry at `gpa` by `val` if
	 * it still holds `old` (a locked CMPXCHG, as the CPU's own update is locked: SDM 4.8). 0 when
	 * replaced, 1 when the entry held something else, -1 when `gpa` is not RAM. */
	int (*cmpxchg_gpa)(void *arg, uint64_t gpa, uint64_t old, uint64_t val, unsigned len);
	void *arg;
};

/* One entry the walk read, as the monitor's `gva` command shows them (core/monitor.c). Levels: 4 PML4, 3 PDPT (in PAE mode
 * the PDPTE came from the VMCS; table_gpa is then CR3's PDPT address), 2 PD, 1 PT. */
struct gpt_step {
	uint64_t table_gpa;               /* the table; the entry is at table_gpa + index * entry size */
	uint64_t entry_gpa;               /* that address (PAE PDPTEs: where the CPU loaded it from) */
	uint64_t entry;                   /* its value (after GPT_ACC_SET_AD: as updated) */
	unsigned level;
};

struct gpt_result {
	uint64_t gva;                     /* the address translated (after a gpt_read fault: CR2) */
	uint64_t gpa;
	uint64_t page_size;               /* 4K, 2M, 4M, 1G, or 0 when paging is off */
	bool writable, user, nx;          /* the combined permissions of the walk (SDM 4.6.1) */
	bool global;                      /* the leaf has G (only meaningful with CR4.PGE) */
	int fault;                        /* enum gpt_fault */
	uint32_t pf_error;                /* #PF error code for injection (GPT_NOT_PRESENT..GPT_PERM) */
	struct gpt_step steps[5];
	unsigned nsteps;
};

/*
 * Translates `gva` for the access `acc` (GPT_ACC_*) as the CPU in the mode c describes does, and fills
 * *r (also when it faults: the steps up to the failing entry). Returns r->fault.
 *
 * Access rights (SDM 4.6.1): a user-mode address is one whose entries all have U/S=1.
 *   user access:        user-mode address only; writes need R/W=1 at every level (whatever CR0.WP);
 *                       fetches need XD=0 at every level (with EFER.NXE).
 *   supervisor read:    any address, but a user-mode address with CR4.SMAP only when explicit and
 *                       RFLAGS.AC=1 (an implicit access ignores AC: so the current SDM; older ones
 *                       and KVM say so only for implicit accesses at CPL 3, the only ones a #PF
 *                       error code can tell apart, U/S=0 at CPL 3).
 *   supervisor write:   CR0.WP=0: any address; WP=1: R/W=1 at every level; a user-mode address with
 *                       CR4.SMAP as for reads (then WP as above).
 *   supervisor fetch:   XD=0 at every level; never from a user-mode address with CR4.SMEP.
 * Not modelled: protection keys (CR4.PKE/PKS), shadow-stack accesses (CET), 5-level paging, HLAT.
 * 1 GiB pages are assumed supported (CPUID 80000001H EDX[26]).
 *
 * Accessed and dirty flags (SDM 4.8), with GPT_ACC_SET_AD only: when the translation succeeds, A is
 * set in every entry it used (the PAE PDPTEs have none) and, for a write, D in the entry that maps
 * the page, each by c->cmpxchg_gpa; an entry that changed under the update restarts the walk (as a
 * locked update of the CPU would see the new value), GPT_RACE after several. A walk that faults sets
 * nothing (the SDM does not promise the bits of a faulting walk; KVM's emulated walk sets none either).
 * Without SET_AD nothing is written: the hypervisor's own reads are not guest accesses.
 *
 * Reserved-bit violations in the PAE PDPTEs (c->pdpte, as loaded) are reported as GPT_RESERVED (the CPU
 * would have refused them with #GP when it loaded them: gpt_load_pdptes).
 */
int gpt_translate(const struct gpt_ctx *c, uint64_t gva, unsigned acc, struct gpt_result *r);

/* gpt_translate's access-rights check alone, on the combined rights of a translation (r->writable,
 * user, nx), as the CPU checks a TLB entry: 0, or GPT_PERM with r->fault and r->pf_error set. */
int gpt_check_rights(const struct gpt_ctx *c, unsigned acc, struct gpt_result *r);

/*
 * gpt_translate for the hypervisor's own reads: `user` a user-mode access, no A/D update, and CR4.SMEP
 * and CR4.SMAP ignored (its callers do not pass RFLAGS.AC).
 */
int gpt_walk(const struct gpt_ctx *c, uint64_t gva, bool write, bool user, bool fetch, struct gpt_result *r);

/*
 * PAE paging: the four PDPTEs a MOV to CR3 (or to CR0/CR4 entering PAE paging) loads from the 32-byte
 * table at CR3[31:5] (SDM 4.4.1). 0 and pdpte[] set; GPT_RESERVED when a present PDPTE has a reserved
 * bit set (the CPU's #GP(0), and nothing is loaded); GPT_BAD_GPA when the table is not in guest RAM.
 */
int gpt_load_pdptes(const struct gpt_ctx *c, uint64_t pdpte[4]);

/*
 * Reads `len` bytes at guest-linear `gva` crossing pages as needed (for instruction fetch of up to 15
 * bytes), as data reads or instruction fetches (`fetch`) at the guest's CPL (c->cpl), with gpt_walk's
 * checks. Returns 0, or the fault code with *r filled for the faulting page: r->gva is the first byte
 * not read (the CR2 of a #PF). `r` may be NULL.
 */
int gpt_read(const struct gpt_ctx *c, uint64_t gva, void *dst, unsigned len, bool fetch,
	     struct gpt_result *r);
