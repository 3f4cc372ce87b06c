#!/usr/bin/env python3
"""Shrinks a scenario while it keeps failing, for regression files.

    minimize.py --runner BUILD/tests/cogen-scenario FILE > small.scn
    minimize.py --ref-crash FILE > small.scn     # the reference itself crashes

Failing means, by default: cogen-scenario and the oracle (the reference
runner if present, else tests/fuzz/oracle.py) print different things for a
valid scenario. --ref-crash: the reference runner dies from a signal.
--same-error: keep only variants whose first differing expected line has
the same operation as the original's, so that shrinking does not wander
off to another bug.

Greedy delta debugging on lines: drop whole blocks (def ... end, try ...
end, repeat ... end, one except/finally clause), an instance's start with
its free, then single lines, then simplify words (drop an exception's word, values to 0), until nothing more
can go. Every candidate runs in fresh processes, so crashes are fine.
"""
import argparse
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_REF = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "semantics", "scenario_ref.py"))
TMP = f"/tmp/cogen-minimize-{os.getpid()}.scn"


TIMEOUT = [60]


def run(cmd, text):
    with open(TMP, "w") as f:
        f.write(text)
    try:
        p = subprocess.run(cmd + [TMP], capture_output=True, timeout=TIMEOUT[0])
    except subprocess.TimeoutExpired:
        return None
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def first_diff_op(a, b):
    for x, y in zip(a.splitlines(), b.splitlines()):
        if x != y:
            return x.split(" -> ")[0]
    return None


class Test:
    def __init__(self, args):
        self.args = args
        ref = args.ref if os.path.exists(args.ref) else None
        self.oracle = [sys.executable, ref or os.path.join(HERE, "oracle.py")]
        self.key = None

    def __call__(self, text):
        a = self.args
        want = run(self.oracle, text)
        if want is None:
            return False
        if a.ref_crash:
            return want[0] < 0
        if want[0] != 0 or "RecursionError" in want[1]:
            return False  # only valid, comparable scenarios
        got = run([a.runner], text)
        if got is None or got[:2] == want[:2]:
            return got is None
        if a.same_error:
            key = first_diff_op(want[1], got[1])
            if self.key is None:
                self.key = key
            return key == self.key
        return True


def blocks(lines):
    """(start, stop) line ranges, stop exclusive, of blocks and clauses."""
    out = []
    stack = []
    for i, ln in enumerate(lines):
        w = ln.split()
        if not w:
            continue
        if w[0] in ("def", "try", "repeat"):
            stack.append((i, w[0]))
        elif w[0] in ("except", "finally") and stack:
            out.append((i, None))  # clause start, completed below
        elif w[0] == "end" and stack:
            start, _ = stack.pop()
            out.append((start, i + 1))
    # clauses: from an except/finally line to the next clause or end at the same depth
    res = [b for b in out if b[1] is not None]
    for i, ln in enumerate(lines):
        w = ln.split()
        if w and w[0] in ("except", "finally"):
            ind = len(ln) - len(ln.lstrip())
            j = i + 1
            while j < len(lines):
                lw = lines[j].split()
                lind = len(lines[j]) - len(lines[j].lstrip())
                if lw and lind <= ind and lw[0] in ("except", "finally", "end"):
                    break
                j += 1
            res.append((i, j))
    res.sort(key=lambda b: b[0] - b[1])  # biggest first
    return res


def simplify_words(line):
    """Simpler variants of one line."""
    w = line.split()
    ind = line[:len(line) - len(line.lstrip())]
    out = []
    if len(w) >= 3 and w[0] in ("raise",) and len(w) == 3:
        out.append(ind + " ".join(w[:2]))
    if len(w) == 4 and w[0] == "throw":
        out.append(ind + " ".join(w[:3]))
    if w and w[0] in ("call",) and len(w) == 5 and w[1] == "throw":
        out.append(ind + " ".join(w[:4]))
    for i, x in enumerate(w):
        if (x.lstrip("-").isdigit() and x != "0") or (x == "None" and w[0] in ("yield", "return", "send")):
            out.append(ind + " ".join(w[:i] + ["0"] + w[i + 1:]))
    if len(w) == 2 and w[0] == "return":
        out.append(ind + "return")
    return out


def shrink(text, test):
    lines = text.splitlines()
    changed = True
    while changed:
        changed = False
        for start, stop in blocks(lines):
            if stop > len(lines):
                continue
            cand = lines[:start] + lines[stop:]
            if cand != lines and test("\n".join(cand) + "\n"):
                lines, changed = cand, True
                break
        if changed:
            continue
        # An instance's `start` with its `free` (neither goes alone).
        for i, ln in enumerate(lines):
            w = ln.split()
            if len(w) == 3 and w[0] == "start" and ln == ln.lstrip():
                j = next((k for k in range(i + 1, len(lines)) if lines[k].split()[:2] == ["free", w[1]]), None)
                if j is None:
                    continue
                cand = lines[:i] + lines[i + 1:j] + lines[j + 1:]
                if test("\n".join(cand) + "\n"):
                    lines, changed = cand, True
                    break
        if changed:
            continue
        i = len(lines) - 1
        while i >= 0:
            cand = lines[:i] + lines[i + 1:]
            if test("\n".join(cand) + "\n"):
                lines, changed = cand, True
            i -= 1
        if changed:
            continue
        for i in range(len(lines)):
            for alt in simplify_words(lines[i]):
                cand = lines[:i] + [alt] + lines[i + 1:]
                if test("\n".join(cand) + "\n"):
                    lines, changed = cand, True
                    break
    return "\n".join(lines) + "\n"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("file")
    ap.add_argument("--runner", help="cogen-scenario binary")
    ap.add_argument("--ref", default=DEFAULT_REF)
    ap.add_argument("--ref-crash", action="store_true")
    ap.add_argument("--same-error", action="store_true")
    ap.add_argument("--timeout", type=float, default=60, help="seconds before a run counts as a hang")
    args = ap.parse_args(argv[1:])
    TIMEOUT[0] = args.timeout
    if not args.ref_crash and not args.runner:
        ap.error("--runner is required")
    text = open(args.file).read()
    test = Test(args)
    try:
        if not test(text):
            print("minimize: the scenario does not fail to begin with", file=sys.stderr)
            return 1
        sys.stdout.write(shrink(text, test))
    finally:
        if os.path.exists(TMP):
            os.remove(TMP)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
