UNIT_TESTS += test_shadow
test_shadow_SRCS := tests/unit/test_shadow.c tests/unit/host_stubs.c tests/unit/fake_pmm.c shadow/shadow.c shadow/gpt.c
