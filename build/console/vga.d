build/console/vga.o: console/vga.c console/console.h lib/string.h
console/console.h:
lib/string.h:
