/* test_trace.c: the trace recorder (cg_trace_start, COGEN_TRACE): what it
 * writes is Chrome trace-event JSON with every task step in order, one
 * track per thread, spans nested, every resume of a plain generator (how
 * it was resumed, how it ended, inside the step or the generator that
 * resumed it), and nothing at all while it is off. */
#define _GNU_SOURCE
#include "cogen_loop.h"
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static char path[64];

static char *slurp(const char *p) {
    FILE *f = fopen(p, "r");
    CHECK(f != NULL);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* The names of the events of category cat, in the file's order, joined
 * with ' '. */
static const char *names_of(const char *json, const char *cat) {
    static char seq[4096];
    size_t n = 0;
    seq[0] = '\0';
    char key[32];
    snprintf(key, sizeof key, "\"cat\":\"%s\"", cat);
    for (const char *p = json; (p = strstr(p, "{\"name\":\"")) != NULL;) {
        const char *end = strchr(p, '}');
        const char *c = strstr(p, key);
        if (c && c < end) {
            const char *s = p + 9, *q = s;
            while (*q && !(*q == '"' && q[-1] != '\\')) q++;
            n += (size_t)snprintf(seq + n, sizeof seq - n, "%s%.*s", n ? " " : "", (int)(q - s), s);
        }
        p = end;
    }
    return seq;
}

static void *turn_taker(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    for (int i = 0; i < 3; i++) cg_sleep(0);
    return NULL;
}

static void *two_tasks(cg_gen *g, void *arg) {
    (void)g;
    (void)arg;
    cg_task *a = cg_create_task(turn_taker, NULL, "task1");
    cg_task *b = cg_create_task(turn_taker, NULL, "task2");
    cg_await(cg_task_future(a));
    cg_await(cg_task_future(b));
    cg_future_unref(cg_task_future(a));
    cg_future_unref(cg_task_future(b));
    return NULL;
}

TEST(trace_task_steps) {
    snprintf(path, sizeof path, "/tmp/cogen-trace-%d.json", (int)getpid());
    CHECK(!cg_trace_active());
    CHECK_EQ(cg_trace_start(path), 0);
    CHECK(cg_trace_active());
    cg_run_opts o = {.name = "main"};
    CHECK_EQ(cg_run(two_tasks, NULL, &o, NULL, NULL), CG_RETURNED);
    cg_trace_stop();
    CHECK(!cg_trace_active());
    const char *json = slurp(path);
    CHECK(strncmp(json, "{\"traceEvents\":[", 16) == 0);
    CHECK(strstr(json, "\"ph\":\"M\"") != NULL); /* the thread's track is named */
    /* task1 and task2 take turns (the seed's task1 --> task2 --> task1);
     * then come the run's shutdown steps (its own tasks) */
    const char *want = "main task1 task2 task1 task2 task1 task2 task1 task2 main ";
    const char *seq = names_of(json, "task");
    if (strncmp(seq, want, strlen(want)) != 0) CHECK_STR(seq, want);
    CHECK(strstr(json, "\"waits\":\"task task1\"") != NULL); /* main then awaits task1 */
    CHECK(strstr(json, "\"waits\":\"ready\"") != NULL);
    CHECK(strstr(json, "\"waits\":\"returned\"") != NULL);
    unlink(path);
}

static void *spanner(void *arg) {
    (void)arg;
    cg_trace_begin("outer");
    cg_trace_begin("inner \"quoted\"");
    cg_trace_end();
    cg_trace_end();
    cg_trace_end(); /* one too many: ignored */
    return NULL;
}

TEST(trace_spans_threads) {
    snprintf(path, sizeof path, "/tmp/cogen-trace-%d.json", (int)getpid());
    CHECK_EQ(cg_trace_start(path), 0);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) CHECK_EQ(pthread_create(&t[i], NULL, spanner, NULL), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    cg_trace_stop();
    const char *json = slurp(path);
    CHECK_STR(names_of(json, "span"), "inner \\\"quoted\\\" outer inner \\\"quoted\\\" outer");
    /* two threads, two tracks */
    int tracks = 0;
    for (const char *p = json; (p = strstr(p, "\"thread_name\"")) != NULL; p++) tracks++;
    CHECK_EQ(tracks, 2);
    unlink(path);
}

/* ---------------------------------------------------------------------
 * Plain generators: every resume of one made while tracing is on is an
 * event of category "gen", named after the generator, saying how it was
 * resumed and how that resume ended.
 * ------------------------------------------------------------------ */

/* "name/resumed/ended" of every gen event, in the file's order (an event
 * is written when it ends), joined with ' '. */
static const char *gen_events(const char *json) {
    static char seq[4096];
    size_t n = 0;
    seq[0] = '\0';
    for (const char *p = json; (p = strstr(p, "{\"name\":\"")) != NULL;) {
        const char *end = strstr(p, "}}");
        const char *c = strstr(p, "\"cat\":\"gen\"");
        if (!end) break;
        if (c && c < end) {
            char name[48], how[16], ended[16];
            CHECK_EQ(sscanf(p, "{\"name\":\"%47[^\"]", name), 1);
            CHECK_EQ(sscanf(strstr(p, "\"resumed\":"), "\"resumed\":\"%15[^\"]\",\"ended\":\"%15[^\"]", how, ended), 2);
            n += (size_t)snprintf(seq + n, sizeof seq - n, "%s%s/%s/%s", n ? " " : "", name, how, ended);
        }
        p = end;
    }
    return seq;
}

/* Start and end (us) of the first event of category cat named name. */
static void times_of(const char *json, const char *cat, const char *name, double *t0, double *t1) {
    char key[96];
    snprintf(key, sizeof key, "{\"name\":\"%s\",\"cat\":\"%s\"", name, cat);
    const char *p = strstr(json, key);
    CHECK(p != NULL);
    double ts, dur;
    CHECK_EQ(sscanf(strstr(p, "\"ts\":"), "\"ts\":%lf,\"dur\":%lf", &ts, &dur), 2);
    *t0 = ts;
    *t1 = ts + dur;
}

static cg_gen *named(cg_fn fn, void *arg, const char *name) {
    cg_opts o = {.name = name};
    cg_gen *g = cg_new(fn, arg, &o);
    CHECK(g != NULL);
    return g;
}

static void *counter(cg_gen *g, void *arg) { /* yields 1 and 2, returns */
    (void)arg;
    cg_yield(g, (void *)1);
    cg_yield(g, (void *)2);
    return NULL;
}

static void *delegator(cg_gen *g, void *sub) { /* yield from sub */
    cg_yield_from(g, sub);
    return NULL;
}

static void *catcher(cg_gen *g, void *arg) { /* while True: try: yield except ValueError: pass */
    (void)arg;
    for (;;) CG_TRY {
        cg_yield(g, NULL);
    } CG_EXCEPT(&cg_ValueError, e) {
        (void)e;
    } CG_END;
    return NULL;
}

static void *pipeline(cg_gen *g, void *src) { /* for v in src: yield v */
    void *v;
    while (cg_next(src, &v, NULL) == CG_YIELDED) cg_yield(g, v);
    return NULL;
}

TEST(trace_generators) {
    snprintf(path, sizeof path, "/tmp/cogen-trace-%d.json", (int)getpid());
    cg_gen *old = named(counter, NULL, "old"); /* made before the trace: not traced */
    CHECK_EQ(cg_trace_start(path), 0);
    /* yield from: the delegator's resume ends by delegating, then the
     * subgenerator is resumed directly until it returns, and the
     * delegator's yield from gets its value */
    cg_gen *sub = named(counter, NULL, "sub"), *d = named(delegator, sub, "delegator");
    for (int i = 0; i < 3; i++) cg_next(d, NULL, NULL);
    CHECK_EQ(cg_gen_state(d), CG_GEN_CLOSED);
    /* throw caught, throw not caught, close */
    cg_gen *c = named(catcher, NULL, "catcher"), *c2 = named(catcher, NULL, "catcher2");
    cg_exc *e = NULL;
    cg_next(c, NULL, NULL);
    CHECK_EQ(cg_throw(c, cg_exc_new(&cg_ValueError, "caught"), NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_throw(c, cg_exc_new(&cg_KeyError, "not caught"), NULL, &e), CG_RAISED);
    cg_exc_unref(e);
    cg_next(c2, NULL, NULL);
    CHECK_EQ(cg_close(c2, NULL, NULL), CG_RETURNED);
    cg_next(old, NULL, NULL);
    /* a generator that resumes another: its resume holds the other's */
    cg_gen *src = named(counter, NULL, "source"), *p = named(pipeline, src, "pipeline");
    cg_next(p, NULL, NULL);
    /* traced, with and without a floating-point environment of its own
     * (the trace's mark shares the byte CG_OPT_FPENV's state is kept in) */
    cg_opts fo = {.name = "fp", .flags = CG_OPT_FPENV};
    cg_gen *fp = cg_new(counter, NULL, &fo);
    CHECK(fp != NULL);
    CHECK_EQ(cg_gen_fpenv(fp), 1);
    CHECK_EQ(cg_gen_fpenv(sub), 0);
    CHECK_EQ(cg_next(fp, NULL, NULL), CG_YIELDED);
    cg_trace_stop();
    cg_next(p, NULL, NULL); /* after the trace: not recorded */
    const char *json = slurp(path);
    CHECK_STR(gen_events(json), "delegator/send/delegated sub/send/yielded sub/send/yielded sub/send/returned "
                                "delegator/send/returned catcher/send/yielded catcher/throw/yielded "
                                "catcher/throw/raised catcher2/send/yielded catcher2/close/closed "
                                "source/send/yielded pipeline/send/yielded fp/send/yielded");
    double p0, p1, s0, s1;
    times_of(json, "gen", "pipeline", &p0, &p1);
    times_of(json, "gen", "source", &s0, &s1);
    CHECK(p0 <= s0 && s0 <= s1 && s1 <= p1);
    cg_gen *all[] = {old, sub, d, c, c2, src, p, fp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) cg_free(all[i]);
    unlink(path);
}

/* Inside a task: the generators a step resumes are events inside that
 * step, on its thread's track; the task's own generator is not traced
 * as a plain generator (its steps are the task's events). */
static void *drives_one(cg_gen *g, void *arg) {
    (void)g, (void)arg;
    cg_gen *inner = named(counter, NULL, "inner");
    cg_next(inner, NULL, NULL);
    cg_sleep(0);
    cg_next(inner, NULL, NULL);
    cg_free(inner);
    return NULL;
}

TEST(trace_generators_in_task) {
    snprintf(path, sizeof path, "/tmp/cogen-trace-%d.json", (int)getpid());
    CHECK_EQ(cg_trace_start(path), 0);
    cg_run_opts o = {.name = "stepper"};
    CHECK_EQ(cg_run(drives_one, NULL, &o, NULL, NULL), CG_RETURNED);
    cg_trace_stop();
    const char *json = slurp(path);
    CHECK_STR(gen_events(json), "inner/send/yielded inner/send/yielded");
    /* the first step of stepper holds inner's first resume */
    double t0, t1, i0, i1;
    times_of(json, "task", "stepper", &t0, &t1);
    times_of(json, "gen", "inner", &i0, &i1);
    CHECK(t0 <= i0 && i0 <= i1 && i1 <= t1);
    CHECK(strstr(json, "{\"name\":\"stepper\",\"cat\":\"gen\"") == NULL);
    unlink(path);
}

TEST(trace_off) {
    /* off: nothing recorded, nothing written; begin/end are no-ops */
    cg_trace_begin("x");
    cg_trace_end();
    CHECK(!cg_trace_active());
    CHECK_EQ(cg_trace_start(NULL), -1);
    CHECK_EQ(errno, EINVAL);
    CHECK_EQ(cg_trace_start("/nonexistent-dir/t.json"), -1);
    CHECK_EQ(errno, ENOENT);
    CHECK(!cg_trace_active());
}

static const check_case cases[] = {CASE(trace_task_steps), CASE(trace_spans_threads), CASE(trace_generators),
                                   CASE(trace_generators_in_task), CASE(trace_off)};

CHECK_MAIN(cases)
