/* smoke.c: the first things that must work: values both ways, and a
 * throw caught by the body. */
#include "check.h"

static void *summer(cg_gen *g, void *arg) {
    intptr_t total = 0;
    for (intptr_t i = 1; i <= (intptr_t)arg; i++) total += (intptr_t)cg_yield(g, (void *)i);
    return (void *)total;
}

TEST(smoke_counter) {
    cg_gen *g = cg_new(summer, (void *)3, NULL);
    void *v = NULL;
    cg_exc *e = NULL;
    CHECK_EQ(cg_gen_state(g), CG_GEN_CREATED);
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 1);
    CHECK_EQ(cg_send(g, (void *)10, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    CHECK_EQ(cg_send(g, (void *)20, &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 3);
    CHECK_EQ(cg_send(g, (void *)30, &v, &e), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 60);
    CHECK(e == NULL);
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    cg_free(g);
}

static void *catcher(cg_gen *g, void *arg) {
    (void)arg;
    volatile int finally_ran = 0;
    CG_TRY {
        cg_yield(g, (void *)1);
    } CG_EXCEPT(&cg_ValueError, e) {
        CHECK_STR(cg_exc_msg(e), "boom");
        cg_yield(g, (void *)2);
    } CG_FINALLY {
        finally_ran = 1;
    } CG_END;
    CHECK(finally_ran);
    return (void *)3;
}

TEST(smoke_throw_catch) {
    cg_gen *g = cg_new(catcher, NULL, NULL);
    void *v = NULL;
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(g, &v, &e), CG_YIELDED);
    CHECK_EQ(cg_throw(g, cg_exc_new(&cg_ValueError, "boom"), &v, &e), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 2);
    CHECK_EQ(cg_next(g, &v, &e), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 3);
    cg_free(g);
}

static const check_case cases[] = {CASE(smoke_counter), CASE(smoke_throw_catch)};
CHECK_MAIN(cases)
