#!/bin/sh
# test_gdb.sh: tools/cogen-gdb.py against a live program (tests/test_gdb.c).
#
#   sh tests/test_gdb.sh PROGRAM SCRIPT [SWITCH]
#
# SWITCH is the build's COGEN_SWITCH (asm, the default, or ucontext).
# Runs PROGRAM under gdb in batch mode with the script loaded, stops at its
# two breakpoints and checks what cogen-list and cogen-bt print:
#   1. everything parked: cogen-list shows every generator of both threads
#      with its name, state, stack size and guard; cogen-bt shows the frames
#      of the function each suspended generator is parked in, ending at the
#      entry trampoline cg__entry; a new one shows only cg__entry, a closed
#      one has no stack; `bt` afterwards shows the thread's own frames again
#      (registers restored);
#   2. inside a generator resumed by a running generator that is itself
#      delegated to: the running ones are listed and marked, cogen-bt shows
#      the parked ones (from cg_yield_from_new, from the cg_next in the
#      body), cogen-bt -thread shows main();
#   3. the program then runs to the end and checks its generators still
#      work: "test_gdb: ok", exit 0.
# With the ucontext switch a generator's stack starts in ucontext.c's
# entry(), called by libc's makecontext trampoline, which does not mark the
# end of the stack: there the backtraces are checked down to entry() only.
# Exit status 77 (skipped) when gdb, or gdb's Python, is missing, or when
# the system does not let gdb trace the program.
set -u
prog=$1
script=$2
switch=${3:-asm}
if [ "$switch" = ucontext ]; then
    entry=entry
    entry_re="entry"
else
    entry=cg__entry
    entry_re="cg(__|\.)entry"
fi

. "$(dirname "$0")/gdb_checks.sh"
gdb_check_tools

# With COGEN_COMPACT set, every generator is compact, with other stack
# sizes and marks in what cogen-list prints (the compact generator kappa
# covers that mode here).
case "${COGEN_COMPACT:-0}" in
0|"") ;;
*) echo "skipped: COGEN_COMPACT changes what cogen-list prints"; exit 77 ;;
esac

# With COGEN_STACK_GUARD=canary the guard column reads "canary", not "page".
if [ "${COGEN_STACK_GUARD:-}" = canary ]; then
    echo "skipped: COGEN_STACK_GUARD=canary changes what cogen-list prints"
    exit 77
fi

gdb_batch "$script" "$prog" \
    -ex 'break test_gdb_stop' \
    -ex 'break test_gdb_stop_running' \
    -ex 'run' \
    -ex 'echo @@ list1\n' -ex 'cogen-list' \
    -ex 'echo @@ alpha\n' -ex 'cogen-bt alpha' \
    -ex 'echo @@ beta\n' -ex 'cogen-bt beta' \
    -ex 'echo @@ beta-sub\n' -ex 'cogen-bt beta-sub' \
    -ex 'echo @@ worker\n' -ex 'cogen-bt worker-gen' \
    -ex 'echo @@ gamma\n' -ex 'cogen-bt gamma' \
    -ex 'echo @@ delta\n' -ex 'cogen-bt delta' \
    -ex 'echo @@ kappa\n' -ex 'cogen-bt kappa' \
    -ex 'echo @@ lambda\n' -ex 'cogen-bt lambda' \
    -ex 'echo @@ byaddr\n' -ex 'cogen-bt cg__gt.live' \
    -ex 'echo @@ nosuch\n' -ex 'cogen-bt no-such-generator' \
    -ex 'frame 1' \
    -ex 'echo @@ keepframe\n' -ex 'cogen-bt gamma' \
    -ex 'echo @@ frameafter\n' -ex 'frame' \
    -ex 'frame 0' \
    -ex 'echo @@ bt1\n' -ex 'bt' \
    -ex 'echo @@ cont1\n' -ex 'continue' \
    -ex 'echo @@ list2\n' -ex 'cogen-list' \
    -ex 'echo @@ epsilon\n' -ex 'cogen-bt epsilon' \
    -ex 'echo @@ eta\n' -ex 'cogen-bt eta' \
    -ex 'echo @@ zeta\n' -ex 'cogen-bt zeta' \
    -ex 'echo @@ thread\n' -ex 'cogen-bt -thread' \
    -ex 'echo @@ all\n' -ex 'cogen-bt -a' \
    -ex 'echo @@ bt2\n' -ex 'bt' \
    -ex 'echo @@ cont2\n' -ex 'continue' \
    -ex 'echo @@ end\n'


cat "$out"
echo "=== checks ==="

# frames SECTION F1 F2 ...: the backtrace in the section holds frames of
# these functions in this order (others may come between), then the entry
# trampoline, which is the last frame, and gdb did not have to give up
# unwinding.
frames() {
    s=$1
    shift
    got=$(section "$s" | awk '/^#[0-9]+ / {
            line = $0; sub(/^#[0-9]+ +/, "", line); sub(/^0x[0-9a-f]+ in /, "", line);
            sub(/ .*/, "", line);
            # gdb names labels of clang-assembled files (DWARF language
            # "MIPS assembler") with a dot: cg.entry
            if (line == "cg.entry") line = "cg__entry";
            printf "%s ", line }')
    rest=$got
    for f in "$@" "$entry"; do
        case " $rest" in
        *" $f "*) rest=${rest#*"$f "} ;;
        *) fail "[$s] no frame $f in order (frames: $got)"; return ;;
        esac
    done
    [ "$switch" = ucontext ] && return
    last=$(echo "$got" | awk '{ print $NF }')
    [ "$last" = cg__entry ] || fail "[$s] last frame is $last, not cg__entry (frames: $got)"
    reject "$s" 'Backtrace stopped|previous frame|corrupt stack|Cannot access memory'
}

# --- first stop: everything parked ----------------------------------------
G="0x[0-9a-f]+"
expect list1 "^Thread 1 \(LWP [0-9]+\): 8 live generators"
expect list1 "^ +$G +'alpha' +GEN_SUSPENDED +131072 +page +alpha_body\$"
expect list1 "^ +$G +'beta' +GEN_SUSPENDED +131072 +page +beta_body +yield from $G 'beta-sub'\$"
expect list1 "^ +$G +'beta-sub' +GEN_SUSPENDED +16384 +page +beta_sub_body\$"
expect list1 "^ +$G +'gamma' +GEN_CREATED +131072 +page +plain_body\$"
expect list1 "^ +$G +'delta' +GEN_CLOSED +131072 +- +plain_body\$"
expect list1 "^ +$G +'generator' +GEN_SUSPENDED +131072 +page +plain_body\$"
# (the worker is thread 2, or 3 under TSan, whose runtime has a thread)
expect list1 "^Thread [23] \(LWP [0-9]+\): 1 live generator\$"
expect list1 "^ +$G +'worker-gen' +GEN_SUSPENDED +65536 +page +worker_body\$"
expect list1 "^9 live generators\$"
reject list1 "^\*"  # nothing is executing: the main thread is on its own stack

frames alpha cg_yield alpha_park alpha_level1
expect alpha "^generator $G 'alpha', GEN_SUSPENDED, alpha_body:"
frames beta cg_yield_from_new beta_body
frames beta-sub cg_yield beta_sub_park
frames worker cg_yield worker_park
frames kappa cg_yield kappa_park
if [ "$switch" = ucontext ]; then
    expect list1 "^ +$G +'kappa' +GEN_SUSPENDED +32768 +page +kappa_body\$"
    reject kappa "swapped out"
else
    # swapped out: its frames are shown from the copy of its stack
    expect list1 "^ +$G +'kappa' +GEN_SUSPENDED +32768 +page +kappa_body +\[compact, swapped out\]\$"
    expect kappa "^  \(compact, swapped out: its [0-9]+ bytes of stack are shown from their copy\)\$"
fi
frames gamma
expect gamma "^#0 +$entry_re \("
[ "$switch" = ucontext ] || reject gamma "^#1 "
# new and compact: no copy of its first frame is kept (it is made when the
# generator first runs), and cogen-bt shows the one it will have
frames lambda
expect lambda "^#0 +$entry_re \("
if [ "$switch" = ucontext ]; then
    expect list1 "^ +$G +'lambda' +GEN_CREATED +32768 +page +plain_body\$"
else
    reject lambda "^#1 "
    expect list1 "^ +$G +'lambda' +GEN_CREATED +32768 +page +plain_body +\[compact, swapped out\]\$"
fi
expect delta "closed: it has no stack"
reject delta "^#"
frames byaddr cg_yield kappa_park   # cg__gt.live: the newest, kappa
expect nosuch "no live generator named 'no-such-generator'"
# The frame the user had selected stays selected, and quietly.
reject keepframe "in main \("
expect frameafter "^#1 .* in main \("
# The thread's registers are its own again.
expect bt1 "^#0 +test_gdb_stop \("
expect bt1 "^#1 .* in main \("
reject bt1 "(^#[0-9]+ +| in )($entry_re|cg_yield) \("

# --- second stop: inside zeta, resumed by eta, delegated to by epsilon ----
expect cont1 "hit Breakpoint 2, test_gdb_stop_running"
expect list2 "^\* $G +'zeta' +GEN_RUNNING +131072 +page +zeta_body\$"
expect list2 "^ +$G +'eta' +GEN_RUNNING +131072 +page +eta_body\$"
expect list2 "^ +$G +'epsilon' +GEN_RUNNING +131072 +page +epsilon_body +yield from $G 'eta'\$"
expect list2 "^ +$G +'alpha' +GEN_CLOSED +131072 +- +alpha_body\$"
expect list2 "^ +$G +'gamma' +GEN_SUSPENDED "
reject list2 "worker-gen"
frames epsilon cg_yield_from_new epsilon_body
frames eta eta_resume eta_body
expect zeta "executing now in thread 1"
reject zeta "^#"
expect thread "^#[0-9]+ .* in main \("
reject thread "(^#[0-9]+ +| in )$entry_re \("
expect all "^generator $G 'eta' of thread 1, GEN_RUNNING"
expect all "^generator $G 'epsilon' of thread 1, GEN_RUNNING"
expect all "^generator $G 'gamma' of thread 1, GEN_SUSPENDED"
reject all "'zeta'|'alpha'"
frames bt2 test_gdb_stop_running zeta_inner

# --- the program finished and found its generators intact -----------------
expect cont2 "^test_gdb: ok\$"
expect cont2 "exited normally"
reject end "."  # nothing after the last command (no error from gdb)

gdb_checks_done
