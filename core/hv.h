/* The core: turns VMX on, creates the guests from the boot modules and runs them on the CPUs. */
#pragma once
#include <stdbool.h>
#include "arch/x86/percpu.h"
#include "core/bootinfo.h"

/* On the boot CPU once the platform is up: starts everything; returns when nothing is left to run
 * and poweroff=1 (without it, the boot CPU stays in the monitor's console loop). */
void hv_start(const struct bootinfo *bi);

/* Which paging= a guest may ask for here, settled by hv_start before any guest: EPT (or the other
 * vendor's nested paging) unless the CPU lacks unrestricted guest or nested paging; shadow paging where
 * the back end has what it needs (VMX: the controls vmx/spt.c needs, vmx_caps.spt; SVM: XD). */
extern bool hv_paging_ept_ok, hv_paging_shadow_ok;
/* paging=ept is refused because the CPU has no EPT or NPT at all (Bochs's penryn, QEMU's qemu64),
 * not for want of unrestricted guest: the reason a refused guest gets. */
extern bool hv_paging_no_ept;
/* Where each application processor goes once online: its scheduler loop. Never returns. */
__attribute__((noreturn)) void hv_ap_main(struct percpu *pc);
struct vm;
/* Puts every vCPU of a (re)built guest on its CPU's run list and kicks those CPUs. Any CPU. */
void hv_schedule(struct vm *g);
/* Resets the machine, every CPU out of VMX operation first. Any CPU. */
__attribute__((noreturn)) void hv_reboot(void);
