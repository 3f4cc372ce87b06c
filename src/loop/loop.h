/* loop.h: the event loop layer's own header (src/loop/): the loop, its
 * callbacks and timers (loop.c), futures (future.c) and tasks (task.c).
 * It stands on the public API of the generator core (cogen.h) and on the
 * thread layer's hooks; nothing of the core's internals. */
#ifndef COGEN_LOOP_INTERNAL_H
#define COGEN_LOOP_INTERNAL_H

#include "cogen_loop.h"
#include "core/gen_trace.h"
#include "core/thread.h"

#include <pthread.h>
#include <signal.h>
#include <stddef.h>

/* ---------------------------------------------------------------------
 * The ready queue and its handles
 * ------------------------------------------------------------------ */

/* An entry of the ready queue (one FIFO for everything, as asyncio's
 * _ready): a handle (R_PLAIN, R_DONE), a task's step, or the done
 * callbacks of a future that has just completed. The last two are embedded
 * in the future (a task is one), so that scheduling them never allocates
 * and so never fails: a task has at most one step pending (it is stepped,
 * scheduled, or awaiting a future), and a future completes once. Running a
 * future's callbacks from one entry is running them from consecutive
 * call_soon handles, as asyncio schedules them: they are queued together,
 * nothing can come between them, and none of them can be cancelled. A
 * sleeping task's entry is its sleep's timer callback too (R_WAKE: queued
 * when the timer comes up, it schedules the step with itself): a task
 * that sleeps is not scheduled, and has no callbacks to run yet. */
enum { R_PLAIN = 0, R_DONE, R_STEP, R_CALLBACKS, R_WAKE };

typedef struct cg__ready {
    struct cg__ready *next;
    unsigned char kind;   /* R_* */
    unsigned char queued; /* in the ready queue (an embedded entry is at most once) */
    uint32_t nlate;       /* a future's entry: R_DONE handles queued for
                             callbacks added once it was done (its loop
                             lives while there are some); in the padding */
} cg__ready;

struct cg_handle {
    cg__ready ready;         /* first: the ready queue entry (R_PLAIN or R_DONE) */
    long refs;
    unsigned char cancelled;
    unsigned char timer;     /* made by call_later/call_at */
    unsigned char scheduled; /* in the timer heap */
    unsigned char embedded;  /* the first member of a timeout scope (structured.c):
                                its last reference frees the scope */
    unsigned alloc_gen;      /* cg__alloc_generation() it was allocated in */
    union {                  /* by ready.kind: 72 bytes, an 80-byte malloc chunk */
        cg_callback fn;           /* R_PLAIN: fn(arg) */
        cg_done_callback done_fn; /* R_DONE: done_fn(fut, arg) */
    };
    void *arg;
    union {
        cg_future *fut;      /* R_DONE: the future (owned) */
        cg_loop *loop;       /* timers (R_PLAIN): whose heap */
    };
    cg_ns when;              /* timers: deadline */
    size_t heap_at;          /* timers: index in the heap */
};

/* A timer in the loop's heap: its key (deadline, then the order it was
 * scheduled in, so that equal deadlines fire first in, first out) beside
 * what it wakes, so that sifting never reads it (loop.c): a timer handle
 * (cg_handle *), or a task asleep in cg_sleep (cg_task * | CG__SLOT_TASK),
 * whose sleep needs no handle: the slot is its timer. */
typedef struct cg__timer_slot {
    cg_ns when;
    uint64_t seq;
    uintptr_t who;
} cg__timer_slot;
#define CG__SLOT_TASK ((uintptr_t)1)

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
    int (*cancel)(cg_future *f, char *msg); /* msg shared (cg__msg_new), borrowed */
    void (*fini)(cg_future *f);
} cg__future_ops;

struct cg_future {
    int32_t refs;
    unsigned char state;      /* F_* */
    unsigned char is_task;
    unsigned char log_tb;     /* an exception nobody has retrieved */
    unsigned char has_ops;    /* a cg__future_ext: a future of a kind of its own */
    cg_loop *loop;
    cg__ready ready;          /* queued with R_CALLBACKS once it is done
                                 and has callbacks (they stay in cbs until
                                 they run), holding a reference; a task's
                                 steps use it too (R_STEP). Beside refs
                                 and state: a completion touches them all */
    union {
        void *result;         /* FINISHED (without an exception) */
        uintptr_t task_wait;  /* a task's wait word while it is pending
                                 (cg_task): 0 again before it ends */
    };
    cg_exc *exc;              /* FINISHED with an exception (owned) */
    done_cb *cbs;             /* done callbacks, in registration order:
                                 &cb0 while there is room for one only */
    uint32_t ncbs, cbs_cap;
    done_cb cb0;              /* the first, without an allocation (as
                                 CPython's fut_callback0) */
    char *cancel_msg;         /* Future.cancel(msg), and a task's
                                 Task.cancel(msg) while pending: a shared message
                                 (cg__msg_new, one reference), or NULL */
};

struct cg_task {
    cg_future fut;            /* first: a task is a future */
    cg_gen *gen;
    /* fut.task_wait, while it is pending: what it waits on, one at a time:
     * the future it awaits (owned; low bits 0), its sleep's timer (the
     * task's slot in the loop's heap: its index << 3 | CG__WAIT_TIMER, or
     * CG__WAIT_WOKEN once the timer is due and the task's R_WAKE entry is
     * queued), an fd (io.c: a cg__io * | CG__WAIT_FD, the direction in
     * bit 0), or 0. cg__task_waiter and cg__task_io_wait read it. It
     * shares the result's word: read it only while pending. */
    union { /* never both: one lives while the step runs, the other while
               it is scheduled */
        cg_future *awaiting;  /* set by cg_await just before it yields */
        cg_exc *step_exc;     /* thrown in by the step scheduled (owned) */
    };
    int32_t num_cancels;      /* cancelling() */
    unsigned char must_cancel;
    unsigned char started;
    unsigned char log_destroy_pending; /* reported if dropped pending (0: a
                                          task gather made for a coroutine) */
    unsigned char name_heap;  /* the name is name.ptr (owned), not name.buf */
    uint64_t serial;          /* creation order (the task dump's #N) */
    struct cg_task *all_next, *all_prev; /* the loop's tasks, creation order */
    /* For the task dump (cg_loop_dump_tasks): what it awaits beyond the
     * future (a primitive or a sleep's timer handle, its kind CG__AW_* in
     * the low 3 bits), where it awaits and where it was made (the call
     * sites the public macros record: static "file:line" strings), and
     * the task that made it (its serial, 0 for none). */
    union {
        uintptr_t await_obj;  /* while pending */
        cg_exc *cancelled_exc; /* once cancelled: the CancelledError it
                                  ended with, handed out once (owned) */
    };
    const char *await_site, *new_site;
    uint64_t parent;
    union {                   /* the name: 'Task-N' in buf when it fits */
        char buf[16];
        char *ptr;
    } name;
};                            /* 184 bytes: a 192-byte malloc chunk */

/* An fd wait in a task's wait word (io.c); a sleep's timer (loop.c). */
#define CG__WAIT_FD ((uintptr_t)4)
#define CG__WAIT_TIMER ((uintptr_t)2)
#define CG__WAIT_WOKEN (CG__WAIT_TIMER | 1)
#define CG__WAIT_TAGS ((uintptr_t)7)
/* A wait in the deque of waiters of a queue or a primitive, without a
 * future (sync.h): the deque's address | CG__WAIT_SYNC; CG__WAIT_SYNC
 * alone once the wait is cancelled, until the waiting call has seen it. */
#define CG__WAIT_SYNC ((uintptr_t)1)
static inline int cg__task_sync_waiting(const cg_task *t) {
    return (t->fut.task_wait & CG__WAIT_TAGS) == CG__WAIT_SYNC && t->fut.task_wait != CG__WAIT_SYNC;
}
/* Cancels that wait as cancelling its future would (sync.c): the wait
 * word becomes CG__WAIT_SYNC; the caller schedules the task's step with
 * the CancelledError. */
CG_HIDDEN void cg__sync_cancel_wait(cg_task *t);

/* The future a task awaits (borrowed), or NULL. */
static inline cg_future *cg__task_waiter(const cg_task *t) {
    return (t->fut.task_wait & CG__WAIT_TAGS) ? NULL : (cg_future *)t->fut.task_wait;
}
/* What it waits on without a future (a tagged fd or timer), or 0. */
static inline uintptr_t cg__task_io_wait(const cg_task *t) {
    return (t->fut.task_wait & CG__WAIT_TAGS) ? t->fut.task_wait : 0;
}
static inline const char *cg__task_name(const cg_task *t) {
    return t->name_heap ? t->name.ptr : t->name.buf;
}

/* What the task dump says a task awaits (await_obj's tag). */
enum {
    CG__AW_NONE = 0,
    CG__AW_SLEEP,
    CG__AW_LOCK,
    CG__AW_EVENT,
    CG__AW_CONDITION,
    CG__AW_SEMAPHORE,
    CG__AW_QUEUE_GET,
    CG__AW_QUEUE_PUT
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
/* The options of a frame of g's own, a generator g delegates to (wait_for,
 * an async generator's driver), so that what is thrown into the task is
 * chained there as in a coroutine of asyncio's: g's stack size and flags. */
static inline cg_opts cg__frame_opts(const cg_gen *g, const char *name) {
    cg_opts o = {cg_gen_stack_size(g), name,
                 (cg_gen_compact(g) ? CG_OPT_COMPACT : 0u) | (cg_gen_fpenv(g) ? CG_OPT_FPENV : 0u)};
    return o;
}
/* Loop close: started async generators forget the loop. */
CG_HIDDEN void cg__agen_forget_loop(cg_loop *loop);
/* A future done when every task of v is (gather(*v, return_exceptions=
 * True)), their exceptions retrieved. New reference; MemoryError raised
 * (nothing changed) when out of memory. */
CG_HIDDEN cg_future *cg__gather_all(cg_loop *loop, cg_task **v, size_t n);
/* Its waiter gives up before the future is done (its task is closed): the
 * callbacks still on the tasks of v go, with what they would have freed. */
CG_HIDDEN void cg__gather_all_abandon(cg_future *outer, cg_task **v, size_t n);
/* shutdown_asyncgens: aclose every started async generator. */
CG_HIDDEN void cg__agen_shutdown(cg_loop *loop);

/* ---------------------------------------------------------------------
 * The loop
 * ------------------------------------------------------------------ */

/* Up to CG__FREELIST_MAX dead objects of one kind and size, linked through
 * their first word, all from the allocator of generation gen (alloc). */
#define CG__FREELIST_MAX 64
typedef struct cg__freelist {
    void *head;
    unsigned n;
    unsigned gen;
    cg__allocator alloc;
} cg__freelist;

/* The slots of cg_loop.ext. */
enum { CG__EXT_PROCESS = 0, CG__EXT_SIGNAL, CG__EXT_N };

struct cg_loop {
    unsigned flags;           /* CG_LOOP_* */
    unsigned char running;
    unsigned char stopping;
    unsigned char closed;
    cg_ns now;                /* the virtual clock */
    cg_ns base;               /* real clock: monotonic time at creation */
    cg_ns clock;              /* real clock: the last reading in this
                                 iteration (loop time), valid while
                                 clock_valid: what timers are armed from */
    unsigned char clock_valid;
    cg__ready *ready_head, *ready_tail;
    size_t nready;
    size_t ntodo;             /* the iteration's entries not popped yet (the
                                 first ntodo of the queue), while it runs */
    cg__timer_slot *heap;     /* timers, by (when, seq) */
    size_t nheap, heap_cap;   /* heap_cap: the slots free for timers,
                                 without timer_reserved */
    uint64_t timer_seq;
    size_t timer_reserved;    /* heap slots (and timeout_cache blocks)
                                 held for the timers of lazy timeout
                                 scopes (structured.c): one per scope on
                                 timeout_lazy */
    void *timeout_lazy;       /* the lazy scopes entered by the running
                                 task and not yet in the heap, innermost
                                 first (structured.c); NULL between steps */
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
    /* Handles and plain futures nobody holds any more, kept for reuse
     * (loop.c, future.c). */
    cg__freelist handle_cache;
    cg__freelist future_cache;
    cg__freelist timeout_cache; /* timeout scopes (structured.c) */
    /* I/O (io.c): epoll, -1 until an fd is waited on or the loop blocks;
     * the fds it has seen, by number; how many are registered and how
     * many have a waiter or a callback (the loop polls while there are). */
    int epfd;
    unsigned char wake_registered; /* wake_fd is in epfd */
    struct cg__io **io;
    size_t nio;
    size_t io_registered;
    size_t io_waiting;
    /* Per-loop state of the parts of src/io/ that keep some (signal.c,
     * process.c): the loop layer may not call them, so each leaves its
     * state and what releases it here; cg_loop_free calls the fini of each
     * slot once the tasks are finalized, before the fds leave the loop. */
    void *ext[CG__EXT_N];
    void (*ext_fini[CG__EXT_N])(cg_loop *loop);
    /* cg_run's Ctrl-C (task.c): how many SIGINTs arrived (counted by the
     * signal handler), how many the loop has acted on, and the main task
     * the first one cancels. */
    volatile sig_atomic_t sigints;
    sig_atomic_t sigints_seen;
    cg_task *sigint_main;
    /* What higher layers attached to the loop (cg__loop_attach) */
    struct cg__loop_ext *exts;
    size_t external;          /* work on other threads that will call back
                                 with call_soon_threadsafe (cg__loop_hold) */
    /* Metrics (cg_loop_metrics) and the stall detector (watch.c): the
     * counters are written by the loop's thread only; n_entries and
     * blocked are read by the watchdog (relaxed atomics). */
    uint64_t n_iterations, n_entries, n_steps;
    cg_ns idle_ns;
    size_t ntasks;
    int blocked;              /* in epoll_wait (or asleep) */
    int stall_pending;        /* a report for the signal handler */
    cg_ns stall_ns;
    pthread_t thread;         /* running it */
    pid_t tid;                /* the same thread's kernel id */
    struct cg_loop *watch_next, *watch_prev; /* running loops (watch.c) */
    uint64_t stall_seq, stall_reported; /* the watchdog's own */
    cg_ns stall_since;
    cg_ns stall_wait0;        /* the thread's wait for a CPU when the step
                                 was first seen running; -1 not read yet */
    int dump_seen;            /* cg__dump_requests when it last dumped */
    unsigned char debug;      /* asyncio's debug mode (cg_loop_set_debug) */
};

/* Free lists: take a block (NULL when empty, or when the allocator has
 * changed since the cached ones were made: they are then given back to
 * theirs) and put one back (0 when it cannot be kept: the list full, or
 * the block from another allocator generation than the cached ones). */
CG_HIDDEN void cg__freelist_clear(cg__freelist *fl);

static inline void *cg__freelist_take(cg__freelist *fl) {
    void *p = fl->head;
    if (!p) return NULL;
    if (fl->gen != cg__alloc_generation()) {
        cg__freelist_clear(fl);
        return NULL;
    }
    fl->head = *(void **)p;
    fl->n--;
    return p;
}

/* An empty list takes the allocator of the block's generation when that
 * is the one in force (read only when the generation changes: a task's
 * step empties the handle cache of one and refills it at every turn). */
static inline int cg__freelist_put(cg__freelist *fl, void *p, unsigned gen) {
    if (fl->n >= CG__FREELIST_MAX) return 0;
    if (fl->gen != gen) {
        if (fl->head || gen != cg__alloc_generation()) return 0;
        fl->gen = gen;
        fl->alloc = cg__allocator_now();
    }
    *(void **)p = fl->head;
    fl->head = p;
    fl->n++;
    return 1;
}

/* The time timers are armed from (call_later, sleep, timeout scopes): the
 * virtual clock, or the loop's last reading of the real clock in this
 * iteration, read now if there was none (loop.c). */
CG_HIDDEN cg_ns cg__loop_clock_read(cg_loop *loop);
static inline cg_ns cg__loop_now(cg_loop *loop) {
    if (loop->flags & CG_LOOP_VIRTUAL_CLOCK) return loop->now;
    return loop->clock_valid ? loop->clock : cg__loop_clock_read(loop);
}

/* Puts a timer handle (R_PLAIN, fn and arg set, not cancelled, in no
 * heap) in loop's heap at when, with the heap's reference: what
 * cg_loop_call_at does with a handle of the caller's. -1 when out of
 * memory (nothing changed). */
CG_HIDDEN int cg__loop_timer_arm(cg_loop *loop, cg_handle *h, cg_ns when);
/* A task's sleep (cg_sleep in its own body): the task itself goes in the
 * heap at when, its wait word the slot's index (CG__WAIT_TIMER), with no
 * handle; when it is due, the loop queues the task's own entry (R_WAKE,
 * with a reference), which runs where the sleep's timer handle would have
 * run and schedules the task's step, as the handle's callback did. -1 when
 * out of memory (nothing changed). cg__loop_sleep_disarm: the sleep ends
 * before its step (a cancellation, the loop's close): the task leaves the
 * heap, or its queued R_WAKE entry leaves the ready queue; its wait word
 * is 0 after either. cg__loop_sleep_when: the deadline of a task in the
 * heap (the task dump's). */
CG_HIDDEN int cg__loop_sleep_arm(cg_loop *loop, cg_task *t, cg_ns when);
CG_HIDDEN void cg__loop_sleep_disarm(cg_task *t);
CG_HIDDEN cg_ns cg__loop_sleep_when(const cg_task *t);
/* A timer put in the heap later than it was armed: a slot of the heap
 * (hidden from heap_cap, so that timers armed meanwhile cannot take it)
 * and a sequence number are reserved now, cg__loop_timer_arm_reserved
 * puts the handle in with them (it cannot fail: the heap has room) or
 * cg__loop_timer_unreserve gives the slot back. The timer then goes
 * before every timer armed after the reservation with the same deadline,
 * as if it had been armed at once. The caller has checked that the heap
 * has a free slot (nheap < heap_cap). */
static inline uint64_t cg__loop_timer_reserve(cg_loop *loop) {
    uint64_t seq = loop->timer_seq;
    /* (opaque to the optimizer: otherwise gcc loads heap_cap and timer_seq
     * with one 16-byte load, which the 8-byte stores of the unreserve
     * before it cannot forward to: a stall of a dozen cycles per scope) */
    __asm__("" : "+r"(seq));
    loop->heap_cap--;
    loop->timer_reserved++;
    loop->timer_seq = seq + 1;
    return seq;
}
static inline void cg__loop_timer_unreserve(cg_loop *loop) {
    loop->heap_cap++;
    loop->timer_reserved--;
}
CG_HIDDEN void cg__loop_timer_arm_reserved(cg_loop *loop, cg_handle *h, cg_ns when, uint64_t seq);
/* Handle.cancel for a plain timer handle whose owner keeps a reference
 * (a timeout scope's own): it leaves the heap, or is skipped when the
 * ready queue reaches it. */
CG_HIDDEN void cg__loop_timer_disarm(cg_handle *h);
/* The last reference to an embedded handle went: its scope goes back to
 * the loop's timeout_cache, or to the allocator. A timeout scope's own
 * timer is a handle embedded at its start (structured.c), not one of the
 * handle cache's: when its last reference goes (the scope's, or the ready
 * queue's once the scope is freed while its timer is queued), the block
 * goes back whole to the scopes' cache. Inline: a scope entered and left
 * ends here. */
static inline void cg__timeout_block_free(cg_loop *loop, cg_handle *h) {
    if (!loop || !cg__freelist_put(&loop->timeout_cache, h, h->alloc_gen)) cg__dealloc(h);
}
/* Puts the timers of the lazy timeout scopes of task's step, which has
 * just ended, in the heap (structured.c): called by the task step when
 * loop->timeout_lazy is set, before anything can look at the heap. */
CG_HIDDEN void cg__timeout_flush(cg_loop *loop, cg_task *task);
/* Schedules a handle at the end of the ready queue (takes a reference). */
CG_HIDDEN void cg__loop_ready(cg_loop *loop, cg_handle *h);
/* Appends an embedded entry (the caller has given it what it holds).
 * Inline: every task step and every completion with callbacks comes here. */
static inline void cg__loop_ready_entry(cg_loop *loop, cg__ready *r) {
    /* Queued twice, an entry would link the queue into a cycle. */
    CG_CHECK(!r->queued, "a ready queue entry scheduled twice");
    r->queued = 1;
    r->next = NULL;
    if (loop->ready_tail)
        loop->ready_tail->next = r;
    else
        loop->ready_head = r;
    loop->ready_tail = r;
    loop->nready++;
}
/* Handles for the internal kinds; NULL when out of memory. The loop's
 * variant reuses a handle the loop has run, when it has one. */
CG_HIDDEN cg_handle *cg__handle_new(void);
CG_HIDDEN cg_handle *cg__loop_handle_new(cg_loop *loop);
/* await f, returning what it would raise (a new reference) instead of
 * raising it; NULL when f has a result. */
CG_HIDDEN cg_exc *cg__await_catch(cg_future *f);
/* Task.__step: resumes the task's generator once. */
CG_HIDDEN void cg__task_step(cg_task *t, cg_exc *exc);

/* The done callback that wakes a task awaiting a future (Task.__wakeup):
 * a step, which raises nothing. */
CG_HIDDEN void cg__task_wakeup(cg_future *f, void *arg);
CG_HIDDEN void cg__future_schedule_callbacks(cg_future *f);
/* Removes the done callback fn(arg) of f, also once it is scheduled and
 * has not run yet (where Future.remove_done_callback is too late): for the
 * library's own callbacks, whose arg is about to be freed. Returns how many
 * there were. */
CG_HIDDEN size_t cg__future_forget_callback(cg_future *f, cg_done_callback fn, void *arg);
/* The task a loop runs now, as asyncio's _enter_task/_leave_task. */
CG_HIDDEN void cg__loop_report(cg_loop *loop, const char *message, cg_exc *e, cg_future *f);
/* A task leaves the loop's list (finalized). */
CG_HIDDEN void cg__task_finalize_all(cg_loop *loop);
/* References on a future the caller knows is not NULL, inline for the
 * loop's hot paths (a task's step, a wake-up): cg_future_ref/unref are
 * calls. cg__future_free: the last reference went. */
CG_HIDDEN void cg__future_free(cg_future *f);
static inline cg_future *cg__fut_ref(cg_future *f) {
    f->refs++;
    return f;
}
static inline void cg__fut_unref(cg_future *f) {
    if (--f->refs == 0) cg__future_free(f);
}
/* Schedules task's step with exc (owned) to be thrown in, as call_soon
 * would: with the entry embedded in the task, so it never allocates.
 * Inline: a bare yield (sleep(0)) schedules one on every step. */
static inline void cg__task_schedule_step(cg_task *t, cg_exc *exc) {
    t->step_exc = exc;
    t->fut.ready.kind = R_STEP;
    cg__fut_ref(&t->fut); /* the entry's */
    cg__loop_ready_entry(t->fut.loop, &t->fut.ready);
}
/* A future with ops (has_ops set) begins with this: ops follows the
 * future, which it does not make bigger for the others (a task). */
typedef struct cg__future_ext {
    cg_future fut;
    const cg__future_ops *ops;
} cg__future_ext;
static inline const cg__future_ops *cg__future_ops_of(const cg_future *f) {
    return f->has_ops ? ((const cg__future_ext *)f)->ops : NULL;
}
/* Frees what a future holds (not the struct). */
CG_HIDDEN void cg__future_clear(cg_future *f);
/* A CancelledError for a future (_make_cancelled_error). New reference. */
CG_HIDDEN cg_exc *cg__future_cancelled_error(cg_future *f);
/* cg__task_wakeup's body, inline for the loop's one-task wake-up: steps
 * t with what f raises, and drops the reference the callback held. */
static inline void cg__task_wake(cg_future *f, cg_task *t) {
    cg_exc *e = NULL;
    if (f->state == F_CANCELLED) {
        e = cg__future_cancelled_error(f);
    } else if (f->exc) {
        f->log_tb = 0;
        e = cg_exc_ref(f->exc);
    }
    cg__task_step(t, e);
    cg__fut_unref(&t->fut);
}
CG_HIDDEN cg_exc *cg__future_make_cancelled_error(cg_future *f); /* a task's kept message too */
/* Cancel messages: made once by the public cancel calls (NULL when out of
 * memory, or for a NULL s), then shared by reference, so that passing one
 * on (a task's to the future it awaits, to the children of a gather, to its
 * own future when it ends) never allocates. NULL is no message. */
CG_HIDDEN char *cg__msg_new(const char *s);
CG_HIDDEN char *cg__msg_ref(char *m);
CG_HIDDEN void cg__msg_unref(char *m);
/* Future.cancel(msg) with a shared message (borrowed): Task.cancel for a
 * task, the future's own override, or the plain one. Never allocates. */
CG_HIDDEN int cg__future_cancel(cg_future *f, char *msg);
/* Future.cancel without the task's override. */
CG_HIDDEN int cg__future_cancel_plain(cg_future *f, char *msg);
/* Task.cancel with a shared message. */
CG_HIDDEN int cg__task_cancel(cg_task *t, char *msg);
CG_HIDDEN void cg__future_set_result_plain(cg_future *f, void *v);
CG_HIDDEN void cg__future_set_exception_plain(cg_future *f, cg_exc *e);
CG_HIDDEN char *cg__strdup(const char *s);

/* ---------------------------------------------------------------------
 * I/O (io.c): the epoll backend
 * ------------------------------------------------------------------ */

/* What a task yields while it is an fd's waiter (io.c registered it). */
extern CG_HIDDEN char cg__io_token;
/* Polls for I/O and moves the waiters and callbacks of ready fds to the
 * ready queue: timeout in ns, 0 not to wait, -1 forever. A call made from
 * another thread (call_soon_threadsafe) ends the wait. */
CG_HIDDEN int cg__io_poll(cg_loop *loop, cg_ns timeout); /* -1: no epoll (errno) */
/* A task waiting on an fd is cancelled, or finalized: it stops waiting
 * (the caller schedules its step, or drops it). */
CG_HIDDEN void cg__io_cancel_wait(cg_task *t);
/* Loop close: every fd leaves, epoll is closed. */
CG_HIDDEN void cg__io_close_all(cg_loop *loop);
/* For the operations (src/io/), on the running loop (RuntimeError
 * without one). cg__io_enter: before an operation on fd in dir: registers
 * fd the first time (non-blocking), and waits for an edge when dir is
 * known empty (found empty since its last edge: the call would say
 * EAGAIN). cg__io_empty: the operation found dir empty (EAGAIN; is_short:
 * a short read or write, which says so on stream sockets only).
 * cg__io_wait: waits for the next edge. The waits raise what a wait
 * raises (CancelledError, OSError(EBADF) when fd leaves the loop). */
CG_HIDDEN void cg__io_enter(int fd, int dir);
CG_HIDDEN void cg__io_empty(int fd, int dir, int is_short);
CG_HIDDEN void cg__io_wait(int fd, int dir);
/* Something (a task, an async generator's body) waits on dir of fd. */
CG_HIDDEN int cg__io_waiting(int fd, int dir);
/* The loop's eventfd (made when missing): what a signal handler writes
 * to wake the loop. -1 with errno. */
CG_HIDDEN int cg__loop_wake_fd(cg_loop *loop);
/* A SIGINT counted by cg_run's handler that the loop has not acted on yet
 * (task.c): the first cancels the main task. */
CG_HIDDEN void cg__loop_on_sigint(cg_loop *loop);

/* Work handed to another thread that will come back through
 * call_soon_threadsafe (a worker's job, a DNS lookup): while some is
 * out, a virtual-clock loop with nothing to do waits for it instead of
 * declaring a deadlock. Called on the loop's thread, in pairs. */
CG_HIDDEN void cg__loop_hold(cg_loop *loop);
CG_HIDDEN void cg__loop_release(cg_loop *loop);
/* A plain callback handle (call_soon's) without scheduling it. */
CG_HIDDEN cg_handle *cg__loop_plain_handle(cg_loop *loop, cg_callback fn, void *arg);

/* The fd and direction of an io_wait (io.c). */
CG_HIDDEN int cg__io_wait_fd(uintptr_t io_wait);

/* Something a higher layer attaches to a loop (the thread pool's link to
 * it, src/io/pool.c), found again by its close function. shutdown, when
 * not NULL, runs in a task of the loop as cg_run's shutdown step
 * (loop.shutdown_default_executor: it may await); close runs when the loop
 * closes, first thing once it is marked closed (its queues and the task
 * list are still there), and frees the extension. */
typedef struct cg__loop_ext {
    struct cg__loop_ext *next;
    void (*shutdown)(struct cg__loop_ext *x);
    void (*close)(struct cg__loop_ext *x, cg_loop *loop);
} cg__loop_ext;
CG_HIDDEN void cg__loop_attach(cg_loop *loop, cg__loop_ext *x);
CG_HIDDEN cg__loop_ext *cg__loop_find(cg_loop *loop, void (*close)(cg__loop_ext *, cg_loop *));
/* Debug mode (asyncio's loop._check_thread): a call that is not
 * thread-safe, made on a running loop from another thread, raises
 * RuntimeError. Off, one load of a flag. */
CG_HIDDEN CG_NORETURN void cg__wrong_thread(void);
static inline void cg__check_thread(const cg_loop *loop) {
    if (CG_UNLIKELY(loop->debug) && loop->running && !pthread_equal(loop->thread, pthread_self()))
        cg__wrong_thread();
}
/* The limit of a step or callback in debug mode (slow_callback_duration). */
#define CG__SLOW_CALLBACK CG_MS(100)

/* The stall detector's registry of running loops (watch.c). */
CG_HIDDEN void cg__watch_add(cg_loop *loop);
CG_HIDDEN void cg__watch_remove(cg_loop *loop);
/* Task dumps asked for by a signal (cg_task_dump_on_signal): a loop whose
 * dump_seen differs dumps its tasks at its next iteration. */
extern CG_HIDDEN int cg__dump_requests;
CG_HIDDEN void cg__loop_dump_requested(cg_loop *loop);

/* ---------------------------------------------------------------------
 * The trace recorder (trace.c)
 * ------------------------------------------------------------------ */

/* The recorder itself is the generator layer's (core/gen_trace.h: cg__tracing,
 * cg__trace_now, cg__trace_from_env). A step of t that began at t0 and
 * answered st, r (what it yielded). */
CG_HIDDEN void cg__trace_step(cg_task *t, cg_ns t0, cg_status st, void *r);

/* The loop running in this thread. */
extern __thread cg_loop *cg__running_loop __attribute__((tls_model("initial-exec"))) CG_HIDDEN;

/* The running task will await obj, of kind CG__AW_* (for the task
 * dump). Objects are malloc'd, so their low 3 bits are free for the kind;
 * one that is not (a caller's allocator) is left out. cg__await_done:
 * the wait on obj is over (the note goes then, so that a task's step need
 * not clear it; a cleanup run while another task steps leaves its note). */
static inline void cg__await_note(int kind, const void *obj) {
    cg_loop *loop = cg__running_loop;
    cg_task *t = loop ? loop->current : NULL;
    if (t) t->await_obj = (((uintptr_t)obj & 7) ? 0 : (uintptr_t)obj) | (uintptr_t)kind;
}
static inline void cg__await_done(const void *obj) {
    cg_loop *loop = cg__running_loop;
    cg_task *t = loop ? loop->current : NULL;
    if (t && (t->await_obj & ~(uintptr_t)7) == (((uintptr_t)obj & 7) ? 0 : (uintptr_t)obj)) t->await_obj = 0;
}


#endif
