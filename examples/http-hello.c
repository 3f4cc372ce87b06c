/* http-hello: an HTTP/1.1 server on 127.0.0.1:PORT answering
 * "Hello, World!" to every GET, with keep-alive and pipelining (requests
 * are read from the stream one after another and answered in order; the
 * answers to a pipelined batch leave together, since writes queue while
 * the socket is busy). A connection idle for longer than the timeout (argv[2],
 * seconds, default 10) is closed. Other methods get 405, a malformed
 * request 400 and the connection closed. Runs until SIGINT or SIGTERM,
 * then closes everything and exits with status 0.
 *
 *     build/examples/http-hello 8080 5 &
 *     curl -s http://127.0.0.1:8080/
 */
#define _POSIX_C_SOURCE 200809L /* cogen_io.h declares sigset_t uses (POSIX) */
#include <cogen_io.h>
#include <stdio.h>
#include <stdlib.h>

#include "http_parse.h"
#include "serve_until_signal.h"

static cg_ns idle_timeout = CG_SEC(10);

static const char hello[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";
static const char not_allowed[] = "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nContent-Length: 0\r\n\r\n";
static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

typedef struct head {
    cg_stream_reader *r;
    const char *p;
    size_t n;
} head;

static void read_head(void *arg) {
    head *h = arg;
    h->p = cg_stream_readuntil(h->r, "\r\n\r\n", 4, &h->n);
}

static void read_head_in_time(void *arg) { cg_timeout_call(idle_timeout, read_head, arg); }

/* Skips a request's body. */
static void skip(cg_stream_reader *r, size_t n) {
    char buf[4096];
    while (n > 0) {
        size_t k = n < sizeof buf ? n : sizeof buf;
        cg_stream_readexactly(r, buf, k);
        n -= k;
    }
}

static void conn(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    for (;;) {
        head h = {r, NULL, 0};
        /* idle (or the peer gone, or a head over the limit): close */
        cg_exc *e = cg_try_catch(read_head_in_time, &h, &cg_Exception);
        if (e) {
            cg_exc_unref(e);
            break;
        }
        http_request req;
        if (http_parse(h.p, h.n, &req) < 0) {
            cg_stream_write(w, bad, sizeof bad - 1);
            break;
        }
        int get = req.method_len == 3 && memcmp(req.method, "GET", 3) == 0;
        if (get)
            cg_stream_write(w, hello, sizeof hello - 1);
        else
            cg_stream_write(w, not_allowed, sizeof not_allowed - 1);
        cg_stream_drain(w);
        if (!req.keep_alive) break;
        skip(r, req.content_length);
    }
    cg_stream_close(w);
}

static void *main_task(cg_gen *g, void *arg) {
    (void)g;
    char **argv = arg;
    if (argv[1] && argv[2]) idle_timeout = (cg_ns)(atof(argv[2]) * 1e9);
    serve_until_signal(cg_start_server(conn, NULL, "127.0.0.1", atoi(argv[1]), NULL), "http-hello");
    return NULL;
}

int main(int argc, char **argv) { return example_main(argc, argv, main_task, "PORT [IDLE_TIMEOUT_SECONDS]"); }
