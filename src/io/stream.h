/* stream.h: what the server (server.c) and the datagram endpoints
 * (datagram.c) need of stream.c. */
#ifndef COGEN_SRC_IO_STREAM_H
#define COGEN_SRC_IO_STREAM_H

#include "cogen_io.h"

#include <netdb.h>

typedef struct cg__conn cg__conn;

/* The streams of a connection over fd (taken only on success): NULL when
 * out of memory. */
CG_HIDDEN cg__conn *cg__conn_new(int fd, const cg_stream_opts *opts, cg_stream_reader **r, cg_stream_writer **w);
/* fn(arg) runs when the connection is freed (both halves freed). */
CG_HIDDEN void cg__conn_on_free(cg__conn *c, void (*fn)(void *), void *arg);
/* The addresses of host:port for socktype (SOCK_STREAM, SOCK_DGRAM),
 * numeric ones resolved at once, names on the DNS workers; passive: for
 * bind (NULL host: every interface). Raises gaierror. Free with
 * freeaddrinfo. */
CG_HIDDEN struct addrinfo *cg__resolve(const char *host, int port, int socktype, int passive);

#endif
