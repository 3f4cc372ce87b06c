/* http-hello: an HTTP/1.1 server on 127.0.0.1:PORT answering
 * "Hello, World!" to every GET, with keep-alive and pipelining (requests
 * are read from the stream one after another and answered in order; the
 * answers to a pipelined batch leave together, since writes queue while
 * the socket is busy). A connection idle for longer than the timeout (argv[2],
 * seconds, default 10) is closed. Other methods get 405, a malformed
 * request 400 and the connection closed. Runs until SIGINT or SIGTERM,
 * then closes everything and exits with status 0.
 *
 *     build/examples/http-hello PORT [IDLE_TIMEOUT_SECONDS [LOOPS]]
 *     build/examples/http-hello 8080 5 &
 *     curl -s http://127.0.0.1:8080/
 *
 * With LOOPS > 1 it runs that many loops, one per thread, each with a
 * listener of its own on the same port (SO_REUSEPORT; serve_loops.h, as
 * echo-server).
 */
#define _POSIX_C_SOURCE 200809L /* cogen_io.h declares sigset_t uses (POSIX) */
#include <cogen_io.h>
#include <stdio.h>
#include <stdlib.h>

#include "http_parse.h"
#include "serve_loops.h"
#include "serve_until_signal.h"

static cg_ns idle_timeout = CG_SEC(10);

static const char hello[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
static const char not_allowed[] = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n";
static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/* The idle timeout, lazily: one timer per connection, armed when it opens,
 * and a request only notes when the wait for the next head began (one
 * clock reading, no timer re-armed per request). When the timer comes up
 * and the connection has been waiting for a head for the whole timeout, it
 * is closed (the waiting reader sees the end); otherwise the timer is armed
 * again for the deadline of the current wait. */
typedef struct idle {
    cg_loop *loop;
    cg_stream_writer *w;
    cg_handle *timer;
    cg_ns since;     /* when the wait for the current head began */
    int reading;     /* waiting for a head (not answering) */
} idle;

static void idle_check(void *arg) {
    idle *c = arg;
    cg_ns now = cg_loop_time(c->loop), deadline = c->since + idle_timeout;
    cg_handle_unref(c->timer);
    c->timer = NULL;
    if (c->reading && now >= deadline) {
        cg_stream_close(c->w);
        return;
    }
    c->timer = cg_loop_call_at(c->loop, c->reading ? deadline : now + idle_timeout, idle_check, c);
    if (!c->timer) cg_stream_close(c->w); /* out of memory: no timeout to keep it by */
}

static void idle_end(void *arg) {
    idle *c = arg;
    if (c->timer) {
        cg_handle_cancel(c->timer);
        cg_handle_unref(c->timer);
    }
    free(c);
}

/* Skips a request's body. */
static void skip(cg_stream_reader *r, size_t n) {
    char buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        cg_stream_readexactly(r, buf, k);
        n -= k;
    }
}

typedef struct conn_arg {
    cg_stream_reader *r;
    idle *idle;
} conn_arg;

/* The requests of one connection, until it ends (the peer gone, idle, a
 * head over the limit: the exception goes to conn, which closes). */
static void serve(void *arg) {
    conn_arg *a = arg;
    cg_stream_reader *r = a->r;
    idle *c = a->idle;
    for (;;) {
        c->since = cg_loop_time(c->loop);
        c->reading = 1;
        size_t n;
        const char *head = cg_stream_readuntil(r, "\r\n\r\n", 4, &n);
        c->reading = 0;
        http_request req;
        if (http_parse(head, n, &req) < 0) {
            cg_stream_write(c->w, bad, sizeof bad - 1);
            return;
        }
        int get = req.method_len == 3 && memcmp(req.method, "GET", 3) == 0;
        if (get)
            cg_stream_write(c->w, hello, sizeof hello - 1);
        else
            cg_stream_write(c->w, not_allowed, sizeof not_allowed - 1);
        cg_stream_drain(c->w);
        if (!req.keep_alive) return;
        skip(r, req.content_length);
    }
}

static void conn(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    idle *c = malloc(sizeof *c);
    if (!c) {
        cg_stream_close(w);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    *c = (idle){cg_get_running_loop(), w, NULL, 0, 1};
    c->since = cg_loop_time(c->loop);
    c->timer = cg_loop_call_at(c->loop, c->since + idle_timeout, idle_check, c);
    CG_DEFER(idle_end, c); /* also when the task is cancelled */
    if (c->timer) {
        conn_arg a = {r, c};
        cg_exc_unref(cg_try_catch(serve, &a, &cg_Exception));
    }
    cg_stream_close(w);
}

static void *main_task(cg_gen *g, void *arg) {
    (void)g;
    char **argv = arg;
    serve_until_signal(cg_start_server(conn, NULL, "127.0.0.1", atoi(argv[1]), NULL), "http-hello");
    return NULL;
}

int main(int argc, char **argv) {
    if (argc > 2) idle_timeout = (cg_ns)(atof(argv[2]) * 1e9);
    int st = serve_loops_main(argc, argv, 3, "http-hello", conn);
    return st >= 0 ? st : example_main(argc, argv, main_task, "PORT [IDLE_TIMEOUT_SECONDS [LOOPS]]");
}
