/* fault_shim.h: fault injection into the system calls of the I/O backend
 * (src/loop/io.c) and the socket operations (src/io/), for the tests.
 *
 * The test binary is linked against the static library with
 * `-Wl,--wrap=recv,...` (cogen_fault_test() in tests/CMakeLists.txt): every
 * call the library (and the test) makes to a wrapped function reaches
 * __wrap_NAME below, which either answers with an injected error or calls
 * the real one (__real_NAME). That works the same in every make check mode:
 * the sanitizers' interceptors and valgrind's see the real call, qemu-user
 * runs it, and the library is not built differently.
 *
 * Rules say what to inject: fault_add(CALL, errno, every, per_million,
 * burst) makes the Nth call (every N calls) of that kind, or a call chosen
 * by a seeded PRNG (per_million), fail with errno, and the burst-1 calls of
 * that kind after it too (a storm). Faults are injected as the kernel would
 * produce them, so that a correct program must survive them:
 *   EINTR   nothing happened; for connect, the connection goes on in the
 *           background (the real call is made, EINPROGRESS becomes EINTR);
 *           for close, the fd is closed all the same (Linux).
 *   EAGAIN  nothing happened, and an edge comes for the fd (as when the
 *           queue was empty at that instant and data came after): the next
 *           epoll_wait reports the direction. Without the edge an
 *           edge-triggered backend would rightly wait for ever, which no
 *           kernel does to it.
 *   ECONNRESET on recv/read/send/write: the connection is gone; from then
 *           on every call on the fd answers ECONNRESET (or 0 for a read, as
 *           Linux's second recv after a reset), until it is closed.
 *   others  (ENOBUFS, ENOMEM, ECONNABORTED, EPIPE): nothing happened, the
 *           call fails once.
 * epoll_ctl gets ENOMEM on EPOLL_CTL_ADD only (the kernel allocates there
 * only); epoll_wait EINTR; and FAULT_EDGE rules add spurious events to an
 * epoll_wait (an fd reported ready that is not). The loop's eventfd is left
 * alone (it is not the subject here).
 *
 * Include in one file of a test binary, after check.h. Single-threaded. */
#ifndef COGEN_TEST_FAULT_SHIM_H
#define COGEN_TEST_FAULT_SHIM_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

typedef enum fault_call {
    FAULT_RECV,       /* recv, recvfrom */
    FAULT_SEND,       /* send, sendto */
    FAULT_READ,
    FAULT_WRITE,      /* write, writev */
    FAULT_ACCEPT,     /* accept4 */
    FAULT_CONNECT,
    FAULT_CLOSE,
    FAULT_EPOLL_WAIT,
    FAULT_EPOLL_CTL,  /* EPOLL_CTL_ADD */
    FAULT_EDGE,       /* a spurious event in an epoll_wait (err unused) */
    FAULT_NCALLS
} fault_call;

static const char *const fault_call_names[FAULT_NCALLS] = {
    "recv", "send", "read", "write", "accept4", "connect", "close", "epoll_wait", "epoll_ctl", "edge",
};

#define FAULT_MAX_RULES 32
#define FAULT_MAX_FDS 65536
#define FAULT_MAX_PENDING 1024

typedef struct fault_rule {
    fault_call call;
    int err;
    unsigned long every;       /* every Nth call (0: never) */
    unsigned long per_million; /* or with this chance */
    unsigned long burst;       /* calls failed in a row once triggered */
    unsigned long calls, left, injected;
} fault_rule;

static struct {
    int armed;
    uint64_t rng;
    fault_rule rules[FAULT_MAX_RULES];
    int nrules;
    unsigned long calls[FAULT_NCALLS], injected[FAULT_NCALLS];
    /* what the backend registered: fd -> its epoll fd (+1) and data */
    int ep_of[FAULT_MAX_FDS];
    epoll_data_t data_of[FAULT_MAX_FDS];
    unsigned char reset[FAULT_MAX_FDS]; /* ECONNRESET injected: sticky */
    unsigned char quiet[FAULT_MAX_FDS]; /* eventfds: never injected */
    struct { int fd; uint32_t ev; } pending[FAULT_MAX_PENDING];
    int npending;
} fs;

static uint64_t fault_rand(void) { /* splitmix64: the same run for a seed */
    uint64_t z = (fs.rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Clears the rules and counters, seeds the PRNG and arms the shim. */
static void fault_arm(uint64_t seed) {
    fs.nrules = 0;
    fs.rng = seed;
    memset(fs.calls, 0, sizeof fs.calls);
    memset(fs.injected, 0, sizeof fs.injected);
    memset(fs.reset, 0, sizeof fs.reset);
    fs.npending = 0;
    fs.armed = 1;
}

static void fault_disarm(void) { fs.armed = 0; }

static void fault_add(fault_call call, int err, unsigned long every, unsigned long per_million, unsigned long burst) {
    CHECK(fs.nrules < FAULT_MAX_RULES);
    fault_rule *r = &fs.rules[fs.nrules++];
    memset(r, 0, sizeof *r);
    r->call = call;
    r->err = err;
    r->every = every;
    r->per_million = per_million;
    r->burst = burst ? burst : 1;
}

/* How many faults of this kind (err 0: any) were injected since fault_arm. */
static unsigned long fault_count(fault_call call, int err) {
    unsigned long n = 0;
    for (int i = 0; i < fs.nrules; i++)
        if (fs.rules[i].call == call && (!err || fs.rules[i].err == err)) n += fs.rules[i].injected;
    return n;
}

static void fault_report(FILE *f) {
    for (int c = 0; c < FAULT_NCALLS; c++)
        if (fs.calls[c]) fprintf(f, "  %-10s %8lu calls, %6lu faults\n", fault_call_names[c], fs.calls[c], fs.injected[c]);
}

static int fault_fd_ok(int fd) { return fd >= 0 && fd < FAULT_MAX_FDS; }

/* The error to inject into this call, or 0. */
static int fault_pick(fault_call call, int fd) {
    if (!fs.armed || (fault_fd_ok(fd) && fs.quiet[fd])) return 0;
    fs.calls[call]++;
    int err = 0;
    for (int i = 0; i < fs.nrules; i++) {
        fault_rule *r = &fs.rules[i];
        if (r->call != call) continue;
        r->calls++;
        int hit = 0;
        if (r->left) {
            r->left--;
            hit = 1;
        } else if ((r->every && r->calls % r->every == 0) ||
                   (r->per_million && fault_rand() % 1000000 < r->per_million)) {
            r->left = r->burst - 1;
            hit = 1;
        }
        if (hit && !err) {
            err = r->err;
            r->injected++;
            fs.injected[call]++;
        }
    }
    return err;
}

static void fault_edge(int fd, uint32_t ev) {
    if (!fault_fd_ok(fd) || !fs.ep_of[fd]) return; /* not registered: no edge can come */
    for (int i = 0; i < fs.npending; i++)
        if (fs.pending[i].fd == fd) {
            fs.pending[i].ev |= ev;
            return;
        }
    CHECK(fs.npending < FAULT_MAX_PENDING);
    fs.pending[fs.npending].fd = fd;
    fs.pending[fs.npending].ev = ev;
    fs.npending++;
}

/* The common part of a data call: -1 with errno when injected (after the
 * edge an EAGAIN promises), else 1 to make the real call. A reset fd
 * answers ECONNRESET (writes) or end of stream (reads: returns 0). */
static int fault_data(fault_call call, int fd, uint32_t edge, int is_read) {
    if (fs.armed && fault_fd_ok(fd) && fs.reset[fd]) {
        if (is_read) return 0;
        errno = ECONNRESET;
        return -1;
    }
    int err = fault_pick(call, fd);
    if (!err) return 1;
    if (err == EAGAIN) fault_edge(fd, edge);
    if (err == ECONNRESET && fault_fd_ok(fd)) fs.reset[fd] = 1;
    errno = err;
    return -1;
}

ssize_t __real_recv(int fd, void *buf, size_t n, int flags);
ssize_t __real_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *len);
ssize_t __real_send(int fd, const void *buf, size_t n, int flags);
ssize_t __real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t len);
ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_write(int fd, const void *buf, size_t n);
ssize_t __real_writev(int fd, const struct iovec *iov, int n);
int __real_accept4(int fd, struct sockaddr *a, socklen_t *len, int flags);
int __real_connect(int fd, const struct sockaddr *a, socklen_t len);
int __real_close(int fd);
int __real_epoll_wait(int ep, struct epoll_event *ev, int max, int ms);
int __real_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev);
int __real_eventfd(unsigned int init, int flags);

ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags);
ssize_t __wrap_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *len);
ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags);
ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t len);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_write(int fd, const void *buf, size_t n);
ssize_t __wrap_writev(int fd, const struct iovec *iov, int n);
int __wrap_accept4(int fd, struct sockaddr *a, socklen_t *len, int flags);
int __wrap_connect(int fd, const struct sockaddr *a, socklen_t len);
int __wrap_close(int fd);
int __wrap_epoll_wait(int ep, struct epoll_event *ev, int max, int ms);
int __wrap_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev);
int __wrap_eventfd(unsigned int init, int flags);

ssize_t __wrap_recv(int fd, void *buf, size_t n, int flags) {
    int r = fault_data(FAULT_RECV, fd, EPOLLIN, 1);
    return r > 0 ? __real_recv(fd, buf, n, flags) : r;
}

ssize_t __wrap_recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *a, socklen_t *len) {
    int r = fault_data(FAULT_RECV, fd, EPOLLIN, 1);
    return r > 0 ? __real_recvfrom(fd, buf, n, flags, a, len) : r;
}

ssize_t __wrap_send(int fd, const void *buf, size_t n, int flags) {
    int r = fault_data(FAULT_SEND, fd, EPOLLOUT, 0);
    return r > 0 ? __real_send(fd, buf, n, flags) : r;
}

ssize_t __wrap_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *a, socklen_t len) {
    int r = fault_data(FAULT_SEND, fd, EPOLLOUT, 0);
    return r > 0 ? __real_sendto(fd, buf, n, flags, a, len) : r;
}

ssize_t __wrap_read(int fd, void *buf, size_t n) {
    int r = fault_data(FAULT_READ, fd, EPOLLIN, 1);
    return r > 0 ? __real_read(fd, buf, n) : r;
}

ssize_t __wrap_write(int fd, const void *buf, size_t n) {
    int r = fault_data(FAULT_WRITE, fd, EPOLLOUT, 0);
    return r > 0 ? __real_write(fd, buf, n) : r;
}

ssize_t __wrap_writev(int fd, const struct iovec *iov, int n) {
    int r = fault_data(FAULT_WRITE, fd, EPOLLOUT, 0);
    return r > 0 ? __real_writev(fd, iov, n) : r;
}

int __wrap_accept4(int fd, struct sockaddr *a, socklen_t *len, int flags) {
    int err = fault_pick(FAULT_ACCEPT, fd);
    if (!err) return __real_accept4(fd, a, len, flags);
    if (err == EAGAIN) fault_edge(fd, EPOLLIN);
    errno = err;
    return -1;
}

int __wrap_connect(int fd, const struct sockaddr *a, socklen_t len) {
    int err = fault_pick(FAULT_CONNECT, fd);
    int r = __real_connect(fd, a, len); /* EINTR: the connection goes on */
    if (err == EINTR && r < 0 && errno == EINPROGRESS) errno = EINTR;
    return r;
}

int __wrap_close(int fd) {
    if (fault_fd_ok(fd)) {
        fs.reset[fd] = 0;
        fs.quiet[fd] = 0;
        fs.ep_of[fd] = 0;
        for (int i = 0; i < fs.npending; i++)
            if (fs.pending[i].fd == fd) fs.pending[i--] = fs.pending[--fs.npending];
    }
    int err = fault_pick(FAULT_CLOSE, fd);
    int r = __real_close(fd);
    if (err == EINTR && r == 0) { /* closed all the same, as Linux does */
        errno = EINTR;
        return -1;
    }
    return r;
}

int __wrap_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev) {
    if (op == EPOLL_CTL_ADD) {
        int err = fault_pick(FAULT_EPOLL_CTL, fd);
        if (err) {
            errno = err;
            return -1;
        }
    }
    int r = __real_epoll_ctl(ep, op, fd, ev);
    if (r == 0 && fault_fd_ok(fd)) {
        if (op == EPOLL_CTL_DEL) {
            fs.ep_of[fd] = 0;
        } else {
            fs.ep_of[fd] = ep + 1;
            fs.data_of[fd] = ev->data;
        }
    }
    return r;
}

int __wrap_epoll_wait(int ep, struct epoll_event *ev, int max, int ms) {
    int err = fault_pick(FAULT_EPOLL_WAIT, -1);
    if (err) {
        errno = err;
        return -1;
    }
    int n = __real_epoll_wait(ep, ev, max, fs.npending ? 0 : ms);
    if (n < 0) return n;
    for (int i = 0; i < fs.npending && n < max;) {
        int fd = fs.pending[i].fd;
        if (fs.ep_of[fd] && fs.ep_of[fd] != ep + 1) { /* another loop's: kept for it */
            i++;
            continue;
        }
        if (fs.ep_of[fd]) { /* (an fd no longer registered gets no edge) */
            ev[n].events = fs.pending[i].ev;
            ev[n].data = fs.data_of[fd];
            n++;
        }
        fs.pending[i] = fs.pending[--fs.npending];
    }
    if (n < max && fault_pick(FAULT_EDGE, -1)) { /* a spurious event, for a random registered fd */
        int start = (int)(fault_rand() % FAULT_MAX_FDS);
        for (int k = 0; k < FAULT_MAX_FDS; k++) {
            int fd = (start + k) % FAULT_MAX_FDS;
            if (fs.ep_of[fd] == ep + 1 && !fs.quiet[fd]) {
                ev[n].events = (fault_rand() & 1) ? EPOLLIN : EPOLLOUT;
                ev[n].data = fs.data_of[fd];
                n++;
                break;
            }
        }
    }
    return n;
}

int __wrap_eventfd(unsigned int init, int flags) {
    int fd = __real_eventfd(init, flags);
    if (fault_fd_ok(fd)) fs.quiet[fd] = 1;
    return fd;
}

#endif
