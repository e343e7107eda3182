/* vcpu_snapshot (vcpu/snapshot.h): a vCPU's state read on its own CPU and handed up in the neutral
 * form; what lives in the VMCS or VMCB the back end reads (vcpu_backend->vcpu_snapshot). */
#include "arch/x86/call.h"
#include "vcpu/backend.h"
#include "vcpu/vcpu.h"

struct snap_call {
	struct vcpu *v;
	struct vcpu_snapshot *s;
};

/* On v's CPU (cpu_call), in its wake-up interrupt or its scheduler loop: v is not in the guest now. */
static void snap_take(void *arg)
{
	struct snap_call *c = arg;
	struct vcpu *v = c->v;
	struct vcpu_snapshot *s = c->s;

	if (__atomic_load_n(&v->left, __ATOMIC_ACQUIRE)) {   /* VMCLEARed: its VMCS is no one's now */
		s->status = VCPU_SNAP_GONE;
		return;
	}
	s->activity = v->state;
	s->halted_if = v->halted_if;
	s->irq = vlapic_pending_vector(&v->lapic);
	s->nmi = __atomic_load_n(&v->lapic.nmi_pending, __ATOMIC_ACQUIRE);
	if (!v->ready) {                         /* never ran: the state it will start in */
		vcpu_state_snapshot(s, &v->start);
		s->status = VCPU_SNAP_START;
		return;
	}
	guest_regs_snapshot(s, &v->regs);
	s->status = vcpu_backend->vcpu_snapshot(v, s) ? VCPU_SNAP_LIVE : VCPU_SNAP_GONE;
}

void vcpu_snapshot(struct vcpu *v, struct vcpu_snapshot *s)
{
	struct snap_call c = { v, s };

	*s = (struct vcpu_snapshot){ .irq = -1 };
	cpu_call(v->cpu, snap_take, &c, true);
}
