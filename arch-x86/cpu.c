// SPDX-License-Identifier: GPL-2.0
/*
 * x86 facts the core needs about the host CPU.
 */
#include <linux/kernel.h>
#include <asm/processor.h>

#include <kvmx/cpu.h>

const char *kvmx_host_vendor_name(void)
{
	switch (boot_cpu_data.x86_vendor) {
	case X86_VENDOR_AMD:
		return "AMD";
	case X86_VENDOR_HYGON:
		return "Hygon";
	case X86_VENDOR_INTEL:
		return "Intel";
	case X86_VENDOR_ZHAOXIN:
		return "Zhaoxin";
	case X86_VENDOR_CENTAUR:
		return "Centaur";
	default:
		return "unknown";
	}
}
EXPORT_SYMBOL_GPL(kvmx_host_vendor_name);
