/* vcpu_snapshot (vcpu/snapshot.h) for SVM: a vCPU's state read from its VMCB (AMD APM Vol. 2,
 * Appendix B) on its own CPU, where it is not in the guest then, and handed up in the neutral form
 * through SVM's accessors (svm/guest.c). */
#include "arch/x86/call.h"
#include "svm/neutral.h"
#include "svm/svm.h"
#include "svm/vmcb.h"
#include "pmm/pmm.h"
#include "vmx/neutral.h"

struct snap_call {
	struct vcpu *v;
	struct vcpu_snapshot *s;
};

/* EVENTINJ's type (15.20) in the neutral form. */
static struct vcpu_pending_event event_neutral(uint64_t inj)
{
	static const enum vcpu_event_type types[8] = { VCPU_EVENT_EXTINT, VCPU_EVENT_OTHER, VCPU_EVENT_NMI,
		VCPU_EVENT_EXCEPTION, VCPU_EVENT_SOFT_INT, VCPU_EVENT_OTHER, VCPU_EVENT_OTHER, VCPU_EVENT_OTHER };

	return (struct vcpu_pending_event){ (inj & VMCB_EVT_VALID) != 0, (uint8_t)inj, types[(inj >> 8) & 7],
					    (inj & VMCB_EVT_ERR_VALID) != 0, (uint32_t)(inj >> 32) };
}

static void snap_take(void *arg)
{
	struct snap_call *c = arg;
	struct vcpu *v = c->v;
	struct vcpu_snapshot *s = c->s;
	const struct guest_regs *r = &v->regs;
	const struct vcpu_state *st = &v->start;
	struct vmcb *b;

	if (__atomic_load_n(&v->left, __ATOMIC_ACQUIRE)) {
		s->status = VCPU_SNAP_GONE;
		return;
	}
	s->activity = v->state;
	s->halted_if = v->halted_if;
	s->irq = vlapic_pending_vector(&v->lapic);
	s->nmi = __atomic_load_n(&v->lapic.nmi_pending, __ATOMIC_ACQUIRE);
	if (!v->ready) {                         /* never ran: the state it will start in */
		vcpu_state_snapshot(s, st);
		s->status = VCPU_SNAP_START;
		return;
	}
	b = phys_to_virt(v->vmcs);
	guest_regs_snapshot(s, r);
	s->rsp = b->save.rsp;
	s->rip = b->save.rip;
	s->rflags = b->save.rflags;
	s->cr0 = svm_get_cr0(v);
	s->cr3 = svm_get_cr3(v);
	s->cr4 = svm_get_cr4(v);
	s->efer = svm_get_efer(v);
	for (unsigned i = 0; i < 4; i++)
		s->pdpte[i] = svm_get_pdpte(v, i);
	for (unsigned i = 0; i < VCPU_NSEGS; i++)
		s->seg[i] = svm_get_seg(v, (enum vcpu_seg_reg)i);
	s->gdtr_base = b->save.gdtr.base, s->gdtr_limit = b->save.gdtr.limit;
	s->idtr_base = b->save.idtr.base, s->idtr_limit = b->save.idtr.limit;
	/* INTERRUPT_SHADOW (15.21.5) does not say STI from MOV SS: shown as STI's. */
	s->blocking = b->ctl.int_state & VMCB_INT_SHADOW ? VCPU_BLOCK_STI : 0;
	s->event = event_neutral(b->ctl.event_inj);
	s->status = VCPU_SNAP_LIVE;
}

void svm_vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s)
{
	struct snap_call c = { v, s };

	*s = (struct vcpu_snapshot){ .irq = -1 };
	cpu_call(v->cpu, snap_take, &c, true);
}
