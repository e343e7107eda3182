/* vcpu_snapshot (vcpu/snapshot.h) for VMX: a vCPU's state read from its VMCS on its own CPU and
 * handed up in the neutral form. */
#include "arch/x86/call.h"
#include "arch/x86/percpu.h"
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
	for (unsigned i = 0; i < 4; i++)
		s->pdpte[i] = vmcs_read(GUEST_PDPTE0 + 2 * i);
	if (v->vm->paging == VM_PAGING_SHADOW) {     /* the VMCS holds the shadow's (vmx/spt.c) */
		s->cr3 = v->gcr3;
		s->efer = v->gefer;
		for (unsigned i = 0; i < 4; i++)
			s->pdpte[i] = v->sh.g.pdpte[i];
	}
	for (unsigned i = 0; i < VCPU_NSEGS; i++)
		s->seg[i] = vmx_seg_neutral(vmcs_read16(GUEST_ES_SELECTOR + 2 * i), vmcs_read(GUEST_ES_BASE + 2 * i),
					    vmcs_read32(GUEST_ES_LIMIT + 2 * i), vmcs_read32(GUEST_ES_AR_BYTES + 2 * i));
	s->gdtr_base = vmcs_read(GUEST_GDTR_BASE);
	s->gdtr_limit = vmcs_read32(GUEST_GDTR_LIMIT);
	s->idtr_base = vmcs_read(GUEST_IDTR_BASE);
	s->idtr_limit = vmcs_read32(GUEST_IDTR_LIMIT);
	s->blocking = vmx_blocking_neutral(vmcs_read32(GUEST_INTERRUPTIBILITY_INFO));
}

struct snap_call {
	struct vcpu *v;
	struct vcpu_snapshot *s;
};

/* On v's CPU (cpu_call), in its wake-up interrupt or its scheduler loop: v is not in the guest now.
 * Its VMCS is made current for the reads, and the one that was current before is made current
 * again (the scheduler trusts vcpu_cpu[].loaded). */
static void snap_take(void *arg)
{
	struct snap_call *c = arg;
	struct vcpu *v = c->v, *cur = this_vcpu_cpu()->loaded;
	struct vcpu_snapshot *s = c->s;

	if (__atomic_load_n(&v->left, __ATOMIC_ACQUIRE)) {   /* VMCLEARed: its VMCS is no one's now */
		s->status = VCPU_SNAP_GONE;
		return;
	}
	s->activity = v->state;
	s->halted_if = v->halted_if;
	guest_regs_snapshot(s, &v->regs);
	/* The pending event is the vCPU's own record, in VMX's entry format (never read back from the
	 * VMCS: docs/design.md, Events). */
	if (v->event.valid)
		s->event = vmx_event_neutral(v->event.info, v->event.error_code);
	s->irq = vlapic_pending_vector(&v->lapic);
	s->nmi = __atomic_load_n(&v->lapic.nmi_pending, __ATOMIC_ACQUIRE);
	if (!v->ready) {
		vcpu_state_snapshot(s, &v->start);
		s->status = VCPU_SNAP_START;
		return;
	}
	if (cur != v && !vmptrld(v->vmcs)) {
		s->status = VCPU_SNAP_GONE;
		return;
	}
	from_vmcs(v, s);
	if (cur && cur != v && !vmptrld(cur->vmcs))
		panic("hv: monitor: VMPTRLD of vCPU %s/%u failed", cur->vm->name, cur->index);
	s->status = VCPU_SNAP_LIVE;
}

void vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s)
{
	struct snap_call c = { v, s };

	*s = (struct vcpu_snapshot){ .irq = -1 };
	cpu_call(v->cpu, snap_take, &c, true);
}
