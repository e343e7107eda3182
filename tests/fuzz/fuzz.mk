# Host fuzzing of the parsers of untrusted bytes (tests/fuzz/README.md): one libFuzzer harness per
# parser, built with clang under ASan and UBSan against the unit tests' host stubs. Included by the
# Makefile, which owns nothing of this but the include.
#
#   make fuzz-host [FUZZ_SECONDS=60]   build, then fuzz each harness for FUZZ_SECONDS / 6 seconds
#   make fuzz-bins                     build the harnesses and their seed corpora (make test's smoke)

FUZZ_CC      := clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-Wall -Wextra -Werror -Wshadow -I. -Iinclude -DHOST_TEST
FUZZ_STUBS   := tests/unit/host_stubs.c

FUZZ_HARNESSES := fuzz_bootinfo fuzz_cmdline fuzz_decode fuzz_gpt fuzz_lapic fuzz_loader
fuzz_bootinfo_SRCS := tests/fuzz/fuzz_bootinfo.c core/bootinfo.c
fuzz_cmdline_SRCS  := tests/fuzz/fuzz_cmdline.c lib/cmdline.c lib/format.c core/config.c
fuzz_decode_SRCS   := tests/fuzz/fuzz_decode.c vcpu/decode.c
fuzz_gpt_SRCS      := tests/fuzz/fuzz_gpt.c shadow/gpt.c
fuzz_lapic_SRCS    := tests/fuzz/fuzz_lapic.c vdev/lapic.c
fuzz_loader_SRCS   := tests/fuzz/fuzz_loader.c loader/loader.c loader/elf.c loader/mb1.c loader/mb2.c \
		      loader/linux.c core/bootinfo.c lib/format.c

FUZZ_BINS  := $(FUZZ_HARNESSES:%=$(BUILD)/fuzz/bin/%)
FUZZ_SEEDS := $(BUILD)/fuzz/seeds/.stamp

.PHONY: fuzz-host fuzz-bins fuzz-check-tools

# clang and libFuzzer's runtime (libclang-rt-14-dev on Debian 12, which clang only recommends).
fuzz-check-tools:
	@command -v $(FUZZ_CC) >/dev/null && [ -f "$$($(FUZZ_CC) -print-file-name=libclang_rt.fuzzer-x86_64.a)" ] || \
	{ echo "fuzzing needs clang and libFuzzer: install clang libclang-rt-14-dev (or run 'make deps')"; exit 1; }

# One clang call per harness over its sources (small programs, as the unit tests).
$(BUILD)/fuzz/bin/%: $$(%_SRCS) $(FUZZ_STUBS) tests/fuzz/fuzz.h $(UNIT_HEADERS) | fuzz-check-tools
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $($*_SRCS) $(FUZZ_STUBS)

# Seeds: the guest images, tests/data, and the corpora the unit tests hold (tests/fuzz/seeds.py).
$(FUZZ_SEEDS): tests/fuzz/seeds.py $(GUEST_ELFS) $(wildcard tests/data/*) $(wildcard tests/unit/test_*.c) iso/grub.cfg \
		tests/scenarios.py
	$(PYTHON) tests/fuzz/seeds.py $(BUILD)/fuzz/seeds
	@touch $@

fuzz-bins: $(FUZZ_BINS) $(FUZZ_SEEDS)

fuzz-host: fuzz-bins
	$(PYTHON) tests/fuzz/fuzz.py --seconds $(FUZZ_SECONDS) $(FUZZ_HARNESSES)
