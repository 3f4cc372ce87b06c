#!/bin/sh
# tools/check.sh MODE: the tool matrix (issue 4). Each mode configures its
# own build directory, builds, runs the whole ctest suite under the tool
# (the scenario runner's tests against CPython included), and prints one
# line: "check-MODE: PASS|FAIL ...".
#
#   asan      ASan + UBSan + LeakSanitizer, gcc and clang  build-asan-{gcc,clang}
#   tsan      ThreadSanitizer with its fiber API, clang, gcc  build-tsan-{clang,gcc}
#   valgrind  memcheck, 0 errors and no leaks, gcc, clang  build-valgrind-{gcc,clang}
#   aarch64   cross gcc, tests under qemu-aarch64          build-aarch64
#   ucontext  -DCOGEN_SWITCH=ucontext                      build-ucontext
#   compact   every generator compact, one resident, so    build-compact
#             stacks are swapped at almost every switch
#             (COGEN_COMPACT=1)
#   guards    the stack protections of older kernels:      build-guards-{mprotect,canary}
#             mprotect'd guard pages, then canaries
#             (COGEN_STACK_GUARD=mprotect|canary)
#
# Exit status: 0 pass, 1 fail, 2 a tool is missing (the message names the
# Debian package). docs/tools.md has the details. Environment knobs:
#   CHECK_JOBS          parallel build and test jobs (default 2: the
#                       machine's 2 cores are shared, never use more)
#   CHECK_CC            compilers to use, e.g. "clang" (asan, tsan, valgrind)
#   COGEN_TEST_SCALE    size factor for big tests; default per mode below
#   CHECK_SUMMARY_FILE  append the summary line to this file too
#   CHECK_VALGRIND_FLAGS  extra valgrind options, e.g. --track-origins=yes
set -u

usage() {
    echo "usage: sh tools/check.sh asan|tsan|valgrind|aarch64|ucontext|compact|guards" >&2
    exit 2
}
[ $# -eq 1 ] || usage
MODE=$1
case $MODE in asan | tsan | valgrind | aarch64 | ucontext | compact | guards) ;; *) usage ;; esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
JOBS=${CHECK_JOBS:-2}
T0=$(date +%s)
NOTES=""   # summary details, appended per build
FAILED=0

say() { printf '%s\n' "check-$MODE: $*"; }

summary() { # PASS|FAIL
    line="check-$MODE: $1 ($(($(date +%s) - T0)) s)$NOTES"
    echo
    echo "$line"
    if [ -n "${CHECK_SUMMARY_FILE:-}" ]; then echo "$line" >>"$CHECK_SUMMARY_FILE"; fi
}

# A tool is missing: say which package brings it, and stop.
missing() { # what package
    echo "check-$MODE: $1 not found: install it with  apt-get install $2" >&2
    line="check-$MODE: FAIL (missing $1: apt-get install $2)"
    echo "$line"
    if [ -n "${CHECK_SUMMARY_FILE:-}" ]; then echo "$line" >>"$CHECK_SUMMARY_FILE"; fi
    exit 2
}

need() { # command package
    command -v "$1" >/dev/null 2>&1 || missing "$1" "$2"
}

# Can CC compile and link a program with FLAGS (a sanitizer runtime, say)?
# The program is also run unless RUN is "norun".
probe() { # cc flags package what [norun]
    d=$(mktemp -d)
    printf '#include <stdio.h>\nint main(void) { puts("ok"); return 0; }\n' >"$d/p.c"
    # shellcheck disable=SC2086
    if ! "$1" $2 "$d/p.c" -o "$d/p" >"$d/log" 2>&1; then
        cat "$d/log" >&2
        rm -rf "$d"
        missing "$4" "$3"
    fi
    if [ "${5:-}" != norun ] && ! "$d/p" >"$d/log" 2>&1; then
        cat "$d/log" >&2
        rm -rf "$d"
        return 1
    fi
    rm -rf "$d"
    return 0
}

clang_rt_pkg() {
    v=$(clang -dumpversion 2>/dev/null | cut -d. -f1)
    echo "libclang-rt-${v:-14}-dev"
}

need cmake cmake
need ctest cmake

# ---------------------------------------------------------------------
# One build: configure, build, check the context switch, run ctest (and
# check that it has the scenario tests). Sets FAILED=1 on any failure.
# ---------------------------------------------------------------------

# Which context switch the build must contain: asm or ucontext.
WANT_SWITCH=asm
NM="nm"
WRAPPER=""   # command prefix a test must put before a built binary

# ctest's -V output, prefixed "N: " per test, is scanned for tool reports
# that did not make the test fail (a warning, a report in a child process
# whose exit status a script ignored). For valgrind these are the headers
# of memcheck's errors and leaks, and its warnings (a stack switch it was
# not told about, debug info it cannot read), not "Process terminating
# with default action of signal": a test that crashes on purpose (a stack
# overflow) prints that, and one that crashes by accident fails anyway.
markers() {
    case $MODE in
    valgrind) echo '==[0-9]+== +(Invalid (read|write|free|alignment|size)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap|Argument .* of function|.* blocks are (definitely|indirectly|possibly) lost|Warning: |WARNING)|--[0-9]+-- WARNING|### unhandled dwarf|client switching stacks' ;;
    *) echo '==[0-9]+==(ERROR|WARNING)|WARNING: ThreadSanitizer|ERROR: ThreadSanitizer|runtime error: |SUMMARY: [A-Za-z]+Sanitizer' ;;
    esac
}

build_dir_ok() { # dir: did the build get the switch it should?
    b=$1
    if ! grep -q "^COGEN_SWITCH:STRING=$WANT_SWITCH\$" "$b/CMakeCache.txt"; then
        say "$b: COGEN_SWITCH is not $WANT_SWITCH"
        return 1
    fi
    members=$(ar t "$b/libcogen.a" 2>/dev/null)
    case $WANT_SWITCH in
    asm) want_obj=$ASM_OBJ ;;
    ucontext) want_obj=ucontext.c.o ;;
    esac
    if ! echo "$members" | grep -qx "$want_obj"; then
        say "$b/libcogen.a has no $want_obj (members: $(echo "$members" | tr "\n" " "))"
        return 1
    fi
    # Every test program that has the switch must have this one: the
    # assembly defines cg__entry, the fallback calls swapcontext.
    n=0
    for exe in "$b"/tests/* "$b"/examples/*; do
        [ -f "$exe" ] && [ -x "$exe" ] || continue
        syms=$($NM "$exe" 2>/dev/null) || continue
        echo "$syms" | grep -q ' cg__switch$' || continue
        n=$((n + 1))
        case $WANT_SWITCH in
        asm) echo "$syms" | grep -q ' [Tt] cg__entry$' && ! echo "$syms" | grep -q ' U swapcontext' ;;
        ucontext) echo "$syms" | grep -q ' U swapcontext' && ! echo "$syms" | grep -q ' cg__entry$' ;;
        esac || {
            say "$exe was not linked with the $WANT_SWITCH switch"
            return 1
        }
    done
    if [ "$n" -eq 0 ]; then
        say "$b: no test program contains cg__switch"
        return 1
    fi
    SWITCH_NOTE="$WANT_SWITCH switch ($want_obj) in $n programs"
    return 0
}

# Prints the output of the tests that failed, from ctest's -V log.
show_failed() { # log
    awk '
        /Test +#[0-9]+: / && !/ Passed / && !/\*Skipped / {
            s = $0; sub(/.*Test +#/, "", s); sub(/:.*/, "", s); bad[s] = 1; names[s] = $0
        }
        { lines[NR] = $0 }
        END {
            for (i = 1; i <= NR; i++) {
                n = lines[i]; sub(/:.*/, "", n)
                if ((n in bad) && lines[i] ~ /^[0-9]+: /) {
                    out[n] = out[n] lines[i] "\n"; cnt[n]++
                }
            }
            for (n in bad) {
                print "---- output of failed test " names[n]
                printf "%s", out[n]
            }
        }' "$1" | head -n 400
}

run_ctest() { # dir -> sets CT_NOTE; returns 1 on failure
    b=$1
    log=$b/check-ctest.log
    $CTEST_SETARCH ctest --test-dir "$b" -V -j "$JOBS" --no-tests=error >"$log" 2>&1
    rc=$?
    # The usual ctest lines, not the tests' own output.
    grep -E '^ *[0-9]+/[0-9]+ Test +#|tests passed|tests failed|The following tests|^[[:space:]]+[0-9]+ - |No tests were found|Total Test time' "$log"
    total=$(grep -cE '^ *[0-9]+/[0-9]+ Test +#' "$log")
    passed=$(grep -E '^ *[0-9]+/[0-9]+ Test +#' "$log" | grep -c ' Passed ')
    skipped=$(grep -E '^ *[0-9]+/[0-9]+ Test +#' "$log" | grep -c '\*Skipped ')
    CT_NOTE="$passed/$total tests passed"
    if [ "$skipped" -gt 0 ]; then CT_NOTE="$CT_NOTE, $skipped skipped"; fi
    ok=0
    if [ $rc -ne 0 ]; then
        show_failed "$log"
        ok=1
    fi
    # Reports in the output of tests that passed. Valgrind checks for leaks
    # even in a process killed by a signal, where nothing was meant to be
    # freed: leak records of such a process (a test that crashes on
    # purpose) are not reports.
    hits=$(grep -nE "$(markers)" "$log" | grep -vE '^[0-9]+:[0-9]+: Test command: ')
    if [ "$MODE" = valgrind ]; then
        for pid in $(sed -n 's/.*==\([0-9][0-9]*\)== Process terminating with default action of signal.*/\1/p' "$log" | sort -u); do
            hits=$(echo "$hits" | grep -vE "==$pid== .* blocks are (definitely|indirectly|possibly) lost")
        done
    fi
    # Tests that failed have been reported already, with their output.
    for n in $(grep -E '^ *[0-9]+/[0-9]+ Test +#' "$log" | grep -v ' Passed ' | sed 's/.*Test *#\([0-9]*\):.*/\1/'); do
        hits=$(echo "$hits" | grep -v "^[0-9]*:$n: ")
    done
    hits=$(echo "$hits" | sed '/^$/d' | head -n 40)
    if [ -n "$hits" ]; then
        say "$b: tool reports in the test output (full log: $log):"
        echo "$hits"
        for n in $(echo "$hits" | sed -n 's/^[0-9]*:\([0-9][0-9]*\): .*/\1/p' | sort -u); do
            grep -E "^ *[0-9]+/[0-9]+ Test +#$n:" "$log"
        done
        CT_NOTE="$CT_NOTE, tool reports"
        ok=1
    fi
    return $ok
}

# --------------------------- scenarios --------------------------------

# The scenario runner runs under the tool as part of the suite
# (tests/scenarios.cmake: the scenario files against CPython or their
# checked-in traces; tests/fuzz/fuzz.cmake: random scenarios): make sure
# the suite has it.
scenarios_in_suite() { # dir -> sets SC_NOTE
    if ctest --test-dir "$1" --show-only=json-v1 2>/dev/null | grep -q 'cogen-scenario'; then
        SC_NOTE="scenarios run by ctest"
        return 0
    fi
    SC_NOTE="no scenario tests in the suite"
    return 1
}

# The event loop's tests (label loop: test_loop*, the loop's endurance
# cases, its examples and gdb test; label async-scenario: the async
# scenario files) run under the tool like the rest: make sure the suite
# has them.
loop_in_suite() { # dir -> sets LOOP_NOTE
    nl=$(ctest --test-dir "$1" -N -L '^loop$' 2>/dev/null | sed -n 's/^Total Tests: //p')
    na=$(ctest --test-dir "$1" -N -L '^async-scenario$' 2>/dev/null | sed -n 's/^Total Tests: //p')
    if [ "${nl:-0}" -gt 0 ] && [ "${na:-0}" -gt 0 ]; then
        LOOP_NOTE="$nl loop tests and $na async scenarios"
        return 0
    fi
    LOOP_NOTE="the loop's tests are missing from the suite (${nl:-0} loop, ${na:-0} async-scenario)"
    return 1
}

one_build() { # name cmake-args...
    name=$1
    shift
    b=$ROOT/build-$name
    echo
    say "== $name: configuring and building $b"
    blog=$b/check-build.log
    mkdir -p "$b"
    # The build runs each test program once (`--list`, for ctest's list of
    # its cases: tests/cases.cmake), so it needs what ctest needs (setarch).
    if ! cmake -S "$ROOT" -B "$b" -DCOGEN_WERROR=ON -DCOGEN_BENCH=OFF "$@" >"$blog" 2>&1 ||
        ! $CTEST_SETARCH cmake --build "$b" -j "$JOBS" >>"$blog" 2>&1; then
        tail -n 60 "$blog"
        say "$name: build failed (log: $blog)"
        NOTES="$NOTES; $name: build failed"
        FAILED=1
        return
    fi
    SWITCH_NOTE=""
    if ! build_dir_ok "$b"; then
        NOTES="$NOTES; $name: wrong context switch"
        FAILED=1
        return
    fi
    say "$name: $SWITCH_NOTE"
    # For the tests: how big to make large batches, and what to put before
    # a built program that a test script starts itself (ctest puts it
    # before the programs it starts: CMAKE_CROSSCOMPILING_EMULATOR).
    COGEN_TEST_WRAPPER=$WRAPPER
    export COGEN_TEST_SCALE COGEN_TEST_WRAPPER
    say "== $name: ctest (COGEN_TEST_SCALE=$COGEN_TEST_SCALE${WRAPPER:+, COGEN_TEST_WRAPPER=$WRAPPER})"
    CT_NOTE=""
    run_ctest "$b" || FAILED=1
    scenarios_in_suite "$b" || FAILED=1
    loop_in_suite "$b" || FAILED=1
    say "$name: $CT_NOTE, $SC_NOTE, $LOOP_NOTE"
    NOTES="$NOTES; $name: $CT_NOTE, $SC_NOTE, $LOOP_NOTE"
}

# ------------------------------ modes ---------------------------------

CTEST_SETARCH=""
ASM_OBJ=x86_64-sysv.S.o
case $(uname -m) in aarch64 | arm64) ASM_OBJ=aarch64-aapcs64.S.o ;; esac

case $MODE in
asan)
    # ASan with detect_stack_use_after_return makes a generator's life ~9x
    # slower (a fake stack per fiber): the endurance test's 10M lifetimes
    # would take 6 minutes.
    COGEN_TEST_SCALE=${COGEN_TEST_SCALE:-0.1}
    CCS=${CHECK_CC:-gcc clang}
    # Leaks are errors; fake stacks for use-after-return need the fiber
    # annotations to be right. User settings, if any, come last and win.
    ASAN_OPTIONS="detect_stack_use_after_return=1:detect_leaks=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
    UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
    export ASAN_OPTIONS UBSAN_OPTIONS
    for cc in $CCS; do
        case $cc in
        clang) need clang clang; pkg=$(clang_rt_pkg) ;;
        gcc) need gcc gcc; pkg="libasan8 libubsan1" ;;
        *) need "$cc" "$cc"; pkg="the sanitizer runtime of $cc" ;;
        esac
        probe "$cc" "-fsanitize=address,undefined" "$pkg" "the ASan/UBSan runtime of $cc" norun
    done
    say "ASAN_OPTIONS=$ASAN_OPTIONS UBSAN_OPTIONS=$UBSAN_OPTIONS"
    for cc in $CCS; do
        one_build "asan-$cc" -DCMAKE_C_COMPILER="$cc" -DCOGEN_SANITIZE=address,undefined
    done
    ;;
tsan)
    COGEN_TEST_SCALE=${COGEN_TEST_SCALE:-0.5}
    CCS=${CHECK_CC:-clang gcc}
    TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
    export TSAN_OPTIONS
    for cc in $CCS; do
        case $cc in
        clang) need clang clang; pkg=$(clang_rt_pkg) ;;
        gcc) need gcc gcc; pkg=libtsan2 ;;
        *) need "$cc" "$cc"; pkg="the TSan runtime of $cc" ;;
        esac
        if ! probe "$cc" "-fsanitize=thread" "$pkg" "the TSan runtime of $cc"; then
            # TSan's fixed memory layout breaks with high mmap randomization
            # (vm.mmap_rnd_bits > 28: "unexpected memory mapping"). Running
            # with randomization off (inherited by every child) avoids it.
            need setarch util-linux
            CTEST_SETARCH="setarch $(uname -m) -R"
            say "TSan cannot start with this ASLR; running the tests under '$CTEST_SETARCH'"
        fi
    done
    say "TSAN_OPTIONS=$TSAN_OPTIONS"
    for cc in $CCS; do
        one_build "tsan-$cc" -DCMAKE_C_COMPILER="$cc" -DCOGEN_SANITIZE=thread
    done
    ;;
valgrind)
    COGEN_TEST_SCALE=${COGEN_TEST_SCALE:-0.1}
    CCS=${CHECK_CC:-gcc clang}
    need valgrind valgrind
    # Without <valgrind/valgrind.h> the library cannot register its stacks
    # and memcheck reports false errors on every switch.
    if ! printf '#include <valgrind/valgrind.h>\n' | cc -E - >/dev/null 2>&1; then
        missing "valgrind/valgrind.h" valgrind
    fi
    # Leaks of every kind but "still reachable" (pools kept for reuse) are
    # errors; -q keeps valgrind silent unless it has something to report.
    # Forked children stay silent: the tests fork to die on purpose (stack
    # overflow, a smashed canary's abort), valgrind still checks a dying
    # process for leaks, and it writes to the test's original stderr
    # whatever the child redirected. A child that exits normally still
    # exits 99 on an error.
    VG="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --child-silent-after-fork=yes --num-callers=30 ${CHECK_VALGRIND_FLAGS:-}"
    WRAPPER=$VG
    VG_LIST=$(echo "$VG" | tr -s ' ' ';' | sed 's/;$//')
    for cc in $CCS; do
        need "$cc" "$cc"
        # Valgrind 3.19 cannot read clang 14's default DWARF 5 (it warns
        # "unhandled dwarf2 abbrev form code" and loses file:line); gcc 12's
        # DWARF 5 it reads. DWARF 4 for both keeps the reports complete.
        one_build "valgrind-$cc" -DCMAKE_C_COMPILER="$cc" \
            -DCMAKE_C_FLAGS=-gdwarf-4 -DCMAKE_ASM_FLAGS=-gdwarf-4 \
            "-DCMAKE_CROSSCOMPILING_EMULATOR=$VG_LIST"
    done
    ;;
aarch64)
    COGEN_TEST_SCALE=${COGEN_TEST_SCALE:-0.5}
    need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
    need aarch64-linux-gnu-nm binutils-aarch64-linux-gnu
    [ -f /usr/aarch64-linux-gnu/include/stdio.h ] || missing "the AArch64 C library headers (/usr/aarch64-linux-gnu/include)" libc6-dev-arm64-cross
    need qemu-aarch64 qemu-user
    NM=aarch64-linux-gnu-nm
    ASM_OBJ=aarch64-aapcs64.S.o
    WRAPPER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
    QEMU_LD_PREFIX=/usr/aarch64-linux-gnu
    export QEMU_LD_PREFIX
    one_build aarch64 -DCMAKE_TOOLCHAIN_FILE="$ROOT/cmake/aarch64-linux-gnu.cmake"
    # The test programs really are AArch64 (e_machine 183), so ctest could
    # only have run them through qemu.
    m=$(od -An -tu2 -j18 -N2 "$ROOT/build-aarch64/tests/test_smoke" 2>/dev/null | tr -d ' ')
    if [ "$m" != 183 ]; then
        say "build-aarch64/tests/test_smoke is not an AArch64 program (e_machine $m)"
        FAILED=1
    fi
    ;;
ucontext)
    COGEN_TEST_SCALE=${COGEN_TEST_SCALE:-1}
    need cc gcc
    WANT_SWITCH=ucontext
    one_build ucontext -DCOGEN_SWITCH=ucontext
    ;;
compact)
    # Semantics must not change in compact mode: the whole suite and the
    # scenario runner, with at most one compact generator resident, so
    # that almost every switch swaps a stack out and another in.
    COGEN_TEST_SCALE=${COGEN_TEST_SCALE:-1}
    need cc gcc
    COGEN_COMPACT=1
    export COGEN_COMPACT
    one_build compact
    ;;
guards)
    # What a kernel without MADV_GUARD_INSTALL (before 6.13, Debian 12's
    # 6.1 among them) gets, and what every kernel gets once mappings run
    # out: mprotect'd guard pages, then canaries.
    COGEN_TEST_SCALE=${COGEN_TEST_SCALE:-1}
    need cc gcc
    for g in mprotect canary; do
        COGEN_STACK_GUARD=$g
        export COGEN_STACK_GUARD
        one_build "guards-$g"
    done
    ;;
esac

if [ $FAILED -eq 0 ]; then
    summary PASS
    exit 0
fi
summary FAIL
exit 1
