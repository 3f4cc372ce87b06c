/* tour_threads.c: the last part of `make demo`: the seed notes' pictures
 * of concurrency and parallelism, cooperative and preemptive multitasking,
 * and the "in between" of Python's threads, each recorded while it runs
 * with cogen's trace recorder (cg_trace_start) and drawn from the trace
 * by tools/cogen-trace.py, never by hand.
 *
 *   tour_threads DIR     writes DIR/<scene>.json for the five scenes:
 *
 *   concurrency   two tasks on one loop take turns (task1 --> task2 --> ...)
 *   parallelism   two loops on two threads, at the same time
 *   cooperative   a task that computes without awaiting holds its loop:
 *                 the other task, ready all along, waits for it
 *   preemptive    two plain threads on one CPU, neither ever yields: the
 *                 kernel interrupts them mid-work and switches
 *   in_between    two threads that must hold one global lock to run (as
 *                 CPython's GIL), released at intervals and around a
 *                 blocking call, the way CPython's switch interval does
 *
 * `make demo` prints each trace as text (the notes' notation, and the
 * threads side by side in time) and writes the SVGs next to the traces.
 * With COGEN_TRACE=FILE set, the scenes are recorded into that one file
 * instead (make demo appends every program of the demo to it).
 */
#define _GNU_SOURCE
#include <cogen_loop.h>

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *dir;
static int one_file; /* COGEN_TRACE: everything in it */

#define US(n) ((cg_ns)(n) * 1000)

static cg_ns now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (cg_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Work that takes ns, in units recorded as spans named name (NULL: not
 * recorded: a task's step is recorded already). */
static void work(const char *name, cg_ns ns, cg_ns unit) {
    cg_ns end = now() + ns;
    while (now() < end) {
        if (name) cg_trace_begin(name);
        cg_ns u = now() + unit;
        while (now() < u) {
        }
        if (name) cg_trace_end();
    }
}

static void scene(const char *name, const char *what) {
    printf("\n== %s: %s\n", name, what);
    fflush(stdout);
    if (one_file) return;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    if (cg_trace_start(path) < 0) {
        perror(path);
        exit(1);
    }
}

static void scene_end(void) {
    if (!one_file) cg_trace_stop();
}

/* ---------------------------------------------------------------------
 * Tasks on loops
 * ------------------------------------------------------------------ */

static void *turns(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    for (int i = 0; i < 3; i++) {
        work(NULL, CG_MS(1), CG_MS(1)); /* a little work, then give the loop back */
        cg_sleep(0);
    }
    return NULL;
}

static void *hog(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    work(NULL, CG_MS(30), CG_MS(1)); /* 30 ms without an await */
    return NULL;
}

static void *two_tasks(cg_gen *g, void *arg) {
    (void)g;
    cg_fn first = (cg_fn)(uintptr_t)arg;
    cg_task *a = cg_create_task(first, NULL, "task1");
    cg_task *b = cg_create_task(turns, NULL, "task2");
    cg_await(cg_task_future(a));
    cg_await(cg_task_future(b));
    cg_future_unref(cg_task_future(a));
    cg_future_unref(cg_task_future(b));
    return NULL;
}

static void *loop_work(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *t = cg_create_task(turns, NULL, arg ? "loop2-task" : "loop1-task");
    cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));
    return NULL;
}

static void run(cg_fn body, void *arg) {
    cg_run_opts o = {.name = "main"};
    cg_exc *e = NULL;
    if (cg_run(body, arg, &o, NULL, &e) != CG_RETURNED) {
        cg_exc_print(e, stderr);
        exit(1);
    }
}

/* ---------------------------------------------------------------------
 * Plain threads
 * ------------------------------------------------------------------ */

static void pin_to(int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pthread_setaffinity_np(pthread_self(), sizeof one, &one);
}

static int first_cpu(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) return c;
    return 0;
}

static int shared_cpu;

static void *spinner(void *name) {
    pin_to(shared_cpu);
    work(name, CG_MS(60), US(200));
    return NULL;
}

/* A global interpreter lock: a thread runs only while it holds it, gives
 * it up every switch interval (if another thread waits) and around a
 * blocking call. */
static pthread_mutex_t gil = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gil_cv = PTHREAD_COND_INITIALIZER;
static int gil_held, gil_waiting;

static void gil_take(void) {
    pthread_mutex_lock(&gil);
    gil_waiting++;
    while (gil_held) pthread_cond_wait(&gil_cv, &gil);
    gil_waiting--;
    gil_held = 1;
    pthread_mutex_unlock(&gil);
}

static void gil_drop(void) {
    pthread_mutex_lock(&gil);
    gil_held = 0;
    pthread_cond_signal(&gil_cv);
    pthread_mutex_unlock(&gil);
}

static int gil_contended(void) {
    pthread_mutex_lock(&gil);
    int w = gil_waiting;
    pthread_mutex_unlock(&gil);
    return w;
}

static void *gil_thread(void *name) {
    gil_take();
    for (int round = 0; round < 4; round++) {
        /* run Python code for a while: 5 ms, the switch interval */
        cg_ns slice_end = now() + CG_MS(5);
        while (now() < slice_end) work(name, US(500), US(500));
        if (round == 1) { /* a blocking call: the lock is released around it */
            gil_drop();
            cg_trace_begin("blocking I/O (no GIL)");
            struct timespec d = {0, 3 * 1000000};
            nanosleep(&d, NULL);
            cg_trace_end();
            gil_take();
        } else if (gil_contended()) { /* the interval is up: let another run */
            gil_drop();
            sched_yield();
            gil_take();
        }
    }
    gil_drop();
    return NULL;
}

static void two_threads(void *(*fn)(void *)) {
    pthread_t a, b;
    pthread_create(&a, NULL, fn, "thread1");
    pthread_create(&b, NULL, fn, "thread2");
    pthread_join(a, NULL);
    pthread_join(b, NULL);
}

int main(int argc, char **argv) {
    one_file = getenv("COGEN_TRACE") && *getenv("COGEN_TRACE");
    if (argc < 2 && !one_file) {
        fprintf(stderr, "usage: tour_threads DIR\n");
        return 2;
    }
    dir = argc >= 2 ? argv[1] : ".";
    if (one_file && !cg_trace_active() && cg_trace_start(getenv("COGEN_TRACE")) < 0) {
        perror("COGEN_TRACE");
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    scene("concurrency", "two tasks on one loop, one thread, taking turns at their awaits");
    run(two_tasks, (void *)(uintptr_t)turns);
    scene_end();

    scene("parallelism", "two loops on two threads (pinned to two CPUs), running at the same time");
    cg_run_result res[2];
    void *args[2] = {NULL, (void *)1};
    if (cg_run_parallel(2, loop_work, args, NULL, 1, res) < 0) {
        perror("cg_run_parallel");
        return 1;
    }
    scene_end();

    scene("cooperative", "task1 computes for 30 ms without awaiting: task2 is ready but must wait");
    run(two_tasks, (void *)(uintptr_t)hog);
    scene_end();

    shared_cpu = first_cpu();
    scene("preemptive", "two plain threads on one CPU, neither yields: the kernel switches them mid-work");
    two_threads(spinner);
    scene_end();

    scene("in_between", "two threads that must hold one lock to run (a GIL), given up every 5 ms and around blocking I/O");
    two_threads(gil_thread);
    scene_end();
    return 0;
}
