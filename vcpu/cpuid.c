/* The CPUID exit: what a guest sees of the processor is cpuid_policy.c's allow-list over the host's
 * leaves (SDM Vol. 2A, CPUID); this file gathers its inputs (the host's leaf, the vCPU's state). */
#include "arch/x86/spec.h"
#include "arch/x86/time.h"
#include "vcpu/cpuid_policy.h"
#include "vcpu/handler.h"
#include "vcpu/spt.h"

/* What the host and the back end offer, settled at the first CPUID exit (after the probe and
 * vcpu_global_init, which settle the back end's capabilities and vcpu_xcr0_allowed). */
static struct cpuid_cfg host_cfg;

static void settle_host_cfg(void)
{
	host_cfg.host_max_ext = cpuid(0x80000000u, 0).eax;
	host_cfg.xcr0_allowed = vcpu_xcr0_allowed;
	host_cfg.tsc_khz = tsc_khz;
	host_cfg.invpcid = vcpu_offers() & VCPU_OFFERS_INVPCID;
	host_cfg.rdtscp = vcpu_offers() & VCPU_OFFERS_RDTSCP;
	host_cfg.tsc_adjust = vcpu_tsc_adjust_emulated();
	host_cfg.spec_7_edx = spec_guest_cpuid7_edx();
	host_cfg.host_max_basic = cpuid(0, 0).eax;   /* last: non-zero says the rest is settled */
}

/* The exit paths look in v->cpuid first (vcpu_cpuid_lookup); what is answered here is kept there
 * when it stays the same for the vCPU's life (vcpu_cpuid_keepable). */
int vcpu_handle_cpuid(struct vcpu *v)
{
	struct cpuid_regs host = { 0, 0, 0, 0 }, r;
	uint32_t leaf = v->regs.rax, sub = v->regs.rcx, data_leaf;
	struct cpuid_cfg c;

	if (leaf - HV_CPUID_BASE <= HV_CPUID_TIMING - HV_CPUID_BASE) {
		r = cpuid_hv_leaf(tsc_khz, leaf);
		data_leaf = leaf;
		goto done;
	}
	if (!host_cfg.host_max_basic)
		settle_host_cfg();
	c = host_cfg;
	c.index = v->index;
	c.nvcpus = v->vm->nvcpus;
	c.apic_enabled = v->lapic.base & VLAPIC_BASE_EN;
	c.cr4 = vcpu_get_cr4(v);
	c.pcid_emulated = vcpu_spt_on(v);
	data_leaf = cpuid_guest_leaf(&c, leaf);
	if (cpuid_needs_host(&c, data_leaf))
		host = cpuid(data_leaf, sub);
	r = cpuid_guest(&c, data_leaf, sub, host);
done:
	if (vcpu_cpuid_keepable(data_leaf))
		vcpu_cpuid_keep(&v->cpuid, leaf, sub, r.eax, r.ebx, r.ecx, r.edx);
	v->regs.rax = r.eax;
	v->regs.rbx = r.ebx;
	v->regs.rcx = r.ecx;
	v->regs.rdx = r.edx;
	return RETIRED;
}
