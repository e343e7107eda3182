/* Nested page tables (AMD NPT): the entry bits of the guest-physical map's second format.
 * AMD APM Vol. 2, 15.25 "Nested Paging"; entry layout 5.3.3 and 5.4.1 (long-mode 4-level paging). */
#pragma once

/*
 * A nested page table is an ordinary long-mode 4-level page table (PML4, PDPT, PD, PT) that the CPU
 * walks with the guest-physical address as input (APM Vol. 2, 15.25.5 "Nested Table Walk"). Every
 * nested access is a user access, so U/S must be set at every level or the walk faults (#VMEXIT NPF):
 * 15.25.5. The root, nCR3, goes in the VMCB (offset 0B0h, 15.25.3 and Appendix B).
 *
 *   63  62    52 51            12 11  9 8 7  6 5 4   3   2   1  0
 *  +--+--------+-----------------+-----+-+--+-+-+---+---+---+---+--+
 *  |NX| avail  |  address 51:12  |avail|G|PS|D|A|PCD|PWT|U/S|R/W|P |
 *  +--+--------+-----------------+-----+-+--+-+-+---+---+---+---+--+
 *
 * PS in a PDPTE / PDE makes it a 1 GiB / 2 MiB leaf; in such a leaf bit 12 is PAT and the address
 * starts at bit 30 / 21 (5.3.4, 5.3.5). G is ignored in nested tables (nothing is global to a guest).
 */
#define NPT_P           (1ull << 0)   /* present */
#define NPT_RW          (1ull << 1)   /* writable */
#define NPT_US          (1ull << 2)   /* user: required at every level (15.25.5) */
#define NPT_PWT         (1ull << 3)   /* page-level write-through: PAT index bit 0 */
#define NPT_PCD         (1ull << 4)   /* page-level cache disable: PAT index bit 1 */
#define NPT_ACCESSED    (1ull << 5)
#define NPT_DIRTY       (1ull << 6)   /* leaf only */
#define NPT_PS          (1ull << 7)   /* PDPTE/PDE: maps a 1 GiB / 2 MiB page */
#define NPT_NX          (1ull << 63)  /* no execute (EFER.NXE of the host governs it: 15.25.5) */
#define NPT_ADDR_MASK   0x000ffffffffff000ull /* bits 51:12: physical address */

/* Every non-leaf entry: present, writable, user. The CPU combines permissions along the walk
 * (5.6), so the leaf decides; NX stays clear above the leaf for the same reason. */
#define NPT_TABLE       (NPT_P | NPT_RW | NPT_US)

/* Memory type of a leaf: PWT/PCD (PAT bit 0) select an entry of the host's PAT, which nested
 * translations use (15.25.8 "Combining Memory Types"). At reset PAT entry 0 is WB and entry 3 UC
 * (APM Vol. 2, 7.8.1, Table 7-10). The hypervisor never writes IA32_PAT: these two encodings mean WB
 * and UC only while the firmware leaves entries 0 and 3 at their reset values, which the SVM probe
 * checks on CPU 0 and svm_cpu_on on every CPU (svm/caps.c, svm/vcpu.c): SVM is refused otherwise. */
#define NPT_MT_WB       0ull                    /* PAT entry 0 */
#define NPT_MT_UC       (NPT_PWT | NPT_PCD)     /* PAT entry 3 */
