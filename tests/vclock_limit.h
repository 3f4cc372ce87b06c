/* vclock_limit.h: limits for a test's run on the virtual clock, so that a
 * program that never ends fails at once, by name, instead of running on
 * until ctest's TIMEOUT kills the process.
 *
 * On the virtual clock a program that can make no progress stops by
 * itself (RuntimeError('deadlock: ...')), but one that keeps sleeping in a
 * loop moves virtual time forward as fast as the machine goes and never
 * ends. vclock_run() is cg_run() with a timer of its own in the run's
 * loop, every VCLOCK_TICK of virtual time, that fails the test once the
 * clock has passed VCLOCK_MAX_TIME or the loop has run VCLOCK_MAX_STEPS
 * task steps. The timer is pending for the whole run, so a deadlocked run
 * goes to the limit (in no wall time) and fails there too: use cg_run for
 * a program whose deadlock is the point. A loop of bare yields (sleep(0))
 * does not move virtual time: ctest's TIMEOUT, which every test has
 * (tests/limits.cmake checks), is what stops that one. */
#ifndef COGEN_TEST_VCLOCK_LIMIT_H
#define COGEN_TEST_VCLOCK_LIMIT_H

#include "check.h"

#include <cogen_loop.h>

#ifndef VCLOCK_MAX_TIME
#define VCLOCK_MAX_TIME CG_SEC(1000000) /* 11.6 days of virtual time */
#endif
#ifndef VCLOCK_MAX_STEPS
#define VCLOCK_MAX_STEPS 5000000ull
#endif
#define VCLOCK_TICK CG_SEC(1000)

static struct {
    cg_fn body;
    void *arg;
} vclock_main_of;

static void vclock_tick(void *loop) {
    cg_metrics m;
    cg_loop_metrics(loop, &m);
    cg_ns now = cg_loop_time(loop);
    if (now > VCLOCK_MAX_TIME || m.steps > VCLOCK_MAX_STEPS) {
        fprintf(stderr,
                "vclock limit: the run is at %lld s of virtual time after %llu task steps (limits %lld s, %llu): "
                "a program that never ends, or a deadlock\n",
                (long long)(now / CG_SEC(1)), (unsigned long long)m.steps, (long long)(VCLOCK_MAX_TIME / CG_SEC(1)),
                (unsigned long long)VCLOCK_MAX_STEPS);
        abort();
    }
    cg_handle *h = cg_loop_call_later(loop, VCLOCK_TICK, vclock_tick, loop);
    CHECK(h != NULL);
    cg_handle_unref(h);
}

static void *vclock_main(cg_gen *g, void *arg) {
    (void)arg;
    vclock_tick(cg_get_running_loop()); /* checks, and arms the first tick */
    return vclock_main_of.body(g, vclock_main_of.arg);
}

/* cg_run(body, arg, opts, out, exc) on the virtual clock (opts NULL: a
 * plain one), within the limits. */
static inline cg_status vclock_run(cg_fn body, void *arg, const cg_run_opts *opts, void **out, cg_exc **exc) {
    cg_run_opts o = opts ? *opts : (cg_run_opts){0, NULL, NULL, NULL};
    o.loop_flags |= CG_LOOP_VIRTUAL_CLOCK;
    vclock_main_of.body = body;
    vclock_main_of.arg = arg;
    return cg_run(vclock_main, NULL, &o, out, exc);
}

#endif
