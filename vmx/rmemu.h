/* Real mode run in virtual-8086 mode (vmx/realmode.c): the decoding of the few instructions vm86 mode
 * refuses with #GP where real mode runs them (privileged ones at CPL 3, SDM Vol. 3A, 20.2.7), and the
 * frame a real-mode interrupt pushes (SDM Vol. 3A, 20.1.4; Vol. 2A, INT n, real-address mode). Pure
 * logic without the VMCS: tests/unit/test_realmode.c runs it on the host. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

enum rm_op {
	RM_LGDT, RM_LIDT,            /* 0F 01 /2, /3 */
	RM_LMSW,                     /* 0F 01 /6 */
	RM_MOV_FROM_CR, RM_MOV_TO_CR, /* 0F 20, 0F 22 */
	RM_MOV_FROM_DR, RM_MOV_TO_DR, /* 0F 21, 0F 23 */
	RM_INVLPG,                   /* 0F 01 /7, a memory operand */
	RM_CLTS,                     /* 0F 06 */
	RM_INVD, RM_WBINVD,          /* 0F 08, 0F 09 */
	RM_WRMSR, RM_RDMSR,          /* 0F 30, 0F 32 */
	RM_HLT,                      /* F4 */
};

struct rm_insn {
	enum rm_op op;
	unsigned len;                /* bytes, prefixes included */
	bool o32;                    /* 66h: 32-bit operand (LGDT/LIDT: a 32-bit base, else 24 bits) */
	bool mem;                    /* the operand is in memory at seg:off (LGDT, LIDT, LMSW m16) */
	unsigned seg;                /* enum vcpu_seg_reg: DS, or SS for BP/EBP/ESP bases, or the override */
	uint32_t off;                /* the offset, wrapped to the address size (16 bits without 67h) */
	unsigned cr;                 /* MOV CR, MOV DR: CRn or DRn (ModRM.reg) */
	unsigned gpr;                /* MOV CR/DR, LMSW with a register: ModRM.r/m (0 EAX .. 7 EDI) */
};

/* Decodes the instruction in bytes[0..n) as real mode would (16-bit default operand and address
 * size); `gpr` holds the eight general registers (0 RAX .. 7 RDI) the address is computed from.
 * 0, or -1 when it is none of enum rm_op's (the caller stops the guest naming the bytes). */
int rm_decode(const uint8_t *bytes, unsigned n, const uint64_t gpr[8], struct rm_insn *out);

/* A real-mode interrupt or exception (SDM Vol. 2A, INT n, REAL-ADDRESS-MODE): FLAGS, CS and IP pushed
 * at SS:SP (SP wraps at 64 KiB), then CS:IP from the IVT entry (offset in bits 15:0, segment in
 * 31:16), IF, TF and AC cleared. */
struct rm_frame {
	uint16_t sp;                 /* the new SP: the pushed IP, then CS, then FLAGS, upwards */
	uint16_t at[3];              /* offsets in SS of the three words (IP, CS, FLAGS) */
	uint16_t word[3];
	uint16_t cs, ip;             /* the handler's */
	uint64_t rflags;             /* RFLAGS after delivery */
};
void rm_int_frame(uint32_t ivt_entry, uint16_t sp, uint64_t rflags, uint16_t cs, uint16_t ip, struct rm_frame *f);
