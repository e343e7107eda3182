UNIT_TESTS += test_rtc
test_rtc_SRCS := tests/unit/test_rtc.c tests/unit/host_stubs.c vdev/rtc.c vdev/vdev.c vdev/lapic.c lib/format.c
