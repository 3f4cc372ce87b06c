/* gen.c: the generator protocol (send, throw, close, yield, yield from,
 * finalization), following CPython 3.11's Objects/genobject.c rule by rule.
 *
 * Every switch goes between a generator's stack and the stack of whoever
 * called the protocol function (its resumer); generators never switch to
 * each other directly. A delegation chain (yield from) is driven from the
 * resumer's side: a send goes straight down to the innermost generator, its
 * yields come straight back up, and when it finishes the loop in run()
 * resumes its delegator with the result. A throw or close into a delegator
 * is forwarded by recursion, from the resumer's side too, as CPython's
 * _gen_throw does; that matters for which exception gets chained to what.
 */
#include "internal.h"
#include "arch/fpenv.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if CG_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if CG_TSAN
void *__tsan_get_current_fiber(void);
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

__thread cg__thread cg__t __attribute__((tls_model("initial-exec")));

/* What the body tells its resumer when it switches back. A body that
 * yields leaves ev at its resting value, EV_YIELD, or EV_YIELD_SLOW when the
 * resumer has extra work after every yield (a canary to check, a pending
 * free): the fast paths only ever test ev against zero. */
enum { EV_YIELD = 0, EV_DELEGATE, EV_RETURN, EV_RAISE, EV_YIELD_SLOW };
/* How the resumer resumes the body; back to IN_SEND once the body has
 * taken an exception, so that a plain send never needs to store it. */
enum {
    IN_SEND = 0,  /* cg_yield returns the value */
    IN_THROW,     /* raise exc, chained to what this generator is handling
                     (CPython's _PyErr_ChainStackItem) */
    IN_PROPAGATE, /* raise exc unchanged: it comes from the subgenerator */
    IN_RAISE,     /* raise exc as if raised right here (chained here) */
    IN_DIE        /* ASan builds: make the last switch at once (abandon) */
};

/* The first fields are read by the assembly fast paths: see
 * src/arch/layout.h for their offsets. */
struct cg_gen {
    cg__ctx ctx;             /* the body's records; first, so that the
                                current context pointer is the generator */
    void *sp;                /* saved stack pointer while not running */
    void *ret_sp;            /* resumer's stack pointer while running */
    uintptr_t owner;         /* the owning thread's thread pointer */
    cg_gen *yf;              /* generator this one delegates to, or NULL */
    cg__ctx *resumer;        /* context whose stack we return to */
    unsigned char state;     /* cg_state */
    unsigned char ev;        /* EV_*: last thing the body posted */
    unsigned char in;        /* IN_*: how the body is being resumed */
    unsigned char canary;    /* stack has a canary to check at each switch */
    unsigned char catching;  /* suspended in cg_yield_catch */
    unsigned char yf_owned;  /* yf was made by cg_yield_from_new */
    unsigned char free_pending; /* cg_free arrived while running/delegated */
    unsigned char forwarding;   /* a throw or close is being forwarded to yf */
    unsigned yf_refs;        /* generators delegating to this one */
    cg_exc *exc;             /* exception crossing the switch (owned) */
    cg_exc **send_exc;       /* cg_send's exc while its fast path waits
                                (src/arch/x86_64-fast.S) */
    void *val;               /* the body's return value */
    cg_gen *up;              /* delegator that resumed this one */
    cg_fn fn;
    void *arg;
    cg__stack *stack;        /* NULL once closed */
    const char *name;
    size_t stack_size;
    cg_gen *live_next;       /* owner thread's list of live generators */
    cg_gen **live_prev;
    void *swap;              /* compact: the stack's used bytes while they
                                are swapped out (at first, the initial frame) */
    size_t swap_len;
    cg_gen *res_next;        /* compact: place in the thread's resident list */
    cg_gen *res_prev;
    unsigned char compact;   /* CG_OPT_COMPACT */
    unsigned char resident;  /* compact: in the resident list */
    unsigned char in_inbox;  /* freed by another thread, waiting in home */
    struct cg__home *home;   /* the owner thread's inbox; never changes
                                but for an orphan that is adopted */
    cg_gen *inbox_next;
    cg__san san;             /* sanitizer state of this stack */
    unsigned char fpenv;     /* CG_OPT_FPENV: 1, then 2 once fp is saved */
    cg__fpenv fp;            /* CG_OPT_FPENV: the body's own environment */
};

#if CG_ASAN || CG_TSAN
/* The sanitizer state of a context's stack. */
static inline cg__san *san_of(cg__ctx *c) { return c->gen ? &c->gen->san : &cg__t.main_san; }
#endif

#include "arch/layout.h"
_Static_assert(offsetof(cg_gen, ctx.parent) == CG_G_PARENT, "layout.h");
_Static_assert(offsetof(cg_gen, sp) == CG_G_SP, "layout.h");
_Static_assert(offsetof(cg_gen, ret_sp) == CG_G_RETSP, "layout.h");
_Static_assert(offsetof(cg_gen, owner) == CG_G_OWNER, "layout.h");
_Static_assert(offsetof(cg_gen, yf) == CG_G_YF, "layout.h");
_Static_assert(offsetof(cg_gen, resumer) == CG_G_RESUMER, "layout.h");
_Static_assert(offsetof(cg_gen, state) == CG_G_STATE, "layout.h");
_Static_assert(offsetof(cg_gen, ev) == CG_G_EV, "layout.h");
_Static_assert(offsetof(cg_gen, in) == CG_G_IN, "layout.h");
_Static_assert(offsetof(cg_gen, exc) == CG_G_EXC, "layout.h");
_Static_assert(offsetof(cg_gen, send_exc) == CG_G_SEND_EXC, "layout.h");
_Static_assert(IN_THROW == CG_IN_THROW, "layout.h");
_Static_assert(offsetof(cg__thread, cur) == CG_T_CUR, "layout.h");
#if CG_FASTPATH
_Static_assert(CG_GEN_CREATED == CG_STATE_CREATED && CG_GEN_SUSPENDED == CG_STATE_SUSPENDED &&
                   CG_GEN_RUNNING == CG_STATE_RUNNING,
               "layout.h");
/* The assembly provides cg_send, cg_next and cg_yield; these are the C
 * versions it falls back to. */
#define CG_SEND_C cg__send_slow
#define CG_THROW_C cg__throw_slow
#define CG_YIELD_C cg__yield_slow
CG_HIDDEN cg_status cg__send_slow(cg_gen *g, void *value, void **out, cg_exc **exc);
CG_HIDDEN cg_status cg__throw_slow(cg_gen *g, cg_exc *e, void **out, cg_exc **exc);
CG_HIDDEN cg_status cg__send_event(cg_gen *g, void *r, void **out, cg_exc **exc);
CG_HIDDEN void *cg__yield_slow(cg_gen *g, void *value);
CG_NORETURN CG_HIDDEN void cg__yield_thrown(cg_gen *g);
CG_HIDDEN void *cg__park_thrown(void *sp);
#else
#define CG_SEND_C cg_send
#define CG_THROW_C cg_throw
#define CG_YIELD_C cg_yield
#endif

/* ---------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------ */

/* Everything a thread holds is given back when it ends, in one destructor so
 * that the order is ours: generators first (finalizing one may still use
 * the pool and raise), then stacks, then the spare handles and exceptions. */
static pthread_once_t key_once = PTHREAD_ONCE_INIT;
static pthread_key_t thread_key;

static void thread_exit(void *arg) {
    (void)arg;
    cg__gen_thread_exit();
    cg__stack_thread_exit();
    cg__gen_flush();
    cg__exc_flush();
    /* As if the thread had never used cogen: if another thread-specific
     * destructor calls cogen after this one (cg_free of an orphan, say),
     * the thread is set up again, the key is set again, and this
     * destructor runs again in the next round, freeing what that made. */
    cg__t.cur = NULL;
}

static void make_key(void) { pthread_key_create(&thread_key, thread_exit); }

void cg__thread_init(void) {
    cg__thread *t = &cg__t;
    if (t->cur) return;
    pthread_once(&key_once, make_key);
    pthread_setspecific(thread_key, t);
    memset(&t->main, 0, sizeof t->main);
    memset(&t->main_san, 0, sizeof t->main_san);
#if CG_TSAN
    t->main_san.tsan_fiber = __tsan_get_current_fiber();
#endif
    t->cur = &t->main;
}

cg_gen *cg_current(void) { return cg__t.cur ? cg__t.cur->gen : NULL; }

/* ---------------------------------------------------------------------
 * Switching, with the sanitizers told about it
 * ------------------------------------------------------------------ */

CG_COLD static void canary_dead(cg_gen *g) {
    fprintf(stderr, "cogen: stack overflow in generator '%s' (stack size %zu bytes, no guard page: canary overwritten)\n",
            cg_gen_name(g), g->stack_size);
    fflush(stderr);
    abort();
}

/* Resumer side: run g until it posts an event. */
static inline void *switch_in(cg_gen *g, cg__ctx *from, void *value) {
#if CG_ASAN
    __sanitizer_start_switch_fiber(&san_of(from)->asan_fake, g->stack->lo, (size_t)(g->stack->hi - g->stack->lo));
#endif
#if CG_TSAN
    __tsan_switch_to_fiber(g->san.tsan_fiber, 0);
#endif
    (void)from;
    void *r = cg__switch(&g->ret_sp, g->sp, value);
#if CG_ASAN
    __sanitizer_finish_switch_fiber(san_of(from)->asan_fake, NULL, NULL);
#endif
    return r;
}

/* Body side, after the resumer switched here. */
CG_NORETURN static void switch_final(cg_gen *g);

static inline void arrived(cg_gen *g) {
#if CG_ASAN
    cg__san *r = san_of(g->resumer);
    __sanitizer_finish_switch_fiber(g->san.asan_fake, &r->asan_bottom, &r->asan_size);
    if (CG_UNLIKELY(g->in == IN_DIE)) switch_final(g);
#else
    (void)g;
#endif
}

/* Body side: post an event, wait to be resumed. */
static inline void *switch_out(cg_gen *g, void *value) {
    if (CG_UNLIKELY(g->canary) && !cg__canary_ok(g->stack)) canary_dead(g);
#if CG_ASAN
    __sanitizer_start_switch_fiber(&g->san.asan_fake, san_of(g->resumer)->asan_bottom, san_of(g->resumer)->asan_size);
#endif
#if CG_TSAN
    __tsan_switch_to_fiber(san_of(g->resumer)->tsan_fiber, 0);
#endif
    void *r = cg__switch(&g->sp, g->ret_sp, value);
    arrived(g);
    return r;
}

/* Body side, for the last time: the stack is abandoned. */
CG_NORETURN static void switch_final(cg_gen *g) {
    if (g->canary && !cg__canary_ok(g->stack)) canary_dead(g);
    CG_CHECK(g->ctx.chain == NULL, "generator ended with exception records on its stack");
#if CG_ASAN
    __sanitizer_start_switch_fiber(NULL, san_of(g->resumer)->asan_bottom, san_of(g->resumer)->asan_size);
#endif
#if CG_TSAN
    __tsan_switch_to_fiber(san_of(g->resumer)->tsan_fiber, 0);
#endif
    cg__switch(&g->sp, g->ret_sp, NULL);
    cg__fatal(__FILE__, __LINE__, "a finished generator was resumed");
}

/* ---------------------------------------------------------------------
 * Compact mode
 *
 * A compact generator has a stack of its own like any other, but only the
 * COMPACT_RESIDENT most recently resumed compact generators of a thread
 * keep its pages. When one more becomes resident, the oldest suspended one
 * is swapped out: the used part of its stack (a few hundred bytes for a
 * shallow generator) is copied to a buffer of exactly that size and the
 * pages are dropped. It is copied back, to the same addresses, before it
 * runs again or its exception records are read. So a compact generator that
 * is resumed often costs what any generator costs, and a suspended one costs
 * its handle plus its used stack bytes.
 *
 * Bit 0 of `owner` is set while a compact generator is not resident: the
 * assembly fast path, which compares owner with the thread pointer, then
 * falls back to the C path, which makes it resident first.
 * ------------------------------------------------------------------ */

#define COMPACT_RESIDENT 64
#define COMPACT_STACK CG_STACK_COMPACT_DEFAULT

/* The owner word is the one field another thread may read while the owner
 * runs (to be refused), and the owner changes its bit 0: relaxed atomics,
 * plain moves on x86-64 and AArch64. */
static inline uintptr_t owner_word(const cg_gen *g) { return __atomic_load_n(&g->owner, __ATOMIC_RELAXED); }
static inline void set_owner(cg_gen *g, uintptr_t w) { __atomic_store_n(&g->owner, w, __ATOMIC_RELAXED); }
static inline uintptr_t owner_of(const cg_gen *g) { return owner_word(g) & ~(uintptr_t)1; }

static void res_unlink(cg_gen *g) {
    if (!g->resident) return;
    if (g->res_prev)
        g->res_prev->res_next = g->res_next;
    else
        cg__t.res_head = g->res_next;
    if (g->res_next)
        g->res_next->res_prev = g->res_prev;
    else
        cg__t.res_tail = g->res_prev;
    g->resident = 0;
    cg__t.nres--;
}

static void res_append(cg_gen *g) {
    g->res_next = NULL;
    g->res_prev = cg__t.res_tail;
    if (cg__t.res_tail)
        cg__t.res_tail->res_next = g;
    else
        cg__t.res_head = g;
    cg__t.res_tail = g;
    g->resident = 1;
    cg__t.nres++;
}

/* Copies the used part of a suspended compact generator's stack out and
 * drops its pages. Returns 0 if there is no memory for the copy (then it
 * simply stays resident). */
static int swap_out(cg_gen *g) {
    size_t len = (size_t)(g->stack->hi - (char *)g->sp);
    void *buf = cg__alloc(len);
    if (!buf) return 0;
#if CG_ASAN
    ASAN_UNPOISON_MEMORY_REGION(g->sp, len); /* copying reads the redzones */
#endif
    memcpy(buf, g->sp, len);
    cg__stack_drop_pages(g->stack);
    g->swap = buf;
    g->swap_len = len;
    res_unlink(g);
    set_owner(g, g->owner | 1);
    return 1;
}

static void swap_in(cg_gen *g) {
    if (!g->swap) return;
    memcpy(g->stack->hi - g->swap_len, g->swap, g->swap_len);
    cg__dealloc(g->swap);
    g->swap = NULL;
}

/* A process-wide default, for running a whole test suite in compact mode:
 * COGEN_COMPACT=N in the environment makes every generator compact, with at
 * most N resident per thread (N=1 swaps at almost every switch). */
static int compact_env = -1; /* -1: not read yet; 0: off; else the limit */

static int compact_default(void) {
    int c = __atomic_load_n(&compact_env, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *e = getenv("COGEN_COMPACT");
        long n = e ? strtol(e, NULL, 10) : 0;
        c = n > 0 ? (n < 1 << 20 ? (int)n : 1 << 20) : 0;
        __atomic_store_n(&compact_env, c, __ATOMIC_RELAXED);
    }
    return c;
}

static unsigned res_limit(void) {
    if (cg__t.res_limit) return cg__t.res_limit;
    int env = compact_default();
    return env > 0 ? (unsigned)env : COMPACT_RESIDENT;
}

/* Swaps out the oldest suspended ones while there are too many. Running
 * ones (a delegator below the generator that runs, a body that resumed
 * another) stay: their frames are in use. */
static void evict_excess(void) {
    unsigned limit = res_limit();
    cg_gen *v = cg__t.res_head;
    while (cg__t.nres > limit && v) {
        cg_gen *next = v->res_next;
        if (v->state == CG_GEN_SUSPENDED && !swap_out(v)) break;
        v = next;
    }
}

/* Before a compact generator runs, or its records are read. */
CG_NOINLINE static void make_resident(cg_gen *g) {
    swap_in(g);
    set_owner(g, g->owner & ~(uintptr_t)1);
    res_append(g);
    evict_excess();
}

unsigned cg_compact_resident(unsigned limit) {
    cg__cur();
    unsigned old = res_limit();
    if (limit) {
        cg__t.res_limit = limit;
        evict_excess();
    }
    return old;
}

/* ---- switch: ev and the private floating-point environment ----
 * Before the resumer switches into n: ev back to its resting value (a
 * delegator keeps EV_DELEGATE until then, so that the assembly cg_send,
 * which sends only to a generator whose ev is 0, never sends to it); and a
 * body parked in the assembly cg_yield, about to get an exception, is
 * made to raise it there (src/arch/x86_64-fast.S). */
static inline unsigned char resting(const cg_gen *g);
static inline void before_resume(cg_gen *n, unsigned in) {
    n->ev = resting(n);
#if CG_FASTPATH
    if (in != IN_SEND) n->sp = cg__park_thrown(n->sp); /* never for a fresh one */
#else
    (void)in;
#endif
}

/* switch_in for a CG_OPT_FPENV generator: the body runs in its own
 * floating-point environment, the resumer gets its own back. Loaded only
 * when it differs; the first run starts in the resumer's, as a called
 * function would. Nested resumes nest: each resumer saves its own. */
CG_NOINLINE static void *switch_in_fpenv(cg_gen *g, cg__ctx *from, void *value) {
    cg__fpenv mine;
    cg__fpenv_get(&mine);
    if (g->fpenv == 2 && !cg__fpenv_eq(&g->fp, &mine)) cg__fpenv_set(&g->fp);
    void *r = switch_in(g, from, value);
    cg__fpenv_get(&g->fp);
    g->fpenv = 2;
    if (!cg__fpenv_eq(&g->fp, &mine)) cg__fpenv_set(&mine);
    return r;
}
/* ---- end switch ---- */

/* Resumer side: resume n once with (in, value, e). */
static inline void *resume(cg_gen *n, cg__ctx *caller, unsigned in, void *value, cg_exc *e) {
    if (CG_UNLIKELY(n->owner & 1)) make_resident(n);
    n->in = (unsigned char)in;
    n->exc = e;
    n->resumer = caller;
    cg__t.cur = &n->ctx;
    before_resume(n, in);
    void *r = CG_UNLIKELY(n->fpenv) ? switch_in_fpenv(n, caller, value) : switch_in(n, caller, value);
    cg__t.cur = caller;
    return r;
}

void cg__gen_main(cg_gen *g) {
    arrived(g);
    /* A throw or close never starts a body: the first resume is a send. */
    g->val = g->fn(g, g->arg);
    g->ev = EV_RETURN;
    switch_final(g);
}

void cg__gen_finish(cg_gen *g, cg_exc *e) {
    g->exc = e;
    g->ev = EV_RAISE;
    switch_final(g);
}



/* ---------------------------------------------------------------------
 * Life cycle
 * ------------------------------------------------------------------ */

static void unraisable(cg_exc *e, cg_gen *g);

/* Handles are recycled per thread: malloc and free cost more than all the
 * rest of a generator's life cycle. */
#define SPARE_MAX 64

static cg_gen *gen_alloc(void) {
    cg__cache_check();
    cg_gen *g = cg__t.spare;
    if (g) {
        cg__t.spare = g->up;
        cg__t.nspare--;
        return g;
    }
    return cg__alloc(sizeof *g);
}

static void gen_release(cg_gen *g) {
    cg__cache_check();
    if (cg__t.nspare >= SPARE_MAX || !cg__t.cur) {
        cg__dealloc(g);
        return;
    }
    g->up = cg__t.spare;
    cg__t.spare = g;
    cg__t.nspare++;
}

void cg__gen_flush(void) {
    for (cg_gen *g = cg__t.spare, *next; g; g = next) {
        next = g->up;
        cg__cache_free(g);
    }
    cg__t.spare = NULL;
    cg__t.nspare = 0;
}

/* ---------------------------------------------------------------------
 * Freeing from another thread
 *
 * A generator belongs to the thread that made it: only that thread may
 * resume it, and only that thread touches its lists. cg_free from another
 * thread therefore puts it in its owner's inbox, and the owner finalizes
 * it (closing it if it is suspended) at its next call into cogen, or when
 * it ends. If the owner has ended already, the generator is an orphan: it
 * can no longer be resumed by anyone, and the thread that frees it adopts
 * it and finalizes it at once. The inbox lives on the heap so that it
 * outlives its thread while orphans point to it.
 * ------------------------------------------------------------------ */

#define ORPHAN ((uintptr_t)2) /* the owner of a generator whose thread ended */

typedef struct cg__home {
    pthread_mutex_t lock;
    _Atomic(cg_gen *) inbox; /* changed under lock; read without it as a hint */
    int alive;      /* its thread has not ended */
    long orphans;   /* generators still alive when it ended */
} cg__home;

static cg__home *home_get(void) {
    cg__home *h = cg__t.home;
    if (CG_LIKELY(h)) return h;
    h = malloc(sizeof *h);
    if (!h) return NULL;
    pthread_mutex_init(&h->lock, NULL);
    atomic_init(&h->inbox, NULL);
    h->alive = 1;
    h->orphans = 0;
    cg__t.home = h;
    return h;
}

static void home_destroy(cg__home *h) {
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* Frees the generators of an inbox list taken by their owner. */
static void free_inbox_list(cg_gen *list) {
    while (list) {
        cg_gen *g = list;
        list = g->inbox_next;
        g->in_inbox = 0;
        cg_free(g);
    }
}

/* The owner finalizes what other threads freed. */
CG_COLD static void drain(cg__home *h) {
    pthread_mutex_lock(&h->lock);
    cg_gen *list = atomic_exchange_explicit(&h->inbox, NULL, memory_order_relaxed);
    pthread_mutex_unlock(&h->lock);
    free_inbox_list(list);
}

static inline void drain_if_any(void) {
    cg__home *h = cg__t.home;
    if (h && atomic_load_explicit(&h->inbox, memory_order_relaxed)) drain(h);
}

void cg__gen_drain(void) { drain_if_any(); }

/* cg_free from a thread that is not g's owner. Only fields that the owner
 * never changes after creation are read here (home), so the owner may go
 * on using its other generators meanwhile. */
CG_COLD static int free_remote(cg_gen *g) {
    cg__home *h = g->home;
    pthread_mutex_lock(&h->lock);
    if (h->alive) {
        g->in_inbox = 1;
        g->inbox_next = atomic_load_explicit(&h->inbox, memory_order_relaxed);
        atomic_store_explicit(&h->inbox, g, memory_order_relaxed);
        pthread_mutex_unlock(&h->lock);
        return 1;
    }
    int last = --h->orphans == 0;
    pthread_mutex_unlock(&h->lock);
    if (last) home_destroy(h);
    /* An orphan: adopt it. Nobody else can reach its lists any more. */
    cg__cur();
    g->home = home_get();
    set_owner(g, cg__self() | (owner_word(g) & 1)); /* still swapped out, if it was */
    return 0;
}

void cg__gen_thread_exit(void) {
    cg__home *h = cg__t.home;
    if (!h) return;
    pthread_mutex_lock(&h->lock);
    h->alive = 0;
    cg_gen *list = atomic_exchange_explicit(&h->inbox, NULL, memory_order_relaxed);
    long orphans = 0;
    for (cg_gen *g = cg__t.live, *next; g; g = next) {
        next = g->live_next;
        g->live_prev = NULL;
        g->live_next = NULL;
        g->resident = 0;
        if (g->in_inbox) continue; /* finalized below, by us */
        set_owner(g, ORPHAN | (g->owner & 1));
        orphans++;
    }
    cg__t.live = NULL;
    cg__t.res_head = cg__t.res_tail = NULL;
    cg__t.nres = 0;
    h->orphans = orphans;
    pthread_mutex_unlock(&h->lock);
    free_inbox_list(list);
    cg__t.home = NULL;
    if (!orphans) home_destroy(h);
}

static inline unsigned char resting(const cg_gen *g) {
    return (g->canary || g->free_pending || g->fpenv) ? EV_YIELD_SLOW : EV_YIELD;
}

cg_gen *cg_new(cg_fn fn, void *arg, const cg_opts *opts) {
    static const cg_opts defaults = {0, NULL, 0};
    if (!opts) opts = &defaults;
#if CG_UCONTEXT
    unsigned char compact = 0; /* a ucontext_t is not relocatable: no copies */
#else
    unsigned char compact = (opts->flags & CG_OPT_COMPACT) || compact_default() > 0;
#endif
    size_t size = opts->stack_size ? opts->stack_size : compact ? COMPACT_STACK : CG_STACK_DEFAULT;
    if (!fn || size > ((size_t)1 << 40)) {
        errno = EINVAL;
        return NULL;
    }
    if (size < CG_STACK_MIN) size = CG_STACK_MIN;
    cg__cur();
    drain_if_any();
    cg__home *home = home_get();
    cg_gen *g = home ? gen_alloc() : NULL;
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    cg__stack *st = cg__stack_get(size, opts->flags);
    if (!st) {
        int err = errno;
        gen_release(g);
        errno = err;
        return NULL;
    }
    unsigned char canary = st->kind == CG_GUARD_CANARY;
    /* Field by field: zeroing the whole struct compiles to `rep stos`,
     * which costs more than the rest of cg_new. */
#if CG_ASAN || CG_TSAN
    memset(&g->san, 0, sizeof g->san);
#endif
    g->ctx.chain = NULL;
    g->ctx.parent = NULL;
    g->ctx.gen = g;
    g->ret_sp = NULL;
    g->owner = cg__self();
    g->yf = NULL;
    g->state = CG_GEN_CREATED;
    g->in = IN_SEND;
    g->canary = canary;
    g->catching = 0;
    g->yf_owned = 0;
    g->free_pending = 0;
    g->fpenv = (opts->flags & CG_OPT_FPENV) ? 1 : 0;
    g->ev = resting(g);
    g->forwarding = 0;
    g->yf_refs = 0;
    g->exc = NULL;
    g->val = NULL;
    g->up = NULL;
    g->resumer = NULL;
    g->fn = fn;
    g->arg = arg;
    g->stack = st;
    g->name = opts->name;
    g->stack_size = (size_t)(st->hi - st->lo);
    g->swap = NULL;
    g->compact = compact;
    g->resident = 0;
    g->in_inbox = 0;
    g->home = home;
    if (!compact) {
        g->sp = cg__stack_ready(st, g);
    } else {
        /* The initial frame goes to the swap buffer: the stack's pages are
         * not touched until the generator first runs. The frame holds no
         * address of its own, so it can be built anywhere with the same
         * alignment and copied to the top of the stack later. */
        _Alignas(16) char tmp[256];
        cg__stack fake = *st;
        fake.hi = tmp + sizeof tmp;
        char *fsp = cg__stack_ready(&fake, g);
        g->swap_len = (size_t)(fake.hi - fsp);
        g->swap = cg__alloc(g->swap_len);
        if (!g->swap) {
            cg__stack_put(st);
            gen_release(g);
            errno = ENOMEM;
            return NULL;
        }
        memcpy(g->swap, fsp, g->swap_len);
        g->sp = st->hi - g->swap_len;
        set_owner(g, g->owner | 1);
    }
#if CG_TSAN
    /* A fiber per generator: one kept with its stack would keep the shadow
     * frames of every generator that ended on that stack. */
    g->san.tsan_fiber = __tsan_create_fiber(0);
#endif
    g->inbox_next = NULL;
    g->live_next = cg__t.live;
    g->live_prev = &cg__t.live;
    if (g->live_next) g->live_next->live_prev = &g->live_next;
    cg__t.live = g;
    return g;
}

/* The body will never run again: give its stack back. */
static void release_stack(cg_gen *g) {
    if (g->stack) {
        if (g->canary && !cg__canary_ok(g->stack)) canary_dead(g);
        if (CG_UNLIKELY(g->compact)) {
            res_unlink(g);
            cg__dealloc(g->swap);
            g->swap = NULL;
            set_owner(g, g->owner & ~(uintptr_t)1);
        }
        cg__stack_put(g->stack);
        g->stack = NULL;
    }
    g->state = CG_GEN_CLOSED;
}

/* Gives back the stack of a suspended body that will not run to its end.
 * Under ASan with detect_stack_use_after_return, the body's frames live on
 * a fake stack that ASan frees only when the fiber makes its last switch:
 * the body is resumed once more just to make it (arrived(), IN_DIE). */
static void abandon(cg_gen *g) {
#if CG_ASAN
    resume(g, cg__t.cur, IN_DIE, NULL, NULL);
#endif
    release_stack(g);
}

static void end_delegation(cg_gen *g);

/* Throws away a suspended body without unwinding it (it refused to close,
 * or its thread cannot run it). */
static void discard(cg_gen *g) {
    swap_in(g); /* its records are read below */
    cg__drop_chain(&g->ctx);
    if (g->yf) {
        cg_gen *sub = g->yf;
        int owned = g->yf_owned;
        end_delegation(g);
        if (owned) cg_free(sub);
    }
    cg_exc_unref(g->exc);
    g->exc = NULL;
    abandon(g);
}

static cg_status close_impl(cg_gen *g, void **retval, cg_exc **exc);

void cg_free(cg_gen *g) {
    if (!g) return;
    if (CG_UNLIKELY(g->home != cg__t.home) && free_remote(g)) return;
    drain_if_any();
    if (g->state == CG_GEN_RUNNING || g->yf_refs) {
        g->free_pending = 1; /* as a Python frame holding a reference would */
        if (g->ev == EV_YIELD) g->ev = EV_YIELD_SLOW;
        return;
    }
    if (g->state == CG_GEN_SUSPENDED) {
        cg_exc *err = NULL;
        if (close_impl(g, NULL, &err) == CG_RAISED) {
            unraisable(err, g);
            cg_exc_unref(err);
        }
        if (g->state != CG_GEN_CLOSED) discard(g);
    } else {
        release_stack(g);
    }
#if CG_TSAN
    __tsan_destroy_fiber(g->san.tsan_fiber);
#endif
    if (g->live_prev) {
        *g->live_prev = g->live_next;
        if (g->live_next) g->live_next->live_prev = g->live_prev;
    }
    gen_release(g);
}

/* Frees g if a cg_free was waiting for it to stop running or being
 * delegated to. */
static inline void settle(cg_gen *g) {
    if (CG_UNLIKELY(g->free_pending) && g->state != CG_GEN_RUNNING && !g->yf_refs) cg_free(g);
}

/* ---------------------------------------------------------------------
 * Driving
 * ------------------------------------------------------------------ */

static cg_status fail(void **out, cg_exc **exc, cg_exc *e) {
    if (out) *out = NULL;
    if (exc)
        *exc = e;
    else
        cg_exc_unref(e);
    return CG_RAISED;
}

static cg_status done(void **out, cg_exc **exc, void *v) {
    if (out) *out = v;
    if (exc) *exc = NULL;
    return CG_RETURNED;
}

/* PEP 479: a StopIteration leaving a generator becomes RuntimeError. */
static cg_exc *pep479(cg_exc *e) {
    if (!cg_exc_is(e, &cg_StopIteration)) return e;
    cg_exc *rt = cg_exc_new(&cg_RuntimeError, "generator raised StopIteration");
    cg_exc_set_cause(rt, e);
    cg_exc_unref(e);
    return rt;
}

static void end_delegation(cg_gen *g) {
    cg_gen *sub = g->yf;
    g->yf = NULL;
    sub->yf_refs--;
    settle(sub);
}

static void suspend_chain(cg_gen *node, cg_gen *top) {
    for (cg_gen *n = node;; n = n->up) {
        n->state = CG_GEN_SUSPENDED;
        if (n == top) break;
    }
}

/* A send goes down the delegation chain to the innermost generator, which
 * is the one to resume; on the way every generator becomes RUNNING. A
 * subgenerator that cannot take the send ends its delegator's delegation
 * there, as CPython's SEND does: a running one raises ValueError in the
 * delegator, a closed one makes the yield from evaluate to None. */
static cg_gen *descend(cg_gen *node, unsigned *in, void **val, cg_exc **e) {
    while (node->yf) {
        cg_gen *sub = node->yf;
        /* The generators above the one that runs are not switched to, but
         * their exception records are read: a compact one must be back. */
        if (CG_UNLIKELY(node->owner & 1)) make_resident(node);
        if (sub->state == CG_GEN_RUNNING) {
            end_delegation(node);
            *in = IN_RAISE;
            *e = cg_exc_new(&cg_ValueError, "generator already executing");
            *val = NULL;
            break;
        }
        if (sub->state == CG_GEN_CLOSED) {
            end_delegation(node);
            *val = NULL;
            break;
        }
        sub->up = node;
        sub->ctx.parent = &node->ctx; /* its exceptions chain to node's */
        sub->state = CG_GEN_RUNNING;
        node = sub;
    }
    return node;
}

/* Where node's exception context continues while it runs in this
 * operation: the resumer's context for the top of the chain, else its
 * delegator's. Set for every generator of the chain before it can run, so
 * that no stale pointer (to a generator since freed) is ever followed. */
static inline void set_parent(cg_gen *node, cg_gen *top, cg__ctx *caller) {
    node->ctx.parent = node == top ? caller : &node->up->ctx;
}

/* node has just posted an event, r being the value it passed. Handles it
 * and goes on resuming the chain under top until top yields or finishes. */
static cg_status on_event(cg_gen *top, cg_gen *node, void *r, void **out, cg_exc **exc) {
    cg__ctx *caller = cg__t.cur;
    for (;;) {
        unsigned in;
        void *val = NULL;
        cg_exc *e = NULL;
        if (node->ev == EV_YIELD || node->ev == EV_YIELD_SLOW) {
            if (node->canary && !cg__canary_ok(node->stack)) canary_dead(node);
            suspend_chain(node, top);
            if (out) *out = r;
            if (exc) *exc = NULL;
            return CG_YIELDED;
        }
        if (node->ev == EV_DELEGATE) {
            cg_gen *sub = node->yf;
            /* node->ev stays EV_DELEGATE until node is resumed (resume()) */
            sub->up = node;
            sub->state = CG_GEN_RUNNING;
            node = sub;
            in = IN_SEND;
        } else { /* finished */
            void *rv = node->val;
            cg_exc *err = node->ev == EV_RAISE ? pep479(node->exc) : NULL;
            node->exc = NULL;
            release_stack(node);
            if (node == top) return err ? fail(out, exc, err) : done(out, exc, rv);
            cg_gen *d = node->up;
            end_delegation(d); /* may free node */
            node = d;
            if (err) {
                in = IN_PROPAGATE;
                e = err;
            } else {
                in = IN_SEND;
                val = rv;
            }
        }
        set_parent(node, top, caller);
        if (in == IN_SEND && node->yf) node = descend(node, &in, &val, &e);
        r = resume(node, caller, in, val, e);
    }
}

/* Resumes node (top, or below it with the generators above RUNNING). */
static cg_status run(cg_gen *top, cg_gen *node, unsigned in, void *val, cg_exc *e, void **out, cg_exc **exc) {
    cg__ctx *caller = cg__t.cur;
    set_parent(node, top, caller);
    if (in == IN_SEND && node->yf) node = descend(node, &in, &val, &e);
    void *r = resume(node, caller, in, val, e);
    return on_event(top, node, r, out, exc);
}

/* Checks common to every caller-side operation. */
static cg_exc *check_caller(const cg_gen *g, const char *op) {
    if (!g) {
        cg__cur();
        char msg[64];
        snprintf(msg, sizeof msg, "%s() argument must be a generator, not NULL", op);
        return cg__error(&cg_TypeError, msg);
    }
    if (owner_of(g) != cg__self()) return cg__error(&cg_RuntimeError, "generator belongs to another thread");
    return NULL;
}

CG_COLD static cg_status send_slow(cg_gen *g, void *value, void **out, cg_exc **exc) {
    cg_exc *err = check_caller(g, "cg_send");
    if (err) return fail(out, exc, err);
    switch (g->state) {
    case CG_GEN_RUNNING:
        return fail(out, exc, cg__error(&cg_ValueError, "generator already executing"));
    case CG_GEN_CLOSED:
        return done(out, exc, NULL);
    case CG_GEN_CREATED:
        if (value) return fail(out, exc, cg__error(&cg_TypeError, "can't send non-None value to a just-started generator"));
        break;
    default:
        break;
    }
    g->state = CG_GEN_RUNNING;
    cg_status st = run(g, g, IN_SEND, value, NULL, out, exc);
    settle(g);
    return st;
}

/* The common case of cg_send and cg_throw (their C versions, used where
 * the assembly fast paths are not): a plain suspended generator, resumed
 * by its owner, that yields again. */
static inline cg_status resume_plain(cg_gen *g, unsigned in, void *value, cg_exc *e, void **out, cg_exc **exc) {
    cg__ctx *caller = cg__t.cur;
    g->state = CG_GEN_RUNNING;
    g->ctx.parent = caller;
    void *r = resume(g, caller, in, value, e);
    cg_status st;
    if (CG_LIKELY(g->ev == EV_YIELD)) {
        g->state = CG_GEN_SUSPENDED;
        if (out) *out = r;
        if (exc) *exc = NULL;
        st = CG_YIELDED;
    } else {
        st = on_event(g, g, r, out, exc);
    }
    settle(g);
    return st;
}

cg_status CG_SEND_C(cg_gen *g, void *value, void **out, cg_exc **exc) {
    /* The owner first: another thread must not read the rest (it changes). */
    if (CG_LIKELY(g && owner_word(g) == cg__self() && g->state == CG_GEN_SUSPENDED && !g->yf))
        return resume_plain(g, IN_SEND, value, NULL, out, exc);
    return send_slow(g, value, out, exc);
}

#if CG_FASTPATH
cg_status cg__send_event(cg_gen *g, void *r, void **out, cg_exc **exc) {
    cg_status st = on_event(g, g, r, out, exc);
    settle(g);
    return st;
}
#else
cg_status cg_next(cg_gen *g, void **out, cg_exc **exc) { return cg_send(g, NULL, out, exc); }
#endif

static cg_status throw_impl(cg_gen *g, cg_exc *e, void **out, cg_exc **exc);

/* A throw into g while a throw or close is being forwarded through g to its
 * subgenerator. CPython's _gen_throw still sees g parked at its yield from
 * (only its state says "running"), forwards this throw down as well, and
 * when that fails pops the subgenerator off g's frame: g no longer delegates
 * to it, and whatever resumes g next finishes its yield from. The caller
 * gets ValueError('generator already executing'). */
static cg_status throw_detach(cg_gen *g, cg_exc *e, void **out, cg_exc **exc) {
    cg_gen *sub = g->yf;
    void *v = NULL;
    cg_exc *err = NULL;
    cg_status st = throw_impl(sub, e, &v, &err);
    if (st == CG_YIELDED) {
        if (out) *out = v;
        if (exc) *exc = NULL;
        return st;
    }
    cg_exc_unref(err);
    g->yf = NULL;
    sub->yf_refs--; /* still held by the forwarding in progress */
    return fail(out, exc, cg__error(&cg_ValueError, "generator already executing"));
}

/* After forwarding to sub: the delegation goes on, or it was cut by a
 * nested throw (throw_detach), and then sub is dropped here, as CPython
 * drops it when the forwarding lets go of it. */
static int forwarded(cg_gen *g, cg_gen *sub) {
    g->forwarding = 0;
    if (g->yf == sub) return 1;
    /* As CPython: g is marked suspended again before the subgenerator is
     * dropped, so that the subgenerator's cleanup may act on g (close it,
     * even): the callers check g's state afterwards. */
    g->state = CG_GEN_SUSPENDED;
    if (g->yf_owned) {
        g->yf_owned = 0;
        cg_free(sub);
    } else {
        settle(sub);
    }
    return 0;
}

static cg_status throw_impl(cg_gen *g, cg_exc *e, void **out, cg_exc **exc) {
    switch (g->state) {
    case CG_GEN_RUNNING:
        if (g->forwarding && g->yf && !cg_exc_is(e, &cg_GeneratorExit)) return throw_detach(g, e, out, exc);
        cg_exc_unref(e);
        return fail(out, exc, cg__error(&cg_ValueError, "generator already executing"));
    case CG_GEN_CLOSED:
        return fail(out, exc, e); /* handed back as it is */
    case CG_GEN_CREATED:
        /* Raised before the first line: nothing can catch it. */
        release_stack(g);
        return fail(out, exc, pep479(e));
    default:
        break;
    }
    if (g->yf) {
        cg_gen *sub = g->yf;
        void *v = NULL;
        cg_exc *err = NULL;
        cg_status st;
        g->state = CG_GEN_RUNNING;
        g->forwarding = 1;
        if (cg_exc_is(e, &cg_GeneratorExit)) {
            /* The subgenerator is closed, not thrown into; an error from
             * closing it replaces the GeneratorExit. */
            if (close_impl(sub, NULL, &err) == CG_RAISED) {
                cg_exc_unref(e);
                e = err;
            }
            if (forwarded(g, sub)) {
                end_delegation(g);
            } else if (g->state != CG_GEN_SUSPENDED) {
                return fail(out, exc, e); /* closed by the dropped subgenerator */
            } else {
                g->state = CG_GEN_RUNNING;
            }
            return run(g, g, IN_THROW, NULL, e, out, exc);
        }
        st = throw_impl(sub, e, &v, &err);
        if (forwarded(g, sub)) {
            if (st == CG_YIELDED) {
                g->state = CG_GEN_SUSPENDED;
                if (out) *out = v;
                if (exc) *exc = NULL;
                return CG_YIELDED;
            }
            end_delegation(g);
        } else if (st == CG_YIELDED) { /* cut by a nested throw (throw_detach) */
            if (out) *out = v;
            if (exc) *exc = NULL;
            return CG_YIELDED;
        } else if (g->state != CG_GEN_SUSPENDED) {
            return st == CG_RETURNED ? done(out, exc, v) : fail(out, exc, err);
        } else {
            g->state = CG_GEN_RUNNING;
        }
        if (st == CG_RETURNED) return run(g, g, IN_SEND, v, NULL, out, exc);
        return run(g, g, IN_THROW, NULL, err, out, exc);
    }
    g->state = CG_GEN_RUNNING;
    return run(g, g, IN_THROW, NULL, e, out, exc);
}

cg_status CG_THROW_C(cg_gen *g, cg_exc *e, void **out, cg_exc **exc) {
    /* The common case, as in cg_send: a plain suspended generator. */
    if (CG_LIKELY(e && g && owner_word(g) == cg__self() && g->state == CG_GEN_SUSPENDED && !g->yf))
        return resume_plain(g, IN_THROW, NULL, e, out, exc);
    if (!e) {
        cg__cur();
        return fail(out, exc,
                    cg__error(&cg_TypeError, "exceptions must be classes or instances deriving from BaseException, not NoneType"));
    }
    cg_exc *err = check_caller(g, "cg_throw");
    if (err) {
        cg_exc_unref(e);
        return fail(out, exc, err);
    }
    cg_status st = throw_impl(g, e, out, exc);
    settle(g);
    return st;
}

/* close(), as CPython's gen_close: the GeneratorExit is raised like any new
 * exception in the caller's context (chained to what the caller is
 * handling), then thrown in (chained to what the body is handling). */
static cg_status close_impl(cg_gen *g, void **retval, cg_exc **exc) {
    switch (g->state) {
    case CG_GEN_RUNNING:
        return fail(retval, exc, cg__error(&cg_ValueError, "generator already executing"));
    case CG_GEN_CREATED:
        release_stack(g);
        return done(retval, exc, NULL);
    case CG_GEN_CLOSED:
        return done(retval, exc, NULL);
    default:
        break;
    }
    cg_exc *e = NULL;
    if (g->yf) {
        cg_gen *sub = g->yf;
        cg_exc *err = NULL;
        g->state = CG_GEN_RUNNING;
        g->forwarding = 1;
        if (close_impl(sub, NULL, &err) == CG_RAISED) e = err;
        g->state = CG_GEN_SUSPENDED;
        if (forwarded(g, sub)) {
            end_delegation(g);
        } else if (g->state != CG_GEN_SUSPENDED) { /* closed by the dropped subgenerator */
            cg_exc_unref(e);
            return done(retval, exc, NULL);
        }
    } else if (!g->ctx.chain && !g->catching) {
        /* No try, no defer at the yield: nothing in the body can see the
         * GeneratorExit, so it would come straight back out. */
        abandon(g);
        return done(retval, exc, NULL);
    }
    if (!e) {
        e = cg__error(&cg_GeneratorExit, NULL);
        if (!cg_exc_is(e, &cg_GeneratorExit)) e = cg__generator_exit_static(); /* out of memory */
    }
    void *v = NULL;
    cg_exc *err = NULL;
    g->state = CG_GEN_RUNNING;
    cg_status st = run(g, g, IN_THROW, NULL, e, &v, &err);
    if (st == CG_YIELDED) return fail(retval, exc, cg__error(&cg_RuntimeError, "generator ignored GeneratorExit"));
    if (st == CG_RAISED) {
        if (!cg_exc_is(err, &cg_GeneratorExit)) return fail(retval, exc, err);
        cg_exc_unref(err);
        v = NULL;
    }
    return done(retval, exc, v);
}

cg_status cg_close(cg_gen *g, void **retval, cg_exc **exc) {
    if (CG_LIKELY(g && owner_word(g) == cg__self() && g->state == CG_GEN_SUSPENDED && !g->yf && !g->ctx.chain &&
                  !g->catching && !g->free_pending)) {
        /* Nothing in the body can see the GeneratorExit (see close_impl). */
        abandon(g);
        return done(retval, exc, NULL);
    }
    cg_exc *err = check_caller(g, "cg_close");
    if (err) return fail(retval, exc, err);
    cg_status st = close_impl(g, retval, exc);
    settle(g);
    return st;
}

/* ---------------------------------------------------------------------
 * The body side
 * ------------------------------------------------------------------ */

CG_COLD CG_NORETURN static void not_running(cg_gen *g, const char *op) {
    (void)g;
    CG_RAISEF(&cg_RuntimeError, "%s() called outside the body of its generator", op);
}

/* The resumer threw: take the exception, chained as the resume mode says. */
static cg_exc *take_thrown(cg_gen *g) {
    cg_exc *e = g->exc;
    unsigned in = g->in;
    g->exc = NULL;
    g->in = IN_SEND;
    if (in == IN_THROW)
        cg__chain(e, cg__handled(&g->ctx, 0));
    else if (in == IN_RAISE)
        cg__chain_here(e);
    return e;
}

CG_COLD CG_NORETURN static void raise_thrown(cg_gen *g) { cg__unwind(take_thrown(g)); }

#if CG_FASTPATH
void cg__yield_thrown(cg_gen *g) {
    arrived(g);
    raise_thrown(g);
}
#endif

void *CG_YIELD_C(cg_gen *g, void *value) {
    if (CG_UNLIKELY(!g || cg__t.cur != &g->ctx)) not_running(g, "cg_yield");
    void *r = switch_out(g, value);
    if (CG_UNLIKELY(g->in != IN_SEND)) raise_thrown(g);
    return r;
}

cg_exc *cg_yield_catch(cg_gen *g, void *value, void **sent) {
    if (CG_UNLIKELY(!g || cg__t.cur != &g->ctx)) {
        /* It never unwinds, not even for misuse: the error is its result. */
        if (sent) *sent = NULL;
        return cg__error(&cg_RuntimeError, "cg_yield_catch() called outside the body of its generator");
    }
    g->catching = 1;
    void *r = switch_out(g, value);
    g->catching = 0;
    if (g->in != IN_SEND) {
        if (sent) *sent = NULL;
        return take_thrown(g);
    }
    if (sent) *sent = r;
    return NULL;
}

static void check_sub(cg_gen *g, cg_gen *sub) {
    if (!sub) CG_RAISE(&cg_TypeError, "'NoneType' object is not iterable");
    if (owner_of(sub) != owner_of(g)) CG_RAISE(&cg_RuntimeError, "generator belongs to another thread");
    if (sub == g || sub->state == CG_GEN_RUNNING) CG_RAISE(&cg_ValueError, "generator already executing");
}

/* Hands sub to the resumer's loop, which runs it in g's place. Returns when
 * the delegation has ended, with sub's return value, or its exception left
 * in g->exc (g->in says how to raise it). */
static void *delegate(cg_gen *g, cg_gen *sub) {
    g->yf = sub;
    sub->yf_refs++;
    g->ev = EV_DELEGATE;
    return switch_out(g, NULL);
}

void *cg_yield_from(cg_gen *g, cg_gen *sub) {
    if (CG_UNLIKELY(!g || cg__t.cur != &g->ctx)) not_running(g, "cg_yield_from");
    check_sub(g, sub);
    if (sub->state == CG_GEN_CLOSED) return NULL;
    void *r = delegate(g, sub);
    if (g->in != IN_SEND) raise_thrown(g);
    return r;
}

void *cg_yield_from_new(cg_gen *g, cg_fn fn, void *arg, const cg_opts *opts) {
    if (CG_UNLIKELY(!g || cg__t.cur != &g->ctx)) not_running(g, "cg_yield_from_new");
    if (!fn) CG_RAISE(&cg_TypeError, "'NoneType' object is not iterable"); /* as cg_yield_from(g, NULL) */
    cg_gen *sub = cg_new(fn, arg, opts);
    if (!sub) {
        if (errno == ENOMEM) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        CG_RAISEF(&cg_ValueError, "cannot make the subgenerator (%s)", strerror(errno));
    }
    g->yf_owned = 1;
    void *r = delegate(g, sub);
    /* Python drops the subgenerator when the delegation ends: after a throw
     * is chained, before the exception unwinds anything here (unless a
     * nested throw cut the delegation and it was dropped then). */
    cg_exc *e = g->in != IN_SEND ? take_thrown(g) : NULL;
    if (g->yf_owned) {
        g->yf_owned = 0;
        cg_free(sub);
    }
    if (e) cg__unwind(e);
    return r;
}

/* ---------------------------------------------------------------------
 * Iteration, introspection, hooks
 * ------------------------------------------------------------------ */

int cg_iter_next(cg_gen *g, void **out) {
    cg_exc *e = NULL;
    void *v = NULL;
    cg_status st = cg_send(g, NULL, &v, &e);
    if (st == CG_RAISED) cg__unwind(e);
    if (out) *out = st == CG_YIELDED ? v : NULL;
    return st == CG_YIELDED;
}

cg_state cg_gen_state(const cg_gen *g) { return g ? (cg_state)g->state : CG_GEN_CLOSED; }
const char *cg_gen_name(const cg_gen *g) { return g && g->name ? g->name : "generator"; }
cg_gen *cg_gen_yieldfrom(const cg_gen *g) { return g ? g->yf : NULL; }
size_t cg_gen_stack_size(const cg_gen *g) { return g ? g->stack_size : 0; }
void *cg_gen_arg(const cg_gen *g) { return g ? g->arg : NULL; }
int cg_gen_compact(const cg_gen *g) { return g ? g->compact : 0; }
int cg_gen_fpenv(const cg_gen *g) { return g ? g->fpenv != 0 : 0; }
cg_guard cg_gen_guard(const cg_gen *g) {
    if (!g || !g->stack) return CG_GUARD_NONE;
    return g->canary ? CG_GUARD_CANARY : CG_GUARD_PAGE;
}

const cg__stack *cg__gen_stack(const cg_gen *g) { return g->stack; }

const char *cg_status_name(cg_status s) {
    switch (s) {
    case CG_YIELDED: return "CG_YIELDED";
    case CG_RETURNED: return "CG_RETURNED";
    case CG_RAISED: return "CG_RAISED";
    }
    return "?";
}

const char *cg_state_name(cg_state s) {
    switch (s) {
    case CG_GEN_CREATED: return "GEN_CREATED";
    case CG_GEN_SUSPENDED: return "GEN_SUSPENDED";
    case CG_GEN_RUNNING: return "GEN_RUNNING";
    case CG_GEN_CLOSED: return "GEN_CLOSED";
    }
    return "?";
}

static void default_unraisable(cg_exc *e, cg_gen *g, void *ud) {
    (void)ud;
    fprintf(stderr, "Exception ignored in: generator '%s'\n", cg_gen_name(g));
    cg_exc_print(e, stderr);
}

static cg_unraisable_hook unraisable_hook = default_unraisable;
static void *unraisable_ud;

void cg_set_unraisable_hook(cg_unraisable_hook hook, void *ud) {
    unraisable_hook = hook ? hook : default_unraisable;
    unraisable_ud = hook ? ud : NULL;
}

/* The hook runs inside a try: what it raises cannot escape cg_free halfway.
 * As Python does with an error in sys.unraisablehook, that exception goes
 * to the default hook (stderr) and the original one is dropped. */
static void unraisable(cg_exc *e, cg_gen *g) {
    cg_unraisable_hook hook = unraisable_hook;
    if (hook == default_unraisable) {
        default_unraisable(e, g, NULL);
        return;
    }
    void *ud = unraisable_ud;
    CG_TRY {
        hook(e, g, ud);
    } CG_EXCEPT(&cg_BaseException, err) {
        fprintf(stderr, "Exception ignored in the unraisable hook (freeing generator '%s'):\n", cg_gen_name(g));
        cg_exc_print(err, stderr);
    } CG_END;
}
