/* test_loop_sync.c: the synchronization primitives and queues of
 * cogen_loop.h against CPython 3.13's asyncio.
 *
 * A case with a Python twin (tests/loop/<case>.py, run on CPython 3.13 with
 * the virtual clock of tests/loop/sync_twinlib/sync_vloop.py) builds the same trace line
 * by line and must equal the twin's output, checked in as
 * tests/loop/<case>.expected (tests/loop/sync_regen.sh remakes them).
 * Addresses in reprs are masked (0x?) on both sides. Times are virtual
 * milliseconds (CG_LOOP_VIRTUAL_CLOCK). Cases without a twin (C-only
 * misuse, lifetimes) assert directly.
 *
 * What one task hands to another (task arguments) is static, never on the
 * handing task's stack: under COGEN_COMPACT a suspended task's stack is
 * swapped out, and pointers into it are not valid from elsewhere.
 */
#include "cogen_loop.h"
#include "check.h"
#include "vclock_limit.h"

#include <errno.h>
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
            r += 2; /* at least one digit: the 3 characters fit */
            while ((*r >= '0' && *r <= '9') || (*r >= 'a' && *r <= 'f')) r++;
            *w++ = '0';
            *w++ = 'x';
            *w++ = '?';
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* tests/loop/: given by the build (tests/loop/sync_twins.cmake), else
 * found next to this file. */
static void twin_path(char *buf, size_t size, const char *name) {
#ifdef COGEN_LOOP_TWINS
    snprintf(buf, size, "%s/%s.expected", COGEN_LOOP_TWINS, name);
#else
    const char *file = __FILE__;
    const char *slash = strrchr(file, '/');
    int dir = slash ? (int)(slash - file) : 1;
    snprintf(buf, size, "%.*s/loop/%s.expected", dir, slash ? file : ".", name);
#endif
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
    cg_status st = vclock_run(body, arg, &o, NULL, &e);
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
    /* on the heap: the callbacks run while this task is suspended, and a
     * compact task's stack is swapped out then (COGEN_COMPACT) */
    gather_st *g = malloc(sizeof *g);
    CHECK(g != NULL);
    *g = (gather_st){cg_future_new(cg_get_running_loop()), n};
    CHECK(g->outer != NULL);
    if (n == 0) cg_future_set_result(g->outer, NULL);
    for (size_t i = 0; i < n; i++) CHECK_EQ(cg_future_add_done_callback(cg_task_future(ts[i]), gather_cb, g), 0);
    cg_await(g->outer);
    cg_future_unref(g->outer);
    free(g);
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
    static lock_user us[3];
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
    static lock_user us[6];
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
    static lock_user ps_u[3];
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

/* ---------------------------------------------------------------------
 * Event
 * ------------------------------------------------------------------ */

typedef struct ev_waiter {
    cg_event *e;
    int n;
} ev_waiter;

static void ev_wait_inner(void *p) {
    ev_waiter *w = p;
    int r = cg_event_wait(w->e);
    out("%ld w%d:%s is_set=%s", now(), w->n, TF(r), TF(cg_event_is_set(w->e)));
}

static void *ev_waiter_task(cg_gen *g, void *p) {
    (void)g;
    ev_waiter *w = p;
    cg_exc *e = cg_try_catch(ev_wait_inner, w, &cg_CancelledError);
    if (e) {
        out("%ld w%d cancelled", now(), w->n);
        cg_raise(e);
    }
    return NULL;
}

static void *event_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_event *e = cg_event_new(NULL);
    static ev_waiter ws[8];
    for (int i = 0; i < 8; i++) ws[i] = (ev_waiter){e, i};
    out("is_set=%s", TF(cg_event_is_set(e)));
    cg_task *ts[3];
    for (int i = 0; i < 3; i++) ts[i] = cg_create_task(ev_waiter_task, &ws[i], NULL);
    cg_sleep(0);
    out("%ld set", now());
    cg_event_set(e);
    gather(ts, 3);
    unref_tasks(ts, 3);
    out("wait on set event -> %s", TF(cg_event_wait(e)));
    cg_event_clear(e);
    out("is_set after clear=%s", TF(cg_event_is_set(e)));

    /* set then clear before the waiters run: they are released anyway */
    for (int i = 0; i < 2; i++) ts[i] = cg_create_task(ev_waiter_task, &ws[3 + i], NULL);
    cg_sleep(0);
    cg_event_set(e);
    cg_event_clear(e);
    out("%ld set and cleared", now());
    gather(ts, 2);
    unref_tasks(ts, 2);

    /* a waiter cancelled by a timer, the others released by a later set */
    for (int i = 0; i < 3; i++) ts[i] = cg_create_task(ev_waiter_task, &ws[5 + i], NULL);
    call_later_cancel(7, ts[1]);
    cg_sleep(CG_MS(10));
    out("%ld set twice", now());
    cg_event_set(e);
    cg_event_set(e);
    gather(ts, 3);
    out("%ld cancelled=[%s, %s, %s]", now(), TF(cg_future_cancelled(cg_task_future(ts[0]))),
        TF(cg_future_cancelled(cg_task_future(ts[1]))), TF(cg_future_cancelled(cg_task_future(ts[2]))));
    unref_tasks(ts, 3);
    cg_event_free(e);
    return NULL;
}

TEST(sync_event) {
    run_main(event_main, NULL);
    expect_twin("sync_event");
}

/* ---------------------------------------------------------------------
 * Condition
 * ------------------------------------------------------------------ */

static void w_cond_wait(void *c) { cg_condition_wait(c); }

typedef struct cond_waiter {
    cg_condition *c;
    int n;
} cond_waiter;

static void cond_wait_body(void *p) {
    cond_waiter *w = p;
    cg_exc *e = cg_try_catch(w_cond_wait, w->c, &cg_CancelledError);
    if (e) {
        out("%ld w%d cancelled locked=%s", now(), w->n, TF(cg_lock_locked(cg_condition_lock(w->c))));
        cg_raise(e);
    }
    out("%ld w%d woke -> True locked=%s", now(), w->n, TF(cg_lock_locked(cg_condition_lock(w->c))));
}

static void *cond_waiter_task(cg_gen *g, void *p) {
    (void)g;
    cond_waiter *w = p;
    cg_lock_with(cg_condition_lock(w->c), cond_wait_body, w);
    return NULL;
}

static void w_cond_notify(void *c) { cg_condition_notify(c, 1); }
static void w_cond_notify_all(void *c) { cg_condition_notify_all(c); }

static int box;
static int box_ready(void *p) {
    (void)p;
    return box >= 3 ? box : 0;
}

static void consumer_body(void *c) {
    int r = cg_condition_wait_for(c, box_ready, NULL);
    out("%ld wait_for -> %d", now(), r);
}

static void *consumer_task(cg_gen *g, void *c) {
    (void)g;
    cg_lock_with(cg_condition_lock(c), consumer_body, c);
    return NULL;
}

static void *cond_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_condition *c = cg_condition_new(NULL, NULL);
    cg_lock *cl = cg_condition_lock(c);
    out("wait unlocked: %s", raised(w_cond_wait, c));
    out("notify unlocked: %s", raised(w_cond_notify, c));
    out("notify_all unlocked: %s", raised(w_cond_notify_all, c));

    static cond_waiter ws[10], ws2[2];
    ws2[0] = (cond_waiter){c, 10};
    ws2[1] = (cond_waiter){c, 11};
    for (int i = 0; i < 10; i++) ws[i] = (cond_waiter){c, i};
    cg_task *ts[5];
    for (int i = 0; i < 5; i++) ts[i] = cg_create_task(cond_waiter_task, &ws[i], NULL);
    cg_sleep(0);
    out("locked=%s", TF(cg_lock_locked(cl)));
    cg_lock_acquire(cl);
    cg_condition_notify(c, 1);
    out("%ld notified 1", now());
    cg_lock_release(cl);
    cg_sleep(CG_MS(1));
    cg_lock_acquire(cl);
    cg_condition_notify(c, 2);
    out("%ld notified 2", now());
    cg_sleep(CG_MS(1));
    out("%ld releasing", now());
    cg_lock_release(cl);
    cg_sleep(CG_MS(1));
    cg_lock_acquire(cl);
    cg_condition_notify_all(c);
    out("%ld notified all", now());
    cg_lock_release(cl);
    gather(ts, 5);
    unref_tasks(ts, 5);

    /* wait_for with a predicate */
    cg_task *t = cg_create_task(consumer_task, c, NULL);
    for (int i = 0; i < 4; i++) {
        cg_sleep(CG_MS(2));
        cg_lock_acquire(cl);
        box++;
        out("%ld box=%d", now(), box);
        cg_condition_notify(c, 1);
        cg_lock_release(cl);
    }
    cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));

    /* cancelled while waiting: the lock is re-acquired first */
    for (int i = 0; i < 2; i++) ts[i] = cg_create_task(cond_waiter_task, &ws[5 + i], NULL);
    cg_sleep(0);
    cg_lock_acquire(cl);
    cg_task_cancel(ts[0], NULL);
    cg_sleep(CG_MS(3));
    out("%ld releasing with w5 cancelled", now());
    cg_lock_release(cl);
    cg_sleep(0);
    cg_lock_acquire(cl);
    cg_condition_notify(c, 1);
    cg_lock_release(cl);
    gather(ts, 2);
    unref_tasks(ts, 2);

    /* notified, then cancelled before it runs: the next waiter is notified */
    for (int i = 0; i < 3; i++) ts[i] = cg_create_task(cond_waiter_task, &ws[7 + i], NULL);
    cg_sleep(0);
    cg_lock_acquire(cl);
    cg_condition_notify(c, 1);
    cg_task_cancel(ts[0], NULL);
    cg_lock_release(cl);
    gather(ts, 2);
    out("%ld w7 cancelled=%s w8 done=%s w9 done=%s", now(), TF(cg_future_cancelled(cg_task_future(ts[0]))),
        TF(cg_future_done(cg_task_future(ts[1]))), TF(cg_future_done(cg_task_future(ts[2]))));
    cg_lock_acquire(cl);
    cg_condition_notify_all(c);
    cg_lock_release(cl);
    cg_await(cg_task_future(ts[2]));
    unref_tasks(ts, 3);

    /* notified, then cancelled while re-acquiring the lock: it waits for
     * the lock all the same, then raises and notifies the next waiter */
    for (int i = 0; i < 2; i++) ts[i] = cg_create_task(cond_waiter_task, &ws2[i], NULL);
    cg_sleep(0);
    cg_lock_acquire(cl);
    cg_condition_notify(c, 1);
    cg_sleep(CG_MS(1));
    cg_task_cancel(ts[0], NULL);
    cg_sleep(CG_MS(1));
    out("%ld releasing with w10 cancelled", now());
    cg_lock_release(cl);
    gather(ts, 2);
    out("%ld w10 cancelled=%s w11 done=%s locked=%s", now(), TF(cg_future_cancelled(cg_task_future(ts[0]))),
        TF(cg_future_done(cg_task_future(ts[1]))), TF(cg_lock_locked(cl)));
    unref_tasks(ts, 2);

    /* a condition on a shared lock */
    cg_lock *lock = cg_lock_new(NULL);
    cg_condition *c2 = cg_condition_new(NULL, lock);
    CHECK_PTR(cg_condition_lock(c2), lock);
    cg_lock_acquire(lock);
    out("shared: c2.locked=%s", TF(cg_lock_locked(cg_condition_lock(c2))));
    cg_lock_release(lock);
    out("shared: c2.locked=%s", TF(cg_lock_locked(cg_condition_lock(c2))));
    cg_lock_free(lock); /* the condition keeps it */
    CHECK_EQ(cg_lock_locked(cg_condition_lock(c2)), 0);
    cg_condition_free(c2);
    cg_condition_free(c);
    return NULL;
}

TEST(sync_condition) {
    run_main(cond_main, NULL);
    expect_twin("sync_condition");
}

/* ---------------------------------------------------------------------
 * Semaphore
 * ------------------------------------------------------------------ */

typedef struct sem_user {
    cg_semaphore *s;
    int n;
} sem_user;

static void sem_user_body(void *p) {
    sem_user *u = p;
    out("%ld in%d value=%ld", now(), u->n, cg_semaphore_value(u->s));
    cg_sleep(CG_MS(1));
    out("%ld out%d", now(), u->n);
}

static void *sem_user_task(cg_gen *g, void *p) {
    (void)g;
    sem_user *u = p;
    cg_semaphore_with(u->s, sem_user_body, u);
    return NULL;
}

static void sem_taker_inner(void *p) {
    sem_user *u = p;
    cg_semaphore_acquire(u->s);
    out("%ld t%d acquired value=%ld", now(), u->n, cg_semaphore_value(u->s));
}

static void *sem_taker_task(cg_gen *g, void *p) {
    (void)g;
    sem_user *u = p;
    cg_exc *e = cg_try_catch(sem_taker_inner, u, &cg_CancelledError);
    if (e) {
        out("%ld t%d cancelled value=%ld", now(), u->n, cg_semaphore_value(u->s));
        cg_raise(e);
    }
    return NULL;
}

static void w_sem_new_negative(void *p) {
    (void)p;
    cg_semaphore_new(NULL, -1);
}
static void w_bsem_new_negative(void *p) {
    (void)p;
    cg_bounded_semaphore_new(NULL, -1);
}
static void w_sem_release(void *s) { cg_semaphore_release(s); }

static void *sem_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_semaphore *sem = cg_semaphore_new(NULL, 2);
    static sem_user us[3];
    cg_task *ts[3];
    for (int i = 0; i < 3; i++) {
        us[i] = (sem_user){sem, i};
        ts[i] = cg_create_task(sem_user_task, &us[i], NULL);
    }
    gather(ts, 3);
    unref_tasks(ts, 3);
    out("value=%ld locked=%s", cg_semaphore_value(sem), TF(cg_semaphore_locked(sem)));
    out("negative: %s", raised(w_sem_new_negative, NULL));
    out("bounded negative: %s", raised(w_bsem_new_negative, NULL));
    cg_semaphore *b = cg_bounded_semaphore_new(NULL, 1);
    out("bounded extra release: %s", raised(w_sem_release, b));
    cg_semaphore_acquire(b);
    out("bounded locked=%s", TF(cg_semaphore_locked(b)));
    cg_semaphore_release(b);
    out("bounded release -> value=%ld", cg_semaphore_value(b));

    /* handed a slot, cancelled before it runs: the next waiter gets it */
    cg_semaphore *s = cg_semaphore_new(NULL, 0);
    static sem_user ws[7];
    for (int i = 0; i < 7; i++) ws[i] = (sem_user){s, i};
    for (int i = 0; i < 3; i++) ts[i] = cg_create_task(sem_taker_task, &ws[i], NULL);
    cg_sleep(0);
    out("locked=%s value=%ld", TF(cg_semaphore_locked(s)), cg_semaphore_value(s));
    cg_semaphore_release(s);
    out("after release value=%ld", cg_semaphore_value(s));
    cg_task_cancel(ts[0], NULL);
    gather(ts, 2);
    out("%ld t0 cancelled=%s t1 done=%s t2 done=%s value=%ld", now(), TF(cg_future_cancelled(cg_task_future(ts[0]))),
        TF(cg_future_done(cg_task_future(ts[1]))), TF(cg_future_done(cg_task_future(ts[2]))), cg_semaphore_value(s));

    /* a waiter cancelled while waiting: locked() looks past it */
    cg_semaphore_release(s);
    cg_await(cg_task_future(ts[2]));
    unref_tasks(ts, 3);
    cg_task *t = cg_create_task(sem_taker_task, &ws[3], NULL);
    cg_sleep(0);
    cg_task_cancel(t, NULL);
    out("value=%ld locked with a cancelled waiter=%s", cg_semaphore_value(s), TF(cg_semaphore_locked(s)));
    cg_semaphore_release(s);
    out("value=%ld locked=%s", cg_semaphore_value(s), TF(cg_semaphore_locked(s)));
    gather(&t, 1);
    out("value=%ld locked=%s", cg_semaphore_value(s), TF(cg_semaphore_locked(s)));
    unref_tasks(&t, 1);

    /* two releases hand two slots in order, the third waiter waits on */
    cg_semaphore_acquire(s);
    out("main acquired value=%ld", cg_semaphore_value(s));
    for (int i = 0; i < 3; i++) ts[i] = cg_create_task(sem_taker_task, &ws[4 + i], NULL);
    cg_sleep(0);
    cg_semaphore_release(s);
    cg_semaphore_release(s);
    out("two releases value=%ld locked=%s", cg_semaphore_value(s), TF(cg_semaphore_locked(s)));
    gather(ts, 2);
    out("%ld t6 done=%s", now(), TF(cg_future_done(cg_task_future(ts[2]))));
    cg_semaphore_release(s);
    cg_await(cg_task_future(ts[2]));
    out("%ld value=%ld locked=%s", now(), cg_semaphore_value(s), TF(cg_semaphore_locked(s)));
    unref_tasks(ts, 3);
    cg_semaphore_free(s);
    cg_semaphore_free(b);
    cg_semaphore_free(sem);
    return NULL;
}

TEST(sync_semaphore) {
    run_main(sem_main, NULL);
    expect_twin("sync_semaphore");
}

/* ---------------------------------------------------------------------
 * Barrier
 * ------------------------------------------------------------------ */

typedef struct party_arg {
    cg_barrier *b;
    int n;
    long delay;
} party_arg;

static void party_wait(void *p) {
    party_arg *a = p;
    long i = cg_barrier_wait(a->b);
    out("%ld p%d passes index=%ld n_waiting=%ld", now(), a->n, i, cg_barrier_n_waiting(a->b));
}

static void party(party_arg *a) {
    cg_sleep(CG_MS(a->delay));
    out("%ld p%d arrives n_waiting=%ld", now(), a->n, cg_barrier_n_waiting(a->b));
    cg_exc *e = cg_try_catch(party_wait, a, &cg_BrokenBarrierError);
    if (e) {
        char r[128];
        cg_exc_repr(e, r, sizeof r);
        out("%ld p%d raised %s broken=%s", now(), a->n, r, TF(cg_barrier_broken(a->b)));
        cg_exc_unref(e);
    }
}

static void *party_task(cg_gen *g, void *p) {
    (void)g;
    party((party_arg *)p);
    return NULL;
}

static void w_barrier_new_0(void *p) {
    (void)p;
    cg_barrier_new(NULL, 0);
}

static void parties(party_arg *as, int n) {
    cg_task *ts[8];
    for (int i = 0; i < n; i++) ts[i] = cg_create_task(party_task, &as[i], NULL);
    gather(ts, (size_t)n);
    unref_tasks(ts, (size_t)n);
}

static void *barrier_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    out("parties 0: %s", raised(w_barrier_new_0, NULL));
    cg_barrier *b = cg_barrier_new(NULL, 3);
    out("parties=%ld n_waiting=%ld broken=%s", cg_barrier_parties(b), cg_barrier_n_waiting(b), TF(cg_barrier_broken(b)));
    static party_arg as[13];
    for (int i = 0; i < 13; i++) as[i] = (party_arg){b, i, 1};
    for (int i = 0; i < 3; i++) as[i].delay = i;
    for (int i = 3; i < 6; i++) as[i].delay = 3 - i;
    as[12].delay = 0;
    parties(as, 3);
    out("%ld n_waiting=%ld", now(), cg_barrier_n_waiting(b));
    parties(as + 3, 3);

    /* reset with two waiting */
    cg_task *ts[2] = {cg_create_task(party_task, &as[6], NULL), cg_create_task(party_task, &as[7], NULL)};
    cg_sleep(CG_MS(2));
    out("%ld reset n_waiting=%ld", now(), cg_barrier_n_waiting(b));
    cg_barrier_reset(b);
    gather(ts, 2);
    unref_tasks(ts, 2);
    out("%ld after reset n_waiting=%ld broken=%s", now(), cg_barrier_n_waiting(b), TF(cg_barrier_broken(b)));
    parties(as + 8, 3);

    /* abort with one waiting, then a wait on the broken barrier */
    cg_task *t = cg_create_task(party_task, &as[11], NULL);
    cg_sleep(CG_MS(2));
    cg_barrier_abort(b);
    cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));
    party(&as[12]);
    out("%ld broken=%s n_waiting=%ld", now(), TF(cg_barrier_broken(b)), cg_barrier_n_waiting(b));
    cg_barrier_free(b);

    /* a waiter cancelled: it leaves the count, the barrier fills again */
    cg_barrier *b2 = cg_barrier_new(NULL, 2);
    static party_arg bs[3];
    for (int i = 0; i < 3; i++) bs[i] = (party_arg){b2, 13 + i, i};
    t = cg_create_task(party_task, &bs[0], NULL);
    cg_sleep(CG_MS(1));
    out("%ld n_waiting=%ld", now(), cg_barrier_n_waiting(b2));
    cg_task_cancel(t, NULL);
    gather(&t, 1);
    out("%ld cancelled=%s n_waiting=%ld", now(), TF(cg_future_cancelled(cg_task_future(t))), cg_barrier_n_waiting(b2));
    cg_future_unref(cg_task_future(t));
    parties(bs + 1, 2);
    cg_barrier_free(b2);
    return NULL;
}

TEST(sync_barrier) {
    run_main(barrier_main, NULL);
    expect_twin("sync_barrier");
}

/* ---------------------------------------------------------------------
 * Loop binding
 * ------------------------------------------------------------------ */

static struct {
    cg_lock *lock;
    cg_event *event;
    cg_semaphore *sem;
    cg_condition *cond;
    cg_queue *queue;
} bound;

static void *t_lock_acquire(cg_gen *g, void *p) {
    (void)g;
    cg_lock_acquire(p);
    return NULL;
}
static void *t_event_wait(cg_gen *g, void *p) {
    (void)g;
    cg_event_wait(p);
    return NULL;
}
static void *t_sem_acquire(cg_gen *g, void *p) {
    (void)g;
    cg_semaphore_acquire(p);
    return NULL;
}
static void cwait_body(void *c) { cg_condition_wait(c); }
static void *t_cwait(cg_gen *g, void *c) {
    (void)g;
    cg_lock_with(cg_condition_lock(c), cwait_body, c);
    return NULL;
}
static void *t_queue_get(cg_gen *g, void *q) {
    (void)g;
    return cg_queue_get(q);
}

static void await_task(cg_task *t) {
    cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));
}

static void *bound_first(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_lock_acquire(bound.lock);
    cg_task *t = cg_create_task(t_lock_acquire, bound.lock, NULL);
    cg_sleep(0);
    cg_lock_release(bound.lock);
    await_task(t);
    cg_lock_release(bound.lock);

    t = cg_create_task(t_event_wait, bound.event, NULL);
    cg_sleep(0);
    cg_event_set(bound.event);
    await_task(t);
    cg_event_clear(bound.event);

    cg_semaphore_acquire(bound.sem);
    t = cg_create_task(t_sem_acquire, bound.sem, NULL);
    cg_sleep(0);
    cg_semaphore_release(bound.sem);
    await_task(t);
    cg_semaphore_release(bound.sem);

    t = cg_create_task(t_cwait, bound.cond, NULL);
    cg_sleep(0);
    cg_lock_acquire(cg_condition_lock(bound.cond));
    cg_condition_notify(bound.cond, 1);
    cg_lock_release(cg_condition_lock(bound.cond));
    await_task(t);

    t = cg_create_task(t_queue_get, bound.queue, NULL);
    cg_sleep(0);
    cg_queue_put_nowait(bound.queue, (void *)(intptr_t)1);
    await_task(t);
    out("first loop done");
    return NULL;
}

static void w_lock_acquire(void *l) { cg_lock_acquire(l); }
static void w_event_wait(void *e) { cg_event_wait(e); }
static void w_sem_acquire(void *s) { cg_semaphore_acquire(s); }
static void w_queue_get(void *q) { cg_queue_get(q); }

static void *bound_second(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_lock_acquire(bound.lock);
    out("uncontended acquire in another loop; locked=%s", TF(cg_lock_locked(bound.lock)));
    out("lock: %s", raised(w_lock_acquire, bound.lock));
    cg_lock_release(bound.lock);
    out("event: %s", raised(w_event_wait, bound.event));
    cg_semaphore_acquire(bound.sem);
    out("semaphore: %s", raised(w_sem_acquire, bound.sem));
    cg_semaphore_release(bound.sem);
    cg_lock_acquire(cg_condition_lock(bound.cond));
    out("condition: %s", raised(w_cond_wait, bound.cond));
    cg_lock_release(cg_condition_lock(bound.cond));
    out("queue: %s", raised(w_queue_get, bound.queue));
    cg_queue_put_nowait(bound.queue, (void *)(intptr_t)2);
    out("queue get with an item: %ld", (long)(intptr_t)cg_queue_get(bound.queue));
    return NULL;
}

TEST(sync_bound_loop) {
    bound.lock = cg_lock_new(NULL);
    bound.event = cg_event_new(NULL);
    bound.sem = cg_semaphore_new(NULL, 1);
    bound.cond = cg_condition_new(NULL, NULL);
    bound.queue = cg_queue_new(NULL, 0);
    run_main(bound_first, NULL);
    run_main(bound_second, NULL);
    cg_lock_free(bound.lock);
    cg_event_free(bound.event);
    cg_semaphore_free(bound.sem);
    cg_condition_free(bound.cond);
    cg_queue_free(bound.queue);
    expect_twin("sync_bound_loop");
}

/* ---------------------------------------------------------------------
 * Queues
 * ------------------------------------------------------------------ */

#define I2P(i) ((void *)(intptr_t)(i))
#define P2I(p) ((long)(intptr_t)(p))

typedef struct q_user {
    cg_queue *q;
    int n;
    void *item;
} q_user;

static void *q_getter_int(cg_gen *g, void *p) {
    (void)g;
    q_user *u = p;
    void *item = cg_queue_get(u->q);
    out("%ld g%d got %ld", now(), u->n, P2I(item));
    return NULL;
}

static void *q_putter_int(cg_gen *g, void *p) {
    (void)g;
    q_user *u = p;
    cg_queue_put(u->q, u->item);
    out("%ld p%d put %ld qsize=%zu", now(), u->n, P2I(u->item), cg_queue_qsize(u->q));
    return NULL;
}

static void *q_joiner(cg_gen *g, void *p) {
    (void)g;
    q_user *u = p;
    cg_queue_join(u->q);
    if (u->n < 0)
        out("%ld joined", now());
    else
        out("%ld j%d joined", now(), u->n);
    return NULL;
}

typedef struct q_put_arg {
    cg_queue *q;
    void *item;
} q_put_arg;

static void w_put_nowait(void *p) {
    q_put_arg *a = p;
    cg_queue_put_nowait(a->q, a->item);
}
static void w_put(void *p) {
    q_put_arg *a = p;
    cg_queue_put(a->q, a->item);
}
static void w_get_nowait(void *q) { cg_queue_get_nowait(q); }
static void w_task_done(void *q) { cg_queue_task_done(q); }

static void *queue_basic_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_queue *q = cg_queue_new(NULL, 2);
    out("maxsize=%ld qsize=%zu empty=%s full=%s", cg_queue_maxsize(q), cg_queue_qsize(q), TF(cg_queue_empty(q)),
        TF(cg_queue_full(q)));
    cg_queue_put_nowait(q, I2P(1));
    cg_queue_put_nowait(q, I2P(2));
    out("qsize=%zu empty=%s full=%s", cg_queue_qsize(q), TF(cg_queue_empty(q)), TF(cg_queue_full(q)));
    q_put_arg pa = {q, I2P(3)};
    out("put_nowait full: %s", raised(w_put_nowait, &pa));
    long a0 = P2I(cg_queue_get_nowait(q)), a1 = P2I(cg_queue_get_nowait(q));
    out("nowait FIFO=[%ld, %ld]", a0, a1);
    out("get_nowait empty: %s", raised(w_get_nowait, q));

    static q_user us[6];
    cg_task *ts[3];
    for (int i = 0; i < 3; i++) {
        us[i] = (q_user){q, i, NULL};
        ts[i] = cg_create_task(q_getter_int, &us[i], NULL);
    }
    cg_sleep(0);
    cg_queue_put(q, I2P(10));
    cg_queue_put(q, I2P(11));
    out("%ld two put, qsize=%zu", now(), cg_queue_qsize(q));
    cg_sleep(CG_MS(1));
    cg_queue_put_nowait(q, I2P(12));
    gather(ts, 3);
    unref_tasks(ts, 3);

    /* putters blocked on a full queue, served in order */
    cg_queue_put_nowait(q, I2P(20));
    cg_queue_put_nowait(q, I2P(21));
    for (int i = 0; i < 3; i++) {
        us[i] = (q_user){q, i, I2P(22 + i)};
        ts[i] = cg_create_task(q_putter_int, &us[i], NULL);
    }
    cg_sleep(CG_MS(5));
    out("%ld full=%s qsize=%zu", now(), TF(cg_queue_full(q)), cg_queue_qsize(q));
    for (int i = 0; i < 5; i++) {
        void *item = cg_queue_get(q);
        out("%ld get -> %ld", now(), P2I(item));
        cg_sleep(CG_MS(1));
    }
    gather(ts, 3);
    unref_tasks(ts, 3);

    /* join waits for task_done of every item put so far (10 puts) */
    us[5] = (q_user){q, -1, NULL};
    cg_task *j = cg_create_task(q_joiner, &us[5], NULL);
    for (int i = 0; i < 9; i++) cg_queue_task_done(q);
    cg_sleep(CG_MS(3));
    out("%ld one task left, joined=%s", now(), TF(cg_future_done(cg_task_future(j))));
    cg_queue_task_done(q);
    await_task(j);
    cg_queue_join(q);
    out("join with nothing unfinished -> None");
    out("extra task_done: %s", raised(w_task_done, q));
    cg_queue_free(q);

    /* unbounded */
    cg_queue *u = cg_queue_new(NULL, 0);
    for (int i = 0; i < 100; i++) cg_queue_put_nowait(u, I2P(i));
    out("unbounded qsize=%zu full=%s maxsize=%ld", cg_queue_qsize(u), TF(cg_queue_full(u)), cg_queue_maxsize(u));
    long sum = 0;
    while (!cg_queue_empty(u)) sum += P2I(cg_queue_get_nowait(u));
    out("sum=%ld", sum);
    cg_queue_free(u);
    cg_queue *n = cg_queue_new(NULL, -3);
    cg_queue_put_nowait(n, I2P(1));
    out("negative maxsize full=%s maxsize=%ld", TF(cg_queue_full(n)), cg_queue_maxsize(n));
    cg_queue_free(n);
    return NULL;
}

TEST(queue_basic) {
    run_main(queue_basic_main, NULL);
    expect_twin("queue_basic");
}

/* Cancelled getters and putters (items are strings here). */

static void q_getter_str_inner(void *p) {
    q_user *u = p;
    const char *item = cg_queue_get(u->q);
    out("%ld g%d got %s", now(), u->n, item);
}

static void *q_getter_str(cg_gen *g, void *p) {
    (void)g;
    q_user *u = p;
    cg_exc *e = cg_try_catch(q_getter_str_inner, u, &cg_CancelledError);
    if (e) {
        out("%ld g%d cancelled qsize=%zu", now(), u->n, cg_queue_qsize(u->q));
        cg_raise(e);
    }
    return NULL;
}

static void q_putter_str_inner(void *p) {
    q_user *u = p;
    cg_queue_put(u->q, u->item);
    out("%ld p%d put %s qsize=%zu", now(), u->n, (const char *)u->item, cg_queue_qsize(u->q));
}

static void *q_putter_str(cg_gen *g, void *p) {
    (void)g;
    q_user *u = p;
    cg_exc *e = cg_try_catch(q_putter_str_inner, u, &cg_CancelledError);
    if (e) {
        out("%ld p%d cancelled qsize=%zu", now(), u->n, cg_queue_qsize(u->q));
        cg_raise(e);
    }
    return NULL;
}

static void *queue_cancel_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_queue *q = cg_queue_new(NULL, 0);
    static q_user us[9];
    for (int i = 0; i < 9; i++) us[i] = (q_user){q, i, NULL};
    cg_task *gs[3] = {cg_create_task(q_getter_str, &us[1], NULL), cg_create_task(q_getter_str, &us[2], NULL)};
    cg_sleep(0);
    cg_task_cancel(gs[0], NULL);
    cg_queue_put_nowait(q, "item");
    gather(gs, 2);
    out("A52: g1 cancelled=%s qsize=%zu", TF(cg_future_cancelled(cg_task_future(gs[0]))), cg_queue_qsize(q));
    unref_tasks(gs, 2);

    /* woken by put_nowait, cancelled before it ran: the next getter is woken */
    for (int i = 0; i < 3; i++) gs[i] = cg_create_task(q_getter_str, &us[3 + i], NULL);
    cg_sleep(0);
    cg_queue_put_nowait(q, "x");
    cg_task_cancel(gs[0], NULL);
    gather(gs, 2);
    out("%ld g3 cancelled=%s g5 done=%s qsize=%zu", now(), TF(cg_future_cancelled(cg_task_future(gs[0]))),
        TF(cg_future_done(cg_task_future(gs[2]))), cg_queue_qsize(q));
    cg_queue_put_nowait(q, "y");
    cg_await(cg_task_future(gs[2]));
    unref_tasks(gs, 3);

    /* the same with putters on a full queue */
    cg_queue *f = cg_queue_new(NULL, 1);
    cg_queue_put_nowait(f, "a");
    static const char *bs[] = {"", "b1", "b2", "b3"};
    static q_user ps_u[4];
    cg_task *ps[3];
    for (int i = 1; i <= 3; i++) {
        ps_u[i] = (q_user){f, i, (void *)bs[i]};
        ps[i - 1] = cg_create_task(q_putter_str, &ps_u[i], NULL);
    }
    cg_sleep(0);
    out("%ld get_nowait -> %s", now(), (const char *)cg_queue_get_nowait(f));
    cg_task_cancel(ps[0], NULL);
    gather(ps, 2);
    out("%ld p1 cancelled=%s p3 done=%s qsize=%zu", now(), TF(cg_future_cancelled(cg_task_future(ps[0]))),
        TF(cg_future_done(cg_task_future(ps[2]))), cg_queue_qsize(f));
    const char *item = cg_queue_get(f);
    out("%ld get -> %s", now(), item);
    cg_await(cg_task_future(ps[2]));
    item = cg_queue_get(f);
    out("%ld get -> %s", now(), item);
    unref_tasks(ps, 3);
    cg_queue_free(f);

    /* getters cancelled by timers, one item for the one left */
    for (int i = 0; i < 3; i++) gs[i] = cg_create_task(q_getter_str, &us[6 + i], NULL);
    call_later_cancel(4, gs[0]);
    call_later_cancel(4, gs[1]);
    cg_sleep(CG_MS(5));
    cg_queue_put_nowait(q, "z");
    gather(gs, 3);
    out("%ld cancelled=[%s, %s, %s] qsize=%zu", now(), TF(cg_future_cancelled(cg_task_future(gs[0]))),
        TF(cg_future_cancelled(cg_task_future(gs[1]))), TF(cg_future_cancelled(cg_task_future(gs[2]))),
        cg_queue_qsize(q));
    unref_tasks(gs, 3);
    cg_queue_free(q);
    return NULL;
}

TEST(queue_cancel) {
    run_main(queue_cancel_main, NULL);
    expect_twin("queue_cancel");
}

/* Shutdown (3.13). */

static void q_getter_sd_inner(void *p) {
    q_user *u = p;
    const char *item = cg_queue_get(u->q);
    out("%ld g%d got %s", now(), u->n, item);
}

static void *q_getter_sd(cg_gen *g, void *p) {
    (void)g;
    q_user *u = p;
    cg_exc *e = cg_try_catch(q_getter_sd_inner, u, &cg_QueueShutDown);
    if (e) {
        char r[64];
        cg_exc_repr(e, r, sizeof r);
        out("%ld g%d raised %s", now(), u->n, r);
        cg_exc_unref(e);
    }
    return NULL;
}

static void q_putter_sd_inner(void *p) {
    q_user *u = p;
    cg_queue_put(u->q, u->item);
    out("%ld p%d put %s", now(), u->n, (const char *)u->item);
}

static void *q_putter_sd(cg_gen *g, void *p) {
    (void)g;
    q_user *u = p;
    cg_exc *e = cg_try_catch(q_putter_sd_inner, u, &cg_QueueShutDown);
    if (e) {
        char r[64];
        cg_exc_repr(e, r, sizeof r);
        out("%ld p%d raised %s", now(), u->n, r);
        cg_exc_unref(e);
    }
    return NULL;
}

static void *queue_shutdown_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_queue *q = cg_queue_new(NULL, 2);
    cg_queue_put_nowait(q, "a");
    cg_queue_put_nowait(q, "b");
    static q_user us[4];
    us[0] = (q_user){q, 0, "c0"};
    us[1] = (q_user){q, 1, "c1"};
    cg_task *ts[3] = {cg_create_task(q_putter_sd, &us[0], NULL), cg_create_task(q_putter_sd, &us[1], NULL)};
    cg_sleep(CG_MS(1));
    out("%ld shutdown", now());
    cg_queue_shutdown(q, 0);
    gather(ts, 2);
    unref_tasks(ts, 2);
    out("qsize=%zu full=%s", cg_queue_qsize(q), TF(cg_queue_full(q)));
    q_put_arg pa = {q, "d"};
    out("put_nowait: %s", raised(w_put_nowait, &pa));
    out("put: %s", raised(w_put, &pa));
    const char *item = cg_queue_get(q);
    out("get -> %s", item);
    out("get_nowait -> %s", (const char *)cg_queue_get_nowait(q));
    out("get empty: %s", raised(w_queue_get, q));
    out("get_nowait empty: %s", raised(w_get_nowait, q));
    cg_queue_task_done(q);
    cg_queue_task_done(q);
    cg_queue_join(q);
    out("join -> None");
    cg_queue_shutdown(q, 0);
    cg_queue_free(q);

    /* blocked getters */
    q = cg_queue_new(NULL, 0);
    for (int i = 0; i < 3; i++) {
        us[i] = (q_user){q, i, NULL};
        ts[i] = cg_create_task(q_getter_sd, &us[i], NULL);
    }
    cg_sleep(CG_MS(2));
    out("%ld shutdown", now());
    cg_queue_shutdown(q, 0);
    gather(ts, 3);
    unref_tasks(ts, 3);
    cg_queue_free(q);

    /* immediate: the items are dropped and count as done */
    q = cg_queue_new(NULL, 0);
    cg_queue_put_nowait(q, "x");
    cg_queue_put_nowait(q, "y");
    cg_queue_put_nowait(q, "z");
    for (int i = 0; i < 2; i++) {
        us[i] = (q_user){q, i, NULL};
        ts[i] = cg_create_task(q_joiner, &us[i], NULL);
    }
    cg_sleep(CG_MS(1));
    out("%ld shutdown immediate, qsize=%zu", now(), cg_queue_qsize(q));
    cg_queue_shutdown(q, 1);
    out("qsize=%zu empty=%s", cg_queue_qsize(q), TF(cg_queue_empty(q)));
    gather(ts, 2);
    unref_tasks(ts, 2);
    out("get: %s", raised(w_queue_get, q));
    out("task_done: %s", raised(w_task_done, q));
    cg_queue_free(q);

    /* immediate with an item got but not done: join still waits for it */
    q = cg_queue_new(NULL, 0);
    cg_queue_put_nowait(q, "u");
    cg_queue_put_nowait(q, "v");
    cg_queue_put_nowait(q, "w");
    out("got %s", (const char *)cg_queue_get_nowait(q));
    us[2] = (q_user){q, 2, NULL};
    cg_task *t = cg_create_task(q_joiner, &us[2], NULL);
    cg_sleep(CG_MS(1));
    cg_queue_shutdown(q, 1);
    cg_sleep(CG_MS(1));
    out("%ld qsize=%zu joined=%s", now(), cg_queue_qsize(q), TF(cg_future_done(cg_task_future(t))));
    cg_queue_task_done(q);
    await_task(t);
    pa = (q_put_arg){q, "late"};
    const char *r1 = raised(w_queue_get, q);
    out("get: %s; put: %s", r1, raised(w_put, &pa));
    cg_queue_free(q);
    return NULL;
}

TEST(queue_shutdown) {
    run_main(queue_shutdown_main, NULL);
    expect_twin("queue_shutdown");
}

/* LifoQueue, PriorityQueue. */

typedef struct kitem {
    int prio;
    char name;
} kitem;

static int kitem_cmp(const void *a, const void *b, void *ud) {
    (void)ud;
    const kitem *x = a, *y = b;
    return (x->prio > y->prio) - (x->prio < y->prio);
}

static void *lgetter(cg_gen *g, void *q) {
    (void)g;
    void *item = cg_queue_get(q);
    out("%ld lifo getter got %ld", now(), P2I(item));
    return NULL;
}

static void *bput(cg_gen *g, void *p) {
    (void)g;
    q_user *u = p;
    cg_queue_put(u->q, u->item);
    out("%ld put %ld", now(), P2I(u->item));
    return NULL;
}

/* "[a, b, ...]" of everything left, ints or kitems. */
static const char *drain(cg_queue *q, int kitems) {
    static char buf[512];
    size_t n = 0;
    n += (size_t)snprintf(buf + n, sizeof buf - n, "[");
    for (int i = 0; !cg_queue_empty(q); i++) {
        void *it = cg_queue_get_nowait(q);
        if (kitems)
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%c:%d", i ? ", " : "", ((kitem *)it)->name,
                                  ((kitem *)it)->prio);
        else
            n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%ld", i ? ", " : "", P2I(it));
    }
    snprintf(buf + n, sizeof buf - n, "]");
    return buf;
}

static void *queue_kinds_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_queue *lq = cg_lifo_queue_new(NULL, 0);
    for (int i = 1; i < 6; i++) cg_queue_put_nowait(lq, I2P(i));
    out("lifo %s", drain(lq, 0));
    cg_task *t = cg_create_task(lgetter, lq, NULL);
    cg_sleep(CG_MS(2));
    cg_queue_put_nowait(lq, I2P(7));
    cg_queue_put_nowait(lq, I2P(8));
    await_task(t);
    out("lifo left %ld", P2I(cg_queue_get_nowait(lq)));
    cg_queue_free(lq);

    cg_queue *pq = cg_priority_queue_new(NULL, 0, NULL, NULL);
    static const int ints[] = {5, 1, 4, 1, 3, 9, 2, 6, 5, 3, 5};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) cg_queue_put_nowait(pq, I2P(ints[i]));
    out("priority ints %s", drain(pq, 0));
    cg_queue_free(pq);

    cg_queue *kq = cg_priority_queue_new(NULL, 0, kitem_cmp, NULL);
    static const char names[] = "abcdefghijklmnop";
    static const int prios[] = {2, 1, 2, 0, 1, 2, 0, 1, 2, 2, 1, 0, 1, 2, 0, 1};
    kitem items[16];
    for (int i = 0; i < 16; i++) {
        items[i] = (kitem){prios[i], names[i]};
        cg_queue_put_nowait(kq, &items[i]);
        if (names[i] == 'f' || names[i] == 'k') {
            kitem *k = cg_queue_get_nowait(kq);
            out("got %c:%d", k->name, k->prio);
        }
    }
    out("priority ties %s", drain(kq, 1));
    cg_queue_free(kq);

    /* a bounded priority queue: a blocked put */
    cg_queue *bq = cg_priority_queue_new(NULL, 2, NULL, NULL);
    cg_queue_put_nowait(bq, I2P(30));
    cg_queue_put_nowait(bq, I2P(10));
    static q_user u;
    u = (q_user){bq, 0, I2P(20)};
    t = cg_create_task(bput, &u, NULL);
    cg_sleep(CG_MS(1));
    int full = cg_queue_full(bq);
    out("%ld full=%s get %ld", now(), TF(full), P2I(cg_queue_get_nowait(bq)));
    await_task(t);
    out("%s", drain(bq, 0));
    cg_queue_free(bq);
    return NULL;
}

TEST(queue_kinds) {
    run_main(queue_kinds_main, NULL);
    expect_twin("queue_kinds");
}

/* Producers and consumers, a semaphore, a lock, timers cancelling. */

static unsigned long mixed_seed;
static long rnd(long n) {
    mixed_seed = (mixed_seed * 1103515245UL + 12345UL) % 2147483648UL;
    return (long)((mixed_seed >> 16) % (unsigned long)n);
}

typedef struct mixed {
    cg_queue *q;
    cg_lock *lock;
    cg_semaphore *sem;
} mixed;

typedef struct mixed_actor {
    mixed *m;
    int n;
    int i;
} mixed_actor;

static void mixed_put(void *p) {
    mixed_actor *a = p;
    cg_queue_put(a->m->q, I2P(a->n * 100 + a->i));
}

static void producer_loop(void *p) {
    mixed_actor *a = p;
    for (a->i = 0; a->i < 6; a->i++) {
        cg_sleep(CG_MS(rnd(3)));
        cg_semaphore_with(a->m->sem, mixed_put, a);
        out("%ld P%d put %d qsize=%zu", now(), a->n, a->n * 100 + a->i, cg_queue_qsize(a->m->q));
    }
}

static void *mixed_producer(cg_gen *g, void *p) {
    (void)g;
    mixed_actor *a = p;
    a->i = 0;
    cg_exc *e = cg_try_catch(producer_loop, a, &cg_CancelledError);
    if (e) {
        out("%ld P%d cancelled at %d qsize=%zu sem=%ld", now(), a->n, a->i, cg_queue_qsize(a->m->q),
            cg_semaphore_value(a->m->sem));
        cg_raise(e);
    }
    return NULL;
}

static void consumer_work(void *p) {
    mixed_actor *a = p;
    out("%ld C%d got %d", now(), a->n, a->i);
    cg_sleep(CG_MS(rnd(2)));
}

static void consumer_loop(void *p) {
    mixed_actor *a = p;
    for (;;) {
        a->i = (int)P2I(cg_queue_get(a->m->q));
        cg_lock_with(a->m->lock, consumer_work, a);
        cg_queue_task_done(a->m->q);
    }
}

static void *mixed_consumer(cg_gen *g, void *p) {
    (void)g;
    mixed_actor *a = p;
    cg_exc *e = cg_try_catch(consumer_loop, a, &cg_BaseException);
    if (cg_exc_is(e, &cg_CancelledError)) {
        out("%ld C%d cancelled qsize=%zu locked=%s", now(), a->n, cg_queue_qsize(a->m->q), TF(cg_lock_locked(a->m->lock)));
        cg_raise(e);
    }
    if (!cg_exc_is(e, &cg_QueueShutDown)) cg_raise(e);
    cg_exc_unref(e);
    out("%ld C%d shut down", now(), a->n);
    return NULL;
}

static void *mixed_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    mixed_seed = 12345;
    static mixed m;
    m = (mixed){cg_queue_new(NULL, 3), cg_lock_new(NULL), cg_semaphore_new(NULL, 2)};
    static mixed_actor pa[4], ca[3];
    cg_task *ps[4], *cs[3];
    for (int n = 0; n < 4; n++) {
        pa[n] = (mixed_actor){&m, n, 0};
        ps[n] = cg_create_task(mixed_producer, &pa[n], NULL);
    }
    for (int n = 0; n < 3; n++) {
        ca[n] = (mixed_actor){&m, n, 0};
        cs[n] = cg_create_task(mixed_consumer, &ca[n], NULL);
    }
    call_later_cancel(7, cs[1]);
    call_later_cancel(5, ps[2]);
    call_later_cancel(8, ps[1]);
    gather(ps, 4);
    out("%ld producers done qsize=%zu", now(), cg_queue_qsize(m.q));
    cg_queue_shutdown(m.q, 0);
    gather(cs, 3);
    out("%ld end qsize=%zu cancelled=[%s, %s, %s] sem=%ld", now(), cg_queue_qsize(m.q),
        TF(cg_future_cancelled(cg_task_future(cs[0]))), TF(cg_future_cancelled(cg_task_future(cs[1]))),
        TF(cg_future_cancelled(cg_task_future(cs[2]))), cg_semaphore_value(m.sem));
    unref_tasks(ps, 4);
    unref_tasks(cs, 3);
    cg_queue_free(m.q);
    cg_lock_free(m.lock);
    cg_semaphore_free(m.sem);
    return NULL;
}

TEST(queue_mixed) {
    run_main(mixed_main, NULL);
    expect_twin("queue_mixed");
}

/* ---------------------------------------------------------------------
 * Misuse and lifetimes (no twin: C-only answers, asserted directly)
 * ------------------------------------------------------------------ */

static void n_lock_acquire(void *p) { (void)p, cg_lock_acquire(NULL); }
static void n_lock_release(void *p) { (void)p, cg_lock_release(NULL); }
static void n_event_set(void *p) { (void)p, cg_event_set(NULL); }
static void n_event_wait(void *p) { (void)p, cg_event_wait(NULL); }
static void n_cond_wait(void *p) { (void)p, cg_condition_wait(NULL); }
static void n_sem_release(void *p) { (void)p, cg_semaphore_release(NULL); }
static void n_barrier_wait(void *p) { (void)p, cg_barrier_wait(NULL); }
static void n_queue_put(void *p) { (void)p, cg_queue_put_nowait(NULL, NULL); }
static void n_queue_get(void *p) { (void)p, cg_queue_get(NULL); }

TEST(sync_misuse_null) {
    CHECK_STR(raised(n_lock_acquire, NULL), "raise TypeError('cg_lock_acquire() argument must be a Lock, not NULL')");
    CHECK_STR(raised(n_lock_release, NULL), "raise TypeError('cg_lock_release() argument must be a Lock, not NULL')");
    CHECK_STR(raised(n_event_set, NULL), "raise TypeError('cg_event_set() argument must be an Event, not NULL')");
    CHECK_STR(raised(n_event_wait, NULL), "raise TypeError('cg_event_wait() argument must be an Event, not NULL')");
    CHECK_STR(raised(n_cond_wait, NULL),
              "raise TypeError('cg_condition_wait() argument must be a Condition, not NULL')");
    CHECK_STR(raised(n_sem_release, NULL),
              "raise TypeError('cg_semaphore_release() argument must be a Semaphore, not NULL')");
    CHECK_STR(raised(n_barrier_wait, NULL), "raise TypeError('cg_barrier_wait() argument must be a Barrier, not NULL')");
    CHECK_STR(raised(n_queue_put, NULL), "raise TypeError('cg_queue_put_nowait() argument must be a Queue, not NULL')");
    CHECK_STR(raised(n_queue_get, NULL), "raise TypeError('cg_queue_get() argument must be a Queue, not NULL')");
    /* queries answer what an absent object has */
    CHECK_EQ(cg_lock_locked(NULL), 0);
    CHECK_EQ(cg_event_is_set(NULL), 0);
    CHECK_EQ(cg_semaphore_locked(NULL), 0);
    CHECK_EQ(cg_semaphore_value(NULL), 0);
    CHECK_EQ(cg_barrier_parties(NULL), 0);
    CHECK_EQ(cg_barrier_n_waiting(NULL), 0);
    CHECK_EQ(cg_barrier_broken(NULL), 0);
    CHECK_EQ(cg_queue_qsize(NULL), 0);
    CHECK_EQ(cg_queue_empty(NULL), 1);
    CHECK_EQ(cg_queue_full(NULL), 0);
    CHECK_EQ(cg_queue_maxsize(NULL), 0);
    CHECK(cg_condition_lock(NULL) == NULL);
    /* freeing NULL does nothing */
    cg_lock_free(NULL);
    cg_event_free(NULL);
    cg_condition_free(NULL);
    cg_semaphore_free(NULL);
    cg_barrier_free(NULL);
    cg_queue_free(NULL);
}

/* Waiting outside a loop, and from a loop's callback (no task): errors,
 * and nothing left behind (no waiter stays queued). */
static void *sem_probe_main(cg_gen *g, void *s) {
    (void)g;
    /* a waiter left behind by the failed waits would make locked() true */
    CHECK_EQ(cg_semaphore_locked(s), 0);
    cg_semaphore_acquire(s);
    cg_semaphore_release(s);
    return NULL;
}

typedef struct cb_probe {
    cg_lock *lock;
    cg_queue *q;
    const char *lock_err, *queue_err;
} cb_probe;

static void probe_cb(void *p) {
    cb_probe *c = p;
    static char a[256], b[256];
    const char *r = raised(w_lock_acquire, c->lock);
    snprintf(a, sizeof a, "%s", r ? r : "(none)");
    c->lock_err = a;
    r = raised(w_queue_get, c->q);
    snprintf(b, sizeof b, "%s", r ? r : "(none)");
    c->queue_err = b;
}

static void *callback_main(cg_gen *g, void *p) {
    (void)g;
    cb_probe *c = p;
    cg_lock_acquire(c->lock);
    cg_handle *h = cg_loop_call_soon(cg_get_running_loop(), probe_cb, c);
    cg_handle_unref(h);
    cg_sleep(0);
    cg_sleep(0);
    cg_lock_release(c->lock);
    /* no waiter was left: the lock is free for an uncontended acquire */
    CHECK_EQ(cg_lock_locked(c->lock), 0);
    cg_lock_acquire(c->lock);
    cg_lock_release(c->lock);
    cg_queue_put_nowait(c->q, I2P(5));
    CHECK_EQ(P2I(cg_queue_get(c->q)), 5);
    return NULL;
}

static void w_lock_with_null(void *l) { cg_lock_with(l, NULL, NULL); }
static void w_wait_for_null(void *c) { cg_condition_wait_for(c, NULL, NULL); }

TEST(sync_misuse_context) {
    cg_lock *lock = cg_lock_new(NULL);
    cg_semaphore *s = cg_semaphore_new(NULL, 0);
    cg_queue *q = cg_queue_new(NULL, 0);
    cg_event *e = cg_event_new(NULL);
    /* no loop: what does not wait works, what must wait raises */
    cg_lock_acquire(lock);
    CHECK_STR(raised(w_lock_acquire, lock), "raise RuntimeError('no running event loop')");
    CHECK_EQ(cg_lock_locked(lock), 1);
    CHECK_STR(raised(w_sem_acquire, s), "raise RuntimeError('no running event loop')");
    CHECK_STR(raised(w_queue_get, q), "raise RuntimeError('no running event loop')");
    CHECK_STR(raised(w_event_wait, e), "raise RuntimeError('no running event loop')");
    cg_lock_release(lock);
    cg_semaphore_release(s);
    run_main(sem_probe_main, s);
    /* from a callback: the loop runs, but no task can be suspended */
    cb_probe c = {lock, q, NULL, NULL};
    run_main(callback_main, &c);
    CHECK_STR(c.lock_err, "raise RuntimeError('cg_await() called outside a task')");
    CHECK_STR(c.queue_err, "raise RuntimeError('cg_await() called outside a task')");
    /* async with a NULL body: TypeError, and the lock is released again */
    cg_lock *l2 = cg_lock_new(NULL);
    CHECK_STR(raised(w_lock_with_null, l2), "raise TypeError(\"'NoneType' object is not callable\")");
    CHECK_EQ(cg_lock_locked(l2), 0);
    cg_condition *cond = cg_condition_new(NULL, NULL);
    CHECK_STR(raised(w_wait_for_null, cond), "raise TypeError(\"'NoneType' object is not callable\")");
    cg_condition_free(cond);
    cg_lock_free(l2);
    cg_lock_free(lock);
    cg_semaphore_free(s);
    cg_queue_free(q);
    cg_event_free(e);
}

/* *_free while tasks wait: the object lives until they leave. (Run under
 * AddressSanitizer by the sanitizer checks, which would see a use after
 * free.) */
static int dropped;
static void count_drop(void *item, void *ud) {
    (void)item;
    CHECK(ud == &dropped);
    dropped++;
}

static void *free_getter(cg_gen *g, void *q) {
    (void)g;
    return cg_queue_get(q);
}

static void *free_locker(cg_gen *g, void *l) {
    (void)g;
    cg_lock_acquire(l); /* the last hold: the lock goes when this returns */
    return NULL;
}

static void *free_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_queue *q = cg_queue_new(NULL, 0);
    cg_task *t = cg_create_task(free_getter, q, NULL);
    cg_sleep(0);
    cg_queue_put_nowait(q, I2P(42));
    cg_queue_free(q); /* the getter holds it */
    CHECK_EQ(P2I(cg_await(cg_task_future(t))), 42);
    cg_future_unref(cg_task_future(t));

    cg_lock *l = cg_lock_new(NULL);
    cg_lock_acquire(l);
    t = cg_create_task(free_locker, l, NULL);
    cg_sleep(0);
    cg_lock_release(l);
    cg_lock_free(l);
    await_task(t);

    cg_condition *c = cg_condition_new(NULL, NULL);
    cg_lock *cl = cg_condition_lock(c);
    t = cg_create_task(t_cwait, c, NULL);
    cg_sleep(0);
    cg_lock_acquire(cl);
    cg_condition_notify(c, 1);
    cg_lock_release(cl);
    cg_condition_free(c); /* the waiter holds the condition, which holds its lock */
    await_task(t);

    /* the drop callback sees what shutdown(immediate) and free discard */
    q = cg_queue_new(NULL, 0);
    cg_queue_set_drop(q, count_drop, &dropped);
    for (int i = 0; i < 3; i++) cg_queue_put_nowait(q, I2P(i));
    cg_queue_shutdown(q, 1);
    CHECK_EQ(dropped, 3);
    cg_queue_free(q);
    q = cg_lifo_queue_new(NULL, 0);
    cg_queue_set_drop(q, count_drop, &dropped);
    for (int i = 0; i < 2; i++) cg_queue_put_nowait(q, I2P(i));
    cg_queue_free(q);
    CHECK_EQ(dropped, 5);
    return NULL;
}

TEST(sync_free_while_waiting) { run_main(free_main, NULL); }

/* A loop freed while tasks wait in a semaphore, a lock and a queue: their
 * generators are closed, and each wait takes its waiter away. */
static int destroyed_pending;
static void count_handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop, (void)ud;
    if (strcmp(ctx->message, "Task was destroyed but it is pending!") == 0) destroyed_pending++;
}

static void *sleep_1ms(cg_gen *g, void *p) {
    (void)g, (void)p;
    cg_sleep(CG_MS(1));
    return NULL;
}

TEST(sync_loop_freed_while_waiting) {
    cg_loop_opts o = {CG_LOOP_VIRTUAL_CLOCK};
    cg_loop *loop = cg_loop_new(&o);
    cg_loop_set_exception_handler(loop, count_handler, NULL);
    cg_semaphore *s = cg_semaphore_new(loop, 0);
    cg_lock *l = cg_lock_new(loop);
    cg_queue *q = cg_queue_new(loop, 0);
    cg_lock_acquire(l);
    cg_task *ts[5] = {
        cg_task_new(loop, t_sem_acquire, s, NULL), cg_task_new(loop, t_sem_acquire, s, NULL),
        cg_task_new(loop, t_lock_acquire, l, NULL), cg_task_new(loop, t_queue_get, q, NULL),
        cg_task_new(loop, sleep_1ms, NULL, NULL),
    };
    CHECK_EQ(cg_loop_run_until_complete(loop, cg_task_future(ts[4]), NULL, NULL), CG_RETURNED);
    CHECK_EQ(cg_semaphore_locked(s), 1);
    for (int i = 0; i < 5; i++) cg_future_unref(cg_task_future(ts[i]));
    cg_loop_free(loop);
    CHECK_EQ(destroyed_pending, 4);
    /* no waiter is left: the semaphore's new slot stays, the lock and the
     * queue have nobody to wake */
    cg_semaphore_release(s);
    CHECK_EQ(cg_semaphore_value(s), 1);
    CHECK_EQ(cg_semaphore_locked(s), 0);
    cg_lock_release(l);
    CHECK_EQ(cg_lock_locked(l), 0);
    cg_queue_put_nowait(q, I2P(1));
    CHECK_EQ(cg_queue_qsize(q), 1);
    cg_semaphore_free(s);
    cg_lock_free(l);
    cg_queue_free(q);
}

/* Out of memory: constructors give NULL and ENOMEM; an operation that
 * cannot grow raises MemoryError and changes nothing. */
static int fail_allocs;
static void *failing_alloc(size_t n, void *ud) {
    (void)ud;
    if (fail_allocs) return NULL;
    return malloc(n);
}
static void plain_dealloc(void *p, void *ud) {
    (void)ud;
    free(p);
}

TEST(sync_out_of_memory) {
    cg_set_allocator(failing_alloc, plain_dealloc, NULL);
    cg_queue *q = cg_queue_new(NULL, 0);
    CHECK(q != NULL);
    for (int i = 0; i < 8; i++) cg_queue_put_nowait(q, I2P(i)); /* fills the first ring */
    fail_allocs = 1;
    errno = 0;
    CHECK(cg_lock_new(NULL) == NULL);
    CHECK_EQ(errno, ENOMEM);
    CHECK(cg_queue_new(NULL, 0) == NULL);
    CHECK(cg_semaphore_new(NULL, 1) == NULL);
    CHECK(cg_barrier_new(NULL, 2) == NULL);
    q_put_arg pa = {q, I2P(8)};
    cg_exc *e = cg_try_call(w_put_nowait, &pa);
    CHECK(cg_exc_is(e, &cg_MemoryError));
    cg_exc_unref(e);
    CHECK_EQ(cg_queue_qsize(q), 8);
    fail_allocs = 0;
    cg_queue_put_nowait(q, I2P(8));
    CHECK_EQ(cg_queue_qsize(q), 9);
    for (int i = 0; i < 9; i++) CHECK_EQ(P2I(cg_queue_get_nowait(q)), i);
    cg_queue_free(q);
    cg_set_allocator(NULL, NULL, NULL);
}

static const check_case cases[] = {
    CASE(sync_lock),
    CASE(sync_lock_cancel),
    CASE(sync_event),
    CASE(sync_condition),
    CASE(sync_semaphore),
    CASE(sync_barrier),
    CASE(sync_bound_loop),
    CASE(queue_basic),
    CASE(queue_cancel),
    CASE(queue_shutdown),
    CASE(queue_kinds),
    CASE(queue_mixed),
    CASE(sync_misuse_null),
    CASE(sync_misuse_context),
    CASE(sync_free_while_waiting),
    CASE(sync_loop_freed_while_waiting),
    CASE(sync_out_of_memory),
};

CHECK_MAIN(cases)
