/* io.c: the loop's I/O backend, on epoll.
 *
 * Each fd the loop sees has a record (cg__io), kept by fd number for the
 * loop's lifetime, and is registered with epoll once, the first time
 * something waits on it, for both directions, edge-triggered: no
 * epoll_ctl per wait. The record keeps what epoll has said since in user
 * space: a direction is "ready" from an edge until an operation on the fd
 * finds it empty (EAGAIN, or a short read or write), and an operation
 * waits only then. A task that waits is the fd's waiter itself: the edge
 * schedules its step (no future, no callback in between), so a wait costs
 * no system call beyond the loop's epoll_wait, which reports every fd
 * ready at once.
 *
 * Waiters of other kinds go the slow way: an async generator's body (whose
 * awaits go through its driver) waits on a future the edge completes, and
 * add_reader/add_writer callbacks make the fd level-triggered, as asyncio's
 * are (an EPOLL_CTL_MOD when the first callback comes and the last goes).
 *
 * A completion-based backend (io_uring) would replace this file: the
 * operations in src/io/ call only cg__io_* and the waits below, which a
 * completion backend implements by submitting the operation itself and
 * making its completion the edge (docs/loop.md, "I/O").
 */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "cogen_io.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

char cg__io_token;

typedef struct cg__io {
    int fd;
    unsigned char registered; /* in the loop's epoll */
    unsigned char level;      /* registered level-triggered (callbacks) */
    unsigned char ready;      /* READY_* seen since the last empty operation */
    unsigned char regular;    /* epoll refused it (EPERM: a regular file):
                                 always ready */
    unsigned char stream;     /* a stream socket: a short read or write
                                 means the direction is empty */
    unsigned char hup;        /* READY_* bits: the peer has shut that
                                 direction down (or an error is pending):
                                 operations answer at once from now on, with
                                 no edge to come (a short read of the last
                                 bytes leaves the end to read) */
    cg_task *waiter[2];       /* a task waiting on the direction */
    cg_future *wfut[2];       /* or a future (an async generator's body) */
    cg_handle *cb[2];         /* add_reader / add_writer */
} cg__io;

#define READY(dir) (1u << (dir))

static cg_loop *the_loop(void) {
    cg_loop *loop = cg__running_loop;
    if (!loop) CG_RAISE(&cg_RuntimeError, "no running event loop");
    return loop;
}

/* ---------------------------------------------------------------------
 * The records and epoll
 * ------------------------------------------------------------------ */

static int ensure_epoll(cg_loop *loop) {
    if (loop->epfd >= 0) return 0;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return -1;
    loop->epfd = ep;
    return 0;
}

/* The record of fd, made when missing (NULL with errno: EBADF, ENOMEM). */
static cg__io *io_get(cg_loop *loop, int fd) {
    if (fd < 0) {
        errno = EBADF;
        return NULL;
    }
    if ((size_t)fd >= loop->nio) {
        size_t n = loop->nio ? loop->nio : 64;
        while (n <= (size_t)fd) n *= 2;
        cg__io **v = cg__alloc(n * sizeof *v);
        if (!v) {
            errno = ENOMEM;
            return NULL;
        }
        if (loop->nio) memcpy(v, loop->io, loop->nio * sizeof *v);
        memset(v + loop->nio, 0, (n - loop->nio) * sizeof *v);
        cg__dealloc(loop->io);
        loop->io = v;
        loop->nio = n;
    }
    cg__io *io = loop->io[fd];
    if (!io) {
        io = cg__alloc(sizeof *io);
        if (!io) {
            errno = ENOMEM;
            return NULL;
        }
        memset(io, 0, sizeof *io);
        io->fd = fd;
        loop->io[fd] = io;
    }
    return io;
}

static cg__io *io_find(cg_loop *loop, int fd) {
    return fd >= 0 && (size_t)fd < loop->nio ? loop->io[fd] : NULL;
}

static uint32_t io_events(const cg__io *io) {
    if (io->level) {
        uint32_t ev = EPOLLRDHUP;
        if (io->cb[CG_IO_READ] || io->waiter[CG_IO_READ] || io->wfut[CG_IO_READ]) ev |= EPOLLIN;
        if (io->cb[CG_IO_WRITE] || io->waiter[CG_IO_WRITE] || io->wfut[CG_IO_WRITE]) ev |= EPOLLOUT;
        return ev;
    }
    return EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
}

/* Registers io (once), or brings its registration up to date when the
 * mode changes. 0, or -1 with errno; a regular file (EPERM) is marked
 * always ready and counts as success. */
static int io_register(cg_loop *loop, cg__io *io) {
    if (io->regular) return 0;
    int want_level = io->cb[CG_IO_READ] || io->cb[CG_IO_WRITE];
    if (io->registered && io->level == want_level && !want_level) return 0;
    if (ensure_epoll(loop) < 0) return -1;
    io->level = (unsigned char)want_level;
    struct epoll_event ev = {.events = io_events(io), .data.ptr = io};
    if (epoll_ctl(loop->epfd, io->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, io->fd, &ev) < 0) {
        if (errno == EPERM) {
            io->regular = 1;
            io->ready = READY(CG_IO_READ) | READY(CG_IO_WRITE);
            return 0;
        }
        if (errno == EEXIST) { /* registered by a loop before: take it over */
            if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0) return -1;
        } else {
            return -1;
        }
    }
    if (!io->registered) {
        loop->io_registered++;
        /* unknown: an operation tries first, and finds out */
        io->ready = READY(CG_IO_READ) | READY(CG_IO_WRITE);
        int type = 0;
        socklen_t len = sizeof type;
        io->stream = getsockopt(io->fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
    }
    io->registered = 1;
    return 0;
}

static int has_waiter(const cg__io *io, int dir) { return io->waiter[dir] || io->wfut[dir]; }

/* Wakes what waits on one direction of io: with exc (owned) thrown into a
 * task, or set on a future; NULL is readiness. */
static void io_wake(cg_loop *loop, cg__io *io, int dir, cg_exc *exc) {
    cg_task *t = io->waiter[dir];
    cg_future *f = io->wfut[dir];
    if (t) {
        io->waiter[dir] = NULL;
        t->fut.task_wait = 0;
        loop->io_waiting--;
        cg__task_schedule_step(t, exc);
        return;
    }
    if (f) {
        io->wfut[dir] = NULL;
        loop->io_waiting--;
        if (f->state == F_PENDING) {
            if (exc)
                cg__future_set_exception_plain(f, exc);
            else
                cg__future_set_result_plain(f, NULL);
        } else {
            cg_exc_unref(exc);
        }
        cg_future_unref(f);
        return;
    }
    cg_exc_unref(exc);
}

static void io_drop(cg_loop *loop, cg__io *io);

static void io_event(cg_loop *loop, cg__io *io, uint32_t ev) {
    int rd = (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    int wr = (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
    if (ev & (EPOLLHUP | EPOLLERR))
        io->hup = READY(CG_IO_READ) | READY(CG_IO_WRITE);
    else if (ev & EPOLLRDHUP)
        io->hup |= READY(CG_IO_READ);
    for (int dir = 0; dir < 2; dir++) {
        if (!(dir ? wr : rd)) continue;
        io->ready |= READY(dir);
        if (has_waiter(io, dir)) io_wake(loop, io, dir, NULL);
        cg_handle *h = io->cb[dir];
        if (h && !h->ready.queued)
            cg__loop_ready(loop, h);
        else if (!h && io->level && io_register(loop, io) < 0) /* an interest nobody has any more */
            io_drop(loop, io);
    }
}

static char wake_marker; /* epoll's data for the loop's eventfd */

int cg__io_poll(cg_loop *loop, cg_ns timeout) {
    if (ensure_epoll(loop) < 0) return -1;
    if (!loop->wake_registered && loop->wake_fd >= 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &wake_marker};
        if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wake_fd, &ev) == 0) loop->wake_registered = 1;
    }
    int ms = timeout < 0 ? -1 : (int)((timeout + 999999) / 1000000);
    struct epoll_event evs[256];
    int n = epoll_wait(loop->epfd, evs, 256, ms);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == &wake_marker) {
            uint64_t v;
            ssize_t r = read(loop->wake_fd, &v, sizeof v);
            (void)r;
            continue;
        }
        io_event(loop, evs[i].data.ptr, evs[i].events);
    }
    return 0;
}

/* ---------------------------------------------------------------------
 * Waiting
 * ------------------------------------------------------------------ */

static const char *dir_word(int dir) { return dir ? "write" : "read"; }

/* The record of fd, registered (made non-blocking the first time). */
static cg__io *io_attach(cg_loop *loop, int fd) {
    cg__io *io = io_get(loop, fd);
    if (!io) cg_raise(errno == ENOMEM ? cg_exc_new(&cg_MemoryError, NULL) : cg_oserror_new(errno));
    if (io->registered || io->regular) return io;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0) cg_raise(cg_oserror_new(errno));
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) cg_raise(cg_oserror_new(errno));
    if (io_register(loop, io) < 0) cg_raise(cg_oserror_new(errno));
    return io;
}

typedef struct fut_wait {
    cg__io *io;
    int dir;
    cg_future *f;
} fut_wait;

static void fut_wait_cleanup(void *p) {
    fut_wait *w = p;
    if (w->io->wfut[w->dir] == w->f) { /* cancelled: not woken */
        w->io->wfut[w->dir] = NULL;
        cg__running_loop->io_waiting--;
        cg_future_unref(w->f);
    }
    cg_future_unref(w->f);
}

/* Waits until an edge of dir on fd: the caller has found the direction
 * empty (or knows nothing of it), so what was seen before does not count. */
static void io_wait_edge(int fd, int dir) {
    cg_loop *loop = the_loop();
    cg_gen *cur = cg_current();
    struct cg_agen *ag = NULL;
    cg_task *t = loop->current;
    int in_agen = cg__agen_context(&ag);
    if (!in_agen) {
        if (!t) CG_RAISE(&cg_RuntimeError, "I/O wait called outside a task");
        cg_gen *g = t->gen;
        while (g && g != cur) g = cg_gen_yieldfrom(g);
        if (!g) CG_RAISE(&cg_RuntimeError, "I/O wait called in a generator the task does not delegate to");
    }
    cg__io *io = io_attach(loop, fd);
    if (has_waiter(io, dir)) CG_RAISEF(&cg_RuntimeError, "another task is already waiting to %s fd %d", dir_word(dir), fd);
    if (io->regular) return;
    if (io->hup & READY(dir)) return; /* no edge will come: the operation answers */
    io->ready &= (unsigned char)~READY(dir);
    if (in_agen) {
        fut_wait w = {io, dir, cg_future_new(loop)};
        if (!w.f) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
        io->wfut[dir] = cg_future_ref(w.f);
        loop->io_waiting++;
        if (io->level && io_register(loop, io) < 0) { /* the new interest */
            int err = errno;
            fut_wait_cleanup(&w);
            cg_raise(cg_oserror_new(err));
        }
        CG_DEFER(fut_wait_cleanup, &w);
        cg_await(w.f);
        return;
    }
    io->waiter[dir] = t;
    t->fut.task_wait = (uintptr_t)io | CG__WAIT_FD | (uintptr_t)dir;
    t->await_site = cg__site;
    loop->io_waiting++;
    if (io->level && io_register(loop, io) < 0) {
        int err = errno;
        cg__io_cancel_wait(t);
        cg_raise(cg_oserror_new(err));
    }
    cg_yield(cur, &cg__io_token); /* the edge, a cancellation or a forget steps the task */
}

int cg__io_wait_fd(uintptr_t io_wait) { return ((cg__io *)(io_wait & ~CG__WAIT_TAGS))->fd; }

void cg__io_cancel_wait(cg_task *t) {
    if (!(t->fut.task_wait & CG__WAIT_FD)) return;
    cg__io *io = (cg__io *)(t->fut.task_wait & ~CG__WAIT_TAGS);
    int dir = (int)(t->fut.task_wait & 1);
    t->fut.task_wait = 0;
    if (io->waiter[dir] == t) {
        io->waiter[dir] = NULL;
        t->fut.loop->io_waiting--;
    }
}

/* Level-triggered as the caller sees it: what is known ready is checked
 * (a poll of the fd, without waiting) before it is trusted. */
static void wait_level(int fd, int dir) {
    cg_loop *loop = the_loop();
    cg__io *io = io_find(loop, fd);
    if (io && io->regular) return;
    if (io && io->registered && (io->ready & READY(dir))) {
        struct pollfd p = {.fd = fd, .events = dir ? POLLOUT : POLLIN};
        if (poll(&p, 1, 0) > 0) return;
    }
    io_wait_edge(fd, dir);
}

void cg_wait_readable(int fd) { wait_level(fd, CG_IO_READ); }
void cg_wait_writable(int fd) { wait_level(fd, CG_IO_WRITE); }

/* ---------------------------------------------------------------------
 * For the operations (src/io/): the ready bits
 * ------------------------------------------------------------------ */

void cg__io_enter(int fd, int dir) {
    cg_loop *loop = cg__running_loop;
    cg__io *io = loop ? io_find(loop, fd) : NULL;
    if (!io || !io->registered) {
        if (io && io->regular) return;
        io = io_attach(the_loop(), fd);
    }
    if (!(io->ready & READY(dir)) && !io->regular) io_wait_edge(fd, dir);
}

void cg__io_empty(int fd, int dir, int is_short) {
    cg_loop *loop = cg__running_loop;
    cg__io *io = loop ? io_find(loop, fd) : NULL;
    if (io && !io->regular && !(io->hup & READY(dir)) && (!is_short || io->stream)) io->ready &= (unsigned char)~READY(dir);
}

void cg__io_wait(int fd, int dir) { io_wait_edge(fd, dir); }

int cg__io_waiting(int fd, int dir) {
    cg_loop *loop = cg__running_loop;
    cg__io *io = loop ? io_find(loop, fd) : NULL;
    return io && has_waiter(io, dir);
}

/* ---------------------------------------------------------------------
 * Leaving the loop
 * ------------------------------------------------------------------ */

static void io_drop(cg_loop *loop, cg__io *io) {
    for (int dir = 0; dir < 2; dir++) {
        if (has_waiter(io, dir)) io_wake(loop, io, dir, cg_oserror_new(EBADF));
        if (io->cb[dir]) {
            cg_handle_cancel(io->cb[dir]);
            cg_handle_unref(io->cb[dir]);
            io->cb[dir] = NULL;
            loop->io_waiting--;
        }
    }
    if (io->registered) {
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL); /* (fails when closed already: fine) */
        loop->io_registered--;
    }
    io->registered = io->level = io->ready = io->regular = io->hup = 0;
}

void cg_loop_io_forget(cg_loop *loop, int fd) {
    if (!loop) loop = cg__running_loop;
    if (!loop) return;
    cg__io *io = io_find(loop, fd);
    if (io) io_drop(loop, io);
}

void cg_io_forget(int fd) { cg_loop_io_forget(NULL, fd); }

int cg_io_close(int fd) {
    cg_io_forget(fd);
    return close(fd);
}

void cg__io_close_all(cg_loop *loop) {
    for (size_t i = 0; i < loop->nio; i++) {
        cg__io *io = loop->io[i];
        if (!io) continue;
        io_drop(loop, io);
        cg__dealloc(io);
    }
    cg__dealloc(loop->io);
    loop->io = NULL;
    loop->nio = 0;
    if (loop->epfd >= 0) close(loop->epfd);
    loop->epfd = -1;
    loop->wake_registered = 0;
}

/* ---------------------------------------------------------------------
 * add_reader / add_writer
 * ------------------------------------------------------------------ */

static int add_cb(cg_loop *loop, int fd, int dir, cg_callback fn, void *arg) {
    if (!loop || !fn) {
        errno = EINVAL;
        return -1;
    }
    if (fcntl(fd, F_GETFD) < 0) return -1; /* EBADF */
    cg__io *io = io_get(loop, fd);
    if (!io) return -1;
    if (has_waiter(io, dir)) {
        errno = EEXIST;
        return -1;
    }
    cg_handle *h = cg__loop_plain_handle(loop, fn, arg);
    if (!h) return -1;
    cg_handle *old = io->cb[dir];
    io->cb[dir] = h;
    if (!old) loop->io_waiting++;
    if (io_register(loop, io) < 0 || io->regular) {
        int err = io->regular ? EPERM : errno;
        io->cb[dir] = old;
        if (!old) loop->io_waiting--;
        cg_handle_unref(h);
        if (io->regular) io->regular = 0, io->ready = 0;
        errno = err;
        return -1;
    }
    if (old) {
        cg_handle_cancel(old);
        cg_handle_unref(old);
    }
    return 0;
}

static int remove_cb(cg_loop *loop, int fd, int dir) {
    cg__io *io = loop ? io_find(loop, fd) : NULL;
    if (!io || !io->cb[dir]) return 0;
    cg_handle_cancel(io->cb[dir]);
    cg_handle_unref(io->cb[dir]);
    io->cb[dir] = NULL;
    loop->io_waiting--;
    if (io_register(loop, io) < 0) { /* back to edge-triggered: cannot fail but for a closed fd */
        io_drop(loop, io);
    } else if (!io->level) {
        io->ready = 0; /* the edges were not kept while level-triggered */
    }
    return 1;
}

int cg_loop_add_reader(cg_loop *loop, int fd, cg_callback fn, void *arg) { return add_cb(loop, fd, CG_IO_READ, fn, arg); }
int cg_loop_add_writer(cg_loop *loop, int fd, cg_callback fn, void *arg) { return add_cb(loop, fd, CG_IO_WRITE, fn, arg); }
int cg_loop_remove_reader(cg_loop *loop, int fd) { return remove_cb(loop, fd, CG_IO_READ); }
int cg_loop_remove_writer(cg_loop *loop, int fd) { return remove_cb(loop, fd, CG_IO_WRITE); }
