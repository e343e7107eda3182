/* QEMU fw_cfg, traditional interface (QEMU docs/specs/fw_cfg.rst): a 16-bit write of an item key to
 * port 0x510 selects it and rewinds it; each 8-bit read of port 0x511 returns its next byte, 0 past
 * its end. Items: the signature "QEMU" (0x0000), the interface ID (0x0001: bit 0, traditional
 * interface; no DMA), the RAM size (0x0003, 64-bit little endian), the CPU counts (0x0005 NB_CPUS,
 * 0x000f MAX_CPUS, 16-bit) and an empty file directory (0x0019: a big-endian count of 0). No DMA
 * interface, no writable items, no files: a key not listed reads as zeros. */
#include "lib/string.h"
#include "vdev/fw_cfg.h"

enum { FW_CFG_SIGNATURE = 0x0000, FW_CFG_ID = 0x0001, FW_CFG_RAM_SIZE = 0x0003, FW_CFG_NB_CPUS = 0x0005,
       FW_CFG_MAX_CPUS = 0x000f, FW_CFG_FILE_DIR = 0x0019 };

/* Byte `off` of the selected item, 0 past its end. */
static uint8_t item_byte(const struct fw_cfg *f, uint32_t off)
{
	uint64_t v;
	unsigned len;

	switch (f->selector) {
	case FW_CFG_SIGNATURE: return off < 4 ? (uint8_t)"QEMU"[off] : 0;
	case FW_CFG_ID:        v = 1; len = 4; break;
	case FW_CFG_RAM_SIZE:  v = f->ram_bytes; len = 8; break;
	case FW_CFG_NB_CPUS:
	case FW_CFG_MAX_CPUS:  v = f->ncpus; len = 2; break;
	case FW_CFG_FILE_DIR:  return 0;            /* count 0 (big endian), no entries */
	default:               return 0;
	}
	return off < len ? (uint8_t)(v >> (8 * off)) : 0;
}

static enum vdev_result fw_cfg_access(void *dev, struct vdev_access *a)
{
	struct fw_cfg *f = dev;

	if (a->addr == FW_CFG_PORT_SEL) {
		if (a->write) {
			f->selector = (uint16_t)a->value;
			f->offset = 0;
		} else {
			a->value = a->size == 4 ? 0xffffffffu : (1u << (8 * a->size)) - 1;
		}
		return VDEV_DONE;
	}
	if (a->write)                                 /* the data port is read-only here */
		return VDEV_DONE;
	a->value = 0;
	for (unsigned i = 0; i < a->size; i++)        /* a wider read takes that many bytes in order */
		a->value |= (uint64_t)item_byte(f, f->offset++) << (8 * i);
	return VDEV_DONE;
}

int fw_cfg_init(struct fw_cfg *f, struct vdev_bus *bus, uint64_t ram_bytes, unsigned ncpus)
{
	memset(f, 0, sizeof(*f));
	f->ram_bytes = ram_bytes;
	f->ncpus = (uint16_t)ncpus;
	return vdev_add_pio(bus, FW_CFG_PORT_SEL, 2, fw_cfg_access, f, "fw_cfg");
}
