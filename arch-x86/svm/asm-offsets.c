// SPDX-License-Identifier: GPL-2.0
/*
 * Offsets for vmenter.S, generated at build time into kvmx-asm-offsets.h
 * (see Kbuild), never typed by hand.
 */
#define COMPILE_OFFSETS

#include <linux/kbuild.h>

#include "svm.h"

static void __used svm_asm_offsets(void)
{
	OFFSET(SVM_vmcb_pa, vcpu_svm, vmcb_pa);
	OFFSET(SVM_host_vmcb_pa, vcpu_svm, host_vmcb_pa);
	OFFSET(SVM_regs, vcpu_svm, vcpu.regs);
}
