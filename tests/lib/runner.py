"""Emulator scenario runner shared by tests/run.py and tests/bench.py.

A Scenario says what to boot (hypervisor command line, modules), on what (QEMU BIOS, QEMU UEFI or Bochs,
CPUs, RAM) and what the serial log must and must not show. run_scenario() builds the scenario's own ISO in
build/tests/NAME/, boots it bounded by `timeout -s KILL`, and judges the serial log (build/tests/NAME/serial.log).
A scenario with a `session` also types on the serial line: the emulator's serial port is then a TCP socket
(QEMU `-chardev socket,server`, Bochs `com1: mode=socket-server`), and session(console) sends keys and waits
for lines through a Console while everything received still goes to serial.log.
Facts about the emulators on this machine: /work/shared/PLATFORM.md.
"""

import difflib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Union

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, "build")
HV_ELF = os.environ.get("HV_ELF") or os.path.join(BUILD, "hypervisor.elf")  # env: test another ELF
TESTS_OUT = os.path.join(BUILD, "tests")
OVMF = "/usr/share/ovmf/OVMF.fd"
BOCHS_BIOS = "/usr/share/bochs/BIOS-bochs-latest"
VGA_BIOS = "/usr/share/vgabios/vgabios.bin"

# The hypervisor's end-of-run line (with poweroff=1 it powers off right after it).
ALL_DONE = r"hv: all guests finished"
# Lines that fail every scenario unless it says otherwise (Scenario.forbid_default=False).
DEFAULT_FORBID = [r"(?im)^\[cpu\d+\][^\n]*\bpanic\b"]


# --- what a scenario is made of ---------------------------------------------------------------------

@dataclass
class Module:
    """One multiboot2 module: a file copied into the ISO's /guests/ and its module command line."""
    path: str           # absolute, or relative to the repository root
    args: str = ""
    name: Optional[str] = None  # file name inside the ISO (default: basename of path)

    def iso_name(self) -> str:
        return self.name or os.path.basename(self.path)


def guest(name: str, args: str = "") -> Module:
    """The guest build/guests/NAME.elf, e.g. guest("hello", "name=hello mem=64M")."""
    return Module(os.path.join("build", "guests", name + ".elf"), args)


def data(filename: str, args: str = "") -> Module:
    """A data file from tests/data/, e.g. data("blob.bin", "name=blob")."""
    return Module(os.path.join("tests", "data", filename), args)


@dataclass
class Expect:
    """A regex that must match the serial log: at least once, or exactly `count` times, or at least `min`."""
    regex: str
    count: Optional[int] = None
    min: Optional[int] = None


ExpectLike = Union[str, Expect]


@dataclass
class Scenario:
    name: str
    emulator: str = "qemu"              # "qemu" (SeaBIOS), "qemu-uefi" (OVMF) or "bochs"
    cpus: int = 1
    mem: int = 128                      # MiB of guest-physical RAM given to the emulator
    cpu_model: str = "corei7_skylake_x" # Bochs only
    qemu_cpu: str = ""                  # QEMU only: its -cpu (e.g. "max", "EPYC", "qemu64,-svm"); "" = QEMU's default
    cmdline: str = ""                   # hypervisor command line; " poweroff=1" is always appended
    modules: List[Module] = field(default_factory=list)
    timeout: float = 60.0               # seconds of wall time for the emulator
    expect: List[ExpectLike] = field(default_factory=list)
    ordered: bool = False               # plain-string expectations must appear in this order
    forbid: List[str] = field(default_factory=list)
    forbid_default: bool = True         # also forbid DEFAULT_FORBID (panic lines)
    check: Optional[Callable[[str], Optional[str]]] = None  # check(log) -> error text or None
    end: str = ALL_DONE                 # regex that ends the run (then `settle` s more, then kill)
    settle: float = 1.0
    timeout_ok: bool = False            # a timeout is fine if the expectations are met
    needs_vmx: bool = False             # QEMU: never use KVM (it would hide the missing VMX differently)
    weight: Optional[float] = None      # scheduling cost estimate (default from emulator/cpus/timeout)
    description: str = ""
    iso: str = ""                       # boot this ISO as it is (e.g. build/hypervisor.iso) instead of building one
    poweroff: bool = True               # append poweroff=1 (without it the console stays up at the end)
    session: Optional[Callable[["Console"], Optional[str]]] = None  # types on the serial line: error or None
    bare: bool = False                  # no hypervisor: GRUB boots modules[0] as a Linux kernel (`linux`, its
                                        # args), modules[1:] as its `initrd` (the bare side of a comparison)
    grub_boot: List[str] = field(default_factory=list)  # GRUB commands run just before `boot`
    bochs_options: List[str] = field(default_factory=list)  # extra bochsrc lines (e.g. "error: action=ignore")
    bochs_debugger: Optional[List[str]] = None  # Bochs debugger commands (dbg.rc); None: debugger_commands
    ept_only: str = ""                  # why the scenario is about EPT or needs it: `run.py --paging shadow` skips it
                                        # (and `run.py --model`, whose models run every guest on shadow paging)
    needs_ug: str = ""                  # why it needs unrestricted guest, which VMX has only with EPT:
                                        # `run.py --paging shadow` and `run.py --model` skip it
    not_on_model: Dict[str, str] = field(default_factory=dict)  # older Bochs VMX model ("penryn", "lynnfield")
                                        # -> why the scenario cannot run there (what skylake_x has and it lacks):
                                        # `run.py --model` skips it
    on_model: Dict[str, Dict[str, str]] = field(default_factory=dict)  # older model -> {expected line: the
                                        # line expected there instead} (a check a guest skips for a CPU
                                        # feature that model lacks): `run.py --model` swaps them
    not_on_svm: str = ""                # why it cannot run on SVM (Bochs ryzen): `run.py --backend svm` skips it,
                                        # or runs it under QEMU EPYC where the reason is a Bochs bug
    svm_twin: str = ""                  # the scenario that already runs this one on SVM (then --backend svm skips it)
    not_on_qemu_svm: str = ""           # why not under QEMU EPYC either, where Bochs ryzen's bugs send it

    def cost(self) -> float:
        if self.weight is not None:
            return self.weight
        base = {"bochs": 10.0, "qemu-uefi": 3.0}.get(self.emulator, 1.0)
        return base * max(1, self.cpus) + self.timeout / 100.0


@dataclass
class Result:
    name: str
    ok: bool
    why: str = ""
    seconds: float = 0.0
    log_path: str = ""
    log: str = ""
    timed_out: bool = False


# --- log judging -------------------------------------------------------------------------------------

# Terminal control the console sends around its tail line (console_set_tail: CR, then ESC [ K).
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def clean(raw: bytes, encoding: str = "utf-8") -> str:
    """Serial bytes as lines: terminal control sequences dropped, CR LF and lone CR as LF."""
    return ANSI.sub(b"", raw).decode(encoding, errors="replace").replace("\r\n", "\n").replace("\r", "\n")


def read_log(path: str) -> str:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return ""
    return clean(raw)


def _as_expect(e: ExpectLike) -> Expect:
    return e if isinstance(e, Expect) else Expect(e)


_judging = threading.local()


def judged_out() -> str:
    """The folder of the scenario whose check() runs in this thread (build/tests/NAME, NAME as run: with
    tests/run.py --paging shadow, NAME@shadow), for a check that reads more than the cleaned log."""
    return os.path.join(TESTS_OUT, _judging.name)


def judge(sc: Scenario, log: str) -> Optional[str]:
    """The first reason the log fails the scenario, or None."""
    forbid = list(sc.forbid) + (DEFAULT_FORBID if sc.forbid_default else [])
    for rx in forbid:
        m = re.search(rx, log, re.M)
        if m:
            return "forbidden line: %r" % _line_at(log, m.start())
    pos = 0
    for e in map(_as_expect, sc.expect):
        hits = list(re.finditer(e.regex, log, re.M))
        if e.count is not None and len(hits) != e.count:
            return "expected %d x /%s/, got %d" % (e.count, e.regex, len(hits))
        if e.min is not None and len(hits) < e.min:
            return "expected >= %d x /%s/, got %d" % (e.min, e.regex, len(hits))
        if not hits:
            return "missing /%s/%s" % (e.regex, _closest(log, e.regex))
        if sc.ordered and e.count is None and e.min is None:
            later = [h for h in hits if h.start() >= pos]
            if not later:
                return "/%s/ not after the previous expectation" % e.regex
            pos = later[0].end()
    if sc.check:
        _judging.name = sc.name
        err = sc.check(log)
        if err:
            return err
    return None


def _died_of(rc: int) -> Optional[str]:
    """The signal that ended the emulator, from its exit status through timeout(1) (128 + N) or from
    Python (-N), when it is one a program dies of by itself (QEMU 7.2's SIGSEGV under TCG, an assertion's
    SIGABRT): a failure then says so instead of only what the log lacks."""
    n = -rc if rc < 0 else rc - 128 if rc > 128 else 0
    fatal = (signal.SIGSEGV, signal.SIGABRT, signal.SIGBUS, signal.SIGILL, signal.SIGFPE)
    return signal.Signals(n).name if n in [int(f) for f in fatal] else None


def _closest(log: str, regex: str) -> str:
    """' (closest: LINE)' for the log line most like a missing expectation's regex (its metacharacters
    dropped), or '': CI shows only the runner's output, and the line that was there instead (a clock
    source's other name, a figure's other form) is what says why."""
    plain = re.sub(r"\\[dsSwW]|[\\^$()\[\]|?*+{}]", "", regex)
    near = difflib.get_close_matches(plain, log.splitlines(), n=1, cutoff=0.5)
    return " (closest: %r)" % near[0] if near else ""


def _line_at(log: str, i: int) -> str:
    s = log.rfind("\n", 0, i) + 1
    e = log.find("\n", i)
    return log[s:e if e >= 0 else len(log)]


def last_lines(log: str, n: int = 5) -> str:
    lines = [l for l in log.splitlines() if l.strip()]
    return " | ".join(lines[-n:])


# --- building the ISO --------------------------------------------------------------------------------

# What GRUB's file filters recognise and undo when a file is opened: gzip (RFC 1952: 1f 8b), xz
# (fd '7zXZ' 00) and lzop (89 'LZO' 00 0d 0a 1a 0a) (GRUB 2.06 grub-core/io/gzio.c, xzio.c, lzopio.c).
# `module`/`module2` open their file through those filters unless the line starts with --nounzip
# (GRUB 2.06 grub-core/loader/multiboot.c, grub_cmd_module, shared by multiboot and multiboot2:
# `grub_file_open (argv[0], GRUB_FILE_TYPE_MULTIBOOT_MODULE | (nounzip ? GRUB_FILE_TYPE_NO_DECOMPRESS
# : ...))`). Without it a guest's gzip initrd reaches the hypervisor inflated (the Linux initrd of the
# tests: 1 MiB of gzip, several MiB of cpio) and the guest gets other bytes than the file holds.
COMPRESSED_MAGIC = (b"\x1f\x8b", b"\xfd7zXZ\x00", b"\x89LZO\x00\x0d\x0a\x1a\x0a")


def compressed(path: str) -> bool:
    """Whether GRUB would decompress `path` as a module (see COMPRESSED_MAGIC)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return False
    return any(head.startswith(m) for m in COMPRESSED_MAGIC)


def module_line(m: Module) -> str:
    """`module2 [--nounzip] /guests/NAME ARGS`: --nounzip for a compressed file, so the guest gets its bytes."""
    src = m.path if os.path.isabs(m.path) else os.path.join(ROOT, m.path)
    return "module2 %s/guests/%s %s" % ("--nounzip " if compressed(src) else "", m.iso_name(), m.args)


def grub_cfg(sc: Scenario) -> str:
    cmd = (sc.cmdline + (" poweroff=1" if sc.poweroff else "")).strip()
    lines = ["set timeout=0", "set default=0", "",
             'menuentry "tessera %s" {' % sc.name]
    if sc.bare:
        lines.append("    linux /guests/%s %s" % (sc.modules[0].iso_name(), sc.modules[0].args))
        if sc.modules[1:]:
            lines.append("    initrd " + " ".join("/guests/" + m.iso_name() for m in sc.modules[1:]))
    else:
        lines.append("    multiboot2 /boot/hypervisor.elf %s" % cmd)
        for m in sc.modules:
            lines.append("    " + module_line(m))
    lines += ["    " + c for c in sc.grub_boot]
    lines += ["    boot", "}", ""]
    return "\n".join(l.rstrip() for l in lines)


def build_iso(sc: Scenario, out: str, hv_elf: str = HV_ELF) -> str:
    stage = os.path.join(out, "iso")
    shutil.rmtree(stage, ignore_errors=True)
    os.makedirs(os.path.join(stage, "boot", "grub"))
    os.makedirs(os.path.join(stage, "guests"))
    if not sc.bare and not os.path.exists(hv_elf):
        raise RuntimeError("%s not built" % os.path.relpath(hv_elf, ROOT))
    if not sc.bare:
        shutil.copy(hv_elf, os.path.join(stage, "boot", "hypervisor.elf"))
    for m in sc.modules:
        src = m.path if os.path.isabs(m.path) else os.path.join(ROOT, m.path)
        if not os.path.exists(src):
            raise RuntimeError("module %s not found" % os.path.relpath(src, ROOT))
        shutil.copy(src, os.path.join(stage, "guests", m.iso_name()))
    with open(os.path.join(stage, "boot", "grub", "grub.cfg"), "w") as f:
        f.write(grub_cfg(sc))
    iso = os.path.join(out, sc.name + ".iso")
    p = subprocess.run(["grub-mkrescue", "-o", iso, stage], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        with open(os.path.join(out, "grub-mkrescue.log"), "w") as f:
            f.write(p.stdout)
        raise RuntimeError("grub-mkrescue failed (see %s/grub-mkrescue.log)" % out)
    return iso


# --- emulator command lines --------------------------------------------------------------------------

def kvm_wanted() -> bool:
    """KVM only when asked (TESSERA_KVM=1) and usable: on some hosts /dev/kvm exists but a guest under it
    never reaches its first serial line (seen on the AMD development machines, where these boots hang
    under KVM and pass under TCG). Software emulation is the same everywhere."""
    return (os.environ.get("TESSERA_KVM") == "1" and os.path.exists("/dev/kvm")
            and os.access("/dev/kvm", os.R_OK | os.W_OK))


def qemu_cmd(sc: Scenario, iso: str, serial: str, port: int = 0) -> List[str]:
    """`port`: the serial line is a TCP server on 127.0.0.1:port that QEMU waits for before it starts."""
    accel = "kvm" if (kvm_wanted() and not sc.needs_vmx) else "tcg"
    line = ["-chardev", "socket,id=con,host=127.0.0.1,port=%d,server=on,wait=on" % port, "-serial", "chardev:con"] \
        if port else ["-serial", "file:" + serial]
    cmd = ["qemu-system-x86_64", "-accel", accel, "-smp", str(sc.cpus), "-m", str(sc.mem),
           "-cdrom", iso, "-boot", "d", *line, "-display", "none",
           "-monitor", "none", "-no-reboot", "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
    if sc.qemu_cpu:
        cmd += ["-cpu", sc.qemu_cpu]
    if sc.emulator == "qemu-uefi":
        cmd += ["-bios", OVMF]
    return cmd


def bochsrc(sc: Scenario, iso: str, serial: str, log: str, port: int = 0) -> str:
    """`port`: COM1 is a TCP server on localhost:port, and Bochs waits for a client before it starts
    (Bochs 2.7 reads a byte from it only when the UART's receive buffer is empty: no overruns)."""
    com1 = "com1: enabled=1, mode=socket-server, dev=localhost:%d" % port if port else \
        "com1: enabled=1, mode=file, dev=%s" % serial
    return "\n".join([
        "megs: %d" % sc.mem,
        "cpu: model=%s, count=%d, ips=100000000, reset_on_triple_fault=0" % (sc.cpu_model, sc.cpus),
        "romimage: file=%s, options=fastboot" % BOCHS_BIOS,
        "vgaromimage: file=%s" % VGA_BIOS,
        "ata0-master: type=cdrom, path=%s, status=inserted" % iso,
        "boot: cdrom",
        com1,
        "display_library: term",
        "log: %s" % log,
        "panic: action=fatal",
        "clock: sync=none, time0=local",
        # No sound: with no ALSA card the speaker's ALSA back end aborts Bochs ("buffer overflow detected").
        "speaker: enabled=0",
        "sound: driver=dummy"] + sc.bochs_options + [""])


def debugger_commands(sc: Scenario) -> List[str]:
    """dbg.rc: the scenario's own commands, or run, then print each CPU, then quit. The CPUs are printed
    only when a run is stopped at its timeout (start_emulator: the timeout's SIGINT ends the `c`): where
    a hung guest or host was, in emulator.out. A run that ends by itself (power-off) ends Bochs first."""
    if sc.bochs_debugger is not None:
        return sc.bochs_debugger
    return ["c"] + [c for n in range(max(1, sc.cpus)) for c in ("set $cpu = %d" % n, "r", "creg", "u /4")] + ["quit"]


def emulator_cmd(sc: Scenario, iso: str, out: str, serial: str, port: int = 0):
    """(argv, env) for the scenario's emulator, without the timeout wrapper; `port`: serial on TCP."""
    env = dict(os.environ)
    if sc.emulator in ("qemu", "qemu-uefi"):
        return qemu_cmd(sc, iso, serial, port), env
    if sc.emulator == "bochs":
        rc = os.path.join(out, "bochsrc")
        with open(rc, "w") as f:
            f.write(bochsrc(sc, iso, serial, os.path.join(out, "bochs.log"), port))
        dbg = os.path.join(out, "dbg.rc")
        with open(dbg, "w") as f:
            f.write("\n".join(debugger_commands(sc)) + "\n")
        env["TERM"] = "dumb"  # the term display needs a TERM; no pty needed (PLATFORM.md)
        return ["bochs", "-q", "-f", rc, "-rc", dbg], env
    raise ValueError("unknown emulator %r" % sc.emulator)


# --- Bochs's screen -----------------------------------------------------------------------------------

# Bochs 2.7 built with its debugger (Debian's) gives the term display a pseudo-terminal of its own: it
# opens /dev/ptmx, tells stderr 'Bochs connected to screen "/dev/pts/N"', and curses draws the screen by
# writing to that master. Nobody has the slave open, so what it writes piles up in the slave's input
# buffers; once they are full (some 20 KiB: tests/check_screen.py's stand-in blocks after 19,300 bytes)
# the write blocks in the kernel (n_tty_write) and the whole emulated machine stops, mid-run, for good
# (console-busy-restarts: 3 of 8 runs froze; 4 of 4 passed with the reader). Someone must read the
# slave for as long as Bochs runs.
SCREEN_RX = re.compile(rb'Bochs connected to screen "(/dev/pts/\d+)"')
SCREEN_TAIL = 64 * 1024                 # bytes of the screen kept (screen.tail beside emulator.out)


class ScreenDrain:
    """Reads and discards Bochs's screen pty for the whole run (see SCREEN_RX), keeping its last
    SCREEN_TAIL bytes. A thread waits for Bochs to name its pty in `out_path` (its stderr), opens the
    slave and reads it until Bochs closes the master (EIO) or close() is called."""

    def __init__(self, out_path: str, alive: Callable[[], bool], tail_path: Optional[str] = None):
        self.out_path = out_path
        self.alive = alive                  # False once the emulator has ended: stop waiting for its line
        self.tail_path = tail_path
        self.pty = ""
        self.bytes = 0                      # read so far
        self.tail = b""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _find_pty(self) -> str:
        while not self._stop.is_set():
            try:
                with open(self.out_path, "rb") as f:
                    m = SCREEN_RX.search(f.read(1 << 16))
                if m:
                    return m.group(1).decode()
            except OSError:
                pass
            if not self.alive():
                return ""
            self._stop.wait(0.05)
        return ""

    def _run(self):
        import select
        self.pty = self._find_pty()
        if not self.pty:
            return
        try:
            # O_NOCTTY: never our controlling terminal. Curses has put the line in cbreak, no echo.
            fd = os.open(self.pty, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        except OSError:
            return
        try:
            while not self._stop.is_set():
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:
                    continue
                try:
                    data = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                except OSError:             # EIO: the master is closed, Bochs has ended
                    break
                if not data:
                    break
                self.bytes += len(data)
                self.tail = (self.tail + data)[-SCREEN_TAIL:]
        finally:
            os.close(fd)
            if self.tail_path:
                with open(self.tail_path, "wb") as f:
                    f.write(self.tail)

    def running(self) -> bool:
        return self._thread.is_alive()

    def close(self):
        self._stop.set()
        self._thread.join(timeout=2)


def drain_screen(out_path: str, alive: Callable[[], bool], tail_path: Optional[str] = None) -> ScreenDrain:
    """Starts reading Bochs's screen pty (named in `out_path`, its stderr) until it ends: see ScreenDrain."""
    return ScreenDrain(out_path, alive, tail_path)


def start_emulator(sc: Scenario, argv: Sequence[str], env: dict, out: str):
    """Starts `argv` bounded by `timeout` (sc.timeout) in `out`, its output in out/emulator.out;
    for Bochs also the reader of its screen pty. Returns (process, ScreenDrain or None)."""
    eo = open(os.path.join(out, "emulator.out"), "wb")
    # Own session: the whole emulator process tree is killed by group id, and a Ctrl-C in the
    # terminal reaches only us (we then kill the group).
    # Bochs is interrupted (SIGINT: its debugger takes over and prints the CPUs, debugger_commands),
    # then killed if it has not quit 15 s later; QEMU is killed.
    stop = ["-s", "INT", "-k", "15"] if sc.emulator == "bochs" else ["-s", "KILL"]
    proc = subprocess.Popen(["timeout", *stop, str(int(sc.timeout)), *argv], cwd=out, env=env,
                            stdin=subprocess.DEVNULL, stdout=eo, stderr=subprocess.STDOUT,
                            start_new_session=True)
    eo.close()
    screen = None
    if sc.emulator == "bochs":
        screen = drain_screen(eo.name, lambda: proc.poll() is None, os.path.join(out, "screen.tail"))
    return proc, screen


# --- an interactive serial line -----------------------------------------------------------------------

class SessionError(Exception):
    """A session step failed: what was expected and did not come."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect(port: int, proc: subprocess.Popen, within: float = 60.0) -> socket.socket:
    """Connects to the emulator's serial server once it listens (it starts only then)."""
    end = time.monotonic() + within
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=2)
        except OSError:
            if proc.poll() is not None or time.monotonic() > end:
                raise SessionError("the emulator's serial server on port %d never answered" % port)
            time.sleep(0.1)


class Console:
    """The serial line of a running emulator. A reader thread appends every byte received to the log
    file (judged as usual afterwards) and to `text` (the same, cleaned: see clean(), decoded as Latin-1 so
    every byte is one character). expect() waits for a regex after the previous match; send() types."""

    def __init__(self, sock: socket.socket, log_path: str, deadline: float, fail: Sequence[str] = ()):
        self.sock = sock
        self.deadline = deadline             # time.monotonic() when the scenario's time is up
        self.fail = [re.compile(r, re.M) for r in fail]  # lines that end the session at once (panics)
        self.text = ""
        self.pos = 0                          # expect() searches from here
        self.sent = 0                         # bytes typed so far
        self.closed = False
        self.how_closed = ""                 # why the reader stopped: EOF (a FIN) or the OSError (a RST)
        # The guest's clock counts emulated instructions (Bochs: one tick each), not the host's time,
        # which is QEMU's (TCG's TSC follows the host's clock): a bound in emulated time holds under
        # any host load only on the first.
        self.instruction_exact = True
        self._held = b""                      # a trailing CR or an unfinished escape sequence
        self._lock = threading.Lock()
        self._log = open(log_path, "ab")
        sock.settimeout(None)
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while True:
            try:
                data = self.sock.recv(65536)
                how = "EOF"
            except OSError as e:
                # ECONNRESET: the emulator closed its end with our input unread, so its kernel sent a RST,
                # which discards whatever it had not yet sent (TCP, RFC 9293 3.10.4 ABORT): output lost.
                data, how = b"", "%s" % (e.strerror or e)
            if not data:
                self.how_closed = how
                with open(self._log.name + ".closed", "w") as f:   # beside serial.log, not judged
                    f.write("%s after %d bytes\n" % (how, self._log.tell()))
                with self._lock:                  # the held tail is final now; then `closed`, after the text
                    self.text += clean(self._held, "latin-1")
                    self._held = b""
                    self.closed = True
                return
            self._log.write(data)
            self._log.flush()
            data = self._held + data
            cut = len(data)
            if data.endswith(b"\r"):
                cut -= 1                      # CR LF must not be split
            esc = data.rfind(b"\x1b", max(0, len(data) - 16))
            if esc >= 0 and re.fullmatch(rb"\x1b(\[[0-9;?]*)?", data[esc:]):
                cut = min(cut, esc)
            self._held = data[cut:]
            with self._lock:
                self.text += clean(data[:cut], "latin-1")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self._thread.join(timeout=2)
        self._log.close()

    def send(self, data, pace: float = 0.0):
        """Types `data` (str or bytes); `pace` seconds between bytes (0: all at once)."""
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sent += len(data)
        try:
            if pace <= 0:
                self.sock.sendall(data)
                return
            for b in data:
                self.sock.sendall(bytes([b]))
                time.sleep(pace)
        except OSError as e:
            raise SessionError("sending %r: %s" % (data[:40], e))

    def tail(self, n: int = 6) -> str:
        with self._lock:
            return last_lines(self.text, n)

    def expect(self, regex: str, timeout: Optional[float] = None):
        """The first match of `regex` (re.MULTILINE) after the previous expect's match; SessionError if
        it does not come within the scenario's time (or `timeout` seconds, if given) or the line
        closes. No step has a time of its own by default: how long the emulated machine takes to get
        somewhere depends on the host's load, so the scenario's timeout is the one bound."""
        rx = re.compile(regex, re.M)
        end = self.deadline if timeout is None else min(time.monotonic() + timeout, self.deadline)
        while True:
            with self._lock:
                # `closed` is read with the text it was set after: a line that came just before the
                # end of the serial line is searched for before the end is reported.
                closed = self.closed
                m = rx.search(self.text, self.pos)
                bad = next((f.search(self.text) for f in self.fail if f.search(self.text)), None)
            if m:
                self.pos = m.end()
                return m
            if bad:
                raise SessionError("forbidden line %r waiting for /%s/" % (_line_at(self.text, bad.start()), regex))
            if closed or time.monotonic() > end:
                raise SessionError("%s waiting for /%s/; log ends: %s" % (
                    "the serial line closed (%s)" % self.how_closed if closed else "timeout", regex, self.tail()))
            time.sleep(0.05)

    def command(self, line: str, timeout: Optional[float] = None):
        """Types a monitor command and waits for the monitor to echo it as a line ("hv> LINE")."""
        self.send(line + "\r")
        return self.expect(r"^\[cpu\d+\] hv> %s$" % re.escape(line), timeout)


# --- running one scenario ----------------------------------------------------------------------------

_live = set()          # emulator processes running now (for kill_all on Ctrl-C)
_live_lock = threading.Lock()


def kill_all():
    """Kill every emulator still running (each is its own process group)."""
    with _live_lock:
        for p in list(_live):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def run_scenario(sc: Scenario, keep: bool = False, hv_elf: str = HV_ELF) -> Result:
    out = os.path.join(TESTS_OUT, sc.name)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    serial = os.path.join(out, "serial.log")
    t0 = time.monotonic()
    try:
        if sc.iso:
            iso = os.path.join(ROOT, sc.iso)
            # A given ISO must hold the ELF under test: older than it means a stale build.
            if not os.path.exists(iso) or os.path.getmtime(iso) < os.path.getmtime(hv_elf):
                raise RuntimeError("%s is missing or older than %s: run make first"
                                   % (sc.iso, os.path.relpath(hv_elf, ROOT)))
        else:
            iso = build_iso(sc, out, hv_elf)
        port = free_port() if sc.session else 0
        argv, env = emulator_cmd(sc, iso, out, serial, port)
    except (RuntimeError, OSError) as e:
        return Result(sc.name, False, str(e), time.monotonic() - t0, serial)
    open(serial, "wb").close()
    with open(os.path.join(out, "cmdline"), "w") as f:
        f.write(" ".join(argv) + "\n")
    t_boot = time.monotonic()
    proc, screen = start_emulator(sc, argv, env, out)
    with _live_lock:
        _live.add(proc)
    timed_out = False
    stop_at = None
    session_why = None
    console = None
    try:
        if sc.session:
            try:
                console = Console(connect(port, proc, sc.timeout), serial, t_boot + sc.timeout,
                                  sc.forbid + (DEFAULT_FORBID if sc.forbid_default else []))
                console.instruction_exact = sc.emulator == "bochs"
                session_why = sc.session(console)
            except SessionError as e:
                session_why = str(e)
            if session_why:
                session_why = "session: " + session_why
        end_rx = re.compile(sc.end, re.M) if sc.end else None
        forbid = [re.compile(r, re.M) for r in sc.forbid + (DEFAULT_FORBID if sc.forbid_default else [])]
        while session_why is None and proc.poll() is None:
            time.sleep(0.2)
            now = time.monotonic()
            if stop_at is None:
                log = read_log(serial)
                if (end_rx and end_rx.search(log)) or any(r.search(log) for r in forbid):
                    stop_at = now + sc.settle
            elif now >= stop_at:
                break
            if now - t_boot > sc.timeout + 20:  # timeout's signals should have ended it already
                timed_out = True
                break
        rc = proc.poll()
        if session_why is None and (rc in (124, 137, -9) or (rc is None and stop_at is None)):
            timed_out = True
    finally:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        if screen:
            screen.close()
        if console:
            console.close()
        with _live_lock:
            _live.discard(proc)
    secs = time.monotonic() - t0
    log = read_log(serial)
    why = session_why or judge(sc, log)
    if why is None and timed_out and not sc.timeout_ok:
        why = "timeout after %ds (end marker /%s/ not seen)" % (sc.timeout, sc.end)
    if why is not None and timed_out and "timeout" not in why:
        why = "timeout after %ds: %s" % (sc.timeout, why)
    if why is not None and timed_out and sc.emulator == "bochs" and sc.bochs_debugger is None:
        why += " (the CPUs at the timeout: emulator.out)"
    if why is not None and not timed_out and rc is not None and _died_of(rc):
        why = "%s died of %s (exit status %d): %s" % (sc.emulator, _died_of(rc), rc, why)
    if why is not None:
        tail = last_lines(log)
        why += "; log ends: " + (tail if tail else "(empty)")
    elif not keep and not sc.iso:          # never the given ISO: only one this run built
        shutil.rmtree(os.path.join(out, "iso"), ignore_errors=True)
        try:
            os.remove(iso)
        except OSError:
            pass
    return Result(sc.name, why is None, why or "", secs, serial, log, timed_out)


def bridge(port: int, log_path: str) -> int:
    """`make run` under Bochs: this terminal as the serial line of an emulator whose COM1 is a TCP
    server on `port` (it waits for us before it starts). Keys go out as typed (raw: no echo, no line
    editing, CR stays CR), what comes back is shown and appended to `log_path`. Ctrl-C still interrupts
    (ISIG stays on), as with QEMU's -serial stdio; the terminal's settings are restored on every way out."""
    import select
    import termios
    end = time.monotonic() + 60
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            break
        except OSError:
            if time.monotonic() > end:
                print("run: the emulator's serial port never answered", file=sys.stderr)
                return 1
            time.sleep(0.2)
    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd) if os.isatty(fd) else None
    if saved:
        t = termios.tcgetattr(fd)
        t[0] &= ~(termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP | termios.INLCR |
                  termios.IGNCR | termios.ICRNL | termios.IXON)
        t[3] &= ~(termios.ECHO | termios.ECHONL | termios.ICANON | termios.IEXTEN)
        t[6][termios.VMIN], t[6][termios.VTIME] = 1, 0
        termios.tcsetattr(fd, termios.TCSAFLUSH, t)
    out = sys.stdout.buffer
    try:
        with open(log_path, "ab") as log:
            while True:
                ready, _, _ = select.select([sock] + ([fd] if fd >= 0 else []), [], [])
                if sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return 0
                    out.write(data)
                    out.flush()
                    log.write(data)
                    log.flush()
                if fd in ready:
                    data = os.read(fd, 1024)
                    if not data:
                        fd = -1                  # stdin closed: keep showing the output
                        continue
                    sock.sendall(data)
    except KeyboardInterrupt:
        return 130
    except OSError:
        return 0
    finally:
        if saved:
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSAFLUSH, saved)


if __name__ == "__main__":
    # `python3 tests/lib/runner.py bochsrc ISO DIR MEGS CPUS [PORT]`: the same Bochs configuration the
    # tests use, for scripts/run.sh (one place to keep what Bochs needs on these machines); with PORT,
    # COM1 is a TCP server there. `runner.py free-port`: a free TCP port on 127.0.0.1. `drain-screen`:
    # below.
    if len(sys.argv) in (6, 7) and sys.argv[1] == "bochsrc":
        _, _, iso_path, out_dir, megs, cpus = sys.argv[:6]
        sys.stdout.write(bochsrc(Scenario("run", emulator="bochs", cpus=int(cpus), mem=int(megs)), iso_path,
                                 os.path.join(out_dir, "serial.log"), os.path.join(out_dir, "bochs.log"),
                                 int(sys.argv[6]) if len(sys.argv) == 7 else 0))
    elif sys.argv[1:] == ["free-port"]:
        print(free_port())
    elif len(sys.argv) == 4 and sys.argv[1] == "bridge":
        sys.exit(bridge(int(sys.argv[2]), sys.argv[3]))
    elif len(sys.argv) in (4, 5) and sys.argv[1] == "drain-screen":
        # `runner.py drain-screen BOCHS_OUT PID [TAIL]`: reads the screen pty of the Bochs whose stderr is
        # BOCHS_OUT until it ends (PID gone, or the pty closed), its last bytes to TAIL (ScreenDrain).
        pid = int(sys.argv[3])

        def alive() -> bool:
            try:
                os.kill(pid, 0)
                return True
            except ProcessLookupError:
                return False
        d = drain_screen(sys.argv[2], alive, sys.argv[4] if len(sys.argv) == 5 else None)
        while d.running() and alive():
            time.sleep(0.5)
        d.close()
    else:
        sys.exit("usage: runner.py bochsrc ISO DIR MEGS CPUS [PORT] | free-port | bridge PORT LOG"
                 " | drain-screen BOCHS_OUT PID [TAIL]")
