build/console/printk.o: console/printk.c arch/x86/apic.h arch/x86/cpu.h \
 arch/x86/spinlock.h arch/x86/trap.h console/console.h console/printk.h \
 lib/errno.h lib/format.h lib/string.h
arch/x86/apic.h:
arch/x86/cpu.h:
arch/x86/spinlock.h:
arch/x86/trap.h:
console/console.h:
console/printk.h:
lib/errno.h:
lib/format.h:
lib/string.h:
