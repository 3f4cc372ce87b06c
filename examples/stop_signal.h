/* stop_signal.h: the I/O examples stop on SIGINT or SIGTERM. A signalfd
 * read by a loop callback (add_reader) calls stop(arg) once. Small on
 * purpose: the loop's own signal handling (add_signal_handler) will
 * replace it. */
#ifndef COGEN_EXAMPLE_STOP_SIGNAL_H
#define COGEN_EXAMPLE_STOP_SIGNAL_H

#include <cogen_io.h>

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

typedef struct stop_signal {
    int fd;
    void (*stop)(void *arg);
    void *arg;
} stop_signal;

static void stop_signal_ready(void *p) {
    stop_signal *s = p;
    struct signalfd_siginfo si;
    if (read(s->fd, &si, sizeof si) != (ssize_t)sizeof si) return;
    cg_loop_remove_reader(cg_get_running_loop(), s->fd);
    s->stop(s->arg);
}

/* Blocks SIGINT and SIGTERM and watches them on the running loop: 0, or -1
 * with errno. */
static int stop_signal_start(stop_signal *s, void (*stop)(void *), void *arg) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0) return -1;
    s->fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    s->stop = stop;
    s->arg = arg;
    if (s->fd < 0) return -1;
    return cg_loop_add_reader(cg_get_running_loop(), s->fd, stop_signal_ready, s);
}

static void stop_signal_end(stop_signal *s) {
    cg_loop_remove_reader(cg_get_running_loop(), s->fd);
    cg_io_close(s->fd);
}

#endif
