/* The host GDT's slots and the selectors that name them. SDM Vol. 3A, 3.4.2 (Figure 3-6: a selector
 * is index << 3 | TI | RPL) and 3.4.5 (descriptors).
 *
 *   slot  selector  descriptor                     written by
 *   0     0x00      null                           boot/defs.inc (boot_gdt)
 *   1     0x08      64-bit code, DPL 0             boot/defs.inc (boot_gdt)
 *   2     0x10      data, read/write, DPL 0        boot/defs.inc (boot_gdt)
 *   3     0x18      32-bit code (AP trampoline)    boot/defs.inc (boot_gdt)
 *   4-5   0x20      64-bit TSS, 16 bytes           desc.c, per CPU
 *
 * The boot stub and the AP trampoline are NASM and name slots 1-3 the same way in boot/defs.inc
 * (SEL_CODE64, SEL_DATA, SEL_CODE32): keep the two in step. */
#pragma once

#define GDT_BOOT_SLOTS 4   /* slots 0-3, copied from boot_gdt into each CPU's GDT */

#define SEL_CODE64 0x08    /* CS of the host: 64-bit ring-0 code */
#define SEL_DATA   0x10    /* SS, DS, ES of the host */
#define SEL_CODE32 0x18    /* 32-bit code: the AP trampoline's protected-mode step */
#define SEL_TSS    0x20    /* TR: this CPU's TSS */
