/* exc.c: exception types and objects, raise, try/except/finally, defer.
 *
 * Every execution context (a thread's own stack or a generator's) keeps one
 * chain of records that live in its own stack frames, innermost first:
 *   - try records (CG_TRY), whose phase says whether they catch, are being
 *     handled, or are running their finally block;
 *   - defer records (CG_DEFER);
 *   - handled records, pushed while a defer runs during unwinding, so that
 *     an exception raised by the defer is chained to the one in flight.
 * A raise walks the chain: it runs defers, and longjmps to the innermost try
 * that catches. When nothing catches in a generator, the generator ends and
 * its resumer gets the exception (cg__gen_finish, src/core/upcalls.h).
 */
#include "core/exc.h"
#include "arch/switch.h"
#include "core/upcalls.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------
 * Types
 * ------------------------------------------------------------------ */

/* An exception group's members (new references), in order. */
typedef struct exc_group {
    size_t n;
    cg_exc *excs[];
} exc_group;

const cg_exc_type cg_BaseException = {"BaseException", NULL};
#define CG__DEFINE_TYPE(name, base) const cg_exc_type cg_##name = {#name, &cg_##base};
CG_BUILTIN_EXC_TYPES(CG__DEFINE_TYPE)
#undef CG__DEFINE_TYPE

/* Single inheritance, with one exception: ExceptionGroup derives from both
 * BaseExceptionGroup (its base) and Exception, as in Python. Exception's
 * only ancestor is BaseException, which BaseExceptionGroup also reaches,
 * so the second base needs only this one comparison. */
int cg_type_is(const cg_exc_type *t, const cg_exc_type *base) {
    for (; t; t = t->base)
        if (t == base || (t == &cg_ExceptionGroup && base == &cg_Exception)) return 1;
    return 0;
}

/* ---------------------------------------------------------------------
 * Objects
 * ------------------------------------------------------------------ */

/* Raising never needs memory: when there is none, this one is raised. It
 * is shared and immortal, so nothing is ever chained to it. */
static cg_exc memory_error = {.type = &cg_MemoryError, .refs = -1};
static cg_exc generator_exit = {.type = &cg_GeneratorExit, .refs = -1};

cg_exc *cg__generator_exit_static(void) { return &generator_exit; }

/* Exceptions with a short message come from fixed-size slots recycled per
 * thread: malloc and free cost more than the rest of a throw. */
#define EXC_SLOT 128
#define EXC_SPARE_MAX 64

/* This thread's spare slots, linked through their context field (unused
 * while an object is spare). */
static __thread struct {
    cg_exc *head;
    unsigned n;
} spare __attribute__((tls_model("initial-exec")));

static inline cg_exc *spare_next(const cg_exc *e) { return e->context; }
static inline void set_spare_next(cg_exc *e, cg_exc *next) { e->context = next; }

/* Whether the spare slots may be used without a call: the allocator has
 * not changed since they were filled (else cg__cache_check renews). */
static inline int spare_current(void) { return cg__t.cache_gen == cg__alloc_generation(); }

/* Takes e, the head of the spare list, off it. */
static inline void spare_pop(cg_exc *e) {
    spare.head = spare_next(e);
    spare.n--;
}

static inline cg_exc *exc_alloc(size_t size) {
    if (size > EXC_SLOT) {
        cg_exc *e = cg__alloc(size);
        if (e) e->slot = 0;
        return e;
    }
    cg__cache_check();
    cg_exc *e = spare.head;
    if (e) {
        spare_pop(e);
    } else {
        e = cg__alloc(EXC_SLOT);
        if (!e) return NULL;
    }
    e->slot = 1;
    return e;
}

/* Whether e may go to the spare list (the thread's state still exists). */
static inline int spare_takes(const cg_exc *e) { return e->slot && spare.n < EXC_SPARE_MAX && cg__t.cur; }

static inline void spare_push(cg_exc *e) {
    set_spare_next(e, spare.head);
    spare.head = e;
    spare.n++;
}

CG_NOINLINE static void exc_free_slow(cg_exc *e) {
    cg__cache_check();
    if (spare_takes(e))
        spare_push(e);
    else
        cg__dealloc(e);
}

/* Back to the spare list with no call on the way (and so no frame to set
 * up) when the allocator has not changed: a caught throw frees one. */
static inline void exc_free(cg_exc *e) {
    if (CG_LIKELY(spare_takes(e) && spare_current()))
        spare_push(e);
    else
        exc_free_slow(e);
}

static void flush(void) {
    for (cg_exc *e = spare.head, *next; e; e = next) {
        next = spare_next(e);
        cg__cache_free(e);
    }
    spare.head = NULL;
    spare.n = 0;
}

static cg__thread_hooks hooks = {.order = CG__HOOKS_EXC, .flush = flush};
__attribute__((constructor)) static void register_hooks(void) { cg__thread_hooks_add(&hooks); }

/* A new exception's fields, but for slot: no links, no message. */
static inline void exc_init(cg_exc *e, const cg_exc_type *type) {
    e->type = type;
    e->refs = 1;
    e->context = NULL;
    e->cause = NULL;
    e->payload = NULL;
    e->payload_dtor = NULL;
    e->file = NULL;
    e->func = NULL;
    e->line = 0;
    e->walk = NULL;
    e->msg = NULL;
}

static cg_exc *exc_make(const cg_exc_type *type, const char *msg, size_t len) {
    if (!type) {
        type = &cg_TypeError;
        msg = "exceptions must derive from BaseException";
        len = strlen(msg);
    }
    cg_exc *e = exc_alloc(sizeof *e + (msg ? len + 1 : 0));
    if (!e) return &memory_error;
    exc_init(e, type);
    if (msg) {
        memcpy(e->text, msg, len);
        e->text[len] = '\0';
        e->msg = e->text;
    }
    return e;
}

CG_NOINLINE static cg_exc *exc_new_slow(const cg_exc_type *type, const char *msg) {
    return exc_make(type, msg, msg ? strlen(msg) : 0);
}

cg_exc *cg_exc_new(const cg_exc_type *type, const char *msg) {
    /* The common case of a throw, an exception without a message from a
     * spare slot, with no call on the way (and so no frame to set up). */
    cg_exc *e = spare.head;
    if (CG_UNLIKELY(!e || msg || !type || !spare_current())) return exc_new_slow(type, msg); /* a tail call */
    spare_pop(e);
    e->slot = 1;
    exc_init(e, type);
    return e;
}

cg_exc *cg_exc_newf(const cg_exc_type *type, const char *fmt, ...) {
    if (!fmt) return exc_make(type, NULL, 0);
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) return exc_make(type, fmt, strlen(fmt));
    if ((size_t)n < sizeof small) return exc_make(type, small, (size_t)n);
    char *big = cg__alloc((size_t)n + 1);
    if (!big) return &memory_error;
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    cg_exc *e = exc_make(type, big, (size_t)n);
    cg__dealloc(big);
    return e;
}

cg_exc *cg_exc_ref(cg_exc *e) {
    if (e && e->refs > 0) e->refs++;
    return e;
}

CG_NOINLINE static void release_linked(cg_exc *e);

/* Frees e, whose last reference is gone. The common case, a caught
 * exception that nothing links, goes straight back to the spare list, with
 * no call on the way. */
static inline void exc_release(cg_exc *e) {
    if (CG_LIKELY(!((uintptr_t)e->context | (uintptr_t)e->cause | (uintptr_t)e->payload_dtor)))
        exc_free(e);
    else
        release_linked(e);
}

void cg_exc_unref(cg_exc *e) {
    if (!e || e->refs <= 0 || --e->refs) return;
    exc_release(e);
}

static void release_linked(cg_exc *e) {
    /* Released without recursion: a long chain of contexts or causes must
     * not take stack per link. What is to be freed waits in a list linked
     * through walk (a dead object is in no walk of the link graph). */
    e->walk = NULL;
    for (cg_exc *todo = e; todo;) {
        e = todo;
        todo = e->walk;
        cg_exc *links[2] = {e->context, e->cause};
        for (int i = 0; i < 2; i++) {
            cg_exc *c = links[i];
            if (c && c->refs > 0 && --c->refs == 0) {
                c->walk = todo;
                todo = c;
            }
        }
        if (e->payload_dtor) e->payload_dtor(e->payload);
        exc_free(e);
    }
}

int cg_exc_is(const cg_exc *e, const cg_exc_type *t) { return e && cg_type_is(e->type, t); }
const cg_exc_type *cg_exc_type_of(const cg_exc *e) { return e ? e->type : NULL; }
const char *cg_exc_msg(const cg_exc *e) { return e ? e->msg : NULL; }
cg_exc *cg_exc_context(const cg_exc *e) { return e ? e->context : NULL; }
cg_exc *cg_exc_cause(const cg_exc *e) { return e ? e->cause : NULL; }
void *cg_exc_payload(const cg_exc *e) { return e ? e->payload : NULL; }
const char *cg_exc_file(const cg_exc *e) { return e ? e->file : NULL; }
int cg_exc_line(const cg_exc *e) { return e ? e->line : 0; }
const char *cg_exc_func(const cg_exc *e) { return e ? e->func : NULL; }

/* The links (context and cause) form no cycle: refcounting alone frees
 * everything. Before e gets a link to x, every link that leads back to e
 * from what x reaches is cut, so that e is no longer reachable from x:
 * Python's implicit chaining does this for __context__ links (its
 * _PyErr_SetObject), and here it covers cause links too. The walk visits
 * each object once (marked by walk, and queued through it), so it takes no
 * memory, no stack, and ends even on a graph that has a cycle. The caller
 * holds a reference to e of its own: cutting never frees anything, so no
 * payload destructor runs during the walk. */
static cg_exc walk_end; /* ends the queue; never linked to */

static void walk_visit(cg_exc *c, cg_exc *e, cg_exc **tail) {
    if (!c || c == e || c->refs <= 0 || c->walk) return; /* immortals: no links */
    c->walk = &walk_end;
    (*tail)->walk = c;
    *tail = c;
}

static void cut_links_back(cg_exc *e, cg_exc *x) {
    if (!x || x == e || x->refs <= 0) return;
    cg_exc *tail = x;
    x->walk = &walk_end;
    for (cg_exc *o = x; o != &walk_end; o = o->walk) {
        if (o->context == e) {
            o->context = NULL;
            e->refs--;
        }
        if (o->cause == e) {
            o->cause = NULL;
            e->refs--;
        }
        walk_visit(o->context, e, &tail);
        walk_visit(o->cause, e, &tail);
    }
    for (cg_exc *o = x, *next; o != &walk_end; o = next) {
        next = o->walk;
        o->walk = NULL;
    }
}

void cg_exc_set_context(cg_exc *e, cg_exc *context) {
    if (!e || e->refs < 0 || context == e) return;
    cg_exc_ref(e); /* e may be borrowed from a link that is cut */
    cut_links_back(e, context);
    cg_exc *old = e->context;
    e->context = cg_exc_ref(context);
    cg_exc_unref(old);
    cg_exc_unref(e);
}

void cg_exc_set_cause(cg_exc *e, cg_exc *cause) {
    if (!e || e->refs < 0 || cause == e) return;
    cg_exc_ref(e);
    cut_links_back(e, cause);
    cg_exc *old_cause = e->cause, *old_context = e->context;
    e->cause = cg_exc_ref(cause);
    e->context = cg_exc_ref(cause);
    cg_exc_unref(old_cause);
    cg_exc_unref(old_context);
    cg_exc_unref(e);
}

void cg_exc_set_payload(cg_exc *e, void *payload, void (*dtor)(void *)) {
    if (!e || e->refs < 0) { /* no exception, or the shared MemoryError: */
        if (dtor) dtor(payload); /* nothing keeps the payload */
        return;
    }
    void *old = e->payload;
    void (*old_dtor)(void *) = e->payload_dtor;
    e->payload = payload;
    e->payload_dtor = dtor;
    /* The payload it already has is kept, not destroyed: only the
     * destructor changes. */
    if (old_dtor && !(old && old == payload)) old_dtor(old);
}

/* Appends to a bounded buffer, counting what would have been written. */
typedef struct sbuf {
    char *p;
    size_t size, len;
} sbuf;

static void sb_putc(sbuf *b, char c) {
    if (b->len + 1 < b->size) b->p[b->len] = c;
    b->len++;
}
static void sb_puts(sbuf *b, const char *s) {
    while (*s) sb_putc(b, *s++);
}

/* Python's repr() of a str: single quotes unless the text has one and no
 * double quote; backslash escapes for the quote, backslash and controls. */
static void sb_repr_str(sbuf *b, const char *s) {
    char q = (strchr(s, '\'') && !strchr(s, '"')) ? '"' : '\'';
    sb_putc(b, q);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == q || *c == '\\') {
            sb_putc(b, '\\');
            sb_putc(b, (char)*c);
        } else if (*c == '\n') {
            sb_puts(b, "\\n");
        } else if (*c == '\r') {
            sb_puts(b, "\\r");
        } else if (*c == '\t') {
            sb_puts(b, "\\t");
        } else if (*c < 0x20 || *c == 0x7f) {
            static const char hex[] = "0123456789abcdef";
            sb_puts(b, "\\x");
            sb_putc(b, hex[*c >> 4]);
            sb_putc(b, hex[*c & 15]);
        } else {
            sb_putc(b, (char)*c);
        }
    }
    sb_putc(b, q);
}

static const exc_group *group_of(const cg_exc *e);

static void sb_repr(sbuf *b, const cg_exc *e, int depth) {
    if (!e) {
        sb_puts(b, "None");
        return;
    }
    sb_puts(b, e->type->name);
    sb_putc(b, '(');
    if (e->msg) sb_repr_str(b, e->msg);
    if (cg_type_is(e->type, &cg_BaseExceptionGroup)) {
        /* BaseExceptionGroup(message, exceptions) */
        const exc_group *g = group_of(e);
        if (!e->msg) sb_repr_str(b, "");
        sb_puts(b, ", [");
        for (size_t i = 0; g && i < g->n; i++) {
            if (i) sb_puts(b, ", ");
            if (depth < 64)
                sb_repr(b, g->excs[i], depth + 1);
            else
                sb_puts(b, "...");
        }
        sb_putc(b, ']');
    }
    sb_putc(b, ')');
}

size_t cg_exc_repr(const cg_exc *e, char *buf, size_t size) {
    if (!buf) size = 0; /* only measures, like snprintf(NULL, 0, ...) */
    sbuf b = {buf, size, 0};
    sb_repr(&b, e, 0);
    if (size) buf[b.len < size ? b.len : size - 1] = '\0';
    return b.len;
}

static void print_one(const cg_exc *e, FILE *f) {
    if (e->msg && *e->msg)
        fprintf(f, "%s: %s\n", e->type->name, e->msg);
    else
        fprintf(f, "%s\n", e->type->name);
    if (e->file) fprintf(f, "  raised at %s:%d in %s()\n", e->file, e->line, e->func ? e->func : "?");
}

static void print_chain(const cg_exc *e, FILE *f, int depth) {
    if (depth < 16) {
        if (e->cause) {
            print_chain(e->cause, f, depth + 1);
            fputs("\nThe above exception was the direct cause of the following exception:\n\n", f);
        } else if (e->context) {
            print_chain(e->context, f, depth + 1);
            fputs("\nDuring handling of the above exception, another exception occurred:\n\n", f);
        }
    }
    print_one(e, f);
}

void cg_exc_print(const cg_exc *e, FILE *f) {
    if (!f) f = stderr;
    if (!e) {
        fputs("None\n", f);
        return;
    }
    print_chain(e, f, 0);
}

/* ---------------------------------------------------------------------
 * Exception groups: the members are the exception's payload, with a
 * destructor of this file's that tells a group's payload from any other.
 * ------------------------------------------------------------------ */

static void group_free(void *p) {
    exc_group *g = p;
    for (size_t i = 0; i < g->n; i++) cg_exc_unref(g->excs[i]);
    cg__dealloc(g);
}

static const exc_group *group_of(const cg_exc *e) {
    return e && e->payload && e->payload_dtor == group_free ? e->payload : NULL;
}

cg_exc *cg_exc_group_new(const cg_exc_type *type, const char *msg, cg_exc *const *excs, size_t n) {
    if (!type) type = &cg_BaseExceptionGroup;
    if (!cg_type_is(type, &cg_BaseExceptionGroup))
        CG_RAISEF(&cg_TypeError, "%s is not a subclass of BaseExceptionGroup", type->name);
    if (!msg) CG_RAISE(&cg_TypeError, "BaseExceptionGroup.__new__() argument 1 must be str, not None");
    if (!excs || !n) CG_RAISE(&cg_ValueError, "second argument (exceptions) must be a non-empty sequence");
    int all_exceptions = 1;
    for (size_t i = 0; i < n; i++) {
        if (!excs[i]) CG_RAISEF(&cg_ValueError, "Item %zu of second argument (exceptions) is not an exception", i);
        if (!cg_exc_is(excs[i], &cg_Exception)) all_exceptions = 0;
    }
    if (type == &cg_BaseExceptionGroup && all_exceptions) {
        type = &cg_ExceptionGroup;
    } else if (cg_type_is(type, &cg_Exception) && !all_exceptions) {
        if (type == &cg_ExceptionGroup) CG_RAISE(&cg_TypeError, "Cannot nest BaseExceptions in an ExceptionGroup");
        CG_RAISEF(&cg_TypeError, "Cannot nest BaseExceptions in '%s'", type->name);
    }
    exc_group *g = cg__alloc(sizeof *g + n * sizeof(cg_exc *));
    if (!g) cg_raise(&memory_error);
    cg_exc *e = cg_exc_new(type, msg);
    if (e == &memory_error) {
        cg__dealloc(g);
        cg_raise(e);
    }
    g->n = n;
    for (size_t i = 0; i < n; i++) g->excs[i] = cg_exc_ref(excs[i]);
    cg_exc_set_payload(e, g, group_free);
    return e;
}

size_t cg_exc_group_count(const cg_exc *e) {
    const exc_group *g = group_of(e);
    return g ? g->n : 0;
}

cg_exc *cg_exc_group_at(const cg_exc *e, size_t i) {
    const exc_group *g = group_of(e);
    return g && i < g->n ? g->excs[i] : NULL;
}

/* ---------------------------------------------------------------------
 * The record chain
 * ------------------------------------------------------------------ */

/* Where control is in a try statement (include/cogen.h has the list). */
enum {
    PH_BODY = CG__TRY_BODY,
    PH_CAUGHT = CG__TRY_CAUGHT,
    PH_HANDLING = CG__TRY_HANDLING,
    PH_PENDING = CG__TRY_PENDING,
    PH_FINALLY = CG__TRY_FINALLY,
    PH_DONE = CG__TRY_DONE
};

/* While a defer runs during unwinding, the exception in flight is being
 * handled, as in a Python finally block. */
typedef struct handled_rec {
    cg__rec rec;
    cg_exc *exc;
} handled_rec;

static void push(cg__ctx *ctx, cg__rec *r, int kind) {
    r->kind = kind;
    r->next = ctx->chain;
    ctx->chain = r;
}

static void pop(cg__ctx *ctx, cg__rec *r) {
    CG_CHECK(ctx->chain == r, "exception records out of order (a CG_TRY or CG_DEFER frame was left by longjmp?)");
    ctx->chain = r->next;
}

/* The exception that the records from r outward are handling, or NULL. */
static inline cg_exc *handled_from(const cg__rec *r) {
    for (; r; r = r->next) {
        if (r->kind == CG__REC_TRY) {
            const cg__try *t = (const cg__try *)r;
            if ((t->phase == PH_HANDLING || t->phase == PH_FINALLY) && t->exc) return t->exc;
        } else if (r->kind == CG__REC_HANDLED) {
            return ((const handled_rec *)r)->exc;
        }
    }
    return NULL;
}

cg_exc *cg__handled(cg__ctx *ctx, int walk_parents) {
    for (; ctx; ctx = walk_parents ? ctx->parent : NULL) {
        cg_exc *h = handled_from(ctx->chain);
        if (h) return h;
    }
    return NULL;
}

cg_exc *cg_exc_current(void) { return cg__handled(cg__cur(), 1); }

void cg__chain(cg_exc *e, cg_exc *handled) {
    if (!handled || handled == e || e->refs < 0) return;
    /* The caller owns a reference to e: with no other, nothing links to e,
     * and there is no cycle to cut (the common case: a fresh exception). */
    if (e->refs > 1) cut_links_back(e, handled);
    cg_exc *old = e->context;
    e->context = cg_exc_ref(handled);
    cg_exc_unref(old);
}

cg_exc *cg__error(const cg_exc_type *type, const char *msg) {
    cg_exc *e = cg_exc_new(type, msg);
    cg__chain_here(e);
    return e;
}

void cg__drop_chain(cg__ctx *ctx) {
    for (cg__rec *r = ctx->chain; r; r = r->next) {
        if (r->kind == CG__REC_TRY) {
            cg__try *t = (cg__try *)r;
            cg_exc_unref(t->exc);
            t->exc = NULL;
            t->phase = PH_DONE;
        } else if (r->kind == CG__REC_HANDLED) {
            cg_exc_unref(((handled_rec *)r)->exc);
        }
    }
    ctx->chain = NULL;
}

CG_COLD CG_NORETURN static void uncaught(cg_exc *e) {
    fputs("cogen: uncaught exception on a thread's own stack (outside any generator):\n", stderr);
    cg_exc_print(e, stderr);
    fflush(stderr);
    abort();
}

/* The innermost record, when it is a try whose body runs (it holds no
 * exception yet): the common case of a raise, which lands there at once. */
static inline cg__try *body_try(const cg__ctx *ctx) {
    cg__rec *top = ctx->chain;
    return top && top->kind == CG__REC_TRY && ((cg__try *)top)->phase == PH_BODY ? (cg__try *)top : NULL;
}

CG_NORETURN static inline void land(cg__try *t, cg_exc *e) {
    t->exc = e;
    t->phase = PH_CAUGHT;
    cg__longjmp(t->jb, 1);
}

CG_NOINLINE CG_NORETURN static void throw_in_slow(cg__ctx *ctx, cg_exc *e) {
    cg_exc *h = handled_from(ctx->chain);
    if (h) cg__chain(e, h);
    cg__unwind(e);
}

void cg__throw_in(cg__ctx *ctx, cg_exc *e) {
    /* A try in its body handles nothing: when it is the only record,
     * nothing is handled here and e needs no chaining. */
    cg__try *t = body_try(ctx);
    if (CG_LIKELY(t && !t->rec.next)) land(t, e);
    throw_in_slow(ctx, e);
}

void cg__unwind(cg_exc *e) {
    cg__ctx *ctx = cg__cur();
    cg__try *t = body_try(ctx);
    if (CG_LIKELY(t)) land(t, e);
    for (cg__rec *r; (r = ctx->chain) != NULL;) {
        if (r->kind == CG__REC_DEFER) {
            cg__defer *d = (cg__defer *)r;
            void (*fn)(void *) = d->fn;
            ctx->chain = r->next;
            d->fn = NULL;
            if (!fn) continue;
            handled_rec h;
            push(ctx, &h.rec, CG__REC_HANDLED);
            h.exc = e; /* if the defer raises, unwinding drops this reference */
            fn(d->arg);
            pop(ctx, &h.rec);
            continue;
        }
        if (r->kind == CG__REC_TRY) {
            cg__try *t = (cg__try *)r;
            if (t->phase == PH_BODY || t->phase == PH_HANDLING) {
                cg_exc_unref(t->exc); /* what the handler was handling */
                t->exc = e;
                t->phase = t->phase == PH_BODY ? PH_CAUGHT : PH_PENDING;
                cg__longjmp(t->jb, 1);
            }
            /* A finally block raised: its pending exception is replaced. */
            ctx->chain = r->next;
            t->phase = PH_DONE;
            cg_exc_unref(t->exc);
            t->exc = NULL;
            continue;
        }
        /* A defer raised while an earlier exception was in flight. */
        ctx->chain = r->next;
        cg_exc_unref(((handled_rec *)r)->exc);
    }
    if (ctx->gen) cg__gen_finish(ctx->gen, e);
    uncaught(e);
}

/* Whether a record of the running code (a try, or a defer running while e
 * unwinds) holds the one reference e has. */
static int held_only_by_a_record(const cg_exc *e) {
    if (e->refs != 1) return 0;
    for (cg__ctx *ctx = cg__cur(); ctx; ctx = ctx->parent)
        for (cg__rec *r = ctx->chain; r; r = r->next)
            if ((r->kind == CG__REC_TRY && ((cg__try *)r)->exc == e) ||
                (r->kind == CG__REC_HANDLED && ((handled_rec *)r)->exc == e))
                return 1;
    return 0;
}

void cg_raise_at(cg_exc *e, const char *file, int line, const char *func) {
    if (!e) e = cg_exc_new(&cg_TypeError, "exceptions must derive from BaseException");
    /* Python's `raise e` in `except E as e`, written cg_raise(e) with the
     * borrowed e of CG_EXCEPT: the caller has no reference to give, and
     * the handler's would be consumed under it. Take one instead. */
    else if (held_only_by_a_record(e)) cg_exc_ref(e);
    if (!e->file && e->refs > 0) {
        e->file = file;
        e->line = line;
        e->func = func;
    }
    cg__chain_here(e);
    cg__unwind(e);
}

void cg_propagate(cg_exc *e) {
    if (!e) CG_RAISE(&cg_TypeError, "exceptions must derive from BaseException");
    if (held_only_by_a_record(e)) cg_exc_ref(e); /* as cg_raise_at */
    cg__unwind(e);
}

void cg_reraise(void) {
    cg_exc *h = cg__handled(cg__cur(), 1);
    if (!h) CG_RAISE(&cg_RuntimeError, "No active exception to reraise");
    cg__unwind(cg_exc_ref(h));
}

/* ---------------------------------------------------------------------
 * What the CG_TRY and CG_DEFER macros call
 * ------------------------------------------------------------------ */

/* What src/arch/x86_64-setjmp.S and aarch64-setjmp.S know of the records
 * (cg__try_enter pushes a try record itself). */
_Static_assert(offsetof(cg__thread, cur) == 0 && offsetof(cg__ctx, chain) == 0, "*-setjmp.S");
_Static_assert(offsetof(cg__try, rec.next) == 0 && offsetof(cg__try, rec.kind) == 8 && CG__REC_TRY == 1, "*-setjmp.S");
_Static_assert(offsetof(cg__try, phase) == 16 && offsetof(cg__try, exc) == 24 && offsetof(cg__try, jb) == 32 &&
                   CG__TRY_BODY == 0,
               "*-setjmp.S");

/* The first CG_TRY of a thread that has not used cogen yet. */
CG_NOINLINE static void try_push_first(cg__try *t) {
    cg__thread_init();
    cg__try_push(t);
}

void cg__try_push(cg__try *t) {
    cg__ctx *ctx = cg__t.cur;
    if (CG_UNLIKELY(!ctx)) {
        try_push_first(t); /* a tail call: no frame on the common path */
        return;
    }
    t->phase = PH_BODY;
    t->exc = NULL;
    push(ctx, &t->rec, CG__REC_TRY);
}

CG_COLD CG_NORETURN static void out_of_order(void) {
    cg__fatal(__FILE__, __LINE__, "exception records out of order (a CG_TRY or CG_DEFER frame was left by longjmp?)");
}

/* `except None:` raises, during the handling. */
CG_COLD CG_NORETURN static void except_none(cg__try *t) {
    t->phase = PH_HANDLING;
    CG_RAISE(&cg_TypeError, "catching classes that do not inherit from BaseException is not allowed");
}

CG_NOINLINE static int match_base(cg__try *t, const cg_exc_type *type) {
    if (!t->exc || !cg_type_is(t->exc->type, type)) return 0;
    t->phase = PH_HANDLING;
    return 1;
}

/* The clauses get their record from the CG_TRY they belong to; whenever
 * control reaches them it is the top of the chain: whatever the body and
 * the handlers pushed is off it by then. */
int cg__try_match(cg__try *t, const cg_exc_type *type) {
    if (t->phase != PH_CAUGHT) return 0;
    /* The exact type first, with no call (and so no frame); an exception
     * always has a type, so type is not NULL then. */
    if (CG_LIKELY(t->exc && t->exc->type == type)) {
        t->phase = PH_HANDLING;
        return 1;
    }
    if (CG_UNLIKELY(!type)) except_none(t);
    return match_base(t, type);
}

void cg__try_finally(cg__try *t) {
    if (t->phase == PH_HANDLING) { /* the handler finished: done with it */
        cg_exc_unref(t->exc);
        t->exc = NULL;
    }
    t->phase = PH_FINALLY;
}

void cg__try_end(cg__try *t) {
    cg__ctx *ctx = cg__t.cur;
    if (CG_UNLIKELY(!ctx || ctx->chain != &t->rec)) out_of_order();
    ctx->chain = t->rec.next;
    cg_exc *e = t->exc;
    int phase = t->phase;
    t->exc = NULL;
    t->phase = PH_DONE;
    if (!e) return;
    if (CG_LIKELY(phase == PH_HANDLING)) {
        /* Handled: the record held the one reference of a caught throw. */
        if (e->refs > 0 && --e->refs == 0) exc_release(e);
        return;
    }
    cg__unwind(e); /* nothing caught it: carry on outward */
}

void cg__try_cleanup(cg__try *t) {
    if (t->phase == PH_DONE) return;
    /* Left by return, break or goto: drop the record (and with it a pending
     * exception, as `return` in a Python finally block does). */
    pop(cg__t.cur, &t->rec);
    cg_exc_unref(t->exc);
    t->exc = NULL;
    t->phase = PH_DONE;
}

/* CG_DEFER(NULL, arg) defers nothing, but its record still goes on the
 * chain and comes off it like any other: fn NULL marks a record already off
 * the chain (run at scope exit, or by unwinding). */
static void defer_nothing(void *arg) { (void)arg; }

void cg__defer_push(cg__defer *d) {
    if (!d->fn) d->fn = defer_nothing;
    push(cg__cur(), &d->rec, CG__REC_DEFER);
}

void cg__defer_exit(cg__defer *d) {
    if (!d->fn) return;
    pop(cg__t.cur, &d->rec);
    void (*fn)(void *) = d->fn;
    d->fn = NULL;
    fn(d->arg);
}

/* ---------------------------------------------------------------------
 * Try as a function call (cg_try_call, cg_try_catch)
 * ------------------------------------------------------------------ */

cg_exc *cg_try_catch(void (*fn)(void *), void *arg, const cg_exc_type *type) {
    cg_exc *volatile caught = NULL; /* set after the longjmp: volatile */
    CG_TRY {
        if (!fn) CG_RAISE(&cg_TypeError, "'NoneType' object is not callable");
        fn(arg);
    } CG_EXCEPT(type, e) {
        caught = cg_exc_ref(e);
    } CG_END;
    return caught;
}

cg_exc *cg_try_call(void (*fn)(void *), void *arg) { return cg_try_catch(fn, arg, &cg_Exception); }

/* ---------------------------------------------------------------------
 * Build check: a program compiled with a sanitizer that the library was
 * not built with (cogen.h runs this from a constructor in such programs)
 * ------------------------------------------------------------------ */

void cg__check_build(unsigned flags) {
    static const struct {
        unsigned flag, have;
        const char *tool, *option;
    } checks[] = {
        {CG__BUILD_ASAN, CG_ASAN, "AddressSanitizer", "address"},
        {CG__BUILD_TSAN, CG_TSAN, "ThreadSanitizer", "thread"},
    };
    static int warned;
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        if (!(flags & checks[i].flag) || checks[i].have) continue;
        if (__atomic_exchange_n(&warned, 1, __ATOMIC_RELAXED)) return; /* once per process */
        fprintf(stderr,
                "cogen: this program is built with %s but libcogen is not; rebuild cogen with "
                "-DCOGEN_SANITIZE=%s (see docs/debugging.md)\n",
                checks[i].tool, checks[i].option);
        fflush(stderr);
        const char *v = getenv("COGEN_BUILD_CHECK");
        if (v && strcmp(v, "abort") == 0) abort();
        return;
    }
}
