#!/bin/sh
# measure.sh MODE [options] -- SERVER_CMD...: one measurement of one server
# (one process run, as bench/run.sh wants them), printed as a RESULT line.
#
#   MODE echo      bench_io_load keeps one 64-byte message in flight on each
#                  of CONNS connections; RESULT value: the server's CPU
#                  (utime + stime from /proc/PID/stat) per message, in ns
#   MODE http      wrk -t1 -cCONNS -dSECONDS against GET /; RESULT value:
#                  the server's CPU per request, in ns
#   MODE syscalls  strace -c -f on the server during MESSAGES echoes (after
#                  the warm-up); RESULT bench=syscalls_per_msg, value: system
#                  calls per message
#
# The server is started as `SERVER_CMD... PORT [ARGS]` (a free port on
# 127.0.0.1), pinned with taskset to one CPU, and the load generator (or
# wrk) is pinned to the same CPU, as issue 10 asks: the two take turns on
# one core, so the server's work per message is what its CPU time counts,
# and the load generator's own CPU, which is not the server's, is simply
# not read. With -s split (issue 11's loops benchmark) only the load
# generator is pinned, and the server may run on every CPU: two more
# RESULT lines then give the wall time per message (BENCH_wall, 1e9 /
# throughput) and the load generator's CPU per message (BENCH_client). At
# the end the server gets SIGTERM and must exit with status 0 within 5 s.
#
# Options:
#   -b BENCH     bench name in the RESULT line (default echo_cCONNS, http_cCONNS)
#   -i IMPL      impl name in the RESULT line (default: server)
#   -c CONNS     connections (default 100)
#   -t SECONDS   length of the measured phase (echo, http; default 2)
#   -w SECONDS   warm-up before it (default 0.5; http: whole seconds, 0 for none)
#   -n MESSAGES  measured messages (syscalls; default 20000)
#   -m MAX       syscalls: exit 1 when the figure is above MAX
#   -x ARGS      words after the port on the server's command line, comma
#                separated (echo-server's LOOPS: -x 2; http-hello's: -x 10,2)
#   -s PLACE     one (default): server and load on one CPU; split: the load
#                alone pinned, the server free on every CPU (echo, http)
# Environment:
#   BENCH_IO_LOAD  the load generator (default: bench_io_load next to this
#                  script's build, build/bench/io/bench_io_load)
#   BENCH_IO_CPU   the CPU both are pinned to (default: the last one online)
set -u

usage() { sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d' >&2; exit 2; }
[ $# -ge 1 ] || usage
MODE=$1
shift
BENCH=
IMPL=server
CONNS=100
SECS=2
WARM=0.5
MSGS=20000
MAX=
XARGS=
PLACE=one
while getopts b:i:c:t:w:n:m:x:s: opt; do
    case $opt in
    b) BENCH=$OPTARG ;;
    i) IMPL=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    t) SECS=$OPTARG ;;
    w) WARM=$OPTARG ;;
    n) MSGS=$OPTARG ;;
    m) MAX=$OPTARG ;;
    x) XARGS=$(printf '%s' "$OPTARG" | tr , ' ') ;;
    s) PLACE=$OPTARG ;;
    *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ "${1:-}" = -- ] && shift
[ $# -ge 1 ] || usage
case $MODE in echo | http | syscalls) ;; *) usage ;; esac
case $PLACE in one | split) ;; *) usage ;; esac
[ -n "$BENCH" ] || BENCH=${MODE}_c$CONNS

HERE=$(cd "$(dirname "$0")" && pwd)
LOAD=${BENCH_IO_LOAD:-$HERE/../../build/bench/io/bench_io_load}
if [ ! -x "$LOAD" ]; then
    echo "measure.sh: load generator $LOAD not found (build first, or set BENCH_IO_LOAD)" >&2
    exit 2
fi
NCPU=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1)
CPU=${BENCH_IO_CPU:-$((NCPU - 1))}
PIN=
if command -v taskset >/dev/null 2>&1; then
    PIN="taskset -c $CPU"
else
    echo "NOTE io: taskset not found (util-linux): server and load generator not pinned"
fi
# 1,000 connections and more: as many files as allowed, for both sides.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

SPIN=$PIN
[ "$PLACE" = split ] && SPIN=
PORT=$("$LOAD" freeport) || exit 2
# shellcheck disable=SC2086
$SPIN "$@" "$PORT" $XARGS &
SPID=$!
TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-io.XXXXXX") || exit 2

# stop_server: SIGTERM, then 5 s for a clean exit (status 0), else SIGKILL.
# (Polled, not a background sleep, which would outlive this script and
# hold its output open.)
stop_server() {
    kill -TERM "$SPID" 2>/dev/null
    n=0
    while [ $n -lt 50 ] && [ -r "/proc/$SPID/stat" ] && [ "$(sed 's/.*) //' "/proc/$SPID/stat" | cut -c1)" != Z ]; do
        sleep 0.1
        n=$((n + 1))
    done
    [ $n -lt 50 ] || kill -KILL "$SPID" 2>/dev/null
    wait "$SPID"
    src=$?
    rm -rf "$TMP"
    if [ "$src" -ne 0 ]; then
        echo "measure.sh: '$*' exited with status $src after SIGTERM (expected 0 within 5 s)" >&2
        return 1
    fi
    return 0
}

# The server's utime + stime, in clock ticks (fields 14 and 15 of
# /proc/PID/stat, counted after the command name, which may hold spaces).
ticks() { sed 's/.*) //' "/proc/$SPID/stat" | awk '{ print $12 + $13 }'; }

# The CPU time of this shell's finished children (user + system, in
# seconds, from the shell's `times`, read from a file: in a command
# substitution it would be the subshell's): around one wrk run, wrk's.
child_cpu() {
    times >"$TMP/times"
    awk 'NR == 2 {
        t = 0
        for (k = 1; k <= 2; k++) { split($k, p, "m"); t += p[1] * 60 + p[2] }
        print t }' "$TMP/times"
}

# split_results MESSAGES WALL_S CLIENT_CPU_S: the two RESULT lines of -s split.
split_results() {
    awk -v b="$BENCH" -v i="$IMPL" -v n="$1" -v w="$2" -v cc="$3" -v c="$CONNS" 'BEGIN {
        if (n + 0 <= 0) exit 1
        printf "RESULT bench=%s_wall impl=%s value=%.4f unit=ns n=%d conns=%d wall_s=%s msgs_per_s=%.0f\n", b, i, w * 1e9 / n, n, c, w, n / w
        printf "RESULT bench=%s_client impl=%s value=%.4f unit=ns n=%d conns=%d client_cpu_s=%s\n", b, i, cc * 1e9 / n, n, c, cc }'
}

rc=0
case $MODE in
echo)
    # shellcheck disable=SC2086
    out=$($PIN "$LOAD" echo "$PORT" -c "$CONNS" -t "$SECS" -w "$WARM" -p "$SPID" -b "$BENCH" -i "$IMPL") || rc=1
    printf '%s\n' "$out"
    if [ $rc = 0 ] && [ "$PLACE" = split ]; then
        field() { printf '%s\n' "$out" | sed -n "s/^RESULT .* $1=\([0-9.]*\).*/\1/p"; }
        split_results "$(field n)" "$(field wall_s)" "$(field client_cpu_s)"
    fi
    ;;
syscalls)
    out=$("$LOAD" echo "$PORT" -c "$CONNS" -n "$MSGS" -w "$WARM" -p "$SPID" -S "$TMP/strace" -i "$IMPL") || rc=1
    printf '%s\n' "$out"
    if [ $rc = 0 ] && [ -n "$MAX" ]; then
        v=$(printf '%s\n' "$out" | sed -n 's/^RESULT .* value=\([0-9.]*\) .*/\1/p')
        if ! awk -v v="$v" -v m="$MAX" 'BEGIN { exit !(v + 0 <= m + 0) }'; then
            echo "measure.sh: $IMPL: $v system calls per message, more than $MAX" >&2
            rc=1
        fi
    fi
    ;;
http)
    url=http://127.0.0.1:$PORT/
    "$LOAD" wait "$PORT" || rc=1
    wrk_run() {
        # shellcheck disable=SC2086
        $PIN wrk -t1 -c"$CONNS" -d"$1"s "$url" >"$TMP/wrk" 2>&1
    }
    if [ $rc = 0 ] && [ "${WARM%%.*}" -gt 0 ] && ! wrk_run "${WARM%%.*}"; then rc=1; fi
    if [ $rc = 0 ]; then
        child_cpu >"$TMP/c0"
        t0=$(ticks)
        wrk_run "${SECS%%.*}" || rc=1
        t1=$(ticks)
        child_cpu >"$TMP/c1"
        c0=$(cat "$TMP/c0") c1=$(cat "$TMP/c1")
    fi
    if [ $rc = 0 ]; then
        # "N requests in S, B read"; a socket error or a non-2xx answer fails the run.
        reqs=$(sed -n 's/^ *\([0-9]*\) requests in .*/\1/p' "$TMP/wrk")
        if [ -z "$reqs" ] || [ "$reqs" -eq 0 ] || grep -Eq 'Socket errors|Non-2xx' "$TMP/wrk"; then
            echo "measure.sh: wrk against $IMPL failed:" >&2
            cat "$TMP/wrk" >&2
            rc=1
        else
            awk -v b="$BENCH" -v i="$IMPL" -v r="$reqs" -v d="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
                -v c="$CONNS" -v s="${SECS%%.*}" 'BEGIN {
                printf "RESULT bench=%s impl=%s value=%.4f unit=ns n=%d conns=%d wall_s=%d server_cpu_ticks=%d clk_tck=%d\n",
                    b, i, d * 1e9 / hz / r, r, c, s, d, hz }'
            # wrk runs for its -d, give or take its connection set-up
            [ "$PLACE" = split ] && split_results "$reqs" "${SECS%%.*}" "$(awk -v a="$c0" -v b="$c1" 'BEGIN { print b - a }')"
        fi
    fi
    ;;
esac
stop_server "$@" || rc=1
exit $rc
