/* mem.c: the allocator, its generation, cg__fatal. cg_set_allocator itself
 * is in thread.c: it also empties the calling thread's caches. */
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>

static void *default_alloc(size_t n, void *ud) {
    (void)ud;
    return malloc(n);
}
static void default_dealloc(void *p, void *ud) {
    (void)ud;
    free(p);
}
static void *(*alloc_fn)(size_t, void *) = default_alloc;
static void (*dealloc_fn)(void *, void *) = default_dealloc;
static void *alloc_ud;

unsigned cg__alloc_gen;

void *cg__alloc(size_t n) { return alloc_fn(n, alloc_ud); }

void cg__dealloc(void *p) {
    if (p) dealloc_fn(p, alloc_ud);
}

cg__allocator cg__allocator_now(void) { return (cg__allocator){dealloc_fn, alloc_ud}; }

void cg__dealloc_with(cg__allocator a, void *p) {
    if (p) (a.dealloc ? a.dealloc : default_dealloc)(p, a.ud);
}

void cg__allocator_set(void *(*alloc)(size_t, void *), void (*dealloc)(void *, void *), void *ud) {
    if (!alloc || !dealloc) {
        alloc = default_alloc;
        dealloc = default_dealloc;
        ud = NULL;
    }
    alloc_fn = alloc;
    dealloc_fn = dealloc;
    alloc_ud = ud;
    __atomic_fetch_add(&cg__alloc_gen, 1, __ATOMIC_RELAXED);
}

void cg__fatal(const char *file, int line, const char *msg) {
    fprintf(stderr, "cogen: fatal: %s (%s:%d)\n", msg, file, line);
    fflush(stderr);
    abort();
}
