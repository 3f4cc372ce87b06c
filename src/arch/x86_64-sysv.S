/* x86_64-sysv.S: the context switch for the System V AMD64 ABI.
 *
 * ABI: System V Application Binary Interface, AMD64 Architecture Processor
 * Supplement (x86-64 psABI), section 3.2.1 "Registers": rbx, rbp, r12-r15
 * and rsp are callee-saved; section 3.2.3: the control bits of MXCSR and the
 * x87 FPU control word are callee-saved too, so they travel with each
 * context (a body that changes the rounding mode keeps it to itself).
 *
 *   void *cg__switch(void **save, void *new_sp, void *value)
 *       rdi = save, rsi = new_sp, rdx = value; returns value on the other side
 *
 * Saved frame, from the saved stack pointer upward:
 *   [sp+0]  MXCSR (4 bytes), x87 control word (2 bytes), 2 unused bytes
 *   [sp+8]  r15, r14, r13, r12, rbx, rbp
 *   [sp+56] return address
 *
 * The other side is entered with an indirect jump, not `ret`: a `ret` onto
 * another stack misses the return stack buffer on every switch. The
 * control words are stored first thing (below the stack pointer, in the red
 * zone that the pushes then cover) and nothing reads them back soon:
 * stmxcsr is slow on some CPUs (about 13 cycles on AMD Zen) and reading its
 * result at once would wait for it; loading them unconditionally on the
 * other side measured faster than comparing first.
 */
#include "layout.h"
#include "x86_64-switch.h"

        .text

        .globl  cg__switch
        .hidden cg__switch
        .type   cg__switch, @function
        .p2align 4
cg__switch:
        .cfi_startproc
        CG_SWITCH (%rdi), %rsi, %rdx
        .cfi_endproc
        .size   cg__switch, .-cg__switch

/* First code of every generator: cg__frame_ready leaves the generator in
 * rbx. The return address is marked undefined, so debuggers and unwinders
 * end the generator's backtrace here. A generator starts with the
 * floating-point control words of whoever resumes it first, as a called
 * function would: they are in the frame that side just saved. */
        .globl  cg__entry
        .hidden cg__entry
        .type   cg__entry, @function
        .p2align 4
cg__entry:
        .cfi_startproc
        .cfi_undefined rip
        movq    CG_G_RETSP(%rbx), %rax
        ldmxcsr (%rax)
        fldcw   4(%rax)
        movq    %rbx, %rdi
        call    cg__gen_main
        ud2
        .cfi_endproc
        .size   cg__entry, .-cg__entry

        .section .note.GNU-stack,"",@progbits
