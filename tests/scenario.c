/* scenario.c: cogen-scenario, the scenario runner.
 *
 * Implements the scenario language of shared/semantics/SCENARIO.md on
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
 */
#include <cogen.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The two user-defined types of the language. */
CG_EXC_TYPE(AppError, cg_Exception);
CG_EXC_TYPE(SubAppError, AppError);

static const cg_exc_type *const TYPES[] = {
    &cg_BaseException, &cg_Exception, &cg_GeneratorExit, &cg_StopIteration, &cg_RuntimeError, &cg_ValueError,
    &cg_TypeError,     &cg_LookupError, &cg_KeyError,     &AppError,         &SubAppError,
};
#define NTYPES (sizeof TYPES / sizeof TYPES[0])

/* ---------------------------------------------------------------------
 * Small utilities
 * ------------------------------------------------------------------ */

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fputs("cogen-scenario: out of memory\n", stderr);
        exit(3);
    }
    return p;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(xmalloc(n), s, n);
}

/* A growable string. */
typedef struct str {
    char *p;
    size_t len, cap;
} str;

static void s_putn(str *s, const char *t, size_t n) {
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        while (cap < s->len + n + 1) cap *= 2;
        char *p = realloc(s->p, cap);
        if (!p) {
            fputs("cogen-scenario: out of memory\n", stderr);
            exit(3);
        }
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = '\0';
}
static void s_puts(str *s, const char *t) { s_putn(s, t, strlen(t)); }
static void s_putc(str *s, char c) { s_putn(s, &c, 1); }

/* Python's repr() of a str (ASCII escapes; other bytes pass through). */
static void s_repr(str *s, const char *t) {
    char q = (strchr(t, '\'') && !strchr(t, '"')) ? '"' : '\'';
    s_putc(s, q);
    for (const unsigned char *c = (const unsigned char *)t; *c; c++) {
        char buf[8];
        if (*c == q || *c == '\\') {
            s_putc(s, '\\');
            s_putc(s, (char)*c);
        } else if (*c == '\n') {
            s_puts(s, "\\n");
        } else if (*c == '\r') {
            s_puts(s, "\\r");
        } else if (*c == '\t') {
            s_puts(s, "\\t");
        } else if (*c < 0x20 || *c == 0x7f) {
            snprintf(buf, sizeof buf, "\\x%02x", *c);
            s_puts(s, buf);
        } else {
            s_putc(s, (char)*c);
        }
    }
    s_putc(s, q);
}

/* ---------------------------------------------------------------------
 * The program: definitions and operations
 * ------------------------------------------------------------------ */

/* A value is NULL (None) or a canonical decimal string: values only ever
 * travel through the generators and get printed, so no arithmetic. */
typedef const char *value;

enum op_kind { OP_START, OP_NEXT, OP_SEND, OP_THROW, OP_CLOSE, OP_STATE, OP_FREE };

typedef struct op {
    enum op_kind kind;
    char *id;
    char *def;                 /* OP_START */
    value val;                 /* OP_SEND */
    const cg_exc_type *type;   /* OP_THROW */
    char *word;                /* OP_THROW, may be NULL */
    char *text;                /* how the trace names the operation */
} op;

enum stmt_kind { S_YIELD, S_RETURN, S_RAISE, S_RERAISE, S_LOG, S_LOGEXC, S_YIELD_FROM, S_CALL, S_REPEAT, S_TRY };

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
    value val;               /* S_YIELD, S_RETURN */
    const cg_exc_type *type; /* S_RAISE */
    char *word;              /* S_RAISE (may be NULL), S_LOG, S_YIELD_FROM */
    struct def *target;      /* S_YIELD_FROM, resolved after parsing */
    op call;                 /* S_CALL */
    unsigned long long count; /* S_REPEAT */
    block body;              /* S_REPEAT, S_TRY */
    handler *handlers;       /* S_TRY */
    size_t nhandlers;
    block final;             /* S_TRY */
    int has_final;
};

typedef struct def {
    char *name;
    block body;
} def;

typedef struct program {
    def *defs;
    size_t ndefs, capdefs;
    op *ops;
    int *op_lines;
    size_t nops, capops;
} program;

static stmt *block_add(block *b) {
    if (b->n == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 4;
        stmt *v = realloc(b->v, b->cap * sizeof *v);
        if (!v) exit(3);
        b->v = v;
    }
    stmt *s = &b->v[b->n++];
    memset(s, 0, sizeof *s);
    return s;
}

static def *find_def(program *p, const char *name) {
    for (size_t i = 0; i < p->ndefs; i++)
        if (strcmp(p->defs[i].name, name) == 0) return &p->defs[i];
    return NULL;
}

/* ---------------------------------------------------------------------
 * Lexing, as Python's str.splitlines / str.split / str.strip do it
 * ------------------------------------------------------------------ */

/* Length of a line break at p (0 if none): \n \r \r\n \v \f \x1c-\x1e and
 * UTF-8 NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR. */
static size_t linebreak_len(const unsigned char *p, const unsigned char *end) {
    if (p >= end) return 0;
    switch (*p) {
    case '\r':
        return (p + 1 < end && p[1] == '\n') ? 2 : 1;
    case '\n': case '\v': case '\f': case 0x1c: case 0x1d: case 0x1e:
        return 1;
    case 0xc2:
        return (p + 1 < end && p[1] == 0x85) ? 2 : 0;
    case 0xe2:
        return (p + 2 < end && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) ? 3 : 0;
    }
    return 0;
}

/* Length of a whitespace character at p (0 if none), as str.isspace(). */
static size_t space_len(const unsigned char *p, const unsigned char *end) {
    if (p >= end) return 0;
    if (*p == ' ' || (*p >= '\t' && *p <= '\r') || (*p >= 0x1c && *p <= 0x1f)) return 1;
    if (*p == 0xc2 && p + 1 < end && (p[1] == 0x85 || p[1] == 0xa0)) return 2;
    if (p + 2 < end) {
        if (p[0] == 0xe1 && p[1] == 0x9a && p[2] == 0x80) return 3;
        if (p[0] == 0xe2 && p[1] == 0x80 && ((p[2] >= 0x80 && p[2] <= 0x8a) || p[2] == 0xa8 || p[2] == 0xa9 || p[2] == 0xaf))
            return 3;
        if (p[0] == 0xe2 && p[1] == 0x81 && p[2] == 0x9f) return 3;
        if (p[0] == 0xe3 && p[1] == 0x80 && p[2] == 0x80) return 3;
    }
    return 0;
}

typedef struct line {
    int no;
    char **w;
    size_t n;
} line;

typedef struct lines {
    line *v;
    size_t n, cap;
} lines;

/* Splits one line's text (comment already cut) into words. */
static void split_words(const unsigned char *p, const unsigned char *end, line *ln) {
    size_t cap = 0;
    ln->w = NULL;
    ln->n = 0;
    while (p < end) {
        size_t k;
        while (p < end && (k = space_len(p, end)) != 0) p += k;
        if (p >= end) break;
        const unsigned char *start = p;
        while (p < end && space_len(p, end) == 0) p++;
        if (ln->n == cap) {
            cap = cap ? cap * 2 : 4;
            char **w = realloc(ln->w, cap * sizeof *w);
            if (!w) exit(3);
            ln->w = w;
        }
        size_t len = (size_t)(p - start);
        char *word = xmalloc(len + 1);
        memcpy(word, start, len);
        word[len] = '\0';
        ln->w[ln->n++] = word;
    }
}

static void lex(const char *text, size_t size, lines *out) {
    const unsigned char *p = (const unsigned char *)text, *end = p + size;
    int no = 0;
    while (p < end) {
        const unsigned char *start = p;
        size_t br = 0;
        while (p < end && (br = linebreak_len(p, end)) == 0) p++;
        const unsigned char *stop = p;
        p += br;
        no++;
        const unsigned char *hash = memchr(start, '#', (size_t)(stop - start));
        if (hash) stop = hash;
        line ln = {no, NULL, 0};
        split_words(start, stop, &ln);
        if (ln.n == 0) {
            free(ln.w);
            continue;
        }
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 64;
            line *v = realloc(out->v, out->cap * sizeof *v);
            if (!v) exit(3);
            out->v = v;
        }
        out->v[out->n++] = ln;
    }
}

/* ---------------------------------------------------------------------
 * Parsing, mirroring scenario_ref.py's parse()
 * ------------------------------------------------------------------ */

static void scenario_error(const char *fmt, ...) {
    va_list ap;
    fputs("scenario error: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(2);
}

static char *repr_of(const char *t) {
    str s = {0};
    s_repr(&s, t);
    return s.p;
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

static value parse_value(const char *tok, int no) {
    if (strcmp(tok, "None") == 0) return NULL;
    const char *d = tok + (*tok == '-');
    int ok = *d != '\0';
    for (const char *c = d; *c; c++)
        if (*c < '0' || *c > '9') ok = 0;
    if (!ok) {
        char *r = repr_of(tok);
        scenario_error("line %d: bad value %s", no, r);
    }
    while (*d == '0' && d[1]) d++;
    int neg = *tok == '-' && strcmp(d, "0") != 0;
    str s = {0};
    if (neg) s_putc(&s, '-');
    s_puts(&s, d);
    return s.p;
}

static void exc_words(char **w, size_t n, int no, const cg_exc_type **type, char **word) {
    if ((n != 1 && n != 2) || !(*type = find_type(w[0])) || (n == 2 && !is_token(w[1])))
        scenario_error("line %d: expected a known exception type and an optional word", no);
    *word = n == 2 ? w[1] : NULL;
}

static void value_text(str *s, value v) { s_puts(s, v ? v : "None"); }

static void op_words(char **w, size_t n, int no, int inside, op *o) {
    const char *kw = n ? w[0] : "";
    memset(o, 0, sizeof *o);
    str t = {0};
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
        o->val = parse_value(w[2], no);
    } else if (strcmp(kw, "throw") == 0 && (n == 3 || n == 4)) {
        o->kind = OP_THROW;
        o->id = w[1];
        exc_words(w + 2, n - 2, no, &o->type, &o->word);
    } else {
        for (size_t i = 0; i < n; i++) {
            if (i) s_putc(&t, ' ');
            s_puts(&t, w[i]);
        }
        char *r = repr_of(t.p ? t.p : "");
        scenario_error("line %d: bad operation %s", no, r);
    }
    /* The trace's name for it: words joined, a sent value as its repr. */
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
    o->text = t.p;
}

typedef struct parser {
    lines *L;
    program *prog;
} parser;

enum { CTX_EXCEPT = 1 };

/* Parses statements until a word of closers (NULL-terminated); returns the
 * index reached and the closer found there (NULL at the end). */
static size_t parse_block(parser *ps, size_t i, int ctx, const char *const *closers, block *out, const char **closer) {
    lines *L = ps->L;
    while (i < L->n) {
        line *ln = &L->v[i];
        char **w = ln->w;
        size_t n = ln->n;
        const char *kw = w[0];
        int no = ln->no;
        for (const char *const *c = closers; *c; c++)
            if (strcmp(kw, *c) == 0) {
                *closer = *c;
                return i;
            }
        i++;
        if (strcmp(kw, "yield") == 0) {
            if (n != 2) scenario_error("line %d: yield takes one value", no);
            stmt *s = block_add(out);
            s->kind = S_YIELD;
            s->line = no;
            s->val = parse_value(w[1], no);
        } else if (strcmp(kw, "return") == 0) {
            if (n > 2) scenario_error("line %d: return takes at most one value", no);
            stmt *s = block_add(out);
            s->kind = S_RETURN;
            s->line = no;
            s->val = n == 2 ? parse_value(w[1], no) : NULL;
        } else if (strcmp(kw, "raise") == 0) {
            const cg_exc_type *type;
            char *word;
            exc_words(w + 1, n - 1, no, &type, &word);
            stmt *s = block_add(out);
            s->kind = S_RAISE;
            s->line = no;
            s->type = type;
            s->word = word;
        } else if (strcmp(kw, "reraise") == 0) {
            if (!(ctx & CTX_EXCEPT)) scenario_error("line %d: reraise outside an except block", no);
            block_add(out)->kind = S_RERAISE;
        } else if (strcmp(kw, "log") == 0) {
            if (n != 2 || !is_token(w[1])) scenario_error("line %d: log takes one word", no);
            stmt *s = block_add(out);
            s->kind = S_LOG;
            s->word = w[1];
        } else if (strcmp(kw, "logexc") == 0) {
            if (!(ctx & CTX_EXCEPT)) scenario_error("line %d: logexc outside an except block", no);
            block_add(out)->kind = S_LOGEXC;
        } else if (strcmp(kw, "yield_from") == 0) {
            if (n != 2) scenario_error("line %d: yield_from takes one name", no);
            stmt *s = block_add(out);
            s->kind = S_YIELD_FROM;
            s->line = no;
            s->word = w[1];
        } else if (strcmp(kw, "call") == 0) {
            op o;
            op_words(w + 1, n - 1, no, 1, &o);
            stmt *s = block_add(out);
            s->kind = S_CALL;
            s->call = o;
        } else if (strcmp(kw, "repeat") == 0) {
            int ok = n == 2 && *w[1];
            for (const char *c = ok ? w[1] : ""; *c; c++)
                if (*c < '0' || *c > '9') ok = 0;
            if (!ok) scenario_error("line %d: repeat takes a count", no);
            unsigned long long count = 0;
            for (const char *c = w[1]; *c; c++)
                count = count > (~0ull - 9) / 10 ? ~0ull : count * 10 + (unsigned)(*c - '0');
            block body = {0};
            static const char *const end_only[] = {"end", NULL};
            const char *cl = NULL;
            i = parse_block(ps, i, ctx, end_only, &body, &cl) + 1;
            stmt *s = block_add(out);
            s->kind = S_REPEAT;
            s->count = count;
            s->body = body;
        } else if (strcmp(kw, "try") == 0) {
            static const char *const try_closers[] = {"except", "finally", "end", NULL};
            static const char *const end_only[] = {"end", NULL};
            block body = {0}, final = {0};
            handler *hs = NULL;
            size_t nh = 0;
            int has_final = 0;
            const char *kw2 = NULL;
            i = parse_block(ps, i, ctx, try_closers, &body, &kw2);
            while (kw2 && strcmp(kw2, "except") == 0) {
                line *l2 = &L->v[i];
                const cg_exc_type *t = l2->n == 2 ? find_type(l2->w[1]) : NULL;
                if (!t) scenario_error("line %d: except takes one known type", l2->no);
                i++;
                handler h = {t, {0}};
                kw2 = NULL;
                i = parse_block(ps, i, ctx | CTX_EXCEPT, try_closers, &h.body, &kw2);
                hs = realloc(hs, (nh + 1) * sizeof *hs);
                if (!hs) exit(3);
                hs[nh++] = h;
            }
            if (kw2 && strcmp(kw2, "finally") == 0) {
                i++;
                has_final = 1;
                kw2 = NULL;
                i = parse_block(ps, i, ctx, end_only, &final, &kw2);
            }
            if (!kw2 || strcmp(kw2, "end") != 0) scenario_error("line %d: try without end", no);
            if (!nh && !has_final) scenario_error("line %d: try needs an except or a finally", no);
            i++;
            stmt *s = block_add(out);
            s->kind = S_TRY;
            s->body = body;
            s->handlers = hs;
            s->nhandlers = nh;
            s->final = final;
            s->has_final = has_final;
        } else {
            char *r = repr_of(kw);
            scenario_error("line %d: unknown statement %s", no, r);
        }
    }
    *closer = NULL;
    return i;
}

static void walk_names(program *p, block *b) {
    for (size_t i = 0; i < b->n; i++) {
        stmt *s = &b->v[i];
        if (s->kind == S_YIELD_FROM) {
            s->target = find_def(p, s->word);
            if (!s->target) {
                char *r = repr_of(s->word);
                scenario_error("line %d: yield_from of unknown def %s", s->line, r);
            }
        } else if (s->kind == S_REPEAT) {
            walk_names(p, &s->body);
        } else if (s->kind == S_TRY) {
            walk_names(p, &s->body);
            for (size_t h = 0; h < s->nhandlers; h++) walk_names(p, &s->handlers[h].body);
            walk_names(p, &s->final);
        }
    }
}

typedef struct names {
    char **v;
    size_t n, cap;
} names;

static int names_find(names *ns, const char *id) {
    for (size_t i = 0; i < ns->n; i++)
        if (strcmp(ns->v[i], id) == 0) return (int)i;
    return -1;
}

static void check_names(program *p) {
    for (size_t i = 0; i < p->ndefs; i++) walk_names(p, &p->defs[i].body);
    names live = {0};
    for (size_t i = 0; i < p->nops; i++) {
        op *o = &p->ops[i];
        int no = p->op_lines[i];
        if (o->kind == OP_START) {
            if (!find_def(p, o->def)) {
                char *r = repr_of(o->def);
                scenario_error("line %d: start of unknown def %s", no, r);
            }
            if (names_find(&live, o->id) >= 0) {
                char *r = repr_of(o->id);
                scenario_error("line %d: instance %s is already live", no, r);
            }
            if (live.n == live.cap) {
                live.cap = live.cap ? live.cap * 2 : 16;
                live.v = realloc(live.v, live.cap * sizeof *live.v);
                if (!live.v) exit(3);
            }
            live.v[live.n++] = o->id;
        } else {
            int k = names_find(&live, o->id);
            if (k < 0) {
                char *r = repr_of(o->id);
                scenario_error("line %d: no live instance %s", no, r);
            }
            if (o->kind == OP_FREE) live.v[k] = live.v[--live.n];
        }
    }
    free(live.v);
}

static void parse(const char *text, size_t size, program *p) {
    lines L = {0};
    lex(text, size, &L);
    parser ps = {&L, p};
    size_t i = 0;
    while (i < L.n) {
        line *ln = &L.v[i];
        if (strcmp(ln->w[0], "def") == 0) {
            if (ln->n != 2 || !is_token(ln->w[1]) || find_def(p, ln->w[1]))
                scenario_error("line %d: def takes one new name", ln->no);
            block body = {0};
            static const char *const end_only[] = {"end", NULL};
            const char *closer = NULL;
            i = parse_block(&ps, i + 1, 0, end_only, &body, &closer);
            if (!closer) scenario_error("line %d: def without end", ln->no);
            if (p->ndefs == p->capdefs) {
                p->capdefs = p->capdefs ? p->capdefs * 2 : 8;
                p->defs = realloc(p->defs, p->capdefs * sizeof *p->defs);
                if (!p->defs) exit(3);
            }
            p->defs[p->ndefs].name = ln->w[1];
            p->defs[p->ndefs].body = body;
            p->ndefs++;
            i++;
        } else {
            if (p->nops == p->capops) {
                p->capops = p->capops ? p->capops * 2 : 16;
                p->ops = realloc(p->ops, p->capops * sizeof *p->ops);
                p->op_lines = realloc(p->op_lines, p->capops * sizeof *p->op_lines);
                if (!p->ops || !p->op_lines) exit(3);
            }
            op_words(ln->w, ln->n, ln->no, 0, &p->ops[p->nops]);
            p->op_lines[p->nops] = ln->no;
            p->nops++;
            i++;
        }
    }
    check_names(p);
}

/* ---------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------ */

/* What a body runs: its definition, and how deep it is delegated. */
typedef struct launch {
    def *d;
    int level;
} launch;

typedef struct instance {
    char *id;
    cg_gen *g;
    launch *l;
} instance;

static instance *insts; /* live instances, in the order they were started */
static size_t ninsts, capinsts;
static str events;      /* events of the current top-level operation */
static size_t nevents;
static program prog;

/* CPython 3.11's recursion limit, as the reference runner meets it: a
 * `yield_from` made at delegation level 992 (counting the started instance
 * as level 1) raises RecursionError instead. Frames of bodies that perform a
 * `call` count too (the body and the runner's own frame). */
#define MAX_DEPTH 992
static int call_depth;

static void event(const char *fmt, ...) {
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (nevents++) s_puts(&events, "; ");
    if (n >= 0 && (size_t)n < sizeof small) {
        s_puts(&events, small);
        return;
    }
    char *big = xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    s_puts(&events, big);
    free(big);
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

static instance *find_inst(const char *id) {
    for (size_t i = 0; i < ninsts; i++)
        if (strcmp(insts[i].id, id) == 0) return &insts[i];
    return NULL;
}

static void *body(cg_gen *g, void *arg);

static void result_value(str *s, const char *what, value v) {
    s_puts(s, what);
    value_text(s, v);
}

static void result_exc(str *s, cg_exc *e) {
    s_puts(s, "raised ");
    fmt_exc(s, e);
    cg_exc_unref(e);
}

static void result_of(str *s, cg_status st, void *v, cg_exc *e, const char *ok) {
    if (st == CG_YIELDED)
        result_value(s, "yielded ", v);
    else if (st == CG_RETURNED)
        result_value(s, ok, v);
    else
        result_exc(s, e);
}

static void unraisable(cg_exc *e, cg_gen *g, void *ud) {
    (void)g;
    (void)ud;
    str s = {0};
    fmt_exc(&s, e);
    event("unraisable %s", s.p);
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

/* Performs an operation and returns its result text (op_result()). */
static char *perform(const op *o) {
    str s = {0};
    instance *in = o->kind == OP_START ? NULL : find_inst(o->id);
    if (o->kind != OP_START && !in) {
        s_puts(&s, "missing");
        return s.p;
    }
    void *v = NULL;
    cg_exc *e = NULL;
    cg_status st;
    switch (o->kind) {
    case OP_START: {
        def *d = find_def(&prog, o->def);
        cg_opts opts = {0, d->name, 0};
        launch *l = xmalloc(sizeof *l);
        l->d = d;
        l->level = 1;
        cg_gen *g = cg_new(body, l, &opts);
        if (!g) {
            perror("cogen-scenario: cg_new");
            exit(3);
        }
        if (ninsts == capinsts) {
            capinsts = capinsts ? capinsts * 2 : 16;
            insts = realloc(insts, capinsts * sizeof *insts);
            if (!insts) exit(3);
        }
        insts[ninsts].id = o->id;
        insts[ninsts].g = g;
        insts[ninsts].l = l;
        ninsts++;
        s_puts(&s, "started");
        break;
    }
    case OP_STATE:
        s_puts(&s, cg_state_name(cg_gen_state(in->g)));
        break;
    case OP_FREE: {
        instance gone = *in;
        memmove(in, in + 1, (size_t)(insts + ninsts - (in + 1)) * sizeof *in);
        ninsts--;
        cg_free(gone.g);
        free(gone.l);
        s_puts(&s, "freed");
        break;
    }
    case OP_NEXT:
        st = cg_next(in->g, &v, &e);
        result_of(&s, st, v, e, "returned ");
        break;
    case OP_SEND:
        st = cg_send(in->g, (void *)o->val, &v, &e);
        result_of(&s, st, v, e, "returned ");
        break;
    case OP_THROW:
        st = cg_throw(in->g, cg_exc_new(o->type, o->word), &v, &e);
        result_of(&s, st, v, e, "returned ");
        break;
    case OP_CLOSE:
        st = close_as_reference(in->g, &v, &e);
        result_of(&s, st, v, e, "closed ");
        break;
    }
    return s.p;
}

enum { NORMAL = 0, RETURN = 1 };

typedef struct frame {
    cg_gen *g;
    def *d;
    int level;
} frame;

static int exec_block(frame *f, const block *b, value *ret);

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
        const handler *h = match_handler(s, e);
        if (!h) cg_reraise();
        value r = NULL;
        res = exec_block(f, &h->body, &r);
        rv = r;
    } CG_FINALLY {
        if (s->has_final) {
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

static void too_deep(void) {
    CG_RAISE(&cg_RecursionError, "maximum recursion depth exceeded while calling a Python object");
}

static int exec_block(frame *f, const block *b, value *ret) {
    const char *name = f->d->name;
    for (size_t i = 0; i < b->n; i++) {
        const stmt *s = &b->v[i];
        switch (s->kind) {
        case S_YIELD: {
            value r = cg_yield(f->g, (void *)s->val);
            event("%s:recv %s", name, r ? r : "None");
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
            event("%s:%s", name, s->word);
            break;
        case S_LOGEXC: {
            str t = {0};
            fmt_exc(&t, cg_exc_current());
            event("%s:exc %s", name, t.p);
            free(t.p);
            break;
        }
        case S_YIELD_FROM: {
            if (call_depth + f->level >= MAX_DEPTH) too_deep();
            cg_opts opts = {0, s->target->name, 0};
            launch sub = {s->target, f->level + 1};
            value v = cg_yield_from_new(f->g, body, &sub, &opts);
            event("%s:yf %s", name, v ? v : "None");
            break;
        }
        case S_CALL: {
            call_depth += f->level + 1;
            char *r = perform(&s->call);
            call_depth -= f->level + 1;
            event("%s:call %s -> %s", name, s->call.text, r);
            free(r);
            break;
        }
        case S_REPEAT:
            for (unsigned long long k = 0; k < s->count; k++)
                if (exec_block(f, &s->body, ret) == RETURN) return RETURN;
            break;
        case S_TRY:
            if (exec_try(f, s, ret) == RETURN) return RETURN;
            break;
        }
    }
    return NORMAL;
}

static void *body(cg_gen *g, void *arg) {
    const launch *l = arg;
    frame f = {g, l->d, l->level};
    value r = NULL;
    exec_block(&f, &f.d->body, &r);
    return (void *)r;
}

static void line_out(const op *o) {
    events.len = 0;
    if (events.p) events.p[0] = '\0';
    nevents = 0;
    char *res = perform(o);
    printf("%s -> %s [%s]", o->text, res, events.p ? events.p : "");
    if (o->kind != OP_FREE) {
        instance *in = find_inst(o->id);
        printf(" %s", cg_state_name(cg_gen_state(in->g)));
    }
    putchar('\n');
    free(res);
}

static char *read_file(const char *path, size_t *size) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "cogen-scenario: cannot open %s\n", path);
        exit(2);
    }
    str s = {0};
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, fp)) > 0) s_putn(&s, buf, n);
    fclose(fp);
    *size = s.len;
    return s.p ? s.p : xstrdup("");
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fputs("usage: cogen-scenario FILE\n", stderr);
        return 2;
    }
    size_t size;
    char *text = read_file(argv[1], &size);
    parse(text, size, &prog);
    cg_set_unraisable_hook(unraisable, NULL);
    for (size_t i = 0; i < prog.nops; i++) line_out(&prog.ops[i]);
    while (ninsts) {
        op o = {OP_FREE, insts[0].id, NULL, NULL, NULL, NULL, NULL};
        str t = {0};
        s_puts(&t, "free ");
        s_puts(&t, insts[0].id);
        o.text = t.p;
        line_out(&o);
        free(t.p);
    }
    fflush(stdout);
    return 0;
}
