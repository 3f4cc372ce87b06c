/* layout.h: what the assembly fast paths (x86_64-fast.S and its siblings)
 * know about struct cg_gen and the thread state. src/core/gen_life.c checks every
 * offset against offsetof() at compile time, so the two cannot drift. */
#ifndef COGEN_LAYOUT_H
#define COGEN_LAYOUT_H

#define CG_G_PARENT 8  /* ctx.parent: where exception context continues */
#define CG_G_SP 24     /* saved stack pointer of the suspended body */
#define CG_G_RETSP 32  /* resumer's stack pointer while the body runs */
#define CG_G_OWNER 40  /* owning thread: its thread pointer */
#define CG_G_YF 48     /* subgenerator, NULL when not delegating */
#define CG_G_STATE 56  /* cg_state, one byte */
#define CG_G_EV 57     /* 0 when the body switched back with a plain yield */
#define CG_G_IN 58     /* 0 when the body is resumed with a plain send */
#define CG_G_EXC 72    /* the exception crossing the switch */
#define CG_G_SEND_EXC 80 /* cg_send's exc pointer while its fast path waits */
#define CG_G_STACK 104 /* the body's cg__stack (a fresh one's first frame is
                          not written: x86_64-fast.S starts it at its top) */
#define CG_STACK_HI 16 /* cg__stack.hi: one past its highest usable byte */
#define CG_IN_THROW 1  /* CG_G_IN: raise CG_G_EXC, chained to what the body handles */

#define CG_T_CUR 0     /* cg__t.cur: the context executing now */

#define CG_STATE_CREATED 0
#define CG_STATE_SUSPENDED 1
#define CG_STATE_RUNNING 2

#endif
