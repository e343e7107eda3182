/* Shadow paging's vendor-neutral half (paging=shadow, issue 16): what a guest's CR3, INVLPG, INVPCID
 * and #PF mean for the shadow tables of shadow/shadow.h, and the guest's own CR3 and EFER, for both back
 * ends (vcpu/spt.c). Each back end keeps only its format: which bits of CR0/CR4/EFER the CPU runs with,
 * how the exits reach here, how the shadow root is loaded (vmx/spt.c, svm/spt.c). Not for use outside
 * vcpu/, vmx/ and svm/. */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vcpu/vcpu.h"

static inline bool vcpu_spt_on(const struct vcpu *v)
{
	return v->vm->paging == VM_PAGING_SHADOW;
}

/* At vcpu_create: the shadow's callbacks into the guest's memory (map_gpa: vcpu_spt_map_gpa, which a
 * back end may wrap, as VMX does for its virtual-8086 TSS). */
void vcpu_spt_init(struct vcpu *v);
int vcpu_spt_map_gpa(void *arg, uint64_t gpa, uint64_t *hpa, uint64_t *size, unsigned *rights);

/* A new start state: the guest's CR3 and EFER; the root is built by vcpu_spt_run before the next entry. */
void vcpu_spt_apply(struct vcpu *v, uint64_t cr3, uint64_t efer);
/* Before a run: the root built after vcpu_spt_apply. HANDLED or VCPU_STOPPED. */
int vcpu_spt_run(struct vcpu *v);
/* The guest's CR0, CR4 or EFER changed (the back end's setters, after they stored the guest's value):
 * do the paging controls differ from those the current root was chosen for? vcpu_spt_resync then
 * takes them into the shadow and the CPU, stopping the guest on failure; vcpu_spt_controls_changed
 * does both. */
bool vcpu_spt_stale(const struct vcpu *v);
void vcpu_spt_resync(struct vcpu *v);
void vcpu_spt_controls_changed(struct vcpu *v);

/* Exits: MOV from/to CR3 with general register `gpr` (RETIRED, HANDLED or an action), INVLPG
 * (RETIRED), INVPCID's flush (type 0-3, already checked), a #PF the CPU raised on the shadow at
 * linear address `gva` with error code `error`; `delivering`: the vector of the hardware exception
 * whose delivery met it, else -1 (the guest's own #PF on a #PF's delivery is then a #DF, on a #DF's a
 * shutdown). HANDLED or an action. */
int vcpu_spt_cr3(struct vcpu *v, unsigned access, unsigned gpr);
int vcpu_spt_invlpg(struct vcpu *v, uint64_t gva);
void vcpu_spt_invpcid(struct vcpu *v, unsigned type, unsigned pcid, uint64_t gva);
int vcpu_spt_page_fault(struct vcpu *v, uint64_t gva, uint32_t error, int delivering);

/* After any change to the shadow: what it dropped that the CPU may have cached (shadow_take_flush)
 * goes to the back end's vcpu_spt_flush before the guest runs again. Every function above does it. */
void vcpu_spt_flush_dropped(struct vcpu *v);
