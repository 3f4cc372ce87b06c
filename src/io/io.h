/* io.h: what the files of src/io/ share. */
#ifndef COGEN_SRC_IO_H
#define COGEN_SRC_IO_H

#include "cogen_io.h"

/* An address as Python prints it: ('127.0.0.1', 80), ('::1', 80, 0, 0),
 * or the path of a Unix socket. */
CG_HIDDEN void cg__addr_repr(const struct sockaddr *a, socklen_t len, char *buf, size_t size);

#endif
