/* test_stream.c: streams (asyncio.StreamReader/StreamWriter,
 * open_connection, start_server): the reader's rules and messages, the
 * writer's queue and water marks, half-close, errors of the connection,
 * cancellation without loss, accept out of fds, and no fd left behind.
 *
 * The expected messages and outcomes were printed by CPython 3.13.0
 * running the same steps on asyncio (feed_data of the same bytes in one
 * chunk, then feed_eof, for the reader; real sockets for the rest): the
 * script is the comment above each case, its output the strings checked.
 */
#define _GNU_SOURCE
#include "cogen_io.h"
#include "io_check.h"
#include "under_tools.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static void await_fn(void *f) { cg_await(f); }

/* Helpers: streams and servers made and ended. */
static void connect_to(cg_server *s, cg_stream_reader **r, cg_stream_writer **w) {
    cg_open_connection("127.0.0.1", cg_server_port(s), NULL, r, w);
}

static void streams_free(cg_stream_reader *r, cg_stream_writer *w) {
    cg_stream_reader_free(r);
    cg_stream_writer_free(w);
}

/* close, wait_closed, free. */
static void streams_close(cg_stream_reader *r, cg_stream_writer *w) {
    cg_stream_close(w);
    cg_stream_wait_closed(w);
    streams_free(r, w);
}

static void server_done(cg_server *s) {
    cg_server_close(s);
    cg_server_wait_closed(s);
    cg_server_free(s);
}

/* The set-up most tests of one connection share: a server on 127.0.0.1 (a
 * port of its own) with cb, and a client of it, r and w. */
typedef struct fixture {
    cg_server *s;
    cg_stream_reader *r;
    cg_stream_writer *w;
} fixture;

static fixture serve_and_connect(cg_client_connected cb) {
    fixture f = {cg_start_server(cb, NULL, "127.0.0.1", 0, NULL), NULL, NULL};
    connect_to(f.s, &f.r, &f.w);
    return f;
}

/* Its end: the client's streams closed first (close) or only freed, then
 * the server closed, waited for and freed. */
static void fixture_done(fixture *f, int close) {
    if (close)
        streams_close(f->r, f->w);
    else
        streams_free(f->r, f->w);
    server_done(f->s);
}

/* A reader (and writer) over one end of a socketpair; the test writes
 * the other end (pair[1]). */
static int pair[2];
static cg_stream_reader *rd;
static cg_stream_writer *wr;

static void open_pair(size_t limit) {
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    cg_stream_opts o = {.limit = limit};
    cg_stream_open_fd(pair[0], &o, &rd, &wr);
}

static void close_pair(void) {
    streams_free(rd, wr);
    rd = NULL;
    wr = NULL;
    close(pair[1]);
}

static void feed(const char *s, int eof) {
    CHECK_EQ(write(pair[1], s, strlen(s)), (ssize_t)strlen(s));
    if (eof) shutdown(pair[1], SHUT_WR);
}

static const char *line_of(const char *p, size_t n) {
    static char buf[256];
    CHECK(n < sizeof buf);
    memcpy(buf, p, n);
    buf[n] = 0;
    return buf;
}

/* ---------------------------------------------------------------------
 * The reader's rules (the asyncio twin: r = StreamReader(limit=L);
 * r.feed_data(DATA); r.feed_eof(); then the calls)
 * ------------------------------------------------------------------ */

static void do_readline(void *p) {
    size_t n;
    cg_stream_readline(rd, &n);
    (void)p;
}

static const char *sep_arg;
static void do_readuntil(void *p) {
    size_t n;
    cg_stream_readuntil(rd, sep_arg, strlen(sep_arg), &n);
    (void)p;
}

static void do_readexactly(void *p) {
    char buf[64];
    cg_stream_readexactly(rd, buf, (size_t)(uintptr_t)p);
}

static void *reader_rules_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    size_t n;
    char buf[128];
    /* limit 8, b"0123456789abc\nxy\n": readline -> ValueError('Separator is
     * found, but chunk is longer than limit'); readline -> b'xy\n'; -> b'' */
    open_pair(8);
    feed("0123456789abc\nxy\n", 1);
    cg_exc *e = cg_try_catch(do_readline, NULL, &cg_Exception);
    CHECK_EXC(e, "ValueError('Separator is found, but chunk is longer than limit')");
    cg_exc_unref(e);
    const char *l = cg_stream_readline(rd, &n);
    CHECK_STR(line_of(l, n), "xy\n");
    l = cg_stream_readline(rd, &n);
    CHECK_EQ(n, 0);
    CHECK(cg_stream_at_eof(rd));
    close_pair();

    /* limit 8, b"0123456789", no EOF: readuntil(b'\n') ->
     * LimitOverrunError('Separator is not found, and chunk exceed the
     * limit'), consumed 10; read(100) -> b'0123456789' (kept) */
    open_pair(8);
    feed("0123456789", 0);
    sep_arg = "\n";
    e = cg_try_catch(do_readuntil, NULL, &cg_Exception);
    CHECK_EXC(e, "LimitOverrunError('Separator is not found, and chunk exceed the limit')");
    CHECK_EQ(cg_limit_overrun_consumed(e), 10);
    cg_exc_unref(e);
    CHECK_EQ(cg_stream_read(rd, buf, 100), 10);
    CHECK(memcmp(buf, "0123456789", 10) == 0);
    close_pair();

    /* limit 8, b"0123456789abcdef": readline -> ValueError('Separator is
     * not found, and chunk exceed the limit'), the buffer dropped; then
     * b"x\n", EOF: readline -> b'x\n' */
    open_pair(8);
    feed("0123456789abcdef", 0);
    e = cg_try_catch(do_readline, NULL, &cg_Exception);
    CHECK_EXC(e, "ValueError('Separator is not found, and chunk exceed the limit')");
    cg_exc_unref(e);
    feed("x\n", 1);
    l = cg_stream_readline(rd, &n);
    CHECK_STR(line_of(l, n), "x\n");
    close_pair();

    /* b"abc", EOF: readexactly(5) -> IncompleteReadError('3 bytes read on
     * a total of 5 expected bytes'), partial b'abc', expected 5, an
     * EOFError; at_eof() True */
    open_pair(0);
    feed("abc", 1);
    e = cg_try_catch(do_readexactly, (void *)5, &cg_Exception);
    CHECK_EXC(e, "IncompleteReadError('3 bytes read on a total of 5 expected bytes')");
    CHECK(cg_exc_is(e, &cg_EOFError));
    const char *partial = cg_incomplete_read_partial(e, &n);
    CHECK_STR(line_of(partial, n), "abc");
    CHECK_EQ(cg_incomplete_read_expected(e), 5);
    cg_exc_unref(e);
    CHECK(cg_stream_at_eof(rd));
    close_pair();

    /* b"ab", EOF: readuntil(b'--') -> IncompleteReadError('2 bytes read on
     * a total of undefined expected bytes'), expected None;
     * readuntil(b'') -> ValueError('Separator should be at least one-byte
     * string') */
    open_pair(0);
    feed("ab", 1);
    sep_arg = "--";
    e = cg_try_catch(do_readuntil, NULL, &cg_Exception);
    CHECK_EXC(e, "IncompleteReadError('2 bytes read on a total of undefined expected bytes')");
    CHECK_EQ(cg_incomplete_read_expected(e), SIZE_MAX);
    cg_exc_unref(e);
    sep_arg = "";
    e = cg_try_catch(do_readuntil, NULL, &cg_Exception);
    CHECK_EXC(e, "ValueError('Separator should be at least one-byte string')");
    cg_exc_unref(e);
    close_pair();

    /* lines, readuntil with a longer separator, readexactly across
     * receives, read of what is buffered */
    open_pair(0);
    feed("one\ntwo\r\n\r\nbody", 0);
    l = cg_stream_readline(rd, &n);
    CHECK_STR(line_of(l, n), "one\n");
    l = cg_stream_readuntil(rd, "\r\n\r\n", 4, &n);
    CHECK_STR(line_of(l, n), "two\r\n\r\n");
    feed("12345", 1);
    cg_stream_readexactly(rd, buf, 6);
    CHECK(memcmp(buf, "body12", 6) == 0);
    CHECK_EQ(cg_stream_read(rd, buf, sizeof buf), 3);
    CHECK_EQ(cg_stream_read(rd, buf, sizeof buf), 0);
    CHECK(cg_stream_at_eof(rd));
    close_pair();
    return NULL;
}

TEST(stream_reader_rules) { run_main_no_fd_leak(reader_rules_main, NULL); }

/* Two readers: r = StreamReader(); t = ensure_future(r.read(5)); then
 * r.readline() -> RuntimeError('readuntil() called while another
 * coroutine is already waiting for incoming data'), r.readexactly(3) ->
 * RuntimeError('readexactly() called while ...'). */
static void *first_reader(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    char buf[8];
    return (void *)cg_stream_read(rd, buf, 5);
}

static void *two_readers_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    open_pair(0);
    cg_task *t = cg_create_task(first_reader, NULL, NULL);
    cg_sleep(0);
    cg_exc *e = cg_try_catch(do_readline, NULL, &cg_Exception);
    CHECK_EXC(e, "RuntimeError('readuntil() called while another coroutine is already waiting for incoming data')");
    cg_exc_unref(e);
    e = cg_try_catch(do_readexactly, (void *)3, &cg_Exception);
    CHECK_EXC(e, "RuntimeError('readexactly() called while another coroutine is already waiting for incoming data')");
    cg_exc_unref(e);
    feed("hi", 0);
    CHECK_EQ((size_t)cg_await(cg_task_future(t)), 2);
    cg_future_unref(cg_task_future(t));
    close_pair();
    return NULL;
}

TEST(stream_two_readers) { run_main_no_fd_leak(two_readers_main, NULL); }

/* ---------------------------------------------------------------------
 * A TCP echo server and its client
 * ------------------------------------------------------------------ */

static int served;

/* TCP_NODELAY on a stream's socket: 1 on TCP (asyncio sets it on every
 * TCP transport), -1 where the option does not exist (a Unix socket). */
static int nodelay_of(cg_stream_writer *w) {
    int v = 0;
    socklen_t len = sizeof v;
    if (getsockopt(cg_stream_fileno(w), IPPROTO_TCP, TCP_NODELAY, &v, &len) < 0) return -1;
    return v != 0;
}

/* What nodelay_of must say for a stream whose peer has this family. */
static int nodelay_for(sa_family_t family) { return family == AF_INET || family == AF_INET6 ? 1 : -1; }

static void echo_cb(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    served++;
    struct sockaddr_storage peer;
    socklen_t plen;
    CHECK_EQ(cg_stream_peername(w, &peer, &plen), 0);
    CHECK_EQ(nodelay_of(w), nodelay_for(peer.ss_family)); /* the server's side */
    char buf[4096];
    size_t n;
    while ((n = cg_stream_read(r, buf, sizeof buf)) > 0) {
        cg_stream_write(w, buf, n);
        cg_stream_drain(w);
    }
    cg_stream_close(w);
}

typedef struct client {
    const char *host;
    int port;
    int id;
} client;

static void *echo_client(cg_gen *g, void *arg) {
    (void)g;
    client *c = arg;
    cg_stream_reader *r;
    cg_stream_writer *w;
    cg_open_connection(c->host, c->port, NULL, &r, &w);
    /* the peer's name is the server's address; ours is on the same host */
    struct sockaddr_storage peer, self;
    socklen_t plen, slen;
    CHECK_EQ(cg_stream_peername(w, &peer, &plen), 0);
    CHECK_EQ(cg_stream_sockname(w, &self, &slen), 0);
    CHECK_EQ(peer.ss_family, self.ss_family);
    CHECK_EQ(nodelay_of(w), 1); /* the client's side */
    CHECK_EQ(ntohs(peer.ss_family == AF_INET ? ((struct sockaddr_in *)&peer)->sin_port
                                             : ((struct sockaddr_in6 *)&peer)->sin6_port), c->port);
    for (int i = 0; i < 50; i++) {
        char msg[64], *got;
        int len = snprintf(msg, sizeof msg, "client %d line %d\n", c->id, i);
        cg_stream_write(w, msg, (size_t)len);
        cg_stream_drain(w);
        size_t n;
        got = (char *)cg_stream_readline(r, &n);
        CHECK_EQ(n, len);
        CHECK(memcmp(got, msg, n) == 0);
    }
    cg_stream_write_eof(w);
    char c1;
    CHECK_EQ(cg_stream_read(r, &c1, 1), 0); /* the server closes after our EOF */
    CHECK(cg_stream_at_eof(r));
    streams_close(r, w);
    return NULL;
}

static void *echo_main(cg_gen *g, void *arg) {
    (void)g;
    const char *host = arg;
    served = 0;
    cg_server *s = cg_start_server(echo_cb, NULL, host, 0, NULL);
    int port = cg_server_port(s);
    CHECK(port > 0);
    enum { N = 20 };
    static client cs[N]; /* not on this task's stack: swapped out in compact mode */
    cg_task *ts[N];
    for (int i = 0; i < N; i++) {
        cs[i] = (client){host, port, i};
        ts[i] = cg_create_task(echo_client, &cs[i], NULL);
    }
    for (int i = 0; i < N; i++) {
        cg_await(cg_task_future(ts[i]));
        cg_future_unref(cg_task_future(ts[i]));
    }
    CHECK_EQ(served, N);
    server_done(s);
    return NULL;
}

TEST(stream_echo_tcp) { run_main_no_fd_leak(echo_main, "127.0.0.1"); }

TEST(stream_echo_ipv6) {
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (fd >= 0) close(fd);
        printf("no IPv6 loopback: skipped\n");
        return;
    }
    close(fd);
    run_main_no_fd_leak(echo_main, "::1");
}

TEST(stream_echo_localhost) { run_main_no_fd_leak(echo_main, "localhost"); }

/* A Unix server, its name and peer name. */
static void *unix_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    char path[64];
    snprintf(path, sizeof path, "/tmp/cogen-stream-%d.sock", (int)getpid());
    unlink(path);
    cg_server *s = cg_start_unix_server(echo_cb, NULL, path, NULL);
    cg_stream_reader *r;
    cg_stream_writer *w;
    cg_open_unix_connection(path, NULL, &r, &w);
    cg_stream_write(w, "ping\n", 5);
    size_t n;
    const char *l = cg_stream_readline(r, &n);
    CHECK_STR(line_of(l, n), "ping\n");
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(cg_stream_peername(w, &ss, &len), 0);
    CHECK_EQ(ss.ss_family, AF_UNIX);
    CHECK_STR(((struct sockaddr_un *)&ss)->sun_path, path);
    streams_close(r, w);
    server_done(s);
    unlink(path);
    return NULL;
}

TEST(stream_unix) { run_main_no_fd_leak(unix_main, NULL); }

/* ---------------------------------------------------------------------
 * The writer: misuse, close, half-close
 * ------------------------------------------------------------------ */

static void do_write_x(void *p) { cg_stream_write(p, "x", 1); }
static void do_drain(void *p) { cg_stream_drain(p); }

static void closer_cb(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)r, (void)arg;
    cg_stream_close(w);
}

/* Twin: a server whose callback closes at once; the client: write_eof();
 * write(b'x') -> RuntimeError('Cannot call write() after write_eof()');
 * close(); drain() -> ConnectionResetError('Connection lost');
 * wait_closed(); server close, wait_closed; serve_forever() ->
 * RuntimeError('server <Server sockets=()> is closed'). */
static void serve_forever_fn(void *s) { cg_server_serve_forever(s); }

static void *writer_misuse_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    fixture f = serve_and_connect(closer_cb);
    cg_stream_write_eof(f.w);
    cg_exc *e = cg_try_catch(do_write_x, f.w, &cg_Exception);
    CHECK_EXC(e, "RuntimeError('Cannot call write() after write_eof()')");
    cg_exc_unref(e);
    cg_stream_close(f.w);
    CHECK(cg_stream_is_closing(f.w));
    e = cg_try_catch(do_drain, f.w, &cg_Exception);
    CHECK_EXC(e, "ConnectionResetError('Connection lost')");
    cg_exc_unref(e);
    cg_stream_wait_closed(f.w);
    streams_free(f.r, f.w);
    cg_server_close(f.s);
    cg_server_wait_closed(f.s);
    e = cg_try_catch(serve_forever_fn, f.s, &cg_Exception);
    CHECK_EXC(e, "RuntimeError('server <Server sockets=()> is closed')");
    cg_exc_unref(e);
    cg_server_free(f.s);
    return NULL;
}

TEST(stream_writer_misuse) { run_main_no_fd_leak(writer_misuse_main, NULL); }

/* Half-close both ways: the client sends, then write_eof; the server reads
 * to the end, answers with the count, then closes. */
static void count_cb(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    char buf[1000];
    size_t total = 0, n;
    while ((n = cg_stream_read(r, buf, sizeof buf)) > 0) total += n;
    CHECK(cg_stream_at_eof(r));
    int len = snprintf(buf, sizeof buf, "%zu\n", total);
    cg_stream_write(w, buf, (size_t)len);
    cg_stream_drain(w);
    cg_stream_close(w);
    cg_stream_wait_closed(w);
}

static void *half_close_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    fixture f = serve_and_connect(count_cb);
    static char big[300000];
    memset(big, 'z', sizeof big);
    cg_stream_write(f.w, big, sizeof big); /* more than the socket takes: queued */
    cg_stream_write_eof(f.w);              /* sent once the queue is out */
    cg_stream_drain(f.w);
    size_t n;
    const char *l = cg_stream_readline(f.r, &n);
    CHECK_STR(line_of(l, n), "300000\n");
    l = cg_stream_readline(f.r, &n);
    CHECK_EQ(n, 0);
    fixture_done(&f, 1);
    return NULL;
}

TEST(stream_half_close) { run_main_no_fd_leak(half_close_main, NULL); }

/* ---------------------------------------------------------------------
 * Errors of the connection
 * ------------------------------------------------------------------ */

static int port_arg;
static void do_connect(void *p) {
    cg_stream_reader *r;
    cg_stream_writer *w;
    cg_open_connection(p, port_arg, NULL, &r, &w);
    streams_free(r, w);
}

/* open_connection('127.0.0.1', closed port) -> ConnectionRefusedError,
 * str '[Errno 111] Connect call failed ('127.0.0.1', PORT)'. */
static void *refused_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    close(fd);
    port_arg = ntohs(sa.sin_port);
    cg_exc *e = cg_try_catch(do_connect, "127.0.0.1", &cg_Exception);
    CHECK_PTR(cg_exc_type_of(e), &cg_ConnectionRefusedError);
    char want[100];
    snprintf(want, sizeof want, "[Errno 111] Connect call failed ('127.0.0.1', %d)", port_arg);
    CHECK_STR(cg_exc_msg(e), want);
    CHECK_EQ(cg_exc_errno(e), ECONNREFUSED);
    cg_exc_unref(e);
    /* a name that does not resolve: gaierror (not under valgrind: glibc
     * keeps the resolver's state of a DNS worker, alive at exit, which
     * memcheck calls a leak) */
    if (!RUNNING_ON_VALGRIND) {
        e = cg_try_catch(do_connect, "no-such-host.invalid", &cg_Exception);
        CHECK(cg_exc_is(e, &cg_gaierror));
        cg_exc_unref(e);
    }
    return NULL;
}

TEST(stream_connect_refused) { run_main_no_fd_leak(refused_main, NULL); }

/* The peer resets the connection while we write: drain raises a
 * ConnectionError (reset, or broken pipe: which one the kernel says
 * first), later writes are dropped, wait_closed raises it too. */
static void reset_cb(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    char c;
    cg_stream_read(r, &c, 1); /* the first byte, then a reset */
    struct linger lg = {1, 0};
    setsockopt(cg_stream_fileno(w), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    cg_stream_close(w);
}

static void write_until_error(void *p) {
    static char chunk[65536];
    for (int i = 0; i < 10000; i++) {
        cg_stream_write(p, chunk, sizeof chunk);
        cg_stream_drain(p);
    }
}

static void do_wait_closed(void *p) { cg_stream_wait_closed(p); }

static void *reset_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    fixture f = serve_and_connect(reset_cb);
    cg_exc *e = cg_try_catch(write_until_error, f.w, &cg_Exception);
    CHECK(e != NULL);
    CHECK(cg_exc_is(e, &cg_ConnectionResetError) || cg_exc_is(e, &cg_BrokenPipeError));
    CHECK(cg_exc_errno(e) == ECONNRESET || cg_exc_errno(e) == EPIPE);
    cg_exc_unref(e);
    CHECK(cg_stream_is_closing(f.w));
    cg_stream_write(f.w, "dropped", 7); /* no error: dropped */
    CHECK_EQ(cg_stream_buffer_size(f.w), 0);
    e = cg_try_catch(do_wait_closed, f.w, &cg_Exception);
    CHECK(cg_exc_is(e, &cg_ConnectionError));
    cg_exc_unref(e);
    /* the reader has the error too, as asyncio's gets it from connection_lost */
    rd = f.r;
    e = cg_try_catch(do_readline, NULL, &cg_Exception);
    CHECK(cg_exc_is(e, &cg_ConnectionError));
    cg_exc_unref(e);
    rd = NULL;
    fixture_done(&f, 0);
    return NULL;
}

TEST(stream_peer_reset) { run_main_no_fd_leak(reset_main, NULL); }

/* A reader that never reads: the writer's queue stays bounded by the
 * high-water mark (drain blocks), and the peer gets every byte once it
 * reads. */
static size_t sent_total;
static void *flooder(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    static char chunk[16384];
    for (;;) {
        cg_stream_write(wr, chunk, sizeof chunk);
        sent_total += sizeof chunk;
        CHECK(cg_stream_buffer_size(wr) <= 64 * 1024 + sizeof chunk);
        cg_stream_drain(wr);
    }
    return NULL;
}

static void *slow_reader_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    open_pair(0);
    sent_total = 0;
    cg_task *t = cg_create_task(flooder, NULL, NULL);
    cg_sleep(CG_MS(100));
    size_t at = sent_total;
    CHECK(at > 0);
    cg_sleep(CG_MS(100));
    CHECK_EQ(sent_total, at); /* blocked in drain */
    CHECK(cg_stream_buffer_size(wr) > 64 * 1024);
    /* drain cancelled: nothing lost, the queue goes out */
    cg_task_cancel(t, NULL);
    cg_exc *e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    size_t got = 0;
    static char buf[65536]; /* not on the stack: 32 KiB in compact mode */
    while (got < sent_total) {
        cg_wait_readable(pair[1]);
        ssize_t n = read(pair[1], buf, sizeof buf);
        CHECK(n > 0);
        got += (size_t)n;
    }
    CHECK_EQ(got, sent_total);
    CHECK_EQ(cg_stream_buffer_size(wr), 0);
    cg_io_forget(pair[1]);
    close_pair();
    return NULL;
}

TEST(stream_slow_reader) { run_main_no_fd_leak(slow_reader_main, NULL); }

/* ---------------------------------------------------------------------
 * Cancellation loses nothing
 * ------------------------------------------------------------------ */

static void *exact_task(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    char buf[10];
    cg_stream_readexactly(rd, buf, 10);
    return NULL;
}

static void *line_task(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    size_t n;
    cg_stream_readline(rd, &n);
    return NULL;
}

static void cancel_in(cg_fn body, const char *first) {
    cg_task *t = cg_create_task(body, NULL, NULL);
    cg_sleep(0);
    feed(first, 0);
    for (int i = 0; i < 3; i++) cg_sleep(0); /* it has read it, and waits for more */
    CHECK(!cg_future_done(cg_task_future(t)));
    cg_task_cancel(t, NULL);
    cg_exc *e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
}

static void *cancel_read_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    open_pair(0);
    cancel_in(exact_task, "abc");
    feed("defghijkl", 0);
    char buf[16];
    cg_stream_readexactly(rd, buf, 12);
    CHECK(memcmp(buf, "abcdefghijkl", 12) == 0);
    cancel_in(line_task, "par");
    feed("tial\nnext\n", 0);
    size_t n;
    const char *l = cg_stream_readline(rd, &n);
    CHECK_STR(line_of(l, n), "partial\n");
    l = cg_stream_readline(rd, &n);
    CHECK_STR(line_of(l, n), "next\n");
    close_pair();
    return NULL;
}

TEST(stream_cancel_read) { run_main_no_fd_leak(cancel_read_main, NULL); }

/* connect cancelled while the SYN waits (a listener whose queue is full
 * drops it): CancelledError, the socket closed. accept cancelled: the
 * connection stays in the backlog for the next accept. */
static void *connect_task(cg_gen *g, void *arg) {
    (void)g;
    do_connect(arg);
    return NULL;
}

static void *accept_task(cg_gen *g, void *arg) {
    (void)g;
    return (void *)(intptr_t)cg_sock_accept((int)(intptr_t)arg, NULL, NULL);
}

static void *cancel_connect_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_EQ(listen(lfd, 0), 0);
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    /* accept cancelled first */
    cg_task *t = cg_create_task(accept_task, (void *)(intptr_t)lfd, NULL);
    cg_sleep(0);
    cg_task_cancel(t, NULL);
    cg_exc *e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    /* fill the queue */
    int fill[4], nfill = 0;
    for (; nfill < 4; nfill++) {
        fill[nfill] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        connect(fill[nfill], (struct sockaddr *)&sa, sizeof sa);
    }
    port_arg = ntohs(sa.sin_port);
    t = cg_create_task(connect_task, "127.0.0.1", NULL);
    cg_sleep(CG_MS(50));
    CHECK(!cg_future_done(cg_task_future(t)));
    cg_task_cancel(t, NULL);
    e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    /* the connections queued before are all there to accept */
    int c = cg_sock_accept(lfd, NULL, NULL);
    CHECK(c >= 0);
    cg_io_close(c);
    for (int i = 0; i < nfill; i++) close(fill[i]);
    cg_io_close(lfd);
    return NULL;
}

TEST(stream_cancel_connect_accept) { run_main_no_fd_leak(cancel_connect_main, NULL); }

/* ---------------------------------------------------------------------
 * The server: accept out of fds, a failing callback, serve_forever
 * ------------------------------------------------------------------ */

static int handler_calls;
static char handler_msg[200];
static int handler_errno;

static void handler(cg_loop *loop, const cg_loop_context *ctx, void *ud) {
    (void)loop, (void)ud;
    handler_calls++;
    snprintf(handler_msg, sizeof handler_msg, "%s", ctx->message);
    handler_errno = cg_exc_errno(ctx->exception);
    if (!handler_errno) cg_exc_repr(ctx->exception, handler_msg + strlen(handler_msg), sizeof handler_msg - strlen(handler_msg));
}

static void echo_line(cg_stream_reader *r, cg_stream_writer *w, const char *msg) {
    cg_stream_write(w, msg, strlen(msg));
    cg_stream_drain(w);
    size_t n;
    const char *l = cg_stream_readline(r, &n);
    CHECK_STR(line_of(l, n), msg);
}

static void *emfile_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_loop_set_exception_handler(cg_get_running_loop(), handler, NULL);
    handler_calls = 0;
    served = 0;
    cg_server_opts so = {.accept_retry_delay = CG_MS(50)};
    cg_server *s = cg_start_server(echo_cb, NULL, "127.0.0.1", 0, &so);
    int port = cg_server_port(s);
    cg_stream_reader *ra, *rb;
    cg_stream_writer *wa, *wb;
    cg_open_connection("127.0.0.1", port, NULL, &ra, &wa);
    echo_line(ra, wa, "a1\n");
    CHECK_EQ(served, 1);
    /* use up every fd but one: the client's socket takes it, the server's
     * accept finds none */
    struct rlimit old, lim;
    getrlimit(RLIMIT_NOFILE, &old);
    lim = old;
    lim.rlim_cur = (rlim_t)count_fds() + 16;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &lim), 0);
    int spare[64], nspare = 0;
    while (nspare < 64 && (spare[nspare] = open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0) nspare++;
    CHECK(nspare < 64);
    close(spare[--nspare]);
    cg_open_connection("127.0.0.1", port, NULL, &rb, &wb); /* in the backlog */
    for (int i = 0; i < 500 && handler_calls == 0; i++) cg_sleep(CG_MS(10));
    CHECK(handler_calls >= 1);
    /* no busy loop: one report per retry (50 ms), not one per iteration */
    int at = handler_calls;
    cg_sleep(CG_MS(200));
    CHECK(handler_calls - at <= 6);
    CHECK_STR(handler_msg, "socket.accept() out of system resource");
    CHECK_EQ(handler_errno, EMFILE);
    CHECK_EQ(served, 1);
    /* the connection already there is served */
    echo_line(ra, wa, "a2\n");
    /* fds come back: the listener recovers */
    while (nspare > 0) close(spare[--nspare]);
    echo_line(rb, wb, "b1\n");
    CHECK_EQ(served, 2);
    setrlimit(RLIMIT_NOFILE, &old);
    cg_stream_writer_free(wa);
    streams_free(ra, wb);
    cg_stream_reader_free(rb);
    server_done(s);
    return NULL;
}

TEST(stream_accept_emfile) {
    /* valgrind fakes its fd limit by closing what accept4 returned past
     * it: the connection is lost there, as it is not on a kernel */
    if (RUNNING_ON_VALGRIND) {
        printf("skipped under valgrind\n");
        exit(77);
    }
    run_main_no_fd_leak(emfile_main, NULL);
}

static void bad_cb(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)r, (void)w, (void)arg;
    CG_RAISE(&cg_ValueError, "boom");
}

/* Twin: a callback raising ValueError('boom'): the client reads b'', the
 * handler gets 'Unhandled exception in client_connected_cb' with it. */
static void *bad_cb_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_loop_set_exception_handler(cg_get_running_loop(), handler, NULL);
    handler_calls = 0;
    fixture f = serve_and_connect(bad_cb);
    char buf[10];
    CHECK_EQ(cg_stream_read(f.r, buf, sizeof buf), 0);
    cg_sleep(CG_MS(10));
    CHECK_EQ(handler_calls, 1);
    CHECK_STR(handler_msg, "Unhandled exception in client_connected_cb" "ValueError('boom')");
    fixture_done(&f, 0);
    return NULL;
}

TEST(stream_cb_exception) { run_main_no_fd_leak(bad_cb_main, NULL); }

/* serve_forever: cancelled, it closes the server and waits for its
 * connections, then the CancelledError goes on; a second serve_forever
 * while one runs is RuntimeError. */
static void *forever_task(cg_gen *g, void *arg) {
    (void)g;
    cg_server_serve_forever(arg);
    return NULL;
}

static void *forever_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_server *s = cg_start_server(echo_cb, NULL, "127.0.0.1", 0, NULL);
    cg_task *t = cg_create_task(forever_task, s, NULL);
    cg_sleep(0);
    cg_exc *e = cg_try_catch(serve_forever_fn, s, &cg_Exception);
    CHECK(cg_exc_is(e, &cg_RuntimeError));
    CHECK(strstr(cg_exc_msg(e), "is already being awaited on serve_forever()") != NULL);
    CHECK(strncmp(cg_exc_msg(e), "server <Server sockets=(<asyncio.TransportSocket fd=", 52) == 0);
    cg_exc_unref(e);
    cg_stream_reader *r;
    cg_stream_writer *w;
    connect_to(s, &r, &w);
    echo_line(r, w, "x\n");
    cg_task_cancel(t, NULL);
    cg_sleep(CG_MS(10));
    CHECK(!cg_future_done(cg_task_future(t))); /* waits for our connection */
    cg_stream_close(w);
    e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    streams_free(r, w);
    cg_server_free(s);
    return NULL;
}

TEST(stream_serve_forever) { run_main_no_fd_leak(forever_main, NULL); }

/* bind on a port in use: OSError(98, "error while attempting to bind on
 * address ('127.0.0.1', PORT): address already in use") */
static void do_start(void *p) { cg_server_free(cg_start_server(echo_cb, NULL, "127.0.0.1", *(int *)p, NULL)); }

static void *bind_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_server_opts so = {.reuse_address = -1};
    cg_server *s = cg_start_server(echo_cb, NULL, "127.0.0.1", 0, &so);
    int port = cg_server_port(s);
    cg_exc *e = cg_try_catch(do_start, &port, &cg_Exception);
    char want[200];
    snprintf(want, sizeof want, "[Errno 98] error while attempting to bind on address ('127.0.0.1', %d): address already in use", port);
    CHECK_STR(cg_exc_msg(e), want);
    CHECK_EQ(cg_exc_errno(e), EADDRINUSE);
    cg_exc_unref(e);
    cg_server_free(s);
    /* SO_REUSEPORT on both: two listeners on one port */
    so.reuse_port = 1;
    s = cg_start_server(echo_cb, NULL, "127.0.0.1", 0, &so);
    port = cg_server_port(s);
    cg_server *s2 = cg_start_server(echo_cb, NULL, "127.0.0.1", port, &so);
    CHECK_EQ(cg_server_port(s2), port);
    cg_server_free(s2);
    cg_server_free(s);
    return NULL;
}

TEST(stream_bind_in_use) { run_main_no_fd_leak(bind_main, NULL); }

/* ---------------------------------------------------------------------
 * Datagram endpoints
 * ------------------------------------------------------------------ */

static cg_datagram *udp_a;

static void *udp_receiver(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    char buf[64];
    return (void *)cg_datagram_recvfrom(udp_a, buf, sizeof buf, NULL, NULL);
}

static void udp_send_elsewhere(void *d) {
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(10), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cg_datagram_sendto(d, "x", 1, (struct sockaddr *)&sa, sizeof sa);
}

static void udp_recv(void *d) {
    char buf[8];
    cg_datagram_recvfrom(d, buf, sizeof buf, NULL, NULL);
}

/* A bound endpoint and a connected one: ping, pong to the sender's
 * address; a receive cancelled loses no datagram; the asyncio twin's
 * create_datagram_endpoint(remote_addr=('127.0.0.1', 9)).sendto(b'x',
 * ('127.0.0.1', 10)) -> ValueError("Invalid address: must be None or
 * ('127.0.0.1', 9)"); a connected endpoint whose peer is gone:
 * ConnectionRefusedError('[Errno 111] Connection refused'). */
static void *udp_main(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    udp_a = cg_open_datagram("127.0.0.1", 0, NULL, 0, NULL);
    struct sockaddr_storage ss;
    socklen_t len;
    CHECK_EQ(cg_datagram_sockname(udp_a, &ss, &len), 0);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    cg_datagram *b = cg_open_datagram(NULL, -1, "127.0.0.1", port, NULL);
    /* a receive cancelled: the datagram sent after it is there for the next */
    cg_task *t = cg_create_task(udp_receiver, NULL, NULL);
    cg_sleep(0);
    cg_task_cancel(t, NULL);
    cg_exc *e = cg_try_catch(await_fn, cg_task_future(t), &cg_BaseException);
    CHECK(cg_exc_is(e, &cg_CancelledError));
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
    cg_datagram_sendto(b, "ping", 4, NULL, 0);
    char buf[64];
    struct sockaddr_storage from;
    CHECK_EQ(cg_datagram_recvfrom(udp_a, buf, sizeof buf, &from, &len), 4);
    CHECK(memcmp(buf, "ping", 4) == 0);
    cg_datagram_sendto(udp_a, "pong!", 5, (struct sockaddr *)&from, len);
    CHECK_EQ(cg_datagram_recvfrom(b, buf, sizeof buf, NULL, NULL), 5);
    CHECK(memcmp(buf, "pong!", 5) == 0);
    e = cg_try_catch(udp_send_elsewhere, b, &cg_Exception);
    char want[100];
    snprintf(want, sizeof want, "ValueError(\"Invalid address: must be None or ('127.0.0.1', %d)\")", port);
    CHECK_EXC(e, want);
    cg_exc_unref(e);
    /* the peer gone: the ICMP refusal comes back as the next call's error */
    cg_datagram_close(udp_a);
    udp_a = NULL;
    cg_datagram_sendto(b, "lost", 4, NULL, 0);
    e = cg_try_catch(udp_recv, b, &cg_Exception);
    CHECK_PTR(cg_exc_type_of(e), &cg_ConnectionRefusedError);
    CHECK_STR(cg_exc_msg(e), "[Errno 111] Connection refused");
    cg_exc_unref(e);
    cg_datagram_close(b);
    return NULL;
}

TEST(stream_udp) { run_main_no_fd_leak(udp_main, NULL); }

static const check_case cases[] = {
    CASE(stream_reader_rules),  CASE(stream_two_readers),   CASE(stream_echo_tcp),
    CASE(stream_echo_ipv6),     CASE(stream_echo_localhost), CASE(stream_unix),
    CASE(stream_writer_misuse), CASE(stream_half_close),    CASE(stream_connect_refused),
    CASE(stream_peer_reset),    CASE(stream_slow_reader),   CASE(stream_cancel_read),
    CASE(stream_cancel_connect_accept), CASE(stream_accept_emfile), CASE(stream_cb_exception),
    CASE(stream_serve_forever), CASE(stream_bind_in_use),   CASE(stream_udp),
};

CHECK_MAIN(cases)
