/* close.c: docs/guide.md, "close and cleanup". */
#include <cogen.h>
#include <stdint.h>
#include <stdio.h>

static void release(void *name) {
    printf("released %s\n", (const char *)name);
}

/* Cleanup that runs however the body ends: return, exception or close. */
static void *worker(cg_gen *g, void *name) {
    CG_DEFER(release, name);
    for (intptr_t i = 0;; i++)
        cg_yield(g, (void *)i);
    return NULL;  /* not reached: close() ends the loop */
}

/* Handling GeneratorExit to return a result: close() hands it back. */
struct total { intptr_t sum; };

static void *collector(cg_gen *g, void *arg) {
    struct total *t = arg;
    CG_TRY {
        for (;;)
            t->sum += (intptr_t)cg_yield(g, NULL);
    } CG_EXCEPT(&cg_GeneratorExit, e) {
        return (void *)t->sum;
    } CG_END;
    return NULL;  /* not reached */
}

/* Wrong: a catch-all that yields again ignores GeneratorExit. */
static void *stubborn(cg_gen *g, void *arg) {
    (void)arg;
    for (;;) {
        CG_TRY {
            cg_yield(g, "working");
        } CG_EXCEPT(&cg_BaseException, e) {  /* catch cg_Exception instead */
            printf("stubborn caught %s\n", cg_exc_type_of(e)->name);
        } CG_END;
    }
    return NULL;  /* not reached */
}

int main(void) {
    cg_gen *g = cg_new(worker, "the connection", NULL);
    if (g == NULL)
        return 1;
    cg_next(g, NULL, NULL);
    cg_next(g, NULL, NULL);
    cg_status st = cg_close(g, NULL, NULL);
    printf("close: %s, %s\n", cg_status_name(st), cg_state_name(cg_gen_state(g)));
    cg_free(g);

    struct total t = {0};
    cg_gen *c = cg_new(collector, &t, NULL);
    if (c == NULL)
        return 1;
    cg_next(c, NULL, NULL);
    for (intptr_t x = 1; x <= 4; x++)
        cg_send(c, (void *)x, NULL, NULL);
    void *result;
    st = cg_close(c, &result, NULL);
    printf("close: %s, result %ld\n", cg_status_name(st), (long)(intptr_t)result);
    cg_free(c);

    cg_gen *s = cg_new(stubborn, NULL, NULL);
    if (s == NULL)
        return 1;
    cg_next(s, NULL, NULL);
    cg_exc *e;
    st = cg_close(s, NULL, &e);
    char buf[100];
    cg_exc_repr(e, buf, sizeof buf);
    printf("close: %s %s, still %s\n", cg_status_name(st), buf, cg_state_name(cg_gen_state(s)));
    cg_exc_unref(e);
    cg_free(s);  /* discards it; the unraisable hook reports the failure */
    return 0;
}
