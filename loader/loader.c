/* The guest loader's entry point: which boot protocol an image speaks, and what the formats share. */
#include <stdarg.h>
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "gmem/layout.h"
#include "loader/common.h"
#include "loader/linux.h"
#include "loader/mb1.h"
#include "loader/mb2.h"

#define PAGE 4096ull

void loader_say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	format(why, whylen, fmt, ap);
	va_end(ap);
}

unsigned loader_memory_map(uint64_t ram, struct loader_region map[LOADER_MAP_MAX])
{
	struct gmem_range r[GMEM_MAX_RANGES];
	unsigned nr = gmem_layout(ram, r), n = 0;
	uint64_t top = nr ? r[0].len : 0;   /* RAM from 0: all of it, or up to the hole */
	uint64_t low = min64(top, LOADER_LOW_END), bios = min64(top, LOADER_HIGH_BASE);

	if (low)
		map[n++] = (struct loader_region){ 0, low, LOADER_MEM_USABLE };
	if (bios > low)
		map[n++] = (struct loader_region){ low, bios - low, LOADER_MEM_RESERVED };
	if (top > bios)
		map[n++] = (struct loader_region){ bios, top - bios, LOADER_MEM_USABLE };
	/* The hole is not listed, as a PC's firmware leaves it out; RAM goes on at 4 GiB. */
	for (unsigned i = 1; i < nr; i++)
		map[n++] = (struct loader_region){ r[i].base, r[i].len, LOADER_MEM_USABLE };
	return n;
}

int loader_check_range(const char *what, uint64_t gpa, uint64_t len, uint64_t ram, char *why, size_t whylen)
{
	if (len ? !gmem_layout_contains(ram, gpa, len, NULL) : gpa > ram) {
		loader_say(why, whylen, "%s at GPA 0x%llx (0x%llx bytes) is outside its RAM (0x%llx bytes%s)", what,
			   (unsigned long long)gpa, (unsigned long long)len, (unsigned long long)ram,
			   ram > GMEM_HOLE_START ? ", none at 0xc0000000-0xffffffff" : "");
		return -EFAULT;
	}
	if (gpa < LOADER_HIGH_BASE && gpa + len > LOADER_LOW_END) {
		loader_say(why, whylen, "%s at GPA 0x%llx (0x%llx bytes) overlaps the reserved area 0x9fc00-0xfffff "
			   "(EBDA, VGA, BIOS, ACPI tables)", what, (unsigned long long)gpa, (unsigned long long)len);
		return -EFAULT;
	}
	return 0;
}

int loader_place_modules(const struct loader_file *extra, unsigned n, uint64_t from, uint64_t ram,
			 struct loader_module *mods, char *why, size_t whylen)
{
	uint64_t at = from, low = gmem_low_end(ram);   /* modules stay below the hole (32-bit addresses) */

	for (unsigned i = 0; i < n; i++) {
		uint64_t size = extra[i].size;

		at = align_up(at, PAGE);
		if (at < LOADER_HIGH_BASE && (at >= LOADER_LOW_END || size > LOADER_LOW_END - at))
			at = LOADER_HIGH_BASE;   /* would reach into the reserved area: start above it */
		/* Multiboot module addresses are 32-bit. */
		if (at > low || size > low - at) {
			loader_say(why, whylen, "module %u (0x%llx bytes) does not fit in RAM (0x%llx bytes%s) above the "
				   "kernel and the modules before it, from GPA 0x%llx", i + 1,
				   (unsigned long long)size, (unsigned long long)low, low < ram ? " below 3 GiB" : "",
				   (unsigned long long)at);
			return -EFAULT;
		}
		mods[i] = (struct loader_module){ at, at + size, extra[i].cmdline ? extra[i].cmdline : "" };
		at += size;
	}
	return 0;
}

/* Does [a, a + len) overlap [lo, hi)? */
static bool overlaps(uint64_t a, uint64_t len, uint64_t lo, uint64_t hi)
{
	return a < hi && lo < a + len;
}

/* Is [a, a + LOADER_INFO_MAX) usable RAM below 4 GiB, clear of the image and every module? */
static bool info_fits(uint64_t a, uint64_t img_lo, uint64_t img_hi, const struct loader_module *mods,
		      unsigned nmods, uint64_t ram)
{
	uint64_t top = min64(ram, 1ull << 32);

	if (a < LOADER_IMAGE_MIN || a > top || LOADER_INFO_MAX > top - a)
		return false;
	if (overlaps(a, LOADER_INFO_MAX, LOADER_LOW_END, LOADER_HIGH_BASE) || overlaps(a, LOADER_INFO_MAX, img_lo, img_hi))
		return false;
	for (unsigned i = 0; i < nmods; i++)
		if (overlaps(a, LOADER_INFO_MAX, mods[i].start, mods[i].end))
			return false;
	return true;
}

uint64_t loader_place_info(uint64_t img_lo, uint64_t img_hi, const struct loader_module *mods, unsigned nmods,
			   uint64_t ram, char *why, size_t whylen)
{
	uint64_t best = UINT64_MAX;

	if (info_fits(LOADER_INFO_GPA, img_lo, img_hi, mods, nmods, ram))
		return LOADER_INFO_GPA;
	/*
	 * The lowest free place starts at the bottom of a usable range or right after something placed
	 * there (page aligned): try those few candidates rather than every page.
	 */
	if (info_fits(LOADER_IMAGE_MIN, img_lo, img_hi, mods, nmods, ram))
		best = LOADER_IMAGE_MIN;
	if (LOADER_HIGH_BASE < best && info_fits(LOADER_HIGH_BASE, img_lo, img_hi, mods, nmods, ram))
		best = LOADER_HIGH_BASE;
	if (align_up(img_hi, PAGE) < best && info_fits(align_up(img_hi, PAGE), img_lo, img_hi, mods, nmods, ram))
		best = align_up(img_hi, PAGE);
	for (unsigned i = 0; i < nmods; i++) {
		uint64_t a = align_up(mods[i].end, PAGE);

		if (a < best && info_fits(a, img_lo, img_hi, mods, nmods, ram))
			best = a;
	}
	if (best == UINT64_MAX) {
		loader_say(why, whylen, "no room for the Multiboot information (0x%llx bytes) in RAM below 4 GiB "
			   "beside the image 0x%llx-0x%llx and %u module%s", LOADER_INFO_MAX,
			   (unsigned long long)img_lo, (unsigned long long)img_hi, nmods, nmods == 1 ? "" : "s");
		return 0;
	}
	return best;
}

int loader_put(loader_write_fn write, void *ctx, uint64_t gpa, const void *src, uint64_t len,
	       char *why, size_t whylen)
{
	int err;

	if (!write || !len)
		return 0;
	err = write(ctx, gpa, src, len);
	if (err)
		loader_say(why, whylen, "cannot write 0x%llx bytes to guest memory at GPA 0x%llx (error %d)",
			   (unsigned long long)len, (unsigned long long)gpa, err);
	return err;
}

void loader_mb_start_state(struct vcpu_state *s, uint64_t entry, uint32_t magic, uint64_t info_gpa)
{
	/* Multiboot 0.6.96 3.2, Multiboot2 3.3, "I386 machine state": 32-bit protected mode, flat 4 GiB
	 * read/write data and execute/read code segments (the selectors are unspecified: 0x10 and 0x08
	 * here), paging off, interrupts off, EAX = the boot loader magic, EBX = the information block.
	 * The GDTR and IDTR are the kernel's to load; TR a busy TSS because VM entry checks it. */
	struct seg_state data = { 0x10, 0, 0xffffffff, AR_DATA32 };

	memset(s, 0, sizeof(*s));
	s->cs = (struct seg_state){ 0x08, 0, 0xffffffff, AR_CODE32 };
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->ldtr = (struct seg_state){ 0, 0, 0, AR_UNUSABLE };
	s->tr = (struct seg_state){ 0, 0, 0xff, AR_TSS32_BUSY };
	s->cr0 = 0x11;                 /* PE, ET */
	s->rflags = 0x2;               /* IF = 0 */
	s->rip = entry;
	s->rax = magic;
	s->rbx = info_gpa;
}

/* The arguments every protocol shares: checked once here. */
static int check_args(const void *rsdp, size_t rsdp_len, const struct loader_file *extra, unsigned nextra,
		      uint64_t ram, char *why, size_t whylen)
{
	if (nextra > LOADER_MAX_FILES) {
		loader_say(why, whylen, "%u extra files, more than %u", nextra, LOADER_MAX_FILES);
		return -EINVAL;
	}
	for (unsigned i = 0; i < nextra; i++)
		if (!extra || (!extra[i].data && extra[i].size)) {
			loader_say(why, whylen, "extra file %u has no data", i + 1);
			return -EINVAL;
		}
	/* ACPI 6.5, 5.2.5.3: the signature, and at least the ACPI 1.0 part. */
	if (rsdp && (rsdp_len < 20 || memcmp(rsdp, "RSD PTR ", 8) != 0)) {
		loader_say(why, whylen, "the RSDP copy (%zu bytes) is not an RSDP", rsdp_len);
		return -EINVAL;
	}
	if (ram < LOADER_INFO_END) {
		loader_say(why, whylen, "guest RAM (0x%llx bytes) does not reach the end of the boot information "
			   "at 0x%llx", (unsigned long long)ram, LOADER_INFO_END);
		return -EFAULT;
	}
	return 0;
}

/*
 * Which protocol: a Linux setup header first (a bzImage has no other header), then a Multiboot2 header,
 * then a Multiboot1 header, each with a right checksum; a header whose checksum alone is wrong is then
 * reported as that (Multiboot2 first). The order is GRUB's preference for a kernel with both
 * Multiboot headers.
 */
int loader_load_guest(const struct loader_job *job)
{
	const void *file = job->file;
	size_t size = file ? job->size : 0;
	const char *cmdline = job->cmdline;
	char *why = job->why;
	size_t whylen = job->whylen;
	int mb2, mb1, err;

	if (why && whylen)
		why[0] = '\0';
	err = check_args(job->rsdp, job->rsdp_len, job->extra, job->nextra, job->ram, why, whylen);
	if (err)
		return err;
	if (linux_is_bzimage(file, size))
		return linux_load_guest(file, size, cmdline, job->ram, job->extra, job->nextra, job->rsdp_gpa,
					job->write, job->ctx, job->start, why, whylen);
	mb2 = mb2_header_seen(file, size);
	mb1 = mb1_header_seen(file, size);
	if (mb2 == 2 || (mb2 == 1 && mb1 != 2))
		return mb2_load_guest(file, size, cmdline, job->ram, job->extra, job->nextra, job->rsdp,
				      job->rsdp_len, job->write, job->ctx, job->start, why, whylen);
	if (mb1)
		return mb1_load_guest(file, size, cmdline, job->ram, job->extra, job->nextra, job->write,
				      job->ctx, job->start, why, whylen);
	loader_say(why, whylen, "not a kernel we can boot: no Linux setup header (\"HdrS\" at 0x202), no "
		   "Multiboot2 header in the first 32 KiB, no Multiboot header in the first 8 KiB");
	return -ENOEXEC;
}
