UNIT_TESTS += test_pit
test_pit_SRCS := tests/unit/test_pit.c tests/unit/host_stubs.c vdev/pit.c vdev/vdev.c vdev/lapic.c lib/format.c
