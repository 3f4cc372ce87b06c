/* echo-server: echoes every byte on 127.0.0.1:PORT, one task per
 * connection, with the streams API (asyncio's start_server with an echo
 * callback: read, write, drain). Runs until SIGINT or SIGTERM, then closes
 * the listener and every connection and exits with status 0.
 *
 *     build/examples/echo-server 8888 &
 *     printf 'hello\n' | nc -q1 127.0.0.1 8888
 */
#define _POSIX_C_SOURCE 200809L /* cogen_io.h declares sigset_t uses (POSIX) */
#include <cogen_io.h>
#include <stdio.h>
#include <stdlib.h>

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

int main(int argc, char **argv) { return example_main(argc, argv, main_task, "PORT"); }
