/* thread.c: executors (concurrent.futures.ThreadPoolExecutor, the loop's
 * default executor, loop.run_in_executor, asyncio.to_thread), concurrent
 * futures, and the calls between a loop and other threads
 * (run_coroutine_threadsafe, wrap_future). The pools and the way a job's
 * outcome comes back to its loop are pool.c's. */
#define _GNU_SOURCE
#include "io/pool.h"
#include "cogen_io.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------
 * Executors
 * ------------------------------------------------------------------ */

struct cg_executor {
    cg__pool *pool;
    pthread_mutex_t mu;
    unsigned char shutdown;
};

cg_executor *cg_executor_new(unsigned max_workers) {
    cg_executor *ex = cg__zalloc(sizeof *ex);
    if (!ex) {
        errno = ENOMEM;
        return NULL;
    }
    ex->pool = cg__pool_new(max_workers);
    if (!ex->pool) {
        cg__dealloc(ex);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&ex->mu, NULL);
    return ex;
}

void cg_executor_shutdown(cg_executor *ex, int wait) {
    pthread_mutex_lock(&ex->mu);
    ex->shutdown = 1;
    pthread_mutex_unlock(&ex->mu);
    cg__pool_shutdown(ex->pool, wait);
}

void cg_executor_free(cg_executor *ex) {
    if (!ex) return;
    cg__pool_release(ex->pool);
    pthread_mutex_destroy(&ex->mu);
    cg__dealloc(ex);
}

unsigned cg_executor_workers(cg_executor *ex) { return cg__pool_workers(ex->pool); }

/* A call of fn(arg) on a worker: its result, or what it raised. */
typedef struct call_job {
    cg__job job; /* first */
    cg_thread_fn fn;
    void *arg;
    void *result;
    cg_exc *exc;
} call_job;

static void call_fn(void *p) {
    call_job *c = p;
    c->result = c->fn(c->arg);
}

static void call_work(cg__job *j) {
    call_job *c = (call_job *)j;
    c->exc = cg_try_catch(call_fn, c, &cg_BaseException); /* (moved to the loop's thread with the job) */
}

static void call_deliver(cg__job *j, cg_future *f) {
    call_job *c = (call_job *)j;
    if (c->exc) {
        cg_future_set_exception(f, c->exc);
        c->exc = NULL;
    } else {
        cg_future_set_result(f, c->result);
    }
}

static void call_fini(cg__job *j) {
    call_job *c = (call_job *)j;
    cg_exc_unref(c->exc);
    cg__job_dealloc(j);
}

cg_future *cg_loop_run_in_executor(cg_loop *loop, cg_executor *ex, cg_thread_fn fn, void *arg) {
    if (!loop) loop = cg_get_running_loop();
    if (!fn) CG_RAISE(&cg_TypeError, "cg_loop_run_in_executor() needs a function");
    if (loop->closed) CG_RAISE(&cg_RuntimeError, "Event loop is closed");
    cg__pool *pool;
    if (ex) {
        pthread_mutex_lock(&ex->mu);
        int shut = ex->shutdown;
        pthread_mutex_unlock(&ex->mu);
        if (shut) CG_RAISE(&cg_RuntimeError, "cannot schedule new futures after shutdown");
        pool = ex->pool;
    } else {
        pool = cg__default_executor(loop);
    }
    call_job *c = cg__job_new(sizeof *c, call_work, call_deliver, call_fini, 1);
    c->fn = fn;
    c->arg = arg;
    cg_exc *e;
    cg_future *f = cg__job_start(loop, pool, &c->job, &e);
    if (!f) cg_raise(e);
    return f;
}

/* await f, and drop it (a reference the caller had). */
static void *await_unref(cg_future *f) {
    cg_exc *e = cg__await_catch(f);
    void *v = e ? NULL : f->result;
    cg_future_unref(f);
    if (e) cg_raise(e);
    return v;
}

void *cg_to_thread(cg_thread_fn fn, void *arg) {
    cg__check_in_task("cg_to_thread");
    return await_unref(cg_loop_run_in_executor(cg_get_running_loop(), NULL, fn, arg));
}

/* ---------------------------------------------------------------------
 * Concurrent futures (concurrent.futures.Future)
 * ------------------------------------------------------------------ */

enum { C_PENDING = 0, C_CANCELLED, C_FINISHED };

typedef struct cf_cb {
    struct cf_cb *next;
    cg_cfuture_callback fn;
    void *arg;
} cf_cb;

struct cg_cfuture {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int refs;          /* atomic */
    unsigned char state;
    void *result;
    cg_exc *exc;       /* owned */
    cf_cb *cbs;        /* in the order added */
};

cg_cfuture *cg_cfuture_new(void) {
    cg_cfuture *f = cg__zalloc(sizeof *f);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    f->refs = 1;
    return f;
}

cg_cfuture *cg_cfuture_ref(cg_cfuture *f) {
    if (f) __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED);
    return f;
}

void cg_cfuture_unref(cg_cfuture *f) {
    if (!f || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    for (cf_cb *c = f->cbs, *n; c; c = n) {
        n = c->next;
        cg__dealloc(c);
    }
    cg_exc_unref(f->exc);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    cg__dealloc(f);
}

int cg_cfuture_done(cg_cfuture *f) {
    pthread_mutex_lock(&f->mu);
    int d = f->state != C_PENDING;
    pthread_mutex_unlock(&f->mu);
    return d;
}

int cg_cfuture_cancelled(cg_cfuture *f) {
    pthread_mutex_lock(&f->mu);
    int c = f->state == C_CANCELLED;
    pthread_mutex_unlock(&f->mu);
    return c;
}

/* Completes f (mu held, pending) and runs its callbacks, in the caller's
 * thread, outside the lock. */
static void cf_complete(cg_cfuture *f, int state, void *v, cg_exc *e) {
    f->state = (unsigned char)state;
    f->result = v;
    f->exc = e;
    cf_cb *cbs = f->cbs;
    f->cbs = NULL;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    while (cbs) {
        cf_cb *n = cbs->next;
        cbs->fn(f, cbs->arg);
        cg__dealloc(cbs);
        cbs = n;
    }
}

/* Completes f with state, v and e (consumed) if it is pending: 0, else -1. */
static int cf_set(cg_cfuture *f, int state, void *v, cg_exc *e) {
    pthread_mutex_lock(&f->mu);
    if (f->state != C_PENDING) {
        pthread_mutex_unlock(&f->mu);
        cg_exc_unref(e);
        return -1;
    }
    cg_cfuture_ref(f); /* (a callback may drop the last other reference) */
    cf_complete(f, state, v, e);
    cg_cfuture_unref(f);
    return 0;
}

int cg_cfuture_cancel(cg_cfuture *f) {
    if (cf_set(f, C_CANCELLED, NULL, NULL) == 0) return 1;
    return cg_cfuture_cancelled(f);
}

int cg_cfuture_set_result(cg_cfuture *f, void *v) {
    if (cf_set(f, C_FINISHED, v, NULL) == 0) return 0;
    errno = EINVAL;
    return -1;
}

int cg_cfuture_set_exception(cg_cfuture *f, cg_exc *e) {
    if (e && cf_set(f, C_FINISHED, NULL, e) == 0) return 0;
    errno = EINVAL;
    return -1;
}

/* Adds callback c (filled in); runs it at once when f is done. */
static void cf_add_cb(cg_cfuture *f, cf_cb *c) {
    c->next = NULL;
    pthread_mutex_lock(&f->mu);
    if (f->state == C_PENDING) {
        cf_cb **p = &f->cbs;
        while (*p) p = &(*p)->next;
        *p = c;
        pthread_mutex_unlock(&f->mu);
        return;
    }
    pthread_mutex_unlock(&f->mu);
    cg_cfuture_callback fn = c->fn;
    void *arg = c->arg;
    cg__dealloc(c);
    fn(f, arg); /* done: at once, as concurrent.futures does */
}

int cg_cfuture_add_done_callback(cg_cfuture *f, cg_cfuture_callback fn, void *arg) {
    cf_cb *c = cg__alloc(sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return -1;
    }
    c->fn = fn;
    c->arg = arg;
    cf_add_cb(f, c);
    return 0;
}

cg_status cg_cfuture_result(cg_cfuture *f, cg_ns timeout, void **out, cg_exc **exc) {
    struct timespec dl;
    if (timeout != CG_NEVER) {
        if (timeout < 0) timeout = 0;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += (time_t)(timeout / 1000000000);
        dl.tv_nsec += (long)(timeout % 1000000000);
        if (dl.tv_nsec >= 1000000000) {
            dl.tv_sec++;
            dl.tv_nsec -= 1000000000;
        }
    }
    pthread_mutex_lock(&f->mu);
    while (f->state == C_PENDING) {
        if (timeout == CG_NEVER)
            pthread_cond_wait(&f->cv, &f->mu);
        else if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) == ETIMEDOUT)
            break;
    }
    int state = f->state;
    void *v = f->result;
    cg_exc *e = cg_exc_ref(f->exc);
    pthread_mutex_unlock(&f->mu);
    if (state == C_PENDING) e = cg_exc_new(&cg_TimeoutError, NULL);
    if (state == C_CANCELLED) e = cg_exc_new(&cg_CancelledError, NULL);
    if (out) *out = e ? NULL : v;
    if (exc)
        *exc = e;
    else
        cg_exc_unref(e);
    return e ? CG_RAISED : CG_RETURNED;
}

/* ---------------------------------------------------------------------
 * run_coroutine_threadsafe: a task of a loop, its outcome in a
 * concurrent future for another thread
 * ------------------------------------------------------------------ */

typedef struct rct {
    int refs;            /* atomic: the loop's side, and each cancel posted */
    cg_loop *loop;
    cg_fn body;
    void *arg;
    cg_cfuture *cf;      /* owned */
    cg_task *task;       /* owned, on the loop's thread */
    unsigned char task_done; /* (under cf->mu) */
} rct;

static void rct_unref(rct *r) {
    if (__atomic_sub_fetch(&r->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    cg_cfuture_unref(r->cf);
    cg__dealloc(r);
}

/* The task is done: its outcome goes to the concurrent future (the
 * exception taken from the task, which nobody else holds, so that it is
 * the other thread's alone). */
static void rct_task_done(cg_future *tf, void *arg) {
    rct *r = arg;
    cg_cfuture *cf = r->cf;
    pthread_mutex_lock(&cf->mu);
    r->task_done = 1;
    if (cf->state != C_PENDING) {
        pthread_mutex_unlock(&cf->mu);
    } else if (tf->state == F_CANCELLED) {
        cf_complete(cf, C_CANCELLED, NULL, NULL);
    } else {
        cg_exc *e = tf->exc;
        tf->exc = NULL;
        tf->log_tb = 0;
        cf_complete(cf, C_FINISHED, e ? NULL : tf->result, e);
    }
    cg_future_unref(&r->task->fut);
    r->task = NULL;
    rct_unref(r);
}

static void rct_cancel_task(void *arg) {
    rct *r = arg;
    if (r->task) cg_task_cancel(r->task, NULL);
    rct_unref(r);
}

/* The concurrent future was cancelled (in some thread): the task is
 * cancelled too, on its loop. */
static void rct_cf_done(cg_cfuture *cf, void *arg) {
    rct *r = arg;
    pthread_mutex_lock(&cf->mu);
    int post = cf->state == C_CANCELLED && !r->task_done;
    if (post) __atomic_add_fetch(&r->refs, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&cf->mu);
    if (post && cg_loop_call_soon_threadsafe(r->loop, rct_cancel_task, r) < 0) rct_unref(r);
    rct_unref(r); /* the callback's */
}

static void rct_start(void *arg) {
    rct *r = arg;
    r->task = cg_task_new(r->loop, r->body, r->arg, NULL);
    if (!r->task) {
        cg_cfuture_set_exception(r->cf, cg_exc_new(&cg_MemoryError, NULL));
        rct_unref(r);
        return;
    }
    if (cg_cfuture_cancelled(r->cf)) cg_task_cancel(r->task, NULL);
    cg_future_add_done_callback(&r->task->fut, rct_task_done, r); /* (the first: no memory needed) */
}

cg_cfuture *cg_run_coroutine_threadsafe(cg_loop *loop, cg_fn body, void *arg) {
    if (!loop || !body) {
        errno = EINVAL;
        return NULL;
    }
    rct *r = cg__zalloc(sizeof *r);
    cg_cfuture *cf = cg_cfuture_new();
    if (!r || !cf) goto fail;
    r->refs = 2; /* the loop's side, and the cancel callback's */
    r->loop = loop;
    r->body = body;
    r->arg = arg;
    r->cf = cg_cfuture_ref(cf);
    if (cg_cfuture_add_done_callback(cf, rct_cf_done, r) < 0) goto fail_cf;
    if (cg_loop_call_soon_threadsafe(loop, rct_start, r) < 0) {
        cg_cfuture_set_exception(cf, cg_exc_new(&cg_MemoryError, NULL)); /* (runs rct_cf_done) */
        rct_unref(r);
        cg_cfuture_unref(cf);
        errno = ENOMEM;
        return NULL;
    }
    return cf;
fail_cf:
    cg_cfuture_unref(cf);
fail:
    cg__dealloc(r);
    cg_cfuture_unref(cf);
    errno = ENOMEM;
    return NULL;
}

/* ---------------------------------------------------------------------
 * wrap_future: a future of the running loop that follows a concurrent
 * one (cancelling it cancels the concurrent future)
 * ------------------------------------------------------------------ */

typedef struct wrap_job {
    cg__job job; /* first */
    cg_cfuture *cf; /* owned */
} wrap_job;

/* On the loop's thread, the loop's future pending: the concurrent
 * future's outcome goes to it. */
static void wrap_deliver(cg__job *j, cg_future *f) {
    cg_cfuture *cf = ((wrap_job *)j)->cf;
    pthread_mutex_lock(&cf->mu);
    int state = cf->state;
    void *v = cf->result;
    cg_exc *e = cg_exc_ref(cf->exc);
    pthread_mutex_unlock(&cf->mu);
    if (state == C_CANCELLED)
        cg_future_cancel(f, NULL);
    else if (e)
        cg_future_set_exception(f, e);
    else
        cg_future_set_result(f, v);
}

static void wrap_fini(cg__job *j) {
    cg_cfuture_unref(((wrap_job *)j)->cf);
    cg__job_dealloc(j);
}

/* The loop's future was cancelled: so is the concurrent one. */
static void wrap_cancel(cg__job *j) { cg_cfuture_cancel(((wrap_job *)j)->cf); }

static void wrap_cf_done(cg_cfuture *cf, void *arg) {
    (void)cf;
    cg__job_finished(arg);
}

cg_future *cg_wrap_future(cg_cfuture *cf) {
    cg_loop *loop = cg_get_running_loop();
    wrap_job *w = cg__job_new(sizeof *w, NULL, wrap_deliver, wrap_fini, 1);
    w->job.cancel = wrap_cancel;
    cf_cb *c = cg__alloc(sizeof *c); /* made first: once attached, nothing may fail */
    if (!c) {
        cg__job_dealloc(&w->job);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    w->cf = cg_cfuture_ref(cf);
    cg_exc *e;
    cg_future *f = cg__job_attach(loop, &w->job, &e);
    if (!f) {
        cg__dealloc(c);
        cg_raise(e);
    }
    c->fn = wrap_cf_done;
    c->arg = w;
    cf_add_cb(cf, c);
    return f;
}

void *cg_await_cfuture(cg_cfuture *cf) { return await_unref(cg_wrap_future(cf)); }
