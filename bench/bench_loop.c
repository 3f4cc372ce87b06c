/* bench_loop.c: cogen's event loop (cogen_loop.h), measured the way
 * bench/asyncio_bench.py measures asyncio and bench_libuv.c measures libuv.
 *
 *   bench_loop task_spawn_join [N]   inside a task: create a task whose body
 *                                    returns at once, await it (ns per spawn+join)
 *   bench_loop sleep0_switch [N]     1,000 tasks taking turns with cg_sleep(0),
 *                                    N task steps in all (ns per step)
 *   bench_loop future_wakeup [N]     two tasks in ping-pong: each awaits a fresh
 *                                    future that the other sets (ns per wake-up)
 *   bench_loop timer_arm_fire [N]    N tasks sleep for random deadlines (real
 *                                    clock), ns per timer from arming to firing
 *   bench_loop timer_arm_cancel [N]  call_later + Handle.cancel, never fired
 *   bench_loop timer_arm_cancel_timeout [N]  a timeout scope entered and left
 *                                    before its deadline (ns per scope)
 *   bench_loop queue_handoff [N]     a producer and a consumer task through a
 *                                    Queue(1) (ns per item)
 *   bench_loop rss_tasks [N]         memory per task suspended in cg_sleep, N alive
 *   bench_loop compact_rss_tasks [N] the same with CG_OPT_COMPACT task stacks
 *
 * Everything runs in cg_run (asyncio.run) on the real monotonic clock. Times
 * are the fastest of 100 batches adding up to N (common.h), except
 * timer_arm_fire, which is the whole run divided by N. Warm-ups are fixed
 * counts, so two callgrind runs with different N differ by exactly the
 * N-dependent work (instructions_sleep0_step, instructions_future_wakeup).
 */
#define _GNU_SOURCE
#include "cogen_loop.h"
#include "common.h"

#include <unistd.h>

#define IMPL "cogen"
#define WARMUP 10000
#define TIMER_SPAN_MS BENCH_TIMER_SPAN_MS /* the deadlines: next_deadline_ms, common.h */

/* WARMUP runs of the statement op, then n timed in batches: the fastest
 * batch's ns per op in best. */
#define TIME_OPS(best, n, op)                                       \
    do {                                                            \
        for (long w_ = 0; w_ < WARMUP; w_++) op;                    \
        BENCH_TIME_BATCHES(best, n, len_, {                         \
            for (long i_ = 0; i_ < len_; i_++) op;                  \
        });                                                         \
    } while (0)

/* A body's outcome that is not CG_RETURNED ends the benchmark. */
static void run(cg_fn body, void *arg) {
    cg_exc *e = NULL;
    if (cg_run(body, arg, NULL, NULL, &e) != CG_RETURNED) {
        if (e) cg_exc_print(e, stderr);
        bench_die("cg_run raised");
    }
}

static void *returns_at_once(cg_gen *g, void *arg) {
    (void)g;
    return arg;
}

/* ---------------------------------------------------------------------
 * task_spawn_join
 * ------------------------------------------------------------------ */

static void spawn_join_once(void) {
    static int token;
    cg_task *t = cg_create_task(returns_at_once, &token, NULL);
    void *r = cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));
    if (r != &token) bench_die("task_spawn_join: wrong result");
}

static void *spawn_join_main(cg_gen *g, void *arg) {
    (void)g;
    long n = *(long *)arg;
    double best;
    TIME_OPS(best, n, spawn_join_once());
    bench_result("task_spawn_join", IMPL, best, "ns", n, NULL);
    return NULL;
}

/* ---------------------------------------------------------------------
 * sleep0_switch: TASKS tasks (the main one, which times, and TASKS - 1
 * others) step in turn, each step a cg_sleep(0); one round of the loop is
 * TASKS steps. N is rounded down to whole rounds.
 * ------------------------------------------------------------------ */

#define TASKS 1000
static volatile int sleepers_stop;

static void *sleeper(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    while (!sleepers_stop) cg_sleep(0);
    return NULL;
}

static void *sleep0_main(cg_gen *g, void *arg) {
    (void)g;
    long n = *(long *)arg, rounds = n / TASKS;
    for (int i = 0; i < TASKS - 1; i++) cg_future_unref(cg_task_future(cg_create_task(sleeper, NULL, NULL)));
    for (long i = 0; i < WARMUP / TASKS + 10; i++) cg_sleep(0);
    double best;
    BENCH_TIME_BATCHES(best, rounds, len, {
        for (long i = 0; i < len; i++) cg_sleep(0);
    });
    sleepers_stop = 1;
    cg_sleep(0); /* the others see the flag and return */
    char extra[64];
    snprintf(extra, sizeof extra, "tasks=%d", TASKS);
    bench_result("sleep0_switch", IMPL, best / TASKS, "ns", rounds * TASKS, extra);
    return NULL;
}

/* ---------------------------------------------------------------------
 * future_wakeup: two tasks in ping-pong. Each turn, a task makes a fresh
 * future, publishes it in its slot, sets the other task's future (which
 * wakes the other at the next iteration) and awaits its own. One wake-up
 * is: a future made, set_result, the done callback scheduled and run, and
 * the task's step. N wake-ups (both tasks') in all.
 * ------------------------------------------------------------------ */

typedef struct pingpong {
    cg_future *slot[2];
    int stop;
} pingpong;

static void pp_turn(pingpong *pp, int side) {
    cg_future *mine = cg_future_new(cg_get_running_loop());
    if (!mine) bench_die("out of memory");
    pp->slot[side] = mine;
    cg_future *other = pp->slot[!side];
    if (other && !cg_future_done(other)) cg_future_set_result(other, NULL);
    cg_await(mine);
    cg_future_unref(mine);
}

static void *pp_partner(cg_gen *g, void *arg) {
    (void)g;
    pingpong *pp = arg;
    while (!pp->stop) pp_turn(pp, 1);
    return NULL;
}

/* Shared by the two tasks: a static, not a local of the main task, whose
 * stack is swapped out while it waits when tasks are compact. */
static pingpong pp;

static void *pingpong_main(cg_gen *g, void *arg) {
    (void)g;
    pp = (pingpong){{NULL, NULL}, 0};
    long n = *(long *)arg, turns = n / 2; /* each turn of main: 2 wake-ups */
    cg_task *partner = cg_create_task(pp_partner, &pp, NULL);
    for (long i = 0; i < WARMUP; i++) pp_turn(&pp, 0);
    double best;
    BENCH_TIME_BATCHES(best, turns, len, {
        for (long i = 0; i < len; i++) pp_turn(&pp, 0);
    });
    pp.stop = 1;
    cg_future_set_result(pp.slot[1], NULL);
    cg_await(cg_task_future(partner));
    cg_future_unref(cg_task_future(partner));
    bench_result("future_wakeup", IMPL, best / 2, "ns", turns * 2, NULL);
    return NULL;
}

/* ---------------------------------------------------------------------
 * timer_arm_fire: N tasks, started and waiting on a gate future (untimed).
 * The clock starts, the gate opens: each task sleeps for its deadline
 * (cg_sleep: a future and a call_later timer) and is woken when it fires;
 * the clock stops when the last one is awake. ns per timer = that time / N,
 * on the real clock: the deadlines (0 to 10 ms) are shorter than arming a
 * million takes, so the run measures the work, not the wait. A task that
 * woke then waits on `park` instead of returning, so that no task's end
 * (its generator freed, its stack given back) falls inside the clock.
 * ------------------------------------------------------------------ */

typedef struct timers {
    cg_future *gate, *all_done, *park;
    long left;
    double t1;
    unsigned *deadline_ms;
} timers;

/* Each task's argument is its index; the shared state is a global. */
/* Shared with the sleeping tasks: a static, not a local of the main task,
 * whose stack is swapped out while it waits when tasks are compact
 * (COGEN_COMPACT). */
static timers tm_shared;
static timers *tm_global = &tm_shared;

static void *timer_sleeper(cg_gen *g, void *arg) {
    (void)g;
    timers *tm = tm_global;
    unsigned ms = tm->deadline_ms[(intptr_t)arg];
    cg_await(tm->gate);
    cg_sleep(CG_MS(ms));
    if (--tm->left == 0) {
        tm->t1 = bench_now_ns();
        cg_future_set_result(tm->all_done, NULL);
    }
    cg_await(tm->park);
    return NULL;
}

static void *timer_fire_main(cg_gen *g, void *arg) {
    (void)g;
    long n = *(long *)arg;
    cg_loop *loop = cg_get_running_loop();
    timers *tm = tm_global;
    *tm = (timers){cg_future_new(loop), cg_future_new(loop), cg_future_new(loop), n, 0,
                   calloc((size_t)(n ? n : 1), sizeof(unsigned))};
    if (!tm->gate || !tm->all_done || !tm->park || !tm->deadline_ms) bench_die("out of memory");
    for (long i = 0; i < n; i++) tm->deadline_ms[i] = next_deadline_ms();
    long budget_kib = bench_mem_available_kib() * 6 / 10;
    bench_mem start;
    if (bench_mem_read(&start)) bench_die("cannot read /proc/self/status");
    for (long i = 0; i < n; i++) {
        if (bench_over_budget(&start, budget_kib, i, "timer_arm_fire", "tasks")) {
            tm->left -= n - i;
            n = i;
            break;
        }
        cg_task *t = cg_create_task(timer_sleeper, (void *)(intptr_t)i, NULL);
        cg_future_unref(cg_task_future(t));
    }
    cg_sleep(0); /* every task has started and awaits the gate */
    double t0 = bench_now_ns();
    cg_future_set_result(tm->gate, NULL);
    if (n) cg_await(tm->all_done);
    double ns = n ? (tm->t1 - t0) / (double)n : 0;
    char extra[64];
    snprintf(extra, sizeof extra, "deadlines_ms=0..%d clock=real", TIMER_SPAN_MS);
    bench_result("timer_arm_fire", IMPL, ns, "ns", n, extra);
    if (n > 100000) { /* as rss_tasks: no million task ends to wait for */
        fflush(NULL);
        _exit(0);
    }
    cg_future_set_result(tm->park, NULL);
    cg_sleep(0); /* the tasks end */
    cg_future_unref(tm->park);
    cg_future_unref(tm->gate);
    cg_future_unref(tm->all_done);
    free(tm->deadline_ms);
    return NULL;
}

/* ---------------------------------------------------------------------
 * timer_arm_cancel: call_later with a deadline of 1 to 10 ms ahead, then
 * Handle.cancel and the reference dropped: the timer never fires.
 * ------------------------------------------------------------------ */

static void never(void *arg) {
    (void)arg;
    bench_die("a cancelled timer fired");
}

static inline void arm_cancel_once(cg_loop *loop, uint32_t *rng) {
    cg_handle *h = cg_loop_call_later(loop, CG_MS(1 + next_deadline_ms_r(rng) % TIMER_SPAN_MS), never, NULL);
    if (!h) bench_die("out of memory");
    cg_handle_cancel(h);
    cg_handle_unref(h);
}

static void *arm_cancel_main(cg_gen *g, void *arg) {
    (void)g;
    long n = *(long *)arg;
    cg_loop *loop = cg_get_running_loop();
    double best;
    uint32_t rng = bench_rng_state; /* in a register: common.h */
    TIME_OPS(best, n, arm_cancel_once(loop, &rng));
    bench_rng_state = rng;
    bench_result("timer_arm_cancel", IMPL, best, "ns", n, "api=call_later");
    cg_sleep(CG_MS(TIMER_SPAN_MS + 1)); /* had one not been cancelled, it would fire now */
    return NULL;
}

/* ---------------------------------------------------------------------
 * timer_arm_cancel_timeout: the other way a timer is armed and cancelled,
 * a timeout scope (`async with asyncio.timeout(d): pass`) entered and left
 * before its deadline, d 1 to 10 ms as above; per scope.
 * ------------------------------------------------------------------ */

static void empty_block(void *arg) { (void)arg; }

static inline void timeout_scope_once(uint32_t *rng) {
    cg_timeout_call(CG_MS(1 + next_deadline_ms_r(rng) % TIMER_SPAN_MS), empty_block, NULL);
}

static void *timeout_scope_main(cg_gen *g, void *arg) {
    (void)g;
    long n = *(long *)arg;
    double best;
    uint32_t rng = bench_rng_state; /* in a register: common.h */
    TIME_OPS(best, n, timeout_scope_once(&rng));
    bench_rng_state = rng;
    bench_result("timer_arm_cancel_timeout", IMPL, best, "ns", n, "api=cg_timeout_call");
    cg_sleep(CG_MS(TIMER_SPAN_MS + 1)); /* a scope's timer that outlived it would fire now */
    return NULL;
}

/* ---------------------------------------------------------------------
 * queue_handoff: a producer (the main task, which times) and a consumer
 * task hand items over through a Queue(1); per item. The consumer stops
 * at the NULL item.
 * ------------------------------------------------------------------ */

static void *consumer(cg_gen *g, void *arg) {
    (void)g;
    cg_queue *q = arg;
    while (cg_queue_get(q) != NULL) {
    }
    return NULL;
}

static void *queue_main(cg_gen *g, void *arg) {
    (void)g;
    long n = *(long *)arg;
    static int item;
    cg_queue *q = cg_queue_new(cg_get_running_loop(), 1);
    if (!q) bench_die("out of memory");
    cg_task *c = cg_create_task(consumer, q, NULL);
    double best;
    TIME_OPS(best, n, cg_queue_put(q, &item));
    cg_queue_put(q, NULL);
    cg_await(cg_task_future(c));
    cg_future_unref(cg_task_future(c));
    cg_queue_free(q);
    bench_result("queue_handoff", IMPL, best, "ns", n, "maxsize=1");
    return NULL;
}

/* ---------------------------------------------------------------------
 * rss_tasks, compact_rss_tasks: N tasks suspended in cg_sleep(1 hour)
 * (each holds its generator and stack, a future and a timer handle).
 * ------------------------------------------------------------------ */

typedef struct rss_args {
    const char *prefix;
    long n;
    unsigned gen_flags;
} rss_args;

static void *long_sleeper(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_sleep(CG_SEC(3600));
    return NULL;
}

static void *rss_main(cg_gen *g, void *arg) {
    (void)g;
    rss_args *a = arg;
    long n = a->n;
    char cnt[32], bench[64], extra[128];
    snprintf(bench, sizeof bench, "%s_%s", a->prefix, bench_count_name(n, cnt, sizeof cnt));
    cg_loop *loop = cg_get_running_loop();
    cg_task_opts o = {NULL, 0, a->gen_flags};

    /* Warm the pools, and learn whether compact mode is active. */
    cg_task *probe = cg_task_new(loop, long_sleeper, NULL, &o);
    if (!probe) bench_die("cg_task_new failed: %s", strerror(errno));
    cg_sleep(0);
    int compact = cg_gen_compact(cg_task_gen(probe));
    cg_task_cancel(probe, NULL);
    cg_sleep(0);
    cg_future_unref(cg_task_future(probe));
    if ((a->gen_flags & CG_OPT_COMPACT) && !compact) {
        bench_note("%s: compact mode is not active in this build (cg_gen_compact() = 0): normal stacks measured", bench);
        snprintf(extra, sizeof extra, "fallback=compact_inactive ");
    } else {
        extra[0] = 0;
    }

    long budget_kib = bench_mem_available_kib() * 6 / 10;
    bench_mem before, after;
    if (bench_mem_read(&before)) bench_die("cannot read /proc/self/status");
    long made = 0;
    for (; made < n; made++) {
        if (bench_over_budget(&before, budget_kib, made, bench, "tasks")) break;
        cg_task *t = cg_task_new(loop, long_sleeper, NULL, &o);
        if (!t) bench_die("cg_task_new failed: %s", strerror(errno));
        cg_future_unref(cg_task_future(t));
    }
    cg_sleep(0); /* every task has run to its cg_sleep */
    if (bench_mem_read(&after)) bench_die("cannot read /proc/self/status");
    size_t len = strlen(extra);
    snprintf(extra + len, sizeof extra - len, "compact=%d", compact);
    bench_mem_result(bench, IMPL, &before, &after, made, extra);
    /* The process ends here: cancelling a million tasks one by one would
     * only make the run longer. Small runs let asyncio.run's shutdown
     * cancel them, to prove it can. */
    if (made > 100000) {
        fflush(NULL);
        _exit(0);
    }
    return NULL;
}

/* ---------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------ */

static void usage(void) {
    fprintf(stderr, "usage: bench_loop task_spawn_join|sleep0_switch|future_wakeup|queue_handoff [N]\n"
                    "       bench_loop timer_arm_fire|timer_arm_cancel|timer_arm_cancel_timeout [N]\n"
                    "       bench_loop rss_tasks|compact_rss_tasks [N]\n");
    exit(2);
}

/* The benchmarks that take a count N: name, body, default N. */
static const struct {
    const char *name;
    cg_fn body;
    long n;
} counted[] = {
    {"task_spawn_join", spawn_join_main, 1000000},
    {"sleep0_switch", sleep0_main, 10000000},
    {"future_wakeup", pingpong_main, 2000000},
    {"queue_handoff", queue_main, 2000000},
    {"timer_arm_fire", timer_fire_main, 1000000},
    {"timer_arm_cancel", arm_cancel_main, 10000000},
    {"timer_arm_cancel_timeout", timeout_scope_main, 10000000},
};

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *b = argv[1];
    for (size_t i = 0; i < sizeof counted / sizeof counted[0]; i++) {
        if (strcmp(b, counted[i].name) != 0) continue;
        long n = bench_arg(argc, argv, 2, counted[i].n);
        run(counted[i].body, &n);
        return 0;
    }
    if (!strcmp(b, "rss_tasks") || !strcmp(b, "compact_rss_tasks")) {
        int compact = b[0] == 'c';
        rss_args a = {compact ? "compact_rss_tasks" : "rss_tasks", bench_arg(argc, argv, 2, 100000),
                      compact ? CG_OPT_COMPACT : 0};
        run(rss_main, &a);
    } else
        usage();
    return 0;
}
