/* The core: turns VMX on, creates the guests from the boot modules and runs them on the CPUs. */
#pragma once
#include "arch/x86/percpu.h"
#include "core/bootinfo.h"

/* On the boot CPU once the platform is up: starts everything; returns when nothing is left to run. */
void hv_start(const struct bootinfo *bi);
/* Where each application processor goes once online: its scheduler loop. Never returns. */
__attribute__((noreturn)) void hv_ap_main(struct percpu *pc);
/* Power off or halt, as the command line asked. */
__attribute__((noreturn)) void hv_shutdown(void);
