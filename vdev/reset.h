/* The ways a PC program resets or powers off its machine, each ending only this guest: the 8042
 * keyboard controller's pulse-reset command, port 0x92's fast reset, the reset control register at
 * 0xCF9 (the FADT's RESET_REG), and tessera's own sleep port at 0x600 (the hardware-reduced sleep
 * control register the FADT once named; the project's guests power off through it; the FADT now
 * names PM1a_CNT, vdev/pmtimer.h). */
#pragma once
#include <stdint.h>
#include "vdev/vdev.h"

struct vreset {
	struct vdev_bus *bus;        /* its guest's: a reset names its source in bus->why */
	uint8_t port92;              /* bit 1 (A20) reads back as written */
	uint8_t cf9;                 /* bits the guest wrote to 0xCF9, bit 2 excluded */
	uint8_t kbd_cmd;             /* last 8042 command byte (for the status of command 0xD1 writes) */
	uint16_t pm_port;            /* ACPI sleep control register (status at +1); 0 = none */
	uint8_t s5_typ;              /* the SLP_TYP value \_S5 gives (the DSDT's) */
	uint8_t sleep_status;        /* WAK_STS after a sleep that returned at once */
};

/* Registers ports 0x64 (and 0x60 reads), 0x92, 0xCF9 and, if pm_port, the ACPI sleep registers.
 * VDEV_GUEST_RESET (bus->why says which) on a reset; VDEV_GUEST_EXIT with value 0 on an ACPI S5. */
int vreset_init(struct vreset *r, struct vdev_bus *bus, uint16_t pm_port, uint8_t s5_typ);
