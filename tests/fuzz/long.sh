#!/bin/sh
# long.sh: the long differential fuzzing run (make fuzz-long).
#
#   sh tests/fuzz/long.sh BUILD_DIR
#
# Runs FUZZ_LONG_COUNT (default 100,000) generated scenarios from fixed
# seeds, starting at FUZZ_LONG_START (default 1,000,000, away from the
# seeds ctest uses), through BUILD_DIR/tests/cogen-scenario and the oracle,
# with FUZZ_JOBS worker processes (default 2). Mismatches are printed and
# saved in BUILD_DIR/difffuzz-long/; the last line is the summary (count,
# seconds, mismatches) for docs/conformance.md.
set -eu
BUILD=${1:?usage: long.sh BUILD_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
COUNT=${FUZZ_LONG_COUNT:-100000}
START=${FUZZ_LONG_START:-1000000}
JOBS=${FUZZ_JOBS:-2}
PYTHON=${PYTHON:-python3}
runner=$BUILD/tests/cogen-scenario
[ -x "$runner" ] || { echo "long.sh: no $runner; build first (make)" >&2; exit 1; }
command -v "$PYTHON" >/dev/null 2>&1 || { echo "long.sh: needs python3 (3.8 or newer)" >&2; exit 1; }
exec "$PYTHON" "$root/tests/fuzz/difffuzz.py" --runner "$runner" --start "$START" --count "$COUNT" \
    --jobs "$JOBS" --save "$BUILD/difffuzz-long" --max-report 10
