/* test_fpenv.c: every context keeps its own floating-point control state
 * (x86-64: MXCSR and the x87 control word; AArch64: FPCR), because the ABI
 * makes them callee-saved and cg_send/cg_yield are calls on each side. */
#include "check.h"

#include <fenv.h>

static void *upward(cg_gen *g, void *arg) {
    (void)arg;
    CHECK_EQ(fegetround(), FE_TONEAREST); /* inherited from the first resumer */
    fesetround(FE_UPWARD);
    for (int i = 0; i < 3; i++) {
        cg_yield(g, NULL);
        CHECK_EQ(fegetround(), FE_UPWARD); /* the caller's mode did not leak in */
    }
    return NULL;
}

/* A body's rounding mode stays its own across yields, and the caller's
 * stays the caller's. */
TEST(fpenv_isolated) {
    CHECK_EQ(fegetround(), FE_TONEAREST);
    cg_gen *g = cg_new(upward, NULL, NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(fegetround(), FE_TONEAREST);
    fesetround(FE_DOWNWARD);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(fegetround(), FE_DOWNWARD);
    fesetround(FE_TONEAREST);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_RETURNED);
    CHECK_EQ(fegetround(), FE_TONEAREST);
    cg_free(g);
}

static void *report(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, (void *)(intptr_t)fegetround());
    return NULL;
}

/* A generator starts with the mode of whoever resumes it first, as a
 * called function would, not the mode in force when it was made. */
TEST(fpenv_inherited) {
    cg_gen *g = cg_new(report, NULL, NULL);
    fesetround(FE_TOWARDZERO);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, FE_TOWARDZERO);
    fesetround(FE_TONEAREST);
    cg_free(g);
}

static const check_case cases[] = {CASE(fpenv_isolated), CASE(fpenv_inherited)};
CHECK_MAIN(cases)
