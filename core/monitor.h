/* The operator's seat on the serial console: keystrokes for the guest with the console focus, the
 * monitor shell (hv>) and the escape key that switches between them. The boot CPU runs it. */
#pragma once
#include <stdbool.h>
#include "vcpu/vcpu.h"

/* How often the boot CPU reads the console while it has nothing else to do, when input is polled (no
 * I/O APIC, or console_irq=0; docs/console.md). By interrupt, a key wakes it. */
#define MONITOR_POLL_US 10000

/* The key that precedes a console key (Ctrl-], 0x1d: telnet's escape; picocom, minicom and screen
 * use Ctrl-A and pass Ctrl-] through). */
#define MONITOR_ESCAPE 0x1d

/* The console banner, once input works ("hv: console: ..."). */
void monitor_banner(void);
/* Boot CPU, each pass of its scheduler loop: takes what was typed and acts on it, one command (or
 * 256 bytes) at a time; true if more may be waiting. */
bool monitor_poll(void);
/* The console's interrupt came at `tsc` while the boot CPU was halted with interrupts on: the key
 * arrived then (for the time the `console` command reports). */
void monitor_key_came(uint64_t tsc);
/* Boot CPU with nothing to run for good: reads the console for ever (a console-only system). */
__attribute__((noreturn)) void monitor_idle(void);
/* A guest was (re)built: if it has the focus, its new UART gets it. */
void monitor_guest_built(struct vm *g);
