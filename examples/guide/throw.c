/* throw.c: docs/guide.md, "throw: the four outcomes". */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>

enum { CATCH_AND_YIELD = 1, CATCH_AND_RETURN, CATCH_AND_RAISE };

static void *target(cg_gen *g, void *mode) {
    if (mode == NULL) {
        cg_yield(g, "ready");  /* no CG_TRY: a throw goes straight through */
        return NULL;
    }
    CG_TRY {
        cg_yield(g, "ready");
    } CG_EXCEPT(&cg_ValueError, e) {
        switch ((intptr_t)mode) {
        case CATCH_AND_YIELD:
            cg_yield(g, "caught, yielding");
            break;
        case CATCH_AND_RETURN:
            return "caught, returning";
        case CATCH_AND_RAISE:
            CG_RAISE(&cg_KeyError, "replacement");
        }
    } CG_END;
    return NULL;
}

static void show(const char *what, intptr_t mode) {
    cg_gen *g = cg_new(target, (void *)mode, NULL);
    if (g == NULL)
        return;
    cg_next(g, NULL, NULL);
    cg_exc *boom = cg_exc_new(&cg_ValueError, "boom");
    void *out;
    cg_exc *e;
    cg_status st = cg_throw(g, cg_exc_ref(boom), &out, &e);
    printf("%s: %s", what, cg_status_name(st));
    if (st == CG_RAISED) {
        char buf[100], ctx[100];
        cg_exc_repr(e, buf, sizeof buf);
        cg_exc_repr(cg_exc_context(e), ctx, sizeof ctx);
        printf(" %s (%s), context %s", buf, e == boom ? "the same object" : "another one", ctx);
        cg_exc_unref(e);
    } else {
        printf(" '%s'", (const char *)out);
    }
    printf(", %s\n", cg_state_name(cg_gen_state(g)));
    cg_exc_unref(boom);
    cg_free(g);
}

int main(void) {
    show("not caught", 0);
    show("caught, yields", CATCH_AND_YIELD);
    show("caught, returns", CATCH_AND_RETURN);
    show("caught, raises", CATCH_AND_RAISE);
    return 0;
}
