build/guests/rt32/boot.o: guests/rt/boot.c guests/rt/rt.h guests/rt/x86.h \
 include/tessera/hypercall.h
guests/rt/rt.h:
guests/rt/x86.h:
include/tessera/hypercall.h:
