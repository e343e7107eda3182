/*
 * ipiflood: interrupts posted without pause to one vCPU of the guest, in two modes.
 *
 * mode=end (the default): the APs (cpus=N, 2..16) post to CPU 0 without a break: each round a
 * REP OUTSB of 128 bytes to the UART's IER (0x3F9), alternately enabling and disabling the
 * transmitter-empty interrupt, which the I/O APIC's pin 4 (edge, vector 0x40, destination APIC 0)
 * delivers to CPU 0 at each of its 64 rising edges (16550 datasheet: IER bit 1, OUT2 gating IRQ 4
 * on a PC), then a fixed IPI (vector 0x41) to APIC 0 and one to all including self. CPU 0 keeps
 * interrupts disabled (the vectors stay pending) and ends the guest `ms=` (20) milliseconds after
 * the APs started: the APs are then still posting, in the middle of an exit or about to make one.
 * Prints `ipiflood: end after M ms, R rounds by K aps (T taken with IF=0)` (T: 0) and exits 0.
 *
 * mode=flood: CPU 0 sends a fixed IPI (vector 0x42) to CPU 1 every `gap=` (1) microseconds for
 * `ms=` (200) milliseconds; CPU 1 takes them with interrupts enabled (its handler counts and EOIs)
 * in a loop that never halts, or with `halt=1` halts again after each one. Prints `ipiflood: flood N
 * ipis in M ms, got G` and exits 0.
 *
 * mode=masked: CPU 0 runs with interrupts disabled, executing CLI again and again (as Linux's nested
 * local_irq_save does), and every 100 microseconds opens a window (STI; NOP; CLI) where it takes what
 * is pending. Meanwhile CPU 1 sends it two IPIs, vector 0x41 then 0x42 20 microseconds later, and
 * waits until CPU 0 has taken both before the next pair: the second comes while the first is pending,
 * which is when Bochs 2.7 delivered the first to a guest with IF = 0 (vmx/exit.c, apicv_hold). Each
 * handler looks at the RFLAGS the interrupt pushed. For `ms=` (100) milliseconds; prints `ipiflood:
 * masked after M ms, P pairs, G taken (T taken with IF=0)` (T: 0) and exits 0.
 *
 * mode=spin: the neighbour of a flood: computes `loops=` (20000000) iterations with interrupts enabled
 * (none comes: it programs no source) and no exit of its own, between `ipiflood: spin start` and
 * `ipiflood: spin done`. Interrupts enabled, as in any OS: Bochs makes a guest with IF = 0 exit for
 * no host interrupt (external-interrupt exiting should ignore the guest's IF, SDM Vol. 3C, 26.3).
 *
 * Usage errors exit 3; no time source exits 4; APs that do not come up exit 1.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"
#include "smp.h"

#define COM1      0x3f8
#define UART_IER  1
#define UART_MCR  4
#define MCR_OUT2  0x08
#define IER_THRE  0x02
#define IOAPIC    0xfec00000u
#define VEC_UART  0x40
#define VEC_IPI   0x41
#define VEC_FLOOD 0x42

static volatile uint32_t aps_up, stop, got;
static volatile uint32_t rounds[SMP_MAX_CPUS];
static volatile uint32_t target_id;
static bool flood_mode, halt_mode, masked_mode;
static uint8_t ier_bytes[128];

static void ioapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)IOAPIC = reg;          /* IOREGSEL */
	*(volatile uint32_t *)(uintptr_t)(IOAPIC + 0x10) = v;   /* IOWIN */
}

/* mode=end: CPU 0 runs with interrupts disabled; an interrupt delivered all the same (which the
 * SDM rules out: Vol. 3A 6.8.1, Vol. 3C 30.2.2) is counted and retired, and the count printed. */
static volatile uint32_t taken;

static void on_post(struct irq_frame *f)
{
	(void)f;
	taken++;
	apic_eoi();
}

/* mode=masked: an interrupt taken where the interrupted code had IF = 0 is counted apart. */
#define RFLAGS_IF_BIT 0x200u
#define VEC_PAIR1 0x41
#define VEC_PAIR2 0x42

static void on_masked(struct irq_frame *f)
{
	if (f->eflags & RFLAGS_IF_BIT)
		got++;
	else
		taken++;
	apic_eoi();
}

static void on_flood(struct irq_frame *f)
{
	(void)f;
	got++;
	apic_eoi();
}

/* One round of posts at CPU 0: 64 edges of IRQ 4 in one REP OUTSB exit, then two IPIs. */
static void post_round(void)
{
	const uint8_t *p = ier_bytes;
	uint32_t n = sizeof(ier_bytes);

	__asm__ volatile("rep outsb" : "+S"(p), "+c"(n) : "d"(COM1 + UART_IER) : "memory");
	apic_send_ipi(0, ICR_FIXED | VEC_IPI);
	apic_send_ipi(0, ICR_ALL | ICR_FIXED | VEC_IPI);
}

static void ap_main(unsigned index, uint32_t id)
{
	apic_setup();
	if (flood_mode) {
		target_id = id;
		__atomic_fetch_add(&aps_up, 1, __ATOMIC_ACQ_REL);
		if (halt_mode) {
			while (!stop)
				sti_hlt();          /* halts again after each interrupt */
			return;
		}
		sti();
		while (!stop)
			cpu_relax();                /* never halts: it stays runnable on its CPU */
		return;
	}
	if (masked_mode) {
		__atomic_fetch_add(&aps_up, 1, __ATOMIC_ACQ_REL);
		while (!stop) {
			uint32_t before = got + taken;

			apic_send_ipi(0, ICR_FIXED | VEC_PAIR1);
			udelay(20);
			apic_send_ipi(0, ICR_FIXED | VEC_PAIR2);
			while (!stop && got + taken < before + 2)
				cpu_relax();    /* no IPI while CPU 0 takes the pair */
			if (index < SMP_MAX_CPUS)
				rounds[index]++;
		}
		return;
	}
	__atomic_fetch_add(&aps_up, 1, __ATOMIC_ACQ_REL);
	for (;;) {                              /* until the guest ends under it */
		post_round();
		if (index < SMP_MAX_CPUS)
			rounds[index]++;
	}
}

static void start_aps(void)
{
	apic_send_ipi(0, ICR_INIT | ICR_ASSERT | ICR_ALL_BUT_SELF);
	udelay(10000);
	for (int n = 0; n < 2; n++) {
		apic_send_ipi(0, ICR_STARTUP | SMP_SIPI_VECTOR | ICR_ALL_BUT_SELF);
		udelay(200);
	}
}

static bool wait_aps(uint32_t want)
{
	uint64_t end = rdtsc() + us_to_tsc(1000000);

	while (aps_up < want && rdtsc() < end)
		cpu_relax();
	if (aps_up < want)
		printf("ipiflood: %u of %u aps up\n", aps_up, want);
	return aps_up >= want;
}

static int end_mode(uint32_t cpus, uint64_t ms)
{
	uint32_t total = 0;

	irq_set_handler(VEC_UART, on_post);
	irq_set_handler(VEC_IPI, on_post);
	for (unsigned i = 0; i < sizeof(ier_bytes); i++)
		ier_bytes[i] = i & 1 ? 0 : IER_THRE;
	outb(COM1 + UART_MCR, inb(COM1 + UART_MCR) | MCR_OUT2);
	ioapic_write(0x19, 0);                  /* pin 4: destination APIC ID 0 */
	ioapic_write(0x18, VEC_UART);           /* fixed, physical, edge, active high, unmasked */
	cli();                                  /* CPU 0 takes nothing: the vectors stay pending */
	start_aps();
	if (!wait_aps(cpus - 1))
		return 1;
	udelay(ms * 1000);
	for (unsigned i = 0; i < SMP_MAX_CPUS; i++)
		total += rounds[i];
	printf("ipiflood: end after %u ms, %u rounds by %u aps (%u taken with IF=0)\n", (uint32_t)ms, total, aps_up,
	       taken);
	return 0;
}

static int masked(uint64_t ms)
{
	uint64_t t0, end, next;
	uint32_t pairs = 0;

	irq_set_handler(VEC_PAIR1, on_masked);
	irq_set_handler(VEC_PAIR2, on_masked);
	cli();
	start_aps();
	if (!wait_aps(1))
		return 1;
	t0 = rdtsc();
	end = t0 + us_to_tsc(ms * 1000);
	for (next = t0; rdtsc() < end; ) {
		next += us_to_tsc(100);
		while (rdtsc() < next)
			__asm__ volatile("cli; pause" : : : "memory");  /* IF stays 0; CLI all the same */
		__asm__ volatile("sti; nop; cli" : : : "memory");      /* the window */
	}
	stop = 1;
	__asm__ volatile("sti; nop; cli" : : : "memory");
	udelay(1000);
	for (unsigned i = 0; i < SMP_MAX_CPUS; i++)
		pairs += rounds[i];
	printf("ipiflood: masked after %u ms, %u pairs, %u taken (%u taken with IF=0)\n", (uint32_t)ms, pairs, got,
	       taken);
	return 0;
}

static int flood(uint64_t ms, uint64_t gap)
{
	uint32_t sent = 0;
	uint64_t t0, end, next;

	irq_set_handler(VEC_FLOOD, on_flood);
	start_aps();
	if (!wait_aps(1))
		return 1;
	t0 = rdtsc();
	end = t0 + us_to_tsc(ms * 1000);
	for (next = t0; rdtsc() < end; next += us_to_tsc(gap)) {
		apic_send_ipi(target_id, ICR_FIXED | VEC_FLOOD);
		sent++;
		while (rdtsc() < next)
			cpu_relax();
	}
	stop = 1;
	udelay(1000);
	printf("ipiflood: flood %u ipis in %u ms, got %u\n", sent, (uint32_t)tsc_to_us(rdtsc() - t0) / 1000, got);
	return 0;
}

int main(void)
{
	const char *mode = getarg("mode");
	uint64_t cpus = getarg_num("cpus", 2);

	flood_mode = mode && !strcmp(mode, "flood");
	halt_mode = getarg_num("halt", 0) != 0;
	masked_mode = mode && !strcmp(mode, "masked");
	if (mode && !strcmp(mode, "spin")) {
		printf("ipiflood: spin start\n");
		sti();
		spin_loops(getarg_num("loops", 20000000));
		cli();
		printf("ipiflood: spin done\n");
		return 0;
	}
	if ((mode && !flood_mode && !masked_mode && strcmp(mode, "end")) || cpus < 2 || cpus > SMP_MAX_CPUS) {
		printf("ipiflood: usage: mode=end|flood|masked|spin cpus=N (2..%u) ms=N gap=N halt=0|1 loops=N\n", SMP_MAX_CPUS);
		return 3;
	}
	intr_init();
	if (!apic_probe() || !time_init())
		return 4;
	apic_setup();
	smp_prepare(ap_main);
	if (flood_mode)
		return flood(getarg_num("ms", 200), getarg_num("gap", 1));
	if (masked_mode)
		return masked(getarg_num("ms", 100));
	return end_mode((uint32_t)cpus, getarg_num("ms", 20));
}
