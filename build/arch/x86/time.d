build/arch/x86/time.o: arch/x86/time.c arch/x86/cpu.h arch/x86/time.h \
 console/printk.h
arch/x86/cpu.h:
arch/x86/time.h:
console/printk.h:
