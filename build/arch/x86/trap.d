build/arch/x86/trap.o: arch/x86/trap.c arch/x86/apic.h arch/x86/cpu.h \
 arch/x86/trap.h console/printk.h
arch/x86/apic.h:
arch/x86/cpu.h:
arch/x86/trap.h:
console/printk.h:
