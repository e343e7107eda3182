/* One guest's device bus for device-model tests, and byte-wide port accesses through it (vdev_pio),
 * each checked to be emulated. */
#pragma once
#include <stdint.h>
#include "tests/unit/unit.h"
#include "vdev/vdev.h"

static struct vdev_bus bus;

static inline void outb(uint16_t port, uint8_t v)
{
	struct vdev_access a = { .addr = port, .size = 1, .write = true, .value = v };

	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
}

static inline uint8_t inb(uint16_t port)
{
	struct vdev_access a = { .addr = port, .size = 1, .value = 0x5a5a };

	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
	CHECK(a.value <= 0xff);
	return a.value;
}
