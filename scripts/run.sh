#!/usr/bin/env bash
# `make run`: boots the ISO with the serial console on this terminal, both ways: what the hypervisor
# prints shows here, what you type goes to its console (the monitor, or the guest with the focus:
# docs/console.md). In this order:
#  - QEMU with KVM and nested VMX when the host can (Intel VT-x, /dev/kvm, kvm_intel nested);
#  - QEMU with KVM and nested SVM on an AMD host (/dev/kvm, kvm_amd nested): untested here
#    (docs/hardware.md);
#  - otherwise QEMU without KVM, whose software SVM (-cpu EPYC: nested paging) runs the hypervisor's
#    guests: measured faster than Bochs, the default ISO to `hv: all guests finished` in 6-8 s against
#    52-54 s in Bochs (docs/hardware.md);
#  - Bochs corei7_skylake_x (which emulates VMX) when QEMU is missing, or with TESSERA_RUN=bochs.
# Headless. Ctrl-C stops everything. TESSERA_RUN=kvm|qemu|bochs forces one way.
set -euo pipefail

iso=${1:-build/hypervisor.iso}
[ -f "$iso" ] || { echo "run: $iso not found (make it with 'make')" >&2; exit 1; }
iso=$(realpath "$iso")
runner="$(dirname "$0")/../tests/lib/runner.py"

way=${TESSERA_RUN:-}
kvm_ok() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# KVM gives its guests VMX only with nested virtualization on (kvm_intel nested=Y or 1).
nested=$(cat /sys/module/kvm_intel/parameters/nested 2>/dev/null || echo N)
if [ -z "$way" ] && kvm_ok && grep -qw vmx /proc/cpuinfo && [[ $nested == [Yy1]* ]]; then
	echo "run: QEMU with KVM (nested VMX), 4 CPUs, 1 GiB; Ctrl-] m for the monitor, Ctrl-C to stop"
	# -serial stdio: the terminal in raw mode with signals on (Ctrl-C), restored when QEMU exits.
	exec qemu-system-x86_64 -accel kvm -cpu host -smp 4 -m 1024 -cdrom "$iso" -boot d \
		-serial stdio -display none -monitor none -no-reboot \
		-device isa-debug-exit,iobase=0xf4,iosize=4
fi

# On AMD, KVM gives its guests SVM with kvm_amd nested=1 (the default since Linux 4.19); -cpu host
# passes SVM with nested paging on. Untested here: this machine's /dev/kvm is not usable for guests
# (docs/hardware.md). TESSERA_RUN=kvm takes this way whatever the checks say.
nested_amd=$(cat /sys/module/kvm_amd/parameters/nested 2>/dev/null || echo N)
if [ "$way" = kvm ] || { [ -z "$way" ] && kvm_ok && grep -qw svm /proc/cpuinfo && [[ $nested_amd == [Yy1]* ]]; }; then
	echo "run: QEMU with KVM (nested SVM; untested), 4 CPUs, 1 GiB; Ctrl-] m for the monitor, Ctrl-C to stop"
	exec qemu-system-x86_64 -accel kvm -cpu host -smp 4 -m 1024 -cdrom "$iso" -boot d \
		-serial stdio -display none -monitor none -no-reboot \
		-device isa-debug-exit,iobase=0xf4,iosize=4
fi

# No KVM: QEMU's software SVM (TCG, -cpu EPYC: SVM with nested paging, no nRIP save or decode
# assists; the hypervisor's SVM back end runs the guests) boots and runs the default ISO about seven
# times faster than Bochs's VMX (measured: docs/hardware.md). Bochs when QEMU is missing.
if [ "$way" = qemu ] || { [ -z "$way" ] && command -v qemu-system-x86_64 >/dev/null; }; then
	echo "run: QEMU without KVM, software SVM (-cpu EPYC), 4 CPUs, 512 MiB; Ctrl-] m for the monitor, Ctrl-C to stop"
	exec qemu-system-x86_64 -accel tcg -cpu EPYC -smp 4 -m 512 -cdrom "$iso" -boot d \
		-serial stdio -display none -monitor none -no-reboot \
		-device isa-debug-exit,iobase=0xf4,iosize=4
fi

echo "run: Bochs corei7_skylake_x (VMX emulated), 4 CPUs, 512 MiB; Ctrl-] m for the monitor, Ctrl-C to stop"
dir=$(realpath -m "$(dirname "$iso")/run")   # build/run: one place, removed by make clean
rm -rf "$dir" && mkdir -p "$dir"
# COM1 is a TCP server on a free local port; Bochs starts once the bridge below has connected.
port=$(python3 "$runner" free-port)
python3 "$runner" bochsrc "$iso" "$dir" 512 4 "$port" >"$dir/bochsrc"
printf 'c\nquit\n' >"$dir/dbg.rc"
: >"$dir/serial.log"

# Bochs runs in its own session (setsid), so the terminal's Ctrl-C reaches only this script and the
# bridge, which then kill it (Bochs ignores SIGTERM: KILL). Its term display draws on a pseudo-terminal
# of its own (named in bochs.out), never on this terminal; drain-screen reads it for the whole run, or
# Bochs blocks once its buffers are full and the machine freezes (tests/lib/runner.py, ScreenDrain).
TERM=dumb setsid bochs -q -f "$dir/bochsrc" -rc "$dir/dbg.rc" </dev/null >"$dir/bochs.out" 2>&1 &
bochs_pid=$!
python3 "$runner" drain-screen "$dir/bochs.out" "$bochs_pid" "$dir/screen.tail" &
drain_pid=$!
stop() {
	kill -KILL "$bochs_pid" 2>/dev/null || true
	kill "$drain_pid" 2>/dev/null || true
}
trap 'stop; echo; echo "run: stopped (logs in $dir)"; exit 130' INT TERM
trap stop EXIT

# The bridge: this terminal raw (no echo, no line editing, Ctrl-C still a signal) <-> Bochs's COM1,
# everything received also appended to serial.log; the terminal's settings come back on every exit.
status=0
python3 "$runner" bridge "$port" "$dir/serial.log" || status=$?
[ "$status" = 130 ] && { stop; echo; echo "run: stopped (logs in $dir)"; exit 130; }
echo
echo "run: Bochs exited (logs in $dir)"
