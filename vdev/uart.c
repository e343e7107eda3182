/* The virtual 16550: registers as the PC16550D datasheet (Table 2) lays them out; no interrupts,
 * no input, an always-ready transmitter. */
#include "console/printk.h"
#include "lib/string.h"
#include "vdev/uart.h"

enum { THR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define LCR_DLAB 0x80
#define LSR_THRE 0x20  /* transmit holding register empty */
#define LSR_TEMT 0x40  /* transmitter empty */

void vuart_flush(struct vuart *u)
{
	if (!u->len)
		return;
	u->line[u->len] = 0;
	pr_info("[%s] %s\n", u->name, u->line);
	u->len = 0;
}

void vuart_putc(struct vuart *u, char c)
{
	if (c == '\n') {
		vuart_flush(u);
		return;
	}
	if (c == '\r')
		return;
	if ((unsigned char)c < 0x20 && c != '\t')
		c = '?';                     /* control bytes would drive the user's terminal */
	u->line[u->len++] = c;
	if (u->len == VUART_LINE - 1)    /* a line without end: print it in pieces */
		vuart_flush(u);
}

static enum vdev_result vuart_access(void *dev, struct vdev_access *a)
{
	struct vuart *u = dev;
	unsigned reg = a->addr - VUART_BASE;
	bool dlab = u->lcr & LCR_DLAB;
	uint8_t v = a->value;

	if (a->size != 1) {
		/* A word or dword access reaches the following registers too, as on the ISA bus;
		 * no driver does it: one byte register at a time here, the rest floating. */
		if (!a->write)
			a->value = ~0u;
		return VDEV_DONE;
	}
	if (!a->write) {
		switch (reg) {
		case THR: v = dlab ? u->dll : 0; break;        /* RBR: no input ever arrives */
		case IER: v = dlab ? u->dlm : u->ier; break;
		case IIR: v = 0x01; break;                      /* no interrupt pending */
		case LCR: v = u->lcr; break;
		case MCR: v = u->mcr; break;
		case LSR: v = LSR_THRE | LSR_TEMT; break;
		case MSR: v = 0xb0; break;                      /* DCD, DSR, CTS: a cable is there */
		default:  v = u->scr; break;
		}
		a->value = v;
		return VDEV_DONE;
	}
	switch (reg) {
	case THR:
		if (dlab)
			u->dll = v;
		else
			vuart_putc(u, (char)v);
		break;
	case IER:
		if (dlab)
			u->dlm = v;
		else
			u->ier = v & 0x0f;
		break;
	case LCR: u->lcr = v; break;
	case MCR: u->mcr = v; break;
	case SCR: u->scr = v; break;
	default: break;                                     /* FCR, LSR, MSR writes: nothing to do */
	}
	return VDEV_DONE;
}

int vuart_init(struct vuart *u, struct vdev_bus *bus, const char *name)
{
	memset(u, 0, sizeof(*u));
	u->name = name;
	return vdev_add_pio(bus, VUART_BASE, 8, vuart_access, u, "uart");
}
