#!/usr/bin/env python3
"""trace_gen_tour.py TOOL TOUR: runs the generator tour (examples/tour) with
COGEN_TRACE set and checks that the trace records its plain generators:
the trace is well formed (cogen-trace.py check), and the two round-robin
sections resume task1 and task2 in the order the tour's scheduler implies.

The order is not copied from a run: it is worked out here by a model of the
tour's run_round_robin (a FIFO of ready generators, each resumed until it
yields, put back at the end, dropped when it returns) over the two
sections' task specs, as examples/tour.c documents them:
  Concurrency: task1 and task2 each do 3 steps and yield after every one;
  Cooperative: task1 as before, task2 does its 3 steps before it yields.
"""
import json
import os
import subprocess
import sys
import tempfile


def round_robin(spec):
    """The resumes the tour's scheduler makes: (name, how the resume ends)."""
    ready = [[name, steps, per_turn, 0] for name, steps, per_turn in spec]
    out = []
    while ready:
        t = ready.pop(0)
        name, steps, per_turn, done = t
        while True:  # the body runs until its next cg_yield or its return
            if done == steps:
                out.append((name, "returned"))
                break
            done += 1
            if done % per_turn == 0:
                out.append((name, "yielded"))
                break
        if out[-1][1] == "yielded":
            t[3] = done
            ready.append(t)
    return out


def main(tool, tour):
    want = round_robin([("task1", 3, 1), ("task2", 3, 1)]) + round_robin([("task1", 3, 1), ("task2", 3, 3)])
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "t.json")
        env = dict(os.environ, COGEN_TRACE=path)
        env.pop("COGEN_TRACE_APPEND", None)
        subprocess.run([tour], env=env, stdout=subprocess.DEVNULL, check=True)
        subprocess.run([sys.executable, tool, "check", path], check=True)
        with open(path) as f:
            events = [e for e in json.load(f)["traceEvents"] if e.get("ph") == "X"]
        view = subprocess.run([sys.executable, tool, "text", path], check=True, capture_output=True,
                              text=True).stdout
    print(view)
    # every resume of the two tasks, in time order, and how each ended
    events.sort(key=lambda e: e["ts"])
    got = [(e["name"], e["args"]["ended"]) for e in events if e.get("cat") == "gen" and e["name"] in ("task1", "task2")]
    assert all(e.get("cat") == "gen" for e in events), "the tour makes no task: only generator resumes"
    assert got == want, "resumes:\n got  %s\n want %s" % (got, want)
    # the text view: the same turns, consecutive repeats merged, then the
    # tour's later generators
    turns = []
    for name, _ in want:
        if not turns or turns[-1] != name:
            turns.append(name)
    line = view.splitlines()[0]
    prefix = "thread 1 generators: " + " --> ".join(turns) + " --> "
    assert line.startswith(prefix), "text view:\n got  %s\n want %s..." % (line, prefix)
    rest = line[len(prefix):].split(" --> ")
    assert "task1" not in rest and "task2" not in rest and rest[0] == "lifecycle", rest
    print("trace_gen_tour: ok (%d resumes of task1 and task2 in the scheduler's order)" % len(got))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
