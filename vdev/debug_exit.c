/* The debug-exit port (HV_PORT_DEBUG_EXIT, ports 0xF4-0xF7 as QEMU's isa-debug-exit with iosize=4):
 * writing V ends the guest with exit code V; reads float as on an empty bus. */
#include "tessera/hypercall.h"
#include "vdev/debug_exit.h"

static enum vdev_result debug_exit_access(void *dev, struct vdev_access *a)
{
	(void)dev;
	if (a->write)
		return VDEV_GUEST_EXIT;
	a->value = a->size == 4 ? 0xffffffffu : (1u << (a->size * 8)) - 1;
	return VDEV_DONE;
}

int debug_exit_init(struct vdev_bus *bus)
{
	return vdev_add_pio(bus, HV_PORT_DEBUG_EXIT, 4, debug_exit_access, 0, "debug-exit");
}
