/* The virtual 16550: registers as the PC16550D datasheet (Table 2) lays them out, a receive FIFO fed
 * from the console, the interrupt identification of its Table 4, and an always-ready transmitter.
 *
 *   offset  read (DLAB=0)       write (DLAB=0)      DLAB=1
 *   0       RBR receive buffer  THR transmit        DLL divisor low
 *   1       IER                 IER                 DLM divisor high
 *   2       IIR identification  FCR FIFO control
 *   3       LCR                 LCR
 *   4       MCR                 MCR
 *   5       LSR line status     (ignored)
 *   6       MSR modem status    (ignored)
 *   7       SCR scratch         SCR
 *
 * Simplifications, none visible to a driver that follows the datasheet: bytes leave at once (THR and
 * the transmitter are always empty again), so no transmit FIFO; the receiver never sees parity,
 * framing or break errors; the FIFO's character-timeout indication (IIR 0xC) is given as soon as
 * fewer bytes than the trigger level wait, as if four character times had passed (input arrives in
 * bursts from a keyboard); the console never overruns the FIFO (bytes wait on the "wire" until it
 * has room, as with hardware flow control), so only loopback can set LSR.OE. */
#include "console/console.h"
#include "console/printk.h"
#include "lib/format.h"
#include "lib/string.h"
#include "vdev/uart.h"

enum { THR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
#define LCR_DLAB     0x80
#define IER_RDA      0x01  /* received data available (and, with FIFOs, character timeout) */
#define IER_THRE     0x02  /* transmitter holding register empty */
#define IER_RLS      0x04  /* receiver line status */
#define FCR_ENABLE   0x01  /* FIFOs on */
#define FCR_RX_RESET 0x02  /* clear the receive FIFO (self-clearing) */
#define IIR_NONE     0x01  /* bit 0 set: no interrupt pending */
#define IIR_RLS      0x06  /* receiver line status: highest priority */
#define IIR_RDA      0x04  /* received data at or above the trigger level */
#define IIR_CTI      0x0c  /* character timeout: data below the trigger level (FIFO mode) */
#define IIR_THRE     0x02  /* THR empty: lowest priority we raise (modem status is never raised) */
#define IIR_FIFOS    0xc0  /* bits 7:6 set while FCR bit 0 is set */
#define MCR_OUT2     0x08  /* on a PC, connects the UART's interrupt output to the interrupt controller */
#define MCR_LOOP     0x10  /* local loopback: THR goes to the receiver, MCR outputs to MSR inputs */
#define LSR_DR       0x01  /* data ready */
#define LSR_OE       0x02  /* overrun error */
#define LSR_THRE     0x20  /* transmit holding register empty */
#define LSR_TEMT     0x40  /* transmitter empty */

/* --- receive side (bus lock held) -------------------------------------------------------------------- */

static unsigned fifo_size(const struct vuart *u)
{
	return u->fcr & FCR_ENABLE ? VUART_FIFO : 1;
}

/* FCR bits 7:6: how many bytes make "received data available" (Table 5: 1, 4, 8, 14). */
static unsigned trigger_level(const struct vuart *u)
{
	static const unsigned level[4] = { 1, 4, 8, 14 };

	return u->fcr & FCR_ENABLE ? level[u->fcr >> 6] : 1;
}

/* The highest-priority interrupt pending, in IIR bits 3:0 (Table 4). */
static uint8_t pending(const struct vuart *u)
{
	if ((u->ier & IER_RLS) && u->lsr_errors)
		return IIR_RLS;
	if ((u->ier & IER_RDA) && u->fifo_count)
		return u->fifo_count < trigger_level(u) ? IIR_CTI : IIR_RDA;
	if ((u->ier & IER_THRE) && u->thre_pending)
		return IIR_THRE;
	return IIR_NONE;
}

/* Raises or lowers the interrupt line to match IIR (gated by OUT2, as on a PC). */
static void update_irq(struct vuart *u)
{
	bool level = pending(u) != IIR_NONE && (u->mcr & MCR_OUT2);

	if (level != u->irq_level) {
		u->irq_level = level;
		if (level)
			irq_raise(&u->irq);
		else
			irq_lower(&u->irq);
	}
}

/* A byte reaches the receiver: into the FIFO, or an overrun (FIFO mode: the new byte is lost;
 * without FIFOs it replaces the unread one; LSR.OE either way). */
static void receive_byte(struct vuart *u, uint8_t b)
{
	if (u->fifo_count < fifo_size(u)) {
		u->fifo[(u->fifo_head + u->fifo_count++) % VUART_FIFO] = b;
		return;
	}
	u->lsr_errors |= LSR_OE;
	if (!(u->fcr & FCR_ENABLE))
		u->fifo[u->fifo_head] = b;
}

/* Moves waiting bytes from the wire into the FIFO while it has room (not in loopback: the serial
 * input is disconnected then). */
static void refill(struct vuart *u)
{
	while (!(u->mcr & MCR_LOOP) && u->wire_count && u->fifo_count < fifo_size(u)) {
		receive_byte(u, u->wire[u->wire_head]);
		u->wire_head = (u->wire_head + 1) % VUART_WIRE;
		u->wire_count--;
	}
}

static uint8_t read_rbr(struct vuart *u)
{
	uint8_t b = 0;

	if (u->fifo_count) {
		b = u->fifo[u->fifo_head];
		u->fifo_head = (u->fifo_head + 1) % VUART_FIFO;
		u->fifo_count--;
		refill(u);
	}
	return b;
}

static void write_fcr(struct vuart *u, uint8_t v)
{
	/* Changing FCR bit 0 clears both FIFOs; bit 1 clears the receive FIFO (datasheet, FCR). */
	if ((v ^ u->fcr) & FCR_ENABLE || ((v & FCR_ENABLE) && (v & FCR_RX_RESET)))
		u->fifo_count = u->fifo_head = 0;
	u->fcr = v & (FCR_ENABLE | 0xc8);            /* enable, DMA mode select, trigger level */
	if (!(u->fcr & FCR_ENABLE))
		u->fcr = 0;
	refill(u);
}

unsigned vuart_receive(struct vuart *u, const uint8_t *bytes, unsigned n)
{
	unsigned taken = 0;

	spin_lock(&u->bus->lock);
	for (; taken < n && u->wire_count < VUART_WIRE; taken++)
		u->wire[(u->wire_head + u->wire_count++) % VUART_WIRE] = bytes[taken];
	u->rx_bytes += taken;
	u->rx_dropped += n - taken;
	refill(u);
	update_irq(u);
	spin_unlock(&u->bus->lock);
	return taken;
}

/* --- transmit side (out_lock held) ------------------------------------------------------------------- */

/*
 * With the focus, the console shows the unfinished line as its last line: "[NAME] text". What that
 * puts on the wire (a redraw of the whole line after a backspace) comes out of the guest's print
 * budget (vdev/vdev.h): over it, the tail stays as it was, and the next change the budget allows
 * draws the line as it is then (console_set_tail compares with what shows).
 */
static void show_tail(struct vuart *u)
{
	char t[VUART_LINE + 40];
	size_t n;

	if (!u->live || !vdev_may_draw(u->bus))
		return;
	n = u->len ? snformat(t, sizeof(t), "[%s] ", u->name) : 0;
	memcpy(t + n, u->line, u->len);
	vdev_drew(u->bus, console_set_tail(t, n + u->len));
}

static void flush_locked(struct vuart *u)
{
	if (!u->len)
		return;
	u->line[u->len] = 0;
	if (u->live)                         /* the whole line replaces what showed of it (an erase) */
		vdev_drew(u->bus, console_set_tail(NULL, 0));
	if (vdev_may_print(u->bus, u->len + 16))   /* with its "[cpuN] [NAME] " and line end, about */
		pr_info("[%s] %s\n", u->name, u->line);
	u->len = u->nbytes = 0;
}

unsigned vuart_shown(uint8_t c, unsigned col, char out[VUART_SHOWN_MAX])
{
	static const char hex[] = "0123456789abcdef";
	unsigned n;

	if (c >= 0x20 && c <= 0x7e) {
		out[0] = (char)c;
		return 1;
	}
	if (c == '\t') {
		for (n = 0; n == 0 || (col + n) % 8; n++)
			out[n] = ' ';
		return n;
	}
	out[0] = '\\', out[1] = 'x', out[2] = hex[c >> 4], out[3] = hex[c & 15];
	return 4;
}

static void putc_locked(struct vuart *u, uint8_t c)
{
	char shown[VUART_SHOWN_MAX];
	unsigned n;

	if (c == '\n') {
		flush_locked(u);
		return;
	}
	if (c == '\r')
		return;
	if (c == '\b') {                     /* backspace: the terminal's cursor goes back one byte */
		if (u->nbytes)
			u->len -= u->width[--u->nbytes];   /* all of what that byte showed as */
		show_tail(u);
		return;
	}
	n = vuart_shown(c, u->len, shown);
	if (u->len + n > VUART_LINE - 1)  /* a line without end: print it in pieces */
		flush_locked(u);
	memcpy(u->line + u->len, shown, n);
	u->len += n;
	u->width[u->nbytes++] = (uint8_t)n;
	if (u->len == VUART_LINE - 1)
		flush_locked(u);
	else
		show_tail(u);
}

void vuart_putc(struct vuart *u, uint8_t c)
{
	spin_lock(&u->out_lock);
	putc_locked(u, c);
	spin_unlock(&u->out_lock);
}

void vuart_flush(struct vuart *u)
{
	spin_lock(&u->out_lock);
	flush_locked(u);
	spin_unlock(&u->out_lock);
}

void vuart_set_live(struct vuart *u, bool live)
{
	spin_lock(&u->out_lock);
	u->live = live;
	if (live) {
		/* Whatever showed before (the monitor's prompt) goes, even when the guest's budget
		 * keeps its own line from showing yet (the operator's doing, not the guest's). */
		if (u->len && vdev_may_draw(u->bus))
			show_tail(u);
		else
			console_set_tail(NULL, 0);
	}
	spin_unlock(&u->out_lock);
}

/* --- the registers ------------------------------------------------------------------------------------ */

static uint8_t read_reg(struct vuart *u, unsigned reg)
{
	bool dlab = u->lcr & LCR_DLAB;
	uint8_t v;

	/* The reads that change what interrupts (RBR, IIR, LSR) update the line; the others change
	 * nothing. */
	switch (reg) {
	case THR:
		if (dlab)
			return u->dll;
		v = read_rbr(u);
		update_irq(u);
		return v;
	case IER:
		return dlab ? u->dlm : u->ier;
	case IIR:
		v = pending(u);
		if (v == IIR_THRE) {
			u->thre_pending = false; /* reading IIR acknowledges a THR-empty interrupt */
			update_irq(u);
		}
		return v | (u->fcr & FCR_ENABLE ? IIR_FIFOS : 0);
	case LCR:
		return u->lcr;
	case MCR:
		return u->mcr;
	case LSR:
		v = LSR_THRE | LSR_TEMT | (u->fifo_count ? LSR_DR : 0) | u->lsr_errors;
		u->lsr_errors = 0;              /* error bits clear when LSR is read */
		update_irq(u);
		return v;
	case MSR:
		if (u->mcr & MCR_LOOP)          /* CTS=RTS, DSR=DTR, RI=OUT1, DCD=OUT2 */
			return (uint8_t)((u->mcr & 0x02 ? 0x10 : 0) | (u->mcr & 0x01 ? 0x20 : 0) |
					 (u->mcr & 0x04 ? 0x40 : 0) | (u->mcr & 0x08 ? 0x80 : 0));
		return 0xb0;                    /* DCD, DSR, CTS: a cable is there */
	default:
		return u->scr;
	}
}

/* Returns true when `v` is a byte to transmit (sent once the lock is dropped). */
static bool write_reg(struct vuart *u, unsigned reg, uint8_t v)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case THR:
		if (dlab) {
			u->dll = v;
			return false;
		}
		u->thre_pending = true;         /* sent at once: THR is empty again */
		if (u->mcr & MCR_LOOP) {
			receive_byte(u, v);
			return false;
		}
		return true;
	case IER:
		if (dlab) {
			u->dlm = v;
		} else {
			/* Enabling the THR-empty interrupt while THR is empty raises it at once. */
			if (!(u->ier & IER_THRE) && (v & IER_THRE))
				u->thre_pending = true;
			u->ier = v & 0x0f;
		}
		return false;
	case IIR:
		write_fcr(u, v);
		return false;
	case LCR: u->lcr = v; return false;
	case MCR:
		u->mcr = v & 0x1f;
		refill(u);                      /* leaving loopback reconnects the input */
		return false;
	case SCR: u->scr = v; return false;
	default: return false;              /* LSR, MSR: read-only (factory test writes ignored) */
	}
}

static enum vdev_result vuart_access(void *dev, struct vdev_access *a)
{
	struct vuart *u = dev;
	unsigned reg = a->addr - VUART_BASE;
	bool send;

	if (a->size != 1) {
		/* A word or dword access reaches the following registers too, as on the ISA bus;
		 * no driver does it: one byte register at a time here, the rest floating. */
		if (!a->write)
			a->value = ~0u;
		return VDEV_DONE;
	}
	if (!a->write) {                        /* vdev_pio holds the bus lock */
		a->value = read_reg(u, reg);   /* (which updates the line when the read changed it) */
		return VDEV_DONE;
	}
	send = write_reg(u, reg, (uint8_t)a->value);
	update_irq(u);
	if (send)
		vuart_putc(u, (uint8_t)a->value);
	return VDEV_DONE;
}

int vuart_init(struct vuart *u, struct vdev_bus *bus, const char *name)
{
	memset(u, 0, sizeof(*u));
	u->name = name;
	u->bus = bus;
	return vdev_add_pio(bus, VUART_BASE, 8, vuart_access, u, "uart");
}
