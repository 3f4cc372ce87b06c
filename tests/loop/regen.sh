#!/bin/sh
# regen.sh: records the expected traces of the loop tests from their Python
# twins, on CPython 3.13 (pyenv's 3.13.0 where python3 is another version).
# The recorded .expected files are checked in, so the tests need no Python.
#   test_loop:            NAME.py -> NAME.expected
#   test_loop_structured: structured.py CASE -> structured.CASE.expected
set -eu
cd "$(dirname "$0")"
py=${PYTHON:-python3}
if ! $py -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
    py="env PYENV_VERSION=3.13.0 python3"
fi
for f in *.py; do
    case $f in vloop.py | structured.py) continue ;; esac
    $py "$f" > "${f%.py}.expected"
    echo "recorded ${f%.py}.expected"
done
for c in $(sed -n 's/^CASES = \[\(.*\)/\1/p;s/^         \(.*\)\]$/\1/p' structured.py | tr -d ',]'); do
    $py structured.py "$c" > "structured.$c.expected"
    echo "recorded structured.$c.expected"
done
