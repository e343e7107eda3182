/* kmain's module (core/main.c): the boot CPU's path to a running system, and the system's end. */
#pragma once

/* The end of the system, once every guest has ended or there was nothing to run: prints it, flushes
 * the console, then powers off (poweroff=1) or halts. The same end as a panic's (panic_action). */
__attribute__((noreturn)) void hv_shutdown(void);
