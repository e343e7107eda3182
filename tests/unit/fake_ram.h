/* A fake guest RAM for loader tests: writes (a loader_write_fn) land in a zeroed heap buffer; each is
 * bounds-checked and counted, and write number fail_at can be made to fail with fail_with. With
 * `disjoint` set, each write is also checked against the earlier ones since ram_forget: a loader that
 * put two things (a segment and the boot information) in the same place fails the test. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/errno.h"
#include "tests/unit/unit.h"

#define RAM_WRITES 64

struct fake_ram {
	uint8_t *mem;
	uint64_t size;
	unsigned calls;
	int fail_with;    /* if non-zero, write number fail_at returns this */
	unsigned fail_at;
	bool disjoint;    /* check that writes do not overlap (the first RAM_WRITES of them are kept) */
	unsigned nw;
	uint64_t wlo[RAM_WRITES], whi[RAM_WRITES];
};

/* Forgets the writes `disjoint` compares with (before the next load into the same RAM). */
static inline void ram_forget(struct fake_ram *r)
{
	r->nw = 0;
}

static inline int ram_write(void *ctx, uint64_t gpa, const void *src, uint64_t len)
{
	struct fake_ram *r = ctx;

	r->calls++;
	if (r->fail_with && r->calls == r->fail_at)
		return r->fail_with;
	CHECK(gpa <= r->size && len <= r->size - gpa);
	if (gpa > r->size || len > r->size - gpa)
		return -EFAULT;
	if (r->disjoint && len) {
		for (unsigned i = 0; i < r->nw; i++) {
			CHECK(gpa >= r->whi[i] || r->wlo[i] >= gpa + len);
			if (gpa < r->whi[i] && r->wlo[i] < gpa + len)
				fprintf(stderr, "    write [0x%llx, 0x%llx) overlaps [0x%llx, 0x%llx)\n",
					(unsigned long long)gpa, (unsigned long long)(gpa + len),
					(unsigned long long)r->wlo[i], (unsigned long long)r->whi[i]);
		}
		if (r->nw < RAM_WRITES) {
			r->wlo[r->nw] = gpa;
			r->whi[r->nw++] = gpa + len;
		}
	}
	memcpy(r->mem + gpa, src, len);
	return 0;
}

static inline void ram_init(struct fake_ram *r, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->mem = calloc(1, size);
}

/* The first non-zero byte in [from, to), or to. */
static inline uint64_t first_nonzero(const struct fake_ram *r, uint64_t from, uint64_t to)
{
	for (uint64_t a = from; a < to; a++)
		if (r->mem[a])
			return a;
	return to;
}
