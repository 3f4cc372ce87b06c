/* bench_boost.cpp: Boost.Context's raw fcontext API (Debian's
 * libboost-context-dev), the fastest widely packaged context switch, as a
 * peer: no generator semantics, no exceptions, just the switch.
 *
 *   bench_boost roundtrip [N]   jump in with a pointer, jump back with it
 *   bench_boost lifecycle [N]   make_fcontext on a pooled stack + first
 *                               resume + a "close" resume that lets the
 *                               context finish + stack back to the pool
 *   bench_boost rss [N]         memory per suspended context, N alive
 *
 * Stacks are 128 KiB like cogen's default. The pool for lifecycle keeps
 * mmap'd stacks with a guard page for reuse (what cogen's pool does);
 * the rss benchmark carves stacks from 32 MiB slabs without guard pages,
 * because a guard page per stack made with mprotect needs a mapping per
 * stack, and Linux's default limit of 65,530 mappings stops that near
 * 32,700 stacks (Boost's own pooled_fixedsize_stack has no guard either).
 */
#include <boost/context/detail/fcontext.hpp>

#include <sys/mman.h>
#include <unistd.h>

#include <vector>

#include "common.h"

using boost::context::detail::fcontext_t;
using boost::context::detail::jump_fcontext;
using boost::context::detail::make_fcontext;
using boost::context::detail::transfer_t;

static const long WARMUP = 10000;
static const size_t STACK = 128 * 1024;
static const char *const IMPL = "boost-fcontext";

static size_t page() { return (size_t)sysconf(_SC_PAGESIZE); }

/* A guarded stack of its own (mapping + guard page), returns its top. */
static char *guarded_stack() {
    size_t ps = page();
    void *m = mmap(nullptr, STACK + ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) bench_die("mmap: %s", strerror(errno));
    if (mprotect(m, ps, PROT_NONE)) bench_die("mprotect: %s", strerror(errno));
    return (char *)m + ps + STACK;
}

/* The pooled stacks, a LIFO as in any pool. */
static std::vector<char *> pool;

static char *pool_get() {
    if (pool.empty()) return guarded_stack();
    char *s = pool.back();
    pool.pop_back();
    return s;
}

static void pool_put(char *s) { pool.push_back(s); }

/* ---------------------------------------------------------------------
 * roundtrip
 * ------------------------------------------------------------------ */

static void echo_fn(transfer_t t) {
    for (;;) t = jump_fcontext(t.fctx, t.data);
}

static void roundtrip(long n) {
    static int token;
    void *p = &token;
    fcontext_t c = make_fcontext(pool_get(), STACK, echo_fn);
    transfer_t t = jump_fcontext(c, nullptr);
    for (long i = 0; i < WARMUP; i++) t = jump_fcontext(t.fctx, p);
    double best;
    BENCH_TIME_BATCHES(best, n, len, {
        for (long i = 0; i < len; i++) t = jump_fcontext(t.fctx, p);
    });
    if (n && t.data != p) bench_die("the context did not echo the value");
    bench_result("roundtrip", IMPL, best, "ns", n, "stack=pooled,guarded");
}

/* ---------------------------------------------------------------------
 * lifecycle
 * ------------------------------------------------------------------ */

static int closed_mark;

/* Yields once; resumed again ("closed"), it says so and is abandoned: an
 * fcontext function must never return. */
static void once_fn(transfer_t t) {
    t = jump_fcontext(t.fctx, nullptr);
    jump_fcontext(t.fctx, &closed_mark);
    bench_die("a finished fcontext was resumed");
}

static inline void lifecycle_once() {
    char *s = pool_get();
    fcontext_t c = make_fcontext(s, STACK, once_fn);
    transfer_t t = jump_fcontext(c, nullptr); /* first resume: runs to the yield */
    t = jump_fcontext(t.fctx, nullptr);       /* close: runs to the end */
    if (t.data != &closed_mark) bench_die("lifecycle: context did not finish");
    pool_put(s);
}

static void lifecycle(long n) { BENCH_LIFECYCLE(lifecycle_once, WARMUP, n, IMPL, "stack=pooled,guarded"); }

/* ---------------------------------------------------------------------
 * rss
 * ------------------------------------------------------------------ */

static char *slab, *slab_end;

static char *slab_stack() {
    if (!slab || (size_t)(slab_end - slab) < STACK) {
        size_t len = (size_t)32 << 20;
        void *m = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) bench_die("mmap: %s", strerror(errno));
        slab = (char *)m;
        slab_end = slab + len;
    }
    slab += STACK;
    return slab; /* the top of the stack just carved */
}

static void rss(long n) {
    char cnt[32], bench[64];
    snprintf(bench, sizeof bench, "rss_%s", bench_count_name(n, cnt, sizeof cnt));
    long budget_kib = bench_mem_available_kib() * 6 / 10;
    fcontext_t *ctx = (fcontext_t *)bench_ptr_array(n);
    slab_stack(); /* the first slab's mapping exists before the reading */
    slab -= STACK;
    bench_mem before, after;
    if (bench_mem_read(&before)) bench_die("cannot read /proc/self/status");
    long made = 0;
    for (; made < n; made++) {
        if (bench_over_budget(&before, budget_kib, made, bench, "contexts")) break;
        fcontext_t c = make_fcontext(slab_stack(), STACK, once_fn);
        ctx[made] = jump_fcontext(c, nullptr).fctx; /* suspended at its first yield */
    }
    if (bench_mem_read(&after)) bench_die("cannot read /proc/self/status");
    bench_mem_result(bench, IMPL, &before, &after, made, "stack=slab,unguarded");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_boost roundtrip|lifecycle|rss [N]\n");
        return 2;
    }
    if (!strcmp(argv[1], "roundtrip"))
        roundtrip(bench_arg(argc, argv, 2, 20000000));
    else if (!strcmp(argv[1], "lifecycle"))
        lifecycle(bench_arg(argc, argv, 2, 10000000));
    else if (!strcmp(argv[1], "rss"))
        rss(bench_arg(argc, argv, 2, 100000));
    else {
        fprintf(stderr, "bench_boost: unknown benchmark '%s'\n", argv[1]);
        return 2;
    }
    return 0;
}
