/* stack.h: generator stacks (src/core/stack.c): mmap'd, guarded, pooled
 * per thread, reported to the tools that track stacks. */
#ifndef COGEN_STACK_H
#define COGEN_STACK_H

#include "core/thread.h"

#include <stddef.h>
#include <stdint.h>

typedef struct cg__stack {
    struct cg__stack *next;  /* pool link */
    char *lo;                /* lowest usable byte */
    char *hi;                /* one past the highest usable byte */
    char *map;               /* own mapping to unmap, or NULL (slab stack) */
    size_t map_len;
    unsigned kind;           /* cg_guard */
    unsigned vg_id;          /* valgrind stack id */
} cg__stack;

#define CG__CANARY 0x63676e2d63616e61ull /* "cgn-cana" */

/* A stack of at least size usable bytes (flags: CG_OPT_REQUIRE_GUARD).
 * NULL with errno set when there is none. */
CG_HIDDEN cg__stack *cg__stack_get(size_t size, unsigned flags);
/* Releases a stack's pages, keeping its range (and guard). */
CG_HIDDEN void cg__stack_drop_pages(cg__stack *s);
CG_HIDDEN void cg__stack_put(cg__stack *s);
/* Whether addr is in the guard page below s (for an overflow report). Safe
 * in a signal handler. */
CG_HIDDEN int cg__stack_guard_hit(const cg__stack *s, const void *addr);

static inline int cg__canary_ok(const cg__stack *s) {
    return s->kind != CG_GUARD_CANARY || *(const uint64_t *)s->lo == CG__CANARY;
}

#endif
