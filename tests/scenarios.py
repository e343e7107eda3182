"""The emulator scenarios `make test` runs (tests/run.py). Runner and field meanings: tests/lib/runner.py.

Each entry of SCENARIOS is a Scenario:
    Scenario(name, emulator="qemu"|"qemu-uefi"|"bochs", cpus=, mem= (MiB), cpu_model= (Bochs),
             cmdline= (hypervisor; poweroff=1 is appended), modules=[guest("NAME", "ARGS"), data("FILE", "ARGS")],
             timeout= (s), expect=[regex or Expect(regex, count=N | min=N)], ordered=True|False,
             forbid=[regex], check=fn(log) -> error or None, end= (regex ending the run, default
             "hv: all guests finished"), timeout_ok=)

Regexes are matched against the whole serial log with re.MULTILINE. Lines look like `[cpu0] hv: ready`
(hypervisor) and `[cpu0] [NAME] text` (guest NAME's console: use GUEST_SAYS). A line matching
`[cpuN] ... panic` fails any scenario.

Adding a VMX scenario is one short entry in SCENARIOS, e.g.:

    bochs_vmx("guest-hello", modules=[guest("hello", "name=hello mem=16M")], ordered=True,
              expect=[GUEST_STARTED("hello"), GUEST_SAYS("hello", "hello: Hello from a guest"),
                      GUEST_EXITED("hello", 0), ALL_DONE]),

Run one with `python3 tests/run.py -k guest-hello`; its files are in build/tests/guest-hello/.
"""

import gzip
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.runner import ALL_DONE, TESTS_OUT, Expect, Module, Scenario, data, guest, judged_out  # noqa: E402,F401

# --- contract lines (see the hypervisor's console contract) --------------------------------------------
READY = r"^\[cpu\d+\] hv: ready$"
MEMORY = r"^\[cpu\d+\] hv: memory usable (\d+) MiB, free (\d+) MiB$"
NO_VIRT = r"^\[cpu\d+\] hv: no virtualization: VMX: .+; SVM: .+$"


def CPUS_ONLINE(n: int) -> str:
    return r"^\[cpu\d+\] hv: cpus online %d/%d$" % (n, n)


def GUEST_STARTED(name: str) -> str:
    return r"^\[cpu\d+\] hv: guest %s started: " % re.escape(name)


def GUEST_EXITED(name: str, code: int) -> str:
    return r"^\[cpu\d+\] hv: guest %s exited code=%d$" % (re.escape(name), code)


def GUEST_SAYS(name: str, text_regex: str) -> str:
    """A line of guest NAME's console (text_regex is a regex for the text after `[NAME] `)."""
    return r"^(?:\[cpu\d+\] )?\[%s\] %s" % (re.escape(name), text_regex)


def SPEC_LINE(on: str, not_needed: str, open_: "str | None", guests: str) -> str:
    """The informative `hv: spec:` line (arch/x86/spec.c, spec_describe), every group exactly."""
    return r"^\[cpu0\] hv: spec: on: %s; not needed: %s; %sguests get: %s$" % (
        re.escape(on), re.escape(not_needed), "OPEN: %s; " % re.escape(open_) if open_ else "", re.escape(guests))


def GUEST_STOPPED(name: str, reason: str = r".+") -> str:
    return r"^\[cpu\d+\] hv: guest %s stopped: %s$" % (re.escape(name), reason)


# --- checks on figures in the log ----------------------------------------------------------------------

def memory_within(ram_mib: int):
    """check(): `hv: memory usable X MiB, free Y MiB` with 0.85*RAM - 16 < X <= RAM and Y < X."""
    def check(log: str):
        m = re.search(MEMORY, log, re.M)
        if not m:
            return "no memory line"
        usable, free = int(m.group(1)), int(m.group(2))
        if not (0.85 * ram_mib - 16 < usable <= ram_mib):
            return "usable %d MiB not consistent with %d MiB of RAM" % (usable, ram_mib)
        if not free < usable:
            return "free %d MiB not below usable %d MiB" % (free, usable)
        return None
    return check


def before(firsts, then: str):
    """check(): each regex of `firsts` matches somewhere before the first match of `then`."""
    def check(log: str):
        t = re.search(then, log, re.M)
        if not t:
            return "missing /%s/" % then
        for rx in firsts:
            m = re.search(rx, log, re.M)
            if not m or m.start() > t.start():
                return "/%s/ not before /%s/" % (rx, then)
        return None
    return check


def checks(*fns):
    """check(): the first error of several checks."""
    def check(log: str):
        for fn in fns:
            err = fn(log)
            if err:
                return err
        return None
    return check


# --- scenario families ---------------------------------------------------------------------------------

# Timeouts. A run's wall time depends on how busy the host is (two cores, `make test` runs two emulators
# at once, and anything else running shares them), never on the emulated machine: inside Bochs (clock:
# sync=none) every delay is counted in emulated instructions. Measured on the 2-core development machine
# under a load average of 6 to 7 (December 2026): QEMU boots 2-14 s, Bochs scenarios without Linux
# 5-41 s, with Linux 62-113 s. Each timeout leaves at least 6 times that: 3x for a machine twice as
# slow. A passing run never waits for its timeout; sessions wait for lines, never for a time.
QEMU_TIMEOUT = 180
BOCHS_TIMEOUT = 300
LINUX_TIMEOUT = 900


def boot(name: str, emulator: str, cpus: int, mem: int, timeout: float = QEMU_TIMEOUT, **kw) -> Scenario:
    """Boot foundation: every CPU up, a memory figure consistent with the RAM given, ready. No guests.
    Both figures come before `hv: ready`, in either order. The run ends at `hv: ready` (plus 1.5 s to
    catch a crash right after it; with no guests the hypervisor powers off there anyway)."""
    return Scenario(name, emulator=emulator, cpus=cpus, mem=mem, timeout=timeout,
                    expect=[Expect(CPUS_ONLINE(cpus), count=1), Expect(MEMORY, count=1), Expect(READY, count=1)],
                    check=checks(before([CPUS_ONLINE(cpus), MEMORY], READY), memory_within(mem)),
                    end=READY, settle=1.5, **kw)


# Why a scenario does not run on Bochs ryzen (run.py --backend svm): Bochs 2.7's own SVM bugs
# (docs/hardware.md). The hostile guests, and any guest that spins with IF = 0, meet the first. (run.py --backend svm; they do under QEMU EPYC).
BOCHS_RYZEN_IF0 = "Bochs 2.7 ryzen never preempts a guest entered with IF = 0, and a guest here spins so"
BOCHS_RYZEN_TRIPLE = ("Bochs 2.7 ryzen panics on a guest's triple fault ('3rd (13) exception with no resolution', "
                      "the guest's registers) instead of the SHUTDOWN #VMEXIT the VMCB intercepts (QEMU: "
                      "svm-misbehaving-qemu)")
BOCHS_RYZEN_DR6 = "Bochs 2.7 ryzen leaves DR6.B0 clear at the #DB intercept of a data breakpoint"
BOCHS_RYZEN_TF = ("Bochs 2.7 ryzen keeps a guest's pending single-step trap across the #VMEXIT of an intercepted "
                  "instruction and raises it in the host, right after VMRUN (exc's single step over CPUID)")
BOCHS_RYZEN_INTN = ("Bochs 2.7 ryzen records no EXITINTINFO for INT n (INT_Ib sets none): a nested page fault "
                    "met delivering it reports the last event recorded before on that CPU")
BOCHS_RYZEN_BUGS = {BOCHS_RYZEN_IF0, BOCHS_RYZEN_TRIPLE, BOCHS_RYZEN_DR6, BOCHS_RYZEN_TF, BOCHS_RYZEN_INTN}

# tests/run.py --model NAME: Bochs's name of each older VMX CPU model the set runs on again (docs/tests.md,
# /work/shared/PLATFORM.md). Neither has unrestricted guest, so the hypervisor runs every guest there on
# shadow paging unasked (core/hv.c, choose_backend; vmx/vcpu.c): penryn has no EPT, VPID or
# VMX-preemption timer (slices by the host's local APIC timer), lynnfield has EPT and VPID.
MODELS = {"penryn": "core2_penryn_t9600", "lynnfield": "corei5_lynnfield_750"}
# Why a scenario does not run there (Scenario.not_on_model, Scenario.needs_ug). Real mode without
# unrestricted guest (these models, and VMX with paging=shadow, which turns EPT off and with it
# unrestricted guest) runs in virtual-8086 mode (vmx/realmode.c), which cannot hold a 4 GiB data segment:
# a hostile action that clears CR0.PE with them ("unreal" mode) stops that guest with the reason
# (docs/tests.md).
MODEL_UNREAL = ("a hostile guest's mix clears CR0.PE with 4 GiB data segments (unreal mode), which virtual-8086 "
                "mode cannot hold without unrestricted guest: that guest is stopped with the reason")
# Bochs 2.7 takes no external-interrupt exit from a guest entered with IF = 0 (core/hv.c, LONE_SLICE_US);
# on skylake_x the VMX-preemption timer still ends its slice, on penryn nothing does.
MODEL_IF0 = ("Bochs 2.7 takes no external-interrupt exit from a guest entered with IF = 0 and penryn has no "
             "VMX-preemption timer: a guest here spins so and keeps its CPU")


def bochs_vmx(name: str, cpus: int = 1, mem: int = 256, timeout: float = BOCHS_TIMEOUT, **kw) -> Scenario:
    """A guest scenario on Bochs (the VMX machine). Default: 1 CPU, 256 MiB, run until all guests finish.
    The timeout is at least BOCHS_TIMEOUT."""
    kw.setdefault("forbid", [NO_VIRT])
    return Scenario(name, emulator="bochs", cpus=cpus, mem=mem, timeout=max(timeout, BOCHS_TIMEOUT),
                    needs_vmx=True, **kw)


SCENARIOS = [
    # Boot foundation: QEMU for the boot path, SMP bring-up, memory maps, UEFI; Bochs as the VMX machine.
    boot("boot-qemu-1cpu-128m", "qemu", 1, 128),
    boot("boot-qemu-4cpu-128m", "qemu", 4, 128),
    boot("boot-qemu-1cpu-2g", "qemu", 1, 2048),
    boot("boot-qemu-4cpu-2g", "qemu", 4, 2048),
    boot("boot-uefi-2cpu-256m", "qemu-uefi", 2, 256, timeout=BOCHS_TIMEOUT),
    boot("boot-qemu-2cpu-6g", "qemu", 2, 6144),   # memory above 4 GiB: mapped and allocatable
    boot("boot-bochs-4cpu-256m", "bochs", 4, 256, timeout=BOCHS_TIMEOUT),
]


def selftest(kind: str, exception: str, error_code: str, cr2: str = r"[0-9a-f]{16}") -> Scenario:
    """selftest=KIND faults on purpose after SMP bring-up: the exception is reported with its vector,
    error code, RIP and CR2, and the system stops (and powers off) instead of running on."""
    return Scenario("boot-selftest-" + kind, emulator="qemu", cpus=2, mem=128, cmdline="selftest=" + kind,
                    timeout=QEMU_TIMEOUT,
                    expect=[r"hv: selftest: ", r"hv: exception %s \(vector \d+\) error code %s$" % (exception, error_code),
                            r"^\[cpu0\]   rip [0-9a-f]{16} cs 0008 .* cr2 %s$" % cr2,
                            r"^\[cpu0\]   rax [0-9a-f]{16} rbx", r"hv: panic: system stopped"],
                    ordered=True, forbid=[r"hv: selftest: the fault did not happen", READY],
                    forbid_default=False, end=r"hv: panic: system stopped")


SCENARIOS += [
    selftest("ud", "#UD invalid opcode", "0x0"),
    selftest("null", "#PF page fault", "0x0", cr2="0{16}"),                 # page 0 is not mapped
    selftest("write-code", "#PF page fault", "0x3", cr2="0{10}2[0-9a-f]{5}"),   # present, write: code is read-only
    selftest("exec-data", "#PF page fault", "0x11", cr2="0{10}2[0-9a-f]{5}"),   # present, fetch: data is NX
    # A panic while the console's output ring is full: every line before it comes out, in order.
    Scenario("boot-selftest-ring", emulator="qemu", cpus=2, mem=128, cmdline="selftest=ring",
             expect=[Expect(r"^\[cpu0\] hv: selftest: ring line \d+ of 3000$", count=3000),
                     r"hv: selftest: ring line 3000 of 3000$", r"hv: exception #UD invalid opcode \(vector 6\)",
                     r"hv: panic: system stopped"],
             ordered=True, forbid=[READY], forbid_default=False, end=r"hv: panic: system stopped",
             check=lambda log: None if [int(n) for n in re.findall(r"ring line (\d+) of 3000$", log, re.M)]
             == list(range(1, 3001)) else "the ring's lines are not 1..3000 in order"),
]


# --- VMX: guests, isolation, scheduling, bad input (Bochs) ---------------------------------------------

# How a started line names the guest's paging: `ept SIZE` (its largest EPT page) or `shadow`, so that a
# scenario not about EPT passes on both (tests/run.py --paging shadow).
PAGING = r"(?:ept (?P<ept>1G|2M|4K)|shadow)"


def STARTED_AT(name: str) -> str:
    """`hv: guest NAME started: mem X MiB at HPA 0x..., cpu N, ept SIZE|shadow` with groups mem, hpa, cpu,
    ept (None on shadow paging)."""
    return (r"^\[cpu\d+\] hv: guest %s started: mem (?P<mem>\d+) MiB at HPA (?P<hpa>0x[0-9a-f]+), "
            r"cpu (?P<cpu>\d+), %s" % (re.escape(name), PAGING))


def NOT_STARTED(name: str, reason: str) -> str:
    return r"^\[cpu\d+\] hv: guest %s not started: %s" % (re.escape(name), reason)


def EPT_STOP(name: str, kind: str, gpa: int) -> str:
    return GUEST_STOPPED(name, r"EPT violation %s at GPA 0x%x, rip 0x[0-9a-f]+" % (kind, gpa))


def partitions_disjoint(names, min_cpus: int = 1):
    """check(): the guests' partitions [HPA, HPA + mem) do not overlap and are spread over min_cpus CPUs."""
    def check(log: str):
        spans, cpus = [], set()
        for n in names:
            m = re.search(STARTED_AT(n), log, re.M)
            if not m:
                return "no started line with an HPA for %s" % n
            base, size = int(m.group("hpa"), 16), int(m.group("mem")) << 20
            spans.append((base, base + size, n))
            cpus.add(m.group("cpu"))
        spans.sort()
        for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
            if b0 < a1:
                return "partitions of %s and %s overlap" % (an, bn)
        if len(cpus) < min_cpus:
            return "guests on %d CPUs, want at least %d" % (len(cpus), min_cpus)
        return None
    return check


def memory_returned(log: str):
    """check(): when every guest has ended, all their memory (RAM, EPT tables, VMCS...) is free again."""
    m = re.search(r"hv: memory free (\d+) KiB after the guests, (\d+) KiB before them", log)
    if not m:
        return "no memory-free line at the end"
    if m.group(1) != m.group(2):
        return "memory not returned: %s KiB free after the guests, %s KiB before" % (m.group(1), m.group(2))
    return None


def all_checks(*checks):
    def check(log: str):
        for c in checks:
            err = c(log)
            if err:
                return err
        return None
    return check


def own_exits(name: str, rest: str):
    """check(): guest NAME's exits line is `total N, ` then `rest` (a regex to the line's end); on shadow
    paging (its started line ends `, shadow`) `exception or NMI N, ` may come first: the #PF exits that
    fill the shadow (vmx/spt.c), which an EPT guest does not take."""
    def check(log: str):
        shadow = re.search(r"^\[cpu\d+\] hv: guest %s started: .*, shadow\b" % re.escape(name), log, re.M)
        rx = r"^\[cpu\d+\] hv: guest %s exits: total \d+, %s%s" % (
            re.escape(name), r"(?:exception or NMI \d+, )?" if shadow else "", rest)
        return None if re.search(rx, log, re.M) else "no exits line of %s matching /%s/" % (name, rx)
    return check


HELLO_LINES = lambda n: [GUEST_SAYS(n, "hello: Hello from a guest"),
                         GUEST_SAYS(n, "hello: cpuid hypervisor bit=1 vmx=0 signature=TesseraHV"),
                         GUEST_SAYS(n, r"hello: guest id=\d+ ram=16384 KiB cpu=\d+"),
                         GUEST_EXITED(n, 0)]
MEMCHECK_OK = lambda n: [GUEST_SAYS(n, r"memcheck: \d+ MiB intact"), GUEST_EXITED(n, 0)]

# WBINVD and WBNOINVD complete, no-ops (the caches are shared with other guests), counted "wbinvd"; MONITOR
# and MWAIT, which CPUID hides, raise #UD, counted "monitor" and "mwait" (on SVM: their intercepts, vmcb_setup).
CACHEOPS = dict(
    cpus=1, mem=128, modules=[guest("crash64", "name=cache mem=4M do=cacheops")],
    expect=[GUEST_SAYS("cache", r"crash64: wbinvd and wbnoinvd completed$"),
            GUEST_SAYS("cache", r"crash64: MONITOR raised vector 6 ok$"),
            GUEST_SAYS("cache", r"crash64: MWAIT raised vector 6 ok$"), GUEST_EXITED("cache", 0),
            r"hv: guest cache exits: total \d+, .*\bmwait 1, monitor 1, .*\bwbinvd 2\b", ALL_DONE],
    forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$", r"unexpected #VMEXIT", r"hv: panic"])

# INT3 and INT 0x30 with RSP on a page not backed yet (alloc=lazy chunk=4K: the delivery's pushes meet an EPT
# violation, a nested page fault or a shadow #PF): each handler runs once, the instruction not delivered a
# second time at the handler's IRET (VMX re-injects with the instruction's length; SVM runs the instruction
# again, svm/vcpu.c dispatch). intn=False: INT3 only (BOCHS_RYZEN_INTN).
def softint_lazy(intn: bool = True) -> dict:
    return dict(
        cpus=1, mem=128,
        modules=[guest("crash64", "name=softint mem=4M alloc=lazy chunk=4K do=softint" + ("" if intn else " intn=0"))],
        expect=[r"hv: guest softint started: .*, alloc lazy",
                GUEST_SAYS("softint", r"crash64: int3 with RSP on an untouched page entered the #BP handler 1 "
                           r"time\(s\) ok$")] +
               [GUEST_SAYS("softint", r"crash64: int 0x30 with RSP on an untouched page entered its handler 1 "
                           r"time\(s\) ok$")] * intn +
               [GUEST_EXITED("softint", 0), ALL_DONE],
        forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$", r"unexpected #VMEXIT", r"hv: panic"])

# The misbehaving 64-bit guests of vmx-misbehaving-long-mode-debug and its SVM twin, and what they print.
LONG_MODE_DEBUG = dict(
    modules=[guest("crash64", "name=cr8 mem=4M cpu=1 do=cr8"),
             guest("crash64", "name=pgoff64 mem=4M cpu=1 do=pgoff64"),
             guest("crash64", "name=mmio mem=4M cpu=1 do=mmio"),
             guest("crash64", "name=mmiostack mem=4M cpu=1 do=mmiostack"),
             guest("crash", "name=dbg mem=4M cpu=0 alloc=lazy do=dbg"),
             guest("hello", "name=hello mem=16M cpu=0")],
    expect=[GUEST_SAYS("cr8", r"crash64: RDMSR 0x12345678 raised vector 13 ok$"),
            GUEST_SAYS("cr8", r"crash64: after the injected #GP, mov cr8 wrote 7 and read 7 ok$"),
            GUEST_EXITED("cr8", 0),
            GUEST_SAYS("pgoff64", r"crash64: clearing CR0.PG in 64-bit mode raised vector 13 ok$"),
            GUEST_SAYS("pgoff64", r"crash64: still in long mode with paging ok$"),
            GUEST_SAYS("pgoff64", r"crash64: setting CR0 bit 32 raised vector 13, CR0 0x[0-9a-f]+ ok$"),
            GUEST_SAYS("pgoff64", r"crash64: CLTS cleared CR0.TS \(set before: yes\) ok$"),
            GUEST_SAYS("pgoff64", r"crash64: CR4.MCE with CPUID's MCE clear raised vector 13 ok$"),
            GUEST_EXITED("pgoff64", 0)] +
           [GUEST_SAYS("mmio", r"crash64: MMIO dword 0x%s: MOVSXD loaded 0x%s, MOV 0x%s ok$" % (d, sx, d))
            for d, sx in (("ff000000", "ffffffffff000000"), ("7f000000", "7f000000"),
                          ("80000000", "ffffffff80000000"))] +
           [GUEST_EXITED("mmio", 0),
            GUEST_STOPPED("mmiostack", r"EPT violation write at GPA 0xfec000[0-3][0-9a-f] outside RAM by an event's "
                          r"delivery or a walk of the guest's page tables \(not emulated\), rip 0x[0-9a-f]+"),
            GUEST_SAYS("dbg", r"dbg: breakpoint on a first-touch write fired \(1, DR6 0x[0-9a-f]+\) ok$"),
            GUEST_SAYS("dbg", r"dbg: 4 checks, 0 failed$"), GUEST_EXITED("dbg", 0),
            r"hv: guest dbg started: .*, alloc lazy"] + HELLO_LINES("hello") + [ALL_DONE])

SIX = ["h1", "h2", "h3", "m1", "m2", "m3"]

SCENARIOS += [
    bochs_vmx("vmx-two-guests", not_on_svm=BOCHS_RYZEN_IF0, cpus=4,
              not_on_qemu_svm="it asserts a slice end in memcheck's run, which QEMU's TCG finishes within "
                              "one slice (both guests in 54 ms)",
              modules=[guest("hello", "name=hello mem=16M"), guest("memcheck", "name=mc mem=16M")],
              expect=[GUEST_STARTED("hello"), GUEST_STARTED("mc"), READY] + HELLO_LINES("hello") +
                     MEMCHECK_OK("mc") +
                     # hello's exits are its own instructions; at most a slice end beside them: CPU 0 drains
                     # the console's output ring between slices, and its slices are cut short while bytes wait
                     [r"^\[cpu\d+\] hv: guest mc exits: total \d+.*, preemption \d+", ALL_DONE],
              check=all_checks(own_exits("hello", r"cpuid \d+, vmcall 1, io \d+(, preemption [12])?$"),
                               partitions_disjoint(["hello", "mc"], min_cpus=2))),

    # Shadow page tables (issue 16, vmx/spt.c): the 64-bit hello (Multiboot entry: 32-bit protected
    # mode, paging off on the shadow's identity root, then PAE and 4-level) and memcheck (the same
    # modes, every page of its RAM written and read back) with paging=shadow on Bochs's Skylake, which
    # has EPT: "enable EPT" off for them, and every #PF, CR3 access and INVLPG exits. Memory free after
    # = before (the shadow tables are returned). A hello with two vCPUs runs (its AP never started,
    # waiting for a SIPI); a bad paging= value is refused with the reason.
    bochs_vmx("vmx-shadow-hello", cpus=2, timeout=240,
              modules=[guest("hello", "name=hello mem=16M paging=shadow"),
                       guest("memcheck", "name=mc mem=16M paging=shadow"),
                       guest("hello", "name=two mem=16M paging=shadow vcpus=2"),
                       guest("hello", "name=bad mem=16M paging=nested")],
              expect=[r"^\[cpu\d+\] hv: guest hello started: mem 16 MiB at HPA 0x[0-9a-f]+, cpu \d+, shadow$",
                      r"^\[cpu\d+\] hv: guest mc started: .*, shadow$",
                      r"^\[cpu\d+\] hv: guest two started: .*, shadow$", GUEST_EXITED("two", 0),
                      r"hv: module 3: bad value for paging: 'nested' \(expected one of ept\|shadow\)$",
                      NOT_STARTED("bad", r"bad option on its module line"),
                      READY] + HELLO_LINES("hello") + MEMCHECK_OK("mc") +
                     [r"^\[cpu\d+\] hv: guest hello exits: total \d+, exception or NMI \d+, ",
                      r"^\[cpu\d+\] hv: guest mc exits: total \d+, exception or NMI \d+, .*\bcr \d+",
                      r"^\[cpu\d+\] hv: guest mc shadow: \d+ fills, 0 #PF injected, ", ALL_DONE],
              check=memory_returned),

    bochs_vmx("vmx-six-guests", cpus=4, timeout=240,
              modules=[guest("hello", "name=h%d mem=16M" % i) for i in (1, 2, 3)] +
                      [guest("memcheck", "name=m%d mem=16M yields=4" % i) for i in (1, 2, 3)],
              expect=sum([HELLO_LINES("h%d" % i) for i in (1, 2, 3)], []) +
                     sum([MEMCHECK_OK("m%d" % i) for i in (1, 2, 3)], []) +
                     [Expect(r"hv: guest \w+ exited code=0$", count=6), ALL_DONE],
              check=all_checks(partitions_disjoint(SIX, min_cpus=4), memory_returned)),

    # Each escape probe touches one guest-physical address the guest does not own and must be stopped
    # by an EPT violation naming it; the memcheck guests beside them must find their memory intact.
    # m2's partition is at HPA 0x1600000 (22 MiB: the first 2 MiB boundary after the hypervisor's image,
    # which starts at 0x200000, is m1's; checked below).
    bochs_vmx("vmx-isolation", cpus=4, timeout=240,
              modules=[guest("memcheck", "name=m1 mem=16M yields=6"),
                       guest("memcheck", "name=m2 mem=16M yields=6"),
                       guest("escape", "name=past-end mem=16M probe=0x1000000 access=write"),
                       guest("escape", "name=hv-image mem=2M probe=0x200000 access=write"),
                       guest("escape", "name=other-guest mem=16M probe=0x1600000 access=write"),
                       # 0xFEE00000 is the guest's own virtual local APIC now (vdev/lapic.c; the
                       # apic-storm scenario checks it reaches nothing else): probe an MMIO address
                       # no device claims, where the HPET would be on a PC.
                       guest("escape", "name=mmio mem=16M probe=0xfed00000 access=read"),
                       guest("escape", "name=fetch mem=16M probe=0x3000000 access=exec")],
              expect=MEMCHECK_OK("m1") + MEMCHECK_OK("m2") +
                     [EPT_STOP("past-end", "write", 0x1000000),
                      EPT_STOP("hv-image", "write", 0x200000),
                      EPT_STOP("other-guest", "write", 0x1600000),
                      EPT_STOP("mmio", "read", 0xfed00000),
                      EPT_STOP("fetch", "fetch", 0x3000000),
                      r"^\[cpu\d+\] hv: hypervisor image at 0x200000-", ALL_DONE],
              forbid=[NO_VIRT, r"escape: not stopped"],
              check=lambda log: None if re.search(r"hv: guest m2 started: mem 16 MiB at HPA 0x1600000,", log)
              else "m2 is not at HPA 0x1600000: the other-guest probe no longer aims at it"),

    # spin never yields; counter shares its CPU and must finish first: only the preemption timer can
    # take the CPU from spin (without it, spin would run its whole loop before counter starts).
    bochs_vmx("vmx-starvation", not_on_svm=BOCHS_RYZEN_IF0, cpus=2, timeout=240, not_on_model={"penryn": MODEL_IF0},
              modules=[guest("spin", "name=spin mem=4M cpu=1 loops=150000000"),
                       guest("counter", "name=counter mem=4M cpu=1 count=5 delay=200000")],
              ordered=True,
              expect=[GUEST_SAYS("spin", "spin: start"), GUEST_SAYS("counter", "counter: 5"),
                      GUEST_EXITED("counter", 0), GUEST_SAYS("spin", "spin: done"), GUEST_EXITED("spin", 0),
                      ALL_DONE]),

    # A guest that prints without pause beside a quiet one on the same CPU. Its lines go into the
    # console's output ring (console/printk.c): the host no longer spends 2.6 ms of UART time per line
    # inside its slices (the reason it used to end after the quiet one), so it now ends first; the
    # quiet guest is not starved (its first line comes before the chatty one's last), and all 300
    # lines (9 KiB, within the print limit's burst) come whole and in order.
    bochs_vmx("vmx-chatty-guest", not_on_svm=BOCHS_RYZEN_IF0, cpus=2, timeout=240,
              modules=[guest("counter", "name=chatty mem=4M cpu=1 count=300 delay=0"),
                       guest("counter", "name=quiet mem=4M cpu=1 count=3 delay=2000000")],
              ordered=True,             # which of the two speaks first is the emulator's (check: chatty's order)
              expect=[GUEST_SAYS("quiet", "counter: 1$"), GUEST_SAYS("chatty", "counter: 300$"),
                      GUEST_EXITED("chatty", 0), ALL_DONE,
                      Expect(GUEST_EXITED("quiet", 0), count=1)],
              forbid=[NO_VIRT, r"hv: guest chatty: output over its limit"],
              check=lambda log: None if [int(n) for n in re.findall(r"^\[cpu\d+\] \[chatty\] counter: (\d+)$", log, re.M)]
              == list(range(1, 301)) else "chatty's lines are not 1..300 in order"),

    bochs_vmx("vmx-bad-input", cpus=2, mem=128, cmdline="frobnicate=1 quantum=fast",
              modules=[data("not-a-kernel.txt", "name=text"),
                       data("truncated.elf", "name=trunc"),
                       guest("hello", "name=huge mem=4G"),
                       guest("hello", "name=good mem=16M"),
                       guest("hello", "name=good mem=16M"),
                       guest("hello", "name=badcpu mem=16M cpu=7"),
                       guest("hello", "name=badmem mem=12Q"),
                       guest("hello", "name=br[0] mem=16M"),
                       guest("escape", "name=tiny mem=2M probe=0x300000 access=read")],
              expect=[r"hv: hypervisor: unknown option 'frobnicate=1'",
                      r"hv: hypervisor: bad value for quantum: 'fast'",
                      NOT_STARTED("text", r"bad image: not a kernel we can boot: no Linux setup header .*, no Multiboot2 header .*, no Multiboot header"),
                      NOT_STARTED("trunc", "bad image: .+"),
                      NOT_STARTED("huge", r"mem=4096 MiB is more than the \d+ MiB of free memory"),
                      NOT_STARTED("good", "duplicate name 'good'"),
                      NOT_STARTED("badcpu", r"cpu=7 is not a CPU that can run guests"),
                      r"hv: module 6: bad value for mem: '12Q'",
                      NOT_STARTED("badmem", "bad option on its module line"),
                      NOT_STARTED("module7", r"name='br\[0\]' must be one word without brackets"),
                      EPT_STOP("tiny", "read", 0x300000)] + HELLO_LINES("good") + [ALL_DONE]),

    # Guests that misbehave: each is stopped, or has the fault reflected into it, and only it; hello
    # beside them runs to the end.
    # Exits a guest causes on purpose (issue 10): string I/O emulated (REP or not, sizes 1/2/4, DF,
    # FS override, 16-bit addresses, pages not contiguous or not present: the guest's own checks),
    # INVD completes, a hardware task switch stops the guest with its source and selector.
    bochs_vmx("vmx-misbehaving-guests", not_on_svm=BOCHS_RYZEN_TRIPLE, svm_twin="svm-misbehaving-qemu", cpus=2, timeout=180,
              modules=[guest("crash", "name=%s mem=4M do=%s" % (n, n)) for n in
                       ("hlt", "triple", "stackless", "strio", "gp", "ud", "port", "cr4", "invd", "taskswitch")] +
                      [guest("hello", "name=hello mem=16M")],
              expect=[GUEST_STOPPED("hlt", r"halted with interrupts disabled \(HLT, IF=0\), rip 0x[0-9a-f]+"),
                      GUEST_STOPPED("triple", r"triple fault, rip 0x[0-9a-f]+"),
                      GUEST_STOPPED("stackless", r"triple fault, rip 0x[0-9a-f]+"),
                      GUEST_SAYS("strio", r"strio: rep outsb prints this line$"),
                      GUEST_SAYS("strio", r"strio: fs override ok$"),
                      GUEST_SAYS("strio", r"strio: backwards ok$"),
                      GUEST_SAYS("strio", r"strio: addr16 ok$"),
                      GUEST_SAYS("strio", r"strio: #PF in rep outsb resumed ok$"),
                      GUEST_SAYS("strio", r"strio: 14 checks, 0 failed$"), GUEST_EXITED("strio", 0),
                      GUEST_SAYS("invd", "crash: invd completed"), GUEST_EXITED("invd", 0),
                      GUEST_STOPPED("taskswitch", r"hardware task switch \(JMP to TSS selector 0x28\) is not "
                                    r"supported, rip 0x[0-9a-f]+"),
                      GUEST_SAYS("gp", "crash: caught exception 13 as expected"), GUEST_EXITED("gp", 0),
                      GUEST_SAYS("ud", "crash: caught exception 6 as expected"), GUEST_EXITED("ud", 0),
                      GUEST_SAYS("cr4", "crash: caught exception 13 as expected"), GUEST_EXITED("cr4", 0),
                      GUEST_SAYS("port", "crash: port 0x2f8 read 0xff then 0xff"), GUEST_EXITED("port", 0),
                      Expect(r"hv: guest port: read from port 0x2f8 \(no device; reads as all ones\), reported once",
                             count=1)] + HELLO_LINES("hello") + [ALL_DONE],
              forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$", r"unhandled exit", r"unexpected VM exit"]),

    # The same misbehaving guests on SVM (QEMU EPYC): each stopped or corrected as on VMX; string I/O by
    # the neutral handler (vcpu/strio.c, over SVM's accessors). cr4 sets CR4.VMXE, which QEMU 7.2's software
    # SVM lets a guest set (AMD CPUs #GP: APM Vol. 2, 3.1.3) and VMRUN then refuses: the CR4-write
    # intercept gives the #GP. rdpmc: the counters are the host's, RDPMC intercepted and #GP as on VMX
    # (without the intercept QEMU 7.2 raises #UD, "unimplemented"; a CPU would read the host's counters). No taskswitch here: QEMU 7.2 does not raise the task-switch intercept (the
    # guest's JMP to its TSS ends in a triple fault); on Bochs ryzen it does (svm-taskswitch-bochs-ryzen).
    Scenario("svm-misbehaving-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT,
             modules=[guest("crash", "name=%s mem=4M do=%s" % (n, n)) for n in
                      ("hlt", "triple", "stackless", "strio", "gp", "ud", "port", "cr4", "rdpmc", "invd")] +
                     [guest("hello", "name=hello mem=16M")],
             expect=[GUEST_STOPPED("hlt", r"halted with interrupts disabled \(HLT, IF=0\), rip 0x[0-9a-f]+"),
                     GUEST_STOPPED("triple", r"triple fault, rip 0x[0-9a-f]+"),
                     GUEST_STOPPED("stackless", r"triple fault, rip 0x[0-9a-f]+"),
                     GUEST_SAYS("strio", r"strio: rep outsb prints this line$"),
                     GUEST_SAYS("strio", r"strio: fs override ok$"),
                     GUEST_SAYS("strio", r"strio: backwards ok$"),
                     GUEST_SAYS("strio", r"strio: addr16 ok$"),
                     GUEST_SAYS("strio", r"strio: #PF in rep outsb resumed ok$"),
                     GUEST_SAYS("strio", r"strio: 14 checks, 0 failed$"), GUEST_EXITED("strio", 0),
                     GUEST_SAYS("invd", "crash: invd completed"), GUEST_EXITED("invd", 0),
                     GUEST_SAYS("gp", "crash: caught exception 13 as expected"), GUEST_EXITED("gp", 0),
                     GUEST_SAYS("ud", "crash: caught exception 6 as expected"), GUEST_EXITED("ud", 0),
                     GUEST_SAYS("cr4", "crash: caught exception 13 as expected"), GUEST_EXITED("cr4", 0),
                     GUEST_SAYS("rdpmc", "crash: caught exception 13 as expected"), GUEST_EXITED("rdpmc", 0),
                     GUEST_SAYS("port", "crash: port 0x2f8 read 0xff then 0xff"), GUEST_EXITED("port", 0),
                     Expect(r"hv: guest port: read from port 0x2f8 \(no device; reads as all ones\), reported once",
                            count=1)] + HELLO_LINES("hello") + [ALL_DONE],
             forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$", r"unexpected #VMEXIT", r"hv: panic"],
             check=memory_returned),

    # vmx-misbehaving-long-mode-debug on SVM: MOV CR8 after an injected #GP (CR8 intercepted: the TPR is
    # the emulated APIC's), CR0.PG cleared in 64-bit mode is the CPU's #GP, CR0 bit 32 the hypervisor's
    # (the CR0 write intercept comes first), CLTS through the CR0 write intercept, CR4.MCE refused, the
    # MMIO loads and the frame pushed into a device, a data breakpoint on a write that exits (first
    # touch) fires and DR7/DR0 survive a yield.
    Scenario("svm-misbehaving-long-mode-debug-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True,
             qemu_cpu="EPYC", timeout=QEMU_TIMEOUT,
             **LONG_MODE_DEBUG,
             forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$", r"unexpected #VMEXIT", r"hv: panic"],
             check=memory_returned),
    Scenario("svm-taskswitch-bochs-ryzen", emulator="bochs", cpus=1, mem=128, cpu_model="ryzen",
             timeout=BOCHS_TIMEOUT,
             modules=[guest("crash", "name=%s mem=4M do=%s" % (n, n)) for n in ("taskswitch", "cr4", "invd")],
             expect=[GUEST_STOPPED("taskswitch", r"hardware task switch \(JMP to TSS selector 0x28\) is not "
                                   r"supported, rip 0x[0-9a-f]+"),
                     GUEST_SAYS("cr4", "crash: caught exception 13 as expected"), GUEST_EXITED("cr4", 0),
                     GUEST_SAYS("invd", "crash: invd completed"), GUEST_EXITED("invd", 0),
                     r"hv: guest invd exits: total \d+, invd 1, io \d+", ALL_DONE],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned),

    # Misbehaving in 64-bit mode, and debug registers across exits (issue 10, items 1-3): MOV CR8 after
    # an injected #GP completes; clearing CR0.PG in 64-bit mode, or setting CR0 bit 32, is a #GP; CLTS
    # clears CR0.TS; MMIO loads by MOV and MOVSXD give what the CPU would; an exception frame pushed
    # into a device stops the guest (no instruction to emulate); a data breakpoint armed before a
    # write that exits (first touch, alloc=lazy) fires, and DR7/DR0 survive a yield to another guest
    # on the same CPU.
    bochs_vmx("vmx-misbehaving-long-mode-debug", not_on_svm=BOCHS_RYZEN_DR6,
              svm_twin="svm-misbehaving-long-mode-debug-qemu", cpus=2, timeout=180,
              **LONG_MODE_DEBUG,
              forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$"]),

    # CACHEOPS on VMX, and on SVM under QEMU EPYC and on Bochs ryzen.
    bochs_vmx("vmx-cacheops", **CACHEOPS),
    Scenario("svm-cacheops-qemu", emulator="qemu", needs_vmx=True, qemu_cpu="EPYC", timeout=QEMU_TIMEOUT, **CACHEOPS),
    Scenario("svm-cacheops-bochs-ryzen", emulator="bochs", cpu_model="ryzen", timeout=BOCHS_TIMEOUT, **CACHEOPS),

    # softint_lazy on VMX, and on SVM: under QEMU EPYC with nested and with shadow paging; on Bochs ryzen
    # INT3 only.
    bochs_vmx("vmx-softint-lazy", not_on_svm=BOCHS_RYZEN_INTN,
              svm_twin="svm-softint-lazy-qemu, svm-softint-lazy-bochs-ryzen", **softint_lazy()),
    Scenario("svm-softint-lazy-qemu", emulator="qemu", needs_vmx=True, qemu_cpu="EPYC", timeout=QEMU_TIMEOUT,
             **softint_lazy()),
    Scenario("svm-shadow-softint-lazy-qemu", emulator="qemu", needs_vmx=True, qemu_cpu="EPYC",
             cmdline="paging=shadow", timeout=QEMU_TIMEOUT, **softint_lazy()),
    Scenario("svm-softint-lazy-bochs-ryzen", emulator="bochs", cpu_model="ryzen", timeout=BOCHS_TIMEOUT,
             **softint_lazy(intn=False)),

    # Exceptions the hypervisor intercepts (#DB, #AC) or injects, as the guest's handler sees them
    # (issue 14, items 3 and 13): #AC at CPL 3 with error code 0 and RF = 1; single step (also over an
    # emulated REP OUTSB: RF = 1 after each iteration but the last), instruction and data breakpoints,
    # general detect and INT1 with their DR6 bits, EIP and RF; RF = 1 pushed with each fault injected
    # for a refused instruction (RDMSR, WRMSR, MOV CR4, RDPMC, VMXON).
    bochs_vmx("vmx-exceptions", not_on_svm=BOCHS_RYZEN_TF, svm_twin="svm-exc-rf-qemu, svm-exc-bochs-ryzen", timeout=120,
              modules=[guest("exc", "name=exc mem=4M do=checks")],
              expect=[GUEST_SAYS("exc", r"exc: RDMSR of an MSR that does not exist \(#GP injected\): .* RF=1 .* ok$"),
                      GUEST_SAYS("exc", r"exc: general detect: .* ok$"),
                      GUEST_SAYS("exc", r"exc: #AC at CPL 3: vector 17 error 0, .* ok$"),
                      GUEST_SAYS("exc", r"exc: single step over REP OUTSB: 3 #DB, RF pushed 1, 1 then 0 .* ok$"),
                      GUEST_SAYS("exc", r"exc: 16 checks, 0 failed$"), GUEST_EXITED("exc", 0), ALL_DONE],
              forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$"]),

    # The default demo, as `make run` boots it: build/hypervisor.iso and its iso/grub.cfg (which
    # does not power off: the console stays up for the monitor; the run ends when the guests have).
    bochs_vmx("vmx-default-iso", cpus=4, iso="build/hypervisor.iso",
              expect=[GUEST_STARTED("hello"), GUEST_STARTED("mc"), READY] + HELLO_LINES("hello") +
                     MEMCHECK_OK("mc") + [ALL_DONE, r"hv: the console stays up: "]),

    # QEMU's default CPU (qemu64) has SVM without nested paging and no VMX: guests run on the SVM back
    # end with shadow paging (svm/spt.c), unasked; the line says NPT no. (svm-none-qemu: no SVM either.)
    Scenario("svm-shadow-qemu64", emulator="qemu", cpus=2, mem=128, needs_vmx=True, timeout=QEMU_TIMEOUT,
             modules=[guest("hello", "name=hello mem=16M")],
             expect=[r"^\[cpu0\] hv: spec: on: .*retpolines; not needed: .+; guests get: .+$",
                     r"^\[cpu0\] hv: svm: NPT no, ASIDs \d+, ",
                     r"^\[cpu\d+\] hv: guest hello started: .*, shadow$", READY, GUEST_EXITED("hello", 0),
                     ALL_DONE],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], ordered=True, check=memory_returned),

    # AMD SVM (issue 15): the probe's line, what each CPU model offers (CPUID 0x8000000A, VM_CR; APM Vol.
    # 2, 15.4), then the guest on the SVM back end (svm/vcpu.c). QEMU's software SVM
    # (TCG: these never use KVM) has NPT but no nRIP save, flush by ASID or decode assists
    # (/work/shared/PLATFORM.md); Bochs's ryzen has nRIP save and flush by ASID.
    *[Scenario(name, emulator="qemu", cpus=2, mem=128, needs_vmx=True, qemu_cpu=cpu, timeout=QEMU_TIMEOUT,
               modules=[guest("hello", "name=hello mem=16M")],
               expect=[r"^\[cpu0\] hv: svm: NPT yes, ASIDs \d+, nRIP save no, flush by ASID no, decode assists no$",
                       GUEST_STARTED("hello"), READY, GUEST_EXITED("hello", 0), ALL_DONE],
               forbid=[NO_VIRT], ordered=True)
      for name, cpu in (("svm-probe-qemu-max", "max"), ("svm-probe-qemu-epyc", "EPYC"))],
    # The exc guest's checks on SVM under QEMU EPYC, to the end. The faults the SVM back end injects push
    # RF = 1, as a CPU's own faults do (SDM Vol. 3A, 17.3.1.1): the #UD given back for UD2, RDPMC's #GP,
    # VMXON's #UD (all three pushed RF = 0 before they went through svm_inject_exception). A single step
    # over an instruction the hypervisor completes is followed by its #DB (svm/guest.c,
    # single_step_trap): over CPUID (before: no #DB after it, the one after the next instruction), over
    # REP OUTSB one #DB per iteration (before: 1 #DB). Four checks fail on QEMU 7.2's own gaps
    # (docs/hardware.md): no #DB for DR7.GD, INT1 a #UD, no #AC, and the CPU's own #GP (not intercepted
    # with nested paging) pushed with RF = 0; their lines are pinned to that shape, any other FAIL fails
    # the scenario. 4 s.
    Scenario("svm-exc-rf-qemu", emulator="qemu", cpus=1, mem=128, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT, modules=[guest("exc", "name=exc mem=4M do=checks")],
             expect=[GUEST_SAYS("exc", r"exc: %s .* RF=1 pushed \(want 1\) ok$" % re.escape(what)) for what in
                     ("UD2 (the CPU's own #UD):", "RDMSR of an MSR that does not exist (#GP injected):",
                      "MOV CR4 setting VMXE (#GP injected):", "RDPMC (#GP injected):", "VMXON (#UD injected):")] +
                    [GUEST_SAYS("exc", r"exc: MOV to FS of a selector beyond the GDT \(the CPU's own #GP\): vector 13 "
                                r"error 65528 at the instruction yes, RF=0 pushed \(want 1\) FAIL$"),
                     GUEST_SAYS("exc", r"exc: INT3: vector 3 past the instruction, RF=0 pushed \(want 0\) ok$"),
                     GUEST_SAYS("exc", r"exc: single step: 1 #DB, DR6 0xffff4ff0 \(BS\), EIP past the NOP yes ok$"),
                     GUEST_SAYS("exc", r"exc: single step over CPUID: 1 #DB, DR6 0xffff4ff0 \(BS\), EIP past the CPUID "
                                r"yes ok$"),
                     GUEST_SAYS("exc", r"exc: single step over REP OUTSB: 3 #DB, RF pushed 1, 1 then 0 \(bits 0x3, "
                                r"want 0x3\), EIP past it yes ok$"),
                     GUEST_SAYS("exc", r"exc: instruction breakpoint: 1 #DB, .* ok$"),
                     GUEST_SAYS("exc", r"exc: data breakpoint: 1 #DB, .* ok$"),
                     GUEST_SAYS("exc", r"exc: general detect: 0 #DB, .* FAIL$"),
                     GUEST_SAYS("exc", r"exc: INT1: 1 #DB \(vector 6\), EIP past the instruction no FAIL$"),
                     GUEST_SAYS("exc", r"exc: #AC at CPL 3: vector 6 .* FAIL$"),
                     GUEST_SAYS("exc", r"exc: 16 checks, 4 failed$"), GUEST_EXITED("exc", 1), ALL_DONE],
             forbid=[NO_VIRT, GUEST_SAYS("exc", r"exc: (?!general detect: |INT1: |#AC at CPL 3: |MOV to FS ).* FAIL$")]),
    # The exc guest on Bochs ryzen, without the single steps over exiting instructions (stepexit=0:
    # Bochs 2.7 raises those traps in the host, BOCHS_RYZEN_TF): general detect raises #DB at the MOV DR
    # there (QEMU 7.2 has no DR7.GD), reflected by the #DB intercept with GD clear in the handler; INT1 and
    # #AC pass, and the general-detect #DB pushes RF = 1 with BD in DR6, as a CPU's (svm/vcpu.c, reflect_db:
    # before stop 25 it went back as a trap, RF = 0). Pinned failures: Bochs leaves the VMCB's DR6 as it was
    # at each #DB intercept (BS, B0, B1 missing: BOCHS_RYZEN_DR6). Twice: on nested paging (exc)
    # and on shadow paging (excsh), where ryzen's missing PCID has #GP intercepted (svm/spt.c): the MOV
    # CR4 setting VMXE, which the CPU faults before its CR4 intercept, is decided by the hypervisor, and
    # the CPU's own #GP goes back with its error code. 20 s.
    Scenario("svm-exc-bochs-ryzen", emulator="bochs", cpu_model="ryzen", cpus=2, mem=128, timeout=300,
             modules=[guest("exc", "name=exc mem=4M cpu=0 do=checks stepexit=0"),
                      guest("exc", "name=excsh mem=4M cpu=1 do=checks stepexit=0 paging=shadow")],
             expect=[r"^\[cpu\d+\] hv: guest excsh started: .*, shadow$"] +
                    [GUEST_SAYS(n, r"exc: %s .* RF=1 pushed \(want 1\) ok$" % re.escape(what)) for n in ("exc", "excsh")
                     for what in
                     ("UD2 (the CPU's own #UD):", "RDMSR of an MSR that does not exist (#GP injected):",
                      "MOV CR4 setting VMXE (#GP injected):", "RDPMC (#GP injected):", "VMXON (#UD injected):",
                      "MOV to FS of a selector beyond the GDT (the CPU's own #GP): vector 13 error 65528")] +
                    [line for n in ("exc", "excsh") for line in (
                     GUEST_SAYS(n, r"exc: single step: 1 #DB, DR6 0xffff0ff0 \(BS\), EIP past the NOP yes FAIL$"),
                     GUEST_SAYS(n, r"exc: instruction breakpoint: 1 #DB, DR6 0xffff0ff0 \(B0\), at the instruction "
                                r"yes, RF=0 pushed \(want 0\) FAIL$"),
                     GUEST_SAYS(n, r"exc: data breakpoint: 1 #DB, DR6 0xffff0ff0 \(B1\), EIP past the write yes FAIL$"),
                     GUEST_SAYS(n, r"exc: general detect: 1 #DB, DR6 0xffff2ff0 \(BD\), DR7 0x400 in the handler "
                                r"\(GD clear\), at the MOV yes, RF=1 pushed \(want 1\) ok$"),
                     GUEST_SAYS(n, r"exc: INT1: 1 #DB \(vector 1\), EIP past the instruction yes ok$"),
                     GUEST_SAYS(n, r"exc: #AC at CPL 3: vector 17 error 0, .* ok$"),
                     GUEST_SAYS(n, r"exc: 14 checks, 3 failed$"), GUEST_EXITED(n, 1))] + [ALL_DONE],
             forbid=[NO_VIRT] + [GUEST_SAYS(n, r"exc: (?!single step: |instruction breakpoint: |data breakpoint: ).* FAIL$")
                                 for n in ("exc", "excsh")]),
    Scenario("svm-none-qemu", emulator="qemu", cpus=1, mem=128, needs_vmx=True, qemu_cpu="qemu64,-svm",
             timeout=QEMU_TIMEOUT, modules=[guest("hello", "name=hello mem=16M")],
             expect=[r"^\[cpu0\] hv: no virtualization: VMX: not an Intel CPU; SVM: CPUID shows no SVM on this CPU",
                     r"hv: module 0 not started: no VMX or SVM on this machine", READY, r"hv: powering off"],
             forbid=[r"hv: svm: "], ordered=True, end=r"hv: powering off"),
    Scenario("svm-probe-bochs-ryzen", emulator="bochs", cpus=1, mem=128, cpu_model="ryzen", timeout=BOCHS_TIMEOUT,
             modules=[guest("hello", "name=hello mem=16M")],
             expect=[r"^\[cpu0\] hv: svm: NPT yes, ASIDs \d+, nRIP save yes, flush by ASID yes, decode assists no$",
                     GUEST_STARTED("hello"), READY,
                     GUEST_EXITED("hello", 0), ALL_DONE],
             forbid=[NO_VIRT], ordered=True),
    # The hello guest to its end on SVM with the contract lines it has on VMX: what CPUID shows it (no
    # VMX, no SVM, the hypervisor's leaves), HC_GUEST_INFO (its VMCALL #UDs on AMD and is taken as the
    # hypercall), its exit code through HC_EXIT, the exits by kind, and all its memory back.
    *[Scenario(name, emulator=emu, cpus=2 if emu == "qemu" else 1, mem=128, needs_vmx=emu == "qemu",
               timeout=QEMU_TIMEOUT if emu == "qemu" else BOCHS_TIMEOUT, **cpu,
               modules=[guest("hello", "name=hello mem=16M")],
               expect=[GUEST_STARTED("hello"), READY] + HELLO_LINES("hello") +
                      [r"^\[cpu\d+\] hv: guest hello exits: total \d+, cpuid \d+, vmcall 1, io \d+"
                       r"(, (external interrupt|preemption) \d+)*$", ALL_DONE],
               forbid=[NO_VIRT], ordered=True, check=memory_returned)
      for name, emu, cpu in (("svm-hello-qemu", "qemu", {"qemu_cpu": "EPYC"}),
                             ("svm-hello-bochs-ryzen", "bochs", {"cpu_model": "ryzen"}))],

    # memcheck (64-bit, long mode from the loader) beside hello, and first touch in every mode, on SVM:
    # nested page faults (#VMEXIT NPF, APM Vol. 2, 15.25.6) map chunks as EPT violations do on VMX, with
    # the same figures (mem-first-touch-modes).
    *[Scenario(name, emulator=emu, cpus=2, mem=256, needs_vmx=emu == "qemu",
               timeout=QEMU_TIMEOUT if emu == "qemu" else BOCHS_TIMEOUT, **cpu,
               modules=[guest("hello", "name=hello mem=16M"), guest("memcheck", "name=mc mem=16M")],
               expect=[GUEST_STARTED("hello"), GUEST_STARTED("mc"), READY] + MEMCHECK_OK("mc") +
                      [GUEST_EXITED("hello", 0), ALL_DONE],
               forbid=[NO_VIRT], check=memory_returned)
      for name, emu, cpu in (("svm-memcheck-qemu", "qemu", {"qemu_cpu": "EPYC"}),
                             ("svm-memcheck-bochs-ryzen", "bochs", {"cpu_model": "ryzen"}))],
    # Shadow page tables on SVM (svm/spt.c, beside vcpu/spt.c): NP_ENABLE = 0 and the VMCB's CR3 the
    # shadow root; every #PF, CR0/CR3/CR4 read, CR3 write and INVLPG is intercepted. hello (32-bit
    # protected mode with paging off on the shadow's identity root, then PAE and 4-level) and memcheck
    # (every page of its RAM written and read back) under QEMU EPYC, which has NPT: paging=shadow on
    # their module lines. Memory free after = before (the shadow tables are returned).
    Scenario("svm-shadow-hello-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT,
             modules=[guest("hello", "name=hello mem=16M paging=shadow"),
                      guest("memcheck", "name=mc mem=16M paging=shadow"),
                      guest("hello", "name=two mem=16M paging=shadow vcpus=2")],
             expect=[r"^\[cpu0\] hv: svm: NPT yes, ",
                     r"^\[cpu\d+\] hv: guest hello started: mem 16 MiB at HPA 0x[0-9a-f]+, cpu \d+, shadow$",
                     r"^\[cpu\d+\] hv: guest mc started: .*, shadow$",
                     r"^\[cpu\d+\] hv: guest two started: .*, shadow$", GUEST_EXITED("two", 0),
                     READY] + HELLO_LINES("hello") + MEMCHECK_OK("mc") +
                    [r"^\[cpu\d+\] hv: guest hello exits: total \d+, exception or NMI \d+, ",
                     r"^\[cpu\d+\] hv: guest mc exits: total \d+, exception or NMI \d+, .*\bcr \d+",
                     r"^\[cpu\d+\] hv: guest mc shadow: \d+ fills, 0 #PF injected, ", ALL_DONE],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned),
    # A CPU with SVM but no nested paging (QEMU's EPYC less NPT): every guest on shadow paging unasked,
    # paging=ept refused with the reason; the `hv: svm:` line says NPT no.
    Scenario("svm-shadow-nonpt-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True, qemu_cpu="EPYC,-npt",
             timeout=QEMU_TIMEOUT,
             modules=[guest("hello", "name=hello mem=16M"), guest("memcheck", "name=mc mem=16M"),
                      guest("hello", "name=ept mem=16M paging=ept")],
             expect=[r"^\[cpu0\] hv: svm: NPT no, ASIDs \d+, ",
                     r"^\[cpu\d+\] hv: guest hello started: .*, shadow$",
                     r"^\[cpu\d+\] hv: guest mc started: .*, shadow$",
                     NOT_STARTED("ept", r"paging=ept: the CPU has no nested paging \(AMD APM Vol. 2, 15.25\); "
                                        r"paging=shadow runs guests"),
                     READY] + HELLO_LINES("hello") + MEMCHECK_OK("mc") + [ALL_DONE],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned),
    # Penryn has neither EPT (so no unrestricted guest) nor VPID nor the VMX-preemption timer: every
    # guest runs on shadow paging, paging=ept is refused with the reason, and slices end by the host's
    # local APIC timer (external-interrupt exiting): spin (with IF = 1, see guests/spin.c) shares CPU 0
    # with hello and memcheck, which end before it does, and its exits count the slices' timer as
    # 'preemption'.
    bochs_vmx("vmx-shadow-penryn", cpus=1, mem=128, cpu_model="core2_penryn_t9600", timeout=400,
              modules=[guest("spin", "name=spin mem=4M loops=20000000 sti=1"),
                       guest("hello", "name=hello mem=16M"), guest("memcheck", "name=mc mem=16M"),
                       guest("ptswitch", "name=pt mem=32M rounds=100"),
                       guest("hello", "name=ept mem=16M paging=ept")],
              expect=[r"^\[cpu0\] hv: vmx: no EPT, VPID off, preemption timer none \(slices by the local APIC "
                      r"timer\), no unrestricted guest: paging=shadow for every guest, ",
                      r"^\[cpu\d+\] hv: guest hello started: .*, shadow$", r"^\[cpu\d+\] hv: guest mc started: .*, shadow$",
                      NOT_STARTED("ept", r"paging=ept: the CPU has no EPT"),
                      GUEST_SAYS("spin", "spin: start"),
                      GUEST_SAYS("pt", r"ptswitch: 100 rounds, 100 CR3 loads, \d+ #PF .*, 0 checks failed$"),
                      GUEST_EXITED("pt", 0), READY] + HELLO_LINES("hello") + MEMCHECK_OK("mc") +
                     [GUEST_SAYS("spin", "spin: done"), GUEST_EXITED("spin", 0),
                      r"hv: guest spin exits: .*preemption \d+", ALL_DONE],
              check=checks(memory_returned, lambda log: None if log.find("[spin] spin: done") > log.find(
                  "hv: guest hello exited code=0") > 0 else "hello did not end before spin: no slices")),
    # Lynnfield has EPT but no unrestricted guest: every guest runs on shadow paging (vmx/spt.c) without
    # being asked, and paging=ept is refused with the reason.
    bochs_vmx("vmx-shadow-lynnfield", cpus=1, mem=128, cpu_model="corei5_lynnfield_750", timeout=300,
              modules=[guest("hello", "name=hello mem=16M"), guest("memcheck", "name=mc mem=16M"),
                       guest("ptswitch", "name=pt mem=32M rounds=100"),
                       guest("hello", "name=ept mem=16M paging=ept")],
              expect=[r"^\[cpu0\] hv: vmx: EPT pages .*, no unrestricted guest: paging=shadow for every guest, ",
                      r"^\[cpu\d+\] hv: guest hello started: .*, shadow$", r"^\[cpu\d+\] hv: guest mc started: .*, shadow$",
                      NOT_STARTED("ept", r"paging=ept: the CPU has no unrestricted guest"),
                      GUEST_SAYS("pt", r"ptswitch: 100 rounds, 100 CR3 loads, \d+ #PF .*, 0 checks failed$"),
                      GUEST_EXITED("pt", 0), READY] + HELLO_LINES("hello") + MEMCHECK_OK("mc") + [ALL_DONE],
              check=memory_returned),

    # A CPU model without 1 GiB EPT pages: the same two guests, mapped with 2 MiB pages.
    bochs_vmx("vmx-sandy-bridge", cpus=2, cpu_model="corei7_sandy_bridge_2600k",
              modules=[guest("hello", "name=hello mem=16M"), guest("memcheck", "name=mc mem=16M")],
              expect=[r"hv: vmx: EPT pages 2M 4K,", STARTED_AT("hello"), STARTED_AT("mc")] +
                     HELLO_LINES("hello") + MEMCHECK_OK("mc") + [ALL_DONE],
              check=lambda log: None if len(re.findall(r"started: .*, ept 2M$", log, re.M)) == 2
              else "guests not mapped with 2 MiB pages",
              ept_only="the guests' EPT maps with 2 MiB pages where the CPU has no 1 GiB ones"),

    # Speculation controls (arch/x86/spec.c): the `hv: spec:` line says what this CPU model reports
    # and what is done about it; guests get IA32_SPEC_CTRL, PRED_CMD, FLUSH_CMD, ARCH_CAPABILITIES
    # where the CPU has them. Bochs's tigerlake has them all (ARCH_CAPABILITIES 0x1F, no MDS_NO, with
    # MD_CLEAR): two guests on one CPU each keep their own SPEC_CTRL across yields to the other.
    bochs_vmx("spec-tigerlake", cpus=1, cpu_model="tigerlake",
              modules=[guest("specctl", "name=sa mem=16M expect=on value=1 rounds=6"),
                       guest("specctl", "name=sb mem=16M expect=on value=6 rounds=6")],
              expect=[SPEC_LINE("VERW on VM entry, IBPB on guest switch, RSB CALL on VM exit (PBRSB), eIBRS, retpolines",
                                "L1D flush (RDCL_NO)", None,
                                "SPEC_CTRL, PRED_CMD, FLUSH_CMD, ARCH_CAPABILITIES"),
                      GUEST_SAYS("sa", r"specctl: rdmsr ARCH_CAPABILITIES 0x00000001f ok$"),
                      GUEST_SAYS("sa", r"specctl: \d+ checks, 0 failed$"), GUEST_EXITED("sa", 0),
                      GUEST_SAYS("sb", r"specctl: \d+ checks, 0 failed$"), GUEST_EXITED("sb", 0), ALL_DONE],
              forbid=[NO_VIRT, GUEST_SAYS("sa", ".*FAIL"), GUEST_SAYS("sb", ".*FAIL")]),
    # Protection keys: Bochs's tigerlake has PKU; a guest on EPT is offered it, a guest on shadow page
    # tables is not (their leaves carry no keys: vcpu/cpuid_policy.c, no_pkeys).
    bochs_vmx("vmx-shadow-pkeys-tigerlake", cpus=1, cpu_model="tigerlake",
              modules=[guest("ptswitch", "name=pk-ept mem=16M rounds=12 paging=ept"),
                       guest("ptswitch", "name=pk-shadow mem=16M rounds=12 paging=shadow")],
              expect=[GUEST_SAYS("pk-ept", r"ptswitch: CPUID PKU=1 OSPKE=0$"),
                      GUEST_SAYS("pk-shadow", r"ptswitch: CPUID PKU=0 OSPKE=0$"),
                      GUEST_EXITED("pk-ept", 0), GUEST_EXITED("pk-shadow", 0), ALL_DONE],
              forbid=[NO_VIRT, r"hv: exception", r"^(?:\[cpu\d+\] )?\[\w+\] .*FAIL"]),
    # Bochs's skylake_x has none of them: the guest sees no CPUID bit and every access #GPs; the line
    # says which vulnerabilities stay open on such a CPU.
    bochs_vmx("spec-skylake-x", cpus=1,
              not_on_model=dict.fromkeys(MODELS, "it asserts the `hv: spec:` line of skylake_x's own speculation "
                                         "controls (CPUID, ARCH_CAPABILITIES), which each CPU model reports "
                                         "differently"),
              modules=[guest("specctl", "name=sx mem=16M expect=off")],
              expect=[SPEC_LINE("RSB fill on VM exit, retpolines", "none",
                                "L1TF (no L1D_FLUSH), MDS (no MD_CLEAR), guest-to-guest BTI (no IBPB)", "none"),
                      GUEST_SAYS("sx", r"specctl: \d+ checks, 0 failed$"), GUEST_EXITED("sx", 0), ALL_DONE],
              forbid=[NO_VIRT, GUEST_SAYS("sx", ".*FAIL")],
              not_on_svm="the speculation controls of Intel's Skylake-X model"),
    # The same on SVM: AMD enumerates its controls in CPUID Fn8000_0008_EBX (IBPB 12, IBRS 14, STIBP
    # 15, SSBD 24), which spec.c reads beside leaf 7, and a guest sees there exactly what it may use.
    # No emulator here has them: Bochs 2.7 ryzen's Fn8000_0008_EBX is CLZERO only, and QEMU 7.2 under
    # TCG drops ibpb, ibrs, amd-stibp and amd-ssbd even from the models that list them (EPYC-IBPB, here;
    # EPYC-Rome, EPYC-Milan: "TCG doesn't support requested feature"). So the line names guest-to-guest
    # BTI as open and the guest finds every MSR #GP; on an AMD CPU with IBPB it reads "IBPB on guest
    # switch" and "guests get: SPEC_CTRL, PRED_CMD" (unit/test_spec, test_amd_zen2).
    *[Scenario(name, emulator=emu, cpus=1, mem=128, needs_vmx=emu == "qemu",
               timeout=QEMU_TIMEOUT if emu == "qemu" else BOCHS_TIMEOUT, **cpu,
               modules=[guest("specctl", "name=sa mem=16M expect=off")],
               expect=[SPEC_LINE("RSB fill on VM exit, retpolines", "L1D flush and VERW (not Intel)",
                                 "guest-to-guest BTI (no IBPB)", "none"),
                       GUEST_SAYS("sa", r"specctl: cpuid 7\.0 edx 0x0, 80000008 ebx 0x0$"),
                       GUEST_SAYS("sa", r"specctl: IBPB enumerated 0, expected off ok$"),
                       GUEST_SAYS("sa", r"specctl: \d+ checks, 0 failed$"), GUEST_EXITED("sa", 0), ALL_DONE],
               forbid=[NO_VIRT, GUEST_SAYS("sa", ".*FAIL")])
      for name, emu, cpu in (("svm-spec-qemu-epyc-ibpb", "qemu", {"qemu_cpu": "EPYC-IBPB"}),
                             ("svm-spec-bochs-ryzen", "bochs", {"cpu_model": "ryzen"}))],
]


# --- guest memory on first touch (Bochs) ---------------------------------------------------------------

def MEMORY_LINE(name: str) -> str:
    return (r"^\[cpu\d+\] hv: guest %s memory: touched (?P<mib>[\d.]+) MiB of (?P<of>\d+) MiB, "
            r"(?P<exits>\d+) first-touch exits$" % re.escape(name))


def memory_is(name: str, mib_lo: float, mib_hi: float, exits_lo: int, exits_hi: int):
    """check(): the guest's memory line shows touched MiB and first-touch exits within the ranges."""
    def check(log: str):
        m = re.search(MEMORY_LINE(name), log, re.M)
        if not m:
            return "no memory line for %s" % name
        mib, exits = float(m.group("mib")), int(m.group("exits"))
        if not (mib_lo <= mib <= mib_hi):
            return "%s touched %s MiB, want %s..%s" % (name, mib, mib_lo, mib_hi)
        if not (exits_lo <= exits <= exits_hi):
            return "%s took %d first-touch exits, want %d..%d" % (name, exits, exits_lo, exits_hi)
        return None
    return check


# sparse touches one 4 KiB page every MiB from 2 MiB up (20 pages: 2..21 MiB), checking each reads
# zero first. With 2 MiB chunks that is 10 chunks (2..22 MiB) plus chunk 0, which the hypervisor
# touched itself to load the image (not an exit). With 4 KiB chunks: the 20 pages plus the image,
# boot information, stack and bss pages (a few dozen KiB).
SPARSE = "mem=64M count=20 stride=1M"
# One sparse guest per allocation mode and chunk size, and what each must show: the memory it holds
# and its first-touch exits (memory_is), all of it given back at the end.
FIRST_TOUCH_GUESTS = [guest("sparse", "name=%s %s %s" % (n, how, SPARSE)) for n, how in (
    ("eager", "alloc=eager"), ("lazy2m", "alloc=lazy chunk=2M"), ("lazy4k", "alloc=lazy chunk=4K"),
    ("demand2m", "alloc=demand chunk=2M"), ("demand4k", "alloc=demand chunk=4K"))]
FIRST_TOUCH_EXPECT = ([GUEST_SAYS(n, r"sparse: touched 20 pages span \d+ KiB") for n in
                       ("eager", "lazy2m", "lazy4k", "demand2m", "demand4k")] +
                      [Expect(r"hv: guest \w+ exited code=0$", count=5), ALL_DONE])
FIRST_TOUCH_CHECK = all_checks(memory_is("eager", 64, 64, 0, 0), memory_is("lazy2m", 22, 22, 10, 10),
                               memory_is("demand2m", 22, 22, 10, 10),
                               memory_is("lazy4k", 20 * 4 / 1024, 0.25, 20, 40),
                               memory_is("demand4k", 20 * 4 / 1024, 0.25, 20, 40), memory_returned)
SCENARIOS += [
    bochs_vmx("mem-first-touch-modes", cpus=2, timeout=180,
              modules=FIRST_TOUCH_GUESTS, expect=FIRST_TOUCH_EXPECT, check=FIRST_TOUCH_CHECK),
    # The same on SVM: nested page faults (#VMEXIT NPF, APM Vol. 2, 15.25.6) instead of EPT violations.
    Scenario("svm-first-touch-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT,
             modules=FIRST_TOUCH_GUESTS, expect=FIRST_TOUCH_EXPECT, forbid=[NO_VIRT], check=FIRST_TOUCH_CHECK),

    # Demand guests whose mem= add up to far more than the machine (3 x 512 MiB on 256 MiB): the ones
    # that touch little finish, the one that touches everything is stopped when memory runs out, and
    # an eager memcheck guest beside them keeps its memory intact. All on one CPU, in this order.
    bochs_vmx("mem-demand-overcommit", cpus=2, mem=256, timeout=240,
              modules=[guest("sparse", "name=small1 alloc=demand mem=512M count=10 stride=1M cpu=1"),
                       guest("sparse", "name=small2 alloc=demand mem=512M count=10 stride=1M cpu=1"),
                       guest("memcheck", "name=mc alloc=eager mem=16M cpu=1"),
                       guest("touchall", "name=hog alloc=demand mem=512M cpu=1")],
              expect=[GUEST_EXITED("small1", 0), GUEST_EXITED("small2", 0)] + MEMCHECK_OK("mc") +
                     [GUEST_STOPPED("hog", r"out of memory at GPA 0x[0-9a-f]+"), ALL_DONE],
              forbid=[NO_VIRT, GUEST_SAYS("hog", "touchall: ")],
              check=all_checks(memory_is("small1", 12, 12, 5, 5), memory_is("small2", 12, 12, 5, 5),
                               memory_returned)),

    # The isolation probes still hold when RAM is mapped on first touch.
    bochs_vmx("mem-escape-lazy-demand", cpus=1,
              modules=[guest("escape", "name=lazy-end alloc=lazy mem=16M probe=0x1000000 access=write"),
                       guest("escape", "name=lazy-mmio alloc=lazy chunk=4K mem=16M probe=0xfed00000 access=read"),
                       guest("escape", "name=demand-end alloc=demand mem=16M probe=0x1000000 access=read"),
                       guest("escape", "name=demand-far alloc=demand chunk=4K mem=16M probe=0x40000000 access=exec")],
              expect=[EPT_STOP("lazy-end", "write", 0x1000000), EPT_STOP("lazy-mmio", "read", 0xfed00000),
                      EPT_STOP("demand-end", "read", 0x1000000), EPT_STOP("demand-far", "fetch", 0x40000000),
                      ALL_DONE],
              forbid=[NO_VIRT, r"escape: not stopped"]),

    # Guests of 5 GiB (more than the machine: only alloc=demand can run them) beside a memcheck, as a
    # user would start them (issue 14): their RAM must leave the hole below 4 GiB to the devices and
    # continue at 4 GiB. memhole checks its memory map (nothing usable at 0xFEC00000-0xFFFFFFFF,
    # usable = RAM less the BIOS area) and touches the first and last page of each usable range, both
    # sides of the hole, then ends and is restarted once (fresh memory reads zero again); hello is the
    # report's own reproduction. Before the hole, the APIC-access page sat at 0xFEE00000 in their RAM
    # and their end freed it as a guest chunk: "pmm: free of page ..., which is not allocated", panic.
    # A 5 GiB eager or lazy guest is refused: it needs its RAM up front. All memory comes back.
    bochs_vmx("mem-hole-5g", cpus=2, mem=512, timeout=400,
              modules=[guest("memhole", "name=d2m mem=5G alloc=demand chunk=2M on-exit=restart restarts=1 cpu=1"),
                       guest("memhole", "name=d4k mem=5G alloc=demand chunk=4K on-exit=restart restarts=1 cpu=1"),
                       guest("hello", "name=d2 mem=5G alloc=demand"),
                       guest("memcheck", "name=mc mem=64M"),
                       guest("hello", "name=big-lazy mem=5G alloc=lazy"),
                       guest("hello", "name=big-eager mem=5G alloc=eager")],
              expect=[NOT_STARTED("big-lazy", r"mem=5120 MiB is more than the \d+ MiB of free memory"),
                      NOT_STARTED("big-eager", r"mem=5120 MiB is more than the \d+ MiB of free memory")] +
                     [Expect(GUEST_SAYS(n, r"memhole: mmap 3: 0x100000000-0x17fffffff type 1$"), count=2)
                      for n in ("d2m", "d4k")] +
                     [Expect(GUEST_SAYS(n, r"memhole: page 0x17ffff000 read zero first .* ok$"), count=2)
                      for n in ("d2m", "d4k")] +
                     [Expect(GUEST_SAYS(n, r"memhole: \d+ checks, 0 failed"), count=2) for n in ("d2m", "d4k")] +
                     [r"^\[cpu\d+\] hv: guest %s restarted \(1\): " % n for n in ("d2m", "d4k")] +
                     [GUEST_EXITED("d2", 0)] + MEMCHECK_OK("mc") +
                     [ALL_DONE],
              forbid=[NO_VIRT, r"panic", r"pmm: ", r"memhole: .* FAIL", r"hv: guest \w+ stopped: "],
              check=memory_returned),
]

# --- interrupts, the virtual local APIC, several vCPUs -----------------------------------------------

def idle_share(cpu: int, at_least: int):
    """check(): `hv: cpu N idle X ms of Y ms (P%)`: host CPU `cpu` was halted at least `at_least`% of the time."""
    def check(log: str):
        m = re.search(r"hv: cpu %d idle \d+ ms of \d+ ms \((\d+)%%\)" % cpu, log)
        if not m:
            return "no idle line for cpu %d" % cpu
        return None if int(m.group(1)) >= at_least else "cpu %d idle %s%%, want >= %d%%" % (cpu, m.group(1), at_least)
    return check


def per_tick_exits(name: str, ticks: int, most: float):
    """check(): guest NAME's total exits divided by `ticks` is at most `most`."""
    def check(log: str):
        m = re.search(r"hv: guest %s exits: total (\d+)" % re.escape(name), log)
        if not m:
            return "no exits line for %s" % name
        return None if int(m.group(1)) / ticks <= most else "%s: %s exits for %d ticks" % (name, m.group(1), ticks)
    return check


SMP_OK = lambda name: [GUEST_SAYS(name, r"smp: all checks passed"), GUEST_EXITED(name, 0)]

# The timer guest's TSC checks ran (CPUID shows IA32_TSC_ADJUST, emulated over the TSC offset): a
# TSC jump past an armed TSC deadline fires it.
TSC_ADJUST_RAN = r"timer: tsc_adjust \+2 h past a deadline \+1 h: .* ok$"

SCENARIOS += [
    # Every APIC timer mode in xAPIC and x2APIC mode, 1000 ticks at 1 kHz within 5%, the IF=0 and EOI rules.
    # Skylake has APIC virtualization: the xAPIC half runs with it (APIC-write exits), the x2APIC half
    # with "virtualize x2APIC mode": its 1000 periodic ticks' EOIs (WRMSR 0x80B) exit no more (emulated:
    # wrmsr 1112, rdmsr 1029; virtualized: about 100 and 20).
    bochs_vmx("apic-timer", cpus=1, timeout=300,
              modules=[guest("timer", "name=timer mem=16M")],
              expect=[r"hv: vmx: .*APIC virtualization on, x2APIC virtualization on$",
                      GUEST_SAYS("timer", TSC_ADJUST_RAN),
                      GUEST_SAYS("timer", r"timer: all \d+ checks passed"), GUEST_EXITED("timer", 0)],
              check=lambda log: ("no APIC-write exits: APIC virtualization was not used"
                                 if not re.search(r"guest timer exits: .*APIC write \d+", log) else
                                 "x2APIC EOIs exited: x2APIC virtualization was not used"
                                 if not re.search(r"guest timer exits: .*wrmsr (\d\d?\d?)\b", log) else None),
              ept_only="APIC virtualization, which tessera gives EPT guests only (the APIC-access page is an EPT "
                       "mapping; on shadow paging the local APIC is emulated: apic-timer-emulated)",
              not_on_svm="VMX's APIC virtualization (SVM's local APIC is emulated, AVIC not used: "
                         "svm-apic-timer-bochs-ryzen)"),
    # The same with the local APIC emulated where the CPU could virtualize it (apicv=0): both paths.
    bochs_vmx("apic-timer-emulated", not_on_svm="it asserts VMX's line on APIC virtualization (svm-apic-timer-bochs-ryzen is its SVM twin)", cpus=1, timeout=300, cmdline="apicv=0",
              modules=[guest("timer", "name=timer mem=16M")],
              expect=[r"hv: vmx: .*APIC virtualization off, x2APIC virtualization off$",
                      GUEST_SAYS("timer", TSC_ADJUST_RAN),
                      GUEST_SAYS("timer", r"timer: all \d+ checks passed"), GUEST_EXITED("timer", 0)]),
    # With shadow paging the local APIC is always emulated (vmx/spt.c: no APIC-access page without EPT),
    # every access through a shadow #PF at 0xFEE00000; and a guest that crashes restarts on shadow paging.
    bochs_vmx("vmx-shadow-timer-restarts", cpus=2, timeout=400, cmdline="paging=shadow",
              modules=[guest("timer", "name=timer mem=16M cpu=0"),
                       guest("crash", "name=crash cpu=1 mem=16M do=triple on-crash=restart restarts=2"),
                       guest("hello", "name=hello cpu=1 mem=16M on-exit=restart restarts=1")],
              expect=[GUEST_SAYS("timer", TSC_ADJUST_RAN),
                      GUEST_SAYS("timer", r"timer: all \d+ checks passed"), GUEST_EXITED("timer", 0),
                      Expect(GUEST_STOPPED("crash", r"triple fault, rip 0x[0-9a-f]+"), count=3),
                      Expect(r"hv: guest crash started: .*, shadow$", count=3),
                      Expect(GUEST_EXITED("hello", 0), count=2), ALL_DONE],
              check=all_checks(lambda log: None if re.search(r"guest timer shadow: .* [1-9]\d* GPA faults", log)
                               else "the timer guest's APIC accesses took no shadow GPA faults", memory_returned)),
    # The same on Bochs's penryn (shadow paging unasked, no preemption timer): the timer guest's
    # deadlines (one-shot, periodic, TSC-deadline) come by the host's local APIC timer, and the crash
    # and restart paths free the EFER MSR-load page with the rest (memory free after = before).
    bochs_vmx("vmx-shadow-timer-penryn", cpus=2, timeout=400, cpu_model="core2_penryn_t9600",
              modules=[guest("timer", "name=timer mem=16M cpu=0"),
                       guest("crash", "name=crash cpu=1 mem=16M do=triple on-crash=restart restarts=2"),
                       guest("hello", "name=hello cpu=1 mem=16M on-exit=restart restarts=1")],
              expect=[r"hv: vmx: no EPT, VPID off, preemption timer none",
                      GUEST_SAYS("timer", r"timer: all \d+ checks passed"), GUEST_EXITED("timer", 0),
                      Expect(GUEST_STOPPED("crash", r"triple fault, rip 0x[0-9a-f]+"), count=3),
                      Expect(r"hv: guest crash started: .*, shadow$", count=3),
                      Expect(GUEST_EXITED("hello", 0), count=2), ALL_DONE],
              check=memory_returned),
    # Bochs's Sandy Bridge has none of the APIC-virtualization controls; the emulated APIC works the same.
    bochs_vmx("apic-timer-sandy-bridge", cpus=1, timeout=300, cpu_model="corei7_sandy_bridge_2600k",
              modules=[guest("timer", "name=timer mem=16M mode=periodic ticks=200")],
              expect=[GUEST_SAYS("timer", r"timer: all \d+ checks passed"), GUEST_EXITED("timer", 0)]),
    # Four vCPUs started by INIT-SIPI-SIPI: on four host CPUs, on two, and all on one.
    bochs_vmx("smp-4vcpus-4cpus", cpus=4, timeout=400,
              modules=[guest("smp", "name=smp vcpus=4 cpu=0,1,2,3 mem=16M cpus=4 count=20000")],
              expect=[r"hv: guest smp started: mem 16 MiB at HPA 0x[0-9a-f]+, cpu 0,1,2,3, " + PAGING] + SMP_OK("smp")),
    bochs_vmx("smp-4vcpus-2cpus", cpus=2, timeout=400,
              modules=[guest("smp", "name=smp vcpus=4 cpu=0,1,0,1 mem=16M cpus=4 count=20000 start=each")],
              expect=SMP_OK("smp")),
    bochs_vmx("smp-2vcpus-1cpu", cpus=1, timeout=300,
              modules=[guest("smp", "name=smp vcpus=2 mem=16M cpus=2 count=20000"),
                       guest("hello", "name=hello mem=16M")],
              expect=SMP_OK("smp") + [GUEST_EXITED("hello", 0)]),
    # Real mode without unrestricted guest (vmx/realmode.c): with paging=shadow the APs' INIT-SIPI-SIPI
    # start (real mode at 0700:0000, LGDT, MOV to CR0, a far JMP) runs in virtual-8086 mode, LGDT and the
    # CR0 moves emulated; then the IPI checks. On Skylake (EPT off for the guest), Lynnfield (EPT, no
    # unrestricted guest) and Penryn (no EPT): 4 vCPUs on 2 CPUs and 2 on 1.
    bochs_vmx("vmx-shadow-smp", cpus=2, timeout=400,
              modules=[guest("smp", "name=smp vcpus=4 cpu=0,1,0,1 mem=16M cpus=4 count=20000 paging=shadow")],
              expect=[r"hv: guest smp started: mem 16 MiB at HPA 0x[0-9a-f]+, cpu 0,1,0,1, shadow$"] + SMP_OK("smp") +
                     [r"^\[cpu\d+\] hv: guest smp real mode: 3 starts in virtual-8086 mode, \d+ exits there, "
                      r"9 instructions emulated, 0 events through the IVT$", ALL_DONE],
              check=memory_returned),
    bochs_vmx("vmx-shadow-smp-2vcpus-1cpu", cpus=1, timeout=300,
              modules=[guest("smp", "name=smp vcpus=2 mem=16M cpus=2 count=20000 paging=shadow"),
                       guest("hello", "name=hello mem=16M paging=shadow")],
              expect=SMP_OK("smp") + [GUEST_EXITED("hello", 0),
                                      r"^\[cpu\d+\] hv: guest smp real mode: 1 starts in virtual-8086 mode, "],
              forbid=[NO_VIRT, r"hv: guest hello real mode:"], check=memory_returned),
    *[bochs_vmx(name, cpus=2, mem=128, timeout=400, cpu_model=model,
                modules=[guest("smp", "name=smp vcpus=%d cpu=%s mem=16M cpus=%d count=20000 start=%s" % spec)],
                expect=[r"hv: guest smp started: .*, shadow$"] + SMP_OK("smp") +
                       [r"^\[cpu\d+\] hv: guest smp real mode: %d starts in virtual-8086 mode, " % (spec[0] - 1),
                        ALL_DONE],
                check=memory_returned)
      for name, model, spec in (("vmx-shadow-smp-lynnfield", "corei5_lynnfield_750", (4, "0,1,0,1", 4, "each")),
                                ("vmx-shadow-smp-penryn", "core2_penryn_t9600", (2, "0,1", 2, "broadcast")),
                                ("vmx-shadow-smp-4vcpus-penryn", "core2_penryn_t9600", (4, "0,1,0,1", 4, "broadcast")))],
    # The APs' real mode does more first (smp's realmode=1): an INT3 and a #UD through handlers in the
    # IVT, an INT 21h. With unrestricted guest (EPT) the CPU runs it; with paging=shadow in virtual-8086
    # mode INT 21h goes through the TSS's redirection bitmap, INT3 and #UD exit and tessera delivers them
    # through the IVT; so is INT 21h, whose first reading of the redirection bitmap takes the shadow fill
    # of the TSS's page during delivery (IDT-vectoring information, re-delivered): 3 events an AP.
    # MOV to and from DR0, from DR7 and INVLPG, which vm86 mode refuses (#GP at CPL 3), are emulated
    # (vmx/realmode.c). realmode=2 adds an RDPMC, which vm86 mode refuses and tessera does not emulate:
    # the guest is stopped naming the bytes and their GPA.
    bochs_vmx("smp-realmode", cpus=2, timeout=300,
              modules=[guest("smp", "name=smp vcpus=4 cpu=0,1,0,1 mem=16M cpus=4 count=2000 realmode=1")],
              expect=[GUEST_SAYS("smp", r"smp: real mode: int3 3, ud2 3, int 21h 3 in 3 aps \(want 3 each\) ok$"),
                      GUEST_SAYS("smp", r"smp: real mode: MOV DR0 and DR7, INVLPG right in 3 aps \(want 3\) ok$")] +
                     SMP_OK("smp")),
    bochs_vmx("vmx-shadow-smp-realmode", cpus=2, timeout=300,
              modules=[guest("smp", "name=smp vcpus=4 cpu=0,1,0,1 mem=16M cpus=4 count=2000 realmode=1 paging=shadow"),
                       guest("smp", "name=bad vcpus=2 cpu=1,0 mem=16M cpus=2 count=2000 realmode=2 paging=shadow")],
              expect=[GUEST_SAYS("smp", r"smp: real mode: int3 3, ud2 3, int 21h 3 in 3 aps \(want 3 each\) ok$"),
                      GUEST_SAYS("smp", r"smp: real mode: MOV DR0 and DR7, INVLPG right in 3 aps \(want 3\) ok$")] +
                     SMP_OK("smp") +
                     [r"^\[cpu\d+\] hv: guest smp real mode: 3 starts in virtual-8086 mode, \d+ exits there, "
                      r"21 instructions emulated, 9 events through the IVT$",
                      GUEST_STOPPED("bad", r"real mode: instruction 0f 33 66 b8 78 56 34 12 at GPA 0x60[0-9a-f]{2} "
                                    r"\(CS:IP 0600:00[0-9a-f]{2}\) raised #GP in virtual-8086 mode and is not emulated$"),
                      ALL_DONE],
              check=memory_returned),
    # Interrupts on SVM: the idle guest's local-APIC timer (xAPIC MMIO through the NPF path and the
    # decoder), delivered through EVENTINJ (APM Vol. 2, 15.20) to a vCPU woken from HLT.
    *[Scenario(name, emulator=emu, cpus=1, mem=128, needs_vmx=emu == "qemu",
               timeout=QEMU_TIMEOUT if emu == "qemu" else BOCHS_TIMEOUT, **cpu,
               # 5% in Bochs, whose time is its instruction count. Under QEMU's TCG a busy host can hold
               # the vCPU past a period, whose interrupts then merge into one as on hardware (one IRR
               # bit per vector, SDM Vol. 3A, 11.8.4): 580 ms for 50 ticks with 2 busy loops beside, so
               # there every tick must come and none early, but late is the host's doing (late=1)
               modules=[guest("idle", "name=idle mem=16M hz=100 ticks=50 %s" % how)],
               expect=[GUEST_SAYS("idle", r"idle: 50 ticks in \d+ ms.* ok"), GUEST_EXITED("idle", 0), ALL_DONE],
               forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned)
      for name, emu, cpu, how in (("svm-idle-qemu", "qemu", {"qemu_cpu": "EPYC"}, "tol=50 late=1"),
                                  ("svm-idle-bochs-ryzen", "bochs", {"cpu_model": "ryzen"}, "tol=5"))],
    # Every APIC timer mode in xAPIC and x2APIC mode on SVM (the x2APIC and TSC-deadline MSRs through the
    # neutral RDMSR/WRMSR handlers, IA32_TSC_ADJUST over TSC_OFFSET), 1000 ticks at 1 kHz within 5%.
    # Bochs only: under QEMU's TCG a 1 kHz tick costs more than its period (1386 us measured).
    Scenario("svm-apic-timer-bochs-ryzen", emulator="bochs", cpus=1, mem=128, cpu_model="ryzen",
             timeout=BOCHS_TIMEOUT, modules=[guest("timer", "name=timer mem=16M")],
             expect=[GUEST_SAYS("timer", TSC_ADJUST_RAN), GUEST_SAYS("timer", r"timer: all \d+ checks passed"),
                     GUEST_EXITED("timer", 0), ALL_DONE],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic", r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$"],
             check=memory_returned),
    # Two vCPUs started by INIT-SIPI-SIPI on SVM, on two host CPUs; an NMI posted inside the NMI handler
    # waits for its IRET (svm/vcpu.c: the IRET intercept and a single step over it).
    *[Scenario(name, emulator=emu, cpus=2, mem=128, needs_vmx=emu == "qemu",
               timeout=QEMU_TIMEOUT if emu == "qemu" else BOCHS_TIMEOUT, **cpu,
               modules=[guest("smp", "name=smp vcpus=2 cpu=0,1 mem=16M cpus=2 count=20000 nmiself=1")],
               expect=SMP_OK("smp") + [GUEST_SAYS("smp", r"smp: nmi posted inside the nmi handler: taken 2 of 2, "
                                                         r"nested 0 \(want 0\) ok$"), ALL_DONE],
               forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned)
      for name, emu, cpu in (("svm-smp-qemu", "qemu", {"qemu_cpu": "EPYC"}),
                             ("svm-smp-bochs-ryzen", "bochs", {"cpu_model": "ryzen"}))],
    # The time slice on SVM, which has no preemption timer: the host's local APIC timer and the INTR
    # intercept take the CPU from a guest that spins (with V_INTR_MASKING whatever its IF, APM Vol. 2,
    # 15.21.1), so the idle guest on the same CPU keeps its 100 Hz and the spin guest shows preemptions.
    # QEMU only: Bochs 2.7's ryzen gives no INTR intercept to a guest entered with RFLAGS.IF = 0 (the
    # spin guest ran its loop to the end with 'exits: total 47, io 47'), as its VMX entry does (core/hv.c,
    # LONE_SLICE_US): there a spinning IF=0 guest keeps its CPU until it exits.
    # The idle guest's time as in svm-idle-qemu: late=1, tol=50 (a tick held back by the host at the
    # start shortens the measured span), 610-720 ms measured for 500 under a stressed make test.
    Scenario("svm-idle-beside-spin-qemu", emulator="qemu", cpus=1, mem=128, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT,
             modules=[guest("idle", "name=idle mem=16M hz=100 ticks=50 tol=50 late=1"),
                      guest("spin", "name=spin mem=16M loops=100000000")],
             expect=[GUEST_SAYS("idle", r"idle: 50 ticks in \d+ ms.* ok"), GUEST_EXITED("idle", 0),
                     GUEST_EXITED("spin", 0), r"hv: guest spin exits: .*preemption \d+", ALL_DONE],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned),
    # An idle guest waiting on its 100 Hz timer leaves its host CPU halted; a spinning guest on the same
    # CPU gets the CPU meanwhile and still finishes; the idle guest's ticks keep time.
    bochs_vmx("hlt-idle", cpus=2, timeout=300,
              modules=[guest("idle", "name=idle cpu=1 mem=16M hz=100 ticks=100")],
              expect=[GUEST_SAYS("idle", r"idle: 100 ticks in \d+ ms.* ok"), GUEST_EXITED("idle", 0)],
              check=checks(idle_share(1, 80), per_tick_exits("idle", 100, 6))),
    bochs_vmx("hlt-idle-beside-spin", cpus=1, timeout=300,
              modules=[guest("idle", "name=idle mem=16M hz=100 ticks=50"),
                       guest("spin", "name=spin mem=16M loops=100000000")],
              expect=[GUEST_SAYS("idle", r"idle: 50 ticks in \d+ ms.* ok"), GUEST_EXITED("idle", 0),
                      GUEST_EXITED("spin", 0)]),
    # A guest sends INIT, NMI, fixed and STARTUP IPIs to every APIC ID in both modes, moves its APIC base
    # away and back, disables and re-enables its APIC: only it gets anything; memchecks beside it are intact.
    bochs_vmx("apic-storm", cpus=2, timeout=400,
              modules=[guest("apicstorm", "name=storm cpu=0 mem=16M"),
                       guest("memcheck", "name=m1 cpu=1 mem=16M yields=4"),
                       guest("smp", "name=smp2 vcpus=2 cpu=1,1 mem=16M cpus=2 count=20000")],
              expect=[GUEST_SAYS("storm", r"apicstorm: done, got fixed=\d+ nmi=\d+"), GUEST_EXITED("storm", 0),
                      GUEST_EXITED("m1", 0)] + SMP_OK("smp2"),
              forbid=[NO_VIRT, GUEST_SAYS("storm", r".*FAIL")],
              check=memory_returned),
]

# --- the PC devices of every guest: fw_cfg, PIT + PIC, RTC + I/O APIC, resets --------------------------------------------------
SCENARIOS += [
    bochs_vmx("pc-fwcfg-resets", cpus=1, timeout=240,
              modules=[guest("pcdev", "name=fwcfg mem=16M vcpus=2 do=fwcfg cpus=2"),
                       guest("pcdev", "name=kbd mem=4M do=kbd"),
                       guest("pcdev", "name=port92 mem=4M do=port92"),
                       guest("pcdev", "name=cf9 mem=4M do=cf9"),
                       guest("hello", "name=hello mem=4M")],
              expect=[GUEST_SAYS("fwcfg", r"pcdev: fw_cfg signature QEMU cpus 2 ram 16 MiB"),
                      GUEST_EXITED("fwcfg", 0),
                      GUEST_STOPPED("kbd", r"reset requested \(keyboard controller command 0xFE\)"),
                      GUEST_STOPPED("port92", r"reset requested \(port 0x92 fast reset\)"),
                      GUEST_STOPPED("cf9", r"reset requested \(port 0xCF9\)"),
                      GUEST_EXITED("hello", 0), ALL_DONE],
              forbid=[NO_VIRT, r"pcdev: still running"], check=memory_returned),
]
SCENARIOS += [
    # The PIT's 1 kHz IRQ 0 through the 8259A pair and LINT0 (ExtINT); the RTC's date and its 1024 Hz
    # interrupt through the I/O APIC. One CPU each: a device's periodic ticks that fall while another
    # guest has the CPU are coalesced, not queued (vdev/pit.c, vdev/rtc.c).
    bochs_vmx("pc-timers", cpus=2, timeout=240,
              modules=[guest("pcdev", "name=pit mem=4M cpu=0 do=pit"),
                       guest("pcdev", "name=rtc mem=4M cpu=1 do=rtc")],
              expect=[GUEST_SAYS("pit", r"pcdev: pit \d+ ticks in 100 ms"), GUEST_EXITED("pit", 0),
                      GUEST_SAYS("rtc", r"pcdev: rtc 20\d\d-\d\d-\d\d \d\d:\d\d:\d\d"),
                      GUEST_SAYS("rtc", r"pcdev: rtc periodic \d+ interrupts in 100 ms"), GUEST_EXITED("rtc", 0),
                      ALL_DONE]),
]


# --- hostile guests (issue 10): random privileged actions beside honest guests --------------------------
# guests/hostile.c does `actions=N` random things from `seed=N` and catches what it causes; at the end its
# own checks (registers, DR0-DR7, SYSENTER MSRs and PAT survive a yield to another guest, a data breakpoint
# fires, the APIC timer wakes a HLT, its code is unchanged). Its default mix is only what the hypervisor
# answers, so each ends `exited code=0`. Beside two 16 MiB memchecks and hello, in every memory policy, on
# 1 and 2 CPUs: no panic or host exception, honest guests intact, all memory returned. One scenario takes a
# new seed every run (from the time, or HOSTILE_SEED=N): its name carries the seed, to replay a failure with
# `HOSTILE_SEED=N tests/run.py -k hostile-new`, or boot hostile.elf with `seed=N actions=M`.
# `make fuzz SECONDS=N` (tests/fuzz_guests.py) runs more seeds for as long as asked.
import time as _time  # noqa: E402

HOSTILE_NEW_SEED = int(os.environ.get("HOSTILE_SEED") or int(_time.time()) % 1000000007)
HOSTILE_FORBID = [NO_VIRT, r"hv: exception", r"unhandled exit", r"hv: guest \w+ stopped: ",
                  r"^(?:\[cpu\d+\] )?\[hx\d\] .*FAIL", r"hostile: unexpected exception"]


def hostile_mix(name: str, seeds, cpus: int = 1, alloc: str = "eager", actions: int = 100,
                timeout: float = 240, paging: str = "ept", svm: str = "", **kw) -> Scenario:
    """Hostile guests hx1, hx2... (one per seed) beside memchecks m1, m2 and hello; with 2 CPUs each
    hostile guest shares its CPU with a memcheck, so its yields go to an honest guest. On Bochs VMX, or
    on SVM with svm="qemu" (QEMU EPYC) or svm="ryzen" (Bochs ryzen)."""
    hx = ["hx%d" % (i + 1) for i in range(len(seeds))]
    mods = [guest("hostile", "name=%s mem=16M cpu=%d seed=%d actions=%d" % (h, i % cpus, s, actions))
            for i, (h, s) in enumerate(zip(hx, seeds))]
    mods += [guest("memcheck", "name=m%d mem=16M cpu=%d yields=4" % (i + 1, i % cpus)) for i in range(2)]
    mods += [guest("hello", "name=hello mem=16M cpu=0")]
    expect = []
    for h, s in zip(hx, seeds):
        # Its exit code is 0 only after every action with no check failed (guests/hostile.c).
        expect += [GUEST_SAYS(h, r"hostile: seed %d actions %d mode default$" % (s, actions)), GUEST_EXITED(h, 0)]
    expect += MEMCHECK_OK("m1") + MEMCHECK_OK("m2") + HELLO_LINES("hello") + [ALL_DONE]
    check = all_checks(memory_returned, hostile_done(hx, actions))
    if svm == "qemu":
        return Scenario(name, emulator="qemu", qemu_cpu="EPYC", needs_vmx=True, cpus=cpus, mem=256,
                        timeout=max(timeout, QEMU_TIMEOUT), cmdline="alloc=%s" % alloc, modules=mods,
                        expect=expect, forbid=HOSTILE_FORBID + [r"unexpected #VMEXIT"], check=check, **kw)
    if svm == "ryzen":
        kw["cpu_model"] = "ryzen"
    kw.setdefault("not_on_svm", BOCHS_RYZEN_IF0)
    return bochs_vmx(name, cpus=cpus, timeout=timeout, cmdline="alloc=%s paging=%s" % (alloc, paging),
                     modules=mods, expect=expect,
                     forbid=HOSTILE_FORBID, check=check, **kw)


def hostile_done(names, actions: int):
    """check(): each hostile guest's last line, `hostile: done N actions, F faults caught, 0 checks failed`,
    unless the hypervisor's output limit dropped lines of it (vdev/vdev.c: a line per action, and 200
    actions can print more than the 16 KiB burst): then its exit code 0 says the same."""
    def check(log: str):
        for h in names:
            done = re.search(r"\[%s\] hostile: done %d actions, \d+ faults caught, 0 checks failed$" % (h, actions),
                             log, re.M)
            dropped = re.search(r"hv: guest %s output: \d+ lines \(\d+ bytes\) dropped over its limit$" % h, log, re.M)
            if not done and not dropped:
                return "guest %s: no 'hostile: done %d actions, ..., 0 checks failed' line, and none dropped" % (h, actions)
        return None
    return check


SCENARIOS += [
    hostile_mix("hostile-eager-1cpu", (1, 2), svm_twin="svm-hostile-eager-1cpu-qemu"),
    hostile_mix("hostile-lazy-2cpu", (3, 4), cpus=2, alloc="lazy", svm_twin="svm-hostile-lazy-2cpu-qemu"),
    hostile_mix("hostile-demand-1cpu", (5, 6), alloc="demand", svm_twin="svm-hostile-demand-1cpu-qemu",
                needs_ug=MODEL_UNREAL + " (seed 6)"),
    # On SVM under QEMU 7.2, one hostile guest per CPU: two that set debug registers on one CPU make
    # TCG's inserted breakpoints disagree with DR7 (its VMRUN and #VMEXIT load DR7 without updating
    # them), and a MOV to DR7 then kills QEMU with SIGSEGV (docs/hardware.md); with seeds 1 and 2 on one
    # CPU it did so in 4 runs of 4 at different actions, as the interleaving changed.
    *[hostile_mix("svm-hostile-%s-qemu" % n, seeds, cpus=c, alloc=a, svm="qemu")
      for n, seeds, c, a in (("eager-1cpu", (1,), 1, "eager"), ("lazy-2cpu", (3, 4), 2, "lazy"),
                             ("demand-1cpu", (7,), 1, "demand"))],
    # The same with shadow page tables for every guest (the hypervisor's paging=shadow, vmx/spt.c).
    hostile_mix("vmx-shadow-hostile-lazy-2cpu", (3, 4), cpus=2, alloc="lazy", paging="shadow"),
    # (No new-seed variant with shadow paging: a seed whose mix takes CR0.PE off and on ("real mode for
    # 2 instructions") is stopped there by design, `the guest left protected mode (CR0.PE=0), which
    # paging=shadow cannot run`: seed 18984002 does.)
    hostile_mix("hostile-new-seed-%d" % HOSTILE_NEW_SEED, (HOSTILE_NEW_SEED, HOSTILE_NEW_SEED + 1), cpus=2,
                alloc=("eager", "lazy", "demand")[HOSTILE_NEW_SEED % 3],
                not_on_svm="a new seed each run: under QEMU 7.2 some seeds meet its debug-register bugs "
                           "(docs/hardware.md), so on SVM fixed seeds only; `make fuzz BACKEND=svm` for more",
                needs_ug="a new seed each run: where " + MODEL_UNREAL),
    # What the default mix leaves out because it ends the guest by design: a read past its RAM, a local
    # APIC write of a size the model does not take, a reset (seed 2: port 0x92). Each is stopped with the
    # reason; hello beside them finishes.
    bochs_vmx("hostile-modes-stopped", not_on_svm=BOCHS_RYZEN_IF0, cpus=1, timeout=120,
              not_on_qemu_svm="several hostile guests on one CPU meet QEMU 7.2's DR7 bug (it died of SIGSEGV)",
              modules=[guest("hostile", "name=pastend mem=16M seed=7 actions=20 mode=pastend"),
                       guest("hostile", "name=apicbad mem=16M seed=8 actions=20 mode=apicbad"),
                       guest("hostile", "name=reset mem=16M seed=2 actions=20 mode=reset"),
                       guest("hostile", "name=init mem=16M seed=9 actions=20 mode=init"),
                       guest("hello", "name=hello mem=16M")],
              expect=[GUEST_STOPPED("pastend", r"EPT violation read at GPA 0x1000000, rip 0x[0-9a-f]+"),
                      GUEST_STOPPED("apicbad", r"MMIO write at GPA 0xfee00390: local APIC write of 2 bytes at "
                                    r"offset 0x390 is not supported, rip 0x[0-9a-f]+"),
                      GUEST_STOPPED("init", r"INIT left vCPU 0 waiting for a Start-up IPI that no other vCPU "
                                    r"can send"),
                      GUEST_STOPPED("reset", r"reset requested \(port 0x92 fast reset\)"),
                      GUEST_EXITED("hello", 0), ALL_DONE],
              forbid=[NO_VIRT, r"hv: exception", r"hostile: mode \w+: still running",
                      r"^(?:\[cpu\d+\] )?\[\w+\] .*FAIL"], check=memory_returned),
]


# --- shadow paging (issue 16, vmx/spt.c): the probes of the EPT scenarios with paging=shadow ----------
# The escape probes are stopped exactly as with EPT (the shadow's GPA map refuses what is not the guest's
# RAM, and the #PF exit goes the EPT violation's way: vcpu_handle_npf); first touch works through shadow
# faults (20 pages every MiB: as many first-touch exits as with EPT); exc's exception checks; the
# hostile guest's endings, among them a 2-byte local APIC write (MMIO reached through a shadow #PF, not
# mapped) and an INIT to itself (its real-mode INIT state is never entered). Memory free after = before.
PT_GUESTS = ("pt-ept", "pt-shadow", "pae-ept", "pae-shadow")

# ptswitch's CR0.WP = 0 check under SMAP (guests/ptswitch.c, wp0_smap_check), and its line on a CPU
# without SMAP (Bochs's penryn and lynnfield).
PT_WP0_SMAP = (r"ptswitch: WP=0 under SMAP: a store with AC=1 into a read-only user page went through, D set, "
               r"an XCHG swapped; a read with AC=0 of it: #PF, error 0x1$")
PT_NO_SMAP = r"ptswitch: no SMAP on this CPU: the WP=0 check is skipped$"
PT_SHADOW_LINE = r"^\[cpu\d+\] hv: guest %s shadow: \d+ fills, %d #PF injected, "
# Shadow leaves carry no protection keys (shadow/shadow.c): a guest on them is offered none.
PT_NO_PKEYS = r"ptswitch: CPUID PKU=0 OSPKE=0$"

SCENARIOS += [
    bochs_vmx("vmx-shadow-probes", cpus=2, timeout=300, cmdline="paging=shadow",
              modules=[guest("escape", "name=past-end mem=16M probe=0x1000000 access=write"),
                       guest("escape", "name=mmio mem=16M probe=0xfed00000 access=read"),
                       guest("escape", "name=fetch mem=16M probe=0x3000000 access=exec"),
                       guest("sparse", "name=lazy4k alloc=lazy chunk=4K " + SPARSE),
                       guest("sparse", "name=demand2m alloc=demand chunk=2M " + SPARSE),
                       guest("exc", "name=exc mem=4M do=checks"),
                       guest("hostile", "name=apicbad mem=16M seed=8 actions=20 mode=apicbad"),
                       guest("hostile", "name=init mem=16M seed=9 actions=20 mode=init")],
              expect=[EPT_STOP("past-end", "write", 0x1000000), EPT_STOP("mmio", "read", 0xfed00000),
                      EPT_STOP("fetch", "fetch", 0x3000000),
                      GUEST_EXITED("lazy4k", 0), GUEST_EXITED("demand2m", 0),
                      GUEST_SAYS("exc", r"exc: 16 checks, 0 failed$"), GUEST_EXITED("exc", 0),
                      GUEST_STOPPED("apicbad", r"MMIO write at GPA 0xfee00390: local APIC write of 2 bytes at "
                                    r"offset 0x390 is not supported, rip 0x[0-9a-f]+"),
                      GUEST_STOPPED("init", r"INIT left vCPU 0 waiting for a Start-up IPI that no other vCPU "
                                    r"can send"), ALL_DONE],
              forbid=[NO_VIRT, r"escape: not stopped", r"hv: exception", r"^(?:\[cpu\d+\] )?\[\w+\] .*FAIL"],
              check=all_checks(memory_is("lazy4k", 20 * 4 / 1024, 0.25, 20, 40),
                               memory_is("demand2m", 22, 22, 10, 10), memory_returned)),

    # ptswitch (guests/ptswitch.c), 32-bit and PAE paging, a page-table-heavy guest: 6 address spaces switched by CR3, a page
    # unmapped and faulted back in each round, copy-on-write after a fork every 4th round, A and D
    # bits checked in its PTEs, each #PF's CR2 and error code checked in its handler; then CR0.WP = 0
    # under SMAP (a store with AC = 1 into a read-only user page, emulated on shadow paging, and the
    # read with AC = 0 that SMAP faults: on shadow paging before stop 25 it went through). The same run
    # on EPT and on shadow page tables must give the same figures; the shadow line shows the cost.
    bochs_vmx("vmx-shadow-ptswitch", cpus=2, timeout=300,
              # without SMAP: the check's line, and one #PF fewer (the read SMAP faults)
              on_model=dict.fromkeys(MODELS, {**{GUEST_SAYS(n, PT_WP0_SMAP): GUEST_SAYS(n, PT_NO_SMAP)
                                                 for n in PT_GUESTS},
                                              **{PT_SHADOW_LINE % (n, 1753): PT_SHADOW_LINE % (n, 1752)
                                                 for n in ("pt-shadow", "pae-shadow")}}),
              modules=[guest("ptswitch", "name=pt-ept mem=32M cpu=0 rounds=200"),
                       guest("ptswitch", "name=pt-shadow mem=32M cpu=1 rounds=200 paging=shadow"),
                       guest("ptswitch", "name=pae-ept mem=32M cpu=0 rounds=200 mode=pae"),
                       guest("ptswitch", "name=pae-shadow mem=32M cpu=1 rounds=200 mode=pae paging=shadow")],
              expect=[GUEST_SAYS(n, r"ptswitch: 200 rounds, 200 CR3 loads, 1752 #PF \(200 not-present, 1552 "
                                 r"protection\), 0 checks failed$") for n in PT_GUESTS] +
                     [GUEST_SAYS(n, r"ptswitch: PAE paging, ") for n in ("pae-ept", "pae-shadow")] +
                     [GUEST_SAYS(n, PT_NO_PKEYS) for n in ("pt-shadow", "pae-shadow")] +
                     [GUEST_SAYS(n, PT_WP0_SMAP) for n in PT_GUESTS] +
                     [GUEST_EXITED(n, 0) for n in PT_GUESTS] +
                     [PT_SHADOW_LINE % (n, 1753) for n in ("pt-shadow", "pae-shadow")] + [ALL_DONE],
              forbid=[NO_VIRT, r"hv: exception", r"^(?:\[cpu\d+\] )?\[\w+\] .*FAIL"],
              check=memory_returned),
]


# Shadow page tables on SVM (svm/spt.c): first touch through the shadow's GPA faults, the isolation
# probes, a page-table-heavy guest (CR3 switches, INVLPG decoded without decode assists), and SMP with
# the APs' real mode run in paged real mode (APM Vol. 2, 15.19), all under QEMU EPYC with paging=shadow.
SCENARIOS += [
    Scenario("svm-shadow-first-touch-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT, cmdline="paging=shadow", modules=FIRST_TOUCH_GUESTS,
             expect=[Expect(r"hv: guest \w+ started: .*, shadow(, alloc \w+)?$", count=5)] + FIRST_TOUCH_EXPECT,
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], check=FIRST_TOUCH_CHECK),
    # Each probe touches a GPA the guest does not own: the shadow's GPA fault reaches the same handler
    # as a nested page fault and stops the guest naming it; the memcheck guest beside them is intact.
    Scenario("svm-shadow-escape-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT, cmdline="paging=shadow",
             modules=[guest("memcheck", "name=m1 mem=16M yields=6"),
                      guest("escape", "name=past-end mem=16M probe=0x1000000 access=write"),
                      guest("escape", "name=hv-image mem=2M probe=0x200000 access=write"),
                      guest("escape", "name=mmio mem=16M probe=0xfed00000 access=read"),
                      guest("escape", "name=fetch mem=16M probe=0x3000000 access=exec"),
                      guest("escape", "name=lazy-end alloc=lazy mem=16M probe=0x1000000 access=write"),
                      guest("escape", "name=demand-far alloc=demand chunk=4K mem=16M probe=0x40000000 access=exec")],
             expect=MEMCHECK_OK("m1") +
                    [EPT_STOP("past-end", "write", 0x1000000), EPT_STOP("hv-image", "write", 0x200000),
                     EPT_STOP("mmio", "read", 0xfed00000), EPT_STOP("fetch", "fetch", 0x3000000),
                     EPT_STOP("lazy-end", "write", 0x1000000), EPT_STOP("demand-far", "fetch", 0x40000000),
                     ALL_DONE],
             forbid=[NO_VIRT, r"escape: not stopped", r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned),
    # ptswitch (see vmx-shadow-ptswitch): the figures of EPT, on SVM's shadow: every CR3 load a root
    # switch with its ASID flushed, the unmapped page's INVLPG decoded (QEMU has no decode assists).
    Scenario("svm-shadow-ptswitch-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT,
             modules=[guest("ptswitch", "name=pt-shadow mem=32M cpu=0 rounds=200 paging=shadow"),
                      guest("ptswitch", "name=pae-shadow mem=32M cpu=1 rounds=200 mode=pae paging=shadow")],
             expect=[GUEST_SAYS(n, r"ptswitch: 200 rounds, 200 CR3 loads, 1752 #PF \(200 not-present, 1552 "
                                r"protection\), 0 checks failed$") for n in ("pt-shadow", "pae-shadow")] +
                    [GUEST_SAYS("pae-shadow", r"ptswitch: PAE paging, ")] +
                    [GUEST_SAYS(n, PT_NO_PKEYS) for n in ("pt-shadow", "pae-shadow")] +
                    [GUEST_SAYS(n, PT_WP0_SMAP) for n in ("pt-shadow", "pae-shadow")] +
                    [r"^\[cpu\d+\] hv: guest %s shadow: \d+ fills, 1753 #PF injected, .* [1-9]\d* INVLPG, " % n
                     for n in ("pt-shadow", "pae-shadow")] + [ALL_DONE],
             forbid=[NO_VIRT, r"hv: exception", r"unexpected #VMEXIT", r"^(?:\[cpu\d+\] )?\[\w+\] .*FAIL"],
             check=memory_returned),
    # The same guests on Bochs: ryzen (NPT, nRIP save, flush by ASID) with paging=shadow asked, and
    # turion64_tyler, an SVM CPU without nested paging, where every guest runs on shadow paging unasked.
    # The APs' real mode in paged real mode on both; ptswitch's #PFs given back with their CR2.
    *[Scenario(name, emulator="bochs", cpus=2, mem=128, cpu_model=model, timeout=BOCHS_TIMEOUT,
               cmdline=cmdline,
               # memcheck beside the BSP, not the AP: smp gives an AP 20 ms to take each IPI, and Bochs 2.7
               # does not preempt memcheck (IF = 0) on the AP's CPU in time
               modules=[guest("hello", "name=hello mem=16M cpu=0"), guest("memcheck", "name=mc mem=16M cpu=0"),
                        guest("smp", "name=smp vcpus=2 cpu=0,1 mem=16M cpus=2 count=2000 realmode=1"),
                        # its #PFs given back by the shadow need the guest's CR2 at VMRUN, which Bochs
                        # 2.7 does not load from the VMCB (svm_vcpu_run loads the CPU's before)
                        guest("ptswitch", "name=pt mem=32M cpu=0 rounds=50")],
               expect=[r"^\[cpu0\] hv: svm: NPT %s, " % npt,
                       Expect(r"hv: guest \w+ started: .*, shadow$", count=4)] + HELLO_LINES("hello") +
                      MEMCHECK_OK("mc") +
                      [GUEST_SAYS("pt", r"ptswitch: 50 rounds, 50 CR3 loads, \d+ #PF .*, 0 checks failed$"),
                       GUEST_EXITED("pt", 0)] +
                      [GUEST_SAYS("smp", r"smp: real mode: int3 1, ud2 1, int 21h 1 in 1 aps \(want 1 each\) ok$"),
                       GUEST_SAYS("smp", r"smp: real mode: MOV DR0 and DR7, INVLPG right in 1 aps \(want 1\) ok$")] +
                      SMP_OK("smp") + [ALL_DONE],
               forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned)
      for name, model, npt, cmdline in (("svm-shadow-bochs-ryzen", "ryzen", "yes", "paging=shadow"),
                                        ("svm-shadow-bochs-tyler", "turion64_tyler", "no", ""))],
    # INIT-SIPI-SIPI on shadow paging: the APs start in real mode, which runs as it is in paged real mode
    # on the shadow's identity root (no virtual-8086 emulation as on VMX): the INT3 and #UD the APs'
    # real mode raises go back through the IVT, INT 21h runs in the guest.
    Scenario("svm-shadow-smp-qemu", emulator="qemu", cpus=2, mem=256, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT,
             modules=[guest("smp", "name=smp vcpus=4 cpu=0,1,0,1 mem=16M cpus=4 count=2000 realmode=1 paging=shadow")],
             expect=[r"hv: guest smp started: mem 16 MiB at HPA 0x[0-9a-f]+, cpu 0,1,0,1, shadow$",
                     GUEST_SAYS("smp", r"smp: real mode: int3 3, ud2 3, int 21h 3 in 3 aps \(want 3 each\) ok$"),
                     GUEST_SAYS("smp", r"smp: real mode: MOV DR0 and DR7, INVLPG right in 3 aps \(want 3\) ok$")] +
                    SMP_OK("smp") + [ALL_DONE],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic", r"real mode: \d+ starts"], check=memory_returned),
]

# --- the serial console: input, focus, the monitor, restarts -------------------------------------------

import time  # noqa: E402
from typing import Optional  # noqa: E402

BANNER = r"^\[cpu\d+\] hv: console: keys go to the monitor"
ANSWER = r"^\[cpu\d+\]   "        # a monitor answer line: "[cpuN]   text"
ESC = "\x1d"                       # Ctrl-]: the console key


CONSOLE_BY_IRQ = r"^\[cpu0\] hv: console: input by interrupt \(IRQ 4, I/O APIC \d+ pin 4, edge active high, vector 0x[0-9a-f]+\)$"
CONSOLE_POLLED = r"^\[cpu0\] hv: console: input by polling \(console_irq=0\)$"


def console_input_check(c, by_irq: bool) -> Optional[str]:
    """The monitor's `console` command: every byte typed so far arrived (none dropped), by the UART's
    receive interrupt and none by polling (`by_irq`), or all by polling and no interrupt."""
    c.command("console")
    m = c.expect(ANSWER + r"input by (interrupt|polling): (\d+) interrupts, (\d+) bytes by interrupt, "
                 r"(\d+) bytes polled, (\d+) dropped$")
    how, irqs, irq_bytes, polled, dropped = m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)), \
        int(m.group(5))
    if how != ("interrupt" if by_irq else "polling"):
        return "console: input by %s, expected %s" % (how, "interrupt" if by_irq else "polling")
    if irq_bytes + polled + dropped != c.sent or dropped:
        return "console: %d bytes by interrupt + %d polled + %d dropped, but %d were typed" % (
            irq_bytes, polled, dropped, c.sent)
    # An interrupt can find no byte: one that arrives while the handler drains is read by that drain,
    # yet its edge is latched and delivered after the EOI; the re-arm at the drain's limit adds one
    # (console/uart.c). 438 interrupts for 437 bytes were seen under a stressed make test.
    if by_irq and (irqs == 0 or polled or irqs > 2 * irq_bytes):
        return "console: %d interrupts for %d bytes, %d polled: not interrupt-driven" % (irqs, irq_bytes, polled)
    if not by_irq and (irqs or irq_bytes):
        return "console: %d interrupts, %d bytes by interrupt with console_irq=0" % (irqs, irq_bytes)
    return None


def RESTARTED(name: str, n: int, reason: str = r".+") -> str:
    return r"^\[cpu\d+\] hv: guest %s restarted \(%d\): %s$" % (re.escape(name), n, reason)


def monitor_session(c, by_irq: bool) -> Optional[str]:
    """The monitor on a console-only system (no VMX or SVM): help, every command's answer without guests, bad
    commands and arguments, line editing, console keys, how the input came (by interrupt or polled,
    nothing lost), power-off from the monitor."""
    c.expect(NO_VIRT)
    c.expect(READY)
    c.expect(BANNER)
    c.command("help")
    for cmd in ("guests", "regs NAME", "ept NAME GPA", "gva NAME VCPU GVA", "mem", "exits NAME", "stop NAME",
                "start NAME", "restart NAME", "log", "poweroff", "reboot"):
        c.expect(ANSWER + re.escape(cmd))
    c.command("guests")
    c.expect(ANSWER + "no guests$")
    c.command("mem")
    c.expect(ANSWER + r"host memory: usable \d+ MiB, free \d+ MiB")
    c.command("frobnicate now")
    c.expect(ANSWER + r"error: unknown command 'frobnicate' \('help' lists them\)$")
    c.command("regs")
    c.expect(ANSWER + r"error: usage: regs NAME \[VCPU\]$")
    c.command("regs nosuch 0")
    c.expect(ANSWER + r"error: no guest 'nosuch' \(no guests\)$")
    c.command("ept 1 0x1000")
    c.expect(ANSWER + r"error: no guest '1'")
    c.command("log 9")
    c.expect(ANSWER + r"error: loglevel 9: 0 errors")
    c.command("log 0x3")
    c.expect(ANSWER + r"loglevel 3 \(debug\)$")
    c.command("log")
    c.expect(ANSWER + r"loglevel 3 \(debug\); ")
    # Line editing: DEL, Ctrl-U, Ctrl-W, an arrow key's escape sequence, CR LF as one Enter.
    c.send("gue\x1b[Dsx\x7fts\r\n")
    c.expect(r"^\[cpu\d+\] hv> guests$")
    c.expect(ANSWER + "no guests$")
    c.send("stop everything\x15mem please\x17\r")
    c.expect(r"^\[cpu\d+\] hv> mem $")
    c.expect(ANSWER + r"host memory: ")
    c.send("x" * 300 + "\r")
    c.expect(ANSWER + r"error: the line is longer than 120 characters \(180 more\); nothing done$")
    # Console keys with no guest to switch to.
    c.send(ESC + "1")
    c.expect(r"^\[cpu\d+\] hv: console: no guest 1 \(0 guests\)$")
    c.send(ESC + "?")
    c.expect(r"^\[cpu\d+\] hv: console keys: Ctrl-\] then: m monitor")
    c.send(ESC + "n")
    c.expect(r"^\[cpu\d+\] hv: console: focus on the monitor")
    err = console_input_check(c, by_irq)
    if err:
        return err
    c.command("poweroff")
    c.expect(r"^\[cpu\d+\] hv: powering off \(monitor\)$")
    return None


def monitor_basics_session(c) -> Optional[str]:
    return monitor_session(c, True)


def monitor_polled_session(c) -> Optional[str]:
    return monitor_session(c, False)


def reboot_session(c) -> Optional[str]:
    """`reboot` from the monitor resets the machine (QEMU -no-reboot then exits: the run ends by itself)."""
    c.expect(BANNER)
    c.command("reboot")
    c.expect(r"^\[cpu\d+\] hv: rebooting \(monitor\)$")
    return None


ECHO_MARKER = r"echo: marker at GVA (?P<gva>0x[0-9a-f]+) GPA (?P<gpa>0x[0-9a-f]+) holds 0x7e55e7a5 \(alias ok\)"


def shadow_session(c) -> Optional[str]:
    """vmx-shadow-console: the echo guest on shadow page tables, through the monitor."""
    c.expect(READY)
    c.expect(BANNER)
    c.pos = 0
    started = c.expect(r"^\[cpu\d+\] hv: guest echo started: mem 16 MiB at HPA (0x[0-9a-f]+), cpu 0, shadow$")
    base = int(started.group(1), 16)
    marker = c.expect(GUEST_SAYS("echo", ECHO_MARKER))
    gva, gpa = marker.group("gva"), int(marker.group("gpa"), 16)
    c.expect(GUEST_SAYS("echo", r"echo: ready"))
    c.send(ESC + "1")
    c.expect(r"^\[cpu\d+\] hv: console: focus on guest echo \(1\); Ctrl-\] m for the monitor$")
    c.send("hello, shadow\r")
    c.expect(GUEST_SAYS("echo", r"echo: got 'hello, shadow' \(13 bytes\)$"))
    c.send(ESC + "m")
    c.expect(r"^\[cpu\d+\] hv: console: focus on the monitor")
    c.command("gva echo 0 %s" % gva)
    # (\n, not $: a line still arriving would match at the end of what came so far, its CR3 cut short)
    m = c.expect(ANSWER + r"guest echo vCPU 0: GVA %s, 32-bit paging, CR3 (0x[0-9a-f]+)\r?\n" % gva)
    cr3 = int(m.group(1), 16)
    c.expect(ANSWER + r"GVA %s -> GPA 0x%x \(4K page, writable, supervisor\)$" % (gva, gpa))
    # (writable only once the guest's PTE has D: the marker is written through another alias)
    m = c.expect(ANSWER + r"shadow 4K leaf = 0x[0-9a-f]{16} \(HPA (0x[0-9a-f]+), (writable|read-only)\)$")
    if int(m.group(1), 16) != base + gpa:
        return "gva: the shadow leaf's HPA %s is not base 0x%x + GPA 0x%x" % (m.group(1), base, gpa)
    c.expect(ANSWER + r"GVA %s -> GPA 0x%x -> HPA 0x%x, holds 0x7e55e7a5 \(32 bits\)$" % (gva, gpa, base + gpa))
    c.command("regs echo")
    m = c.expect(ANSWER + r"cr0 ([0-9a-f]{16}) cr3 ([0-9a-f]{16}) cr4 ([0-9a-f]{16}) efer [0-9a-f]{16}$")
    if int(m.group(2), 16) != cr3 or int(m.group(1), 16) & 0x80010001 != 0x80010001:
        return "regs echo: CR0 %s CR3 %s: not the guest's (CR3 0x%x, PG/WP/PE set)" % (m.group(1), m.group(2), cr3)
    # 32-bit paging: the guest's CR4.PAE is 0 (the CPU's is 1 under the shadow's PAE-format tables).
    if int(m.group(3), 16) & 0x20:
        return "regs echo: CR4 %s has PAE: the CPU's CR4, not the guest's (32-bit paging)" % m.group(3)
    c.command("mem")
    c.expect(ANSWER + r"echo\s+16M\s+eager\s+2M\s+16384 KiB\s+\d+ KiB\s+0x[0-9a-f]+-0x[0-9a-f]+$")
    c.expect(ANSWER + r"\s+shadow tables [1-9]\d* KiB \(paging=shadow\)$")
    c.command("stop echo")
    c.expect(GUEST_STOPPED("echo", "by the monitor"))
    c.expect(r"^\[cpu\d+\] hv: guest echo shadow: \d+ fills, ")
    return None


def guest_session(c) -> Optional[str]:
    """Bochs, two CPUs: an echo guest on CPU 0, memcheck beside it on CPU 1. Restart the running memcheck
    and see it pass again; every monitor command against live guests, their fields checked (an EPT walk
    inside the partition, "not mapped" outside, the two-stage walk of the echo guest's marker variable
    ending at the HPA that holds its value); type to the echo guest and read its echo; stop and start it.
    Neither guest ends on its own (echo waits for lines, memcheck runs passes until stopped: passes=0),
    so whatever the host's speed against Bochs's, both are running when the session types to them, and
    the machine powers off only when the session has stopped the last one."""
    c.expect(READY)
    c.expect(BANNER)
    # memcheck runs until stopped: restart it now.
    c.command("restart mc")
    start = c.pos                   # mc's CPU may print its end before the monitor's answer
    c.expect(ANSWER + "restarting guest mc$")
    c.pos = start
    c.expect(GUEST_STOPPED("mc", "by the monitor, to restart"))
    c.expect(RESTARTED("mc", 1, "asked by the monitor"))
    c.expect(GUEST_STARTED("mc"))
    c.pos = 0
    started = c.expect(STARTED_AT("echo"))
    base = int(started.group("hpa"), 16)
    marker = c.expect(GUEST_SAYS("echo", ECHO_MARKER))
    gva, gpa = marker.group("gva"), int(marker.group("gpa"), 16)
    c.expect(GUEST_SAYS("echo", r"echo: ready"))
    # guests: one row each, with its vCPU placement, memory, policy.
    c.command("guests")
    c.expect(ANSWER + r"id\s+name\s+vcpus@cpu\s+mem\s+touched\s+alloc\s+exits\s+restarts\s+state$")
    c.expect(ANSWER + r"1\s+echo\s+1@0\s+16M\s+16M\s+eager\s+\d+\s+0 \(max 2\)\s+(running|halted)$")
    c.expect(ANSWER + r"2\s+mc\s+1@1\s+32M\s+32M\s+eager\s+\d+\s+1\s+(running|halted)$")
    # Type to the echo guest: its echo comes back whole, edits applied.
    c.send(ESC + "1")
    c.expect(r"^\[cpu\d+\] hv: console: focus on guest echo \(1\); Ctrl-\] m for the monitor$")
    c.send("hello, world\r")
    c.expect(GUEST_SAYS("echo", r"echo> hello, world$"))
    c.expect(GUEST_SAYS("echo", r"echo: got 'hello, world' \(12 bytes\)$"))
    c.send("abX\x7fc" + ESC + ESC + "\r")
    c.expect(GUEST_SAYS("echo", r"echo: got 'abc.' \(4 bytes\)$"))
    c.send(ESC + "m")
    c.expect(r"^\[cpu\d+\] hv: console: focus on the monitor")
    # regs: registers of a guest in paged protected mode.
    c.command("regs echo")
    c.expect(ANSWER + r"guest echo vCPU 0 on cpu 0:$")
    c.expect(ANSWER + r"rip [0-9a-f]{16} rsp [0-9a-f]{16} rflags [0-9a-f]{16}$")
    m = c.expect(ANSWER + r"cr0 ([0-9a-f]{16}) cr3 [0-9a-f]{16} cr4 [0-9a-f]{16} efer [0-9a-f]{16}$")
    if int(m.group(1), 16) & 0x80010001 != 0x80010001:
        return "regs echo: CR0 %s lacks PG, WP or PE (the guest set them)" % m.group(1)
    c.expect(ANSWER + r"es .*   cs   0008 base 0{16} limit ffffffff ar 0c09b$")
    c.expect(ANSWER + r"state: ")
    # ept: inside the partition, and outside the guest's RAM.
    c.command("ept echo 0x100000")
    m = c.expect(ANSWER + r"GPA 0x100000 -> HPA (0x[0-9a-f]+)\r?\n")   # the whole number, not a line still arriving
    if int(m.group(1), 16) != base + 0x100000:
        return "ept echo 0x100000 gave HPA %s, not the partition's base 0x%x + 0x100000" % (m.group(1), base)
    c.command("ept echo 0x40000000")
    c.expect(ANSWER + r"EPT (PML4E|PDPTE|PDE|PTE)\s+\[\s*\d+\] at HPA 0x[0-9a-f]+ = 0x0{16}  not present$")
    c.expect(ANSWER + r"GPA 0x40000000: not mapped: outside the guest's RAM \(0\.\.0xffffff\)$")
    # gva: the guest's own walk (32-bit paging, the alias through a 4 KiB page table), then the EPT.
    c.command("gva echo 0 %s" % gva)
    c.expect(ANSWER + r"guest echo vCPU 0: GVA %s, 32-bit paging" % gva)
    c.expect(ANSWER + r"guest PDE\s+\[768\] at GPA 0x[0-9a-f]+ = 0x[0-9a-f]{8}$")
    c.expect(ANSWER + r"guest PTE\s+\[\s*\d+\] at GPA 0x[0-9a-f]+ = 0x[0-9a-f]{8}$")
    c.expect(ANSWER + r"GVA %s -> GPA 0x%x \(4K page, writable, supervisor\)$" % (gva, gpa))
    m = c.expect(ANSWER + r"GVA %s -> GPA 0x%x -> HPA (0x[0-9a-f]+), holds 0x7e55e7a5 \(32 bits\)$" % (gva, gpa))
    if int(m.group(1), 16) != base + gpa:
        return "gva: HPA %s is not base 0x%x + GPA 0x%x" % (m.group(1), base, gpa)
    c.command("gva echo 0 0xb0000000")
    c.expect(ANSWER + r"GVA 0xb0000000: the guest's walk stops: not present \(the guest would take a fault\)$")
    c.command("mem")
    c.expect(ANSWER + r"host memory: usable \d+ MiB, free \d+ MiB")
    c.expect(ANSWER + r"echo\s+16M\s+eager\s+2M\s+16384 KiB\s+\d+ KiB\s+0x%x-0x%x$" % (base, base + (16 << 20) - 1))
    c.expect(ANSWER + r"guests hold \d+ KiB of RAM and \d+ KiB of EPT tables$")
    c.command("exits echo")
    c.expect(ANSWER + r"guest echo exits: total \d+, .*\bio \d+")
    # Input by the UART's interrupt, also while the echo guest ran on the boot CPU; nothing lost.
    err = console_input_check(c, True)
    if err:
        return err
    # Bad commands and arguments: one line each.
    for cmd, answer in (("frobnicate", r"error: unknown command 'frobnicate'"),
                        ("ept echo zz", r"error: 'zz' is not a number \(decimal, or hex with 0x\)$"),
                        ("regs echo 5", r"error: guest echo has one vCPU \(0\); no vCPU 5$"),
                        ("gva nosuch 0 0", r"error: no guest 'nosuch' \(guests: echo, mc\)$"),
                        ("start echo", r"error: guest echo is running \('restart echo' starts it again\)$"),
                        ("ept echo", r"error: usage: ept NAME GPA$")):
        c.command(cmd)
        c.expect(ANSWER + answer)
    # stop, type to a stopped guest, start it again.
    c.command("stop echo")
    c.expect(GUEST_STOPPED("echo", "by the monitor"))
    c.expect(r"^\[cpu\d+\] hv: guest echo memory: ")
    c.send(ESC + "1x")
    c.expect(r"^\[cpu\d+\] hv: console: guest echo is not running \(stopped: by the monitor\); ")
    c.send(ESC + "m")
    c.command("regs 1")
    c.expect(ANSWER + r"error: guest echo is not running \(stopped: by the monitor\)$")
    c.command("start 1")
    c.expect(GUEST_STARTED("echo"))
    c.expect(GUEST_SAYS("echo", r"echo: ready"))
    c.send(ESC + "1quit\r")
    c.expect(GUEST_EXITED("echo", 0))
    c.expect(RESTARTED("echo", 1, r"exited: code=0"))
    c.expect(GUEST_SAYS("echo", r"echo: ready"))
    c.send("exit 7\r")
    c.expect(GUEST_EXITED("echo", 7))
    c.expect(RESTARTED("echo", 2, r"exited: code=7"))
    c.expect(GUEST_SAYS("echo", r"echo: ready"))    # its FIFO reset drops what came before
    c.send("exit 9\r")
    c.expect(GUEST_EXITED("echo", 9))
    c.expect(r"^\[cpu\d+\] hv: guest echo not restarted: its 2 restarts \(restarts=\) are used up$")
    # The restarted memcheck passed (a pass after the restart), and is still running: stop it.
    c.pos = 0
    c.expect(RESTARTED("mc", 1, "asked by the monitor"))
    c.expect(GUEST_SAYS("mc", r"memcheck: \d+ MiB intact"))
    c.pos = len(c.text)
    c.send(ESC + "m")
    c.expect(r"^\[cpu\d+\] hv: console: focus on the monitor")
    c.command("stop mc")
    c.expect(GUEST_STOPPED("mc", "by the monitor"))
    c.expect(ALL_DONE)
    return None


def fuzz_session(seconds: float):
    """Random bytes and overlong lines on the console, biased towards what the input paths parse
    (Ctrl-], CR, DEL, escape sequences, long printable runs), to the monitor and to the echo guest;
    then the monitor and the guest must still answer. The amount is fixed (400 bytes per second of
    `seconds`, what Bochs's UART takes on an idle machine) and so is the seed: the same bytes every
    run, whatever the host's speed; a slow host only takes longer to read them."""
    def session(c) -> Optional[str]:
        import random
        rng = random.Random(int(os.environ.get("TESSERA_FUZZ_SEED", "9")))
        c.expect(READY)
        c.expect(GUEST_SAYS("echo", r"echo: ready"))
        budget = int(seconds * 400)
        sent = 0
        while sent < budget:
            kind = rng.random()
            if kind < 0.35:
                chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40)))
            elif kind < 0.55:
                chunk = bytes(rng.randrange(0x20, 0x7f) for _ in range(rng.randrange(100, 400))) + b"\r"
            elif kind < 0.7:
                chunk = ESC.encode() + bytes([rng.choice(b"mnp12?h\x1d\x00\xff")])
            elif kind < 0.85:
                chunk = rng.choice([b"\x1b[A", b"\x1b[1;5C", b"\x1bO", b"\x1b", b"\x7f" * 5, b"\x15", b"\x17",
                                    b"\r\n", b"\n\r", b"\x03", b"\x0c", b"\x08"])
            else:
                chunk = rng.choice([b"guests", b"regs echo", b"ept echo 0x", b"gva", b"mem", b"help",
                                    b"exits mc", b"log 2"]) + bytes([rng.choice(b" 0x9\r")])
            c.send(chunk)
            sent += len(chunk)
            time.sleep(len(chunk) / 400.0)        # about 400 bytes/s: what Bochs's UART takes
        # Still alive: the monitor answers, the echo guest echoes (bounded by the scenario's time: the
        # input may still be queued on a slow host). Searched from here, after a command the fuzz
        # cannot type (its answers to the fuzz's own `guests` and focus keys would match otherwise).
        c.pos = len(c.text)
        c.send("\x15" + ESC + "m\x15")
        c.command("regs fuzz-ended")
        c.expect(ANSWER + r"error: no guest 'fuzz-ended' ")
        c.command("guests")
        c.expect(ANSWER + r"1\s+echo\s+1@0\s+16M\s+")
        c.send(ESC + "1\x15ping\r")
        c.expect(GUEST_SAYS("echo", r"echo: got 'ping' \(4 bytes\)$"))
        c.send(ESC + "m\x15")
        c.command("stop echo")
        c.expect(GUEST_STOPPED("echo", "by the monitor"))
        c.expect(ALL_DONE)
        return None
    return session


def busy_monitor_session(rounds: int):
    """Monitor commands back to back (each reads the other CPU's VMCS or walks the EPT) while a two-vCPU
    guest on two CPUs ends and restarts: at least `rounds` rounds of five, then on until the guest has
    restarted three times. The guest must keep making progress (the monitor takes one command per
    scheduler pass) and nothing may break. Counted in commands and restarts, not seconds: a slow host
    makes the session longer, never a failure (a guest starved by the monitor ends at the timeout)."""
    def session(c) -> Optional[str]:
        c.expect(BANNER)
        restarted = re.compile(RESTARTED("smp", 3, "exited: code=0"), re.M)
        n = 0
        while n < rounds or not restarted.search(c.text):
            for cmd in ("regs smp 1", "gva smp 1 0x100000", "regs smp", "ept smp 0x100000", "guests"):
                c.command(cmd)
            n += 1
        c.pos = len(c.text)
        c.command("poweroff")
        c.expect(r"hv: powering off \(monitor\)")
        return None
    return session


def exception_loop_session(loop: str, cpu: int):
    """A guest caught in an exception loop (exc do=acloop, crash64 do=dbloop) beside memcheck on `cpu`. Without
    the #AC/#DB intercepts the looping delivery never leaves the guest (CVE-2015-5307, CVE-2015-8104):
    the CPU is lost to the host. With them, memcheck finishes, the monitor reads the looping guest's
    registers and exits (the exception exits counted) and stops it."""
    def session(c) -> Optional[str]:
        c.expect(BANNER)
        c.expect(GUEST_SAYS(loop, r"(exc|crash64): entering the #(AC|DB) loop$"))
        start = c.pos
        c.command("regs %s" % loop)
        c.expect(ANSWER + r"guest %s vCPU 0 on cpu %d:$" % (loop, cpu))
        c.expect(ANSWER + r"rip [0-9a-f]{16} rsp [0-9a-f]{16} rflags [0-9a-f]{16}$")
        c.pos = start                   # memcheck may have finished before `regs` was typed
        c.expect(GUEST_SAYS("mc", r"memcheck: \d+ MiB intact"), timeout=240)
        c.expect(GUEST_EXITED("mc", 0))
        c.command("exits %s" % loop)
        m = c.expect(ANSWER + r"guest %s exits: total \d+, .*\bexception or NMI (\d+)[,\r\n]" % loop)
        if int(m.group(1)) < 2:
            return "exits %s: %s exception exits, want the loop's (2 or more)" % (loop, m.group(1))
        c.command("stop %s" % loop)
        c.expect(GUEST_STOPPED(loop, "by the monitor"))
        c.expect(ALL_DONE)
        return None
    return session


def exception_loop(name: str, loop: str, looper: str, cpu: int = 0, **kw) -> Scenario:
    """The looping guest `looper` do=`loop` (named so too) beside memcheck on CPU `cpu`, driven by
    exception_loop_session. Bochs logs every #AC and #DB (error level) and every VM entry's "Clear
    Virtual Interrupt Vector" (info level): megabytes a second of log, hence the log options."""
    return bochs_vmx(name, cpus=cpu + 1, timeout=300, session=exception_loop_session(loop, cpu),
                     bochs_options=["error: action=ignore", "info: action=ignore"],
                     modules=[guest(looper, "name=%s cpu=%d mem=4M do=%s" % (loop, cpu, loop)),
                              guest("memcheck", "name=mc cpu=%d mem=16M yields=8" % cpu)],
                     expect=[GUEST_EXITED("mc", 0), GUEST_STOPPED(loop, "by the monitor"), ALL_DONE],
                     forbid=[NO_VIRT, GUEST_SAYS("mc", ".*FAIL"), GUEST_SAYS(loop, "%s: still running" % looper)],
                     **kw)


FUZZ_SECONDS = float(os.environ.get("TESSERA_FUZZ_SECONDS", "25"))

SCENARIOS += [
    # The monitor with no virtualization to run guests (QEMU's qemu64 without its SVM, which since shadow
    # paging on SVM runs guests, svm-shadow-qemu64): up to "no virtualization", the console stays (no
    # poweroff=1).
    Scenario("console-monitor-qemu", emulator="qemu", cpus=2, mem=128, needs_vmx=True, poweroff=False,
             qemu_cpu="qemu64,-svm",
             timeout=QEMU_TIMEOUT, session=monitor_basics_session, end=r"hv: powering off \(monitor\)",
             expect=[CONSOLE_BY_IRQ, NO_VIRT, READY, BANNER, r"^\[cpu\d+\] hv> poweroff$"]),
    # The same with input polled (console_irq=0: the fallback where there is no I/O APIC).
    Scenario("console-polled-qemu", emulator="qemu", cpus=1, mem=128, needs_vmx=True, poweroff=False,
             qemu_cpu="qemu64,-svm", cmdline="console_irq=0", timeout=QEMU_TIMEOUT, session=monitor_polled_session,
             end=r"hv: powering off \(monitor\)",
             expect=[CONSOLE_POLLED, NO_VIRT, READY, BANNER, r"^\[cpu\d+\] hv> poweroff$"]),
    Scenario("console-reboot-qemu", emulator="qemu", cpus=1, mem=128, needs_vmx=True, poweroff=False,
             timeout=QEMU_TIMEOUT, session=reboot_session, end=None,
             expect=[Expect(r"hv: tessera hypervisor starting", count=1), r"hv: rebooting \(monitor\)"]),
    # Everything with guests, over the real serial line of Bochs.
    bochs_vmx("console-session-bochs", cpus=2, timeout=600, session=guest_session,
              modules=[guest("echo", "name=echo cpu=0 mem=16M on-exit=restart restarts=2"),
                       guest("memcheck", "name=mc cpu=1 mem=32M yields=8 passes=0")],
              expect=[CONSOLE_BY_IRQ, RESTARTED("mc", 1, "asked by the monitor"), Expect(GUEST_SAYS("mc", r"memcheck: \d+ MiB intact"), min=1),
                      GUEST_STOPPED("mc", "by the monitor"), ALL_DONE],
              forbid=[NO_VIRT, GUEST_SAYS("mc", ".*FAIL")], check=memory_returned),
    # The same session on SVM (Bochs ryzen): the monitor reads vCPU state from the VMCB (svm/snapshot.c),
    # walks the NPT-format map, types to the echo guest through its UART interrupt (EVENTINJ).
    Scenario("svm-console-session-bochs-ryzen", emulator="bochs", cpus=2, mem=256, cpu_model="ryzen",
             timeout=600, session=guest_session,
             modules=[guest("echo", "name=echo cpu=0 mem=16M on-exit=restart restarts=2"),
                      guest("memcheck", "name=mc cpu=1 mem=32M yields=8 passes=0")],
             expect=[CONSOLE_BY_IRQ, RESTARTED("mc", 1, "asked by the monitor"),
                     Expect(GUEST_SAYS("mc", r"memcheck: \d+ MiB intact"), min=1),
                     GUEST_STOPPED("mc", "by the monitor"), ALL_DONE],
             forbid=[NO_VIRT, GUEST_SAYS("mc", ".*FAIL"), r"hv: panic"], check=memory_returned),
    # The echo guest (32-bit paging of its own, the UART's interrupt, HLT) with paging=shadow: typed
    # lines come back; `gva` walks the guest's tables and shows the shadow leaf the CPU walks, whose
    # HPA is the EPT twin's; `regs` shows the guest's own CR3, not the shadow root; `mem` the shadow
    # tables; a restart (on-exit=restart: `quit` ends it) builds it again on shadow paging.
    bochs_vmx("vmx-shadow-console", cpus=1, timeout=600, session=lambda c: shadow_session(c),
              modules=[guest("echo", "name=echo mem=16M paging=shadow")],
              expect=[GUEST_STOPPED("echo", "by the monitor"), ALL_DONE],
              forbid=[NO_VIRT, r"hv: exception"], check=memory_returned),
    # The same session on Bochs's penryn (no EPT, no preemption timer): the console's interrupt and the
    # host's APIC timer bring CPU 0 back from the guests, spin (IF = 1) computing beside echo.
    Scenario("vmx-shadow-console-penryn", emulator="bochs", cpus=1, mem=128, cpu_model="core2_penryn_t9600",
             timeout=600, session=lambda c: shadow_session(c),
             modules=[guest("echo", "name=echo mem=16M"), guest("spin", "name=spin mem=4M loops=20000000 sti=1")],
             expect=[GUEST_STOPPED("echo", "by the monitor"), GUEST_EXITED("spin", 0),
                     r"hv: guest spin exits: .*preemption \d+", ALL_DONE],
             forbid=[NO_VIRT, r"hv: exception"], check=memory_returned),
    # The same session on SVM's shadow paging (QEMU EPYC, paging=shadow: svm/spt.c): `regs` reads the
    # guest's CR0/CR3 kept beside the VMCB (whose own hold the CPU's: PG and WP forced, the shadow
    # root), `gva` the shadow leaf of the root the VMCB's CR3 names, `mem` the shadow tables.
    Scenario("svm-shadow-console-qemu", emulator="qemu", cpus=1, mem=128, needs_vmx=True, qemu_cpu="EPYC",
             timeout=QEMU_TIMEOUT, session=lambda c: shadow_session(c),
             modules=[guest("echo", "name=echo mem=16M paging=shadow")],
             expect=[GUEST_STOPPED("echo", "by the monitor"), ALL_DONE],
             forbid=[NO_VIRT, r"hv: exception", r"unexpected #VMEXIT", r"hv: panic"], check=memory_returned),
    # Exception loops (issue 14, item 3): a guest whose #AC or #DB delivery raises the same exception
    # again beside memcheck on one CPU; memcheck finishes, the monitor answers and stops the looper.
    exception_loop("exception-loop-ac", "acloop", "exc"),
    exception_loop("exception-loop-db", "dbloop", "crash64"),
    # ... on CPU 1, the monitor on CPU 0: `regs` and `stop` are cross-CPU calls to the looping CPU.
    exception_loop("exception-loop-ac-cpu1", "acloop", "exc", cpu=1, not_on_svm=BOCHS_RYZEN_IF0,
                   not_on_qemu_svm="QEMU 7.2's TCG raises no #AC (the loop's misaligned access ran: "
                                   "no exception exit)"),
    # The same loops on SVM (Bochs ryzen; QEMU 7.2 raises no #AC, and its data breakpoint loop ends in
    # an assertion inside QEMU): #AC and #DB are intercepted there too (svm/vcpu.c, vmcb_setup).
    *[Scenario("svm-exception-loop-%s-bochs-ryzen" % kind, emulator="bochs", cpu_model="ryzen", cpus=1, mem=128,
               timeout=300, session=exception_loop_session(loop, 0),
               bochs_options=["error: action=ignore", "info: action=ignore"],
               modules=[guest(looper, "name=%s cpu=0 mem=4M do=%s" % (loop, loop)),
                        guest("memcheck", "name=mc cpu=0 mem=16M yields=8")],
               expect=[GUEST_EXITED("mc", 0), GUEST_STOPPED(loop, "by the monitor"), ALL_DONE],
               forbid=[NO_VIRT, GUEST_SAYS("mc", ".*FAIL"), GUEST_SAYS(loop, "%s: still running" % looper)])
      for kind, loop, looper in (("ac", "acloop", "exc"), ("db", "dbloop", "crash64"))],
    # Restart policies without a console: a crashing guest restarts three times, then stays stopped; a
    # guest that exits restarts twice; memcheck beside them stays intact; memory free after = before.
    bochs_vmx("restart-policies", not_on_svm=BOCHS_RYZEN_TRIPLE, cpus=2, timeout=300,
              modules=[guest("crash", "name=crash cpu=0 mem=16M do=triple on-crash=restart restarts=3"),
                       guest("hello", "name=hello cpu=0 mem=16M on-exit=restart restarts=2"),
                       guest("memcheck", "name=mc cpu=1 mem=32M yields=16")],
              expect=[Expect(GUEST_STOPPED("crash", r"triple fault, rip 0x[0-9a-f]+"), count=4),
                      Expect(RESTARTED("crash", 1, r"stopped: triple fault, rip 0x[0-9a-f]+"), count=1),
                      Expect(RESTARTED("crash", 3, r"stopped: triple fault, rip 0x[0-9a-f]+"), count=1),
                      r"^\[cpu\d+\] hv: guest crash not restarted: its 3 restarts \(restarts=\) are used up$",
                      Expect(GUEST_EXITED("hello", 0), count=3), Expect(RESTARTED("hello", 2, "exited: code=0"), count=1),
                      Expect(GUEST_STARTED("crash"), count=4), GUEST_EXITED("mc", 0), ALL_DONE],
              forbid=[NO_VIRT, GUEST_SAYS("mc", ".*FAIL"), r"hv: guest crash restarted \(4\)"], check=memory_returned),
    # The monitor busy beside a guest restarting on two CPUs.
    bochs_vmx("console-busy-restarts", cpus=2, timeout=1500, session=busy_monitor_session(8), poweroff=False,
              end=None, modules=[guest("smp", "name=smp vcpus=2 cpu=0,1 mem=16M cpus=2 count=2000 "
                                             "on-exit=restart restarts=1000")],
              expect=[RESTARTED("smp", 3, "exited: code=0"), r"hv: powering off \(monitor\)"],
              forbid=[NO_VIRT, r"hv: exception", GUEST_SAYS("smp", ".*FAIL")]),
    # Fuzzed input for FUZZ_SECONDS (TESSERA_FUZZ_SECONDS=60 for a minute): no crash, no hang.
    bochs_vmx("console-fuzz", cpus=2, timeout=6 * FUZZ_SECONDS + 450, session=fuzz_session(FUZZ_SECONDS),
              modules=[guest("echo", "name=echo cpu=0 mem=16M"),
                       guest("memcheck", "name=mc cpu=1 mem=16M yields=4")],
              expect=[GUEST_EXITED("mc", 0), GUEST_STOPPED("echo", "by the monitor"), ALL_DONE],
              forbid=[NO_VIRT, GUEST_SAYS("mc", ".*FAIL")], check=memory_returned),
]


# --- Linux: Debian 12's own kernel, unmodified (make linux-guest fetches it into build/linux/) ---------

def linux_kernel(args: str) -> Module:
    return Module("build/linux/vmlinuz", args)


def linux_initrd(owner: str) -> Module:
    return Module("build/linux/initrd.gz", "for=" + owner)


LINUX_ARGS = "console=ttyS0 quiet 8250.nr_uarts=1 cryptomgr.notests"


LINUX_PROMPT = r"linux# "
LINUX_IDLE_WAIT_S = 4  # seconds of host time between the two `exits linux` answers of linux-shell


# The shell's prompt as the console shows it: the guest's unfinished last line, drawn as the tail
# while the focus is on the guest, with ash's cursor-position query (ESC [6n, its ESC shown as '\x1b')
# after it: "[linux] linux# \x1b[6n", then nothing more on that line.
LINUX_PROMPT_TAIL = r"^\[linux\] " + LINUX_PROMPT + r"(?:\\x1b\[6n)?$"


def linux_shell_session(c) -> Optional[str]:
    """linux-shell: commands typed to Linux's shell come back answered, Ctrl-C interrupts a command, the
    monitor's `exits linux` twice while the shell is idle, `exit` ends the guest cleanly. Every step
    waits for what Linux prints when it is ready for the next (its prompt; the line a command prints
    once it runs), never for a time: the host may run Bochs at any speed."""
    c.expect(READY)
    c.expect(GUEST_SAYS("linux", r"linux: shell on the console"))
    c.send(ESC + "1")
    c.expect(r"^\[cpu\d+\] hv: console: focus on guest linux \(1\)")
    c.expect(LINUX_PROMPT_TAIL)
    c.send("echo sum=$((6*7))\r")
    c.expect(GUEST_SAYS("linux", r"sum=42\r?$"))
    c.send("uname -r\r")
    c.expect(GUEST_SAYS("linux", r"6\.1\.\S+-cloud-amd64\r?$"))
    # Ctrl-C: the 16550's byte becomes SIGINT for the foreground command (the tty's ISIG); the shell
    # reports status 130 (128 + SIGINT). The command says when it runs (a Ctrl-C before that would
    # hit the shell's prompt instead): from then on it is the foreground process group, as the
    # `sleep` it becomes, and SIGINT ends either with status 130.
    c.send("sh -c 'echo sleeping; exec sleep 1000'\r")
    c.expect(GUEST_SAYS("linux", r"sleeping\r?$"))
    c.send("\x03")
    c.expect(LINUX_PROMPT_TAIL)   # the prompt again: SIGINT's flush of the input is over
    c.send("echo status=$?\r")
    c.expect(GUEST_SAYS("linux", r"status=130\r?$"))
    # Idle at the prompt: exits counted by the monitor a few seconds apart.
    c.send(ESC + "m")
    c.expect(r"^\[cpu\d+\] hv: console: focus on the monitor")
    for _ in range(2):
        c.command("exits linux")
        c.expect(ANSWER + r"guest linux exits: total \d+")
        c.expect(ANSWER + r"at TSC \d+ \(\d+ kHz\)$")
        time.sleep(LINUX_IDLE_WAIT_S)
    c.send(ESC + "1")
    c.expect(r"^\[cpu\d+\] hv: console: focus on guest linux \(1\)")
    c.expect(LINUX_PROMPT_TAIL)
    c.send("exit\r")
    return None


# The clock sources Linux may keep time with under QEMU's TCG (svm-linux-1vcpu-qemu says why).
TCG_CLOCKSOURCE = r"linux: clocksource (tsc|tsc-early|acpi_pm)$"


def LINUX_OK(name: str, nproc: int):
    return [GUEST_SAYS(name, r"linux: init started"), GUEST_SAYS(name, r"linux: kernel 6\.1\.\S+-cloud-amd64"),
            GUEST_SAYS(name, r"linux: nproc %d$" % nproc),
            GUEST_SAYS(name, r"linux: checksum ([0-9a-f]{32}) \(want \1\)$"),
            GUEST_SAYS(name, r"linux: firmware complaints 0$"),
            GUEST_SAYS(name, r"linux: init done"), GUEST_EXITED(name, 0)]


SCENARIOS += [
    # Beside it a memcheck stays intact; Linux's ACPI code takes the tables without a complaint.
    bochs_vmx("linux-1vcpu", cpus=1, mem=512, timeout=LINUX_TIMEOUT,
              modules=[linux_kernel("name=linux mem=128M " + LINUX_ARGS), linux_initrd("linux"),
                       guest("memcheck", "name=mc mem=16M yields=4")],
              expect=LINUX_OK("linux", 1) + [GUEST_SAYS("linux", r"linux: clocksource tsc$"),
                                              GUEST_SAYS("linux", r"linux: clockevent lapic")] + MEMCHECK_OK("mc"),
              forbid=[NO_VIRT, GUEST_SAYS("linux", r".*(ACPI (Warning|Error|BIOS)|Firmware (Bug|Warn))")],
              check=memory_returned),
    # On first touch (alloc=demand): how much memory a booted Linux touches is in its memory line.
    bochs_vmx("linux-demand", cpus=1, mem=512, timeout=LINUX_TIMEOUT,
              modules=[linux_kernel("name=linux mem=128M alloc=demand " + LINUX_ARGS), linux_initrd("linux")],
              expect=LINUX_OK("linux", 1) + [r"hv: guest linux memory: touched \d+(\.\d+)? MiB of 128 MiB"],
              check=memory_returned),
]

SCENARIOS += [
    # Two vCPUs on two host CPUs: the APs come up by INIT-SIPI-SIPI from the MADT's local APICs (Linux
    # sends the Start-up IPIs microseconds after the INIT: a race with the INIT's APIC reset lost them).
    bochs_vmx("linux-2vcpus", cpus=2, mem=512, timeout=LINUX_TIMEOUT,
              modules=[linux_kernel("name=linux vcpus=2 cpu=0,1 mem=128M " + LINUX_ARGS), linux_initrd("linux")],
              expect=LINUX_OK("linux", 2) + [GUEST_SAYS("linux", r"linux: clocksource tsc$")]),
    # A model without the APIC-virtualization controls (Sandy Bridge: no TPR shadow use, no APIC-register
    # virtualization or virtual-interrupt delivery; the vmx-sandy-bridge scenario names its capability
    # MSRs): every APIC access of both vCPUs, the AP's INIT-SIPI-SIPI and the IPIs, is emulated.
    bochs_vmx("linux-2vcpus-sandy-bridge", cpus=2, mem=512, timeout=LINUX_TIMEOUT, cpu_model="corei7_sandy_bridge_2600k",
              modules=[linux_kernel("name=linux vcpus=2 cpu=0,1 mem=128M " + LINUX_ARGS), linux_initrd("linux")],
              expect=[r"hv: vmx: .*APIC virtualization off, x2APIC virtualization off$"] + LINUX_OK("linux", 2) +
                     [GUEST_SAYS("linux", r"linux: clockevent lapic")]),
    # Typed into Linux over the serial line: /init's shell (shell=1) on the guest's 16550, its receive
    # interrupt, the tty's line discipline and Ctrl-C; the monitor's exit counts a few seconds apart
    # while the shell waits (make bench reads them from this log: idle exits per second at the shell).
    bochs_vmx("linux-shell", cpus=2, mem=512, timeout=LINUX_TIMEOUT, session=linux_shell_session,
              modules=[linux_kernel("name=linux cpu=1 mem=128M shell=1 " + LINUX_ARGS), linux_initrd("linux")],
              expect=[CONSOLE_BY_IRQ, GUEST_SAYS("linux", r"linux: init done"), GUEST_EXITED("linux", 0)]),
    # No ACPI: the legacy PC (8259A pair, PIT, the UART on IRQ 4 through the PIC), one CPU.
    bochs_vmx("linux-acpi-off", cpus=1, mem=512, timeout=LINUX_TIMEOUT,
              modules=[linux_kernel("name=linux mem=128M acpi=off " + LINUX_ARGS), linux_initrd("linux")],
              expect=[GUEST_SAYS("linux", r"linux: init started"), GUEST_SAYS("linux", r"linux: nproc 1$"),
                      GUEST_SAYS("linux", r"linux: init done")]),
]

def linux_tsc_agrees(log: str) -> Optional[str]:
    """The TSC frequency Linux calibrated ('tsc: Detected X MHz processor') is the hypervisor's (`hv: tsc
    N kHz`) within 1%: the guest's PIT and TSC agree as on hardware."""
    hv = re.search(r"hv: tsc (\d+) kHz", log)
    guest = re.search(r"tsc: Detected (\d+\.\d+) MHz processor", log)
    if not hv or not guest:
        return "no 'hv: tsc' or no 'tsc: Detected' line"
    khz, mhz = int(hv.group(1)), float(guest.group(1))
    if abs(mhz * 1000 - khz) > khz / 100:
        return "Linux calibrated %.3f MHz, the hypervisor measured %d kHz" % (mhz, khz)
    return None


SCENARIOS += [
    # Debian's kernel on SVM (issue 15), as linux-acpi-off: the legacy PC (8259A pair, PIT), one CPU. On
    # an AuthenticAMD CPU Linux reads no CPUID leaf for the TSC's frequency (0x15 is Intel's) and
    # calibrates it against the PIT: channel 2 in mode 0, OUT2 in port 0x61, read in a loop of IN
    # exits, against the guest TSC (pit_calibrate_tsc). The frequency it finds must be the host's within
    # 1% (linux_tsc_agrees; Bochs ryzen: 99.954 MHz against 99993 kHz measured). With ACPI: the
    # svm-linux-* scenarios below (the tables were hardware-reduced once, and Linux then dropped the PIT
    # and had nothing to calibrate against: docs/hardware.md).
    Scenario("svm-linux-acpi-off-bochs-ryzen", emulator="bochs", cpus=1, mem=512, cpu_model="ryzen",
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux mem=128M acpi=off " + LINUX_ARGS.replace("quiet", "ignore_loglevel")),
                      linux_initrd("linux")],
             expect=[GUEST_SAYS("linux", r"\[ *[\d.]+\] tsc: Using PIT calibration value"),
                     GUEST_SAYS("linux", r"linux: init started"), GUEST_SAYS("linux", r"linux: nproc 1$"),
                     GUEST_SAYS("linux", r"linux: firmware complaints 0$"), GUEST_SAYS("linux", r"linux: init done")],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic", r"Firmware Bug", r"unchecked MSR access"],
             check=linux_tsc_agrees),
    # The same under QEMU's TCG (EPYC), without the calibration: there an IN exit takes tens of
    # microseconds of the real time QEMU's TSC and PIT both count, too slow for pit_calibrate_tsc's 1000
    # reads in 10 ms ('Unable to calibrate against PIT'; Linux then keeps time with jiffies from the
    # PIT's interrupt), and how slow depends on the host.
    Scenario("svm-linux-acpi-off-qemu", emulator="qemu", qemu_cpu="EPYC", needs_vmx=True, cpus=1, mem=512,
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux mem=128M acpi=off " + LINUX_ARGS), linux_initrd("linux")],
             expect=[GUEST_SAYS("linux", r"linux: init started"), GUEST_SAYS("linux", r"linux: nproc 1$"),
                     GUEST_SAYS("linux", r"linux: firmware complaints 0$"), GUEST_SAYS("linux", r"linux: init done")],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic"]),
]


def linux_svm_checks(log: str) -> Optional[str]:
    """The calibrated TSC agrees with the hypervisor's, and the memcheck's memory came back."""
    return linux_tsc_agrees(log) or memory_returned(log)


# What no Linux guest on SVM may show: the hypervisor's end, an exit it does not know, the kernel's
# complaints about an MSR it was refused or about the ACPI tables and firmware it was given.
SVM_LINUX_FORBID = [NO_VIRT, r"unexpected #VMEXIT", r"hv: panic", r"unchecked MSR access",
                    GUEST_SAYS("linux", r".*(ACPI (Warning|Error|BIOS)|Firmware (Bug|Warn))")]

SCENARIOS += [
    # Debian's kernel with ACPI on SVM, as linux-1vcpu and linux-2vcpus on VMX. The tables describe a PC
    # that is not hardware-reduced (loader/acpi.h): the 8259A pair, the PIT, the ACPI PM timer
    # (vdev/pmtimer.c). On an AuthenticAMD CPU no CPUID leaf gives the TSC's rate: Linux calibrates it
    # against the PIT and checks that against the PM timer ('PIT calibration matches PMTIMER'), then
    # the local APIC timer against the PIT's tick. ignore_loglevel shows those lines.
    Scenario("svm-linux-1vcpu-bochs-ryzen", emulator="bochs", cpus=1, mem=512, cpu_model="ryzen",
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux mem=128M " + LINUX_ARGS.replace("quiet", "ignore_loglevel")),
                      linux_initrd("linux"), guest("memcheck", "name=mc mem=16M yields=4")],
             expect=[GUEST_SAYS("linux", r"\[ *[\d.]+\] tsc: PIT calibration matches PMTIMER"),
                     GUEST_SAYS("linux", r"\[ *[\d.]+\] clocksource: acpi_pm: mask: 0xffffff ")] +
                    LINUX_OK("linux", 1) + [GUEST_SAYS("linux", r"linux: clocksource tsc$"),
                                            GUEST_SAYS("linux", r"linux: clockevent lapic")] + MEMCHECK_OK("mc"),
             forbid=SVM_LINUX_FORBID,
             check=linux_svm_checks),
    # Under QEMU's TCG (EPYC): the PIT calibration fails there (an IN exit takes tens of microseconds of
    # the real time QEMU's TSC and PIT both count: svm-linux-acpi-off-qemu), and Linux falls back on the
    # PM timer's reference ('using PMTIMER reference calibration'), which counts from the same TSC
    # (2653.551 MHz against 2653618 kHz measured). The clocksource is not asserted: before acpi_pm
    # registers, the watchdog compares the TSC with refined-jiffies, whose PIT ticks TCG delivers late
    # and coalesced (vdev/pit.c), and may mark the TSC unstable; Linux then keeps time with acpi_pm.
    # The TSC is still 'tsc-early' when init runs less than a second (in real time, under TCG) after
    # the refined calibration began (arch/x86/kernel/tsc.c, tsc_refine_calibration_work measures over
    # HZ before it registers 'tsc'), which a faster host makes likelier: a CI run failed on this line
    # with a value outside (tsc|acpi_pm) that its output did not show (the runner now prints the
    # closest line). Any of the three is a hardware clock the platform provides; jiffies is the failure
    # this line is for.
    Scenario("svm-linux-1vcpu-qemu", emulator="qemu", qemu_cpu="EPYC", needs_vmx=True, cpus=1, mem=512,
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux mem=128M " + LINUX_ARGS.replace("quiet", "ignore_loglevel")),
                      linux_initrd("linux")],
             # How Linux calibrates is not asserted either: under TCG every method can miss its window
             # on a busy host ('HPET/PMTIMER calibration failed' with 2 busy loops beside); Bochs's
             # instruction-exact twin, svm-linux-1vcpu-bochs-ryzen, asserts the PM timer's match.
             expect=LINUX_OK("linux", 1) + [GUEST_SAYS("linux", TCG_CLOCKSOURCE)],
             forbid=SVM_LINUX_FORBID,
             check=memory_returned),
    # The same kernel on SVM's shadow paging (svm/spt.c): its CR3 switches, INVLPGs decoded without decode
    # assists, its #PFs given back, the local APIC and I/O APIC through the shadow's GPA faults.
    Scenario("svm-shadow-linux-1vcpu-qemu", emulator="qemu", qemu_cpu="EPYC", needs_vmx=True, cpus=1, mem=512,
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux mem=128M paging=shadow " + LINUX_ARGS.replace("quiet", "ignore_loglevel")),
                      linux_initrd("linux")],
             expect=[r"^\[cpu\d+\] hv: guest linux started: .*, shadow$"] + LINUX_OK("linux", 1) +
                    [GUEST_SAYS("linux", TCG_CLOCKSOURCE), GUEST_SAYS("linux", r"linux: pcid yes$")],
             forbid=SVM_LINUX_FORBID,
             check=memory_returned),
    # The same on Bochs ryzen, instruction-exact: PCID is offered on shadow paging though ryzen has none
    # (vcpu/cpuid.c), and Linux's MOV to CR4 setting PCIDE, which the CPU faults before its CR4
    # intercept (APM Vol. 2, 15.9, Table 15-7), reaches the hypervisor through the #GP intercept
    # (svm/spt.c). Its CR3 writes that keep
    # their PCID's translations then take the cached root as it is (vcpu/spt.c): to /init in 1018 M
    # instructions, 3095 M without PCID (make bench K=paging-linux-svm). 25 s.
    Scenario("svm-shadow-linux-1vcpu-bochs-ryzen", emulator="bochs", cpus=1, mem=512, cpu_model="ryzen",
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux mem=128M paging=shadow " + LINUX_ARGS), linux_initrd("linux")],
             expect=[r"^\[cpu\d+\] hv: guest linux started: .*, shadow$"] + LINUX_OK("linux", 1) +
                    [GUEST_SAYS("linux", r"linux: pcid yes$"), GUEST_SAYS("linux", r"linux: clocksource tsc$")],
             forbid=SVM_LINUX_FORBID,
             check=memory_returned),
    Scenario("svm-linux-2vcpus-qemu", emulator="qemu", qemu_cpu="EPYC", needs_vmx=True, cpus=2, mem=512,
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux vcpus=2 cpu=0,1 mem=128M " + LINUX_ARGS), linux_initrd("linux")],
             expect=LINUX_OK("linux", 2) + [GUEST_SAYS("linux", TCG_CLOCKSOURCE)],
             forbid=SVM_LINUX_FORBID),
    # The same kernel with two vCPUs on SVM's shadow paging (twin of vmx-shadow-linux-2vcpus): the AP
    # starts in real mode, which runs as paged real mode on the shadow's paging-off root (svm/spt.c)
    # where VMX emulates it in virtual-8086 mode; each vCPU has its own shadow.
    Scenario("svm-shadow-linux-2vcpus-qemu", emulator="qemu", qemu_cpu="EPYC", needs_vmx=True, cpus=2, mem=512,
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux vcpus=2 cpu=0,1 mem=128M paging=shadow " + LINUX_ARGS),
                      linux_initrd("linux")],
             expect=[r"^\[cpu\d+\] hv: guest linux started: .*, shadow$"] + LINUX_OK("linux", 2) +
                    [GUEST_SAYS("linux", TCG_CLOCKSOURCE)],
             forbid=SVM_LINUX_FORBID,
             check=memory_returned),
    Scenario("svm-linux-2vcpus-bochs-ryzen", emulator="bochs", cpus=2, mem=512, cpu_model="ryzen",
             timeout=LINUX_TIMEOUT,
             modules=[linux_kernel("name=linux vcpus=2 cpu=0,1 mem=128M " + LINUX_ARGS), linux_initrd("linux")],
             expect=LINUX_OK("linux", 2) + [GUEST_SAYS("linux", r"linux: clocksource tsc$")],
             forbid=SVM_LINUX_FORBID),
]


# --- boot protocols: a synthetic bzImage and damaged copies of it (tests/lib/bzimage.py) ---------------
# The images are made here, at import, from tests/data/bzstub.asm (nasm), into build/bzimage/: no Linux
# kernel is needed. Each damaged copy must be refused with its exact reason (loader/linux.c, after
# Documentation/arch/x86/boot.rst), the valid one must run (its 32-bit entry checks boot_params), and a
# memcheck beside them all stays intact.
from lib import bzimage  # noqa: E402

try:
    BZ = bzimage.write_all(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                        "build", "bzimage"))
except Exception as _e:    # nasm missing: the scenario then fails on its missing modules
    sys.stderr.write("scenarios: cannot make the synthetic bzImages: %s\n" % _e)
    BZ = {n: "build/bzimage/%s.bz" % n for n in ["good"] + list(bzimage.DAMAGE) + list(bzimage.ACCEPTED)}

BZ_REFUSED = {
    "bootflag": "Linux boot_flag at 0x1fe is 0x0, not 0xaa55",
    "proto202": "Linux boot protocol 2.02 is older than 2.03, the oldest we load",
    "jump": "Linux setup header ends at 0x212 (jump 0xeb 0x10): protocol 2.12 needs 0x264 to 0x290",
    "zimage": "Linux image is a zImage (loadflags bit 0 clear); only bzImages load",
    "setupsects": "Linux file is truncated: its setup code (200 sectors) ends at 0x19200, the file has 1392 bytes",
    "syssize0": "Linux syssize is 0: no protected-mode kernel",
    "truncated": "Linux file is truncated: syssize says 0x170 bytes of kernel from offset 0x400, the file has "
                 "1124 bytes",
    "hdrcut": "Linux setup header (to 0x264) runs past the end of the file (528 bytes)",
    "align": "Linux kernel_alignment 0x3000 is not a power of two",
    "low": "Linux kernel is not relocatable and wants to run at 0x10000, below 1 MiB",
    "initsize": "Linux kernel needs RAM up to 0x10100000 (not relocatable, runs at 0x100000, init_size "
                "0x10000000), more than the guest's 0x1000000 bytes",
    "cmdline4": "command line is 11 bytes; the kernel takes at most 4",
    "initrdmax": "initrd (0x60 bytes) does not fit between the kernel's end 0x110000 and 0x110000 (RAM below the "
                 "hole, initrd_addr_max, 4 GiB)",
}

# Accepted as GRUB's `linux` and QEMU's -kernel accept them (bzimage.ACCEPTED): each boots like bzok.
BZ_BOOTS = ["bzok"] + list(bzimage.ACCEPTED)

# A Linux bzImage with paging=shadow runs with one vCPU and with two (the 32-bit boot protocol's entry
# needs no real mode; an AP would start in virtual-8086 mode, vmx/realmode.c). The same image beside
# them with EPT runs.
SCENARIOS += [
    bochs_vmx("vmx-shadow-bzimage", cpus=1, timeout=180,
              modules=[Module(BZ["good"], "name=bzshadow2 vcpus=2 mem=16M hello=world paging=shadow"),
                       Module(BZ["good"], "name=bzshadow mem=16M hello=world paging=shadow"),
                       Module(BZ["good"], "name=bzok mem=16M hello=world")],
              expect=[r"^\[cpu\d+\] hv: guest bzshadow2 started: .*, shadow$",
                      GUEST_SAYS("bzshadow2", r"bz: boot_params ok, "), GUEST_EXITED("bzshadow2", 0),
                      r"^\[cpu\d+\] hv: guest bzshadow started: .*, shadow$",
                      GUEST_SAYS("bzshadow", r"bz: boot_params ok, "), GUEST_EXITED("bzshadow", 0),
                      GUEST_SAYS("bzok", r"bz: boot_params ok, "), GUEST_EXITED("bzok", 0), ALL_DONE],
              check=memory_returned),
    # On penryn (no EPT) every guest is on shadow paging unasked: a bzImage with 2 vCPUs and one with 1
    # vCPU run, a Multiboot guest beside them too.
    Scenario("vmx-shadow-bzimage-penryn", emulator="bochs", cpus=1, mem=128, cpu_model="core2_penryn_t9600",
             timeout=180,
             modules=[Module(BZ["good"], "name=bz2 vcpus=2 mem=16M hello=world"),
                      Module(BZ["good"], "name=bz mem=16M hello=world"), guest("hello", "name=hello mem=16M")],
             expect=[GUEST_SAYS("bz2", r"bz: boot_params ok, "), GUEST_EXITED("bz2", 0),
                     GUEST_SAYS("bz", r"bz: boot_params ok, "), GUEST_EXITED("bz", 0),
                     GUEST_EXITED("hello", 0), ALL_DONE],
             forbid=[NO_VIRT], check=memory_returned),
    # Debian's kernel on shadow paging, one vCPU, with linux-1vcpu's checks: 4-level paging with PCID,
    # global pages, NX, SMEP/SMAP where the CPU has them, its page-table writes resynced on INVLPG and
    # CR3 writes (shadow/shadow.h).
    bochs_vmx("vmx-shadow-linux-1vcpu", cpus=1, mem=512, timeout=LINUX_TIMEOUT,
              modules=[linux_kernel("name=linux mem=128M paging=shadow " + LINUX_ARGS), linux_initrd("linux"),
                       guest("memcheck", "name=mc mem=16M yields=4")],
              expect=[r"^\[cpu\d+\] hv: guest linux started: .*, shadow$"] + LINUX_OK("linux", 1) +
                     [GUEST_SAYS("linux", r"linux: clocksource tsc$"),
                      GUEST_SAYS("linux", r"linux: clockevent lapic")] + MEMCHECK_OK("mc"),
              forbid=[NO_VIRT, GUEST_SAYS("linux", r".*(ACPI (Warning|Error|BIOS)|Firmware (Bug|Warn))")],
              check=memory_returned),
    # Debian's kernel with two vCPUs on shadow paging, with linux-2vcpus's checks: the AP's start in real
    # mode (Linux's trampoline: LIDT, LGDT, MOV to CR0, a far JMP) runs in virtual-8086 mode (vmx/realmode.c).
    bochs_vmx("vmx-shadow-linux-2vcpus", cpus=2, mem=512, timeout=LINUX_TIMEOUT,
              modules=[linux_kernel("name=linux vcpus=2 cpu=0,1 mem=128M paging=shadow " + LINUX_ARGS),
                       linux_initrd("linux")],
              expect=[r"^\[cpu\d+\] hv: guest linux started: .*, shadow$"] + LINUX_OK("linux", 2) +
                     [GUEST_SAYS("linux", r"linux: clocksource tsc$"),
                      r"^\[cpu\d+\] hv: guest linux real mode: 1 starts in virtual-8086 mode, "],
              check=memory_returned),
    # The same where the CPU decides: Lynnfield (EPT, no unrestricted guest) and Penryn (no EPT, no
    # preemption timer) run every guest on shadow paging unasked.
    *[bochs_vmx(name, cpus=2, mem=512, timeout=LINUX_TIMEOUT, cpu_model=model,
                modules=[linux_kernel("name=linux vcpus=2 cpu=0,1 mem=128M " + LINUX_ARGS), linux_initrd("linux")],
                expect=[r"^\[cpu\d+\] hv: guest linux started: .*, shadow$"] + LINUX_OK("linux", 2) +
                       [r"^\[cpu\d+\] hv: guest linux real mode: 1 starts in virtual-8086 mode, "],
                check=memory_returned)
      for name, model in (("vmx-shadow-linux-2vcpus-lynnfield", "corei5_lynnfield_750"),
                          ("vmx-shadow-linux-2vcpus-penryn", "core2_penryn_t9600"))],
]

SCENARIOS += [
    bochs_vmx("boot-bzimage-damaged", cpus=1, timeout=180,
              modules=[Module(BZ["good"], "name=bzok mem=16M hello=world")] +
                      [Module(BZ[n], "name=%s mem=16M hello=world" % n) for n in bzimage.ACCEPTED] +
                      [Module(BZ[n], "name=%s mem=16M hello=world" % n) for n in BZ_REFUSED] +
                      [data("not-a-kernel.txt", "for=initrdmax"),
                       guest("memcheck", "name=mc mem=16M yields=4")],
              expect=[Expect(NOT_STARTED(n, re.escape("bad image: " + why) + "$"), count=1)
                      for n, why in BZ_REFUSED.items()] +
                     sum([[GUEST_SAYS(n, r"bz: boot_params ok, e820 3 entries, cmdline 'hello=world'$"),
                           GUEST_EXITED(n, 0)] for n in BZ_BOOTS], []) + MEMCHECK_OK("mc") + [ALL_DONE],
              forbid=[NO_VIRT, r"bz: boot_params FAIL",
                      r"hv: guest (?!%s|mc\b)\w+ started: " % "|".join(r"%s\b" % n for n in BZ_BOOTS),
                      r"hv: module \d+ not used"],
              check=memory_returned),
]


# --- boot protocols: Multiboot1 kernels with modules (guests/mb1.c) ---------------------------------------
def fnv1a(path: str) -> int:
    h = 2166136261
    with open(path if os.path.isabs(path) else os.path.join(ROOT, path), "rb") as f:
        for b in f.read():
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def mb1_modules_match(name: str, mods):
    """check(): guest NAME printed one `mb1: module I ... size N fnv1a 0xH cmdline 'S'` line per module of
    `mods` (Module list, in order), each with the size and FNV-1a hash of the file on the host and its
    module line (path left out) as the string."""
    def check(log: str):
        got = re.findall(r"^(?:\[cpu\d+\] )?\[%s\] mb1: module (\d+) at 0x[0-9a-f]+ size (\d+) fnv1a (0x[0-9a-f]+) "
                         r"cmdline '(.*)'$" % re.escape(name), log, re.M)
        if len(got) != len(mods):
            return "%s: %d module lines, want %d" % (name, len(got), len(mods))
        for (i, size, h, line), m in zip(got, mods):
            path = m.path if os.path.isabs(m.path) else os.path.join(ROOT, m.path)
            want = (os.path.getsize(path), fnv1a(path), m.args)
            if (int(size), int(h, 16), line) != want:
                return "%s: module %s is size %s hash %s string %r, want %d 0x%x %r (%s)" % (
                    name, i, size, h, line, want[0], want[1], want[2], m.path)
        return None
    return check


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A gzip file as a module: GRUB inflates it unless the line says --nounzip (the runner's module_line),
# and the guest must get the file's bytes (a Linux initrd is gzip: issue 17).
MB1_GZ = "build/bzimage/good.bz.gz"
try:
    with open(os.path.join(ROOT, BZ["good"]), "rb") as _f:   # join keeps an absolute path as it is
        _gz = gzip.compress(_f.read(), mtime=0)
    with open(os.path.join(ROOT, MB1_GZ), "wb") as _f:
        _f.write(_gz)
except OSError as _e:
    sys.stderr.write("scenarios: cannot make %s: %s\n" % (MB1_GZ, _e))
MB1_ELF_MODS = [data("not-a-kernel.txt", "for=mb1elf first module"), guest("hello", "for=mb1elf"),
                Module(BZ["good"], "for=mb1elf third x=1 y=2"), Module(MB1_GZ, "for=mb1elf gzip")]
MB1_AOUT_MODS = [Module(BZ["initsize"], "for=mb1aout one"), data("not-a-kernel.txt", "for=mb1aout two")]
MB1_LOW_MODS = [data("not-a-kernel.txt", "for=mb1low low one"), Module(BZ["good"], "for=mb1low two")]


def MB1_OK(name: str, mods: int, cmdline: str):
    return [GUEST_SAYS(name, r"mb1: magic 0x2badb002 in EAX .* ok$"),
            GUEST_SAYS(name, r"mb1: flags 0x%x: .* ok$" % (0x245 | (8 if mods else 0))),
            GUEST_SAYS(name, r"mb1: mem_upper 15360 KiB .* ok$"),
            GUEST_SAYS(name, r"mb1: mmap has 3 entries, .* ok$"),
            GUEST_SAYS(name, r"mb1: cmdline '%s' ok$" % re.escape(cmdline)),
            GUEST_SAYS(name, r"mb1: boot loader name 'tessera' ok$"),
            GUEST_SAYS(name, r"mb1: %d modules \(want %d\) ok$" % (mods, mods)),
            GUEST_SAYS(name, r"mb1: \d+ checks, 0 failed$"), GUEST_EXITED(name, 0)]


SCENARIOS += [
    # An ELF32 and an a.out-kludge Multiboot1 kernel, each given modules by for= lines: the information
    # block (flags, mem_lower/mem_upper against the RAM the hypervisor reports, the memory map, the
    # command line, the loader name) and every module's bytes and string, checked against the host files.
    bochs_vmx("boot-multiboot1-modules", cpus=1, timeout=120,
              modules=[guest("mb1", "name=mb1elf mem=16M mods=4 hello=mb1")] + MB1_ELF_MODS +
                      [Module("build/guests/mb1-aout.bin", "name=mb1aout mem=16M mods=2 kludge=1")] + MB1_AOUT_MODS +
                      [guest("mb1", "name=mb1none mem=16M"),
                       # Linked at 0x8000 (as for `qemu -kernel`): over the information block's usual
                       # page; the block goes elsewhere, the modules after the image in low memory.
                       guest("mb1-low", "name=mb1low mem=16M mods=2 low=1")] + MB1_LOW_MODS,
              expect=MB1_OK("mb1elf", 4, "mods=4 hello=mb1") + MB1_OK("mb1aout", 2, "mods=2 kludge=1") +
                     MB1_OK("mb1none", 0, "") + MB1_OK("mb1low", 2, "mods=2 low=1") +
                     [GUEST_SAYS("mb1low", r"mb1: information block at 0x1000, below 640 KiB, outside the image "
                                           r"0x8000-0x[0-9a-f]+ ok$"),
                      r"hv: guest mb1aout started: ", ALL_DONE],
              forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[mb1\w+\] .* FAIL$", r"hv: module \d+ not used"],
              check=all_checks(mb1_modules_match("mb1elf", MB1_ELF_MODS),
                               mb1_modules_match("mb1aout", MB1_AOUT_MODS),
                               mb1_modules_match("mb1low", MB1_LOW_MODS), memory_returned)),
]


# --- the virtual 16550's interrupts and IRQ 4's two routes (guests/uartirq.c) --------------------------
UARTIRQ_FORBID = [NO_VIRT, GUEST_SAYS("uart", r".* FAIL$"), r"hv: guest uart stopped"]


def rx_session(c) -> Optional[str]:
    """Types one line per route to the uartirq guest (focus on guest 1); it must receive each whole,
    by interrupts, through the PIC and then through the I/O APIC."""
    c.expect(READY)
    for route, line in (("pic", "hello through the 8259A"), ("ioapic", "and through the I/O APIC")):
        c.expect(GUEST_SAYS("uart", r"uartirq: rx via %s: type a line$" % route))
        c.send(ESC + "1")
        c.expect(r"^\[cpu\d+\] hv: console: focus on guest uart \(1\)")
        c.send(line + "\r")
        c.expect(GUEST_SAYS("uart", r"uartirq: rx via %s got '%s' \(%d bytes\) in \d+ interrupts ok$"
                            % (route, re.escape(line), len(line))), timeout=120)
        c.send(ESC + "m")
    c.expect(GUEST_EXITED("uart", 0))
    c.expect(ALL_DONE)
    # The session, not poweroff=1, ends the machine: with poweroff=1 the hypervisor powered off as
    # soon as the guest ended, sometimes before it had read the last ESC m; Bochs then quit with
    # those bytes unread in its socket, Linux answered with a reset, and the reset discarded the
    # output Bochs had not yet sent (RFC 9293, 3.10.4): a log cut mid-line. The monitor reads the
    # whole 'poweroff' line before it acts.
    c.command("poweroff")
    c.expect(r"hv: powering off \(monitor\)")
    return None


SCENARIOS += [
    # Registers and interrupts of the 16550 (IIR priorities, FIFO trigger levels 1/4/8/14, overrun,
    # 16450 mode, OUT2), IRQ 4 through the 8259A (IMR, IRR, ISR, specific EOI) and the I/O APIC (edge,
    # level with remote IRR, masks); a memcheck beside it.
    bochs_vmx("uart-irq", cpus=1, timeout=120,
              modules=[guest("uartirq", "name=uart mem=16M"), guest("memcheck", "name=mc mem=16M yields=4")],
              expect=[GUEST_SAYS("uart", r"uartirq: loopback trigger 14: .* ok$"),
                      GUEST_SAYS("uart", r"uartirq: pic: IER=THRE: 1 interrupts .* ok$"),
                      GUEST_SAYS("uart", r"uartirq: ioapic: level pin 4 still asserted at the EOI: 2 interrupts .* ok$"),
                      GUEST_SAYS("uart", r"uartirq: 20 checks, 0 failed$"), GUEST_EXITED("uart", 0)] +
                     MEMCHECK_OK("mc") + [ALL_DONE],
              forbid=UARTIRQ_FORBID),
]

SCENARIOS += [
    # Received data by interrupt: a line typed on the console (focus on the guest) per route.
    bochs_vmx("uart-irq-rx-console", cpus=1, timeout=300, session=rx_session, poweroff=False, end=None,
              modules=[guest("uartirq", "name=uart mem=16M rx=1")],
              expect=[GUEST_SAYS("uart", r"uartirq: rx via pic got 'hello through the 8259A' \(23 bytes\) in \d+ "
                                         r"interrupts ok$"),
                      GUEST_SAYS("uart", r"uartirq: rx via ioapic got 'and through the I/O APIC' \(24 bytes\) in "
                                         r"\d+ interrupts ok$"),
                      GUEST_SAYS("uart", r"uartirq: 22 checks, 0 failed$"), GUEST_EXITED("uart", 0), ALL_DONE],
              forbid=UARTIRQ_FORBID),
]


# --- interrupt routes of the PC devices, PIT calibration, the RTC against the host's clock (pcdev) -------
def rtc_near_host_time(name: str, slack: float = 900.0):
    """check(): guest NAME's `pcdev: rtc 20YY-MM-DD hh:mm:ss` is the host's local time (Bochs runs with
    `clock: time0=local` and the hypervisor passes its CMOS clock on) within `slack` seconds before now
    (the run's length; Bochs's clock, sync=none, runs no faster than real time) and 5 s after."""
    def check(log: str):
        import datetime
        m = re.search(r"\[%s\] pcdev: rtc (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)" % re.escape(name), log)
        if not m:
            return "no rtc date line from %s" % name
        guest_t = datetime.datetime(*map(int, m.groups())).timestamp()   # naive: local time, as time0=local
        now = time.time()
        if not (now - slack <= guest_t <= now + 5):
            return "%s: RTC says %s, %.0f s from the host's clock (want within -%d..+5 s)" % (
                name, m.group(0).split("rtc ")[1], guest_t - now, slack)
        return None
    return check


SCENARIOS += [
    # RTC IRQ 8 through the slave 8259A and the cascade (ISRs, specific EOIs, IRQ 8 held until register
    # C is read); PIT IRQ 0 on I/O APIC pin 2 (the MADT's override), none on pin 0, none when masked.
    # One guest per CPU: periodic ticks that fall while another guest runs are coalesced.
    bochs_vmx("pc-irq-routes", cpus=2, timeout=150,
              modules=[guest("pcdev", "name=rtcpic mem=4M cpu=0 do=rtcpic"),
                       guest("pcdev", "name=pitio mem=4M cpu=1 do=pitioapic")],
              expect=[GUEST_SAYS("rtcpic", r"pcdev: rtc via slave pic: \d+ interrupts in 100 ms .* ok$"),
                      GUEST_SAYS("rtcpic", r"pcdev: rtc register C unread: \d+ interrupts in 3 ms, then 0 in 20 ms .* ok$"),
                      GUEST_SAYS("rtcpic", r"pcdev: 3 checks, 0 failed$"), GUEST_EXITED("rtcpic", 0),
                      GUEST_SAYS("pitio", r"pcdev: pit irq 0 on ioapic pin 2: \d+ interrupts in 100 ms .* pin 0: 0 "
                                          r"\(want 0\) ok$"),
                      GUEST_SAYS("pitio", r"pcdev: 2 checks, 0 failed$"), GUEST_EXITED("pitio", 0), ALL_DONE],
              forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$"]),
    # Channel 2 behind the port 0x61 gate, as kernels calibrate their TSC with it.
    bochs_vmx("pc-pit-calibration", cpus=1, timeout=120,
              modules=[guest("pcdev", "name=pitcal mem=4M do=pitcal"), guest("hello", "name=hello mem=16M")],
              expect=[GUEST_SAYS("pitcal", r"pcdev: pit calibration: TSC \d+ kHz .* ok$"),
                      GUEST_SAYS("pitcal", r"pcdev: 3 checks, 0 failed$"), GUEST_EXITED("pitcal", 0)] +
                     HELLO_LINES("hello") + [ALL_DONE],
              forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$"]),
]

ACPIPM_OK = lambda n: [GUEST_SAYS(n, r"pcdev: acpi FADT flags 0x[0-9a-f]+: not HW_REDUCED_ACPI, TMR_VAL_EXT ok$"),
                       GUEST_SAYS(n, r"pcdev: acpi PM1a_EVT 0xb000 PM1a_CNT 0xb004 PM_TMR 0xb008 ok$"),
                       GUEST_SAYS(n, r"pcdev: acpi PM1a_CNT 0x[0-9a-f]+: SCI_EN ok$"),
                       GUEST_SAYS(n, r"pcdev: acpi pm timer \d+ Hz over 50 ms .* ok$"),
                       GUEST_SAYS(n, r"pcdev: 5 checks, 0 failed$"), GUEST_EXITED(n, 0)]
SCENARIOS += [
    # The ACPI fixed hardware as the FADT names it (vdev/pmtimer.c): the PM timer's rate against the TSC,
    # SCI_EN, and S5 through PM1a_CNT ending the guest with code 0; on VMX and on SVM.
    bochs_vmx("pc-acpi-pm", cpus=1, timeout=120,
              modules=[guest("pcdev", "name=acpipm mem=4M do=acpipm")],
              expect=ACPIPM_OK("acpipm") + [ALL_DONE],
              forbid=[NO_VIRT, r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$", r"still running"]),
    Scenario("svm-pc-acpi-pm-bochs-ryzen", emulator="bochs", cpus=1, mem=256, cpu_model="ryzen", timeout=BOCHS_TIMEOUT,
             modules=[guest("pcdev", "name=acpipm mem=4M do=acpipm")],
             expect=ACPIPM_OK("acpipm") + [ALL_DONE],
             forbid=[NO_VIRT, r"unexpected #VMEXIT", r"hv: panic", r"^(?:\[cpu\d+\] )?\[\w+\] .* FAIL$",
                     r"still running"]),
]

# --- lifetimes and kicks (security review, issue 14: items 2 and 6; guests/ipiflood.c) -------------------

def neighbour_kicked_at_most(name: str, limit: int):
    """check(): guest NAME's external-interrupt exits (the host's kicks that reached it, from its `hv: guest
    NAME exits: ...` line) are at most LIMIT."""
    def check(log):
        m = re.search(r"hv: guest %s exits: total \d+(.*)$" % re.escape(name), log, re.MULTILINE)
        if not m:
            return "no exit summary for guest %s" % name
        n = re.search(r"external interrupt (\d+)", m.group(1))
        got = int(n.group(1)) if n else 0
        return None if got <= limit else \
            "guest %s had %d external-interrupt exits beside the IPI flood (want at most %d)" % (name, got, limit)
    return check


def ipi_flood(name: str, args: str, limit: int) -> Scenario:
    """Guest flood (vCPUs on CPUs 1 and 0) floods its vCPU 1 with IPIs for 400 ms (ipiflood mode=flood ARGS)
    beside guest spin on CPU 0: spin may have at most LIMIT external-interrupt exits."""
    return bochs_vmx(name, cpus=2, timeout=400,
                     modules=[guest("ipiflood", "name=flood vcpus=2 cpu=1,0 mem=16M mode=flood ms=400 gap=1" + args),
                              guest("ipiflood", "name=spin cpu=0 mem=16M mode=spin loops=20000000")],
                     expect=[GUEST_SAYS("flood", r"ipiflood: flood \d+ ipis in \d+ ms, got \d+$"),
                             GUEST_EXITED("flood", 0), GUEST_SAYS("spin", "ipiflood: spin done"),
                             GUEST_EXITED("spin", 0), ALL_DONE],
                     check=neighbour_kicked_at_most("spin", limit))


def input_while_ending_session(c) -> Optional[str]:
    """Item 8: bytes typed to guest uart (uartirq rxend=300 on CPU 1, its receive interrupt on) while it
    ends, the monitor holding the guest 20 ms longer with each byte (input_hold=20000): the end waits for
    the monitor, and the guest's APIC page, which each byte's IRQ 4 reaches, is freed only after. Three
    rounds, the guest started again from the monitor after each; the host's free memory is the same
    after every round."""
    c.expect(READY)
    free = []
    for n in range(3):
        start = c.pos                   # the guest may say it is ready before or after the focus line
        c.send(ESC + "1")
        c.expect(r"^\[cpu\d+\] hv: console: focus on guest uart \(1\)")
        c.pos = start
        c.expect(GUEST_SAYS("uart", r"uartirq: rx for 300 ms: type$"))
        # 40 bytes held 20 ms each: the monitor still gives them when, 300 ms after the first, it ends.
        c.send("x" * 40)
        m = c.expect(GUEST_SAYS("uart", r"uartirq: rx for 300 ms: (\d+) bytes in (\d+) interrupts$"))
        if not 1 <= int(m.group(1)) < 40 or int(m.group(2)) < 1:
            return "round %d: the guest got %s bytes in %s interrupts: want 1..39 (it ends while bytes " \
                   "still come), by interrupt" % (n + 1, m.group(1), m.group(2))
        c.expect(GUEST_EXITED("uart", 0))
        c.expect(r"hv: memory free \d+ KiB after the guests")   # its memory is back: now `mem`
        c.send(ESC + "m")
        c.expect(r"^\[cpu\d+\] hv: console: focus on the monitor")
        c.command("mem")
        free.append(int(c.expect(ANSWER + r"host memory: usable \d+ MiB, free \d+ MiB \((\d+) KiB\)").group(1)))
        if n < 2:
            c.command("start uart")
            c.expect(GUEST_STARTED("uart"))
    if len(set(free)) != 1:
        return "host memory free after each round: %s KiB, not the same" % free
    c.command("poweroff")
    c.expect(r"hv: powering off \(monitor\)")
    return None


SCENARIOS += [
    # Item 8: the monitor's typed bytes against a guest ending on the other CPU, the window between the
    # monitor's look at the guest and its byte widened to 20 ms (input_hold=, a test option). With the
    # monitor's look unheld, as before stop 19 (the guest live and not ending, then the byte), the first
    # round's byte after the end raised IRQ 4 at the freed vCPU: the host's #PF at CR2 0x20 (the APIC
    # page's pointer, cleared by vcpu_free), on CPU 0, and a panic. poison=1 would report a write into
    # the freed page before its pointer is cleared.
    bochs_vmx("lifetime-input-while-ending", cpus=2, timeout=400, cmdline="poison=1 input_hold=20000",
              session=input_while_ending_session, poweroff=False, end=None,
              modules=[guest("uartirq", "name=uart cpu=1 mem=16M rxend=300")],
              expect=[Expect(GUEST_EXITED("uart", 0), count=3)],
              forbid=[NO_VIRT, r"hv: pmm: page 0x[0-9a-f]+ was written after it was freed", r"hv: guest uart stopped"]),
]

SCENARIOS += [
    # Item 2: vCPU 0 ends its guest while vCPU 1, on the other CPU, raises IRQ 4 at it 64 times per REP
    # OUTSB exit and sends it IPIs; five runs (on-exit=restart). poison=1: a page the hypervisor freed
    # and wrote afterwards (vCPU 0's APIC page, freed as vCPU 0 left) is reported when handed out again.
    bochs_vmx("lifetime-posts-while-ending", cpus=2, timeout=400, cmdline="poison=1",
              modules=[guest("ipiflood", "name=flood vcpus=2 cpu=0,1 mem=16M mode=end cpus=2 ms=20 "
                                         "on-exit=restart restarts=4")],
              expect=[Expect(GUEST_SAYS("flood", r"ipiflood: end after 20 ms, [1-9]\d* rounds by 1 aps \(0 taken with IF=0\)$"), count=5),
                      RESTARTED("flood", 4, "exited: code=0"), Expect(GUEST_EXITED("flood", 0), count=5), ALL_DONE],
              forbid=[NO_VIRT, r"hv: pmm: page 0x[0-9a-f]+ was written after it was freed"]),
    # Item 6: guest flood's vCPU 0 (CPU 1) sends an IPI every microsecond to its vCPU 1, which shares CPU 0
    # with guest spin and never halts. A vector already pending kicks nobody, and a kick that makes no
    # other vCPU runnable does not preempt: spin keeps its slices. Measured (17,000 IPIs in 400 ms): spin
    # had 8,487 external-interrupt exits before the change, 2 after. spin runs with IF=1: Bochs lets no
    # host interrupt exit a guest whose IF is 0.
    ipi_flood("ipi-flood-neighbour", "", 200),
    # The same with a flooded vCPU that halts after each IPI: each IPI wakes it, a real reason to take the
    # CPU, but spin runs at least 1/8 of its slice (250 us) between two: at most ~1,600 kicked exits in the
    # 400 ms. Measured: 16,914 before (one per IPI), 1,506 after.
    ipi_flood("ipi-flood-halting-neighbour", " halt=1", 2000),
    # A vector requested while the guest's IF is 0 waits for IF = 1 (the hang of linux-2vcpus): vCPU 0 spins
    # with IF = 0 running CLI (as Linux's nested local_irq_save), every 100 us opening a window, while vCPU 1
    # sends it pairs of IPIs, the second while the first is pending. Bochs 2.7 delivered the first to the
    # guest with IF = 0 at the second's wake-up IPI; the entry now asks for an interrupt window instead
    # (vmx/exit.c, apicv_hold). Before: 'masked after 100 ms, 1002 pairs, 1002 taken (1000 taken with IF=0)';
    # after: '1001 pairs, 2000 taken (0 taken with IF=0)', with 1,000 interrupt-window exits.
    bochs_vmx("apicv-masked-vector-waits", cpus=2, timeout=400,
              modules=[guest("ipiflood", "name=masked vcpus=2 cpu=0,1 mem=16M mode=masked ms=100")],
              expect=[GUEST_SAYS("masked", r"ipiflood: masked after 100 ms, [1-9]\d* pairs, [1-9]\d* taken "
                                           r"\(0 taken with IF=0\)$"),
                      GUEST_EXITED("masked", 0), ALL_DONE]),
]

# The RTC's date in pc-timers against the host's clock.
for _sc in SCENARIOS:
    if _sc.name == "pc-timers":
        _sc.check = rtc_near_host_time("rtc") if _sc.check is None else all_checks(_sc.check, rtc_near_host_time("rtc"))



KEY_TO_ANSWER_US = 100000   # the monitor's promise: a key reaches it within 100 ms of emulated time
# Under QEMU (the @svm-qemu twins) emulated time is the host's: a loaded host can hold QEMU's vCPU
# thread off its CPU for longer than the promise, whatever the hypervisor does. A bound that still
# catches a monitor that waits for a guest's slice or for a queue of output (seconds), not a 100 ms one.
KEY_TO_ANSWER_HOST_TIME_US = 2000000


def answered_within(c, what: str) -> Optional[str]:
    """The `console` command's figure for the command before it: at most KEY_TO_ANSWER_US (Bochs), or
    KEY_TO_ANSWER_HOST_TIME_US where the guest's clock is the host's (QEMU)."""
    limit = KEY_TO_ANSWER_US if c.instruction_exact else KEY_TO_ANSWER_HOST_TIME_US
    c.command("console")
    m = c.expect(ANSWER + r"last command: answered at most (\d+) us after its first key\r?\n")
    us = int(m.group(1))
    print("%s: answered at most %d us after its first key" % (what, us))
    if us >= limit:
        return "%s: answered %d us after its first key (more than %d)" % (what, us, limit)
    return None


def answers_then_stop(name: str, begun: str, commands):
    """A session: once guest NAME says `begun`, each (command, answer regex or None) of `commands`,
    then `stop NAME`: each answered within KEY_TO_ANSWER_US of its first key (emulated time, the
    `console` command's figure), then poweroff."""
    def session(c) -> Optional[str]:
        c.expect(READY)
        c.expect(BANNER)
        c.expect(GUEST_SAYS(name, begun), timeout=120)
        for cmd, answer in list(commands) + [("stop " + name, None)]:
            c.command(cmd, timeout=120)
            c.expect(ANSWER + answer if answer else GUEST_STOPPED(name, "by the monitor"), timeout=120)
            err = answered_within(c, cmd)
            if err:
                return err
        c.command("poweroff")
        c.expect(r"hv: powering off \(monitor\)")
        return None
    return session


def monitor_kept_up(name: str, session, **kw) -> Scenario:
    """bochs_vmx, the console staying up once the guests end, until the session's poweroff."""
    return bochs_vmx(name, timeout=300, session=session, poweroff=False, end=r"hv: powering off \(monitor\)", **kw)


spin_stop_session = answers_then_stop("spin", "spin: start", [("guests", r"1\s+spin\s+1@0\s+.*running$")])


# A guest that never exits on the boot CPU of a 1-CPU machine (the default placement there): typed keys
# still reach the monitor, by the UART's interrupt and polled. Under Bochs the guest's IF = 0 masks the
# host's interrupts for as long as it runs (core/hv.c, LONE_SLICE_US).
SCENARIOS += [
    monitor_kept_up("console-spin-cpu0", spin_stop_session, not_on_svm=BOCHS_RYZEN_IF0, cpus=1,
                    not_on_model={"penryn": MODEL_IF0},
                    modules=[guest("spin", "name=spin cpu=0 mem=16M loops=100000000000")],
                    expect=[CONSOLE_BY_IRQ, GUEST_STOPPED("spin", "by the monitor")]),
    monitor_kept_up("console-spin-cpu0-polled", spin_stop_session, not_on_svm=BOCHS_RYZEN_IF0, cpus=1, cmdline="console_irq=0",
                    not_on_model={"penryn": MODEL_IF0},
                    modules=[guest("spin", "name=spin cpu=0 mem=16M loops=100000000000")],
                    expect=[CONSOLE_POLLED, GUEST_STOPPED("spin", "by the monitor")]),
    # The same guest on CPU 1: 'regs' is a cross-CPU call, its wake-up IPI as masked under Bochs as
    # the key was; CPU 1 takes it at the end of its slice (50 ms), in its scheduler loop.
    monitor_kept_up("console-spin-regs-cpu1", answers_then_stop("spin", "spin: start", [
                        ("regs spin", r"guest spin vCPU 0 on cpu 1:$")]), cpus=2, not_on_svm=BOCHS_RYZEN_IF0,
                    not_on_model={"penryn": MODEL_IF0},
                    modules=[guest("spin", "name=spin cpu=1 mem=16M loops=100000000000")],
                    expect=[CONSOLE_BY_IRQ, GUEST_STOPPED("spin", "by the monitor")]),
]


def guest_lines_printable(name: str, min_lines: int):
    """check(): in the raw serial log (not cleaned: escape sequences kept), every line of guest NAME
    holds only printable ASCII (0x20-0x7E) before its CR LF, and there are at least min_lines."""
    def check(log: str):
        with open(os.path.join(judged_out(), "serial.log"), "rb") as f:
            raw = f.read()
        tag = b"[" + name.encode() + b"] "
        lines = [ln for ln in raw.split(b"\n") if tag in ln]
        for ln in lines:
            body = ln[:-1] if ln.endswith(b"\r") else ln
            bad = [b for b in body if not 0x20 <= b <= 0x7e]
            if bad:
                return "a line of %s holds byte 0x%02x: %r" % (name, bad[0], ln[:100])
        if len(lines) < min_lines:
            return "%d lines of %s, expected at least %d" % (len(lines), name, min_lines)
        return None
    return check


# A guest prints every byte value 0x00-0xFF through its UART and through HC_PUTCHAR: its lines on the
# operator's terminal hold only printable ASCII (the C0/C1 controls, ESC, DEL and 0x80-0xFF as \xNN).
SCENARIOS += [
    bochs_vmx("console-guest-bytes", timeout=120,
              modules=[guest("hello", "name=bytes mem=16M bytes=1")],
              expect=[GUEST_SAYS("bytes", r"hello: uart 80:\\x80\\x81"), GUEST_SAYS("bytes", r"hello: hc 90:\\x90"),
                      GUEST_SAYS("bytes", r"hello: uart 10:\\x10\\x11\\x12\\x13\\x14\\x15\\x16\\x17\\x18\\x19\\x1a\\x1b"),
                      GUEST_SAYS("bytes", r"hello: hc 70:pqrstuvwxyz\{\|\}~\\x7f$"),
                      GUEST_SAYS("bytes", "hello: bytes done"), GUEST_EXITED("bytes", 0), ALL_DONE],
              check=guest_lines_printable("bytes", 36)),
]


# A guest printing without pause on CPU 1 (over its print limit: lines dropped, said once); the
# monitor on CPU 0 answers within 100 ms of the first key: its lines no longer wait behind the guest's
# in the UART (before the output ring: guests 38.8 ms, mem 134 ms).
SCENARIOS += [
    monitor_kept_up("console-chatty-monitor", answers_then_stop("chatty", "counter: 20$", [
                        ("guests", r"1\s+chatty\s+1@1\s+.*running$"), ("mem", r"guests hold \d+ KiB"),
                        ("exits chatty", r"guest chatty exits: total \d+")]), cpus=2,
                    modules=[guest("counter", "name=chatty mem=4M cpu=1 count=100000000 delay=0")],
                    expect=[GUEST_STOPPED("chatty", "by the monitor"),
                            Expect(r"^\[cpu1\] hv: guest chatty: output over its limit \(5760 bytes/s after 16384 at once\)", count=1),
                            r"^\[cpu\d\] hv: guest chatty output: \d+ lines \(\d+ bytes\) dropped over its limit$"]),
]
