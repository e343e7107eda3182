/* Host device interrupts: the console UART's receive interrupt, through the I/O APIC. */
#pragma once
#include <stdbool.h>

/* Boot CPU, after acpi_init and lapic_init: routes the console UART's ISA IRQ (COM1/COM3 IRQ 4,
 * COM2/COM4 IRQ 3) through the I/O APIC to VEC_CONSOLE on this CPU and turns the UART's receive
 * interrupt on, unless `use_irq` is false, there is no I/O APIC or the port has no known IRQ: input is
 * then polled. Says which in one line (`hv: console: input by ...`). true when by interrupt. */
bool irq_console_init(bool use_irq);
