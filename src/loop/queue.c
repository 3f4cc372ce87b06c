/* queue.c: asyncio's Queue, LifoQueue and PriorityQueue, as CPython 3.13's
 * asyncio/queues.py writes them, shutdown included.
 *
 * Items are void * the queue never owns. A FIFO queue keeps them in a ring;
 * a LIFO queue in an array used as a stack; a priority queue in an array
 * ordered as a heap by heapq's own algorithm (_siftdown/_siftup), so that
 * items comparing equal come out in the order Python gives them.
 * Queue._finished, the Event join() waits on, is a cg_event of its own, as
 * in Python (it binds to its loop on its own).
 */
#include "loop/sync.h"
#include "core/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

const cg_exc_type cg_QueueEmpty = {"QueueEmpty", &cg_Exception};
const cg_exc_type cg_QueueFull = {"QueueFull", &cg_Exception};
const cg_exc_type cg_QueueShutDown = {"QueueShutDown", &cg_Exception};

#define NEED(obj, fn) \
    do { \
        if (!(obj)) CG_RAISE(&cg_TypeError, fn "() argument must be a Queue, not NULL"); \
    } while (0)

enum { Q_FIFO, Q_LIFO, Q_PRIORITY };

struct cg_queue {
    cg__sync h;
    int kind;
    long maxsize;
    void **items;        /* FIFO: a ring from head; others: items[0..n) */
    size_t head, n, cap;
    cg_queue_cmp cmp;    /* PRIORITY: NULL compares intptr_t values */
    void *cmp_ud;
    cg__waiters getters, putters;
    size_t unfinished;   /* _unfinished_tasks */
    cg_event *finished;  /* _finished, set when unfinished is 0 */
    unsigned char is_shutdown;
    void (*drop)(void *item, void *ud);
    void *drop_ud;
};

static const char *type_name(const cg_queue *q) {
    return q->kind == Q_FIFO ? "Queue" : q->kind == Q_LIFO ? "LifoQueue" : "PriorityQueue";
}

static cg_queue *queue_new(cg_loop *loop, long maxsize, int kind, cg_queue_cmp cmp, void *ud) {
    cg_queue *q = cg__alloc(sizeof *q);
    if (!q) {
        errno = ENOMEM;
        return NULL;
    }
    memset(q, 0, sizeof *q);
    /* Queue.__init__: self._finished = locks.Event(); .set() */
    if (!(q->finished = cg_event_new(NULL))) {
        cg__dealloc(q);
        errno = ENOMEM;
        return NULL;
    }
    cg_event_set(q->finished);
    q->h.refs = 1;
    cg__sync_bind(&q->h, loop);
    q->kind = kind;
    q->maxsize = maxsize;
    q->cmp = cmp;
    q->cmp_ud = ud;
    return q;
}

cg_queue *cg_queue_new(cg_loop *loop, long maxsize) { return queue_new(loop, maxsize, Q_FIFO, NULL, NULL); }
cg_queue *cg_lifo_queue_new(cg_loop *loop, long maxsize) { return queue_new(loop, maxsize, Q_LIFO, NULL, NULL); }
cg_queue *cg_priority_queue_new(cg_loop *loop, long maxsize, cg_queue_cmp cmp, void *ud) {
    return queue_new(loop, maxsize, Q_PRIORITY, cmp, ud);
}

/* ---------------------------------------------------------------------
 * Storage: _init, _put, _get
 * ------------------------------------------------------------------ */

/* The i-th item in storage order (FIFO: oldest first; LIFO: bottom of the
 * stack first; PRIORITY: heap order), as Python's list(self._queue). */
static void *item_at(const cg_queue *q, size_t i) {
    return q->kind == Q_FIFO ? q->items[(q->head + i) % q->cap] : q->items[i];
}

/* Room for one more item: 0, or -1 when out of memory. */
static int reserve(cg_queue *q) {
    if (q->n < q->cap) return 0;
    size_t cap = q->cap ? q->cap * 2 : 8;
    void **v = cg__alloc(cap * sizeof *v);
    if (!v) return -1;
    for (size_t i = 0; i < q->n; i++) v[i] = item_at(q, i);
    cg__dealloc(q->items);
    q->items = v;
    q->cap = cap;
    q->head = 0;
    return 0;
}

static int lt(const cg_queue *q, void *a, void *b) {
    if (q->cmp) return q->cmp(a, b, q->cmp_ud) < 0;
    return (intptr_t)a < (intptr_t)b;
}

/* heapq._siftdown(heap, startpos, pos) */
static void siftdown(cg_queue *q, size_t startpos, size_t pos) {
    void **heap = q->items;
    void *newitem = heap[pos];
    while (pos > startpos) {
        size_t parentpos = (pos - 1) >> 1;
        void *parent = heap[parentpos];
        if (lt(q, newitem, parent)) {
            heap[pos] = parent;
            pos = parentpos;
            continue;
        }
        break;
    }
    heap[pos] = newitem;
}

/* heapq._siftup(heap, pos) */
static void siftup(cg_queue *q, size_t pos) {
    void **heap = q->items;
    size_t endpos = q->n, startpos = pos;
    void *newitem = heap[pos];
    size_t childpos = 2 * pos + 1;
    while (childpos < endpos) {
        size_t rightpos = childpos + 1;
        if (rightpos < endpos && !lt(q, heap[childpos], heap[rightpos])) childpos = rightpos;
        heap[pos] = heap[childpos];
        pos = childpos;
        childpos = 2 * pos + 1;
    }
    heap[pos] = newitem;
    siftdown(q, startpos, pos);
}

/* _put: the caller has reserved room. */
static void store(cg_queue *q, void *item) {
    switch (q->kind) {
    case Q_FIFO:
        q->items[(q->head + q->n) % q->cap] = item;
        q->n++;
        break;
    case Q_LIFO:
        q->items[q->n++] = item;
        break;
    default: /* heappush */
        q->items[q->n++] = item;
        siftdown(q, 0, q->n - 1);
        break;
    }
}

/* _get: the queue is not empty. */
static void *take(cg_queue *q) {
    void *item;
    switch (q->kind) {
    case Q_FIFO:
        item = q->items[q->head];
        q->head = (q->head + 1) % q->cap;
        q->n--;
        return item;
    case Q_LIFO:
        return q->items[--q->n];
    default: { /* heappop */
        void *last = q->items[--q->n];
        if (!q->n) return last;
        item = q->items[0];
        q->items[0] = last;
        siftup(q, 0);
        return item;
    }
    }
}

/* ---------------------------------------------------------------------
 * Life, repr, queries
 * ------------------------------------------------------------------ */

static void queue_unref(cg_queue *q) {
    if (--q->h.refs > 0) return;
    while (q->n) {
        void *item = take(q);
        if (q->drop) q->drop(item, q->drop_ud);
    }
    cg__dealloc(q->items);
    cg__wq_clear(&q->getters);
    cg__wq_clear(&q->putters);
    cg__event_unref(q->finished);
    cg__dealloc(q);
}

void cg_queue_free(cg_queue *q) {
    if (q) queue_unref(q);
}

void cg_queue_set_drop(cg_queue *q, void (*drop)(void *item, void *ud), void *ud) {
    NEED(q, "cg_queue_set_drop");
    q->drop = drop;
    q->drop_ud = ud;
}

size_t cg_queue_qsize(const cg_queue *q) { return q ? q->n : 0; }
int cg_queue_empty(const cg_queue *q) { return !q || q->n == 0; }
long cg_queue_maxsize(const cg_queue *q) { return q ? q->maxsize : 0; }

/* full(): cg_queue_full of a queue that is not NULL, inline for put. */
static inline int full(const cg_queue *q) { return q->maxsize > 0 && q->n >= (size_t)q->maxsize; }

int cg_queue_full(const cg_queue *q) { return q && full(q); }

/* Appends to buf at *len, as snprintf, keeping *len within size. */
static void put_text(char *buf, size_t size, size_t *len, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void put_text(char *buf, size_t size, size_t *len, const char *fmt, ...) {
    if (*len >= size) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *len, size - *len, fmt, ap);
    va_end(ap);
    if (k > 0) *len += (size_t)k;
    if (*len >= size) *len = size;
}

/* '<Queue at 0x... maxsize=0 _queue=[0x1, None] _getters[1] tasks=2 shutdown>' */
static void queue_repr(const void *obj, char *buf, size_t size) {
    const cg_queue *q = obj;
    size_t len = 0;
    put_text(buf, size, &len, "<%s at %p maxsize=%ld", type_name(q), obj, q->maxsize);
    if (q->n) {
        put_text(buf, size, &len, " _queue=[");
        for (size_t i = 0; i < q->n; i++) {
            void *it = item_at(q, i);
            if (it)
                put_text(buf, size, &len, "%s%p", i ? ", " : "", it);
            else
                put_text(buf, size, &len, "%sNone", i ? ", " : "");
        }
        put_text(buf, size, &len, "]");
    }
    if (q->getters.n) put_text(buf, size, &len, " _getters[%zu]", q->getters.n);
    if (q->putters.n) put_text(buf, size, &len, " _putters[%zu]", q->putters.n);
    if (q->unfinished) put_text(buf, size, &len, " tasks=%zu", q->unfinished);
    if (q->is_shutdown) put_text(buf, size, &len, " shutdown");
    put_text(buf, size, &len, ">");
}

/* ---------------------------------------------------------------------
 * Operations
 * ------------------------------------------------------------------ */

/* A waiter popped from a deque: woken (w.set_result(None)) unless it is
 * done, the deque's reference dropped. 1 if it woke it. A task's step
 * takes over the deque's reference (cg__wq_wake's, without the ref and
 * unref). */
static int wake_popped(cg_future *entry) {
    cg_task *t = cg__wq_task(entry);
    if (t && cg__task_sync_waiting(t)) {
        t->fut.task_wait = 0;
        t->step_exc = NULL;
        t->fut.ready.kind = R_STEP;
        cg__loop_ready_entry(t->fut.loop, &t->fut.ready);
        return 1;
    }
    int woken = !cg__wq_done(entry);
    if (woken) cg__wq_wake(entry);
    cg__fut_unref(cg__wq_future(entry));
    return woken;
}

/* Queue._wakeup_next: the first waiter that is not done, popping it and
 * the done ones before it. */
static void wakeup_next(cg__waiters *w) {
    cg_future *f;
    while ((f = cg__wq_popleft(w)))
        if (wake_popped(f)) break;
}

void cg_queue_put_nowait(cg_queue *q, void *item) {
    NEED(q, "cg_queue_put_nowait");
    if (q->is_shutdown) CG_RAISE(&cg_QueueShutDown, NULL);
    if (full(q)) CG_RAISE(&cg_QueueFull, NULL);
    if (reserve(q) < 0) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    store(q, item);
    q->unfinished++;
    cg_event_clear(q->finished);
    wakeup_next(&q->getters);
}

void *cg_queue_get_nowait(cg_queue *q) {
    NEED(q, "cg_queue_get_nowait");
    if (!q->n) {
        if (q->is_shutdown) CG_RAISE(&cg_QueueShutDown, NULL);
        CG_RAISE(&cg_QueueEmpty, NULL);
    }
    void *item = take(q);
    wakeup_next(&q->putters);
    return item;
}

static int is_empty(const cg_queue *q) { return q->n == 0; }

/* A put() or get() that waits: the queue it holds (so that a
 * cg_queue_free meanwhile leaves it alive until the call is over), and
 * the waiter it awaits now, if any. */
typedef struct queue_call {
    cg_queue *q;
    void *item;
    cg_future *w;          /* the waiter entry awaited (sync.h), or NULL */
    cg__waiters *waiters;  /* the deque w is in: q's getters or putters */
} queue_call;

/* The call is left: the hold goes. Left while waiting, it is left by
 * the exception the wait raised (a cancellation, the task's close): first
 * the `except:` of put() and get(), which passes a wake-up it cannot take
 * on, then the exception goes on. A defer, not a try: the exception
 * passes through untouched, no setjmp. */
static void call_exit(void *p) {
    queue_call *c = p;
    cg_queue *q = c->q;
    cg_future *w = c->w;
    if (w) {
        cg__await_done(q);
        /* getter.cancel(), in case it is not done yet: a task's wait is
         * still pending when the exception is its close. */
        if (cg__wq_task(w)) {
            if (!cg__wq_done(w)) cg__sync_cancel_wait(cg__wq_task(w));
        } else {
            cg_future_cancel(w, NULL);
        }
        /* It may have been popped already by a get/put or shutdown. */
        cg__wq_remove(c->waiters, w);
        /* Woken, but cannot take the call: wake the next in line. */
        int missing = c->waiters == &q->getters ? is_empty(q) : full(q);
        int cancelled = cg__wq_cancelled(w);
        cg__sync_waiter_end(w);
        if (!missing && !cancelled) wakeup_next(c->waiters);
    }
    queue_unref(q);
}

/* One wait of put() or get() for a slot or an item, in waiters: the
 * task's own body waits as its own entry with a plain yield (the assembly
 * fast paths; a catching one comes back through the C path), elsewhere
 * (an async generator's body, a generator the task delegates to) it
 * awaits a future. What the wait raises, call_exit cleans up after. */
static void wait_turn(queue_call *c, cg__waiters *waiters, int kind) {
    cg_queue *q = c->q;
    cg_loop *loop = cg__sync_loop(&q->h, queue_repr, q);
    cg_task *t = cg__sync_body_task(loop);
    c->waiters = waiters;
    if (t) { /* cg__sync_new_waiter's task, in one branch */
        cg_future *w = (cg_future *)((uintptr_t)t | CG__WQ_TASK);
        if (cg__wq_append(waiters, w) < 0) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        c->w = w;
        cg__await_note(kind, q);
        t->fut.task_wait = (uintptr_t)waiters | CG__WAIT_SYNC;
        t->await_site = cg__site;
        cg_yield(t->gen, &cg__io_token);
        t->fut.task_wait = 0; /* cg__sync_waiter_end */
    } else {
        cg_future *w = cg__sync_new_waiter(loop, waiters);
        c->w = w;
        cg__await_note(kind, q);
        cg_await(w);
        cg__sync_waiter_end(w);
    }
    c->w = NULL;
    cg__await_done(q);
}

static void put_wait(queue_call *c) {
    cg_queue *q = c->q;
    q->h.refs++;
    CG_DEFER(call_exit, c);
    while (full(q)) {
        if (q->is_shutdown) CG_RAISE(&cg_QueueShutDown, NULL);
        wait_turn(c, &q->putters, CG__AW_QUEUE_PUT);
    }
    cg_queue_put_nowait(q, c->item);
}

static void get_wait(queue_call *c) {
    cg_queue *q = c->q;
    q->h.refs++;
    CG_DEFER(call_exit, c);
    while (is_empty(q)) {
        if (q->is_shutdown) CG_RAISE(&cg_QueueShutDown, NULL);
        wait_turn(c, &q->getters, CG__AW_QUEUE_GET);
    }
    c->item = cg_queue_get_nowait(q);
}

void cg_queue_put(cg_queue *q, void *item) {
    NEED(q, "cg_queue_put");
    if (!full(q)) {
        cg_queue_put_nowait(q, item); /* no wait: no hold needed */
        return;
    }
    queue_call c = {q, item, NULL, NULL};
    put_wait(&c);
}

void *cg_queue_get(cg_queue *q) {
    NEED(q, "cg_queue_get");
    if (q->n) return cg_queue_get_nowait(q);
    queue_call c = {q, NULL, NULL, NULL};
    get_wait(&c);
    return c.item;
}

void cg_queue_task_done(cg_queue *q) {
    NEED(q, "cg_queue_task_done");
    if (q->unfinished == 0) CG_RAISE(&cg_ValueError, "task_done() called too many times");
    if (--q->unfinished == 0) cg_event_set(q->finished);
}

void cg_queue_join(cg_queue *q) {
    NEED(q, "cg_queue_join");
    /* The event waits holding itself: the queue may go meanwhile. */
    if (q->unfinished > 0) cg_event_wait(q->finished);
}

void cg_queue_shutdown(cg_queue *q, int immediate) {
    NEED(q, "cg_queue_shutdown");
    q->is_shutdown = 1;
    if (immediate) {
        while (q->n) {
            void *item = take(q);
            if (q->drop) q->drop(item, q->drop_ud);
            if (q->unfinished > 0) q->unfinished--;
        }
        if (q->unfinished == 0) cg_event_set(q->finished);
    }
    /* Every blocked getter and putter re-checks, and sees the shutdown. */
    cg_future *f;
    while ((f = cg__wq_popleft(&q->getters))) wake_popped(f);
    while ((f = cg__wq_popleft(&q->putters))) wake_popped(f);
}
