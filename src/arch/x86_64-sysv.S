/* x86_64-sysv.S: the context switch for the System V AMD64 ABI.
 *
 * ABI: System V Application Binary Interface, AMD64 Architecture Processor
 * Supplement (x86-64 psABI), section 3.2.1 "Registers": rbx, rbp, r12-r15
 * and rsp are callee-saved, and are what a switch saves.
 *
 * Floating-point environment. The same section (figure 3.4, "Register
 * Usage") makes the control bits of MXCSR and the x87 control word
 * callee-saved too: a *called function* that
 * changes the rounding mode must put it back before it returns. A generator
 * switch is not treated as a call boundary for them: cg_send and cg_yield
 * do not return to their caller's state in that sense, they hand the
 * thread to another frame of the same computation, as a Python generator's
 * send() does (generators run in their thread's state). So by default
 * neither side saves or loads MXCSR or the x87 control word: a body that
 * changes the rounding mode changes it for the thread, as any function it
 * called would, and sees the changes its resumer makes. That is also what
 * makes a switch cheap: stmxcsr alone costs about 13 cycles on AMD Zen,
 * and an ldmxcsr/fldcw pair before an indirect jump costs tens of
 * nanoseconds on recent Intel cores. A generator made with CG_OPT_FPENV
 * gets a private environment instead: src/core/gen_life.c saves and loads it on the
 * resumer's side, around that generator's switches only, and such a
 * generator never takes the fast paths (x86_64-fast.S).
 *
 *   void *cg__switch(void **save, void *new_sp, void *value)
 *       rdi = save, rsi = new_sp, rdx = value; returns value on the other side
 *
 * Saved frame, from the saved stack pointer upward:
 *   [sp+0]  r15, r14, r13, r12, rbx, rbp
 *   [sp+48] where to continue
 * A frame saved by cg__switch continues at cg__switch_ret, which returns to
 * cg__switch's caller (the address above it); one saved by the assembly
 * cg_yield continues right in cg_yield's caller (x86_64-fast.S); a fresh
 * stack's continues in cg__entry (switch.c).
 *
 * The other side is entered with an indirect jump, not `ret`: a `ret` onto
 * another stack misses the return stack buffer on every switch.
 *
 * What the other side finds besides the value in rax: ZF clear and rdi =
 * save (&g->sp when a body switches back to its resumer). cg_send's fast
 * path reads both when a body comes back through here instead of the
 * assembly cg_yield (x86_64-fast.S). The other way round, the assembly
 * paths arrive at cg__switch_ret with ZF set and the value in rsi (rax too,
 * except from cg_yield, which leaves rax alone).
 */
#include "x86_64-switch.h"

        .text

        .globl  cg__switch
        .hidden cg__switch
        .globl  cg__switch_ret
        .hidden cg__switch_ret
        .type   cg__switch, @function
        .p2align 4
cg__switch:
        .cfi_startproc
        testq   %rdi, %rdi              /* ZF = 0: not the assembly cg_yield */
        movq    %rdx, %rax
        .cfi_remember_state
        leaq    cg__switch_ret(%rip), %rcx /* not `call`: see x86_64-fast.S */
        pushq   %rcx
        .cfi_adjust_cfa_offset 8
        CG_SWITCH (%rdi), %rsi
        .cfi_restore_state
cg__switch_ret:
        cmovzq  %rsi, %rax              /* from the assembly cg_yield: value in rsi */
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rcx
        jmpq    *%rcx
        .cfi_endproc
        .size   cg__switch, .-cg__switch

/* First code of every generator: cg__frame_ready leaves the generator in
 * rbx, and rsp at the top of the stack (the fast path's first resume
 * enters at cg__entry_g instead, with the generator in rdi). The return
 * address is marked undefined, so debuggers and unwinders end the
 * generator's backtrace here. It calls the body itself (src/core/upcalls.h),
 * so that no frame sits between the two: the body's return address is the
 * stack's top word. rbx, callee-saved, still holds the generator when the
 * body returns. The body starts in the thread's
 * floating-point environment as it is (see above); a CG_OPT_FPENV
 * generator's first resumer does not load one either, so it too starts
 * with its first resumer's, as a called function would. */
        .globl  cg__entry
        .hidden cg__entry
        .type   cg__entry, @function
        .p2align 4
cg__entry:
        .cfi_startproc
        .cfi_undefined rip
        movq    %rbx, %rdi
/* Where the fast path's first resume enters with the generator in rdi
 * (x86_64-fast.S, RESUME_FAST start=1), having no frame to load rbx from. */
        .globl  cg__entry_g
        .hidden cg__entry_g
cg__entry_g:
        movq    %rdi, %rbx
        call    cg__gen_start           /* rax = the body, rdx = its arg */
        movq    %rbx, %rdi
        movq    %rdx, %rsi
        call    *%rax
        movq    %rbx, %rdi
        movq    %rax, %rsi
        call    cg__gen_return
        ud2
        .cfi_endproc
        .size   cg__entry, .-cg__entry

        .section .note.GNU-stack,"",@progbits
