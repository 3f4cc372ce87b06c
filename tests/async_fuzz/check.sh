#!/bin/sh
# check.sh RUNNER BUNDLE START COUNT [EMULATOR]: the seeds START..START+COUNT-1
# of the bundle through cogen-async-scenario, compared byte for byte with
# the traces recorded there; for machines without python3, which cannot
# generate the scenarios (afuzz.py check does the same and more with it):
# the scenarios are taken from the bundle as they were recorded. EMULATOR
# (words split at blanks: qemu, valgrind) runs the runner.
set -u
runner=$1 bundle=$2 start=$3 count=$4 emu=${5:-}
end=$((start + count))
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
# The bundle: a "# features:" line, then per seed "@@ SEED HASH STATUS NSCN
# NOUT", NSCN lines of scenario and NOUT lines of expected output.
gzip -dc "$bundle" | awk -v dir="$tmp" -v lo="$start" -v hi="$end" '
  NR == 1 { next }
  ns == 0 && no == 0 && $1 == "@@" {
    seed = $2 + 0; ns = $5 + 0; no = $6 + 0; keep = seed >= lo && seed < hi
    if (keep) {
      f = dir "/" seed
      print $4 > (f ".status"); close(f ".status")
      printf "" > (f ".scn"); printf "" > (f ".want")
    }
    next
  }
  ns > 0 { if (keep) print > (f ".scn"); if (--ns == 0 && keep) close(f ".scn"); next }
  no > 0 { if (keep) print > (f ".want"); if (--no == 0 && keep) close(f ".want"); next }
' || { echo "check.sh: cannot read $bundle"; exit 1; }
bad=0
seed=$start
while [ "$seed" -lt "$end" ]; do
  f=$tmp/$seed
  if [ ! -f "$f.status" ]; then
    echo "check.sh: seed $seed is not in $bundle"; exit 1
  fi
  # shellcheck disable=SC2086
  $emu "$runner" "$f.scn" >"$tmp/out" 2>"$tmp/err"
  rc=$?
  st=$(cat "$f.status")
  if [ "$st" = 0 ]; then got=$tmp/out; else got=$tmp/err; fi
  if [ "$rc" != "$st" ] || ! cmp -s "$f.want" "$got"; then
    bad=$((bad + 1))
    echo "=== MISMATCH seed $seed (async_gen.py $seed) ==="
    cat "$f.scn"
    echo "--- expected (async_ref.py, status $st) / +++ got (cogen-async-scenario, status $rc)"
    diff -u "$f.want" "$got"
  fi
  seed=$((seed + 1))
done
echo "check.sh: seeds $start..$((end - 1)), $count scenarios, $bad mismatches"
[ "$bad" -eq 0 ]
