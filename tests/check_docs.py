#!/usr/bin/env python3
"""Checks the documentation's links: README.md is the front page and docs/*.md hold the reference, so a
renamed heading or a moved file must not leave a link pointing nowhere.

- Every relative link [text](path) or [text](path#anchor) in a tracked *.md file names a file or folder
  that exists; an anchor into a .md file names one of its headings (GitHub's anchors: lower case, spaces
  become '-', punctuation other than '-' and '_' dropped, a repeated heading gets '-1', '-2', ...).
- Every docs/*.md is linked from README.md (the front page lists them all).

Links inside code blocks and inline code are not links. Fails (exit 1), listing file:line and the
problem.

    tests/check_docs.py [--root DIR]
"""

import argparse
import os
import re
import sys

LINK = re.compile(r"\[[^\]]*\]\(([^()\s]+)\)")
FENCE = re.compile(r"^\s*```")
CODE_SPAN = re.compile(r"`[^`]*`")
SKIP_DIRS = {".git", "build"}


def markdown_files(root):
    for d, dirs, files in os.walk(root):
        dirs[:] = sorted(x for x in dirs if x not in SKIP_DIRS)
        for f in sorted(files):
            if f.endswith(".md"):
                yield os.path.relpath(os.path.join(d, f), root)


def text_lines(path, keep_code=False):
    """(line number, line) outside code blocks; inline code removed unless keep_code."""
    fence = False
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if FENCE.match(line):
                fence = not fence
                continue
            if not fence:
                yield n, line if keep_code else CODE_SPAN.sub("", line)


def anchors(path):
    """The anchors GitHub gives the headings of a Markdown file."""
    seen = {}
    out = set()
    for _, line in text_lines(path, keep_code=True):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else "%s-%d" % (slug, n))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    root = ap.parse_args().root
    problems = []
    linked_from_readme = set()
    cache = {}
    files = list(markdown_files(root))
    for rel in files:
        for n, line in text_lines(os.path.join(root, rel)):
            for target in LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue  # http:, https:, mailto:
                path, _, anchor = target.partition("#")
                dest = os.path.normpath(os.path.join(os.path.dirname(rel), path)) if path else rel
                if rel == "README.md":
                    linked_from_readme.add(dest)
                if not os.path.exists(os.path.join(root, dest)):
                    problems.append("%s:%d: %s: no such file" % (rel, n, target))
                    continue
                if anchor and dest.endswith(".md"):
                    if dest not in cache:
                        cache[dest] = anchors(os.path.join(root, dest))
                    if anchor not in cache[dest]:
                        problems.append("%s:%d: %s: no heading '%s' in %s" % (rel, n, target, anchor, dest))
    for rel in files:
        if os.path.dirname(rel) == "docs" and rel not in linked_from_readme:
            problems.append("%s: not linked from README.md" % rel)
    for p in problems:
        print(p)
    print("check_docs: %d Markdown files, %d problem%s" % (len(files), len(problems), "" if len(problems) == 1 else "s"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
