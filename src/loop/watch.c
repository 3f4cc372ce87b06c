/* watch.c: the stall detector and the loop's metrics.
 *
 * A stall is a task step or a callback that runs on past the threshold
 * (asyncio's debug slow-callback default, 100 ms) without giving its loop
 * back: a task that computes, or calls something blocking, instead of
 * awaiting. The detector is on by default and costs the loop an increment
 * per entry it runs and a store on each side of its waits for I/O: a
 * watchdog thread (one per process, started when the first loop runs)
 * looks at every running loop a few times per threshold, and a loop whose
 * count of entries has not moved while it was not waiting is stalled. It
 * is reported once per stall, on stderr, by the loop's own thread
 * (interrupted by a signal, SIGURG, whose default action is to be
 * ignored; not installed if the program has a handler of its own):
 * the task's name, how long, and a backtrace of the code that runs.
 *
 * Held means wall time less the time the thread spent runnable but waiting
 * for a CPU (the kernel's run-queue delay, /proc/self/task/TID/schedstat):
 * on a loaded machine a loop that the scheduler keeps off the CPU is not
 * stalled by its own code. A step that blocks in a system call, or
 * computes, is held all the same.
 *
 * COGEN_STALL_MS=N in the environment sets the threshold (0 turns the
 * detector off); so does cg_stall_threshold. It is off by default under
 * ThreadSanitizer and valgrind (below).
 */
#define _GNU_SOURCE
#include "loop/loop.h"

#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static cg_loop *running_loops; /* the registry, through watch_next/prev */
static cg_ns threshold = -1;   /* -1: not read from the environment yet */
static int watchdog_started;
static int watchdog_quit;      /* at exit: the watchdog ends */
static int handler_state; /* 0 not tried, 1 installed, -1 the program has its own */
int cg__dump_requests;      /* task dumps asked for by the signal */
static int dump_enabled;

static cg_ns mono(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (cg_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---------------------------------------------------------------------
 * Held time
 * ------------------------------------------------------------------ */

/* How long a thread has waited, runnable, for a CPU since it started (ns:
 * the second field of its schedstat file), or -1 where the kernel does not
 * say. The kernel adds a wait when the wait ends, as the thread gets a CPU:
 * read by the thread itself, the figure is up to date. Async-signal-safe. */
static cg_ns cpu_wait(const char *path) {
    /* System calls made directly: a program (or a test's fault shim) that
     * wraps open, read or close sees nothing of the watchdog's reads. */
    char buf[96];
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    long n = syscall(SYS_read, (int)fd, buf, sizeof buf - 1);
    syscall(SYS_close, (int)fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    const char *p = buf;
    while (*p >= '0' && *p <= '9') p++; /* the time it ran */
    if (*p != ' ') return -1;
    p++;
    if (*p < '0' || *p > '9') return -1;
    cg_ns v = 0;
    while (*p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
    return v;
}

/* How long loop l has held its thread in the step that began at
 * l->stall_since, as of now: the wall time, less the thread's wait for a
 * CPU since the watchdog first saw the step (a wait before that counts as
 * held: a report can come late, never early). wait is the thread's
 * cpu_wait now, or -1. */
static cg_ns held_for(cg_loop *l, cg_ns now, cg_ns wait) {
    cg_ns held = now - __atomic_load_n(&l->stall_since, __ATOMIC_RELAXED);
    cg_ns wait0 = __atomic_load_n(&l->stall_wait0, __ATOMIC_RELAXED);
    if (wait0 >= 0 && wait > wait0) held -= wait - wait0;
    return held;
}

/* ---------------------------------------------------------------------
 * The report, on the stalled loop's thread
 * ------------------------------------------------------------------ */

static void put(const char *s) {
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = write(2, s, n);
        if (w <= 0) return;
        s += w;
        n -= (size_t)w;
    }
}

static void put_num(unsigned long long v) {
    char b[24];
    int i = (int)sizeof b;
    b[--i] = '\0';
    do b[--i] = (char)('0' + v % 10); while ((v /= 10) && i > 0);
    put(b + i);
}

static void on_stall_signal(int sig) {
    (void)sig;
    int saved = errno;
    cg_loop *loop = cg__running_loop;
    if (loop && __atomic_load_n(&loop->stall_pending, __ATOMIC_ACQUIRE)) {
        __atomic_store_n(&loop->stall_pending, 0, __ATOMIC_RELEASE);
        /* The watchdog's figure misses a wait for a CPU that was still
         * going on: this thread, running again, knows it. Held for less
         * than the threshold, it is not reported yet, and the watchdog
         * looks again. */
        cg_ns held = held_for(loop, mono(), cpu_wait("/proc/thread-self/schedstat"));
        if (held < threshold) {
            __atomic_store_n(&loop->stall_reported, 0, __ATOMIC_RELAXED);
            errno = saved;
            return;
        }
        __atomic_store_n(&loop->stall_ns, held, __ATOMIC_RELAXED);
        put("cogen: stall: ");
        if (loop->current) {
            put("task '");
            put(cg__task_name(loop->current));
            put("'");
        } else {
            put("a callback");
        }
        put(" has held its loop for ");
        put_num((unsigned long long)(__atomic_load_n(&loop->stall_ns, __ATOMIC_RELAXED) / 1000000));
        put(" ms without awaiting; it runs:\n");
        void *frames[48];
        int n = backtrace(frames, 48);
        backtrace_symbols_fd(frames, n, 2);
    }
    errno = saved;
}

static int on_valgrind(void);

static void install_handler(void) {
    if (handler_state) return;
    if (on_valgrind()) { /* reported without the backtrace (its unwinder
                            loads libgcc_s, whose loader state reads as
                            leaked there) */
        handler_state = -1;
        return;
    }
    struct sigaction old;
    if (sigaction(SIGURG, NULL, &old) == 0 && !(old.sa_flags & SA_SIGINFO) &&
        (old.sa_handler == SIG_DFL || old.sa_handler == SIG_IGN)) {
        void *warm[2];
        backtrace(warm, 2); /* loads what backtrace needs now, not in the handler */
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stall_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        handler_state = sigaction(SIGURG, &sa, NULL) == 0 ? 1 : -1;
    } else {
        handler_state = -1;
    }
}

/* ---------------------------------------------------------------------
 * The watchdog
 * ------------------------------------------------------------------ */

static void *watchdog(void *arg) {
    (void)arg;
    pthread_mutex_lock(&lock);
    for (;;) {
        if (watchdog_quit) break;
        cg_ns th = threshold;
        if (th <= 0 && !dump_enabled) {
            pthread_cond_wait(&wake, &lock);
            continue;
        }
        cg_ns period = th / 4 > CG_MS(5) ? th / 4 : CG_MS(5);
        if (th <= 0 || (dump_enabled && period > CG_MS(50))) period = CG_MS(50);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        long long ns = until.tv_nsec + period;
        until.tv_sec += (time_t)(ns / 1000000000);
        until.tv_nsec = (long)(ns % 1000000000);
        pthread_cond_timedwait(&wake, &lock, &until);
        if (watchdog_quit) break;
        cg_ns now = mono();
        int dumps = __atomic_load_n(&cg__dump_requests, __ATOMIC_RELAXED);
        for (cg_loop *l = running_loops; l; l = l->watch_next) {
            if (dumps != __atomic_load_n(&l->dump_seen, __ATOMIC_RELAXED)) {
                pthread_mutex_lock(&l->ts_lock); /* wake_fd is set under it */
                int fd = l->wake_fd;
                pthread_mutex_unlock(&l->ts_lock);
                uint64_t one = 1; /* a loop waiting for I/O dumps at once */
                if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
                }
            }
            if (th <= 0) continue;
            uint64_t seq = __atomic_load_n(&l->n_entries, __ATOMIC_RELAXED);
            if (__atomic_load_n(&l->blocked, __ATOMIC_RELAXED) || seq != l->stall_seq) {
                l->stall_seq = seq;
                __atomic_store_n(&l->stall_since, now, __ATOMIC_RELAXED);
                __atomic_store_n(&l->stall_wait0, (cg_ns)-1, __ATOMIC_RELAXED);
                continue;
            }
            if (__atomic_load_n(&l->stall_reported, __ATOMIC_RELAXED) == seq + 1) continue;
            char path[64];
            snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)l->tid);
            if (__atomic_load_n(&l->stall_wait0, __ATOMIC_RELAXED) < 0) /* the step is a period old */
                __atomic_store_n(&l->stall_wait0, cpu_wait(path), __ATOMIC_RELAXED);
            if (now - l->stall_since < threshold) continue;
            cg_ns held = held_for(l, now, cpu_wait(path));
            if (held < threshold) continue;
            __atomic_store_n(&l->stall_reported, seq + 1, __ATOMIC_RELAXED); /* once per stall */
            __atomic_store_n(&l->stall_ns, held, __ATOMIC_RELAXED);
            if (handler_state == 1) {
                __atomic_store_n(&l->stall_pending, 1, __ATOMIC_RELEASE);
                pthread_kill(l->thread, SIGURG);
            } else {
                fprintf(stderr, "cogen: stall: loop %llu has run one step for %lld ms without awaiting\n",
                        (unsigned long long)l->serial, (long long)(held / 1000000));
            }
        }
    }
    pthread_mutex_unlock(&lock);
    return NULL;
}

/* Off by default where a signal handler that unwinds the stack is not
 * welcome or time means nothing: ThreadSanitizer (it reports the
 * handler's unwinding as signal-unsafe), valgrind (every step is slow). */
#if defined(__SANITIZE_THREAD__)
#define DEFAULT_OFF 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define DEFAULT_OFF 1
#endif
#endif
#ifndef DEFAULT_OFF
#define DEFAULT_OFF 0
#endif
/* (RUNNING_ON_VALGRIND: base.h) */

static int on_valgrind(void) { return RUNNING_ON_VALGRIND; }

static void read_env(void) {
    if (threshold >= 0) return;
    const char *s = getenv("COGEN_STALL_MS");
    threshold = s && *s ? CG_MS(atoll(s)) : (DEFAULT_OFF || RUNNING_ON_VALGRIND) ? 0 : CG_MS(100);
    if (threshold < 0) threshold = 0;
}

/* The watchdog ends with the process: at exit it is told to stop and is
 * joined (so that nothing of it is left for a leak checker); a child
 * made by fork has no watchdog until it starts one. */
static pthread_t watchdog_th;

static void stop_watchdog(void) {
    pthread_mutex_lock(&lock);
    int started = watchdog_started;
    watchdog_quit = 1;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    if (started) pthread_join(watchdog_th, NULL);
}

static void after_fork_child(void) {
    pthread_mutex_init(&lock, NULL);
    pthread_cond_init(&wake, NULL);
    watchdog_started = 0;
    watchdog_quit = 0;
}

static void start_watchdog(void) {
    if (watchdog_started) return;
    static int hooks;
    if (!hooks) {
        if (atexit(stop_watchdog) != 0 || pthread_atfork(NULL, NULL, after_fork_child) != 0) return;
        hooks = 1;
    }
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    /* the watchdog takes no signal: the stall signal goes to loops */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if (pthread_create(&watchdog_th, &a, watchdog, NULL) == 0) watchdog_started = 1;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&a);
}

void cg__watch_add(cg_loop *loop) {
    loop->thread = pthread_self();
    loop->tid = (pid_t)syscall(SYS_gettid);
    loop->stall_wait0 = -1;
    loop->stall_seq = (uint64_t)-1;
    loop->stall_reported = 0;
    __atomic_store_n(&loop->dump_seen, __atomic_load_n(&cg__dump_requests, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    pthread_mutex_lock(&lock);
    read_env();
    if (threshold > 0) install_handler();
    if (threshold > 0 || dump_enabled) start_watchdog();
    loop->watch_prev = NULL;
    loop->watch_next = running_loops;
    if (running_loops) running_loops->watch_prev = loop;
    running_loops = loop;
    pthread_mutex_unlock(&lock);
}

void cg__watch_remove(cg_loop *loop) {
    pthread_mutex_lock(&lock);
    if (loop->watch_prev)
        loop->watch_prev->watch_next = loop->watch_next;
    else if (running_loops == loop)
        running_loops = loop->watch_next;
    if (loop->watch_next) loop->watch_next->watch_prev = loop->watch_prev;
    loop->watch_next = loop->watch_prev = NULL;
    /* a report the signal has not delivered yet is dropped */
    __atomic_store_n(&loop->stall_pending, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
}

cg_ns cg_stall_threshold(cg_ns ns) {
    pthread_mutex_lock(&lock);
    read_env();
    cg_ns old = threshold;
    if (ns >= 0) {
        threshold = ns;
        if (ns > 0 && running_loops) install_handler();
        pthread_cond_signal(&wake);
    }
    pthread_mutex_unlock(&lock);
    return old;
}

/* ---------------------------------------------------------------------
 * Metrics
 * ------------------------------------------------------------------ */

void cg_loop_metrics(const cg_loop *loop, cg_metrics *m) {
    memset(m, 0, sizeof *m);
    if (!loop) return;
    m->iterations = loop->n_iterations;
    m->entries = __atomic_load_n(&loop->n_entries, __ATOMIC_RELAXED);
    m->steps = loop->n_steps;
    m->idle_ns = loop->idle_ns;
    m->tasks = loop->ntasks;
    m->fds = loop->io_registered;
}

/* ---------------------------------------------------------------------
 * Task dumps on a signal
 * ------------------------------------------------------------------ */

static int dump_signal;

static void on_dump_signal(int sig) {
    (void)sig;
    __atomic_add_fetch(&cg__dump_requests, 1, __ATOMIC_RELAXED);
}

void cg__loop_dump_requested(cg_loop *loop) {
    __atomic_store_n(&loop->dump_seen, __atomic_load_n(&cg__dump_requests, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
    cg_loop_dump_tasks(loop, stderr);
}

int cg_task_dump_on_signal(int sig) {
    pthread_mutex_lock(&lock);
    if (dump_signal) {
        signal(dump_signal, SIG_DFL);
        dump_signal = 0;
        dump_enabled = 0;
    }
    int r = 0;
    if (sig > 0) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_dump_signal;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        if (sigaction(sig, &sa, NULL) < 0) {
            r = -1;
        } else {
            dump_signal = sig;
            dump_enabled = 1;
            start_watchdog();
            pthread_cond_signal(&wake);
        }
    }
    pthread_mutex_unlock(&lock);
    return r;
}
