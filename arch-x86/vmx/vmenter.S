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
#include <asm/nospec-branch.h>
#include <asm/unwind_hints.h>
#include "kvmx-vmx-asm-offsets.h"

#define KVMX_VCPU_REGS	VMX_regs
#include "../vmenter-regs.S"

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
	KVMX_PUSH_HOST_REGS

	/* Keep @vmx for after the VM exit: the exit finds it at 0(%rsp). */
	push %rdi

	/* The VM exit restores this RSP. */
	mov $VMX_HOST_RSP_FIELD, %eax
	vmwrite %rsp, %rax

	/* CF = @launched; nothing below until the jump may change CF. */
	bt $0, %esi

	KVMX_LOAD_GUEST_GPRS
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

	KVMX_SAVE_GUEST_GPRS
	mov %rax, VCPU_RAX(%rdi)

	/* Return false: a VM exit. */
	xor %ebx, %ebx

.Lclear_regs:
	/* Leave no guest value in a register the host may speculate on. */
	KVMX_CLEAR_GUEST_GPRS
	xor %eax, %eax
	xor %edi, %edi

	/*
	 * Guest-controlled return predictions must not steer the host's RETs:
	 * stuff the RSB before the first unbalanced RET (SpectreRSB; with
	 * eIBRS, the one-entry PBRSB sequence), as KVM does after a VM exit.
	 */
	FILL_RETURN_BUFFER %rcx, RSB_CLEAR_LOOPS, X86_FEATURE_RSB_VMEXIT, \
			   X86_FEATURE_RSB_VMEXIT_LITE

	mov %ebx, %eax

	pop %rdi
	KVMX_POP_HOST_REGS
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
