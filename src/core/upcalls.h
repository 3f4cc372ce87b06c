/* upcalls.h: the only two calls that go up the layers (src/base.h lists
 * them). Each is a contract: declared here, defined by the generator layer,
 * called from below, and tools/layers.py lets nothing else go upward. */
#ifndef COGEN_UPCALLS_H
#define COGEN_UPCALLS_H

#include "base.h"

/* arch -> gen: the first code of a fresh stack (cg__frame_ready) calls it
 * with the generator the frame was made for. It runs the body and never
 * returns: the stack is switched away from for the last time. */
CG_NORETURN CG_HIDDEN void cg__gen_main(cg_gen *g);

/* exc -> gen: an exception e (owned) unwound past the last record of a
 * generator's context. The generator ends, raising e to its resumer; this
 * never returns. */
CG_NORETURN CG_HIDDEN void cg__gen_finish(cg_gen *g, cg_exc *e);

#endif
