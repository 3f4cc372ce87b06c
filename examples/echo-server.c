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
 * with call_soon_threadsafe.
 */
#define _POSIX_C_SOURCE 200809L /* cogen_io.h declares sigset_t uses (POSIX) */
#include <cogen_io.h>
#include <pthread.h>
#include <signal.h>
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

/* ---------------------------------------------------------------------
 * A loop per thread
 * ------------------------------------------------------------------ */

#define MAX_LOOPS 64

typedef struct one_loop {
    int port;
    cg_loop *loop;    /* set once its server listens */
    cg_server *server;
    cg_future *stop;  /* done by the main thread's stop */
} one_loop;

static one_loop loops[MAX_LOOPS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready = PTHREAD_COND_INITIALIZER;
static int listening;

static void await_fn(void *f) { cg_await(f); }

static void *loop_task(cg_gen *g, void *arg) {
    (void)g;
    one_loop *me = arg;
    cg_server_opts o = {.reuse_port = 1};
    me->server = cg_start_server(echo, NULL, "127.0.0.1", me->port, &o);
    me->stop = cg_future_new(cg_get_running_loop());
    pthread_mutex_lock(&mu);
    me->loop = cg_get_running_loop();
    listening++;
    pthread_cond_broadcast(&ready);
    pthread_mutex_unlock(&mu);
    cg_exc *e = cg_try_catch(await_fn, me->stop, &cg_CancelledError);
    cg_exc_unref(e);
    cg_server_close_clients(me->server);
    cg_server_close(me->server);
    cg_server_wait_closed(me->server);
    cg_server_free(me->server);
    cg_future_unref(me->stop);
    return NULL;
}

static void stop_it(void *p) { cg_future_cancel(((one_loop *)p)->stop, NULL); }

typedef struct run_args {
    int n;
    cg_run_result res[MAX_LOOPS];
} run_args;

static void *run_loops(void *p) {
    run_args *a = p;
    void *args[MAX_LOOPS];
    for (int i = 0; i < a->n; i++) args[i] = &loops[i];
    if (cg_run_parallel((size_t)a->n, loop_task, args, NULL, 0, a->res) < 0) perror("cg_run_parallel");
    return NULL;
}

static int serve_on_loops(int port, int n) {
    if (n > MAX_LOOPS) n = MAX_LOOPS;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the threads inherit it: the main thread takes them */
    for (int i = 0; i < n; i++) loops[i].port = port;
    static run_args a;
    a.n = n;
    pthread_t th;
    if (pthread_create(&th, NULL, run_loops, &a) != 0) return 1;
    pthread_mutex_lock(&mu);
    while (listening < n) pthread_cond_wait(&ready, &mu);
    pthread_mutex_unlock(&mu);
    printf("echo-server: listening on 127.0.0.1:%d with %d loops\n", port, n);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    for (int i = 0; i < n; i++) cg_loop_call_soon_threadsafe(loops[i].loop, stop_it, &loops[i]);
    pthread_join(th, NULL);
    int status = 0;
    for (int i = 0; i < n; i++)
        if (a.res[i].status != CG_RETURNED) {
            cg_exc_print(a.res[i].exc, stderr);
            cg_exc_unref(a.res[i].exc);
            status = 1;
        }
    printf("echo-server: stopped\n");
    return status;
}

int main(int argc, char **argv) {
    int n = argc > 2 ? atoi(argv[2]) : 1;
    if (argc >= 2 && n > 1) {
        if (atoi(argv[1]) <= 0) { /* each loop's listener must share one port */
            fprintf(stderr, "echo-server: with LOOPS > 1, PORT must be a port number, not 0\n");
            return 2;
        }
        return serve_on_loops(atoi(argv[1]), n);
    }
    return example_main(argc, argv, main_task, "PORT [LOOPS]");
}
