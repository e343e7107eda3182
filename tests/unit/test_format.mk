UNIT_TESTS += test_format
test_format_SRCS := tests/unit/test_format.c tests/unit/host_stubs.c lib/format.c
