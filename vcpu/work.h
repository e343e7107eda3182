/* A vCPU's "work before entry" word: what must be looked at before its next VM entry, so that an exit
 * with nothing new goes from its handler straight back to the guest (vmx/exit.c, prepare_entry). */
#pragma once
#include <stdbool.h>
#include <stdint.h>

/*
 * Who sets which bit (any CPU; "owner": the CPU the vCPU runs on, in its exit path):
 *
 *   VCPU_WORK_EVENT    vcpu_kick: an NMI, INIT or Start-up IPI posted to its local APIC, the
 *                      8259A's INTR output changed (vCPU 0), its guest is ending (claim_end kicks
 *                      every vCPU), it was placed on a CPU, a device deadline moved sooner.
 *   VCPU_WORK_IRQ      a fixed interrupt posted to its local APIC (an IPI, a device line through the
 *                      I/O APIC): its IRR changed, which the APIC's dirty word says too; unlike the
 *                      events above it cannot end the vCPU's turn or change what NMIs and the 8259A
 *                      give, so the entry looks at the APIC alone.
 *   Both are the scheduler's "kicked" flag for a vCPU that does not run (vcpu_others_want_cpu
 *   takes them from its siblings: VCPU_WORK_KICKED).
 *   VCPU_WORK_DEVICES  a device's timer deadline moved (vdev_timer_set): vCPU 0 keeps device time.
 *   VCPU_WORK_APICV    another vCPU turned the guest's APIC virtualization off (vcpu_apicv_inhibit).
 *   VCPU_WORK_ENTRY    the owner itself: a window exit (the event it waited for can go now), the
 *                      preemption timer, an I/O exit that charges its time to a short slice, an
 *                      event still pending that no window exit will announce, an exception a handler
 *                      raised or an event an exit interrupted (VMX: struct vmx_event, vmx/skip.h,
 *                      vmx/exit.c), which the next entry delivers.
 *
 * What the word does not carry, because the entry path reads it where it lives, on the owner's CPU:
 * the local APIC's own changes (vlapic dirty word: a register written, a vector set by the APIC
 * timer or a self IPI), and time: the preemption timer
 * is armed for the earliest of the slice's end and the timer deadlines, and one TSC read against that
 * cached deadline says whether any of them is due.
 *
 * Memory ordering (x86 TSO, SDM Vol. 3A, 9.2.2 "Memory Ordering in P6 and More Recent Processor
 * Families", and 9.2.3.8 "Locked Instructions Have a Total Order"):
 *  - A producer first writes what it posts (the IRR bit, the NMI count, INIT, the device deadline),
 *    then sets the bit with a locked OR, then sends the wake-up IPI (vcpu_kick). Writes of one
 *    processor are seen by all others in the order it made them, and no load or store passes a
 *    locked instruction (9.2.2): whoever sees the bit sees the event.
 *  - The consumer (the owner's entry path) loads the word with interrupts off; if it is not 0, it
 *    takes it with a locked exchange (vcpu_work_take), then reads the events. A bit set after that
 *    exchange stays for the next entry; one set between the load that saw 0 and VM entry comes with
 *    its IPI, which is pending at the local APIC while interrupts are off here and makes the guest
 *    exit again right after entry ("external-interrupt exiting", SDM Vol. 3C, 26.2 and 25.6.1), so
 *    the next entry sees it. A producer on the owner's own CPU (its handler posting to itself) comes
 *    before the entry path in program order and needs no IPI (cpu_kick sends none to itself).
 *  - The same bit may be taken twice (the scheduler's vcpu_others_want_cpu for a vCPU that does not
 *    run, then its own entry path): whoever takes it then looks at the events themselves, and a
 *    vCPU's first entry of a run (vcpu_run) looks at everything whatever the word holds.
 */
#define VCPU_WORK_EVENT   (1u << 0)
#define VCPU_WORK_IRQ     (1u << 1)   /* = VCPU_WORK_EVENT << 1: vcpu/vcpu.c's lapic_kick adds `fixed` */
#define VCPU_WORK_DEVICES (1u << 2)
#define VCPU_WORK_APICV   (1u << 3)
#define VCPU_WORK_ENTRY   (1u << 4)
#define VCPU_WORK_KICKED  (VCPU_WORK_EVENT | VCPU_WORK_IRQ)

/* Any CPU: sets `bits` in the word `w` (after the event it announces is written). */
static inline void vcpu_work_post(uint32_t *w, uint32_t bits)
{
	__atomic_fetch_or(w, bits, __ATOMIC_SEQ_CST);
}

/* The owner: is anything there? A plain load (the exchange of vcpu_work_take only when it says yes). */
static inline uint32_t vcpu_work_peek(const uint32_t *w)
{
	return __atomic_load_n(w, __ATOMIC_RELAXED);
}

/* The owner: takes every bit (the word starts afresh), before looking at the events. */
static inline uint32_t vcpu_work_take(uint32_t *w)
{
	return __atomic_exchange_n(w, 0, __ATOMIC_ACQ_REL);
}

/* Another CPU's scheduler: takes `bits` only, returns which were set. */
static inline uint32_t vcpu_work_take_bits(uint32_t *w, uint32_t bits)
{
	return __atomic_fetch_and(w, ~bits, __ATOMIC_ACQ_REL) & bits;
}

/* The entry path's one question: can this entry go straight to the guest? Yes if no bit is set (an
 * exception to deliver sets VCPU_WORK_ENTRY), the local APIC changed nothing (`apic_dirty`), and the
 * earliest deadline the preemption timer is armed for (`due`, 0 = not armed) has not come (`now`). */
static inline bool vcpu_work_none(uint32_t work, uint32_t apic_dirty, uint64_t now, uint64_t due)
{
	return !(work | apic_dirty) && now < due;
}
