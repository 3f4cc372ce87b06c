/* x86_64-switch.h: the one stack switch of the x86-64 assembly, shared by
 * cg__switch (x86_64-sysv.S) and the fast paths (x86_64-fast.S); the frame
 * it saves and why it is written this way are described in x86_64-sysv.S. */
#ifndef COGEN_X86_64_SWITCH_H
#define COGEN_X86_64_SWITCH_H

/* The first half of CG_SWITCH: save the running side's callee-saved
 * registers and store its stack pointer in SAVE. The caller continues on
 * a stack of its choosing (the start of a fresh body, x86_64-fast.S). */
.macro CG_SAVE save
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
        movq    %rsp, \save
.endm

/* Save the running side's callee-saved registers on its stack above the
 * return address already there, store its stack pointer in SAVE; continue
 * on the stack pointer LOAD, at the address on top of the frame there. No
 * flag and no register other than the six, %rsp and %rcx changes: the
 * caller passes values (%rax, %rdi, ZF) through. The CFI follows the
 * running side's frame, then the other side's: the caller must have the
 * CFA offset right where the macro starts. */
.macro CG_SWITCH save, load
        CG_SAVE \save
        movq    \load, %rsp
        .cfi_def_cfa_offset 56  /* the other side's frame, the same shape */
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
        popq    %rcx
        .cfi_adjust_cfa_offset -8
        .cfi_register rip, rcx
        jmpq    *%rcx
.endm

#endif
