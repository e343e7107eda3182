/* Small instruction exits, vendor-neutral (over vcpu/guest.h): HLT. */
#include "vcpu/work.h"
#include "vcpu/handler.h"

/* HLT: the vCPU leaves its CPU until an event it accepts is due (SDM Vol. 2A, HLT: an enabled
 * interrupt, NMI, INIT or SMI resumes it; the interrupt's handler returns after the HLT). RIP moves
 * past the HLT first: the vCPU resumes there. */
int vcpu_handle_hlt(struct vcpu *v, const struct vcpu_exit *e)
{
	uint64_t rip = vcpu_get_rip(v);

	vcpu_skip(v, e->len);
	v->halted_if = vcpu_get_rflags(v) & RFLAGS_IF;
	if (!v->halted_if && !__atomic_load_n(&v->lapic.nmi_pending, __ATOMIC_ACQUIRE) && !vcpu_others_active(v))
		return vm_stop(v, "halted with interrupts disabled (HLT, IF=0), rip 0x%lx", rip);
	v->state = VCPU_HALTED;
	if (vcpu_event_queued(v) || vcpu_runnable(v, rdtsc())) {
		v->state = VCPU_RUNNING;    /* already due: HLT ends at once */
		vcpu_work_post(&v->work, VCPU_WORK_ENTRY);   /* the entry delivers it */
		return HANDLED;
	}
	return VCPU_BLOCKED;
}
