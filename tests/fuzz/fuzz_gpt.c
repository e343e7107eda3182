/* libFuzzer harness of shadow/gpt.c: the guest's page tables, walked as its CPU would. Everything the
 * guest controls is fuzzed: CR0/CR3/CR4/EFER, the PAE PDPTEs, MAXPHYADDR, CPL, the address, the access
 * kind, and the bytes of its memory (the tables themselves).
 *
 * Input: a 96-byte header (below), then guest memory. The memory is FUZZ_PAGES pages (the input's
 * tail, zero-padded) mirrored over the low 4 GiB, so addresses a fuzzed entry holds usually land on
 * fuzzed bytes; GPAs at or above 4 GiB are "not RAM" and take the GPT_BAD_GPA path.
 *
 *   +0  u8 access: bit 0 write, 1 user, 2 fetch, 3 gpt_read instead of gpt_walk, 4 gpt_translate
 *       instead of gpt_walk (SMEP/SMAP checked) with 5 an implicit access, 6 A/D set, 7 RFLAGS.AC
 *   +1  u8 phys_bits   +2 u8 cpl   +3 u8 unused   +4 u16 gpt_read length (mod 4097)   +6 u16 unused
 *   +8  cr0  +16 cr3  +24 cr4  +32 efer  +40 pdpte[0..3]  +72 gva  +80..95 unused   (u64 each)
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "shadow/gpt.h"
#include "tests/fuzz/fuzz.h"

#define HDR        96
#define FUZZ_PAGES 16
#define MEM_SIZE   (FUZZ_PAGES * 4096u)

static uint8_t mem[MEM_SIZE];
static bool walking; /* inside gpt_walk: only entry reads (4 or 8 bytes, aligned) are legal */

/* gpt.h: entries are 4 or 8 bytes, aligned; gpt_read's chunks up to 4096 bytes inside one page. */
static int read_gpa(void *arg, uint64_t gpa, void *dst, unsigned len)
{
	(void)arg;
	FUZZ_ASSERT(len >= 1 && len <= 4096 && (gpa & 0xfff) + len <= 4096);
	if (walking)
		FUZZ_ASSERT((len == 4 || len == 8) && (gpa & (len - 1)) == 0);
	if (gpa >= (1ull << 32))
		return -1;
	memcpy(dst, mem + (gpa % MEM_SIZE), len);   /* never crosses the mirror: len stays in one page */
	return 0;
}

/* GPT_ACC_SET_AD: the entry update, on the same mirrored memory. */
static int cmpxchg_gpa(void *arg, uint64_t gpa, uint64_t old, uint64_t val, unsigned len)
{
	uint64_t cur = 0;

	(void)arg;
	FUZZ_ASSERT((len == 4 || len == 8) && (gpa & (len - 1)) == 0);
	if (gpa >= (1ull << 32))
		return -1;
	memcpy(&cur, mem + (gpa % MEM_SIZE), len);
	if (cur != old)
		return 1;
	memcpy(mem + (gpa % MEM_SIZE), &val, len);
	return 0;
}

static void check_walk(const struct gpt_ctx *c, uint64_t gva, int f, const struct gpt_result *r)
{
	FUZZ_ASSERT(f == r->fault);
	FUZZ_ASSERT(r->nsteps <= 4);
	if (f != GPT_OK)
		return;
	if (!(c->cr0 & GPT_CR0_PG)) {
		FUZZ_ASSERT(r->page_size == 0 && r->nsteps == 0);
		return;
	}
	FUZZ_ASSERT(r->page_size == (1ull << 12) || r->page_size == (1ull << 21) ||
		    r->page_size == (1ull << 22) || r->page_size == (1ull << 30));
	FUZZ_ASSERT(r->nsteps >= 1);
	/* The offset inside the page is the address's own; the page frame is below 2^52. */
	FUZZ_ASSERT((r->gpa & (r->page_size - 1)) == (r->gva & (r->page_size - 1)));
	FUZZ_ASSERT(r->gpa < (1ull << 52));
	FUZZ_ASSERT(r->gva == gva || r->gva == (uint32_t)gva);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size, 0 };
	struct gpt_ctx c = { .read_gpa = read_gpa, .cmpxchg_gpa = cmpxchg_gpa };
	struct gpt_result r;
	unsigned access, len;
	uint64_t gva;
	size_t tail;
	int f;

	access = (unsigned)fuzz_take(&in, 1);
	c.phys_bits = (unsigned)fuzz_take(&in, 1);
	c.cpl = (unsigned)fuzz_take(&in, 1) & 3;
	fuzz_take(&in, 1);
	len = (unsigned)(fuzz_take(&in, 2) % 4097);
	fuzz_take(&in, 2);
	c.cr0 = fuzz_take(&in, 8);
	c.cr3 = fuzz_take(&in, 8);
	c.cr4 = fuzz_take(&in, 8);
	c.efer = fuzz_take(&in, 8);
	for (unsigned i = 0; i < 4; i++)
		c.pdpte[i] = fuzz_take(&in, 8);
	gva = fuzz_take(&in, 8);

	tail = size > HDR ? size - HDR : 0;
	if (tail > MEM_SIZE)
		tail = MEM_SIZE;
	memset(mem, 0, MEM_SIZE);
	if (tail)
		memcpy(mem, data + HDR, tail);

	if (access & 0x10) {
		unsigned acc = (access & 1 ? GPT_ACC_WRITE : 0) | (access & 2 ? GPT_ACC_USER : 0) |
			       (access & 4 ? GPT_ACC_FETCH : 0) | (access & 0x20 ? GPT_ACC_IMPLICIT : 0) |
			       (access & 0x40 ? GPT_ACC_SET_AD : 0);
		bool pae = (c.cr4 & GPT_CR4_PAE) && !(c.efer & GPT_EFER_LMA);

		c.rflags = access & 0x80 ? GPT_RFLAGS_AC : 0;
		walking = true;
		f = gpt_translate(&c, gva, acc, &r);
		walking = false;
		check_walk(&c, gva, f, &r);
		/* A/D only on success, and then in every entry used (bits are only ever set) */
		for (unsigned i = 0; f == GPT_OK && (acc & GPT_ACC_SET_AD) && i < r.nsteps; i++) {
			uint64_t e = 0;

			if (pae && r.steps[i].level == 3)
				continue;
			memcpy(&e, mem + (r.steps[i].entry_gpa % MEM_SIZE), c.cr4 & GPT_CR4_PAE ? 8 : 4);
			FUZZ_ASSERT(e & GPT_A);
		}
	} else if (!(access & 8)) {
		walking = true;
		f = gpt_walk(&c, gva, access & 1, access & 2, access & 4, &r);
		walking = false;
		check_walk(&c, gva, f, &r);
		FUZZ_ASSERT(f != GPT_OK || r.page_size || !(c.cr0 & GPT_CR0_PG));
		if (f == GPT_NOT_PRESENT || f == GPT_RESERVED || f == GPT_PERM)
			FUZZ_ASSERT(!!(r.pf_error & GPT_PF_P) == (f != GPT_NOT_PRESENT) &&
				    !!(r.pf_error & GPT_PF_RSVD) == (f == GPT_RESERVED));
	} else {
		/* The destination is exactly len bytes, so ASan sees a write past it. */
		uint8_t *dst = malloc(len ? len : 1);

		FUZZ_ASSERT(dst);
		f = gpt_read(&c, gva, dst, len, access & 4, &r);
		FUZZ_ASSERT(f == GPT_OK || f == r.fault);
		free(dst);
	}
	return 0;
}
