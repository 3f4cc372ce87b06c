/* io_common.h: what the I/O peer servers and the load generator share.
 *
 * The servers (server_epoll.c, server_libuv.c, each built twice: echo and
 * HTTP) take PORT as their first argument, listen on 127.0.0.1 and run
 * until SIGTERM or SIGINT. The HTTP flavour answers "Hello, World!" to
 * every request of an HTTP/1.1 keep-alive connection, pipelined or not:
 * http_scan counts the requests that a chunk of bytes completes, so that
 * both servers parse alike and only their event handling differs.
 */
#ifndef BENCH_IO_COMMON_H
#define BENCH_IO_COMMON_H

#include "../common.h" /* bench_die */

#include <sys/resource.h>

#define IO_UNUSED BENCH_UNUSED

/* What the server does, for its usage line. */
#ifdef IO_HTTP
#define IO_SERVER_WHAT "answers HTTP/1.1 GETs with \"Hello, World!\" (keep-alive, pipelining)"
#else
#define IO_SERVER_WHAT "echoes every byte"
#endif

/* The largest chunk read at once; a 64-byte message always fits, so a
 * read that returns less than this has emptied the socket ("short read"). */
#define IO_READ_SIZE 65536

/* argv[1] as a TCP port, or exit with the usage line. */
IO_UNUSED static int io_port_arg(int argc, char **argv, const char *what) {
    char *end = NULL;
    long port = argc > 1 ? strtol(argv[1], &end, 10) : -1;
    if (argc != 2 || !end || *end || port <= 0 || port > 65535) {
        fprintf(stderr, "usage: %s PORT\n  %s on 127.0.0.1:PORT until SIGTERM or SIGINT\n", argv[0], what);
        exit(2);
    }
    return (int)port;
}

/* The soft limit on open files raised to the hard limit: 1,000
 * connections and their listener pass Debian's default soft limit of
 * 1,024 only just. */
IO_UNUSED static void io_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* --- HTTP --------------------------------------------------------------- */

#define HTTP_RESPONSE                                                            \
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\n" \
    "Hello, World!"
#define HTTP_RESPONSE_LEN (sizeof HTTP_RESPONSE - 1)

/* Requests end with an empty line; a GET has no body. The state is how
 * much of "\r\n\r\n" the bytes seen so far end with (0 to 3), so a request
 * split across reads is counted when its last byte arrives. */
IO_UNUSED static size_t http_scan(unsigned *state, const char *p, size_t n) {
    static const char end[] = "\r\n\r\n";
    size_t requests = 0;
    unsigned s = *state;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == end[s]) {
            if (++s == 4) requests++, s = 0;
        } else {
            s = p[i] == '\r';
        }
    }
    *state = s;
    return requests;
}

/* Room for the answers to one read's requests: each request takes at
 * least its 4-byte empty line. */
#define HTTP_OUT_SIZE ((IO_READ_SIZE / 4 + 1) * HTTP_RESPONSE_LEN)

/* The answers to `requests` requests (one read's worth), laid end to end
 * in out, which has HTTP_OUT_SIZE bytes; returns their length. */
IO_UNUSED static size_t http_answers(char *out, size_t requests) {
    if (requests > HTTP_OUT_SIZE / HTTP_RESPONSE_LEN) bench_die("%zu requests in one read", requests);
    for (size_t i = 0; i < requests; i++) memcpy(out + i * HTTP_RESPONSE_LEN, HTTP_RESPONSE, HTTP_RESPONSE_LEN);
    return requests * HTTP_RESPONSE_LEN;
}

#endif
