/* test_trysafe.c: catching without the setjmp trap, nesting without
 * shadowing, and the sanitizer build check.
 *
 * - cg_try_call / cg_try_catch: what they catch and let through, values of
 *   the caller's locals kept across caught exceptions (the build type's
 *   optimization, -O2 by default: where clang hands a local changed inside
 *   CG_TRY back stale), nesting, generators (yield inside fn, close and
 *   throw through it), defers and finally blocks inside fn, misuse (NULL fn,
 *   NULL type);
 * - the documented rule of CG_TRY: a volatile local keeps its value;
 * - three levels of CG_TRY with CG_FINALLY and CG_DEFER inside, built with
 *   -Wshadow as an error (the pragma below), in C and, through
 *   test_trysafe_cxx.cpp, in C++;
 * - cg__check_build, which cogen.h calls from a constructor in programs
 *   compiled with a sanitizer: one warning per process, abort on request.
 *   trysafe.cmake also builds this file with -fsanitize=address against the
 *   plain library and checks the warning end to end.
 *
 * Written in the common subset of C11 and C++11. */
#if defined(__GNUC__) || defined(__clang__)
#pragma GCC diagnostic error "-Wshadow"
#endif
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* fork, dup, mkstemp, setenv under -std=c11 */
#endif

#include "check.h"

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* An event log in static storage (never a local: no CG_TRY question). */
static char trace[512];
static void note(const char *what) {
    size_t n = strlen(trace);
    snprintf(trace + n, sizeof trace - n, "%s%s", n ? " " : "", what);
}
static void note_defer(void *what) { note((const char *)what); }

static void reset_trace(void) { trace[0] = '\0'; }

/* =====================================================================
 * cg_try_call and cg_try_catch
 * ================================================================== */

static int raise_line; /* where raise_value raised */

/* Raises ValueError('odd <n>') for odd *n, returns for even ones. */
static void raise_if_odd(void *p) {
    int n = *(int *)p;
    if (n % 2) {
        raise_line = __LINE__ + 1;
        CG_RAISEF(&cg_ValueError, "odd %d", n);
    }
}

static void raise_key(void *p) {
    (void)p;
    CG_RAISE(&cg_KeyError, "k");
}

static void raise_exit(void *p) {
    (void)p;
    CG_RAISE(&cg_SystemExit, NULL);
}

static void do_nothing(void *p) { (void)p; }

/* What fn raised comes back, a new reference with its first raise site;
 * nothing is left being handled. */
TEST(trysafe_call_returns_exception) {
    int n = 3;
    cg_exc *e = cg_try_call(raise_if_odd, &n);
    CHECK_EXC(e, "ValueError('odd 3')");
    CHECK_EQ(cg_exc_line(e), raise_line);
    CHECK_STR(cg_exc_func(e), "raise_if_odd");
    CHECK_PTR(cg_exc_current(), NULL);
    cg_exc_unref(e);
    n = 4;
    CHECK_PTR(cg_try_call(raise_if_odd, &n), NULL);
    CHECK_PTR(cg_try_call(do_nothing, NULL), NULL);
}

/* Plain (not volatile) locals of the caller, changed between calls that
 * raise, keep their values: no setjmp is in this frame. The same loop
 * written with CG_TRY and non-volatile locals reads them back stale under
 * clang -O1 and above. */
TEST(trysafe_call_keeps_locals) {
    int caught = 0, returned = 0, sum = 0;
    const char *last = "none";
    for (int i = 0; i < 10; i++) {
        sum += i;
        cg_exc *e = cg_try_call(raise_if_odd, &i);
        if (e) {
            caught++;
            last = "raised";
            cg_exc_unref(e);
        } else {
            returned++;
            last = "returned";
        }
    }
    CHECK_EQ(caught, 5);
    CHECK_EQ(returned, 5);
    CHECK_EQ(sum, 45);
    CHECK_STR(last, "raised"); /* i = 9 */
}

/* State that fn changes before it raises travels through arg. */
typedef struct parse_job {
    int parsed, stop_at;
} parse_job;

static void parse_all(void *p) {
    parse_job *j = (parse_job *)p;
    for (;;) {
        if (j->parsed == j->stop_at) CG_RAISEF(&cg_ValueError, "bad item %d", j->parsed);
        j->parsed++;
    }
}

TEST(trysafe_catch_state_through_arg) {
    parse_job j = {0, 7};
    cg_exc *e = cg_try_catch(parse_all, &j, &cg_ValueError);
    CHECK_EXC(e, "ValueError('bad item 7')");
    CHECK_EQ(j.parsed, 7);
    cg_exc_unref(e);
}

/* cg_try_call catches what `except Exception:` catches; the others, and
 * what cg_try_catch's type does not match, continue outward untouched. */
TEST(trysafe_catch_by_type) {
    cg_exc *e = cg_try_catch(raise_key, NULL, &cg_LookupError); /* a base class */
    CHECK_EXC(e, "KeyError('k')");
    cg_exc_unref(e);
    e = cg_try_catch(raise_exit, NULL, &cg_BaseException);
    CHECK_EXC(e, "SystemExit()");
    cg_exc_unref(e);

    volatile int outer = 0; /* the documented rule: volatile */
    CG_TRY {
        cg_try_catch(raise_key, NULL, &cg_ValueError);
        CHECK(0);
    } CG_EXCEPT(&cg_KeyError, ek) {
        CHECK_EXC(ek, "KeyError('k')");
        outer = 1;
    } CG_END;
    CHECK_EQ(outer, 1);

    CG_TRY {
        cg_try_call(raise_exit, NULL);
        CHECK(0);
    } CG_EXCEPT(&cg_SystemExit, ex) {
        outer = 2;
    } CG_END;
    CHECK_EQ(outer, 2);
}

/* Nested calls: the innermost that matches catches. An exception raised
 * inside fn while the caller handles another is chained to it. */
static void raise_key_after_inner_value(void *p) {
    int three = 3;
    cg_exc *inner = cg_try_catch(raise_if_odd, &three, &cg_ValueError);
    CHECK_EXC(inner, "ValueError('odd 3')");
    cg_exc_unref(inner);
    *(int *)p += 1;
    cg_exc *passed = cg_try_catch(raise_key, NULL, &cg_ValueError); /* not caught here */
    (void)passed;
    CHECK(0);
}

static void level2(void *p) {
    cg_exc *e = cg_try_catch(raise_key_after_inner_value, p, &cg_KeyError);
    CHECK_EXC(e, "KeyError('k')");
    cg_exc_unref(e);
    *(int *)p += 10;
    CG_RAISE(&cg_RuntimeError, "from level 2");
}

TEST(trysafe_nested_calls) {
    int steps = 0;
    cg_exc *e = cg_try_call(level2, &steps);
    CHECK_EXC(e, "RuntimeError('from level 2')");
    CHECK_EQ(steps, 11);
    cg_exc_unref(e);

    /* Raised inside fn while a CG_EXCEPT handles ValueError: chained. */
    CG_TRY {
        CG_RAISE(&cg_ValueError, "handled");
    } CG_EXCEPT(&cg_ValueError, ev) {
        cg_exc *k = cg_try_call(raise_key, NULL);
        CHECK_EXC(k, "KeyError('k') <- ValueError('handled')");
        CHECK_PTR(cg_exc_current(), ev); /* still handling ev */
        cg_exc_unref(k);
    } CG_END;
}

/* Cleanups inside fn (CG_DEFER, CG_FINALLY) have run when the exception
 * comes back, newest first; re-raising keeps the first raise site. */
static void with_cleanups(void *p) {
    (void)p;
    CG_DEFER(note_defer, (void *)"defer-outer");
    CG_TRY {
        CG_DEFER(note_defer, (void *)"defer-inner");
        note("body");
        raise_line = __LINE__ + 1;
        CG_RAISE(&cg_ValueError, "v");
    } CG_FINALLY {
        note("finally");
    } CG_END;
}

TEST(trysafe_call_runs_cleanups) {
    reset_trace();
    cg_exc *e = cg_try_call(with_cleanups, NULL);
    CHECK_STR(trace, "body defer-inner finally defer-outer");
    CHECK_EXC(e, "ValueError('v')");
    int line = raise_line;
    volatile int caught = 0;
    CG_TRY {
        cg_raise(e); /* consumes the reference */
    } CG_EXCEPT(&cg_ValueError, ev) {
        CHECK_EQ(cg_exc_line(ev), line);
        caught = 1;
    } CG_END;
    CHECK_EQ(caught, 1);
}

/* Misuse: fn NULL is a call of None; type NULL is `except None:`. */
TEST(trysafe_misuse) {
    cg_exc *e = cg_try_call(NULL, NULL);
    CHECK_EXC(e, "TypeError(\"'NoneType' object is not callable\")");
    cg_exc_unref(e);

    volatile int stage = 0;
    CG_TRY {
        cg_try_catch(NULL, NULL, &cg_KeyError); /* not caught: outward */
        CHECK(0);
    } CG_EXCEPT(&cg_TypeError, et) {
        CHECK_EXC(et, "TypeError(\"'NoneType' object is not callable\")");
        stage = 1;
    } CG_END;
    CHECK_EQ(stage, 1);

    CHECK_PTR(cg_try_catch(do_nothing, NULL, NULL), NULL); /* nothing raised: fine */
    CG_TRY {
        int one = 1;
        cg_try_catch(raise_if_odd, &one, NULL);
        CHECK(0);
    } CG_EXCEPT(&cg_TypeError, et) {
        CHECK_EXC(et, "TypeError('catching classes that do not inherit from BaseException is not allowed') "
                      "<- ValueError('odd 1')");
        stage = 2;
    } CG_END;
    CHECK_EQ(stage, 2);
}

/* =====================================================================
 * Inside generators
 * ================================================================== */

/* A running sum (the README's summer) without volatile: each step runs
 * under cg_try_catch, a thrown ValueError resets the sum. close() sends
 * GeneratorExit, which cg_try_catch lets through: the body ends. */
typedef struct summer_state {
    cg_gen *g;
    intptr_t sum;
} summer_state;

static void summer_step(void *p) {
    summer_state *s = (summer_state *)p;
    CG_DEFER(note_defer, (void *)"step-defer");
    s->sum += (intptr_t)cg_yield(s->g, (void *)s->sum);
}

static void *summer(cg_gen *g, void *start) {
    summer_state s = {g, (intptr_t)start};
    int resets = 0; /* a plain local of the body, changed across catches */
    for (;;) {
        cg_exc *e = cg_try_catch(summer_step, &s, &cg_ValueError);
        if (e) {
            resets++;
            s.sum = 100 * resets;
            cg_exc_unref(e);
        }
    }
    return NULL;
}

TEST(trysafe_generator_yield_inside) {
    reset_trace();
    void *v = NULL;
    cg_exc *e = NULL;
    cg_gen *g = cg_new(summer, (void *)5, NULL);
    CHECK(g);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 5);
    CHECK_EQ(cg_send(g, (void *)7, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 12);
    CHECK_EQ(cg_throw(g, cg_exc_new(&cg_ValueError, "reset"), &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 100);
    CHECK_EQ(cg_send(g, (void *)1, &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 101);
    CHECK_EQ(cg_throw(g, cg_exc_new(&cg_ValueError, "reset"), &v, NULL), CG_YIELDED);
    CHECK_EQ((intptr_t)v, 200); /* resets kept its value: 2 */
    /* Not a ValueError: goes through cg_try_catch and out of the body. */
    CHECK_EQ(cg_throw(g, cg_exc_new(&cg_KeyError, "stop"), &v, &e), CG_RAISED);
    CHECK_EXC(e, "KeyError('stop')");
    cg_exc_unref(e);
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    /* Every step's defer ran: 2 steps returned, 2 caught, 1 let through. */
    CHECK_STR(trace, "step-defer step-defer step-defer step-defer step-defer");
    cg_free(g);

    /* close(): GeneratorExit passes cg_try_catch (and cg_try_call). */
    reset_trace();
    g = cg_new(summer, (void *)1, NULL);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_close(g, &v, &e), CG_RETURNED);
    CHECK_PTR(e, NULL);
    CHECK_STR(trace, "step-defer");
    cg_free(g);
}

/* cg_try_call around cg_yield: Exception subclasses are caught, and the
 * generator still closes. */
typedef struct wait_state {
    cg_gen *g;
    int got;
} wait_state;

static void wait_once(void *p) {
    wait_state *w = (wait_state *)p;
    w->got = (int)(intptr_t)cg_yield(w->g, NULL);
}

static void *waiter(cg_gen *g, void *arg) {
    (void)arg;
    wait_state w = {g, 0};
    int errors = 0, total = 0;
    for (;;) {
        cg_exc *e = cg_try_call(wait_once, &w);
        if (e) {
            errors++;
            cg_exc_unref(e);
        } else {
            total += w.got;
        }
        if (total >= 10) return (void *)(intptr_t)(errors * 1000 + total);
    }
}

TEST(trysafe_generator_call) {
    void *v = NULL;
    cg_gen *g = cg_new(waiter, NULL, NULL);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_send(g, (void *)4, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_throw(g, cg_exc_new(&cg_OSError, NULL), &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_throw(g, cg_exc_new(&cg_ZeroDivisionError, NULL), &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_send(g, (void *)6, &v, NULL), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 2010);
    cg_free(g);

    g = cg_new(waiter, NULL, NULL);
    CHECK_EQ(cg_next(g, &v, NULL), CG_YIELDED);
    CHECK_EQ(cg_close(g, &v, NULL), CG_RETURNED);
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    cg_free(g);
}

/* =====================================================================
 * CG_TRY's documented rule: a volatile local keeps its value
 * ================================================================== */

static void raise_at(int i, int at) {
    if (i == at) CG_RAISE(&cg_ValueError, "at");
}

static int volatile_count(int n, int at) {
    volatile int count = 0;
    CG_TRY {
        for (int i = 0; i < n; i++) {
            count++;
            raise_at(i, at);
        }
    } CG_EXCEPT(&cg_ValueError, ev) {
        CHECK_EQ(count, at + 1); /* read in the handler */
    } CG_END;
    return count; /* and after CG_END */
}

static void *volatile_body(cg_gen *g, void *arg) {
    volatile intptr_t sum = (intptr_t)arg;
    CG_TRY {
        for (;;) sum += (intptr_t)cg_yield(g, NULL);
    } CG_FINALLY {
        note(sum == 6 ? "sum=6" : "sum-wrong");
    } CG_END;
    return NULL;
}

TEST(trysafe_volatile_rule) {
    CHECK_EQ(volatile_count(10, 3), 4);
    CHECK_EQ(volatile_count(10, 20), 10);
    reset_trace();
    cg_gen *g = cg_new(volatile_body, (void *)1, NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_send(g, (void *)2, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_send(g, (void *)3, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_close(g, NULL, NULL), CG_RETURNED);
    CHECK_STR(trace, "sum=6");
    cg_free(g);
}

/* =====================================================================
 * Three levels of CG_TRY, with CG_FINALLY and CG_DEFER inside, under
 * -Wshadow as an error. Every clause belongs to its innermost CG_TRY.
 * ================================================================== */

static void three_levels(void) {
    CG_TRY {
        CG_DEFER(note_defer, (void *)"d1");
        CG_TRY {
            CG_DEFER(note_defer, (void *)"d2");
            CG_TRY {
                CG_DEFER(note_defer, (void *)"d3a"); CG_DEFER(note_defer, (void *)"d3b"); /* one line */
                note("raise-key");
                CG_RAISE(&cg_KeyError, "3");
            } CG_EXCEPT(&cg_ValueError, e3) {
                CHECK(0); /* level 3 catches ValueError only */
            } CG_FINALLY {
                note("finally3");
                CHECK_EXC(cg_exc_current(), "KeyError('3')"); /* passing through */
            } CG_END;
            CHECK(0);
        } CG_EXCEPT(&cg_KeyError, e2) {
            note("caught2");
            CHECK_EXC(e2, "KeyError('3')");
            /* a try inside a handler: its own clauses, then e2 again */
            CG_TRY {
                CG_DEFER(note_defer, (void *)"dh");
                CG_RAISE(&cg_OSError, "h");
            } CG_EXCEPT(&cg_OSError, eh) {
                note("caught-h");
                CHECK_EXC(eh, "OSError('h') <- KeyError('3')");
            } CG_END;
            CHECK_PTR(cg_exc_current(), e2);
            CG_RAISE(&cg_TypeError, "2");
        } CG_FINALLY {
            note("finally2");
            CG_TRY { /* a try inside a finally block */
                note("in-finally2");
            } CG_FINALLY {
                note("finally2-inner");
            } CG_END;
        } CG_END;
        CHECK(0);
    } CG_EXCEPT(&cg_KeyError, e1) {
        CHECK(0); /* the KeyError was handled at level 2 */
    } CG_EXCEPT(&cg_TypeError, e1) {
        note("caught1");
        CHECK_EXC(e1, "TypeError('2') <- KeyError('3')");
    } CG_FINALLY {
        note("finally1");
        CHECK_PTR(cg_exc_current(), NULL);
    } CG_END;
}

TEST(trysafe_nested_three_levels) {
    reset_trace();
    three_levels();
    CHECK_STR(trace, "raise-key d3b d3a finally3 d2 caught2 dh caught-h finally2 in-finally2 finally2-inner "
                     "d1 caught1 finally1");
}

static void three_levels_fn(void *p) {
    (void)p;
    three_levels();
}

static void *three_levels_body(cg_gen *g, void *arg) {
    (void)arg;
    three_levels();
    cg_yield(g, NULL);
    CHECK_PTR(cg_try_call(three_levels_fn, NULL), NULL);
    return NULL;
}

TEST(trysafe_nested_in_generator) {
    static const char *once = "raise-key d3b d3a finally3 d2 caught2 dh caught-h finally2 in-finally2 "
                              "finally2-inner d1 caught1 finally1";
    reset_trace();
    cg_gen *g = cg_new(three_levels_body, NULL, NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_STR(trace, once);
    reset_trace();
    CHECK_EQ(cg_next(g, NULL, NULL), CG_RETURNED);
    CHECK_STR(trace, once);
    cg_free(g);
}

/* =====================================================================
 * The sanitizer build check
 * ================================================================== */

#define BUILD_WARNING_ASAN                                                                              \
    "cogen: this program is built with AddressSanitizer but libcogen is not; rebuild cogen with "      \
    "-DCOGEN_SANITIZE=address (see docs/debugging.md)\n"
#define BUILD_WARNING_TSAN                                                                              \
    "cogen: this program is built with ThreadSanitizer but libcogen is not; rebuild cogen with "       \
    "-DCOGEN_SANITIZE=thread (see docs/debugging.md)\n"

/* The tests are built like the library (all but the asan-mismatch build,
 * which runs trysafe_asan_mismatch only): a sanitizer this file has, the
 * library has too. A flag it lacks, and its warning: */
#if CG__TU_ASAN && CG__TU_TSAN
#define LIB_LACKS 0u
#elif CG__TU_ASAN
#define LIB_LACKS CG__BUILD_TSAN
#define LIB_LACKS_WARNING BUILD_WARNING_TSAN
#else
#define LIB_LACKS CG__BUILD_ASAN
#define LIB_LACKS_WARNING BUILD_WARNING_ASAN
#endif

/* Runs cg__check_build(flags) with stderr going to a file; returns what it
 * wrote (a static buffer). */
static const char *stderr_of_check(unsigned flags) {
    static char out[1024];
    char path[] = "/tmp/cogen-trysafe-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0);
    unlink(path);
    fflush(stderr);
    int saved = dup(2);
    CHECK(saved >= 0);
    CHECK(dup2(fd, 2) == 2);
    cg__check_build(flags);
    fflush(stderr);
    CHECK(dup2(saved, 2) == 2);
    close(saved);
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    CHECK(n >= 0);
    out[n] = '\0';
    close(fd);
    return out;
}

/* In a fresh process (a fork): the warning for a sanitizer the library
 * lacks, once per process; none for what it has; COGEN_BUILD_CHECK=abort
 * aborts after the warning. */
TEST(trysafe_build_check) {
    if (LIB_LACKS == 0u) return; /* a library with both sanitizers: nothing lacks */
#ifdef LIB_LACKS_WARNING
    fflush(stdout);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        CHECK_STR(stderr_of_check(0u), "");
        CHECK_STR(stderr_of_check(CG__TU_ASAN | CG__TU_TSAN), ""); /* what the library has */
        CHECK_STR(stderr_of_check(LIB_LACKS), LIB_LACKS_WARNING);
        CHECK_STR(stderr_of_check(LIB_LACKS), ""); /* once per process */
        _exit(0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setenv("COGEN_BUILD_CHECK", "abort", 1);
        signal(SIGABRT, SIG_DFL);
        stderr_of_check(LIB_LACKS); /* aborts with stderr redirected */
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
#endif
}

/* Built with -fsanitize=address against the plain library (trysafe.cmake):
 * the header's constructor warned before main, so a second check prints
 * nothing; and the library still works. ctest checks the warning text. */
TEST(trysafe_asan_mismatch) {
#if CG__TU_ASAN
    CHECK_STR(stderr_of_check(CG__BUILD_ASAN), "");
    int n = 5;
    cg_exc *e = cg_try_call(raise_if_odd, &n);
    CHECK_EXC(e, "ValueError('odd 5')");
    cg_exc_unref(e);
    printf("asan mismatch: the program ran\n");
#endif /* else nothing: registered only for the -fsanitize=address build */
}

static const check_case cases[] = {
    CASE(trysafe_call_returns_exception),
    CASE(trysafe_call_keeps_locals),
    CASE(trysafe_catch_state_through_arg),
    CASE(trysafe_catch_by_type),
    CASE(trysafe_nested_calls),
    CASE(trysafe_call_runs_cleanups),
    CASE(trysafe_misuse),
    CASE(trysafe_generator_yield_inside),
    CASE(trysafe_generator_call),
    CASE(trysafe_volatile_rule),
    CASE(trysafe_nested_three_levels),
    CASE(trysafe_nested_in_generator),
    CASE(trysafe_build_check),
    CASE(trysafe_asan_mismatch),
};

CHECK_MAIN(cases)
