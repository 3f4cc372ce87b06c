/* test_misuse.c: every way of misusing the API gets a defined answer, and
 * each answer has a test here. The answers are the ones include/cogen.h
 * documents; where Python has the same misuse (resuming a running or closed
 * generator, throw(None), yield from None, a bare raise with nothing being
 * handled), the type and message are Python's, checked with python3 3.11.7.
 */
#define _XOPEN_SOURCE 700
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define I(n) ((void *)(intptr_t)(n))

/* An exception that counts its own release, to check who consumed it. */
static int released;
static void count_release(void *p) {
    (void)p;
    released++;
}

static cg_exc *tracked(const cg_exc_type *t, const char *msg) {
    cg_exc *e = cg_exc_new(t, msg);
    cg_exc_set_payload(e, NULL, count_release);
    return e;
}

static size_t live_stacks(void) {
    cg_stack_stats s;
    cg_get_stack_stats(&s);
    return s.live;
}

static cg_gen *mk(cg_fn fn, void *arg) {
    cg_gen *g = cg_new(fn, arg, NULL);
    CHECK(g != NULL);
    return g;
}

/* A log of what bodies and cleanups did, in order. */
static char trail[512];
static void note(const char *s) {
    if (trail[0]) strcat(trail, ",");
    strcat(trail, s);
}
static void note_defer(void *s) { note(s); }

/* yield 1, yield 2, return 3; "finally" when it ends by an exception. */
static void *counter(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        cg_yield(g, I(1));
        cg_yield(g, I(2));
    } CG_EXCEPT(&cg_BaseException, e) {
        note("finally");
        cg_reraise();
    } CG_END;
    return I(3);
}

/* =====================================================================
 * NULL generators
 * ================================================================== */

/* cg_send(NULL, ...): TypeError; out and exc may be NULL. */
TEST(misuse_send_null) {
    void *v = I(9);
    cg_exc *e = NULL;
    CHECK_EQ(cg_send(NULL, I(1), &v, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_TypeError));
    cg_exc_unref(e);
    CHECK_EQ(cg_send(NULL, NULL, NULL, NULL), CG_RAISED);
}

/* cg_next(NULL, ...): TypeError; out and exc may be NULL. */
TEST(misuse_next_null) {
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(NULL, NULL, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_TypeError));
    CHECK_STR(cg_exc_msg(e), "cg_next() argument must be a generator, not NULL");
    cg_exc_unref(e);
    CHECK_EQ(cg_next(NULL, NULL, NULL), CG_RAISED);
}

/* cg_throw(NULL, e, ...): TypeError, and e is consumed all the same. */
TEST(misuse_throw_null) {
    released = 0;
    cg_exc *e = NULL;
    CHECK_EQ(cg_throw(NULL, tracked(&cg_ValueError, "x"), NULL, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_TypeError));
    CHECK_EQ(released, 1);
    cg_exc_unref(e);
    CHECK_EQ(cg_throw(NULL, tracked(&cg_ValueError, "y"), NULL, NULL), CG_RAISED);
    CHECK_EQ(released, 2);
}

/* cg_close(NULL, ...): TypeError; retval and exc may be NULL. */
TEST(misuse_close_null) {
    cg_exc *e = NULL;
    CHECK_EQ(cg_close(NULL, NULL, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_TypeError));
    cg_exc_unref(e);
    CHECK_EQ(cg_close(NULL, NULL, NULL), CG_RAISED);
}

/* cg_iter_next(NULL): raises the TypeError (it raises what it gets). */
TEST(misuse_iter_next_null) {
    volatile int caught = 0;
    CG_TRY {
        cg_iter_next(NULL, NULL);
    } CG_EXCEPT(&cg_TypeError, e) {
        caught = 1;
    } CG_END;
    CHECK(caught);
}

/* cg_gen_state(NULL) reads as closed; cg_free(NULL) does nothing; the
 * other introspection functions answer as for nothing. */
TEST(misuse_state_null) {
    CHECK_EQ(cg_gen_state(NULL), CG_GEN_CLOSED);
    cg_free(NULL);
    CHECK(cg_gen_yieldfrom(NULL) == NULL);
    CHECK(cg_gen_arg(NULL) == NULL);
    CHECK_STR(cg_gen_name(NULL), "generator");
}

/* =====================================================================
 * NULL exceptions
 * ================================================================== */

/* throw(None): TypeError with Python's message, in every state, and the
 * generator is untouched: it goes on exactly as before. */
static void *throw_none_self(cg_gen *g, void *arg) {
    (void)arg;
    cg_exc *e = NULL;
    CHECK_EQ(cg_throw(g, NULL, NULL, &e), CG_RAISED); /* running: the argument is checked first */
    CHECK_EXC(e, "TypeError('exceptions must be classes or instances deriving from BaseException, not NoneType')");
    cg_exc_unref(e);
    CHECK_EQ(cg_gen_state(g), CG_GEN_RUNNING);
    cg_yield(g, I(1));
    return NULL;
}

TEST(misuse_throw_none) {
    const char *msg = "TypeError('exceptions must be classes or instances deriving from BaseException, not NoneType')";
    cg_gen *g = mk(counter, NULL);
    void *v = I(9);
    cg_exc *e = NULL;
    trail[0] = '\0';

    CHECK_EQ(cg_throw(g, NULL, &v, &e), CG_RAISED); /* created */
    CHECK_EXC(e, msg);
    cg_exc_unref(e);
    CHECK_EQ(cg_gen_state(g), CG_GEN_CREATED);
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 1);

    CHECK_EQ(cg_throw(g, NULL, &v, &e), CG_RAISED); /* suspended */
    CHECK_EXC(e, msg);
    cg_exc_unref(e);
    CHECK_EQ(cg_gen_state(g), CG_GEN_SUSPENDED);
    CHECK_STR(trail, ""); /* nothing was raised in the body */
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    CHECK_EQ(cg_next(g, &v, &e), CG_RETURNED);

    CHECK_EQ(cg_throw(g, NULL, &v, &e), CG_RAISED); /* closed */
    CHECK_EXC(e, msg);
    cg_exc_unref(e);
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    CHECK_EQ(cg_throw(g, NULL, NULL, NULL), CG_RAISED);
    cg_free(g);

    g = mk(throw_none_self, NULL);
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 1);
    cg_free(g);
}

/* cg_raise(NULL) raises TypeError; cg_exc_new(NULL, ...) makes one. */
TEST(misuse_raise_null) {
    volatile int caught = 0;
    CG_TRY {
        cg_raise(NULL);
    } CG_EXCEPT(&cg_TypeError, e) {
        caught = 1;
    } CG_END;
    CHECK(caught);
    cg_exc *e = cg_exc_new(NULL, "x");
    CHECK(cg_exc_is(e, &cg_TypeError));
    cg_exc_unref(e);
    cg_exc_unref(NULL);
    CHECK(cg_exc_ref(NULL) == NULL);
    CHECK(!cg_exc_is(NULL, &cg_BaseException));
}

/* A bare raise with nothing being handled: RuntimeError('No active
 * exception to reraise'), as Python, on the main stack and in a body. */
static void *reraise_body(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_reraise();
}

TEST(misuse_reraise_nothing) {
    char *volatile got = NULL;
    static char buf[128];
    CG_TRY {
        cg_reraise();
    } CG_EXCEPT(&cg_RuntimeError, e) {
        cg_exc_repr(e, buf, sizeof buf);
        got = buf;
    } CG_END;
    CHECK_STR(got, "RuntimeError('No active exception to reraise')");
    cg_gen *g = mk(reraise_body, NULL);
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(g, NULL, &e), CG_RAISED);
    CHECK_EXC(e, "RuntimeError('No active exception to reraise')");
    cg_exc_unref(e);
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    cg_free(g);
}

/* =====================================================================
 * Resuming in the wrong state
 * ================================================================== */

/* A generator resuming itself from its own body: every entry point gives
 * ValueError('generator already executing'), which a raising call lets
 * the body catch; the generator keeps running and finishes normally. */
static void *resume_self(cg_gen *g, void *arg) {
    (void)arg;
    const char *busy = "ValueError('generator already executing')";
    cg_exc *e = NULL;
    CHECK_EQ(cg_send(g, I(1), NULL, &e), CG_RAISED);
    CHECK_EXC(e, busy);
    cg_exc_unref(e);
    CHECK_EQ(cg_next(g, NULL, &e), CG_RAISED);
    CHECK_EXC(e, busy);
    cg_exc_unref(e);
    released = 0;
    CHECK_EQ(cg_throw(g, tracked(&cg_KeyError, "x"), NULL, &e), CG_RAISED);
    CHECK_EXC(e, busy);
    CHECK_EQ(released, 1); /* the thrown exception was consumed */
    cg_exc_unref(e);
    CHECK_EQ(cg_close(g, NULL, &e), CG_RAISED);
    CHECK_EXC(e, busy);
    cg_exc_unref(e);
    CHECK_EQ(cg_send(g, NULL, NULL, NULL), CG_RAISED);
    CHECK_EQ(cg_gen_state(g), CG_GEN_RUNNING);
    volatile int caught = 0;
    CG_TRY {
        cg_iter_next(g, NULL);
    } CG_EXCEPT(&cg_ValueError, ve) {
        caught = 1;
    } CG_END;
    CHECK(caught);
    CHECK_EQ(cg_gen_state(g), CG_GEN_RUNNING);
    CHECK_EQ((intptr_t)cg_yield(g, I(10)), 20);
    return I(30);
}

TEST(misuse_resume_running) {
    cg_gen *g = mk(resume_self, NULL);
    void *v = NULL;
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 10);
    CHECK_EQ(cg_send(g, I(20), &v, &e), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 30);
    cg_free(g);
}

/* A closed generator, however it was closed (returned, raised, closed
 * while suspended, closed before starting): send/next give CG_RETURNED
 * with NULL every time, close gives CG_RETURNED with NULL, and throw hands
 * back the very exception object thrown. */
static void *raiser(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, I(1));
    CG_RAISE(&cg_KeyError, "k");
}

static void check_closed(cg_gen *g) {
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    for (int i = 0; i < 3; i++) {
        void *v = I(9);
        cg_exc *e = I(9);
        CHECK_EQ(cg_send(g, I(5), &v, &e), CG_RETURNED);
        CHECK(v == NULL && e == NULL);
        v = I(9);
        e = I(9);
        CHECK_EQ(cg_next(g, &v, &e), CG_RETURNED);
        CHECK(v == NULL && e == NULL);
        v = I(9);
        e = I(9);
        CHECK_EQ(cg_close(g, &v, &e), CG_RETURNED);
        CHECK(v == NULL && e == NULL);
        cg_exc *x = cg_exc_ref(cg_exc_new(&cg_ValueError, "again"));
        CHECK_EQ(cg_throw(g, x, &v, &e), CG_RAISED);
        CHECK_PTR(e, x);
        CHECK(cg_exc_context(e) == NULL);
        cg_exc_unref(e);
        cg_exc_unref(x);
        CHECK_EQ(cg_next(g, NULL, NULL), CG_RETURNED);
        CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    }
}

TEST(misuse_resume_closed) {
    cg_gen *g = mk(counter, NULL); /* returned */
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(g, &v, NULL), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 3);
    check_closed(g);
    cg_free(g);

    g = mk(raiser, NULL); /* raised */
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_RAISED);
    check_closed(g);
    cg_free(g);

    g = mk(counter, NULL); /* closed while suspended */
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_close(g, NULL, NULL), CG_RETURNED);
    check_closed(g);
    cg_free(g);

    g = mk(counter, NULL); /* closed before it started */
    CHECK_EQ(cg_close(g, NULL, NULL), CG_RETURNED);
    check_closed(g);
    cg_free(g);
}

/* Resuming from a thread that did not make the generator: RuntimeError
 * from every entry point (a thrown exception is consumed), and the
 * generator is untouched for its own thread. */
static void *other_thread(void *p) {
    cg_gen *g = p;
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(g, NULL, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_RuntimeError));
    cg_exc_unref(e);
    CHECK_EQ(cg_send(g, I(1), NULL, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_RuntimeError));
    cg_exc_unref(e);
    CHECK_EQ(cg_throw(g, tracked(&cg_ValueError, "t"), NULL, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_RuntimeError));
    cg_exc_unref(e);
    CHECK_EQ(cg_close(g, NULL, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_RuntimeError));
    cg_exc_unref(e);
    CHECK_EQ(cg_gen_state(g), CG_GEN_SUSPENDED);
    return NULL;
}

TEST(misuse_other_thread) {
    cg_gen *g = mk(counter, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    released = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, other_thread, g), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(released, 1);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    cg_free(g);
}

/* =====================================================================
 * Freeing at the wrong time
 * ================================================================== */

/* cg_free of a running generator from its own body is refused with
 * RuntimeError, raised in the body: its resumer is waiting for it, and
 * would otherwise be handed CG_YIELDED by a generator that no longer
 * exists. (Python cannot drop a running generator: its frame holds it.)
 * The body catches it and carries on; the caller frees it later. */
static void *free_self_then_yield(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(note_defer, "defer");
    CG_TRY {
        cg_free(g);
        note("not reached");
    } CG_EXCEPT(&cg_RuntimeError, e) {
        note(cg_exc_msg(e));
    } CG_END;
    CHECK_EQ(cg_gen_state(g), CG_GEN_RUNNING);
    CG_TRY {
        cg_yield(g, I(1));
        note("resumed");
    } CG_FINALLY {
        note("finally");
    } CG_END;
    return NULL;
}

TEST(misuse_free_running) {
    trail[0] = '\0';
    CHECK_EQ(live_stacks(), 0);
    cg_gen *g = mk(free_self_then_yield, NULL);
    void *v = NULL;
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 1);
    CHECK_STR(trail, "cg_free() of a running generator (free it once it has yielded or returned)");
    /* Still alive and suspended: the caller's handle is good. */
    CHECK_EQ(cg_gen_state(g), CG_GEN_SUSPENDED);
    trail[0] = '\0';
    cg_free(g); /* closed at its yield, cleanups run, stack released */
    CHECK_STR(trail, "finally,defer");
    CHECK_EQ(live_stacks(), 0);
}

/* The same refusal when nothing in the body catches it: the exception
 * ends the generator and its caller gets it. */
static void *free_self_then_return(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(note_defer, "defer");
    cg_yield(g, I(1));
    cg_free(g);
    note("not reached");
    return I(2);
}

TEST(misuse_free_running_return) {
    trail[0] = '\0';
    CHECK_EQ(live_stacks(), 0);
    cg_gen *g = mk(free_self_then_return, NULL);
    void *v = NULL;
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(g, &v, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_RuntimeError));
    CHECK_STR(cg_exc_msg(e), "cg_free() of a running generator (free it once it has yielded or returned)");
    cg_exc_unref(e);
    CHECK_STR(trail, "defer");
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    cg_free(g);
    CHECK_EQ(live_stacks(), 0);
}

/* cg_free of a generator another one is delegating to: freed as soon as
 * the delegation ends, here when it returns into its delegator. */
static void *delegator(cg_gen *g, void *arg) {
    void *r = cg_yield_from(g, arg);
    cg_yield(g, r);
    return NULL;
}

TEST(misuse_free_delegated) {
    trail[0] = '\0';
    CHECK_EQ(live_stacks(), 0);
    cg_gen *sub = mk(counter, NULL);
    cg_gen *g = mk(delegator, sub);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 1);
    cg_free(sub); /* deferred: g delegates to it */
    CHECK_EQ(live_stacks(), 2);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED); /* sub returned 3 into g */
    CHECK_EQ((intptr_t)v, 3);
    CHECK_EQ(live_stacks(), 1); /* sub is gone */
    cg_free(g);
    CHECK_EQ(live_stacks(), 0);

    sub = mk(counter, NULL); /* the same, the delegation ending by close */
    g = mk(delegator, sub);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    cg_free(sub);
    CHECK_EQ(cg_close(g, NULL, NULL), CG_RETURNED);
    CHECK_STR(trail, "finally");
    CHECK_EQ(live_stacks(), 0);
    cg_free(g);
}

/* =====================================================================
 * The body side called from the wrong place
 * ================================================================== */

/* cg_yield and friends from the main stack: RuntimeError, catchable
 * there; the generator named is untouched. */
static void *yield_from_sub_fn(cg_gen *g, void *arg) {
    (void)g;
    return arg;
}

TEST(misuse_yield_main) {
    cg_gen *g = mk(counter, NULL);
    volatile int caught = 0;
    CG_TRY {
        cg_yield(g, I(1));
    } CG_EXCEPT(&cg_RuntimeError, e) {
        caught++;
    } CG_END;
    CG_TRY {
        cg_yield(NULL, I(1));
    } CG_EXCEPT(&cg_RuntimeError, e) {
        caught++;
    } CG_END;
    /* cg_yield_catch never unwinds: its misuse error is its result. */
    void *sent = I(9);
    cg_exc *r = cg_yield_catch(g, I(1), &sent);
    CHECK_EXC(r, "RuntimeError('cg_yield_catch() called outside the body of its generator')");
    CHECK(sent == NULL);
    cg_exc_unref(r);
    r = cg_yield_catch(NULL, I(1), NULL);
    CHECK_EXC(r, "RuntimeError('cg_yield_catch() called outside the body of its generator')");
    cg_exc_unref(r);
    caught++;
    CG_TRY {
        cg_yield_from(g, NULL);
    } CG_EXCEPT(&cg_RuntimeError, e) {
        caught++;
    } CG_END;
    CG_TRY {
        cg_yield_from_new(g, yield_from_sub_fn, NULL, NULL);
    } CG_EXCEPT(&cg_RuntimeError, e) {
        caught++;
    } CG_END;
    CHECK_EQ(caught, 5);
    CHECK_EQ(cg_gen_state(g), CG_GEN_CREATED);
    CHECK_EQ(live_stacks(), 1); /* cg_yield_from_new made no generator */
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 1);
    cg_free(g);
}

/* cg_yield for a generator that is not the one running: from another
 * generator's body, and from a subgenerator naming its delegator. */
static void *yield_other(cg_gen *g, void *arg) {
    cg_gen *other = arg;
    volatile int caught = 0;
    CG_TRY {
        cg_yield(other, I(1));
    } CG_EXCEPT(&cg_RuntimeError, e) {
        caught = 1;
    } CG_END;
    CHECK(caught);
    cg_yield(g, I(2));
    return NULL;
}

static void *yield_from_other(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield_from_new(g, yield_other, g, NULL);
    return NULL;
}

TEST(misuse_yield_wrong_gen) {
    cg_gen *other = mk(counter, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(other, &v, NULL), CG_YIELDED);
    cg_gen *g = mk(yield_other, other);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    CHECK_EQ(cg_gen_state(other), CG_GEN_SUSPENDED);
    CHECK_EQ(cg_next(other, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    cg_free(g);
    cg_free(other);

    g = mk(yield_from_other, NULL); /* the sub names its delegator */
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    cg_free(g);
}

/* cg_new with no function: NULL and errno EINVAL (also for an impossible
 * stack size). */
TEST(misuse_new_null_fn) {
    errno = 0;
    CHECK(cg_new(NULL, NULL, NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    cg_opts huge = {SIZE_MAX, NULL, 0};
    errno = 0;
    CHECK(cg_new(counter, NULL, &huge) == NULL);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(live_stacks(), 0);
}

/* =====================================================================
 * yield from the wrong thing
 * ================================================================== */

/* yield from NULL: TypeError in the body, Python's message for `yield
 * from None`; catchable, and the body goes on. */
static void *yf_null(cg_gen *g, void *arg) {
    (void)arg;
    static char buf[128];
    CG_TRY {
        cg_yield_from(g, NULL);
    } CG_EXCEPT(&cg_TypeError, e) {
        cg_exc_repr(e, buf, sizeof buf);
        cg_yield(g, buf);
    } CG_END;
    return NULL;
}

TEST(misuse_yield_from_null) {
    cg_gen *g = mk(yf_null, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_STR(v, "TypeError(\"'NoneType' object is not iterable\")");
    CHECK_EQ(cg_next(g, &v, NULL), CG_RETURNED);
    cg_free(g);
}

/* yield from itself: ValueError('generator already executing'), raised in
 * the body; caught, the body goes on. */
static void *yf_self(cg_gen *g, void *arg) {
    (void)arg;
    static char buf[128];
    CG_TRY {
        cg_yield_from(g, g);
    } CG_EXCEPT(&cg_ValueError, e) {
        cg_exc_repr(e, buf, sizeof buf);
        cg_yield(g, buf);
    } CG_END;
    CHECK(cg_gen_yieldfrom(g) == NULL);
    return I(7);
}

TEST(misuse_yield_from_self) {
    cg_gen *g = mk(yf_self, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_STR(v, "ValueError('generator already executing')");
    CHECK_EQ(cg_next(g, &v, NULL), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 7);
    cg_free(g);
}

/* yield from a generator that is running (here: the one that resumed the
 * body): ValueError('generator already executing') in the body. */
static void *yf_running_inner(cg_gen *g, void *arg) {
    static char buf[128];
    CG_TRY {
        cg_yield_from(g, arg);
    } CG_EXCEPT(&cg_ValueError, e) {
        cg_exc_repr(e, buf, sizeof buf);
        cg_yield(g, buf);
    } CG_END;
    return NULL;
}

static void *yf_running_outer(cg_gen *g, void *arg) {
    (void)arg;
    cg_gen *inner = mk(yf_running_inner, g);
    void *v = NULL;
    CHECK_EQ(cg_next(inner, &v, NULL), CG_YIELDED);
    cg_free(inner);
    cg_yield(g, v);
    return NULL;
}

TEST(misuse_yield_from_running) {
    cg_gen *g = mk(yf_running_outer, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_STR(v, "ValueError('generator already executing')");
    cg_free(g);
}

/* yield from a closed generator: NULL at once, nothing yielded, no
 * delegation left behind. */
static void *yf_closed(cg_gen *g, void *arg) {
    void *r = cg_yield_from(g, arg);
    CHECK(cg_gen_yieldfrom(g) == NULL);
    cg_yield(g, r ? "not None" : "None");
    return NULL;
}

TEST(misuse_yield_from_closed) {
    cg_gen *sub = mk(counter, NULL);
    CHECK_EQ(cg_close(sub, NULL, NULL), CG_RETURNED);
    cg_gen *g = mk(yf_closed, sub);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_STR(v, "None");
    CHECK_EQ(cg_gen_state(sub), CG_GEN_CLOSED);
    cg_free(g);
    cg_free(sub);
}

/* =====================================================================
 * Exceptions nobody catches, and try blocks left early
 * ================================================================== */

/* Runs fn in a child process and returns its exit status; what it wrote
 * to stderr goes to err. */
static int in_child(void (*fn)(void), char *err, size_t size) {
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        close(fds[0]);
        dup2(fds[1], 2);
        fn();
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < size && (r = read(fds[0], err + n, size - 1 - n)) > 0) n += (size_t)r;
    err[n] = '\0';
    close(fds[0]);
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    return status;
}

/* =====================================================================
 * Stale handles: a generator used after cg_free
 * ================================================================== */

static void free_twice(void) {
    cg_gen *g = mk(counter, NULL);
    cg_free(g);
    cg_free(g); /* the handle sits in the cache: reported, not corrupted */
}

TEST(misuse_free_twice) {
    char err[1024];
    int st = in_child(free_twice, err, sizeof err);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(err, "cg_free() of generator") && strstr(err, "which was freed"));
}

static void send_after_free(void) {
    cg_gen *g = mk(counter, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    cg_free(g);
    cg_send(g, NULL, &v, NULL);
}

TEST(misuse_send_after_free) {
    char err[1024];
    int st = in_child(send_after_free, err, sizeof err);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(err, "cg_send() of generator") && strstr(err, "which was freed"));
}

/* With COGEN_DEBUG_HANDLES=1 freed handles are never reused: a stale
 * handle is reported even after cg_new would have recycled it. The case
 * runs itself again with the variable set (read once per process). */
static void stale_after_reuse(void) {
    cg_gen *g = mk(counter, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    cg_free(g);
    cg_gen *h = mk(counter, NULL);
    CHECK(h != g);
    cg_next(g, &v, NULL); /* the stale handle */
    fputs("stale use not reported\n", stderr);
}

/* The variable is read once per process, at the first cg_free: the case
 * runs alone in its process (ctest), and nothing is freed before the fork,
 * so the child reads it afresh. (No exec: under valgrind /proc/self/exe
 * is valgrind's own launcher.) */
static void debug_child(void) {
    setenv("COGEN_DEBUG_HANDLES", "1", 1);
    stale_after_reuse();
}

TEST(misuse_stale_handle_debug) {
    char err[2048];
    int st = in_child(debug_child, err, sizeof err);
    /* cogen's own report, or AddressSanitizer's in its builds, where the
     * tombstone is poisoned. */
    int ours = strstr(err, "cg_next() of generator") && strstr(err, "which was freed");
    int asan = strstr(err, "AddressSanitizer") && strstr(err, "use-after-poison");
    if (!(ours || asan)) fprintf(stderr, "child said: %s\n", err);
    CHECK(ours || asan);
    CHECK(!strstr(err, "stale use not reported"));
    CHECK(!(WIFEXITED(st) && WEXITSTATUS(st) == 0));
}

/* cg_free of a generator that is running further down the switch chain
 * (it resumed the generator that frees it): refused the same way. */
static void *free_my_resumer(cg_gen *g, void *arg) {
    cg_gen *resumer = arg;
    static char msg[128]; /* the exception goes when the handler ends */
    CG_TRY {
        cg_free(resumer);
    } CG_EXCEPT(&cg_RuntimeError, e) {
        snprintf(msg, sizeof msg, "%s", cg_exc_msg(e));
        cg_yield(g, msg);
    } CG_END;
    return NULL;
}

static void *resume_inner(cg_gen *g, void *arg) {
    (void)arg;
    cg_gen *inner = mk(free_my_resumer, g);
    void *v = NULL;
    CHECK_EQ(cg_next(inner, &v, NULL), CG_YIELDED);
    cg_free(inner);
    cg_yield(g, v);
    return NULL;
}

TEST(misuse_free_running_resumer) {
    cg_gen *g = mk(resume_inner, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_STR(v, "cg_free() of a running generator (free it once it has yielded or returned)");
    CHECK_EQ(cg_gen_state(g), CG_GEN_SUSPENDED);
    cg_free(g);
}

static void raise_on_main(void) { CG_RAISE(&cg_ValueError, "nobody catches this"); }

static void *raise_in_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, I(1));
    CG_RAISE(&cg_KeyError, "from the body");
}

static void foreach_on_main(void) {
    cg_gen *g = mk(raise_in_body, NULL);
    CG_FOREACH(v, g) (void)v;
}

/* An exception that escapes everything on the main stack: printed, then
 * the process aborts (SIGABRT), like an uncaught C++ exception. Also when
 * it comes from a generator through the raising iteration helpers. */
TEST(misuse_uncaught_main) {
    static char err[4096];
    int status = in_child(raise_on_main, err, sizeof err);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(WTERMSIG(status), SIGABRT);
    CHECK(strstr(err, "ValueError: nobody catches this") != NULL);

    status = in_child(foreach_on_main, err, sizeof err);
    CHECK(WIFSIGNALED(status));
    CHECK_EQ(WTERMSIG(status), SIGABRT);
    CHECK(strstr(err, "KeyError: from the body") != NULL);
}

/* Functions that leave a CG_TRY early. */
static int return_from_body(void) {
    CG_TRY {
        return 1;
    } CG_EXCEPT(&cg_ValueError, e) {
        return 2;
    } CG_FINALLY {
        note("finally skipped");
    } CG_END;
    return 3;
}

static int return_from_handler(void) {
    CG_TRY {
        CG_RAISE(&cg_ValueError, "handled");
    } CG_EXCEPT(&cg_ValueError, e) {
        CHECK(cg_exc_current() == e);
        return 2;
    } CG_END;
    return 3;
}

static int return_from_finally(void) {
    CG_TRY {
        CG_RAISE(&cg_KeyError, "discarded");
    } CG_FINALLY {
        return 4;
    } CG_END;
    return 5;
}

static int break_from_body(void) {
    volatile int i; /* modified while a CG_TRY is active */
    for (i = 0; i < 10; i++) {
        CG_DEFER(note_defer, "defer");
        CG_TRY {
            if (i == 2) break;
        } CG_END;
    }
    return i;
}

/* A raise after those goes to the handler that is really active. */
static const char *who_catches(void) {
    const char *volatile who = "nobody";
    CG_TRY {
        CG_TRY {
            CG_RAISE(&cg_KeyError, "later");
        } CG_EXCEPT(&cg_ValueError, e) {
            who = "inner, wrongly";
        } CG_END;
    } CG_EXCEPT(&cg_KeyError, e) {
        who = "outer";
    } CG_END;
    return who;
}

/* CG_TRY left by return (from the body, a handler or the finally block)
 * or break: the record chain stays consistent, a later raise is caught by
 * the right handler, nothing stays "being handled", and a return from the
 * finally block discards the pending exception, as in Python. */
TEST(misuse_try_return) {
    trail[0] = '\0';
    CHECK_EQ(return_from_body(), 1);
    CHECK_STR(who_catches(), "outer");
    CHECK_EQ(return_from_handler(), 2);
    CHECK(cg_exc_current() == NULL);
    CHECK_STR(who_catches(), "outer");
    CHECK_EQ(return_from_finally(), 4);
    CHECK(cg_exc_current() == NULL);
    CHECK_STR(who_catches(), "outer");
    CHECK_EQ(break_from_body(), 2);
    CHECK_STR(trail, "defer,defer,defer");
    CHECK_STR(who_catches(), "outer");

    const char *volatile who = "nobody";
    CG_TRY {
        CHECK_EQ(return_from_body(), 1);
        CHECK_EQ(return_from_handler(), 2);
        CHECK_EQ(return_from_finally(), 4);
        CG_RAISE(&cg_ValueError, "after");
    } CG_EXCEPT(&cg_ValueError, e) {
        who = "enclosing";
        CHECK(cg_exc_current() == e);
        CHECK_EQ(return_from_handler(), 2);
        CHECK(cg_exc_current() == e); /* the enclosing handler's own is back */
    } CG_END;
    CHECK_STR(who, "enclosing");
    CHECK(cg_exc_current() == NULL);
}

/* The same inside a generator, with a yield inside the block left early. */
static int yield_then_return(cg_gen *g) {
    CG_TRY {
        cg_yield(g, I(1));
        return 1;
    } CG_EXCEPT(&cg_ValueError, e) {
        return 2;
    } CG_END;
    return 3;
}

static void *try_return_body(cg_gen *g, void *arg) {
    (void)arg;
    CHECK_EQ(yield_then_return(g), 1);
    CHECK_STR(who_catches(), "outer");
    const char *volatile who = "nobody";
    CG_TRY {
        CHECK_EQ(yield_then_return(g), 1);
    } CG_EXCEPT(&cg_ValueError, e) {
        who = "thrown in";
    } CG_END;
    CHECK_STR(who, "nobody");
    CG_TRY {
        cg_yield(g, I(2));
    } CG_EXCEPT(&cg_KeyError, e) {
        who = "thrown in";
    } CG_END;
    CHECK_STR(who, "thrown in");
    return I(3);
}

TEST(misuse_try_return_in_gen) {
    cg_gen *g = mk(try_return_body, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    CHECK_EQ(cg_throw(g, cg_exc_new(&cg_KeyError, "k"), &v, NULL), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 3);
    cg_free(g);
}

/* cg_yield_from_new(g, NULL, ...): TypeError, as `yield from None` and
 * cg_yield_from(g, NULL); the body goes on. */
static void *yield_from_new_null_body(cg_gen *g, void *arg) {
    (void)arg;
    volatile int caught = 0;
    CG_TRY {
        cg_yield_from_new(g, NULL, NULL, NULL);
    } CG_EXCEPT(&cg_TypeError, e) {
        CHECK_EXC(e, "TypeError(\"'NoneType' object is not iterable\")");
        caught = 1;
    } CG_END;
    cg_yield(g, I(caught));
    return NULL;
}

TEST(misuse_yield_from_new_null_fn) {
    cg_gen *g = mk(yield_from_new_null_body, NULL);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 1);
    CHECK_EQ(live_stacks(), 1);
    cg_free(g);
}

/* An unraisable hook that raises: the exception cannot escape cg_free
 * halfway (as Python ignores an error in sys.unraisablehook, it is printed
 * to stderr); the generator is freed completely. */
static int hook_calls, close_cleanups;

static void raising_hook(cg_exc *e, cg_gen *g, void *ud) {
    (void)g;
    (void)ud;
    CHECK(cg_exc_is(e, &cg_KeyError));
    hook_calls++;
    CG_RAISE(&cg_ValueError, "from the hook");
}

static void note_close_cleanup(void *arg) {
    (void)arg;
    close_cleanups++;
}

static void *close_raises_body(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(note_close_cleanup, NULL);
    CG_TRY {
        cg_yield(g, I(1));
    } CG_EXCEPT(&cg_GeneratorExit, e) {
        CG_RAISE(&cg_KeyError, "k");
    } CG_END;
    return NULL;
}

TEST(misuse_unraisable_hook_raises) {
    cg_set_unraisable_hook(raising_hook, NULL);
    for (int i = 0; i < 3; i++) {
        cg_gen *g = mk(close_raises_body, NULL);
        CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
        cg_free(g);
        CHECK_EQ(hook_calls, i + 1);
        CHECK_EQ(close_cleanups, i + 1);
        CHECK_EQ(live_stacks(), 0);
    }
    cg_set_unraisable_hook(NULL, NULL);
    CHECK(cg_exc_current() == NULL); /* nothing left being handled */
}

static const check_case cases[] = {
    CASE(misuse_send_null),        CASE(misuse_next_null),          CASE(misuse_throw_null),
    CASE(misuse_close_null),       CASE(misuse_iter_next_null),     CASE(misuse_state_null),
    CASE(misuse_throw_none),       CASE(misuse_raise_null),         CASE(misuse_reraise_nothing),
    CASE(misuse_resume_running),   CASE(misuse_resume_closed),      CASE(misuse_other_thread),
    CASE(misuse_free_running),     CASE(misuse_free_running_return), CASE(misuse_free_delegated),
    CASE(misuse_free_twice),       CASE(misuse_send_after_free),     CASE(misuse_stale_handle_debug),
    CASE(misuse_free_running_resumer),
    CASE(misuse_yield_main),       CASE(misuse_yield_wrong_gen),    CASE(misuse_new_null_fn),
    CASE(misuse_yield_from_null),  CASE(misuse_yield_from_self),    CASE(misuse_yield_from_running),
    CASE(misuse_yield_from_closed), CASE(misuse_uncaught_main),     CASE(misuse_try_return),
    CASE(misuse_try_return_in_gen), CASE(misuse_yield_from_new_null_fn), CASE(misuse_unraisable_hook_raises),
};
CHECK_MAIN(cases)
