/* The vendor interface of the neutral vCPU logic on SVM (vcpu/guest.h: svm_NAME for each vcpu_NAME):
 * the guest state in the vCPU's VMCB (AMD APM Vol. 2, Appendix B, Table B-2), in neutral
 * formats. The general registers but RAX and RSP are in v->regs (svm_enter); RAX is copied from the
 * VMCB into v->regs.rax after each #VMEXIT and back before VMRUN (svm/vcpu.c). */
#include "arch/x86/cpu.h"
#include "arch/x86/debugreg.h"
#include "arch/x86/trap.h"
#include "lib/string.h"
#include "pmm/pmm.h"
#include "svm/caps.h"
#include "svm/spt.h"
#include "svm/svm.h"
#include "vcpu/exit.h"
#include "svm/vmcb.h"


void svm_flush_asid(struct vcpu *v)
{
	/* TLB_CONTROL (15.16.1): this ASID only where the CPU can (FlushByAsid), else every ASID. */
	vmcb_of(v)->ctl.tlb_control = svm_caps.flush_by_asid ? VMCB_TLB_FLUSH_ASID : VMCB_TLB_FLUSH_ALL;
}

int svm_slice_left(struct vcpu *v)
{
	/* The host's APIC timer counts real time: nothing to re-arm, only the slice's end to check. */
	return rdtsc() >= v->slice_end ? VCPU_PREEMPTED : HANDLED;
}

static uint64_t *gpr_slot(struct vcpu *v, unsigned n)
{
	struct guest_regs *r = &v->regs;
	uint64_t *regs[16] = { &r->rax, &r->rcx, &r->rdx, &r->rbx, &vmcb_of(v)->save.rsp, &r->rbp, &r->rsi,
			       &r->rdi, &r->r8, &r->r9, &r->r10, &r->r11, &r->r12, &r->r13, &r->r14, &r->r15 };
	return regs[n & 15];
}

uint64_t svm_get_gpr(struct vcpu *v, unsigned n)
{
	return *gpr_slot(v, n);
}

void svm_set_gpr(struct vcpu *v, unsigned n, uint64_t val)
{
	*gpr_slot(v, n) = val;
}

uint64_t svm_get_rip(struct vcpu *v)
{
	return vmcb_of(v)->save.rip;
}

uint64_t svm_get_rflags(struct vcpu *v)
{
	return vmcb_of(v)->save.rflags;
}

void svm_set_rflags(struct vcpu *v, uint64_t rflags)
{
	vmcb_of(v)->save.rflags = rflags;
}

/* The single-step trap after an instruction the hypervisor completed for the guest. The CPU raises
 * #DB with DR6.BS after every instruction that began with RFLAGS.TF = 1 (SDM Vol. 3B, 18.3.1.4; not
 * after the one that set TF), and after each iteration of a REP string instruction (vcpu/strio.c
 * exits after each then). An intercepted instruction does not run (APM Vol. 2, 15.9), so the CPU
 * raises nothing for it and the trap is the hypervisor's to raise, as VMX's BS in the pending debug
 * exceptions (vmx/guest.c). SVM has no pending-debug-exceptions field: DR6 (state save 628h, Table
 * B-2, which VMRUN loads) gets BS, B0-B3 cleared as by a #DB (arch/x86/debugreg.h), and #DB goes in
 * through EVENTINJ (15.20) as a trap: RIP is already past the instruction, RF is as the caller left
 * it (clear after a whole instruction, set after an iteration that is not the last, SDM Vol. 3B,
 * 18.3.1.1). TF is read after the instruction: none the hypervisor emulates writes it (no POPF, IRET
 * or task switch is emulated), so it is TF as the instruction began; an instruction in an STI or MOV
 * SS shadow is stepped too, its #DB after it (SDM Vol. 3A, 6.8.3: MOV SS only delays a #DB to the
 * end of the next instruction). Not raised: when the TF is the hypervisor's own (the step over an
 * NMI handler's IRET, NMI_STEP without NMI_GUEST_TF, svm/vcpu.c), and when an event is in EVENTINJ
 * already (an exception the handler raised instead: the instruction did not complete; an event due
 * before it is taken first, and the guest's handler then runs without TF). */
static void single_step_trap(struct vcpu *v)
{
	struct vmcb *b = vmcb_of(v);
	uint8_t nmi = svm_of(v)->nmi_block;

	if (!(b->save.rflags & RFLAGS_TF) || ((nmi & NMI_STEP) && !(nmi & NMI_GUEST_TF)))
		return;
	if (b->ctl.event_inj & VMCB_EVT_VALID)
		return;
	b->save.dr6 = dr6_after_db(b->save.dr6, DR6_BS);
	svm_inject_exception(v, VEC_DB, false, 0);
}

/* svm_finish's rare part (svm/svm.h): RF is clear once an instruction completes (SDM Vol. 3B,
 * 18.3.1.1), and with RFLAGS.TF the single-step trap follows. */
void svm_finish_rest(struct vcpu *v)
{
	vmcb_of(v)->save.rflags &= ~RFLAGS_RF;
	single_step_trap(v);
}

void svm_finish_instruction(struct vcpu *v)
{
	svm_finish(v, vmcb_of(v));
}

/* Straight from the VMCB: CR0.PE is the guest's with nested paging and with shadow paging alike
 * (paged real mode keeps it, svm/spt.c), EFER.LMA too (LME only with LMA there); the CS attribute
 * bits are L (9) and D (10), APM Vol. 2, 15.5.1 and Appendix B. */
enum cpu_mode svm_get_mode(struct vcpu *v)
{
	const struct vmcb *b = vmcb_of(v);

	return cpu_mode_of(b->save.cr0 & CR0_PE, b->save.rflags & RFLAGS_VM, b->save.efer & EFER_LMA,
			   b->save.cs.attrib & (1u << 9), b->save.cs.attrib & (1u << 10));
}

void svm_skip(struct vcpu *v, unsigned len)
{
	struct vmcb *b = vmcb_of(v);

	b->save.rip += len;
	svm_finish(v, b);
}

/* With paging=shadow the VMCB holds the CPU's CR0, CR3 (the shadow root), CR4 and EFER; the guest's
 * own are kept aside (svm/spt.c). */
uint64_t svm_get_cr0(struct vcpu *v)
{
	return vcpu_spt_on(v) ? svm_of(v)->gcr0 : vmcb_of(v)->save.cr0;
}

uint64_t svm_get_cr3(struct vcpu *v)
{
	return vcpu_spt_on(v) ? v->gcr3 : vmcb_of(v)->save.cr3;
}

uint64_t svm_get_cr4(struct vcpu *v)
{
	return vcpu_spt_on(v) ? svm_of(v)->gcr4 : vmcb_of(v)->save.cr4;
}

uint64_t svm_get_efer(struct vcpu *v)
{
	if (vcpu_spt_on(v))
		return v->gefer;
	return vmcb_of(v)->save.efer & ~EFER_SVME;      /* the guest does not see SVM */
}

/* CR0 and CR4 are the guest's own under nested paging (no bits owned by the host); a change of the
 * paging bits drops its ASID's translations (APM Vol. 2, 5.5.3; 15.16.1). With paging=shadow the
 * CPU's are derived from them, and a change of the paging controls re-roots the shadow, which
 * flushes (vcpu_spt_controls_changed). */
void svm_set_cr0(struct vcpu *v, uint64_t cr0)
{
	struct vmcb *b = vmcb_of(v);

	if (vcpu_spt_on(v)) {
		svm_of(v)->gcr0 = cr0;
		b->save.cr0 = svm_spt_cr0_real(cr0);
		b->save.cr4 = svm_spt_cr4_real(svm_of(v)->gcr4, cr0);   /* SMEP/SMAP follow PG */
		vcpu_spt_controls_changed(v);
		return;
	}

	if ((b->save.cr0 ^ cr0) & (CR0_PG | CR0_PE | (1ull << 16)))   /* PG, PE, WP */
		svm_flush_asid(v);
	b->save.cr0 = cr0;
}

void svm_set_cr4(struct vcpu *v, uint64_t cr4)
{
	struct vmcb *b = vmcb_of(v);

	if (vcpu_spt_on(v)) {
		svm_of(v)->gcr4 = cr4;
		b->save.cr4 = svm_spt_cr4_real(cr4, svm_of(v)->gcr0);
		vcpu_spt_controls_changed(v);
		return;
	}

	if ((b->save.cr4 ^ cr4) & (CR4_PGE | CR4_PAE | (1ull << 4) | CR4_PCIDE | (1ull << 20)))
		svm_flush_asid(v);
	b->save.cr4 = cr4;
}

/* CR2 for a #PF the hypervisor injects: the VMCB's (state save 240h, which VMRUN loads, Table B-2)
 * and v->regs.cr2, which svm_vcpu_run copies into it before each VMRUN. */
void svm_set_cr2(struct vcpu *v, uint64_t cr2)
{
	v->regs.cr2 = cr2;
	vmcb_of(v)->save.cr2 = cr2;
}

void svm_set_efer(struct vcpu *v, uint64_t efer)
{
	if (vcpu_spt_on(v)) {
		bool nxe = (efer ^ v->gefer) & EFER_NXE;

		v->gefer = efer;
		vmcb_of(v)->save.efer = svm_spt_efer_real(efer);
		if (nxe)             /* LMA changes come with CR0.PG's (vcpu/cr.c): re-rooted there */
			vcpu_spt_controls_changed(v);
		return;
	}
	vmcb_of(v)->save.efer = efer | EFER_SVME;       /* VMRUN needs the guest's SVME (15.5.1) */
}

/* The CR4 bits this CPU has (CPUID; APM Vol. 2, 3.1.3, Figure 3-7): VMRUN refuses a guest CR4 with
 * any other (15.5.1). VMXE and SMXE are never among them on AMD. */
uint64_t svm_cr4_settable(void)
{
	static uint64_t m;
	struct cpuid_regs l1, l7;

	if (m)
		return m;
	l1 = cpuid(1, 0);
	l7 = cpuid(0, 0).eax >= 7 ? cpuid(7, 0) : (struct cpuid_regs){ 0, 0, 0, 0 };
	m = 0x7ff;                               /* VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT */
	if (l7.ecx & (1u << 2))
		m |= 1ull << 11;                 /* UMIP */
	if (l7.ebx & (1u << 0))
		m |= 1ull << 16;                 /* FSGSBASE */
	if (l1.ecx & (1u << 17))
		m |= CR4_PCIDE;
	if (l1.ecx & (1u << 26))
		m |= CR4_OSXSAVE;
	if (l7.ebx & (1u << 7))
		m |= 1ull << 20;                 /* SMEP */
	if (l7.ebx & (1u << 20))
		m |= 1ull << 21;                 /* SMAP */
	if (l7.ecx & (1u << 3))
		m |= CR4_PKE;
	return m;
}

/* PAE paging's PDPTEs: the VMCB holds none (under nested paging the CPU reads them from guest memory
 * through the nested table, 15.25.10): read where CR3 points. Bits 8:5 are left out: they are the
 * entry's flags in the other paging levels (A at 5) and reserved in a PAE PDPTE (SDM Vol. 3A, Table
 * 4-8), which the VMX side's walk checks, as the CPU did when it loaded them; here the CPU walks the
 * entry in memory each time, and QEMU 7.2's software SVM sets A in it (the hostile guest's PDPTE 0
 * 0x116001 read back as 0x116021: most likely it walks a legacy-PAE guest's tables as 4-level ones
 * under nested paging, PDPTE 0 as a PML4E, which identity maps low addresses by chance). The entry
 * the CPU translated the guest's instruction with must not then be refused by the emulated walk
 * (vcpu/mmio.c fetching that instruction to decode an MMIO access: 'cannot fetch the instruction'). */
uint64_t svm_get_pdpte(struct vcpu *v, unsigned i)
{
	uint64_t e = 0;

	if (vcpu_spt_on(v))                      /* those the shadow loaded with the guest's CR3 */
		return v->sh.g.pdpte[i & 3];

	gmem_read(&v->vm->mem, (vmcb_of(v)->save.cr3 & 0xffffffe0ull) + 8 * (i & 3), &e, sizeof(e));
	return e & ~0x1e0ull;
}

void svm_set_pdptes(struct vcpu *v, const uint64_t pdpte[4])
{
	(void)v;
	(void)pdpte;                             /* nothing cached: see svm_get_pdpte */
}

/* AMD has no PDPTE registers to load at MOV to CR0/CR3/CR4: with nested paging the guest's PDPEs are
 * read from its memory like the other levels' entries (APM Vol. 2, 15.25.10), and a reserved bit in a
 * present PDPE is a #PF with the RSV bit of the error code when a walk uses it (APM Vol. 2, 5.5.3 and
 * 8.4.2), not a #GP of the MOV as on Intel (SDM Vol. 3A, 4.4.1). The MOV to CR0 that turns legacy PAE
 * paging on therefore succeeds whatever the PDPEs hold. */
bool svm_pdptes_at_mov(void)
{
	return false;
}

uint64_t svm_get_pat(struct vcpu *v)
{
	return vmcb_of(v)->save.g_pat;
}

void svm_set_pat(struct vcpu *v, uint64_t pat)
{
	vmcb_of(v)->save.g_pat = pat;            /* G_PAT under nested paging (15.25.8) */
}

bool svm_tsc_adjust_emulated(void)
{
	return true;                             /* TSC_OFFSET is in every VMCB (15.5.1) */
}

void svm_set_tsc_offset(struct vcpu *v, uint64_t offset)
{
	vmcb_of(v)->ctl.tsc_offset = offset;     /* TSC_OFFSET, control offset 050h (15.5.1, Table B-1) */
}

/* The VMCB's 12-bit attribute (Table B-2: bits 7:0 descriptor bits 47:40, 11:8 bits 55:52) to the
 * neutral layout (vcpu/seg.h: descriptor bits 55:40 shifted down by 40). */
struct vcpu_seg svm_get_seg(struct vcpu *v, enum vcpu_seg_reg r)
{
	struct vmcb *b = vmcb_of(v);
	const struct vmcb_seg *segs[VCPU_NSEGS] = { &b->save.es, &b->save.cs, &b->save.ss, &b->save.ds,
						    &b->save.fs, &b->save.gs, &b->save.ldtr, &b->save.tr };
	const struct vmcb_seg *s = segs[r < VCPU_NSEGS ? r : VCPU_ES];
	uint16_t attr = (uint16_t)((s->attrib & 0xff) | ((s->attrib & 0xf00) << 4));

	return (struct vcpu_seg){ s->base, s->limit, s->selector, attr, !(attr & SEG_ATTR_P) };
}

unsigned svm_get_cpl(struct vcpu *v)
{
	return vmcb_of(v)->save.cpl;             /* CPL, state save offset 0CBh */
}

/* An exception for the next VMRUN, through EVENTINJ (15.20): no error code in real mode (none is
 * pushed there); a fault sets RF in the image it pushes (SDM Vol. 3A, 17.3.1.1), traps (#DB, #BP,
 * #OF) do not. Entering the #DB handler clears DR7.GD, so that it may use the debug registers (SDM
 * Vol. 3B, 18.2.4): done here for the #DB given (the general-detect #DB the intercept reflects,
 * and the single-step trap), whatever the CPU did to the VMCB's DR7 before the intercept (KVM
 * clears GD when it injects #DB on both vendors). */
void svm_inject_exception(struct vcpu *v, unsigned vector, bool has_code, uint32_t code)
{
	struct vmcb *b = vmcb_of(v);

	if (!(b->save.cr0 & CR0_PE))
		has_code = false;
	if (vector != VEC_DB && vector != 3 && vector != 4)
		b->save.rflags |= RFLAGS_RF;
	if (vector == VEC_DB)
		b->save.dr7 &= ~(uint64_t)DR7_GD;
	b->ctl.event_inj = vector | VMCB_EVT_TYPE_EXC | VMCB_EVT_VALID |
			   (has_code ? VMCB_EVT_ERR_VALID | (uint64_t)code << 32 : 0);
}

bool svm_event_queued(struct vcpu *v)
{
	return vmcb_of(v)->ctl.event_inj & VMCB_EVT_VALID;
}

unsigned svm_offers(void)
{
	return 0;        /* INVPCID and RDTSCP are not intercepted, nor shown in CPUID yet */
}

/* The APIC is emulated on SVM (no AVIC): nothing follows its mode. */
void svm_apic_base_changed(struct vcpu *v)
{
	(void)v;
}
