#!/usr/bin/env python3
"""cogen-trace.py: reads a trace written by cogen's recorder (COGEN_TRACE=FILE
or cg_trace_start: Chrome trace-event JSON) and shows it the way the seed
notes draw concurrency.

    cogen-trace.py text TRACE.json [--width N]   # one line per thread:
                                                 #   task1 --> task2 --> task1
                                                 # and one for its generators:
                                                 #   gen1 --> gen2 --> gen1
    cogen-trace.py lanes TRACE.json [--width N]  # threads side by side in time:
                                                 #   a text timeline, one row per thread
    cogen-trace.py svg TRACE.json OUT.svg        # an SVG timeline, one row per thread
    cogen-trace.py merged TRACE.json [--width N] # every thread on one line, in time
                                                 # order: who ran after whom
    cogen-trace.py overlap TRACE.json            # how long two threads ran at once
    cogen-trace.py check TRACE.json              # well formed: JSON, every start before
                                                 # its end, each thread's events nested
    cogen-trace.py --self-test

Events of category "task" are task steps (their name is the task's), those of
category "span" are spans a program marked (cg_trace_begin/end), those of
category "gen" are resumes of plain generators (their name is the
generator's, cg_opts.name; args say how each was resumed and how it ended),
nested in time inside the task step or the generator that resumed them. A
thread's line lists its task steps and spans in time order, with repeats of
the same name next to each other merged (a task that steps twice in a row is
one turn); its generators' line lists who ran, as control passed from
generator to generator (a generator that resumes another gets control back
when the other yields: pipeline --> source --> pipeline).
"""
import html
import json
import sys


def load(path):
    with open(path) as f:
        data = json.load(f)
    events = data["traceEvents"] if isinstance(data, dict) else data
    threads = {}
    names = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == "thread_name":
            names[e["tid"]] = e["args"]["name"]
        elif e.get("ph") == "X":
            threads.setdefault(e["tid"], []).append(e)
    for evs in threads.values():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
    # the recorder names a track "thread TID": number them in order of
    # appearance instead (per process when a trace holds several)
    order = sorted(threads, key=lambda t: threads[t][0]["ts"])
    for i, tid in enumerate(order):
        if names.get(tid, "thread %d" % tid) == "thread %d" % tid:
            names[tid] = "thread %d" % (i + 1)
    return threads, names


def turns(evs, leaf_only=True):
    """The names of a thread's events in time order, consecutive repeats
    merged. With leaf_only, an event that encloses others (a span around
    task steps) is left out: the turns are what ran."""
    out = []
    for i, e in enumerate(evs):
        if leaf_only:
            end = e["ts"] + e["dur"]
            if any(o is not e and o["ts"] >= e["ts"] and o["ts"] + o["dur"] <= end and o["dur"] < e["dur"]
                   for o in evs[i + 1:i + 50]):
                continue
        if not out or out[-1] != e["name"]:
            out.append(e["name"])
    return out


def is_gen(e):
    return e.get("cat") == "gen"


def gen_turns(evs):
    """Who ran, in order, among a thread's generator resumes: a resume
    gives control to its generator; when it ends, control goes back to the
    generator whose resume encloses it, if any. Consecutive repeats merged."""
    out, stack = [], []

    def run(name):
        if not out or out[-1] != name:
            out.append(name)

    for e in evs:
        if not is_gen(e):
            continue
        while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"]:
            stack.pop()
            if stack:
                run(stack[-1]["name"])
        stack.append(e)
        run(e["name"])
    while len(stack) > 1:  # the last ones end: back to those that resumed them
        stack.pop()
        run(stack[-1]["name"])
    return out


def text(path, width=0):
    threads, names = load(path)
    lines = []

    def line(label, seq):
        seq = " --> ".join(seq)
        if width and len(seq) > width:
            seq = seq[:width - 3] + "..."
        lines.append("%s: %s" % (label, seq))

    for tid in sorted(threads, key=lambda t: threads[t][0]["ts"]):
        label = names.get(tid, "thread %d" % tid)
        others = [e for e in threads[tid] if not is_gen(e)]
        if others:
            line(label, turns(others))
        gens = gen_turns(threads[tid])
        if gens:
            line(label + " generators", gens)
    return "\n".join(lines)


def check(path):
    """The trace's faults, as strings: none when it is well formed (the JSON
    parses, every complete event has a start and a duration >= 0, and the
    events of one thread nest: two never overlap but by one holding the
    other)."""
    faults = []
    try:
        with open(path) as f:
            data = json.load(f)
    except ValueError as x:
        return ["not JSON: %s" % x]
    events = data["traceEvents"] if isinstance(data, dict) else data
    threads = {}
    for e in events:
        if e.get("ph") != "X":
            continue
        if not isinstance(e.get("ts"), (int, float)) or not isinstance(e.get("dur"), (int, float)) or e["dur"] < 0:
            faults.append("bad start or duration: %r" % e)
            continue
        threads.setdefault((e.get("pid"), e.get("tid")), []).append(e)
    for key, evs in threads.items():
        evs.sort(key=lambda e: (e["ts"], -e["dur"]))
        stack = []
        for e in evs:
            while stack and e["ts"] >= stack[-1]["ts"] + stack[-1]["dur"]:
                stack.pop()
            if stack and e["ts"] + e["dur"] > stack[-1]["ts"] + stack[-1]["dur"] + 1e-4:  # (ns exact; doubles)
                faults.append("thread %s: %s (%.3f+%.3f) overlaps %s (%.3f+%.3f)" % (
                    key[1], e["name"], e["ts"], e["dur"], stack[-1]["name"], stack[-1]["ts"], stack[-1]["dur"]))
            stack.append(e)
    return faults


def merged(path, width=0):
    """One line for all threads: their turns in the order they started."""
    threads, names = load(path)
    evs = []
    for tevs in threads.values():
        evs.extend(e for e in tevs if not is_gen(e))
    evs.sort(key=lambda e: e["ts"])
    seq = " --> ".join(turns(evs, leaf_only=False))
    if width and len(seq) > width:
        seq = seq[:width - 3] + "..."
    return seq


def intervals(evs):
    """The union of a thread's busy intervals."""
    iv = sorted((e["ts"], e["ts"] + e["dur"]) for e in evs)
    merged = []
    for a, b in iv:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return merged


def overlap(path):
    """Microseconds during which at least two threads were busy, and the
    total busy span."""
    threads, _ = load(path)
    points = []
    for evs in threads.values():
        for a, b in intervals(evs):
            points.append((a, 1))
            points.append((b, -1))
    points.sort()
    depth, last, both = 0, None, 0.0
    for t, d in points:
        if depth >= 2 and last is not None:
            both += t - last
        depth += d
        last = t
    if not points:
        return 0.0, 0.0
    return both, points[-1][0] - points[0][0]


def lanes(path, width=72):
    threads, names = load(path)
    if not threads:
        return ""
    t0 = min(evs[0]["ts"] for evs in threads.values())
    t1 = max(e["ts"] + e["dur"] for evs in threads.values() for e in evs)
    span = max(t1 - t0, 1e-9)
    legend = {}
    rows = []
    for tid in sorted(threads, key=lambda t: threads[t][0]["ts"]):
        row = [" "] * width
        for e in threads[tid]:
            ch = legend.setdefault(e["name"], "123456789abcdefghijklmnopqrstuvwxyz"[len(legend) % 35])
            a = int((e["ts"] - t0) / span * (width - 1))
            b = int((e["ts"] + e["dur"] - t0) / span * (width - 1))
            for i in range(a, max(a, b) + 1):
                row[i] = ch
        rows.append("%-12s|%s|" % (names.get(tid, str(tid))[:12], "".join(row)))
    rows.append("legend: " + ", ".join("%s=%s" % (c, n) for n, c in legend.items()))
    return "\n".join(rows)


def svg(path, out_path):
    threads, names = load(path)
    order = sorted(threads, key=lambda t: threads[t][0]["ts"]) if threads else []
    t0 = min((evs[0]["ts"] for evs in threads.values()), default=0)
    t1 = max((e["ts"] + e["dur"] for evs in threads.values() for e in evs), default=1)
    span = max(t1 - t0, 1e-9)
    W, left, row_h = 900, 130, 34
    H = 40 + row_h * len(order) + 30
    palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
               "#9c755f", "#bab0ac"]
    colors = {}
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
             'font-size="11">' % (W, H),
             '<rect width="100%" height="100%" fill="white"/>',
             '<text x="10" y="20" font-size="13">cogen trace: %s (%.0f us)</text>' % (html.escape(path), span)]
    for row, tid in enumerate(order):
        y = 40 + row * row_h
        parts.append('<text x="10" y="%d">%s</text>' % (y + 18, html.escape(names.get(tid, str(tid)))))
        parts.append('<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#ddd"/>' % (left, y + 28, W - 10, y + 28))
        for e in threads[tid]:
            c = colors.setdefault(e["name"], palette[len(colors) % len(palette)])
            x = left + (e["ts"] - t0) / span * (W - left - 10)
            w = max(e["dur"] / span * (W - left - 10), 0.5)
            depth = 1 if e.get("cat") == "span" else 2 if is_gen(e) else 0
            if is_gen(e):
                more = ", %s, then %s" % (e["args"]["resumed"], e["args"]["ended"])
            elif "args" in e:
                more = ", then waits on " + e["args"]["waits"]
            else:
                more = ""
            title = "%s: %.1f us%s" % (e["name"], e["dur"], more)
            y0, h = ((y + 4, 24), (y + 8, 16), (y + 20, 6))[[1, 0, 2][depth]]
            parts.append('<rect x="%.2f" y="%d" width="%.2f" height="%d" fill="%s" opacity="%s"><title>%s</title>'
                         '</rect>' % (x, y0, w, h, c, "0.35" if depth == 1 else "0.95", html.escape(title)))
    x = left
    for name, c in colors.items():
        parts.append('<rect x="%d" y="%d" width="10" height="10" fill="%s"/>' % (x, H - 22, c))
        parts.append('<text x="%d" y="%d">%s</text>' % (x + 14, H - 13, html.escape(name)))
        x += 20 + 7 * len(name)
    parts.append("</svg>")
    with open(out_path, "w") as f:
        f.write("\n".join(parts) + "\n")


def self_test():
    import os
    import tempfile
    ev = [
        {"name": "task1", "cat": "task", "ph": "X", "ts": 0, "dur": 10, "pid": 1, "tid": 7, "args": {"waits": "ready"}},
        {"name": "task2", "cat": "task", "ph": "X", "ts": 11, "dur": 10, "pid": 1, "tid": 7, "args": {"waits": "ready"}},
        {"name": "task1", "cat": "task", "ph": "X", "ts": 22, "dur": 10, "pid": 1, "tid": 7, "args": {"waits": "ready"}},
        {"name": "task1", "cat": "task", "ph": "X", "ts": 33, "dur": 10, "pid": 1, "tid": 7, "args": {"waits": "ready"}},
        {"name": "worker", "cat": "span", "ph": "X", "ts": 5, "dur": 20, "pid": 1, "tid": 8},
        {"name": "thread_name", "ph": "M", "pid": 1, "tid": 7, "args": {"name": "loop"}},
    ]
    # task1's second step drives a pipeline: gen1 resumes gen2 twice
    g = {"resumed": "send", "ended": "yielded"}
    gens = [
        {"name": "gen1", "cat": "gen", "ph": "X", "ts": 23, "dur": 5, "pid": 1, "tid": 7, "args": g},
        {"name": "gen2", "cat": "gen", "ph": "X", "ts": 24, "dur": 1, "pid": 1, "tid": 7, "args": g},
        {"name": "gen2", "cat": "gen", "ph": "X", "ts": 26, "dur": 1, "pid": 1, "tid": 7, "args": g},
        {"name": "gen3", "cat": "gen", "ph": "X", "ts": 29, "dur": 2, "pid": 1, "tid": 7, "args": g},
        {"name": "gen4", "cat": "gen", "ph": "X", "ts": 30, "dur": 0.5, "pid": 1, "tid": 7, "args": g},
    ]
    def write(events):
        fd, path = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            json.dump({"traceEvents": events}, f)
        return path

    p = write(ev)
    try:
        t = text(p)
        assert t.splitlines()[0] == "loop: task1 --> task2 --> task1", t
        assert t.splitlines()[1] == "thread 2: worker", t
        assert check(p) == [], check(p)
        q = write(ev + gens)
        try:
            t = text(q).splitlines()
            assert t[0] == "loop: task1 --> task2 --> task1", t
            assert t[1] == "loop generators: gen1 --> gen2 --> gen1 --> gen2 --> gen1 --> gen3 --> gen4 --> gen3", t
            assert merged(q) == "task1 --> worker --> task2 --> task1", merged(q)
            assert check(q) == [], check(q)
        finally:
            os.unlink(q)
        # the check can fail: an event that sticks out of the one it starts in,
        # a negative duration, a file that is not JSON
        bad = dict(gens[1], ts=30, dur=5)  # from inside task1 (22..32) to past its end
        for events, want in (([ev[2], bad], "overlaps"), ([dict(ev[0], dur=-1)], "duration")):
            q = write(events)
            try:
                assert any(want in x for x in check(q)), check(q)
            finally:
                os.unlink(q)
        fd, q = tempfile.mkstemp(suffix=".json")
        with os.fdopen(fd, "w") as f:
            f.write('{"traceEvents":[')
        try:
            assert check(q) and "not JSON" in check(q)[0], check(q)
        finally:
            os.unlink(q)
        both, total = overlap(p)
        assert abs(both - 18) < 1e-9 and total == 43, (both, total)
        svg_path = p + ".svg"
        svg(p, svg_path)
        with open(svg_path) as f:
            s = f.read()
        assert s.count("<rect") == 1 + 5 + 3, s  # background, events, legend
        os.unlink(svg_path)
        assert "1=task1" in lanes(p)
        assert merged(p) == "task1 --> worker --> task2 --> task1", merged(p)
    finally:
        os.unlink(p)
    print("cogen-trace.py: self-test passed")


def main(argv):
    if len(argv) >= 2 and argv[1] == "--self-test":
        self_test()
        return 0
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    cmd, path = argv[1], argv[2]
    width = 0
    if "--width" in argv:
        width = int(argv[argv.index("--width") + 1])
    if cmd == "text":
        print(text(path, width))
    elif cmd == "merged":
        print(merged(path, width))
    elif cmd == "lanes":
        print(lanes(path, width or 72))
    elif cmd == "svg" and len(argv) >= 4:
        svg(path, argv[3])
    elif cmd == "check":
        faults = check(path)
        for x in faults[:20]:
            print(x)
        if faults:
            return 1
        print("%s: well formed" % path)
    elif cmd == "overlap":
        both, total = overlap(path)
        print("%.1f us with two or more threads running, of %.1f us" % (both, total))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
