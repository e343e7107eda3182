/* libFuzzer harness of core/bootinfo.c: the Multiboot2 information block the boot loader hands over.
 * The input is the block; it is copied to an 8-byte aligned buffer of exactly its size, so ASan
 * reports any read past it. A block whose total_size claims more bytes than the input holds is
 * skipped unless the claim is beyond the walker's sanity limit (which it must refuse unread): in the
 * hypervisor, total_size bytes really are there. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/bootinfo.h"
#include "tests/fuzz/fuzz.h"

#define MBI_PHYS 0x10000ull        /* where the block pretends to lie */
#define SANE_MAX (16u << 20)       /* bootinfo.c MB2_INFO_MAX */

/* A string the walker kept must lie inside the block and end there (bootinfo.h). */
static void check_string(const char *s, const uint8_t *blk, uint32_t total)
{
	const uint8_t *p = (const uint8_t *)s;

	if (s[0] == 0 && (p < blk || p >= blk + total))
		return; /* the "" default */
	FUZZ_ASSERT(p >= blk + 8 && p < blk + total);
	FUZZ_ASSERT(strnlen(s, (size_t)(blk + total - p)) < (size_t)(blk + total - p));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct bootinfo bi;
	uint32_t total;
	uint8_t *blk;
	int ret;

	if (size < 4)
		return 0;
	memcpy(&total, data, 4);
	if (total > size && total <= SANE_MAX)
		return 0;
	blk = malloc(size);     /* malloc's alignment is 16: the walker's 8-byte check passes */
	FUZZ_ASSERT(blk);
	memcpy(blk, data, size);

	ret = bootinfo_parse(blk, MBI_PHYS, &bi);
	FUZZ_ASSERT(ret == 0 || ret < 0);
	if (total <= size) {
		check_string(bi.cmdline, blk, total);
		check_string(bi.loader_name, blk, total);
		for (size_t i = 0; i < bi.nmodules; i++) {
			check_string(bi.modules[i].cmdline, blk, total);
			FUZZ_ASSERT(bi.modules[i].start <= bi.modules[i].end);
		}
		/* The RSDP copy is inside the block, with room for the structure its revision has. */
		if (bi.rsdp)
			FUZZ_ASSERT(bi.rsdp >= MBI_PHYS + 16 &&
				    bi.rsdp + (bi.rsdp_revision >= 2 ? 36 : 20) <= MBI_PHYS + total);
	}
	FUZZ_ASSERT(bi.nregions <= BOOTINFO_MAX_REGIONS && bi.nmodules <= BOOTINFO_MAX_MODULES);
	free(blk);
	return 0;
}
