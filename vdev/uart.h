/* A guest's virtual 16550 UART at 0x3F8-0x3FF: output goes to the console line by line as
 * "[NAME] text"; input comes from the console (the guest with the console focus) into its receive
 * FIFO, for a driver that polls LSR.DR or takes its interrupt (COM1's IRQ 4, wired by core/guest.c). */
#pragma once
#include <stdbool.h>
#include <stdint.h>
#include "arch/x86/spinlock.h"
#include "vdev/irq.h"
#include "vdev/vdev.h"

#define VUART_BASE 0x3f8
#define VUART_LINE 160
#define VUART_FIFO 16      /* the PC16550D's receive FIFO */
#define VUART_WIRE 256     /* bytes typed for the guest that its FIFO cannot take yet */

struct vuart {
	const char *name;            /* the guest's, for "[NAME] text" */
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;

	/* Receive side and registers: guarded by the bus lock (vdev_pio holds it around an access; the
	 * console's CPU takes it to fill the wire). */
	struct vdev_bus *bus;
	uint8_t fifo[VUART_FIFO];    /* receive FIFO (one byte deep while FCR bit 0 is clear: the RBR) */
	unsigned fifo_head, fifo_count;
	uint8_t wire[VUART_WIRE];    /* what the console sent on and the FIFO had no room for yet */
	unsigned wire_head, wire_count;
	uint8_t lsr_errors;          /* LSR overrun error until LSR is read */
	bool thre_pending;           /* THR-empty interrupt: THR emptied, not yet acknowledged */
	bool irq_level;              /* what irq() was last told */
	uint64_t rx_bytes, rx_dropped; /* taken from the console; lost because the wire was full */
	/* Its interrupt line, raised while IIR shows an interrupt pending and MCR.OUT2 is set, lowered
	 * once not. vuart_init leaves it unconnected (irq.set NULL: nothing is raised); core/guest.c then
	 * connects it to IRQ 4 of the guest's PIC and I/O APIC (vpc_irq_line), as on a PC. Driven with
	 * the bus lock held, as the router wants. */
	struct irq_line irq;

	/* Transmit side: the line being assembled, guarded by out_lock (any vCPU of the guest). */
	spinlock_t out_lock;
	bool live;                   /* the guest has the console focus: show its unfinished line at once */
	char line[VUART_LINE];
	unsigned len;
	uint8_t width[VUART_LINE];   /* how many characters of line[] each of its nbytes bytes became */
	unsigned nbytes;
};

/* Sets it to its reset state and registers its ports on `bus`. 0 or a negative error. */
int vuart_init(struct vuart *u, struct vdev_bus *bus, const char *name);
/* One byte of output (also the HC_PUTCHAR hypercall). '\n' ends the line; '\r' is dropped (a serial
 * driver sends CR LF; a lone CR would put the cursor back over the line's "[cpuN] [NAME] " prefix);
 * '\b' takes back the line's last byte (what the terminal's cursor would do, within the guest's own
 * line); every other byte is shown as vuart_shown says. */
void vuart_putc(struct vuart *u, uint8_t c);
/*
 * What the operator's terminal gets for a guest's byte `c` at column `col` of its line: printable ASCII
 * (0x20-0x7E) as itself; a tab as spaces to the next multiple of 8 columns (where the terminal would
 * have moved the cursor); any other byte as the four characters \xNN. A terminal acts on the rest:
 * C0 controls and ESC sequences (ECMA-48, 5.2 and 5.4), DEL, and 0x80-0x9F, the 8-bit C1 controls
 * (CSI 0x9B, OSC 0x9D, DCS 0x90; ECMA-48, 5.3), which a terminal honours raw or, in UTF-8 mode, as
 * the two bytes 0xC2 0x80-0x9F: a guest could move the cursor, rewrite earlier hv: lines, retitle
 * the window or set the clipboard (OSC 52). So only bytes 0x20-0x7E reach it. Returns the length.
 */
#define VUART_SHOWN_MAX 8
unsigned vuart_shown(uint8_t c, unsigned col, char out[VUART_SHOWN_MAX]);
/* Prints what is left of a line (at guest end). */
void vuart_flush(struct vuart *u);
/* Bytes from the console for the guest: into the receive FIFO as far as it has room, the rest
 * waiting on the "wire" and moved into the FIFO as the guest reads (as if the sender respected
 * flow control), beyond VUART_WIRE dropped. Returns how many were taken. Any CPU. */
unsigned vuart_receive(struct vuart *u, const uint8_t *bytes, unsigned n);
/* Gives (true) or takes away the console focus: with it, the unfinished line shows on the console
 * at once (console_set_tail) instead of waiting for its end. */
void vuart_set_live(struct vuart *u, bool live);
