#!/usr/bin/env python3
"""Checks that every VMX exit reason vmx_exit_dispatch (vmx/exit.c) handles has its own neutral exit
kind in vmx_exit_kinds[] (vmx/exit_kind.c), so it is counted and named in the `exits:` lines and not
as "unexpected". Reasons past EXIT_REASON_MAX (SEAMCALL, TDCALL) and entry failures are not counted.

    tests/check_exit_kinds.py [--root DIR]
"""
import argparse
import os
import re
import sys

UNCOUNTED = {"EXIT_SEAMCALL", "EXIT_TDCALL", "EXIT_REASON_MAX"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = ap.parse_args().root
    exit_c = open(os.path.join(root, "vmx/exit.c")).read()
    body = exit_c[exit_c.index("int vmx_exit_dispatch(struct vcpu *v)"):]
    body = body[:body.index("\n}\n")]
    handled = set(re.findall(r"case (EXIT_[A-Z0-9_]+)\b", body)) - UNCOUNTED
    table = open(os.path.join(root, "vmx/exit_kind.c")).read()
    mapped = set(re.findall(r"K\((EXIT_[A-Z0-9_]+), VCPU_EXIT_[A-Z0-9_]+\)", table))
    missing = sorted(handled - mapped)
    for m in missing:
        print("vmx/exit.c handles %s but vmx/exit_kind.c maps it to no kind (it would count as unexpected)" % m)
    print("check_exit_kinds: %d reasons handled, %d mapped, %d missing" % (len(handled), len(mapped), len(missing)))
    return 1 if missing or not handled else 0


if __name__ == "__main__":
    sys.exit(main())
