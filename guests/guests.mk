# The test guests: small Multiboot2 kernels the hypervisor runs (see guests/README.md).
# Included by the top Makefile, which copies every $(GUEST_ELFS) file to /guests/ on the ISO.
# Most guests are ELF32 (32-bit protected mode, paging off, as the loader leaves them); memcheck is
# ELF64 and switches to long mode itself. The runtime in guests/rt/ is built once for each mode.

GUEST_BUILD := $(BUILD)/guests
GUESTS_32   := hello ptswitch escape spin counter bench sparse touchall crash timer smp idle apicstorm ibench pcdev hostile echo uartirq exc ipiflood specctl
GUESTS_64   := memcheck crash64 memhole
# Multiboot1 guests: the 32-bit runtime with a Multiboot1 header (guests/rt/mb1.inc) instead of the
# Multiboot2 one; each also as NAME-aout.bin, a flat binary loaded by the header's a.out-kludge fields.
GUESTS_MB1  := mb1
GUEST_ELFS  := $(GUESTS_32:%=$(GUEST_BUILD)/%.elf) $(GUESTS_64:%=$(GUEST_BUILD)/%.elf) \
	       $(GUESTS_MB1:%=$(GUEST_BUILD)/%.elf) $(GUESTS_MB1:%=$(GUEST_BUILD)/%-aout.bin) \
	       $(GUEST_BUILD)/mb1-low.elf

GUEST_CFLAGS := -std=gnu11 -O2 -g -ffreestanding -fno-builtin -fno-pic -fno-pie -fno-stack-protector \
		-fno-common -fno-asynchronous-unwind-tables -fno-tree-loop-distribute-patterns \
		-mno-red-zone -mno-sse -mno-mmx -mno-80387 -mgeneral-regs-only \
		-Wall -Wextra -Werror -Wmissing-prototypes -Wshadow -Wundef \
		-Iguests/rt -Iinclude -MMD -MP
GUEST_CFLAGS_32 := $(GUEST_CFLAGS) -m32 -march=i686
GUEST_CFLAGS_64 := $(GUEST_CFLAGS) -m64 -mcmodel=small
GUEST_LDFLAGS := -nostdlib -static -z max-page-size=0x1000 -z noexecstack --build-id=none \
		 --no-warn-rwx-segments -T guests/rt/guest.ld

GUEST_RT_C     := $(wildcard guests/rt/*.c)
GUEST_RT32_OBJ := $(GUEST_RT_C:guests/rt/%.c=$(GUEST_BUILD)/rt32/%.o) $(GUEST_BUILD)/rt32/entry32.asm.o
GUEST_RT64_OBJ := $(GUEST_RT_C:guests/rt/%.c=$(GUEST_BUILD)/rt64/%.o) $(GUEST_BUILD)/rt64/entry64.asm.o
GUEST_MAIN32   := $(GUESTS_32:%=$(GUEST_BUILD)/obj32/%.o) $(GUESTS_MB1:%=$(GUEST_BUILD)/obj32/%.o)
GUEST_RT32_C_OBJ := $(filter-out %.asm.o,$(GUEST_RT32_OBJ))
GUEST_MAIN64   := $(GUESTS_64:%=$(GUEST_BUILD)/obj64/%.o)
GUEST_OBJS     := $(GUEST_RT32_OBJ) $(GUEST_RT64_OBJ) $(GUEST_MAIN32) $(GUEST_MAIN64)

.PHONY: guests
guests: $(GUEST_ELFS)

# Static pattern rules, so the hypervisor's $(BUILD)/%.o rule never builds a guest object.
$(filter-out %.asm.o,$(GUEST_RT32_OBJ)): $(GUEST_BUILD)/rt32/%.o: guests/rt/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS_32) -c $< -o $@

$(filter-out %.asm.o,$(GUEST_RT64_OBJ)): $(GUEST_BUILD)/rt64/%.o: guests/rt/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS_64) -c $< -o $@

$(GUEST_MAIN32): $(GUEST_BUILD)/obj32/%.o: guests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS_32) -c $< -o $@

$(GUEST_MAIN64): $(GUEST_BUILD)/obj64/%.o: guests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(GUEST_CFLAGS_64) -c $< -o $@

$(GUEST_BUILD)/rt32/entry32.asm.o: guests/rt/entry32.asm guests/rt/mb2.inc
	@mkdir -p $(dir $@)
	$(NASM) -f elf32 -g -I. $< -o $@

$(GUEST_BUILD)/rt64/entry64.asm.o: guests/rt/entry64.asm guests/rt/mb2.inc
	@mkdir -p $(dir $@)
	$(NASM) -f elf64 -g -I. $< -o $@

$(GUESTS_32:%=$(GUEST_BUILD)/%.elf): $(GUEST_BUILD)/%.elf: $(GUEST_BUILD)/obj32/%.o $(GUEST_RT32_OBJ) guests/rt/guest.ld
	$(LD) -m elf_i386 $(GUEST_LDFLAGS) -o $@ $(GUEST_RT32_OBJ) $<

$(GUEST_BUILD)/rt32/entry32-mb1.asm.o: guests/rt/entry32.asm guests/rt/mb1.inc
	@mkdir -p $(dir $@)
	$(NASM) -f elf32 -g -I. -DMULTIBOOT1 $< -o $@

$(GUEST_BUILD)/rt32/entry32-mb1-aout.asm.o: guests/rt/entry32.asm guests/rt/mb1.inc
	@mkdir -p $(dir $@)
	$(NASM) -f elf32 -g -I. -DMULTIBOOT1 -DMB1_AOUT_KLUDGE $< -o $@

$(GUESTS_MB1:%=$(GUEST_BUILD)/%.elf): $(GUEST_BUILD)/%.elf: $(GUEST_BUILD)/obj32/%.o $(GUEST_RT32_C_OBJ) $(GUEST_BUILD)/rt32/entry32-mb1.asm.o guests/rt/guest.ld
	$(LD) -m elf_i386 $(GUEST_LDFLAGS) -o $@ $(GUEST_RT32_C_OBJ) $(GUEST_BUILD)/rt32/entry32-mb1.asm.o $<

# mb1 linked at 0x8000 instead of 1 MiB: its segment covers the page where the loader's information
# block usually goes (loader/loader.h), so the loader must put the block elsewhere.
$(GUEST_BUILD)/mb1-low.elf: $(GUEST_BUILD)/obj32/mb1.o $(GUEST_RT32_C_OBJ) $(GUEST_BUILD)/rt32/entry32-mb1.asm.o guests/rt/guest.ld
	$(LD) -m elf_i386 --defsym=__link_base=0x8000 $(GUEST_LDFLAGS) -o $@ $(GUEST_RT32_C_OBJ) $(GUEST_BUILD)/rt32/entry32-mb1.asm.o $<

# The a.out-kludge image: linked the same way, then only its bytes from the load address on (the
# header says where they go and where the bss ends).
$(GUESTS_MB1:%=$(GUEST_BUILD)/%-aout.bin): $(GUEST_BUILD)/%-aout.bin: $(GUEST_BUILD)/obj32/%.o $(GUEST_RT32_C_OBJ) $(GUEST_BUILD)/rt32/entry32-mb1-aout.asm.o guests/rt/guest.ld
	$(LD) -m elf_i386 $(GUEST_LDFLAGS) -o $(@:.bin=.elf) $(GUEST_RT32_C_OBJ) $(GUEST_BUILD)/rt32/entry32-mb1-aout.asm.o $<
	objcopy -O binary $(@:.bin=.elf) $@

$(GUESTS_64:%=$(GUEST_BUILD)/%.elf): $(GUEST_BUILD)/%.elf: $(GUEST_BUILD)/obj64/%.o $(GUEST_RT64_OBJ) guests/rt/guest.ld
	$(LD) -m elf_x86_64 $(GUEST_LDFLAGS) -o $@ $(GUEST_RT64_OBJ) $<

-include $(GUEST_OBJS:.o=.d)
