# The README's two commands are `make demo` and `make test`; the rest are
# the tool matrix and the benchmarks. Everything builds with CMake into
# $(BUILD) (default build/).
BUILD ?= build
CMAKE ?= cmake
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all demo test bench bench-io check check-asan check-tsan check-valgrind check-aarch64 check-ucontext \
	check-compact check-guards fuzz fuzz-long clean

all: $(BUILD)/CMakeCache.txt
	$(CMAKE) --build $(BUILD) -j $(JOBS)

$(BUILD)/CMakeCache.txt:
	$(CMAKE) -S . -B $(BUILD) $(CMAKE_FLAGS)

# COGEN_TRACE=FILE make demo: every program of the demo is recorded into
# FILE (one Chrome trace, COGEN_TRACE_APPEND).
demo: all
	@if [ -n "$${COGEN_TRACE:-}" ]; then rm -f "$$COGEN_TRACE"; fi
	COGEN_TRACE_APPEND=1 $(BUILD)/examples/tour
	COGEN_TRACE_APPEND=1 $(BUILD)/examples/tour_loop
	@COGEN_TRACE_APPEND=1 sh examples/tour_threads.sh $(BUILD)

test: all
	ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS)

bench: all
	sh bench/run.sh $(BUILD)

# Only the I/O servers' part of `make bench` (bench/io).
bench-io: all
	BENCH_IO=only sh bench/run.sh $(BUILD)

check: check-asan check-tsan check-valgrind check-aarch64 check-ucontext check-compact check-guards

check-asan check-tsan check-valgrind check-aarch64 check-ucontext check-compact check-guards:
	sh tools/check.sh $(@:check-%=%)

fuzz: all
	sh tests/fuzz/libfuzzer.sh

fuzz-long: all
	sh tests/fuzz/long.sh $(BUILD)
	sh tests/async_fuzz/long.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-*
