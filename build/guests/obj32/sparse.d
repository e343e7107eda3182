build/guests/obj32/sparse.o: guests/sparse.c guests/rt/rt.h \
 guests/rt/x86.h
guests/rt/rt.h:
guests/rt/x86.h:
