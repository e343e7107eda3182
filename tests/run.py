#!/usr/bin/env python3
"""Runs every test: the dependency check (deps/one-way, tests/check_deps.py), the documentation's links
(docs/links, tests/check_docs.py), the host unit tests that
tests/unit/*.mk declare (`UNIT_TESTS += name`: build/unit/name, pass = exit 0; one that was not built fails),
a smoke run of each fuzzing harness of tests/fuzz/fuzz.mk (fuzz/NAME: its seeds and a fixed-seed run)
and the emulator scenarios of tests/scenarios.py, 2 at a time (longest first). Prints `PASS name (T s)` /
`FAIL name: why (log: path)` per test and one summary line `N passed, M failed`; exits 1 if any failed.

    tests/run.py [-k SUBSTR]... [--list] [-j N] [--keep]
                 [--paging shadow | --model penryn|lynnfield | --backend svm | --with-svm]
"""

import argparse
import dataclasses
import glob
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.runner import BUILD, ROOT, TESTS_OUT, Result, Scenario, kill_all, run_scenario  # noqa: E402
from scenarios import BOCHS_RYZEN_BUGS, MODELS, QEMU_TIMEOUT, SCENARIOS  # noqa: E402

UNIT_TIMEOUT = 300
DURATIONS = os.path.join(TESTS_OUT, "durations.json")
# The checks of the source tree: test name -> its script in tests/ (exit 0: pass; its output: the problems).
CHECKS = {"deps/one-way": "check_deps.py", "docs/links": "check_docs.py", "vcpu/exit-kinds": "check_exit_kinds.py",
          "runner/bochs-screen": "check_screen.py"}


def unit_tests():
    """The unit test programs the build declares (tests/unit/*.mk: `UNIT_TESTS += name ...`), as
    build/unit/name paths: whether each was built is for run_unit to say."""
    names = set()
    for mk in glob.glob(os.path.join(ROOT, "tests", "unit", "*.mk")):
        with open(mk) as f:
            for m in re.finditer(r"^\s*UNIT_TESTS\s*\+?=\s*(.*)$", f.read(), re.M):
                names.update(m.group(1).split())
    return [os.path.join(BUILD, "unit", n) for n in sorted(names)]


def run_unit(path: str) -> Result:
    name = "unit/" + os.path.basename(path)
    log = os.path.join(TESTS_OUT, "unit", os.path.basename(path) + ".log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        return Result(name, False, "not built", 0.0, path)  # declared in tests/unit/*.mk, yet no binary
    t0 = time.monotonic()
    with open(log, "wb") as f:
        try:
            rc = subprocess.run([path], stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                                timeout=UNIT_TIMEOUT).returncode
            why = "" if rc == 0 else "exit status %d" % rc
        except subprocess.TimeoutExpired:
            why = "timeout after %ds" % UNIT_TIMEOUT
    return Result(name, not why, why, time.monotonic() - t0, log)


def run_check(name: str) -> Result:
    """One of CHECKS: tests/check_deps.py (#include dependencies point one way, docs/design.md, "Layout"),
    tests/check_docs.py (every link of README.md and docs/*.md leads somewhere)."""
    script = CHECKS[name]
    log = os.path.join(TESTS_OUT, name + ".log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    t0 = time.monotonic()
    with open(log, "wb") as f:
        rc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", script)], timeout=60,
                            stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT).returncode
    summary = script[:-len(".py")] + ":"
    with open(log, errors="replace") as f:
        problems = [ln.strip() for ln in f if ln.strip() and not ln.startswith(summary)]
    why = "" if rc == 0 else "%d problem%s, first: %s" % (
        len(problems), "" if len(problems) == 1 else "s", problems[0] if problems else "exit status %d" % rc)
    return Result(name, not why, why, time.monotonic() - t0, log)


def fuzz_harnesses():
    """The libFuzzer harnesses tests/fuzz/fuzz.mk declares (`FUZZ_HARNESSES := ...`), each run as fuzz/NAME:
    its seeds, then a short fixed-seed run (tests/fuzz/fuzz.py --smoke; built by `make fuzz-bins`)."""
    with open(os.path.join(ROOT, "tests", "fuzz", "fuzz.mk")) as f:
        m = re.search(r"^FUZZ_HARNESSES\s*:?=\s*(.*)$", f.read(), re.M)
    return m.group(1).split() if m else []


def run_fuzz_smoke(harness: str) -> Result:
    name = "fuzz/" + harness
    log = os.path.join(TESTS_OUT, name + ".log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    t0 = time.monotonic()
    with open(log, "wb") as f:
        rc = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "fuzz", "fuzz.py"), "--smoke", harness],
                            timeout=120, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT).returncode
    with open(log, errors="replace") as f:
        lines = [ln.strip() for ln in f if ln.strip()]
    why = "" if rc == 0 else (lines[0] if lines else "exit status %d" % rc)
    return Result(name, not why, why, time.monotonic() - t0, log)


def uses_shadow(s: Scenario) -> bool:
    """Whether a scenario asks for shadow paging (the hypervisor's or a guest's `paging=shadow`)."""
    return "paging=shadow" in s.cmdline or any("paging=shadow" in m.args for m in s.modules)


def vmx_machine(scens):
    """The scenarios that boot the hypervisor on Bochs's default VMX machine (skylake_x), which the
    --model and --backend sets run again elsewhere (the other Intel models are there for their VMX
    features)."""
    return [s for s in scens if s.emulator == "bochs" and not s.bare and not s.iso and
            s.cpu_model == Scenario.cpu_model]


def shadow_set(scens, paging: str):
    """The scenarios that boot the hypervisor on a Bochs VMX model, each with `paging=shadow` as the
    hypervisor's default (NAME@shadow), and those skipped (about EPT itself: Scenario.ept_only; needing
    unrestricted guest, which VMX gives only with EPT: Scenario.needs_ug)."""
    scens = [s for s in scens if s.emulator == "bochs" and not s.bare and not s.iso and
             not s.cpu_model.startswith("ryzen")]
    def why(s):
        return "needs EPT: " + s.ept_only if s.ept_only else \
            "needs unrestricted guest, which paging=shadow turns off with EPT: " + s.needs_ug if s.needs_ug else ""
    skipped = [(s.name + "@" + paging, why(s)) for s in scens if why(s)]
    return [dataclasses.replace(s, name="%s@%s" % (s.name, paging), cmdline=(s.cmdline + " paging=" + paging).strip())
            for s in scens if not why(s)], skipped


def model_set(scens, model: str):
    """The scenarios of Bochs's default VMX machine (skylake_x; the selection of svm_set) again on the
    older Bochs model MODELS[model] (NAME@model), and those skipped with their reason: about EPT itself
    (Scenario.ept_only: guests run on shadow paging there) or not on that model
    (Scenario.not_on_model); the lines that model's missing features change are swapped
    (Scenario.on_model)."""
    scens = vmx_machine(scens)

    def why(s):
        return "needs EPT: " + s.ept_only if s.ept_only else \
            "needs unrestricted guest: " + s.needs_ug if s.needs_ug else \
            "not on %s: %s" % (model, s.not_on_model[model]) if model in s.not_on_model else ""
    skipped = [(s.name + "@" + model, why(s)) for s in scens if why(s)]
    return [dataclasses.replace(s, name="%s@%s" % (s.name, model), cpu_model=MODELS[model],
                                expect=[s.on_model.get(model, {}).get(e, e) if isinstance(e, str) else e
                                        for e in s.expect])
            for s in scens if not why(s)], skipped


def svm_set(scens):
    """The scenarios of Bochs's default VMX machine on the SVM back end (svm_variant), and those
    skipped with their reason."""
    scens = vmx_machine(scens)
    variants = [svm_variant(s) for s in scens]
    skipped = [(s.name + "@svm", "not on SVM: " + why) for s, (v, why) in zip(scens, variants) if not v]
    return [v for v, _ in variants if v], skipped


def svm_variant(s: Scenario):
    """A scenario of Bochs's VMX machine on the SVM back end: (the scenario, "") or (None, why not).
    On Bochs's AMD model, ryzen, as NAME@svm; where one of Bochs 2.7's own SVM bugs stops it there
    (scenarios.BOCHS_RYZEN_BUGS), under QEMU's software SVM (EPYC) instead, as NAME@svm-qemu, unless a
    scenario of the suite already runs it on SVM (Scenario.svm_twin) or QEMU cannot run it either
    (Scenario.not_on_qemu_svm)."""
    why = ("its shadow paging lines are VMX's (virtual-8086 real mode); SVM's own: svm-shadow-*"
           if uses_shadow(s) else s.not_on_svm)
    if not why:
        return dataclasses.replace(s, name=s.name + "@svm", cpu_model="ryzen"), ""
    if why in BOCHS_RYZEN_BUGS and s.svm_twin:
        return None, "%s; its SVM twin under QEMU: %s" % (why, s.svm_twin)
    if why in BOCHS_RYZEN_BUGS and s.not_on_qemu_svm:
        return None, "%s; nor under QEMU EPYC: %s" % (why, s.not_on_qemu_svm)
    if why in BOCHS_RYZEN_BUGS:
        return dataclasses.replace(s, name=s.name + "@svm-qemu", emulator="qemu", qemu_cpu="EPYC",
                                   timeout=max(s.timeout, QEMU_TIMEOUT)), ""
    return None, why


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTR",
                    help="run only tests whose name contains SUBSTR (repeatable: any of them)")
    ap.add_argument("--list", action="store_true", help="list the selected tests and exit")
    ap.add_argument("-j", type=int, default=2, metavar="N", help="scenarios run in parallel (default 2)")
    ap.add_argument("--keep", action="store_true", help="keep every ISO, not only those of failures")
    ap.add_argument("--paging", choices=["shadow"],
                    help="run only the scenarios that boot the hypervisor on a Bochs VMX model, each with "
                         "`paging=shadow` as the hypervisor's default (names gain @shadow): the whole set on "
                         "shadow paging. Scenarios about EPT itself (Scenario.ept_only: its page sizes, "
                         "the `ept` monitor command) are skipped with their reason")
    ap.add_argument("--backend", choices=["svm"],
                    help="run only the scenarios that boot the hypervisor on Bochs's VMX machine (skylake_x), "
                         "each on Bochs's AMD model instead (ryzen: SVM with nested paging; names gain @svm): "
                         "the set on the other back end. Scenarios that cannot run there "
                         "(Scenario.not_on_svm: VMX itself, shadow paging, Bochs ryzen's own bugs) are "
                         "skipped with their reason; those that meet one of Bochs 2.7's SVM bugs there run "
                         "under QEMU EPYC (SVM, software) instead, @svm-qemu")
    ap.add_argument("--model", choices=sorted(MODELS),
                    help="run only the scenarios that boot the hypervisor on Bochs's VMX machine (skylake_x), "
                         "each on that older Bochs VMX model instead (penryn: no EPT, VPID or preemption "
                         "timer; lynnfield: EPT without unrestricted guest; names gain @penryn, @lynnfield): "
                         "the set where the hypervisor runs every guest on shadow paging unasked. Scenarios "
                         "about EPT (Scenario.ept_only) or needing what skylake_x has and the model lacks "
                         "(Scenario.not_on_model) "
                         "are skipped with their reason")
    ap.add_argument("--with-svm", action="store_true",
                    help="the whole suite and the --backend svm set, in one pool (`make test`)")
    args = ap.parse_args()
    if sum(map(bool, (args.paging, args.model, args.backend, args.with_svm))) > 1:
        ap.error("--paging, --model, --backend and --with-svm are four different sets: one at a time")
    variant = args.paging or args.model or args.backend

    def selected(name):
        return not args.k or any(k in name for k in args.k)

    units = [p for p in unit_tests() if selected("unit/" + os.path.basename(p))]
    scens, skipped = list(SCENARIOS), []      # skipped: (name, why)
    if args.paging:
        scens, skipped = shadow_set(scens, args.paging)
    elif args.model:
        scens, skipped = model_set(scens, args.model)
    elif args.backend:
        scens, skipped = svm_set(scens)
    elif args.with_svm:
        more, skipped = svm_set(scens)
        scens += more
    scens = [s for s in scens if selected(s.name)]
    skipped = [(n, why) for n, why in skipped if selected(n)]
    names = [s.name for s in SCENARIOS]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        print("duplicate scenario names: %s" % ", ".join(sorted(dup)))
        return 1
    checks = [c for c in CHECKS if selected(c)]
    fuzz = [h for h in fuzz_harnesses() if selected("fuzz/" + h)]
    if variant:                       # the host-side tests do not depend on it
        units, checks, fuzz = [], [], []
    if args.list:
        for c in checks:
            print(c)
        for p in units:
            print("unit/" + os.path.basename(p))
        for h in fuzz:
            print("fuzz/" + h)
        for s in scens:
            print("%-28s %-9s cpus=%d mem=%dM %s" % (s.name, s.emulator, s.cpus, s.mem, s.description))
        for name, why in skipped:
            print("%-28s skipped: %s" % (name, why))
        return 0

    os.makedirs(TESTS_OUT, exist_ok=True)
    lock = threading.Lock()
    results = []

    def report(r: Result):
        with lock:
            results.append(r)
            if r.ok:
                print("PASS %s (%.1f s)" % (r.name, r.seconds), flush=True)
            else:
                print("FAIL %s: %s (log: %s)" % (r.name, r.why, os.path.relpath(r.log_path)), flush=True)

    def one(sc):
        try:
            r = run_scenario(sc, keep=args.keep)
        except Exception as e:  # a runner bug must still show as a failed test
            r = Result(sc.name, False, "runner error: %r" % e, 0.0, os.path.join(TESTS_OUT, sc.name))
        report(r)

    # One pool for both kinds, longest first so the workers finish together: the time each test took in
    # the previous run (build/tests/durations.json), else a guess from the scenario's shape.
    try:
        with open(DURATIONS) as f:
            before = json.load(f)
    except (OSError, ValueError):
        before = {}
    tasks = [(s.name, s.cost() * 3, lambda sc=s: one(sc)) for s in scens]
    def unit(path):
        try:
            r = run_unit(path)
        except Exception as e:  # could not run it at all: a failed test, not a silent gap
            r = Result("unit/" + os.path.basename(path), False, "runner error: %r" % e, 0.0, path)
        report(r)

    tasks += [("unit/" + os.path.basename(p), 5.0, lambda path=p: unit(path)) for p in units]

    def fuzz_smoke(h):
        try:
            r = run_fuzz_smoke(h)
        except Exception as e:
            r = Result("fuzz/" + h, False, "runner error: %r" % e, 0.0, os.path.join(TESTS_OUT, "fuzz"))
        report(r)

    tasks += [("fuzz/" + h, 2.0, lambda h=h: fuzz_smoke(h)) for h in fuzz]

    def check(name):
        try:
            r = run_check(name)
        except Exception as e:
            r = Result(name, False, "runner error: %r" % e, 0.0, os.path.join(TESTS_OUT, name))
        report(r)

    tasks += [(c, 1.0, lambda c=c: check(c)) for c in checks]
    for name, why in skipped:
        print("SKIP %s: %s" % (name, why), flush=True)
    if not tasks:
        print("no test selected")
        return 1
    tasks.sort(key=lambda t: -before.get(t[0], t[1]))
    try:
        with ThreadPoolExecutor(max_workers=max(1, args.j)) as pool:
            for _, _, fn in tasks:
                pool.submit(fn)
    except KeyboardInterrupt:
        kill_all()
        print("interrupted", flush=True)
        os._exit(130)  # do not let the pool start the queued tests
    before.update({r.name: round(r.seconds, 1) for r in results})
    with open(DURATIONS, "w") as f:
        json.dump(before, f, indent=1, sort_keys=True)

    passed = sum(r.ok for r in results)
    failed = len(results) - passed + (len(tasks) - len(results))  # a task that reported nothing failed
    print("%d passed, %d failed%s" % (passed, failed, ", %d skipped" % len(skipped) if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted")
        sys.exit(130)
