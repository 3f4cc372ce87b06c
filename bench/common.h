/* common.h: what every benchmark program shares (C and C++).
 *
 * Each program measures one thing per process run and prints it as one
 * line that bench/run.sh (and the smoke tests) parse:
 *
 *   RESULT bench=<name> impl=<impl> value=<number> unit=<ns|kib|count> n=<N> [key=value ...]
 *
 * A timing is taken in BENCH_BATCHES batches (a few ms each at the default
 * sizes) that add up to exactly N operations, and the fastest batch is
 * reported (like timeit's best of repeats): a batch that another process
 * preempted says nothing about the code. run.sh then takes the median of these over separate process runs.
 *
 * Anything else a program has to say (a fallback, a skipped part) goes on
 * lines starting with "NOTE ", which run.sh copies to its output. One
 * measurement per process, on purpose: run.sh interleaves processes of
 * different implementations (A B A B ...) and takes the median, so a noisy
 * neighbour on the shared cores hits every implementation alike.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__GNUC__)
#define BENCH_NOINLINE __attribute__((noinline))
#define BENCH_UNUSED __attribute__((unused))
#else
#define BENCH_NOINLINE
#define BENCH_UNUSED
#endif

#define BENCH_BATCHES 100

/* Length of batch b (0-based) when n operations are split into
 * BENCH_BATCHES batches: they add up to n exactly, so callgrind's
 * difference of two runs still counts exactly the N-dependent work. */
static inline long bench_batch_len(long n, int b) {
    long base = n / BENCH_BATCHES;
    return b == BENCH_BATCHES - 1 ? n - base * (BENCH_BATCHES - 1) : base;
}

/* Times `body` (a statement running `len` operations) in batches and
 * stores the fastest batch's ns per operation in `best` (0 when n is 0). */
#define BENCH_TIME_BATCHES(best, n, len, body)                       \
    do {                                                             \
        (best) = 0;                                                  \
        for (int bench_b_ = 0; bench_b_ < BENCH_BATCHES; bench_b_++) { \
            long len = bench_batch_len((n), bench_b_);               \
            if (len <= 0) continue;                                  \
            double bench_t0_ = bench_now_ns();                       \
            body;                                                    \
            double bench_ns_ = (bench_now_ns() - bench_t0_) / (double)len; \
            if ((best) == 0 || bench_ns_ < (best)) (best) = bench_ns_; \
        }                                                            \
    } while (0)

/* Keeps the compiler from proving a value unused. */
#define BENCH_KEEP(x) __asm__ volatile("" : : "r"(x) : "memory")

static inline double bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

BENCH_UNUSED static void bench_die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

/* argv[i] as a count, or dflt when absent. Accepts 1e6-style and k/m
 * suffixes: "100k", "1m", "10m". */
BENCH_UNUSED static long bench_arg(int argc, char **argv, int i, long dflt) {
    if (argc <= i) return dflt;
    char *end = NULL;
    double v = strtod(argv[i], &end);
    if (end == argv[i]) bench_die("not a number: '%s'", argv[i]);
    if (*end == 'k' || *end == 'K') v *= 1e3, end++;
    else if (*end == 'm' || *end == 'M') v *= 1e6, end++;
    if (*end || v < 0) bench_die("not a count: '%s'", argv[i]);
    return (long)v;
}

/* "1k", "100k", "1m", "10m" or the plain number: how run.sh names sizes. */
BENCH_UNUSED static const char *bench_count_name(long n, char *buf, size_t size) {
    if (n >= 1000000 && n % 1000000 == 0)
        snprintf(buf, size, "%ldm", n / 1000000);
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, size, "%ldk", n / 1000);
    else
        snprintf(buf, size, "%ld", n);
    return buf;
}

/* Prints the RESULT line; extra is appended as is (may be NULL). */
BENCH_UNUSED static void bench_result(const char *bench, const char *impl, double value, const char *unit,
                                      long n, const char *extra) {
    printf("RESULT bench=%s impl=%s value=%.4f unit=%s n=%ld%s%s\n", bench, impl, value, unit, n,
           extra && *extra ? " " : "", extra ? extra : "");
    fflush(stdout);
}

BENCH_UNUSED static void bench_note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("NOTE ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

/* Resident memory and page-table memory of this process, in KiB, from
 * /proc/self/status (VmRSS, VmPTE). Returns 0 on success. */
typedef struct bench_mem {
    long rss_kib;
    long pte_kib;
} bench_mem;

BENCH_UNUSED static int bench_mem_read(bench_mem *m) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    char line[256];
    m->rss_kib = m->pte_kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) m->rss_kib = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmPTE:", 6) == 0) m->pte_kib = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return m->rss_kib < 0 || m->pte_kib < 0 ? -1 : 0;
}

/* MemAvailable in KiB (0 if unknown): the memory benchmarks stop short of
 * exhausting a machine that other people share. */
BENCH_UNUSED static long bench_mem_available_kib(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    if (!f) return 0;
    char line[256];
    long v = 0;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "MemAvailable:", 13) == 0) v = strtol(line + 13, NULL, 10);
    fclose(f);
    return v;
}

/* Prints the pair of RESULT lines of a memory benchmark: resident memory
 * per object, and page-table memory per object as <bench>_pte. */
BENCH_UNUSED static void bench_mem_result(const char *bench, const char *impl, const bench_mem *before,
                                          const bench_mem *after, long n, const char *extra) {
    char name[96];
    double rss = n ? (double)(after->rss_kib - before->rss_kib) / (double)n : 0;
    double pte = n ? (double)(after->pte_kib - before->pte_kib) / (double)n : 0;
    bench_result(bench, impl, rss, "kib", n, extra);
    snprintf(name, sizeof name, "%s_pte", bench);
    bench_result(name, impl, pte, "kib", n, extra);
}

/* The "lifecycle" benchmark of every implementation: warmup calls of
 * once(), then the batches timed, reported as ns per call. A macro, so
 * that once() is called directly (and inlined) as each program wrote it. */
#define BENCH_LIFECYCLE(once, warmup, n, impl, extra)                   \
    do {                                                                \
        for (long bl_i_ = 0; bl_i_ < (warmup); bl_i_++) once();         \
        double bl_best_;                                                \
        BENCH_TIME_BATCHES(bl_best_, (n), bl_len_, {                    \
            for (long bl_j_ = 0; bl_j_ < bl_len_; bl_j_++) once();      \
        });                                                             \
        bench_result("lifecycle", (impl), bl_best_, "ns", (n), (extra)); \
    } while (0)

/* Whether the memory taken since `before` (resident plus page tables) is
 * past budget_kib (0: no budget); checked every 65,536 objects, made
 * being how many exist. When it is, a note says where the benchmark
 * stopped and what it was making. */
BENCH_UNUSED static int bench_over_budget(const bench_mem *before, long budget_kib, long made, const char *bench,
                                          const char *what) {
    if ((made & 0xffff) != 0xffff || !budget_kib) return 0;
    bench_mem now;
    if (bench_mem_read(&now) != 0 || now.rss_kib + now.pte_kib - before->rss_kib - before->pte_kib <= budget_kib)
        return 0;
    bench_note("%s: stopped at %ld %s to stay within 60%% of available memory", bench, made, what);
    return 1;
}

/* Touches every page of a fresh array of n pointers, so that the array
 * holding the objects is resident before the "before" reading. */
BENCH_UNUSED static void **bench_ptr_array(long n) {
    void **a = (void **)calloc((size_t)(n ? n : 1), sizeof *a);
    if (!a) bench_die("out of memory for %ld pointers", n);
    for (long i = 0; i < n; i += 512) a[i] = (void *)1;
    for (long i = 0; i < n; i += 512) a[i] = NULL;
    return a;
}

/* The deadlines of timer_arm_fire and timer_arm_cancel, in whole
 * milliseconds from 0 to BENCH_TIMER_SPAN_MS: one generator (seed and
 * formula) for bench_loop.c and bench_libuv.c, and asyncio_bench.py uses
 * the same. */
#define BENCH_TIMER_SPAN_MS 10
static uint32_t bench_rng_state = 42u;
/* The generator's step on a state the caller holds. A timed loop keeps
 * the state in a local (so in a register) rather than in the global: a
 * load of the global after the library's stores in the same operation
 * waits on them when their addresses agree in their low 12 bits, which
 * depends on where malloc put the library's objects (measured: call_later
 * and cancel took 4.90 ns with the global at such an address, 4.45 with
 * the loop's memory moved by 32 bytes). */
static inline unsigned next_deadline_ms_r(uint32_t *state) {
    *state = *state * 1103515245u + 12345u;
    return (*state >> 16) % (BENCH_TIMER_SPAN_MS + 1);
}
static inline unsigned next_deadline_ms(void) { return next_deadline_ms_r(&bench_rng_state); }

#endif
