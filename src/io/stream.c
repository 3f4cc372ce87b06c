/* stream.c: asyncio's StreamReader and StreamWriter over one fd, and
 * open_connection.
 *
 * A connection is one allocation holding the reader, the writer and the
 * fd. The reader reads on demand, in the task that asks: read(n) with an
 * empty buffer receives straight into the caller's buffer (no copy, no
 * allocation); readexactly, readline and readuntil receive into the
 * reader's buffer, which grows as a line needs and is reused. The backend's
 * ready bits (src/loop/io.c) say when the fd is known empty, so a short
 * read is never followed by a read that says EAGAIN.
 *
 * The writer sends at once when nothing is queued; what the socket does
 * not take is queued (one contiguous buffer: everything queued goes out in
 * one system call) and sent by an add_writer callback, as asyncio's
 * transport does, whether or not anybody drains. drain waits only while
 * the writer is paused (more than the high-water mark queued, until the
 * queue is below the low-water mark): with nothing queued it makes no
 * system call.
 *
 * Connection lost (an error, or close once the queue is out) is asyncio's
 * connection_lost(exc): the reader gets the exception (or EOF), drain and
 * wait_closed waiters are woken, and the fd is closed, unless a task is
 * waiting to read it: a socket is then shut down (the reader wakes and sees
 * the end) and closed when both halves are freed.
 */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "io/io.h"
#include "io/stream.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

const cg_exc_type cg_IncompleteReadError = {"IncompleteReadError", &cg_EOFError};
const cg_exc_type cg_LimitOverrunError = {"LimitOverrunError", &cg_Exception};

#define DEFAULT_LIMIT (64u * 1024)
#define MIN_ROOM 4096

/* ---------------------------------------------------------------------
 * The exceptions of streams
 * ------------------------------------------------------------------ */

typedef struct incomplete {
    size_t len, expected;
    char data[];
} incomplete;

static void payload_free(void *p) { free(p); }

/* IncompleteReadError(partial, expected): SIZE_MAX is None. */
static cg_exc *incomplete_new(const char *partial, size_t len, size_t expected) {
    char exp[32];
    if (expected == SIZE_MAX)
        snprintf(exp, sizeof exp, "undefined");
    else
        snprintf(exp, sizeof exp, "%zu", expected);
    cg_exc *e = cg_exc_newf(&cg_IncompleteReadError, "%zu bytes read on a total of %s expected bytes", len, exp);
    incomplete *p = malloc(sizeof *p + len + 1);
    if (p) {
        p->len = len;
        p->expected = expected;
        if (len) memcpy(p->data, partial, len);
        p->data[len] = 0;
    }
    cg_exc_set_payload(e, p, payload_free);
    return e;
}

static cg_exc *overrun_new(const char *msg, size_t consumed) {
    cg_exc *e = cg_exc_new(&cg_LimitOverrunError, msg);
    size_t *p = malloc(sizeof *p);
    if (p) *p = consumed;
    cg_exc_set_payload(e, p, payload_free);
    return e;
}

const void *cg_incomplete_read_partial(const cg_exc *e, size_t *len) {
    const incomplete *p = cg_exc_is(e, &cg_IncompleteReadError) ? cg_exc_payload(e) : NULL;
    if (len) *len = p ? p->len : 0;
    return p ? p->data : NULL;
}

size_t cg_incomplete_read_expected(const cg_exc *e) {
    const incomplete *p = cg_exc_is(e, &cg_IncompleteReadError) ? cg_exc_payload(e) : NULL;
    return p ? p->expected : 0;
}

size_t cg_limit_overrun_consumed(const cg_exc *e) {
    const size_t *p = cg_exc_is(e, &cg_LimitOverrunError) ? cg_exc_payload(e) : NULL;
    return p ? *p : 0;
}

/* ---------------------------------------------------------------------
 * Waiters: futures of tasks waiting for drain or for the close, each in
 * a node on the heap (not on the waiting task's stack: a compact task's
 * stack is swapped out while it waits, and wake_all reads the list)
 * ------------------------------------------------------------------ */

typedef struct waitnode {
    struct waitnode *next;
    cg_future *f;
    struct waitnode **list;
} waitnode;

static void waitnode_leave(void *p) {
    waitnode *n = p;
    for (waitnode **pp = n->list; *pp; pp = &(*pp)->next)
        if (*pp == n) {
            *pp = n->next;
            break;
        }
    cg_future_unref(n->f);
    cg__dealloc(n);
}

/* Waits on a future of its own in *list until wake_all. */
static void wait_on(cg_loop *loop, waitnode **list) {
    waitnode *n = cg__alloc(sizeof *n);
    cg_future *f = n ? cg_future_new(loop) : NULL;
    if (!f) {
        cg__dealloc(n);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
    *n = (waitnode){*list, f, list};
    *list = n;
    CG_DEFER(waitnode_leave, n);
    cg_await(f);
}

/* exc borrowed (NULL: a result). */
static void wake_all(waitnode *list, cg_exc *exc) {
    for (waitnode *n = list; n; n = n->next) {
        if (cg_future_done(n->f)) continue;
        if (exc)
            cg_future_set_exception(n->f, cg_exc_ref(exc));
        else
            cg_future_set_result(n->f, NULL);
    }
}

/* ---------------------------------------------------------------------
 * The connection
 * ------------------------------------------------------------------ */

struct cg_stream_reader {
    cg__conn *c;
    char *buf;
    size_t start, end, cap;
    size_t limit;
    int eof;
    int waiting; /* in receive's wait (or was, when that wait was cancelled) */
};

struct cg_stream_writer {
    cg__conn *c;
    char *q;
    size_t qstart, qend, qcap;
    size_t high, low;
    unsigned char closing, eof, eof_sent, cb_on, paused;
    waitnode *drainers;
};

struct cg__conn {
    cg_stream_reader r;
    cg_stream_writer w;
    cg_loop *loop;
    int fd;
    int refs;           /* the reader, the writer, the writer's callback */
    unsigned char sock; /* a socket: send/recv, shutdown */
    unsigned char lost; /* connection_lost was called */
    cg_exc *exc;        /* with this exception (owned), or NULL */
    waitnode *closers;  /* wait_closed */
    void (*on_free)(void *);
    void *on_free_arg;
};

static void conn_unref(cg__conn *c) {
    if (--c->refs > 0) return;
    if (c->fd >= 0) cg_io_close(c->fd);
    free(c->r.buf);
    free(c->w.q);
    cg_exc_unref(c->exc);
    void (*fn)(void *) = c->on_free;
    void *arg = c->on_free_arg;
    free(c);
    if (fn) fn(arg);
}

/* The writer's add_writer callback stops. */
static void writer_cb_off(cg__conn *c) {
    if (!c->w.cb_on) return;
    c->w.cb_on = 0;
    cg_loop_remove_writer(c->loop, c->fd);
    conn_unref(c);
}

/* connection_lost(exc): exc owned (NULL: a clean close). */
static void conn_lost(cg__conn *c, cg_exc *exc) {
    if (c->lost) {
        cg_exc_unref(exc);
        return;
    }
    c->refs++; /* what the wakeups below do may not free it under us */
    c->lost = 1;
    c->exc = exc;
    c->w.qstart = c->w.qend = 0;
    writer_cb_off(c);
    if (c->w.paused) {
        c->w.paused = 0;
        wake_all(c->w.drainers, exc);
    }
    wake_all(c->closers, exc);
    if (c->fd >= 0) {
        if (cg__io_waiting(c->fd, CG_IO_READ) && c->sock) {
            shutdown(c->fd, SHUT_RDWR); /* the reader wakes to the end; closed at free */
        } else {
            cg_io_close(c->fd);
            c->fd = -1;
        }
    }
    conn_unref(c);
}

static void default_opts(const cg_stream_opts *o, size_t *limit, size_t *high, size_t *low) {
    *limit = o && o->limit ? o->limit : DEFAULT_LIMIT;
    *high = o && o->high_water ? o->high_water : 64 * 1024;
    *low = o && o->low_water ? o->low_water : *high / 4;
    if (*low > *high) *low = *high;
}

cg__conn *cg__conn_new(int fd, const cg_stream_opts *opts, cg_stream_reader **r, cg_stream_writer **w) {
    cg__conn *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->loop = cg__running_loop;
    c->fd = fd;
    int proto = 0;
    socklen_t len = sizeof proto;
    c->sock = getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len) == 0;
    /* Nagle's algorithm off on a TCP connection, as asyncio's transports
     * do (base_events._set_nodelay): a reply written in two pieces is not
     * held back waiting for the peer's delayed ACK. Should it fail, the
     * connection still works, with Nagle on. */
    if (c->sock && proto == IPPROTO_TCP) {
        int one = 1;
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    c->r.c = c->w.c = c;
    default_opts(opts, &c->r.limit, &c->w.high, &c->w.low);
    if (r) *r = &c->r, c->refs++;
    if (w) *w = &c->w, c->refs++;
    return c;
}

void cg__conn_on_free(cg__conn *c, void (*fn)(void *), void *arg) {
    c->on_free = fn;
    c->on_free_arg = arg;
}

void cg_stream_open_fd(int fd, const cg_stream_opts *opts, cg_stream_reader **r, cg_stream_writer **w) {
    if (r) *r = NULL;
    if (w) *w = NULL;
    if (!r && !w) {
        close(fd);
        return;
    }
    if (!cg__conn_new(fd, opts, r, w)) {
        close(fd);
        cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    }
}

void cg_stream_reader_free(cg_stream_reader *r) {
    if (r) conn_unref(r->c);
}

void cg_stream_writer_free(cg_stream_writer *w) {
    if (!w) return;
    cg_stream_close(w);
    conn_unref(w->c);
}

/* A buffer whose bytes are [*start, *end) of *cap: at least want bytes of
 * room after *end, by moving the bytes to the front or by a bigger buffer
 * (first `initial` bytes, then doubling). MemoryError raised. */
static void make_room(char **buf, size_t *start, size_t *end, size_t *cap, size_t want, size_t initial) {
    if (*cap - *end >= want) return;
    size_t used = *end - *start;
    if (*start && *cap - used >= want) {
        memmove(*buf, *buf + *start, used);
    } else {
        size_t n = *cap ? *cap : initial;
        while (n - used < want) n *= 2;
        char *b = malloc(n);
        if (!b) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        if (used) memcpy(b, *buf + *start, used);
        free(*buf);
        *buf = b;
        *cap = n;
    }
    *start = 0;
    *end = used;
}

/* ---------------------------------------------------------------------
 * The reader
 * ------------------------------------------------------------------ */

static CG_NORETURN void raise_exc(cg__conn *c) { cg_raise(cg_exc_ref(c->exc)); }

/* What is buffered (the buffer may not exist yet). */
static const char *buffered(const cg_stream_reader *r) { return r->buf ? r->buf + r->start : ""; }

/* One receive into dst (room > 0) for the call named name: waits for at
 * least one byte; 0 at end of stream (or of the connection). */
static size_t receive(cg_stream_reader *r, char *dst, size_t room, const char *name) {
    cg__conn *c = r->c;
    /* r->waiting says a task of this reader may be waiting (it stays set
     * when that wait was cancelled: the backend then says no waiter) */
    if (r->waiting && c->fd >= 0 && cg__io_waiting(c->fd, CG_IO_READ))
        CG_RAISEF(&cg_RuntimeError, "%s() called while another coroutine is already waiting for incoming data", name);
    for (;;) {
        if (c->exc) raise_exc(c);
        if (c->fd < 0) return 0;
        r->waiting = 1;
        cg__io_enter(c->fd, CG_IO_READ);
        r->waiting = 0;
        if (c->exc) raise_exc(c);
        if (c->fd < 0) return 0;
        ssize_t n = c->sock ? recv(c->fd, dst, room, MSG_DONTWAIT) : read(c->fd, dst, room);
        if (n > 0) {
            if ((size_t)n < room) cg__io_empty(c->fd, CG_IO_READ, 1);
            return (size_t)n;
        }
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            cg__io_empty(c->fd, CG_IO_READ, 0);
            continue;
        }
        conn_lost(c, cg_oserror_new(errno));
        raise_exc(c);
    }
}

/* Receives more into the buffer (at least want bytes of room), or sets eof. */
static void fill(cg_stream_reader *r, size_t want, const char *name) {
    if (r->start == r->end) r->start = r->end = 0;
    make_room(&r->buf, &r->start, &r->end, &r->cap, want < MIN_ROOM ? MIN_ROOM : want, 2 * MIN_ROOM);
    size_t n = receive(r, r->buf + r->end, r->cap - r->end, name);
    if (n == 0) r->eof = 1;
    r->end += n;
}

size_t cg_stream_read(cg_stream_reader *r, void *buf, size_t n) {
    if (r->c->exc) raise_exc(r->c);
    if (n == 0) return 0;
    size_t have = r->end - r->start;
    if (have) {
        if (n > have) n = have;
        memcpy(buf, r->buf + r->start, n);
        r->start += n;
        return n;
    }
    if (r->eof) return 0;
    n = receive(r, buf, n, "read");
    if (n == 0) r->eof = 1;
    return n;
}

void cg_stream_readexactly(cg_stream_reader *r, void *buf, size_t n) {
    if (r->c->exc) raise_exc(r->c);
    if (n == 0) return;
    while (r->end - r->start < n) {
        if (r->eof) {
            cg_exc *e = incomplete_new(buffered(r), r->end - r->start, n);
            r->start = r->end = 0;
            cg_raise(e);
        }
        fill(r, n - (r->end - r->start), "readexactly");
    }
    memcpy(buf, r->buf + r->start, n);
    r->start += n;
}

/* The first sep[0..m) in p[0..n), or NULL. glibc's memmem prepares a
 * shift table for every needle of three bytes or more (a few hundred
 * instructions for one short head); a short separator is found by memchr
 * on its first byte and a compare, at most m times the work per byte. */
static const char *find_sep(const char *p, size_t n, const char *sep, size_t m) {
    if (m > 16) return memmem(p, n, sep, m);
    const char *end = p + n;
    while ((size_t)(end - p) >= m) {
        const char *q = memchr(p, sep[0], (size_t)(end - p) - m + 1);
        if (!q) return NULL;
        if (memcmp(q + 1, sep + 1, m - 1) == 0) return q;
        p = q + 1;
    }
    return NULL;
}

enum { UNTIL_OK, UNTIL_EOF, UNTIL_NOT_FOUND, UNTIL_TOO_LONG };

/* readuntil's loop: UNTIL_OK with *len; UNTIL_EOF (the buffer is the
 * partial); UNTIL_NOT_FOUND / UNTIL_TOO_LONG with *len the count consumed. */
static int until(cg_stream_reader *r, const char *sep, size_t seplen, size_t *len) {
    size_t offset = 0;
    for (;;) {
        size_t buflen = r->end - r->start;
        if (buflen >= offset + seplen) {
            const char *p = find_sep(r->buf + r->start + offset, buflen - offset, sep, seplen);
            if (p) {
                size_t isep = (size_t)(p - (r->buf + r->start));
                if (isep > r->limit) {
                    *len = isep;
                    return UNTIL_TOO_LONG;
                }
                *len = isep + seplen;
                return UNTIL_OK;
            }
            offset = buflen + 1 - seplen;
            if (offset > r->limit) {
                *len = offset;
                return UNTIL_NOT_FOUND;
            }
        }
        if (r->eof) return UNTIL_EOF;
        fill(r, 0, "readuntil");
    }
}

static const char *const overrun_msg[] = {
    [UNTIL_NOT_FOUND] = "Separator is not found, and chunk exceed the limit",
    [UNTIL_TOO_LONG] = "Separator is found, but chunk is longer than limit",
};

const char *cg_stream_readuntil(cg_stream_reader *r, const void *sep, size_t seplen, size_t *len) {
    if (seplen == 0) CG_RAISE(&cg_ValueError, "Separator should be at least one-byte string");
    if (r->c->exc) raise_exc(r->c);
    size_t n;
    int st = until(r, sep, seplen, &n);
    if (st == UNTIL_EOF) {
        cg_exc *e = incomplete_new(buffered(r), r->end - r->start, SIZE_MAX);
        r->start = r->end = 0;
        cg_raise(e);
    }
    if (st != UNTIL_OK) cg_raise(overrun_new(overrun_msg[st], n));
    const char *line = r->buf + r->start;
    r->start += n;
    *len = n;
    return line;
}

const char *cg_stream_readline(cg_stream_reader *r, size_t *len) {
    if (r->c->exc) raise_exc(r->c);
    size_t n;
    int st = until(r, "\n", 1, &n);
    const char *line = buffered(r);
    if (st == UNTIL_EOF) { /* the partial line, or nothing */
        *len = r->end - r->start;
        r->start = r->end;
        return line;
    }
    if (st != UNTIL_OK) {
        /* asyncio drops the line up to its separator when it is there,
         * else the whole buffer */
        if (r->end - r->start > n && r->buf[r->start + n] == '\n')
            r->start += n + 1;
        else
            r->start = r->end;
        CG_RAISE(&cg_ValueError, overrun_msg[st]);
    }
    r->start += n;
    *len = n;
    return line;
}

int cg_stream_at_eof(const cg_stream_reader *r) { return r->eof && r->start == r->end; }

/* ---------------------------------------------------------------------
 * The writer
 * ------------------------------------------------------------------ */

/* The write side is done: shut down (a socket) or the connection ends. */
static void write_side_done(cg__conn *c) {
    if (c->w.closing) {
        conn_lost(c, NULL);
    } else if (c->w.eof && !c->w.eof_sent) {
        c->w.eof_sent = 1;
        if (c->sock)
            shutdown(c->fd, SHUT_WR);
        else
            conn_lost(c, NULL);
    }
}

/* One system call with what is queued: 0, or -1 when the connection was
 * lost. */
static int flush(cg__conn *c) {
    cg_stream_writer *w = &c->w;
    size_t n = w->qend - w->qstart;
    ssize_t r = c->sock ? send(c->fd, w->q + w->qstart, n, MSG_DONTWAIT | MSG_NOSIGNAL) : cg__write_nosigpipe(c->fd, w->q + w->qstart, n);
    if (r < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
        conn_lost(c, cg_oserror_new(errno));
        return -1;
    }
    w->qstart += (size_t)r;
    if (w->qstart == w->qend) w->qstart = w->qend = 0;
    return 0;
}

static void on_writable(void *arg) {
    cg__conn *c = arg;
    cg_stream_writer *w = &c->w;
    if (flush(c) < 0) return;
    size_t queued = w->qend - w->qstart;
    if (w->paused && queued <= w->low) {
        w->paused = 0;
        wake_all(w->drainers, NULL);
    }
    if (queued == 0) {
        c->refs++;
        writer_cb_off(c);
        write_side_done(c);
        conn_unref(c);
    }
}

static void enqueue(cg__conn *c, const char *p, size_t n) {
    cg_stream_writer *w = &c->w;
    make_room(&w->q, &w->qstart, &w->qend, &w->qcap, n, MIN_ROOM);
    memcpy(w->q + w->qend, p, n);
    w->qend += n;
    if (!w->cb_on) {
        if (cg_loop_add_writer(c->loop, c->fd, on_writable, c) < 0) {
            int err = errno;
            w->qstart = w->qend = 0;
            if (err == ENOMEM) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
            conn_lost(c, cg_oserror_new(err));
            return;
        }
        w->cb_on = 1;
        c->refs++;
    }
    if (!w->paused && w->qend - w->qstart > w->high) w->paused = 1;
}

void cg_stream_write(cg_stream_writer *w, const void *buf, size_t n) {
    cg__conn *c = w->c;
    if (w->eof) CG_RAISE(&cg_RuntimeError, "Cannot call write() after write_eof()");
    if (n == 0 || c->lost || w->closing) return; /* asyncio drops it once the connection is lost */
    const char *p = buf;
    if (w->qend == w->qstart) {
        ssize_t r;
        do r = c->sock ? send(c->fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : cg__write_nosigpipe(c->fd, p, n);
        while (r < 0 && errno == EINTR);
        if (r < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                conn_lost(c, cg_oserror_new(errno));
                return;
            }
            r = 0;
        }
        if ((size_t)r == n) return;
        p += r;
        n -= (size_t)r;
    }
    enqueue(c, p, n);
}

void cg_stream_drain(cg_stream_writer *w) {
    cg__conn *c = w->c;
    if (c->exc && c->r.c) raise_exc(c); /* the reader's exception */
    if (w->closing || c->lost) cg_sleep(0);
    if (c->lost) CG_RAISE(&cg_ConnectionResetError, "Connection lost");
    if (!w->paused) return;
    wait_on(c->loop, &w->drainers);
}

void cg_stream_write_eof(cg_stream_writer *w) {
    if (w->closing || w->eof || w->c->lost) return;
    w->eof = 1;
    if (w->qend == w->qstart) write_side_done(w->c);
}

void cg_stream_close(cg_stream_writer *w) {
    if (w->closing) return;
    w->closing = 1;
    if (w->qend == w->qstart) conn_lost(w->c, NULL);
}

int cg_stream_is_closing(const cg_stream_writer *w) { return w->closing || w->c->lost; }

void cg_stream_wait_closed(cg_stream_writer *w) {
    cg__conn *c = w->c;
    if (!c->lost) wait_on(c->loop, &c->closers);
    if (c->exc) raise_exc(c);
}

int cg_stream_peername(const cg_stream_writer *w, struct sockaddr_storage *addr, socklen_t *len) {
    *len = sizeof *addr;
    return getpeername(w->c->fd, (struct sockaddr *)addr, len);
}

int cg_stream_sockname(const cg_stream_writer *w, struct sockaddr_storage *addr, socklen_t *len) {
    *len = sizeof *addr;
    return getsockname(w->c->fd, (struct sockaddr *)addr, len);
}

int cg_stream_fileno(const cg_stream_writer *w) { return w->c->fd; }

size_t cg_stream_buffer_size(const cg_stream_writer *w) { return w->qend - w->qstart; }

/* ---------------------------------------------------------------------
 * open_connection
 * ------------------------------------------------------------------ */

typedef struct attempt {
    int fd;
    struct addrinfo *ai;
} attempt;

static void attempt_cleanup(void *p) {
    attempt *a = p;
    if (a->fd >= 0) cg_io_close(a->fd);
    if (a->ai) freeaddrinfo(a->ai);
}

typedef struct connect_arg {
    int fd;
    const struct addrinfo *ai;
} connect_arg;

static void do_connect(void *p) {
    connect_arg *a = p;
    cg_sock_connect(a->fd, a->ai->ai_addr, a->ai->ai_addrlen);
}

/* cg__resolve (stream.h). */
struct addrinfo *cg__resolve(const char *host, int port, int socktype, int passive) {
    char serv[16];
    snprintf(serv, sizeof serv, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = socktype,
                             .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)};
    struct addrinfo *ai = NULL;
    int err = getaddrinfo(host, serv, &hints, &ai);
    if (err == 0) return ai;
    hints.ai_flags &= ~AI_NUMERICHOST;
    return cg_getaddrinfo(host, serv, &hints); /* a name: on the DNS workers */
}

/* What asyncio raises when every address failed: the one error, or one of
 * them when they all read the same, else OSError('Multiple exceptions:
 * ...'). Takes the references. */
static CG_NORETURN void raise_connect_errors(cg_exc **errs, size_t n) {
    int same = 1;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(cg_exc_msg(errs[i]) ? cg_exc_msg(errs[i]) : "", cg_exc_msg(errs[0]) ? cg_exc_msg(errs[0]) : ""))
            same = 0;
        total += strlen(cg_exc_msg(errs[i]) ? cg_exc_msg(errs[i]) : "") + 2;
    }
    if (same) {
        for (size_t i = 1; i < n; i++) cg_exc_unref(errs[i]);
        cg_raise(errs[0]);
    }
    char *msg = malloc(total + 32);
    if (!msg) cg_raise(errs[0]);
    strcpy(msg, "Multiple exceptions: ");
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(msg, ", ");
        strcat(msg, cg_exc_msg(errs[i]) ? cg_exc_msg(errs[i]) : "");
        cg_exc_unref(errs[i]);
    }
    cg_exc *e = cg_exc_new(&cg_OSError, msg);
    free(msg);
    cg_raise(e);
}

/* Connects a socket to one of the addresses in turn: its fd (owned by
 * the caller). */
static int connect_any(struct addrinfo *list) {
    attempt a = {-1, list};
    CG_DEFER(attempt_cleanup, &a);
    cg_exc *errs[16];
    size_t nerr = 0;
    for (struct addrinfo *ai = list; ai; ai = ai->ai_next) {
        a.fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        cg_exc *e;
        if (a.fd < 0) {
            e = cg_oserror_new(errno);
        } else {
            connect_arg ca = {a.fd, ai};
            e = cg_try_catch(do_connect, &ca, &cg_OSError);
            if (!e) {
                int fd = a.fd;
                a.fd = -1;
                return fd;
            }
            cg_io_close(a.fd);
            a.fd = -1;
        }
        if (nerr < sizeof errs / sizeof errs[0])
            errs[nerr++] = e;
        else
            cg_exc_unref(e);
    }
    if (nerr == 0) CG_RAISE(&cg_OSError, "getaddrinfo() returned empty list");
    raise_connect_errors(errs, nerr);
}

void cg_open_connection(const char *host, int port, const cg_stream_opts *opts, cg_stream_reader **r,
                        cg_stream_writer **w) {
    int fd = connect_any(cg__resolve(host, port, SOCK_STREAM, 0));
    cg_stream_open_fd(fd, opts, r, w);
}

void cg_open_unix_connection(const char *path, const cg_stream_opts *opts, cg_stream_reader **r,
                             cg_stream_writer **w) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) CG_RAISE(&cg_OSError, "AF_UNIX path too long");
    strcpy(sa.sun_path, path);
    attempt a = {socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), NULL};
    if (a.fd < 0) cg_raise_oserror(errno);
    CG_DEFER(attempt_cleanup, &a);
    cg_sock_connect(a.fd, (struct sockaddr *)&sa, sizeof sa);
    int fd = a.fd;
    a.fd = -1;
    cg_stream_open_fd(fd, opts, r, w);
}
