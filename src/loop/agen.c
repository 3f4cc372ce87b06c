/* agen.c: async generators. An async generator is a generator whose body
 * both yields values (to whoever iterates it) and awaits (on behalf of the
 * task that iterates it). Its driver, the awaiting of anext/asend/athrow/
 * aclose in a task, resumes its generator in a loop: a value yielded ends
 * the step; the await token (cg_await in the body) makes the driver await
 * that future on the task's behalf and resume the body with the outcome,
 * throwing an exception in where the await raised (a cancellation too).
 * From the body's first await on, the driver runs in a frame of its own,
 * a generator the caller delegates to (step), so that what the loop throws
 * into the task is chained as CPython chains it. Semantics are CPython
 * 3.13's (A16-A21).
 */
#include "loop/loop.h"

#include <errno.h>
#include <string.h>

/* An anext/asend/athrow/aclose step in progress: it lives in the async
 * generator, not on the stack of the code that awaits the step, which the
 * driver's frame (step) must not read: a compact caller can be swapped out
 * while a throw runs that frame. */
typedef struct drive {
    cg_agen *ag;
    int op;
    void *val;    /* what the next resume sends */
    cg_exc *exc;  /* or throws (owned until thrown in) */
    void *token;  /* a token the body yielded and the driver has not
                     awaited yet (cg__await_token, cg__bare_token) */
    void *out;    /* the value the body yielded */
    int yielded;
} drive_t;

struct cg_agen {
    long refs;
    cg_gen *gen;            /* runs agen_edge(g, this) */
    cg_fn body;             /* the async generator's body and its argument */
    void *arg;
    cg_loop *loop;          /* set at the first start */
    cg_future *awaiting;    /* what the body awaits now (cg_await) */
    drive_t drv;            /* the step in progress (running) */
    unsigned char running;  /* an anext/asend/athrow/aclose is in progress */
    unsigned char started;  /* iteration started: closed at shutdown */
    unsigned char ignored_exit; /* the body ignored GeneratorExit once */
    unsigned char aclose_began; /* shutdown_asyncgens: its aclose() task's
                                   body began (it holds a reference then) */
    cg_agen *next, *prev;   /* the loop's started async generators */
};

/* The async generator whose body runs now (its driver sets it around each
 * resume), so that cg_await in the body knows to yield to the driver. */
__thread cg_agen *cg__agen_running;
char cg__bare_token;

int cg__agen_context(cg_agen **out) {
    cg_agen *ag = cg__agen_running;
    if (!ag) return 0;
    cg_gen *cur = cg_current(), *g = ag->gen;
    while (g && g != cur) g = cg_gen_yieldfrom(g);
    if (!g) return 0;
    *out = ag;
    return 1;
}

void cg__agen_set_awaiting(cg_agen *ag, cg_future *f) { ag->awaiting = f; }

/* A19 at the edge of the body, where CPython's generator send applies it
 * to an async generator: a StopIteration or StopAsyncIteration leaving the
 * body becomes RuntimeError('async generator raised ...'), caused by it
 * (and with it as context, as raise ... from sets both). The core's PEP
 * 479 never sees a StopIteration from an async generator's body. */
CG_NORETURN static void raise_from(cg_exc *cause, const char *msg) {
    cg_exc *rt = cg_exc_new(&cg_RuntimeError, msg);
    cg_exc_set_cause(rt, cause);
    cg_propagate(rt);
}

static void *agen_edge(cg_gen *g, void *arg) {
    cg_agen *ag = arg;
    void *volatile ret = NULL;
    CG_TRY {
        ret = ag->body(g, ag->arg);
    } CG_EXCEPT(&cg_StopIteration, e) {
        raise_from(e, "async generator raised StopIteration");
    } CG_EXCEPT(&cg_StopAsyncIteration, e) {
        raise_from(e, "async generator raised StopAsyncIteration");
    } CG_END;
    return ret;
}

cg_agen *cg_agen_new(cg_fn body, void *arg, const cg_opts *opts) {
    if (!body) {
        errno = EINVAL;
        return NULL;
    }
    cg_agen *ag = cg__alloc(sizeof *ag);
    if (!ag) {
        errno = ENOMEM;
        return NULL;
    }
    memset(ag, 0, sizeof *ag);
    ag->refs = 1;
    ag->body = body;
    ag->arg = arg;
    ag->gen = cg_new(agen_edge, ag, opts);
    if (!ag->gen) {
        int err = errno;
        cg__dealloc(ag);
        errno = err;
        return NULL;
    }
    return ag;
}

cg_gen *cg_agen_gen(const cg_agen *ag) { return ag ? ag->gen : NULL; }
int cg_agen_running(const cg_agen *ag) { return ag ? ag->running : 0; }

static void unlink_started(cg_agen *ag) {
    cg_loop *loop = ag->loop;
    if (!loop || !ag->started) return;
    if (ag->prev)
        ag->prev->next = ag->next;
    else
        loop->agens_head = ag->next;
    if (ag->next)
        ag->next->prev = ag->prev;
    else
        loop->agens_tail = ag->prev;
    ag->next = ag->prev = NULL;
    ag->started = 0;
}

void cg__agen_forget_loop(cg_loop *loop) {
    for (cg_agen *ag = loop->agens_head, *next; ag; ag = next) {
        next = ag->next;
        ag->next = ag->prev = NULL;
        ag->started = 0;
        ag->loop = NULL;
    }
    loop->agens_head = loop->agens_tail = NULL;
}

void cg_agen_free(cg_agen *ag) {
    if (!ag || --ag->refs > 0) return;
    unlink_started(ag);
    cg_free(ag->gen); /* a suspended body is closed: GeneratorExit, cleanups */
    cg__dealloc(ag);
}

static void mark_started(cg_agen *ag, cg_loop *loop) {
    if (ag->started || ag->loop) return;
    ag->loop = loop;
    ag->started = 1;
    ag->prev = loop->agens_tail;
    if (loop->agens_tail)
        loop->agens_tail->next = ag;
    else
        loop->agens_head = ag;
    loop->agens_tail = ag;
}

enum { OP_SEND, OP_THROW, OP_CLOSE };

static void await_awaited(void *p) {
    drive_t *d = p;
    cg_future *f = d->ag->awaiting;
    d->ag->awaiting = NULL;
    d->val = cg_await(f);
}

static void sleep0(void *p) {
    (void)p;
    cg_sleep(0);
}

/* Resumes the body until it yields a value (d->yielded, d->out) or ends
 * (returned, or raised, which propagates), awaiting for it what it awaits
 * and resuming it with the outcome (a value, or the exception thrown in
 * where its await raised, a cancellation too). With stop_at_token, stops
 * instead at the first token, left in d->token, if an exception is being
 * handled here (step says why). */
static void drive(drive_t *d, int stop_at_token) {
    cg_agen *ag = d->ag;
    for (;;) {
        if (d->token) {
            void *tok = d->token;
            d->token = NULL;
            d->val = NULL;
            d->exc = cg_try_catch(tok == &cg__bare_token ? sleep0 : await_awaited, d, &cg_BaseException);
        }
        cg_agen *prev = cg__agen_running;
        cg__agen_running = ag;
        void *r = NULL;
        cg_exc *err = NULL;
        cg_exc *e = d->exc;
        d->exc = NULL;
        cg_status st = e ? cg_throw(ag->gen, e, &r, &err) : cg_send(ag->gen, d->val, &r, &err);
        cg__agen_running = prev;
        if (st == CG_YIELDED && (r == &cg__await_token || r == &cg__bare_token)) {
            /* cg_await, or cg_sleep(0), in the body */
            d->token = r;
            if (stop_at_token) {
                if (cg_exc_current()) return;
                stop_at_token = 0;
            }
            continue;
        }
        if (st == CG_YIELDED) {
            if (d->op == OP_CLOSE) {
                ag->ignored_exit = 1;
                CG_RAISE(&cg_RuntimeError, "async generator ignored GeneratorExit");
            }
            d->yielded = 1;
            d->out = r;
            return;
        }
        if (st == CG_RAISED) {
            /* A StopAsyncIteration out of the body is a RuntimeError by
             * the time aclose() looks at it (agen_edge). */
            if (d->op == OP_CLOSE && cg_exc_is(err, &cg_GeneratorExit)) {
                cg_exc_unref(err);
                return;
            }
            cg_propagate(err); /* out of the body as it is (its context stays the body's) */
        }
        return;
    }
}

static void *drive_frame(cg_gen *g, void *p) {
    (void)g;
    drive(&((cg_agen *)p)->drv, 0);
    return NULL;
}

static void free_frame(void *g) { cg_free(g); }

static void not_running(void *p) { ((cg_agen *)p)->running = 0; }

/* Runs the body until it yields a value (returned, *yielded = 1) or ends
 * (*yielded = 0: returned, or raised, which propagates).
 *
 * Up to its first await the body runs straight from the caller's stack.
 * From there on, the driver runs in a frame of its own, a generator that
 * the calling one delegates to (the caller's stack size and flags), as
 * CPython's task coroutine awaits the anext() awaitable, which drives the
 * body, which awaits the future. What the loop throws into the task then
 * goes down that delegation: it is chained in the driver's frame, which
 * handles nothing, then in the body's own (G37, G66), and only on its way
 * out of anext, when the core hands it back up a delegation during a
 * throw, to what the caller handles (not to that before the body sees it,
 * as an await on the caller's own stack would). An await made there also
 * goes up through the caller, which may be an async generator's body in
 * turn. With no generator to delegate from (anext outside a task), or no
 * memory for the frame, the driver goes on where it is.
 *
 * Nor is the frame made when nothing is being handled where the step is
 * awaited, here or further up (the caller's frames, the loop's caller):
 * every chaining the frame puts in its place would then be to nothing, on
 * either path, and what is handled there cannot change until the step is
 * over. An anext outside an except block costs what it did. */
static void *step(cg_agen *ag, int op, void *val, cg_exc *exc, int *yielded) {
    cg_loop *loop = cg_get_running_loop();
    mark_started(ag, loop);
    ag->running = 1;
    CG_DEFER(not_running, ag);
    drive_t *d = &ag->drv;
    *d = (drive_t){ag, op, val, exc, NULL, NULL, 0};
    cg_gen *g = cg_current();
    drive(d, g != NULL);
    if (d->token) {
        cg_opts o = cg__frame_opts(g, op == OP_SEND ? "async_generator_asend" : "async_generator_athrow");
        cg_gen *frame = cg_new(drive_frame, ag, &o);
        if (frame) {
            CG_DEFER(free_frame, frame);
            cg_yield_from(g, frame);
        } else {
            drive(d, 0);
        }
    }
    *yielded = d->yielded;
    return d->out;
}

static cg_agen *check(cg_agen *ag, const char *op) {
    if (!ag) CG_RAISEF(&cg_TypeError, "%s() argument must be an async generator, not NULL", op);
    if (ag->running) CG_RAISEF(&cg_RuntimeError, "%s(): asynchronous generator is already running", op);
    return ag;
}

int cg_anext(cg_agen *ag, void **out) {
    check(ag, "anext");
    int yielded = 0;
    void *v = step(ag, OP_SEND, NULL, NULL, &yielded);
    if (out) *out = yielded ? v : NULL;
    return yielded;
}

void *cg_agen_anext(cg_agen *ag) {
    void *v = NULL;
    if (!cg_anext(ag, &v)) cg_raise(cg_exc_new(&cg_StopAsyncIteration, NULL));
    return v;
}

void *cg_asend(cg_agen *ag, void *value) {
    check(ag, "anext"); /* CPython's asend and __anext__ share one awaitable type, and its message */
    /* ag.asend(v) calls the firstiter hook before the TypeError comes. */
    mark_started(ag, cg_get_running_loop());
    if (value && cg_gen_state(ag->gen) == CG_GEN_CREATED)
        CG_RAISE(&cg_TypeError, "can't send non-None value to a just-started async generator");
    int yielded = 0;
    void *v = step(ag, OP_SEND, value, NULL, &yielded);
    if (!yielded) cg_raise(cg_exc_new(&cg_StopAsyncIteration, NULL));
    return v;
}

void *cg_athrow(cg_agen *ag, cg_exc *e) {
    if (!ag || ag->running) {
        cg_exc_unref(e);
        check(ag, "athrow");
    }
    if (!e) CG_RAISE(&cg_TypeError, "exceptions must be classes or instances deriving from BaseException, not NoneType");
    if (cg_gen_state(ag->gen) == CG_GEN_CLOSED) { /* 3.13: a finished one gives None */
        cg_exc_unref(e);
        return NULL;
    }
    if (ag->ignored_exit) { /* see cg_aclose */
        cg_exc_unref(e);
        cg_raise(cg_exc_new(&cg_StopAsyncIteration, NULL));
    }
    if (cg_gen_state(ag->gen) == CG_GEN_CREATED) { /* 3.13: raised as it is, the body never runs */
        mark_started(ag, cg_get_running_loop());
        cg_close(ag->gen, NULL, NULL);
        if (cg_exc_is(e, &cg_StopIteration)) {
            /* Out of the awaitable as it is, a StopIteration is its return:
             * Python's await gives the exception's value, which a cogen
             * exception does not carry (NULL). */
            cg_exc_unref(e);
            return NULL;
        }
        cg_propagate(e); /* not chained to what the caller handles */
    }
    int yielded = 0;
    void *v = step(ag, OP_THROW, NULL, e, &yielded);
    if (!yielded) cg_raise(cg_exc_new(&cg_StopAsyncIteration, NULL));
    return v;
}

void cg_aclose(cg_agen *ag) {
    check(ag, "aclose");
    cg_state s = cg_gen_state(ag->gen);
    if (s == CG_GEN_CLOSED) return;
    /* 3.13: once an aclose was ignored, the generator counts as closed for
     * athrow and aclose (ag_closed), though anext still resumes it. */
    if (ag->ignored_exit) cg_raise(cg_exc_new(&cg_StopAsyncIteration, NULL));
    if (s == CG_GEN_CREATED) {
        mark_started(ag, cg_get_running_loop());
        cg_close(ag->gen, NULL, NULL);
        return;
    }
    int yielded = 0;
    step(ag, OP_CLOSE, NULL, cg_exc_new(&cg_GeneratorExit, NULL), &yielded);
}

/* ---------------------------------------------------------------------
 * loop.shutdown_asyncgens(): every async generator whose iteration
 * started, finished ones too, in the order of that start, gets aclose()
 * awaited, each in a task of its own, gathered; an Exception out of one is
 * reported.
 * ------------------------------------------------------------------ */

/* One aclose() task: it holds a reference of its own, dropped however its
 * body ends (also when a loop freed while it is pending closes it); if the
 * body never begins, closing_release drops it. */
static void agen_drop(void *p) { cg_agen_free(p); }

static void *aclose_body(cg_gen *g, void *arg) {
    (void)g;
    ((cg_agen *)arg)->aclose_began = 1;
    CG_DEFER(agen_drop, arg);
    cg_aclose(arg);
    return NULL;
}

/* What the shutdown holds while it awaits the aclose() tasks: released
 * when it is done, when its task is closed before (a loop freed after a
 * deadlock in an aclose()), or when it runs out of memory half-way. */
typedef struct closing {
    cg_agen **ags;
    cg_task **tasks;
    size_t n, made;
    cg_future *outer;
} closing;

/* A task whose body has not begun is cancelled, so that it never begins,
 * and the reference its body would have dropped goes here. */
static void closing_release(void *p) {
    closing *c = p;
    if (c->outer) {
        cg__gather_all_abandon(c->outer, c->tasks, c->made);
        cg_future_unref(c->outer);
    }
    for (size_t i = 0; i < c->made; i++) {
        if (!c->ags[i]->aclose_began) {
            cg__task_cancel(c->tasks[i], NULL);
            cg_agen_free(c->ags[i]);
        }
        cg_future_unref(cg_task_future(c->tasks[i]));
    }
    for (size_t i = 0; i < c->n; i++) cg_agen_free(c->ags[i]);
    cg__dealloc(c->ags);
    cg__dealloc(c->tasks);
}

void cg__agen_shutdown(cg_loop *loop) {
    size_t n = 0;
    for (cg_agen *ag = loop->agens_head; ag; ag = ag->next) n++;
    if (!n) return;
    closing c = {cg__alloc(n * sizeof *c.ags), cg__alloc(n * sizeof *c.tasks), 0, 0, NULL};
    CG_DEFER(closing_release, &c);
    if (!c.ags || !c.tasks) cg_raise(cg_exc_new(&cg_MemoryError, NULL)); /* nothing changed */
    for (cg_agen *ag = loop->agens_head; ag; ag = ag->next) {
        ag->refs++;
        c.ags[c.n++] = ag;
    }
    for (size_t i = 0; i < n; i++) unlink_started(c.ags[i]);
    for (size_t i = 0; i < n; i++) {
        cg_task *t = cg_task_new(loop, aclose_body, c.ags[i], NULL);
        if (!t) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        c.ags[i]->refs++; /* the task's own (aclose_body) */
        c.ags[i]->aclose_began = 0;
        t->log_destroy_pending = 0; /* gather's own tasks are exempt */
        c.tasks[c.made++] = t;
    }
    c.outer = cg__gather_all(loop, c.tasks, n);
    cg_await(c.outer);
    for (size_t i = 0; i < n; i++) {
        cg_future *f = cg_task_future(c.tasks[i]);
        cg_exc *e = f->state == F_FINISHED ? f->exc : NULL;
        if (e && cg_exc_is(e, &cg_Exception)) {
            cg_loop_context ctx = {"an error occurred during closing of asynchronous generator", e, NULL, c.ags[i]};
            cg_loop_call_exception_handler(loop, &ctx);
        }
    }
}

void cg_shutdown_asyncgens(void) {
    cg_loop *loop = cg_get_running_loop();
    if (!cg_current_task()) CG_RAISE(&cg_RuntimeError, "cg_shutdown_asyncgens() called outside a task");
    cg__agen_shutdown(loop);
}
