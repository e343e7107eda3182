UNIT_TESTS += test_linux
test_linux_SRCS := tests/unit/test_linux.c tests/unit/host_stubs.c loader/loader.c loader/elf.c loader/mb1.c loader/mb2.c \
		  loader/linux.c lib/format.c
