#!/bin/sh
# syscalls.sh [-c CONNS] [-n MESSAGES] [-m MAX] SERVER_CMD...: prints the
# system calls an echo server makes per 64-byte message (issue 10's
# figure: <= 2.05, libuv's being 2.03).
#
# The server is started as `SERVER_CMD... PORT`; after a warm-up, strace
# -c -f is attached to it for MESSAGES echoes (default 20000) over CONNS
# connections (default 100), one message in flight on each; the figure is
# the calls strace counted divided by MESSAGES. It is a count, not a
# timing, so it can be asserted in make test: with -m MAX the script exits
# 1 when the figure is above MAX (ctest bench_io_syscalls_*). Needs strace
# and the load generator (BENCH_IO_LOAD, default build/bench/io/bench_io_load).
#
#   sh bench/io/syscalls.sh -m 2.05 build/examples/echo-server
set -u
case ${1:-} in
'' | -h | --help)
    sed -n '2,/^set -u/p' "$0" | sed 's/^# \{0,1\}//; /^set -u/d' >&2
    exit 2
    ;;
esac
# Compact mode (make check-compact) swaps a waiting task's stack out and in,
# which is what it is for: more system calls, and not the figure asked for.
case ${COGEN_COMPACT:-0} in
0 | '') ;;
*)
    echo "syscalls.sh: not measured under COGEN_COMPACT (stacks are swapped out while tasks wait)"
    exit 77
    ;;
esac
if ! command -v strace >/dev/null 2>&1; then
    echo "syscalls.sh: strace not found; install it with 'apt-get install strace'" >&2
    exit 2
fi
# measure.sh reads -c, -n and -m, and takes the rest as the server's command.
out=$(sh "$(dirname "$0")/measure.sh" syscalls -w 0.2 "$@")
rc=$?
v=$(printf '%s\n' "$out" | sed -n 's/^RESULT .* value=\([0-9.]*\) .*/\1/p')
[ -n "$v" ] && echo "$v"
exit $rc
