/* gen_trace.c: the trace recorder. Off by default; on (COGEN_TRACE=FILE in
 * the environment, or cg_trace_start), it records every task step (the
 * loop calls cg__trace_record: src/loop/trace.c), every resume of a plain
 * generator made while it is on, and every span a program marks
 * (cg_trace_begin/end), each in its thread's buffer, and writes them out
 * as Chrome trace-event JSON, which Perfetto and chrome://tracing open,
 * one track per thread. Events are complete events ("X"): a generator
 * resumed inside a task's step, or inside another generator, is an event
 * inside the other's time on the same track, which is how those tools
 * nest them. tools/cogen-trace.py turns a trace into the seed notes'
 * notation (task1 --> task2 --> task1) and an SVG timeline.
 *
 * Off, the recorder costs the loop one predictable branch per task step
 * and generators nothing: only a generator made while tracing is on is
 * flagged (GEN_TRACED, gen_trace.h), and its resumes leave the fast paths
 * through a branch they already had.
 *
 * Each thread records into a buffer of its own, without a lock; a full
 * buffer is written out under the file's lock. The buffers belong to the
 * recorder, not to their threads, so that a thread that has ended leaves
 * its events to be written at cg_trace_stop (or at exit).
 */
#define _GNU_SOURCE
#include "core/gen_trace.h"

#include "core/gen.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int cg__trace_on;

/* A generator's resume, as cg_trace records it: how it was resumed. */
enum { HOW_SEND, HOW_THROW, HOW_CLOSE };
static const char *const how_name[] = {"send", "throw", "close"};

typedef struct trace_ev {
    int64_t t0, t1;    /* CLOCK_MONOTONIC */
    uint64_t loop;     /* a step's loop serial */
    uint8_t kind;      /* TR_* */
    uint8_t how;       /* TR_GEN: HOW_* */
    char name[46];
    char what[48];     /* a step: what the task waits on after it; a
                          generator: how its resume ended */
} trace_ev;

#define BUF_EVENTS 2048

typedef struct trace_buf {
    struct trace_buf *next; /* every buffer, for cg_trace_stop */
    pid_t tid;
    unsigned gen;           /* the trace it records for */
    size_t n;
    int depth;              /* open spans */
    int64_t open_t0[8];
    char open_name[8][46];
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

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
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

static const char *category(int kind) { return kind == TR_STEP ? "task" : kind == TR_GEN ? "gen" : "span"; }

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
        /* microseconds, to the exact nanosecond: an event inside another
         * (a generator's resume in a step) ends inside it in the file too */
        long long t0 = (long long)e->t0, d = (long long)(e->t1 - e->t0);
        fprintf(out, ",\"cat\":\"%s\",\"ph\":\"X\",\"ts\":%lld.%03lld,\"dur\":%lld.%03lld,\"pid\":%d,\"tid\":%d",
                category(e->kind), t0 / 1000, t0 % 1000, d / 1000, d % 1000, (int)getpid(), (int)b->tid);
        if (e->kind == TR_STEP) {
            fprintf(out, ",\"args\":{\"loop\":%llu,\"waits\":", (unsigned long long)e->loop);
            put_json_string(out, e->what);
            fputc('}', out);
        } else if (e->kind == TR_GEN) {
            fprintf(out, ",\"args\":{\"resumed\":\"%s\",\"ended\":\"%s\"}", how_name[e->how], e->what);
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

static void copy_name(char *dst, size_t size, const char *s) { snprintf(dst, size, "%s", s ? s : "?"); }

int64_t cg__trace_now(void) { return now_ns(); }

void cg__trace_record(int kind, const char *name, int64_t t0, int64_t t1, const char *what, uint64_t loop) {
    trace_ev *e = new_event();
    if (!e) return;
    e->kind = (uint8_t)kind;
    e->how = HOW_SEND;
    e->t0 = t0; /* times since boot: processes appended to one trace line up */
    e->t1 = t1;
    e->loop = loop;
    copy_name(e->name, sizeof e->name, name);
    copy_name(e->what, sizeof e->what, what ? what : "");
}

/* ---------------------------------------------------------------------
 * Generators
 * ------------------------------------------------------------------ */

/* resume()'s branch for a generator whose fpenv byte is not 0: its own
 * floating-point environment (gen_life.c), its trace, or both. A traced
 * resume is recorded while tracing is still on, whichever thread turned
 * it on or off since the generator was made. */
void *cg__switch_in_slow(cg_gen *g, cg__ctx *from, void *value) {
    if (!(g->fpenv & GEN_TRACED) || !cg__tracing() || g->in == IN_DIE)
        return (g->fpenv & GEN_FPENV) ? cg__switch_in_fpenv(g, from, value) : switch_in(g, from, value);
    int how = g->in == IN_SEND ? HOW_SEND : cg_exc_is(g->exc, &cg_GeneratorExit) ? HOW_CLOSE : HOW_THROW;
    const char *name = cg_gen_name(g);
    int64_t t0 = now_ns();
    void *r = (g->fpenv & GEN_FPENV) ? cg__switch_in_fpenv(g, from, value) : switch_in(g, from, value);
    int64_t t1 = now_ns();
    const char *ended;
    switch (g->ev) {
    case EV_DELEGATE:
        ended = "delegated"; /* to g->yf, which runs next (yield from) */
        break;
    case EV_RETURN:
        ended = how == HOW_CLOSE ? "closed" : "returned";
        break;
    case EV_RAISE:
        ended = how == HOW_CLOSE && cg_exc_is(g->exc, &cg_GeneratorExit) ? "closed" : "raised";
        break;
    default:
        ended = "yielded";
        break;
    }
    trace_ev *e = new_event();
    if (!e) return r;
    e->kind = TR_GEN;
    e->how = (uint8_t)how;
    e->t0 = t0;
    e->t1 = t1;
    e->loop = 0;
    copy_name(e->name, sizeof e->name, name);
    copy_name(e->what, sizeof e->what, ended);
    return r;
}

void cg__gen_untraced(cg_gen *g) {
    g->fpenv &= (unsigned char)~GEN_TRACED;
    g->ev = resting(g);
}

/* ---------------------------------------------------------------------
 * Spans, start and stop
 * ------------------------------------------------------------------ */

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
    int64_t t0 = b->open_t0[b->depth];
    char name[sizeof b->open_name[0]];
    memcpy(name, b->open_name[b->depth], sizeof name);
    cg__trace_record(TR_SPAN, name, t0, now_ns(), NULL, 0);
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

/* COGEN_TRACE=FILE: the trace starts when the library is loaded, or, when
 * the variable was set later, when the first loop is made; once. */
void cg__trace_from_env(void) {
    static int started;
    if (__atomic_load_n(&started, __ATOMIC_ACQUIRE)) return;
    const char *p = getenv("COGEN_TRACE");
    if (!p || !*p || __atomic_exchange_n(&started, 1, __ATOMIC_ACQ_REL)) return;
    if (cg_trace_start(p) < 0) fprintf(stderr, "cogen: COGEN_TRACE=%s: %s\n", p, strerror(errno));
}

__attribute__((constructor)) static void trace_at_load(void) { cg__trace_from_env(); }
