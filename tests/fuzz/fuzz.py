#!/usr/bin/env python3
"""Runs the libFuzzer harnesses (tests/fuzz/README.md) and reports, per harness, the executions and the
coverage: of the seeds alone, at the start of the run (seeds + the corpus kept from earlier runs), and at
the end, with the new coverage the run found beyond the seeds. Exits 1 if any harness found a crash, a
leak, undefined behaviour, a hang or a broken contract; its reproducer is named.

    tests/fuzz/fuzz.py [--seconds TOTAL | --each S] [-j N] HARNESS...   fuzz (make fuzz-host)
    tests/fuzz/fuzz.py --smoke HARNESS...                               seeds + a fixed-seed run (make test)

Files under build/fuzz/: bin/H (make fuzz-bins), seeds/H (seeds.py), corpus/H (what the runs found,
kept between runs), crashes/H/ (reproducers), logs/H.log. Replay a reproducer: build/fuzz/bin/H FILE.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "build", "fuzz")
SEEDS_LOG = os.path.join(OUT, "logs", "%s.seeds.log")   # every seed run once: the seeds' coverage
MAX_LEN = {"fuzz_loader": 131072, "fuzz_bootinfo": 16384, "fuzz_gpt": 65632, "fuzz_lapic": 6144}
SMOKE_RUNS = 10000      # fixed-seed mutations per harness in --smoke: deterministic, about a second each
STAT = re.compile(r"^#(\d+)\s+(INITED|DONE)\s+cov: (\d+) ft: (\d+) corp: (\d+)/\S+(?:.*?exec/s: (\d+))?", re.M)
BAD = re.compile(r"^(==\d+==ERROR: .*|SUMMARY: .*|.*runtime error: .*|.*contract violated: .*|"
                 r"==\d+== ERROR: libFuzzer: .*|ALARM: .*)$", re.M)
ARTIFACT = re.compile(r"Test unit written to (\S+)|artifact_prefix='[^']*'; Test unit written to (\S+)")


def paths(h):
    return {k: os.path.join(OUT, k, h) for k in ("bin", "seeds", "corpus", "crashes")} | \
        {"log": os.path.join(OUT, "logs", h + ".log")}


def libfuzzer(h, args, dirs, log):
    """Runs harness h with libFuzzer flags `args` over corpus dirs; returns (rc, output)."""
    p = paths(h)
    os.makedirs(p["crashes"], exist_ok=True)
    os.makedirs(os.path.dirname(log), exist_ok=True)
    cmd = [p["bin"], "-max_len=%d" % MAX_LEN.get(h, 4096), "-timeout=10", "-rss_limit_mb=2048",
           "-print_final_stats=1", "-artifact_prefix=" + p["crashes"] + "/"] + args + dirs
    env = dict(os.environ, ASAN_OPTIONS="abort_on_error=0:detect_leaks=1:symbolize=1",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    with open(log, "w") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT, env=env, cwd=ROOT).returncode
    with open(log, errors="replace") as f:
        return rc, f.read()


def stats(out):
    """INITED and DONE (cov, ft, corpus entries) and the executions, from libFuzzer's output."""
    r = {}
    for m in STAT.finditer(out):
        r[m.group(2)] = (int(m.group(3)), int(m.group(4)), int(m.group(5)))
        r["execs"] = int(m.group(1))
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    if m:
        r["execs"] = int(m.group(1))
    return r


def finding(rc, out):
    """None if the run ended cleanly, else (what, reproducer or None)."""
    bad = BAD.findall(out)
    art = [a or b for a, b in ARTIFACT.findall(out)]
    if rc == 0 and not bad and not art:
        return None
    return ("; ".join(dict.fromkeys(bad)) or "exit status %d" % rc, art[-1] if art else None)


def seed_coverage(h):
    p = paths(h)
    rc, out = libfuzzer(h, ["-runs=0"], [p["seeds"]], SEEDS_LOG % h)
    return rc, out, stats(out).get("INITED")


def fuzz(h, seconds):
    p = paths(h)
    os.makedirs(p["corpus"], exist_ok=True)
    rc0, out0, seeds = seed_coverage(h)
    if finding(rc0, out0):
        return h, seeds, {}, finding(rc0, out0), SEEDS_LOG % h
    rc, out = libfuzzer(h, ["-max_total_time=%d" % seconds], [p["corpus"], p["seeds"]], p["log"])
    return h, seeds, stats(out), finding(rc, out), p["log"]


def smoke(h):
    """Every seed once, then SMOKE_RUNS mutations from a fixed seed: the same inputs each time, so it
    passes or fails the same way until the code changes. What they find goes to a scratch directory
    (libFuzzer writes to the first one given), never into the seeds."""
    p = paths(h)
    scratch = os.path.join(OUT, "smoke", h)
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    rc, out, seeds = seed_coverage(h)
    log = SEEDS_LOG % h
    if not finding(rc, out):
        log = p["log"] + ".smoke"
        rc, out = libfuzzer(h, ["-seed=1", "-runs=%d" % SMOKE_RUNS], [scratch, p["seeds"]], log)
    f = finding(rc, out)
    if not os.path.isdir(p["seeds"]) or not os.listdir(p["seeds"]):
        f = ("no seeds in %s (make fuzz-bins)" % os.path.relpath(p["seeds"], ROOT), None)
    st = stats(out)
    print("%s: %s, seeds cov %s ft %s, %d execs" % (h, "FAIL " + f[0] if f else "ok", seeds and seeds[0],
                                                    seeds and seeds[1], st.get("execs", 0)))
    if f and f[1]:
        print("%s: reproducer %s (log %s)" % (h, os.path.relpath(f[1], ROOT), os.path.relpath(log, ROOT)))
    return not f


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("harness", nargs="+")
    ap.add_argument("--seconds", type=int, default=60, help="total fuzzing time, split over the harnesses")
    ap.add_argument("--each", type=int, help="seconds per harness (instead of --seconds)")
    ap.add_argument("-j", type=int, default=1, help="harnesses fuzzed at once (each still gets its time)")
    ap.add_argument("--smoke", action="store_true", help="seeds and a short fixed-seed run only")
    a = ap.parse_args()
    for h in a.harness:
        if not os.access(paths(h)["bin"], os.X_OK):
            print("%s: not built (make fuzz-bins)" % h)
            return 1
    if a.smoke:
        return 0 if all([smoke(h) for h in a.harness]) else 1

    each = a.each or max(1, a.seconds * max(1, a.j) // len(a.harness))
    print("fuzz-host: %d harness(es), %d s each, %d at a time" % (len(a.harness), each, a.j), flush=True)
    with ThreadPoolExecutor(max_workers=max(1, a.j)) as pool:
        results = list(pool.map(lambda h: fuzz(h, each), a.harness))

    print("%-14s %10s %9s %15s %15s %15s %13s %7s  %s" % ("harness", "execs", "exec/s", "seeds cov/ft",
          "INITED cov/ft", "DONE cov/ft", "new cov/ft", "corpus", "result"))
    failed = 0
    for h, seeds, st, f, log in results:
        ini, done = st.get("INITED"), st.get("DONE")
        fmt = lambda t: "%d/%d" % (t[0], t[1]) if t else "-"
        new = "+%d/+%d" % (done[0] - seeds[0], done[1] - seeds[1]) if done and seeds else "-"
        execs = st.get("execs", 0)
        print("%-14s %10d %9d %15s %15s %15s %13s %7s  %s" % (h, execs, execs // each, fmt(seeds), fmt(ini), fmt(done),
              new, done[2] if done else "-", "ok" if not f else "FOUND: " + f[0][:200]))
        if f:
            failed += 1
            print("%-14s reproducer: %s  log: %s" % ("", os.path.relpath(f[1], ROOT) if f[1] else "-",
                                                    os.path.relpath(log, ROOT)))
    print("fuzz-host: %d harness(es) clean, %d with findings" % (len(results) - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
