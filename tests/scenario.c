/* scenario.c: cogen-scenario, the scenario runner.
 *
 * Implements the scenario language (docs/semantics.md, "Scenarios"; the
 * reference definition is ../shared/semantics/SCENARIO.md, outside the
 * repository, with the traces of its runner checked in under
 * tests/scenarios/) on
 * cogen's public API only, and prints the same trace as the reference
 * runner on CPython (scenario_ref.py): one line per operation. Every `def`
 * becomes a generator body that interprets its statements; `try` is CG_TRY,
 * `yield` is cg_yield, `yield_from` is cg_yield_from_new, and so on.
 *
 *     cogen-scenario FILE
 *
 * An invalid scenario gets the reference runner's message, naming its line,
 * on stderr and exit status 2. The parser follows scenario_ref.py step by
 * step so that the same file is rejected with the same message.
 *
 * The engine (scn_run) parses and runs a scenario held in memory and never
 * exits: errors come back as a status and a message, and everything it
 * allocates is freed before it returns, so that the libFuzzer entry
 * (tests/fuzz/fuzz_scenario.c, which #includes this file with
 * SCENARIO_NO_MAIN defined) can call it millions of times. For fuzzing it
 * takes limits (scn_limits) that cap `repeat` counts and the number of
 * statements a run may execute, because a valid scenario can run for ever
 * (`repeat 99999999999`) in this runner and in the reference alike.
 *
 * Where the runner cannot be exact: CPython's recursion limit. A chain of
 * `yield_from` deeper than CPython allows raises RecursionError there; this
 * runner raises it at a fixed delegation level (MAX_DEPTH), which matches
 * unbounded recursion and chains well past the limit, but near the limit
 * CPython's message and level depend on which of the reference runner's
 * own helper frames happens to cross it (a repr, an event, a `call`), which
 * cannot be modelled here (docs/conformance.md lists the cases). Blocks
 * nested more deeply than SCN_MAX_NESTING are rejected (CPython itself
 * refuses more than 20 statically nested blocks with a SyntaxError, so no
 * such scenario runs on the reference either), which keeps every body well
 * inside its stack.
 */
#include <cogen.h>

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The two user-defined types of the language. */
CG_EXC_TYPE(AppError, cg_Exception);
CG_EXC_TYPE(SubAppError, AppError);
/* Raised everywhere once a run has used up its step budget (scn_limits);
 * no handler of the scenario catches it and no finally block runs. */
CG_EXC_TYPE(ScenarioBudgetExceeded, cg_BaseException);

static const cg_exc_type *const TYPES[] = {
    &cg_BaseException, &cg_Exception, &cg_GeneratorExit, &cg_StopIteration, &cg_RuntimeError, &cg_ValueError,
    &cg_TypeError,     &cg_LookupError, &cg_KeyError,     &AppError,         &SubAppError,
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

/* Deepest nesting of repeat/try blocks accepted (see the top comment). */
#define SCN_MAX_NESTING 40

#define SCN_PROG "cogen-scenario"
#include "scenario_text.h"

/* ---------------------------------------------------------------------
 * The program: definitions and operations
 * ------------------------------------------------------------------ */

/* A value is NULL (None) or a canonical decimal string: values only ever
 * travel through the generators and get printed, so no arithmetic. */
typedef const char *value;

enum op_kind { OP_START, OP_NEXT, OP_SEND, OP_THROW, OP_CLOSE, OP_STATE, OP_FREE };

typedef struct op {
    enum op_kind kind;
    const char *id;          /* the instance */
    const char *def;         /* OP_START */
    value val;               /* OP_SEND */
    const cg_exc_type *type; /* OP_THROW */
    const char *word;        /* OP_THROW, may be NULL */
    const char *text;        /* how the trace names the operation */
} op;

enum stmt_kind { S_YIELD, S_RETURN, S_RAISE, S_RERAISE, S_LOG, S_LOGEXC, S_YIELD_FROM, S_CALL, S_REPEAT, S_TRY };

typedef struct stmt stmt;
typedef struct block {
    stmt *v;
    size_t n, cap;
} block;

typedef struct handler {
    const cg_exc_type *type; /* except TYPE */
    block body;
} handler;

struct stmt {
    enum stmt_kind kind;
    int line;                 /* source line, for messages */
    value val;                /* S_YIELD, S_RETURN */
    const cg_exc_type *type;  /* S_RAISE */
    const char *word;         /* S_RAISE (may be NULL), S_LOG, S_YIELD_FROM */
    struct def *target;       /* S_YIELD_FROM, resolved after parsing */
    op call;                  /* S_CALL */
    unsigned long long count; /* S_REPEAT (saturates at ULLONG_MAX) */
    block body;               /* S_REPEAT, S_TRY */
    handler *handlers;        /* S_TRY */
    size_t nhandlers;
    block final;              /* S_TRY */
    int has_final;
};

typedef struct def {
    const char *name;
    block body;
} def;

typedef struct program {
    def *defs;
    size_t ndefs, capdefs;
    op *ops;
    int *op_lines; /* source line of each op */
    size_t nops, capops;
} program;

static def *find_def(const program *p, const char *name) {
    for (size_t i = 0; i < p->ndefs; i++)
        if (strcmp(p->defs[i].name, name) == 0) return &p->defs[i];
    return NULL;
}


/* ---------------------------------------------------------------------
 * Parsing, mirroring scenario_ref.py's parse(). Every function that can
 * reject the scenario returns -1 after storing the message (perr).
 * ------------------------------------------------------------------ */

typedef struct parser {
    arena *A;
    lines L;
    program *prog;
    str err;   /* the message, without "scenario error: " */
    int depth; /* repeat/try blocks open */
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

static int is_token(const char *w) {
    if (!*w) return 0;
    for (const char *c = w; *c; c++)
        if (!((unsigned char)*c < 128 && (isalnum((unsigned char)*c) || *c == '_'))) return 0;
    return 1;
}

static const cg_exc_type *find_type(const char *name) {
    for (size_t i = 0; i < NTYPES; i++)
        if (strcmp(TYPES[i]->name, name) == 0) return TYPES[i];
    return NULL;
}

/* VALUE: `None` or -?[0-9]+, kept as Python's repr of the int. */
static int parse_value(parser *ps, const char *tok, int no, value *out) {
    if (strcmp(tok, "None") == 0) {
        *out = NULL;
        return 0;
    }
    const char *d = tok + (*tok == '-');
    int ok = *d != '\0';
    for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9') ok = 0;
    if (!ok) return perr(ps, "line %d: bad value %s", no, repr_a(ps, tok));
    while (*d == '0' && d[1]) d++;
    int neg = *tok == '-' && strcmp(d, "0") != 0;
    size_t n = strlen(d);
    char *v = a_alloc(ps->A, n + 2);
    if (neg) *v = '-';
    memcpy(v + neg, d, n + 1);
    *out = v;
    return 0;
}

static int exc_words(parser *ps, char **w, size_t n, int no, const cg_exc_type **type, const char **word) {
    if ((n != 1 && n != 2) || !(*type = find_type(w[0])) || (n == 2 && !is_token(w[1])))
        return perr(ps, "line %d: expected a known exception type and an optional word", no);
    *word = n == 2 ? w[1] : NULL;
    return 0;
}

static void value_text(str *s, value v) { s_puts(s, v ? v : "None"); }

static int op_words(parser *ps, char **w, size_t n, int no, int inside, op *o) {
    const char *kw = n ? w[0] : "";
    memset(o, 0, sizeof *o);
    if (strcmp(kw, "start") == 0 && !inside && n == 3) {
        o->kind = OP_START;
        o->id = w[1];
        o->def = w[2];
    } else if ((strcmp(kw, "next") == 0 || strcmp(kw, "close") == 0 || strcmp(kw, "state") == 0) && n == 2) {
        o->kind = kw[0] == 'n' ? OP_NEXT : kw[0] == 'c' ? OP_CLOSE : OP_STATE;
        o->id = w[1];
    } else if (strcmp(kw, "free") == 0 && !inside && n == 2) {
        o->kind = OP_FREE;
        o->id = w[1];
    } else if (strcmp(kw, "send") == 0 && n == 3) {
        o->kind = OP_SEND;
        o->id = w[1];
        if (parse_value(ps, w[2], no, &o->val)) return -1;
    } else if (strcmp(kw, "throw") == 0 && (n == 3 || n == 4)) {
        o->kind = OP_THROW;
        o->id = w[1];
        if (exc_words(ps, w + 2, n - 2, no, &o->type, &o->word)) return -1;
    } else {
        str t = {0};
        for (size_t i = 0; i < n; i++) {
            if (i) s_putc(&t, ' ');
            s_puts(&t, w[i]);
        }
        const char *r = repr_a(ps, s_text(&t));
        free(t.p);
        return perr(ps, "line %d: bad operation %s", no, r);
    }
    /* The trace's name for it: words joined, a sent value as its repr. */
    str t = {0};
    s_puts(&t, kw);
    s_putc(&t, ' ');
    s_puts(&t, o->id);
    if (o->kind == OP_START) {
        s_putc(&t, ' ');
        s_puts(&t, o->def);
    } else if (o->kind == OP_SEND) {
        s_putc(&t, ' ');
        value_text(&t, o->val);
    } else if (o->kind == OP_THROW) {
        s_putc(&t, ' ');
        s_puts(&t, o->type->name);
        if (o->word) {
            s_putc(&t, ' ');
            s_puts(&t, o->word);
        }
    }
    o->text = a_strdup(ps->A, t.p);
    free(t.p);
    return 0;
}

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

enum { CTX_EXCEPT = 1 };

static const char *const END_ONLY[] = {"end", NULL};
static const char *const TRY_CLOSERS[] = {"except", "finally", "end", NULL};

/* Parses statements from line i until a word of closers (NULL-terminated);
 * sets *i to the line reached and *closer to the closer found there (NULL at
 * the end of the text). */
static int parse_block(parser *ps, size_t *i, int ctx, const char *const *closers, block *out, const char **closer);

/* The zeros of Unicode's decimal digits (category Nd) above ASCII; each
 * begins a run of ten (Unicode 14, CPython 3.11). The reference takes a
 * `repeat` count that str.isdigit() accepts and int() reads: any decimal
 * digits. (isdigit() also accepts digits such as superscripts, which int()
 * then refuses: the reference stops with a ValueError there; this runner
 * calls the count invalid.) */
static const uint32_t digit_zeros[] = {
    0x660,   0x6f0,   0x7c0,   0x966,   0x9e6,   0xa66,   0xae6,   0xb66,   0xbe6,   0xc66,   0xce6,
    0xd66,   0xde6,   0xe50,   0xed0,   0xf20,   0x1040,  0x1090,  0x17e0,  0x1810,  0x1946,  0x19d0,
    0x1a80,  0x1a90,  0x1b50,  0x1bb0,  0x1c40,  0x1c50,  0xa620,  0xa8d0,  0xa900,  0xa9d0,  0xa9f0,
    0xaa50,  0xabf0,  0xff10,  0x104a0, 0x10d30, 0x11066, 0x110f0, 0x11136, 0x111d0, 0x112f0, 0x11450,
    0x114d0, 0x11650, 0x116c0, 0x11730, 0x118e0, 0x11950, 0x11c50, 0x11d50, 0x11da0, 0x16a60, 0x16ac0,
    0x16b50, 0x1d7ce, 0x1d7d8, 0x1d7e2, 0x1d7ec, 0x1d7f6, 0x1e140, 0x1e2f0, 0x1e950, 0x1fbf0,
};

/* The value of the decimal digit at c (ASCII or not) and its length in
 * bytes, or length 0 if c is not one. */
static size_t decimal_digit(const unsigned char *c, unsigned *value) {
    if (*c >= '0' && *c <= '9') {
        *value = (unsigned)(*c - '0');
        return 1;
    }
    uint32_t cp;
    size_t n = *c >= 0x80 && *c != NUL_STANDIN ? utf8_decode(c, &cp) : 0;
    if (!n) return 0;
    for (size_t i = 0; i < sizeof digit_zeros / sizeof digit_zeros[0]; i++)
        if (cp >= digit_zeros[i] && cp < digit_zeros[i] + 10) {
            *value = (unsigned)(cp - digit_zeros[i]);
            return n;
        }
    return 0;
}

static int parse_repeat(parser *ps, size_t *i, int ctx, char **w, size_t n, int no, block *out) {
    int ok = n == 2 && *w[1];
    unsigned long long count = 0;
    for (const unsigned char *c = ok ? (const unsigned char *)w[1] : (const unsigned char *)""; *c;) {
        unsigned d;
        size_t len = decimal_digit(c, &d);
        if (!len) {
            ok = 0;
            break;
        }
        count = count > (~0ull - 9) / 10 ? ~0ull : count * 10 + d;
        c += len;
    }
    if (!ok) return perr(ps, "line %d: repeat takes a count", no);
    block body = {0};
    const char *cl = NULL;
    if (parse_block(ps, i, ctx, END_ONLY, &body, &cl)) return -1;
    ++*i; /* the reference steps over its `end` without looking */
    stmt *s = block_add(ps, out, S_REPEAT, no);
    s->count = count;
    s->body = body;
    return 0;
}

static int parse_try(parser *ps, size_t *i, int ctx, int no, block *out) {
    lines *L = &ps->L;
    block body = {0}, final = {0};
    handler *hs = NULL;
    size_t nh = 0, caph = 0;
    int has_final = 0;
    const char *kw2 = NULL;
    if (parse_block(ps, i, ctx, TRY_CLOSERS, &body, &kw2)) return -1;
    while (kw2 && strcmp(kw2, "except") == 0) {
        line *l2 = &L->v[*i];
        const cg_exc_type *t = l2->n == 2 ? find_type(l2->w[1]) : NULL;
        if (!t) return perr(ps, "line %d: except takes one known type", l2->no);
        ++*i;
        if (nh == caph) {
            size_t ncap = caph ? caph * 2 : 2;
            hs = a_grow(ps->A, hs, caph * sizeof *hs, ncap * sizeof *hs);
            caph = ncap;
        }
        handler *h = &hs[nh++];
        h->type = t;
        kw2 = NULL;
        if (parse_block(ps, i, ctx | CTX_EXCEPT, TRY_CLOSERS, &h->body, &kw2)) return -1;
    }
    if (kw2 && strcmp(kw2, "finally") == 0) {
        ++*i;
        has_final = 1;
        kw2 = NULL;
        if (parse_block(ps, i, ctx, END_ONLY, &final, &kw2)) return -1;
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

static int parse_block(parser *ps, size_t *i, int ctx, const char *const *closers, block *out, const char **closer) {
    lines *L = &ps->L;
    *closer = NULL;
    while (*i < L->n) {
        line *ln = &L->v[*i];
        char **w = ln->w;
        size_t n = ln->n;
        const char *kw = w[0];
        int no = ln->no;
        for (const char *const *c = closers; *c; c++)
            if (strcmp(kw, *c) == 0) {
                *closer = *c;
                return 0;
            }
        ++*i;
        if (strcmp(kw, "yield") == 0) {
            if (n != 2) return perr(ps, "line %d: yield takes one value", no);
            value v;
            if (parse_value(ps, w[1], no, &v)) return -1;
            block_add(ps, out, S_YIELD, no)->val = v;
        } else if (strcmp(kw, "return") == 0) {
            if (n > 2) return perr(ps, "line %d: return takes at most one value", no);
            value v = NULL;
            if (n == 2 && parse_value(ps, w[1], no, &v)) return -1;
            block_add(ps, out, S_RETURN, no)->val = v;
        } else if (strcmp(kw, "raise") == 0) {
            const cg_exc_type *type = NULL; /* set by exc_words (initialized for gcc -O3) */
            const char *word = NULL;
            if (exc_words(ps, w + 1, n - 1, no, &type, &word)) return -1;
            stmt *s = block_add(ps, out, S_RAISE, no);
            s->type = type;
            s->word = word;
        } else if (strcmp(kw, "reraise") == 0) {
            if (!(ctx & CTX_EXCEPT)) return perr(ps, "line %d: reraise outside an except block", no);
            block_add(ps, out, S_RERAISE, no);
        } else if (strcmp(kw, "log") == 0) {
            if (n != 2 || !is_token(w[1])) return perr(ps, "line %d: log takes one word", no);
            block_add(ps, out, S_LOG, no)->word = w[1];
        } else if (strcmp(kw, "logexc") == 0) {
            if (!(ctx & CTX_EXCEPT)) return perr(ps, "line %d: logexc outside an except block", no);
            block_add(ps, out, S_LOGEXC, no);
        } else if (strcmp(kw, "yield_from") == 0) {
            if (n != 2) return perr(ps, "line %d: yield_from takes one name", no);
            block_add(ps, out, S_YIELD_FROM, no)->word = w[1];
        } else if (strcmp(kw, "call") == 0) {
            op o;
            if (op_words(ps, w + 1, n - 1, no, 1, &o)) return -1;
            block_add(ps, out, S_CALL, no)->call = o;
        } else if (strcmp(kw, "repeat") == 0 || strcmp(kw, "try") == 0) {
            if (ps->depth >= SCN_MAX_NESTING)
                return perr(ps, "line %d: blocks nested more than %d deep", no, SCN_MAX_NESTING);
            ps->depth++;
            int rc = kw[0] == 'r' ? parse_repeat(ps, i, ctx, w, n, no, out) : parse_try(ps, i, ctx, no, out);
            ps->depth--;
            if (rc) return -1;
        } else {
            return perr(ps, "line %d: unknown statement %s", no, repr_a(ps, kw));
        }
    }
    return 0;
}

static int walk_names(parser *ps, block *b) {
    for (size_t i = 0; i < b->n; i++) {
        stmt *s = &b->v[i];
        if (s->kind == S_YIELD_FROM) {
            s->target = find_def(ps->prog, s->word);
            if (!s->target) return perr(ps, "line %d: yield_from of unknown def %s", s->line, repr_a(ps, s->word));
        } else if (s->kind == S_REPEAT) {
            if (walk_names(ps, &s->body)) return -1;
        } else if (s->kind == S_TRY) {
            if (walk_names(ps, &s->body)) return -1;
            for (size_t h = 0; h < s->nhandlers; h++)
                if (walk_names(ps, &s->handlers[h].body)) return -1;
            if (walk_names(ps, &s->final)) return -1;
        }
    }
    return 0;
}

/* Instances must be started before use, and not twice while live. */
static int check_names(parser *ps) {
    program *p = ps->prog;
    for (size_t i = 0; i < p->ndefs; i++)
        if (walk_names(ps, &p->defs[i].body)) return -1;
    const char **live = NULL;
    size_t nlive = 0;
    for (size_t i = 0; i < p->nops; i++) {
        op *o = &p->ops[i];
        int no = p->op_lines[i];
        size_t k = 0;
        while (k < nlive && strcmp(live[k], o->id) != 0) k++;
        if (o->kind == OP_START) {
            if (!find_def(p, o->def)) return perr(ps, "line %d: start of unknown def %s", no, repr_a(ps, o->def));
            if (k < nlive) return perr(ps, "line %d: instance %s is already live", no, repr_a(ps, o->id));
            if (!live) live = a_alloc(ps->A, p->nops * sizeof *live);
            live[nlive++] = o->id;
        } else {
            if (k == nlive) return perr(ps, "line %d: no live instance %s", no, repr_a(ps, o->id));
            if (o->kind == OP_FREE) live[k] = live[--nlive];
        }
    }
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
        if (strcmp(ln->w[0], "def") == 0) {
            if (ln->n != 2 || !is_token(ln->w[1]) || find_def(p, ln->w[1]))
                return perr(ps, "line %d: def takes one new name", ln->no);
            block body = {0};
            const char *closer = NULL;
            i++;
            if (parse_block(ps, &i, 0, END_ONLY, &body, &closer)) return -1;
            if (!closer) return perr(ps, "line %d: def without end", ln->no);
            if (p->ndefs == p->capdefs) {
                size_t ncap = p->capdefs ? p->capdefs * 2 : 8;
                p->defs = a_grow(ps->A, p->defs, p->capdefs * sizeof *p->defs, ncap * sizeof *p->defs);
                p->capdefs = ncap;
            }
            p->defs[p->ndefs].name = ln->w[1];
            p->defs[p->ndefs].body = body;
            p->ndefs++;
            i++;
        } else {
            if (p->nops == p->capops) {
                size_t ncap = p->capops ? p->capops * 2 : 16;
                p->ops = a_grow(ps->A, p->ops, p->capops * sizeof *p->ops, ncap * sizeof *p->ops);
                p->op_lines = a_grow(ps->A, p->op_lines, p->capops * sizeof *p->op_lines, ncap * sizeof *p->op_lines);
                p->capops = ncap;
            }
            if (op_words(ps, ln->w, ln->n, ln->no, 0, &p->ops[p->nops])) return -1;
            p->op_lines[p->nops] = ln->no;
            p->nops++;
            i++;
        }
    }
    return check_names(ps);
}

/* ---------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------ */

/* Limits for runs that must end (fuzzing); 0 means no limit. A run with
 * limits is not comparable with the reference once a limit bites. */
typedef struct scn_limits {
    unsigned long long max_repeat; /* a `repeat N` runs at most this often */
    unsigned long long max_steps;  /* statements and loop turns per run */
} scn_limits;

/* Receives each trace line (without its newline). */
typedef void (*scn_emit)(void *ud, const char *line, size_t len);

typedef struct runner runner;

/* What a body runs: its definition, and how deep it is delegated. */
typedef struct launch {
    runner *r;
    const def *d;
    int level; /* 1 for a started instance, +1 per yield_from */
} launch;

typedef struct instance {
    const char *id; /* borrowed from the program */
    cg_gen *g;
    launch *l; /* owned; outlives g */
} instance;

struct runner {
    const program *prog;
    scn_limits lim;
    instance *insts; /* live instances, in the order they were started */
    size_t ninsts, capinsts;
    str events;      /* events of the current top-level operation */
    size_t nevents;
    str line;        /* the trace line being built */
    scn_emit emit;
    void *ud;
    int call_depth;  /* Python frames of bodies performing a `call` */
    unsigned long long steps;
    int aborting;    /* the step budget is used up: unwind, run nothing */
    int failed;      /* a generator could not be made (status 3) */
};

/* CPython 3.11's recursion limit, as the reference runner meets it: a
 * `yield_from` made at delegation level 992 (counting the started instance
 * as level 1) raises RecursionError instead. Frames of bodies that perform a
 * `call` count too (the body and the runner's own frame). Exact for
 * unbounded recursion and for chains past the limit, not at its edge (see
 * the top comment). */
#define MAX_DEPTH 992

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void event(runner *r, const char *fmt, ...) {
    va_list ap;
    if (r->nevents++) s_puts(&r->events, "; ");
    va_start(ap, fmt);
    s_vprintf(&r->events, fmt, ap);
    va_end(ap);
}

/* fmt_exc(): Type('word') <- context, at most 9 deep. */
static void fmt_exc(str *s, const cg_exc *e) {
    for (int depth = 0; e; depth++) {
        s_puts(s, cg_exc_type_of(e)->name);
        s_putc(s, '(');
        if (cg_exc_msg(e)) s_repr(s, cg_exc_msg(e));
        s_putc(s, ')');
        e = cg_exc_context(e);
        if (!e || depth >= 8) break;
        s_puts(s, " <- ");
    }
}

static instance *find_inst(runner *r, const char *id) {
    for (size_t i = 0; i < r->ninsts; i++)
        if (strcmp(r->insts[i].id, id) == 0) return &r->insts[i];
    return NULL;
}

static void *body(cg_gen *g, void *arg);

static void result_of(str *s, cg_status st, void *v, cg_exc *e, const char *ok) {
    if (st == CG_YIELDED) {
        s_puts(s, "yielded ");
        value_text(s, v);
    } else if (st == CG_RETURNED) {
        s_puts(s, ok);
        value_text(s, v);
    } else {
        s_puts(s, "raised ");
        fmt_exc(s, e);
        cg_exc_unref(e);
    }
}

static void unraisable(cg_exc *e, cg_gen *g, void *ud) {
    (void)g;
    str s = {0};
    fmt_exc(&s, e);
    event(ud, "unraisable %s", s.p);
    free(s.p);
}

/* RuntimeError('generator ignored GeneratorExit'), raised here so that it
 * is chained to what this context is handling, as close313 raises it. */
static cg_exc *ignored_exit(void) {
    cg_exc *volatile got = NULL;
    CG_TRY {
        CG_RAISE(&cg_RuntimeError, "generator ignored GeneratorExit");
    } CG_EXCEPT(&cg_RuntimeError, e) {
        got = cg_exc_ref(e);
    } CG_END;
    return got;
}

/* The `close` operation as the reference runner defines it (close313()):
 * with Python 3.13's result, the return value, and, on the 3.11 that the
 * reference traces come from, by throwing GeneratorExit. That differs from a
 * real close(), and from cg_close, in one way only: the GeneratorExit is not
 * chained to what the caller is handling. A fresh generator is closed for
 * real, so that nothing runs. */
static cg_status close_as_reference(cg_gen *g, void **v, cg_exc **e) {
    if (cg_gen_state(g) == CG_GEN_CREATED) return cg_close(g, v, e);
    cg_status st = cg_throw(g, cg_exc_new(&cg_GeneratorExit, NULL), v, e);
    if (st == CG_YIELDED) {
        *v = NULL;
        *e = ignored_exit();
        return CG_RAISED;
    }
    if (st == CG_RAISED && cg_exc_is(*e, &cg_GeneratorExit)) {
        cg_exc_unref(*e);
        *e = NULL;
        *v = NULL;
        return CG_RETURNED;
    }
    return st;
}

/* Performs an operation and writes its result text to s (op_result()). */
static void perform(runner *r, const op *o, str *s) {
    instance *in = o->kind == OP_START ? NULL : find_inst(r, o->id);
    if (o->kind != OP_START && !in) {
        s_puts(s, "missing"); /* only through `call`: the top level is checked */
        return;
    }
    void *v = NULL;
    cg_exc *e = NULL;
    cg_status st;
    switch (o->kind) {
    case OP_START: {
        launch *l = xrealloc(NULL, sizeof *l);
        l->r = r;
        l->d = find_def(r->prog, o->def);
        l->level = 1;
        cg_opts opts = {0, l->d->name, 0};
        cg_gen *g = cg_new(body, l, &opts);
        if (!g) {
            free(l);
            r->failed = 1;
            r->aborting = 1;
            s_puts(s, "cannot start: cg_new failed");
            return;
        }
        if (r->ninsts == r->capinsts) {
            r->capinsts = r->capinsts ? r->capinsts * 2 : 16;
            r->insts = xrealloc(r->insts, r->capinsts * sizeof *r->insts);
        }
        r->insts[r->ninsts++] = (instance){o->id, g, l};
        s_puts(s, "started");
        break;
    }
    case OP_STATE:
        s_puts(s, cg_state_name(cg_gen_state(in->g)));
        break;
    case OP_FREE: {
        /* Gone from the table before it is closed: a body that runs during
         * the close sees it as missing, as in the reference. */
        instance gone = *in;
        memmove(in, in + 1, (size_t)(r->insts + r->ninsts - (in + 1)) * sizeof *in);
        r->ninsts--;
        cg_free(gone.g);
        free(gone.l);
        s_puts(s, "freed");
        break;
    }
    case OP_NEXT:
        st = cg_next(in->g, &v, &e);
        result_of(s, st, v, e, "returned ");
        break;
    case OP_SEND:
        st = cg_send(in->g, (void *)o->val, &v, &e);
        result_of(s, st, v, e, "returned ");
        break;
    case OP_THROW:
        st = cg_throw(in->g, cg_exc_new(o->type, o->word), &v, &e);
        result_of(s, st, v, e, "returned ");
        break;
    case OP_CLOSE:
        st = close_as_reference(in->g, &v, &e);
        result_of(s, st, v, e, "closed ");
        break;
    }
}

enum { NORMAL = 0, RETURN = 1 };

/* One body's view while it runs. */
typedef struct frame {
    runner *r;
    cg_gen *g;
    const def *d;
    int level;
} frame;

static int exec_block(frame *f, const block *b, value *ret);

/* Counts one step against the budget; once it is used up, every step
 * raises ScenarioBudgetExceeded, so that all bodies unwind and end. */
static void step(frame *f) {
    runner *r = f->r;
    if (!r->aborting && r->lim.max_steps && ++r->steps > r->lim.max_steps) r->aborting = 1;
    if (r->aborting) CG_RAISE(&ScenarioBudgetExceeded, NULL);
}

static const handler *match_handler(const stmt *s, const cg_exc *e) {
    for (size_t i = 0; i < s->nhandlers; i++)
        if (cg_exc_is(e, s->handlers[i].type)) return &s->handlers[i];
    return NULL;
}

static int exec_try(frame *f, const stmt *s, value *ret) {
    volatile int res = NORMAL;
    value volatile rv = NULL;
    CG_TRY {
        value r = NULL;
        res = exec_block(f, &s->body, &r);
        rv = r;
    } CG_EXCEPT(&cg_BaseException, e) {
        const handler *h = f->r->aborting ? NULL : match_handler(s, e);
        if (!h) cg_reraise();
        value r = NULL;
        res = exec_block(f, &h->body, &r);
        rv = r;
    } CG_FINALLY {
        if (s->has_final && !f->r->aborting) {
            value r = NULL;
            if (exec_block(f, &s->final, &r) == RETURN) {
                /* `return` in finally wins over everything, a pending
                 * exception included: leaving the block drops it. */
                *ret = r;
                return RETURN;
            }
        }
    } CG_END;
    if (res == RETURN) *ret = rv;
    return res;
}

static int exec_block(frame *f, const block *b, value *ret) {
    runner *r = f->r;
    const char *name = f->d->name;
    for (size_t i = 0; i < b->n; i++) {
        const stmt *s = &b->v[i];
        step(f);
        switch (s->kind) {
        case S_YIELD: {
            value v = cg_yield(f->g, (void *)s->val);
            event(r, "%s:recv %s", name, v ? v : "None");
            break;
        }
        case S_RETURN:
            *ret = s->val;
            return RETURN;
        case S_RAISE:
            CG_RAISE(s->type, s->word);
        case S_RERAISE:
            cg_reraise();
        case S_LOG:
            event(r, "%s:%s", name, s->word);
            break;
        case S_LOGEXC: {
            str t = {0};
            fmt_exc(&t, cg_exc_current());
            event(r, "%s:exc %s", name, s_text(&t));
            free(t.p);
            break;
        }
        case S_YIELD_FROM: {
            if (r->call_depth + f->level >= MAX_DEPTH)
                CG_RAISE(&cg_RecursionError, "maximum recursion depth exceeded");
            cg_opts opts = {0, s->target->name, 0};
            launch sub = {r, s->target, f->level + 1};
            value v = cg_yield_from_new(f->g, body, &sub, &opts);
            event(r, "%s:yf %s", name, v ? v : "None");
            break;
        }
        case S_CALL: {
            str res = {0};
            r->call_depth += f->level + 1;
            perform(r, &s->call, &res);
            r->call_depth -= f->level + 1;
            event(r, "%s:call %s -> %s", name, s->call.text, s_text(&res));
            free(res.p);
            break;
        }
        case S_REPEAT: {
            unsigned long long n = s->count;
            if (r->lim.max_repeat && n > r->lim.max_repeat) n = r->lim.max_repeat;
            for (unsigned long long k = 0; k < n; k++) {
                if (k) step(f);
                if (exec_block(f, &s->body, ret) == RETURN) return RETURN;
            }
            break;
        }
        case S_TRY:
            if (exec_try(f, s, ret) == RETURN) return RETURN;
            break;
        }
    }
    return NORMAL;
}

static void *body(cg_gen *g, void *arg) {
    const launch *l = arg;
    frame f = {l->r, g, l->d, l->level};
    value ret = NULL;
    exec_block(&f, &l->d->body, &ret);
    return (void *)ret;
}

/* One trace line: OP -> RESULT [EVENTS] STATE. */
static void line_out(runner *r, const op *o) {
    s_clear(&r->events);
    r->nevents = 0;
    str res = {0};
    perform(r, o, &res);
    str *ln = &r->line;
    s_clear(ln);
    s_puts(ln, o->text);
    s_puts(ln, " -> ");
    s_puts(ln, s_text(&res));
    s_puts(ln, " [");
    s_puts(ln, s_text(&r->events));
    s_putc(ln, ']');
    free(res.p);
    if (o->kind != OP_FREE) {
        instance *in = find_inst(r, o->id);
        if (in) {
            s_putc(ln, ' ');
            s_puts(ln, cg_state_name(cg_gen_state(in->g)));
        }
    }
    if (r->emit) r->emit(r->ud, ln->p, ln->len);
}

/* Parses and runs a scenario held in memory (it need not be NUL-terminated).
 * Returns 0 after emitting the trace, 2 for an invalid scenario (nothing
 * emitted; *err, which the caller frees, gets the message without the
 * "scenario error: " prefix), 3 when a generator could not be made. limits
 * may be NULL (no limits). Installs its own unraisable hook for the run and
 * restores the default one. */
static int scn_run(const char *text, size_t size, const scn_limits *limits, scn_emit emit, void *ud, char **err) {
    arena A = {0};
    program prog = {0};
    parser ps = {0};
    ps.A = &A;
    ps.prog = &prog;
    *err = NULL;
    if (parse(&ps, text, size)) {
        *err = ps.err.p;
        a_free(&A);
        return 2;
    }
    free(ps.err.p);

    runner r = {0};
    r.prog = &prog;
    if (limits) r.lim = *limits;
    r.emit = emit;
    r.ud = ud;
    cg_set_unraisable_hook(unraisable, &r);
    for (size_t i = 0; i < prog.nops && !r.aborting; i++) line_out(&r, &prog.ops[i]);
    while (r.ninsts) {
        str t = {0};
        s_puts(&t, "free ");
        s_puts(&t, r.insts[0].id);
        op o = {OP_FREE, r.insts[0].id, NULL, NULL, NULL, NULL, NULL};
        o.text = t.p;
        line_out(&r, &o);
        free(t.p);
    }
    cg_set_unraisable_hook(NULL, NULL);
    free(r.insts);
    free(r.events.p);
    free(r.line.p);
    a_free(&A);
    return r.failed ? 3 : 0;
}

#ifndef SCENARIO_NO_MAIN

typedef struct out_state {
    FILE *f;
    size_t lines;
} out_state;

static void emit_stdout(void *ud, const char *line, size_t len) {
    out_state *o = ud;
    for (size_t i = 0; i < len; i++) /* a NUL the scenario had (see lex) */
        putc((unsigned char)line[i] == NUL_STANDIN ? '\0' : line[i], o->f);
    fputc('\n', o->f);
    o->lines++;
}

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
        fputs("usage: cogen-scenario FILE\n", stderr);
        return 2;
    }
    size_t size = 0;
    char *text = read_file(argv[1], &size);
    if (!text) {
        fprintf(stderr, "cogen-scenario: cannot open %s\n", argv[1]);
        return 2;
    }
    out_state o = {stdout, 0};
    char *err = NULL;
    int rc = scn_run(text, size, NULL, emit_stdout, &o, &err);
    free(text);
    if (rc == 2) {
        fprintf(stderr, "scenario error: %s\n", err);
        free(err);
        return 2;
    }
    if (rc == 3) fputs("cogen-scenario: cannot make a generator\n", stderr);
    /* The reference prints its lines joined by newlines: no line at all is
     * one empty line. */
    if (o.lines == 0) putchar('\n');
    fflush(stdout);
    return rc;
}

#endif /* SCENARIO_NO_MAIN */
