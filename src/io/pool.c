/* pool.c: worker pools and the link from their jobs back to a loop
 * (pool.h). One mutex per pool guards its queue and its workers; one
 * process-wide mutex guards the links (a loop's jobs in flight, and
 * whether the loop is still there), so that a worker finishing a job and
 * the loop closing agree on who drops it. */
#define _GNU_SOURCE
#include "io/pool.h"
#include "cogen_io.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { J_NEW = 0, J_QUEUED, J_RUNNING, J_DONE }; /* a job's state in its pool (under its mu) */

struct cg__pool {
    pthread_mutex_t mu;
    pthread_cond_t work;          /* a job queued, or the shutdown */
    cg__job *head, *tail;
    size_t nqueued;
    unsigned max, nthreads, nidle, nrunning;
    unsigned char shutdown;
    int refs;                     /* the owner's, and one per worker alive */
    pthread_t *tids;              /* the workers started (max of them) */
    unsigned njoined;             /* tids[0..njoined) joined */
    cg__allocator mem;            /* what made it and tids */
};

/* ---------------------------------------------------------------------
 * The pool
 * ------------------------------------------------------------------ */

static unsigned default_workers(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1) n = 1;
    return n + 4 < 32 ? (unsigned)n + 4 : 32; /* min(32, (os.process_cpu_count() or 1) + 4) */
}

cg__pool *cg__pool_new(unsigned max_workers) {
    if (max_workers == 0) max_workers = default_workers();
    cg__pool *p = cg__zalloc(sizeof *p);
    pthread_t *t = cg__zalloc(max_workers * sizeof *t);
    if (!p || !t) {
        cg__dealloc(p);
        cg__dealloc(t);
        errno = ENOMEM;
        return NULL;
    }
    p->mem = cg__allocator_now();
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    p->max = max_workers;
    p->tids = t;
    p->refs = 1;
    return p;
}

static void pool_free(cg__pool *p) {
    pthread_cond_destroy(&p->work);
    pthread_mutex_destroy(&p->mu);
    cg__dealloc_with(p->mem, p->tids);
    cg__dealloc_with(p->mem, p);
}

/* Drops a reference, p->mu held (and released). */
static void pool_unref_unlock(cg__pool *p) {
    int last = --p->refs == 0;
    pthread_mutex_unlock(&p->mu);
    if (last) pool_free(p);
}


static void *worker(void *arg) {
    cg__pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->head && !p->shutdown) {
            p->nidle++;
            pthread_cond_wait(&p->work, &p->mu);
            p->nidle--;
        }
        cg__job *j = p->head;
        if (!j) break; /* shut down, and nothing left to run */
        p->head = j->qnext;
        if (p->head)
            p->head->qprev = NULL;
        else
            p->tail = NULL;
        p->nqueued--;
        j->state = J_RUNNING;
        p->nrunning++;
        pthread_mutex_unlock(&p->mu);
        j->work(j);
        pthread_mutex_lock(&p->mu);
        p->nrunning--; /* (before its outcome can be seen: cg__pool_release_idle) */
        pthread_mutex_unlock(&p->mu);
        cg__job_finished(j);
        pthread_mutex_lock(&p->mu);
    }
    pool_unref_unlock(p);
    return NULL;
}

/* Starts a worker with every asynchronous signal blocked (as libuv's
 * pool does), so that a signal the process waits for (signalfd, sigwait
 * on the loop's thread) is never taken by a worker instead; the faults a
 * worker itself may raise (SIGSEGV, ...) stay deliverable. */
static int start_worker(cg__pool *p) {
    sigset_t all, old;
    sigfillset(&all);
    static const int faults[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGTRAP, SIGSYS};
    for (size_t i = 0; i < sizeof faults / sizeof faults[0]; i++) sigdelset(&all, faults[i]);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int r = pthread_create(&p->tids[p->nthreads], NULL, worker, p);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return r;
}

/* Queues j; 0, or -1 with errno (ESHUTDOWN, EAGAIN: no worker at all). */
static int pool_submit(cg__pool *p, cg__job *j) {
    pthread_mutex_lock(&p->mu);
    if (p->shutdown) {
        pthread_mutex_unlock(&p->mu);
        errno = ESHUTDOWN;
        return -1;
    }
    j->pool = p;
    j->qnext = NULL;
    j->qprev = p->tail;
    if (p->tail)
        p->tail->qnext = j;
    else
        p->head = j;
    p->tail = j;
    p->nqueued++;
    j->state = J_QUEUED;
    if (p->nidle < p->nqueued && p->nthreads < p->max) {
        if (start_worker(p) == 0) {
            p->nthreads++;
            p->refs++;
        } else if (p->nthreads == 0) {
            p->head = p->tail = NULL;
            p->nqueued = 0;
            j->state = J_NEW;
            pthread_mutex_unlock(&p->mu);
            errno = EAGAIN;
            return -1;
        }
    }
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
    return 0;
}

/* Takes j out of its pool's queue: 1 if it was queued (it will never run). */
static int pool_cancel(cg__job *j) {
    cg__pool *p = j->pool;
    pthread_mutex_lock(&p->mu);
    int queued = j->state == J_QUEUED;
    if (queued) {
        if (j->qprev)
            j->qprev->qnext = j->qnext;
        else
            p->head = j->qnext;
        if (j->qnext)
            j->qnext->qprev = j->qprev;
        else
            p->tail = j->qprev;
        p->nqueued--;
        j->state = J_DONE;
    }
    pthread_mutex_unlock(&p->mu);
    return queued;
}

void cg__pool_shutdown(cg__pool *p, int wait) {
    pthread_mutex_lock(&p->mu);
    p->shutdown = 1;
    pthread_cond_broadcast(&p->work);
    unsigned n = p->nthreads, from = p->njoined;
    pthread_mutex_unlock(&p->mu);
    /* (no worker starts after the shutdown: tids[0..n) is all of them) */
    if (!wait) return;
    for (unsigned i = from; i < n; i++) pthread_join(p->tids[i], NULL);
    pthread_mutex_lock(&p->mu);
    p->njoined = n;
    pthread_mutex_unlock(&p->mu);
}

void cg__pool_release_idle(cg__pool *p) {
    pthread_mutex_lock(&p->mu);
    int busy = p->nrunning || p->head;
    pthread_mutex_unlock(&p->mu);
    if (!busy) cg__pool_shutdown(p, 1);
    cg__pool_release(p);
}

void cg__pool_release(cg__pool *p) {
    cg__pool_shutdown(p, 0);
    pthread_mutex_lock(&p->mu);
    for (unsigned i = p->njoined; i < p->nthreads; i++) pthread_detach(p->tids[i]);
    p->njoined = p->nthreads;
    pool_unref_unlock(p);
}

unsigned cg__pool_workers(cg__pool *p) {
    pthread_mutex_lock(&p->mu);
    unsigned n = p->nthreads;
    pthread_mutex_unlock(&p->mu);
    return n;
}

void cg__check_in_task(const char *fn) {
    cg_get_running_loop();
    if (!cg_current_task()) cg_raise(cg_exc_newf(&cg_RuntimeError, "%s() called outside a task", fn));
}

/* ---------------------------------------------------------------------
 * The link to a loop
 * ------------------------------------------------------------------ */

static pthread_mutex_t links_mu = PTHREAD_MUTEX_INITIALIZER;

struct cg__link {
    cg__loop_ext ext;             /* first */
    cg_loop *loop;                /* NULL once closed (under links_mu) */
    cg__job *jobs;                /* in flight (under links_mu) */
    cg__pool *default_ex; /* the loop's own */
    unsigned char shutdown_called; /* loop.shutdown_default_executor() */
    unsigned char joiner_started;
    pthread_t joiner;             /* shuts the default executor down, waiting */
    cg_future *joined;            /* set when it has */
};

void cg__job_release(cg__job *j) {
    if (__atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) == 0) j->fini(j);
}

void *cg__job_new(size_t size, void (*work)(cg__job *), void (*deliver)(cg__job *, cg_future *),
                  void (*fini)(cg__job *), int refs) {
    cg__job *j = cg__zalloc(size);
    if (!j) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    j->mem = cg__allocator_now();
    j->work = work;
    j->deliver = deliver;
    j->fini = fini;
    j->refs = refs;
    return j;
}

void cg__job_dealloc(cg__job *j) { cg__dealloc_with(j->mem, j); }

/* j leaves l's jobs in flight (on the loop's thread, the links' lock held). */
static void link_remove(cg__link *l, cg__job *j) {
    cg__loop_release(l->loop);
    if (j->lprev)
        j->lprev->lnext = j->lnext;
    else
        l->jobs = j->lnext;
    if (j->lnext) j->lnext->lprev = j->lprev;
    j->lnext = j->lprev = NULL;
}

static void cancel_cb(cg_future *f, void *arg);

/* On the loop's thread: a finished job's outcome goes to its future. */
static void on_loop(void *arg) {
    cg__job *j = arg;
    pthread_mutex_lock(&links_mu);
    link_remove(j->link, j);
    j->link = NULL;
    pthread_mutex_unlock(&links_mu);
    cg_future *f = j->fut;
    j->fut = NULL;
    if (!cg_future_done(f)) j->deliver(j, f);
    cg__future_forget_callback(f, cancel_cb, j); /* (scheduled by that completion, maybe) */
    cg_future_unref(f);
    cg__job_release(j);
}

/* On a worker, after work (or in whatever thread completes a concurrent
 * future a job follows): the job goes to its loop, or is dropped when its
 * loop has closed. */
void cg__job_finished(cg__job *j) {
    for (unsigned ms = 1;; ms = ms < 64 ? ms * 2 : ms) {
        pthread_mutex_lock(&links_mu);
        if (!j->link) break; /* orphaned */
        cg_loop *loop = j->link->loop;
        if (cg_loop_call_soon_threadsafe(loop, on_loop, j) == 0) {
            j->posted = 1;
            pthread_mutex_unlock(&links_mu);
            return;
        }
        pthread_mutex_unlock(&links_mu);
        if (cg_running_loop() == loop) {
            /* no memory for the call, on the loop's own thread (a task
             * completed the concurrent future): waiting would stop the
             * loop for good; the outcome is delivered at once instead */
            on_loop(j);
            return;
        }
        /* no memory for the call: try again in a while */
        struct timespec ts = {0, (long)ms * 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_unlock(&links_mu);
    cg__job_release(j);
}

/* The future was cancelled (or is done): a job still queued never runs;
 * one without a pool is told. */
static void cancel_cb(cg_future *f, void *arg) {
    cg__job *j = arg;
    if (!cg_future_cancelled(f)) return;
    if (!j->pool) {
        if (j->cancel) j->cancel(j); /* (it is finished, and dropped by on_loop, later) */
        return;
    }
    if (!pool_cancel(j)) return; /* it runs, or has run: on_loop drops it */
    pthread_mutex_lock(&links_mu);
    link_remove(j->link, j);
    j->link = NULL;
    pthread_mutex_unlock(&links_mu);
    j->fut = NULL;
    cg_future_unref(f); /* (the callback's runner holds its own) */
    cg__job_release(j);
}

/* Loop close: its jobs are orphaned (a posted one, whose call the loop
 * drops, is released here); the default executor is shut down without
 * waiting, as BaseEventLoop.close does. */
static void link_close(cg__loop_ext *x, cg_loop *loop) {
    (void)loop;
    cg__link *l = (cg__link *)x;
    if (l->joiner_started) pthread_join(l->joiner, NULL); /* (its shutdown was cancelled) */
    cg_future_unref(l->joined);
    pthread_mutex_lock(&links_mu);
    cg__job *j = l->jobs;
    l->jobs = NULL;
    l->loop = NULL;
    for (cg__job *k = j; k; k = k->lnext) {
        k->link = NULL; /* workers drop them from now on */
        /* a posted one: the call that would deliver it is dropped with the
         * loop's queue, so its reference is dropped here; the others are
         * held while this runs (their worker may drop them meanwhile) */
        if (!k->posted) __atomic_add_fetch(&k->refs, 1, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&links_mu);
    while (j) {
        cg__job *next = j->lnext;
        cg__future_forget_callback(j->fut, cancel_cb, j);
        cg_future_unref(j->fut);
        j->fut = NULL;
        cg__job_release(j);
        j = next;
    }
    if (l->default_ex) cg__pool_release(l->default_ex);
    cg__dealloc(l);
}

static void joined(void *arg) {
    cg__link *l = arg;
    if (!cg_future_done(l->joined)) cg_future_set_result(l->joined, NULL);
}

static void *joiner(void *arg) {
    cg__link *l = arg;
    cg__pool_shutdown(l->default_ex, 1);
    while (cg_loop_call_soon_threadsafe(l->loop, joined, l) < 0) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* loop.shutdown_default_executor(), in a task: the executor's shutdown(
 * wait=True) in a thread of its own, awaited. */
static void link_shutdown(cg__loop_ext *x) {
    cg__link *l = (cg__link *)x;
    l->shutdown_called = 1;
    if (!l->default_ex || l->joiner_started) return;
    cg_future *f = cg_future_new(l->loop);
    if (f && pthread_create(&l->joiner, NULL, joiner, l) == 0) {
        l->joined = f;
        l->joiner_started = 1;
        cg__loop_hold(l->loop);
        cg_exc *e = cg__await_catch(f);
        cg__loop_release(l->loop);
        if (e) cg_raise(e); /* cancelled: link_close joins it */
        pthread_join(l->joiner, NULL);
        l->joiner_started = 0;
    } else {
        cg_future_unref(f);
        cg__pool_shutdown(l->default_ex, 1);
    }
    cg__pool_release(l->default_ex);
    l->default_ex = NULL;
}

/* The loop's link, made the first time; NULL when out of memory. */
static cg__link *link_get(cg_loop *loop) {
    cg__link *l = (cg__link *)cg__loop_find(loop, link_close);
    if (l || !(l = cg__zalloc(sizeof *l))) return l;
    l->ext.close = link_close;
    l->ext.shutdown = link_shutdown;
    l->loop = loop;
    cg__loop_attach(loop, &l->ext);
    return l;
}

cg__pool *cg__default_executor(cg_loop *loop) {
    if (loop->closed) CG_RAISE(&cg_RuntimeError, "Event loop is closed");
    cg__link *l = link_get(loop);
    if (!l) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    if (l->shutdown_called) CG_RAISE(&cg_RuntimeError, "Executor shutdown has been called");
    if (!l->default_ex) {
        l->default_ex = cg__pool_new(0);
        if (!l->default_ex) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    return l->default_ex;
}

cg_future *cg__job_attach(cg_loop *loop, cg__job *j, cg_exc **err) {
    cg__link *l = NULL;
    cg_future *f = NULL;
    *err = NULL;
    if (!loop && !(loop = cg_running_loop()))
        *err = cg_exc_new(&cg_RuntimeError, "no running event loop");
    else if (loop->closed)
        *err = cg_exc_new(&cg_RuntimeError, "Event loop is closed");
    else if (!(l = link_get(loop)) || !(f = cg_future_new(loop)))
        *err = cg_exc_new(&cg_MemoryError, NULL);
    if (*err) {
        cg__job_release(j);
        return NULL;
    }
    j->fut = cg_future_ref(f);
    j->link = l;
    cg__loop_hold(loop); /* (a virtual clock waits for it: no deadlock) */
    pthread_mutex_lock(&links_mu);
    j->lprev = NULL;
    j->lnext = l->jobs;
    if (l->jobs) l->jobs->lprev = j;
    l->jobs = j;
    pthread_mutex_unlock(&links_mu);
    /* (the first callback of a pending future needs no memory) */
    cg_future_add_done_callback(f, cancel_cb, j);
    return f;
}

/* Undoes cg__job_attach (f: its future) and releases the link's reference. */
static void job_detach(cg__job *j, cg_future *f) {
    pthread_mutex_lock(&links_mu);
    link_remove(j->link, j);
    j->link = NULL;
    pthread_mutex_unlock(&links_mu);
    cg__future_forget_callback(f, cancel_cb, j);
    cg_future_unref(j->fut);
    cg_future_unref(f);
    j->fut = NULL;
    cg__job_release(j);
}

cg_future *cg__job_start(cg_loop *loop, cg__pool *p, cg__job *j, cg_exc **err) {
    cg_future *f = cg__job_attach(loop, j, err);
    if (!f || pool_submit(p, j) == 0) return f;
    int shut = errno == ESHUTDOWN;
    job_detach(j, f);
    *err = cg_exc_new(&cg_RuntimeError, shut ? "cannot schedule new futures after shutdown" : "can't start new thread");
    return NULL;
}
