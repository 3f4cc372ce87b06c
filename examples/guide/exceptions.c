/* exceptions.c: docs/guide.md, "Exceptions". */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>

/* An exception type of your own: class ParseError(ValueError). */
CG_EXC_TYPE(ParseError, cg_ValueError);

static int digit(char c) {
    if (c < '0' || c > '9')
        CG_RAISEF(&ParseError, "not a digit: '%c'", c);
    return c - '0';
}

/* The state is in a struct reached by pointer, and the CG_TRY in a small
 * function of its own (see "The rules of CG_TRY"). */
struct parse { const char *text; int value; int errors; };

static void parse_char(cg_gen *g, struct parse *p, char c) {
    CG_TRY {
        p->value = p->value * 10 + digit(c);
    } CG_EXCEPT(&cg_ValueError, e) {  /* ParseError is a ValueError */
        p->errors++;
        cg_yield(g, e);  /* e stays valid while the handler runs */
    } CG_END;
}

static void *parser(cg_gen *g, void *arg) {
    struct parse *p = arg;
    for (const char *s = p->text; *s; s++)
        parse_char(g, p, *s);
    if (p->errors)
        CG_RAISEF(&cg_RuntimeError, "%d bad character(s)", p->errors);
    return NULL;
}

static void *cleanup_fails(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        CG_RAISE(&cg_KeyError, "missing");
    } CG_FINALLY {
        CG_RAISE(&cg_OSError, "disk full");  /* replaces KeyError, chained to it */
    } CG_END;
    cg_yield(g, NULL);
    return NULL;
}

static const char *repr(const cg_exc *e, char *buf, size_t size) {
    cg_exc_repr(e, buf, size);
    return buf;
}

/* The caller catches too: CG_TRY works on a thread's own stack. */
static void run(cg_gen *g, struct parse *p) {
    char buf[100];
    CG_TRY {
        CG_FOREACH(v, g) {
            printf("skipped %s\n", repr(v, buf, sizeof buf));
        }
        printf("value %d\n", p->value);
    } CG_EXCEPT(&cg_RuntimeError, e) {
        printf("failed: %s, value so far %d\n", repr(e, buf, sizeof buf), p->value);
    } CG_END;
}

int main(void) {
    char a[100], b[100];
    struct parse p = {"4x2", 0, 0};
    cg_gen *g = cg_new(parser, &p, NULL);
    if (g == NULL)
        return 1;
    run(g, &p);
    cg_free(g);

    cg_gen *h = cg_new(cleanup_fails, NULL, NULL);
    if (h == NULL)
        return 1;
    cg_exc *e;
    if (cg_next(h, NULL, &e) == CG_RAISED) {
        printf("raised %s, context %s\n", repr(e, a, sizeof a), repr(cg_exc_context(e), b, sizeof b));
        printf("is an OSError: %d, an Exception: %d, a ValueError: %d\n",
               cg_exc_is(e, &cg_OSError), cg_exc_is(e, &cg_Exception), cg_exc_is(e, &cg_ValueError));
        cg_exc_unref(e);
    }
    cg_free(h);
    return 0;
}
