#!/usr/bin/env python3
"""Traces hypervisor paths instruction by instruction in Bochs and says where they go, by function.

A guest marks a region with two Bochs magic breakpoints (XCHG BX, BX; `magic_break: enabled=1`); the
Bochs debugger traces every instruction between them (`trace on`) into trace.log beside the run's serial
log. Each traced instruction the hypervisor ran (from the exit stub, vmx_exit_stub, to the VMRESUME that
returns to the guest; on an AMD model, `--model ryzen`, the SVM back end: from the instruction after
VMRUN in svm_enter to the next VMRUN) is counted against the function of hypervisor.elf that holds its address (`nm`);
the guest's own instructions are counted apart. In Bochs one instruction is one TSC tick
(../shared/PLATFORM.md), so the totals are the path lengths `make bench` reports.

    tests/trace.py [exits|timer|ipi|ipi2|ipi2h] [--model corei7_skylake_x|tigerlake|ryzen]

exits: the `bench` guest's CPUID, VMCALL and port I/O (one of each, trace=1);
timer: the `ibench` guest's TSC-deadline timer in xAPIC mode (test=timer trace=1): from before the WRMSR
       of the deadline to after the handler, with the vCPU spinning, then with it in HLT;
ipi:   the `ibench` guest's IPI round trip (test=ipi trace=1) with both vCPUs on one CPU, both in HLT, xAPIC
       then x2APIC: vCPU 0's ICR write to its handler of the answer;
ipi2, ipi2h: the same on two CPUs (cpu=0,1), both vCPUs spinning (trace=2), resp. vCPU 1 spinning and
       vCPU 0 in HLT (trace=3): each CPU's instructions apart (the debugger's `set $cpu = N`).
"""

import argparse
import bisect
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.runner import ALL_DONE, BUILD, Scenario, guest, run_scenario  # noqa: E402

HV_ELF = os.path.join(BUILD, "hypervisor.elf")
LINE = re.compile(r"^\((\d+)\)\.\[(\d+)\] \[0x[0-9a-f]+\] [0-9a-f]{4}:([0-9a-f]+) \([^)]*\): (.*?)\s+;")

WHATS = {
    # name: (guest, args, regions' names, marker line the guest prints when done)
    "exits": ("bench", "name=bench n=1 trace=1", ["cpuid", "vmcall", "pio"], r"bench: traced"),
    "timer": ("ibench", "name=ib test=timer n=2 apic=xapic trace=1",
              ["deadline's WRMSR to the handler, xAPIC, vCPU running", "the same, vCPU in HLT"], r"ibench: traced"),
    "ipi": ("ibench", "name=ib test=ipi n=2 vcpus=2 cpu=0,0 trace=1",
            ["IPI round trip, both vCPUs on one CPU in HLT, xAPIC", "the same, x2APIC"], r"ibench: traced"),
    "ipi2": ("ibench", "name=ib test=ipi n=2 vcpus=2 cpu=0,1 trace=2",
             ["IPI round trip, vCPUs on two CPUs, both spinning, xAPIC", "the same, x2APIC"], r"ibench: traced"),
    "ipi2h": ("ibench", "name=ib test=ipi n=2 vcpus=2 cpu=0,1 trace=3",
              ["IPI round trip, vCPUs on two CPUs, vCPU 1 spinning, vCPU 0 in HLT, xAPIC", "the same, x2APIC"],
              r"ibench: traced"),
}
CPUS = {"ipi2": 2, "ipi2h": 2}


def symbols(elf: str):
    out = subprocess.run(["nm", "-n", "--defined-only", elf], stdout=subprocess.PIPE, text=True, check=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            syms.append((int(parts[0], 16), parts[2]))
    end = max(a for a, _ in syms) + 0x10000
    return [a for a, _ in syms], [n for _, n in syms], syms[0][0], end


def regions(log: str, cpu: int = 0):
    """The traced regions of the debugger log, CPU `cpu`'s instructions: lists of (address, text)."""
    out, cur = [], None
    for line in log.splitlines():
        if line.startswith("Tracing enabled for CPU0"):
            cur = []
        elif line.startswith("Tracing disabled for CPU0") or (line.startswith("(0) Magic breakpoint") and cur):
            if cur:
                out.append(cur)
            cur = None
        elif cur is not None:
            m = LINE.match(line)
            if m and int(m.group(1)) == cpu:
                cur.append((int(m.group(3), 16), m.group(4)))
    return out


def attribute(region, addrs, names, lo, hi, stub):
    """(guest count, [(function, count)] in order of first appearance, host total, [host stretches: each
    exit's instructions from the stub to VMRESUME, or to the end of the region]), host code outside
    the exit path (the scheduler, a host interrupt) counted with the stretch it falls in."""
    host, guest_n, order, counts, stretches = False, 0, [], {}, []
    for addr, text in region:
        if addr == stub or (not host and lo <= addr < hi):
            if not host:
                stretches.append(0)
            host = True
        if host and lo <= addr < hi:
            stretches[-1] += 1
            i = bisect.bisect_right(addrs, addr) - 1
            fn = names[i].split(".")[0] if i >= 0 else "?"   # NASM's local labels: their function
            if fn not in counts:
                order.append(fn)
                counts[fn] = 0
            counts[fn] += 1
            if text.startswith(("vmresume", "vmlaunch", "vmrun")):
                host = False
        else:
            guest_n += 1
    return guest_n, [(f, counts[f]) for f in order], sum(counts.values()), stretches


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="?", default="exits", choices=sorted(WHATS))
    ap.add_argument("--model", default="corei7_skylake_x")
    args = ap.parse_args()
    gname, gargs, names, done = WHATS[args.what]
    n, cpus = len(names), CPUS.get(args.what, 1)
    # `set $cpu = N` points the debugger's trace command at CPU N.
    on = ["trace on"] + sum([["set $cpu = %d" % c, "trace on"] for c in range(1, cpus)], []) + (["set $cpu = 0"] if cpus > 1 else [])
    off = [c.replace("trace on", "trace off") for c in on]
    sc = Scenario("trace-%s-%s" % (args.what, args.model.replace("corei7_", "")), emulator="bochs", cpus=cpus,
                  mem=256, cpu_model=args.model, timeout=600, needs_vmx=True, modules=[guest(gname, gargs)],
                  expect=[done, ALL_DONE], forbid=[r"hv: no virtualization"],
                  bochs_options=["magic_break: enabled=1", "debugger_log: trace.log"],
                  bochs_debugger=["c"] + (on + ["c"] + off + ["c"]) * n + ["quit"])
    r = run_scenario(sc)
    if not r.ok:
        print("FAIL %s: %s (log: %s)" % (sc.name, r.why, r.log_path))
        return 1
    with open(os.path.join(os.path.dirname(r.log_path), "trace.log"), errors="replace") as f:
        log = f.read()
    addrs, syms, lo, hi = symbols(HV_ELF)
    stub = addrs[syms.index("vmx_exit_stub")]
    for cpu in range(cpus):
        regs = regions(log, cpu)
        if len(regs) < n:
            print("only %d traced regions of %d" % (len(regs), n))
            return 1
        for name, reg in zip(names, regs):
            g, fns, total, stretches = attribute(reg, addrs, syms, lo, hi, stub)
            print("%s on %s%s: %d instructions traced, %d the hypervisor's (%s), %d the guest's"
                  % (name, args.model, ", CPU %d" % cpu if cpus > 1 else "", len(reg), total,
                     " + ".join(map(str, stretches)), g))
            for fn, c in fns:
                print("  %5d  %s" % (c, fn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
