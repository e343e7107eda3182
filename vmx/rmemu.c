/* Real mode under virtual-8086 mode: what vm86 refuses, decoded, and the real-mode interrupt frame
 * (rmemu.h). Instruction format: SDM Vol. 2A, chapter 2; 16-bit addressing Table 2-1, 32-bit
 * Tables 2-2 and 2-3; default segments SDM Vol. 3A, 3.7.4, Table 3-5. */
#include "vcpu/seg.h"
#include "vcpu/decode.h"
#include "vmx/rmemu.h"

#define RFLAGS_TF_BIT (1ull << 8)
#define RFLAGS_IF_BIT (1ull << 9)
#define RFLAGS_AC_BIT (1ull << 18)

/* A little-endian displacement of `bytes` (1, 2, 4) at b[*i], sign-extended; false past n. */
static bool disp_at(const uint8_t *b, unsigned *i, unsigned n, unsigned bytes, int32_t *out)
{
	uint32_t x = 0;

	if (*i + bytes > n)
		return false;
	for (unsigned k = 0; k < bytes; k++)
		x |= (uint32_t)b[*i + k] << 8 * k;
	*i += bytes;
	*out = bytes == 1 ? (int8_t)x : bytes == 2 ? (int16_t)x : (int32_t)x;
	return true;
}

/* The memory operand of the ModRM byte at b[i] (its mod is not 3): offset and default segment;
 * returns the index after ModRM, SIB and displacement, or -1 past n. */
static int modrm_mem(const uint8_t *b, unsigned i, unsigned n, bool a32, const uint64_t gpr[8],
		     struct rm_insn *out)
{
	unsigned mod = b[i] >> 6, rm = b[i] & 7;
	uint32_t off = 0;
	int32_t disp = 0;

	i++;
	out->seg = VCPU_DS;
	if (!a32) {
		/*  r/m:   0      1      2      3     4   5   6            7
		 *       BX+SI  BX+DI  BP+SI  BP+DI  SI  DI  BP (disp16)  BX   (Table 2-1) */
		static const uint8_t base[8] = { 3, 3, 5, 5, 6, 7, 5, 3 }, index[8] = { 6, 7, 6, 7, 8, 8, 8, 8 };

		if (mod == 0 && rm == 6) {
			if (!disp_at(b, &i, n, 2, &disp))
				return -1;
		} else {
			off = (uint32_t)gpr[base[rm]] + (index[rm] < 8 ? (uint32_t)gpr[index[rm]] : 0);
			if (base[rm] == 5)
				out->seg = VCPU_SS;      /* BP-based: SS (Table 3-5) */
			if (mod && !disp_at(b, &i, n, mod == 1 ? 1 : 2, &disp))
				return -1;
		}
		out->off = (uint16_t)(off + (uint32_t)disp);
		return (int)i;
	}
	if (rm == 4) {                           /* SIB: scale, index (4: none), base (Table 2-3) */
		unsigned sib, scale, idx, bs;

		if (i + 1 > n)
			return -1;
		sib = b[i++];
		scale = sib >> 6, idx = (sib >> 3) & 7, bs = sib & 7;
		if (idx != 4)
			off = (uint32_t)gpr[idx] << scale;
		if (bs == 5 && mod == 0) {
			if (!disp_at(b, &i, n, 4, &disp))
				return -1;
		} else {
			off += (uint32_t)gpr[bs];
			if (bs == 4 || bs == 5)
				out->seg = VCPU_SS;
		}
	} else if (rm == 5 && mod == 0) {
		if (!disp_at(b, &i, n, 4, &disp))
			return -1;
	} else {
		off = (uint32_t)gpr[rm];
		if (rm == 5)
			out->seg = VCPU_SS;
	}
	if (mod && !disp_at(b, &i, n, mod == 1 ? 1 : 4, &disp))
		return -1;
	out->off = off + (uint32_t)disp;
	return (int)i;
}

int rm_decode(const uint8_t *b, unsigned n, const uint64_t gpr[8], struct rm_insn *out)
{
	struct rm_insn d = { 0 };
	struct insn_prefixes p;
	bool a32;
	int seg, end;
	unsigned i, reg, mod;

	if (n > DECODE_MAX_LEN)
		n = DECODE_MAX_LEN;
	/* F2/F3 have no meaning on these opcodes; LOCK on any of them is #UD: not emulated. */
	if (!decode_prefixes(b, n, MODE_REAL, &p) || p.lock)
		return -1;
	i = p.len;
	d.o32 = p.opsz;
	a32 = p.adsz;
	seg = p.seg;
	if (b[i] == 0xf4) {
		d.op = RM_HLT;
		d.len = i + 1;
		*out = d;
		return 0;
	}
	if (b[i] != 0x0f || i + 1 >= n)
		return -1;
	i++;
	switch (b[i]) {
	case 0x06: d.op = RM_CLTS; break;
	case 0x08: d.op = RM_INVD; break;
	case 0x09: d.op = RM_WBINVD; break;
	case 0x30: d.op = RM_WRMSR; break;
	case 0x32: d.op = RM_RDMSR; break;
	case 0x20: case 0x22: case 0x21: case 0x23:
		/* MOV from/to CRn and DRn: always a register operand, mod ignored (SDM Vol. 2B, MOV--Move
		 * to/from Control Registers, MOV--Move to/from Debug Registers), 32 bits outside 64-bit
		 * mode, 66h ignored. */
		if (i + 1 >= n)
			return -1;
		d.op = b[i] == 0x20 ? RM_MOV_FROM_CR : b[i] == 0x22 ? RM_MOV_TO_CR :
		       b[i] == 0x21 ? RM_MOV_FROM_DR : RM_MOV_TO_DR;
		d.cr = (b[i + 1] >> 3) & 7;
		d.gpr = b[i + 1] & 7;
		d.len = i + 2;
		*out = d;
		return 0;
	case 0x01:
		if (i + 1 >= n)
			return -1;
		reg = (b[i + 1] >> 3) & 7, mod = b[i + 1] >> 6;
		if (reg == 2 || reg == 3) {
			if (mod == 3)            /* LGDT/LIDT of a register: #UD, not for us */
				return -1;
			d.op = reg == 2 ? RM_LGDT : RM_LIDT;
		} else if (reg == 6) {
			d.op = RM_LMSW;
		} else if (reg == 7 && mod != 3) {
			d.op = RM_INVLPG;        /* (mod 3: RDTSCP and others, not privileged) */
		} else {
			return -1;
		}
		if (mod == 3) {
			d.gpr = b[i + 1] & 7;
			d.len = i + 2;
			*out = d;
			return 0;
		}
		if ((end = modrm_mem(b, i + 1, n, a32, gpr, &d)) < 0)
			return -1;
		d.mem = true;
		if (seg >= 0)
			d.seg = (unsigned)seg;
		d.len = (unsigned)end;
		*out = d;
		return 0;
	default:
		return -1;
	}
	d.len = i + 1;
	*out = d;
	return 0;
}

void rm_int_frame(uint32_t ivt_entry, uint16_t sp, uint64_t rflags, uint16_t cs, uint16_t ip, struct rm_frame *f)
{
	f->word[0] = ip;
	f->word[1] = cs;
	f->word[2] = (uint16_t)rflags;
	f->at[2] = (uint16_t)(sp - 2);
	f->at[1] = (uint16_t)(sp - 4);
	f->at[0] = (uint16_t)(sp - 6);
	f->sp = (uint16_t)(sp - 6);
	f->ip = (uint16_t)ivt_entry;
	f->cs = (uint16_t)(ivt_entry >> 16);
	f->rflags = rflags & ~(RFLAGS_IF_BIT | RFLAGS_TF_BIT | RFLAGS_AC_BIT);
}
