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
#include <asm/nospec-branch.h>
#include "kvmx-asm-offsets.h"

#define KVMX_VCPU_REGS	SVM_regs
#include "../vmenter-regs.S"

	.text

/**
 * __kvmx_svm_vcpu_run - run the guest until its next #VMEXIT
 * @svm:	struct vcpu_svm *, in RDI
 */
SYM_FUNC_START(__kvmx_svm_vcpu_run)
	KVMX_PUSH_HOST_REGS

	/* Keep @svm for after #VMEXIT. */
	push %rdi

	/* Host FS/GS/TR/LDTR, KernelGsBase and the syscall MSRs, then the guest's. */
	mov SVM_host_vmcb_pa(%rdi), %rax
1:	vmsave %rax
	mov SVM_vmcb_pa(%rdi), %rax
2:	vmload %rax

	KVMX_LOAD_GUEST_GPRS
	mov VCPU_RDI(%rdi), %rdi

	/* RAX holds the VMCB's physical address for VMRUN. */
	sti
3:	vmrun %rax
4:	cli

	/* RAX is the VMCB address again (host RAX comes back from VMRUN). */
	KVMX_SAVE_GUEST_GPRS

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
	KVMX_CLEAR_GUEST_GPRS
	xor %ebx, %ebx

	pop %rdi
	KVMX_POP_HOST_REGS
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
