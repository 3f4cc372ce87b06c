/* test_signal.c: signals on the loop (add_signal_handler over signalfd,
 * cg_wait_signal) and cg_run's Ctrl-C.
 *
 * Messages are asyncio's (CPython 3.13.0, unix_events.py, checked there):
 * loop.add_signal_handler(0, print) raises ValueError('invalid signal
 * number 0') (also 32, 33, 65, -1: not in signal.valid_signals()),
 * add_signal_handler(9, ...) RuntimeError('sig 9 cannot be caught') (19
 * likewise), remove_signal_handler(10) with no handler returns False, and
 * remove_signal_handler(9) False as well.
 *
 * Ctrl-C, from a Python twin (asyncio.run(main()) in a child whose SIGINT
 * is SIG_DFL, sent SIGINT once main awaits sleep(10); CPython 3.13.0):
 * - main re-raises the CancelledError: 'cancelled', then asyncio.run
 *   raises KeyboardInterrupt() with __context__ CancelledError();
 * - main returns 42 from its except CancelledError: asyncio.run returns 42;
 * - main swallows it and sleeps again, a second SIGINT: KeyboardInterrupt
 *   raised at once (here: the process ends by SIGINT, as an uncaught
 *   KeyboardInterrupt ends Python).
 */
#define _GNU_SOURCE
#include "cogen_io.h"
#include "check.h"
#include "fd_count.h"
#include "under_tools.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static void run_main(cg_fn body, void *arg) {
    cg_exc *e = NULL;
    cg_run_opts o = {CG_RUN_NO_SIGINT, NULL, NULL, NULL};
    cg_status st = cg_run(body, arg, &o, NULL, &e);
    if (st != CG_RETURNED) {
        cg_exc_print(e, stderr);
        CHECK(!"the run raised");
    }
}

static int blocked(int sig) {
    sigset_t s;
    pthread_sigmask(SIG_BLOCK, NULL, &s);
    return sigismember(&s, sig);
}

static void *disposition(int sig) {
    struct sigaction sa;
    CHECK_EQ(sigaction(sig, NULL, &sa), 0);
    return (void *)sa.sa_handler;
}

/* ---------------------------------------------------------------------
 * add_signal_handler
 * ------------------------------------------------------------------ */

static int handled;
static int in_loop;

static void on_usr1(void *arg) {
    handled++;
    in_loop = cg_running_loop() != NULL && cg_current_task() == NULL;
    cg_future_set_result(arg, NULL);
}

static void *handler_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    cg_future *f = cg_future_new(loop);
    cg_loop_add_signal_handler(loop, SIGUSR1, on_usr1, f);
    CHECK(blocked(SIGUSR1));
    CHECK(disposition(SIGUSR1) != (void *)SIG_DFL);
    kill(getpid(), SIGUSR1);
    CHECK_EQ(handled, 0); /* not in signal context: a callback of the loop */
    cg_await(f);
    CHECK_EQ(handled, 1);
    CHECK(in_loop);
    cg_future_unref(f);
    /* a second delivery, another handler in its place */
    f = cg_future_new(loop);
    cg_loop_add_signal_handler(loop, SIGUSR1, on_usr1, f);
    raise(SIGUSR1);
    cg_await(f);
    CHECK_EQ(handled, 2);
    cg_future_unref(f);
    CHECK_EQ(cg_loop_remove_signal_handler(loop, SIGUSR1), 1);
    CHECK_EQ(cg_loop_remove_signal_handler(loop, SIGUSR1), 0);
    CHECK(!blocked(SIGUSR1));
    CHECK_PTR(disposition(SIGUSR1), (void *)SIG_DFL);
    return NULL;
}

TEST(signal_handler) {
    int before = count_fds();
    run_main(handler_main, NULL);
    CHECK_EQ(count_fds(), before);
}

static void add_bad(void *sig) { cg_loop_add_signal_handler(NULL, (int)(intptr_t)sig, on_usr1, NULL); }
static void remove_bad(void *sig) { cg_loop_remove_signal_handler(NULL, (int)(intptr_t)sig); }
static void wait_bad(void *set) { cg_wait_signal(set); }

static void *errors_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    static const int invalid[] = {0, 32, 33, 65, -1};
    for (size_t i = 0; i < sizeof invalid / sizeof invalid[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "ValueError('invalid signal number %d')", invalid[i]);
        cg_exc *e = cg_try_catch(add_bad, (void *)(intptr_t)invalid[i], &cg_BaseException);
        CHECK_EXC(e, want);
        cg_exc_unref(e);
        e = cg_try_catch(remove_bad, (void *)(intptr_t)invalid[i], &cg_BaseException);
        CHECK_EXC(e, want);
        cg_exc_unref(e);
    }
    cg_exc *e = cg_try_catch(add_bad, (void *)(intptr_t)SIGKILL, &cg_BaseException);
    CHECK_EXC(e, "RuntimeError('sig 9 cannot be caught')");
    cg_exc_unref(e);
    e = cg_try_catch(add_bad, (void *)(intptr_t)SIGSTOP, &cg_BaseException);
    CHECK_EXC(e, "RuntimeError('sig 19 cannot be caught')");
    cg_exc_unref(e);
    CHECK_EQ(cg_loop_remove_signal_handler(NULL, SIGKILL), 0);
    CHECK_EQ(cg_loop_remove_signal_handler(NULL, SIGUSR2), 0);
    CHECK(!blocked(SIGKILL));
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGKILL);
    e = cg_try_catch(wait_bad, &s, &cg_BaseException);
    CHECK_EXC(e, "RuntimeError('sig 9 cannot be caught')");
    cg_exc_unref(e);
    sigemptyset(&s);
    e = cg_try_catch(wait_bad, &s, &cg_BaseException);
    CHECK_EXC(e, "ValueError('no signal to wait for')");
    cg_exc_unref(e);
    /* SIGRTMIN and up are valid */
    cg_loop_add_signal_handler(NULL, 34, on_usr1, NULL);
    cg_loop_add_signal_handler(NULL, 63, on_usr1, NULL); /* (64 is valgrind's own) */
    CHECK_EQ(cg_loop_remove_signal_handler(NULL, 34), 1);
    CHECK_EQ(cg_loop_remove_signal_handler(NULL, 63), 1);
    return NULL;
}

TEST(signal_errors) { run_main(errors_main, NULL); }

/* The loop closes with a handler left: the mask and disposition are put
 * back; a signal the thread blocked before stays blocked. */
static void *left_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop_add_signal_handler(NULL, SIGUSR1, on_usr1, NULL);
    cg_loop_add_signal_handler(NULL, SIGUSR2, on_usr1, NULL);
    CHECK(blocked(SIGUSR1) && blocked(SIGUSR2));
    return NULL;
}

TEST(signal_restored_at_close) {
    int before = count_fds();
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigaction(SIGUSR1, &ign, NULL);
    run_main(left_main, NULL);
    CHECK(!blocked(SIGUSR1));
    CHECK(blocked(SIGUSR2));
    CHECK_PTR(disposition(SIGUSR1), (void *)SIG_IGN);
    CHECK_PTR(disposition(SIGUSR2), (void *)SIG_DFL);
    CHECK_EQ(count_fds(), before);
}

/* A thread that does not block the signal takes it: the handler there
 * hands it to the loop, which runs the callback all the same. */
static int other_go; /* (atomic) */

static void *other_thread(void *arg) {
    (void)arg;
    while (!__atomic_load_n(&other_go, __ATOMIC_ACQUIRE)) usleep(1000);
    raise(SIGUSR2); /* to this thread, which does not block it */
    return NULL;
}

static void *other_main(cg_gen *g, void *arg) {
    (void)g;
    pthread_t *t = arg;
    cg_future *f = cg_future_new(cg_get_running_loop());
    handled = 0;
    cg_loop_add_signal_handler(NULL, SIGUSR2, on_usr1, f);
    __atomic_store_n(&other_go, 1, __ATOMIC_RELEASE);
    cg_await(f);
    CHECK_EQ(handled, 1);
    CHECK(in_loop);
    pthread_join(*t, NULL);
    cg_future_unref(f);
    return NULL;
}

TEST(signal_other_thread) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, other_thread, NULL), 0); /* made before: SIGUSR2 not blocked there */
    run_main(other_main, &t);
    CHECK(!blocked(SIGUSR2));
}

/* ---------------------------------------------------------------------
 * cg_wait_signal
 * ------------------------------------------------------------------ */

static void *sender(cg_gen *g, void *arg) {
    (void)g;
    cg_sleep(CG_MS(20));
    kill(getpid(), (int)(intptr_t)arg);
    return NULL;
}

static void *waiter(cg_gen *g, void *arg) {
    (void)g;
    return (void *)(intptr_t)cg_wait_signal(arg);
}

static void await_fn(void *f) { cg_await(f); }

static void *wait_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    static sigset_t set; /* (other tasks read it: not on this task's stack, which compact mode swaps out) */
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    /* delivered while the task waits */
    cg_task *s = cg_create_task(sender, (void *)(intptr_t)SIGUSR2, NULL);
    CHECK_EQ(cg_wait_signal(&set), SIGUSR2);
    cg_future_unref(cg_task_future(s));
    /* two tasks wait: both get it, in the order they came */
    cg_task *a = cg_create_task(waiter, &set, "a");
    cg_task *b = cg_create_task(waiter, &set, "b");
    cg_sleep(0);
    kill(getpid(), SIGUSR1);
    CHECK_EQ((intptr_t)cg_await(cg_task_future(a)), SIGUSR1);
    CHECK_EQ((intptr_t)cg_await(cg_task_future(b)), SIGUSR1);
    cg_future_unref(cg_task_future(a));
    cg_future_unref(cg_task_future(b));
    /* arrived between two waits: kept for the next, which returns at once */
    raise(SIGUSR1);
    cg_sleep(0);
    cg_sleep(0);
    CHECK_EQ(cg_wait_signal(&set), SIGUSR1);
    /* a cancelled wait takes nothing: the signal is there for the next */
    cg_task *c = cg_create_task(waiter, &set, "c");
    cg_sleep(0);
    CHECK(cg_task_cancel(c, "enough"));
    cg_exc *e = cg_try_catch(await_fn, cg_task_future(c), &cg_BaseException);
    CHECK_EXC(e, "CancelledError('enough')");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(c));
    raise(SIGUSR2);
    CHECK_EQ(cg_wait_signal(&set), SIGUSR2);
    return NULL;
}

TEST(signal_wait) {
    int before = count_fds();
    run_main(wait_main, NULL);
    CHECK(!blocked(SIGUSR1));
    CHECK_PTR(disposition(SIGUSR1), (void *)SIG_DFL);
    CHECK_EQ(count_fds(), before);
}

/* A handler and a wait for the same signal: both see it. */
static void *both_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_future *f = cg_future_new(cg_get_running_loop());
    handled = 0;
    cg_loop_add_signal_handler(NULL, SIGUSR1, on_usr1, f);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    cg_task *s = cg_create_task(sender, (void *)(intptr_t)SIGUSR1, NULL);
    CHECK_EQ(cg_wait_signal(&set), SIGUSR1);
    cg_await(f);
    CHECK_EQ(handled, 1);
    cg_future_unref(f);
    cg_future_unref(cg_task_future(s));
    /* removing the handler: the wait keeps it caught */
    CHECK_EQ(cg_loop_remove_signal_handler(NULL, SIGUSR1), 1);
    CHECK(blocked(SIGUSR1));
    return NULL;
}

TEST(signal_handler_and_wait) { run_main(both_main, NULL); }

/* ---------------------------------------------------------------------
 * Ctrl-C: a child runs cg_run, the test sends it SIGINT
 * ------------------------------------------------------------------ */

enum { PLAIN, SWALLOW, IGNORE, OFF, THREAD };
static int mode;
static int report_fd;

static void say(const char *s) {
    ssize_t r = write(report_fd, s, strlen(s));
    (void)r;
}

static void *ctrlc_body(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    say("ready\n");
    volatile int swallowed = 0;
    CG_TRY {
        cg_sleep(CG_SEC(10));
    }
    CG_EXCEPT(&cg_CancelledError, e) {
        (void)e;
        say("cancelled\n");
        if (mode == IGNORE) cg_sleep(CG_SEC(10));
        if (mode != SWALLOW) cg_reraise();
        swallowed = 1;
    }
    CG_END;
    return swallowed ? (void *)42 : NULL;
}

static void ctrlc_child(void);

static void *ctrlc_thread(void *arg) {
    (void)arg;
    mode = PLAIN;
    ctrlc_child();
    return NULL;
}

static void ctrlc_child(void) {
    signal(SIGINT, SIG_DFL); /* as a shell's foreground job has it */
    if (mode == THREAD) { /* cg_run outside the main thread: SIGINT left alone */
        pthread_t t;
        pthread_create(&t, NULL, ctrlc_thread, NULL);
        pthread_join(t, NULL);
        _exit(3);
    }
    cg_run_opts o = {mode == OFF ? CG_RUN_NO_SIGINT : 0, NULL, NULL, NULL};
    void *v = NULL;
    cg_exc *e = NULL;
    cg_status st = cg_run(ctrlc_body, NULL, &o, &v, &e);
    char buf[200];
    if (st == CG_RETURNED) {
        snprintf(buf, sizeof buf, "outcome %ld\n", (long)(intptr_t)v);
    } else {
        char r1[80], r2[80];
        cg_exc_repr(e, r1, sizeof r1);
        cg_exc *ctx = cg_exc_context(e);
        if (ctx)
            cg_exc_repr(ctx, r2, sizeof r2);
        else
            snprintf(r2, sizeof r2, "None");
        snprintf(buf, sizeof buf, "raised %s %s\n", r1, r2);
        cg_exc_unref(e);
    }
    say(buf);
    /* SIGINT's default is back */
    struct sigaction sa;
    sigaction(SIGINT, NULL, &sa);
    say(sa.sa_handler == SIG_DFL ? "default\n" : "not default\n");
    _exit(0);
}

/* Runs the child in mode m, sends SIGINT once it is ready (and again after
 * 'cancelled' for IGNORE); its report in out, its wait status returned. */
static int ctrlc_run(int m, char *out, size_t size) {
#if UNDER_TSAN
    /* ThreadSanitizer runs a thread of its own that blocks no signal: the
     * kernel may give it the SIGINT sent to the process (which the loop's
     * thread blocks, to read it from a signalfd), and TSan's handler there
     * defers it to a thread that never runs it. Not checked under TSan. */
    (void)m, (void)out, (void)size;
    printf("skipped under ThreadSanitizer\n");
    exit(77);
#endif
    int p[2];
    CHECK_EQ(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        mode = m;
        report_fd = p[1];
        ctrlc_child();
    }
    close(p[1]);
    size_t n = 0;
    int sent = 0;
    for (;;) {
        ssize_t r = read(p[0], out + n, size - 1 - n);
        if (r <= 0) break;
        n += (size_t)r;
        out[n] = '\0';
        if (sent == 0 && strstr(out, "ready\n")) {
            kill(pid, SIGINT);
            sent = 1;
        }
        if (sent == 1 && m == IGNORE && strstr(out, "cancelled\n")) {
            kill(pid, SIGINT);
            sent = 2;
        }
    }
    out[n] = '\0';
    close(p[0]);
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    return status;
}

TEST(ctrlc_cancels_main) {
    char out[512];
    int st = ctrlc_run(PLAIN, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_STR(out, "ready\ncancelled\nraised KeyboardInterrupt() CancelledError()\ndefault\n");
}

TEST(ctrlc_swallowed) {
    char out[512];
    int st = ctrlc_run(SWALLOW, out, sizeof out);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    CHECK_STR(out, "ready\ncancelled\noutcome 42\ndefault\n");
}

TEST(ctrlc_second_interrupts) {
    char out[512];
    int st = ctrlc_run(IGNORE, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
    CHECK_STR(out, "ready\ncancelled\n");
}

TEST(ctrlc_off) {
    char out[512];
    int st = ctrlc_run(OFF, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
    CHECK_STR(out, "ready\n");
}

/* Not the main thread: asyncio installs nothing, SIGINT keeps its default. */
TEST(ctrlc_not_main_thread) {
    char out[512];
    int st = ctrlc_run(THREAD, out, sizeof out);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
    CHECK_STR(out, "ready\n");
}

/* A SIGINT handler of the loop's in cg_run: at the end SIGINT is back at
 * its default (asyncio's loop.close removes the handler, which puts
 * default_int_handler back). */
static void *sigint_handler_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop_add_signal_handler(NULL, SIGINT, on_usr1, NULL);
    return NULL;
}

TEST(signal_sigint_handler_in_run) {
    signal(SIGINT, SIG_DFL);
    cg_exc *e = NULL;
    CHECK_EQ(cg_run(sigint_handler_main, NULL, NULL, NULL, &e), CG_RETURNED);
    CHECK_PTR(disposition(SIGINT), (void *)SIG_DFL);
    CHECK(!blocked(SIGINT));
}

static const check_case cases[] = {
    CASE(signal_handler), CASE(signal_errors), CASE(signal_restored_at_close), CASE(signal_wait),
    CASE(signal_handler_and_wait), CASE(ctrlc_cancels_main), CASE(ctrlc_swallowed), CASE(ctrlc_second_interrupts),
    CASE(ctrlc_off), CASE(ctrlc_not_main_thread), CASE(signal_sigint_handler_in_run), CASE(signal_other_thread),
};
CHECK_MAIN(cases)
