UNIT_TESTS += test_tsc
test_tsc_SRCS := tests/unit/test_tsc.c tests/unit/host_stubs.c
