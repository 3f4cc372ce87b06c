/* structured.c: asyncio's structured helpers on the loop: exception group
 * split, gather, shield, wait, wait_for, as_completed, the timeout scope
 * (asyncio.Timeout) and TaskGroup, each following CPython 3.13.0's
 * asyncio/tasks.py, timeouts.py and taskgroups.py step by step, so that
 * callbacks are scheduled in the same order and errors carry the same
 * messages. Where asyncio iterates over a set (whose order is the
 * objects' hashes), this file uses the order the caller gave (or creation
 * order), as the reference runner of the async scenarios does.
 */
#include "core/mem.h"
#include "loop/loop.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Raises an exception that exists already (the body's, a task's, one
 * thrown in by the loop) without making this file its raise site. */
#define RERAISE(e) cg_raise_at((e), NULL, 0, NULL)

static CG_NORETURN void no_memory(void) { cg_raise(cg_exc_new(&cg_MemoryError, NULL)); }

static void *xalloc(size_t n) {
    void *p = cg__alloc(n ? n : 1);
    if (!p) no_memory();
    return p;
}

static cg_future *new_future(cg_loop *loop) {
    cg_future *f = cg_future_new(loop);
    if (!f) no_memory();
    return f;
}

/* Runs fn(arg, e) with e being handled, as a `with` statement runs
 * __aexit__ inside its handler of the body's exception: what fn raises is
 * chained to e. e's own links stay as they were. When fn returns, e is
 * raised again, unchanged (no __exit__ here ever suppresses). e is owned. */
static CG_NORETURN void exit_handling(cg_exc *e, void (*fn)(void *, cg_exc *), void *arg) {
    cg_exc *ctx = cg_exc_ref(cg_exc_context(e));
    CG_DEFER((void (*)(void *))cg_exc_unref, ctx);
    CG_TRY {
        RERAISE(e);
    } CG_EXCEPT(&cg_BaseException, h) {
        if (cg_exc_context(h) != ctx) cg_exc_set_context(h, ctx);
        fn(arg, h);
        cg_reraise();
    } CG_END;
    abort(); /* not reached: the handler always raises */
}

/* ======================================================================
 * Exception groups: split
 * ====================================================================== */

/* BaseExceptionGroup.derive(excs) with the links split() copies. */
static cg_exc *derive(cg_exc *eg, cg_exc *const *excs, size_t n) {
    cg_exc *d = cg_exc_group_new(&cg_BaseExceptionGroup, cg_exc_msg(eg) ? cg_exc_msg(eg) : "", excs, n);
    if (cg_exc_cause(eg)) cg_exc_set_cause(d, cg_exc_cause(eg));
    if (cg_exc_context(eg)) cg_exc_set_context(d, cg_exc_context(eg));
    return d;
}

typedef struct split_parts {
    cg_exc **m, **r;
    size_t nm, nr, n;
} split_parts;

static void split_parts_free(void *p) {
    split_parts *s = p;
    for (size_t i = 0; i < s->nm; i++) cg_exc_unref(s->m[i]);
    for (size_t i = 0; i < s->nr; i++) cg_exc_unref(s->r[i]);
    cg__dealloc(s->m);
    cg__dealloc(s->r);
}

static void split_rec(cg_exc *e, const cg_exc_type *type, cg_exc **match, cg_exc **rest) {
    *match = *rest = NULL;
    if (cg_exc_is(e, type)) {
        *match = cg_exc_ref(e);
        return;
    }
    if (!cg_exc_is(e, &cg_BaseExceptionGroup)) {
        *rest = cg_exc_ref(e);
        return;
    }
    size_t n = cg_exc_group_count(e);
    split_parts s = {NULL, NULL, 0, 0, n};
    CG_DEFER(split_parts_free, &s);
    s.m = xalloc(n * sizeof *s.m);
    s.r = xalloc(n * sizeof *s.r);
    for (size_t i = 0; i < n; i++) {
        cg_exc *cm, *cr;
        split_rec(cg_exc_group_at(e, i), type, &cm, &cr);
        if (cm) s.m[s.nm++] = cm;
        if (cr) s.r[s.nr++] = cr;
    }
    cg_exc *m = s.nm ? derive(e, s.m, s.nm) : NULL;
    CG_TRY {
        *rest = s.nr ? derive(e, s.r, s.nr) : NULL;
    } CG_EXCEPT(&cg_BaseException, err) {
        cg_exc_unref(m);
        cg_reraise();
    } CG_END;
    *match = m;
}

void cg_exc_group_split(cg_exc *eg, const cg_exc_type *type, cg_exc **match, cg_exc **rest) {
    cg_exc *m = NULL, *r = NULL;
    if (!type) CG_RAISE(&cg_TypeError, "expected an exception type, a tuple of exception types, or a callable (other than a class)");
    if (eg) split_rec(eg, type, &m, &r);
    if (match)
        *match = m;
    else
        cg_exc_unref(m);
    if (rest)
        *rest = r;
    else
        cg_exc_unref(r);
}

cg_exc *cg_exc_group_subgroup(cg_exc *eg, const cg_exc_type *type) {
    cg_exc *m;
    cg_exc_group_split(eg, type, &m, NULL);
    return m;
}

cg_exc *cg_exc_group_single(const cg_exc *eg) {
    return cg_exc_group_count(eg) == 1 ? cg_exc_group_at(eg, 0) : NULL;
}

/* ======================================================================
 * Futures and bodies
 * ====================================================================== */

/* ensure_future(arg, loop=loop) for a future: its loop must be loop. */
static cg_loop *check_future(cg_future *f, cg_loop *loop) {
    if (!f) CG_RAISE(&cg_TypeError, "An asyncio.Future, a coroutine or an awaitable is required");
    if (loop && f->loop != loop)
        CG_RAISE(&cg_ValueError, "The future belongs to a different loop than the one specified as the loop argument");
    return f->loop;
}

/* ensure_future(body(arg)): a task in the running loop, 'Task-N'. */
static cg_future *body_task(const cg_body *b) {
    if (!b || !b->fn) CG_RAISE(&cg_TypeError, "An asyncio.Future, a coroutine or an awaitable is required");
    return cg_task_future(cg_create_task(b->fn, b->arg, NULL));
}

/* Future.exception() for a done future that is not cancelled (marks it
 * retrieved), borrowed. */
static cg_exc *exception_of(cg_future *f) {
    f->log_tb = 0;
    return f->exc;
}

static void retrieve_done(cg_future *f, void *arg) {
    (void)arg;
    if (f->state != F_CANCELLED) exception_of(f);
}

/* An outer future (gather's, shield's) is freed while its callback fn on
 * child is still to run. asyncio's callback keeps the outer alive in its
 * closure and, whatever it then does to the outer, calls
 * child.exception(): so child's exception is retrieved, now if child is
 * done (its callback was scheduled), else when it is. */
static void detach_child(cg_future *child, cg_done_callback fn, void *arg) {
    if (!cg__future_forget_callback(child, fn, arg)) return;
    if (child->state != F_PENDING)
        retrieve_done(child, NULL);
    else
        (void)cg_future_add_done_callback(child, retrieve_done, NULL); /* out of memory: reported unretrieved */
}

/* ======================================================================
 * gather
 * ====================================================================== */

typedef struct gathering {
    cg_future fut; /* first: the outer future (_GatheringFuture) */
    const cg__future_ops *ops; /* second, as in cg__future_ext */
    cg_future **children; /* in argument order, duplicates included (owned) */
    size_t n, nfuts, nfinished;
    unsigned char return_exceptions, cancel_requested;
    void **values;
    cg_exc **excs; /* owned */
    cg_gathered res;
} gathering;
_Static_assert(offsetof(gathering, ops) == offsetof(cg__future_ext, ops), "gathering's ops where cg__future_ops_of reads it");

static int gathering_cancel(cg_future *f, char *msg) {
    gathering *g = (gathering *)f;
    if (f->state != F_PENDING) return 0;
    int ret = 0;
    for (size_t i = 0; i < g->n; i++)
        if (cg__future_cancel(g->children[i], msg)) ret = 1;
    if (ret) g->cancel_requested = 1;
    return ret;
}

static void gather_done(cg_future *fut, void *arg);

/* The callbacks on the children hold no reference to the gathering
 * future (a reference would make a cycle with its references to them,
 * never freed when a child is dropped pending at loop close): once it is
 * freed, they go. */
static void gathering_fini(cg_future *f) {
    gathering *g = (gathering *)f;
    for (size_t i = 0; i < g->n; i++) {
        detach_child(g->children[i], gather_done, g);
        cg_future_unref(g->children[i]);
        if (g->excs) cg_exc_unref(g->excs[i]);
    }
    cg__dealloc(g->children);
    cg__dealloc(g->values);
    cg__dealloc(g->excs);
}

static const cg__future_ops gathering_ops = {gathering_cancel, gathering_fini};

static void gather_done(cg_future *fut, void *arg) {
    gathering *g = arg;
    cg_future *outer = &g->fut;
    g->nfinished++;
    if (outer->state != F_PENDING) {
        if (fut->state != F_CANCELLED) exception_of(fut);
    } else if (!g->return_exceptions && fut->state == F_CANCELLED) {
        cg__future_set_exception_plain(outer, cg__future_cancelled_error(fut));
    } else if (!g->return_exceptions && exception_of(fut)) {
        cg__future_set_exception_plain(outer, cg_exc_ref(fut->exc));
    } else if (g->nfinished == g->nfuts) {
        g->values = cg__alloc(g->n * sizeof *g->values + 1);
        g->excs = cg__alloc(g->n * sizeof *g->excs + 1);
        if (!g->values || !g->excs) {
            cg__dealloc(g->values);
            cg__dealloc(g->excs);
            g->values = NULL;
            g->excs = NULL;
            cg__future_set_exception_plain(outer, cg_exc_new(&cg_MemoryError, NULL));
        } else {
            cg_future *last = NULL;
            for (size_t i = 0; i < g->n; i++) {
                cg_future *c = last = g->children[i];
                g->values[i] = NULL;
                g->excs[i] = NULL;
                if (c->state == F_CANCELLED)
                    g->excs[i] = cg_exc_new(&cg_CancelledError, c->cancel_msg ? c->cancel_msg : "");
                else if (exception_of(c))
                    g->excs[i] = cg_exc_ref(c->exc);
                else
                    g->values[i] = c->result;
            }
            g->res = (cg_gathered){g->n, g->values, g->excs};
            if (g->cancel_requested)
                cg__future_set_exception_plain(outer, cg__future_make_cancelled_error(last));
            else
                cg__future_set_result_plain(outer, &g->res);
        }
    }
}

static gathering *gathering_new(cg_loop *loop, size_t n, int return_exceptions) {
    gathering *g = xalloc(sizeof *g);
    memset(g, 0, sizeof *g);
    g->fut.refs = 1;
    g->fut.loop = loop;
    g->ops = &gathering_ops;
    g->fut.has_ops = 1;
    g->return_exceptions = return_exceptions != 0;
    g->children = cg__alloc(n * sizeof *g->children + 1);
    if (!g->children) {
        cg__dealloc(g);
        no_memory();
    }
    return g;
}

/* Out of memory half-way: undoes gather_futures (the caller keeps its
 * references to the children) and raises MemoryError. */
static CG_NORETURN void gather_undo(gathering *g, size_t registered) {
    for (size_t i = 0; i < registered; i++)
        cg__future_forget_callback(g->children[i], gather_done, g);
    g->n = 0;
    cg_future_unref(&g->fut);
    no_memory();
}

/* The heart of gather() once every argument is a future: the gathering
 * future takes over the n references of children[] when it returns. */
static cg_future *gather_futures(cg_loop *loop, cg_future **children, size_t n, int return_exceptions) {
    gathering *g = gathering_new(loop, n, return_exceptions);
    memcpy(g->children, children, n * sizeof *children);
    g->n = n;
    /* arg_to_fut: a future given twice is one child, counted once */
    cg_future **done = cg__alloc(n * sizeof *done + 1);
    if (!done) gather_undo(g, 0);
    size_t ndone = 0;
    for (size_t i = 0; i < n; i++) {
        cg_future *c = children[i];
        size_t j = 0;
        while (j < i && children[j] != c) j++;
        if (j < i) continue;
        g->nfuts++;
        if (c->state != F_PENDING) {
            done[ndone++] = c;
        } else {
            if (cg_future_add_done_callback(c, gather_done, g) < 0) {
                cg__dealloc(done);
                gather_undo(g, i);
            }
        }
    }
    for (size_t i = 0; i < ndone; i++) gather_done(done[i], g);
    cg__dealloc(done);
    return &g->fut;
}

static cg_future *gather_empty(void) {
    cg_loop *loop = cg_get_running_loop();
    gathering *g = gathering_new(loop, 0, 0);
    g->res = (cg_gathered){0, NULL, NULL};
    cg__future_set_result_plain(&g->fut, &g->res);
    return &g->fut;
}

typedef struct child_list {
    cg_future **v;
    size_t n;
    int cancel; /* the tasks made for bodies: cancelled when the call fails */
} child_list;

/* A call that made tasks for bodies and then runs out of memory cancels
 * them before they start: the call has no effect (where asyncio's tasks
 * would run on unobserved). */
static void child_list_drop(void *p) {
    child_list *l = p;
    if (!l->v) return;
    for (size_t i = 0; i < l->n; i++) {
        if (l->cancel) cg__future_cancel(l->v[i], NULL);
        cg_future_unref(l->v[i]);
    }
    cg__dealloc(l->v);
}

cg_future *cg_gather(cg_future *const *futs, size_t n, int return_exceptions) {
    if (!n) return gather_empty();
    if (!futs) CG_RAISE(&cg_TypeError, "An asyncio.Future, a coroutine or an awaitable is required");
    cg_loop *loop = NULL;
    for (size_t i = 0; i < n; i++) loop = check_future(futs[i], loop);
    child_list l = {NULL, 0, 0};
    CG_DEFER(child_list_drop, &l);
    l.v = xalloc(n * sizeof *l.v);
    for (l.n = 0; l.n < n; l.n++) l.v[l.n] = cg_future_ref(futs[l.n]);
    cg_future *g = gather_futures(loop, l.v, n, return_exceptions);
    cg__dealloc(l.v); /* the references are the gathering future's now */
    l.v = NULL;
    return g;
}

cg_future *cg_gather_bodies(const cg_body *bodies, size_t n, int return_exceptions) {
    if (!n) return gather_empty();
    if (!bodies) CG_RAISE(&cg_TypeError, "An asyncio.Future, a coroutine or an awaitable is required");
    child_list l = {NULL, 0, 1};
    CG_DEFER(child_list_drop, &l);
    l.v = xalloc(n * sizeof *l.v);
    for (size_t i = 0; i < n; i++) {
        if (!bodies[i].fn) l.cancel = 0; /* asyncio's TypeError leaves the tasks made before it running */
        l.v[i] = body_task(&bodies[i]);
        ((cg_task *)l.v[i])->log_destroy_pending = 0; /* fut._log_destroy_pending = False */
        l.n++;
    }
    cg_future *g = gather_futures(l.v[0]->loop, l.v, n, return_exceptions);
    cg__dealloc(l.v); /* the references are the gathering future's now */
    l.v = NULL;
    return g;
}

static gathering *as_gathering(cg_future *g, const char *op) {
    if (!g || cg__future_ops_of(g) != &gathering_ops) CG_RAISEF(&cg_TypeError, "%s() argument must be a gather() future", op);
    return (gathering *)g;
}

size_t cg_gather_count(cg_future *g) { return as_gathering(g, "cg_gather_count")->n; }

cg_future *cg_gather_child(cg_future *g, size_t i) {
    gathering *gg = as_gathering(g, "cg_gather_child");
    if (i >= gg->n) CG_RAISE(&cg_IndexError, "list index out of range");
    return gg->children[i];
}

/* ======================================================================
 * shield
 * ====================================================================== */

/* The outer future of shield(): it owns its inner future; the callback on
 * inner holds no reference to it (the cycle would never be freed if inner
 * were dropped pending at loop close): freeing it removes the callback. */
typedef struct shielding {
    cg_future fut;
    const cg__future_ops *ops; /* second, as in cg__future_ext */
    cg_future *inner; /* owned */
} shielding;
_Static_assert(offsetof(shielding, ops) == offsetof(cg__future_ext, ops), "shielding's ops where cg__future_ops_of reads it");

static void shield_inner_done(cg_future *inner, void *arg);

static void shielding_fini(cg_future *f) {
    shielding *s = (shielding *)f;
    detach_child(s->inner, shield_inner_done, s);
    cg_future_unref(s->inner);
}

static const cg__future_ops shielding_ops = {NULL, shielding_fini};

static void shield_inner_done(cg_future *inner, void *arg) {
    cg_future *outer = &((shielding *)arg)->fut;
    if (outer->state == F_CANCELLED) {
        if (inner->state != F_CANCELLED) exception_of(inner);
    } else if (inner->state == F_CANCELLED) {
        cg__future_cancel_plain(outer, NULL);
    } else if (exception_of(inner)) {
        cg__future_set_exception_plain(outer, cg_exc_ref(inner->exc));
    } else {
        cg__future_set_result_plain(outer, inner->result);
    }
}

static void shield_outer_done(cg_future *outer, void *arg) {
    (void)arg;
    shielding *s = (shielding *)outer;
    /* if not inner.done(): inner's callback, once scheduled, still runs
     * (and retrieves inner's exception) */
    cg_future_remove_done_callback(s->inner, shield_inner_done, s);
}

static cg_future *shield_future(cg_future *inner) {
    if (inner->state != F_PENDING) return cg_future_ref(inner);
    shielding *s = xalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    s->fut.refs = 1;
    s->fut.loop = inner->loop;
    s->ops = &shielding_ops;
    s->fut.has_ops = 1;
    s->inner = cg_future_ref(inner);
    if (cg_future_add_done_callback(inner, shield_inner_done, s) < 0) {
        cg_future_unref(&s->fut);
        no_memory();
    }
    if (cg_future_add_done_callback(&s->fut, shield_outer_done, NULL) < 0) {
        cg_future_unref(&s->fut);
        no_memory();
    }
    return &s->fut;
}

cg_future *cg_shield(cg_future *inner) {
    check_future(inner, NULL);
    return shield_future(inner);
}

typedef struct made_task {
    cg_future *t;
    int cancel;
} made_task;

static void made_task_drop(void *p) {
    made_task *m = p;
    if (m->cancel) cg__future_cancel(m->t, NULL); /* as child_list_drop */
    cg_future_unref(m->t);
}

cg_future *cg_shield_body(cg_fn body, void *arg) {
    cg_body b = {body, arg};
    made_task m = {body_task(&b), 1};
    CG_DEFER(made_task_drop, &m);
    cg_future *r = shield_future(m.t);
    m.cancel = 0;
    return r;
}

/* ======================================================================
 * wait
 * ====================================================================== */

typedef struct wait_rec {
    cg_future **fs; /* distinct, in input order (owned references: as the
                       set in asyncio's _wait, they keep the futures alive
                       while the task waits, whoever else lets go) */
    size_t n, counter;
    cg_return_when when;
    cg_future *waiter;
    cg_handle *timer;
} wait_rec;

static void release_waiter(void *arg) {
    cg_future *w = arg;
    if (w->state == F_PENDING) cg__future_set_result_plain(w, NULL);
}

static void wait_on_completion(cg_future *f, void *arg) {
    wait_rec *w = arg;
    w->counter--;
    if (w->counter == 0 || w->when == CG_FIRST_COMPLETED ||
        (w->when == CG_FIRST_EXCEPTION && f->state != F_CANCELLED && exception_of(f))) {
        if (w->timer) cg_handle_cancel(w->timer);
        release_waiter(w->waiter);
    }
}

static void wait_cleanup(void *p) {
    wait_rec *w = p;
    if (w->timer) {
        cg_handle_cancel(w->timer);
        cg_handle_unref(w->timer);
    }
    for (size_t i = 0; i < w->n; i++) {
        cg_future *f = w->fs[i];
        int done = f->state != F_PENDING;
        /* A callback of f that is queued but has not run is dropped; in
         * asyncio it would still run: it counts, and retrieves f's
         * exception as its condition does (FIRST_EXCEPTION). */
        if (cg__future_forget_callback(f, wait_on_completion, w) && done && --w->counter != 0 &&
            w->when == CG_FIRST_EXCEPTION && f->state != F_CANCELLED)
            exception_of(f);
        cg_future_unref(f);
    }
    cg_future_unref(w->waiter);
    cg__dealloc(w->fs);
    cg__dealloc(w);
}

void cg_wait(cg_future *const *fs, size_t n, cg_return_when when, cg_ns timeout, cg_future **done, size_t *ndone,
             cg_future **pending, size_t *npending) {
    if (ndone) *ndone = 0;
    if (npending) *npending = 0;
    if (!fs || !n) CG_RAISE(&cg_ValueError, "Set of Tasks/Futures is empty.");
    if (when != CG_FIRST_COMPLETED && when != CG_FIRST_EXCEPTION && when != CG_ALL_COMPLETED)
        CG_RAISEF(&cg_ValueError, "Invalid return_when value: %d", (int)when);
    for (size_t i = 0; i < n; i++)
        if (!fs[i]) CG_RAISE(&cg_AttributeError, "'NoneType' object has no attribute 'add_done_callback'");
    cg_loop *loop = cg_get_running_loop();
    /* On the heap, not on the task's stack: the done callbacks write to it
     * while the task is suspended, and a compact task's stack is not in
     * memory then. */
    wait_rec *w = xalloc(sizeof *w);
    *w = (wait_rec){NULL, 0, 0, when, NULL, NULL};
    CG_DEFER(wait_cleanup, w);
    w->fs = xalloc(n * sizeof *w->fs);
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < w->n && w->fs[j] != fs[i]) j++;
        if (j == w->n) w->fs[w->n++] = cg_future_ref(fs[i]);
    }
    w->counter = w->n;
    w->waiter = new_future(loop);
    if (timeout != CG_NEVER) {
        w->timer = cg_loop_call_later(loop, timeout, release_waiter, w->waiter);
        if (!w->timer) no_memory();
    }
    for (size_t i = 0; i < w->n; i++) {
        if (cg_future_add_done_callback(w->fs[i], wait_on_completion, w) < 0) {
            while (i-- > 0) cg__future_forget_callback(w->fs[i], wait_on_completion, w);
            for (size_t k = 0; k < w->n; k++) cg_future_unref(w->fs[k]);
            w->n = 0;
            no_memory();
        }
    }
    cg_await(w->waiter);
    for (size_t i = 0; i < w->n; i++) {
        if (w->fs[i]->state != F_PENDING) {
            if (done) done[*ndone] = w->fs[i];
            if (ndone) ++*ndone;
        } else {
            if (pending) pending[*npending] = w->fs[i];
            if (npending) ++*npending;
        }
    }
}

/* ======================================================================
 * Timeout
 * ====================================================================== */

enum { TO_CREATED, TO_ENTERED, TO_EXPIRING, TO_EXPIRED, TO_EXITED };
static const char *const to_state_names[] = {"created", "active", "expiring", "expired", "finished"};

struct cg_timeout {
    cg_handle timer;    /* first: its own timer handle (embedded, loop.c),
                           armed whenever it is idle: neither in the heap
                           nor in the ready queue (refs 1, the scope's);
                           alloc_gen is the scope's */
    int state;
    cg_ns when;
    cg_handle *handler; /* &timer, another handle (owned) when the timer
                           was busy, or NULL */
    cg_task *task;      /* owned */
    int cancelling;
};

static cg_ns add_sat(cg_ns a, cg_ns b) {
    if (b > 0 && a > CG_NEVER - b) return CG_NEVER - 1;
    return a + b;
}

static inline void timeout_init(cg_timeout *t, unsigned gen, cg_ns when) {
    t->timer.ready.kind = R_PLAIN;
    t->timer.ready.queued = 0;
    t->timer.refs = 1;
    t->timer.cancelled = 1; /* idle */
    t->timer.scheduled = 0;
    t->timer.embedded = 1;
    t->timer.alloc_gen = gen;
    t->state = TO_CREATED;
    t->when = when;
    t->handler = NULL;
    t->task = NULL;
}

/* A scope made and freed while a loop runs on this thread comes from and
 * goes back to that loop's cache of dead ones: a malloc and a free were a
 * fifth of a scope entered and left. Its timer handle comes with it. */
static cg_timeout *timeout_alloc(cg_loop *loop, cg_ns when) {
    /* A block for each lazy scope stays (cg__timeout_flush's), and so
     * does the rest when the allocator has changed (cg__freelist_take
     * would free them all). */
    cg__freelist *fl = loop ? &loop->timeout_cache : NULL;
    cg_timeout *t = NULL;
    unsigned gen;
    if (fl && fl->gen != cg__alloc_generation() && !loop->timer_reserved) cg__freelist_clear(fl);
    if (fl && fl->n > loop->timer_reserved && fl->gen == cg__alloc_generation()) {
        t = fl->head;
        fl->head = *(void **)t;
        fl->n--;
        gen = fl->gen;
    } else {
        gen = cg__alloc_generation();
        t = cg__alloc(sizeof *t);
        if (!t) {
            errno = ENOMEM;
            return NULL;
        }
    }
    timeout_init(t, gen, when);
    return t;
}

cg_timeout *cg_timeout_at_new(cg_ns when) { return timeout_alloc(cg__running_loop, when); }

cg_timeout *cg_timeout_new(cg_ns delay) {
    cg_loop *loop = cg_get_running_loop();
    return cg_timeout_at_new(delay == CG_NEVER ? CG_NEVER : add_sat(cg__loop_now(loop), delay));
}

static void drop_handler(cg_timeout *t) {
    cg_handle *h = t->handler;
    if (!h) return;
    t->handler = NULL;
    if (h == &t->timer) {
        cg__loop_timer_disarm(h);
    } else {
        cg_handle_cancel(h);
        cg_handle_unref(h);
    }
}

/* The scope's reference to its timer goes last: a timer fired and still
 * in the ready queue (cancelled) frees the block when it leaves it. */
static inline __attribute__((always_inline)) void timeout_release(cg_timeout *t, cg_loop *loop) {
    if (t->task) cg__fut_unref(&t->task->fut);
    if (--t->timer.refs == 0) cg__timeout_block_free(loop, &t->timer);
}

void cg_timeout_free(cg_timeout *t) {
    if (!t) return;
    drop_handler(t);
    timeout_release(t, cg__running_loop);
}

cg_ns cg_timeout_when(const cg_timeout *t) { return t ? t->when : CG_NEVER; }
int cg_timeout_expired(const cg_timeout *t) { return t && (t->state == TO_EXPIRING || t->state == TO_EXPIRED); }

size_t cg_timeout_repr(const cg_timeout *t, char *buf, size_t size) {
    if (!t) return (size_t)snprintf(buf, size, "None");
    if (t->state == TO_ENTERED) {
        if (t->when == CG_NEVER) return (size_t)snprintf(buf, size, "<Timeout [active] when=None>");
        /* round(when, 3), in seconds, as Python prints a float */
        long long ms = (long long)((t->when + (t->when >= 0 ? 500000 : -500000)) / 1000000);
        char num[48];
        long long ip = ms / 1000, fp = ms % 1000;
        if (fp < 0) fp = -fp;
        int k = snprintf(num, sizeof num, "%s%lld.%03lld", ms < 0 && ip == 0 ? "-" : "", ip, fp);
        while (k > 0 && num[k - 1] == '0' && num[k - 2] != '.') num[--k] = '\0';
        return (size_t)snprintf(buf, size, "<Timeout [active] when=%s>", num);
    }
    return (size_t)snprintf(buf, size, "<Timeout [%s]>", to_state_names[t->state]);
}

static void on_timeout(void *arg) {
    cg_timeout *t = arg;
    cg_task_cancel(t->task, NULL);
    t->state = TO_EXPIRING;
    if (t->handler != &t->timer) cg_handle_unref(t->handler);
    t->handler = NULL;
}

/* Timeout.reschedule's work, now being loop.time() (read by the caller:
 * a scope made and entered at once reads the clock once, as if it had not
 * moved between timeout() and __aenter__). The timer is the scope's own
 * unless that one is still in the ready queue (fired, then rescheduled
 * before its callback ran): a handle of its own then, as asyncio makes a
 * new one at every reschedule. */
static int reschedule_at(cg_timeout *t, cg_loop *loop, cg_ns when, cg_ns now) {
    t->when = when;
    drop_handler(t);
    if (when == CG_NEVER) return 0;
    cg_handle *h = &t->timer;
    if (h->refs == 1) {
        h->ready.kind = R_PLAIN;
        h->cancelled = 0;
        h->fn = on_timeout;
        h->arg = t;
        if (when <= now)
            cg__loop_ready(loop, h);
        else if (cg__loop_timer_arm(loop, h, when) < 0)
            return -1;
    } else {
        h = when <= now ? cg_loop_call_soon(loop, on_timeout, t) : cg_loop_call_at(loop, when, on_timeout, t);
        if (!h) return -1;
    }
    t->handler = h;
    return 0;
}

void cg_timeout_reschedule(cg_timeout *t, cg_ns when) {
    if (!t) CG_RAISE(&cg_TypeError, "cg_timeout_reschedule() argument must be a Timeout, not NULL");
    if (t->state != TO_ENTERED) {
        if (t->state == TO_CREATED) CG_RAISE(&cg_RuntimeError, "Timeout has not been entered");
        CG_RAISEF(&cg_RuntimeError, "Cannot change state of %s Timeout", to_state_names[t->state]);
    }
    cg_loop *loop = cg_get_running_loop();
    if (reschedule_at(t, loop, when, when == CG_NEVER ? 0 : cg__loop_now(loop)) < 0) no_memory();
}

/* The running task, or RuntimeError as __aenter__ raises it. */
static cg_task *scope_task(cg_loop *loop) {
    cg_task *task = loop->current;
    if (!task) CG_RAISE(&cg_RuntimeError, "Timeout should be used inside a task");
    return task;
}

/* __aenter__ in task of loop, now being loop.time() or -1 (not read yet).
 * -1 when out of memory for the timer (entered, not armed). */
static int timeout_enter_in(cg_timeout *t, cg_loop *loop, cg_task *task, cg_ns now) {
    t->state = TO_ENTERED;
    t->task = (cg_task *)cg__fut_ref(&task->fut);
    t->cancelling = task->num_cancels;
    if (now < 0 && t->when != CG_NEVER) now = cg__loop_now(loop);
    return reschedule_at(t, loop, t->when, now);
}

void cg_timeout_enter(cg_timeout *t) {
    if (!t) CG_RAISE(&cg_TypeError, "cg_timeout_enter() argument must be a Timeout, not NULL");
    if (t->state != TO_CREATED) CG_RAISE(&cg_RuntimeError, "Timeout has already been entered");
    cg_loop *loop = cg_get_running_loop();
    if (timeout_enter_in(t, loop, scope_task(loop), -1) < 0) no_memory();
}

/* Timeout._insert_timeout_error: a TimeoutError between exc and the first
 * CancelledError of its context chain. */
static void insert_timeout_error(cg_exc *exc) {
    for (cg_exc *c; (c = cg_exc_context(exc)) != NULL; exc = c) {
        if (cg_exc_is(c, &cg_CancelledError)) {
            cg_exc *te = cg_exc_new(&cg_TimeoutError, NULL);
            cg_exc_set_cause(te, c); /* __cause__ and __context__ */
            cg_exc_set_context(exc, te);
            cg_exc_unref(te);
            break;
        }
    }
}

void cg_timeout_exit(cg_timeout *t, cg_exc *exc) {
    if (!t || (t->state != TO_ENTERED && t->state != TO_EXPIRING)) CG_RAISE(&cg_AssertionError, NULL);
    drop_handler(t);
    if (t->state == TO_EXPIRING) {
        t->state = TO_EXPIRED;
        if (cg_task_uncancel(t->task) <= t->cancelling && exc) {
            if (cg_exc_is(exc, &cg_CancelledError)) {
                cg_exc *te = cg_exc_new(&cg_TimeoutError, NULL);
                cg_exc_set_cause(te, exc);
                cg_raise(te);
            }
            insert_timeout_error(exc);
            if (cg_exc_is(exc, &cg_ExceptionGroup))
                for (size_t i = 0; i < cg_exc_group_count(exc); i++) insert_timeout_error(cg_exc_group_at(exc, i));
        }
    } else {
        t->state = TO_EXITED;
    }
}

static void timeout_exit_cb(void *arg, cg_exc *e) { cg_timeout_exit(arg, e); }

/* The block of `async with t:`, fn(arg), and __aexit__. */
static void timeout_body(cg_timeout *t, void (*fn)(void *), void *arg) {
    cg_exc *e = fn ? cg_try_catch(fn, arg, &cg_BaseException) : cg_exc_new(&cg_TypeError, "'NoneType' object is not callable");
    if (!e) {
        cg_timeout_exit(t, NULL);
        return;
    }
    exit_handling(e, timeout_exit_cb, t);
}

void cg_timeout_run(cg_timeout *t, void (*fn)(void *), void *arg) {
    cg_timeout_enter(t);
    timeout_body(t, fn, arg);
}

static void timeout_free_cb(void *p) { cg_timeout_free(p); }

/* __aexit__ of timeout_call's scope when its block raises: a defer that
 * runs while the exception unwinds, so that it is the one being handled
 * (cg_exc_current), as in exit_handling. What cg_timeout_exit raises
 * replaces it, chained to it; when it returns, the exception goes on as it
 * was. Then the scope is freed. */
static void timeout_unwound(void *p) {
    cg_timeout *t = p;
    CG_DEFER(timeout_free_cb, t);
    cg_timeout_exit(t, cg_exc_current());
}

static void nothing(void *p) { (void)p; }

/* cg_timeout_call's and cg_timeout_at_call's scope, made, entered, run
 * and freed here, so nobody else holds it: the task is checked before it
 * is made, and it is freed without a defer unless the block raises. */
static CG_NOINLINE cg_timeout *timeout_call_enter(cg_loop *loop, cg_task *task, cg_ns when, cg_ns now) {
    cg_timeout *t = timeout_alloc(loop, when);
    if (!t) no_memory();
    if (timeout_enter_in(t, loop, task, now) < 0) {
        timeout_release(t, loop);
        no_memory();
    }
    return t;
}

/* __aexit__ of timeout_call's scope once its block has returned. */
static void timeout_call_exit(cg_loop *loop, cg_timeout *t) {
    if (t->state == TO_ENTERED) { /* before the deadline */
        drop_handler(t);
        t->state = TO_EXITED;
    } else {
        cg_timeout_exit(t, NULL);
    }
    timeout_release(t, loop);
}

/* A scope of timeout_call's whose timer is not in the heap yet: a lazy
 * scope, on the caller's stack. Its timer can fire only through the loop,
 * so only once the task has let the loop run: when the step that entered
 * it ends with the scope still open, cg__timeout_flush moves it into a
 * cg_timeout of the loop's cache and arms that timer with the heap slot
 * and the sequence number reserved at enter (the same place among timers
 * of the same deadline as if it had been armed then). A scope left within
 * the step gives them back and has done no heap work at all: nothing can
 * tell, the heap being read only between steps (the timer run, the poll's
 * timeout). The scope is also the defer record around the block. */
typedef struct lazy_scope {
    cg__defer rec; /* first: lazy_unwound and the scope, or, once it
                      has become a cg_timeout (owned), timeout_unwound
                      and that */
    struct lazy_scope *next;
    cg_ns when;
    uint64_t seq;
    int cancelling;
} lazy_scope;

/* Takes s off loop->timeout_lazy: the first one but for a scope left
 * after another one entered later (an async generator's block, left by
 * yielding, and its consumer's), and gives its reservation back. */
static CG_NOINLINE void lazy_unlink(cg_loop *loop, lazy_scope *s) {
    lazy_scope *p = loop->timeout_lazy;
    while (p->next != s) p = p->next;
    p->next = s->next;
}

static inline void lazy_leave(cg_loop *loop, lazy_scope *s) {
    if (CG_LIKELY(loop->timeout_lazy == s))
        loop->timeout_lazy = s->next;
    else
        lazy_unlink(loop, s);
    cg__loop_timer_unreserve(loop);
}

void cg__timeout_flush(cg_loop *loop, cg_task *task) {
    lazy_scope *s = loop->timeout_lazy;
    loop->timeout_lazy = NULL;
    for (; s; s = s->next) {
        /* The cache holds a block for each lazy scope (timeout_alloc
         * leaves them). */
        cg__freelist *fl = &loop->timeout_cache;
        cg_timeout *t = fl->head;
        fl->head = *(void **)t;
        fl->n--;
        timeout_init(t, fl->gen, s->when);
        t->state = TO_ENTERED;
        t->task = (cg_task *)cg__fut_ref(&task->fut);
        t->cancelling = s->cancelling;
        cg_handle *h = &t->timer;
        h->cancelled = 0;
        h->fn = on_timeout;
        h->arg = t;
        cg__loop_timer_arm_reserved(loop, h, s->when, s->seq);
        t->handler = h;
        s->rec.fn = timeout_unwound;
        s->rec.arg = t;
    }
}

/* The block of a lazy scope raised: not expired, nothing to raise. */
static void lazy_unwound(void *p) { lazy_leave(cg__running_loop, p); }

/* A lazy scope around fn(arg) (fn not NULL, now < when < CG_NEVER, a
 * block in the cache and a free slot in the heap for it: see lazy_scope).
 * A function of its own, which its callers' checks tail-call: it saves a
 * register or two, where inlined in them it saved all they used (and its
 * first three arguments are cg_timeout_call's, in the same registers). */
static CG_NOINLINE void lazy_call(cg_ns when, void (*fn)(void *), void *arg, cg_loop *loop, cg_task *task) {
    lazy_scope s;
    s.next = loop->timeout_lazy;
    s.when = when;
    s.cancelling = task->num_cancels;
    s.seq = cg__loop_timer_reserve(loop);
    loop->timeout_lazy = &s;
    /* cg__defer_push and cg__defer_exit without the calls: the record goes
     * on the running generator's chain (the task's stack), and its
     * function runs only when the block raises. */
    cg__ctx *ctx = cg__t.cur;
    s.rec.rec.kind = CG__REC_DEFER;
    s.rec.rec.next = ctx->chain;
    s.rec.fn = lazy_unwound;
    s.rec.arg = &s;
    ctx->chain = &s.rec.rec;
    fn(arg);
    /* (the loop and the context read again: nothing is kept in a register
     * across the block, so that there are fewer to save) */
    ctx = cg__t.cur;
    CG_CHECK(ctx->chain == &s.rec.rec, "exception records out of order (a CG_TRY or CG_DEFER frame was left by longjmp?)");
    ctx->chain = s.rec.rec.next;
    loop = cg__running_loop;
    if (CG_LIKELY(s.rec.arg == &s)) {
        lazy_leave(loop, &s);
        return;
    }
    timeout_call_exit(loop, s.rec.arg);
}

/* A block in the cache for each lazy scope and this one, and a free heap
 * slot. (Of any generation: a block goes back to the cache of its own, or
 * is freed with its allocator when the loop is; timeout_alloc empties a
 * cache of another generation when no lazy scope holds a block of it.) */
static inline int lazy_room(const cg_loop *loop) {
    return loop->timeout_cache.n > loop->timer_reserved && loop->nheap < loop->heap_cap;
}

/* cg_timeout_call and cg_timeout_at_call, now being loop.time() or -1
 * (not read yet). */
static CG_NOINLINE void timeout_call(cg_loop *loop, cg_ns when, cg_ns now, void (*fn)(void *), void *arg) {
    cg_task *task = scope_task(loop);
    if (fn && when != CG_NEVER) {
        if (now < 0) now = cg__loop_now(loop);
        if (when > now && lazy_room(loop)) {
            lazy_call(when, fn, arg, loop, task);
            return;
        }
    }
    cg_timeout *t = timeout_call_enter(loop, task, when, now);
    if (!fn) {
        CG_DEFER(timeout_free_cb, t);
        exit_handling(cg_exc_new(&cg_TypeError, "'NoneType' object is not callable"), timeout_exit_cb, t);
    }
    /* No try around the block: a defer record (a push and a pop, where a
     * try's setjmp, push and end were about 75 instructions) whose function
     * runs only when the block raises. */
    cg__defer rec = {{0, 0}, timeout_unwound, t};
    cg__defer_push(&rec);
    fn(arg);
    rec.fn = nothing;
    cg__defer_exit(&rec);
    timeout_call_exit(loop, t);
}

static CG_NOINLINE void timeout_call_slow(cg_ns delay, void (*fn)(void *), void *arg) {
    cg_loop *loop = cg_get_running_loop(); /* (raises outside one) */
    cg_ns now = cg__loop_now(loop);
    timeout_call(loop, delay == CG_NEVER ? CG_NEVER : add_sat(now, delay), now, fn, arg);
}

/* The common case here (a lazy scope, the clock read in this iteration
 * already), the rest in timeout_call_slow: both tail calls, so that this
 * saves no register at all. */
void cg_timeout_call(cg_ns delay, void (*fn)(void *), void *arg) {
    cg_loop *loop = cg__running_loop;
    if (!loop) goto slow;
    if (CG_LIKELY(fn && delay > 0)) {
        cg_task *task = loop->current;
        cg_ns now;
        if (loop->flags & CG_LOOP_VIRTUAL_CLOCK)
            now = loop->now;
        else if (CG_LIKELY(loop->clock_valid))
            now = loop->clock;
        else
            goto slow;
        if (CG_LIKELY(task && delay < CG_NEVER - now && lazy_room(loop))) {
            lazy_call(now + delay, fn, arg, loop, task);
            return;
        }
    }
slow:
    timeout_call_slow(delay, fn, arg);
}

void cg_timeout_at_call(cg_ns when, void (*fn)(void *), void *arg) {
    timeout_call(cg_get_running_loop(), when, -1, fn, arg);
}

/* ======================================================================
 * wait_for
 * ====================================================================== */

typedef struct cancel_wait {
    cg_future *fut, *waiter;
} cancel_wait;

static void release_waiter_cb(cg_future *f, void *arg) {
    (void)f;
    release_waiter(arg);
}

static void cancel_wait_cleanup(void *p) {
    cancel_wait *c = p;
    cg__future_forget_callback(c->fut, release_waiter_cb, c->waiter);
    cg_future_unref(c->waiter);
}

/* tasks._cancel_and_wait: cancels fut and waits until it is done, through
 * a waiter of its own so that this wait stays cancellable. */
static void cancel_and_wait(cg_future *fut) {
    cancel_wait c = {fut, new_future(fut->loop)};
    if (cg_future_add_done_callback(fut, release_waiter_cb, c.waiter) < 0) {
        cg_future_unref(c.waiter);
        no_memory();
    }
    CG_DEFER(cancel_wait_cleanup, &c);
    cg_future_cancel(fut, NULL);
    cg_await(c.waiter);
}

static void raise_timeout_from_cb(void *arg, cg_exc *e) {
    (void)arg;
    cg_exc *te = cg_exc_new(&cg_TimeoutError, NULL);
    cg_exc_set_cause(te, e);
    cg_raise(te);
}

/* wait_for with timeout <= 0: fut is done at once or cancelled. */
static void *wait_for_now(cg_future *fut) {
    if (fut->state != F_PENDING) return cg_future_result(fut);
    cancel_and_wait(fut);
    if (fut->state != F_CANCELLED) return cg_future_result(fut);
    /* try: return fut.result() except CancelledError as exc: raise
     * TimeoutError from exc. fut.result() raises the CancelledError here,
     * chained to what the caller handles. */
    CG_TRY {
        cg_future_result(fut);
    } CG_EXCEPT(&cg_CancelledError, e) {
        raise_timeout_from_cb(NULL, e);
    } CG_END;
    abort(); /* not reached: fut is cancelled */
}

typedef struct wait_for_rec {
    cg_future *fut;
    cg_fn body;
    void *arg;
    void *result;
    cg_ns timeout;
} wait_for_rec;

static void wait_for_await(void *p) {
    wait_for_rec *w = p;
    if (!w->body)
        w->result = cg_await(w->fut);
    else
        w->result = w->body(cg_current(), w->arg); /* await body(arg), inline */
}

static void *wait_for_frame(cg_gen *g, void *p) {
    (void)g;
    wait_for_rec *w = p;
    cg_timeout_call(w->timeout, wait_for_await, w);
    return w->result;
}

/* `async with timeout(t): return await fut` in a frame of its own: 3.13's
 * wait_for is a coroutine, and what leaves it while the task is resumed by
 * a throw (the TimeoutError its timeout makes of the CancelledError thrown
 * in) is chained again to the exception its caller's frame handles
 * (CPython's _PyErr_ChainStackItem), not to that CancelledError; the
 * CancelledError itself is not chained to the caller's, since wait_for
 * handles nothing when it is thrown in. A subgenerator of the calling
 * generator, with its stack size and flags (body runs on it), is that
 * frame: the core chains a throw through a delegation as CPython does.
 * Outside a generator, the scope's own error (no running loop, no task) is
 * raised as it is. */
static void *wait_for_scope(wait_for_rec *w, cg_ns timeout) {
    w->timeout = timeout;
    cg_gen *g = cg_current();
    /* A future already done is not awaited: nothing is thrown in, and
     * the frame would change nothing. */
    if (!g || !cg_current_task() || (w->fut && w->fut->state != F_PENDING)) return wait_for_frame(NULL, w);
    cg_opts o = cg__frame_opts(g, "wait_for");
    return cg_yield_from_new(g, wait_for_frame, w, &o);
}

static void unref_future_cb(void *p) { cg_future_unref(p); }

void *cg_wait_for(cg_future *fut, cg_ns timeout) {
    if (timeout != CG_NEVER && timeout <= 0) {
        check_future(fut, NULL);
        cg_future_ref(fut);
        CG_DEFER(unref_future_cb, fut);
        return wait_for_now(fut);
    }
    wait_for_rec w = {fut, NULL, NULL, NULL, 0};
    return wait_for_scope(&w, timeout);
}

void *cg_wait_for_body(cg_fn body, void *arg, cg_ns timeout) {
    cg_body b = {body, arg};
    if (!body) body_task(&b); /* raises the TypeError */
    if (timeout != CG_NEVER && timeout <= 0) {
        cg_future *t = body_task(&b);
        CG_DEFER(unref_future_cb, t);
        return wait_for_now(t);
    }
    wait_for_rec w = {NULL, body, arg, NULL, 0};
    return wait_for_scope(&w, timeout);
}

/* ======================================================================
 * as_completed
 * ====================================================================== */

struct cg_as_completed {
    cg_loop *loop;
    cg_future **todo; /* not yet done, in input order (owned) */
    size_t ntodo, todo_left;
    cg_future **done; /* a FIFO; NULL entries are timeout sentinels (owned) */
    size_t dhead, dtail, dcap;
    cg_future *getter; /* the waiting next() (owned), or NULL */
    cg_handle *timer;
};

static void ac_put(cg_as_completed *it, cg_future *f) {
    /* the FIFO never holds more than the number of futures given */
    it->done[it->dtail++] = f;
    if (it->getter && it->getter->state == F_PENDING) cg__future_set_result_plain(it->getter, NULL);
}

static void ac_completion(cg_future *f, void *arg) {
    cg_as_completed *it = arg;
    if (!it->ntodo) return; /* the timeout was here first */
    size_t i = 0;
    while (i < it->ntodo && it->todo[i] != f) i++;
    if (i == it->ntodo) return;
    memmove(&it->todo[i], &it->todo[i + 1], (it->ntodo - i - 1) * sizeof *it->todo);
    it->ntodo--;
    ac_put(it, f); /* the reference moves from todo to done */
    if (!it->ntodo && it->timer) cg_handle_cancel(it->timer);
}

static void ac_timeout(void *arg) {
    cg_as_completed *it = arg;
    for (size_t i = 0; i < it->ntodo; i++) {
        cg__future_forget_callback(it->todo[i], ac_completion, it);
        cg_future_unref(it->todo[i]);
        ac_put(it, NULL);
    }
    it->ntodo = 0;
}

cg_as_completed *cg_as_completed_new(cg_future *const *fs, size_t n, cg_ns timeout) {
    if (n && !fs) CG_RAISE(&cg_TypeError, "An asyncio.Future, a coroutine or an awaitable is required");
    cg_loop *loop = NULL;
    for (size_t i = 0; i < n; i++) loop = check_future(fs[i], loop);
    if (!loop) loop = cg_get_running_loop();
    cg_as_completed *it = xalloc(sizeof *it);
    memset(it, 0, sizeof *it);
    it->loop = loop;
    it->todo = cg__alloc(n * sizeof *it->todo + 1);
    it->done = cg__alloc(n * sizeof *it->done + 1);
    if (!it->todo || !it->done) {
        cg__dealloc(it->todo);
        cg__dealloc(it->done);
        cg__dealloc(it);
        no_memory();
    }
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < it->ntodo && it->todo[j] != fs[i]) j++;
        if (j < it->ntodo) continue;
        if (cg_future_add_done_callback(fs[i], ac_completion, it) < 0) {
            cg_as_completed_free(it);
            no_memory();
        }
        it->todo[it->ntodo++] = cg_future_ref(fs[i]);
    }
    it->dcap = it->ntodo;
    if (it->ntodo && timeout != CG_NEVER) {
        it->timer = cg_loop_call_later(loop, timeout, ac_timeout, it);
        if (!it->timer) {
            cg_as_completed_free(it);
            no_memory();
        }
    }
    it->todo_left = it->ntodo;
    return it;
}

static void ac_getter_drop(void *p) {
    cg_as_completed *it = p;
    cg_future_unref(it->getter);
    it->getter = NULL;
}

cg_future *cg_as_completed_next(cg_as_completed *it) {
    if (!it) CG_RAISE(&cg_TypeError, "cg_as_completed_next() argument must be an iterator, not NULL");
    if (!it->todo_left) return NULL; /* StopAsyncIteration */
    it->todo_left--;
    /* await self._done.get() */
    while (it->dhead == it->dtail) {
        if (it->getter) CG_RAISE(&cg_RuntimeError, "cg_as_completed_next() is already waiting in another task");
        it->getter = new_future(it->loop);
        CG_DEFER(ac_getter_drop, it);
        cg_await(it->getter);
    }
    /* the caller gets a borrowed future: the iterator keeps it until freed */
    cg_future *f = it->done[it->dhead++];
    if (!f) CG_RAISE(&cg_TimeoutError, NULL);
    return f;
}

void cg_as_completed_free(cg_as_completed *it) {
    if (!it) return;
    if (it->timer) {
        cg_handle_cancel(it->timer);
        cg_handle_unref(it->timer);
    }
    for (size_t i = 0; i < it->ntodo; i++) {
        cg__future_forget_callback(it->todo[i], ac_completion, it);
        cg_future_unref(it->todo[i]);
    }
    for (size_t i = 0; i < it->dtail; i++) cg_future_unref(it->done[i]);
    if (it->getter) cg__future_cancel_plain(it->getter, NULL);
    cg_future_unref(it->getter);
    cg__dealloc(it->todo);
    cg__dealloc(it->done);
    cg__dealloc(it);
}

/* ======================================================================
 * TaskGroup
 * ====================================================================== */

struct cg_taskgroup {
    long refs;
    unsigned char entered, exiting, aborting, parent_cancel_requested, errors_gone;
    cg_loop *loop;
    cg_task *parent; /* owned */
    cg_task **tasks; /* the group's unfinished tasks, creation order (owned) */
    size_t ntasks, tcap;
    cg_exc **errors; /* owned */
    size_t nerrors, ecap;
    cg_exc *base_error; /* owned */
    cg_future *on_completed; /* owned */
};

cg_taskgroup *cg_taskgroup_new(void) {
    cg_taskgroup *tg = cg__alloc(sizeof *tg);
    if (!tg) {
        errno = ENOMEM;
        return NULL;
    }
    memset(tg, 0, sizeof *tg);
    tg->refs = 1;
    return tg;
}

static void tg_clear_errors(cg_taskgroup *tg) {
    for (size_t i = 0; i < tg->nerrors; i++) cg_exc_unref(tg->errors[i]);
    cg__dealloc(tg->errors);
    tg->errors = NULL;
    tg->nerrors = tg->ecap = 0;
}

static void tg_on_task_done(cg_future *f, void *arg);

/* The callbacks on the tasks hold no reference to the group (that would
 * be a cycle with the group's references to its tasks): a group freed
 * with tasks still running (its task was dropped at loop close) lets go
 * of them. */
static void tg_unref(cg_taskgroup *tg) {
    if (!tg || --tg->refs > 0) return;
    for (size_t i = 0; i < tg->ntasks; i++) {
        cg__future_forget_callback(&tg->tasks[i]->fut, tg_on_task_done, tg);
        cg_future_unref(&tg->tasks[i]->fut);
    }
    cg__dealloc(tg->tasks);
    tg_clear_errors(tg);
    cg_exc_unref(tg->base_error);
    cg_future_unref(tg->on_completed);
    if (tg->parent) cg_future_unref(&tg->parent->fut);
    cg__dealloc(tg);
}

void cg_taskgroup_free(cg_taskgroup *tg) { tg_unref(tg); }

size_t cg_taskgroup_repr(const cg_taskgroup *tg, char *buf, size_t size) {
    if (!tg) return (size_t)snprintf(buf, size, "None");
    char info[96] = "";
    size_t k = 0;
    if (tg->ntasks) k += (size_t)snprintf(info + k, sizeof info - k, " tasks=%zu", tg->ntasks);
    if (tg->nerrors) k += (size_t)snprintf(info + k, sizeof info - k, " errors=%zu", tg->nerrors);
    if (tg->aborting)
        snprintf(info + k, sizeof info - k, " cancelling");
    else if (tg->entered)
        snprintf(info + k, sizeof info - k, " entered");
    return (size_t)snprintf(buf, size, "<TaskGroup%s>", info);
}

static CG_NORETURN void tg_raise(const cg_taskgroup *tg, const char *fmt) {
    char r[128];
    cg_taskgroup_repr(tg, r, sizeof r);
    cg_raise(cg_exc_newf(&cg_RuntimeError, fmt, r));
}

static int is_base_error(const cg_exc *e) { return cg_exc_is(e, &cg_SystemExit) || cg_exc_is(e, &cg_KeyboardInterrupt); }

static void tg_abort(cg_taskgroup *tg) {
    tg->aborting = 1;
    for (size_t i = 0; i < tg->ntasks; i++)
        if (tg->tasks[i]->fut.state == F_PENDING) cg_task_cancel(tg->tasks[i], NULL);
}

/* Room for n more errors, or MemoryError (nothing changed). The room for
 * the error each unfinished task may add is made when it is spawned, so
 * that recording it, in a done callback, never needs memory. */
static void tg_reserve_errors(cg_taskgroup *tg, size_t n) {
    if (tg->nerrors + n <= tg->ecap) return;
    size_t cap = tg->ecap ? tg->ecap * 2 : 4;
    while (cap < tg->nerrors + n) cap *= 2;
    cg_exc **v = xalloc(cap * sizeof *v);
    if (tg->nerrors) memcpy(v, tg->errors, tg->nerrors * sizeof *v);
    cg__dealloc(tg->errors);
    tg->errors = v;
    tg->ecap = cap;
}

/* self._errors.append(e), in room reserved. */
static void tg_add_error(cg_taskgroup *tg, cg_exc *e) { tg->errors[tg->nerrors++] = cg_exc_ref(e); }

/* A task's repr for the exception handler, without the coroutine. */
static void task_repr(cg_task *t, char *buf, size_t size) {
    cg_future *f = &t->fut;
    if (f->state == F_PENDING) {
        snprintf(buf, size, "<Task pending name='%s'>", cg__task_name(t));
    } else if (f->state == F_CANCELLED) {
        snprintf(buf, size, "<Task cancelled name='%s'>", cg__task_name(t));
    } else if (f->exc) {
        char e[200];
        cg_exc_repr(f->exc, e, sizeof e);
        snprintf(buf, size, "<Task finished name='%s' exception=%s>", cg__task_name(t), e);
    } else {
        snprintf(buf, size, "<Task finished name='%s' result=%p>", cg__task_name(t), f->result);
    }
}

static void tg_on_task_done(cg_future *f, void *arg) {
    cg_taskgroup *tg = arg;
    cg_task *task = (cg_task *)f;
    for (size_t i = 0; i < tg->ntasks; i++) {
        if (tg->tasks[i] == task) {
            memmove(&tg->tasks[i], &tg->tasks[i + 1], (tg->ntasks - i - 1) * sizeof *tg->tasks);
            tg->ntasks--;
            cg_future_unref(f);
            break;
        }
    }
    if (tg->on_completed && !tg->ntasks && tg->on_completed->state == F_PENDING)
        cg__future_set_result_plain(tg->on_completed, (void *)1);
    cg_exc *exc = f->state == F_CANCELLED ? NULL : exception_of(f);
    if (exc) {
        if (!tg->errors_gone) tg_add_error(tg, exc);
        if (is_base_error(exc) && !tg->base_error) tg->base_error = cg_exc_ref(exc);
        if (tg->parent->fut.state != F_PENDING) {
            char tr[300], pr[300], msg[700];
            task_repr(task, tr, sizeof tr);
            task_repr(tg->parent, pr, sizeof pr);
            snprintf(msg, sizeof msg, "Task %s has errored out but its parent task %s is already completed", tr, pr);
            cg__loop_report(tg->loop, msg, exc, f);
        } else if (!tg->aborting && !tg->parent_cancel_requested) {
            tg_abort(tg);
            tg->parent_cancel_requested = 1;
            cg_task_cancel(tg->parent, NULL);
        }
    }
}

void cg_taskgroup_enter(cg_taskgroup *tg) {
    if (!tg) CG_RAISE(&cg_TypeError, "cg_taskgroup_enter() argument must be a TaskGroup, not NULL");
    if (tg->entered) tg_raise(tg, "TaskGroup %s has already been entered");
    if (!tg->loop) tg->loop = cg_get_running_loop();
    cg_task *parent = tg->loop == cg_running_loop() ? cg_current_task() : NULL;
    if (!parent) tg_raise(tg, "TaskGroup %s cannot determine the parent task");
    tg->parent = (cg_task *)cg_future_ref(&parent->fut);
    tg->entered = 1;
}

cg_task *cg_taskgroup_spawn(cg_taskgroup *tg, cg_fn body, void *arg, const char *name) {
    cg_task_opts o = {name, 0, 0};
    return cg_taskgroup_spawn_opts(tg, body, arg, &o);
}

cg_task *cg_taskgroup_spawn_opts(cg_taskgroup *tg, cg_fn body, void *arg, const cg_task_opts *opts) {
    if (!tg) CG_RAISE(&cg_TypeError, "cg_taskgroup_spawn() argument must be a TaskGroup, not NULL");
    if (!tg->entered) tg_raise(tg, "TaskGroup %s has not been entered");
    if (tg->exiting && !tg->ntasks) tg_raise(tg, "TaskGroup %s is finished");
    if (tg->aborting) tg_raise(tg, "TaskGroup %s is shutting down");
    if (!body) CG_RAISE(&cg_TypeError, "a coroutine was expected, got NULL");
    tg_reserve_errors(tg, tg->ntasks + 1);
    if (tg->ntasks == tg->tcap) {
        size_t cap = tg->tcap ? tg->tcap * 2 : 4;
        cg_task **v = xalloc(cap * sizeof *v);
        if (tg->ntasks) memcpy(v, tg->tasks, tg->ntasks * sizeof *v);
        cg__dealloc(tg->tasks);
        tg->tasks = v;
        tg->tcap = cap;
    }
    cg_task *t = cg_task_new(tg->loop, body, arg, opts);
    if (!t) no_memory();
    if (cg_future_add_done_callback(&t->fut, tg_on_task_done, tg) < 0) {
        cg_task_cancel(t, NULL);
        cg_future_unref(&t->fut);
        no_memory();
    }
    tg->tasks[tg->ntasks++] = (cg_task *)cg_future_ref(&t->fut);
    return t;
}

static void on_completed_drop(void *p) {
    cg_taskgroup *tg = p;
    cg_future_unref(tg->on_completed);
    tg->on_completed = NULL;
}

typedef struct tg_wait {
    cg_taskgroup *tg;
    cg_exc *propagate; /* owned */
} tg_wait;

static void await_future(void *f) { cg_await(f); }

static void tg_wait_all(void *p) {
    tg_wait *w = p;
    cg_taskgroup *tg = w->tg;
    while (tg->ntasks) {
        if (!tg->on_completed) tg->on_completed = new_future(tg->loop);
        CG_DEFER(on_completed_drop, tg);
        cg_exc *ex = cg_try_catch(await_future, tg->on_completed, &cg_CancelledError);
        if (ex) {
            if (!tg->aborting) {
                cg_exc_unref(w->propagate);
                w->propagate = cg_exc_ref(ex);
                tg_abort(tg);
            }
            cg_exc_unref(ex);
        }
    }
}

static void propagate_drop(void *p) { cg_exc_unref(((tg_wait *)p)->propagate); }

void cg_taskgroup_exit(cg_taskgroup *tg, cg_exc *exc) {
    if (!tg) CG_RAISE(&cg_TypeError, "cg_taskgroup_exit() argument must be a TaskGroup, not NULL");
    if (!tg->entered) tg_raise(tg, "TaskGroup %s has not been entered");
    tg->exiting = 1;
    if (exc && is_base_error(exc) && !tg->base_error) tg->base_error = cg_exc_ref(exc);
    tg_wait w = {tg, cg_exc_is(exc, &cg_CancelledError) ? cg_exc_ref(exc) : NULL};
    CG_DEFER(propagate_drop, &w);
    if (exc && !tg->aborting) tg_abort(tg);
    tg_wait_all(&w);
    if (tg->base_error) RERAISE(cg_exc_ref(tg->base_error));
    if (tg->parent_cancel_requested && cg_task_uncancel(tg->parent) == 0) {
        cg_exc_unref(w.propagate);
        w.propagate = NULL;
    }
    if (w.propagate && !tg->nerrors) {
        cg_exc *p = w.propagate;
        w.propagate = NULL;
        RERAISE(p);
    }
    if (exc && !cg_exc_is(exc, &cg_CancelledError)) {
        tg_reserve_errors(tg, 1);
        tg_add_error(tg, exc);
    }
    if (tg->nerrors) {
        if (cg_task_cancelling(tg->parent)) {
            cg_task_uncancel(tg->parent);
            cg_task_cancel(tg->parent, NULL);
        }
        cg_exc *me = cg_exc_group_new(&cg_BaseExceptionGroup, "unhandled errors in a TaskGroup", tg->errors, tg->nerrors);
        tg_clear_errors(tg); /* self._errors = None */
        tg->errors_gone = 1;
        cg_raise(me);
    }
}

static void tg_exit_cb(void *arg, cg_exc *e) { cg_taskgroup_exit(arg, e); }

typedef struct tg_body {
    void (*fn)(cg_taskgroup *, void *);
    cg_taskgroup *tg;
    void *arg;
} tg_body;

static void tg_run_body(void *p) {
    tg_body *b = p;
    b->fn(b->tg, b->arg);
}

void cg_taskgroup_run_in(cg_taskgroup *tg, void (*fn)(cg_taskgroup *tg, void *arg), void *arg) {
    cg_taskgroup_enter(tg);
    tg_body b = {fn, tg, arg};
    cg_exc *e = fn ? cg_try_catch(tg_run_body, &b, &cg_BaseException) : cg_exc_new(&cg_TypeError, "'NoneType' object is not callable");
    if (!e) {
        cg_taskgroup_exit(tg, NULL);
        return;
    }
    exit_handling(e, tg_exit_cb, tg);
}

static void tg_free_cb(void *p) { tg_unref(p); }

void cg_taskgroup_run(void (*fn)(cg_taskgroup *tg, void *arg), void *arg) {
    cg_taskgroup *tg = cg_taskgroup_new();
    if (!tg) no_memory();
    CG_DEFER(tg_free_cb, tg);
    cg_taskgroup_run_in(tg, fn, arg);
}
