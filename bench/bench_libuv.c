/* bench_libuv.c: libuv's timers, the peer of bench_loop's timer benchmarks.
 *
 *   bench_libuv timer_arm_fire [N]    N uv_timer_t started with the same
 *                                     deadlines as bench_loop's (0 to 10 ms,
 *                                     same seed), uv_run until all fired:
 *                                     ns per timer, the whole run / N
 *   bench_libuv timer_arm_cancel [N]  uv_timer_start + uv_timer_stop of one
 *                                     timer, never fired (fastest batch)
 *
 * libuv's timers are intrusive (the caller owns the uv_timer_t) and count
 * in milliseconds of a clock the loop caches per iteration; cogen's
 * call_later allocates a handle and reads the clock at every call, as
 * asyncio does. Both are what a program gets from each API.
 */
#define _GNU_SOURCE
#include "common.h"

#include <uv.h>

#define IMPL "libuv"
#define WARMUP 10000
#define TIMER_SPAN_MS BENCH_TIMER_SPAN_MS /* the deadlines: next_deadline_ms, common.h */

static long fired;
static void on_fire(uv_timer_t *t) {
    (void)t;
    fired++;
}

static void timer_arm_fire(long n) {
    uv_loop_t *loop = uv_default_loop();
    uv_timer_t *ts = calloc((size_t)(n ? n : 1), sizeof *ts);
    unsigned *ms = calloc((size_t)(n ? n : 1), sizeof *ms);
    if (!ts || !ms) bench_die("out of memory for %ld timers", n);
    for (long i = 0; i < n; i++) ms[i] = next_deadline_ms();
    /* The timers' memory is touched before the clock starts, as bench_loop's
     * tasks exist before it starts. */
    for (long i = 0; i < n; i++) uv_timer_init(loop, &ts[i]);
    uv_update_time(loop);
    double t0 = bench_now_ns();
    for (long i = 0; i < n; i++) uv_timer_start(&ts[i], on_fire, ms[i], 0);
    uv_run(loop, UV_RUN_DEFAULT);
    double ns = n ? (bench_now_ns() - t0) / (double)n : 0;
    if (fired != n) bench_die("timer_arm_fire: %ld of %ld timers fired", fired, n);
    char extra[64];
    snprintf(extra, sizeof extra, "deadlines_ms=0..%d clock=real", TIMER_SPAN_MS);
    bench_result("timer_arm_fire", IMPL, ns, "ns", n, extra);
    /* Timers are closed only for small runs (a million closes prove nothing). */
    if (n <= 100000) {
        for (long i = 0; i < n; i++) uv_close((uv_handle_t *)&ts[i], NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        if (uv_loop_close(loop) != 0) bench_die("uv_loop_close failed");
        free(ts);
    }
    free(ms);
}

static void never(uv_timer_t *t) {
    (void)t;
    bench_die("a stopped timer fired");
}

static void timer_arm_cancel(long n) {
    uv_loop_t *loop = uv_default_loop();
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_update_time(loop);
    uint32_t rng = bench_rng_state; /* in a register: common.h */
#define ARM_CANCEL()                                                                  \
    do {                                                                              \
        uv_timer_start(&t, never, 1 + next_deadline_ms_r(&rng) % TIMER_SPAN_MS, 0);   \
        uv_timer_stop(&t);                                                            \
    } while (0)
    for (long i = 0; i < WARMUP; i++) ARM_CANCEL();
    double best;
    BENCH_TIME_BATCHES(best, n, len, {
        for (long i = 0; i < len; i++) ARM_CANCEL();
    });
    bench_result("timer_arm_cancel", IMPL, best, "ns", n, "api=uv_timer_start+uv_timer_stop");
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_DEFAULT); /* nothing fires */
    if (uv_loop_close(loop) != 0) bench_die("uv_loop_close failed");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_libuv timer_arm_fire|timer_arm_cancel [N]\n");
        return 2;
    }
    if (!strcmp(argv[1], "timer_arm_fire"))
        timer_arm_fire(bench_arg(argc, argv, 2, 1000000));
    else if (!strcmp(argv[1], "timer_arm_cancel"))
        timer_arm_cancel(bench_arg(argc, argv, 2, 10000000));
    else {
        fprintf(stderr, "usage: bench_libuv timer_arm_fire|timer_arm_cancel [N]\n");
        return 2;
    }
    return 0;
}
