# gdb_checks.sh: what tests/test_gdb.sh and tests/test_gdb_tasks.sh share,
# sourced by both: the reasons to skip (exit 77), and the checks on the
# output of a gdb batch run whose commands are separated by "@@ NAME" lines
# (echo @@ NAME\n before each).
#
#   gdb_check_tools         exit 77 unless gdb with Python is here; set
#                           ASAN_OPTIONS so that LeakSanitizer stays off
#   gdb_batch SCRIPT PROG -ex CMD...
#                           runs PROG under gdb in batch mode, SCRIPT
#                           loaded, then the commands; the output is in
#                           the file $out (removed at exit), and exit 77
#                           if gdb was not allowed to trace
#   section NAME            the lines of one section of $out
#   expect NAME REGEX       some line of the section matches
#   reject NAME REGEX       no line of the section matches
#   gdb_checks_done         exit 1 if a check failed
# Checks print "FAIL: ..." and count in $fails.

gdb_check_tools() {
    if ! command -v gdb >/dev/null 2>&1; then
        echo "skipped: gdb is not installed"
        exit 77
    fi
    if ! gdb -batch -nx -ex 'python print("py-ok")' 2>/dev/null | grep -q py-ok; then
        echo "skipped: this gdb has no Python support"
        exit 77
    fi
    # LeakSanitizer cannot run under ptrace: in an ASan build it would fail
    # the program at exit.
    ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
    export ASAN_OPTIONS
}

gdb_batch() {
    gb_script=$1
    gb_prog=$2
    shift 2
    out=$(mktemp)
    trap 'rm -f "$out"' EXIT
    gdb -batch -nx \
        -iex 'set debuginfod enabled off' \
        -ex 'set pagination off' \
        -ex 'set confirm off' \
        -ex 'set print thread-events off' \
        -x "$gb_script" "$@" "$gb_prog" >"$out" 2>&1
    if grep -q 'ptrace: Operation not permitted\|Could not trace the inferior\|ptrace: Permission denied' "$out"; then
        echo "skipped: gdb may not trace programs here"
        cat "$out"
        exit 77
    fi
}

fails=0

section() {
    awk -v s="$1" '/^@@ / { on = ($2 == s); next } on' "$out"
}

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

expect() {
    section "$1" | grep -Eq -- "$2" || fail "[$1] no line matches: $2"
}

reject() {
    if section "$1" | grep -Eq -- "$2"; then fail "[$1] a line matches: $2"; fi
}

gdb_checks_done() {
    if [ "$fails" -ne 0 ]; then
        echo "$fails check(s) failed"
        exit 1
    fi
    echo "all gdb checks passed"
}
