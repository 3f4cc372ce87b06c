/* mem.h: the allocator that every allocation of the library goes through
 * (cg_set_allocator), its generation, and cg__fatal. */
#ifndef COGEN_MEM_H
#define COGEN_MEM_H

#include "base.h"

#include <stddef.h>

CG_HIDDEN void *cg__alloc(size_t n);
CG_HIDDEN void cg__dealloc(void *p);

/* The allocator in force: its dealloc and ud, for a cache that must give
 * memory back to the allocator it came from even after it has changed. */
typedef struct cg__allocator {
    void (*dealloc)(void *p, void *ud);
    void *ud;
} cg__allocator;
CG_HIDDEN cg__allocator cg__allocator_now(void);
/* Gives p back to allocator a (p may be NULL). */
CG_HIDDEN void cg__dealloc_with(cg__allocator a, void *p);

/* Sets the allocator (NULL functions: malloc and free) and bumps the
 * generation. */
CG_HIDDEN void cg__allocator_set(void *(*alloc)(size_t, void *), void (*dealloc)(void *, void *), void *ud);

/* Bumped by cg_set_allocator: a per-thread cache that holds memory of an
 * older allocator empties itself before its next use (src/core/thread.h,
 * cg__cache_check). Read with relaxed atomics. */
extern CG_HIDDEN unsigned cg__alloc_gen;
static inline unsigned cg__alloc_generation(void) { return __atomic_load_n(&cg__alloc_gen, __ATOMIC_RELAXED); }

#endif
