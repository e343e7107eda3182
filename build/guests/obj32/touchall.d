build/guests/obj32/touchall.o: guests/touchall.c guests/rt/rt.h \
 guests/rt/x86.h
guests/rt/rt.h:
guests/rt/x86.h:
