build/pmm/pmm.o: pmm/pmm.c pmm/pmm.h arch/x86/spinlock.h console/printk.h \
 lib/errno.h lib/string.h
pmm/pmm.h:
arch/x86/spinlock.h:
console/printk.h:
lib/errno.h:
lib/string.h:
