/* test_exc_api.c: the exception object API on misuse and at its edges.
 *
 * CG_DEFER with a NULL function, reference cycles made through the context
 * and cause setters (and through raising an exception that the one being
 * handled links to), payload ownership (every destructor runs exactly
 * once, also when there is no exception to keep the payload), cg_exc_repr
 * without a buffer, a NULL type, the setters' documented answers, release
 * of long chains, and the names of statuses and states. */
#include "check.h"

/* Payloads that count their own destruction: each one must end at 1. */
static int destroyed[64];
static void destroy(void *p) { (*(int *)p)++; }

static void reset(void) { memset(destroyed, 0, sizeof destroyed); }

/* An exception whose release is counted in destroyed[i]. */
static cg_exc *counted(const cg_exc_type *t, const char *msg, int i) {
    cg_exc *e = cg_exc_new(t, msg);
    CHECK(!cg_exc_is(e, &cg_MemoryError));
    cg_exc_set_payload(e, &destroyed[i], destroy);
    return e;
}

static void check_destroyed(int n) {
    for (int i = 0; i < n; i++) CHECK_EQ(destroyed[i], 1);
    for (int i = n; i < (int)(sizeof destroyed / sizeof destroyed[0]); i++) CHECK_EQ(destroyed[i], 0);
}

/* Fresh counters and three counted exceptions: ValueError('a'),
 * KeyError('b'), TypeError('c') (destroyed[0..2]). */
static void fresh_abc(cg_exc **a, cg_exc **b, cg_exc **c) {
    reset();
    *a = counted(&cg_ValueError, "a", 0);
    *b = counted(&cg_KeyError, "b", 1);
    *c = counted(&cg_TypeError, "c", 2);
}

/* Releases a and b and checks that each was freed exactly once. */
static void drop_ab(cg_exc *a, cg_exc *b) {
    cg_exc_unref(a);
    cg_exc_unref(b);
    check_destroyed(2);
}

/* Releases a, b and c and checks that each was freed exactly once. */
static void drop_abc(cg_exc *a, cg_exc *b, cg_exc *c) {
    cg_exc_unref(a);
    cg_exc_unref(b);
    cg_exc_unref(c);
    check_destroyed(3);
}

static void count_run(void *p) { (*(int *)p)++; }

/* =====================================================================
 * CG_DEFER(NULL, arg): defers nothing, and its record comes off the chain
 * ================================================================== */

static void null_defer_scope(int *runs, int owned) {
    CG_DEFER(owned ? count_run : NULL, runs);
}

/* Left by falling off the end and by return: the records below it still
 * come off in order (an outer defer's exit checks that it is innermost),
 * and later raises walk a clean chain. */
TEST(excapi_defer_null_fn_scope) {
    int runs = 0;
    {
        CG_DEFER(count_run, &runs);
        null_defer_scope(&runs, 0);
        null_defer_scope(&runs, 1);
        null_defer_scope(&runs, 0);
        CHECK_EQ(runs, 1);
    }
    CHECK_EQ(runs, 2);
    for (int i = 0; i < 3; i++) {
        volatile int caught = 0;
        CG_TRY {
            null_defer_scope(&runs, 0);
            CG_RAISE(&cg_ValueError, "after");
        } CG_EXCEPT(&cg_ValueError, e) {
            CHECK_EXC(e, "ValueError('after')");
            caught = 1;
        } CG_END;
        CHECK(caught);
    }
    CHECK_EQ(runs, 2);
    CHECK_PTR(cg_exc_current(), NULL);
}

/* An exception passing through: the NULL defer is popped, the others run,
 * newest first. */
static int order[4], norder;
static void note(void *p) { order[norder++] = (int)(intptr_t)p; }

TEST(excapi_defer_null_fn_unwind) {
    volatile int caught = 0;
    CG_TRY {
        CG_DEFER(note, (void *)1);
        CG_DEFER(NULL, (void *)2);
        CG_DEFER(note, (void *)3);
        CG_RAISE(&cg_ValueError, "through");
    } CG_EXCEPT(&cg_ValueError, e) {
        CHECK_EXC(e, "ValueError('through')");
        caught = 1;
    } CG_END;
    CHECK(caught);
    CHECK_EQ(norder, 2);
    CHECK_EQ(order[0], 3);
    CHECK_EQ(order[1], 1);
    /* The chain is clean: a defer scope after it still pops in order. */
    int runs = 0;
    {
        CG_DEFER(count_run, &runs);
        null_defer_scope(&runs, 0);
    }
    CHECK_EQ(runs, 1);
}

/* In a generator: closing unwinds through the NULL defer (GeneratorExit),
 * and a generator whose body left such a scope still raises cleanly. */
static void *null_defer_body(cg_gen *g, void *arg) {
    int *runs = arg;
    null_defer_scope(runs, 0);
    CG_DEFER(count_run, runs);
    CG_DEFER(NULL, runs);
    cg_yield(g, (void *)1);
    CG_RAISE(&cg_KeyError, "body");
}

TEST(excapi_defer_null_fn_generator) {
    int runs = 0;
    void *v = NULL;
    cg_exc *e = NULL;
    cg_gen *g = cg_new(null_defer_body, &runs, NULL);
    CHECK(g);
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ(cg_close(g, NULL, &e), CG_RETURNED);
    CHECK_PTR(e, NULL);
    CHECK_EQ(runs, 1);
    cg_free(g);
    g = cg_new(null_defer_body, &runs, NULL);
    CHECK(g);
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ(cg_next(g, &v, &e), CG_RAISED);
    CHECK_EXC(e, "KeyError('body')");
    cg_exc_unref(e);
    CHECK_EQ(runs, 2);
    cg_free(g);
}

/* =====================================================================
 * No reference cycles through context and cause links
 * ================================================================== */

/* a.__context__ = b, then b.__context__ = a: the link from a back to b is
 * cut (Python's implicit chaining rule), and both are freed. */
TEST(excapi_context_cycle_cut) {
    reset();
    cg_exc *a = counted(&cg_ValueError, "a", 0), *b = counted(&cg_KeyError, "b", 1);
    cg_exc_set_context(a, b);
    cg_exc_set_context(b, a);
    CHECK_PTR(cg_exc_context(b), a);
    CHECK_PTR(cg_exc_context(a), NULL);
    drop_ab(a, b);

    /* Longer: a -> b -> c, then c -> a cuts b -> c. */
    cg_exc *c;
    fresh_abc(&a, &b, &c);
    cg_exc_set_context(a, b);
    cg_exc_set_context(b, c);
    cg_exc_set_context(c, a);
    CHECK_EXC(c, "TypeError('c') <- ValueError('a') <- KeyError('b')");
    cg_exc_unref(a);
    cg_exc_unref(b);
    CHECK_EQ(destroyed[0] + destroyed[1], 0);
    cg_exc_unref(c);
    check_destroyed(3);
}

/* Cycles through cause links: the cause and context links back are cut. */
TEST(excapi_cause_cycle_cut) {
    reset();
    cg_exc *a = counted(&cg_ValueError, "a", 0), *b = counted(&cg_KeyError, "b", 1);
    cg_exc_set_cause(a, b); /* a -> b, both links */
    cg_exc_set_cause(b, a); /* cuts both links of a */
    CHECK_PTR(cg_exc_cause(b), a);
    CHECK_PTR(cg_exc_context(b), a);
    CHECK_PTR(cg_exc_cause(a), NULL);
    CHECK_PTR(cg_exc_context(a), NULL);
    drop_ab(a, b);

    /* A cause link alone leads back: a -context-> c -cause-> b, then
     * b -context-> a cuts c's cause (not only context links count). */
    cg_exc *c;
    fresh_abc(&a, &b, &c);
    cg_exc_set_cause(c, b);
    cg_exc_set_context(c, NULL); /* c keeps only its cause link to b */
    CHECK_PTR(cg_exc_cause(c), b);
    cg_exc_set_context(a, c);
    cg_exc_set_context(b, a);
    CHECK_PTR(cg_exc_context(b), a);
    CHECK_PTR(cg_exc_context(a), c);
    CHECK_PTR(cg_exc_cause(c), NULL);
    drop_abc(a, b, c);

    /* The same through cg_exc_set_cause. */
    fresh_abc(&a, &b, &c);
    cg_exc_set_cause(c, b);
    cg_exc_set_context(c, NULL);
    cg_exc_set_context(a, c);
    cg_exc_set_cause(b, a);
    CHECK_PTR(cg_exc_cause(b), a);
    CHECK_PTR(cg_exc_cause(c), NULL);
    drop_abc(a, b, c);
}

/* An exception borrowed from the very link that is cut stays valid during
 * the call (and is freed at its end if nothing else holds it). */
TEST(excapi_cycle_borrowed_target) {
    reset();
    cg_exc *a = counted(&cg_ValueError, "a", 0), *b = counted(&cg_KeyError, "b", 1);
    cg_exc_set_context(a, b);
    cg_exc_unref(b);
    b = cg_exc_context(a); /* borrowed: a's link is its only owner */
    cg_exc_set_context(b, a); /* cuts a -> b: b is freed at the end */
    CHECK_EQ(destroyed[1], 1);
    CHECK_PTR(cg_exc_context(a), NULL);
    CHECK_EQ(destroyed[0], 0);
    cg_exc_unref(a);
    check_destroyed(2);
}

/* Raising s while handling h, where h links to s through its cause: the
 * implicit chaining cuts h's links to s (context and cause). */
TEST(excapi_raise_cuts_cause_cycle) {
    reset();
    cg_exc *s = counted(&cg_ValueError, "s", 0);
    cg_exc *h = counted(&cg_KeyError, "h", 1);
    cg_exc_set_cause(h, s);
    volatile int caught = 0;
    CG_TRY {
        CG_TRY {
            cg_raise(h);
        } CG_EXCEPT(&cg_KeyError, k) {
            CHECK_PTR(cg_exc_cause(k), s);
            cg_raise(s);
        } CG_END;
    } CG_EXCEPT(&cg_ValueError, v) {
        CHECK_PTR(v, s);
        CHECK_EXC(v, "ValueError('s') <- KeyError('h')");
        CHECK_PTR(cg_exc_cause(cg_exc_context(v)), NULL);
        caught = 1;
    } CG_END;
    CHECK(caught);
    check_destroyed(2);
}

/* The walk that looks for links back visits each exception once: a graph
 * where every level links to both exceptions of the next has 2^N paths
 * but 2N objects. */
#define LADDER 60
TEST(excapi_link_walk_bounded) {
    reset();
    cg_exc *n[LADDER], *m[LADDER];
    for (int i = 0; i < LADDER; i++) {
        n[i] = cg_exc_new(&cg_ValueError, "n");
        m[i] = cg_exc_new(&cg_KeyError, "m");
    }
    cg_exc_set_payload(n[LADDER - 1], &destroyed[0], destroy);
    for (int i = LADDER - 2; i >= 0; i--) {
        cg_exc_set_cause(n[i], m[i + 1]);
        cg_exc_set_context(n[i], n[i + 1]);
        cg_exc_set_cause(m[i], n[i + 1]);
        cg_exc_set_context(m[i], m[i + 1]);
    }
    cg_exc *top = counted(&cg_TypeError, "top", 1);
    cg_exc_set_context(top, n[0]);
    /* Closing the loop at the bottom cuts both links into it. */
    cg_exc_set_context(n[LADDER - 1], top);
    CHECK_PTR(cg_exc_context(n[LADDER - 2]), NULL);
    CHECK_PTR(cg_exc_cause(m[LADDER - 2]), NULL);
    for (int i = 0; i < LADDER; i++) {
        cg_exc_unref(n[i]);
        cg_exc_unref(m[i]);
    }
    CHECK_EQ(destroyed[0], 1); /* the bottom, held by nothing now */
    CHECK_EQ(destroyed[1], 0); /* top, still ours, holds the rest */
    cg_exc_unref(top);
    check_destroyed(2);
}

/* =====================================================================
 * Releasing a long chain takes no stack per link
 * ================================================================== */

#define CHAIN 100000
static int chain_freed;
static void chain_dtor(void *p) {
    (void)p;
    chain_freed++;
}

static void *release_body(cg_gen *g, void *arg) {
    (void)g;
    cg_exc_unref(arg);
    return NULL;
}

/* A chain of causes (contexts cleared) released on a 16 KiB stack. */
TEST(excapi_unref_long_cause_chain) {
    chain_freed = 0;
    cg_exc *top = cg_exc_new(&cg_ValueError, "top"), *cur = top;
    cg_exc_set_payload(top, NULL, chain_dtor);
    for (int i = 0; i < CHAIN; i++) {
        cg_exc *next = cg_exc_new(&cg_ValueError, "next");
        CHECK(!cg_exc_is(next, &cg_MemoryError));
        cg_exc_set_payload(next, NULL, chain_dtor);
        cg_exc_set_cause(cur, next);
        cg_exc_set_context(cur, NULL);
        cg_exc_unref(next);
        cur = next; /* borrowed: cur's link holds it */
    }
    CHECK_PTR(cg_exc_context(top), NULL);
    const cg_opts small = {CG_STACK_MIN, "release", 0};
    cg_gen *g = cg_new(release_body, top, &small);
    CHECK(g);
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(g, NULL, &e), CG_RETURNED);
    CHECK_EQ(chain_freed, CHAIN + 1);
    cg_free(g);
}

/* =====================================================================
 * Payloads: ownership passes, each destructor runs exactly once
 * ================================================================== */

TEST(excapi_payload_null_exc) {
    reset();
    cg_exc_set_payload(NULL, &destroyed[0], destroy); /* runs at once */
    CHECK_EQ(destroyed[0], 1);
    cg_exc_set_payload(NULL, &destroyed[1], NULL); /* nothing to run */
    CHECK_PTR(cg_exc_payload(NULL), NULL);
    check_destroyed(1);
}

TEST(excapi_payload_once) {
    reset();
    cg_exc *e = cg_exc_new(&cg_ValueError, "p");
    cg_exc_set_payload(e, &destroyed[0], destroy);
    cg_exc_set_payload(e, &destroyed[1], destroy); /* replaces: 0 runs */
    CHECK_EQ(destroyed[0], 1);
    CHECK_PTR(cg_exc_payload(e), &destroyed[1]);
    /* Setting the payload it already has keeps it (no destructor runs). */
    cg_exc_set_payload(e, &destroyed[1], destroy);
    CHECK_EQ(destroyed[1], 0);
    CHECK_PTR(cg_exc_payload(e), &destroyed[1]);
    /* A payload without a destructor replaced: nothing runs on it. */
    cg_exc_set_payload(e, &destroyed[2], NULL);
    CHECK_EQ(destroyed[1], 1);
    cg_exc_set_payload(e, &destroyed[3], destroy);
    CHECK_EQ(destroyed[2], 0);
    destroyed[2] = 1; /* (owned by the caller) */
    cg_exc *keep = cg_exc_ref(e);
    cg_exc_unref(e);
    CHECK_EQ(destroyed[3], 0);
    cg_exc_unref(keep);
    check_destroyed(4);
}

/* =====================================================================
 * cg_exc_repr without a buffer, a NULL type
 * ================================================================== */

TEST(excapi_repr_null_buf) {
    cg_exc *e = cg_exc_new(&cg_ValueError, "boom");
    size_t n = strlen("ValueError('boom')");
    CHECK_EQ(cg_exc_repr(e, NULL, 0), n);
    CHECK_EQ(cg_exc_repr(e, NULL, 16), n); /* a NULL buffer has size 0 */
    CHECK_EQ(cg_exc_repr(NULL, NULL, 16), 4);
    char buf[8];
    memset(buf, 'x', sizeof buf);
    CHECK_EQ(cg_exc_repr(e, buf, sizeof buf), n);
    CHECK_STR(buf, "ValueEr");
    CHECK_EQ(cg_exc_repr(e, buf, 0), n);
    CHECK_EQ(buf[0], 'V'); /* size 0: nothing written */
    cg_exc_unref(e);
}

TEST(excapi_new_null_type) {
    cg_exc *e = cg_exc_newf(NULL, "bad %d", 1);
    CHECK_EXC(e, "TypeError('exceptions must derive from BaseException')");
    cg_exc_unref(e);
    char big[600];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    e = cg_exc_newf(NULL, "%s", big); /* the long-message path */
    CHECK_EXC(e, "TypeError('exceptions must derive from BaseException')");
    cg_exc_unref(e);
    e = cg_exc_new(NULL, NULL);
    CHECK_EXC(e, "TypeError('exceptions must derive from BaseException')");
    cg_exc_unref(e);
    e = cg_exc_newf(&cg_ValueError, NULL); /* no format: Type() */
    CHECK_EXC(e, "ValueError()");
    CHECK_PTR(cg_exc_msg(e), NULL);
    cg_exc_unref(e);
    e = cg_exc_newf(&cg_ValueError, "%s", big);
    CHECK_EQ(strlen(cg_exc_msg(e)), sizeof big - 1);
    cg_exc_unref(e);
}

/* =====================================================================
 * The setters' documented answers
 * ================================================================== */

TEST(excapi_set_context) {
    reset();
    cg_exc *e = counted(&cg_ValueError, "e", 0);
    cg_exc *c = counted(&cg_KeyError, "c", 1), *d = counted(&cg_TypeError, "d", 2);
    cg_exc_set_context(e, c); /* takes its own reference */
    cg_exc_unref(c);
    CHECK_EQ(destroyed[1], 0);
    CHECK_EXC(e, "ValueError('e') <- KeyError('c')");
    CHECK_PTR(cg_exc_cause(e), NULL);
    cg_exc_set_context(e, d); /* replaces: c released */
    CHECK_EQ(destroyed[1], 1);
    CHECK_EXC(e, "ValueError('e') <- TypeError('d')");
    cg_exc_set_context(e, e); /* its own context: ignored */
    CHECK_PTR(cg_exc_context(e), d);
    cg_exc_set_context(e, NULL); /* NULL clears */
    CHECK_PTR(cg_exc_context(e), NULL);
    CHECK_EQ(destroyed[2], 0); /* we still hold d */
    cg_exc_set_context(NULL, d); /* no exception: nothing happens */
    cg_exc_unref(d);
    CHECK_EQ(destroyed[2], 1);
    CHECK_PTR(cg_exc_context(NULL), NULL);
    cg_exc_unref(e);
    check_destroyed(3);
}

TEST(excapi_set_cause) {
    reset();
    cg_exc *e = counted(&cg_RuntimeError, "e", 0);
    cg_exc *c = counted(&cg_KeyError, "c", 1), *h = counted(&cg_TypeError, "h", 2);
    cg_exc_set_context(e, h);
    cg_exc_set_cause(e, c); /* raise e from c: the context is c too */
    CHECK_PTR(cg_exc_cause(e), c);
    CHECK_PTR(cg_exc_context(e), c);
    CHECK_EQ(destroyed[2], 0);
    cg_exc_unref(h); /* the old context was released by e */
    CHECK_EQ(destroyed[2], 1);
    cg_exc_unref(c);
    CHECK_EQ(destroyed[1], 0);
    cg_exc_set_cause(e, e); /* its own cause: ignored */
    CHECK_PTR(cg_exc_cause(e), c);
    /* Raised while handling another: the context changes, the cause stays. */
    volatile int caught = 0;
    cg_exc *r = cg_exc_ref(e);
    CG_TRY {
        CG_TRY {
            CG_RAISE(&cg_OSError, "handled");
        } CG_EXCEPT(&cg_OSError, o) {
            (void)o;
            cg_raise(r);
        } CG_END;
    } CG_EXCEPT(&cg_RuntimeError, x) {
        CHECK_PTR(cg_exc_cause(x), c);
        CHECK_EXC(x, "RuntimeError('e') <- OSError('handled')");
        caught = 1;
    } CG_END;
    CHECK(caught);
    CHECK_EQ(destroyed[1], 0);
    cg_exc_set_cause(e, NULL); /* NULL clears the cause and the context */
    CHECK_PTR(cg_exc_cause(e), NULL);
    CHECK_PTR(cg_exc_context(e), NULL);
    CHECK_EQ(destroyed[1], 1);
    cg_exc_set_cause(NULL, e); /* no exception: nothing happens */
    cg_exc_unref(e);
    check_destroyed(3);
}

/* =====================================================================
 * Names of statuses and states
 * ================================================================== */

TEST(excapi_status_state_names) {
    CHECK_STR(cg_status_name(CG_YIELDED), "CG_YIELDED");
    CHECK_STR(cg_status_name(CG_RETURNED), "CG_RETURNED");
    CHECK_STR(cg_status_name(CG_RAISED), "CG_RAISED");
    CHECK_STR(cg_status_name((cg_status)3), "?");
    CHECK_STR(cg_status_name((cg_status)-1), "?");
    CHECK_STR(cg_state_name(CG_GEN_CREATED), "GEN_CREATED");
    CHECK_STR(cg_state_name(CG_GEN_SUSPENDED), "GEN_SUSPENDED");
    CHECK_STR(cg_state_name(CG_GEN_RUNNING), "GEN_RUNNING");
    CHECK_STR(cg_state_name(CG_GEN_CLOSED), "GEN_CLOSED");
    CHECK_STR(cg_state_name((cg_state)4), "?");
    CHECK_STR(cg_state_name((cg_state)-1), "?");
}

/* issubclass with a NULL on either side: 0. */
TEST(excapi_type_is_null) {
    CHECK_EQ(cg_type_is(NULL, &cg_Exception), 0);
    CHECK_EQ(cg_type_is(&cg_ValueError, NULL), 0);
    CHECK_EQ(cg_type_is(NULL, NULL), 0);
    CHECK_EQ(cg_exc_is(NULL, &cg_Exception), 0);
    cg_exc *e = cg_exc_new(&cg_KeyError, NULL);
    CHECK_EQ(cg_exc_is(e, NULL), 0);
    CHECK_EQ(cg_exc_is(e, &cg_LookupError), 1);
    cg_exc_unref(e);
}

/* =====================================================================
 * `raise e` inside `except E as e`: cg_raise with CG_EXCEPT's borrowed e
 * ================================================================== */

/* The handler's e is raised on: it is the same object outside, still
 * alive, with its context (the KeyError it was raised during), and it is
 * freed exactly once in the end. */
TEST(excapi_raise_borrowed_handled) {
    reset();
    cg_exc *volatile outer = NULL;
    CG_TRY {
        CG_TRY {
            CG_TRY {
                cg_raise(counted(&cg_KeyError, "k", 0));
            } CG_EXCEPT(&cg_KeyError, k) {
                cg_raise(counted(&cg_ValueError, "v", 1));
            } CG_END;
        } CG_EXCEPT(&cg_ValueError, e) {
            cg_raise(e); /* borrowed: the handler's reference */
        } CG_END;
    } CG_EXCEPT(&cg_ValueError, e) {
        outer = cg_exc_ref(e);
        CHECK_EXC(e, "ValueError('v') <- KeyError('k')"); /* with its context */
        CHECK_EQ(destroyed[1], 0);
    } CG_END;
    CHECK(outer != NULL);
    check_destroyed(0);
    cg_exc_unref(outer);
    check_destroyed(2);
}

/* With a reference of its own (cg_raise(cg_exc_ref(e))), nothing changes:
 * the reference given is the one consumed. */
TEST(excapi_raise_owned_handled) {
    reset();
    CG_TRY {
        CG_TRY {
            cg_raise(counted(&cg_ValueError, "v", 0));
        } CG_EXCEPT(&cg_ValueError, e) {
            cg_raise(cg_exc_ref(e));
        } CG_END;
    } CG_EXCEPT(&cg_ValueError, e) {
        CHECK_EXC(e, "ValueError('v')");
    } CG_END;
    check_destroyed(1);
}

/* `except None:` raises TypeError while the exception is being handled
 * (it becomes the context); later clauses are not tried. */
TEST(excapi_except_null_type) {
    reset();
    volatile int later = 0, outer = 0;
    CG_TRY {
        CG_TRY {
            cg_raise(counted(&cg_ValueError, "v", 0));
        } CG_EXCEPT(NULL, e) {
            CHECK(0); /* never entered */
        } CG_EXCEPT(&cg_ValueError, e) {
            later = 1;
        } CG_END;
    } CG_EXCEPT(&cg_TypeError, e) {
        CHECK_EXC(e, "TypeError('catching classes that do not inherit from BaseException is not allowed') "
                     "<- ValueError('v')");
        outer = 1;
    } CG_END;
    CHECK_EQ(later, 0);
    CHECK_EQ(outer, 1);
    check_destroyed(1);
}

/* cg_propagate hands an exception on as Python propagates one out of a
 * call: the KeyError raised while its raiser handled a ValueError keeps
 * that context when it is raised on in a handler of a TypeError (in Python,
 * `def f(): try: raise ValueError except ValueError: raise KeyError`,
 * called in `except TypeError:`, gives KeyError <- ValueError <- TypeError);
 * cg_raise chains it to the TypeError directly, as `raise k` would. */
static void raise_in_handler(void *arg) {
    int i = *(int *)arg;
    CG_TRY {
        cg_raise(counted(&cg_ValueError, "v", i));
    } CG_EXCEPT(&cg_ValueError, e) {
        cg_raise(counted(&cg_KeyError, "k", i + 1));
    } CG_END;
}

static void propagate_null(void *arg) {
    (void)arg;
    cg_propagate(NULL);
}

TEST(excapi_propagate_keeps_context) {
    reset();
    volatile int seen = 0;
    CG_TRY {
        cg_raise(counted(&cg_TypeError, "t", 2));
    } CG_EXCEPT(&cg_TypeError, t) {
        static int first = 0, second = 3;
        cg_exc *k = cg_try_catch(raise_in_handler, &first, &cg_KeyError);
        CHECK_EXC(k, "KeyError('k') <- ValueError('v') <- TypeError('t')");
        CG_TRY {
            cg_propagate(k);
        } CG_EXCEPT(&cg_KeyError, e) {
            CHECK_EXC(e, "KeyError('k') <- ValueError('v') <- TypeError('t')");
            seen = 1;
        } CG_END;
        k = cg_try_catch(raise_in_handler, &second, &cg_KeyError);
        CG_TRY {
            cg_raise(k);
        } CG_EXCEPT(&cg_KeyError, e) {
            CHECK_EXC(e, "KeyError('k') <- TypeError('t')");
            seen++;
        } CG_END;
    } CG_END;
    CHECK_EQ(seen, 2);
    check_destroyed(5);
    cg_exc *e = cg_try_catch(propagate_null, NULL, &cg_TypeError);
    CHECK_EXC(e, "TypeError('exceptions must derive from BaseException')");
    cg_exc_unref(e);
}

static const check_case cases[] = {
    CASE(excapi_propagate_keeps_context),
    CASE(excapi_raise_borrowed_handled),
    CASE(excapi_raise_owned_handled),
    CASE(excapi_except_null_type),
    CASE(excapi_defer_null_fn_scope),
    CASE(excapi_defer_null_fn_unwind),
    CASE(excapi_defer_null_fn_generator),
    CASE(excapi_context_cycle_cut),
    CASE(excapi_cause_cycle_cut),
    CASE(excapi_cycle_borrowed_target),
    CASE(excapi_raise_cuts_cause_cycle),
    CASE(excapi_link_walk_bounded),
    CASE(excapi_unref_long_cause_chain),
    CASE(excapi_payload_null_exc),
    CASE(excapi_payload_once),
    CASE(excapi_repr_null_buf),
    CASE(excapi_new_null_type),
    CASE(excapi_set_context),
    CASE(excapi_set_cause),
    CASE(excapi_status_state_names),
    CASE(excapi_type_is_null),
};

CHECK_MAIN(cases)
