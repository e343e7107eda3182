UNIT_TESTS += test_ept
test_ept_SRCS := tests/unit/test_ept.c tests/unit/host_stubs.c tests/unit/fake_pmm.c ept/ept.c
