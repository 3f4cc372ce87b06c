/* sync.c: asyncio's synchronization primitives, as CPython 3.13's
 * asyncio/locks.py writes them: Lock, Event, Condition, Semaphore,
 * BoundedSemaphore and Barrier, with the loop binding of mixins.py.
 *
 * Each waiting call follows its Python method line by line, because the
 * order of the steps is the semantics: which waiter a release wakes, what a
 * cancelled waiter does with a lock or slot it had already been handed, how
 * many loop iterations a hand-off takes. The `await fut` inside their
 * try/finally blocks is cg__sync_wait, which hands back the exception so
 * that the clean-up runs before it is raised again; fut is a waiter
 * entry of sync.h (the task itself, in its own body).
 */
#include "loop/sync.h"
#include "core/mem.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const cg_exc_type cg_BrokenBarrierError = {"BrokenBarrierError", &cg_RuntimeError};

#define NEED(obj, fn, type) \
    do { \
        if (!(obj)) CG_RAISE(&cg_TypeError, fn "() argument must be " type ", not NULL"); \
    } while (0)

/* ---------------------------------------------------------------------
 * Shared: waiters, loop binding, await
 * ------------------------------------------------------------------ */

int cg__wq_append(cg__waiters *w, cg_future *f) {
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 4;
        cg_future **v = cg__alloc(cap * sizeof *v);
        if (!v) return -1;
        if (w->n) memcpy(v, w->v, w->n * sizeof *v);
        cg__dealloc(w->v);
        w->v = v;
        w->cap = cap;
    }
    cg__fut_ref(cg__wq_future(f));
    w->v[w->n++] = f;
    return 0;
}

int cg__wq_remove(cg__waiters *w, cg_future *f) {
    for (size_t i = 0; i < w->n; i++) {
        if (cg__wq_future(w->v[i]) != cg__wq_future(f)) continue;
        memmove(&w->v[i], &w->v[i + 1], (w->n - i - 1) * sizeof *w->v);
        w->n--;
        cg_future_unref(cg__wq_future(f));
        return 1;
    }
    return 0;
}

cg_future *cg__wq_popleft(cg__waiters *w) {
    if (!w->n) return NULL;
    cg_future *f = w->v[0];
    /* The common deque holds one: nothing to move (a memmove call was a
     * tenth of a queue hand-off). */
    if (--w->n) memmove(&w->v[0], &w->v[1], w->n * sizeof *w->v);
    return f;
}

void cg__wq_clear(cg__waiters *w) {
    for (size_t i = 0; i < w->n; i++) cg_future_unref(cg__wq_future(w->v[i]));
    cg__dealloc(w->v);
    w->v = NULL;
    w->n = w->cap = 0;
}

void cg__sync_cancel_wait(cg_task *t) { t->fut.task_wait = CG__WAIT_SYNC; }

cg_loop *cg__sync_get_loop(cg__sync *s, cg__sync_repr_fn repr, const void *obj) {
    cg_loop *loop = cg__running_loop;
    if (!loop) CG_RAISE(&cg_RuntimeError, "no running event loop");
    if (!s->loop) cg__sync_bind(s, loop);
    if (loop != s->loop || loop->serial != s->serial) {
        char buf[512];
        repr(obj, buf, sizeof buf);
        CG_RAISEF(&cg_RuntimeError, "%s is bound to a different event loop", buf);
    }
    return loop;
}

cg_future *cg__sync_future_new(cg_loop *loop) {
    cg_future *f = cg_future_new(loop);
    if (!f) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    return f;
}

void cg__sync_waiter_lost(cg_future *entry) {
    cg__sync_waiter_end(entry);
    cg_raise(cg_exc_new(&cg_MemoryError, NULL));
}

cg_exc *cg__sync_wait(cg__waiters *w, cg_future *entry, int kind, const void *obj) {
    cg__await_note(kind, obj);
    cg_task *t = cg__wq_task(entry);
    cg_exc *e;
    if (t) { /* the task's own body: a wake-up or a cancellation steps it */
        t->fut.task_wait = (uintptr_t)w | CG__WAIT_SYNC;
        t->await_site = cg__site;
        e = cg_yield_catch(t->gen, &cg__io_token, NULL);
    } else {
        e = cg__await_catch(entry);
    }
    cg__await_done(obj);
    return e;
}

/* " [extra, waiters:N]>" after "<asyncio.locks.Type object at 0x...". */
static void repr_tail(char *buf, size_t size, const char *type, const void *obj, const char *extra, size_t nwaiters) {
    if (nwaiters)
        snprintf(buf, size, "<asyncio.locks.%s object at %p [%s, waiters:%zu]>", type, obj, extra, nwaiters);
    else
        snprintf(buf, size, "<asyncio.locks.%s object at %p [%s]>", type, obj, extra);
}

/* ---------------------------------------------------------------------
 * Lock
 * ------------------------------------------------------------------ */

struct cg_lock {
    cg__sync h;
    unsigned char locked;
    cg__waiters waiters;
};

cg_lock *cg_lock_new(cg_loop *loop) {
    cg_lock *l = cg__alloc(sizeof *l);
    if (!l) {
        errno = ENOMEM;
        return NULL;
    }
    memset(l, 0, sizeof *l);
    l->h.refs = 1;
    cg__sync_bind(&l->h, loop);
    return l;
}

static void lock_unref(cg_lock *l) {
    if (--l->h.refs > 0) return;
    cg__wq_clear(&l->waiters);
    cg__dealloc(l);
}

void cg_lock_free(cg_lock *l) {
    if (l) lock_unref(l);
}

static void lock_repr(const void *obj, char *buf, size_t size) {
    const cg_lock *l = obj;
    repr_tail(buf, size, "Lock", obj, l->locked ? "locked" : "unlocked", l->waiters.n);
}

int cg_lock_locked(const cg_lock *l) { return l && l->locked; }

/* Lock._wake_up_first: only the first waiter, if it is not done yet. */
static void lock_wake_up_first(cg_lock *l) {
    if (!l->waiters.n) return;
    cg_future *f = l->waiters.v[0];
    if (!cg__wq_done(f)) cg__wq_wake(f);
}

int cg_lock_acquire(cg_lock *l) {
    NEED(l, "cg_lock_acquire", "a Lock");
    int all_cancelled = 1;
    for (size_t i = 0; i < l->waiters.n && all_cancelled; i++)
        all_cancelled = cg__wq_cancelled(l->waiters.v[i]);
    if (!l->locked && all_cancelled) {
        l->locked = 1;
        return 1;
    }
    cg_loop *loop = cg__sync_get_loop(&l->h, lock_repr, l);
    cg_future *f = cg__sync_new_waiter(loop, &l->waiters);
    l->h.refs++;
    cg_exc *e = cg__sync_wait(&l->waiters, f, CG__AW_LOCK, l);
    cg__wq_remove(&l->waiters, f);
    cg__sync_waiter_end(f);
    if (e) {
        /* Handed the lock (or not) and cancelled: whoever is first now
         * must not be left waiting for a release that already happened. */
        if (cg_exc_is(e, &cg_CancelledError) && !l->locked) lock_wake_up_first(l);
        lock_unref(l);
        cg_raise(e);
    }
    l->locked = 1;
    lock_unref(l);
    return 1;
}

void cg_lock_release(cg_lock *l) {
    NEED(l, "cg_lock_release", "a Lock");
    if (!l->locked) CG_RAISE(&cg_RuntimeError, "Lock is not acquired.");
    l->locked = 0;
    lock_wake_up_first(l);
}

static void lock_release_cb(void *l) { cg_lock_release(l); }
static void lock_unref_cb(void *l) { lock_unref(l); }

void cg_lock_with(cg_lock *l, void (*body)(void *arg), void *arg) {
    NEED(l, "cg_lock_with", "a Lock");
    l->h.refs++; /* `async with` holds it until after the release */
    CG_DEFER(lock_unref_cb, l);
    cg_lock_acquire(l);
    CG_DEFER(lock_release_cb, l);
    if (!body) CG_RAISE(&cg_TypeError, "'NoneType' object is not callable");
    body(arg);
}

/* ---------------------------------------------------------------------
 * Event
 * ------------------------------------------------------------------ */

struct cg_event {
    cg__sync h;
    unsigned char value;
    cg__waiters waiters;
};

cg_event *cg_event_new(cg_loop *loop) {
    cg_event *e = cg__alloc(sizeof *e);
    if (!e) {
        errno = ENOMEM;
        return NULL;
    }
    memset(e, 0, sizeof *e);
    e->h.refs = 1;
    cg__sync_bind(&e->h, loop);
    return e;
}

void cg__event_unref(cg_event *e) {
    if (--e->h.refs > 0) return;
    cg__wq_clear(&e->waiters);
    cg__dealloc(e);
}

void cg_event_free(cg_event *e) {
    if (e) cg__event_unref(e);
}

static void event_repr(const void *obj, char *buf, size_t size) {
    const cg_event *e = obj;
    repr_tail(buf, size, "Event", obj, e->value ? "set" : "unset", e->waiters.n);
}

int cg_event_is_set(const cg_event *e) { return e && e->value; }

void cg_event_set(cg_event *e) {
    NEED(e, "cg_event_set", "an Event");
    if (e->value) return;
    e->value = 1;
    for (size_t i = 0; i < e->waiters.n; i++)
        if (!cg__wq_done(e->waiters.v[i])) cg__wq_wake(e->waiters.v[i]);
}

void cg_event_clear(cg_event *e) {
    NEED(e, "cg_event_clear", "an Event");
    e->value = 0;
}

int cg_event_wait(cg_event *e) {
    NEED(e, "cg_event_wait", "an Event");
    if (e->value) return 1;
    cg_loop *loop = cg__sync_get_loop(&e->h, event_repr, e);
    cg_future *f = cg__sync_new_waiter(loop, &e->waiters);
    e->h.refs++;
    cg_exc *x = cg__sync_wait(&e->waiters, f, CG__AW_EVENT, e);
    cg__wq_remove(&e->waiters, f);
    cg__sync_waiter_end(f);
    cg__event_unref(e);
    if (x) cg_raise(x);
    return 1;
}

/* ---------------------------------------------------------------------
 * Condition
 * ------------------------------------------------------------------ */

struct cg_condition {
    cg__sync h;
    cg_lock *lock; /* holds a reference */
    cg__waiters waiters;
};

cg_condition *cg_condition_new(cg_loop *loop, cg_lock *lock) {
    cg_condition *c = cg__alloc(sizeof *c);
    if (!c) {
        errno = ENOMEM;
        return NULL;
    }
    memset(c, 0, sizeof *c);
    if (lock) {
        lock->h.refs++;
    } else if (!(lock = cg_lock_new(loop))) {
        cg__dealloc(c);
        errno = ENOMEM;
        return NULL;
    }
    c->h.refs = 1;
    cg__sync_bind(&c->h, loop);
    c->lock = lock;
    return c;
}

static void cond_unref(cg_condition *c) {
    if (--c->h.refs > 0) return;
    cg__wq_clear(&c->waiters);
    lock_unref(c->lock);
    cg__dealloc(c);
}

void cg_condition_free(cg_condition *c) {
    if (c) cond_unref(c);
}

cg_lock *cg_condition_lock(const cg_condition *c) { return c ? c->lock : NULL; }

static void cond_repr(const void *obj, char *buf, size_t size) {
    const cg_condition *c = obj;
    repr_tail(buf, size, "Condition", obj, c->lock->locked ? "locked" : "unlocked", c->waiters.n);
}

/* Condition._notify(n): the first n waiters that are not done. */
static void cond_notify(cg_condition *c, long n) {
    long idx = 0;
    for (size_t i = 0; i < c->waiters.n; i++) {
        if (idx >= n) break;
        cg_future *f = c->waiters.v[i];
        if (!cg__wq_done(f)) {
            idx++;
            cg__wq_wake(f);
        }
    }
}

static void lock_acquire_fn(void *l) { cg_lock_acquire(l); }

int cg_condition_wait(cg_condition *c) {
    NEED(c, "cg_condition_wait", "a Condition");
    if (!c->lock->locked) CG_RAISE(&cg_RuntimeError, "cannot wait on un-acquired lock");
    cg_loop *loop = cg__sync_get_loop(&c->h, cond_repr, c);
    cg_future *f = cg__sync_waiter_new(loop);
    c->h.refs++;
    cg_lock_release(c->lock);
    /* try: waiters.append(fut); try: await fut finally: remove */
    cg_exc *x;
    if (cg__wq_append(&c->waiters, f) < 0) {
        x = cg_exc_new(&cg_MemoryError, NULL);
    } else {
        x = cg__sync_wait(&c->waiters, f, CG__AW_CONDITION, c);
        cg__wq_remove(&c->waiters, f);
    }
    cg__sync_waiter_end(f);
    /* finally: re-acquire, whatever it takes; a CancelledError during it
     * is remembered (the latest) and raised once the lock is held. Another
     * exception of acquire replaces everything. */
    cg_exc *err = NULL, *other = NULL;
    for (;;) {
        cg_exc *e = cg_try_catch(lock_acquire_fn, c->lock, &cg_BaseException);
        if (!e) break;
        if (cg_exc_is(e, &cg_CancelledError)) {
            cg_exc_unref(err);
            err = e;
            continue;
        }
        other = e;
        break;
    }
    cg_exc *final = x;
    if (other) {
        cg_exc_unref(err);
        cg_exc_unref(x);
        final = other;
    } else if (err) {
        cg_exc_unref(x);
        final = err;
    }
    if (final) {
        /* except BaseException: self._notify(1); raise */
        cond_notify(c, 1);
        cond_unref(c);
        cg_raise(final);
    }
    cond_unref(c);
    return 1;
}

int cg_condition_wait_for(cg_condition *c, int (*pred)(void *ud), void *ud) {
    NEED(c, "cg_condition_wait_for", "a Condition");
    if (!pred) CG_RAISE(&cg_TypeError, "'NoneType' object is not callable");
    int r = pred(ud);
    while (!r) {
        cg_condition_wait(c);
        r = pred(ud);
    }
    return r;
}

void cg_condition_notify(cg_condition *c, long n) {
    NEED(c, "cg_condition_notify", "a Condition");
    if (!c->lock->locked) CG_RAISE(&cg_RuntimeError, "cannot notify on un-acquired lock");
    cond_notify(c, n);
}

void cg_condition_notify_all(cg_condition *c) {
    NEED(c, "cg_condition_notify_all", "a Condition");
    cg_condition_notify(c, (long)c->waiters.n);
}

/* ---------------------------------------------------------------------
 * Semaphore, BoundedSemaphore
 * ------------------------------------------------------------------ */

struct cg_semaphore {
    cg__sync h;
    long value;
    long bound;
    unsigned char bounded;
    cg__waiters waiters;
};

static cg_semaphore *sem_new(cg_loop *loop, long value, int bounded) {
    if (value < 0) CG_RAISE(&cg_ValueError, "Semaphore initial value must be >= 0");
    cg_semaphore *s = cg__alloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    memset(s, 0, sizeof *s);
    s->h.refs = 1;
    cg__sync_bind(&s->h, loop);
    s->value = value;
    s->bound = value;
    s->bounded = (unsigned char)bounded;
    return s;
}

cg_semaphore *cg_semaphore_new(cg_loop *loop, long value) { return sem_new(loop, value, 0); }
cg_semaphore *cg_bounded_semaphore_new(cg_loop *loop, long value) { return sem_new(loop, value, 1); }

static void sem_unref(cg_semaphore *s) {
    if (--s->h.refs > 0) return;
    cg__wq_clear(&s->waiters);
    cg__dealloc(s);
}

void cg_semaphore_free(cg_semaphore *s) {
    if (s) sem_unref(s);
}

int cg_semaphore_locked(const cg_semaphore *s) {
    if (!s) return 0;
    if (s->value == 0) return 1;
    for (size_t i = 0; i < s->waiters.n; i++)
        if (!cg__wq_cancelled(s->waiters.v[i])) return 1;
    return 0;
}

long cg_semaphore_value(const cg_semaphore *s) { return s ? s->value : 0; }

static void sem_repr(const void *obj, char *buf, size_t size) {
    const cg_semaphore *s = obj;
    char extra[64];
    if (cg_semaphore_locked(s))
        snprintf(extra, sizeof extra, "locked");
    else
        snprintf(extra, sizeof extra, "unlocked, value:%ld", s->value);
    repr_tail(buf, size, s->bounded ? "BoundedSemaphore" : "Semaphore", obj, extra, s->waiters.n);
}

/* Semaphore._wake_up_next: the first waiter not done gets a slot. */
static int sem_wake_up_next(cg_semaphore *s) {
    for (size_t i = 0; i < s->waiters.n; i++) {
        cg_future *f = s->waiters.v[i];
        if (!cg__wq_done(f)) {
            s->value--;
            cg__wq_wake(f);
            return 1;
        }
    }
    return 0;
}

int cg_semaphore_acquire(cg_semaphore *s) {
    NEED(s, "cg_semaphore_acquire", "a Semaphore");
    if (!cg_semaphore_locked(s)) {
        s->value--;
        return 1;
    }
    cg_loop *loop = cg__sync_get_loop(&s->h, sem_repr, s);
    cg_future *f = cg__sync_new_waiter(loop, &s->waiters);
    s->h.refs++;
    cg_exc *e = cg__sync_wait(&s->waiters, f, CG__AW_SEMAPHORE, s);
    cg__wq_remove(&s->waiters, f);
    /* Cancelled after being handed a slot: give it back. */
    if (e && cg_exc_is(e, &cg_CancelledError) && cg__wq_done(f) && !cg__wq_cancelled(f)) s->value++;
    cg__sync_waiter_end(f);
    /* finally: slots that are free go to the waiters. */
    while (s->value > 0)
        if (!sem_wake_up_next(s)) break;
    sem_unref(s);
    if (e) cg_raise(e);
    return 1;
}

void cg_semaphore_release(cg_semaphore *s) {
    NEED(s, "cg_semaphore_release", "a Semaphore");
    if (s->bounded && s->value >= s->bound) CG_RAISE(&cg_ValueError, "BoundedSemaphore released too many times");
    s->value++;
    sem_wake_up_next(s);
}

static void sem_release_cb(void *s) { cg_semaphore_release(s); }
static void sem_unref_cb(void *s) { sem_unref(s); }

void cg_semaphore_with(cg_semaphore *s, void (*body)(void *arg), void *arg) {
    NEED(s, "cg_semaphore_with", "a Semaphore");
    s->h.refs++;
    CG_DEFER(sem_unref_cb, s);
    cg_semaphore_acquire(s);
    CG_DEFER(sem_release_cb, s);
    if (!body) CG_RAISE(&cg_TypeError, "'NoneType' object is not callable");
    body(arg);
}

/* ---------------------------------------------------------------------
 * Barrier
 * ------------------------------------------------------------------ */

enum { B_FILLING, B_DRAINING, B_RESETTING, B_BROKEN };

struct cg_barrier {
    cg__sync h;
    cg_condition *cond; /* notifies every task when the state changes */
    long parties;
    int state;
    long count; /* tasks in the barrier */
};

cg_barrier *cg_barrier_new(cg_loop *loop, long parties) {
    if (parties < 1) CG_RAISE(&cg_ValueError, "parties must be > 0");
    cg_barrier *b = cg__alloc(sizeof *b);
    if (!b) {
        errno = ENOMEM;
        return NULL;
    }
    memset(b, 0, sizeof *b);
    if (!(b->cond = cg_condition_new(loop, NULL))) {
        cg__dealloc(b);
        errno = ENOMEM;
        return NULL;
    }
    b->h.refs = 1;
    cg__sync_bind(&b->h, loop);
    b->parties = parties;
    b->state = B_FILLING;
    return b;
}

static void barrier_unref(cg_barrier *b) {
    if (--b->h.refs > 0) return;
    cond_unref(b->cond);
    cg__dealloc(b);
}

void cg_barrier_free(cg_barrier *b) {
    if (b) barrier_unref(b);
}

long cg_barrier_parties(const cg_barrier *b) { return b ? b->parties : 0; }
long cg_barrier_n_waiting(const cg_barrier *b) { return b && b->state == B_FILLING ? b->count : 0; }
int cg_barrier_broken(const cg_barrier *b) { return b && b->state == B_BROKEN; }

static int not_draining_or_resetting(void *p) {
    cg_barrier *b = p;
    return b->state != B_DRAINING && b->state != B_RESETTING;
}

static int not_filling(void *p) { return ((cg_barrier *)p)->state != B_FILLING; }

typedef struct barrier_call {
    cg_barrier *b;
    long index;
} barrier_call;

/* The try block of Barrier.wait. */
static void barrier_enter(void *p) {
    barrier_call *w = p;
    cg_barrier *b = w->b;
    w->index = b->count++;
    if (w->index + 1 == b->parties) {
        /* _release */
        b->state = B_DRAINING;
        cg_condition_notify_all(b->cond);
    } else {
        /* _wait */
        cg_condition_wait_for(b->cond, not_filling, b);
        if (b->state == B_BROKEN || b->state == B_RESETTING)
            CG_RAISE(&cg_BrokenBarrierError, "Abort or reset of barrier");
    }
}

/* Barrier._exit */
static void barrier_exit(cg_barrier *b) {
    if (b->count == 0) {
        if (b->state == B_RESETTING || b->state == B_DRAINING) b->state = B_FILLING;
        cg_condition_notify_all(b->cond);
    }
}

/* The body of `async with self._cond:` in Barrier.wait. */
static void barrier_wait_body(void *p) {
    barrier_call *w = p;
    cg_barrier *b = w->b;
    /* _block */
    cg_condition_wait_for(b->cond, not_draining_or_resetting, b);
    if (b->state == B_BROKEN) CG_RAISE(&cg_BrokenBarrierError, "Barrier aborted");
    cg_exc *e = cg_try_catch(barrier_enter, w, &cg_BaseException);
    /* finally */
    b->count--;
    barrier_exit(b);
    if (e) cg_raise(e);
}

static void barrier_unref_cb(void *b) { barrier_unref(b); }

long cg_barrier_wait(cg_barrier *b) {
    NEED(b, "cg_barrier_wait", "a Barrier");
    barrier_call w = {b, 0};
    b->h.refs++;
    CG_DEFER(barrier_unref_cb, b);
    cg_lock_with(b->cond->lock, barrier_wait_body, &w);
    return w.index;
}

static void barrier_reset_body(void *p) {
    cg_barrier *b = p;
    if (b->count > 0) {
        if (b->state != B_RESETTING) b->state = B_RESETTING;
    } else {
        b->state = B_FILLING;
    }
    cg_condition_notify_all(b->cond);
}

static void barrier_abort_body(void *p) {
    cg_barrier *b = p;
    b->state = B_BROKEN;
    cg_condition_notify_all(b->cond);
}

void cg_barrier_reset(cg_barrier *b) {
    NEED(b, "cg_barrier_reset", "a Barrier");
    b->h.refs++;
    CG_DEFER(barrier_unref_cb, b);
    cg_lock_with(b->cond->lock, barrier_reset_body, b);
}

void cg_barrier_abort(cg_barrier *b) {
    NEED(b, "cg_barrier_abort", "a Barrier");
    b->h.refs++;
    CG_DEFER(barrier_unref_cb, b);
    cg_lock_with(b->cond->lock, barrier_abort_body, b);
}
