#!/bin/sh
# trace_tool.sh PYTHON TOOL PROGRAM: runs PROGRAM (examples/tour_loop) with
# COGEN_TRACE set, then checks that tools/cogen-trace.py reads the trace:
# the text view names the tour's tasks taking turns on one thread, and the
# SVG is written. Fails when the trace is missing, not JSON, or has events
# of one thread that overlap without nesting.
set -eu
py=$1 tool=$2 prog=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
COGEN_TRACE="$dir/t.json" "$prog" >/dev/null
"$py" "$tool" check "$dir/t.json" # JSON, starts before ends, each thread's events nested
"$py" "$tool" text "$dir/t.json" >"$dir/text"
cat "$dir/text"
# the tour's two tasks alternate: some turn of one is followed by the other
grep -q -- "--> " "$dir/text"
[ "$(wc -l <"$dir/text")" -ge 1 ]
"$py" "$tool" svg "$dir/t.json" "$dir/t.svg"
grep -q "<svg" "$dir/t.svg"
echo "trace_tool: ok"
