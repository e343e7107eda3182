#!/usr/bin/env python3
"""Builds a gzip-compressed initramfs (cpio "newc", Documentation/driver-api/early-userspace/
buffer-format.rst) holding busybox-static and an /init that reports what the Linux guest tests check:
the kernel version, nproc, whether the CPU has PCID (/proc/cpuinfo), the clocksource and clock event device in use, the firmware complaints in
the kernel log (all levels, whatever `quiet` hides), the checksum of a file written and read back;
with `bench_idle=S` on the kernel command line an idle `sleep S` between two TSC markers, with
`shell=1` an interactive shell on the console; then `linux: init done` and a power-off through ACPI
(or a halt when ACPI is off).

For the Linux benchmark (tests/bench.py) /init first runs /bin/tsc (tests/linux/tsc.c, built here
with the host's gcc): `linux: init tsc=N`, the TSC when /init starts. With `bench_idle=S` on the
kernel command line it sleeps S seconds before its last line, between `linux: idle start tsc=N` and
`linux: idle end tsc=N` (S=0: the same two lines, no idle time between them); with `bench_procs=N`
N runs of `/bin/busybox true` between `linux: procs start tsc=N` and `linux: procs end tsc=N`. Its last line,
`linux: init done tsc=N`, is /bin/tsc's too: it waits until the UART sent it, before the power-off.

    mkinitramfs.py BUSYBOX OUT.gz
"""
import gzip
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))

INIT = """#!/bin/busybox sh
/bin/tsc linux: init
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev /tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "linux: init started"
echo "linux: kernel $(uname -r)"
echo "linux: nproc $(nproc)"
echo "linux: pcid $(grep -qw pcid /proc/cpuinfo && echo yes || echo no)"
echo "linux: clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)"
echo "linux: clockevent $(cat /sys/devices/system/clockevents/clockevent0/current_device 2>/dev/null)"
echo "linux: acpi $(ls /sys/firmware/acpi/tables 2>/dev/null | tr '\\n' ' ')"
# The kernel log at every level (the console shows only errors under `quiet`): firmware complaints
# and unchecked MSR accesses (a #GP from an MSR that CPUID said exists) are echoed, so a scenario
# that forbids them sees them, and counted.
dmesg | grep -E 'ACPI (Warning|Error|BIOS)|\[Firmware (Bug|Warn)|unchecked MSR' | sed 's/^/linux: firmware says: /'
echo "linux: firmware complaints $(dmesg | grep -cE 'ACPI (Warning|Error|BIOS)|\[Firmware (Bug|Warn)|unchecked MSR')"
seq 1 2000 > /tmp/written
echo "linux: checksum $(md5sum < /tmp/written | cut -d' ' -f1) (want $(seq 1 2000 | md5sum | cut -d' ' -f1))"
idle=$(sed -n 's/.*bench_idle=\\([0-9]*\\).*/\\1/p' /proc/cmdline)
if [ -n "$idle" ]; then
    /bin/tsc linux: idle start
    sleep "$idle"
    /bin/tsc linux: idle end
fi
# bench_procs=N: N process runs (busybox `true` started by path: a fork and an exec each, as ash runs
# an external command) between two TSC markers.
procs=$(sed -n 's/.*bench_procs=\\([0-9]*\\).*/\\1/p' /proc/cmdline)
if [ -n "$procs" ]; then
    /bin/tsc linux: procs start
    i=0
    while [ $i -lt "$procs" ]; do /bin/busybox true; i=$((i + 1)); done
    /bin/tsc linux: procs end
fi
# shell=1: an interactive shell on the console (a session with ttyS0 as its controlling terminal, for
# line editing and Ctrl-C); the guest ends when it does.
case " $(cat /proc/cmdline) " in *" shell=1 "*)
    echo "linux: shell on the console; exit ends the guest"
    PS1='linux# ' setsid cttyhack sh
esac
/bin/tsc linux: init done
poweroff -f
"""


def entry(name: str, mode: int, data: bytes = b"", ino: int = 1) -> bytes:
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08X" % v for v in (
        ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0))
    out = hdr.encode() + name_b
    out += b"\0" * ((4 - len(out) % 4) % 4)
    out += data
    out += b"\0" * ((4 - len(out) % 4) % 4)
    return out


def build_tsc() -> bytes:
    """/bin/tsc: a static x86-64 program without a C library (tests/linux/tsc.c)."""
    with tempfile.TemporaryDirectory() as tmp:
        exe = os.path.join(tmp, "tsc")
        subprocess.run(["gcc", "-static", "-nostdlib", "-ffreestanding", "-fno-pie", "-no-pie",
                        "-fno-stack-protector", "-O2", "-s", "-Wall", "-Wextra", "-Werror",
                        "-o", exe, os.path.join(HERE, "tsc.c")], check=True)
        with open(exe, "rb") as f:
            return f.read()


def main() -> int:
    busybox, out = sys.argv[1], sys.argv[2]
    with open(busybox, "rb") as f:
        bb = f.read()
    files = [("bin", 0o040755, b""), ("bin/busybox", 0o100755, bb), ("bin/tsc", 0o100755, build_tsc()),
             ("init", 0o100755, INIT.encode()),
             ("dev", 0o040755, b""), ("proc", 0o040755, b""), ("sys", 0o040755, b"")]
    blob = b"".join(entry(n, m, d, i + 1) for i, (n, m, d) in enumerate(files))
    blob += entry("TRAILER!!!", 0, b"", 0)
    blob += b"\0" * ((512 - len(blob) % 512) % 512)
    with gzip.open(out, "wb", compresslevel=9) as f:
        f.write(blob)
    return 0


if __name__ == "__main__":
    sys.exit(main())
