#!/bin/sh
# tour_threads.sh BUILD_DIR: the last part of `make demo`. Runs
# examples/tour_threads, which records each scene of the seed notes
# (concurrency, parallelism, cooperative, preemptive, in between) with
# cogen's trace recorder, then prints every trace as tools/cogen-trace.py
# draws it and writes the SVGs beside the traces, in BUILD_DIR/demo/.
# With COGEN_TRACE set, make demo records into that file instead.
set -eu
build=${1:-build}
top=$(cd "$(dirname "$0")/.." && pwd)
tool=$top/tools/cogen-trace.py
out=$build/demo
mkdir -p "$out"
if [ -n "${COGEN_TRACE:-}" ]; then
    "$build/examples/tour_threads" "$out"
    echo
    echo "trace of the demo in $COGEN_TRACE (open it in https://ui.perfetto.dev or chrome://tracing)"
    exit 0
fi
# each scene's trace afresh (COGEN_TRACE_APPEND is for COGEN_TRACE only)
unset COGEN_TRACE_APPEND
rm -f "$out"/*.json "$out"/*.svg
"$build/examples/tour_threads" "$out" >"$out/scenes.txt"
if ! command -v python3 >/dev/null 2>&1; then
    cat "$out/scenes.txt"
    echo "(python3 is needed to draw the traces: tools/cogen-trace.py; they are in $out)"
    exit 0
fi
show() { # scene view...
    scene=$1
    shift
    grep -A0 "^== $scene:" "$out/scenes.txt"
    for view in "$@"; do
        case $view in
            text) python3 "$tool" text "$out/$scene.json" --width 110 | sed 's/^/   /' ;;
            merged) echo "   on one CPU, in time order:"
                    python3 "$tool" merged "$out/$scene.json" --width 110 | sed 's/^/   /' ;;
            overlap) python3 "$tool" overlap "$out/$scene.json" | sed 's/^/   /' ;;
        esac
    done
    python3 "$tool" lanes "$out/$scene.json" --width 72 | sed 's/^/   /'
    python3 "$tool" svg "$out/$scene.json" "$out/$scene.svg"
}
echo
echo "== the seed notes' pictures, recorded from real runs (tools/cogen-trace.py draws them)"
show concurrency text
show parallelism text overlap
show cooperative text
show preemptive merged
show in_between merged
echo
echo "SVG timelines: $out/*.svg (open them in a browser); traces: $out/*.json (Perfetto, chrome://tracing)"
