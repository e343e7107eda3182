UNIT_TESTS += test_cpuid
test_cpuid_SRCS := tests/unit/test_cpuid.c tests/unit/host_stubs.c vcpu/cpuid_policy.c
