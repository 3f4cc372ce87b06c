/* serve_until_signal.h: what the I/O examples share: serving until SIGINT
 * or SIGTERM, then stopping cleanly, and their main(). */
#ifndef COGEN_EXAMPLE_SERVE_UNTIL_SIGNAL_H
#define COGEN_EXAMPLE_SERVE_UNTIL_SIGNAL_H

#include <cogen_io.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct stop_signal {
    int stopping;
    cg_server *server;
} stop_signal;

/* A signal: every connection is closed (its reader sees the end) and the
 * server closed, which ends serve_forever once the connections are gone. */
static void stop_signal_ready(void *p) {
    stop_signal *s = p;
    if (s->stopping) return;
    s->stopping = 1;
    cg_server_close_clients(s->server);
    cg_server_close(s->server);
}

static void serve_forever_fn(void *s) { cg_server_serve_forever(s); }

/* Prints 'NAME: listening on 127.0.0.1:PORT', serves until SIGINT or
 * SIGTERM (loop.add_signal_handler), then frees s and prints 'NAME:
 * stopped'. */
static void serve_until_signal(cg_server *s, const char *name) {
    /* static, not on this task's stack: the signal's callback reads it
     * while the task waits (a compact task's stack is swapped out then) */
    static stop_signal sig;
    sig = (stop_signal){0, s};
    cg_loop_add_signal_handler(NULL, SIGINT, stop_signal_ready, &sig);
    cg_loop_add_signal_handler(NULL, SIGTERM, stop_signal_ready, &sig);
    printf("%s: listening on 127.0.0.1:%d\n", name, cg_server_port(s));
    fflush(stdout);
    cg_exc *e = cg_try_catch(serve_forever_fn, s, &cg_CancelledError); /* how serve_forever ends */
    if (e && !sig.stopping) cg_raise(e);
    cg_exc_unref(e);
    cg_loop_remove_signal_handler(NULL, SIGINT);
    cg_loop_remove_signal_handler(NULL, SIGTERM);
    cg_server_free(s);
    printf("%s: stopped\n", name);
}

/* main: body(argv) in cg_run; status 0 when it returns, 1 when it raises. */
static int example_main(int argc, char **argv, cg_fn body, const char *usage) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        return 2;
    }
    cg_exc *e = NULL;
    if (cg_run(body, argv, NULL, NULL, &e) != CG_RETURNED) {
        cg_exc_print(e, stderr);
        cg_exc_unref(e);
        return 1;
    }
    return 0;
}

#endif
