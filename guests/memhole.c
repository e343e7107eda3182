/*
 * memhole: an ELF64 guest (long mode, like memcheck) that checks the guest-physical map a PC has and
 * touches RAM on both sides of the hole below 4 GiB. Prints every Multiboot2 memory-map entry; checks
 * that no usable entry reaches the devices' addresses [0xFEC00000, 4 GiB) (I/O APIC, local APIC),
 * that usable RAM adds up to the hypervisor's RAM size less the BIOS area, then, in every usable entry
 * from 2 MiB up, touches its first and last page (above 4 GiB through 2 MiB pages it maps itself):
 * each must read zero before its first write (a restarted guest too) and hold what was written.
 * `touch=0` only checks the map. One line per check ending ` ok`/` FAIL`, then `memhole: N checks, F
 * failed` (exit 0 if F = 0, 1 otherwise).
 */
#include "rt.h"

#define PAGE       4096ull
#define MIB        (1ull << 20)
#define GIB        (1ull << 30)
#define MB2_TAG_MMAP 6             /* Multiboot2 1.0, 3.6.8: u32 entry_size, u32 entry_version, entries */
#define DEVICES    0xFEC00000ull   /* I/O APIC, then the local APIC at 0xFEE00000 */
#define BIOS_KIB   ((0x100000 - 0x9fc00) / 1024)   /* reserved below 1 MiB (loader/loader.h) */

/* Page-table bits (SDM Vol. 3A, 4.5, Tables 4-15..4-18). */
#define PTE_P  1ull
#define PTE_W  2ull
#define PTE_PS (1ull << 7)
#define PTE_ADDR 0x000ffffffffff000ull

/* entry64.asm identity-maps [0, 4 GiB) with PML4[0] -> PDPT[0..3]; these PDs extend it, one GiB
 * each, from 4 GiB up (RAM up to 4 + HIGH_GIBS GiB). */
#define HIGH_GIBS 8
static uint64_t high_pd[HIGH_GIBS][512] __attribute__((aligned(4096)));

struct entry {
	uint64_t base, len;
	uint32_t type;
};

/* A pointer to physical address `a` (identity-mapped; above 4 GiB through high_pd); 0 if out of reach. */
static volatile uint64_t *reach(uint64_t a)
{
	uint64_t gib = a / GIB, *pdpt;
	unsigned long cr3;

	if (gib < 4)
		return (volatile uint64_t *)a;
	if (gib >= 4 + HIGH_GIBS)
		return 0;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	pdpt = (uint64_t *)(((uint64_t *)(cr3 & PTE_ADDR))[0] & PTE_ADDR);
	if (!(pdpt[gib] & PTE_P)) {
		uint64_t *pd = high_pd[gib - 4];

		for (unsigned i = 0; i < 512; i++)
			pd[i] = (gib * GIB + i * 2 * MIB) | PTE_P | PTE_W | PTE_PS;
		/* Not present before: nothing cached to invalidate (SDM Vol. 3A, 4.10.2.3). */
		pdpt[gib] = (uint64_t)(uintptr_t)pd | PTE_P | PTE_W;
	}
	return (volatile uint64_t *)a;
}

/* Reads zero, then holds what was written: one check line. */
static void touch(uint64_t a)
{
	volatile uint64_t *p = reach(a);
	uint64_t nonzero = 0, bad = 0;

	if (!check(p != 0, "memhole: page 0x%llx within reach", (unsigned long long)a))
		return;
	for (unsigned i = 0; i < PAGE / 8; i++)
		nonzero += p[i] != 0;
	for (unsigned i = 0; i < PAGE / 8; i++)
		p[i] = a ^ (i * 0x9E3779B97F4A7C15ull);
	for (unsigned i = 0; i < PAGE / 8; i++)
		bad += p[i] != (a ^ (i * 0x9E3779B97F4A7C15ull));
	check(!nonzero && !bad, "memhole: page 0x%llx read zero first (%llu words not), then what was written (%llu words not)",
	      (unsigned long long)a, (unsigned long long)nonzero, (unsigned long long)bad);
}

int main(void)
{
	struct entry map[32];
	struct hv_info info = { 0 };
	unsigned n = 0;
	uint64_t usable = 0, high = 0;
	bool in_hole = false;

	for (uint64_t p = mbi_base + 8; p + 8 <= mbi_end;) {
		const uint32_t *t = (const uint32_t *)p;

		if (t[0] == 0)
			break;
		if (t[0] == MB2_TAG_MMAP)
			for (uint64_t e = p + 16; t[2] && e + t[2] <= p + t[1] && n < 32; e += t[2]) {
				const uint32_t *m = (const uint32_t *)e;

				map[n++] = (struct entry){ m[0] | (uint64_t)m[1] << 32, m[2] | (uint64_t)m[3] << 32, m[4] };
			}
		p += align_up(t[1], 8);
	}
	for (unsigned i = 0; i < n; i++) {
		uint64_t end = map[i].base + map[i].len;

		printf("memhole: mmap %u: 0x%llx-0x%llx type %u\n", i, (unsigned long long)map[i].base,
		       (unsigned long long)(end - 1), map[i].type);
		if (map[i].type != 1)
			continue;
		usable += map[i].len;
		in_hole |= map[i].base < (4 * GIB) && end > DEVICES;
		if (map[i].base >= 4 * GIB)
			high += map[i].len;
	}
	check(n > 0, "memhole: %u memory-map entries", n);
	check(!in_hole, "memhole: no usable RAM at 0x%llx-0x%llx (I/O APIC, local APIC)",
	      (unsigned long long)DEVICES, (unsigned long long)(4 * GIB - 1));
	if (hv_present() && hc_guest_info(&info) == 0)
		check(usable >> 10 == (uint64_t)info.ram_kib - BIOS_KIB,
		      "memhole: usable %llu KiB = RAM %u KiB - %llu KiB of BIOS area; %llu MiB of it from 4 GiB",
		      (unsigned long long)(usable >> 10), info.ram_kib, (unsigned long long)BIOS_KIB,
		      (unsigned long long)(high >> 20));

	if (getarg_num("touch", 1))
		for (unsigned i = 0; i < n; i++) {
			uint64_t lo = map[i].base > 2 * MIB ? align_up(map[i].base, PAGE) : 2 * MIB;
			uint64_t hi = (map[i].base + map[i].len) & ~(PAGE - 1);

			if (map[i].type != 1 || lo + PAGE > hi)
				continue;
			touch(lo);
			if (hi - PAGE != lo)
				touch(hi - PAGE);
		}
	printf("memhole: %d checks, %d failed\n", check_count, check_failed);
	return check_failed ? 1 : 0;
}
