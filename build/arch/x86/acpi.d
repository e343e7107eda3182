build/arch/x86/acpi.o: arch/x86/acpi.c arch/x86/acpi.h console/printk.h \
 lib/string.h
arch/x86/acpi.h:
console/printk.h:
lib/string.h:
