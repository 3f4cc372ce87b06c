#!/bin/sh
# echo_loops.sh ECHO_SERVER LOADGEN: the echo example on two loops (two
# threads, one listener each on the same port with SO_REUSEPORT): 200
# connections checked byte for byte by the load generator (every message
# different), then SIGTERM: both loops stop and the program exits 0.
set -u
srv=$1 load=$2
port=$("$load" freeport) || exit 1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$srv" "$port" 2 >"$out" 2>&1 &
pid=$!
"$load" wait "$port" || { kill "$pid"; cat "$out"; exit 1; }
"$load" echo "$port" -c 200 -n 20000 -w 0.1 || { kill "$pid"; cat "$out"; exit 1; }
kill -TERM "$pid"
wait "$pid"
rc=$?
cat "$out"
[ "$rc" -eq 0 ] || { echo "echo_loops: exit status $rc"; exit 1; }
grep -q "with 2 loops" "$out" && grep -q "echo-server: stopped" "$out" || { echo "echo_loops: output"; exit 1; }
echo "echo_loops: ok"
