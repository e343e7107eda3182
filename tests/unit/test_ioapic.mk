UNIT_TESTS += test_ioapic
test_ioapic_SRCS := tests/unit/test_ioapic.c tests/unit/host_stubs.c vdev/ioapic.c vdev/irqchip.c vdev/lapic.c vdev/vdev.c lib/format.c
