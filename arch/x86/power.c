/* Power-off paths of real machines and of the two emulators the project is tested in. */
#include "arch/x86/acpi.h"
#include "arch/x86/cpu.h"
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
