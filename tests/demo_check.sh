#!/bin/sh
# demo_check.sh BUILD_DIR: the threads part of make demo, checked for what
# its traces must show whatever the machine's timing: two tasks on one loop
# taking turns, a task that does not await holding its loop while the other
# waits, two plain threads on one CPU switched by the kernel; and, with
# COGEN_TRACE, one trace of every program of the demo, with tasks on at
# least two threads.
set -eu
build=$1
top=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/b/examples"
ln -s "$(cd "$build" && pwd)/examples/tour_threads" "$dir/b/examples/tour_threads"
sh "$top/examples/tour_threads.sh" "$dir/b" >"$dir/out"
cat "$dir/out"
fail() { echo "demo_check: $1"; exit 1; }
grep -q "task1 --> task2 --> task1 --> task2" "$dir/out" || fail "concurrency: no turns"
grep -A1 "^== cooperative" "$dir/out" | grep -q "main --> task1 --> task2" || fail "cooperative: task2 did not wait for task1"
grep -A2 "^== preemptive" "$dir/out" | grep -q "thread1 --> thread2 --> thread1" || fail "preemptive: no switch"
for s in concurrency parallelism cooperative preemptive in_between; do
    grep -q "<svg" "$dir/b/demo/$s.svg" || fail "no SVG for $s"
done
# one trace for the whole demo
t=$dir/all.json
COGEN_TRACE=$t COGEN_TRACE_APPEND=1 "$build/examples/tour_loop" >/dev/null
COGEN_TRACE=$t COGEN_TRACE_APPEND=1 "$build/examples/tour_threads" "$dir" >/dev/null
python3 - "$t" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))["traceEvents"]
tasks = {(e["pid"], e["tid"]) for e in ev if e.get("cat") == "task"}
pids = {e["pid"] for e in ev if e.get("ph") == "X"}
assert len(tasks) >= 3, tasks          # the loop tour's thread, and the two parallel loops
assert len(pids) == 2, pids             # both programs in one trace
print("demo_check: one trace, %d threads with tasks, %d programs" % (len(tasks), len(pids)))
PY
echo "demo_check: ok"
