/* gen_hint.h: what a driver of many generators (the event loop's ready
 * queue) may tell the generator layer ahead of time. A hint changes no
 * state: it only brings memory toward the cache. */
#ifndef COGEN_GEN_HINT_H
#define COGEN_GEN_HINT_H

#include "cogen.h"

/* g will be resumed soon: the top of its saved stack (the line of the
 * saved stack pointer and the next, which the switch pops its registers
 * from and the body's innermost frames live in) is prefetched. g's own
 * struct is read (prefetch it first). Any suspended or new g; a running or
 * finished one is harmless. */
CG_HIDDEN void cg__gen_prefetch_stack(const cg_gen *g);

#endif
