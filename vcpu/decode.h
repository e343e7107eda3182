/* An x86 instruction decoder for the data moves a guest makes to MMIO: MOV, MOVZX, MOVSX, MOVSXD,
 * XCHG with a memory operand; and the prefix reader every decoder of the hypervisor starts with. SDM
 * Vol. 2A, chapter 2 (instruction format) and the opcode pages. */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define DECODE_MAX_LEN 15 /* SDM Vol. 2A, 2.3.11: longer instructions raise #GP */

/* The code segment's default operand and address size: 16-bit in real and virtual-8086 mode or with
 * CS.D=0, 32-bit with CS.D=1, 64-bit with CS.L=1 (and EFER.LMA). */
enum cpu_mode { MODE_REAL, MODE_PROT16, MODE_PROT32, MODE_LONG64 };

/* That mode from what decides it (SDM Vol. 3A, 3.4.5: CS.L and CS.D; 2.2: real mode is CR0.PE = 0,
 * virtual-8086 mode RFLAGS.VM = 1; CS.L counts only in IA-32e mode, EFER.LMA). Each back end reads
 * the four from its own state (vcpu_get_mode, vcpu/guest.h). */
static inline enum cpu_mode cpu_mode_of(bool pe, bool vm86, bool lma, bool cs_l, bool cs_d)
{
	if (!pe || vm86)
		return MODE_REAL;
	if (lma && cs_l)
		return MODE_LONG64;
	return cs_d ? MODE_PROT32 : MODE_PROT16;
}

/*
 * The prefixes of an instruction (SDM Vol. 2A, 2.1.1): legacy prefixes in any order, the last of a
 * group counting where it matters (the segment); in 64-bit mode a REX (40-4F) counts only as the last
 * byte before the opcode, as the CPU ignores one followed by a legacy prefix (2.2.1). F2/F3 are read
 * and not reported: no decoder here takes a string instruction by them.
 */
struct insn_prefixes {
	unsigned len;       /* bytes of prefixes, REX included: the opcode's index */
	bool opsz, adsz;    /* 66 operand size, 67 address size */
	bool lock;          /* F0 */
	int seg;            /* the segment override, enum vcpu_seg_reg's order (0 ES, 1 CS, 2 SS, 3 DS, 4 FS,
			     * 5 GS), or -1 for none */
	uint8_t rex;        /* the REX byte, 0 for none */
};

/* Reads the prefixes of the instruction in bytes[0..n) (at most DECODE_MAX_LEN) for mode `mode`.
 * false when no opcode follows them within those bytes. */
bool decode_prefixes(const uint8_t *bytes, unsigned n, enum cpu_mode mode, struct insn_prefixes *p);

struct mmio_insn {
	unsigned len;       /* instruction length in bytes */
	unsigned size;      /* access size in bytes: 1, 2, 4, 8 */
	bool write;         /* true: the instruction stores to memory (XCHG too) */
	int reg;            /* source/destination general register 0..15 in exit-qualification order (0 RAX,
			     * 1 RCX, 2 RDX, 3 RBX, 4 RSP, 5 RBP, 6 RSI, 7 RDI, 8-15), or -1 for an immediate;
			     * for AH/CH/DH/BH it is RAX..RBX (0..3) with high8 set */
	bool high8;         /* the register operand is bits 15:8 of `reg` (AH/CH/DH/BH: legacy 8-bit
			     * registers 4-7 without a REX prefix) */
	uint64_t imm;       /* immediate for stores of a constant, already extended to `size` bytes */
	unsigned dst_size;  /* loads and XCHG: bytes written to the register (MOVZX/MOVSX/MOVSXD widen);
			     * 1 and 2 keep the register's other bits; 4 means zero-extend to 64 as any
			     * 32-bit write in long mode does; 0 for stores that write no register */
	bool sign_extend;   /* MOVSX, MOVSXD: the loaded value is sign-extended to dst_size (else zero) */
	bool xchg;          /* XCHG reg, mem: read the old value into reg, write reg's old value */
	/* Where the memory operand is (SDM Vol. 2A, 2.1.5, Tables 2-1 to 2-3; 2.2.1.6; Vol. 3A, 3.7.4):
	 * the offset base + index * scale + disp (with rip_rel, the next instruction's RIP + disp),
	 * truncated to asz bytes, in segment seg (enum vcpu_seg_reg order: the override, else DS, or SS
	 * with a BP/SP/EBP/ESP base). base, index: general registers 0-15, or -1 for none. moffs: disp
	 * is the offset. */
	int base, index;
	unsigned scale, asz;
	uint64_t disp;      /* sign-extended to 64 bits */
	bool rip_rel;
	int seg;
};

/*
 * Decodes the instruction in bytes[0..n) for mode `mode`. Returns 0, or -1: not a supported memory
 * move (register operand, unknown opcode, LOCK on anything but XCHG, longer than 15 bytes or than
 * n); the caller then stops the guest naming the opcode bytes. `*out` is filled only on success.
 *
 * Prefixes: 66 and 67 (67 changes the address size), the segment overrides (the operand's segment),
 * F0 LOCK with XCHG, and REX 40-4F in
 * 64-bit mode when it comes last before the opcode (elsewhere the CPU ignores it, so does this).
 * F2/F3 are accepted and ignored: none of the opcodes here is a string instruction (MOVS, STOS,
 * LODS are rejected as unknown opcodes), and on them F2/F3 are at most the HLE hints XACQUIRE/
 * XRELEASE, which change no architectural result.
 */
int decode_mmio(const uint8_t *bytes, unsigned n, enum cpu_mode mode, struct mmio_insn *out);
