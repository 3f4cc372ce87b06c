/* scenario_text.h: what the two scenario runners share, the generator one
 * (scenario.c) and the asyncio one (async_scenario.c): a growable string
 * with Python's repr, an arena, and the lexer that splits a scenario into
 * lines and words as Python's str.splitlines / str.split do. Static
 * functions, included once by each runner; SCN_PROG (the program's name,
 * for the out-of-memory message) is defined before the include. */
#ifndef COGEN_SCENARIO_TEXT_H
#define COGEN_SCENARIO_TEXT_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SCN_PROG
#error "define SCN_PROG before including scenario_text.h"
#endif

/* ---------------------------------------------------------------------
 * Small utilities
 * ------------------------------------------------------------------ */

/* Out of memory is the one failure that ends the process: every size here
 * is proportional to the input or to what the scenario runs. */
static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p) {
        fputs(SCN_PROG ": out of memory\n", stderr);
        abort();
    }
    return p;
}

/* A growable string; {0} is the empty string. */
typedef struct str {
    char *p;    /* NUL-terminated once anything was added */
    size_t len; /* bytes before the NUL */
    size_t cap; /* bytes allocated */
} str;

static void s_putn(str *s, const char *t, size_t n) {
    if (s->len + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        while (cap < s->len + n + 1) cap *= 2;
        s->p = xrealloc(s->p, cap);
        s->cap = cap;
    }
    memcpy(s->p + s->len, t, n);
    s->len += n;
    s->p[s->len] = '\0';
}
static void s_puts(str *s, const char *t) { s_putn(s, t, strlen(t)); }
static void s_putc(str *s, char c) { s_putn(s, &c, 1); }
static void s_clear(str *s) {
    s->len = 0;
    if (s->p) s->p[0] = '\0';
}
static const char *s_text(const str *s) { return s->p ? s->p : ""; }

static void s_vprintf(str *s, const char *fmt, va_list ap) {
    char small[256];
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return;
    }
    if ((size_t)n < sizeof small) {
        s_putn(s, small, (size_t)n);
    } else {
        char *big = xrealloc(NULL, (size_t)n + 1);
        vsnprintf(big, (size_t)n + 1, fmt, ap2);
        s_putn(s, big, (size_t)n);
        free(big);
    }
    va_end(ap2);
}

/* A NUL byte is an ordinary character to the reference (a word "a\0b" is
 * one word, and not a valid name or value). Words here are C strings, so
 * a NUL in a word is kept as the byte 0xFF, which valid UTF-8 never holds
 * (the text is checked first): it fails every check a NUL fails, and turns
 * back into NUL on output (emit_stdout) and into \x00 in messages
 * (s_repr). */
#define NUL_STANDIN 0xff

/* The assigned code points above ASCII that Python's str.isprintable()
 * rejects (Unicode 14, CPython 3.11: other controls, format characters,
 * separators other than the space, private use), which repr() escapes.
 * Unassigned code points are escaped by Python too; they are not listed. */
static const struct {
    uint32_t lo, hi;
} unprintable[] = {
    {0x80, 0xa0}, {0xad, 0xad}, {0x600, 0x605}, {0x61c, 0x61c}, {0x6dd, 0x6dd}, {0x70f, 0x70f},
    {0x890, 0x891}, {0x8e2, 0x8e2}, {0x1680, 0x1680}, {0x180e, 0x180e}, {0x2000, 0x200f},
    {0x2028, 0x202f}, {0x205f, 0x2064}, {0x2066, 0x206f}, {0x3000, 0x3000}, {0xe000, 0xf8ff},
    {0xfeff, 0xfeff}, {0xfff9, 0xfffb}, {0x110bd, 0x110bd}, {0x110cd, 0x110cd}, {0x13430, 0x13438},
    {0x1bca0, 0x1bca3}, {0x1d173, 0x1d17a}, {0xe0001, 0xe0001}, {0xe0020, 0xe007f}, {0xf0000, 0xffffd},
    {0x100000, 0x10fffd},
};

static int is_unprintable(uint32_t cp) {
    for (size_t i = 0; i < sizeof unprintable / sizeof unprintable[0]; i++)
        if (cp >= unprintable[i].lo && cp <= unprintable[i].hi) return 1;
    return 0;
}

/* The code point of the UTF-8 sequence at c and its length, or length 0
 * if it is not one (the text was checked, but be safe). */
static size_t utf8_decode(const unsigned char *c, uint32_t *cp) {
    size_t n = c[0] >= 0xf0 ? 4 : c[0] >= 0xe0 ? 3 : c[0] >= 0xc0 ? 2 : 0;
    if (!n) return 0;
    uint32_t v = c[0] & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((c[i] & 0xc0) != 0x80) return 0;
        v = (v << 6) | (c[i] & 0x3f);
    }
    *cp = v;
    return n;
}

/* Python's repr() of a str: escapes for ASCII controls and for what
 * str.isprintable() rejects; other characters pass through. */
static void s_repr(str *s, const char *t) {
    char q = (strchr(t, '\'') && !strchr(t, '"')) ? '"' : '\'';
    s_putc(s, q);
    for (const unsigned char *c = (const unsigned char *)t; *c; c++) {
        char buf[16];
        uint32_t cp;
        size_t n;
        if (*c >= 0x80 && *c != NUL_STANDIN && (n = utf8_decode(c, &cp)) != 0) {
            if (is_unprintable(cp)) {
                snprintf(buf, sizeof buf, cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x",
                         (unsigned)cp);
                s_puts(s, buf);
            } else {
                s_putn(s, (const char *)c, n);
            }
            c += n - 1;
            continue;
        }
        if (*c == q || *c == '\\') {
            s_putc(s, '\\');
            s_putc(s, (char)*c);
        } else if (*c == '\n') {
            s_puts(s, "\\n");
        } else if (*c == '\r') {
            s_puts(s, "\\r");
        } else if (*c == '\t') {
            s_puts(s, "\\t");
        } else if (*c == NUL_STANDIN) {
            s_puts(s, "\\x00");
        } else if (*c < 0x20 || *c == 0x7f) {
            snprintf(buf, sizeof buf, "\\x%02x", *c);
            s_puts(s, buf);
        } else {
            s_putc(s, (char)*c);
        }
    }
    s_putc(s, q);
}

/* An arena: everything the parser makes lives until the run ends and is
 * freed at once, which keeps error paths free of cleanup code. */
typedef struct chunk {
    struct chunk *next;
    size_t used, cap;
    max_align_t data[];
} chunk;

typedef struct arena {
    chunk *head;
} arena;

static void *a_alloc(arena *a, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!n) n = sizeof(max_align_t);
    chunk *c = a->head;
    if (!c || c->cap - c->used < n) {
        size_t cap = n > 65536 ? n : 65536;
        c = xrealloc(NULL, sizeof *c + cap);
        c->next = a->head;
        c->used = 0;
        c->cap = cap;
        a->head = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

/* Grows an array of the arena from old_n to new_n bytes (the old copy stays
 * in the arena until it is freed: at most as much again). */
static void *a_grow(arena *a, void *old, size_t old_n, size_t new_n) {
    void *p = a_alloc(a, new_n);
    if (old_n) memcpy(p, old, old_n);
    return p;
}

static char *a_strndup(arena *a, const char *s, size_t n) {
    char *p = a_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static char *a_strdup(arena *a, const char *s) { return a_strndup(a, s, strlen(s)); }

static void a_free(arena *a) {
    while (a->head) {
        chunk *c = a->head;
        a->head = c->next;
        free(c);
    }
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
    int no;   /* 1-based line number */
    char **w; /* its words */
    size_t n; /* at least 1: blank lines are dropped */
} line;

typedef struct lines {
    line *v;
    size_t n, cap;
} lines;

/* Returns the length of the longest valid UTF-8 prefix of [p, end), as
 * Python's strict decoder accepts it: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
static size_t utf8_valid_len(const unsigned char *p, const unsigned char *end) {
    const unsigned char *s = p;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        unsigned lo = 0x80, hi = 0xbf;
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            if (c == 0xe0) lo = 0xa0;
            if (c == 0xed) hi = 0x9f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            if (c == 0xf0) lo = 0x90;
            if (c == 0xf4) hi = 0x8f;
        } else {
            break;
        }
        if ((size_t)(end - p) <= n || p[1] < lo || p[1] > hi) break;
        size_t k = 2;
        while (k <= n && p[k] >= 0x80 && p[k] <= 0xbf) k++;
        if (k <= n) break;
        p += n + 1;
    }
    return (size_t)(p - s);
}

/* Splits one line's text (comment already cut) into words. */
static void split_words(arena *A, const unsigned char *p, const unsigned char *end, line *ln) {
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
            size_t ncap = cap ? cap * 2 : 4;
            ln->w = a_grow(A, ln->w, cap * sizeof *ln->w, ncap * sizeof *ln->w);
            cap = ncap;
        }
        char *w = a_strndup(A, (const char *)start, (size_t)(p - start));
        for (size_t i = 0; i < (size_t)(p - start); i++)
            if (!start[i]) w[i] = (char)NUL_STANDIN;
        ln->w[ln->n++] = w;
    }
}

static void lex(arena *A, const char *text, size_t size, lines *out) {
    const unsigned char *p = (const unsigned char *)text, *end = p + size;
    int no = 0;
    while (p < end) {
        const unsigned char *start = p;
        size_t br = 0;
        while (p < end && (br = linebreak_len(p, end)) == 0) p++;
        const unsigned char *stop = p;
        p += br;
        if (no < INT32_MAX) no++;
        const unsigned char *hash = memchr(start, '#', (size_t)(stop - start));
        if (hash) stop = hash;
        line ln = {no, NULL, 0};
        split_words(A, start, stop, &ln);
        if (ln.n == 0) continue;
        if (out->n == out->cap) {
            size_t ncap = out->cap ? out->cap * 2 : 64;
            out->v = a_grow(A, out->v, out->cap * sizeof *out->v, ncap * sizeof *out->v);
            out->cap = ncap;
        }
        out->v[out->n++] = ln;
    }
}

#endif
