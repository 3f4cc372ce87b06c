/* test_proc.c: subprocesses (create_subprocess_exec/shell, wait,
 * communicate, send_signal/terminate/kill, returncode): no zombie left
 * (waitpid(-1, WNOHANG) says ECHILD at the end of each case), no fd
 * leaked, cancellation of wait and communicate.
 *
 * Expected values are CPython 3.13.0's (asyncio, checked there):
 * create_subprocess_exec('true') waits to 0, ('sleep', '5') killed waits
 * to -9, create_subprocess_shell('exit 3') to 3, ('kill -TERM $$') to
 * -15; send_signal(15) and kill() once it has ended raise
 * ProcessLookupError(); create_subprocess_exec('/nonexistent-prog') raises
 * FileNotFoundError, str '[Errno 2] No such file or directory:
 * \'/nonexistent-prog\'', ('/etc/passwd') PermissionError '[Errno 13]
 * Permission denied: \'/etc/passwd\''; communicate() ignores
 * BrokenPipeError feeding stdin; writing to a pipe whose reader is gone
 * raises BrokenPipeError('[Errno 32] Broken pipe').
 */
#define _GNU_SOURCE
#include "cogen_io.h"
#include "check.h"
#include "fd_count.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern int cg__proc_no_pidfd;

/* No child left, zombie or not: waits (5 s at most) until there is none,
 * without reaping any (WNOWAIT), so that a zombie about to be reaped by
 * its watcher does not count but one nobody reaps does. */
static void no_children(void) {
    for (int i = 0; i < 500; i++) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) < 0 && errno == ECHILD) return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    CHECK(!"a child is still there");
}

static unsigned loop_flags;

static void run_main(cg_fn body, void *arg) {
    int before = count_fds();
    cg_exc *e = NULL;
    cg_run_opts o = {CG_RUN_NO_SIGINT | loop_flags, NULL, NULL, NULL};
    cg_status st = cg_run(body, arg, &o, NULL, &e);
    if (st != CG_RETURNED) {
        cg_exc_print(e, stderr);
        CHECK(!"the run raised");
    }
    no_children();
    CHECK_EQ(count_fds(), before);
}

static char *argv_true[] = {"true", NULL};
static char *argv_sleep[] = {"sleep", "10", NULL};
static char *argv_cat[] = {"cat", NULL};

/* ---------------------------------------------------------------------
 * exec, shell, wait, returncode, signals
 * ------------------------------------------------------------------ */

static void *basic_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_process *p = cg_create_subprocess_exec("true", argv_true, NULL);
    int rc = 12345;
    CHECK(cg_process_pid(p) > 0);
    CHECK_EQ(cg_process_returncode(p, &rc), 0); /* None */
    CHECK_EQ(rc, 12345);
    CHECK_EQ(cg_process_wait(p), 0);
    CHECK_EQ(cg_process_returncode(p, &rc), 1);
    CHECK_EQ(rc, 0);
    CHECK_EQ(cg_process_wait(p), 0); /* again: at once */
    cg_process_free(p);

    p = cg_create_subprocess_shell("exit 3", NULL);
    CHECK_EQ(cg_process_wait(p), 3);
    cg_process_free(p);
    p = cg_create_subprocess_shell("kill -TERM $$", NULL);
    CHECK_EQ(cg_process_wait(p), -15);
    cg_process_free(p);
    return NULL;
}

TEST(proc_exec_wait) { run_main(basic_main, NULL); }

static void send_term(void *p) { cg_process_send_signal(p, SIGTERM); }
static void do_kill(void *p) { cg_process_kill(p); }
static void do_terminate(void *p) { cg_process_terminate(p); }

static void *signals_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_process *p = cg_create_subprocess_exec("sleep", argv_sleep, NULL);
    cg_process_kill(p);
    CHECK_EQ(cg_process_wait(p), -9);
    cg_exc *e = cg_try_catch(send_term, p, &cg_BaseException);
    CHECK_EXC(e, "ProcessLookupError()");
    cg_exc_unref(e);
    e = cg_try_catch(do_kill, p, &cg_BaseException);
    CHECK_EXC(e, "ProcessLookupError()");
    cg_exc_unref(e);
    e = cg_try_catch(do_terminate, p, &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_ProcessLookupError));
    cg_exc_unref(e);
    cg_process_free(p);

    p = cg_create_subprocess_exec("sleep", argv_sleep, NULL);
    cg_process_terminate(p);
    CHECK_EQ(cg_process_wait(p), -15);
    cg_process_free(p);
    p = cg_create_subprocess_exec("sleep", argv_sleep, NULL);
    cg_process_send_signal(p, SIGUSR1);
    CHECK_EQ(cg_process_wait(p), -SIGUSR1);
    cg_process_free(p);
    return NULL;
}

TEST(proc_signals) { run_main(signals_main, NULL); }

static char *argv_missing[] = {"/nonexistent-prog", NULL};
static char *argv_passwd[] = {"/etc/passwd", NULL};
static void spawn_fn(void *argv) { cg_create_subprocess_exec(((char **)argv)[0], argv, NULL); }

static void *errors_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_exc *e = cg_try_catch(spawn_fn, argv_missing, &cg_BaseException);
    CHECK(cg_exc_type_of(e) == &cg_FileNotFoundError);
    CHECK_STR(cg_exc_msg(e), "[Errno 2] No such file or directory: '/nonexistent-prog'");
    CHECK_EQ(cg_exc_errno(e), ENOENT);
    cg_exc_unref(e);
    e = cg_try_catch(spawn_fn, argv_passwd, &cg_BaseException);
    CHECK(cg_exc_type_of(e) == &cg_PermissionError);
    CHECK_STR(cg_exc_msg(e), "[Errno 13] Permission denied: '/etc/passwd'");
    cg_exc_unref(e);
    return NULL;
}

TEST(proc_spawn_errors) { run_main(errors_main, NULL); }

/* ---------------------------------------------------------------------
 * Pipes and communicate
 * ------------------------------------------------------------------ */

#define BIG (3 << 20)

static void *big_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    char *in = malloc(BIG);
    for (size_t i = 0; i < BIG; i++) in[i] = (char)('a' + (i * 7 + (i >> 11)) % 26);
    cg_process_opts o = {.stdin_mode = CG_PROC_PIPE, .stdout_mode = CG_PROC_PIPE};
    /* cat writes as it reads: a deadlock if stdin were fed before stdout is read */
    cg_process *p = cg_create_subprocess_exec("cat", argv_cat, &o);
    char *out = NULL, *err = (char *)1;
    size_t n = 0;
    CHECK_EQ(cg_process_communicate(p, in, BIG, &out, &n, &err, NULL), 0);
    CHECK_EQ(n, BIG);
    CHECK(memcmp(in, out, BIG) == 0);
    CHECK_EQ(out[n], '\0');
    CHECK(err == NULL); /* stderr was not a pipe */
    free(out);
    cg_process_free(p);
    free(in);

    /* stdout and stderr apart, and stderr into stdout */
    cg_process_opts o2 = {.stdout_mode = CG_PROC_PIPE, .stderr_mode = CG_PROC_PIPE};
    p = cg_create_subprocess_shell("echo out; echo err >&2; exit 4", &o2);
    CHECK_EQ(cg_process_communicate(p, NULL, 0, &out, NULL, &err, NULL), 4);
    CHECK_STR(out, "out\n");
    CHECK_STR(err, "err\n");
    free(out);
    free(err);
    cg_process_free(p);
    o2.stderr_mode = CG_PROC_STDOUT;
    p = cg_create_subprocess_shell("echo a; echo b >&2; echo c", &o2);
    CHECK_EQ(cg_process_communicate(p, NULL, 0, &out, NULL, &err, NULL), 0);
    CHECK_STR(out, "a\nb\nc\n");
    CHECK(err == NULL);
    free(out);
    cg_process_free(p);
    /* DEVNULL: cat reads nothing */
    cg_process_opts o3 = {.stdin_mode = CG_PROC_DEVNULL, .stdout_mode = CG_PROC_PIPE};
    p = cg_create_subprocess_exec("cat", argv_cat, &o3);
    CHECK_EQ(cg_process_communicate(p, NULL, 0, &out, &n, NULL, NULL), 0);
    CHECK_EQ(n, 0);
    CHECK_STR(out, "");
    free(out);
    cg_process_free(p);
    /* a child that never reads its input: BrokenPipeError is ignored */
    cg_process_opts o4 = {.stdin_mode = CG_PROC_PIPE, .stdout_mode = CG_PROC_PIPE};
    p = cg_create_subprocess_shell("exec 0<&-; echo done", &o4);
    static char lots[1 << 20];
    CHECK_EQ(cg_process_communicate(p, lots, sizeof lots, &out, NULL, NULL, NULL), 0);
    CHECK_STR(out, "done\n");
    free(out);
    cg_process_free(p);
    return NULL;
}

TEST(proc_communicate) { run_main(big_main, NULL); }

static void write_fn(void *p) { cg_process_write(p, "x", 1); }

static void *pipes_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    /* stdin and stdout by hand: a line in, the same line out */
    cg_process_opts o = {.stdin_mode = CG_PROC_PIPE, .stdout_mode = CG_PROC_PIPE};
    cg_process *p = cg_create_subprocess_exec("cat", argv_cat, &o);
    CHECK(cg_process_stdin(p) >= 0 && cg_process_stdout(p) >= 0);
    CHECK_EQ(cg_process_stderr(p), -1);
    cg_process_write(p, "hello\n", 6);
    char buf[16];
    size_t got = 0;
    while (got < 6) got += cg_read(cg_process_stdout(p), buf + got, sizeof buf - got);
    CHECK(memcmp(buf, "hello\n", 6) == 0);
    cg_process_close_stdin(p);
    CHECK_EQ(cg_process_stdin(p), -1);
    CHECK_EQ(cg_read(cg_process_stdout(p), buf, sizeof buf), 0);
    CHECK_EQ(cg_process_wait(p), 0);
    cg_process_free(p);
    /* a write after the child is gone: BrokenPipeError, not SIGPIPE */
    cg_process_opts o2 = {.stdin_mode = CG_PROC_PIPE};
    p = cg_create_subprocess_exec("true", argv_true, &o2);
    CHECK_EQ(cg_process_wait(p), 0);
    cg_exc *e = cg_try_catch(write_fn, p, &cg_BaseException);
    CHECK_EXC(e, "BrokenPipeError('[Errno 32] Broken pipe')");
    cg_exc_unref(e);
    cg_process_free(p);
    return NULL;
}

TEST(proc_pipes) { run_main(pipes_main, NULL); }

/* The pipes as streams (proc.stdin, proc.stdout): readline, write +
 * drain, close for EOF; communicate over streams already made. */
static void write_drain(void *w) {
    static char chunk[1 << 16];
    for (int i = 0; i < 64; i++) {
        cg_stream_write(w, chunk, sizeof chunk);
        cg_stream_drain(w);
    }
}

static void *streams_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_process_opts o = {.stdin_mode = CG_PROC_PIPE, .stdout_mode = CG_PROC_PIPE, .stderr_mode = CG_PROC_PIPE};
    cg_process *p = cg_create_subprocess_exec("cat", argv_cat, &o);
    cg_stream_writer *w = cg_process_stdin_stream(p);
    cg_stream_reader *r = cg_process_stdout_stream(p);
    CHECK(w && r);
    CHECK_PTR(cg_process_stdin_stream(p), w); /* the same one */
    CHECK_EQ(cg_process_stdin(p), -1);      /* the stream's now */
    cg_stream_write(w, "one\ntwo\n", 8);
    cg_stream_drain(w);
    size_t n;
    const char *line = cg_stream_readline(r, &n);
    CHECK_EQ(n, 4);
    CHECK(memcmp(line, "one\n", 4) == 0);
    line = cg_stream_readline(r, &n);
    CHECK(n == 4 && memcmp(line, "two\n", 4) == 0);
    cg_stream_close(w);
    cg_stream_readline(r, &n);
    CHECK_EQ(n, 0); /* EOF: cat saw ours */
    CHECK(cg_stream_at_eof(r));
    CHECK_EQ(cg_process_wait(p), 0);
    cg_process_free(p); /* frees the streams */

    /* communicate with stdout's stream made already */
    p = cg_create_subprocess_shell("cat; echo e >&2", &o);
    cg_process_stdout_stream(p);
    char *out, *err;
    CHECK_EQ(cg_process_communicate(p, "in", 2, &out, NULL, &err, NULL), 0);
    CHECK_STR(out, "in");
    CHECK_STR(err, "e\n");
    free(out);
    free(err);
    cg_process_free(p);

    /* the child gone: writing to its stdin stream never kills us by SIGPIPE */
    cg_process_opts o2 = {.stdin_mode = CG_PROC_PIPE};
    p = cg_create_subprocess_exec("true", argv_true, &o2);
    CHECK_EQ(cg_process_wait(p), 0);
    cg_exc *e = cg_try_catch(write_drain, cg_process_stdin_stream(p), &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_BrokenPipeError));
    cg_exc_unref(e);
    cg_process_free(p);
    return NULL;
}

TEST(proc_streams) { run_main(streams_main, NULL); }

/* ---------------------------------------------------------------------
 * Cancellation, and the child's end whoever waits
 * ------------------------------------------------------------------ */

static void *wait_task(cg_gen *g, void *arg) {
    (void)g;
    return (void *)(intptr_t)cg_process_wait(arg);
}

static void *comm_task(cg_gen *g, void *arg) {
    (void)g;
    char *out = NULL;
    cg_process_communicate(arg, "input", 5, &out, NULL, NULL, NULL);
    free(out);
    return NULL;
}

static void await_fn(void *f) { cg_await(f); }

static void *cancel_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_process *p = cg_create_subprocess_exec("sleep", argv_sleep, NULL);
    cg_task *t = cg_create_task(wait_task, p, "waiter");
    cg_task *t2 = cg_create_task(wait_task, p, "waiter2");
    cg_sleep(CG_MS(10));
    CHECK(cg_task_cancel(t, "stop"));
    cg_exc *e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK_EXC(e, "CancelledError('stop')");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    CHECK_EQ(cg_process_returncode(p, NULL), 0); /* it runs on */
    cg_process_kill(p);
    CHECK_EQ((intptr_t)cg_await(cg_task_future(t2)), -9); /* the other waiter is woken */
    cg_future_unref(cg_task_future(t2));
    cg_process_free(p);

    /* communicate cancelled: its pipes close, the child runs on */
    cg_process_opts o = {.stdin_mode = CG_PROC_PIPE, .stdout_mode = CG_PROC_PIPE, .stderr_mode = CG_PROC_PIPE};
    p = cg_create_subprocess_shell("echo hi; exec sleep 10", &o);
    t = cg_create_task(comm_task, p, "comm");
    cg_sleep(CG_MS(50));
    CHECK(cg_task_cancel(t, NULL));
    e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK_EXC(e, "CancelledError()");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    CHECK_EQ(cg_process_returncode(p, NULL), 0);
    CHECK_EQ(cg_process_stdout(p), -1);
    cg_process_kill(p);
    CHECK_EQ(cg_process_wait(p), -9);
    cg_process_free(p);
    return NULL;
}

TEST(proc_cancel) { run_main(cancel_main, NULL); }

/* Nobody waits: reaped all the same. Freed running: killed and reaped.
 * Left running at loop close: reaped by a detached thread. */
static cg_process *left;

static void *unwaited_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_process *p = cg_create_subprocess_exec("true", argv_true, NULL);
    cg_sleep(CG_MS(300));
    int rc = -1;
    CHECK_EQ(cg_process_returncode(p, &rc), 1); /* no wait, and reaped */
    CHECK_EQ(rc, 0);
    cg_process_free(p);
    cg_process_opts o = {.stdout_mode = CG_PROC_PIPE};
    p = cg_create_subprocess_exec("sleep", argv_sleep, &o);
    pid_t pid = cg_process_pid(p);
    cg_process_free(p); /* killed */
    for (int i = 0; i < 200 && kill(pid, 0) == 0; i++) cg_sleep(CG_MS(10));
    CHECK(kill(pid, 0) < 0 && errno == ESRCH); /* gone, not a zombie */
    static char *argv_short[] = {"sleep", "0.2", NULL};
    left = cg_create_subprocess_exec("sleep", argv_short, NULL); /* left to the loop's close */
    return NULL;
}

TEST(proc_no_zombies) {
    run_main(unwaited_main, NULL); /* (no_children waits for the reaper) */
    CHECK_EQ(cg_process_returncode(left, NULL), 0);
    cg_process_free(left); /* outside any loop */
}

/* The same without pidfd: a thread waits for each child. */
TEST(proc_thread_watcher) {
    cg__proc_no_pidfd = 1;
    run_main(basic_main, NULL);
    run_main(signals_main, NULL);
    run_main(cancel_main, NULL);
    run_main(unwaited_main, NULL);
    cg_process_free(left);
    no_children();
    cg__proc_no_pidfd = 0;
}

/* On a virtual clock: the pidfd reader, or the thread's hold on the loop,
 * keeps the loop waiting for the child instead of calling it a deadlock. */
TEST(proc_virtual_clock) {
    loop_flags = CG_LOOP_VIRTUAL_CLOCK;
    run_main(basic_main, NULL);
    run_main(signals_main, NULL);
    cg__proc_no_pidfd = 1;
    run_main(basic_main, NULL);
    run_main(signals_main, NULL);
    cg__proc_no_pidfd = 0;
    loop_flags = 0;
}

static const check_case cases[] = {
    CASE(proc_exec_wait), CASE(proc_signals), CASE(proc_spawn_errors), CASE(proc_communicate),
    CASE(proc_pipes),     CASE(proc_cancel),  CASE(proc_no_zombies),   CASE(proc_thread_watcher),
    CASE(proc_virtual_clock), CASE(proc_streams),
};
CHECK_MAIN(cases)
