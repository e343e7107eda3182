/* Power-off and reset paths of real machines and of the two emulators the project is tested in. */
#include "arch/x86/acpi.h"
#include "arch/x86/cpu.h"
#include "arch/x86/paging.h"
#include "arch/x86/power.h"
#include "arch/x86/time.h"

#define SLP_EN   (1u << 13)  /* PM1 control register: sleep enable (ACPI 6.5, 4.8.4.2.1) */
#define SLP_MASK (0xfu << 10) /* SLP_TYP (12:10) and SLP_EN */

__attribute__((noreturn)) void halt_forever(void)
{
	for (;;) {
		cli();
		hlt();
	}
}

__attribute__((noreturn)) void power_off(void)
{
	cli();
	if (acpi.pm1a_cnt && acpi.has_s5) {
		/* SLP_TYP (bits 12:10) = the \_S5 value, with SLP_EN, enters S5: soft off. The other
		 * control bits are kept (read-modify-write). */
		outw(acpi.pm1a_cnt, (inw(acpi.pm1a_cnt) & ~SLP_MASK) | (acpi.slp_typ_s5 << 10) | SLP_EN);
		if (acpi.pm1b_cnt)
			outw(acpi.pm1b_cnt, (inw(acpi.pm1b_cnt) & ~SLP_MASK) | (acpi.slp_typb_s5 << 10) | SLP_EN);
		udelay(10000);
	}
	/* Still running: an emulator without ACPI power-off, or firmware that ignored it. */
	outl(0xf4, 0);                       /* QEMU -device isa-debug-exit,iobase=0xf4: exits */
	for (const char *s = "Shutdown"; *s; s++)
		outb(0x8900, *s);                /* Bochs's shutdown port */
	halt_forever();
}

/* The FADT's RESET_REG (ACPI 6.5, 4.8 "Reset Register", and the FADT, 5.2.9): RESET_VALUE written
 * to an 8-bit register in system I/O, system memory or the PCI configuration space of bus 0, whose
 * Generic Address then holds the device in bits 47:32, the function in 31:16 and the offset in 15:0. */
static void acpi_reset_write(void)
{
	const struct acpi_gas *r = &acpi.reset_reg;

	switch (r->space) {
	case ACPI_GAS_IO:
		if (r->addr <= 0xffff)
			outb((uint16_t)r->addr, acpi.reset_value);
		break;
	case ACPI_GAS_MEMORY:
		/* A device register: uncached, or the write could sit in this CPU's cache (the MTRRs
		 * usually make the range UC anyway). Only this CPU runs now: its own TLB is enough. */
		if (r->addr < (4ull << 30)) {  /* the host map always covers 0..4 GiB (paging.c) */
			paging_set_uncached(r->addr);
			*(volatile uint8_t *)r->addr = acpi.reset_value;
		}
		break;
	case ACPI_GAS_PCI: {
		/* Configuration mechanism #1 (PCI Local Bus Specification 3.0, 3.2.2.3.2): CONFIG_ADDRESS
		 * 0xCF8 = enable (bit 31), bus 0 (23:16), device (15:11), function (10:8), dword (7:2);
		 * the byte goes to CONFIG_DATA 0xCFC + the offset's low 2 bits. */
		uint32_t dev = (r->addr >> 32) & 0x1f, fn = (r->addr >> 16) & 7, off = r->addr & 0xff;

		outl(0xcf8, 0x80000000u | dev << 11 | fn << 8 | (off & 0xfc));
		outb(0xcfc + (off & 3), acpi.reset_value);
		break;
	}
	}
}

__attribute__((noreturn)) void machine_reset(void)
{
	static const struct { uint16_t limit; uint64_t base; } __attribute__((packed)) no_idt = { 0, 0 };

	cli();
	if (acpi.has_reset) {
		acpi_reset_write();
		udelay(50000);
	}
	/* The chipset's Reset Control Register at I/O 0xCF9 (Intel PCH datasheets, RST_CNT; also PIIX4
	 * and QEMU/Bochs's PIIX3): SYS_RST (bit 1) = 1 asks for a hard reset, which RST_CPU (bit 2)
	 * going 0 -> 1 starts. */
	outb(0xcf9, 0x02);
	outb(0xcf9, 0x06);
	udelay(50000);
	/* The 8042 keyboard controller: once its input buffer is empty (status port 0x64 bit 1 = 0),
	 * command 0xFE pulses output-port bit 0, the CPU's reset line (IBM PC AT Technical Reference,
	 * keyboard controller commands). */
	for (int i = 0; i < 100000 && (inb(0x64) & 0x02); i++)
		cpu_relax();
	outb(0x64, 0xfe);
	udelay(50000);
	/* A triple fault: an exception with an empty IDT cannot be delivered, nor the #DF after it, and
	 * the CPU shuts down, which a PC's chipset turns into a reset (SDM Vol. 3A, 6.15, "Interrupt 8";
	 * shutdown). */
	asm volatile("lidt %0; int3" : : "m"(no_idt));
	halt_forever();
}
