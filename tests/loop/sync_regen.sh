#!/bin/sh
# Remakes the expected traces of tests/test_loop_sync.c from their Python
# twins, on CPython 3.13 (the reference): tests/loop/sync_*.py and
# queue_*.py -> .expected. The expectations are checked in; run this after
# changing a twin, and review the diff.
#   sh tests/loop/sync_regen.sh [PYTHON]     (default: python3.13, python3)
set -e
cd "$(dirname "$0")"
PY=${1:-}
if [ -z "$PY" ]; then
    for c in python3.13 python3; do
        if command -v "$c" >/dev/null 2>&1; then PY=$c; break; fi
    done
fi
ver=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
if [ "$ver" != "3.13" ]; then
    echo "sync_regen.sh: needs CPython 3.13 (got $ver from $PY)" >&2
    exit 1
fi
for f in sync_*.py queue_*.py; do
    [ -f "$f" ] || continue
    "$PY" "$f" > "${f%.py}.expected"
    echo "${f%.py}.expected"
done
