#!/usr/bin/env python3
"""Builds the seed corpora of the libFuzzer harnesses (tests/fuzz/README.md) from what the project
already has: the guest images (build/guests/*.elf), tests/data/, the byte arrays and strings of the unit
tests (tests/unit/test_*.c), the command lines of iso/grub.cfg and tests/scenarios.py, plus small
hand-made inputs in each harness's format. One directory per harness; files named by content hash.

    tests/fuzz/seeds.py OUT_DIR
"""

import glob
import hashlib
import os
import re
import shutil
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def put(out, harness, data: bytes):
    d = os.path.join(out, harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()[:16]), "wb") as f:
        f.write(data)


def read(path):
    with open(os.path.join(ROOT, path), errors="replace") as f:
        return f.read()


# --- command lines ---------------------------------------------------------------------------------

def cmdlines():
    lines = set()
    for m in re.finditer(r"^\s*(?:multiboot2|module2)\s+\S+\s*(.*)$", read("iso/grub.cfg"), re.M):
        lines.add(m.group(1))
    sc = read("tests/scenarios.py")
    for m in re.finditer(r'(?:guest|data)\(\s*"[^"]*",\s*"((?:[^"\\]|\\.)*)"', sc):
        lines.add(m.group(1).replace('\\"', '"'))
    for m in re.finditer(r'cmdline\s*=\s*"((?:[^"\\]|\\.)*)"', sc):
        lines.add(m.group(1).replace('\\"', '"'))
    # The unit tests' lines: parse("...") and every string literal handed to cmdline_parse.
    for m in re.finditer(r'(?:parse|cmdline_parse)\(\s*"((?:[^"\\]|\\.)*)"', read("tests/unit/test_cmdline.c")):
        lines.add(bytes(m.group(1), "utf-8").decode("unicode_escape"))
    lines.update([
        "console=com1,115200 poweroff=1 loglevel=3 quantum=500 alloc=lazy chunk=4K selftest=ud",
        "/guests/hello.elf name=hello mem=16M cpu=0,1 vcpus=2 alloc=demand chunk=2M seed=7 x=\"a b\"",
        "name=\"q\" mem=0x1000000 vcpus=0x10 poweroff=yes poweroff=off alloc=eager",
        "mem=18446744073709551615 mem=16G mem=17179869184G quantum=0x",
        "name= mem= cpu= \"unbalanced key=\"x",
    ])
    return sorted(lines)


# --- Multiboot2 information blocks (core/bootinfo.c) ------------------------------------------------

def tag(t, payload=b""):
    size = 8 + len(payload)
    return struct.pack("<II", t, size) + payload + b"\0" * ((-size) % 8)


def block(tags):
    body = b"".join(tags) + tag(0)
    return struct.pack("<II", 8 + len(body), 0) + body


def s(text):
    return text.encode() + b"\0"


def bios_mmap():
    ents = [(0, 0x9fc00, 1), (0x9fc00, 0x400, 2), (0xf0000, 0x10000, 2), (0x100000, 0x7ee0000, 1),
            (0x7fe0000, 0x20000, 2), (0xfffc0000, 0x40000, 2), (0x100000000, 0x40000000, 1), (0xfee00000, 0x1000, 4)]
    return tag(6, struct.pack("<II", 24, 0) + b"".join(struct.pack("<QQII", b, l, t, 0) for b, l, t in ents))


def info_blocks():
    rsdp1 = b"RSD PTR " + bytes([0x5a]) + b"BOCHS " + bytes([0]) + struct.pack("<I", 0xe0000)
    rsdp2 = rsdp1 + struct.pack("<IQB", 36, 0xe1000, 0) + b"\0\0\0"
    mods = [tag(3, struct.pack("<II", 0x200000 + i * 0x10000, 0x20f000 + i * 0x10000) + s(line))
            for i, line in enumerate(["/guests/hello.elf name=hello mem=16M", "/guests/memcheck.elf name=mc mem=64M", ""])]
    fb = tag(8, struct.pack("<QIIIBBH", 0xb8000, 160, 80, 25, 16, 2, 0))
    grub = [tag(21, struct.pack("<I", 0x200000)), tag(1, s("console=com1,115200 poweroff=1")),
            tag(2, s("GRUB 2.06-13+deb12u2")), tag(10, struct.pack("<HHHH", 0x30, 0x40, 0, 0) + b"\0" * 16)] + mods + \
           [tag(4, struct.pack("<II", 639, 130048)), tag(5, struct.pack("<III", 0x80, 0xffffffff, 0xffffffff)),
            bios_mmap(), fb, tag(14, rsdp1), tag(9, b"\0" * 20)]
    yield block(grub)
    efi_mmap = tag(17, struct.pack("<II", 48, 1) + b"".join(struct.pack("<IIQQQQ", 7, 0, i << 20, 0, 256, 0xf) + b"\0" * 8
                                                           for i in range(4)))
    uefi = [tag(1, s("")), tag(2, s("GRUB 2.06")), tag(12, struct.pack("<Q", 0x7fbee018)), tag(20, struct.pack("<Q", 0x7e000000)),
            bios_mmap(), efi_mmap, tag(18), tag(15, rsdp2), tag(14, rsdp1)] + mods[:1] + \
           [tag(8, struct.pack("<QIIIBBH", 0x80000000, 4096, 1024, 768, 32, 1, 0) + bytes([16, 8, 8, 8, 0, 8, 0, 0]))]
    yield block(uefi)
    yield block([tag(11, struct.pack("<I", 0x7fbee018)), tag(19, struct.pack("<I", 0x7e000000))])
    yield block([])
    yield block(mods * 12)                                                # more modules than kept
    yield block([tag(6, struct.pack("<II", 32, 0) + b"".join(struct.pack("<QQII", i << 20, 1 << 20, 1, 0) + b"\xee" * 8
                                                                for i in range(140)))])  # more regions than kept
    yield block([tag(1, b"no terminator")])
    yield struct.pack("<II", 16, 0) + struct.pack("<II", 1, 4)           # a tag smaller than its header
    yield struct.pack("<II", 24, 0) + struct.pack("<II", 1, 100) + b"x\0\0\0\0\0\0\0"  # a tag past the end


# --- guest images (loader/) -------------------------------------------------------------------------

def mb2_header(tags, arch=0):
    body = b"".join(struct.pack("<HHI", t, fl, 8 + len(p)) + p + b"\0" * ((-(8 + len(p))) % 8) for t, fl, p in tags)
    body += struct.pack("<HHI", 0, 0, 8)
    length = 16 + len(body)
    return struct.pack("<IIII", 0xe85250d6, arch, length, (-(0xe85250d6 + arch + length)) & 0xffffffff) + body


def elf(elf64, segs, entry, mb2, phdr_extra=()):
    """An ET_EXEC image: header, program headers, the Multiboot2 header at 0x100, code after it.
    segs: (type, offset, vaddr, paddr, filesz, memsz)."""
    segs = list(segs) + list(phdr_extra)
    ehsize, phsize = (64, 56) if elf64 else (52, 32)
    ident = b"\x7fELF" + bytes([2 if elf64 else 1, 1, 1]) + b"\0" * 9
    if elf64:
        eh = ident + struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, entry, ehsize, 0, 0, ehsize, phsize, len(segs), 0, 0, 0)
        ph = b"".join(struct.pack("<IIQQQQQQ", t, 7, o, v, p, fs, ms, 0x1000) for t, o, v, p, fs, ms in segs)
    else:
        eh = ident + struct.pack("<HHIIIIIHHHHHH", 2, 3, 1, entry, ehsize, 0, 0, ehsize, phsize, len(segs), 0, 0, 0)
        ph = b"".join(struct.pack("<IIIIIIII", t, o, v, p, fs, ms, 7, 0x1000) for t, o, v, p, fs, ms in segs)
    img = bytearray(eh + ph)
    img += b"\0" * (0x100 - len(img))
    img += mb2
    img += b"\xf4" * (0x200 - len(img) % 0x200)   # hlt: "code"
    return bytes(img)


def images():
    base = 0x100000
    for elf64 in (False, True):
        plain = mb2_header([])
        size = len(elf(elf64, [(1, 0, base, base, 0, 0)], base + 0x180, plain))
        one = [(1, 0, base, base, size, size + 0x3000)]
        yield elf(elf64, one, base + 0x180, plain)
        # Virtual and physical addresses apart (a higher-half kernel): e_entry is virtual.
        yield elf(elf64, [(1, 0, 0xc0100000, base, size, size)], 0xc0100180, plain)
        # The entry address tag, an information request, module alignment, an optional unknown tag.
        yield elf(elf64, one, 0, mb2_header([(3, 0, struct.pack("<I", base + 0x1f0)),
                                             (1, 0, struct.pack("<IIII", 1, 2, 4, 6)),
                                             (1, 1, struct.pack("<I", 8)), (6, 0, b""), (5, 1, struct.pack("<III", 0, 0, 32))]))
        # Two segments and a non-load header; a required tag we do not support; a wrong architecture.
        yield elf(elf64, [(1, 0, base, base, 0x100, 0x100), (1, 0x100, base + 0x2000, base + 0x2000, size - 0x100, 0x4000)],
                  base + 0x2080, plain, phdr_extra=[(4, 0, 0, 0, 0, 0), (0x6474e551, 0, 0, 0, 0, 0)])
        yield elf(elf64, one, base + 0x180, mb2_header([(10, 0, struct.pack("<IIII", 0x100000, 0x1000000, 0x1000, 0))]))
        yield elf(elf64, one, base + 0x180, mb2_header([], arch=4))


# --- MMIO instructions (vcpu/decode.c) ---------------------------------------------------------------

def instructions():
    text = read("tests/unit/test_decode.c")
    seen = set()
    for m in re.finditer(r"\{\s*MODE_\w+\s*,\s*\"[^\"]*\"\s*,\s*\d+\s*,\s*\{([^}]*)\}", text):
        b = bytes(int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]+)", m.group(1)))
        if b and b not in seen:
            seen.add(b)
            yield b
    # Byte arrays elsewhere in the file: { 0x.., ... } initializers of uint8_t.
    for m in re.finditer(r"uint8_t\s+\w+\[\w*\]\s*=\s*\{([^}]*)\}", text):
        b = bytes(int(x, 16) & 0xff for x in re.findall(r"0x([0-9a-fA-F]+)", m.group(1)))
        if b and b not in seen:
            seen.add(b)
            yield b


# --- guest page tables (shadow/gpt.c): 96-byte header, then 16 pages of guest memory -----------------

P, W, US, PS, NX = 1, 2, 4, 0x80, 1 << 63
PG, WP, PSE, PAE, LMA, NXE = 1 << 31, 1 << 16, 1 << 4, 1 << 5, 1 << 10, 1 << 11


def gpt_input(access, cr0, cr3, cr4, efer, gva, entries, pdpte=(0, 0, 0, 0), esize=8, read_len=0, phys_bits=36, cpl=0):
    hdr = struct.pack("<BBBBHH", access, phys_bits, cpl, 0, read_len, 0)
    hdr += struct.pack("<QQQQ", cr0, cr3, cr4, efer) + struct.pack("<4Q", *pdpte) + struct.pack("<Q", gva) + b"\0" * 16
    mem = bytearray(16 * 4096)
    for addr, val in entries:
        mem[addr:addr + esize] = val.to_bytes(esize, "little")
    return hdr + bytes(mem).rstrip(b"\0")


def page_tables():
    gva = 0x00403123
    # 32-bit paging: a 4 KiB page, a 4 MiB page (PSE, with PSE-36 bits).
    yield gpt_input(0, PG | WP, 0x1000, 0, 0, gva, [(0x1000 + 1 * 4, 0x2000 | P | W | US), (0x2000 + 3 * 4, 0x5000 | P | W | US)], esize=4)
    yield gpt_input(1, PG | WP, 0x1000, PSE, 0, gva, [(0x1000 + 1 * 4, 0x00400000 | (3 << 13) | P | PS)], esize=4)
    # PAE: PDPTEs from the "VMCS", a 2 MiB page and a 4 KiB page with XD.
    yield gpt_input(4, PG, 0x1000, PAE, NXE, gva, [(0x2000 + 2 * 8, 0x200000 | P | W | PS)], pdpte=(0x2000 | P, 0, 0, 0))
    yield gpt_input(2, PG, 0x1000, PAE, NXE, gva, [(0x2000 + 2 * 8, 0x3000 | P | W | US), (0x3000 + 3 * 8, 0x7000 | P | NX)],
                    pdpte=(0x2000 | P, 0, 0, 0))
    # 4-level: 4 KiB, 2 MiB and 1 GiB pages; a non-canonical address; LA57.
    t4 = [(0x1000, 0x2000 | P | W | US), (0x2000, 0x3000 | P | W | US), (0x3000 + 2 * 8, 0x4000 | P | W | US),
          (0x4000 + 3 * 8, 0x9000 | P | W | US)]
    yield gpt_input(0, PG | WP, 0x1000, PAE, LMA | NXE, gva, t4)
    yield gpt_input(8, PG | WP, 0x1000, PAE, LMA | NXE, gva, t4, read_len=4096)
    yield gpt_input(8 | 4, PG, 0x1000, PAE, LMA, 0x403ffa, t4 + [(0x4000 + 4 * 8, 0xa000 | P)], read_len=15)
    yield gpt_input(0, PG, 0x1000, PAE, LMA, gva, [(0x1000, 0x2000 | P | W), (0x2000, 0x3000 | P | W), (0x3000 + 2 * 8, 0x400000 | P | PS)])
    yield gpt_input(3, PG, 0x1000, PAE, LMA, 0x40003123, [(0x1000, 0x2000 | P | W | US), (0x2000 + 8, 0x40000000 | P | W | PS)])
    yield gpt_input(0, PG, 0x1000, PAE, LMA, 0x0000800000000000, t4)
    yield gpt_input(0, PG, 0x1000, PAE | (1 << 12), LMA, gva, t4)
    yield gpt_input(0, 0, 0, 0, 0, gva, [])
    # gpt_translate: SMEP/SMAP (CR4 bits 20, 21), implicit, A/D set, AC
    yield gpt_input(0x10 | 0x40 | 1, PG | WP, 0x1000, PAE | (3 << 20), LMA | NXE, gva, t4)
    yield gpt_input(0x10 | 0x20 | 0x80, PG, 0x1000, PAE | (1 << 21), LMA | NXE, gva, t4, cpl=3)
    yield gpt_input(0x10 | 0x40 | 4, PG | WP, 0x1000, PSE | (1 << 20), 0, gva, [(0x1000 + 1 * 4, 0x00400000 | P | W | US | PS)], esize=4)


# --- local APIC op streams (vdev/lapic.c): 12-byte (op, size, offset/MSR, value) records -----------

def op(kind, apic=0, size=2, sel=0, val=0):
    return struct.pack("<BBHQ", (apic << 4) | kind, size, sel, val)


def mw(off, val, apic=0):
    return op(1, apic, 2, off, val)


def mr(off, apic=0, size=2):
    return op(0, apic, size, off)


def msr_x2(off):
    return (off >> 4) & 0xff       # selector of x2APIC MSR 0x800 + off/16


def lapic_streams():
    en = mw(0xf0, 0x1ff)
    yield en + mw(0x320, 0x40) + mw(0x3e0, 0xb) + mw(0x380, 1000) + op(9, val=2000) + op(8) + op(7) + mw(0xb0, 0) + mr(0x390)
    yield en + mw(0x320, 0x20040) + mw(0x3e0, 0x3) + mw(0x380, 10) + op(9, val=1 << 30) + op(8) + op(7) + op(7) + mw(0xb0, 0)
    yield en + mw(0x320, 0x40040) + op(3, sel=0xc000, val=5000) + op(15) + op(7) + op(2, sel=0xc000)
    yield (en + mw(0xf0, 0x1ff, apic=1) + mw(0x310, 1 << 24) + mw(0x300, 0x4041) + op(7, apic=1) +
           mw(0x300, 0xc4050) + mw(0x300, 0x500) + mw(0x300, 0x600 | 0x9a) + mw(0x300, 0x400) + op(12, apic=1))
    yield en + mw(0xe0, 0x0fffffff) + mw(0xd0, 0x01000000) + mw(0x310, 0x03000000) + mw(0x300, 0x0941) + mw(0x300, 0x8141)
    x2 = op(3, sel=0xa000, val=0xfee00000 | (1 << 11) | (1 << 10))
    yield (x2 + op(3, sel=msr_x2(0xf0), val=0x1ff) + op(3, sel=msr_x2(0x3f0), val=0x50) + op(7) +
           op(3, sel=msr_x2(0x300), val=(2 << 32) | 0x60) + op(2, sel=msr_x2(0x30)) + op(2, sel=msr_x2(0xd0)) +
           op(3, sel=msr_x2(0xb0), val=0) + op(3, sel=msr_x2(0x280), val=0) + op(2, sel=msr_x2(0x280)))
    yield en + op(6, val=0x130) + op(6, val=0x31) + op(6, val=5) + op(4, val=2) + op(7) + op(5) + mw(0x80, 0x20) + op(7) + mw(0xb0, 0)
    yield en + mw(0x370, 0x33) + mw(0x300, 0x3) + mr(0x280) + mw(0x280, 0) + mr(0x280) + mr(0x2f0) + op(10) + mr(0xf0)
    yield op(3, sel=0xa000, val=0) + op(3, sel=0xa000, val=0xfee00000 | (1 << 11)) + op(3, sel=0xa000, val=0x12345000 | (1 << 11)) + op(13)
    yield b"".join(mr(off, size=s) for off in range(0, 0x400, 0x10) for s in (0, 2))


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    out = sys.argv[1]
    shutil.rmtree(out, ignore_errors=True)
    counts = {}

    for line in cmdlines():
        put(out, "fuzz_cmdline", line.encode())
    for b in info_blocks():
        put(out, "fuzz_bootinfo", b)
    # Loader input: IMAGE | CMDLINE | len(CMDLINE) (fuzz_loader.c). The module lines go with the images.
    args = [l for l in cmdlines() if len(l) < 256][:8] or [""]
    files = sorted(glob.glob(os.path.join(ROOT, "build", "guests", "*.elf"))) + \
        sorted(p for p in glob.glob(os.path.join(ROOT, "tests", "data", "*")) if not p.endswith(".md"))
    blobs = [open(p, "rb").read() for p in files] + list(images())
    for i, b in enumerate(blobs):
        a = args[i % len(args)].encode()[:255]
        put(out, "fuzz_loader", b + b"\0")
        put(out, "fuzz_loader", b + a + bytes([len(a)]))
    # The unit-test bootinfo blocks double as (non-ELF) images.
    for b in info_blocks():
        put(out, "fuzz_loader", b + b"\0")
    for b in instructions():
        put(out, "fuzz_decode", b)
    for b in page_tables():
        put(out, "fuzz_gpt", b)
    for b in lapic_streams():
        put(out, "fuzz_lapic", b)
    for h in sorted(os.listdir(out)):
        counts[h] = len(os.listdir(os.path.join(out, h)))
    print("seeds: " + ", ".join("%s %d" % kv for kv in sorted(counts.items())))
    if not glob.glob(os.path.join(ROOT, "build", "guests", "*.elf")):
        print("seeds: warning: no build/guests/*.elf (run make first): the loader seeds are synthetic only")
    return 0


if __name__ == "__main__":
    sys.exit(main())
