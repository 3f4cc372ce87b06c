/* chat-server: a line-based chat on 127.0.0.1:PORT, one task per client,
 * on cogen's streams. Every line a client sends goes to every other client
 * as "client N: line".
 *
 * Backpressure, per client: what is to be sent to a client waits in its
 * own bounded queue (QUEUE_MAX lines), which a writer task of its own
 * empties with write and drain (the writer's high-water mark is small and
 * so is the socket's send buffer, so a client that does not read makes
 * drain wait). A sender whose line finds a queue full waits for room (the
 * chat goes at the pace of its readers), but not for long: a client whose
 * drain has waited DROP_MS, or whose queue stays full that long, has
 * stopped reading. It is dropped (its connection closed, "client N
 * dropped: ..." printed), never buffered without bound, and the others go
 * on receiving.
 *
 *     chat-server PORT [DROP_MS]      (default 2000 ms)
 *
 * Runs until SIGINT or SIGTERM, then stops listening, closes every client
 * and exits 0 ("shut down" on stdout). Try it with a few `nc 127.0.0.1
 * PORT`; tests/net_examples.py is its test. */
#define _GNU_SOURCE
#include <cogen_io.h>

#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define QUEUE_MAX 64            /* lines waiting for one client */
#define SNDBUF (32 * 1024)      /* the socket's send buffer */
#define HIGH_WATER (16 * 1024)  /* the writer's */

static cg_ns drop_after = CG_MS(2000);

/* A line to send, shared by the queues it is in. */
typedef struct line {
    int refs;
    size_t len;
    char text[];
} line;

static void line_unref(void *p, void *ud) {
    (void)ud;
    line *l = p;
    if (--l->refs == 0) free(l);
}

typedef struct member {
    struct member *next, **prevp;
    int refs;        /* the list's, and broadcasts' in progress */
    int id;
    cg_stream_reader *r;
    cg_stream_writer *w;
    cg_queue *out;
    cg_task *reader; /* the connection's task (the server's callback) */
    cg_task *writer;
    int dropped;
} member;

static member *members;
static int next_id = 1;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void member_unref(member *m) {
    if (--m->refs) return;
    cg_queue_free(m->out);
    free(m);
}

/* Stops serving m: its connection closes, its tasks end. */
static void drop(member *m, const char *why) {
    if (m->dropped) return;
    m->dropped = 1;
    say("client %d dropped: %s", m->id, why);
    cg_stream_close(m->w);
    cg_queue_shutdown(m->out, 1); /* a sender waiting for room stops waiting */
    if (m->reader != cg_current_task()) cg_task_cancel(m->reader, NULL);
    if (m->writer != cg_current_task()) cg_task_cancel(m->writer, NULL);
}

/* The recipients of a line, held while it is handed out (a sender that
 * waits for room in one queue may see others leave meanwhile). */
typedef struct recipients {
    size_t n;
    member **m;
    line *l;
} recipients;

static void recipients_release(void *p) {
    recipients *rc = p;
    for (size_t i = 0; i < rc->n; i++) member_unref(rc->m[i]);
    free(rc->m);
    line_unref(rc->l, NULL);
}

typedef struct put_arg {
    cg_queue *q;
    line *l;
} put_arg;

static void put(void *arg) {
    put_arg *p = arg;
    cg_queue_put(p->q, p->l);
}

static void put_in_time(void *arg) { cg_timeout_call(drop_after, put, arg); }

static void broadcast(member *from, const char *text, size_t len) {
    recipients rc = {0, NULL, malloc(sizeof(line) + len)};
    if (!rc.l) return;
    rc.l->refs = 1;
    rc.l->len = len;
    memcpy(rc.l->text, text, len);
    size_t count = 0;
    for (member *m = members; m; m = m->next) count++;
    rc.m = malloc((count ? count : 1) * sizeof *rc.m);
    if (!rc.m) {
        free(rc.l);
        return;
    }
    for (member *m = members; m; m = m->next)
        if (m != from && !m->dropped) {
            m->refs++;
            rc.m[rc.n++] = m;
        }
    CG_DEFER(recipients_release, &rc);
    for (size_t i = 0; i < rc.n; i++) {
        member *m = rc.m[i];
        if (m->dropped) continue;
        rc.l->refs++;
        put_arg p = {m->out, rc.l};
        cg_exc *e = cg_queue_full(m->out) ? cg_try_catch(put_in_time, &p, &cg_Exception) : (put(&p), NULL);
        if (!e) continue;
        rc.l->refs--; /* not queued */
        if (cg_exc_is(e, &cg_TimeoutError)) {
            char why[80];
            snprintf(why, sizeof why, "its queue stayed full for %lld ms", (long long)(drop_after / 1000000));
            drop(m, why);
        } else if (!cg_exc_is(e, &cg_QueueShutDown)) { /* (dropped meanwhile) */
            cg_raise(e);
        }
        cg_exc_unref(e);
    }
}

static void drain(void *w) { cg_stream_drain(w); }
static void drain_in_time(void *w) { cg_timeout_call(drop_after, drain, w); }

/* The writer: the queue's lines out, each drained within drop_after. */
static void write_lines(void *arg) {
    member *m = arg;
    for (;;) {
        line *l = cg_queue_get(m->out);
        cg_stream_write(m->w, l->text, l->len);
        line_unref(l, NULL);
        cg_exc *e = cg_try_catch(drain_in_time, m->w, &cg_TimeoutError);
        if (e) {
            cg_exc_unref(e);
            char why[80];
            snprintf(why, sizeof why, "not reading for %lld ms", (long long)(drop_after / 1000000));
            drop(m, why);
            return;
        }
    }
}

static void *writer_task(cg_gen *g, void *arg) {
    (void)g;
    /* a lost connection (OSError) ends the writer, and the reader sees it
     * too; so does the queue shut down (QueueShutDown) when it leaves */
    cg_exc *e = cg_try_catch(write_lines, arg, &cg_Exception);
    cg_exc_unref(e);
    return NULL;
}

/* The reader: each line the client sends, to the others. */
static void read_lines(void *arg) {
    member *m = arg;
    cg_stream_reader *r = m->r;
    char prefix[32];
    int plen = snprintf(prefix, sizeof prefix, "client %d: ", m->id);
    for (;;) {
        size_t n;
        const char *text = cg_stream_readline(r, &n);
        if (n == 0) return; /* the client left */
        char *msg = malloc((size_t)plen + n + 1);
        if (!msg) return;
        memcpy(msg, prefix, (size_t)plen);
        memcpy(msg + plen, text, n);
        size_t len = (size_t)plen + n;
        if (msg[len - 1] != '\n') msg[len++] = '\n'; /* a last line without one */
        broadcast(m, msg, len);
        free(msg);
    }
}

static void await_fn(void *f) { cg_await(f); }

static void on_client(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    member *m = calloc(1, sizeof *m);
    if (!m) return;
    m->r = r;
    m->id = next_id++;
    m->refs = 1;
    m->w = w;
    m->reader = cg_current_task();
    m->out = cg_queue_new(cg_get_running_loop(), QUEUE_MAX);
    cg_queue_set_drop(m->out, line_unref, NULL);
    int buf = SNDBUF;
    setsockopt(cg_stream_fileno(w), SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    m->next = members;
    if (members) members->prevp = &m->next;
    m->prevp = &members;
    members = m;
    say("client %d connected", m->id);
    char hello[64];
    int n = snprintf(hello, sizeof hello, "welcome, you are client %d\n", m->id);
    cg_stream_write(w, hello, (size_t)n);
    m->writer = cg_create_task(writer_task, m, NULL);

    cg_exc *e = cg_try_catch(read_lines, m, &cg_BaseException);
    if (e && cg_exc_is(e, &cg_CancelledError)) cg_task_uncancel(m->reader); /* dropped, or shut down */
    else if (e && !m->dropped) {
        char what[160];
        cg_exc_repr(e, what, sizeof what);
        say("client %d: %s", m->id, what);
    }
    cg_exc_unref(e);

    *m->prevp = m->next;
    if (m->next) m->next->prevp = m->prevp;
    cg_task_cancel(m->writer, NULL);
    cg_exc *we = cg_try_catch(await_fn, cg_task_future(m->writer), &cg_BaseException);
    cg_exc_unref(we);
    cg_future_unref(cg_task_future(m->writer));
    if (!m->dropped) say("client %d left", m->id);
    cg_queue_shutdown(m->out, 1);
    member_unref(m);
}

/* SIGINT and SIGTERM: the loop's signal handlers (loop.add_signal_handler,
 * which reads them from a signalfd and runs these as callbacks, not in
 * signal context) complete the future the main task awaits, with the
 * signal's number. */
static const int stop_signals[] = {SIGINT, SIGTERM};
static cg_future *stop;

static void on_stop_signal(void *arg) {
    int sig = *(const int *)arg;
    if (!cg_future_done(stop)) cg_future_set_result(stop, (void *)(intptr_t)sig);
}

static void *main_task(cg_gen *g, void *arg) {
    (void)g;
    int port = *(int *)arg;
    cg_server_opts opts = {.stream = {.high_water = HIGH_WATER}};
    cg_server *srv = cg_start_server(on_client, NULL, "127.0.0.1", port, &opts);
    stop = cg_future_new(cg_get_running_loop());
    if (!stop) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    for (int i = 0; i < 2; i++)
        cg_loop_add_signal_handler(NULL, stop_signals[i], on_stop_signal, (void *)&stop_signals[i]);
    say("listening on 127.0.0.1:%d", cg_server_port(srv)); /* (caught from here on) */
    int sig = (int)(intptr_t)cg_await(stop);
    for (int i = 0; i < 2; i++) cg_loop_remove_signal_handler(NULL, stop_signals[i]);
    cg_future_unref(stop);
    say("signal %d: shutting down", sig);
    cg_server_close(srv); /* no new clients */
    for (member *m = members; m; m = m->next) cg_task_cancel(m->reader, NULL);
    cg_server_wait_closed(srv); /* every client's task done */
    cg_server_free(srv);
    say("shut down");
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [DROP_MS]\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    if (argc > 2) drop_after = CG_MS(atol(argv[2]));
    cg_exc *e = NULL;
    if (cg_run(main_task, &port, NULL, NULL, &e) != CG_RETURNED) {
        cg_exc_print(e, stderr);
        cg_exc_unref(e);
        return 1;
    }
    return 0;
}
