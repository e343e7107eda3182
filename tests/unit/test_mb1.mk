UNIT_TESTS += test_mb1
test_mb1_SRCS := tests/unit/test_mb1.c tests/unit/host_stubs.c loader/loader.c loader/elf.c loader/mb1.c loader/mb2.c \
		  loader/linux.c lib/format.c
