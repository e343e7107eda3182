UNIT_TESTS += test_cmdline
test_cmdline_SRCS := tests/unit/test_cmdline.c tests/unit/host_stubs.c lib/cmdline.c lib/format.c
