/* Turning the machine off, or halting it for good. */
#pragma once

/* Tries, in order: ACPI S5 soft-off, QEMU's isa-debug-exit port, the Bochs shutdown port. Then halts.
 * The caller drains the console first. */
__attribute__((noreturn)) void power_off(void);
__attribute__((noreturn)) void halt_forever(void);
