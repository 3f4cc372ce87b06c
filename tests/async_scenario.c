/* async_scenario.c: cogen-async-scenario, the async scenario runner.
 *
 * Runs an async scenario (the language of ../shared/semantics/ASYNC-SCENARIO.md,
 * outside the repository; its reference runner is async_ref.py on CPython
 * 3.13.0, whose traces are checked in under tests/async_scenarios/) on
 * cogen's event loop, through the public API only (cogen.h, cogen_loop.h),
 * and prints the same trace: one line per event, `T TASK: EVENT`.
 *
 *     cogen-async-scenario FILE
 *
 * Exit status: 0 after the trace; 2 for an invalid scenario (the reference
 * runner's message on stderr, naming its line; nothing on stdout, as the
 * reference prints nothing then); 3 when the scenario uses a statement that
 * the loop does not offer yet ("unsupported statement", on stderr, found
 * before anything runs), so that tests can tell "not yet" from "wrong".
 *
 * How it runs. Every `async def` body is interpreted by one C function
 * (run_def): `spawn` makes a task (cg_task_new) whose body (task_body)
 * interprets the def on the task's stack; `await NAME` interprets NAME in a
 * generator the task delegates to (cg_yield_from_new), so that each
 * coroutine has an exception frame of its own as in Python (a plain call on
 * the same stack chains thrown-in exceptions to the wrong handled
 * exception, see op_await); awaiting operations call cg_await / cg_sleep
 * from whichever generator runs them (tasks are stackful). `try` is CG_TRY,
 * `raise` cg_raise, `reraise` cg_reraise, as in the generator scenario
 * runner (tests/scenario.c), whose lexer and utilities this file copies.
 *
 * Statements are a table (OPDEFS below, and BLOCKDEFS for the blocks):
 * each has a C function that performs it, or NULL while the loop lacks
 * what it needs; a scenario using a NULL entry exits with status 3.
 *
 * The run (`main NAME`) follows asyncio.run as the reference drives it
 * (Runner.run, then Runner.close): it is written here with the loop's
 * public calls rather than with cg_run, because the reference needs three
 * things cg_run does not give (see run_main): a virtual-clock deadlock
 * ends the run at once, without shutdown; every task of the run stays
 * referenced until after the outcome line, where the end-of-run reports
 * are made in creation order; and the loop's clock is read after the
 * shutdown, before the loop is freed.
 *
 * Where it cannot be exact (tests/async_scenarios/README.md lists these):
 * the reference's limit of 100,000 loop iterations is not counted (the
 * limit of 20,000 trace lines always comes first: every iteration but a
 * few leads to an event); a scenario that Python refuses to compile (more
 * than 20 statically nested blocks, counting the ones the reference
 * generates around each operation) makes the reference fail with a
 * SyntaxError, while this runner runs it.
 */
#include <cogen.h>
#include <cogen_loop.h>

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCN_PROG "cogen-async-scenario"
#include "scenario_text.h"

/* ---------------------------------------------------------------------
 * Exception types
 * ------------------------------------------------------------------ */

CG_EXC_TYPE(AppError, cg_Exception);
CG_EXC_TYPE(SubAppError, AppError);
/* Unwinds a task once the run is rejected (scenario_abort): no handler of
 * the scenario catches it and no finally block runs. */
CG_EXC_TYPE(ScenarioAbort, cg_BaseException);
/* asyncio's queue exceptions and the exception groups are the loop's and
 * the core's own (cg_QueueEmpty, ..., cg_ExceptionGroup). */

static const struct {
    const char *name;
    const cg_exc_type *type;
    int raisable;
} TYPES[] = {
    {"BaseException", &cg_BaseException, 1},
    {"Exception", &cg_Exception, 1},
    {"GeneratorExit", &cg_GeneratorExit, 1},
    {"StopIteration", &cg_StopIteration, 1},
    {"StopAsyncIteration", &cg_StopAsyncIteration, 1},
    {"RuntimeError", &cg_RuntimeError, 1},
    {"ValueError", &cg_ValueError, 1},
    {"TypeError", &cg_TypeError, 1},
    {"LookupError", &cg_LookupError, 1},
    {"KeyError", &cg_KeyError, 1},
    {"OSError", &cg_OSError, 1},
    {"TimeoutError", &cg_TimeoutError, 1},
    {"CancelledError", &cg_CancelledError, 1},
    {"InvalidStateError", &cg_InvalidStateError, 1},
    {"QueueEmpty", &cg_QueueEmpty, 1},
    {"QueueFull", &cg_QueueFull, 1},
    {"QueueShutDown", &cg_QueueShutDown, 1},
    {"AppError", &AppError, 1},
    {"SubAppError", &SubAppError, 1},
    {"ExceptionGroup", &cg_ExceptionGroup, 0},
    {"BaseExceptionGroup", &cg_BaseExceptionGroup, 0},
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

static const cg_exc_type *find_type(const char *name, int raisable) {
    for (size_t i = 0; i < NTYPES; i++)
        if (strcmp(TYPES[i].name, name) == 0 && (TYPES[i].raisable || !raisable)) return TYPES[i].type;
    return NULL;
}

/* ---------------------------------------------------------------------
 * The program
 * ------------------------------------------------------------------ */

/* A value is NULL (None) or a canonical decimal string: values only travel
 * through tasks and get printed, so no arithmetic. */
typedef const char *value;

/* Operation keywords, in the order of OPDEFS, then the blocks. */
enum kw {
    K_SPAWN, K_TG_SPAWN, K_JOIN, K_CANCEL, K_CANCELLING, K_UNCANCEL, K_STATE, K_RESULT,
    K_SLEEP, K_AWAIT, K_GATHER, K_WAIT, K_WAIT_FOR, K_SHIELD,
    K_PUT, K_GET, K_PUT_NOWAIT, K_GET_NOWAIT, K_TASK_DONE, K_QJOIN, K_QSIZE, K_QSHUTDOWN,
    K_SET, K_CLEAR, K_IS_SET, K_WAIT_EVENT, K_ACQUIRE, K_RELEASE, K_LOCKED,
    K_AGEN, K_ANEXT, K_ASEND, K_ATHROW, K_ACLOSE,
    K_NOPS,
    K_TIMEOUT = K_NOPS, K_TASKGROUP, K_ASYNC_WITH, K_ASYNC_FOR
};

enum { MODE_ALL = 0, MODE_FIRST_COMPLETED, MODE_FIRST_EXCEPTION };

typedef struct op {
    enum kw kw;
    int line;
    const char *text;        /* the statement's words joined by blanks */
    const char *id;          /* N, M, T, A: a task or agen ID */
    const char *name;        /* D, G, Q, E, L: a body or object name */
    const char *x;           /* X of wait_for / shield */
    const char **xs;         /* X+ of gather / wait */
    size_t nxs;
    unsigned long long ms;   /* S (saturated, see parse_num) */
    int has_timeout;         /* wait ... timeout MS */
    unsigned long long timeout;
    int mode;                /* wait: MODE_* */
    int return_exceptions;   /* gather */
    int immediate;           /* qshutdown */
    value val;               /* V */
    const cg_exc_type *type; /* athrow TYPE */
    const char *word;        /* W (may be NULL) */
    int tg;                  /* tg_spawn: depth of its taskgroup block */
} op;

enum stmt_kind { S_YIELD, S_RETURN, S_RAISE, S_RERAISE, S_LOG, S_LOGEXC, S_REPEAT, S_TRY, S_OP, S_BLOCK };

typedef struct stmt stmt;
typedef struct block {
    stmt *v;
    size_t n, cap;
} block;

typedef struct handler {
    const cg_exc_type *type;
    block body;
} handler;

struct stmt {
    enum stmt_kind kind;
    int line;
    value val;                /* S_YIELD, S_RETURN */
    const cg_exc_type *type;  /* S_RAISE */
    const char *word;         /* S_RAISE (may be NULL), S_LOG */
    unsigned long long count; /* S_REPEAT */
    block body;               /* S_REPEAT, S_TRY, S_BLOCK */
    handler *handlers;        /* S_TRY */
    size_t nhandlers;
    block final;              /* S_TRY */
    int has_final;
    op *op;                   /* S_OP, S_BLOCK */
    int depth;                /* S_BLOCK taskgroup: its depth */
};

enum { KIND_DEF = 1, KIND_GEN = 2 };

typedef struct def {
    const char *name;
    int kind; /* KIND_* */
    int line;
    block body;
    size_t stack; /* the stack size its coroutines run with (set_stacks) */
} def;

enum { OBJ_QUEUE = 1, OBJ_EVENT, OBJ_LOCK, OBJ_SEMAPHORE, OBJ_BOUNDED };
static const char *const DECL_WORDS[] = {NULL, "queue", "event", "lock", "semaphore", "bounded"};

typedef struct obj {
    const char *name;
    int decl;  /* OBJ_* */
    unsigned long long param;
    int line;
    void *rt;  /* the loop's object during the run */
} obj;

/* A name as the checks see it: task IDs and agen IDs with the line of
 * their first binding, references to be checked after parsing. */
typedef struct idrec {
    const char *id;
    int line;
    const char **gens; /* agen IDs: the gens bound to it */
    size_t ngens;
} idrec;

typedef struct ref {
    int line;
    char cat; /* the argument pattern letter */
    const char *name;
} ref;

typedef struct program {
    def *defs;
    size_t ndefs;
    obj *objs;
    size_t nobjs;
    const char *main_name;
    int main_line;
    idrec *tids, *aids;
    size_t ntids, naids;
    ref *refs;
    size_t nrefs;
} program;

#define VEC_PUSH(A, v, n, item)                                                 \
    do {                                                                        \
        if (((n) & ((n) - 1)) == 0) {                                           \
            size_t cap_ = (n) ? (n) * 2 : 4;                                    \
            (v) = a_grow((A), (v), (n) * sizeof *(v), cap_ * sizeof *(v));      \
        }                                                                       \
        (v)[(n)++] = (item);                                                    \
    } while (0)

static def *find_def(const program *p, const char *name) {
    for (size_t i = 0; i < p->ndefs; i++)
        if (strcmp(p->defs[i].name, name) == 0) return &p->defs[i];
    return NULL;
}

static obj *find_obj(const program *p, const char *name) {
    for (size_t i = 0; i < p->nobjs; i++)
        if (strcmp(p->objs[i].name, name) == 0) return &p->objs[i];
    return NULL;
}

static idrec *find_id(idrec *v, size_t n, const char *id) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0) return &v[i];
    return NULL;
}

/* ---------------------------------------------------------------------
 * Parsing, mirroring async_ref.py's parse() and check() step by step, so
 * that an invalid scenario gets the same message. Every function that can
 * reject the scenario returns -1 after storing the message (perr).
 * ------------------------------------------------------------------ */

typedef struct parser {
    arena *A;
    lines L;
    program *prog;
    str err; /* the message, without "scenario error: " */
} parser;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static int perr(parser *ps, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    s_clear(&ps->err);
    s_vprintf(&ps->err, fmt, ap);
    va_end(ap);
    return -1;
}

static const char *repr_a(parser *ps, const char *t) {
    str s = {0};
    s_repr(&s, t);
    const char *r = a_strdup(ps->A, s.p);
    free(s.p);
    return r;
}

/* WORD: [A-Za-z0-9_]+ (ASCII only, as Python's re reads that class). */
static int is_word(const char *w) {
    if (!*w) return 0;
    for (const char *c = w; *c; c++)
        if (!((unsigned char)*c < 128 && (isalnum((unsigned char)*c) || *c == '_'))) return 0;
    return 1;
}

static int all_digits(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return 0;
    return 1;
}

/* Past this, a duration or count only has to be "too large": the limits
 * (virtual time, repeat iterations) stop the run long before. */
#define BIG 1000000000000ull

/* MS or N: 0 or [1-9][0-9]*. */
static int parse_num(parser *ps, const char *tok, int no, const char *what, unsigned long long *out) {
    if (!all_digits(tok) || (tok[0] == '0' && tok[1]))
        return perr(ps, "line %d: expected %s, got %s", no, what, repr_a(ps, tok));
    unsigned long long v = 0;
    for (const char *c = tok; *c; c++) v = v > BIG ? v : v * 10 + (unsigned)(*c - '0');
    *out = v > BIG ? BIG + 1 : v;
    return 0;
}

/* VALUE: None, 0 or -?[1-9][0-9]*, kept as its text (the repr). */
static int parse_value(parser *ps, const char *tok, int no, value *out) {
    if (strcmp(tok, "None") == 0) {
        *out = NULL;
        return 0;
    }
    const char *d = tok + (*tok == '-');
    if (!all_digits(d) || (d[0] == '0' && (d[1] || d != tok)))
        return perr(ps, "line %d: bad value %s", no, repr_a(ps, tok));
    *out = tok;
    return 0;
}

static const char *join_words(parser *ps, char **w, size_t n) {
    str s = {0};
    for (size_t i = 0; i < n; i++) {
        if (i) s_putc(&s, ' ');
        s_puts(&s, w[i]);
    }
    const char *r = a_strdup(ps->A, s_text(&s));
    free(s.p);
    return r;
}

/* The operations: keyword, argument pattern and usage (async_ref.py's OPS
 * and USAGE), whether they await, and what performs them. */
typedef struct frame frame;
typedef struct opres opres;
typedef void (*op_fn)(frame *f, const op *o, opres *r);

typedef struct opdef {
    const char *kw;
    const char *pat;
    const char *usage;
    int awaiting;
    op_fn run; /* NULL: not supported by the loop yet */
} opdef;

static const opdef OPDEFS[K_NOPS];

static void add_ref(parser *ps, int no, char cat, const char *name) {
    program *p = ps->prog;
    VEC_PUSH(ps->A, p->refs, p->nrefs, ((ref){no, cat, name}));
}

static int is_mode(const char *t) {
    return strcmp(t, "first_completed") == 0 || strcmp(t, "first_exception") == 0 ||
           strcmp(t, "all_completed") == 0;
}

static int op_args(parser *ps, enum kw kw, char **w, size_t n, int no, op *o) {
    program *p = ps->prog;
    const opdef *d = &OPDEFS[kw];
    char **words = w + 1;
    size_t nw = n - 1, j = 0;
#define BAD() perr(ps, "line %d: usage: %s %s", no, d->kw, d->usage)
    for (const char *pc = d->pat; *pc;) {
        size_t len = strcspn(pc, " ");
        int opt = pc[0] == '[';
        char pp[32];
        snprintf(pp, sizeof pp, "%.*s", (int)(len - 2 * (size_t)opt), pc + opt);
        pc += len;
        while (*pc == ' ') pc++;
        if (strcmp(pp, "X+") == 0) {
            size_t start = j;
            while (j < nw && strcmp(words[j], "return_exceptions") != 0 && strcmp(words[j], "timeout") != 0 &&
                   !is_mode(words[j]))
                j++;
            if (j == start) return BAD();
            o->xs = (const char **)(words + start);
            o->nxs = j - start;
            for (size_t k = start; k < j; k++) add_ref(ps, no, 'X', words[k]);
            continue;
        }
        if (j >= nw) {
            if (opt) continue;
            return BAD();
        }
        const char *tok = words[j];
        if (strcmp(pp, "return_exceptions") == 0) {
            if (strcmp(tok, pp) != 0) continue;
            o->return_exceptions = 1;
        } else if (strcmp(pp, "mode") == 0) {
            if (!is_mode(tok)) continue;
            o->mode = strcmp(tok, "first_completed") == 0   ? MODE_FIRST_COMPLETED
                      : strcmp(tok, "first_exception") == 0 ? MODE_FIRST_EXCEPTION
                                                            : MODE_ALL;
        } else if (strcmp(pp, "timeout") == 0) {
            if (strcmp(tok, "timeout") != 0 || j + 1 >= nw) return BAD();
            j++;
            if (parse_num(ps, words[j], no, "milliseconds", &o->timeout)) return -1;
            o->has_timeout = 1;
        } else if (strcmp(pp, "immediate") == 0) {
            if (strcmp(tok, pp) != 0) return BAD();
            o->immediate = 1;
        } else if (strcmp(pp, "S") == 0) {
            if (parse_num(ps, tok, no, "milliseconds", &o->ms)) return -1;
        } else if (strcmp(pp, "V") == 0) {
            if (parse_value(ps, tok, no, &o->val)) return -1;
        } else if (strcmp(pp, "W") == 0) {
            if (!is_word(tok)) return BAD();
            o->word = tok;
        } else if (strcmp(pp, "TYPE") == 0) {
            if (!(o->type = find_type(tok, 1)))
                return perr(ps, "line %d: %s is not a raisable type", no, repr_a(ps, tok));
        } else {
            if (!is_word(tok)) return BAD();
            char c = pp[0];
            if (c == 'N') {
                if (strcmp(tok, "main") == 0) return perr(ps, "line %d: the task ID 'main' is reserved", no);
                if (!find_id(p->tids, p->ntids, tok)) VEC_PUSH(ps->A, p->tids, p->ntids, ((idrec){tok, no, NULL, 0}));
                o->id = tok;
            } else if (c == 'M' || c == 'T' || c == 'A') {
                o->id = tok;
            } else if (c == 'X') {
                o->x = tok;
            } else {
                o->name = tok;
            }
            add_ref(ps, no, c, tok);
        }
        j++;
    }
    if (j != nw) return BAD();
#undef BAD
    if (kw == K_AGEN) {
        idrec *r = find_id(p->aids, p->naids, o->id);
        if (!r) {
            VEC_PUSH(ps->A, p->aids, p->naids, ((idrec){o->id, no, NULL, 0}));
            r = &p->aids[p->naids - 1];
        }
        int have = 0;
        for (size_t k = 0; k < r->ngens; k++) have |= strcmp(r->gens[k], o->name) == 0;
        if (!have) VEC_PUSH(ps->A, r->gens, r->ngens, o->name);
    }
    return 0;
}

enum { CTX_EXCEPT = 1, CTX_SCOPE = 2, CTX_TG = 4 };

static const char *const END_ONLY[] = {"end", NULL};
static const char *const TRY_CLOSERS[] = {"except", "finally", "end", NULL};

static int parse_block(parser *ps, size_t *i, int ctx, const char *const *closers, int kind, int depth, block *out,
                       const char **closer);

static stmt *block_add(parser *ps, block *b, enum stmt_kind kind, int no) {
    if (b->n == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 4;
        b->v = a_grow(ps->A, b->v, b->cap * sizeof *b->v, ncap * sizeof *b->v);
        b->cap = ncap;
    }
    stmt *s = &b->v[b->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->line = no;
    return s;
}

static op *new_op(parser *ps, enum kw kw, char **w, size_t n, int no) {
    op *o = a_alloc(ps->A, sizeof *o);
    o->kw = kw;
    o->line = no;
    o->text = join_words(ps, w, n);
    return o;
}

/* A block that ends with `end` (async_ref.py's sub()). */
static int parse_sub(parser *ps, size_t *i, int ctx, int kind, int depth, int no, block *out) {
    const char *cl = NULL;
    if (parse_block(ps, i, ctx, END_ONLY, kind, depth, out, &cl)) return -1;
    if (!cl) return perr(ps, "line %d: block without end", no);
    ++*i; /* the reference steps over its `end` without looking */
    return 0;
}

static int parse_try(parser *ps, size_t *i, int ctx, int kind, int depth, int no, block *out) {
    lines *L = &ps->L;
    block body = {0}, final = {0};
    handler *hs = NULL;
    size_t nh = 0;
    int has_final = 0;
    const char *kw2 = NULL;
    if (parse_block(ps, i, ctx, TRY_CLOSERS, kind, depth, &body, &kw2)) return -1;
    while (kw2 && strcmp(kw2, "except") == 0) {
        line *l2 = &L->v[*i];
        const cg_exc_type *t = l2->n == 2 ? find_type(l2->w[1], 0) : NULL;
        if (!t) return perr(ps, "line %d: except takes one known type", l2->no);
        ++*i;
        handler h = {t, {0}};
        kw2 = NULL;
        if (parse_block(ps, i, ctx | CTX_EXCEPT, TRY_CLOSERS, kind, depth, &h.body, &kw2)) return -1;
        VEC_PUSH(ps->A, hs, nh, h);
    }
    if (kw2 && strcmp(kw2, "finally") == 0) {
        ++*i;
        has_final = 1;
        kw2 = NULL;
        if (parse_block(ps, i, ctx, END_ONLY, kind, depth, &final, &kw2)) return -1;
    }
    if (!kw2 || strcmp(kw2, "end") != 0) return perr(ps, "line %d: try without end", no);
    if (!nh && !has_final) return perr(ps, "line %d: try needs an except or a finally", no);
    ++*i;
    stmt *s = block_add(ps, out, S_TRY, no);
    s->body = body;
    s->handlers = hs;
    s->nhandlers = nh;
    s->final = final;
    s->has_final = has_final;
    return 0;
}

static int parse_block(parser *ps, size_t *i, int ctx, const char *const *closers, int kind, int depth, block *out,
                       const char **closer) {
    lines *L = &ps->L;
    *closer = NULL;
    while (*i < L->n) {
        line *ln = &L->v[*i];
        char **w = ln->w;
        size_t n = ln->n;
        int no = ln->no;
        const char *kw = w[0];
        for (const char *const *c = closers; *c; c++)
            if (strcmp(kw, *c) == 0) {
                *closer = *c;
                return 0;
            }
        ++*i;
        if (strcmp(kw, "yield") == 0) {
            if (kind != KIND_GEN) return perr(ps, "line %d: yield outside an async gen", no);
            if (ctx & CTX_SCOPE) return perr(ps, "line %d: yield inside a timeout or taskgroup block", no);
            if (n != 2) return perr(ps, "line %d: yield takes one value", no);
            value v;
            if (parse_value(ps, w[1], no, &v)) return -1;
            block_add(ps, out, S_YIELD, no)->val = v;
        } else if (strcmp(kw, "return") == 0) {
            if (n > 2) return perr(ps, "line %d: return takes at most one value", no);
            if (n == 2 && kind == KIND_GEN) return perr(ps, "line %d: return with a value in an async gen", no);
            value v = NULL;
            if (n == 2 && parse_value(ps, w[1], no, &v)) return -1;
            block_add(ps, out, S_RETURN, no)->val = v;
        } else if (strcmp(kw, "raise") == 0) {
            const cg_exc_type *t = (n == 2 || n == 3) ? find_type(w[1], 1) : NULL;
            if (!t || (n == 3 && !is_word(w[2])))
                return perr(ps, "line %d: raise takes a raisable type and an optional word", no);
            stmt *s = block_add(ps, out, S_RAISE, no);
            s->type = t;
            s->word = n == 3 ? w[2] : NULL;
        } else if (strcmp(kw, "reraise") == 0) {
            if (n != 1 || !(ctx & CTX_EXCEPT)) return perr(ps, "line %d: reraise outside an except block", no);
            block_add(ps, out, S_RERAISE, no);
        } else if (strcmp(kw, "log") == 0) {
            if (n != 2 || !is_word(w[1])) return perr(ps, "line %d: log takes one word", no);
            block_add(ps, out, S_LOG, no)->word = w[1];
        } else if (strcmp(kw, "logexc") == 0) {
            if (n != 1 || !(ctx & CTX_EXCEPT)) return perr(ps, "line %d: logexc outside an except block", no);
            block_add(ps, out, S_LOGEXC, no);
        } else if (strcmp(kw, "repeat") == 0) {
            if (n != 2) return perr(ps, "line %d: repeat takes a count", no);
            unsigned long long count;
            if (parse_num(ps, w[1], no, "a count", &count)) return -1;
            block body = {0};
            if (parse_sub(ps, i, ctx, kind, depth, no, &body)) return -1;
            stmt *s = block_add(ps, out, S_REPEAT, no);
            s->count = count;
            s->body = body;
        } else if (strcmp(kw, "try") == 0) {
            if (n != 1) return perr(ps, "line %d: try takes no argument", no);
            if (parse_try(ps, i, ctx, kind, depth, no, out)) return -1;
        } else if (strcmp(kw, "timeout") == 0) {
            if (n != 2) return perr(ps, "line %d: timeout takes a duration", no);
            unsigned long long ms;
            if (parse_num(ps, w[1], no, "milliseconds", &ms)) return -1;
            op *o = new_op(ps, K_TIMEOUT, w, n, no);
            o->ms = ms;
            block body = {0};
            if (parse_sub(ps, i, ctx | CTX_SCOPE, kind, depth, no, &body)) return -1;
            stmt *s = block_add(ps, out, S_BLOCK, no);
            s->op = o;
            s->body = body;
        } else if (strcmp(kw, "taskgroup") == 0) {
            if (n != 1) return perr(ps, "line %d: taskgroup takes no argument", no);
            op *o = new_op(ps, K_TASKGROUP, w, n, no);
            block body = {0};
            if (parse_sub(ps, i, ctx | CTX_SCOPE | CTX_TG, kind, depth + 1, no, &body)) return -1;
            stmt *s = block_add(ps, out, S_BLOCK, no);
            s->op = o;
            s->body = body;
            s->depth = depth + 1;
        } else if (strcmp(kw, "async_with") == 0 || strcmp(kw, "async_for") == 0) {
            int with = kw[6] == 'w';
            if (n != 2)
                return perr(ps, with ? "line %d: async_with takes a lock or semaphore"
                                     : "line %d: async_for takes an async generator ID", no);
            add_ref(ps, no, with ? 'L' : 'A', w[1]);
            op *o = new_op(ps, with ? K_ASYNC_WITH : K_ASYNC_FOR, w, n, no);
            if (with) o->name = w[1];
            else o->id = w[1];
            block body = {0};
            if (parse_sub(ps, i, ctx, kind, depth, no, &body)) return -1;
            stmt *s = block_add(ps, out, S_BLOCK, no);
            s->op = o;
            s->body = body;
        } else {
            enum kw k = K_NOPS;
            for (int q = 0; q < K_NOPS; q++)
                if (strcmp(kw, OPDEFS[q].kw) == 0) k = (enum kw)q;
            if (k == K_NOPS) return perr(ps, "line %d: unknown statement %s", no, repr_a(ps, kw));
            op *o = new_op(ps, k, w, n, no);
            if (op_args(ps, k, w, n, no, o)) return -1;
            if (k == K_TG_SPAWN) {
                if (!(ctx & CTX_TG)) return perr(ps, "line %d: tg_spawn outside a taskgroup block", no);
                o->tg = depth;
            }
            block_add(ps, out, S_OP, no)->op = o;
        }
    }
    return 0;
}

/* The operations of a body, blocks included (async_ref.py's ops_of). */
typedef void (*op_visit)(const op *o, void *ud);
static void ops_of(const block *b, op_visit fn, void *ud) {
    for (size_t i = 0; i < b->n; i++) {
        const stmt *s = &b->v[i];
        switch (s->kind) {
        case S_OP: fn(s->op, ud); break;
        case S_REPEAT: ops_of(&s->body, fn, ud); break;
        case S_TRY:
            ops_of(&s->body, fn, ud);
            for (size_t k = 0; k < s->nhandlers; k++) ops_of(&s->handlers[k].body, fn, ud);
            ops_of(&s->final, fn, ud);
            break;
        case S_BLOCK:
            fn(s->op, ud);
            ops_of(&s->body, fn, ud);
            break;
        default: break;
        }
    }
}

/* The call graph: an edge from a body to every async def it awaits (await,
 * wait_for) and every async gen it may iterate. */
typedef struct graph {
    const program *p;
    const char **out; /* the targets of the body being visited */
    size_t nout;
    arena *A;
} graph;

static void edge_add(graph *g, const char *to) {
    for (size_t i = 0; i < g->nout; i++)
        if (strcmp(g->out[i], to) == 0) return;
    VEC_PUSH(g->A, g->out, g->nout, to);
}

static void edges_of(const op *o, void *ud) {
    graph *g = ud;
    if (o->kw == K_AWAIT) {
        edge_add(g, o->name);
    } else if (o->kw == K_WAIT_FOR) {
        const def *d = find_def(g->p, o->x);
        if (d && d->kind == KIND_DEF) edge_add(g, o->x);
    } else if (o->kw == K_ANEXT || o->kw == K_ASEND || o->kw == K_ATHROW || o->kw == K_ACLOSE ||
               o->kw == K_ASYNC_FOR) {
        idrec *r = find_id(g->p->aids, g->p->naids, o->id);
        for (size_t k = 0; r && k < r->ngens; k++) edge_add(g, r->gens[k]);
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

typedef struct dfs {
    parser *ps;
    const char ***edges; /* per def, sorted */
    size_t *nedges;
    int *state;
    const char **path;
    size_t npath;
} dfs;

static int visit(dfs *d, size_t v) {
    const program *p = d->ps->prog;
    d->state[v] = 1;
    for (size_t k = 0; k < d->nedges[v]; k++) {
        const char *u = d->edges[v][k];
        const def *ud = find_def(p, u);
        if (!ud) continue;
        size_t ui = (size_t)(ud - p->defs);
        d->path[d->npath++] = u;
        if (d->state[ui] == 1) {
            str s = {0};
            for (size_t q = 0; q < d->npath; q++) {
                if (q) s_puts(&s, " -> ");
                s_puts(&s, d->path[q]);
            }
            perr(d->ps, "line %d: %s can run inside itself (%s)", ud->line, repr_a(d->ps, u), s_text(&s));
            free(s.p);
            return -1;
        }
        if (d->state[ui] == 0 && visit(d, ui)) return -1;
        d->npath--;
    }
    d->state[v] = 2;
    return 0;
}

static int check(parser *ps) {
    program *p = ps->prog;
    if (!p->main_name) return perr(ps, "line 1: no 'main NAME'");
    const def *md = find_def(p, p->main_name);
    if (!md || md->kind != KIND_DEF) return perr(ps, "line %d: main needs an async def", p->main_line);
    for (size_t i = 0; i < p->ntids; i++) {
        const char *t = p->tids[i].id;
        if (find_def(p, t) || find_obj(p, t))
            return perr(ps, "line %d: task ID %s is already a name", p->tids[i].line, repr_a(ps, t));
    }
    for (size_t i = 0; i < p->naids; i++) {
        const char *a = p->aids[i].id;
        if (find_def(p, a) || find_obj(p, a) || find_id(p->tids, p->ntids, a) || strcmp(a, "main") == 0)
            return perr(ps, "agen ID %s is already a name", repr_a(ps, a));
    }
    for (size_t i = 0; i < p->nrefs; i++) {
        const ref *r = &p->refs[i];
        const def *d = find_def(p, r->name);
        int kind = d ? d->kind : 0;
        const char *nm = repr_a(ps, r->name);
        if (r->cat == 'D' && kind != KIND_DEF) return perr(ps, "line %d: %s is not an async def", r->line, nm);
        if (r->cat == 'G' && kind != KIND_GEN) return perr(ps, "line %d: %s is not an async gen", r->line, nm);
        if ((r->cat == 'T' || r->cat == 'X') &&
            !(find_id(p->tids, p->ntids, r->name) || strcmp(r->name, "main") == 0 ||
              (r->cat == 'X' && kind == KIND_DEF)))
            return perr(ps, "line %d: %s is not a task ID%s", r->line, nm, r->cat == 'X' ? " or an async def" : "");
        if (r->cat == 'A' && !find_id(p->aids, p->naids, r->name))
            return perr(ps, "line %d: %s is not an async generator ID", r->line, nm);
        if (r->cat == 'Q' || r->cat == 'E' || r->cat == 'L') {
            const obj *o = find_obj(p, r->name);
            char have = !o ? 0 : o->decl == OBJ_QUEUE ? 'Q' : o->decl == OBJ_EVENT ? 'E' : 'L';
            if (have != r->cat)
                return perr(ps, "line %d: %s is not a declared %s", r->line, nm,
                            r->cat == 'Q' ? "queue" : r->cat == 'E' ? "event" : "lock or semaphore");
        }
    }
    /* No body may run inside itself. */
    size_t nd = p->ndefs;
    dfs d = {ps, a_alloc(ps->A, (nd + 1) * sizeof(const char **)), a_alloc(ps->A, (nd + 1) * sizeof(size_t)),
             a_alloc(ps->A, (nd + 1) * sizeof(int)), a_alloc(ps->A, (nd + 2) * sizeof(const char *)), 0};
    for (size_t i = 0; i < nd; i++) {
        graph g = {p, NULL, 0, ps->A};
        ops_of(&p->defs[i].body, edges_of, &g);
        if (g.nout) qsort(g.out, g.nout, sizeof *g.out, cmp_str);
        d.edges[i] = g.out;
        d.nedges[i] = g.nout;
    }
    const def **order = a_alloc(ps->A, (nd + 1) * sizeof *order);
    for (size_t i = 0; i < nd; i++) order[i] = &p->defs[i];
    const char **names = a_alloc(ps->A, (nd + 1) * sizeof *names);
    for (size_t i = 0; i < nd; i++) names[i] = p->defs[i].name;
    qsort(names, nd, sizeof *names, cmp_str);
    for (size_t i = 0; i < nd; i++) {
        size_t v = (size_t)(find_def(p, names[i]) - p->defs);
        if (d.state[v]) continue;
        d.npath = 0;
        d.path[d.npath++] = names[i];
        if (visit(&d, v)) return -1;
    }
    (void)order;
    return 0;
}

static int parse(parser *ps, const char *text, size_t size) {
    program *p = ps->prog;
    const unsigned char *u = (const unsigned char *)text;
    size_t ok = utf8_valid_len(u, u + size);
    if (ok < size) { /* the reference cannot even read such a file */
        int no = 1;
        for (const unsigned char *q = u; q < u + ok;) {
            size_t br = linebreak_len(q, u + ok);
            if (br && no < INT32_MAX) no++;
            q += br ? br : 1;
        }
        return perr(ps, "line %d: not UTF-8 (byte 0x%02x)", no, u[ok]);
    }
    lex(ps->A, text, size, &ps->L);
    lines *L = &ps->L;
    size_t i = 0;
    while (i < L->n) {
        line *ln = &L->v[i];
        char **w = ln->w;
        size_t n = ln->n;
        int no = ln->no;
        if (strcmp(w[0], "async") == 0 && n == 3 && (strcmp(w[1], "def") == 0 || strcmp(w[1], "gen") == 0)) {
            const char *name = w[2];
            if (!is_word(name) || find_def(p, name) || find_obj(p, name))
                return perr(ps, "line %d: async %s takes one new name", no, w[1]);
            def d = {name, w[1][0] == 'd' ? KIND_DEF : KIND_GEN, no, {0}, 0};
            const char *cl = NULL;
            i++;
            if (parse_block(ps, &i, 0, END_ONLY, d.kind, 0, &d.body, &cl)) return -1;
            if (!cl) return perr(ps, "line %d: async %s without end", no, w[1]);
            VEC_PUSH(ps->A, p->defs, p->ndefs, d);
            i++;
            continue;
        }
        int decl = 0;
        for (int k = 1; k <= OBJ_BOUNDED; k++)
            if (strcmp(w[0], DECL_WORDS[k]) == 0) decl = k;
        if (decl) {
            int nok = decl == OBJ_QUEUE ? (n == 2 || n == 3) : decl == OBJ_EVENT || decl == OBJ_LOCK ? n == 2 : n == 3;
            if (!nok || !is_word(w[1]) || find_obj(p, w[1]) || find_def(p, w[1]))
                return perr(ps, "line %d: bad declaration", no);
            unsigned long long param = 0;
            if (n == 3 && parse_num(ps, w[2], no, "a number", &param)) return -1;
            VEC_PUSH(ps->A, p->objs, p->nobjs, ((obj){w[1], decl, param, no, NULL}));
        } else if (strcmp(w[0], "main") == 0) {
            if (n != 2 || p->main_name) return perr(ps, "line %d: exactly one 'main NAME' is needed", no);
            p->main_name = w[1];
            p->main_line = no;
        } else {
            return perr(ps, "line %d: unknown top-level item %s", no, repr_a(ps, w[0]));
        }
        i++;
    }
    return check(ps);
}

/* ---------------------------------------------------------------------
 * The run's state
 * ------------------------------------------------------------------ */

/* async_ref.py's limits. */
#define MAX_TIME 10000000ll /* virtual ms */
#define MAX_EVENTS 20000    /* trace lines */
#define MAX_TICKS 200000    /* repeat iterations, all bodies together */
/* A coroutine's stack: STACK_BASE, plus STACK_PER_LEVEL for each block its
 * body nests (set_stacks). */
#define STACK_BASE (128u * 1024u)
#define STACK_PER_LEVEL (4u * 1024u)

/* A task of the run, kept (with a reference) from its creation until the
 * end-of-run reports, in creation order. */
typedef struct trec {
    cg_task *t;
    struct trec *joining; /* the task it awaits in a `join` now, or NULL */
    int no_pending_report; /* asyncio exempts it from 'destroyed but pending' */
    int must_cancel;      /* mirrors Task._must_cancel while the task runs */
} trec;

typedef struct binding {
    const char *id;
    trec *rec;
} binding;

typedef struct runner {
    program *prog;
    cg_loop *loop;
    str out;          /* the trace, printed at the end (nothing on an error) */
    size_t nout;
    unsigned long ticks;
    int closing;      /* the loop is being freed: print nothing, run nothing */
    int aborted;      /* the run is rejected (abort_msg): unwind everything */
    str abort_msg;
    trec **tasks;     /* every task of the run, in creation order */
    size_t ntasks, captasks;
    binding *binds;   /* ID -> its task now */
    size_t nbinds, capbinds;
    struct gather_all *stuck; /* a shutdown that deadlocked (cancel_all) */
} runner;

static runner R;

static void *xmalloc(size_t n) { return xrealloc(NULL, n); }

static void s_vprintf_simple(str *s, int line, const char *why) {
    char head[32];
    snprintf(head, sizeof head, "line %d: ", line);
    s_puts(s, head);
    s_puts(s, why);
}

/* Rejects the scenario, as async_ref.py rejects it (status 2, the message
 * naming a line). On the thread's own stack, at once. In a task, the loop
 * is stopped and the task unwinds (ScenarioAbort; every task that runs
 * after it too); run_main then frees the loop and reports: exiting from a
 * task's stack would leave what main's frame holds unreachable for leak
 * checkers. */
static void abort_report(void) {
    fprintf(stderr, "scenario error: %s\n", s_text(&R.abort_msg));
    fflush(stderr);
}

/* The rejection without the unwinding: for ev(), whose callers go on to
 * their next statement, where ScenarioAbort is raised (exec_block). */
/* The rejection without exiting, also on the thread's own stack: the
 * loop stops after this iteration and run_main frees what the tasks hold
 * (run_aborted), so that nothing leaks. */
static void reject_soon(const char *why) {
    if (!R.aborted) {
        R.aborted = 1;
        if (strncmp(why, "line ", 5) == 0)
            s_puts(&R.abort_msg, why);
        else
            s_vprintf_simple(&R.abort_msg, R.prog->main_line, why);
    }
    if (R.loop) cg_loop_stop(R.loop);
}

static void reject(const char *why) {
    reject_soon(why);
    if (!cg_current()) {
        abort_report();
        exit(2);
    }
}

static void scenario_abort(const char *why) {
    reject(why);
    CG_RAISE(&ScenarioAbort, NULL);
}

static long long now_ms(void) { return (long long)(cg_loop_time(R.loop) / 1000000); }

/* fmt_exc(): Type('word') <- context, at most 9 deep; a group lists its
 * members, `ExceptionGroup('msg', [EXC, EXC])`, entering one counting as a
 * link, as async_ref.py's fmt_exc. */
static void fmt_exc_at(str *s, const cg_exc *e, int depth) {
    s_puts(s, cg_exc_type_of(e)->name);
    s_putc(s, '(');
    if (cg_exc_msg(e)) s_repr(s, cg_exc_msg(e));
    if (cg_exc_is(e, &cg_BaseExceptionGroup)) {
        s_puts(s, ", [");
        for (size_t i = 0; i < cg_exc_group_count(e); i++) {
            if (i) s_puts(s, ", ");
            fmt_exc_at(s, cg_exc_group_at(e, i), depth + 1);
        }
        s_putc(s, ']');
    }
    s_putc(s, ')');
    if (cg_exc_context(e) && depth < 8) {
        s_puts(s, " <- ");
        fmt_exc_at(s, cg_exc_context(e), depth + 1);
    }
}

static void fmt_exc(str *s, const cg_exc *e) { fmt_exc_at(s, e, 0); }

static void value_text(str *s, value v) { s_puts(s, v ? v : "None"); }

/* COGEN_SCENARIO_DUMP=FILE: before each trace line a task prints, the
 * loop's task dump goes to FILE after a line "@ TASK" (the property test
 * tests/trace_property.py checks the dumps of random scenarios). */
static FILE *dump_file;

/* One trace line, `T TASK: EVENT`, at the loop's time, named after the
 * task running now. */
#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void ev(const char *fmt, ...) {
    if (R.closing || R.aborted) return;
    long long t = now_ms();
    if (t > MAX_TIME) {
        reject("the run goes past 10000000 ms of virtual time");
        return;
    }
    cg_task *cur = cg_current_task();
    if (dump_file && cur) {
        fprintf(dump_file, "@ %s\n", cg_task_name(cur));
        cg_loop_dump_tasks(NULL, dump_file);
    }
    char head[64];
    size_t start = R.out.len;
    snprintf(head, sizeof head, "%4lld ", t);
    s_puts(&R.out, head);
    s_puts(&R.out, cur ? cg_task_name(cur) : "-");
    s_puts(&R.out, ": ");
    va_list ap;
    va_start(ap, fmt);
    s_vprintf(&R.out, fmt, ap);
    va_end(ap);
    if (strstr(R.out.p + start, "RecursionError(")) {
        /* Task.cancel() went round a cycle of tasks awaiting each other
         * (the loop raises RecursionError there, as CPython does): the
         * reference rejects the run at the first event that shows it. */
        R.out.len = start;
        R.out.p[start] = '\0';
        reject_soon("Python's recursion limit was hit (tasks wait for each other in a cycle and one is cancelled)");
        return;
    }
    s_putc(&R.out, '\n');
    if (++R.nout > MAX_EVENTS) reject("the run exceeds 20000 trace lines");
}

static trec *rec_of(const cg_future *f) {
    for (size_t i = 0; i < R.ntasks; i++)
        if (cg_task_future(R.tasks[i]->t) == f) return R.tasks[i];
    return NULL;
}

static trec *track(cg_task *t);

/* The running task's record. A task the loop made itself (the aclose()
 * tasks of shutdown_asyncgens) is adopted when it first runs an operation;
 * asyncio exempts such tasks from 'destroyed but pending'. */
static trec *current_rec(void) {
    cg_task *t = cg_current_task();
    if (!t) return NULL;
    trec *r = rec_of(cg_task_future(t));
    if (!r) {
        r = track((cg_task *)cg_future_ref(cg_task_future(t)));
        r->no_pending_report = 1;
    }
    return r;
}

static trec *track(cg_task *t) {
    trec *r = xmalloc(sizeof *r);
    memset(r, 0, sizeof *r);
    r->t = t;
    if (R.ntasks == R.captasks) {
        R.captasks = R.captasks ? R.captasks * 2 : 16;
        R.tasks = xrealloc(R.tasks, R.captasks * sizeof *R.tasks);
    }
    R.tasks[R.ntasks++] = r;
    return r;
}

static void bind(const char *id, trec *rec) {
    for (size_t i = 0; i < R.nbinds; i++)
        if (strcmp(R.binds[i].id, id) == 0) {
            R.binds[i].rec = rec;
            return;
        }
    if (R.nbinds == R.capbinds) {
        R.capbinds = R.capbinds ? R.capbinds * 2 : 16;
        R.binds = xrealloc(R.binds, R.capbinds * sizeof *R.binds);
    }
    R.binds[R.nbinds++] = (binding){id, rec};
}

/* The task an ID (or `main`) names now, or NULL before its first spawn. */
static trec *lookup(const char *id) {
    for (size_t i = 0; i < R.nbinds; i++)
        if (strcmp(R.binds[i].id, id) == 0) return R.binds[i].rec;
    return NULL;
}

static const char *agen_id_of(const cg_agen *ag);

/* The exception handler: `handler MESSAGE [NAME] EXC`. */
static void on_exception(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop;
    (void)ud;
    if (R.closing || R.aborted) return;
    str s = {0};
    s_puts(&s, ctx->message ? ctx->message : "");
    if (ctx->future) {
        trec *r = rec_of(ctx->future);
        s_puts(&s, " [");
        s_puts(&s, r ? cg_task_name(r->t) : "Future");
        s_putc(&s, ']');
    } else if (ctx->asyncgen) { /* the message ends with the repr asyncio would print */
        const char *id = agen_id_of(ctx->asyncgen);
        s_putc(&s, ' ');
        s_puts(&s, id);
        s_puts(&s, " [");
        s_puts(&s, id);
        s_putc(&s, ']');
    }
    if (ctx->exception) {
        s_putc(&s, ' ');
        fmt_exc(&s, ctx->exception);
    }
    ev("handler %s", s_text(&s));
    free(s.p);
}

/* The tasks a task awaiting a gather passes a cancellation on to (the
 * gather's children, through _GatheringFuture.cancel): kept while it
 * awaits (op_gather). */
static size_t gather_kids(const trec *r, trec *const **kids);

/* Task.cancel() forwards the request to what the task awaits: the task it
 * joins, every child of the gather it awaits, and on: with tasks waiting
 * for each other in a cycle, asyncio recurses until Python's recursion
 * limit (the reference rejects the scenario), cogen until its stack ends.
 * Found before it happens: a depth-first walk from r that meets a task
 * already on its path. */
static int cancel_would_cycle(trec *r) {
    typedef struct step {
        trec *t;
        size_t next; /* the next edge to follow: 0 the join, 1.. the gather's */
    } step;
    if (!r || cg_future_done(cg_task_future(r->t))) return 0;
    step *path = xmalloc((R.ntasks + 1) * sizeof *path);
    size_t n = 0;
    int cycle = 0;
    path[n++] = (step){r, 0};
    while (n && !cycle) {
        step *top = &path[n - 1];
        trec *const *kids = NULL;
        size_t nk = gather_kids(top->t, &kids);
        if (top->next > nk) {
            n--;
            continue;
        }
        trec *u = top->next == 0 ? top->t->joining : kids[top->next - 1];
        top->next++;
        if (!u || cg_future_done(cg_task_future(u->t))) continue;
        for (size_t i = 0; i < n && !cycle; i++) cycle = path[i].t == u;
        if (!cycle && n <= R.ntasks) path[n++] = (step){u, 0};
    }
    free(path);
    return cycle;
}

/* ---------------------------------------------------------------------
 * The interpreter
 * ------------------------------------------------------------------ */

enum { NORMAL = 0, RETURN = 1 };

/* One running body: which def. */
struct frame {
    const def *d;
};

/* What an operation gives back: its RESULT text, or `missing`. */
struct opres {
    str s;
    int missing;
};

static int exec_block(frame *f, const block *b, value *ret);
static value run_def(const def *d);

/* An operation: performed by its function; one event when it ends. */
static void run_op(frame *f, const op *o) {
    opres r = {{0}, 0};
    CG_TRY {
        OPDEFS[o->kw].run(f, o, &r);
    } CG_EXCEPT(&cg_BaseException, e) {
        free(r.s.p);
        r.s.p = NULL;
        str t = {0};
        fmt_exc(&t, e);
        ev("%s -> raised %s", o->text, s_text(&t));
        free(t.p);
        cg_reraise();
    } CG_END;
    ev("%s -> %s", o->text, r.missing ? "missing" : s_text(&r.s));
    free(r.s.p);
}

static trec *task_arg(const op *o, opres *r) {
    trec *t = lookup(o->id);
    if (!t) r->missing = 1;
    return t;
}

/* -- tasks ---------------------------------------------------------- */

/* A task's body: the coroutine of its async def (arg). */
static void *task_body(cg_gen *g, void *arg) {
    (void)g;
    return (void *)run_def(arg);
}

static cg_task *new_task(const def *d, const char *name) {
    cg_task_opts to = {name, d->stack, 0};
    cg_task *t = cg_task_new(R.loop, task_body, (void *)d, &to);
    if (!t) {
        fputs("cogen-async-scenario: cannot make a task\n", stderr);
        exit(1);
    }
    return t;
}

static void op_spawn(frame *f, const op *o, opres *r) {
    (void)f;
    cg_task *t = new_task(find_def(R.prog, o->name), o->id);
    bind(o->id, track(t));
    s_puts(&r->s, cg_task_name(t));
}

static void clear_joining(void *p) { ((trec *)p)->joining = NULL; }
static void resumed(void *p) { ((trec *)p)->must_cancel = 0; }

static const char CYCLE[] =
    "Python's recursion limit was hit (tasks wait for each other in a cycle and one is cancelled)";

/* join's checks for a task the running task is about to await: not
 * itself, and no cancellation that would go round a cycle of joins. */
static trec *await_task_checks(const op *o, trec *t) {
    trec *me = current_rec();
    if (t == me) {
        char why[128];
        snprintf(why, sizeof why, "line %d: a task awaits itself (asyncio's message would contain a source location)",
                 o->line);
        scenario_abort(why);
    }
    /* A task with a cancel request pending that starts waiting forwards the
     * request to what it awaits (Task.__step): around a cycle, for ever. */
    if (me->must_cancel) {
        me->joining = t;
        int cycle = cancel_would_cycle(t);
        me->joining = NULL;
        if (cycle) scenario_abort(CYCLE);
    }
    return me;
}

static void op_join(frame *f, const op *o, opres *r) {
    (void)f;
    trec *t = task_arg(o, r);
    if (!t) return;
    trec *me = await_task_checks(o, t);
    int suspends = !cg_future_done(cg_task_future(t->t));
    me->joining = t;
    CG_DEFER(clear_joining, me);
    CG_DEFER(suspends ? resumed : NULL, me);
    value v = cg_await(cg_task_future(t->t));
    value_text(&r->s, v);
}

static void op_cancel(frame *f, const op *o, opres *r) {
    (void)f;
    trec *t = task_arg(o, r);
    if (!t) return;
    if (cancel_would_cycle(t)) scenario_abort(CYCLE);
    /* Where the request lands: down the chain of joins, at the first task
     * that does not wait for a pending task; if that is the running task,
     * it keeps the request for its next suspension (_must_cancel). */
    trec *me = current_rec(), *x = t;
    while (!cg_future_done(cg_task_future(x->t)) && x->joining && !cg_future_done(cg_task_future(x->joining->t)))
        x = x->joining;
    if (x == me && !x->joining) me->must_cancel = 1;
    s_puts(&r->s, cg_task_cancel(t->t, o->word) ? "True" : "False");
}

static void op_cancelling(frame *f, const op *o, opres *r) {
    (void)f;
    trec *t = task_arg(o, r);
    if (!t) return;
    char buf[32];
    snprintf(buf, sizeof buf, "%d", cg_task_cancelling(t->t));
    s_puts(&r->s, buf);
}

static void op_uncancel(frame *f, const op *o, opres *r) {
    (void)f;
    trec *t = task_arg(o, r);
    if (!t) return;
    char buf[32];
    int n = cg_task_uncancel(t->t);
    if (n == 0) t->must_cancel = 0; /* Task.uncancel withdraws the request */
    snprintf(buf, sizeof buf, "%d", n);
    s_puts(&r->s, buf);
}

static void op_state(frame *f, const op *o, opres *r) {
    (void)f;
    trec *t = task_arg(o, r);
    if (!t) return;
    cg_future *fu = cg_task_future(t->t);
    s_puts(&r->s, cg_future_cancelled(fu) ? "cancelled" : cg_future_done(fu) ? "done" : "pending");
}

static void op_result(frame *f, const op *o, opres *r) {
    (void)f;
    trec *t = task_arg(o, r);
    if (!t) return;
    value_text(&r->s, cg_future_result(cg_task_future(t->t)));
}

/* -- waiting -------------------------------------------------------- */

static void op_sleep(frame *f, const op *o, opres *r) {
    (void)f;
    /* Durations past the virtual time limit only need to be beyond it. */
    unsigned long long ms = o->ms > (unsigned long long)MAX_TIME * 2 ? (unsigned long long)MAX_TIME * 2 : o->ms;
    CG_DEFER(resumed, current_rec());
    cg_sleep(CG_MS(ms));
    s_puts(&r->s, "None");
}

/* The coroutine of an `await`, delegated to (yield from): it has its own
 * frame, as in Python, so an exception thrown into the task (a
 * cancellation, the exception of what it awaits) is chained, at each
 * coroutine it passes through, to the exception that coroutine itself is
 * handling (CPython's _PyErr_ChainStackItem), not to what an outer one
 * handles. A plain C call would chain it to the innermost exception being
 * handled anywhere on the task's stack. */
static void *await_body(cg_gen *g, void *arg) {
    (void)g;
    return (void *)run_def(arg);
}

static void op_await(frame *f, const op *o, opres *r) {
    (void)f;
    const def *d = find_def(R.prog, o->name);
    cg_opts go = {d->stack, d->name, 0};
    value v = cg_yield_from_new(cg_current(), await_body, (void *)d, &go);
    value_text(&r->s, v);
}

/* -- queues, events, locks and semaphores ---------------------------- */

static obj *obj_arg(const op *o) { return find_obj(R.prog, o->name); }

static void op_put(frame *f, const op *o, opres *r) {
    (void)f;
    CG_DEFER(resumed, current_rec());
    cg_queue_put(obj_arg(o)->rt, (void *)o->val);
    s_puts(&r->s, "None");
}

static void op_get(frame *f, const op *o, opres *r) {
    (void)f;
    CG_DEFER(resumed, current_rec());
    value_text(&r->s, cg_queue_get(obj_arg(o)->rt));
}

static void op_put_nowait(frame *f, const op *o, opres *r) {
    (void)f;
    cg_queue_put_nowait(obj_arg(o)->rt, (void *)o->val);
    s_puts(&r->s, "None");
}

static void op_get_nowait(frame *f, const op *o, opres *r) {
    (void)f;
    value_text(&r->s, cg_queue_get_nowait(obj_arg(o)->rt));
}

static void op_task_done(frame *f, const op *o, opres *r) {
    (void)f;
    cg_queue_task_done(obj_arg(o)->rt);
    s_puts(&r->s, "None");
}

static void op_qjoin(frame *f, const op *o, opres *r) {
    (void)f;
    CG_DEFER(resumed, current_rec());
    cg_queue_join(obj_arg(o)->rt);
    s_puts(&r->s, "None");
}

static void op_qsize(frame *f, const op *o, opres *r) {
    (void)f;
    char buf[32];
    snprintf(buf, sizeof buf, "%zu", cg_queue_qsize(obj_arg(o)->rt));
    s_puts(&r->s, buf);
}

static void op_qshutdown(frame *f, const op *o, opres *r) {
    (void)f;
    cg_queue_shutdown(obj_arg(o)->rt, o->immediate);
    s_puts(&r->s, "None");
}

static void op_set(frame *f, const op *o, opres *r) {
    (void)f;
    cg_event_set(obj_arg(o)->rt);
    s_puts(&r->s, "None");
}

static void op_clear(frame *f, const op *o, opres *r) {
    (void)f;
    cg_event_clear(obj_arg(o)->rt);
    s_puts(&r->s, "None");
}

static void op_is_set(frame *f, const op *o, opres *r) {
    (void)f;
    s_puts(&r->s, cg_event_is_set(obj_arg(o)->rt) ? "True" : "False");
}

static void op_wait_event(frame *f, const op *o, opres *r) {
    (void)f;
    CG_DEFER(resumed, current_rec());
    s_puts(&r->s, cg_event_wait(obj_arg(o)->rt) ? "True" : "False");
}

static void op_acquire(frame *f, const op *o, opres *r) {
    (void)f;
    obj *b = obj_arg(o);
    CG_DEFER(resumed, current_rec());
    int v = b->decl == OBJ_LOCK ? cg_lock_acquire(b->rt) : cg_semaphore_acquire(b->rt);
    s_puts(&r->s, v ? "True" : "False");
}

static void op_release(frame *f, const op *o, opres *r) {
    (void)f;
    obj *b = obj_arg(o);
    if (b->decl == OBJ_LOCK)
        cg_lock_release(b->rt);
    else
        cg_semaphore_release(b->rt);
    s_puts(&r->s, "None");
}

static void op_locked(frame *f, const op *o, opres *r) {
    (void)f;
    obj *b = obj_arg(o);
    int v = b->decl == OBJ_LOCK ? cg_lock_locked(b->rt) : cg_semaphore_locked(b->rt);
    s_puts(&r->s, v ? "True" : "False");
}

/* -- structured concurrency: gather, wait, wait_for, shield, timeout,
 *    taskgroup ------------------------------------------------------- */

/* The futures that gather and shield return, kept until the end of the run
 * as the reference keeps every object alive (the loop's gather and shield
 * go on retrieving their children's exceptions without it, but a future
 * freed early would make its own reports at another time). Released
 * before the end-of-run reports (release_kept), so that the runner's own
 * reference to each task is the last one then. */
static cg_future **kept;
static size_t nkept, capkept;

static cg_future *keep(cg_future *f) {
    if (nkept == capkept) {
        capkept = capkept ? capkept * 2 : 16;
        kept = xrealloc(kept, capkept * sizeof *kept);
    }
    kept[nkept++] = f;
    return f;
}

static void release_kept(void) {
    int closing = R.closing;
    R.closing = 1; /* no 'Future exception was never retrieved' now */
    for (size_t i = 0; i < nkept; i++) cg_future_unref(kept[i]);
    R.closing = closing;
    free(kept);
    kept = NULL;
    nkept = capkept = 0;
}

/* A task asyncio makes itself for a coroutine argument (ensure_future):
 * unnamed, so the loop names it Task-N. gather exempts its tasks from
 * 'Task was destroyed but it is pending!'; shield and wait_for do not. */
static trec *coro_task(const def *d, int exempt) {
    trec *r = track(new_task(d, NULL));
    r->no_pending_report = exempt;
    return r;
}

/* The ARGs of gather and wait: each a task now bound to an ID, or a
 * coroutine (its def) not made into a task yet; malloc'd. NULL, and the
 * op's result `missing`, when an ID is not bound yet. */
typedef struct xarg {
    trec *t;
    const def *d;
} xarg;

static xarg *xargs_of(const op *o, opres *r) {
    xarg *xs = xmalloc(o->nxs * sizeof *xs);
    for (size_t i = 0; i < o->nxs; i++) {
        const def *d = find_def(R.prog, o->xs[i]);
        xs[i] = (xarg){d && d->kind == KIND_DEF ? NULL : lookup(o->xs[i]), d && d->kind == KIND_DEF ? d : NULL};
        if (!xs[i].t && !xs[i].d) {
            free(xs);
            r->missing = 1;
            return NULL;
        }
    }
    return xs;
}

static void xargs_free(void *p) { free(p); }

/* cg_await(f), resetting the must_cancel mirror when it suspends. */
static void *await_kept(cg_future *f) {
    int suspends = !cg_future_done(f);
    CG_DEFER(suspends ? resumed : NULL, current_rec());
    return cg_await(f);
}

/* A list of the scopes being run (gathers awaited, taskgroup blocks),
 * newest first; thousands may be open at once, so a node leaves in O(1),
 * whatever its place. The nodes are on the heap, not on the stacks of the
 * tasks running them: other tasks read them while those wait, and a
 * waiting task's stack is swapped out in compact mode (COGEN_COMPACT). */
typedef struct scope_link {
    struct scope_link *next, **pprev; /* pprev: the pointer to this node */
} scope_link;

static void link_push(scope_link **head, scope_link *n) {
    n->next = *head;
    n->pprev = head;
    if (*head) (*head)->pprev = &n->next;
    *head = n;
}

static void link_pop(void *p) {
    scope_link *n = p;
    *n->pprev = n->next;
    if (n->next) n->next->pprev = n->pprev;
    free(n);
}

/* The gathers being awaited: who awaits, the gather future, its children
 * that are tasks (for cancel_would_cycle). */
typedef struct gwait {
    scope_link link; /* first */
    const trec *who;
    cg_future *outer;
    trec **kids;
    size_t n;
} gwait;

static scope_link *gwaits;

static size_t gather_kids(const trec *r, trec *const **kids) {
    for (scope_link *l = gwaits; l; l = l->next) {
        gwait *w = (gwait *)l;
        if (w->who == r && !cg_future_done(w->outer)) {
            *kids = w->kids;
            return w->n;
        }
    }
    return 0;
}

static void op_gather(frame *f, const op *o, opres *r) {
    (void)f;
    xarg *xs = xargs_of(o, r);
    if (!xs) return;
    CG_DEFER(xargs_free, xs);
    cg_future **fs = xmalloc(o->nxs * sizeof *fs);
    CG_DEFER(xargs_free, fs);
    trec **kids = xmalloc(o->nxs * sizeof *kids);
    CG_DEFER(xargs_free, kids);
    for (size_t i = 0; i < o->nxs; i++) {
        kids[i] = xs[i].t ? xs[i].t : coro_task(xs[i].d, 1);
        fs[i] = cg_task_future(kids[i]->t);
    }
    cg_future *g = keep(cg_gather(fs, o->nxs, o->return_exceptions));
    trec *me = current_rec();
    gwait *w = xmalloc(sizeof *w);
    *w = (gwait){{NULL, NULL}, me, g, kids, o->nxs};
    link_push(&gwaits, &w->link);
    CG_DEFER(link_pop, &w->link);
    /* A cancel request pending when the task starts waiting goes on to the
     * gather's children at once (Task.__step). */
    if (me->must_cancel && !cg_future_done(g) && cancel_would_cycle(me)) scenario_abort(CYCLE);
    const cg_gathered *res = await_kept(g);
    s_putc(&r->s, '[');
    for (size_t i = 0; i < res->n; i++) {
        if (i) s_puts(&r->s, ", ");
        if (res->excs[i])
            fmt_exc(&r->s, res->excs[i]);
        else
            value_text(&r->s, res->values[i]);
    }
    s_putc(&r->s, ']');
}

static int cmp_task_name(const void *a, const void *b) {
    return strcmp(cg_task_name(*(cg_task *const *)a), cg_task_name(*(cg_task *const *)b));
}

static void put_names(str *s, cg_future **v, size_t n) {
    qsort(v, n, sizeof *v, cmp_task_name);
    s_putc(s, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) s_puts(s, ", ");
        s_puts(s, cg_task_name((cg_task *)v[i]));
    }
    s_putc(s, ']');
}

static unsigned long long clamp_ms(unsigned long long ms) {
    return ms > (unsigned long long)MAX_TIME * 2 ? (unsigned long long)MAX_TIME * 2 : ms;
}

/* wait ... first_exception on tasks all done already, two or more, one
 * with an exception nobody retrieved: which one asyncio.wait retrieves
 * depends on the order of a set, so the reference rejects the scenario. */
static void check_wait_order(const op *o, cg_future **fs, size_t n) {
    size_t distinct = 0;
    int all_done = 1, unretrieved = 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = 0;
        while (j < i && fs[j] != fs[i]) j++;
        if (j < i) continue;
        distinct++;
        all_done &= cg_future_done(fs[i]);
        unretrieved |= cg_future_unretrieved(fs[i]);
    }
    if (o->mode == MODE_FIRST_EXCEPTION && distinct > 1 && all_done && unretrieved) {
        char why[256];
        snprintf(why, sizeof why,
                 "line %d: wait first_exception on tasks that are all done, one with an unretrieved exception: "
                 "which exception asyncio.wait marks retrieved depends on set order",
                 o->line);
        scenario_abort(why);
    }
}

static void op_wait(frame *f, const op *o, opres *r) {
    (void)f;
    xarg *xs = xargs_of(o, r);
    if (!xs) return;
    CG_DEFER(xargs_free, xs);
    cg_future **fs = xmalloc(3 * o->nxs * sizeof *fs);
    CG_DEFER(xargs_free, fs);
    int coros = 0;
    for (size_t i = 0; i < o->nxs; i++) {
        coros |= xs[i].d != NULL;
        fs[i] = xs[i].t ? cg_task_future(xs[i].t->t) : NULL;
    }
    if (!coros) check_wait_order(o, fs, o->nxs);
    if (coros) CG_RAISE(&cg_TypeError, "Passing coroutines is forbidden, use tasks explicitly.");
    static const cg_return_when WHEN[] = {CG_ALL_COMPLETED, CG_FIRST_COMPLETED, CG_FIRST_EXCEPTION};
    cg_future **done = fs + o->nxs, **pending = fs + 2 * o->nxs;
    size_t nd = 0, np = 0;
    CG_DEFER(resumed, current_rec());
    cg_wait(fs, o->nxs, WHEN[o->mode], o->has_timeout ? CG_MS(clamp_ms(o->timeout)) : CG_NEVER, done, &nd, pending,
            &np);
    s_puts(&r->s, "done=");
    put_names(&r->s, done, nd);
    s_puts(&r->s, " pending=");
    put_names(&r->s, pending, np);
}

/* `await NAME()` inside wait_for's timeout scope: a coroutine of its own,
 * delegated to as op_await does. */
static void *wait_for_coro(cg_gen *g, void *arg) {
    const def *d = arg;
    cg_opts go = {d->stack, d->name, 0};
    return cg_yield_from_new(g, await_body, (void *)d, &go);
}

static void op_wait_for(frame *f, const op *o, opres *r) {
    (void)f;
    const def *d = find_def(R.prog, o->x);
    trec *t = d && d->kind == KIND_DEF ? NULL : task_arg(&(op){.id = o->x}, r);
    if (!d && !t) return;
    cg_ns delay = CG_MS(clamp_ms(o->ms));
    value v;
    if (t) {
        trec *me = await_task_checks(o, t);
        if (o->ms) me->joining = t; /* Task.cancel reaches t through the await */
        CG_DEFER(clear_joining, me);
        CG_DEFER(resumed, me);
        v = cg_wait_for(cg_task_future(t->t), delay);
    } else if (o->ms == 0) {
        cg_future *fu = cg_task_future(coro_task(d, 0)->t);
        CG_DEFER(resumed, current_rec());
        v = cg_wait_for(fu, 0);
    } else {
        CG_DEFER(resumed, current_rec());
        v = cg_wait_for_body(wait_for_coro, (void *)d, delay);
    }
    value_text(&r->s, v);
}

static void op_shield(frame *f, const op *o, opres *r) {
    (void)f;
    const def *d = find_def(R.prog, o->x);
    trec *t = d && d->kind == KIND_DEF ? coro_task(d, 0) : task_arg(&(op){.id = o->x}, r);
    if (!t) return;
    value_text(&r->s, await_kept(keep(cg_shield(cg_task_future(t->t)))));
}

/* The taskgroup blocks being run: tg_spawn finds its group by its body's
 * frame and the block's nesting depth (op.tg). */
typedef struct tgscope {
    scope_link link; /* first */
    const frame *f;
    int depth;
    cg_taskgroup *tg;
} tgscope;

static scope_link *tgscopes;

static void op_tg_spawn(frame *f, const op *o, opres *r) {
    tgscope *sc = (tgscope *)tgscopes;
    while (sc->f != f || sc->depth != o->tg) sc = (tgscope *)sc->link.next;
    const def *d = find_def(R.prog, o->name);
    cg_task_opts to = {o->id, d->stack, 0};
    cg_task *t = cg_taskgroup_spawn_opts(sc->tg, task_body, (void *)d, &to);
    bind(o->id, track(t));
    s_puts(&r->s, cg_task_name(t));
}

/* A timeout or taskgroup block: the scope is entered, the body runs, and
 * the scope's exit gets the exception leaving the body (called inside the
 * handler of that exception, as `async with` calls __aexit__) or none.
 * While the loop closes the tasks or the run is rejected, the exits are
 * skipped: nothing may suspend then and nothing is printed. */
typedef struct scope {
    frame *f;
    const stmt *s;
    value *ret;
    int result;
    void *obj; /* the cg_timeout or cg_taskgroup */
} scope;

static void scope_body(scope *c, void (*exit)(void *obj, cg_exc *e)) {
    CG_TRY {
        c->result = exec_block(c->f, &c->s->body, c->ret);
    } CG_EXCEPT(&cg_BaseException, e) {
        if (!R.closing && !R.aborted) exit(c->obj, e);
        cg_reraise();
    } CG_END;
    exit(c->obj, NULL);
}

static void timeout_exit(void *obj, cg_exc *e) { cg_timeout_exit(obj, e); }
static void taskgroup_exit(void *obj, cg_exc *e) { cg_taskgroup_exit(obj, e); }
static void timeout_drop(void *obj) { cg_timeout_free(obj); }
static void taskgroup_drop(void *obj) { cg_taskgroup_free(obj); }

static void timeout_scope(void *p) {
    scope *c = p;
    cg_timeout_enter(c->obj);
    scope_body(c, timeout_exit);
}

static void taskgroup_scope(void *p) {
    scope *c = p;
    tgscope *node = xmalloc(sizeof *node);
    *node = (tgscope){{NULL, NULL}, c->f, c->s->depth, c->obj};
    CG_DEFER(link_pop, &node->link);
    link_push(&tgscopes, &node->link);
    cg_taskgroup_enter(c->obj);
    scope_body(c, taskgroup_exit);
}

static int run_block(const stmt *s, void (*fn)(void *), void *arg, const int *result);

/* With COGEN_SCENARIO_TIMEOUT=call in the environment, a timeout block is
 * a cg_timeout_call (the scope wait_for uses, whose timer goes in the heap
 * only when the task's step ends inside it) instead of a cg_timeout
 * entered and exited: the same trace either way (ctest runs the scenarios
 * and the fuzz seeds with a timeout block both ways). Its __aexit__ runs
 * even while the loop closes the tasks: it prints nothing and does not
 * suspend. */
static int timeout_by_call = -1;

static void timeout_call_block(void *p) {
    scope *c = p;
    c->result = exec_block(c->f, &c->s->body, c->ret);
}

static void timeout_call_scope(void *p) {
    scope *c = p;
    cg_timeout_call(CG_MS(clamp_ms(c->s->op->ms)), timeout_call_block, c);
}

static int blk_timeout(frame *f, const stmt *s, value *ret) {
    if (timeout_by_call < 0) {
        const char *v = getenv("COGEN_SCENARIO_TIMEOUT");
        timeout_by_call = v && strcmp(v, "call") == 0;
    }
    if (timeout_by_call) {
        scope c = {f, s, ret, NORMAL, NULL};
        return run_block(s, timeout_call_scope, &c, &c.result);
    }
    cg_timeout *to = cg_timeout_new(CG_MS(clamp_ms(s->op->ms)));
    if (!to) abort();
    CG_DEFER(timeout_drop, to);
    scope c = {f, s, ret, NORMAL, to};
    return run_block(s, timeout_scope, &c, &c.result);
}

static int blk_taskgroup(frame *f, const stmt *s, value *ret) {
    cg_taskgroup *tg = cg_taskgroup_new();
    if (!tg) abort();
    CG_DEFER(taskgroup_drop, tg);
    scope c = {f, s, ret, NORMAL, tg};
    return run_block(s, taskgroup_scope, &c, &c.result);
}

/* -- async generators ------------------------------------------------- */

/* Every instance an `agen` made, in creation order, with the ID it was
 * bound to then (its name in the handler's reports). All stay alive until
 * the run is over, as the reference keeps them: a rebound ID leaves the old
 * instance to the shutdown. The ID names the newest instance bound to it. */
typedef struct arec {
    cg_agen *ag;
    const char *id;
} arec;

static struct {
    arec *v;
    size_t n, cap;
} AG;

static const char *agen_id_of(const cg_agen *ag) {
    for (size_t i = 0; i < AG.n; i++)
        if (AG.v[i].ag == ag) return AG.v[i].id;
    return "async_generator";
}

static cg_agen *agen_arg(const op *o, opres *r) {
    for (size_t i = AG.n; i-- > 0;)
        if (strcmp(AG.v[i].id, o->id) == 0) return AG.v[i].ag;
    r->missing = 1;
    return NULL;
}

/* Drops the instances that are not running: after the run, with nothing
 * printed (R.closing); one still suspended at a yield is closed as a
 * dropped generator is (GeneratorExit, its finally blocks skipped as the
 * tasks' are). One whose body was in the middle of an operation when the
 * loop stopped is running until the loop is freed (which closes the task
 * that drives it): the second call, after cg_loop_free, drops it. */
static void free_agens(void) {
    for (size_t i = 0; i < AG.n; i++)
        if (AG.v[i].ag && !cg_agen_running(AG.v[i].ag)) {
            cg_agen_free(AG.v[i].ag);
            AG.v[i].ag = NULL;
        }
}

/* The body of an `async gen`: its statements, run by the task that
 * iterates it (cg_anext etc. drive the generator on that task's stack). */
static void *agen_body(cg_gen *g, void *arg) {
    (void)g;
    frame fr = {arg};
    value ret = NULL;
    exec_block(&fr, &fr.d->body, &ret);
    return NULL;
}

/* `yield VALUE`: r = yield VALUE, then NAME:recv <repr(r)>. */
static void agen_yield(const char *name, value v) {
    value got = cg_yield(cg_current(), (void *)v);
    ev("%s:recv %s", name, got ? got : "None");
}

static void op_agen(frame *f, const op *o, opres *r) {
    (void)f;
    const def *d = find_def(R.prog, o->name);
    cg_opts go = {d->stack, d->name, 0};
    cg_agen *ag = cg_agen_new(agen_body, (void *)d, &go);
    if (!ag) {
        fputs("cogen-async-scenario: cannot make an async generator\n", stderr);
        exit(1);
    }
    if (AG.n == AG.cap) {
        AG.cap = AG.cap ? AG.cap * 2 : 16;
        AG.v = xrealloc(AG.v, AG.cap * sizeof *AG.v);
    }
    AG.v[AG.n++] = (arec){ag, o->id};
    s_puts(&r->s, o->id);
}

static void op_anext(frame *f, const op *o, opres *r) {
    (void)f;
    cg_agen *ag = agen_arg(o, r);
    if (ag) value_text(&r->s, cg_agen_anext(ag));
}

static void op_asend(frame *f, const op *o, opres *r) {
    (void)f;
    cg_agen *ag = agen_arg(o, r);
    if (ag) value_text(&r->s, cg_asend(ag, (void *)o->val));
}

static void op_athrow(frame *f, const op *o, opres *r) {
    (void)f;
    cg_agen *ag = agen_arg(o, r);
    if (!ag) return;
    /* A StopIteration thrown into a fresh one comes out of the awaitable as
     * its return (the loop gives NULL): Python's await gives its value, the
     * word (a str, printed with its repr). */
    int fresh_stop = o->type == &cg_StopIteration && cg_gen_state(cg_agen_gen(ag)) == CG_GEN_CREATED;
    value v = cg_athrow(ag, cg_exc_new(o->type, o->word));
    if (fresh_stop && o->word)
        s_repr(&r->s, o->word);
    else
        value_text(&r->s, v);
}

static void op_aclose(frame *f, const op *o, opres *r) {
    (void)f;
    cg_agen *ag = agen_arg(o, r);
    if (!ag) return;
    cg_aclose(ag);
    s_puts(&r->s, "None");
}

/* A context block: fn(arg) enters it, runs the body (storing exec_block's
 * NORMAL/RETURN in *result) and leaves it; then `TEXT -> ok`, or
 * `TEXT -> raised EXC` and the exception goes on as it came out (its
 * context untouched), or nothing when a return left it. */
static int run_block(const stmt *s, void (*fn)(void *), void *arg, const int *result) {
    cg_exc *e = cg_try_catch(fn, arg, &cg_BaseException);
    if (e) {
        str t = {0};
        fmt_exc(&t, e);
        ev("%s -> raised %s", s->op->text, s_text(&t));
        free(t.p);
        cg_propagate(e);
    }
    if (*result == RETURN) return RETURN;
    ev("%s -> ok", s->op->text);
    return NORMAL;
}

/* async_for ID: `async for v in ID:`, each item logged before the body
 * runs; the block's outcome as for the other blocks. */
typedef struct afor {
    frame *f;
    const stmt *s;
    value *ret;
    cg_agen *ag;
    int result;
} afor;

static void afor_run(void *p) {
    afor *a = p;
    void *v = NULL;
    while (cg_anext(a->ag, &v)) {
        ev("%s -> %s", a->s->op->text, v ? (const char *)v : "None");
        if ((a->result = exec_block(a->f, &a->s->body, a->ret)) == RETURN) return;
    }
}

static int blk_async_for(frame *f, const stmt *s, value *ret) {
    opres miss = {{0}, 0};
    afor a = {f, s, ret, agen_arg(s->op, &miss), NORMAL};
    if (!a.ag) {
        ev("%s -> missing", s->op->text);
        return NORMAL;
    }
    return run_block(s, afor_run, &a, &a.result);
}

/* Runner.close, step 2: loop.shutdown_asyncgens() in a task of its own. */
static void *shutdown_asyncgens(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_shutdown_asyncgens();
    return NULL;
}

/* The table of operations (async_ref.py's OPS and USAGE). A NULL function:
 * the loop does not offer what the operation needs yet; see the report in
 * tests/async_scenarios/README.md for the calls each one will make. */
static const opdef OPDEFS[K_NOPS] = {
    [K_SPAWN] = {"spawn", "N D", "ID NAME", 0, op_spawn},
    [K_TG_SPAWN] = {"tg_spawn", "N D", "ID NAME", 0, op_tg_spawn},
    [K_JOIN] = {"join", "T", "ID", 1, op_join},
    [K_CANCEL] = {"cancel", "T [W]", "ID [WORD]", 0, op_cancel},
    [K_CANCELLING] = {"cancelling", "T", "ID", 0, op_cancelling},
    [K_UNCANCEL] = {"uncancel", "T", "ID", 0, op_uncancel},
    [K_STATE] = {"state", "T", "ID", 0, op_state},
    [K_RESULT] = {"result", "T", "ID", 0, op_result},
    [K_SLEEP] = {"sleep", "S", "MS", 1, op_sleep},
    [K_AWAIT] = {"await", "D", "NAME", 1, op_await},
    [K_GATHER] = {"gather", "X+ [return_exceptions]", "ARG... [return_exceptions]", 1, op_gather},
    [K_WAIT] = {"wait", "X+ [mode] [timeout]", "ARG... [first_completed|first_exception|all_completed] [timeout MS]", 1,
                op_wait},
    [K_WAIT_FOR] = {"wait_for", "X S", "ARG MS", 1, op_wait_for},
    [K_SHIELD] = {"shield", "X", "ARG", 1, op_shield},
    [K_PUT] = {"put", "Q V", "Q VALUE", 1, op_put},
    [K_GET] = {"get", "Q", "Q", 1, op_get},
    [K_PUT_NOWAIT] = {"put_nowait", "Q V", "Q VALUE", 0, op_put_nowait},
    [K_GET_NOWAIT] = {"get_nowait", "Q", "Q", 0, op_get_nowait},
    [K_TASK_DONE] = {"task_done", "Q", "Q", 0, op_task_done},
    [K_QJOIN] = {"qjoin", "Q", "Q", 1, op_qjoin},
    [K_QSIZE] = {"qsize", "Q", "Q", 0, op_qsize},
    [K_QSHUTDOWN] = {"qshutdown", "Q [immediate]", "Q [immediate]", 0, op_qshutdown},
    [K_SET] = {"set", "E", "E", 0, op_set},
    [K_CLEAR] = {"clear", "E", "E", 0, op_clear},
    [K_IS_SET] = {"is_set", "E", "E", 0, op_is_set},
    [K_WAIT_EVENT] = {"wait_event", "E", "E", 1, op_wait_event},
    [K_ACQUIRE] = {"acquire", "L", "L", 1, op_acquire},
    [K_RELEASE] = {"release", "L", "L", 0, op_release},
    [K_LOCKED] = {"locked", "L", "L", 0, op_locked},
    [K_AGEN] = {"agen", "M G", "ID NAME", 0, op_agen},
    [K_ANEXT] = {"anext", "A", "ID", 1, op_anext},
    [K_ASEND] = {"asend", "A V", "ID VALUE", 1, op_asend},
    [K_ATHROW] = {"athrow", "A TYPE [W]", "ID TYPE [WORD]", 1, op_athrow},
    [K_ACLOSE] = {"aclose", "A", "ID", 1, op_aclose},
};

/* The blocks: `timeout`, `taskgroup`, `async_with`, `async_for`. Each is
 * a function (frame, statement, ret) -> NORMAL/RETURN that enters the
 * context, runs the body with exec_block and logs `TEXT -> ok` or
 * `TEXT -> raised EXC` when it is left (nothing when a return leaves it);
 * a NULL entry is a block the runner does not run yet. */
typedef int (*block_fn)(frame *f, const stmt *s, value *ret);

/* async_with L: `async with L:` on a lock or a semaphore: acquire (it
 * awaits), the body, release on the way out however it is left; then
 * `TEXT -> ok`, or `TEXT -> raised EXC` and the exception goes on (after
 * the release, as after __aexit__), or nothing when a return leaves it. */
typedef struct awith {
    frame *f;
    const stmt *s;
    value *ret;
    obj *b;
    int result;
} awith;

static void release_obj(void *p) {
    obj *b = p;
    if (b->decl == OBJ_LOCK)
        cg_lock_release(b->rt);
    else
        cg_semaphore_release(b->rt);
}

static void acquire_obj(obj *b) {
    CG_DEFER(resumed, current_rec());
    if (b->decl == OBJ_LOCK)
        cg_lock_acquire(b->rt);
    else
        cg_semaphore_acquire(b->rt);
}

static void awith_run(void *p) {
    awith *a = p;
    acquire_obj(a->b);
    CG_DEFER(release_obj, a->b);
    a->result = exec_block(a->f, &a->s->body, a->ret);
}

static int blk_async_with(frame *f, const stmt *s, value *ret) {
    awith a = {f, s, ret, find_obj(R.prog, s->op->name), NORMAL};
    return run_block(s, awith_run, &a, &a.result);
}

static const block_fn BLOCKDEFS[4] = {blk_timeout, blk_taskgroup, blk_async_with, blk_async_for};
static const char *const BLOCK_WORDS[4] = {"timeout", "taskgroup", "async_with", "async_for"};

static const handler *match_handler(const stmt *s, const cg_exc *e) {
    for (size_t i = 0; i < s->nhandlers; i++)
        if (cg_exc_is(e, s->handlers[i].type)) return &s->handlers[i];
    return NULL;
}

/* try/except/finally. While the loop is being freed (R.closing), the
 * tasks' generators are closed: no handler and no finally block runs, the
 * GeneratorExit goes straight through, and nothing is printed, as in the
 * reference, which is done with its trace by then. */
static int exec_try(frame *f, const stmt *s, value *ret) {
    volatile int res = NORMAL;
    value volatile rv = NULL;
    CG_TRY {
        value v = NULL;
        res = exec_block(f, &s->body, &v);
        rv = v;
    } CG_EXCEPT(&cg_BaseException, e) {
        const handler *h = R.closing || R.aborted ? NULL : match_handler(s, e);
        if (!h) cg_reraise();
        value v = NULL;
        res = exec_block(f, &h->body, &v);
        rv = v;
    } CG_FINALLY {
        if (s->has_final && !R.closing && !R.aborted) {
            value v = NULL;
            if (exec_block(f, &s->final, &v) == RETURN) {
                /* `return` in finally wins over everything, a pending
                 * exception included: leaving the block drops it. */
                *ret = v;
                return RETURN;
            }
        }
    } CG_END;
    if (res == RETURN) *ret = rv;
    return res;
}

static int exec_block(frame *f, const block *b, value *ret) {
    const char *name = f->d->name;
    for (size_t i = 0; i < b->n; i++) {
        const stmt *s = &b->v[i];
        if (R.aborted) CG_RAISE(&ScenarioAbort, NULL);
        if (R.closing) CG_RAISE(&cg_GeneratorExit, NULL);
        switch (s->kind) {
        case S_RETURN:
            *ret = s->val;
            return RETURN;
        case S_RAISE:
            CG_RAISE(s->type, s->word);
        case S_RERAISE:
            cg_reraise();
        case S_LOG:
            ev("%s:%s", name, s->word);
            break;
        case S_LOGEXC: {
            str t = {0};
            fmt_exc(&t, cg_exc_current());
            ev("%s:exc %s", name, s_text(&t));
            free(t.p);
            break;
        }
        case S_REPEAT:
            for (unsigned long long k = 0; k < s->count; k++) {
                if (++R.ticks > MAX_TICKS) scenario_abort("the run exceeds 200000 repeat iterations");
                if (exec_block(f, &s->body, ret) == RETURN) return RETURN;
            }
            break;
        case S_TRY:
            if (exec_try(f, s, ret) == RETURN) return RETURN;
            break;
        case S_OP:
            run_op(f, s->op);
            break;
        case S_BLOCK:
            if (BLOCKDEFS[s->op->kw - K_TIMEOUT](f, s, ret) == RETURN) return RETURN;
            break;
        case S_YIELD:
            agen_yield(name, s->val);
            break;
        }
    }
    return NORMAL;
}

typedef struct defcall {
    frame f;
    value ret;
} defcall;

static void defcall_run(void *p) {
    defcall *c = p;
    exec_block(&c->f, &c->f.d->body, &c->ret);
}

/* Runs one coroutine of an async def to its end on the current task's
 * stack: its return value, or its exception, a StopIteration turned into
 * RuntimeError('coroutine raised StopIteration') (A11). */
static value run_def(const def *d) {
    defcall c = {{d}, NULL};
    CG_TRY {
        defcall_run(&c);
    } CG_EXCEPT(&cg_StopIteration, e) {
        /* Raised here, while e is handled: its context is e. */
        cg_exc *rt = cg_exc_new(&cg_RuntimeError, "coroutine raised StopIteration");
        cg_exc_set_cause(rt, e);
        cg_raise(rt);
    } CG_END;
    return c.ret;
}

/* ---------------------------------------------------------------------
 * The run: asyncio.run(MAIN()) as Runner.run and Runner.close do it
 * ------------------------------------------------------------------ */

static void *nothing(cg_gen *g, void *arg) {
    (void)g;
    return arg;
}

/* gather(*tasks, return_exceptions=True) as _cancel_all_tasks uses it:
 * done when every task is, each one's exception retrieved. */
typedef struct gather_all {
    cg_future *outer;
    size_t left;
} gather_all;

static void gather_one(cg_future *f, void *arg) {
    gather_all *g = arg;
    if (!cg_future_cancelled(f)) (void)cg_future_exception(f);
    if (--g->left == 0 && !cg_future_done(g->outer)) cg_future_set_result(g->outer, NULL);
}

/* Runner.close, step 1 (asyncio.runners._cancel_all_tasks, which the
 * reference runs in creation order): -1 when the loop deadlocks on it. */
static int cancel_all(void) {
    size_t n = 0;
    cg_task **v = cg_all_tasks(R.loop, &n);
    if (!n) return 0;
    for (size_t i = 0; i < n; i++) {
        trec *r = rec_of(cg_task_future(v[i]));
        if (r && cancel_would_cycle(r)) {
            reject_soon("Python's recursion limit was hit");
            cg_all_tasks_free(v, n);
            return -1;
        }
    }
    for (size_t i = 0; i < n; i++) cg_task_cancel(v[i], NULL);
    /* On the heap: after a deadlock the callbacks stay registered. */
    gather_all *g = xmalloc(sizeof *g);
    g->outer = cg_future_new(R.loop);
    g->left = n;
    if (!g->outer) abort();
    for (size_t i = 0; i < n; i++)
        if (cg_future_add_done_callback(cg_task_future(v[i]), gather_one, g) < 0) abort();
    cg_loop_run_until_complete(R.loop, g->outer, NULL, NULL);
    int dead = !cg_future_done(g->outer) || R.aborted;
    for (size_t i = 0; i < n && !dead; i++) {
        cg_future *f = cg_task_future(v[i]);
        cg_exc *e = cg_future_cancelled(f) ? NULL : cg_future_exception(f);
        if (e) {
            cg_loop_context c = {"unhandled exception during asyncio.run() shutdown", e, f, NULL};
            cg_loop_call_exception_handler(R.loop, &c);
        }
    }
    cg_all_tasks_free(v, n);
    if (dead) {
        /* Its callbacks stay registered on tasks that will never finish:
         * freed after the loop. */
        R.stuck = g;
        return -1;
    }
    cg_future_unref(g->outer);
    free(g);
    return 0;
}

/* Runner.close, steps 2 and 3: loop.shutdown_asyncgens() and
 * loop.shutdown_default_executor(), each run in a task of its own (they
 * take Task-N names; no executor exists, so the second returns at once):
 * -1 when the loop deadlocks on it. */
static int shutdown_step(cg_fn body) {
    cg_task *t = cg_task_new(R.loop, body, NULL, NULL);
    if (!t) abort();
    track(t);
    cg_loop_run_until_complete(R.loop, cg_task_future(t), NULL, NULL);
    return cg_future_done(cg_task_future(t)) ? 0 : -1;
}

/* The declared queues, events, locks and semaphores, made before the run
 * in declaration order, and freed with the loop. */
static void make_objects(void) {
    for (size_t i = 0; i < R.prog->nobjs; i++) {
        obj *b = &R.prog->objs[i];
        long n = b->param > 1000000000ull ? 1000000000L : (long)b->param;
        switch (b->decl) {
        case OBJ_QUEUE: b->rt = cg_queue_new(R.loop, n); break;
        case OBJ_EVENT: b->rt = cg_event_new(R.loop); break;
        case OBJ_LOCK: b->rt = cg_lock_new(R.loop); break;
        case OBJ_SEMAPHORE: b->rt = cg_semaphore_new(R.loop, n); break;
        case OBJ_BOUNDED: b->rt = cg_bounded_semaphore_new(R.loop, n); break;
        }
        if (!b->rt) abort();
    }
}

static void free_objects(void) {
    for (size_t i = 0; R.prog && i < R.prog->nobjs; i++) {
        obj *b = &R.prog->objs[i];
        switch (b->decl) {
        case OBJ_QUEUE: cg_queue_free(b->rt); break;
        case OBJ_EVENT: cg_event_free(b->rt); break;
        case OBJ_LOCK: cg_lock_free(b->rt); break;
        default: cg_semaphore_free(b->rt); break;
        }
        b->rt = NULL;
    }
}

/* Frees the loop after a rejection in a task; returns the exit status. */
static int run_aborted(void) {
    R.closing = 1;
    release_kept();
    for (size_t i = 0; i < R.ntasks; i++) {
        if (R.tasks[i]->t) cg_future_unref(cg_task_future(R.tasks[i]->t));
        R.tasks[i]->t = NULL;
    }
    if (R.stuck) cg_future_unref(R.stuck->outer);
    free_agens();
    free_objects();
    cg_loop_free(R.loop);
    free_agens();
    R.loop = NULL;
    free(R.stuck);
    R.stuck = NULL;
    abort_report();
    return 2;
}

/* Runs the scenario; the exit status (0, or 2 when it is rejected). */
static int run_main(void) {
    cg_loop_opts lo = {CG_LOOP_VIRTUAL_CLOCK};
    R.loop = cg_loop_new(&lo);
    if (!R.loop) abort();
    cg_loop_set_exception_handler(R.loop, on_exception, NULL);
    make_objects();
    cg_task *main_task = new_task(find_def(R.prog, R.prog->main_name), "main");
    bind("main", track(main_task));
    void *out = NULL;
    cg_exc *exc = NULL;
    cg_status st = cg_loop_run_until_complete(R.loop, cg_task_future(main_task), &out, &exc);
    if (R.aborted) {
        cg_exc_unref(exc);
        return run_aborted();
    }
    int dead = !cg_future_done(cg_task_future(main_task));
    str outcome = {0};
    if (dead) {
        cg_exc_unref(exc);
    } else if (st == CG_RETURNED) {
        s_puts(&outcome, "returned ");
        value_text(&outcome, out);
    } else {
        s_puts(&outcome, "raised ");
        fmt_exc(&outcome, exc);
        cg_exc_unref(exc);
    }
    if (!dead) dead = cancel_all() < 0;
    if (!dead && !R.aborted) dead = shutdown_step(shutdown_asyncgens) < 0 || shutdown_step(nothing) < 0;
    if (R.aborted) {
        free(outcome.p);
        return run_aborted();
    }
    long long t = now_ms();
    if (t > MAX_TIME) scenario_abort("the run goes past 10000000 ms of virtual time");
    char head[64];
    snprintf(head, sizeof head, "%4lld -: run -> ", t);
    s_puts(&R.out, head);
    s_puts(&R.out, dead ? "deadlock" : s_text(&outcome));
    s_putc(&R.out, '\n');
    free(outcome.p);
    /* The end-of-run reports, in creation order: a task still pending is
     * reported here (the loop would report it again when it is freed, with
     * the others, in the wrong place); a finished one with an exception
     * nobody retrieved is reported by the loop when its last reference
     * goes, which is this one. */
    if (dead) R.closing = 1;
    release_kept();
    for (size_t i = 0; i < R.ntasks; i++) {
        trec *r = R.tasks[i];
        cg_future *f = cg_task_future(r->t);
        if (!cg_future_done(f) && !r->no_pending_report && !R.closing) {
            cg_loop_context c = {"Task was destroyed but it is pending!", NULL, f, NULL};
            cg_loop_call_exception_handler(R.loop, &c);
        }
        cg_future_unref(f);
        r->t = NULL;
    }
    R.closing = 1;
    if (R.stuck) cg_future_unref(R.stuck->outer);
    free_agens();
    free_objects();
    cg_loop_free(R.loop);
    free_agens();
    R.loop = NULL;
    free(R.stuck);
    return 0;
}

/* ---------------------------------------------------------------------
 * Stack sizes
 * ------------------------------------------------------------------ */

/* Blocks nested in a block (repeat, try, the context blocks). */
static size_t block_levels(const block *b) {
    size_t best = 0;
    for (size_t i = 0; i < b->n; i++) {
        const stmt *s = &b->v[i];
        size_t k = 0;
        if (s->kind == S_REPEAT || s->kind == S_BLOCK) {
            k = 1 + block_levels(&s->body);
        } else if (s->kind == S_TRY) {
            k = block_levels(&s->body);
            for (size_t h = 0; h < s->nhandlers; h++)
                if (block_levels(&s->handlers[h].body) > k) k = block_levels(&s->handlers[h].body);
            if (block_levels(&s->final) > k) k = block_levels(&s->final);
            k++;
        }
        if (k > best) best = k;
    }
    return best;
}

/* Each coroutine has a stack of its own (a task's, or the generator of an
 * `await`), sized for the blocks its body nests. */
static void set_stacks(program *p) {
    for (size_t i = 0; i < p->ndefs; i++)
        p->defs[i].stack = STACK_BASE + (1 + block_levels(&p->defs[i].body)) * STACK_PER_LEVEL;
}

/* ---------------------------------------------------------------------
 * What the loop cannot run yet
 * ------------------------------------------------------------------ */

typedef struct unsup {
    int line;
    const char *what;
} unsup;

static void note_unsup(unsup *u, int line, const char *what) {
    if (!u->line || line < u->line) {
        u->line = line;
        u->what = what;
    }
}

static void find_unsupported(const block *b, unsup *u) {
    for (size_t i = 0; i < b->n; i++) {
        const stmt *s = &b->v[i];
        switch (s->kind) {
        case S_OP:
            if (!OPDEFS[s->op->kw].run) note_unsup(u, s->line, OPDEFS[s->op->kw].kw);
            break;
        case S_BLOCK:
            if (!BLOCKDEFS[s->op->kw - K_TIMEOUT]) note_unsup(u, s->line, BLOCK_WORDS[s->op->kw - K_TIMEOUT]);
            find_unsupported(&s->body, u);
            break;
        case S_REPEAT: find_unsupported(&s->body, u); break;
        case S_TRY:
            find_unsupported(&s->body, u);
            for (size_t k = 0; k < s->nhandlers; k++) find_unsupported(&s->handlers[k].body, u);
            find_unsupported(&s->final, u);
            break;
        default: break;
        }
    }
}

/* ---------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    str s = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) s_putn(&s, buf, n);
    fclose(fp);
    *size = s.len;
    return s.p ? s.p : xrealloc(NULL, 1);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fputs("usage: cogen-async-scenario FILE\n", stderr);
        return 2;
    }
    size_t size = 0;
    char *text = read_file(argv[1], &size);
    if (!text) {
        fprintf(stderr, "cogen-async-scenario: cannot open %s\n", argv[1]);
        return 2;
    }
    arena A = {0};
    program prog = {0};
    parser ps = {0};
    ps.A = &A;
    ps.prog = &prog;
    int rc = 0;
    if (parse(&ps, text, size)) {
        fprintf(stderr, "scenario error: %s\n", s_text(&ps.err));
        rc = 2;
        goto done;
    }
    unsup u = {0, NULL};
    for (size_t i = 0; i < prog.ndefs; i++) {
        find_unsupported(&prog.defs[i].body, &u);
    }
    if (u.line) {
        fprintf(stderr, "cogen-async-scenario: line %d: unsupported statement '%s' (the loop does not offer it yet)\n",
                u.line, u.what);
        rc = 3;
        goto done;
    }
    R.prog = &prog;
    set_stacks(&prog);
    const char *dump_path = getenv("COGEN_SCENARIO_DUMP");
    if (dump_path && *dump_path && !(dump_file = fopen(dump_path, "w"))) {
        fprintf(stderr, "cogen-async-scenario: cannot open %s\n", dump_path);
        rc = 2;
        goto done;
    }
    rc = run_main();
    if (dump_file) fclose(dump_file);
    /* The reference prints its lines joined by newlines. */
    if (rc == 0) fwrite(R.out.p, 1, R.out.len, stdout);
    fflush(stdout);
done:
    for (size_t i = 0; i < R.ntasks; i++) free(R.tasks[i]);
    free(R.tasks);
    free(R.binds);
    free(AG.v);
    free(R.out.p);
    free(R.abort_msg.p);
    free(ps.err.p);
    a_free(&A);
    free(text);
    return rc;
}
