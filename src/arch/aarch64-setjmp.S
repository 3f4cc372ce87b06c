/* aarch64-setjmp.S: setjmp and longjmp for CG_TRY, AAPCS64 (callee-saved:
 * x19-x28, x29, x30, sp, d8-d15; see aarch64-aapcs64.S). Built whatever the
 * context switch, since CG_TRY calls cg__setjmp in every build. */

        .text

/* setjmp and longjmp for CG_TRY (see x86_64-setjmp.S for why): the
 * callee-saved registers x19-x30, sp and d8-d15; not FPCR, as glibc's
 * setjmp does not save it either (x86_64-setjmp.S says why that is right
 * for CG_TRY). Under sanitizers, libc's.
 *   buf: x19..x28, x29, x30, sp, d8..d15 */
        .globl  cg__setjmp
        .type   cg__setjmp, %function
        .p2align 4
cg__setjmp:
        .cfi_startproc
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
        .cfi_endproc
        .size   cg__setjmp, .-cg__setjmp

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
