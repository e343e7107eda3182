UNIT_TESTS += test_acpi
test_acpi_SRCS := tests/unit/test_acpi.c tests/unit/host_stubs.c loader/acpi.c $(BUILD)/loader/dsdt_aml.c
