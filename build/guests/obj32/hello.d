build/guests/obj32/hello.o: guests/hello.c guests/rt/rt.h guests/rt/x86.h \
 include/tessera/hypercall.h
guests/rt/rt.h:
guests/rt/x86.h:
include/tessera/hypercall.h:
