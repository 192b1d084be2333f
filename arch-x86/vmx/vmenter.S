/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The VMLAUNCH/VMRESUME path.  Called with interrupts disabled; a physical
 * interrupt during the guest causes an external-interrupt VM exit and stays
 * pending until the C caller enables interrupts.  The VM exit lands on
 * __kvmx_vmx_vmexit (the VMCS's HOST_RIP) with the RSP written to HOST_RSP
 * below; the CPU restores the rest of the host's state from the VMCS.
 */
#include <linux/linkage.h>
#include <asm/asm.h>
#include <asm/bitsperlong.h>
#include <asm/nospec-branch.h>
#include <asm/unwind_hints.h>
#include "kvmx-vmx-asm-offsets.h"

#define WORD_SIZE	(BITS_PER_LONG / 8)

#define VCPU_RAX	(VMX_regs + 0 * WORD_SIZE)
#define VCPU_RCX	(VMX_regs + 1 * WORD_SIZE)
#define VCPU_RDX	(VMX_regs + 2 * WORD_SIZE)
#define VCPU_RBX	(VMX_regs + 3 * WORD_SIZE)
/* RSP travels in the VMCS. */
#define VCPU_RBP	(VMX_regs + 5 * WORD_SIZE)
#define VCPU_RSI	(VMX_regs + 6 * WORD_SIZE)
#define VCPU_RDI	(VMX_regs + 7 * WORD_SIZE)
#define VCPU_R8		(VMX_regs + 8 * WORD_SIZE)
#define VCPU_R9		(VMX_regs + 9 * WORD_SIZE)
#define VCPU_R10	(VMX_regs + 10 * WORD_SIZE)
#define VCPU_R11	(VMX_regs + 11 * WORD_SIZE)
#define VCPU_R12	(VMX_regs + 12 * WORD_SIZE)
#define VCPU_R13	(VMX_regs + 13 * WORD_SIZE)
#define VCPU_R14	(VMX_regs + 14 * WORD_SIZE)
#define VCPU_R15	(VMX_regs + 15 * WORD_SIZE)

	.text

/**
 * __kvmx_vmx_vcpu_run - run the guest until its next VM exit
 * @vmx:	struct vcpu_vmx *, in RDI
 * @launched:	bool, in SIL: VMRESUME instead of VMLAUNCH
 *
 * Returns false after a VM exit, true after VMfail (nothing of the guest
 * ran; the VM-instruction error field says why).
 */
SYM_FUNC_START(__kvmx_vmx_vcpu_run)
	push %rbp
	mov  %rsp, %rbp
	push %r15
	push %r14
	push %r13
	push %r12
	push %rbx

	/* Keep @vmx for after the VM exit: the exit finds it at 0(%rsp). */
	push %rdi

	/* The VM exit restores this RSP. */
	mov $VMX_HOST_RSP_FIELD, %eax
	vmwrite %rsp, %rax

	/* CF = @launched; nothing below until the jump may change CF. */
	bt $0, %esi

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
	mov VCPU_RAX(%rdi), %rax
	mov VCPU_RDI(%rdi), %rdi

	/* Leave no host data in CPU buffers for the guest (MDS); VERW keeps CF. */
	VM_CLEAR_CPU_BUFFERS

	jnc .Lvmlaunch

	/*
	 * A successful VMRESUME/VMLAUNCH continues at __kvmx_vmx_vmexit, by
	 * the VMCS's HOST_RIP: tell objtool to carry the unwind state there.
	 */
	UNWIND_HINT_SAVE

.Lvmresume:
	vmresume
	jmp .Lvmfail

.Lvmlaunch:
	vmlaunch
	jmp .Lvmfail

	_ASM_EXTABLE(.Lvmresume, .Lfixup)
	_ASM_EXTABLE(.Lvmlaunch, .Lfixup)

SYM_INNER_LABEL_ALIGN(__kvmx_vmx_vmexit, SYM_L_GLOBAL)
	UNWIND_HINT_RESTORE
	ENDBR

	/* Guest RDI goes via the stack; RDI becomes @vmx again. */
	push %rdi
	mov WORD_SIZE(%rsp), %rdi
	pop VCPU_RDI(%rdi)

	mov %rax, VCPU_RAX(%rdi)
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

	/* Return false: a VM exit. */
	xor %ebx, %ebx

.Lclear_regs:
	/* Leave no guest value in a register the host may speculate on. */
	xor %eax, %eax
	xor %ecx, %ecx
	xor %edx, %edx
	xor %ebp, %ebp
	xor %esi, %esi
	xor %edi, %edi
	xor %r8d,  %r8d
	xor %r9d,  %r9d
	xor %r10d, %r10d
	xor %r11d, %r11d
	xor %r12d, %r12d
	xor %r13d, %r13d
	xor %r14d, %r14d
	xor %r15d, %r15d

	/*
	 * Guest-controlled return predictions must not steer the host's RETs:
	 * stuff the RSB before the first unbalanced RET (SpectreRSB; with
	 * eIBRS, the one-entry PBRSB sequence), as KVM does after a VM exit.
	 */
	FILL_RETURN_BUFFER %rcx, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT, \
			   X86_FEATURE_RSB_VMEXIT_LITE

	mov %ebx, %eax

	pop %rdi
	pop %rbx
	pop %r12
	pop %r13
	pop %r14
	pop %r15
	pop %rbp
	RET

	/*
	 * VMLAUNCH/VMRESUME fault only when VMX was turned off under us by an
	 * emergency reboot: report VMfail then, crash loudly otherwise.
	 */
.Lfixup:
	cmpb $0, kvmx_vmx_rebooting(%rip)
	jne .Lvmfail
	ud2
.Lvmfail:
	mov $1, %ebx
	jmp .Lclear_regs
SYM_FUNC_END(__kvmx_vmx_vcpu_run)
