/* test_stack_sizes.c: any number of distinct stack sizes costs bounded
 * memory, address space and mappings.
 *
 * Freed stacks are pooled by size in a few buckets (src/core/stack.c); a stack
 * whose size finds no bucket must go back to the system, not stay reserved
 * with its descriptor lost. Each case makes generators with 60 distinct
 * stack sizes, round after round, and checks after every round (all freed,
 * cg_trim) that the process's address space (VmSize), its mapping count
 * (/proc/self/maps) and the library's stack statistics stay where they were
 * after the first rounds, and that every generator had a whole, private,
 * working stack. A library that leaks the ranges grows by the sum of the
 * sizes every round (tens of MiB here), and its own mapping count grows by
 * one per slab: both checks fail within a few rounds (/proc/self/maps may
 * not show it: the kernel merges neighbouring slabs into one mapping). The
 * leaked descriptors themselves are LeakSanitizer's to find (make
 * check-asan).
 *
 * Cases: stack_sizes_rounds (the guard mode the environment gives, madvise
 * guard pages by default), stack_sizes_mprotect and stack_sizes_canary (in
 * a child with COGEN_STACK_GUARD set: the library reads it once, at its
 * first stack, so they come first in the table), stack_sizes_threads
 * (threads that end, two at a time, with sizes of their own).
 */
#define _GNU_SOURCE
#include "check.h"
#include "under_tools.h"

#include <alloca.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

/* Built to run under an emulator (qemu-user): /proc/self/status then
 * describes the emulator's process, whose VmSize grows on its own. */
#ifndef COGEN_TEST_EMULATED
#define COGEN_TEST_EMULATED 0
#endif

#define NSIZES 60
#define ROUNDS 12
/* Rounds before the baseline is taken: the pools and the allocators of
 * the process (and of a sanitizer or valgrind) settle first. */
#define WARMUP 3
/* How far a later round may go past the baseline: new slabs are 32 MiB,
 * and one may be made before the last one is given back. A leak of the
 * ranges grows by about 36 MiB a round here. */
#define VM_SLACK_KIB (64L * 1024)
#define MAPS_SLACK 8
#define STATS_MAPPINGS_SLACK 4

/* The sizes asked for: 256 KiB and up in steps of 12 KiB. */
static size_t size_of(int i, int shift) { return (size_t)256 * 1024 + (size_t)(i * 3 + shift) * 4096; }
static size_t whole_pages(size_t n) {
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    return (n + ps - 1) / ps * ps;
}

static long vm_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    CHECK(f != NULL);
    char line[256];
    long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmSize:", 7) == 0) v = strtol(line + 7, NULL, 10);
    fclose(f);
    CHECK(v > 0);
    return v;
}

static long map_count(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    CHECK(f != NULL);
    long n = 0;
    int c;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

/* ---------------------------------------------------------------------
 * The generators: each fills the usable part of its stack, leaving room
 * for the frames below it, with words that name it, yields, and checks
 * them when resumed (after all the others have filled theirs): a stack
 * that is not all mapped faults, stacks that overlap fail the check.
 * A compact generator (COGEN_COMPACT=1 runs the suite that way) fills
 * 8 KiB only: its used stack is copied to a malloc'd buffer at every
 * swap, and ASan's quarantine would keep hundreds of MiB of them mapped,
 * which VmSize would count.
 * ------------------------------------------------------------------ */

#define MARGIN (24u * 1024u) /* frames of the body, cogen and a sanitizer */
#define STRIDE 1024u         /* one word per KiB: every page is touched */

static uint64_t mark(uintptr_t id, size_t i) { return ((uint64_t)id << 32) ^ (uint64_t)i ^ 0x5a5a5a5a5a5a5a5aull; }

static void *fill_body(cg_gen *g, void *arg) {
    uintptr_t id = (uintptr_t)arg;
    size_t n = cg_gen_compact(g) ? 8192 : cg_gen_stack_size(g) - MARGIN;
    volatile unsigned char *buf = alloca(n);
    for (size_t i = 0; i + sizeof(uint64_t) <= n; i += STRIDE) *(volatile uint64_t *)(buf + i) = mark(id, i);
    intptr_t sent = (intptr_t)cg_yield(g, (void *)id);
    for (size_t i = 0; i + sizeof(uint64_t) <= n; i += STRIDE)
        if (*(volatile uint64_t *)(buf + i) != mark(id, i)) CG_RAISE(&cg_RuntimeError, "stack overwritten");
    return (void *)(sent + 1);
}

typedef struct sample {
    long vm_kib, maps;
    cg_stack_stats st;
} sample;

/* One round: NSIZES generators live at once, one per size (shift moves
 * the sizes), all run, checked and freed. expect: the guard kind every
 * stack must have, or 0 for any. */
static void one_round(int shift, int expect, sample *out) {
    cg_gen *g[NSIZES];
    for (int i = 0; i < NSIZES; i++) {
        cg_opts o = {size_of(i, shift), "sized", 0};
        g[i] = cg_new(fill_body, (void *)(uintptr_t)(i + 1), &o);
        CHECK(g[i] != NULL);
        CHECK_EQ(cg_gen_stack_size(g[i]), whole_pages(size_of(i, shift)));
        if (expect) CHECK_EQ(cg_gen_guard(g[i]), expect);
        void *out_v = NULL;
        CHECK_EQ(cg_next(g[i], &out_v, NULL), CG_YIELDED);
        CHECK_EQ((uintptr_t)out_v, (uintptr_t)(i + 1));
    }
    cg_stack_stats live;
    cg_get_stack_stats(&live);
    CHECK(live.live >= NSIZES);
    CHECK_EQ(live.guard_pages + live.canaries, live.live);
    if (expect == CG_GUARD_CANARY) CHECK(live.canaries >= NSIZES);
    for (int i = 0; i < NSIZES; i++) {
        void *ret = NULL;
        cg_exc *e = NULL;
        CHECK_EQ(cg_send(g[i], (void *)(intptr_t)(100 + i), &ret, &e), CG_RETURNED);
        CHECK(e == NULL);
        CHECK_EQ((intptr_t)ret, 101 + i);
        cg_free(g[i]);
    }
    cg_trim();
    if (out) {
        out->vm_kib = vm_kib();
        out->maps = map_count();
        cg_get_stack_stats(&out->st);
    }
}

/* The checks every case makes on its samples, round by round.
 *
 * What must hold whatever the order of events: nothing live, and (see
 * "Slabs" in src/core/stack.c) each mapping cogen counts holds a stack that is
 * pooled (two for a stack with a mapping of its own) or the unused end of
 * the slab of a thread that is still running, here only the main one.
 * What the rounds of one thread repeat exactly: after the first rounds,
 * the same address space, mappings and pooled stacks, give or take a new
 * slab made before the last one went back. Under valgrind, VmSize and
 * /proc/self/maps describe valgrind's own memory too, which grows on its
 * own: only the library's counts are checked there; under qemu-user VmSize
 * is qemu's (its maps are the program's). TSan maps its shadow
 * for the memory the program touches, in pieces that come and go: the
 * mapping count is not checked under TSan. */
static void check_bounded(const sample *s, int n, const char *what, int repeatable) {
    sample base = s[0];
    for (int r = 1; r < WARMUP; r++) {
        if (s[r].vm_kib > base.vm_kib) base.vm_kib = s[r].vm_kib;
        if (s[r].maps > base.maps) base.maps = s[r].maps;
        if (s[r].st.mappings > base.st.mappings) base.st.mappings = s[r].st.mappings;
        if (s[r].st.pooled > base.st.pooled) base.st.pooled = s[r].st.pooled;
    }
    for (int r = 0; r < n; r++) {
        printf("%s round %d: VmSize %ld KiB, %ld maps, stats: live %zu pooled %zu mappings %zu\n", what, r,
               s[r].vm_kib, s[r].maps, s[r].st.live, s[r].st.pooled, s[r].st.mappings);
        CHECK_EQ(s[r].st.live, 0);
        CHECK_INT(s[r].st.mappings, <=, 2 * s[r].st.pooled + 1);
        CHECK_INT(s[r].st.pooled, <=, 2 * NSIZES);
    }
    fflush(stdout);
    for (int r = WARMUP; r < n; r++) {
        if (!RUNNING_ON_VALGRIND && !COGEN_TEST_EMULATED) CHECK_INT(s[r].vm_kib, <=, base.vm_kib + VM_SLACK_KIB);
        if (!RUNNING_ON_VALGRIND && !UNDER_TSAN) CHECK_INT(s[r].maps, <=, base.maps + MAPS_SLACK);
        if (repeatable) {
            CHECK_INT(s[r].st.mappings, <=, base.st.mappings + STATS_MAPPINGS_SLACK);
            CHECK_INT(s[r].st.pooled, <=, base.st.pooled);
        }
    }
}

static void rounds(const char *what, int expect) {
    sample s[ROUNDS];
    for (int r = 0; r < ROUNDS; r++) one_round(0, expect, &s[r]);
    check_bounded(s, ROUNDS, what, 1);
}

/* ---------------------------------------------------------------------
 * Cases
 * ------------------------------------------------------------------ */

TEST(stack_sizes_rounds) {
    const char *mode = getenv("COGEN_STACK_GUARD");
    rounds(mode ? mode : "default", 0);
}

/* The mode's checks, in a child that sets COGEN_STACK_GUARD before its
 * first stack (the library reads it once). */
static void in_mode(const char *mode, void (*fn)(void)) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        setenv("COGEN_STACK_GUARD", mode, 1);
        fn();
        exit(0); /* not _exit: LeakSanitizer checks at exit */
    }
    int status = 0;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "COGEN_STACK_GUARD=%s child: %s %d\n", mode, WIFEXITED(status) ? "exit" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        abort();
    }
}

static void mprotect_child(void) {
    /* Each stack has a mapping of its own, split by its guard page: two
     * while it lives, none once it is freed. */
    cg_stack_stats a, b;
    cg_get_stack_stats(&a);
    cg_opts o = {size_of(0, 0), "probe", 0};
    cg_gen *probe = cg_new(fill_body, (void *)1, &o);
    CHECK(probe != NULL);
    CHECK_EQ(cg_gen_guard(probe), CG_GUARD_PAGE);
    cg_get_stack_stats(&b);
    CHECK_EQ(b.mappings, a.mappings + 2); /* the mode took effect */
    cg_free(probe);
    rounds("mprotect", CG_GUARD_PAGE);
}

static void canary_child(void) { rounds("canary", CG_GUARD_CANARY); }

TEST(stack_sizes_mprotect) { in_mode("mprotect", mprotect_child); }
TEST(stack_sizes_canary) { in_mode("canary", canary_child); }

/* Threads that end, two at a time, each with sizes of its own (so the
 * sizes never seen again keep coming): what an ending thread pooled and
 * the unused end of its slab go back too. */
#define THREAD_PAIRS 8

static void *thread_round(void *arg) {
    one_round((int)(intptr_t)arg, 0, NULL);
    return NULL;
}

TEST(stack_sizes_threads) {
#ifdef M_ARENA_MAX
    /* One malloc arena for every thread: glibc otherwise reserves 64 MiB of
     * address space for an arena when threads first overlap, which VmSize
     * would count against cogen. */
    mallopt(M_ARENA_MAX, 1);
#endif
    sample s[THREAD_PAIRS];
    for (int r = 0; r < THREAD_PAIRS; r++) {
        pthread_t t[2];
        for (int k = 0; k < 2; k++)
            CHECK(pthread_create(&t[k], NULL, thread_round, (void *)(intptr_t)(2 * r + k + 1)) == 0);
        for (int k = 0; k < 2; k++) CHECK(pthread_join(t[k], NULL) == 0);
        s[r].vm_kib = vm_kib();
        s[r].maps = map_count();
        cg_get_stack_stats(&s[r].st);
    }
    check_bounded(s, THREAD_PAIRS, "threads", 0);
}

/* The cases that fork a child to set the guard mode come first: when the
 * binary runs every case in one process, the library is not set up yet. */
/* A slab placed by the kernel in a hole of an older slab, whose front is
 * then cut up to that hole: the older slab's start moves above the newer
 * one's, and the library must still find which slab each stack is in
 * (found by a review: it aborted with "stack range outside its slab"). */
static pthread_mutex_t hole_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hole_cv = PTHREAD_COND_INITIALIZER;
static int hole_step;

static void hole_wait(int s) {
    pthread_mutex_lock(&hole_mu);
    while (hole_step < s) pthread_cond_wait(&hole_cv, &hole_mu);
    pthread_mutex_unlock(&hole_mu);
}

static void hole_set(int s) {
    pthread_mutex_lock(&hole_mu);
    hole_step = s;
    pthread_cond_broadcast(&hole_cv);
    pthread_mutex_unlock(&hole_mu);
}

static void *idle_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, NULL);
    return NULL;
}

static cg_gen *started(size_t size) {
    cg_opts o = {size, "hole", 0};
    cg_gen *g = cg_new(idle_body, NULL, &o);
    CHECK(g != NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    return g;
}

static void *slab_in_hole_thread(void *arg) {
    (void)arg;
    hole_wait(1);
    cg_free(started(256 * 1024)); /* its first stack: a new slab, maybe in the hole */
    hole_set(2);
    hole_wait(3);
    return NULL; /* ending cuts its stack and its slab's end */
}

TEST(stack_sizes_slab_in_hole) {
    size_t big = (size_t)64 << 20;
    cg_gen *a[16], *below, *fill[2 * 8];
    for (int i = 0; i < 16; i++) a[i] = started(big); /* slab A, exactly */
    below = started(big);
    /* Every warm and cold bucket taken by other sizes: what is freed next
     * is cut out of its slab. */
    for (int i = 0; i < 16; i++) fill[i] = started(256 * 1024 + (size_t)(i + 1) * 4096);
    for (int i = 0; i < 16; i++) cg_free(fill[i]);
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, slab_in_hole_thread, NULL), 0);
    cg_free(a[1]); /* a hole in A */
    hole_set(1);
    hole_wait(2);
    cg_free(a[0]); /* A's front cut, up to the hole */
    hole_set(3);
    CHECK_EQ(pthread_join(t, NULL), 0);
    for (int i = 2; i < 16; i++) cg_free(a[i]);
    cg_free(below);
    cg_trim();
    cg_stack_stats st;
    cg_get_stack_stats(&st);
    CHECK_EQ(st.live, 0);
    CHECK_INT(st.mappings, <=, 2 * st.pooled + 1);
}

static const check_case cases[] = {
    CASE(stack_sizes_mprotect),
    CASE(stack_sizes_canary),
    CASE(stack_sizes_rounds),
    CASE(stack_sizes_threads),
    CASE(stack_sizes_slab_in_hole),
};

CHECK_MAIN(cases)
