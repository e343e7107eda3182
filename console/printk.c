/* printk and panic: format a call's text, prefix every line with "[cpuN] ", write it whole; and the
 * serial console's tail line (console_set_tail), kept below whatever printk writes. */
#include "arch/x86/cpu.h"
#include "arch/x86/spinlock.h"
#include "console/console.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"

static spinlock_t console_lock = SPINLOCK_INIT;
int console_loglevel = LOG_INFO;
void (*panic_action)(void);
bool (*panic_stop_others)(void);
static bool vga_on;

/* The tail (console_set_tail): its text, the part the terminal shows (from tail_from on, at most
 * TAIL_COLS characters), and whether it shows now. */
#define TAIL_MAX 256
static char tail[TAIL_MAX];
static size_t tail_len, tail_from;
static bool tail_drawn;

void console_write(const char *s, size_t n)
{
	uart_write(s, n);
	if (vga_on)
		vga_write(s, n);
}

/* The tail goes to the serial console only: the VGA text screen has no carriage return to erase it. */
static void tail_erase(void)
{
	if (tail_drawn)
		uart_write("\r\x1b[K", 4);     /* back to column 0, erase to the end of the line (VT100) */
	tail_drawn = false;
}

/* Draws the tail from tail_from; one that no longer fits from there scrolls by half a line, as
 * line editors do, so a growing tail costs about two characters per character, not a whole line. */
static void tail_draw(void)
{
	if (tail_len <= TAIL_COLS)
		tail_from = 0;
	else if (tail_from > tail_len || tail_len - tail_from > TAIL_COLS)
		tail_from = tail_len - TAIL_COLS / 2;
	if (tail_len) {
		uart_write(tail + tail_from, tail_len - tail_from);
		tail_drawn = true;
	}
}

void console_set_tail(const char *s, size_t n)
{
	if (!s)
		n = 0;
	if (n > TAIL_MAX) {
		s += n - TAIL_MAX;
		n = TAIL_MAX;
	}
	spin_lock(&console_lock);
	if (tail_drawn && n > tail_len && n - tail_from <= TAIL_COLS && !memcmp(s, tail, tail_len)) {
		uart_write(s + tail_len, n - tail_len);     /* it grew and still fits: draw what is new */
		memcpy(tail + tail_len, s + tail_len, n - tail_len);
		tail_len = n;
	} else if (!(tail_drawn && n == tail_len && !memcmp(s, tail, n))) {
		tail_erase();
		memcpy(tail, s, n);
		tail_len = n;
		tail_draw();
	}
	spin_unlock(&console_lock);
}

int console_getc(void)
{
	return uart_getc();
}

bool console_input_by_irq(void)
{
	return uart_rx_by_irq();
}

bool console_rx_quiet(void)
{
	return uart_rx_quiet();
}

void console_enable_screen(void)
{
	vga_init();
	vga_on = true;
}

void console_flush(void)
{
	uart_drain();
}

int console_parse(const char *val, uint16_t *port, uint32_t *baud)
{
	static const uint16_t com[] = { 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
	const char *comma = strchr(val, ',');
	uint64_t v = 0;

	if (!strncmp(val, "com", 3) && val[3] >= '1' && val[3] <= '4' && (val[4] == ',' || !val[4])) {
		*port = com[val[3] - '1'];
	} else if (!strncmp(val, "0x", 2)) {
		for (val += 2; *val && *val != ','; val++) {
			int d = *val >= '0' && *val <= '9' ? *val - '0' :
				(*val | 0x20) >= 'a' && (*val | 0x20) <= 'f' ? (*val | 0x20) - 'a' + 10 : -1;
			if (d < 0 || (v = v * 16 + d) > 0xffff)
				return -EINVAL;
		}
		if (!v)
			return -EINVAL;  /* "0x" alone, or port 0 (the DMA controller's) */
		*port = v;
	} else {
		return -EINVAL;
	}
	if (comma) {
		for (v = 0, val = comma + 1; *val; val++) {
			if (*val < '0' || *val > '9' || (v = v * 10 + (*val - '0')) > 115200)
				return -EINVAL;
		}
		if (!v || 115200 % v)
			return -EINVAL; /* the divisor must be whole */
		*baud = v;
	}
	return 0;
}

void vprintk(int level, const char *fmt, va_list ap)
{
	char text[1024], line[1200];
	size_t n = 0;
	unsigned cpu = this_cpu_id();
	bool line_start = true;

	if (level > console_loglevel)
		return;
	format(text, sizeof(text), fmt, ap);
	for (const char *p = text; *p && n < sizeof(line) - 16; p++) {
		if (line_start) {
			n += snformat(line + n, sizeof(line) - n, "[cpu%u] ", cpu);
			line_start = false;
		}
		line[n++] = *p;
		if (*p == '\n')
			line_start = true;
	}
	if (!line_start && n < sizeof(line))  /* every call ends its line */
		line[n++] = '\n';
	spin_lock(&console_lock);
	tail_erase();
	console_write(line, n);
	tail_draw();
	spin_unlock(&console_lock);
}

void printk(int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintk(level, fmt, ap);
	va_end(ap);
}

void panic(const char *fmt, ...)
{
	va_list ap;

	cli();
	/* The first CPU to panic stops the others (arch/x86 does it: an NMI that parks them); a second
	 * panicking CPU just parks. */
	if (panic_stop_others && !panic_stop_others())
		for (;;)
			hlt();
	/* Another CPU may hold the console lock forever now: take it over. */
	spin_unlock(&console_lock);
	va_start(ap, fmt);
	vprintk(LOG_ERR, fmt, ap);
	va_end(ap);
	printk(LOG_ERR, "hv: panic: system stopped\n");
	console_flush();
	if (panic_action)
		panic_action();
	for (;;) {
		cli();
		hlt();
	}
}
