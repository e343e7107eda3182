#!/bin/sh
# Runs one guest on bare QEMU (no hypervisor): GRUB loads it with `multiboot2`, as tessera would.
# Usage: guests/try-qemu.sh build/guests/NAME.elf ['ARGS'] [MEM] [TIMEOUT_SECONDS]
# Extra QEMU options from $QEMU_ARGS, e.g. QEMU_ARGS='-smp 4' or '-cpu max' (word-split).
# Prints the guest's serial output and exits with the guest's exit code (124: timed out).
# QEMU's isa-debug-exit turns `out 0xf4, V` into the status (V << 1) | 1; we undo that.
set -eu
elf=$1 args=${2:-} mem=${3:-64M} limit=${4:-60} extra=${QEMU_ARGS:-}
dir=$(mktemp -d /tmp/guest-try.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/iso/boot/grub"
cp "$elf" "$dir/iso/g.elf"
cat >"$dir/iso/boot/grub/grub.cfg" <<CFG
set timeout=0
set default=0
menuentry guest {
	multiboot2 /g.elf $args
	boot
}
CFG
grub-mkrescue -o "$dir/g.iso" "$dir/iso" >/dev/null 2>&1
set +e
timeout "$limit" qemu-system-x86_64 -cdrom "$dir/g.iso" -m "$mem" -serial stdio -display none \
	-no-reboot -device isa-debug-exit,iobase=0xf4,iosize=4 $extra </dev/null
rc=$?
set -e
[ $rc -eq 124 ] && exit 124
[ $((rc & 1)) -eq 1 ] && exit $((rc >> 1))
echo "try-qemu: qemu ended with status $rc (no debug exit: crash or reset?)" >&2
exit 125
