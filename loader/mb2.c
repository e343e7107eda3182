/* Multiboot2 kernels: the header and its tags, the information block, the start state. */
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"
#include "gmem/layout.h"
#include "loader/mb2.h"
#include "loader/multiboot2.h"

/* --- Multiboot2 header (Multiboot2 spec 3.1) -------------------------------------------------------
 *
 *   +0  magic 0xe85250d6   +4  architecture (0: i386 protected mode)
 *   +8  header_length      +12 checksum: the four u32 fields sum to 0 mod 2^32
 *   +16 tags: u16 type | u16 flags (bit 0: optional) | u32 size (header included) | payload,
 *       each tag 8-byte aligned, the list ended by type 0 size 8.
 */
#define MB2_ARCH_I386            0
#define MB2_HDR_FIXED            16      /* magic, architecture, header_length, checksum */
#define MB2_HTAG_END             0
#define MB2_HTAG_INFO_REQ        1       /* u32 mbi_tag_types[] (spec 3.1.4) */
#define MB2_HTAG_ADDRESS         2       /* a.out kludge load addresses (spec 3.1.5) */
#define MB2_HTAG_ENTRY           3       /* u32 entry_addr, physical (spec 3.1.6) */
#define MB2_HTAG_CONSOLE         4       /* console flags (spec 3.1.8) */
#define MB2_HTAG_FRAMEBUFFER     5       /* preferred video mode (spec 3.1.9) */
#define MB2_HTAG_MODULE_ALIGN    6       /* page-align modules (spec 3.1.10) */
#define MB2_HTAG_EFI_BS          7       /* keep EFI boot services (spec 3.1.11) */
#define MB2_HTAG_EFI32_ENTRY     8       /* EFI i386 entry (spec 3.1.7) */
#define MB2_HTAG_EFI64_ENTRY     9       /* EFI amd64 entry (spec 3.1.7) */
#define MB2_HTAG_RELOCATABLE     10      /* load-address range (spec 3.1.12) */
#define MB2_HTAG_OPTIONAL        1u      /* flags bit 0 */

/* RSDP sizes: ACPI 1.0 (revision 0) and ACPI 2.0+ (ACPI 6.5, 5.2.5.3). */
#define RSDP_V1_SIZE             20
#define RSDP_V2_SIZE             36
#define RSDP_REVISION            15      /* byte offset of the revision */

struct mb2_header {
	uint32_t magic, architecture, header_length, checksum;
};

struct mb2_header_tag {
	uint16_t type, flags;
	uint32_t size;
};

_Static_assert(sizeof(struct mb2_header) == MB2_HDR_FIXED, "Multiboot2 spec 3.1.2");
_Static_assert(sizeof(struct mb2_header_tag) == 8, "Multiboot2 spec 3.1.3");

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~7ull;
}

/* --- the header --------------------------------------------------------------------------------- */

/* What the header tags asked for that the loader acts on. */
struct mb2_req {
	bool has_entry;
	uint64_t entry;
};

/* Boot information tags a loader run provides, as a bit per type (all types we know are < 32). A
 * required information request tag asking for anything else makes us refuse the kernel (spec 3.1.4). */
#define TAG_BIT(t) (1u << (t))
#define PROVIDED_BASIC (TAG_BIT(MB2_TAG_END) | TAG_BIT(MB2_TAG_CMDLINE) | TAG_BIT(MB2_TAG_LOADER_NAME) | \
			TAG_BIT(MB2_TAG_BASIC_MEMINFO) | TAG_BIT(MB2_TAG_MMAP))

static const char *htag_name(uint16_t type)
{
	switch (type) {
	case MB2_HTAG_ADDRESS:      return "address (a.out kludge)";
	case MB2_HTAG_CONSOLE:      return "console flags";
	case MB2_HTAG_FRAMEBUFFER:  return "framebuffer";
	case MB2_HTAG_EFI_BS:       return "EFI boot services";
	case MB2_HTAG_EFI32_ENTRY:  return "EFI i386 entry address";
	case MB2_HTAG_EFI64_ENTRY:  return "EFI amd64 entry address";
	case MB2_HTAG_RELOCATABLE:  return "relocatable";
	default:                    return "unknown";
	}
}

/* Walks the header's tags (h at file offset `at`, header_length `len`, both checked inside the file). */
static int mb2_tags(const uint8_t *h, uint32_t len, uint32_t provided, struct mb2_req *req,
		    char *why, size_t whylen)
{
	uint32_t off = MB2_HDR_FIXED;

	while (off <= len && len - off >= sizeof(struct mb2_header_tag)) {
		struct mb2_header_tag t;
		bool required;

		memcpy(&t, h + off, sizeof(t));
		if (t.size < sizeof(t) || t.size > len - off) {
			loader_say(why, whylen, "Multiboot2 header tag %u has a bad size %u", t.type, t.size);
			return -ENOEXEC;
		}
		required = !(t.flags & MB2_HTAG_OPTIONAL);
		switch (t.type) {
		case MB2_HTAG_END:
			return 0;
		case MB2_HTAG_INFO_REQ:
			/* u32 types after the tag header; asking for what we do not give is fatal only if required. */
			for (uint32_t i = sizeof(t); required && t.size - i >= 4; i += 4) {
				uint32_t want = rd32(h + off + i);

				if (want >= 32 || !(provided & TAG_BIT(want))) {
					loader_say(why, whylen, "Multiboot2 header requires boot information tag %u, "
						   "which we do not provide", want);
					return -ENODEV;
				}
			}
			break;
		case MB2_HTAG_ENTRY:
			if (t.size < sizeof(t) + 4) {
				loader_say(why, whylen, "Multiboot2 entry address tag is too short");
				return -ENOEXEC;
			}
			req->has_entry = true;
			req->entry = rd32(h + off + sizeof(t));
			break;
		case MB2_HTAG_MODULE_ALIGN:
			/* Modules are always page aligned (loader_place_modules): met. */
			break;
		default:
			/* Spec 3.1.3: a loader that does not honour a tag must fail if the tag is not optional. */
			if (required) {
				loader_say(why, whylen, "Multiboot2 header requires the %s tag (type %u), which we do "
					   "not support", htag_name(t.type), t.type);
				return -ENODEV;
			}
			break;
		}
		off += (uint32_t)align8(t.size);   /* t.size <= len < 32 KiB: no overflow */
	}
	loader_say(why, whylen, "Multiboot2 header has no end tag");
	return -ENOEXEC;
}

/* The first 8-byte aligned place in the first 32 KiB (spec 3.1.1) where magic and checksum agree
 * (spec 3.1.2), or -1; *magic_seen tells whether the magic alone was found. */
static long mb2_locate(const uint8_t *f, size_t size, bool *magic_seen)
{
	size_t limit = size < LOADER_MB2_SEARCH ? size : LOADER_MB2_SEARCH;

	*magic_seen = false;
	for (size_t at = 0; f && at + MB2_HDR_FIXED <= limit; at += 8) {
		struct mb2_header h;

		memcpy(&h, f + at, sizeof(h));
		if (h.magic != MB2_HEADER_MAGIC)
			continue;
		*magic_seen = true;
		if ((uint32_t)(h.magic + h.architecture + h.header_length + h.checksum) == 0)
			return (long)at;
	}
	return -1;
}

int mb2_header_seen(const void *file, size_t size)
{
	bool magic;

	if (mb2_locate(file, size, &magic) >= 0)
		return 2;
	return magic ? 1 : 0;
}

/* Finds the Multiboot2 header and checks it and its tags. If only the magic was found, the checksum
 * is what is wrong. */
static int mb2_find(const uint8_t *f, size_t size, uint32_t provided, struct mb2_req *req,
		    char *why, size_t whylen)
{
	size_t limit = size < LOADER_MB2_SEARCH ? size : LOADER_MB2_SEARCH;
	struct mb2_header h;
	bool magic_seen;
	long at = mb2_locate(f, size, &magic_seen);

	if (at < 0) {
		if (magic_seen)
			loader_say(why, whylen, "Multiboot2 header checksum is wrong");
		else
			loader_say(why, whylen, "no Multiboot2 header in the first 32 KiB");
		return -ENOEXEC;
	}
	memcpy(&h, f + at, sizeof(h));
	if (h.architecture != MB2_ARCH_I386) {
		loader_say(why, whylen, "Multiboot2 header is for architecture %u, not i386 (0)", h.architecture);
		return -ENOEXEC;
	}
	if (h.header_length < MB2_HDR_FIXED + sizeof(struct mb2_header_tag) ||
	    h.header_length > limit - (size_t)at) {
		loader_say(why, whylen, "Multiboot2 header length %u is wrong or runs past the first 32 KiB",
			   h.header_length);
		return -ENOEXEC;
	}
	return mb2_tags(f + at, h.header_length, provided, req, why, whylen);
}

/* The ELF header, the Multiboot2 header, then the segments (in this order: the reasons name the first
 * problem a reader of the file would meet). */
static int mb2_check(const uint8_t *f, size_t size, uint32_t provided, const struct elf_limits *lim,
		     struct guest_image *img, char *why, size_t whylen)
{
	struct mb2_req req = { 0 };
	struct elf e;
	int err;

	err = elf_parse(f, size, &e, why, whylen);
	if (err)
		return err;
	err = mb2_find(f, size, provided, &req, why, whylen);
	if (err)
		return err;
	return elf_place(f, size, &e, lim, req.has_entry ? &req.entry : NULL, img, why, whylen);
}

int loader_check(const void *file, size_t size, uint64_t ram, uint64_t reserved_end,
		 struct guest_image *img, char *why, size_t whylen)
{
	struct elf_limits lim = { ram, reserved_end, false };

	if (why && whylen)
		why[0] = '\0';
	if (!file)
		size = 0;
	return mb2_check(file, size, PROVIDED_BASIC, &lim, img, why, whylen);
}

int loader_load(const void *file, size_t size, loader_write_fn write, void *ctx)
{
	return elf_load(file, size, write, ctx);
}

/* --- the boot information block (Multiboot2 spec 3.6) ----------------------------------------- */

/* Room left at `off` for `len` more bytes in a buffer of `size`? */
static bool fits(size_t off, size_t len, size_t size)
{
	return off <= size && len <= size - off;
}

/* Appends a tag: its 8-byte header, `a` (alen bytes), `b` (blen bytes), zero padding to 8 bytes;
 * false if it does not fit. */
static bool put_tag(uint8_t *buf, size_t size, size_t *off, uint32_t type, const void *a, size_t alen,
		    const void *b, size_t blen)
{
	struct mb2_tag t;
	size_t len, padded;

	if (alen > size || blen > size)
		return false;
	len = sizeof(t) + alen + blen;
	padded = align8(len);
	if (!fits(*off, padded, size))
		return false;
	t.type = type;
	t.size = (uint32_t)len;
	memcpy(buf + *off, &t, sizeof(t));
	if (alen)
		memcpy(buf + *off + sizeof(t), a, alen);
	if (blen)
		memcpy(buf + *off + sizeof(t) + alen, b, blen);
	memset(buf + *off + len, 0, padded - len);
	*off += padded;
	return true;
}

/* A string tag (cmdline, loader name: spec 3.6.3, 3.6.4). */
static bool put_string_tag(uint8_t *b, size_t size, size_t *off, uint32_t type, const char *s)
{
	return put_tag(b, size, off, type, s, strlen(s) + 1, NULL, 0);
}

/*
 * Layout (each tag starts 8-byte aligned, padding zero):
 *   total_size | reserved
 *   type 1 cmdline       | size | "...\0"
 *   type 2 loader name   | size | "...\0"
 *   type 4 basic meminfo | 16   | mem_lower | mem_upper
 *   type 6 mmap          | 16 + 24n | entry_size 24 | version 0 | n entries
 *   type 3 module        | 16 + len | mod_start | mod_end | "...\0"       (one per module)
 *   type 14/15 ACPI      | 8 + 20/36 | a copy of the RSDP
 *   type 0 end           | 8
 */
size_t mb2_build_info_full(void *buf, size_t bufsize, const struct mb2_info_args *a)
{
	uint8_t *b = buf;
	struct loader_region map[LOADER_MAP_MAX];
	struct mb2_mmap_entry ents[LOADER_MAP_MAX];
	uint32_t meminfo[2], mmhead[2];
	struct mb2_info_header ih;
	uint64_t upper_kib, low;
	unsigned nents;
	size_t off = sizeof(ih);

	if (!b || bufsize < sizeof(ih))
		return 0;
	if (bufsize > UINT32_MAX)
		bufsize = UINT32_MAX;   /* total_size is a u32 */
	if (!put_string_tag(b, bufsize, &off, MB2_TAG_CMDLINE, a->cmdline ? a->cmdline : "") ||
	    !put_string_tag(b, bufsize, &off, MB2_TAG_LOADER_NAME, a->loader_name ? a->loader_name : ""))
		return 0;

	/* Spec 3.6.7: mem_lower at most 640 KiB; 639 keeps the EBDA out, as the map does. */
	low = min64(a->ram, LOADER_LOW_END);
	upper_kib = gmem_low_end(a->ram) > LOADER_HIGH_BASE ? (gmem_low_end(a->ram) - LOADER_HIGH_BASE) / 1024 : 0;
	meminfo[0] = (uint32_t)(low / 1024);
	meminfo[1] = (uint32_t)min64(upper_kib, UINT32_MAX);
	if (!put_tag(b, bufsize, &off, MB2_TAG_BASIC_MEMINFO, meminfo, sizeof(meminfo), NULL, 0))
		return 0;

	/* Spec 3.6.8: type 1 usable RAM, 2 reserved. */
	nents = loader_memory_map(a->ram, map);
	for (unsigned i = 0; i < nents; i++)
		ents[i] = (struct mb2_mmap_entry){ map[i].base, map[i].len, map[i].type, 0 };
	mmhead[0] = sizeof(ents[0]);
	mmhead[1] = 0;
	if (!put_tag(b, bufsize, &off, MB2_TAG_MMAP, mmhead, sizeof(mmhead), ents, nents * sizeof(ents[0])))
		return 0;

	/* Spec 3.6.6: mod_end is the first byte after the module, as GRUB gives it. */
	for (unsigned i = 0; i < a->nmods; i++) {
		const struct loader_module *m = &a->mods[i];
		uint32_t range[2] = { (uint32_t)m->start, (uint32_t)m->end };

		if (!put_tag(b, bufsize, &off, MB2_TAG_MODULE, range, sizeof(range), m->cmdline, strlen(m->cmdline) + 1))
			return 0;
	}

	/* Spec 3.6.14-15: a copy of the RSDP, ACPI 1.0 (20 bytes) or 2.0+ (36). */
	if (a->rsdp && a->rsdp_len >= RSDP_V1_SIZE) {
		bool v2 = a->rsdp_len >= RSDP_V2_SIZE && ((const uint8_t *)a->rsdp)[RSDP_REVISION] >= 2;

		if (!put_tag(b, bufsize, &off, v2 ? MB2_TAG_ACPI_NEW : MB2_TAG_ACPI_OLD, a->rsdp,
			     v2 ? RSDP_V2_SIZE : RSDP_V1_SIZE, NULL, 0))
			return 0;
	}

	if (!put_tag(b, bufsize, &off, MB2_TAG_END, NULL, 0, NULL, 0))
		return 0;
	ih = (struct mb2_info_header){ (uint32_t)off, 0 };
	memcpy(b, &ih, sizeof(ih));
	return off;
}

size_t mb2_build_info(void *buf, size_t bufsize, const char *cmdline, const char *loader_name, uint64_t ram)
{
	struct mb2_info_args a = { .cmdline = cmdline, .loader_name = loader_name, .ram = ram };

	return mb2_build_info_full(buf, bufsize, &a);
}

void mb2_start_state(struct vcpu_state *s, uint64_t entry, uint64_t info_gpa)
{
	loader_mb_start_state(s, entry, MB2_BOOTLOADER_MAGIC, info_gpa);
}

/* --- loader_load_guest for Multiboot2 ------------------------------------------------------------ */

/* Checks and places everything, builds the block; apart so its frame (a 4 KiB block) is not stacked
 * on the caller's. */
__attribute__((noinline))
static int mb2_build_and_write(const void *file, size_t size, const struct mb2_info_args *a, uint64_t gpa,
			       loader_write_fn write, void *ctx, char *why, size_t whylen)
{
	uint8_t info[LOADER_INFO_MAX];
	size_t n = mb2_build_info_full(info, sizeof(info), a);
	int err;

	if (!n) {
		loader_say(why, whylen, "the Multiboot2 information (command line, %u module%s) does not fit in "
			   "%u bytes", a->nmods, a->nmods == 1 ? "" : "s", (unsigned)LOADER_INFO_MAX);
		return -EINVAL;
	}
	if (!write)
		return 0;
	err = elf_load(file, size, write, ctx);
	if (err) {
		loader_say(why, whylen, "cannot write the kernel's segments to guest memory (error %d)", err);
		return err;
	}
	return loader_put(write, ctx, gpa, info, n, why, whylen);
}

int mb2_load_guest(const void *file, size_t size, const char *cmdline, uint64_t ram,
		   const struct loader_file *extra, unsigned nextra, const void *rsdp, size_t rsdp_len,
		   loader_write_fn write, void *ctx, struct vcpu_state *start, char *why, size_t whylen)
{
	struct elf_limits lim = { ram, LOADER_IMAGE_MIN, true };
	struct loader_module mods[LOADER_MAX_FILES];
	uint32_t provided = PROVIDED_BASIC | TAG_BIT(MB2_TAG_MODULE);
	struct mb2_info_args a = { cmdline, LOADER_NAME, ram, mods, nextra, rsdp, rsdp_len };
	struct guest_image img;
	uint64_t info;
	int err;

	if (rsdp)
		provided |= TAG_BIT(MB2_TAG_ACPI_OLD) | TAG_BIT(MB2_TAG_ACPI_NEW);
	err = mb2_check(file, size, provided, &lim, &img, why, whylen);
	if (err)
		return err;
	err = loader_place_modules(extra, nextra, img.hi, ram, mods, why, whylen);
	if (err)
		return err;
	/* The block holds no absolute address: it goes wherever the image and modules are not. */
	info = loader_place_info(img.lo, img.hi, mods, nextra, ram, why, whylen);
	if (!info)
		return -EFAULT;
	err = mb2_build_and_write(file, size, &a, info, write, ctx, why, whylen);
	if (err)
		return err;
	for (unsigned i = 0; write && i < nextra; i++) {
		err = loader_put(write, ctx, mods[i].start, extra[i].data, extra[i].size, why, whylen);
		if (err)
			return err;
	}
	mb2_start_state(start, img.entry, info);
	loader_say(why, whylen, "Multiboot2 ELF%s, entry 0x%llx, %u module%s, information at 0x%llx",
		   img.elf64 ? "64" : "32", (unsigned long long)img.entry, nextra, nextra == 1 ? "" : "s",
		   (unsigned long long)info);
	return 0;
}
