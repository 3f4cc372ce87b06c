/* test_gdb.c: a program for tests/test_gdb.sh to look at with gdb and
 * tools/cogen-gdb.py.
 *
 * It leaves generators in every state, suspended at known functions, on
 * two threads, then calls test_gdb_stop() (where gdb breaks). After gdb
 * lets it go on, it resumes the generators and checks their values: a
 * cogen-bt that did not restore the thread's registers would crash it or
 * make it fail here. From inside a running generator, resumed by a running
 * generator, itself delegated to, it calls test_gdb_stop_running(), the
 * second breakpoint. It prints "test_gdb: ok"
 * and exits 0 when everything held.
 */
#define _GNU_SOURCE
#include <cogen.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "test_gdb: check failed: %s\n", what);
        exit(1);
    }
}

/* The breakpoints. The empty asm keeps the calls from being folded away. */
NOINLINE void test_gdb_stop(void) { __asm__ volatile(""); }
NOINLINE void test_gdb_stop_running(void) { __asm__ volatile(""); }

/* Bodies suspended two calls deep, in functions whose names the test looks
 * for in cogen-bt's output. What follows each call keeps it from being a
 * tail call (which would drop the frame). */
static volatile intptr_t sink;

NOINLINE static intptr_t alpha_park(cg_gen *g, intptr_t x) {
    intptr_t r = (intptr_t)cg_yield(g, (void *)x);
    sink = r;
    return r + 1;
}
NOINLINE static intptr_t alpha_level1(cg_gen *g, intptr_t x) {
    intptr_t r = alpha_park(g, x * 2);
    sink = r;
    return r + 1;
}
static void *alpha_body(cg_gen *g, void *arg) {
    (void)arg;
    return (void *)alpha_level1(g, 21);
}

NOINLINE static intptr_t beta_sub_park(cg_gen *g) {
    intptr_t r = (intptr_t)cg_yield(g, (void *)7);
    sink = r;
    return r + 1;
}
static void *beta_sub_body(cg_gen *g, void *arg) {
    (void)arg;
    return (void *)beta_sub_park(g);
}
static void *beta_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_opts o = {CG_STACK_MIN, "beta-sub", 0};
    return cg_yield_from_new(g, beta_sub_body, NULL, &o);
}

static void *plain_body(cg_gen *g, void *arg) {
    cg_yield(g, arg);
    return arg;
}

/* A compact generator, swapped out at the first breakpoint: its frames are
 * in a buffer, and cogen-bt shows them from there. */
NOINLINE static intptr_t kappa_park(cg_gen *g, intptr_t x) {
    intptr_t r = (intptr_t)cg_yield(g, (void *)x);
    sink = r;
    return r + x;
}
static void *kappa_body(cg_gen *g, void *arg) {
    (void)arg;
    return (void *)kappa_park(g, 11);
}

/* At the second breakpoint three generators are running on the main
 * thread: zeta executes (it called the breakpoint), eta resumed it from
 * its body (eta_resume), and epsilon delegates to eta (cg_yield_from_new). */
NOINLINE static intptr_t zeta_inner(cg_gen *g) {
    test_gdb_stop_running();
    intptr_t r = (intptr_t)cg_yield(g, (void *)5);
    sink = r;
    return r;
}
static void *zeta_body(cg_gen *g, void *arg) {
    (void)arg;
    return (void *)zeta_inner(g);
}
NOINLINE static intptr_t eta_resume(cg_gen *zeta) {
    void *v = NULL;
    check(cg_next(zeta, &v, NULL) == CG_YIELDED && (intptr_t)v == 5, "zeta yields 5");
    sink = (intptr_t)v;
    return (intptr_t)v + 1;
}
static void *eta_body(cg_gen *g, void *arg) {
    intptr_t r = eta_resume(arg);
    return (void *)(r + (intptr_t)cg_yield(g, (void *)r));
}
static void *epsilon_body(cg_gen *g, void *arg) {
    cg_opts o = {0, "eta", 0};
    return cg_yield_from_new(g, eta_body, arg, &o);
}

/* The second thread: one generator suspended in worker_park, then it waits
 * until the main thread is done with gdb. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int phase;

NOINLINE static intptr_t worker_park(cg_gen *g) {
    intptr_t r = (intptr_t)cg_yield(g, (void *)3);
    sink = r;
    return r * 2;
}
static void *worker_body(cg_gen *g, void *arg) {
    (void)arg;
    return (void *)worker_park(g);
}

static void set_phase(int p) {
    pthread_mutex_lock(&mu);
    phase = p;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}
static void wait_phase(int p) {
    pthread_mutex_lock(&mu);
    while (phase < p) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
}

static void *worker_thread(void *arg) {
    (void)arg;
    cg_opts o = {64u * 1024u, "worker-gen", 0};
    cg_gen *g = cg_new(worker_body, NULL, &o);
    void *v = NULL;
    check(g && cg_next(g, &v, NULL) == CG_YIELDED && (intptr_t)v == 3, "worker-gen yields 3");
    set_phase(1);
    wait_phase(2);
    check(cg_send(g, (void *)4, &v, NULL) == CG_RETURNED && (intptr_t)v == 8, "worker-gen returns 8");
    cg_free(g);
    return NULL;
}

int main(void) {
    pthread_t t;
    check(pthread_create(&t, NULL, worker_thread, NULL) == 0, "pthread_create");
    wait_phase(1);

    void *v = NULL;
    cg_opts ao = {0, "alpha", 0}, bo = {0, "beta", 0}, go = {0, "gamma", 0}, dopt = {0, "delta", 0};
    cg_gen *alpha = cg_new(alpha_body, NULL, &ao);
    cg_gen *beta = cg_new(beta_body, NULL, &bo);
    cg_gen *gamma = cg_new(plain_body, (void *)9, &go);
    cg_gen *delta = cg_new(plain_body, (void *)1, &dopt);
    cg_gen *anon = cg_new(plain_body, (void *)2, NULL);
    check(alpha && beta && gamma && delta && anon, "cg_new");
    check(cg_next(alpha, &v, NULL) == CG_YIELDED && (intptr_t)v == 42, "alpha yields 42");
    check(cg_next(beta, &v, NULL) == CG_YIELDED && (intptr_t)v == 7, "beta yields 7");
    check(cg_next(delta, &v, NULL) == CG_YIELDED, "delta yields");
    check(cg_next(delta, &v, NULL) == CG_RETURNED, "delta returns");
    check(cg_next(anon, &v, NULL) == CG_YIELDED, "anon yields");

    /* kappa is swapped out when a second compact generator runs while only
     * one may stay resident (the ucontext build has no compact mode: there
     * it is an ordinary generator). */
    cg_opts ko = {32u * 1024u, "kappa", CG_OPT_COMPACT}, po = {0, "push", CG_OPT_COMPACT};
    /* lambda, compact and never run, keeps no copy of its first frame: that
     * frame is made when it first runs, and cogen-bt shows it all the same. */
    cg_opts lo = {32u * 1024u, "lambda", CG_OPT_COMPACT};
    cg_gen *lambda = cg_new(plain_body, (void *)13, &lo);
    check(lambda != NULL, "lambda made");
    cg_gen *kappa = cg_new(kappa_body, NULL, &ko);
    check(kappa && cg_next(kappa, &v, NULL) == CG_YIELDED && (intptr_t)v == 11, "kappa yields 11");
    unsigned resident = cg_compact_resident(1);
    cg_gen *push = cg_new(plain_body, (void *)3, &po);
    check(push && cg_next(push, &v, NULL) == CG_YIELDED && (intptr_t)v == 3, "push yields 3");
    cg_free(push);

    test_gdb_stop(); /* breakpoint 1: everything parked */

    /* Still intact after cogen-bt swapped this thread's registers. */
    check(cg_send(alpha, (void *)100, &v, NULL) == CG_RETURNED && (intptr_t)v == 102, "alpha returns 102");
    check(cg_send(beta, (void *)10, &v, NULL) == CG_RETURNED && (intptr_t)v == 11, "beta returns 11");
    check(cg_next(gamma, &v, NULL) == CG_YIELDED && (intptr_t)v == 9, "gamma yields 9");
    cg_compact_resident(resident);
    check(cg_send(kappa, (void *)30, &v, NULL) == CG_RETURNED && (intptr_t)v == 41, "kappa returns 41");
    cg_free(kappa);
    check(cg_next(lambda, &v, NULL) == CG_YIELDED && (intptr_t)v == 13, "lambda yields 13");
    cg_free(lambda);
    set_phase(2);
    check(pthread_join(t, NULL) == 0, "pthread_join");

    cg_opts eo = {0, "epsilon", 0}, zo = {0, "zeta", 0};
    cg_gen *zeta = cg_new(zeta_body, NULL, &zo);
    cg_gen *epsilon = cg_new(epsilon_body, zeta, &eo);
    check(zeta && epsilon, "cg_new epsilon, zeta");
    /* breakpoint 2 is hit inside this resume */
    check(cg_next(epsilon, &v, NULL) == CG_YIELDED && (intptr_t)v == 6, "epsilon yields 6");
    check(cg_send(epsilon, (void *)4, &v, NULL) == CG_RETURNED && (intptr_t)v == 10, "epsilon returns 10");
    check(cg_send(zeta, (void *)8, &v, NULL) == CG_RETURNED && (intptr_t)v == 8, "zeta returns 8");
    cg_free(zeta);

    cg_free(alpha);
    cg_free(beta);
    cg_free(gamma);
    cg_free(delta);
    cg_free(anon);
    cg_free(epsilon);
    puts("test_gdb: ok");
    return 0;
}
