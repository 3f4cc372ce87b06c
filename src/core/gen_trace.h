/* gen_trace.h: the trace recorder (gen_trace.c), at the generator layer so
 * that a program of plain generators, which makes no loop, is traced too.
 * The loop records its task steps through cg__trace_record (src/loop/
 * trace.c says what a step waits on).
 *
 * A generator made while tracing is on carries GEN_TRACED in its fpenv
 * byte: its ev then rests at EV_YIELD_SLOW, which the assembly fast paths
 * refuse, and resume() takes the branch it already had for CG_OPT_FPENV
 * (cg__switch_in_slow), which records the resume. Generators made while
 * tracing is off pay nothing, not even a test.
 */
#ifndef COGEN_GEN_TRACE_H
#define COGEN_GEN_TRACE_H

#include "base.h"

#include <stdint.h>

/* The fpenv byte of struct cg_gen (gen.h): CG_OPT_FPENV's two states, and
 * the trace flag. Any bit sends resume() to cg__switch_in_slow. */
#define GEN_FPENV 1        /* CG_OPT_FPENV */
#define GEN_FPENV_SAVED 2  /* ... and the body's environment is saved */
#define GEN_TRACED 4       /* made while tracing was on: resumes recorded */

/* What an event is. */
enum { TR_STEP = 1, TR_SPAN, TR_GEN };

extern CG_HIDDEN int cg__trace_on;
static inline int cg__tracing(void) { return CG_UNLIKELY(__atomic_load_n(&cg__trace_on, __ATOMIC_RELAXED)); }
/* CLOCK_MONOTONIC in ns. */
CG_HIDDEN int64_t cg__trace_now(void);
/* Records one complete event of the calling thread: kind TR_*, its name,
 * start and end, its detail (a step: what the task waits on; a generator's
 * resume: how it ended) and, for a step, the loop's serial. Names and
 * details are cut to 46 and 47 bytes. */
CG_HIDDEN void cg__trace_record(int kind, const char *name, int64_t t0, int64_t t1, const char *what, uint64_t loop);
/* g, just made, is not to be traced as a plain generator: a task's body,
 * whose steps the loop records as steps. */
CG_HIDDEN void cg__gen_untraced(cg_gen *g);
/* COGEN_TRACE in the environment: start tracing, once per process (also
 * run when the library is loaded). */
CG_HIDDEN void cg__trace_from_env(void);

#endif
