#!/bin/sh
# smoke.sh CMD...: runs one benchmark program once (CI, via ctest) and
# checks only that it works: exit status 0 and at least one well-formed
# RESULT line with a finite non-negative value. Timings are not asserted.
out=$("$@")
rc=$?
printf '%s\n' "$out"
if [ "$rc" -ne 0 ]; then
    echo "smoke: '$*' exited with status $rc" >&2
    exit 1
fi
if ! printf '%s\n' "$out" | grep -Eq '^RESULT bench=[a-z0-9_]+ impl=[a-z-]+ value=[0-9]+(\.[0-9]+)? unit=(ns|kib|count) n=[0-9]+'; then
    echo "smoke: '$*' printed no parseable RESULT line" >&2
    exit 1
fi
exit 0
