# tessera: a bare-metal x86-64 partitioning hypervisor. `make` builds the ELF and the GRUB ISO.
# `make run` boots it, `make test` runs every test, `make bench` the benchmarks. See README.md.

BUILD   := build
CC      := gcc
LD      := ld
NASM    := nasm
PYTHON  := python3

# The hypervisor: every .c and .asm under these folders (the folder is the concept, see README.md).
HV_DIRS := arch/x86 console lib pmm ept gmem vdev vmx core
HV_C    := $(foreach d,$(HV_DIRS),$(wildcard $(d)/*.c))
HV_ASM  := $(wildcard boot/*.asm) $(foreach d,$(HV_DIRS),$(wildcard $(d)/*.asm))
HV_OBJ  := $(HV_C:%.c=$(BUILD)/%.o) $(HV_ASM:%.asm=$(BUILD)/%.asm.o)

CFLAGS  := -std=gnu11 -O2 -g -ffreestanding -fno-pic -fno-pie -fno-stack-protector -fno-common \
	   -fno-asynchronous-unwind-tables -mno-red-zone -mno-sse -mno-mmx -mno-80387 -mcmodel=kernel \
	   -Wall -Wextra -Werror -Wmissing-prototypes -Wshadow -Wundef -I. -Iinclude -MMD -MP
# The image is linked at its physical address (1:1 with virtual): below 2 GiB, so mcmodel=kernel
# is wrong; small is right for code and data below 2 GiB.
CFLAGS  := $(filter-out -mcmodel=kernel,$(CFLAGS)) -mcmodel=small
NFLAGS  := -f elf64 -g -I.
LIBGCC  := $(shell $(CC) -print-libgcc-file-name)  # compiler helpers such as __popcountdi2
LDFLAGS := -nostdlib -z max-page-size=0x1000 -z noexecstack -T linker.ld

ISO_DIR := $(BUILD)/iso
HV_ELF  := $(BUILD)/hypervisor.elf
HV_ISO  := $(BUILD)/hypervisor.iso

.PHONY: all run test unit bench deps clean check-tools
all: $(HV_ISO)

# --- guests (guests/guests.mk defines GUEST_ELFS and how to build them) ---
include guests/guests.mk

# --- build tools ------------------------------------------------------------
# Each tool the build runs and the Debian package that provides it.
TOOLS := nasm:nasm grub-mkrescue:grub-common xorriso:xorriso mformat:mtools
check-tools:
	@missing=""; for t in $(TOOLS); do command -v $${t%%:*} >/dev/null || missing="$$missing $${t#*:}"; done; \
	[ -d /usr/lib/grub/i386-pc ] || missing="$$missing grub-pc-bin"; \
	[ -d /usr/lib/grub/x86_64-efi ] || missing="$$missing grub-efi-amd64-bin"; \
	if [ -n "$$missing" ]; then echo "missing build tools; install the Debian packages:$$missing (or run 'make deps')"; exit 1; fi

deps:
	scripts/install-deps.sh

# Every object waits for the tool check, so a missing tool is named before anything fails on it.
$(HV_OBJ): | check-tools

# --- the hypervisor ---------------------------------------------------------
# V=1 shows the full commands.
Q := $(if $(V),,@)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/%.asm.o: %.asm
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  NASM    $<")
	$(Q)$(NASM) $(NFLAGS) -MD $(@:.o=.d) $< -o $@

$(HV_ELF): $(HV_OBJ) linker.ld
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(LD) $(LDFLAGS) -o $@ $(HV_OBJ) $(LIBGCC)

# The default ISO: iso/grub.cfg and every guest it names.
$(HV_ISO): $(HV_ELF) $(GUEST_ELFS) iso/grub.cfg
	rm -rf $(ISO_DIR) && mkdir -p $(ISO_DIR)/boot/grub $(ISO_DIR)/guests
	cp $(HV_ELF) $(ISO_DIR)/boot/hypervisor.elf
	cp $(GUEST_ELFS) $(ISO_DIR)/guests/
	cp iso/grub.cfg $(ISO_DIR)/boot/grub/grub.cfg
	grub-mkrescue -o $@ $(ISO_DIR) 2>$(BUILD)/grub-mkrescue.log || { cat $(BUILD)/grub-mkrescue.log; exit 1; }

# --- host unit tests (tests/unit/*.mk: name_SRCS for each test program) -----
UNIT_CFLAGS := -std=gnu11 -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
	       -Wall -Wextra -Werror -Wshadow -I. -Iinclude -DHOST_TEST
UNIT_TESTS :=
include $(wildcard tests/unit/*.mk)
UNIT_BINS := $(UNIT_TESTS:%=$(BUILD)/unit/%)

.SECONDEXPANSION:

# Each test program is one gcc call over its sources; it is rebuilt when any header changes (seven
# small programs: simpler and safer than per-source dependency files).
UNIT_HEADERS := $(wildcard */*.h */*/*.h)
$(BUILD)/unit/%: $$(%_SRCS) $(UNIT_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(UNIT_CFLAGS) -o $@ $($*_SRCS)

unit: $(UNIT_BINS)

# --- host fuzzing of the parsers of untrusted bytes (tests/fuzz/fuzz.mk: fuzz-host, fuzz-bins) ---
include tests/fuzz/fuzz.mk

# --- running ----------------------------------------------------------------
run:
	@scripts/install-deps.sh --check-or-install
	$(MAKE) all
	scripts/run.sh $(HV_ISO)

test:
	@scripts/install-deps.sh --check-or-install
	$(MAKE) all unit fuzz-bins
	$(PYTHON) tests/run.py

bench:
	@scripts/install-deps.sh --check-or-install
	$(MAKE) all
	$(PYTHON) tests/bench.py

clean:
	rm -rf $(BUILD)

-include $(HV_OBJ:.o=.d)
