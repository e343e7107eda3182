build/core/main.o: core/main.c arch/x86/acpi.h arch/x86/apic.h \
 arch/x86/cpu.h arch/x86/paging.h arch/x86/percpu.h arch/x86/power.h \
 arch/x86/smp.h arch/x86/time.h console/console.h console/printk.h \
 core/bootinfo.h pmm/pmm.h core/config.h core/hv.h lib/string.h
arch/x86/acpi.h:
arch/x86/apic.h:
arch/x86/cpu.h:
arch/x86/paging.h:
arch/x86/percpu.h:
arch/x86/power.h:
arch/x86/smp.h:
arch/x86/time.h:
console/console.h:
console/printk.h:
core/bootinfo.h:
pmm/pmm.h:
core/config.h:
core/hv.h:
lib/string.h:
