/* stream.h: what the server (server.c) needs of the streams (stream.c). */
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
/* The stream addresses of host:port, numeric ones resolved at once, names
 * off the loop; passive: for bind (NULL host: every interface). Raises
 * gaierror. Free with freeaddrinfo. */
CG_HIDDEN struct addrinfo *cg__resolve_stream(const char *host, int port, int passive);
/* getaddrinfo of a name. */
CG_HIDDEN struct addrinfo *cg__resolve(const char *host, const char *serv, const struct addrinfo *hints);

#endif
