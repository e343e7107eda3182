build/guests/rt32/lib.o: guests/rt/lib.c guests/rt/rt.h guests/rt/x86.h
guests/rt/rt.h:
guests/rt/x86.h:
