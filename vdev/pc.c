/* A guest's PC (vdev/pc.h): the devices created, registered and wired; the entry points the VMX
 * layer uses for vCPU 0's LINT0 and for EOIs take the bus lock the device accesses run under. */
#include "arch/x86/cpu.h"
#include "vdev/pc.h"

static void pic_set(void *pic, unsigned irq, bool level)
{
	vpic_set_irq(pic, irq, level);
}

static void pic_intr_changed(void *ctx)
{
	struct vpc *pc = ctx;

	pc->intr = vpic_has_intr(&pc->pic);
	if (pc->intr_changed)
		pc->intr_changed(pc->ctx);
}

/* Devices take the time of a port access from here: the guest's TSC is the host's (TSC offset 0). */
static uint64_t guest_tsc(void *ctx)
{
	(void)ctx;
	return rdtsc();
}

int vpc_init(struct vpc *pc, struct vdev_bus *bus, struct vlapic_group *lapics, uint64_t tsc_khz,
	     uint64_t ram_bytes, uint64_t epoch_seconds, uint16_t pm_base, uint8_t s5_typ,
	     void (*intr_changed)(void *ctx), void *ctx)
{
	int err;

	pc->bus = bus;
	pc->intr_changed = intr_changed;
	pc->ctx = ctx;
	vpic_init(&pc->pic, pic_intr_changed, pc);
	vioapic_init(&pc->ioapic, lapics);
	virqchip_init(&pc->chip, &pc->ioapic, pic_set, &pc->pic);
	vpit_init(&pc->pit, tsc_khz, virqchip_line(&pc->chip, PC_IRQ_PIT));
	vpit_set_clock(&pc->pit, guest_tsc, 0);
	vrtc_init(&pc->rtc, epoch_seconds, rdtsc(), tsc_khz, ram_bytes, virqchip_line(&pc->chip, PC_IRQ_RTC));
	vrtc_set_clock(&pc->rtc, guest_tsc, 0);
	vpm_init(&pc->pm, pm_base, s5_typ, tsc_khz, virqchip_line(&pc->chip, PC_IRQ_SCI), guest_tsc, 0);
	if ((err = vpic_register(&pc->pic, bus)) || (err = vpit_register(&pc->pit, bus)) ||
	    (err = vioapic_register(&pc->ioapic, bus)) || (err = vrtc_register(&pc->rtc, bus)) ||
	    (err = vpm_register(&pc->pm, bus)))
		return err;
	return 0;
}

struct irq_line vpc_irq_line(struct vpc *pc, unsigned irq)
{
	return virqchip_line(&pc->chip, irq);
}

bool vpc_extint_pending(struct vpc *pc)
{
	return pc->intr;
}

int vpc_extint_ack(struct vpc *pc)
{
	int v;

	spin_lock(&pc->bus->lock);
	v = vpic_ack(&pc->pic);
	pc->intr = vpic_has_intr(&pc->pic);
	spin_unlock(&pc->bus->lock);
	return v;
}

void vpc_eoi(struct vpc *pc, uint8_t vector)
{
	spin_lock(&pc->bus->lock);
	vioapic_eoi(&pc->ioapic, vector);
	spin_unlock(&pc->bus->lock);
}
