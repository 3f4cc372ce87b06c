/* aarch64-setjmp.S: setjmp and longjmp for CG_TRY, AAPCS64 (callee-saved:
 * x19-x28, x29, x30, sp, d8-d15; see aarch64-aapcs64.S). Built whatever the
 * context switch, since CG_TRY calls cg__try_enter in every build. */

        .text

/* setjmp and longjmp for CG_TRY (see x86_64-setjmp.S for why): the
 * callee-saved registers x19-x30, sp and d8-d15; not FPCR, as glibc's
 * setjmp does not save it either (x86_64-setjmp.S says why that is right
 * for CG_TRY). Under sanitizers, libc's.
 *   buf: x19..x28, x29, x30, sp, d8..d15
 *
 * int cg__try_enter(cg__try *t): the record push and the setjmp that
 * CG_TRY starts with, in one call (x86_64-setjmp.S has the offsets). */
        .globl  cg__try_enter
        .type   cg__try_enter, %function
        .p2align 4
cg__try_enter:
        .cfi_startproc
        mrs     x9, tpidr_el0
        adrp    x10, :gottprel:cg__t
        ldr     x10, [x10, #:gottprel_lo12:cg__t]
        ldr     x11, [x9, x10]          /* the running context */
        cbz     x11, 2f
1:      ldr     x12, [x11]
        str     x12, [x0, #0]           /* rec.next = chain */
        mov     w13, #1
        str     w13, [x0, #8]           /* rec.kind = CG__REC_TRY */
        str     wzr, [x0, #16]          /* phase = CG__TRY_BODY */
        str     xzr, [x0, #24]          /* exc = NULL */
        str     x0, [x11]               /* chain = t */
        add     x0, x0, #32
#if CG_LIBC_SETJMP
        b       _setjmp
#else
        stp     x19, x20, [x0, #0]
        stp     x21, x22, [x0, #16]
        stp     x23, x24, [x0, #32]
        stp     x25, x26, [x0, #48]
        stp     x27, x28, [x0, #64]
        stp     x29, x30, [x0, #80]
        mov     x9, sp
        str     x9, [x0, #96]
        stp     d8, d9, [x0, #104]
        stp     d10, d11, [x0, #120]
        stp     d12, d13, [x0, #136]
        stp     d14, d15, [x0, #152]
        mov     w0, #0
        ret
#endif
2:      /* The thread's first use of cogen: its state first. */
        stp     x29, x30, [sp, #-16]!
        .cfi_def_cfa_offset 16
        .cfi_offset x29, -16
        .cfi_offset x30, -8
        mov     x29, sp
        str     x0, [sp, #-16]!
        .cfi_def_cfa_offset 32
        bl      cg__thread_init
        ldr     x0, [sp], #16
        .cfi_def_cfa_offset 16
        ldp     x29, x30, [sp], #16
        .cfi_def_cfa_offset 0
        .cfi_restore x29
        .cfi_restore x30
        mrs     x9, tpidr_el0
        adrp    x10, :gottprel:cg__t
        ldr     x10, [x10, #:gottprel_lo12:cg__t]
        ldr     x11, [x9, x10]
        b       1b
        .cfi_endproc
        .size   cg__try_enter, .-cg__try_enter

        .globl  cg__longjmp
        .hidden cg__longjmp
        .type   cg__longjmp, %function
        .p2align 4
cg__longjmp:
        .cfi_startproc
#if CG_LIBC_SETJMP
        b       longjmp
#else
        ldp     x19, x20, [x0, #0]
        ldp     x21, x22, [x0, #16]
        ldp     x23, x24, [x0, #32]
        ldp     x25, x26, [x0, #48]
        ldp     x27, x28, [x0, #64]
        ldp     x29, x30, [x0, #80]
        ldr     x9, [x0, #96]
        mov     sp, x9
        ldp     d8, d9, [x0, #104]
        ldp     d10, d11, [x0, #120]
        ldp     d12, d13, [x0, #136]
        ldp     d14, d15, [x0, #152]
        mov     w0, w1
        br      x30
#endif
        .cfi_endproc
        .size   cg__longjmp, .-cg__longjmp

        .section .note.GNU-stack,"",%progbits
