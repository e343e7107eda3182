/*
 * echo: the console-input guest. Reads its UART by polling LSR.DR (sleeping in `sti; hlt` between
 * polls, woken by its APIC timer at `hz=N`, 200) and echoes what it reads, a line at a time:
 *   echo>                          its prompt; each byte is echoed as it comes; backspace or DEL
 *                                  erases one, Ctrl-U the line; other control bytes echo as '^X'
 *   echo: got 'LINE' (N bytes)     at Enter (CR or LF)
 *   echo: line too long, N bytes dropped   past LINE_MAX bytes
 * "quit" exits 0, "exit N" exits N, "crash" triple-faults (for restart policies).
 * First it turns on 32-bit paging with 4 KiB pages: its RAM 1:1 (up to 64 MiB), GPA 0..4 MiB again
 * at GVA 0xC0000000, its local APIC 1:1 and uncached; it reports where a marker variable is (GVA and GPA) and what it
 * holds, so that the monitor's `gva` can be checked against the guest's own view.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"

#define UART_RBR 0x3F8
#define UART_FCR 0x3FA
#define UART_LSR 0x3FD
#define LSR_DR   0x01            /* data ready */
#define TIMER_VEC 0x40
#define LINE_MAX 120
#define ALIAS 0xC0000000u        /* where GPA 0 shows again */
#define MARKER 0x7e55e7a5u

#define IDENT_MAX (64u << 20)    /* RAM mapped 1:1 up to here */

static uint32_t pd[1024] __attribute__((aligned(4096)));                     /* page directory */
static uint32_t ident[IDENT_MAX >> 22][1024] __attribute__((aligned(4096))); /* RAM 1:1 */
static uint32_t alias[1024] __attribute__((aligned(4096)));                  /* GPA 0..4M at ALIAS */
static uint32_t apic_pt[1024] __attribute__((aligned(4096)));                /* the local APIC page */
static volatile uint32_t marker = MARKER;
static volatile uint32_t ticks;

static void on_timer(struct irq_frame *f)
{
	(void)f;
	ticks++;
	apic_eoi();
}

/* 32-bit paging (SDM Vol. 3A, 4.3), 4 KiB pages only: a PDE points at a table of 1024 PTEs.
 * P | R/W, supervisor; the APIC page also PCD | PWT (uncached). */
static void paging_on(void)
{
	uint32_t end = (uint32_t)ram_end() < IDENT_MAX ? (uint32_t)ram_end() : IDENT_MAX;

	for (uint32_t i = 0; (i << 22) < end; i++) {
		for (uint32_t j = 0; j < 1024; j++)
			ident[i][j] = (i << 22 | j << 12) | 0x03;
		pd[i] = (uint32_t)(uintptr_t)ident[i] | 0x03;
	}
	for (uint32_t j = 0; j < 1024; j++)
		alias[j] = (j << 12) | 0x03;
	pd[ALIAS >> 22] = (uint32_t)(uintptr_t)alias | 0x03;
	apic_pt[(APIC_DEFAULT_BASE >> 12) & 1023] = APIC_DEFAULT_BASE | 0x1b;
	pd[APIC_DEFAULT_BASE >> 22] = (uint32_t)(uintptr_t)apic_pt | 0x03;
	__asm__ volatile("mov %0, %%cr3\n\t"
			 "mov %%cr0, %%eax; or $0x80010000, %%eax; mov %%eax, %%cr0"  /* PG, WP */
			 : : "r"((uint32_t)(uintptr_t)pd) : "eax", "memory");
}

/* The next byte from the UART, sleeping between polls. */
static uint8_t getc_wait(void)
{
	for (;;) {
		cli();
		if (inb(UART_LSR) & LSR_DR) {
			sti();
			return inb(UART_RBR);
		}
		sti_hlt();
	}
}

static void crash(void)
{
	static const struct { uint16_t limit; uint32_t base; } __attribute__((packed)) none = { 0, 0 };

	__asm__ volatile("lidt %0; int3" : : "m"(none));
}

int main(void)
{
	uint32_t hz = (uint32_t)getarg_num("hz", 200), gpa, count;
	char line[LINE_MAX + 1];
	unsigned len = 0, dropped = 0;

	paging_on();
	gpa = (uint32_t)(uintptr_t)&marker;
	printf("echo: marker at GVA 0x%x GPA 0x%x holds 0x%x (alias %s)\n", ALIAS + gpa, gpa,
	       *(volatile uint32_t *)(uintptr_t)(ALIAS + gpa),
	       *(volatile uint32_t *)(uintptr_t)(ALIAS + gpa) == MARKER ? "ok" : "BROKEN");

	intr_init();
	irq_set_handler(TIMER_VEC, on_timer);
	if (!apic_probe() || !time_init()) {
		printf("echo: no APIC or no time source\n");
		return 4;
	}
	apic_setup();
	apic_timer_calibrate();
	count = (uint32_t)udiv64((uint64_t)apic_timer_khz * 1000, hz ? hz : 200, NULL);
	apic_write(APIC_TDCR, TDCR_DIV1);
	apic_write(APIC_LVT_TIMER, LVT_TIMER_PERIODIC | TIMER_VEC);
	apic_write(APIC_TMICT, count ? count : 1);
	sti();
	outb(UART_FCR, 0x07);                 /* FIFOs on, both cleared (what drivers do first) */

	printf("echo: ready; type a line ('quit', 'exit N', 'crash')\n");
	printf("echo> ");
	for (;;) {
		uint8_t c = getc_wait();

		if (c == '\r' || c == '\n') {
			line[len] = 0;
			putc('\n');
			if (dropped)
				printf("echo: line too long, %u bytes dropped\n", dropped);
			printf("echo: got '%s' (%u bytes)\n", line, len + dropped);
			if (!strcmp(line, "quit"))
				return 0;
			if (len > 5 && line[0] == 'e' && line[1] == 'x' && line[2] == 'i' && line[3] == 't' &&
			    line[4] == ' ') {
				uint64_t code;

				if (parse_num(line + 5, &code))
					return (int)code;
			}
			if (!strcmp(line, "crash"))
				crash();
			len = dropped = 0;
			printf("echo> ");
		} else if (c == 0x7f || c == 0x08) {
			if (dropped) {
				dropped--;
			} else if (len) {
				len--;
				printf("\b \b");
			}
		} else if (c == 0x15) {
			for (; len; len--)
				printf("\b \b");
			dropped = 0;
		} else if (len < LINE_MAX) {
			line[len++] = (char)(c >= 0x20 && c < 0x7f ? c : '.');
			if (c >= 0x20 && c < 0x7f)
				putc((char)c);
			else
				printf("^%c", (c & 0x1f) + '@');
		} else {
			dropped++;
		}
	}
}
