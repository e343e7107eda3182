build/arch/x86/apic.o: arch/x86/apic.c arch/x86/apic.h arch/x86/cpu.h \
 arch/x86/trap.h
arch/x86/apic.h:
arch/x86/cpu.h:
arch/x86/trap.h:
