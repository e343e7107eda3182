/* A vCPU's state for vcpu_snapshot (vcpu/snapshot.c) on SVM: read from its VMCB (AMD APM Vol. 2,
 * Appendix B) on its own CPU, where it is not in the guest then, in the neutral form through SVM's
 * accessors (svm/guest.c). */
#include "svm/svm.h"
#include "svm/vmcb.h"
#include "pmm/pmm.h"

/* EVENTINJ's type (15.20) in the neutral form. */
static struct vcpu_pending_event event_neutral(uint64_t inj)
{
	static const enum vcpu_event_type types[8] = { VCPU_EVENT_EXTINT, VCPU_EVENT_OTHER, VCPU_EVENT_NMI,
		VCPU_EVENT_EXCEPTION, VCPU_EVENT_SOFT_INT, VCPU_EVENT_OTHER, VCPU_EVENT_OTHER, VCPU_EVENT_OTHER };

	return (struct vcpu_pending_event){ (inj & VMCB_EVT_VALID) != 0, (uint8_t)inj, types[(inj >> 8) & 7],
					    (inj & VMCB_EVT_ERR_VALID) != 0, (uint32_t)(inj >> 32) };
}

/* What lives in the VMCB of a `v` that ran, through SVM's accessors, on v's CPU. */
bool svm_vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s)
{
	struct vmcb *b = phys_to_virt(svm_of(v)->vmcb);

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
	return true;
}
