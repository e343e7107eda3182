/* A guest's virtual 16550 UART at 0x3F8-0x3FF: enough for a polling driver; output goes to the
 * console line by line as "[NAME] text". */
#pragma once
#include <stdbool.h>
#include <stdint.h>

#define VUART_BASE 0x3f8
#define VUART_LINE 160

struct vuart {
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	char line[VUART_LINE];
	unsigned len;
};

/* Port `port` (VUART_BASE..+7) accessed: a write of `*val`, or a read into `*val`. */
void vuart_io(struct vuart *u, const char *name, uint16_t port, bool in, uint32_t *val);
/* One character of output (also the HC_PUTCHAR hypercall). */
void vuart_putc(struct vuart *u, const char *name, char c);
/* Prints what is left of a line (at guest end). */
void vuart_flush(struct vuart *u, const char *name);
