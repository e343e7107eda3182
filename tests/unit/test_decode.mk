UNIT_TESTS += test_decode
test_decode_SRCS := tests/unit/test_decode.c tests/unit/host_stubs.c vcpu/decode.c
