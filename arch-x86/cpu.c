// SPDX-License-Identifier: GPL-2.0
/*
 * x86 facts the core needs about the host CPU, and the guest's CPUID.
 */
#include <linux/kernel.h>
#include <asm/processor.h>
#include <asm/cpufeature.h>

#include <kvmx/kvmx_host.h>
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

/**
 * kvmx_emulate_cpuid - execute CPUID for the guest
 * @vcpu: the vCPU; EAX and ECX select the leaf, EAX-EDX receive it
 * @cr4_osxsave: the guest's CR4.OSXSAVE, which CPUID.1:ECX.OSXSAVE mirrors
 *
 * Leaves missing from the vCPU's KVM_SET_CPUID2 table read as zeros.  The
 * caller skips the instruction.
 */
void kvmx_emulate_cpuid(struct kvmx_vcpu *vcpu, bool cr4_osxsave)
{
	u32 fn = vcpu->regs[KVMX_RAX], idx = vcpu->regs[KVMX_RCX];
	const struct kvm_cpuid_entry2 *e = kvmx_find_cpuid_entry(vcpu, fn, idx);
	u32 eax = 0, ebx = 0, ecx = 0, edx = 0;

	if (e) {
		eax = e->eax;
		ebx = e->ebx;
		ecx = e->ecx;
		edx = e->edx;
		/* OSXSAVE mirrors CR4, as on hardware. */
		if (fn == 1) {
			ecx &= ~BIT(X86_FEATURE_OSXSAVE & 31);
			if (cr4_osxsave)
				ecx |= BIT(X86_FEATURE_OSXSAVE & 31);
		}
	}
	vcpu->regs[KVMX_RAX] = eax;
	vcpu->regs[KVMX_RBX] = ebx;
	vcpu->regs[KVMX_RCX] = ecx;
	vcpu->regs[KVMX_RDX] = edx;
}
EXPORT_SYMBOL_GPL(kvmx_emulate_cpuid);
