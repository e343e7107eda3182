build/ept/ept.o: ept/ept.c ept/ept.h lib/errno.h lib/string.h pmm/pmm.h
ept/ept.h:
lib/errno.h:
lib/string.h:
pmm/pmm.h:
