build/core/bootinfo.o: core/bootinfo.c core/bootinfo.h pmm/pmm.h \
 core/multiboot2.h console/printk.h lib/errno.h lib/string.h
core/bootinfo.h:
pmm/pmm.h:
core/multiboot2.h:
console/printk.h:
lib/errno.h:
lib/string.h:
