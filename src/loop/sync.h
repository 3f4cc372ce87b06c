/* sync.h: what the synchronization primitives (sync.c) and the queues
 * (queue.c) share: the object header that binds an object to its loop as
 * asyncio's _LoopBoundMixin does, the deque of waiter futures, and the
 * await that hands back an exception instead of raising it.
 *
 * Waiters are futures kept in a heap array, never records on a task's
 * stack: a compact task's stack is swapped out while it is suspended, so
 * no other code may point into it. */
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

/* collections.deque of futures, each holding a reference. A queue's
 * deque also holds tasks that wait without a future (queue.c): such an
 * entry is the task's address tagged CG__WQ_TASK, and CG__WQ_CANCELLED
 * too once its wait is cancelled (the future's cancelled()); it holds a
 * reference to the task. A woken one leaves the deque at once (the queue
 * pops what it wakes), so no entry is ever "done". */
typedef struct cg__waiters {
    cg_future **v;
    size_t n, cap;
} cg__waiters;

#define CG__WQ_TASK ((uintptr_t)1)
#define CG__WQ_CANCELLED ((uintptr_t)2)
/* The future (or task) of an entry, untagged. */
static inline cg_future *cg__wq_future(const cg_future *entry) {
    return (cg_future *)((uintptr_t)entry & ~(CG__WQ_TASK | CG__WQ_CANCELLED));
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
 * A task's entry is found by the task, whatever its tags. */
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
/* loop.create_future() appended to w: the caller holds one reference and
 * w another. MemoryError when out of memory (nothing changed). */
CG_HIDDEN cg_future *cg__sync_new_waiter(cg_loop *loop, cg__waiters *w);
/* await f, which the task dump shows as awaiting kind obj ('Lock',
 * the lock): NULL when it returned, else the exception it raised (a new
 * reference; any BaseException, so that the caller can clean up and
 * re-raise it as a try/finally would). */
CG_HIDDEN cg_exc *cg__sync_await(cg_future *f, int kind, const void *obj); /* kind: CG__AW_* */

/* Event internals the queue uses (Queue._finished). */
CG_HIDDEN void cg__event_unref(cg_event *e);

#endif
