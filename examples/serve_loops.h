/* serve_loops.h: what the I/O examples share to serve one port from
 * several loops, one per thread (cg_run_parallel): each loop has a
 * listener of its own on the same port (SO_REUSEPORT: the kernel spreads
 * the connections, and each is served by one loop for its lifetime); the
 * main thread waits for SIGINT or SIGTERM and stops every loop with
 * call_soon_threadsafe. */
#ifndef COGEN_EXAMPLE_SERVE_LOOPS_H
#define COGEN_EXAMPLE_SERVE_LOOPS_H

#include <cogen_io.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#define SERVE_LOOPS_MAX 64

typedef struct one_loop {
    int port;
    cg_client_connected cb;
    cg_loop *loop;    /* set once its server listens */
    cg_server *server;
    cg_future *stop;  /* done by the main thread's stop */
} one_loop;

static one_loop serve_loops[SERVE_LOOPS_MAX];
static pthread_mutex_t serve_loops_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t serve_loops_ready = PTHREAD_COND_INITIALIZER;
static int serve_loops_listening;

static void serve_loops_await(void *f) { cg_await(f); }

static void *serve_loops_task(cg_gen *g, void *arg) {
    (void)g;
    one_loop *me = arg;
    cg_server_opts o = {.reuse_port = 1};
    me->server = cg_start_server(me->cb, NULL, "127.0.0.1", me->port, &o);
    me->stop = cg_future_new(cg_get_running_loop());
    pthread_mutex_lock(&serve_loops_mu);
    me->loop = cg_get_running_loop();
    serve_loops_listening++;
    pthread_cond_broadcast(&serve_loops_ready);
    pthread_mutex_unlock(&serve_loops_mu);
    cg_exc *e = cg_try_catch(serve_loops_await, me->stop, &cg_CancelledError);
    cg_exc_unref(e);
    cg_server_close_clients(me->server);
    cg_server_close(me->server);
    cg_server_wait_closed(me->server);
    cg_server_free(me->server);
    cg_future_unref(me->stop);
    return NULL;
}

static void serve_loops_stop(void *p) { cg_future_cancel(((one_loop *)p)->stop, NULL); }

typedef struct serve_loops_run {
    int n;
    cg_run_result res[SERVE_LOOPS_MAX];
} serve_loops_run;

static void *serve_loops_thread(void *p) {
    serve_loops_run *a = p;
    void *args[SERVE_LOOPS_MAX];
    for (int i = 0; i < a->n; i++) args[i] = &serve_loops[i];
    if (cg_run_parallel((size_t)a->n, serve_loops_task, args, NULL, 0, a->res) < 0) perror("cg_run_parallel");
    return NULL;
}

/* Serves 127.0.0.1:port with cb on n loops (n > 1, port not 0) until SIGINT
 * or SIGTERM; prints 'NAME: listening on 127.0.0.1:PORT with N loops' and
 * 'NAME: stopped'. The exit status: 0, or 1 when a loop raised. */
static int serve_on_loops(const char *name, cg_client_connected cb, int port, int n) {
    if (n > SERVE_LOOPS_MAX) n = SERVE_LOOPS_MAX;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* the threads inherit it: the main thread takes them */
    for (int i = 0; i < n; i++) serve_loops[i].port = port, serve_loops[i].cb = cb;
    static serve_loops_run a;
    a.n = n;
    pthread_t th;
    if (pthread_create(&th, NULL, serve_loops_thread, &a) != 0) return 1;
    pthread_mutex_lock(&serve_loops_mu);
    while (serve_loops_listening < n) pthread_cond_wait(&serve_loops_ready, &serve_loops_mu);
    pthread_mutex_unlock(&serve_loops_mu);
    printf("%s: listening on 127.0.0.1:%d with %d loops\n", name, port, n);
    fflush(stdout);
    int sig;
    sigwait(&set, &sig);
    for (int i = 0; i < n; i++) cg_loop_call_soon_threadsafe(serve_loops[i].loop, serve_loops_stop, &serve_loops[i]);
    pthread_join(th, NULL);
    int status = 0;
    for (int i = 0; i < n; i++)
        if (a.res[i].status != CG_RETURNED) {
            cg_exc_print(a.res[i].exc, stderr);
            cg_exc_unref(a.res[i].exc);
            status = 1;
        }
    printf("%s: stopped\n", name);
    return status;
}

/* LOOPS > 1 from argv[loops_arg]: serve_on_loops' exit status; -1 when
 * there is one loop (the caller serves as usual); 2 for a port of 0. */
static int serve_loops_main(int argc, char **argv, int loops_arg, const char *name, cg_client_connected cb) {
    int n = argc > loops_arg ? atoi(argv[loops_arg]) : 1;
    if (argc < 2 || n <= 1) return -1;
    if (atoi(argv[1]) <= 0) { /* each loop's listener must share one port */
        fprintf(stderr, "%s: with LOOPS > 1, PORT must be a port number, not 0\n", name);
        return 2;
    }
    return serve_on_loops(name, cb, atoi(argv[1]), n);
}

#endif
