/* sock.c: loop.sock_* and plain reads and writes, in a task: each tries
 * its system call first and waits for the fd's edge only when the call
 * says EAGAIN (or when the backend knows it would: src/loop/io.c). */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "io/io.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* cg__addr_repr (io.h). */
void cg__addr_repr(const struct sockaddr *a, socklen_t len, char *buf, size_t size) {
    char host[INET6_ADDRSTRLEN] = "?";
    if (a->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s = (const void *)a;
        inet_ntop(AF_INET, &s->sin_addr, host, sizeof host);
        snprintf(buf, size, "('%s', %u)", host, ntohs(s->sin_port));
    } else if (a->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s = (const void *)a;
        inet_ntop(AF_INET6, &s->sin6_addr, host, sizeof host);
        snprintf(buf, size, "('%s', %u, %u, %u)", host, ntohs(s->sin6_port), ntohl(s->sin6_flowinfo), s->sin6_scope_id);
    } else if (a->sa_family == AF_UNIX) {
        const struct sockaddr_un *s = (const void *)a;
        snprintf(buf, size, "%.*s", (int)(len > offsetof(struct sockaddr_un, sun_path) ? len - offsetof(struct sockaddr_un, sun_path) : 0), s->sun_path);
    } else {
        snprintf(buf, size, "<family %d>", a->sa_family);
    }
}

/* asyncio's OSError(err, f'Connect call failed {address}'). */
static CG_NORETURN void connect_failed(int err, const struct sockaddr *addr, socklen_t len) {
    char a[200], msg[300];
    cg__addr_repr(addr, len, a, sizeof a);
    snprintf(msg, sizeof msg, "[Errno %d] Connect call failed %s", err, a);
    cg_raise(cg_oserror_new_msg(NULL, err, msg));
}

/* After a system call that returned r: 1 to try again (EINTR; EAGAIN, once
 * the fd's edge has come), 0 when r is the answer. Raises the error. */
static int again(int fd, int dir, ssize_t r) {
    if (r >= 0) return 0;
    if (errno == EINTR) return 1;
    if (errno != EAGAIN && errno != EWOULDBLOCK) cg_raise_oserror(errno);
    cg__io_empty(fd, dir, 0);
    cg__io_enter(fd, dir);
    return 1;
}

size_t cg_sock_recv(int fd, void *buf, size_t n) {
    ssize_t r;
    do {
        cg__io_enter(fd, CG_IO_READ);
        r = recv(fd, buf, n, MSG_DONTWAIT);
    } while (again(fd, CG_IO_READ, r));
    if (r > 0 && (size_t)r < n) cg__io_empty(fd, CG_IO_READ, 1);
    return (size_t)r;
}

size_t cg_read(int fd, void *buf, size_t n) {
    ssize_t r;
    do {
        cg__io_enter(fd, CG_IO_READ);
        r = read(fd, buf, n);
    } while (again(fd, CG_IO_READ, r));
    if (r > 0 && (size_t)r < n) cg__io_empty(fd, CG_IO_READ, 1);
    return (size_t)r;
}

/* Writes all n bytes with op (send or write). */
static void write_all(int fd, const void *buf, size_t n, int sock) {
    const char *p = buf;
    while (n > 0) {
        ssize_t r;
        do {
            cg__io_enter(fd, CG_IO_WRITE);
            r = sock ? send(fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL) : write(fd, p, n);
        } while (again(fd, CG_IO_WRITE, r));
        if ((size_t)r < n) cg__io_empty(fd, CG_IO_WRITE, 1);
        p += r;
        n -= (size_t)r;
    }
}

void cg_sock_sendall(int fd, const void *buf, size_t n) { write_all(fd, buf, n, 1); }
void cg_write(int fd, const void *buf, size_t n) { write_all(fd, buf, n, 0); }

int cg_sock_accept(int fd, struct sockaddr *addr, socklen_t *len) {
    int c;
    do {
        cg__io_enter(fd, CG_IO_READ);
        c = accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } while (again(fd, CG_IO_READ, c));
    return c;
}

void cg_sock_connect(int fd, const struct sockaddr *addr, socklen_t len) {
    cg__io_enter(fd, CG_IO_WRITE); /* registers it, non-blocking */
    int r = connect(fd, addr, len);
    if (r == 0) return;
    if (errno != EINPROGRESS && errno != EINTR) connect_failed(errno, addr, len);
    int err = 0;
    for (;;) {
        cg__io_empty(fd, CG_IO_WRITE, 0);
        cg__io_enter(fd, CG_IO_WRITE);
        socklen_t elen = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) cg_raise_oserror(errno);
        if (err) connect_failed(err, addr, len);
        /* writable without an error: connected, unless the edge came for
         * something else (then getpeername says ENOTCONN: wait again) */
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) return;
        if (errno != ENOTCONN) cg_raise_oserror(errno);
    }
}

size_t cg_sock_recvfrom(int fd, void *buf, size_t n, struct sockaddr *addr, socklen_t *len) {
    ssize_t r;
    do {
        cg__io_enter(fd, CG_IO_READ);
        r = recvfrom(fd, buf, n, MSG_DONTWAIT, addr, len);
    } while (again(fd, CG_IO_READ, r));
    return (size_t)r;
}

void cg_sock_sendto(int fd, const void *buf, size_t n, const struct sockaddr *addr, socklen_t len) {
    ssize_t r;
    do {
        cg__io_enter(fd, CG_IO_WRITE);
        r = sendto(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL, addr, len);
    } while (again(fd, CG_IO_WRITE, r));
}
