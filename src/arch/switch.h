/* switch.h: the context switch (src/arch/). It knows stacks only as
 * address ranges, and generators only as the opaque pointer a fresh stack
 * passes to its entry (cg__gen_start, src/core/upcalls.h).
 *
 * cg__switch saves the callee-saved registers of the running side on its
 * stack, stores its stack pointer in *save, continues on stack new_sp and
 * returns value there. */
#ifndef COGEN_SWITCH_H
#define COGEN_SWITCH_H

#include "core/thread.h"

#include <setjmp.h>
#include <stdint.h>
#include <string.h>

CG_HIDDEN void *cg__switch(void **save, void *new_sp, void *value);

/* Writes the first frame of a stack occupying [lo, hi) and returns the
 * stack pointer to switch to: the first switch there enters
 * cg__entry, which runs g's body. Inline for the assembly switches (a call
 * cost a fifth of cg_new's fast path, when that wrote one: with the x86-64
 * fast paths it leaves the frame to the first resume, gen_life.c's
 * first_frame); ucontext.c has its own.
 * The matching layouts are described in x86_64-sysv.S and
 * aarch64-aapcs64.S: the first switch "returns" into cg__entry with the
 * generator in a callee-saved register. */
#if CG_UCONTEXT
CG_HIDDEN void *cg__frame_ready(char *lo, char *hi, cg_gen *g);
#else
CG_HIDDEN void cg__entry(void);

static inline void *cg__frame_ready(char *lo, char *hi, cg_gen *g) {
    (void)lo;
    uintptr_t top = (uintptr_t)hi & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* After the switch's jump into cg__entry, rsp must be 16-byte aligned
     * so that its calls give their callees the ABI's alignment: it is the
     * top itself. cg__entry's own return address is marked undefined, so
     * no slot is kept for it: 16 bytes fewer in every stack, and in every
     * compact generator's saved copy. Frame: r15 r14 r13 r12 rbx rbp,
     * then where to continue. */
    uint64_t *ret = (uint64_t *)(top - 8);
    uint64_t *sp = ret - 6;
    memset(sp, 0, 6 * 8);
    sp[4] = (uint64_t)(uintptr_t)g; /* rbx */
    sp[5] = 0;                      /* rbp: end of the frame chain */
    *ret = (uint64_t)(uintptr_t)cg__entry;
    return sp;
#elif defined(__aarch64__)
    /* Frame: x19..x28, x29, x30 (where to continue), d8..d15; after the
     * switch, sp is the top of the stack (cg__entry keeps nothing there). */
    uint64_t *sp = (uint64_t *)(top - 160);
    memset(sp, 0, 160);
    sp[0] = (uint64_t)(uintptr_t)g;          /* x19 */
    sp[10] = 0;                              /* x29: end of the frame chain */
    sp[11] = (uint64_t)(uintptr_t)cg__entry; /* x30 */
    return sp;
#else
#error "no assembly context switch for this architecture: configure with -DCOGEN_SWITCH=ucontext"
#endif
}
#endif

/* Jumps to a CG_TRY's setjmp point (cg__try_enter) of the current stack. */
#if defined(__x86_64__) || defined(__aarch64__)
CG_NORETURN CG_HIDDEN void cg__longjmp(jmp_buf env, int val);
#else
#define cg__longjmp longjmp
#endif

#endif
