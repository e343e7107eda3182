/* String I/O: INS and OUTS, with or without REP, emulated element by element (the exit gives the
 * port and the direction; the addresses, segment and sizes are the emulator's to work out). */
#include "lib/errno.h"
#include "vcpu/handler.h"

#define RFLAGS_DF (1ull << 10)   /* string instructions count down (SDM Vol. 1, 3.4.3.2) */

/*
 * INS and OUTS, with or without REP, emulated element by element as the CPU executes them (SDM Vol.
 * 2B, INS/INSB/INSW/INSD, OUTS/OUTSB/OUTSW/OUTSD, REP/REPE/REPZ/REPNE/REPNZ):
 *
 *   element address   INS: ES:rDI (no override)   OUTS: DS:rSI, or the override's segment
 *   after each        rDI/rSI += size (RFLAGS.DF = 0) or -= size (DF = 1); with REP, rCX -= 1
 *   address size      16: SI, DI, CX   32: ESI, EDI, ECX   64: RSI, RDI, RCX (SDM Vol. 2A, 3.3.7)
 *
 * Each element is one access to the port's device (vdev_pio) and one guest-linear access translated
 * through the guest's own page tables (gpt_translate: a write for INS, a user access at CPL 3, SMAP
 * with RFLAGS.AC below it, the A and D flags set), so an element that crosses pages and a page that
 * is not present behave as on the CPU: the #PF is taken with CR2 the faulting address and with RCX/RSI/RDI saying which elements were done (REP is
 * interruptible between iterations, SDM Vol. 2B REP: "the registers are updated ... so the
 * instruction can be resumed"). An address outside guest RAM stops the guest.
 *
 * Simplified: the segment's limit and type are not checked (only an unusable segment outside real
 * and 64-bit mode raises #GP(0)), 16-bit offsets that wrap inside an element are not split, alignment
 * checking is ignored, and data breakpoints (DR0-DR3) do not fire on these emulated accesses.
 */

/* Elements of a REP INS/OUTS done per exit. The rest re-executes: RIP stays at the instruction, so
 * the host CPU is never held long, and a pending interrupt may come in between, as on the CPU. */
#define STRIO_BATCH 256
#define STRIO_NEXT  (-2)   /* strio_translate: translated, go on */

/* Address size (0: 16-bit, 1: 32-bit, 2: 64-bit) and segment (0 ES, 1 CS, 2 SS, 3 DS, 4 FS, 5 GS)
 * of the INS/OUTS that exited: from the exit when the CPU gives them (VMX: the instruction-information
 * field where IA32_VMX_BASIC[54] says so, SDM Vol. 3C, 28.2.5, Table 28-8; SVM with decode assists:
 * EXITINFO1, AMD APM Vol. 2, 15.10.2); otherwise from the instruction's prefixes (67 address size,
 * 26 2E 36 3E 64 65 segment; SDM Vol. 2A, 2.1.1). false: the instruction is unreadable. */
static bool strio_operands(struct vcpu *v, const struct vcpu_exit *e, enum cpu_mode mode, unsigned *asz,
			   unsigned *seg)
{
	uint64_t rip = vcpu_get_rip(v), linear;
	unsigned len = e->len;
	uint8_t insn[DECODE_MAX_LEN];
	struct gpt_ctx ctx;
	struct insn_prefixes p;

	if (e->io.asz != VCPU_IO_NOOPS) {
		*asz = e->io.asz;
		*seg = e->io.seg;
		return *asz <= 2 && *seg <= 5;
	}
	linear = mode == MODE_LONG64 ? rip : (vcpu_get_seg(v, VCPU_CS).base + rip) & 0xffffffffull;
	vcpu_gpt_context(v, &ctx);
	/* All but the opcode (6C-6F) are prefixes; 66's operand size is in the exit already. */
	if (len < 1 || len > sizeof(insn) || gpt_read(&ctx, linear, insn, len, true, NULL) ||
	    !decode_prefixes(insn, len, mode, &p))
		return false;
	*seg = p.seg >= 0 ? (unsigned)p.seg : VCPU_DS;
	if (mode == MODE_LONG64)
		*asz = p.adsz ? 1 : 2;
	else
		*asz = (mode == MODE_PROT32) ^ p.adsz;
	return true;
}

/* A 16-, 32- or 64-bit address register after adding `d`: only its low 16 bits change with a 16-bit
 * address size, a 32-bit result clears bits 63:32 (SDM Vol. 1, 3.4.1.1). */
static uint64_t addr_add(uint64_t reg, int64_t d, uint64_t amask)
{
	if (amask == 0xffff)
		return (reg & ~0xffffull) | ((reg + d) & 0xffff);
	return amask == 0xffffffffull ? (uint32_t)(reg + d) : reg + d;
}

/* One element's guest-physical bytes: [la, la+size) split where it crosses a 4 KiB page. */
struct strio_span {
	uint64_t gpa[2];
	unsigned len[2];
};

/* Translates the element at guest-linear `la` for a read (OUTS) or a write (INS), both of its pages
 * before any byte moves. STRIO_NEXT, or the fault the CPU would take injected (HANDLED), or the
 * guest stopped. */
static int strio_translate(struct vcpu *v, const struct gpt_ctx *c, uint64_t la, unsigned size, bool write,
			   bool wrap32, unsigned seg, struct strio_span *sp)
{
	unsigned first = 0x1000 - (la & 0xfff);

	sp->len[0] = size < first ? size : first;
	sp->len[1] = size - sp->len[0];
	for (unsigned i = 0; i < 2 && sp->len[i]; i++) {
		uint64_t a = i ? la + sp->len[0] : la;
		struct gpt_result r;

		if (wrap32)
			a &= 0xffffffffull;
		/* An explicit data access: SMAP and RFLAGS.AC apply, and A and D are set as the CPU sets
		 * them (SDM Vol. 3A, 4.6.1 and 4.8). */
		switch (gpt_translate(c, a, (write ? GPT_ACC_WRITE : 0) | (c->cpl == 3 ? GPT_ACC_USER : 0) |
				      GPT_ACC_SET_AD, &r)) {
		case GPT_OK:
			sp->gpa[i] = r.gpa;
			break;
		case GPT_RACE:             /* the guest's entries kept changing: the instruction again */
			return HANDLED;
		case GPT_NOT_PRESENT:
		case GPT_RESERVED:
		case GPT_PERM:             /* #PF: CR2 = the linear address that faulted (SDM Vol. 3A, 4.7) */
			vcpu_set_cr2(v, a);
			vcpu_inject_exception(v, VEC_PF, true, r.pf_error);
			return HANDLED;
		case GPT_NONCANONICAL:     /* #SS(0) through SS, else #GP(0) (SDM Vol. 3A, 3.3.7.1) */
			vcpu_inject_exception(v, seg == 2 ? VEC_SS : VEC_GP, true, 0);
			return HANDLED;
		case GPT_BAD_GPA:
			return vm_stop(v, "string I/O: a page table for guest-linear 0x%lx is at GPA 0x%lx, outside "
				       "guest RAM, rip 0x%lx", a, r.gpa, vcpu_get_rip(v));
		default:
			return vm_stop(v, "string I/O: guest-linear 0x%lx under 5-level paging (not supported), rip 0x%lx",
				       a, vcpu_get_rip(v));
		}
	}
	return STRIO_NEXT;
}

/* Moves one element between guest memory and `val` (little-endian). 0, or the guest stopped. */
static int strio_copy(struct vcpu *v, const struct strio_span *sp, uint32_t *val, bool to_guest, uint16_t port)
{
	for (unsigned i = 0; i < 2 && sp->len[i]; i++) {
		uint8_t *p = (uint8_t *)val + (i ? sp->len[0] : 0);
		int err = to_guest ? gmem_write(&v->vm->mem, sp->gpa[i], p, sp->len[i])
				   : gmem_read(&v->vm->mem, sp->gpa[i], p, sp->len[i]);

		if (err == -ENOMEM)
			return vm_stop(v, "out of memory at GPA 0x%lx", sp->gpa[i]);
		if (err)
			return vm_stop(v, "%s at port 0x%x: its buffer at GPA 0x%lx is outside guest RAM, rip 0x%lx",
				       to_guest ? "INS" : "OUTS", port, sp->gpa[i], vcpu_get_rip(v));
	}
	return 0;
}

int vcpu_handle_string_io(struct vcpu *v, const struct vcpu_exit *e)
{
	unsigned size = e->io.size, asz, seg, batch;
	bool in = e->io.flags & VCPU_IO_IN, rep = e->io.flags & VCPU_IO_REP;
	uint16_t port = e->io.port;
	uint64_t rflags = vcpu_get_rflags(v), amask, base, count, done;
	int64_t step = rflags & RFLAGS_DF ? -(int64_t)size : (int64_t)size;
	uint64_t *addr = in ? &v->regs.rdi : &v->regs.rsi;
	enum cpu_mode mode = guest_mode(v);
	struct vcpu_seg s;
	struct gpt_ctx ctx;
	int r;

	if (!strio_operands(v, e, mode, &asz, &seg))
		return vm_stop(v, "cannot read the %s instruction at rip 0x%lx", in ? "INS" : "OUTS", vcpu_get_rip(v));
	if (in)
		seg = 0;                   /* INS writes through ES, whatever the prefixes say */
	amask = asz == 2 ? ~0ull : asz == 1 ? 0xffffffffull : 0xffffull;
	count = rep ? v->regs.rcx & amask : 1;
	s = vcpu_get_seg(v, seg);
	if (mode != MODE_REAL && mode != MODE_LONG64 && s.unusable) {
		inject_gp(v);              /* a null segment (SDM Vol. 2B, INS/OUTS: #GP(0)) */
		return HANDLED;
	}
	/* In 64-bit mode only FS and GS have a base (SDM Vol. 3A, 3.4.4). */
	base = mode == MODE_LONG64 && seg < 4 ? 0 : s.base;
	vcpu_gpt_context(v, &ctx);
	ctx.rflags = rflags;
	/* With RFLAGS.TF a single-step trap follows each iteration (SDM Vol. 3B, 18.3.1.4): one per exit. */
	batch = rflags & RFLAGS_TF ? 1 : STRIO_BATCH;
	for (done = 0; done < count && done < batch; done++) {
		uint64_t la = base + (*addr & amask);
		struct vdev_access a = { port, size, !in, 0, v->index };
		struct strio_span sp;
		enum vdev_result res;
		uint32_t val = 0;

		if (mode != MODE_LONG64)
			la &= 0xffffffffull;
		if ((r = strio_translate(v, &ctx, la, size, in, mode != MODE_LONG64, seg, &sp)) != STRIO_NEXT)
			return r;          /* RIP stays: the fault comes from this instruction */
		if (!in && (r = strio_copy(v, &sp, &val, false, port)))
			return r;
		a.value = val;
		res = vdev_pio(&v->vm->bus, &a);
		if (res == VDEV_GUEST_EXIT)
			return vm_end(v, (int)a.value);
		if (res == VDEV_GUEST_RESET)
			return vm_stop(v, "%s", v->vm->bus.why);
		if (res == VDEV_BAD_ACCESS)
			return vm_stop(v, "%s at port 0x%x: %s, rip 0x%lx", in ? "INS" : "OUTS", port, v->vm->bus.why,
				       vcpu_get_rip(v));
		val = a.value;
		if (in && (r = strio_copy(v, &sp, &val, true, port)))
			return r;
		*addr = addr_add(*addr, step, amask);
		if (rep)
			v->regs.rcx = addr_add(v->regs.rcx, -1, amask);
	}
	if (done == count) {
		vcpu_skip(v, e->len);      /* all done (REP with rCX = 0 does nothing) */
	} else if (done) {
		/* An iteration boundary: STI/MOV-SS blocking ends, TF traps, and an interrupt or trap
		 * taken here pushes RF = 1, so that the instruction's breakpoint does not fire again
		 * when it resumes (SDM Vol. 3B, 18.3.1.1). */
		vcpu_finish_instruction(v);
		vcpu_set_rflags(v, vcpu_get_rflags(v) | RFLAGS_RF);
	}
	/* Host time for the guest's devices counts against its slice, as for IN and OUT. */
	return vcpu_slice_left(v);
}
