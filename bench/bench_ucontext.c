/* bench_ucontext.c: POSIX ucontext (glibc's swapcontext) as a peer. Every
 * swapcontext saves and restores the signal mask, a system call each way,
 * which is what makes it slow; it is here as the portable baseline (and
 * cogen's own fallback switch on ABIs without assembly).
 *
 *   bench_ucontext roundtrip [N]   swap in with a pointer, swap back with it
 *   bench_ucontext lifecycle [N]   makecontext on a pooled stack + first
 *                                  resume + a "close" resume that lets the
 *                                  function return (uc_link) + stack back
 */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "common.h"

#define WARMUP 1000
#define STACK (128 * 1024)
#define IMPL "ucontext"

static ucontext_t main_ctx, co_ctx;
static void *slot; /* the pointer passed each way */

static char *stack_lo;

static char *guarded_stack(void) {
    size_t ps = (size_t)sysconf(_SC_PAGESIZE);
    char *m = mmap(NULL, STACK + ps, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) bench_die("mmap: %s", strerror(errno));
    if (mprotect(m, ps, PROT_NONE)) bench_die("mprotect: %s", strerror(errno));
    return m + ps;
}

static void prepare(void (*fn)(void)) {
    if (getcontext(&co_ctx)) bench_die("getcontext: %s", strerror(errno));
    co_ctx.uc_stack.ss_sp = stack_lo;
    co_ctx.uc_stack.ss_size = STACK;
    co_ctx.uc_link = &main_ctx;
    makecontext(&co_ctx, fn, 0);
}

static void echo_fn(void) {
    for (;;) {
        void *v = slot;
        slot = v;
        swapcontext(&co_ctx, &main_ctx);
    }
}

static void roundtrip(long n) {
    static int token;
    void *p = &token;
    prepare(echo_fn);
    swapcontext(&main_ctx, &co_ctx);
    for (long i = 0; i < WARMUP; i++) {
        slot = p;
        swapcontext(&main_ctx, &co_ctx);
    }
    slot = NULL;
    double best;
    BENCH_TIME_BATCHES(best, n, len, {
        for (long i = 0; i < len; i++) {
            slot = p;
            swapcontext(&main_ctx, &co_ctx);
        }
    });
    if (n && slot != p) bench_die("the context did not echo the value");
    bench_result("roundtrip", IMPL, best, "ns", n, NULL);
}

static int finished;

static void once_fn(void) {
    swapcontext(&co_ctx, &main_ctx); /* the first yield */
    finished = 1;                    /* closed: return through uc_link */
}

static void lifecycle_once(void) {
    finished = 0;
    prepare(once_fn);                /* the pooled stack is reused */
    swapcontext(&main_ctx, &co_ctx); /* first resume */
    swapcontext(&main_ctx, &co_ctx); /* close */
    if (!finished) bench_die("lifecycle: context did not finish");
}

static void lifecycle(long n) { BENCH_LIFECYCLE(lifecycle_once, WARMUP, n, IMPL, NULL); }

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_ucontext roundtrip|lifecycle [N]\n");
        return 2;
    }
    stack_lo = guarded_stack();
    if (!strcmp(argv[1], "roundtrip"))
        roundtrip(bench_arg(argc, argv, 2, 500000));
    else if (!strcmp(argv[1], "lifecycle"))
        lifecycle(bench_arg(argc, argv, 2, 200000));
    else {
        fprintf(stderr, "bench_ucontext: unknown benchmark '%s'\n", argv[1]);
        return 2;
    }
    return 0;
}
