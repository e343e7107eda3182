UNIT_TESTS += test_svm
test_svm_SRCS := tests/unit/test_svm.c tests/unit/host_stubs.c svm/caps.c lib/format.c
