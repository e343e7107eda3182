/* Real mode without unrestricted guest: a guest with CR0.PE = 0 on shadow paging (no EPT, so no
 * unrestricted guest: SDM Vol. 3C, 25.6.2, Table 25-7) runs in virtual-8086 mode, as KVM did before
 * unrestricted guest. What it takes:
 *
 *   - RFLAGS.VM = 1 with IOPL = 3, so that CLI, STI, PUSHF, POPF, INT n and IRET run as real mode's
 *     (SDM Vol. 3A, 20.2.7, 20.3); the guest's IOPL is kept here (PUSHF shows it 3: a known difference).
 *   - Segments as VM entry wants them in vm86 mode: base = selector * 16, limit FFFFh, access rights
 *     F3h (SDM Vol. 3C, 27.3.1.2); a real-mode segment that is not so (a base not the selector's, as
 *     after INIT or in "unreal" mode) stops the guest with the reason: not emulated.
 *   - TR on a TSS of the hypervisor's (below): CR4.VME = 1 and an interrupt-redirection bitmap of
 *     zeros send INT n to the 8086 handler through the IVT at linear 0 (SDM Vol. 3A, 20.3.3,
 *     Table 20-2, mode 5), and an I/O permission bitmap of zeros lets IN/OUT through to the VM exit
 *     that I/O exiting asks for: in vm86 mode the bitmap is checked whatever IOPL (20.2.8.1), and its
 *     #GP has priority over the exit (SDM Vol. 3C, 26.1.1).
 *   - Every exception exits (exception bitmap all ones): vm86 mode would deliver it through the
 *     protected-mode IDT; here it goes through the IVT (vmx_rm_deliver), and so does every event the
 *     injection step delivers (exit.c). A #GP is vm86 mode refusing an instruction that real mode
 *     runs at CPL 0 (privileged ones, SDM Vol. 3A, 20.2.7; exceptions at CPL > 0 have priority over
 *     the VM exits the instructions would cause, SDM Vol. 3C, 26.1.1): LGDT, LIDT, LMSW, MOV to and
 *     from CRn and DRn, CLTS, INVD, WBINVD, INVLPG, RDMSR, WRMSR and HLT are emulated (rmemu.c
 *     decodes them);
 *     anything else stops the guest, naming the bytes and their GPA.
 *   - Setting CR0.PE leaves vm86 mode: the segments keep selector, base and limit and get protected-
 *     mode access rights VM entry accepts without unrestricted guest (27.3.1.2: CS a code segment,
 *     SS DPL = RPL = CS RPL, data DPL >= RPL), as KVM's fix_pmode_seg: CS and SS with RPL 0, data
 *     segments with DPL = RPL. The far JMP that follows runs natively and loads CS from the GDT.
 *
 * The TSS sits at a guest-physical address the guest never reaches in vm86 mode (linear addresses
 * stop at 10FFEFh there): the shadow maps it there only while vm86 mode is on (vmx_rm_map, through
 * vmx/spt.c's GPA map), and drops it when the guest leaves real mode. */
#include "arch/x86/debugreg.h"
#include "console/printk.h"
#include "lib/string.h"
#include "vcpu/handler.h"
#include "vmx/exit.h"
#include "vmx/realmode.h"
#include "vmx/rmemu.h"
#include "vmx/skip.h"
#include "vmx/spt.h"
#include "vmx/vmcs.h"

/*
 * The TSS (SDM Vol. 3A, 8.2.1, Figure 8-2; vm86 additions 20.3.3, Figure 20-5):
 *
 *   0      104                136                      8328   8329
 *   +------+------------------+------------------------+------+
 *   | TSS  | redirection map  | I/O permission bitmap  | FFh  |
 *   +------+------------------+------------------------+------+
 *          32 bytes, zeros    8192 bytes, zeros         the byte after the bitmap (SDM Vol. 1, 19.5.2)
 *
 * The word at 102 is the I/O map base (136); the redirection map is the 32 bytes below it.
 */
#define RM_TSS_GPA    0xfeffd000ull     /* where the guest never reaches in vm86 mode (as KVM's default) */
#define RM_TSS_PAGES  3
#define RM_TSS_IOMAP  136
#define RM_TSS_LIMIT  (RM_TSS_IOMAP + 8192) /* the last byte: FFh */
#define AR_VM86       0xf3u             /* data, read/write, accessed, S, DPL 3, P (SDM Vol. 3C, 27.3.1.2) */
#define AR_TSS_BUSY   0x8bu             /* 32-bit busy TSS, P */

static uint8_t rm_tss[RM_TSS_PAGES * 4096] __attribute__((aligned(4096)));
_Static_assert(RM_TSS_LIMIT < sizeof(rm_tss), "the TSS and its bitmaps fit");

bool vmx_rm_map(uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights)
{
	if (gpa - RM_TSS_GPA >= sizeof(rm_tss))
		return false;
	*hpa = (uint64_t)rm_tss + ((gpa - RM_TSS_GPA) & ~0xfffull);   /* the host map is 1:1 */
	*size = 4096;
	*rights = 0;                     /* read-only, no fetch: the CPU only reads it */
	return true;
}

/* The selector, base, limit and access rights fields of segment register r (enum vcpu_seg_reg order,
 * SDM Vol. 3D, B.1.2, B.3.3, B.4.3). */
#define SEG_SEL(r)   (GUEST_ES_SELECTOR + 2 * (r))
#define SEG_BASE(r)  (GUEST_ES_BASE + 2 * (r))
#define SEG_LIMIT(r) (GUEST_ES_LIMIT + 2 * (r))
#define SEG_AR(r)    (GUEST_ES_AR_BYTES + 2 * (r))

int vmx_rm_enter(struct vcpu *v)
{
	struct vmx_rm *rm = &vmx_of(v)->rm;
	uint64_t rflags;

	for (unsigned r = VCPU_ES; r <= VCPU_GS; r++) {
		uint16_t sel = vmcs_read16(SEG_SEL(r));
		uint64_t base = vmcs_read(SEG_BASE(r));
		uint32_t limit = vmcs_read32(SEG_LIMIT(r));

		if (base != (uint64_t)sel << 4 || limit != 0xffff)
			return vm_stop(v, "real mode with %cS = %04x base 0x%lx limit 0x%x: virtual-8086 mode needs base = "
				       "selector * 16 and limit 0xffff (SDM Vol. 3C, 27.3.1.2) and this is not emulated, "
				       "rip 0x%lx", "ECSDFG"[r], sel, base, limit, vmcs_read(GUEST_RIP));
	}
	for (unsigned r = VCPU_ES; r <= VCPU_GS; r++)
		vmcs_write(SEG_AR(r), AR_VM86);
	/* The TSS's constant parts (the same bytes every time: no lock needed). */
	rm_tss[102] = RM_TSS_IOMAP & 0xff;
	rm_tss[103] = RM_TSS_IOMAP >> 8;
	rm_tss[RM_TSS_LIMIT] = 0xff;
	rm->tr_sel = vmcs_read16(GUEST_TR_SELECTOR);
	rm->tr_base = vmcs_read(GUEST_TR_BASE);
	rm->tr_limit = vmcs_read32(GUEST_TR_LIMIT);
	rm->tr_ar = vmcs_read32(GUEST_TR_AR_BYTES);
	vmcs_write(GUEST_TR_BASE, RM_TSS_GPA);
	vmcs_write(GUEST_TR_LIMIT, RM_TSS_LIMIT);
	vmcs_write(GUEST_TR_AR_BYTES, AR_TSS_BUSY);
	rflags = vmcs_read(GUEST_RFLAGS);
	rm->iopl = rflags & RFLAGS_IOPL;
	vmcs_write(GUEST_RFLAGS, rflags | RFLAGS_VM | RFLAGS_IOPL);
	rm->bitmap = vmcs_read32(EXCEPTION_BITMAP);
	vmcs_write(EXCEPTION_BITMAP, ~0u);
	rm->vm86 = true;
	rm->runs++;
	rm->exits_at_enter = vcpu_exit_total(&v->exits);
	/* CR4.VME: vmx_spt_cr4_real sets it for a guest with CR0.PE = 0. */
	vmcs_write(GUEST_CR4, vmx_spt_cr4_real(vcpu_guest_cr4(), vcpu_guest_cr0()));
	return HANDLED;
}

/* Drops the shadow's translations of the TSS: after vm86 mode the guest's own (paging off: its RAM or
 * nothing) must be filled there. Not counted as the guest's INVLPGs. */
static void drop_tss(struct vcpu *v)
{
	uint64_t invlpgs = v->sh.stats.invlpgs;

	for (unsigned i = 0; i < RM_TSS_PAGES; i++)
		shadow_invlpg(&v->sh, RM_TSS_GPA + i * 4096ull);
	v->sh.stats.invlpgs = invlpgs;
	vcpu_spt_flush_dropped(v);
}

void vmx_rm_reset(struct vcpu *v)
{
	if (!vmx_of(v)->rm.vm86)
		return;
	vmcs_write(EXCEPTION_BITMAP, vmx_of(v)->rm.bitmap);
	drop_tss(v);
	vmx_of(v)->rm.exits += (uint32_t)(vcpu_exit_total(&v->exits) - vmx_of(v)->rm.exits_at_enter);
	vmx_of(v)->rm.vm86 = false;
}

/* CR0.PE was set: protected mode with the real-mode segments' selectors, bases and limits (SDM Vol.
 * 3A, 10.9.1: they stay until reloaded) and access rights VM entry accepts (header). */
static void leave(struct vcpu *v)
{
	struct vmx_rm *rm = &vmx_of(v)->rm;

	for (unsigned r = VCPU_ES; r <= VCPU_GS; r++) {
		uint16_t sel = vmcs_read16(SEG_SEL(r));

		if (r == VCPU_CS || r == VCPU_SS) {
			vmcs_write(SEG_SEL(r), sel & ~3u);
			vmcs_write(SEG_AR(r), r == VCPU_CS ? 0x9bu : 0x93u);   /* DPL 0: CPL 0 */
		} else {
			vmcs_write(SEG_AR(r), 0x93u | (sel & 3u) << 5);       /* DPL = RPL */
		}
	}
	vmcs_write(GUEST_TR_SELECTOR, rm->tr_sel);
	vmcs_write(GUEST_TR_BASE, rm->tr_base);
	vmcs_write(GUEST_TR_LIMIT, rm->tr_limit);
	vmcs_write(GUEST_TR_AR_BYTES, rm->tr_ar);
	vmcs_write(GUEST_RFLAGS, (vmcs_read(GUEST_RFLAGS) & ~(RFLAGS_VM | RFLAGS_IOPL)) | rm->iopl);
	vmx_rm_reset(v);
}

/* --- delivery through the IVT ------------------------------------------------------------------- */

void vmx_rm_deliver(struct vcpu *v, uint32_t info, uint32_t len)
{
	unsigned vector = info & 0xff, type = (info & INTR_TYPE_MASK) >> 8;
	uint64_t rip = vmcs_read(GUEST_RIP), rflags = vmcs_read(GUEST_RFLAGS), rsp = vmcs_read(GUEST_RSP);
	uint64_t ivt = vmcs_read(GUEST_IDTR_BASE), ss = vmcs_read(GUEST_SS_BASE);
	uint32_t entry;
	struct rm_frame f;

	/* Software interrupts and exceptions (types 4, 5, 6: SDM Vol. 3C, 25.8.3) return past the
	 * instruction; faults and hardware interrupts to it (RIP is where the CPU left it). */
	if (type >= 4 && type <= 6)
		rip += len;
	/* Real mode's IVT is IDTR.base + 4 * vector, 4 bytes within IDTR.limit (SDM Vol. 3A, 20.1.4); past
	 * the limit the CPU raises #GP, which cannot be delivered either: shutdown, as a triple fault. */
	if (vector * 4 + 3 > vmcs_read32(GUEST_IDTR_LIMIT) || gmem_read(&v->vm->mem, ivt + vector * 4, &entry, 4)) {
		vm_stop(v, "real mode: vector %u is outside the IVT (IDTR base 0x%lx limit 0x%x) or RAM: shutdown, "
			"rip 0x%lx", vector, ivt, vmcs_read32(GUEST_IDTR_LIMIT), rip);
		return;
	}
	rm_int_frame(entry, (uint16_t)rsp, (rflags & ~(RFLAGS_VM | RFLAGS_IOPL)) | vmx_of(v)->rm.iopl,
		     vmcs_read16(GUEST_CS_SELECTOR), (uint16_t)rip, &f);
	for (unsigned i = 0; i < 3; i++)
		if (gmem_write(&v->vm->mem, ss + f.at[i], &f.word[i], 2)) {
			vm_stop(v, "real mode: the stack at GPA 0x%lx is not RAM, delivering vector %u, rip 0x%lx",
				ss + f.at[i], vector, rip);
			return;
		}
	vmcs_write(GUEST_RSP, (rsp & ~0xffffull) | f.sp);
	vmcs_write(SEG_SEL(VCPU_CS), f.cs);
	vmcs_write(SEG_BASE(VCPU_CS), (uint64_t)f.cs << 4);
	vmcs_write(GUEST_RIP, f.ip);
	vmcs_write(GUEST_RFLAGS, (f.rflags & ~(RFLAGS_IOPL | RFLAGS_RF)) | RFLAGS_VM | RFLAGS_IOPL);
	vmx_of(v)->rm.delivered++;
}

/* --- what vm86 mode refuses --------------------------------------------------------------------- */

static int unknown(struct vcpu *v, uint64_t gpa, const uint8_t *b, unsigned n)
{
	char hex[3 * DECODE_MAX_LEN + 1];
	static const char digits[] = "0123456789abcdef";

	for (unsigned i = 0; i < n; i++) {
		hex[3 * i] = digits[b[i] >> 4];
		hex[3 * i + 1] = digits[b[i] & 15];
		hex[3 * i + 2] = i + 1 < n ? ' ' : 0;
	}
	if (!n)
		hex[0] = 0;
	return vm_stop(v, "real mode: instruction %s at GPA 0x%lx (CS:IP %04x:%04lx) raised #GP in virtual-8086 mode "
		       "and is not emulated", hex, gpa, vmcs_read16(GUEST_CS_SELECTOR), vmcs_read(GUEST_RIP) & 0xffff);
}

/* MOV to or from DRn (SDM Vol. 2B, MOV--Move to/from Debug Registers), 32 bits outside 64-bit mode.
 * DR0-DR3 and DR6 are the guest's own in the CPU while its vCPU is loaded (vmx/vcpu.c switches them
 * by hand), DR7 is the VMCS's. With CR4.DE = 0, DR4 and DR5 are DR6 and DR7; with it, #UD. DR7.GD makes
 * any access a #DB fault before it, with DR6.BD, and entering the handler clears GD (SDM Vol. 3B,
 * 18.2.4; the IVT delivery below does not, so it is cleared here). DR7's bits 11, 12, 14 and 15 read
 * as 0, bit 10 as 1 (18.2.4, Figure 18-1). */
static int mov_dr(struct vcpu *v, unsigned dr, unsigned gpr, bool to)
{
	uint64_t dr7 = vmcs_read(GUEST_DR7), val = 0;

	if ((dr == 4 || dr == 5) && (vcpu_get_cr4(v) & CR4_DE)) {
		inject_ud(v);
		return HANDLED;
	}
	dr = dr == 4 ? 6 : dr == 5 ? 7 : dr;
	if (dr7 & DR7_GD) {
		asm volatile("mov %%dr6, %0" : "=r"(val));
		val = dr6_after_db(val, DR6_BD);
		asm volatile("mov %0, %%dr6" : : "r"(val));
		vmcs_write(GUEST_DR7, dr7 & ~(uint64_t)DR7_GD);
		vcpu_inject_exception(v, VEC_DB, false, 0);
		return HANDLED;
	}
	if (to) {
		val = (uint32_t)vcpu_get_gpr(v, gpr);
		switch (dr) {
		case 0: asm volatile("mov %0, %%dr0" : : "r"(val)); break;
		case 1: asm volatile("mov %0, %%dr1" : : "r"(val)); break;
		case 2: asm volatile("mov %0, %%dr2" : : "r"(val)); break;
		case 3: asm volatile("mov %0, %%dr3" : : "r"(val)); break;
		case 6: asm volatile("mov %0, %%dr6" : : "r"(val)); break;
		case 7: vmcs_write(GUEST_DR7, (val | DR7_RESET) & ~(uint64_t)DR7_ZEROS); break;
		}
		return RETIRED;
	}
	switch (dr) {
	case 0: asm volatile("mov %%dr0, %0" : "=r"(val)); break;
	case 1: asm volatile("mov %%dr1, %0" : "=r"(val)); break;
	case 2: asm volatile("mov %%dr2, %0" : "=r"(val)); break;
	case 3: asm volatile("mov %%dr3, %0" : "=r"(val)); break;
	case 6: asm volatile("mov %%dr6, %0" : "=r"(val)); break;
	case 7: val = dr7; break;
	}
	vcpu_set_gpr(v, gpr, (uint32_t)val);
	return RETIRED;
}

/* MOV from CRn: the guest's values (SDM Vol. 2B, MOV--Move to/from Control Registers), 32 bits. */
static int mov_from_cr(struct vcpu *v, unsigned cr, unsigned gpr, unsigned len)
{
	struct vcpu_exit e = { .kind = VCPU_EXIT_CR, .len = (uint8_t)len, .cr = { 8, VCPU_CR_READ, (uint8_t)gpr, 0, 0 } };
	uint64_t val;

	switch (cr) {
	case 0: val = vcpu_get_cr0(v); break;
	case 2: val = v->regs.cr2; break;
	case 3: val = vcpu_get_cr3(v); break;
	case 4: val = vcpu_get_cr4(v); break;
	case 8: return vcpu_handle_cr(v, &e);
	default:
		inject_ud(v);              /* CR1, CR5-7 (SDM Vol. 2B, MOV CR: #UD) */
		return HANDLED;
	}
	vcpu_set_gpr(v, gpr, (uint32_t)val);
	return RETIRED;
}

static int emulate(struct vcpu *v)
{
	uint64_t rip = vmcs_read(GUEST_RIP), gpa = vmcs_read(GUEST_CS_BASE) + (rip & 0xffff);
	uint64_t gpr[8] = { v->regs.rax, v->regs.rcx, v->regs.rdx, v->regs.rbx, vmcs_read(GUEST_RSP),
			    v->regs.rbp, v->regs.rsi, v->regs.rdi };
	uint8_t b[DECODE_MAX_LEN];
	unsigned n = DECODE_MAX_LEN;
	struct rm_insn d;
	struct vcpu_exit e = { .kind = VCPU_EXIT_CR };
	uint8_t desc[6];
	uint64_t src;
	int r;

	if (gmem_read(&v->vm->mem, gpa, b, n)) {    /* near the end of RAM: what is there */
		n = (unsigned)(4096 - (gpa & 0xfff));
		if (n > DECODE_MAX_LEN || gmem_read(&v->vm->mem, gpa, b, n))
			return vm_stop(v, "real mode: #GP at GPA 0x%lx, which is not RAM", gpa);
	}
	if (rm_decode(b, n, gpr, &d))
		return unknown(v, gpa, b, n < 8 ? n : 8);
	vmx_of(v)->rm.emulated++;
	e.len = (uint8_t)d.len;
	switch (d.op) {
	case RM_LGDT:
	case RM_LIDT:
		/* A 16-bit limit and a 24-bit base, 32 bits with 66h (SDM Vol. 2A, LGDT/LIDT). */
		if (gmem_read(&v->vm->mem, vmcs_read(SEG_BASE(d.seg)) + d.off, desc, 6))
			return vm_stop(v, "real mode: the LGDT/LIDT operand at GPA 0x%lx is not RAM",
				       vmcs_read(SEG_BASE(d.seg)) + d.off);
		src = desc[2] | (uint32_t)desc[3] << 8 | (uint32_t)desc[4] << 16 | (uint32_t)desc[5] << 24;
		vmcs_write(d.op == RM_LGDT ? GUEST_GDTR_LIMIT : GUEST_IDTR_LIMIT, desc[0] | desc[1] << 8);
		vmcs_write(d.op == RM_LGDT ? GUEST_GDTR_BASE : GUEST_IDTR_BASE, d.o32 ? src : src & 0xffffff);
		r = RETIRED;
		break;
	case RM_LMSW:
		if (d.mem) {
			uint16_t w;

			if (gmem_read(&v->vm->mem, vmcs_read(SEG_BASE(d.seg)) + d.off, &w, 2))
				return vm_stop(v, "real mode: the LMSW operand is not RAM");
			src = w;
		} else {
			src = vcpu_get_gpr(v, d.gpr) & 0xffff;
		}
		e.cr = (typeof(e.cr)){ 0, VCPU_CR_LMSW, 0, 0, (uint16_t)src };
		r = vcpu_handle_cr(v, &e);
		break;
	case RM_MOV_TO_CR:
		if (d.cr == 3) {
			r = vcpu_spt_cr3(v, VCPU_CR_WRITE, d.gpr);
		} else if (d.cr == 0 || d.cr == 4 || d.cr == 8) {
			e.cr = (typeof(e.cr)){ (uint8_t)d.cr, VCPU_CR_WRITE, (uint8_t)d.gpr, 0, 0 };
			r = vcpu_handle_cr(v, &e);
		} else {
			inject_ud(v);
			r = HANDLED;
		}
		break;
	case RM_MOV_FROM_CR:
		r = mov_from_cr(v, d.cr, d.gpr, d.len);
		break;
	case RM_MOV_FROM_DR:
	case RM_MOV_TO_DR:
		r = mov_dr(v, d.cr, d.gpr, d.op == RM_MOV_TO_DR);
		break;
	case RM_INVLPG:                 /* paging is off in real mode: the guest has no translation to drop */
		r = RETIRED;
		break;
	case RM_CLTS:
		vcpu_set_cr0(v, vcpu_get_cr0(v) & ~CR0_TS);
		r = RETIRED;
		break;
	case RM_INVD:
	case RM_WBINVD:                 /* the caches are the host's (as exit.c's WBINVD and INVD exits) */
		r = RETIRED;
		break;
	case RM_RDMSR:
		r = vcpu_handle_rdmsr(v);
		break;
	case RM_WRMSR:
		r = vcpu_handle_wrmsr(v);
		break;
	case RM_HLT:
		e = (struct vcpu_exit){ .kind = VCPU_EXIT_HLT, .len = (uint8_t)d.len };
		return vcpu_handle_hlt(v, &e);   /* it moves RIP itself */
	default:
		return unknown(v, gpa, b, d.len);
	}
	if (vmx_of(v)->rm.vm86 && (vcpu_guest_cr0() & CR0_PE))
		leave(v);
	if (r == RETIRED) {
		skip_bytes(rip, d.len);
		r = HANDLED;
	}
	return r;
}

int vmx_rm_exception(struct vcpu *v, uint32_t info)
{
	if ((info & (INTR_TYPE_MASK | 0xff)) == (INTR_TYPE_HW_EXCEPTION | VEC_GP))
		return emulate(v);
	/* The guest's own exception (#DE, #UD, INT3, INTO...): real mode delivers it through the IVT,
	 * without an error code (SDM Vol. 3A, 20.1.4). The exit left RIP at a fault's instruction, and a
	 * software exception's length in the exit's instruction length (SDM Vol. 3C, 28.2.5). */
	vmx_of(v)->event = (struct vmx_event){ true, info & (INTR_INFO_VALID | INTR_TYPE_MASK | 0xff), 0,
		vmcs_read32(VM_EXIT_INSTRUCTION_LEN) };
	vcpu_work_post(&v->work, VCPU_WORK_ENTRY);
	return HANDLED;
}

void vmx_rm_report(const struct vm *g)
{
	struct vmx_rm t = { 0 };

	for (unsigned i = 0; i < g->nvcpus; i++) {
		const struct vmx_rm *rm = &vmx_of(&g->vcpus[i])->rm;

		t.runs += rm->runs;
		t.exits += rm->exits;     /* and those of a vCPU still in vm86 mode at the end */
		if (rm->vm86)
			t.exits += (uint32_t)(vcpu_exit_total(&g->vcpus[i].exits) - rm->exits_at_enter);
		t.emulated += rm->emulated;
		t.delivered += rm->delivered;
	}
	if (t.runs)
		pr_info("hv: guest %s real mode: %u starts in virtual-8086 mode, %u exits there, %u instructions "
			"emulated, %u events through the IVT\n", g->name, t.runs, t.exits, t.emulated, t.delivered);
}
