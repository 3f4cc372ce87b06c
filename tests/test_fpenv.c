/* test_fpenv.c: the floating-point environment across switches.
 *
 * By default a generator shares its thread's environment, as a Python
 * generator runs in its thread's state: a rounding mode the body sets is
 * the caller's after the yield, and the other way round; exception flags
 * raised on one side are seen on the other. A generator made with
 * CG_OPT_FPENV keeps its own control state (x86-64: MXCSR and the x87
 * control word; AArch64: FPCR; elsewhere fenv_t), through throw, close,
 * yield from chains and nested resumes, and starts with its first
 * resumer's. Every build runs the same expectations (the ucontext one
 * copies the environment across its swapcontext to get them).
 *
 * mode() reads the rounding mode with fegetround() and checks that double
 * arithmetic rounds that way too: on x86-64 fegetround() reads the x87
 * control word while doubles are computed with SSE (MXCSR), so a switch
 * that kept one and not the other would show. On x86-64 it also compares
 * MXCSR's rounding field with it directly, which is what remains checked
 * where arithmetic ignores the rounding mode (valgrind's SSE emulation
 * rounds to nearest whatever MXCSR says). */
#include "check.h"

#include <fenv.h>

static const int modes[4] = {FE_TONEAREST, FE_UPWARD, FE_DOWNWARD, FE_TOWARDZERO};

/* 1/3 (rounds down to nearest), 1/10 (rounds up to nearest) and -1/3
 * tell the four modes apart. */
typedef struct sig {
    double a, b, c;
} sig;

static sig compute(void) {
    volatile double one = 1.0, three = 3.0, ten = 10.0;
    sig s = {one / three, one / ten, -one / three};
    return s;
}

static sig expected[4];
static int arith_ok; /* arithmetic here honours the rounding mode */

/* Each mode's results, computed on the thread's own stack before any test. */
static void learn(void) {
    int saved = fegetround();
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(fesetround(modes[i]), 0);
        expected[i] = compute();
    }
    fesetround(saved);
    arith_ok = 1;
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++) {
            sig x = expected[i], y = expected[j];
            if (x.a == y.a && x.b == y.b && x.c == y.c) arith_ok = 0;
        }
    if (!arith_ok) fprintf(stderr, "note: arithmetic ignores the rounding mode here (valgrind?): control registers only\n");
}

static int mode(void) {
    int m = fegetround();
#if defined(__x86_64__)
    unsigned mxcsr;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    CHECK_EQ((mxcsr >> 3) & 0xc00u, (unsigned)m); /* MXCSR.RC agrees with the x87 control word */
#endif
    if (arith_ok) {
        sig s = compute();
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (s.a == expected[i].a && s.b == expected[i].b && s.c == expected[i].c) found = modes[i];
        CHECK_EQ(found, m); /* arithmetic rounds as fegetround says */
    }
    return m;
}

static void set_mode(int m) { CHECK_EQ(fesetround(m), 0); }

static const cg_opts private_opts = {0, "private", CG_OPT_FPENV};
static const cg_opts private_compact_opts = {0, "private-compact", CG_OPT_FPENV | CG_OPT_COMPACT};

/* ---------------------------------------------------------------------
 * Shared (the default)
 * ------------------------------------------------------------------ */

static void *shared_body(cg_gen *g, void *arg) {
    (void)arg;
    CHECK_EQ(mode(), FE_TONEAREST);
    set_mode(FE_UPWARD);
    cg_yield(g, NULL);
    CHECK_EQ(mode(), FE_DOWNWARD); /* the caller's change */
    set_mode(FE_TOWARDZERO);
    cg_yield(g, NULL);
    CHECK_EQ(mode(), FE_TONEAREST);
    set_mode(FE_UPWARD);
    return NULL; /* leaves it set, as a called function could */
}

/* A rounding mode set on either side is the other side's after the switch. */
TEST(fpenv_shared) {
    CHECK_EQ(mode(), FE_TONEAREST);
    cg_gen *g = cg_new(shared_body, NULL, NULL);
    CHECK(!cg_gen_fpenv(g));
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(mode(), FE_UPWARD); /* the body's change */
    set_mode(FE_DOWNWARD);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(mode(), FE_TOWARDZERO);
    set_mode(FE_TONEAREST);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_RETURNED);
    CHECK_EQ(mode(), FE_UPWARD);
    set_mode(FE_TONEAREST);
    cg_free(g);
}

static void *flags_body(cg_gen *g, void *arg) {
    (void)arg;
    CHECK(fetestexcept(FE_INVALID)); /* raised by the caller before the send */
    feclearexcept(FE_ALL_EXCEPT);
    CHECK(feraiseexcept(FE_DIVBYZERO) == 0);
    cg_yield(g, NULL);
    return NULL;
}

/* Exception flags are the thread's too. */
TEST(fpenv_shared_flags) {
    feclearexcept(FE_ALL_EXCEPT);
    if (feraiseexcept(FE_INVALID) != 0 || !fetestexcept(FE_INVALID)) {
        /* valgrind does not track the exception flags */
        fprintf(stderr, "note: exception flags are not kept here (valgrind?): nothing to test\n");
        return;
    }
    feclearexcept(FE_ALL_EXCEPT);
    cg_gen *g = cg_new(flags_body, NULL, NULL);
    CHECK(feraiseexcept(FE_INVALID) == 0);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK(fetestexcept(FE_DIVBYZERO));
    CHECK(!fetestexcept(FE_INVALID));
    feclearexcept(FE_ALL_EXCEPT);
    cg_free(g);
}

static void *report(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, (void *)(intptr_t)mode());
    return NULL;
}

/* A generator starts with the mode of whoever resumes it first, as a
 * called function would, not the mode in force when it was made; with or
 * without a private environment. */
TEST(fpenv_inherited) {
    const cg_opts *opts[] = {NULL, &private_opts, &private_compact_opts};
    for (int i = 0; i < 3; i++) {
        cg_gen *g = cg_new(report, NULL, opts[i]);
        set_mode(FE_TOWARDZERO);
        void *v = NULL;
        CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
        CHECK_EQ((intptr_t)v, FE_TOWARDZERO);
        CHECK_EQ(mode(), FE_TOWARDZERO);
        set_mode(FE_TONEAREST);
        cg_free(g);
    }
}

/* ---------------------------------------------------------------------
 * Private (CG_OPT_FPENV)
 * ------------------------------------------------------------------ */

static void *upward(cg_gen *g, void *arg) {
    (void)arg;
    CHECK_EQ(mode(), FE_TONEAREST); /* inherited from the first resumer */
    set_mode(FE_UPWARD);
    for (int i = 0; i < 3; i++) {
        cg_yield(g, NULL);
        CHECK_EQ(mode(), FE_UPWARD); /* the caller's mode did not leak in */
    }
    return NULL;
}

/* A body's rounding mode stays its own across yields, and the caller's
 * stays the caller's. */
TEST(fpenv_private) {
    const cg_opts *opts[] = {&private_opts, &private_compact_opts};
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(mode(), FE_TONEAREST);
        cg_gen *g = cg_new(upward, NULL, opts[i]);
        CHECK(cg_gen_fpenv(g));
        CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
        CHECK_EQ(mode(), FE_TONEAREST);
        set_mode(FE_DOWNWARD);
        CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
        CHECK_EQ(mode(), FE_DOWNWARD);
        set_mode(FE_TONEAREST);
        CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
        CHECK_EQ(cg_next(g, NULL, NULL), CG_RETURNED);
        CHECK_EQ(mode(), FE_TONEAREST);
        cg_free(g);
    }
    CHECK(!cg_gen_fpenv(NULL));
}

static int closed_mode = -1;

static void note_close(void *arg) {
    (void)arg;
    closed_mode = mode();
}

/* Catches a thrown ValueError and yields again; its cleanup runs at close. */
static void *catcher(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(note_close, NULL);
    set_mode(FE_UPWARD);
    volatile int caught = 0;
    CG_TRY {
        cg_yield(g, NULL);
    } CG_EXCEPT(&cg_ValueError, e) {
        caught = 1;
        CHECK_EQ(mode(), FE_UPWARD);
    } CG_END;
    CHECK(caught);
    set_mode(FE_TOWARDZERO);
    cg_yield(g, NULL);
    CHECK(0); /* closed at that yield */
    return NULL;
}

/* throw and close resume the body in its own environment too. */
TEST(fpenv_private_throw_close) {
    cg_gen *g = cg_new(catcher, NULL, &private_opts);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(mode(), FE_TONEAREST);
    set_mode(FE_DOWNWARD);
    CHECK_EQ(cg_throw(g, cg_exc_new(&cg_ValueError, "x"), NULL, NULL), CG_YIELDED);
    CHECK_EQ(mode(), FE_DOWNWARD);
    closed_mode = -1;
    CHECK_EQ(cg_close(g, NULL, NULL), CG_RETURNED);
    CHECK_EQ(closed_mode, FE_TOWARDZERO);
    CHECK_EQ(mode(), FE_DOWNWARD);
    set_mode(FE_TONEAREST);
    cg_free(g);
}

/* A body that raises with its own mode set: the exception comes out, the
 * caller's mode is back. */
static void *raiser(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    set_mode(FE_UPWARD);
    CG_RAISE(&cg_KeyError, "k");
}

TEST(fpenv_private_raise) {
    cg_gen *g = cg_new(raiser, NULL, &private_opts);
    set_mode(FE_DOWNWARD);
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(g, NULL, &e), CG_RAISED);
    CHECK(cg_exc_is(e, &cg_KeyError));
    cg_exc_unref(e);
    CHECK_EQ(mode(), FE_DOWNWARD);
    set_mode(FE_TONEAREST);
    cg_free(g);
}

/* yield from: a private subgenerator under a private delegator; each keeps
 * its own, the caller its own. */
static void *sub_down(cg_gen *g, void *arg) {
    (void)arg;
    CHECK_EQ(mode(), FE_TONEAREST); /* first resumed by the chain's resumer */
    set_mode(FE_DOWNWARD);
    void *v = cg_yield(g, (void *)1);
    CHECK_EQ(mode(), FE_DOWNWARD);
    CHECK_PTR(v, (void *)7);
    cg_yield(g, (void *)2);
    CHECK_EQ(mode(), FE_DOWNWARD);
    return (void *)3;
}

/* Without the flag: it runs in the environment of whoever resumes the
 * chain, not in its delegator's private one (see CG_OPT_FPENV). */
static void *sub_plain(cg_gen *g, void *arg) {
    (void)arg;
    void *v = NULL;
    for (;;) {
        int m = mode();
        if (v == (void *)99) return (void *)(intptr_t)m;
        v = cg_yield(g, (void *)(intptr_t)m);
    }
}

static void *delegator(cg_gen *g, void *arg) {
    (void)arg;
    set_mode(FE_UPWARD);
    void *r = cg_yield_from_new(g, sub_down, NULL, &private_opts);
    CHECK_PTR(r, (void *)3);
    CHECK_EQ(mode(), FE_UPWARD);
    r = cg_yield_from_new(g, sub_plain, NULL, NULL);
    CHECK_EQ((intptr_t)r, FE_TOWARDZERO);
    CHECK_EQ(mode(), FE_UPWARD);
    return (void *)(intptr_t)mode();
}

TEST(fpenv_private_yield_from) {
    cg_gen *g = cg_new(delegator, NULL, &private_opts);
    void *v = NULL;
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_PTR(v, (void *)1);
    CHECK_EQ(mode(), FE_TONEAREST);
    set_mode(FE_TOWARDZERO);
    CHECK_EQ(cg_send(g, (void *)7, &v, NULL), CG_YIELDED);
    CHECK_PTR(v, (void *)2);
    CHECK_EQ(mode(), FE_TOWARDZERO);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED); /* sub_down returned; sub_plain's first yield */
    CHECK_EQ((intptr_t)v, FE_TOWARDZERO);        /* the resumer's mode, not the delegator's */
    CHECK_EQ(cg_send(g, (void *)99, &v, NULL), CG_RETURNED);
    CHECK_EQ((intptr_t)v, FE_UPWARD);
    CHECK_EQ(mode(), FE_TOWARDZERO);
    set_mode(FE_TONEAREST);
    cg_free(g);
}

/* A private body that resumes another private generator: each resumer
 * gets its own back. */
static void *inner(cg_gen *g, void *arg) {
    (void)arg;
    CHECK_EQ(mode(), FE_UPWARD); /* its first resumer is outer's body */
    set_mode(FE_DOWNWARD);
    while (cg_gen_state(g) == CG_GEN_RUNNING) {
        cg_yield(g, NULL);
        CHECK_EQ(mode(), FE_DOWNWARD);
    }
    return NULL;
}

static void *outer(cg_gen *g, void *arg) {
    (void)arg;
    set_mode(FE_UPWARD);
    cg_gen *in = cg_new(inner, NULL, &private_opts);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(cg_next(in, NULL, NULL), CG_YIELDED);
        CHECK_EQ(mode(), FE_UPWARD);
        cg_yield(g, NULL);
        CHECK_EQ(mode(), FE_UPWARD);
    }
    cg_free(in);
    return NULL;
}

TEST(fpenv_private_nested) {
    cg_gen *g = cg_new(outer, NULL, &private_opts);
    for (int i = 0; i < 3; i++) {
        set_mode(i & 1 ? FE_TOWARDZERO : FE_TONEAREST);
        CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
        CHECK_EQ(mode(), i & 1 ? FE_TOWARDZERO : FE_TONEAREST);
    }
    CHECK_EQ(cg_next(g, NULL, NULL), CG_RETURNED);
    set_mode(FE_TONEAREST);
    cg_free(g);
}

/* A shared generator resumed from a private body sees that body's mode. */
static void *shared_report(cg_gen *g, void *arg) {
    (void)arg;
    while (cg_gen_state(g) == CG_GEN_RUNNING) cg_yield(g, (void *)(intptr_t)mode());
    return NULL;
}

static void *private_driver(cg_gen *g, void *arg) {
    cg_gen *sh = arg;
    set_mode(FE_DOWNWARD);
    void *v = NULL;
    CHECK_EQ(cg_next(sh, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, FE_DOWNWARD);
    cg_yield(g, NULL);
    return NULL;
}

TEST(fpenv_shared_under_private) {
    cg_gen *sh = cg_new(shared_report, NULL, NULL);
    cg_gen *p = cg_new(private_driver, sh, &private_opts);
    CHECK_EQ(cg_next(p, NULL, NULL), CG_YIELDED);
    CHECK_EQ(mode(), FE_TONEAREST);
    void *v = NULL;
    CHECK_EQ(cg_next(sh, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, FE_TONEAREST);
    cg_free(p);
    cg_free(sh);
}

static void run_learn(void) __attribute__((constructor));
static void run_learn(void) { learn(); }

static const check_case cases[] = {CASE(fpenv_shared),
                                   CASE(fpenv_shared_flags),
                                   CASE(fpenv_inherited),
                                   CASE(fpenv_private),
                                   CASE(fpenv_private_throw_close),
                                   CASE(fpenv_private_raise),
                                   CASE(fpenv_private_yield_from),
                                   CASE(fpenv_private_nested),
                                   CASE(fpenv_shared_under_private)};
CHECK_MAIN(cases)
