/* server.c: start_server and start_unix_server, as asyncio's Server.
 *
 * Each listening socket has an accepting task: it accepts until the
 * backlog is empty (edge-triggered: the backend's ready bits say when),
 * yielding to the loop after `backlog` connections in a row as asyncio's
 * _accept_connection does, and starts a task per connection. Out of fds
 * (EMFILE, ENFILE, ENOBUFS, ENOMEM) it reports 'socket.accept() out of
 * system resource' to the loop's exception handler and sleeps
 * accept_retry_delay (asyncio's 1 s) before it accepts again: no busy
 * loop, and the connections already there keep being served.
 */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "io/io.h"
#include "io/stream.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MAX_LISTEN 8

typedef struct waitnode {
    struct waitnode *next;
    cg_future *f;
    cg_server *s;
} waitnode;

typedef struct conn_arg conn_arg;

typedef struct listener {
    cg_server *s;
    int fd;
    cg_task *task;
} listener;

struct cg_server {
    cg_client_connected cb;
    void *arg;
    cg_server_opts opts;
    cg_ns retry_delay;
    listener ls[MAX_LISTEN];
    int n;
    unsigned char closed, freed;
    size_t active;         /* connections whose task has not ended */
    conn_arg *conns;       /* their list */
    waitnode *waiters;     /* wait_closed */
    cg_future *forever;    /* serve_forever's */
};

static void maybe_free(cg_server *s) {
    if (s->freed && s->active == 0 && !s->waiters) free(s);
}

/* Server._wakeup: closed and no connection left. */
static void maybe_wake(cg_server *s) {
    if (!s->closed || s->active) return;
    for (waitnode *n = s->waiters; n; n = n->next)
        if (!cg_future_done(n->f)) cg_future_set_result(n->f, NULL);
}

/* ---------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------ */

struct conn_arg {
    cg_server *s;
    cg_stream_reader *r;
    cg_stream_writer *w;
    conn_arg *next, **pprev;
};

static void conn_free(void *p) {
    conn_arg *a = p;
    cg_stream_reader_free(a->r);
    cg_stream_writer_free(a->w);
}

static void *conn_body(cg_gen *g, void *p) {
    (void)g;
    conn_arg *a = p;
    CG_DEFER(conn_free, a);
    a->s->cb(a->r, a->w, a->s->arg);
    return NULL;
}

static void conn_done(cg_future *f, void *p) {
    conn_arg *a = p;
    cg_server *s = a->s;
    if (!cg_future_cancelled(f)) {
        cg_exc *e = cg_future_exception(f);
        if (e) {
            cg_loop_context ctx = {.message = "Unhandled exception in client_connected_cb", .exception = e};
            cg_loop_call_exception_handler(cg_future_loop(f), &ctx);
        }
    }
    cg_future_unref(f);
    if (a->next) a->next->pprev = a->pprev;
    *a->pprev = a->next;
    free(a);
    s->active--;
    maybe_wake(s);
    maybe_free(s);
}

static void start_connection(cg_server *s, int fd) {
    conn_arg *a = malloc(sizeof *a);
    if (!a || !cg__conn_new(fd, &s->opts.stream, &a->r, &a->w)) {
        free(a);
        close(fd);
        return;
    }
    a->s = s;
    cg_task_opts to = {.stack_size = s->opts.stack_size};
    cg_task *t = cg_task_new(cg__running_loop, conn_body, a, &to);
    if (!t) {
        cg_stream_reader_free(a->r);
        cg_stream_writer_free(a->w);
        free(a);
        return;
    }
    s->active++;
    a->next = s->conns;
    if (a->next) a->next->pprev = &a->next;
    a->pprev = &s->conns;
    s->conns = a;
    cg_future_add_done_callback(cg_task_future(t), conn_done, a);
}

/* ---------------------------------------------------------------------
 * Accepting
 * ------------------------------------------------------------------ */

static void *accept_body(cg_gen *g, void *p) {
    (void)g;
    listener *l = p;
    cg_server *s = l->s;
    int in_a_row = 0;
    for (;;) {
        cg__io_enter(l->fd, CG_IO_READ);
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd >= 0) {
            start_connection(s, fd);
            if (++in_a_row >= s->opts.backlog) {
                in_a_row = 0;
                cg_sleep(0);
            }
            continue;
        }
        in_a_row = 0;
        int err = errno;
        if (err == EINTR || err == ECONNABORTED) continue;
        if (err == EAGAIN || err == EWOULDBLOCK) {
            cg__io_empty(l->fd, CG_IO_READ, 0);
            continue;
        }
        cg_exc *e = cg_oserror_new(err);
        int resource = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
        cg_loop_context ctx = {.message = resource ? "socket.accept() out of system resource" : "Error on accept()",
                               .exception = e};
        cg_loop_call_exception_handler(cg__running_loop, &ctx);
        cg_exc_unref(e);
        cg_sleep(s->retry_delay);
    }
    return NULL;
}

/* ---------------------------------------------------------------------
 * Listening
 * ------------------------------------------------------------------ */

typedef struct building {
    cg_server *s;
    struct addrinfo *ai;
} building;

static void building_cleanup(void *p) {
    building *b = p;
    if (b->ai) freeaddrinfo(b->ai);
    if (!b->s) return;
    for (int i = 0; i < b->s->n; i++) cg_io_close(b->s->ls[i].fd);
    free(b->s);
}

static cg_server *server_new(cg_client_connected cb, void *arg, const cg_server_opts *opts) {
    cg_server *s = calloc(1, sizeof *s);
    if (!s) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    s->cb = cb;
    s->arg = arg;
    if (opts) s->opts = *opts;
    if (s->opts.backlog <= 0) s->opts.backlog = 100;
    s->retry_delay = s->opts.accept_retry_delay > 0 ? s->opts.accept_retry_delay : CG_SEC(1);
    return s;
}

/* asyncio's OSError(err, 'error while attempting to bind on address %r:
 * %s' % (sa, strerror.lower())). */
static CG_NORETURN void bind_failed(int err, const struct sockaddr *sa, socklen_t len) {
    char a[200], se[128], msg[400];
    cg__addr_repr(sa, len, a, sizeof a);
    snprintf(se, sizeof se, "%s", strerror(err));
    for (char *c = se; *c; c++)
        if (*c >= 'A' && *c <= 'Z') *c = (char)(*c - 'A' + 'a');
    snprintf(msg, sizeof msg, "[Errno %d] error while attempting to bind on address %s: %s", err, a, se);
    cg_raise(cg_oserror_new_msg(NULL, err, msg));
}

/* A listening socket on sa, added to s. */
static void listen_on(cg_server *s, int family, const struct sockaddr *sa, socklen_t len) {
    if (s->n == MAX_LISTEN) return;
    int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) cg_raise_oserror(errno);
    s->ls[s->n++].fd = fd; /* closed by building_cleanup on failure */
    int one = 1;
    if (family != AF_UNIX) {
        if (s->opts.reuse_address >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (s->opts.reuse_port > 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
            cg_raise_oserror(errno);
        if (family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (bind(fd, sa, len) < 0) bind_failed(errno, sa, len);
    if (listen(fd, s->opts.backlog) < 0) cg_raise_oserror(errno);
}

static void start_serving(cg_server *s) {
    for (int i = 0; i < s->n; i++) {
        s->ls[i].s = s;
        s->ls[i].task = cg_create_task(accept_body, &s->ls[i], NULL);
    }
}

cg_server *cg_start_server(cg_client_connected cb, void *arg, const char *host, int port, const cg_server_opts *opts) {
    building b = {server_new(cb, arg, opts), NULL};
    CG_DEFER(building_cleanup, &b);
    b.ai = cg__resolve(host, port, SOCK_STREAM, 1);
    for (struct addrinfo *ai = b.ai; ai; ai = ai->ai_next) {
        int dup = 0; /* getaddrinfo may list an address twice */
        for (struct addrinfo *p = b.ai; p != ai; p = p->ai_next)
            if (p->ai_addrlen == ai->ai_addrlen && !memcmp(p->ai_addr, ai->ai_addr, ai->ai_addrlen)) dup = 1;
        if (!dup) listen_on(b.s, ai->ai_family, ai->ai_addr, ai->ai_addrlen);
    }
    start_serving(b.s);
    cg_server *s = b.s;
    b.s = NULL;
    return s;
}

cg_server *cg_start_unix_server(cg_client_connected cb, void *arg, const char *path, const cg_server_opts *opts) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) CG_RAISE(&cg_OSError, "AF_UNIX path too long");
    strcpy(sa.sun_path, path);
    building b = {server_new(cb, arg, opts), NULL};
    CG_DEFER(building_cleanup, &b);
    listen_on(b.s, AF_UNIX, (struct sockaddr *)&sa, sizeof sa);
    start_serving(b.s);
    cg_server *s = b.s;
    b.s = NULL;
    return s;
}

int cg_server_port(const cg_server *s) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (s->n == 0 || getsockname(s->ls[0].fd, (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* ---------------------------------------------------------------------
 * Closing
 * ------------------------------------------------------------------ */

void cg_server_close(cg_server *s) {
    if (s->closed) return;
    s->closed = 1;
    for (int i = 0; i < s->n; i++) {
        if (s->ls[i].task) {
            cg_task_cancel(s->ls[i].task, NULL);
            cg_future_unref(cg_task_future(s->ls[i].task));
            s->ls[i].task = NULL;
        }
        cg_io_close(s->ls[i].fd);
    }
    s->n = 0;
    if (s->forever && !cg_future_done(s->forever)) cg_future_cancel(s->forever, NULL);
    maybe_wake(s);
}

void cg_server_close_clients(cg_server *s) {
    for (conn_arg *a = s->conns; a; a = a->next) cg_stream_close(a->w);
}

static void leave(void *p) {
    waitnode *n = p;
    cg_server *s = n->s;
    for (waitnode **pp = &s->waiters; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    cg_future_unref(n->f);
    cg__dealloc(n);
    maybe_free(s);
}

/* The waiter's node is on the heap, not on its stack: a compact task's
 * stack is swapped out while it waits, and the close reads the list. */
void cg_server_wait_closed(cg_server *s) {
    if (s->closed && s->active == 0) return;
    waitnode *n = cg__alloc(sizeof *n);
    cg_future *f = n ? cg_future_new(cg__running_loop) : NULL;
    if (!f) {
        cg__dealloc(n);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    *n = (waitnode){s->waiters, f, s};
    s->waiters = n;
    CG_DEFER(leave, n);
    cg_await(f);
}

/* The server's repr, as asyncio's Server.__repr__ with its sockets. */
static void server_repr(const cg_server *s, char *buf, size_t size) {
    size_t k = (size_t)snprintf(buf, size, "<Server sockets=(");
    for (int i = 0; i < s->n && k < size; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        char a[200] = "";
        int type = SOCK_STREAM;
        if (getsockname(s->ls[i].fd, (struct sockaddr *)&ss, &len) == 0) cg__addr_repr((struct sockaddr *)&ss, len, a, sizeof a);
        int proto = ss.ss_family == AF_UNIX ? 0 : 6;
        k += (size_t)snprintf(buf + k, size - k, "<asyncio.TransportSocket fd=%d, family=%d, type=%d, proto=%d, laddr=%s>%s",
                              s->ls[i].fd, ss.ss_family, type, proto, a, s->n == 1 ? "," : i + 1 < s->n ? ", " : "");
    }
    if (k < size) snprintf(buf + k, size - k, ")>");
}

static void forever_done(void *p) {
    cg_server *s = p;
    cg_future_unref(s->forever);
    s->forever = NULL;
}

static void close_and_wait(void *p) {
    cg_server_close(p);
    cg_server_wait_closed(p);
}

static void await_forever(void *p) { cg_await(((cg_server *)p)->forever); }

void cg_server_serve_forever(cg_server *s) {
    char repr[1024];
    if (s->forever) {
        server_repr(s, repr, sizeof repr);
        CG_RAISEF(&cg_RuntimeError, "server %s is already being awaited on serve_forever()", repr);
    }
    if (s->closed) {
        server_repr(s, repr, sizeof repr);
        CG_RAISEF(&cg_RuntimeError, "server %s is closed", repr);
    }
    s->forever = cg_future_new(cg__running_loop);
    if (!s->forever) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    CG_DEFER(forever_done, s);
    cg_exc *e = cg_try_catch(await_forever, s, &cg_CancelledError);
    if (e) {
        /* cancelled: close and wait, then the CancelledError goes on */
        cg_exc *e2 = cg_try_catch(close_and_wait, s, &cg_BaseException);
        if (e2) {
            cg_exc_unref(e);
            cg_raise(e2);
        }
        cg_raise(e);
    }
}

void cg_server_free(cg_server *s) {
    if (!s) return;
    cg_server_close(s);
    s->freed = 1;
    maybe_free(s);
}
