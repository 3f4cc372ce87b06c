/* loop.c: the event loop: one FIFO ready queue shared by callbacks and task
 * steps, timers in a heap ordered by (deadline, scheduling order), a real or
 * virtual clock, and asyncio's iteration (BaseEventLoop._run_once): due
 * timers join the ready queue after the poll, and the callbacks ready at
 * the start of an iteration run in it; those they schedule run in the next.
 */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "core/gen_hint.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

__thread cg_loop *cg__running_loop __attribute__((tls_model("initial-exec"))); /* (as core's thread state: no __tls_get_addr) */

char *cg__strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = cg__alloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static cg_ns mono_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (cg_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------------------
 * Handles
 * ------------------------------------------------------------------ */

cg_handle *cg__handle_new(void) {
    unsigned gen = cg__alloc_generation();
    cg_handle *h = cg__alloc(sizeof *h);
    if (!h) return NULL;
    memset(h, 0, sizeof *h);
    h->refs = 1;
    h->alloc_gen = gen;
    return h;
}

static void handle_drop_payload(cg_handle *h) {
    if (h->ready.kind != R_DONE) return; /* (fut shares its word with a timer's loop) */
    cg_future *f = h->fut;
    if (!f) return;
    h->fut = NULL;
    if (h->ready.kind == R_DONE) f->ready.nlate--;
    cg_future_unref(f);
}

/* The caches: a loop keeps up to CG__FREELIST_MAX handles and as many
 * plain futures that nobody holds any more (handles it ran and held the
 * last reference to; handles and futures whose last reference was dropped
 * while it ran on this thread: a cancelled timer, a waiter's future) and
 * hands them out again instead of allocating (a task step, a done
 * callback, a timer or a sleep each make one). Every cached block came
 * from the allocator of one generation; if cg_set_allocator has changed
 * it since, they go back to it and are not reused. */

void cg__freelist_clear(cg__freelist *fl) {
    while (fl->head) {
        void *p = fl->head;
        fl->head = *(void **)p;
        cg__dealloc_with(fl->alloc, p);
    }
    fl->n = 0;
}

static void freelist_init(cg__freelist *fl) {
    fl->gen = cg__alloc_generation();
    fl->alloc = cg__allocator_now();
}

cg_handle *cg__loop_handle_new(cg_loop *loop) {
    cg_handle *h = cg__freelist_take(&loop->handle_cache);
    if (!h) return cg__handle_new();
    *h = (cg_handle){.refs = 1, .alloc_gen = loop->handle_cache.gen}; /* stores, not a memset call */
    return h;
}

static int handle_cache_put(cg_loop *loop, cg_handle *h) {
    return loop && cg__freelist_put(&loop->handle_cache, h, h->alloc_gen);
}

/* (cg__timeout_block_free, loop.h: a timeout scope's own timer) */

/* Drops the loop's reference to a handle it has run. */
static void handle_release(cg_loop *loop, cg_handle *h) {
    if (h->refs != 1) {
        h->refs--;
        return;
    }
    h->refs = 0;
    if (CG_UNLIKELY(h->embedded)) {
        cg__timeout_block_free(loop, h);
        return;
    }
    handle_drop_payload(h);
    if (!handle_cache_put(loop, h)) cg__dealloc(h);
}

/* The last reference dropped while a loop runs on this thread (a timer
 * cancelled and let go, as call_later + cancel does) puts the handle in
 * that loop's cache. */
static CG_NOINLINE void handle_free(cg_handle *h) {
    if (h->embedded) {
        cg__timeout_block_free(cg__running_loop, h);
        return;
    }
    handle_drop_payload(h);
    if (!handle_cache_put(cg__running_loop, h)) cg__dealloc(h);
}

/* The last reference to a plain handle of this thread's loop, with room
 * in its cache: linked in here, as the freed timer of call_later + cancel
 * is; anything else goes through handle_free. */
static inline void handle_free_fast(cg_handle *h) {
    if (h->ready.kind == R_PLAIN && !h->embedded) {
        cg_loop *loop = cg__running_loop;
        if (CG_LIKELY(loop)) {
            cg__freelist *fl = &loop->handle_cache;
            if (CG_LIKELY(fl->n < CG__FREELIST_MAX && fl->gen == h->alloc_gen)) {
                *(void **)h = fl->head;
                fl->head = h;
                fl->n++;
                return;
            }
        }
    }
    handle_free(h);
}

void cg_handle_unref(cg_handle *h) {
    if (h && --h->refs == 0) handle_free_fast(h);
}

static inline int heap_leave(cg_handle *h, size_t *at);
static CG_NOINLINE void heap_refill(cg_loop *loop, size_t i);

/* A timer that leaves the heap from a slot other than the last one, and
 * loses the heap's reference: cg_handle_cancel's call, kept out of it so
 * that its common case saves no registers. */
static CG_NOINLINE void cancel_refill(cg_handle *h, size_t i) {
    heap_refill(h->loop, i);
    if (--h->refs == 0) handle_free_fast(h); /* the heap's reference */
}

static CG_NOINLINE void cancel_done(cg_handle *h) { handle_drop_payload(h); }

void cg_handle_cancel(cg_handle *h) {
    if (!h || h->cancelled) return;
    h->cancelled = 1;
    if (h->ready.kind == R_DONE) { /* (never a timer) */
        cancel_done(h);
        return;
    }
    /* A cancelled timer leaves the heap at once, so that arming and
     * cancelling timers costs no memory (asyncio keeps it until it comes
     * up or until half the heap is cancelled: nothing can tell). */
    if (h->scheduled) {
        size_t i;
        if (CG_UNLIKELY(!heap_leave(h, &i))) {
            cancel_refill(h, i);
            return;
        }
        if (--h->refs == 0) handle_free(h); /* the heap's reference */
    }
}

static CG_NOINLINE void disarm_refill(cg_handle *h, size_t i) {
    h->refs--; /* the heap's; the owner's is left */
    heap_refill(h->loop, i);
}

/* (As cg_handle_cancel: the common case, the heap's last slot, calls
 * nothing.) */
void cg__loop_timer_disarm(cg_handle *h) {
    h->cancelled = 1;
    if (h->scheduled) {
        size_t i;
        if (CG_UNLIKELY(!heap_leave(h, &i))) {
            disarm_refill(h, i);
            return;
        }
        h->refs--; /* the heap's; the owner's is left */
    }
}

int cg_handle_cancelled(const cg_handle *h) { return h ? h->cancelled : 0; }
cg_ns cg_handle_when(const cg_handle *h) { return h ? h->when : 0; }

void cg__loop_ready(cg_loop *loop, cg_handle *h) {
    h->refs++;
    cg__loop_ready_entry(loop, &h->ready);
}

static cg__ready *ready_pop(cg_loop *loop) {
    cg__ready *r = loop->ready_head;
    if (!r) return NULL;
    loop->ready_head = r->next;
    if (!loop->ready_head) loop->ready_tail = NULL;
    loop->nready--;
    r->next = NULL;
    r->queued = 0;
    return r;
}

/* ---------------------------------------------------------------------
 * Timers: a 4-ary min-heap of slots ordered by (when, seq). The keys live
 * in the slots, so sifting reads only the array (one or two cache lines
 * per level, the four children side by side) and never the handles; only
 * a moved handle's heap_at is written. With a million timers, keys read
 * through the handles made sift-down a cache miss per comparison. Any
 * heap pops in the same order: (when, seq) is a total order.
 * ------------------------------------------------------------------ */

#define HEAP_ARITY 4

static inline int slot_before(const cg__timer_slot *a, const cg__timer_slot *b) {
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

/* The same without branches, for picking the least of four children,
 * whose order a branch predictor cannot guess (a conditional move): the
 * key as one 128-bit number, deadline above sequence (a compare and a
 * subtract with borrow), where the heap's pops spend most of their time. */
#if defined(__SIZEOF_INT128__)
__extension__ typedef __int128 slot_key;
static inline slot_key slot_key_of(const cg__timer_slot *a) {
    __extension__ unsigned __int128 k = (unsigned __int128)(uint64_t)a->when << 64 | a->seq;
    return (slot_key)k; /* (modulo 2^128: the deadline's sign is the key's) */
}
static inline int slot_before_nb(const cg__timer_slot *a, const cg__timer_slot *b) {
    return slot_key_of(a) < slot_key_of(b);
}
#else
static inline int slot_before_nb(const cg__timer_slot *a, const cg__timer_slot *b) {
    return (a->when < b->when) | ((a->when == b->when) & (a->seq < b->seq));
}
#endif

/* Where a slot's timer keeps its index: a handle's heap_at, or a sleeping
 * task's wait word. */
static inline void slot_at_set(uintptr_t who, size_t i) {
    if (who & CG__SLOT_TASK)
        ((cg_task *)(who - CG__SLOT_TASK))->fut.task_wait = (uintptr_t)i << 3 | CG__WAIT_TIMER;
    else
        ((cg_handle *)who)->heap_at = i;
}

static inline size_t slot_at(uintptr_t who) {
    if (who & CG__SLOT_TASK) return ((cg_task *)(who - CG__SLOT_TASK))->fut.task_wait >> 3;
    return ((cg_handle *)who)->heap_at;
}

static inline void heap_set(cg_loop *loop, size_t i, cg__timer_slot s) {
    loop->heap[i] = s;
    slot_at_set(s.who, i);
}

/* Sifts s up from i, where it is not yet stored (its parent is after it). */
static CG_NOINLINE void heap_sift_up(cg_loop *loop, size_t i, cg__timer_slot s) {
    while (i > 0) {
        size_t p = (i - 1) / HEAP_ARITY;
        if (!slot_before(&s, &loop->heap[p])) break;
        heap_set(loop, i, loop->heap[p]);
        i = p;
    }
    heap_set(loop, i, s);
}

static inline void heap_up(cg_loop *loop, size_t i) {
    cg__timer_slot s = loop->heap[i];
    if (i == 0 || !slot_before(&s, &loop->heap[(i - 1) / HEAP_ARITY])) return; /* in place (heap_at set) */
    heap_sift_up(loop, i, s);
}

static void heap_down(cg_loop *loop, size_t i) {
    cg__timer_slot s = loop->heap[i];
    size_t n = loop->nheap;
    for (;;) {
        size_t c = HEAP_ARITY * i + 1, end = c + HEAP_ARITY;
        if (c >= n) break;
        if (end > n) end = n;
        size_t m = c;
        if (end - c == HEAP_ARITY) { /* a full set (all but the last): a tournament */
            const cg__timer_slot *hp = loop->heap;
            size_t a = c + (size_t)slot_before_nb(&hp[c + 1], &hp[c]);
            size_t b = c + 2 + (size_t)slot_before_nb(&hp[c + 3], &hp[c + 2]);
            m = a ^ ((a ^ b) & (0 - (size_t)slot_before_nb(&hp[b], &hp[a])));
        } else {
            for (size_t k = c + 1; k < end; k++)
                if (slot_before(&loop->heap[k], &loop->heap[m])) m = k;
        }
        if (!slot_before(&loop->heap[m], &s)) break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, s);
}

/* The root has left (loop->nheap already one less): its hole goes down
 * to a leaf by the least children, which move up, without comparing them
 * with the last slot, which then comes up from that leaf (Floyd's
 * bottom-up pop). The last slot, a leaf's, nearly always belongs near the
 * bottom, so this saves a sift-down's comparison with it at every level:
 * a million timers coming due are a million pops. */
static void heap_pop_fill(cg_loop *loop) {
    cg__timer_slot *hp = loop->heap;
    size_t n = loop->nheap, i = 0, c = 1;
    for (; c + HEAP_ARITY <= n; c = HEAP_ARITY * i + 1) { /* full sets: tournaments */
        size_t a = c + (size_t)slot_before_nb(&hp[c + 1], &hp[c]);
        size_t b = c + 2 + (size_t)slot_before_nb(&hp[c + 3], &hp[c + 2]);
        size_t m = a ^ ((a ^ b) & (0 - (size_t)slot_before_nb(&hp[b], &hp[a])));
        heap_set(loop, i, hp[m]);
        i = m;
    }
    if (c < n) { /* the last, partial set: its children are leaves */
        size_t m = c;
        for (size_t k = c + 1; k < n; k++)
            if (slot_before(&hp[k], &hp[m])) m = k;
        heap_set(loop, i, hp[m]);
        i = m;
    }
    heap_sift_up(loop, i, hp[n]);
}

static CG_NOINLINE int heap_grow(cg_loop *loop) {
    size_t has = loop->heap_cap + loop->timer_reserved; /* (reserved slots are not in heap_cap) */
    size_t cap = has ? has * 2 : 64;
    cg__timer_slot *nh = cg__alloc(cap * sizeof *nh);
    if (!nh) return -1;
    if (loop->nheap) memcpy(nh, loop->heap, loop->nheap * sizeof *nh);
    cg__dealloc(loop->heap);
    loop->heap = nh;
    loop->heap_cap = cap - loop->timer_reserved;
    return 0;
}

static inline int heap_push(cg_loop *loop, cg_handle *h, cg_ns when) {
    if (loop->nheap == loop->heap_cap && heap_grow(loop) < 0) return -1;
    h->when = when;
    cg__timer_slot s = {when, loop->timer_seq++, (uintptr_t)h};
    size_t i = loop->nheap++;
    if (i == 0 || !slot_before(&s, &loop->heap[(i - 1) / HEAP_ARITY]))
        heap_set(loop, i, s); /* (a timer later than its parent: most) */
    else
        heap_sift_up(loop, i, s);
    h->scheduled = 1;
    return 0;
}

static inline int timer_arm(cg_loop *loop, cg_handle *h, cg_ns when) {
    h->timer = 1;
    h->loop = loop;
    if (heap_push(loop, h, when) < 0) return -1;
    h->refs++; /* the heap's */
    return 0;
}

static CG_NOINLINE int timer_arm_slow(cg_loop *loop, cg_handle *h, cg_ns when) { return timer_arm(loop, h, when); }

/* timer_arm, its common case (room in the heap, a timer later than its
 * parent) without a call, so that it saves no registers. */
int cg__loop_timer_arm(cg_loop *loop, cg_handle *h, cg_ns when) {
    size_t i = loop->nheap;
    cg__timer_slot s = {when, loop->timer_seq, (uintptr_t)h};
    if (CG_UNLIKELY(i == loop->heap_cap || (i && slot_before(&s, &loop->heap[(i - 1) / HEAP_ARITY]))))
        return timer_arm_slow(loop, h, when);
    h->timer = 1;
    h->scheduled = 1;
    h->loop = loop;
    h->when = when;
    h->refs++; /* the heap's */
    loop->timer_seq++;
    loop->nheap = i + 1;
    heap_set(loop, i, s);
    return 0;
}

void cg__loop_timer_arm_reserved(cg_loop *loop, cg_handle *h, cg_ns when, uint64_t seq) {
    cg__loop_timer_unreserve(loop); /* (the heap has room: nheap < heap_cap) */
    h->timer = 1;
    h->loop = loop;
    h->when = when;
    h->refs++; /* the heap's */
    cg__timer_slot s = {when, seq, (uintptr_t)h};
    size_t i = loop->nheap++;
    if (i == 0 || !slot_before(&s, &loop->heap[(i - 1) / HEAP_ARITY]))
        heap_set(loop, i, s);
    else
        heap_sift_up(loop, i, s);
    h->scheduled = 1;
}

static void heap_refill(cg_loop *loop, size_t i) {
    cg__timer_slot m = loop->heap[loop->nheap];
    heap_set(loop, i, m);
    heap_up(loop, i);
    heap_down(loop, slot_at(m.who));
}

/* A timer leaves its heap: 1 when it was in the last slot (a timer armed
 * and cancelled with no later one armed between: nothing else to do), 0
 * when heap_refill(h->loop, *at) must fill its slot (the callers do that
 * out of line, so that their common case calls nothing). */
static inline int heap_leave(cg_handle *h, size_t *at) {
    cg_loop *loop = h->loop;
    size_t i = h->heap_at;
    h->scheduled = 0;
    *at = i;
    return i == --loop->nheap;
}

/* The first timer leaves the heap: a handle (no longer scheduled), or a
 * sleeping task (| CG__SLOT_TASK), whose wait word the caller sets. */
static uintptr_t heap_pop(cg_loop *loop) {
    uintptr_t top = loop->heap[0].who;
    loop->nheap--;
    if (loop->nheap) heap_pop_fill(loop);
    if (!(top & CG__SLOT_TASK)) ((cg_handle *)top)->scheduled = 0;
    return top;
}

/* A handle the heap let go of: its reference goes (a task's slot holds
 * none). */
static void heap_drop(uintptr_t who) {
    if (!(who & CG__SLOT_TASK)) cg_handle_unref((cg_handle *)who);
}

/* ---------------------------------------------------------------------
 * Sleeping tasks: the task is its own timer (loop.h)
 * ------------------------------------------------------------------ */

int cg__loop_sleep_arm(cg_loop *loop, cg_task *t, cg_ns when) {
    size_t i = loop->nheap;
    if (CG_UNLIKELY(i == loop->heap_cap) && heap_grow(loop) < 0) return -1;
    cg__timer_slot s = {when, loop->timer_seq++, (uintptr_t)t | CG__SLOT_TASK};
    loop->nheap = i + 1;
    if (i == 0 || !slot_before(&s, &loop->heap[(i - 1) / HEAP_ARITY]))
        heap_set(loop, i, s); /* (a timer later than its parent: most) */
    else
        heap_sift_up(loop, i, s);
    return 0;
}

cg_ns cg__loop_sleep_when(const cg_task *t) {
    uintptr_t w = t->fut.task_wait;
    if ((w & 7) != CG__WAIT_TIMER) return cg__loop_now(t->fut.loop); /* due: its wake-up is queued */
    return t->fut.loop->heap[w >> 3].when;
}

/* Unlinks a queued entry from the middle of the ready queue (a sleep
 * cancelled between its timer coming up and its wake-up running: rare),
 * keeping run_once's count of the iteration's entries right. */
static CG_NOINLINE void ready_unlink(cg_loop *loop, cg__ready *r) {
    cg__ready *prev = NULL, *p = loop->ready_head;
    size_t k = 0;
    while (p && p != r) {
        prev = p;
        p = p->next;
        k++;
    }
    CG_CHECK(p, "a queued entry is not in the ready queue");
    if (prev)
        prev->next = r->next;
    else
        loop->ready_head = r->next;
    if (loop->ready_tail == r) loop->ready_tail = prev;
    if (k < loop->ntodo) loop->ntodo--;
    loop->nready--;
    r->next = NULL;
    r->queued = 0;
}

void cg__loop_sleep_disarm(cg_task *t) {
    cg_loop *loop = t->fut.loop;
    uintptr_t w = t->fut.task_wait;
    t->fut.task_wait = 0;
    if ((w & 7) == CG__WAIT_WOKEN) { /* due: its R_WAKE entry is queued */
        ready_unlink(loop, &t->fut.ready);
        cg_future_unref(&t->fut); /* the entry's */
        return;
    }
    size_t i = w >> 3;
    if (i != --loop->nheap) heap_refill(loop, i);
}

/* ---------------------------------------------------------------------
 * The loop object
 * ------------------------------------------------------------------ */

cg_loop *cg_loop_new(const cg_loop_opts *opts) {
    cg__trace_from_env();
    cg_loop *loop = cg__alloc(sizeof *loop);
    if (!loop) {
        errno = ENOMEM;
        return NULL;
    }
    memset(loop, 0, sizeof *loop);
    loop->flags = opts ? opts->flags : 0;
    const char *dbg = getenv("COGEN_DEBUG");
    loop->debug = dbg && *dbg && *dbg != '0';
    loop->base = mono_now();
    loop->wake_fd = -1;
    loop->epfd = -1;
    freelist_init(&loop->handle_cache);
    freelist_init(&loop->future_cache);
    freelist_init(&loop->timeout_cache);
    static uint64_t serials;
    loop->serial = __atomic_add_fetch(&serials, 1, __ATOMIC_RELAXED);
    pthread_mutex_init(&loop->ts_lock, NULL);
    return loop;
}

/* The real clock costs about 30 ns here (clock_gettime through the vDSO),
 * more than arming a timer: timers are armed from the loop's last reading
 * in the current iteration (as libuv's uv_now), taken when the loop looks
 * for due timers, or by the first call that needs it, or by loop.time()
 * (cg_loop_time), which always reads the clock. So a delay counts from
 * the loop's last look at the clock in this iteration: a callback that has
 * run for a while before it arms a timer makes it come up that much
 * earlier than asyncio's call_later would, which reads the clock at every
 * call; reading cg_loop_time() first arms it from now. Outside an
 * iteration of a running loop nothing is cached. */
static CG_NOINLINE cg_ns clock_read(cg_loop *loop) {
    cg_ns t = mono_now() - loop->base;
    if (loop == cg__running_loop) {
        loop->clock = t;
        loop->clock_valid = 1;
    }
    return t;
}

cg_ns cg__loop_clock_read(cg_loop *loop) { return clock_read(loop); }

cg_ns cg_loop_time(cg_loop *loop) {
    if (loop->flags & CG_LOOP_VIRTUAL_CLOCK) return loop->now;
    return clock_read(loop);
}

int cg_loop_is_running(const cg_loop *loop) { return loop && loop->running; }
cg_loop *cg_running_loop(void) { return cg__running_loop; }
cg_task *cg_current_task(void) { return cg__running_loop ? cg__running_loop->current : NULL; }

cg_loop *cg_get_running_loop(void) {
    if (!cg__running_loop) CG_RAISE(&cg_RuntimeError, "no running event loop");
    return cg__running_loop;
}

cg_handle *cg__loop_plain_handle(cg_loop *loop, cg_callback fn, void *arg) {
    cg_handle *h = loop ? cg__loop_handle_new(loop) : cg__handle_new();
    if (!h) {
        errno = ENOMEM;
        return NULL;
    }
    h->ready.kind = R_PLAIN;
    h->fn = fn;
    h->arg = arg;
    return h;
}

cg_handle *cg_loop_call_soon(cg_loop *loop, cg_callback fn, void *arg) {
    if (!loop || !fn) {
        errno = EINVAL;
        return NULL;
    }
    cg__check_thread(loop);
    cg_handle *h = cg__loop_plain_handle(loop, fn, arg);
    if (!h) return NULL;
    cg__loop_ready(loop, h);
    return h;
}

/* call_at's work in one frame (it was four calls deep, which was a fifth
 * of arming and cancelling a timer): a handle from the loop's cache,
 * given only the fields a timer reads, armed with two references (the
 * caller's and the heap's). timer_new_slow does it all; timer_new is its
 * common case (a cached handle, room in the heap, a timer later than its
 * parent), which calls nothing else, so that it saves no registers:
 * 20 of call_later's instructions were the spills the slow path needed. */
static inline void timer_init(cg_handle *h, cg_loop *loop, unsigned gen, cg_callback fn, void *arg) {
    h->ready.kind = R_PLAIN;
    h->ready.queued = 0; /* (nlate is a future's) */
    h->refs = 2; /* the caller's and the heap's */
    h->cancelled = 0;
    h->timer = 1;
    h->scheduled = 1; /* (heap_push's, and timer_new's when it is in) */
    h->embedded = 0;
    h->alloc_gen = gen;
    h->fn = fn;
    h->arg = arg;
    h->loop = loop;
}

static CG_NOINLINE cg_handle *timer_new_slow(cg_loop *loop, cg_ns when, cg_callback fn, void *arg) {
    cg_handle *h = cg__freelist_take(&loop->handle_cache);
    unsigned gen = loop->handle_cache.gen;
    if (CG_UNLIKELY(!h)) {
        gen = cg__alloc_generation();
        h = cg__alloc(sizeof *h);
        if (!h) {
            errno = ENOMEM;
            return NULL;
        }
    }
    timer_init(h, loop, gen, fn, arg);
    if (CG_UNLIKELY(heap_push(loop, h, when) < 0)) {
        cg__dealloc(h);
        errno = ENOMEM;
        return NULL;
    }
    return h;
}

static inline CG_NO_SLP cg_handle *timer_new(cg_loop *loop, cg_ns when, cg_callback fn, void *arg) {
    cg__freelist *fl = &loop->handle_cache;
    cg_handle *h = fl->head;
    size_t i = loop->nheap;
    if (CG_UNLIKELY(!h || fl->gen != cg__alloc_generation() || i == loop->heap_cap))
        return timer_new_slow(loop, when, fn, arg);
    cg__timer_slot s = {when, loop->timer_seq, (uintptr_t)h};
    if (i && slot_before(&s, &loop->heap[(i - 1) / HEAP_ARITY])) return timer_new_slow(loop, when, fn, arg);
    fl->head = *(void **)h;
    fl->n--;
    timer_init(h, loop, fl->gen, fn, arg);
    loop->timer_seq++;
    loop->nheap = i + 1;
    h->when = when;
    loop->heap[i] = s;
    h->heap_at = i; /* heap_set's test of the slot's kind: known here */
    return h;
}

CG_NO_SLP cg_handle *cg_loop_call_at(cg_loop *loop, cg_ns when, cg_callback fn, void *arg) {
    if (!loop || !fn) {
        errno = EINVAL;
        return NULL;
    }
    cg__check_thread(loop);
    return timer_new(loop, when, fn, arg);
}

static CG_NOINLINE cg_handle *call_later_slow(cg_loop *loop, cg_ns delay, cg_callback fn, void *arg) {
    if (!loop || !fn) {
        errno = EINVAL;
        return NULL;
    }
    cg__check_thread(loop);
    return timer_new_slow(loop, cg__loop_now(loop) + delay, fn, arg);
}

/* The common case (a loop outside debug mode with this iteration's clock
 * reading) tests its three conditions at once and calls nothing but in
 * tail position, so it saves no registers; the rest is call_later_slow. */
CG_NO_SLP cg_handle *cg_loop_call_later(cg_loop *loop, cg_ns delay, cg_callback fn, void *arg) {
    if (CG_UNLIKELY(!loop || !fn || loop->debug || (loop->flags & CG_LOOP_VIRTUAL_CLOCK) || !loop->clock_valid))
        return call_later_slow(loop, delay, fn, arg);
    return timer_new(loop, loop->clock + delay, fn, arg);
}

/* ---------------------------------------------------------------------
 * call_soon_threadsafe: a locked list the loop moves to its ready queue,
 * and an eventfd that wakes a loop blocked in poll.
 * ------------------------------------------------------------------ */

int cg_loop_call_soon_threadsafe(cg_loop *loop, cg_callback fn, void *arg) {
    if (!loop || !fn) {
        errno = EINVAL;
        return -1;
    }
    cg_handle *h = cg__loop_plain_handle(NULL, fn, arg); /* not the loop's cache: another thread */
    if (!h) return -1;
    pthread_mutex_lock(&loop->ts_lock);
    h->ready.next = NULL;
    if (loop->ts_tail)
        loop->ts_tail->ready.next = &h->ready;
    else
        __atomic_store_n(&loop->ts_head, h, __ATOMIC_RELEASE); /* read unlocked by take_threadsafe */
    loop->ts_tail = h;
    int fd = loop->wake_fd;
    pthread_mutex_unlock(&loop->ts_lock);
    if (fd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(fd, &one, sizeof one);
        (void)r;
    }
    return 0;
}

static CG_NOINLINE void take_threadsafe_slow(cg_loop *loop) {
    pthread_mutex_lock(&loop->ts_lock);
    cg_handle *h = loop->ts_head;
    __atomic_store_n(&loop->ts_head, NULL, __ATOMIC_RELEASE);
    loop->ts_tail = NULL;
    pthread_mutex_unlock(&loop->ts_lock);
    while (h) {
        cg_handle *next = (cg_handle *)h->ready.next;
        cg__loop_ready(loop, h);
        cg_handle_unref(h); /* the ready queue holds it now */
        h = next;
    }
}

static inline void take_threadsafe(cg_loop *loop) {
    /* Nothing queued (the common case): no lock, and no call. A call that
     * arrives just after this look is taken at the next iteration; block()
     * looks again under the lock before it waits. */
    if (__atomic_load_n(&loop->ts_head, __ATOMIC_ACQUIRE)) take_threadsafe_slow(loop);
}

int cg__loop_wake_fd(cg_loop *loop) {
    if (loop->wake_fd >= 0) return loop->wake_fd;
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0) return -1;
    pthread_mutex_lock(&loop->ts_lock);
    loop->wake_fd = fd;
    pthread_mutex_unlock(&loop->ts_lock);
    return fd;
}

void cg__loop_hold(cg_loop *loop) { loop->external++; }
void cg__loop_release(cg_loop *loop) { loop->external--; }

/* Waits until timeout (ns, -1: forever), an fd is ready or a threadsafe
 * call arrives (the eventfd is one of epoll's fds). */
static void block(cg_loop *loop, cg_ns timeout) {
    cg__loop_wake_fd(loop);
    pthread_mutex_lock(&loop->ts_lock);
    int pending = loop->ts_head != NULL;
    pthread_mutex_unlock(&loop->ts_lock);
    if (pending) timeout = 0;
    cg_ns t0 = 0;
    if (timeout != 0) {
        __atomic_store_n(&loop->blocked, 1, __ATOMIC_RELAXED);
        t0 = mono_now();
    }
    if (cg__io_poll(loop, timeout) < 0 && timeout != 0) {
        /* no epoll (out of fds): sleep to the timer, or a while */
        if (timeout < 0 || timeout > CG_MS(10)) timeout = CG_MS(10);
        struct timespec ts = {(time_t)(timeout / 1000000000), (long)(timeout % 1000000000)};
        nanosleep(&ts, NULL);
    }
    if (timeout != 0) {
        loop->idle_ns += mono_now() - t0;
        __atomic_store_n(&loop->blocked, 0, __ATOMIC_RELAXED);
    }
}

/* ---------------------------------------------------------------------
 * The exception handler
 * ------------------------------------------------------------------ */

static void default_handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop;
    (void)ud;
    fprintf(stderr, "%s\n", ctx->message ? ctx->message : "Unhandled error in event loop");
    if (ctx->future) {
        if (ctx->future->is_task)
            fprintf(stderr, "task: <Task '%s'>\n", cg_task_name((cg_task *)ctx->future));
        else
            fprintf(stderr, "future: <Future %p>\n", (void *)ctx->future);
    }
    if (ctx->exception) cg_exc_print(ctx->exception, stderr);
}

void cg_loop_set_exception_handler(cg_loop *loop, cg_loop_exception_handler fn, void *ud) {
    loop->handler = fn;
    loop->handler_ud = fn ? ud : NULL;
}

/* A raising handler is reported by the default one, as asyncio does. */
void cg_loop_call_exception_handler(cg_loop *loop, const cg_loop_context *ctx) {
    if (!loop->handler) {
        default_handler(loop, ctx, NULL);
        return;
    }
    cg_loop_exception_handler fn = loop->handler;
    void *ud = loop->handler_ud;
    CG_TRY {
        fn(loop, ctx, ud);
    } CG_EXCEPT(&cg_BaseException, err) {
        cg_loop_context c = {"Unhandled error in exception handler", err, NULL, NULL};
        default_handler(loop, &c, NULL);
    } CG_END;
}

void cg__loop_report(cg_loop *loop, const char *message, cg_exc *e, cg_future *f) {
    cg_loop_context c = {message, e, f, NULL};
    cg_loop_call_exception_handler(loop, &c);
}

/* ---------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------ */

/* A plain callback runs inside a try: what it raises goes to the
 * exception handler (asyncio's Handle._run). */
typedef struct plain_call {
    cg_callback fn;
    void *arg;
} plain_call;

static void run_plain(void *p) {
    plain_call *c = p;
    c->fn(c->arg);
}

typedef struct done_call {
    cg_done_callback fn;
    cg_future *fut;
    void *arg;
} done_call;

static void run_done(void *p) {
    done_call *c = p;
    c->fn(c->fut, c->arg);
}

/* A done callback of a future: run as asyncio's Handle._run runs it, what
 * it raises going to the exception handler. A task's wake-up is a step,
 * which raises nothing. */
static void run_done_callback(cg_loop *loop, cg_done_callback fn, cg_future *f, void *arg) {
    if (fn == cg__task_wakeup) {
        cg__task_wakeup(f, arg);
        return;
    }
    done_call c = {fn, f, arg};
    cg_exc *e = cg_try_catch(run_done, &c, &cg_BaseException);
    if (e) {
        cg__loop_report(loop, "Exception in callback", e, NULL);
        cg_exc_unref(e);
    }
}

static void run_handle(cg_loop *loop, cg_handle *h) {
    switch (h->ready.kind) {
    case R_PLAIN: {
        plain_call c = {h->fn, h->arg};
        cg_exc *e = cg_try_catch(run_plain, &c, &cg_BaseException);
        if (e) {
            cg__loop_report(loop, "Exception in callback", e, NULL);
            cg_exc_unref(e);
        }
        break;
    }
    case R_DONE: {
        cg_future *f = h->fut;
        h->fut = NULL;
        f->ready.nlate--;
        run_done_callback(loop, h->done_fn, f, h->arg);
        cg__fut_unref(f);
        break;
    }
    }
}

/* Takes the scheduled callbacks out of f: *n of them, in an array to give
 * to callbacks_free. */
static done_cb *callbacks_take(cg_future *f, size_t *n) {
    done_cb *cbs = f->cbs;
    *n = f->ncbs;
    f->cbs = NULL;
    f->ncbs = f->cbs_cap = 0;
    return cbs;
}

static void callbacks_free(cg_future *f, done_cb *cbs) {
    if (cbs != &f->cb0) cg__dealloc(cbs);
}

static inline cg_future *ready_future(cg__ready *r) { return (cg_future *)((char *)r - offsetof(cg_future, ready)); }

/* ---------------------------------------------------------------------
 * Prefetching: with many tasks (a million sleepers), what a step touches
 * is cold: the task, its generator and the top of its stack, each a cache
 * miss that the step waits for. The loop knows which tasks come next (the
 * ready queue, a future's callbacks) and asks for their memory a few
 * entries ahead, in stages: the task's lines three ahead, its generator
 * two ahead (t->gen read from the lines asked for before), the top of its
 * saved stack one ahead (g->sp likewise). Only for long runs (a batch of
 * PREFETCH_MIN entries or callbacks or more): a few thousand tasks stay
 * in the caches, and the staging would only add instructions.
 * ------------------------------------------------------------------ */

#define PREFETCH_MIN 4096

/* The stages, for a task t that runs 3, 2 and 1 entries ahead: what a
 * step reads and writes of the task (its first 176 bytes, wherever the
 * malloc chunk puts its line boundaries), its generator, the top of the
 * generator's stack. Stage 3 reads nothing (its lines are not in yet). */
static inline void prefetch_task(const void *t) {
    const char *p = t;
    __builtin_prefetch(p, 1, 3);
    __builtin_prefetch(p + 64, 1, 3);
    __builtin_prefetch(p + 128, 1, 3);
}

static inline void prefetch_gen(const cg_task *t) {
    const char *g = (const char *)t->gen;
    if (g) {
        __builtin_prefetch(g, 1, 3);
        __builtin_prefetch(g + 64, 1, 3);
    }
}

static inline void prefetch_stack(const cg_task *t) {
    if (t->gen) cg__gen_prefetch_stack(t->gen);
}

#define READY_TASK(r) ((const cg_task *)((const char *)(r) - offsetof(cg_future, ready)))

/* The entries after the head of the ready queue. A task's step gets all
 * three stages; whatever else an entry is, stage 3 brought in the lines
 * around it, which its run touches (a sleep's wake-up: its first line). */
static inline void ready_prefetch(cg_loop *loop) {
    const cg__ready *r1 = loop->ready_head, *r2, *r3;
    if (!r1) return;
    if (r1->kind == R_STEP) prefetch_stack(READY_TASK(r1));
    if (!(r2 = r1->next)) return;
    if (r2->kind == R_STEP) prefetch_gen(READY_TASK(r2));
    if ((r3 = r2->next) != NULL) prefetch_task(READY_TASK(r3));
}

/* The same over a future's callbacks from i on: the tasks they wake. */
static inline void callbacks_prefetch(const done_cb *cbs, size_t i, size_t n) {
    if (i + 1 < n && cbs[i + 1].fn == cg__task_wakeup) prefetch_stack(cbs[i + 1].arg);
    if (i + 2 < n && cbs[i + 2].fn == cg__task_wakeup) prefetch_gen(cbs[i + 2].arg);
    if (i + 3 < n && cbs[i + 3].fn == cg__task_wakeup) prefetch_task(cbs[i + 3].arg);
}

/* Runs an entry embedded in a future (loop.h): a task step, or the done
 * callbacks of a future that completed. Here, beside run_once, so that
 * it is inlined there. */
static CG_NOINLINE void ready_callbacks(cg_loop *loop, cg_future *f) {
    size_t n;
    done_cb *cbs = callbacks_take(f, &n);
    int pf = n >= PREFETCH_MIN;
    for (size_t i = 0; i < n; i++) {
        if (pf) callbacks_prefetch(cbs, i, n);
        if (cbs[i].fn == cg__task_wakeup) /* the common case, without a call more */
            cg__task_wakeup(f, cbs[i].arg);
        else if (cbs[i].fn)
            run_done_callback(loop, cbs[i].fn, f, cbs[i].arg);
    }
    callbacks_free(f, cbs);
}

/* (The callbacks' loop is out of line: inline, it made this a call with
 * a frame of saved registers on every task step and wake-up.) */
static inline void ready_run(cg_loop *loop, cg__ready *r) {
    cg_future *f = ready_future(r);
    if (r->kind == R_STEP) {
        cg_task *t = (cg_task *)f;
        cg_exc *e = t->step_exc;
        t->step_exc = NULL;
        cg__task_step(t, e);
    } else if (CG_UNLIKELY(r->kind == R_WAKE)) {
        /* A sleep's timer came up (the callback of asyncio.sleep's timer
         * handle runs here): the task's step goes to the end of the
         * queue, with the entry and its reference. */
        cg_task *t = (cg_task *)f;
        t->fut.task_wait = 0; /* (step_exc is NULL: the step that slept took it) */
        r->kind = R_STEP;
        cg__loop_ready_entry(loop, r);
        return;
    } else if (f->cbs == &f->cb0 && f->ncbs == 1 && f->cb0.fn == cg__task_wakeup) {
        /* One task awaits f (the common case): callbacks_take and
         * ready_callbacks' loop in a few stores. */
        void *arg = f->cb0.arg;
        f->cbs = NULL;
        f->ncbs = f->cbs_cap = 0;
        cg__task_wake(f, arg);
    } else {
        ready_callbacks(loop, f);
    }
    cg__fut_unref(f); /* the entry's reference, last: it may free f */
}

/* Drops an embedded entry without running it (loop close): it lets go of
 * what it held. */
static void ready_drop(cg__ready *r) {
    cg_future *f = ready_future(r);
    if (r->kind == R_WAKE) {
        ((cg_task *)f)->fut.task_wait = 0;
    } else if (r->kind == R_STEP) {
        cg_exc_unref(((cg_task *)f)->step_exc);
        ((cg_task *)f)->step_exc = NULL;
    } else {
        size_t n;
        callbacks_free(f, callbacks_take(f, &n));
    }
    cg_future_unref(f);
}

void cg__wrong_thread(void) {
    CG_RAISE(&cg_RuntimeError, "Non-thread-safe operation invoked on an event loop other than the current one");
}

void cg_loop_set_debug(cg_loop *loop, int on) {
    if (loop) loop->debug = on != 0;
}

int cg_loop_get_debug(const cg_loop *loop) { return loop ? loop->debug : 0; }

static inline void run_entry(cg_loop *loop, cg__ready *r) {
    if (r->kind > R_DONE) { /* embedded in a future or a task */
        ready_run(loop, r);
        return;
    }
    cg_handle *h = (cg_handle *)r;
    if (!h->cancelled) run_handle(loop, h);
    handle_release(loop, h);
}

/* Debug mode: an entry that runs past slow_callback_duration is logged, as
 * asyncio logs 'Executing <Handle ...> took 0.150 seconds'. */
static CG_NOINLINE void run_timed(cg_loop *loop, cg__ready *r) {
    char what[128];
    cg_task *t = r->kind == R_STEP || r->kind == R_WAKE ? (cg_task *)ready_future(r) : NULL;
    if (t)
        snprintf(what, sizeof what, r->kind == R_STEP ? "<Task '%s'> step" : "<Task '%s'> sleep's timer",
                 cg__task_name(t));
    else
        snprintf(what, sizeof what, r->kind == R_CALLBACKS ? "<done callbacks of a future>" : "<Handle %p>", (void *)r);
    cg_ns t0 = mono_now();
    run_entry(loop, r);
    cg_ns took = mono_now() - t0;
    if (took >= CG__SLOW_CALLBACK) fprintf(stderr, "cogen: Executing %s took %.3f seconds\n", what, (double)took / 1e9);
}

/* Runs an entry the iteration has popped. */
static inline void run_popped(cg_loop *loop, cg__ready *r) {
    __atomic_store_n(&loop->n_entries, loop->n_entries + 1, __ATOMIC_RELAXED); /* the stall detector's */
    if (CG_UNLIKELY(loop->debug)) {
        run_timed(loop, r);
        return;
    }
    run_entry(loop, r);
}

/* The iteration's entries when they are many: the same, prefetching. */
static CG_NOINLINE void run_batch_prefetching(cg_loop *loop) {
    while (loop->ntodo) {
        loop->ntodo--;
        cg__ready *r = ready_pop(loop);
        ready_prefetch(loop);
        run_popped(loop, r);
    }
}

/* One iteration (BaseEventLoop._run_once). Returns 0, or -1 when a virtual
 * clock loop can make no progress at all. */
static int run_once(cg_loop *loop) {
    loop->clock_valid = 0; /* a new iteration reads the clock anew */
    if (loop->sigints != loop->sigints_seen) cg__loop_on_sigint(loop);
    if (CG_UNLIKELY(__atomic_load_n(&cg__dump_requests, __ATOMIC_RELAXED) !=
                    __atomic_load_n(&loop->dump_seen, __ATOMIC_RELAXED)))
        cg__loop_dump_requested(loop);
    while (loop->nheap && !(loop->heap[0].who & CG__SLOT_TASK) && ((cg_handle *)loop->heap[0].who)->cancelled)
        heap_drop(heap_pop(loop));
    take_threadsafe(loop);
    int virt = (loop->flags & CG_LOOP_VIRTUAL_CLOCK) != 0;
    if (!loop->nready && !loop->stopping) {
        if (virt) {
            /* I/O comes in real time: a virtual clock jumps when nothing
             * is ready for I/O either, and waits for it when no timer is
             * pending */
            int outside = loop->io_waiting || loop->external;
            if (outside) {
                if (loop->nheap)
                    cg__io_poll(loop, 0);
                else
                    block(loop, -1);
                take_threadsafe(loop);
            }
            if (!loop->nready) {
                if (loop->nheap) {
                    cg_ns when = loop->heap[0].when;
                    if (when > loop->now) loop->now = when;
                } else if (!outside) {
                    return -1;
                }
            }
        } else {
            cg_ns wait = -1;
            if (loop->nheap) {
                wait = loop->heap[0].when - cg_loop_time(loop);
                if (wait < 0) wait = 0;
            }
            block(loop, wait);
            take_threadsafe(loop);
        }
    } else if (loop->io_registered) {
        cg__io_poll(loop, 0); /* what is ready for I/O joins the queue first, as asyncio's select */
    }
    if (loop->nheap) { /* (no timers: no need to read the clock) */
        cg_ns now = cg_loop_time(loop);
        while (loop->nheap && loop->heap[0].when <= now) {
            uintptr_t who = heap_pop(loop);
            if (who & CG__SLOT_TASK) { /* a sleep: the task's own entry */
                cg_task *t = (cg_task *)(who - CG__SLOT_TASK);
                t->fut.task_wait = CG__WAIT_WOKEN;
                t->fut.ready.kind = R_WAKE;
                cg__fut_ref(&t->fut); /* the entry's */
                cg__loop_ready_entry(loop, &t->fut.ready);
                continue;
            }
            cg_handle *h = (cg_handle *)who;
            if (!h->cancelled) cg__loop_ready(loop, h);
            cg_handle_unref(h); /* the heap's reference */
        }
    }
    loop->ntodo = loop->nready; /* (an entry may leave early: ready_unlink) */
    loop->n_iterations++;
    if (CG_UNLIKELY(loop->ntodo >= PREFETCH_MIN)) {
        run_batch_prefetching(loop);
        return 0;
    }
    while (loop->ntodo) {
        loop->ntodo--;
        run_popped(loop, ready_pop(loop));
    }
    return 0;
}

static void enter(cg_loop *loop) {
    if (loop->closed) CG_RAISE(&cg_RuntimeError, "Event loop is closed");
    if (loop->running) CG_RAISE(&cg_RuntimeError, "This event loop is already running");
    if (cg__running_loop) CG_RAISE(&cg_RuntimeError, "Cannot run the event loop while another loop is running");
    loop->running = 1;
    loop->prev_running = cg__running_loop;
    cg__running_loop = loop;
}

static void leave(cg_loop *loop) {
    loop->clock_valid = 0;
    loop->stopping = 0;
    loop->running = 0;
    cg__running_loop = loop->prev_running;
    loop->prev_running = NULL;
}

/* Runs until stopped; -1 on a virtual-clock deadlock. */
static void leave_watched(void *loop) {
    cg__watch_remove(loop);
    leave(loop);
}

static int run_forever(cg_loop *loop) {
    enter(loop);
    cg__watch_add(loop);
    CG_DEFER(leave_watched, loop); /* also when something raises out of an iteration */
    int r = 0;
    for (;;) {
        if (run_once(loop) < 0) {
            r = -1;
            break;
        }
        if (loop->stopping) break;
    }
    return r;
}

void cg_loop_run_forever(cg_loop *loop) {
    if (run_forever(loop) < 0)
        CG_RAISE(&cg_RuntimeError, "deadlock: no callback is ready and no timer is pending");
}

void cg_loop_stop(cg_loop *loop) { loop->stopping = 1; }

static void stop_cb(cg_future *f, void *arg) {
    (void)arg;
    cg_loop_stop(f->loop);
}

/* run_until_complete's work, run by cg_try_catch (no setjmp in the
 * frame that keeps the state). */
typedef struct ruc {
    cg_loop *loop;
    cg_future *fut;
    int dead;
    void *result;
} ruc;

static void ruc_run(void *p) {
    ruc *r = p;
    if (r->fut->loop != r->loop)
        CG_RAISE(&cg_ValueError, "The future belongs to a different loop than the one specified as the loop argument");
    if (cg_future_add_done_callback(r->fut, stop_cb, NULL) < 0) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    r->dead = run_forever(r->loop) < 0;
    cg_future_remove_done_callback(r->fut, stop_cb, NULL);
}

static void ruc_result(void *p) {
    ruc *r = p;
    r->result = cg_future_result(r->fut);
}

cg_status cg_loop_run_until_complete(cg_loop *loop, cg_future *fut, void **out, cg_exc **exc) {
    if (!loop || !fut) CG_RAISE(&cg_TypeError, "cg_loop_run_until_complete() needs a loop and a future");
    enter(loop); /* the misuse answers are raised, as cg_run's are */
    leave(loop);
    ruc r = {loop, fut, 0, NULL};
    cg_exc *err = cg_try_catch(ruc_run, &r, &cg_BaseException);
    if (!err && !cg_future_done(fut))
        err = cg_exc_new(&cg_RuntimeError, r.dead ? "deadlock: no callback is ready and no timer is pending"
                                                  : "Event loop stopped before Future completed.");
    if (!err) err = cg_try_catch(ruc_result, &r, &cg_BaseException);
    if (out) *out = err ? NULL : r.result;
    if (exc)
        *exc = err;
    else
        cg_exc_unref(err);
    return err ? CG_RAISED : CG_RETURNED;
}

void cg__loop_attach(cg_loop *loop, cg__loop_ext *x) {
    x->next = loop->exts;
    loop->exts = x;
}

cg__loop_ext *cg__loop_find(cg_loop *loop, void (*close)(cg__loop_ext *, cg_loop *)) {
    for (cg__loop_ext *x = loop->exts; x; x = x->next)
        if (x->close == close) return x;
    return NULL;
}

void cg_loop_free(cg_loop *loop) {
    if (!loop) return;
    if (loop->running) CG_RAISE(&cg_RuntimeError, "Cannot close a running event loop");
    loop->closed = 1;
    while (loop->exts) { /* (the default executor's shutdown(wait=False), ...) */
        cg__loop_ext *x = loop->exts;
        loop->exts = x->next;
        x->close(x, loop);
    }
    cg__task_finalize_all(loop);
    cg__agen_forget_loop(loop);
    for (int i = 0; i < CG__EXT_N; i++)
        if (loop->ext_fini[i]) loop->ext_fini[i](loop);
    take_threadsafe(loop);
    for (cg__ready *r; (r = ready_pop(loop)) != NULL;) {
        if (r->kind > R_DONE)
            ready_drop(r);
        else
            cg_handle_unref((cg_handle *)r);
    }
    while (loop->nheap) heap_drop(heap_pop(loop));
    cg__freelist_clear(&loop->handle_cache);
    cg__freelist_clear(&loop->future_cache);
    cg__freelist_clear(&loop->timeout_cache);
    cg__dealloc(loop->heap);
    cg__io_close_all(loop);
    if (loop->wake_fd >= 0) close(loop->wake_fd);
    pthread_mutex_destroy(&loop->ts_lock);
    cg__dealloc(loop);
}
