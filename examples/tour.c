/* tour.c: a guided tour of cogen, run by `make demo`.
 *
 * It walks through the ideas cogen starts from (docs/semantics.md, "The
 * ideas") in their order, one section per idea, and at every step prints
 * what the library actually did: the status a call returned, the state the generator is in,
 * the exception that came out. Nothing printed as an outcome is canned text:
 * each one is read back from the API. Each claim the notes make is also
 * checked with expect(), so a tour that stops telling the truth fails
 * (nonzero exit, "UNEXPECTED" in its output) instead of silently lying.
 *
 * Values crossing cg_yield / cg_send are `void *`; the tour uses string
 * literals and small integers (intptr_t) so that they print easily.
 */
#define _POSIX_C_SOURCE 200809L /* pthread_self under -std=c11 */

#include <cogen.h>

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "tour.h" /* expect, repr, section */

/* ---------------------------------------------------------------------
 * Small helpers for printing and checking
 * ------------------------------------------------------------------ */

static const char *state(const cg_gen *g) { return cg_state_name(cg_gen_state(g)); }

/* The value a generator handed back, shown as the string the tour used. */
static const char *text(const void *v) { return v ? (const char *)v : "NULL"; }

static cg_gen *make(cg_fn fn, void *arg, const char *name) {
    cg_opts o = {0};
    o.name = name; /* shows up in diagnostics and in cg_gen_name() */
    cg_gen *g = cg_new(fn, arg, &o);
    if (!g) {
        perror("cg_new");
        exit(2);
    }
    return g;
}

/* ---------------------------------------------------------------------
 * 1 and 2. Concurrency and cooperative multitasking: a round-robin
 * scheduler over tasks that are generators.
 * ------------------------------------------------------------------ */

typedef struct task {
    const char *name;
    int steps;    /* units of work in all */
    int per_turn; /* units it does before it yields: the task's own choice */
} task;

/* The scheduler's view, so a task can print everybody's state. */
static cg_gen *tasks[2];
static int ntasks;

/* The interleaving, as the notes draw it: "-->" where control changed
 * hands, a space between steps one task did in the same turn. */
static char trace[256];
static int step_in_this_turn;
static int other_thread_seen;
static pthread_t main_thread;

static void *task_body(cg_gen *g, void *arg) {
    const task *t = arg;
    for (int i = 1; i <= t->steps; i++) {
        /* One unit of work: note it, show who runs and who waits. */
        size_t n = strlen(trace);
        snprintf(trace + n, sizeof trace - n, "%s%s", !n ? "" : step_in_this_turn ? " " : " --> ", t->name);
        step_in_this_turn = 1;
        if (!pthread_equal(pthread_self(), main_thread)) other_thread_seen = 1;
        printf("    %s: step %d of %d   ", t->name, i, t->steps);
        for (int k = 0; k < ntasks; k++) printf(" %s=%s", cg_gen_name(tasks[k]), state(tasks[k]));
        printf("\n");
        expect(cg_gen_state(g) == CG_GEN_RUNNING, "a task that runs is GEN_RUNNING");
        /* The voluntary yield: nobody can take the CPU from this task
         * until it gets here. */
        if (i % t->per_turn == 0) cg_yield(g, NULL);
    }
    return NULL;
}

/* Round robin: take the first ready task, resume it until it yields, put
 * it back at the end of the line; drop it when it returns. */
static void run_round_robin(task *spec, int n) {
    cg_gen *ready[8];
    int head = 0, count = 0;
    ntasks = n;
    trace[0] = '\0';
    for (int i = 0; i < n; i++) ready[count++] = tasks[i] = make(task_body, &spec[i], spec[i].name);
    while (count > 0) {
        cg_gen *t = ready[head];
        head = (head + 1) % 8;
        count--;
        step_in_this_turn = 0;
        cg_exc *e = NULL;
        cg_status s = cg_next(t, NULL, &e);
        if (s == CG_YIELDED) {
            ready[(head + count) % 8] = t; /* back of the line */
            count++;
        } else if (s == CG_RETURNED) {
            printf("    %s returned: %s, the scheduler drops it\n", cg_gen_name(t), state(t));
        } else {
            printf("    %s raised %s\n", cg_gen_name(t), repr(e));
            cg_exc_unref(e);
        }
    }
    for (int i = 0; i < n; i++) cg_free(tasks[i]);
    ntasks = 0;
}

static void tour_concurrency(void) {
    section("Concurrency vs Parallelism");
    printf("  Two tasks, one thread. A tiny round-robin scheduler resumes each\n"
           "  in turn; each does one step of work and yields back.\n");
    task spec[2] = {{"task1", 3, 1}, {"task2", 3, 1}};
    main_thread = pthread_self();
    other_thread_seen = 0;
    run_round_robin(spec, 2);
    printf("  interleaving: %s\n", trace);
    printf("  every step ran on the main thread: %s: concurrency, not parallelism\n",
           other_thread_seen ? "no" : "yes");
    expect(strcmp(trace, "task1 --> task2 --> task1 --> task2 --> task1 --> task2") == 0,
           "the tasks alternate");
    expect(!other_thread_seen, "one thread runs everything");
}

static void tour_cooperative(void) {
    section("Cooperative vs Preemptive Multitasking");
    printf("  Cooperative: a task keeps the CPU until it yields. task2 now does\n"
           "  three steps before yielding, and the scheduler cannot interrupt it.\n");
    task spec[2] = {{"task1", 3, 1}, {"task2", 3, 3}};
    run_round_robin(spec, 2);
    printf("  interleaving: %s\n", trace);
    expect(strcmp(trace, "task1 --> task2 task2 task2 --> task1 --> task1") == 0,
           "task2 runs three steps in one turn");
}

/* ---------------------------------------------------------------------
 * 3. Coroutines: a generator's life, and iteration.
 * ------------------------------------------------------------------ */

static void *lifecycle(cg_gen *g, void *arg) {
    (void)arg;
    printf("    body: first line runs: state %s, cg_current() %s this generator\n", state(g),
           cg_current() == g ? "is" : "is NOT");
    expect(cg_current() == g, "cg_current() is the running generator");
    cg_yield(g, "first"); /* suspended here until the next cg_next */
    printf("    body: resumed after its yield, returns \"done\"\n");
    return "done";
}

static void *countdown(cg_gen *g, void *arg) {
    for (intptr_t i = (intptr_t)arg; i > 0; i--) cg_yield(g, (void *)i);
    return NULL;
}

static void tour_coroutines(void) {
    section("Coroutines");
    printf("  A generator is a function on its own stack that can stop at cg_yield\n"
           "  and be resumed later, all on one thread.\n");
    cg_gen *g = make(lifecycle, NULL, "lifecycle");
    printf("  cg_new: %s (no line of the body has run)\n", state(g));
    expect(cg_gen_state(g) == CG_GEN_CREATED, "a new generator is GEN_CREATED");

    void *v = NULL;
    cg_status s = cg_next(g, &v, NULL);
    printf("  cg_next -> %s \"%s\", now %s\n", cg_status_name(s), text(v), state(g));
    expect(s == CG_YIELDED && cg_gen_state(g) == CG_GEN_SUSPENDED, "yield suspends");

    s = cg_next(g, &v, NULL);
    printf("  cg_next -> %s \"%s\" (Python's StopIteration(\"done\")), now %s\n", cg_status_name(s), text(v),
           state(g));
    expect(s == CG_RETURNED && cg_gen_state(g) == CG_GEN_CLOSED, "return closes");

    s = cg_next(g, &v, NULL);
    printf("  cg_next again -> %s %s: a finished generator stays exhausted\n", cg_status_name(s), text(v));
    expect(s == CG_RETURNED && v == NULL, "exhausted generator returns NULL");
    cg_free(g);

    printf("  for v in countdown(3):");
    g = make(countdown, (void *)3, "countdown");
    CG_FOREACH(x, g) printf(" %ld", (long)(intptr_t)x);
    printf("   (CG_FOREACH)\n");
    cg_free(g);
}

/* ---------------------------------------------------------------------
 * 4. Generator close
 * ------------------------------------------------------------------ */

/* Holds a "resource" while it produces numbers. It does not catch
 * GeneratorExit, which is the right thing to do: its finally block releases
 * the resource whatever ends it. */
static void *numbers(cg_gen *g, void *arg) {
    int *resource_held = arg;
    *resource_held = 1;
    printf("    body: resource acquired\n");
    CG_TRY {
        for (intptr_t n = 1;; n++) cg_yield(g, (void *)n);
    } CG_FINALLY {
        /* While an exception passes through, it is the one being handled
         * here, as in Python's finally: cg_exc_current() shows it. */
        printf("    body: finally runs while %s passes: resource released\n", repr(cg_exc_current()));
        expect(cg_exc_is(cg_exc_current(), &cg_GeneratorExit), "close raises GeneratorExit in the body");
        *resource_held = 0;
    } CG_END;
    return NULL;
}

/* Catches GeneratorExit and yields again: the bug the notes warn about. */
static void *stubborn(cg_gen *g, void *arg) {
    (void)arg;
    CG_TRY {
        cg_yield(g, "working");
    } CG_EXCEPT(&cg_GeneratorExit, e) {
        printf("    body: caught %s and yields again (don't do this)\n", repr(e));
        cg_yield(g, "still here"); /* outside the try: nothing catches here */
        printf("    body: never printed\n");
    } CG_END;
    return NULL;
}

static void tour_close(void) {
    section("Generator close");
    int resource_held = 0;
    cg_gen *g = make(numbers, &resource_held, "numbers");
    void *v = NULL;
    cg_next(g, &v, NULL);
    cg_next(g, &v, NULL);
    printf("  numbers yielded %ld, is %s; resource held: %s\n", (long)(intptr_t)v, state(g),
           resource_held ? "yes" : "no");

    printf("  cg_close: GeneratorExit is raised at the cg_yield where it is suspended\n");
    cg_exc *e = NULL;
    cg_status s = cg_close(g, &v, &e);
    printf("  caller: cg_close -> %s, exception %s, now %s, resource held: %s\n", cg_status_name(s),
           repr(e), state(g), resource_held ? "yes" : "no");
    printf("  GeneratorExit was silenced: to the caller everything worked normally\n");
    expect(s == CG_RETURNED && e == NULL, "close of a cooperative generator is silent");
    expect(cg_gen_state(g) == CG_GEN_CLOSED && !resource_held, "close runs the cleanup and closes");
    cg_free(g);

    printf("\n  A generator that ignores GeneratorExit and yields another value:\n");
    g = make(stubborn, NULL, "stubborn");
    cg_next(g, &v, NULL);
    s = cg_close(g, &v, &e);
    printf("  caller: cg_close -> %s %s\n", cg_status_name(s), repr(e));
    printf("  and the generator is still %s, at the second cg_yield in its handler\n", state(g));
    expect(s == CG_RAISED && cg_exc_is(e, &cg_RuntimeError) && cg_exc_msg(e) &&
               strcmp(cg_exc_msg(e), "generator ignored GeneratorExit") == 0,
           "RuntimeError: generator ignored GeneratorExit");
    expect(cg_gen_state(g) == CG_GEN_SUSPENDED, "the stubborn generator stays suspended");
    cg_exc_unref(e);

    /* Its second yield is not inside the try, so a second close works. */
    s = cg_close(g, &v, &e);
    printf("  closing again, where nothing catches: %s, now %s\n", cg_status_name(s), state(g));
    expect(s == CG_RETURNED && cg_gen_state(g) == CG_GEN_CLOSED, "second close succeeds");
    cg_free(g);
}

/* ---------------------------------------------------------------------
 * 5. Sending things to coroutines
 * ------------------------------------------------------------------ */

/* A running average: each cg_yield hands out the current average and takes
 * in the next number. Its state lives in the caller's struct, not in locals:
 * CG_TRY is a setjmp, and a local written inside it can read back stale
 * after close() longjmps out of cg_yield, unless it is volatile ("Locals and
 * CG_TRY" in cogen.h; the `tolerant` body below avoids CG_TRY instead). */
typedef struct avg_state {
    double total, average;
    long count;
} avg_state;

static void *averager(cg_gen *g, void *arg) {
    avg_state *st = arg;
    CG_TRY {
        for (;;) {
            const double *x = cg_yield(g, st->count ? &st->average : NULL);
            st->total += *x;
            st->count++;
            st->average = st->total / (double)st->count;
        }
    } CG_EXCEPT(&cg_GeneratorExit, e) {
        /* Returning (not yielding) after GeneratorExit is a clean close;
         * with Python 3.13's close() the caller receives this value. */
        printf("    body: %s arrived at the suspended cg_yield; returns its count\n", repr(e));
        return (void *)(intptr_t)st->count;
    } CG_END;
    return NULL;
}

static void tour_send(void) {
    section("Sending things to coroutines");
    printf("  send(data): the data comes out of the cg_yield where the body waits,\n"
           "  Python's extended `x = yield y`.\n");
    avg_state st = {0, 0, 0};
    cg_gen *g = make(averager, &st, "averager");
    double ten = 10, twenty = 20, thirty = 30;
    void *v = NULL;
    cg_exc *e = NULL;

    /* A fresh generator has no cg_yield to receive a value yet. */
    cg_status s = cg_send(g, &ten, &v, &e);
    printf("  send(10) to a fresh generator -> %s %s; still %s\n", cg_status_name(s), repr(e), state(g));
    expect(s == CG_RAISED && cg_exc_is(e, &cg_TypeError) && cg_gen_state(g) == CG_GEN_CREATED,
           "sending to a just-started generator is a TypeError");
    cg_exc_unref(e);

    s = cg_next(g, &v, NULL);
    printf("  cg_next primes it: %s, now %s at its first cg_yield\n", cg_status_name(s), state(g));

    double *in[] = {&ten, &twenty, &thirty};
    double want[] = {10, 15, 20};
    for (int i = 0; i < 3; i++) {
        s = cg_send(g, in[i], &v, NULL);
        double avg = v ? *(const double *)v : -1;
        printf("  send(%g) -> %s, running average %g\n", *in[i], cg_status_name(s), avg);
        expect(s == CG_YIELDED && avg == want[i], "the averager yields the running average");
    }

    s = cg_close(g, &v, &e);
    printf("  close() -> %s with value %ld (Python 3.13: close returns the body's return value)\n",
           cg_status_name(s), (long)(intptr_t)v);
    expect(s == CG_RETURNED && (intptr_t)v == 3, "close hands back the return value");
    cg_free(g);
}

/* ---------------------------------------------------------------------
 * 6. gen.throw(exception)
 * ------------------------------------------------------------------ */

/* Does not catch anything. */
static void *careless(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, "working");
    printf("    body: never printed\n");
    return NULL;
}

enum handling { CATCH_AND_YIELD, CATCH_AND_RETURN, CATCH_AND_RAISE };

/* Catches ValueError at its cg_yield and then does what arg says. */
static void *careful(cg_gen *g, void *arg) {
    enum handling how = (enum handling)(intptr_t)arg;
    CG_TRY {
        void *sent = cg_yield(g, "working");
        return sent; /* a plain send ends the body, returning what was sent */
    } CG_EXCEPT(&cg_ValueError, e) {
        printf("    body: caught %s at the cg_yield where it was suspended\n", repr(e));
        if (how == CATCH_AND_YIELD) {
            cg_yield(g, "recovered");
        } else if (how == CATCH_AND_RETURN) {
            return "handled";
        } else {
            /* Raised while e is being handled, so e becomes its context. */
            CG_RAISE(&cg_RuntimeError, "could not handle it");
        }
    } CG_END;
    return NULL;
}

/* Catches ValueError without a CG_TRY of its own: each wait runs under
 * cg_try_catch, which returns the exception instead of jumping back into
 * this frame. So `caught`, a plain local, keeps its value across throws
 * (changed inside CG_TRY, it would have to be volatile). GeneratorExit is
 * not a ValueError: close() still ends the body. */
typedef struct waiting {
    cg_gen *g;
    void *sent;
} waiting;

static void wait_for_value(void *p) {
    waiting *w = p;
    w->sent = cg_yield(w->g, "waiting");
}

static void *tolerant(cg_gen *g, void *arg) {
    (void)arg;
    waiting w = {g, NULL};
    intptr_t caught = 0;
    for (;;) {
        cg_exc *e = cg_try_catch(wait_for_value, &w, &cg_ValueError);
        if (!e) return (void *)caught; /* a plain send: how many it caught */
        caught++;
        printf("    body: cg_try_catch returned %s; caught so far: %ld\n", repr(e), (long)caught);
        cg_exc_unref(e);
    }
}

static void tour_throw(void) {
    section("gen.throw(exception, value)");
    void *v = NULL;
    cg_exc *e = NULL;

    printf("  TYPE I: the generator does not catch it\n");
    cg_gen *g = make(careless, NULL, "careless");
    cg_next(g, &v, NULL);
    cg_exc *thrown = cg_exc_new(&cg_ValueError, "bad value");
    cg_exc_ref(thrown); /* keep one reference, to compare what comes back */
    cg_status s = cg_throw(g, thrown, &v, &e);
    printf("  caller: cg_throw -> %s %s (%s one thrown), now %s\n", cg_status_name(s), repr(e),
           e == thrown ? "the very" : "NOT the", state(g));
    expect(s == CG_RAISED && e == thrown && cg_gen_state(g) == CG_GEN_CLOSED,
           "an uncaught exception propagates back and closes");
    cg_exc_unref(e);
    cg_exc_unref(thrown);
    cg_free(g);

    printf("\n  TYPE II, catch and yield\n");
    g = make(careful, (void *)(intptr_t)CATCH_AND_YIELD, "careful");
    cg_next(g, &v, NULL);
    s = cg_throw(g, cg_exc_new(&cg_ValueError, "bad value"), &v, &e);
    printf("  caller: cg_throw -> %s \"%s\" (the yielded value is throw's result), now %s\n",
           cg_status_name(s), text(v), state(g));
    expect(s == CG_YIELDED && v && strcmp(v, "recovered") == 0 && cg_gen_state(g) == CG_GEN_SUSPENDED,
           "catch and yield: throw returns the value, generator suspended");
    cg_close(g, NULL, NULL);
    cg_free(g);

    printf("\n  TYPE II, catch and return\n");
    g = make(careful, (void *)(intptr_t)CATCH_AND_RETURN, "careful");
    cg_next(g, &v, NULL);
    s = cg_throw(g, cg_exc_new(&cg_ValueError, "bad value"), &v, &e);
    printf("  caller: cg_throw -> %s \"%s\" = StopIteration(\"%s\"), now %s\n", cg_status_name(s), text(v),
           text(v), state(g));
    expect(s == CG_RETURNED && v && strcmp(v, "handled") == 0 && cg_gen_state(g) == CG_GEN_CLOSED,
           "catch and return: StopIteration with the value, generator closed");
    cg_free(g);
    /* The same outcome as a send that makes the body return. */
    g = make(careful, (void *)(intptr_t)CATCH_AND_RETURN, "careful");
    cg_next(g, &v, NULL);
    s = cg_send(g, "finished", &v, &e);
    printf("  compare: cg_send(\"finished\") to a body that returns -> %s \"%s\", now %s\n",
           cg_status_name(s), text(v), state(g));
    expect(s == CG_RETURNED && cg_gen_state(g) == CG_GEN_CLOSED, "send that returns: same outcome");
    cg_free(g);

    printf("\n  TYPE II, catch and raise a different exception\n");
    g = make(careful, (void *)(intptr_t)CATCH_AND_RAISE, "careful");
    cg_next(g, &v, NULL);
    s = cg_throw(g, cg_exc_new(&cg_ValueError, "bad value"), &v, &e);
    printf("  caller: cg_throw -> %s %s, its __context__ %s, now %s\n", cg_status_name(s), repr(e),
           repr(cg_exc_context(e)), state(g));
    expect(s == CG_RAISED && cg_exc_is(e, &cg_RuntimeError) && cg_exc_is(cg_exc_context(e), &cg_ValueError) &&
               cg_gen_state(g) == CG_GEN_CLOSED,
           "catch and raise: the new exception propagates, chained, generator closed");
    cg_exc_unref(e);
    cg_free(g);

    printf("\n  TYPE II without CG_TRY in the body: cg_try_catch returns the exception\n");
    g = make(tolerant, NULL, "tolerant");
    cg_next(g, &v, NULL);
    for (int i = 1; i <= 2; i++) {
        s = cg_throw(g, cg_exc_newf(&cg_ValueError, "bad value %d", i), &v, &e);
        expect(s == CG_YIELDED, "cg_try_catch caught the thrown ValueError");
    }
    s = cg_send(g, "go on", &v, &e);
    printf("  caller: cg_send -> %s %ld (the body's plain local counted both throws)\n", cg_status_name(s),
           (long)(intptr_t)v);
    expect(s == CG_RETURNED && (intptr_t)v == 2, "a plain local keeps its value across caught throws");
    cg_free(g);
}

int main(void) {
    printf("cogen tour: Python's generator-as-coroutine protocol in C, following the seed notes.\n");
    tour_concurrency();
    tour_cooperative();
    tour_coroutines();
    tour_close();
    tour_send();
    tour_throw();

    /* Every generator above was freed: no stack is left in use. */
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    printf("\nstacks still in use by generators: %zu\n", st.live);
    expect(st.live == 0, "every generator was freed");
    cg_trim();

    if (failures) {
        printf("\n%d claim(s) of the notes did not hold.\n", failures);
        return 1;
    }
    printf("\nEvery outcome above matched the notes.\n");
    return 0;
}
