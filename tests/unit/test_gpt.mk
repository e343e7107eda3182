UNIT_TESTS += test_gpt
test_gpt_SRCS := tests/unit/test_gpt.c tests/unit/host_stubs.c shadow/gpt.c
