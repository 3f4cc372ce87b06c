/* oom_hook.h: the failing allocator of the out-of-memory tests
 * (test_oom.c for the generator core, test_loop_oom.c for the loop).
 *
 * Installed with cg_set_allocator, it fails the Nth allocation made after
 * it is armed: once (the allocation after it succeeds again) or for good
 * (every allocation from the Nth on fails), and counts the blocks that are
 * out, so that a leak shows. Blocks carry a header that the hook checks on
 * free, so a double free or a free of a block the hook never made fails
 * loudly. Include it after check.h, in one file of a test binary.
 *
 * Only the thread that armed it sees failures (the loop's thread, in the
 * loop's tests): a worker thread's allocations (a pool's worker posting a
 * job back with call_soon_threadsafe) succeed, since a failure there is
 * retried until memory comes back, which it never would in a run failing
 * every allocation from the Nth on. Any thread may allocate and free
 * through it: the block counts are atomic (read them with hook_live()
 * while other threads may still free). */
#ifndef COGEN_TEST_OOM_HOOK_H
#define COGEN_TEST_OOM_HOOK_H

#include "check.h"

#include <stddef.h>
#include <time.h>

#define LIVE_MAGIC 0x6c6976652d626c6bull /* "live-blk" */
#define DEAD_MAGIC 0x646561642d626c6bull /* "dead-blk" */

typedef union header {
    struct {
        unsigned long long magic;
        size_t size;
    } h;
    max_align_t align;
} header;

static struct {
    long fail_at;    /* 0: disarmed; else the allocation to fail */
    int persistent;  /* fail every allocation from fail_at on */
    long count;      /* allocations since arming */
    long injected;   /* failures injected since arming */
    long live;       /* blocks out */
    long allocs, frees;
} hk;
static _Thread_local int hk_armed_here; /* this thread armed it */

static inline long hook_live(void) { return __atomic_load_n(&hk.live, __ATOMIC_ACQUIRE); }

static void *hook_alloc(size_t n, void *ud) {
    CHECK_PTR(ud, &hk);
    if (hk_armed_here && hk.fail_at) {
        hk.count++;
        if (hk.count == hk.fail_at || (hk.persistent && hk.count > hk.fail_at)) {
            hk.injected++;
            return NULL;
        }
    }
    header *b = malloc(sizeof *b + n);
    if (!b) return NULL;
    b->h.magic = LIVE_MAGIC;
    b->h.size = n;
    __atomic_add_fetch(&hk.live, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&hk.allocs, 1, __ATOMIC_RELAXED);
    return b + 1;
}

static void hook_free(void *p, void *ud) {
    CHECK_PTR(ud, &hk);
    CHECK(p != NULL);
    header *b = (header *)p - 1;
    if (b->h.magic != LIVE_MAGIC) {
        fprintf(stderr, "freeing a block the hook does not own (magic %llx)\n", b->h.magic);
        abort();
    }
    b->h.magic = DEAD_MAGIC;
    __atomic_sub_fetch(&hk.live, 1, __ATOMIC_RELEASE);
    __atomic_add_fetch(&hk.frees, 1, __ATOMIC_RELAXED);
    free(b);
}

static void arm(long n, int persistent) {
    hk.fail_at = n;
    hk.persistent = persistent;
    hk.count = 0;
    hk.injected = 0;
    hk_armed_here = 1;
}

static void disarm(void) {
    hk.fail_at = 0;
    hk_armed_here = 0;
}

/* Blocks out, once what other threads still hold has come back: a pool's
 * workers end on their own after their loop has gone (detached), and free
 * what they held as they do; waits up to 5 s for the count to reach 0. */
static inline long hook_live_settled(void) {
    for (int i = 0; i < 500 && hook_live() != 0; i++) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    return hook_live();
}

#endif
