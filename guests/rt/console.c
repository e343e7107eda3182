/*
 * Console output on the 16550 UART at 0x3F8 and a small printf.
 * No UART set-up: the hypervisor's virtual 16550 and QEMU's ignore baud and line settings, and
 * GRUB leaves a real one programmed. We only wait for the transmitter to take each byte.
 */
#include <stdarg.h>

#include "rt.h"

#define UART_THR 0x3F8         /* transmit holding register (DLAB = 0) */
#define UART_LSR 0x3FD         /* line status register */
#define UART_LSR_THRE (1 << 5) /* THR empty: the UART takes another byte */

void putc(char c)
{
	while (!(inb(UART_LSR) & UART_LSR_THRE))
		;
	outb(UART_THR, (uint8_t)c);
}

static void puts_pad(const char *s, int width, char pad)
{
	int len = (int)strlen(s);
	while (width-- > len)
		putc(pad);
	while (*s)
		putc(*s++);
}

/* Digits of v in base 10 or 16 into buf (at least 21 bytes), returns buf. */
static char *utoa(uint64_t v, unsigned base, char *buf)
{
	char tmp[24];
	int n = 0;
	do {
		uint32_t d;
		v = udiv64(v, base, &d);
		tmp[n++] = "0123456789abcdef"[d];
	} while (v);
	for (int i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	buf[n] = 0;
	return buf;
}

/* One printf call at a time over all CPUs, so a line (one call) is never cut by another CPU's: a
 * spinlock, taken with interrupts off so a handler on this CPU cannot wait for it forever. NMI
 * handlers must not print. */
static spinlock_t console_lock;

/* %s %c %d %u %x %p, with l/ll length, '0' flag and a width. Called with console_lock held. */
static void vprint(const char *fmt, va_list ap)
{
	char buf[24];
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putc(*fmt);
			continue;
		}
		char pad = ' ';
		int width = 0, lng = 0;
		fmt++;
		if (*fmt == '0')
			pad = '0', fmt++;
		while (*fmt >= '0' && *fmt <= '9')
			width = width * 10 + (*fmt++ - '0');
		while (*fmt == 'l')
			lng++, fmt++;
		uint64_t v;
		switch (*fmt) {
		case 's': {
			const char *s = va_arg(ap, const char *);
			puts_pad(s ? s : "(null)", width, ' ');
			break;
		}
		case 'c':
			putc((char)va_arg(ap, int));
			break;
		case 'd':
		case 'u':
		case 'x':
			if (lng >= 2)
				v = va_arg(ap, unsigned long long);
			else if (lng == 1)
				v = va_arg(ap, unsigned long);
			else
				v = va_arg(ap, unsigned int);
			if (*fmt == 'd') {
				/* Sign-extend from the argument's width. */
				int64_t s = lng >= 2 ? (int64_t)v : lng == 1 ? (int64_t)(long)v : (int64_t)(int)v;
				if (s < 0) {
					putc('-');
					v = (uint64_t)-s;
				}
			}
			puts_pad(utoa(v, *fmt == 'x' ? 16 : 10, buf), width, pad);
			break;
		case 'p':
			putc('0'), putc('x');
			puts_pad(utoa((uintptr_t)va_arg(ap, void *), 16, buf), width, pad);
			break;
		case '%':
			putc('%');
			break;
		default:
			putc('%'), putc(*fmt);
			if (!*fmt)
				fmt--;
			break;
		}
	}
}

int printf(const char *fmt, ...)
{
	va_list ap;
	unsigned long flags = irq_save();
	spin_lock(&console_lock);
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
	spin_unlock(&console_lock);
	irq_restore(flags);
	return 0;
}

int check_count, check_failed;

bool check(bool ok, const char *fmt, ...)
{
	va_list ap;
	unsigned long flags = irq_save();
	spin_lock(&console_lock);
	va_start(ap, fmt);
	vprint(fmt, ap);
	va_end(ap);
	for (const char *s = ok ? " ok\n" : " FAIL\n"; *s; s++)
		putc(*s);
	check_count++;
	check_failed += !ok;
	spin_unlock(&console_lock);
	irq_restore(flags);
	return ok;
}
