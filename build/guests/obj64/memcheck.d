build/guests/obj64/memcheck.o: guests/memcheck.c guests/rt/rt.h \
 guests/rt/x86.h
guests/rt/rt.h:
guests/rt/x86.h:
