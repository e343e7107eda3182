build/boot/entry.asm.o : boot/entry.asm

