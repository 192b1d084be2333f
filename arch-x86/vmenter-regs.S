/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest GPR switch that svm/vmenter.S and vmx/vmenter.S share: macros
 * only, #included by them and never assembled on its own (.S, not .h, so
 * checkpatch reads it as assembly).  The includer first defines
 * KVMX_VCPU_REGS: the offset of vcpu.regs[] in its vCPU structure, from its
 * asm-offsets.c.
 *
 * What differs stays with each vendor: RAX (SVM's VMRUN takes the VMCB
 * address in it and the guest's RAX travels in the VMCB; VMX switches it
 * next to these macros), VMSAVE/VMLOAD vs HOST_RSP/HOST_RIP in the VMCS,
 * and which registers carry values after the exit (so clear them too).
 */
#ifndef _KVMX_X86_VMENTER_REGS_S
#define _KVMX_X86_VMENTER_REGS_S

#include <asm/bitsperlong.h>

#define WORD_SIZE	(BITS_PER_LONG / 8)

/* struct kvmx_vcpu's regs[], indexed as enum kvmx_reg; RSP travels in the VMCB/VMCS. */
#define VCPU_RAX	(KVMX_VCPU_REGS + 0 * WORD_SIZE)
#define VCPU_RCX	(KVMX_VCPU_REGS + 1 * WORD_SIZE)
#define VCPU_RDX	(KVMX_VCPU_REGS + 2 * WORD_SIZE)
#define VCPU_RBX	(KVMX_VCPU_REGS + 3 * WORD_SIZE)
#define VCPU_RBP	(KVMX_VCPU_REGS + 5 * WORD_SIZE)
#define VCPU_RSI	(KVMX_VCPU_REGS + 6 * WORD_SIZE)
#define VCPU_RDI	(KVMX_VCPU_REGS + 7 * WORD_SIZE)
#define VCPU_R8		(KVMX_VCPU_REGS + 8 * WORD_SIZE)
#define VCPU_R9		(KVMX_VCPU_REGS + 9 * WORD_SIZE)
#define VCPU_R10	(KVMX_VCPU_REGS + 10 * WORD_SIZE)
#define VCPU_R11	(KVMX_VCPU_REGS + 11 * WORD_SIZE)
#define VCPU_R12	(KVMX_VCPU_REGS + 12 * WORD_SIZE)
#define VCPU_R13	(KVMX_VCPU_REGS + 13 * WORD_SIZE)
#define VCPU_R14	(KVMX_VCPU_REGS + 14 * WORD_SIZE)
#define VCPU_R15	(KVMX_VCPU_REGS + 15 * WORD_SIZE)

/* A frame, and the host's callee-saved registers. */
.macro KVMX_PUSH_HOST_REGS
	push %rbp
	mov  %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx
.endm

.macro KVMX_POP_HOST_REGS
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
.endm

/*
 * Load the guest's GPRs from the vCPU at RDI, but RAX, RSP and RDI itself:
 * the caller loads RAX if it switches it, then RDI last.
 */
.macro KVMX_LOAD_GUEST_GPRS
	mov VCPU_RCX(%rdi), %rcx
	mov VCPU_RDX(%rdi), %rdx
	mov VCPU_RBX(%rdi), %rbx
	mov VCPU_RBP(%rdi), %rbp
	mov VCPU_RSI(%rdi), %rsi
	mov VCPU_R8(%rdi),  %r8
	mov VCPU_R9(%rdi),  %r9
	mov VCPU_R10(%rdi), %r10
	mov VCPU_R11(%rdi), %r11
	mov VCPU_R12(%rdi), %r12
	mov VCPU_R13(%rdi), %r13
	mov VCPU_R14(%rdi), %r14
	mov VCPU_R15(%rdi), %r15
.endm

/*
 * After the exit, with the vCPU pointer at 0(%rsp): the guest's RDI goes via
 * the stack and RDI becomes the vCPU again; then every GPR but RAX and RSP.
 */
.macro KVMX_SAVE_GUEST_GPRS
	push %rdi
	mov WORD_SIZE(%rsp), %rdi
	pop VCPU_RDI(%rdi)

	mov %rcx, VCPU_RCX(%rdi)
	mov %rdx, VCPU_RDX(%rdi)
	mov %rbx, VCPU_RBX(%rdi)
	mov %rbp, VCPU_RBP(%rdi)
	mov %rsi, VCPU_RSI(%rdi)
	mov %r8,  VCPU_R8(%rdi)
	mov %r9,  VCPU_R9(%rdi)
	mov %r10, VCPU_R10(%rdi)
	mov %r11, VCPU_R11(%rdi)
	mov %r12, VCPU_R12(%rdi)
	mov %r13, VCPU_R13(%rdi)
	mov %r14, VCPU_R14(%rdi)
	mov %r15, VCPU_R15(%rdi)
.endm

/*
 * Leave no guest value in a register the host may speculate on: those that
 * neither backend uses after the exit.  The caller clears what else it may.
 */
.macro KVMX_CLEAR_GUEST_GPRS
	xor %ecx, %ecx
	xor %edx, %edx
	xor %ebp, %ebp
	xor %esi, %esi
	xor %r8d,  %r8d
	xor %r9d,  %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d
.endm

#endif /* _KVMX_X86_VMENTER_REGS_S */
