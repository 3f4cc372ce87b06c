/* fetcher: a concurrent HTTP/1.1 client on cogen's streams. It GETs every
 * URL given, at most CONCURRENCY at a time (a Semaphore), each within
 * TIMEOUT_MS (wait_for), all gathered; then prints one line per URL, in the
 * order given, and a summary.
 *
 *     fetcher [-c CONCURRENCY] [-t TIMEOUT_MS] [-n TIMES] TARGET...
 *
 * A TARGET is http://HOST[:PORT]/PATH, or a bare PORT for
 * http://127.0.0.1:PORT/ (so `fetcher 8080` asks the http-hello example).
 * -n fetches each target that many times. Defaults: -c 4 -t 5000 -n 1.
 *
 *     GET http://127.0.0.1:8080/ -> 200, 13 bytes
 *     GET http://127.0.0.1:9/ -> ConnectionRefusedError: [Errno 111] Connect call failed ('127.0.0.1', 9)
 *     2 requests: 1 ok, 1 failed
 *
 * Exits 0 when every request got a response (any status), 1 otherwise, 2
 * on a usage error. SIGINT or SIGTERM cancels what is in flight (those
 * print CancelledError) and it exits 1 after the report. The response's
 * body is read by its Content-Length, as chunks (Transfer-Encoding:
 * chunked), or to the end of the connection. */
#define _GNU_SOURCE
#include <cogen_io.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

typedef struct request {
    char host[256];
    int port;
    char path[1024];
    int status;       /* the response's, once it came */
    size_t body;      /* its length */
    char error[300];  /* or what went wrong */
} request;

static long concurrency = 4;
static cg_ns timeout = CG_MS(5000);
static cg_semaphore *limit;

/* http://HOST[:PORT]/PATH or PORT. 0 when it is neither. */
static int parse_target(const char *t, request *rq) {
    char *end;
    long p = strtol(t, &end, 10);
    if (*t && !*end) {
        if (p <= 0 || p > 65535) return 0;
        snprintf(rq->host, sizeof rq->host, "127.0.0.1");
        rq->port = (int)p;
        snprintf(rq->path, sizeof rq->path, "/");
        return 1;
    }
    if (strncmp(t, "http://", 7) != 0) return 0;
    t += 7;
    size_t hl = strcspn(t, ":/");
    if (hl == 0 || hl >= sizeof rq->host) return 0;
    memcpy(rq->host, t, hl);
    rq->host[hl] = '\0';
    t += hl;
    rq->port = 80;
    if (*t == ':') {
        p = strtol(t + 1, &end, 10);
        if (p <= 0 || p > 65535 || (*end && *end != '/')) return 0;
        rq->port = (int)p;
        t = end;
    }
    snprintf(rq->path, sizeof rq->path, "%s", *t ? t : "/");
    return 1;
}

typedef struct conn {
    cg_stream_reader *r;
    cg_stream_writer *w;
} conn;

static void conn_close(void *p) {
    conn *c = p;
    if (!c->w) return;
    cg_stream_close(c->w);
    cg_stream_reader_free(c->r);
    cg_stream_writer_free(c->w);
}

/* A header line's value when its name is name, else NULL. */
static const char *header(const char *line, size_t n, const char *name, char *val, size_t size) {
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':') return NULL;
    const char *v = line + nl + 1;
    size_t vl = n - nl - 1;
    while (vl && (*v == ' ' || *v == '\t')) v++, vl--;
    while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' ')) vl--;
    if (vl >= size) vl = size - 1;
    memcpy(val, v, vl);
    val[vl] = '\0';
    return val;
}

static size_t skip(cg_stream_reader *r, size_t n) { /* reads n bytes, or to the end (SIZE_MAX) */
    char buf[4096];
    size_t total = 0;
    while (total < n) {
        size_t want = n - total < sizeof buf ? n - total : sizeof buf;
        size_t got = n == SIZE_MAX ? cg_stream_read(r, buf, sizeof buf) : (cg_stream_readexactly(r, buf, want), want);
        if (got == 0) break;
        total += got;
    }
    return total;
}

/* One GET, in the calling task: the status and the body's length. */
static void *fetch(cg_gen *g, void *arg) {
    (void)g;
    request *rq = arg;
    conn c = {NULL, NULL};
    CG_DEFER(conn_close, &c);
    cg_open_connection(rq->host, rq->port, NULL, &c.r, &c.w);
    char req[1400];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: cogen-fetcher\r\nConnection: close\r\n\r\n",
                     rq->path, rq->host, rq->port);
    cg_stream_write(c.w, req, (size_t)n);
    cg_stream_drain(c.w);
    size_t len;
    const char *line = cg_stream_readline(c.r, &len);
    int status = 0;
    if (len < 12 || strncmp(line, "HTTP/1.", 7) != 0 || sscanf(line + 9, "%3d", &status) != 1)
        CG_RAISE(&cg_ValueError, "not an HTTP response");
    long content_length = -1;
    int chunked = 0;
    for (;;) {
        line = cg_stream_readline(c.r, &len);
        if (len == 0) CG_RAISE(&cg_ValueError, "the connection ended in the headers");
        if (len <= 2 && line[0] == '\r') break;
        if (line[0] == '\n') break;
        char val[64];
        if (header(line, len, "Content-Length", val, sizeof val)) content_length = atol(val);
        if (header(line, len, "Transfer-Encoding", val, sizeof val) && strcasecmp(val, "chunked") == 0) chunked = 1;
    }
    size_t body = 0;
    if (chunked) {
        for (;;) {
            line = cg_stream_readline(c.r, &len);
            size_t size = (size_t)strtoul(line, NULL, 16);
            if (size == 0) break;
            body += skip(c.r, size);
            skip(c.r, 2); /* CRLF */
        }
    } else {
        body = skip(c.r, content_length >= 0 ? (size_t)content_length : SIZE_MAX);
    }
    rq->status = status;
    rq->body = body;
    return NULL;
}

/* A timeout per request, inside the limit. */
static void fetch_in_time(void *arg) { cg_wait_for_body(fetch, arg, timeout); }

static void limited(void *arg) { cg_semaphore_with(limit, fetch_in_time, arg); }

static void *one(cg_gen *g, void *arg) {
    (void)g;
    request *rq = arg;
    cg_exc *e = cg_try_catch(limited, rq, &cg_BaseException);
    if (e) {
        const char *msg = cg_exc_msg(e);
        snprintf(rq->error, sizeof rq->error, "%s%s%s", cg_exc_type_of(e)->name, msg && *msg ? ": " : "",
                 msg ? msg : "");
        int cancelled = cg_exc_is(e, &cg_CancelledError);
        cg_exc_unref(e);
        if (cancelled) cg_task_uncancel(cg_current_task()); /* reported, not propagated: the report follows */
    }
    return NULL;
}

typedef struct job {
    request *rq;
    size_t n;
    cg_future *all;
} job;

/* SIGINT and SIGTERM: the loop's signal handlers (loop.add_signal_handler,
 * which reads them from a signalfd and runs these as callbacks, not in
 * signal context) cancel the gather, and so every request in flight. */
static const int stop_signals[] = {SIGINT, SIGTERM};
static job *running;

static void on_stop_signal(void *sig) {
    fprintf(stderr, "signal %d: cancelling the requests in flight\n", *(const int *)sig);
    cg_future_cancel(running->all, NULL);
}

static void await_fn(void *f) { cg_await(f); }

static void *main_task(cg_gen *g, void *arg) {
    (void)g;
    job *j = arg;
    limit = cg_semaphore_new(cg_get_running_loop(), concurrency);
    cg_body *bodies = malloc(j->n * sizeof *bodies);
    if (!bodies) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    for (size_t i = 0; i < j->n; i++) bodies[i] = (cg_body){one, &j->rq[i]};
    j->all = cg_gather_bodies(bodies, j->n, 1);
    free(bodies);
    running = j;
    for (int i = 0; i < 2; i++)
        cg_loop_add_signal_handler(NULL, stop_signals[i], on_stop_signal, (void *)&stop_signals[i]);
    cg_exc *e = cg_try_catch(await_fn, j->all, &cg_CancelledError);
    cg_exc_unref(e);
    for (int i = 0; i < 2; i++) cg_loop_remove_signal_handler(NULL, stop_signals[i]);
    cg_future_unref(j->all);
    cg_semaphore_free(limit);
    return NULL;
}

static int usage(const char *prog) {
    fprintf(stderr, "usage: %s [-c CONCURRENCY] [-t TIMEOUT_MS] [-n TIMES] TARGET...\n"
                    "  TARGET: http://HOST[:PORT]/PATH, or PORT for http://127.0.0.1:PORT/\n", prog);
    return 2;
}

int main(int argc, char **argv) {
    long times = 1;
    int opt;
    while ((opt = getopt(argc, argv, "c:t:n:")) != -1) {
        switch (opt) {
        case 'c': concurrency = atol(optarg); break;
        case 't': timeout = CG_MS(atol(optarg)); break;
        case 'n': times = atol(optarg); break;
        default: return usage(argv[0]);
        }
    }
    if (optind >= argc || concurrency < 1 || times < 1 || timeout <= 0) return usage(argv[0]);
    job j = {calloc((size_t)(argc - optind) * (size_t)times, sizeof(request)), 0, NULL};
    if (!j.rq) return 1;
    for (long k = 0; k < times; k++)
        for (int i = optind; i < argc; i++) {
            if (!parse_target(argv[i], &j.rq[j.n])) {
                fprintf(stderr, "%s: not a target: %s\n", argv[0], argv[i]);
                free(j.rq);
                return usage(argv[0]);
            }
            j.n++;
        }
    cg_exc *e = NULL;
    int rc = 0;
    if (cg_run(main_task, &j, NULL, NULL, &e) != CG_RETURNED) {
        cg_exc_print(e, stderr);
        cg_exc_unref(e);
        rc = 1;
    }
    size_t ok = 0;
    for (size_t i = 0; i < j.n; i++) {
        request *rq = &j.rq[i];
        if (rq->status) {
            printf("GET http://%s:%d%s -> %d, %zu bytes\n", rq->host, rq->port, rq->path, rq->status, rq->body);
            ok++;
        } else {
            printf("GET http://%s:%d%s -> %s\n", rq->host, rq->port, rq->path, rq->error[0] ? rq->error : "not done");
        }
    }
    printf("%zu requests: %zu ok, %zu failed\n", j.n, ok, j.n - ok);
    free(j.rq);
    return rc || ok < j.n ? 1 : 0;
}
