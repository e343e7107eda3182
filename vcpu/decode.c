/* Decodes the memory-operand data moves a guest makes to MMIO: their length, access size, register or
 * immediate. SDM Vol. 2A, chapter 2 and the MOV, MOVZX, MOVSX/MOVSXD and XCHG pages of chapter 4/6. */
#include <stdbool.h>
#include <stdint.h>
#include "vcpu/decode.h"

/*
 * Instruction format (SDM Vol. 2A, 2.1, Figure 2-1):
 *
 *   [legacy prefixes] [REX] opcode (1-2 bytes) [ModRM] [SIB] [disp 1/2/4] [imm 1/2/4] | [moffs 2/4/8]
 *
 * ModRM:  7 6 | 5 4 3 | 2 1 0       SIB:  7 6   | 5 4 3 | 2 1 0
 *         mod |  reg  |  r/m              scale | index | base
 *
 * REX (2.2.1): 0100 W R X B. W: 64-bit operand size; R extends ModRM.reg; X extends SIB.index; B
 * extends ModRM.r/m or SIB.base.
 */
#define REX_W (1u << 3)
#define REX_R (1u << 2)
#define REX_X (1u << 1)
#define REX_B (1u << 0)
#define SEG_SS 2          /* enum vcpu_seg_reg */
#define SEG_DS 3

#define MODRM_MOD(m) ((m) >> 6)
#define MODRM_REG(m) (((m) >> 3) & 7)
#define MODRM_RM(m)  ((m) & 7)

/* The little-endian value of bytes[i..i+len), sign-extended from len bytes. */
static uint64_t sle(const uint8_t *bytes, unsigned i, unsigned len)
{
	uint64_t v = 0;

	for (unsigned k = len; k--;)
		v = (v << 8) | bytes[i + k];
	return len < 8 && (v >> (8 * len - 1)) & 1 ? v | ~0ull << (8 * len) : v;
}

/*
 * The ModRM byte at bytes[i] and what follows it (SIB, displacement) for address size `asz` (2, 4 or
 * 8), REX bits `rex`, in 64-bit mode or not: stores the ModRM byte in *modrm and the operand's base,
 * index, scale, displacement and default segment in *d. Returns the index after them, or -1 if they
 * run past `max` or the operand is a register (mod=3: not a memory access).
 */
static int modrm_operand(const uint8_t *bytes, unsigned i, unsigned max, unsigned asz, unsigned rex,
			 bool long64, uint8_t *modrm, struct mmio_insn *d)
{
	uint8_t m;
	unsigned mod, rm, dsz = 0;

	if (i >= max)
		return -1;
	m = bytes[i++];
	*modrm = m;
	mod = MODRM_MOD(m);
	rm = MODRM_RM(m);
	if (mod == 3)
		return -1;
	d->base = d->index = -1;
	d->scale = 1;
	d->seg = SEG_DS;
	if (asz == 2) {
		/* Table 2-1 (16-bit addressing): r/m 0-7 are BX+SI, BX+DI, BP+SI, BP+DI, SI, DI, BP, BX;
		 * [BP+disp16] replaces [BP] at mod=0 r/m=110, a plain disp16; no SIB. BP-based: SS. */
		static const int8_t base16[8] = { 3, 3, 5, 5, 6, 7, 5, 3 }, index16[8] = { 6, 7, 6, 7, -1, -1, -1, -1 };

		if (mod == 0 && rm == 6) {
			dsz = 2;
		} else {
			d->base = base16[rm];
			d->index = index16[rm];
			dsz = mod == 1 ? 1 : mod == 2 ? 2 : 0;
		}
		if (d->base == 5)
			d->seg = SEG_SS;
	} else {
		/* Tables 2-2, 2-3 (32/64-bit addressing). r/m=100 is a SIB; mod=0 r/m=101 is disp32
		 * (RIP/EIP-relative in 64-bit mode, 2.2.1.6); a SIB with base=101 at mod=0 is disp32
		 * without a base; a SIB index of 100 is none. REX.B does not change either special case,
		 * REX.X makes index 100 R12 (2.2.1.2, Table 2-5). */
		if (rm == 4) {
			uint8_t sib;

			if (i >= max)
				return -1;
			sib = bytes[i++];
			d->scale = 1u << (sib >> 6);
			if (((sib >> 3) & 7) != 4 || (rex & REX_X))
				d->index = (int)(((sib >> 3) & 7) | (rex & REX_X ? 8 : 0));
			if (mod == 0 && (sib & 7) == 5)
				dsz = 4;
			else
				d->base = (int)((sib & 7) | (rex & REX_B ? 8 : 0));
		} else if (mod == 0 && rm == 5) {
			dsz = 4;
			d->rip_rel = long64;                /* 64-bit mode: RIP-relative; else an absolute disp32 */
		} else {
			d->base = (int)(rm | (rex & REX_B ? 8 : 0));
		}
		if (mod == 1)
			dsz = 1;
		else if (mod == 2)
			dsz = 4;
		if (d->base == 4 || d->base == 5)        /* ESP/EBP (RSP/RBP) based: SS (Vol. 3A, Table 3-5) */
			d->seg = SEG_SS;
	}
	if (i + dsz > max)
		return -1;
	d->disp = dsz ? sle(bytes, i, dsz) : 0;
	return (int)(i + dsz);
}

/* The little-endian value of bytes[i..i+len). */
static uint64_t le(const uint8_t *bytes, unsigned i, unsigned len)
{
	uint64_t v = 0;

	while (len--)
		v = (v << 8) | bytes[i + len];
	return v;
}

bool decode_prefixes(const uint8_t *bytes, unsigned n, enum cpu_mode mode, struct insn_prefixes *p)
{
	unsigned i;

	*p = (struct insn_prefixes){ .seg = -1 };
	if (n > DECODE_MAX_LEN)
		n = DECODE_MAX_LEN;
	for (i = 0; i < n; i++) {
		switch (bytes[i]) {
		case 0x66: p->opsz = true; break;
		case 0x67: p->adsz = true; break;
		case 0xf0: p->lock = true; break;
		case 0xf2: case 0xf3: break;
		case 0x26: case 0x2e: case 0x36: case 0x3e: p->seg = (bytes[i] >> 3) & 3; break;  /* ES CS SS DS */
		case 0x64: case 0x65: p->seg = 4 + (bytes[i] & 1); break;   /* FS, GS */
		default:
			if (mode == MODE_LONG64 && (bytes[i] & 0xf0) == 0x40) {
				p->rex = bytes[i];
				continue;
			}
			p->len = i;
			return true;
		}
		p->rex = 0;                 /* a REX a legacy prefix follows is ignored */
	}
	return false;
}

int decode_mmio(const uint8_t *bytes, unsigned n, enum cpu_mode mode, struct mmio_insn *out)
{
	unsigned max = n < DECODE_MAX_LEN ? n : DECODE_MAX_LEN;
	unsigned i, osz, asz, rex, immsz = 0;
	bool has_rex, opsz, adsz, lock, long64 = mode == MODE_LONG64;
	bool reg8 = false;  /* the register operand is 8-bit (may name AH..BH) */
	struct mmio_insn d = { .reg = -1 };
	struct insn_prefixes p;
	uint8_t op, modrm = 0;
	int end;

	if (!decode_prefixes(bytes, max, mode, &p))
		return -1;
	i = p.len;
	rex = p.rex & 0xf;
	has_rex = p.rex != 0;
	opsz = p.opsz, adsz = p.adsz, lock = p.lock;
	/* Operand size (2.2.1.2, Table 2-4 and Vol. 1, 3.6): REX.W wins over 66. */
	if (rex & REX_W)
		osz = 8;
	else if (mode == MODE_REAL || mode == MODE_PROT16)
		osz = opsz ? 4 : 2;
	else
		osz = opsz ? 2 : 4;
	if (long64)
		asz = adsz ? 4 : 8;
	else if (mode == MODE_PROT32)
		asz = adsz ? 2 : 4;
	else
		asz = adsz ? 4 : 2;

	op = bytes[i++];
	switch (op) {
	case 0x88:                      /* MOV r/m8, r8 */
		d.size = 1, d.write = true, reg8 = true;
		break;
	case 0x89:                      /* MOV r/m16/32/64, r16/32/64 */
		d.size = osz, d.write = true;
		break;
	case 0x8a:                      /* MOV r8, r/m8 */
		d.size = d.dst_size = 1, reg8 = true;
		break;
	case 0x8b:                      /* MOV r16/32/64, r/m16/32/64 */
		d.size = d.dst_size = osz;
		break;
	case 0x86:                      /* XCHG r/m8, r8 (locked whether or not F0 is there) */
		d.size = d.dst_size = 1, d.write = d.xchg = true, reg8 = true;
		break;
	case 0x87:                      /* XCHG r/m16/32/64, r16/32/64 */
		d.size = d.dst_size = osz, d.write = d.xchg = true;
		break;
	case 0xc6:                      /* MOV r/m8, imm8 (C6 /0) */
		d.size = 1, d.write = true, immsz = 1;
		break;
	case 0xc7:                      /* MOV r/m16/32, imm16/32; with REX.W r/m64, imm32 sign-extended */
		d.size = osz, d.write = true, immsz = osz == 2 ? 2 : 4;
		break;
	case 0x63:                      /* MOVSXD r, r/m32 (64-bit mode; elsewhere ARPL) */
		if (!long64)
			return -1;
		/* Without REX.W it is a plain 16/32-bit move (the SDM discourages that use). */
		d.size = osz == 8 ? 4 : osz, d.dst_size = osz, d.sign_extend = osz == 8;
		break;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3:
		/* MOV AL/AX/EAX/RAX <-> moffs: no ModRM; the offset is address-size wide (8 bytes in
		 * 64-bit mode, 4 with 67) and REX.B does not apply: the register is always RAX. */
		if (lock)
			return -1;
		d.size = op & 1 ? osz : 1;
		d.write = op >= 0xa2;
		d.dst_size = d.write ? 0 : d.size;
		d.reg = 0;
		if (i + asz > max)
			return -1;
		d.base = d.index = -1;
		d.scale = 1;
		d.asz = asz;
		d.disp = le(bytes, i, asz);
		d.seg = p.seg >= 0 ? p.seg : SEG_DS;
		d.len = i + asz;
		*out = d;
		return 0;
	case 0x0f:
		if (i >= max)
			return -1;
		op = bytes[i++];
		switch (op) {
		case 0xb6: case 0xbe:   /* MOVZX/MOVSX r16/32/64, r/m8 */
			d.size = 1;
			break;
		case 0xb7: case 0xbf:   /* MOVZX/MOVSX r32/64, r/m16 (r16 with 66: a plain move) */
			d.size = 2;
			break;
		default:
			return -1;
		}
		d.dst_size = osz;
		d.sign_extend = op >= 0xbe;
		break;
	default:
		return -1;
	}
	/* LOCK is legal only on read-modify-write instructions; on a MOV the CPU raises #UD. */
	if (lock && !d.xchg)
		return -1;

	end = modrm_operand(bytes, i, max, asz, rex, long64, &modrm, &d);
	if (end < 0)
		return -1;
	i = (unsigned)end;
	d.asz = asz;
	if (p.seg >= 0)
		d.seg = p.seg;
	if (immsz) {
		/* C6/C7 are group 11: only /0 is MOV (C6 /7, C7 /7 with mod=3 are XABORT, XBEGIN). */
		if (MODRM_REG(modrm) != 0 || i + immsz > max)
			return -1;
		d.imm = le(bytes, i, immsz);
		if (d.size == 8)
			d.imm = (uint64_t)(int64_t)(int32_t)(uint32_t)d.imm;
		i += immsz;
	} else {
		d.reg = (int)(MODRM_REG(modrm) | (rex & REX_R ? 8 : 0));
		/* Without any REX prefix, 8-bit registers 4-7 are AH, CH, DH, BH (2.2.1.2, Table 3-1 of
		 * Vol. 1); with one they are SPL, BPL, SIL, DIL. */
		if (reg8 && !has_rex && d.reg >= 4) {
			d.reg -= 4;
			d.high8 = true;
		}
	}
	d.len = i;
	*out = d;
	return 0;
}
