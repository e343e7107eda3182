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
 *   do=rtcpic  the RTC's 1024 Hz interrupt on IRQ 8 through the slave 8259A (IR0) and the cascade
 *              (master IR2), LINT0 ExtINT: ISRs in the handler (slave 0x01, master 0x04), specific EOIs to
 *              both, ~102 interrupts in 100 ms; then without reading register C the RTC holds IRQ 8
 *              high (MC146818A datasheet, register C "IRQF"): no more interrupts until C is read
 *   do=pitioapic  the PIT's IRQ 0 at 1 kHz on I/O APIC pin 2, as the MADT's override says (ACPI 6.5,
 *              5.2.12.5), nothing on pin 0; with pin 2 masked nothing at all
 *   do=pitcal  TSC calibration against channel 2 gated by port 0x61 (as Linux's pit_calibrate_tsc):
 *              OUT2 low in mode 0 until terminal count, a latched count stands still with the gate low
 *              and falls with it high, the TSC ticks of 50 ms against CPUID 0x40000010 within 1%
 *   do=acpipm  the ACPI fixed hardware the FADT names (found from the RSDP in 0xE0000-0xFFFFF, RSDT):
 *              not hardware-reduced, SCI_EN set in PM1a_CNT, the 32-bit PM timer (TMR_VAL_EXT) counting
 *              3.579545 MHz against the TSC (CPUID 0x40000010) within 1% over 50 ms; then S5 through
 *              PM1a_CNT (SLP_TYP 5, then SLP_EN, 16-bit writes as ACPICA's): `exited code=0`
 * These print one line per check (` ok` / ` FAIL`) and `pcdev: N checks, F failed` (exit F != 0).
 * After a reset request nothing may run: `pcdev: still running after the reset` and exit 1 if it does.
 */
#include "apic.h"
#include "intr.h"
#include "rt.h"
#include "tessera/hypercall.h"

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

/* --- IRQ 8 through the slave 8259A ---------------------------------------------------------------- */

static volatile bool rtc_read_c;
static volatile uint8_t slave_isr, master_isr, isr_after;

static uint8_t pic_isr(uint16_t port)
{
	outb(port, 0x0b);                         /* OCW3: the next read returns the ISR */
	return inb(port);
}

static void on_rtc_pic(struct irq_frame *f)
{
	(void)f;
	ticks++;
	slave_isr = pic_isr(0xa0);
	master_isr = pic_isr(0x20);
	if (rtc_read_c) {
		outb(0x70, 0x0c);
		(void)inb(0x71);                  /* reading register C clears IRQF: the line drops */
	}
	outb(0xa0, 0x60 | 0);                     /* OCW2 specific EOI: slave IR0 ... */
	outb(0x20, 0x60 | 2);                     /* ... and master IR2, the cascade */
	isr_after = (uint8_t)(pic_isr(0xa0) | pic_isr(0x20));
}

/* Interrupts on for `us` of TSC time. */
static uint32_t count_for(uint64_t us)
{
	uint64_t end;

	ticks = 0;
	end = rdtsc() + us_to_tsc(us);
	sti();
	while (rdtsc() < end)
		cpu_relax();
	cli();
	return ticks;
}

static int rtcpic_test(void)
{
	uint8_t b = cmos(0x0b);
	uint32_t n, first, held, again;

	intr_init();
	irq_set_handler(0x28, on_rtc_pic);
	outb(0x20, 0x11); outb(0x21, 0x20); outb(0x21, 0x04); outb(0x21, 0x01);
	outb(0xa0, 0x11); outb(0xa1, 0x28); outb(0xa1, 0x02); outb(0xa1, 0x01);
	outb(0x21, 0xfb); outb(0xa1, 0xfe);       /* master: only IR2 (the slave); slave: only IR0 (IRQ 8) */
	outb(0x70, 0x0a); outb(0x71, 0x26);       /* 1024 Hz */
	outb(0x70, 0x0b); outb(0x71, b | 0x40);   /* PIE */
	(void)cmos(0x0c);
	rtc_read_c = true;
	n = count_for(100000);
	check(n >= 90 && n <= 115, "pcdev: rtc via slave pic: %u interrupts in 100 ms (want ~102)", n);
	check(slave_isr == 0x01 && master_isr == 0x04 && isr_after == 0, "pcdev: rtc via slave pic: ISR slave 0x%x "
	      "master 0x%x in the handler (want 0x1 0x4), 0x%x after the specific EOIs (want 0)", slave_isr,
	      master_isr, isr_after);
	/* Handlers that leave register C unread: after the first (an edge latched before may come
	 * too) IRQ 8 stays high and no more edges come. */
	rtc_read_c = false;
	first = count_for(3000);
	held = count_for(20000);
	rtc_read_c = true;
	(void)cmos(0x0c);                         /* the line drops; the next period raises it again */
	again = count_for(20000);
	outb(0x70, 0x0b); outb(0x71, b);
	check(first >= 1 && held == 0 && again >= 15, "pcdev: rtc register C unread: %u interrupts in 3 ms, then %u in "
	      "20 ms (want 0: IRQ 8 held high); C read: %u in 20 ms (want ~20)", first, held, again);
	printf("pcdev: %d checks, %d failed\n", check_count, check_failed);
	return check_failed != 0;
}

/* --- IRQ 0 on I/O APIC pin 2 ------------------------------------------------------------------------ */

static volatile uint32_t pin0_ticks;

static void on_pin2(struct irq_frame *f)
{
	(void)f;
	ticks++;
	apic_eoi();
}

static void on_pin0(struct irq_frame *f)
{
	(void)f;
	pin0_ticks++;
	apic_eoi();
}

static int pitioapic_test(void)
{
	uint32_t n, masked;

	intr_init();
	apic_probe();
	apic_setup();                             /* the 8259A pair masked, LINT0 masked */
	irq_set_handler(0x50, on_pin2);
	irq_set_handler(0x51, on_pin0);
	ioapic_write(0x11 + 2 * 2, 0);
	ioapic_write(0x10 + 2 * 2, 0x50);         /* pin 2: vector 0x50, fixed, edge, unmasked */
	ioapic_write(0x11, 0);
	ioapic_write(0x10, 0x51);                 /* pin 0 (the 8259A's INTR on a PC): vector 0x51 */
	outb(0x43, 0x34);                         /* channel 0, mode 2, 1 kHz */
	outb(0x40, 1193 & 0xff);
	outb(0x40, 1193 >> 8);
	pin0_ticks = 0;
	n = count_for(100000);
	check(n >= 90 && n <= 110 && pin0_ticks == 0, "pcdev: pit irq 0 on ioapic pin 2: %u interrupts in 100 ms "
	      "(want 100), pin 0: %u (want 0)", n, pin0_ticks);
	ioapic_write(0x10 + 2 * 2, 0x50 | (1u << 16));
	(void)count_for(2000);                    /* one sent before the mask may still wait in the local APIC */
	masked = count_for(20000);
	check(masked == 0 && pin0_ticks == 0, "pcdev: pit irq 0 with pin 2 masked: %u interrupts in 20 ms (want 0)",
	      masked);
	printf("pcdev: %d checks, %d failed\n", check_count, check_failed);
	return check_failed != 0;
}

/* --- calibrating the TSC with channel 2 (82C54 datasheet: mode 0, gate; PC port 0x61) --------------- */

#define PIT_HZ 1193182u

/* Latches channel 2 (counter latch command, SC = 10, RW = 00) and reads its count, LSB then MSB. */
static uint16_t pit2_latch(void)
{
	uint8_t lo;

	outb(0x43, 0x80);
	lo = inb(0x42);
	return (uint16_t)(lo | inb(0x42) << 8);
}

static int pitcal_test(void)
{
	uint8_t p61 = inb(0x61);
	uint16_t count = PIT_HZ / 20, c0, c1, c2;  /* 50 ms */
	uint32_t r[4], khz, want;
	uint64_t t0, t1, t_latch, spins = 0;
	uint32_t most;
	bool low_before;

	cpuid(HV_CPUID_TIMING, 0, r);
	want = r[0];
	/* Gate low: mode 0 counting is suspended. */
	outb(0x61, (p61 & ~0x03));                /* gate 2 low, speaker data off */
	outb(0x43, 0xb0);                         /* channel 2, LSB then MSB, mode 0 */
	outb(0x42, count & 0xff);
	outb(0x42, count >> 8);
	udelay(1000);
	c0 = pit2_latch();
	udelay(2000);
	c1 = pit2_latch();
	low_before = !(inb(0x61) & 0x20);
	/* Gate high: it counts; OUT2 (port 0x61 bit 5) rises at terminal count. */
	t0 = rdtsc();
	outb(0x61, (p61 & ~0x02) | 0x01);
	udelay(1000);
	c2 = pit2_latch();
	/* The PIT counted from the gate's rise to the latch: at least the 1 ms udelay, and at most the
	 * TSC time around both, which is longer when the vCPU was preempted in between (another guest
	 * shares this CPU): the count must agree with the TSC, not with an undisturbed 1 ms. */
	t_latch = rdtsc();
	while (!(inb(0x61) & 0x20) && spins < 100000000u)
		spins++;
	t1 = rdtsc();
	outb(0x61, p61);
	khz = (uint32_t)udiv64(t1 - t0, 50, NULL);
	check(c0 == c1 && low_before, "pcdev: pit channel 2 gate low: count %u then %u (want equal), OUT2 low", c0, c1);
	most = want ? (uint32_t)udiv64((t_latch - t0) * (PIT_HZ / 1000), want, NULL) : 0;
	check(c2 < c1 && c1 - c2 >= 1000 && (uint32_t)(c1 - c2) <= most + most / 20 + 20, "pcdev: pit channel 2 gate high: "
	      "count %u -> %u after 1 ms (want ~1193 fewer, at most %u: the TSC's time to the latch)", c1, c2, most);
	check(want && khz >= want - want / 100 && khz <= want + want / 100, "pcdev: pit calibration: TSC %u kHz "
	      "over 50 ms (CPUID 0x40000010 says %u kHz, want within 1%%)", khz, want);
	printf("pcdev: %d checks, %d failed\n", check_count, check_failed);
	return check_failed != 0;
}

static uint16_t inw(uint16_t port)
{
	uint16_t v;

	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static uint32_t inl(uint16_t port)
{
	uint32_t v;

	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

static void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port));
}

static uint32_t rd32(uintptr_t a)
{
	return *(volatile uint32_t *)a;
}

static bool is_sig(uintptr_t a, const char *sig, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (((const volatile char *)a)[i] != sig[i])
			return false;
	return true;
}

/* The FADT through the RSDT of the RSDP found on a 16-byte boundary of 0xE0000-0xFFFFF (ACPI 6.3,
 * 5.2.5.1); 0 if none. */
static uintptr_t find_fadt(void)
{
	for (uintptr_t p = 0xe0000; p < 0x100000; p += 16) {
		if (!is_sig(p, "RSD PTR ", 8))
			continue;
		uintptr_t rsdt = rd32(p + 16);
		uint32_t n = (rd32(rsdt + 4) - 36) / 4;
		for (uint32_t i = 0; i < n; i++) {
			uintptr_t t = rd32(rsdt + 36 + 4 * i);
			if (is_sig(t, "FACP", 4))
				return t;
		}
	}
	return 0;
}

static int acpipm_test(void)
{
	uintptr_t f = find_fadt();
	uint32_t r[4], flags, evt, cnt, tmr, want, hz;
	uint64_t t0, t1, p0, p1;

	check(f != 0, "pcdev: acpi FADT found");
	if (!f)
		return 1;
	flags = rd32(f + 112);
	evt = rd32(f + 56);
	cnt = rd32(f + 64);
	tmr = rd32(f + 76);
	check(!(flags & (1u << 20)) && (flags & (1u << 8)), "pcdev: acpi FADT flags 0x%x: not HW_REDUCED_ACPI, "
	      "TMR_VAL_EXT", flags);
	check(evt && cnt == evt + 4 && tmr == evt + 8, "pcdev: acpi PM1a_EVT 0x%x PM1a_CNT 0x%x PM_TMR 0x%x", evt, cnt, tmr);
	check(inw((uint16_t)cnt) & 1, "pcdev: acpi PM1a_CNT 0x%x: SCI_EN", inw((uint16_t)cnt));
	cpuid(HV_CPUID_TIMING, 0, r);
	want = r[0];
	p0 = inl((uint16_t)tmr);
	t0 = rdtsc();
	udelay(50000);
	p1 = inl((uint16_t)tmr);
	t1 = rdtsc();
	if (p1 < p0)
		p1 += 1ull << 32;
	/* The timer's rate in the TSC's time: its ticks * TSC Hz / TSC ticks. */
	hz = want ? (uint32_t)udiv64((p1 - p0) * want * 1000, (uint32_t)(t1 - t0), NULL) : 0;
	check(hz >= 3579545 - 35795 && hz <= 3579545 + 35795, "pcdev: acpi pm timer %u Hz over 50 ms of a %u kHz TSC "
	      "(want 3579545 within 1%%)", hz, want);
	printf("pcdev: %d checks, %d failed\n", check_count, check_failed);
	if (check_failed)
		return 1;
	outw((uint16_t)cnt, (uint16_t)((inw((uint16_t)cnt) & ~0x3c00u) | 5u << 10));   /* SLP_TYP = \_S5's */
	outw((uint16_t)cnt, (uint16_t)((inw((uint16_t)cnt) & ~0x3c00u) | 5u << 10 | 1u << 13));  /* SLP_EN */
	printf("pcdev: still running after S5\n");
	return 1;
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
		printf("pcdev: usage: do=fwcfg|pit|rtc|rtcpic|pitioapic|pitcal|acpipm|kbd|port92|cf9\n");
		return 3;
	}
	if (strcmp(what, "fwcfg") && strcmp(what, "kbd") && strcmp(what, "port92") && strcmp(what, "cf9") &&
	    !time_init())
		return 4;
	if (!strcmp(what, "pit"))
		return pit_test();
	if (!strcmp(what, "rtc"))
		return rtc_test();
	if (!strcmp(what, "rtcpic"))
		return rtcpic_test();
	if (!strcmp(what, "pitioapic"))
		return pitioapic_test();
	if (!strcmp(what, "pitcal"))
		return pitcal_test();
	if (!strcmp(what, "acpipm"))
		return acpipm_test();
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
