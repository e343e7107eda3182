UNIT_TESTS += test_spec
test_spec_SRCS := tests/unit/test_spec.c tests/unit/host_stubs.c arch/x86/spec.c lib/format.c
