/*
 * ptswitch: a page-table-heavy guest, as processes make one (issue 16): several address spaces switched
 * by MOV to CR3, pages mapped and unmapped, copy-on-write after a fork, each change made known with
 * INVLPG or a CR3 load as the SDM asks (Vol. 3A, 4.10.4). Every address space maps the guest's RAM
 * 1:1 with large supervisor pages and a window of `pages=N` 4 KiB pages (default 16) at 0x40000000 to
 * frames of its own.
 *
 *   mode=32    32-bit paging (SDM 3A, 4.3; the default): 4 MiB pages (CR4.PSE), CR3 a page directory
 *   mode=pae   PAE paging (SDM 3A, 4.4): 2 MiB pages, CR3 a PDPT (its PDPTEs loaded by each MOV to CR3)
 *   procs=N    address spaces (default 6, at most 16)
 *   rounds=N   rounds (default 200); each switches to the next address space and:
 *              - checks every window page holds its owner's pattern (a stale translation would show
 *                another space's frame), and that the walk set A in the PTE (SDM 3A, 4.8);
 *              - writes one word and checks D was set;
 *              - "exec": unmaps one window page (PTE cleared, INVLPG), touches it: a #PF with CR2 = the
 *                address and error code P=0 W=1 (SDM 3A, 4.7) whose handler maps a fresh frame;
 *              - "fork" every 4th round: copies its window into the next space read-only (the next
 *                space's CR3 is loaded later, so no INVLPG needed); the next space's first write to
 *                each page is a #PF with P=1 W=1 whose handler copies the frame and makes it writable.
 * Before the rounds, with paging off and then on, SMSW's three forms against CR0 (smsw_check: a check
 * each). After them, on a CPU with SMAP, CR0.WP = 0 under CR4.SMAP (wp0_smap_check: `ptswitch: WP=0
 * under SMAP: ...`). After paging is on, `ptswitch: CPUID PKU=K OSPKE=O` (protection keys offered;
 * none on shadow paging). Then `ptswitch: rounds took T ticks` (RDTSC around the rounds) and last
 * `ptswitch: R rounds, S CR3 loads, F #PF (N not-present, P protection), C checks failed`,
 * exit 0 if C == 0. Runs the same on EPT and on shadow page tables (paging=shadow).
 */
#include "intr.h"
#include "rt.h"

#define PAGE      4096u
#define WINDOW    0x40000000u
#define MAXPROCS  16
#define MAXPAGES  64
#define PTE_P     1u
#define PTE_W     2u
#define PTE_U     4u
#define PTE_A     (1u << 5)
#define PTE_D     (1u << 6)
#define PDE_PS    (1u << 7)
#define CR0_PG    (1u << 31)
#define CR0_WP    (1u << 16)
#define CR4_PSE   (1u << 4)
#define CR4_SMAP  (1u << 21)
#define EFL_AC    (1u << 18)

#define CR4_PAE   (1u << 5)

static uint32_t root[MAXPROCS];              /* CR3 of each address space */
static void *pt[MAXPROCS];                   /* its window's page table */
static bool pae;
static uint32_t next_frame, frames_end;
static unsigned nprocs, npages;
static unsigned faults, notpresent, protection, failed;
static volatile uint32_t want_cr2, want_error;
static volatile unsigned cur;
static volatile bool smap_probe;             /* on_pf: a #PF the SMAP check expects */

static uint32_t frame_alloc(void)
{
	uint32_t f = next_frame;

	if (f >= frames_end) {
		printf("ptswitch: out of frames\n");
		exit(3);
	}
	next_frame += PAGE;
	memset((void *)(uintptr_t)f, 0, PAGE);
	return f;
}

static void fail(const char *what, unsigned a, unsigned b)
{
	if (failed++ < 10)
		printf("ptswitch: %s (0x%x, 0x%x) FAIL\n", what, a, b);
}

static uint32_t pattern(unsigned proc, unsigned page, unsigned i)
{
	return (proc << 24) ^ (page << 12) ^ (i * 0x9E3779B9u);
}

/* SMSW (SDM Vol. 2B, SMSW) stores CR0[15:0]: into a 16-bit register (its upper half kept), a 32-bit
 * register, or a word of memory. On SVM with paging=shadow it exits under the CR0 read intercept and
 * is emulated (svm/spt.c); elsewhere it runs. The 32-bit form's bits 31:16 are not checked (the SDM
 * leaves them undefined). */
static void smsw_check(void)
{
	uint32_t cr0 = (uint32_t)read_cr0() & 0xffff, r16 = 0xabcd0000u, r32 = 0;
	static volatile uint16_t m16;

	m16 = 0x5a5a;
	asm volatile("smsw %w0" : "+r"(r16));
	asm volatile("smsw %0" : "=r"(r32));
	asm volatile("smsww %0" : "=m"(m16));
	if (r16 != (0xabcd0000u | cr0))
		fail("SMSW r16", r16, cr0);
	if ((r32 & 0xffff) != cr0)
		fail("SMSW r32", r32, cr0);
	if (m16 != cr0)
		fail("SMSW m16", m16, cr0);
}

/* Window PTE `i` of address space `p` (4 or 8 bytes; the flags are in the low 32 bits either way). */
static uint32_t pte_get(unsigned p, unsigned i)
{
	return pae ? (uint32_t)((volatile uint64_t *)pt[p])[i] : ((volatile uint32_t *)pt[p])[i];
}

static void pte_set(unsigned p, unsigned i, uint32_t v)
{
	if (pae)
		((volatile uint64_t *)pt[p])[i] = v;
	else
		((volatile uint32_t *)pt[p])[i] = v;
}

static inline void load_cr3(uint32_t v)
{
	asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline void invlpg(uint32_t a)
{
	asm volatile("invlpg (%0)" : : "r"(a) : "memory");
}

/* The #PF handler: what the test expects (want_cr2/want_error) and the kernel's answer: a fresh
 * frame for a not-present page, a copy for a write to a read-only (copy-on-write) page. */
static void on_pf(struct irq_frame *f)
{
	uint32_t cr2, page;

	asm volatile("mov %%cr2, %0" : "=r"(cr2));
	if (smap_probe) {
		/* The read SMAP refused: recorded, and retried with AC = 1, which allows it. */
		smap_probe = false;
		want_cr2 = cr2;
		want_error = f->error;
		f->eflags |= EFL_AC;
		return;
	}
	faults++;
	if (cr2 != want_cr2 || f->error != want_error)
		fail("#PF CR2/error", cr2, f->error);
	if (cr2 - WINDOW >= npages * PAGE) {
		printf("ptswitch: unexpected #PF at 0x%x error 0x%x eip 0x%x\n", cr2, f->error, f->eip);
		exit(4);
	}
	page = (cr2 - WINDOW) / PAGE;
	if (!(f->error & 1)) {
		notpresent++;
		pte_set(cur, page, frame_alloc() | PTE_P | PTE_W);
	} else {
		uint32_t copy = frame_alloc();

		protection++;
		memcpy((void *)(uintptr_t)copy, (void *)(uintptr_t)(pte_get(cur, page) & ~0xfffu), PAGE);
		pte_set(cur, page, copy | PTE_P | PTE_W);
		invlpg(cr2);               /* R/W 0 -> 1: not needed (SDM 3A, 4.10.4.3), but what kernels do */
	}
	want_cr2 = ~0u;
}

/*
 * CR0.WP = 0 lets the supervisor write into read-only pages, and CR4.SMAP keeps its data accesses out
 * of user pages unless explicit with RFLAGS.AC = 1 (SDM Vol. 3A, 4.6.1): a store with AC = 1 (between
 * STAC and CLAC) into a read-only user page goes through and sets D (4.8), and so does an XCHG (its
 * old value back); a read of it with AC = 0
 * then faults, error code P (protection, read, supervisor: 4.7). On shadow paging the store cannot
 * be mapped as the guest allows it (shadow/shadow.c, SHADOW_EMULATE) and the read must still fault.
 * Window page `npages` (the page after the others) of address space `p`, user and read-only.
 */
static void wp0_smap_check(unsigned p)
{
	uint32_t r[4], frame = frame_alloc(), cr0, cr4, addr = WINDOW + npages * PAGE, stored, read, pte;
	uint32_t swapped, swapped_in;
	volatile uint32_t *x = (volatile uint32_t *)(uintptr_t)addr;
	bool faulted;

	cpuid(7, 0, r);
	if (!(r[1] & (1u << 20))) {                       /* CPUID.(EAX=07H,ECX=0):EBX.SMAP[bit 20] */
		printf("ptswitch: no SMAP on this CPU: the WP=0 check is skipped\n");
		return;
	}
	pte_set(p, npages, frame | PTE_U | PTE_P);
	invlpg(addr);
	asm volatile("mov %%cr0, %0; mov %%cr4, %1" : "=r"(cr0), "=r"(cr4));
	asm volatile("mov %0, %%cr4" : : "r"(cr4 | CR4_SMAP));
	asm volatile("mov %0, %%cr0" : : "r"(cr0 & ~CR0_WP) : "memory");
	want_cr2 = ~0u;                                   /* no #PF expected */
	asm volatile("stac; movl $0x5eed1234, %0; clac" : "=m"(*x) : : "memory");
	stored = *(volatile uint32_t *)(uintptr_t)frame;  /* the frame through the 1:1 map */
	swapped = 0x600d0002u;                            /* XCHG: the old value back, the new one in */
	asm volatile("stac; xchg %0, %1; clac" : "+r"(swapped), "+m"(*x) : : "memory");
	swapped_in = *(volatile uint32_t *)(uintptr_t)frame;
	pte = pte_get(p, npages);
	smap_probe = true;
	want_error = 0;
	read = *x;                                        /* AC = 0: SMAP faults it, on_pf sets AC */
	faulted = !smap_probe;
	asm volatile("clac");
	asm volatile("mov %0, %%cr0; mov %1, %%cr4" : : "r"(cr0), "r"(cr4) : "memory");
	smap_probe = false;
	pte_set(p, npages, 0);
	invlpg(addr);
	if (stored != 0x5eed1234u || swapped != stored || swapped_in != 0x600d0002u || read != swapped_in)
		fail("WP=0 store and XCHG with AC=1 into a read-only user page", swapped, read);
	if (!(pte & PTE_D))
		fail("D not set by the WP=0 store", npages, pte);
	if (!faulted || want_cr2 != addr || want_error != 1)
		fail("supervisor read with AC=0 of the user page: #PF, error 1", want_cr2, faulted ? want_error : ~0u);
	printf("ptswitch: WP=0 under SMAP: a store with AC=1 into a read-only user page %s, D %s, an XCHG %s; "
	       "a read with AC=0 of it: %s, error 0x%x\n", stored == 0x5eed1234u ? "went through" : "was lost",
	       pte & PTE_D ? "set" : "clear",
	       swapped == stored && swapped_in == 0x600d0002u ? "swapped" : "did not swap",
	       faulted ? "#PF" : "no #PF", faulted ? want_error : 0);
}

static void fill(unsigned p, unsigned page)
{
	uint32_t *w = (uint32_t *)(uintptr_t)(pte_get(p, page) & ~0xfffu);

	for (unsigned i = 0; i < PAGE / 4; i++)
		w[i] = pattern(p, page, i);
}

/* Protection keys as CPUID shows them (CPUID.(EAX=07H,ECX=0):ECX.PKU[bit 3], OSPKE[bit 4]): shadow
 * page tables carry no keys, so a guest on them must not be offered any. */
static void pkeys_line(void)
{
	uint32_t r[4];

	cpuid(7, 0, r);
	printf("ptswitch: CPUID PKU=%u OSPKE=%u\n", (r[2] >> 3) & 1, (r[2] >> 4) & 1);
}

int main(void)
{
	unsigned rounds = getarg_num("rounds", 200), loads = 0;
	uint64_t t0, t1;
	uint32_t end = ram_end() > 0xc0000000u ? 0xc0000000u : (uint32_t)ram_end();

	const char *mode = getarg("mode");

	pae = mode && !strcmp(mode, "pae");
	nprocs = getarg_num("procs", 6);
	npages = getarg_num("pages", 16);
	if (nprocs < 2 || nprocs > MAXPROCS || npages < 1 || npages > MAXPAGES) {
		printf("ptswitch: procs=2..%u pages=1..%u\n", MAXPROCS, MAXPAGES);
		return 3;
	}
	intr_init();
	irq_set_handler(14, on_pf);
	next_frame = ((uint32_t)(uintptr_t)_end + PAGE - 1) & ~(PAGE - 1);
	if (next_frame < (uint32_t)mbi_end)
		next_frame = ((uint32_t)mbi_end + PAGE - 1) & ~(PAGE - 1);
	frames_end = end;
	if (pae && end > 0x40000000u)
		end = 0x40000000u;                               /* RAM 1:1 below the window's 1 GiB */
	for (unsigned p = 0; p < nprocs; p++) {
		pt[p] = (void *)(uintptr_t)frame_alloc();
		root[p] = frame_alloc();
		if (pae) {
			/* PDPTE 0: RAM 1:1 with 2 MiB pages; PDPTE 1: the window's PD. A PDPTE has no R/W or
			 * U/S (reserved: SDM 3A, Table 4-8). */
			uint64_t *pdpt = (uint64_t *)(uintptr_t)root[p], *low = (uint64_t *)(uintptr_t)frame_alloc();
			uint64_t *win = (uint64_t *)(uintptr_t)frame_alloc();

			for (uint32_t a = 0; a < end; a += 2u << 20)
				low[a >> 21] = a | PDE_PS | PTE_W | PTE_P;
			win[0] = (uint32_t)(uintptr_t)pt[p] | PTE_U | PTE_W | PTE_P;   /* U: for wp0_smap_check */
			pdpt[0] = (uint32_t)(uintptr_t)low | PTE_P;
			pdpt[WINDOW >> 30] = (uint32_t)(uintptr_t)win | PTE_P;
		} else {
			uint32_t *pd = (uint32_t *)(uintptr_t)root[p];

			for (uint32_t a = 0; a < end; a += 4u << 20)    /* RAM 1:1, 4 MiB supervisor pages */
				pd[a >> 22] = a | PDE_PS | PTE_W | PTE_P;
			pd[WINDOW >> 22] = (uint32_t)(uintptr_t)pt[p] | PTE_U | PTE_W | PTE_P;   /* U: wp0_smap_check */
		}
		for (unsigned i = 0; i < npages; i++) {
			pte_set(p, i, frame_alloc() | PTE_W | PTE_P);
			fill(p, i);
		}
	}
	/* Paging on: CR4.PSE for the 4 MiB pages (or PAE), CR0.WP so that the kernel's writes honour R/W. */
	if (pae)
		asm volatile("mov %%cr4, %%eax; or %0, %%eax; mov %%eax, %%cr4" : : "i"(CR4_PAE) : "eax");
	else
		asm volatile("mov %%cr4, %%eax; or %0, %%eax; mov %%eax, %%cr4" : : "i"(CR4_PSE) : "eax");
	load_cr3(root[0]);
	smsw_check();                        /* paging off */
	asm volatile("mov %%cr0, %%eax; or %0, %%eax; mov %%eax, %%cr0" : : "i"(CR0_PG | CR0_WP) : "eax", "memory");
	smsw_check();                        /* paging on */
	printf("ptswitch: %s paging, %u address spaces, %u window pages each, %u rounds\n", pae ? "PAE" : "32-bit",
	       nprocs, npages, rounds);
	pkeys_line();

	t0 = rdtsc();
	for (unsigned r = 0; r < rounds; r++) {
		unsigned p = r % nprocs, victim = (r * 7) % npages, q = (p + 1) % nprocs;
		volatile uint32_t *win = (volatile uint32_t *)(uintptr_t)WINDOW;

		cur = p;
		load_cr3(root[p]);
		loads++;
		for (unsigned page = 0; page < npages; page++) {
			unsigned i = (r + page) % (PAGE / 4);

			if (win[page * PAGE / 4 + i] != pattern(p, page, i))
				fail("window word", page, win[page * PAGE / 4 + i]);
			if (!(pte_get(p, page) & PTE_A))
				fail("A not set by the walk", page, pte_get(p, page));
		}
		/* A write: D set in the PTE (a copy-on-write page faults first: its handler copies). */
		want_cr2 = WINDOW + victim * PAGE;
		want_error = PTE_P | PTE_W;
		win[victim * PAGE / 4] = pattern(p, victim, 0);
		if (!(pte_get(p, victim) & PTE_D))
			fail("D not set by the write", victim, pte_get(p, victim));
		/* Copy-on-write pages left from a fork into p: write each (a protection #PF each). */
		for (unsigned page = 0; page < npages; page++)
			if (!(pte_get(p, page) & PTE_W)) {
				want_cr2 = WINDOW + page * PAGE + 4;
				want_error = PTE_P | PTE_W;
				win[page * PAGE / 4 + 1] = pattern(p, page, 1);
				if (!(pte_get(p, page) & PTE_W))
					fail("COW page still read-only", page, pte_get(p, page));
			}
		/* exec: unmap the victim, INVLPG; the next touch is a not-present #PF, mapped afresh. */
		pte_set(p, victim, 0);
		invlpg(WINDOW + victim * PAGE);
		want_cr2 = WINDOW + victim * PAGE + 8;
		want_error = PTE_W;
		win[victim * PAGE / 4 + 2] = 0x5a5a5a5a;
		if (win[victim * PAGE / 4] != 0 || win[victim * PAGE / 4 + 2] != 0x5a5a5a5a)
			fail("fresh page", victim, win[victim * PAGE / 4]);
		fill(p, victim);
		/* fork every 4th round: q's window becomes p's pages, read-only in both (q's CR3 is loaded
		 * later: no INVLPG for q; p's own entries lose W: INVLPG each, SDM 3A, 4.10.4.2). */
		if (r % 4 == 3) {
			for (unsigned page = 0; page < npages; page++) {
				uint32_t *dst = (uint32_t *)(uintptr_t)frame_alloc();

				for (unsigned i = 0; i < PAGE / 4; i++)    /* q's contents are q's pattern */
					dst[i] = pattern(q, page, i);
				pte_set(q, page, (uint32_t)(uintptr_t)dst | PTE_P);
				pte_set(p, page, pte_get(p, page) & ~PTE_W);
				invlpg(WINDOW + page * PAGE);
			}
		}
	}
	t1 = rdtsc();
	wp0_smap_check(cur);
	printf("ptswitch: rounds took %llu ticks\n", (unsigned long long)(t1 - t0));
	printf("ptswitch: %u rounds, %u CR3 loads, %u #PF (%u not-present, %u protection), %u checks failed\n",
	       rounds, loads, faults, notpresent, protection, failed);
	return failed ? 1 : 0;
}
