build/console/uart.o: console/uart.c arch/x86/cpu.h console/console.h
arch/x86/cpu.h:
console/console.h:
