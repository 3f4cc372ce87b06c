/* bench_cogen.c: cogen's side of every benchmark.
 *
 *   bench_cogen roundtrip [N]            send + yield, a pointer each way
 *   bench_cogen compact_roundtrip [N]    the same with CG_OPT_COMPACT
 *   bench_cogen next_loop [ITEMS] [PASSES]  CG_FOREACH over a generator of ITEMS ints
 *                                        (fastest chunk of 10,000 items)
 *   bench_cogen throw_catch [N]          throw ValueError, the body catches, yields again
 *   bench_cogen lifecycle [N]            cg_new + first cg_next + cg_close + cg_free
 *   bench_cogen rss [N]                  memory per suspended generator, N alive
 *   bench_cogen compact_rss [N]          the same with CG_OPT_COMPACT
 *   bench_cogen depth D [N]              roundtrip with the yield D frames deep
 *   bench_cogen compact_depth D [N]      the same with CG_OPT_COMPACT
 *   bench_cogen chain K [N]              roundtrip through K levels of cg_yield_from
 *   bench_cogen rotate D [N]             roundtrip, sending to 1,000 generators in turn,
 *                                        each with its yield D frames deep
 *   bench_cogen compact_rotate D [N]     the same with CG_OPT_COMPACT: more generators
 *                                        than stay resident, so every send swaps
 *   bench_cogen compact_rotate_resident D [N]
 *                                        the same with cg_compact_resident(1,000)
 *
 * Times are per operation in ns, memory per generator in KiB. Warm-up
 * counts are fixed (not a fraction of N) so that two runs under callgrind
 * with different N differ by exactly the N-dependent work.
 */
#define _GNU_SOURCE
#include "cogen.h"
#include "common.h"

#define WARMUP 10000
#define IMPL "cogen"

static const cg_opts compact_opts = {0, "bench", CG_OPT_COMPACT};

static const char *guard_name(cg_guard k) {
    switch (k) {
    case CG_GUARD_NONE: return "none";
    case CG_GUARD_PAGE: return "page";
    case CG_GUARD_CANARY: return "canary";
    }
    return "?";
}

/* Marks a compact benchmark whose build ignores CG_OPT_COMPACT (the
 * ucontext fallback): it measured normal generators. */
static const char *compact_fallback(const cg_opts *opts, const cg_gen *g) {
    return opts && (opts->flags & CG_OPT_COMPACT) && !cg_gen_compact(g) ? " fallback=compact_inactive" : "";
}

static cg_gen *make(cg_fn fn, void *arg, const cg_opts *opts) {
    cg_gen *g = cg_new(fn, arg, opts);
    if (!g) bench_die("cg_new failed: %s", strerror(errno));
    return g;
}

static inline void start(cg_gen *g) {
    void *out;
    cg_exc *e = NULL;
    if (cg_next(g, &out, &e) != CG_YIELDED) {
        if (e) cg_exc_print(e, stderr);
        bench_die("generator did not yield on its first resume");
    }
}

/* ---------------------------------------------------------------------
 * roundtrip, compact_roundtrip, depth, chain
 * ------------------------------------------------------------------ */

/* Echoes what it is sent: one pointer in, one pointer out, until it is
 * sent &stop (or closed). */
static int stop;
static void *echo_body(cg_gen *g, void *arg) {
    (void)arg;
    void *v = NULL;
    while (v != &stop) v = cg_yield(g, v);
    return NULL;
}

#define PAD 256
/* d frames, each using PAD bytes of stack, then the echo loop. */
static BENCH_NOINLINE void *nest(cg_gen *g, long d) {
    char pad[PAD];
    memset(pad, (int)d, sizeof pad);
    BENCH_KEEP(pad);
    void *r = d == 0 ? echo_body(g, NULL) : nest(g, d - 1);
    BENCH_KEEP(pad);
    return r;
}

static void *nest_body(cg_gen *g, void *arg) { return nest(g, (long)(intptr_t)arg); }

/* A chain of k delegators (cg_yield_from) above an echo generator. */
static void *chain_body(cg_gen *g, void *arg) {
    long k = (long)(intptr_t)arg;
    if (k == 0) return echo_body(g, NULL);
    return cg_yield_from_new(g, chain_body, (void *)(intptr_t)(k - 1), NULL);
}

/* Times n sends into a started echo-like generator; ns per roundtrip. */
static double time_sends(cg_gen *g, long n) {
    static int token;
    void *p = &token, *out = NULL;
    for (long i = 0; i < WARMUP; i++)
        if (cg_send(g, p, &out, NULL) != CG_YIELDED) bench_die("send failed");
    double best;
    BENCH_TIME_BATCHES(best, n, len, {
        for (long i = 0; i < len; i++)
            if (cg_send(g, p, &out, NULL) != CG_YIELDED) bench_die("send failed");
    });
    if (n && out != p) bench_die("the generator did not echo the value");
    return best;
}

static void roundtrip(const char *bench, cg_fn fn, void *arg, const cg_opts *opts, long n) {
    cg_gen *g = make(fn, arg, opts);
    start(g);
    double ns = time_sends(g, n);
    char extra[64];
    snprintf(extra, sizeof extra, "guard=%s%s", guard_name(cg_gen_guard(g)), compact_fallback(opts, g));
    cg_free(g);
    bench_result(bench, IMPL, ns, "ns", n, extra);
}

/* Sends to ROTATE generators in turn: each roundtrip resumes a generator
 * that has not run for ROTATE - 1 roundtrips. Its stack is cold in the
 * caches, and in compact mode it is not resident (a thread keeps 64), so
 * the send copies it back in and another generator's used stack out. */
#define ROTATE 1000
static void rotate(const char *bench, long d, const cg_opts *opts, unsigned resident, long n) {
    static cg_gen *gs[ROTATE];
    if (resident) cg_compact_resident(resident);
    static int token;
    void *p = &token, *out = NULL;
    for (int i = 0; i < ROTATE; i++) {
        gs[i] = make(nest_body, (void *)(intptr_t)d, opts);
        start(gs[i]);
    }
    long k = 0;
    for (long i = 0; i < WARMUP; i++, k = k + 1 == ROTATE ? 0 : k + 1)
        if (cg_send(gs[k], p, &out, NULL) != CG_YIELDED) bench_die("send failed");
    double best;
    BENCH_TIME_BATCHES(best, n, len, {
        for (long i = 0; i < len; i++, k = k + 1 == ROTATE ? 0 : k + 1)
            if (cg_send(gs[k], p, &out, NULL) != CG_YIELDED) bench_die("send failed");
    });
    if (n && out != p) bench_die("the generator did not echo the value");
    char extra[64];
    snprintf(extra, sizeof extra, "guard=%s generators=%d%s", guard_name(cg_gen_guard(gs[0])), ROTATE,
             compact_fallback(opts, gs[0]));
    for (int i = 0; i < ROTATE; i++) cg_free(gs[i]);
    bench_result(bench, IMPL, best, "ns", n, extra);
}

/* ---------------------------------------------------------------------
 * next_loop
 * ------------------------------------------------------------------ */

static void *count_body(cg_gen *g, void *arg) {
    intptr_t n = (intptr_t)arg;
    for (intptr_t i = 0; i < n; i++) cg_yield(g, (void *)i);
    return NULL;
}

/* Iterates a fresh generator of `items` integers with CG_FOREACH, timing
 * it in chunks of CHUNK items (a counter and a break per chunk: ~1 cycle
 * per item); *best gets the fastest chunk's ns per item. Returns the sum. */
#define CHUNK 10000
static intptr_t iterate(long items, double *best) {
    intptr_t sum = 0;
    long full = items < CHUNK ? items : CHUNK; /* a chunk that counts */
    cg_gen *g = make(count_body, (void *)(intptr_t)items, NULL);
    for (;;) {
        long k = 0;
        double t0 = bench_now_ns();
        CG_FOREACH(v, g) {
            sum += (intptr_t)v;
            if (++k == CHUNK) break;
        }
        double ns = k ? (bench_now_ns() - t0) / (double)k : 0;
        if (k && k == full && (*best == 0 || ns < *best)) *best = ns;
        if (k < CHUNK) break; /* the generator is exhausted */
    }
    cg_free(g);
    return sum;
}

static void next_loop(long items, long passes) {
    double warm = 0, best = 0;
    iterate(WARMUP, &warm);
    intptr_t want = (intptr_t)items * (items - 1) / 2;
    for (long p = 0; p < passes; p++)
        if (iterate(items, &best) != want) bench_die("next_loop: wrong sum");
    char extra[64];
    snprintf(extra, sizeof extra, "items=%ld passes=%ld chunk=%d", items, passes, CHUNK);
    bench_result("next_loop", IMPL, best, "ns", items * passes, extra);
}

/* ---------------------------------------------------------------------
 * throw_catch
 * ------------------------------------------------------------------ */

static void *catch_body(cg_gen *g, void *arg) {
    (void)arg;
    for (;;) {
        CG_TRY {
            cg_yield(g, NULL);
        } CG_EXCEPT(&cg_ValueError, e) {
        } CG_END;
    }
    return NULL;
}

static void throw_catch(long n) {
    cg_gen *g = make(catch_body, NULL, NULL);
    start(g);
    cg_exc *err = NULL;
    for (long i = 0; i < WARMUP; i++)
        if (cg_throw(g, cg_exc_new(&cg_ValueError, NULL), NULL, &err) != CG_YIELDED) bench_die("throw failed");
    double best;
    BENCH_TIME_BATCHES(best, n, len, {
        for (long i = 0; i < len; i++)
            if (cg_throw(g, cg_exc_new(&cg_ValueError, NULL), NULL, &err) != CG_YIELDED) bench_die("throw failed");
    });
    cg_free(g);
    bench_result("throw_catch", IMPL, best, "ns", n, NULL);
}

/* ---------------------------------------------------------------------
 * lifecycle
 * ------------------------------------------------------------------ */

static void *once_body(cg_gen *g, void *arg) {
    cg_yield(g, arg);
    return NULL;
}

/* Inline, as bench_boost's is (BENCH_LIFECYCLE in common.h expects it): a
 * function that returns after a context switch pays a mispredicted return
 * in either library (the switch leaves the return stack buffer out of
 * step), and with start() and this one called, as they were before, that
 * was two per cycle, about 7 ns of which cogen's library code does none
 * (docs/performance.md, the life-cycle section). */
static inline void lifecycle_once(void) {
    cg_gen *g = make(once_body, NULL, NULL);
    start(g);
    if (cg_close(g, NULL, NULL) != CG_RETURNED) bench_die("close failed");
    cg_free(g);
}

static void lifecycle(long n) { BENCH_LIFECYCLE(lifecycle_once, WARMUP, n, IMPL, NULL); }

/* ---------------------------------------------------------------------
 * rss, compact_rss
 * ------------------------------------------------------------------ */

static void rss(const char *prefix, long n, const cg_opts *opts) {
    char cnt[32], bench[64], extra[256];
    snprintf(bench, sizeof bench, "%s_%s", prefix, bench_count_name(n, cnt, sizeof cnt));
    extra[0] = 0;

    /* Warm the thread's pool and TLS, and learn which mode we get. */
    cg_gen *probe = make(once_body, NULL, opts);
    start(probe);
    int compact = cg_gen_compact(probe);
    cg_guard mode = cg_gen_guard(probe);
    cg_free(probe);

    long want = n;
    if (opts && (opts->flags & CG_OPT_COMPACT) && !compact) {
        if (n > 1000000) {
            bench_note("%s: compact mode is not active in this build (cg_gen_compact() = 0, the ucontext fallback?): "
                       "%ld generators with normal stacks would need ~%ld GiB, so this measures 1,000,000 instead",
                       bench, n, n / 1000000 * 4);
            n = 1000000;
        }
        snprintf(extra, sizeof extra, "requested=%ld fallback=compact_inactive ", want);
    }

    /* Stop before taking more than 60% of what was available at the start:
     * the machine is shared. */
    long budget_kib = bench_mem_available_kib() * 6 / 10;
    void **gens = (void **)bench_ptr_array(n);
    bench_mem before, after;
    if (bench_mem_read(&before)) bench_die("cannot read /proc/self/status");
    long made = 0;
    for (; made < n; made++) {
        if (bench_over_budget(&before, budget_kib, made, bench, "generators")) break;
        cg_gen *g = make(once_body, NULL, opts);
        start(g);
        gens[made] = g;
    }
    if (bench_mem_read(&after)) bench_die("cannot read /proc/self/status");
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    size_t len = strlen(extra);
    snprintf(extra + len, sizeof extra - len, "guard=%s compact=%d guard_pages=%zu canaries=%zu mappings=%zu", guard_name(mode), compact,
             st.guard_pages, st.canaries, st.mappings);
    bench_mem_result(bench, IMPL, &before, &after, made, extra);
    /* The process ends here; freeing a million generators one by one would
     * only make the run longer. Small runs free them, to prove they can. */
    if (made <= 100000) {
        for (long i = 0; i < made; i++) cg_free(gens[i]);
        free(gens);
    }
}

/* ---------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr,
            "usage: bench_cogen roundtrip|compact_roundtrip|throw_catch|lifecycle [N]\n"
            "       bench_cogen next_loop [ITEMS] [PASSES]\n"
            "       bench_cogen rss|compact_rss [N]\n"
            "       bench_cogen depth|compact_depth|chain|rotate|compact_rotate|compact_rotate_resident D [N]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *b = argv[1];
    char name[64];
    if (!strcmp(b, "roundtrip"))
        roundtrip("roundtrip", echo_body, NULL, NULL, bench_arg(argc, argv, 2, 20000000));
    else if (!strcmp(b, "compact_roundtrip"))
        roundtrip("compact_roundtrip", echo_body, NULL, &compact_opts, bench_arg(argc, argv, 2, 20000000));
    else if (!strcmp(b, "next_loop"))
        next_loop(bench_arg(argc, argv, 2, 1000000), bench_arg(argc, argv, 3, 5));
    else if (!strcmp(b, "throw_catch"))
        throw_catch(bench_arg(argc, argv, 2, 1000000));
    else if (!strcmp(b, "lifecycle"))
        lifecycle(bench_arg(argc, argv, 2, 2000000));
    else if (!strcmp(b, "rss"))
        rss("rss", bench_arg(argc, argv, 2, 100000), NULL);
    else if (!strcmp(b, "compact_rss"))
        rss("compact_rss", bench_arg(argc, argv, 2, 100000), &compact_opts);
    else if (!strcmp(b, "depth") || !strcmp(b, "compact_depth")) {
        long d = bench_arg(argc, argv, 2, -1);
        if (d < 0) usage();
        int compact = b[0] == 'c';
        snprintf(name, sizeof name, "%sroundtrip_depth_%ld", compact ? "compact_" : "", d);
        roundtrip(name, nest_body, (void *)(intptr_t)d, compact ? &compact_opts : NULL,
                  bench_arg(argc, argv, 3, 10000000));
    } else if (!strcmp(b, "rotate") || !strcmp(b, "compact_rotate") || !strcmp(b, "compact_rotate_resident")) {
        long d = bench_arg(argc, argv, 2, -1);
        if (d < 0) usage();
        int compact = b[0] == 'c', wide = !strcmp(b, "compact_rotate_resident");
        snprintf(name, sizeof name, "%sroundtrip_rotate_%s%ld", compact ? "compact_" : "", wide ? "resident_" : "", d);
        rotate(name, d, compact ? &compact_opts : NULL, wide ? ROTATE : 0, bench_arg(argc, argv, 3, 2000000));
    } else if (!strcmp(b, "chain")) {
        long k = bench_arg(argc, argv, 2, -1);
        if (k < 0) usage();
        snprintf(name, sizeof name, "roundtrip_chain_%ld", k);
        roundtrip(name, chain_body, (void *)(intptr_t)k, NULL, bench_arg(argc, argv, 3, 10000000));
    } else
        usage();
    return 0;
}
