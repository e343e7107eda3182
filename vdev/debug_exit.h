/* The debug-exit port (port 0xF4, as QEMU's isa-debug-exit): a guest ends itself by writing its code. */
#pragma once
#include "vdev/vdev.h"

int debug_exit_init(struct vdev_bus *bus);
