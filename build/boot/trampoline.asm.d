build/boot/trampoline.asm.o : boot/trampoline.asm

