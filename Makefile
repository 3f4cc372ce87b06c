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

demo: all
	$(BUILD)/examples/tour
	$(BUILD)/examples/tour_loop

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
	sh tests/fuzz/libfuzzer_io.sh

fuzz-long: all
	sh tests/fuzz/long.sh $(BUILD)
	sh tests/async_fuzz/long.sh $(BUILD)

clean:
	rm -rf $(BUILD) build-*
