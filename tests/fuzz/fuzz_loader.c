/* libFuzzer harness of the loader (loader/elf.c, loader/mb2.c): a guest kernel image from a GRUB
 * module, as guest_create (core/guest.c) handles it: loader_check against the default 32 MiB of guest
 * RAM above the boot information area, then loader_load into a fake guest RAM, then mb2_build_info
 * with a command line.
 * The block built is then read back by our own Multiboot2 walker (core/bootinfo.c): it must be
 * well-formed and carry the command line unchanged. Then the whole loader as guest_create calls it
 * (loader_load_guest: Linux, Multiboot2 or Multiboot1, with the command line also as a module or
 * initrd): every write inside RAM, no two writes overlapping (an information block put on a segment,
 * a module on the image), and the block EBX points at one of them.
 *
 * Input: IMAGE | CMDLINE | L, where L (the last byte) is CMDLINE's length; a seed is an image with
 * one zero byte appended. The image is given to the loader as an exact-size heap copy (libFuzzer's),
 * so ASan reports a read past its end. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "core/bootinfo.h"
#include "core/guest.h"
#include "loader/loader.h"
#include "loader/mb2.h"
#include "lib/errno.h"
#include "tests/fuzz/fuzz.h"

#define RAM (32ull << 20) /* core/guest.c: the default mem= */

static uint8_t ram[RAM];
static struct guest_image img;

/* loader.h: loader_load writes only inside the span loader_check reported, inside RAM. */
static int ram_write(void *ctx, uint64_t gpa, const void *src, uint64_t len)
{
	(void)ctx;
	FUZZ_ASSERT(gpa >= img.lo && gpa <= img.hi && len <= img.hi - gpa);
	FUZZ_ASSERT(gpa >= GUEST_LOW_RESERVED && img.hi <= RAM);
	memcpy(ram + gpa, src, len);
	return 0;
}

/* loader_load_guest's writes of one input: inside RAM, none overlapping an earlier one. */
static uint64_t wlo[64], whi[64];
static unsigned nw;

static int ram_write_disjoint(void *ctx, uint64_t gpa, const void *src, uint64_t len)
{
	(void)ctx;
	FUZZ_ASSERT(gpa <= RAM && len <= RAM - gpa);
	for (unsigned i = 0; i < nw; i++)
		FUZZ_ASSERT(gpa >= whi[i] || wlo[i] >= gpa + len);
	if (nw < 64 && len) {
		wlo[nw] = gpa;
		whi[nw++] = gpa + len;
	}
	memcpy(ram + gpa, src, len);
	return 0;
}

/* Is gpa where one of the writes began? */
static bool written_at(uint64_t gpa)
{
	for (unsigned i = 0; i < nw; i++)
		if (wlo[i] == gpa)
			return true;
	return false;
}

static void load_whole_guest(const uint8_t *image, size_t isize, const char *cmdline)
{
	struct loader_file extra = { cmdline, strlen(cmdline), "fuzz module" };
	struct vcpu_state start;
	char why[160];
	int err;

	nw = 0;
	memset(why, 0x5a, sizeof(why));
	err = loader_load_guest(&(struct loader_job){
		.file = image, .size = isize, .cmdline = cmdline, .ram = RAM, .extra = &extra, .nextra = 1,
		.rsdp_gpa = 0xe0000, .write = ram_write_disjoint, .start = &start, .why = why,
		.whylen = sizeof(why) });
	FUZZ_ASSERT(strnlen(why, sizeof(why)) < sizeof(why) && why[0] != 0);
	if (err)
		return;
	if (start.rax == 0x2badb002 || start.rax == 0x36d76289)   /* Multiboot1, Multiboot2 magic */
		FUZZ_ASSERT(start.rbx % 4096 == 0 && start.rbx < (1ull << 32) && written_at(start.rbx));
	else
		FUZZ_ASSERT(start.rsi == LOADER_ZERO_PAGE_GPA && written_at(start.rsi));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint64_t info[GUEST_INFO_MAX / 8];
	static struct bootinfo bi;
	char why[160], cmdline[256];
	size_t clen, isize, n;
	int err;

	if (size < 1)
		return 0;
	clen = data[size - 1];
	if (clen > size - 1)
		clen = size - 1;
	isize = size - 1 - clen;
	memcpy(cmdline, data + isize, clen);
	cmdline[clen] = 0;

	memset(why, 0x5a, sizeof(why));
	err = loader_check(data, isize, RAM, GUEST_LOW_RESERVED, &img, why, sizeof(why));
	/* loader.h: a reason, NUL-terminated, on failure; one of three errors. */
	FUZZ_ASSERT(strnlen(why, sizeof(why)) < sizeof(why));
	if (err) {
		FUZZ_ASSERT(err == -ENOEXEC || err == -ENODEV || err == -EFAULT);
		FUZZ_ASSERT(why[0] != 0);
	} else {
		FUZZ_ASSERT(img.nsegments >= 1 && img.lo < img.hi && img.lo >= GUEST_LOW_RESERVED && img.hi <= RAM);
		FUZZ_ASSERT(img.entry >= img.lo && img.entry < img.hi && img.entry <= UINT32_MAX);
		FUZZ_ASSERT(loader_load(data, isize, ram_write, NULL) == 0);
	}

	n = mb2_build_info(info, sizeof(info), cmdline, "tessera", RAM);
	FUZZ_ASSERT(n > 0 && n <= sizeof(info) && n % 8 == 0);   /* a 255-byte line always fits in 4 KiB */
	FUZZ_ASSERT(bootinfo_parse(info, GUEST_INFO_GPA, &bi) == 0);
	FUZZ_ASSERT(strcmp(bi.cmdline, cmdline) == 0 && strcmp(bi.loader_name, "tessera") == 0);
	FUZZ_ASSERT(bi.nregions == 3 && bi.regions[2].base + bi.regions[2].len == RAM);

	load_whole_guest(data, isize, cmdline);
	return 0;
}
