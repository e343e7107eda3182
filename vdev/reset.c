/* Resets and power-off (vdev/reset.h). What each port does:
 *   0x64  8042 status (reads 0x14: system flag, keyboard not inhibited, both buffers empty; there is no
 *         keyboard), command 0xFE pulses the CPU reset line, command 0xD1 makes the next 0x60 write the
 *         output port, whose bit 0 = 0 resets (IBM PC/AT Technical Reference, 8042 commands); 0x60
 *         reads 0. Other commands are ignored.
 *   0x92  "system control port A" (PS/2): bit 0 going 0 -> 1 is a fast reset, bit 1 gates A20 (kept,
 *         no effect: guest RAM is not aliased).
 *   0xCF9 reset control register (Intel ICH/PCH datasheets): bit 2 going 0 -> 1 resets (bit 1 picks a
 *         hard reset; both end the guest the same way). Byte accesses only: a dword at 0xCF8 is the
 *         PCI configuration address, not this.
 *   0x600 tessera's sleep port (pm_port), laid out as ACPI's hardware-reduced sleep control register
 *         (ACPI 6.4, 4.8.3.7: SLP_TYP bits 4:2, SLP_EN bit 5), which the FADT no longer names:
 *         S5 powers the guest off; other sleep states are not supported and return at once, as if
 *         woken. The sleep status register (pm_port + 1) reads 0x80 (WAK_STS) after such a return.
 * A reset ends this guest (its vCPUs only), never the machine. */
#include "lib/format.h"
#include "lib/string.h"
#include "vdev/reset.h"

#define SLP_EN        (1u << 5)
#define SLP_TYP(v)    (((v) >> 2) & 7)
#define WAK_STS       0x80

static enum vdev_result reset(struct vdev_bus *bus, const char *how)
{
	snformat(bus->why, sizeof(bus->why), "%s", how);
	return VDEV_GUEST_RESET;
}

static uint64_t all_ones(unsigned size)
{
	return size == 4 ? 0xffffffffu : (1u << (8 * size)) - 1;
}

static enum vdev_result kbd_access(void *dev, struct vdev_access *a)
{
	struct vreset *r = dev;

	if (!a->write) {
		a->value = a->addr == 0x64 ? 0x14 : 0;
		return VDEV_DONE;
	}
	if (a->addr == 0x64) {
		r->kbd_cmd = (uint8_t)a->value;
		if (r->kbd_cmd == 0xfe)
			return reset(r->bus, "reset requested (keyboard controller command 0xFE)");
		return VDEV_DONE;
	}
	if (r->kbd_cmd == 0xd1 && !(a->value & 1))     /* output port write with the reset bit low */
		return reset(r->bus, "reset requested (keyboard controller output port bit 0)");
	r->kbd_cmd = 0;
	return VDEV_DONE;
}

static enum vdev_result port92_access(void *dev, struct vdev_access *a)
{
	struct vreset *r = dev;
	uint8_t old = r->port92;

	if (!a->write) {
		a->value = r->port92 & ~1u;
		return VDEV_DONE;
	}
	r->port92 = (uint8_t)a->value & 2;
	if (!(old & 1) && (a->value & 1))
		return reset(r->bus, "reset requested (port 0x92 fast reset)");
	return VDEV_DONE;
}

static enum vdev_result cf9_access(void *dev, struct vdev_access *a)
{
	struct vreset *r = dev;
	uint8_t old = r->cf9;

	if (!a->write) {
		a->value = r->cf9;
		return VDEV_DONE;
	}
	r->cf9 = (uint8_t)a->value & ~4u;
	if (!(old & 4) && (a->value & 4))
		return reset(r->bus, "reset requested (port 0xCF9)");
	return VDEV_DONE;
}

static enum vdev_result pm_access(void *dev, struct vdev_access *a)
{
	struct vreset *r = dev;

	if (a->size != 1) {
		if (!a->write)
			a->value = all_ones(a->size);
		return VDEV_DONE;
	}
	if (a->addr == r->pm_port + 1u) {              /* sleep status: write 1 to clear */
		if (!a->write)
			a->value = r->sleep_status;
		else if (a->value & WAK_STS)
			r->sleep_status = 0;
		return VDEV_DONE;
	}
	if (!a->write) {
		a->value = 0;
		return VDEV_DONE;
	}
	if ((a->value & SLP_EN) && SLP_TYP(a->value) == r->s5_typ) {
		a->value = 0;                           /* the guest's exit code */
		return VDEV_GUEST_EXIT;
	}
	if (a->value & SLP_EN)
		r->sleep_status = WAK_STS;              /* "woke" at once */
	return VDEV_DONE;
}

int vreset_init(struct vreset *r, struct vdev_bus *bus, uint16_t pm_port, uint8_t s5_typ)
{
	int err;

	memset(r, 0, sizeof(*r));
	r->bus = bus;
	r->pm_port = pm_port;
	r->s5_typ = s5_typ;
	if ((err = vdev_add_pio(bus, 0x60, 1, kbd_access, r, "8042")) ||
	    (err = vdev_add_pio(bus, 0x64, 1, kbd_access, r, "8042")) ||
	    (err = vdev_add_pio(bus, 0x92, 1, port92_access, r, "port 0x92")) ||
	    (err = vdev_add_pio(bus, 0xcf9, 1, cf9_access, r, "reset control")))
		return err;
	if (pm_port && (err = vdev_add_pio(bus, pm_port, 2, pm_access, r, "ACPI sleep")))
		return err;
	return 0;
}
