/* parallel.c: a loop per thread (cg_run_parallel): N threads, each
 * running its own loop with asyncio.run's semantics (cg_run), the seed
 * notes' parallelism next to the concurrency each loop has inside. Loops
 * share nothing; they reach each other with call_soon_threadsafe. */
#define _GNU_SOURCE
#include "loop/loop.h"
#include "cogen_io.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

size_t cg_cpu_count(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n > 0) return (size_t)n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (size_t)n : 1;
}

typedef struct worker {
    pthread_t th;
    cg_fn body;
    void *arg;
    const cg_run_opts *opts;
    int cpu; /* -1: not pinned */
    cg_run_result *res;
} worker;

/* The n-th CPU the process may run on. */
static int nth_cpu(size_t n) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    size_t count = (size_t)CPU_COUNT(&set);
    if (!count) return -1;
    n %= count;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set) && n-- == 0) return c;
    return -1;
}

static void *run_worker(void *p) {
    worker *w = p;
    if (w->cpu >= 0) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(w->cpu, &one);
        pthread_setaffinity_np(pthread_self(), sizeof one, &one);
    }
    w->res->exc = NULL;
    w->res->value = NULL;
    w->res->status = cg_run(w->body, w->arg, w->opts, &w->res->value, &w->res->exc);
    return NULL;
}

int cg_run_parallel(size_t n, cg_fn body, void *const *args, const cg_run_opts *opts, int pin,
                    cg_run_result *results) {
    if (!body || !results) {
        errno = EINVAL;
        return -1;
    }
    if (n == 0) n = cg_cpu_count();
    worker *ws = cg__alloc(n * sizeof *ws);
    if (!ws) {
        errno = ENOMEM;
        return -1;
    }
    size_t started = 0;
    int err = 0;
    for (; started < n; started++) {
        worker *w = &ws[started];
        w->body = body;
        w->arg = args ? args[started] : (void *)(uintptr_t)started;
        w->opts = opts;
        w->cpu = pin ? nth_cpu(started) : -1;
        w->res = &results[started];
        if ((err = pthread_create(&w->th, NULL, run_worker, w)) != 0) break;
    }
    for (size_t i = 0; i < started; i++) pthread_join(ws[i].th, NULL);
    cg__dealloc(ws);
    if (err) {
        /* the loops that did start have run: their outcomes are in results */
        for (size_t i = started; i < n; i++) results[i] = (cg_run_result){CG_RAISED, NULL, cg_oserror_new(err)};
        errno = err;
        return -1;
    }
    return 0;
}
