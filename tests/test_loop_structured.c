/* test_loop_structured.c: exception groups, gather, shield, wait, wait_for,
 * as_completed, timeout scopes and TaskGroup (include/cogen_loop.h,
 * "Structured helpers"), rules A32-A39 and A55.
 *
 * Each case prints the lines its Python twin prints (tests/loop/
 * structured.py, the same case name, run on CPython 3.13) and compares
 * them with the twin's output checked in as tests/loop/structured.CASE.
 * expected: a difference fails the case and shows both. Every loop runs
 * on the virtual clock, in milliseconds as the twin's loop counts them.
 */
#include "check.h"
#include "vclock_limit.h"

#include <cogen_loop.h>

#include <stdarg.h>

/* ---------------------------------------------------------------------
 * The trace and its comparison with the twin's
 * ------------------------------------------------------------------ */

static char trace[1 << 16];
static size_t tlen;
static int npool; /* task specs in use (below) */

static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(trace + tlen, sizeof trace - tlen, fmt, ap);
    va_end(ap);
    CHECK(n >= 0 && (size_t)n < sizeof trace - tlen - 1);
    tlen += (size_t)n;
    trace[tlen++] = '\n';
    trace[tlen] = '\0';
}

/* "TIME TASK: TEXT", as the twin's log() */
#define LOG(...) log_line(__VA_ARGS__)
static void log_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_line(const char *fmt, ...) {
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    cg_task *t = cg_current_task();
    emit("%lld %s: %s", (long long)(cg_loop_time(cg_get_running_loop()) / CG_MS(1)), t ? cg_task_name(t) : "-", text);
}

/* X(e): repr with the __context__ chain; several may be used in one line */
static const char *X(const cg_exc *e) {
    static char bufs[8][1024];
    static int k;
    char *b = bufs[k++ & 7];
    snprintf(b, 1024, "%s", check_exc(e));
    return b;
}

static void compare(const char *name) {
    char path[1024];
    const char *src = __FILE__, *slash = strrchr(src, '/');
    snprintf(path, sizeof path, "%.*sloop/structured.%s.expected", slash ? (int)(slash - src + 1) : 0, src, name);
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    static char want[1 << 16];
    size_t n = fread(want, 1, sizeof want - 1, f);
    fclose(f);
    want[n] = '\0';
    if (strcmp(want, trace) != 0) {
        fprintf(stderr, "--- expected (%s)\n%s--- got\n%s", path, want, trace);
        const char *a = want, *b = trace;
        int line = 1;
        while (*a && *a == *b) line += *a++ == '\n', b++;
        fprintf(stderr, "--- first difference at line %d\n", line);
        abort();
    }
    fputs(trace, stdout);
    tlen = 0;
    trace[0] = '\0';
    npool = 0;
}

static void handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)ud;
    emit("%lld handler: %s %s", (long long)(cg_loop_time(loop) / CG_MS(1)), ctx->message, X(ctx->exception));
}

static void run(cg_fn main_body) {
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, handler, NULL};
    void *out = NULL;
    cg_exc *e = NULL;
    if (vclock_run(main_body, NULL, &o, &out, &e) == CG_RETURNED) {
        emit("run -> %s", out ? (const char *)out : "None");
    } else {
        emit("run -> raised %s", X(e));
        cg_exc_unref(e);
    }
}

/* ---------------------------------------------------------------------
 * Task bodies: steps(n, v), fail(n, exc), sleeper(ms, v)
 * ------------------------------------------------------------------ */

typedef struct spec {
    int n;                    /* steps, or milliseconds */
    const char *v;            /* result */
    const cg_exc_type *type;  /* fail: what to raise */
    const char *msg;
} spec;

static spec pool[256];

static spec *S(int n, const char *v) {
    CHECK(npool < 256);
    pool[npool] = (spec){n, v, NULL, NULL};
    return &pool[npool++];
}

static spec *F(int n, const cg_exc_type *type, const char *msg) {
    spec *s = S(n, NULL);
    s->type = type;
    s->msg = msg;
    return s;
}

static void *steps(cg_gen *g, void *arg) {
    (void)g;
    spec *s = arg;
    for (int i = 0; i < s->n; i++) cg_sleep(0);
    return (void *)s->v;
}

static void *fail(cg_gen *g, void *arg) {
    (void)g;
    spec *s = arg;
    for (int i = 0; i < s->n; i++) cg_sleep(0);
    cg_raise(cg_exc_new(s->type, s->msg));
}

static void *sleeper(cg_gen *g, void *arg) {
    (void)g;
    spec *s = arg;
    cg_sleep(CG_MS(s->n));
    return (void *)s->v;
}

static cg_task *spawn(cg_fn fn, spec *s) { return cg_create_task(fn, s, NULL); }
static cg_future *F_(cg_task *t) { return cg_task_future(t); }

/* The caught exception of fn(arg), or NULL. */
static cg_exc *catch_(void (*fn)(void *), void *arg) { return cg_try_catch(fn, arg, &cg_BaseException); }

static const char *str_or_none(const void *p) { return p ? (const char *)p : "None"; }

/* ---------------------------------------------------------------------
 * groups
 * ------------------------------------------------------------------ */

typedef struct newargs {
    const cg_exc_type *type;
    const char *msg;
    cg_exc *excs[4];
    size_t n;
    cg_exc *out;
} newargs;

static void do_new(void *p) {
    newargs *a = p;
    a->out = cg_exc_group_new(a->type, a->msg, a->excs, a->n);
}

static void try_new(const char *label, const cg_exc_type *type, const char *msg, size_t n, cg_exc *e0, cg_exc *e1) {
    newargs a = {type, msg, {e0, e1, NULL, NULL}, n, NULL};
    cg_exc *err = catch_(do_new, &a);
    if (err)
        emit("%s -> raised %s", label, X(err));
    else
        emit("%s -> %s", label, X(a.out));
    cg_exc_unref(err);
    cg_exc_unref(a.out);
    cg_exc_unref(e0);
    cg_exc_unref(e1);
}

static void raise_it(void *p) { cg_raise(cg_exc_ref(p)); }

TEST(loop_structured_groups) {
    try_new("new", NULL, "m", 2, cg_exc_new(&cg_ValueError, "a"), cg_exc_new(&cg_KeyError, "b"));
    try_new("base", &cg_BaseExceptionGroup, "m", 2, cg_exc_new(&cg_ValueError, "a"), cg_exc_new(&cg_KeyboardInterrupt, NULL));
    try_new("nest", &cg_ExceptionGroup, "m", 2, cg_exc_new(&cg_ValueError, "a"), cg_exc_new(&cg_KeyboardInterrupt, NULL));
    try_new("empty", &cg_ExceptionGroup, "m", 0, NULL, NULL);
    try_new("nomsg", &cg_ExceptionGroup, NULL, 1, cg_exc_new(&cg_ValueError, NULL), NULL);
    try_new("noexc", &cg_ExceptionGroup, "m", 2, cg_exc_new(&cg_ValueError, NULL), NULL);
    try_new("quote", &cg_ExceptionGroup, "it's", 1, cg_exc_new(&cg_ValueError, "q'\""), NULL);

    cg_exc *kb[2] = {cg_exc_new(&cg_KeyError, "b"), cg_exc_new(&cg_ValueError, "c")};
    cg_exc *inner = cg_exc_group_new(&cg_ExceptionGroup, "inner", kb, 2);
    cg_exc *ov[3] = {cg_exc_new(&cg_ValueError, "a"), inner, cg_exc_new(&cg_TypeError, "d")};
    cg_exc *eg = cg_exc_group_new(&cg_ExceptionGroup, "outer", ov, 3);
    cg_exc *ctx = cg_exc_new(&cg_OSError, "ctx");
    cg_exc_set_context(eg, ctx);
    cg_exc_unref(ctx);
    const cg_exc_type *types[] = {&cg_ValueError, &cg_LookupError, &cg_ExceptionGroup, &cg_OSError, &cg_BaseException};
    for (int i = 0; i < 5; i++) {
        cg_exc *m, *r;
        cg_exc_group_split(eg, types[i], &m, &r);
        emit("split %s -> %s | %s | whole=%s", types[i]->name, X(m), X(r), m == eg ? "True" : "False");
        cg_exc_unref(m);
        cg_exc_unref(r);
    }
    cg_exc *sg = cg_exc_group_subgroup(eg, &cg_KeyError);
    emit("subgroup KeyError -> %s", X(sg));
    cg_exc_unref(sg);
    cg_exc *bv[2] = {cg_exc_new(&cg_ValueError, NULL), cg_exc_new(&cg_KeyboardInterrupt, NULL)};
    cg_exc *beg = cg_exc_group_new(NULL, "b", bv, 2);
    cg_exc *m, *r;
    cg_exc_group_split(beg, &cg_KeyboardInterrupt, &m, &r);
    emit("split base -> %s | %s", X(m), X(r));
    cg_exc_unref(m);
    cg_exc_unref(r);
    emit("count=%zu at1=%s", cg_exc_group_count(eg), X(cg_exc_group_at(eg, 1)));
    cg_exc *x = cg_exc_new(&cg_ValueError, "x");
    cg_exc *one = cg_exc_group_new(&cg_ExceptionGroup, "one", &x, 1);
    emit("single=%s none=%s", X(cg_exc_group_single(one)), X(cg_exc_group_single(eg)));
    cg_exc *gs[2] = {eg, beg};
    for (int i = 0; i < 2; i++) {
        CG_TRY {
            raise_it(gs[i]);
        } CG_EXCEPT(&cg_Exception, e) {
            emit("except Exception: %s", cg_exc_type_of(e)->name);
        } CG_EXCEPT(&cg_BaseExceptionGroup, e) {
            emit("except BaseExceptionGroup: %s", cg_exc_type_of(e)->name);
        } CG_END;
    }
    const char *tf[] = {"False", "True"};
    emit("isinstance: %s %s %s %s", tf[cg_exc_is(eg, &cg_BaseExceptionGroup)], tf[cg_exc_is(eg, &cg_Exception)],
         tf[cg_exc_is(beg, &cg_Exception)], tf[cg_exc_is(beg, &cg_ExceptionGroup)]);
    /* not in the twin: accessors on a non-group, out of range, NULL */
    CHECK_EQ(cg_exc_group_count(x), 0);
    CHECK(cg_exc_group_at(eg, 3) == NULL);
    CHECK(cg_exc_group_at(NULL, 0) == NULL);
    CHECK(cg_exc_group_single(NULL) == NULL);
    cg_exc_group_split(NULL, &cg_ValueError, &m, &r);
    CHECK(m == NULL && r == NULL);
    cg_exc_unref(one);
    cg_exc_unref(x);
    for (int i = 0; i < 2; i++) cg_exc_unref(bv[i]);
    cg_exc_unref(beg);
    for (int i = 0; i < 3; i++) cg_exc_unref(ov[i]);
    for (int i = 0; i < 2; i++) cg_exc_unref(kb[i]);
    cg_exc_unref(eg);
    compare("groups");
}

/* ---------------------------------------------------------------------
 * shield (A32)
 * ------------------------------------------------------------------ */

static void *shield_inner(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_sleep(0);
    cg_sleep(0);
    return "inner done";
}

static void *shield_outer(cg_gen *g, void *arg) {
    (void)g;
    cg_future *s = cg_shield(arg);
    CG_DEFER((void (*)(void *))cg_future_unref, s);
    return cg_await(s);
}

static void await_void(void *f) { cg_await(f); }

static void *shield_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *it = cg_create_task(shield_inner, NULL, NULL);
    cg_task *o = cg_create_task(shield_outer, F_(it), NULL);
    cg_sleep(0);
    cg_task_cancel(o, NULL);
    cg_exc *e = catch_(await_void, F_(o));
    LOG("outer -> raised %s", X(e));
    cg_exc_unref(e);
    const char *r = cg_await(F_(it));
    LOG("inner -> %s cancelled=%s", r, cg_future_cancelled(F_(it)) ? "True" : "False");
    cg_task *bad = spawn(fail, F(2, &cg_ValueError, "late"));
    cg_future *s = cg_shield(F_(bad));
    cg_sleep(0);
    cg_future_cancel(s, NULL);
    e = catch_(await_void, s);
    LOG("shield -> raised %s", X(e));
    cg_exc_unref(e);
    cg_sleep(0);
    cg_sleep(0);
    LOG("bad done=%s", cg_future_done(F_(bad)) ? "True" : "False");
    cg_future *done = cg_future_new(cg_get_running_loop());
    cg_future_set_result(done, "now");
    cg_future *sd = cg_shield(done);
    LOG("shield(done) is done: %s", sd == done ? "True" : "False");
    cg_future_unref(sd);
    cg_future_unref(done);
    spec *sl = S(5, "slept");
    cg_future *s2 = cg_shield_body(sleeper, sl);
    LOG("shield(sleeper) -> %s", (const char *)cg_await(s2));
    cg_future_unref(s2);
    cg_future_unref(s);
    cg_future_unref(F_(bad)); /* bad = None: its exception was never retrieved */
    cg_future_unref(F_(o));
    cg_future_unref(F_(it));
    return "ok";
}

TEST(loop_structured_shield) {
    run(shield_main);
    compare("shield");
}

/* ---------------------------------------------------------------------
 * gather (A33)
 * ------------------------------------------------------------------ */

static void gathered_str(const cg_gathered *r, char *buf, size_t size) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (size_t i = 0; i < r->n && k < size; i++) {
        const char *sep = i ? ", " : "";
        if (r->excs && r->excs[i]) {
            char rep[300];
            cg_exc_repr(r->excs[i], rep, sizeof rep);
            k += (size_t)snprintf(buf + k, size - k, "%s\"%s\"", sep, rep);
        } else if (r->values[i] && ((const char *)r->values[i])[0] == '#') {
            k += (size_t)snprintf(buf + k, size - k, "%s%s", sep, (const char *)r->values[i] + 1);
        } else {
            k += (size_t)snprintf(buf + k, size - k, "%s'%s'", sep, str_or_none(r->values[i]));
        }
    }
    if (k < size) snprintf(buf + k, size - k, "]");
}

static const char *G(const cg_gathered *r) {
    static char b[4][512];
    static int k;
    char *p = b[k++ & 3];
    gathered_str(r, p, 512);
    return p;
}

static void *gather_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_future *c[3] = {F_(spawn(steps, S(3, "slow"))), F_(spawn(steps, S(0, "fast")))};
    cg_future *ga = cg_gather(c, 2, 0);
    LOG("gather -> %s", G(cg_await(ga)));
    cg_future_unref(ga);
    cg_future_unref(c[0]);
    cg_future_unref(c[1]);
    cg_task *slow = spawn(steps, S(5, "sibling"));
    cg_body bad = {fail, F(1, &cg_ValueError, "bad")};
    cg_future *bt = F_(cg_create_task(bad.fn, bad.arg, NULL));
    cg_future *pair[2] = {F_(slow), bt};
    cg_future *gc = cg_gather(pair, 2, 0);
    cg_exc *e = catch_(await_void, gc);
    LOG("gather -> raised %s", X(e));
    cg_exc_unref(e);
    cg_future_unref(gc);
    cg_future_unref(bt);
    LOG("sibling done=%s cancelled=%s", cg_future_done(F_(slow)) ? "True" : "False",
        cg_future_cancelled(F_(slow)) ? "True" : "False");
    LOG("sibling -> %s", (const char *)cg_await(F_(slow)));
    cg_future_unref(F_(slow));
    cg_body bodies[2] = {{steps, S(0, "#1")}, {fail, F(1, &cg_ValueError, "bad")}};
    cg_future *gd = cg_gather_bodies(bodies, 2, 1);
    LOG("return_exceptions -> %s", G(cg_await(gd)));
    CHECK_EQ(cg_gather_count(gd), 2);
    CHECK_STR(cg_task_name((cg_task *)cg_gather_child(gd, 1)), "Task-7");
    cg_future_unref(gd);
    cg_future *f = cg_future_new(cg_get_running_loop());
    cg_future_set_result(f, "twice");
    cg_task *three = spawn(sleeper, S(3, "three"));
    cg_future *dup[3] = {f, f, F_(three)};
    cg_future *ge = cg_gather(dup, 3, 0);
    LOG("duplicate -> %s", G(cg_await(ge)));
    cg_future_unref(ge);
    cg_future_unref(f);
    cg_future_unref(F_(three));
    cg_future *gz = cg_gather(NULL, 0, 0);
    LOG("empty -> %s", G(cg_await(gz)));
    cg_future_unref(gz);
    return "ok";
}

TEST(loop_structured_gather) {
    run(gather_main);
    compare("gather");
}

/* ---------------------------------------------------------------------
 * gather_cancel (A34)
 * ------------------------------------------------------------------ */

static void *waiter_body(cg_gen *g, void *arg) {
    (void)g;
    return cg_await(arg);
}

static void result_void(void *f) { cg_future_result(f); }

static void *gather_cancel_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_future *c[2] = {F_(spawn(sleeper, S(10, NULL))), F_(spawn(sleeper, S(10, NULL)))};
    cg_future *ga = cg_gather(c, 2, 0);
    cg_sleep(0);
    LOG("cancel -> %s", cg_future_cancel(ga, NULL) ? "True" : "False");
    cg_exc *e = catch_(await_void, ga);
    LOG("gather.cancel(): awaiter raised %s children cancelled=%s,%s", X(e), cg_future_cancelled(c[0]) ? "True" : "False",
        cg_future_cancelled(c[1]) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(ga);
    cg_future *d[2] = {F_(spawn(sleeper, S(10, NULL))), F_(spawn(sleeper, S(10, NULL)))};
    cg_future *g2 = cg_gather(d, 2, 0);
    cg_sleep(0);
    cg_future_cancel(d[0], NULL);
    e = catch_(await_void, g2);
    LOG("child cancelled: awaiter raised %s other running=%s", X(e), cg_future_done(d[1]) ? "False" : "True");
    cg_exc_unref(e);
    cg_future_cancel(d[1], "why");
    cg_future *g3 = cg_gather(&d[1], 1, 1);
    const cg_gathered *r3 = cg_await(g3);
    LOG("return_exceptions on a cancelled child -> %s", G(r3));
    e = catch_(await_void, d[1]);
    LOG("first await of the child -> raised %s", X(e));
    cg_exc_unref(e);
    e = catch_(result_void, d[1]);
    LOG("then result() -> raised %s", X(e));
    cg_exc_unref(e);
    cg_future *g4 = cg_gather_bodies(&(cg_body){steps, S(1, "x")}, 1, 0);
    cg_sleep(0);
    cg_sleep(0);
    cg_sleep(0);
    int cr = cg_future_cancel(g4, NULL);
    LOG("cancel a finished gather -> %s result=%s", cr ? "True" : "False", G(cg_await(g4)));
    cg_task *t = spawn(sleeper, S(10, NULL));
    cg_future *g5 = cg_gather((cg_future *[]){F_(t)}, 1, 0);
    cg_task *outer = cg_create_task(waiter_body, g5, NULL);
    cg_sleep(0);
    cg_task_cancel(outer, "stop");
    e = catch_(await_void, F_(outer));
    LOG("task awaiting gather cancelled -> raised %s child cancelled=%s", X(e), cg_future_cancelled(F_(t)) ? "True" : "False");
    cg_exc_unref(e);
    cg_future *all[] = {c[0], c[1], d[0], d[1], g2, g3, g4, F_(t), g5, F_(outer)};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) cg_future_unref(all[i]);
    return "ok";
}

TEST(loop_structured_gather_cancel) {
    run(gather_cancel_main);
    compare("gather_cancel");
}

/* ---------------------------------------------------------------------
 * wait (A35, A55)
 * ------------------------------------------------------------------ */

static void names(char *buf, size_t size, cg_future **fs, size_t n, cg_future **all, const char **nm, size_t nall) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < nall; j++)
            if (fs[i] == all[j]) k += (size_t)snprintf(buf + k, size - k, "%s%s", i ? ", " : "", nm[j]);
    snprintf(buf + k, size - k, "]");
}

typedef struct wait_args {
    cg_future **fs;
    size_t n;
    cg_return_when when;
    cg_ns timeout;
    cg_future *done[4], *pending[4];
    size_t nd, np;
} wait_args;

static void do_wait(void *p) {
    wait_args *w = p;
    cg_wait(w->fs, w->n, w->when, w->timeout, w->done, &w->nd, w->pending, &w->np);
}

static void wait_log(const char *label, wait_args *w, cg_future **all, const char **nm, size_t nall) {
    char d[200], p[200];
    names(d, sizeof d, w->done, w->nd, all, nm, nall);
    names(p, sizeof p, w->pending, w->np, all, nm, nall);
    LOG("%s: done=%s pending=%s", label, d, p);
}

static void *wait_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    const char *rw[] = {"FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"};
    for (int i = 0; i < 3; i++) {
        cg_future *ts[3] = {F_(spawn(steps, S(1, "v1"))), F_(spawn(fail, F(3, &cg_ValueError, "bad"))),
                            F_(spawn(steps, S(6, "v6")))};
        const char *nm[3] = {"v1", "bad3", "v6"};
        wait_args w = {ts, 3, (cg_return_when)(CG_FIRST_COMPLETED + i), CG_NEVER, {0}, {0}, 0, 0};
        do_wait(&w);
        wait_log(rw[i], &w, ts, nm, 3);
        for (int j = 0; j < 3; j++) cg_future_cancel(ts[j], NULL);
        cg_future *ga = cg_gather(ts, 3, 1);
        cg_await(ga);
        cg_future_unref(ga);
        for (int j = 0; j < 3; j++) cg_future_unref(ts[j]);
    }
    cg_future *ts[2] = {F_(spawn(sleeper, S(5, NULL))), F_(spawn(sleeper, S(20, NULL)))};
    const char *nm[2] = {"s5", "s20"};
    wait_args w = {ts, 2, CG_ALL_COMPLETED, CG_MS(10), {0}, {0}, 0, 0};
    do_wait(&w);
    wait_log("timeout 10", &w, ts, nm, 2);
    w.timeout = CG_MS(-5);
    do_wait(&w);
    wait_log("timeout -5", &w, ts, nm, 2);
    w.timeout = CG_NEVER;
    w.when = CG_FIRST_EXCEPTION;
    do_wait(&w);
    wait_log("FIRST_EXCEPTION, none fails", &w, ts, nm, 2);
    wait_args bad = {NULL, 0, CG_ALL_COMPLETED, CG_NEVER, {0}, {0}, 0, 0};
    cg_exc *e = catch_(do_wait, &bad);
    LOG("wait([]) -> raised %s", X(e));
    cg_exc_unref(e);
    bad = (wait_args){ts, 2, (cg_return_when)7, CG_NEVER, {0}, {0}, 0, 0};
    e = catch_(do_wait, &bad);
    LOG("wait(return_when=7) -> raised %s", X(e));
    cg_exc_unref(e);
    cg_future_unref(ts[0]);
    cg_future_unref(ts[1]);
    return "ok";
}

TEST(loop_structured_wait) {
    run(wait_main);
    compare("wait");
}

/* ---------------------------------------------------------------------
 * taskgroup (A36)
 * ------------------------------------------------------------------ */

static void *tg_long(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        LOG("long cancelled");
        cg_reraise();
    } CG_END;
    return NULL;
}

static void sleep10(void *p) {
    (void)p;
    cg_sleep(CG_MS(10));
}

typedef struct spawn_args {
    cg_taskgroup *tg;
    cg_fn fn;
    spec *s;
    const char *name;
} spawn_args;

static void do_spawn(void *p) {
    spawn_args *a = p;
    cg_future_unref(F_(cg_taskgroup_spawn(a->tg, a->fn, a->s, a->name)));
}

static void tg_a36(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, tg_long, NULL, NULL)));
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_ValueError, "bad"), NULL)));
    CG_TRY {
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        LOG("body cancelled");
        spawn_args a = {tg, steps, S(0, NULL), NULL};
        cg_exc *err = catch_(do_spawn, &a);
        LOG("create_task -> raised %s", X(err));
        cg_exc_unref(err);
        cg_reraise();
    } CG_END;
}

typedef struct two_tasks {
    cg_task *a, *b;
    cg_taskgroup *tg;
} two_tasks;

static void tg_two(cg_taskgroup *tg, void *arg) {
    two_tasks *t = arg;
    t->tg = tg;
    t->a = cg_taskgroup_spawn(tg, sleeper, S(3, "a"), NULL);
    t->b = cg_taskgroup_spawn(tg, steps, S(2, "b"), "bee");
    LOG("spawned %s %s", cg_task_name(t->a), cg_task_name(t->b));
}

static void tg_body_error(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_KeyError, "k"), NULL)));
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(2, &cg_ValueError, "v"), NULL)));
    CG_RAISE(&cg_TypeError, "body");
}

static void tg_body_kbi(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, sleeper, S(10, NULL), NULL)));
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_ValueError, "v"), NULL)));
    cg_raise(cg_exc_new(&cg_KeyboardInterrupt, NULL));
}

typedef struct tg_call {
    void (*fn)(cg_taskgroup *, void *);
    void *arg;
} tg_call;

static void do_tg(void *p) {
    tg_call *c = p;
    cg_taskgroup_run(c->fn, c->arg);
}

static void *taskgroup_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_exc *e = catch_(do_tg, &(tg_call){tg_a36, NULL});
    LOG("group -> raised %s str='%s (%zu sub-exception%s)'", X(e), cg_exc_msg(e), cg_exc_group_count(e),
        cg_exc_group_count(e) == 1 ? "" : "s");
    CHECK(cg_exc_is(e, &cg_ExceptionGroup) && cg_exc_is(e, &cg_Exception));
    cg_exc_unref(e);
    LOG("cancelling=%d", cg_task_cancelling(cg_current_task()));
    two_tasks t = {0};
    cg_taskgroup *tg = cg_taskgroup_new();
    cg_taskgroup_run_in(tg, tg_two, &t);
    LOG("all done: %s %s", (const char *)cg_future_result(F_(t.a)), (const char *)cg_future_result(F_(t.b)));
    cg_future_unref(F_(t.a));
    cg_future_unref(F_(t.b));
    spawn_args a = {tg, steps, S(0, NULL), NULL};
    e = catch_(do_spawn, &a);
    LOG("after exit -> raised %s", X(e));
    cg_exc_unref(e);
    cg_taskgroup_free(tg);
    cg_taskgroup *tg2 = cg_taskgroup_new();
    a.tg = tg2;
    e = catch_(do_spawn, &a);
    LOG("not entered -> raised %s", X(e));
    cg_exc_unref(e);
    cg_taskgroup_free(tg2);
    e = catch_(do_tg, &(tg_call){tg_body_error, NULL});
    LOG("body error -> raised %s", X(e));
    cg_exc_unref(e);
    e = catch_(do_tg, &(tg_call){tg_body_kbi, NULL});
    LOG("KeyboardInterrupt in the body -> raised %s", X(e));
    cg_exc_unref(e);
    return "ok";
}

TEST(loop_structured_taskgroup) {
    run(taskgroup_main);
    compare("taskgroup");
}

/* ---------------------------------------------------------------------
 * taskgroup_more
 * ------------------------------------------------------------------ */

static void *tg_spawner(cg_gen *g, void *arg) {
    (void)g;
    cg_sleep(CG_MS(1));
    cg_task *t = cg_taskgroup_spawn(arg, steps, S(1, "grandchild"), "gc");
    LOG("spawned %s", cg_task_name(t));
    cg_future_unref(F_(t));
    return "spawner";
}

static void inner_group_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_ValueError, "deep"), NULL)));
    cg_sleep(CG_MS(10));
}

static void *inner_group(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_taskgroup_run(inner_group_body, NULL);
    return NULL;
}

static void tg_late_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(2, &cg_KeyError, "late"), NULL)));
    cg_future_unref(F_(cg_taskgroup_spawn(tg, sleeper, S(10, NULL), NULL)));
    LOG("body over");
}

static void tg_nested_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, inner_group, NULL, NULL)));
    cg_future_unref(F_(cg_taskgroup_spawn(tg, sleeper, S(10, NULL), NULL)));
}

static void tg_three_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_ValueError, "one"), NULL)));
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_TypeError, "two"), NULL)));
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_KeyError, "three"), NULL)));
}

static void tg_spawner_body(cg_taskgroup *tg, void *arg) {
    cg_task **s = arg;
    *s = cg_taskgroup_spawn(tg, tg_spawner, tg, NULL);
}

static void *taskgroup_more_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_exc *e = catch_(do_tg, &(tg_call){tg_late_body, NULL});
    LOG("late child -> raised %s cancelling=%d", X(e), cg_task_cancelling(cg_current_task()));
    cg_exc_unref(e);
    e = catch_(do_tg, &(tg_call){tg_nested_body, NULL});
    LOG("nested -> raised %s", X(e));
    LOG("leaf: %s", X(cg_exc_group_at(cg_exc_group_at(e, 0), 0)));
    cg_exc_unref(e);
    e = catch_(do_tg, &(tg_call){tg_three_body, NULL});
    cg_exc *m, *r;
    cg_exc_group_split(e, &cg_ValueError, &m, &r); /* except* ValueError, then the rest */
    LOG("except* ValueError: %s", X(m));
    LOG("except* rest: %s", X(r));
    cg_exc_unref(m);
    cg_exc_unref(r);
    cg_exc_unref(e);
    cg_task *sp = NULL;
    cg_taskgroup_run(tg_spawner_body, &sp);
    LOG("spawner -> %s", (const char *)cg_future_result(F_(sp)));
    cg_future_unref(F_(sp));
    return "ok";
}

TEST(loop_structured_taskgroup_more) {
    run(taskgroup_more_main);
    compare("taskgroup_more");
}

/* ---------------------------------------------------------------------
 * taskgroup_cancel
 * ------------------------------------------------------------------ */

static void tg_scope_body(cg_taskgroup *tg, void *arg) {
    cg_future_unref(F_(cg_taskgroup_spawn(tg, sleeper, S(10, NULL), NULL)));
    if (arg) cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_ValueError, "child"), NULL)));
    cg_sleep(CG_MS(10));
}

static void *tg_scope(cg_gen *g, void *arg) {
    (void)g;
    cg_exc *e = catch_(do_tg, &(tg_call){tg_scope_body, arg});
    if (e) {
        LOG("scope -> raised %s cancelling=%d", X(e), cg_task_cancelling(cg_current_task()));
        cg_raise(e);
    }
    return "finished";
}

static void tg_swallow_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(0, &cg_ValueError, "x"), NULL)));
    CG_TRY {
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        LOG("body swallows the cancel");
    } CG_END;
}

static void *taskgroup_cancel_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *t = cg_create_task(tg_scope, NULL, NULL);
    cg_sleep(0);
    cg_task_cancel(t, NULL);
    cg_exc *e = catch_(await_void, F_(t));
    LOG("outer cancel -> raised %s cancelled=%s", X(e), cg_future_cancelled(F_(t)) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(F_(t));
    t = cg_create_task(tg_scope, "fail too", NULL);
    cg_sleep(0);
    cg_sleep(0);
    cg_task_cancel(t, NULL);
    e = catch_(await_void, F_(t));
    LOG("outer cancel + child error -> raised %s cancelled=%s", X(e), cg_future_cancelled(F_(t)) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(F_(t));
    e = catch_(do_tg, &(tg_call){tg_swallow_body, NULL});
    LOG("swallowed body -> raised %s cancelling=%d", X(e), cg_task_cancelling(cg_current_task()));
    cg_exc_unref(e);
    return "ok";
}

TEST(loop_structured_taskgroup_cancel) {
    run(taskgroup_cancel_main);
    compare("taskgroup_cancel");
}

/* ---------------------------------------------------------------------
 * timeout (A37, A38)
 * ------------------------------------------------------------------ */

static long long ms_of(cg_ns t) { return (long long)(t / CG_MS(1)); }

static const char *when_str(cg_ns w) {
    static char b[4][32];
    static int k;
    char *p = b[k++ & 3];
    if (w == CG_NEVER)
        snprintf(p, 32, "None");
    else
        snprintf(p, 32, "%lld", ms_of(w));
    return p;
}

static const char *TR(const cg_timeout *t) {
    static char b[4][64];
    static int k;
    char *p = b[k++ & 3];
    cg_timeout_repr(t, p, 64);
    return p;
}

static void a37_body(void *arg) {
    cg_timeout *cm = arg;
    LOG("when=%s", when_str(cg_timeout_when(cm)));
    CG_TRY {
        cg_sleep(CG_MS(100));
    } CG_EXCEPT(&cg_CancelledError, e) {
        LOG("inner %s", X(e));
        cg_reraise();
    } CG_END;
}

static void *timeout_worker(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_timeout_call(CG_MS(10), sleep10, NULL);
    return NULL;
}

typedef struct to_run {
    cg_timeout *t;
    void (*fn)(void *);
    void *arg;
} to_run;

static void do_timeout_run(void *p) {
    to_run *r = p;
    cg_timeout_run(r->t, r->fn, r->arg);
}

static void none_body(void *arg) {
    cg_timeout *cm = arg;
    LOG("none: when=%s %s", when_str(cg_timeout_when(cm)), TR(cm));
    cg_timeout_reschedule(cm, cg_loop_time(cg_get_running_loop()) + CG_MS(50));
    LOG("rescheduled: when=%s", when_str(cg_timeout_when(cm)));
    cg_sleep(CG_MS(20));
}

static void earlier_body(void *arg) {
    cg_timeout_reschedule(arg, cg_loop_time(cg_get_running_loop()) + CG_MS(5));
    cg_sleep(CG_MS(30));
}

static void do_reschedule_none(void *arg) { cg_timeout_reschedule(arg, CG_NEVER); }
static void do_reschedule_1(void *arg) { cg_timeout_reschedule(arg, CG_MS(1)); }
static void nothing(void *arg) { (void)arg; }

static void enter_twice_body(void *arg) {
    cg_exc *e = catch_(do_timeout_run, &(to_run){arg, nothing, NULL});
    LOG("enter twice -> raised %s", X(e));
    cg_exc_unref(e);
}

static void sleep0_not_reached(void *arg) {
    (void)arg;
    cg_sleep(0);
    LOG("not reached");
}

static void do_negative(void *p) {
    (void)p;
    cg_timeout_call(CG_MS(-5), sleep0_not_reached, NULL);
}

static void *timeout_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_timeout *cm = cg_timeout_new(CG_MS(10));
    cg_exc *e = catch_(do_timeout_run, &(to_run){cm, a37_body, cm});
    LOG("timeout -> raised %s cause=%s expired=%s %s", X(e), X(cg_exc_cause(e)), cg_timeout_expired(cm) ? "True" : "False", TR(cm));
    CHECK(cg_exc_is(e, &cg_TimeoutError));
    cg_exc_unref(e);
    cg_timeout_free(cm);
    cg_task *t = cg_create_task(timeout_worker, NULL, NULL);
    cg_sleep(0);
    cg_task_cancel(t, NULL);
    e = catch_(await_void, F_(t));
    LOG("outside cancel -> raised %s cancelled=%s", X(e), cg_future_cancelled(F_(t)) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(F_(t));
    cm = cg_timeout_new(CG_NEVER);
    cg_timeout_run(cm, none_body, cm);
    LOG("expired=%s %s", cg_timeout_expired(cm) ? "True" : "False", TR(cm));
    cg_timeout_free(cm);
    cm = cg_timeout_at_new(cg_loop_time(cg_get_running_loop()) + CG_MS(1000));
    e = catch_(do_timeout_run, &(to_run){cm, earlier_body, cm});
    LOG("reschedule earlier -> raised %s", X(e));
    cg_exc_unref(e);
    e = catch_(do_reschedule_none, cm);
    LOG("reschedule after -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_free(cm);
    cm = cg_timeout_new(CG_MS(5));
    e = catch_(do_reschedule_1, cm);
    LOG("reschedule before -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_run(cm, enter_twice_body, cm);
    cg_timeout_free(cm);
    e = catch_(do_negative, NULL);
    LOG("negative -> raised %s", X(e));
    cg_exc_unref(e);
    return "ok";
}

TEST(loop_structured_timeout) {
    run(timeout_main);
    compare("timeout");
}

/* ---------------------------------------------------------------------
 * timeout_corners
 * ------------------------------------------------------------------ */

static void swallow_body(void *arg) {
    (void)arg;
    CG_TRY {
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        LOG("swallowed");
    } CG_END;
}

typedef struct nested {
    cg_timeout *outer, *inner;
} nested;

static void nested_inner(void *arg) {
    nested *n = arg;
    cg_timeout_run(n->inner, sleep10, NULL);
}

static void inner_first_body(void *arg) {
    nested *n = arg;
    cg_exc *e = catch_(do_timeout_run, &(to_run){n->inner, sleep10, NULL});
    LOG("inner first -> raised %s", X(e));
    cg_exc_unref(e);
    cg_sleep(CG_MS(10));
}

static void no_suspension(void *arg) {
    (void)arg;
    LOG("no suspension");
}

static void convert_body(void *arg) {
    CG_TRY {
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        if (arg) {
            cg_exc *k = cg_exc_new(&cg_KeyError, "k");
            cg_exc *eg = cg_exc_group_new(&cg_ExceptionGroup, "eg", &k, 1);
            cg_exc_unref(k);
            cg_raise(eg);
        }
        CG_RAISE(&cg_ValueError, "converted");
    } CG_END;
}

static void tg_in_timeout_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, sleeper, S(10, NULL), NULL)));
    cg_sleep(CG_MS(10));
}

static void tg_in_timeout(void *arg) {
    (void)arg;
    cg_taskgroup_run(tg_in_timeout_body, NULL);
}

static void raise_early(void *arg) {
    (void)arg;
    CG_RAISE(&cg_KeyError, "early");
}

static void *timeout_corners_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_timeout *cm = cg_timeout_new(CG_MS(5));
    cg_timeout_run(cm, swallow_body, NULL);
    LOG("swallowed -> ok expired=%s cancelling=%d", cg_timeout_expired(cm) ? "True" : "False",
        cg_task_cancelling(cg_current_task()));
    cg_timeout_free(cm);
    nested n = {cg_timeout_new(CG_MS(5)), cg_timeout_new(CG_MS(5))};
    cg_exc *e = catch_(do_timeout_run, &(to_run){n.outer, nested_inner, &n});
    LOG("nested same ms -> raised %s outer=%s inner=%s", X(e), cg_timeout_expired(n.outer) ? "True" : "False",
        cg_timeout_expired(n.inner) ? "True" : "False");
    cg_exc_unref(e);
    cg_timeout_free(n.outer);
    cg_timeout_free(n.inner);
    n.outer = cg_timeout_new(CG_MS(5));
    n.inner = cg_timeout_new(CG_MS(3));
    e = catch_(do_timeout_run, &(to_run){n.outer, inner_first_body, &n});
    LOG("then outer -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_free(n.outer);
    cg_timeout_free(n.inner);
    cm = cg_timeout_new(0);
    cg_timeout_run(cm, no_suspension, NULL);
    LOG("timeout 0 -> ok expired=%s", cg_timeout_expired(cm) ? "True" : "False");
    cg_timeout_free(cm);
    e = catch_(do_timeout_run, &(to_run){cm = cg_timeout_new(CG_MS(5)), convert_body, NULL});
    LOG("other error -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_free(cm);
    e = catch_(do_timeout_run, &(to_run){cm = cg_timeout_new(CG_MS(5)), convert_body, "group"});
    LOG("group -> raised %s member=%s", X(e), X(cg_exc_group_at(e, 0)));
    cg_exc_unref(e);
    cg_timeout_free(cm);
    e = catch_(do_timeout_run, &(to_run){cm = cg_timeout_new(CG_MS(5)), tg_in_timeout, NULL});
    LOG("taskgroup in timeout -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_free(cm);
    e = catch_(do_timeout_run, &(to_run){cm = cg_timeout_new(CG_MS(5)), raise_early, NULL});
    LOG("error before the deadline -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_free(cm);
    return "ok";
}

TEST(loop_structured_timeout_corners) {
    run(timeout_corners_main);
    compare("timeout_corners");
}

/* ---------------------------------------------------------------------
 * timeout_queued: a scope's timer due and queued behind its task's
 * wake-up (another task rescheduled it to now). The scope's own handle is
 * still in the ready queue when the task reschedules it (a handle of its
 * own then), frees the scope (the queue frees it), or lets it fire.
 * ------------------------------------------------------------------ */

static struct { /* static: shared with the waker, whose stack may be swapped out */
    cg_future *fut;
    cg_timeout *cm;
} tq;

static void *tq_waker(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_future_set_result(tq.fut, NULL); /* the owner's wake-up is queued first */
    cg_timeout_reschedule(tq.cm, cg_loop_time(cg_get_running_loop())); /* then the timer */
    return NULL;
}

static cg_task *tq_start(void) {
    tq.fut = cg_future_new(cg_get_running_loop());
    return cg_create_task(tq_waker, NULL, NULL);
}

static void tq_end(cg_task *w) {
    cg_await(F_(w));
    cg_future_unref(F_(w));
    cg_future_unref(tq.fut);
}

static void tq_reschedule_body(void *arg) {
    cg_task **w = arg;
    *w = tq_start();
    cg_await(tq.fut);
    LOG("woken, timer queued: expired=%s", cg_timeout_expired(tq.cm) ? "True" : "False");
    cg_timeout_reschedule(tq.cm, cg_loop_time(cg_get_running_loop()) + CG_MS(20));
    LOG("rescheduled: when=%s", when_str(cg_timeout_when(tq.cm)));
    cg_sleep(CG_MS(30));
}

static void tq_leave_body(void *arg) {
    cg_task **w = arg;
    *w = tq_start();
    cg_await(tq.fut);
}

static void tq_fire_body(void *arg) {
    tq_leave_body(arg);
    cg_sleep(0);
    LOG("not reached");
}

static void *timeout_queued_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *w = NULL;
    tq.cm = cg_timeout_new(CG_MS(50));
    cg_exc *e = catch_(do_timeout_run, &(to_run){tq.cm, tq_reschedule_body, &w});
    LOG("rescheduled while queued -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_free(tq.cm);
    tq_end(w);
    tq.cm = cg_timeout_new(CG_MS(50));
    cg_timeout_run(tq.cm, tq_leave_body, &w);
    LOG("left while queued: expired=%s %s", cg_timeout_expired(tq.cm) ? "True" : "False", TR(tq.cm));
    cg_timeout_free(tq.cm); /* its fired timer is still queued: the queue frees the scope */
    cg_sleep(CG_MS(5));
    LOG("not cancelled: cancelling=%d", cg_task_cancelling(cg_current_task()));
    tq_end(w);
    tq.cm = cg_timeout_new(CG_MS(50));
    e = catch_(do_timeout_run, &(to_run){tq.cm, tq_fire_body, &w});
    LOG("fired from the queue -> raised %s expired=%s", X(e), cg_timeout_expired(tq.cm) ? "True" : "False");
    cg_exc_unref(e);
    cg_timeout_free(tq.cm);
    tq_end(w);
    return "ok";
}

TEST(loop_structured_timeout_queued) {
    run(timeout_queued_main);
    compare("timeout_queued");
}

/* ---------------------------------------------------------------------
 * timeout_lazy: cg_timeout_call's scope puts its timer in the heap only
 * when the task's step ends inside it. Scopes left in the step that
 * entered them (returning, raising, nested, an async generator's left
 * after its consumer's), left after a suspension, and timers of the same
 * deadline armed before and inside one: the same timers fire at the same
 * times, in the same order, as asyncio's armed at __aenter__.
 * ------------------------------------------------------------------ */

/* static: read by the loop's callbacks, while the task's stack may be
 * swapped out */
static cg_task *tl_task;
static cg_ns tl_when;
static int tl_fired;

typedef struct tl_scope {
    cg_ns delay; /* CG_NEVER: at tl_when */
    void (*fn)(void *);
    void *arg;
} tl_scope;

static void tl_enter(void *p) {
    tl_scope *sc = p;
    if (sc->delay == CG_NEVER)
        cg_timeout_at_call(tl_when, sc->fn, sc->arg);
    else
        cg_timeout_call(sc->delay, sc->fn, sc->arg);
}

static void tl_pass(void *arg) { (void)arg; }
static void tl_early(void *arg) { CG_RAISE(&cg_KeyError, (const char *)arg); }
static void tl_sleep(void *arg) { cg_sleep(*(const cg_ns *)arg); }

static void tl_late(void *arg) {
    cg_sleep(CG_MS(1));
    CG_RAISE(&cg_KeyError, (const char *)arg);
}

static void tl_log_cancelling(void *arg) { LOG("%s: cancelling=%d", (const char *)arg, cg_task_cancelling(tl_task)); }

static void tl_inside(void *arg) {
    (void)arg;
    cg_handle_unref(cg_loop_call_at(cg_get_running_loop(), tl_when, tl_log_cancelling, "call_at inside, same deadline"));
    cg_sleep(CG_MS(10));
}

static const cg_ns tl_10 = CG_MS(10);

static void tl_outer_after_inner(void *arg) {
    (void)arg;
    cg_timeout_call(CG_MS(5), tl_pass, NULL);
    cg_sleep(CG_MS(20));
}

static void tl_inner30(void *arg) {
    (void)arg;
    cg_timeout_call(CG_MS(30), tl_sleep, (void *)&tl_10);
}

static void tl_three(void *arg) {
    (void)arg;
    cg_exc *e = catch_(tl_enter, &(tl_scope){CG_MS(5), tl_inner30, NULL});
    LOG("middle of three -> raised %s", X(e));
    cg_exc_unref(e);
}

static void tl_count(void *arg) {
    (void)arg;
    tl_fired++;
}

/* n timers armed inside the scope, then a sleep: the heap grows while the
 * scope holds a slot in it (one n of 100..140 fills it but for that slot) */
static void tl_many(void *arg) {
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) cg_handle_unref(cg_loop_call_later(cg_get_running_loop(), CG_MS(3 + i % 5), tl_count, NULL));
    cg_sleep(CG_MS(10));
}

static void tl_agen_block(void *arg) {
    cg_gen *g = arg;
    cg_yield(g, "1");
    cg_yield(g, "2");
}

static void *tl_agen(cg_gen *g, void *arg) {
    (void)arg;
    cg_timeout_call(CG_MS(50), tl_agen_block, g);
    LOG("agen's scope left");
    return NULL;
}

static void tl_anext(void *arg) {
    void *v = NULL;
    CHECK(cg_anext(arg, &v));
    LOG("anext -> %s", (const char *)v);
}

static void *timeout_lazy_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    tl_task = cg_current_task();
    cg_timeout_call(CG_MS(5), tl_pass, NULL);
    cg_sleep(CG_MS(10));
    LOG("left at once -> cancelling=%d", cg_task_cancelling(tl_task));
    cg_exc *e = catch_(tl_enter, &(tl_scope){CG_MS(5), tl_early, "early"});
    LOG("raised at once -> %s", X(e));
    cg_exc_unref(e);
    cg_sleep(CG_MS(10));
    LOG("not fired -> cancelling=%d", cg_task_cancelling(tl_task));
    tl_when = cg_loop_time(loop) + CG_MS(5);
    e = catch_(tl_enter, &(tl_scope){CG_NEVER, tl_inside, NULL});
    LOG("same deadline, timer armed inside -> raised %s", X(e));
    cg_exc_unref(e);
    tl_when = cg_loop_time(loop) + CG_MS(5);
    cg_handle_unref(cg_loop_call_at(loop, tl_when, tl_log_cancelling, "call_at before, same deadline"));
    e = catch_(tl_enter, &(tl_scope){CG_NEVER, tl_sleep, (void *)&tl_10});
    LOG("same deadline, timer armed before -> raised %s", X(e));
    cg_exc_unref(e);
    e = catch_(tl_enter, &(tl_scope){CG_MS(10), tl_outer_after_inner, NULL});
    LOG("outer after an inner left at once -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_call(CG_MS(20), tl_three, NULL);
    LOG("outer left -> cancelling=%d", cg_task_cancelling(tl_task));
    e = catch_(tl_enter, &(tl_scope){CG_MS(5), tl_late, "late"});
    LOG("raised after a suspension -> %s", X(e));
    cg_exc_unref(e);
    cg_sleep(CG_MS(10));
    int timeouts = 0;
    for (int n = 100; n <= 140; n++) {
        e = catch_(tl_enter, &(tl_scope){CG_MS(5), tl_many, (void *)(intptr_t)n});
        timeouts += cg_exc_is(e, &cg_TimeoutError);
        cg_exc_unref(e);
        cg_sleep(CG_MS(5));
    }
    LOG("100 to 140 timers armed inside -> %d timeouts, fired=%d", timeouts, tl_fired);
    e = catch_(tl_enter, &(tl_scope){CG_MS(5), tl_many, (void *)(intptr_t)127});
    LOG("127 timers armed inside -> raised %s fired=%d", X(e), tl_fired);
    cg_exc_unref(e);
    cg_sleep(CG_MS(10));
    LOG("fired=%d", tl_fired);
    cg_agen *ag = cg_agen_new(tl_agen, NULL, NULL);
    cg_timeout_call(CG_MS(5), tl_anext, ag);
    LOG("left before the agen's scope");
    cg_sleep(CG_MS(1));
    tl_anext(ag);
    if (!cg_anext(ag, NULL)) LOG("agen done");
    cg_agen_free(ag);
    ag = cg_agen_new(tl_agen, NULL, NULL);
    cg_timeout_call(CG_MS(5), tl_anext, ag);
    tl_anext(ag);
    if (!cg_anext(ag, NULL)) LOG("agen done without suspending");
    cg_agen_free(ag);
    cg_sleep(CG_MS(60));
    LOG("end -> cancelling=%d", cg_task_cancelling(tl_task));
    return "ok";
}

TEST(loop_structured_timeout_lazy) {
    run(timeout_lazy_main);
    compare("timeout_lazy");
}

/* ---------------------------------------------------------------------
 * wait_for (A39)
 * ------------------------------------------------------------------ */

static void *wf_slow(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        LOG("slow cancelled");
        cg_reraise();
    } CG_END;
    return "slow";
}

static void *wf_inline(cg_gen *g, void *arg) {
    (void)g;
    LOG("inline body runs in the waiting task");
    cg_sleep(CG_MS(2));
    return arg;
}

static void *wf_stubborn(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    void *volatile r = NULL;
    CG_TRY {
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        r = "kept";
    } CG_END;
    return r;
}

typedef struct wf_args {
    cg_future *f;
    cg_fn body;
    void *arg;
    cg_ns timeout;
    void *r;
} wf_args;

static void do_wait_for(void *p) {
    wf_args *w = p;
    w->r = w->body ? cg_wait_for_body(w->body, w->arg, w->timeout) : cg_wait_for(w->f, w->timeout);
}

static void *wait_for_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *t = cg_create_task(wf_slow, NULL, NULL);
    wf_args w = {F_(t), NULL, NULL, CG_MS(5), NULL};
    cg_exc *e = catch_(do_wait_for, &w);
    LOG("wait_for -> raised %s cause=%s inner cancelled=%s", X(e), X(cg_exc_cause(e)), cg_future_cancelled(F_(t)) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(F_(t));
    t = spawn(sleeper, S(3, "fine"));
    LOG("in time -> %s", (const char *)cg_wait_for(F_(t), CG_MS(5)));
    cg_future_unref(F_(t));
    LOG("no timeout -> %s", (const char *)cg_wait_for_body(sleeper, S(3, "none"), CG_NEVER));
    LOG("body -> %s", (const char *)cg_wait_for_body(wf_inline, "v", CG_MS(5)));
    cg_future *f = cg_future_new(cg_get_running_loop());
    cg_future_set_result(f, "done");
    LOG("zero on done -> %s", (const char *)cg_wait_for(f, 0));
    cg_future_unref(f);
    t = cg_create_task(wf_slow, NULL, NULL);
    cg_sleep(0);
    w = (wf_args){F_(t), NULL, NULL, 0, NULL};
    e = catch_(do_wait_for, &w);
    LOG("zero -> raised %s cause=%s cancelled=%s", X(e), X(cg_exc_cause(e)), cg_future_cancelled(F_(t)) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(F_(t));
    w = (wf_args){NULL, wf_slow, NULL, CG_MS(-1), NULL};
    e = catch_(do_wait_for, &w);
    LOG("negative body -> raised %s", X(e));
    cg_exc_unref(e);
    f = cg_future_new(cg_get_running_loop());
    w = (wf_args){f, NULL, NULL, CG_MS(2), NULL};
    e = catch_(do_wait_for, &w);
    LOG("future -> raised %s cancelled=%s", X(e), cg_future_cancelled(f) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(f);
    t = spawn(fail, F(1, &cg_KeyError, "k"));
    w = (wf_args){F_(t), NULL, NULL, CG_MS(5), NULL};
    e = catch_(do_wait_for, &w);
    LOG("error -> raised %s", X(e));
    cg_exc_unref(e);
    cg_future_unref(F_(t));
    t = cg_create_task(wf_stubborn, NULL, NULL);
    cg_sleep(0);
    LOG("zero, task swallows -> %s", (const char *)cg_wait_for(F_(t), 0));
    cg_future_unref(F_(t));
    return "ok";
}

TEST(loop_structured_wait_for) {
    run(wait_for_main);
    compare("wait_for");
}

/* ---------------------------------------------------------------------
 * wait_for_context: what the TimeoutError of a wait_for is chained to
 * ------------------------------------------------------------------ */

static void unref_task(void *t) { cg_future_unref(F_(t)); }

static void *wfc_catches(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_CancelledError, e) {
        CG_RAISE(&cg_KeyError, "k");
    } CG_END;
    return NULL;
}

static void wfc_wait_slow(void) {
    cg_task *t = spawn(sleeper, S(10, "slow"));
    CG_DEFER(unref_task, t);
    cg_wait_for(F_(t), CG_MS(2));
}

/* The twin's async defs inner_catch and inner_pass: generators the task
 * delegates to, each a frame of its own as a coroutine is. */
static void *wfc_inner_catch(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CG_TRY {
        wfc_wait_slow();
    } CG_EXCEPT(&cg_TimeoutError, e) {
        LOG("inner caught -> %s cause=%s", X(e), X(cg_exc_cause(e)));
    } CG_END;
    return NULL;
}

static void *wfc_inner_pass(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    wfc_wait_slow();
    return NULL;
}

static void wfc_variant(const char *label) {
    if (strcmp(label, "task") == 0) {
        wfc_wait_slow();
    } else if (strcmp(label, "coro") == 0) {
        cg_wait_for_body(sleeper, S(10, "slow"), CG_MS(2));
    } else if (strcmp(label, "catches") == 0) {
        cg_wait_for_body(wfc_catches, NULL, CG_MS(2));
    } else if (strcmp(label, "zero") == 0) {
        cg_task *t = spawn(sleeper, S(10, "slow"));
        CG_DEFER(unref_task, t);
        cg_sleep(0);
        cg_wait_for(F_(t), 0);
    } else if (strcmp(label, "block") == 0) {
        cg_task *t = spawn(sleeper, S(10, "slow"));
        CG_DEFER(unref_task, t);
        cg_timeout_call(CG_MS(2), await_void, F_(t));
    } else {
        cg_yield_from_new(cg_current(), strcmp(label, "inner_catch") == 0 ? wfc_inner_catch : wfc_inner_pass, NULL, NULL);
    }
}

typedef struct wfc_args {
    int handling;
    const char *label;
} wfc_args;

static void wfc_attempt(void *p) {
    wfc_args *a = p;
    CG_TRY {
        if (a->handling) CG_RAISE(&cg_ValueError, "v");
    } CG_FINALLY {
        wfc_variant(a->label);
    } CG_END;
}

static void *wait_for_context_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    static const char *const labels[] = {"task", "coro", "catches", "zero", "block", "inner_catch", "inner_pass"};
    for (int handling = 0; handling < 2; handling++) {
        for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
            wfc_args a = {handling, labels[i]};
            cg_exc *e = catch_(wfc_attempt, &a);
            if (e) LOG("%s handling=%s -> %s cause=%s", labels[i], handling ? "True" : "False", X(e), X(cg_exc_cause(e)));
            cg_exc_unref(e);
        }
    }
    return "ok";
}

TEST(loop_structured_wait_for_context) {
    run(wait_for_context_main);
    compare("wait_for_context");
}

/* ---------------------------------------------------------------------
 * combos
 * ------------------------------------------------------------------ */

static void *waiter_for(cg_gen *g, void *arg) {
    (void)g;
    return cg_wait_for(arg, CG_MS(5));
}

static void *combos_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *t = spawn(sleeper, S(10, "inner"));
    cg_task *w = cg_create_task(waiter_for, F_(t), NULL);
    cg_sleep(CG_MS(1));
    cg_task_cancel(w, NULL);
    cg_exc *e = catch_(await_void, F_(w));
    LOG("wait_for cancelled from outside -> raised %s inner cancelled=%s", X(e), cg_future_cancelled(F_(t)) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(F_(t));
    cg_future_unref(F_(w));
    t = spawn(sleeper, S(10, "shielded"));
    cg_future *sh = cg_shield(F_(t));
    wf_args wa = {sh, NULL, NULL, CG_MS(5), NULL};
    e = catch_(do_wait_for, &wa);
    LOG("wait_for(shield) -> raised %s inner done=%s", X(e), cg_future_done(F_(t)) ? "True" : "False");
    cg_exc_unref(e);
    cg_future_unref(sh);
    LOG("shielded -> %s", (const char *)cg_await(F_(t)));
    cg_future_unref(F_(t));
    cg_future *f1 = cg_future_new(cg_get_running_loop());
    cg_future_set_result(f1, "d1");
    cg_task *t2 = spawn(sleeper, S(2, "t2"));
    cg_future *fs[2] = {F_(t2), f1};
    cg_as_completed *it = cg_as_completed_new(fs, 2, CG_NEVER);
    for (cg_future *f; (f = cg_as_completed_next(it)) != NULL;) LOG("as_completed -> %s", (const char *)cg_future_result(f));
    cg_as_completed_free(it);
    size_t nd = 0, np = 0;
    cg_wait(&f1, 1, CG_ALL_COMPLETED, CG_NEVER, NULL, &nd, NULL, &np);
    LOG("wait on a done future -> %zu %zu", nd, np);
    cg_task *t3 = spawn(steps, S(0, "s"));
    cg_future *ga = cg_gather((cg_future *[]){f1, f1}, 2, 0);
    const cg_gathered *r = cg_await(ga);
    LOG("gather of done children -> %s without suspending: %s", G(r), cg_future_done(F_(t3)) ? "False" : "True");
    cg_future_unref(ga);
    cg_await(F_(t3));
    cg_future_unref(F_(t3));
    cg_future_unref(F_(t2));
    cg_future_unref(f1);
    return "ok";
}

TEST(loop_structured_combos) {
    run(combos_main);
    compare("combos");
}

/* ---------------------------------------------------------------------
 * as_completed
 * ------------------------------------------------------------------ */

typedef struct ac_args {
    cg_as_completed *it;
    cg_future *f;
} ac_args;

static void do_next(void *p) {
    ac_args *a = p;
    a->f = cg_as_completed_next(a->it);
}

static void *as_completed_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_future *fs[3] = {F_(spawn(sleeper, S(3, "c"))), F_(spawn(sleeper, S(1, "a"))), F_(spawn(sleeper, S(2, "b")))};
    const char *nm[3] = {"c", "a", "b"};
    cg_as_completed *it = cg_as_completed_new(fs, 3, CG_NEVER);
    for (cg_future *f; (f = cg_as_completed_next(it)) != NULL;) {
        char b[64];
        names(b, sizeof b, &f, 1, fs, nm, 3);
        LOG("next -> %.*s %s", (int)strlen(b) - 2, b + 1, (const char *)cg_future_result(f));
    }
    cg_as_completed_free(it);
    for (int i = 0; i < 3; i++) cg_future_unref(fs[i]);
    cg_future *gs[3] = {F_(spawn(sleeper, S(1, "x"))), F_(spawn(sleeper, S(10, "y"))), F_(spawn(sleeper, S(20, "z")))};
    const char *gn[3] = {"x", "y", "z"};
    ac_args a = {cg_as_completed_new(gs, 3, CG_MS(5)), NULL};
    for (;;) {
        cg_exc *e = catch_(do_next, &a);
        if (e) {
            LOG("timed next -> raised %s", X(e));
            cg_exc_unref(e);
            break;
        }
        if (!a.f) break;
        char b[64];
        names(b, sizeof b, &a.f, 1, gs, gn, 3);
        LOG("timed next -> %.*s", (int)strlen(b) - 2, b + 1);
    }
    cg_as_completed_free(a.it);
    for (int i = 0; i < 3; i++) cg_future_cancel(gs[i], NULL);
    cg_future *ga = cg_gather(gs, 3, 1);
    cg_await(ga);
    cg_future_unref(ga);
    for (int i = 0; i < 3; i++) cg_future_unref(gs[i]);
    it = cg_as_completed_new(NULL, 0, CG_NEVER);
    while (cg_as_completed_next(it)) LOG("not reached");
    cg_as_completed_free(it);
    LOG("empty -> done");
    return "ok";
}

TEST(loop_structured_as_completed) {
    run(as_completed_main);
    compare("as_completed");
}

/* ---------------------------------------------------------------------
 * misuse
 * ------------------------------------------------------------------ */

static void do_gather_null(void *p) {
    (void)p;
    cg_future *none[1] = {NULL};
    cg_gather(none, 1, 0);
}

static void do_shield_null(void *p) {
    (void)p;
    cg_shield(NULL);
}

static void do_timeout_enter(void *p) { cg_timeout_enter(p); }
static void do_tg_enter(void *p) { cg_taskgroup_enter(p); }

static void in_callback(void *arg) {
    cg_timeout *t = cg_timeout_new(CG_MS(1));
    cg_exc *e = catch_(do_timeout_enter, t);
    LOG("timeout in a callback -> raised %s", X(e));
    cg_exc_unref(e);
    cg_timeout_free(t);
    cg_taskgroup *tg = cg_taskgroup_new();
    e = catch_(do_tg_enter, tg);
    LOG("taskgroup in a callback -> raised %s", X(e));
    cg_exc_unref(e);
    cg_taskgroup_free(tg);
    cg_future_set_result(arg, NULL);
}

static void enter_again(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_exc *e = catch_(do_tg_enter, tg);
    LOG("enter twice -> raised %s", X(e));
    cg_exc_unref(e);
}

static void *misuse_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_exc *e = catch_(do_gather_null, NULL);
    LOG("gather(None) -> raised %s", X(e));
    cg_exc_unref(e);
    e = catch_(do_shield_null, NULL);
    LOG("shield(None) -> raised %s", X(e));
    cg_exc_unref(e);
    wf_args w = {NULL, NULL, NULL, CG_MS(1), NULL};
    e = catch_(do_wait_for, &w);
    LOG("wait_for(None) -> raised %s", X(e));
    cg_exc_unref(e);
    cg_future *none[1] = {NULL};
    wait_args wa = {none, 1, CG_ALL_COMPLETED, CG_NEVER, {0}, {0}, 0, 0};
    e = catch_(do_wait, &wa);
    LOG("wait([None]) -> raised %s", X(e));
    cg_exc_unref(e);
    cg_future *done = cg_future_new(cg_get_running_loop());
    cg_handle_unref(cg_loop_call_soon(cg_get_running_loop(), in_callback, done));
    cg_await(done);
    cg_future_unref(done);
    cg_taskgroup_run(enter_again, NULL);
    return "ok";
}

static void do_timeout_new(void *p) {
    (void)p;
    cg_timeout_free(cg_timeout_new(CG_MS(1)));
}

TEST(loop_structured_misuse) {
    run(misuse_main);
    cg_exc *e = catch_(do_timeout_new, NULL);
    emit("timeout outside a loop -> raised %s", X(e));
    cg_exc_unref(e);
    compare("misuse");
}

/* Misuse with no Python counterpart: NULL handles and C-only calls get
 * the answers the header documents. */
static void c_null_timeout_enter(void *p) { (void)p; cg_timeout_enter(NULL); }
static void c_exit_unentered(void *p) { cg_timeout_exit(p, NULL); }
static void c_null_spawn(void *p) { (void)p; cg_taskgroup_spawn(NULL, steps, NULL, NULL); }
static void c_spawn_null_body(void *p) { cg_taskgroup_spawn(p, NULL, NULL, NULL); }
static void c_null_next(void *p) { (void)p; cg_as_completed_next(NULL); }
static void c_gather_count_plain(void *p) { cg_gather_count(p); }
static void c_gather_child_range(void *p) { cg_gather_child(p, 5); }
static void c_split_null_type(void *p) { cg_exc_group_split(p, NULL, NULL, NULL); }
static void c_group_bad_type(void *p) { cg_exc_unref(cg_exc_group_new(&cg_ValueError, "m", (cg_exc **)&p, 1)); }
static void c_gather_null_body(void *p) {
    (void)p;
    cg_body b = {NULL, NULL};
    cg_gather_bodies(&b, 1, 0);
}
static void c_wait_when_zero(void *p) { cg_wait((cg_future **)&p, 1, (cg_return_when)0, CG_NEVER, NULL, NULL, NULL, NULL); }
static void c_wait_for_zero_null(void *p) { (void)p; cg_wait_for(NULL, 0); }

static void tg_spawn_null_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_exc *e = catch_(c_spawn_null_body, tg);
    CHECK_EXC(e, "TypeError('a coroutine was expected, got NULL')");
    cg_exc_unref(e);
}

static void check_active_repr(cg_ns when, const char *want) {
    cg_timeout *t = cg_timeout_at_new(when);
    cg_timeout_enter(t);
    char b[64];
    cg_timeout_repr(t, b, sizeof b);
    CHECK_STR(b, want);
    cg_timeout_exit(t, NULL);
    cg_timeout_free(t);
}

static void tg_repr_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    char b[64];
    cg_taskgroup_repr(tg, b, sizeof b);
    CHECK_STR(b, "<TaskGroup entered>");
    cg_future_unref(F_(cg_taskgroup_spawn(tg, steps, S(1, NULL), NULL)));
    cg_taskgroup_repr(tg, b, sizeof b);
    CHECK_STR(b, "<TaskGroup tasks=1 entered>");
}

static void *misuse_c_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    cg_exc *e = catch_(c_null_timeout_enter, NULL);
    CHECK_EXC(e, "TypeError('cg_timeout_enter() argument must be a Timeout, not NULL')");
    cg_exc_unref(e);
    cg_timeout *t = cg_timeout_new(CG_MS(1));
    e = catch_(c_exit_unentered, t);
    CHECK_EXC(e, "AssertionError()");
    cg_exc_unref(e);
    cg_timeout_free(t);
    e = catch_(c_null_spawn, NULL);
    CHECK_EXC(e, "TypeError('cg_taskgroup_spawn() argument must be a TaskGroup, not NULL')");
    cg_exc_unref(e);
    cg_taskgroup_run(tg_spawn_null_body, NULL);
    e = catch_(c_null_next, NULL);
    CHECK_EXC(e, "TypeError('cg_as_completed_next() argument must be an iterator, not NULL')");
    cg_exc_unref(e);
    cg_future *f = cg_future_new(loop);
    e = catch_(c_gather_count_plain, f);
    CHECK_EXC(e, "TypeError('cg_gather_count() argument must be a gather() future')");
    cg_exc_unref(e);
    e = catch_(c_wait_when_zero, f);
    CHECK_EXC(e, "ValueError('Invalid return_when value: 0')");
    cg_exc_unref(e);
    cg_future *gz = cg_gather(NULL, 0, 0);
    CHECK(cg_future_done(gz));
    e = catch_(c_gather_child_range, gz);
    CHECK_EXC(e, "IndexError('list index out of range')");
    cg_exc_unref(e);
    cg_future_unref(gz);
    cg_future_unref(f);
    cg_exc *v = cg_exc_new(&cg_ValueError, "v");
    e = catch_(c_split_null_type, v);
    CHECK(cg_exc_is(e, &cg_TypeError));
    cg_exc_unref(e);
    e = catch_(c_group_bad_type, v);
    CHECK_EXC(e, "TypeError('ValueError is not a subclass of BaseExceptionGroup')");
    cg_exc_unref(e);
    cg_exc *m, *r;
    cg_exc_group_split(v, &cg_ValueError, &m, &r); /* a leaf matches whole */
    CHECK(m == v && r == NULL);
    cg_exc_unref(m);
    cg_exc_unref(v);
    e = catch_(c_gather_null_body, NULL);
    CHECK_EXC(e, "TypeError('An asyncio.Future, a coroutine or an awaitable is required')");
    cg_exc_unref(e);
    e = catch_(c_wait_for_zero_null, NULL);
    CHECK_EXC(e, "TypeError('An asyncio.Future, a coroutine or an awaitable is required')");
    cg_exc_unref(e);
    cg_as_completed_free(NULL);
    cg_timeout_free(NULL);
    cg_taskgroup_free(NULL);
    CHECK(cg_timeout_when(NULL) == CG_NEVER && !cg_timeout_expired(NULL));
    /* repr of an active Timeout: round(when, 3) in seconds, as a float */
    check_active_repr(CG_MS(10), "<Timeout [active] when=0.01>");
    check_active_repr(CG_SEC(2), "<Timeout [active] when=2.0>");
    check_active_repr(CG_MS(1500), "<Timeout [active] when=1.5>");
    check_active_repr(CG_MS(-500), "<Timeout [active] when=-0.5>");
    check_active_repr(CG_NEVER, "<Timeout [active] when=None>");
    t = cg_timeout_new(CG_MS(1));
    char b[64];
    cg_timeout_repr(t, b, sizeof b);
    CHECK_STR(b, "<Timeout [created]>");
    cg_timeout_free(t);
    cg_taskgroup *tg = cg_taskgroup_new();
    cg_taskgroup_repr(tg, b, sizeof b);
    CHECK_STR(b, "<TaskGroup>");
    cg_taskgroup_run_in(tg, tg_repr_body, NULL);
    cg_taskgroup_repr(tg, b, sizeof b);
    CHECK_STR(b, "<TaskGroup entered>");
    cg_taskgroup_free(tg);
    return "ok";
}

/* The enter/exit form, written as the header says: exit from the handler
 * of what the block raised, or with NULL after it. Same outcomes as the
 * function form (the twin's timeout and taskgroup cases). */
static void enter_exit_timeout(void *arg) {
    cg_timeout *t = arg;
    cg_timeout_enter(t);
    CG_TRY {
        cg_sleep(CG_MS(100));
    } CG_EXCEPT(&cg_BaseException, e) {
        cg_timeout_exit(t, e);
        cg_reraise();
    } CG_END;
    cg_timeout_exit(t, NULL);
}

static void enter_exit_tg(void *arg) {
    cg_taskgroup *tg = arg;
    cg_taskgroup_enter(tg);
    CG_TRY {
        cg_future_unref(F_(cg_taskgroup_spawn(tg, fail, F(1, &cg_ValueError, "bad"), NULL)));
        cg_sleep(CG_MS(10));
    } CG_EXCEPT(&cg_BaseException, e) {
        cg_taskgroup_exit(tg, e);
        cg_reraise();
    } CG_END;
    cg_taskgroup_exit(tg, NULL);
}

static void *enter_exit_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_timeout *t = cg_timeout_new(CG_MS(10));
    cg_exc *e = catch_(enter_exit_timeout, t);
    CHECK_EXC(e, "TimeoutError() <- CancelledError()");
    CHECK(cg_exc_is(cg_exc_cause(e), &cg_CancelledError) && cg_timeout_expired(t));
    CHECK_EQ(cg_loop_time(cg_get_running_loop()), CG_MS(10));
    CHECK_EQ(cg_task_cancelling(cg_current_task()), 0);
    cg_exc_unref(e);
    cg_timeout_free(t);
    t = cg_timeout_new(CG_MS(500));
    cg_timeout_enter(t);
    cg_sleep(CG_MS(1));
    cg_timeout_exit(t, NULL);
    CHECK(!cg_timeout_expired(t));
    cg_timeout_free(t);
    cg_taskgroup *tg = cg_taskgroup_new();
    e = catch_(enter_exit_tg, tg);
    CHECK_EXC(e, "ExceptionGroup('unhandled errors in a TaskGroup', [ValueError('bad')]) <- CancelledError()");
    CHECK_EQ(cg_task_cancelling(cg_current_task()), 0);
    cg_exc_unref(e);
    cg_taskgroup_free(tg);
    return "done";
}

TEST(loop_structured_enter_exit) {
    run(enter_exit_main);
    CHECK_STR(trace, "run -> done\n");
    tlen = 0;
}

static void c_gather_empty_outside(void *p) {
    (void)p;
    cg_gather(NULL, 0, 0);
}

TEST(loop_structured_misuse_c) {
    run(misuse_c_main);
    CHECK_STR(trace, "run -> ok\n");
    tlen = 0;
    cg_exc *e = catch_(c_gather_empty_outside, NULL);
    CHECK_EXC(e, "RuntimeError('no running event loop')");
    cg_exc_unref(e);
}

/* ---------------------------------------------------------------------
 * destroy: a loop closed with helpers pending
 * ------------------------------------------------------------------ */

static void group_sleeper(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_future_unref(F_(cg_taskgroup_spawn(tg, sleeper, S(100, NULL), NULL)));
}

static void *group_body(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_taskgroup_run(group_sleeper, NULL);
    return NULL;
}

static void *destroy_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_body b[2] = {{sleeper, S(100, NULL)}, {sleeper, S(100, NULL)}};
    cg_future *ga = cg_gather_bodies(b, 2, 0);
    cg_task *t = spawn(sleeper, S(100, NULL));
    cg_task *inner = spawn(sleeper, S(100, NULL));
    cg_future *sh = cg_shield(F_(inner));
    cg_future_unref(F_(inner));
    cg_task *u = cg_create_task(group_body, NULL, NULL);
    cg_sleep(CG_MS(1));
    const char *tf[] = {"False", "True"};
    LOG("pending: %s %s %s %s", tf[cg_future_done(ga)], tf[cg_future_done(F_(t))], tf[cg_future_done(sh)],
        tf[cg_future_done(F_(u))]);
    cg_future_unref(ga);
    cg_future_unref(F_(t));
    cg_future_unref(sh);
    cg_future_unref(F_(u));
    return "ok";
}

TEST(loop_structured_destroy) {
    cg_loop_opts lo = {CG_LOOP_VIRTUAL_CLOCK};
    cg_loop *loop = cg_loop_new(&lo);
    CHECK(loop != NULL);
    cg_loop_set_exception_handler(loop, handler, NULL);
    cg_task *m = cg_task_new(loop, destroy_main, NULL, NULL);
    void *out = NULL;
    CHECK_EQ(cg_loop_run_until_complete(loop, F_(m), &out, NULL), CG_RETURNED);
    emit("run -> %s", (const char *)out);
    cg_future_unref(F_(m));
    cg_loop_free(loop);
    emit("closed");
    compare("destroy");
}

/* cg_run(main_body) on the virtual clock, which must return "done". */
static void run_to_done(cg_fn main_body) {
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, NULL, NULL};
    void *out = NULL;
    CHECK_EQ(cg_run(main_body, NULL, &o, &out, NULL), CG_RETURNED);
    CHECK(out && strcmp(out, "done") == 0);
}

/* ---------------------------------------------------------------------
 * cg_future_unretrieved (Future._log_traceback) and cg_taskgroup_spawn_opts:
 * plain checks, no twin (the flag is what asyncio's Future.__del__ reads).
 * ------------------------------------------------------------------ */

static void tg_opts_body(cg_taskgroup *tg, void *arg) {
    (void)arg;
    cg_task_opts o = {"big", 256 * 1024, 0};
    cg_task *t = cg_taskgroup_spawn_opts(tg, steps, S(1, "x"), &o);
    CHECK(strcmp(cg_task_name(t), "big") == 0);
    CHECK(cg_gen_stack_size(cg_task_gen(t)) >= 256 * 1024);
    cg_task *u = cg_taskgroup_spawn_opts(tg, steps, S(0, NULL), NULL);
    CHECK(strncmp(cg_task_name(u), "Task-", 5) == 0);
    cg_future_unref(F_(t));
    cg_future_unref(F_(u));
}

static void *unretrieved_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *lp = cg_get_running_loop();
    cg_future *f = cg_future_new(lp);
    CHECK_EQ(cg_future_unretrieved(f), 0); /* pending */
    cg_future_set_exception(f, cg_exc_new(&cg_ValueError, "v"));
    CHECK_EQ(cg_future_unretrieved(f), 1);
    CHECK_EQ(cg_future_unretrieved(f), 1); /* asking does not retrieve */
    CHECK(cg_future_exception(f) != NULL);
    CHECK_EQ(cg_future_unretrieved(f), 0);
    cg_future_unref(f);
    f = cg_future_new(lp);
    cg_future_set_result(f, NULL);
    CHECK_EQ(cg_future_unretrieved(f), 0);
    cg_future_unref(f);
    f = cg_future_new(lp);
    CHECK_EQ(cg_future_cancel(f, NULL), 1);
    CHECK_EQ(cg_future_unretrieved(f), 0);
    cg_future_unref(f);
    cg_task *t = spawn(fail, F(0, &cg_KeyError, "k"));
    cg_sleep(CG_MS(1));
    CHECK(cg_future_done(F_(t)));
    CHECK_EQ(cg_future_unretrieved(F_(t)), 1);
    CHECK_EQ(cg_task_cancel(t, NULL), 0); /* Task.cancel() of a finished task retrieves */
    CHECK_EQ(cg_future_unretrieved(F_(t)), 0);
    cg_future_unref(F_(t));
    CHECK_EQ(cg_future_unretrieved(NULL), 0);
    cg_taskgroup_run(tg_opts_body, NULL);
    return "done";
}

TEST(loop_structured_unretrieved_opts) { run_to_done(unretrieved_main); }

/* ---------------------------------------------------------------------
 * Task.cancel() around a cycle of tasks awaiting each other: CPython's
 * Task.cancel recurses (a gather passes the request to its children) until
 * its recursion limit, RecursionError; so does the loop, without
 * overflowing its stack. A long chain without a cycle is cancelled whole.
 * ------------------------------------------------------------------ */

static cg_task *cyc_a, *cyc_b;

static void *cyc_gatherer(cg_gen *g, void *arg) { /* a: await gather(b) */
    (void)g;
    (void)arg;
    cg_future *kid = F_(cyc_b);
    cg_future *gf = cg_gather(&kid, 1, 0);
    cg_exc *e = catch_(await_void, gf);
    cg_future_unref(gf);
    if (e) cg_raise(e);
    return NULL;
}

static void *cyc_joiner(cg_gen *g, void *arg) { /* b: await a */
    (void)g;
    (void)arg;
    return cg_await(F_(cyc_a));
}

static void *chain_link(cg_gen *g, void *arg) { /* await the next one */
    (void)g;
    return arg ? cg_await(arg) : (cg_sleep(CG_SEC(100)), NULL);
}

static void cancel_a(void *p) { cg_task_cancel(p, NULL); }
static void cancel_a_msg(void *p) { cg_task_cancel(p, "round and round"); }

static void *cycle_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cyc_a = cg_create_task(cyc_gatherer, NULL, "a");
    cyc_b = cg_create_task(cyc_joiner, NULL, "b");
    cg_sleep(0);
    cg_sleep(0);
    cg_exc *e = catch_(cancel_a, cyc_a);
    CHECK(e != NULL);
    CHECK(cg_exc_is(e, &cg_RecursionError));
    CHECK(strcmp(cg_exc_msg(e), "maximum recursion depth exceeded") == 0);
    cg_exc_unref(e);
    /* with a message: the message is given back too (the leak checks of
     * make check's sanitizers and valgrind see it) */
    e = catch_(cancel_a_msg, cyc_a);
    CHECK(e != NULL && cg_exc_is(e, &cg_RecursionError));
    cg_exc_unref(e);
    /* a chain of 300 tasks, each awaiting the next: one cancel reaches the
     * last, and every one ends cancelled */
    enum { N = 300 };
    static cg_task *chain[N];
    for (int i = N - 1; i >= 0; i--) chain[i] = cg_create_task(chain_link, i == N - 1 ? NULL : F_(chain[i + 1]), NULL);
    cg_sleep(0);
    CHECK_EQ(cg_task_cancel(chain[0], NULL), 1);
    CHECK_EQ(cg_task_cancelling(chain[N - 1]), 1);
    cg_future *last = F_(chain[0]);
    cg_exc *w = catch_(await_void, last);
    CHECK(w && cg_exc_is(w, &cg_CancelledError));
    cg_exc_unref(w);
    for (int i = 0; i < N; i++) {
        CHECK(cg_future_cancelled(F_(chain[i])));
        cg_future_unref(F_(chain[i]));
    }
    return "done";
}

static int dropped;
static void count_drops(cg_loop *lp, const cg_loop_context *ctx, void *ud) {
    (void)lp;
    (void)ud;
    dropped += strcmp(ctx->message, "Task was destroyed but it is pending!") == 0;
}

/* Not cg_run: its shutdown would cancel a and b, round the cycle again.
 * The loop is freed with them pending instead. */
TEST(loop_structured_cancel_cycle) {
    cg_loop_opts lo = {CG_LOOP_VIRTUAL_CLOCK};
    cg_loop *lp = cg_loop_new(&lo);
    cg_loop_set_exception_handler(lp, count_drops, NULL);
    cg_task_opts big = {NULL, 2u << 20, 0}; /* 500 nested cancels, sanitizer frames included */
    cg_task *m = cg_task_new(lp, cycle_main, NULL, &big);
    void *out = NULL;
    CHECK_EQ(cg_loop_run_until_complete(lp, F_(m), &out, NULL), CG_RETURNED);
    CHECK(out && strcmp(out, "done") == 0);
    cg_future_unref(F_(m));
    cg_future_unref(F_(cyc_a));
    cg_future_unref(F_(cyc_b));
    cg_loop_free(lp);
    CHECK_EQ(dropped, 2);
}

/* ---------------------------------------------------------------------
 * asyncio.wait keeps what it waits on alive (the set in _wait's frame):
 * the caller may let go of its reference while the task waits; the wait
 * then ends (here by a cancel) without touching freed memory (this case
 * fails under the sanitizers and valgrind of make check without it).
 * ------------------------------------------------------------------ */

static void *waits_first(cg_gen *g, void *arg) {
    (void)g;
    cg_future *f = arg;
    cg_wait(&f, 1, CG_FIRST_COMPLETED, CG_NEVER, NULL, NULL, NULL, NULL);
    return "not reached";
}

static void *wait_holds_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_future *f = cg_future_new(cg_get_running_loop());
    cg_task *w = cg_create_task(waits_first, f, "w");
    cg_sleep(0); /* w waits on f */
    cg_future_unref(f);
    CHECK_EQ(cg_task_cancel(w, NULL), 1);
    cg_exc *e = catch_(await_void, F_(w));
    CHECK(e && cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_future_unref(F_(w));
    return "done";
}

TEST(loop_structured_wait_holds) { run_to_done(wait_holds_main); }

/* ---------------------------------------------------------------------
 * A waiting task that gives up (cancelled) after the future it waits on
 * completed but before that future's done callback ran: the callback is
 * already queued, and must not run on what wait and wait_for(..., 0) made
 * for the wait, freed by then (the sanitizers and valgrind of make check
 * see it if it does).
 * ------------------------------------------------------------------ */

static void *sleeps_long(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_sleep(CG_SEC(1));
    return NULL;
}

static void *waits_for_now(cg_gen *g, void *arg) {
    (void)g;
    return cg_wait_for(arg, 0); /* cancels arg, then waits for it */
}

/* t sleeps; w waits on it (and, with wait_for 0, cancels it); then t is
 * cancelled and w too, in this order: in the next iteration t ends (its
 * callbacks are scheduled) and then w gives up; the callback comes after. */
static void late_callback(cg_fn waiter) {
    cg_task *t = cg_create_task(sleeps_long, NULL, "t");
    cg_task *w = cg_create_task(waiter, F_(t), "w");
    cg_sleep(0);
    cg_task_cancel(t, NULL);
    CHECK_EQ(cg_task_cancel(w, NULL), 1);
    cg_exc *e = catch_(await_void, F_(w));
    CHECK(e && cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_sleep(0);
    cg_sleep(0);
    CHECK(cg_future_cancelled(F_(t)));
    cg_future_unref(F_(t));
    cg_future_unref(F_(w));
}

static void *late_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    late_callback(waits_first);
    late_callback(waits_for_now);
    return "done";
}

TEST(loop_structured_late_callbacks) { run_to_done(late_main); }

/* The same callbacks still scheduled when the loop is freed: they never
 * run, and what they hold goes with them (LeakSanitizer and valgrind
 * report it otherwise). */
static cg_task *drop_w;

static void *drop_main(cg_gen *g, void *arg) {
    (void)g;
    cg_task *t = cg_create_task(sleeps_long, NULL, "t");
    drop_w = cg_create_task((cg_fn)arg, F_(t), "w");
    cg_sleep(0);
    cg_task_cancel(t, NULL); /* t ends in the next iteration, the loop stops after it */
    cg_future_unref(F_(t));
    return NULL;
}

static void dropped_callback(cg_fn waiter) {
    cg_loop_opts lo = {CG_LOOP_VIRTUAL_CLOCK};
    cg_loop *lp = cg_loop_new(&lo);
    cg_loop_set_exception_handler(lp, count_drops, NULL);
    cg_task *m = cg_task_new(lp, drop_main, (void *)waiter, NULL);
    CHECK_EQ(cg_loop_run_until_complete(lp, F_(m), NULL, NULL), CG_RETURNED);
    CHECK(!cg_future_done(F_(drop_w)));
    cg_future_unref(F_(m));
    cg_future_unref(F_(drop_w));
    cg_loop_free(lp);
}

TEST(loop_structured_dropped_callbacks) {
    dropped = 0;
    dropped_callback(waits_first);
    dropped_callback(waits_for_now);
    CHECK_EQ(dropped, 2); /* w, each time */
}

/* ---------------------------------------------------------------------
 * retrieved: shield's and gather's callbacks on a child retrieve its
 * exception even once the outer future is done and dropped (asyncio's
 * closures keep the outer alive); shield's is removed only when the outer
 * is done while the child is still pending.
 * ------------------------------------------------------------------ */

static const char *TF(int b) { return b ? "True" : "False"; }

static void *retrieved_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    /* the inner task's first step raises before shield's outer callback runs */
    cg_task *t = spawn(fail, F(0, &cg_ValueError, "first step"));
    cg_future *s = cg_shield(F_(t));
    cg_future_cancel(s, NULL);
    cg_future_unref(s);
    cg_sleep(0);
    cg_sleep(0);
    LOG("shield, failed first: done=%s unretrieved=%s", TF(cg_future_done(F_(t))), TF(cg_future_unretrieved(F_(t))));
    cg_future_unref(F_(t));
    /* the inner task fails after the outer's callback removed shield's */
    t = spawn(fail, F(2, &cg_ValueError, "later"));
    s = cg_shield(F_(t));
    cg_sleep(0);
    cg_future_cancel(s, NULL);
    cg_future_unref(s);
    for (int i = 0; i < 3; i++) cg_sleep(0);
    LOG("shield, failed later: done=%s unretrieved=%s", TF(cg_future_done(F_(t))), TF(cg_future_unretrieved(F_(t))));
    cg_future_unref(F_(t));
    /* gather's first failure ends it; the caller drops it; the others fail later */
    cg_future *k[3] = {F_(spawn(fail, F(0, &cg_KeyError, "a"))), F_(spawn(fail, F(0, &cg_KeyError, "b"))),
                       F_(spawn(fail, F(3, &cg_KeyError, "c")))};
    cg_future *gf = cg_gather(k, 3, 0);
    cg_exc *e = catch_(await_void, gf);
    LOG("gather -> raised %s", X(e));
    cg_exc_unref(e);
    cg_future_unref(gf);
    cg_sleep(CG_MS(5));
    LOG("gather: unretrieved=%s %s %s", TF(cg_future_unretrieved(k[0])), TF(cg_future_unretrieved(k[1])),
        TF(cg_future_unretrieved(k[2])));
    for (int i = 0; i < 3; i++) cg_future_unref(k[i]);
    /* a gather nobody awaits, dropped while its children run */
    k[0] = F_(spawn(fail, F(1, &cg_KeyError, "x")));
    k[1] = F_(spawn(sleeper, S(2, "y")));
    cg_future_unref(cg_gather(k, 2, 1));
    cg_sleep(CG_MS(5));
    LOG("dropped gather: unretrieved=%s %s", TF(cg_future_unretrieved(k[0])), TF(cg_future_unretrieved(k[1])));
    cg_future_unref(k[0]);
    cg_future_unref(k[1]);
    return "ok";
}

TEST(loop_structured_retrieved) {
    run(retrieved_main);
    compare("retrieved");
}

static const check_case cases[] = {
    CASE(loop_structured_destroy),
    CASE(loop_structured_groups),
    CASE(loop_structured_shield),
    CASE(loop_structured_gather),
    CASE(loop_structured_gather_cancel),
    CASE(loop_structured_wait),
    CASE(loop_structured_taskgroup),
    CASE(loop_structured_taskgroup_more),
    CASE(loop_structured_taskgroup_cancel),
    CASE(loop_structured_timeout),
    CASE(loop_structured_timeout_corners),
    CASE(loop_structured_timeout_queued),
    CASE(loop_structured_timeout_lazy),
    CASE(loop_structured_wait_for),
    CASE(loop_structured_wait_for_context),
    CASE(loop_structured_combos),
    CASE(loop_structured_as_completed),
    CASE(loop_structured_misuse),
    CASE(loop_structured_misuse_c),
    CASE(loop_structured_enter_exit),
    CASE(loop_structured_unretrieved_opts),
    CASE(loop_structured_cancel_cycle),
    CASE(loop_structured_wait_holds),
    CASE(loop_structured_late_callbacks),
    CASE(loop_structured_dropped_callbacks),
    CASE(loop_structured_retrieved),
};

CHECK_MAIN(cases)
