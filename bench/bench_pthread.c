/* bench_pthread.c: a thread as a coroutine, handing control back and forth
 * with a mutex and condition variable: the way to get "a function with its
 * own stack that can be suspended" without any coroutine library.
 *
 *   bench_pthread roundtrip [N]   hand a pointer to the thread, get it back
 *   bench_pthread lifecycle [N]   pthread_create + first handoff + a "close"
 *                                 handoff that lets the thread end + join
 *
 * Threads are not pinned: on a 2-core machine the two sides usually run on
 * different cores and every handoff is a futex wake plus a wait.
 */
#define _GNU_SOURCE
#include <pthread.h>

#include "common.h"

#define IMPL "pthread"

typedef struct chan {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int turn;   /* 0: the caller runs, 1: the thread runs */
    int closing;
    void *slot; /* the pointer passed each way */
} chan;

static chan ch = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL};

/* Caller side: hand over, wait until handed back. */
static void *resume(void *v) {
    pthread_mutex_lock(&ch.mu);
    ch.slot = v;
    ch.turn = 1;
    pthread_cond_broadcast(&ch.cv);
    while (ch.turn != 0) pthread_cond_wait(&ch.cv, &ch.mu);
    v = ch.slot;
    pthread_mutex_unlock(&ch.mu);
    return v;
}

/* Thread side: hand back v, wait to be resumed. Returns 0 when closed. */
static int yield(void *v) {
    pthread_mutex_lock(&ch.mu);
    ch.slot = v;
    ch.turn = 0;
    pthread_cond_broadcast(&ch.cv);
    while (ch.turn != 1) pthread_cond_wait(&ch.cv, &ch.mu);
    int open = !ch.closing;
    pthread_mutex_unlock(&ch.mu);
    return open;
}

/* Thread side, the last time: hand back and end. */
static void finish(void) {
    pthread_mutex_lock(&ch.mu);
    ch.slot = NULL;
    ch.turn = 0;
    pthread_cond_broadcast(&ch.cv);
    pthread_mutex_unlock(&ch.mu);
}

/* Waits for the first resume, then echoes until closed. */
static void *echo_thread(void *arg) {
    (void)arg;
    pthread_mutex_lock(&ch.mu);
    while (ch.turn != 1) pthread_cond_wait(&ch.cv, &ch.mu);
    int open = !ch.closing;
    pthread_mutex_unlock(&ch.mu);
    while (open) open = yield(ch.slot);
    finish();
    return NULL;
}

static void spawn(pthread_t *t) {
    ch.turn = 0;
    ch.closing = 0;
    int rc = pthread_create(t, NULL, echo_thread, NULL);
    if (rc) bench_die("pthread_create: %s", strerror(rc));
}

static void close_join(pthread_t t) {
    pthread_mutex_lock(&ch.mu);
    ch.closing = 1;
    pthread_mutex_unlock(&ch.mu);
    resume(NULL);
    pthread_join(t, NULL);
}

static void roundtrip(long n) {
    static int token;
    void *p = &token, *out = NULL;
    pthread_t t;
    spawn(&t);
    for (long i = 0; i < 100; i++) out = resume(p);
    double best;
    BENCH_TIME_BATCHES(best, n, len, {
        for (long i = 0; i < len; i++) out = resume(p);
    });
    if (n && out != p) bench_die("the thread did not echo the value");
    close_join(t);
    bench_result("roundtrip", IMPL, best, "ns", n, NULL);
}

static void lifecycle_once(void) {
    pthread_t t;
    spawn(&t);
    resume(NULL); /* first resume: the thread runs to its first yield */
    close_join(t);
}

static void lifecycle(long n) { BENCH_LIFECYCLE(lifecycle_once, 100, n, IMPL, NULL); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_pthread roundtrip|lifecycle [N]\n");
        return 2;
    }
    if (!strcmp(argv[1], "roundtrip"))
        roundtrip(bench_arg(argc, argv, 2, 30000));
    else if (!strcmp(argv[1], "lifecycle"))
        lifecycle(bench_arg(argc, argv, 2, 5000));
    else {
        fprintf(stderr, "bench_pthread: unknown benchmark '%s'\n", argv[1]);
        return 2;
    }
    return 0;
}
