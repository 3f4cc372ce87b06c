/* test_parallel.c: a loop per thread (cg_run_parallel): each loop runs
 * its own tasks, outcomes (results and exceptions) come back to the
 * caller, and loops reach each other with call_soon_threadsafe. */
#include "cogen_loop.h"
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>

static void *count_up(cg_gen *g, void *arg) {
    (void)g;
    long n = 0;
    for (int i = 0; i < 100; i++) {
        cg_sleep(0);
        n++;
    }
    return (void *)(n + (intptr_t)arg);
}

static void *loop_body(cg_gen *g, void *arg) {
    (void)g;
    intptr_t i = (intptr_t)arg;
    if (i == 3) CG_RAISE(&cg_ValueError, "loop 3 fails");
    cg_task *a = cg_create_task(count_up, (void *)i, NULL);
    cg_task *b = cg_create_task(count_up, (void *)(i * 1000), NULL);
    intptr_t r = (intptr_t)cg_await(cg_task_future(a)) + (intptr_t)cg_await(cg_task_future(b));
    cg_future_unref(cg_task_future(a));
    cg_future_unref(cg_task_future(b));
    return (void *)r;
}

TEST(parallel_outcomes) {
    cg_run_result res[4];
    CHECK_EQ(cg_run_parallel(4, loop_body, NULL, NULL, 1, res), 0);
    for (intptr_t i = 0; i < 3; i++) {
        CHECK_EQ(res[i].status, CG_RETURNED);
        CHECK_EQ((intptr_t)res[i].value, 200 + i + i * 1000);
    }
    CHECK_EQ(res[3].status, CG_RAISED);
    CHECK_EXC(res[3].exc, "ValueError('loop 3 fails')");
    cg_exc_unref(res[3].exc);
    CHECK(cg_cpu_count() >= 1);
    CHECK_EQ(cg_run_parallel(2, NULL, NULL, NULL, 0, res), -1);
    CHECK_EQ(errno, EINVAL);
}

/* Loop 1 hands values to loop 0 through call_soon_threadsafe; loop 0
 * answers through the same way. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static cg_loop *loops[2];
static cg_future *inbox[2];

static void deliver0(void *v) { cg_future_set_result(inbox[0], v); }
static void deliver1(void *v) { cg_future_set_result(inbox[1], v); }

static void *pingpong(cg_gen *g, void *arg) {
    (void)g;
    intptr_t me = (intptr_t)arg, other = 1 - me;
    pthread_mutex_lock(&mu);
    loops[me] = cg_get_running_loop();
    pthread_cond_broadcast(&cv);
    while (!loops[other]) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    intptr_t sum = 0;
    for (intptr_t round = 0; round < 50; round++) {
        inbox[me] = cg_future_new(loops[me]);
        if (me == 1) CHECK_EQ(cg_loop_call_soon_threadsafe(loops[0], deliver0, (void *)(round + 1)), 0);
        intptr_t got = (intptr_t)cg_await(inbox[me]);
        cg_future_unref(inbox[me]);
        sum += got;
        if (me == 0) CHECK_EQ(cg_loop_call_soon_threadsafe(loops[1], deliver1, (void *)(got * 2)), 0);
    }
    return (void *)sum;
}

TEST(parallel_threadsafe_pingpong) {
    cg_run_result res[2];
    CHECK_EQ(cg_run_parallel(2, pingpong, NULL, NULL, 0, res), 0);
    CHECK_EQ(res[0].status, CG_RETURNED);
    CHECK_EQ(res[1].status, CG_RETURNED);
    CHECK_EQ((intptr_t)res[0].value, 50 * 51 / 2);
    CHECK_EQ((intptr_t)res[1].value, 50 * 51);
}

static const check_case cases[] = {CASE(parallel_outcomes), CASE(parallel_threadsafe_pingpong)};

CHECK_MAIN(cases)
