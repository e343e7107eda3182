UNIT_TESTS += test_exit_kind
test_exit_kind_SRCS := tests/unit/test_exit_kind.c tests/unit/host_stubs.c vcpu/exit_kind.c vmx/exit_kind.c lib/format.c
