/* printk and panic: format a call's text, prefix every line with "[cpuN] ", put it whole into the output
 * ring the UART is fed from; and the serial console's tail line (console_set_tail), kept below whatever
 * printk writes. */
#include "arch/x86/cpu.h"
#include "arch/x86/spinlock.h"
#include "console/console.h"
#include "console/printk.h"
#include "lib/errno.h"
#include "lib/format.h"
#include "lib/string.h"

static spinlock_t console_lock = SPINLOCK_INIT;  /* the ring's head and the tail: held to copy bytes */
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

/*
 * The output ring. At 115200 baud a character takes 87 us on the wire; written synchronously under one
 * lock, every CPU that printed waited for every other's lines (a guest printing without pause, or one
 * whose every unknown port is reported, held them all, with the monitor and cross-CPU calls behind).
 * Now a CPU copies its text in under console_lock (lines whole, each CPU's in the order it printed)
 * and leaves. The UART is fed by console_kick from the ring's oldest byte, by one CPU at a time
 * (drain_lock, only ever tried: a CPU that finds another at it goes on) and only with what its
 * transmit FIFO takes without waiting: after each printk, at each pass of every scheduler loop, from
 * idle CPUs every console_kick_us while bytes wait, and on the boot CPU, whose slices are cut to that
 * while bytes wait (core/hv.c). Who waits for the UART: a printk that finds the ring full (output
 * outrunning the wire for 64 KiB: the old behaviour, so nothing is lost), the start-up before
 * console_start_async, console_flush and panic (which writes everything in the ring, then its own
 * lines, synchronously: panic output is never lost). Free-running indexes; OUT_RING a power of 2.
 */
#define OUT_RING (64 * 1024)
static char out_buf[OUT_RING];
static uint64_t out_head;                 /* bytes put (console_lock; read by the sender) */
static uint64_t out_tail;                 /* bytes sent (drain_lock; read by the producers) */
static spinlock_t drain_lock = SPINLOCK_INIT;
static volatile bool out_async;
static struct console_out_stats out_stats;

static uint64_t ring_used(void)
{
	return out_head - __atomic_load_n(&out_tail, __ATOMIC_ACQUIRE);
}

/* Caller holds console_lock and made room (lock_with_room). */
static void ring_put(const char *s, size_t n)
{
	uint64_t h = out_head;
	size_t first = OUT_RING - h % OUT_RING;

	if (first > n)
		first = n;
	memcpy(out_buf + h % OUT_RING, s, first);
	memcpy(out_buf, s + first, n - first);
	__atomic_store_n(&out_head, h + n, __ATOMIC_RELEASE);
	out_stats.bytes += n;
	if (ring_used() > out_stats.most)
		out_stats.most = ring_used();
}

/* Sends from the ring: what the transmitter takes now, or (wait) everything. Caller holds drain_lock. */
static void ring_send(bool wait)
{
	for (;;) {
		uint64_t t = out_tail, h = __atomic_load_n(&out_head, __ATOMIC_ACQUIRE);
		size_t n = OUT_RING - t % OUT_RING, sent;

		if (t == h)
			return;
		if (n > h - t)
			n = h - t;
		if (wait) {
			uart_write(out_buf + t % OUT_RING, n);
			sent = n;
		} else {
			sent = uart_send_some(out_buf + t % OUT_RING, n);
		}
		__atomic_store_n(&out_tail, t + sent, __ATOMIC_RELEASE);
		if (sent < n)
			return;
	}
}

void console_kick(void)
{
	if (!console_pending() || !spin_trylock(&drain_lock))
		return;
	ring_send(false);
	spin_unlock(&drain_lock);
}

/* Everything in the ring, waiting for the UART (a CPU already sending is waited for first). */
static void ring_flush(void)
{
	spin_lock(&drain_lock);
	ring_send(true);
	spin_unlock(&drain_lock);
}

bool console_pending(void)
{
	return ring_used() != 0;
}

uint64_t console_kick_us(void)
{
	return uart_fifo_us();
}

void console_start_async(void)
{
	out_async = true;
}

void console_out_stats(struct console_out_stats *st)
{
	*st = out_stats;
}

/* console_lock, with room in the ring for `need` bytes: while it is full, this CPU feeds the UART. */
static void lock_with_room(size_t need)
{
	for (;;) {
		spin_lock(&console_lock);
		if (OUT_RING - ring_used() >= need)
			return;
		out_stats.waits++;
		spin_unlock(&console_lock);
		console_kick();
		cpu_relax();
	}
}

/* After a put: the bytes go out now (start-up, panic) or as the UART takes them. */
static void after_put(void)
{
	if (out_async)
		console_kick();
	else
		ring_flush();
}

/* The tail goes to the serial console only: the VGA text screen has no carriage return to erase it. */
static void tail_erase(void)
{
	if (tail_drawn)
		ring_put("\r\x1b[K", 4);       /* back to column 0, erase to the end of the line (VT100) */
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
		ring_put(tail + tail_from, tail_len - tail_from);
		tail_drawn = true;
	}
}

size_t console_set_tail(const char *s, size_t n)
{
	uint64_t start;
	size_t put;

	if (!s)
		n = 0;
	if (n > TAIL_MAX) {
		s += n - TAIL_MAX;
		n = TAIL_MAX;
	}
	lock_with_room(TAIL_MAX + 8);
	start = out_head;
	if (tail_drawn && n > tail_len && n - tail_from <= TAIL_COLS && !memcmp(s, tail, tail_len)) {
		ring_put(s + tail_len, n - tail_len);       /* it grew and still fits: draw what is new */
		memcpy(tail + tail_len, s + tail_len, n - tail_len);
		tail_len = n;
	} else if (!(tail_drawn && n == tail_len && !memcmp(s, tail, n))) {
		tail_erase();
		memcpy(tail, s, n);
		tail_len = n;
		tail_draw();
	}
	put = out_head - start;            /* what this change put on the wire, erase and redraw included */
	spin_unlock(&console_lock);
	after_put();
	return put;
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
	ring_flush();
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
	lock_with_room(n + TAIL_MAX + 8);
	tail_erase();
	ring_put(line, n);
	if (vga_on)
		vga_write(line, n);
	tail_draw();
	spin_unlock(&console_lock);
	after_put();
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
	/* Another CPU may hold the console's locks forever now: take them over; from here every line
	 * waits for the UART, after what the ring still holds. */
	out_async = false;
	spin_unlock(&console_lock);
	spin_unlock(&drain_lock);
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
