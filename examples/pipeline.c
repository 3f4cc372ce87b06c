/* pipeline.c: grep built from coroutines.
 *
 *   pipeline PATTERN [FILE...]
 *
 * prints the lines of the FILEs (standard input when there are none, or for
 * "-") that contain PATTERN, a fixed string (like grep -F), with their line
 * numbers (like grep -n; with several files, also the file name), then a
 * summary from each consumer.
 *
 * Data flows downstream by cg_send, one line at a time:
 *
 *   producer --> filter(PATTERN) --> broadcast --+--> printer  (prints the line)
 *   (main: reads                                 +--> counter  (counts matches)
 *    the files)                                  +--> longest  (keeps the longest)
 *
 * Every stage after the producer is a coroutine: it waits in cg_yield for
 * the next line and passes lines on with cg_send. When the input ends, the
 * producer closes the head of the pipeline; each stage's finally block
 * closes the stages it feeds, so GeneratorExit travels down the pipeline
 * and every consumer prints its summary as it closes (from a CG_DEFER, a
 * CG_EXCEPT or state kept outside its frame: never from a local changed
 * inside CG_TRY, see printer).
 *
 * An exception raised by a stage (say MemoryError in `longest`) comes back
 * to whoever sent it the line: each stage re-raises it, so it unwinds the
 * stages above (running their finally blocks) and reaches the producer.
 *
 * Exit status, as grep's: 0 if a line matched, 1 if none did, 2 on an
 * error (an unreadable file is reported and the other files still run).
 */
#define _POSIX_C_SOURCE 200809L /* getline */

#include <cogen.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

static const char *prog = "pipeline";

/* What travels down the pipeline. The text belongs to the producer and is
 * only valid during the send: a stage that keeps it must copy it. */
typedef struct line {
    const char *file; /* as named on the command line */
    long number;      /* 1-based, within its file */
    const char *text; /* without the newline */
    size_t len;
} line;

/* ---------------------------------------------------------------------
 * Plumbing
 * ------------------------------------------------------------------ */

/* Makes a coroutine and runs it to its first cg_yield, where it waits for
 * the first send: a fresh generator cannot receive a value (Python's
 * priming @coroutine decorator). NULL, with a message, on failure. */
static cg_gen *start(cg_fn fn, void *arg, const char *name) {
    cg_opts o = {0};
    o.name = name;
    cg_gen *g = cg_new(fn, arg, &o);
    if (!g) {
        fprintf(stderr, "%s: cannot make the %s stage: %s\n", prog, name, strerror(errno));
        return NULL;
    }
    cg_exc *e = NULL;
    if (cg_next(g, NULL, &e) != CG_YIELDED) {
        char buf[200];
        cg_exc_repr(e, buf, sizeof buf);
        fprintf(stderr, "%s: the %s stage did not start: %s\n", prog, name, buf);
        cg_exc_unref(e);
        cg_free(g);
        return NULL;
    }
    return g;
}

/* Sends v to the next stage. An exception the next stage raised continues
 * here, in the sender, as if the sender had raised it. A stage that has
 * returned just drops what it is sent (cg_send reports CG_RETURNED). */
static void push(cg_gen *next, void *v) {
    cg_exc *e = NULL;
    if (cg_send(next, v, NULL, &e) == CG_RAISED) cg_raise(e);
}

/* Closes the next stage; returns what its close raised (a new reference),
 * or NULL. Closing a closed stage does nothing. */
static cg_exc *close_stage(cg_gen *next) {
    cg_exc *e = NULL;
    return cg_close(next, NULL, &e) == CG_RAISED ? e : NULL;
}

/* ---------------------------------------------------------------------
 * The stages
 * ------------------------------------------------------------------ */

typedef struct filter_args {
    const char *pattern;
    cg_gen *next;
} filter_args;

/* Passes on the lines that contain the pattern. */
static void *filter(cg_gen *g, void *arg) {
    const filter_args *a = arg;
    CG_TRY {
        for (;;) {
            line *ln = cg_yield(g, NULL);
            if (strstr(ln->text, a->pattern)) push(a->next, ln);
        }
    } CG_FINALLY {
        /* However the filter ends (closed, or an error from downstream), the
         * stage it feeds ends too. A close that fails raises here and
         * replaces the exception in flight, chained to it. */
        cg_exc *e = close_stage(a->next);
        if (e) cg_raise(e);
    } CG_END;
    return NULL;
}

typedef struct broadcast_args {
    cg_gen **targets;
    size_t n;
} broadcast_args;

/* Sends each line to every target, in order. */
static void *broadcast(cg_gen *g, void *arg) {
    const broadcast_args *a = arg;
    CG_TRY {
        for (;;) {
            void *v = cg_yield(g, NULL);
            for (size_t i = 0; i < a->n; i++) push(a->targets[i], v);
        }
    } CG_FINALLY {
        /* Close every target even if one of them fails to close, so that
         * each consumer gets to run its cleanup; report the first failure. */
        cg_exc *first = NULL;
        for (size_t i = 0; i < a->n; i++) {
            cg_exc *e = close_stage(a->targets[i]);
            if (e && !first)
                first = e;
            else
                cg_exc_unref(e);
        }
        if (first) cg_raise(first);
    } CG_END;
    return NULL;
}

/* Prints each line it receives, grep -n style, and at the end how many.
 *
 * The count is a plain local, and that is safe because this function has no
 * CG_TRY: the summary runs from CG_DEFER, which runs however the body ends
 * (close() raises GeneratorExit at the cg_yield) and needs no setjmp. With
 * CG_TRY and CG_FINALLY instead, `printed` would have to be volatile: a
 * local changed inside CG_TRY can read back stale after an exception
 * ("Locals and CG_TRY" in cogen.h). */
static void printer_summary(void *p) {
    long printed = *(const long *)p;
    printf("-- printer: %ld line%s printed\n", printed, printed == 1 ? "" : "s");
}

static void *printer(cg_gen *g, void *arg) {
    const int *with_names = arg;
    long printed = 0;
    CG_DEFER(printer_summary, &printed);
    for (;;) {
        const line *ln = cg_yield(g, NULL);
        if (*with_names) printf("%s:", ln->file);
        printf("%ld:%s\n", ln->number, ln->text);
        printed++;
    }
    return NULL;
}

/* Counts the matching lines, and the files they came from. The caller
 * reads the totals (for the exit status) from the struct after the close. */
typedef struct counts {
    long matches;
    long files;
    const char *last_file;
} counts;

static void *counter(cg_gen *g, void *arg) {
    counts *c = arg; /* state in the caller's struct: no volatile needed */
    CG_TRY {
        for (;;) {
            const line *ln = cg_yield(g, NULL);
            c->matches++;
            /* Lines arrive file by file, so a new name is a new file. */
            if (c->last_file != ln->file) c->files++;
            c->last_file = ln->file;
        }
    } CG_EXCEPT(&cg_GeneratorExit, e) {
        /* Handling close() explicitly, then returning: a clean close, as
         * the notes ask. (Yielding here would be the "generator ignored
         * GeneratorExit" bug.) */
        printf("-- counter: %ld matching line%s in %ld file%s\n", c->matches, c->matches == 1 ? "" : "s",
               c->files, c->files == 1 ? "" : "s");
    } CG_END;
    return NULL;
}

/* Remembers the longest matching line (the first one, on a tie), with its
 * own copy of the text, since the producer reuses its buffer. As in
 * printer, the state is a plain local and the report a CG_DEFER: it runs
 * on close, and also when the copy fails and MemoryError ends the body. */
typedef struct best_line {
    char *text;
    size_t len;
    const char *file;
    long number;
} best_line;

static void longest_report(void *p) {
    best_line *best = p;
    if (best->text)
        printf("-- longest: %s:%ld, %zu characters: %s\n", best->file, best->number, best->len, best->text);
    else
        printf("-- longest: no matching line\n");
    free(best->text);
}

static void *longest(cg_gen *g, void *arg) {
    (void)arg;
    best_line best = {NULL, 0, NULL, 0};
    CG_DEFER(longest_report, &best);
    for (;;) {
        const line *ln = cg_yield(g, NULL);
        if (best.text && ln->len <= best.len) continue;
        char *copy = malloc(ln->len + 1);
        if (!copy) CG_RAISE(&cg_MemoryError, "copying the longest line");
        memcpy(copy, ln->text, ln->len + 1);
        free(best.text);
        best.text = copy;
        best.len = ln->len;
        best.file = ln->file;
        best.number = ln->number;
    }
    return NULL;
}

/* ---------------------------------------------------------------------
 * The producer
 * ------------------------------------------------------------------ */

/* Sends every line of f into the pipeline. Returns 0, or -1 after a
 * message when reading failed or the pipeline raised (*broken is then set:
 * the pipeline is closed and nothing more can be sent). */
static int produce(const char *name, FILE *f, cg_gen *head, long *lines_read, int *broken) {
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    long number = 0;
    int rc = 0;
    while ((n = getline(&buf, &cap, f)) != -1) {
        if (n > 0 && buf[n - 1] == '\n') buf[--n] = '\0';
        line ln = {name, ++number, buf, (size_t)n};
        (*lines_read)++;
        cg_exc *e = NULL;
        if (cg_send(head, &ln, NULL, &e) == CG_RAISED) {
            fprintf(stderr, "%s: the pipeline failed at %s:%ld:\n", prog, name, number);
            cg_exc_print(e, stderr);
            cg_exc_unref(e);
            *broken = 1;
            rc = -1;
            break;
        }
    }
    if (!*broken && ferror(f)) {
        fprintf(stderr, "%s: %s: %s\n", prog, name, strerror(errno));
        rc = -1;
    }
    free(buf);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !*argv[1]) {
        fprintf(stderr, "usage: %s PATTERN [FILE...]\n", prog);
        return 2;
    }
    const char *pattern = argv[1];
    char *stdin_only[] = {"-"};
    char **files = argc > 2 ? argv + 2 : stdin_only;
    int nfiles = argc > 2 ? argc - 2 : 1;
    int with_names = nfiles > 1;
    int status = 0;

    /* Build the pipeline from its end: a stage needs the stages it feeds. */
    counts c = {0, 0, NULL};
    cg_gen *consumers[3] = {
        start(printer, &with_names, "printer"),
        start(counter, &c, "counter"),
        start(longest, NULL, "longest"),
    };
    broadcast_args b = {consumers, 3};
    cg_gen *fan = NULL, *head = NULL;
    filter_args fa = {pattern, NULL};
    if (consumers[0] && consumers[1] && consumers[2]) fan = start(broadcast, &b, "broadcast");
    if (fan) {
        fa.next = fan;
        head = start(filter, &fa, "filter");
    }
    if (!head) {
        /* cg_free closes the stages that did start (their summaries print). */
        cg_free(fan);
        for (int i = 0; i < 3; i++) cg_free(consumers[i]);
        return 2;
    }

    long lines_read = 0;
    int broken = 0;
    for (int i = 0; i < nfiles && !broken; i++) {
        const char *name = files[i];
        int is_stdin = strcmp(name, "-") == 0;
        FILE *f = is_stdin ? stdin : fopen(name, "r");
        if (!f) {
            fprintf(stderr, "%s: %s: %s\n", prog, name, strerror(errno));
            status = 2;
            continue;
        }
        if (produce(is_stdin ? "(standard input)" : name, f, head, &lines_read, &broken) != 0) status = 2;
        if (!is_stdin) fclose(f);
    }
    printf("-- producer: %ld line%s read\n", lines_read, lines_read == 1 ? "" : "s");

    /* The end of the input: close the head, and the close travels down. */
    cg_exc *e = NULL;
    if (cg_close(head, NULL, &e) == CG_RAISED) {
        fprintf(stderr, "%s: closing the pipeline failed:\n", prog);
        cg_exc_print(e, stderr);
        cg_exc_unref(e);
        status = 2;
    }

    cg_free(head);
    cg_free(fan);
    for (int i = 0; i < 3; i++) cg_free(consumers[i]);
    cg_trim(); /* and give the pooled stacks back to the system */

    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "%s: writing the output: %s\n", prog, strerror(errno));
        status = 2;
    }
    if (status == 0 && c.matches == 0) status = 1;
    return status;
}
