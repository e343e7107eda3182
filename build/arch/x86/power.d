build/arch/x86/power.o: arch/x86/power.c arch/x86/acpi.h arch/x86/cpu.h \
 arch/x86/power.h arch/x86/time.h
arch/x86/acpi.h:
arch/x86/cpu.h:
arch/x86/power.h:
arch/x86/time.h:
