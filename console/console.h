/* The console: where printk's lines go (a 16550 UART and, where there is one, the screen), and where
 * the operator's keystrokes come from (the UART). */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* 16550 UART on `port` at `baud` (COM1 = 0x3F8, 115200 before the command line is read). */
void uart_init(uint16_t port, uint32_t baud);
void uart_write(const char *s, size_t n);   /* waits for the transmitter before each byte */
/* Sends from `s` only what the transmitter takes now without waiting (its FIFO, when empty); returns
 * how many of the n bytes it took ('\n' goes out as CR LF). One caller at a time. */
size_t uart_send_some(const char *s, size_t n);
/* How long the transmitter takes to send what uart_send_some gives it at most (a full FIFO), in us. */
uint64_t uart_fifo_us(void);
void uart_drain(void);          /* returns once the last byte has left the transmitter */
uint16_t uart_io_port(void);    /* the console UART's port, 0 when there is none */
/* The next received byte from the receive ring, or -1 when none is waiting; without the receive
 * interrupt it first polls the UART (LSR.DR). One consumer. */
int uart_getc(void);
/* Receive by interrupt: turns on the UART's received-data interrupt (IER bit 0) and its IRQ line (MCR
 * OUT2); the caller has routed that IRQ to a handler that calls uart_rx_interrupt, still masked, and
 * calls uart_rx_poll once it is unmasked (a byte that came meanwhile raised no new edge). */
void uart_rx_irq_on(void);
void uart_rx_interrupt(void);   /* the interrupt handler's work: moves received bytes into the ring */
/* Moves what the UART holds into the ring now (counted as polled). Any CPU, any interrupt state. */
void uart_rx_poll(void);
bool uart_rx_by_irq(void);      /* the receive interrupt is on */
struct uart_rx_stats {
	uint64_t interrupts;        /* receive interrupts taken */
	uint64_t irq_bytes;         /* bytes the interrupt handler moved */
	uint64_t polled_bytes;      /* bytes a polling read moved */
	uint64_t dropped;           /* bytes lost to a full ring */
};
void uart_rx_stats(struct uart_rx_stats *s);
/* Nothing received waits, neither in the ring nor in the UART (LSR.DR clear). */
bool uart_rx_quiet(void);

/* VGA text mode (80x25 at 0xB8000), the screen under a BIOS boot. */
void vga_init(void);
void vga_write(const char *s, size_t n);

/* Adds the VGA text screen to the consoles (BIOS boots with a text mode). */
void console_enable_screen(void);

/*
 * Output goes through a ring (console/printk.c): printk and the tail put their bytes there under a
 * short lock, and the UART is fed from it without making anyone wait: console_kick sends what the
 * transmitter takes now. Until console_start_async (while the hypervisor starts up) and after a panic,
 * every printk waits until its bytes are sent, as a plain polled console does.
 */
void console_start_async(void);
/* Any CPU, any time: sends what the UART takes now, unless another CPU is at it. */
void console_kick(void);
/* Bytes wait in the ring: the caller should come back within console_kick_us to send more. */
bool console_pending(void);
uint64_t console_kick_us(void);
/* Sends everything in the ring and waits until it has left the UART (power-off, reset, panic). */
void console_flush(void);
struct console_out_stats {
	uint64_t bytes;             /* put in the ring */
	uint64_t waits;             /* times a CPU found the ring full and waited for the UART */
	uint64_t most;              /* the most bytes that waited in it at once */
};
void console_out_stats(struct console_out_stats *s);

/* A byte typed on the console (the UART), or -1 when none is waiting. */
int console_getc(void);
/* Input comes by interrupt (irq_console_init): a CPU waiting for a key may halt, or open an interrupt
 * window, instead of polling. */
bool console_input_by_irq(void);
/* Nothing typed waits to be read (uart_rx_quiet): a key seen later came after this call. */
bool console_rx_quiet(void);

/*
 * The tail: a last, unfinished line the serial console shows below everything printk printed (the
 * monitor's prompt and what is typed after it, or the focused guest's prompt). printk erases it
 * ("\r", ESC [ K), prints its lines, and draws it again, so it stays the bottom line of the terminal;
 * a tail that only grows is drawn by sending the new characters. Longer than one line of the
 * terminal (TAIL_COLS), only its end shows. NULL or n = 0 removes it. Any CPU; serialized with printk.
 * Returns the bytes the change put into the output ring (0 for the tail already shown; a change other
 * than growth erases and redraws the whole line), for a caller that answers for them (vdev/uart.c
 * charges them to the guest's print limit).
 */
#define TAIL_COLS 79
size_t console_set_tail(const char *s, size_t n);

/* Parses `console=` (com1..com4 or a hex port, then an optional ",baud"). 0, or -EINVAL. */
int console_parse(const char *val, uint16_t *port, uint32_t *baud);

/* What panic() does after printing, set by the core (power off or halt). */
extern void (*panic_action)(void);
/* How panic() stops the other CPUs before it prints, set by arch/x86 once it can (desc.c, with the
 * IDT): false when another CPU is already panicking, and this one then parks silently. NULL: nothing
 * to stop yet. A hook, because console/ sits below arch/x86 (docs/design.md, Layout). */
extern bool (*panic_stop_others)(void);
extern int console_loglevel;
