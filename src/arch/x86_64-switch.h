/* x86_64-switch.h: the one stack switch of the x86-64 assembly, shared by
 * cg__switch (x86_64-sysv.S) and the fast paths (x86_64-fast.S); that file
 * describes the frame it saves and why it is written this way. */
#ifndef COGEN_X86_64_SWITCH_H
#define COGEN_X86_64_SWITCH_H

/* Save the running side in a switch frame and store its stack pointer in
 * SAVE; continue on the stack pointer LOAD, with %rax = VAL. The control
 * words are stored first (below the stack pointer, in the red zone the
 * pushes then cover) so that nothing waits for the slow stmxcsr. The CFI
 * follows the running side's frame, then the other side's: the caller must
 * have the CFA offset right where the macro starts. */
.macro CG_SWITCH save, load, val
        stmxcsr -56(%rsp)
        fnstcw  -52(%rsp)
        pushq   %rbp
        .cfi_adjust_cfa_offset 8
        pushq   %rbx
        .cfi_adjust_cfa_offset 8
        pushq   %r12
        .cfi_adjust_cfa_offset 8
        pushq   %r13
        .cfi_adjust_cfa_offset 8
        pushq   %r14
        .cfi_adjust_cfa_offset 8
        pushq   %r15
        .cfi_adjust_cfa_offset 8
        subq    $8, %rsp
        .cfi_adjust_cfa_offset 8
        movq    %rsp, \save
        movq    \load, %rsp
        .cfi_def_cfa_offset 64  /* the other side's frame, the same shape */
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        .cfi_adjust_cfa_offset -8
        popq    %r15
        .cfi_adjust_cfa_offset -8
        popq    %r14
        .cfi_adjust_cfa_offset -8
        popq    %r13
        .cfi_adjust_cfa_offset -8
        popq    %r12
        .cfi_adjust_cfa_offset -8
        popq    %rbx
        .cfi_adjust_cfa_offset -8
        popq    %rbp
        .cfi_adjust_cfa_offset -8
        movq    \val, %rax
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rcx
        jmpq    *%rcx
.endm

#endif
