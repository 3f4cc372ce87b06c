/* exc.h: exception objects and the record chain of each execution context
 * (src/core/exc.c). */
#ifndef COGEN_EXC_H
#define COGEN_EXC_H

#include "core/thread.h"

struct cg_exc {
    const cg_exc_type *type;
    long refs;                 /* < 0: immortal (the preallocated MemoryError) */
    int slot;                  /* allocated as a fixed-size slot (src/core/exc.c) */
    int line;                  /* first raise site: line, file, func */
    cg_exc *context;           /* __context__ (owned); while the object is
                                  in a thread's spare list, the next spare
                                  (exc.c: spare_next) */
    cg_exc *cause;             /* __cause__ (owned) */
    void *payload;
    void (*payload_dtor)(void *);
    const char *file;
    const char *func;
    cg_exc *walk;              /* NULL, except during a walk of the link graph
                                  or a release (src/core/exc.c) */
    char *msg;                 /* NULL: no args; else points into text[] */
    char text[];
};

/* The exception being handled in ctx, looking at its parents too when
 * walk_parents is set (Python's topmost exc_info), borrowed. */
CG_HIDDEN cg_exc *cg__handled(cg__ctx *ctx, int walk_parents);
/* Python's implicit chaining (_PyErr_SetObject): e.__context__ = handled,
 * cutting a cycle through e if there is one. e is owned by the caller. */
CG_HIDDEN void cg__chain(cg_exc *e, cg_exc *handled);
/* Chaining as if e were raised in the current context. */
static inline void cg__chain_here(cg_exc *e) { cg__chain(e, cg__handled(cg__cur(), 1)); }
/* Unwinds the current context with e in flight (owned), without touching
 * its context: runs defers, lands in the innermost catching try, or ends
 * the running generator (cg__gen_finish, src/core/upcalls.h). */
CG_NORETURN CG_HIDDEN void cg__unwind(cg_exc *e);
/* Raises e (owned) in ctx, the running context, as thrown in by its
 * resumer (cg_throw): chained to what ctx handles, not its parents, then
 * unwound as cg__unwind does. A try whose body runs on top of the chain
 * gets e straight away (the assembly cg_throw enters here directly). */
CG_NORETURN CG_HIDDEN void cg__throw_in(cg__ctx *ctx, cg_exc *e);
/* Drops the exceptions held by records of a stack that is being thrown
 * away without unwinding. */
CG_HIDDEN void cg__drop_chain(cg__ctx *ctx);
/* An exception created by the library for its caller: chained here. */
CG_HIDDEN cg_exc *cg__error(const cg_exc_type *type, const char *msg);
/* A preallocated, immortal GeneratorExit, for close() when there is no
 * memory for a fresh one (a MemoryError there could be swallowed by a body
 * that catches Exception, and the generator would not close). */
CG_HIDDEN cg_exc *cg__generator_exit_static(void);

#endif
