UNIT_TESTS += test_lapic
test_lapic_SRCS := tests/unit/test_lapic.c tests/unit/host_stubs.c vdev/lapic.c
