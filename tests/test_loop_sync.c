/* test_loop_sync.c: the synchronization primitives and queues of
 * cogen_loop.h against CPython 3.13's asyncio.
 *
 * A case with a Python twin (tests/loop/<case>.py, run on CPython 3.13 with
 * the virtual clock of tests/loop/sync_vloop.py) builds the same trace line
 * by line and must equal the twin's output, checked in as
 * tests/loop/<case>.expected (tests/loop/sync_regen.sh remakes them).
 * Addresses in reprs are masked (0x?) on both sides. Times are virtual
 * milliseconds (CG_LOOP_VIRTUAL_CLOCK). Cases without a twin (C-only
 * misuse, lifetimes) assert directly.
 */
#include "cogen_loop.h"
#include "check.h"

#include <stdarg.h>
#include <stdint.h>

/* ---------------------------------------------------------------------
 * The trace and its comparison with the twin's output
 * ------------------------------------------------------------------ */

static char trace[1 << 16];
static size_t trace_len;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(trace + trace_len, sizeof trace - trace_len - 1, fmt, ap);
    va_end(ap);
    CHECK(k >= 0 && (size_t)k < sizeof trace - trace_len - 2);
    trace_len += (size_t)k;
    trace[trace_len++] = '\n';
    trace[trace_len] = '\0';
}

/* "0x7f12ab" -> "0x?", as the twins' out() does. */
static void mask_addresses(char *s) {
    char *w = s;
    for (const char *r = s; *r;) {
        if (r[0] == '0' && r[1] == 'x' && ((r[2] >= '0' && r[2] <= '9') || (r[2] >= 'a' && r[2] <= 'f'))) {
            *w++ = '0';
            *w++ = 'x';
            *w++ = '?';
            r += 2;
            while ((*r >= '0' && *r <= '9') || (*r >= 'a' && *r <= 'f')) r++;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* tests/loop/, next to this file. */
static void twin_path(char *buf, size_t size, const char *name) {
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dir = slash ? (int)(slash - file) : 1;
    snprintf(buf, size, "%.*s/loop/%s.expected", dir, slash ? file : ".", name);
}

/* The trace must equal tests/loop/<name>.expected. */
static void expect_twin(const char *name) {
    char path[4096];
    twin_path(path, sizeof path, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        abort();
    }
    static char want[1 << 16];
    size_t n = fread(want, 1, sizeof want - 1, f);
    fclose(f);
    want[n] = '\0';
    mask_addresses(trace);
    fputs(trace, stdout);
    if (strcmp(trace, want) != 0) {
        /* the first line that differs */
        const char *a = trace, *b = want;
        int line = 1;
        while (*a && *a == *b) {
            if (*a == '\n') line++;
            a++, b++;
        }
        fprintf(stderr, "trace differs from %s at line %d\n--- expected (CPython)\n%s--- got (cogen)\n%s", path, line,
                want, trace);
        abort();
    }
    trace_len = 0;
    trace[0] = '\0';
}

/* ---------------------------------------------------------------------
 * Helpers: running, calling, gathering
 * ------------------------------------------------------------------ */

static long now(void) { return (long)(cg_loop_time(cg_get_running_loop()) / CG_MS(1)); }

/* asyncio.run(main()) on the virtual clock; main must return normally. */
static void run_main(cg_fn body, void *arg) {
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, NULL, NULL};
    cg_exc *e = NULL;
    cg_status st = cg_run(body, arg, &o, NULL, &e);
    if (st != CG_RETURNED) fprintf(stderr, "main raised %s\n", check_exc(e));
    CHECK_EQ(st, CG_RETURNED);
}

/* The twins' call(): "raise <repr>" of what fn(arg) raised, or NULL. */
static const char *raised(void (*fn)(void *), void *arg) {
    static char bufs[4][512];
    static int k;
    cg_exc *e = cg_try_call(fn, arg);
    if (!e) return NULL;
    char *b = bufs[k++ % 4];
    memcpy(b, "raise ", 6);
    cg_exc_repr(e, b + 6, sizeof bufs[0] - 6);
    cg_exc_unref(e);
    return b;
}

static const char *TF(int v) { return v ? "True" : "False"; }

/* asyncio.gather(*tasks, return_exceptions=True) as far as the order of
 * events goes: a done callback per child, the outer future set by the
 * last one, the awaiting task woken by the outer future. */
typedef struct gather_st {
    cg_future *outer;
    size_t left;
} gather_st;

static void gather_cb(cg_future *f, void *arg) {
    gather_st *g = arg;
    if (!cg_future_cancelled(f)) (void)cg_future_exception(f);
    if (--g->left == 0) cg_future_set_result(g->outer, NULL);
}

static void gather(cg_task **ts, size_t n) {
    gather_st g = {cg_future_new(cg_get_running_loop()), n};
    CHECK(g.outer != NULL);
    if (n == 0) cg_future_set_result(g.outer, NULL);
    for (size_t i = 0; i < n; i++) CHECK_EQ(cg_future_add_done_callback(cg_task_future(ts[i]), gather_cb, &g), 0);
    cg_await(g.outer);
    cg_future_unref(g.outer);
}

static void unref_tasks(cg_task **ts, size_t n) {
    for (size_t i = 0; i < n; i++) cg_future_unref(cg_task_future(ts[i]));
}

static void cancel_cb(void *t) { cg_task_cancel(t, NULL); }

static void call_later_cancel(long ms, cg_task *t) {
    cg_handle *h = cg_loop_call_later(cg_get_running_loop(), CG_MS(ms), cancel_cb, t);
    CHECK(h != NULL);
    cg_handle_unref(h);
}

/* A task body: fn(arg) with CancelledError logged as "<now> <who>
 * cancelled ..." by the caller's on_cancel, then re-raised. */
static void w_lock_release(void *l) { cg_lock_release(l); }

/* ---------------------------------------------------------------------
 * Lock
 * ------------------------------------------------------------------ */

typedef struct lock_user {
    cg_lock *lock;
    int n;
} lock_user;

static void user_body(void *p) {
    lock_user *u = p;
    out("%ld u%d in locked=%s", now(), u->n, TF(cg_lock_locked(u->lock)));
    cg_sleep(CG_MS(10));
    out("%ld u%d out", now(), u->n);
}

static void *user_task(cg_gen *g, void *p) {
    (void)g;
    lock_user *u = p;
    cg_lock_with(u->lock, user_body, u);
    return NULL;
}

static const char *order[4];
static int norder;

static void *other_task(cg_gen *g, void *p) {
    (void)g, (void)p;
    order[norder++] = "other";
    return NULL;
}

static void raise_boom(void *p) {
    (void)p;
    CG_RAISE(&cg_ValueError, "boom");
}

static void with_raise_boom(void *l) { cg_lock_with(l, raise_boom, NULL); }
static void with_release(void *l) { cg_lock_with(l, w_lock_release, l); }

static void *lock_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_lock *lock = cg_lock_new(NULL);
    CHECK(lock != NULL);
    out("locked=%s", TF(cg_lock_locked(lock)));
    out("acquire -> %s", TF(cg_lock_acquire(lock)));
    lock_user us[3];
    cg_task *ts[3];
    for (int i = 0; i < 3; i++) {
        us[i] = (lock_user){lock, i};
        ts[i] = cg_create_task(user_task, &us[i], NULL);
    }
    cg_sleep(0);
    out("%ld release", now());
    cg_lock_release(lock);
    out("locked after release=%s", TF(cg_lock_locked(lock)));
    gather(ts, 3);
    unref_tasks(ts, 3);
    out("%ld release unlocked: %s", now(), raised(w_lock_release, lock));
    out("locked=%s", TF(cg_lock_locked(lock)));
    /* an uncontended acquire does not suspend */
    cg_task *t = cg_create_task(other_task, NULL, NULL);
    cg_lock_acquire(lock);
    order[norder++] = "acquired";
    cg_lock_release(lock);
    cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));
    out("order=['%s', '%s']", order[0], order[1]);
    /* async with releases on an exception */
    cg_exc *e = cg_try_call(with_raise_boom, lock);
    char r[128];
    cg_exc_repr(e, r, sizeof r);
    out("body raised %s; locked=%s", r, TF(cg_lock_locked(lock)));
    cg_exc_unref(e);
    /* release inside the body: the release of __aexit__ fails */
    e = cg_try_call(with_release, lock);
    cg_exc_repr(e, r, sizeof r);
    out("exit raised %s", r);
    cg_exc_unref(e);
    cg_lock_free(lock);
    return NULL;
}

TEST(sync_lock) {
    run_main(lock_main, NULL);
    expect_twin("sync_lock");
}

/* Cancelled lock waiters (A52 and the hand-off corner). */

static void locker_body(void *p) {
    lock_user *u = p;
    out("%ld l%d has lock", now(), u->n);
    cg_sleep(CG_MS(5));
}

static void locker_inner(void *p) {
    lock_user *u = p;
    cg_lock_with(u->lock, locker_body, u);
}

static void *locker_task(cg_gen *g, void *p) {
    (void)g;
    lock_user *u = p;
    cg_exc *e = cg_try_catch(locker_inner, u, &cg_CancelledError);
    if (e) {
        out("%ld l%d cancelled locked=%s", now(), u->n, TF(cg_lock_locked(u->lock)));
        cg_raise(e);
    }
    return NULL;
}

static void *acquire_task(cg_gen *g, void *p) {
    (void)g;
    cg_lock_acquire(p);
    return NULL;
}

static void patient_inner(void *p) {
    lock_user *u = p;
    cg_lock_acquire(u->lock);
    out("%ld p%d acquired", now(), u->n);
    cg_lock_release(u->lock);
}

static void *patient_task(cg_gen *g, void *p) {
    (void)g;
    lock_user *u = p;
    cg_exc *e = cg_try_catch(patient_inner, u, &cg_CancelledError);
    if (e) {
        out("%ld p%d cancelled locked=%s", now(), u->n, TF(cg_lock_locked(u->lock)));
        cg_exc_unref(e);
    }
    return NULL;
}

static void *lock_cancel_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_lock *lock = cg_lock_new(NULL);
    cg_lock_acquire(lock);
    lock_user us[6];
    for (int i = 1; i <= 5; i++) us[i] = (lock_user){lock, i};
    cg_task *l[2] = {cg_create_task(locker_task, &us[1], NULL), cg_create_task(locker_task, &us[2], NULL)};
    cg_sleep(0);
    cg_task_cancel(l[0], NULL); /* waiting, not yet handed the lock */
    cg_lock_release(lock);
    gather(l, 2);
    out("A52: l1 cancelled=%s locked=%s", TF(cg_future_cancelled(cg_task_future(l[0]))), TF(cg_lock_locked(lock)));
    unref_tasks(l, 2);

    /* cancelled after release() handed it the lock, before it ran */
    cg_lock_acquire(lock);
    cg_task *m[3];
    for (int i = 0; i < 3; i++) m[i] = cg_create_task(locker_task, &us[3 + i], NULL);
    cg_sleep(0);
    cg_lock_release(lock);
    cg_task_cancel(m[0], NULL);
    out("%ld released and cancelled l3, locked=%s", now(), TF(cg_lock_locked(lock)));
    gather(m, 3);
    out("%ld l3 cancelled=%s l4 done=%s l5 done=%s locked=%s", now(), TF(cg_future_cancelled(cg_task_future(m[0]))),
        TF(cg_future_done(cg_task_future(m[1]))), TF(cg_future_done(cg_task_future(m[2]))), TF(cg_lock_locked(lock)));
    unref_tasks(m, 3);

    /* every waiter cancelled: a new acquire takes the lock at once */
    cg_lock_acquire(lock);
    cg_task *w[2] = {cg_create_task(acquire_task, lock, NULL), cg_create_task(acquire_task, lock, NULL)};
    cg_sleep(0);
    for (int i = 0; i < 2; i++) cg_task_cancel(w[i], NULL);
    cg_lock_release(lock);
    out("locked=%s", TF(cg_lock_locked(lock)));
    int got = cg_lock_acquire(lock);
    out("acquire with only cancelled waiters -> %s, locked=%s", TF(got), TF(cg_lock_locked(lock)));
    gather(w, 2);
    out("cancelled=[%s, %s] locked=%s", TF(cg_future_cancelled(cg_task_future(w[0]))),
        TF(cg_future_cancelled(cg_task_future(w[1]))), TF(cg_lock_locked(lock)));
    unref_tasks(w, 2);
    cg_lock_release(lock);

    /* waiters cancelled by a timer while another holds the lock */
    cg_lock_acquire(lock);
    lock_user ps_u[3];
    cg_task *ps[3];
    for (int i = 0; i < 3; i++) {
        ps_u[i] = (lock_user){lock, i};
        ps[i] = cg_create_task(patient_task, &ps_u[i], NULL);
    }
    call_later_cancel(20, ps[0]);
    call_later_cancel(20, ps[2]);
    cg_sleep(CG_MS(30));
    out("%ld releasing", now());
    cg_lock_release(lock);
    gather(ps, 3);
    out("%ld end locked=%s", now(), TF(cg_lock_locked(lock)));
    unref_tasks(ps, 3);
    cg_lock_free(lock);
    return NULL;
}

TEST(sync_lock_cancel) {
    run_main(lock_cancel_main, NULL);
    expect_twin("sync_lock_cancel");
}

static const check_case cases[] = {
    CASE(sync_lock),
    CASE(sync_lock_cancel),
};

CHECK_MAIN(cases)
