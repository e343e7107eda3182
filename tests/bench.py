#!/usr/bin/env python3
"""`make bench`: boots benchmark scenarios (with the runner of tests/run.py) and prints tables of figures
parsed from their serial logs. In Bochs with `clock: sync=none` a TSC tick is one emulated instruction
(/work/shared/PLATFORM.md), so the figures are path lengths, repeatable whatever the host's load.

A benchmark is a Bench: a name, the scenarios it boots, and a table(logs) function that turns their logs
(dict scenario name -> serial log) into a title, column names and rows, or raises BenchError. To add one,
write the scenarios and the table function and append a Bench to BENCHES. A matrix benchmark (e.g. guest
memory modes eager/lazy/demand x chunk 2M/4K x guest size 64M/256M/1G) is one Bench with one scenario per
cell, named after the cell, and a table function that reads one figure from each log.

    tests/bench.py [-k SUBSTR] [--list] [-j N] [--keep]
"""

import argparse
import json
import os
import re
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Dict, List, Tuple, Union

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.runner import ALL_DONE, TESTS_OUT, Expect, Scenario, guest, kill_all, run_scenario  # noqa: E402

Table = Tuple[str, List[str], List[List[object]]]  # title, column names, rows


class BenchError(Exception):
    pass


@dataclass
class Bench:
    name: str
    scenarios: List[Scenario]
    table: Callable[[Dict[str, str]], Union[Table, List[Table]]]  # one table or several


# --- exit round trips: the `bench` guest ---------------------------------------------------------------
# guests/bench prints `bench: <what> min=<ticks> median=<ticks> n=<n>` for cpuid, vmcall, pio, ...
# and `bench: rdtsc-overhead min=<ticks> median=<ticks>` (the cost of the two RDTSCs around each sample).

BENCH_LINE = r"bench: (?P<what>[\w.-]+) min=(?P<min>\d+) median=(?P<median>\d+)(?: n=(?P<n>\d+))?"


# Intel models run the VMX back end, AMD's ryzen the SVM back end (issue 15): the same guest and exits.
EXIT_MODELS = [("corei7_skylake_x", "bench-exits"), ("tigerlake", "bench-exits-tigerlake"),
               ("ryzen", "bench-exits-ryzen")]


def exit_figures(log: str, name: str) -> Dict[str, Tuple[int, int, str]]:
    """what -> (net min, net median, n): the figures of one `bench` guest, less the rdtsc overhead."""
    figures = {m.group("what"): m for m in re.finditer(BENCH_LINE, log)}
    if "rdtsc-overhead" not in figures:
        raise BenchError("%s: no `bench: rdtsc-overhead` line" % name)
    over = figures.pop("rdtsc-overhead")
    omin, omed = int(over.group("min")), int(over.group("median"))
    if not figures:
        raise BenchError("%s: no exit figures" % name)
    return {what: (int(m.group("min")) - omin, int(m.group("median")) - omed, m.group("n") or "-")
            for what, m in figures.items()}


def exits_table(logs: Dict[str, str]) -> Table:
    figs = [exit_figures(logs[name], name) for _, name in EXIT_MODELS]
    rows = []
    whats = list(figs[0]) + [w for f in figs[1:] for w in f if w not in figs[0]]   # vmmcall: AMD only
    for what in whats:
        row = [what]
        for f in figs:
            mn, md, n = f.get(what, ("-", "-", "-"))
            row += [mn, md]
        rows.append(row + [next(f[what][2] for f in figs if what in f)])
    title = ("VM exit round trips on Bochs, 1 CPU, side by side: corei7_skylake_x (VMX; no eIBRS: the full RSB "
             "fill after every exit), tigerlake (VMX; eIBRS: one round of the fill, VERW before entry) and ryzen "
             "(SVM with nested paging, nRIP save; the guest's VMCALL #UDs and is taken in the #UD intercept, "
             "VMMCALL is AMD's own). TSC ticks = emulated instructions, the rdtsc overhead of each run subtracted")
    cols = ["exit"]
    for model, _ in EXIT_MODELS:
        short = model.replace("corei7_", "")
        cols += [short + " min", short + " median"]
    return title, cols + ["n"], rows


# --- guest memory: eager vs lazy vs demand, chunk 2M/4K, guest size 64M/256M/1G --------------------------
# Each cell boots one `touchall` guest twice: touching every page (start-up cost, touch cost, exits) and
# touching 10% of its RAM (host memory in use then). Figures come from the hypervisor's lines
#   hv: guest NAME start-up: N TSC ticks (create C, VMCS set-up S)
#   hv: guest NAME memory: touched X MiB of Y MiB, Z first-touch exits
#   hv: guest NAME host memory: R KiB RAM + E KiB EPT tables
# and the guest's own `touchall: N pages in T ticks` (RDTSC around its loop, TSC offset 0).

MEM_MODES = [("eager", "2M"), ("lazy", "2M"), ("lazy", "4K"), ("demand", "2M"), ("demand", "4K")]
MEM_SIZES = [64, 256, 1024]


def mem_cell(mode: str, chunk: str, size: int, part: str, model: str = "corei7_skylake_x") -> Scenario:
    pct = "" if part == "full" else " percent=10"
    sfx = "" if model == "corei7_skylake_x" else "-" + model
    return Scenario("bench-mem-%s%s-%dm-%s%s" % (mode, chunk.lower(), size, part, sfx), emulator="bochs", cpus=1,
                    mem=max(256, size + 256), timeout=900, needs_vmx=True, cpu_model=model,
                    modules=[guest("touchall", "name=t mem=%dM alloc=%s chunk=%s%s" % (size, mode, chunk, pct))],
                    expect=[r"touchall: \d+ pages in \d+ ticks", r"hv: guest t exited code=0", ALL_DONE],
                    forbid=[r"hv: no virtualization"])


def _fig(rx: str, log: str, name: str) -> re.Match:
    m = re.search(rx, log, re.M)
    if not m:
        raise BenchError("%s: no /%s/" % (name, rx))
    return m


def mem_table(logs: Dict[str, str]) -> Table:
    rows, eager_total = [], {}
    for mode, chunk in MEM_MODES:
        for size in MEM_SIZES:
            full = "bench-mem-%s%s-%dm-full" % (mode, chunk.lower(), size)
            tenth = "bench-mem-%s%s-%dm-10" % (mode, chunk.lower(), size)
            start = int(_fig(r"hv: guest t start-up: (\d+) TSC ticks", logs[full], full).group(1))
            touch = int(_fig(r"touchall: \d+ pages in (\d+) ticks", logs[full], full).group(1))
            exits = int(_fig(r"hv: guest t memory: touched [\d.]+ MiB of \d+ MiB, (\d+) first-touch exits",
                             logs[full], full).group(1))
            host = _fig(r"hv: guest t host memory: (\d+) KiB RAM \+ (\d+) KiB EPT tables", logs[tenth], tenth)
            total = start + touch
            if mode == "eager":
                eager_total[size] = total
            rows.append(["%s %s" % (mode, chunk if mode != "eager" else "-"), "%d MiB" % size,
                         "%.2f" % (start / 1e6), "%.2f" % (touch / 1e6), exits,
                         "%.2f" % (total / eager_total[size]),
                         "%.1f" % ((int(host.group(1)) + int(host.group(2))) / 1024.0)])
    title = ("Guest memory on Bochs corei7_skylake_x, 1 CPU; M = million TSC ticks = million emulated "
             "instructions. start-up: hypervisor's decision to start the guest to its first entry; "
             "touch: the guest writing every 4 KiB page once (guest RDTSC); x eager: (start-up + touch) / "
             "eager's; host MiB: RAM + EPT tables in use when the guest has touched 10% of its RAM")
    return title, ["alloc chunk", "guest", "start-up M", "touch all M", "exits", "x eager", "host MiB @10%"], rows


# First touch on both back ends: the 64 MiB cells of the table above (touching every page) on
# corei7_skylake_x (VMX, EPT violations) and ryzen (SVM, nested page faults, #VMEXIT NPF).
MEM_SVM_MODELS = ["corei7_skylake_x", "ryzen"]
MEM_SVM_SIZE = 64


def mem_svm_scenarios() -> List[Scenario]:
    return [mem_cell(m, c, MEM_SVM_SIZE, "full", model) for model in MEM_SVM_MODELS for m, c in MEM_MODES]


def mem_svm_table(logs: Dict[str, str]) -> Table:
    rows = []
    for mode, chunk in MEM_MODES:
        row = ["%s %s" % (mode, chunk if mode != "eager" else "-")]
        for model in MEM_SVM_MODELS:
            sfx = "" if model == "corei7_skylake_x" else "-" + model
            name = "bench-mem-%s%s-%dm-full%s" % (mode, chunk.lower(), MEM_SVM_SIZE, sfx)
            eager = "bench-mem-eager2m-%dm-full%s" % (MEM_SVM_SIZE, sfx)
            start = int(_fig(r"hv: guest t start-up: (\d+) TSC ticks", logs[name], name).group(1))
            touch = int(_fig(r"touchall: \d+ pages in (\d+) ticks", logs[name], name).group(1))
            etouch = int(_fig(r"touchall: \d+ pages in (\d+) ticks", logs[eager], eager).group(1))
            exits = int(_fig(r"hv: guest t memory: touched [\d.]+ MiB of \d+ MiB, (\d+) first-touch exits",
                             logs[name], name).group(1))
            row += ["%.2f" % (start / 1e6), "%.2f" % (touch / 1e6), exits,
                    "%d" % ((touch - etouch) / exits) if exits else "-"]
        rows.append(row)
    cols = ["alloc chunk"]
    for model in MEM_SVM_MODELS:
        short = model.replace("corei7_", "")
        cols += [short + " start-up M", "touch all M", "exits", "per exit"]
    title = ("First touch on both back ends: a %d MiB touchall guest on Bochs corei7_skylake_x (VMX, EPT "
             "violations) and ryzen (SVM, #VMEXIT NPF), 1 CPU; M = million emulated instructions; per exit: "
             "(touch all - eager's touch all) / exits, the exit and the chunk's clearing and mapping" % MEM_SVM_SIZE)
    return title, cols, rows


# --- interrupts: the `ibench` guest (virtual local APIC, injection, blocking HLT, two vCPUs) -----------
# guests/ibench prints `ibench: WHAT min=T median=T n=N` per figure (see the guest's header comment):
#   test=timer  timer-spin-M / timer-halt-M (TSC deadline D to the handler's first instruction, an RDTSC),
#               eoi-M (EOI with the vector in service), arm-M (WRMSR IA32_TSC_DEADLINE), rdtsc-overhead
#   test=ipi    ipi-M-peer-P-wait-W (round trip vCPU 0 -> vCPU 1 -> vCPU 0), tsc-per-1000-insns-peer-P
#   test=idle   idle-M-TIMER ticks=N ...; the exits come from the hypervisor's `exits:` line.

IB_LINE = r"ibench: (?P<what>[\w.-]+) min=(?P<min>\d+) median=(?P<median>\d+)(?: n=(?P<n>\d+))?"
IB_DONE = r"ibench: done"


def ib_scenario(name: str, cpus: int, args: str, timeout: int = 300, model: str = "corei7_skylake_x") -> Scenario:
    return Scenario(name, emulator="bochs", cpus=cpus, mem=256, cpu_model=model, timeout=timeout, needs_vmx=True,
                    modules=[guest("ibench", "name=ib " + args)],
                    expect=[IB_DONE, r"hv: guest ib exited code=0", ALL_DONE], forbid=[r"hv: no virtualization"])


def ib_figures(log: str, name: str) -> Dict[str, Tuple[int, int]]:
    figs = {m.group("what"): (int(m.group("min")), int(m.group("median"))) for m in re.finditer(IB_LINE, log)}
    if not figs:
        raise BenchError("%s: no `ibench:` figures" % name)
    return figs


def ib_get(figs: Dict[str, Tuple[int, int]], what: str, name: str) -> Tuple[int, int]:
    if what not in figs:
        raise BenchError("%s: no `ibench: %s` line" % (name, what))
    return figs[what]


# The timer and IPI paths on both CPU models, as the exits: (model, scenario name suffix).
IRQ_MODELS = [("corei7_skylake_x", ""), ("tigerlake", "-tigerlake"), ("ryzen", "-ryzen")]


def irq_timer_table(logs: Dict[str, str]) -> Table:
    rows, overs = [], []
    for model, sfx in IRQ_MODELS:
        name = "bench-irq-timer" + sfx
        figs = ib_figures(logs[name], name)
        omin, omed = ib_get(figs, "rdtsc-overhead", name)
        overs.append("%s min=%d median=%d" % (model, omin, omed))
        for m in ("xapic", "x2apic"):
            eoi = ib_get(figs, "eoi-" + m, name)
            arm = ib_get(figs, "arm-" + m, name)
            for wait in ("spin", "halt"):
                lat = ib_get(figs, "timer-%s-%s" % (wait, m), name)
                rows.append([model.replace("corei7_", ""), m, "running (spin)" if wait == "spin" else "halted (HLT)",
                             lat[0], lat[1], eoi[1] - omed, lat[1] + eoi[1] - omed, arm[1] - omed,
                             lat[1] + eoi[1] - omed + arm[1] - omed])
    title = ("Timer interrupt (TSC-deadline mode) on Bochs, 1 CPU, ibench test=timer, TSC ticks = "
             "emulated instructions. deadline->handler: from IA32_TSC_DEADLINE = D to the RDTSC that is the "
             "handler's first instruction (min, median); EOI and arm: the EOI (x2APIC WRMSR / xAPIC MOV) and the "
             "WRMSR of the deadline, medians less the rdtsc overhead (%s); +EOI, +arm: the sums"
             % ", ".join(overs))
    return title, ["cpu", "apic", "vCPU waits", "deadline->handler min", "median", "EOI", "+EOI",
                   "arm", "+EOI+arm"], rows


IPI_SETUPS = [("2 (cpu=0,1)", "bench-irq-ipi-2cpu"), ("1 (cpu=0,0)", "bench-irq-ipi-1cpu")]


def irq_ipi_table(logs: Dict[str, str]) -> Table:
    rows, rates = [], []
    for model, sfx in IRQ_MODELS:
        for host, base in IPI_SETUPS:
            name = base + sfx
            figs = ib_figures(logs[name], name)
            for peer in ("halt", "spin"):
                rates.append("%s %s peer %s %d" % (model.replace("corei7_", ""), host.split()[0] + " CPU", peer,
                                                   ib_get(figs, "tsc-per-1000-insns-peer-" + peer, name)[1]))
            for m in ("xapic", "x2apic"):
                for peer in ("halt", "spin"):
                    for wait in ("spin", "halt"):
                        mn, md = ib_get(figs, "ipi-%s-peer-%s-wait-%s" % (m, peer, wait), name)
                        rows.append([model.replace("corei7_", ""), host, m, "HLT" if peer == "halt" else "spin",
                                     "HLT" if wait == "halt" else "spin", mn, md])
    title = ("IPI round trip between the two vCPUs of one guest (ibench test=ipi), TSC ticks: vCPU 0 writes the ICR "
             "(fixed IPI), vCPU 1's handler sends one back, until vCPU 0's handler reads RDTSC. host CPUs: where the "
             "vCPUs are pinned (Bochs with 2 emulated CPUs, resp. 1). vCPU 1: waiting in HLT or spinning with IF=1; "
             "vCPU 0: waiting for the answer spinning or in HLT. TSC ticks for a 1000-instruction loop on vCPU 0: "
             + ", ".join(rates) + " (with 2 emulated CPUs Bochs runs them in lock step and the TSC counts one tick "
             "per step: a figure is elapsed time in instruction slots, not the sum of both CPUs' instructions)")
    return title, ["cpu", "host CPUs", "apic", "vCPU 1", "vCPU 0 waits", "min", "median"], rows


IDLE_CASES = [("xapic", "periodic"), ("xapic", "deadline"), ("x2apic", "periodic"), ("x2apic", "deadline")]
IDLE_TICKS = (100, 300)
IDLE_HZ = 100
EXITS_LINE = r"hv: guest ib exits: total (\d+)((?:, [A-Za-z -]+ \d+)*)$"


IDLE_MODELS = [("corei7_skylake_x", ""), ("ryzen", "-ryzen")]   # VMX with APIC virtualization; SVM


def idle_scenario(apic: str, timer: str, ticks: int, model: str = "corei7_skylake_x", sfx: str = "") -> Scenario:
    return ib_scenario("bench-irq-idle-%s-%s-%d%s" % (apic, timer, ticks, sfx), 1,
                       "test=idle apic=%s timer=%s hz=%d ticks=%d" % (apic, timer, IDLE_HZ, ticks), timeout=600,
                       model=model)


def exits_of(log: str, name: str) -> Tuple[int, Dict[str, int]]:
    m = _fig(EXITS_LINE, log, name)
    by = {}
    for part in m.group(2).split(", ")[1:]:
        reason, count = part.rsplit(" ", 1)
        by[reason] = int(count)
    return int(m.group(1)), by


def irq_idle_table(logs: Dict[str, str]) -> Table:
    lo, hi = IDLE_TICKS
    rows = []
    for (model, sfx), (apic, timer) in ((m, c) for m in IDLE_MODELS for c in IDLE_CASES):
        a = "bench-irq-idle-%s-%s-%d%s" % (apic, timer, lo, sfx)
        b = "bench-irq-idle-%s-%s-%d%s" % (apic, timer, hi, sfx)
        for nm in (a, b):
            _fig(r"ibench: idle-%s-%s ticks=\d+ hz=%d" % (apic, timer, IDLE_HZ), logs[nm], nm)
        ta, ra = exits_of(logs[a], a)
        tb, rb = exits_of(logs[b], b)
        per = (tb - ta) / float(hi - lo)
        reasons = ", ".join("%s %.2f" % (r, (rb.get(r, 0) - ra.get(r, 0)) / float(hi - lo))
                            for r in sorted(set(ra) | set(rb), key=lambda r: -(rb.get(r, 0) - ra.get(r, 0)))
                            if rb.get(r, 0) != ra.get(r, 0))
        rows.append([model.replace("corei7_", ""), apic, timer, "%.2f" % per, reasons, "%.2f" % (tb / float(hi)),
                     "%.0f" % (per * IDLE_HZ)])
    title = ("Idle guest, %d Hz APIC timer, `sti; hlt` between ticks (ibench test=idle) on Bochs, 1 CPU, skylake_x "
             "(VMX, APIC virtualization) and ryzen (SVM, the local APIC emulated): exits per "
             "tick = (total exits of a %d-tick run - those of a %d-tick run) / %d, from the hypervisor's `exits:` "
             "line (set-up and console exits cancel out); raw: total / ticks of the %d-tick run. deadline: "
             "TSC-deadline mode re-armed in the handler (as Linux does), periodic: the APIC timer's periodic mode"
             % (IDLE_HZ, hi, lo, hi - lo, hi))
    return title, ["cpu", "apic", "timer", "exits/tick", "per tick by reason", "raw total/tick", "exits/s"], rows


# --- Linux: the same kernel and initramfs booted bare in Bochs and as a guest ----------------------------
# Debian 12's cloud kernel and the busybox initramfs of `make linux-guest` (tests/linux/), command line
# LINUX_ARGS of the Linux scenarios plus bench_idle=S, on Bochs with 1 CPU. Markers, all TSC values
# counted from Bochs's power-on (TSC offset 0 in the guest: vmx/vcpu.c):
#   grub: boot tsc=0xT          GRUB's `rdmsr 0x10` (IA32_TIME_STAMP_COUNTER) after loading the files, before `boot`
#   hv: guest linux start-up: ... at TSC T     the hypervisor, just before the guest's first entry
#   linux: init tsc=T           /bin/tsc (tests/linux/tsc.c), the first command of /init
#   linux: idle start/end tsc=T /init around `sleep S` (bench_idle=S; S=0 in the boot runs)
#   hv: guest linux exits: total N, REASON COUNT, ...   after the guest powered off

LINUX_IDLE_S = 10
GRUB_TSC = ["serial --unit=0 --speed=115200", "terminal_output serial",
            "rdmsr 0x10 -v tsc", "echo grub: boot tsc=0x$tsc"]


# The boots side by side (`make bench K=linux`): bare on 1 and 2 CPUs, and as a guest with 1 vCPU (eager,
# then alloc=lazy) and with 2 vCPUs beside a memcheck; each row against the bare boot on as many CPUs.
LINUX_BOOTS = [  # (scenario, row, bare scenario it is compared with)
    ("bench-linux-bare", "bare, 1 CPU", "bench-linux-bare"),
    ("bench-linux-guest-idle0", "guest, 1 vCPU", "bench-linux-bare"),
    ("bench-linux-guest-lazy", "guest, 1 vCPU, alloc=lazy", "bench-linux-bare"),
    ("bench-linux-bare-2cpu", "bare, 2 CPUs", "bench-linux-bare-2cpu"),
    ("bench-linux-guest-2vcpu", "guest, 2 vCPUs beside a memcheck", "bench-linux-bare-2cpu"),
]
LINUX_MARKS = [r"grub: boot tsc=0x[0-9a-f]+", r"linux: init tsc=\d+", r"linux: idle start tsc=\d+",
               r"linux: idle end tsc=\d+", r"linux: init done tsc=\d+"]


# On Bochs 2.7's ryzen a bare Linux stops after `NR_IRQS: ...` and idles for good: on an AMD CPU with
# MONITORX/MWAITX (CPUID 8000_0001H ECX[29]) Linux makes its delays with MWAITX and its timer
# (arch/x86/lib/delay.c, delay_halt_mwaitx; AMD APM Vol. 3, MWAITX), and the first never ends there.
# clearcpuid=221 (word 6 of Linux's feature words, bit 29) takes MWAITX away and the kernel boots. The
# hypervisor does not offer MWAITX (vcpu/cpuid_policy.c), so the guest runs the same command line.
LINUX_SVM_ARGS = "clearcpuid=221"


def linux_guest_scenario(name: str, cpus: int, args: str, idle: int = 0, beside=(),
                         model: str = "corei7_skylake_x", extra: str = "") -> Scenario:
    from scenarios import LINUX_ARGS, linux_initrd, linux_kernel
    return Scenario(name, emulator="bochs", cpus=cpus, mem=256, timeout=900 * cpus, needs_vmx=True, cpu_model=model,
                    modules=[linux_kernel("name=linux mem=128M %s %s%s bench_idle=%d" %
                                          (args, LINUX_ARGS, " " + extra if extra else "", idle)),
                             linux_initrd("linux")] + list(beside),
                    grub_boot=GRUB_TSC, expect=LINUX_MARKS + [r"hv: guest linux start-up: .* at TSC \d+",
                                                              r"hv: guest linux exited code=0", ALL_DONE],
                    forbid=[r"hv: no virtualization"])


def linux_bare_scenario(name: str, cpus: int, model: str = "corei7_skylake_x", extra: str = "") -> Scenario:
    from scenarios import LINUX_ARGS, linux_initrd, linux_kernel
    return Scenario(name, emulator="bochs", cpus=cpus, mem=128, timeout=900 * cpus, bare=True, cpu_model=model,
                    modules=[linux_kernel(LINUX_ARGS + (" " + extra if extra else "") + " bench_idle=0"),
                             linux_initrd("linux")],
                    grub_boot=GRUB_TSC, expect=LINUX_MARKS, end=r"linux: init done", settle=5, timeout_ok=True)


def linux_bench_scenarios() -> List[Scenario]:
    return [linux_bare_scenario("bench-linux-bare", 1),
            linux_guest_scenario("bench-linux-guest-idle0", 1, ""),
            linux_guest_scenario("bench-linux-guest-lazy", 1, "alloc=lazy"),
            linux_bare_scenario("bench-linux-bare-2cpu", 2),
            linux_guest_scenario("bench-linux-guest-2vcpu", 2, "vcpus=2 cpu=0,1",
                                 beside=[guest("memcheck", "name=mc mem=16M yields=4")])]


# The same on Bochs's ryzen (SVM with nested paging, `make bench K=linux-svm`): bare and as a guest, 1 CPU.
LINUX_BOOTS_SVM = [
    ("bench-linux-bare-ryzen", "bare, 1 CPU", "bench-linux-bare-ryzen"),
    ("bench-linux-guest-ryzen", "guest, 1 vCPU", "bench-linux-bare-ryzen"),
]


def linux_svm_scenarios() -> List[Scenario]:
    return [linux_bare_scenario("bench-linux-bare-ryzen", 1, SVM_MODEL, LINUX_SVM_ARGS),
            linux_guest_scenario("bench-linux-guest-ryzen", 1, "", model=SVM_MODEL, extra=LINUX_SVM_ARGS)]


def linux_idle_scenarios() -> List[Scenario]:
    """Idle at the shell: the guest with `sleep S` in /init against the sleep-0 run, and linux-shell."""
    from scenarios import SCENARIOS
    shell = [sc for sc in SCENARIOS if sc.name == "linux-shell"]  # the monitor's exits, shell idle at its prompt
    return [linux_guest_scenario("bench-linux-guest-idle0", 1, ""),
            linux_guest_scenario("bench-linux-guest-idle%d" % LINUX_IDLE_S, 1, "", LINUX_IDLE_S)] + shell


def linux_marks(log: str, name: str) -> Dict[str, int]:
    m = {"grub": int(_fig(r"grub: boot tsc=0x([0-9a-f]+)", log, name).group(1), 16)}
    for what in ("init", "idle start", "idle end", "init done"):
        m[what] = int(_fig(r"linux: %s tsc=(\d+)" % what, log, name).group(1))
    if "hv: " in log:
        m["entry"] = int(_fig(r"hv: guest linux start-up: .* at TSC (\d+)", log, name).group(1))
        m["khz"] = int(_fig(r"hv: tsc (\d+) kHz", log, name).group(1))
    return m


def linux_exits(log: str, name: str) -> Tuple[int, Dict[str, int]]:
    m = _fig(r"hv: guest linux exits: total (\d+)((?:, [A-Za-z -]+ \d+)*)$", log, name)
    by = {}
    for part in m.group(2).split(", ")[1:]:
        reason, count = part.rsplit(" ", 1)
        by[reason] = int(count)
    return int(m.group(1)), by


def linux_tables(logs: Dict[str, str], boots=LINUX_BOOTS, model: str = "corei7_skylake_x",
                 extra: str = "") -> List[Table]:
    M = lambda t: "%.1f" % (t / 1e6)
    marks = {n: linux_marks(logs[n], n) for n, _, _ in boots}
    exits = {n: linux_exits(logs[n], n) for n, _, _ in boots if "entry" in marks[n]}
    rows = []
    for n, row, bare in boots:
        m, b = marks[n], marks[bare]
        b_linux = b["init"] - b["grub"]
        linux = m["init"] - m.get("entry", m["grub"])
        ram = re.search(r"hv: guest linux host memory: (\d+) KiB RAM", logs[n])
        rows.append([row, M(m["init"]), M(m["grub"]), M(m["entry"] - m["grub"]) if "entry" in m else "-", M(linux),
                     "%.2f" % (m["init"] / b["init"]), "%.2f" % (linux / b_linux),
                     "{:,}".format(exits[n][0]) if n in exits else "-",
                     "%d" % (int(ram.group(1)) // 1024) if ram else "-"])
    gn = [n for n, _, _ in boots if n in exits][0]
    kernel = re.search(r"linux: kernel (\S+)", logs[gn])
    boot = ("Linux to /init: Debian 12 %s, busybox initramfs (its gzip initrd given with `module2 --nounzip`), `%s`, "
            "Bochs %s; M = million TSC ticks = million emulated instructions, all from Bochs's "
            "power-on (the guest's TSC is the host's). to /init: /init's first command (/bin/tsc); BIOS+GRUB: "
            "GRUB's RDMSR of the TSC after loading the files, before `boot`; hv set-up: from there to the guest's "
            "first entry (the hypervisor's boot, the guest's creation, kernel and initrd copied; console lines); "
            "Linux: the kernel's own part (bare: from GRUB's `boot`, guest: from its first entry); x bare: against "
            "the bare boot on as many CPUs; exits: the guest's, first entry to power-off; host RAM: what backs the guest's "
            "128 MiB at its power-off (the hypervisor's `host memory:` line). Goal: guest <= 1.3x bare"
            % (kernel.group(1) if kernel else "kernel",
               "console=ttyS0 quiet 8250.nr_uarts=1 cryptomgr.notests" + (" " + extra if extra else ""), model))
    boot_cols = ["boot", "to /init M", "BIOS+GRUB M", "hv set-up M", "Linux M", "x bare (total)", "x bare (Linux)",
                 "exits", "host RAM MiB"]

    # Exits of each guest run by kind, side by side: first entry to power-off after /init's lines.
    guests = [(n, row) for n, row, _ in boots if n in exits]
    kinds = sorted({k for n, _ in guests for k in exits[n][1]}, key=lambda k: -sum(exits[n][1].get(k, 0)
                                                                                   for n, _ in guests))
    ex_rows = [[k] + [exits[n][1].get(k, 0) for n, _ in guests] for k in kinds]
    ex_rows.append(["total"] + [exits[n][0] for n, _ in guests])
    run = {n: (marks[n]["init done"] - marks[n]["entry"]) / 1e6 for n, _ in guests}
    ex_rows.append(["run, M ticks"] + ["%.1f" % run[n] for n, _ in guests])
    ex_title = ("Linux guests' VM exits by kind, the whole run (first entry to ACPI power-off after /init's lines, "
                "hypervisor included): the hypervisor's `exits:` line")
    return [(boot, boot_cols, rows), (ex_title, ["exit"] + [row for _, row in guests], ex_rows)]


def shell_idle_tables(logs: Dict[str, str]) -> List[Table]:
    gn, ign = "bench-linux-guest-idle0", "bench-linux-guest-idle%d" % LINUX_IDLE_S
    g, i = linux_marks(logs[gn], gn), linux_marks(logs[ign], ign)
    total, by = linux_exits(logs[gn], gn)
    # Idle at the shell: the run with sleep S less the run with sleep 0 (boot and /init's lines cancel out).
    ti, bi = linux_exits(logs[ign], ign)
    win_i, win_0 = i["idle end"] - i["idle start"], g["idle end"] - g["idle start"]
    secs = (win_i - win_0) / (g["khz"] * 1e3)
    idle_rows = [[r, bi.get(r, 0) - by.get(r, 0), "%.2f" % ((bi.get(r, 0) - by.get(r, 0)) / secs)]
                 for r in sorted(set(by) | set(bi), key=lambda r: -(bi.get(r, 0) - by.get(r, 0)))
                 if bi.get(r, 0) != by.get(r, 0)]
    idle_rows.append(["total", ti - total, "%.2f" % ((ti - total) / secs)])
    idle = ("Linux guest idle at the shell (`sleep %d` in /init, bench_idle=%d): exits of that run less those of the "
            "bench_idle=0 run, per second of the sleep window (%.2f s = TSC ticks between `idle start` and `idle end`, "
            "less the sleep-0 window, at the hypervisor's %d kHz TSC)" % (LINUX_IDLE_S, LINUX_IDLE_S, secs, g["khz"]))
    # Idle at a real prompt: the monitor's two `exits linux` answers of linux-shell, seconds apart.
    answers = re.findall(r"guest linux exits: total (\d+)((?:, [A-Za-z -]+ \d+)*)\s*\n.*at TSC (\d+) \((\d+) kHz\)",
                         logs["linux-shell"])
    if len(answers) < 2:
        raise BenchError("linux-shell: fewer than two `exits linux` answers")
    (t0, r0, c0, khz), (t1, r1, c1, _) = answers[-2:]
    s0, s1 = (dict((p.rsplit(" ", 1)[0], int(p.rsplit(" ", 1)[1])) for p in r.split(", ")[1:]) for r in (r0, r1))
    secs = (int(c1) - int(c0)) / (int(khz) * 1e3)
    prompt_rows = [[r, s1.get(r, 0) - s0.get(r, 0), "%.2f" % ((s1.get(r, 0) - s0.get(r, 0)) / secs)]
                   for r in sorted(set(s0) | set(s1), key=lambda r: -(s1.get(r, 0) - s0.get(r, 0)))
                   if s1.get(r, 0) != s0.get(r, 0)]
    prompt_rows.append(["total", int(t1) - int(t0), "%.2f" % ((int(t1) - int(t0)) / secs)])
    prompt = ("Linux guest idle at its shell prompt (scenario linux-shell, the guest alone on CPU 1 of 2): the "
              "monitor's `exits linux` twice, %.2f s of TSC time apart, nothing typed to the guest in between"
              % secs)
    return [(idle, ["exit reason", "exits", "per s"], idle_rows),
            (prompt, ["exit reason", "exits", "per s"], prompt_rows)]


# --- memory virtualization: EPT vs shadow page tables (issue 16), the same guests side by side ----------
# touchall writes every 4 KiB page of 64 MiB once (no paging of its own: the shadow's paging-off root);
# ptswitch (guests/ptswitch.c) switches 6 address spaces of its own for 200 rounds, unmapping, faulting
# back and copy-on-writing pages, as processes do. Figures: the guest's own RDTSC around its work, the
# hypervisor's start-up, exits line and table memory (EPT tables; the shadow's peak).

PAGING_GUESTS = [("touchall", "mem=64M", r"touchall: \d+ pages in (\d+) ticks"),
                 ("ptswitch", "mem=32M rounds=200", r"ptswitch: rounds took (\d+) ticks"),
                 ("ptswitch", "mem=32M rounds=200 mode=pae", r"ptswitch: rounds took (\d+) ticks")]


# The same on SVM (`make bench K=paging-svm`, Bochs ryzen): paging=ept is nested paging there (NPT).
SVM_MODEL = "ryzen"


def paging_name(i: int, paging: str, model: str = "") -> str:
    return "bench-paging-%s%d-%s%s" % (PAGING_GUESTS[i][0], i, paging, "-" + model if model else "")


def paging_cell(i: int, paging: str, model: str = "") -> Scenario:
    g, args, rx = PAGING_GUESTS[i]
    return Scenario(paging_name(i, paging, model), emulator="bochs", cpus=1, mem=256, timeout=900, needs_vmx=True,
                    cpu_model=model or "corei7_skylake_x",
                    modules=[guest(g, "name=t %s paging=%s" % (args, paging))],
                    expect=[rx, r"hv: guest t exited code=0", ALL_DONE], forbid=[r"hv: no virtualization"])


def paging_table(logs: Dict[str, str], model: str = "") -> Table:
    rows = []
    nested = "NPT" if model else "EPT"
    for i, (g, args, rx) in enumerate(PAGING_GUESTS):
        for paging in ("ept", "shadow"):
            nm = paging_name(i, paging, model)
            log = logs[nm]
            start = int(_fig(r"hv: guest t start-up: (\d+) TSC ticks", log, nm).group(1))
            work = int(_fig(rx, log, nm).group(1))
            m = _fig(r"hv: guest t exits: total (\d+)((?:, [A-Za-z -]+ \d+)*)$", log, nm)
            total, by = int(m.group(1)), {}
            for part in m.group(2).split(", ")[1:]:
                reason, count = part.rsplit(" ", 1)
                by[reason] = int(count)
            ept = int(_fig(r"hv: guest t host memory: \d+ KiB RAM \+ (\d+) KiB EPT tables", log, nm).group(1))
            sh = re.search(r"hv: guest t shadow: .* at most (\d+) KiB of shadow tables", log)
            tables = "%d %s" % (ept, nested) if paging == "ept" else "%s shadow" % (sh.group(1) if sh else "?")
            top = ", ".join("%s %d" % (r, c) for r, c in sorted(by.items(), key=lambda x: -x[1])[:4])
            rows.append(["%s %s" % (g, args.replace("mem=", "").replace("rounds=", "r")),
                         nested.lower() if paging == "ept" else paging,
                         "%.2f" % (start / 1e6), "%.2f" % (work / 1e6), total, top, tables])
    if model:
        title = ("SVM: nested paging (NPT) vs shadow page tables on Bochs %s, 1 CPU; M = million TSC ticks = "
                 "million emulated instructions. work: the guest's own RDTSC around its loop; tables: KiB of "
                 "NPT tables (NPT) or the most shadow tables held (shadow; the NPT-format map is then only "
                 "gmem's record)" % model)
        return title, ["guest", "paging", "start-up M", "work M", "exits", "top exits", "tables KiB"], rows
    title = ("EPT vs shadow page tables on Bochs corei7_skylake_x, 1 CPU; M = million TSC ticks = million "
             "emulated instructions. work: the guest's own RDTSC around its loop; tables: KiB of EPT tables "
             "(EPT) or the most shadow tables held (shadow; the EPT is then only gmem's record)")
    return title, ["guest", "paging", "start-up M", "work M", "exits", "top exits", "tables KiB"], rows


# Debian's Linux on EPT and on shadow paging (`make bench K=paging`): the boot to /init (bench_procs=0)
# and, in a second run each, /init's loop of PAGING_LINUX_PROCS runs of `/bin/busybox true` (a fork and
# an exec each) between `linux: procs start/end tsc=T`; the loop's exits are the second run's less the
# first's. Guest alone on Bochs's one CPU, mem=128M, the Linux scenarios' command line.
PAGING_LINUX_PROCS = 300


def paging_linux_name(paging: str, procs: int, model: str = "") -> str:
    return "bench-paging-linux-%s-procs%d%s" % (paging, procs, "-" + model if model else "")


def paging_linux_cell(paging: str, procs: int, model: str = "") -> Scenario:
    from scenarios import LINUX_ARGS, linux_initrd, linux_kernel
    marks = [r"linux: init tsc=\d+", r"linux: init done tsc=\d+"]
    if procs:
        marks += [r"linux: procs start tsc=\d+", r"linux: procs end tsc=\d+"]
    return Scenario(paging_linux_name(paging, procs, model), emulator="bochs", cpus=1, mem=256, timeout=1800,
                    needs_vmx=True, cpu_model=model or "corei7_skylake_x",
                    modules=[linux_kernel("name=linux mem=128M paging=%s %s bench_procs=%d" % (paging, LINUX_ARGS, procs)
                                          if procs else "name=linux mem=128M paging=%s %s" % (paging, LINUX_ARGS)),
                             linux_initrd("linux")],
                    expect=marks + [r"hv: guest linux start-up: .* at TSC \d+", r"hv: guest linux exited code=0",
                                    ALL_DONE],
                    forbid=[r"hv: no virtualization"])


def paging_linux_tables(logs: Dict[str, str], model: str = "") -> List[Table]:
    rows, loop = [], []
    M = lambda t: "%.1f" % (t / 1e6)
    top = lambda by: ", ".join("%s %d" % (r, c) for r, c in sorted(by.items(), key=lambda x: -x[1])[:5] if c)
    nested = "NPT" if model else "EPT"
    for paging in ("ept", "shadow"):
        n0, n1 = paging_linux_name(paging, 0, model), paging_linux_name(paging, PAGING_LINUX_PROCS, model)
        entry = int(_fig(r"hv: guest linux start-up: .* at TSC (\d+)", logs[n0], n0).group(1))
        init = int(_fig(r"linux: init tsc=(\d+)", logs[n0], n0).group(1))
        total, by = linux_exits(logs[n0], n0)
        sh = re.search(r"hv: guest linux shadow: (.*), at most (\d+) KiB of shadow tables", logs[n0])
        ept = int(_fig(r"hv: guest linux host memory: \d+ KiB RAM \+ (\d+) KiB EPT tables", logs[n0], n0).group(1))
        label = nested.lower() if paging == "ept" else paging
        rows.append([label, M(init - entry), total, top(by), "%d %s" % (ept, nested) if paging == "ept" else
                     "%s shadow" % (sh.group(2) if sh else "?")])
        t1, by1 = linux_exits(logs[n1], n1)
        a = int(_fig(r"linux: procs start tsc=(\d+)", logs[n1], n1).group(1))
        b = int(_fig(r"linux: procs end tsc=(\d+)", logs[n1], n1).group(1))
        sh1 = re.search(r"hv: guest linux shadow: (.*), at most (\d+) KiB of shadow tables", logs[n1])
        diff = {r: by1.get(r, 0) - by.get(r, 0) for r in set(by1) | set(by)}
        loop.append([label, M(b - a), "%.0f" % ((b - a) / PAGING_LINUX_PROCS / 1e3), t1 - total,
                     "%.0f" % ((t1 - total) / PAGING_LINUX_PROCS), top(diff),
                     "%s shadow" % sh1.group(2) if sh1 else "%d %s" % (ept, nested)])
    title = ("Debian's Linux (1 vCPU, mem=128M) to /init on Bochs %s, %s vs shadow; M = million TSC "
             % (model or "corei7_skylake_x", nested) +
             "ticks = million emulated instructions, from the guest's first entry to /init's first command; "
             "exits: the whole run (to the power-off after /init's lines)")
    title2 = ("Inside Linux: %d runs of /bin/busybox true from /init's shell (fork + exec each), timed by the "
              "guest's TSC; exits: the run with the loop less the run without" % PAGING_LINUX_PROCS)
    return [(title, ["paging", "to /init M", "exits", "top exits", "tables KiB"], rows),
            (title2, ["paging", "loop M", "K per run", "exits", "exits per run", "top exits", "tables KiB"], loop)]


BENCHES = [
    Bench("exits",
          [Scenario(name, emulator="bochs", cpus=1, mem=256, cpu_model=model, timeout=300, needs_vmx=True,
                    modules=[guest("bench", "name=bench")],
                    expect=[Expect(r"bench: rdtsc-overhead min=\d+ median=\d+", count=1),
                            Expect(r"bench: cpuid min=\d+", count=1), Expect(r"bench: vmcall min=\d+", count=1),
                            Expect(r"bench: pio min=\d+", count=1), ALL_DONE],
                    forbid=[r"hv: no virtualization"])
           for model, name in EXIT_MODELS],
          exits_table),
    Bench("memory",
          [mem_cell(m, c, sz, part) for m, c in MEM_MODES for sz in MEM_SIZES for part in ("full", "10")],
          mem_table),
    Bench("paging", [paging_cell(i, p) for i in range(len(PAGING_GUESTS)) for p in ("ept", "shadow")],
          paging_table),
    Bench("memory-svm", mem_svm_scenarios(), mem_svm_table),
    Bench("paging-linux", [paging_linux_cell(p, n) for p in ("ept", "shadow") for n in (0, PAGING_LINUX_PROCS)],
          paging_linux_tables),
    Bench("paging-svm", [paging_cell(i, p, SVM_MODEL) for i in range(len(PAGING_GUESTS)) for p in ("ept", "shadow")],
          lambda logs: paging_table(logs, SVM_MODEL)),
    Bench("paging-linux-svm", [paging_linux_cell(p, n, SVM_MODEL) for p in ("ept", "shadow")
                               for n in (0, PAGING_LINUX_PROCS)],
          lambda logs: paging_linux_tables(logs, SVM_MODEL)),
    Bench("irq-timer", [ib_scenario("bench-irq-timer" + sfx, 1, "test=timer n=200", model=model)
                        for model, sfx in IRQ_MODELS], irq_timer_table),
    Bench("irq-ipi", [sc for model, sfx in IRQ_MODELS for sc in (
        ib_scenario("bench-irq-ipi-2cpu" + sfx, 2, "test=ipi n=100 vcpus=2 cpu=0,1", timeout=600, model=model),
        ib_scenario("bench-irq-ipi-1cpu" + sfx, 1, "test=ipi n=50 vcpus=2 cpu=0,0", timeout=600, model=model))],
          irq_ipi_table),
    Bench("irq-idle", [idle_scenario(a, t, n, m, sfx) for m, sfx in IDLE_MODELS for a, t in IDLE_CASES
                       for n in IDLE_TICKS], irq_idle_table),
    Bench("linux", linux_bench_scenarios(), linux_tables),
    Bench("linux-svm", linux_svm_scenarios(),
          lambda logs: linux_tables(logs, LINUX_BOOTS_SVM, SVM_MODEL, LINUX_SVM_ARGS)),
    Bench("shell-idle", linux_idle_scenarios(), shell_idle_tables),
]


# --- printing ------------------------------------------------------------------------------------------

def render(title: str, cols: List[str], rows: List[List[object]]) -> str:
    cells = [[str(c) for c in cols]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]

    def line(r):
        # First column left-aligned (a name), figures right-aligned.
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
    out = [title, line(cells[0]), "  ".join("-" * w for w in widths)] + [line(r) for r in cells[1:]]
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTR", help="benchmarks whose name contains SUBSTR")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("-j", type=int, default=2, metavar="N", help="scenarios run in parallel (default 2)")
    ap.add_argument("--keep", action="store_true", help="keep the ISOs")
    args = ap.parse_args()

    benches = [b for b in BENCHES if not args.k or any(k in b.name for k in args.k)]
    if args.list:
        for b in benches:
            print("%-20s %s" % (b.name, ", ".join(s.name for s in b.scenarios)))
        return 0

    unique = {s.name: s for b in benches for s in b.scenarios}   # a scenario two benchmarks share runs once
    scens = sorted(unique.values(), key=lambda s: -s.cost())
    results = {}
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.j)) as pool:
            for s, r in zip(scens, pool.map(lambda sc: run_scenario(sc, keep=args.keep), scens)):
                results[s.name] = r
                print("%s %s (%.1f s)%s" % ("ran" if r.ok else "FAIL", s.name, r.seconds,
                                            "" if r.ok else ": %s (log: %s)" % (r.why, os.path.relpath(r.log_path))),
                      flush=True)
    except KeyboardInterrupt:
        kill_all()
        print("interrupted", flush=True)
        os._exit(130)

    failed = 0
    saved = {}
    for b in benches:
        if not all(results[s.name].ok for s in b.scenarios):
            print("\n%s: not run to completion, no table" % b.name)
            failed += 1
            continue
        try:
            tables = b.table({s.name: results[s.name].log for s in b.scenarios})
        except BenchError as e:
            print("\n%s: %s" % (b.name, e))
            failed += 1
            continue
        tables = tables if isinstance(tables, list) else [tables]
        for title, cols, rows in tables:
            print("\n" + render(title, cols, rows))
        saved[b.name] = [{"title": t, "columns": c, "rows": r} for t, c, r in tables] if len(tables) > 1 \
            else {"title": tables[0][0], "columns": tables[0][1], "rows": tables[0][2]}
    os.makedirs(TESTS_OUT, exist_ok=True)
    with open(os.path.join(TESTS_OUT, "bench-results.json"), "w") as f:
        json.dump(saved, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
