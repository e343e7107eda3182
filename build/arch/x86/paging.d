build/arch/x86/paging.o: arch/x86/paging.c arch/x86/apic.h arch/x86/cpu.h \
 arch/x86/paging.h console/printk.h lib/string.h pmm/pmm.h
arch/x86/apic.h:
arch/x86/cpu.h:
arch/x86/paging.h:
console/printk.h:
lib/string.h:
pmm/pmm.h:
