/* test_io_reliability.c: the I/O backend and the socket operations under
 * injected faults, and with many connections at once (issue 10,
 * "Reliability").
 *
 * The program under test is an echo over TCP loopback built on cg_sock_*:
 * an acceptor task, a task per connection that echoes what it receives,
 * and client tasks that each send a pseudo-random payload (and receive the
 * echo at the same time, so that both directions fill up and wait), checking
 * every byte as it comes back; and a pipe carrying a payload with cg_write /
 * cg_read. tests/fault_shim.h makes the system calls fail (the binary is
 * linked with --wrap):
 *   - faults a correct program must not notice (EINTR, storms of EAGAIN,
 *     spurious readiness): every byte arrives exactly once, every
 *     connection completes, no exception;
 *   - faults that end a connection (ECONNRESET, ENOBUFS/ENOMEM on send,
 *     ENOMEM from epoll_ctl): the operation raises the OSError Python
 *     raises for the errno ('[Errno 104] Connection reset by peer' is a
 *     ConnectionResetError), that connection ends, what arrived before is
 *     an exact prefix of what was sent, and the others complete;
 * and in every case nothing hangs (a watchdog timeout around the run), no
 * fd is left open (/proc/self/fd counted before and after), no memory is
 * leaked (the sanitizers and valgrind of make check).
 *
 * io_many_connections: 10,000 concurrent connections (scaled by
 * COGEN_TEST_SCALE; fewer, with a message, when RLIMIT_NOFILE's hard limit
 * is too low) on the same echo server, the clients in a child process, each
 * checked byte for byte.
 */
#define _GNU_SOURCE
#include "cogen_io.h"
#include "check.h"
#include "fault_shim.h"
#include "fd_count.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>

static double test_scale(void) {
    const char *s = getenv("COGEN_TEST_SCALE");
    double f = s ? strtod(s, NULL) : 1.0;
    return f > 0 ? f : 1.0;
}

static long scaled(long n, long min) {
    long r = (long)((double)n * test_scale());
    return r < min ? min : r;
}

/* The payload of connection i: byte j, the same on both sides. */
static unsigned char pay(unsigned i, size_t j) {
    uint32_t x = (uint32_t)(i * 2654435761u) ^ (uint32_t)(j * 40503u) ^ (uint32_t)(j >> 11);
    return (unsigned char)(x ^ (x >> 13) ^ (x >> 7));
}

/* ---------------------------------------------------------------------
 * The echo program
 * ------------------------------------------------------------------ */

typedef struct client {
    unsigned id;
    size_t len;       /* payload size */
    size_t sent, got; /* sendall calls completed; bytes echoed and checked */
    int fd;
    cg_stream_reader *r; /* with W.streams */
    cg_stream_writer *w;
    int err_send, err_recv, err_connect; /* errno of an OSError raised there */
    int done;
} client;

typedef struct world {
    int srv;
    struct sockaddr_in addr;
    int nclients;
    client *cl;
    int accepted;
    int handlers;              /* running */
    int server_errs;           /* handlers that ended with an OSError */
    int accept_errs;
    int run_clients;           /* this process runs the clients */
    int streams;               /* the echo on streams (start_server, open_connection) */
    cg_server *server;
    int ready_fd;              /* told when the stream server listens (-1: none) */
    int serve_streams;         /* start the streams' server though srv is closed */
    int barrier_wait;          /* clients wait until all are connected */
    int connected;
    cg_event *all_connected;
    cg_semaphore *connecting;  /* at most so many connects in flight */
    size_t chunk;              /* sendall's size */
    size_t pipe_len;           /* the pipe transfer (0: none) */
    size_t pipe_got;
    int pipe[2];
    cg_ns deadline;            /* the watchdog */
} world;

static world W;

/* The errnos an operation may raise here, and the exception class Python
 * gives each; anything else fails the test. */
static void check_oserror(cg_exc *e, const char *where) {
    if (!cg_exc_is(e, &cg_OSError)) {
        fprintf(stderr, "%s raised %s\n", where, check_exc(e));
        CHECK(!"an exception other than OSError");
    }
    int err = cg_exc_errno(e);
    char want[120];
    snprintf(want, sizeof want, "[Errno %d] %s", err, strerror(err));
    switch (err) {
    case ECONNRESET: CHECK_PTR(cg_exc_type_of(e), &cg_ConnectionResetError); break;
    case EPIPE: CHECK_PTR(cg_exc_type_of(e), &cg_BrokenPipeError); break;
    case ENOBUFS:
    case ENOMEM: CHECK_PTR(cg_exc_type_of(e), &cg_OSError); break;
    default:
        fprintf(stderr, "%s raised %s (errno %d)\n", where, check_exc(e), err);
        CHECK(!"an unexpected errno");
    }
    CHECK_STR(cg_exc_msg(e), want);
}

static void handle_echo(void *arg) {
    int fd = (int)(intptr_t)arg;
    char buf[8192];
    size_t n;
    while ((n = cg_sock_recv(fd, buf, sizeof buf)) > 0) cg_sock_sendall(fd, buf, n);
}

static void *handler(cg_gen *g, void *arg) {
    (void)g;
    int fd = (int)(intptr_t)arg;
    cg_exc *e = cg_try_catch(handle_echo, arg, &cg_OSError);
    if (e) {
        check_oserror(e, "the server's handler");
        W.server_errs++;
        cg_exc_unref(e);
    }
    cg_io_close(fd);
    W.handlers--;
    return NULL;
}

static void accept_one(void *arg) {
    int *out = arg;
    *out = cg_sock_accept(W.srv, NULL, NULL);
}

static void *acceptor(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    static const cg_task_opts small = {.stack_size = 64 << 10};
    while (W.accepted < W.nclients) {
        int c = -1;
        cg_exc *e = cg_try_catch(accept_one, &c, &cg_OSError);
        if (e) { /* asyncio's server logs these and goes on accepting */
            check_oserror(e, "accept");
            W.accept_errs++;
            cg_exc_unref(e);
            continue;
        }
        W.accepted++;
        W.handlers++;
        cg_task *t = cg_task_new(cg_get_running_loop(), handler, (void *)(intptr_t)c, &small);
        CHECK(t != NULL);
        cg_future_unref(cg_task_future(t));
    }
    return NULL;
}

static void send_payload(void *arg) {
    client *c = arg;
    unsigned char buf[16384];
    size_t chunk = W.chunk < sizeof buf ? W.chunk : sizeof buf;
    for (size_t off = 0; off < c->len;) {
        size_t n = c->len - off < chunk ? c->len - off : chunk;
        for (size_t j = 0; j < n; j++) buf[j] = pay(c->id, off + j);
        cg_sock_sendall(c->fd, buf, n);
        off += n;
        c->sent = off;
    }
}

/* The same echo on streams: read, write and drain on the server; a
 * client's sender writes and drains, then write_eof. */
static void stream_echo(void *arg) {
    cg_stream_reader *r = ((void **)arg)[0];
    cg_stream_writer *w = ((void **)arg)[1];
    char buf[8192];
    size_t n;
    while ((n = cg_stream_read(r, buf, sizeof buf)) > 0) {
        cg_stream_write(w, buf, n);
        cg_stream_drain(w);
    }
}

static void stream_handler(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    W.accepted++;
    W.handlers++;
    void *rw[2] = {r, w};
    cg_exc *e = cg_try_catch(stream_echo, rw, &cg_OSError);
    if (e) {
        check_oserror(e, "the stream server's handler");
        W.server_errs++;
        cg_exc_unref(e);
    }
    W.handlers--;
}

static void stream_send_payload(void *arg) {
    client *c = arg;
    unsigned char buf[16384];
    size_t chunk = W.chunk < sizeof buf ? W.chunk : sizeof buf;
    for (size_t off = 0; off < c->len;) {
        size_t n = c->len - off < chunk ? c->len - off : chunk;
        for (size_t j = 0; j < n; j++) buf[j] = pay(c->id, off + j);
        cg_stream_write(c->w, buf, n);
        cg_stream_drain(c->w);
        off += n;
        c->sent = off;
    }
    cg_stream_write_eof(c->w);
}

static void stream_recv_echo(void *arg) {
    client *c = arg;
    unsigned char buf[8192];
    size_t n;
    while ((n = cg_stream_read(c->r, buf, sizeof buf)) > 0) {
        for (size_t j = 0; j < n; j++)
            if (buf[j] != pay(c->id, c->got + j)) CHECK(!"a byte came back changed, lost or twice (streams)");
        c->got += n;
        CHECK(c->got <= c->len);
    }
}

static void stream_open(void *arg) {
    client *c = arg;
    static const cg_stream_opts opts = {.high_water = 16384};
    cg_open_connection("127.0.0.1", ntohs(W.addr.sin_port), &opts, &c->r, &c->w);
}

static void stream_wait_closed(void *arg) { cg_stream_wait_closed(arg); }

static void await_fn(void *f) { cg_await(f); }

static void *sender(cg_gen *g, void *arg) {
    (void)g;
    client *c = arg;
    cg_exc *e = cg_try_catch(W.streams ? stream_send_payload : send_payload, c, &cg_OSError);
    if (e) {
        check_oserror(e, "the client's sendall");
        c->err_send = cg_exc_errno(e);
        cg_exc_unref(e);
    }
    if (!W.streams) shutdown(c->fd, SHUT_WR); /* the server sees the end (ENOTCONN after a reset: fine) */
    else if (e) cg_stream_close(c->w);
    return NULL;
}

static void recv_echo(void *arg) {
    client *c = arg;
    unsigned char buf[8192];
    size_t n;
    while ((n = cg_sock_recv(c->fd, buf, sizeof buf)) > 0) {
        for (size_t j = 0; j < n; j++) {
            if (buf[j] != pay(c->id, c->got + j)) {
                fprintf(stderr, "connection %u: byte %zu is %u, sent %u\n", c->id, c->got + j, buf[j],
                        pay(c->id, c->got + j));
                CHECK(!"a byte came back changed, lost or twice");
            }
        }
        c->got += n;
        CHECK(c->got <= c->len);
    }
}

static void connect_fd(void *arg) {
    client *c = arg;
    cg_sock_connect(c->fd, (struct sockaddr *)&W.addr, sizeof W.addr);
}

static void *client_task(cg_gen *g, void *arg) {
    (void)g;
    client *c = arg;
    if (!W.streams) {
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        CHECK(c->fd >= 0);
    }
    cg_semaphore_acquire(W.connecting);
    cg_exc *e = cg_try_catch(W.streams ? stream_open : connect_fd, c, &cg_OSError);
    cg_semaphore_release(W.connecting);
    if (e) { /* ENOMEM from epoll_ctl */
        check_oserror(e, "connect");
        c->err_connect = cg_exc_errno(e);
        cg_exc_unref(e);
        W.connected++;
        if (W.connected == W.nclients) cg_event_set(W.all_connected);
        if (!W.streams) cg_io_close(c->fd);
        c->done = 1;
        return NULL;
    }
    W.connected++;
    if (W.connected == W.nclients) cg_event_set(W.all_connected);
    if (W.barrier_wait) cg_event_wait(W.all_connected); /* every connection open at once */
    cg_task *s = NULL;
    if (c->len > 4096) { /* both directions at once: more than the buffers hold */
        s = cg_create_task(sender, c, NULL);
    } else {
        sender(NULL, c);
    }
    e = cg_try_catch(W.streams ? stream_recv_echo : recv_echo, c, &cg_OSError);
    if (e) {
        check_oserror(e, "the client's recv");
        c->err_recv = cg_exc_errno(e);
        cg_exc_unref(e);
        if (s) cg_task_cancel(s, NULL);
    }
    if (s) {
        cg_exc *se = cg_try_catch(await_fn, cg_task_future(s), &cg_CancelledError);
        cg_exc_unref(se);
        cg_future_unref(cg_task_future(s));
    }
    if (W.streams) {
        cg_stream_close(c->w);
        cg_exc *ce = cg_try_catch(stream_wait_closed, c->w, &cg_OSError); /* the connection's error again */
        if (ce) check_oserror(ce, "wait_closed"), cg_exc_unref(ce);
        cg_stream_reader_free(c->r);
        cg_stream_writer_free(c->w);
    } else {
        cg_io_close(c->fd);
    }
    c->done = 1;
    return NULL;
}

/* The pipe: a writer task and the reader, cg_write / cg_read. */
static void pipe_write(void *arg) {
    (void)arg;
    unsigned char buf[12000];
    for (size_t off = 0; off < W.pipe_len;) {
        size_t n = W.pipe_len - off < sizeof buf ? W.pipe_len - off : sizeof buf;
        for (size_t j = 0; j < n; j++) buf[j] = pay(999999, off + j);
        cg_write(W.pipe[1], buf, n);
        off += n;
    }
}

static void *pipe_writer(cg_gen *g, void *arg) {
    (void)g;
    cg_exc *e = cg_try_catch(pipe_write, arg, &cg_OSError);
    if (e) check_oserror(e, "cg_write"), cg_exc_unref(e);
    cg_io_close(W.pipe[1]);
    return NULL;
}

static void pipe_read(void *arg) {
    (void)arg;
    unsigned char buf[7000];
    size_t n;
    while ((n = cg_read(W.pipe[0], buf, sizeof buf)) > 0) {
        for (size_t j = 0; j < n; j++)
            if (buf[j] != pay(999999, W.pipe_got + j)) CHECK(!"a byte of the pipe came out changed, lost or twice");
        W.pipe_got += n;
    }
}

static void *pipe_reader(cg_gen *g, void *arg) {
    (void)g;
    cg_exc *e = cg_try_catch(pipe_read, arg, &cg_OSError);
    if (e) check_oserror(e, "cg_read"), cg_exc_unref(e);
    cg_io_close(W.pipe[0]);
    return NULL;
}

static void run_all(void *arg) {
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    W.all_connected = cg_event_new(loop);
    W.connecting = cg_semaphore_new(loop, 256);
    cg_future **f = malloc(sizeof *f * (size_t)(W.nclients + 3));
    size_t n = 0;
    cg_task *acc = W.srv >= 0 && !W.streams ? cg_create_task(acceptor, NULL, "acceptor") : NULL;
    if (W.streams && (W.srv >= 0 || W.serve_streams)) { /* the streams' server, on the port reserved */
        static const cg_server_opts opts = {.backlog = 4096, .stream = {.high_water = 16384}};
        if (W.srv >= 0) CHECK_EQ(__real_close(W.srv), 0);
        W.srv = -1;
        W.server = cg_start_server(stream_handler, NULL, "127.0.0.1", ntohs(W.addr.sin_port), &opts);
        if (W.ready_fd >= 0) {
            CHECK_EQ(__real_write(W.ready_fd, "", 1), 1);
            CHECK_EQ(__real_close(W.ready_fd), 0);
        }
    }
    if (acc && !W.run_clients) f[n++] = cg_future_ref(cg_task_future(acc)); /* it counts the connections */
    for (int i = 0; W.run_clients && i < W.nclients; i++) f[n++] = cg_task_future(cg_create_task(client_task, &W.cl[i], NULL));
    if (W.pipe_len) {
        CHECK_EQ(pipe2(W.pipe, O_CLOEXEC), 0);
        f[n++] = cg_task_future(cg_create_task(pipe_writer, NULL, "pipe writer"));
        f[n++] = cg_task_future(cg_create_task(pipe_reader, NULL, "pipe reader"));
    }
    cg_future *g = cg_gather(f, n, 0);
    CHECK(g != NULL);
    cg_await(g);
    cg_future_unref(g);
    for (size_t i = 0; i < n; i++) cg_future_unref(f[i]);
    free(f);
    while (W.handlers) cg_sleep(CG_MS(1)); /* the last handlers close */
    if (W.server) {
        while (!W.run_clients && (W.accepted < W.nclients || W.handlers)) cg_sleep(CG_MS(2)); /* (clients elsewhere) */
        cg_server_close(W.server);
        cg_server_wait_closed(W.server);
        cg_server_free(W.server);
        W.server = NULL;
    }
    if (acc) { /* a client that failed before it connected never came */
        cg_task_cancel(acc, NULL);
        cg_exc *e = cg_try_catch(await_fn, cg_task_future(acc), &cg_CancelledError);
        cg_exc_unref(e);
        cg_future_unref(cg_task_future(acc));
    }
    cg_semaphore_free(W.connecting);
    cg_event_free(W.all_connected);
}

static void watchdog(void *arg) { cg_timeout_call(W.deadline, run_all, arg); }

static void *echo_main(cg_gen *g, void *arg) {
    (void)g;
    cg_exc *e = cg_try_catch(watchdog, arg, &cg_TimeoutError);
    if (e) {
        fault_report(stderr);
        for (int i = 0; i < W.nclients; i++)
            if (!W.cl[i].done)
                fprintf(stderr, "connection %d: %zu of %zu bytes back\n", i, W.cl[i].got, W.cl[i].len);
        CHECK(!"the echo program hung");
    }
    return NULL;
}

/* Sets the echo up: nclients connections of up to maxlen bytes each (sizes
 * from the seed), and a pipe transfer of pipe_len bytes. */
static void echo_setup(int nclients, size_t maxlen, size_t pipe_len, uint64_t seed) {
    memset(&W, 0, sizeof W);
    W.srv = -1;
    W.nclients = nclients;
    W.run_clients = 1;
    W.ready_fd = -1;
    W.chunk = 256 + (size_t)(seed * 2654435761u % 16128);
    W.pipe_len = pipe_len;
    W.deadline = CG_SEC(50);
    W.cl = calloc((size_t)nclients ? (size_t)nclients : 1, sizeof *W.cl);
    CHECK(W.cl != NULL);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (int i = 0; i < nclients; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        W.cl[i].id = (unsigned)i + (unsigned)(seed << 8);
        W.cl[i].len = 1 + (size_t)(x % maxlen);
        W.cl[i].fd = -1;
    }
    if (nclients) {
        W.srv = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(W.srv >= 0);
        W.addr.sin_family = AF_INET;
        W.addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        CHECK_EQ(bind(W.srv, (struct sockaddr *)&W.addr, sizeof W.addr), 0);
        socklen_t len = sizeof W.addr;
        CHECK_EQ(getsockname(W.srv, (struct sockaddr *)&W.addr, &len), 0);
        CHECK_EQ(listen(W.srv, 4096), 0);
    }
}

static void echo_run(void) {
    cg_exc *e = NULL;
    cg_status st = cg_run(echo_main, NULL, NULL, NULL, &e);
    if (st != CG_RETURNED) {
        cg_exc_print(e, stderr);
        CHECK(!"the run raised");
    }
    if (W.srv >= 0) CHECK_EQ(__real_close(W.srv), 0); /* (not an injected EINTR) */
    W.srv = -1;
}

/* Faults that must not show: every connection complete, every byte once. */
static void check_all_complete_clients(void) {
    for (int i = 0; i < W.nclients; i++) {
        client *c = &W.cl[i];
        CHECK(c->done);
        CHECK_EQ(c->err_send | c->err_recv | c->err_connect, 0);
        CHECK_EQ(c->sent, c->len);
        CHECK_EQ(c->got, c->len);
    }
}

static void check_all_complete(void) {
    check_all_complete_clients();
    CHECK_EQ(W.accepted, W.nclients);
    CHECK_EQ(W.server_errs, 0);
    CHECK_EQ(W.accept_errs, 0);
    CHECK_EQ(W.pipe_got, W.pipe_len);
}

/* Faults that end connections: each one complete, or ended by an OSError
 * somewhere (checked where raised) with an exact prefix delivered. Returns
 * how many were cut short. */
static int check_complete_or_failed(void) {
    int cut = 0, client_errs = 0;
    for (int i = 0; i < W.nclients; i++) {
        client *c = &W.cl[i];
        CHECK(c->done);
        CHECK(c->got <= c->len); /* and each byte was checked as it came */
        if (c->err_send || c->err_recv || c->err_connect) client_errs++;
        if (c->got < c->len) cut++;
        if (!c->err_send && !c->err_connect) CHECK_EQ(c->sent, c->len);
    }
    /* a connection cut short was cut by an error on one side or the other */
    CHECK(cut <= client_errs + W.server_errs + W.accept_errs);
    return cut;
}

static void echo_done(int fds_before) {
    free(W.cl);
    W.cl = NULL;
    CHECK_EQ(count_fds(), fds_before);
}

/* The end of a run under faults that must not show, and of one under
 * faults that end connections (some, not all: the others went on). */
static void finish_unnoticed(void) {
    fault_disarm();
    fault_report(stdout);
    fflush(stdout);
    check_all_complete();
}

static void finish_fatal(const char *what) {
    fault_disarm();
    int cut = check_complete_or_failed();
    fault_report(stdout);
    printf("%d of %d connections ended by %s\n", cut, W.nclients, what);
    fflush(stdout);
    CHECK(cut > 0);
    CHECK(cut < W.nclients);
}

/* ---------------------------------------------------------------------
 * Faults a correct program does not notice
 * ------------------------------------------------------------------ */

static void all_calls(int err, unsigned long every, unsigned long per_million, unsigned long burst) {
    static const fault_call data[] = {FAULT_RECV, FAULT_SEND, FAULT_READ, FAULT_WRITE, FAULT_ACCEPT};
    for (size_t i = 0; i < sizeof data / sizeof data[0]; i++) fault_add(data[i], err, every, per_million, burst);
}

TEST(io_faults_eintr) {
    int before = count_fds();
    echo_setup(8, 200000, 300000, 1);
    fault_arm(1);
    all_calls(EINTR, 3, 0, 1);
    fault_add(FAULT_CONNECT, EINTR, 2, 0, 1);
    fault_add(FAULT_EPOLL_WAIT, EINTR, 2, 0, 1);
    fault_add(FAULT_CLOSE, EINTR, 4, 0, 1);
    echo_run();
    finish_unnoticed();
    static const fault_call kinds[] = {FAULT_RECV, FAULT_SEND, FAULT_READ, FAULT_WRITE, FAULT_ACCEPT,
                                       FAULT_CONNECT, FAULT_EPOLL_WAIT, FAULT_CLOSE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!fault_count(kinds[i], EINTR)) fprintf(stderr, "no EINTR injected into %s\n", fault_call_names[kinds[i]]);
        CHECK(fault_count(kinds[i], EINTR) > 0);
    }
    echo_done(before);
}

TEST(io_faults_eagain_storm) {
    int before = count_fds();
    echo_setup(8, 200000, 300000, 2);
    fault_arm(2);
    all_calls(EAGAIN, 29, 20000, 40); /* every 29th call and 2% of the others start a storm of 40 */
    fault_add(FAULT_EDGE, 0, 0, 300000, 1); /* and 30% of the polls report an fd that is not ready */
    echo_run();
    finish_unnoticed();
    static const fault_call kinds[] = {FAULT_RECV, FAULT_SEND, FAULT_READ, FAULT_WRITE, FAULT_EDGE};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
        if (!fault_count(kinds[i], 0)) fprintf(stderr, "no fault injected into %s\n", fault_call_names[kinds[i]]);
        CHECK(fault_count(kinds[i], 0) > 0);
    }
    CHECK(fault_count(FAULT_RECV, EAGAIN) >= 40); /* a whole storm at least */
    echo_done(before);
}

/* ---------------------------------------------------------------------
 * Faults that end a connection: the right OSError, the rest unharmed
 * ------------------------------------------------------------------ */

/* A fault injected into every Nth call of one kind, once each time. */
typedef struct every_nth {
    fault_call call;
    int err;
    unsigned long every;
} every_nth;

/* A run of 24 clients (sockets, or streams) under faults that end
 * connections: some are cut short, not all, each fault of the list was
 * injected, and no fd is left. pipe_len: a pipe transfer alongside, which
 * must come through whole (the faults hit sockets only). */
static void fatal_run(int streams, size_t pipe_len, uint64_t seed, const char *what, const every_nth *f, size_t n) {
    int before = count_fds();
    echo_setup(24, 100000, pipe_len, seed);
    W.streams = streams;
    fault_arm(seed);
    for (size_t i = 0; i < n; i++) fault_add(f[i].call, f[i].err, f[i].every, 0, 1);
    echo_run();
    finish_fatal(what);
    for (size_t i = 0; i < n; i++) {
        if (!fault_count(f[i].call, f[i].err))
            fprintf(stderr, "no %s injected into %s\n", strerror(f[i].err), fault_call_names[f[i].call]);
        CHECK(fault_count(f[i].call, f[i].err) > 0);
    }
    CHECK_EQ(W.pipe_got, W.pipe_len);
    echo_done(before);
}
#define FATAL_RUN(streams, pipe_len, seed, what, ...) \
    fatal_run((streams), (pipe_len), (seed), (what), (const every_nth[]){__VA_ARGS__}, \
              sizeof((const every_nth[]){__VA_ARGS__}) / sizeof(every_nth))

TEST(io_faults_econnreset) {
    FATAL_RUN(0, 0, 3, "a reset", {FAULT_RECV, ECONNRESET, 151}, {FAULT_SEND, ECONNRESET, 97});
}

TEST(io_faults_enomem) {
    FATAL_RUN(0, 200000, 4, "ENOBUFS/ENOMEM", {FAULT_SEND, ENOBUFS, 101}, {FAULT_SEND, ENOMEM, 113},
              {FAULT_EPOLL_CTL, ENOMEM, 7});
}

/* ---------------------------------------------------------------------
 * The same on streams (start_server, open_connection, read, write, drain)
 * ------------------------------------------------------------------ */

TEST(io_faults_streams_retry) {
    int before = count_fds();
    echo_setup(8, 200000, 0, 9);
    W.streams = 1;
    fault_arm(9);
    all_calls(EINTR, 3, 0, 1);
    all_calls(EAGAIN, 29, 20000, 25);
    fault_add(FAULT_EDGE, 0, 0, 300000, 1);
    fault_add(FAULT_EPOLL_WAIT, EINTR, 3, 0, 1);
    fault_add(FAULT_CONNECT, EINTR, 2, 0, 1);
    echo_run();
    finish_unnoticed();
    CHECK(fault_count(FAULT_RECV, EINTR) > 0);
    CHECK(fault_count(FAULT_SEND, EAGAIN) > 0);
    CHECK(fault_count(FAULT_ACCEPT, 0) > 0);
    echo_done(before);
}

TEST(io_faults_streams_fatal) {
    FATAL_RUN(1, 0, 10, "a fault", {FAULT_RECV, ECONNRESET, 101}, {FAULT_SEND, ECONNRESET, 97},
              {FAULT_SEND, ENOBUFS, 131}, {FAULT_EPOLL_CTL, ENOMEM, 11});
}

/* epoll_ctl's ENOMEM, one call at a time: the operation that registers the
 * fd raises OSError(12), nothing changes, and the next call registers it. */
static int spair[2];

static void recv_one(void *arg) {
    char c;
    *(size_t *)arg = cg_sock_recv(spair[0], &c, 1);
}

static void send_two(void *arg) {
    (void)arg;
    cg_sock_sendall(spair[0], "ab", 2);
    cg_sock_sendall(spair[0], "cd", 2);
}

static void *ctl_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    size_t n = 99;
    fault_arm(5);
    fault_add(FAULT_EPOLL_CTL, ENOMEM, 1, 0, 1);
    cg_exc *e = cg_try_catch(recv_one, &n, &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_OSError));
    CHECK_PTR(cg_exc_type_of(e), &cg_OSError);
    CHECK_EQ(cg_exc_errno(e), ENOMEM);
    CHECK_STR(cg_exc_msg(e), "[Errno 12] Cannot allocate memory");
    cg_exc_unref(e);
    CHECK_EQ(n, 99);
    CHECK_EQ(fault_count(FAULT_EPOLL_CTL, ENOMEM), 1);
    fault_disarm();
    CHECK_EQ(send(spair[1], "x", 1, 0), 1);
    e = cg_try_catch(recv_one, &n, &cg_BaseException);
    CHECK(e == NULL);
    CHECK_EQ(n, 1);
    /* ENOBUFS from send: OSError(105); what went before is there, once */
    fault_arm(6);
    fault_add(FAULT_SEND, ENOBUFS, 2, 0, 1);
    e = cg_try_catch(send_two, NULL, &cg_BaseException);
    CHECK_PTR(cg_exc_type_of(e), &cg_OSError);
    CHECK_EQ(cg_exc_errno(e), ENOBUFS);
    CHECK_STR(cg_exc_msg(e), "[Errno 105] No buffer space available");
    cg_exc_unref(e);
    fault_disarm();
    char buf[8];
    CHECK_EQ(recv(spair[1], buf, sizeof buf, MSG_DONTWAIT), 2);
    CHECK(memcmp(buf, "ab", 2) == 0);
    /* ECONNRESET from recv: ConnectionResetError, and end of stream after */
    fault_arm(7);
    fault_add(FAULT_RECV, ECONNRESET, 1, 0, 1);
    e = cg_try_catch(recv_one, &n, &cg_BaseException);
    CHECK_PTR(cg_exc_type_of(e), &cg_ConnectionResetError);
    CHECK_EQ(cg_exc_errno(e), ECONNRESET);
    CHECK_STR(cg_exc_msg(e), "[Errno 104] Connection reset by peer");
    cg_exc_unref(e);
    fault_disarm();
    cg_io_close(spair[0]);
    cg_io_close(spair[1]);
    return NULL;
}

TEST(io_faults_one_at_a_time) {
    int before = count_fds();
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, spair), 0);
    cg_exc *e = NULL;
    CHECK_EQ(cg_run(ctl_main, NULL, NULL, NULL, &e), CG_RETURNED);
    CHECK_EQ(count_fds(), before);
}

/* ---------------------------------------------------------------------
 * Seeded runs: every kind of fault at once, at rates the seed picks
 * ------------------------------------------------------------------ */

TEST(io_faults_seeded) {
    int before = count_fds();
    long seeds = scaled(30, 3);
    unsigned long cut_total = 0, faults_total = 0;
    for (long s = 1; s <= seeds; s++) {
        uint64_t seed = (uint64_t)s * 7919;
        echo_setup(6, 60000, 50000, seed);
        W.streams = s % 2 == 0; /* every other seed on streams */
        fault_arm(seed);
        uint64_t r = fault_rand();
        all_calls(EINTR, 0, 20000 + r % 100000, 1 + (r >> 20) % 3);
        all_calls(EAGAIN, 0, 10000 + (r >> 8) % 50000, 1 + (r >> 24) % 30);
        fault_add(FAULT_EDGE, 0, 0, (r >> 32) % 400000, 1);
        fault_add(FAULT_EPOLL_WAIT, EINTR, 0, (r >> 40) % 300000, 1);
        fault_add(FAULT_CONNECT, EINTR, 0, 500000, 1);
        fault_add(FAULT_CLOSE, EINTR, 0, 200000, 1);
        int fatal = s % 3 == 0; /* one seed in three also ends connections */
        if (fatal) {
            fault_add(FAULT_RECV, ECONNRESET, 0, 2000, 1);
            fault_add(FAULT_SEND, ECONNRESET, 0, 2000, 1);
            fault_add(FAULT_SEND, ENOBUFS, 0, 2000, 1);
            fault_add(FAULT_EPOLL_CTL, ENOMEM, 0, 30000, 1);
        }
        echo_run();
        for (int c = 0; c < FAULT_NCALLS; c++) faults_total += fs.injected[c];
        fault_disarm();
        if (fatal) {
            cut_total += (unsigned long)check_complete_or_failed();
            CHECK_EQ(W.pipe_got, W.pipe_len);
        } else {
            check_all_complete();
        }
        echo_done(before);
    }
    printf("%ld seeds, %lu faults injected, %lu connections ended by one\n", seeds, faults_total, cut_total);
    CHECK(faults_total > (unsigned long)seeds * 10);
}

/* ---------------------------------------------------------------------
 * 10,000 connections at once
 * ------------------------------------------------------------------ */

/* want connections, the clients in a child process so that each side has
 * want fds; the server on the socket operations or on the streams. */
static void many_connections(int streams) {
    long want = scaled(10000, 50);
    struct rlimit rl;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &rl), 0);
    rlim_t need = (rlim_t)want + 100;
    if (rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        CHECK_EQ(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    if (rl.rlim_cur < need) {
        long n = (long)rl.rlim_cur - 100;
        CHECK(n >= 50);
        printf("RLIMIT_NOFILE's hard limit is %ld: %ld connections instead of %ld\n", (long)rl.rlim_max, n, want);
        want = n;
    }
    /* starting 10,000 tasks is one long step of its caller, and so is a
     * batch of 10,000 connections made ready at once: no stall to report */
    cg_stall_threshold(CG_SEC(10));
    int before = count_fds();
    echo_setup((int)want, 2000, 0, 8);
    W.streams = streams;
    W.deadline = CG_SEC(100);
    W.barrier_wait = 1;
    int ready[2];
    CHECK_EQ(pipe2(ready, O_CLOEXEC), 0);
    if (streams) { /* the port is free before the child exists to hold it */
        CHECK_EQ(__real_close(W.srv), 0);
        W.srv = -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) { /* the clients */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (W.srv >= 0) CHECK_EQ(__real_close(W.srv), 0);
        W.srv = -1;
        CHECK_EQ(__real_close(ready[1]), 0);
        char c;
        if (streams) CHECK_EQ(__real_read(ready[0], &c, 1), 1); /* the server listens */
        CHECK_EQ(__real_close(ready[0]), 0);
        /* no stall watchdog in the child: it ends with _exit, and a thread
         * still running then reads as a leak to valgrind */
        cg_stall_threshold(0);
        echo_run();
        check_all_complete_clients();
        _exit(0);
    }
    CHECK_EQ(__real_close(ready[0]), 0);
    if (streams) {
        W.ready_fd = ready[1];
        W.serve_streams = 1;
    } else
        CHECK_EQ(__real_close(ready[1]), 0);
    W.run_clients = 0;
    echo_run();
    int status;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK_EQ(W.accepted, want);
    CHECK_EQ(W.server_errs, 0);
    printf("%ld connections open at once (%s), each echoed byte for byte\n", want,
           streams ? "streams" : "socket operations");
    echo_done(before);
}

TEST(io_many_connections) { many_connections(0); }
TEST(io_many_connections_streams) { many_connections(1); }

static const check_case cases[] = {
    CASE(io_faults_eintr),     CASE(io_faults_eagain_storm), CASE(io_faults_econnreset),
    CASE(io_faults_enomem),    CASE(io_faults_one_at_a_time), CASE(io_faults_streams_retry),
    CASE(io_faults_streams_fatal), CASE(io_faults_seeded),
    CASE(io_many_connections), CASE(io_many_connections_streams),
};

CHECK_MAIN(cases)
