/* 16550 UART driver, polled both ways. Register layout: National Semiconductor PC16550D datasheet, Table 2
 * (THR/RBR 0, IER 1, FCR 2, LCR 3, MCR 4, LSR 5; DLL/DLM at 0/1 when LCR.DLAB = 1). */
#include "arch/x86/cpu.h"
#include "console/console.h"

#define UART_THR 0
#define UART_RBR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DR   (1 << 0)  /* data ready: a received byte waits in RBR (or the receive FIFO) */
#define LSR_THRE (1 << 5)  /* transmit holding register empty: room for the next byte */
#define LSR_TEMT (1 << 6)  /* transmitter empty: everything has left the wire */
#define LCR_DLAB 0x80

static uint16_t uart_port;

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
	outb(port + UART_FCR, 0x07);         /* enable and clear the FIFOs */
	outb(port + UART_MCR, 0x03);         /* DTR, RTS: ready to receive, for a sender that looks */
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

int uart_getc(void)
{
	uint8_t lsr;

	if (!uart_port)
		return -1;
	lsr = inb(uart_port + UART_LSR);
	/* 0xff: nothing answers at this port (an empty bus floats high), not "data ready". */
	if (lsr == 0xff || !(lsr & LSR_DR))
		return -1;
	return inb(uart_port + UART_RBR);
}
