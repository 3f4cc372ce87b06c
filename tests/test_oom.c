/* test_oom.c: running out of memory is an exception or an error code,
 * never a crash, a leak or a skipped cleanup.
 *
 * An allocator hook (cg_set_allocator) fails the Nth allocation made after
 * it is armed: once (the allocation after it succeeds again) or for good
 * (every allocation from the Nth on fails). Each workload runs with
 * N = 1, 2, 3, ... until a run completes without an injected failure; a
 * run without one must print exactly the trace of the reference run. After
 * every run:
 *   - an injected failure must have been seen: a MemoryError somewhere (a
 *     status, a handler, a context or cause chain, the unraisable hook), or
 *     cg_new returning NULL with errno ENOMEM;
 *   - no generator is left (stack stats: live == 0), every CG_DEFER ran and
 *     every payload destructor ran;
 *   - every block allocated through the hook has been freed once cg_trim
 *     has given back what the thread keeps for reuse (handles, exceptions;
 *     stack pools and stacks do not come from the allocator).
 *     At the end a thread runs the workloads and exits: what it kept must
 *     be freed with it.
 * The hook is tests/oom_hook.h.
 */
#define _GNU_SOURCE
#include "check.h"
#include "oom_hook.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>

/* ---------------------------------------------------------------------
 * What a workload saw
 * ------------------------------------------------------------------ */

static struct {
    int memory_error; /* a MemoryError was seen somewhere */
    int enomem;       /* cg_new returned NULL with ENOMEM */
    int unraisable;   /* calls of the unraisable hook */
} seen;

static char trace[4096];
static size_t trace_len;

static void tr(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(trace + trace_len, sizeof trace - trace_len, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof trace - trace_len);
    trace_len += (size_t)n;
}

/* Looks for MemoryError in e and everything it is chained to. */
static void note(const cg_exc *e) {
    for (int depth = 0; e && depth < 64; depth++, e = cg_exc_context(e)) {
        if (cg_exc_is(e, &cg_MemoryError)) seen.memory_error = 1;
        if (cg_exc_cause(e) && cg_exc_cause(e) != cg_exc_context(e)) note(cg_exc_cause(e));
    }
}

static void on_unraisable(cg_exc *e, cg_gen *g, void *ud) {
    (void)g;
    (void)ud;
    seen.unraisable++;
    note(e);
    tr("unraisable %s;", check_exc(e));
}

/* Resources held through CG_DEFER and payloads: plain malloc, counted, so
 * that a cleanup that did not run shows up. */
static long res_live, payload_live;

static void *res_new(void) {
    res_live++;
    return malloc(1);
}
static void res_free(void *p) {
    res_live--;
    free(p);
}
static void payload_free(void *p) {
    payload_live--;
    free(p);
}
static void attach_payload(cg_exc *e, int value) {
    int *p = malloc(sizeof *p);
    CHECK(p != NULL);
    *p = value;
    payload_live++;
    cg_exc_set_payload(e, p, payload_free); /* runs payload_free at once on the shared MemoryError */
}

static cg_gen *new_gen(cg_fn fn, const char *name) {
    cg_opts o = {0, name, 0};
    errno = 0;
    cg_gen *g = cg_new(fn, NULL, &o);
    if (!g) {
        CHECK_EQ(errno, ENOMEM);
        seen.enomem = 1;
        tr("%s: ENOMEM;", name);
    }
    return g;
}

/* The outcome of one resumption: traces it; returns 1 while the generator
 * may go on. The do_ functions trace what they do first, so that what the
 * body traces comes in between. */
static int step(cg_status st, void *v, cg_exc *e) {
    if (st == CG_YIELDED) {
        CHECK(e == NULL);
        tr("Y%ld;", (long)(intptr_t)v);
        return 1;
    }
    if (st == CG_RETURNED) {
        CHECK(e == NULL);
        tr("R%ld;", (long)(intptr_t)v);
        return 0;
    }
    CHECK_EQ(st, CG_RAISED);
    CHECK(e != NULL);
    note(e);
    tr("E %s;", check_exc(e));
    cg_exc_unref(e);
    return 0;
}

static int do_next(cg_gen *g) {
    void *v;
    cg_exc *e;
    tr("next:");
    cg_status st = cg_next(g, &v, &e);
    return step(st, v, e);
}
static int do_send(cg_gen *g, intptr_t x) {
    void *v;
    cg_exc *e;
    tr("send:");
    cg_status st = cg_send(g, (void *)x, &v, &e);
    return step(st, v, e);
}
static int do_throw(cg_gen *g, cg_exc *x) {
    void *v;
    cg_exc *e;
    tr("throw:");
    cg_status st = cg_throw(g, x, &v, &e);
    return step(st, v, e);
}
static int do_close(cg_gen *g) {
    void *v;
    cg_exc *e;
    tr("close:");
    cg_status st = cg_close(g, &v, &e);
    return step(st, v, e);
}

CG_EXC_TYPE(AppError, cg_Exception);

/* ---------------------------------------------------------------------
 * Workload 1: the protocol (create, send, throw, close, free)
 * ------------------------------------------------------------------ */

static void *proto_body(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(res_free, res_new());
    intptr_t got = (intptr_t)cg_yield(g, (void *)1);
    tr("got %ld;", (long)got);
    CG_TRY {
        cg_yield(g, (void *)2);
    } CG_EXCEPT(&cg_ValueError, e) {
        tr("caught %s;", check_exc(e));
        cg_yield(g, (void *)3);
    } CG_END;
    CG_TRY {
        cg_yield(g, (void *)4);
    } CG_FINALLY {
        tr("finally;");
    } CG_END;
    return (void *)5;
}

static void w_proto(void) {
    cg_gen *g = new_gen(proto_body, "proto");
    if (g) {
        if (do_next(g) && do_send(g, 10) &&
            do_throw(g, cg_exc_new(&cg_ValueError, "bad value")) && do_next(g))
            do_close(g);
        tr("state %s;", cg_state_name(cg_gen_state(g)));
        cg_free(g);
    }
    /* Freed while suspended inside a try block: finalization closes it. */
    cg_gen *h = new_gen(proto_body, "finalized");
    if (h) {
        if (do_next(h)) do_send(h, 1);
        cg_free(h);
    }
    /* Freed before it ever ran, and after it finished. */
    cg_gen *c = new_gen(proto_body, "never-run");
    cg_free(c);
}

/* ---------------------------------------------------------------------
 * Workload 2: try/except with messages, payloads
 * ------------------------------------------------------------------ */

static const char long_text[] =
    "a message longer than the 256 bytes that cg_exc_newf formats on the stack, so that it takes the other "
    "path: format into a heap buffer first, then copy into the exception, then free the buffer; both of "
    "those allocations can fail, and each must come out as MemoryError........................................";

static void *msg_body(cg_gen *g, void *arg) {
    (void)arg;
    for (volatile int i = 0; i < 3; i++) {
        CG_TRY {
            if (i == 2) CG_RAISEF(&AppError, "%s", long_text);
            CG_RAISEF(&AppError, "attempt %d failed", i);
        } CG_EXCEPT(&AppError, e) {
            cg_yield(g, (void *)(intptr_t)strlen(cg_exc_msg(e)));
        } CG_END;
    }
    CG_TRY {
        cg_yield(g, (void *)100);
    } CG_EXCEPT(&cg_KeyError, e) {
        tr("payload %d;", *(int *)cg_exc_payload(e));
        CG_RAISEF(&cg_ValueError, "while handling %s", cg_exc_msg(e));
    } CG_END;
    return NULL;
}

static void w_messages(void) {
    cg_gen *g = new_gen(msg_body, "messages");
    if (!g) return;
    if (do_next(g) && do_next(g) && do_next(g) && do_next(g)) {
        cg_exc *k = cg_exc_new(&cg_KeyError, "k");
        attach_payload(k, 42);
        do_throw(g, k);
    }
    cg_free(g);
}

/* ---------------------------------------------------------------------
 * Workload 3: delegation chains (cg_yield_from_new, cg_yield_from)
 * ------------------------------------------------------------------ */

static void *leaf_body(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(res_free, res_new());
    cg_yield(g, (void *)1);
    cg_yield(g, (void *)2);
    return (void *)3;
}

static void *mid_body(cg_gen *g, void *arg) {
    (void)arg;
    volatile intptr_t r = 0;
    cg_opts o = {0, "leaf", 0};
    CG_TRY {
        r = (intptr_t)cg_yield_from_new(g, leaf_body, NULL, &o);
    } CG_EXCEPT(&cg_KeyError, e) {
        tr("mid caught %s;", check_exc(e));
        r = (intptr_t)cg_yield(g, (void *)99);
    } CG_END;
    return (void *)(r + 10);
}

static void free_gen(void *g) { cg_free(g); }

static void *top_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_opts o = {0, "mid", 0};
    intptr_t a = (intptr_t)cg_yield_from_new(g, mid_body, NULL, &o);
    cg_yield(g, (void *)a);
    intptr_t b = (intptr_t)cg_yield_from_new(g, mid_body, NULL, &o);
    cg_yield(g, (void *)b);
    cg_gen *sub = new_gen(leaf_body, "explicit-sub");
    if (!sub) CG_RAISE(&cg_MemoryError, "cg_new failed");
    CG_DEFER(free_gen, sub);
    return cg_yield_from(g, sub);
}

static void w_chain(void) {
    cg_gen *g = new_gen(top_body, "top");
    if (!g) return;
    if (do_next(g) && do_next(g) && do_next(g) && do_next(g) &&
        do_throw(g, cg_exc_new(&cg_KeyError, "into the chain")) && do_send(g, 5) &&
        do_next(g))
        do_close(g);
    cg_free(g);
}

/* ---------------------------------------------------------------------
 * Workload 4: context and cause chains
 * ------------------------------------------------------------------ */

/* Three nested handlers: ValueError('c') <- KeyError('b') <- AppError('a'). */
static void *nested_body(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        CG_RAISE(&AppError, "a");
    } CG_EXCEPT(&AppError, ea) {
        CG_TRY {
            CG_RAISE(&cg_KeyError, "b");
        } CG_EXCEPT(&cg_KeyError, eb) {
            cg_yield(g, (void *)1);
            CG_RAISE(&cg_ValueError, "c");
        } CG_END;
    } CG_END;
    return NULL;
}

/* A thrown exception is chained to the one being handled at the yield,
 * and a re-raise keeps it as it is. */
static void *rethrow_body(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        CG_RAISE(&AppError, "handled");
    } CG_EXCEPT(&AppError, e) {
        CG_TRY {
            cg_yield(g, (void *)2);
        } CG_EXCEPT(&cg_KeyError, k) {
            tr("rethrow caught %s;", check_exc(k));
            cg_reraise();
        } CG_END;
    } CG_END;
    return NULL;
}

/* A defer that raises while an exception unwinds replaces it, chained. */
static void raising_cleanup(void *arg) {
    (void)arg;
    CG_RAISE(&cg_OSError, "cleanup failed");
}

static void *defer_body(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(raising_cleanup, NULL);
    cg_yield(g, (void *)3);
    CG_RAISE(&cg_ValueError, "body failed");
}

/* PEP 479, with an explicit cause below the StopIteration. */
static void *stop_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, (void *)4);
    cg_exc *c = cg_exc_new(&cg_TypeError, "cause");
    cg_exc *s = cg_exc_new(&cg_StopIteration, "stop");
    cg_exc_set_cause(s, c);
    cg_exc_unref(c);
    cg_raise(s);
}

static void w_contexts(void) {
    cg_gen *g = new_gen(nested_body, "nested");
    if (g) {
        if (do_next(g)) do_next(g);
        cg_free(g);
    }
    g = new_gen(rethrow_body, "rethrow");
    if (g) {
        if (do_next(g)) do_throw(g, cg_exc_new(&cg_KeyError, "t"));
        cg_free(g);
    }
    g = new_gen(defer_body, "defer");
    if (g) {
        if (do_next(g)) do_next(g);
        cg_free(g);
    }
    g = new_gen(stop_body, "stop");
    if (g) {
        if (do_next(g)) do_next(g);
        cg_free(g);
    }
    /* Suspended in a handler, then freed: finalization's GeneratorExit is
     * chained to the exception being handled there. */
    g = new_gen(nested_body, "nested-freed");
    if (g) {
        do_next(g);
        cg_free(g);
    }
}

/* ---------------------------------------------------------------------
 * Workload 5: bodies that do not close quietly
 *
 * Under OOM, close() may throw MemoryError in place of GeneratorExit, and a
 * body that catches Exception then goes on: close() reports "generator
 * ignored GeneratorExit" and cg_free has to close it again, or discard it.
 * ------------------------------------------------------------------ */

static void *lenient_body(cg_gen *g, void *arg) {
    (void)arg;
    for (volatile int i = 0; i < 3; i++) {
        CG_TRY {
            cg_yield(g, (void *)(intptr_t)(10 + i));
        } CG_EXCEPT(&cg_Exception, e) {
            note(e);
            tr("lenient caught %s;", check_exc(e));
            cg_yield(g, (void *)(intptr_t)(20 + i));
        } CG_END;
    }
    return (void *)7;
}

/* Swallows GeneratorExit itself (what the header says never to do): its
 * stack is discarded by cg_free, with the records on it. */
static volatile int stubborn_forever = 1;
static void *stubborn_body(cg_gen *g, void *arg) {
    (void)arg;
    while (stubborn_forever) {
        CG_TRY {
            cg_yield(g, (void *)30);
        } CG_EXCEPT(&cg_BaseException, e) {
            note(e);
            tr("stubborn caught %s;", check_exc(e));
        } CG_END;
    }
    return NULL;
}

static void w_unruly(void) {
    cg_gen *g = new_gen(lenient_body, "lenient");
    if (g) {
        if (do_next(g)) do_close(g);
        cg_free(g);
    }
    g = new_gen(lenient_body, "lenient-freed");
    if (g) {
        do_next(g);
        cg_free(g);
    }
    g = new_gen(stubborn_body, "stubborn");
    if (g) {
        if (do_next(g) && !do_close(g)) tr("state %s;", cg_state_name(cg_gen_state(g)));
        cg_free(g);
    }
}

/* ---------------------------------------------------------------------
 * The sweep
 * ------------------------------------------------------------------ */

/* Blocks allocated through the hook that are still out. The library keeps
 * spare generator handles and exception objects for reuse; cg_trim gives
 * them back, and then nothing made through the hook may remain (pools and
 * stack descriptors are the library's own bookkeeping, made with malloc
 * whatever the allocator). */
static long kept(void) {
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    CHECK_EQ(st.live, 0);
    cg_trim();
    return hk.live;
}

typedef struct workload {
    const char *name;
    void (*fn)(void);
} workload;

static const workload workloads[] = {
    {"protocol", w_proto},
    {"messages", w_messages},
    {"chain", w_chain},
    {"contexts", w_contexts},
    {"unruly", w_unruly},
};

static long run_once(const workload *w) {
    memset(&seen, 0, sizeof seen);
    trace_len = 0;
    trace[0] = '\0';
    w->fn();
    CHECK_EQ(res_live, 0);
    CHECK_EQ(payload_live, 0);
    return kept();
}

/* Returns how many runs it took. */
static long sweep(const workload *w, int persistent, const char *expected_trace, long base) {
    for (long n = 1;; n++) {
        arm(n, persistent);
        long k = run_once(w);
        long injected = hk.injected, count = hk.count;
        disarm();
        if (k != base) {
            fprintf(stderr, "%s, failing allocation %ld%s: %ld blocks leaked\ntrace: %s\n", w->name, n,
                    persistent ? " and after" : "", k - base, trace);
            abort();
        }
        if (!injected) {
            if (strcmp(trace, expected_trace) != 0) {
                fprintf(stderr, "%s: a run without failure differs from the reference\n got: %s\nwant: %s\n",
                        w->name, trace, expected_trace);
                abort();
            }
            CHECK_EQ(seen.memory_error, 0);
            CHECK_EQ(seen.enomem, 0);
            return n;
        }
        if (getenv("COGEN_OOM_VERBOSE"))
            printf("%s N=%ld%s: %s%s%s\n", w->name, n, persistent ? "+" : "", seen.memory_error ? "MemoryError " : "",
                   seen.enomem ? "ENOMEM " : "", trace);
        /* A failure must surface, unless the library fully made up for it:
         * close() falls back to a preallocated GeneratorExit, and then the
         * run goes exactly as without the failure. */
        if (!seen.memory_error && !seen.enomem && strcmp(trace, expected_trace) != 0) {
            fprintf(stderr, "%s, failing allocation %ld%s (of %ld): the failure went unseen\ntrace: %s\n", w->name,
                    n, persistent ? " and after" : "", count, trace);
            abort();
        }
        CHECK(n < 10000);
    }
}

static const char *const reference[] = {
    /* protocol */
    "next:Y1;send:got 10;Y2;throw:caught ValueError('bad value');Y3;next:Y4;close:finally;R0;state GEN_CLOSED;"
    "next:Y1;send:got 1;Y2;",
    /* messages */
    "next:Y16;next:Y16;next:Y306;next:Y100;throw:payload 42;E ValueError('while handling k') <- KeyError('k');",
    /* chain */
    "next:Y1;next:Y2;next:Y13;next:Y1;throw:mid caught KeyError('into the chain');Y99;send:Y15;next:Y1;close:R0;",
    /* contexts */
    "next:Y1;next:E ValueError('c') <- KeyError('b') <- AppError('a');"
    "next:Y2;throw:rethrow caught KeyError('t') <- AppError('handled');E KeyError('t') <- AppError('handled');"
    "next:Y3;next:E OSError('cleanup failed') <- ValueError('body failed');"
    "next:Y4;next:E RuntimeError('generator raised StopIteration') <- StopIteration('stop') <- TypeError('cause');"
    "next:Y1;",
    /* unruly */
    "next:Y10;close:R0;next:Y10;"
    "next:Y30;close:stubborn caught GeneratorExit();E RuntimeError('generator ignored GeneratorExit');"
    "state GEN_SUSPENDED;stubborn caught GeneratorExit();unraisable RuntimeError('generator ignored GeneratorExit');",
};

static void setup(void) {
    cg_set_allocator(hook_alloc, hook_free, &hk);
    cg_set_unraisable_hook(on_unraisable, NULL);
}

static long warm_up(void) {
    /* Makes the thread's pool and pools as many stacks as the workloads use
     * at once, then checks the reference traces. */
    long base = -1;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
        long k = run_once(&workloads[i]);
        if (strcmp(trace, reference[i]) != 0) {
            fprintf(stderr, "%s: reference trace differs\n got: %s\nwant: %s\n", workloads[i].name, trace,
                    reference[i]);
            abort();
        }
        base = k;
    }
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) CHECK_EQ(run_once(&workloads[i]), base);
    CHECK_EQ(base, 0);
    return base;
}

static void sweep_all(int persistent) {
    setup();
    long base = warm_up();
    long runs = 0;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
        long n = sweep(&workloads[i], persistent, reference[i], base);
        printf("%-9s %s: %ld runs\n", workloads[i].name, persistent ? "fail from N on" : "fail the Nth", n);
        /* Every workload allocates (handles and short exceptions are
         * recycled, so some reach the allocator only a few times). */
        CHECK(n > 1);
        runs += n;
    }
    printf("%ld runs, %ld allocations, %ld frees, %ld blocks kept\n", runs, hk.allocs, hk.frees, hk.live);
}

TEST(oom_fail_nth) { sweep_all(0); }
TEST(oom_fail_from_nth) { sweep_all(1); }

/* The hook itself: a failure it injects is seen by the library as out of
 * memory (guards against a hook that never fails anything). */
TEST(oom_hook_bites) {
    setup();
    long live = hk.live;
    arm(1, 1);
    errno = 0;
    CHECK(cg_new(proto_body, NULL, NULL) == NULL);
    CHECK_EQ(errno, ENOMEM);
    cg_exc *e = cg_exc_new(&cg_ValueError, "x");
    CHECK(cg_exc_is(e, &cg_MemoryError));
    cg_exc_unref(e);
    CHECK(hk.injected >= 2);
    disarm();
    CHECK_EQ(hk.live, live);
}

/* A thread's spares are freed when the thread ends; its stacks stay pooled
 * for other threads (and are counted). */
static void *thread_workloads(void *arg) {
    (void)arg;
    for (size_t i = 0; i < sizeof workloads / sizeof workloads[0]; i++) {
        run_once(&workloads[i]);
        CHECK_STR(trace, reference[i]);
    }
    return NULL;
}

TEST(oom_thread_exit_frees_pool) {
    setup();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_workloads, NULL) == 0);
    CHECK(pthread_join(t, NULL) == 0);
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    CHECK_EQ(st.live, 0);
    CHECK_EQ(hk.live, 0); /* what it kept for reuse went with it */
    /* Its slab stacks stay pooled, for other threads (stacks with mappings of
     * their own are unmapped): the main thread can pick them up. */
    long before = (long)st.pooled;
    CHECK_EQ(run_once(&workloads[2]), 0);
    cg_get_stack_stats(&st);
    CHECK((long)st.pooled <= before + 1);
}

/* A thread's first generator also makes the thread's stack pool: a
 * failure there is ENOMEM too, and the next cg_new tries again. Each run
 * is a fresh thread, so the pool is made (or not) every time. */
static long fresh_n;
static void *fresh_thread(void *arg) {
    const workload *w = arg;
    arm(fresh_n, 0);
    memset(&seen, 0, sizeof seen);
    trace_len = 0;
    trace[0] = '\0';
    w->fn();
    disarm();
    CHECK_EQ(res_live, 0);
    CHECK_EQ(payload_live, 0);
    return NULL;
}

TEST(oom_fresh_thread) {
    setup();
    for (fresh_n = 1;; fresh_n++) {
        pthread_t t;
        CHECK(pthread_create(&t, NULL, fresh_thread, (void *)&workloads[0]) == 0);
        CHECK(pthread_join(t, NULL) == 0);
        cg_stack_stats st;
        cg_get_stack_stats(&st);
        CHECK_EQ(st.live, 0);
        CHECK_EQ(hk.live, 0); /* what the thread kept for reuse went with it */
        if (!hk.injected) {
            CHECK_STR(trace, reference[0]);
            break;
        }
        CHECK(seen.memory_error || seen.enomem);
    }
    printf("fresh threads: %ld runs\n", fresh_n);
    CHECK(fresh_n > 1);
}

static const check_case cases[] = {
    CASE(oom_fail_nth),
    CASE(oom_fail_from_nth),
    CASE(oom_hook_bites),
    CASE(oom_thread_exit_frees_pool),
    CASE(oom_fresh_thread),
};
CHECK_MAIN(cases)
