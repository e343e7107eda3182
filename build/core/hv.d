build/core/hv.o: core/hv.c arch/x86/cpu.h console/printk.h core/hv.h \
 arch/x86/percpu.h core/bootinfo.h pmm/pmm.h
arch/x86/cpu.h:
console/printk.h:
core/hv.h:
arch/x86/percpu.h:
core/bootinfo.h:
pmm/pmm.h:
