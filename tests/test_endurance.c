/* test_endurance.c: millions of generator lifetimes leave memory flat.
 *
 * One cycle is a generator's whole life: create, resume, send, throw (and
 * catch), close, free. Every few cycles the life takes another turn: the
 * throw is not caught, the generator is freed while suspended (so
 * finalization closes it), it delegates with cg_yield_from_new, or it
 * raises from a handler (a context chain). Two stack sizes alternate, so
 * the pool juggles two buckets.
 *
 * After a warm-up (a tenth of the cycles) the resident set size is read
 * from /proc/self/statm; at the end it must not have grown by more than
 * 1 MiB (COGEN_RSS_LIMIT_KIB changes the bound). The allocator hook counts
 * blocks: at the end exactly as many are out as after the warm-up. The
 * stack statistics must show no live stack and no new mapping.
 *
 *   endurance        10,000,000 cycles (~5 s here)
 *   endurance_quick   1,000,000 cycles
 * Both scale with COGEN_TEST_SCALE (e.g. 0.01 under valgrind); under a
 * sanitizer the count is divided by another 20 (see TSAN_DIVISOR). Under ASan,
 * TSan or valgrind the RSS bound is not checked: their allocators hold on
 * to freed blocks (ASan's quarantine) and their shadow memory grows with
 * the heap; the block count and the mapping count still are.
 *
 * The event loop's cases, judged the same way at round boundaries:
 *   loop_endurance_tasks    100,000 task lifetimes (rounds of 1,000 tasks
 *                           that sleep, are cancelled, spawn and await a
 *                           child, or fail), ~1 s
 *   loop_endurance_timers   1,000,000 timers armed and cancelled
 *   loop_endurance_scopes   1,000,000 timeout scopes (cg_timeout_call),
 *                           most left at once, some after a suspension,
 *                           some expiring
 * a tenth of the full sizes, which COGEN_TEST_SCALE=10 runs.
 */
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#include "check.h"
#include "under_tools.h"
#include "cogen_loop.h"

#include <time.h>
#include <unistd.h>

/* Under a sanitizer each cycle is slow: ASan's quarantine and shadow
 * memory cost microseconds, and TSan makes and destroys a fiber for every
 * generator, about a millisecond. The cycle count is divided on top of
 * COGEN_TEST_SCALE: by 20 under ASan, by 2000 under TSan. */
#define TSAN_DIVISOR (UNDER_TSAN ? 2000 : UNDER_ASAN ? 20 : 1)

/* Why RSS cannot be judged in this run, or NULL. */
static const char *rss_unreliable(void) {
    if (UNDER_SANITIZER) return "built with a sanitizer";
    if (RUNNING_ON_VALGRIND) return "running on valgrind";
    /* qemu-user (make check-aarch64) counts its own translation cache in
     * RSS and does not give back the pages a guest's MADV_DONTNEED frees:
     * the loop's rounds grew it by 60 MB there with blocks and mappings
     * flat. CMake sets this for tests run through an emulator. */
    if (getenv("COGEN_UNDER_EMULATOR")) return "run through an emulator";
    return NULL;
}

static long rss_limit_kib(void) {
    const char *s = getenv("COGEN_RSS_LIMIT_KIB");
    long v = s ? strtol(s, NULL, 10) : 0;
    return v > 0 ? v : 1024;
}

static long scaled(long n) {
    const char *s = getenv("COGEN_TEST_SCALE");
    double f = s ? strtod(s, NULL) : 1.0;
    if (!(f > 0)) f = 1.0;
    long r = (long)((double)n * f);
    return r < 1 ? 1 : r;
}

static size_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    CHECK(f != NULL);
    unsigned long size = 0, resident = 0;
    CHECK(fscanf(f, "%lu %lu", &size, &resident) == 2);
    fclose(f);
    return (size_t)resident * (size_t)sysconf(_SC_PAGESIZE);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Counting allocator: blocks out, and how many were ever made. */
static long blocks_out, blocks_made;
static void *count_alloc(size_t n, void *ud) {
    (void)ud;
    void *p = malloc(n);
    if (p) {
        blocks_out++;
        blocks_made++;
    }
    return p;
}
static void count_free(void *p, void *ud) {
    (void)ud;
    blocks_out--;
    free(p);
}

/* ---------------------------------------------------------------------
 * Bodies
 * ------------------------------------------------------------------ */

static long defers_run, finallies_run;
static void on_defer(void *arg) {
    (void)arg;
    defers_run++;
}

static void *leaf_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, (void *)1);
    return (void *)2;
}

/* The life of one generator, from its side. */
static void *life_body(cg_gen *g, void *arg) {
    intptr_t kind = (intptr_t)arg;
    CG_DEFER(on_defer, NULL);
    intptr_t got = (intptr_t)cg_yield(g, (void *)1);
    CHECK(got == 0);
    got = (intptr_t)cg_yield(g, (void *)2);
    if (kind == 3) got += (intptr_t)cg_yield_from_new(g, leaf_body, NULL, NULL);
    CG_TRY {
        cg_yield(g, (void *)(got + 1));
    } CG_EXCEPT(&cg_ValueError, e) {
        if (kind == 4) CG_RAISE(&cg_KeyError, "raised while handling");
        cg_yield(g, (void *)(intptr_t)cg_exc_line(e));
    } CG_FINALLY {
        finallies_run++;
    } CG_END;
    return (void *)99;
}

/* ---------------------------------------------------------------------
 * Cycles
 * ------------------------------------------------------------------ */

static const cg_opts sizes[2] = {{0, "endurance", 0}, {32u * 1024u, "endurance-small", 0}};

static void one_cycle(long i) {
    intptr_t kind = (intptr_t)(i % 8); /* 0-2: the plain life */
    cg_gen *g = cg_new(life_body, (void *)kind, &sizes[i & 1]);
    CHECK(g != NULL);
    void *v;
    cg_exc *e;
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 1);
    CHECK_EQ(cg_send(g, NULL, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    if (kind == 5) { /* freed while suspended: finalization closes it */
        cg_free(g);
        return;
    }
    CHECK_EQ(cg_send(g, (void *)10, &v, &e), CG_YIELDED);
    if (kind == 3) { /* the leaf yields 1, returns 2 */
        CHECK_EQ((intptr_t)v, 1);
        CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
        CHECK_EQ((intptr_t)v, 13);
    } else {
        CHECK_EQ((intptr_t)v, 11);
    }
    if (kind == 6) { /* a throw nothing catches */
        CHECK_EQ(cg_throw(g, cg_exc_new(&cg_TypeError, NULL), &v, &e), CG_RAISED);
        CHECK(cg_exc_is(e, &cg_TypeError));
        cg_exc_unref(e);
        cg_free(g);
        return;
    }
    cg_exc *x = cg_exc_new(&cg_ValueError, "thrown");
    CHECK_EQ(cg_throw(g, x, &v, &e), kind == 4 ? CG_RAISED : CG_YIELDED);
    if (kind == 4) {
        CHECK(cg_exc_is(e, &cg_KeyError));
        CHECK(cg_exc_is(cg_exc_context(e), &cg_ValueError));
        cg_exc_unref(e);
    } else {
        CHECK_EQ(cg_close(g, &v, &e), CG_RETURNED);
        CHECK(v == NULL);
    }
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    cg_free(g);
}

static void run_cycles(long base) {
    long cycles = scaled(base) / TSAN_DIVISOR;
    if (cycles < 10) cycles = 10;
    if (TSAN_DIVISOR > 1) printf("ThreadSanitizer: %ld cycles, a %dth of the count\n", cycles, TSAN_DIVISOR);
    long warm = cycles / 10 > 0 ? cycles / 10 : 1;
    cg_set_allocator(count_alloc, count_free, NULL);

    double t0 = now();
    for (long i = 0; i < warm; i++) one_cycle(i);
    size_t rss0 = rss_bytes();
    long out0 = blocks_out;
    cg_stack_stats st0, st1;
    cg_get_stack_stats(&st0);
    printf("after %ld warm-up cycles: RSS %zu KiB, %ld blocks out, %zu stacks pooled, %zu mappings\n", warm,
           rss0 / 1024, out0, st0.pooled, st0.mappings);
    fflush(stdout);

    double t1 = now();
    for (long i = warm; i < cycles; i++) one_cycle(i);
    double t2 = now();
    size_t rss1 = rss_bytes();
    cg_get_stack_stats(&st1);
    printf("after %ld cycles: RSS %zu KiB, %ld blocks out, %zu stacks pooled, %zu mappings\n", cycles, rss1 / 1024,
           blocks_out, st1.pooled, st1.mappings);
    printf("RSS growth %+ld KiB; %ld blocks allocated in all; %.0f ns per cycle (%.2f s)\n",
           ((long)rss1 - (long)rss0) / 1024, blocks_made, (t2 - t1) * 1e9 / (double)(cycles - warm), t2 - t0);

    /* Every life ran its cleanups: the defer always, the finally block in
     * every life that reached the try. */
    CHECK_EQ(defers_run, cycles);
    CHECK_EQ(finallies_run, cycles - (cycles + 2) / 8); /* all but kind 5 */
    CHECK_EQ(blocks_out, out0);
    CHECK_EQ(st1.live, 0);
    CHECK_EQ(st1.mappings, st0.mappings);
    CHECK(st1.pooled <= st0.pooled + 2);
    const char *why = rss_unreliable();
    if (why)
        printf("RSS bound not checked: %s\n", why);
    else
        CHECK((long)rss1 - (long)rss0 < rss_limit_kib() * 1024);
}

TEST(endurance) { run_cycles(10000000); }
TEST(endurance_quick) { run_cycles(1000000); }

/* =====================================================================
 * The event loop: a million task lifetimes, ten million timers
 * ================================================================== */

/* Where memory is judged: after the warm-up rounds and at the end, at a
 * round boundary (no task but main alive, no timer armed). */
typedef struct mem_mark {
    size_t rss;
    long blocks;
    cg_stack_stats st;
} mem_mark;

static void mark(mem_mark *m) {
    m->rss = rss_bytes();
    m->blocks = blocks_out;
    cg_get_stack_stats(&m->st);
}

/* Flat: as many blocks out as after the warm-up, no new stack mapping, the
 * RSS within its bound. */
static void check_flat(const char *what, long n, const mem_mark *m0, double t) {
    mem_mark m1;
    mark(&m1);
    printf("%s: %ld in %.2f s (%.0f ns each); RSS %zu -> %zu KiB (%+ld KiB), blocks out %ld -> %ld, "
           "stack mappings %zu -> %zu\n",
           what, n, t, t * 1e9 / (double)n, m0->rss / 1024, m1.rss / 1024, ((long)m1.rss - (long)m0->rss) / 1024,
           m0->blocks, m1.blocks, m0->st.mappings, m1.st.mappings);
    CHECK_EQ(m1.blocks, m0->blocks);
    CHECK_EQ(m1.st.mappings, m0->st.mappings);
    const char *why = rss_unreliable();
    if (why)
        printf("RSS bound not checked: %s\n", why);
    else
        CHECK((long)m1.rss - (long)m0->rss < rss_limit_kib() * 1024);
}

/* A round of tasks: TASKS_PER_ROUND tasks spawned by main and by each
 * other, of four kinds by their index i:
 *   0  sleeps 1 to 4 ms and returns i;
 *   1  sleeps a second in a try/finally: main cancels it after 5 ms;
 *   2  spawns a child (kind 0's body) and returns what awaiting it gives;
 *   3  takes two turns (sleep(0)) and raises ValueError.
 * Main awaits every one of them: each ends as its kind says. */
enum { TASKS_PER_ROUND = 1000 };

static long task_finallies, task_results;

static void count_finally(void *arg) {
    (void)arg;
    task_finallies++;
}

static void *short_sleeper(cg_gen *g, void *arg) {
    (void)g;
    cg_sleep(CG_MS(1 + (intptr_t)arg % 4));
    return arg;
}

static void *round_task(cg_gen *g, void *arg) {
    intptr_t i = (intptr_t)arg;
    switch (i % 4) {
    case 0:
        return short_sleeper(g, arg);
    case 1: {
        CG_DEFER(count_finally, NULL);
        cg_sleep(CG_SEC(1));
        return NULL; /* not reached: cancelled */
    }
    case 2: {
        cg_task *child = cg_create_task(short_sleeper, arg, NULL);
        void *r = cg_await(cg_task_future(child));
        cg_future_unref(cg_task_future(child));
        return r;
    }
    default:
        cg_sleep(0);
        cg_sleep(0);
        CG_RAISE(&cg_ValueError, "round task failed");
    }
    return NULL;
}

static void await_task(void *t) {
    if (cg_await(cg_task_future(t)) == (void *)(intptr_t)-1) task_results = -1; /* never */
}

static void one_round(void) {
    static cg_task *tasks[TASKS_PER_ROUND];
    for (intptr_t i = 0; i < TASKS_PER_ROUND; i++) tasks[i] = cg_create_task(round_task, (void *)i, NULL);
    cg_sleep(CG_MS(5));
    for (int i = 1; i < TASKS_PER_ROUND; i += 4) CHECK_EQ(cg_task_cancel(tasks[i], NULL), 1);
    for (intptr_t i = 0; i < TASKS_PER_ROUND; i++) {
        cg_exc *e = cg_try_catch(await_task, tasks[i], &cg_BaseException);
        switch (i % 4) {
        case 1: CHECK(cg_exc_is(e, &cg_CancelledError)); break;
        case 3: CHECK(cg_exc_is(e, &cg_ValueError)); break;
        default:
            CHECK(e == NULL);
            CHECK_PTR(cg_future_result(cg_task_future(tasks[i])), (void *)i);
            task_results++;
        }
        cg_exc_unref(e);
        cg_future_unref(cg_task_future(tasks[i]));
    }
}

typedef struct tasks_run {
    long rounds;
    double t;
} tasks_run;

static void *tasks_main(cg_gen *g, void *arg) {
    (void)g;
    tasks_run *r = arg;
    long warm = r->rounds / 10 > 0 ? r->rounds / 10 : 1;
    for (long k = 0; k < warm; k++) one_round();
    size_t n = 0;
    cg_task **left = cg_all_tasks(NULL, &n);
    cg_all_tasks_free(left, n);
    CHECK_EQ(n, 1); /* main only: every task of the rounds is done */
    mem_mark m0;
    mark(&m0);
    double t0 = now();
    for (long k = warm; k < r->rounds; k++) one_round();
    r->t = now() - t0;
    long tasks = (r->rounds - warm) * TASKS_PER_ROUND * 5 / 4; /* kind 2 spawns a child */
    check_flat("tasks after the warm-up", tasks, &m0, r->t);
    return NULL;
}

/* Task lifetimes: rounds of TASKS_PER_ROUND tasks (plus the children of
 * kind 2) in one asyncio.run on the virtual clock. */
static void run_task_rounds(long base) {
    long rounds = scaled(base) / TSAN_DIVISOR / TASKS_PER_ROUND;
    if (rounds < 2) rounds = 2;
    cg_set_allocator(count_alloc, count_free, NULL);
    tasks_run r = {rounds, 0};
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, NULL, NULL};
    CHECK_EQ(cg_run(tasks_main, &r, &o, NULL, NULL), CG_RETURNED);
    /* Every task ended as its kind says, its cleanup run. */
    CHECK_EQ(task_finallies, rounds * (TASKS_PER_ROUND / 4));
    CHECK_EQ(task_results, rounds * (TASKS_PER_ROUND / 2));
}

/* Timers: rounds of TIMERS_PER_ROUND armed with call_later at scattered
 * deadlines, then cancelled (in arming order, in reverse, or every other
 * one first), except one in 16 that is let fire. */
enum { TIMERS_PER_ROUND = 10000 };

static long timers_fired;

static void timer_fired(void *arg) {
    (void)arg;
    timers_fired++;
}

static void set_done(void *f) { cg_future_set_result(f, NULL); }

static void timer_round(cg_loop *loop, long k) {
    static cg_handle *hs[TIMERS_PER_ROUND];
    for (long i = 0; i < TIMERS_PER_ROUND; i++) {
        hs[i] = cg_loop_call_later(loop, CG_MS(1 + (i * 7919) % 1000), timer_fired, NULL);
        CHECK(hs[i] != NULL);
    }
    for (long j = 0; j < TIMERS_PER_ROUND; j++) {
        long i = k % 3 == 0 ? j : k % 3 == 1 ? TIMERS_PER_ROUND - 1 - j
                                          : (j < TIMERS_PER_ROUND / 2 ? 2 * j : 2 * (j - TIMERS_PER_ROUND / 2) + 1);
        if (i % 16 != 0) cg_handle_cancel(hs[i]);
        cg_handle_unref(hs[i]);
    }
    /* Run until every timer left has fired: the sentinel comes last. */
    cg_future *f = cg_future_new(loop);
    CHECK(f != NULL);
    cg_handle *end = cg_loop_call_later(loop, CG_SEC(2), set_done, f);
    CHECK(end != NULL);
    CHECK_EQ(cg_loop_run_until_complete(loop, f, NULL, NULL), CG_RETURNED);
    cg_handle_unref(end);
    cg_future_unref(f);
}

static void run_timer_rounds(long base) {
    long rounds = scaled(base) / (UNDER_SANITIZER ? 20 : 1) / TIMERS_PER_ROUND;
    if (rounds < 2) rounds = 2;
    cg_set_allocator(count_alloc, count_free, NULL);
    cg_loop_opts lo = {CG_LOOP_VIRTUAL_CLOCK};
    cg_loop *loop = cg_loop_new(&lo);
    CHECK(loop != NULL);
    long warm = rounds / 10 > 0 ? rounds / 10 : 1;
    for (long k = 0; k < warm; k++) timer_round(loop, k);
    mem_mark m0;
    mark(&m0);
    double t0 = now();
    for (long k = warm; k < rounds; k++) timer_round(loop, k);
    check_flat("timers armed and cancelled after the warm-up", (rounds - warm) * TIMERS_PER_ROUND, &m0, now() - t0);
    CHECK_EQ(timers_fired, rounds * (TIMERS_PER_ROUND / 16));
    cg_loop_free(loop);
}

/* Timeout scopes: rounds of SCOPES_PER_ROUND cg_timeout_call scopes of 1
 * to 10 ms in one asyncio.run on the virtual clock, by their index i: most
 * left in the step that entered them (their timer never in the heap), one
 * in 16 left after a sleep(0) inside (put in the heap, then taken out),
 * one in 256 expiring (its TimeoutError caught). */
enum { SCOPES_PER_ROUND = 10000 };

static long scope_timeouts;

static void scope_block(void *arg) {
    intptr_t i = (intptr_t)arg;
    if (i % 256 == 0)
        cg_sleep(CG_MS(20));
    else if (i % 16 == 0)
        cg_sleep(0);
}

static void scope_once(void *arg) { cg_timeout_call(CG_MS(1 + (intptr_t)arg % 10), scope_block, arg); }

static void scope_round(void) {
    for (intptr_t i = 0; i < SCOPES_PER_ROUND; i++) {
        cg_exc *e = cg_try_catch(scope_once, (void *)i, &cg_BaseException);
        CHECK(i % 256 == 0 ? cg_exc_is(e, &cg_TimeoutError) : e == NULL);
        scope_timeouts += e != NULL;
        cg_exc_unref(e);
    }
}

static void *scopes_main(cg_gen *g, void *arg) {
    (void)g;
    long rounds = *(long *)arg;
    long warm = rounds / 10 > 0 ? rounds / 10 : 1;
    for (long k = 0; k < warm; k++) scope_round();
    mem_mark m0;
    mark(&m0);
    double t0 = now();
    for (long k = warm; k < rounds; k++) scope_round();
    check_flat("timeout scopes after the warm-up", (rounds - warm) * SCOPES_PER_ROUND, &m0, now() - t0);
    return NULL;
}

static void run_scope_rounds(long base) {
    long rounds = scaled(base) / (UNDER_SANITIZER ? 20 : 1) / SCOPES_PER_ROUND;
    if (rounds < 2) rounds = 2;
    cg_set_allocator(count_alloc, count_free, NULL);
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, NULL, NULL};
    CHECK_EQ(cg_run(scopes_main, &rounds, &o, NULL, NULL), CG_RETURNED);
    CHECK_EQ(scope_timeouts, rounds * ((SCOPES_PER_ROUND + 255) / 256));
}

/* Make test runs a tenth of the full sizes (a few seconds); the full
 * million tasks and ten million timers with COGEN_TEST_SCALE=10. */
TEST(loop_endurance_tasks) { run_task_rounds(100000); }
TEST(loop_endurance_timers) { run_timer_rounds(1000000); }
TEST(loop_endurance_scopes) { run_scope_rounds(1000000); }

static const check_case cases[] = {CASE(endurance), CASE(endurance_quick), CASE(loop_endurance_tasks),
                                   CASE(loop_endurance_timers), CASE(loop_endurance_scopes)};
CHECK_MAIN(cases)
