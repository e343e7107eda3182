/* The control-register exits: MOV to CR0/CR4 and LMSW with every architectural #GP, IA-32e mode
 * entry and exit, PAE PDPTEs, CR8 as the virtual APIC's TPR (SDM Vol. 2B, MOV--Move to/from Control
 * Registers; Vol. 3A, 2.5 and 10.8.5), and XSETBV (Vol. 2C). */
#include "gmem/gmem.h"
#include "vcpu/handler.h"
#include "vcpu/spt.h"

#define CR4_SMXE  (1ull << 14)   /* GETSEC enabled (SDM Vol. 3A, 2.5); reserved with SMX hidden */

/* Loads the four PAE PDPTEs from guest memory into the CPU, as MOV to CR0 would have (SDM Vol. 3A,
 * 4.4.1). */
static __attribute__((noinline)) bool load_pdptes(struct vcpu *v, uint64_t cr3)
{
	uint64_t pdpte[4];

	/* Each entry one 8-byte read, as the CPU's (gmem_read: aligned 8 bytes are one load), so that
	 * another vCPU's store to it is seen whole or not at all. */
	for (unsigned i = 0; i < 4; i++)
		if (gmem_read(&v->vm->mem, (cr3 & 0xffffffe0) + 8 * i, &pdpte[i], 8))
			return false;
	/* A present PDPTE with reserved bits (2:1, 8:5, and above the physical-address width) is a #GP
	 * for the MOV that loads it (SDM Vol. 3A, 4.4.1, Table 4-8); VM entry would refuse it. */
	for (unsigned i = 0; i < 4; i++)
		if ((pdpte[i] & 1) && (pdpte[i] & (0x1e6ull | ~((1ull << cpu_phys_bits()) - 1))))
			return false;
	vcpu_set_pdptes(v, pdpte);
	return true;
}

static __attribute__((noinline)) int guest_write_cr0(struct vcpu *v, uint64_t val)
{
	uint64_t old = vcpu_get_cr0(v), efer = vcpu_get_efer(v), cr4 = vcpu_get_cr4(v);
	bool cs_l = vcpu_get_seg(v, VCPU_CS).attr & SEG_ATTR_L;
	bool cs64 = (efer & EFER_LMA) && cs_l;                                          /* 64-bit mode */
	bool pg_on = (val & CR0_PG) && !(old & CR0_PG), pg_off = !(val & CR0_PG) && (old & CR0_PG);

	/* MOV to CR0 raises #GP for (SDM Vol. 2B, MOV--Move to/from Control Registers): a bit of 63:32
	 * set (in 64-bit mode; elsewhere the operand has 32 bits), PG without PE, NW without CD, clearing
	 * PG with CR4.PCIDE set or in 64-bit mode (IA-32e mode is left from compatibility mode only, SDM
	 * Vol. 3A, 10.8.5.4), entering IA-32e mode from a 64-bit code segment. The exit comes before
	 * these checks on both vendors (SDM Vol. 3C, 26.1.1; AMD APM Vol. 2, 15.9, Table 15-7: a CR0
	 * write is intercepted before the normal exception checks). Letting any through would only make
	 * the next VM entry or VMRUN fail (APM Vol. 2, 15.5.1: CR0[63:32] not zero is an illegal state). */
	if ((val >> 32) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)) ||
	    (pg_off && (cr4 & CR4_PCIDE)) || (pg_off && cs64) ||
	    (pg_on && (efer & EFER_LME) && cs_l)) {
		inject_gp(v);
		return HANDLED;
	}
	/* IA-32e mode is entered and left through CR0.PG with EFER.LME set (SDM Vol. 3A, 10.8.5). */
	if (pg_on && (efer & EFER_LME)) {
		if (!(cr4 & CR4_PAE)) {
			inject_gp(v);
			return HANDLED;
		}
		vcpu_set_efer(v, efer | EFER_LMA);
	} else if (pg_off && (efer & EFER_LMA)) {
		vcpu_set_efer(v, efer & ~EFER_LMA);
	} else if (pg_on && (cr4 & CR4_PAE) && vcpu_pdptes_at_mov()) {
		if (!load_pdptes(v, vcpu_get_cr3(v))) {
			inject_gp(v);   /* unreadable or reserved PDPTEs: the MOV to CR0 faults */
			return HANDLED;
		}
	}
	vcpu_set_cr0(v, val);
	return RETIRED;
}

int vcpu_handle_cr(struct vcpu *v, const struct vcpu_exit *e)
{
	unsigned cr = e->cr.cr, type = e->cr.access;
	uint64_t val = vcpu_get_gpr(v, e->cr.gpr);

	if (cr == 8 && type <= VCPU_CR_READ) {   /* the virtual APIC's TPR, never the real APIC's */
		if (type == VCPU_CR_READ) {
			vcpu_set_gpr(v, e->cr.gpr, vlapic_get_cr8(&v->lapic));
		} else if (val & ~0xfull) {
			inject_gp(v);           /* SDM Vol. 3A, 2.5: CR8 bits 63:4 are reserved */
			return HANDLED;
		} else {
			vlapic_set_cr8(&v->lapic, val);
		}
		return RETIRED;
	} else if (type == VCPU_CR_READ && (cr == 0 || cr == 4)) {
		/* Only where the back end has no read shadows (SVM with paging=shadow, svm/spt.c): the
		 * guest's own value. */
		vcpu_set_gpr(v, e->cr.gpr, cr == 0 ? vcpu_get_cr0(v) : vcpu_get_cr4(v));
		return RETIRED;
	} else if (type == VCPU_CR_WRITE && cr == 0) {
		if (!guest_long_mode(v))
			val &= 0xffffffff;
		return guest_write_cr0(v, val);
	} else if (type == VCPU_CR_WRITE && cr == 4) {
		/* No nested VMX; no SMX (hidden in CPUID, so SMXE is reserved); no bit whose feature the
		 * guest's CPUID hides (vcpu_cr4_allowed), nor one the CPU lacks but PCIDE on shadow paging,
		 * whose PCIDs are the shadow cache's own (vcpu/spt.c, whatever the CPU has); PAE stays on
		 * in IA-32e mode (SDM Vol. 3A, 2.5); PCIDE only in IA-32e mode, and set only while
		 * CR3[11:0] = 0 (Vol. 3A, 4.10.1). */
		bool lm = guest_long_mode(v);
		uint64_t settable = (vcpu_cr4_settable() | (vcpu_spt_on(v) ? CR4_PCIDE : 0)) & vcpu_cr4_allowed(v);
		bool pcide_on = (val & CR4_PCIDE) && !(vcpu_get_cr4(v) & CR4_PCIDE);

		if (!lm)
			val &= 0xffffffff;
		if ((val & CR4_VMXE) || (val & CR4_SMXE) || (val & ~settable) ||
		    (lm && !(val & CR4_PAE)) || ((val & CR4_PCIDE) && !lm) ||
		    (pcide_on && (vcpu_get_cr3(v) & 0xfff))) {
			inject_gp(v);
			return HANDLED;
		}
		vcpu_set_cr4(v, val);
		return RETIRED;
	} else if (type == VCPU_CR_CLTS) {   /* clears CR0.TS (SDM Vol. 2A, CLTS); CPL > 0 #GPs first */
		return guest_write_cr0(v, vcpu_get_cr0(v) & ~CR0_TS);
	} else if (type == VCPU_CR_LMSW) {   /* only PE, MP, EM, TS; it cannot clear PE */
		uint64_t old = vcpu_get_cr0(v), src = e->cr.lmsw & 0xf;

		return guest_write_cr0(v, (old & ~0xeull) | (src & 0xe) | ((old | src) & 1));
	}
	return vm_stop(v, "unexpected control-register access (CR%u, access %u), rip 0x%lx", cr, type,
		       vcpu_get_rip(v));
}

/* Is `x` an XCR0 value XSETBV accepts? SDM Vol. 1, 13.3 and Vol. 2C, XSETBV: x87 always on; no bit
 * outside what guests may use; AVX needs SSE; MPX's two bits together; AVX-512's three together and
 * with AVX; AMX's two together. A value the CPU refuses would #GP in the host. */
static bool xcr0_valid(uint64_t x)
{
	uint64_t avx512 = 7ull << 5, mpx = 3ull << 3, amx = 3ull << 17;

	return (x & 1) && !(x & ~vcpu_xcr0_allowed) && (!(x & 4) || (x & 2)) &&
	       ((x & mpx) == 0 || (x & mpx) == mpx) &&
	       ((x & avx512) == 0 || ((x & avx512) == avx512 && (x & 6) == 6)) &&
	       ((x & amx) == 0 || (x & amx) == amx);
}

int vcpu_handle_xsetbv(struct vcpu *v)
{
	uint64_t val = (v->regs.rdx << 32) | (uint32_t)v->regs.rax;

	if ((uint32_t)v->regs.rcx != 0 || !xcr0_valid(val) || !(vcpu_get_cr4(v) & CR4_OSXSAVE)) {
		inject_gp(v);
		return HANDLED;
	}
	asm volatile("xsetbv" : : "c"(0), "a"((uint32_t)val), "d"((uint32_t)(val >> 32)));
	v->xcr0 = val;
	return RETIRED;
}
