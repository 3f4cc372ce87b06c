/* stack.c: generator stacks. mmap'd, guarded, pooled per thread, and
 * reported to the tools that track stacks (ASan, Valgrind).
 *
 * Linux allows vm.max_map_count (65,530 by default) mappings per process,
 * and a guard page made with mprotect splits a mapping in two: a library
 * that guards every stack that way dies, or silently drops guards, at about
 * 32,700 stacks. cogen picks, for each new stack, the best protection
 * still available:
 *   1. a guard page installed with madvise(MADV_GUARD_INSTALL) (Linux 6.13
 *      and later): it lives in the page tables, costs no mapping, so stacks
 *      are carved out of large slabs and every one of them is guarded;
 *   2. otherwise, a mapping of its own with an mprotect'd guard page, while
 *      cogen's mappings stay under half of vm.max_map_count;
 *   3. beyond that, a slab stack with a canary word at its low end, checked
 *      at every switch out of the generator (CG_GUARD_CANARY). Nothing fails
 *      silently: cg_gen_guard() and cg_get_stack_stats() say which is which,
 *      and CG_OPT_REQUIRE_GUARD refuses to fall back.
 * A fault in a guard page is reported by the generator layer's SIGSEGV
 * handler (src/core/gen_life.c), which runs on an alternate signal stack
 * that each thread's pool sets up here.
 *
 * Freed stacks are kept for reuse by size: a thread keeps up to WARM_MAX in
 * NBUCKET warm buckets (pages kept), the rest go to NBUCKET cold buckets
 * shared by all threads (pages released). A stack that fits no bucket (the
 * program uses more distinct sizes than there are buckets) is given back to
 * the system: its own mapping is unmapped, or its range is cut out of its
 * slab (see "Slabs" below), so that any number of sizes costs bounded
 * memory, address space and mappings.
 */
#define _GNU_SOURCE
#include "core/stack.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if CG_ASAN
#include <sanitizer/asan_interface.h>
#endif


#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* How many stacks a thread keeps ready for reuse; the rest go back to the
 * system (their pages at least). */
#define WARM_MAX 64
/* Size of a slab that stacks are carved from. */
#define SLAB_MIN ((size_t)32 << 20)
#define NBUCKET 8

typedef struct bucket {
    size_t size;       /* usable bytes of the stacks in the list */
    cg__stack *list;
} bucket;

/* Stack counts. The hot path must not pay for lock-prefixed atomics, so
 * each thread counts in its own pool (written only by that thread, read by
 * cg_get_stack_stats from any: relaxed atomics, plain moves on x86-64) and
 * the totals are summed over every pool. A stack may be taken in one
 * thread and given back in another, so one pool's live count can go below
 * zero: only the sum means something. */
typedef struct counts {
    atomic_long page;   /* live stacks with a guard page */
    atomic_long canary; /* live stacks with a canary */
    atomic_long warm;   /* stacks in this pool's warm lists */
} counts;

#define BUMP(field, d) \
    atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + (d), memory_order_relaxed)

typedef struct cg__pool {
    /* The thread's cg__stack_hot (stack.h): a stack sitting there is
     * counted as live in n.page, and the statistics take it off. Written
     * by its thread only; read by cg_get_stack_stats from any. */
    _Atomic(cg__stack *) *hot;
    bucket warm[NBUCKET];
    size_t nwarm;
    char *slab, *slab_end; /* unused part of this thread's current slab */
    int slab_guarded;      /* slab stacks get madvise guards */
    void *altstack;        /* our sigaltstack, if we installed one */
    counts n;
    struct cg__pool *reg_next, **reg_prev; /* the registry of pools */
} cg__pool;

static size_t page_size;
/* The guard below each stack. Compilers probe a frame larger than the
 * guard they assume (-fstack-clash-protection) page by page: GCC assumes
 * 4 KiB on x86-64 but 64 KiB on AArch64, so a one-page guard there could be
 * jumped by a 60 KiB frame. The guard costs address space only. */
static size_t guard_size;
static atomic_int madv_guard = -1; /* -1 unknown, 0 no, 1 yes */
static size_t map_budget;         /* mappings cogen may use for stacks */
static atomic_size_t n_mappings;  /* changes only with mmap/munmap */
static atomic_long n_cold;        /* stacks in the cold lists */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static cg__pool *registry;
static counts retired; /* what ended threads counted (under reg_lock) */

/* Stacks given back by threads that ended or trimmed, pages released. */
static pthread_mutex_t cold_lock = PTHREAD_MUTEX_INITIALIZER;
static bucket cold[NBUCKET];
/* Cold stacks that fit no bucket and that the kernel would not let us
 * unmap (cutting a range out of a mapping splits it, which fails at the
 * mapping limit): kept for reuse, whatever their size. Under cold_lock. */
static cg__stack *stranded;

/* Slabs. Stacks are carved from a slab upward, back to back, and a range
 * that is no longer needed (a stack that fits no bucket, the unused end of
 * a slab its thread has moved on from) is unmapped on its own: that is
 * legal anywhere in a mapping, and it is what bounds the address space of a
 * program with many stack sizes. Unmapping a piece from the middle of a
 * mapping splits it in two, so each slab records what was cut out of it, to
 * keep n_mappings (the number of mapped pieces of every slab, plus the
 * stacks with mappings of their own) exact:
 *   [lo, hi)  the slab, less what was cut from its ends;
 *   holes     the ranges cut out strictly inside [lo, hi), each with mapped
 *             bytes on both sides, as a list of cg__stack records of which
 *             only next, lo and hi mean something (the descriptor of the
 *             stack whose range it was, reused: no allocation can fail).
 * A slab whose last piece goes is forgotten. Slabs are sorted by lo, under
 * cold_lock, which is also held across each munmap of a piece, so that no
 * new mapping can take the range before it is recorded. The kernel may
 * place a new slab in a hole of an old one: slab_find copes. */
typedef struct slab {
    char *lo, *hi;
    cg__stack *holes;
} slab;
static slab *slabs;
static size_t nslab, slab_cap;

static pthread_once_t once = PTHREAD_ONCE_INIT;

/* This thread's pool (NULL until its first stack). */
static __thread cg__pool *pool __attribute__((tls_model("initial-exec")));

cg__stack cg__stack_unready; /* lo == hi: no size matches */
__thread _Atomic(cg__stack *) cg__stack_hot __attribute__((tls_model("initial-exec"))) = &cg__stack_unready;

static void init_once(void) {
    long ps = sysconf(_SC_PAGESIZE);
    page_size = ps > 0 ? (size_t)ps : 4096;
#if defined(__aarch64__)
    guard_size = page_size > 65536 ? page_size : 65536;
#else
    guard_size = page_size;
#endif
    size_t max_maps = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        unsigned long v;
        if (fscanf(f, "%lu", &v) == 1 && v > 0) max_maps = v;
        fclose(f);
    }
    map_budget = max_maps / 2;
    /* COGEN_STACK_GUARD=mprotect or =canary makes cogen behave as on a
     * kernel without MADV_GUARD_INSTALL, or with no mapping left for guard
     * pages: how the test suites exercise those paths on any kernel. */
    const char *force = getenv("COGEN_STACK_GUARD");
    if (force && (strcmp(force, "mprotect") == 0 || strcmp(force, "canary") == 0)) madv_guard = 0;
    if (force && strcmp(force, "canary") == 0) map_budget = 0;
}

static size_t round_page(size_t n) { return (n + page_size - 1) & ~(page_size - 1); }

static void ensure_altstack(cg__pool *p) {
    stack_t old;
    if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE)) return;
    size_t sz = 64 * 1024;
    void *m = mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return;
    stack_t ss = {.ss_sp = m, .ss_size = sz, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) == 0)
        p->altstack = m;
    else
        munmap(m, sz);
}

CG_COLD static cg__pool *pool_new(void);

static inline cg__pool *pool_get(void) {
    cg__pool *p = pool;
    return CG_LIKELY(p) ? p : pool_new();
}

static cg__pool *pool_new(void) {
    cg__pool *p;
    pthread_once(&once, init_once);
    p = calloc(1, sizeof *p);
    if (!p) return NULL;
    ensure_altstack(p);
    pthread_mutex_lock(&reg_lock);
    p->reg_next = registry;
    p->reg_prev = &registry;
    if (registry) registry->reg_prev = &p->reg_next;
    registry = p;
    p->hot = &cg__stack_hot;
    atomic_store_explicit(&cg__stack_hot, NULL, memory_order_relaxed);
    pthread_mutex_unlock(&reg_lock);
    pool = p;
    return p;
}

static bucket *find_bucket(bucket *b, size_t size, int make) {
    for (int i = 0; i < NBUCKET; i++)
        if (b[i].size == size) return &b[i];
    if (make)
        for (int i = 0; i < NBUCKET; i++)
            if (!b[i].list) {
                b[i].size = size;
                return &b[i];
            }
    return NULL;
}

void cg__stack_drop_pages(cg__stack *s) {
#if CG_ASAN
    ASAN_UNPOISON_MEMORY_REGION(s->lo, (size_t)(s->hi - s->lo));
#endif
    madvise(s->lo, (size_t)(s->hi - s->lo), MADV_DONTNEED);
    if (s->kind == CG_GUARD_CANARY) *(uint64_t *)s->lo = CG__CANARY;
}

/* The stack's pages are released, its address range (and guard) kept. */
static void release_pages(cg__stack *s) {
    madvise(s->lo, (size_t)(s->hi - s->lo), MADV_DONTNEED);
    if (s->kind == CG_GUARD_CANARY) *(uint64_t *)s->lo = CG__CANARY;
}

static void unmap(cg__stack *s) {
#if CG_VALGRIND
    VALGRIND_STACK_DEREGISTER(s->vg_id);
#endif
    munmap(s->map, (size_t)(s->hi - s->map));
    atomic_fetch_sub(&n_mappings, 2);
    free(s);
}

/* Records a new slab. Returns 0 when out of memory. */
static int slab_add(char *m, size_t len) {
    int ok = 1;
    pthread_mutex_lock(&cold_lock);
    if (nslab == slab_cap) {
        size_t cap = slab_cap ? slab_cap * 2 : 16;
        slab *a = realloc(slabs, cap * sizeof *a);
        if (a) {
            slabs = a;
            slab_cap = cap;
        } else {
            ok = 0;
        }
    }
    if (ok) {
        size_t i = nslab;
        while (i > 0 && slabs[i - 1].lo > m) i--; /* new slabs come low: few steps */
        memmove(&slabs[i + 1], &slabs[i], (nslab - i) * sizeof *slabs);
        slabs[i] = (slab){m, m + len, NULL};
        nslab++;
        atomic_fetch_add(&n_mappings, 1);
    }
    pthread_mutex_unlock(&cold_lock);
    return ok;
}

/* The slab that a mapped byte a was carved from (under cold_lock). Slabs
 * are disjoint but for one placed in a hole of an older one, which has the
 * higher lo: the first slab at or below a that reaches past it is a's. */
static slab *slab_find(char *a) {
    size_t lo = 0, hi = nslab; /* count the slabs with lo <= a */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (slabs[mid].lo <= a)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo > 0)
        if (a < slabs[--lo].hi) return &slabs[lo];
    return NULL;
}

static cg__stack *unlink_hole(slab *sl, cg__stack *h) {
    cg__stack **pp = &sl->holes;
    while (*pp != h) pp = &(*pp)->next;
    *pp = h->next;
    return h;
}

/* Unmaps [a, b), mapped bytes of one slab, and records it (see "Slabs").
 * rec: a stack descriptor to keep as the record of a new hole, or NULL
 * (only for a range at the end of its slab, which needs none). Returns -1
 * if the kernel refused (the range stays as it was), 1 if rec was kept, 0
 * if not. Takes cold_lock: called without it. */
static int cut(char *a, char *b, cg__stack *rec) {
    int kept = 0;
    pthread_mutex_lock(&cold_lock);
    slab *sl = slab_find(a);
    CG_CHECK(sl && b <= sl->hi, "stack range outside its slab");
    if (munmap(a, (size_t)(b - a)) != 0) {
        pthread_mutex_unlock(&cold_lock);
        return -1;
    }
    cg__stack *l = NULL, *r = NULL; /* holes just below a, just above b */
    for (cg__stack *h = sl->holes; h; h = h->next) {
        if (h->hi == a) l = h;
        if (h->lo == b) r = h;
    }
    int left_gone = a == sl->lo || l, right_gone = b == sl->hi || r;
    /* A piece cut from the middle splits one in two; one that takes a whole
     * piece removes it. */
    if (left_gone && right_gone)
        atomic_fetch_sub(&n_mappings, 1);
    else if (!left_gone && !right_gone)
        atomic_fetch_add(&n_mappings, 1);
    if (a == sl->lo && b == sl->hi) { /* its last piece: forget the slab */
        size_t i = (size_t)(sl - slabs);
        memmove(&slabs[i], &slabs[i + 1], (nslab - i - 1) * sizeof *slabs);
        if (--nslab == 0) {
            free(slabs);
            slabs = NULL;
            slab_cap = 0;
        }
    } else if (a == sl->lo) {
        sl->lo = r ? r->hi : b;
        if (r) free(unlink_hole(sl, r));
        /* Its lo may now be above that of slabs the kernel placed in the
         * hole it had: move it up to keep the array sorted by lo. */
        for (size_t i = (size_t)(sl - slabs); i + 1 < nslab && slabs[i + 1].lo < slabs[i].lo; i++) {
            slab t = slabs[i];
            slabs[i] = slabs[i + 1];
            slabs[i + 1] = t;
        }
    } else if (b == sl->hi) {
        sl->hi = l ? l->lo : a;
        if (l) free(unlink_hole(sl, l));
    } else if (l && r) {
        l->hi = r->hi;
        free(unlink_hole(sl, r));
    } else if (l) {
        l->hi = b;
    } else if (r) {
        r->lo = a;
    } else {
        CG_CHECK(rec, "no record for a hole");
        rec->lo = a;
        rec->hi = b;
        rec->next = sl->holes;
        sl->holes = rec;
        kept = 1;
    }
    pthread_mutex_unlock(&cold_lock);
    return kept;
}

/* Gives the unused end of the thread's current slab back: the thread is
 * moving on to another slab, or ending. What was carved from the slab
 * stays mapped while its stacks are in use or pooled. (If the kernel
 * refuses, the end stays mapped, and counted.) */
static void drop_tail(cg__pool *p) {
    if (p->slab && p->slab < p->slab_end) cut(p->slab, p->slab_end, NULL);
    p->slab = p->slab_end = NULL;
}

/* A slab stack that no bucket can take: its range goes back to the system
 * and its descriptor is freed (or kept as the record of the hole). Returns
 * 0 if the kernel refused to unmap it. */
static int drop_slab_stack(cg__stack *s) {
    char *a = s->kind == CG_GUARD_PAGE ? s->lo - guard_size : s->lo;
#if CG_VALGRIND
    unsigned vg_id = s->vg_id;
#endif
    int r = cut(a, s->hi, s);
    if (r < 0) return 0;
#if CG_VALGRIND
    VALGRIND_STACK_DEREGISTER(vg_id);
#endif
    if (r == 0) free(s);
    return 1;
}

/* Whether a guard installed with MADV_GUARD_INSTALL really guards: qemu-user,
 * for one, accepts the call and ignores it. Reading the guard page through
 * a system call must fail with EFAULT (and, unlike touching it, raises no
 * signal). */
static int guard_holds(const char *guard) {
    int fds[2];
    if (pipe(fds) != 0) return 1; /* cannot tell: trust the kernel */
    ssize_t r = write(fds[1], guard, 1);
    int err = errno;
    close(fds[0]);
    close(fds[1]);
    return r < 0 && err == EFAULT;
}

/* Carves total bytes from this thread's slab, making a new slab if needed.
 * guarded says which kind of slab is wanted. */
static char *carve(cg__pool *p, size_t total, int guarded) {
    if (!p->slab || p->slab_guarded != guarded || (size_t)(p->slab_end - p->slab) < total) {
        size_t len = total * 16 > SLAB_MIN ? total * 16 : SLAB_MIN;
        char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) return NULL;
        if (!slab_add(m, len)) {
            munmap(m, len);
            return NULL;
        }
        drop_tail(p);
        p->slab = m;
        p->slab_end = m + len;
        p->slab_guarded = guarded;
    }
    char *r = p->slab;
    p->slab += total;
    return r;
}

CG_COLD static cg__stack *stack_new(cg__pool *p, size_t size, unsigned flags) {
    /* Descriptors and pools are bookkeeping that outlives any one allocator
     * setting (cg_set_allocator), so they come from malloc itself. */
    cg__stack *s = malloc(sizeof *s);
    if (!s) {
        errno = ENOMEM;
        return NULL;
    }
    memset(s, 0, sizeof *s);
    size_t total = size + guard_size;
    char *base = NULL;
    int nomem = 0; /* a mapping failed for want of memory or address space */
    if (madv_guard != 0) {
        base = carve(p, total, 1);
        nomem |= !base;
        if (base && madvise(base, guard_size, MADV_GUARD_INSTALL) == 0 && (madv_guard == 1 || guard_holds(base))) {
            madv_guard = 1;
            s->kind = CG_GUARD_PAGE;
        } else if (base) {
            /* Not supported: give the piece back and never try again. */
            madv_guard = 0;
            p->slab -= total;
            p->slab_guarded = 0; /* the slab serves canary stacks now */
            base = NULL;
        }
    }
    if (!base && atomic_load(&n_mappings) + 2 <= map_budget) {
        char *m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        nomem |= m == MAP_FAILED;
        if (m != MAP_FAILED) {
            if (mprotect(m, guard_size, PROT_NONE) == 0) {
                atomic_fetch_add(&n_mappings, 2);
                s->map = m; /* [m, m + total): ends at hi */
                s->kind = CG_GUARD_PAGE;
                base = m;
            } else {
                munmap(m, total);
            }
        }
    }
    if (!base) {
        if (flags & CG_OPT_REQUIRE_GUARD) {
            free(s);
            errno = nomem ? ENOMEM : EAGAIN;
            return NULL;
        }
        base = carve(p, size, 0);
        if (!base) {
            free(s);
            errno = ENOMEM;
            return NULL;
        }
        s->kind = CG_GUARD_CANARY;
        s->lo = base;
        s->hi = base + size;
        *(uint64_t *)s->lo = CG__CANARY;
    } else {
        s->lo = base + guard_size;
        s->hi = base + total;
    }
#if CG_VALGRIND
    s->vg_id = VALGRIND_STACK_REGISTER(s->lo, s->hi);
#endif
    return s;
}

/* A stack from the cold lists (released pages, given back by a thread). */
CG_COLD static cg__stack *from_cold(size_t size) {
    cg__stack *s = NULL;
    pthread_mutex_lock(&cold_lock);
    bucket *b = find_bucket(cold, size, 0);
    if (b && b->list) {
        s = b->list;
        b->list = s->next;
        atomic_fetch_sub(&n_cold, 1);
    } else if (stranded) {
        for (cg__stack **pp = &stranded; *pp; pp = &(*pp)->next)
            if ((size_t)((*pp)->hi - (*pp)->lo) == size) {
                s = *pp;
                *pp = s->next;
                atomic_fetch_sub(&n_cold, 1);
                break;
            }
    }
    pthread_mutex_unlock(&cold_lock);
    return s;
}

/* No suitable stack was kept: make one (s, if any, lacked a guard page
 * that the caller requires). */
CG_COLD static cg__stack *stack_fresh(cg__pool *p, cg__stack *s, size_t size, unsigned flags) {
    if (s) cg__stack_put(s);
    return stack_new(p, size, flags);
}

cg__stack *cg__stack_get_slow(size_t size, unsigned flags) {
    cg__pool *p = pool_get();
    if (!p) {
        errno = ENOMEM;
        return NULL;
    }
    size = round_page(size);
    cg__stack *s;
    bucket *b = find_bucket(p->warm, size, 0);
    if (CG_LIKELY(b && b->list)) {
        s = b->list;
        b->list = s->next;
        p->nwarm--;
        BUMP(p->n.warm, -1);
    } else {
        s = from_cold(size);
    }
    if (CG_UNLIKELY(!s || ((flags & CG_OPT_REQUIRE_GUARD) && s->kind != CG_GUARD_PAGE))) {
        s = stack_fresh(p, s, size, flags);
        if (!s) return NULL;
    }
    s->next = NULL;
    if (s->kind == CG_GUARD_PAGE)
        BUMP(p->n.page, 1);
    else
        BUMP(p->n.canary, 1);
    return s;
}

/* Into the cold pool, pages released; stacks with mappings of their own
 * are unmapped instead, to give the mapping back. A slab stack whose size
 * finds no cold bucket (more distinct sizes than buckets) has its range
 * cut out of its slab, so that memory, address space and mappings stay
 * bounded whatever sizes a program uses; only if the kernel refuses that
 * (at the mapping limit) is it kept, on the stranded list. */
CG_COLD static void make_cold(cg__stack *s) {
    if (s->map) {
        unmap(s);
        return;
    }
    release_pages(s);
    pthread_mutex_lock(&cold_lock);
    bucket *b = find_bucket(cold, (size_t)(s->hi - s->lo), 1);
    if (b) {
        s->next = b->list;
        b->list = s;
        atomic_fetch_add(&n_cold, 1);
        pthread_mutex_unlock(&cold_lock);
        return;
    }
    pthread_mutex_unlock(&cold_lock);
    if (drop_slab_stack(s)) return;
    pthread_mutex_lock(&cold_lock);
    s->next = stranded;
    stranded = s;
    atomic_fetch_add(&n_cold, 1);
    pthread_mutex_unlock(&cold_lock);
}

void cg__stack_put_slow(cg__stack *s) {
#if CG_ASAN
    /* Frames that were abandoned on it left poisoned redzones. */
    ASAN_UNPOISON_MEMORY_REGION(s->lo, (size_t)(s->hi - s->lo));
#endif
    cg__pool *p = pool;
    if (p && s->kind == CG_GUARD_PAGE && !atomic_load_explicit(&cg__stack_hot, memory_order_relaxed)) {
        s->next = NULL;
        atomic_store_explicit(&cg__stack_hot, s, memory_order_relaxed);
        return;
    }
    if (!p) p = pool_get();
    if (!p) { /* no memory for a pool: drop the stack's pages at least */
        make_cold(s);
        return;
    }
    if (s->kind == CG_GUARD_PAGE)
        BUMP(p->n.page, -1);
    else
        BUMP(p->n.canary, -1);
    bucket *b = find_bucket(p->warm, (size_t)(s->hi - s->lo), 1);
    if (!b || p->nwarm >= WARM_MAX) {
        make_cold(s);
        return;
    }
    s->next = b->list;
    b->list = s;
    p->nwarm++;
    BUMP(p->n.warm, 1);
}

static void trim(cg__pool *p) {
    cg__stack *h = atomic_exchange_explicit(p->hot, NULL, memory_order_relaxed);
    if (h && h != &cg__stack_unready) {
        BUMP(p->n.page, -1);
        make_cold(h);
    }
    for (int i = 0; i < NBUCKET; i++) {
        cg__stack *s = p->warm[i].list;
        p->warm[i].list = NULL;
        while (s) {
            cg__stack *next = s->next;
            make_cold(s);
            s = next;
        }
    }
    p->nwarm = 0;
    atomic_store_explicit(&p->n.warm, 0, memory_order_relaxed);
}

static void thread_exit(void) {
    cg__pool *p = pool;
    if (!p) return;
    trim(p);
    atomic_store_explicit(&cg__stack_hot, &cg__stack_unready, memory_order_relaxed); /* no pool to back it */
    pthread_mutex_lock(&reg_lock);
    *p->reg_prev = p->reg_next;
    if (p->reg_next) p->reg_next->reg_prev = p->reg_prev;
    BUMP(retired.page, atomic_load(&p->n.page));
    BUMP(retired.canary, atomic_load(&p->n.canary));
    pthread_mutex_unlock(&reg_lock);
    if (p->altstack) {
        stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        sigaltstack(&ss, NULL);
        munmap(p->altstack, 64 * 1024);
    }
    /* The unused end of the current slab goes back; what was carved from
     * it stays while its stacks are in use or pooled (in any thread). */
    drop_tail(p);
    free(p);
    pool = NULL;
}

static void trim_hook(void) {
    if (pool) trim(pool);
}

static cg__thread_hooks hooks = {.order = CG__HOOKS_STACK, .exit = thread_exit, .trim = trim_hook};
__attribute__((constructor)) static void register_hooks(void) { cg__thread_hooks_add(&hooks); }

void cg_get_stack_stats(cg_stack_stats *st) {
    if (!st) return;
    long page, canary, warm = 0;
    pthread_mutex_lock(&reg_lock);
    page = atomic_load(&retired.page);
    canary = atomic_load(&retired.canary);
    for (cg__pool *p = registry; p; p = p->reg_next) {
        page += atomic_load_explicit(&p->n.page, memory_order_relaxed);
        canary += atomic_load_explicit(&p->n.canary, memory_order_relaxed);
        warm += atomic_load_explicit(&p->n.warm, memory_order_relaxed);
        cg__stack *h = atomic_load_explicit(p->hot, memory_order_relaxed);
        if (h && h != &cg__stack_unready) { /* pooled, not live */
            page--;
            warm++;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    st->guard_pages = page > 0 ? (size_t)page : 0;
    st->canaries = canary > 0 ? (size_t)canary : 0;
    st->live = st->guard_pages + st->canaries;
    st->pooled = (size_t)warm + (size_t)atomic_load(&n_cold);
    st->mappings = atomic_load(&n_mappings);
}

int cg__stack_guard_hit(const cg__stack *s, const void *addr) {
    const char *a = addr;
    return s->kind == CG_GUARD_PAGE && a < s->lo && a >= s->lo - guard_size;
}

_Static_assert(sizeof(void *) != 8 || sizeof(cg__stack) <= 40, "a stack record outgrew its 48-byte malloc chunk");
