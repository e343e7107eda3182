build/guests/obj32/escape.o: guests/escape.c guests/rt/rt.h \
 guests/rt/x86.h
guests/rt/rt.h:
guests/rt/x86.h:
