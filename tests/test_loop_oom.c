/* test_loop_oom.c: running out of memory in the event loop is a clean
 * MemoryError (or the NULL/-1 with ENOMEM the header documents), never a
 * crash, a hang, a leak or a lost task.
 *
 * Each program below exercises a part of the loop's API under
 * cg_run (virtual clock, so that nothing waits on real time and a program
 * that can make no progress stops with a deadlock error instead of
 * hanging). It runs with allocation N failing, for N = 1, 2, 3, ... until
 * a run completes without an injected failure; once with only the Nth
 * allocation failing, once with every allocation from the Nth on failing
 * (the clean-up paths then find no memory either). After every run:
 *   - an injected failure was seen: a MemoryError somewhere (an exception
 *     the program caught, a task's outcome, the exception handler,
 *     cg_run's outcome) or a constructor's ENOMEM, unless the run went
 *     exactly as the run without failure does;
 *   - nothing else was: every exception is a MemoryError (or holds one in
 *     its chain or group), or one the program expects at that point, or,
 *     once a failure was injected, the CancelledError of a cancellation
 *     that followed from it (a TaskGroup cancels the siblings of a failed
 *     task, as asyncio does);
 *   - no task is lost: every task the program created is done, or was
 *     reported through the exception handler as destroyed while pending;
 *     every task body that started has ended (its CG_DEFER ran), and no
 *     generator is left;
 *   - every block allocated through the hook has been freed once cg_trim
 *     has given back what the thread keeps for reuse (tests/oom_hook.h).
 * The run without failure must reach the program's end with the results
 * asyncio gives (checked inside the programs with OK()).
 *
 * Work sent to threads (executors, concurrent futures, DNS lookups) is
 * among the programs: its records come from the same allocator. Only the
 * loop's thread sees failures (tests/oom_hook.h); blocks a pool's worker
 * frees after its loop has gone are waited for before the leak check.
 */
#define _GNU_SOURCE
#include "check.h"
#include "oom_hook.h"

#include <arpa/inet.h>
#include <cogen_io.h>
#include <cogen_loop.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define DONE ((void *)(intptr_t)0x600d)
#define I(x) ((void *)(intptr_t)(x))

/* ---------------------------------------------------------------------
 * What a run saw
 * ------------------------------------------------------------------ */

static struct {
    int memory;                /* a MemoryError or ENOMEM */
    int unexpected;            /* something else went wrong */
    char what[600];            /* the first of those */
    const cg_exc_type *handler_ok; /* the program reports this type by design */
    cg_future *destroyed[64];  /* reported destroyed while pending */
    size_t ndestroyed;
    long bodies;               /* task bodies started and not ended */
} seen;

static void unexpected(const char *fmt, const char *arg, int line) {
    if (!seen.unexpected++) snprintf(seen.what, sizeof seen.what, "line %d: %s %s", line, fmt, arg);
}

/* OK(cond): what asyncio gives, checked in the run without failure (once
 * a failure is injected, the program may legitimately go elsewhere). */
#define OK(cond) \
    do { \
        int ok_ = (cond); /* evaluated always: it may have effects */ \
        if (!hk.injected && !ok_) unexpected("not", #cond, __LINE__); \
    } while (0)

static int holds_memory_error(const cg_exc *e, int depth) {
    if (!e || depth > 32) return 0;
    if (cg_exc_is(e, &cg_MemoryError)) return 1;
    for (size_t i = 0; i < cg_exc_group_count(e); i++)
        if (holds_memory_error(cg_exc_group_at(e, i), depth + 1)) return 1;
    return holds_memory_error(cg_exc_context(e), depth + 1) || holds_memory_error(cg_exc_cause(e), depth + 1);
}

/* What the programs' own bodies raise (raiser, stubborn): once a failure
 * is injected, one may surface elsewhere than the program expects (a
 * gather that failed with MemoryError leaves its child's error to be
 * reported as never retrieved). */
static int programs_own(const cg_exc *e) {
    const char *m = cg_exc_msg(e);
    return m && ((cg_exc_is(e, &cg_ValueError) && strcmp(m, "boom") == 0) ||
                 (cg_exc_is(e, &cg_KeyError) && strcmp(m, "raised while cancelled") == 0));
}

/* Every leaf of e is expected, or, after an injection, a cancellation or
 * one of the programs' own errors. */
static int acceptable(const cg_exc *e, const cg_exc_type *expected) {
    if (cg_exc_is(e, &cg_BaseExceptionGroup) && !(expected && cg_exc_is(e, expected))) {
        for (size_t i = 0; i < cg_exc_group_count(e); i++)
            if (!acceptable(cg_exc_group_at(e, i), expected)) return 0;
        return cg_exc_group_count(e) > 0;
    }
    if (expected && cg_exc_is(e, expected)) return 1;
    return hk.injected && (cg_exc_is(e, &cg_CancelledError) || programs_own(e));
}

static void see_at(const cg_exc *e, const cg_exc_type *expected, int line) {
    if (!e) return;
    if (getenv("COGEN_OOM_TRACE")) fprintf(stderr, "  line %d: %s\n", line, check_exc(e));
    if (holds_memory_error(e, 0)) {
        seen.memory = 1;
        return;
    }
    if (!acceptable(e, expected)) unexpected("exception", check_exc(e), line);
}
#define SEE(e, expected) see_at((e), (expected), __LINE__)

/* A constructor's NULL: must be ENOMEM. */
static int made_at(const void *p, int line) {
    if (p) return 1;
    if (errno == ENOMEM)
        seen.memory = 1;
    else
        unexpected("NULL with errno", strerror(errno), line);
    return 0;
}
#define MADE(p) made_at((p), __LINE__)

static void handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop;
    (void)ud;
    if (strcmp(ctx->message, "Task was destroyed but it is pending!") == 0) {
        CHECK(seen.ndestroyed < sizeof seen.destroyed / sizeof seen.destroyed[0]);
        seen.destroyed[seen.ndestroyed++] = ctx->future;
        if (!hk.injected) unexpected("report", ctx->message, __LINE__);
        return;
    }
    if (ctx->exception && !holds_memory_error(ctx->exception, 0) && seen.handler_ok &&
        cg_exc_is(ctx->exception, seen.handler_ok))
        return;
    if (!ctx->exception || (!holds_memory_error(ctx->exception, 0) && !acceptable(ctx->exception, NULL))) {
        unexpected("report", ctx->message, __LINE__);
        if (ctx->exception) fprintf(stderr, "reported: %s\n", check_exc(ctx->exception));
        return;
    }
    SEE(ctx->exception, NULL);
}

/* ---------------------------------------------------------------------
 * Tasks and operations, as the programs use them
 * ------------------------------------------------------------------ */

static cg_task *made[64]; /* every task the program created (a reference each) */
static size_t nmade;

static void body_end(void *arg) {
    (void)arg;
    seen.bodies--;
}
#define BODY() \
    seen.bodies++; \
    CG_DEFER(body_end, NULL)

/* Runs fn(arg) inside a try: 1 when it returned, 0 when it raised (the
 * exception seen, expected being the type the program expects there). */
static int attempt_at(void (*fn)(void *), void *arg, const cg_exc_type *expected, int line) {
    cg_exc *e = cg_try_catch(fn, arg, &cg_BaseException);
    if (!e) return 1;
    see_at(e, expected, line);
    cg_exc_unref(e);
    return 0;
}
#define ATTEMPT(fn, arg, expected) attempt_at((fn), (arg), (expected), __LINE__)

typedef struct spawn_rec {
    cg_fn body;
    void *arg;
    const char *name;
    cg_task *t;
} spawn_rec;

static void spawn_fn(void *p) {
    spawn_rec *s = p;
    s->t = cg_create_task(s->body, s->arg, s->name);
}

/* asyncio.create_task, the task kept in made[]; NULL when it raised. */
static cg_task *spawn(cg_fn body, void *arg, const char *name) {
    spawn_rec s = {body, arg, name, NULL};
    if (!ATTEMPT(spawn_fn, &s, NULL)) return NULL;
    CHECK(nmade < sizeof made / sizeof made[0]);
    made[nmade++] = s.t;
    return s.t;
}

typedef struct await_rec {
    cg_future *f;
    void *result;
} await_rec;

static void await_fn(void *p) {
    await_rec *a = p;
    a->result = cg_await(a->f);
}

/* await f: 1 and *result when it returned. */
static int await_at(cg_future *f, void **result, const cg_exc_type *expected, int line) {
    await_rec a = {f, NULL};
    if (!f || !attempt_at(await_fn, &a, expected, line)) return 0;
    if (result) *result = a.result;
    return 1;
}
#define AWAIT(f, result, expected) await_at((f), (result), (expected), __LINE__)

static void sleep_fn(void *ms) { cg_sleep(CG_MS((intptr_t)ms)); }

/* fn(arg) within a timeout of 100 ms: for a wait on another task, which
 * may have failed before it could do its part (the run without failure
 * checks the outcome with OK). */
typedef struct timed_rec {
    void (*fn)(void *);
    void *arg;
} timed_rec;

static void timed_fn(void *p) {
    timed_rec *t = p;
    cg_timeout_call(CG_MS(100), t->fn, t->arg);
}
#define TIMED(fn, arg) ATTEMPT(timed_fn, (&(timed_rec){(fn), (arg)}), &cg_TimeoutError)
#define SLEEP(ms) ATTEMPT(sleep_fn, I(ms), NULL)

/* Bodies */
static void *child(cg_gen *g, void *ms) { /* sleeps, returns ms */
    (void)g;
    BODY();
    cg_sleep(CG_MS((intptr_t)ms));
    return ms;
}

static void *raiser(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    cg_sleep(0);
    CG_RAISE(&cg_ValueError, "boom");
}

static void *sleeper(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    cg_sleep(CG_SEC(3600));
    return NULL;
}

/* ---------------------------------------------------------------------
 * Program: callbacks and futures
 * ------------------------------------------------------------------ */

static int calls, dones;
static void count_call(void *arg) { (*(int *)arg)++; }
static void count_done(cg_future *f, void *arg) {
    (void)f;
    (*(int *)arg)++;
}

static void result_fn(void *f) { cg_future_result(f); }

static void *p_callbacks(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    cg_loop *loop = cg_get_running_loop();
    calls = dones = 0;
    cg_handle *h[4] = {
        cg_loop_call_soon(loop, count_call, &calls),
        cg_loop_call_later(loop, CG_MS(5), count_call, &calls),
        cg_loop_call_at(loop, cg_loop_time(loop) + CG_MS(1), count_call, &calls),
        cg_loop_call_later(loop, CG_MS(7), count_call, &calls),
    };
    for (int i = 0; i < 4; i++) MADE(h[i]);
    cg_handle_cancel(h[3]);
    if (cg_loop_call_soon_threadsafe(loop, count_call, &calls) < 0) MADE(NULL);
    for (int i = 0; i < 4; i++) cg_handle_unref(h[i]);
    cg_future *f = cg_future_new(loop);
    if (MADE(f)) {
        for (int i = 0; i < 3; i++)
            if (cg_future_add_done_callback(f, count_done, i == 1 ? (void *)&calls : &dones) < 0) MADE(NULL);
        cg_future_remove_done_callback(f, count_done, &calls);
        cg_future_set_result(f, I(7));
        void *r = NULL;
        OK(AWAIT(f, &r, NULL) && r == I(7));
        /* added once done: scheduled at once */
        if (cg_future_add_done_callback(f, count_done, &dones) < 0) MADE(NULL);
        cg_future_unref(f);
    }
    SLEEP(10);
    OK(calls == 4);
    OK(dones == 3);
    cg_future *e = cg_future_new(loop);
    if (MADE(e)) {
        cg_future_set_exception(e, cg_exc_new(&cg_ValueError, "v"));
        OK(!ATTEMPT(result_fn, e, &cg_ValueError));
        cg_future_unref(e);
    }
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: tasks, await, sleep, cancel
 * ------------------------------------------------------------------ */

static void cancel_fn(void *t) { cg_task_cancel(t, "stop"); }

typedef struct all_rec {
    cg_task **v;
    size_t n;
} all_rec;

static void all_tasks_fn(void *p) {
    all_rec *a = p;
    a->v = cg_all_tasks(NULL, &a->n);
}

static void *p_tasks(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    cg_task *a = spawn(child, I(3), "a");
    cg_task *b = spawn(child, I(0), NULL);
    cg_task *r = spawn(raiser, NULL, "r");
    cg_task *s = spawn(sleeper, NULL, "s");
    void *v = NULL;
    OK(AWAIT(cg_task_future(a), &v, NULL) && v == I(3));
    OK(AWAIT(cg_task_future(b), &v, NULL) && v == I(0));
    OK(!AWAIT(cg_task_future(r), NULL, &cg_ValueError));
    for (int i = 0; i < 3; i++) SLEEP(0);
    all_rec all = {NULL, 0};
    if (ATTEMPT(all_tasks_fn, &all, NULL)) {
        OK(all.n == 2 && all.v[0] == cg_current_task() && all.v[1] == s); /* main and s */
        cg_all_tasks_free(all.v, all.n);
    }
    if (s) {
        if (ATTEMPT(cancel_fn, s, NULL)) OK(cg_task_cancelling(s) == 1);
        OK(!AWAIT(cg_task_future(s), NULL, &cg_CancelledError));
        OK(cg_future_cancelled(cg_task_future(s)));
    }
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: gather
 * ------------------------------------------------------------------ */

typedef struct gather_rec {
    cg_future **futs;
    const cg_body *bodies;
    size_t n;
    int return_exceptions;
    cg_future *g;
} gather_rec;

static void gather_fn(void *p) {
    gather_rec *r = p;
    r->g = r->bodies ? cg_gather_bodies(r->bodies, r->n, r->return_exceptions)
                     : cg_gather(r->futs, r->n, r->return_exceptions);
}

static void gcancel_fn(void *g) { cg_future_cancel(g, "enough"); }

static void *p_gather(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    cg_task *t1 = spawn(child, I(1), NULL), *t2 = spawn(child, I(2), NULL);
    if (t1 && t2) {
        cg_future *fs[3] = {cg_task_future(t1), cg_task_future(t2), cg_task_future(t1)};
        gather_rec r = {fs, NULL, 3, 0, NULL};
        const cg_gathered *res = NULL;
        if (ATTEMPT(gather_fn, &r, NULL)) {
            OK(AWAIT(r.g, (void **)&res, NULL) && res->n == 3 && res->values[1] == I(2) && res->values[2] == I(1));
            cg_future_unref(r.g);
        }
    }
    cg_body bodies[2] = {{child, I(2)}, {raiser, NULL}};
    gather_rec r = {NULL, bodies, 2, 1, NULL};
    if (ATTEMPT(gather_fn, &r, NULL)) {
        const cg_gathered *res = NULL;
        if (AWAIT(r.g, (void **)&res, NULL)) {
            OK(res->values[0] == I(2));
            if (res->excs[1]) SEE(res->excs[1], &cg_ValueError);
            OK(cg_exc_is(res->excs[1], &cg_ValueError));
        }
        cg_future_unref(r.g);
    }
    cg_task *t3 = spawn(sleeper, NULL, NULL);
    if (t3) {
        cg_future *fs[1] = {cg_task_future(t3)};
        gather_rec c = {fs, NULL, 1, 0, NULL};
        if (ATTEMPT(gather_fn, &c, NULL)) {
            SLEEP(0);
            OK(ATTEMPT(gcancel_fn, c.g, NULL));
            OK(!AWAIT(c.g, NULL, &cg_CancelledError));
            cg_future_unref(c.g);
        }
        cg_task_cancel(t3, NULL);
    }
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: wait, wait_for, shield, as_completed
 * ------------------------------------------------------------------ */

typedef struct wait_rec {
    cg_future *fs[2];
    cg_future *done[2], *pending[2];
    size_t ndone, npending;
} wait_rec;

static void wait_fn(void *p) {
    wait_rec *w = p;
    cg_wait(w->fs, 2, CG_FIRST_COMPLETED, CG_MS(3), w->done, &w->ndone, w->pending, &w->npending);
}

static void wait_for_fn(void *f) { cg_wait_for(f, CG_MS(1)); }

static void *wait_for_body(cg_gen *g, void *arg) {
    (void)g;
    cg_sleep(CG_MS(1));
    return arg;
}

static void wait_for_body_fn(void *p) { *(void **)p = cg_wait_for_body(wait_for_body, I(5), CG_MS(10)); }

typedef struct shield_rec {
    cg_future *inner, *s;
} shield_rec;

static void shield_fn(void *p) {
    shield_rec *r = p;
    r->s = cg_shield(r->inner);
}

typedef struct ac_rec {
    cg_future *fs[2];
    cg_as_completed *it;
    cg_future *got[2];
} ac_rec;

static void ac_new_fn(void *p) {
    ac_rec *r = p;
    r->it = cg_as_completed_new(r->fs, 2, CG_MS(10));
}

static void ac_next_fn(void *p) {
    ac_rec *r = p;
    r->got[0] = cg_as_completed_next(r->it);
    r->got[1] = cg_as_completed_next(r->it);
}

static void *p_wait(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    cg_task *t1 = spawn(child, I(1), NULL), *t2 = spawn(child, I(5), NULL);
    if (t1 && t2) {
        wait_rec w = {{cg_task_future(t1), cg_task_future(t2)}, {NULL}, {NULL}, 0, 0};
        OK(ATTEMPT(wait_fn, &w, NULL) && w.ndone == 1 && w.done[0] == cg_task_future(t1));
        OK(!ATTEMPT(wait_for_fn, cg_task_future(t2), &cg_TimeoutError));
        OK(cg_future_cancelled(cg_task_future(t2)));
    }
    void *v = NULL;
    OK(ATTEMPT(wait_for_body_fn, &v, NULL) && v == I(5));
    cg_task *t3 = spawn(child, I(2), NULL);
    if (t3) {
        shield_rec s = {cg_task_future(t3), NULL};
        if (ATTEMPT(shield_fn, &s, NULL)) {
            OK(AWAIT(s.s, &v, NULL) && v == I(2));
            cg_future_unref(s.s);
        }
    }
    cg_task *t4 = spawn(child, I(2), NULL), *t5 = spawn(child, I(1), NULL);
    if (t4 && t5) {
        ac_rec r = {{cg_task_future(t4), cg_task_future(t5)}, NULL, {NULL}};
        if (ATTEMPT(ac_new_fn, &r, NULL)) {
            OK(ATTEMPT(ac_next_fn, &r, NULL) && r.got[0] == cg_task_future(t5) && r.got[1] == cg_task_future(t4));
            cg_as_completed_free(r.it);
        }
    }
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: timeout scopes and TaskGroup
 * ------------------------------------------------------------------ */

static void timeout_fn(void *arg) {
    (void)arg;
    cg_timeout_call(CG_MS(1), sleep_fn, I(100));
}

static void reschedule_block(void *t) {
    cg_timeout_reschedule(t, cg_loop_time(cg_get_running_loop()) + CG_MS(50));
    cg_sleep(CG_MS(2));
}

static void timeout_obj_fn(void *t) { cg_timeout_run(t, reschedule_block, t); }

/* tg.create_task, the task kept in made[] (raises as spawn does). */
static void tg_spawn(cg_taskgroup *tg, cg_fn body, void *arg, const char *name) {
    cg_task *t = cg_taskgroup_spawn(tg, body, arg, name);
    CHECK(nmade < sizeof made / sizeof made[0]);
    made[nmade++] = t;
}

static void tg_ok(cg_taskgroup *tg, void *arg) {
    (void)arg;
    tg_spawn(tg, child, I(1), "one");
    tg_spawn(tg, child, I(2), "two");
}

static void tg_fail(cg_taskgroup *tg, void *arg) {
    (void)arg;
    tg_spawn(tg, sleeper, NULL, "sleeps");
    tg_spawn(tg, raiser, NULL, "fails");
    cg_sleep(CG_SEC(10));
}

static void tg_run_fn(void *fn) { cg_taskgroup_run((void (*)(cg_taskgroup *, void *))fn, NULL); }

static void *p_structured(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    OK(!ATTEMPT(timeout_fn, NULL, &cg_TimeoutError));
    cg_timeout *t = cg_timeout_new(CG_MS(1));
    if (MADE(t)) {
        OK(ATTEMPT(timeout_obj_fn, t, NULL) && !cg_timeout_expired(t));
        cg_timeout_free(t);
    }
    OK(ATTEMPT(tg_run_fn, (void *)tg_ok, NULL));
    OK(!ATTEMPT(tg_run_fn, (void *)tg_fail, &cg_ValueError));
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: the synchronization primitives
 * ------------------------------------------------------------------ */

static cg_lock *lock;
static cg_event *event;
static cg_condition *cond;
static cg_semaphore *sem, *bsem;
static cg_barrier *barrier;
static int flag;

static void nap(void *arg) {
    (void)arg;
    cg_sleep(CG_MS(1));
}
static int flag_set(void *arg) {
    (void)arg;
    return flag;
}
static void cond_wait_block(void *arg) {
    (void)arg;
    cg_condition_wait_for(cond, flag_set, NULL);
}
static void cond_notify_block(void *arg) {
    (void)arg;
    flag = 1;
    cg_condition_notify_all(cond);
}

static void *sync_user(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    cg_lock_with(lock, nap, NULL);
    cg_event_wait(event);
    cg_lock_with(cg_condition_lock(cond), cond_wait_block, NULL);
    cg_semaphore_with(sem, nap, NULL);
    cg_semaphore_with(bsem, nap, NULL);
    return I(cg_barrier_wait(barrier));
}

static void lock_fn(void *arg) { cg_lock_with(lock, nap, arg); }
static void cond_fn(void *arg) { cg_lock_with(cg_condition_lock(cond), cond_notify_block, arg); }
static void sem_fn(void *arg) { cg_semaphore_with(sem, nap, arg); }
static void over_release_fn(void *arg) {
    (void)arg;
    cg_semaphore_release(bsem);
}
static void barrier_fn(void *arg) { *(long *)arg = cg_barrier_wait(barrier); }

static void *p_sync(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    flag = 0;
    int ok = MADE(lock = cg_lock_new(NULL)) & MADE(event = cg_event_new(NULL)) &
             MADE(cond = cg_condition_new(NULL, NULL)) & MADE(sem = cg_semaphore_new(NULL, 1)) &
             MADE(bsem = cg_bounded_semaphore_new(NULL, 1)) & MADE(barrier = cg_barrier_new(NULL, 2));
    if (ok) {
        cg_task *u = spawn(sync_user, NULL, "user");
        if (u) {
            int all = ATTEMPT(lock_fn, NULL, NULL);
            all &= SLEEP(1);
            cg_event_set(event);
            all &= SLEEP(1);
            all &= ATTEMPT(cond_fn, NULL, NULL);
            all &= ATTEMPT(sem_fn, NULL, NULL);
            OK(!ATTEMPT(over_release_fn, NULL, &cg_ValueError));
            long idx = -1;
            all &= TIMED(barrier_fn, &idx);
            OK(all);
            if (!all) cg_task_cancel(u, NULL); /* it may wait for what did not come */
            void *v = NULL;
            OK(AWAIT(cg_task_future(u), &v, NULL) && idx + (intptr_t)v == 1); /* indexes 0 and 1 */
        }
    }
    cg_lock_free(lock);
    cg_event_free(event);
    cg_condition_free(cond);
    cg_semaphore_free(sem);
    cg_semaphore_free(bsem);
    cg_barrier_free(barrier);
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: queues
 * ------------------------------------------------------------------ */

static cg_queue *queue;

static void *producer(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    for (intptr_t i = 1; i <= 3; i++) cg_queue_put(queue, I(i));
    return NULL;
}

static void *consumer(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    intptr_t sum = 0;
    for (int i = 0; i < 3; i++) {
        sum += (intptr_t)cg_queue_get(queue);
        cg_queue_task_done(queue);
    }
    return I(sum);
}

static void join_fn(void *q) { cg_queue_join(q); }
static void get_fn(void *q) { cg_queue_get(q); }

typedef struct nowait_rec {
    cg_queue *q;
    intptr_t got[3];
} nowait_rec;

static void nowait_fn(void *p) {
    nowait_rec *r = p;
    cg_queue_put_nowait(r->q, I(2));
    cg_queue_put_nowait(r->q, I(1));
    cg_queue_put_nowait(r->q, I(3));
    for (int i = 0; i < 3; i++) r->got[i] = (intptr_t)cg_queue_get_nowait(r->q);
}

static void *p_queue(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    if (MADE(queue = cg_queue_new(NULL, 1))) {
        cg_task *p = spawn(producer, NULL, "producer"), *c = spawn(consumer, NULL, "consumer");
        int all = p && c && SLEEP(0); /* the producer has put its first item */
        all = all && TIMED(join_fn, queue);
        await_rec ac = {c ? cg_task_future(c) : NULL, NULL};
        all = all && TIMED(await_fn, &ac);
        OK(all && ac.result == I(6));
        if (!all) { /* one may wait for what the other could not do */
            if (p) cg_task_cancel(p, NULL);
            if (c) cg_task_cancel(c, NULL);
        }
        if (c) AWAIT(cg_task_future(c), NULL, NULL);
        if (p) AWAIT(cg_task_future(p), NULL, NULL);
        cg_queue_free(queue);
    }
    cg_queue *lifo = cg_lifo_queue_new(NULL, 0), *prio = cg_priority_queue_new(NULL, 0, NULL, NULL);
    if (MADE(lifo)) {
        nowait_rec r = {lifo, {0}};
        OK(ATTEMPT(nowait_fn, &r, NULL) && r.got[0] == 3 && r.got[1] == 1 && r.got[2] == 2);
    }
    if (MADE(prio)) {
        nowait_rec r = {prio, {0}};
        OK(ATTEMPT(nowait_fn, &r, NULL) && r.got[0] == 1 && r.got[1] == 2 && r.got[2] == 3);
    }
    cg_queue_free(lifo);
    cg_queue_free(prio);
    cg_queue *q = cg_queue_new(NULL, 0);
    if (MADE(q)) {
        cg_queue_shutdown(q, 1);
        OK(!ATTEMPT(get_fn, q, &cg_QueueShutDown));
        cg_queue_free(q);
    }
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: async generators (and shutdown_asyncgens)
 * ------------------------------------------------------------------ */

static cg_agen *left_open; /* closed by asyncio.run's shutdown_asyncgens */
static int agen_closed;

static void agen_cleanup(void *arg) {
    (void)arg;
    agen_closed++;
}

static void *counter(cg_gen *g, void *arg) {
    CG_DEFER(agen_cleanup, NULL);
    for (intptr_t i = 0; i < (intptr_t)arg; i++) {
        cg_sleep(CG_MS(1));
        cg_yield(g, I(i + 1));
    }
    return NULL;
}

typedef struct iter_rec {
    cg_agen *ag;
    intptr_t sum;
    int steps;
} iter_rec;

static void iter_fn(void *p) {
    iter_rec *r = p;
    void *v;
    for (int i = 0; (r->steps < 0 || i < r->steps) && cg_anext(r->ag, &v); i++) r->sum += (intptr_t)v;
}

/* The same inside an except block, where an await in the body makes the
 * driver a frame of its own (src/loop/agen.c): without memory for it, the
 * driver awaits where it is. */
static void iter_handling_fn(void *p) {
    CG_TRY {
        CG_RAISE(&cg_KeyError, "handled");
    } CG_EXCEPT(&cg_KeyError, e) {
        iter_fn(p);
    } CG_END;
}

static void aclose_fn(void *ag) { cg_aclose(ag); }

static void *p_agen(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    agen_closed = 0;
    cg_agen *full = cg_agen_new(counter, I(3), NULL);
    if (MADE(full)) {
        iter_rec r = {full, 0, -1};
        OK(ATTEMPT(iter_fn, &r, NULL) && r.sum == 6);
        cg_agen_free(full);
    }
    cg_agen *half = cg_agen_new(counter, I(3), NULL);
    if (MADE(half)) {
        iter_rec r = {half, 0, 1};
        OK(ATTEMPT(iter_fn, &r, NULL) && r.sum == 1);
        OK(ATTEMPT(aclose_fn, half, NULL));
        cg_agen_free(half);
    }
    cg_agen *handling = cg_agen_new(counter, I(3), NULL);
    if (MADE(handling)) {
        iter_rec r = {handling, 0, -1};
        OK(ATTEMPT(iter_handling_fn, &r, NULL) && r.sum == 6);
        cg_agen_free(handling);
    }
    left_open = cg_agen_new(counter, I(3), NULL);
    if (MADE(left_open)) {
        iter_rec r = {left_open, 0, 2};
        OK(ATTEMPT(iter_fn, &r, NULL) && r.sum == 3);
    }
    OK(agen_closed == 3);
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: asyncio.run's shutdown (tasks left pending, an exception
 * raised while cancelled)
 * ------------------------------------------------------------------ */

static void *stubborn(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    CG_TRY {
        cg_sleep(CG_SEC(3600));
    } CG_EXCEPT(&cg_CancelledError, e) {
        CG_RAISE(&cg_KeyError, "raised while cancelled");
    } CG_END;
    return NULL;
}

static void *p_shutdown(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    seen.handler_ok = &cg_KeyError; /* unhandled exception during asyncio.run() shutdown */
    spawn(sleeper, NULL, "left");
    spawn(stubborn, NULL, "stubborn");
    spawn(child, I(5), "child");
    SLEEP(0);
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: work sent to threads (to_thread, an executor of one's own,
 * concurrent futures and wrap_future)
 * ------------------------------------------------------------------ */

static void *square(void *arg) { return I((intptr_t)arg * (intptr_t)arg); }

typedef struct thread_rec {
    cg_executor *ex;
    cg_cfuture *cf;
    intptr_t arg;
    void *result;
    cg_future *f;
} thread_rec;

static void to_thread_fn(void *p) {
    thread_rec *r = p;
    r->result = cg_to_thread(square, I(r->arg));
}
static void in_executor_fn(void *p) {
    thread_rec *r = p;
    r->f = cg_loop_run_in_executor(NULL, r->ex, square, I(r->arg));
}
static void wrap_fn(void *p) {
    thread_rec *r = p;
    r->f = cg_wrap_future(r->cf);
}

static void cf_done(cg_cfuture *f, void *arg) {
    (void)f;
    (*(int *)arg)++;
}

static void *p_executor(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    thread_rec r = {NULL, NULL, 7, NULL, NULL};
    OK(ATTEMPT(to_thread_fn, &r, NULL) && r.result == I(49));
    r.ex = cg_executor_new(2);
    if (MADE(r.ex)) {
        void *v = NULL;
        r.arg = 9;
        if (ATTEMPT(in_executor_fn, &r, NULL)) {
            OK(AWAIT(r.f, &v, NULL) && v == I(81));
            cg_future_unref(r.f);
        }
        cg_executor_shutdown(r.ex, 1);
        cg_executor_free(r.ex);
    }
    r.cf = cg_cfuture_new();
    if (MADE(r.cf)) {
        dones = 0;
        if (cg_cfuture_add_done_callback(r.cf, cf_done, &dones) < 0) MADE(NULL);
        r.f = NULL;
        int wrapped = ATTEMPT(wrap_fn, &r, NULL);
        CHECK_EQ(cg_cfuture_set_result(r.cf, I(5)), 0);
        void *v = NULL;
        if (wrapped) {
            OK(AWAIT(r.f, &v, NULL) && v == I(5));
            cg_future_unref(r.f);
        }
        OK(dones == 1);
        cg_cfuture_unref(r.cf);
    }
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: DNS lookups on the DNS workers (a name that needs the
 * resolver: /etc/hosts's localhost; an address to a name)
 * ------------------------------------------------------------------ */

typedef struct dns_rec {
    struct addrinfo *res;
    char host[64], serv[16];
} dns_rec;

static void gai_fn(void *p) {
    struct addrinfo hints = {0};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    ((dns_rec *)p)->res = cg_getaddrinfo("localhost", "80", &hints);
}

static void gni_fn(void *p) {
    dns_rec *d = p;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(8080);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cg_getnameinfo((struct sockaddr *)&sa, sizeof sa, d->host, sizeof d->host, d->serv, sizeof d->serv,
                   NI_NUMERICHOST | NI_NUMERICSERV);
}

static void *p_dns(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    BODY();
    dns_rec d = {NULL, "", ""};
    if (ATTEMPT(gai_fn, &d, NULL)) {
        OK(d.res && d.res->ai_family == AF_INET &&
           ((struct sockaddr_in *)d.res->ai_addr)->sin_port == htons(80));
        freeaddrinfo(d.res);
    }
    OK(ATTEMPT(gni_fn, &d, NULL) && strcmp(d.host, "127.0.0.1") == 0 && strcmp(d.serv, "8080") == 0);
    return DONE;
}

/* ---------------------------------------------------------------------
 * Program: a loop of one's own (new, run_until_complete, run_forever,
 * stop, free)
 * ------------------------------------------------------------------ */

static void stop_cb(void *loop) { cg_loop_stop(loop); }

static void run_forever_fn(void *loop) { cg_loop_run_forever(loop); }

static void *p_own_loop(void) {
    cg_loop_opts o = {CG_LOOP_VIRTUAL_CLOCK};
    cg_loop *loop = cg_loop_new(&o);
    if (!MADE(loop)) return DONE;
    cg_loop_set_exception_handler(loop, handler, NULL);
    cg_task_opts to = {"own", 0, 0};
    cg_task *t = cg_task_new(loop, child, I(2), &to);
    if (MADE(t)) {
        made[nmade++] = t;
        void *v = NULL;
        cg_exc *e = NULL;
        if (cg_loop_run_until_complete(loop, cg_task_future(t), &v, &e) == CG_RETURNED)
            OK(v == I(2));
        else
            SEE(e, NULL);
        cg_exc_unref(e);
    }
    cg_task *s = cg_task_new(loop, sleeper, NULL, NULL);
    if (MADE(s)) {
        made[nmade++] = s;
        cg_handle *h = cg_loop_call_later(loop, CG_MS(1), stop_cb, loop);
        if (MADE(h)) {
            OK(ATTEMPT(run_forever_fn, loop, NULL));
            cg_handle_unref(h);
        }
        cg_task_cancel(s, NULL);
        cg_exc *e = NULL;
        OK(cg_loop_run_until_complete(loop, cg_task_future(s), NULL, &e) == CG_RAISED);
        SEE(e, &cg_CancelledError);
        cg_exc_unref(e);
    }
    cg_loop_free(loop);
    return DONE;
}

/* ---------------------------------------------------------------------
 * The sweep
 * ------------------------------------------------------------------ */

typedef struct program {
    const char *name;
    cg_fn main;             /* run by cg_run */
    void *(*own)(void);     /* or run as it is */
} program;

static const program programs[] = {
    {"callbacks", p_callbacks, NULL},
    {"tasks", p_tasks, NULL},
    {"gather", p_gather, NULL},
    {"wait", p_wait, NULL},
    {"structured", p_structured, NULL},
    {"sync", p_sync, NULL},
    {"queue", p_queue, NULL},
    {"agen", p_agen, NULL},
    {"shutdown", p_shutdown, NULL},
    {"own_loop", NULL, p_own_loop},
    {"executor", p_executor, NULL},
    {"dns", p_dns, NULL},
};

static int was_destroyed(const cg_future *f) {
    for (size_t i = 0; i < seen.ndestroyed; i++)
        if (seen.destroyed[i] == f) return 1;
    return 0;
}

/* One run; 1 when it reached the program's end (DONE). */
static int run_program(const program *p) {
    memset(&seen, 0, sizeof seen);
    nmade = 0;
    left_open = NULL;
    void *out = NULL;
    cg_exc *e = NULL;
    if (p->own) {
        out = p->own();
    } else {
        cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, "main", handler, NULL};
        if (cg_run(p->main, NULL, &o, &out, &e) == CG_RAISED) SEE(e, NULL);
        cg_exc_unref(e);
    }
    cg_agen_free(left_open);
    /* No task lost: done, or reported destroyed while pending. */
    for (size_t i = 0; i < nmade; i++) {
        cg_future *f = cg_task_future(made[i]);
        if (!cg_future_done(f) && !was_destroyed(f))
            unexpected("task lost:", cg_task_name(made[i]), __LINE__);
        /* An exception nobody retrieved would be reported when the task
         * goes, and its loop has gone: seen as retrieved here (what the
         * program saw was checked when it saw it). */
        if (cg_future_done(f) && !cg_future_cancelled(f)) cg_future_exception(f);
        cg_future_unref(f);
    }
    CHECK_EQ(seen.bodies, 0);
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    CHECK_EQ(st.live, 0);
    return out == DONE;
}

/* COGEN_OOM_FROM=N starts the sweep at N, COGEN_OOM_ONLY=name runs one
 * program: to look at one failure under a debugger. */
static long sweep(const program *p, int persistent) {
    const char *from = getenv("COGEN_OOM_FROM");
    for (long n = from ? atol(from) : 1;; n++) {
        arm(n, persistent);
        int reached = run_program(p);
        long injected = hk.injected;
        disarm();
        cg_trim();
        if (hook_live_settled() != 0) {
            fprintf(stderr, "%s, failing allocation %ld%s: %ld blocks leaked\n", p->name, n,
                    persistent ? " and after" : "", hook_live());
            abort();
        }
        if (seen.unexpected) {
            fprintf(stderr, "%s, failing allocation %ld%s: %s\n", p->name, n, persistent ? " and after" : "",
                    seen.what);
            abort();
        }
        if (!injected) {
            CHECK(reached);
            CHECK_EQ(seen.memory, 0);
            CHECK_EQ(seen.ndestroyed, 0);
            return n;
        }
        if (getenv("COGEN_OOM_VERBOSE"))
            printf("%s N=%ld%s: %s%s\n", p->name, n, persistent ? "+" : "", seen.memory ? "MemoryError" : "unseen",
                   reached ? " reached the end" : "");
        /* Unseen only when the library fully made up for it. */
        if (!seen.memory && !(reached && !seen.ndestroyed)) {
            fprintf(stderr, "%s, failing allocation %ld%s: the failure went unseen\n", p->name, n,
                    persistent ? " and after" : "");
            abort();
        }
        CHECK(n < 100000);
    }
}

static void sweep_all(int persistent) {
    /* The DNS workers' pool lives as long as the process: made before the
     * hook, by a lookup, it is not counted as a leak (and the library
     * frees it with the allocator that made it). */
    CHECK(run_program(&programs[sizeof programs / sizeof programs[0] - 1]));
    cg_set_allocator(hook_alloc, hook_free, &hk);
    /* Warm up: the thread's pools and caches, and the runs without
     * failure. */
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++) {
        CHECK(run_program(&programs[i]));
        if (seen.unexpected) fprintf(stderr, "%s: %s\n", programs[i].name, seen.what);
        CHECK_EQ(seen.unexpected, 0);
        if (getenv("COGEN_OOM_VERBOSE")) {
            cg_trim();
            fprintf(stderr, "%s: %ld blocks out\n", programs[i].name, hk.live);
        }
    }
    cg_trim();
    CHECK_EQ(hk.live, 0);
    long runs = 0;
    const char *only = getenv("COGEN_OOM_ONLY");
    for (size_t i = 0; i < sizeof programs / sizeof programs[0]; i++) {
        if (only && strcmp(only, programs[i].name) != 0) continue;
        long n = sweep(&programs[i], persistent);
        printf("%-10s %s: %ld runs\n", programs[i].name, persistent ? "fail from N on" : "fail the Nth", n);
        CHECK(n > 1 || getenv("COGEN_OOM_FROM")); /* every program allocates */
        runs += n;
    }
    printf("%ld runs, %ld allocations\n", runs, hk.allocs);
}

/* ---------------------------------------------------------------------
 * What never allocates (cogen_loop.h, "Out of memory"): with every
 * allocation failing, these calls and the steps and wake-ups they cause
 * try none.
 * ------------------------------------------------------------------ */

/* Waits on the primitive number `which`: lock, event, semaphore, condition. */
static void *waiter(cg_gen *g, void *which) {
    (void)g;
    switch ((intptr_t)which) {
    case 0: cg_lock_acquire(lock); break;
    case 1: cg_event_wait(event); break;
    case 2: cg_semaphore_acquire(sem); break;
    default: cg_lock_with(cg_condition_lock(cond), cond_wait_block, NULL); break;
    }
    return NULL;
}
static void *queue_getter(cg_gen *g, void *arg) {
    (void)g;
    return cg_queue_get(arg);
}
static void *future_waiter(cg_gen *g, void *f) {
    (void)g;
    return cg_await(f);
}

static void *p_never(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    flag = 0;
    CHECK((lock = cg_lock_new(NULL)) && (event = cg_event_new(NULL)) && (cond = cg_condition_new(NULL, NULL)) &&
          (sem = cg_semaphore_new(NULL, 0)) && (queue = cg_queue_new(NULL, 0)));
    cg_queue *items = cg_queue_new(NULL, 0);
    cg_future *f[4] = {cg_future_new(loop), cg_future_new(loop), cg_future_new(loop), cg_future_new(loop)};
    cg_exc *e = cg_exc_new(&cg_ValueError, "made before");
    cg_handle *h = cg_loop_call_later(loop, CG_SEC(1), count_call, &calls);
    CHECK(items && f[0] && f[1] && f[2] && f[3] && h);
    cg_lock_acquire(lock);
    cg_queue_put_nowait(items, I(1));
    cg_task *t[8] = {
        cg_create_task(waiter, I(0), NULL),         cg_create_task(waiter, I(1), NULL),
        cg_create_task(waiter, I(2), NULL),         cg_create_task(waiter, I(3), NULL),
        cg_create_task(queue_getter, queue, NULL),  cg_create_task(future_waiter, f[0], NULL),
        cg_create_task(future_waiter, f[1], NULL),  cg_create_task(future_waiter, f[2], NULL),
    };
    cg_sleep(0); /* they wait now */
    cg_sleep(0);
    arm(1, 1);
    cg_future_set_result(f[0], I(1));
    cg_future_set_exception(f[1], e);
    cg_future_cancel(f[2], NULL);
    cg_task_cancel(t[4], NULL);
    CHECK_EQ(cg_future_add_done_callback(f[3], count_done, &dones), 0);
    CHECK_EQ(cg_future_remove_done_callback(f[3], count_done, &dones), 1);
    cg_handle_cancel(h);
    cg_lock_release(lock);
    cg_event_set(event);
    cg_event_clear(event);
    cg_semaphore_release(sem);
    cg_lock_acquire(cg_condition_lock(cond)); /* free now: no wait */
    flag = 1;
    cg_condition_notify_all(cond);
    cg_lock_release(cg_condition_lock(cond));
    CHECK(cg_queue_get_nowait(items) == I(1));
    cg_queue_task_done(items);
    cg_queue_shutdown(items, 1);
    cg_task_uncancel(t[4]);
    cg_sleep(0); /* the wake-ups and the steps they cause */
    cg_sleep(0);
    cg_sleep(0);
    long tried = hk.count;
    disarm();
    /* Only the CancelledErrors thrown into the two cancelled waiters were
     * to be made (as asyncio makes them when it throws them in): they got
     * MemoryError instead. */
    CHECK_EQ(tried, 2);
    for (int i = 0; i < 8; i++) {
        cg_future *tf = cg_task_future(t[i]);
        CHECK(cg_future_done(tf));
        CHECK(!cg_future_cancelled(tf));
        cg_exc *x = cg_future_exception(tf);
        if (i == 4 || i == 7)
            CHECK(cg_exc_is(x, &cg_MemoryError));
        else if (i == 6)
            CHECK(cg_exc_is(x, &cg_ValueError));
        else
            CHECK(x == NULL);
        cg_future_unref(tf);
    }
    for (int i = 0; i < 4; i++) cg_future_unref(f[i]);
    cg_handle_unref(h);
    cg_queue_free(items);
    cg_lock_free(lock);
    cg_event_free(event);
    cg_condition_free(cond);
    cg_semaphore_free(sem);
    cg_queue_free(queue);
    return DONE;
}

TEST(loop_oom_never_allocates) {
    /* With every generator compact (make check-compact), switching a task
     * out saves its stack in a buffer the core allocates: the promise is
     * the loop's own, made for stacks of their own. */
    const char *compact = getenv("COGEN_COMPACT");
    if (compact && strtol(compact, NULL, 10) > 0) {
        printf("loop_oom_never_allocates: not checked: COGEN_COMPACT makes every switch allocate\n");
        return;
    }
    cg_set_allocator(hook_alloc, hook_free, &hk);
    memset(&seen, 0, sizeof seen);
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, "main", handler, NULL};
    void *out = NULL;
    cg_exc *e = NULL;
    cg_status st = cg_run(p_never, NULL, &o, &out, &e);
    if (e) fprintf(stderr, "%s\n", check_exc(e));
    CHECK_EQ(st, CG_RETURNED);
    CHECK_PTR(out, DONE);
    CHECK_EQ(seen.unexpected, 0);
    cg_trim();
    CHECK_EQ(hk.live, 0);
}

TEST(loop_oom_fail_nth) { sweep_all(0); }
TEST(loop_oom_fail_from_nth) { sweep_all(1); }

static const check_case cases[] = {
    CASE(loop_oom_fail_nth),
    CASE(loop_oom_fail_from_nth),
    CASE(loop_oom_never_allocates),
};
CHECK_MAIN(cases)
