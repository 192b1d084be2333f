// SPDX-License-Identifier: GPL-2.0
/*
 * Offsets and VMCS field encodings for vmenter.S, generated at build time
 * into kvmx-vmx-asm-offsets.h (see Kbuild), never typed by hand.
 */
#define COMPILE_OFFSETS

#include <linux/kbuild.h>

#include "vmx.h"

static void __used vmx_asm_offsets(void)
{
	OFFSET(VMX_regs, vcpu_vmx, vcpu.regs);
	DEFINE(VMX_HOST_RSP_FIELD, HOST_RSP);
}
