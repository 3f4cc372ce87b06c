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


/* Call sites for the task dump (cogen_loop.h, CG__SITE). */
#ifndef COGEN_BUILDING
#define cg_wait_readable(fd) (CG__SITE(), cg_wait_readable(fd))
#define cg_wait_writable(fd) (CG__SITE(), cg_wait_writable(fd))
#define cg_sock_recv(fd, buf, n) (CG__SITE(), cg_sock_recv(fd, buf, n))
#define cg_sock_sendall(fd, buf, n) (CG__SITE(), cg_sock_sendall(fd, buf, n))
#define cg_sock_accept(fd, addr, len) (CG__SITE(), cg_sock_accept(fd, addr, len))
#define cg_sock_connect(fd, addr, len) (CG__SITE(), cg_sock_connect(fd, addr, len))
#define cg_sock_recvfrom(fd, buf, n, addr, len) (CG__SITE(), cg_sock_recvfrom(fd, buf, n, addr, len))
#define cg_sock_sendto(fd, buf, n, addr, len) (CG__SITE(), cg_sock_sendto(fd, buf, n, addr, len))
#define cg_read(fd, buf, n) (CG__SITE(), cg_read(fd, buf, n))
#define cg_write(fd, buf, n) (CG__SITE(), cg_write(fd, buf, n))
#endif

/* ======================================================================
 * DNS, off the loop (loop.getaddrinfo / getnameinfo), in a task
 * ====================================================================== */

#include <netdb.h>

/* getaddrinfo(3) on the DNS workers (a pool of its own, 4 threads for the
 * process, so that slow lookups cannot starve other work sent to threads):
 * the list (free it with freeaddrinfo), or socket.gaierror
 * ('[Errno -2] Name or service not known', errno the EAI_* code) raised;
 * EAI_SYSTEM raises the OSError of its errno, as Python does. A numeric
 * host with a numeric port (or none) is answered at once, without a
 * worker. Cancellable: the task stops waiting (the lookup finishes on its
 * worker and is dropped). Outside a task: RuntimeError. */
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
 * own fd from then on. Every stream over a TCP socket (these, the
 * connections above and a server's) has TCP_NODELAY set, as asyncio's
 * transports have: set it back with setsockopt on cg_stream_fileno(w)
 * to batch small writes. */
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
/* close: stops listening (the connections go on); close_clients (asyncio
 * 3.13's): closes the writer of every connection, whose reader then sees
 * the end; wait_closed: waits until the server is closed and every
 * connection's task has ended; serve_forever: waits until cancelled or
 * closed (CancelledError), closing the server and waiting for it then;
 * RuntimeError('server <Server sockets=(...)> is already being awaited on
 * serve_forever()') / ('server <Server sockets=()> is closed') as
 * asyncio's. free: closes it; the memory goes once its connections end. */
CG_API void cg_server_close(cg_server *s);
CG_API void cg_server_close_clients(cg_server *s);
CG_API void cg_server_wait_closed(cg_server *s);
CG_API void cg_server_serve_forever(cg_server *s);
CG_API void cg_server_free(cg_server *s);

/* ======================================================================
 * Threads: executors (concurrent.futures.ThreadPoolExecutor,
 * loop.run_in_executor, asyncio.to_thread), concurrent futures, and a
 * loop's work for other threads (run_coroutine_threadsafe, wrap_future)
 * ====================================================================== */

/* A function run on a worker thread. It returns its result, or raises
 * (cg_raise, CG_RAISE) what it has to report: that exception moves to the
 * loop's thread and is raised in the task that awaits the call, as
 * asyncio.to_thread re-raises what the function raised. It runs on the
 * worker's own stack, outside any task and loop: no cg_await, and nothing
 * of the loop but cg_loop_call_soon_threadsafe. */
typedef void *(*cg_thread_fn)(void *arg);

typedef struct cg_executor cg_executor;

/* ThreadPoolExecutor(max_workers): at most max_workers threads (0:
 * asyncio's default, min(32, cpus + 4)), started as jobs come while no
 * worker is idle. Jobs run first in, first out. NULL with errno ENOMEM. */
CG_API cg_executor *cg_executor_new(unsigned max_workers);
/* executor.shutdown(wait): no job may be submitted any more (RuntimeError
 * ('cannot schedule new futures after shutdown')); the jobs queued still
 * run. wait: blocks the calling thread until they have all run and the
 * workers have ended (from a task, that blocks its loop: asyncio's
 * shutdown(wait=True) does the same). May be called again. */
CG_API void cg_executor_shutdown(cg_executor *ex, int wait);
/* Frees the handle: shutdown(wait=False) first if it was not shut down;
 * the workers end once their queue is empty. NULL is ignored. */
CG_API void cg_executor_free(cg_executor *ex);
/* How many workers it has started (they stay until the shutdown). */
CG_API unsigned cg_executor_workers(cg_executor *ex);

/* loop.run_in_executor(executor, fn, arg), on the loop's thread (NULL
 * loop: the running one): fn(arg) is queued on ex (NULL: the loop's
 * default executor, made the first time) and a new reference to a future
 * of the loop is returned, done with fn's result or what it raised.
 * Cancelling the future while the job is queued takes the job out (it
 * never runs); once it runs it finishes, and its result is dropped (a
 * result that owns memory is then lost: a function that allocates should
 * not be cancelled while it runs, or should keep its result elsewhere).
 * Raises RuntimeError('Event loop is closed'), RuntimeError('cannot
 * schedule new futures after shutdown') for an executor shut down,
 * RuntimeError('Executor shutdown has been called') for the default one
 * once the loop's shutdown_default_executor ran (cg_run runs it: it waits,
 * without blocking the loop, for the default executor's jobs to finish),
 * RuntimeError("can't start new thread"), MemoryError. When the loop
 * closes, its default executor is shut down without waiting (its queued
 * jobs still run; their outcomes are dropped), as BaseEventLoop.close
 * does. */
CG_API cg_future *cg_loop_run_in_executor(cg_loop *loop, cg_executor *ex, cg_thread_fn fn, void *arg);
/* await asyncio.to_thread(fn, arg), in a task: runs fn(arg) on the
 * running loop's default executor and returns its result, or raises what
 * it raised. Cancellable as above (CancelledError raised at once). */
CG_API void *cg_to_thread(cg_thread_fn fn, void *arg);

/* concurrent.futures.Future: a future any thread may complete, wait for
 * (blocking) or cancel, reference counted (atomically). Its exception is
 * handed, as a reference, to whoever retrieves it: cogen exceptions may
 * move between threads but not be shared, so let one thread at a time
 * retrieve it (result, or a task awaiting it), and drop the last
 * reference to the future on that thread. */
typedef struct cg_cfuture cg_cfuture;
typedef void (*cg_cfuture_callback)(cg_cfuture *f, void *arg);

/* A new pending future; NULL with errno ENOMEM. */
CG_API cg_cfuture *cg_cfuture_new(void);
CG_API cg_cfuture *cg_cfuture_ref(cg_cfuture *f);
CG_API void cg_cfuture_unref(cg_cfuture *f);
CG_API int cg_cfuture_done(cg_cfuture *f);
CG_API int cg_cfuture_cancelled(cg_cfuture *f);
/* Future.cancel(): 1 if it was pending (cancelled now: its callbacks run
 * in the calling thread) or was cancelled already, 0 when it has an
 * outcome. */
CG_API int cg_cfuture_cancel(cg_cfuture *f);
/* set_result / set_exception (e consumed): 0, or -1 with errno EINVAL when
 * it is done already (Python's InvalidStateError). The callbacks run in
 * the calling thread. */
CG_API int cg_cfuture_set_result(cg_cfuture *f, void *v);
CG_API int cg_cfuture_set_exception(cg_cfuture *f, cg_exc *e);
/* add_done_callback: fn(f, arg) runs in the thread that completes f, or at
 * once when it is done. -1 with errno ENOMEM. */
CG_API int cg_cfuture_add_done_callback(cg_cfuture *f, cg_cfuture_callback fn, void *arg);
/* Future.result(timeout): blocks the calling thread until f is done or
 * timeout has passed (CG_NEVER: no limit); CG_RETURNED with *out the
 * result, or CG_RAISED with *exc (a new reference): f's exception,
 * CancelledError() when it was cancelled, TimeoutError() when time ran
 * out. out and exc may be NULL. */
CG_API cg_status cg_cfuture_result(cg_cfuture *f, cg_ns timeout, void **out, cg_exc **exc);

/* asyncio.run_coroutine_threadsafe(body(arg), loop), from a thread other
 * than the loop's: body becomes a task of loop (made by a call_soon_
 * threadsafe callback) and its outcome goes to the concurrent future
 * returned (a new reference; NULL with errno ENOMEM or EINVAL). Cancelling
 * that future cancels the task. The loop must be running, or run later:
 * a loop closed before it makes the task leaves the future pending. */
CG_API cg_cfuture *cg_run_coroutine_threadsafe(cg_loop *loop, cg_fn body, void *arg);
/* asyncio.wrap_future(f), in the running loop: a future of the loop (new
 * reference) that gets f's outcome when f is done, in whatever thread f is
 * completed; cancelling it cancels f. cg_await_cfuture(f) awaits it, in a
 * task, without blocking the loop. */
CG_API cg_future *cg_wrap_future(cg_cfuture *f);
CG_API void *cg_await_cfuture(cg_cfuture *f);

/* ======================================================================
 * Datagram endpoints (loop.create_datagram_endpoint), in a task
 * ====================================================================== */

/* A UDP socket with awaitable sends and receives, instead of asyncio's
 * protocol callbacks. */
typedef struct cg_datagram cg_datagram;
typedef struct cg_datagram_opts {
    int reuse_port;      /* SO_REUSEPORT */
    int allow_broadcast; /* SO_BROADCAST */
} cg_datagram_opts;
/* A socket bound to local_host:local_port (local_port -1: not bound; NULL
 * host: every interface; port 0: any) and/or connected to
 * remote_host:remote_port (NULL: not connected); names resolved off the
 * loop. Raises OSError (the bind's, the connect's), gaierror; ValueError
 * when neither address is given. Free with cg_datagram_close. */
CG_API cg_datagram *cg_open_datagram(const char *local_host, int local_port, const char *remote_host,
                                     int remote_port, const cg_datagram_opts *opts);
/* sendto: one datagram, waiting while the socket is full. addr NULL sends
 * to the connected peer; on a connected endpoint another address is
 * ValueError('Invalid address: must be None or (\'127.0.0.1\', 9)') as in
 * asyncio. Errors raise (ConnectionRefusedError after an ICMP refusal on a
 * connected endpoint, ...). */
CG_API void cg_datagram_sendto(cg_datagram *d, const void *buf, size_t n, const struct sockaddr *addr, socklen_t len);
/* recvfrom: waits for one datagram; its size (truncated to n), the sender
 * in addr/len (may be NULL). Cancellable: a datagram that arrives stays for
 * the next call. */
CG_API size_t cg_datagram_recvfrom(cg_datagram *d, void *buf, size_t n, struct sockaddr_storage *addr, socklen_t *len);
CG_API int cg_datagram_sockname(const cg_datagram *d, struct sockaddr_storage *addr, socklen_t *len);
CG_API int cg_datagram_fileno(const cg_datagram *d);
/* Closes the socket and frees d (NULL ignored). */
CG_API void cg_datagram_close(cg_datagram *d);

/* ======================================================================
 * Signals (loop.add_signal_handler, and a signal wait) and subprocesses
 * (asyncio.create_subprocess_exec / create_subprocess_shell)
 * ====================================================================== */

#include <signal.h>

/* Signals. The loop reads the signals it catches from a signalfd: each is
 * blocked in the loop's thread while the loop catches it, and its
 * disposition is a handler that, where the signal is not blocked (another
 * thread; see docs/loop.md), hands it to the loop through an eventfd, as
 * asyncio's C handler does. So:
 * - Other threads may take a caught signal; the loop sees it all the same.
 * - Children inherit a blocked mask across exec: cg_create_subprocess_*
 *   spawns with an empty mask; a child made with fork/exec by other code
 *   should unblock the signals itself.
 * - The mask and the disposition of each signal are put back when the loop
 *   stops catching it: when its handler is removed (and no wait caught
 *   it), and when the loop closes. A signal that arrived and was not read
 *   then is dropped.
 * Call these in the loop's thread: the mask is per thread. */
/* loop.add_signal_handler(sig, fn, arg): fn(arg) runs as a callback of the
 * loop (call_soon'd when the loop reads the signal), not in signal
 * context, once for each delivery the kernel makes (standard signals that
 * arrive together are merged, as always). Replaces the handler already
 * there. loop NULL: the running loop. Raises asyncio's errors:
 * ValueError('invalid signal number N') for a number outside
 * signal.valid_signals() (1..64 but 32 and 33), RuntimeError('sig N cannot
 * be caught') for SIGKILL and SIGSTOP, RuntimeError('Event loop is
 * closed'); TypeError for a NULL fn. */
CG_API void cg_loop_add_signal_handler(cg_loop *loop, int sig, cg_callback fn, void *arg);
/* remove_signal_handler(sig): 1 if there was a handler (it is gone, and
 * the signal's disposition and mask are what they were before), else 0.
 * ValueError for an invalid number. */
CG_API int cg_loop_remove_signal_handler(cg_loop *loop, int sig);
/* Waits, in a task, until a signal of set arrives, and returns its number
 * (it is consumed). Every task waiting for that signal is woken, and its
 * handler (if any) runs too. A signal of set that arrived while nobody
 * waited for it and no handler took it is kept for the next wait (once:
 * standard signals merge), which returns at once. The signals of set are
 * caught from the first wait until the loop closes. Cancellable. Errors as
 * add_signal_handler's; ValueError('no signal to wait for') for an empty
 * set. */
CG_API int cg_wait_signal(const sigset_t *set);

/* Subprocesses. A process object (asyncio.subprocess.Process) belongs to
 * the loop that made it. Its child is watched from the start (a pidfd the
 * loop waits on; a thread blocked in waitpid where pidfd_open says ENOSYS)
 * and reaped as soon as it ends, whoever waits or not: no zombie is left.
 *
 * stdin, stdout, stderr: one of these modes each (asyncio's None, PIPE,
 * DEVNULL, STDOUT, or a file descriptor). */
enum {
    CG_PROC_INHERIT = 0, /* the parent's (None) */
    CG_PROC_PIPE,        /* a pipe to the parent (subprocess.PIPE) */
    CG_PROC_DEVNULL,     /* /dev/null (subprocess.DEVNULL) */
    CG_PROC_STDOUT,      /* stderr only: where stdout goes (subprocess.STDOUT) */
    CG_PROC_FD           /* the fd in *_fd (duplicated into the child; the
                            caller keeps and closes its own) */
};

typedef struct cg_process_opts {
    int stdin_mode, stdout_mode, stderr_mode; /* CG_PROC_*; 0: inherit */
    int stdin_fd, stdout_fd, stderr_fd;       /* for CG_PROC_FD */
    const char *cwd;                          /* NULL: the parent's */
    char *const *env;                         /* NULL: the parent's environ */
    int new_session;                          /* start_new_session (setsid) */
    cg_stream_opts stream;                    /* for the pipes' streams (limit=) */
} cg_process_opts;

typedef struct cg_process cg_process;

/* create_subprocess_exec(file, *argv[1:]): in a task (or a callback) of
 * the running loop, spawns file (looked up in PATH when it has no '/')
 * with argv (argv[0] included, NULL-terminated). The child gets an empty
 * signal mask, SIGPIPE and SIGXFSZ at their defaults, and no fd of the
 * parent but stdin, stdout and stderr (close_fds=True). A program that
 * cannot be run raises subprocess's OSError: FileNotFoundError('[Errno 2]
 * No such file or directory: \'prog\''), PermissionError('[Errno 13]
 * Permission denied: \'prog\''). opts NULL: everything inherited. */
CG_API cg_process *cg_create_subprocess_exec(const char *file, char *const argv[], const cg_process_opts *opts);
/* create_subprocess_shell(cmd): /bin/sh -c cmd. */
CG_API cg_process *cg_create_subprocess_shell(const char *cmd, const cg_process_opts *opts);

CG_API int cg_process_pid(const cg_process *p);
/* returncode: 1 and *code once the child has been reaped (its exit status,
 * or minus the number of the signal that killed it, as asyncio), else 0
 * (None). */
CG_API int cg_process_returncode(const cg_process *p, int *code);
/* await wait(): the returncode, once the child has ended. Cancellable (the
 * child runs on). */
CG_API int cg_process_wait(cg_process *p);
/* send_signal / terminate (SIGTERM) / kill (SIGKILL). Once the child has
 * been reaped: ProcessLookupError() (its pid may be another process's
 * now; asyncio raises it once the process has ended and its pipes are
 * closed). */
CG_API void cg_process_send_signal(cg_process *p, int sig);
CG_API void cg_process_terminate(cg_process *p);
CG_API void cg_process_kill(cg_process *p);

/* The pipes: the parent's ends (non-blocking once the loop has seen them),
 * -1 where the mode was not CG_PROC_PIPE or the pipe was closed, taken or
 * made a stream (below). Read stdout and stderr with cg_read; write stdin with
 * cg_process_write, which raises BrokenPipeError (never SIGPIPE) once the
 * child has closed it, and close it with cg_process_close_stdin (EOF for
 * the child). cg_process_take_fd(p, 0..2): the fd is the caller's from
 * then on (to close with cg_io_close); -1 if none. */
CG_API int cg_process_stdin(const cg_process *p);
CG_API int cg_process_stdout(const cg_process *p);
CG_API int cg_process_stderr(const cg_process *p);
CG_API int cg_process_take_fd(cg_process *p, int i);
CG_API void cg_process_write(cg_process *p, const void *buf, size_t n);
CG_API void cg_process_close_stdin(cg_process *p);

/* The pipes as streams (asyncio's proc.stdin, proc.stdout, proc.stderr):
 * made from the pipe on the first call (the stream owns it from then on:
 * cg_process_stdin() and the others say -1), the same one after; NULL
 * where there is no pipe. They belong to the process (freed with it).
 * Writing to stdin's stream never raises SIGPIPE: a child gone is a lost
 * connection (BrokenPipeError from drain). */
CG_API cg_stream_writer *cg_process_stdin_stream(cg_process *p);
CG_API cg_stream_reader *cg_process_stdout_stream(cg_process *p);
CG_API cg_stream_reader *cg_process_stderr_stream(cg_process *p);

/* await communicate(input): feeds input (n bytes; NULL: none) to stdin and
 * closes it, while reading stdout and stderr to their ends, concurrently
 * (tasks of their own, gathered, as asyncio: no deadlock however much
 * comes out); then waits for the child and returns its returncode. *out
 * and *err (each may be NULL) get what came out of the pipes, malloc'd and
 * NUL-terminated (free() them; *len without the NUL), or NULL where that
 * stream was not a pipe. A BrokenPipeError feeding stdin is ignored, as in
 * asyncio. The pipes (or their streams, if they were made) are
 * communicate's from the start (closed at their ends): cancelled, it loses
 * what was read, and the pipes close. */
CG_API int cg_process_communicate(cg_process *p, const void *input, size_t n, char **out, size_t *outlen, char **err,
                                  size_t *errlen);

/* Frees the process object. A child still running is killed (SIGKILL, as
 * asyncio's transport close does) and reaped by the loop when it ends; its
 * pipes are closed. A process whose loop has closed may be freed outside
 * any loop: a child that was still running then was left running, reaped
 * by a detached thread when it ends. NULL is ignored. */
CG_API void cg_process_free(cg_process *p);

#ifdef __cplusplus
}
#endif

#endif
