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
    /* After the switch's `ret` into cg__entry, rsp must be 16-byte aligned
     * so that its `call` gives cg__gen_main the ABI's alignment. */
    uint64_t *ret = (uint64_t *)(top - 24);
    uint64_t *sp = ret - 7;
    memset(sp, 0, 8 * 8);
    /* Defaults, replaced at once by cg__entry with the first resumer's. */
    uint32_t mxcsr = 0x1f80;
    uint16_t fcw = 0x37f;
    memcpy((char *)sp, &mxcsr, 4);
    memcpy((char *)sp + 4, &fcw, 2);
    sp[5] = (uint64_t)(uintptr_t)g; /* rbx */
    sp[6] = 0;                      /* rbp: end of the frame chain */
    *ret = (uint64_t)(uintptr_t)cg__entry;
    ret[1] = 0;
    return sp;
#elif defined(__aarch64__)
    uint64_t *sp = (uint64_t *)(top - 176 - 16);
    memset(sp, 0, 176 + 16);
    uint64_t fpcr = 0; /* replaced at once by cg__entry with the first resumer's */
    sp[0] = (uint64_t)(uintptr_t)g;         /* x19 */
    sp[10] = 0;                             /* x29: end of the frame chain */
    sp[11] = (uint64_t)(uintptr_t)cg__entry; /* x30 */
    sp[20] = fpcr;
    return sp;
#else
#error "no assembly context switch for this architecture: configure with -DCOGEN_SWITCH=ucontext"
#endif
}
