/* The guest kernel loader: Multiboot2 header and ELF checks, segment copy, boot information block. */
#include <stdarg.h>
#include "core/loader.h"
#include "core/multiboot2.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"

/*
 * The image is untrusted: a guest module from the boot loader. Nothing in it is dereferenced in place;
 * every structure is memcpy'd out after its range was checked against the file size (the file may have
 * any alignment), and every sum of two file-supplied numbers is checked for overflow first.
 */

/* --- ELF (System V ABI, "Object Files": ELF header, Program Header; x86-64 psABI for EM_X86_64) --- */

#define EI_NIDENT   16
#define EI_CLASS    4   /* e_ident index: file class */
#define EI_DATA     5   /* e_ident index: data encoding */
#define EI_VERSION  6   /* e_ident index: ELF header version */
#define ELFCLASS32  1
#define ELFCLASS64  2
#define ELFDATA2LSB 1   /* two's complement, little-endian */
#define EV_CURRENT  1
#define ET_EXEC     2   /* executable file: loaded at its addresses, no relocation */
#define EM_386      3
#define EM_X86_64   62
#define PT_LOAD     1

typedef struct {
	uint8_t  e_ident[EI_NIDENT];
	uint16_t e_type, e_machine;
	uint32_t e_version;
	uint32_t e_entry, e_phoff, e_shoff;
	uint32_t e_flags;
	uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
} Elf32_Ehdr;

typedef struct {
	uint32_t p_type, p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_flags, p_align;
} Elf32_Phdr;

typedef struct {
	uint8_t  e_ident[EI_NIDENT];
	uint16_t e_type, e_machine;
	uint32_t e_version;
	uint64_t e_entry, e_phoff, e_shoff;
	uint32_t e_flags;
	uint16_t e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx;
} Elf64_Ehdr;

typedef struct {
	uint32_t p_type, p_flags;    /* p_flags moved up in ELF64 to keep the 64-bit fields aligned */
	uint64_t p_offset, p_vaddr, p_paddr, p_filesz, p_memsz, p_align;
} Elf64_Phdr;

_Static_assert(sizeof(Elf32_Ehdr) == 52, "System V ABI, ELF header (ELFCLASS32)");
_Static_assert(sizeof(Elf32_Phdr) == 32, "System V ABI, program header (ELFCLASS32)");
_Static_assert(sizeof(Elf64_Ehdr) == 64, "System V ABI, ELF header (ELFCLASS64)");
_Static_assert(sizeof(Elf64_Phdr) == 56, "System V ABI, program header (ELFCLASS64)");

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

struct mb2_header {
	uint32_t magic, architecture, header_length, checksum;
};

struct mb2_header_tag {
	uint16_t type, flags;
	uint32_t size;
};

_Static_assert(sizeof(struct mb2_header) == MB2_HDR_FIXED, "Multiboot2 spec 3.1.2");
_Static_assert(sizeof(struct mb2_header_tag) == 8, "Multiboot2 spec 3.1.3");

/* --- helpers ---------------------------------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	format(why, whylen, fmt, ap);
	va_end(ap);
}

/* Does [off, off + len) lie inside a file of `size` bytes? Written so that nothing can overflow. */
static bool in_file(uint64_t off, uint64_t len, size_t size)
{
	return off <= size && len <= size - off;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~7ull;
}

/* Both ELF classes, widened: what the checks and the copy need from the headers. */
struct elf {
	bool elf64;
	uint64_t entry;
	unsigned phnum;
	uint64_t phoff;
	size_t phentsize;
};

struct seg {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

/* Reads and checks the ELF header and the program header table's place: -ENOEXEC and a reason if bad. */
static int elf_parse(const uint8_t *f, size_t size, struct elf *e, char *why, size_t whylen)
{
	uint16_t type, machine, phentsize, phnum;

	if (size < EI_NIDENT || memcmp(f, "\177ELF", 4) != 0) {
		say(why, whylen, "not an ELF file");
		return -ENOEXEC;
	}
	if (f[EI_CLASS] != ELFCLASS32 && f[EI_CLASS] != ELFCLASS64) {
		say(why, whylen, "ELF class %u is neither 32- nor 64-bit", f[EI_CLASS]);
		return -ENOEXEC;
	}
	if (f[EI_DATA] != ELFDATA2LSB) {
		say(why, whylen, "ELF file is not little-endian");
		return -ENOEXEC;
	}
	if (f[EI_VERSION] != EV_CURRENT) {
		say(why, whylen, "ELF version %u is not 1", f[EI_VERSION]);
		return -ENOEXEC;
	}
	e->elf64 = f[EI_CLASS] == ELFCLASS64;
	/* The two classes differ in field widths only: copy the header of the file's class and widen
	 * what the checks need. */
#define READ_EHDR(T) do { \
		T h; \
		if (size < sizeof(h)) \
			goto truncated; \
		memcpy(&h, f, sizeof(h)); \
		type = h.e_type; \
		machine = h.e_machine; \
		e->entry = h.e_entry; \
		e->phoff = h.e_phoff; \
		phentsize = h.e_phentsize; \
		phnum = h.e_phnum; \
	} while (0)
	if (e->elf64)
		READ_EHDR(Elf64_Ehdr);
	else
		READ_EHDR(Elf32_Ehdr);
#undef READ_EHDR
	if (type != ET_EXEC) {
		say(why, whylen, "ELF type %u is not an executable (ET_EXEC)", type);
		return -ENOEXEC;
	}
	/* The class picks the instruction set a Multiboot2 loader accepts: i386 for ELF32, x86-64 for ELF64. */
	if (machine != (e->elf64 ? EM_X86_64 : EM_386)) {
		say(why, whylen, "ELF%s file has machine %u, not %s", e->elf64 ? "64" : "32", machine,
		    e->elf64 ? "x86-64 (62)" : "i386 (3)");
		return -ENOEXEC;
	}
	e->phentsize = e->elf64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (phentsize != e->phentsize) {
		say(why, whylen, "ELF program header size %u is wrong", phentsize);
		return -ENOEXEC;
	}
	if (phnum == 0) {
		say(why, whylen, "ELF file has no program headers");
		return -ENOEXEC;
	}
	/* Also catches PN_XNUM (0xffff, the real count in section 0): no kernel needs that many. */
	if (phnum > LOADER_MAX_PHNUM) {
		say(why, whylen, "ELF file has %u program headers, more than %u", phnum, LOADER_MAX_PHNUM);
		return -ENOEXEC;
	}
	e->phnum = phnum;
	if (!in_file(e->phoff, (uint64_t)phnum * e->phentsize, size)) {
		say(why, whylen, "ELF program headers lie outside the file");
		return -ENOEXEC;
	}
	return 0;

truncated:
	say(why, whylen, "ELF header is truncated");
	return -ENOEXEC;
}

/* Program header i, widened; elf_parse has checked that the table lies inside the file. */
static struct seg elf_seg(const uint8_t *f, const struct elf *e, unsigned i)
{
	const uint8_t *p = f + e->phoff + (uint64_t)i * e->phentsize;
	struct seg s;

#define READ_PHDR(T) do { \
		T ph; \
		memcpy(&ph, p, sizeof(ph)); \
		s = (struct seg){ ph.p_type, ph.p_offset, ph.p_vaddr, ph.p_paddr, ph.p_filesz, ph.p_memsz }; \
	} while (0)
	if (e->elf64)
		READ_PHDR(Elf64_Phdr);
	else
		READ_PHDR(Elf32_Phdr);
#undef READ_PHDR
	return s;
}

/* --- Multiboot2 header ------------------------------------------------------------------------ */

/* What the header tags asked for that the loader acts on. */
struct mb2_req {
	bool has_entry;
	uint64_t entry;
};

/* Boot information tags mb2_build_info provides; END is always there. A required information request
 * tag asking for anything else must make us refuse the kernel (spec 3.1.4). */
static bool info_provided(uint32_t type)
{
	return type == MB2_TAG_END || type == MB2_TAG_CMDLINE || type == MB2_TAG_LOADER_NAME ||
	       type == MB2_TAG_BASIC_MEMINFO || type == MB2_TAG_MMAP;
}

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
static int mb2_tags(const uint8_t *h, uint32_t len, struct mb2_req *req, char *why, size_t whylen)
{
	uint32_t off = MB2_HDR_FIXED;

	while (off <= len && len - off >= sizeof(struct mb2_header_tag)) {
		struct mb2_header_tag t;
		bool required;

		memcpy(&t, h + off, sizeof(t));
		if (t.size < sizeof(t) || t.size > len - off) {
			say(why, whylen, "Multiboot2 header tag %u has a bad size %u", t.type, t.size);
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

				if (!info_provided(want)) {
					say(why, whylen, "Multiboot2 header requires boot information tag %u, "
					    "which we do not provide", want);
					return -ENODEV;
				}
			}
			break;
		case MB2_HTAG_ENTRY:
			if (t.size < sizeof(t) + 4) {
				say(why, whylen, "Multiboot2 entry address tag is too short");
				return -ENOEXEC;
			}
			req->has_entry = true;
			req->entry = rd32(h + off + sizeof(t));
			break;
		case MB2_HTAG_MODULE_ALIGN:
			/* We pass no modules, so any alignment request is met. */
			break;
		default:
			/* Spec 3.1.3: a loader that does not honour a tag must fail if the tag is not optional. */
			if (required) {
				say(why, whylen, "Multiboot2 header requires the %s tag (type %u), which we do not "
				    "support", htag_name(t.type), t.type);
				return -ENODEV;
			}
			break;
		}
		off += (uint32_t)align8(t.size);   /* t.size <= len < 32 KiB: no overflow */
	}
	say(why, whylen, "Multiboot2 header has no end tag");
	return -ENOEXEC;
}

/*
 * Finds the Multiboot2 header: 8-byte aligned, completely inside the first 32 KiB (spec 3.1.1), magic
 * and checksum right (spec 3.1.2). The first place where the magic and checksum agree is the header;
 * if only the magic was found, the checksum is what is wrong.
 */
static int mb2_find(const uint8_t *f, size_t size, struct mb2_req *req, char *why, size_t whylen)
{
	size_t limit = size < LOADER_MB2_SEARCH ? size : LOADER_MB2_SEARCH;
	bool magic_seen = false;

	for (size_t at = 0; at + MB2_HDR_FIXED <= limit; at += 8) {
		struct mb2_header h;

		memcpy(&h, f + at, sizeof(h));
		if (h.magic != MB2_HEADER_MAGIC)
			continue;
		if ((uint32_t)(h.magic + h.architecture + h.header_length + h.checksum) != 0) {
			magic_seen = true;
			continue;
		}
		if (h.architecture != MB2_ARCH_I386) {
			say(why, whylen, "Multiboot2 header is for architecture %u, not i386 (0)", h.architecture);
			return -ENOEXEC;
		}
		if (h.header_length < MB2_HDR_FIXED + sizeof(struct mb2_header_tag) ||
		    h.header_length > limit - at) {
			say(why, whylen, "Multiboot2 header length %u is wrong or runs past the first 32 KiB",
			    h.header_length);
			return -ENOEXEC;
		}
		return mb2_tags(f + at, h.header_length, req, why, whylen);
	}
	if (magic_seen)
		say(why, whylen, "Multiboot2 header checksum is wrong");
	else
		say(why, whylen, "no Multiboot2 header in the first 32 KiB");
	return -ENOEXEC;
}

/* --- the checks ------------------------------------------------------------------------------- */

/*
 * In this order: the ELF header (class, data, version, ET_EXEC, machine matching the class, program
 * header size and count, table inside the file); the Multiboot2 header and its tags; every PT_LOAD
 * segment (filesz <= memsz, file bytes inside the file, [p_paddr, p_paddr + memsz) inside
 * [reserved_end, ram), no overlap with another); at least one segment; the entry point.
 */
int loader_check(const void *file, size_t size, uint64_t ram, uint64_t reserved_end,
		 struct guest_image *img, char *why, size_t whylen)
{
	const uint8_t *f = file;
	struct mb2_req req = { 0 };
	struct seg segs[LOADER_MAX_PHNUM];
	unsigned n = 0;
	struct elf e;
	uint64_t entry = 0;
	bool entry_ok = false;
	int err;

	if (why && whylen)
		why[0] = '\0';
	if (!f)
		size = 0;
	err = elf_parse(f, size, &e, why, whylen);
	if (err)
		return err;
	err = mb2_find(f, size, &req, why, whylen);
	if (err)
		return err;

	*img = (struct guest_image){ .elf64 = e.elf64, .lo = UINT64_MAX, .hi = 0 };
	for (unsigned i = 0; i < e.phnum; i++) {
		struct seg s = elf_seg(f, &e, i);

		if (s.type != PT_LOAD)
			continue;
		if (s.filesz > s.memsz) {
			say(why, whylen, "segment %u has file size 0x%llx above its memory size 0x%llx", i,
			    (unsigned long long)s.filesz, (unsigned long long)s.memsz);
			return -ENOEXEC;
		}
		if (!in_file(s.offset, s.filesz, size)) {
			say(why, whylen, "segment %u's bytes (offset 0x%llx, size 0x%llx) lie outside the file",
			    i, (unsigned long long)s.offset, (unsigned long long)s.filesz);
			return -ENOEXEC;
		}
		if (s.memsz == 0)
			continue;   /* occupies nothing: nothing to place or copy */
		if (s.paddr < reserved_end) {
			say(why, whylen, "segment at GPA 0x%llx is below 0x%llx, where the boot information goes",
			    (unsigned long long)s.paddr, (unsigned long long)reserved_end);
			return -EFAULT;
		}
		if (s.paddr > ram || s.memsz > ram - s.paddr) {
			say(why, whylen, "segment at GPA 0x%llx (0x%llx bytes) is outside its RAM (0x%llx bytes)",
			    (unsigned long long)s.paddr, (unsigned long long)s.memsz, (unsigned long long)ram);
			return -EFAULT;
		}
		for (unsigned j = 0; j < n; j++) {
			/* Both ranges fit below ram, so the ends do not overflow. */
			if (s.paddr < segs[j].paddr + segs[j].memsz && segs[j].paddr < s.paddr + s.memsz) {
				say(why, whylen, "segment at GPA 0x%llx overlaps the segment at GPA 0x%llx",
				    (unsigned long long)s.paddr, (unsigned long long)segs[j].paddr);
				return -ENOEXEC;
			}
		}
		segs[n++] = s;
		if (s.paddr < img->lo)
			img->lo = s.paddr;
		if (s.paddr + s.memsz > img->hi)
			img->hi = s.paddr + s.memsz;
	}
	if (n == 0) {
		say(why, whylen, "ELF file has no loadable segments");
		return -ENOEXEC;
	}
	img->nsegments = n;

	/* The entry address tag gives a physical address (spec 3.1.6); e_entry is virtual, so it goes
	 * through the segment whose virtual range holds it. Either way it must land in loaded memory. */
	for (unsigned j = 0; j < n && !entry_ok; j++) {
		const struct seg *s = &segs[j];

		if (req.has_entry) {
			entry = req.entry;
			entry_ok = entry >= s->paddr && entry - s->paddr < s->memsz;
		} else if (e.entry >= s->vaddr && e.entry - s->vaddr < s->memsz) {
			entry = s->paddr + (e.entry - s->vaddr);
			entry_ok = true;
		}
	}
	if (!entry_ok) {
		say(why, whylen, "entry point 0x%llx is outside the loaded segments",
		    (unsigned long long)(req.has_entry ? req.entry : e.entry));
		return -EFAULT;
	}
	/* The guest starts in 32-bit protected mode with paging off (spec 3.3), even an ELF64 one. */
	if (entry > UINT32_MAX) {
		say(why, whylen, "entry point GPA 0x%llx is above 4 GiB", (unsigned long long)entry);
		return -EFAULT;
	}
	img->entry = entry;
	return 0;
}

int loader_load(const void *file, size_t size, loader_write_fn write, void *ctx)
{
	const uint8_t *f = file;
	struct elf e;
	int err;

	err = elf_parse(f, size, &e, NULL, 0);
	if (err)
		return err;
	for (unsigned i = 0; i < e.phnum; i++) {
		struct seg s = elf_seg(f, &e, i);

		if (s.type != PT_LOAD || s.filesz == 0 || s.memsz == 0)
			continue;
		if (s.filesz > s.memsz || !in_file(s.offset, s.filesz, size))
			return -ENOEXEC;
		err = write(ctx, s.paddr, f + s.offset, s.filesz);
		if (err)
			return err;
	}
	return 0;
}

/* --- the boot information block (Multiboot2 spec 3.6) ----------------------------------------- */

/* Room left at `off` for `len` more bytes in a buffer of `size`? */
static bool fits(size_t off, size_t len, size_t size)
{
	return off <= size && len <= size - off;
}

/* Appends a string tag (cmdline, loader name: spec 3.6.3, 3.6.4) at *off; false if it does not fit. */
static bool put_string_tag(uint8_t *b, size_t size, size_t *off, uint32_t type, const char *s)
{
	size_t len = strlen(s) + 1, padded;
	struct mb2_tag t;

	if (len > size)
		return false;
	padded = align8(sizeof(t) + len);
	if (!fits(*off, padded, size))
		return false;
	t.type = type;
	t.size = (uint32_t)(sizeof(t) + len);
	memcpy(b + *off, &t, sizeof(t));
	memcpy(b + *off + sizeof(t), s, len);
	memset(b + *off + t.size, 0, padded - t.size);
	*off += padded;
	return true;
}

static uint64_t min64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/*
 * Layout (each tag starts 8-byte aligned, padding zero):
 *   total_size | reserved
 *   type 1 cmdline       | size | "...\0"
 *   type 2 loader name   | size | "...\0"
 *   type 4 basic meminfo | 16   | mem_lower | mem_upper
 *   type 6 mmap          | 16 + 24n | entry_size 24 | version 0 | n entries
 *   type 0 end           | 8
 * The memory map describes exactly [0, ram): the parts of the PC layout that exist in a small guest.
 */
size_t mb2_build_info(void *buf, size_t bufsize, const char *cmdline, const char *loader_name, uint64_t ram)
{
	uint8_t *b = buf;
	struct mb2_mmap_entry ents[3];
	struct mb2_tag_basic_meminfo mi;
	struct mb2_tag_mmap mm;
	struct mb2_info_header ih;
	struct mb2_tag end = { MB2_TAG_END, sizeof(struct mb2_tag) };
	uint64_t low = min64(ram, LOADER_LOW_END), hole = min64(ram, LOADER_HIGH_BASE);
	uint64_t upper_kib;
	unsigned nents = 0;
	size_t off = sizeof(ih), mmsize;

	if (!b || bufsize < sizeof(ih))
		return 0;
	if (bufsize > UINT32_MAX)
		bufsize = UINT32_MAX;   /* total_size is a u32 */
	if (!put_string_tag(b, bufsize, &off, MB2_TAG_CMDLINE, cmdline ? cmdline : "") ||
	    !put_string_tag(b, bufsize, &off, MB2_TAG_LOADER_NAME, loader_name ? loader_name : ""))
		return 0;

	/* Spec 3.6.7: mem_lower at most 640 KiB; 639 keeps the EBDA out, as the map below does. */
	upper_kib = ram > LOADER_HIGH_BASE ? (ram - LOADER_HIGH_BASE) / 1024 : 0;
	mi = (struct mb2_tag_basic_meminfo){ MB2_TAG_BASIC_MEMINFO, sizeof(mi), (uint32_t)(low / 1024),
					     (uint32_t)min64(upper_kib, UINT32_MAX) };
	if (!fits(off, sizeof(mi), bufsize))
		return 0;
	memcpy(b + off, &mi, sizeof(mi));
	off += sizeof(mi);

	/* Spec 3.6.8: type 1 usable RAM, 2 reserved. */
	if (low)
		ents[nents++] = (struct mb2_mmap_entry){ 0, low, 1, 0 };
	if (hole > low)
		ents[nents++] = (struct mb2_mmap_entry){ low, hole - low, 2, 0 };
	if (ram > hole)
		ents[nents++] = (struct mb2_mmap_entry){ hole, ram - hole, 1, 0 };
	mmsize = sizeof(mm) + nents * sizeof(ents[0]);
	mm = (struct mb2_tag_mmap){ MB2_TAG_MMAP, (uint32_t)mmsize, sizeof(ents[0]), 0 };
	if (!fits(off, mmsize, bufsize))
		return 0;
	memcpy(b + off, &mm, sizeof(mm));
	memcpy(b + off + sizeof(mm), ents, nents * sizeof(ents[0]));
	off += mmsize;   /* 16 + 24n: still 8-aligned */

	if (!fits(off, sizeof(end), bufsize))
		return 0;
	memcpy(b + off, &end, sizeof(end));
	off += sizeof(end);

	ih = (struct mb2_info_header){ (uint32_t)off, 0 };
	memcpy(b, &ih, sizeof(ih));
	return off;
}

void mb2_start_state(struct vcpu_state *s, uint64_t entry, uint64_t info_gpa)
{
	/* Multiboot2 spec 3.3, "I386 machine state": 32-bit protected mode, flat 4 GiB read/write
	 * data and execute/read code segments (the selectors are unspecified: 0x10 and 0x08 here),
	 * paging off, interrupts off, EAX = the boot loader magic, EBX = the information block. The
	 * GDTR and IDTR are the kernel's to load; TR a busy TSS because VM entry checks it. */
	struct seg_state data = { 0x10, 0, 0xffffffff, AR_DATA32 };

	memset(s, 0, sizeof(*s));
	s->cs = (struct seg_state){ 0x08, 0, 0xffffffff, AR_CODE32 };
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->ldtr = (struct seg_state){ 0, 0, 0, AR_UNUSABLE };
	s->tr = (struct seg_state){ 0, 0, 0xff, AR_TSS32_BUSY };
	s->cr0 = 0x11;                 /* PE, ET */
	s->rflags = 0x2;               /* IF = 0 */
	s->rip = entry;
	s->rax = MB2_BOOTLOADER_MAGIC;
	s->rbx = info_gpa;
}
