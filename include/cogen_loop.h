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
 * Out of memory. A call that needs memory and finds none answers the way
 * asyncio answers a failed allocation, and changes nothing: constructors
 * (*_new) return NULL with errno ENOMEM, call_soon/call_later/call_at
 * NULL with ENOMEM, call_soon_threadsafe and add_done_callback -1 with
 * ENOMEM, and everything that raises (await, sleep, create_task, cancel
 * with a message, gather, shield, wait, wait_for, as_completed, timeout
 * scopes, TaskGroup, the primitives' waits, queue puts, async generator
 * steps) raises MemoryError; cg_run returns it as its outcome. What the
 * loop does on its own never allocates, so it never fails: scheduling a
 * task's step or wake-up, running the done callbacks of a future that
 * completes (set_result, set_exception, cancel, a task's end), recording
 * a TaskGroup task's error (its room is made by cg_taskgroup_spawn), and
 * passing a cancellation on (to the future a task awaits, to a gather's
 * children). (Only the CancelledError a cancelled task gets is made when
 * it is thrown in, as asyncio makes it: without memory for it, the task
 * gets MemoryError instead.) So these calls never allocate and cannot fail for want of
 * memory: set_result, set_exception, cancel and cg_task_cancel without a
 * message, the first add_done_callback of a pending future,
 * remove_done_callback, cg_handle_cancel, cg_loop_stop, uncancel,
 * cg_event_set/clear, cg_lock_release, cg_semaphore_release,
 * cg_condition_notify(_all), cg_queue_get_nowait, cg_queue_task_done,
 * cg_queue_shutdown, the *_free calls and every query. A task is never
 * lost: it is done, or reported through the exception handler when its
 * loop is freed (tests/test_loop_oom.c runs every operation with each
 * allocation failing in turn).
 *
 * Task stacks and compact mode: a task made with CG_OPT_COMPACT in its
 * gen_flags (or every task, under COGEN_COMPACT) has its stack swapped out
 * while it waits, so nothing that runs meanwhile (callbacks, other tasks)
 * may use a pointer into its stack: state shared with them belongs on the
 * heap. The library's own waiting (futures, waiters, sleep) keeps to that.
 * Swapping a stack out allocates its save buffer (the core's compact mode),
 * so with compact tasks the "never allocates" list above holds for the
 * loop's own work, not for the switches it makes.
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
#include <stdio.h>

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

/* loop.time(): the loop's clock, in nanoseconds. On the real clock it reads
 * the monotonic clock at every call, as asyncio's time() does. Timers
 * (call_later, cg_sleep, timeout scopes) are armed from the loop's last
 * reading in the current iteration instead (as libuv's uv_now): the one it
 * took to look for due timers, the last cg_loop_time() call, or one taken
 * by the first timer armed; see cg_loop_call_later. */
CG_API cg_ns cg_loop_time(cg_loop *loop);

/* loop.run_until_complete(fut): runs until fut is done and returns its
 * outcome: CG_RETURNED with *out its result, or CG_RAISED with *exc a new
 * reference to its exception (CancelledError when it was cancelled). If the
 * loop stops first, the outcome is RuntimeError('Event loop stopped before
 * Future completed.'). out and exc may be NULL. Raised, not returned: for a
 * running loop RuntimeError('This event loop is already running'), with
 * another loop running in this thread RuntimeError('Cannot run the event
 * loop while another loop is running'), for a closed one
 * RuntimeError('Event loop is closed'). */
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
 * to the exception handler ('Exception in callback ...'). call_later's
 * deadline is delay after the loop's last clock reading in this iteration
 * (cg_loop_time): a callback that has computed for a while before it arms
 * a timer sees it come up that much early, as with libuv, where asyncio
 * reads the clock again; cg_loop_time() just before arms it from now. A
 * clock reading costs more than arming a timer (about 30 ns here). */
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

typedef struct cg_agen cg_agen;

typedef struct cg_loop_context {
    const char *message;   /* 'Task exception was never retrieved', ... */
    cg_exc *exception;     /* borrowed, or NULL */
    cg_future *future;     /* the task or future concerned (borrowed), or NULL */
    cg_agen *asyncgen;     /* the async generator concerned, or NULL ('an
                              error occurred during closing of asynchronous
                              generator': asyncio appends its repr) */
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
/* Future._log_traceback: 1 when f is done with an exception that nobody
 * has retrieved yet (no result(), exception(), awaiter, or cancel() of the
 * finished task since it was set): what the loop reports, as 'Future (Task)
 * exception was never retrieved', when the last reference goes. Only reads:
 * it does not count as retrieving. 0 for NULL. */
CG_API int cg_future_unretrieved(const cg_future *f);
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
 * state') when done; on a task, RuntimeError('Task does not support
 * set_result operation') ('... set_exception operation'). A StopIteration is replaced by RuntimeError('StopIteration
 * interacts badly with generators and cannot be raised into a Future'),
 * caused by it, as CPython's C Future does. */
CG_API void cg_future_set_result(cg_future *f, void *result);
CG_API void cg_future_set_exception(cg_future *f, cg_exc *e);
/* Future.cancel(msg): 1 if it was pending (it is cancelled now), else 0.
 * msg may be NULL; it is copied (MemoryError, the future unchanged, when
 * that copy cannot be made). */
CG_API int cg_future_cancel(cg_future *f, const char *msg);

/* add_done_callback: fn(f, arg) is scheduled with call_soon when f is done
 * (at once if it is), callbacks in registration order. -1 with errno
 * ENOMEM (the first callback of a pending future never needs memory, and
 * completing a future never does). remove_done_callback: how many were
 * removed (none once f is done: they are scheduled already). */
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
 * cancelled, which passes the request on: to the task it is, to a gather's
 * children). msg is copied once (MemoryError, the task unchanged, when it
 * cannot be) and shared from then on: passing it on never allocates. When
 * tasks awaiting each other make the request go round a cycle,
 * RecursionError('maximum recursion depth exceeded') is raised, as CPython
 * stops at its recursion limit (the counters changed on the way stay
 * changed, as there). */
CG_API int cg_task_cancel(cg_task *t, const char *msg);
/* Task.cancelling(), Task.uncancel(). */
CG_API int cg_task_cancelling(const cg_task *t);
CG_API int cg_task_uncancel(cg_task *t);

/* asyncio.sleep(delay) inside a task: 0 (or less) is a bare yield, one turn
 * of the loop; else suspends until the clock has advanced by delay (from
 * the loop's time, see cg_loop_time). In the task's own body it makes no
 * future (the timer steps the task; a cancellation acts as on asyncio's
 * sleep future): docs/loop.md, "A sleep without a future". */
CG_API void cg_sleep(cg_ns delay);

/* asyncio.all_tasks(loop): the tasks not done, in creation order, as new
 * references in an array of *n made with the library's allocator
 * (cg_set_allocator; give it back with cg_all_tasks_free); NULL and *n 0
 * when there are none. loop NULL: the running loop. Out of memory:
 * MemoryError. */
CG_API cg_task **cg_all_tasks(cg_loop *loop, size_t *n);
/* Drops the n references of v (from cg_all_tasks) and frees v (NULL with
 * n 0 is fine). */
CG_API void cg_all_tasks_free(cg_task **v, size_t n);

/* ======================================================================
 * Async generators
 * ====================================================================== */

/* An async generator (calling an `async def` with `yield`: no code runs).
 * Its body is a generator body: it yields values with cg_yield(g, value)
 * (NULL is None) and awaits with cg_await / cg_sleep, on behalf of the task
 * that iterates it. opts as for cg_new (opts->name names it). NULL with
 * errno (EINVAL for a NULL body, ENOMEM). */
CG_API cg_agen *cg_agen_new(cg_fn body, void *arg, const cg_opts *opts);
/* Drops it. One whose iteration started and did not finish is closed the
 * way cg_free closes a generator (its cleanups run, but cannot await);
 * asyncio.run closes the ones still alive at its end with aclose first
 * (shutdown_asyncgens). NULL is ignored. */
CG_API void cg_agen_free(cg_agen *ag);
CG_API cg_gen *cg_agen_gen(const cg_agen *ag);
/* ag.ag_running: 1 while a cg_anext, cg_asend, cg_athrow or cg_aclose of it
 * is in progress (its body runs or awaits on a task's behalf), else 0 (NULL
 * too). Such a generator must not be freed: its task drives it. */
CG_API int cg_agen_running(const cg_agen *ag);

/* In a task (these await):
 * - cg_anext: `await anext(ag)`: 1 and *out the next value, or 0 when it
 *   is exhausted (StopAsyncIteration); cg_agen_anext raises
 *   StopAsyncIteration instead.
 * - cg_asend: `await ag.asend(value)`; TypeError("can't send non-None
 *   value to a just-started async generator").
 * - cg_athrow: `await ag.athrow(e)` (e consumed): the value the body yields
 *   after catching it, or what it raises; on a finished one, NULL (3.13).
 *   Into one that has not started, e comes out as it is and the generator
 *   is closed (3.13); a StopIteration coming out so is the awaitable's
 *   return in Python: NULL here (Python gives its value).
 * - cg_aclose: `await ag.aclose()`: GeneratorExit at its yield; the body may
 *   await while cleaning up; a body that yields instead gets
 *   RuntimeError('async generator ignored GeneratorExit').
 * A StopIteration or StopAsyncIteration leaving the body becomes
 * RuntimeError('async generator raised StopIteration' / '...StopAsyncIteration').
 * While one of them awaits inside the body, another raises
 * RuntimeError('anext(): asynchronous generator is already running') (the
 * same for asend, as in CPython; athrow and aclose name themselves). */
CG_API int cg_anext(cg_agen *ag, void **out);
CG_API void *cg_agen_anext(cg_agen *ag);
CG_API void *cg_asend(cg_agen *ag, void *value);
CG_API void *cg_athrow(cg_agen *ag, cg_exc *e);
CG_API void cg_aclose(cg_agen *ag);

/* async for v in ag: ... (in a task). */
#define CG_ASYNC_FOR(v, ag) for (void *v = NULL; cg_anext((ag), &v);)

/* await loop.shutdown_asyncgens(), in a task of the running loop: every
 * async generator whose iteration was started in this loop (its first
 * cg_anext, cg_asend, cg_athrow or cg_aclose, as asyncio's firstiter hook
 * sees it; finished ones too) and not closed by an earlier call gets
 * cg_aclose, in the order of those first starts, each in a task of its own
 * (Task-N names, exempt from 'Task was destroyed but it is pending!'),
 * awaited together as gather(..., return_exceptions=True) does; then each
 * Exception (not a BaseException such as CancelledError) that came out of
 * one goes to the exception handler as 'an error occurred during closing
 * of asynchronous generator', with the generator as the context's asyncgen.
 * cg_run does this after cancelling the leftover tasks; a program that runs
 * asyncio.run's steps itself calls it. Outside a task: RuntimeError. */
CG_API void cg_shutdown_asyncgens(void);

/* ======================================================================
 * asyncio.run
 * ====================================================================== */

typedef struct cg_run_opts {
    unsigned loop_flags;       /* CG_LOOP_* for the run's loop */
    const char *name;          /* the main task's name; NULL: 'Task-1' */
    cg_loop_exception_handler handler; /* NULL: the default */
    void *handler_ud;
} cg_run_opts;

/* In loop_flags, for cg_run itself: leave SIGINT alone (no Ctrl-C
 * handling, below). */
#define CG_RUN_NO_SIGINT 0x100u

/* asyncio.run(body(arg)): a new loop, the body as its main task, run until
 * it is done; then every task still pending is cancelled and the loop runs
 * until they are done (an exception other than a cancellation is reported
 * as 'unhandled exception during asyncio.run() shutdown'), and the loop is
 * closed. The outcome is the main task's, as for cg_loop_run_until_complete,
 * unless the shutdown stops (what asyncio.run raises when Runner.close
 * does, with the main task's exception as its __context__): a task that
 * never finishes (it survives its cancellation and waits for what cannot
 * come) keeps the shutdown waiting, as asyncio.run waits, which on a
 * virtual clock is a deadlock, and the outcome is its RuntimeError
 * ('deadlock: ...'); running out of memory in the shutdown makes it
 * MemoryError. The rest of the shutdown is skipped then, and closing the
 * loop reports the tasks still pending ('Task was destroyed but it is
 * pending!'). MemoryError is also the outcome when there was no memory for
 * the loop or the main task (the body never ran). Inside a running loop:
 * RuntimeError('asyncio.run() cannot be called from a running event
 * loop').
 *
 * Ctrl-C, as asyncio.Runner (3.11+): when cg_run is called in the main
 * thread and SIGINT's disposition is the default (SIG_DFL), it handles
 * SIGINT while the main task runs. The first SIGINT cancels the main task;
 * if the task then ends cancelled, and by that cancellation only (its
 * uncancel() brings it to 0), the outcome is KeyboardInterrupt (its
 * context the CancelledError), after the shutdown above has run; a task
 * that swallows the cancellation keeps its own outcome. A second SIGINT
 * ends the process at once by SIGINT's default action, as an uncaught
 * KeyboardInterrupt ends Python. SIGINT's default disposition is put back
 * when the main task is done (before the shutdown, as asyncio does), so
 * during the shutdown a SIGINT also ends the process. The handler may run
 * in any thread that does not block SIGINT; it only counts and writes to
 * the loop's eventfd. CG_RUN_NO_SIGINT in loop_flags turns all of this off;
 * so does a handler of one's own installed before the call. */
CG_API cg_status cg_run(cg_fn body, void *arg, const cg_run_opts *opts, void **out, cg_exc **exc);

/* ======================================================================
 * A loop per thread
 * ====================================================================== */

/* The outcome of one run: as cg_run's status, *out and *exc. */
typedef struct cg_run_result {
    cg_status status;
    void *value;
    cg_exc *exc; /* a new reference, or NULL */
} cg_run_result;

/* Runs n loops at once, each on a thread of its own (n 0: one per CPU
 * the process may run on, cg_cpu_count()): loop i runs cg_run(body,
 * args ? args[i] : (void *)i, opts), and results[i] gets its outcome
 * (exceptions move to the caller's thread). pin: thread i is bound to
 * the i-th CPU (modulo their number). Returns when every loop has ended:
 * 0, or -1 with errno when a thread could not be started (the loops that
 * did start have run; the others' results are that OSError). Loops reach
 * each other with cg_loop_call_soon_threadsafe (and servers can share a
 * port across loops with the reuse_port option of cg_start_server). */
CG_API int cg_run_parallel(size_t n, cg_fn body, void *const *args, const cg_run_opts *opts, int pin,
                           cg_run_result *results);
CG_API size_t cg_cpu_count(void);

/* ======================================================================
 * Structured helpers: exception groups, gather, shield, wait, wait_for,
 * as_completed, timeout scopes, TaskGroup (asyncio/tasks.py, timeouts.py,
 * taskgroups.py of CPython 3.13.0, with their ordering and messages)
 *
 * Where asyncio iterates over a set (wait's futures, a TaskGroup's tasks),
 * whose order is the objects' hashes, these helpers use the order the
 * caller gave them (or creation order): the same choice as the reference
 * runner of the async scenarios. Tests: tests/test_loop_structured.c, with
 * the Python programs that give their expected output in tests/loop/.
 * ====================================================================== */

/* No timeout, no deadline: Python's None for a timeout or a `when`. */
#define CG_NEVER ((cg_ns)INT64_MAX)

/* ---------------------------------------------------------------------
 * Exception groups (the type and constructor are the core's: cogen.h)
 * ------------------------------------------------------------------ */

/* eg.split(type): *match gets the part of eg whose leaves are instances of
 * type (NULL if none), *rest the other part (NULL if none), as new
 * references. Nested groups are split recursively; each part is a new
 * group made like BaseExceptionGroup(eg's message, members) (so an
 * ExceptionGroup when all members are Exceptions) with eg's __cause__ and
 * __context__; a group that is itself an instance of type matches whole
 * (*match is eg itself). A leaf (not a group) is its own match or rest.
 * match or rest may be NULL (that part is dropped). eg NULL: both NULL.
 * type NULL: TypeError. */
CG_API void cg_exc_group_split(cg_exc *eg, const cg_exc_type *type, cg_exc **match, cg_exc **rest);
/* eg.subgroup(type): the match part of the split, new reference or NULL. */
CG_API cg_exc *cg_exc_group_subgroup(cg_exc *eg, const cg_exc_type *type);
/* The only member of a group that holds exactly one, borrowed; else NULL
 * (what code written for one error wants from a TaskGroup's group). */
CG_API cg_exc *cg_exc_group_single(const cg_exc *eg);

/* ---------------------------------------------------------------------
 * Coroutines as bodies
 * ------------------------------------------------------------------ */

/* Where asyncio takes a coroutine, these helpers take a body and its
 * argument; they wrap it in a task of the running loop (unnamed: Task-N,
 * in argument order), as ensure_future does. NULL fn: TypeError('An
 * asyncio.Future, a coroutine or an awaitable is required'). */
typedef struct cg_body {
    cg_fn fn;
    void *arg;
} cg_body;

/* ---------------------------------------------------------------------
 * gather
 * ------------------------------------------------------------------ */

/* What an awaited gather() returns: the children's outcomes in argument
 * order. values[i] is child i's result; with return_exceptions, excs[i] is
 * its exception (borrowed; NULL when it returned), and a cancelled child
 * shows as a new CancelledError(its future's cancel message, or ''); without
 * return_exceptions excs[i] is always NULL. The arrays belong to the gather
 * future: valid while the caller holds a reference to it. */
typedef struct cg_gathered {
    size_t n;
    void **values;
    cg_exc **excs;
} cg_gathered;

/* asyncio.gather(*futs, return_exceptions=...): a new reference to the
 * gather future (_GatheringFuture). Its result is a const cg_gathered *
 * (cg_await(g) returns it). Without return_exceptions the first child to
 * fail or be cancelled makes it fail at once with that exception (a
 * cancelled child: its CancelledError), the others keep running. A future
 * given twice is one child (it appears twice in the results).
 * cg_future_cancel(g) is _GatheringFuture.cancel: it cancels every child
 * and answers 1 if one of them was; g then fails with CancelledError once
 * all children are done (not cancelled itself). n 0: a future already done
 * with 0 results, in the running loop (RuntimeError('no running event
 * loop') outside one). A NULL future: TypeError('An asyncio.Future, a
 * coroutine or an awaitable is required'); futures of different loops:
 * ValueError('The future belongs to a different loop than the one
 * specified as the loop argument'). Out of memory: MemoryError (and
 * cg_gather_bodies cancels the tasks it made before they start). Keep a
 * reference to g until it is
 * done: freeing it early detaches it from the children, which run on (and
 * whose exceptions nobody retrieves then). */
CG_API cg_future *cg_gather(cg_future *const *futs, size_t n, int return_exceptions);
/* gather(body0(arg0), body1(arg1), ...): each body becomes a task of the
 * running loop (Task-N, in order), owned by the gather future; as in
 * asyncio, a loop closed while they are pending does not report them
 * ('Task was destroyed but it is pending!'). */
CG_API cg_future *cg_gather_bodies(const cg_body *bodies, size_t n, int return_exceptions);
/* The children of a gather future in argument order, borrowed (with
 * cg_gather_bodies, the tasks it made: (cg_task *)cg_gather_child(g, i)).
 * Not a gather future: TypeError; i out of range: IndexError. */
CG_API size_t cg_gather_count(cg_future *g);
CG_API cg_future *cg_gather_child(cg_future *g, size_t i);

/* ---------------------------------------------------------------------
 * shield
 * ------------------------------------------------------------------ */

/* asyncio.shield(inner): a new reference to a future that follows inner
 * but whose cancellation does not reach inner (inner itself, with a new
 * reference, when it is already done). Once the shield is cancelled,
 * nobody retrieves inner's exception any more (the loop reports it when
 * inner is freed). Freeing the shield future before inner is done
 * detaches it from inner. NULL: TypeError as for gather. */
CG_API cg_future *cg_shield(cg_future *inner);
/* shield(body(arg)): the body becomes a task (Task-N), cancelled before it
 * starts if the shield then runs out of memory (MemoryError). */
CG_API cg_future *cg_shield_body(cg_fn body, void *arg);

/* ---------------------------------------------------------------------
 * wait
 * ------------------------------------------------------------------ */

typedef enum cg_return_when {
    CG_FIRST_COMPLETED = 1,
    CG_FIRST_EXCEPTION = 2,
    CG_ALL_COMPLETED = 3
} cg_return_when;

/* done, pending = await asyncio.wait(fs, timeout=timeout,
 * return_when=when), inside a task. Never raises the futures' exceptions;
 * returns when `when` is met or timeout (CG_NEVER: none; 0 or less: after
 * one turn of the loop) has passed. The futures are reported in the order
 * of fs, a future given twice once: done[0..*ndone) and
 * pending[0..*npending) (borrowed pointers, arrays of at least n the caller
 * provides; any of the four may be NULL). While it waits, it holds a
 * reference to each future (as asyncio's set does): the caller may drop
 * its own meanwhile. Errors, in asyncio's order:
 * fs NULL or n 0: ValueError('Set of Tasks/Futures is empty.'); a bad
 * when: ValueError('Invalid return_when value: 7'); a NULL future:
 * AttributeError("'NoneType' object has no attribute
 * 'add_done_callback'"); then RuntimeError('no running event loop') or
 * cg_await's outside a task. asyncio.wait refuses coroutines
 * (TypeError('Passing coroutines is forbidden, use tasks explicitly.')):
 * here only futures can be passed, there is no body form. */
CG_API void cg_wait(cg_future *const *fs, size_t n, cg_return_when when, cg_ns timeout, cg_future **done,
                    size_t *ndone, cg_future **pending, size_t *npending);

/* ---------------------------------------------------------------------
 * wait_for
 * ------------------------------------------------------------------ */

/* await asyncio.wait_for(fut, timeout), as 3.13 does it: timeout CG_NEVER
 * waits for ever; 0 or less returns fut's outcome when it is done, else
 * cancels it, waits until it is done and raises TimeoutError (__cause__ the
 * CancelledError) unless it ended otherwise; a positive timeout awaits fut
 * inside a timeout scope (cg_timeout_call): at the deadline the waiting
 * task is cancelled, which cancels fut, and the scope turns that into
 * TimeoutError. Returns fut's result or raises its exception. fut NULL:
 * TypeError("object NoneType can't be used in 'await' expression") (with
 * a timeout of 0 or less: TypeError as for gather), as asyncio says.
 * wait_for is a coroutine of its own in asyncio, and so a frame of its own
 * here: with a positive timeout (or CG_NEVER) the scope runs in a
 * generator that the calling one delegates to (unless fut is done: then
 * nothing is thrown in; cg_yield_from_new, with the
 * caller's stack size and flags; MemoryError when it cannot be made), so
 * that exceptions are chained as CPython chains them across a coroutine:
 * the CancelledError thrown in is not chained to what the caller handles,
 * and the TimeoutError made of it, leaving that frame while the task is
 * resumed by a throw, gets the caller's handled exception as __context__
 * (the CancelledError stays its __cause__). With 0 or less, the
 * CancelledError is raised as fut.result() raises it, in the caller's
 * context, and is the TimeoutError's __context__ and __cause__. */
CG_API void *cg_wait_for(cg_future *fut, cg_ns timeout);
/* wait_for(body(arg), timeout): with a positive timeout (or CG_NEVER) the
 * body runs in the calling task, inside the scope, on wait_for's generator
 * (3.13 awaits the coroutine directly in wait_for's frame): body's g is
 * that generator. With 0 or less it becomes a task (Task-N), which is
 * cancelled before it starts. */
CG_API void *cg_wait_for_body(cg_fn body, void *arg, cg_ns timeout);

/* ---------------------------------------------------------------------
 * as_completed
 * ------------------------------------------------------------------ */

/* `async for f in asyncio.as_completed(fs, timeout=timeout)`: the futures
 * in the order they complete. cg_as_completed_new registers on fs (a
 * future given twice counts once; with timeout CG_NEVER there is none) and
 * returns the iterator (MemoryError raised when out of memory); each
 * cg_as_completed_next, inside a task, awaits the next future to complete
 * and returns it (borrowed, valid until the iterator is freed), NULL once
 * every future has been returned (StopAsyncIteration), or raises
 * TimeoutError when the timeout has passed first (once for each future not
 * done then). Futures already done are returned first, in the order of fs.
 * cg_as_completed_free may be called at any time (NULL is ignored). */
typedef struct cg_as_completed cg_as_completed;
CG_API cg_as_completed *cg_as_completed_new(cg_future *const *fs, size_t n, cg_ns timeout);
CG_API cg_future *cg_as_completed_next(cg_as_completed *it);
CG_API void cg_as_completed_free(cg_as_completed *it);

/* ---------------------------------------------------------------------
 * Timeout scopes (asyncio.timeout, asyncio.timeout_at, asyncio.Timeout)
 * ------------------------------------------------------------------ */

/* `async with asyncio.timeout(delay): fn(arg)`, inside a task: when the
 * deadline passes, the task is cancelled (CancelledError at its await);
 * when the scope ends, if the timeout fired and uncancel() brings the
 * task's cancelling() count back to what it was at entry, a CancelledError
 * that comes out of fn becomes TimeoutError (raised from it, its __cause__
 * and __context__); another exception gets a TimeoutError inserted before
 * the first CancelledError of its __context__ chain (and of each member's
 * chain for an ExceptionGroup). A cancellation from elsewhere stays a
 * CancelledError. delay CG_NEVER: no deadline. Errors of fn pass through. */
CG_API void cg_timeout_call(cg_ns delay, void (*fn)(void *arg), void *arg);
/* The same with a deadline on the loop's clock (timeout_at). */
CG_API void cg_timeout_at_call(cg_ns when, void (*fn)(void *arg), void *arg);

/* The Timeout object, to reschedule it or ask it whether it expired.
 * cg_timeout_new(delay): deadline loop.time() + delay of the running loop
 * (RuntimeError('no running event loop') outside one); cg_timeout_at_new:
 * the deadline itself. NULL with errno ENOMEM. Free with cg_timeout_free
 * (NULL is ignored), after the scope. */
typedef struct cg_timeout cg_timeout;
CG_API cg_timeout *cg_timeout_new(cg_ns delay);
CG_API cg_timeout *cg_timeout_at_new(cg_ns when);
CG_API void cg_timeout_free(cg_timeout *t);
/* `async with t: fn(arg)`. */
CG_API void cg_timeout_run(cg_timeout *t, void (*fn)(void *arg), void *arg);
/* __aenter__ and __aexit__, for code that cannot put its block in a
 * function. cg_timeout_exit is called once the block is over: with NULL
 * after it completed, or from a CG_EXCEPT(&cg_BaseException, e) handler of
 * what it raised, with e (then re-raise e with cg_reraise() if exit
 * returns; it may raise TimeoutError instead, chained to e). Enter errors:
 * RuntimeError('Timeout has already been entered'), RuntimeError('Timeout
 * should be used inside a task'); exit without enter: AssertionError(). */
CG_API void cg_timeout_enter(cg_timeout *t);
CG_API void cg_timeout_exit(cg_timeout *t, cg_exc *exc);
/* when(): the deadline (CG_NEVER: none). reschedule(when): a new deadline
 * (at or before now: the timeout fires at the next iteration);
 * RuntimeError('Timeout has not been entered') before the scope,
 * RuntimeError('Cannot change state of expiring Timeout') (expired,
 * finished) after it fired or ended. expired(): it fired. */
CG_API cg_ns cg_timeout_when(const cg_timeout *t);
CG_API void cg_timeout_reschedule(cg_timeout *t, cg_ns when);
CG_API int cg_timeout_expired(const cg_timeout *t);
/* repr(t): '<Timeout [active] when=1.5>', '<Timeout [expired]>', ...
 * snprintf's contract. */
CG_API size_t cg_timeout_repr(const cg_timeout *t, char *buf, size_t size);

/* ---------------------------------------------------------------------
 * TaskGroup
 * ------------------------------------------------------------------ */

/* `async with asyncio.TaskGroup() as tg: fn(tg, arg)`, inside a task: fn
 * spawns tasks into tg (cg_taskgroup_spawn); when fn is over, the scope
 * waits for all of them. The first task to fail (with an exception other
 * than CancelledError) cancels the others and the task running the scope;
 * when all are done, the scope raises
 * BaseExceptionGroup('unhandled errors in a TaskGroup', errors) (an
 * ExceptionGroup when all are Exceptions), whose __context__ is what fn
 * raised, in the order the tasks failed, followed by fn's own exception if
 * it was not a CancelledError. A SystemExit or KeyboardInterrupt is raised
 * alone instead. The scope's own cancellation is undone (uncancel) when it
 * was the group's doing, and kept (re-cancelled) when someone else also
 * cancelled the task, as 3.13 does. The group is freed at the end. */
typedef struct cg_taskgroup cg_taskgroup;
CG_API void cg_taskgroup_run(void (*fn)(cg_taskgroup *tg, void *arg), void *arg);

/* tg.create_task(body(arg), name=name): a new reference to the task.
 * RuntimeError('TaskGroup <TaskGroup> has not been entered'), ('TaskGroup
 * <TaskGroup> is finished') after the scope, ('TaskGroup <TaskGroup tasks=1
 * errors=1 cancelling> is shutting down') once a task failed (the body
 * never runs then). NULL body: TypeError. MemoryError before the task is
 * made when out of memory (spawning makes the room for the error the task
 * may add). */
CG_API cg_task *cg_taskgroup_spawn(cg_taskgroup *tg, cg_fn body, void *arg, const char *name);
/* The same with the task's options (name, stack size, generator flags), as
 * cg_task_new takes them; opts NULL: an unnamed task with the defaults. */
CG_API cg_task *cg_taskgroup_spawn_opts(cg_taskgroup *tg, cg_fn body, void *arg, const cg_task_opts *opts);

/* The group as an object, for scopes written without a function:
 * cg_taskgroup_new (NULL with errno ENOMEM), cg_taskgroup_run_in (the
 * scope with an existing group), or enter and exit around the block, exit
 * called as cg_timeout_exit is (it waits for the tasks, so it suspends the
 * task). Enter errors: RuntimeError('TaskGroup <TaskGroup entered> has
 * already been entered'), ('TaskGroup <TaskGroup> cannot determine the
 * parent task') outside a task. cg_taskgroup_free after the scope. */
CG_API cg_taskgroup *cg_taskgroup_new(void);
CG_API void cg_taskgroup_run_in(cg_taskgroup *tg, void (*fn)(cg_taskgroup *tg, void *arg), void *arg);
CG_API void cg_taskgroup_enter(cg_taskgroup *tg);
CG_API void cg_taskgroup_exit(cg_taskgroup *tg, cg_exc *exc);
CG_API void cg_taskgroup_free(cg_taskgroup *tg);
/* repr(tg): '<TaskGroup tasks=2 errors=1 cancelling>'. snprintf's contract. */
CG_API size_t cg_taskgroup_repr(const cg_taskgroup *tg, char *buf, size_t size);

/* ======================================================================
 * Synchronization primitives and queues
 *
 * asyncio's Lock, Event, Condition, Semaphore, BoundedSemaphore, Barrier
 * (locks.py) and Queue, LifoQueue, PriorityQueue (queues.py), with CPython
 * 3.13's semantics: FIFO hand-off to waiters, the 3.13 wake-up rules of
 * Semaphore, Queue.shutdown, and waiters that are cancelled after the lock,
 * slot or item was handed to them passing it on to the next waiter.
 *
 * Functions that wait (acquire, wait, put, get, join, Barrier's wait, reset
 * and abort) must be called inside a task, at any depth of its stack, like
 * cg_await; they wait only when they must (an uncontended acquire does not
 * suspend), and a cancellation of the task raises CancelledError out of
 * them. One that must wait in a loop's callback, outside any task, raises
 * cg_await's RuntimeError('cg_await() called outside a task') and leaves
 * no waiter behind. The others may be called anywhere, also outside a
 * loop.
 *
 * Loops. An object belongs to one loop: the loop given to its constructor,
 * or, with NULL, the loop running when it first has to wait (asyncio's
 * _LoopBoundMixin). Waiting on it from a task of another loop raises
 * RuntimeError('<repr> is bound to a different event loop'), repr being
 * asyncio's ("<asyncio.locks.Lock object at 0x... [locked, waiters:1]>",
 * "<Queue at 0x... maxsize=1 _queue=[0x2a] tasks=1>", queue items shown
 * by their pointer value, None for NULL); having to wait outside any loop
 * raises RuntimeError('no running event loop').
 *
 * Memory. Constructors return NULL with errno ENOMEM when out of memory
 * (they raise only the ValueError of a bad argument, as asyncio does). An
 * operation that needs memory and finds none raises MemoryError and
 * changes nothing. *_free drops the creator's hold on the object: calls
 * in progress on it (a task suspended in acquire, get, ..., or running the
 * body of cg_lock_with) keep it alive until they return, and a Condition
 * keeps its lock alive; NULL is ignored. Using an object after its *_free is
 * undefined. The library never owns the void * items of a queue.
 *
 * NULL objects: operations raise TypeError('<function>() argument must be
 * a Lock, not NULL') (an Event, a Queue, ...); queries (locked, is_set,
 * qsize, ...) answer 0, empty answers 1.
 * ====================================================================== */

/* asyncio.QueueEmpty, QueueFull, QueueShutDown (Exception) and
 * BrokenBarrierError (RuntimeError, as asyncio's). */
extern CG_API const cg_exc_type cg_QueueEmpty;
extern CG_API const cg_exc_type cg_QueueFull;
extern CG_API const cg_exc_type cg_QueueShutDown;
extern CG_API const cg_exc_type cg_BrokenBarrierError;

typedef struct cg_lock cg_lock;
typedef struct cg_event cg_event;
typedef struct cg_condition cg_condition;
typedef struct cg_semaphore cg_semaphore;
typedef struct cg_barrier cg_barrier;
typedef struct cg_queue cg_queue;

/* ---------------------------------------------------------------------
 * Lock
 * ------------------------------------------------------------------ */

CG_API cg_lock *cg_lock_new(cg_loop *loop);
CG_API void cg_lock_free(cg_lock *l);
/* await lock.acquire(): returns 1 (True) once the lock is this task's.
 * Waiters get the lock in the order they asked; a cancelled waiter that had
 * been handed the lock passes it on. */
CG_API int cg_lock_acquire(cg_lock *l);
/* lock.release(): RuntimeError('Lock is not acquired.') when unlocked. Any
 * task may release it (an asyncio Lock has no owner). */
CG_API void cg_lock_release(cg_lock *l);
CG_API int cg_lock_locked(const cg_lock *l);
/* async with lock: body(arg) between acquire and release; release runs
 * also when body raises (an exception of release then replaces body's,
 * chained to it, as in __aexit__). */
CG_API void cg_lock_with(cg_lock *l, void (*body)(void *arg), void *arg);

/* ---------------------------------------------------------------------
 * Event
 * ------------------------------------------------------------------ */

CG_API cg_event *cg_event_new(cg_loop *loop);
CG_API void cg_event_free(cg_event *e);
/* set(): every task waiting now is released, even if clear() comes before
 * they run. */
CG_API void cg_event_set(cg_event *e);
CG_API void cg_event_clear(cg_event *e);
CG_API int cg_event_is_set(const cg_event *e);
/* await event.wait(): 1 (True), at once when the event is set. */
CG_API int cg_event_wait(cg_event *e);

/* ---------------------------------------------------------------------
 * Condition
 * ------------------------------------------------------------------ */

/* Condition(lock): lock NULL makes a new Lock of its own (on the same
 * loop); a given lock is shared (the condition keeps it alive). */
CG_API cg_condition *cg_condition_new(cg_loop *loop, cg_lock *lock);
CG_API void cg_condition_free(cg_condition *c);
/* The condition's lock (borrowed): acquire, release, locked and
 * cg_lock_with on it are the condition's. */
CG_API cg_lock *cg_condition_lock(const cg_condition *c);
/* await cond.wait(): releases the lock, waits for a notify, re-acquires
 * the lock (also when cancelled: the CancelledError is raised once the lock
 * is held again), returns 1. RuntimeError('cannot wait on un-acquired
 * lock') if the lock is not locked. */
CG_API int cg_condition_wait(cg_condition *c);
/* await cond.wait_for(predicate): waits until pred(ud) is non-zero and
 * returns that value; pred is called with the lock held. */
CG_API int cg_condition_wait_for(cg_condition *c, int (*pred)(void *ud), void *ud);
/* notify(n), notify_all(): wake n (all) waiters; RuntimeError('cannot
 * notify on un-acquired lock') if the lock is not locked. */
CG_API void cg_condition_notify(cg_condition *c, long n);
CG_API void cg_condition_notify_all(cg_condition *c);

/* ---------------------------------------------------------------------
 * Semaphore, BoundedSemaphore
 * ------------------------------------------------------------------ */

/* Semaphore(value), BoundedSemaphore(value): ValueError('Semaphore initial
 * value must be >= 0') for a negative value. */
CG_API cg_semaphore *cg_semaphore_new(cg_loop *loop, long value);
CG_API cg_semaphore *cg_bounded_semaphore_new(cg_loop *loop, long value);
CG_API void cg_semaphore_free(cg_semaphore *s);
/* await sem.acquire(): 1 (True). */
CG_API int cg_semaphore_acquire(cg_semaphore *s);
/* release(): a BoundedSemaphore above its initial value raises
 * ValueError('BoundedSemaphore released too many times'). */
CG_API void cg_semaphore_release(cg_semaphore *s);
/* locked(): acquire would wait (the value is 0, or a waiter that is not
 * cancelled is ahead). */
CG_API int cg_semaphore_locked(const cg_semaphore *s);
/* The counter (Semaphore._value), for inspection. */
CG_API long cg_semaphore_value(const cg_semaphore *s);
/* async with sem, as cg_lock_with. */
CG_API void cg_semaphore_with(cg_semaphore *s, void (*body)(void *arg), void *arg);

/* ---------------------------------------------------------------------
 * Barrier
 * ------------------------------------------------------------------ */

/* Barrier(parties): ValueError('parties must be > 0'). */
CG_API cg_barrier *cg_barrier_new(cg_loop *loop, long parties);
CG_API void cg_barrier_free(cg_barrier *b);
/* await barrier.wait(): the caller's index, 0 to parties-1, once parties
 * tasks wait. BrokenBarrierError('Barrier aborted') if the barrier is
 * broken, BrokenBarrierError('Abort or reset of barrier') when it is reset
 * or aborted during the wait. */
CG_API long cg_barrier_wait(cg_barrier *b);
/* await barrier.reset(), await barrier.abort(). */
CG_API void cg_barrier_reset(cg_barrier *b);
CG_API void cg_barrier_abort(cg_barrier *b);
CG_API long cg_barrier_parties(const cg_barrier *b);
CG_API long cg_barrier_n_waiting(const cg_barrier *b);
CG_API int cg_barrier_broken(const cg_barrier *b);

/* ---------------------------------------------------------------------
 * Queues
 * ------------------------------------------------------------------ */

/* Queue(maxsize), LifoQueue(maxsize), PriorityQueue(maxsize); maxsize 0
 * or less: unbounded. A PriorityQueue gives the smallest item first, by
 * cmp(a, b, ud) < 0 meaning a < b (it uses heapq's algorithm, so items
 * that compare equal come out in the order Python's heapq gives them);
 * cmp NULL: the items are integer priorities (intptr_t cast to void *).
 * cmp must not raise. */
typedef int (*cg_queue_cmp)(const void *a, const void *b, void *ud);
CG_API cg_queue *cg_queue_new(cg_loop *loop, long maxsize);
CG_API cg_queue *cg_lifo_queue_new(cg_loop *loop, long maxsize);
CG_API cg_queue *cg_priority_queue_new(cg_loop *loop, long maxsize, cg_queue_cmp cmp, void *ud);
/* Frees the queue (once no task waits in it), dropping the items left. */
CG_API void cg_queue_free(cg_queue *q);
/* drop(item, ud) is called for every item the queue discards: those
 * shutdown(immediate) removes and those left when it is freed. drop must
 * not raise. NULL: none. */
CG_API void cg_queue_set_drop(cg_queue *q, void (*drop)(void *item, void *ud), void *ud);

/* await q.put(item): waits for a free slot. QueueShutDown() once shut
 * down (also for a putter blocked when shutdown() comes). */
CG_API void cg_queue_put(cg_queue *q, void *item);
/* await q.get(): waits for an item. QueueShutDown() once shut down and
 * empty (at once after shutdown(immediate=True)). */
CG_API void *cg_queue_get(cg_queue *q);
/* put_nowait: QueueShutDown() when shut down, QueueFull() when full. */
CG_API void cg_queue_put_nowait(cg_queue *q, void *item);
/* get_nowait: QueueShutDown() when shut down and empty, QueueEmpty() when
 * empty. */
CG_API void *cg_queue_get_nowait(cg_queue *q);
/* task_done(): ValueError('task_done() called too many times'). */
CG_API void cg_queue_task_done(cg_queue *q);
/* await q.join(): until task_done() was called for every item put. */
CG_API void cg_queue_join(cg_queue *q);
/* shutdown(immediate): later puts raise QueueShutDown, gets once the queue
 * is empty; blocked putters and getters are woken to see it. immediate:
 * the items left are discarded (see cg_queue_set_drop), each counting as
 * a task_done. */
CG_API void cg_queue_shutdown(cg_queue *q, int immediate);
CG_API size_t cg_queue_qsize(const cg_queue *q);
CG_API int cg_queue_empty(const cg_queue *q);
CG_API int cg_queue_full(const cg_queue *q);
CG_API long cg_queue_maxsize(const cg_queue *q);

/* ======================================================================
 * Debug mode
 * ====================================================================== */

/* loop.set_debug(): asyncio's debug mode, also on for every loop when the
 * environment variable COGEN_DEBUG is set (not 0): calls that are not
 * thread-safe (call_soon, call_later, call_at, task creation, set_result,
 * set_exception, cancel of a future), made on a running loop from another
 * thread, raise RuntimeError('Non-thread-safe operation invoked on an
 * event loop other than the current one'); a step or callback that runs
 * 100 ms or more is logged on stderr ('cogen: Executing <Task 'name'> step
 * took 0.150 seconds'); a task the loop drops without its ever having run
 * is logged with where it was created. (Exceptions nobody retrieved and
 * tasks destroyed while pending are reported in any mode.) */
CG_API void cg_loop_set_debug(cg_loop *loop, int on);
CG_API int cg_loop_get_debug(const cg_loop *loop);

/* ======================================================================
 * Task dumps
 * ====================================================================== */

/* Writes every task of loop (NULL: the running loop) to f (NULL: stderr),
 * one line each: its name and number, its state (scheduled, running,
 * suspended, not started), what a suspended task awaits (an fd and its
 * direction, a sleep and the time left, a Lock/Event/Condition/Semaphore/
 * Queue and its address, another task, a future), where it awaits and
 * where it was created (file:line, recorded by the macros below), and the
 * task that created it. Call it on the loop's thread (a task, a callback)
 * or while the loop does not run. */
CG_API void cg_loop_dump_tasks(cg_loop *loop, FILE *f);
/* Opt-in: signal sig (SIGUSR1, say) makes every running loop dump its
 * tasks to stderr at its next iteration (a loop waiting for I/O is woken
 * within 50 ms). 0 turns it off. 0, or -1 with errno. */
CG_API int cg_task_dump_on_signal(int sig);

/* Call sites for the dump. The calls that create a task or wait are
 * macros outside the library that record the call site in the thread
 * (one store: a string literal "file:line", static, so that a task keeps
 * only its address) before they call the function of the same name;
 * calling the function itself (through a pointer, or with the name in
 * parentheses) records nothing. */
extern CG_API __thread const char *cg__site;
/* A call, not an assignment in the macro: two of the macros in one
 * expression (an initializer list) are then not unsequenced stores. */
static inline void cg__site_at(const char *site) { cg__site = site; }
#define CG__SITE_STR2(x) #x
#define CG__SITE_STR(x) CG__SITE_STR2(x)
#ifndef COGEN_BUILDING
#define CG__SITE() cg__site_at(__FILE__ ":" CG__SITE_STR(__LINE__))
#define cg_await(f) (CG__SITE(), cg_await(f))
#define cg_sleep(d) (CG__SITE(), cg_sleep(d))
#define cg_task_new(loop, body, arg, opts) (CG__SITE(), cg_task_new(loop, body, arg, opts))
#define cg_create_task(body, arg, name) (CG__SITE(), cg_create_task(body, arg, name))
#define cg_lock_acquire(l) (CG__SITE(), cg_lock_acquire(l))
#define cg_event_wait(e) (CG__SITE(), cg_event_wait(e))
#define cg_condition_wait(c) (CG__SITE(), cg_condition_wait(c))
#define cg_semaphore_acquire(s) (CG__SITE(), cg_semaphore_acquire(s))
#define cg_barrier_wait(b) (CG__SITE(), cg_barrier_wait(b))
#define cg_queue_get(q) (CG__SITE(), cg_queue_get(q))
#define cg_queue_put(q, item) (CG__SITE(), cg_queue_put(q, item))
#define cg_queue_join(q) (CG__SITE(), cg_queue_join(q))
#endif

/* ======================================================================
 * Metrics and the stall detector
 * ====================================================================== */

/* loop's counters (read on its own thread, or while it does not run):
 * iterations of run_once, entries of the ready queue run (task steps and
 * callbacks), task steps, the time spent waiting for I/O or timers (as
 * libuv's uv_metrics_idle_time), tasks alive (not yet finished), fds
 * registered. */
typedef struct cg_metrics {
    uint64_t iterations, entries, steps;
    cg_ns idle_ns;
    size_t tasks, fds;
} cg_metrics;
CG_API void cg_loop_metrics(const cg_loop *loop, cg_metrics *m);

/* The stall detector, on by default: a task step or callback that holds
 * its loop past the threshold (100 ms, asyncio debug mode's slow-callback
 * limit; the environment variable COGEN_STALL_MS=N sets it, 0 turns it
 * off) is reported once on stderr by the loop's thread: the task's name,
 * for how long, and a backtrace of what runs (through SIGURG, whose
 * default action is to be ignored, unless the program handles SIGURG
 * itself: then without the backtrace). Costs the loop one store per entry
 * it runs. cg_stall_threshold sets it (ns; -1 only reads) and returns
 * the previous one. */
CG_API cg_ns cg_stall_threshold(cg_ns ns);

/* ======================================================================
 * The trace recorder
 * ====================================================================== */

/* cg_trace_start, cg_trace_stop, cg_trace_active, cg_trace_begin and
 * cg_trace_end are declared in cogen.h ("The trace recorder"), since plain
 * generators are traced too: with a loop, each task step is an event (its
 * task, loop and thread, start and end, what the task then waits on:
 * "ready", "sleep", "future", "task NAME", "fd (read)"...), and the plain
 * generators a step resumes are events inside it on the same track. Off,
 * the recorder costs the loop one predictable branch per task step. */

#ifdef __cplusplus
}
#endif
#endif
