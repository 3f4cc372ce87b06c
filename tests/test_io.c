/* test_io.c: the loop's epoll backend and the socket operations of
 * cogen_io.h: waits, edges, cancellation without loss, misuse, the
 * OSError family, add_reader/add_writer, and no fd left behind.
 *
 * Messages and exception types are Python's (checked by hand on CPython
 * 3.13: `OSError(errno.ECONNRESET, ...)` is a ConnectionResetError,
 * str(OSError(32, os.strerror(32))) is '[Errno 32] Broken pipe', asyncio's
 * sock_connect to a closed port raises ConnectionRefusedError('[Errno 111]
 * Connect call failed (\'127.0.0.1\', PORT)')).
 */
#define _GNU_SOURCE
#include "cogen_io.h"
#include "check.h"
#include "io_check.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---------------------------------------------------------------------
 * The OSError family
 * ------------------------------------------------------------------ */

TEST(io_oserror) {
    struct { int err; const cg_exc_type *type; } map[] = {
        {ECONNRESET, &cg_ConnectionResetError}, {EPIPE, &cg_BrokenPipeError},
        {ECONNREFUSED, &cg_ConnectionRefusedError}, {ECONNABORTED, &cg_ConnectionAbortedError},
        {EAGAIN, &cg_BlockingIOError}, {ENOENT, &cg_FileNotFoundError}, {EINTR, &cg_InterruptedError},
        {ETIMEDOUT, &cg_TimeoutError}, {EBADF, &cg_OSError}, {EACCES, &cg_PermissionError},
        {ESRCH, &cg_ProcessLookupError}, {ECHILD, &cg_ChildProcessError},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        cg_exc *e = cg_oserror_new(map[i].err);
        CHECK_PTR(cg_exc_type_of(e), map[i].type);
        CHECK_EQ(cg_exc_errno(e), map[i].err);
        cg_exc_unref(e);
    }
    cg_exc *e = cg_oserror_new(EPIPE);
    CHECK_STR(cg_exc_msg(e), "[Errno 32] Broken pipe");
    CHECK(cg_exc_is(e, &cg_ConnectionError));
    CHECK(cg_exc_is(e, &cg_OSError));
    cg_exc_unref(e);
    e = cg_oserror_new_msg(&cg_gaierror, -2, "[Errno -2] Name or service not known");
    CHECK_EQ(cg_exc_errno(e), -2);
    CHECK(cg_exc_is(e, &cg_OSError));
    cg_exc_unref(e);
    e = cg_exc_new(&cg_OSError, "plain");
    CHECK_EQ(cg_exc_errno(e), 0);
    cg_exc_unref(e);
    CHECK_EQ(cg_exc_errno(NULL), 0);
}

/* ---------------------------------------------------------------------
 * A socketpair echo: recv waits, sendall, end of stream
 * ------------------------------------------------------------------ */

static int pair[2];

static void *echo_peer(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    char buf[256];
    size_t n;
    while ((n = cg_sock_recv(pair[1], buf, sizeof buf)) > 0) cg_sock_sendall(pair[1], buf, n);
    cg_io_close(pair[1]);
    return NULL;
}

static void *echo_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *peer = cg_create_task(echo_peer, NULL, "peer");
    char buf[64];
    for (int i = 0; i < 200; i++) {
        char msg[32];
        int len = snprintf(msg, sizeof msg, "message %d", i);
        cg_sock_sendall(pair[0], msg, (size_t)len);
        size_t got = 0;
        while (got < (size_t)len) got += cg_sock_recv(pair[0], buf + got, sizeof buf - got);
        CHECK_EQ(got, len);
        CHECK(memcmp(buf, msg, got) == 0);
    }
    shutdown(pair[0], SHUT_WR);
    CHECK_EQ(cg_sock_recv(pair[0], buf, sizeof buf), 0); /* the peer closed */
    cg_await(cg_task_future(peer));
    cg_future_unref(cg_task_future(peer));
    cg_io_close(pair[0]);
    return NULL;
}

TEST(io_socketpair_echo) {
    int before = count_fds();
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    run_main(echo_main, NULL);
    CHECK_EQ(count_fds(), before);
}

/* A big transfer: sendall waits while the socket is full, nothing lost. */
#define BIG (4 << 20)
static unsigned char *big_in, *big_out;

static void *big_reader(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    size_t got = 0, n;
    while ((n = cg_read(pair[0], big_in + got, BIG - got)) > 0) got += n;
    return (void *)got;
}

static void *big_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *r = cg_create_task(big_reader, NULL, NULL);
    cg_write(pair[1], big_out, BIG);
    cg_io_close(pair[1]);
    size_t got = (size_t)cg_await(cg_task_future(r));
    cg_future_unref(cg_task_future(r));
    CHECK_EQ(got, BIG);
    CHECK(memcmp(big_in, big_out, BIG) == 0);
    cg_io_close(pair[0]);
    return NULL;
}

TEST(io_big_transfer) {
    int before = count_fds();
    big_in = malloc(BIG);
    big_out = malloc(BIG);
    for (size_t i = 0; i < BIG; i++) big_out[i] = (unsigned char)(i * 7 + (i >> 9));
    CHECK_EQ(pipe2(pair, O_CLOEXEC), 0);
    run_main(big_main, NULL);
    free(big_in);
    free(big_out);
    CHECK_EQ(count_fds(), before);
}

/* ---------------------------------------------------------------------
 * Cancellation loses nothing; misuse
 * ------------------------------------------------------------------ */

static void await_fn(void *f) { cg_await(f); }
static void wait_rd(void *fd) { cg_wait_readable((int)(intptr_t)fd); }

static void *blocked_reader(cg_gen *g, void *arg) {
    (void)g;
    char buf[16];
    *(size_t *)arg = cg_sock_recv(pair[0], buf, sizeof buf);
    return NULL;
}

static void *cancel_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    static size_t n = 12345;
    cg_task *t = cg_create_task(blocked_reader, &n, "reader");
    cg_sleep(0);
    cg_sleep(0); /* it waits on the fd now */
    CHECK(cg_task_cancel(t, "stop"));
    cg_exc *e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK_EXC(e, "CancelledError('stop')");
    cg_exc_unref(e);
    CHECK_EQ(n, 12345); /* it never read */
    cg_future_unref(cg_task_future(t));
    /* what arrives now is all there for the next reader */
    cg_sock_sendall(pair[1], "hello", 5);
    char buf[16];
    CHECK_EQ(cg_sock_recv(pair[0], buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    /* a cancel during the step that then waits: CancelledError at once */
    cg_task_cancel(cg_current_task(), NULL);
    e = cg_try_catch(wait_rd, (void *)(intptr_t)pair[0], &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_task_uncancel(cg_current_task());
    return NULL;
}

TEST(io_cancel_loses_nothing) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    run_main(cancel_main, NULL);
    cg_io_close(pair[0]);
    cg_io_close(pair[1]);
}

static void *second_waiter(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_exc *e = cg_try_catch(wait_rd, (void *)(intptr_t)pair[0], &cg_BaseException);
    char want[80];
    snprintf(want, sizeof want, "RuntimeError('another task is already waiting to read fd %d')", pair[0]);
    CHECK_EXC(e, want);
    cg_exc_unref(e);
    return NULL;
}

static void *forget_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    static size_t n;
    cg_task *t = cg_create_task(blocked_reader, &n, "reader");
    cg_sleep(0);
    cg_task *t2 = cg_create_task(second_waiter, NULL, NULL);
    cg_await(cg_task_future(t2));
    cg_future_unref(cg_task_future(t2));
    /* the fd leaves the loop while t waits: OSError(EBADF) in t */
    cg_io_forget(pair[0]);
    cg_exc *e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_OSError));
    CHECK_EQ(cg_exc_errno(e), EBADF);
    CHECK_STR(cg_exc_msg(e), "[Errno 9] Bad file descriptor");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    return NULL;
}

TEST(io_misuse) {
    /* outside a loop */
    cg_exc *e = cg_try_catch(wait_rd, (void *)(intptr_t)0, &cg_BaseException);
    CHECK_EXC(e, "RuntimeError('no running event loop')");
    cg_exc_unref(e);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    run_main(forget_main, NULL);
    cg_io_close(pair[0]);
    cg_io_close(pair[1]);
}

/* ---------------------------------------------------------------------
 * TCP: accept, connect, refused
 * ------------------------------------------------------------------ */

static int listener(struct sockaddr_in *a) {
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(s >= 0);
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK_EQ(bind(s, (struct sockaddr *)a, sizeof *a), 0);
    socklen_t len = sizeof *a;
    CHECK_EQ(getsockname(s, (struct sockaddr *)a, &len), 0);
    CHECK_EQ(listen(s, 16), 0);
    return s;
}

static struct sockaddr_in srv_addr;
static int srv_fd;

static void *tcp_server(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    int c = cg_sock_accept(srv_fd, NULL, NULL);
    CHECK(fcntl(c, F_GETFL) & O_NONBLOCK);
    char buf[8];
    size_t n = cg_sock_recv(c, buf, sizeof buf);
    cg_sock_sendall(c, buf, n);
    cg_io_close(c);
    return NULL;
}

static void connect_refused(void *p) {
    int s = *(int *)p;
    struct sockaddr_in a = srv_addr; /* the listener is closed now */
    cg_sock_connect(s, (struct sockaddr *)&a, sizeof a);
}

static void *tcp_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    srv_fd = listener(&srv_addr);
    cg_task *t = cg_create_task(tcp_server, NULL, NULL);
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cg_sock_connect(s, (struct sockaddr *)&srv_addr, sizeof srv_addr);
    cg_sock_sendall(s, "ping", 4);
    char buf[8];
    CHECK_EQ(cg_sock_recv(s, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    CHECK_EQ(cg_sock_recv(s, buf, sizeof buf), 0);
    cg_io_close(s);
    cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));
    cg_io_close(srv_fd);
    /* nothing listens there now */
    s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    cg_exc *e = cg_try_catch(connect_refused, &s, &cg_BaseException);
    char want[120];
    snprintf(want, sizeof want, "ConnectionRefusedError(\"[Errno 111] Connect call failed ('127.0.0.1', %u)\")",
             ntohs(srv_addr.sin_port));
    CHECK_EXC(e, want);
    CHECK_EQ(cg_exc_errno(e), ECONNREFUSED);
    cg_exc_unref(e);
    cg_io_close(s);
    return NULL;
}

TEST(io_tcp) {
    int before = count_fds();
    run_main(tcp_main, NULL);
    CHECK_EQ(count_fds(), before);
}

/* Writing to a peer that has gone: BrokenPipeError, no SIGPIPE. */
static void send_lots(void *p) {
    static char buf[65536];
    for (int i = 0; i < 64; i++) cg_sock_sendall(*(int *)p, buf, sizeof buf);
}

static void *epipe_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    close(pair[1]);
    cg_exc *e = cg_try_catch(send_lots, &pair[0], &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_BrokenPipeError));
    CHECK_EQ(cg_exc_errno(e), EPIPE);
    cg_exc_unref(e);
    cg_io_close(pair[0]);
    return NULL;
}

TEST(io_broken_pipe) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    run_main(epipe_main, NULL);
}

/* ---------------------------------------------------------------------
 * add_reader / add_writer: level-triggered callbacks
 * ------------------------------------------------------------------ */

static int calls;

static void on_readable(void *arg) {
    (void)arg;
    calls++;
    if (calls == 3) { /* still readable: called in each iteration until drained */
        char buf[8];
        CHECK_EQ(read(pair[0], buf, sizeof buf), 1);
    }
}

static void *reader_cb_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    CHECK_EQ(cg_loop_add_reader(loop, pair[0], on_readable, NULL), 0);
    CHECK_EQ(write(pair[1], "x", 1), 1);
    for (int i = 0; i < 10; i++) cg_sleep(0);
    CHECK_EQ(calls, 3);
    CHECK_EQ(cg_loop_remove_reader(loop, pair[0]), 1);
    CHECK_EQ(cg_loop_remove_reader(loop, pair[0]), 0);
    CHECK_EQ(write(pair[1], "y", 1), 1);
    for (int i = 0; i < 5; i++) cg_sleep(0);
    CHECK_EQ(calls, 3);
    /* back to a task's wait on the same fd (edge-triggered again) */
    char c;
    CHECK_EQ(cg_sock_recv(pair[0], &c, 1), 1);
    CHECK_EQ(c, 'y');
    /* misuse: a bad fd, a regular file */
    CHECK_EQ(cg_loop_add_reader(loop, 999, on_readable, NULL), -1);
    CHECK_EQ(errno, EBADF);
    int f = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    CHECK_EQ(cg_loop_add_reader(loop, f, on_readable, NULL), -1);
    CHECK_EQ(errno, EPERM);
    close(f);
    return NULL;
}

TEST(io_add_reader) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    run_main(reader_cb_main, NULL);
    close(pair[0]);
    close(pair[1]);
}

/* ---------------------------------------------------------------------
 * Waits seen from the caller: level-triggered; in an async generator
 * ------------------------------------------------------------------ */

static void *level_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    CHECK_EQ(write(pair[1], "abcdef", 6), 6);
    cg_wait_readable(pair[0]);
    char buf[4];
    CHECK_EQ(read(pair[0], buf, 2), 2); /* a partial read behind the loop's back */
    cg_wait_readable(pair[0]);           /* returns at once: 4 bytes are there */
    CHECK_EQ(read(pair[0], buf, 4), 4);
    CHECK(memcmp(buf, "cdef", 4) == 0);
    cg_wait_writable(pair[0]);
    return NULL;
}

TEST(io_wait_level) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    run_main(level_main, NULL);
    cg_io_close(pair[0]);
    cg_io_close(pair[1]);
}

/* An async generator's body waits on an fd for the task that iterates
 * it (through a future, as its awaits go through its driver), and a
 * cancellation reaches it there. */
static void *agen_lines(cg_gen *g, void *arg) {
    (void)arg;
    char c;
    while (cg_sock_recv(pair[0], &c, 1) == 1) cg_yield(g, (void *)(intptr_t)c);
    return NULL;
}

static void *agen_io_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_agen *ag = cg_agen_new(agen_lines, NULL, NULL);
    CHECK_EQ(write(pair[1], "xy", 2), 2);
    void *v;
    CHECK(cg_anext(ag, &v));
    CHECK_EQ((intptr_t)v, 'x');
    CHECK(cg_anext(ag, &v));
    CHECK_EQ((intptr_t)v, 'y');
    shutdown(pair[1], SHUT_WR);
    CHECK(!cg_anext(ag, &v)); /* end of stream: the body returns */
    cg_agen_free(ag);
    return NULL;
}

TEST(io_agen) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    run_main(agen_io_main, NULL);
    cg_io_close(pair[0]);
    cg_io_close(pair[1]);
}

/* ---------------------------------------------------------------------
 * The loop blocks in epoll: timers on the real clock, threadsafe calls
 * ------------------------------------------------------------------ */

static cg_ns mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (cg_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *sleeper_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_ns t0 = mono();
    cg_sleep(CG_MS(30));
    CHECK_INT(mono() - t0, >=, CG_MS(29));
    /* with an fd registered too */
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    cg_wait_writable(pair[0]);
    t0 = mono();
    cg_sleep(CG_MS(20));
    CHECK_INT(mono() - t0, >=, CG_MS(19));
    cg_io_close(pair[0]);
    cg_io_close(pair[1]);
    return NULL;
}

TEST(io_real_clock_sleep) { run_main(sleeper_main, NULL); }

static cg_loop *ts_loop;
static cg_future *ts_fut;

static void ts_set(void *arg) { cg_future_set_result(ts_fut, arg); }

static void *ts_thread(void *arg) {
    (void)arg;
    struct timespec d = {0, 30 * 1000000};
    nanosleep(&d, NULL); /* the loop is blocked in epoll_wait by now, with no timer */
    CHECK_EQ(cg_loop_call_soon_threadsafe(ts_loop, ts_set, (void *)42), 0);
    return NULL;
}

static void *ts_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    ts_loop = cg_get_running_loop();
    ts_fut = cg_future_new(ts_loop);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, ts_thread, NULL), 0);
    CHECK_EQ((intptr_t)cg_await(ts_fut), 42);
    pthread_join(th, NULL);
    cg_future_unref(ts_fut);
    return NULL;
}

TEST(io_threadsafe_wakes) { run_main(ts_main, NULL); }

static void *late_writer(void *arg) {
    (void)arg;
    struct timespec d = {0, 30 * 1000000};
    nanosleep(&d, NULL);
    CHECK_EQ(write(pair[1], "w", 1), 1);
    return NULL;
}

/* A virtual clock with I/O: it waits for I/O (for real) while no timer is
 * pending, and jumps to the next timer when nothing is ready for I/O. */
static void *virt_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
    cg_ns t0 = cg_loop_time(loop);
    cg_sleep(CG_SEC(3600)); /* no fd waits: a jump */
    CHECK_EQ(cg_loop_time(loop) - t0, CG_SEC(3600));
    /* nothing ready, no timer, but a task waits on an fd: the loop waits
     * for it (a thread writes in 30 ms of real time) */
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, late_writer, NULL), 0);
    char c;
    CHECK_EQ(cg_sock_recv(pair[0], &c, 1), 1);
    CHECK_EQ(c, 'w');
    CHECK_EQ(cg_loop_time(loop) - t0, CG_SEC(3600)); /* no time passed */
    pthread_join(th, NULL);
    CHECK_EQ(write(pair[1], "z", 1), 1);
    CHECK_EQ(cg_sock_recv(pair[0], &c, 1), 1); /* ready at once */
    cg_io_close(pair[0]);
    cg_io_close(pair[1]);
    return NULL;
}

TEST(io_virtual_clock) {
    cg_run_opts o = {.loop_flags = CG_LOOP_VIRTUAL_CLOCK};
    cg_exc *e = NULL;
    CHECK_EQ(cg_run(virt_main, NULL, &o, NULL, &e), CG_RETURNED);
}

static const check_case cases[] = {
    CASE(io_wait_level), CASE(io_agen), CASE(io_real_clock_sleep), CASE(io_threadsafe_wakes), CASE(io_virtual_clock),
    CASE(io_oserror),     CASE(io_socketpair_echo), CASE(io_big_transfer), CASE(io_cancel_loses_nothing),
    CASE(io_misuse),      CASE(io_tcp),             CASE(io_broken_pipe),  CASE(io_add_reader),
};

CHECK_MAIN(cases)
