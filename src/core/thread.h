/* thread.h: the per-thread state every layer above stands on: which
 * execution context runs now, the thread's own context, the allocator its
 * caches hold memory of, and one ordered list of hooks through which the
 * layers above give back what they keep per thread (at cg_trim, at an
 * allocator change, when the thread ends).
 *
 * Each layer keeps its own per-thread data in a thread-local variable of
 * its own (src/core/stack.c's pool, src/core/exc.c's spare exceptions, the
 * generator layer's cg__gt); this one holds only what they all share. */
#ifndef COGEN_THREAD_H
#define COGEN_THREAD_H

#include "core/mem.h"

#include <stdint.h>

/* What the sanitizers need to know about a stack, kept apart from cg__ctx
 * so that struct layouts (src/arch/layout.h) are the same in every build. */
typedef struct cg__san {
#if CG_ASAN
    const void *asan_bottom; /* this stack's bounds, for fiber switches */
    size_t asan_size;
    void *asan_fake;         /* fake stack saved while switched away */
#endif
#if CG_TSAN
    void *tsan_fiber;
#endif
    char unused_;            /* keeps the struct non-empty */
} cg__san;

/* An execution context: a thread's own stack, or a generator's. Its record
 * chain (CG_TRY, CG_DEFER, handled exceptions) belongs to the exc layer;
 * `gen` is opaque here, a generator layer's handle. */
typedef struct cg__ctx {
    cg__rec *chain;          /* try/defer/handled records, innermost first */
    struct cg__ctx *parent;  /* where "the exception being handled" continues:
                                the resumer, or the delegator that resumed it */
    cg_gen *gen;             /* NULL for a thread's own stack */
} cg__ctx;

/* Per-thread state. Kept small: it lives in static TLS. */
typedef struct cg__thread {
    cg__ctx *cur;            /* the context executing now (NULL until init) */
    cg__ctx main;            /* the thread's own stack */
    cg__san main_san;
    /* The allocator the thread's caches hold memory of: its generation
     * (cg__alloc_gen when it was taken) and its dealloc. */
    unsigned cache_gen;
    cg__allocator cache_alloc;
} cg__thread;

extern __thread cg__thread cg__t __attribute__((tls_model("initial-exec"))) CG_HIDDEN;

CG_HIDDEN void cg__thread_init(void);

static inline cg__ctx *cg__cur(void) {
    if (CG_UNLIKELY(cg__t.cur == NULL)) cg__thread_init();
    return cg__t.cur;
}

/* Identity of the calling thread: its thread pointer, which the assembly
 * fast paths can read in one instruction. */
static inline uintptr_t cg__self(void) {
    uintptr_t tp;
#if defined(__x86_64__)
    __asm__("movq %%fs:0, %0" : "=r"(tp));
#elif defined(__aarch64__)
    __asm__("mrs %0, tpidr_el0" : "=r"(tp));
#else
    tp = (uintptr_t)&cg__t;
#endif
    return tp;
}

/* ---------------------------------------------------------------------
 * Hooks: what a layer gives back per thread. A layer registers one record,
 * once per process (from a constructor); the thread layer calls them in
 * ascending `order`, so that upper layers go first: what they finalize may
 * still use what is below them. Every function is optional.
 * ------------------------------------------------------------------ */

enum {
    CG__HOOKS_LOOP = 10,  /* reserved for the event loop */
    CG__HOOKS_GEN = 20,
    CG__HOOKS_EXC = 30,
    CG__HOOKS_STACK = 40
};

typedef struct cg__thread_hooks {
    int order;
    /* The thread is ending: finalize what must not outlive it. All exit
     * hooks run before any flush hook. */
    void (*exit)(void);
    /* cg_trim: give back what is kept for reuse beyond the allocator's
     * memory (pooled stacks' pages, say). Runs before the flush hooks. */
    void (*trim)(void);
    /* Give back memory cached from the allocator, with cg__cache_free: at
     * cg_trim, when the allocator changes, and when the thread ends. */
    void (*flush)(void);
    struct cg__thread_hooks *next;
} cg__thread_hooks;

CG_HIDDEN void cg__thread_hooks_add(cg__thread_hooks *h);

/* Per-thread caches of allocator memory (handles, exception objects) call
 * cg__cache_check before they take or keep a block: if the allocator has
 * changed since they last filled, every cache is flushed with the old one. */
CG_HIDDEN void cg__cache_renew(void);
static inline void cg__cache_check(void) {
    if (CG_UNLIKELY(cg__t.cache_gen != cg__alloc_generation())) cg__cache_renew();
}
/* Gives a cached block back to the allocator the caches hold memory of. */
static inline void cg__cache_free(void *p) { cg__dealloc_with(cg__t.cache_alloc, p); }

#endif
