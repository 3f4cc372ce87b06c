/* sync.h: what the synchronization primitives (sync.c) and the queues
 * (queue.c) share: the object header that binds an object to its loop as
 * asyncio's _LoopBoundMixin does, the deque of waiters, and the wait that
 * hands back an exception instead of raising it.
 *
 * A waiter is what asyncio's is, a future, except for a task's own body:
 * there the task itself is the entry in the deque and its wait word
 * (CG__WAIT_SYNC, loop.h) the future's state; a wake-up schedules its
 * step, as the future's done callback would have, and Task.cancel cancels
 * the wait as it would cancel the future. Either way nothing points into
 * a task's stack: a compact task's stack is swapped out while it is
 * suspended. */
#ifndef COGEN_LOOP_SYNC_H
#define COGEN_LOOP_SYNC_H

#include "loop/loop.h"

/* The head of every primitive and queue. refs: the creator's reference
 * (dropped by the *_free function), one for each call suspended in it,
 * and one held by an object built on it (a Condition's lock). */
typedef struct cg__sync {
    long refs;
    cg_loop *loop;   /* bound loop, or NULL until first needed */
    uint64_t serial; /* the bound loop's (loop->serial) */
} cg__sync;

/* Binds s to loop (NULL: unbound), at creation. */
static inline void cg__sync_bind(cg__sync *s, cg_loop *loop) {
    s->loop = loop;
    s->serial = loop ? loop->serial : 0;
}

/* collections.deque of waiters, each holding a reference: futures, and
 * tasks waiting without one, whose entry is the task's address tagged
 * CG__WQ_TASK (cg__wq_* below read either kind). */
typedef struct cg__waiters {
    cg_future **v;
    size_t n, cap;
} cg__waiters;

#define CG__WQ_TASK ((uintptr_t)1)
/* The future (or the task's) of an entry, untagged. */
static inline cg_future *cg__wq_future(const cg_future *entry) {
    return (cg_future *)((uintptr_t)entry & ~CG__WQ_TASK);
}
/* The task of an entry that is one, else NULL. */
static inline cg_task *cg__wq_task(const cg_future *entry) {
    return ((uintptr_t)entry & CG__WQ_TASK) ? (cg_task *)cg__wq_future(entry) : NULL;
}
/* future.done() and future.cancelled() of an entry. A task's wait word
 * says it while the entry is in a deque (the task clears the word when it
 * takes its entry out): the deque | CG__WAIT_SYNC while pending,
 * CG__WAIT_SYNC alone once cancelled, 0 once woken. */
static inline int cg__wq_done(const cg_future *entry) {
    cg_task *t = cg__wq_task(entry);
    return t ? !cg__task_sync_waiting(t) : entry->state != F_PENDING;
}
static inline int cg__wq_cancelled(const cg_future *entry) {
    cg_task *t = cg__wq_task(entry);
    return t ? t->fut.task_wait == CG__WAIT_SYNC : entry->state == F_CANCELLED;
}
/* future.set_result(None) of an entry not done: a task's step is
 * scheduled where the future's wake-up would have been. */
static inline void cg__wq_wake(cg_future *entry) {
    cg_task *t = cg__wq_task(entry);
    if (t) {
        t->fut.task_wait = 0;
        cg__task_schedule_step(t, NULL);
    } else {
        cg__future_set_result_plain(entry, NULL);
    }
}

/* The task whose own body runs now (not an async generator's body, nor a
 * generator it delegates to), which can wait without a future; or NULL. */
static inline cg_task *cg__sync_body_task(cg_loop *loop) {
    cg_task *t = loop->current;
    cg_gen *cur = cg__t.cur ? cg__t.cur->gen : NULL;
    return t && t->gen == cur && !cg__agen_running ? t : NULL;
}

/* Appends (takes a reference): 0, or -1 when out of memory. */
CG_HIDDEN int cg__wq_append(cg__waiters *w, cg_future *f);
/* deque.remove(f): 1 if it was there (its reference is dropped), else 0.
 * f may be an entry or its untagged future. */
CG_HIDDEN int cg__wq_remove(cg__waiters *w, cg_future *f);
/* deque.popleft(): the first, with the deque's reference; NULL if empty. */
CG_HIDDEN cg_future *cg__wq_popleft(cg__waiters *w);
/* Drops every waiter and the array. */
CG_HIDDEN void cg__wq_clear(cg__waiters *w);

/* Writes the object's repr (asyncio's) into buf. */
typedef void (*cg__sync_repr_fn)(const void *obj, char *buf, size_t size);

/* _LoopBoundMixin._get_loop(): the running loop, binding the object to it
 * on first use; RuntimeError('<repr> is bound to a different event loop')
 * when it is bound to another, RuntimeError('no running event loop')
 * outside a loop. */
CG_HIDDEN cg_loop *cg__sync_get_loop(cg__sync *s, cg__sync_repr_fn repr, const void *obj);
/* cg__sync_get_loop, inline for the common case: the object is bound to
 * the running loop already (the waits' hot path). */
static inline cg_loop *cg__sync_loop(cg__sync *s, cg__sync_repr_fn repr, const void *obj) {
    cg_loop *loop = cg__running_loop;
    if (CG_LIKELY(loop && s->loop == loop && s->serial == loop->serial)) return loop;
    return cg__sync_get_loop(s, repr, obj);
}
/* A waiter for the code running now, not in any deque yet: the running
 * task tagged (its own body; no reference taken), or a new future
 * (loop.create_future(); MemoryError when out of memory). Inline: every
 * wait of a task's body comes here. */
CG_HIDDEN cg_future *cg__sync_future_new(cg_loop *loop);
static inline cg_future *cg__sync_waiter_new(cg_loop *loop) {
    cg_task *t = cg__sync_body_task(loop);
    return t ? (cg_future *)((uintptr_t)t | CG__WQ_TASK) : cg__sync_future_new(loop);
}
/* The caller is done with a waiter it made: a task's wait word is
 * cleared, a future's reference dropped. Whether it was done or cancelled
 * is read before this. */
static inline void cg__sync_waiter_end(cg_future *entry) {
    cg_task *t = cg__wq_task(entry);
    if (t)
        t->fut.task_wait = 0;
    else
        cg__fut_unref(entry);
}
/* cg__sync_waiter_new appended to w (MemoryError: nothing changed). */
CG_HIDDEN CG_NORETURN void cg__sync_waiter_lost(cg_future *entry);
static inline cg_future *cg__sync_new_waiter(cg_loop *loop, cg__waiters *w) {
    cg_future *entry = cg__sync_waiter_new(loop);
    if (CG_UNLIKELY(cg__wq_append(w, entry) < 0)) cg__sync_waiter_lost(entry);
    return entry;
}
/* await the waiter entry (in w), which the task dump shows as awaiting
 * kind obj ('Lock', the lock): NULL when it was woken, else the
 * exception the wait raised (a new reference; any BaseException, so that
 * the caller can clean up and re-raise it as a try/finally would). */
CG_HIDDEN cg_exc *cg__sync_wait(cg__waiters *w, cg_future *entry, int kind, const void *obj); /* kind: CG__AW_* */

/* Event internals the queue uses (Queue._finished). */
CG_HIDDEN void cg__event_unref(cg_event *e);

#endif
