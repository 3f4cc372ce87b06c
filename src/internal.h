/* internal.h: what the library's files share and users never see. */
#ifndef COGEN_INTERNAL_H
#define COGEN_INTERNAL_H

#include "cogen.h"

#include <stdint.h>

#define CG_HIDDEN __attribute__((visibility("hidden")))
#define CG_LIKELY(x) __builtin_expect(!!(x), 1)
#define CG_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CG_NOINLINE __attribute__((noinline))
#define CG_COLD __attribute__((cold, noinline))
#define CG_UNUSED __attribute__((unused))

/* Sanitizers, detected at compile time. */
#if defined(__SANITIZE_ADDRESS__)
#define CG_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CG_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define CG_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CG_TSAN 1
#endif
#endif
#ifndef CG_ASAN
#define CG_ASAN 0
#endif
#ifndef CG_TSAN
#define CG_TSAN 0
#endif

/* Checks that stay on in every build: a wrong answer here would corrupt a
 * stack, so the process stops with a message instead. */
#define CG_CHECK(cond, msg) \
    do { \
        if (CG_UNLIKELY(!(cond))) cg__fatal(__FILE__, __LINE__, msg); \
    } while (0)
CG_NORETURN CG_HIDDEN void cg__fatal(const char *file, int line, const char *msg);

/* ---------------------------------------------------------------------
 * Execution contexts: a thread's own stack, or a generator's.
 * ------------------------------------------------------------------ */

/* What the sanitizers need to know about a stack, kept apart from cg__ctx so
 * that struct layouts (src/arch/layout.h) are the same in every build. */
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
    struct cg__pool *pool;   /* stack pool (src/stack.c) */
    cg_gen *live;            /* generators this thread made and has not
                                freed, newest first (for debuggers:
                                tools/cogen-gdb.py walks it) */
    cg_gen *spare;           /* freed generator handles kept for reuse */
    unsigned nspare;
    cg_gen *res_head;        /* compact generators whose stack pages are */
    cg_gen *res_tail;        /* resident, oldest first (src/gen.c) */
    unsigned nres;
    unsigned res_limit;      /* how many may be resident; 0: the default */
    struct cg__home *home;   /* where other threads send frees (src/gen.c) */
    cg_exc *exc_spare;       /* freed small exception objects (src/exc.c) */
    unsigned nexc_spare;
    /* The allocator the two caches above hold memory of (cg_set_allocator):
     * its generation, and its dealloc (NULL: free) and ud. */
    unsigned cache_gen;
    void (*cache_dealloc)(void *p, void *ud);
    void *cache_ud;
} cg__thread;

extern __thread cg__thread cg__t __attribute__((tls_model("initial-exec"))) CG_HIDDEN;

CG_HIDDEN void cg__thread_init(void);

/* Bumped by cg_set_allocator. A thread whose caches hold memory of an older
 * allocator empties them (with that allocator) before it next uses them. */
extern CG_HIDDEN unsigned cg__alloc_gen; /* __atomic builtins, relaxed */
CG_HIDDEN void cg__cache_renew(void);
CG_HIDDEN void cg__cache_free(void *p); /* with the caches' allocator */
static inline void cg__cache_check(void) {
    if (CG_UNLIKELY(cg__t.cache_gen != __atomic_load_n(&cg__alloc_gen, __ATOMIC_RELAXED)))
        cg__cache_renew();
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
static inline cg__ctx *cg__cur(void) {
    if (CG_UNLIKELY(cg__t.cur == NULL)) cg__thread_init();
    return cg__t.cur;
}

/* ---------------------------------------------------------------------
 * Exceptions (src/exc.c)
 * ------------------------------------------------------------------ */

struct cg_exc {
    const cg_exc_type *type;
    long refs;                 /* < 0: immortal (the preallocated MemoryError) */
    int slot;                  /* allocated as a fixed-size slot (src/exc.c) */
    int line;                  /* first raise site: line, file, func */
    cg_exc *context;           /* __context__ (owned) */
    cg_exc *cause;             /* __cause__ (owned) */
    void *payload;
    void (*payload_dtor)(void *);
    const char *file;
    const char *func;
    cg_exc *walk;              /* NULL, except during a walk of the link graph
                                  or a release (src/exc.c) */
    char *msg;                 /* NULL: no args; else points into text[] */
    char text[];
};

CG_HIDDEN void *cg__alloc(size_t n);
CG_HIDDEN void cg__dealloc(void *p);
/* Gives the calling thread's spare generator handles back to the
 * allocator (before it changes, and when the thread ends). */
CG_HIDDEN void cg__gen_flush(void);
/* The thread is ending: finalize what other threads freed, orphan the
 * rest (src/gen.c). Called before its stack pool goes. */
CG_HIDDEN void cg__gen_thread_exit(void);
/* The thread is ending: its stack pool goes (src/stack.c). */
CG_HIDDEN void cg__stack_thread_exit(void);
/* Gives the calling thread's spare exception objects back (src/exc.c). */
CG_HIDDEN void cg__exc_flush(void);
/* Finalizes the generators other threads freed (src/gen.c). */
CG_HIDDEN void cg__gen_drain(void);

/* The exception being handled in ctx, looking at its parents too when
 * walk_parents is set (Python's topmost exc_info), borrowed. */
CG_HIDDEN cg_exc *cg__handled(cg__ctx *ctx, int walk_parents);
/* Python's implicit chaining (_PyErr_SetObject): e.__context__ = handled,
 * cutting a cycle through e if there is one. e is owned by the caller. */
CG_HIDDEN void cg__chain(cg_exc *e, cg_exc *handled);
/* Chaining as if e were raised in the current context. */
static inline void cg__chain_here(cg_exc *e) { cg__chain(e, cg__handled(cg__cur(), 1)); }
/* Unwinds the current context with e in flight (owned), without touching
 * its context: runs defers, lands in the innermost catching try, or ends
 * the running generator. */
CG_NORETURN CG_HIDDEN void cg__unwind(cg_exc *e);
/* Drops the exceptions held by records of a stack that is being thrown
 * away without unwinding. */
CG_HIDDEN void cg__drop_chain(cg__ctx *ctx);
/* An exception created by the library for its caller: chained here. */
CG_HIDDEN cg_exc *cg__error(const cg_exc_type *type, const char *msg);
/* A preallocated, immortal GeneratorExit, for close() when there is no
 * memory for a fresh one (a MemoryError there could be swallowed by a body
 * that catches Exception, and the generator would not close). */
CG_HIDDEN cg_exc *cg__generator_exit_static(void);

/* ---------------------------------------------------------------------
 * Stacks (src/stack.c)
 * ------------------------------------------------------------------ */

typedef struct cg__stack {
    struct cg__stack *next;  /* pool link */
    char *lo;                /* lowest usable byte */
    char *hi;                /* one past the highest usable byte */
    char *map;               /* own mapping to unmap, or NULL (slab stack) */
    size_t map_len;
    unsigned kind;           /* cg_guard */
    unsigned vg_id;          /* valgrind stack id */
} cg__stack;

#define CG__CANARY 0x63676e2d63616e61ull /* "cgn-cana" */

CG_HIDDEN cg__stack *cg__stack_get(size_t size, unsigned flags);
/* Releases a stack's pages, keeping its range (and guard). */
CG_HIDDEN void cg__stack_drop_pages(cg__stack *s);
CG_HIDDEN void cg__stack_put(cg__stack *s);
CG_HIDDEN void cg__overflow_report_init(void);
CG_HIDDEN const cg__stack *cg__gen_stack(const cg_gen *g);
static inline int cg__canary_ok(const cg__stack *s) {
    return s->kind != CG_GUARD_CANARY || *(const uint64_t *)s->lo == CG__CANARY;
}

/* ---------------------------------------------------------------------
 * Context switch (src/arch/)
 *
 * cg__switch saves the callee-saved registers of the running side on its
 * stack, stores its stack pointer in *save, continues on stack new_sp and
 * returns value there. A fresh stack made by cg__stack_ready starts in
 * cg__gen_main(g).
 * ------------------------------------------------------------------ */

CG_HIDDEN void *cg__switch(void **save, void *new_sp, void *value);
/* Jumps to a cg__setjmp (CG__SETJMP) point of the current stack. */
#if defined(__x86_64__) || defined(__aarch64__)
CG_NORETURN CG_HIDDEN void cg__longjmp(jmp_buf env, int val);
#else
#define cg__longjmp longjmp
#endif
CG_HIDDEN void *cg__stack_ready(cg__stack *s, cg_gen *g);
CG_NORETURN CG_HIDDEN void cg__gen_main(cg_gen *g);
CG_NORETURN CG_HIDDEN void cg__gen_finish(cg_gen *g, cg_exc *e);

#endif
