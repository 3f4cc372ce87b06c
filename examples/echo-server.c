/* echo-server: echoes every byte on 127.0.0.1:PORT, one task per
 * connection, with the streams API (asyncio's start_server with an echo
 * callback: read, write, drain). Runs until SIGINT or SIGTERM, then closes
 * the listener and every connection and exits with status 0.
 *
 *     build/examples/echo-server 8888 &
 *     printf 'hello\n' | nc -q1 127.0.0.1 8888
 */
#define _GNU_SOURCE /* signalfd */
#include <cogen_io.h>
#include <stdio.h>
#include <stdlib.h>

#include "stop_signal.h"

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

static int stopping;

static void stop(void *s) {
    stopping = 1;
    cg_server_close_clients(s); /* each reader sees the end */
    cg_server_close(s);         /* serve_forever closes and waits */
}

static void serve(void *s) { cg_server_serve_forever(s); }

static void *main_task(cg_gen *g, void *arg) {
    (void)g;
    cg_server *s = cg_start_server(echo, NULL, "127.0.0.1", atoi(arg), NULL);
    stop_signal sig;
    if (stop_signal_start(&sig, stop, s) < 0) {
        perror("signalfd");
        exit(1);
    }
    printf("echo-server: listening on 127.0.0.1:%d\n", cg_server_port(s));
    fflush(stdout);
    cg_exc *e = cg_try_catch(serve, s, &cg_CancelledError); /* what serve_forever ends with */
    if (e && !stopping) cg_raise(e);
    cg_exc_unref(e);
    stop_signal_end(&sig);
    cg_server_free(s);
    printf("echo-server: stopped\n");
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    cg_exc *e = NULL;
    if (cg_run(main_task, argv[1], NULL, NULL, &e) != CG_RETURNED) {
        cg_exc_print(e, stderr);
        cg_exc_unref(e);
        return 1;
    }
    return 0;
}
