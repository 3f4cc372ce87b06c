/* test_xthread.c: freeing a generator from a thread that does not own it.
 * The owner finalizes it (its cleanups run in the owner's thread) at its
 * next call into cogen; once the owner has ended, whoever frees it does. */
#define _POSIX_C_SOURCE 200809L
#include "check.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_t cleanup_thread;
static int cleanups;

static void note_cleanup(void *arg) {
    (void)arg;
    cleanup_thread = pthread_self();
    cleanups++;
}

static void *holds(cg_gen *g, void *arg) {
    (void)arg;
    CG_DEFER(note_cleanup, NULL);
    cg_yield(g, NULL);
    return NULL;
}

static void *free_it(void *g) {
    cg_free(g);
    return NULL;
}

/* Freed from another thread: nothing happens there; the owner finalizes it
 * at its next call into cogen, in its own thread. */
TEST(xthread_free_goes_to_owner) {
    cleanups = 0;
    cg_gen *g = cg_new(holds, NULL, NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, free_it, g), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(cleanups, 0);
    cg_trim(); /* any call into cogen of the owner would do */
    CHECK_EQ(cleanups, 1);
    CHECK(pthread_equal(cleanup_thread, pthread_self()));
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    CHECK_EQ(st.live, 0);
}

static cg_gen *made;

static void *make_and_end(void *arg) {
    (void)arg;
    made = cg_new(holds, NULL, NULL);
    CHECK_EQ(cg_next(made, NULL, NULL), CG_YIELDED);
    return NULL; /* the thread ends with its generator suspended */
}

/* The owner ended with the generator alive: it cannot be resumed any more,
 * and the thread that frees it finalizes it at once. */
TEST(xthread_orphan) {
    cleanups = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, make_and_end, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(cg_gen_state(made), CG_GEN_SUSPENDED);
    cg_exc *e = NULL;
    CHECK_EQ(cg_next(made, NULL, &e), CG_RAISED);
    CHECK_EXC(e, "RuntimeError('generator belongs to another thread')");
    cg_exc_unref(e);
    CHECK_EQ(cleanups, 0);
    cg_free(made);
    CHECK_EQ(cleanups, 1);
    CHECK(pthread_equal(cleanup_thread, pthread_self()));
}

/* Freed from another thread while its owner is alive but then ends without
 * calling cogen again: the owner finalizes it as it ends. */
static void *owner_waits(void *arg) {
    pthread_barrier_t *b = arg;
    cg_gen *g = cg_new(holds, NULL, NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    made = g;
    pthread_barrier_wait(b); /* main frees it now */
    pthread_barrier_wait(b);
    return NULL; /* ending finalizes it here */
}

TEST(xthread_owner_ends_with_inbox) {
    cleanups = 0;
    pthread_barrier_t b;
    pthread_barrier_init(&b, NULL, 2);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, owner_waits, &b), 0);
    pthread_barrier_wait(&b);
    cg_free(made);
    CHECK_EQ(cleanups, 0);
    pthread_barrier_wait(&b);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(cleanups, 1);
    CHECK(!pthread_equal(cleanup_thread, pthread_self()));
    pthread_barrier_destroy(&b);
}

/* Compact orphans: the owner ends while one of its compact generators is
 * swapped out (only one may stay resident, and the other ran last). The
 * thread that adopts it must copy its stack back before closing it. */
static cg_gen *compact_made[2];

static void *make_compact_and_end(void *arg) {
    (void)arg;
    cg_compact_resident(1);
    cg_opts o = {0, "orphan", CG_OPT_COMPACT};
    for (int i = 0; i < 2; i++) {
        compact_made[i] = cg_new(holds, NULL, &o);
        CHECK(compact_made[i] != NULL);
        CHECK_EQ(cg_next(compact_made[i], NULL, NULL), CG_YIELDED);
    }
    return NULL;
}

TEST(xthread_orphan_compact_swapped) {
    cleanups = 0;
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, make_compact_and_end, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
    for (int i = 0; i < 2; i++) CHECK_EQ(cg_gen_state(compact_made[i]), CG_GEN_SUSPENDED);
    cg_free(compact_made[0]); /* swapped out when its thread ended */
    CHECK_EQ(cleanups, 1);
    cg_free(compact_made[1]);
    CHECK_EQ(cleanups, 2);
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    CHECK_EQ(st.live, 0);
}

/* A thread frees its generator from its own thread-specific destructor
 * (a per-thread cache, say). cogen's destructor may have run first and
 * orphaned it; the cg_free adopts it, which sets the thread up again: the
 * pool and caches made then are given back in a later round, so threads
 * ending this way leak nothing and leave no stacks behind. */
static pthread_key_t user_key;

static void user_key_dtor(void *g) { cg_free(g); }

static void *frees_in_key_dtor(void *arg) {
    (void)arg;
    cg_gen *g = cg_new(holds, NULL, NULL); /* cogen's key exists from here on */
    CHECK(g != NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(pthread_setspecific(user_key, g), 0);
    return NULL;
}

static void run_thread(void *(*fn)(void *)) {
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, fn, NULL), 0);
    CHECK_EQ(pthread_join(t, NULL), 0);
}

TEST(xthread_free_in_key_destructor) {
    cleanups = 0;
    cg_free(cg_new(holds, NULL, NULL)); /* cogen's key is made now, before the user's */
    CHECK_EQ(pthread_key_create(&user_key, user_key_dtor), 0);
    run_thread(frees_in_key_dtor);
    CHECK_EQ(cleanups, 1);
    cg_stack_stats before, after;
    cg_get_stack_stats(&before);
    for (int i = 0; i < 4; i++) run_thread(frees_in_key_dtor);
    CHECK_EQ(cleanups, 5);
    cg_get_stack_stats(&after);
    CHECK_EQ(after.live, 0);
    CHECK_EQ(after.pooled, before.pooled);
    CHECK_EQ(after.mappings, before.mappings);
    pthread_key_delete(user_key);
}

/* cg_set_allocator while another thread holds cached handles and
 * exception slots of the old allocator: that thread gives them back to the
 * old allocator before it uses its caches again, or when it ends, never to
 * the new one. Allocator A puts a header before each block, so a block of
 * A given to free() would crash. */
static long a_allocs, a_frees;

static void *a_alloc(size_t n, void *ud) {
    (void)ud;
    char *p = malloc(n + 64);
    if (!p) return NULL;
    __atomic_fetch_add(&a_allocs, 1, __ATOMIC_RELAXED);
    return p + 64;
}

static void a_free(void *p, void *ud) {
    (void)ud;
    __atomic_fetch_add(&a_frees, 1, __ATOMIC_RELAXED);
    free((char *)p - 64);
}

static pthread_barrier_t alloc_bar;

static void make_and_drop(void) {
    cg_gen *g = cg_new(holds, NULL, NULL);
    CHECK(g != NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    cg_free(g); /* its handle goes to this thread's cache */
    cg_exc_unref(cg_exc_new(&cg_ValueError, "x")); /* an exception slot too */
}

static void *uses_both_allocators(void *arg) {
    (void)arg;
    make_and_drop();                  /* under A */
    pthread_barrier_wait(&alloc_bar); /* main switches back to malloc */
    pthread_barrier_wait(&alloc_bar);
    make_and_drop();                  /* under malloc: A's blocks go back to A */
    return NULL;
}

TEST(xthread_allocator_switch) {
    cleanups = 0;
    cg_set_allocator(a_alloc, a_free, NULL);
    CHECK_EQ(pthread_barrier_init(&alloc_bar, NULL, 2), 0);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, uses_both_allocators, NULL), 0);
    pthread_barrier_wait(&alloc_bar);
    cg_set_allocator(NULL, NULL, NULL); /* nothing made with A is alive */
    long made = __atomic_load_n(&a_allocs, __ATOMIC_RELAXED);
    CHECK(made >= 2);
    pthread_barrier_wait(&alloc_bar);
    CHECK_EQ(pthread_join(t, NULL), 0);
    CHECK_EQ(cleanups, 2);
    CHECK_EQ(a_allocs, made); /* A made nothing after the switch */
    CHECK_EQ(a_frees, a_allocs);
    pthread_barrier_destroy(&alloc_bar);
}

static const check_case cases[] = {CASE(xthread_free_goes_to_owner), CASE(xthread_orphan),
                                   CASE(xthread_owner_ends_with_inbox), CASE(xthread_orphan_compact_swapped),
                                   CASE(xthread_free_in_key_destructor), CASE(xthread_allocator_switch)};
CHECK_MAIN(cases)
