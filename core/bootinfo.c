/* The Multiboot2 tag walker: checks the boot loader's information block, copies it into struct bootinfo. */
#include "core/bootinfo.h"
#include "core/multiboot2.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/string.h"

/*
 * The information block as GRUB lays it out (Multiboot2 spec 3.6):
 *
 *   +0   total_size (u32, whole block, END tag included)   +4  reserved (u32)
 *   +8   tag: type (u32) | size (u32, header included, padding not) | payload ...
 *        padding to the next multiple of 8
 *   ...  more tags ...
 *        END tag: type 0, size 8
 *
 * Nothing here trusts a size field: every tag must lie inside total_size before any of it is read.
 */

/* Far more than any real block (a few KiB, tens with a large EFI map): a bigger size is garbage. */
#define MB2_INFO_MAX        (16u << 20)

/* Tag types not in multiboot2.h that only tell us the machine booted through UEFI (spec 3.6.16-17). */
#define MB2_TAG_EFI32_IH    19
#define MB2_TAG_EFI64_IH    20

/* RSDP sizes: ACPI 1.0 (revision 0) and ACPI 2.0+ (ACPI 6.5, 5.2.5.3, Table 5.3). */
#define RSDP_V1_SIZE        20
#define RSDP_V2_SIZE        36
/* EFI_MEMORY_DESCRIPTOR: 40 bytes in UEFI 2.x (7.2 GetMemoryMap); firmware may use a larger stride. */
#define EFI_DESC_MIN        40

/* Is a NUL within s[0..max)? Strings in tags must end inside their tag. */
static bool terminated(const char *s, size_t max)
{
	return strnlen(s, max) < max;
}

/* Multiboot2 numbers 1..5 as enum mem_type does; every other value means reserved (spec 3.6.8). */
static uint32_t region_type(uint32_t mb2_type)
{
	return mb2_type >= MEM_USABLE && mb2_type <= MEM_BAD ? mb2_type : MEM_RESERVED;
}

/* What the walk remembers between tags: each overflow is reported once. */
struct walk {
	struct bootinfo *bi;
	bool regions_dropped, modules_dropped;
};

static int parse_mmap(const struct mb2_tag_mmap *t, struct walk *w)
{
	const uint8_t *p = (const uint8_t *)t->entries, *end = (const uint8_t *)t + t->size;
	struct bootinfo *bi = w->bi;
	struct mb2_mmap_entry e;
	bool dropped = false;

	if (t->size < sizeof(*t) || t->entry_size < sizeof(e)) {
		pr_err("hv: multiboot2: memory map tag of size %u with entries of %u bytes\n",
		       t->size, t->size < sizeof(*t) ? 0 : t->entry_size);
		return -EINVAL;
	}
	/* The stride is entry_size, not sizeof: a newer loader may append fields to each entry. */
	for (; end - p >= (long)t->entry_size; p += t->entry_size) {
		memcpy(&e, p, sizeof(e)); /* entry_size need not be a multiple of 8: no aligned loads */
		if (e.length == 0)
			continue;
		if (bi->nregions == BOOTINFO_MAX_REGIONS) {
			dropped = true;
			continue;
		}
		bi->regions[bi->nregions].base = e.base_addr;
		bi->regions[bi->nregions].len = e.length;
		bi->regions[bi->nregions].type = region_type(e.type);
		bi->nregions++;
	}
	if (dropped && !w->regions_dropped)
		pr_err("hv: multiboot2: more than %d memory regions, keeping the first ones\n",
		       BOOTINFO_MAX_REGIONS);
	w->regions_dropped |= dropped;
	return 0;
}

static int parse_module(const struct mb2_tag_module *t, struct walk *w)
{
	struct bootinfo *bi = w->bi;
	struct boot_module *m;

	if (t->size < sizeof(*t) + 1 || !terminated(t->cmdline, t->size - sizeof(*t))) {
		pr_err("hv: multiboot2: module tag of size %u without a terminated command line\n", t->size);
		return -EINVAL;
	}
	if (t->mod_end < t->mod_start) {
		pr_err("hv: multiboot2: module ends (0x%x) before it starts (0x%x)\n", t->mod_end, t->mod_start);
		return -EINVAL;
	}
	if (bi->nmodules == BOOTINFO_MAX_MODULES) {
		/* Once, at the first module too many, not once per module. */
		if (!w->modules_dropped)
			pr_err("hv: multiboot2: more than %d modules, keeping the first ones\n",
			       BOOTINFO_MAX_MODULES);
		w->modules_dropped = true;
		return 0;
	}
	m = &bi->modules[bi->nmodules++];
	m->start = t->mod_start;
	m->end = t->mod_end;
	m->cmdline = t->cmdline;
	return 0;
}

static int parse_string(const struct mb2_tag_string *t, const char **dst, const char *what)
{
	if (t->size < sizeof(*t) + 1 || !terminated(t->string, t->size - sizeof(*t))) {
		pr_err("hv: multiboot2: %s tag of size %u is not a terminated string\n", what, t->size);
		return -EINVAL;
	}
	*dst = t->string;
	return 0;
}

/* One tag, already known to lie inside the block. */
static int parse_tag(const struct mb2_tag *tag, uint64_t tag_phys, struct walk *w)
{
	struct bootinfo *bi = w->bi;
	const struct mb2_tag_framebuffer *fb;
	const struct mb2_tag_efi_mmap *em;

	switch (tag->type) {
	case MB2_TAG_CMDLINE:
		return parse_string((const void *)tag, &bi->cmdline, "command line");
	case MB2_TAG_LOADER_NAME:
		return parse_string((const void *)tag, &bi->loader_name, "boot loader name");
	case MB2_TAG_MODULE:
		return parse_module((const void *)tag, w);
	case MB2_TAG_MMAP:
		return parse_mmap((const void *)tag, w);
	case MB2_TAG_EFI_MMAP:
		em = (const void *)tag;
		if (tag->size < sizeof(*em) || em->descr_size < EFI_DESC_MIN) {
			pr_err("hv: multiboot2: EFI memory map tag of size %u with descriptors of %u bytes\n",
			       tag->size, tag->size < sizeof(*em) ? 0 : em->descr_size);
			return -EINVAL;
		}
		bi->efi_mmap_entries = (tag->size - sizeof(*em)) / em->descr_size;
		bi->efi = true;
		return 0;
	case MB2_TAG_ACPI_OLD:
	case MB2_TAG_ACPI_NEW:
		if (tag->size < sizeof(*tag) + (tag->type == MB2_TAG_ACPI_NEW ? RSDP_V2_SIZE : RSDP_V1_SIZE)) {
			pr_err("hv: multiboot2: ACPI RSDP tag of size %u is too small\n", tag->size);
			return -EINVAL;
		}
		/* Both tags may be present: the ACPI 2.0 one (XSDT, 64-bit addresses) wins. */
		if (tag->type == MB2_TAG_ACPI_NEW || bi->rsdp_revision < 2) {
			bi->rsdp = tag_phys + sizeof(*tag);
			bi->rsdp_revision = tag->type == MB2_TAG_ACPI_NEW ? 2 : 0;
		}
		return 0;
	case MB2_TAG_FRAMEBUFFER:
		fb = (const void *)tag;
		if (tag->size < sizeof(*fb)) {
			pr_err("hv: multiboot2: framebuffer tag of size %u is too small\n", tag->size);
			return -EINVAL;
		}
		bi->has_framebuffer = true;
		bi->fb.addr = fb->addr;
		bi->fb.pitch = fb->pitch;
		bi->fb.width = fb->width;
		bi->fb.height = fb->height;
		bi->fb.bpp = fb->bpp;
		bi->fb.type = fb->fb_type;
		return 0;
	case MB2_TAG_EFI32:
	case MB2_TAG_EFI64:
	case MB2_TAG_EFI_BS:
	case MB2_TAG_EFI32_IH:
	case MB2_TAG_EFI64_IH:
		bi->efi = true;
		return 0;
	default:
		return 0; /* a tag we do not need: its size is all we must trust, and that was checked */
	}
}

int bootinfo_parse(const void *mbi, uint64_t mbi_phys, struct bootinfo *bi)
{
	const uint8_t *base = mbi;
	const struct mb2_info_header *hdr = mbi;
	const struct mb2_tag *tag;
	struct walk w = { .bi = bi };
	uint64_t off, total, size;
	int ret;

	memset(bi, 0, sizeof(*bi));
	bi->cmdline = "";
	bi->loader_name = "";
	bi->mbi_start = bi->mbi_end = mbi_phys;

	/* The block is 8-byte aligned (spec 3.6.1); the tag offsets below are only aligned if it is. */
	if (!mbi || ((uintptr_t)mbi & 7) || (mbi_phys & 7)) {
		pr_err("hv: multiboot2: information block at 0x%llx is not 8-byte aligned\n",
		       (unsigned long long)mbi_phys);
		return -EINVAL;
	}
	total = hdr->total_size;
	if (total < sizeof(*hdr) + sizeof(*tag) || total > MB2_INFO_MAX) {
		pr_err("hv: multiboot2: information block total size %llu is not sane\n",
		       (unsigned long long)total);
		return -EINVAL;
	}
	bi->mbi_end = mbi_phys + total;

	/*
	 * Tags start 8-byte aligned: the first at offset 8 of an aligned block, each next one at its
	 * predecessor's size rounded up to 8 (spec 3.6.1). So a tag start cannot be misaligned once the
	 * block is aligned, which is checked above.
	 */
	for (off = sizeof(*hdr);; off += (size + 7) & ~7ull) {
		if (off + sizeof(*tag) > total) {
			pr_err("hv: multiboot2: no END tag within the %llu-byte block\n",
			       (unsigned long long)total);
			return -EINVAL;
		}
		tag = (const struct mb2_tag *)(base + off);
		size = tag->size;
		if (size < sizeof(*tag)) {
			pr_err("hv: multiboot2: tag type %u at offset %llu has size %llu (< 8)\n",
			       tag->type, (unsigned long long)off, (unsigned long long)size);
			return -EINVAL;
		}
		if (size > total - off) {
			pr_err("hv: multiboot2: tag type %u at offset %llu (size %llu) runs past the end %llu\n",
			       tag->type, (unsigned long long)off, (unsigned long long)size,
			       (unsigned long long)total);
			return -EINVAL;
		}
		if (tag->type == MB2_TAG_END)
			return 0;
		ret = parse_tag(tag, mbi_phys + off, &w);
		if (ret < 0)
			return ret;
	}
}
