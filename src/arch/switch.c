/* switch.c: a fresh generator stack for the assembly switches (the
 * matching layouts are described in x86_64-sysv.S and aarch64-aapcs64.S).
 * The first switch to it "returns" into cg__entry with the generator in a
 * callee-saved register. */
#include "arch/switch.h"

#include <stdint.h>
#include <string.h>

CG_HIDDEN void cg__entry(void);

void *cg__frame_ready(char *lo, char *hi, cg_gen *g) {
    (void)lo;
    uintptr_t top = (uintptr_t)hi & ~(uintptr_t)15;
#if defined(__x86_64__)
    /* After the switch's jump into cg__entry, rsp must be 16-byte aligned
     * so that its `call` gives cg__gen_main the ABI's alignment. Frame:
     * r15 r14 r13 r12 rbx rbp, then where to continue. */
    uint64_t *ret = (uint64_t *)(top - 24);
    uint64_t *sp = ret - 6;
    memset(sp, 0, 6 * 8);
    sp[4] = (uint64_t)(uintptr_t)g; /* rbx */
    sp[5] = 0;                      /* rbp: end of the frame chain */
    *ret = (uint64_t)(uintptr_t)cg__entry;
    ret[1] = 0;
    return sp;
#elif defined(__aarch64__)
    /* Frame: x19..x28, x29, x30 (where to continue), d8..d15. */
    uint64_t *sp = (uint64_t *)(top - 160 - 16);
    memset(sp, 0, 160 + 16);
    sp[0] = (uint64_t)(uintptr_t)g;          /* x19 */
    sp[10] = 0;                              /* x29: end of the frame chain */
    sp[11] = (uint64_t)(uintptr_t)cg__entry; /* x30 */
    return sp;
#else
#error "no assembly context switch for this architecture: configure with -DCOGEN_SWITCH=ucontext"
#endif
}
