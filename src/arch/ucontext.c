/* ucontext.c: the portable context switch, for architectures without an
 * assembly one (configure with -DCOGEN_SWITCH=ucontext). swapcontext saves
 * and restores the signal mask with a system call each way, so this is
 * slower by two orders of magnitude; semantics are the same.
 *
 * Here a saved "stack pointer" is the address of a ucontext_t that lives in
 * the suspended side's own cg__switch frame (or, for a fresh stack, at its
 * top).
 *
 * Floating-point environment: glibc's swapcontext saves the whole
 * environment with the registers and restores it on the other side, so
 * each context would keep its own. Generators share their thread's
 * environment in every build (see x86_64-sysv.S), so the switching side's
 * environment (fenv_t: control modes and exception flags) is carried
 * across and installed on the other side after swapcontext returns: the
 * side that resumes finds the environment the other left, as with the
 * assembly switches. A CG_OPT_FPENV generator's private one is handled
 * above this, in src/core/gen_life.c, as in the other builds. */
#define _GNU_SOURCE
#include "arch/switch.h"
#include "core/upcalls.h"

#include <fenv.h>
#include <stdint.h>
#include <ucontext.h>

static __thread void *passed;     /* the value crossing the switch */
static __thread fenv_t passed_env; /* the switching side's floating-point
                                      environment */

void *cg__switch(void **save, void *new_sp, void *value) {
    ucontext_t self;
    *save = &self;
    passed = value;
    fegetenv(&passed_env);
    CG_CHECK(swapcontext(&self, (ucontext_t *)new_sp) == 0, "swapcontext failed");
    fesetenv(&passed_env); /* swapcontext restored ours: take the other side's */
    return passed;
}

/* A generator starts in the environment of whoever first resumes it, as a
 * called function would (getcontext captured its creator's). */
static void entry(unsigned lo, unsigned hi) {
    fesetenv(&passed_env);
    cg_gen *g = (cg_gen *)(((uintptr_t)hi << 16 << 16) | (uintptr_t)lo);
    cg__body b = cg__gen_start(g);
    cg__gen_return(g, b.fn(g, b.arg));
}

void *cg__frame_ready(char *lo, char *hi, cg_gen *g) {
    uintptr_t at = ((uintptr_t)hi - sizeof(ucontext_t)) & ~(uintptr_t)63;
    ucontext_t *uc = (ucontext_t *)at;
    CG_CHECK(getcontext(uc) == 0, "getcontext failed");
    uc->uc_stack.ss_sp = lo;
    uc->uc_stack.ss_size = (size_t)((char *)uc - lo);
    uc->uc_link = NULL;
    uintptr_t p = (uintptr_t)g;
    makecontext(uc, (void (*)(void))entry, 2, (unsigned)(p & 0xffffffffu), (unsigned)(p >> 16 >> 16));
    return uc;
}
