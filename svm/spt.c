/* Shadow paging on SVM (paging=shadow, issue 16): the VMCB side of vcpu/spt.c. The guest runs with
 * NP_ENABLE = 0 and the VMCB's CR3 = the root of shadow/shadow.c's tables (GVA -> HPA), and sees its
 * own CR0, CR3, CR4 and EFER (AMD APM Vol. 2, chapter 15; sections below are that chapter's but where
 * named):
 *
 *   - SVM has no read shadows: the reads of CR0, CR3 and CR4 are intercepted too (15.9, CR read
 *     intercepts; the handler answers with the guest's values kept in struct svm_vcpu and v->gcr3),
 *     with the writes of CR0 (CLTS and LMSW included), CR3 and CR4. The CR0 read intercept takes
 *     SMSW too (whose CR0[15:0] are the guest's own in the CPU's CR0 as well, PE among them: no
 *     intercept could let it run alone), emulated here (svm_spt_exit_smsw).
 *   - the CPU runs with CR0.PG = 1 and CR0.WP = 1, CR4.PAE = 1 (shadow/shadow.h says why), CR4.PSE,
 *     PGE and PCIDE 0 (shadow entries have no G bit, the root no PCID), PKE 0 (shadow leaves carry
 *     no protection key; the guest's CPUID has no PKU, vcpu/cpuid_policy.c), SMEP and SMAP the guest's
 *     while its paging is on. CR0.PE stays the guest's: with paging on and PE = 0 the guest is in
 *     "paged real mode", which VMRUN accepts for this very use (15.19, Paged Real Mode), so real mode
 *     runs as it is, on the shadow's paging-off root (GVA = GPA), without the virtual-8086 emulation
 *     VMX needs (vmx/realmode.c).
 *   - EFER: NXE always 1 (shadow leaves may carry XD); LME only with LMA, since CR0.PG is 1 in the CPU:
 *     a guest between setting LME and setting PG runs in legacy PAE paging (VMRUN's consistency
 *     checks, 15.5.1, want LME with PG to have PAE and to be long mode). EFER writes reach the MSR
 *     intercept (the MSRPM leaves EFER intercepted, svm/vcpu.c).
 *   - every #PF is intercepted (exception intercept 14, 15.12: EXITINFO1 the error code, EXITINFO2
 *     the faulting address; the guest's CR2 is not written for an intercepted #PF, which QEMU's
 *     software SVM does likewise); INVLPG is intercepted (15.9; its address is in EXITINFO1 only with
 *     decode assists, 15.8.3, which neither QEMU 7.2 nor Bochs 2.7 offers: else decoded here),
 *     INVPCID too (intercept word 5, bit 2), and raises #UD since the guest's CPUID does not offer it
 *     (svm_offers).
 *   - PCID is the guest's whatever the CPU has (vcpu/cpuid.c offers it on shadow paging): CR4.PCIDE
 *     is kept in struct svm_vcpu and the CPU's stays 0. But a MOV to CR4 meets the CPU's own checks
 *     before its write intercept ("all normal exception checks take precedence over the SVM
 *     intercepts" for CRs other than CR0, 15.9, Table 15-7), and a CPU without PCID raises #GP for
 *     a CR4.PCIDE it lacks (3.1.3) before the hypervisor hears of it: Bochs's ryzen does (SetCR4:
 *     check_CR4, then the intercept), QEMU 7.2 intercepts first. So where the CPU has no PCID, #GP
 *     is intercepted too (exception intercept 13), and a #GP raised by a MOV to CR4 at CPL 0 is
 *     handled as the write intercept (svm/vcpu.c, handle_gp): vcpu/cr.c decides the write for the
 *     guest's CR4, #GP included. Every other #GP goes back to the guest with its error code.
 *   - the guest's PAT: without nested paging G_PAT is not used (15.25.8): the shadow's leaves carry
 *     the guest's PWT, PCD and PAT bits (shadow/shadow.c, compose; PAT moved between bit 7 and bit 12
 *     as the leaf's size asks), but they select entries of the host's PAT, which holds the reset
 *     values (svm/caps.c): a guest's own IA32_PAT (kept in G_PAT for its reads) takes no effect here.
 *
 * TLB: translations are tagged with the guest's ASID and survive VMRUN and #VMEXIT (15.16), as VMX's
 * with a VPID do (vmx/spt.c). So whatever the shadow changes or drops that the CPU may have cached for
 * the guest, it says (shadow.h, enum shadow_flush), and vcpu/spt.c passes it here before the next
 * VMRUN (svm_spt_flush): one 4 KiB leaf with INVLPGA (APM Vol. 3, INVLPGA: the given ASID's
 * translation of the address), anything else with TLB_CONTROL at the next VMRUN (15.16.1: 3, this
 * ASID, with FlushByAsid; else 1, every ASID). That is every root load (a CR3 write, whether the root
 * was cached, kept or rebuilt, and every resync after a paging-control write; not a kept load of the
 * root already current), INVLPG of a large guest page's pieces or of a table, INVPCID, a fill that
 * reclaimed tables or replaced a larger leaf or a table. Fills of not-present entries need nothing:
 * the CPU caches no not-present translation (APM Vol. 2, 5.5.3). A new ASID per flush would avoid
 * flushing, at the cost of ASIDs spent per vCPU and a full flush anyway when they wrap: not worth it
 * while QEMU and Bochs lack FlushByAsid's counterpart anyway.
 */
#include "arch/x86/cpu.h"
#include "arch/x86/trap.h"
#include "pmm/pmm.h"
#include "svm/caps.h"
#include "svm/spt.h"
#include "svm/vmcb.h"
#include "vcpu/decode.h"
#include "vcpu/exit.h"
#include "vcpu/handler.h"
#include "shadow/gpt.h"

/* CR4.PKE stays 0 in the CPU: the shadow's leaves carry no protection keys (vmx/spt.c says more). */
#define SPT_CR4_OWN (CR4_PAE | GPT_CR4_PSE | CR4_PGE | CR4_PCIDE | GPT_CR4_SMEP | GPT_CR4_SMAP | CR4_PKE)

uint64_t svm_spt_cr0_real(uint64_t guest)
{
	return guest | CR0_PG | CR0_WP;
}

uint64_t svm_spt_cr4_real(uint64_t guest, uint64_t guest_cr0)
{
	uint64_t cr4 = (guest & ~SPT_CR4_OWN) | CR4_PAE;

	if (guest_cr0 & CR0_PG)
		cr4 |= guest & (GPT_CR4_SMEP | GPT_CR4_SMAP);
	return cr4;
}

uint64_t svm_spt_efer_real(uint64_t guest)
{
	return (guest & ~EFER_LME) | (guest & EFER_LMA ? EFER_LME : 0) | EFER_NXE | EFER_SVME;
}

void svm_spt_setup(struct vcpu *v, const struct vcpu_state *s)
{
	struct vmcb *b = vmcb_of(v);

	b->ctl.np_ctl = 0;
	b->ctl.n_cr3 = 0;
	b->ctl.intercept_cr |= VMCB_INTERCEPT_CR_READ(0) | VMCB_INTERCEPT_CR_READ(3) | VMCB_INTERCEPT_CR_READ(4) |
			       VMCB_INTERCEPT_CR_WRITE(3);
	b->ctl.intercept_exc |= VMCB_INTERCEPT_PF;
	if (!(cpuid(1, 0).ecx & (1u << 17)))    /* no PCID: the CPU's #GP for CR4.PCIDE (above) */
		b->ctl.intercept_exc |= VMCB_INTERCEPT_GP;
	b->ctl.intercept3 |= VMCB_INTERCEPT_INVLPG;
	b->ctl.intercept5 |= VMCB_INTERCEPT_INVPCID;
	svm_of(v)->gcr0 = s->cr0;
	svm_of(v)->gcr4 = s->cr4;
	b->save.cr0 = svm_spt_cr0_real(s->cr0);
	b->save.cr4 = svm_spt_cr4_real(s->cr4, s->cr0);
	b->save.efer = svm_spt_efer_real(s->efer);
	b->save.cr3 = 0;                         /* the root: vcpu_spt_run, before the first VMRUN */
	vcpu_spt_apply(v, s->cr3, s->efer);
}

/* --- vcpu/spt.c's vendor interface (vcpu/guest.h) ------------------------------------------------ */

void svm_spt_set_controls(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);

	b->save.cr0 = svm_spt_cr0_real(svm_of(v)->gcr0);
	b->save.cr4 = svm_spt_cr4_real(svm_of(v)->gcr4, svm_of(v)->gcr0);
}

/* The ASID's translations are the old root's: the shadow's flush request that comes with every root
 * switch (shadow.h) drops them. */
void svm_spt_set_root(struct vcpu *v, uint64_t root)
{
	vmcb_of(v)->save.cr3 = root;
}

void svm_spt_flush(struct vcpu *v, uint64_t gva)
{
	if (gva == ~0ull)
		svm_flush_asid(v);
	else
		asm volatile("invlpga %%rax, %%ecx" : : "a"(gva), "c"((uint32_t)svm_of(v)->asid) : "memory");
}

/* --- exits -------------------------------------------------------------------------------------- */

/* #PF (15.12). An event whose delivery met it is in EXITINTINFO (15.7.2), which the dispatcher has put
 * back in EVENTINJ: an exception's vector tells vcpu_spt_page_fault what the guest's own #PF becomes
 * (a #DF after a #PF, a shutdown after a #DF). */
int svm_spt_exit_pf(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);
	uint64_t ii = b->ctl.exit_int_info;
	bool exc = (ii & VMCB_EVT_VALID) && (ii & VMCB_EVT_TYPE_MASK) == VMCB_EVT_TYPE_EXC;

	return vcpu_spt_page_fault(v, b->ctl.exit_info2, (uint32_t)b->ctl.exit_info1, exc ? (int)(ii & 0xff) : -1);
}

/* A group-7 instruction (0F 01 /reg, mod != 3 for a memory operand: INVLPG /7, SMSW /4; SDM Vol. 2A,
 * 2.1.5 and 2.2.1.6; APM Vol. 3, 1.4) decoded from its bytes: length, operand size, register operand,
 * and for a memory operand its linear address: 16-bit addressing (Table 2-1) or 32/64-bit with SIB and
 * RIP-relative (Tables 2-2, 2-3), the segment's base (in 64-bit mode FS's and GS's only, SDM Vol. 3A,
 * 3.4.4). The offset wraps at the address size, the linear address outside 64-bit mode at 4 GiB. */
struct grp7 {
	unsigned len;                            /* the instruction's bytes */
	unsigned osz;                            /* operand size: 2, 4 or 8 */
	int reg;                                 /* mod = 3: the register operand; else -1 */
	int seg;                                 /* mod != 3: the segment (VCPU_ES...) */
	uint64_t la;                             /* mod != 3: the linear address */
};

/* 0, or -1 for bytes that are not 0F 01 /`op`. */
static int grp7_decode(struct vcpu *v, const uint8_t *insn, unsigned n, enum cpu_mode mode, unsigned op,
		       struct grp7 *d)
{
	static const uint8_t rm16_base[8] = { 3, 3, 5, 5, 6, 7, 5, 3 };      /* BX BX BP BP SI DI BP BX */
	static const int8_t rm16_index[8] = { 6, 7, 6, 7, -1, -1, -1, -1 };  /* SI DI SI DI */
	unsigned i, rex, asz = mode == MODE_LONG64 ? 8 : mode == MODE_PROT32 ? 4 : 2, mod, rm;
	struct insn_prefixes p;
	bool o16;
	int seg, dseg = VCPU_DS;
	uint64_t ea = 0;

	if (!decode_prefixes(insn, n, mode, &p))
		return -1;
	i = p.len;
	rex = p.rex;
	o16 = p.opsz;
	seg = p.seg;
	if (p.adsz)
		asz = mode == MODE_LONG64 ? 4 : asz == 4 ? 2 : 4;
	if (i + 3 > n || insn[i] != 0x0f || insn[i + 1] != 0x01 || ((insn[i + 2] >> 3) & 7) != op)
		return -1;
	/* Operand size: REX.W 64; else the default (16 in 16-bit code), 66 switching 16 and 32. */
	d->osz = rex & 8 ? 8 : ((mode == MODE_REAL || mode == MODE_PROT16) ^ o16) ? 2 : 4;
	mod = insn[i + 2] >> 6;
	rm = insn[i + 2] & 7;
	i += 3;
	if (mod == 3) {
		d->reg = (int)(rm | (rex & 1 ? 8 : 0));
		d->len = i;
		return 0;
	}
	d->reg = -1;
	if (asz == 2) {
		if (mod == 0 && rm == 6) {
			if (i + 2 > n)
				return -1;
			ea = insn[i] | (uint64_t)insn[i + 1] << 8;
			i += 2;
		} else {
			ea = vcpu_get_gpr(v, rm16_base[rm]) + (rm16_index[rm] >= 0 ? vcpu_get_gpr(v, (unsigned)rm16_index[rm]) : 0);
			if (rm == 2 || rm == 3 || rm == 6)
				dseg = VCPU_SS;
		}
	} else if (rm == 4) {                            /* SIB */
		unsigned sib, base, index;

		if (i >= n)
			return -1;
		sib = insn[i++];
		base = (sib & 7) | (rex & 1 ? 8 : 0);
		index = ((sib >> 3) & 7) | (rex & 2 ? 8 : 0);
		if (index != 4)
			ea += vcpu_get_gpr(v, index) << (sib >> 6);
		if ((sib & 7) == 5 && mod == 0) {
			if (i + 4 > n)
				return -1;
			ea += (uint64_t)(int64_t)(int32_t)(insn[i] | insn[i + 1] << 8 | insn[i + 2] << 16 |
							   (uint32_t)insn[i + 3] << 24);
			i += 4;
		} else {
			ea += vcpu_get_gpr(v, base);
			if ((base & 7) == 4 || (base & 7) == 5)
				dseg = VCPU_SS;
		}
	} else if (rm == 5 && mod == 0) {                /* disp32: RIP-relative in 64-bit mode */
		if (i + 4 > n)
			return -1;
		ea = (uint64_t)(int64_t)(int32_t)(insn[i] | insn[i + 1] << 8 | insn[i + 2] << 16 |
						  (uint32_t)insn[i + 3] << 24);
		i += 4;
		if (mode == MODE_LONG64)
			ea += vmcb_of(v)->save.rip + i;
	} else {
		ea = vcpu_get_gpr(v, rm | (rex & 1 ? 8 : 0));
		if (rm == 5)
			dseg = VCPU_SS;
	}
	if (mod == 1 || (mod == 2 && asz == 2)) {      /* disp8, disp16 */
		unsigned w = mod == 1 ? 1 : 2;

		if (i + w > n)
			return -1;
		ea += w == 1 ? (uint64_t)(int64_t)(int8_t)insn[i] : (uint64_t)(int64_t)(int16_t)(insn[i] | insn[i + 1] << 8);
		i += w;
	} else if (mod == 2) {                           /* disp32 */
		if (i + 4 > n)
			return -1;
		ea += (uint64_t)(int64_t)(int32_t)(insn[i] | insn[i + 1] << 8 | insn[i + 2] << 16 |
						   (uint32_t)insn[i + 3] << 24);
		i += 4;
	}
	ea &= asz == 8 ? ~0ull : asz == 4 ? 0xffffffffull : 0xffffull;
	if (seg < 0)
		seg = dseg;
	if (mode == MODE_LONG64)
		d->la = seg == VCPU_FS || seg == VCPU_GS ? ea + vcpu_get_seg(v, (enum vcpu_seg_reg)seg).base : ea;
	else
		d->la = (ea + vcpu_get_seg(v, (enum vcpu_seg_reg)seg).base) & 0xffffffffull;
	d->seg = seg;
	d->len = i;
	return 0;
}

/* INVLPG (#VMEXIT 79h): the address from EXITINFO1 with decode assists (15.8.3), else decoded; the
 * length for the caller's skip. A form not decoded drops the whole shadow where nRIP gives the length:
 * INVLPG may invalidate more than asked, never less (SDM Vol. 3A, 4.10.4.1); without nRIP the guest is
 * stopped. RETIRED or VCPU_STOPPED. */
int svm_spt_exit_invlpg(struct vcpu *v, unsigned *len)
{
	struct vmcb *b = vmcb_of(v);
	uint8_t insn[DECODE_MAX_LEN];
	unsigned n = svm_fetch_insn(v, insn, sizeof(insn));
	struct grp7 d;

	if (grp7_decode(v, insn, n, guest_mode(v), 7, &d) || d.reg >= 0) {
		if (!(svm_caps.nrip_save && b->ctl.next_rip))
			return vm_stop(v, "INVLPG by an instruction not decoded (bytes %02x %02x %02x %02x), rip 0x%lx",
				       n > 0 ? insn[0] : 0, n > 1 ? insn[1] : 0, n > 2 ? insn[2] : 0, n > 3 ? insn[3] : 0,
				       b->save.rip);
		*len = (unsigned)(b->ctl.next_rip - b->save.rip);
		if (svm_caps.decode_assists)
			return vcpu_spt_invlpg(v, b->ctl.exit_info1);
		shadow_flush_all(&v->sh);
		vcpu_spt_flush_dropped(v);
		return RETIRED;
	}
	*len = d.len;
	return vcpu_spt_invlpg(v, svm_caps.decode_assists ? b->ctl.exit_info1 : d.la);
}

/* SMSW (0F 01 /4) at a CR0 read #VMEXIT (the CR0 read intercept takes SMSW too: APM Vol. 2, 15.9; with
 * decode assists EXITINFO1 bit 63, "MOV CRx", is then 0: 15.8.1). It stores CR0[15:0], the guest's
 * (SDM Vol. 2B, SMSW; APM Vol. 3, SMSW): into a 16-bit register keeping its upper bits, into a 32- or
 * 64-bit register whole (bits 31:16 are undefined for the SDM; AMD CPUs, QEMU and Bochs store CR0's),
 * or as a word into memory, written through the guest's page tables with its A/D bits set and the
 * #PF it would take injected. A word crossing a page is checked on both pages before either is
 * written. Not modelled: segment limits and types, alignment checks (as for string I/O, vcpu/strio.c).
 * CR4.UMIP's #GP at CPL > 0 comes before the intercept on the CPU (UMIP is not offered to guests).
 * RETIRED with *len, HANDLED (a fault injected) or VCPU_STOPPED. */
int svm_spt_exit_smsw(struct vcpu *v, unsigned *len)
{
	uint8_t insn[DECODE_MAX_LEN];
	unsigned n = svm_fetch_insn(v, insn, sizeof(insn)), first;
	uint64_t cr0 = vcpu_get_cr0(v), gpa[2];
	uint16_t msw = (uint16_t)cr0;
	struct gpt_ctx c;
	struct grp7 d;

	if (grp7_decode(v, insn, n, guest_mode(v), 4, &d))
		return vm_stop(v, "CR0 read by an instruction not decoded (bytes %02x %02x %02x %02x), rip 0x%lx",
			       n > 0 ? insn[0] : 0, n > 1 ? insn[1] : 0, n > 2 ? insn[2] : 0, n > 3 ? insn[3] : 0,
			       vmcb_of(v)->save.rip);
	*len = d.len;
	if (d.reg >= 0) {
		uint64_t old = vcpu_get_gpr(v, (unsigned)d.reg);

		vcpu_set_gpr(v, (unsigned)d.reg, d.osz == 2 ? (old & ~0xffffull) | msw : d.osz == 4 ? (uint32_t)cr0 : cr0);
		return RETIRED;
	}
	vcpu_gpt_context(v, &c);            /* with the locked compare-exchange for the A/D bits */
	c.rflags = vcpu_get_rflags(v);
	first = 0x1000 - (unsigned)(d.la & 0xfff);
	for (unsigned i = 0; i < (first < 2 ? 2u : 1u); i++) {
		uint64_t a = i ? d.la + 1 : d.la;
		struct gpt_result r;

		if (guest_mode(v) != MODE_LONG64)
			a &= 0xffffffffull;
		switch (gpt_translate(&c, a, GPT_ACC_WRITE | GPT_ACC_SET_AD | (c.cpl == 3 ? GPT_ACC_USER : 0), &r)) {
		case GPT_OK:
			gpa[i] = r.gpa;
			break;
		case GPT_NOT_PRESENT:
		case GPT_RESERVED:
		case GPT_PERM:
			vcpu_set_cr2(v, a);
			vcpu_inject_exception(v, VEC_PF, true, r.pf_error);
			return HANDLED;
		case GPT_NONCANONICAL:           /* #SS(0) through SS, else #GP(0) (SDM Vol. 3A, 3.3.7.1) */
			vcpu_inject_exception(v, d.seg == VCPU_SS ? VEC_SS : VEC_GP, true, 0);
			return HANDLED;
		case GPT_RACE:
			return HANDLED;             /* the entries changed under the update: again */
		default:
			return vm_stop(v, "SMSW to guest-linear 0x%lx: its page tables are outside guest RAM, rip 0x%lx",
				       a, vmcb_of(v)->save.rip);
		}
	}
	if (first < 2 ? gmem_write(&v->vm->mem, gpa[0], &msw, 1) || gmem_write(&v->vm->mem, gpa[1], (uint8_t *)&msw + 1, 1)
		      : gmem_write(&v->vm->mem, gpa[0], &msw, 2))
		return vm_stop(v, "SMSW to GPA 0x%lx: outside guest RAM, rip 0x%lx", gpa[0], vmcb_of(v)->save.rip);
	return RETIRED;
}
