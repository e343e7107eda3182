/* 16550 UART driver: output polled (waiting for each byte, or only what the transmitter takes now), input
 * by its receive interrupt where the platform routes it (else polled), into a ring the console reads. Register layout: National Semiconductor PC16550D datasheet,
 * Table 2 (THR/RBR 0, IER 1, FCR 2, LCR 3, MCR 4, LSR 5; DLL/DLM at 0/1 when LCR.DLAB = 1). */
#include "arch/x86/cpu.h"
#include "arch/x86/spinlock.h"
#include "console/console.h"

#define UART_THR 0
#define UART_RBR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_IIR 2
#define UART_LSR 5
#define LSR_DR   (1 << 0)  /* data ready: a received byte waits in RBR (or the receive FIFO) */
#define LSR_THRE (1 << 5)  /* transmit holding register empty: room for the next byte */
#define LSR_TEMT (1 << 6)  /* transmitter empty: everything has left the wire */
#define LCR_DLAB 0x80
#define IER_ERBFI (1 << 0) /* received data available interrupt (with FIFOs also the character timeout) */
#define MCR_DTR  (1 << 0)
#define MCR_RTS  (1 << 1)
#define MCR_OUT2 (1 << 3)  /* on a PC, OUT2 gates the UART's INTR pin onto its IRQ line */

static uint16_t uart_port;
static uint32_t uart_baud = 115200;
/* Bytes the transmitter takes at once when LSR.THRE is set: the 16550A's transmit FIFO is then empty
 * and holds 16 (PC16550D datasheet, FIFO mode: "THRE ... set when the XMIT FIFO is empty"); without a
 * working FIFO (IIR bits 7:6 not both set after FCR bit 0, as on the 16450 and the first 16550), one. */
static unsigned tx_fifo = 1;
static bool tx_cr_sent;              /* uart_send_some: a '\n''s CR went out, its LF waits for room */

void uart_init(uint16_t port, uint32_t baud)
{
	uint16_t div = baud ? 115200 / baud : 1;

	if (!div)
		div = 1;
	uart_port = port;
	outb(port + UART_IER, 0);            /* no interrupts: we poll */
	outb(port + UART_LCR, LCR_DLAB);
	outb(port + 0, div & 0xff);
	outb(port + 1, div >> 8);
	outb(port + UART_LCR, 0x03);         /* 8 data bits, no parity, 1 stop bit */
	outb(port + UART_FCR, 0x07);         /* enable and clear the FIFOs; receive trigger level 1 byte */
	outb(port + UART_MCR, MCR_DTR | MCR_RTS); /* ready to receive, for a sender that looks */
	tx_fifo = (inb(port + UART_IIR) & 0xc0) == 0xc0 ? 16 : 1;
	uart_baud = 115200 / div;
}

size_t uart_send_some(const char *s, size_t n)
{
	size_t done = 0;

	if (!uart_port)
		return n;
	if (!(inb(uart_port + UART_LSR) & LSR_THRE))
		return 0;
	for (unsigned room = tx_fifo; done < n && room; room--) {
		if (s[done] == '\n' && !tx_cr_sent) {
			outb(uart_port + UART_THR, '\r');
			tx_cr_sent = true;
			continue;
		}
		outb(uart_port + UART_THR, s[done++]);
		tx_cr_sent = false;
	}
	return done;
}

uint64_t uart_fifo_us(void)
{
	return (uint64_t)tx_fifo * 10 * 1000000 / uart_baud;   /* 10 bits a byte: start, 8 data, stop */
}

uint16_t uart_io_port(void)
{
	return uart_port;
}

static void uart_putc(char c)
{
	/* Poll THRE before every byte: a real (or baud-timed emulated) UART drops bytes otherwise. */
	for (int spins = 0; !(inb(uart_port + UART_LSR) & LSR_THRE); spins++)
		if (spins > 1000000)
			return;                  /* no UART answering at this port: do not hang */
	outb(uart_port + UART_THR, c);
}

void uart_write(const char *s, size_t n)
{
	if (!uart_port)
		return;
	for (; n; n--, s++) {
		if (*s == '\n')
			uart_putc('\r');
		uart_putc(*s);
	}
}

void uart_drain(void)
{
	if (!uart_port)
		return;
	for (int spins = 0; !(inb(uart_port + UART_LSR) & LSR_TEMT) && spins < 1000000; spins++)
		cpu_relax();
}

/*
 * The receive ring: bytes the UART received, oldest at `tail`. Producers (the interrupt handler, or the
 * polling reader) move bytes from the UART into it holding rx_lock with interrupts off, so the two never
 * interleave their reads of RBR, and bytes enter in the order they came. One consumer (the console's
 * reader, on the CPU the interrupt goes to) advances `tail`. Free-running indexes, RX_RING a power of 2.
 */
#define RX_RING 1024
static uint8_t rx_buf[RX_RING];
static volatile unsigned rx_head, rx_tail;
static spinlock_t rx_lock = SPINLOCK_INIT;
static bool rx_irq;                   /* the receive interrupt is on: uart_getc does not poll */
static struct uart_rx_stats stats;

/* Moves what the UART holds into the ring; the bytes moved. At most 64 reads: a UART that keeps LSR.DR
 * set (a flood, or a broken one) cannot hold the CPU. Caller holds rx_lock, interrupts off. Reading RBR
 * until LSR.DR = 0 also drops the receive interrupt (PC16550D, Table 4: cleared by reading RBR, or the
 * FIFO below its trigger level), so the next byte is a new edge on the IRQ line. */
static unsigned rx_drain(void)
{
	unsigned n = 0;

	for (; n < 64; n++) {
		uint8_t lsr = inb(uart_port + UART_LSR), c;

		/* 0xff: nothing answers at this port (an empty bus floats high), not "data ready". */
		if (lsr == 0xff || !(lsr & LSR_DR))
			break;
		c = inb(uart_port + UART_RBR);
		if (rx_head - rx_tail == RX_RING) {
			stats.dropped++;      /* nobody read for RX_RING bytes: as an overrun, the newest go */
			continue;
		}
		rx_buf[rx_head % RX_RING] = c;
		__atomic_store_n(&rx_head, rx_head + 1, __ATOMIC_RELEASE);
	}
	return n;
}

/* rx_lock with interrupts off (the interrupt handler takes it too); the flags to give back. */
static uint64_t rx_lock_irqsave(void)
{
	uint64_t flags = read_rflags();

	cli();
	spin_lock(&rx_lock);
	return flags;
}

static void rx_unlock_irqrestore(uint64_t flags)
{
	spin_unlock(&rx_lock);
	if (flags & RFLAGS_IF)
		sti();
}

void uart_rx_interrupt(void)
{
	spin_lock(&rx_lock);                  /* interrupts are off in an interrupt gate */
	stats.interrupts++;
	stats.irq_bytes += rx_drain();
	if (inb(uart_port + UART_LSR) & LSR_DR) {
		/* The drain stopped at its limit with data left: the UART's interrupt line stays high,
		 * and the I/O APIC pin is edge triggered (82093AA, 3.2.4), so no further interrupt
		 * would come. Clearing and setting IER.ERBFI drops the line and raises it again
		 * (PC16550D: INTR is the OR of the enabled pending interrupts): a new edge, taken
		 * after this handler's EOI. */
		outb(uart_port + UART_IER, 0);
		outb(uart_port + UART_IER, IER_ERBFI);
	}
	spin_unlock(&rx_lock);
}

void uart_rx_irq_on(void)
{
	uint64_t flags;

	if (!uart_port)
		return;
	flags = rx_lock_irqsave();
	outb(uart_port + UART_IER, IER_ERBFI);
	outb(uart_port + UART_MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	rx_irq = true;
	rx_unlock_irqrestore(flags);
}

void uart_rx_poll(void)
{
	uint64_t flags;

	if (!uart_port)
		return;
	flags = rx_lock_irqsave();
	stats.polled_bytes += rx_drain();
	rx_unlock_irqrestore(flags);
}

bool uart_rx_by_irq(void)
{
	return rx_irq;
}

void uart_rx_stats(struct uart_rx_stats *s)
{
	*s = stats;
}

bool uart_rx_quiet(void)
{
	uint64_t flags;
	bool quiet;

	if (!uart_port)
		return true;
	flags = rx_lock_irqsave();
	quiet = __atomic_load_n(&rx_head, __ATOMIC_ACQUIRE) == rx_tail &&
		!(inb(uart_port + UART_LSR) & LSR_DR);
	rx_unlock_irqrestore(flags);
	return quiet;
}

int uart_getc(void)
{
	unsigned tail = rx_tail;
	uint8_t c;

	if (!rx_irq)
		uart_rx_poll();
	if (__atomic_load_n(&rx_head, __ATOMIC_ACQUIRE) == tail)
		return -1;
	c = rx_buf[tail % RX_RING];
	__atomic_store_n(&rx_tail, tail + 1, __ATOMIC_RELEASE);
	return c;
}
