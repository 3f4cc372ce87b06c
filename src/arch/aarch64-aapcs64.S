/* aarch64-aapcs64.S: the context switch for AArch64.
 *
 * ABI: Procedure Call Standard for the Arm 64-bit Architecture (AAPCS64),
 * section 6.1.1 "General-purpose registers": x19-x28, the frame pointer x29,
 * the link register x30 and sp are preserved across calls; section 6.1.2
 * "SIMD and Floating-Point registers": the low 64 bits of v8-v15 (d8-d15)
 * are.
 *
 * FPCR (rounding mode, flush-to-zero) is not switched. AAPCS64 makes its
 * mode fields preserved across *calls* (public interfaces), but
 * a generator switch is not treated as a call boundary for them: cg_send
 * and cg_yield hand the thread to another frame of the same computation, as
 * a Python generator's send() does, and generators run in their thread's
 * floating-point environment. A body that changes the rounding mode changes
 * it for the thread, as any function it called would. A generator made with
 * CG_OPT_FPENV gets a private FPCR instead, saved and loaded by src/core/gen_life.c
 * on the resumer's side of that generator's switches only (see
 * x86_64-sysv.S for the same choice there and what it saves).
 *
 *   void *cg__switch(void **save, void *new_sp, void *value)
 *       x0 = save, x1 = new_sp, x2 = value; returns value on the other side
 *
 * Saved frame, 160 bytes from the saved stack pointer upward:
 *   x19..x28, x29, x30 (return address), d8..d15
 */

        .text

        .globl  cg__switch
        .hidden cg__switch
        .type   cg__switch, %function
        .p2align 4
cg__switch:
        .cfi_startproc
        sub     sp, sp, #160
        .cfi_def_cfa_offset 160
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mov     x9, sp
        str     x9, [x0]
        mov     sp, x1
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        add     sp, sp, #160
        .cfi_def_cfa_offset 0
        mov     x0, x2
        ret
        .cfi_endproc
        .size   cg__switch, .-cg__switch

/* First code of every generator: cg__frame_ready leaves the generator in
 * x19. The return address is marked undefined, so debuggers and unwinders
 * end the generator's backtrace here. The body starts in the thread's FPCR
 * as it is, as a called function would. */
        .globl  cg__entry
        .hidden cg__entry
        .type   cg__entry, %function
        .p2align 4
cg__entry:
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x19
        bl      cg__gen_start           /* x0 = the body, x1 = its arg */
        mov     x16, x0
        mov     x0, x19
        blr     x16
        mov     x1, x0
        mov     x0, x19
        bl      cg__gen_return
        brk     #0
        .cfi_endproc
        .size   cg__entry, .-cg__entry

        .section .note.GNU-stack,"",%progbits
