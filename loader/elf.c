/* ELF executables for the Multiboot loaders: header checks, segment placement and copy. */
#include "lib/errno.h"
#include "lib/string.h"
#include "gmem/layout.h"
#include "loader/common.h"
#include "loader/elf.h"

/*
 * The image is untrusted: a guest module from the boot loader. Nothing in it is dereferenced in place;
 * every structure is memcpy'd out after its range was checked against the file size (the file may have
 * any alignment), and every sum of two file-supplied numbers is checked for overflow first.
 */

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

/* A program header of either class, widened. */
struct seg {
	uint32_t type;
	uint64_t offset, vaddr, paddr, filesz, memsz;
};

bool elf_is_elf(const void *file, size_t size)
{
	return file && size >= 4 && memcmp(file, "\177ELF", 4) == 0;
}

int elf_parse(const void *file, size_t size, struct elf *e, char *why, size_t whylen)
{
	const uint8_t *f = file;
	uint16_t type, machine, phentsize, phnum;

	if (!f || size < EI_NIDENT || memcmp(f, "\177ELF", 4) != 0) {
		loader_say(why, whylen, "not an ELF file");
		return -ENOEXEC;
	}
	if (f[EI_CLASS] != ELFCLASS32 && f[EI_CLASS] != ELFCLASS64) {
		loader_say(why, whylen, "ELF class %u is neither 32- nor 64-bit", f[EI_CLASS]);
		return -ENOEXEC;
	}
	if (f[EI_DATA] != ELFDATA2LSB) {
		loader_say(why, whylen, "ELF file is not little-endian");
		return -ENOEXEC;
	}
	if (f[EI_VERSION] != EV_CURRENT) {
		loader_say(why, whylen, "ELF version %u is not 1", f[EI_VERSION]);
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
		loader_say(why, whylen, "ELF type %u is not an executable (ET_EXEC)", type);
		return -ENOEXEC;
	}
	/* The class picks the instruction set a Multiboot loader accepts: i386 for ELF32, x86-64 for ELF64. */
	if (machine != (e->elf64 ? EM_X86_64 : EM_386)) {
		loader_say(why, whylen, "ELF%s file has machine %u, not %s", e->elf64 ? "64" : "32", machine,
			   e->elf64 ? "x86-64 (62)" : "i386 (3)");
		return -ENOEXEC;
	}
	e->phentsize = e->elf64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
	if (phentsize != e->phentsize) {
		loader_say(why, whylen, "ELF program header size %u is wrong", phentsize);
		return -ENOEXEC;
	}
	if (phnum == 0) {
		loader_say(why, whylen, "ELF file has no program headers");
		return -ENOEXEC;
	}
	/* Also catches PN_XNUM (0xffff, the real count in section 0): no kernel needs that many. */
	if (phnum > LOADER_MAX_PHNUM) {
		loader_say(why, whylen, "ELF file has %u program headers, more than %u", phnum, LOADER_MAX_PHNUM);
		return -ENOEXEC;
	}
	e->phnum = phnum;
	if (!in_file(e->phoff, (uint64_t)phnum * e->phentsize, size)) {
		loader_say(why, whylen, "ELF program headers lie outside the file");
		return -ENOEXEC;
	}
	return 0;

truncated:
	loader_say(why, whylen, "ELF header is truncated");
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

/* A segment that occupies guest memory (and was checked by elf_place before index i). */
static bool occupies(const struct seg *s)
{
	return s->type == PT_LOAD && s->memsz != 0;
}

/*
 * In this order, per PT_LOAD: filesz <= memsz, file bytes inside the file, placement inside the limits,
 * no overlap with an earlier segment (earlier ones are read again rather than kept: no 64-entry array on
 * the hypervisor's stack); then at least one segment, then the entry point.
 */
int elf_place(const void *file, size_t size, const struct elf *e, const struct elf_limits *lim,
	      const uint64_t *entry_paddr, struct guest_image *img, char *why, size_t whylen)
{
	const uint8_t *f = file;
	uint64_t entry = 0;
	bool entry_ok = false;

	*img = (struct guest_image){ .elf64 = e->elf64, .lo = UINT64_MAX, .hi = 0 };
	for (unsigned i = 0; i < e->phnum; i++) {
		struct seg s = elf_seg(f, e, i);

		if (s.type != PT_LOAD)
			continue;
		if (s.filesz > s.memsz) {
			loader_say(why, whylen, "segment %u has file size 0x%llx above its memory size 0x%llx", i,
				   (unsigned long long)s.filesz, (unsigned long long)s.memsz);
			return -ENOEXEC;
		}
		if (!in_file(s.offset, s.filesz, size)) {
			loader_say(why, whylen, "segment %u's bytes (offset 0x%llx, size 0x%llx) lie outside the file",
				   i, (unsigned long long)s.offset, (unsigned long long)s.filesz);
			return -ENOEXEC;
		}
		if (s.memsz == 0)
			continue;   /* occupies nothing: nothing to place or copy */
		if (s.paddr < lim->reserved_end) {
			loader_say(why, whylen, "segment at GPA 0x%llx is below 0x%llx, the lowest address a kernel "
				   "may occupy",
				   (unsigned long long)s.paddr, (unsigned long long)lim->reserved_end);
			return -EFAULT;
		}
		if (!gmem_layout_contains(lim->ram, s.paddr, s.memsz, NULL)) {
			loader_say(why, whylen, "segment at GPA 0x%llx (0x%llx bytes) is outside its RAM (0x%llx bytes)",
				   (unsigned long long)s.paddr, (unsigned long long)s.memsz,
				   (unsigned long long)lim->ram);
			return -EFAULT;
		}
		for (unsigned j = 0; j < i; j++) {
			struct seg t = elf_seg(f, e, j);

			/* Both ranges lie in RAM, so the ends do not overflow. */
			if (occupies(&t) && s.paddr < t.paddr + t.memsz && t.paddr < s.paddr + s.memsz) {
				loader_say(why, whylen, "segment at GPA 0x%llx overlaps the segment at GPA 0x%llx",
					   (unsigned long long)s.paddr, (unsigned long long)t.paddr);
				return -ENOEXEC;
			}
		}
		if (lim->pc_hole && loader_check_range("segment", s.paddr, s.memsz, lim->ram, why, whylen))
			return -EFAULT;
		img->nsegments++;
		if (s.paddr < img->lo)
			img->lo = s.paddr;
		if (s.paddr + s.memsz > img->hi)
			img->hi = s.paddr + s.memsz;
	}
	if (img->nsegments == 0) {
		loader_say(why, whylen, "ELF file has no loadable segments");
		return -ENOEXEC;
	}

	/* A Multiboot header's entry address is physical; e_entry is virtual, so it goes through the
	 * segment whose virtual range holds it. Either way it must land in loaded memory. */
	for (unsigned j = 0; j < e->phnum && !entry_ok; j++) {
		struct seg s = elf_seg(f, e, j);

		if (!occupies(&s))
			continue;
		if (entry_paddr) {
			entry = *entry_paddr;
			entry_ok = entry >= s.paddr && entry - s.paddr < s.memsz;
		} else if (e->entry >= s.vaddr && e->entry - s.vaddr < s.memsz) {
			entry = s.paddr + (e->entry - s.vaddr);
			entry_ok = true;
		}
	}
	if (!entry_ok) {
		loader_say(why, whylen, "entry point 0x%llx is outside the loaded segments",
			   (unsigned long long)(entry_paddr ? *entry_paddr : e->entry));
		return -EFAULT;
	}
	/* The kernel starts in 32-bit protected mode with paging off, even an ELF64 one. */
	if (entry > UINT32_MAX) {
		loader_say(why, whylen, "entry point GPA 0x%llx is above 4 GiB", (unsigned long long)entry);
		return -EFAULT;
	}
	img->entry = entry;
	return 0;
}

int elf_load(const void *file, size_t size, loader_write_fn write, void *ctx)
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
