/* The architectural state a vCPU starts in: what a boot protocol specifies (the loader fills it,
 * loader/) and what INIT and Start-up IPIs produce (vcpu_state_reset); each back end applies it. */
#pragma once
#include <stdint.h>
#include "vcpu/seg.h"

/* A segment register as VMX holds it: selector, base, limit, access rights (SDM Vol. 3C, 25.4.1,
 * Table 25-2: the descriptor's type/S/DPL/P/AVL/L/D/G bits, bit 16 = unusable). */
struct seg_state {
	uint16_t sel;
	uint64_t base;
	uint32_t limit;
	uint32_t ar;
};

#define AR_UNUSABLE   0x10000u
#define AR_CODE32     0xc09bu  /* code, execute/read, accessed, S, P, D, G */
#define AR_DATA32     0xc093u  /* data, read/write, accessed, S, P, D/B, G */
#define AR_CODE16     0x009bu  /* real mode: code, execute/read, accessed, S, P */
#define AR_DATA16     0x0093u  /* real mode: data, read/write, accessed, S, P */
#define AR_TSS32_BUSY 0x008bu  /* VM entry wants a usable, busy TSS in TR (SDM Vol. 3C, 27.3.1.2) */
#define AR_LDT        0x0082u

struct vcpu_state {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, rip, rflags;
	uint64_t cr0, cr3, cr4, efer;
	struct seg_state cs, ds, es, fs, gs, ss, tr, ldtr;
	uint64_t gdtr_base, idtr_base;
	uint32_t gdtr_limit, idtr_limit;
};

/* The state after INIT, or after a Start-up IPI with vector `sipi` (>= 0); vcpu/vcpu_state.c. */
void vcpu_state_reset(struct vcpu_state *s, int sipi);

struct vcpu_snapshot;
/* A vCPU that never ran, shown in the snapshot's neutral form as the state it will start in. */
void vcpu_state_snapshot(struct vcpu_snapshot *s, const struct vcpu_state *st);

/* A segment register from a selector, base, limit and access rights in this layout (VMX's: SDM Vol.
 * 3C, 25.4.1, Table 25-2: bits 15:0 the descriptor's attribute bits in the descriptor's own layout
 * (type, S, DPL, P; 11:8 reserved; AVL, L, D/B, G), bit 16 "unusable") to the neutral one. */
static inline struct vcpu_seg vcpu_seg_of_ar(uint16_t sel, uint64_t base, uint32_t limit, uint32_t ar)
{
	return (struct vcpu_seg){ .base = base, .limit = limit, .sel = sel,
				  .attr = (uint16_t)(ar & SEG_ATTR_MASK), .unusable = (ar & AR_UNUSABLE) != 0 };
}
