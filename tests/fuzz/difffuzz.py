#!/usr/bin/env python3
"""Differential fuzzing: random scenarios through cogen-scenario and an oracle.

    difffuzz.py --runner BUILD/tests/cogen-scenario --start 0 --count 500
    difffuzz.py --check-oracle --count 5000     # own oracle vs the reference

Each seed gives one scenario (scenario_gen.py). The oracle runs inside
long-lived Python worker processes (many scenarios per process);
cogen-scenario runs as a subprocess per scenario, reading the scenario on
its stdin. Any difference in stdout, stderr (for invalid scenarios) or exit
status is a mismatch: the scenario is printed with both outputs and saved
under --save. A worker that dies (CPython itself crashing) is restarted at
the next seed and the scenario is reported.

Oracle: the reference runner (shared/semantics/scenario_ref.py beside the
repository, or --ref PATH) when it exists and this is CPython 3.10 or 3.11,
else the project's own tests/fuzz/oracle.py. --oracle picks one explicitly.
Every scenario first goes through oracle.py in the worker, which also
collects coverage statistics (--stats) and spots the scenarios that may
crash CPython 3.10/3.11 (see oracle.py): those run in a separate process,
and are counted apart when CPython does crash.

--mutate N: also derive N invalid-or-odd variants of each scenario (lines
deleted, duplicated, swapped, words replaced), to exercise the parsers and
their error messages.

Not compared, and counted apart: scenarios whose expected trace involves
a RecursionError (where CPython's recursion limit bites depends on the
runner's own frames). Excused when they differ, and counted apart: those in
which CPython's cycle collector runs body code (oracle.py: the trace then
depends on when CPython collects).

Exit status: 0 when everything matched, 1 on any mismatch or oracle crash,
2 on bad usage.
"""
import argparse
import difflib
import gc
import importlib.util
import json
import os
import queue
import random
import signal
import shlex
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import scenario_gen  # noqa: E402

DEFAULT_REF = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "semantics", "scenario_ref.py"))
OWN = os.path.join(HERE, "oracle.py")
ORACLE_TIMEOUT = 30  # seconds per scenario, in process
RUNNER_TIMEOUT = 20


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


class Oracle:
    """An oracle module run in this process: run() gives (stdout, stderr,
    status) as its command line would, or status "hazard" / "failed"."""

    def __init__(self, path, name):
        self.mod = load(path, name)

    def run(self, text, stats=None):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(ORACLE_TIMEOUT)
        try:
            lines = self.mod.run_text(text, stats) if stats is not None else self.mod.run_text(text)
            return "\n".join(lines) + "\n", "", 0
        except self.mod.ScenarioError as e:
            return "", f"scenario error: {e}\n", 2
        except Timeout:
            return None, "oracle timed out", "failed"
        except Exception as e:  # noqa: BLE001
            if type(e).__name__ == "CPythonHazard":
                return None, str(e), "hazard"
            if type(e).__name__ == "GCTiming":
                return "\n".join(e.lines) + "\n", str(e), "gc"
            return None, f"oracle failed: {type(e).__name__}: {e}", "failed"
        finally:
            signal.alarm(0)


# What to put before the runner: an emulator (qemu) or a checker (valgrind),
# as the tool matrix and cross builds set it (docs/tools.md).
WRAP = shlex.split(os.environ.get("COGEN_TEST_WRAPPER", ""))


def run_cmd(cmd, text, timeout):
    try:
        p = subprocess.run(cmd + ["/dev/stdin"], input=text.encode(), capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return "", "timed out", "timeout"
    return p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), p.returncode


def mutate(text, r):
    """A variant of a scenario, usually invalid."""
    lines = text.splitlines()
    junk = ["end", "except ValueError", "finally", "try", "repeat 2", "reraise", "logexc", "yield", "yield x",
            "return 1 2", "raise Nope", "raise ValueError a b", "log a-b", "call start a D0", "call free i0",
            "call", "def D0", "def", "start i0 Nope", "free nobody", "throw i0", "send i0 1.5", "next",
            "yield_from Nope", "except", "repeat -1", "def X y", "# comment", "   ", "start i0 D1 x",
            "log", "throw i0 ValueError bad-word", "yield 007", "send i0 -0", "repeat 0", "except Nope"]
    for _ in range(r.randint(1, 3)):
        k = r.randrange(5)
        i = r.randrange(len(lines) + 1)
        if k == 0 and lines:
            del lines[min(i, len(lines) - 1)]
        elif k == 1 and lines:
            j = min(i, len(lines) - 1)
            lines.insert(j, lines[j])
        elif k == 2 and len(lines) > 1:
            a, b = r.randrange(len(lines)), r.randrange(len(lines))
            lines[a], lines[b] = lines[b], lines[a]
        elif k == 3 and lines:
            j = min(i, len(lines) - 1)
            words = lines[j].split()
            if words:
                words[r.randrange(len(words))] = r.choice(["end", "None", "D0", "i0", "x", "-5", "ValueError"])
                lines[j] = " ".join(words)
        else:
            lines.insert(i, r.choice(junk))
    return "\n".join(lines) + "\n"


def same(want, got):
    if want[2] == 2:  # invalid: stdout is empty, the message is on stderr
        return got[2] == 2 and got[1] == want[1] and got[0] == ""
    return got[2] == 0 and got[0] == want[0]


# -- worker: one process, many seeds -------------------------------------------

class Worker:
    def __init__(self, args):
        self.args = args
        self.own = Oracle(OWN, "cogen_oracle")
        self.ref = Oracle(args.ref, "scenario_ref") if args.oracle == "ref" else None
        gc.freeze()  # keeps the gc.collect() of every `free` cheap

    def cases(self, seed):
        text = scenario_gen.Gen(seed).scenario()
        yield f"{seed}", text
        if self.args.mutate:
            r = random.Random(seed * 7919 + 1)
            for m in range(self.args.mutate):
                yield f"{seed}m{m}", mutate(text, r)

    def check(self, text, stats):
        """(status, expected, got) for one scenario."""
        a = self.args
        own = self.own.run(text, stats)
        if own[2] == "failed":
            return "oracle-failed", own, None
        if own[2] == "gc":
            # Compared all the same; a difference is excused (see oracle.py).
            want = self.ref.run(text) if self.ref else (own[0], "", 0)
            if want[2] == "failed":
                want = (own[0], "", 0)
            if a.check_oracle:
                return ("ok-gc" if same(want, (own[0], "", 0)) else "gc-timing"), want, own
            got = run_cmd(WRAP + [a.runner], text, RUNNER_TIMEOUT)
            return ("ok-gc" if same(want, got) else "gc-timing"), want, got
        if own[2] == "hazard":
            # CPython 3.11 itself decides, in a process of its own since it
            # may crash; newer versions behave differently (see oracle.py).
            if sys.version_info >= (3, 12) or a.check_oracle:
                return "hazard-skipped", own, None
            cmd = [sys.executable, a.ref] if self.ref else [sys.executable, OWN, "--allow-hazard"]
            want = run_cmd(cmd, text, RUNNER_TIMEOUT)
            if isinstance(want[2], int) and want[2] < 0:
                return "hazard-crashed", want, None
            if want[2] not in (0, 2):
                return "oracle-failed", want, None
            kind = "hazard-checked"
        else:
            kind = "ok"
            want = self.ref.run(text) if self.ref else own
            if want[2] == "failed":
                # The reference cannot run it (a def named None makes it
                # generate invalid Python): oracle.py stands in.
                want, kind = own, "ref-failed"
            if "RecursionError" in (want[0] or ""):
                return "recursion", want, None
            if a.check_oracle:
                return (kind if kind != "ok" or same(want, own) else "mismatch"), want, own
        got = run_cmd(WRAP + [a.runner], text, RUNNER_TIMEOUT)
        return (kind if same(want, got) else "mismatch"), want, got

    def main(self):
        a = self.args
        stats = {} if a.stats else None
        out = sys.stdout
        for seed in range(a.start, a.start + a.count):
            print(f"BEGIN {seed}", file=out, flush=True)
            results = []
            for name, text in self.cases(seed):
                status, want, got = self.check(text, stats)
                r = {"status": status, "name": name}
                if status in ("mismatch", "oracle-failed"):
                    r.update(text=text, want=want, got=got)
                results.append(r)
            print("END " + json.dumps(results), file=out, flush=True)
        print("STATS " + json.dumps(stats or {}), file=out, flush=True)
        return 0


# -- parent: workers, restarts, reports ----------------------------------------

def report(r, save, label):
    name, text, want, got = r["name"], r["text"], r["want"], r["got"]
    if r["status"] == "oracle-failed":
        print(f"=== ORACLE FAILED {name}: {want[1][-2000:]}")
        print(text, end="")
    else:
        print(f"=== MISMATCH {name} ({label}) ===")
        print(text, end="")
        print(f"--- expected (status {want[2]}) / +++ got (status {got[2]})")
        w = (want[0] + want[1]).splitlines()
        g = (got[0] + got[1]).splitlines()
        for ln in difflib.unified_diff(w, g, "expected", "got", lineterm="", n=1):
            print(ln if len(ln) < 800 else ln[:800] + " ...")
    if save:
        os.makedirs(save, exist_ok=True)
        base = os.path.join(save, f"{r['status']}-{name}")
        with open(base + ".scn", "w") as f:
            f.write(text)
        with open(base + ".expected", "w") as f:
            f.write(str(want[0]) + str(want[1]))
        if got:
            with open(base + ".got", "w") as f:
                f.write(got[0] + got[1])
        print(f"saved {base}.scn")
    sys.stdout.flush()


def worker_cmd(args, start, count):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", "--start", str(start), "--count", str(count),
           "--oracle", args.oracle, "--ref", args.ref, "--mutate", str(args.mutate)]
    if args.runner:
        cmd += ["--runner", args.runner]
    if args.check_oracle:
        cmd.append("--check-oracle")
    if args.stats:
        cmd.append("--stats")
    return cmd


def crashed_case(seed, args):
    text = scenario_gen.Gen(seed).scenario()
    return {"status": "oracle-failed", "name": f"{seed}", "text": text,
            "want": [None, "the oracle's Python process died (a CPython crash?) on this seed or one of its "
                           "mutants", "crash"], "got": None}


def run_parent(args):
    label = "oracle.py vs scenario_ref.py" if args.check_oracle else f"cogen-scenario vs {args.oracle} oracle"
    t0 = time.time()
    end = args.start + args.count
    jobs = max(1, min(args.jobs, args.count))
    per = (args.count + jobs - 1) // jobs
    ranges = [(s, min(per, end - s)) for s in range(args.start, end, per)]
    counts = {k: 0 for k in ("ok", "mismatch", "recursion", "oracle-failed", "hazard-checked", "hazard-skipped",
                             "hazard-crashed", "ref-failed", "gc-timing", "ok-gc")}
    stats = {}
    shown = [0]
    procs = {}

    events = queue.Queue()

    def spawn(start, count):
        p = subprocess.Popen(worker_cmd(args, start, count), stdout=subprocess.PIPE, text=True, bufsize=1)
        procs[p] = [start, start + count, None]  # next seed, end, seed in progress

        def pump():
            for line in p.stdout:
                events.put((p, line))
            events.put((p, None))
        threading.Thread(target=pump, daemon=True).start()

    def handle(r):
        counts[r["status"]] += 1
        if r["status"] in ("mismatch", "oracle-failed"):
            if shown[0] < args.max_report or args.save:
                report(r, args.save, label)
            shown[0] += 1

    for s, c in ranges:
        spawn(s, c)
    while procs:
        p, line = events.get()
        state = procs[p]
        if line is not None:
            kind, _, rest = line.rstrip("\n").partition(" ")
            if kind == "BEGIN":
                state[2] = int(rest)
            elif kind == "END":
                for r in json.loads(rest):
                    handle(r)
                state[0] = state[2] + 1
                state[2] = None
            elif kind == "STATS":
                for k, v in json.loads(rest).items():
                    stats[k] = stats.get(k, 0) + v
            continue
        p.wait()
        del procs[p]
        if state[2] is not None:  # died in the middle of a seed
            handle(crashed_case(state[2], args))
            if state[2] + 1 < state[1]:
                spawn(state[2] + 1, state[1] - state[2] - 1)
    dt = time.time() - t0
    if args.stats:
        print("coverage (oracle.py):")
        for k in sorted(stats):
            print(f"  {stats[k]:8d}  {k}")
    total = sum(counts.values())
    print(f"difffuzz: {label}: seeds {args.start}..{end - 1}, {total} scenarios, {dt:.1f} s, "
          f"{counts['mismatch']} mismatches, {counts['oracle-failed']} oracle failures; matched: "
          f"{counts['ok']} + {counts['hazard-checked']} run by CPython 3.11 in a separate process "
          f"+ {counts['ok-gc']} although CPython's cycle collector ran body code "
          f"(see oracle.py) + {counts['ref-failed']} checked with oracle.py (the reference runner failed); "
          f"not compared: {counts['hazard-crashed']} on which CPython 3.11 crashed, "
          f"{counts['hazard-skipped']} not run (they may crash CPython 3.11: run only with CPython 3.10/3.11, and "
          f"not by --check-oracle), {counts['gc-timing']} that differ where CPython's cycle collector ran body code "
          f"(timing), {counts['recursion']} at the recursion limit")
    sys.stdout.flush()
    return 1 if counts["mismatch"] or counts["oracle-failed"] else 0


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runner", help="cogen-scenario binary")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--count", type=int, default=100, help="number of seeds")
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--oracle", choices=["auto", "ref", "own"], default="auto")
    ap.add_argument("--ref", default=DEFAULT_REF, help="path of scenario_ref.py")
    ap.add_argument("--save", help="directory for mismatching scenarios")
    ap.add_argument("--mutate", type=int, default=0, help="variants per seed")
    ap.add_argument("--check-oracle", action="store_true", help="compare oracle.py with the reference")
    ap.add_argument("--stats", action="store_true", help="print coverage statistics (from oracle.py)")
    ap.add_argument("--max-report", type=int, default=20, help="mismatches printed in full")
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv[1:])
    if not args.worker and args.runner:
        # Under slow tools (valgrind, qemu) the batches shrink by
        # COGEN_TEST_SCALE, as every big test does (docs/tools.md).
        try:
            scale = float(os.environ.get("COGEN_TEST_SCALE", "1"))
        except ValueError:
            scale = 1.0
        args.count = max(1, int(args.count * min(scale, 1.0)))
    if args.oracle == "auto":
        # The reference runner prints 3.11's semantics only on 3.10/3.11
        # (G64); oracle.py emulates them on every version.
        args.oracle = "ref" if os.path.exists(args.ref) and sys.version_info[:2] in ((3, 10), (3, 11)) else "own"
    if args.check_oracle:
        if not os.path.exists(args.ref):
            print(f"difffuzz: --check-oracle needs the reference runner ({args.ref})")
            return 2
        args.oracle = "ref"
    elif not args.runner:
        ap.error("--runner is required")
    if args.worker:
        return Worker(args).main()
    return run_parent(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
