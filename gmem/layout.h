/* The guest-physical address map: where a guest's RAM lies, and the hole below 4 GiB that is not RAM. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/*
 * A PC's layout (what QEMU's `pc` machine gives a guest with gigabyte alignment): RAM from 0 up to
 * the hole; the hole [3 GiB, 4 GiB) is left to devices; the rest of RAM continues at 4 GiB.
 *
 *   0           ram                         a guest of at most 3 GiB: one range, as before
 *   +-----------+
 *   |    RAM    |
 *   +-----------+
 *
 *   0               3 GiB           4 GiB                    4 GiB + (ram - 3 GiB)
 *   +---------------+---------------+------------------------+
 *   |   RAM (low)   | hole: MMIO    |   RAM (high)           |
 *   +---------------+---------------+------------------------+
 *                   0xFEC00000 I/O APIC, 0xFED00000 where guests move the local APIC (apicstorm's
 *                   default), 0xFEE00000 local APIC (and the APIC-access page), 0xFFFC0000.. the
 *                   reset vector's firmware area on a PC; 0xC0000000.. room for PCI BARs.
 *
 * Why 3 GiB: the hole must hold every MMIO address the virtual devices decode (0xFEC00000 and up) and
 * what a PC puts below them (PCI windows), and both RAM ranges should start on a 1 GiB boundary, so an
 * eager guest keeps its 1 GiB EPT leaves (gmem_create). RAM in the hole would be reached by the guest
 * instead of the devices, and a page mapped there by the hypervisor (the APIC-access page) would be
 * taken for RAM. The Linux e820 table and the Multiboot memory maps (loader/) leave the hole out.
 */
#define GMEM_HOLE_START   0xC0000000ull     /* 3 GiB: end of low RAM in a guest with more RAM */
#define GMEM_HIGH_BASE    0x100000000ull    /* 4 GiB: end of the hole, where the rest of RAM starts */
#define GMEM_MAX_RANGES   2

/* One range of guest RAM: GPAs [base, base + len), at byte `offset` of the guest's RAM counted
 * without the hole (where an EAGER or LAZY guest's range lies in its host partition). */
struct gmem_range {
	uint64_t base, len, offset;
};

/* The RAM ranges of a guest with `ram` bytes, in address order: 1 (ram <= 3 GiB; none when ram = 0)
 * or 2 ranges; returns how many. */
static inline unsigned gmem_layout(uint64_t ram, struct gmem_range r[GMEM_MAX_RANGES])
{
	if (!ram)
		return 0;
	if (ram <= GMEM_HOLE_START) {
		r[0] = (struct gmem_range){ 0, ram, 0 };
		return 1;
	}
	r[0] = (struct gmem_range){ 0, GMEM_HOLE_START, 0 };
	r[1] = (struct gmem_range){ GMEM_HIGH_BASE, ram - GMEM_HOLE_START, GMEM_HOLE_START };
	return 2;
}

/* Where RAM below 4 GiB ends (what 32-bit boot protocols can reach: Multiboot's mem_upper, modules,
 * Linux's initrd): min(ram, 3 GiB). */
static inline uint64_t gmem_low_end(uint64_t ram)
{
	return ram < GMEM_HOLE_START ? ram : GMEM_HOLE_START;
}

/* Is [gpa, gpa + len) (len > 0) inside one RAM range of a guest with `ram` bytes? If so, and `offset`
 * is not NULL, *offset is gpa's byte offset in the guest's RAM (struct gmem_range). Overflow-safe. */
static inline bool gmem_layout_contains(uint64_t ram, uint64_t gpa, uint64_t len, uint64_t *offset)
{
	struct gmem_range r[GMEM_MAX_RANGES];
	unsigned n = gmem_layout(ram, r);

	for (unsigned i = 0; i < n; i++)
		if (gpa >= r[i].base && gpa - r[i].base < r[i].len && len && len <= r[i].len - (gpa - r[i].base)) {
			if (offset)
				*offset = r[i].offset + (gpa - r[i].base);
			return true;
		}
	return false;
}
