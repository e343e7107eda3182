build/arch/x86/entry.asm.o : arch/x86/entry.asm

