#include <cogen.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

static void *counter(cg_gen *g, void *arg) {
    intptr_t n = (intptr_t)arg;
    intptr_t total = 0;
    for (intptr_t i = 1; i <= n; i++) total += (intptr_t)cg_yield(g, (void *)i);
    return (void *)total;
}

static void *catcher(cg_gen *g, void *arg) {
    (void)arg;
    volatile int caught = 0;
    CG_TRY {
        cg_yield(g, (void *)1);
    } CG_EXCEPT(&cg_ValueError, e) {
        caught = 1;
        cg_yield(g, (void *)2);
    } CG_FINALLY {
        printf("finally caught=%d\n", caught);
    } CG_END;
    return (void *)3;
}

int main(void) {
    cg_gen *g = cg_new(counter, (void *)3, NULL);
    void *v; cg_exc *e;
    cg_status st = cg_next(g, &v, &e);
    printf("%s %ld\n", cg_status_name(st), (long)(intptr_t)v);
    st = cg_send(g, (void *)10, &v, &e); printf("%s %ld\n", cg_status_name(st), (long)(intptr_t)v);
    st = cg_send(g, (void *)20, &v, &e); printf("%s %ld\n", cg_status_name(st), (long)(intptr_t)v);
    st = cg_send(g, (void *)30, &v, &e); printf("%s %ld %s\n", cg_status_name(st), (long)(intptr_t)v, cg_state_name(cg_gen_state(g)));
    cg_free(g);
    g = cg_new(catcher, NULL, NULL);
    st = cg_next(g, &v, &e); printf("%s %ld\n", cg_status_name(st), (long)(intptr_t)v);
    st = cg_throw(g, cg_exc_new(&cg_ValueError, "boom"), &v, &e); printf("%s %ld\n", cg_status_name(st), (long)(intptr_t)v);
    st = cg_close(g, &v, &e); printf("close %s\n", cg_status_name(st));
    char buf[100];
    if (st == CG_RAISED) { cg_exc_repr(e, buf, sizeof buf); printf("%s\n", buf); cg_exc_unref(e); }
    cg_free(g);
    return 0;
}
