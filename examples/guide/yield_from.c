/* yield_from.c: docs/guide.md, "yield from". */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>

static void *inner(cg_gen *g, void *arg) {
    (void)arg;
    intptr_t a = (intptr_t)cg_yield(g, "inner 1");
    intptr_t b = (intptr_t)cg_yield(g, "inner 2");
    return (void *)(a + b);  /* the value of the yield from */
}

static void *outer(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, "outer starts");
    cg_opts sub = {.name = "inner"};
    intptr_t r = (intptr_t)cg_yield_from_new(g, inner, NULL, &sub);  /* r = yield from inner() */
    printf("inner returned %ld\n", (long)r);
    cg_yield(g, "outer goes on");
    return NULL;
}

static void say(void *what) { printf("cleanup: %s\n", (const char *)what); }

static void *leaf(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(say, "leaf");
    for (;;)
        cg_yield(g, "leaf working");
    return NULL;  /* not reached: close() ends the loop */
}

static void *middle(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(say, "middle");
    cg_yield_from_new(g, leaf, NULL, NULL);
    return NULL;
}

int main(void) {
    cg_gen *g = cg_new(outer, NULL, NULL);
    if (g == NULL)
        return 1;
    void *v;
    cg_next(g, &v, NULL);
    printf("got '%s'\n", (const char *)v);
    cg_next(g, &v, NULL);
    printf("got '%s', delegating to '%s'\n", (const char *)v, cg_gen_name(cg_gen_yieldfrom(g)));
    cg_send(g, (void *)3, &v, NULL);  /* goes to inner */
    printf("got '%s'\n", (const char *)v);
    cg_send(g, (void *)4, &v, NULL);
    printf("got '%s'\n", (const char *)v);
    cg_free(g);

    cg_gen *m = cg_new(middle, NULL, NULL);
    if (m == NULL)
        return 1;
    cg_next(m, &v, NULL);
    printf("got '%s'\n", (const char *)v);
    cg_close(m, NULL, NULL);  /* innermost first */
    cg_free(m);
    return 0;
}
