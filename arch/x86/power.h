/* Turning the machine off or resetting it, or halting it for good. */
#pragma once

/* Tries, in order: ACPI S5 soft-off, QEMU's isa-debug-exit port, the Bochs shutdown port. Then halts.
 * The caller drains the console first. */
__attribute__((noreturn)) void power_off(void);
__attribute__((noreturn)) void halt_forever(void);
/* Resets the machine, trying in order: the ACPI FADT's reset register, the reset control register at
 * 0xCF9, the 8042 keyboard controller's pulse-reset command, a triple fault. The caller drains the
 * console first, and takes every CPU out of VMX operation: the last two reach the CPUs as INIT, which
 * VMX root operation blocks (SDM Vol. 3C, 24.8). */
__attribute__((noreturn)) void machine_reset(void);
