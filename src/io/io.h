/* io.h: what the files of src/io/ share. */
#ifndef COGEN_SRC_IO_H
#define COGEN_SRC_IO_H

#include "cogen_io.h"

/* An address as Python prints it: ('127.0.0.1', 80), ('::1', 80, 0, 0),
 * or the path of a Unix socket. */
CG_HIDDEN void cg__addr_repr(const struct sockaddr *a, socklen_t len, char *buf, size_t size);

/* write(2) that never raises SIGPIPE (process.c): a reader gone is EPIPE,
 * as for send(MSG_NOSIGNAL) on a socket, so that Python's BrokenPipeError
 * (Python ignores SIGPIPE) is what a pipe's writer sees: a subprocess's
 * stdin, a stream over a pipe. */
CG_HIDDEN ssize_t cg__write_nosigpipe(int fd, const void *buf, size_t n);

#endif
