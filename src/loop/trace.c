/* trace.c: the loop's part of the trace recorder (src/core/gen_trace.c):
 * a task step, with what the task then waits on. Off, the loop pays one
 * predictable branch per task step (cg__tracing, in task.c).
 */
#include "loop/loop.h"

#include <stdio.h>

void cg__trace_step(cg_task *t, cg_ns t0, cg_status st, void *r) {
    cg_ns t1 = cg__trace_now();
    char what[48];
    const char *w = what;
    if (st == CG_RETURNED) {
        w = "returned";
    } else if (st == CG_RAISED) {
        w = "raised";
    } else if (r == &cg__await_token && t->awaiting) {
        cg_future *f = t->awaiting;
        if (f->is_task)
            snprintf(what, sizeof what, "task %s", cg__task_name((cg_task *)f));
        else
            w = "future";
    } else if (r == &cg__io_token && (cg__task_io_wait(t) & 2)) { /* a sleep's timer (task.c's WAIT_TIMER) */
        w = "sleep";
    } else if (r == &cg__io_token && (cg__task_io_wait(t) & CG__WAIT_TAGS) == CG__WAIT_SYNC) { /* a waiter without a future (sync.h) */
        w = "future";
    } else if (r == &cg__io_token) {
        snprintf(what, sizeof what, "fd (%s)", (cg__task_io_wait(t) & 1) ? "write" : "read");
    } else if (r == NULL) {
        w = "ready";
    } else {
        w = "bad yield";
    }
    cg__trace_record(TR_STEP, cg__task_name(t), t0, t1, w, t->fut.loop ? t->fut.loop->serial : 0);
}
