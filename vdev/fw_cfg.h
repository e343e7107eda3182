/* QEMU's firmware configuration device, the traditional I/O interface: what test kernels built for
 * `qemu -kernel` read their CPU count and RAM size from. */
#pragma once
#include <stdint.h>
#include "vdev/vdev.h"

#define FW_CFG_PORT_SEL  0x510   /* 16-bit write: the item to read */
#define FW_CFG_PORT_DATA 0x511   /* 8-bit read: the item's next byte */

struct fw_cfg {
	uint16_t selector;
	uint32_t offset;             /* next byte of the selected item */
	uint64_t ram_bytes;
	uint16_t ncpus;
};

int fw_cfg_init(struct fw_cfg *f, struct vdev_bus *bus, uint64_t ram_bytes, unsigned ncpus);
