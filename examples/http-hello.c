/* http-hello: an HTTP/1.1 server on 127.0.0.1:PORT answering
 * "Hello, World!" to every GET, with keep-alive and pipelining (requests
 * are read from the stream one after another and answered in order; the
 * answers to a pipelined batch leave together, since writes queue while
 * the socket is busy). A connection idle for longer than the timeout (argv[2],
 * seconds, default 10; checked every quarter of it) is closed. Other methods get 405, a malformed
 * request 400 and a head over 8 KiB 431, and the connection closed. Runs until SIGINT or SIGTERM,
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
static const char too_large[] =
    "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/* A connection: what it has read (heads are parsed where they were read:
 * no copy, and one pass over the bytes finds a head's end and parses it),
 * and its idle timeout, kept coarsely: a timer per connection that comes
 * up every quarter of the timeout and looks whether the connection is
 * still in the same wait for a head as the last four times; a request only
 * counts its wait (no clock reading, no timer re-armed per request). So an
 * idle connection is closed between the timeout and a quarter more after
 * its wait began (the waiting reader sees the end); one busy answering (a
 * peer slow to read) is not idle. */
#define HEAD_MAX 8192 /* a longer head is answered 431 */
#define IDLE_TICKS 4  /* idle checks per timeout */

typedef struct conn_state {
    cg_loop *loop;
    cg_stream_reader *r;
    cg_stream_writer *w;
    cg_handle *timer;
    unsigned waits, seen; /* waits for a head begun; the count at the last check */
    int quiet;            /* checks that found the same wait */
    int reading;          /* waiting for a head (not answering) */
    size_t start, end;    /* the bytes read and not yet used: buf[start..end) */
    char buf[HEAD_MAX];
} conn_state;

static void idle_check(void *arg) {
    conn_state *c = arg;
    cg_handle_unref(c->timer);
    c->timer = NULL;
    if (!c->reading || c->waits != c->seen) {
        c->seen = c->waits;
        c->quiet = 0;
    } else if (++c->quiet >= IDLE_TICKS) {
        cg_stream_close(c->w);
        return;
    }
    c->timer = cg_loop_call_later(c->loop, idle_timeout / IDLE_TICKS, idle_check, c);
    if (!c->timer) cg_stream_close(c->w); /* out of memory: no timeout to keep it by */
}

static void conn_end(void *arg) {
    conn_state *c = arg;
    if (c->timer) {
        cg_handle_cancel(c->timer);
        cg_handle_unref(c->timer);
    }
    free(c);
}

/* Reads more after buf[start..end) (moved to the front first): 0 at the
 * end of the stream. */
static size_t read_more(conn_state *c) {
    if (c->start == c->end) {
        c->start = c->end = 0;
    } else if (c->start) {
        memmove(c->buf, c->buf + c->start, c->end - c->start);
        c->end -= c->start;
        c->start = 0;
    }
    size_t n = cg_stream_read(c->r, c->buf + c->end, sizeof c->buf - c->end);
    c->end += n;
    return n;
}

/* The next request's head, parsed into *req: its length, or 0 when the
 * stream ended first, or -1 (bad or too long: answered, to be closed). */
static long next_head(conn_state *c, http_request *req) {
    long n = http_parse_prefix(c->buf + c->start, c->end - c->start, req);
    if (n) return n;
    c->waits++;
    c->reading = 1;
    do {
        if (c->end - c->start == sizeof c->buf) {
            /* answered, then the rest of the head read and dropped until the
             * peer ends (or the idle timeout): a close with unread bytes
             * would reset the connection, and the answer with it */
            cg_stream_write(c->w, too_large, sizeof too_large - 1);
            cg_stream_write_eof(c->w);
            while (cg_stream_read(c->r, c->buf, sizeof c->buf) > 0) continue;
            return -1;
        }
        if (read_more(c) == 0) return 0; /* (a head cut short: closed without an answer) */
    } while ((n = http_parse_prefix(c->buf + c->start, c->end - c->start, req)) == 0);
    c->reading = 0;
    if (n < 0) cg_stream_write(c->w, bad, sizeof bad - 1);
    return n;
}

/* Skips a request's body: what was read with the head, then the rest. */
static void skip(conn_state *c, size_t n) {
    size_t have = c->end - c->start, k = n < have ? n : have;
    c->start += k;
    n -= k;
    while (n > 0) {
        c->start = c->end = 0;
        size_t got = cg_stream_read(c->r, c->buf, n < sizeof c->buf ? n : sizeof c->buf);
        if (got == 0) CG_RAISE(&cg_IncompleteReadError, "the body ended early");
        n -= got;
    }
}

/* The requests of one connection, until it ends (the peer gone, idle, a
 * bad request: an exception goes to conn, which closes). */
static void serve(void *arg) {
    conn_state *c = arg;
    for (;;) {
        http_request req;
        long n = next_head(c, &req);
        if (n <= 0) return;
        c->start += (size_t)n;
        int get = req.method_len == 3 && memcmp(req.method, "GET", 3) == 0;
        if (get)
            cg_stream_write(c->w, hello, sizeof hello - 1);
        else
            cg_stream_write(c->w, not_allowed, sizeof not_allowed - 1);
        cg_stream_drain(c->w);
        if (!req.keep_alive) return;
        skip(c, req.content_length);
    }
}

static void conn(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    conn_state *c = malloc(sizeof *c);
    if (!c) {
        cg_stream_close(w);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    c->loop = cg_get_running_loop();
    c->r = r;
    c->w = w;
    c->waits = c->seen = 0;
    c->quiet = 0;
    c->reading = 1;
    c->start = c->end = 0;
    c->timer = cg_loop_call_later(c->loop, idle_timeout / IDLE_TICKS, idle_check, c);
    CG_DEFER(conn_end, c); /* also when the task is cancelled */
    if (c->timer) cg_exc_unref(cg_try_catch(serve, c, &cg_Exception));
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
