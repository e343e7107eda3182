build/lib/cmdline.o: lib/cmdline.c lib/cmdline.h console/printk.h \
 lib/errno.h lib/string.h
lib/cmdline.h:
console/printk.h:
lib/errno.h:
lib/string.h:
