/* printk and panic: format a call's text, prefix every line with "[cpuN] ", write it whole. */
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

void console_write(const char *s, size_t n)
{
	uart_write(s, n);
	if (vga_on)
		vga_write(s, n);
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
	console_write(line, n);
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
