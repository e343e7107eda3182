build/core/config.o: core/config.c core/config.h lib/cmdline.h
core/config.h:
lib/cmdline.h:
