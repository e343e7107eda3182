/* Host unit tests of vdev/uart.c: the virtual 16550 driven through its ports as a guest would, and fed
 * as the console does (vuart_receive): FIFO and wire, IIR priorities, the interrupt line, loopback,
 * output lines, the console tail, and what a guest's every byte value becomes on the operator's terminal
 * (through the UART and HC_PUTCHAR). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "console/console.h"
#include "tessera/hypercall.h"
#include "vdev/hypercall.h"
#include "vdev/uart.h"
#include "tests/unit/unit.h"

enum { RBR = 0, THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

static struct vdev_bus bus;
static struct vuart u;
static int irq_level = -1;              /* what the line was last driven to */
static unsigned irq_changes;
static char tail[512];                  /* console_set_tail's last text */
static unsigned tails;
static uint64_t tail_bytes;             /* what the tails put on the wire, all told */

/* The console's tail, as vdev/uart.c calls it (console/printk.c in the hypervisor), with the bytes
 * that would go on the wire: growth draws the new part; any other change erases ("\r", ESC [ K)
 * and draws the whole line; no change, nothing. */
size_t console_set_tail(const char *s, size_t n)
{
	size_t old = strlen(tail), put = 0;

	if (!s)
		n = 0;
	if (old && n > old && !memcmp(s, tail, old))
		put = n - old;
	else if (!(n == old && !memcmp(s ? s : "", tail, n)))
		put = (old ? 4 : 0) + n;
	memcpy(tail, s ? s : "", n);
	tail[n] = 0;
	tails++;
	tail_bytes += put;
	return put;
}

static void irq_set(void *ctx, unsigned gsi, bool level)
{
	(void)ctx;
	CHECK_EQ(gsi, 4);
	irq_level = level;
	irq_changes++;
}

static void setup(void)
{
	vdev_bus_init(&bus, "t", NULL);
	CHECK_EQ(vuart_init(&u, &bus, "t"), 0);
	u.irq = (struct irq_line){ irq_set, NULL, 4 };
	irq_level = -1;
	irq_changes = 0;
	tails = 0;
	tail[0] = 0;
	unit_log_clear();
}

static uint8_t in(unsigned reg)
{
	struct vdev_access a = { VUART_BASE + reg, 1, false, 0xdead, 0 };

	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
	return (uint8_t)a.value;
}

static void out(unsigned reg, uint8_t v)
{
	struct vdev_access a = { VUART_BASE + reg, 1, true, v, 0 };

	CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
}

static unsigned receive(const char *s)
{
	return vuart_receive(&u, (const uint8_t *)s, (unsigned)strlen(s));
}

static void test_reset_state(void)
{
	setup();
	CHECK_EQ(in(LSR), 0x60);            /* THRE, TEMT; no data */
	CHECK_EQ(in(IIR), 0x01);            /* nothing pending, FIFOs off */
	CHECK_EQ(in(IER), 0);
	CHECK_EQ(in(LCR), 0);
	CHECK_EQ(in(MCR), 0);
	CHECK_EQ(in(MSR), 0xb0);
	CHECK_EQ(in(RBR), 0);               /* nothing received */
	out(SCR, 0x5a);
	CHECK_EQ(in(SCR), 0x5a);
}

/* Without FIFOs the receiver holds one byte; the rest wait on the wire and come in order. */
static void test_receive_no_fifo(void)
{
	setup();
	CHECK_EQ(receive("abc"), 3);
	CHECK_EQ(u.fifo_count, 1);
	CHECK_EQ(u.wire_count, 2);
	CHECK_EQ(in(LSR) & 1, 1);
	CHECK_EQ(in(RBR), 'a');
	CHECK_EQ(in(LSR) & 1, 1);
	CHECK_EQ(in(RBR), 'b');
	CHECK_EQ(in(RBR), 'c');
	CHECK_EQ(in(LSR) & 1, 0);
	CHECK_EQ(u.rx_bytes, 3);
	CHECK_EQ(u.rx_dropped, 0);
}

static void test_receive_fifo_and_wire(void)
{
	char s[21];

	setup();
	out(FCR, 0x07);                     /* FIFOs on, both cleared */
	CHECK_EQ(in(IIR) & 0xc0, 0xc0);
	for (int i = 0; i < 20; i++)
		s[i] = (char)('A' + i);
	s[20] = 0;
	CHECK_EQ(receive(s), 20);
	CHECK_EQ(u.fifo_count, 16);
	CHECK_EQ(u.wire_count, 4);
	for (int i = 0; i < 20; i++)
		CHECK_EQ(in(RBR), 'A' + i);
	CHECK_EQ(in(LSR) & 1, 0);
	/* The wire holds VUART_WIRE; more is dropped and counted. */
	setup();
	{
		static char big[301];

		memset(big, 'x', 300);
		big[300] = 0;
		CHECK_EQ(receive(big), VUART_WIRE);
		CHECK_EQ(u.rx_dropped, 300 - VUART_WIRE);
		for (int i = 0; i < VUART_WIRE; i++)
			CHECK_EQ(in(RBR), 'x');
		CHECK_EQ(in(LSR) & 1, 0);
	}
	/* Resetting the receive FIFO drops what it holds; the wire refills it. */
	setup();
	out(FCR, 0x01);
	CHECK_EQ(receive("0123456789abcdefXY"), 18);
	out(FCR, 0x03);
	CHECK_EQ(in(RBR), 'X');
	CHECK_EQ(in(RBR), 'Y');
	CHECK_EQ(in(LSR) & 1, 0);
	/* Turning the FIFOs off clears them too. */
	CHECK_EQ(receive("pq"), 2);
	out(FCR, 0x00);
	CHECK_EQ(in(LSR) & 1, 0);
	CHECK_EQ(in(IIR), 0x01);
}

/* IIR: receiver line status > received data (or character timeout below the trigger) > THR empty. */
static void test_iir_priorities(void)
{
	setup();
	out(FCR, 0x41);                     /* FIFOs on, trigger level 4 */
	out(IER, 0x07);                     /* RDA, THRE, RLS */
	CHECK_EQ(in(IIR), 0xc2);            /* enabling THRE with THR empty raises it... */
	CHECK_EQ(in(IIR), 0xc1);            /* ...and reading IIR acknowledged it */
	CHECK_EQ(receive("ab"), 2);
	CHECK_EQ(in(IIR), 0xcc);            /* below the trigger level: character timeout */
	CHECK_EQ(receive("cd"), 2);
	CHECK_EQ(in(IIR), 0xc4);            /* at the trigger level: received data available */
	out(THR, '.');                      /* THR empties again at once */
	CHECK_EQ(in(IIR), 0xc4);            /* data still outranks THRE */
	for (int i = 0; i < 4; i++)
		in(RBR);
	CHECK_EQ(in(IIR), 0xc2);
	CHECK_EQ(in(IIR), 0xc1);
	/* An overrun (in loopback: the FIFO full, one more byte) is the line-status interrupt until LSR is read. */
	out(MCR, 0x10);
	for (int i = 0; i < 17; i++)
		out(THR, (uint8_t)i);
	CHECK_EQ(in(IIR), 0xc6);
	CHECK_EQ(in(LSR) & 0x03, 0x03);     /* DR, OE */
	CHECK_EQ(in(LSR) & 0x02, 0);        /* read: OE gone */
	CHECK_EQ(in(IIR) & 0x0f, 0x04);
	for (int i = 0; i < 16; i++)
		CHECK_EQ(in(RBR), i);           /* the 17th was lost */
}

/* The interrupt line follows IIR, gated by MCR.OUT2 as on a PC. */
static void test_irq_line(void)
{
	setup();
	out(IER, 0x01);
	CHECK_EQ(receive("z"), 1);
	CHECK_EQ(irq_changes, 0);           /* OUT2 clear: the line stays low */
	out(MCR, 0x08);
	CHECK_EQ(irq_level, 1);
	CHECK_EQ(in(RBR), 'z');
	CHECK_EQ(irq_level, 0);
	CHECK_EQ(receive("y"), 1);          /* from the console's side too */
	CHECK_EQ(irq_level, 1);
	out(IER, 0x00);
	CHECK_EQ(irq_level, 0);
	CHECK_EQ(irq_changes, 4);
}

static void test_loopback(void)
{
	setup();
	out(MCR, 0x10 | 0x0b);              /* loop, OUT2, RTS, DTR */
	CHECK_EQ(in(MSR), 0xb0);            /* DCD=OUT2, CTS=RTS, DSR=DTR */
	out(MCR, 0x10 | 0x04);
	CHECK_EQ(in(MSR), 0x40);            /* RI=OUT1 */
	out(THR, 'L');
	CHECK_EQ(in(RBR), 'L');
	CHECK(unit_log[0] == 0);            /* nothing went to the console */
	CHECK_EQ(receive("w"), 1);          /* the serial input is disconnected meanwhile */
	CHECK_EQ(in(LSR) & 1, 0);
	out(MCR, 0x00);                     /* and reconnected */
	CHECK_EQ(in(RBR), 'w');
}

static void test_divisor_latch(void)
{
	setup();
	out(LCR, 0x83);
	out(0, 0x01);
	out(1, 0x00);
	CHECK_EQ(in(0), 0x01);
	CHECK_EQ(in(1), 0x00);
	out(LCR, 0x03);
	CHECK_EQ(in(IER), 0);               /* the latch did not touch IER */
	CHECK(unit_log[0] == 0);            /* nor transmit */
	{
		struct vdev_access a = { VUART_BASE, 2, false, 0, 0 };

		CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
		CHECK_EQ(a.value, ~0u);             /* a word access floats */
	}
}

static void test_output_lines(void)
{
	setup();
	for (const char *s = "hi\r\n"; *s; s++)
		out(THR, (uint8_t)*s);
	CHECK(strcmp(unit_log, "[t] hi\n") == 0);
	unit_log_clear();
	for (const char *s = "ab\bc\x01\x7f\n"; *s; s++)
		out(THR, (uint8_t)*s);
	CHECK(strcmp(unit_log, "[t] ac\\x01\\x7f\n") == 0);
	/* With the focus, the unfinished line is the console's tail as it grows; its end prints it whole. */
	unit_log_clear();
	vuart_set_live(&u, true);
	CHECK_EQ(tail[0], 0);
	out(THR, '>');
	out(THR, ' ');
	CHECK(strcmp(tail, "[t] > ") == 0);
	out(THR, '\b');
	CHECK(strcmp(tail, "[t] >") == 0);
	CHECK(unit_log[0] == 0);
	out(THR, '\n');
	CHECK(strcmp(unit_log, "[t] >\n") == 0);
	CHECK_EQ(tail[0], 0);
	vuart_set_live(&u, false);
	tails = 0;
	out(THR, 'q');
	CHECK_EQ(tails, 0);                 /* without the focus, no tail */
	vuart_flush(&u);
	CHECK(strstr(unit_log, "[t] q\n") != NULL);
}

/* The byte through HC_PUTCHAR, as the VMCALL exit hands it over (RBX whole: only BL counts). */
static void putchar_hc(uint8_t b)
{
	struct hc_caller c = { 1, 16 << 20, 0, &u };
	struct hc_regs r = { HC_PUTCHAR, 0x1234567800ull | b, 0, 0 };

	CHECK_EQ(hypercall(&c, &r), HC_DONE);
	CHECK_EQ(r.rax, 0);
}

/* Only printable ASCII and the line end reach the log. */
static bool log_is_printable(void)
{
	for (const char *p = unit_log; *p; p++)
		if (*p != '\n' && (*p < 0x20 || *p > 0x7e))
			return false;
	return true;
}

/* Every byte value, alone on a line, through the UART and through HC_PUTCHAR: 0x20-0x7E as
 * themselves, '\n' ends the (empty, so unprinted) line, '\r' and '\b' leave nothing, a tab is spaces to
 * column 8, everything else (C0, DEL, the C1 range 0x80-0x9F, 0xA0-0xFF) the escape \xNN. */
static void test_every_byte(void)
{
	for (int path = 0; path < 2; path++) {
		for (unsigned b = 0; b < 256; b++) {
			char want[32];

			if (b >= 0x20 && b <= 0x7e)
				snprintf(want, sizeof(want), "[t] %c\n", b);
			else if (b == '\n' || b == '\r' || b == '\b')
				want[0] = 0;
			else if (b == '\t')
				snprintf(want, sizeof(want), "[t]         \n");
			else
				snprintf(want, sizeof(want), "[t] \\x%02x\n", b);
			setup();
			if (path)
				putchar_hc((uint8_t)b);
			else
				out(THR, (uint8_t)b);
			out(THR, '\n');
			if (strcmp(unit_log, want))
				printf("byte 0x%02x by %s: got '%s', want '%s'\n", b, path ? "HC_PUTCHAR" : "THR",
				       unit_log, want);
			CHECK(strcmp(unit_log, want) == 0);
			CHECK(log_is_printable());
		}
	}
	/* All 256 in one stream (lines cut at VUART_LINE, a tab mid-line to its next stop, the tail). */
	setup();
	vuart_set_live(&u, true);
	for (unsigned b = 0; b < 256; b++) {
		out(THR, (uint8_t)b);
		putchar_hc((uint8_t)b);
		for (const char *p = tail; *p; p++)
			CHECK(*p >= 0x20 && *p <= 0x7e);
	}
	vuart_flush(&u);
	CHECK(log_is_printable());
	CHECK(strstr(unit_log, "\\x9b\\x9b\\x9c\\x9c\\x9d\\x9d") != NULL);   /* CSI, ST, OSC */
	CHECK(strstr(unit_log, "\\x1b\\x1b") != NULL);                         /* ESC */
	CHECK(strstr(unit_log, "~~\\x7f\\x7f\\x80") != NULL);
	setup();
	for (const char *s = "ab\tc\td\n"; *s; s++)
		out(THR, (uint8_t)*s);
	CHECK(strcmp(unit_log, "[t] ab      c       d\n") == 0);
	unit_log_clear();                                   /* backspace takes back a byte's whole escape */
	for (const char *s = "a\x07\b\tb\bc\x9b\b\n"; *s; s++)
		out(THR, (uint8_t)*s);
	CHECK(strcmp(unit_log, "[t] a       c\n") == 0);
	unit_log_clear();
	for (unsigned i = 0; i < 40; i++)                   /* escapes are never split across lines */
		out(THR, 0x9b);
	out(THR, '\n');
	{
		char want[256] = "[t] ";

		for (unsigned i = 0; i < (VUART_LINE - 1) / 4; i++)
			strcat(want, "\\x9b");
		strcat(want, "\n[t] \\x9b\n");
		CHECK(strcmp(unit_log, want) == 0);
	}
}

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
	return fake_now;
}

static unsigned count_in_log(const char *what)
{
	unsigned n = 0;

	for (const char *p = unit_log; (p = strstr(p, what)); p++)
		n++;
	return n;
}

/* The print limit (vdev_may_print): VDEV_PRINT_BURST bytes at once, then VDEV_PRINT_RATE a second of
 * the fake clock (1 tick = 1 us); whole lines dropped and counted, the first drop said once; the
 * hypervisor's unclaimed-port lines count against the same guest's budget. */
static void test_print_limit(void)
{
	const unsigned line_cost = 10 + 16;                 /* "0123456789", and the prefix's allowance */
	unsigned printed, burst_lines = VDEV_PRINT_BURST / line_cost;

	vdev_clock = fake_clock;
	vdev_clock_hz = 1000000;
	fake_now = 5000000;
	setup();
	for (unsigned i = 0; i < 1000; i++)
		for (const char *s = "0123456789\n"; *s; s++)
			out(THR, (uint8_t)*s);
	printed = count_in_log("[t] 0123456789\n");
	CHECK_EQ(printed, burst_lines);
	CHECK_EQ(bus.print.dropped_lines, 1000 - burst_lines);
	CHECK_EQ(bus.print.dropped_bytes, (uint64_t)(1000 - burst_lines) * line_cost);
	CHECK_EQ(count_in_log("hv: guest t: output over its limit"), 1);
	/* A second later: VDEV_PRINT_RATE bytes more, then dropping again, said no more. */
	fake_now += 1000000;
	unit_log_clear();
	for (unsigned i = 0; i < 1000; i++)
		for (const char *s = "0123456789\n"; *s; s++)
			out(THR, (uint8_t)*s);
	CHECK_EQ(count_in_log("[t] 0123456789\n"), (VDEV_PRINT_BURST % line_cost + VDEV_PRINT_RATE) / line_cost);
	CHECK_EQ(count_in_log("output over its limit"), 0);
	/* The unclaimed ports' lines come out of the same budget. */
	unit_log_clear();
	for (unsigned port = 0x100; port < 0x200; port++) {
		struct vdev_access a = { port, 1, false, 0, 0 };

		CHECK_EQ(vdev_pio(&bus, &a), VDEV_DONE);
		CHECK_EQ(a.value, 0xff);
	}
	CHECK_EQ(count_in_log("(no device;"), 0);
	/* Long after, the burst is back whole (not more). */
	fake_now += 3600ull * 1000000;
	unit_log_clear();
	for (unsigned i = 0; i < 1000; i++)
		for (const char *s = "0123456789\n"; *s; s++)
			out(THR, (uint8_t)*s);
	CHECK_EQ(count_in_log("[t] 0123456789\n"), burst_lines);
	vdev_clock = NULL;
}

/*
 * The focused guest's tail comes out of its print budget (vdev/vdev.h): 'x', '\b' in a loop, each
 * byte an erase and a redraw of the whole tail, draws no more than the budget once it is used (the
 * clock frozen), never counted as dropped lines; once time has paid the debt, typing shows again.
 */
static void test_tail_limit(void)
{
	uint64_t drawn;

	vdev_clock = fake_clock;
	vdev_clock_hz = 1000000;
	fake_now = 5000000;
	setup();
	vuart_set_live(&u, true);
	tail_bytes = 0;
	for (unsigned i = 0; i < 200000; i++) {
		out(THR, 'x');
		out(THR, '\b');
	}
	drawn = tail_bytes;
	CHECK(drawn >= VDEV_PRINT_BURST);                        /* it drew until the budget was used */
	CHECK(drawn <= VDEV_PRINT_BURST + VUART_LINE + 40);      /* and then at most one tail's debt */
	CHECK(bus.print.tokens <= 0);
	CHECK_EQ(bus.print.dropped_lines, 0);
	CHECK(unit_log[0] == 0);
	/* Alternating same-length lines ('x', 'y', '\b', ...): no more drawn either. */
	for (unsigned i = 0; i < 200000; i++) {
		out(THR, i & 1 ? 'y' : 'x');
		out(THR, '\b');
	}
	CHECK_EQ(tail_bytes, drawn);
	/* A line while in debt, the clock frozen: not printed (it waits for the debt), counted. */
	for (const char *s = "ab\n"; *s; s++)
		out(THR, (uint8_t)*s);
	CHECK_EQ(count_in_log("[t] ab"), 0);
	CHECK_EQ(count_in_log("hv: guest t: output over its limit"), 1);
	CHECK_EQ(bus.print.dropped_lines, 1);
	/* A few seconds later the budget is back: a typed line shows as it grows, and prints whole. */
	fake_now += 5000000;
	unit_log_clear();
	for (const char *s = "ls -l"; *s; s++)
		out(THR, (uint8_t)*s);
	CHECK(strcmp(tail, "[t] ls -l") == 0);
	out(THR, '\n');
	CHECK(strcmp(unit_log, "[t] ls -l\n") == 0);
	CHECK_EQ(tail[0], 0);
	vdev_clock = NULL;
}

int main(int argc, char **argv)
{
	(void)argc;
	RUN(test_reset_state);
	RUN(test_receive_no_fifo);
	RUN(test_receive_fifo_and_wire);
	RUN(test_iir_priorities);
	RUN(test_irq_line);
	RUN(test_loopback);
	RUN(test_divisor_latch);
	RUN(test_output_lines);
	RUN(test_every_byte);
	RUN(test_print_limit);
	RUN(test_tail_limit);
	return unit_report(argv[0]);
}
