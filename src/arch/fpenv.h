/* fpenv.h: the floating-point environment a generator made with
 * CG_OPT_FPENV keeps to itself (src/core/gen_life.c saves and loads it on the
 * resumer's side of its switches; the switches themselves never touch it).
 *
 *   x86-64:  MXCSR (SSE rounding, flush-to-zero, denormals-are-zero,
 *            exception masks and sticky flags) and the x87 control word
 *            (x87 rounding, precision, exception masks);
 *   AArch64: FPCR (rounding, flush-to-zero, default NaN, trap enables);
 *   other:   the whole fenv_t, through <fenv.h>.
 *
 * Reading MXCSR (stmxcsr) is slow on some CPUs; that is why only
 * generators that ask for a private environment pay for it. */
#ifndef COGEN_FPENV_H
#define COGEN_FPENV_H

#include <stdint.h>

#if defined(__x86_64__)
typedef struct cg__fpenv {
    uint32_t mxcsr;
    uint16_t fcw;
} cg__fpenv;
static inline void cg__fpenv_get(cg__fpenv *e) {
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(e->mxcsr), "=m"(e->fcw) : : "memory");
}
static inline void cg__fpenv_set(const cg__fpenv *e) {
    __asm__ volatile("ldmxcsr %0\n\tfldcw %1" : : "m"(e->mxcsr), "m"(e->fcw) : "memory");
}
static inline int cg__fpenv_eq(const cg__fpenv *a, const cg__fpenv *b) {
    return a->mxcsr == b->mxcsr && a->fcw == b->fcw;
}
#elif defined(__aarch64__)
typedef struct cg__fpenv {
    uint64_t fpcr;
} cg__fpenv;
static inline void cg__fpenv_get(cg__fpenv *e) { __asm__ volatile("mrs %0, fpcr" : "=r"(e->fpcr) : : "memory"); }
static inline void cg__fpenv_set(const cg__fpenv *e) { __asm__ volatile("msr fpcr, %0" : : "r"(e->fpcr) : "memory"); }
static inline int cg__fpenv_eq(const cg__fpenv *a, const cg__fpenv *b) { return a->fpcr == b->fpcr; }
#else
#include <fenv.h>
#include <string.h>
typedef struct cg__fpenv {
    fenv_t env;
} cg__fpenv;
static inline void cg__fpenv_get(cg__fpenv *e) { fegetenv(&e->env); }
static inline void cg__fpenv_set(const cg__fpenv *e) { fesetenv(&e->env); }
static inline int cg__fpenv_eq(const cg__fpenv *a, const cg__fpenv *b) {
    return memcmp(&a->env, &b->env, sizeof a->env) == 0;
}
#endif

#endif
