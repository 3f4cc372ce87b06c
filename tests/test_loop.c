/* test_loop.c: the loop core against asyncio. Each case prints what its
 * Python twin in tests/loop/CASE.py prints on CPython 3.13, and checks its
 * output against tests/loop/CASE.expected, recorded from the twin
 * (tests/loop/regen.sh). */
#define _GNU_SOURCE
#include "check.h"
#include "vclock_limit.h"
#include "cogen_loop.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* What a case prints goes to a buffer, compared at its end. */
static FILE *out_file;
static char *out_buf;
static size_t out_len;
static FILE *out_stream(void) {
    if (!out_file) out_file = open_memstream(&out_buf, &out_len);
    return out_file;
}
#define printf(...) fprintf(out_stream(), __VA_ARGS__)

static void expect(const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.expected", COGEN_LOOP_EXPECTED, name);
    fflush(out_stream());
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path);
        CHECK(0);
    }
    char *want = NULL;
    size_t wlen = 0;
    FILE *w = open_memstream(&want, &wlen);
    int c;
    while ((c = fgetc(f)) != EOF) fputc(c, w);
    fclose(f);
    fclose(w);
    if (wlen != out_len || memcmp(want, out_buf, wlen) != 0) {
        fprintf(stderr, "--- expected (%s)\n%s--- got\n%.*s", path, want, (int)out_len, out_buf);
        CHECK(!"the trace differs from CPython's");
    }
    free(want);
}

#define I(x) ((void *)(intptr_t)(x))
#define F(t) cg_task_future(t)

static const char *repr(const cg_exc *e) {
    static char buf[4][256];
    static int k;
    char *b = buf[k++ % 4];
    if (!e) return "None";
    cg_exc_repr(e, b, 256);
    return b;
}

static const char *tf(int v) { return v ? "True" : "False"; }

static cg_status run_main(cg_fn body, void **out, cg_exc **exc) {
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, "main", NULL, NULL};
    return vclock_run(body, NULL, &o, out, exc);
}

static long ms(void) { return (long)(cg_loop_time(cg_get_running_loop()) / 1000000); }

/* =====================================================================
 * fifo: A23, A24, A25
 * ================================================================== */

static void *w(cg_gen *g, void *arg) {
    (void)g;
    printf("start%d\n", (int)(intptr_t)arg);
    cg_sleep(0);
    printf("end%d\n", (int)(intptr_t)arg);
    return NULL;
}

static void *t_print(cg_gen *g, void *arg) {
    (void)g;
    printf("%s\n", (const char *)arg);
    return NULL;
}

static void print_cb(void *arg) { printf("%s\n", (const char *)arg); }

static void *rr(cg_gen *g, void *arg) {
    (void)g;
    for (int i = 0; i < 3; i++) {
        printf("%s%d\n", (const char *)arg, i);
        cg_sleep(0);
    }
    return NULL;
}

static void await_and_drop(cg_task *t) {
    cg_await(F(t));
    cg_future_unref(F(t));
}

static void *fifo_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *t1 = cg_create_task(w, I(1), NULL);
    cg_task *t2 = cg_create_task(w, I(2), NULL);
    printf("created\n");
    cg_sleep(0);
    printf("main resumed\n");
    await_and_drop(t1);
    await_and_drop(t2);
    cg_loop *loop = cg_get_running_loop();
    cg_handle_unref(cg_loop_call_soon(loop, print_cb, "cb1"));
    cg_future_unref(F(cg_create_task(t_print, "task", NULL)));
    cg_handle_unref(cg_loop_call_soon(loop, print_cb, "cb2"));
    printf("main before sleep0\n");
    cg_sleep(0);
    printf("main after sleep0\n");
    cg_task *a = cg_create_task(rr, "a", NULL);
    cg_task *b = cg_create_task(rr, "b", NULL);
    await_and_drop(a);
    await_and_drop(b);
    return I(7);
}

TEST(loop_fifo) {
    void *out = NULL;
    CHECK_EQ(run_main(fifo_main, &out, NULL), CG_RETURNED);
    printf("run -> %d\n", (int)(intptr_t)out);
    expect("fifo");
}

/* =====================================================================
 * cancel: A26-A29, A53, A54
 * ================================================================== */

static void *worker(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        printf("start\n");
        cg_sleep(CG_SEC(10));
        printf("not reached\n");
    } CG_EXCEPT(&cg_CancelledError, e) {
        printf("caught %s\n", repr(e));
        cg_reraise();
    } CG_FINALLY {
        printf("finally\n");
    } CG_END;
    return NULL;
}

static void *never(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    printf("body ran\n");
    return NULL;
}

static void *stubborn(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        cg_sleep(CG_SEC(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        printf("ignored the cancel\n");
    } CG_END;
    return "done anyway";
}

static void *selfcancel(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    printf("cancel self -> %s\n", tf(cg_task_cancel(cg_current_task(), "me")));
    printf("still running\n");
    CG_TRY {
        cg_sleep(0);
    } CG_EXCEPT(&cg_CancelledError, e) {
        printf("at the await %s\n", repr(e));
        cg_reraise();
    } CG_END;
    return NULL;
}

static void *selfmade(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_sleep(0);
    CG_RAISE(&cg_CancelledError, "self-made");
}

/* `await t` in a try whose except clause prints the CancelledError. */
static void await_cancelled(cg_task *t, const char *what) {
    CG_TRY {
        cg_await(F(t));
    } CG_EXCEPT(&cg_CancelledError, e) {
        printf("%s %s", what, repr(e));
    } CG_END;
}

static void *cancel_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *t = cg_create_task(worker, NULL, NULL);
    cg_sleep(0);
    int r = cg_task_cancel(t, "why");
    printf("cancel -> %s cancelled %s done %s\n", tf(r), tf(cg_future_cancelled(F(t))), tf(cg_future_done(F(t))));
    await_cancelled(t, "await t");
    printf("\n");
    CG_TRY {
        cg_future_result(F(t));
    } CG_EXCEPT(&cg_CancelledError, e) {
        printf("result() %s\n", repr(e));
    } CG_END;
    printf("cancelled %s cancel again -> %s\n", tf(cg_future_cancelled(F(t))), tf(cg_task_cancel(t, NULL)));
    cg_future_unref(F(t));

    cg_task *n = cg_create_task(never, NULL, NULL);
    printf("cancel before start -> %s\n", tf(cg_task_cancel(n, NULL)));
    await_cancelled(n, "await n");
    printf("\n");
    cg_future_unref(F(n));

    cg_task *s = cg_create_task(stubborn, NULL, NULL);
    cg_sleep(0);
    cg_task_cancel(s, NULL);
    const char *v = cg_await(F(s));
    printf("stubborn -> %s cancelled %s cancelling %d\n", v, tf(cg_future_cancelled(F(s))), cg_task_cancelling(s));
    cg_future_unref(F(s));

    cg_task *c = cg_create_task(selfcancel, NULL, NULL);
    await_cancelled(c, "await c");
    printf("\n");
    cg_future_unref(F(c));

    cg_task *m = cg_create_task(selfmade, NULL, NULL);
    await_cancelled(m, "await m");
    printf(" cancelled %s cancelling %d\n", tf(cg_future_cancelled(F(m))), cg_task_cancelling(m));
    cg_future_unref(F(m));
    return "ok";
}

TEST(loop_cancel) {
    void *out = NULL;
    CHECK_EQ(run_main(cancel_main, &out, NULL), CG_RETURNED);
    printf("run -> %s\n", (const char *)out);
    expect("cancel");
}

/* =====================================================================
 * counters: A30
 * ================================================================== */

static void *sleeper(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        cg_sleep(CG_SEC(5));
        printf("sleeper woke\n");
    } CG_EXCEPT(&cg_CancelledError, e) {
        printf("sleeper cancelled %s\n", repr(e));
        cg_reraise();
    } CG_END;
    return NULL;
}

static void *quick(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    printf("quick ran\n");
    return I(1);
}

static void *counters_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *t = cg_create_task(sleeper, NULL, NULL);
    cg_sleep(0);
    int a = cg_task_cancel(t, NULL), b = cg_task_cancel(t, NULL);
    printf("cancel %s %s cancelling %d\n", tf(a), tf(b), cg_task_cancelling(t));
    a = cg_task_uncancel(t);
    printf("uncancel %d cancelling %d\n", a, cg_task_cancelling(t));
    await_cancelled(t, "await");
    printf("\n");
    a = cg_task_cancelling(t);
    b = cg_task_uncancel(t);
    int c = cg_task_uncancel(t);
    printf("after: cancelling %d uncancel %d %d\n", a, b, c);
    cg_future_unref(F(t));
    cg_task *q = cg_create_task(quick, NULL, NULL);
    a = cg_task_cancel(q, NULL);
    b = cg_task_uncancel(q);
    printf("cancel q %s uncancel q %d\n", tf(a), b);
    void *v = cg_await(F(q));
    printf("q -> %d cancelled %s\n", (int)(intptr_t)v, tf(cg_future_cancelled(F(q))));
    cg_future_unref(F(q));
    return NULL;
}

TEST(loop_counters) {
    void *out = I(1);
    CHECK_EQ(run_main(counters_main, &out, NULL), CG_RETURNED);
    printf("run -> %s\n", out ? "?" : "None");
    expect("counters");
}

/* =====================================================================
 * future: A45, A49, A50
 * ================================================================== */

static void cb(cg_future *f, void *arg) { printf("callback %s done %s\n", (const char *)arg, tf(cg_future_done(f))); }

/* X(f) of the twin: "-> value" or "raise Exc(...)" */
typedef enum { OP_RESULT, OP_EXCEPTION, OP_SET_RESULT, OP_SET_EXC } fop;
typedef struct xcall {
    cg_future *f;
    fop op;
    cg_exc *arg;
    char out[256];
} xcall;

static void xrun(void *p) {
    xcall *x = p;
    switch (x->op) {
    case OP_RESULT: {
        void *v = cg_future_result(x->f);
        snprintf(x->out, sizeof x->out, "-> %d", (int)(intptr_t)v);
        break;
    }
    case OP_EXCEPTION:
        snprintf(x->out, sizeof x->out, "-> %s", repr(cg_future_exception(x->f)));
        break;
    case OP_SET_RESULT:
        cg_future_set_result(x->f, I(6));
        snprintf(x->out, sizeof x->out, "-> None");
        break;
    case OP_SET_EXC:
        cg_future_set_exception(x->f, x->arg);
        snprintf(x->out, sizeof x->out, "-> None");
        break;
    }
}

static const char *X(cg_future *f, fop op, cg_exc *arg) {
    static xcall x[4];
    static int k;
    xcall *c = &x[k++ % 4];
    c->f = f;
    c->op = op;
    c->arg = arg;
    cg_exc *e = cg_try_catch(xrun, c, &cg_BaseException);
    if (e) {
        snprintf(c->out, sizeof c->out, "raise %s", repr(e));
        cg_exc_unref(e);
    }
    return c->out;
}

static void *setter(cg_gen *g, void *arg) {
    (void)g;
    cg_sleep(0);
    printf("setting\n");
    cg_future_set_result(arg, I(9));
    return NULL;
}

static void *future_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    cg_future *f = cg_future_new(loop);
    printf("result %s\n", X(f, OP_RESULT, NULL));
    printf("exception %s\n", X(f, OP_EXCEPTION, NULL));
    cg_future_add_done_callback(f, cb, "a");
    cg_future_add_done_callback(f, cb, "b");
    cg_future_add_done_callback(f, cb, "c");
    printf("removed %d\n", cg_future_remove_done_callback(f, cb, "x"));
    cg_future_set_result(f, I(5));
    printf("set again %s\n", X(f, OP_SET_RESULT, NULL));
    printf("set exc %s\n", X(f, OP_SET_EXC, cg_exc_new(&cg_ValueError, "v")));
    printf("before the callbacks run\n");
    cg_sleep(0);
    printf("result %s", X(f, OP_RESULT, NULL));
    printf(" exception %s\n", X(f, OP_EXCEPTION, NULL));
    cg_future_add_done_callback(f, cb, "late");
    cg_sleep(0);
    cg_future_unref(f);

    cg_future *gf = cg_future_new(loop);
    cg_future_set_exception(gf, cg_exc_new(&cg_KeyError, "k"));
    printf("g.exception %s", X(gf, OP_EXCEPTION, NULL));
    printf(" g.result %s\n", X(gf, OP_RESULT, NULL));
    cg_future_unref(gf);

    cg_future *sf = cg_future_new(loop);
    printf("stop iteration %s\n", X(sf, OP_SET_EXC, cg_exc_new(&cg_StopIteration, "s")));
    cg_exc *became = cg_future_exception(sf);
    printf("became %s cause %s\n", repr(became), repr(cg_exc_cause(became)));
    cg_future_unref(sf);

    cg_future *h = cg_future_new(loop);
    int a = cg_future_cancel(h, "m"), b = cg_future_cancel(h, NULL);
    printf("cancel %s %s cancelled %s\n", tf(a), tf(b), tf(cg_future_cancelled(h)));
    printf("h.result %s", X(h, OP_RESULT, NULL));
    printf(" h.exception %s\n", X(h, OP_EXCEPTION, NULL));
    cg_future_unref(h);

    cg_future *wf = cg_future_new(loop);
    cg_future_unref(F(cg_create_task(setter, wf, NULL)));
    void *v = cg_await(wf);
    printf("awaited %d\n", (int)(intptr_t)v);
    cg_future_unref(wf);
    return NULL;
}

TEST(loop_future) {
    void *out = I(1);
    CHECK_EQ(run_main(future_main, &out, NULL), CG_RETURNED);
    printf("run -> %s\n", out ? "?" : "None");
    expect("future");
}

/* =====================================================================
 * timers: the virtual clock, call_later/call_at, equal deadlines, sleeps
 * ================================================================== */

static void say(void *what) { printf("%ld %s\n", ms(), (const char *)what); }

typedef struct nap {
    const char *name;
    int ms;
} nap;

static void *napper(cg_gen *g, void *arg) {
    (void)g;
    nap *n = arg;
    cg_sleep(CG_MS(n->ms));
    char buf[64];
    snprintf(buf, sizeof buf, "%s woke", n->name);
    say(buf);
    return NULL;
}

static void *timers_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    say("start");
    cg_handle_unref(cg_loop_call_later(loop, CG_MS(30), say, "c30"));
    cg_handle_unref(cg_loop_call_later(loop, CG_MS(10), say, "a10"));
    cg_handle *h = cg_loop_call_later(loop, CG_MS(20), say, "cancelled");
    cg_handle_unref(cg_loop_call_later(loop, CG_MS(10), say, "b10"));
    cg_handle_unref(cg_loop_call_at(loop, cg_loop_time(loop) + CG_MS(20), say, "d20"));
    cg_handle_cancel(h);
    cg_handle_unref(h);
    cg_handle_unref(cg_loop_call_soon(loop, say, "soon"));
    static nap naps[] = {{"n25", 25}, {"n5", 5}, {"n25b", 25}};
    cg_task *tasks[3];
    for (int i = 0; i < 3; i++) tasks[i] = cg_create_task(napper, &naps[i], NULL);
    cg_sleep(CG_MS(40));
    say("main after 40");
    for (int i = 0; i < 3; i++) await_and_drop(tasks[i]);
    cg_sleep(CG_SEC(3600));
    say("an hour later");
    return NULL;
}

TEST(loop_timers) {
    CHECK_EQ(run_main(timers_main, NULL, NULL), CG_RETURNED);
    printf("done\n");
    expect("timers");
}

/* =====================================================================
 * run: asyncio.run's outcome and shutdown (A22, A48), the exception
 * handler, misuse (A22, A51), awaiting through a generator (A14)
 * ================================================================== */

static void handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop;
    (void)ud;
    const char *name = "-";
    if (ctx->future) name = cg_task_name((cg_task *)ctx->future); /* only tasks here */
    printf("handler %s [%s] %s\n", ctx->message, name, repr(ctx->exception));
}

static cg_status run_with_handler(cg_fn body, void **out, cg_exc **exc) {
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, handler, NULL};
    return cg_run(body, NULL, &o, out, exc);
}

static void *lingering(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        cg_sleep(CG_SEC(100));
    } CG_FINALLY {
        printf("lingering: finally\n");
    } CG_END;
    return NULL;
}

static void *failing_at_shutdown(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        cg_sleep(CG_SEC(100));
    } CG_EXCEPT(&cg_CancelledError, e) {
        CG_RAISE(&cg_ValueError, "at shutdown");
    } CG_END;
    return NULL;
}

static void *boom(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_RAISE(&cg_KeyError, "boom");
}

/* A generator-based coroutine: awaits on the stack of the task that
 * delegates to it. */
static void *gen_await(cg_gen *g, void *arg) {
    (void)g;
    printf("generator: before\n");
    intptr_t r = (intptr_t)cg_await(arg);
    printf("generator: got %d\n", (int)r);
    return I(r * 2);
}

static void set21(void *f) { cg_future_set_result(f, I(21)); }

static void nested_run(void *p) {
    (void)p;
    cg_run(boom, NULL, NULL, NULL, NULL);
}

static void nested_ruc(void *f) { cg_loop_run_until_complete(cg_get_running_loop(), f, NULL, NULL); }

static void *main1(cg_gen *g, void *arg) {
    (void)arg;
    cg_future_unref(F(cg_create_task(lingering, NULL, "lingering")));
    cg_future_unref(F(cg_create_task(failing_at_shutdown, NULL, "failing")));
    cg_sleep(0);
    cg_loop *loop = cg_get_running_loop();
    cg_future *f = cg_future_new(loop);
    cg_handle_unref(cg_loop_call_later(loop, CG_MS(5), set21, f));
    intptr_t r = (intptr_t)cg_yield_from_new(g, gen_await, f, NULL);
    printf("through a generator -> %d\n", (int)r);
    cg_exc *e = cg_try_catch(nested_run, NULL, &cg_RuntimeError);
    printf("nested run: %s\n", repr(e));
    cg_exc_unref(e);
    e = cg_try_catch(nested_ruc, f, &cg_RuntimeError);
    printf("run_until_complete: %s\n", repr(e));
    cg_exc_unref(e);
    cg_future_unref(f);
    printf("current task: %s\n", cg_task_name(cg_current_task()));
    return "main1 done";
}

static void *main2(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_sleep(0);
    CG_RAISE(&cg_ValueError, "main2 failed");
}

static void outside(void *p) {
    (void)p;
    cg_get_running_loop();
}

TEST(loop_run) {
    void *out = NULL;
    cg_exc *e = NULL;
    CHECK_EQ(run_with_handler(main1, &out, NULL), CG_RETURNED);
    printf("run 1 -> %s\n", (const char *)out);
    CHECK_EQ(run_with_handler(main2, NULL, &e), CG_RAISED);
    printf("run 2 raised %s\n", repr(e));
    cg_exc_unref(e);
    e = cg_try_catch(outside, NULL, &cg_RuntimeError);
    printf("outside: %s\n", repr(e));
    cg_exc_unref(e);
    CHECK(cg_current_task() == NULL && cg_running_loop() == NULL);
    expect("run");
}

/* =====================================================================
 * run_stuck: a task that never finishes, at asyncio.run's shutdown
 * ================================================================== */

/* What the handler got, printed after the run's outcome: asyncio reports a
 * task destroyed while pending when it is collected, after asyncio.run;
 * cogen when the loop is freed, inside cg_run. */
static char stuck_reports[512];

static void stuck_handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop, (void)ud;
    size_t n = strlen(stuck_reports);
    snprintf(stuck_reports + n, sizeof stuck_reports - n, "handler %s [%s] %s\n", ctx->message,
             ctx->future ? cg_task_name((cg_task *)ctx->future) : "-", repr(ctx->exception));
}

static void nap_a_second(void *arg) {
    (void)arg;
    cg_sleep(CG_SEC(1));
}

static void free_event(void *ev) { cg_event_free(ev); }

static void *never_finishing(cg_gen *g, void *arg) {
    (void)g;
    cg_event *ev = cg_event_new(NULL);
    CHECK(ev != NULL);
    CG_DEFER(free_event, ev); /* when the loop's close closes the task */
    cg_exc *e = cg_try_catch(nap_a_second, NULL, &cg_CancelledError);
    if (e) printf("%ld ms %s: cancelled, waits on\n", ms(), (const char *)arg);
    cg_exc_unref(e);
    cg_event_wait(ev); /* nobody sets it */
    printf("%s: never printed\n", (const char *)arg);
    return NULL;
}

static void *stuck_main(cg_gen *g, void *arg) {
    (void)g;
    const char *name = *(const char *)arg ? "stuck2" : "stuck";
    cg_future_unref(cg_task_future(cg_create_task(never_finishing, (void *)name, name)));
    cg_sleep(CG_MS(10));
    printf("%ld ms main ends\n", ms());
    if (*(const char *)arg) CG_RAISE(&cg_ValueError, "main failed");
    return "main result";
}

static const char *head(const cg_exc *e);

TEST(loop_run_stuck) {
    const char *fails[] = {"", "2"};
    for (int i = 0; i < 2; i++) {
        cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, stuck_handler, NULL};
        void *out = NULL;
        cg_exc *e = NULL;
        stuck_reports[0] = '\0';
        if (cg_run(stuck_main, (void *)fails[i], &o, &out, &e) == CG_RETURNED) {
            printf("run -> %s\n", (const char *)out);
        } else {
            printf("run raised %s, __context__ %s\n", head(e), repr(cg_exc_context(e)));
            CHECK_STR(cg_exc_msg(e), "deadlock: no callback is ready and no timer is pending");
        }
        cg_exc_unref(e);
        printf("%s", stuck_reports);
    }
    expect("run_stuck");
}

/* =====================================================================
 * misuse: a task awaiting itself, a future of another loop, a bad yield
 * (A44), await and sleep outside a task
 * ================================================================== */

static const char *head(const cg_exc *e) {
    static char buf[256];
    const char *m = cg_exc_msg(e) ? cg_exc_msg(e) : "";
    const char *colon = strchr(m, ':');
    snprintf(buf, sizeof buf, "%s: %.*s", cg_exc_type_of(e)->name, colon ? (int)(colon - m) : (int)strlen(m), m);
    return buf;
}

static void *self_await(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_await(F(cg_current_task()));
    return NULL;
}

static void *other_loop(cg_gen *g, void *arg) {
    (void)g;
    cg_await(arg);
    return NULL;
}

static void *yields_bad(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, I(42));
    return NULL;
}

/* await t, printing what it raised as `what: head`. */
static void await_print(cg_task *t, const char *what, int tail) {
    CG_TRY {
        cg_await(F(t));
    } CG_EXCEPT(&cg_RuntimeError, e) {
        const char *m = cg_exc_msg(e);
        if (tail)
            printf("%s: RuntimeError %s\n", what,
                   tf(strlen(m) > 28 && strcmp(m + strlen(m) - 28, "attached to a different loop") == 0));
        else
            printf("%s: %s\n", what, head(e));
    } CG_END;
    cg_future_unref(F(t));
}

static void *misuse_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    await_print(cg_create_task(self_await, NULL, NULL), "self await", 0);
    cg_loop_opts o = {CG_LOOP_VIRTUAL_CLOCK};
    cg_loop *other = cg_loop_new(&o);
    cg_future *f = cg_future_new(other);
    await_print(cg_create_task(other_loop, f, NULL), "other loop", 1);
    cg_future_unref(f);
    cg_loop_free(other);
    await_print(cg_create_task(yields_bad, NULL, NULL), "bad yield", 0);
    CG_TRY {
        cg_future_set_result(F(cg_current_task()), I(1));
    } CG_EXCEPT(&cg_RuntimeError, e) {
        printf("task set_result: %s\n", head(e));
    } CG_END;
    CG_TRY {
        cg_future_set_exception(F(cg_current_task()), cg_exc_new(&cg_ValueError, NULL));
    } CG_EXCEPT(&cg_RuntimeError, e) {
        printf("task set_exception: %s\n", head(e));
    } CG_END;
    return "ok";
}

static void await_outside(void *f) { cg_await(f); }
static void sleep_outside(void *p) {
    (void)p;
    cg_sleep(0);
}

TEST(loop_misuse) {
    void *out = NULL;
    CHECK_EQ(run_main(misuse_main, &out, NULL), CG_RETURNED);
    printf("%s\n", (const char *)out);
    expect("misuse");
    /* C only: outside a task, await and sleep refuse. */
    cg_loop *loop = cg_loop_new(NULL);
    cg_future *f = cg_future_new(loop);
    cg_exc *e = cg_try_catch(await_outside, f, &cg_RuntimeError);
    CHECK_STR(cg_exc_msg(e), "cg_await() called outside a task");
    cg_exc_unref(e);
    e = cg_try_catch(sleep_outside, NULL, &cg_RuntimeError);
    CHECK_STR(cg_exc_msg(e), "cg_sleep() called outside a task");
    cg_exc_unref(e);
    cg_future_unref(f);
    cg_loop_free(loop);
}

/* =====================================================================
 * timer_heap: many timers with few distinct deadlines (ties first in,
 * first out), some cancelled in the middle of the heap, some armed by the
 * callbacks that fire, with call_at on whole ms as the twin does (A:
 * timers ordered by deadline, then scheduling).
 * ================================================================== */

static uint32_t heap_rng = 7;
static int heap_rnd(int n) {
    heap_rng = heap_rng * 1103515245u + 12345u;
    return (int)((heap_rng >> 16) % (uint32_t)n);
}

static void heap_fire(void *arg) {
    intptr_t i = (intptr_t)arg;
    printf("%ld %ld\n", ms(), (long)i);
    if (i % 11 == 0) {
        cg_loop *loop = cg_get_running_loop();
        cg_handle_unref(cg_loop_call_at(loop, CG_MS(ms() + heap_rnd(9)), heap_fire, I(1000 + i)));
    }
}

static void *timer_heap_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    static cg_handle *hs[600];
    for (int i = 0; i < 600; i++) hs[i] = cg_loop_call_later(loop, CG_MS(heap_rnd(25)), heap_fire, I(i));
    for (int i = 3; i < 600; i += 5) cg_handle_cancel(hs[i]);
    for (int i = 0; i < 600; i++) cg_handle_unref(hs[i]);
    cg_sleep(CG_MS(40));
    printf("%ld main\n", ms());
    return NULL;
}

TEST(loop_timer_heap) {
    CHECK_EQ(run_main(timer_heap_main, NULL, NULL), CG_RETURNED);
    printf("done\n");
    expect("timer_heap");
}

/* =====================================================================
 * sleep_due_cancel: a sleep cancelled after its timer came up, before the
 * timer's callback ran (the task's wake-up entry leaves the ready queue
 * and its step goes to the end), on the real clock
 * ================================================================== */

static void *due_sleeper(cg_gen *g, void *arg) {
    (void)g;
    CG_TRY {
        cg_sleep(CG_MS(150));
        printf("%s woke\n", (const char *)arg);
    } CG_EXCEPT(&cg_CancelledError, e) {
        printf("%s cancelled %s\n", (const char *)arg, repr(e));
    } CG_END;
    return NULL;
}

static void *sleep_due_cancel_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    cg_task *t1 = cg_create_task(due_sleeper, "t1", NULL);
    cg_task *t2 = cg_create_task(due_sleeper, "t2", NULL);
    cg_task *t3 = cg_create_task(due_sleeper, "t3", NULL);
    cg_sleep(0); /* the three arm their timers */
    struct timespec ts = {0, 300 * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {} /* their deadlines pass while main runs */
    cg_sleep(0); /* the timers come up behind main's step */
    cg_handle_unref(cg_loop_call_soon(loop, print_cb, "a"));
    printf("cancel t1 %s\n", tf(cg_task_cancel(t1, "late")));
    cg_handle_unref(cg_loop_call_soon(loop, print_cb, "b"));
    printf("cancel t3 %s\n", tf(cg_task_cancel(t3, NULL)));
    printf("cancel t1 again %s\n", tf(cg_task_cancel(t1, "again")));
    cg_sleep(0);
    printf("main\n");
    cg_await(F(t1));
    cg_await(F(t2));
    cg_await(F(t3));
    printf("t1 %s t2 %s t3 %s\n", tf(cg_future_cancelled(F(t1))), tf(cg_future_cancelled(F(t2))),
           tf(cg_future_cancelled(F(t3))));
    cg_future_unref(F(t1));
    cg_future_unref(F(t2));
    cg_future_unref(F(t3));
    return "ok";
}

/* (150 ms: the next iteration's look at the clock must come before the
 * deadlines, on a loaded machine too; main holding its loop for 300 ms is
 * the point, not a stall to report.) */
TEST(loop_sleep_due_cancel) {
    setenv("COGEN_STALL_MS", "0", 0);
    void *out = NULL;
    CHECK_EQ(cg_run(sleep_due_cancel_main, NULL, NULL, &out, NULL), CG_RETURNED);
    printf("run -> %s\n", (const char *)out);
    expect("sleep_due_cancel");
}

/* =====================================================================
 * agen: async generators (A16-A21)
 * ================================================================== */

static cg_agen *kept[32];
static int nkept;
static cg_agen *k(cg_fn body) {
    cg_agen *ag = cg_agen_new(body, NULL, NULL);
    CHECK(ag != NULL);
    kept[nkept++] = ag;
    return ag;
}

static void *ag_two(cg_gen *g, void *arg) {
    (void)arg;
    void *got = cg_yield(g, I(1));
    printf("two got '%s'\n", (const char *)got);
    cg_yield(g, "second");
    return NULL;
}

static void *ag_awaiting(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        cg_sleep(CG_MS(10));
        cg_yield(g, I(1));
        cg_sleep(0);
        cg_yield(g, I(2));
    } CG_FINALLY {
        printf("awaiting: finally start\n");
        cg_sleep(CG_MS(5));
        printf("awaiting: finally end\n");
    } CG_END;
    return NULL;
}

static void *ag_stubborn(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        cg_yield(g, I(1));
    } CG_EXCEPT(&cg_GeneratorExit, e) {
        cg_yield(g, I(2));
    } CG_END;
    return NULL;
}

static void *ag_catcher(cg_gen *g, void *arg) {
    (void)arg;
    for (;;) {
        CG_TRY {
            cg_yield(g, "v");
        } CG_EXCEPT(&cg_ValueError, e) {
            static char buf[64];
            snprintf(buf, sizeof buf, "handled %s", repr(e));
            cg_yield(g, buf);
        } CG_END;
    }
    return NULL;
}

static void *ag_si(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, I(1));
    cg_raise(cg_exc_new(&cg_StopIteration, NULL));
}

static void *ag_sai(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, I(1));
    cg_raise(cg_exc_new(&cg_StopAsyncIteration, NULL));
}

static void *ag_slow(cg_gen *g, void *arg) {
    (void)arg;
    cg_sleep(CG_MS(1));
    cg_yield(g, I(1));
    return NULL;
}

static void *ag_left_open(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        cg_yield(g, I(1));
        cg_yield(g, I(2));
    } CG_FINALLY {
        printf("left_open: finally\n");
    } CG_END;
    return NULL;
}

static void *ag_bad_close(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        cg_yield(g, I(1));
    } CG_FINALLY {
        CG_RAISE(&cg_KeyError, "in finally");
    } CG_END;
    return NULL;
}

static void *consumer(cg_gen *g, void *arg) {
    (void)g;
    CG_TRY {
        cg_agen_anext(arg);
    } CG_EXCEPT(&cg_RuntimeError, e) {
        printf("second consumer: %s\n", repr(e));
    } CG_END;
    return NULL;
}

static void *first_anext(cg_gen *g, void *arg) {
    (void)g;
    return cg_agen_anext(arg);
}

typedef struct agop {
    cg_agen *ag;
    int op;
    void *v;
    cg_exc *e;
} agop;

static void agop_run(void *p) {
    agop *o = p;
    switch (o->op) {
    case 0: o->v = cg_agen_anext(o->ag); break;
    case 1: o->v = cg_asend(o->ag, o->v); break;
    case 2: o->v = cg_athrow(o->ag, o->e); break;
    case 3: cg_aclose(o->ag); break;
    }
}

/* Runs one operation; the exception it raised, or NULL (value in *v). */
static cg_exc *agop_try(cg_agen *ag, int op, void **v, cg_exc *e) {
    agop o = {ag, op, v ? *v : NULL, e};
    cg_exc *err = cg_try_catch(agop_run, &o, &cg_BaseException);
    if (v) *v = o.v;
    return err;
}

static void *agen_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_agen *ag = k(ag_two);
    void *v = I(5);
    cg_exc *e = agop_try(ag, 1, &v, NULL);
    printf("asend(5) fresh: %s\n", repr(e));
    cg_exc_unref(e);
    printf("anext -> %d\n", (int)(intptr_t)cg_agen_anext(ag));
    printf("asend -> %s\n", (const char *)cg_asend(ag, "s"));
    e = agop_try(ag, 0, NULL, NULL);
    printf("at end: %s\n", repr(e));
    cg_exc_unref(e);

    cg_agen *a = k(ag_awaiting);
    CG_ASYNC_FOR(x, a) printf("for %d %ld\n", (int)(intptr_t)x, ms());
    cg_agen *b = k(ag_awaiting);
    v = cg_agen_anext(b);
    printf("b -> %d %ld\n", (int)(intptr_t)v, ms());
    cg_aclose(b);
    printf("closed b at %ld\n", ms());
    cg_aclose(k(ag_stubborn));
    printf("fresh aclose ok\n");
    cg_agen *s = k(ag_stubborn);
    cg_agen_anext(s);
    e = agop_try(s, 3, NULL, NULL);
    printf("stubborn aclose: %s\n", repr(e));
    cg_exc_unref(e);

    cg_agen *c = k(ag_catcher);
    cg_agen_anext(c);
    printf("athrow -> %s\n", (const char *)cg_athrow(c, cg_exc_new(&cg_ValueError, "x")));
    e = agop_try(c, 2, NULL, cg_exc_new(&cg_KeyError, "k"));
    printf("athrow uncaught: %s\n", repr(e));
    cg_exc_unref(e);
    e = agop_try(c, 0, NULL, NULL);
    printf("then anext: %s\n", repr(e));
    cg_exc_unref(e);
    v = cg_athrow(c, cg_exc_new(&cg_ValueError, "late"));
    printf("athrow finished -> %s\n", v ? "?" : "None");

    cg_fn fs[] = {ag_si, ag_sai};
    const char *names[] = {"si", "sai"};
    for (int i = 0; i < 2; i++) {
        cg_agen *x = k(fs[i]);
        cg_agen_anext(x);
        e = agop_try(x, 0, NULL, NULL);
        printf("%s %s cause %s\n", names[i], repr(e), repr(cg_exc_cause(e)));
        cg_exc_unref(e);
    }

    cg_agen *sl = k(ag_slow);
    cg_task *first = cg_create_task(first_anext, sl, NULL);
    cg_task *t = cg_create_task(consumer, sl, NULL);
    cg_sleep(0);
    await_and_drop(t);
    printf("first -> %d\n", (int)(intptr_t)cg_await(F(first)));
    cg_future_unref(F(first));

    cg_agen *lo = k(ag_left_open), *bc = k(ag_bad_close);
    k(ag_left_open);
    cg_agen_anext(lo);
    cg_agen_anext(bc);
    printf("main returns\n");
    return "done";
}

static void agen_handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop;
    (void)ud;
    printf("handler %s %s\n", ctx->message, repr(ctx->exception));
}

TEST(loop_agen) {
    void *out = NULL;
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, agen_handler, NULL};
    CHECK_EQ(cg_run(agen_main, NULL, &o, &out, NULL), CG_RETURNED);
    printf("run -> %s\n", (const char *)out);
    for (int i = 0; i < nkept; i++) cg_agen_free(kept[i]);
    printf("after run\n");
    expect("agen");
}

/* =====================================================================
 * agen_shutdown: cg_shutdown_asyncgens awaited by hand, after the main
 * task ran (A21): the order of first starts (asend refused included),
 * aclose tasks named Task-N, the handler's asyncgen
 * ================================================================== */

static cg_agen *sd_kept[16];
static const char *sd_names[16];
static int sd_n;

static cg_agen *sd_k(cg_fn body, const void *arg, const char *name) {
    cg_agen *ag = cg_agen_new(body, (void *)arg, NULL);
    CHECK(ag != NULL);
    sd_kept[sd_n] = ag;
    sd_names[sd_n++] = name;
    return ag;
}

static void *sd_closing(cg_gen *g, void *arg) {
    const char *name = arg;
    CG_TRY {
        cg_yield(g, I(1));
        cg_yield(g, I(2));
    } CG_FINALLY {
        printf("%s closing at %ld in %s\n", name, ms(), cg_task_name(cg_current_task()));
        cg_sleep(CG_MS(3));
        printf("%s closed at %ld\n", name, ms());
    } CG_END;
    return NULL;
}

/* Raises an exception of the type arg when closed: KeyError('k') for
 * shutdown's report, CancelledError (not reported), StopAsyncIteration (A19). */
static void *sd_raises(cg_gen *g, void *arg) {
    const cg_exc_type *type = arg;
    CG_TRY {
        cg_yield(g, I(1));
    } CG_FINALLY {
        cg_raise(cg_exc_new(type, type == &cg_KeyError ? "k" : NULL));
    } CG_END;
    return NULL;
}

static void *sd_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_agen *a = sd_k(sd_closing, "a", "a");
    sd_k(sd_closing, "fresh", "fresh"); /* never started: not closed */
    cg_agen *s = sd_k(sd_closing, "sent", "sent");
    void *v = I(5);
    cg_exc *e = agop_try(s, 1, &v, NULL); /* refused, but the iteration started */
    printf("asend(5): %s\n", repr(e));
    cg_exc_unref(e);
    cg_agen_anext(sd_k(sd_raises, &cg_KeyError, "fails"));
    cg_agen_anext(sd_k(sd_raises, &cg_CancelledError, "cancels"));
    cg_agen *done = sd_k(sd_closing, "done", "done");
    CG_ASYNC_FOR(x, done) printf("done -> %d\n", (int)(intptr_t)x);
    cg_agen *q = sd_k(sd_raises, &cg_StopAsyncIteration, "sai");
    cg_agen_anext(q);
    e = agop_try(q, 3, NULL, NULL); /* A19 before aclose() looks at it */
    printf("aclose sai: %s <- %s\n", repr(e), repr(cg_exc_context(e)));
    cg_exc_unref(e);
    cg_agen_anext(a);
    return "main";
}

static void *sd_shutdown(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_shutdown_asyncgens();
    printf("shutdown done at %ld\n", ms());
    cg_shutdown_asyncgens();
    printf("again: nothing left to close\n");
    return NULL;
}

static void sd_handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop;
    (void)ud;
    const char *name = "None";
    for (int i = 0; i < sd_n; i++)
        if (sd_kept[i] == ctx->asyncgen) name = sd_names[i];
    printf("handler %s %s %s\n", ctx->message, name, repr(ctx->exception));
}

static void sd_outside(void *arg) {
    (void)arg;
    cg_shutdown_asyncgens();
}

TEST(loop_agen_shutdown) {
    cg_loop_opts lo = {CG_LOOP_VIRTUAL_CLOCK};
    cg_loop *loop = cg_loop_new(&lo);
    CHECK(loop != NULL);
    cg_loop_set_exception_handler(loop, sd_handler, NULL);
    cg_task_opts to = {"main", 0, 0};
    cg_task *m = cg_task_new(loop, sd_main, NULL, &to);
    void *out = NULL;
    CHECK_EQ(cg_loop_run_until_complete(loop, F(m), &out, NULL), CG_RETURNED);
    printf("main -> %s\n", (const char *)out);
    cg_task *t = cg_task_new(loop, sd_shutdown, NULL, NULL);
    CHECK_EQ(cg_loop_run_until_complete(loop, F(t), NULL, NULL), CG_RETURNED);
    printf("shutdown task %s\n", cg_task_name(t));
    cg_future_unref(F(m));
    cg_future_unref(F(t));
    cg_loop_free(loop);
    for (int i = 0; i < sd_n; i++) cg_agen_free(sd_kept[i]);
    expect("agen_shutdown");
    /* Outside a task (no running loop): the running-loop RuntimeError. */
    cg_exc *e = cg_try_catch(sd_outside, NULL, &cg_RuntimeError);
    CHECK(e != NULL);
    cg_exc_unref(e);
}

/* =====================================================================
 * agen_context: what comes out of an async generator is not chained again
 * to the exception its caller handles; what the awaitable makes itself is
 * ================================================================== */

static const char *chain(const cg_exc *e) {
    static char buf[512];
    size_t n = 0;
    buf[0] = 0;
    for (; e && n < sizeof buf - 64; e = cg_exc_context(e))
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", n ? " <- " : "", repr(e));
    return buf;
}

static void *cx_in_handler(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        CG_RAISE(&cg_ValueError, "own");
    } CG_EXCEPT(&cg_ValueError, e) {
        cg_yield(g, I(1));
        CG_RAISE(&cg_KeyError, "in_handler");
    } CG_END;
    return NULL;
}

static void *cx_plain(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, I(1));
    return NULL;
}

static void *cx_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_agen *h = cg_agen_new(cx_in_handler, NULL, NULL), *p = cg_agen_new(cx_plain, NULL, NULL);
    cg_agen_anext(h);
    CG_TRY {
        CG_RAISE(&cg_TypeError, "outer");
    } CG_EXCEPT(&cg_TypeError, t) {
        cg_exc *e = agop_try(h, 0, NULL, NULL);
        printf("raised in the body: %s\n", chain(e));
        cg_exc_unref(e);
        e = agop_try(p, 2, NULL, cg_exc_new(&cg_KeyError, "fresh"));
        printf("athrow into a fresh one: %s\n", chain(e));
        cg_exc_unref(e);
        cg_agen *q = cg_agen_new(cx_plain, NULL, NULL);
        void *v = I(1);
        e = agop_try(q, 2, &v, cg_exc_new(&cg_StopIteration, NULL));
        CHECK(e == NULL);
        printf("athrow(StopIteration) into a fresh one: %s\n", v ? "?" : "None");
        cg_agen_free(q);
        e = agop_try(p, 0, NULL, NULL);
        printf("anext at the end: %s\n", chain(e));
        cg_exc_unref(e);
    } CG_END;
    cg_agen_free(h);
    cg_agen_free(p);
    return NULL;
}

TEST(loop_agen_context) {
    CHECK_EQ(run_main(cx_main, NULL, NULL), CG_RETURNED);
    expect("agen_context");
}

/* =====================================================================
 * agen_throw_chain: what the loop throws into a task while an async
 * generator's body awaits reaches the body unchained and is chained to
 * what the task handles on its way out of anext. The tasks are compact and
 * swapped out while they wait (one resident generator), so that the throw
 * runs the driver's frame while the task's stack is not there to read.
 * ================================================================== */

static void *tc_body(cg_gen *g, void *fut) {
    CG_TRY {
        cg_await(fut);
    } CG_EXCEPT(&cg_ValueError, e) {
        printf("body sees: %s\n", chain(e));
        cg_yield(g, I(2));
    } CG_EXCEPT(&cg_BaseException, e) {
        printf("body sees: %s\n", chain(e));
        cg_reraise();
    } CG_END;
    cg_yield(g, I(1));
    return NULL;
}

static void *tc_iterate(cg_gen *g, void *fut) {
    (void)g;
    cg_agen *ag = cg_agen_new(tc_body, fut, NULL);
    CHECK(ag != NULL);
    CG_TRY {
        CG_RAISE(&cg_KeyError, "handled");
    } CG_EXCEPT(&cg_KeyError, k) {
        void *v = NULL;
        cg_exc *e = agop_try(ag, 0, &v, NULL);
        if (e)
            printf("out of anext: %s\n", chain(e));
        else
            printf("anext -> %d\n", (int)(intptr_t)v);
        cg_exc_unref(e);
    } CG_END;
    cg_agen_free(ag);
    return NULL;
}

static void *tc_other(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    for (int i = 0; i < 3; i++) cg_sleep(0);
    return NULL;
}

static void tc_one(int how) {
    cg_loop *loop = cg_get_running_loop();
    cg_future *fut = cg_future_new(loop);
    cg_task_opts co = {NULL, 0, CG_OPT_COMPACT};
    cg_task *t = cg_task_new(loop, tc_iterate, fut, &co);
    CHECK(fut && t);
    cg_sleep(0);
    cg_task *others[4];
    for (int i = 0; i < 4; i++) CHECK((others[i] = cg_task_new(loop, tc_other, NULL, &co)) != NULL);
    for (int i = 0; i < 4; i++) {
        cg_await(F(others[i]));
        cg_future_unref(F(others[i]));
    }
    if (how == 2)
        cg_task_cancel(t, "stop");
    else
        cg_future_set_exception(fut, cg_exc_new(how ? &cg_TypeError : &cg_ValueError, "boom"));
    cg_await(F(t));
    printf("%s done\n", how == 2 ? "cancel" : how ? "raised" : "caught");
    cg_future_unref(F(t));
    cg_future_unref(fut);
}

static void *tc_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    unsigned old = cg_compact_resident(1);
    for (int how = 0; how < 3; how++) tc_one(how);
    cg_compact_resident(old);
    return NULL;
}

TEST(loop_agen_throw_chain) {
    CHECK_EQ(run_main(tc_main, NULL, NULL), CG_RETURNED);
    expect("agen_throw_chain");
}

/* =====================================================================
 * agen_running: A20's messages; asend's is anext's
 * ================================================================== */

static void *rn_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_agen *ag = cg_agen_new(ag_slow, NULL, NULL);
    cg_task *first = cg_create_task(first_anext, ag, NULL);
    cg_sleep(0);
    static const char *const names[] = {"asend", "athrow", "aclose"};
    static const int ops[] = {1, 2, 3};
    for (int i = 0; i < 3; i++) {
        cg_exc *e = agop_try(ag, ops[i], NULL, ops[i] == 2 ? cg_exc_new(&cg_ValueError, "v") : NULL);
        printf("%s: %s\n", names[i], repr(e));
        cg_exc_unref(e);
    }
    printf("first -> %d\n", (int)(intptr_t)cg_await(F(first)));
    cg_future_unref(F(first));
    cg_agen_free(ag);
    return NULL;
}

TEST(loop_agen_running) {
    CHECK_EQ(run_main(rn_main, NULL, NULL), CG_RETURNED);
    expect("agen_running");
}

/* The harness's own limit (tests/vclock_limit.h), no twin: a program that
 * keeps sleeping is stopped, by name, long before ctest's TIMEOUT; and so
 * is a deadlock, which vclock_run does not let stop on its own. Each in a
 * child, which must die of the abort with the message. */
static void *sleeps_forever(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    for (;;) cg_sleep(CG_SEC(100));
    return NULL;
}

static void *waits_forever(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_future *f = cg_future_new(cg_get_running_loop());
    cg_await(f); /* nobody sets it */
    return NULL;
}

static void limit_stops(cg_fn body) {
    FILE *err = tmpfile(); /* the child's stderr */
    CHECK(err != NULL);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        dup2(fileno(err), 2);
        signal(SIGABRT, SIG_DFL);
        vclock_run(body, NULL, NULL, NULL, NULL);
        _exit(0); /* not reached */
    }
    int st;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    char text[1000];
    rewind(err);
    text[fread(text, 1, sizeof text - 1, err)] = '\0';
    fclose(err);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(text, "vclock limit: the run is at ") != NULL);
}

TEST(loop_vclock_limit) {
    limit_stops(sleeps_forever);
    limit_stops(waits_forever);
}

static const check_case cases[] = {CASE(loop_vclock_limit), CASE(loop_fifo), CASE(loop_cancel), CASE(loop_counters), CASE(loop_future), CASE(loop_timers), CASE(loop_run), CASE(loop_run_stuck), CASE(loop_misuse), CASE(loop_agen), CASE(loop_agen_shutdown), CASE(loop_agen_context), CASE(loop_agen_throw_chain), CASE(loop_agen_running),
                                   CASE(loop_timer_heap), CASE(loop_sleep_due_cancel)};
CHECK_MAIN(cases)
