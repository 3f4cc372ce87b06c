/* trace.c: the trace recorder. Off by default, and then one predictable
 * branch per task step (cg__trace_on); on (COGEN_TRACE=FILE when the
 * first loop is made, or cg_trace_start), every task step and every span
 * a program marks (cg_trace_begin/end) is recorded in its thread's buffer
 * and written out as Chrome trace-event JSON, which Perfetto and
 * chrome://tracing open, one track per thread. tools/cogen-trace.py turns
 * a trace into the seed notes' notation (task1 --> task2 --> task1) and an
 * SVG timeline.
 *
 * Each thread records into a buffer of its own, without a lock; a full
 * buffer is written out under the file's lock. The buffers belong to the
 * recorder, not to their threads, so that a thread that has ended leaves
 * its events to be written at cg_trace_stop (or at exit).
 */
#define _GNU_SOURCE
#include "loop/loop.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int cg__trace_on;

enum { EV_STEP = 1, EV_SPAN };

typedef struct trace_ev {
    cg_ns t0, t1;      /* CLOCK_MONOTONIC */
    uint64_t loop;     /* the loop's serial, 0 for a span */
    uint8_t kind;
    char name[47];
    char what[48];     /* what the task waits on after its step */
} trace_ev;

#define BUF_EVENTS 2048

typedef struct trace_buf {
    struct trace_buf *next; /* every buffer, for cg_trace_stop */
    pid_t tid;
    unsigned gen;           /* the trace it records for */
    size_t n;
    int depth;              /* open spans */
    cg_ns open_t0[8];
    char open_name[8][47];
    trace_ev ev[BUF_EVENTS];
} trace_buf;

/* What ends a trace file; COGEN_TRACE_APPEND=1 continues a file that
 * ends so (make demo records all of its programs in one). */
#define TAIL "\n],\"displayTimeUnit\":\"ns\"}\n"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *out;
static unsigned generation; /* of the trace being written: a buffer of an
                               older one is emptied before it is used */
static int first_event;
static trace_buf *buffers;
static __thread trace_buf *mine;

static cg_ns now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (cg_ns)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void put_json_string(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* Under the lock. */
static void write_events(trace_buf *b) {
    if (!out || b->gen != generation) {
        b->n = 0;
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        const trace_ev *e = &b->ev[i];
        fputs(first_event ? "\n" : ",\n", out);
        first_event = 0;
        fputs("{\"name\":", out);
        put_json_string(out, e->name);
        fprintf(out, ",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%.3f,\"dur\":%.3f,\"pid\":%d,\"tid\":%d",
                e->kind == EV_STEP ? "task" : "span", (double)e->t0 / 1000.0, (double)(e->t1 - e->t0) / 1000.0,
                (int)getpid(), (int)b->tid);
        if (e->kind == EV_STEP) {
            fprintf(out, ",\"args\":{\"loop\":%llu,\"waits\":", (unsigned long long)e->loop);
            put_json_string(out, e->what);
            fputc('}', out);
        }
        fputc('}', out);
    }
    b->n = 0;
}

static trace_buf *my_buffer(void) {
    trace_buf *b = mine;
    if (b) {
        if (b->gen != __atomic_load_n(&generation, __ATOMIC_ACQUIRE)) { /* a new trace */
            pthread_mutex_lock(&lock);
            b->n = 0;
            b->depth = 0;
            b->gen = generation;
            pthread_mutex_unlock(&lock);
        }
        return b;
    }
    b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->tid = (pid_t)syscall(SYS_gettid);
    pthread_mutex_lock(&lock);
    b->gen = generation;
    b->next = buffers;
    buffers = b;
    pthread_mutex_unlock(&lock);
    mine = b;
    return b;
}

static trace_ev *new_event(void) {
    trace_buf *b = my_buffer();
    if (!b) return NULL;
    if (b->n == BUF_EVENTS) {
        pthread_mutex_lock(&lock);
        write_events(b);
        pthread_mutex_unlock(&lock);
    }
    return &b->ev[b->n++];
}

static void copy_name(char *dst, size_t size, const char *s) {
    snprintf(dst, size, "%s", s ? s : "?");
}

cg_ns cg__trace_now(void) { return now_ns(); }

void cg__trace_step(cg_task *t, cg_ns t0, cg_status st, void *r) {
    cg_ns t1 = now_ns();
    trace_ev *e = new_event();
    if (!e) return;
    e->kind = EV_STEP;
    e->t0 = t0; /* times since boot: processes appended to one trace line up */
    e->t1 = t1;
    e->loop = t->fut.loop ? t->fut.loop->serial : 0;
    copy_name(e->name, sizeof e->name, cg__task_name(t));
    if (st == CG_RETURNED) {
        copy_name(e->what, sizeof e->what, "returned");
    } else if (st == CG_RAISED) {
        copy_name(e->what, sizeof e->what, "raised");
    } else if (r == &cg__await_token && t->awaiting) {
        cg_future *f = t->awaiting;
        if (f->is_task)
            snprintf(e->what, sizeof e->what, "task %s", cg__task_name((cg_task *)f));
        else
            copy_name(e->what, sizeof e->what, "future");
    } else if (r == &cg__io_token && (cg__task_io_wait(t) & 2)) { /* a sleep's timer (task.c's WAIT_TIMER) */
        copy_name(e->what, sizeof e->what, "sleep");
    } else if (r == &cg__io_token) {
        snprintf(e->what, sizeof e->what, "fd (%s)", (cg__task_io_wait(t) & 1) ? "write" : "read");
    } else if (r == NULL) {
        copy_name(e->what, sizeof e->what, "ready");
    } else {
        copy_name(e->what, sizeof e->what, "bad yield");
    }
}

void cg_trace_begin(const char *name) {
    if (!cg__trace_on) return;
    trace_buf *b = my_buffer();
    if (!b || b->depth >= 8) return;
    b->open_t0[b->depth] = now_ns();
    copy_name(b->open_name[b->depth], sizeof b->open_name[0], name);
    b->depth++;
}

void cg_trace_end(void) {
    if (!cg__trace_on) return;
    trace_buf *b = my_buffer();
    if (!b || b->depth == 0) return;
    b->depth--;
    cg_ns t0 = b->open_t0[b->depth];
    char name[47];
    memcpy(name, b->open_name[b->depth], sizeof name);
    trace_ev *e = new_event();
    if (!e) return;
    e->kind = EV_SPAN;
    e->t0 = t0;
    e->t1 = now_ns();
    e->loop = 0;
    memcpy(e->name, name, sizeof e->name);
    e->what[0] = '\0';
}

static void stop_locked(void) {
    if (!out) return;
    __atomic_store_n(&cg__trace_on, 0, __ATOMIC_RELEASE);
    for (trace_buf *b = buffers; b; b = b->next) write_events(b);
    /* one track per thread, named */
    for (trace_buf *b = buffers; b; b = b->next) {
        if (b->gen != generation) continue;
        fprintf(out, "%s{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":\"thread %d\"}}",
                first_event ? "\n" : ",\n", (int)getpid(), (int)b->tid, (int)b->tid);
        first_event = 0;
    }
    fputs(TAIL, out);
    fclose(out);
    out = NULL;
}

static void at_exit(void) {
    pthread_mutex_lock(&lock);
    stop_locked();
    pthread_mutex_unlock(&lock);
}

int cg_trace_start(const char *path) {
    if (!path || !*path) {
        errno = EINVAL;
        return -1;
    }
    pthread_mutex_lock(&lock);
    stop_locked();
    FILE *f = NULL;
    int appending = 0;
    const char *app = getenv("COGEN_TRACE_APPEND");
    if (app && *app && *app != '0' && (f = fopen(path, "r+e")) != NULL) {
        /* a trace another process finished: continue it, before its tail */
        long tail = (long)strlen(TAIL);
        char buf[64];
        if (fseek(f, -tail, SEEK_END) == 0 && fread(buf, 1, (size_t)tail, f) == (size_t)tail &&
            memcmp(buf, TAIL, (size_t)tail) == 0 && fseek(f, -tail, SEEK_END) == 0) {
            appending = 1;
        } else {
            fclose(f);
            f = NULL;
        }
    }
    if (!f) f = fopen(path, "we");
    if (!f) {
        int err = errno;
        pthread_mutex_unlock(&lock);
        errno = err;
        return -1;
    }
    static int registered;
    if (!registered && atexit(at_exit) == 0) registered = 1;
    out = f;
    if (!appending) fputs("{\"traceEvents\":[", out);
    first_event = !appending;
    __atomic_add_fetch(&generation, 1, __ATOMIC_RELEASE);
    __atomic_store_n(&cg__trace_on, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&lock);
    return 0;
}

void cg_trace_stop(void) { at_exit(); }

int cg_trace_active(void) { return __atomic_load_n(&cg__trace_on, __ATOMIC_ACQUIRE); }

/* COGEN_TRACE=FILE: the first loop made starts the trace. */
void cg__trace_from_env(void) {
    static int looked;
    if (__atomic_exchange_n(&looked, 1, __ATOMIC_ACQ_REL)) return;
    const char *p = getenv("COGEN_TRACE");
    if (p && *p && cg_trace_start(p) < 0) fprintf(stderr, "cogen: COGEN_TRACE=%s: %s\n", p, strerror(errno));
}
