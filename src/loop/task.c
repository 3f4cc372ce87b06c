/* task.c: asyncio.Task on cogen generators, and asyncio.run.
 *
 * A task's step (Task.__step) resumes its generator: with a send, or with a
 * throw of the exception it is to see (a cancellation, or the exception of
 * the future it awaited). The generator answers by returning (the task's
 * result), raising (its exception; a CancelledError makes it cancelled), or
 * yielding: the await token (cg_await has put the future it waits for in
 * task->awaiting), NULL (a bare yield: step again next iteration), or
 * anything else (a bad yield: RuntimeError thrown in at the next step).
 */
#define _GNU_SOURCE /* syscall(SYS_gettid), flockfile */
#include "loop/loop.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

char cg__await_token;


static char *task_cancel_msg_take(cg_task *t);

/* The task's own cancel message (Task._cancel_message) is its future's
 * cancel_msg, one attribute as in CPython, where Task inherits Future's
 * _cancel_message: Task.cancel sets it while the task is pending, and the
 * task's end (Future.cancel) sets it again. Shared (cg__msg_new). Keeping
 * it apart cost a task 16 bytes of malloc chunk. */
#define TASK_CANCEL_MSG(t) ((t)->fut.cancel_msg)

/* What a suspended task costs is mostly this struct's malloc chunk beside
 * its stack: keep it within 184 bytes (a 192-byte chunk) on 64-bit
 * targets. */
_Static_assert(sizeof(void *) != 8 || sizeof(cg_task) <= 184, "cg_task outgrew its 192-byte malloc chunk");

/* A task's wait word with this bit is its sleep's timer (cg_sleep: the
 * task's slot in the loop's heap, or its queued wake-up); with
 * CG__WAIT_FD, the fd it waits on (io.c); with neither, the future it
 * awaits (loop.h). */
#define WAIT_TIMER CG__WAIT_TIMER

/* The task stops waiting on its fd or its sleep's timer (the caller steps
 * it, or drops it). */
static void wait_cancel(cg_task *t) {
    if (t->fut.task_wait & WAIT_TIMER) {
        cg__loop_sleep_disarm(t);
        return;
    }
    cg__io_cancel_wait(t);
}

/* ---------------------------------------------------------------------
 * Creation and end
 * ------------------------------------------------------------------ */

static void loop_link(cg_loop *loop, cg_task *t) {
    loop->ntasks++;
    t->all_prev = loop->tasks_tail;
    t->all_next = NULL;
    if (loop->tasks_tail)
        loop->tasks_tail->all_next = t;
    else
        loop->tasks_head = t;
    loop->tasks_tail = t;
}

static void loop_unlink(cg_loop *loop, cg_task *t) {
    if (t->all_prev)
        t->all_prev->all_next = t->all_next;
    else if (loop->tasks_head == t)
        loop->tasks_head = t->all_next;
    else
        return; /* not linked */
    loop->ntasks--;
    if (t->all_next)
        t->all_next->all_prev = t->all_prev;
    else
        loop->tasks_tail = t->all_prev;
    t->all_next = t->all_prev = NULL;
}

/* 'Task-N', in buf when it fits (16 bytes: N up to 10 digits), else
 * allocated (NULL when out of memory). By hand: snprintf cost a quarter of
 * a task's creation. */
static char *task_default_name(unsigned long n, char *buf) {
    /* Two digits per division, from a table of "00".."99". */
    static const char pairs[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                                   "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                                   "8081828384858687888990919293949596979899";
    char digits[24], *d = digits + sizeof digits;
    for (; n >= 100; n /= 100) {
        d -= 2;
        memcpy(d, pairs + 2 * (n % 100), 2);
    }
    if (n >= 10) {
        d -= 2;
        memcpy(d, pairs + 2 * n, 2);
    } else {
        *--d = (char)('0' + n);
    }
    size_t nd = (size_t)(digits + sizeof digits - d);
    char *name = 5 + nd + 1 <= sizeof ((cg_task *)0)->name.buf ? buf : cg__alloc(5 + nd + 1);
    if (!name) return NULL;
    memcpy(name, "Task-", 5);
    memcpy(name + 5, d, nd);
    name[5 + nd] = 0;
    return name;
}

cg_task *cg_task_new(cg_loop *loop, cg_fn body, void *arg, const cg_task_opts *opts) {
    if (!loop || !body) {
        errno = EINVAL;
        return NULL;
    }
    cg__check_thread(loop);
    cg_task *t = cg__alloc(sizeof *t);
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    memset(t, 0, sizeof *t);
    t->fut.refs = 1;
    t->fut.loop = loop;
    t->fut.is_task = 1;
    char *name = opts && opts->name ? cg__strdup(opts->name) : task_default_name(++loop->unnamed, t->name.buf);
    if (name != t->name.buf) {
        t->name.ptr = name;
        t->name_heap = 1;
    }
    cg_opts go = {opts ? opts->stack_size : 0, name, opts ? opts->gen_flags : 0};
    t->gen = name ? cg_new(body, arg, &go) : NULL;
    if (!t->gen) {
        int err = name ? errno : ENOMEM;
        if (t->name_heap) cg__dealloc(name);
        cg__dealloc(t);
        errno = err;
        return NULL;
    }
    if (cg__tracing()) cg__gen_untraced(t->gen); /* its steps are recorded as steps */
    t->log_destroy_pending = 1;
    t->serial = ++loop->task_serial;
    t->new_site = cg__site; /* where the public macro was called */
    t->parent = loop->current ? loop->current->serial : 0;
    loop_link(loop, t);
    cg_future_ref(&t->fut); /* the loop's, until the task is done */
    cg__task_schedule_step(t, NULL);
    return t;
}

cg_task *cg_create_task(cg_fn body, void *arg, const char *name) {
    cg_loop *loop = cg_get_running_loop();
    cg_task_opts o = {name, 0, 0};
    cg_task *t = cg_task_new(loop, body, arg, &o);
    if (!t) {
        if (errno == ENOMEM) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        CG_RAISE(&cg_TypeError, "a coroutine was expected, got NULL");
    }
    return t;
}

const char *cg_task_name(const cg_task *t) { return t ? cg__task_name(t) : NULL; }
cg_gen *cg_task_gen(const cg_task *t) { return t ? t->gen : NULL; }

static char *task_cancel_msg_take(cg_task *t) {
    char *m = TASK_CANCEL_MSG(t);
    TASK_CANCEL_MSG(t) = NULL;
    return m;
}

/* Future._make_cancelled_error as gather calls it on its last child when
 * the gather was cancelled: for a task that did not end cancelled (it
 * raised or returned), Task._cancel_message is the message of the cancel
 * request it got, which the task keeps. */
cg_exc *cg__future_make_cancelled_error(cg_future *f) {
    if (f->is_task && f->state != F_CANCELLED)
        return cg_exc_new(&cg_CancelledError, TASK_CANCEL_MSG((cg_task *)f));
    return cg__future_cancelled_error(f);
}

/* The task is done: the loop lets go of it. */
static void task_done(cg_task *t) {
    if (t->gen) {
        cg_free(t->gen);
        t->gen = NULL;
    }
    loop_unlink(t->fut.loop, t);
    cg_future_unref(&t->fut); /* the loop's reference */
}

void cg__task_free(cg_task *t) {
    cg_loop *loop = t->fut.loop;
    if (t->fut.state == F_FINISHED && t->fut.exc && t->fut.log_tb)
        cg__loop_report(loop, "Task exception was never retrieved", t->fut.exc, &t->fut);
    if (t->gen) {
        cg_gen *g = t->gen;
        t->gen = NULL;
        cg_free(g);
    }
    if (t->fut.state == F_PENDING && cg__task_waiter(t)) cg_future_unref(cg__task_waiter(t));
    if (t->fut.state == F_CANCELLED) cg_exc_unref(t->cancelled_exc);
    cg_exc_unref(t->step_exc);
    cg__future_clear(&t->fut); /* and the cancel message */
    if (t->name_heap) cg__dealloc(t->name.ptr);
    cg__dealloc(t);
}

/* Loop close: every task still pending is dropped, reported as asyncio
 * reports a pending task that is destroyed. */
void cg__task_finalize_all(cg_loop *loop) {
    /* Wake-ups already scheduled (with the callbacks of the future that
     * completed) will never run: the reference each holds on its task goes
     * now (dropping the callbacks would not release it). */
    for (cg__ready *r = loop->ready_head; r; r = r->next) {
        if (r->kind != R_CALLBACKS) continue;
        cg_future *f = (cg_future *)((char *)r - offsetof(cg_future, ready));
        for (size_t i = 0; i < f->ncbs; i++) {
            if (f->cbs[i].fn != cg__task_wakeup) continue;
            f->cbs[i].fn = NULL; /* skipped */
            cg_future_unref(&((cg_task *)f->cbs[i].arg)->fut);
        }
    }
    while (loop->tasks_head) {
        cg_task *t = loop->tasks_head;
        loop_unlink(loop, t);
        cg_future_ref(&t->fut);
        if (t->log_destroy_pending) cg__loop_report(loop, "Task was destroyed but it is pending!", NULL, &t->fut);
        if (loop->debug && !t->started) {
            if (t->new_site)
                fprintf(stderr, "cogen: task '%s' was created at %s but never started\n", cg__task_name(t),
                        t->new_site);
            else
                fprintf(stderr, "cogen: task '%s' was created but never started\n", cg__task_name(t));
        }
        cg_future *w = cg__task_waiter(t);
        if (w && cg_future_remove_done_callback(w, cg__task_wakeup, t) > 0)
            cg_future_unref(&t->fut); /* the wake-up's */
        if (w) { /* tasks awaiting each other hold each other */
            t->fut.task_wait = 0;
            cg_future_unref(w);
        }
        wait_cancel(t);
        cg_gen *g = t->gen;
        t->gen = NULL;
        cg_free(g); /* closes it: its cleanups run, outside the loop */
        cg_future_unref(&t->fut); /* the loop's */
        cg_future_unref(&t->fut);
    }
}

/* ---------------------------------------------------------------------
 * The step
 * ------------------------------------------------------------------ */

/* The task ends cancelled; err (owned, or NULL) is the CancelledError it
 * raised, handed to the first awaiter. */
static void set_cancelled(cg_task *t, char *msg, cg_exc *err) {
    t->cancelled_exc = err; /* in await_obj's place, from now on */
    cg__future_cancel_plain(&t->fut, msg);
    task_done(t);
}

/* The step's cold paths, out of line so that the common step (a bare
 * yield, an await) sets up a small frame: a step scheduled for a task
 * already done is reported (Task.__step's assertion)... */
static CG_NOINLINE void step_already_done(cg_task *t, cg_exc *exc) {
    cg_exc_unref(exc);
    char msg[200];
    snprintf(msg, sizeof msg, "_step(): already done: <Task %s name='%s'>",
             t->fut.state == F_CANCELLED ? "cancelled" : "finished", cg__task_name(t));
    cg__loop_report(t->fut.loop, "Exception in callback", cg_exc_new(&cg_InvalidStateError, msg), NULL);
}

/* ... a pending cancellation becomes the exception thrown in ... */
static CG_NOINLINE cg_exc *step_must_cancel(cg_task *t, cg_exc *exc) {
    if (!cg_exc_is(exc, &cg_CancelledError)) {
        cg_exc_unref(exc);
        char *m = task_cancel_msg_take(t);
        exc = cg_exc_new(&cg_CancelledError, m);
        TASK_CANCEL_MSG(t) = m;
    }
    t->must_cancel = 0;
    return exc;
}

/* ... and the body's end: its result, or its exception. */
static CG_NOINLINE void step_ended(cg_task *t, cg_status st, void *r, cg_exc *err) {
    if (st == CG_RETURNED) {
        if (t->must_cancel) {
            t->must_cancel = 0;
            set_cancelled(t, TASK_CANCEL_MSG(t), NULL);
        } else {
            cg__future_set_result_plain(&t->fut, r);
            task_done(t);
        }
    } else if (cg_exc_is(err, &cg_CancelledError)) {
        set_cancelled(t, NULL, err);
    } else {
        cg__future_set_exception_plain(&t->fut, err);
        task_done(t);
    }
}

/* The body yielded the await token: the task waits on t->awaiting. */
static void step_await(cg_task *t, cg_loop *loop) {
    cg_future *f = t->awaiting;
    t->awaiting = NULL;
    if (f->loop != loop) {
        cg__task_schedule_step(t, cg_exc_newf(&cg_RuntimeError, "Task <Task pending name='%s'> got Future <Future pending> attached to a different loop", cg__task_name(t)));
    } else if (f == &t->fut) {
        cg__task_schedule_step(t, cg_exc_newf(&cg_RuntimeError, "Task cannot await on itself: <Task pending name='%s'>", cg__task_name(t)));
    } else {
        cg__fut_ref(&t->fut); /* the wake-up's */
        if (f->cbs_cap == 0 && f->state == F_PENDING) { /* its first callback, in the future (as add_done_callback) */
            f->cbs = &f->cb0;
            f->cbs_cap = f->ncbs = 1;
            f->cb0 = (done_cb){cg__task_wakeup, t};
        } else if (cg_future_add_done_callback(f, cg__task_wakeup, t) < 0) {
            cg_future_unref(&t->fut);
            cg__task_schedule_step(t, cg_exc_new(&cg_MemoryError, NULL));
            return;
        }
        t->fut.task_wait = (uintptr_t)cg__fut_ref(f);
        if (t->must_cancel && cg__future_cancel(f, TASK_CANCEL_MSG(t))) t->must_cancel = 0;
    }
}

/* The body yielded the I/O token: an fd's waiter (io.c) or a sleep's
 * timer (sleep_on_timer): its edge or its timer steps the task; a
 * cancellation that came during the step stops the wait at once. */
static CG_NOINLINE void step_io(cg_task *t) {
    if (t->must_cancel && (t->fut.task_wait & WAIT_TIMER)) {
        /* a sleep: its future would be cancelled with the message and
         * the request consumed (must_cancel cleared), so that a later
         * cancel() does not replace the message thrown in */
        wait_cancel(t);
        t->must_cancel = 0;
        cg__task_schedule_step(t, cg_exc_new(&cg_CancelledError, TASK_CANCEL_MSG(t)));
    } else if (t->must_cancel && cg__task_sync_waiting(t)) { /* a waiter in a deque (sync.h): as a sleep */
        cg__sync_cancel_wait(t);
        t->must_cancel = 0;
        cg__task_schedule_step(t, cg_exc_new(&cg_CancelledError, TASK_CANCEL_MSG(t)));
    } else if (t->must_cancel) {
        wait_cancel(t);
        cg__task_schedule_step(t, NULL);
    }
}

void cg__task_step(cg_task *t, cg_exc *exc) {
    if (CG_UNLIKELY(t->fut.state != F_PENDING)) {
        step_already_done(t, exc);
        return;
    }
    if (CG_UNLIKELY(t->must_cancel)) exc = step_must_cancel(t, exc);
    cg_loop *loop = t->fut.loop;
    cg_future *waited = cg__task_waiter(t);
    if (waited) { /* the future it awaited (its wake-up steps it) */
        t->fut.task_wait = 0;
        cg__fut_unref(waited);
    }
    loop->current = t;
    loop->n_steps++;
    t->started = 1;
    cg__site = NULL; /* a site is the task's own, from this step */
    void *r = NULL;
    cg_exc *err = NULL;
    cg_ns t0 = cg__tracing() ? cg__trace_now() : 0;
    cg_status st = exc ? cg_throw(t->gen, exc, &r, &err) : cg_send(t->gen, NULL, &r, &err);
    loop->current = NULL;
    if (CG_UNLIKELY(loop->timeout_lazy != NULL)) cg__timeout_flush(loop, t);
    if (t0) cg__trace_step(t, t0, st, r);
    if (CG_UNLIKELY(st != CG_YIELDED))
        step_ended(t, st, r, err);
    else if (r == NULL)
        cg__task_schedule_step(t, NULL); /* a bare yield: one turn */
    else if (r == &cg__await_token)
        step_await(t, loop);
    else if (r == &cg__io_token)
        step_io(t);
    else
        cg__task_schedule_step(t, cg_exc_newf(&cg_RuntimeError, "Task got bad yield: %p", r));
}

void cg__task_wakeup(cg_future *f, void *arg) { cg__task_wake(f, arg); }

/* ---------------------------------------------------------------------
 * Cancellation
 * ------------------------------------------------------------------ */

/* Task.cancel() passes the request on to the future the task awaits: a
 * task it joins, which passes it on, or a gather, which passes it to each
 * child. Around a cycle of tasks awaiting each other that never ends:
 * CPython stops at its recursion limit with RecursionError, and so does
 * this, CANCEL_DEPTH_MAX requests deep, instead of overflowing the stack.
 * Nothing between the nested calls catches, so the exception always
 * unwinds past the outermost one: the count starts again from 0. */
#define CANCEL_DEPTH_MAX 500
static __thread int cancel_depth;

int cg__task_cancel(cg_task *t, char *msg) {
    t->fut.log_tb = 0;
    if (t->fut.state != F_PENDING) return 0;
    t->num_cancels++;
    if (cg__task_waiter(t)) {
        if (cancel_depth >= CANCEL_DEPTH_MAX) {
            cancel_depth = 0;
            CG_RAISE(&cg_RecursionError, "maximum recursion depth exceeded");
        }
        cancel_depth++;
        int passed = cg__future_cancel(cg__task_waiter(t), msg);
        cancel_depth--;
        if (passed) return 1;
    }
    if (t->fut.task_wait & WAIT_TIMER) { /* asleep: as if its sleep's future were cancelled */
        wait_cancel(t);
        cg__task_schedule_step(t, cg_exc_new(&cg_CancelledError, msg));
        return 1;
    }
    if (cg__task_sync_waiting(t)) { /* a waiter in a deque (sync.h): as if its future were cancelled */
        cg__sync_cancel_wait(t);
        cg__task_schedule_step(t, cg_exc_new(&cg_CancelledError, msg));
        return 1;
    }
    t->must_cancel = 1;
    char *old = TASK_CANCEL_MSG(t);
    TASK_CANCEL_MSG(t) = cg__msg_ref(msg); /* before the unref: msg may be old */
    cg__msg_unref(old);
    if (t->fut.task_wait & CG__WAIT_FD) { /* waiting on an fd: the step throws CancelledError in */
        wait_cancel(t);
        cg__task_schedule_step(t, NULL);
    }
    return 1;
}

/* cg_future_cancel makes the message and comes back to cg__task_cancel. */
int cg_task_cancel(cg_task *t, const char *msg) {
    if (!t) CG_RAISE(&cg_TypeError, "cg_task_cancel() argument must be a Task, not NULL");
    return cg_future_cancel(&t->fut, msg);
}

int cg_task_cancelling(const cg_task *t) { return t ? t->num_cancels : 0; }

int cg_task_uncancel(cg_task *t) {
    if (!t) return 0;
    if (t->num_cancels > 0) {
        t->num_cancels--;
        if (t->num_cancels == 0) t->must_cancel = 0;
    }
    return t->num_cancels;
}

/* ---------------------------------------------------------------------
 * Awaiting, sleeping
 * ------------------------------------------------------------------ */

/* The task running now, and checks that the caller is on its stack: the
 * task's generator or one it delegates to (yield from) must be the one
 * running. */
static cg_task *running_task(const char *op) {
    cg_loop *loop = cg__running_loop;
    cg_task *t = loop ? loop->current : NULL;
    if (!t) CG_RAISEF(&cg_RuntimeError, "%s() called outside a task", op);
    cg_gen *cur = cg_current(), *g = t->gen;
    while (g && g != cur) g = cg_gen_yieldfrom(g);
    if (!g) CG_RAISEF(&cg_RuntimeError, "%s() called in a generator the task does not delegate to", op);
    return t;
}

/* cg_current() without the call, for the await and sleep paths: the
 * thread's running context's generator (NULL on the thread's own stack,
 * or before the thread's first generator call). */
static inline cg_gen *current_gen(void) { return cg__t.cur ? cg__t.cur->gen : NULL; }

/* The running task, when the code that awaits is its own body: no async
 * generator's body runs and the running generator is the task's (not one
 * it delegates to). The common case, which running_task and
 * cg__agen_context would answer alike, in three loads instead of their
 * calls (a fifth of a sleep(0) step's instructions); NULL: ask them. */
static inline cg_task *task_body_running(cg_gen *cur) {
    cg_loop *loop = cg__running_loop;
    cg_task *t = loop ? loop->current : NULL;
    return t && t->gen == cur && !cg__agen_running ? t : NULL;
}

__thread const char *cg__site;

/* The running task records the call site of the wait it makes. */
static inline void note_site(void) {
    cg_loop *loop = cg__running_loop;
    cg_task *t = loop ? loop->current : NULL;
    if (t) t->await_site = cg__site;
}

void *cg_await(cg_future *f) {
    cg_gen *cur = current_gen();
    struct cg_agen *ag = NULL;
    cg_task *t = task_body_running(cur);
    int in_agen = t ? 0 : cg__agen_context(&ag);
    if (!t && !in_agen) t = running_task("cg_await");
    if (!f) CG_RAISE(&cg_TypeError, "object NoneType can't be used in 'await' expression");
    if (f->state == F_PENDING) {
        if (in_agen) {
            cg__agen_set_awaiting(ag, f);
            note_site();
        } else { /* t is the loop's current task: note_site's, known */
            t->awaiting = f;
            t->await_site = cg__site;
        }
        cg_yield(cur, &cg__await_token);
        if (f->state == F_PENDING) CG_RAISE(&cg_RuntimeError, "await wasn't used with future");
    }
    if (f->state == F_FINISHED && !f->exc) { /* a result: cg_future_result's case without the call */
        f->log_tb = 0;
        return f->result;
    }
    return cg_future_result(f);
}

static void await_fn(void *f) { cg_await(f); }

/* cg_await for the loop's own primitives (sync.c, queue.c), which must
 * clean up after any outcome: the exception the await would raise is
 * returned instead (NULL: f has a result), so that they need no try block
 * (a setjmp and its records were a quarter of a queue hand-off). The
 * task's own body yields with cg_yield_catch; anything else is cg_await
 * inside a try, as before. */
cg_exc *cg__await_catch(cg_future *f) {
    cg_gen *cur = current_gen();
    cg_task *t = task_body_running(cur);
    if (!t || !f) return cg_try_catch(await_fn, f, &cg_BaseException);
    if (f->state == F_PENDING) {
        t->awaiting = f;
        t->await_site = cg__site; /* note_site(), t being the current task */
        cg_exc *e = cg_yield_catch(cur, &cg__await_token, NULL);
        if (e) return e;
        if (f->state == F_PENDING) return cg_exc_new(&cg_RuntimeError, "await wasn't used with future");
    }
    if (f->state == F_CANCELLED) return cg__future_cancelled_error(f);
    f->log_tb = 0;
    return f->exc ? cg_exc_ref(f->exc) : NULL;
}

static void set_result_unless_cancelled(void *arg) {
    cg_future *f = arg;
    if (f->state == F_CANCELLED) return;
    cg_future_set_result(f, NULL);
}

typedef struct sleep_rec {
    cg_future *f;
    cg_handle *h;
} sleep_rec;

static void sleep_cleanup(void *p) {
    sleep_rec *s = p;
    cg__await_done(s->h);
    cg_handle_cancel(s->h);
    cg_handle_unref(s->h);
    cg_future_unref(s->f);
}

/* asyncio.sleep's future and its timer in one, for the task's own body
 * (the common case): the task is its own timer, in the loop's heap (its
 * wait word the slot's index, tagged WAIT_TIMER), and when it comes up the
 * task's own ready entry (R_WAKE) does what the timer handle's callback
 * did, where it would have run: it schedules the step (loop.c). A
 * cancellation takes the task out of the heap (or its wake-up out of the
 * ready queue) and steps it with CancelledError(msg), which is what
 * cancelling the sleep's future would do (Task.cancel passes msg to the
 * future, whose wake-up throws it in); nothing else could see the future.
 * So a sleep allocates nothing: neither the future (112 bytes) nor the
 * timer handle (80). */
static CG_NOINLINE void sleep_on_timer(cg_task *t, cg_gen *cur, cg_ns delay) {
    cg_loop *loop = t->fut.loop;
    if (cg__loop_sleep_arm(loop, t, cg__loop_now(loop) + delay) < 0) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    t->await_obj = CG__AW_SLEEP;
    note_site();
    cg_exc *e = cg_yield_catch(cur, &cg__io_token, NULL); /* the timer or a cancellation steps it */
    t->await_obj = 0;
    if (CG_UNLIKELY(t->fut.task_wait & WAIT_TIMER)) wait_cancel(t); /* (resumed otherwise: not by the loop) */
    if (e) cg_raise(e);
}

static CG_NOINLINE void sleep_slow(cg_ns delay) {
    cg_gen *cur = current_gen();
    struct cg_agen *ag = NULL;
    cg_task *direct = task_body_running(cur);
    int in_agen = direct ? 0 : cg__agen_context(&ag);
    if (!direct && !in_agen) running_task("cg_sleep");
    cg_loop *loop = cg__running_loop;
    if (delay <= 0) {
        cg_yield(cur, in_agen ? (void *)&cg__bare_token : NULL);
        return;
    }
    if (direct) {
        sleep_on_timer(direct, cur, delay);
        return;
    }
    sleep_rec s = {cg_future_new(loop), NULL};
    if (!s.f) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    s.h = cg_loop_call_later(loop, delay, set_result_unless_cancelled, s.f);
    if (!s.h) {
        cg_future_unref(s.f);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    CG_DEFER(sleep_cleanup, &s);
    cg__await_note(CG__AW_SLEEP, s.h);
    cg_await(s.f);
}

/* In the task's own body, the common case, sleep(0) is a bare yield and
 * a sleep waits on its timer, each a tail call: no frame to set up for
 * the rest (a fifth of a sleep(0) step's instructions were cg_sleep's),
 * and none left on the stack while the task sleeps (in compact mode, what
 * a sleeping task keeps is its stack's used bytes). */
void cg_sleep(cg_ns delay) {
    cg_gen *cur = current_gen();
    cg_task *t = task_body_running(cur);
    if (!t) {
        sleep_slow(delay);
        return;
    }
    if (delay <= 0) {
        cg_yield(cur, NULL);
        return;
    }
    sleep_on_timer(t, cur, delay);
}

cg_task **cg_all_tasks(cg_loop *loop, size_t *n) {
    if (!loop) loop = cg_get_running_loop();
    size_t k = 0;
    for (cg_task *t = loop->tasks_head; t; t = t->all_next)
        if (t->fut.state == F_PENDING) k++;
    *n = 0;
    if (!k) return NULL;
    cg_task **v = cg__alloc(k * sizeof *v);
    if (!v) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    for (cg_task *t = loop->tasks_head; t; t = t->all_next)
        if (t->fut.state == F_PENDING) v[(*n)++] = (cg_task *)cg_future_ref(&t->fut);
    return v;
}

void cg_all_tasks_free(cg_task **v, size_t n) {
    for (size_t i = 0; i < n; i++) cg_future_unref(&v[i]->fut);
    cg__dealloc(v);
}

/* ---------------------------------------------------------------------
 * asyncio.run
 * ------------------------------------------------------------------ */

/* gather(*tasks, return_exceptions=True) as Runner.close and
 * shutdown_asyncgens use it: a future done when every task is, their
 * exceptions retrieved on the way (fut.exception()). */
typedef struct gather_all {
    cg_future *outer;
    size_t left;
} gather_all;

static void gather_one(cg_future *f, void *arg) {
    gather_all *g = arg;
    if (f->state == F_FINISHED) f->log_tb = 0; /* fut.exception() */
    if (--g->left == 0) {
        if (g->outer->state == F_PENDING) cg__future_set_result_plain(g->outer, NULL);
        cg_future_unref(g->outer);
        cg__dealloc(g);
    }
}

static CG_NORETURN void no_memory(void) { cg_raise(cg_exc_new(&cg_MemoryError, NULL)); }

cg_future *cg__gather_all(cg_loop *loop, cg_task **v, size_t n) {
    gather_all *g = cg__alloc(sizeof *g);
    cg_future *outer = cg_future_new(loop);
    if (!g || !outer) {
        cg__dealloc(g);
        cg_future_unref(outer);
        no_memory();
    }
    *g = (gather_all){outer, 1}; /* 1: until every callback is in place */
    for (size_t i = 0; i < n; i++) {
        cg_future *f = &v[i]->fut;
        if (f->state != F_PENDING) { /* done already: counted at once */
            if (f->state == F_FINISHED) f->log_tb = 0;
            continue;
        }
        if (cg_future_add_done_callback(f, gather_one, g) < 0) {
            while (i-- > 0) cg_future_remove_done_callback(&v[i]->fut, gather_one, g);
            cg_future_unref(outer);
            cg__dealloc(g);
            no_memory();
        }
        g->left++;
    }
    cg_future_ref(outer);
    gather_one(outer, g); /* the 1 above: outer is pending, nothing retrieved */
    return outer;
}

/* Its waiter gives up before the future is done: the callbacks still on
 * the tasks of v go, scheduled ones too, and with them the state. */
void cg__gather_all_abandon(cg_future *outer, cg_task **v, size_t n) {
    if (outer->state != F_PENDING) return; /* done: gather_one freed its state */
    gather_all *g = NULL;
    for (size_t i = 0; i < n && !g; i++)
        for (size_t k = 0; k < v[i]->fut.ncbs && !g; k++)
            if (v[i]->fut.cbs[k].fn == gather_one) g = v[i]->fut.cbs[k].arg;
    if (!g) return;
    for (size_t i = 0; i < n; i++) cg__future_forget_callback(&v[i]->fut, gather_one, g);
    cg_future_unref(g->outer);
    cg__dealloc(g);
}

typedef struct cancel_rec {
    cg_task **v;
    size_t n;
    cg_future *outer;
} cancel_rec;

static void cancel_rec_drop(void *p) {
    cancel_rec *c = p;
    cg_all_tasks_free(c->v, c->n);
    cg_future_unref(c->outer);
}

/* Runner.close's _cancel_all_tasks. NULL, or what stopped the loop before
 * every task was done (a virtual clock's deadlock: a task that never
 * finishes), a new reference: asyncio.run raises it instead of the main
 * task's outcome, and the rest of Runner.close is skipped. MemoryError is
 * raised. */
static cg_exc *cancel_all(cg_loop *loop) {
    cancel_rec c = {NULL, 0, NULL};
    c.v = cg_all_tasks(loop, &c.n);
    if (!c.n) return NULL;
    CG_DEFER(cancel_rec_drop, &c);
    for (size_t i = 0; i < c.n; i++) cg_task_cancel(c.v[i], NULL);
    c.outer = cg__gather_all(loop, c.v, c.n);
    cg_exc *stuck = NULL;
    if (cg_loop_run_until_complete(loop, c.outer, NULL, &stuck) == CG_RAISED)
        cg__gather_all_abandon(c.outer, c.v, c.n);
    /* When stuck, no report: asyncio's loop over the tasks is not reached. */
    for (size_t i = 0; i < c.n && !stuck; i++) {
        cg_task *t = c.v[i];
        if (t->fut.state == F_FINISHED && t->fut.exc) {
            t->fut.log_tb = 0;
            cg__loop_report(loop, "unhandled exception during asyncio.run() shutdown", t->fut.exc, &t->fut);
        }
    }
    return stuck;
}

/* loop.shutdown_default_executor(): what higher layers attached to the
 * loop shut down (the default executor waits for its jobs, awaiting). */
static void *shutdown_exts(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    for (cg__loop_ext *x = loop->exts; x; x = x->next)
        if (x->shutdown) x->shutdown(x);
    return NULL;
}

/* A step of the shutdown that runs as a task of its own, as asyncio's
 * shutdown_asyncgens and shutdown_default_executor do (they take Task-N
 * names). */
static void *shutdown_asyncgens(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg__agen_shutdown(cg_get_running_loop());
    return NULL;
}

/* Runs one shutdown step; a MemoryError of the step is raised, as
 * run_until_complete raises what the coroutine raised. */
static void shutdown_task(cg_loop *loop, cg_fn body) {
    cg_task *t = cg_task_new(loop, body, NULL, NULL);
    if (!t) no_memory();
    cg_exc *e = NULL;
    cg_status st = cg_loop_run_until_complete(loop, &t->fut, NULL, &e);
    cg_future_unref(&t->fut);
    if (st == CG_RAISED && cg_exc_is(e, &cg_MemoryError)) cg_raise(e);
    cg_exc_unref(e);
}

/* Runner.close before loop.close(): what stops it (MemoryError raised, or
 * the deadlock of a task that never finishes, in *stuck) ends the shutdown
 * there, as in asyncio. */
typedef struct shutdown_rec {
    cg_loop *loop;
    cg_exc *stuck;
} shutdown_rec;

static void run_shutdown(void *p) {
    shutdown_rec *r = p;
    r->stuck = cancel_all(r->loop);
    if (r->stuck) return;
    shutdown_task(r->loop, shutdown_asyncgens); /* loop.shutdown_asyncgens() */
    shutdown_task(r->loop, shutdown_exts); /* loop.shutdown_default_executor() */
}

/* asyncio.run's outcome: *out and *exc (either may be NULL) from st, v, e
 * (e owned). */
static cg_status run_outcome(cg_status st, void *v, cg_exc *e, void **out, cg_exc **exc) {
    if (out) *out = st == CG_RETURNED ? v : NULL;
    if (exc)
        *exc = e;
    else
        cg_exc_unref(e);
    return st;
}

/* ---------------------------------------------------------------------
 * Ctrl-C (asyncio.Runner._on_sigint)
 * ------------------------------------------------------------------ */

/* The loop of the cg_run that handles SIGINT now (one at a time: only the
 * main thread's, as asyncio's). */
static cg_loop *volatile sigint_loop;

/* The handler: the first SIGINT is counted and wakes the loop, which
 * cancels the main task (cg__loop_on_sigint); the next one interrupts at
 * once, as Python's default_int_handler raising KeyboardInterrupt ends an
 * uncaught program: by the default action of SIGINT. Async-signal-safe. */
static void on_sigint(int sig) {
    cg_loop *loop = sigint_loop;
    if (loop && loop->sigints == 0) {
        int saved = errno;
        loop->sigints = 1;
        if (loop->wake_fd >= 0) {
            uint64_t one = 1;
            ssize_t r = write(loop->wake_fd, &one, sizeof one);
            (void)r;
        }
        errno = saved;
        return;
    }
    signal(sig, SIG_DFL);
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, sig);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    raise(sig);
}

void cg__loop_on_sigint(cg_loop *loop) {
    loop->sigints_seen = loop->sigints;
    cg_task *t = loop->sigint_main;
    if (t && t->fut.state == F_PENDING) cg_task_cancel(t, NULL);
}

/* Runner.run's condition: the main thread, SIGINT's handler the default
 * (SIG_DFL is C's default_int_handler) and the option on. 1 when the
 * handler is installed (old: what to put back). */
static int sigint_install(cg_loop *loop, cg_task *main, const cg_run_opts *opts, struct sigaction *old) {
    if (opts && (opts->loop_flags & CG_RUN_NO_SIGINT)) return 0;
    if (getpid() != (pid_t)syscall(SYS_gettid)) return 0;
    if (sigint_loop || sigaction(SIGINT, NULL, old) < 0 || old->sa_handler != SIG_DFL ||
        (old->sa_flags & SA_SIGINFO))
        return 0;
    if (cg__loop_wake_fd(loop) < 0) return 0; /* no fd to wake the loop with: as if off */
    loop->sigint_main = main;
    sigint_loop = loop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) < 0) {
        sigint_loop = NULL;
        loop->sigint_main = NULL;
        return 0;
    }
    return 1;
}

/* Runner.run's finally: SIGINT's default again, if it is still ours. Once
 * more after the loop is closed (loop NULL): a SIGINT handler of the
 * loop's (add_signal_handler, a wait) put ours back when it went, where
 * asyncio's loop.close puts default_int_handler. */
static void sigint_remove(cg_loop *loop, const struct sigaction *old) {
    struct sigaction now;
    if (sigaction(SIGINT, NULL, &now) == 0 && now.sa_handler == on_sigint) sigaction(SIGINT, old, NULL);
    sigint_loop = NULL;
    if (loop) loop->sigint_main = NULL;
}

cg_status cg_run(cg_fn body, void *arg, const cg_run_opts *opts, void **out, cg_exc **exc) {
    if (cg__running_loop) CG_RAISE(&cg_RuntimeError, "asyncio.run() cannot be called from a running event loop");
    if (!body) CG_RAISE(&cg_ValueError, "a coroutine was expected, got NULL");
    cg_loop_opts lo = {opts ? opts->loop_flags : 0};
    cg_loop *loop = cg_loop_new(&lo);
    if (!loop) return run_outcome(CG_RAISED, NULL, cg_exc_new(&cg_MemoryError, NULL), out, exc);
    if (opts && opts->handler) cg_loop_set_exception_handler(loop, opts->handler, opts->handler_ud);
    cg_task_opts to = {opts ? opts->name : NULL, 0, 0};
    cg_task *main = cg_task_new(loop, body, arg, &to);
    if (!main) {
        cg_loop_free(loop);
        return run_outcome(CG_RAISED, NULL, cg_exc_new(&cg_MemoryError, NULL), out, exc);
    }
    void *v = NULL;
    cg_exc *e = NULL;
    struct sigaction old_int;
    int sigint = sigint_install(loop, main, opts, &old_int);
    cg_status st = cg_loop_run_until_complete(loop, &main->fut, &v, &e);
    if (sigint) {
        sigint_remove(loop, &old_int);
        /* Runner.run: the main task cancelled by Ctrl-C (and by nothing
         * else: uncancel() brings it to 0) raises KeyboardInterrupt, its
         * context the CancelledError, before the shutdown */
        if (st == CG_RAISED && loop->sigints && cg_exc_is(e, &cg_CancelledError) && cg_task_uncancel(main) == 0) {
            cg_exc *ki = cg_exc_new(&cg_KeyboardInterrupt, NULL);
            cg_exc_set_context(ki, e);
            cg_exc_unref(e);
            e = ki;
        }
    }
    shutdown_rec r = {loop, NULL};
    cg_exc *err = cg_try_catch(run_shutdown, &r, &cg_BaseException);
    if (!err) err = r.stuck;
    cg_future_unref(&main->fut);
    cg_loop_free(loop); /* reports the tasks still pending */
    if (sigint) sigint_remove(NULL, &old_int); /* a SIGINT handler of the loop's, gone with it, put ours back */
    if (err) { /* raised by Runner.close in __exit__: chained to main's */
        if (e) cg_exc_set_context(err, e);
        cg_exc_unref(e);
        e = err;
        st = CG_RAISED;
    }
    return run_outcome(st, v, e, out, exc);
}

/* ---------------------------------------------------------------------
 * The task dump
 * ------------------------------------------------------------------ */

static const char *state_word(const cg_task *t) {
    if (t->fut.state == F_CANCELLED) return "cancelled";
    if (t->fut.state == F_FINISHED) return "finished";
    if (t->fut.loop->current == t) return "running";
    if (t->fut.ready.queued) return "scheduled";
    return t->started ? "suspended" : "not started";
}

static cg_task *task_by_serial(cg_loop *loop, uint64_t serial) {
    for (cg_task *t = loop->tasks_head; t; t = t->all_next)
        if (t->serial == serial) return t;
    return NULL;
}

/* The dump's words for await_obj's kinds (CG__AW_*). */
static const char *const await_kinds[8] = {NULL,        "sleep",     "Lock",        "Event",
                                           "Condition", "Semaphore", "Queue (get)", "Queue (put)"};

static void dump_awaits(cg_loop *loop, cg_task *t, FILE *f) {
    uintptr_t io_wait = cg__task_io_wait(t);
    cg_future *waiter = cg__task_waiter(t);
    int kind = (int)(t->await_obj & 7);
    const void *obj = (const void *)(t->await_obj & ~(uintptr_t)7);
    if (io_wait & WAIT_TIMER) { /* a sleep in the task's own body: the task is its timer */
        fprintf(f, "awaits sleep, %.3f ms left", (double)(cg__loop_sleep_when(t) - cg_loop_time(loop)) / 1e6);
    } else if (io_wait & CG__WAIT_FD) {
        fprintf(f, "awaits fd %d (%s)", cg__io_wait_fd(io_wait), (io_wait & 1) ? "writable" : "readable");
    } else if (kind == CG__AW_SLEEP && waiter && obj) {
        const cg_handle *h = obj;
        fprintf(f, "awaits sleep, %.3f ms left", (double)(h->when - cg_loop_time(loop)) / 1e6);
    } else if (kind && (waiter || io_wait)) { /* (a waiter without a future, sync.h) */
        fprintf(f, "awaits %s %p", await_kinds[kind], obj);
    } else if (waiter && waiter->is_task) {
        const cg_task *o = (const cg_task *)waiter;
        fprintf(f, "awaits task '%s' (#%llu)", cg__task_name(o), (unsigned long long)o->serial);
    } else if (waiter) {
        fprintf(f, "awaits future %p", (void *)waiter);
    } else {
        fputs("awaits nothing", f);
    }
    if (t->await_site) fprintf(f, " at %s", t->await_site);
}

void cg_loop_dump_tasks(cg_loop *loop, FILE *f) {
    if (!loop) loop = cg__running_loop;
    if (!f) f = stderr;
    if (!loop) {
        fputs("cogen: no loop to dump\n", f);
        return;
    }
    flockfile(f);
    fprintf(f, "cogen: loop %llu: %zu task%s\n", (unsigned long long)loop->serial, loop->ntasks,
            loop->ntasks == 1 ? "" : "s");
    for (cg_task *t = loop->tasks_head; t; t = t->all_next) {
        fprintf(f, "  task '%s' (#%llu) %s", cg__task_name(t), (unsigned long long)t->serial, state_word(t));
        if (t->fut.state == F_PENDING && loop->current != t && !t->fut.ready.queued) {
            fputs(", ", f);
            dump_awaits(loop, t, f);
        }
        if (t->new_site) fprintf(f, "; created at %s", t->new_site);
        if (t->parent) {
            cg_task *p = task_by_serial(loop, t->parent);
            if (p)
                fprintf(f, " by task '%s' (#%llu)", cg__task_name(p), (unsigned long long)p->serial);
            else
                fprintf(f, " by task #%llu (done)", (unsigned long long)t->parent);
        }
        if (t->must_cancel || t->num_cancels) fprintf(f, "; cancelling %d", t->num_cancels);
        fputc('\n', f);
    }
    funlockfile(f);
}
