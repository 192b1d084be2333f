// SPDX-License-Identifier: GPL-2.0
/*
 * kvmx-intel: the Intel VMX backend.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/tlbflush.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/cpu.h>

struct kvmx_vmx_vm {
	struct kvmx_vm vm;
};

static int vmx_vm_init(struct kvmx_vm *vm)
{
	return 0;
}

static int vmx_check_hardware(void);

static const struct kvmx_vendor_ops vmx_ops = {
	.name = "intel-vmx",
	.check_hardware = vmx_check_hardware,
	.vm_size = sizeof(struct kvmx_vmx_vm),
	.vm_init = vmx_vm_init,
};

/*
 * Check that this CPU can give VMX to us: the CPUID bit (the kernel clears it
 * when IA32_FEATURE_CONTROL forbids VMX), the feature-control lock and enable
 * bits themselves (SDM: "Enabling and Entering VMX Operation"), and CR4.VMXE
 * clear, since a set VMXE means another hypervisor owns VMX on this CPU.
 */
static int vmx_check_hardware(void)
{
	u64 feature_control;

	if (!boot_cpu_has(X86_FEATURE_VMX)) {
		pr_err("this %s CPU has no usable VMX (VT-x)%s\n", kvmx_host_vendor_name(),
		       boot_cpu_has(X86_FEATURE_SVM) ? ": load kvmx-amd instead" : "");
		return -EOPNOTSUPP;
	}
	rdmsrl(MSR_IA32_FEAT_CTL, feature_control);
	if (!(feature_control & FEAT_CTL_LOCKED) ||
	    !(feature_control & FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX)) {
		pr_err("VMX is disabled by the firmware (IA32_FEATURE_CONTROL %#llx)\n",
		       feature_control);
		return -EOPNOTSUPP;
	}
	if (cr4_read_shadow() & X86_CR4_VMXE) {
		pr_err("VMX is in use by another hypervisor (CR4.VMXE set): unload kvm_intel first\n");
		return -EBUSY;
	}
	return 0;
}

static int __init vmx_init(void)
{
	return kvmx_register_vendor(&vmx_ops, THIS_MODULE);
}

static void __exit vmx_exit(void)
{
	kvmx_unregister_vendor(&vmx_ops);
}

module_init(vmx_init);
module_exit(vmx_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("kvmx maintainers");
MODULE_DESCRIPTION("kvmx: Intel VMX backend");
