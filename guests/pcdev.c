/*
 * pcdev: the PC devices every tessera guest has besides its UART, checked from inside.
 *   do=fwcfg   QEMU fw_cfg at 0x510/0x511: the signature "QEMU", the CPU count and the RAM size a
 *              `qemu -kernel` test kernel reads; prints `pcdev: fw_cfg signature QEMU cpus N ram M MiB`
 *              and exits 0 if they match what the Multiboot2 memory map and `cpus=` say, else 1.
 *   do=kbd     8042 command 0xFE (pulse reset)        -> the hypervisor stops it: reset requested
 *   do=port92  port 0x92 bit 0 (fast reset)           -> likewise
 *   do=cf9     port 0xCF9 bit 2 (reset control)       -> likewise
 *   do=pit     the 8254's channel 0 at 1 kHz (mode 2) on IRQ 0, through the 8259A pair (remapped to
 *              0x20) and vCPU 0's LINT0 in ExtINT mode, as the firmware leaves it: counts the ticks of
 *              100 ms; `pcdev: pit 100 ticks in 100 ms` (exit 0 within 10%)
 *   do=rtc     the CMOS clock: the date and time in BCD (`pcdev: rtc 20YY-MM-DD hh:mm:ss`, the host's
 *              clock), then its periodic interrupt at 1024 Hz on IRQ 8 through the I/O APIC (pin 8,
 *              vector 0x48) to the local APIC: `pcdev: rtc periodic N interrupts in 100 ms` (~102)
 * After a reset request nothing may run: `pcdev: still running after the reset` and exit 1 if it does.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"

#define IOAPIC_BASE 0xfec00000u

static volatile uint32_t ticks;

static void on_pit(struct irq_frame *f)
{
	(void)f;
	ticks++;
	outb(0x20, 0x20);                         /* non-specific EOI to the master 8259A */
}

static void on_rtc(struct irq_frame *f)
{
	(void)f;
	ticks++;
	outb(0x70, 0x0c);
	(void)inb(0x71);                          /* reading register C ends the interrupt request */
	apic_eoi();
}

static uint8_t cmos(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static void ioapic_write(uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)IOAPIC_BASE = reg;
	*(volatile uint32_t *)(uintptr_t)(IOAPIC_BASE + 0x10) = v;
}

/* Interrupts on for 100 ms of TSC time, then off: how many came. */
static uint32_t count_for_100ms(void)
{
	uint64_t end;

	ticks = 0;
	end = rdtsc() + us_to_tsc(100000);
	sti();
	while (rdtsc() < end)
		cpu_relax();
	cli();
	return ticks;
}

static int pit_test(void)
{
	uint32_t n;

	intr_init();
	irq_set_handler(0x20, on_pit);
	/* ICW1-4: edge, cascade, ICW4; bases 0x20 and 0x28; slave on IR2; 8086 mode. Then only IRQ 0. */
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
	outb(0x21, 0xfe); outb(0xa1, 0xff);
	outb(0x43, 0x34);                         /* channel 0, lobyte/hibyte, mode 2 */
	outb(0x40, 1193 & 0xff);
	outb(0x40, 1193 >> 8);
	n = count_for_100ms();
	printf("pcdev: pit %u ticks in 100 ms (want 100)\n", n);
	return n >= 90 && n <= 110 ? 0 : 1;
}

static int rtc_test(void)
{
	uint8_t b = cmos(0x0b);
	uint32_t n;

	printf("pcdev: rtc 20%02x-%02x-%02x %02x:%02x:%02x (register B 0x%x)\n", cmos(9), cmos(8), cmos(7),
	       cmos(4), cmos(2), cmos(0), b);
	if (!(b & 2) || (b & 4) || cmos(9) < 0x24) {
		printf("pcdev: rtc not in 24-hour BCD mode or before 2024\n");
		return 1;
	}
	intr_init();
	apic_probe();
	apic_setup();
	irq_set_handler(0x48, on_rtc);
	outb(0x21, 0xff); outb(0xa1, 0xff);       /* the 8259A pair out of the way: the I/O APIC delivers */
	ioapic_write(0x10 + 2 * 8, 0x48);         /* pin 8: vector 0x48, fixed, physical, edge, unmasked */
	ioapic_write(0x11 + 2 * 8, 0);            /* destination APIC ID 0 */
	outb(0x70, 0x0a); outb(0x71, 0x26);       /* 32.768 kHz time base, rate 6: 1024 Hz */
	outb(0x70, 0x0b); outb(0x71, b | 0x40);   /* PIE */
	(void)cmos(0x0c);
	n = count_for_100ms();
	outb(0x70, 0x0b); outb(0x71, b);
	printf("pcdev: rtc periodic %u interrupts in 100 ms (want ~102)\n", n);
	return n >= 90 && n <= 115 ? 0 : 1;
}

static uint8_t fw_cfg_read8(void)
{
	return inb(0x511);
}

static void fw_cfg_select(uint16_t key)
{
	__asm__ volatile("outw %0, %1" : : "a"(key), "Nd"((uint16_t)0x510));
}

static uint64_t fw_cfg_item(uint16_t key, unsigned len)
{
	uint64_t v = 0;

	fw_cfg_select(key);
	for (unsigned i = 0; i < len; i++)
		v |= (uint64_t)fw_cfg_read8() << (8 * i);
	return v;
}

int main(void)
{
	const char *what = getarg("do");
	char sig[5] = { 0 };

	if (!what) {
		printf("pcdev: usage: do=fwcfg|pit|rtc|kbd|port92|cf9\n");
		return 3;
	}
	if ((!strcmp(what, "pit") || !strcmp(what, "rtc")) && !time_init())
		return 4;
	if (!strcmp(what, "pit"))
		return pit_test();
	if (!strcmp(what, "rtc"))
		return rtc_test();
	if (!strcmp(what, "fwcfg")) {
		uint64_t cpus, ramsize, want_cpus = getarg_num("cpus", 1);

		fw_cfg_select(0);
		for (int i = 0; i < 4; i++)
			sig[i] = (char)fw_cfg_read8();
		cpus = fw_cfg_item(5, 2);
		ramsize = fw_cfg_item(3, 8);
		printf("pcdev: fw_cfg signature %s cpus %u ram %u MiB (memory map says %u MiB)\n", sig,
		       (unsigned)cpus, (unsigned)(ramsize >> 20), (unsigned)(ram_end() >> 20));
		return strcmp(sig, "QEMU") || cpus != want_cpus || ramsize != ram_end();
	}
	if (!strcmp(what, "kbd"))
		outb(0x64, 0xfe);
	else if (!strcmp(what, "port92"))
		outb(0x92, inb(0x92) | 1);
	else if (!strcmp(what, "cf9"))
		outb(0xcf9, 0x06);
	else
		return 3;
	printf("pcdev: still running after the reset\n");
	return 1;
}
