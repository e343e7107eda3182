build/arch/x86/smp.o: arch/x86/smp.c arch/x86/acpi.h arch/x86/apic.h \
 arch/x86/cpu.h arch/x86/paging.h arch/x86/smp.h arch/x86/percpu.h \
 arch/x86/time.h arch/x86/trap.h console/printk.h lib/string.h
arch/x86/acpi.h:
arch/x86/apic.h:
arch/x86/cpu.h:
arch/x86/paging.h:
arch/x86/smp.h:
arch/x86/percpu.h:
arch/x86/time.h:
arch/x86/trap.h:
console/printk.h:
lib/string.h:
