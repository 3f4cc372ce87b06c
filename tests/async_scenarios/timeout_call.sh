#!/bin/sh
# timeout_call.sh RUNNER DIR [DIFFDIR [EMULATOR]]: every scenario of DIR with
# a timeout block, run with COGEN_SCENARIO_TIMEOUT=call (the block is a
# cg_timeout_call, whose timer goes in the heap only when the task's step
# ends inside it, instead of a cg_timeout entered and exited) and compared
# with its recorded trace by compare.sh. Scenarios the runner skips
# (status 3) are left out; none run at all is a failure.
runner=$1
dir=$2
out=${3:-.}
emu=${4:-}
here=$(dirname "$0")
mkdir -p "$out"
COGEN_SCENARIO_TIMEOUT=call
export COGEN_SCENARIO_TIMEOUT
ran=0
failed=0
for scn in $(grep -l '^ *timeout ' "$dir"/*.scn); do
  sh "$here/compare.sh" "$runner" "$scn" "$out" "$emu" >"$out/timeout_call.log" 2>&1
  rc=$?
  if [ $rc -eq 3 ]; then continue; fi
  ran=$((ran + 1))
  if [ $rc -ne 0 ]; then
    cat "$out/timeout_call.log"
    failed=$((failed + 1))
  fi
done
echo "timeout_call: $ran scenarios with a timeout block, $failed failed"
[ $ran -gt 0 ] && [ $failed -eq 0 ]
