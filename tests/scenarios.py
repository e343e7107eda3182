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

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.runner import ALL_DONE, Expect, Scenario, data, guest  # noqa: E402,F401

# --- contract lines (see the hypervisor's console contract) --------------------------------------------
READY = r"^\[cpu\d+\] hv: ready$"
MEMORY = r"^\[cpu\d+\] hv: memory usable (\d+) MiB, free (\d+) MiB$"
NO_VMX = r"^\[cpu\d+\] hv: no VMX: "


def CPUS_ONLINE(n: int) -> str:
    return r"^\[cpu\d+\] hv: cpus online %d/%d$" % (n, n)


def GUEST_STARTED(name: str) -> str:
    return r"^\[cpu\d+\] hv: guest %s started: " % re.escape(name)


def GUEST_EXITED(name: str, code: int) -> str:
    return r"^\[cpu\d+\] hv: guest %s exited code=%d$" % (re.escape(name), code)


def GUEST_SAYS(name: str, text_regex: str) -> str:
    """A line of guest NAME's console (text_regex is a regex for the text after `[NAME] `)."""
    return r"^(?:\[cpu\d+\] )?\[%s\] %s" % (re.escape(name), text_regex)


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

def boot(name: str, emulator: str, cpus: int, mem: int, timeout: float = 60, **kw) -> Scenario:
    """Boot foundation: every CPU up, a memory figure consistent with the RAM given, ready. No guests.
    Both figures come before `hv: ready`, in either order. The run ends at `hv: ready` (plus 1.5 s to
    catch a crash right after it; with no guests the hypervisor powers off there anyway)."""
    return Scenario(name, emulator=emulator, cpus=cpus, mem=mem, timeout=timeout,
                    expect=[Expect(CPUS_ONLINE(cpus), count=1), Expect(MEMORY, count=1), Expect(READY, count=1)],
                    check=checks(before([CPUS_ONLINE(cpus), MEMORY], READY), memory_within(mem)),
                    end=READY, settle=1.5, **kw)


def bochs_vmx(name: str, cpus: int = 1, mem: int = 256, timeout: float = 120, **kw) -> Scenario:
    """A guest scenario on Bochs (the VMX machine). Default: 1 CPU, 256 MiB, run until all guests finish."""
    kw.setdefault("forbid", [NO_VMX])
    return Scenario(name, emulator="bochs", cpus=cpus, mem=mem, timeout=timeout, needs_vmx=True, **kw)


SCENARIOS = [
    # Boot foundation: QEMU for the boot path, SMP bring-up, memory maps, UEFI; Bochs as the VMX machine.
    boot("boot-qemu-1cpu-128m", "qemu", 1, 128),
    boot("boot-qemu-4cpu-128m", "qemu", 4, 128),
    boot("boot-qemu-1cpu-2g", "qemu", 1, 2048),
    boot("boot-qemu-4cpu-2g", "qemu", 4, 2048),
    boot("boot-uefi-2cpu-256m", "qemu-uefi", 2, 256, timeout=90),
    boot("boot-bochs-4cpu-256m", "bochs", 4, 256, timeout=180),
]
