UNIT_TESTS += test_pmtimer
test_pmtimer_SRCS := tests/unit/test_pmtimer.c tests/unit/host_stubs.c vdev/pmtimer.c vdev/vdev.c vdev/lapic.c lib/format.c
