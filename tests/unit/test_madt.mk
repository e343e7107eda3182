UNIT_TESTS += test_madt
test_madt_SRCS := tests/unit/test_madt.c tests/unit/host_stubs.c arch/x86/acpi.c
