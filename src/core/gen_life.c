/* gen_life.c: a generator's life cycle: creation, the per-thread handle
 * cache, freeing and finalization, the unraisable hook, the overflow
 * reporter, and the getters. The protocol itself is in gen.c. */
#define _GNU_SOURCE
#include "core/gen.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__thread cg__genthread cg__gt __attribute__((tls_model("initial-exec")));

#include "arch/layout.h"
_Static_assert(offsetof(cg_gen, ctx.parent) == CG_G_PARENT, "layout.h");
_Static_assert(offsetof(cg_gen, sp) == CG_G_SP, "layout.h");
_Static_assert(offsetof(cg_gen, ret_sp) == CG_G_RETSP, "layout.h");
_Static_assert(offsetof(cg_gen, owner) == CG_G_OWNER, "layout.h");
_Static_assert(offsetof(cg_gen, yf) == CG_G_YF, "layout.h");
_Static_assert(offsetof(cg_gen, state) == CG_G_STATE, "layout.h");
_Static_assert(offsetof(cg_gen, ev) == CG_G_EV, "layout.h");
_Static_assert(offsetof(cg_gen, in) == CG_G_IN, "layout.h");
_Static_assert(offsetof(cg_gen, exc) == CG_G_EXC, "layout.h");
_Static_assert(offsetof(cg_gen, send_exc) == CG_G_SEND_EXC, "layout.h");
_Static_assert(offsetof(cg_gen, stack) == CG_G_STACK, "layout.h");
_Static_assert(offsetof(cg__stack, hi) == CG_STACK_HI, "layout.h");
_Static_assert(IN_THROW == CG_IN_THROW, "layout.h");
#if defined(__x86_64__) && !CG_ASAN && !CG_TSAN
_Static_assert(sizeof(cg_gen) <= 152, "a generator handle grew: memory per generator is a target");
#endif
_Static_assert(offsetof(cg__thread, cur) == CG_T_CUR, "layout.h");
#if CG_FASTPATH
_Static_assert(CG_GEN_CREATED == CG_STATE_CREATED && CG_GEN_SUSPENDED == CG_STATE_SUSPENDED &&
                   CG_GEN_RUNNING == CG_STATE_RUNNING,
               "layout.h");
#endif

static void unraisable(cg_exc *e, cg_gen *g);

/* ---------------------------------------------------------------------
 * The two upcalls (src/core/upcalls.h)
 * ------------------------------------------------------------------ */

cg__body cg__gen_start(cg_gen *g) {
    arrived(g);
    /* A throw or close never starts a body: the first resume is a send. */
    return (cg__body){g->fn, g->arg};
}

void cg__gen_return(cg_gen *g, void *value) {
    g->ev = EV_RETURN;
    switch_final(g, value);
}

void cg__gen_finish(cg_gen *g, cg_exc *e) {
    g->exc = e;
    g->ev = EV_RAISE;
    switch_final(g, NULL);
}

void *cg__switch_in_fpenv(cg_gen *g, cg__ctx *from, void *value) {
    cg__fpenv mine;
    cg__fpenv_get(&mine);
    cg__fpenv *fp = gen_fp(g);
    if ((g->fpenv & GEN_FPENV_SAVED) && !cg__fpenv_eq(fp, &mine)) cg__fpenv_set(fp);
    void *r = switch_in(g, from, value);
    cg__fpenv_get(fp);
    g->fpenv |= GEN_FPENV_SAVED;
    if (!cg__fpenv_eq(fp, &mine)) cg__fpenv_set(&mine);
    return r;
}

void cg__gen_canary_dead(cg_gen *g) {
    fprintf(stderr, "cogen: stack overflow in generator '%s' (stack size %zu bytes, no guard page: canary overwritten)\n",
            cg_gen_name(g), gen_stack_size(g));
    fflush(stderr);
    abort();
}

/* ---------------------------------------------------------------------
 * The handle cache, and freed handles
 *
 * Handles are recycled per thread: malloc and free cost more than all the
 * rest of a generator's life cycle. A spare handle is linked through its
 * `live_next` field (it is on no live list while it is spare), and its state is
 * STATE_FREED, so that a second cg_free of it (before cg_new reuses it) or
 * a resume is reported instead of corrupting the list.
 *
 * A handle goes back to the cache only once its generator is closed and
 * let go of, which leaves most fields at the values a new generator
 * starts with (see recycled_ok): cg_new sets only the others.
 *
 * With COGEN_DEBUG_HANDLES=1 in the environment (or the build option of
 * that name), freed handles are never reused: each stays allocated as a
 * tombstone (STATE_FREED, OWNER_FREED), poisoned for AddressSanitizer, so
 * that any later use of the stale pointer is reported at once.
 * ------------------------------------------------------------------ */

#define SPARE_MAX 64

#ifndef CG_DEBUG_HANDLES
#define CG_DEBUG_HANDLES 0
#endif

static inline cg_gen *spare_next(const cg_gen *g) { return g->live_next; }
static inline void set_spare_next(cg_gen *g, cg_gen *next) { g->live_next = next; }

static int debug_handles = -1; /* -1: not read yet */

CG_COLD static int debug_handles_read(void) {
    const char *e = getenv("COGEN_DEBUG_HANDLES");
    int on = e && *e ? strcmp(e, "0") != 0 : CG_DEBUG_HANDLES;
    __atomic_store_n(&debug_handles, on, __ATOMIC_RELAXED);
    return on;
}

static inline int debugging_handles(void) {
    int d = __atomic_load_n(&debug_handles, __ATOMIC_RELAXED);
    return CG_LIKELY(d >= 0) ? d : debug_handles_read();
}

void cg__gen_freed_use(const cg_gen *g, const char *op) {
    char msg[160];
    snprintf(msg, sizeof msg, "%s() of generator %p, which was freed (a stale handle; cg_free is final)", op,
             (const void *)g);
    cg__fatal(__FILE__, __LINE__, msg);
}

#if CG_ASAN || CG_TSAN
/* The fields a closed generator leaves as a new one needs them. Checked in
 * the sanitizer builds, where make check runs every test. */
static inline int recycled_ok(const cg_gen *g) {
    return !g->ctx.chain && g->ctx.gen == g && !g->yf && !g->yf_refs && !g->exc && !g->swap && !g->resident &&
           !g->in_inbox && !g->stack;
}
#endif

/* A handle: from the cache (*fresh = 0), else new (*fresh = 1). */
static inline cg_gen *gen_alloc(int *fresh) {
    cg__cache_check();
    cg_gen *g = cg__gt.spare;
    if (CG_LIKELY(g)) {
        cg__gt.spare = spare_next(g);
        cg__gt.nspare--;
        *fresh = 0;
#if CG_ASAN || CG_TSAN
        CG_CHECK(g->state == STATE_FREED && recycled_ok(g), "a cached generator handle was changed after cg_free");
#endif
        return g;
    }
    *fresh = 1;
    return cg__alloc(sizeof *g);
}

/* A tombstone (COGEN_DEBUG_HANDLES): never reused. */
CG_COLD static void entomb(cg_gen *g) {
    set_owner(g, OWNER_FREED);
#if CG_ASAN
    ASAN_POISON_MEMORY_REGION(g, sizeof *g);
#endif
}

/* Whether a freed handle goes to the cache (the thread's state exists). */
static inline int spare_takes(void) { return cg__gt.nspare < SPARE_MAX && cg__t.cur; }

static inline void spare_push(cg_gen *g) {
    g->state = STATE_FREED;
    set_spare_next(g, cg__gt.spare);
    cg__gt.spare = g;
    cg__gt.nspare++;
}

static inline void gen_release(cg_gen *g) {
    g->state = STATE_FREED;
    if (CG_UNLIKELY(debugging_handles())) {
        entomb(g);
        return;
    }
    cg__cache_check();
    if (CG_UNLIKELY(!spare_takes())) {
        cg__dealloc(g);
        return;
    }
    spare_push(g);
}

static void flush_spares(void) {
    for (cg_gen *g = cg__gt.spare, *next; g; g = next) {
        next = spare_next(g);
        cg__cache_free(g);
    }
    cg__gt.spare = NULL;
    cg__gt.nspare = 0;
}

/* What the generator layer gives back per thread (src/core/thread.h):
 * before the stack pool goes, the generators other threads freed are
 * finalized and the rest orphaned. */
static cg__thread_hooks hooks = {
    .order = CG__HOOKS_GEN, .exit = cg__gen_thread_exit, .trim = cg__gen_drain, .flush = flush_spares};
__attribute__((constructor)) static void register_hooks(void) { cg__thread_hooks_add(&hooks); }

/* ---------------------------------------------------------------------
 * Overflow reports
 *
 * A fault in the guard page below the running generator's stack is
 * reported with its name and stack size, from a SIGSEGV handler that runs
 * on the alternate signal stack each thread's stack pool sets up; then the
 * signal does what it does by default. Any other fault goes to the handler
 * that was there before.
 * ------------------------------------------------------------------ */

static struct sigaction old_segv, old_bus;

static size_t fmt_u(char *buf, size_t v) {
    char tmp[24];
    size_t n = 0, i = 0;
    do tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n) buf[i++] = tmp[--n];
    return i;
}

static void say(const char *s, size_t n) {
    while (n) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void on_fault(int sig, siginfo_t *si, void *uctx) {
    cg__ctx *c = cg__t.cur;
    if (c && c->gen) {
        const cg__stack *s = c->gen->stack;
        if (s && cg__stack_guard_hit(s, si->si_addr)) {
            char msg[512];
            size_t n = 0;
            const char *name = cg_gen_name(c->gen);
            static const char a1[] = "cogen: stack overflow in generator '";
            static const char a2[] = "' (stack size ";
            static const char a3[] = " bytes)\n";
            memcpy(msg, a1, sizeof a1 - 1);
            n += sizeof a1 - 1;
            for (size_t i = 0; name[i] && n < 400; i++) msg[n++] = name[i];
            memcpy(msg + n, a2, sizeof a2 - 1);
            n += sizeof a2 - 1;
            n += fmt_u(msg + n, (size_t)(s->hi - s->lo));
            memcpy(msg + n, a3, sizeof a3 - 1);
            n += sizeof a3 - 1;
            say(msg, n);
            /* Let the signal do what it does by default: returning re-runs
             * the faulting instruction, which now kills the process. */
            signal(sig, SIG_DFL);
            return;
        }
    }
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if (old->sa_flags & SA_SIGINFO) {
        if (old->sa_sigaction) {
            old->sa_sigaction(sig, si, uctx);
            return;
        }
    } else if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    signal(sig, SIG_DFL);
}

static void overflow_report_init(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &old_segv);
    sigaction(SIGBUS, &sa, &old_bus);
}

static pthread_once_t report_once = PTHREAD_ONCE_INIT;

/* A thread's first generator: the process's overflow reporter, and the
 * thread's inbox. */
CG_COLD static struct cg__home *first_use(void) {
    pthread_once(&report_once, overflow_report_init);
    return cg__home_get();
}

/* ---------------------------------------------------------------------
 * Creating and freeing
 * ------------------------------------------------------------------ */

/* A new generator joins the thread's list of live generators (which
 * debuggers and thread exit walk); under TSan it gets a fiber of its own:
 * one kept with its stack would keep the shadow frames of every generator
 * that ended on that stack. */
static inline void live_link(cg_gen *g) {
#if CG_TSAN
    g->san.tsan_fiber = __tsan_create_fiber(0);
#endif
    g->live_next = cg__gt.live;
    g->live_prev = &cg__gt.live;
    if (g->live_next) g->live_next->live_prev = &g->live_next;
    cg__gt.live = g;
}

/* Off the thread's list of live generators (an orphan is on none). */
static inline void live_unlink(cg_gen *g) {
    if (g->live_prev) {
        *g->live_prev = g->live_next;
        if (g->live_next) g->live_next->live_prev = g->live_prev;
    }
    g->live_prev = NULL;
}

CG_NOINLINE static cg_gen *new_slow(cg_fn fn, void *arg, const cg_opts *opts) {
    static const cg_opts defaults = {0, NULL, 0};
    if (!opts) opts = &defaults;
#if CG_UCONTEXT
    unsigned char compact = 0; /* a ucontext_t is not relocatable: no copies */
#else
    unsigned char compact = (opts->flags & CG_OPT_COMPACT) || cg__compact_default() > 0;
#endif
    size_t size = opts->stack_size ? opts->stack_size : compact ? COMPACT_STACK : CG_STACK_DEFAULT;
    if (!fn || size > ((size_t)1 << 40)) {
        errno = EINVAL;
        return NULL;
    }
    if (size < CG_STACK_MIN) size = CG_STACK_MIN;
    cg__cur();
    drain_if_any();
    struct cg__home *home = cg__gt.home;
    if (CG_UNLIKELY(!home)) home = first_use();
    int fresh = 0;
    cg_gen *g = home ? gen_alloc(&fresh) : NULL;
    if (!g) {
        errno = ENOMEM;
        return NULL;
    }
    if (CG_UNLIKELY(fresh)) {
        /* Once per handle: what a closed generator leaves as it is. */
        memset(g, 0, sizeof *g);
        g->ctx.gen = g;
    }
    cg__stack *st = cg__stack_get(size, opts->flags);
    if (!st) {
        int err = errno;
        gen_release(g);
        errno = err;
        return NULL;
    }
    unsigned char canary = st->kind == CG_GUARD_CANARY;
    /* Field by field, and only those a closed generator does not leave as
     * they should be (recycled_ok): zeroing the whole struct compiles to
     * `rep stos`, which costs more than the rest of cg_new. */
#if CG_ASAN || CG_TSAN
    memset(&g->san, 0, sizeof g->san);
#endif
    g->ctx.parent = NULL;
    g->owner = cg__self();
    g->state = CG_GEN_CREATED;
    g->in = IN_SEND;
    g->canary = canary;
    g->catching = 0;
    g->yf_owned = 0;
    g->free_pending = 0;
    g->forwarding = 0;
    g->fpenv = (unsigned char)(((opts->flags & CG_OPT_FPENV) ? GEN_FPENV : 0) | (cg__tracing() ? GEN_TRACED : 0));
    g->ev = resting(g);
    g->fn = fn;
    g->arg = arg;
    g->stack = st;
    g->name = opts->name;
    gen_set_stack_size(g, (size_t)(st->hi - st->lo));
    g->compact = compact;
    g->home = home;
    if (!compact) {
        g->sp = cg__frame_ready(st->lo, gen_top(g), g);
    } else if (!cg__compact_init(g)) {
        cg__stack_put(st);
        g->stack = NULL;
        gen_release(g);
        errno = ENOMEM;
        return NULL;
    }
    live_link(g);
    return g;
}

void cg__gen_release_stack_slow(cg_gen *g) {
    if (g->stack) {
        if (g->canary && !cg__canary_ok(g->stack)) cg__gen_canary_dead(g);
        if (CG_UNLIKELY(g->compact)) cg__compact_release(g);
        cg__stack_put(g->stack);
        g->stack = NULL;
    }
    g->state = CG_GEN_CLOSED;
}

/* Throws away a suspended body without unwinding it (it refused to close,
 * or its thread cannot run it). */
static void discard(cg_gen *g) {
    cg__compact_swap_in(g); /* its records are read below */
    cg__drop_chain(&g->ctx);
    if (g->yf) {
        cg_gen *sub = g->yf;
        int owned = g->yf_owned;
        cg__gen_end_delegation(g);
        if (owned) cg__gen_free(sub);
    }
    cg_exc_unref(g->exc);
    g->exc = NULL;
    cg__gen_abandon(g);
}

/* The saved stack pointer a new generator starts with. With the assembly
 * fast paths, none: the first frame is written by the first resume, and
 * the fast one (x86_64-fast.S, cg__send_start) writes none at all but jumps
 * straight into the body's entry (the C one: resume() in gen.h). Cheaper
 * than writing a frame into the stack here only to load it back there. */
static inline void *first_frame(cg__stack *st, cg_gen *g) {
#if CG_FASTPATH
    (void)st;
    (void)g;
    return NULL;
#else
    return cg__frame_ready(st->lo, st->hi, g);
#endif
}

/* What the whole process says about cg_new's common case, tested at once
 * (one branch): compact mode is off (COGEN_COMPACT read, and 0), no trace
 * is being recorded, the allocator is the one the caches hold memory of. */
static inline int new_plain_mode(void) {
    unsigned c = (unsigned)__atomic_load_n(&cg__compact_env, __ATOMIC_RELAXED);
    unsigned t = (unsigned)__atomic_load_n(&cg__trace_on, __ATOMIC_RELAXED);
    return (c | t | (cg__t.cache_gen ^ cg__alloc_generation())) == 0;
}

/* The common case of cg_new: a thread that has made generators before,
 * with a spare handle and the stack its last generator gave back (of the
 * size asked for), no compact mode, no trace being recorded, nothing in
 * its inbox. new_slow does the same and everything else. */
cg_gen *cg_new(cg_fn fn, void *arg, const cg_opts *opts) {
    size_t size = CG_STACK_DEFAULT;
    const char *name = NULL;
    if (opts) {
        if (opts->flags & ~(unsigned)CG_OPT_REQUIRE_GUARD) return new_slow(fn, arg, opts);
        if (opts->stack_size) size = opts->stack_size;
        name = opts->name;
    }
    cg_gen *g = cg__gt.spare;
    cg__stack *st = atomic_load_explicit(&cg__stack_hot, memory_order_relaxed);
    cg__home *home = cg__gt.home;
    /* home implies the thread's state (cg__t.cur): a thread's home is made
     * after it, and dropped before it at thread exit (gen_xthread.c). */
    if (CG_UNLIKELY(!fn || !g || !st || (size_t)(st->hi - st->lo) != size || !home ||
                    atomic_load_explicit(&home->inbox, memory_order_relaxed) || !new_plain_mode()))
        return new_slow(fn, arg, opts);
    cg__gt.spare = spare_next(g);
    cg__gt.nspare--;
    atomic_store_explicit(&cg__stack_hot, NULL, memory_order_relaxed);
#if CG_ASAN || CG_TSAN
    CG_CHECK(g->state == STATE_FREED && recycled_ok(g), "a cached generator handle was changed after cg_free");
    memset(&g->san, 0, sizeof g->san);
#endif
    /* The hot stack has a guard page: no canary. */
    g->owner = cg__self();
    g->state = CG_GEN_CREATED;
    g->ev = EV_YIELD;
    g->in = IN_SEND;
    g->canary = 0;
    g->catching = 0;
    g->yf_owned = 0;
    g->free_pending = 0;
    g->forwarding = 0;
    g->fpenv = 0;
    g->fn = fn;
    g->arg = arg;
    g->stack = st;
    g->name = name;
    gen_set_stack_size(g, size);
    g->compact = 0;
    g->home = home;
    g->sp = first_frame(st, g);
    live_link(g);
    return g;
}

void cg__gen_free(cg_gen *g) {
    if (CG_UNLIKELY(g->home != cg__gt.home) && cg__free_remote(g)) return;
    drain_if_any();
    if (g->state == CG_GEN_RUNNING || g->yf_refs) {
        g->free_pending = 1; /* as a Python frame holding a reference would */
        if (g->ev == EV_YIELD) g->ev = EV_YIELD_SLOW;
        return;
    }
    if (g->state == CG_GEN_SUSPENDED) {
        cg__res r = cg__gen_close(g);
        if (r.status == CG_RAISED) {
            unraisable(r.exc, g);
            cg_exc_unref(r.exc);
        }
        if (g->state != CG_GEN_CLOSED) discard(g);
    } else {
        cg__gen_release_stack(g);
    }
#if CG_TSAN
    __tsan_destroy_fiber(g->san.tsan_fiber);
#endif
    live_unlink(g);
    gen_release(g);
}

CG_NOINLINE static void free_checked(cg_gen *g) {
    /* The owner first: from another thread, the state is changing. */
    uintptr_t owner = owner_of(g);
    if (owner == cg__self()) {
        if (CG_UNLIKELY(g->state == STATE_FREED)) cg__gen_freed_use(g, "cg_free");
        /* A running generator cannot go: its resumer waits for it and
         * would be handed the result of a generator that no longer
         * exists. (Python cannot drop a running generator either: its
         * frame holds a reference.) */
        if (CG_UNLIKELY(g->state == CG_GEN_RUNNING))
            CG_RAISE(&cg_RuntimeError, "cg_free() of a running generator (free it once it has yielded or returned)");
    } else if (CG_UNLIKELY(owner == OWNER_FREED)) {
        cg__gen_freed_use(g, "cg_free");
    }
    cg__gen_free(g);
}

void cg_free(cg_gen *g) {
    if (!g) return;
    /* The common case: a closed generator of this thread, with nothing to
     * finalize (what cg__gen_free does last). The owner first: from
     * another thread, the state is changing. */
    cg__home *h = cg__gt.home;
    /* spare_takes() with a home: then the thread's state exists (cg_new). */
    if (CG_LIKELY(owner_word(g) == cg__self() && g->state == CG_GEN_CLOSED && !g->yf_refs && h &&
                  !atomic_load_explicit(&h->inbox, memory_order_relaxed) && cg__gt.nspare < SPARE_MAX &&
                  ((unsigned)__atomic_load_n(&debug_handles, __ATOMIC_RELAXED) |
                   (cg__t.cache_gen ^ cg__alloc_generation())) == 0)) {
        /* What cg__gen_free does then, with no call on the way (and so no
         * frame to set up): nothing to drain, a handle for the cache. */
#if CG_TSAN
        __tsan_destroy_fiber(g->san.tsan_fiber);
#endif
        live_unlink(g);
        spare_push(g);
        return;
    }
    free_checked(g);
}

/* ---------------------------------------------------------------------
 * Introspection, hooks
 * ------------------------------------------------------------------ */

cg_gen *cg_current(void) { return cg__t.cur ? cg__t.cur->gen : NULL; }

/* A getter's handle: NULL reads as an absent generator; a freed one is
 * reported. */
static inline const cg_gen *live(const cg_gen *g, const char *op) {
    if (g && CG_UNLIKELY(g->state == STATE_FREED)) cg__gen_freed_use(g, op);
    return g;
}

cg_state cg_gen_state(const cg_gen *g) { return live(g, "cg_gen_state") ? (cg_state)g->state : CG_GEN_CLOSED; }
const char *cg_gen_name(const cg_gen *g) { return live(g, "cg_gen_name") && g->name ? g->name : "generator"; }
cg_gen *cg_gen_yieldfrom(const cg_gen *g) { return live(g, "cg_gen_yieldfrom") ? g->yf : NULL; }
size_t cg_gen_stack_size(const cg_gen *g) { return live(g, "cg_gen_stack_size") ? gen_stack_size(g) : 0; }
void *cg_gen_arg(const cg_gen *g) { return live(g, "cg_gen_arg") ? g->arg : NULL; }
int cg_gen_compact(const cg_gen *g) { return live(g, "cg_gen_compact") ? g->compact : 0; }
int cg_gen_fpenv(const cg_gen *g) { return live(g, "cg_gen_fpenv") ? (g->fpenv & GEN_FPENV) != 0 : 0; }
cg_guard cg_gen_guard(const cg_gen *g) {
    if (!live(g, "cg_gen_guard") || !g->stack) return CG_GUARD_NONE;
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
