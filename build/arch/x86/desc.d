build/arch/x86/desc.o: arch/x86/desc.c arch/x86/cpu.h arch/x86/percpu.h \
 arch/x86/trap.h lib/string.h
arch/x86/cpu.h:
arch/x86/percpu.h:
arch/x86/trap.h:
lib/string.h:
