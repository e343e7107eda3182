UNIT_TESTS += test_debugreg
test_debugreg_SRCS := tests/unit/test_debugreg.c tests/unit/host_stubs.c
