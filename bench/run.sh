#!/bin/sh
# run.sh [BUILD_DIR]: `make bench`. Runs cogen's benchmarks beside its peers
# (Boost.Context fcontext, ucontext, a pthread condvar ping-pong, CPython
# generators; for the event loop asyncio, uvloop and libuv; for I/O servers
# libuv, plain epoll, asyncio and uvloop), prints a table with the ratios and
# the targets, and writes BUILD_DIR/bench/results.json and results.svg
# (scaling.svg too).
#
# Method: every figure is the median of RUNS separate process runs (min and
# max shown). The runs are interleaved: for each benchmark, run 1 of every
# implementation, then run 2 of every implementation, and so on (A B C A B
# C ...), so that noise from other work on the shared cores lands on all of
# them alike. Instruction counts come from callgrind: the roundtrip program
# runs under it with two iteration counts, and the difference of the totals
# divided by the difference of the counts is the count per roundtrip (setup
# and warm-up cancel out; the result is exact and repeatable). The I/O
# servers' figures are the server's CPU time per message (bench/io/measure.sh
# says how; docs/performance.md, "I/O servers", why).
#
# Environment:
#   BENCH_RUNS=N      runs per figure (default 5; at least 5 for real results)
#   BENCH_OUT=DIR     where results go (default BUILD_DIR/bench)
#   BENCH_SMOKE=1     tiny sizes and 3 runs: proves the pipeline works (CI)
#   BENCH_SCALING=0   skip the scaling series (depth, chains, 1k/10k memory)
#   BENCH_RUNS_10M=N  runs of compact_rss_10m (default RUNS)
#   BENCH_IO=0        skip the I/O servers; BENCH_IO=only: run only them
#                     (`make bench-io`)
#   BENCH_IO_SECONDS=S  measured seconds per I/O run (default 5)
#   BENCH_IO_CPU=C    the CPU the I/O servers and their load run on (default:
#                     the last one)
#   BENCH_ONLY=REGEX  run only the groups and instruction counts whose
#                     name matches REGEX (grep -E), e.g. 'lifecycle|throw';
#                     with BENCH_SCALING=0 BENCH_IO=0 for a short targeted run
#   BENCH_REPORT_ONLY=1  measure nothing: redo the table, JSON and SVG from
#                     the raw runs of the last measurement (raw.txt)
#
# Nothing is installed. A peer whose package is missing is skipped with a
# message saying how to get it.
set -u

BUILD=${1:-build}
SRC=$(cd "$(dirname "$0")" && pwd)
BIN=$BUILD/bench
OUT=${BENCH_OUT:-$BIN}
SMOKE=${BENCH_SMOKE:-0}
SCALING=${BENCH_SCALING:-1}
IO=${BENCH_IO:-1}
ONLY=${BENCH_ONLY:-}
if [ "$SMOKE" = 1 ]; then RUNS=${BENCH_RUNS:-3}; else RUNS=${BENCH_RUNS:-5}; fi

if [ ! -x "$BIN/bench_cogen" ]; then
    echo "bench: $BIN/bench_cogen not found: build first (make, or cmake --build $BUILD)" >&2
    exit 1
fi
BENCH_HAVE_BOOST=OFF
BENCH_HAVE_LIBUV=OFF
BENCH_LIBUV_VERSION=
BENCH_BUILD_TYPE='?'
BENCH_CC='?'
BENCH_SWITCH='?'
BENCH_SANITIZE=
BENCH_BOOST_INCLUDE=
# shellcheck disable=SC1090,SC1091
[ -f "$BIN/config.sh" ] && . "$BIN/config.sh"

mkdir -p "$OUT" || exit 1
RAW=$OUT/raw.txt
NOTES=$OUT/notes.txt
LOG=$OUT/stderr.log
REPORT_ONLY=${BENCH_REPORT_ONLY:-0}
if [ "$REPORT_ONLY" = 1 ]; then
    if [ ! -s "$RAW" ]; then
        echo "bench: BENCH_REPORT_ONLY=1 but $RAW is empty: run the benchmarks first" >&2
        exit 1
    fi
else
    : >"$RAW"
    : >"$NOTES"
    : >"$LOG"
fi
FAILED=0

note() { printf '%s\n' "$*" >>"$NOTES"; printf 'bench: %s\n' "$*"; }

# Sizes: sz NORMAL SMOKE
sz() { if [ "$SMOKE" = 1 ]; then echo "$2"; else echo "$1"; fi; }

# --- Peers ----------------------------------------------------------------
have_cogen=1
have_boost=0
have_ucontext=0
have_pthread=0
have_cpython=0
have_valgrind=0
have_loop=0
have_libuv=0
have_asyncio=0
have_uvloop=0
if [ -x "$BIN/bench_boost" ]; then
    have_boost=1
elif [ "$BENCH_HAVE_BOOST" = ON ]; then
    note "boost-fcontext: skipped: $BIN/bench_boost was not built"
else
    note "boost-fcontext: skipped: Boost.Context (libboost-context-dev) was not found when $BUILD was configured; install it with 'apt-get install libboost-context-dev', then re-configure (cmake -S . -B $BUILD) and run make bench again"
fi
if [ -x "$BIN/bench_ucontext" ]; then have_ucontext=1; else note "ucontext: skipped: $BIN/bench_ucontext was not built (this C library has no swapcontext)"; fi
if [ -x "$BIN/bench_pthread" ]; then have_pthread=1; else note "pthread: skipped: $BIN/bench_pthread was not built"; fi
PYTHON=$(command -v python3 2>/dev/null || true)
if [ -n "$PYTHON" ]; then
    have_cpython=1
else
    note "cpython: skipped: python3 not found; install it with 'apt-get install python3' (it also writes results.json and results.svg)"
fi
# The event loop: bench_loop, libuv (configure time), asyncio in python3,
# uvloop in whichever python3 has it (Debian's python3-uvloop is for the
# system interpreter, /usr/bin/python3, which may not be the python3 on PATH).
if [ -x "$BIN/bench_loop" ]; then have_loop=1; else note "event loop: skipped: $BIN/bench_loop was not built"; fi
if [ -x "$BIN/bench_libuv" ]; then
    have_libuv=1
elif [ "$BENCH_HAVE_LIBUV" = ON ]; then
    note "libuv: skipped: $BIN/bench_libuv was not built"
else
    note "libuv: skipped: libuv (pkg-config libuv) was not found when $BUILD was configured; install it with 'apt-get install libuv1-dev', then re-configure (cmake -S . -B $BUILD) and run make bench again"
fi
if [ $have_cpython = 1 ]; then
    have_asyncio=1
    ASYNCIO_PY=$PYTHON
    note "asyncio: $ASYNCIO_PY ($("$ASYNCIO_PY" -c 'import platform; print(platform.python_implementation(), platform.python_version())' 2>/dev/null)), asyncio.run with its default event loop"
fi
UVLOOP_PY=
for py in "$PYTHON" /usr/bin/python3; do
    if [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import uvloop' >/dev/null 2>&1; then UVLOOP_PY=$py; break; fi
done
if [ -n "$UVLOOP_PY" ]; then
    have_uvloop=1
    note "uvloop: $UVLOOP_PY ($("$UVLOOP_PY" -c 'import platform, uvloop; print(platform.python_implementation(), platform.python_version() + ", uvloop " + uvloop.__version__)' 2>/dev/null)), asyncio.Runner(loop_factory=uvloop.new_event_loop)"
else
    note "uvloop: skipped: 'import uvloop' fails in python3 and /usr/bin/python3; install it with 'apt-get install python3-uvloop' (Debian's package is for /usr/bin/python3)"
fi
if [ $have_libuv = 1 ] && [ -n "$BENCH_LIBUV_VERSION" ]; then note "libuv: $BENCH_LIBUV_VERSION (pkg-config), bench/bench_libuv.c"; fi
# The I/O servers (bench/io): the load generator and each server program;
# cogen's are issue 10's examples, echo-server and http-hello. wrk and
# strace are looked for at run time (installing them needs no re-configure).
IO_BIN=$BIN/io
have_io=0
have_wrk=0
have_strace=0
IO_PY=
if [ "$IO" != 0 ]; then
    if [ -x "$IO_BIN/bench_io_load" ]; then
        have_io=1
    else
        note "I/O servers: skipped: $IO_BIN/bench_io_load was not built"
    fi
    [ -n "$PYTHON" ] && IO_PY=$("$PYTHON" -c 'import sys; print(sys.executable)' 2>/dev/null)
    if command -v wrk >/dev/null 2>&1; then
        have_wrk=1
    else
        note "http_c100: skipped: wrk not found; install it with 'apt-get install wrk'"
    fi
    if command -v strace >/dev/null 2>&1; then
        have_strace=1
    else
        note "syscalls_per_msg: skipped: strace not found; install it with 'apt-get install strace'"
    fi
    if [ $have_io = 1 ]; then
        [ -x "$BUILD/examples/echo-server" ] ||
            note "cogen echo_c100, echo_c1000, syscalls_per_msg: skipped: $BUILD/examples/echo-server is not built (issue 10's streams example)"
        [ -x "$BUILD/examples/http-hello" ] ||
            note "cogen http_c100: skipped: $BUILD/examples/http-hello is not built (issue 10's HTTP example)"
        [ -x "$IO_BIN/bench_io_libuv_echo" ] || [ $have_libuv = 0 ] ||
            note "libuv I/O servers: skipped: $IO_BIN/bench_io_libuv_echo was not built"
        note "I/O servers: server and load generator pinned to CPU ${BENCH_IO_CPU:-$(($(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 1) - 1))} (taskset); value = server utime+stime per message"
    fi
fi
if [ -n "$BENCH_SANITIZE" ]; then
    note "instructions_roundtrip: skipped: valgrind cannot run a sanitizer build ($BENCH_SANITIZE)"
elif command -v valgrind >/dev/null 2>&1; then
    have_valgrind=1
else
    note "instructions_roundtrip: skipped: valgrind not found; install it with 'apt-get install valgrind'"
fi
if [ -n "$BENCH_SANITIZE" ]; then
    note "warning: this build uses sanitizers ($BENCH_SANITIZE): the timings say nothing about a normal build"
fi

# One function per implementation: `impl BENCH ARGS...` runs one measurement.
cogen() { "$BIN/bench_cogen" "$@"; }
boost_fcontext() { "$BIN/bench_boost" "$@"; }
ucontext() { "$BIN/bench_ucontext" "$@"; }
pthread() { "$BIN/bench_pthread" "$@"; }
cpython() { "$PYTHON" "$SRC/cpython_bench.py" "$@"; }
loop() { "$BIN/bench_loop" "$@"; }
libuv() { "$BIN/bench_libuv" "$@"; }
asyncio() { "$ASYNCIO_PY" "$SRC/asyncio_bench.py" "$@"; }
uvloop() { "$UVLOOP_PY" "$SRC/asyncio_bench.py" --uvloop "$@"; }

# The I/O servers: `io-IMPL MODE [measure.sh options]` (MODE echo, http or
# syscalls) runs bench/io/measure.sh once on IMPL's server.
io_server() { # io_server IMPL KIND: the server's command line, one word a line
    case $1/$2 in
    cogen/echo) echo "$BUILD/examples/echo-server" ;;
    cogen/http) echo "$BUILD/examples/http-hello" ;;
    libuv/* | epoll/*) echo "$IO_BIN/bench_io_$1_$2" ;;
    asyncio/* | uvloop/*)
        if [ "$1" = asyncio ]; then echo "$IO_PY"; else echo "$UVLOOP_PY"; fi
        echo "$SRC/io/asyncio_server.py"
        [ "$1" = asyncio ] || echo --uvloop
        [ "$2" = echo ] || echo --http
        ;;
    esac
}
io_run() {
    r_impl=$1
    r_mode=$2
    shift 2
    r_kind=echo
    [ "$r_mode" = http ] && r_kind=http
    set -- "$@" --
    # (the server's words go through a file: paths may hold spaces)
    io_server "$r_impl" "$r_kind" >"$OUT/.io-cmd"
    while IFS= read -r r_word; do set -- "$@" "$r_word"; done <"$OUT/.io-cmd"
    rm -f "$OUT/.io-cmd"
    BENCH_IO_LOAD=$IO_BIN/bench_io_load sh "$SRC/io/measure.sh" "$r_mode" -i "$r_impl" "$@"
}
io_cogen() { io_run cogen "$@"; }
io_libuv() { io_run libuv "$@"; }
io_epoll() { io_run epoll "$@"; }
io_asyncio() { io_run asyncio "$@"; }
io_uvloop() { io_run uvloop "$@"; }
# io_available IMPL MODE: whether that server, and what MODE needs, exist.
io_available() {
    [ $have_io = 1 ] || return 1
    case $2 in
    http) [ $have_wrk = 1 ] || return 1 ;;
    syscalls) [ $have_strace = 1 ] || return 1 ;;
    esac
    case $1 in
    asyncio) [ -n "$IO_PY" ] || return 1 ;;
    uvloop) [ $have_uvloop = 1 ] || return 1 ;;
    *) [ -x "$(io_server "$1" "$([ "$2" = http ] && echo http || echo echo)")" ] || return 1 ;;
    esac
}

available() { # available IMPL [ARGS...]
    case $1 in
    cogen) [ $have_cogen = 1 ] ;;
    boost-fcontext) [ $have_boost = 1 ] ;;
    ucontext) [ $have_ucontext = 1 ] ;;
    pthread) [ $have_pthread = 1 ] ;;
    cpython) [ $have_cpython = 1 ] ;;
    loop) [ $have_loop = 1 ] ;;
    libuv) [ $have_libuv = 1 ] ;;
    asyncio) [ $have_asyncio = 1 ] ;;
    uvloop) [ $have_uvloop = 1 ] ;;
    io-*) io_available "${1#io-}" "$2" ;;
    *) return 1 ;;
    esac
}

# run_one IMPL ARGS...: one process run; its RESULT lines go to raw.txt,
# its NOTE lines to notes.txt.
run_one() {
    impl=$1
    shift
    fn=$(echo "$impl" | tr - _)
    if ! out=$("$fn" "$@" 2>>"$LOG"); then
        note "FAILED: $impl $* (see $LOG)"
        FAILED=1
        return 1
    fi
    printf '%s\n' "$out" | grep '^RESULT ' >>"$RAW"
    printf '%s\n' "$out" | sed -n 's/^NOTE //p' >>"$NOTES"
    return 0
}

# group TITLE RUNS "IMPL ARGS" "IMPL ARGS" ...: RUNS rounds, each running
# every available implementation once, in the order given (interleaved).
# wanted NAME: true unless BENCH_ONLY is set and NAME does not match it.
wanted() { [ -z "$ONLY" ] || printf '%s\n' "$1" | grep -Eq -- "$ONLY"; }

group() {
    g_title=$1
    g_runs=$2
    shift 2
    wanted "$g_title" || return 0
    g_specs=$OUT/.specs
    : >"$g_specs"
    for g_spec in "$@"; do printf '%s\n' "$g_spec" >>"$g_specs"; done
    g_impls=
    while IFS= read -r g_spec; do
        # shellcheck disable=SC2086
        # shellcheck disable=SC2086
        available $g_spec && g_impls="$g_impls $(echo $g_spec | awk '{ print $1 "[" $2 "]" }')"
    done <"$g_specs"
    printf 'bench: %-30s x%s:%s\n' "$g_title" "$g_runs" "$g_impls"
    g_r=1
    while [ "$g_r" -le "$g_runs" ]; do
        while IFS= read -r g_spec; do
            # shellcheck disable=SC2086
            available $g_spec || continue
            # shellcheck disable=SC2086
            run_one $g_spec </dev/null
        done <"$g_specs"
        g_r=$((g_r + 1))
    done
    rm -f "$g_specs"
}

# instructions NAME RUNNER BENCH_ARGS...: callgrind instruction count per
# operation (RESULT bench=NAME), from two runs with N1 and N2 operations.
instructions() {
    name=$1
    impl=$2
    shift 2
    wanted "$name" || return 0
    n1=$(sz 100000 1000)
    n2=$(sz 1100000 11000)
    case $impl in
    cogen) exe=$BIN/bench_cogen ;;
    boost-fcontext) exe=$BIN/bench_boost ;;
    loop) exe=$BIN/bench_loop impl=cogen ;;
    *) return 1 ;;
    esac
    # Valgrind 3.19 cannot read clang 14's default DWARF 5 and gives up on
    # the whole program: run a copy without debug information (the code,
    # and so the count, is the same).
    if command -v objcopy >/dev/null 2>&1 &&
        objcopy --strip-debug "$exe" "$OUT/.callgrind-$impl" 2>/dev/null; then
        exe=$OUT/.callgrind-$impl
    fi
    counts=
    for n in $n1 $n2; do
        cg_out=$OUT/callgrind.out
        c=$(valgrind --tool=callgrind --callgrind-out-file="$cg_out" "$exe" "$@" "$n" 2>&1 >/dev/null |
            sed -n 's/^==[0-9]*== Collected : *\([0-9]*\).*/\1/p')
        rm -f "$cg_out"
        if [ -z "$c" ]; then
            rm -f "$OUT/.callgrind-$impl"
            note "FAILED: callgrind on $impl $* $n"
            FAILED=1
            return 1
        fi
        counts="$counts $c"
    done
    rm -f "$OUT/.callgrind-$impl"
    # shellcheck disable=SC2086
    set -- $counts
    awk -v a="$1" -v b="$2" -v n1="$n1" -v n2="$n2" -v impl="$impl" -v name="$name" 'BEGIN {
        printf "RESULT bench=%s impl=%s value=%.4f unit=count n=%d\n", name, impl, (b - a) / (n2 - n1), n2 - n1
    }' >>"$RAW"
}

START=$(date +%s)
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
if [ "$REPORT_ONLY" != 1 ]; then
if [ "$IO" != only ]; then

# --- Timings --------------------------------------------------------------
group roundtrip "$RUNS" \
    "cogen roundtrip $(sz 20000000 2000)" \
    "boost-fcontext roundtrip $(sz 20000000 2000)" \
    "ucontext roundtrip $(sz 500000 200)" \
    "pthread roundtrip $(sz 30000 50)" \
    "cpython roundtrip $(sz 5000000 2000)"
group compact_roundtrip "$RUNS" \
    "cogen compact_roundtrip $(sz 20000000 2000)"
group next_loop "$RUNS" \
    "cogen next_loop $(sz 1000000 20000) $(sz 5 1)" \
    "cpython next_loop $(sz 1000000 20000) $(sz 5 1)"
group throw_catch "$RUNS" \
    "cogen throw_catch $(sz 1000000 1000)" \
    "cpython throw_catch $(sz 500000 1000)"
group lifecycle "$RUNS" \
    "cogen lifecycle $(sz 2000000 1000)" \
    "boost-fcontext lifecycle $(sz 10000000 1000)" \
    "ucontext lifecycle $(sz 200000 100)" \
    "pthread lifecycle $(sz 5000 10)" \
    "cpython lifecycle $(sz 1000000 1000)"

# --- Instructions -----------------------------------------------------------
if [ $have_valgrind = 1 ]; then
    if wanted instructions_roundtrip; then
        printf 'bench: %-30s x1 (exact):' instructions_roundtrip
        printf ' cogen'
        instructions instructions_roundtrip cogen roundtrip
        if [ $have_boost = 1 ]; then
            printf ' boost-fcontext'
            instructions instructions_roundtrip boost-fcontext roundtrip
        fi
        printf '\n'
    fi
fi

# --- The event loop -----------------------------------------------------------
# asyncio and uvloop steps cost microseconds: they run fewer operations, in
# the same 100 batches.
group task_spawn_join "$RUNS" \
    "loop task_spawn_join $(sz 1000000 1000)" \
    "asyncio task_spawn_join $(sz 100000 1000)" \
    "uvloop task_spawn_join $(sz 100000 1000)"
group sleep0_switch "$RUNS" \
    "loop sleep0_switch $(sz 10000000 2000)" \
    "asyncio sleep0_switch $(sz 1000000 2000)" \
    "uvloop sleep0_switch $(sz 1000000 2000)"
group future_wakeup "$RUNS" \
    "loop future_wakeup $(sz 2000000 1000)" \
    "asyncio future_wakeup $(sz 200000 1000)" \
    "uvloop future_wakeup $(sz 200000 1000)"
group queue_handoff "$RUNS" \
    "loop queue_handoff $(sz 2000000 1000)" \
    "asyncio queue_handoff $(sz 200000 1000)" \
    "uvloop queue_handoff $(sz 200000 1000)"
group timer_arm_fire "$RUNS" \
    "loop timer_arm_fire $(sz 1000000 1000)" \
    "libuv timer_arm_fire $(sz 1000000 1000)"
group timer_arm_cancel "$RUNS" \
    "loop timer_arm_cancel $(sz 10000000 1000)" \
    "libuv timer_arm_cancel $(sz 10000000 1000)"
# A timeout scope left before its deadline, against the same libuv
# start+stop (the target) and asyncio.timeout.
group timer_arm_cancel_timeout "$RUNS" \
    "loop timer_arm_cancel_timeout $(sz 10000000 1000)" \
    "asyncio timer_arm_cancel_timeout $(sz 1000000 1000)" \
    "uvloop timer_arm_cancel_timeout $(sz 1000000 1000)"
group rss_tasks_1m "$RUNS" \
    "loop rss_tasks $(sz 1000000 1000)" \
    "asyncio rss_tasks $(sz 1000000 1000)"
group compact_rss_tasks_1m "$RUNS" \
    "loop compact_rss_tasks $(sz 1000000 1000)"
if [ $have_valgrind = 1 ] && [ $have_loop = 1 ]; then
    for i_name in sleep0_step:sleep0_switch future_wakeup:future_wakeup; do
        wanted "instructions_${i_name%%:*}" || continue
        printf 'bench: %-30s x1 (exact): cogen\n' "instructions_${i_name%%:*}"
        instructions "instructions_${i_name%%:*}" loop "${i_name#*:}"
    done
fi

# --- Memory -----------------------------------------------------------------
# A 1M run takes 3 to 12 s (mostly the kernel faulting in a page per stack).
group rss_100k "$RUNS" \
    "cogen rss $(sz 100000 1000)" \
    "boost-fcontext rss $(sz 100000 1000)" \
    "cpython rss $(sz 100000 1000)"
group rss_1m "$RUNS" \
    "cogen rss $(sz 1000000 2000)" \
    "boost-fcontext rss $(sz 1000000 2000)" \
    "cpython rss $(sz 1000000 2000)"
# 10M compact generators: when compact mode is active a run may take a
# while; BENCH_RUNS_10M lowers the count (the output then says so).
RUNS_10M=${BENCH_RUNS_10M:-$RUNS}
if [ "$SMOKE" != 1 ] && [ "$RUNS_10M" -lt 5 ]; then
    note "compact_rss_10m: $RUNS_10M runs (BENCH_RUNS_10M), fewer than 5; memory per generator is near-deterministic (min..max shows the spread)"
fi
group compact_rss_10m "$RUNS_10M" \
    "cogen compact_rss $(sz 10000000 3000)"

# --- Scaling (docs/performance.md) ---------------------------------------------
if [ "$SCALING" = 1 ]; then
    for d in 0 8 64; do
        group "roundtrip_depth_$d" "$RUNS" \
            "cogen depth $d $(sz 10000000 1000)" \
            "cogen compact_depth $d $(sz 10000000 1000)"
    done
    # 1,000 generators resumed in turn: compact mode swaps at every send
    # (a page fault and a madvise), unless its resident limit covers them.
    for d in 0 8 64; do
        group "roundtrip_rotate_$d" "$RUNS" \
            "cogen rotate $d $(sz 2000000 1000)" \
            "cogen compact_rotate $d $(sz 100000 1000)" \
            "cogen compact_rotate_resident $d $(sz 2000000 1000)"
    done
    for k in 1 4 16; do
        group "roundtrip_chain_$k" "$RUNS" \
            "cogen chain $k $(sz 10000000 1000)" \
            "cpython chain $k $(sz 2000000 1000)"
    done
    for n in 1000 10000; do
        group "rss_$((n / 1000))k" "$RUNS" \
            "cogen rss $(sz $n $((n / 100)))" \
            "boost-fcontext rss $(sz $n $((n / 100)))" \
            "cpython rss $(sz $n $((n / 100)))"
    done
    for n in 1000 10000 100000; do
        group "compact_rss_$((n / 1000))k" "$RUNS" \
            "cogen compact_rss $(sz $n $((n / 100)))"
    done
fi
fi # IO != only

# --- I/O servers (bench/io, docs/performance.md "I/O servers") -------------------
# Server CPU per message: each run starts the server, warms it up, measures,
# stops it. 5 s measured per run (the CPU time counts in 10 ms ticks: at
# least a few hundred of them per run). A server missing is skipped.
if [ "$IO" != 0 ]; then
    IO_T=${BENCH_IO_SECONDS:-$(sz 5 0.2)}
    IO_W=$(sz 1 0.05)
    for c in 100 1000; do
        group "echo_c$c" "$RUNS" \
            "io-cogen echo -c $c -t $IO_T -w $IO_W" \
            "io-libuv echo -c $c -t $IO_T -w $IO_W" \
            "io-epoll echo -c $c -t $IO_T -w $IO_W" \
            "io-asyncio echo -c $c -t $IO_T -w $IO_W" \
            "io-uvloop echo -c $c -t $IO_T -w $IO_W"
    done
    # wrk counts whole seconds: at smoke size, one 1 s round, no warm-up.
    IO_HT=${BENCH_IO_SECONDS:-$(sz 5 1)}
    IO_HW=$(sz 1 0)
    group http_c100 "$(sz "$RUNS" 1)" \
        "io-cogen http -c 100 -t $IO_HT -w $IO_HW" \
        "io-libuv http -c 100 -t $IO_HT -w $IO_HW" \
        "io-epoll http -c 100 -t $IO_HT -w $IO_HW" \
        "io-asyncio http -c 100 -t $IO_HT -w $IO_HW" \
        "io-uvloop http -c 100 -t $IO_HT -w $IO_HW"
    # Issue 11: the examples on 1 and 2 loops (one thread each), the load
    # generator alone pinned to one CPU and the server free on both (-s
    # split); 1 and 2 loops interleaved. Three figures per run: server CPU
    # per message (BENCH), wall time per message (BENCH_wall, 1e9 /
    # throughput) and the load generator's CPU per message (BENCH_client).
    group echo_c100_loops "$RUNS" \
        "io-cogen echo -c 100 -t $IO_T -w $IO_W -s split -x 1 -b echo_c100_loops1" \
        "io-cogen echo -c 100 -t $IO_T -w $IO_W -s split -x 2 -b echo_c100_loops2"
    group http_c100_loops "$(sz "$RUNS" 1)" \
        "io-cogen http -c 100 -t $IO_HT -w $IO_HW -s split -x 10,1 -b http_c100_loops1" \
        "io-cogen http -c 100 -t $IO_HT -w $IO_HW -s split -x 10,2 -b http_c100_loops2"
    # A count, not a timing: 3 runs show that it barely moves.
    group syscalls_per_msg "$(sz 3 1)" \
        "io-cogen syscalls -c 100 -n $(sz 20000 2000) -w $IO_W" \
        "io-libuv syscalls -c 100 -n $(sz 20000 2000) -w $IO_W" \
        "io-epoll syscalls -c 100 -n $(sz 20000 2000) -w $IO_W" \
        "io-asyncio syscalls -c 100 -n $(sz 20000 2000) -w $IO_W" \
        "io-uvloop syscalls -c 100 -n $(sz 20000 2000) -w $IO_W"
fi

ELAPSED=$(($(date +%s) - START))
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null)
# The machine is shared: say how busy it was (2 CPUs: a load above 1 means
# another process competed with the benchmarks for the cores).
note "load average (1, 5, 15 min) at start: ${LOAD0:-?}; at end: ${LOAD1:-?}; $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') CPUs" >/dev/null
fi # REPORT_ONLY

# --- Statistics: median, min, max per (bench, impl) ------------------------------
SUMMARY=$OUT/summary.tsv
TARGETS=$OUT/targets.tsv
awk '
{
    b = i = v = u = n = g = f = ""
    for (k = 2; k <= NF; k++) {
        p = index($k, "=")
        key = substr($k, 1, p - 1)
        val = substr($k, p + 1)
        if (key == "bench") b = val
        else if (key == "impl") i = val
        else if (key == "value") v = val
        else if (key == "unit") u = val
        else if (key == "n") n = val
        else if (key == "guard") g = val
        else if (key == "fallback") f = val
    }
    if (b != "" && i != "" && v != "") print b, i, v, u, n, (g == "" ? "-" : g), (f == "" ? "-" : f)
}' "$RAW" | sort -k1,1 -k2,2 -k3,3n | awk '
function flush() {
    if (c == 0) return
    med = (c % 2) ? vals[(c + 1) / 2] : (vals[c / 2] + vals[c / 2 + 1]) / 2
    printf "%s\t%s\t%.4f\t%.4f\t%.4f\t%d\t%s\t%s\t%s\t%s\n", pb, pi, med, vals[1], vals[c], c, pu, pn, pg, pf
    c = 0
}
{
    if ($1 != pb || $2 != pi) flush()
    pb = $1; pi = $2; pu = $4; pn = $5; pg = $6; pf = $7
    vals[++c] = $3 + 0
}
END { flush() }' >"$SUMMARY"

# Targets: name, measured, limit, status, note.
awk -F '\t' '
{ med[$1 SUBSEP $2] = $3; fb[$1 SUBSEP $2] = $10; n[$1 SUBSEP $2] = $8 }
function ratio(name, b1, i1, b2, i2, limit,   a, z) {
    a = (b1 SUBSEP i1) in med; z = (b2 SUBSEP i2) in med
    if (!a || !z) { printf "%s\t-\t%s\tSKIP\t%s not measured\n", name, limit, (a ? i2 : i1); return }
    if (med[b2 SUBSEP i2] <= 0) { printf "%s\t-\t%s\tSKIP\tzero denominator\n", name, limit; return }
    r = med[b1 SUBSEP i1] / med[b2 SUBSEP i2]
    printf "%s\t%.3f\t%s\t%s\t\n", name, r, limit, (r <= limit ? "PASS" : "FAIL")
}
function absolute(name, b, i, limit, unit, note,   v) {
    if (!((b SUBSEP i) in med)) { printf "%s\t-\t%s\tSKIP\tnot measured\n", name, limit; return }
    v = med[b SUBSEP i]
    printf "%s\t%.3f\t%s\t%s\t%s\n", name, v, limit, (v <= limit ? "PASS" : "FAIL"), note
}
END {
    ratio("roundtrip cogen/boost-fcontext", "roundtrip", "cogen", "roundtrip", "boost-fcontext", 0.8)
    ratio("roundtrip cogen/cpython", "roundtrip", "cogen", "roundtrip", "cpython", 0.5)
    absolute("instructions per roundtrip (cogen)", "instructions_roundtrip", "cogen", 70, "count", "")
    ratio("throw_catch cogen/cpython", "throw_catch", "cogen", "throw_catch", "cpython", 0.2)
    ratio("lifecycle cogen/boost-fcontext", "lifecycle", "cogen", "lifecycle", "boost-fcontext", 1.0)
    ratio("lifecycle cogen/cpython", "lifecycle", "cogen", "lifecycle", "cpython", 0.15)
    absolute("rss_1m KiB per generator (cogen)", "rss_1m", "cogen", 4.3, "kib", "")
    k = "compact_rss_10m" SUBSEP "cogen"
    absolute("compact_rss_10m KiB per generator (cogen)", "compact_rss_10m", "cogen", 0.44, "kib",
             (k in fb && fb[k] != "-") ? "compact mode not active: measured " n[k] " generators with normal stacks" : "")
    ratio("compact_roundtrip cogen / cpython roundtrip", "compact_roundtrip", "cogen", "roundtrip", "cpython", 0.5)
    ratio("task_spawn_join cogen/asyncio", "task_spawn_join", "cogen", "task_spawn_join", "asyncio", 0.03)
    ratio("sleep0_switch cogen/asyncio", "sleep0_switch", "cogen", "sleep0_switch", "asyncio", 0.03)
    ratio("future_wakeup cogen/asyncio", "future_wakeup", "cogen", "future_wakeup", "asyncio", 0.03)
    ratio("queue_handoff cogen/asyncio", "queue_handoff", "cogen", "queue_handoff", "asyncio", 0.03)
    ratio("timer_arm_fire cogen/libuv", "timer_arm_fire", "cogen", "timer_arm_fire", "libuv", 1.0)
    ratio("timer_arm_cancel cogen/libuv", "timer_arm_cancel", "cogen", "timer_arm_cancel", "libuv", 1.0)
    ratio("timer_arm_cancel_timeout cogen / libuv timer_arm_cancel", "timer_arm_cancel_timeout", "cogen", "timer_arm_cancel", "libuv", 1.0)
    absolute("rss_tasks_1m KiB per task (cogen)", "rss_tasks_1m", "cogen", 4.6, "kib", "")
    k = "compact_rss_tasks_1m" SUBSEP "cogen"
    absolute("compact_rss_tasks_1m KiB per task (cogen)", "compact_rss_tasks_1m", "cogen", 0.6, "kib",
             (k in fb && fb[k] != "-") ? "compact mode not active: normal stacks measured" : "")
    ratio("echo_c100 cogen/libuv", "echo_c100", "cogen", "echo_c100", "libuv", 1.05)
    ratio("echo_c1000 cogen/libuv", "echo_c1000", "cogen", "echo_c1000", "libuv", 1.05)
    ratio("http_c100 cogen/libuv", "http_c100", "cogen", "http_c100", "libuv", 1.05)
    absolute("syscalls per message (cogen)", "syscalls_per_msg", "cogen", 2.05, "count", "")
}' "$SUMMARY" >"$TARGETS"

# Table order: the headline benchmarks first, then the scaling series.
awk -F '\t' '
# Sort key: the headline benchmarks in a fixed order, then the scaling
# series, each in numeric order of its size (1k < 10k < 1m).
function numkey(name,   parts, k, m, p, out, v) {
    m = split(name, parts, "_")
    out = ""
    for (k = 1; k <= m; k++) {
        p = parts[k]
        if (p ~ /^[0-9]+[km]?$/) {
            v = p + 0
            if (p ~ /k$/) v *= 1000
            if (p ~ /m$/) v *= 1000000
            p = sprintf("%012d", v)
        }
        out = out (k > 1 ? "_" : "") p
    }
    return out
}
BEGIN {
    split("roundtrip compact_roundtrip instructions_roundtrip next_loop throw_catch lifecycle rss_100k rss_100k_pte rss_1m rss_1m_pte compact_rss_10m compact_rss_10m_pte task_spawn_join sleep0_switch instructions_sleep0_step future_wakeup instructions_future_wakeup queue_handoff timer_arm_fire timer_arm_cancel timer_arm_cancel_timeout rss_tasks_1m rss_tasks_1m_pte compact_rss_tasks_1m compact_rss_tasks_1m_pte echo_c100 echo_c1000 http_c100 syscalls_per_msg", order, " ")
    for (k in order) rank[order[k]] = k
    split("cogen boost-fcontext ucontext pthread cpython asyncio uvloop libuv epoll", io, " ")
    for (k in io) irank[io[k]] = k
}
{ rows[NR] = $0 }
END {
    for (r = 1; r <= NR; r++) {
        split(rows[r], f, "\t")
        if (f[1] in rank) br = rank[f[1]]
        else if (f[1] ~ /^roundtrip_depth_/) br = 100
        else if (f[1] ~ /^compact_roundtrip_depth_/) br = 101
        else if (f[1] ~ /^roundtrip_chain_/) br = 102
        else if (f[1] ~ /^roundtrip_rotate_/) br = 105
        else if (f[1] ~ /^compact_roundtrip_rotate_[0-9]/) br = 106
        else if (f[1] ~ /^compact_roundtrip_rotate_resident_/) br = 107
        else if (f[1] ~ /^(compact_)?rss_tasks_/) br = 108
        else if (f[1] ~ /^rss_/) br = 103
        else if (f[1] ~ /^compact_rss_/) br = 104
        else br = 200
        ir = (f[2] in irank) ? irank[f[2]] : 9
        printf "%03d %s %d\t%s\n", br, numkey(f[1]), ir, rows[r]
    }
}' "$SUMMARY" | sort -k1,1n -k2,2 -k3,3n | cut -f2- >"$SUMMARY.sorted" && mv "$SUMMARY.sorted" "$SUMMARY"

# --- The table --------------------------------------------------------------------
echo
echo "cogen benchmarks: median of $RUNS interleaved runs (min..max); ratio = cogen / that implementation"
awk -F '\t' '
BEGIN {
    printf "%-28s %-15s %12s %12s %12s %-5s %4s %12s\n", "bench", "impl", "median", "min", "max", "unit", "runs", "cogen/impl"
}
{ rows[NR] = $0; med[$1 SUBSEP $2] = $3 }
END {
    for (r = 1; r <= NR; r++) {
        split(rows[r], f, "\t")
        ratio = ""
        # (page-table rows of CPython are ~0: no meaningful ratio)
        if (f[2] != "cogen" && ((f[1] SUBSEP "cogen") in med) && f[3] >= 0.01)
            ratio = sprintf("%.3f", med[f[1] SUBSEP "cogen"] / f[3])
        extra = (f[10] != "-") ? "  (" f[10] ", n=" f[8] ")" : ""
        printf "%-28s %-15s %12.2f %12.2f %12.2f %-5s %4d %12s%s\n", f[1], f[2], f[3], f[4], f[5], f[7], f[6], ratio, extra
    }
}' "$SUMMARY"
# The I/O servers against libuv, the reference of their targets.
awk -F '\t' '
$1 ~ /^(echo_c[0-9]+|http_c[0-9]+|syscalls_per_msg)$/ { rows[++n] = $0; med[$1 SUBSEP $2] = $3 }
END {
    if (!n) exit
    printf "\nI/O servers: server CPU per message (system calls per message for syscalls_per_msg) as a ratio to libuv\n"
    printf "%-28s %-15s %12s %12s\n", "bench", "impl", "median", "impl/libuv"
    for (r = 1; r <= n; r++) {
        split(rows[r], f, "\t")
        l = ((f[1] SUBSEP "libuv") in med) ? med[f[1] SUBSEP "libuv"] : 0
        ratio = (l > 0) ? sprintf("%.3f", f[3] / l) : "-"
        printf "%-28s %-15s %12.2f %12s\n", f[1], f[2], f[3], ratio
    }
}' "$SUMMARY"
echo
echo "targets"
awk -F '\t' '{
    printf "  %-45s %10s  <= %-5s %s%s\n", $1, $2, $3, $4, ($5 != "" ? "  (" $5 ")" : "")
}' "$TARGETS"
if [ -s "$NOTES" ]; then
    echo
    echo "notes"
    awk '!seen[$0]++ { print "  " $0 }' "$NOTES"
fi
echo
if [ "$REPORT_ONLY" = 1 ]; then echo "bench: report redone from $RAW (nothing measured)"; else echo "bench: measured in ${ELAPSED}s; raw runs in $RAW"; fi

# --- JSON and SVG -------------------------------------------------------------------
MODEL=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null)
MACHINE="${MODEL:-unknown CPU}, $(getconf _NPROCESSORS_ONLN 2>/dev/null || echo '?') CPUs, $MEM, $(uname -sr) $(uname -m); $BENCH_CC $BENCH_BUILD_TYPE, switch=$BENCH_SWITCH"
if [ -n "$PYTHON" ]; then
    MACHINE="$MACHINE; $("$PYTHON" -c 'import platform; print(platform.python_implementation(), platform.python_version())')"
fi
if [ $have_boost = 1 ] && [ -n "$BENCH_BOOST_INCLUDE" ] && [ -f "$BENCH_BOOST_INCLUDE/boost/version.hpp" ]; then
    MACHINE="$MACHINE; Boost $(sed -n 's/^#define BOOST_LIB_VERSION "\(.*\)"/\1/p' "$BENCH_BOOST_INCLUDE/boost/version.hpp" | tr _ .)"
fi
printf '%s\n' "$MACHINE" >"$OUT/machine.txt"
if [ -n "$PYTHON" ]; then
    if ! "$PYTHON" "$SRC/report.py" results "$OUT" "$RUNS"; then
        echo "bench: FAILED to write results.json / results.svg" >&2
        FAILED=1
    fi
else
    echo "bench: results.json and results.svg need python3 (apt-get install python3); the table above has every figure"
fi

if [ "$FAILED" != 0 ]; then
    echo "bench: some runs FAILED (see above and $LOG)" >&2
    exit 1
fi
echo "bench: done"
