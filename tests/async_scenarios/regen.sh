#!/bin/sh
# regen.sh [--check] [ASYNC_REF]: records the reference trace of every
# async scenario in this directory with async_ref.py on CPython 3.13.0:
# NAME.expected (stdout) for a valid scenario, NAME.err (stderr) for an
# invalid one (exit status 2). With --check, records nothing and fails if
# a recorded file differs from what the reference prints now; exits 3
# (skipped) without the reference runner or CPython 3.13.0.
#
# ASYNC_REF defaults to ../../../shared/semantics/async_ref.py (beside the
# repository). The interpreter is $PYTHON if set, else python3 with
# PYENV_VERSION=3.13.0 (pyenv), which must report 3.13.0.
check=0
if [ "$1" = "--check" ]; then check=1; shift; fi
here=$(cd "$(dirname "$0")" && pwd)
ref=${1:-$here/../../../shared/semantics/async_ref.py}
if [ ! -f "$ref" ]; then
  echo "regen.sh: no reference runner at $ref"; exit 3
fi
if [ -n "$PYTHON" ]; then py=$PYTHON; else py=python3; export PYENV_VERSION=3.13.0; fi
ver=$("$py" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3], sys.implementation.name)' 2>/dev/null)
if [ "$ver" != "3.13.0 cpython" ]; then
  echo "regen.sh: the reference needs CPython 3.13.0 ($py is: ${ver:-not runnable})"; exit 3
fi
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
bad=0
for scn in "$here"/*.scn; do
  name=$(basename "$scn" .scn)
  "$py" "$ref" "$scn" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  if [ $rc -eq 0 ]; then
    new=expected; src=$tmp/out; old=err
  elif [ $rc -eq 2 ]; then
    new=err; src=$tmp/err; old=expected
  else
    echo "$name: the reference runner failed ($rc)"; cat "$tmp/err"; bad=1; continue
  fi
  if [ $check -eq 1 ]; then
    if [ -f "$here/$name.$old" ] || ! cmp -s "$src" "$here/$name.$new"; then
      echo "$name: $name.$new is not what async_ref.py prints"
      diff -u "$here/$name.$new" "$src" 2>/dev/null
      bad=1
    fi
  else
    cp "$src" "$here/$name.$new"
    rm -f "$here/$name.$old"
  fi
done
exit $bad
