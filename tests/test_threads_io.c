/* test_threads_io.c: work sent off the loop: the DNS workers
 * (cg_getaddrinfo, cg_getnameinfo), the executors (cg_to_thread,
 * cg_loop_run_in_executor, executors of one's own) and the calls between a
 * loop and other threads (run_coroutine_threadsafe, wrap_future).
 *
 * Expected values are Python's, checked on CPython 3.13 by hand:
 * socket.getaddrinfo('nonexistent.invalid', 80) raises gaierror(-2, 'Name
 * or service not known'), str '[Errno -2] Name or service not known' (or
 * EAI_AGAIN's '[Errno -3] Temporary failure in name resolution' on a
 * machine whose resolver cannot be reached); socket.getnameinfo(
 * ('127.0.0.1', 80), 0) is ('localhost', 'http') and with NI_NUMERICHOST |
 * NI_NUMERICSERV ('127.0.0.1', '80'); an EAI_SYSTEM failure is the OSError
 * of errno (OSError(24, 'Too many open files')).
 *
 * The test interposes getaddrinfo (the executable's definition comes
 * first) to make a lookup that blocks until the test lets it go
 * ("block.test.invalid") or fails with EAI_SYSTEM ("emfile.test.invalid"),
 * and to count the lookups that reach the resolver (it calls the
 * sanitizer's interceptor when there is one, else libc's).
 */
#define _GNU_SOURCE
#include "cogen_io.h"
#include "check.h"
#include "io_check.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------------
 * The getaddrinfo shim, and gates
 * ------------------------------------------------------------------ */

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
    int waiting; /* threads stopped at it */
} gate;

#define GATE_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0}

static void gate_pass(gate *g) {
    pthread_mutex_lock(&g->mu);
    g->waiting++;
    pthread_cond_broadcast(&g->cv);
    while (!g->open) pthread_cond_wait(&g->cv, &g->mu);
    g->waiting--;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_set(gate *g, int open) {
    pthread_mutex_lock(&g->mu);
    g->open = open;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static int gate_waiting(gate *g) {
    pthread_mutex_lock(&g->mu);
    int n = g->waiting;
    pthread_mutex_unlock(&g->mu);
    return n;
}

static gate dns_gate = GATE_INIT;
static int resolver_calls; /* lookups that were not numeric (atomic) */

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
    static int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
    if (!real) {
        /* under a sanitizer, its interceptor (which TSan needs: it does
         * not see glibc's own locks in the resolver), else libc's */
        void *p = dlsym(RTLD_DEFAULT, "__interceptor_getaddrinfo");
        if (!p) p = dlsym(RTLD_DEFAULT, "___interceptor_getaddrinfo");
        if (!p) p = dlsym(RTLD_NEXT, "getaddrinfo");
        *(void **)&real = p;
    }
    if (hints && (hints->ai_flags & AI_NUMERICHOST)) return real(node, service, hints, res);
    __atomic_add_fetch(&resolver_calls, 1, __ATOMIC_RELAXED);
    if (node && strcmp(node, "block.test.invalid") == 0) {
        gate_pass(&dns_gate);
        node = "127.0.0.1";
    }
    if (node && strcmp(node, "emfile.test.invalid") == 0) {
        errno = EMFILE;
        return EAI_SYSTEM;
    }
    return real(node, service, hints, res);
}


/* A task that sleeps in real time until cond(arg) holds (a few seconds at
 * most), letting the loop run meanwhile. */
static void sleep_until(int (*cond)(void *), void *arg) {
    for (int i = 0; i < 5000 && !cond(arg); i++) cg_sleep(CG_MS(1));
    CHECK(cond(arg));
}

/* ---------------------------------------------------------------------
 * DNS
 * ------------------------------------------------------------------ */

static void *gai_localhost_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    struct addrinfo hints = {0};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    int calls = __atomic_load_n(&resolver_calls, __ATOMIC_RELAXED);
    struct addrinfo *res = cg_getaddrinfo("localhost", "80", &hints);
    CHECK(__atomic_load_n(&resolver_calls, __ATOMIC_RELAXED) > calls); /* it was looked up */
    CHECK(res != NULL);
    int found = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next) {
        CHECK_EQ(a->ai_family, AF_INET);
        struct sockaddr_in *s = (struct sockaddr_in *)a->ai_addr;
        CHECK_EQ(ntohs(s->sin_port), 80);
        if (ntohl(s->sin_addr.s_addr) == INADDR_LOOPBACK) found = 1;
    }
    CHECK(found);
    freeaddrinfo(res);
    /* a numeric host and port: answered without a lookup */
    calls = __atomic_load_n(&resolver_calls, __ATOMIC_RELAXED);
    res = cg_getaddrinfo("127.0.0.1", "8080", &hints);
    CHECK_EQ(__atomic_load_n(&resolver_calls, __ATOMIC_RELAXED), calls);
    CHECK_EQ(ntohs(((struct sockaddr_in *)res->ai_addr)->sin_port), 8080);
    freeaddrinfo(res);
    return NULL;
}

TEST(dns_getaddrinfo_localhost) { run_main_no_fd_leak(gai_localhost_main, NULL); }

static void gai_invalid(void *arg) {
    struct addrinfo *res = cg_getaddrinfo(arg, "80", NULL);
    freeaddrinfo(res);
    CHECK(!"resolved");
}

static void *gai_error_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_exc *e = cg_try_catch(gai_invalid, "nonexistent.invalid", &cg_OSError);
    CHECK_PTR(cg_exc_type_of(e), &cg_gaierror);
    CHECK(cg_exc_is(e, &cg_OSError));
    int err = cg_exc_errno(e);
    if (err == EAI_NONAME)
        CHECK_STR(cg_exc_msg(e), "[Errno -2] Name or service not known");
    else if (err == EAI_AGAIN)
        CHECK_STR(cg_exc_msg(e), "[Errno -3] Temporary failure in name resolution");
    else
        CHECK(!"gaierror, EAI_NONAME or EAI_AGAIN");
    cg_exc_unref(e);
    /* EAI_SYSTEM: the OSError of errno */
    e = cg_try_catch(gai_invalid, "emfile.test.invalid", &cg_OSError);
    CHECK_PTR(cg_exc_type_of(e), &cg_OSError);
    CHECK_EQ(cg_exc_errno(e), EMFILE);
    CHECK_STR(cg_exc_msg(e), "[Errno 24] Too many open files");
    cg_exc_unref(e);
    return NULL;
}

TEST(dns_getaddrinfo_error) { run_main(gai_error_main, NULL); }

static void *gni_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(80);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    cg_getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv, 0);
    CHECK_STR(host, "localhost");
    CHECK_STR(serv, "http");
    cg_getnameinfo((struct sockaddr *)&sa, sizeof sa, host, sizeof host, serv, sizeof serv,
                   NI_NUMERICHOST | NI_NUMERICSERV);
    CHECK_STR(host, "127.0.0.1");
    CHECK_STR(serv, "80");
    return NULL;
}

TEST(dns_getnameinfo) { run_main(gni_main, NULL); }

/* Cancelled while its lookup runs: the task stops waiting at once; the
 * lookup finishes on its worker later and its result is freed there. */
static void *gai_blocked(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    struct addrinfo *res = cg_getaddrinfo("block.test.invalid", "80", NULL);
    freeaddrinfo(res);
    return "resolved";
}

static int one_blocked(void *arg) { return gate_waiting(arg) >= 1; }

static void join(void *t) { cg_await(cg_task_future(t)); }

static void *gai_cancel_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_task *t = cg_create_task(gai_blocked, NULL, NULL);
    sleep_until(one_blocked, &dns_gate);
    cg_task_cancel(t, "enough");
    cg_exc *e = cg_try_catch(join, t, &cg_CancelledError);
    CHECK_EXC(e, "CancelledError('enough')");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    /* the lookup still runs; a second one completes once the gate opens */
    gate_set(&dns_gate, 1);
    struct addrinfo *res = cg_getaddrinfo("block.test.invalid", "80", NULL);
    CHECK(res != NULL);
    freeaddrinfo(res);
    gate_set(&dns_gate, 0);
    return NULL;
}

TEST(dns_cancel) { run_main(gai_cancel_main, NULL); }

/* ---------------------------------------------------------------------
 * to_thread and run_in_executor
 * ------------------------------------------------------------------ */

static pthread_t loop_thread;

static void *twice(void *arg) {
    CHECK(!pthread_equal(pthread_self(), loop_thread)); /* on a worker */
    CHECK(cg_running_loop() == NULL);
    sigset_t mask; /* no signal of the process's for it to take */
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    CHECK(sigismember(&mask, SIGINT) && sigismember(&mask, SIGCHLD) && !sigismember(&mask, SIGSEGV));
    return (void *)((intptr_t)arg * 2);
}

static void *raises(void *arg) {
    CG_RAISE(&cg_ValueError, arg);
}

static void call_raises(void *arg) { cg_to_thread(raises, arg); }

static void *to_thread_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    loop_thread = pthread_self();
    CHECK_EQ((intptr_t)cg_to_thread(twice, (void *)21), 42);
    cg_exc *e = cg_try_catch(call_raises, "bad value", &cg_Exception);
    CHECK_EXC(e, "ValueError('bad value')");
    cg_exc_unref(e);
    /* run_in_executor: a future of the loop */
    cg_future *f = cg_loop_run_in_executor(NULL, NULL, twice, (void *)5);
    CHECK_PTR(cg_future_loop(f), cg_get_running_loop());
    CHECK_EQ((intptr_t)cg_await(f), 10);
    cg_future_unref(f);
    return NULL;
}

TEST(thread_to_thread) { run_main(to_thread_main, NULL); }

static gate job_gate = GATE_INIT;
static int jobs_started, jobs_ran, jobs_now, jobs_max; /* atomic */

/* A job that waits at job_gate, counting how many run at once. */
static void *gated(void *arg) {
    __atomic_add_fetch(&jobs_started, 1, __ATOMIC_SEQ_CST);
    int now = __atomic_add_fetch(&jobs_now, 1, __ATOMIC_SEQ_CST);
    int m = __atomic_load_n(&jobs_max, __ATOMIC_SEQ_CST);
    while (now > m && !__atomic_compare_exchange_n(&jobs_max, &m, now, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
    gate_pass(&job_gate);
    __atomic_sub_fetch(&jobs_now, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(&jobs_ran, 1, __ATOMIC_SEQ_CST);
    return arg;
}

static void jobs_reset(void) {
    __atomic_store_n(&jobs_started, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&jobs_ran, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&jobs_now, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&jobs_max, 0, __ATOMIC_SEQ_CST);
    gate_set(&job_gate, 0);
}

static int n_at_gate(void *arg) { return gate_waiting(&job_gate) >= (int)(intptr_t)arg; }
static int n_ran(void *arg) { return __atomic_load_n(&jobs_ran, __ATOMIC_SEQ_CST) >= (int)(intptr_t)arg; }

static void *plus_one(void *arg) { return (void *)((intptr_t)arg + 1); }

/* Cancelled while queued: taken out, never runs; while running: the
 * awaiting task stops waiting at once, the job finishes, its result is
 * dropped. */
static void *gated_task(cg_gen *g, void *arg) {
    (void)g;
    return cg_to_thread(gated, arg);
}

static void *cancel_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    jobs_reset();
    cg_executor *ex = cg_executor_new(1);
    cg_future *a = cg_loop_run_in_executor(NULL, ex, gated, "a");
    cg_future *b = cg_loop_run_in_executor(NULL, ex, gated, "b");
    sleep_until(n_at_gate, (void *)1); /* a runs, b is queued */
    CHECK_EQ(cg_future_cancel(b, NULL), 1);
    cg_sleep(0); /* (the cancellation's callback takes it out) */
    gate_set(&job_gate, 1);
    CHECK_STR(cg_await(a), "a");
    cg_executor_shutdown(ex, 1); /* every job has run: b never did */
    CHECK_EQ(__atomic_load_n(&jobs_ran, __ATOMIC_SEQ_CST), 1);
    CHECK(cg_future_cancelled(b));
    cg_future_unref(a);
    cg_future_unref(b);
    cg_executor_free(ex);
    /* cancelled while it runs, in to_thread */
    jobs_reset();
    cg_task *t = cg_create_task(gated_task, "c", NULL);
    sleep_until(n_at_gate, (void *)1);
    cg_task_cancel(t, "stop");
    cg_exc *e = cg_try_catch(join, t, &cg_CancelledError);
    CHECK_EXC(e, "CancelledError('stop')");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    CHECK_EQ(__atomic_load_n(&jobs_ran, __ATOMIC_SEQ_CST), 0); /* still at the gate */
    gate_set(&job_gate, 1);
    sleep_until(n_ran, (void *)1); /* it finishes, and nobody waits for it */
    return NULL;
}

TEST(thread_cancel) { run_main(cancel_main, NULL); }

/* More jobs than workers: they run in turn, never more at once than the
 * limit; a shut down executor takes no more. */
static void submit_after_shutdown(void *ex) { cg_loop_run_in_executor(NULL, ex, twice, NULL); }

static void *limit_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    jobs_reset();
    cg_executor *ex = cg_executor_new(2);
    cg_future *f[6];
    for (intptr_t i = 0; i < 6; i++) f[i] = cg_loop_run_in_executor(NULL, ex, gated, (void *)i);
    sleep_until(n_at_gate, (void *)2);
    cg_sleep(CG_MS(20));
    CHECK_EQ(gate_waiting(&job_gate), 2); /* two at once, the others queued */
    CHECK_EQ(cg_executor_workers(ex), 2);
    gate_set(&job_gate, 1);
    for (intptr_t i = 0; i < 6; i++) {
        CHECK_EQ((intptr_t)cg_await(f[i]), i);
        cg_future_unref(f[i]);
    }
    CHECK_EQ(__atomic_load_n(&jobs_max, __ATOMIC_SEQ_CST), 2);
    CHECK_EQ(cg_executor_workers(ex), 2);
    cg_executor_shutdown(ex, 0);
    cg_exc *e = cg_try_catch(submit_after_shutdown, ex, &cg_Exception);
    CHECK_EXC(e, "RuntimeError('cannot schedule new futures after shutdown')");
    cg_exc_unref(e);
    cg_executor_shutdown(ex, 1); /* again, waiting for the workers to end */
    cg_executor_free(ex);
    return NULL;
}

TEST(thread_pool_limit) { run_main(limit_main, NULL); }

/* The DNS workers are a pool of their own: with every one of them stuck
 * in a lookup, to_thread still runs. */
static void *dns_separate_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    enum { N = 8 }; /* more lookups than DNS workers */
    cg_task *t[N];
    for (int i = 0; i < N; i++) t[i] = cg_create_task(gai_blocked, NULL, NULL);
    sleep_until(one_blocked, &dns_gate);
    cg_sleep(CG_MS(20));
    int blocked = gate_waiting(&dns_gate);
    CHECK(blocked >= 1 && blocked < N); /* the DNS pool's limit */
    CHECK_EQ((intptr_t)cg_to_thread(twice, (void *)4), 8);
    gate_set(&dns_gate, 1);
    for (int i = 0; i < N; i++) {
        CHECK_STR(cg_await(cg_task_future(t[i])), "resolved");
        cg_future_unref(cg_task_future(t[i]));
    }
    gate_set(&dns_gate, 0);
    return NULL;
}

TEST(thread_dns_pool_separate) { run_main(dns_separate_main, NULL); }

/* Many submissions at once, from many tasks. */
static void *plus_one_task(cg_gen *g, void *arg) {
    (void)g;
    return cg_to_thread(plus_one, arg);
}

static void *many_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    enum { N = 2000 };
    static cg_body bodies[N];
    for (intptr_t i = 0; i < N; i++) bodies[i] = (cg_body){plus_one_task, (void *)i};
    cg_future *all = cg_gather_bodies(bodies, N, 0);
    cg_await(all);
    intptr_t sum = 0;
    for (size_t i = 0; i < N; i++) sum += (intptr_t)cg_future_result(cg_gather_child(all, i));
    CHECK_EQ(sum, (intptr_t)N * (N + 1) / 2);
    cg_future_unref(all);
    return NULL;
}

TEST(thread_many) { run_main_no_fd_leak(many_main, NULL); }

/* asyncio.run waits for the default executor's jobs (shutdown_default_
 * executor) after cancelling the task that waited for one. */
static int n_started(void *arg) { return __atomic_load_n(&jobs_started, __ATOMIC_SEQ_CST) >= (int)(intptr_t)arg; }

/* Opens the gate 50 ms after the job has started. */
static void *open_later(void *arg) {
    while (!n_started((void *)1)) sched_yield();
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    gate_set(arg, 1);
    return NULL;
}

static void *leave_job_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_task *t = cg_create_task(gated_task, "left", NULL);
    sleep_until(n_started, (void *)1);
    cg_future_unref(cg_task_future(t));
    return NULL; /* the run cancels t, then waits for its job */
}

TEST(thread_run_waits_for_executor) {
    jobs_reset();
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, open_later, &job_gate), 0);
    run_main(leave_job_main, NULL);
    CHECK_EQ(__atomic_load_n(&jobs_ran, __ATOMIC_SEQ_CST), 1);
    pthread_join(th, NULL);
}

/* A loop closed with jobs running and queued: they end on their workers,
 * their outcomes dropped; nothing leaks (ASan, valgrind). */
static void *submit_and_leave(cg_gen *g, void *arg) {
    (void)g;
    cg_executor *ex = arg;
    for (int i = 0; i < 3; i++) {
        cg_future_unref(cg_loop_run_in_executor(NULL, ex, gated, NULL)); /* own executor: one runs */
        cg_future_unref(cg_loop_run_in_executor(NULL, NULL, gated, NULL)); /* default: all run */
    }
    cg_future_unref(cg_loop_run_in_executor(NULL, NULL, plus_one, NULL)); /* done and posted, never delivered */
    return NULL;
}

TEST(thread_loop_close_pending) {
    jobs_reset();
    cg_executor *ex = cg_executor_new(1);
    cg_loop *loop = cg_loop_new(NULL);
    cg_task *t = cg_task_new(loop, submit_and_leave, ex, NULL);
    CHECK_EQ(cg_loop_run_until_complete(loop, cg_task_future(t), NULL, NULL), CG_RETURNED);
    cg_future_unref(cg_task_future(t));
    /* also a job done, posted to the loop, but never delivered */
    gate_set(&job_gate, 0);
    while (gate_waiting(&job_gate) < 4) sched_yield(); /* 1 + 3 running */
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL); /* (plus_one has posted its outcome) */
    cg_loop_free(loop);
    gate_set(&job_gate, 1);
    cg_executor_shutdown(ex, 1);
    cg_executor_free(ex);
    while (__atomic_load_n(&jobs_ran, __ATOMIC_SEQ_CST) < 6) sched_yield();
    /* the default executor's workers were let go (detached): give them
     * time to end before the process does, or valgrind sees their TLS */
    struct timespec end = {0, 200 * 1000000};
    nanosleep(&end, NULL);
}

/* ---------------------------------------------------------------------
 * Concurrent futures, run_coroutine_threadsafe, wrap_future
 * ------------------------------------------------------------------ */

static int saw_cancel; /* atomic */

static void *add_one_later(cg_gen *g, void *arg) {
    (void)g;
    CHECK(pthread_equal(pthread_self(), loop_thread)); /* a task of the loop */
    cg_sleep(CG_MS(1));
    return (void *)((intptr_t)arg + 1);
}

static void *raise_later(cg_gen *g, void *arg) {
    (void)g;
    cg_sleep(0);
    CG_RAISE(&cg_ValueError, arg);
}

static void note_cancel(void *arg) {
    (void)arg;
    __atomic_store_n(&saw_cancel, 1, __ATOMIC_SEQ_CST);
}

static void long_nap(void *arg) {
    (void)arg;
    cg_sleep(CG_SEC(3600));
}

static void *sleep_hour(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    CG_DEFER(note_cancel, NULL); /* (runs as the CancelledError leaves) */
    long_nap(NULL);
    return NULL;
}

typedef struct client {
    cg_loop *loop;
    cg_cfuture *done; /* the client says it has finished */
} client;

static void *client_thread(void *arg) {
    client *c = arg;
    void *v = NULL;
    cg_exc *e = NULL;
    /* a result */
    cg_cfuture *f = cg_run_coroutine_threadsafe(c->loop, add_one_later, (void *)41);
    CHECK(f != NULL);
    CHECK_EQ(cg_cfuture_result(f, CG_NEVER, &v, &e), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 42);
    CHECK(cg_cfuture_done(f) && !cg_cfuture_cancelled(f));
    cg_cfuture_unref(f);
    /* an exception, moved to this thread */
    f = cg_run_coroutine_threadsafe(c->loop, raise_later, "boom");
    CHECK_EQ(cg_cfuture_result(f, CG_NEVER, &v, &e), CG_RAISED);
    CHECK_EXC(e, "ValueError('boom')");
    cg_exc_unref(e);
    cg_cfuture_unref(f);
    /* a timeout, then a cancel that reaches the task */
    f = cg_run_coroutine_threadsafe(c->loop, sleep_hour, NULL);
    CHECK_EQ(cg_cfuture_result(f, CG_MS(10), &v, &e), CG_RAISED);
    CHECK_EXC(e, "TimeoutError()");
    cg_exc_unref(e);
    CHECK(!cg_cfuture_done(f));
    CHECK_EQ(cg_cfuture_cancel(f), 1);
    CHECK(cg_cfuture_done(f) && cg_cfuture_cancelled(f));
    CHECK_EQ(cg_cfuture_result(f, 0, &v, &e), CG_RAISED);
    CHECK_EXC(e, "CancelledError()");
    cg_exc_unref(e);
    cg_cfuture_unref(f);
    while (!__atomic_load_n(&saw_cancel, __ATOMIC_SEQ_CST)) sched_yield();
    /* misuse: a loop NULL */
    errno = 0;
    CHECK(cg_run_coroutine_threadsafe(NULL, add_one_later, NULL) == NULL);
    CHECK_EQ(errno, EINVAL);
    cg_cfuture_set_result(c->done, "client done");
    return NULL;
}

static void *rct_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    loop_thread = pthread_self();
    static client c; /* not on the task's stack: compact mode swaps it out while the thread reads it */
    c = (client){cg_get_running_loop(), cg_cfuture_new()};
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, client_thread, &c), 0);
    CHECK_STR(cg_await_cfuture(c.done), "client done"); /* the loop keeps running meanwhile */
    pthread_join(th, NULL);
    cg_cfuture_unref(c.done);
    return NULL;
}

TEST(thread_run_coroutine_threadsafe) {
    __atomic_store_n(&saw_cancel, 0, __ATOMIC_SEQ_CST);
    run_main(rct_main, NULL);
}

static void *complete_later(void *arg) {
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    cg_cfuture_set_exception(arg, cg_exc_new(&cg_ValueError, "late"));
    return NULL;
}

static void await_cf(void *cf) { cg_await_cfuture(cf); }

static void *await_cf_task(cg_gen *g, void *cf) {
    (void)g;
    return cg_await_cfuture(cf);
}

static int order[4], norder;

static void record(cg_cfuture *f, void *arg) {
    (void)f;
    order[norder++] = (int)(intptr_t)arg;
}

static void *wrap_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    /* completed by another thread while the task waits */
    cg_cfuture *cf = cg_cfuture_new();
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, complete_later, cf), 0);
    cg_exc *e = cg_try_catch(await_cf, cf, &cg_Exception);
    CHECK_EXC(e, "ValueError('late')");
    cg_exc_unref(e);
    pthread_join(th, NULL);
    cg_cfuture_unref(cf);
    /* done already */
    cf = cg_cfuture_new();
    CHECK_EQ(cg_cfuture_set_result(cf, "ready"), 0);
    CHECK_EQ(cg_cfuture_set_result(cf, "again"), -1); /* InvalidStateError in Python */
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(cg_cfuture_cancel(cf), 0);
    CHECK_STR(cg_await_cfuture(cf), "ready");
    cg_cfuture_unref(cf);
    /* the task that awaits it is cancelled: so is the concurrent future */
    cf = cg_cfuture_new();
    cg_task *t = cg_create_task(await_cf_task, cf, NULL);
    cg_sleep(0);
    cg_task_cancel(t, NULL);
    e = cg_try_catch(join, t, &cg_CancelledError);
    CHECK(cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    CHECK(cg_cfuture_cancelled(cf));
    cg_cfuture_unref(cf);
    /* callbacks in order, at once once it is done */
    cf = cg_cfuture_new();
    norder = 0;
    cg_cfuture_add_done_callback(cf, record, (void *)1);
    cg_cfuture_add_done_callback(cf, record, (void *)2);
    CHECK_EQ(norder, 0);
    cg_cfuture_cancel(cf);
    CHECK_EQ(norder, 2);
    cg_cfuture_add_done_callback(cf, record, (void *)3);
    CHECK_EQ(norder, 3);
    CHECK(order[0] == 1 && order[1] == 2 && order[2] == 3);
    cg_cfuture_unref(cf);
    return NULL;
}

TEST(thread_wrap_future) { run_main(wrap_main, NULL); }

/* Loops closed while their jobs finish, over and over: each job is
 * delivered, dropped as posted, or dropped by its worker, never twice. */
static int quick_round;

static void *submit_quick(cg_gen *g, void *ex) {
    (void)g;
    for (intptr_t i = 0; i < 8; i++) cg_future_unref(cg_loop_run_in_executor(NULL, ex, plus_one, (void *)i));
    if (quick_round % 3 == 0) cg_sleep(CG_MS(1)); /* (some rounds let some be delivered) */
    return NULL;
}

/* COGEN_TEST_SCALE (tools/check.sh sets it per mode), 1 by default. */
static double test_scale(void) {
    const char *s = getenv("COGEN_TEST_SCALE");
    double v = s ? atof(s) : 1.0;
    return v > 0 ? v : 1.0;
}

TEST(thread_loop_close_race) {
    cg_executor *ex = cg_executor_new(4);
    int rounds = (int)(200 * test_scale()) + 1;
    for (int r = 0; r < rounds; r++) {
        quick_round = r;
        cg_loop *loop = cg_loop_new(NULL);
        cg_task *t = cg_task_new(loop, submit_quick, ex, NULL);
        CHECK_EQ(cg_loop_run_until_complete(loop, cg_task_future(t), NULL, NULL), CG_RETURNED);
        cg_future_unref(cg_task_future(t));
        if (r & 1) sched_yield();
        cg_loop_free(loop);
    }
    cg_executor_shutdown(ex, 1);
    cg_executor_free(ex);
}

/* Many threads submit to one loop at once. */
enum { SUBMITTERS = 8, PER_SUBMITTER = 50 };

static void *submitter(void *loop) {
    intptr_t sum = 0;
    for (intptr_t i = 0; i < PER_SUBMITTER; i++) {
        cg_cfuture *f = cg_run_coroutine_threadsafe(loop, add_one_later, (void *)i);
        void *v;
        CHECK_EQ(cg_cfuture_result(f, CG_NEVER, &v, NULL), CG_RETURNED);
        sum += (intptr_t)v;
        cg_cfuture_unref(f);
    }
    return (void *)sum;
}

static void *join_thread(void *th) {
    void *v;
    pthread_join(*(pthread_t *)th, &v);
    return v;
}

static void *submitters_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    loop_thread = pthread_self();
    static pthread_t th[SUBMITTERS];
    for (int i = 0; i < SUBMITTERS; i++) CHECK_EQ(pthread_create(&th[i], NULL, submitter, cg_get_running_loop()), 0);
    intptr_t sum = 0;
    for (int i = 0; i < SUBMITTERS; i++) sum += (intptr_t)cg_to_thread(join_thread, &th[i]); /* the loop runs on */
    CHECK_EQ(sum, (intptr_t)SUBMITTERS * PER_SUBMITTER * (PER_SUBMITTER + 1) / 2);
    return NULL;
}

TEST(thread_many_submitters) { run_main(submitters_main, NULL); }

/* Misuse: asyncio's 'no running event loop' without a loop; cogen's own
 * message in a loop's callback. */
static void to_thread_now(void *arg) { cg_to_thread(plus_one, arg); }
static void gai_now(void *arg) { freeaddrinfo(cg_getaddrinfo(arg, "80", NULL)); }

static cg_exc *cb_exc;

static void callback_calls(void *arg) {
    (void)arg;
    cb_exc = cg_try_catch(to_thread_now, NULL, &cg_Exception);
}

static void *misuse_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_handle_unref(cg_loop_call_soon(cg_get_running_loop(), callback_calls, NULL));
    cg_sleep(0);
    CHECK_EXC(cb_exc, "RuntimeError('cg_to_thread() called outside a task')");
    cg_exc_unref(cb_exc);
    return NULL;
}

TEST(thread_misuse) {
    cg_exc *e = cg_try_catch(to_thread_now, NULL, &cg_Exception);
    CHECK_EXC(e, "RuntimeError('no running event loop')");
    cg_exc_unref(e);
    e = cg_try_catch(gai_now, "localhost", &cg_Exception);
    CHECK_EXC(e, "RuntimeError('no running event loop')");
    cg_exc_unref(e);
    run_main(misuse_main, NULL);
}

/* A virtual clock loop waits for its jobs out on threads instead of
 * declaring a deadlock (cg__loop_hold), also in asyncio.run's wait for the
 * default executor. */
static void *nap_20ms(void *arg) {
    struct timespec ts = {0, 20 * 1000000};
    nanosleep(&ts, NULL);
    return arg;
}

static void *virtual_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    CHECK_STR(cg_to_thread(nap_20ms, "napped"), "napped");
    struct addrinfo *res = cg_getaddrinfo("localhost", "80", NULL);
    CHECK(res != NULL);
    freeaddrinfo(res);
    cg_sleep(CG_SEC(3600)); /* the clock jumps */
    cg_future_unref(cg_loop_run_in_executor(NULL, NULL, nap_20ms, NULL)); /* left for the run's shutdown */
    return "done";
}

TEST(thread_virtual_clock) {
    cg_run_opts o = {0};
    o.loop_flags = CG_LOOP_VIRTUAL_CLOCK;
    void *v = NULL;
    cg_exc *e = NULL;
    cg_status st = cg_run(virtual_main, NULL, &o, &v, &e);
    if (st != CG_RETURNED) cg_exc_print(e, stderr);
    CHECK_EQ(st, CG_RETURNED);
    CHECK_STR(v, "done");
}

static const check_case cases[] = {
    CASE(dns_getaddrinfo_localhost), CASE(dns_getaddrinfo_error), CASE(dns_getnameinfo), CASE(dns_cancel),
    CASE(thread_to_thread), CASE(thread_cancel), CASE(thread_pool_limit), CASE(thread_dns_pool_separate),
    CASE(thread_many), CASE(thread_run_waits_for_executor), CASE(thread_loop_close_pending),
    CASE(thread_run_coroutine_threadsafe), CASE(thread_wrap_future), CASE(thread_loop_close_race),
    CASE(thread_many_submitters), CASE(thread_misuse), CASE(thread_virtual_clock),
};

CHECK_MAIN(cases)
