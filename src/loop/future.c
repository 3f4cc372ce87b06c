/* future.c: asyncio.Future: a result or an exception some time later, and
 * done callbacks scheduled with call_soon, in registration order. The
 * messages are those of CPython's C Future (_asynciomodule.c). */
#include "loop/loop.h"

#include <errno.h>
#include <string.h>

const cg_exc_type cg_CancelledError = {"CancelledError", &cg_BaseException};
const cg_exc_type cg_InvalidStateError = {"InvalidStateError", &cg_Exception};

static cg_future *check(cg_future *f, const char *op) {
    if (!f) CG_RAISEF(&cg_TypeError, "%s() argument must be a Future, not NULL", op);
    return f;
}

cg_future *cg_future_new(cg_loop *loop) {
    if (!loop) {
        errno = EINVAL;
        return NULL;
    }
    cg_future *f = cg__freelist_take(&loop->future_cache);
    if (!f) f = cg__alloc(sizeof *f);
    if (!f) {
        errno = ENOMEM;
        return NULL;
    }
    *f = (cg_future){.refs = 1, .loop = loop}; /* stores, not a memset call */
    return f;
}

cg_future *cg_future_ref(cg_future *f) {
    if (f) f->refs++;
    return f;
}

/* (Each field tested here: a plain future that ended with a result holds
 * none of them, and three calls that find NULL were a tenth of a wake-up.) */
void cg__future_clear(cg_future *f) {
    if (f->exc) {
        cg_exc_unref(f->exc);
        f->exc = NULL;
    }
    if (f->cancel_msg) {
        cg__msg_unref(f->cancel_msg);
        f->cancel_msg = NULL;
    }
    if (f->cbs && f->cbs != &f->cb0) cg__dealloc(f->cbs);
    f->cbs = NULL;
    f->ncbs = f->cbs_cap = 0;
}

CG_HIDDEN void cg__task_free(cg_task *t);

/* The last reference gone (apart, so that dropping one of several costs
 * only the test). */
CG_NOINLINE void cg__future_free(cg_future *f) {
    if (f->is_task) {
        cg__task_free((cg_task *)f);
        return;
    }
    /* A plain future that holds nothing (one awaited for its result, the
     * common case) skips the tests for what it could hold, in one. */
    if (CG_UNLIKELY((uintptr_t)f->exc | (uintptr_t)f->cancel_msg | (uintptr_t)f->cbs | f->has_ops)) {
        if (f->state == F_FINISHED && f->exc && f->log_tb)
            cg__loop_report(f->loop, "Future exception was never retrieved", f->exc, f);
        const cg__future_ops *ops = cg__future_ops_of(f);
        if (ops && ops->fini) ops->fini(f);
        /* What it owns goes; the fields need no reset (cg_future_new sets
         * them all), and cg__future_clear's call is a tenth of a wake-up. */
        if (f->exc) cg_exc_unref(f->exc);
        if (f->cancel_msg) cg__msg_unref(f->cancel_msg);
        if (f->cbs && f->cbs != &f->cb0) cg__dealloc(f->cbs);
    }
    /* A plain future (cg_future_new's size) goes to the cache of the loop
     * running on this thread, if any (loop.c). It was made with the
     * allocator in force now (cg_set_allocator's contract: memory is freed
     * under the functions that made it), as cg__dealloc assumes too. */
    cg_loop *running = cg__running_loop;
    if (f->has_ops || !running || !cg__freelist_put(&running->future_cache, f, cg__alloc_generation())) cg__dealloc(f);
}

void cg_future_unref(cg_future *f) {
    if (f && --f->refs == 0) cg__future_free(f);
}

cg_loop *cg_future_loop(const cg_future *f) { return f ? f->loop : NULL; }
int cg_future_done(const cg_future *f) { return f && f->state != F_PENDING; }
int cg_future_cancelled(const cg_future *f) { return f && f->state == F_CANCELLED; }
/* Future._log_traceback, read without clearing it. */
int cg_future_unretrieved(const cg_future *f) { return f && f->state == F_FINISHED && f->exc && f->log_tb; }

cg_exc *cg__future_cancelled_error(cg_future *f) {
    cg_task *t = (cg_task *)f;
    if (f->is_task && f->state == F_CANCELLED && t->cancelled_exc) {
        cg_exc *e = t->cancelled_exc;
        t->cancelled_exc = NULL;
        return e;
    }
    return cg_exc_new(&cg_CancelledError, f->cancel_msg);
}

void *cg_future_result(cg_future *f) {
    check(f, "cg_future_result");
    if (f->state == F_CANCELLED) cg_raise(cg__future_cancelled_error(f));
    if (f->state != F_FINISHED) CG_RAISE(&cg_InvalidStateError, "Result is not set.");
    f->log_tb = 0;
    if (f->exc) cg_raise(cg_exc_ref(f->exc));
    return f->result;
}

cg_exc *cg_future_exception(cg_future *f) {
    check(f, "cg_future_exception");
    if (f->state == F_CANCELLED) cg_raise(cg__future_cancelled_error(f));
    if (f->state != F_FINISHED) CG_RAISE(&cg_InvalidStateError, "Exception is not set.");
    f->log_tb = 0;
    return f->exc;
}

/* Schedules every done callback, in order, as call_soon would: the
 * callbacks stay where they are and the future's own ready queue entry is
 * queued for them (loop.h says why that is call_soon's order), so that no
 * completion can fail for want of memory: a lost wake-up would leave a task
 * waiting forever. */
static inline void schedule_callbacks(cg_future *f) {
    if (!f->ncbs) {
        if (f->cbs != &f->cb0) cg__dealloc(f->cbs);
        f->cbs = NULL;
        f->cbs_cap = 0;
        return;
    }
    f->ready.kind = R_CALLBACKS;
    cg__fut_ref(f);
    cg__loop_ready_entry(f->loop, &f->ready);
}

void cg__future_schedule_callbacks(cg_future *f) { schedule_callbacks(f); }

/* A result, inline in the public call (a wake-up's set_result). */
static inline void set_result(cg_future *f, void *v) {
    f->result = v;
    f->state = F_FINISHED;
    schedule_callbacks(f);
}

void cg__future_set_result_plain(cg_future *f, void *v) { set_result(f, v); }

void cg__future_set_exception_plain(cg_future *f, cg_exc *e) {
    f->exc = e;
    f->state = F_FINISHED;
    f->log_tb = 1;
    cg__future_schedule_callbacks(f);
}

void cg_future_set_result(cg_future *f, void *result) {
    check(f, "cg_future_set_result");
    cg__check_thread(f->loop);
    if (f->is_task) CG_RAISE(&cg_RuntimeError, "Task does not support set_result operation");
    if (f->state != F_PENDING) CG_RAISE(&cg_InvalidStateError, "invalid state");
    set_result(f, result);
}

static void check_thread_fn(void *loop) { cg__check_thread(loop); }

void cg_future_set_exception(cg_future *f, cg_exc *e) {
    if (!f) {
        cg_exc_unref(e);
        check(f, "cg_future_set_exception");
    }
    if (CG_UNLIKELY(f->loop->debug)) {
        cg_exc *w = cg_try_catch(check_thread_fn, f->loop, &cg_RuntimeError);
        if (w) {
            cg_exc_unref(e);
            cg_raise(w);
        }
    }
    if (f->is_task) {
        cg_exc_unref(e);
        CG_RAISE(&cg_RuntimeError, "Task does not support set_exception operation");
    }
    if (f->state != F_PENDING) {
        cg_exc_unref(e);
        CG_RAISE(&cg_InvalidStateError, "invalid state");
    }
    if (!e) CG_RAISE(&cg_TypeError, "exception must be a BaseException, not None");
    if (cg_exc_is(e, &cg_StopIteration)) { /* as the C Future: replaced, not refused */
        cg_exc *rt = cg_exc_new(&cg_RuntimeError, "StopIteration interacts badly with generators and cannot be raised into a Future");
        cg_exc_set_cause(rt, e);
        cg_exc_unref(e);
        e = rt;
    }
    cg__future_set_exception_plain(f, e);
}

/* A shared message: its reference count is in front of the text. */
typedef union msg_head {
    long refs;
    max_align_t align;
} msg_head;

char *cg__msg_new(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    msg_head *h = cg__alloc(sizeof *h + n);
    if (!h) return NULL;
    h->refs = 1;
    memcpy(h + 1, s, n);
    return (char *)(h + 1);
}

char *cg__msg_ref(char *m) {
    if (m) ((msg_head *)m - 1)->refs++;
    return m;
}

void cg__msg_unref(char *m) {
    if (m && --((msg_head *)m - 1)->refs == 0) cg__dealloc((msg_head *)m - 1);
}

static void msg_unref_v(void *m) { cg__msg_unref(m); }

int cg__future_cancel_plain(cg_future *f, char *msg) {
    f->log_tb = 0;
    if (f->state != F_PENDING) return 0;
    f->state = F_CANCELLED;
    char *old = f->cancel_msg;
    f->cancel_msg = cg__msg_ref(msg); /* before the unref: a task ending cancelled passes its own */
    cg__msg_unref(old);
    cg__future_schedule_callbacks(f);
    return 1;
}

int cg__future_cancel(cg_future *f, char *msg) {
    if (f->is_task) return cg__task_cancel((cg_task *)f, msg);
    const cg__future_ops *ops = cg__future_ops_of(f);
    if (ops && ops->cancel) return ops->cancel(f, msg);
    return cg__future_cancel_plain(f, msg);
}

/* The message is made before anything changes: MemoryError leaves f as it
 * was. A future already done needs none. */
int cg_future_cancel(cg_future *f, const char *msg) {
    check(f, "cg_future_cancel");
    cg__check_thread(f->loop);
    if (f->state != F_PENDING) {
        f->log_tb = 0;
        return 0;
    }
    char *m = cg__msg_new(msg);
    if (msg && !m) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    /* Given back on the way out, also when a cancel round a cycle of
     * tasks raises RecursionError from deep inside. */
    CG_DEFER(m ? msg_unref_v : NULL, m);
    return cg__future_cancel(f, m);
}

int cg_future_add_done_callback(cg_future *f, cg_done_callback fn, void *arg) {
    check(f, "cg_future_add_done_callback");
    if (f->state != F_PENDING) {
        cg_handle *h = cg__loop_handle_new(f->loop);
        if (!h) {
            errno = ENOMEM;
            return -1;
        }
        h->ready.kind = R_DONE;
        h->done_fn = fn;
        h->arg = arg;
        h->fut = cg_future_ref(f);
        f->ready.nlate++;
        cg__loop_ready(f->loop, h);
        cg_handle_unref(h);
        return 0;
    }
    if (f->cbs_cap == 0) { /* the first: in the future itself */
        f->cbs = &f->cb0;
        f->cbs_cap = 1;
    } else if (f->ncbs == f->cbs_cap) {
        size_t cap = f->cbs_cap * 2;
        done_cb *n = cg__alloc(cap * sizeof *n);
        if (!n) {
            errno = ENOMEM;
            return -1;
        }
        if (f->ncbs) memcpy(n, f->cbs, f->ncbs * sizeof *n);
        if (f->cbs != &f->cb0) cg__dealloc(f->cbs);
        f->cbs = n;
        f->cbs_cap = cap;
    }
    f->cbs[f->ncbs++] = (done_cb){fn, arg};
    return 0;
}

size_t cg__future_forget_callback(cg_future *f, cg_done_callback fn, void *arg) {
    if (f->state == F_PENDING) return (size_t)cg_future_remove_done_callback(f, fn, arg);
    size_t n = 0;
    if (f->ready.queued && f->ready.kind == R_CALLBACKS) {
        for (size_t i = 0; i < f->ncbs; i++) {
            if (f->cbs[i].fn != fn || f->cbs[i].arg != arg) continue;
            f->cbs[i].fn = NULL; /* skipped when the others run */
            n++;
        }
    }
    /* Added once f was done: only while there are some is the loop sure
     * to be alive (f may outlive it). */
    for (cg__ready *r = f->ready.nlate ? f->loop->ready_head : NULL; r; r = r->next) {
        cg_handle *h = (cg_handle *)r;
        if (r->kind != R_DONE || h->cancelled || h->fut != f || h->done_fn != fn || h->arg != arg) continue;
        cg_handle_cancel(h);
        n++;
    }
    return n;
}

int cg_future_remove_done_callback(cg_future *f, cg_done_callback fn, void *arg) {
    check(f, "cg_future_remove_done_callback");
    if (f->state != F_PENDING) return 0; /* scheduled already: too late */
    size_t j = 0, removed = 0;
    for (size_t i = 0; i < f->ncbs; i++) {
        if (f->cbs[i].fn == fn && f->cbs[i].arg == arg)
            removed++;
        else
            f->cbs[j++] = f->cbs[i];
    }
    f->ncbs = j;
    return (int)removed;
}
