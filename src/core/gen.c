/* gen.c: the generator protocol (send, throw, close, yield, yield from),
 * following CPython 3.11's Objects/genobject.c rule by rule.
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
#include "core/gen.h"
#include "core/gen_hint.h"

#include <errno.h>
#include <string.h>

/* ---------------------------------------------------------------------
 * Driving
 * ------------------------------------------------------------------ */

/* PEP 479: a StopIteration leaving a generator becomes RuntimeError. */
static cg_exc *pep479(cg_exc *e) {
    if (!cg_exc_is(e, &cg_StopIteration)) return e;
    cg_exc *rt = cg_exc_new(&cg_RuntimeError, "generator raised StopIteration");
    cg_exc_set_cause(rt, e);
    cg_exc_unref(e);
    return rt;
}

void cg__gen_end_delegation(cg_gen *g) {
    cg_gen *sub = g->yf;
    g->yf = NULL;
    sub->yf_refs--;
    settle(sub);
}

static void suspend_chain(cg_gen *node, cg_gen *top) {
    for (cg_gen *n = node;; n = gen_up(n)) {
        n->state = CG_GEN_SUSPENDED;
        if (n == top) break;
    }
}

/* How the next resume of a chain's node goes: the mode, and the value or
 * exception it delivers. */
typedef struct delivery {
    unsigned in;
    void *val;
    cg_exc *e;
} delivery;

/* A send goes down the delegation chain to the innermost generator, which
 * is the one to resume; on the way every generator becomes RUNNING. A
 * subgenerator that cannot take the send ends its delegator's delegation
 * there, as CPython's SEND does: a running one raises ValueError in the
 * delegator, a closed one makes the yield from evaluate to None. */
static cg_gen *descend(cg_gen *node, delivery *d) {
    while (node->yf) {
        cg_gen *sub = node->yf;
        /* The generators above the one that runs are not switched to, but
         * their exception records are read: a compact one must be back. */
        if (CG_UNLIKELY(owner_swapped(node))) cg__compact_make_resident(node);
        if (sub->state == CG_GEN_RUNNING) {
            cg__gen_end_delegation(node);
            *d = (delivery){IN_RAISE, NULL, cg_exc_new(&cg_ValueError, "generator already executing")};
            break;
        }
        if (sub->state == CG_GEN_CLOSED) {
            cg__gen_end_delegation(node);
            d->val = NULL;
            break;
        }
        sub->ctx.parent = &node->ctx; /* its exceptions chain to node's (gen_up) */
        sub->state = CG_GEN_RUNNING;
        node = sub;
    }
    return node;
}

/* Where node's exception context continues while it runs in this
 * operation: the resumer's context for the top of the chain, else its
 * delegator's. Set for every generator of the chain before it can run, so
 * that no stale pointer (to a generator since freed) is ever followed: the
 * top's here, the others' as they join the chain in this operation
 * (descend, EV_DELEGATE), which is also how gen_up finds their delegator. */
static inline void set_parent(cg_gen *node, cg_gen *top, cg__ctx *caller) {
    if (node == top) node->ctx.parent = caller;
}

/* Resumes node (top, or below it with the generators above RUNNING) and
 * goes on resuming the chain under top until top yields or finishes. */
static cg__res run_from(cg_gen *top, cg_gen *node, delivery d, int resumed, void *r) {
    cg__ctx *caller = cg__t.cur;
    for (;;) {
        if (!resumed) {
            set_parent(node, top, caller);
            if (d.in == IN_SEND && node->yf) node = descend(node, &d);
            r = resume(node, caller, d.in, d.val, d.e);
        }
        resumed = 0;
        /* node has just posted an event, r being the value it passed. */
        if (node->ev == EV_YIELD || node->ev == EV_YIELD_SLOW) {
            if (node->canary && !cg__canary_ok(node->stack)) cg__gen_canary_dead(node);
            suspend_chain(node, top);
            return res_yielded(r);
        }
        if (node->ev == EV_DELEGATE) {
            cg_gen *sub = node->yf;
            /* node->ev stays EV_DELEGATE until node is resumed (resume()) */
            sub->ctx.parent = &node->ctx; /* (gen_up) */
            sub->state = CG_GEN_RUNNING;
            node = sub;
            d = (delivery){IN_SEND, NULL, NULL};
            continue;
        }
        /* finished */
        void *rv = node->ev == EV_RETURN ? r : NULL; /* passed by the last switch */
        cg_exc *err = node->ev == EV_RAISE ? pep479(node->exc) : NULL;
        node->exc = NULL;
        cg__gen_release_stack(node);
        if (node == top) return err ? res_raised(err) : res_returned(rv);
        cg_gen *up = gen_up(node);
        cg__gen_end_delegation(up); /* may free node */
        node = up;
        d = err ? (delivery){IN_PROPAGATE, NULL, err} : (delivery){IN_SEND, rv, NULL};
    }
}

static inline cg__res run(cg_gen *top, unsigned in, void *val, cg_exc *e) {
    return run_from(top, top, (delivery){in, val, e}, 0, NULL);
}

/* Checks common to every caller-side operation. */
static cg_exc *check_caller(const cg_gen *g, const char *op) {
    if (!g) {
        cg__cur();
        char msg[64];
        snprintf(msg, sizeof msg, "%s() argument must be a generator, not NULL", op);
        return cg__error(&cg_TypeError, msg);
    }
    uintptr_t owner = owner_of(g);
    if (CG_UNLIKELY(owner == OWNER_FREED)) cg__gen_freed_use(g, op);
    if (owner != cg__self()) return cg__error(&cg_RuntimeError, "generator belongs to another thread");
    if (CG_UNLIKELY(g->state == STATE_FREED)) cg__gen_freed_use(g, op);
    return NULL;
}

static cg__res send_impl(cg_gen *g, void *value) {
    switch (g->state) {
    case CG_GEN_RUNNING:
        return res_raised(cg__error(&cg_ValueError, "generator already executing"));
    case CG_GEN_CLOSED:
        return res_returned(NULL);
    case CG_GEN_CREATED:
        if (value) return res_raised(cg__error(&cg_TypeError, "can't send non-None value to a just-started generator"));
        break;
    default:
        break;
    }
    g->state = CG_GEN_RUNNING;
    cg__res r = run(g, IN_SEND, value, NULL);
    settle(g);
    return r;
}

CG_COLD static cg_status send_slow(cg_gen *g, void *value, void **out, cg_exc **exc, const char *op) {
    cg_exc *err = check_caller(g, op);
    if (err) return res_deliver(res_raised(err), out, exc);
    return res_deliver(send_impl(g, value), out, exc);
}

/* The common case of cg_send and cg_throw (their C versions, used where
 * the assembly fast paths are not): a plain suspended generator, resumed
 * by its owner, that yields again. */
static inline cg_status resume_plain(cg_gen *g, unsigned in, void *value, cg_exc *e, void **out, cg_exc **exc) {
    cg__ctx *caller = cg__t.cur;
    g->state = CG_GEN_RUNNING;
    g->ctx.parent = caller;
    void *r = resume(g, caller, in, value, e);
    cg__res res;
    if (CG_LIKELY(g->ev == EV_YIELD)) {
        g->state = CG_GEN_SUSPENDED;
        res = res_yielded(r);
    } else {
        res = run_from(g, g, (delivery){in, value, e}, 1, r);
    }
    settle(g);
    return res_deliver(res, out, exc);
}

/* Whether g can take the common case: the owner first, since from another
 * thread the rest is changing. */
static inline int plain(const cg_gen *g) {
    return owner_word(g) == cg__self() && g->state == CG_GEN_SUSPENDED && !g->yf;
}

cg_status CG_SEND_C(cg_gen *g, void *value, void **out, cg_exc **exc) {
    if (CG_LIKELY(g && plain(g))) return resume_plain(g, IN_SEND, value, NULL, out, exc);
    return send_slow(g, value, out, exc, "cg_send");
}

#if CG_FASTPATH
cg_status cg__send_event(cg_gen *g, void *r, void **out, cg_exc **exc) {
    cg__res res = run_from(g, g, (delivery){IN_SEND, NULL, NULL}, 1, r);
    settle(g);
    return res_deliver(res, out, exc);
}

/* cg_next's own slow path, so that its errors name it. */
CG_HIDDEN cg_status cg__next_slow(cg_gen *g, void **out, cg_exc **exc);
cg_status cg__next_slow(cg_gen *g, void **out, cg_exc **exc) { return send_slow(g, NULL, out, exc, "cg_next"); }
#else
cg_status cg_next(cg_gen *g, void **out, cg_exc **exc) {
    if (CG_LIKELY(g && plain(g))) return resume_plain(g, IN_SEND, NULL, NULL, out, exc);
    return send_slow(g, NULL, out, exc, "cg_next");
}
#endif

/* What a forwarded throw or close (to g's subgenerator sub) left of g's
 * delegation. */
typedef enum fwd {
    FWD_GOES_ON,       /* g still delegates to sub */
    FWD_CUT_SUSPENDED, /* cut by a nested throw (throw_detach): sub is
                          dropped, g is suspended at its yield from */
    FWD_CUT_CLOSED     /* cut, and dropping sub closed g */
} fwd;

static cg__res throw_impl(cg_gen *g, cg_exc *e);

/* A throw into g while a throw or close is being forwarded through g to its
 * subgenerator. CPython's _gen_throw still sees g parked at its yield from
 * (only its state says "running"), forwards this throw down as well, and
 * when that fails pops the subgenerator off g's frame: g no longer delegates
 * to it, and whatever resumes g next finishes its yield from. The caller
 * gets ValueError('generator already executing'). */
static cg__res throw_detach(cg_gen *g, cg_exc *e) {
    cg_gen *sub = g->yf;
    cg__res r = throw_impl(sub, e);
    if (r.status == CG_YIELDED) return r;
    cg_exc_unref(r.exc);
    g->yf = NULL;
    sub->yf_refs--; /* still held by the forwarding in progress */
    return res_raised(cg__error(&cg_ValueError, "generator already executing"));
}

/* After forwarding to sub: the delegation goes on, or it was cut by a
 * nested throw (throw_detach), and then sub is dropped here, as CPython
 * drops it when the forwarding lets go of it. */
static fwd forwarded(cg_gen *g, cg_gen *sub) {
    g->forwarding = 0;
    if (g->yf == sub) return FWD_GOES_ON;
    /* As CPython: g is marked suspended again before the subgenerator is
     * dropped, so that the subgenerator's cleanup may act on g (close it,
     * even). */
    g->state = CG_GEN_SUSPENDED;
    if (g->yf_owned) {
        g->yf_owned = 0;
        cg__gen_free(sub);
    } else {
        settle(sub);
    }
    return g->state == CG_GEN_SUSPENDED ? FWD_CUT_SUSPENDED : FWD_CUT_CLOSED;
}

/* A throw into a delegating g goes to its subgenerator first. */
static cg__res throw_forward(cg_gen *g, cg_exc *e) {
    cg_gen *sub = g->yf;
    g->state = CG_GEN_RUNNING;
    g->forwarding = 1;
    if (cg_exc_is(e, &cg_GeneratorExit)) {
        /* The subgenerator is closed, not thrown into; an error from
         * closing it replaces the GeneratorExit. */
        cg__res c = cg__gen_close(sub);
        if (c.status == CG_RAISED) {
            cg_exc_unref(e);
            e = c.exc;
        }
        switch (forwarded(g, sub)) {
        case FWD_GOES_ON:
            cg__gen_end_delegation(g);
            break;
        case FWD_CUT_CLOSED:
            return res_raised(e);
        case FWD_CUT_SUSPENDED:
            g->state = CG_GEN_RUNNING;
            break;
        }
        return run(g, IN_THROW, NULL, e);
    }
    cg__res r = throw_impl(sub, e);
    switch (forwarded(g, sub)) {
    case FWD_GOES_ON:
        if (r.status == CG_YIELDED) {
            g->state = CG_GEN_SUSPENDED;
            return r;
        }
        cg__gen_end_delegation(g);
        break;
    case FWD_CUT_SUSPENDED:
        if (r.status == CG_YIELDED) return r; /* cut by a nested throw */
        g->state = CG_GEN_RUNNING;
        break;
    case FWD_CUT_CLOSED:
        return r;
    }
    /* The delegation is over: g's yield from gets sub's outcome. */
    if (r.status == CG_RETURNED) return run(g, IN_SEND, r.value, NULL);
    return run(g, IN_THROW, NULL, r.exc);
}

static cg__res throw_impl(cg_gen *g, cg_exc *e) {
    switch (g->state) {
    case CG_GEN_RUNNING:
        if (g->forwarding && g->yf && !cg_exc_is(e, &cg_GeneratorExit)) return throw_detach(g, e);
        cg_exc_unref(e);
        return res_raised(cg__error(&cg_ValueError, "generator already executing"));
    case CG_GEN_CLOSED:
        return res_raised(e); /* handed back as it is */
    case CG_GEN_CREATED:
        /* Raised before the first line: nothing can catch it. */
        cg__gen_release_stack(g);
        return res_raised(pep479(e));
    default:
        break;
    }
    if (g->yf) return throw_forward(g, e);
    g->state = CG_GEN_RUNNING;
    return run(g, IN_THROW, NULL, e);
}

cg_status CG_THROW_C(cg_gen *g, cg_exc *e, void **out, cg_exc **exc) {
    /* The common case, as in cg_send: a plain suspended generator. */
    if (CG_LIKELY(e && g && plain(g))) return resume_plain(g, IN_THROW, NULL, e, out, exc);
    if (!e) {
        cg__cur();
        return res_deliver(res_raised(cg__error(
                               &cg_TypeError, "exceptions must be classes or instances deriving from BaseException, not NoneType")),
                           out, exc);
    }
    cg_exc *err = check_caller(g, "cg_throw");
    if (err) {
        cg_exc_unref(e);
        return res_deliver(res_raised(err), out, exc);
    }
    cg__res r = throw_impl(g, e);
    settle(g);
    return res_deliver(r, out, exc);
}

/* Whether anything in g's suspended body could see a GeneratorExit: a try
 * or defer record, or a catching yield. If not, it would come straight
 * back out, and closing needs neither the exception nor a switch. */
static inline int close_observable(const cg_gen *g) { return g->ctx.chain || g->catching; }

/* close(), as CPython's gen_close: the GeneratorExit is raised like any new
 * exception in the caller's context (chained to what the caller is
 * handling), then thrown in (chained to what the body is handling). */
cg__res cg__gen_close(cg_gen *g) {
    switch (g->state) {
    case CG_GEN_RUNNING:
        return res_raised(cg__error(&cg_ValueError, "generator already executing"));
    case CG_GEN_CREATED:
        cg__gen_release_stack(g);
        return res_returned(NULL);
    case CG_GEN_CLOSED:
        return res_returned(NULL);
    default:
        break;
    }
    cg_exc *e = NULL;
    if (g->yf) {
        cg_gen *sub = g->yf;
        g->state = CG_GEN_RUNNING;
        g->forwarding = 1;
        cg__res c = cg__gen_close(sub);
        if (c.status == CG_RAISED) e = c.exc;
        g->state = CG_GEN_SUSPENDED;
        switch (forwarded(g, sub)) {
        case FWD_GOES_ON:
            cg__gen_end_delegation(g);
            break;
        case FWD_CUT_CLOSED: /* closed by the dropped subgenerator */
            cg_exc_unref(e);
            return res_returned(NULL);
        case FWD_CUT_SUSPENDED:
            break;
        }
    } else if (!close_observable(g)) {
        cg__gen_abandon(g);
        return res_returned(NULL);
    }
    if (!e) {
        e = cg__error(&cg_GeneratorExit, NULL);
        if (!cg_exc_is(e, &cg_GeneratorExit)) e = cg__generator_exit_static(); /* out of memory */
    }
    g->state = CG_GEN_RUNNING;
    cg__res r = run(g, IN_THROW, NULL, e);
    if (r.status == CG_YIELDED) return res_raised(cg__error(&cg_RuntimeError, "generator ignored GeneratorExit"));
    if (r.status == CG_RAISED) {
        if (!cg_exc_is(r.exc, &cg_GeneratorExit)) return r;
        cg_exc_unref(r.exc);
        return res_returned(NULL);
    }
    return r;
}

CG_NOINLINE static cg_status close_slow(cg_gen *g, void **retval, cg_exc **exc) {
    cg_exc *err = check_caller(g, "cg_close");
    if (err) return res_deliver(res_raised(err), retval, exc);
    cg__res r = cg__gen_close(g);
    settle(g);
    return res_deliver(r, retval, exc);
}

/* The byte fields from state on, as one word, if gen.h's layout puts them
 * in one; then the bit of field f's byte. */
#define FLAGS_WORD_OK                                                                                              \
    (offsetof(cg_gen, state) + 8 <= sizeof(cg_gen) && FLAG_IN_WORD(ev) && FLAG_IN_WORD(canary) &&                 \
     FLAG_IN_WORD(catching) && FLAG_IN_WORD(free_pending))
#define FLAG_IN_WORD(f) (offsetof(cg_gen, f) > offsetof(cg_gen, state) && offsetof(cg_gen, f) < offsetof(cg_gen, state) + 8)
#define FLAG_SHIFT(f) (8 * (offsetof(cg_gen, f) - offsetof(cg_gen, state)))

/* Whether suspended g rests at a plain yield (ev EV_YIELD: no canary, no
 * pending free, no private floating-point environment) outside
 * cg_yield_catch: the byte checks of cg_close's common case, made with one
 * load and one compare where the layout allows (little-endian: x86-64 and
 * AArch64 here). */
static inline int close_bytes_plain(const cg_gen *g) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (FLAGS_WORD_OK) {
        uint64_t w;
        memcpy(&w, &g->state, sizeof w);
        uint64_t mask = (uint64_t)0xff | (uint64_t)0xff << FLAG_SHIFT(ev) | (uint64_t)0xff << FLAG_SHIFT(canary) |
                        (uint64_t)0xff << FLAG_SHIFT(catching) | (uint64_t)0xff << FLAG_SHIFT(free_pending);
        return (w & mask) == (uint64_t)CG_GEN_SUSPENDED;
    }
#endif
    return g->state == CG_GEN_SUSPENDED && g->ev == EV_YIELD && !g->canary && !g->catching && !g->free_pending;
}

cg_status cg_close(cg_gen *g, void **retval, cg_exc **exc) {
    /* What cg__gen_close does for a generator nothing in its body can
     * observe (cg__gen_abandon), when its stack can go to the hot slot:
     * plain(g), close_observable(g) and cg__gen_release_stack_hot(g), with
     * the byte fields read at once (a suspended generator has a stack). */
    if (CG_LIKELY(g && owner_word(g) == cg__self() && close_bytes_plain(g) && !g->yf && !g->ctx.chain &&
                  !g->compact && cg__gen_stack_to_hot(g))) {
        if (retval) *retval = NULL;
        if (exc) *exc = NULL;
        return CG_RETURNED;
    }
    return close_slow(g, retval, exc);
}

/* ---------------------------------------------------------------------
 * The body side
 * ------------------------------------------------------------------ */

CG_COLD CG_NORETURN static void not_running(cg_gen *g, const char *op) {
    (void)g;
    CG_RAISEF(&cg_RuntimeError, "%s() called outside the body of its generator", op);
}

/* The resumer threw: take the exception, chained as the resume mode says. */
static inline cg_exc *take_thrown(cg_gen *g) {
    cg_exc *e = g->exc;
    unsigned in = g->in;
    g->exc = NULL;
    g->in = IN_SEND;
    if (in == IN_THROW) {
        cg_exc *h = cg__handled(&g->ctx, 0); /* usually none: no call then */
        if (h) cg__chain(e, h);
    } else if (in == IN_RAISE)
        cg__chain_here(e);
    return e;
}

/* The resumer threw: raise the exception here. A throw (not a raise on
 * behalf of the resumer) lands in a try that encloses the yield without
 * the generic unwinding. */
CG_NORETURN static inline void raise_thrown_here(cg_gen *g) {
    if (CG_LIKELY(g->in == IN_THROW)) {
        cg_exc *e = g->exc;
        g->exc = NULL;
        g->in = IN_SEND;
        cg__throw_in(&g->ctx, e); /* chains as take_thrown would */
    }
    cg__unwind(take_thrown(g));
}

CG_COLD CG_NORETURN static void raise_thrown(cg_gen *g) { raise_thrown_here(g); }

#if CG_FASTPATH
/* The assembly cg_throw enters cg__throw_in itself, with g's context (at
 * offset 0, so the same pointer) and the exception in registers. */
_Static_assert(offsetof(cg_gen, ctx) == 0, "x86_64-fast.S passes g as &g->ctx");

void cg__yield_thrown(cg_gen *g) {
    arrived(g);
    raise_thrown_here(g); /* raise_thrown, without its call */
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
    if (CG_UNLIKELY(owner_of(sub) == OWNER_FREED || sub->state == STATE_FREED)) cg__gen_freed_use(sub, "cg_yield_from");
    if (owner_of(sub) != owner_of(g)) CG_RAISE(&cg_RuntimeError, "generator belongs to another thread");
    if (sub == g || sub->state == CG_GEN_RUNNING) CG_RAISE(&cg_ValueError, "generator already executing");
    /* The count of delegators is 24 bits of the handle (gen.h). */
    if (CG_UNLIKELY(sub->yf_refs == YF_REFS_MAX))
        CG_RAISE(&cg_RuntimeError, "too many generators delegate to this one at once");
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
        cg__gen_free(sub);
    }
    if (e) cg__unwind(e);
    return r;
}

/* ---------------------------------------------------------------------
 * Iteration
 * ------------------------------------------------------------------ */

int cg_iter_next(cg_gen *g, void **out) {
    cg_exc *e = NULL;
    void *v = NULL;
    cg_status st = cg_send(g, NULL, &v, &e);
    if (st == CG_RAISED) cg__unwind(e);
    if (out) *out = st == CG_YIELDED ? v : NULL;
    return st == CG_YIELDED;
}

/* (gen_hint.h) A prefetch never faults: a stale or NULL sp costs nothing. */
void cg__gen_prefetch_stack(const cg_gen *g) {
    const char *sp = (const char *)g->sp;
    __builtin_prefetch(sp, 1, 3);
    __builtin_prefetch(sp + 64, 1, 3);
}
