UNIT_TESTS += test_uart
test_uart_SRCS := tests/unit/test_uart.c tests/unit/host_stubs.c vdev/uart.c vdev/hypercall.c vdev/vdev.c vdev/lapic.c lib/format.c
