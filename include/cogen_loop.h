/* cogen_loop.h: asyncio's event loop in C, with tasks that are cogen
 * generators.
 *
 * A task is a generator driven by its loop, as asyncio's Task.__step drives
 * a coroutine: the loop resumes it with nothing or throws an exception into
 * it (a cancellation, or the exception of what it awaited); the task
 * suspends by awaiting a future (cg_await) or by a bare yield (cg_sleep(0)).
 * Tasks are stackful: an "async function" is an ordinary C function called
 * on the task's stack, and cg_await may be called at any depth, also from a
 * generator the task delegates to (cg_yield_from), which is how generator
 * coroutines interoperate.
 *
 * Semantics are asyncio's (CPython 3.13), rule by rule: the ready queue is
 * one FIFO shared by callbacks and task steps, done callbacks are always
 * scheduled with call_soon in registration order, cancellation is a request
 * delivered as CancelledError at the task's next suspension, with asyncio's
 * cancelling()/uncancel() counters and messages. docs/loop.md describes the
 * design; docs/conformance.md maps the rules to their tests.
 *
 * Conventions are those of cogen.h: values are void * (NULL is None);
 * errors are cogen exceptions with asyncio's types and messages, raised in
 * the calling context (CG_TRY catches them); functions that allocate and
 * cannot raise return NULL with errno set.
 *
 * Ownership: the loop owns every task until it is done (dropping a handle
 * never loses a running task). Futures and tasks are reference counted:
 * functions that return one return a new reference, released with
 * cg_future_unref (a task is a future: cg_task_future). A loop belongs to
 * the thread that runs it; only cg_loop_call_soon_threadsafe may be called
 * from other threads.
 */
#ifndef COGEN_LOOP_H
#define COGEN_LOOP_H

#include "cogen.h"

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Types and exceptions
 * ====================================================================== */

typedef struct cg_loop cg_loop;
typedef struct cg_future cg_future;
typedef struct cg_task cg_task;
typedef struct cg_handle cg_handle;

/* Time on a loop's clock, in nanoseconds. */
typedef int64_t cg_ns;
#define CG_MS(ms) ((cg_ns)(ms) * 1000000)
#define CG_SEC(s) ((cg_ns)(s) * 1000000000)

/* asyncio's exception types, with Python's hierarchy. */
extern CG_API const cg_exc_type cg_CancelledError;   /* BaseException */
extern CG_API const cg_exc_type cg_InvalidStateError; /* Exception */

/* ======================================================================
 * The loop
 * ====================================================================== */

typedef struct cg_loop_opts {
    unsigned flags; /* CG_LOOP_* */
} cg_loop_opts;

/* A virtual clock (Trio's MockClock with autojump): time starts at 0 and
 * moves only when the loop has nothing ready, straight to the next timer's
 * deadline. A program that sleeps an hour runs in microseconds, and its
 * timeouts can be tested deterministically. When nothing is ready and no
 * timer is pending, nothing can ever happen: the run stops with
 * RuntimeError('deadlock: no callback is ready and no timer is pending'). */
#define CG_LOOP_VIRTUAL_CLOCK 1u

/* A new loop (NULL opts: a real monotonic clock). NULL with errno ENOMEM. */
CG_API cg_loop *cg_loop_new(const cg_loop_opts *opts);
/* loop.close() and free: tasks still pending are dropped without running
 * (asyncio reports them as destroyed while pending, through the exception
 * handler), callbacks not run are dropped. RuntimeError('Cannot close a
 * running event loop') if it runs. NULL is ignored. */
CG_API void cg_loop_free(cg_loop *loop);

/* loop.time(): the loop's clock, in nanoseconds. */
CG_API cg_ns cg_loop_time(cg_loop *loop);

/* loop.run_until_complete(fut): runs until fut is done and returns its
 * outcome: CG_RETURNED with *out its result, or CG_RAISED with *exc a new
 * reference to its exception (CancelledError when it was cancelled). If the
 * loop stops first: RuntimeError('Event loop stopped before Future
 * completed.'). A running loop: RuntimeError('This event loop is already
 * running'); another loop running in this thread: RuntimeError('Cannot run
 * the event loop while another loop is running'). out and exc may be NULL. */
CG_API cg_status cg_loop_run_until_complete(cg_loop *loop, cg_future *fut, void **out, cg_exc **exc);
/* loop.run_forever(): until cg_loop_stop. Same errors, raised. */
CG_API void cg_loop_run_forever(cg_loop *loop);
/* loop.stop(): the loop finishes the iteration it is in, then returns. */
CG_API void cg_loop_stop(cg_loop *loop);
CG_API int cg_loop_is_running(const cg_loop *loop);

/* The loop running in this thread and its task running now, or NULL. */
CG_API cg_loop *cg_running_loop(void);
CG_API cg_task *cg_current_task(void);
/* asyncio.get_running_loop(): the running loop, or RuntimeError('no
 * running event loop'). */
CG_API cg_loop *cg_get_running_loop(void);

/* ---------------------------------------------------------------------
 * Callbacks
 * ------------------------------------------------------------------ */

typedef void (*cg_callback)(void *arg);

/* loop.call_soon / call_later / call_at: fn(arg) runs in a later iteration
 * of the loop (call_soon: the next; the others once the clock reaches the
 * deadline, timers with equal deadlines in the order they were made). They
 * return a new reference to a handle that can cancel the call, or NULL with
 * errno ENOMEM; cg_handle_unref it when done with it (the call happens
 * whether or not a reference is kept). A callback that raises is reported
 * to the exception handler ('Exception in callback ...'). */
CG_API cg_handle *cg_loop_call_soon(cg_loop *loop, cg_callback fn, void *arg);
CG_API cg_handle *cg_loop_call_later(cg_loop *loop, cg_ns delay, cg_callback fn, void *arg);
CG_API cg_handle *cg_loop_call_at(cg_loop *loop, cg_ns when, cg_callback fn, void *arg);
/* Handle.cancel(): the callback will not run (nothing if it has run). */
CG_API void cg_handle_cancel(cg_handle *h);
CG_API int cg_handle_cancelled(const cg_handle *h);
/* For a timer handle, its deadline. */
CG_API cg_ns cg_handle_when(const cg_handle *h);
CG_API void cg_handle_unref(cg_handle *h);

/* loop.call_soon_threadsafe: from any thread; wakes the loop. 0, or -1
 * with errno (ENOMEM). */
CG_API int cg_loop_call_soon_threadsafe(cg_loop *loop, cg_callback fn, void *arg);

/* ---------------------------------------------------------------------
 * The exception handler (loop.call_exception_handler)
 * ------------------------------------------------------------------ */

typedef struct cg_loop_context {
    const char *message;   /* 'Task exception was never retrieved', ... */
    cg_exc *exception;     /* borrowed, or NULL */
    cg_future *future;     /* the task or future concerned (borrowed), or NULL */
} cg_loop_context;

typedef void (*cg_loop_exception_handler)(cg_loop *loop, const cg_loop_context *ctx, void *ud);
/* NULL: the default, which prints the message, the task or future and the
 * exception to stderr, as asyncio's default handler logs them. */
CG_API void cg_loop_set_exception_handler(cg_loop *loop, cg_loop_exception_handler fn, void *ud);
CG_API void cg_loop_call_exception_handler(cg_loop *loop, const cg_loop_context *ctx);

/* ======================================================================
 * Futures
 * ====================================================================== */

/* loop.create_future(). NULL with errno ENOMEM. */
CG_API cg_future *cg_future_new(cg_loop *loop);
CG_API cg_future *cg_future_ref(cg_future *f);
CG_API void cg_future_unref(cg_future *f);
CG_API cg_loop *cg_future_loop(const cg_future *f);

CG_API int cg_future_done(const cg_future *f);
CG_API int cg_future_cancelled(const cg_future *f);
/* Future.result(): the result; raises the future's exception, the
 * CancelledError of a cancelled one, or InvalidStateError('Result is not
 * set.') while pending (the C Future's message). Marks the exception as
 * retrieved. */
CG_API void *cg_future_result(cg_future *f);
/* Future.exception(): borrowed, NULL when it has a result; CancelledError
 * raised when cancelled, InvalidStateError('Exception is not set.') while
 * pending. Marks the exception as retrieved. */
CG_API cg_exc *cg_future_exception(cg_future *f);
/* set_result / set_exception (e is consumed): InvalidStateError('invalid
 * state') when done. A StopIteration is refused with TypeError('StopIteration
 * interacts badly with generators and cannot be raised into a Future'). */
CG_API void cg_future_set_result(cg_future *f, void *result);
CG_API void cg_future_set_exception(cg_future *f, cg_exc *e);
/* Future.cancel(msg): 1 if it was pending (it is cancelled now), else 0.
 * msg may be NULL; it is copied. */
CG_API int cg_future_cancel(cg_future *f, const char *msg);

/* add_done_callback: fn(f, arg) is scheduled with call_soon when f is done
 * (at once if it is), callbacks in registration order. -1 with errno
 * ENOMEM. remove_done_callback: how many were removed. */
typedef void (*cg_done_callback)(cg_future *f, void *arg);
CG_API int cg_future_add_done_callback(cg_future *f, cg_done_callback fn, void *arg);
CG_API int cg_future_remove_done_callback(cg_future *f, cg_done_callback fn, void *arg);

/* await f, inside a task (at any depth of its stack): suspends the task
 * until f is done, then returns its result or raises its exception. A
 * cancellation of the task raises CancelledError here (and cancels f).
 * Outside a task: RuntimeError('cg_await() called outside a task'). */
CG_API void *cg_await(cg_future *f);

/* ======================================================================
 * Tasks
 * ====================================================================== */

/* loop.create_task(body(g, arg), name=name): the body is a generator body
 * (cogen.h) that the loop drives; it is scheduled to start with call_soon.
 * name NULL: 'Task-N', N counting the loop's unnamed tasks from 1. The name
 * is copied. Returns a new reference, or NULL with errno (ENOMEM, or
 * EINVAL for a NULL body). stack_size 0: cogen's default. */
typedef struct cg_task_opts {
    const char *name;
    size_t stack_size;
    unsigned gen_flags; /* cg_opts.flags for the task's generator */
} cg_task_opts;
CG_API cg_task *cg_task_new(cg_loop *loop, cg_fn body, void *arg, const cg_task_opts *opts);
/* asyncio.create_task in the running loop: RuntimeError('no running event
 * loop') outside one. Raises MemoryError when out of memory. */
CG_API cg_task *cg_create_task(cg_fn body, void *arg, const char *name);

static inline cg_future *cg_task_future(cg_task *t) { return (cg_future *)t; }
CG_API const char *cg_task_name(const cg_task *t);
/* The generator the task drives. */
CG_API cg_gen *cg_task_gen(const cg_task *t);

/* Task.cancel(msg): 0 if the task is done; else 1, and a CancelledError(msg)
 * will be raised in it at its next suspension (or the future it awaits is
 * cancelled). */
CG_API int cg_task_cancel(cg_task *t, const char *msg);
/* Task.cancelling(), Task.uncancel(). */
CG_API int cg_task_cancelling(const cg_task *t);
CG_API int cg_task_uncancel(cg_task *t);

/* asyncio.sleep(delay) inside a task: 0 (or less) is a bare yield, one turn
 * of the loop; else suspends until the clock has advanced by delay. */
CG_API void cg_sleep(cg_ns delay);

/* asyncio.all_tasks(loop): the tasks not done, in creation order, as new
 * references in a malloc'd array of *n (free it and unref each); NULL and
 * *n 0 when there are none. loop NULL: the running loop. */
CG_API cg_task **cg_all_tasks(cg_loop *loop, size_t *n);

/* ======================================================================
 * asyncio.run
 * ====================================================================== */

typedef struct cg_run_opts {
    unsigned loop_flags;       /* CG_LOOP_* for the run's loop */
    const char *name;          /* the main task's name; NULL: 'Task-1' */
    cg_loop_exception_handler handler; /* NULL: the default */
    void *handler_ud;
} cg_run_opts;

/* asyncio.run(body(arg)): a new loop, the body as its main task, run until
 * it is done; then every task still pending is cancelled and the loop runs
 * until they are done (an exception other than a cancellation is reported
 * as 'unhandled exception during asyncio.run() shutdown'), and the loop is
 * closed. The outcome is the main task's, as for cg_loop_run_until_complete.
 * Inside a running loop: RuntimeError('asyncio.run() cannot be called from
 * a running event loop'). */
CG_API cg_status cg_run(cg_fn body, void *arg, const cg_run_opts *opts, void **out, cg_exc **exc);

#ifdef __cplusplus
}
#endif
#endif
