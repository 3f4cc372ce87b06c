/* serve_until_signal.h: what the I/O examples share: serving until SIGINT
 * or SIGTERM, then stopping cleanly, and their main(). The signals come
 * through a signalfd read by a loop callback (add_reader). */
#ifndef COGEN_EXAMPLE_SERVE_UNTIL_SIGNAL_H
#define COGEN_EXAMPLE_SERVE_UNTIL_SIGNAL_H

#include <cogen_io.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/signalfd.h>
#include <unistd.h>

typedef struct stop_signal {
    int fd;
    int stopping;
    cg_server *server;
} stop_signal;

/* A signal: every connection is closed (its reader sees the end) and the
 * server closed, which ends serve_forever once the connections are gone. */
static void stop_signal_ready(void *p) {
    stop_signal *s = p;
    struct signalfd_siginfo si;
    if (read(s->fd, &si, sizeof si) != (ssize_t)sizeof si) return;
    cg_loop_remove_reader(cg_get_running_loop(), s->fd);
    s->stopping = 1;
    cg_server_close_clients(s->server);
    cg_server_close(s->server);
}

static void serve_forever_fn(void *s) { cg_server_serve_forever(s); }

/* Prints 'NAME: listening on 127.0.0.1:PORT', serves until SIGINT or
 * SIGTERM, then frees s and prints 'NAME: stopped'. */
static void serve_until_signal(cg_server *s, const char *name) {
    stop_signal sig = {-1, 0, s};
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0 || (sig.fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC)) < 0 ||
        cg_loop_add_reader(cg_get_running_loop(), sig.fd, stop_signal_ready, &sig) < 0) {
        perror("signalfd");
        exit(1);
    }
    printf("%s: listening on 127.0.0.1:%d\n", name, cg_server_port(s));
    fflush(stdout);
    cg_exc *e = cg_try_catch(serve_forever_fn, s, &cg_CancelledError); /* how serve_forever ends */
    if (e && !sig.stopping) cg_raise(e);
    cg_exc_unref(e);
    cg_loop_remove_reader(cg_get_running_loop(), sig.fd);
    cg_io_close(sig.fd);
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
