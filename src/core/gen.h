/* gen.h: the generator layer's own header, shared by its files:
 *   gen.c          the protocol: send, throw, close, yield, yield from
 *   gen_life.c     life cycle: new, free, the handle cache, finalization,
 *                  the unraisable hook, the overflow reporter, getters
 *   gen_compact.c  compact mode: stacks swapped out to exact-size buffers
 *   gen_xthread.c  frees from other threads, orphans, thread exit
 */
#ifndef COGEN_GEN_H
#define COGEN_GEN_H

#include "arch/fpenv.h"
#include "arch/switch.h"
#include "core/exc.h"
#include "core/gen_trace.h"
#include "core/stack.h"
#include "core/upcalls.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#if CG_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#if CG_TSAN
void *__tsan_create_fiber(unsigned flags);
void __tsan_destroy_fiber(void *fiber);
void __tsan_switch_to_fiber(void *fiber, unsigned flags);
#endif

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
 * src/arch/layout.h for their offsets (checked in gen_life.c). A handle is
 * 152 bytes (a 160-byte malloc chunk), and a million suspended generators
 * cost their handles too, so:
 *   - the byte fields fill what would be padding, the rare flags are bits
 *     beside the 24-bit count of delegators, and the stack size is kept in
 *     4 KiB units;
 *   - fields that are never live together share a word: the body function
 *     (needed until the body starts) and the inbox link (used once the
 *     handle is freed); a compact generator's slot in the ring of resident
 *     ones and its swap buffer;
 *   - the body's return value goes to the resumer through the last switch
 *     (cg__gen_return), not through the handle; the delegator that resumed
 *     a generator is its ctx.parent's generator (gen_up);
 *   - CG_OPT_FPENV's saved environment lives at the top of the generator's
 *     own stack (gen_fp);
 *   - the resumer, which only the sanitizers' switches read, and the
 *     sanitizer state exist in the sanitizer builds only. */
struct cg_gen {
    cg__ctx ctx;             /* the body's records; first, so that the
                                current context pointer is the generator */
    void *sp;                /* saved stack pointer while not running; NULL
                                for a fresh one whose first frame is not
                                written yet (first_frame() in gen_life.c) */
    void *ret_sp;            /* resumer's stack pointer while running */
    uintptr_t owner;         /* the owner word: see owner_word() below */
    cg_gen *yf;              /* generator this one delegates to, or NULL */
    unsigned char state;     /* cg_state */
    unsigned char ev;        /* EV_*: last thing the body posted */
    unsigned char in;        /* IN_*: how the body is being resumed */
    unsigned char catching;  /* suspended in cg_yield_catch */
    unsigned char in_inbox;  /* freed by another thread, waiting in home
                                (written by that thread: a byte of its own) */
    unsigned char fpenv;     /* GEN_FPENV, GEN_FPENV_SAVED, GEN_TRACED
                                (gen_trace.h): resumes take resume()'s
                                slow branch */
    unsigned char canary;    /* stack has a canary to check at each switch */
    unsigned char free_pending; /* cg_free arrived while running/delegated */
    /* (state to free_pending: one word, which cg_close's common case reads
     * at once: gen.c, close_bytes_plain) */
    unsigned yf_refs : 24;   /* generators delegating to this one (at most
                                YF_REFS_MAX: check_sub in gen.c) */
    unsigned yf_owned : 1;   /* yf was made by cg_yield_from_new */
    unsigned forwarding : 1; /* a throw or close is being forwarded to yf */
    unsigned compact : 1;    /* CG_OPT_COMPACT */
    unsigned resident : 1;   /* compact: in the resident ring */
    uint32_t stack_4k;       /* usable stack bytes / 4096 (as made, also
                                once closed): gen_stack_size() */
    cg_exc *exc;             /* exception crossing the switch (owned) */
    cg_exc **send_exc;       /* cg_send's exc while its fast path waits
                                (src/arch/x86_64-fast.S) */
    union {
        cg_fn fn;            /* the body, until it starts (and for
                                debuggers, while the handle is live) */
        cg_gen *inbox_next;  /* in_inbox: next in the owner's inbox. The
                                handle was freed, so the body never starts
                                (gen_xthread.c) */
    };
    void *arg;
    cg__stack *stack;        /* NULL once closed */
    const char *name;
    cg_gen *live_next;       /* owner thread's list of live generators; in
                                the thread's handle cache, the next spare
                                handle (spare_next() in gen_life.c) */
    cg_gen **live_prev;
    union {                  /* compact mode (gen_compact.c): never both */
        uintptr_t res_slot;  /* resident: its slot in the thread's ring of
                                resident generators */
        void *swap;          /* not resident: the stack's used bytes, the
                                swap_len() from sp up, or NULL before the
                                first run (the first frame is made then) */
    };
    struct cg__home *home;   /* the owner thread's inbox; never changes
                                but for an orphan that is adopted */
#if CG_ASAN || CG_TSAN
    cg__ctx *resumer;        /* context whose stack we return to: the
                                sanitizers' switches name its stack (the
                                assembly fast paths never kept it) */
    cg__san san;             /* sanitizer state of this stack */
#endif
};

/* How many generators may delegate to one at a time (yf_refs' width). */
#define YF_REFS_MAX ((1u << 24) - 1)

/* The delegator that resumed g, while g runs below the top of a chain
 * (gen.c): its exceptions chain to that delegator's (ctx.parent), set when
 * g joins the chain. */
static inline cg_gen *gen_up(const cg_gen *g) { return g->ctx.parent->gen; }

/* The usable size of g's stack, as made (kept once closed). Stack sizes
 * are whole pages, and pages are whole multiples of 4 KiB. */
static inline size_t gen_stack_size(const cg_gen *g) { return (size_t)g->stack_4k << 12; }
static inline void gen_set_stack_size(cg_gen *g, size_t size) { g->stack_4k = (uint32_t)(size >> 12); }

/* A compact generator that is not resident keeps its used stack bytes,
 * from sp to the top, in its swap buffer. */
static inline size_t swap_len(const cg_gen *g) { return (size_t)(g->stack->hi - (char *)g->sp); }

/* CG_OPT_FPENV: the body's saved floating-point environment sits in the
 * top bytes of its own stack, above its first frame (gen_top), where it
 * costs the handle nothing, and where compact mode's swap copy keeps it.
 * It is read and written by the resumer only while the generator is
 * suspended or just switched back, its stack resident. */
#define GEN_FP_RESERVE ((sizeof(cg__fpenv) + 15) & ~(size_t)15)
static inline cg__fpenv *gen_fp(const cg_gen *g) { return (cg__fpenv *)(void *)(g->stack->hi - GEN_FP_RESERVE); }
/* Where g's first frame goes (cg__frame_ready): below its saved
 * environment, if it keeps one. */
static inline char *gen_top(const cg_gen *g) {
    return g->stack->hi - ((g->fpenv & GEN_FPENV) ? GEN_FP_RESERVE : 0);
}

/* The generator layer's per-thread state. */
typedef struct cg__genthread {
    cg_gen *live;            /* generators this thread made and has not
                                freed, newest first (for debuggers:
                                tools/cogen-gdb.py walks it) */
    cg_gen *spare;           /* freed handles kept for reuse (gen_life.c) */
    unsigned nspare;
    cg_gen **res;            /* compact generators whose stack pages are
                                resident, oldest first, in a ring of res_cap
                                slots (a power of two) from res_first to
                                res_end (counting on: the slot is the count
                                modulo res_cap); NULL in the slot of one that
                                left (gen_compact.c). From malloc */
    unsigned res_cap, res_first, res_end;
    unsigned nres;           /* how many are in the ring */
    unsigned res_limit;      /* how many may be resident; 0: the default */
    struct cg__home *home;   /* where other threads send frees (gen_xthread.c) */
} cg__genthread;

extern __thread cg__genthread cg__gt __attribute__((tls_model("initial-exec"))) CG_HIDDEN;

#if CG_FASTPATH
/* The assembly provides cg_send, cg_next, cg_throw and cg_yield; these are
 * the C versions it falls back to. */
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
 * The owner word
 *
 * Which thread may resume g, read by the assembly fast paths as one
 * compare with the thread pointer, and by other threads (to be refused)
 * while the owner runs. Thread pointers are aligned, so the low bits are
 * free:
 *   bit 0 (OWNER_SWAPPED): a compact generator that is not resident; the
 *     fast paths' compare fails and the C path makes it resident first;
 *   ORPHAN in place of a thread pointer: its thread ended (gen_xthread.c);
 *   OWNER_FREED: a freed handle kept as a tombstone (gen_life.c).
 * Relaxed atomics: plain moves on x86-64 and AArch64.
 * ------------------------------------------------------------------ */

#define OWNER_SWAPPED ((uintptr_t)1)
#define ORPHAN ((uintptr_t)2)
/* A freed handle kept as a tombstone (COGEN_DEBUG_HANDLES, gen_life.c). */
#define OWNER_FREED ((uintptr_t)4)
/* The state of a freed handle, cached or a tombstone: never a cg_state. */
#define STATE_FREED 0xf0

static inline uintptr_t owner_word(const cg_gen *g) { return __atomic_load_n(&g->owner, __ATOMIC_RELAXED); }
static inline void set_owner(cg_gen *g, uintptr_t w) { __atomic_store_n(&g->owner, w, __ATOMIC_RELAXED); }
/* The owning thread (or ORPHAN), without the flag bits. */
static inline uintptr_t owner_of(const cg_gen *g) { return owner_word(g) & ~OWNER_SWAPPED; }
static inline int owner_swapped(const cg_gen *g) { return (owner_word(g) & OWNER_SWAPPED) != 0; }
static inline void set_swapped(cg_gen *g, int on) {
    set_owner(g, on ? owner_word(g) | OWNER_SWAPPED : owner_word(g) & ~OWNER_SWAPPED);
}

/* ---------------------------------------------------------------------
 * Switching, with the sanitizers told about it
 * ------------------------------------------------------------------ */

#if CG_ASAN || CG_TSAN
/* The sanitizer state of a context's stack. */
static inline cg__san *san_of(cg__ctx *c) { return c->gen ? &c->gen->san : &cg__t.main_san; }
#endif

CG_NORETURN CG_HIDDEN void cg__gen_canary_dead(cg_gen *g);

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

/* Body side, for the last time: the stack is abandoned. value goes to the
 * resumer as a yield's does (the body's return value). */
CG_NORETURN static inline void switch_final(cg_gen *g, void *value) {
    if (g->canary && !cg__canary_ok(g->stack)) cg__gen_canary_dead(g);
    CG_CHECK(g->ctx.chain == NULL, "generator ended with exception records on its stack");
#if CG_ASAN
    __sanitizer_start_switch_fiber(NULL, san_of(g->resumer)->asan_bottom, san_of(g->resumer)->asan_size);
#endif
#if CG_TSAN
    __tsan_switch_to_fiber(san_of(g->resumer)->tsan_fiber, 0);
#endif
    cg__switch(&g->sp, g->ret_sp, value);
    cg__fatal(__FILE__, __LINE__, "a finished generator was resumed");
}

/* Body side, after the resumer switched here. */
static inline void arrived(cg_gen *g) {
#if CG_ASAN
    cg__san *r = san_of(g->resumer);
    __sanitizer_finish_switch_fiber(g->san.asan_fake, &r->asan_bottom, &r->asan_size);
    if (CG_UNLIKELY(g->in == IN_DIE)) switch_final(g, NULL);
#else
    (void)g;
#endif
}

/* Body side: post an event, wait to be resumed. */
static inline void *switch_out(cg_gen *g, void *value) {
    if (CG_UNLIKELY(g->canary) && !cg__canary_ok(g->stack)) cg__gen_canary_dead(g);
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

/* ---------------------------------------------------------------------
 * Compact mode (gen_compact.c)
 * ------------------------------------------------------------------ */

#define COMPACT_STACK CG_STACK_COMPACT_DEFAULT

/* Whether generators are compact unless told otherwise: COGEN_COMPACT=N
 * in the environment, read once (-1 until then). */
extern CG_HIDDEN int cg__compact_env;
CG_HIDDEN int cg__compact_env_read(void);
static inline int cg__compact_default(void) {
    int c = __atomic_load_n(&cg__compact_env, __ATOMIC_RELAXED);
    return CG_LIKELY(c >= 0) ? c : cg__compact_env_read();
}
/* Puts a new compact generator's first frame in its swap buffer, leaving
 * the stack's pages untouched until it first runs. 0: no memory. */
CG_HIDDEN int cg__compact_init(cg_gen *g);
/* Before a compact generator runs, or its records are read. */
CG_HIDDEN void cg__compact_make_resident(cg_gen *g);
/* Copies a swapped-out generator's frames back (records about to be read
 * by a discard; it will not run again). */
CG_HIDDEN void cg__compact_swap_in(cg_gen *g);
/* The stack goes: the generator leaves the resident ring and its buffer. */
CG_HIDDEN void cg__compact_release(cg_gen *g);

/* What ev rests at while g is suspended (see EV_YIELD_SLOW). */
static inline unsigned char resting(const cg_gen *g) {
    return (g->canary || g->free_pending || g->fpenv) ? EV_YIELD_SLOW : EV_YIELD;
}

/* Before the resumer switches into n: ev back to its resting value (a
 * delegator keeps EV_DELEGATE until then, so that the assembly cg_send,
 * which sends only to a generator whose ev is 0, never sends to it); and a
 * body parked in the assembly cg_yield, about to get an exception, is
 * made to raise it there (src/arch/x86_64-fast.S). */
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
CG_HIDDEN void *cg__switch_in_fpenv(cg_gen *g, cg__ctx *from, void *value);
/* switch_in for a generator whose fpenv byte is not 0: the above, and the
 * trace recorder's record of the resume (gen_trace.c). */
CG_HIDDEN void *cg__switch_in_slow(cg_gen *g, cg__ctx *from, void *value);

/* Resumer side: resume n once with (in, value, e). */
static inline void *resume(cg_gen *n, cg__ctx *caller, unsigned in, void *value, cg_exc *e) {
    if (CG_UNLIKELY(owner_word(n) & OWNER_SWAPPED)) cg__compact_make_resident(n);
#if CG_FASTPATH
    /* A fresh generator from cg_new's common case has no first frame yet
     * (gen_life.c, first_frame): the assembly writes none, C writes it. */
    if (CG_UNLIKELY(!n->sp)) n->sp = cg__frame_ready(n->stack->lo, gen_top(n), n);
#endif
    n->in = (unsigned char)in;
    n->exc = e;
#if CG_ASAN || CG_TSAN
    n->resumer = caller;
#endif
    cg__t.cur = &n->ctx;
    before_resume(n, in);
    void *r = CG_UNLIKELY(n->fpenv) ? cg__switch_in_slow(n, caller, value) : switch_in(n, caller, value);
    cg__t.cur = caller;
    return r;
}

/* ---------------------------------------------------------------------
 * Frees from other threads (gen_xthread.c)
 * ------------------------------------------------------------------ */

/* Where other threads send the generators of one thread that they free.
 * It lives on the heap so that it outlives its thread while orphans point
 * to it. */
typedef struct cg__home {
    pthread_mutex_t lock;
    _Atomic(cg_gen *) inbox; /* changed under lock; read without it as a hint */
    int alive;      /* its thread has not ended */
    long orphans;   /* generators still alive when it ended */
} cg__home;

/* The thread's inbox, made on first use; NULL without memory. */
CG_HIDDEN struct cg__home *cg__home_get(void);
/* Finalizes what other threads freed, if anything. */
CG_HIDDEN void cg__gen_drain(void);
static inline void drain_if_any(void) {
    cg__home *h = cg__gt.home;
    if (h && atomic_load_explicit(&h->inbox, memory_order_relaxed)) cg__gen_drain();
}
/* cg_free from a thread that is not g's owner: 1 if g went to its owner's
 * inbox, 0 if it was an orphan that this thread has adopted (and must now
 * free itself). */
CG_HIDDEN int cg__free_remote(cg_gen *g);
/* The thread is ending (a thread hook, run before the stack pool goes). */
CG_HIDDEN void cg__gen_thread_exit(void);

/* ---------------------------------------------------------------------
 * Between the protocol (gen.c) and the life cycle (gen_life.c)
 * ------------------------------------------------------------------ */

/* What a caller-side operation produced, before it is written back to the
 * caller's out and exc (res_deliver). */
typedef struct cg__res {
    cg_status status;
    void *value;   /* yielded or returned value; NULL when raised */
    cg_exc *exc;   /* owned; only when raised */
} cg__res;

static inline cg__res res_yielded(void *v) { return (cg__res){CG_YIELDED, v, NULL}; }
static inline cg__res res_returned(void *v) { return (cg__res){CG_RETURNED, v, NULL}; }
static inline cg__res res_raised(cg_exc *e) { return (cg__res){CG_RAISED, NULL, e}; }

/* Hands r to the caller: out and exc may each be NULL (then an exception
 * is dropped). */
static inline cg_status res_deliver(cg__res r, void **out, cg_exc **exc) {
    if (out) *out = r.value;
    if (exc)
        *exc = r.exc;
    else
        cg_exc_unref(r.exc);
    return r.status;
}

/* close() of a generator that may be suspended (gen.c). */
CG_HIDDEN cg__res cg__gen_close(cg_gen *g);
/* Ends g's delegation to g->yf (gen.c). */
CG_HIDDEN void cg__gen_end_delegation(cg_gen *g);
CG_HIDDEN void cg__gen_release_stack_slow(cg_gen *g);

/* The last step of cg__gen_release_stack_hot, for a caller that knows g
 * has a stack and neither a canary nor compact mode: 1 if the stack went
 * to the hot slot (never under ASan) and g is closed, 0 otherwise. */
static inline int cg__gen_stack_to_hot(cg_gen *g) {
    if (!cg__stack_put_hot(g->stack)) return 0;
    g->stack = NULL;
    g->state = CG_GEN_CLOSED;
    return 1;
}

/* The common case of cg__gen_release_stack, with no call (so that the
 * fast paths of cg_close and cg_free set up no frame): 1 if g's stack went
 * to the hot slot and g is closed, 0 (and nothing done) otherwise. Never
 * under ASan, where an abandoned body is resumed once more first
 * (cg__gen_abandon). */
static inline int cg__gen_release_stack_hot(cg_gen *g) {
#if CG_ASAN
    (void)g;
    return 0;
#else
    if (CG_UNLIKELY(!g->stack || g->canary || g->compact)) return 0;
    return cg__gen_stack_to_hot(g);
#endif
}

/* The body will never run again: give its stack back. */
static inline void cg__gen_release_stack(cg_gen *g) {
    if (!cg__gen_release_stack_hot(g)) cg__gen_release_stack_slow(g);
}

/* Gives back the stack of a suspended body that will not run to its end.
 * Under ASan with detect_stack_use_after_return, the body's frames live on
 * a fake stack that ASan frees only when the fiber makes its last switch:
 * the body is resumed once more just to make it (arrived(), IN_DIE). */
static inline void cg__gen_abandon(cg_gen *g) {
#if CG_ASAN
    resume(g, cg__t.cur, IN_DIE, NULL, NULL);
#endif
    cg__gen_release_stack(g);
}

/* cg_free without its checks: a running or delegated-to generator is
 * freed once it stops being so (frees from other threads, subgenerators
 * dropped at the end of a delegation). */
CG_HIDDEN void cg__gen_free(cg_gen *g);
/* A freed handle was used: a fatal error naming op. */
CG_NORETURN CG_HIDDEN void cg__gen_freed_use(const cg_gen *g, const char *op);

/* Frees g if a cg_free was waiting for it to stop running or being
 * delegated to. */
static inline void settle(cg_gen *g) {
    if (CG_UNLIKELY(g->free_pending) && g->state != CG_GEN_RUNNING && !g->yf_refs) cg__gen_free(g);
}

#endif
