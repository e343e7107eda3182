/* Host page tables. Everything is mapped 1:1 so that a physical address is also a pointer:
 *
 *   PML4 -> PDPT (1 GiB a slot) -> 1 GiB page, or PD (2 MiB a slot) -> 2 MiB page, or PT (4 KiB)
 *
 * 1 GiB pages where the CPU has them (CPUID.80000001H:EDX.Page1GB), 2 MiB otherwise; 4 KiB pages only
 * for the 2 MiB regions that hold the hypervisor image (so .text can be read-only and executable,
 * the rest non-executable) and low memory (the AP trampoline). The 2 MiB region of the local APIC is
 * mapped uncached (and the I/O APIC's, once the MADT names it: paging_set_uncached). Tables come
 * from a static pool: they exist before the page allocator does. */
#include "arch/x86/apic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/paging.h"
#include "console/printk.h"
#include "lib/string.h"

#define POOL_PAGES 160  /* 1 PML4 + PDPTs + a PD per GiB (2 MiB pages): ~150 GiB without 1 GiB pages */

extern char __image_start[], __text_end[], __rodata_end[], __image_end[];

static uint64_t pool[POOL_PAGES][512] __attribute__((aligned(4096)));
static unsigned pool_used;
uint64_t host_cr3;
uint64_t host_efer_bits = EFER_LME;

static uint64_t *table_alloc(void)
{
	if (pool_used == POOL_PAGES)
		return NULL;
	memset(pool[pool_used], 0, 4096);
	return pool[pool_used++];
}

static uint64_t nx;  /* PTE_NX when the CPU supports it, else 0 (the bit would be reserved) */

/* Attributes of one 4 KiB page in a 4 KiB-mapped region. */
static uint64_t page_attrs(uint64_t pa, uint64_t exec_page)
{
	uint64_t start = (uint64_t)__image_start, text = (uint64_t)__text_end;
	uint64_t ro = (uint64_t)__rodata_end, end = (uint64_t)__image_end;

	if (pa >= start && pa < text)
		return PTE_P;                 /* code: read-only, executable */
	if (pa >= text && pa < ro)
		return PTE_P | nx;            /* read-only data */
	if (pa == 0)
		return 0;                     /* page 0 absent: a NULL dereference faults */
	if (pa == exec_page)
		return PTE_P | PTE_W;         /* the AP trampoline runs here in 64-bit mode */
	(void)end;
	return PTE_P | PTE_W | nx;        /* data, bss, and all other memory */
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t bend)
{
	return a < bend && b < a + alen;
}

uint64_t paging_init(uint64_t top, uint64_t exec_page, bool (*all_ram)(uint64_t base, uint64_t len))
{
	uint64_t *pml4 = table_alloc(), *pdpt = NULL;
	uint64_t img_start = (uint64_t)__image_start, img_end = (uint64_t)__image_end;
	uint64_t apic = lapic_mmio_base() & ~((2ull << 20) - 1);
	bool gb = cpu_has(CPU_PDPE1GB);
	uint64_t addr;

	if (cpu_has(CPU_NX)) {
		nx = PTE_NX;
		host_efer_bits |= EFER_NXE;
	}
	if (top < (4ull << 30))
		top = 4ull << 30;
	top = (top + (1ull << 30) - 1) & ~((1ull << 30) - 1);

	for (addr = 0; addr < top; addr += 1ull << 30) {
		unsigned l4 = (addr >> 39) & 511, l3 = (addr >> 30) & 511;
		bool split = !gb || overlaps(addr, 1ull << 30, img_start, img_end) || addr == 0 ||
			     (apic >= addr && apic < addr + (1ull << 30)) ||
			     !all_ram(addr, 1ull << 30);
		uint64_t *pd;

		if (l3 == 0) {
			if (!(pdpt = table_alloc()))
				break;
			pml4[l4] = (uint64_t)pdpt | PTE_P | PTE_W;
		}
		if (!split) {
			pdpt[l3] = addr | PTE_P | PTE_W | PTE_PS | nx;
			continue;
		}
		if (!(pd = table_alloc()))
			break;
		pdpt[l3] = (uint64_t)pd | PTE_P | PTE_W;
		for (unsigned i = 0; i < 512; i++) {
			uint64_t r = addr + ((uint64_t)i << 21);
			uint64_t *pt;

			if (r == apic) {
				pd[i] = r | PTE_P | PTE_W | PTE_PS | PTE_PCD | PTE_PWT | nx;
				continue;
			}
			if (r != 0 && !overlaps(r, 2ull << 20, img_start, img_end)) {
				pd[i] = r | PTE_P | PTE_W | PTE_PS | nx;
				continue;
			}
			if (!(pt = table_alloc()))
				goto out_of_tables;
			pd[i] = (uint64_t)pt | PTE_P | PTE_W;
			for (unsigned j = 0; j < 512; j++)
				pt[j] = (r + ((uint64_t)j << 12)) | page_attrs(r + ((uint64_t)j << 12), exec_page);
		}
	}
	if (addr < top) {
out_of_tables:
		pr_warn("hv: paging: table pool exhausted, memory above 0x%lx is not used\n", addr);
		top = addr;
	}
	host_cr3 = (uint64_t)pml4;
	paging_load();
	pr_info("hv: host map 0..0x%lx with %s pages, %u table pages, code read-only%s\n", top,
		gb ? "1 GiB" : "2 MiB", pool_used, nx ? ", data non-executable" : " (no NX on this CPU)");
	return top;
}

bool paging_set_uncached(uint64_t phys)
{
	uint64_t *t = (uint64_t *)host_cr3;

	for (int level = 4; level >= 1; level--) {
		uint64_t *e = &t[(phys >> (12 + 9 * (level - 1))) & 511];

		if (!(*e & PTE_P) || (level == 3 && (*e & PTE_PS)))
			return false;
		if (level == 1 || (level == 2 && (*e & PTE_PS))) {
			*e |= PTE_PCD | PTE_PWT;  /* PAT entry 3, UC at power-up (SDM Vol. 3A, 13.12.2) */
			invlpg(phys);
			return true;
		}
		t = (uint64_t *)(*e & 0x000ffffffffff000ull);
	}
	return false;
}

void paging_load(void)
{
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | host_efer_bits);
	write_cr0(read_cr0() | CR0_WP);
	write_cr3(host_cr3);
}

