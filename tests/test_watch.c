/* test_watch.c: the stall detector (a task that blocks on purpose is
 * named once, with a backtrace of the code that blocks; tasks that await
 * often are never reported) and the loop's metrics. */
#define _GNU_SOURCE
#include "cogen_loop.h"
#include "check.h"
#include "under_tools.h"

#include "cogen_io.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

/* The detector interrupts the loop's thread with a signal whose handler
 * unwinds the stack, and measures wall time: not under ThreadSanitizer
 * (signal-unsafe calls), valgrind or an emulator (every step is slow). */

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

/* Computes for ns of this thread's CPU time: at least ns of wall time,
 * and ns held however loaded the machine (held time leaves out the waits
 * for a CPU). Not static: its name is in the backtrace (the test links
 * with ENABLE_EXPORTS, as -rdynamic). */
static void spin_on(clockid_t clock, cg_ns ns) {
    struct timespec a, b;
    clock_gettime(clock, &a);
    do clock_gettime(clock, &b);
    while ((b.tv_sec - a.tv_sec) * 1000000000LL + (b.tv_nsec - a.tv_nsec) < ns);
}

void stall_blocker_spins(cg_ns ns);
__attribute__((noinline)) void stall_blocker_spins(cg_ns ns) {
    /* its own loop, not a call to spin_on: a tail call would leave this
     * frame out of the backtrace the report prints */
    struct timespec a, b;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
    do clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
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
    /* 40 steps of 5 ms, 200 ms in all: none is a stall. The threshold is
     * well above a step, so that the process being descheduled for a
     * while on a loaded machine is not taken for one. */
    cg_stall_threshold(CG_MS(500));
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

/* ---------------------------------------------------------------------
 * Task dumps
 * ------------------------------------------------------------------ */

static int line_sleep, line_lock, line_event, line_get, line_fd, line_join, line_new;
static cg_lock *d_lock;
static cg_event *d_event;
static cg_queue *d_queue;
static int d_pair[2];

static void *d_sleeper(cg_gen *g, void *a) { (void)g; (void)a; line_sleep = __LINE__; cg_sleep(CG_SEC(10)); return NULL; }
static void *d_locker(cg_gen *g, void *a) { (void)g; (void)a; line_lock = __LINE__; cg_lock_acquire(d_lock); return NULL; }
static void *d_eventer(cg_gen *g, void *a) { (void)g; (void)a; line_event = __LINE__; cg_event_wait(d_event); return NULL; }
static void *d_getter(cg_gen *g, void *a) { (void)g; (void)a; line_get = __LINE__; cg_queue_get(d_queue); return NULL; }
static void *d_reader(cg_gen *g, void *a) { (void)g; (void)a; line_fd = __LINE__; cg_wait_readable(d_pair[0]); return NULL; }
static void *d_joiner(cg_gen *g, void *a) { (void)g; line_join = __LINE__; cg_await(a); return NULL; }

static const char *line_of(const char *dump, const char *name) {
    static char line[512];
    char key[64];
    snprintf(key, sizeof key, "task '%s' (#", name);
    const char *p = strstr(dump, key);
    CHECK(p != NULL);
    const char *e = strchr(p, '\n');
    snprintf(line, sizeof line, "%.*s", (int)(e - p), p);
    return line;
}

static void expect_in(const char *line, const char *what) {
    if (!strstr(line, what)) {
        fprintf(stderr, "dump line: %s\nlacks: %s\n", line, what);
        CHECK(!"the dump line has it");
    }
}

static void *dump_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    d_lock = cg_lock_new(NULL);
    d_event = cg_event_new(NULL);
    d_queue = cg_queue_new(NULL, 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, d_pair), 0);
    cg_lock_acquire(d_lock);
    cg_task *ts[6];
    line_new = __LINE__; ts[0] = cg_create_task(d_sleeper, NULL, "sleeper");
    ts[1] = cg_create_task(d_locker, NULL, "locker");
    ts[2] = cg_create_task(d_eventer, NULL, "eventer");
    ts[3] = cg_create_task(d_getter, NULL, "getter");
    ts[4] = cg_create_task(d_reader, NULL, "reader");
    ts[5] = cg_create_task(d_joiner, cg_task_future(ts[0]), "joiner");
    cg_sleep(0);
    cg_sleep(0);
    cg_task *fresh = cg_create_task(d_sleeper, NULL, "fresh");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cg_loop_dump_tasks(NULL, f);
    fclose(f);
    char want[160];
    expect_in(buf, "cogen: loop ");
    expect_in(line_of(buf, "main"), "running");
    const char *l = line_of(buf, "sleeper");
    expect_in(l, "suspended, awaits sleep, ");
    expect_in(l, " ms left");
    snprintf(want, sizeof want, "at %s:%d; created at %s:%d by task 'main' (#1)", __FILE__, line_sleep, __FILE__, line_new);
    expect_in(l, want);
    snprintf(want, sizeof want, "awaits Lock %p at %s:%d", (void *)d_lock, __FILE__, line_lock);
    expect_in(line_of(buf, "locker"), want);
    snprintf(want, sizeof want, "awaits Event %p at %s:%d", (void *)d_event, __FILE__, line_event);
    expect_in(line_of(buf, "eventer"), want);
    snprintf(want, sizeof want, "awaits Queue (get) %p at %s:%d", (void *)d_queue, __FILE__, line_get);
    expect_in(line_of(buf, "getter"), want);
    snprintf(want, sizeof want, "awaits fd %d (readable) at %s:%d", d_pair[0], __FILE__, line_fd);
    expect_in(line_of(buf, "reader"), want);
    snprintf(want, sizeof want, "awaits task 'sleeper' (#2) at %s:%d", __FILE__, line_join);
    expect_in(line_of(buf, "joiner"), want);
    expect_in(line_of(buf, "fresh"), "scheduled");
    free(buf);
    for (int i = 0; i < 6; i++) {
        cg_task_cancel(ts[i], NULL);
        cg_future_unref(cg_task_future(ts[i]));
    }
    cg_task_cancel(fresh, NULL);
    cg_future_unref(cg_task_future(fresh));
    cg_sleep(0);
    cg_sleep(0);
    cg_io_close(d_pair[0]);
    cg_io_close(d_pair[1]);
    cg_lock_free(d_lock);
    cg_event_free(d_event);
    cg_queue_free(d_queue);
    return NULL;
}

TEST(task_dump) {
    cg_run_opts o = {.name = "main"};
    CHECK_EQ(cg_run(dump_main, NULL, &o, NULL, NULL), CG_RETURNED);
}

static void *signal_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *t = cg_create_task(d_sleeper, NULL, "sleepy");
    cg_sleep(0);
    raise(SIGUSR1);
    cg_sleep(CG_MS(200)); /* blocked in epoll: the watchdog wakes the loop, which dumps */
    cg_task_cancel(t, NULL);
    cg_future_unref(cg_task_future(t));
    return NULL;
}

TEST(task_dump_on_signal) {
    CHECK_EQ(cg_task_dump_on_signal(SIGUSR1), 0);
    capture_stderr();
    cg_run_opts o = {.name = "main"};
    CHECK_EQ(cg_run(signal_main, NULL, &o, NULL, NULL), CG_RETURNED);
    const char *err = captured();
    CHECK_EQ(cg_task_dump_on_signal(0), 0);
    expect_in(err, "cogen: loop ");
    expect_in(line_of(err, "sleepy"), "awaits sleep");
    expect_in(line_of(err, "main"), "awaits sleep");
}

/* ---------------------------------------------------------------------
 * Debug mode
 * ------------------------------------------------------------------ */

static cg_loop *dbg_loop;
static cg_exc *dbg_err[3];

static void nothing(void *a) { (void)a; }

static void call_soon_there(void *a) { (void)a; cg_loop_call_soon(dbg_loop, nothing, NULL); }
static void new_future_result(void *f) { cg_future_set_result(f, NULL); }

static void *foreign(void *f) {
    dbg_err[0] = cg_try_catch(call_soon_there, NULL, &cg_BaseException);
    dbg_err[1] = cg_try_catch(new_future_result, f, &cg_BaseException);
    return NULL;
}

static void *debug_main(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    dbg_loop = cg_get_running_loop();
    CHECK(cg_loop_get_debug(dbg_loop));
    cg_future *f = cg_future_new(dbg_loop);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, foreign, f), 0);
    pthread_join(th, NULL);
    for (int i = 0; i < 2; i++) {
        CHECK_EXC(dbg_err[i], "RuntimeError('Non-thread-safe operation invoked on an event loop other than the current one')");
        cg_exc_unref(dbg_err[i]);
    }
    CHECK(!cg_future_done(f)); /* refused */
    cg_future_unref(f);
    spin_on(CLOCK_MONOTONIC, CG_MS(120)); /* a slow step (wall time, as asyncio's debug mode counts): logged */
    cg_sleep(0);
    line_new = __LINE__; cg_task *never = cg_create_task(d_sleeper, NULL, "never");
    cg_future_unref(cg_task_future(never));
    cg_loop_stop(dbg_loop); /* the run ends with 'never' not started */
    return NULL;
}

static void *debug_outer(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    return debug_main(g, arg);
}

TEST(debug_mode) {
    skip_if_timing_unreliable();
    cg_stall_threshold(0);
    cg_loop *loop = cg_loop_new(NULL);
    CHECK(!cg_loop_get_debug(loop));
    cg_loop_set_debug(loop, 1);
    capture_stderr();
    cg_task *t = cg_task_new(loop, debug_outer, NULL, &(cg_task_opts){.name = "main"});
    CHECK_EQ(cg_loop_run_until_complete(loop, cg_task_future(t), NULL, NULL), CG_RETURNED);
    cg_future_unref(cg_task_future(t));
    cg_loop_free(loop);
    const char *err = captured();
    cg_stall_threshold(CG_MS(100));
    expect_in(err, "cogen: Executing <Task 'main'> step took 0.1");
    char want[200];
    snprintf(want, sizeof want, "cogen: task 'never' was created at %s:%d but never started", __FILE__, line_new);
    expect_in(err, want);
}

/* A step that the scheduler keeps off the CPU is not a stall: the loop
 * runs on a thread of the lowest priority (SCHED_IDLE) sharing one CPU with
 * a thread that computes, so that its one step, which itself needs only a
 * couple of milliseconds of CPU, lasts 400 ms or more of wall time, nearly
 * all of it waiting for the CPU. Measured as wall time, that is a stall of
 * 400 ms; held time (wall less the wait) is a few ms, under the threshold. */
static volatile int starved_spinning, hog_done;

static cg_ns thread_cpu(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (cg_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *starved(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_sleep(0);
    cg_ns cpu0 = thread_cpu();
    starved_spinning = 1;
    while (!hog_done || thread_cpu() - cpu0 < CG_MS(2)) {
    }
    cg_sleep(0);
    return NULL;
}

static int pin(pthread_t th, int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(th, sizeof set, &set);
}

static int hog_cpu;

static void *hog(void *arg) {
    (void)arg;
    if (pin(pthread_self(), hog_cpu) != 0) {
        hog_done = 1;
        return NULL;
    }
    while (!starved_spinning) {
    }
    stall_blocker_spins(CG_MS(400));
    hog_done = 1;
    return NULL;
}

static int starved_refused; /* errno of a refused SCHED_IDLE or pinning */

static void *starved_loop(void *arg) {
    (void)arg;
    /* glibc's thread attributes take no SCHED_IDLE: the thread lowers
     * itself (Linux's sched_setscheduler with pid 0 is the calling thread). */
    struct sched_param none = {0};
    if (pin(pthread_self(), hog_cpu) != 0 || sched_setscheduler(0, SCHED_IDLE, &none) != 0) {
        starved_refused = errno ? errno : EINVAL;
        starved_spinning = 1; /* the hog ends */
        return NULL;
    }
    CHECK_EQ(cg_run(two, (void *)starved, NULL, NULL, NULL), CG_RETURNED);
    return NULL;
}

TEST(stall_not_for_cpu_wait) {
    skip_if_timing_unreliable();
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    if (!f) {
        printf("skipped: the kernel does not give a thread's wait for a CPU\n");
        exit(77);
    }
    fclose(f);
    cg_stall_threshold(CG_MS(100));
    /* The watchdog starts now, on this thread's CPUs and priority; a
     * watchdog starved with the loop would see no stall at all. */
    CHECK_EQ(cg_run(two, (void *)polite, NULL, NULL, NULL), CG_RETURNED);
    hog_cpu = sched_getcpu();
    CHECK(hog_cpu >= 0);
    capture_stderr();
    pthread_t h, l;
    CHECK_EQ(pthread_create(&h, NULL, hog, NULL), 0);
    CHECK_EQ(pthread_create(&l, NULL, starved_loop, NULL), 0);
    pthread_join(l, NULL);
    pthread_join(h, NULL);
    const char *err = captured();
    if (starved_refused) {
        printf("skipped: no SCHED_IDLE thread pinned to a CPU here (%s)\n", strerror(starved_refused));
        exit(77);
    }
    if (count(err, "stall") != 0) CHECK_STR(err, "no stall report");
}

static const check_case cases[] = {CASE(debug_mode), CASE(task_dump), CASE(task_dump_on_signal),CASE(stall_reported_once), CASE(stall_not_for_short_steps), CASE(stall_off),
                                   CASE(stall_not_for_cpu_wait), CASE(loop_metrics)};

CHECK_MAIN(cases)
