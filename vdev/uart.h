/* A guest's virtual 16550 UART at 0x3F8-0x3FF: enough for a polling driver; output goes to the
 * console line by line as "[NAME] text". */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "vdev/vdev.h"

#define VUART_BASE 0x3f8
#define VUART_LINE 160

struct vuart {
	const char *name;            /* the guest's, for "[NAME] text" */
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	char line[VUART_LINE];
	unsigned len;
};

/* Sets it to its reset state and registers its ports on `bus`. 0 or a negative error. */
int vuart_init(struct vuart *u, struct vdev_bus *bus, const char *name);
/* One character of output (also the HC_PUTCHAR hypercall). */
void vuart_putc(struct vuart *u, char c);
/* Prints what is left of a line (at guest end). */
void vuart_flush(struct vuart *u);
