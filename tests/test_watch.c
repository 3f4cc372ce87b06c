/* test_watch.c: the stall detector (a task that blocks on purpose is
 * named once, with a backtrace of the code that blocks; tasks that await
 * often are never reported) and the loop's metrics. */
#define _GNU_SOURCE
#include "cogen_loop.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

/* The detector interrupts the loop's thread with a signal whose handler
 * unwinds the stack, and measures wall time: not under ThreadSanitizer
 * (signal-unsafe calls), valgrind or an emulator (every step is slow). */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

static void skip_if_timing_unreliable(void) {
    if (UNDER_TSAN || RUNNING_ON_VALGRIND || getenv("COGEN_UNDER_EMULATOR")) {
        printf("skipped: the stall detector is not checked here\n");
        exit(77);
    }
}

static char errpath[64];
static int saved_err = -1;

static void capture_stderr(void) {
    snprintf(errpath, sizeof errpath, "/tmp/cogen-watch-%d.txt", (int)getpid());
    int fd = open(errpath, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    fflush(stderr);
    saved_err = dup(2);
    dup2(fd, 2);
    close(fd);
}

static const char *captured(void) {
    fflush(stderr);
    dup2(saved_err, 2);
    close(saved_err);
    static char buf[1 << 16];
    FILE *f = fopen(errpath, "r");
    CHECK(f != NULL);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    unlink(errpath);
    return buf;
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++) n++;
    return n;
}

/* Not static: its name is in the backtrace (the test links with
 * ENABLE_EXPORTS, as -rdynamic). */
void stall_blocker_spins(cg_ns ns);
__attribute__((noinline)) void stall_blocker_spins(cg_ns ns) {
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec) < ns);
}

static void *blocker(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_sleep(0);
    stall_blocker_spins(CG_MS(400)); /* holds the loop: no await */
    cg_sleep(0);
    return NULL;
}

static void *polite(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    for (int i = 0; i < 40; i++) {
        stall_blocker_spins(CG_MS(5)); /* short steps, 200 ms in all */
        cg_sleep(0);
    }
    return NULL;
}

static void *two(cg_gen *g, void *arg) {
    (void)g;
    cg_task *t = cg_create_task(arg, NULL, "the-blocker");
    cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));
    return NULL;
}

TEST(stall_reported_once) {
    skip_if_timing_unreliable();
    cg_stall_threshold(CG_MS(100));
    capture_stderr();
    CHECK_EQ(cg_run(two, (void *)blocker, NULL, NULL, NULL), CG_RETURNED);
    const char *err = captured();
    if (count(err, "cogen: stall: task 'the-blocker' has held its loop for ") != 1) CHECK_STR(err, "one report");
    if (!strstr(err, "stall_blocker_spins")) CHECK_STR(err, "a backtrace through stall_blocker_spins");
}

TEST(stall_not_for_short_steps) {
    skip_if_timing_unreliable();
    cg_stall_threshold(CG_MS(100));
    capture_stderr();
    CHECK_EQ(cg_run(two, (void *)polite, NULL, NULL, NULL), CG_RETURNED);
    const char *err = captured();
    CHECK_EQ(count(err, "stall"), 0);
}

TEST(stall_off) {
    skip_if_timing_unreliable();
    cg_stall_threshold(0);
    CHECK_EQ(cg_stall_threshold(-1), 0);
    capture_stderr();
    CHECK_EQ(cg_run(two, (void *)blocker, NULL, NULL, NULL), CG_RETURNED);
    CHECK_EQ(count(captured(), "stall"), 0);
    cg_stall_threshold(CG_MS(100));
}

/* ---------------------------------------------------------------------
 * Metrics
 * ------------------------------------------------------------------ */

static void *stepper(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    for (int i = 0; i < 10; i++) cg_sleep(0);
    return NULL;
}

static void *metrics_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_loop *loop = cg_get_running_loop();
    cg_metrics m0, m1;
    cg_loop_metrics(loop, &m0);
    CHECK_EQ(m0.tasks, 1);
    cg_task *t = cg_create_task(stepper, NULL, NULL);
    cg_loop_metrics(loop, &m1);
    CHECK_EQ(m1.tasks, 2);
    cg_await(cg_task_future(t));
    cg_future_unref(cg_task_future(t));
    cg_loop_metrics(loop, &m1);
    CHECK_EQ(m1.tasks, 1);
    CHECK_INT(m1.steps - m0.steps, >=, 11); /* the task's 11 steps, and ours */
    CHECK_INT(m1.entries, >=, m1.steps);
    CHECK_INT(m1.iterations - m0.iterations, >=, 11);
    cg_sleep(CG_MS(30)); /* idle: waiting for the timer */
    cg_metrics m2;
    cg_loop_metrics(loop, &m2);
    CHECK_INT(m2.idle_ns - m1.idle_ns, >=, CG_MS(25));
    CHECK_EQ(m2.fds, 0);
    return NULL;
}

TEST(loop_metrics) {
    CHECK_EQ(cg_run(metrics_main, NULL, NULL, NULL, NULL), CG_RETURNED);
    cg_metrics m;
    cg_loop_metrics(NULL, &m);
    CHECK_EQ(m.steps, 0);
}

static const check_case cases[] = {CASE(stall_reported_once), CASE(stall_not_for_short_steps), CASE(stall_off),
                                   CASE(loop_metrics)};

CHECK_MAIN(cases)
