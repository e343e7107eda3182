UNIT_TESTS += test_bootinfo
test_bootinfo_SRCS := tests/unit/test_bootinfo.c tests/unit/host_stubs.c core/bootinfo.c
