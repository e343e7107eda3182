build/guests/rt64/console.o: guests/rt/console.c guests/rt/rt.h \
 guests/rt/x86.h
guests/rt/rt.h:
guests/rt/x86.h:
