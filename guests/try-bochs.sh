#!/bin/sh
# Runs one guest on bare Bochs (no hypervisor), GRUB loading it with `multiboot2`: for what QEMU 7.2
# TCG lacks (x2APIC, TSC-deadline, APIC relocation and re-enable). Bochs has no debug-exit device:
# the guest's exit ends in CLI; HLT, so this stops at the first `rt: `/verdict-ending line pattern
# or the time limit, prints the serial output and exits 0 (the verdict is in the output).
# Usage: guests/try-bochs.sh build/guests/NAME.elf ['ARGS'] [MEGS] [TIMEOUT_SECONDS] [CPUS]
# $BOCHS_CPU picks the CPU model (corei7_skylake_x: x2APIC, TSC-deadline). $BOCHS_DONE: a regex of the
# last line to wait for (default: a guest's summary or exit line).
set -eu
elf=$1 args=${2:-} megs=${3:-64} limit=${4:-120} cpus=${5:-1}
model=${BOCHS_CPU:-corei7_skylake_x}
done_re=${BOCHS_DONE:-'checks (passed|failed)|: done, |^idle: [0-9].*(ok|FAIL)$|^rt: |usage'}
dir=$(mktemp -d /tmp/guest-bochs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/iso/boot/grub"
cp "$elf" "$dir/iso/g.elf"
cat >"$dir/iso/boot/grub/grub.cfg" <<CFG
set timeout=0
set default=0
serial --unit=0 --speed=115200
terminal_output serial
menuentry guest {
	multiboot2 /g.elf $args
	boot
}
CFG
grub-mkrescue -o "$dir/g.iso" "$dir/iso" >/dev/null 2>&1
cat >"$dir/bochsrc" <<RC
megs: $megs
cpu: model=$model, count=$cpus, ips=100000000, reset_on_triple_fault=0
romimage: file=/usr/share/bochs/BIOS-bochs-latest, options=fastboot
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0-master: type=cdrom, path=$dir/g.iso, status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$dir/serial.log
display_library: term
log: $dir/bochs.log
panic: action=fatal
clock: sync=none, time0=local
speaker: enabled=0
sound: driver=dummy
RC
printf 'c\nquit\n' >"$dir/dbg.rc"
: >"$dir/serial.log"
# No setsid: it may fork, and $! would not be Bochs. The wrapper execs bochs-bin, so $! is Bochs.
TERM=dumb bochs -q -f "$dir/bochsrc" -rc "$dir/dbg.rc" </dev/null >"$dir/bochs.out" 2>&1 &
pid=$!
# Its term display draws on a pseudo-terminal of its own (named in bochs.out): read it for the whole
# run, or Bochs blocks once its buffers are full and the guest freezes (tests/lib/runner.py, ScreenDrain).
python3 "$(dirname "$0")/../tests/lib/runner.py" drain-screen "$dir/bochs.out" "$pid" &
drain=$!
trap 'kill -KILL "$pid" 2>/dev/null || true; kill "$drain" 2>/dev/null || true; rm -rf "$dir"' EXIT
end=$(( $(date +%s) + limit ))
# The guest's own lines start with its name and a colon (GRUB's screen output does not).
while kill -0 "$pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do
	if tr -d '\r' <"$dir/serial.log" | grep -a -E '^[a-z0-9]+: ' | tail -n 1 | grep -q -E "$done_re"; then
		sleep 1
		break
	fi
	sleep 1
done
kill -KILL "$pid" 2>/dev/null || true
tr -d '\r' <"$dir/serial.log" | grep -a -E '^[a-z0-9]+: '
