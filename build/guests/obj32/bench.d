build/guests/obj32/bench.o: guests/bench.c guests/rt/rt.h guests/rt/x86.h \
 include/tessera/hypercall.h
guests/rt/rt.h:
guests/rt/x86.h:
include/tessera/hypercall.h:
