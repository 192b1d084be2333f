// SPDX-License-Identifier: GPL-2.0
/*
 * kvmx-amd: the AMD SVM backend.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/svm.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/cpu.h>

struct kvmx_svm_vm {
	struct kvmx_vm vm;
};

static int svm_vm_init(struct kvmx_vm *vm)
{
	return 0;
}

static const struct kvmx_vendor_ops svm_ops = {
	.name = "amd-svm",
	.vm_size = sizeof(struct kvmx_svm_vm),
	.vm_init = svm_vm_init,
};

/*
 * Check that this CPU can give SVM to us: the CPUID bit, the firmware lock in
 * VM_CR (APM: "Enabling SVM"), and EFER.SVME clear, since a set SVME means
 * another hypervisor (in-tree kvm_amd, say) owns SVM on this CPU.
 */
static int svm_check_hardware(void)
{
	u64 vm_cr, efer;

	if (!boot_cpu_has(X86_FEATURE_SVM)) {
		pr_err("this %s CPU has no SVM (AMD-V)%s\n", kvmx_host_vendor_name(),
		       boot_cpu_has(X86_FEATURE_VMX) ? ": load kvmx-intel instead" : "");
		return -ENODEV;
	}
	rdmsrl(MSR_VM_CR, vm_cr);
	if (vm_cr & SVM_VM_CR_SVM_DIS_MASK) {
		pr_err("SVM is disabled by the firmware (VM_CR.SVMDIS)\n");
		return -EPERM;
	}
	rdmsrl(MSR_EFER, efer);
	if (efer & EFER_SVME) {
		pr_err("SVM is in use by another hypervisor (EFER.SVME set): unload kvm_amd first\n");
		return -EBUSY;
	}
	return 0;
}

static int __init svm_init(void)
{
	int r;

	r = svm_check_hardware();
	if (r)
		return r;
	return kvmx_register_vendor(&svm_ops, THIS_MODULE);
}

static void __exit svm_exit(void)
{
	kvmx_unregister_vendor(&svm_ops);
}

module_init(svm_init);
module_exit(svm_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("kvmx maintainers");
MODULE_DESCRIPTION("kvmx: AMD SVM backend");
