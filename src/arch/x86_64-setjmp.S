/* x86_64-setjmp.S: setjmp and longjmp for CG_TRY, System V AMD64 ABI
 * (callee-saved: rbx, rbp, r12-r15, rsp; see x86_64-sysv.S). Built whatever
 * the context switch, since CG_TRY calls cg__try_enter in every build. */

        .text

/* setjmp and longjmp for CG_TRY. glibc's longjmp walks the thread's
 * cancellation handlers and checks the signal mask on every jump: most of
 * a caught throw's cost. Only the callee-saved registers, the stack pointer
 * and where to continue are needed. MXCSR and the x87 control word are not
 * saved, as glibc's setjmp does not save them: a longjmp never leaves its
 * stack, so it never crosses a switch, and a rounding mode that the code
 * between the CG_TRY and the raise changed stays changed, as C's longjmp
 * leaves the floating-point environment as it is at the jump (a generator's
 * private CG_OPT_FPENV environment is saved at its switches, not here).
 * Under sanitizers, libc's, which they intercept.
 *   buf: rbx rbp r12 r13 r14 r15 rsp rip
 *
 * int cg__try_enter(cg__try *t): what CG_TRY starts with, in one call:
 * pushes t on the running context's record chain (as src/core/exc.c's
 * cg__try_push does: kind try, phase body, no exception), then the setjmp
 * on t->jb. Offsets (checked in src/core/exc.c): cg__t.cur and a context's
 * chain at 0; in cg__try, rec.next 0, rec.kind 8, phase 16, exc 24, jb 32. */
        .globl  cg__try_enter
        .type   cg__try_enter, @function
        .p2align 4
cg__try_enter:
        .cfi_startproc
        movq    cg__t@gottpoff(%rip), %rax
        movq    %fs:0(%rax), %rax       /* the running context */
        testq   %rax, %rax
        je      2f
1:      movq    (%rax), %rdx
        movq    %rdx, 0(%rdi)           /* rec.next = chain */
        movl    $1, 8(%rdi)             /* rec.kind = CG__REC_TRY */
        movl    $0, 16(%rdi)            /* phase = CG__TRY_BODY */
        movq    $0, 24(%rdi)            /* exc = NULL */
        movq    %rdi, (%rax)            /* chain = t */
        leaq    32(%rdi), %rdi
#if CG_LIBC_SETJMP
        jmp     _setjmp@PLT
#else
        movq    (%rsp), %rax
        leaq    8(%rsp), %rdx
        movq    %rbx, 0(%rdi)
        movq    %rbp, 8(%rdi)
        movq    %r12, 16(%rdi)
        movq    %r13, 24(%rdi)
        movq    %r14, 32(%rdi)
        movq    %r15, 40(%rdi)
        movq    %rdx, 48(%rdi)
        movq    %rax, 56(%rdi)
        xorl    %eax, %eax
        ret
#endif
2:      /* The thread's first use of cogen: its state first. */
        pushq   %rdi
        .cfi_adjust_cfa_offset 8
        call    cg__thread_init
        popq    %rdi
        .cfi_adjust_cfa_offset -8
        movq    cg__t@gottpoff(%rip), %rax
        movq    %fs:0(%rax), %rax
        jmp     1b
        .cfi_endproc
        .size   cg__try_enter, .-cg__try_enter

        .globl  cg__longjmp
        .hidden cg__longjmp
        .type   cg__longjmp, @function
        .p2align 4
cg__longjmp:
        .cfi_startproc
#if CG_LIBC_SETJMP
        jmp     longjmp@PLT
#else
        movq    0(%rdi), %rbx
        movq    8(%rdi), %rbp
        movq    16(%rdi), %r12
        movq    24(%rdi), %r13
        movq    32(%rdi), %r14
        movq    40(%rdi), %r15
        movq    48(%rdi), %rsp
        movl    %esi, %eax
        jmpq    *56(%rdi)
#endif
        .cfi_endproc
        .size   cg__longjmp, .-cg__longjmp

        .section .note.GNU-stack,"",@progbits
