/* test_gdb_tasks.c: a program for tests/test_gdb_tasks.sh to look at with
 * gdb and tools/cogen-gdb.py's cogen-tasks.
 *
 * On a virtual clock, the main task starts tasks that wait on different
 * things: a sleep, another task, a lock, an event, a semaphore, a queue's
 * get and put, a queue's join, a barrier, an fd (a pipe's read end, never
 * written), a plain future (then cancelled), and one not started yet. At 10 ms, with every other task parked, it
 * calls test_gdb_tasks_stop() (where gdb breaks). Then it returns, and
 * asyncio.run's shutdown cancels every task still waiting: all of them
 * must end cancelled, with their cleanups run ("test_gdb_tasks: ok", exit
 * 0). A cogen-tasks that left a register or a stack changed would make
 * that fail or crash.
 */
#define _GNU_SOURCE /* sigset_t in cogen_io.h */
#include "cogen_io.h"
#include "cogen_loop.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "test_gdb_tasks: check failed: %s\n", what);
        exit(1);
    }
}

/* The breakpoint. The empty asm keeps the call from being folded away. */
NOINLINE void test_gdb_tasks_stop(void) { __asm__ volatile(""); }

static cg_lock *lock;
static cg_event *event;
static cg_semaphore *sem;
static cg_queue *empty_q, *full_q, *join_q;
static cg_barrier *barrier;
static cg_future *plain;
static cg_task *sleeper_task;
static int pipe_fds[2] = {-1, -1};
static int cleanups;

static void cleanup(void *arg) {
    (void)arg;
    cleanups++;
}

/* Each body waits in a function of its own, whose name the test looks for
 * as the place the task awaits. */
static volatile intptr_t sink;

NOINLINE static void sleeper_wait(void) { cg_sleep(CG_SEC(1)); sink++; }
NOINLINE static void joiner_wait(void) { cg_await(cg_task_future(sleeper_task)); sink++; }
NOINLINE static void locker_wait(void) { cg_lock_acquire(lock); sink++; }
NOINLINE static void eventer_wait(void) { cg_event_wait(event); sink++; }
NOINLINE static void sem_wait(void) { cg_semaphore_acquire(sem); sink++; }
NOINLINE static void getter_wait(void) { sink += (intptr_t)cg_queue_get(empty_q); }
NOINLINE static void putter_wait(void) { cg_queue_put(full_q, (void *)2); sink++; }
/* Queue.join waits in the queue's own Event, and cg_queue_join's call to
 * it is a tail call: the queue is found in this frame. It keeps the queue
 * in memory (volatile), where gdb reads it right: a copy in a register may
 * read wrong in a caller's frame of an optimized build (clang's location
 * lists end at the return address), and cogen-tasks then names only the
 * Event it can check. */
NOINLINE static void qjoin_on(cg_queue *q) {
    cg_queue *volatile kept = q;
    cg_queue_join(kept);
    sink += (intptr_t)cg_queue_qsize(kept);
}
NOINLINE static void qjoin_wait(void) { qjoin_on(join_q); }
NOINLINE static void barrier_wait(void) { sink += cg_barrier_wait(barrier); }
NOINLINE static void reader_wait(void) { cg_wait_readable(pipe_fds[0]); sink++; }
NOINLINE static void future_wait(void) { cg_await(plain); sink++; }

static void *waiter(cg_gen *g, void *arg) {
    (void)g;
    CG_DEFER(cleanup, NULL);
    ((void (*)(void))arg)();
    return NULL;
}

/* futurer last: main cancels tasks[NWAITS - 1]. */
static void (*const waits[])(void) = {sleeper_wait, joiner_wait, locker_wait,  eventer_wait, sem_wait,   getter_wait,
                                      putter_wait,  qjoin_wait,  barrier_wait, reader_wait,  future_wait};
static const char *const names[] = {"sleeper", "joiner", "locker",  "eventer", "sem",    "getter",
                                    "putter",  "qjoin",  "barrier", "reader",  "futurer"};
#define NWAITS (sizeof waits / sizeof waits[0])
static cg_task *tasks[NWAITS + 1];

static void *main_body(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_loop *loop = cg_get_running_loop();
    lock = cg_lock_new(loop);
    event = cg_event_new(loop);
    sem = cg_semaphore_new(loop, 0);
    empty_q = cg_queue_new(loop, 2);
    full_q = cg_queue_new(loop, 1);
    join_q = cg_queue_new(loop, 0);
    barrier = cg_barrier_new(loop, 2);
    plain = cg_future_new(loop);
    check(lock && event && sem && empty_q && full_q && join_q && barrier && plain, "objects made");
    check(pipe(pipe_fds) == 0, "pipe made");
    cg_lock_acquire(lock);                /* held by main: locker waits */
    cg_queue_put_nowait(full_q, (void *)1);
    cg_queue_put_nowait(join_q, (void *)1); /* not task_done: qjoin waits */
    for (size_t i = 0; i < NWAITS; i++) {
        tasks[i] = cg_create_task(waiter, (void *)waits[i], names[i]);
        if (i == 0) sleeper_task = tasks[i];
    }
    cg_sleep(CG_MS(10));
    cg_task_cancel(tasks[NWAITS - 1], NULL);      /* futurer: cancelling=1, its future cancelled */
    tasks[NWAITS] = cg_create_task(waiter, (void *)sleeper_wait, "fresh"); /* not started */
    test_gdb_tasks_stop();
    return (void *)42;
}

int main(void) {
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, "main", NULL, NULL};
    void *out = NULL;
    check(cg_run(main_body, NULL, &o, &out, NULL) == CG_RETURNED && (intptr_t)out == 42, "main returns 42");
    /* The shutdown cancelled every task, and each ran its cleanup ('fresh'
     * too: its first step was scheduled before main's end stopped the
     * loop, so it had started to sleep). */
    check(cleanups == (int)NWAITS + 1, "every waiting task ran its cleanup");
    for (size_t i = 0; i <= NWAITS; i++) {
        check(cg_future_cancelled(cg_task_future(tasks[i])), "every task ended cancelled");
        cg_future_unref(cg_task_future(tasks[i]));
    }
    cg_lock_free(lock);
    cg_event_free(event);
    cg_semaphore_free(sem);
    cg_queue_free(empty_q);
    cg_queue_free(full_q);
    cg_queue_free(join_q);
    cg_barrier_free(barrier);
    cg_future_unref(plain);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    printf("test_gdb_tasks: ok\n");
    return 0;
}
