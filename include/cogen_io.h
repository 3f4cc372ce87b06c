/* cogen_io.h: I/O on cogen's event loop (Linux): file descriptors and
 * sockets as awaitables, with asyncio's semantics and the OSError family
 * of exceptions.
 *
 * The loop waits on epoll. Each fd the loop sees is registered once, the
 * first time a task waits on it, edge-triggered, and stays registered until
 * cg_io_forget (or cg_io_close) takes it out: an operation tries the
 * system call first and waits only when it says EAGAIN, and the task that
 * waits is the fd's waiter itself (no future, no callback between them).
 * So waiting costs no system call beyond the loop's own epoll_wait.
 *
 * File descriptors are plain ints, as in C. One rule comes with that:
 * an fd the loop has seen must leave the loop before it is closed, with
 * cg_io_close(fd) (which closes it) or cg_io_forget(fd) (which does not);
 * a number closed behind the loop's back and reused for another file
 * would never be waited on. Operations that wait may be called in a task
 * (at any depth of its stack, or in an async generator's body). They are
 * cancellable: a cancelled wait takes its interest away and loses no data
 * (what arrived stays to be read).
 *
 * Errors are raised as Python raises them: OSError with errno and
 * '[Errno N] strerror', of the subclass Python picks for the errno
 * (ConnectionResetError for ECONNRESET, BrokenPipeError for EPIPE, ...).
 * Conventions are those of cogen.h and cogen_loop.h.
 */
#ifndef COGEN_IO_H
#define COGEN_IO_H

#include "cogen_loop.h"

#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * The OSError family
 * ====================================================================== */

/* Python's OSError subclasses (PEP 3151), with its hierarchy: the
 * variables are cg_BlockingIOError, ... (OSError and TimeoutError are in
 * cogen.h). */
#define CG_IO_EXC_TYPES(X)                       \
    X(BlockingIOError, OSError)                  \
    X(ChildProcessError, OSError)                \
    X(ConnectionError, OSError)                  \
    X(BrokenPipeError, ConnectionError)          \
    X(ConnectionAbortedError, ConnectionError)   \
    X(ConnectionRefusedError, ConnectionError)   \
    X(ConnectionResetError, ConnectionError)     \
    X(FileExistsError, OSError)                  \
    X(FileNotFoundError, OSError)                \
    X(InterruptedError, OSError)                 \
    X(IsADirectoryError, OSError)                \
    X(NotADirectoryError, OSError)               \
    X(PermissionError, OSError)                  \
    X(ProcessLookupError, OSError)               \
    X(EOFError, Exception)                       \
    X(gaierror, OSError)

#define CG__DECLARE_IO_TYPE(name, base) extern CG_API const cg_exc_type cg_##name;
CG_IO_EXC_TYPES(CG__DECLARE_IO_TYPE)
#undef CG__DECLARE_IO_TYPE

/* OSError(err, strerror(err)) as Python makes it from an errno: of the
 * subclass Python's OSError constructor picks for err (plain OSError for
 * the others), message '[Errno err] strerror'. New reference. */
CG_API cg_exc *cg_oserror_new(int err);
/* The same with a message of one's own (copied), e.g. socket.gaierror's
 * '[Errno -2] Name or service not known': type may be any OSError
 * subclass, or NULL to pick it from err as cg_oserror_new does. */
CG_API cg_exc *cg_oserror_new_msg(const cg_exc_type *type, int err, const char *msg);
/* Raises cg_oserror_new(err). */
CG_API CG_NORETURN void cg_raise_oserror(int err);
/* e.errno: the errno of an exception made by the two calls above, else 0
 * (also for NULL). */
CG_API int cg_exc_errno(const cg_exc *e);

/* ======================================================================
 * File descriptors on the loop
 * ====================================================================== */

/* The fd's direction of interest. */
typedef enum cg_io_dir { CG_IO_READ = 0, CG_IO_WRITE = 1 } cg_io_dir;

/* Waits, in a task, until fd is readable (writable): returns at once when
 * it is. Level-triggered as seen from the caller: a call after a partial
 * read of what is there returns at once. One task at a time may wait on
 * each direction of an fd: a second gets RuntimeError('another task is
 * already waiting to read (write) fd N'). An fd made to leave the loop
 * (cg_io_forget, cg_io_close) while a task waits on it raises
 * OSError(EBADF) in the task. Sets fd non-blocking. */
CG_API void cg_wait_readable(int fd);
CG_API void cg_wait_writable(int fd);

/* The fd leaves the running loop (or loop, for the _loop variant, NULL:
 * the running loop): it is unregistered, its callbacks (add_reader/
 * add_writer) removed, and a task waiting on it gets OSError(EBADF).
 * cg_io_close closes it too, and returns close()'s answer (0 or -1 with
 * errno). An fd the loop has not seen is fine (close only). */
CG_API void cg_io_forget(int fd);
CG_API int cg_io_close(int fd);
CG_API void cg_loop_io_forget(cg_loop *loop, int fd);

/* loop.add_reader / add_writer: fn(arg) runs (level-triggered, as
 * asyncio's: in every iteration while the fd stays readable/writable)
 * until removed. Replaces a callback already there. 0, or -1 with errno
 * (EBADF, ENOMEM, EEXIST when a task waits on that direction of the fd,
 * EPERM for an fd epoll cannot wait on, a regular file). remove_reader /
 * remove_writer: 1 if there was one, else 0. */
CG_API int cg_loop_add_reader(cg_loop *loop, int fd, cg_callback fn, void *arg);
CG_API int cg_loop_add_writer(cg_loop *loop, int fd, cg_callback fn, void *arg);
CG_API int cg_loop_remove_reader(cg_loop *loop, int fd);
CG_API int cg_loop_remove_writer(cg_loop *loop, int fd);

/* ======================================================================
 * Sockets (loop.sock_*), in a task
 * ====================================================================== */

/* recv: waits until at least one byte is there; returns how many were read
 * (at most n), 0 at end of stream. recv_into is the same into buf (asyncio
 * has both: here they are one). Raises OSError on error. */
CG_API size_t cg_sock_recv(int fd, void *buf, size_t n);
/* sendall: sends all n bytes, waiting while the socket is full. On error
 * (ECONNRESET, EPIPE, ...) raises it; how much went out is then unknown,
 * as in asyncio. SIGPIPE is never raised (MSG_NOSIGNAL). */
CG_API void cg_sock_sendall(int fd, const void *buf, size_t n);
/* accept: waits for a connection; returns its fd, non-blocking and
 * close-on-exec; addr/len may be NULL. */
CG_API int cg_sock_accept(int fd, struct sockaddr *addr, socklen_t *len);
/* connect: waits until fd (a non-blocking socket not yet connected) is
 * connected, or raises (ConnectionRefusedError, ...). */
CG_API void cg_sock_connect(int fd, const struct sockaddr *addr, socklen_t len);
/* Datagrams: recvfrom waits for one and returns its size (truncated to n);
 * sendto sends one, waiting while the socket is full. */
CG_API size_t cg_sock_recvfrom(int fd, void *buf, size_t n, struct sockaddr *addr, socklen_t *len);
CG_API void cg_sock_sendto(int fd, const void *buf, size_t n, const struct sockaddr *addr, socklen_t len);

/* Plain read/write on any fd epoll can wait on (pipes, ttys, sockets):
 * cg_read waits for at least one byte and returns how many (0: end of
 * file); cg_write writes all n. */
CG_API size_t cg_read(int fd, void *buf, size_t n);
CG_API void cg_write(int fd, const void *buf, size_t n);


/* ======================================================================
 * DNS, off the loop (loop.getaddrinfo / getnameinfo), in a task
 * ====================================================================== */

#include <netdb.h>

/* getaddrinfo(3) on the DNS workers (a pool of its own, with its own
 * limit, so that slow lookups cannot starve other work sent to threads):
 * the list (free it with freeaddrinfo), or socket.gaierror
 * ('[Errno -2] Name or service not known', errno the EAI_* code) raised.
 * Cancellable: the task stops waiting (the lookup finishes on its worker
 * and is dropped). */
CG_API struct addrinfo *cg_getaddrinfo(const char *host, const char *port, const struct addrinfo *hints);
/* getnameinfo(3) likewise: host and serv filled; gaierror raised. */
CG_API void cg_getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, size_t hostlen, char *serv,
                           size_t servlen, int flags);

/* ======================================================================
 * Streams (asyncio.StreamReader / StreamWriter, open_connection,
 * start_server), in a task
 * ====================================================================== */

typedef struct cg_stream_reader cg_stream_reader;
typedef struct cg_stream_writer cg_stream_writer;
typedef struct cg_server cg_server;

/* asyncio's exceptions of streams: IncompleteReadError (an EOFError)
 * keeps the partial bytes and the count expected; LimitOverrunError (an
 * Exception) the count consumed. */
extern CG_API const cg_exc_type cg_IncompleteReadError;
extern CG_API const cg_exc_type cg_LimitOverrunError;
/* e.partial (borrowed, valid while e lives) and its length, e.expected
 * (SIZE_MAX: None, for readuntil), e.consumed. 0/NULL for other exceptions. */
CG_API const void *cg_incomplete_read_partial(const cg_exc *e, size_t *len);
CG_API size_t cg_incomplete_read_expected(const cg_exc *e);
CG_API size_t cg_limit_overrun_consumed(const cg_exc *e);

/* Options of a connection's streams; NULL or 0 fields: asyncio's defaults. */
typedef struct cg_stream_opts {
    size_t limit;       /* the reader's line limit: 64 KiB */
    size_t high_water;  /* the writer's: 64 KiB */
    size_t low_water;   /* high_water / 4 */
} cg_stream_opts;

/* open_connection(host, port): a TCP connection (IPv4 or IPv6; a host
 * name is resolved off the loop), trying each address in turn as asyncio
 * does, its reader and writer in *r and *w. Raises OSError as asyncio's
 * create_connection: the error of the one address (ConnectionRefusedError
 * '[Errno 111] Connect call failed ('127.0.0.1', 1)'), or the first when
 * all read the same, else OSError('Multiple exceptions: a, b'); gaierror
 * for a name that does not resolve. Cancellable: the socket is closed. */
CG_API void cg_open_connection(const char *host, int port, const cg_stream_opts *opts, cg_stream_reader **r,
                               cg_stream_writer **w);
/* open_unix_connection(path). */
CG_API void cg_open_unix_connection(const char *path, const cg_stream_opts *opts, cg_stream_reader **r,
                                    cg_stream_writer **w);
/* Streams over an fd one already has (a connected socket, a pipe's end,
 * a tty): the reader, the writer, or both (NULL: not wanted). The streams
 * own fd from then on. */
CG_API void cg_stream_open_fd(int fd, const cg_stream_opts *opts, cg_stream_reader **r, cg_stream_writer **w);

/* The reader. What the read calls return points into the reader's buffer
 * (readline, readuntil) and stays valid until the next call on it.
 * - read: up to n bytes into buf, waiting for at least one; 0 at EOF.
 * - readexactly: n bytes into buf, or IncompleteReadError at EOF (the
 *   partial bytes in it, and consumed from the reader).
 * - readline: up to and including '\n' (*len bytes), the rest at EOF (0
 *   at EOF with nothing left); a line longer than the limit raises
 *   ValueError('Separator is not found, and chunk exceed the limit') or
 *   ('Separator is found, but chunk is longer than limit'), as asyncio's
 *   readline turns readuntil's LimitOverrunError, and what was buffered is
 *   dropped as asyncio drops it.
 * - readuntil(sep): up to and including sep; IncompleteReadError at EOF
 *   without it, LimitOverrunError('Separator is not found, and chunk
 *   exceed the limit' / 'Separator is found, but chunk is longer than
 *   limit') with the data kept in the reader.
 * - at_eof: the buffer is empty and EOF was seen.
 * A second task reading while one waits: RuntimeError('read() called while
 * another coroutine is already waiting for incoming data') (with the
 * call's name). */
CG_API size_t cg_stream_read(cg_stream_reader *r, void *buf, size_t n);
CG_API void cg_stream_readexactly(cg_stream_reader *r, void *buf, size_t n);
CG_API const char *cg_stream_readline(cg_stream_reader *r, size_t *len);
CG_API const char *cg_stream_readuntil(cg_stream_reader *r, const void *sep, size_t seplen, size_t *len);
CG_API int cg_stream_at_eof(const cg_stream_reader *r);

/* The writer.
 * - write: sends at once when nothing is queued; what the socket does not
 *   take is queued (copied) and sent when the fd is writable, whether or
 *   not anybody drains; never waits. Everything queued goes out in one
 *   system call. Once the connection is lost (or closing) writes are
 *   dropped, as asyncio's transport drops them; after write_eof:
 *   RuntimeError('Cannot call write() after write_eof()').
 * - drain: returns at once (no system call) unless more than the high-water
 *   mark is queued; then waits until the queue is at the low-water mark.
 *   Raises the connection's error (ConnectionResetError, BrokenPipeError,
 *   the exception the reader has), or ConnectionResetError('Connection
 *   lost') once it is closed.
 * - write_eof: shuts the write side down once the queue is out (a pipe:
 *   closes it).
 * - close: the connection ends once the queue is out (the reader then
 *   sees the end); wait_closed waits for that and raises the connection's
 *   error if it ended with one; is_closing: as asyncio's.
 * - peer and socket names: getpeername/getsockname of the socket (0, or
 *   -1 with errno). */
CG_API void cg_stream_write(cg_stream_writer *w, const void *buf, size_t n);
CG_API void cg_stream_drain(cg_stream_writer *w);
CG_API void cg_stream_write_eof(cg_stream_writer *w);
CG_API void cg_stream_close(cg_stream_writer *w);
CG_API void cg_stream_wait_closed(cg_stream_writer *w);
CG_API int cg_stream_is_closing(const cg_stream_writer *w);
CG_API int cg_stream_peername(const cg_stream_writer *w, struct sockaddr_storage *addr, socklen_t *len);
CG_API int cg_stream_sockname(const cg_stream_writer *w, struct sockaddr_storage *addr, socklen_t *len);
CG_API int cg_stream_fileno(const cg_stream_writer *w);
/* transport.get_write_buffer_size(): the bytes queued, not yet sent. */
CG_API size_t cg_stream_buffer_size(const cg_stream_writer *w);
/* Frees a reader or writer (the pair's connection closes when both are
 * freed, or at close). NULL is ignored. */
CG_API void cg_stream_reader_free(cg_stream_reader *r);
CG_API void cg_stream_writer_free(cg_stream_writer *w);

/* start_server(client_connected_cb, host, port): listens, and runs
 * cb(reader, writer, arg) as a task of its own for each connection (the
 * task frees both when cb returns; an exception leaving cb is reported to
 * the loop's exception handler). NULL host: every interface. */
typedef void (*cg_client_connected)(cg_stream_reader *r, cg_stream_writer *w, void *arg);
typedef struct cg_server_opts {
    int backlog;            /* 0: 100 */
    int reuse_address;      /* SO_REUSEADDR (asyncio's default on Unix: on) ; -1 off */
    int reuse_port;         /* SO_REUSEPORT */
    size_t stack_size;      /* of the connection tasks (0: cogen's default) */
    cg_ns accept_retry_delay; /* out of fds, accept sleeps this long: 0: 1 s */
    cg_stream_opts stream;
} cg_server_opts;
CG_API cg_server *cg_start_server(cg_client_connected cb, void *arg, const char *host, int port,
                                  const cg_server_opts *opts);
CG_API cg_server *cg_start_unix_server(cg_client_connected cb, void *arg, const char *path,
                                       const cg_server_opts *opts);
/* The port it listens on (the first socket's), for port 0. */
CG_API int cg_server_port(const cg_server *s);
CG_API void cg_server_close(cg_server *s);
CG_API void cg_server_wait_closed(cg_server *s);
CG_API void cg_server_serve_forever(cg_server *s);
CG_API void cg_server_free(cg_server *s);

#ifdef __cplusplus
}
#endif

#endif
