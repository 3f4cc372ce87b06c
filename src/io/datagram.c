/* datagram.c: UDP endpoints (loop.create_datagram_endpoint), with
 * awaitable sendto/recvfrom instead of a protocol's callbacks: one socket,
 * bound and/or connected, each call one system call unless the socket
 * makes it wait (src/io/sock.c). */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "io/io.h"
#include "io/stream.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct cg_datagram {
    int fd;
    int connected;
    struct sockaddr_storage peer;
    socklen_t peerlen;
};

typedef struct opening {
    int fd;
    struct addrinfo *local, *remote;
} opening;

static void opening_cleanup(void *p) {
    opening *o = p;
    if (o->fd >= 0) cg_io_close(o->fd);
    if (o->local) freeaddrinfo(o->local);
    if (o->remote) freeaddrinfo(o->remote);
}

cg_datagram *cg_open_datagram(const char *local_host, int local_port, const char *remote_host, int remote_port,
                              const cg_datagram_opts *opts) {
    if (!remote_host && local_port < 0) CG_RAISE(&cg_ValueError, "unexpected address family");
    opening o = {-1, NULL, NULL};
    CG_DEFER(opening_cleanup, &o);
    if (local_port >= 0) o.local = cg__resolve(local_host, local_port, SOCK_DGRAM, 1);
    if (remote_host) o.remote = cg__resolve(remote_host, remote_port, SOCK_DGRAM, 0);
    /* the family of the local address, else of the remote one */
    const struct addrinfo *ai = o.local ? o.local : o.remote;
    if (o.local && o.remote) { /* a local address of the remote's family */
        for (const struct addrinfo *l = o.local; l; l = l->ai_next)
            if (l->ai_family == o.remote->ai_family) {
                ai = l;
                break;
            }
    }
    o.fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (o.fd < 0) cg_raise_oserror(errno);
    int one = 1;
    if (opts && opts->reuse_port > 0 && setsockopt(o.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        cg_raise_oserror(errno);
    if (opts && opts->allow_broadcast > 0 && setsockopt(o.fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one) < 0)
        cg_raise_oserror(errno);
    if (o.local && bind(o.fd, ai->ai_addr, ai->ai_addrlen) < 0) cg_raise_oserror(errno);
    cg_datagram *d = calloc(1, sizeof *d);
    if (!d) cg_raise(cg_exc_new(&cg_MemoryError, NULL));
    if (o.remote) {
        const struct addrinfo *r = o.remote;
        while (r && r->ai_family != ai->ai_family) r = r->ai_next;
        if (!r) r = o.remote;
        if (connect(o.fd, r->ai_addr, r->ai_addrlen) < 0) {
            int err = errno;
            free(d);
            cg_raise_oserror(err);
        }
        memcpy(&d->peer, r->ai_addr, r->ai_addrlen);
        d->peerlen = r->ai_addrlen;
        d->connected = 1;
    }
    d->fd = o.fd;
    o.fd = -1;
    return d;
}

void cg_datagram_sendto(cg_datagram *d, const void *buf, size_t n, const struct sockaddr *addr, socklen_t len) {
    if (d->fd < 0) cg_raise_oserror(EBADF);
    if (d->connected && addr) {
        if (len != d->peerlen || memcmp(addr, &d->peer, len)) {
            char a[200];
            cg__addr_repr((const struct sockaddr *)&d->peer, d->peerlen, a, sizeof a);
            CG_RAISEF(&cg_ValueError, "Invalid address: must be None or %s", a);
        }
        addr = NULL, len = 0;
    }
    cg_sock_sendto(d->fd, buf, n, addr, len);
}

size_t cg_datagram_recvfrom(cg_datagram *d, void *buf, size_t n, struct sockaddr_storage *addr, socklen_t *len) {
    if (d->fd < 0) cg_raise_oserror(EBADF);
    socklen_t l = sizeof *addr;
    size_t r = cg_sock_recvfrom(d->fd, buf, n, (struct sockaddr *)addr, addr ? &l : NULL);
    if (len) *len = addr ? l : 0;
    return r;
}

int cg_datagram_sockname(const cg_datagram *d, struct sockaddr_storage *addr, socklen_t *len) {
    *len = sizeof *addr;
    return getsockname(d->fd, (struct sockaddr *)addr, len);
}

int cg_datagram_fileno(const cg_datagram *d) { return d->fd; }

void cg_datagram_close(cg_datagram *d) {
    if (!d) return;
    if (d->fd >= 0) cg_io_close(d->fd);
    free(d);
}
