/* server_epoll.c: the floor of the I/O benchmarks, a plain epoll server.
 *
 *   bench_io_epoll_echo PORT    echoes every byte back
 *   bench_io_epoll_http PORT    HTTP/1.1 keep-alive "Hello, World!" (built
 *                               from this file with IO_HTTP defined)
 *
 * Each socket is registered once, edge-triggered, for input and output.
 * On an input edge the server reads until a read comes back short (less
 * than the buffer: the socket is empty, no EAGAIN read needed) and writes
 * the answer at once, so a 64-byte echo costs one read and one write, plus
 * a share of an epoll_wait. A write the socket does not take whole is
 * kept and finished on the next output edge, and reading waits until it
 * is (the peer is then not reading; buffering more for it would be
 * unbounded). Nothing a server needs beyond that: no timers, no buffers
 * per connection in the common case.
 */
#define _GNU_SOURCE
#include "io_common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>


#define MAX_EVENTS 1024

typedef struct conn {
    int fd;               /* the connection's socket, non-blocking */
    unsigned http_state;  /* http_scan's progress through "\r\n\r\n" */
    char *pending;        /* what a short write left (malloc'd), or NULL */
    size_t pending_len;   /* bytes of pending not yet written */
    size_t pending_off;   /* where they start in pending */
    struct conn *prev;    /* every open connection, to close them on exit */
    struct conn *next;
} conn;

static conn *conns;     /* the list of open connections */
static int epfd;
static char inbuf[IO_READ_SIZE];
#ifdef IO_HTTP
static char outbuf[HTTP_OUT_SIZE];
#endif
static char listener_tag, signal_tag; /* epoll data of the two special fds */

static void conn_close(conn *c) {
    close(c->fd); /* also leaves the epoll set */
    if (c->prev) c->prev->next = c->next;
    else conns = c->next;
    if (c->next) c->next->prev = c->prev;
    free(c->pending);
    free(c);
}

/* Writes p[0..n) or keeps what the socket did not take. Returns 0 when
 * all of it went, 1 when some is pending, -1 when the connection failed. */
static int send_or_keep(conn *c, const char *p, size_t n) {
    ssize_t w = write(c->fd, p, n);
    if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) return -1;
        w = 0;
    }
    if ((size_t)w == n) return 0;
    c->pending = malloc(n - (size_t)w);
    if (!c->pending) bench_die("out of memory");
    memcpy(c->pending, p + w, n - (size_t)w);
    c->pending_len = n - (size_t)w;
    c->pending_off = 0;
    return 1;
}

/* Finishes a pending write. Returns 0 when nothing is pending any more. */
static int flush_pending(conn *c) {
    while (c->pending_len) {
        ssize_t w = write(c->fd, c->pending + c->pending_off, c->pending_len);
        if (w < 0) return errno == EAGAIN || errno == EINTR ? 1 : -1;
        c->pending_off += (size_t)w;
        c->pending_len -= (size_t)w;
    }
    free(c->pending);
    c->pending = NULL;
    return 0;
}

/* Reads until a short read and answers what came. Returns -1 when the
 * connection is over (end of file or an error). */
static int serve(conn *c) {
    for (;;) {
        ssize_t n = read(c->fd, inbuf, sizeof inbuf);
        if (n == 0) return -1;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno == EAGAIN ? 0 : -1;
#ifdef IO_HTTP
        size_t len = http_answers(outbuf, http_scan(&c->http_state, inbuf, (size_t)n));
        int r = len ? send_or_keep(c, outbuf, len) : 0;
#else
        int r = send_or_keep(c, inbuf, (size_t)n);
#endif
        if (r != 0) return r < 0 ? -1 : 0; /* pending: read again once it is written */
        if ((size_t)n < sizeof inbuf) return 0;
    }
}

static void on_conn_event(conn *c, uint32_t events) {
    if (c->pending) {
        int r = flush_pending(c);
        if (r != 0) {
            if (r < 0) conn_close(c);
            return; /* still pending: wait for the next output edge */
        }
        events |= EPOLLIN; /* reading stopped while the write was pending: resume it */
    }
    if ((events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) && serve(c) < 0) conn_close(c);
}

static void accept_all(int lfd) {
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            if (errno != EAGAIN) perror("bench-io: accept4");
            return; /* EAGAIN; EMFILE and the like: wait for the next connection */
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) bench_die("out of memory");
        c->fd = fd;
        c->next = conns;
        if (conns) conns->prev = c;
        conns = c;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) bench_die("epoll_ctl: %s", strerror(errno));
        /* Data may already be there: the first edge is reported anyway,
         * since the socket is registered after it arrived. */
    }
}

static int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) bench_die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) bench_die("bind 127.0.0.1:%d: %s", port, strerror(errno));
    if (listen(fd, SOMAXCONN) < 0) bench_die("listen: %s", strerror(errno));
    return fd;
}

int main(int argc, char **argv) {
    int port = io_port_arg(argc, argv, IO_SERVER_WHAT);
    io_raise_nofile();
    signal(SIGPIPE, SIG_IGN);
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    sigprocmask(SIG_BLOCK, &stop, NULL);
    int sfd = signalfd(-1, &stop, SFD_NONBLOCK | SFD_CLOEXEC);
    int lfd = listen_on(port);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (sfd < 0 || epfd < 0) bench_die("signalfd/epoll_create1: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.ptr = &listener_tag};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &ev) < 0) bench_die("epoll_ctl: %s", strerror(errno));
    ev.events = EPOLLIN;
    ev.data.ptr = &signal_tag;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, sfd, &ev) < 0) bench_die("epoll_ctl: %s", strerror(errno));

    static struct epoll_event evs[MAX_EVENTS];
    for (int running = 1; running;) {
        int n = epoll_wait(epfd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) bench_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            void *tag = evs[i].data.ptr;
            if (tag == &listener_tag) accept_all(lfd);
            else if (tag == &signal_tag) running = 0;
            else on_conn_event(tag, evs[i].events);
        }
    }
    while (conns) conn_close(conns);
    close(lfd);
    close(sfd);
    close(epfd);
    return 0;
}
