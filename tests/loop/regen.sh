#!/bin/sh
# Regenerates the expected outputs of tests/test_loop_structured.c from the
# Python programs beside this script, run on CPython 3.13 (the expected
# files are checked in; run this after changing structured.py).
set -e
cd "$(dirname "$0")"
PY=${PYTHON:-python3}
for c in $(sed -n 's/^CASES = \[\(.*\)/\1/p;s/^         \(.*\)\]$/\1/p' structured.py | tr -d ',]'); do
    PYENV_VERSION=${PYENV_VERSION:-3.13.0} $PY structured.py "$c" > "structured.$c.expected"
done
