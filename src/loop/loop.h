/* loop.h: the event loop layer's own header (src/loop/): the loop, its
 * callbacks and timers (loop.c), futures (future.c) and tasks (task.c).
 * It stands on the public API of the generator core (cogen.h) and on the
 * thread layer's hooks; nothing of the core's internals. */
#ifndef COGEN_LOOP_INTERNAL_H
#define COGEN_LOOP_INTERNAL_H

#include "cogen_loop.h"
#include "core/thread.h"

#include <pthread.h>
#include <stddef.h>

/* ---------------------------------------------------------------------
 * Handles: a callback waiting in the ready queue or among the timers
 * ------------------------------------------------------------------ */

/* What a handle calls: a plain callback, a future's done callback, or a
 * task step (with the exception to throw in, owned). */
enum { H_PLAIN = 0, H_DONE, H_STEP };

struct cg_handle {
    long refs;
    unsigned char kind;      /* H_* */
    unsigned char cancelled;
    unsigned char timer;     /* made by call_later/call_at */
    unsigned char scheduled; /* in the timer heap */
    cg_callback fn;          /* H_PLAIN */
    void *arg;
    cg_done_callback done_fn; /* H_DONE: done_fn(fut, arg) */
    cg_future *fut;          /* H_DONE: the future (owned); H_STEP: the task (owned) */
    cg_exc *exc;             /* H_STEP: thrown in (owned) */
    cg_loop *loop;           /* timers: whose heap */
    cg_ns when;              /* timers: deadline */
    uint64_t seq;            /* timers: order among equal deadlines */
    size_t heap_at;          /* timers: index in the heap */
    struct cg_handle *next;  /* ready queue link */
};

/* ---------------------------------------------------------------------
 * Futures and tasks
 * ------------------------------------------------------------------ */

enum { F_PENDING = 0, F_CANCELLED, F_FINISHED };

typedef struct done_cb {
    cg_done_callback fn;
    void *arg;
} done_cb;

/* A future of a kind of its own (gather's _GatheringFuture): Future.cancel
 * overridden, and what to free with the future. Either may be NULL. */
typedef struct cg__future_ops {
    int (*cancel)(cg_future *f, const char *msg);
    void (*fini)(cg_future *f);
} cg__future_ops;

struct cg_future {
    long refs;
    const cg__future_ops *ops; /* NULL for a plain future or a task */
    cg_loop *loop;
    unsigned char state;      /* F_* */
    unsigned char is_task;
    unsigned char log_tb;     /* an exception nobody has retrieved */
    void *result;
    cg_exc *exc;              /* FINISHED with an exception (owned) */
    char *cancel_msg;         /* Future.cancel(msg) (owned), or NULL */
    cg_exc *cancelled_exc;    /* the CancelledError a task ended with,
                                 handed out once (owned) */
    done_cb *cbs;             /* done callbacks, in registration order:
                                 &cb0 while there is room for one only */
    size_t ncbs, cbs_cap;
    done_cb cb0;              /* the first, without an allocation (as
                                 CPython's fut_callback0) */
};

struct cg_task {
    cg_future fut;            /* first: a task is a future */
    cg_gen *gen;
    char *name;               /* owned */
    cg_future *fut_waiter;    /* what it awaits (owned), or NULL */
    cg_future *awaiting;      /* set by cg_await just before it yields */
    int num_cancels;          /* cancelling() */
    unsigned char must_cancel;
    unsigned char started;
    unsigned char log_destroy_pending; /* reported if dropped pending (0: a
                                          task gather made for a coroutine) */
    uint64_t serial;          /* creation order */
    struct cg_task *all_next, *all_prev; /* the loop's tasks, creation order */
};

/* The token a task yields to its driver when it awaits (cg_await): the
 * future is in task->awaiting. NULL is a bare yield; anything else is a
 * bad yield. In an async generator's body the same token goes to the
 * generator's driver (agen.c), the future in its awaiting field, and a
 * bare yield (cg_sleep(0)) is cg__bare_token, since NULL is a value there. */
extern CG_HIDDEN char cg__await_token;
extern CG_HIDDEN char cg__bare_token;
/* The async generator whose body runs now, or NULL. */
extern __thread struct cg_agen *cg__agen_running CG_HIDDEN;
/* Where an await in the running code goes: 1 and *ag set for an async
 * generator's body, else 0 (the task's own stack; checked by task.c). */
CG_HIDDEN int cg__agen_context(struct cg_agen **ag);
CG_HIDDEN void cg__agen_set_awaiting(struct cg_agen *ag, cg_future *f);
/* Loop close: started async generators forget the loop. */
CG_HIDDEN void cg__agen_forget_loop(cg_loop *loop);
/* A future done when every task of v is (gather(*v, return_exceptions=
 * True)), their exceptions retrieved. New reference. */
CG_HIDDEN cg_future *cg__gather_all(cg_loop *loop, cg_task **v, size_t n);
/* Its waiter gives up before the future is done (its task is closed): the
 * callbacks still on the tasks of v go, with what they would have freed. */
CG_HIDDEN void cg__gather_all_abandon(cg_future *outer, cg_task **v, size_t n);
/* shutdown_asyncgens: aclose every started async generator. */
CG_HIDDEN void cg__agen_shutdown(cg_loop *loop);

/* ---------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------ */

struct cg_loop {
    unsigned flags;           /* CG_LOOP_* */
    unsigned char running;
    unsigned char stopping;
    unsigned char closed;
    cg_ns now;                /* the virtual clock */
    cg_ns base;               /* real clock: monotonic time at creation */
    cg_handle *ready_head, *ready_tail;
    size_t nready;
    cg_handle **heap;         /* timers, by (when, seq) */
    size_t nheap, heap_cap;
    uint64_t timer_seq;
    uint64_t task_serial;
    unsigned long unnamed;    /* Task-N counter */
    cg_task *tasks_head, *tasks_tail; /* every task not yet finalized, in creation order */
    cg_task *current;         /* the task whose step runs */
    struct cg_agen *agens_head, *agens_tail; /* async generators whose
                                 iteration started, in that order (agen.c) */
    cg_loop *prev_running;    /* the thread's running loop before this one */
    cg_loop_exception_handler handler;
    void *handler_ud;
    uint64_t serial;          /* distinct for every loop of the process, so
                                 that what was bound to a freed loop is not
                                 taken as bound to a new one at its address */
    /* call_soon_threadsafe */
    pthread_mutex_t ts_lock;
    cg_handle *ts_head, *ts_tail;
    int wake_fd;              /* eventfd, -1 until first needed */
    /* Handles the loop ran and was the last to hold, kept for reuse
     * (linked by next), and the allocator generation they came from. */
    cg_handle *handle_cache;
    unsigned nhandle_cache;
    unsigned handle_cache_gen;
    cg__allocator handle_cache_alloc;
};

/* Schedules a handle at the end of the ready queue (takes a reference). */
CG_HIDDEN void cg__loop_ready(cg_loop *loop, cg_handle *h);
/* Handles for the internal kinds; NULL when out of memory. The loop's
 * variant reuses a handle the loop has run, when it has one. */
CG_HIDDEN cg_handle *cg__handle_new(void);
CG_HIDDEN cg_handle *cg__loop_handle_new(cg_loop *loop);
/* Schedules task's step with exc (owned) to be thrown in, via call_soon.
 * Out of memory: fatal (a task must never be lost). */
CG_HIDDEN void cg__task_schedule_step(cg_task *t, cg_exc *exc);
/* Runs a handle (the loop's iteration). */
CG_HIDDEN void cg__task_step(cg_task *t, cg_exc *exc);
/* The done callback that wakes a task awaiting a future (Task.__wakeup):
 * a step, which raises nothing. */
CG_HIDDEN void cg__task_wakeup(cg_future *f, void *arg);
CG_HIDDEN void cg__future_schedule_callbacks(cg_future *f);
/* The task a loop runs now, as asyncio's _enter_task/_leave_task. */
CG_HIDDEN void cg__loop_report(cg_loop *loop, const char *message, cg_exc *e, cg_future *f);
/* A task leaves the loop's list (finalized). */
CG_HIDDEN void cg__task_finalize_all(cg_loop *loop);
/* Frees what a future holds (not the struct). */
CG_HIDDEN void cg__future_clear(cg_future *f);
/* A CancelledError for a future (_make_cancelled_error). New reference. */
CG_HIDDEN cg_exc *cg__future_cancelled_error(cg_future *f);
/* Future.cancel without the task's override. */
CG_HIDDEN int cg__future_cancel_plain(cg_future *f, const char *msg);
CG_HIDDEN void cg__future_set_result_plain(cg_future *f, void *v);
CG_HIDDEN void cg__future_set_exception_plain(cg_future *f, cg_exc *e);
CG_HIDDEN char *cg__strdup(const char *s);

/* The loop running in this thread. */
extern __thread cg_loop *cg__running_loop CG_HIDDEN;

#endif
