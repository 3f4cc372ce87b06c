/* test_compact.c: compact mode (CG_OPT_COMPACT) and its resident limit.
 *
 * The rest of the suite checks that compact mode changes no semantics (make
 * check-compact runs all of it with every generator compact and one
 * resident). These cases check what compact mode itself promises: a swapped
 * out generator's frames come back intact, its pages are really given back
 * (mincore), running generators are never swapped out, and
 * cg_compact_resident sets how many stay resident. In the ucontext build
 * compact mode is ignored: the semantic checks still run, the residency
 * checks are skipped. */
#define _GNU_SOURCE
#include "check.h"

#include <sys/mman.h>
#include <unistd.h>

static long page_size(void) { return sysconf(_SC_PAGESIZE); }

/* Whether the page holding p is resident. */
static int resident(const void *p) {
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page_size() - 1);
    unsigned char v = 0;
    CHECK_EQ(mincore((void *)a, (size_t)page_size(), &v), 0);
    return v & 1;
}

/* Whether MADV_DONTNEED gives pages back here (qemu-user may ignore it):
 * the residency checks only mean something if it does. */
static int drops_pages(void) {
    long ps = page_size();
    char *m = mmap(NULL, (size_t)ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    m[0] = 1;
    madvise(m, (size_t)ps, MADV_DONTNEED);
    int dropped = !resident(m) && m[0] == 0;
    munmap(m, (size_t)ps);
    return dropped;
}

static const cg_opts compact = {0, "compact", CG_OPT_COMPACT};

/* Yields the address of its frame first, then counts: each value sent in
 * is added to a counter, and a 3 KiB array filled from its argument is
 * checked at every resume, so a frame that came back wrong raises. */
static void *keeper(cg_gen *g, void *arg) {
    unsigned char seed = (unsigned char)(uintptr_t)arg;
    volatile unsigned char pad[3072];
    for (size_t i = 0; i < sizeof pad; i++) pad[i] = (unsigned char)(seed + i);
    intptr_t count = 0;
    cg_yield(g, __builtin_frame_address(0));
    for (;;) {
        count += (intptr_t)cg_yield(g, (void *)count);
        for (size_t i = 0; i < sizeof pad; i++)
            if (pad[i] != (unsigned char)(seed + i)) CG_RAISE(&cg_RuntimeError, "frame corrupted by a swap");
    }
}

#define NGEN 6

TEST(compact_swap_keeps_frames) {
    unsigned old = cg_compact_resident(2);
    cg_gen *g[NGEN];
    void *frame[NGEN];
    for (int i = 0; i < NGEN; i++) {
        g[i] = cg_new(keeper, (void *)(uintptr_t)(i * 37), &compact);
        CHECK(g[i]);
        CHECK_EQ(cg_next(g[i], &frame[i], NULL), CG_YIELDED);
        CHECK_EQ(cg_next(g[i], NULL, NULL), CG_YIELDED);
    }
    int is_compact = cg_gen_compact(g[0]);
    if (is_compact) {
        CHECK_EQ(cg_gen_stack_size(g[0]), CG_STACK_COMPACT_DEFAULT);
        if (drops_pages()) {
            /* The two resumed last keep their pages; the others gave theirs back. */
            for (int i = 0; i < NGEN; i++) CHECK_EQ(resident(frame[i]), i >= NGEN - 2);
        }
    }
    /* Round robin: every resume swaps one in and one out. */
    for (int round = 1; round <= 10; round++)
        for (int i = 0; i < NGEN; i++) {
            void *v = NULL;
            cg_exc *e = NULL;
            CHECK_EQ(cg_send(g[i], (void *)(intptr_t)i, &v, &e), CG_YIELDED);
            CHECK_EQ((intptr_t)v, (intptr_t)round * i);
            if (is_compact && drops_pages()) CHECK(resident(frame[i]));
        }
    for (int i = 0; i < NGEN; i++) {
        CHECK_EQ(cg_close(g[i], NULL, NULL), CG_RETURNED);
        cg_free(g[i]);
    }
    CHECK_EQ(cg_compact_resident(old), 2);
}

TEST(compact_resident_limit) {
    unsigned def = cg_compact_resident(0);
    CHECK(def >= 1);
    CHECK_EQ(cg_compact_resident(0), def); /* 0 only asks */
    CHECK_EQ(cg_compact_resident(5), def);
    CHECK_EQ(cg_compact_resident(0), 5);
    cg_gen *g[NGEN];
    void *frame[NGEN];
    for (int i = 0; i < NGEN; i++) {
        g[i] = cg_new(keeper, (void *)(uintptr_t)i, &compact);
        CHECK(g[i]);
        CHECK_EQ(cg_next(g[i], &frame[i], NULL), CG_YIELDED);
    }
    int check = cg_gen_compact(g[0]) && drops_pages();
    if (check) {
        CHECK(!resident(frame[0]));
        for (int i = 1; i < NGEN; i++) CHECK(resident(frame[i]));
    }
    /* Lowering the limit swaps the excess out at once, oldest first. */
    CHECK_EQ(cg_compact_resident(1), 5);
    if (check)
        for (int i = 0; i < NGEN; i++) CHECK_EQ(resident(frame[i]), i == NGEN - 1);
    /* The swapped out ones still work. */
    for (int i = 0; i < NGEN; i++) {
        void *v = NULL;
        CHECK_EQ(cg_send(g[i], NULL, &v, NULL), CG_YIELDED);
        CHECK_EQ(cg_send(g[i], (void *)(intptr_t)3, &v, NULL), CG_YIELDED);
        CHECK_EQ((intptr_t)v, 3);
        cg_free(g[i]);
    }
    CHECK_EQ(cg_compact_resident(def), 1);
}

/* A running generator is never swapped out, so pointers into its stack
 * stay good while it runs: here an outer generator hands the address of
 * its local to an inner one that writes through it, and a chain of
 * delegators passes values through, all with one generator resident. */
static void *writer(cg_gen *g, void *arg) {
    long *target = arg;
    for (;;) *target += (long)(intptr_t)cg_yield(g, NULL);
    return NULL; /* not reached */
}

static void *outer(cg_gen *g, void *arg) {
    (void)arg;
    long local = 0;
    cg_gen *in = cg_new(writer, &local, &compact);
    CHECK(in);
    CHECK_EQ(cg_next(in, NULL, NULL), CG_YIELDED);
    for (int i = 1; i <= 4; i++) {
        CHECK_EQ(cg_send(in, (void *)(intptr_t)i, NULL, NULL), CG_YIELDED);
        cg_yield(g, (void *)local);
    }
    cg_free(in);
    return (void *)local;
}

static void *chain(cg_gen *g, void *arg) {
    intptr_t k = (intptr_t)arg;
    if (k == 0) {
        void *v = NULL;
        for (;;) v = cg_yield(g, v);
    }
    return cg_yield_from_new(g, chain, (void *)(k - 1), &compact);
}

TEST(compact_running_stays_resident) {
    unsigned old = cg_compact_resident(1);
    cg_gen *o = cg_new(outer, NULL, &compact);
    CHECK(o);
    long expect[] = {1, 3, 6, 10};
    void *v = NULL;
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(cg_next(o, &v, NULL), CG_YIELDED);
        CHECK_EQ((intptr_t)v, expect[i]);
    }
    CHECK_EQ(cg_next(o, &v, NULL), CG_RETURNED);
    CHECK_EQ((intptr_t)v, 10);
    cg_free(o);

    cg_gen *c = cg_new(chain, (void *)(intptr_t)3, &compact);
    cg_gen *other = cg_new(keeper, NULL, &compact); /* competes for the one place */
    CHECK(c && other);
    CHECK_EQ(cg_next(c, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(other, NULL, NULL), CG_YIELDED);
    for (intptr_t i = 1; i <= 5; i++) {
        CHECK_EQ(cg_send(c, (void *)i, &v, NULL), CG_YIELDED);
        CHECK_EQ((intptr_t)v, i);
        CHECK_EQ(cg_send(other, NULL, NULL, NULL), CG_YIELDED);
    }
    CHECK_EQ(cg_close(c, NULL, NULL), CG_RETURNED);
    cg_free(c);
    cg_free(other);
    CHECK_EQ(cg_compact_resident(old), 1);
}

/* throw and close reach a swapped out generator's handlers: its exception
 * records are on the stack that has to come back first. */
static int finally_ran, deferred_ran;
static void set_flag(void *p) { *(int *)p = 1; }

static void *guarded(cg_gen *g, void *arg) {
    (void)arg;
    volatile intptr_t caught = 0;
    CG_TRY {
        CG_DEFER(set_flag, &deferred_ran);
        for (;;) CG_TRY {
            cg_yield(g, (void *)caught);
        } CG_EXCEPT(&cg_ValueError, e) {
            (void)e;
            caught++;
        } CG_END;
    } CG_FINALLY {
        finally_ran = 1;
    } CG_END;
    return NULL;
}

TEST(compact_throw_close_swapped) {
    unsigned old = cg_compact_resident(1);
    cg_gen *g = cg_new(guarded, NULL, &compact);
    cg_gen *other = cg_new(keeper, NULL, &compact);
    CHECK(g && other);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    void *v = NULL;
    for (intptr_t i = 1; i <= 3; i++) {
        CHECK_EQ(cg_next(other, NULL, NULL), CG_YIELDED); /* swaps g out */
        CHECK_EQ(cg_throw(g, cg_exc_new(&cg_ValueError, "x"), &v, NULL), CG_YIELDED);
        CHECK_EQ((intptr_t)v, i);
    }
    CHECK_EQ(cg_next(other, NULL, NULL), CG_YIELDED);
    finally_ran = deferred_ran = 0;
    CHECK_EQ(cg_close(g, NULL, NULL), CG_RETURNED);
    CHECK_EQ(finally_ran, 1);
    CHECK_EQ(deferred_ran, 1);
    CHECK_EQ(cg_gen_state(g), CG_GEN_CLOSED);
    /* Freed while swapped out: closing runs its cleanup too. */
    CHECK_EQ(cg_next(other, NULL, NULL), CG_YIELDED);
    cg_gen *h = cg_new(guarded, NULL, &compact);
    CHECK(h);
    CHECK_EQ(cg_next(h, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(other, NULL, NULL), CG_YIELDED);
    finally_ran = deferred_ran = 0;
    cg_free(h);
    CHECK_EQ(finally_ran, 1);
    CHECK_EQ(deferred_ran, 1);
    cg_free(g);
    cg_free(other);
    CHECK_EQ(cg_compact_resident(old), 1);
}

/* The resident generators are kept oldest first in a ring of slots that
 * grows and closes its gaps (gen_compact.c): with hundreds resident, some
 * freed from the middle and the ring moved meanwhile, lowering the limit
 * still swaps out exactly the oldest, and every generator still works. */
#define NRING 400
#define RING_LIMIT 300

TEST(compact_resident_order_with_holes) {
    unsigned old = cg_compact_resident(RING_LIMIT);
    static cg_gen *g[NRING];
    static void *frame[NRING];
    for (int i = 0; i < NRING; i++) {
        g[i] = cg_new(keeper, (void *)(uintptr_t)i, &compact);
        CHECK(g[i]);
        CHECK_EQ(cg_next(g[i], &frame[i], NULL), CG_YIELDED);
    }
    /* Resident now: the last RING_LIMIT made. Free every third of them,
     * and resume the first 40 (swapped out), which makes them the newest
     * and evicts as many of the oldest resident ones. */
    for (int i = NRING - RING_LIMIT; i < NRING; i += 3) {
        cg_free(g[i]);
        g[i] = NULL;
    }
    for (int i = 0; i < 40; i++) CHECK_EQ(cg_next(g[i], NULL, NULL), CG_YIELDED);
    /* Down to 30: the 30 resumed last stay, everything else goes. */
    CHECK_EQ(cg_compact_resident(30), RING_LIMIT);
    if (cg_gen_compact(g[0]) && drops_pages())
        for (int i = 0; i < NRING; i++)
            if (g[i]) CHECK_EQ(resident(frame[i]), i >= 10 && i < 40);
    for (int i = 0; i < NRING; i++) {
        if (!g[i]) continue;
        void *v = NULL;
        intptr_t before = i < 40 ? 0 : -1; /* the first 40 were resumed once more */
        if (before < 0) CHECK_EQ(cg_next(g[i], NULL, NULL), CG_YIELDED);
        CHECK_EQ(cg_send(g[i], (void *)(intptr_t)i, &v, NULL), CG_YIELDED);
        CHECK_EQ((intptr_t)v, (intptr_t)i);
        cg_free(g[i]);
    }
    CHECK_EQ(cg_compact_resident(old), 30);
}

static const check_case cases[] = {
    CASE(compact_swap_keeps_frames),
    CASE(compact_resident_limit),
    CASE(compact_running_stays_resident),
    CASE(compact_throw_close_swapped),
    CASE(compact_resident_order_with_holes),
};
CHECK_MAIN(cases)
