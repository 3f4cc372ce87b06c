#!/usr/bin/env python3
"""Property test of the trace recorder over random programs (issue 11:
"the trace writer (...) fuzzed or property-tested for well-formed
output").

    trace_property.py TOOL ASYNC_RUNNER GEN_RUNNER [COUNT]

For COUNT seeds (default 500, or COGEN_TRACE_PROPERTY_COUNT) it makes a
random async scenario (tests/async_fuzz/async_gen.py, every statement
family on: tasks, cancellation, gather, wait, queues, locks, async
generators...) and a random generator scenario (tests/fuzz/scenario_gen.py:
yield from chains, throw, close, re-entrant calls), runs each through its
runner twice, without and with COGEN_TRACE, and checks:

- recording changes nothing the program prints or returns;
- the trace is well formed, as tools/cogen-trace.py check defines it: the
  JSON parses, every event has a start and a duration >= 0, and the events
  of one thread nest (two never overlap but by one holding the other);
- every complete event names its thread and process, and its category is
  one the recorder documents ("task", "span", "gen");
- the task dumps the async runner writes before each line a task prints
  (COGEN_SCENARIO_DUMP) follow the documented format and agree with
  themselves (see dump_faults);
- the async runner, one thread, records task steps on one track only; the
  generator runner, which makes no loop, records generator resumes only,
  at least one for each next/send/throw whose printed result is a yield.

Seeds start at 700,000, away from the differential fuzzers' ranges, so a
failure here is a trace fault and not a semantic one. Exit 0 when every
property holds; otherwise each fault is printed with its seed.
"""
import importlib.util
import json
import re
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "async_fuzz"))
sys.path.insert(0, os.path.join(HERE, "fuzz"))
import async_gen  # noqa: E402
import scenario_gen  # noqa: E402

START = 700000
CATEGORIES = {"task", "span", "gen"}


def load_tool(path):
    spec = importlib.util.spec_from_file_location("cogen_trace", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(runner, text, trace=None, dump=None):
    env = dict(os.environ)
    for k in ("COGEN_TRACE", "COGEN_TRACE_APPEND", "COGEN_SCENARIO_DUMP"):
        env.pop(k, None)
    if trace:
        env["COGEN_TRACE"] = trace
    if dump:
        env["COGEN_SCENARIO_DUMP"] = dump
    p = subprocess.run([runner, "/dev/stdin"], input=text.encode(), capture_output=True, env=env, timeout=60)
    return p.returncode, p.stdout, p.stderr


def events(path):
    with open(path) as f:
        data = json.load(f)
    evs = data["traceEvents"] if isinstance(data, dict) else data
    return [e for e in evs if e.get("ph") == "X"]


STATES = "cancelled|finished|running|scheduled|suspended|not started"
AWAITS = (r"sleep, -?\d+\.\d{3} ms left|fd \d+ \((?:readable|writable)\)"
          r"|(?:Lock|Event|Condition|Semaphore|Queue \(get\)|Queue \(put\)) (?:0x[0-9a-f]+|\(nil\))"
          r"|task '(?P<aw>[^']*)' \(#(?P<awn>\d+)\)|future (?:0x[0-9a-f]+|\(nil\))|nothing")
TASK_LINE = re.compile(r"  task '(?P<name>[^']*)' \(#(?P<n>\d+)\) (?P<state>%s)"
                       r"(?:, awaits (?:%s)(?: at \S+:\d+)?)?"
                       r"(?:; created at \S+:\d+)?"
                       r"(?: by (?:task '(?P<pn>[^']*)' \(#(?P<p>\d+)\)|task #\d+ \(done\)))?"
                       r"(?:; cancelling \d+)?$" % (STATES, AWAITS))
HEAD = re.compile(r"cogen: loop \d+: (\d+) tasks?$")


def dump_faults(text):
    """The task dump's faults (cg_loop_dump_tasks, as include/cogen_loop.h
    documents it), each dump taken while the task named on its "@ TASK"
    line runs: the header counts the task lines after it, every line parses,
    serial numbers are unique, exactly one task runs and it is the one that
    printed, a task suspended or not started says what it awaits and no other
    does, and a parent or awaited task named with its serial and still listed
    has that name."""
    faults = []
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    i, ndumps = 0, 0
    while i < len(lines):
        if not lines[i].startswith("@ ") or i + 1 >= len(lines):
            return faults + ["line %d: expected '@ TASK' and a dump: %r" % (i + 1, lines[i])]
        who, head = lines[i][2:], HEAD.match(lines[i + 1])
        if not head:
            return faults + ["line %d: not a dump header: %r" % (i + 2, lines[i + 1])]
        n = int(head.group(1))
        body = lines[i + 2:i + 2 + n]
        i += 2 + n
        ndumps += 1
        if len(body) != n or any(not ln.startswith("  task ") for ln in body):
            faults.append("dump %d: the header counts %d tasks, the lines say otherwise" % (ndumps, n))
            continue
        tasks = {}
        running = []
        for ln in body:
            m = TASK_LINE.match(ln)
            if not m:
                faults.append("dump %d: line does not parse: %r" % (ndumps, ln))
                continue
            if m.group("n") in tasks:
                faults.append("dump %d: serial #%s twice" % (ndumps, m.group("n")))
            tasks[m.group("n")] = m
            if m.group("state") == "running":
                running.append(m.group("name"))
            waits = ", awaits " in ln
            if waits != (m.group("state") in ("suspended", "not started")):
                faults.append("dump %d: %s task with%s an await: %r" % (
                    ndumps, m.group("state"), "" if waits else "out", ln))
        if running != [who]:
            faults.append("dump %d taken in task %r: running %r" % (ndumps, who, running))
        for m in tasks.values():
            for name, serial in (("pn", "p"), ("aw", "awn")):
                other = tasks.get(m.group(serial)) if m.group(serial) else None
                if other and other.group("name") != m.group(name):
                    faults.append("dump %d: task #%s is named %r, %r says %r" % (
                        ndumps, m.group(serial), other.group("name"), m.group(0), m.group(name)))
    return faults


def check_one(tool, runner, text, kind, tmp):
    """The faults of one program's traced run, as strings."""
    faults = []
    plain = run(runner, text)
    path = os.path.join(tmp, "t.json")
    if os.path.exists(path):
        os.unlink(path)
    dump = os.path.join(tmp, "dump.txt") if kind == "async" else None
    traced = run(runner, text, path, dump)
    if plain != traced:
        faults.append("recording changed the run: status %r -> %r, stdout %s, stderr %s" % (
            plain[0], traced[0], "same" if plain[1] == traced[1] else "differs",
            "same" if plain[2] == traced[2] else "differs"))
    if not os.path.exists(path):
        return faults + ["no trace written"]
    faults += tool.check(path)
    if faults:
        return faults
    evs = events(path)
    for e in evs:
        if not all(k in e for k in ("name", "pid", "tid", "cat")):
            faults.append("event without name, pid, tid or cat: %r" % e)
        elif e["cat"] not in CATEGORIES:
            faults.append("unknown category: %r" % e)
    tasks = [e for e in evs if e.get("cat") == "task"]
    gens = [e for e in evs if e.get("cat") == "gen"]
    if kind == "async":
        if not tasks:
            faults.append("no task step recorded")
        if len({(e["pid"], e["tid"]) for e in tasks}) > 1:
            faults.append("task steps of a one-thread program on several tracks")
        with open(dump) as f:
            faults += dump_faults(f.read())
    else:
        if tasks:
            faults.append("task steps recorded in a program without a loop")
        # each next/send/throw that printed "yielded" resumed a generator
        yields = sum(1 for ln in plain[1].decode(errors="replace").splitlines()
                     if ln.split(" ", 1)[0] in ("next", "send", "throw") and "-> yielded" in ln)
        if len(gens) < yields:
            faults.append("%d generator resumes recorded for %d yields printed" % (len(gens), yields))
    return faults


GOOD_DUMP = """@ main
cogen: loop 1: 3 tasks
  task 'main' (#1) running; created at a.c:10
  task 't0' (#2) suspended, awaits task 't1' (#3) at a.c:20; created at a.c:11 by task 'main' (#1)
  task 't1' (#3) suspended, awaits sleep, 5.000 ms left at a.c:30; created at a.c:12 by task 'main' (#1); cancelling 1
"""


def self_test():
    """dump_faults finds each kind of fault it claims to (and none in a
    good dump)."""
    assert dump_faults(GOOD_DUMP) == [], dump_faults(GOOD_DUMP)
    broken = {
        "count": GOOD_DUMP.replace("3 tasks", "4 tasks"),
        "parse": GOOD_DUMP.replace("ms left", "ms to go"),
        "serial": GOOD_DUMP.replace("(#3) suspended", "(#2) suspended"),
        "running": GOOD_DUMP.replace("'t0' (#2) suspended, awaits task 't1' (#3) at a.c:20", "'t0' (#2) running"),
        "printer": GOOD_DUMP.replace("@ main", "@ t0"),
        "await": GOOD_DUMP.replace("(#3) suspended", "(#3) scheduled"),
        "name": GOOD_DUMP.replace("awaits task 't1'", "awaits task 't9'"),
        "header": GOOD_DUMP.replace("cogen: loop 1:", "cogen: loop:"),
    }
    for what, text in broken.items():
        assert dump_faults(text), "a broken dump (%s) passes" % what
    print("trace_property: self-test ok")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) not in (4, 5):
        print(__doc__)
        return 2
    tool = load_tool(argv[1])
    async_runner, gen_runner = argv[2], argv[3]
    count = int(argv[4]) if len(argv) == 5 else int(os.environ.get("COGEN_TRACE_PROPERTY_COUNT", "500"))
    feats = list(async_gen.FAMILIES)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(START, START + count):
            for kind, runner, text in (("async", async_runner, async_gen.Gen(seed, feats).scenario()),
                                       ("generator", gen_runner, scenario_gen.Gen(seed).scenario())):
                for fault in check_one(tool, runner, text, kind, tmp):
                    bad += 1
                    print("seed %d (%s scenario): %s" % (seed, kind, fault))
    print("trace_property: %d seeds, %s" % (count, "%d faults" % bad if bad else "every property holds"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
