/* The virtual 16550: registers as the PC16550D datasheet (Table 2) lays them out; no interrupts,
 * no input, an always-ready transmitter. */
#include "console/printk.h"
#include "vmx/vuart.h"

enum { THR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define LCR_DLAB 0x80
#define LSR_THRE 0x20  /* transmit holding register empty */
#define LSR_TEMT 0x40  /* transmitter empty */

void vuart_flush(struct vuart *u, const char *name)
{
	if (!u->len)
		return;
	u->line[u->len] = 0;
	pr_info("[%s] %s\n", name, u->line);
	u->len = 0;
}

void vuart_putc(struct vuart *u, const char *name, char c)
{
	if (c == '\n') {
		vuart_flush(u, name);
		return;
	}
	if (c == '\r')
		return;
	if ((unsigned char)c < 0x20 && c != '\t')
		c = '?';                     /* control bytes would drive the user's terminal */
	u->line[u->len++] = c;
	if (u->len == VUART_LINE - 1)    /* a line without end: print it in pieces */
		vuart_flush(u, name);
}

void vuart_io(struct vuart *u, const char *name, uint16_t port, bool in, uint32_t *val)
{
	unsigned reg = port - VUART_BASE;
	bool dlab = u->lcr & LCR_DLAB;
	uint8_t v = *val;

	if (in) {
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
		*val = v;
		return;
	}
	switch (reg) {
	case THR:
		if (dlab)
			u->dll = v;
		else
			vuart_putc(u, name, (char)v);
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
}
