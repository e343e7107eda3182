build/guests/obj32/spin.o: guests/spin.c guests/rt/rt.h guests/rt/x86.h
guests/rt/rt.h:
guests/rt/x86.h:
