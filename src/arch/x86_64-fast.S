/* x86_64-fast.S: cg_send, cg_next, cg_throw and cg_yield for the common
 * case, on the System V AMD64 ABI (see x86_64-sysv.S for the registers a
 * switch keeps and why the floating-point environment is not one of them).
 *
 * A send (or a throw) to a suspended generator that is not delegating, from
 * its own thread, and the plain yield that answers it, are the hot path of
 * every coroutine program. Written in C they cost two C frames on top of
 * the switch, and worse, every `ret` after a stack swap returns to a
 * different place than the CPU's return stack buffer predicts. Here each
 * side does its bookkeeping around an inline switch and leaves by indirect
 * jump. Anything unusual (NULL, another state, a delegation, another
 * thread, a generator with extra work at every switch, an event other than
 * a plain yield) goes to the C implementation in src/core/gen.c, which remains
 * the reference: these paths do exactly what its fast path does.
 *
 * Who does what in a round trip:
 *   cg_send   checks g, sets *exc = NULL at once (every outcome writes
 *             *exc), marks g running, links it to the current context,
 *             switches in;
 *   cg_yield  checks g (running here, ev 0: nothing for the resumer to do
 *             after a yield), does the resumer's bookkeeping (current
 *             context back to the resumer, g suspended), and switches to
 *             the resumer with ZF set and the value in rsi (a C resumer
 *             gets it in rax from cg__switch_ret);
 *   cg_send   back with ZF set: stores *out, returns CG_YIELDED. Back with
 *             ZF clear, the body came through the C cg__switch (a yield
 *             that is not plain, a delegation, the end of the body): rdi is
 *             &g->sp there, the C code (cg__send_event) takes over.
 *
 * The body's frame, saved by cg_yield, continues straight in cg_yield's
 * caller: a send resumes it with the value in rax and nothing else to do.
 * A throw into a body parked that way raises the exception at the
 * cg_yield: cg_throw here switches in straight to cg__throw_in (src/core/exc.c)
 * on the body's stack, as if cg_yield had called it; the C code first makes
 * the frame continue in cg__yield_thrown_entry instead (cg__park_thrown). A
 * frame saved by the C cg__switch, in cg_yield_catch say, is left alone:
 * the C code there checks for a throw itself. ev 0 on a suspended generator means "plain, not
 * delegating, no work for the resumer after a yield": src/core/gen.c keeps it
 * so (resume() resets ev before every resume; a delegation keeps
 * EV_DELEGATE until the delegator is resumed; a canary, a pending free or
 * CG_OPT_FPENV make the resting value nonzero), so the send checks state
 * and ev with one 16-bit compare.
 *
 * Frames (see x86_64-sysv.S): [sp+0] r15 r14 r13 r12 rbx rbp, [sp+48] where
 * to continue. The resumer's frame saved by cg_send continues in cg_send
 * (label 3 of RESUME_FAST; in cg__send_start for a first resume) with out
 * pushed above it; exc
 * waits in g (CG_G_SEND_EXC) for the C code.
 */
#include "layout.h"
#include "x86_64-switch.h"

        .text

/* Resume g (%rdi) on the fast path, with %rax = what the body receives, and
 * return its answer to the caller. %rdx, %rcx: the caller's out and exc.
 * The CFA offset is 8 (function entry) where it starts. With start=1, g is
 * a fresh generator whose first frame cg_new left unwritten (g->sp NULL):
 * instead of loading a frame, the switch sets the stack pointer to the top
 * of g's stack and jumps into cg__entry with %rdi = g, as the frame that
 * cg__frame_ready would have written does (x86_64-sysv.S). With thrown=1,
 * g is parked in cg_yield and %rsi is an exception for it: the body
 * continues in cg__throw_in (see cg_throw). */
.macro RESUME_FAST start=0, thrown=0
        movq    cg__t@gottpoff(%rip), %r8
        movq    %fs:CG_T_CUR(%r8), %r9
        movb    $CG_STATE_RUNNING, CG_G_STATE(%rdi)
        movq    %r9, CG_G_PARENT(%rdi)
        movq    %rdi, %fs:CG_T_CUR(%r8)
        movq    %rcx, CG_G_SEND_EXC(%rdi)
        pushq   %rdx
        .cfi_adjust_cfa_offset 8
        /* Where to continue: pushed with lea and push, not `call`: a call
         * whose return is never a `ret` measured 1.9 ns more per round
         * trip (AMD Zen 5). */
        .cfi_remember_state
        leaq    3f(%rip), %r11
        pushq   %r11
        .cfi_adjust_cfa_offset 8
.if \start
        CG_SAVE CG_G_RETSP(%rdi)
        movq    CG_G_STACK(%rdi), %rcx
        movq    CG_STACK_HI(%rcx), %rsp
        .cfi_undefined rip      /* the body's side, where backtraces end */
        andq    $-16, %rsp      /* rsp as after cg__frame_ready's frame */
        xorl    %ebp, %ebp      /* end of the frame chain */
        jmp     cg__entry_g
.elseif \thrown
        /* The body continues in cg__throw_in(%rdi, %rsi), as if its
         * cg_yield had called it in its last act. */
        CG_SWITCH_REGS CG_G_RETSP(%rdi), CG_G_SP(%rdi)
        jmp     cg__throw_in
.else
        CG_SWITCH CG_G_RETSP(%rdi), CG_G_SP(%rdi)
.endif
        .cfi_restore_state
3:      /* The body switched back: with ZF set from cg_yield, the value in
         * %rsi; with ZF clear through cg__switch, in %rax. */
        jne     8f
        popq    %rdx
        .cfi_adjust_cfa_offset -8
        testq   %rdx, %rdx
        je      1f
        movq    %rsi, (%rdx)
1:      xorl    %eax, %eax
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rcx
        jmpq    *%rcx
        .cfi_adjust_cfa_offset 16
        .cfi_offset rip, -8
8:      /* Through cg__switch: %rdi = &g->sp. The C code's caller context
         * is the one the body started from. */
        leaq    -CG_G_SP(%rdi), %rdi
        movq    cg__t@gottpoff(%rip), %r8
        movq    CG_G_PARENT(%rdi), %r9
        movq    %r9, %fs:CG_T_CUR(%r8)
        movq    %rax, %rsi
        movq    CG_G_SEND_EXC(%rdi), %rcx
        popq    %rdx
        .cfi_adjust_cfa_offset -8
        jmp     cg__send_event
.endm

/* Makes the frame of a body parked in cg_yield (%r10 = its saved stack
 * pointer; cg__switch_ret frames are left alone) continue in
 * cg__yield_thrown_entry: the six registers move down one slot, the entry
 * goes above them, under the return address into the body. %r10 becomes
 * the new stack pointer; %r11 and %xmm0 are clobbered. */
.macro PARK_THROWN
        leaq    cg__switch_ret(%rip), %r11
        cmpq    %r11, 48(%r10)
        je      1f
        movups  0(%r10), %xmm0
        movups  %xmm0, -8(%r10)
        movups  16(%r10), %xmm0
        movups  %xmm0, 8(%r10)
        movups  32(%r10), %xmm0
        movups  %xmm0, 24(%r10)
        leaq    cg__yield_thrown_entry(%rip), %r11
        movq    %r11, 40(%r10)
        subq    $8, %r10
1:
.endm

/* cg_status cg_next(cg_gen *g, void **out, cg_exc **exc) */
        .globl  cg_next
        .type   cg_next, @function
        .p2align 4
cg_next:
        .cfi_startproc
        /* cg_send's checks, so that anything unusual goes to cg_next's own
         * C path (its errors name cg_next). */
        testq   %rdx, %rdx
        je      1f
        movq    $0, (%rdx)
1:      testq   %rdi, %rdi
        je      9f
        movq    %fs:0, %rax
        cmpq    %rax, CG_G_OWNER(%rdi)
        jne     9f
        cmpw    $CG_STATE_SUSPENDED, CG_G_STATE(%rdi) /* and ev 0 */
        je      6f
        cmpw    $CG_STATE_CREATED, CG_G_STATE(%rdi)
        jne     9f
        movq    %rdx, %rcx
        movq    %rsi, %rdx
        xorl    %esi, %esi
        jmp     cg__send_start
6:      movq    %rdx, %rcx
        movq    %rsi, %rdx
        xorl    %esi, %esi
        jmp     cg__send_resume
9:      jmp     cg__next_slow
        .cfi_endproc
        .size   cg_next, .-cg_next

/* cg_status cg_send(cg_gen *g, void *value, void **out, cg_exc **exc) */
        .globl  cg_send
        .type   cg_send, @function
        .p2align 4
cg_send:
        .cfi_startproc
        testq   %rcx, %rcx
        je      1f
        movq    $0, (%rcx)
1:      testq   %rdi, %rdi
        je      9f
        movq    %fs:0, %rax             /* the owner first: from another */
        cmpq    %rax, CG_G_OWNER(%rdi)  /* thread, the rest is changing */
        jne     9f
        cmpw    $CG_STATE_SUSPENDED, CG_G_STATE(%rdi) /* and ev 0 */
        jne     7f
/* Entered from cg_next too, its checks made. */
cg__send_resume:
        movq    %rsi, %rax
        RESUME_FAST
7:      /* A fresh generator (cg__send_start). Only None may be sent to it. */
        cmpw    $CG_STATE_CREATED, CG_G_STATE(%rdi)
        jne     9f
        testq   %rsi, %rsi
        je      cg__send_start
9:      jmp     cg__send_slow
        .cfi_endproc
        .size   cg_send, .-cg_send

/* The first resume of a fresh generator, cg_send's and cg_next's checks
 * made (its registers as at cg__send_resume). One made by new_slow has its
 * first frame written, one from cg_new's common case does not: the switch
 * starts the body at cg__entry without a frame to load, and no store in
 * cg_new or load here is spent on one. */
        .type   cg__send_start, @function
        .p2align 4
cg__send_start:
        .cfi_startproc
        cmpq    $0, CG_G_SP(%rdi)
        jne     cg__send_resume
        RESUME_FAST start=1
        .cfi_endproc
        .size   cg__send_start, .-cg__send_start

/* cg_status cg_throw(cg_gen *g, cg_exc *e, void **out, cg_exc **exc): a
 * send that delivers e, raised at the body's cg_yield. */
        .globl  cg_throw
        .type   cg_throw, @function
        .p2align 4
cg_throw:
        .cfi_startproc
        testq   %rcx, %rcx
        je      1f
        movq    $0, (%rcx)
1:      testq   %rdi, %rdi
        je      9f
        testq   %rsi, %rsi
        je      9f
        movq    %fs:0, %rax
        cmpq    %rax, CG_G_OWNER(%rdi)
        jne     9f
        cmpw    $CG_STATE_SUSPENDED, CG_G_STATE(%rdi) /* and ev 0 */
        jne     9f
        movq    CG_G_SP(%rdi), %r10
        leaq    cg__switch_ret(%rip), %r11
        cmpq    %r11, 48(%r10)
        je      5f
        /* Parked in cg_yield: its frame is left as it is, and the body
         * raises e there through cg__throw_in (g is &g->ctx, src/core/gen.c
         * checks it), with e in %rsi and nothing left in g for it. In this
         * build arrived() (src/core/gen.h) has nothing to do. */
        RESUME_FAST thrown=1
5:      /* Parked in C code, which checks for a throw after its switch. */
        movq    %rsi, CG_G_EXC(%rdi)
        movb    $CG_IN_THROW, CG_G_IN(%rdi)
        xorl    %eax, %eax
        xorl    %esi, %esi
        RESUME_FAST
9:      jmp     cg__throw_slow
        .cfi_endproc
        .size   cg_throw, .-cg_throw

/* void *cg__park_thrown(void *sp): PARK_THROWN for the C code (src/core/gen.c's
 * resume(), before it throws into a suspended body); returns the new sp. */
        .globl  cg__park_thrown
        .hidden cg__park_thrown
        .type   cg__park_thrown, @function
        .p2align 4
cg__park_thrown:
        .cfi_startproc
        movq    %rdi, %r10
        PARK_THROWN
        movq    %r10, %rax
        ret
        .cfi_endproc
        .size   cg__park_thrown, .-cg__park_thrown

/* Where a body parked in cg_yield continues when an exception is thrown
 * in: as if cg_yield had just been called (its caller's return address on
 * top), it raises the exception (src/core/gen.c). The body runs: the current
 * context is g. */
        .globl  cg__yield_thrown_entry
        .hidden cg__yield_thrown_entry
        .type   cg__yield_thrown_entry, @function
        .p2align 4
cg__yield_thrown_entry:
        .cfi_startproc
        movq    cg__t@gottpoff(%rip), %r8
        movq    %fs:CG_T_CUR(%r8), %rdi
        jmp     cg__yield_thrown
        .cfi_endproc
        .size   cg__yield_thrown_entry, .-cg__yield_thrown_entry

/* void *cg_yield(cg_gen *g, void *value) */
        .globl  cg_yield
        .type   cg_yield, @function
        .p2align 4
cg_yield:
        .cfi_startproc
        testq   %rdi, %rdi
        je      9f
        movq    cg__t@gottpoff(%rip), %r8
        cmpq    %rdi, %fs:CG_T_CUR(%r8)
        jne     9f
        cmpb    $0, CG_G_EV(%rdi)       /* ZF set from here to cg_send */
        jne     9f
        movq    CG_G_PARENT(%rdi), %r9
        movq    %r9, %fs:CG_T_CUR(%r8)
        /* state and ev (0, checked above) in one 16-bit store: cg_send reads
         * them with one 16-bit load, which the store can then forward to */
        movw    $CG_STATE_SUSPENDED, CG_G_STATE(%rdi)
        .cfi_remember_state
        CG_SWITCH CG_G_SP(%rdi), CG_G_RETSP(%rdi)
        .cfi_restore_state
9:      jmp     cg__yield_slow
        .cfi_endproc
        .size   cg_yield, .-cg_yield

        .section .note.GNU-stack,"",@progbits
