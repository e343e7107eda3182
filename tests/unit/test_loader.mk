UNIT_TESTS += test_loader
test_loader_SRCS := tests/unit/test_loader.c tests/unit/host_stubs.c core/loader.c lib/format.c
