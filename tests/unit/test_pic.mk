UNIT_TESTS += test_pic
test_pic_SRCS := tests/unit/test_pic.c tests/unit/host_stubs.c vdev/pic.c vdev/vdev.c vdev/lapic.c lib/format.c
