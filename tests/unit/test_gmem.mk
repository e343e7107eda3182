UNIT_TESTS += test_gmem
test_gmem_SRCS := tests/unit/test_gmem.c tests/unit/host_stubs.c tests/unit/fake_pmm.c gmem/gmem.c ept/ept.c
