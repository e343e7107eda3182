/* The host page tables: all physical memory mapped 1:1, the hypervisor's code read-only, data NX. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* x86-64 paging-structure entry bits. SDM Vol. 3A, 4.5 (Tables 4-14..4-20). */
#define PTE_P   (1ull << 0)   /* present */
#define PTE_W   (1ull << 1)   /* writable */
#define PTE_PWT (1ull << 3)   /* write-through */
#define PTE_PCD (1ull << 4)   /* cache disable */
#define PTE_PS  (1ull << 7)   /* PDPTE/PDE: 1 GiB / 2 MiB page */
#define PTE_NX  (1ull << 63)  /* execute-disable (needs EFER.NXE) */

extern uint64_t host_cr3;     /* the value every CPU loads (below 4 GiB: the AP trampoline sets it in 32-bit mode) */
extern uint64_t host_efer_bits; /* EFER bits every CPU sets: LME, and NXE where the CPU has it */

/*
 * Builds and loads the host map of [0, top) (at least 0..4 GiB, which holds the local APIC and
 * firmware tables). `exec_page` is one more 4 KiB page to leave executable (the AP trampoline).
 * `all_ram(base, len)` answers from the memory map whether [base, base + len) is all usable RAM: a
 * 1 GiB page is used only there, so that no large page spans memory types the MTRRs set apart
 * (SDM Vol. 3A, 13.11.9). (A callback: the memory map is pmm/'s, above arch/x86.)
 * Returns the end of what was mapped: less than `top` only if the table pool ran out (reported).
 */
uint64_t paging_init(uint64_t top, uint64_t exec_page, bool (*all_ram)(uint64_t base, uint64_t len));
/* Makes the 2 MiB (or 4 KiB) page of the host map that holds `phys` uncached (PCD, PWT): for device
 * registers found after paging_init, such as an I/O APIC from the MADT. Before the APs start (no other
 * CPU's TLB is flushed). false when `phys` is not mapped, or inside a 1 GiB page (never split here). */
bool paging_set_uncached(uint64_t phys);
/* Loads the host map on this CPU (APs, after the trampoline's use of it). */
void paging_load(void);

/* The host map is 1:1 (paging_init), so a physical address is its own pointer (inline: the exit
 * paths take their VMCB so); host unit tests provide a fake physical memory instead
 * (tests/unit/host_stubs.c). */
#ifdef HOST_TEST
void *phys_to_virt(uint64_t phys);
#else
static inline void *phys_to_virt(uint64_t phys)
{
	return (void *)phys;
}
#endif
