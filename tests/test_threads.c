/* test_threads.c: generators on several threads at once, and the rule
 * that a generator is driven only by the thread that made it.
 *
 * Each thread has its own stack pool and its own list of live generators;
 * nothing of a generator is shared unless the program shares it. Resuming
 * a generator from a thread that does not own it (cg_send, cg_next,
 * cg_throw, cg_close, or delegating to it with cg_yield_from) is reported
 * as RuntimeError('generator belongs to another thread') and changes
 * nothing: the owner resumes it afterwards as if nothing had happened.
 * (cg_free from another thread is not covered: it is not safe yet, see
 * docs/debugging.md.)
 *
 * Threads hand objects to each other only through a mutex and condition
 * variable (or pthread_join), so the test is clean under ThreadSanitizer.
 */
#define _GNU_SOURCE /* pthread barriers */
#include "check.h"

#include <pthread.h>
#include <stdatomic.h>

static long scaled(long n) {
    const char *s = getenv("COGEN_TEST_SCALE");
    double f = s ? strtod(s, NULL) : 1.0;
    if (!(f > 0)) f = 1.0;
    long r = (long)((double)n * f);
    return r < 1 ? 1 : r;
}

#define FOREIGN "RuntimeError('generator belongs to another thread')"

/* ---------------------------------------------------------------------
 * A hand-off point between two threads: one value, one step counter
 * ------------------------------------------------------------------ */

typedef struct baton {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int step;  /* whose turn it is; advanced by pass() */
    void *obj; /* what is being handed over */
} baton;

static void baton_init(baton *b) {
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    b->step = 0;
    b->obj = NULL;
}

/* Sets the step (and the object) and wakes the other side. */
static void pass(baton *b, int step, void *obj) {
    pthread_mutex_lock(&b->mu);
    b->step = step;
    b->obj = obj;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Waits until the step is reached; returns the object handed over. */
static void *wait_for(baton *b, int step) {
    pthread_mutex_lock(&b->mu);
    while (b->step < step) pthread_cond_wait(&b->cv, &b->mu);
    void *obj = b->obj;
    pthread_mutex_unlock(&b->mu);
    return obj;
}

/* ---------------------------------------------------------------------
 * Many threads, many generators, all at once
 * ------------------------------------------------------------------ */

#define NTHREADS 4
#define NGEN 8

typedef struct worker {
    int id;
    long rounds;
    long caught;        /* ValueErrors the bodies caught */
    intptr_t totals[NGEN];
    pthread_barrier_t *barrier;
} worker;

static void *count3_body(cg_gen *g, void *arg) {
    (void)arg;
    for (intptr_t i = 1; i <= 3; i++) cg_yield(g, (void *)i);
    return (void *)6;
}

/* Adds up what it is sent and yields the running total; a ValueError
 * thrown in (carrying its worker as payload) is counted and the total
 * yielded again; 0 ends it. */
static void *acc_body(cg_gen *g, void *arg) {
    worker *w = arg;
    char name[32];
    snprintf(name, sizeof name, "count3-t%d", w->id);
    cg_opts o = {CG_STACK_MIN, name, 0};
    CHECK_EQ((intptr_t)cg_yield_from_new(g, count3_body, NULL, &o), 6);
    intptr_t total = 0;
    for (;;) {
        volatile intptr_t v = 0;
        CG_TRY {
            v = (intptr_t)cg_yield(g, (void *)total);
        } CG_EXCEPT(&cg_ValueError, e) {
            CHECK_PTR(cg_exc_payload(e), w);
            w->caught++;
            v = -1;
        } CG_END;
        CHECK_PTR(cg_current(), g);
        if (v == 0) break;
        if (v > 0) total += v;
    }
    return (void *)total;
}

static void *parallel_thread(void *arg) {
    worker *w = arg;
    cg_gen *gens[NGEN];
    char names[NGEN][32];
    void *v;
    cg_exc *e;
    for (int k = 0; k < NGEN; k++) {
        snprintf(names[k], sizeof names[k], "acc-t%d-%d", w->id, k);
        cg_opts o = {0, names[k], 0};
        gens[k] = cg_new(acc_body, w, &o);
        CHECK(gens[k] != NULL);
        for (intptr_t i = 1; i <= 3; i++) {
            CHECK_EQ(cg_next(gens[k], &v, &e), CG_YIELDED);
            CHECK_EQ((intptr_t)v, i);
        }
        CHECK_EQ(cg_next(gens[k], &v, &e), CG_YIELDED);
        CHECK_EQ((intptr_t)v, 0);
        w->totals[k] = 0;
    }
    CHECK(cg_current() == NULL);
    pthread_barrier_wait(w->barrier); /* every thread has NGEN live generators */
    long throws = 0;
    for (long r = 1; r <= w->rounds; r++) {
        for (int k = 0; k < NGEN; k++) {
            if (r % 16 == 0) {
                cg_exc *x = cg_exc_new(&cg_ValueError, names[k]);
                cg_exc_set_payload(x, w, NULL);
                CHECK_EQ(cg_throw(gens[k], x, &v, &e), CG_YIELDED);
                throws++;
            } else {
                intptr_t add = (intptr_t)(r * (k + 1) + w->id);
                CHECK_EQ(cg_send(gens[k], (void *)add, &v, &e), CG_YIELDED);
                w->totals[k] += add;
            }
            CHECK_EQ((intptr_t)v, w->totals[k]);
            CHECK_EQ(cg_gen_state(gens[k]), CG_GEN_SUSPENDED);
        }
    }
    pthread_barrier_wait(w->barrier);
    for (int k = 0; k < NGEN; k++) {
        CHECK_EQ(cg_send(gens[k], NULL, &v, &e), CG_RETURNED);
        CHECK_EQ((intptr_t)v, w->totals[k]);
        CHECK_STR(cg_gen_name(gens[k]), names[k]);
        cg_free(gens[k]);
    }
    CHECK_EQ(w->caught, throws);
    return NULL;
}

TEST(threads_parallel) {
    pthread_t t[NTHREADS];
    worker w[NTHREADS];
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, NTHREADS);
    long rounds = scaled(50000);
    for (int i = 0; i < NTHREADS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].id = i;
        w[i].rounds = rounds;
        w[i].barrier = &barrier;
        CHECK(pthread_create(&t[i], NULL, parallel_thread, &w[i]) == 0);
    }
    for (int i = 0; i < NTHREADS; i++) CHECK(pthread_join(t[i], NULL) == 0);
    pthread_barrier_destroy(&barrier);
    /* Each thread's totals are its own: no generator saw another's values. */
    for (int i = 0; i < NTHREADS; i++)
        for (int k = 0; k < NGEN; k++) {
            intptr_t want = 0;
            for (long r = 1; r <= rounds; r++)
                if (r % 16 != 0) want += (intptr_t)(r * (k + 1) + i);
            CHECK_EQ(w[i].totals[k], want);
        }
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    CHECK_EQ(st.live, 0);
    printf("%d threads x %d generators x %ld rounds\n", NTHREADS, NGEN, rounds);
}

/* ---------------------------------------------------------------------
 * Resuming another thread's generator
 * ------------------------------------------------------------------ */

static void *echo_body(cg_gen *g, void *arg) {
    (void)arg;
    intptr_t got = (intptr_t)cg_yield(g, (void *)1);
    CG_TRY {
        got += (intptr_t)cg_yield(g, (void *)(got + 1));
    } CG_FINALLY {
        /* runs once, on the owner's close, never on a refused one */
        (*(int *)cg_gen_arg(g))++;
    } CG_END;
    return (void *)got;
}

static atomic_int payloads_freed;
static void count_free(void *p) {
    (void)p;
    atomic_fetch_add(&payloads_freed, 1);
}

typedef struct shared {
    baton b;
    cg_gen *suspended; /* made by the owner, parked at its first yield */
    cg_gen *created;   /* made by the owner, never run */
    int finally_runs;
} shared;

enum { ST_READY = 1, ST_TRIED, ST_DONE };

static void expect_foreign(cg_status st, void *out, cg_exc *e) {
    CHECK_EQ(st, CG_RAISED);
    CHECK(out == NULL);
    CHECK_EXC(e, FOREIGN);
    cg_exc_unref(e);
}

static void try_everything(cg_gen *g, cg_state want) {
    void *out;
    cg_exc *e;
    cg_status st;
    cg_stack_stats before, after;
    cg_get_stack_stats(&before);

    out = (void *)0x1;
    st = cg_send(g, (void *)7, &out, &e);
    expect_foreign(st, out, e);
    CHECK_EQ(cg_gen_state(g), want);
    out = (void *)0x1;
    st = cg_next(g, &out, &e);
    expect_foreign(st, out, e);
    CHECK_EQ(cg_gen_state(g), want);

    /* The thrown exception is consumed (its payload destructor runs once it
     * is released), not raised in the generator. */
    int freed = atomic_load(&payloads_freed);
    cg_exc *x = cg_exc_new(&cg_ValueError, "from the wrong thread");
    cg_exc_set_payload(x, NULL, count_free);
    out = (void *)0x1;
    st = cg_throw(g, x, &out, &e);
    expect_foreign(st, out, e);
    CHECK_EQ(atomic_load(&payloads_freed), freed + 1);
    CHECK_EQ(cg_gen_state(g), want);

    out = (void *)0x1;
    st = cg_close(g, &out, &e);
    expect_foreign(st, out, e);
    CHECK_EQ(cg_gen_state(g), want);

    /* Without out or exc pointers too. */
    CHECK_EQ(cg_next(g, NULL, NULL), CG_RAISED);
    CHECK_EQ(cg_gen_state(g), want);

    /* Read-only introspection is fine while the owner is not using it. */
    CHECK_STR(cg_gen_name(g), want == CG_GEN_CREATED ? "fresh" : "parked");
    CHECK(cg_gen_yieldfrom(g) == NULL);
    cg_get_stack_stats(&after);
    CHECK_EQ(after.live, before.live);
}

/* A body of the other thread that tries to delegate to the owner's
 * generator. */
static void *thief_body(cg_gen *g, void *arg) {
    cg_gen *victim = arg;
    CG_TRY {
        cg_yield_from(g, victim);
        CHECK(!"delegated to a generator of another thread");
    } CG_EXCEPT(&cg_RuntimeError, e) {
        CHECK_EXC(e, FOREIGN);
        return (void *)1;
    } CG_END;
    return NULL;
}

static void *foreign_thread(void *arg) {
    shared *s = arg;
    wait_for(&s->b, ST_READY);
    try_everything(s->suspended, CG_GEN_SUSPENDED);
    try_everything(s->created, CG_GEN_CREATED);

    /* cg_yield_from from one of this thread's generators. */
    cg_gen *thief = cg_new(thief_body, s->suspended, NULL);
    CHECK(thief != NULL);
    void *out;
    cg_exc *e;
    CHECK_EQ(cg_next(thief, &out, &e), CG_RETURNED);
    CHECK_EQ((intptr_t)out, 1);
    cg_free(thief);
    CHECK_EQ(cg_gen_state(s->suspended), CG_GEN_SUSPENDED);
    CHECK_EQ(cg_gen_state(s->created), CG_GEN_CREATED);
    CHECK_EQ(s->finally_runs, 0);

    pass(&s->b, ST_TRIED, NULL);
    return NULL;
}

TEST(threads_foreign_resume) {
    shared s;
    memset(&s, 0, sizeof s);
    baton_init(&s.b);
    void *out;
    cg_exc *e;
    cg_opts po = {0, "parked", 0}, fo = {0, "fresh", 0};
    s.suspended = cg_new(echo_body, &s.finally_runs, &po);
    s.created = cg_new(echo_body, &s.finally_runs, &fo);
    CHECK(s.suspended && s.created);
    CHECK_EQ(cg_next(s.suspended, &out, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)out, 1);

    pthread_t t;
    CHECK(pthread_create(&t, NULL, foreign_thread, &s) == 0);
    pass(&s.b, ST_READY, NULL);
    wait_for(&s.b, ST_TRIED);
    CHECK(pthread_join(t, NULL) == 0);

    /* The owner carries on as if nothing had happened. */
    CHECK_EQ(cg_send(s.suspended, (void *)40, &out, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)out, 41);
    CHECK_EQ(cg_send(s.suspended, (void *)2, &out, &e), CG_RETURNED);
    CHECK_EQ((intptr_t)out, 42);
    CHECK_EQ(s.finally_runs, 1);

    CHECK_EQ(cg_next(s.created, &out, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)out, 1);
    CHECK_EQ(cg_send(s.created, (void *)5, &out, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)out, 6);
    CHECK_EQ(cg_close(s.created, &out, &e), CG_RETURNED);
    CHECK_EQ(s.finally_runs, 2);
    cg_free(s.suspended);
    cg_free(s.created);
}

/* The owner is busy (its generator is running, inside its body) while the
 * other thread tries: still the ownership error, not "already executing",
 * and the running body is not disturbed. */
typedef struct busy {
    baton b;
    cg_gen *g;
} busy;

enum { BZ_RUNNING = 1, BZ_TRIED };

static void *busy_body(cg_gen *g, void *arg) {
    busy *bz = arg;
    pass(&bz->b, BZ_RUNNING, g);
    wait_for(&bz->b, BZ_TRIED); /* the other thread tries now */
    CHECK_EQ(cg_gen_state(g), CG_GEN_RUNNING);
    CHECK_EQ((intptr_t)cg_yield(g, (void *)10), 11);
    return (void *)12;
}

static void *busy_thread(void *arg) {
    busy *bz = arg;
    cg_gen *g = wait_for(&bz->b, BZ_RUNNING);
    void *out;
    cg_exc *e;
    cg_status st;
    st = cg_send(g, NULL, &out, &e);
    expect_foreign(st, out, e);
    st = cg_close(g, &out, &e);
    expect_foreign(st, out, e);
    pass(&bz->b, BZ_TRIED, NULL);
    return NULL;
}

TEST(threads_foreign_while_running) {
    busy bz;
    baton_init(&bz.b);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, busy_thread, &bz) == 0);
    bz.g = cg_new(busy_body, &bz, NULL);
    CHECK(bz.g != NULL);
    void *out;
    cg_exc *e;
    CHECK_EQ(cg_next(bz.g, &out, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)out, 10);
    CHECK_EQ(cg_send(bz.g, (void *)11, &out, &e), CG_RETURNED);
    CHECK_EQ((intptr_t)out, 12);
    CHECK(pthread_join(t, NULL) == 0);
    cg_free(bz.g);
}

/* ---------------------------------------------------------------------
 * An exception moves to another thread (never shared by two at once)
 * ------------------------------------------------------------------ */

static void *rethrow_body(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        CG_RAISE(&cg_KeyError, "local");
    } CG_EXCEPT(&cg_KeyError, k) {
        cg_yield(g, NULL); /* the thrown exception is chained to k here */
    } CG_END;
    return NULL;
}

static void *mover_thread(void *arg) {
    baton *b = arg;
    cg_exc *x = wait_for(b, 1);
    cg_gen *g = cg_new(rethrow_body, NULL, NULL);
    CHECK(g != NULL);
    void *out;
    cg_exc *e;
    CHECK_EQ(cg_next(g, &out, &e), CG_YIELDED);
    CHECK_EQ(cg_throw(g, x, &out, &e), CG_RAISED);
    CHECK_PTR(e, x); /* the same object came back out, now chained */
    CHECK_EXC(e, "ValueError('made on the main thread') <- KeyError('local')");
    cg_free(g);
    pass(b, 2, e); /* and back to its first thread */
    return NULL;
}

TEST(threads_exception_moves) {
    baton b;
    baton_init(&b);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, mover_thread, &b) == 0);
    int freed = atomic_load(&payloads_freed);
    cg_exc *x = cg_exc_new(&cg_ValueError, "made on the main thread");
    cg_exc_set_payload(x, NULL, count_free);
    pass(&b, 1, x);
    cg_exc *back = wait_for(&b, 2);
    CHECK(pthread_join(t, NULL) == 0);
    CHECK_PTR(back, x);
    CHECK_EXC(back, "ValueError('made on the main thread') <- KeyError('local')");
    CHECK_EQ(atomic_load(&payloads_freed), freed);
    cg_exc_unref(back);
    CHECK_EQ(atomic_load(&payloads_freed), freed + 1);
}

/* ---------------------------------------------------------------------
 * Stacks outlive their thread: an exiting thread's pool goes to the
 * shared cold pool, where other threads find them
 * ------------------------------------------------------------------ */

#define HANDOFF 12

typedef struct maker {
    long rounds;
    pthread_barrier_t *all_live; /* met with HANDOFF generators live, or NULL */
    size_t new_mappings;         /* made while creating the first batch */
} maker;

static void *idle_body(cg_gen *g, void *arg) {
    cg_yield(g, arg);
    return arg;
}

static void *make_and_free(void *arg) {
    maker *m = arg;
    cg_gen *gens[HANDOFF];
    for (long r = 0; r < m->rounds; r++) {
        cg_stack_stats before, after;
        cg_get_stack_stats(&before);
        for (int i = 0; i < HANDOFF; i++) {
            gens[i] = cg_new(idle_body, (void *)(intptr_t)i, NULL);
            CHECK(gens[i] != NULL);
            void *out;
            CHECK_EQ(cg_next(gens[i], &out, NULL), CG_YIELDED);
            CHECK_EQ((intptr_t)out, i);
        }
        if (r == 0) {
            cg_get_stack_stats(&after);
            m->new_mappings = after.mappings - before.mappings;
            if (m->all_live) pthread_barrier_wait(m->all_live);
        }
        for (int i = 0; i < HANDOFF; i++) cg_free(gens[i]);
    }
    return NULL;
}

TEST(threads_pool_handoff) {
    maker m0 = {scaled(50), NULL, 0};
    cg_stack_stats a, b;
    pthread_t t;
    CHECK(pthread_create(&t, NULL, make_and_free, &m0) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    cg_get_stack_stats(&a);
    CHECK_EQ(a.live, 0);
    /* Stacks carved from slabs (madvise guards, Linux 6.13+) go to the
     * shared pool for reuse; stacks with a mapping of their own (mprotect
     * guards) are unmapped, to give the mapping back. */
    int own_mappings = m0.new_mappings >= 2 * HANDOFF;
    CHECK_EQ(a.pooled, own_mappings ? 0 : HANDOFF);

    /* Two threads, each with HANDOFF generators live at the same moment:
     * the pooled stacks serve one batch, the other needs new ones. */
    pthread_barrier_t bar;
    pthread_barrier_init(&bar, NULL, 2);
    maker m1 = {scaled(50), &bar, 0}, m2 = {scaled(50), &bar, 0};
    pthread_t t1, t2;
    CHECK(pthread_create(&t1, NULL, make_and_free, &m1) == 0);
    CHECK(pthread_create(&t2, NULL, make_and_free, &m2) == 0);
    CHECK(pthread_join(t1, NULL) == 0);
    CHECK(pthread_join(t2, NULL) == 0);
    pthread_barrier_destroy(&bar);
    cg_get_stack_stats(&b);
    CHECK_EQ(b.live, 0);
    CHECK_EQ(b.pooled, own_mappings ? 0 : 2 * HANDOFF);
    printf("stacks %s; pooled after one thread: %zu, after two: %zu\n",
           own_mappings ? "with mappings of their own" : "carved from slabs", a.pooled, b.pooled);
}

static const check_case cases[] = {
    CASE(threads_parallel),       CASE(threads_foreign_resume),    CASE(threads_foreign_while_running),
    CASE(threads_exception_moves), CASE(threads_pool_handoff),
};
CHECK_MAIN(cases)
