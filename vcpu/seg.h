/* A segment register in vendor-neutral form: selector, base, limit and the descriptor's attribute
 * bits. SDM Vol. 3A, 3.4.5, Figure 3-8 (segment descriptor), and 3.4.3 (the hidden part a segment
 * register caches). Each back end translates at its edge: VMX's access rights (vmx/seg.h), AMD's
 * packed 12-bit attributes. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/* The attributes are the descriptor's bits 40-55 shifted down by 40, the limit's bits 19:16 (which
 * sit in 11:8 there) always zero:
 *
 *   15 14  13  12  11..8  7  6 5  4  3..0
 *  +--+---+---+---+------+--+----+--+----+
 *  |G |D/B| L |AVL|  0   |P |DPL |S |type|
 *  +--+---+---+---+------+--+----+--+----+
 */
#define SEG_ATTR_TYPE_MASK 0x000fu           /* segment type (Table 3-1, 3-2) */
#define SEG_ATTR_S         (1u << 4)          /* code or data (1), system (0) */
#define SEG_ATTR_DPL_SHIFT 5                  /* descriptor privilege level, 2 bits */
#define SEG_ATTR_P         (1u << 7)          /* present */
#define SEG_ATTR_AVL       (1u << 12)         /* available for software */
#define SEG_ATTR_L         (1u << 13)         /* 64-bit code segment */
#define SEG_ATTR_DB        (1u << 14)         /* default operation size / big */
#define SEG_ATTR_G         (1u << 15)         /* granularity: limit in 4 KiB units */
#define SEG_ATTR_MASK      0xf0ffu            /* every attribute bit (bits 11:8 are the limit's) */

#define SEG_ATTR_DPL(a)    (((a) >> SEG_ATTR_DPL_SHIFT) & 3u)

struct vcpu_seg {
	uint64_t base;
	uint32_t limit;              /* in bytes (G already applied), as the CPU caches it */
	uint16_t sel;
	uint16_t attr;               /* SEG_ATTR_* */
	bool unusable;               /* a null selector loaded outside 64-bit mode, or never loaded */
};

/* The order of the segment registers in every neutral array: the instruction encoding's sreg3
 * order (SDM Vol. 2D, B.1.4.6, Table B-8: ES CS SS DS FS GS), then LDTR and TR. */
enum vcpu_seg_reg { VCPU_ES, VCPU_CS, VCPU_SS, VCPU_DS, VCPU_FS, VCPU_GS, VCPU_LDTR, VCPU_TR, VCPU_NSEGS };
