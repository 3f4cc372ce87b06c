/* tour_loop.c: the event-loop half of `make demo`, after the generator tour.
 *
 * The seed notes' two tasks again (task1 --> task2 --> task1 ...), now as
 * tasks on cogen's asyncio loop: turns that end at an await, sleeps that
 * let the clock decide the order, a task awaiting another, a cancelled
 * task whose finally block runs, a timeout, and a TaskGroup whose child
 * fails. It prints the way the generator tour does (a section per idea,
 * what the library did read back from the API), and it prints exactly what
 * its Python twin, examples/twins/tour_loop.py, prints on CPython 3.13
 * (examples/expected/tour_loop.txt; the example test compares byte for
 * byte). The loop runs on the virtual clock, so the times are the same on
 * every run and the tour takes no real time.
 *
 * Each claim is also checked with expect(): a tour that stops telling the
 * truth prints "UNEXPECTED" and exits 1.
 */
#include <cogen_loop.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tour.h" /* expect, repr, section */

/* ---------------------------------------------------------------------
 * Printing and checking
 * ------------------------------------------------------------------ */

static long ms(void) { return (long)(cg_loop_time(cg_get_running_loop()) / 1000000); }

static const char *state(cg_task *t) {
    cg_future *f = cg_task_future(t);
    return cg_future_cancelled(f) ? "cancelled" : cg_future_done(f) ? "done" : "pending";
}

static const char *py_bool(int v) { return v ? "True" : "False"; }

/* The interleaving, drawn as the seed notes draw it: "-->" where the loop
 * handed control to another turn, a space between steps of the same turn.
 * A turn ends when the task awaits or returns. */
static char trace[256];
static int in_turn;

static void step(const char *name, int i, int n, int timed) {
    size_t len = strlen(trace);
    snprintf(trace + len, sizeof trace - len, "%s%s", !len ? "" : in_turn ? " " : " --> ", name);
    in_turn = 1;
    if (timed)
        printf("    %3ld ms  %s: step %d of %d\n", ms(), name, i, n);
    else
        printf("    %s: step %d of %d\n", name, i, n);
}

/* await asyncio.sleep(delay): the end of this task's turn. */
static void pause(cg_ns delay) {
    in_turn = 0;
    cg_sleep(delay);
}

/* ---------------------------------------------------------------------
 * 1-3. Turns: two workers, each awaiting after per_turn steps
 * ------------------------------------------------------------------ */

typedef struct worker_spec {
    const char *name;
    int steps;
    int per_turn;   /* steps between awaits: the task's own choice */
    cg_ns delay;    /* what it sleeps at each await (0: one turn of the loop) */
    int timed;      /* print the clock with each step */
    char result[32];
} worker_spec;

static void *worker(cg_gen *g, void *arg) { /* async def worker(...) */
    (void)g;
    worker_spec *w = arg;
    for (int i = 1; i <= w->steps; i++) {
        step(w->name, i, w->steps, w->timed);
        if (i % w->per_turn == 0) pause(w->delay);
    }
    in_turn = 0; /* returning ends the turn too */
    snprintf(w->result, sizeof w->result, "%s result", w->name);
    return w->result;
}

/* Starts a task per spec, awaits each in turn, prints the interleaving.
 * The specs are static, not locals of main's stack: what other tasks read
 * while main waits must not live on its stack (a compact task's stack is
 * swapped out while it waits: cogen_loop.h). */
static void turns(worker_spec *spec, int n, const char *want) {
    cg_task *tasks[2];
    trace[0] = '\0';
    in_turn = 0;
    for (int i = 0; i < n; i++) tasks[i] = cg_create_task(worker, &spec[i], spec[i].name);
    for (int i = 0; i < n; i++) {
        const char *r = cg_await(cg_task_future(tasks[i]));
        printf("  main: await %s -> '%s' at %ld ms, %s is %s\n", cg_task_name(tasks[i]), r, ms(),
               cg_task_name(tasks[i]), state(tasks[i]));
        expect(r == spec[i].result && cg_future_done(cg_task_future(tasks[i])), "await returns the task's result");
    }
    printf("  interleaving: %s\n", trace);
    expect(strcmp(trace, want) == 0, want);
    for (int i = 0; i < n; i++) cg_future_unref(cg_task_future(tasks[i]));
}

static void concurrency(void) {
    section("Concurrency: two tasks on one loop");
    printf("  Two tasks, one thread, one loop. After each step a task awaits\n"
           "  sleep(0): its turn ends and the loop runs the other.\n");
    static worker_spec spec[2] = {{"task1", 3, 1, 0, 0, ""}, {"task2", 3, 1, 0, 0, ""}};
    turns(spec, 2, "task1 --> task2 --> task1 --> task2 --> task1 --> task2");
}

static void cooperative(void) {
    section("Cooperative: a task keeps the loop until it awaits");
    printf("  task2 now does three steps between awaits; nothing can interrupt it.\n");
    static worker_spec spec[2] = {{"task1", 3, 1, 0, 0, ""}, {"task2", 3, 3, 0, 0, ""}};
    turns(spec, 2, "task1 --> task2 task2 task2 --> task1 --> task1");
}

static void sleeping(void) {
    section("Sleep: the clock decides the order");
    printf("  task1 sleeps 10 ms after each step, task2 25 ms. The clock is\n"
           "  virtual: it jumps to the next timer, so this takes no real time.\n");
    static worker_spec spec[2] = {{"task1", 3, 1, CG_MS(10), 1, ""}, {"task2", 3, 1, CG_MS(25), 1, ""}};
    turns(spec, 2, "task1 --> task2 --> task1 --> task1 --> task2 --> task2");
}

/* ---------------------------------------------------------------------
 * 4. Cancellation
 * ------------------------------------------------------------------ */

static int finally_ran;

static void *sleeper(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    CG_TRY {
        printf("    %3ld ms  task2: sleeps for a second\n", ms());
        cg_sleep(CG_SEC(1));
        printf("    task2: never printed\n");
    } CG_FINALLY {
        /* As in Python's finally, the exception passing through is the
         * one being handled here. */
        printf("    %3ld ms  task2: finally runs while %s passes\n", ms(), repr(cg_exc_current()));
        expect(cg_exc_is(cg_exc_current(), &cg_CancelledError), "cancel raises CancelledError at the await");
        finally_ran++;
    } CG_END;
    return NULL;
}

static void join(void *t) { cg_await(cg_task_future(t)); }

static void cancellation(void) {
    section("Cancellation: the finally block runs");
    printf("  task.cancel() is close() for a task: CancelledError is raised at the\n"
           "  await where it is suspended, and its cleanup runs.\n");
    long t0 = ms();
    cg_task *t = cg_create_task(sleeper, NULL, "task2");
    cg_sleep(CG_MS(10));
    int r = cg_task_cancel(t, "stop");
    printf("  main: at %ld ms task2.cancel('stop') -> %s, task2 is %s\n", ms() - t0, py_bool(r), state(t));
    expect(r && !cg_future_done(cg_task_future(t)), "cancel is a request: the task is still pending");
    cg_exc *e = cg_try_catch(join, t, &cg_CancelledError);
    printf("  main: await task2 raised %s, task2 is %s\n", repr(e), state(t));
    expect(e && cg_future_cancelled(cg_task_future(t)) && finally_ran == 1, "the task ran its finally and is cancelled");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(t));
}

/* ---------------------------------------------------------------------
 * 5. Timeout
 * ------------------------------------------------------------------ */

static void nap(void *arg) {
    (void)arg;
    cg_sleep(CG_SEC(1));
}
static void nap_with_timeout(void *arg) { cg_timeout_call(CG_MS(15), nap, arg); }

static void timeout(void) {
    section("Timeout");
    printf("  async with asyncio.timeout(0.015): await asyncio.sleep(1)\n");
    long t0 = ms();
    cg_exc *e = cg_try_catch(nap_with_timeout, NULL, &cg_TimeoutError);
    printf("  main: %s after %ld ms; its __cause__ is %s\n", repr(e), ms() - t0, repr(cg_exc_cause(e)));
    expect(e && ms() - t0 == 15 && cg_exc_is(cg_exc_cause(e), &cg_CancelledError),
           "the timeout cancels the sleep and raises TimeoutError from it");
    cg_exc_unref(e);
}

/* ---------------------------------------------------------------------
 * 6. TaskGroup
 * ------------------------------------------------------------------ */

static void *failing(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    pause(CG_MS(5));
    printf("    %3ld ms  task1: raises ValueError('task1 failed')\n", ms());
    CG_RAISE(&cg_ValueError, "task1 failed");
    return NULL;
}

typedef struct group_tasks {
    cg_task *t1, *t2;
} group_tasks;

static void group_body(cg_taskgroup *tg, void *arg) { /* async with TaskGroup() as tg: */
    group_tasks *gt = arg;
    gt->t1 = cg_taskgroup_spawn(tg, failing, NULL, "task1");
    gt->t2 = cg_taskgroup_spawn(tg, sleeper, NULL, "task2");
    printf("  main: the group's body is over; the group waits for its tasks\n");
}

static void run_group(void *arg) { cg_taskgroup_run(group_body, arg); }

static void group(void) {
    section("TaskGroup whose child fails");
    printf("  task1 fails after 5 ms: the group cancels task2 and raises an\n"
           "  ExceptionGroup of the failure when every child is done.\n");
    long t0 = ms();
    group_tasks gt = {NULL, NULL};
    cg_exc *e = cg_try_catch(run_group, &gt, &cg_ExceptionGroup);
    printf("  main: after %ld ms the group raised %s\n", ms() - t0, repr(e));
    printf("  main: task1 is %s, task2 is %s\n", state(gt.t1), state(gt.t2));
    expect(e && cg_exc_group_count(e) == 1 && cg_exc_is(cg_exc_group_at(e, 0), &cg_ValueError),
           "the group raises an ExceptionGroup of task1's ValueError");
    expect(cg_future_cancelled(cg_task_future(gt.t2)) && finally_ran == 2, "the group cancelled task2, whose finally ran");
    cg_exc_unref(e);
    cg_future_unref(cg_task_future(gt.t1));
    cg_future_unref(cg_task_future(gt.t2));
}

static void *tour_main(cg_gen *g, void *arg) { /* async def main() */
    (void)g, (void)arg;
    concurrency();
    cooperative();
    sleeping();
    cancellation();
    timeout();
    group();
    size_t n = 0;
    cg_task **all = cg_all_tasks(NULL, &n);
    cg_all_tasks_free(all, n);
    printf("\ntasks still pending besides main: %zu\n", n - 1);
    expect(n == 1, "every task of the tour is done");
    return NULL;
}

int main(void) {
    printf("cogen loop tour: the seed notes' two tasks again, as tasks on an event loop.\n");
    cg_run_opts o = {CG_LOOP_VIRTUAL_CLOCK, NULL, NULL, NULL}; /* asyncio.run(main()) */
    cg_exc *e = NULL;
    if (cg_run(tour_main, NULL, &o, NULL, &e) != CG_RETURNED) {
        printf("\nthe tour's main task raised %s\n", repr(e));
        cg_exc_unref(e);
        return 1;
    }
    if (failures) {
        printf("\n%d claim(s) of the tour did not hold.\n", failures);
        return 1;
    }
    printf("\nEvery outcome above is the one asyncio gives.\n");
    return 0;
}
