/*
 * uartirq: the 16550's interrupts (National Semiconductor PC16550D datasheet: IER, IIR Table 4 with its
 * priorities, FCR trigger levels Table 5, LSR, MCR loopback and OUT2) and IRQ 4's two routes on a PC:
 * the 8259A (master IR4, Intel 8259A datasheet 231468) through the local APIC's LINT0 in ExtINT mode,
 * and the I/O APIC's pin 4 (Intel 82093AA datasheet 290566, 3.2.4: edge and level, mask, remote IRR).
 *   rx=1   also receive a typed line per route (the scenario types on the console with this guest in
 *          focus): `uartirq: rx via ROUTE: type a line` then `uartirq: rx via ROUTE got 'LINE' (N bytes) in
 *          M interrupts ok`
 *   rxend=MS  instead of the checks: receive through the I/O APIC (`uartirq: rx for MS ms: type`) until
 *          MS ms after the first byte, print `uartirq: rx for MS ms: N bytes in M interrupts` and end with
 *          the receive interrupt still on, so that bytes typed meanwhile raise IRQ 4 at a leaving vCPU
 * One line per check ending in ` ok` or ` FAIL`, then `uartirq: N checks, F failed` (exit 0 if F = 0).
 * Nothing is printed while the UART is in loopback (the bytes would come back) or while a check counts
 * interrupts (printing writes THR, which raises THR-empty).
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"

#define COM1 0x3f8
enum { RBR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5 };
#define IER_RDA   0x01   /* received data available (and character timeout) */
#define IER_THRE  0x02   /* transmitter holding register empty */
#define IER_RLS   0x04   /* receiver line status */
#define IIR_NONE  0x01   /* Table 4: bit 0 set, no interrupt pending */
#define IIR_RLS   0x06   /* priority 1: overrun, parity, framing error or break */
#define IIR_RDA   0x04   /* priority 2: received data at the trigger level */
#define IIR_CTI   0x0c   /* priority 2: character timeout (FIFO mode) */
#define IIR_THRE  0x02   /* priority 3: THR empty, cleared by reading IIR or writing THR */
#define IIR_FIFOS 0xc0   /* bits 7:6: FIFOs enabled (FCR bit 0) */
#define MCR_DTR   0x01
#define MCR_RTS   0x02
#define MCR_OUT2  0x08   /* on a PC the UART's INTRPT reaches IRQ 4 only with OUT2 set */
#define MCR_LOOP  0x10
#define LSR_DR    0x01
#define LSR_OE    0x02

#define PIC_BASE   0x20                 /* master vectors 0x20-0x27: IRQ 4 is 0x24 */
#define VEC_PIC    (PIC_BASE + 4)
#define VEC_EDGE   0x34                 /* I/O APIC pin 4, edge */
#define VEC_LEVEL  0x35                 /* I/O APIC pin 4, level: reads IIR at once */
#define VEC_LAZY   0x36                 /* I/O APIC pin 4, level: the first time EOIs without reading IIR */
#define IOAPIC     0xfec00000u
#define RTE_MASKED (1u << 16)
#define RTE_LEVEL  (1u << 15)
#define RTE_RIRR   (1u << 14)           /* remote IRR, read-only */

static volatile uint32_t irqs, lazy_skips, rx_len, rx_irqs, rx_total;
static volatile uint8_t first_iir, isr_in, isr_after, rirr_in, rxbuf[128];
static volatile bool rx_mode, specific_eoi;
static volatile uint32_t spurious7;

/* IRQ 7's vector: counted, never EOIed (a spurious IRQ 7 sets no ISR bit, 8259A datasheet). */
static void on_irq7(struct irq_frame *f)
{
	(void)f;
	spurious7++;
}

static uint8_t uart_in(unsigned reg) { return inb(COM1 + reg); }
static void uart_out(unsigned reg, uint8_t v) { outb(COM1 + reg, v); }

static void ioapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)IOAPIC = reg;          /* IOREGSEL */
	*(volatile uint32_t *)(uintptr_t)(IOAPIC + 0x10) = v;   /* IOWIN */
}

static uint32_t ioapic_read(uint32_t reg)
{
	*(volatile uint32_t *)(uintptr_t)IOAPIC = reg;
	return *(volatile uint32_t *)(uintptr_t)(IOAPIC + 0x10);
}

/* Redirection entry of pin 4 (registers 0x18, 0x19): vector and flags, destination APIC ID 0. */
static void rte4(uint32_t low)
{
	ioapic_write(0x19, 0);
	ioapic_write(0x18, low);
}

/* OCW3 0x0B: the next read of the command port returns the ISR (8259A datasheet, OCW3 RR/RIS). */
static uint8_t pic_isr(void)
{
	outb(0x20, 0x0b);
	return inb(0x20);
}

/* Serves the UART as a driver does: IIR until bit 0 says nothing is pending. The first IIR seen is kept. */
static void serve(void)
{
	for (unsigned n = 0; n < 64; n++) {
		uint8_t iir = uart_in(IIR);

		if (n == 0)
			first_iir = iir;
		if (iir & IIR_NONE)
			return;
		switch (iir & 0x0f) {
		case IIR_RLS:
			(void)uart_in(LSR);            /* reading LSR clears the error bits */
			break;
		case IIR_RDA:
		case IIR_CTI:
			while (uart_in(LSR) & LSR_DR) {
				uint8_t b = uart_in(RBR);

				rx_total++;
				if (rx_len < sizeof(rxbuf))
					rxbuf[rx_len++] = b;
			}
			break;
		default:                               /* THR empty: reading IIR acknowledged it */
			break;
		}
	}
}

static void on_pic(struct irq_frame *f)
{
	(void)f;
	irqs++;
	isr_in = pic_isr();
	serve();
	if (rx_mode)
		rx_irqs++;
	outb(0x20, specific_eoi ? 0x60 | 4 : 0x20);   /* OCW2: specific EOI for IR4, or non-specific */
	isr_after = pic_isr();
}

static void on_ioapic(struct irq_frame *f)
{
	irqs++;
	rirr_in = (ioapic_read(0x18) & RTE_RIRR) != 0;
	if (f->vector == VEC_LAZY && lazy_skips == 0) {
		lazy_skips++;                 /* EOI with the line still asserted: the I/O APIC sends again */
	} else {
		serve();
		if (rx_mode)
			rx_irqs++;
	}
	apic_eoi();
	rirr_in |= ((ioapic_read(0x18) & RTE_RIRR) != 0) << 1;   /* bit 1: remote IRR after the EOI */
}

/* Interrupts on for 2 ms: whatever is pending arrives (an exit's event is injected at the next entry). */
static void window(void)
{
	uint64_t end = rdtsc() + us_to_tsc(2000);

	sti();
	while (rdtsc() < end)
		cpu_relax();
	cli();
}

static void reset_counts(void)
{
	irqs = 0;
	first_iir = 0xff;
	lazy_skips = 0;
}

/* THR empty through the route now set up (OUT2 on): one interrupt, IIR 0xC2 in the handler, none left. */
static void thre_checks(const char *route)
{
	uint8_t after;

	uart_out(IER, 0);
	(void)uart_in(IIR);
	reset_counts();
	uart_out(IER, IER_THRE);              /* THR is empty: enabling its interrupt raises it */
	window();
	after = uart_in(IIR);
	uart_out(IER, 0);
	check(irqs == 1 && first_iir == (IIR_FIFOS | IIR_THRE) && after == (IIR_FIFOS | IIR_NONE),
	      "uartirq: %s: IER=THRE: %u interrupts (want 1), IIR 0x%x in the handler (want 0xc2), then 0x%x (want 0xc1)",
	      route, irqs, first_iir, after);

	uart_out(IER, IER_THRE);
	window();
	reset_counts();
	uart_out(RBR, '\r');                  /* a THR write: empty again at once, THRE again (the console drops CR) */
	window();
	uart_out(IER, 0);
	check(irqs == 1, "uartirq: %s: a THR write raises THRE again: %u interrupts (want 1)", route, irqs);
}

static void pic_route(void)
{
	uint8_t iir;

	irq_set_handler(VEC_PIC, on_pic);
	irq_set_handler(PIC_BASE + 7, on_irq7);
	/* ICW1-4: edge, cascade, ICW4; bases 0x20/0x28; slave on IR2; 8086 mode. OCW1: only IR4 open. */
	outb(0x20, 0x11); outb(0x21, PIC_BASE); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
	outb(0x21, 0xef); outb(0xa1, 0xff);
	/* The local APIC as firmware leaves the boot CPU: LINT0 in ExtINT mode, said again here. */
	apic_write(APIC_SVR, APIC_SVR_ENABLE | VEC_SPURIOUS);
	apic_write(APIC_LVT_LINT0, 0x700);    /* delivery mode 111b, ExtINT (SDM 3A 10.5.1) */

	/* OUT2 clear: the interrupt is pending in IIR but does not reach IRQ 4. */
	uart_out(MCR, MCR_DTR | MCR_RTS);
	reset_counts();
	uart_out(IER, IER_THRE);
	window();
	iir = uart_in(IIR);
	uart_out(IER, 0);
	check(irqs == 0 && iir == (IIR_FIFOS | IIR_THRE),
	      "uartirq: pic: IER=THRE without OUT2: %u interrupts (want 0), IIR 0x%x (want 0xc2)", irqs, iir);

	uart_out(MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	thre_checks("pic");
	check(isr_in == 0x10 && isr_after == 0, "uartirq: pic: ISR 0x%x in the handler (want 0x10: IR4), 0x%x after "
	      "the EOI (want 0)", isr_in, isr_after);

	/* The IMR acts after the IRR (8259A datasheet, "Interrupt Sequence"): an edge while IR4 is masked is
	 * remembered and delivered once unmasked. Specific EOI this time. */
	specific_eoi = true;
	outb(0x21, 0xff);
	reset_counts();
	uart_out(IER, IER_THRE);
	window();
	{
		uint32_t masked = irqs;

		outb(0x20, 0x0a);                 /* OCW3: read IRR */
		iir = inb(0x20);
		outb(0x21, 0xef);
		window();
		check(masked == 0 && (iir & 0x10) && irqs == 1 && isr_in == 0x10 && isr_after == 0,
		      "uartirq: pic: IR4 masked: %u interrupts (want 0), IRR 0x%x (want bit 4); unmasked: %u (want 1); "
		      "specific EOI 0x64 clears ISR 0x%x -> 0x%x", masked, iir, irqs, isr_in, isr_after);
	}
	uart_out(IER, 0);
	specific_eoi = false;

	/* A request that goes away before the CPU takes it (IF=0, then masked): the 8259A drops INT, so
	 * nothing comes, not even the spurious IRQ 7 (vector 0x27) a request lost after INTA would give. */
	reset_counts();
	spurious7 = 0;
	uart_out(IER, IER_THRE);              /* IRQ 4 rises while IF = 0: INTR waits */
	outb(0x21, 0xff);                     /* masked before the CPU acknowledged */
	window();
	outb(0x20, 0x0a);
	iir = inb(0x20);                      /* IRR: still latched */
	uart_out(IER, 0);
	(void)uart_in(IIR);
	check(irqs == 0 && spurious7 == 0 && (iir & 0x10), "uartirq: pic: IR4 masked before it was taken: %u "
	      "interrupts, %u spurious IRQ 7 (want 0, 0), IRR 0x%x (bit 4 still latched)", irqs, spurious7, iir);
	outb(0x21, 0xef);
	window();                             /* the latched edge, now unmasked, comes: serve it */
}

static void ioapic_route(void)
{
	uint32_t rte, masked;

	irq_set_handler(VEC_EDGE, on_ioapic);
	irq_set_handler(VEC_LEVEL, on_ioapic);
	irq_set_handler(VEC_LAZY, on_ioapic);
	irq_set_handler(VEC_PIC, on_pic);     /* anything still coming from the PIC is counted too */
	apic_setup();                          /* masks the 8259A pair and LINT0: the I/O APIC delivers */
	uart_out(MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	rte4(VEC_EDGE);                        /* fixed, physical, active high, edge, unmasked */
	rte = ioapic_read(0x18);
	check(rte == VEC_EDGE, "uartirq: ioapic: pin 4 entry reads back 0x%x (want 0x%x)", rte, VEC_EDGE);
	thre_checks("ioapic edge");

	/* 3.2.4 "Interrupt Mask": an edge on a masked pin is lost, not held. */
	rte4(VEC_EDGE | RTE_MASKED);
	reset_counts();
	uart_out(IER, IER_THRE);
	window();
	masked = irqs;
	rte4(VEC_EDGE);
	window();
	(void)uart_in(IIR);                    /* acknowledge: the line drops */
	uart_out(IER, 0);
	check(masked == 0 && irqs == 0, "uartirq: ioapic: edge on masked pin 4: %u interrupts, after unmasking %u "
	      "(want 0, 0: lost)", masked, irqs);

	/* Level: remote IRR set while the interrupt is in service, cleared by the EOI. */
	rte4(VEC_LEVEL | RTE_LEVEL);
	reset_counts();
	rirr_in = 0;
	uart_out(IER, IER_THRE);
	window();
	uart_out(IER, 0);
	check(irqs == 1 && rirr_in == 1 && !(ioapic_read(0x18) & RTE_RIRR),
	      "uartirq: ioapic: level pin 4: %u interrupts (want 1), remote IRR %u in the handler, %u after the EOI "
	      "(want 1, 0)", irqs, rirr_in & 1, rirr_in >> 1);

	/* Level, EOI while the line is still asserted: the pin sends again at once. */
	rte4(VEC_LAZY | RTE_LEVEL);
	reset_counts();
	uart_out(IER, IER_THRE);
	window();
	uart_out(IER, 0);
	check(irqs == 2 && lazy_skips == 1, "uartirq: ioapic: level pin 4 still asserted at the EOI: %u interrupts "
	      "(want 2: sent again)", irqs);

	/* Level, masked while asserted, then unmasked: the pin sends at once. */
	rte4(VEC_LEVEL | RTE_LEVEL | RTE_MASKED);
	reset_counts();
	uart_out(IER, IER_THRE);
	window();
	masked = irqs;
	rte4(VEC_LEVEL | RTE_LEVEL);
	window();
	uart_out(IER, 0);
	check(masked == 0 && irqs == 1, "uartirq: ioapic: level pin 4 masked: %u interrupts (want 0), unmasked while "
	      "asserted: %u (want 1)", masked, irqs);
	rte4(VEC_EDGE);
}

/* Loopback (MCR bit 4): THR goes straight to the receiver; IIR and LSR are polled with IF=0. */
static void loopback_checks(void)
{
	static const uint8_t trig_bits[4] = { 0x00, 0x40, 0x80, 0xc0 }, trig[4] = { 1, 4, 8, 14 };
	uint8_t below[4], at[4], after[4], got[16], lsr, iir_oe, iir_rda, lsr2, iir1, iir2, iir3, iir4;
	uint8_t fcr0_iir, fcr0_iir2, fcr0_lsr, fcr0_rbr;
	bool data_ok[4], oe_data_ok = true;

	uart_out(IER, 0);
	uart_out(MCR, MCR_LOOP | MCR_DTR | MCR_RTS);
	for (int t = 0; t < 4; t++) {
		uart_out(FCR, 0x07 | trig_bits[t]);   /* FIFOs on, both reset, trigger level (Table 5) */
		uart_out(IER, IER_RDA);
		for (int i = 0; i < trig[t] - 1; i++)
			uart_out(RBR, (uint8_t)('a' + i));
		below[t] = uart_in(IIR);
		uart_out(RBR, (uint8_t)('a' + trig[t] - 1));
		at[t] = uart_in(IIR);
		data_ok[t] = true;
		for (int i = 0; i < trig[t]; i++)
			data_ok[t] &= (uart_in(LSR) & LSR_DR) && uart_in(RBR) == (uint8_t)('a' + i);
		data_ok[t] &= !(uart_in(LSR) & LSR_DR);
		after[t] = uart_in(IIR);
		uart_out(IER, 0);
	}
	/* Overrun: 17 bytes into the 16-byte FIFO. The 17th is lost and LSR.OE set (datasheet, LSR bit 1);
	 * the line-status interrupt outranks received data (Table 4). */
	uart_out(FCR, 0xc7);
	uart_out(IER, IER_RDA | IER_RLS);
	for (int i = 0; i < 17; i++)
		uart_out(RBR, (uint8_t)('A' + i));
	iir_oe = uart_in(IIR);
	lsr = uart_in(LSR);
	lsr2 = uart_in(LSR);
	iir_rda = uart_in(IIR);
	for (int i = 0; i < 16; i++)
		got[i] = uart_in(RBR);
	for (int i = 0; i < 16; i++)
		oe_data_ok &= got[i] == (uint8_t)('A' + i);
	oe_data_ok &= !(uart_in(LSR) & LSR_DR);
	/* Received data outranks THR empty; reading IIR acknowledges THRE. */
	uart_out(FCR, 0x07);
	uart_out(IER, IER_RDA | IER_THRE);
	uart_out(RBR, 'x');
	iir1 = uart_in(IIR);
	(void)uart_in(RBR);
	iir2 = uart_in(IIR);
	iir3 = uart_in(IIR);
	uart_out(IER, 0);
	/* 16450 mode (FIFOs off): IIR bits 7:6 clear; a second byte before the first is read overruns it. */
	uart_out(FCR, 0);
	uart_out(IER, IER_RDA);
	uart_out(RBR, '1');
	fcr0_iir = uart_in(IIR);
	uart_out(RBR, '2');
	fcr0_lsr = uart_in(LSR);
	fcr0_rbr = uart_in(RBR);
	fcr0_iir2 = uart_in(IIR);
	uart_out(IER, 0);
	iir4 = uart_in(IIR);
	uart_out(FCR, 0x07);
	uart_out(MCR, MCR_DTR | MCR_RTS | MCR_OUT2);  /* loopback off: printing is safe again */

	for (int t = 0; t < 4; t++)
		check((below[t] & 0x0f) != IIR_RDA && (below[t] & 0xc0) == IIR_FIFOS &&
		      at[t] == (IIR_FIFOS | IIR_RDA) && data_ok[t] && after[t] == (IIR_FIFOS | IIR_NONE),
		      "uartirq: loopback trigger %u: IIR 0x%x below (not 0xc4), 0x%x at the level (want 0xc4), "
		      "bytes in order, then 0x%x (want 0xc1)", trig[t], below[t], at[t], after[t]);
	check(iir_oe == (IIR_FIFOS | IIR_RLS) && (lsr & (LSR_OE | LSR_DR)) == (LSR_OE | LSR_DR) && !(lsr2 & LSR_OE) &&
	      iir_rda == (IIR_FIFOS | IIR_RDA) && oe_data_ok,
	      "uartirq: loopback overrun: IIR 0x%x (want 0xc6), LSR 0x%x then 0x%x (OE set, then clear), IIR 0x%x "
	      "(want 0xc4), the first 16 bytes kept", iir_oe, lsr, lsr2, iir_rda);
	check(iir1 == (IIR_FIFOS | IIR_RDA) && iir2 == (IIR_FIFOS | IIR_THRE) && iir3 == (IIR_FIFOS | IIR_NONE),
	      "uartirq: loopback priority: IIR 0x%x (want 0xc4: data before THRE), 0x%x once read (want 0xc2), "
	      "0x%x (want 0xc1: THRE acknowledged)", iir1, iir2, iir3);
	check(fcr0_iir == IIR_RDA && (fcr0_lsr & LSR_OE) && fcr0_rbr == '2' && fcr0_iir2 == IIR_NONE &&
	      iir4 == IIR_NONE, "uartirq: loopback 16450 mode: IIR 0x%x (want 0x04), overrun LSR 0x%x, RBR '%c' "
	      "(want '2'), IIR 0x%x (want 0x01)", fcr0_iir, fcr0_lsr, fcr0_rbr, fcr0_iir2);
}

/* A typed line through `route`: RDA interrupts (trigger level 1) until CR or LF. */
static void rx_line(const char *route)
{
	uint32_t n = 0;
	bool done = false;

	uart_out(FCR, 0x07);
	(void)uart_in(IIR);
	rx_len = 0;
	rx_irqs = 0;
	printf("uartirq: rx via %s: type a line\n", route);
	rx_mode = true;
	uart_out(IER, IER_RDA | IER_RLS);
	while (!done) {
		cli();
		for (uint32_t i = n; i < rx_len; i++)
			done |= rxbuf[i] == '\r' || rxbuf[i] == '\n';
		n = rx_len;
		if (done || n == sizeof(rxbuf))
			break;
		sti_hlt();                         /* the next interrupt: only the UART's is open */
	}
	cli();
	uart_out(IER, 0);
	rx_mode = false;
	{
		char line[sizeof(rxbuf) + 1];
		uint32_t len = 0;

		while (len < n && rxbuf[len] != '\r' && rxbuf[len] != '\n') {
			line[len] = (char)rxbuf[len];
			len++;
		}
		line[len] = 0;
		check(len > 0 && rx_irqs >= 1 && rx_irqs <= n, "uartirq: rx via %s got '%s' (%u bytes) in %u interrupts",
		      route, line, len, rx_irqs);
	}
}

/* rxend=MS: typed bytes by the receive interrupt (I/O APIC pin 4, edge) until MS ms after the first,
 * then the end, the interrupt left on and the FIFO empty: the next byte the monitor gives the guest
 * raises IRQ 4 at its vCPU's APIC page while the guest ends (lifetime-input-while-ending). */
static int rx_until_end(uint64_t ms)
{
	uint64_t end;

	irq_set_handler(VEC_EDGE, on_ioapic);
	apic_write(APIC_SVR, APIC_SVR_ENABLE | VEC_SPURIOUS);
	rte4(VEC_EDGE);
	uart_out(MCR, MCR_DTR | MCR_RTS | MCR_OUT2);
	uart_out(FCR, 0x07);
	(void)uart_in(IIR);
	rx_mode = true;
	printf("uartirq: rx for %u ms: type\n", (unsigned)ms);
	uart_out(IER, IER_RDA | IER_RLS);
	while (rx_total == 0)              /* from the first byte on: the rest of the typing is on its way */
		sti_hlt();
	end = rdtsc() + us_to_tsc(ms * 1000);
	sti();
	while (rdtsc() < end)
		cpu_relax();
	cli();
	printf("uartirq: rx for %u ms: %u bytes in %u interrupts\n", (unsigned)ms, rx_total, rx_irqs);
	/* The FIFO emptied last: the next byte raises IRQ 4 anew (an edge), wherever the guest is by then. */
	while (uart_in(LSR) & LSR_DR)
		(void)uart_in(RBR);
	return 0;
}

int main(void)
{
	bool rx = getarg_num("rx", 0);
	uint64_t rxend = getarg_num("rxend", 0);

	if (!time_init() || !apic_probe())
		return 4;
	intr_init();
	cli();
	if (rxend)
		return rx_until_end(rxend);
	loopback_checks();
	pic_route();
	if (rx)
		rx_line("pic");
	ioapic_route();
	if (rx)
		rx_line("ioapic");
	printf("uartirq: %d checks, %d failed\n", check_count, check_failed);
	return check_failed ? 1 : 0;
}
