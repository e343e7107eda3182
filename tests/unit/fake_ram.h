/* A fake guest RAM for loader tests: writes (a loader_write_fn) land in a zeroed heap buffer; each is
 * bounds-checked and counted, and write number fail_at can be made to fail with fail_with. */
#pragma once
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "lib/errno.h"
#include "tests/unit/unit.h"

struct fake_ram {
	uint8_t *mem;
	uint64_t size;
	unsigned calls;
	int fail_with;    /* if non-zero, write number fail_at returns this */
	unsigned fail_at;
};

static inline int ram_write(void *ctx, uint64_t gpa, const void *src, uint64_t len)
{
	struct fake_ram *r = ctx;

	r->calls++;
	if (r->fail_with && r->calls == r->fail_at)
		return r->fail_with;
	CHECK(gpa <= r->size && len <= r->size - gpa);
	if (gpa > r->size || len > r->size - gpa)
		return -EFAULT;
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
