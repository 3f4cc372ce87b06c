/* test_overflow.c: a generator that overflows its stack is caught and
 * named, never left to scribble over its neighbours.
 *
 * Every overflow happens in a forked child whose stderr is captured: the
 * parent checks the child's last words (the library's report, with the
 * generator's name and the stack size cg_gen_stack_size gives) and how it
 * died (SIGSEGV for a guard page, SIGABRT for a canary). The child reports
 * the numbers it saw (name, size, guard kind) on a second pipe, so that the
 * parent compares the message with what the API said, not with constants.
 *
 * This file is compiled with -fstack-clash-protection, as the library is:
 * that is what makes a single frame bigger than the guard page fault in
 * the guard page instead of jumping over it (overflow_big_frame).
 */
#define _GNU_SOURCE
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SKIP_CODE 77

#if defined(__clang__) || defined(__GNUC__)
#define NOINLINE __attribute__((noinline))
/* The frames below must live on the generator's own stack: ASan would put
 * big locals on its fake stack, and its redzones would change frame sizes
 * the cases rely on. */
#define RAW_FRAME __attribute__((noinline, no_sanitize_address))
#endif

/* Frames whose address is stored here are laid out whole: a compiler may
 * otherwise shrink a local array that nothing outside the function sees
 * (clang keeps only the bytes touched, in the red zone). */
static volatile char *volatile escape;
NOINLINE static void keep(volatile char *p) { escape = p; }

/* ---------------------------------------------------------------------
 * Running a scenario in a child
 * ------------------------------------------------------------------ */

/* What the child saw through the API, sent to the parent before the
 * overflow. */
typedef struct seen {
    char name[64];
    size_t stack_size;
    int guard;
} seen;

static int report_fd = -1;

static void report(const cg_gen *g) {
    seen s;
    memset(&s, 0, sizeof s);
    snprintf(s.name, sizeof s.name, "%s", cg_gen_name(g));
    s.stack_size = cg_gen_stack_size(g);
    s.guard = (int)cg_gen_guard(g);
    CHECK(write(report_fd, &s, sizeof s) == (ssize_t)sizeof s);
}

typedef struct outcome {
    int status;      /* from waitpid */
    char err[8192];  /* the child's stderr */
    seen seen;       /* what it reported, if anything */
    int reported;
} outcome;

static void read_all(int fd, char *buf, size_t size) {
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, size - 1 - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += (size_t)r;
        if (n == size - 1) { /* keep draining so the child never blocks */
            char sink[512];
            while (read(fd, sink, sizeof sink) > 0) {
            }
            break;
        }
    }
    buf[n] = '\0';
}

/* Runs fn in a child with stderr and the report pipe captured. The child
 * must not return normally: if it does, it exits 0, which every case
 * treats as a failure to detect the overflow. */
static void run_child(void (*fn)(void), outcome *o) {
    int errp[2], repp[2];
    CHECK(pipe(errp) == 0);
    CHECK(pipe(repp) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        /* No core file for a death we caused on purpose. */
        prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
        close(errp[0]);
        close(repp[0]);
        dup2(errp[1], 2);
        close(errp[1]);
        report_fd = repp[1];
        fn();
        _exit(0);
    }
    close(errp[1]);
    close(repp[1]);
    memset(o, 0, sizeof *o);
    read_all(errp[0], o->err, sizeof o->err);
    close(errp[0]);
    o->reported = read(repp[0], &o->seen, sizeof o->seen) == (ssize_t)sizeof o->seen;
    close(repp[0]);
    while (waitpid(pid, &o->status, 0) < 0) CHECK(errno == EINTR);
    /* Pass the child's words on, for whoever reads the test log. */
    fprintf(stderr, "--- child stderr ---\n%s--- end (status 0x%x) ---\n", o->err, (unsigned)o->status);
}

static void expect_signal(const outcome *o, int sig) {
    if (WIFEXITED(o->status) && WEXITSTATUS(o->status) == SKIP_CODE) {
        fprintf(stderr, "skipped: %s\n", o->err);
        exit(SKIP_CODE);
    }
    if (!WIFSIGNALED(o->status)) {
        fprintf(stderr, "child was not killed by a signal: %s %d\n", WIFEXITED(o->status) ? "exit" : "status",
                WIFEXITED(o->status) ? WEXITSTATUS(o->status) : o->status);
        abort();
    }
    CHECK_EQ(WTERMSIG(o->status), sig);
}

/* The guard-page report, built from what the child's API calls said. */
static void expect_guard_message(const outcome *o, const char *name, size_t size) {
    CHECK(o->reported);
    CHECK_STR(o->seen.name, name);
    CHECK_EQ(o->seen.stack_size, size);
    CHECK_EQ(o->seen.guard, CG_GUARD_PAGE);
    char want[256];
    snprintf(want, sizeof want, "cogen: stack overflow in generator '%s' (stack size %zu bytes)\n", name, size);
    if (!strstr(o->err, want)) {
        fprintf(stderr, "expected in the child's stderr: %s", want);
        abort();
    }
    CHECK(strstr(o->err, "check failed") == NULL);
}

static size_t page_size(void) { return (size_t)sysconf(_SC_PAGESIZE); }
static size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

/* qemu-user accepts madvise(MADV_GUARD_INSTALL) and ignores it (it
 * returns success for advice it does not know), so a "guard" page made
 * that way can be read and written. Found out by asking the kernel to copy
 * from a guard page: a real one makes write(2) fail with EFAULT. */
static int madvise_guards_are_fake(void) {
    size_t ps = page_size();
    char *m = mmap(NULL, 2 * ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(m != MAP_FAILED);
    int fake = 0;
    if (madvise(m, ps, MADV_GUARD_INSTALL) == 0) {
        int p[2];
        CHECK(pipe(p) == 0);
        fake = write(p[1], m, 1) == 1;
        close(p[0]);
        close(p[1]);
    }
    munmap(m, 2 * ps);
    return fake;
}

static void *idle_body(cg_gen *g, void *arg);

/* Called first in every child that overflows a guard page on purpose. If
 * this system's madvise guards are fake and cogen uses them (its stacks
 * come from slabs, not from mappings of their own with an mprotect'd
 * guard), the stacks have no guard at all: an overflow would corrupt the
 * neighbouring stack or fault somewhere unrelated. Nothing to test then:
 * say why and skip. */
/* COGEN_STACK_GUARD=canary: the library was told to act as if no guard
 * page could be had (to run the suites on that path): nothing here holds. */
static void skip_if_canaries_forced(void) {
    const char *f = getenv("COGEN_STACK_GUARD");
    if (!f || strcmp(f, "canary") != 0) return;
    fprintf(stderr, "COGEN_STACK_GUARD=canary: stacks have canaries, not guard pages");
    exit(SKIP_CODE);
}

static void skip_if_guards_are_fake(void) {
    skip_if_canaries_forced();
    if (!madvise_guards_are_fake()) return;
    cg_stack_stats a, b;
    cg_get_stack_stats(&a);
    cg_opts o = {3 * CG_STACK_MIN, "probe", 0};
    cg_gen *probe = cg_new(idle_body, NULL, &o);
    CHECK(probe != NULL);
    cg_get_stack_stats(&b);
    cg_free(probe);
    if (b.mappings >= a.mappings + 2) return; /* an mprotect'd guard page: real */
    fprintf(stderr, "madvise(MADV_GUARD_INSTALL) succeeds here without installing anything (qemu-user?) and cogen "
                    "trusts it: its stacks have no guard page, overflows cannot be caught");
    _exit(SKIP_CODE);
}

/* ---------------------------------------------------------------------
 * Deep recursion
 * ------------------------------------------------------------------ */

/* Read through a volatile so that the compiler can neither see the
 * recursion is unbounded nor turn it into a loop. */
static volatile size_t depth_limit = SIZE_MAX;
static volatile size_t depth_reached;

RAW_FRAME static size_t recurse(size_t depth) {
    volatile char pad[200];
    keep(pad);
    pad[0] = (char)depth;
    pad[sizeof pad - 1] = (char)depth;
    depth_reached = depth;
    if (depth >= depth_limit) return depth;
    return recurse(depth + 1) + (size_t)pad[0] + (size_t)pad[sizeof pad - 1];
}

static void *deep_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, NULL);
    return (void *)recurse(0);
}

/* Named, with a size that is not a whole number of pages: the message must
 * give the rounded size the generator really has. */
#define ODD_SIZE 50000u

static void child_recursion(void) {
    skip_if_guards_are_fake();
    cg_opts o = {ODD_SIZE, "deep-recursor", 0};
    cg_gen *g = cg_new(deep_body, NULL, &o);
    CHECK(g != NULL);
    report(g);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    cg_next(g, NULL, NULL); /* overflows */
}

TEST(overflow_recursion) {
    outcome o;
    run_child(child_recursion, &o);
    expect_signal(&o, SIGSEGV);
    expect_guard_message(&o, "deep-recursor", round_up(ODD_SIZE, page_size()));
}

/* ---------------------------------------------------------------------
 * One frame bigger than the guard page
 * ------------------------------------------------------------------ */

#define BIG_FRAME (64u * 1024u)

/* A frame of 64 KiB on a 16 KiB stack, first touched at its lowest byte.
 * Without stack clash protection the stack pointer drops 64 KiB at once,
 * right over the 4 KiB guard page, and the write lands in whatever lies
 * below (the neighbouring generator's stack, made for that purpose); with
 * it, the compiler probes every page on the way down and the first probe
 * past the stack faults in the guard page. */
RAW_FRAME static int big_frame(int seed) {
    volatile char big[BIG_FRAME];
    keep(big);
    big[0] = (char)seed;
    big[BIG_FRAME - 1] = (char)seed;
    return big[0] + big[BIG_FRAME - 1];
}

static void *big_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, NULL);
    return (void *)(intptr_t)big_frame(7);
}

static void child_big_frame(void) {
    skip_if_guards_are_fake();
    /* A neighbour below: stacks are carved upward from a slab, so without
     * probing the write would land in it silently and the child would exit
     * 0 (which fails the case). */
    cg_gen *below = cg_new(big_body, NULL, NULL);
    CHECK(below != NULL);
    cg_opts o = {CG_STACK_MIN, "big-frame", 0};
    cg_gen *g = cg_new(big_body, NULL, &o);
    CHECK(g != NULL);
    report(g);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    cg_next(g, NULL, NULL); /* overflows */
}

TEST(overflow_big_frame) {
    outcome o;
    run_child(child_big_frame, &o);
    expect_signal(&o, SIGSEGV);
    expect_guard_message(&o, "big-frame", CG_STACK_MIN);
}

/* ---------------------------------------------------------------------
 * The message names the generator that overflowed, not its delegator
 * ------------------------------------------------------------------ */

static void *outer_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_opts o = {96u * 1024u, "inner-sub", 0};
    return cg_yield_from_new(g, deep_body, NULL, &o);
}

static void child_subgenerator(void) {
    skip_if_guards_are_fake();
    cg_opts o = {0, "outer-delegator", 0};
    cg_gen *g = cg_new(outer_body, NULL, &o);
    CHECK(g != NULL);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    cg_gen *sub = cg_gen_yieldfrom(g);
    CHECK(sub != NULL);
    report(sub);
    cg_next(g, NULL, NULL); /* the subgenerator overflows */
}

TEST(overflow_subgenerator) {
    outcome o;
    run_child(child_subgenerator, &o);
    expect_signal(&o, SIGSEGV);
    expect_guard_message(&o, "inner-sub", 96u * 1024u);
    CHECK(strstr(o.err, "outer-delegator") == NULL);
}

/* ---------------------------------------------------------------------
 * On a thread other than the main one (each thread gets its own
 * alternate signal stack)
 * ------------------------------------------------------------------ */

static void *thread_main(void *arg) {
    (void)arg;
    cg_opts o = {32u * 1024u, "thread-recursor", 0};
    cg_gen *g = cg_new(deep_body, NULL, &o);
    CHECK(g != NULL);
    report(g);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    cg_next(g, NULL, NULL); /* overflows */
    return NULL;
}

static void child_thread(void) {
    skip_if_guards_are_fake();
    pthread_t t;
    CHECK(pthread_create(&t, NULL, thread_main, NULL) == 0);
    pthread_join(t, NULL);
}

TEST(overflow_thread) {
    outcome o;
    run_child(child_thread, &o);
    expect_signal(&o, SIGSEGV);
    expect_guard_message(&o, "thread-recursor", 32u * 1024u);
}

/* ---------------------------------------------------------------------
 * Guard kinds
 * ------------------------------------------------------------------ */

static void *idle_body(cg_gen *g, void *arg) {
    cg_yield(g, arg);
    return arg;
}

TEST(guard_default_is_page) {
    skip_if_canaries_forced();
    cg_stack_stats before, after;
    cg_get_stack_stats(&before);
    cg_gen *g = cg_new(idle_body, NULL, NULL);
    CHECK(g != NULL);
    CHECK_EQ(cg_gen_guard(g), CG_GUARD_PAGE);
    CHECK_EQ(cg_gen_stack_size(g), cg_gen_compact(g) ? CG_STACK_COMPACT_DEFAULT : CG_STACK_DEFAULT);
    cg_get_stack_stats(&after);
    CHECK_EQ(after.live, before.live + 1);
    CHECK_EQ(after.guard_pages, before.guard_pages + 1);
    CHECK_EQ(after.canaries, before.canaries);

    cg_opts req = {0, "required", CG_OPT_REQUIRE_GUARD};
    cg_gen *r = cg_new(idle_body, NULL, &req);
    CHECK(r != NULL);
    CHECK_EQ(cg_gen_guard(r), CG_GUARD_PAGE);
    CHECK_EQ(cg_next(r, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_close(r, NULL, NULL), CG_RETURNED);
    CHECK_EQ(cg_gen_guard(r), CG_GUARD_NONE); /* closed: its stack is back in the pool */
    CHECK_EQ(cg_gen_stack_size(r), cg_gen_stack_size(g));
    cg_free(r);
    cg_free(g);
    cg_get_stack_stats(&after);
    CHECK_EQ(after.live, before.live);
    CHECK_EQ(cg_gen_guard(NULL), CG_GUARD_NONE);
    CHECK_EQ(cg_gen_stack_size(NULL), 0);
    CHECK_EQ(cg_gen_compact(NULL), 0);
}

/* A generator made with CG_OPT_REQUIRE_GUARD overflows like any guarded
 * one. */
static void child_required(void) {
    skip_if_guards_are_fake();
    cg_opts o = {CG_STACK_MIN, "required-guard", CG_OPT_REQUIRE_GUARD};
    cg_gen *g = cg_new(deep_body, NULL, &o);
    CHECK(g != NULL);
    report(g);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    cg_next(g, NULL, NULL);
}

TEST(overflow_required_guard) {
    outcome o;
    run_child(child_required, &o);
    expect_signal(&o, SIGSEGV);
    expect_guard_message(&o, "required-guard", CG_STACK_MIN);
}

/* ---------------------------------------------------------------------
 * No guard page left: the canary, and CG_OPT_REQUIRE_GUARD refusing
 *
 * The kernel runs out of guard pages when cogen's mappings reach half of
 * vm.max_map_count (or earlier, when mprotect cannot split one more
 * mapping: it fails with ENOMEM). Exhausting the real limit would take
 * 30,000 stacks and a sysctl that other processes share, so the child
 * makes the kernel say the same thing for it: a seccomp filter fails
 * madvise(MADV_GUARD_INSTALL) with EINVAL (a kernel before 6.13) and
 * mprotect(PROT_NONE) with ENOMEM (the mapping limit). Where seccomp is
 * unavailable (valgrind, qemu-user), the case is skipped.
 * ------------------------------------------------------------------ */

#if defined(__x86_64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define AUDIT_ARCH_HERE AUDIT_ARCH_AARCH64
#endif

/* deny_mprotect 0: only the madvise guards are refused (level 2 of
 * src/core/stack.c, what a kernel before 6.13 gives); 1: mprotect guards too
 * (level 3). Returns 0 once the filter is in place and seen to work. */
static int deny_guard_pages(int deny_mprotect) {
#ifdef AUDIT_ARCH_HERE
    /* A protection no one asks for stands for "deny no mprotect". */
    const unsigned denied_prot = deny_mprotect ? PROT_NONE : 0x7fffffffu;
    /* Little-endian: the low 32 bits of an argument come first. */
    const unsigned arg2 = offsetof(struct seccomp_data, args[2]);
    struct sock_filter prog[] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_HERE, 0, 7),
        /* 2 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        /* 3 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_madvise, 0, 2),
        /* 4 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg2),
        /* 5 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, MADV_GUARD_INSTALL, 4, 3),
        /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_mprotect, 0, 2),
        /* 7 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, arg2),
        /* 8 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, denied_prot, 2, 0),
        /* 9 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        /* 10 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
        /* 11 */ BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOMEM),
    };
    struct sock_fprog fprog = {(unsigned short)(sizeof prog / sizeof prog[0]), prog};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) return -1;
    /* Make sure the filter bites here (an emulator may accept and ignore
     * it). */
    void *m = mmap(NULL, 2 * page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -1;
    int mp = mprotect(m, page_size(), PROT_NONE);
    int works = (deny_mprotect ? mp != 0 && errno == ENOMEM : mp == 0) &&
                madvise(m, page_size(), MADV_GUARD_INSTALL) != 0 && errno == EINVAL;
    munmap(m, 2 * page_size());
    return works ? 0 : -1;
#else
    return -1;
#endif
}

/* Sizes no other case uses, so that no stack pooled by the parent (which
 * the child inherits) is picked up instead of a new one. */
#define CANARY_STACK (20u * 1024u)
#define CANARY_BELOW (192u * 1024u)
#define CANARY_REQ (160u * 1024u)

/* Fills a frame from its top down to 4 KiB past the bottom of the victim's
 * stack, as a runaway recursion would: the canary word at the stack's low
 * end is overwritten, and the bytes past it land in the neighbour below. */
#define SMASH (CANARY_STACK + 4096u)
RAW_FRAME static int smash(int seed) {
    volatile char buf[SMASH];
    keep(buf);
    for (size_t i = SMASH; i-- > 0;) buf[i] = (char)(seed + (int)i);
    return buf[0];
}

static void *smash_body(cg_gen *g, void *arg) {
    (void)arg;
    cg_yield(g, NULL);
    int r = smash(3);
    cg_yield(g, (void *)(intptr_t)r); /* the canary is checked on the way out */
    return NULL;
}

static void child_canary(void) {
    if (deny_guard_pages(1) != 0) {
        fprintf(stderr, "seccomp filters are not available here");
        _exit(SKIP_CODE);
    }
    cg_stack_stats st;
    /* A neighbour for smash() to spill into: stacks are carved upward. */
    cg_opts bo = {CANARY_BELOW, "below", 0};
    cg_gen *below = cg_new(smash_body, NULL, &bo);
    CHECK(below != NULL);
    CHECK_EQ(cg_gen_guard(below), CG_GUARD_CANARY);
    cg_get_stack_stats(&st);
    CHECK_EQ(st.canaries, 1);
    CHECK_EQ(st.guard_pages, 0);

    /* Required: refused, with EAGAIN, and nothing is left allocated. */
    cg_opts req = {CANARY_REQ, "must-be-guarded", CG_OPT_REQUIRE_GUARD};
    errno = 0;
    CHECK(cg_new(smash_body, NULL, &req) == NULL);
    CHECK_EQ(errno, EAGAIN);
    cg_get_stack_stats(&st);
    CHECK_EQ(st.live, 1);

    cg_opts o = {CANARY_STACK, "canary-victim", 0};
    cg_gen *g = cg_new(smash_body, NULL, &o);
    CHECK(g != NULL);
    CHECK_EQ(cg_gen_guard(g), CG_GUARD_CANARY);
    report(g);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    cg_next(g, NULL, NULL); /* smashes, and yields: reported, aborts */
}

TEST(overflow_canary) {
    outcome o;
    run_child(child_canary, &o);
    expect_signal(&o, SIGABRT);
    CHECK(o.reported);
    CHECK_STR(o.seen.name, "canary-victim");
    CHECK_EQ(o.seen.guard, CG_GUARD_CANARY);
    char want[256];
    snprintf(want, sizeof want,
             "cogen: stack overflow in generator 'canary-victim' (stack size %zu bytes, no guard page: canary "
             "overwritten)\n",
             o.seen.stack_size);
    if (!strstr(o.err, want)) {
        fprintf(stderr, "expected in the child's stderr: %s", want);
        abort();
    }
    CHECK(strstr(o.err, "check failed") == NULL);
}

/* Level 2: no madvise guards, so the stack gets a mapping of its own with
 * an mprotect'd guard page; an overflow is reported the same way. */
static void child_mprotect_guard(void) {
    if (deny_guard_pages(0) != 0) {
        fprintf(stderr, "seccomp filters are not available here");
        _exit(SKIP_CODE);
    }
    /* The first stack finds out that madvise guards are refused (mapping a
     * slab on the way, kept for canary stacks); the second is measured. */
    cg_gen *first = cg_new(deep_body, NULL, NULL);
    CHECK(first != NULL);
    CHECK_EQ(cg_gen_guard(first), CG_GUARD_PAGE);
    cg_stack_stats before, after;
    cg_get_stack_stats(&before);
    cg_opts o = {CANARY_STACK, "mprotect-guarded", CG_OPT_REQUIRE_GUARD};
    cg_gen *g = cg_new(deep_body, NULL, &o);
    CHECK(g != NULL);
    cg_get_stack_stats(&after);
    CHECK_EQ(after.mappings, before.mappings + 2); /* the stack and its guard */
    CHECK_EQ(after.guard_pages, before.guard_pages + 1);
    report(g);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    cg_next(g, NULL, NULL);
}

TEST(overflow_mprotect_guard) {
    skip_if_canaries_forced();
    outcome o;
    run_child(child_mprotect_guard, &o);
    expect_signal(&o, SIGSEGV);
    expect_guard_message(&o, "mprotect-guarded", CANARY_STACK);
}

/* ---------------------------------------------------------------------
 * The child harness itself: a child that does not overflow is noticed.
 * (Guards against a run_child that would pass every case.)
 * ------------------------------------------------------------------ */

static void child_quiet(void) {
    depth_limit = 10;
    cg_opts o = {0, "shallow", 0};
    cg_gen *g = cg_new(deep_body, NULL, &o);
    CHECK(g != NULL);
    report(g);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_YIELDED);
    CHECK_EQ(cg_next(g, NULL, NULL), CG_RETURNED);
    CHECK_EQ(depth_reached, 10);
    cg_free(g);
}

TEST(overflow_none_when_shallow) {
    outcome o;
    run_child(child_quiet, &o);
    CHECK(WIFEXITED(o.status));
    CHECK_EQ(WEXITSTATUS(o.status), 0);
    CHECK(strstr(o.err, "stack overflow") == NULL);
    CHECK(o.reported);
    CHECK_STR(o.seen.name, "shallow");
}

static const check_case cases[] = {
    CASE(overflow_recursion),   CASE(overflow_big_frame),      CASE(overflow_subgenerator),
    CASE(overflow_thread),      CASE(guard_default_is_page),   CASE(overflow_required_guard),
    CASE(overflow_canary),      CASE(overflow_mprotect_guard), CASE(overflow_none_when_shallow),
};
CHECK_MAIN(cases)
