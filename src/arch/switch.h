/* switch.h: the context switch (src/arch/). It knows stacks only as
 * address ranges, and generators only as the opaque pointer a fresh stack
 * passes to its entry (cg__gen_main, src/core/upcalls.h).
 *
 * cg__switch saves the callee-saved registers of the running side on its
 * stack, stores its stack pointer in *save, continues on stack new_sp and
 * returns value there. */
#ifndef COGEN_SWITCH_H
#define COGEN_SWITCH_H

#include "core/thread.h"

#include <setjmp.h>

CG_HIDDEN void *cg__switch(void **save, void *new_sp, void *value);

/* Writes the first frame of a stack occupying [lo, hi) and returns the
 * stack pointer to switch to: the first switch there enters
 * cg__gen_main(g). */
CG_HIDDEN void *cg__frame_ready(char *lo, char *hi, cg_gen *g);

/* Jumps to a cg__setjmp (CG__SETJMP) point of the current stack. */
#if defined(__x86_64__) || defined(__aarch64__)
CG_NORETURN CG_HIDDEN void cg__longjmp(jmp_buf env, int val);
#else
#define cg__longjmp longjmp
#endif

#endif
