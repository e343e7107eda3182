UNIT_TESTS += test_realmode
test_realmode_SRCS := tests/unit/test_realmode.c tests/unit/host_stubs.c vmx/rmemu.c vcpu/decode.c
