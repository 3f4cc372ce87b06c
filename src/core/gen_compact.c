/* gen_compact.c: compact mode.
 *
 * A compact generator has a stack of its own like any other, but only the
 * COMPACT_RESIDENT most recently resumed compact generators of a thread
 * keep its pages. When one more becomes resident, the oldest suspended one
 * is swapped out: the used part of its stack (a few hundred bytes for a
 * shallow generator) is copied to a buffer of exactly that size and the
 * pages are dropped. It is copied back, to the same addresses, before it
 * runs again or its exception records are read. So a compact generator that
 * is resumed often costs what any generator costs, and a suspended one costs
 * its handle plus its used stack bytes.
 *
 * OWNER_SWAPPED (bit 0 of the owner word, src/core/gen.h) is set while a
 * compact generator is not resident: the assembly fast path, which compares
 * the owner word with the thread pointer, then falls back to the C path,
 * which makes it resident first.
 */
#include "core/gen.h"

#include <stdlib.h>
#include <string.h>

#define COMPACT_RESIDENT 64

/* The resident generators of a thread, oldest first, are a ring of slots
 * (cg__gt.res): a generator that becomes resident takes the next slot
 * (res_append), one that leaves empties its own (res_unlink), which it
 * knows from its res_slot; the oldest are evicted from the front. A
 * generator's res_slot shares its word with the swap buffer (gen.h): only
 * a resident one has a slot, only one that is not has a buffer. No link
 * in the handle: the ring costs a pointer per slot, for as many slots as
 * are resident (64 by default), not per generator. */
static inline cg_gen **res_at(unsigned i) { return &cg__gt.res[i & (cg__gt.res_cap - 1)]; }

static void res_unlink(cg_gen *g) {
    if (!g->resident) return;
    *res_at((unsigned)g->res_slot) = NULL;
    g->res_slot = 0; /* the swap word: no buffer yet */
    g->resident = 0;
    cg__gt.nres--;
    while (cg__gt.res_first != cg__gt.res_end && !*res_at(cg__gt.res_first)) cg__gt.res_first++;
}

/* Room for one more slot: a full ring moves its taken slots, in order, to
 * a new ring, twice as big if more than a quarter of them are taken (so
 * that the move comes once every three appends per resident generator at
 * most). 0 without memory for it. */
static int res_make_room(void) {
    unsigned cap = cg__gt.res_cap;
    if (cg__gt.res_end - cg__gt.res_first < cap) return 1;
    unsigned ncap = !cap ? 256 : cg__gt.nres > cap / 4 ? cap * 2 : cap;
    /* Bookkeeping that outlives any one allocator setting, as the stack
     * records: from malloc itself. */
    cg_gen **ring = ncap >= cap && ncap < (1u << 30) ? calloc(ncap, sizeof *ring) : NULL;
    if (!ring) return 0;
    unsigned n = 0;
    for (unsigned i = cg__gt.res_first; i != cg__gt.res_end; i++) {
        cg_gen *v = *res_at(i);
        if (v) {
            v->res_slot = n;
            ring[n++] = v;
        }
    }
    free(cg__gt.res);
    cg__gt.res = ring;
    cg__gt.res_cap = ncap;
    cg__gt.res_first = 0;
    cg__gt.res_end = n;
    return 1;
}

/* g becomes resident. Without memory for the ring it is not entered: it
 * then simply stays resident, as one whose copy could not be made. */
static void res_append(cg_gen *g) {
    if (!res_make_room()) return;
    unsigned i = cg__gt.res_end++;
    *res_at(i) = g;
    g->res_slot = i;
    g->resident = 1;
    cg__gt.nres++;
}

/* Copies the used part of a suspended compact generator's stack out and
 * drops its pages. Returns 0 if there is no memory for the copy (then it
 * simply stays resident). */
static int swap_out(cg_gen *g) {
    size_t len = swap_len(g);
    void *buf = cg__alloc(len);
    if (!buf) return 0;
#if CG_ASAN
    ASAN_UNPOISON_MEMORY_REGION(g->sp, len); /* copying reads the redzones */
#endif
    memcpy(buf, g->sp, len);
    cg__stack_drop_pages(g->stack);
    res_unlink(g);
    g->swap = buf;
    set_swapped(g, 1);
    return 1;
}

/* The frames go back to the stack; a generator that never ran gets its
 * first frame there (cg__compact_init keeps none). */
static void frames_back(cg_gen *g) {
    if (g->swap) {
        memcpy(g->sp, g->swap, swap_len(g));
        cg__dealloc(g->swap);
        g->swap = NULL;
    } else {
        g->sp = cg__frame_ready(g->stack->lo, gen_top(g), g);
    }
}

void cg__compact_swap_in(cg_gen *g) {
    if (!owner_swapped(g)) return;
    frames_back(g);
    set_swapped(g, 0); /* not resident either: it will not run again */
}

/* A process-wide default, for running a whole test suite in compact mode:
 * COGEN_COMPACT=N in the environment makes every generator compact, with at
 * most N resident per thread (N=1 swaps at almost every switch). */
int cg__compact_env = -1; /* -1: not read yet; 0: off; else the limit */

int cg__compact_env_read(void) {
    int c = __atomic_load_n(&cg__compact_env, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *e = getenv("COGEN_COMPACT");
        long n = e ? strtol(e, NULL, 10) : 0;
        c = n > 0 ? (n < 1 << 20 ? (int)n : 1 << 20) : 0;
        __atomic_store_n(&cg__compact_env, c, __ATOMIC_RELAXED);
    }
    return c;
}

static unsigned res_limit(void) {
    if (cg__gt.res_limit) return cg__gt.res_limit;
    int env = cg__compact_default();
    return env > 0 ? (unsigned)env : COMPACT_RESIDENT;
}

/* Swaps out the oldest suspended ones while there are too many. Running
 * ones (a delegator below the generator that runs, a body that resumed
 * another) stay: their frames are in use. */
static void evict_excess(void) {
    unsigned limit = res_limit();
    for (unsigned i = cg__gt.res_first; cg__gt.nres > limit && i != cg__gt.res_end; i++) {
        cg_gen *v = *res_at(i);
        if (v && v->state == CG_GEN_SUSPENDED && !swap_out(v)) break;
    }
}

void cg__compact_make_resident(cg_gen *g) {
    frames_back(g);
    set_swapped(g, 0);
    res_append(g);
    evict_excess();
}

unsigned cg_compact_resident(unsigned limit) {
    cg__cur();
    unsigned old = res_limit();
    if (limit) {
        cg__gt.res_limit = limit;
        evict_excess();
    }
    return old;
}


int cg__compact_init(cg_gen *g) {
    /* The stack's pages are not touched until the generator first runs,
     * and no buffer is kept for its first frame either: that frame is
     * made from g alone, on the stack, when it first becomes resident
     * (frames_back). (A buffer made here and freed at the first run left,
     * with a million generators made before any ran, a million holes in
     * the heap that nothing of their size came to fill.) sp is where the
     * frame will be: it holds no address of its own, so it is built in
     * tmp with the stack's alignment to learn its size. */
    _Alignas(16) char tmp[256];
    char *top = gen_top(g), *ttop = tmp + sizeof tmp - ((uintptr_t)top & 15);
    g->sp = top - (ttop - (char *)cg__frame_ready(tmp, ttop, g));
    g->swap = NULL;
    set_swapped(g, 1);
    return 1;
}

void cg__compact_release(cg_gen *g) {
    if (g->resident)
        res_unlink(g);
    else
        cg__dealloc(g->swap);
    g->swap = NULL;
    set_swapped(g, 0);
}
