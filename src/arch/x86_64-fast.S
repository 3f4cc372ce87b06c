/* x86_64-fast.S: cg_send, cg_next, cg_throw and cg_yield for the common case, on the
 * System V AMD64 ABI (see x86_64-sysv.S for the registers a switch keeps).
 *
 * A send (or a throw) to a suspended generator that is not delegating, from its own
 * thread, and the plain yield that answers it, are the hot path of every
 * coroutine program. Written in C they cost two C frames on top of the
 * switch, and worse, every `ret` after a stack swap returns to a different
 * place than the CPU's return stack buffer predicts: two mispredicted
 * returns per round trip. Here both functions do their bookkeeping around an
 * inline switch and leave by indirect jump. Anything unusual (NULL, another
 * state, a delegation, another thread, an exception thrown in, an event
 * other than a plain yield) goes to the C implementation in src/gen.c,
 * which remains the reference: these paths do exactly what its fast path
 * does.
 *
 * Saved frames are the same as cg__switch's, so either side may be
 * suspended or resumed by the C code:
 *   [sp+0] MXCSR, x87 control word; [sp+8] r15 r14 r13 r12 rbx rbp;
 *   [sp+56] where to continue.
 */
#include "layout.h"
#include "x86_64-switch.h"

        .text

/* Resume g (%rdi) on the fast path and return its answer to the caller:
 * bookkeeping, an inline switch, and after the body switched back either
 * the plain yield's result or the C code's (cg__send_event). %rdx, %rcx:
 * the caller's out and exc. */
.macro RESUME_FAST
        movq    cg__t@gottpoff(%rip), %r8
        movq    %fs:CG_T_CUR(%r8), %r9
        movb    $CG_STATE_RUNNING, CG_G_STATE(%rdi)
        movq    %r9, CG_G_PARENT(%rdi)
        movq    %r9, CG_G_RESUMER(%rdi)
        movq    %rdi, %fs:CG_T_CUR(%r8)
        pushq   %rdx
        .cfi_adjust_cfa_offset 8
        pushq   %rcx
        .cfi_adjust_cfa_offset 8
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        call    1f
        /* The body switched back; %rax is what it passed. */
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        popq    %rdx
        .cfi_adjust_cfa_offset -8
        movq    cg__t@gottpoff(%rip), %r8
        movq    CG_G_PARENT(%rdi), %r9
        movq    %r9, %fs:CG_T_CUR(%r8)
        cmpb    $0, CG_G_EV(%rdi)
        jne     8f
        movb    $CG_STATE_SUSPENDED, CG_G_STATE(%rdi)
        testq   %rdx, %rdx
        je      2f
        movq    %rax, (%rdx)
2:      testq   %rcx, %rcx
        je      3f
        movq    $0, (%rcx)
3:      xorl    %eax, %eax
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rcx
        jmpq    *%rcx
        .cfi_adjust_cfa_offset 8
        .cfi_offset rip, -8
8:      movq    %rax, %rsi
        jmp     cg__send_event
1:      .cfi_remember_state
        .cfi_adjust_cfa_offset 32       /* the three pushes and the call */
        CG_SWITCH CG_G_RETSP(%rdi), CG_G_SP(%rdi), %rsi
        .cfi_restore_state
.endm

/* cg_status cg_next(cg_gen *g, void **out, cg_exc **exc) */
        .globl  cg_next
        .type   cg_next, @function
        .p2align 4
cg_next:
        .cfi_startproc
        /* cg_send's checks, so that anything unusual goes to cg_next's own
         * C path (its errors name cg_next). */
        testq   %rdi, %rdi
        je      9f
        movq    %fs:0, %rax
        cmpq    %rax, CG_G_OWNER(%rdi)
        jne     9f
        cmpb    $CG_STATE_SUSPENDED, CG_G_STATE(%rdi)
        je      6f
        cmpb    $CG_STATE_CREATED, CG_G_STATE(%rdi)
        jne     9f
6:      cmpq    $0, CG_G_YF(%rdi)
        jne     9f
        movq    %rdx, %rcx
        movq    %rsi, %rdx
        xorl    %esi, %esi
        jmp     cg__send_fast
9:      jmp     cg__next_slow
        .cfi_endproc
        .size   cg_next, .-cg_next

/* cg_status cg_send(cg_gen *g, void *value, void **out, cg_exc **exc) */
        .globl  cg_send
        .type   cg_send, @function
        .p2align 4
cg_send:
        .cfi_startproc
        testq   %rdi, %rdi
        je      9f
        movq    %fs:0, %rax             /* the owner first: from another */
        cmpq    %rax, CG_G_OWNER(%rdi)  /* thread, the rest is changing */
        jne     9f
        cmpb    $CG_STATE_SUSPENDED, CG_G_STATE(%rdi)
        jne     7f
6:      cmpq    $0, CG_G_YF(%rdi)
        jne     9f
/* Entered from cg_next too, its checks made. */
cg__send_fast:
        RESUME_FAST
7:      /* A fresh generator starts the same way: its stack holds a saved
         * frame that continues in cg__entry. Only None may be sent to it. */
        cmpb    $CG_STATE_CREATED, CG_G_STATE(%rdi)
        jne     9f
        testq   %rsi, %rsi
        je      6b
9:      jmp     cg__send_slow
        .cfi_endproc
        .size   cg_send, .-cg_send

/* cg_status cg_throw(cg_gen *g, cg_exc *e, void **out, cg_exc **exc): a
 * send that delivers e (the body's cg_yield sees CG_G_IN and raises it). */
        .globl  cg_throw
        .type   cg_throw, @function
        .p2align 4
cg_throw:
        .cfi_startproc
        testq   %rdi, %rdi
        je      9f
        testq   %rsi, %rsi
        je      9f
        movq    %fs:0, %rax
        cmpq    %rax, CG_G_OWNER(%rdi)
        jne     9f
        cmpb    $CG_STATE_SUSPENDED, CG_G_STATE(%rdi)
        jne     9f
        cmpq    $0, CG_G_YF(%rdi)
        jne     9f
        movq    %rsi, CG_G_EXC(%rdi)
        movb    $CG_IN_THROW, CG_G_IN(%rdi)
        RESUME_FAST
9:      jmp     cg__throw_slow
        .cfi_endproc
        .size   cg_throw, .-cg_throw

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
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        call    1f
        /* Resumed; %rax is the value sent in. */
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        cmpb    $0, CG_G_IN(%rdi)
        jne     8f
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rcx
        jmpq    *%rcx
        .cfi_adjust_cfa_offset 8
        .cfi_offset rip, -8
8:      jmp     cg__yield_thrown
9:      jmp     cg__yield_slow
1:      .cfi_adjust_cfa_offset 16       /* the push and the call */
        CG_SWITCH CG_G_SP(%rdi), CG_G_RETSP(%rdi), %rsi
        .cfi_endproc
        .size   cg_yield, .-cg_yield

        .section .note.GNU-stack,"",@progbits
