/* ELF executables as the Multiboot loaders take them: header checks, PT_LOAD placement and copy.
 * System V ABI, "Object Files" (ELF header, program header); x86-64 psABI for EM_X86_64. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "loader/loader.h"

/* More program headers than any kernel we run has (GNU ld emits a handful); a bigger count is garbage. */
#define LOADER_MAX_PHNUM 64

/* What a guest image needs, found by the checks: its entry and the span its segments cover. */
struct guest_image {
	uint64_t entry;        /* guest-physical entry point */
	uint64_t lo, hi;       /* GPA span [lo, hi) covered by the loadable segments (memsz) */
	bool elf64;
	unsigned nsegments;    /* PT_LOAD segments with a non-zero memsz (1 for an a.out-kludge image) */
};

/* The ELF header of either class, widened to what the checks and the copy need. */
struct elf {
	bool elf64;
	uint64_t entry;        /* e_entry: a virtual address */
	unsigned phnum;
	uint64_t phoff;
	size_t phentsize;
};

/* Where segments may go: inside [reserved_end, ram); with pc_hole also clear of the reserved area
 * [LOADER_LOW_END, 1 MiB) (loader.h). */
struct elf_limits {
	uint64_t ram, reserved_end;
	bool pc_hole;
};

/* Is this an ELF file at all (the magic)? */
bool elf_is_elf(const void *file, size_t size);

/*
 * Checks the ELF header (class, data, version, ET_EXEC, machine matching the class: EM_386 for ELF32,
 * EM_X86_64 for ELF64, program header size and count, table inside the file) and fills *e. -ENOEXEC and
 * a reason if anything is wrong.
 */
int elf_parse(const void *file, size_t size, struct elf *e, char *why, size_t whylen);

/*
 * Checks every PT_LOAD segment (filesz <= memsz, file bytes inside the file, [p_paddr, p_paddr + memsz)
 * inside the limits, no overlap with another), that there is one, and the entry: *entry_paddr when not
 * NULL (a physical address from a Multiboot header), else e_entry translated through the segment whose
 * virtual range holds it; it must be in loaded memory and below 4 GiB (the kernel starts in 32-bit
 * mode). Fills *img. -ENOEXEC (malformed) or -EFAULT (does not fit) and a reason.
 */
int elf_place(const void *file, size_t size, const struct elf *e, const struct elf_limits *lim,
	      const uint64_t *entry_paddr, struct guest_image *img, char *why, size_t whylen);

/*
 * Copies each PT_LOAD segment's file bytes to its p_paddr through `write`, in program-header order.
 * Guest memory is already zero, so the bss part (memsz beyond filesz) is not written. Call only after
 * elf_place succeeded on the same file; the ELF bounds are checked again (-ENOEXEC) rather than trusted.
 * Returns 0 or the first error `write` returned.
 */
int elf_load(const void *file, size_t size, loader_write_fn write, void *ctx);
