/* Host unit tests of vmx/gpt.c: guest page tables built in a fake guest memory, walked in each
 * paging mode (32-bit with 4 MiB pages and PSE-36, PAE, 4-level with 2 MiB and 1 GiB pages). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "vmx/gpt.h"
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

static void setup(void)
{
	mem = calloc(1, MEM_SIZE);
	next_table = 0x10000;
	bad_reads = 0;
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
				 .read_gpa = read_gpa };
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

/* Random tables and addresses: no crash (ASan), no read outside the tables, sane results. */
static void test_random(void)
{
	static const uint64_t modes[][3] = {
		{ PG, GPT_CR4_PSE, 0 }, { PG, 0, 0 }, { PG, GPT_CR4_PAE, GPT_EFER_NXE },
		{ PG, GPT_CR4_PAE, 0 }, { PG, GPT_CR4_PAE, LONG }, { PG, GPT_CR4_PAE, GPT_EFER_LMA },
	};
	uint64_t s = 0x243f6a8885a308d3ull;
	unsigned iter, bad = 0, ok = 0, i;

	setup();
	for (iter = 0; iter < 200000; iter++) {
		struct gpt_ctx c;
		struct gpt_result r;
		uint64_t gva;
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
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		gva = s & 1 ? s : (uint32_t)s;
		f = gpt_walk(&c, gva, s & 2, s & 4, s & 8, &r);
		if (f == 0) {
			ok++;
			if (r.page_size != 0x1000 && r.page_size != 2u << 20 && r.page_size != 4u << 20 &&
			    r.page_size != 1u << 30)
				bad++;
			if ((r.gpa & (r.page_size - 1)) != (gva & (r.page_size - 1)) || r.pf_error)
				bad++;
		}
		if (f < 0 || f > GPT_NONCANONICAL || r.nsteps > 4 || f != r.fault)
			bad++;
	}
	CHECK_EQ(bad, 0);
	CHECK(ok > 100);
	fprintf(stderr, "    200000 random walks, %u translated\n", ok);
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
	RUN(test_random);
	return unit_report(argv[0]);
}
