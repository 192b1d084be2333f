/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VMRUN path.  Called with interrupts disabled and GIF clear (CLGI), so
 * nothing can run between loading the guest's segment state and VMRUN, or
 * between #VMEXIT and reloading the host's: the host's GS base (per-CPU data)
 * is not in place there.  The STI before VMRUN lets a physical interrupt
 * cause an INTR #VMEXIT (the guest runs with the host's IF set); GIF = 0
 * keeps it pending until the C caller executes STGI.
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/bitsperlong.h>
#include <asm/nospec-branch.h>
#include "kvmx-asm-offsets.h"

#define WORD_SIZE	(BITS_PER_LONG / 8)

#define VCPU_RAX	(SVM_regs + 0 * WORD_SIZE)
#define VCPU_RCX	(SVM_regs + 1 * WORD_SIZE)
#define VCPU_RDX	(SVM_regs + 2 * WORD_SIZE)
#define VCPU_RBX	(SVM_regs + 3 * WORD_SIZE)
/* RSP and RAX travel in the VMCB. */
#define VCPU_RBP	(SVM_regs + 5 * WORD_SIZE)
#define VCPU_RSI	(SVM_regs + 6 * WORD_SIZE)
#define VCPU_RDI	(SVM_regs + 7 * WORD_SIZE)
#define VCPU_R8		(SVM_regs + 8 * WORD_SIZE)
#define VCPU_R9		(SVM_regs + 9 * WORD_SIZE)
#define VCPU_R10	(SVM_regs + 10 * WORD_SIZE)
#define VCPU_R11	(SVM_regs + 11 * WORD_SIZE)
#define VCPU_R12	(SVM_regs + 12 * WORD_SIZE)
#define VCPU_R13	(SVM_regs + 13 * WORD_SIZE)
#define VCPU_R14	(SVM_regs + 14 * WORD_SIZE)
#define VCPU_R15	(SVM_regs + 15 * WORD_SIZE)

	.text

/**
 * __kvmx_svm_vcpu_run - run the guest until its next #VMEXIT
 * @svm:	struct vcpu_svm *, in RDI
 */
SYM_FUNC_START(__kvmx_svm_vcpu_run)
	push %rbp
	mov  %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx

	/* Keep @svm for after #VMEXIT. */
	push %rdi

	/* Host FS/GS/TR/LDTR, KernelGsBase and the syscall MSRs, then the guest's. */
	mov SVM_host_vmcb_pa(%rdi), %rax
1:	vmsave %rax
	mov SVM_vmcb_pa(%rdi), %rax
2:	vmload %rax

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
	mov VCPU_RDI(%rdi), %rdi

	/* RAX holds the VMCB's physical address for VMRUN. */
	sti
3:	vmrun %rax
4:	cli

	/* RAX is the VMCB address again (host RAX comes back from VMRUN). */
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

	mov SVM_vmcb_pa(%rdi), %rax
5:	vmsave %rax
	mov SVM_host_vmcb_pa(%rdi), %rax
6:	vmload %rax
7:

	/*
	 * Guest-controlled return predictions must not steer the host's RETs:
	 * stuff the RSB (as KVM does after #VMEXIT, for SpectreRSB).
	 */
	FILL_RETURN_BUFFER %rax, RSB_CLEAR_LOOPS, X86_FEATURE_RETPOLINE

	/* Leave no guest value in a register the host may speculate on. */
	xor %ecx, %ecx
	xor %edx, %edx
	xor %ebx, %ebx
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

	pop %rdi
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET

	/*
	 * An SVM instruction faults only when SVM was turned off under us by
	 * an emergency reboot: carry on then, crash loudly otherwise.
	 */
10:	cmpb $0, kvmx_svm_rebooting(%rip)
	jne 2b
	ud2
20:	cmpb $0, kvmx_svm_rebooting(%rip)
	jne 3b
	ud2
30:	cmpb $0, kvmx_svm_rebooting(%rip)
	jne 4b
	ud2
50:	cmpb $0, kvmx_svm_rebooting(%rip)
	jne 6b
	ud2
60:	cmpb $0, kvmx_svm_rebooting(%rip)
	jne 7b
	ud2

	_ASM_EXTABLE(1b, 10b)
	_ASM_EXTABLE(2b, 20b)
	_ASM_EXTABLE(3b, 30b)
	_ASM_EXTABLE(5b, 50b)
	_ASM_EXTABLE(6b, 60b)
SYM_FUNC_END(__kvmx_svm_vcpu_run)
