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
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.runner import ALL_DONE, TESTS_OUT, Expect, Scenario, guest, kill_all, run_scenario  # noqa: E402

Table = Tuple[str, List[str], List[List[object]]]  # title, column names, rows


class BenchError(Exception):
    pass


@dataclass
class Bench:
    name: str
    scenarios: List[Scenario]
    table: Callable[[Dict[str, str]], Table]


# --- exit round trips: the `bench` guest ---------------------------------------------------------------
# guests/bench prints `bench: <what> min=<ticks> median=<ticks> n=<n>` for cpuid, vmcall, pio, ...
# and `bench: rdtsc-overhead min=<ticks> median=<ticks>` (the cost of the two RDTSCs around each sample).

BENCH_LINE = r"bench: (?P<what>[\w.-]+) min=(?P<min>\d+) median=(?P<median>\d+)(?: n=(?P<n>\d+))?"


def exits_table(logs: Dict[str, str]) -> Table:
    log = logs["bench-exits"]
    figures = {m.group("what"): m for m in re.finditer(BENCH_LINE, log)}
    if "rdtsc-overhead" not in figures:
        raise BenchError("no `bench: rdtsc-overhead` line")
    over = figures.pop("rdtsc-overhead")
    omin, omed = int(over.group("min")), int(over.group("median"))
    if not figures:
        raise BenchError("no exit figures")
    rows = []
    for what, m in figures.items():
        mn, md = int(m.group("min")), int(m.group("median"))
        rows.append([what, mn, md, m.group("n") or "-", mn - omin, md - omed])
    title = "VM exit round trips on Bochs corei7_skylake_x, 1 CPU (TSC ticks = emulated instructions; " \
            "rdtsc overhead min=%d median=%d subtracted in the last two columns)" % (omin, omed)
    return title, ["exit", "min", "median", "n", "net min", "net median"], rows


# --- guest memory: eager vs lazy vs demand, chunk 2M/4K, guest size 64M/256M/1G --------------------------
# Each cell boots one `touchall` guest twice: touching every page (start-up cost, touch cost, exits) and
# touching 10% of its RAM (host memory in use then). Figures come from the hypervisor's lines
#   hv: guest NAME start-up: N TSC ticks (create C, VMCS set-up S)
#   hv: guest NAME memory: touched X MiB of Y MiB, Z first-touch exits
#   hv: guest NAME host memory: R KiB RAM + E KiB EPT tables
# and the guest's own `touchall: N pages in T ticks` (RDTSC around its loop, TSC offset 0).

MEM_MODES = [("eager", "2M"), ("lazy", "2M"), ("lazy", "4K"), ("demand", "2M"), ("demand", "4K")]
MEM_SIZES = [64, 256, 1024]


def mem_cell(mode: str, chunk: str, size: int, part: str) -> Scenario:
    pct = "" if part == "full" else " percent=10"
    return Scenario("bench-mem-%s%s-%dm-%s" % (mode, chunk.lower(), size, part), emulator="bochs", cpus=1,
                    mem=max(256, size + 256), timeout=900, needs_vmx=True,
                    modules=[guest("touchall", "name=t mem=%dM alloc=%s chunk=%s%s" % (size, mode, chunk, pct))],
                    expect=[r"touchall: \d+ pages in \d+ ticks", r"hv: guest t exited code=0", ALL_DONE],
                    forbid=[r"hv: no VMX"])


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


BENCHES = [
    Bench("exits",
          [Scenario("bench-exits", emulator="bochs", cpus=1, mem=256, timeout=300, needs_vmx=True,
                    modules=[guest("bench", "name=bench")],
                    expect=[Expect(r"bench: rdtsc-overhead min=\d+ median=\d+", count=1),
                            Expect(r"bench: cpuid min=\d+", count=1), Expect(r"bench: vmcall min=\d+", count=1),
                            Expect(r"bench: pio min=\d+", count=1), ALL_DONE],
                    forbid=[r"hv: no VMX"])],
          exits_table),
    Bench("memory",
          [mem_cell(m, c, sz, part) for m, c in MEM_MODES for sz in MEM_SIZES for part in ("full", "10")],
          mem_table),
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

    scens = sorted((s for b in benches for s in b.scenarios), key=lambda s: -s.cost())
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
            title, cols, rows = b.table({s.name: results[s.name].log for s in b.scenarios})
        except BenchError as e:
            print("\n%s: %s" % (b.name, e))
            failed += 1
            continue
        print("\n" + render(title, cols, rows))
        saved[b.name] = {"title": title, "columns": cols, "rows": rows}
    os.makedirs(TESTS_OUT, exist_ok=True)
    with open(os.path.join(TESTS_OUT, "bench-results.json"), "w") as f:
        json.dump(saved, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
