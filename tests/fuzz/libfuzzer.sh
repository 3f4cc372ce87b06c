#!/bin/sh
# libfuzzer.sh: coverage-guided fuzzing of the scenario runner (make fuzz).
#
#   sh tests/fuzz/libfuzzer.sh [extra libFuzzer options]
#
# Builds cogen (instrumented for coverage, with ASan and UBSan) and the fuzz
# entry tests/fuzz/fuzz_scenario.c (then the I/O entries fuzz_stream.c and
# fuzz_http.c, below) with clang -fsanitize=fuzzer into its own
# build directory, then fuzzes for a bounded time. The seed corpus is the
# scenario files (tests/scenarios) and tests/fuzz/regress; new inputs go to
# BUILD/corpus, crashes, leaks and timeouts to BUILD/artifacts.
#
# Environment: FUZZ_SECONDS (default 60), FUZZ_IO_SECONDS (each I/O entry,
# default 30), FUZZ_BUILD (default build-fuzz),
# CC (default clang), FUZZ_JOBS (parallel fuzzing processes, default 1).
#
# A crash found here becomes a regression file: minimize it (the command is
# printed), copy it to tests/fuzz/regress/, and ctest's fuzz.replay runs it
# from then on.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD:-$root/build-fuzz}
SECONDS_MAX=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
CC=${CC:-clang}

# libFuzzer present?
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/p.c" <<'EOC'
#include <stddef.h>
#include <stdint.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }
EOC
if ! "$CC" -fsanitize=fuzzer,address "$probe/p.c" -o "$probe/p" >"$probe/log" 2>&1; then
    echo "libfuzzer.sh: $CC cannot build with -fsanitize=fuzzer,address:" >&2
    sed 's/^/  /' "$probe/log" >&2
    echo "libfuzzer.sh: libFuzzer ships with clang's runtime libraries; on Debian/Ubuntu:" >&2
    echo "  apt-get install clang libclang-rt-14-dev   (the libclang-rt-N-dev of your clang version)" >&2
    exit 1
fi

mkdir -p "$BUILD"
cmake -S "$root" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCOGEN_LIBFUZZER=ON -DCOGEN_SANITIZE=address,undefined,fuzzer-no-link \
    -DCMAKE_C_FLAGS="-fno-sanitize-recover=undefined" \
    -DCOGEN_EXAMPLES=OFF -DCOGEN_BENCH=OFF >"$BUILD/configure.log" 2>&1 ||
    { cat "$BUILD/configure.log" >&2; exit 1; }
cmake --build "$BUILD" -j2 --target cogen-scenario-libfuzzer cogen-stream-libfuzzer cogen-http-libfuzzer

fuzzer=$BUILD/tests/cogen-scenario-libfuzzer
# Seeds: the scenario files and the regression inputs. One that fails on
# its own already is a known bug (tests/scenarios/regress-* are library bugs
# found by difffuzz): it is reported and left out, or libFuzzer would stop
# on it at once.
rm -rf "$BUILD/seeds"
mkdir -p "$BUILD/corpus" "$BUILD/artifacts" "$BUILD/seeds"
known=0
for f in "$root"/tests/scenarios/*.scn "$root"/tests/fuzz/regress/*; do
    [ -f "$f" ] || continue
    case $f in */.keep) continue ;; esac
    if "$fuzzer" -timeout=10 -rss_limit_mb=2048 "$f" >"$BUILD/seed.log" 2>&1; then
        cp "$f" "$BUILD/seeds/"
    else
        echo "libfuzzer.sh: known failure, left out of the corpus: ${f#$root/}" >&2
        known=$((known + 1))
    fi
done
# Parallel jobs write fuzz-N.log files into the working directory.
parallel=
[ "$JOBS" -gt 1 ] && parallel="-jobs=$JOBS -workers=$JOBS"
cd "$BUILD"
status=0
# shellcheck disable=SC2086
"$fuzzer" \
    -max_total_time="$SECONDS_MAX" -timeout=10 -rss_limit_mb=2048 -max_len=4096 $parallel \
    -dict="$root/tests/fuzz/scenario.dict" -artifact_prefix="$BUILD/artifacts/" \
    -print_final_stats=1 "$@" \
    "$BUILD/corpus" "$BUILD/seeds" || status=$?

# The I/O entries (issue 10): the stream reader against its model
# (fuzz_stream.c) and http-hello's request parser (fuzz_http.c), each for
# FUZZ_IO_SECONDS (default 30); their crashes go to BUILD/artifacts-NAME.
io_status=0
for name in stream http; do
    mkdir -p "$BUILD/corpus-$name" "$BUILD/artifacts-$name"
    "$BUILD/tests/cogen-$name-libfuzzer" -max_total_time="${FUZZ_IO_SECONDS:-30}" -timeout=10 -rss_limit_mb=2048 \
        -max_len=2048 -artifact_prefix="$BUILD/artifacts-$name/" -print_final_stats=1 "$BUILD/corpus-$name" ||
        { echo "libfuzzer.sh: $name: libFuzzer stopped with a failure (BUILD/artifacts-$name; add the input to tests/fuzz/regress-io/$name-NAME)" >&2; io_status=1; }
done
[ "$io_status" -eq 0 ] || status=1

found=$(find "$BUILD/artifacts" -type f -newer "$BUILD/seeds" | head -n 20)
if [ "$status" -ne 0 ] || [ -n "$found" ]; then
    echo "libfuzzer.sh: libFuzzer stopped with status $status; artifacts:" >&2
    for f in $found; do echo "  $f" >&2; done
    echo "libfuzzer.sh: minimize one with" >&2
    echo "  $BUILD/tests/cogen-scenario-libfuzzer -minimize_crash=1 -runs=20000 -exact_artifact_path=min.scn FILE" >&2
    echo "then add it to tests/fuzz/regress/ (ctest fuzz.replay replays it)." >&2
    exit 1
fi
echo "libfuzzer.sh: no new crash, leak or timeout in $SECONDS_MAX s ($known known failures left out);" \
    "corpus: $(ls "$BUILD/corpus" | wc -l) inputs in $BUILD/corpus"
