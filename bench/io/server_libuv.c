/* server_libuv.c: the libuv peer of the I/O benchmarks, the reference of
 * issue 10's targets (cogen's servers <= 1.05x its CPU per message).
 *
 *   bench_io_libuv_echo PORT    echoes every byte back
 *   bench_io_libuv_http PORT    HTTP/1.1 keep-alive "Hello, World!" (built
 *                               from this file with IO_HTTP defined)
 *
 * A minimal callback server written the way libuv's documentation and
 * examples suggest, made no slower than it needs to be: every read lands
 * in one static buffer (the read callback consumes it before the next
 * read), the answer goes out with uv_try_write, and only what the socket
 * did not take is copied and queued with uv_write, reading stopped until
 * it is written (so a peer that does not read cannot make the server
 * buffer without bound). One read and one write per 64-byte echo, as
 * libuv's own loop does them (uv__read stops after a short read).
 */
#define _GNU_SOURCE
#include "io_common.h"

#include <signal.h>
#include <uv.h>


typedef struct conn {
    uv_tcp_t tcp;        /* first: the handle is the connection */
    uv_write_t write;    /* the one queued write, while pending is set */
    uv_buf_t pending;    /* what uv_try_write left (malloc'd), or base NULL */
    unsigned http_state; /* http_scan's progress through "\r\n\r\n" */
} conn;

static uv_loop_t *loop;
static uv_tcp_t listener;
static uv_signal_t sigterm, sigint;
static char inbuf[IO_READ_SIZE];
#ifdef IO_HTTP
static char outbuf[HTTP_OUT_SIZE];
#endif

static void on_closed(uv_handle_t *h) {
    conn *c = (conn *)h;
    free(c->pending.base);
    free(c);
}

static void conn_close(conn *c) {
    if (!uv_is_closing((uv_handle_t *)&c->tcp)) uv_close((uv_handle_t *)&c->tcp, on_closed);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(inbuf, sizeof inbuf);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);

static void on_written(uv_write_t *w, int status) {
    conn *c = w->data;
    free(c->pending.base);
    c->pending.base = NULL;
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) conn_close(c);
}

/* Sends p[0..n): uv_try_write first, the rest queued. */
static void send_answer(conn *c, const char *p, size_t n) {
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (w == UV_EAGAIN) w = 0;
    if (w < 0) {
        conn_close(c);
        return;
    }
    if ((size_t)w == n) return;
    char *rest = malloc(n - (size_t)w);
    if (!rest) bench_die("out of memory");
    memcpy(rest, p + w, n - (size_t)w);
    c->pending = uv_buf_init(rest, (unsigned)(n - (size_t)w));
    c->write.data = c;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&c->write, (uv_stream_t *)&c->tcp, &c->pending, 1, on_written) < 0) conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
    conn *c = (conn *)s;
    if (n < 0) {
        conn_close(c); /* UV_EOF or an error */
        return;
    }
    if (n == 0) return; /* EAGAIN */
#ifdef IO_HTTP
    size_t len = http_answers(outbuf, http_scan(&c->http_state, buf->base, (size_t)n));
    if (len) send_answer(c, outbuf, len);
#else
    send_answer(c, buf->base, (size_t)n);
#endif
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) return;
    conn *c = calloc(1, sizeof *c);
    if (!c) bench_die("out of memory");
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
        uv_close((uv_handle_t *)&c->tcp, on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) < 0) conn_close(c);
}

static void close_any(uv_handle_t *h, void *arg) {
    (void)arg;
    if (uv_is_closing(h)) return;
    if (h->type == UV_TCP && h != (uv_handle_t *)&listener) uv_close(h, on_closed);
    else uv_close(h, NULL);
}

static void on_signal(uv_signal_t *s, int signum) {
    (void)signum;
    uv_walk(s->loop, close_any, NULL); /* the loop ends when every handle is closed */
}

int main(int argc, char **argv) {
    int port = io_port_arg(argc, argv, IO_SERVER_WHAT);
    io_raise_nofile();
    signal(SIGPIPE, SIG_IGN); /* a write to a reset connection fails with EPIPE instead */
    loop = uv_default_loop();
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_init(loop, &listener);
    int r = uv_tcp_bind(&listener, (const struct sockaddr *)&addr, 0);
    if (r == 0) r = uv_listen((uv_stream_t *)&listener, SOMAXCONN, on_connection);
    if (r < 0) bench_die("listen on 127.0.0.1:%d: %s", port, uv_strerror(r));
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) != 0) bench_die("uv_loop_close: handles left open");
    return 0;
}
