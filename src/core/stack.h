/* stack.h: generator stacks (src/core/stack.c): mmap'd, guarded, pooled
 * per thread, reported to the tools that track stacks. */
#ifndef COGEN_STACK_H
#define COGEN_STACK_H

#include "core/thread.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* 40 bytes, a 48-byte malloc chunk: every generator has one. */
typedef struct cg__stack {
    struct cg__stack *next;  /* pool link */
    char *lo;                /* lowest usable byte */
    char *hi;                /* one past the highest usable byte */
    char *map;               /* own mapping to unmap (it ends at hi), or
                                NULL (slab stack) */
    unsigned kind;           /* cg_guard */
    unsigned vg_id;          /* valgrind stack id */
} cg__stack;

#define CG__CANARY 0x63676e2d63616e61ull /* "cgn-cana" */

CG_HIDDEN cg__stack *cg__stack_get_slow(size_t size, unsigned flags);
CG_HIDDEN void cg__stack_put_slow(cg__stack *s);

/* The last stack this thread gave back, kept ready for the next
 * cg__stack_get of its size: a generator made and freed in a loop takes the
 * same stack each time without the pool's lookups and counters. Only
 * stacks with a guard page sit here. Until the thread has a pool (and
 * after it ends) it holds cg__stack_unready, which matches no size and is
 * not NULL, so that both fast paths below fall through to the pool. */
extern __thread _Atomic(cg__stack *) cg__stack_hot __attribute__((tls_model("initial-exec"))) CG_HIDDEN;
extern CG_HIDDEN cg__stack cg__stack_unready;

/* A stack of at least size usable bytes (flags: CG_OPT_REQUIRE_GUARD).
 * NULL with errno set when there is none. */
static inline cg__stack *cg__stack_get(size_t size, unsigned flags) {
    cg__stack *h = atomic_load_explicit(&cg__stack_hot, memory_order_relaxed);
    if (CG_LIKELY(h && (size_t)(h->hi - h->lo) == size)) {
        atomic_store_explicit(&cg__stack_hot, NULL, memory_order_relaxed);
        return h;
    }
    return cg__stack_get_slow(size, flags);
}

/* Gives a stack back (to this thread's pool). */
/* The common case of cg__stack_put, with no call: 1 if s went to the hot
 * slot, 0 (and nothing done) if it must go to the pool. */
static inline int cg__stack_put_hot(cg__stack *s) {
#if !CG_ASAN /* the pool unpoisons what abandoned frames left poisoned */
    if (CG_LIKELY(s->kind == CG_GUARD_PAGE && !atomic_load_explicit(&cg__stack_hot, memory_order_relaxed))) {
        s->next = NULL;
        atomic_store_explicit(&cg__stack_hot, s, memory_order_relaxed);
        return 1;
    }
#else
    (void)s;
#endif
    return 0;
}

static inline void cg__stack_put(cg__stack *s) {
    if (!cg__stack_put_hot(s)) cg__stack_put_slow(s);
}

/* Releases a stack's pages, keeping its range (and guard). */
CG_HIDDEN void cg__stack_drop_pages(cg__stack *s);
/* Whether addr is in the guard page below s (for an overflow report). Safe
 * in a signal handler. */
CG_HIDDEN int cg__stack_guard_hit(const cg__stack *s, const void *addr);

static inline int cg__canary_ok(const cg__stack *s) {
    return s->kind != CG_GUARD_CANARY || *(const uint64_t *)s->lo == CG__CANARY;
}

#endif
