/* test_trace.c: the trace recorder (cg_trace_start, COGEN_TRACE): what it
 * writes is Chrome trace-event JSON with every task step in order, one
 * track per thread, spans nested, and nothing at all while it is off. */
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

static const check_case cases[] = {CASE(trace_task_steps), CASE(trace_spans_threads), CASE(trace_off)};

CHECK_MAIN(cases)
