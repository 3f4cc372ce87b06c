#!/bin/sh
# libfuzzer_io.sh: coverage-guided fuzzing of the I/O entries (make fuzz,
# after libfuzzer.sh): the stream reader against its model
# (tests/fuzz/fuzz_stream.c) and http-hello's request parser
# (tests/fuzz/fuzz_http.c), each for FUZZ_IO_SECONDS (default 30), in the
# same instrumented build as libfuzzer.sh (FUZZ_BUILD, default build-fuzz;
# CC, default clang). New inputs go to BUILD/corpus-NAME, crashes to
# BUILD/artifacts-NAME; a crash found becomes a failure to fix, replayable
# with BUILD/tests/cogen-NAME-libfuzzer FILE.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${FUZZ_BUILD:-$root/build-fuzz}
SECONDS_MAX=${FUZZ_IO_SECONDS:-30}
CC=${CC:-clang}
mkdir -p "$BUILD"
cmake -S "$root" -B "$BUILD" -DCMAKE_C_COMPILER="$CC" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCOGEN_LIBFUZZER=ON -DCOGEN_SANITIZE=address,undefined,fuzzer-no-link \
    -DCMAKE_C_FLAGS="-fno-sanitize-recover=undefined" \
    -DCOGEN_EXAMPLES=OFF -DCOGEN_BENCH=OFF >"$BUILD/configure-io.log" 2>&1 ||
    { cat "$BUILD/configure-io.log" >&2; exit 1; }
cmake --build "$BUILD" -j2 --target cogen-stream-libfuzzer cogen-http-libfuzzer
status=0
for name in stream http; do
    mkdir -p "$BUILD/corpus-$name" "$BUILD/artifacts-$name"
    (cd "$BUILD" && "$BUILD/tests/cogen-$name-libfuzzer" -max_total_time="$SECONDS_MAX" -timeout=10 \
        -rss_limit_mb=2048 -max_len=2048 -artifact_prefix="$BUILD/artifacts-$name/" -print_final_stats=1 \
        "$BUILD/corpus-$name") || { echo "libfuzzer_io.sh: $name: libFuzzer stopped with a failure" >&2; status=1; }
done
[ $status -eq 0 ] && echo "libfuzzer_io.sh: no crash in ${SECONDS_MAX} s for each of stream and http"
exit $status
