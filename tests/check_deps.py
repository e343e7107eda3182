#!/usr/bin/env python3
"""Checks that the hypervisor's #include "..." dependencies point one way (docs/design.md, "Layout").

Layers, highest first; a file may include headers of its own layer and of any layer below it:

    core > loader > {svm, vmx} > vcpu > vdev > shadow > gmem > ept > npt > pmm > arch/x86 > console > lib > x86 primitives

- svm/ and vmx/ are the back ends: siblings on one layer, neither includes the other's headers. What they
  share (struct vcpu, the neutral exit handlers, the decoder, the CPUID policy, the FPU switch, the start
  state) is in vcpu/, below both; core/ chooses one through vcpu/backend.h.

- "x86 primitives" are arch/x86/cpu.h and arch/x86/spinlock.h: instructions and a lock that everything
  needs, console/ included (port I/O for the UART, PAUSE, the CPU id, the console lock). They are a layer
  of their own, the lowest, and therefore include no header of the tree at all. The rest of arch/x86/
  sits above console/: it prints.
- include/tessera/ is the ABI shared with guests: anyone may include it; it includes only itself.
- A layer folder that does not exist (yet) is skipped; an include of one still counts by its path.
- A vendor's private headers (vmx/vmcs.h, vmx/skip.h, svm/vmcb.h) are included only under its folder.
- Above the back ends, a back end is reached only through its table (struct vcpu_backend, vcpu/backend.h):
  of svm/ and vmx/, core/ and loader/ include only the headers that declare it (BACKEND_TABLES).
- shadow/ (the guest page walker and the shadow page tables) is compiled into host unit tests as it is:
  it reaches memory only through pmm/ and its callers' callbacks, so it may not include the x86
  primitives (instructions, locks); its layer, below vdev/, already keeps vcpu/ and vmx/ out.

Fails (exit 1), listing file:line and the rule, on an include of a higher layer, an include that is in
no layer, a cycle between layers, or a cycle between files (#pragma once hides those from the compiler).

    tests/check_deps.py [--root DIR] [--graph]
"""

import argparse
import os
import re
import sys

LAYERS = ["core", "loader", "svm", "vmx", "vcpu", "vdev", "shadow", "gmem", "ept", "npt", "pmm", "arch/x86", "console", "lib", "x86 primitives"]
# Folders on one layer: siblings, which may not include each other.
SIBLINGS = [{"svm", "vmx"}]
PRIMITIVES = {"arch/x86/cpu.h": "x86 primitives", "arch/x86/spinlock.h": "x86 primitives"}
ABI = "include/tessera"


def rank(unit):
    """The layer's height, 0 the highest; siblings share the first one's."""
    for group in SIBLINGS:
        if unit in group:
            return min(LAYERS.index(u) for u in group)
    return LAYERS.index(unit)


def order():
    out, seen = [], set()
    for u in LAYERS:
        group = next((g for g in SIBLINGS if u in g), {u})
        if u not in seen:
            out.append("{%s}" % ", ".join(sorted(group)) if len(group) > 1 else u)
            seen |= group
    return " > ".join(out)


ORDER = order()

INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.M)
COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def unit_of(path):
    """The layer (or ABI) a tree-relative path belongs to, or None."""
    if path in PRIMITIVES:
        return PRIMITIVES[path]
    if path.startswith(ABI + "/"):
        return ABI
    best = None
    for layer in LAYERS:
        if path.startswith(layer + "/") and (best is None or len(layer) > len(best)):
            best = layer
    return best


def resolve(root, src, name):
    """Where `#include "name"` in src points, as the compiler looks (the including file's folder, then
    -I. and -Iinclude). A file that does not exist yet is placed by its path."""
    for cand in (os.path.join(os.path.dirname(src), name), name, os.path.join("include", name)):
        cand = os.path.normpath(cand)
        if os.path.isfile(os.path.join(root, cand)):
            return cand
    return os.path.normpath(name)


def scan(root):
    """Every C source and header of the layers and the ABI: {path: [(line, included path)]}."""
    files = {}
    for folder in LAYERS[:-1] + [ABI]:
        top = os.path.join(root, folder)
        if not os.path.isdir(top):
            continue
        for d, subdirs, names in os.walk(top):
            subdirs.sort()
            for n in sorted(names):
                if not n.endswith((".c", ".h")):
                    continue
                path = os.path.relpath(os.path.join(d, n), root)
                if unit_of(path) != folder and path not in PRIMITIVES:
                    continue  # a deeper layer's folder (arch/x86 inside arch/...): scanned as that one
                with open(os.path.join(root, path), errors="replace") as f:
                    text = f.read()
                # Blank out comments, keeping line numbers.
                text = COMMENT.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
                files[path] = [(text.count("\n", 0, m.start()) + 1, resolve(root, path, m.group(1)))
                               for m in INCLUDE.finditer(text)]
    return files


# A vendor's private headers: its hardware structures (the VMCS, the VMCB) are read and written only under its
# own folder; everything above reads vCPU state through vcpu/ (docs/design.md, "Two vendors").
VENDOR_PRIVATE = {"vmx/vmcs.h": "vmx", "vmx/skip.h": "vmx", "svm/vmcb.h": "svm"}

# The headers declaring each back end's table (svm_backend, vmx_backend): all that the layers above the
# back ends include of them.
BACKEND_TABLES = {"svm/svm.h", "vmx/vcpu.h"}



# Folders built into host unit tests unchanged, and the headers they may therefore not include.
HOST_TESTED = {"shadow": {"arch/x86/cpu.h": "CPU instructions", "arch/x86/spinlock.h": "a lock"}}


def rule_broken(src_unit, dst_unit, dst=None):
    """Why src_unit may not include dst_unit, or None when it may."""
    if dst in HOST_TESTED.get(src_unit, {}):
        return "%s/ is host-tested as it is: %s is %s; take a callback" % (src_unit, dst, HOST_TESTED[src_unit][dst])
    if dst in VENDOR_PRIVATE and src_unit != VENDOR_PRIVATE[dst]:
        return "%s is %s/'s own: read vCPU state through vcpu/" % (dst, VENDOR_PRIVATE[dst])
    if dst_unit is None:
        return "the included file is in no layer (nor in %s/)" % ABI
    if (dst_unit in SIBLINGS[0] and src_unit not in SIBLINGS[0] and src_unit in LAYERS
            and rank(src_unit) < rank(dst_unit) and dst not in BACKEND_TABLES):
        return "above the back ends only their tables are reached (%s: vcpu/backend.h)" % ", ".join(sorted(BACKEND_TABLES))
    if src_unit == dst_unit or dst_unit == ABI and src_unit != "x86 primitives":
        return None
    if src_unit == ABI:
        return "%s/ is the guest ABI: it includes only itself" % ABI
    if src_unit == "x86 primitives":
        return "the x86 primitives (%s) include no header of the tree" % ", ".join(sorted(PRIMITIVES))
    if rank(dst_unit) == rank(src_unit):
        return "%s and %s are sibling back ends: neither includes the other; share through vcpu/" % (src_unit, dst_unit)
    if rank(dst_unit) < rank(src_unit):
        return "%s may not include %s, a higher layer" % (src_unit, dst_unit)
    return None


def cycles(graph):
    """Strongly connected components with more than one node (Tarjan), each as a sorted list."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def cycle_path(graph, comp):
    """One cycle through the component, as a node list that ends where it starts."""
    members, start = set(comp), comp[0]
    path, seen = [start], {start}
    while True:
        nxt = sorted(w for w in graph[path[-1]] if w in members)
        back = [w for w in nxt if w == start]
        if back and len(path) > 1:
            return path + [start]
        fresh = [w for w in nxt if w not in seen]
        if not fresh:  # the component guarantees a way back; take the first known node
            w = next(w for w in nxt if w in seen)
            return path[path.index(w):] + [w]
        path.append(fresh[0])
        seen.add(fresh[0])


def check(root):
    files = scan(root)
    problems = []
    unit_edges, file_edges = {}, {}
    for src in sorted(files):
        su = unit_of(src)
        for line, dst in files[src]:
            du = unit_of(dst)
            why = rule_broken(su, du, dst)
            if why:
                problems.append("%s:%d: includes \"%s\": %s" % (src, line, dst, why))
            if du and du != su:
                unit_edges.setdefault(su, {}).setdefault(du, "%s:%d" % (src, line))
            if dst != src:
                file_edges.setdefault(src, {}).setdefault(dst, line)
    for comp in cycles(unit_edges):
        p = cycle_path(unit_edges, comp)
        steps = ", ".join("%s -> %s (%s)" % (a, b, unit_edges[a][b]) for a, b in zip(p, p[1:]))
        problems.append("cycle between layers: %s" % steps)
    for comp in cycles(file_edges):
        p = cycle_path(file_edges, comp)
        steps = ", ".join("%s:%d -> %s" % (a, file_edges[a][b], b) for a, b in zip(p, p[1:]))
        problems.append("cycle between files: %s" % steps)
    return files, unit_edges, problems


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    help="the source tree (default: this script's ../)")
    ap.add_argument("--graph", action="store_true", help="also print which layer includes which")
    args = ap.parse_args()

    files, unit_edges, problems = check(args.root)
    if args.graph:
        for su in sorted(unit_edges, key=lambda u: LAYERS.index(u) if u in LAYERS else len(LAYERS)):
            print("%s -> %s" % (su, ", ".join(sorted(unit_edges[su]))))
    for p in problems:
        print(p)
    nincl = sum(len(v) for v in files.values())
    print("check_deps: %d files, %d includes, %d problem%s (order: %s; %s/ for anyone)"
          % (len(files), nincl, len(problems), "" if len(problems) == 1 else "s", ORDER, ABI))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
