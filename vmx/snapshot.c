/* A vCPU's state for vcpu_snapshot (vcpu/snapshot.c) on VMX: read from its VMCS, on its own CPU, in
 * the neutral form. */
#include "console/printk.h"
#include "vmx/exit.h"
#include "vmx/neutral.h"
#include "vmx/vcpu.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"

/* From the current VMCS. The segment fields sit at fixed distances in the encoding space, ES
 * first, in the sreg order of enum vcpu_seg_reg (SDM Vol. 3D, B.1.2, B.3.3, B.4.3). */
static void from_vmcs(struct vcpu *v, struct vcpu_snapshot *s)
{
	s->rip = vmcs_read(GUEST_RIP);
	s->rsp = vmcs_read(GUEST_RSP);
	s->rflags = vmcs_read(GUEST_RFLAGS);
	s->cr0 = vcpu_guest_cr0();           /* through the read shadows: what MOV from CR0 gives */
	s->cr3 = vmcs_read(GUEST_CR3);
	s->cr4 = vcpu_guest_cr4();
	s->efer = vmx_guest_efer(v);
	/* On shadow paging the VMCS holds the shadow's CR3 and EFER (vmx/spt.c), and its PDPTE fields
	 * exist only on a CPU that can enable EPT (SDM Vol. 3D, B.2.3: penryn's VMREAD fails). */
	if (v->vm->paging == VM_PAGING_SHADOW) {
		s->cr3 = v->gcr3;
		s->efer = v->gefer;
		for (unsigned i = 0; i < 4; i++)
			s->pdpte[i] = v->sh.g.pdpte[i];
	} else {
		for (unsigned i = 0; i < 4; i++)
			s->pdpte[i] = vmcs_read(GUEST_PDPTE0 + 2 * i);
	}
	for (unsigned i = 0; i < VCPU_NSEGS; i++)
		s->seg[i] = vcpu_seg_of_ar(vmcs_read16(GUEST_ES_SELECTOR + 2 * i), vmcs_read(GUEST_ES_BASE + 2 * i),
					   vmcs_read32(GUEST_ES_LIMIT + 2 * i), vmcs_read32(GUEST_ES_AR_BYTES + 2 * i));
	s->gdtr_base = vmcs_read(GUEST_GDTR_BASE);
	s->gdtr_limit = vmcs_read32(GUEST_GDTR_LIMIT);
	s->idtr_base = vmcs_read(GUEST_IDTR_BASE);
	s->idtr_limit = vmcs_read32(GUEST_IDTR_LIMIT);
	s->blocking = vmx_blocking_neutral(vmcs_read32(GUEST_INTERRUPTIBILITY_INFO));
}

/* v's VMCS is made current for the reads, and the one that was current before is made current
 * again (the scheduler trusts vcpu_cpu[].loaded). The pending event is the vCPU's own record, in
 * VMX's entry format (never read back from the VMCS: docs/design.md, Events). */
bool vmx_vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s)
{
	struct vcpu *cur = this_vcpu_cpu()->loaded;

	if (vmx_of(v)->event.valid)
		s->event = vmx_event_neutral(vmx_of(v)->event.info, vmx_of(v)->event.error_code);
	if (cur != v && !vmptrld(vmx_of(v)->vmcs))
		return false;
	from_vmcs(v, s);
	if (cur && cur != v && !vmptrld(vmx_of(cur)->vmcs))
		panic("hv: monitor: VMPTRLD of vCPU %s/%u failed", cur->vm->name, cur->index);
	return true;
}
