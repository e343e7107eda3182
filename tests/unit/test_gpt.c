/* Host unit tests of shadow/gpt.c: guest page tables built in a fake guest memory, walked in each
 * paging mode (32-bit with 4 MiB pages and PSE-36, PAE, 4-level with 2 MiB and 1 GiB pages), with
 * SMEP, SMAP, CR0.WP, the PAE PDPTE load, and the accessed and dirty flags the CPU sets. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "shadow/gpt.h"
#include "tests/unit/unit.h"

#define MEM_SIZE (8ull << 20)      /* guest RAM: GPA 0..8 MiB; above is "not RAM" */
#define P   GPT_P
#define W   GPT_W
#define US  GPT_US
#define PS  GPT_PS
#define NX  GPT_NX

static uint8_t *mem;
static uint64_t next_table;       /* bump allocator for table pages */
static unsigned bad_reads;        /* read_gpa calls that crossed a 4 KiB page or had an odd size */

static int read_gpa(void *arg, uint64_t gpa, void *dst, unsigned len)
{
	(void)arg;
	if (len == 0 || len > 4096 || (gpa & 0xfff) + len > 4096)
		bad_reads++;
	if (gpa >= MEM_SIZE || len > MEM_SIZE - gpa)
		return -1;
	memcpy(dst, mem + gpa, len);
	return 0;
}

static unsigned cmpxchg_calls;
static int cmpxchg_fail;          /* make the next N cmpxchg_gpa calls find the entry changed */

static int cmpxchg_gpa(void *arg, uint64_t gpa, uint64_t old, uint64_t val, unsigned len)
{
	uint64_t cur = 0;

	(void)arg;
	cmpxchg_calls++;
	if ((len != 4 && len != 8) || (gpa & (len - 1)))
		bad_reads++;
	if (gpa >= MEM_SIZE)
		return -1;
	memcpy(&cur, mem + gpa, len);
	if (cmpxchg_fail > 0) {
		cmpxchg_fail--;
		return 1;
	}
	if (cur != old)
		return 1;
	memcpy(mem + gpa, &val, len);
	return 0;
}

static uint64_t get64(uint64_t table, unsigned index)
{
	uint64_t e;

	memcpy(&e, mem + table + index * 8, 8);
	return e;
}

static uint32_t get32(uint64_t table, unsigned index)
{
	uint32_t e;

	memcpy(&e, mem + table + index * 4, 4);
	return e;
}

static void setup(void)
{
	mem = calloc(1, MEM_SIZE);
	next_table = 0x10000;
	bad_reads = 0;
	cmpxchg_calls = 0;
	cmpxchg_fail = 0;
}

static void teardown(void)
{
	CHECK_EQ(bad_reads, 0);
	free(mem);
}

static uint64_t new_table(void)
{
	uint64_t t = next_table;

	next_table += 0x1000;
	return t;
}

static void set64(uint64_t table, unsigned index, uint64_t entry)
{
	memcpy(mem + table + index * 8, &entry, 8);
}

static void set32(uint64_t table, unsigned index, uint32_t entry)
{
	memcpy(mem + table + index * 4, &entry, 4);
}

static struct gpt_ctx ctx(uint64_t cr0, uint64_t cr3, uint64_t cr4, uint64_t efer)
{
	return (struct gpt_ctx){ .cr0 = cr0, .cr3 = cr3, .cr4 = cr4, .efer = efer, .phys_bits = 36,
				 .read_gpa = read_gpa, .cmpxchg_gpa = cmpxchg_gpa };
}

#define PG     (GPT_CR0_PG | GPT_CR0_WP)
#define LONG   (GPT_EFER_LMA | GPT_EFER_NXE)

static void test_paging_off(void)
{
	struct gpt_ctx c = ctx(0, 0, 0, 0);
	struct gpt_result r;

	setup();
	CHECK_EQ(gpt_walk(&c, 0xfee00300, true, true, false, &r), 0);
	CHECK_EQ(r.gpa, 0xfee00300);
	CHECK_EQ(r.page_size, 0);
	CHECK_EQ(r.nsteps, 0);
	CHECK(r.writable && r.user && !r.nx);
	/* outside long mode a linear address has 32 bits */
	CHECK_EQ(gpt_walk(&c, 0x100000010ull, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x10);
	teardown();
}

static void test_32bit(void)
{
	uint64_t pd, pt, pt2;
	struct gpt_ctx c;
	struct gpt_result r;

	setup();
	pd = new_table(), pt = new_table(), pt2 = new_table();
	c = ctx(PG, pd | 0x18 /* PWT, PCD */, GPT_CR4_PSE, 0);
	set32(pd, 1, (uint32_t)(pt | P | W | US));
	set32(pt, 5, 0x123000 | P | W | US);
	set32(pt, 6, 0x124000 | P | US);              /* read-only */
	set32(pd, 2, (uint32_t)(pt2 | P | W));        /* supervisor only */
	set32(pt2, 0, 0x200000 | P | W | US);
	set32(pd, 3, 0x00c00000 | P | W | US | PS);   /* 4 MiB page */
	set32(pd, 4, 0x01000000 | P | W | US | PS);   /* 4 MiB page; without PSE a table beyond RAM */
	set32(pd, 5, 0x00400000 | (0x5 << 13) | P | W | PS);   /* PSE-36: GPA 0x5_0040_0000 */
	set32(pd, 6, 0x00400000 | (0x10 << 13) | P | W | PS);  /* bit 17: address bit 36 */

	CHECK_EQ(gpt_walk(&c, 0x00405abc, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x123abc);
	CHECK_EQ(r.page_size, 0x1000);
	CHECK_EQ(r.nsteps, 2);
	CHECK_EQ(r.steps[0].table_gpa, pd);
	CHECK_EQ(r.steps[0].entry, pt | P | W | US);
	CHECK_EQ(r.steps[0].level, 2);
	CHECK_EQ(r.steps[1].table_gpa, pt);
	CHECK_EQ(r.steps[1].entry, 0x123000 | P | W | US);
	CHECK_EQ(r.steps[1].level, 1);
	CHECK(r.writable && r.user && !r.nx);
	/* the upper 32 bits of a linear address are dropped */
	CHECK_EQ(gpt_walk(&c, 0xffffffff00405abcull, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x123abc);

	/* 4 MiB pages need CR4.PSE; without it PS is ignored and the PDE names a page table */
	CHECK_EQ(gpt_walk(&c, 0x00c12345, true, true, false, &r), 0);
	CHECK_EQ(r.gpa, 0xc12345);
	CHECK_EQ(r.page_size, 4u << 20);
	CHECK_EQ(r.nsteps, 1);
	CHECK_EQ(gpt_walk(&c, 0x01012345, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x01012345);
	c.cr4 = 0;
	CHECK_EQ(gpt_walk(&c, 0x01012345, false, false, false, &r), GPT_BAD_GPA);
	CHECK_EQ(r.gpa, 0x01000000 + 0x12 * 4);
	CHECK_EQ(r.pf_error, 0);
	c.cr4 = GPT_CR4_PSE;

	/* PSE-36: PDE bits 20:13 are address bits 39:32; bits 21:(M-19) are reserved, M = min(40, MAXPHYADDR) */
	CHECK_EQ(gpt_walk(&c, 0x01412345, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x500412345ull);
	CHECK_EQ(gpt_walk(&c, 0x01812345, false, false, false, &r), GPT_RESERVED);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_RSVD);
	c.phys_bits = 40;
	CHECK_EQ(gpt_walk(&c, 0x01812345, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x1000412345ull);
	c.phys_bits = 46;
	CHECK_EQ(gpt_walk(&c, 0x01812345, false, false, false, &r), 0);
	c.phys_bits = 32;   /* no PSE-36: bits 21:13 are reserved */
	CHECK_EQ(gpt_walk(&c, 0x01412345, false, false, false, &r), GPT_RESERVED);
	c.phys_bits = 36;

	/* not present: PD[7] */
	CHECK_EQ(gpt_walk(&c, 0x01c00000, false, false, false, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.pf_error, 0);
	CHECK_EQ(r.nsteps, 1);
	CHECK_EQ(gpt_walk(&c, 0x01c00000, true, true, false, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.pf_error, GPT_PF_W | GPT_PF_US);
	CHECK_EQ(gpt_walk(&c, 0x00407000, false, false, false, &r), GPT_NOT_PRESENT);  /* PT[7] */
	CHECK_EQ(r.nsteps, 2);

	/* read-only page: supervisor writes fault only with CR0.WP; user writes always */
	CHECK_EQ(gpt_walk(&c, 0x00406000, false, true, false, &r), 0);
	CHECK(!r.writable && r.user);
	CHECK_EQ(gpt_walk(&c, 0x00406000, true, false, false, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_W);
	CHECK_EQ(gpt_walk(&c, 0x00406000, true, true, false, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_W | GPT_PF_US);
	c.cr0 = GPT_CR0_PG;
	CHECK_EQ(gpt_walk(&c, 0x00406000, true, false, false, &r), 0);
	CHECK_EQ(gpt_walk(&c, 0x00406000, true, true, false, &r), GPT_PERM);
	c.cr0 = PG;

	/* supervisor-only PDE: the PTE's U/S does not help */
	CHECK_EQ(gpt_walk(&c, 0x00800010, false, false, false, &r), 0);
	CHECK(!r.user && r.writable);
	CHECK_EQ(gpt_walk(&c, 0x00800010, false, true, false, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_US);

	/* fetches: no XD in 32-bit paging; I/D is reported only with SMEP */
	CHECK_EQ(gpt_walk(&c, 0x00405000, false, true, true, &r), 0);
	CHECK_EQ(gpt_walk(&c, 0x01c00000, false, false, true, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.pf_error, 0);
	c.cr4 |= GPT_CR4_SMEP;
	CHECK_EQ(gpt_walk(&c, 0x01c00000, false, false, true, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.pf_error, GPT_PF_ID);
	teardown();
}

static void test_pae(void)
{
	uint64_t pdpt = 0x10020, pd = 0x11000, pt = 0x12000;
	struct gpt_ctx c = ctx(PG, pdpt, GPT_CR4_PAE, GPT_EFER_NXE);
	struct gpt_result r;

	setup();
	c.pdpte[1] = pd | P;
	c.pdpte[2] = pd | P | W;            /* bit 1 is reserved in a PAE PDPTE */
	c.pdpte[3] = 0x1000000000ull | P;   /* bit 36 with MAXPHYADDR 36 */
	set64(pd, 0, pt | P | W | US);
	set64(pt, 1, 0x555000 | P | W | US | NX);
	set64(pt, 2, 0x556000 | P | W | US | (1ull << 62));   /* bit 62: reserved in PAE */
	set64(pt, 3, 0x800000000ull | P | W | US);             /* bit 35: fine with MAXPHYADDR 36 */
	set64(pd, 1, 0x600000 | P | W | US | PS);              /* 2 MiB page */
	set64(pd, 2, 0x600000 | P | W | US | PS | (1 << 13));  /* 2 MiB page, bit 13 reserved */
	set64(pd, 3, 0x400000 | P | US | PS);                  /* 2 MiB page, read-only */

	CHECK_EQ(gpt_walk(&c, 0x40001234, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x555234);
	CHECK_EQ(r.page_size, 0x1000);
	CHECK_EQ(r.nsteps, 3);
	CHECK_EQ(r.steps[0].table_gpa, pdpt);
	CHECK_EQ(r.steps[0].entry, pd | P);
	CHECK_EQ(r.steps[0].level, 3);
	CHECK_EQ(r.steps[1].table_gpa, pd);
	CHECK_EQ(r.steps[1].level, 2);
	CHECK_EQ(r.steps[2].table_gpa, pt);
	CHECK_EQ(r.steps[2].entry, 0x555000 | P | W | US | NX);
	CHECK_EQ(r.steps[2].level, 1);
	/* the PDPTE has no R/W or U/S: the rights come from the PDE and PTE */
	CHECK(r.writable && r.user && r.nx);
	CHECK_EQ(gpt_walk(&c, 0x40001234, true, true, false, &r), 0);

	/* XD with NXE: fetches fault, I/D set; without NXE bit 63 is reserved */
	CHECK_EQ(gpt_walk(&c, 0x40001234, false, false, true, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_ID);
	CHECK_EQ(gpt_walk(&c, 0x40001234, false, true, true, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_US | GPT_PF_ID);
	c.efer = 0;
	CHECK_EQ(gpt_walk(&c, 0x40001234, false, false, false, &r), GPT_RESERVED);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_RSVD);
	CHECK_EQ(gpt_walk(&c, 0x40001234, false, false, true, &r), GPT_RESERVED);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_RSVD);   /* no I/D without NXE or SMEP */
	c.efer = GPT_EFER_NXE;

	/* reserved bits: PTE bit 62, 2 MiB PDE bit 13, PDPTE bit 1 and bits above MAXPHYADDR */
	CHECK_EQ(gpt_walk(&c, 0x40002000, true, false, false, &r), GPT_RESERVED);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_RSVD | GPT_PF_W);
	CHECK_EQ(gpt_walk(&c, 0x40003008, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x800000008ull);
	c.phys_bits = 35;
	CHECK_EQ(gpt_walk(&c, 0x40003008, false, false, false, &r), GPT_RESERVED);
	c.phys_bits = 36;
	CHECK_EQ(gpt_walk(&c, 0x40400000, false, false, false, &r), GPT_RESERVED);
	CHECK_EQ(r.nsteps, 2);
	CHECK_EQ(gpt_walk(&c, 0x80000000, false, false, false, &r), GPT_RESERVED);
	CHECK_EQ(r.nsteps, 1);
	CHECK_EQ(gpt_walk(&c, 0xc0000000, false, false, false, &r), GPT_RESERVED);

	/* 2 MiB page */
	CHECK_EQ(gpt_walk(&c, 0x40212345, true, true, true, &r), 0);
	CHECK_EQ(r.gpa, 0x612345);
	CHECK_EQ(r.page_size, 2u << 20);
	CHECK_EQ(r.nsteps, 2);
	CHECK_EQ(gpt_walk(&c, 0x40612345, true, false, false, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_W);

	/* not present: PDPTE 0, PDE, PTE */
	CHECK_EQ(gpt_walk(&c, 0x00001000, false, true, false, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.pf_error, GPT_PF_US);
	CHECK_EQ(r.nsteps, 1);
	CHECK_EQ(gpt_walk(&c, 0x40800000, true, false, false, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.pf_error, GPT_PF_W);
	CHECK_EQ(gpt_walk(&c, 0x40004000, false, false, true, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.pf_error, GPT_PF_ID);
	CHECK_EQ(r.nsteps, 3);
	teardown();
}

static void test_4level(void)
{
	uint64_t pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000, hi_pdpt = 0x14000, hi_pd = 0x15000;
	struct gpt_ctx c = ctx(PG, pml4 | 0x5 /* a PCID */, GPT_CR4_PAE, LONG);
	struct gpt_result r;

	setup();
	set64(pml4, 0, pdpt | P | W | US);
	set64(pdpt, 0, pd | P | W | US);
	set64(pd, 0, pt | P | W | US);
	set64(pt, 0x10, 0x9000 | P | W | US);
	set64(pt, 0x11, 0xa000 | P | W | US | (0x7full << 52));  /* bits 58:52 are ignored */
	set64(pt, 0x12, 0x10000000000ull | P | W | US);         /* bit 40 */
	set64(pd, 1, 0x200000 | P | W | US | PS);               /* 2 MiB page */
	set64(pdpt, 1, 0x40000000 | P | W | PS);                /* 1 GiB page, supervisor */
	set64(pdpt, 2, 0x80000000 | P | W | PS | (1 << 13));    /* 1 GiB page, bit 13 reserved */
	set64(pdpt, 3, 0x20000000 | P | W | PS);                /* 1 GiB page, bit 29 reserved */
	set64(pdpt, 4, 0x7f000000 | P | W);                     /* a PD beyond RAM */
	set64(pml4, 1, pdpt | P | W | US | PS);                 /* PS is reserved in a PML4E */
	set64(pml4, 2, pdpt | P | US | NX);                     /* read-only, no execute */
	set64(pml4, 511, hi_pdpt | P | W);
	set64(hi_pdpt, 510, hi_pd | P | W);
	set64(hi_pd, 0, 0x400000 | P | W | PS | NX);

	CHECK_EQ(gpt_walk(&c, 0x10abc, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x9abc);
	CHECK_EQ(r.page_size, 0x1000);
	CHECK_EQ(r.nsteps, 4);
	CHECK_EQ(r.steps[0].table_gpa, pml4);
	CHECK_EQ(r.steps[0].level, 4);
	CHECK_EQ(r.steps[1].table_gpa, pdpt);
	CHECK_EQ(r.steps[1].level, 3);
	CHECK_EQ(r.steps[2].table_gpa, pd);
	CHECK_EQ(r.steps[2].entry, pt | P | W | US);
	CHECK_EQ(r.steps[2].level, 2);
	CHECK_EQ(r.steps[3].table_gpa, pt);
	CHECK_EQ(r.steps[3].entry, 0x9000 | P | W | US);
	CHECK_EQ(r.steps[3].level, 1);
	CHECK(r.writable && r.user && !r.nx);
	CHECK_EQ(gpt_walk(&c, 0x10abc, true, true, true, &r), 0);

	/* ignored high bits do not reach the address; bits above MAXPHYADDR are reserved */
	CHECK_EQ(gpt_walk(&c, 0x11008, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0xa008);
	CHECK_EQ(gpt_walk(&c, 0x12008, false, false, false, &r), GPT_RESERVED);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_RSVD);
	c.phys_bits = 41;
	CHECK_EQ(gpt_walk(&c, 0x12008, false, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x10000000008ull);
	c.phys_bits = 0;    /* unknown: 52 */
	CHECK_EQ(gpt_walk(&c, 0x12008, false, false, false, &r), 0);
	c.phys_bits = 36;

	/* 2 MiB and 1 GiB pages */
	CHECK_EQ(gpt_walk(&c, 0x212345, true, true, false, &r), 0);
	CHECK_EQ(r.gpa, 0x212345);
	CHECK_EQ(r.page_size, 2u << 20);
	CHECK_EQ(r.nsteps, 3);
	CHECK_EQ(gpt_walk(&c, 0x7ffffff8, true, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x7ffffff8);
	CHECK_EQ(r.page_size, 1u << 30);
	CHECK_EQ(r.nsteps, 2);
	CHECK_EQ(r.steps[1].entry, 0x40000000 | P | W | PS);
	CHECK_EQ(gpt_walk(&c, 0x40000000, false, true, false, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_US);
	CHECK_EQ(gpt_walk(&c, 0x80000000, false, false, false, &r), GPT_RESERVED);
	CHECK_EQ(gpt_walk(&c, 0xc0000000, false, false, false, &r), GPT_RESERVED);
	CHECK_EQ(gpt_walk(&c, 0x100000000ull, false, false, false, &r), GPT_BAD_GPA);
	CHECK_EQ(r.gpa, 0x7f000000);
	CHECK_EQ(r.nsteps, 2);
	CHECK_EQ(gpt_walk(&c, 0x140000000ull, false, false, false, &r), GPT_NOT_PRESENT);

	/* PS in a PML4E is reserved */
	CHECK_EQ(gpt_walk(&c, 0x8000000000ull, false, true, false, &r), GPT_RESERVED);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_RSVD | GPT_PF_US);
	CHECK_EQ(r.nsteps, 1);

	/* XD and R/W in the PML4E cover the whole walk */
	CHECK_EQ(gpt_walk(&c, 0x10000010abcull, false, true, false, &r), 0);
	CHECK_EQ(r.gpa, 0x9abc);
	CHECK(!r.writable && r.user && r.nx);
	CHECK_EQ(gpt_walk(&c, 0x10000010abcull, false, false, true, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_ID);
	CHECK_EQ(gpt_walk(&c, 0x10000010abcull, false, true, true, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_US | GPT_PF_ID);
	CHECK_EQ(gpt_walk(&c, 0x10000010abcull, true, false, false, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_W);
	c.cr0 = GPT_CR0_PG;   /* WP=0: supervisor writes ignore R/W, user writes do not */
	CHECK_EQ(gpt_walk(&c, 0x10000010abcull, true, false, false, &r), 0);
	CHECK_EQ(gpt_walk(&c, 0x10000010abcull, true, true, false, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_W | GPT_PF_US);
	c.cr0 = PG;

	/* the upper half: PML4[511] PDPT[510] PD[0], 2 MiB, supervisor, no execute */
	CHECK_EQ(gpt_walk(&c, 0xffffffff80012345ull, true, false, false, &r), 0);
	CHECK_EQ(r.gpa, 0x412345);
	CHECK_EQ(r.nsteps, 3);
	CHECK(r.writable && !r.user && r.nx);
	CHECK_EQ(gpt_walk(&c, 0xffffffff80012345ull, false, false, true, &r), GPT_PERM);
	CHECK_EQ(gpt_walk(&c, 0xffffffff80012345ull, false, true, false, &r), GPT_PERM);

	/* non-canonical addresses and 5-level paging are not page walks */
	CHECK_EQ(gpt_walk(&c, 0x0000800000000000ull, false, false, false, &r), GPT_NONCANONICAL);
	CHECK_EQ(r.nsteps, 0);
	CHECK_EQ(gpt_walk(&c, 0xffff7fffffffffffull, false, false, false, &r), GPT_NONCANONICAL);
	c.cr4 |= GPT_CR4_LA57;
	CHECK_EQ(gpt_walk(&c, 0x10abc, false, false, false, &r), GPT_UNSUPPORTED);
	c.cr4 &= ~GPT_CR4_LA57;

	/* not present at each level */
	CHECK_EQ(gpt_walk(&c, 0x18000000000ull, false, false, false, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.nsteps, 1);
	CHECK_EQ(gpt_walk(&c, 0x400000, false, false, false, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.nsteps, 3);
	CHECK_EQ(gpt_walk(&c, 0x13000, true, true, true, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.nsteps, 4);
	CHECK_EQ(r.pf_error, GPT_PF_W | GPT_PF_US | GPT_PF_ID);
	teardown();
}

static void test_read(void)
{
	uint64_t pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	struct gpt_ctx c = ctx(PG, pml4, GPT_CR4_PAE, LONG);
	struct gpt_result r;
	uint8_t buf[32];
	unsigned i;

	setup();
	set64(pml4, 0, pdpt | P | W | US);
	set64(pdpt, 0, pd | P | W | US);
	set64(pd, 0, pt | P | W | US);
	set64(pd, 1, 0x200000 | P | W | US | PS);
	set64(pt, 0x10, 0x30000 | P | W | US);      /* two linear pages, frames out of order */
	set64(pt, 0x11, 0x20000 | P | W | US);
	set64(pt, 0x12, 0x40000 | P | W);           /* supervisor only */
	set64(pt, 0x13, 0x50000 | P | W | US | NX);
	set64(pt, 0x16, 0x60000 | P | W | US);      /* followed by a page not present */
	for (i = 0; i < 16; i++) {
		mem[0x30ff8 + i] = (uint8_t)(0xa0 + i);   /* 8 bytes at the end of the first frame... */
		mem[0x20000 + i] = (uint8_t)(0xb0 + i);   /* ...then the start of the second */
		mem[0x2ff8 + 0x200000 + i] = (uint8_t)i;
	}

	/* 15 instruction bytes across a page boundary, from two frames */
	CHECK_EQ(gpt_read(&c, 0x10ffa, buf, 15, true, &r), 0);
	CHECK_EQ(buf[0], 0xa2);
	CHECK_EQ(buf[5], 0xa7);
	CHECK_EQ(buf[6], 0xb0);
	CHECK_EQ(buf[14], 0xb8);
	CHECK_EQ(r.gpa, 0x20000);
	CHECK_EQ(gpt_read(&c, 0x10ffa, buf, 15, true, NULL), 0);
	/* inside a 2 MiB page: read one 4 KiB page at a time */
	CHECK_EQ(gpt_read(&c, 0x202ffc, buf, 8, false, &r), 0);
	CHECK_EQ(buf[0], 4);
	CHECK_EQ(buf[7], 11);
	CHECK_EQ(gpt_read(&c, 0x202ffc, buf, 0, false, &r), 0);

	/* the second page is not present: the fault names it (CR2 = its first byte) */
	CHECK_EQ(gpt_read(&c, 0x16ff8, buf, 15, true, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.gva, 0x17000);
	CHECK_EQ(r.pf_error, GPT_PF_ID);
	CHECK_EQ(r.nsteps, 4);
	CHECK_EQ(gpt_read(&c, 0x13ff8, buf, 15, false, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.gva, 0x14000);
	CHECK_EQ(r.pf_error, 0);
	CHECK_EQ(gpt_read(&c, 0x16ff8, buf, 8, true, &r), 0);    /* what fits in the first page is fine */
	CHECK_EQ(gpt_read(&c, 0x16ff8, buf, 9, true, NULL), GPT_NOT_PRESENT);
	c.cpl = 3;
	CHECK_EQ(gpt_read(&c, 0x16ff8, buf, 15, false, &r), GPT_NOT_PRESENT);
	CHECK_EQ(r.pf_error, GPT_PF_US);
	c.cpl = 0;

	/* a user-mode guest (CPL 3) may not fetch from a supervisor page; the kernel may */
	CHECK_EQ(gpt_read(&c, 0x11ff8, buf, 15, true, &r), 0);
	c.cpl = 3;
	CHECK_EQ(gpt_read(&c, 0x11ff8, buf, 15, true, &r), GPT_PERM);
	CHECK_EQ(r.gva, 0x12000);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_US | GPT_PF_ID);
	c.cpl = 0;
	/* no-execute second page: fetch faults, data read does not */
	CHECK_EQ(gpt_read(&c, 0x12ff8, buf, 15, true, &r), GPT_PERM);
	CHECK_EQ(r.gva, 0x13000);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_ID);
	CHECK_EQ(gpt_read(&c, 0x12ff8, buf, 15, false, &r), 0);

	/* a frame that is not RAM */
	set64(pt, 0x18, 0x7f000000 | P | W | US);
	CHECK_EQ(gpt_read(&c, 0x18000, buf, 4, false, &r), GPT_BAD_GPA);
	CHECK_EQ(r.gpa, 0x7f000000);

	/* paging off: GVA = GPA */
	c = ctx(0, 0, 0, 0);
	CHECK_EQ(gpt_read(&c, 0x30ffc, buf, 8, true, &r), 0);
	CHECK_EQ(buf[0], 0xa4);
	CHECK_EQ(buf[3], 0xa7);
	CHECK_EQ(buf[4], 0xa8);
	teardown();
}

#define WR   GPT_ACC_WRITE
#define USR  GPT_ACC_USER
#define FT   GPT_ACC_FETCH
#define IMP  GPT_ACC_IMPLICIT
#define AD   GPT_ACC_SET_AD

/* SDM 4.6.1: SMEP and SMAP against user-mode addresses, with CR0.WP, EFLAGS.AC and implicit accesses. */
static void test_smep_smap(void)
{
	uint64_t pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	struct gpt_ctx c = ctx(PG, pml4, GPT_CR4_PAE | GPT_CR4_SMEP | GPT_CR4_SMAP, LONG);
	struct gpt_result r;
	uint64_t ua = 0x1000, ura = 0x2000, sa = 0x3000, sra = 0x4000;   /* user/supervisor, rw/ro */

	setup();
	set64(pml4, 0, pdpt | P | W | US);
	set64(pdpt, 0, pd | P | W | US);
	set64(pd, 0, pt | P | W | US);
	set64(pt, 1, 0x21000 | P | W | US);
	set64(pt, 2, 0x22000 | P | US);
	set64(pt, 3, 0x23000 | P | W);
	set64(pt, 4, 0x24000 | P);

	/* user accesses: SMEP/SMAP do not apply; R/W matters whatever WP */
	CHECK_EQ(gpt_translate(&c, ua, USR | WR, &r), 0);
	CHECK_EQ(gpt_translate(&c, ua, USR | FT, &r), 0);
	CHECK_EQ(gpt_translate(&c, ura, USR | WR, &r), GPT_PERM);
	CHECK_EQ(gpt_translate(&c, sa, USR, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_US);

	/* SMEP: supervisor fetch from a user page faults (I/D set), from a supervisor page not */
	CHECK_EQ(gpt_translate(&c, ua, FT, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_ID);
	CHECK_EQ(gpt_translate(&c, sa, FT, &r), 0);
	c.rflags = GPT_RFLAGS_AC;   /* AC does not lift SMEP */
	CHECK_EQ(gpt_translate(&c, ua, FT, &r), GPT_PERM);

	/* SMAP: supervisor data access to a user page: only explicit with AC=1 */
	c.rflags = 0;
	CHECK_EQ(gpt_translate(&c, ua, 0, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P);
	CHECK_EQ(gpt_translate(&c, ua, WR, &r), GPT_PERM);
	CHECK_EQ(r.pf_error, GPT_PF_P | GPT_PF_W);
	CHECK_EQ(gpt_translate(&c, sa, WR, &r), 0);
	c.rflags = GPT_RFLAGS_AC;
	CHECK_EQ(gpt_translate(&c, ua, 0, &r), 0);
	CHECK_EQ(gpt_translate(&c, ua, WR, &r), 0);
	CHECK_EQ(gpt_translate(&c, ua, IMP, &r), GPT_PERM);        /* implicit: AC is ignored */
	CHECK_EQ(gpt_translate(&c, ua, IMP | WR, &r), GPT_PERM);
	CHECK_EQ(gpt_translate(&c, sa, IMP | WR, &r), 0);
	/* with AC=1 a supervisor write to a read-only user page follows CR0.WP */
	CHECK_EQ(gpt_translate(&c, ura, WR, &r), GPT_PERM);
	c.cr0 = GPT_CR0_PG;
	CHECK_EQ(gpt_translate(&c, ura, WR, &r), 0);
	CHECK_EQ(gpt_translate(&c, sra, WR, &r), 0);
	c.rflags = 0;
	CHECK_EQ(gpt_translate(&c, ura, WR, &r), GPT_PERM);         /* SMAP wins over WP=0 */
	c.cr0 = PG;
	CHECK_EQ(gpt_translate(&c, sra, WR, &r), GPT_PERM);

	/* without the CR4 bits: no SMEP/SMAP, and no I/D bit for a 32-bit-style fault without NXE */
	c.cr4 = GPT_CR4_PAE;
	CHECK_EQ(gpt_translate(&c, ua, 0, &r), 0);
	CHECK_EQ(gpt_translate(&c, ua, FT, &r), 0);
	/* gpt_walk ignores SMEP/SMAP (its callers have no RFLAGS) */
	c.cr4 = GPT_CR4_PAE | GPT_CR4_SMEP | GPT_CR4_SMAP;
	CHECK_EQ(gpt_walk(&c, ua, false, false, true, &r), 0);
	CHECK_EQ(gpt_walk(&c, ua, true, false, false, &r), 0);
	/* PEEK: no rights check, the rights still reported */
	CHECK_EQ(gpt_translate(&c, sra, GPT_ACC_PEEK | USR | WR, &r), 0);
	CHECK(!r.user && !r.writable);
	CHECK_EQ(r.gpa, 0x24000);
	teardown();
}

/* SDM 4.8: A in every entry used, D in the leaf on a write, nothing on a fault or without SET_AD. */
static void test_accessed_dirty(void)
{
	uint64_t pml4 = 0x10000, pdpt = 0x11000, pd = 0x12000, pt = 0x13000;
	struct gpt_ctx c = ctx(PG, pml4, GPT_CR4_PAE, LONG);
	struct gpt_result r;
	const uint64_t A = GPT_A, D = GPT_D;

	setup();
	set64(pml4, 0, pdpt | P | W | US);
	set64(pdpt, 0, pd | P | W | US);
	set64(pd, 0, pt | P | W | US);
	set64(pd, 1, 0x200000 | P | W | US | PS);
	set64(pt, 1, 0x21000 | P | W | US);
	set64(pt, 2, 0x22000 | P | US);

	/* without SET_AD nothing is written */
	CHECK_EQ(gpt_translate(&c, 0x1000, WR, &r), 0);
	CHECK_EQ(cmpxchg_calls, 0);
	CHECK_EQ(get64(pt, 1), 0x21000 | P | W | US);
	/* a read sets A at every level, not D */
	CHECK_EQ(gpt_translate(&c, 0x1000, AD, &r), 0);
	CHECK_EQ(get64(pml4, 0), pdpt | P | W | US | A);
	CHECK_EQ(get64(pdpt, 0), pd | P | W | US | A);
	CHECK_EQ(get64(pd, 0), pt | P | W | US | A);
	CHECK_EQ(get64(pt, 1), 0x21000 | P | W | US | A);
	CHECK_EQ(r.steps[3].entry, 0x21000 | P | W | US | A);
	CHECK_EQ(cmpxchg_calls, 4);
	/* again: nothing to write */
	CHECK_EQ(gpt_translate(&c, 0x1000, AD | USR, &r), 0);
	CHECK_EQ(cmpxchg_calls, 4);
	/* a write sets D in the leaf only */
	CHECK_EQ(gpt_translate(&c, 0x1000, AD | WR, &r), 0);
	CHECK_EQ(get64(pt, 1), 0x21000 | P | W | US | A | D);
	CHECK_EQ(get64(pd, 0), pt | P | W | US | A);
	CHECK_EQ(cmpxchg_calls, 5);
	/* a faulting write (read-only page, WP=1) sets nothing */
	CHECK_EQ(gpt_translate(&c, 0x2000, AD | USR | WR, &r), GPT_PERM);
	CHECK_EQ(get64(pt, 2), 0x22000 | P | US);
	CHECK_EQ(cmpxchg_calls, 5);
	/* ... but a supervisor write with WP=0 is allowed and dirties it */
	c.cr0 = GPT_CR0_PG;
	CHECK_EQ(gpt_translate(&c, 0x2000, AD | WR, &r), 0);
	CHECK_EQ(get64(pt, 2), 0x22000 | P | US | A | D);
	c.cr0 = PG;
	/* a large page: D in the PDE that maps it */
	CHECK_EQ(gpt_translate(&c, 0x201000, AD | WR, &r), 0);
	CHECK_EQ(get64(pd, 1), 0x200000 | P | W | US | PS | A | D);
	/* an entry that changes under the update: the walk restarts and sees the new value */
	set64(pt, 3, 0x23000 | P | W | US);
	cmpxchg_fail = 1;
	CHECK_EQ(gpt_translate(&c, 0x3000, AD | WR, &r), 0);
	CHECK_EQ(get64(pt, 3), 0x23000 | P | W | US | A | D);
	cmpxchg_fail = 100;
	set64(pt, 4, 0x24000 | P | W | US);
	CHECK_EQ(gpt_translate(&c, 0x4000, AD, &r), GPT_RACE);
	CHECK_EQ(r.pf_error, 0);
	cmpxchg_fail = 0;
	teardown();

	/* 32-bit paging: 4-byte entries, A/D in the same bits */
	setup();
	c = ctx(PG, 0x10000, GPT_CR4_PSE, 0);
	set32(0x10000, 0, 0x11000 | P | W | US);
	set32(0x11000, 5, 0x5000 | P | W | US);
	set32(0x10000, 1, 0x400000 | P | W | PS);
	CHECK_EQ(gpt_translate(&c, 0x5123, AD | WR | USR, &r), 0);
	CHECK_EQ(get32(0x10000, 0), 0x11000 | P | W | US | A);
	CHECK_EQ(get32(0x11000, 5), 0x5000 | P | W | US | A | D);
	CHECK_EQ(gpt_translate(&c, 0x4abcde, AD, &r), 0);
	CHECK_EQ(get32(0x10000, 1), 0x400000 | P | W | PS | A);
	teardown();

	/* PAE: the PDPTEs (the CPU's copy) get no A; the PDE and PTE do */
	setup();
	c = ctx(PG, 0x10000, GPT_CR4_PAE, GPT_EFER_NXE);
	set64(0x10000, 0, 0x11000 | P);
	CHECK_EQ(gpt_load_pdptes(&c, c.pdpte), 0);
	set64(0x11000, 0, 0x12000 | P | W);
	set64(0x12000, 7, 0x7000 | P | W);
	CHECK_EQ(gpt_translate(&c, 0x7000, AD | WR, &r), 0);
	CHECK_EQ(get64(0x10000, 0), 0x11000 | P);
	CHECK_EQ(get64(0x11000, 0), 0x12000 | P | W | A);
	CHECK_EQ(get64(0x12000, 7), 0x7000 | P | W | A | D);
	CHECK_EQ(r.steps[0].entry_gpa, 0x10000);
	teardown();
}

/* SDM 4.4.1: MOV to CR3 in PAE paging loads 4 PDPTEs; a present one with a reserved bit is #GP. */
static void test_load_pdptes(void)
{
	struct gpt_ctx c = ctx(PG, 0x10020, GPT_CR4_PAE, 0);
	uint64_t pdpte[4] = { 1, 2, 3, 4 };

	setup();
	set64(0x10020, 0, 0x11000 | P);
	set64(0x10020, 1, 0);
	set64(0x10020, 2, 0xdead0000 | W);               /* not present: its bits do not matter */
	set64(0x10020, 3, 0x12000 | P | GPT_PCD);
	CHECK_EQ(gpt_load_pdptes(&c, pdpte), 0);
	CHECK_EQ(pdpte[0], 0x11000 | P);
	CHECK_EQ(pdpte[2], 0xdead0000 | W);
	CHECK_EQ(pdpte[3], 0x12000 | P | GPT_PCD);
	/* each reserved bit: 1, 2, 5..8, 63 (even with NXE), and above MAXPHYADDR */
	static const uint64_t bad[] = { W, US, GPT_A, GPT_D, PS, GPT_G, NX, 1ull << 36 };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint64_t keep[4] = { 9, 9, 9, 9 };

		set64(0x10020, 1, 0x13000 | P | bad[i]);
		c.efer = i & 1 ? GPT_EFER_NXE : 0;
		CHECK_EQ(gpt_load_pdptes(&c, keep), GPT_RESERVED);
		CHECK_EQ(keep[0], 9);   /* nothing loaded */
	}
	c.phys_bits = 40;
	CHECK_EQ(gpt_load_pdptes(&c, pdpte), 0);
	CHECK_EQ(pdpte[1], 0x1000013000ull | P);
	/* a PDPT outside RAM */
	c.cr3 = 0xfffff000;
	CHECK_EQ(gpt_load_pdptes(&c, pdpte), GPT_BAD_GPA);
	teardown();
}

/* Random tables and addresses: no crash (ASan), no read outside the tables, sane results; with
 * SET_AD, a translation that succeeds leaves A set in every entry it used and D in the leaf of a write,
 * and a second identical access writes nothing. */
static void test_random(void)
{
	static const uint64_t modes[][3] = {
		{ PG, GPT_CR4_PSE, 0 }, { PG, 0, 0 }, { PG, GPT_CR4_PAE, GPT_EFER_NXE },
		{ PG, GPT_CR4_PAE, 0 }, { PG, GPT_CR4_PAE, LONG }, { PG, GPT_CR4_PAE, GPT_EFER_LMA },
	};
	uint64_t s = 0x243f6a8885a308d3ull;
	unsigned iter, bad = 0, ok = 0, ad = 0, i;

	setup();
	for (iter = 0; iter < 200000; iter++) {
		struct gpt_ctx c;
		struct gpt_result r, r2;
		uint64_t gva;
		unsigned acc;
		int f;

		if (iter % 1000 == 0) {
			/* refill 64 KiB of tables at 0x10000 with entries pointing mostly into them */
			for (i = 0; i < 0x10000 / 8; i++) {
				s ^= s << 13, s ^= s >> 7, s ^= s << 17;
				set64(0x10000, i, (s & 3) ? ((s & 0xf000) | 0x10000 | (s & 0x80000000000001ffull))
							  : s);
			}
		}
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		c = ctx(modes[s % 6][0], 0x10000 + (s & 0xf000), modes[s % 6][1], modes[s % 6][2]);
		for (i = 0; i < 4; i++)
			c.pdpte[i] = 0x10000 + ((s >> (8 * i)) & 0xf000) + ((s >> i) & 1);
		c.phys_bits = 32 + (unsigned)(s >> 59);
		c.cr4 |= (s >> 40) & 1 ? GPT_CR4_SMEP : 0;
		c.cr4 |= (s >> 41) & 1 ? GPT_CR4_SMAP : 0;
		c.rflags = (s >> 42) & 1 ? GPT_RFLAGS_AC : 0;
		c.cr0 &= (s >> 43) & 1 ? ~0ull : ~GPT_CR0_WP;
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		gva = s & 1 ? s : (uint32_t)s;
		acc = (unsigned)(s >> 1) & (WR | USR | FT | IMP | AD);
		if (acc & USR)
			acc &= ~IMP;
		f = gpt_translate(&c, gva, acc, &r);
		if (f == 0) {
			ok++;
			if (r.page_size != 0x1000 && r.page_size != 2u << 20 && r.page_size != 4u << 20 &&
			    r.page_size != 1u << 30)
				bad++;
			if ((r.gpa & (r.page_size - 1)) != (gva & (r.page_size - 1)) || r.pf_error)
				bad++;
		}
		if (f == 0 && (acc & AD)) {
			unsigned calls = cmpxchg_calls;
			bool pae = (c.cr4 & GPT_CR4_PAE) && !(c.efer & GPT_EFER_LMA);

			ad++;
			for (i = 0; i < r.nsteps; i++) {
				uint64_t e = c.cr4 & GPT_CR4_PAE ? get64(r.steps[i].entry_gpa, 0)
								 : get32(r.steps[i].entry_gpa, 0);
				bool pdpte = pae && r.steps[i].level == 3;

				/* (a table may hold itself: one entry can be two steps, each recorded
				 * before the later one's update) */
				if (!pdpte && (!(e & GPT_A) || (e & ~GPT_D) != (r.steps[i].entry & ~GPT_D)))
					bad++;
				if ((acc & WR) && i == r.nsteps - 1 && !(e & GPT_D))
					bad++;
			}
			/* the same access again: the same translation, nothing written */
			if (gpt_translate(&c, gva, acc, &r2) != 0 || r2.gpa != r.gpa || cmpxchg_calls != calls)
				bad++;
		}
		if (f < 0 || f > GPT_RACE || f == GPT_RACE || r.nsteps > 4 || f != r.fault)
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK(ok > 100);
	CHECK(ad > 10);
	fprintf(stderr, "    200000 random walks, %u translated, %u of them setting A/D\n", ok, ad);
	teardown();
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_paging_off);
	RUN(test_32bit);
	RUN(test_pae);
	RUN(test_4level);
	RUN(test_read);
	RUN(test_smep_smap);
	RUN(test_accessed_dirty);
	RUN(test_load_pdptes);
	RUN(test_random);
	return unit_report(argv[0]);
}
