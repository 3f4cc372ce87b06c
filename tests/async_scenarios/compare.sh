#!/bin/sh
# compare.sh RUNNER SCENARIO [DIFFDIR [EMULATOR]]: runs cogen-async-scenario on one
# scenario and compares what it prints with the recorded reference:
#   NAME.expected  a valid scenario: stdout, byte for byte, and status 0;
#   NAME.err       an invalid one: stderr, byte for byte, and status 2.
# Exit status 3 (the runner's "unsupported statement") is passed on, so
# that ctest reports the test as skipped (SKIP_RETURN_CODE 3). EMULATOR
# (words split at blanks: qemu, valgrind with its options) runs the runner.
runner=$1
scn=$2
out=${3:-.}
emu=${4:-}
dir=$(dirname "$scn")
name=$(basename "$scn" .scn)
mkdir -p "$out"
# shellcheck disable=SC2086
$emu "$runner" "$scn" >"$out/$name.got" 2>"$out/$name.stderr"
rc=$?
if [ $rc -eq 3 ]; then
  cat "$out/$name.stderr"
  exit 3
fi
if [ -f "$dir/$name.expected" ]; then
  if [ $rc -ne 0 ]; then
    echo "$name: exit status $rc, expected 0"; cat "$out/$name.stderr"; exit 1
  fi
  if ! cmp -s "$dir/$name.expected" "$out/$name.got"; then
    echo "$name: the trace differs from $name.expected"
    diff -u "$dir/$name.expected" "$out/$name.got"
    exit 1
  fi
elif [ -f "$dir/$name.err" ]; then
  if [ $rc -ne 2 ]; then
    echo "$name: exit status $rc, expected 2"; cat "$out/$name.stderr"; exit 1
  fi
  if ! cmp -s "$dir/$name.err" "$out/$name.stderr"; then
    echo "$name: the message differs from $name.err"
    diff -u "$dir/$name.err" "$out/$name.stderr"
    exit 1
  fi
else
  echo "$name: no $name.expected or $name.err beside $scn (run regen.sh)"
  exit 1
fi
exit 0
