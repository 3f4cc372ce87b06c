/* echo-server: echoes every byte on 127.0.0.1:PORT, one task per
 * connection, with the streams API (asyncio's start_server with an echo
 * callback: read, write, drain). Runs until SIGINT or SIGTERM, then closes
 * the listener and every connection and exits with status 0.
 *
 *     build/examples/echo-server PORT [LOOPS]
 *     build/examples/echo-server 8888 &
 *     printf 'hello\n' | nc -q1 127.0.0.1 8888
 *
 * With LOOPS > 1 it runs that many loops, one per thread (cg_run_parallel),
 * each with a listener of its own on the same port (SO_REUSEPORT: the
 * kernel spreads the connections, and each is served by one loop for its
 * lifetime); the main thread waits for the signal and stops every loop
 * with call_soon_threadsafe (serve_loops.h, shared with http-hello).
 */
#define _POSIX_C_SOURCE 200809L /* cogen_io.h declares sigset_t uses (POSIX) */
#include <cogen_io.h>
#include <stdio.h>
#include <stdlib.h>

#include "serve_loops.h"
#include "serve_until_signal.h"

static void echo(cg_stream_reader *r, cg_stream_writer *w, void *arg) {
    (void)arg;
    char buf[16384];
    size_t n;
    while ((n = cg_stream_read(r, buf, sizeof buf)) > 0) {
        cg_stream_write(w, buf, n);
        cg_stream_drain(w); /* no system call unless the peer is behind */
    }
    cg_stream_close(w);
}

static void *main_task(cg_gen *g, void *arg) {
    (void)g;
    char **argv = arg;
    serve_until_signal(cg_start_server(echo, NULL, "127.0.0.1", atoi(argv[1]), NULL), "echo-server");
    return NULL;
}

int main(int argc, char **argv) {
    int st = serve_loops_main(argc, argv, 2, "echo-server", echo);
    return st >= 0 ? st : example_main(argc, argv, main_task, "PORT [LOOPS]");
}
