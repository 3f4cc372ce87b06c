#!/bin/sh
# regen.sh: (re)makes the expectation beside scenario files from the
# reference runner, never from cogen.
#
#   sh tests/scenarios/regen.sh [FILE.scn ...]      (default: all of them)
#
# A valid scenario gets NAME.trace (the reference's stdout), an invalid one
# NAME.err (its stderr; exit status 2). Needs ../shared/semantics beside the
# repository (the project's reference, not part of it; or
# REF=path/to/scenario_ref.py) and CPython 3.11 as python3 (or PYTHON=...),
# the reference version. The files it makes are checked in: running the
# scenario tests needs neither.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
REF=${REF:-$here/../../../shared/semantics/scenario_ref.py}
PYTHON=${PYTHON:-python3}
[ -f "$REF" ] || { echo "regen.sh: no reference runner at $REF" >&2; exit 1; }
ver=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case $ver in
3.10|3.11) ;;
*) echo "regen.sh: $PYTHON is $ver; the reference version is CPython 3.11" >&2; exit 1 ;;
esac
[ $# -gt 0 ] || set -- "$here"/*.scn
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for scn in "$@"; do
    base=${scn%.scn}
    rc=0
    "$PYTHON" "$REF" "$scn" >"$tmp/out" 2>"$tmp/err" || rc=$?
    case $rc in
    0) mv "$tmp/out" "$base.trace"; rm -f "$base.err" ;;
    2) mv "$tmp/err" "$base.err"; rm -f "$base.trace" ;;
    *) echo "regen.sh: the reference runner failed on $scn (status $rc)" >&2; cat "$tmp/err" >&2; exit 1 ;;
    esac
done
