"""Synthetic Linux bzImages for the loader scenarios: a valid one and copies with one thing damaged each.

The image is what Documentation/arch/x86/boot.rst describes, as small as it can be: a boot sector
and one setup sector (setup_sects = 1) holding the setup header at 0x1f1, then the protected-mode
kernel, which is tests/data/bzstub.asm assembled by nasm (it checks its boot_params and prints a line).
No real-mode code: tessera enters at the 32-bit entry (boot.rst, "32-bit Boot Protocol").

    python3 tests/lib/bzimage.py DIR     writes DIR/NAME.bz for every entry of DAMAGE (and good.bz)
"""

import os
import struct
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUB = os.path.join(ROOT, "tests", "data", "bzstub.asm")

# Setup header offsets (boot.rst, "The Real-Mode Kernel Header"; loader/linux.h has the same names).
SETUP_SECTS, SYSSIZE, BOOT_FLAG, JUMP, HEADER, VERSION = 0x1f1, 0x1f4, 0x1fe, 0x200, 0x202, 0x206
LOADFLAGS, INITRD_ADDR_MAX, KERNEL_ALIGNMENT, RELOCATABLE = 0x211, 0x22c, 0x230, 0x234
XLOADFLAGS, CMDLINE_SIZE, PREF_ADDRESS, INIT_SIZE = 0x236, 0x238, 0x258, 0x260
HDR_END_2_12 = 0x264          # protocol 2.10+ headers reach init_size (0x260, 4 bytes)
LOAD_ADDR = 0x100000          # boot.rst: a bzImage's protected-mode kernel loads at 1 MiB
INIT_SIZE_GOOD = 0x10000      # memory the "kernel" needs from where it runs


def stub() -> bytes:
    """The protected-mode code, assembled (nasm -f bin) from tests/data/bzstub.asm."""
    out = subprocess.run(["nasm", "-f", "bin", "-o", "/dev/stdout", STUB], check=True,
                         stdout=subprocess.PIPE).stdout
    return out + b"\0" * (-len(out) % 16)      # syssize counts 16-byte paragraphs


def good(pm: bytes) -> bytearray:
    """A valid bzImage, protocol 2.12, not relocatable, running at 1 MiB, without XLF_KERNEL_64 (tessera
    takes the 32-bit entry, which every bzImage has)."""
    f = bytearray(1024)                         # boot sector + 1 setup sector
    f[SETUP_SECTS] = 1
    struct.pack_into("<I", f, SYSSIZE, len(pm) // 16)
    struct.pack_into("<H", f, BOOT_FLAG, 0xAA55)
    f[JUMP], f[JUMP + 1] = 0xEB, HDR_END_2_12 - HEADER   # short jump past the header: its length
    f[HEADER:HEADER + 4] = b"HdrS"
    struct.pack_into("<H", f, VERSION, 0x020C)
    f[LOADFLAGS] = 0x01                         # LOADED_HIGH: a bzImage
    struct.pack_into("<I", f, INITRD_ADDR_MAX, 0x37FFFFFF)
    struct.pack_into("<I", f, KERNEL_ALIGNMENT, 0x200000)
    f[RELOCATABLE] = 0
    struct.pack_into("<H", f, XLOADFLAGS, 0)
    struct.pack_into("<I", f, CMDLINE_SIZE, 2047)
    struct.pack_into("<Q", f, PREF_ADDRESS, LOAD_ADDR)
    struct.pack_into("<I", f, INIT_SIZE, INIT_SIZE_GOOD)
    return f + pm


def _set(fmt: str, off: int, value: int):
    def damage(f: bytearray) -> bytearray:
        struct.pack_into(fmt, f, off, value)
        return f
    return damage


def _cut(n: int):
    return lambda f: f[:n]


def _both(*fns):
    def damage(f: bytearray) -> bytearray:
        for fn in fns:
            f = fn(f)
        return f
    return damage


# name: (what is damaged, how). The reason each must be refused with is asserted by the scenario.
DAMAGE = {
    "bootflag": ("boot_flag 0 instead of 0xAA55", _set("<H", BOOT_FLAG, 0)),
    "proto202": ("protocol 2.02 (no initrd_addr_max: older than GRUB's `linux` takes)", _set("<H", VERSION, 0x0202)),
    "jump": ("jump at 0x200 says the header ends at 0x212", _set("<B", JUMP + 1, 0x10)),
    "zimage": ("loadflags LOADED_HIGH clear: a zImage", _set("<B", LOADFLAGS, 0)),
    "setupsects": ("setup_sects 200: setup code past the end of the file", _set("<B", SETUP_SECTS, 200)),
    "syssize0": ("syssize 0", _set("<I", SYSSIZE, 0)),
    "truncated": ("file cut 100 bytes into the protected-mode kernel", _cut(1024 + 100)),
    "hdrcut": ("file cut at 0x210, inside the setup header", _cut(0x210)),
    "align": ("relocatable with kernel_alignment 0x3000", _both(_set("<B", RELOCATABLE, 1),
                                                                 _set("<I", KERNEL_ALIGNMENT, 0x3000))),
    "low": ("not relocatable, pref_address 0x10000", _set("<Q", PREF_ADDRESS, 0x10000)),
    "initsize": ("init_size 256 MiB", _set("<I", INIT_SIZE, 0x10000000)),
    "cmdline4": ("cmdline_size 4", _set("<I", CMDLINE_SIZE, 4)),
    "initrdmax": ("initrd_addr_max 0x10ffff: no room for an initrd above the kernel",
                  _set("<I", INITRD_ADDR_MAX, 0x10FFFF)),
}


def _short15(f: bytearray) -> bytearray:
    """One byte more of kernel and syssize one paragraph more: the file ends 15 bytes before
    syssize * 16, as real bzImages can (syssize rounds up); GRUB and QEMU load what the file has."""
    struct.pack_into("<I", f, SYSSIZE, struct.unpack_from("<I", f, SYSSIZE)[0] + 1)
    return f + b"\0"


# Images that differ from good.bz in a way every reference loader accepts: each must boot like it.
ACCEPTED = {
    "short15": ("the file ends 15 bytes before syssize * 16", _short15),
    "proto203": ("protocol 2.03, its header ending after initrd_addr_max (0x230)",
                 _both(_set("<H", VERSION, 0x0203), _set("<B", JUMP + 1, 0x230 - HEADER))),
}


def write_all(out_dir: str) -> dict:
    """Writes good.bz and NAME.bz for each damage and each accepted variant into out_dir (only when
    changed); {name: path}."""
    os.makedirs(out_dir, exist_ok=True)
    pm = stub()
    images = {"good": bytes(good(pm))}
    for name, (_, fn) in list(DAMAGE.items()) + list(ACCEPTED.items()):
        images[name] = bytes(fn(good(pm)))
    paths = {}
    for name, data in images.items():
        path = os.path.join(out_dir, name + ".bz")
        try:
            with open(path, "rb") as f:
                same = f.read() == data
        except FileNotFoundError:
            same = False
        if not same:
            with open(path, "wb") as f:
                f.write(data)
        paths[name] = path
    return paths


if __name__ == "__main__":
    for n, p in sorted(write_all(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build", "bzimage")).items()):
        print(n, os.path.getsize(p), p)
