#!/usr/bin/env python3
"""runner/bochs-screen: the scenario runner reads Bochs's screen pseudo-terminal for the whole run.

Bochs 2.7 with its debugger draws the term display on a pty of its own: it opens /dev/ptmx, names the
slave on stderr ('Bochs connected to screen "/dev/pts/N"') and curses writes the screen to the master.
Unread, the slave's buffers fill after some 20 KiB and the next write blocks Bochs, and the emulated
machine with it, for good (tests/lib/runner.py, ScreenDrain). This check starts a stand-in for Bochs
through the runner's own start_emulator(): it sets up its pty the same way (master from /dev/ptmx,
cbreak and no echo as curses leaves it, the same line on stderr), writes 1 MiB to the master in two
halves a second apart, and says how much it wrote. The runner must let it write all of it: without
drain_screen the stand-in blocks at the buffers' size and the timeout kills it.
"""

import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib.runner import TESTS_OUT, Scenario, start_emulator  # noqa: E402

TOTAL = 1 << 20          # bytes the stand-in writes: 50x what the pty holds unread
LIMIT = 30               # seconds; an unread pty blocks the writer for ever, a read one takes well under 1 s

WRITER = r'''
import fcntl, os, struct, sys, termios, time
TIOCSPTLCK, TIOCGPTN = 0x40045431, 0x80045430          # <asm-generic/ioctls.h>: unlockpt(), ptsname()
m = os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY)
fcntl.ioctl(m, TIOCSPTLCK, struct.pack("i", 0))
n = struct.unpack("I", fcntl.ioctl(m, TIOCGPTN, struct.pack("I", 0)))[0]
t = termios.tcgetattr(m)                                  # on a master: the pair's (the slave's) modes
t[3] &= ~(termios.ICANON | termios.ECHO)                  # curses' cbreak() and noecho()
termios.tcsetattr(m, termios.TCSANOW, t)
sys.stderr.write('\nBochs connected to screen "/dev/pts/%d"\n' % n)
sys.stderr.flush()
total, wrote, told = int(sys.argv[1]), 0, 0
line = b"\x1b[H" + b"screen line " * 80 + b"\r\n"
for half in (0, 1):
    while wrote < total * (half + 1) // 2:
        wrote += os.write(m, line[:total * (half + 1) // 2 - wrote])
        if wrote - told >= 4096:
            told = wrote
            sys.stderr.write("wrote %d\n" % wrote)
            sys.stderr.flush()
    time.sleep(1)                                         # the reader must last the whole run
sys.stderr.write("wrote %d of %d: done\n" % (wrote, total))
'''


def main() -> int:
    out = os.path.join(TESTS_OUT, "runner-bochs-screen")
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    sc = Scenario("runner-bochs-screen", emulator="bochs", timeout=LIMIT)
    proc, screen = start_emulator(sc, [sys.executable, "-c", WRITER, str(TOTAL)], dict(os.environ), out)
    try:
        rc = proc.wait(timeout=LIMIT + 10)
    except Exception:
        os.killpg(proc.pid, 9)
        rc = proc.wait()
    if screen:
        end = time.monotonic() + 5
        while screen.running() and time.monotonic() < end:
            time.sleep(0.1)
        screen.close()
    with open(os.path.join(out, "emulator.out"), errors="replace") as f:
        said = f.read()
    done = "wrote %d of %d: done" % (TOTAL, TOTAL) in said
    last = [ln for ln in said.splitlines() if ln.startswith("wrote")]
    if not done:
        print("the stand-in for Bochs could not write its screen: %s after %ds (exit status %s); "
              "nobody read its pty%s" % (last[-1] if last else "nothing written", LIMIT, rc,
                                         "" if screen else " (the runner started no ScreenDrain)"))
        return 1
    if screen is None or screen.bytes != TOTAL:
        print("the runner read %s of the %d bytes written to the screen pty"
              % ("none" if screen is None else screen.bytes, TOTAL))
        return 1
    print("check_screen: %d bytes written and read through %s" % (TOTAL, screen.pty))
    shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
