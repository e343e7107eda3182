#!/usr/bin/env python3
"""Runs the hostile guest (guests/hostile.c) with random seeds for as long as asked and reports the seeds
that failed. Each run is the scenario family of `make test` (tests/scenarios.py, hostile_mix): two hostile
guests (seeds S and S+1) beside two 16 MiB memchecks and hello, in Bochs, with a memory policy and CPU
count that vary from run to run (`--backend vmx`, the default: Bochs VMX; `--backend svm`: the SVM back end on
QEMU EPYC, svm-hostile-*-qemu; Bochs ryzen never preempts a guest spinning with IF = 0, docs/hardware.md);
it fails on a panic or host exception, a stopped or failing hostile guest,
a damaged honest guest, or memory not returned. Replay a failure with `HOSTILE_SEED=S tests/run.py -k
hostile-new` (same seeds; the policy and CPU count printed here may differ) or with the printed settings.

    tests/fuzz_guests.py [--seconds N] [--actions N] [-j N] [--seed S] [--backend vmx|svm]
"""

import argparse
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.runner import kill_all, run_scenario  # noqa: E402
from scenarios import hostile_mix  # noqa: E402


def one(seed: int, actions: int, keep: bool, backend: str):
    rnd = random.Random(seed)
    cpus = rnd.choice((1, 2))
    if backend == "svm":      # one hostile guest per CPU: two on one meet QEMU 7.2's DR7 crash (docs/hardware.md)
        cpus = 2
    alloc = rnd.choice(("eager", "lazy", "demand"))
    sc = hostile_mix("fuzz-%s-%d" % (backend, seed), (seed, seed + 1), cpus=cpus, alloc=alloc, actions=actions,
                     timeout=120 + 4 * actions, svm="qemu" if backend == "svm" else "")
    r = run_scenario(sc, keep=keep)
    return seed, cpus, alloc, r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=300, help="stop starting runs after this long (300)")
    ap.add_argument("--actions", type=int, default=200, help="actions per hostile guest (200)")
    ap.add_argument("-j", type=int, default=2, help="runs in parallel (2)")
    ap.add_argument("--seed", type=int, default=None, help="first seed (default: from the time)")
    ap.add_argument("--keep", action="store_true", help="keep every run's files, not only failures'")
    ap.add_argument("--backend", choices=("vmx", "svm"), default="vmx",
                    help="vmx: Bochs skylake_x (default); svm: QEMU EPYC without KVM")
    args = ap.parse_args()

    start = time.monotonic()
    seed = args.seed if args.seed is not None else int(time.time() * 1000) % 1000000007
    failed, runs = [], 0
    pending = set()
    try:
        with ThreadPoolExecutor(max_workers=args.j) as pool:
            while True:
                while len(pending) < args.j and time.monotonic() - start < args.seconds:
                    pending.add(pool.submit(one, seed, args.actions, args.keep, args.backend))
                    seed += 2
                if not pending:
                    break
                done = [f for f in pending if f.done()]
                if not done:
                    time.sleep(0.5)
                    continue
                for f in done:
                    pending.discard(f)
                    s, cpus, alloc, r = f.result()
                    runs += 1
                    what = "%s seed=%d,%d actions=%d cpus=%d alloc=%s" % (args.backend, s, s + 1, args.actions, cpus, alloc)
                    if r.ok:
                        print("PASS %s (%.1f s)" % (what, r.seconds), flush=True)
                    else:
                        failed.append(what)
                        print("FAIL %s: %s (log: %s)" % (what, r.why, os.path.relpath(r.log_path)), flush=True)
    except KeyboardInterrupt:
        kill_all()
        raise
    print("fuzz: %d runs in %.0f s, %d failed%s" % (runs, time.monotonic() - start, len(failed),
                                                   "".join("\n  " + w for w in failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
