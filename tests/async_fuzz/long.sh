#!/bin/sh
# long.sh: the long differential run of the event loop (make fuzz-long,
# after tests/fuzz/long.sh).
#
#   sh tests/async_fuzz/long.sh BUILD_DIR
#
# Runs FUZZ_LONG_COUNT (default 100,000) generated async scenarios from
# fixed seeds, starting at FUZZ_LONG_START (default 1,000,000, away from
# the checked-in seeds 0..1999 and the ctest sample from 100,000), through
# BUILD_DIR/tests/cogen-async-scenario and async_ref.py (CPython 3.13.0,
# ../shared/semantics beside the repository), with FUZZ_JOBS worker
# processes (default 2); AFUZZ_FEATURES picks the statement families
# (default: those the runner supports). Mismatches are printed and saved
# in BUILD_DIR/async-fuzz-long/; the last line is the summary for
# docs/conformance.md. Without the reference it says so and exits 0 (the
# generator fuzzing before it does not need it).
set -u
BUILD=${1:?usage: long.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
COUNT=${FUZZ_LONG_COUNT:-100000}
START=${FUZZ_LONG_START:-1000000}
JOBS=${FUZZ_JOBS:-2}
runner=$BUILD/tests/cogen-async-scenario
[ -x "$runner" ] || { echo "long.sh: no $runner; build first (make)" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "long.sh: needs python3 (3.8 or newer)" >&2; exit 1; }
python3 "$root/tests/async_fuzz/afuzz.py" ref --runner "$runner" --start "$START" --count "$COUNT" \
    --jobs "$JOBS" --features "${AFUZZ_FEATURES:-default}" --save "$BUILD/async-fuzz-long" --max-report 10 \
    --progress 5000
rc=$?
[ $rc -eq 3 ] && exit 0
exit $rc
