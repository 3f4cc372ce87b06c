/* upcalls.h: the only two calls that go up the layers (src/base.h lists
 * them). Each is a contract: declared here, defined by the generator layer,
 * called from below, and tools/layers.py lets nothing else go upward. */
#ifndef COGEN_UPCALLS_H
#define COGEN_UPCALLS_H

#include "base.h"

/* arch -> gen: the first code of a fresh stack (cg__entry, made by
 * cg__frame_ready) calls cg__gen_start with the generator the frame was
 * made for, calls the body it returns, fn(g, arg), itself, and then
 * cg__gen_return with what the body returned, which never returns: the
 * stack is switched away from for the last time. So no frame of the
 * generator layer sits under the body: every suspended generator's stack
 * is that much shallower, and a compact one keeps that much less. (Two
 * calls of one contract.) */
typedef struct cg__body {
    void *(*fn)(cg_gen *g, void *arg);
    void *arg;
} cg__body;
CG_HIDDEN cg__body cg__gen_start(cg_gen *g);
CG_NORETURN CG_HIDDEN void cg__gen_return(cg_gen *g, void *value);

/* exc -> gen: an exception e (owned) unwound past the last record of a
 * generator's context. The generator ends, raising e to its resumer; this
 * never returns. */
CG_NORETURN CG_HIDDEN void cg__gen_finish(cg_gen *g, cg_exc *e);

#endif
