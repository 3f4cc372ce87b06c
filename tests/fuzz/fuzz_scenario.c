/* fuzz_scenario.c: the libFuzzer entry on the scenario runner.
 *
 * LLVMFuzzerTestOneInput parses and runs the input as a scenario, in memory
 * (tests/scenario.c's engine, included here with its main() left out).
 * Whatever the bytes, a run must end cleanly: an invalid scenario is an
 * error status, never a crash, a hang or a leak. Two caps keep every run
 * short, because a valid scenario can run for ever in any runner (the
 * reference included): a `repeat` runs at most FUZZ_MAX_REPEAT times, and a
 * run executes at most FUZZ_MAX_STEPS statements and loop turns, after which
 * every body unwinds (no handler catches the budget exception, no finally
 * runs) and the remaining operations are skipped. After each run, checks
 * that hold whatever the scenario did: no generator stack is still in use,
 * and no generator or handled exception is left current.
 *
 * Built with clang -fsanitize=fuzzer,address by tests/fuzz/libfuzzer.sh
 * (make fuzz); built without libFuzzer, with replay.c as its main, it is
 * cogen-scenario-replay, which ctest runs on the corpus and the regression
 * files.
 */
#define SCENARIO_NO_MAIN
#include "../scenario.c"

#define FUZZ_MAX_REPEAT 8
#define FUZZ_MAX_STEPS 20000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void discard(void *ud, const char *line, size_t len) {
    size_t *total = ud;
    (void)line;
    *total += len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    scn_limits lim = {FUZZ_MAX_REPEAT, FUZZ_MAX_STEPS};
    size_t total = 0;
    char *err = NULL;
    int rc = scn_run((const char *)data, size, &lim, discard, &total, &err);
    if (rc == 2 && (!err || strncmp(err, "line ", 5) != 0)) {
        fprintf(stderr, "fuzz: an invalid scenario without a line number: %s\n", err ? err : "(no message)");
        abort();
    }
    free(err);
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    if (st.live != 0) {
        fprintf(stderr, "fuzz: %zu generator stacks still in use after the run\n", st.live);
        abort();
    }
    if (cg_current() || cg_exc_current()) {
        fputs("fuzz: a generator or a handled exception is still current after the run\n", stderr);
        abort();
    }
    return 0;
}
