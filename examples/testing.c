/* testing.c: how to test your own async code deterministically
 * (docs/testing.md explains the recipe).
 *
 * The code under test is fetch_with_retry: it calls a slow service with a
 * timeout, retries after a randomized backoff, and gives up after a few
 * attempts, while a watchdog task may cancel it. Real time would make a
 * test of it slow (seconds of timeouts and backoffs) and flaky (the order
 * of events depends on the machine). The recipe:
 *
 *   1. run it on a loop with the virtual clock (CG_LOOP_VIRTUAL_CLOCK):
 *      time moves only when every task waits, straight to the next timer,
 *      so hours of timeouts take microseconds, and the order of events is
 *      decided by the timers alone;
 *   2. give everything random a fixed seed (here the backoff's jitter);
 *   3. record what happens, with the loop's time, and compare it with what
 *      must happen; run it again: the same seed gives the same trace.
 *
 * The expected times follow from the code: 500 ms timeouts, backoffs of
 * 200 and 400 ms plus jitter, and the jitter is the seeded generator's
 * (xorshift64* from 0x9e3779b97f4a7c15, modulo 50: 10, then 37).
 *
 * The program checks all of that and prints PASS, or what differed.
 */
#define _POSIX_C_SOURCE 200809L
#include <cogen_loop.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---------------------------------------------------------------------
 * The code under test
 * ------------------------------------------------------------------ */

typedef struct service {
    cg_ns latency[8]; /* how long each call takes (the test decides) */
    int calls;
} service;

typedef struct rng { uint64_t s; } rng; /* xorshift64*, seeded by the test */

static uint64_t rng_next(rng *r) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 2685821657736338717ULL;
}

static double end_ms; /* the virtual time when the test ended */
static char trace[4096];
static size_t tlen;

static void note(const char *fmt, long a, long b) {
    char line[128];
    snprintf(line, sizeof line, fmt, a, b);
    tlen += (size_t)snprintf(trace + tlen, sizeof trace - tlen, "%7.1f ms  %s\n",
                             (double)cg_loop_time(cg_get_running_loop()) / 1e6, line);
}

static void *call_service(cg_gen *g, void *arg) {
    (void)g;
    service *s = arg;
    int n = s->calls++;
    cg_sleep(s->latency[n]); /* the service takes its time */
    return (void *)(intptr_t)(100 + n);
}

typedef struct fetch_args {
    service *svc;
    rng *rng;
} fetch_args;

static void one_call(void *p) {
    fetch_args *a = p;
    intptr_t v = (intptr_t)cg_wait_for_body(call_service, a->svc, CG_MS(500));
    note("got %ld on attempt %ld", (long)v, (long)a->svc->calls);
}

/* Up to 4 attempts, each with a 500 ms timeout; between them a backoff of
 * 100 ms * 2^attempt plus up to 50 ms of jitter. Returns the attempt that
 * succeeded, or -1. */
static void *fetch_with_retry(cg_gen *g, void *arg) {
    (void)g;
    fetch_args *a = arg;
    for (long attempt = 1; attempt <= 4; attempt++) {
        cg_exc *e = cg_try_catch(one_call, a, &cg_TimeoutError);
        if (!e) return (void *)attempt;
        cg_exc_unref(e);
        cg_ns backoff = CG_MS(100) * ((cg_ns)1 << attempt) + (cg_ns)(rng_next(a->rng) % 50) * CG_MS(1);
        note("attempt %ld timed out; backing off %ld ms", attempt, (long)(backoff / 1000000));
        cg_sleep(backoff);
    }
    return (void *)-1;
}

/* ---------------------------------------------------------------------
 * The test
 * ------------------------------------------------------------------ */

typedef struct scenario {
    service svc;
    cg_ns cancel_at; /* 0: no watchdog */
    intptr_t result;
    const char *outcome;
} scenario;

static void *watchdog(cg_gen *g, void *arg) {
    (void)g;
    cg_task *victim = arg;
    cg_sleep(CG_MS(1500));
    note("watchdog cancels the fetch", 0, 0);
    cg_task_cancel(victim, "too slow overall");
    return NULL;
}

static void await_fn(void *f) { cg_await(f); }

static void *test_main(cg_gen *g, void *arg) {
    (void)g;
    scenario *sc = arg;
    /* what the tasks share is static, not on this task's stack (which
     * compact mode swaps out while it waits) */
    static rng r;
    static fetch_args a;
    r = (rng){0x9e3779b97f4a7c15ULL}; /* a fixed seed: the same jitter every run */
    a = (fetch_args){&sc->svc, &r};
    cg_task *fetch = cg_create_task(fetch_with_retry, &a, "fetch");
    cg_task *dog = sc->cancel_at ? cg_create_task(watchdog, fetch, "watchdog") : NULL;
    cg_future *f = cg_task_future(fetch);
    cg_exc *e = cg_try_catch(await_fn, f, &cg_CancelledError);
    if (e) {
        sc->outcome = "cancelled";
        note("fetch was cancelled", 0, 0);
        cg_exc_unref(e);
    } else {
        sc->result = (intptr_t)cg_future_result(f);
        sc->outcome = "done";
        note("fetch returned %ld", (long)sc->result, 0);
    }
    cg_future_unref(f);
    if (dog) {
        cg_task_cancel(dog, NULL);
        cg_future_unref(cg_task_future(dog));
    }
    end_ms = (double)cg_loop_time(cg_get_running_loop()) / 1e6;
    return NULL;
}

static int failures;

static void run_scenario(const char *name, scenario *sc, const char *want) {
    char first[4096];
    for (int run = 0; run < 2; run++) { /* twice: the same trace both times */
        scenario s = *sc;
        tlen = 0;
        trace[0] = '\0';
        cg_run_opts o = {.loop_flags = CG_LOOP_VIRTUAL_CLOCK, .name = "test"};
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cg_exc *e = NULL;
        if (cg_run(test_main, &s, &o, NULL, &e) != CG_RETURNED) {
            cg_exc_print(e, stderr);
            failures++;
            return;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double real_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        if (run == 0) {
            printf("-- %s (%.0f ms of virtual time in %.3f ms of real time)\n%s", name,
                   end_ms, real_ms, trace);
            strcpy(first, trace);
            if (strcmp(trace, want) != 0) {
                printf("FAIL: expected\n%s", want);
                failures++;
            }
        } else if (strcmp(trace, first) != 0) {
            printf("FAIL: a second run differed\n%s", trace);
            failures++;
        }
    }
}

int main(void) {
    /* The service answers on the third attempt (after two timeouts). */
    scenario slow_then_ok = {.svc = {.latency = {CG_SEC(2), CG_SEC(2), CG_MS(300)}}};
    run_scenario("two timeouts, then an answer", &slow_then_ok,
                 "  500.0 ms  attempt 1 timed out; backing off 210 ms\n"
                 " 1210.0 ms  attempt 2 timed out; backing off 437 ms\n"
                 " 1947.0 ms  got 102 on attempt 3\n"
                 " 1947.0 ms  fetch returned 3\n");
    /* The same, but a watchdog cancels the whole fetch at 1.5 s. */
    scenario cancelled = {.svc = {.latency = {CG_SEC(2), CG_SEC(2), CG_MS(300)}}, .cancel_at = 1};
    run_scenario("a watchdog cancels it during the second backoff", &cancelled,
                 "  500.0 ms  attempt 1 timed out; backing off 210 ms\n"
                 " 1210.0 ms  attempt 2 timed out; backing off 437 ms\n"
                 " 1500.0 ms  watchdog cancels the fetch\n"
                 " 1500.0 ms  fetch was cancelled\n");
    printf(failures ? "FAIL\n" : "PASS\n");
    return failures ? 1 : 0;
}
