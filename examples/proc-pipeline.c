/* proc-pipeline.c: a shell pipeline run by the event loop.
 *
 *   proc-pipeline PORT [COMMAND...]
 *
 * runs the COMMANDs (each a /bin/sh -c command line) as a chain of
 * subprocesses, standard input into the first, each one's stdout into the
 * next one's stdin, and copies what comes out of the last to standard
 * output as it comes. Without COMMANDs it counts the words of its input:
 *
 *   tr -cs A-Za-z '\n' | tr A-Z a-z | sort | uniq -c | sort -k1,1nr -k2,2
 *
 * (LC_ALL=C, so that the order does not depend on the locale).
 *
 * PORT is there for the convention (every example takes its port
 * first); this one listens on nothing, so it is ignored.
 *
 * A stage that fails is reported on stderr ("stage 2 (exit 3) exited with
 * status 3", or "was killed by signal 15"), and the exit status is that of
 * the last stage that failed (128+N for a signal), as bash's pipefail; 0
 * when all succeed. SIGINT or SIGTERM stops it cleanly: the stages (each
 * in a session and process group of its own, so that what their shell
 * started goes too) get SIGTERM, are reaped, "interrupted" goes to stderr, and the exit status
 * is 0. With PROC_PIPELINE_VERBOSE set, each stage's pid goes to stderr
 * (the tests check that no stage outlives the program).
 *
 * What it shows: cg_create_subprocess_shell with pipes (CG_PROC_PIPE, and
 * a pipe taken from one stage and given to the next with CG_PROC_FD),
 * reading a child's output on the loop as a stream (cg_process_stdout_stream,
 * cg_stream_read), waiting for several
 * children, a task waiting for signals (cg_wait_signal), and cancelling
 * the work when one comes.
 */
#define _GNU_SOURCE
#include <cogen_io.h>

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_STAGES 32

static const char *word_count[] = {
    "tr -cs A-Za-z '\\n'", "tr A-Z a-z", "sort", "uniq -c", "sort -k1,1nr -k2,2",
};

typedef struct pipeline {
    const char **cmds;
    int n;
    cg_process *stage[MAX_STAGES];
    int status; /* the exit status of the program */
    int interrupted;
    cg_task *runner;
} pipeline;

/* Copies the last stage's output (its stdout as a stream) to our stdout
 * as it comes. */
static void copy_out(cg_stream_reader *r) {
    char buf[8192];
    size_t n;
    while ((n = cg_stream_read(r, buf, sizeof buf)) > 0) {
        if (fwrite(buf, 1, n, stdout) != n) CG_RAISE(&cg_OSError, "cannot write to standard output");
        fflush(stdout);
    }
}

static void close_fd(void *fd) {
    if (*(int *)fd >= 0) close(*(int *)fd);
}

/* Starts stage i with in_fd (the read end of the previous stage's stdout,
 * closed here once the child has its copy; -1: our stdin) as its stdin,
 * and a pipe for its stdout. */
static void start_stage(pipeline *pl, int i, int in_fd) {
    CG_DEFER(close_fd, &in_fd);
    cg_process_opts o = {0};
    if (in_fd >= 0) {
        o.stdin_mode = CG_PROC_FD;
        o.stdin_fd = in_fd;
    }
    o.stdout_mode = CG_PROC_PIPE;
    /* a session (so a process group) of its own: /bin/sh may run the
     * command as a child of its own, which a signal to the shell alone
     * would leave running; the group gets it all */
    o.new_session = 1;
    pl->stage[i] = cg_create_subprocess_shell(pl->cmds[i], &o);
    if (getenv("PROC_PIPELINE_VERBOSE")) fprintf(stderr, "stage %d pid %d\n", i + 1, cg_process_pid(pl->stage[i]));
}

/* The pipeline's task: starts the stages and copies the output. */
static void *run_pipeline(cg_gen *g, void *arg) {
    (void)g;
    pipeline *pl = arg;
    for (int i = 0; i < pl->n; i++) start_stage(pl, i, i ? cg_process_take_fd(pl->stage[i - 1], 1) : -1);
    copy_out(cg_process_stdout_stream(pl->stage[pl->n - 1]));
    return NULL;
}

/* Waits for SIGINT or SIGTERM, then cancels the pipeline. */
static void *on_stop(cg_gen *g, void *arg) {
    (void)g;
    pipeline *pl = arg;
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    cg_wait_signal(&stop);
    pl->interrupted = 1;
    cg_task_cancel(pl->runner, NULL);
    return NULL;
}

static void await_task(void *t) { cg_await(cg_task_future(t)); }

static void *main_task(cg_gen *g, void *arg) {
    (void)g;
    pipeline *pl = arg;
    /* the signals are caught first (tasks start in the order they were
     * made): a stage's pid is printed only once they are */
    cg_task *stopper = cg_create_task(on_stop, pl, "stop");
    pl->runner = cg_create_task(run_pipeline, pl, "pipeline");
    cg_exc *e = cg_try_catch(await_task, pl->runner, &cg_BaseException);
    cg_task_cancel(stopper, NULL);
    if (e && !pl->interrupted) {
        fprintf(stderr, "proc-pipeline: ");
        cg_exc_print(e, stderr);
        pl->status = 2;
    }
    cg_exc_unref(e);
    /* every stage started is reaped; when stopped, they get SIGTERM first */
    for (int i = 0; i < pl->n && pl->stage[i]; i++) {
        cg_process *p = pl->stage[i];
        if (pl->interrupted) kill(-cg_process_pid(p), SIGTERM); /* the stage's whole group */
        int rc = cg_process_wait(p);
        if (pl->interrupted) {
        } else if (rc > 0) {
            fprintf(stderr, "proc-pipeline: stage %d (%s) exited with status %d\n", i + 1, pl->cmds[i], rc);
            pl->status = rc;
        } else if (rc < 0) {
            fprintf(stderr, "proc-pipeline: stage %d (%s) was killed by signal %d\n", i + 1, pl->cmds[i], -rc);
            pl->status = 128 - rc;
        }
        cg_process_free(p);
    }
    cg_future_unref(cg_task_future(pl->runner));
    cg_future_unref(cg_task_future(stopper));
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: proc-pipeline PORT [COMMAND...]\n");
        return 2;
    }
    pipeline pl = {0};
    if (argc > 2) {
        pl.cmds = (const char **)argv + 2;
        pl.n = argc - 2;
    } else {
        setenv("LC_ALL", "C", 1);
        pl.cmds = word_count;
        pl.n = (int)(sizeof word_count / sizeof word_count[0]);
    }
    if (pl.n > MAX_STAGES) {
        fprintf(stderr, "proc-pipeline: at most %d commands\n", MAX_STAGES);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error to report, not a death */
    cg_exc *e = NULL;
    if (cg_run(main_task, &pl, NULL, NULL, &e) != CG_RETURNED) {
        fprintf(stderr, "proc-pipeline: ");
        cg_exc_print(e, stderr);
        cg_exc_unref(e);
        return 2;
    }
    if (pl.interrupted) fprintf(stderr, "proc-pipeline: interrupted\n");
    return pl.status;
}
