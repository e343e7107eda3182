UNIT_TESTS += test_work
test_work_SRCS := tests/unit/test_work.c tests/unit/host_stubs.c vdev/vdev.c vdev/lapic.c lib/format.c
