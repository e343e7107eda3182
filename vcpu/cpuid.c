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
	host_cfg.spec_80000008_ebx = spec_guest_cpuid80000008_ebx();
	host_cfg.host_max_basic = cpuid(0, 0).eax;   /* last: non-zero says the rest is settled */
}

/* What `v` reads with CPUID (`leaf`, `sub`) of the leaves the policy makes; *data_leaf the leaf
 * whose data it is (cpuid_guest_leaf). */
static struct cpuid_regs guest_cpuid(struct vcpu *v, uint32_t leaf, uint32_t sub, uint32_t *data_leaf)
{
	struct cpuid_regs host = { 0, 0, 0, 0 };
	struct cpuid_cfg c;

	if (!host_cfg.host_max_basic)
		settle_host_cfg();
	c = host_cfg;
	c.index = v->index;
	c.nvcpus = v->vm->nvcpus;
	c.apic_enabled = v->lapic.base & VLAPIC_BASE_EN;
	c.cr4 = vcpu_get_cr4(v);
	c.pcid_emulated = vcpu_spt_on(v);
	c.no_pkeys = vcpu_spt_on(v);
	*data_leaf = cpuid_guest_leaf(&c, leaf);
	if (cpuid_needs_host(&c, *data_leaf))
		host = cpuid(*data_leaf, sub);
	return cpuid_guest(&c, *data_leaf, sub, host);
}

/* The exit paths look in v->cpuid first (vcpu_cpuid_lookup); what is answered here is kept there
 * when it stays the same for the vCPU's life (vcpu_cpuid_keepable). */
int vcpu_handle_cpuid(struct vcpu *v)
{
	struct cpuid_regs r;
	uint32_t leaf = v->regs.rax, sub = v->regs.rcx, data_leaf;

	if (leaf - HV_CPUID_BASE <= HV_CPUID_TIMING - HV_CPUID_BASE) {
		r = cpuid_hv_leaf(tsc_khz, leaf);
		data_leaf = leaf;
		goto done;
	}
	r = guest_cpuid(v, leaf, sub, &data_leaf);
done:
	if (vcpu_cpuid_keepable(data_leaf))
		vcpu_cpuid_keep(&v->cpuid, leaf, sub, r.eax, r.ebx, r.ecx, r.edx);
	v->regs.rax = r.eax;
	v->regs.rbx = r.ebx;
	v->regs.rcx = r.ecx;
	v->regs.rdx = r.edx;
	return RETIRED;
}

/* The features that decide it (the host's, the back end's, paging=shadow's) stay for the vCPU's life,
 * so it is computed once; never 0 (PCE is always in it). */
uint64_t vcpu_cr4_allowed(struct vcpu *v)
{
	uint32_t data_leaf;

	if (!v->cr4_allowed)
		v->cr4_allowed = cpuid_cr4_allowed(guest_cpuid(v, 1, 0, &data_leaf), guest_cpuid(v, 7, 0, &data_leaf));
	return v->cr4_allowed;
}
