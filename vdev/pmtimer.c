/* The ACPI fixed hardware of a guest's PC (vdev/pmtimer.h): PM1a status, enable and control, and the
 * power management timer.
 *
 * Emulates, after ACPI 6.3: the PM timer (4.8.2.1 "Power Management Timer", 4.8.4.3 "Power
 * Management Timer (PM_TMR)"): a free-running 32-bit up-counter at 3.579545 MHz (the FADT sets
 * TMR_VAL_EXT), TMR_STS set when its top bit changes and the SCI while TMR_EN allows it; the PM1
 * event grouping (4.8.4.1: status bits write 1 to clear, enables read back as written); the PM1
 * control register (4.8.4.2.1): SCI_EN always set, since the FADT's SMI_CMD is 0 and the platform
 * is in ACPI mode from reset (4.8.2.5 "Legacy/ACPI Select and the SCI Interrupt", 5.2.9: "SMI_CMD
 * ... zero on platforms that do not support SMM"), SLP_TYP and SLP_EN (4.8.2.2 "Sleeping/Wake
 * Control"): S5 ends the guest as a power-off.
 *
 * Not emulated: the fixed power and sleep buttons, the RTC alarm's wake, bus master status, the
 * global lock's BIOS side (GBL_STS never sets: no firmware takes the lock), GPE blocks, sleeping
 * states other than S5 (the DSDT names only \_S5; any other returns at once, WAK_STS set).
 *
 * Time: the count is floor(now * 3579545 / (tsc_khz * 1000)) of the guest TSC, computed without
 * overflow; nothing runs per tick. Accesses and the timer callback are serialized by the caller
 * (the bus lock).
 */
#include "lib/string.h"
#include "vdev/pmtimer.h"

#define TMR_TOP_SHIFT 31                  /* TMR_STS: bit 31 of the 32-bit count changed */

static uint64_t tsc_hz(const struct vpm *p)
{
	return p->tsc_khz * 1000;
}

/* Timer ticks at guest TSC `tsc`: floor(tsc * VPM_TMR_HZ / hz), without a 128-bit product. */
static uint64_t ticks_at(const struct vpm *p, uint64_t tsc)
{
	uint64_t hz = tsc_hz(p);

	return tsc / hz * VPM_TMR_HZ + tsc % hz * VPM_TMR_HZ / hz;
}

/* The first guest TSC at which ticks_at() reaches `ticks`: ceil(ticks * hz / VPM_TMR_HZ). */
static uint64_t tsc_at(const struct vpm *p, uint64_t ticks)
{
	uint64_t hz = tsc_hz(p);

	return ticks / VPM_TMR_HZ * hz + (ticks % VPM_TMR_HZ * hz + VPM_TMR_HZ - 1) / VPM_TMR_HZ;
}

static uint64_t note_time(struct vpm *p, uint64_t now)
{
	if (now > p->last_now)
		p->last_now = now;
	return p->last_now;
}

uint32_t vpm_timer_at(const struct vpm *p, uint64_t now)
{
	return (uint32_t)ticks_at(p, now);
}

static uint16_t status(const struct vpm *p, uint64_t now)
{
	return (uint16_t)(p->sts | ((ticks_at(p, now) >> TMR_TOP_SHIFT) != p->tmr_epoch ? VPM_TMR_STS : 0));
}

/* The SCI follows status & enable (level-triggered: held while any enabled event is pending); with
 * TMR_EN and TMR_STS clear, the timer wakes at the top bit's next change. */
static void update(struct vpm *p, uint64_t now)
{
	bool level = status(p, now) & p->en & VPM_TMR_STS;

	if (level != p->sci_level) {
		p->sci_level = level;
		if (level)
			irq_raise(&p->sci);
		else
			irq_lower(&p->sci);
	}
	if ((p->en & VPM_TMR_STS) && !level)
		vdev_timer_set(&p->timer, tsc_at(p, (p->tmr_epoch + 1) << TMR_TOP_SHIFT));
	else
		vdev_timer_set(&p->timer, 0);
}

static void pm_fire(void *dev, uint64_t now)
{
	struct vpm *p = dev;

	update(p, note_time(p, now));
}

/* The 16-bit register at block offset `reg` (0, 2, 4, 6) and the timer's two halves (8, 10). */
static uint16_t read16(const struct vpm *p, unsigned reg, uint64_t now)
{
	switch (reg) {
	case VPM_EVT: return status(p, now);
	case VPM_EVT + 2: return p->en;
	case VPM_CNT: return (uint16_t)(p->cnt | VPM_SCI_EN);
	case VPM_TMR: return (uint16_t)vpm_timer_at(p, now);
	case VPM_TMR + 2: return (uint16_t)(vpm_timer_at(p, now) >> 16);
	}
	return 0;
}

/* A write of `v` to the bits `mask` of the 16-bit register at `reg`; true when it enters S5. */
static bool write16(struct vpm *p, unsigned reg, uint16_t v, uint16_t mask, uint64_t now)
{
	v &= mask;
	switch (reg) {
	case VPM_EVT:
		if (v & VPM_TMR_STS)
			p->tmr_epoch = ticks_at(p, now) >> TMR_TOP_SHIFT;
		p->sts &= (uint16_t)~(v & VPM_WAK_STS);
		break;
	case VPM_EVT + 2:
		p->en = (uint16_t)((p->en & ~mask) | (v & VPM_EN_BITS));
		break;
	case VPM_CNT:
		p->cnt = (uint16_t)((p->cnt & ~(mask & VPM_CNT_RW)) | (v & VPM_CNT_RW));
		if (!(v & VPM_SLP_EN))
			break;
		if (VPM_SLP_TYP(p->cnt) == p->s5_typ)
			return true;
		p->sts |= VPM_WAK_STS;                  /* another sleep state: "woken" at once */
		break;
	}
	return false;
}

enum vdev_result vpm_io(struct vpm *p, struct vdev_access *a, uint64_t now)
{
	unsigned off = (unsigned)(a->addr - p->base);
	bool s5 = false;

	now = note_time(p, now);
	if (off + a->size > VPM_BLOCK_LEN || (a->size != 1 && a->size != 2 && a->size != 4)) {
		if (!a->write)
			a->value = a->size >= 4 ? 0xffffffffu : (1u << (8 * a->size)) - 1;
		return VDEV_DONE;                       /* past the block: as the empty bus */
	}
	if (!a->write) {
		uint64_t v = 0;

		for (unsigned i = 0; i < a->size; i++) {
			unsigned o = off + i;
			v |= (uint64_t)((read16(p, o & ~1u, now) >> (8 * (o & 1))) & 0xff) << (8 * i);
		}
		a->value = v;
		return VDEV_DONE;
	}
	/* Each 16-bit register the access covers gets the bytes of it that were written. */
	for (unsigned o = off & ~1u; o < off + a->size; o += 2) {
		uint16_t v = 0, mask = 0;

		for (unsigned b = 0; b < 2; b++) {
			if (o + b < off || o + b >= off + a->size)
				continue;
			v |= (uint16_t)(((a->value >> (8 * (o + b - off))) & 0xff) << (8 * b));
			mask |= (uint16_t)(0xff << (8 * b));
		}
		s5 |= write16(p, o, v, mask, now);
	}
	update(p, now);
	if (s5) {
		a->value = 0;                           /* the guest's exit code: a clean power-off */
		return VDEV_GUEST_EXIT;
	}
	return VDEV_DONE;
}

static enum vdev_result pm_access(void *dev, struct vdev_access *a)
{
	struct vpm *p = dev;

	return vpm_io(p, a, p->clock ? p->clock(p->clock_ctx) : p->last_now);
}

void vpm_init(struct vpm *p, uint16_t base, uint8_t s5_typ, uint64_t tsc_khz, struct irq_line sci,
	      uint64_t (*clock)(void *ctx), void *ctx)
{
	memset(p, 0, sizeof(*p));
	if (tsc_khz < 1000 || tsc_khz > 1000000000)
		tsc_khz = 1000000;
	p->base = base;
	p->s5_typ = s5_typ;
	p->tsc_khz = tsc_khz;
	p->sci = sci;
	p->clock = clock;
	p->clock_ctx = ctx;
	p->timer.fire = pm_fire;
	p->timer.dev = p;
	p->last_now = clock ? clock(ctx) : 0;
	p->tmr_epoch = ticks_at(p, p->last_now) >> TMR_TOP_SHIFT;
}

int vpm_register(struct vpm *p, struct vdev_bus *bus)
{
	int err = vdev_add_pio(bus, p->base, VPM_BLOCK_LEN, pm_access, p, "acpi pm");

	return err ? err : vdev_add_timer(bus, &p->timer);
}
