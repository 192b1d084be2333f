// SPDX-License-Identifier: GPL-2.0
/*
 * kvmx core: the /dev/kvmx node, system ioctls and backend registration.
 *
 * The core module alone offers nothing.  A vendor module (kvmx-amd or
 * kvmx-intel) checks its hardware and registers an ops table; only then does
 * the device node appear, and it disappears again before the backend goes.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/miscdevice.h>
#include <linux/fs.h>
#include <linux/mutex.h>
#include <linux/cpu.h>
#include <linux/cpuhotplug.h>
#include <linux/percpu.h>
#include <linux/reboot.h>
#include <linux/kvm.h>
#include <linux/kvmx.h>
#include <asm/reboot.h>

#include "core.h"

bool kvmx_tdp_default = true;
module_param_named(tdp, kvmx_tdp_default, bool, 0444);
MODULE_PARM_DESC(tdp, "Default MMU mode of new VMs: 1 = NPT/EPT, 0 = shadow paging");

static DEFINE_MUTEX(kvmx_vendor_lock);
const struct kvmx_vendor_ops *kvmx_vendor;

/*
 * Virtualization is on for every online CPU while at least one VM exists, as
 * KVM's hardware_enable_all() does: a VM-less kvmx leaves SVM/VMX to others.
 *
 * kvmx_hw_lock protects kvmx_hw_users and kvmx_rebooting; it nests inside
 * the CPU hotplug lock (cpus_read_lock() here, the hotplug callbacks run
 * with it held for writing).  kvmx_hw_enabled is per CPU and written only by
 * its own CPU with preemption disabled.
 */
static DEFINE_MUTEX(kvmx_hw_lock);
static int kvmx_hw_users;
static bool kvmx_rebooting;
static DEFINE_PER_CPU(bool, kvmx_hw_enabled);
static atomic_t kvmx_hw_enable_failed;
static enum cpuhp_state kvmx_cpuhp_state;

static void kvmx_hw_enable_this_cpu(void *unused)
{
	if (__this_cpu_read(kvmx_hw_enabled))
		return;
	if (kvmx_vendor->hardware_enable()) {
		atomic_inc(&kvmx_hw_enable_failed);
		return;
	}
	__this_cpu_write(kvmx_hw_enabled, true);
}

static void kvmx_hw_disable_this_cpu(void *unused)
{
	if (!__this_cpu_read(kvmx_hw_enabled))
		return;
	kvmx_vendor->hardware_disable();
	__this_cpu_write(kvmx_hw_enabled, false);
}

/* Turn virtualization off everywhere, then give up the emergency callback. */
static void kvmx_hw_disable_all(void)
{
	lockdep_assert_held(&kvmx_hw_lock);
	on_each_cpu(kvmx_hw_disable_this_cpu, NULL, 1);
	if (kvmx_vendor->emergency_disable)
		cpu_emergency_unregister_virt_callback(kvmx_vendor->emergency_disable);
}

/* Called for every new VM; undone by kvmx_hw_put(). */
int kvmx_hw_get(void)
{
	int r = 0;

	/* A backend that runs no vCPUs never needs SVM/VMX turned on. */
	if (!kvmx_vendor_has_vcpus())
		return 0;
	cpus_read_lock();
	mutex_lock(&kvmx_hw_lock);
	if (kvmx_rebooting) {
		r = -EBUSY;
		goto out;
	}
	if (kvmx_hw_users++ == 0) {
		/* Before any CPU turns it on: a crash from here on turns it off. */
		if (kvmx_vendor->emergency_disable)
			cpu_emergency_register_virt_callback(kvmx_vendor->emergency_disable);
		atomic_set(&kvmx_hw_enable_failed, 0);
		on_each_cpu(kvmx_hw_enable_this_cpu, NULL, 1);
		if (atomic_read(&kvmx_hw_enable_failed)) {
			kvmx_hw_disable_all();
			kvmx_hw_users--;
			r = -EBUSY;
		}
	}
out:
	mutex_unlock(&kvmx_hw_lock);
	cpus_read_unlock();
	return r;
}

void kvmx_hw_put(void)
{
	if (!kvmx_vendor_has_vcpus())
		return;
	cpus_read_lock();
	mutex_lock(&kvmx_hw_lock);
	if (!WARN_ON_ONCE(kvmx_hw_users <= 0) && --kvmx_hw_users == 0)
		kvmx_hw_disable_all();
	mutex_unlock(&kvmx_hw_lock);
	cpus_read_unlock();
}

/* CPU hotplug: a CPU coming online joins in while VMs exist. */
static int kvmx_cpu_online(unsigned int cpu)
{
	int r = 0;

	mutex_lock(&kvmx_hw_lock);
	if (kvmx_hw_users && !kvmx_rebooting) {
		atomic_set(&kvmx_hw_enable_failed, 0);
		local_irq_disable();
		kvmx_hw_enable_this_cpu(NULL);
		local_irq_enable();
		if (atomic_read(&kvmx_hw_enable_failed))
			r = -EIO;
	}
	mutex_unlock(&kvmx_hw_lock);
	return r;
}

static int kvmx_cpu_offline(unsigned int cpu)
{
	mutex_lock(&kvmx_hw_lock);
	local_irq_disable();
	kvmx_hw_disable_this_cpu(NULL);
	local_irq_enable();
	mutex_unlock(&kvmx_hw_lock);
	return 0;
}

/*
 * Reboot and kexec: turn virtualization off everywhere and refuse new VMs.
 * The emergency paths (crash, NMI shutdown) are the backend's business: it
 * registers cpu_emergency_register_virt_callback() itself.
 */
static int kvmx_reboot(struct notifier_block *nb, unsigned long code, void *unused)
{
	mutex_lock(&kvmx_hw_lock);
	kvmx_rebooting = true;
	if (kvmx_hw_users)
		on_each_cpu(kvmx_hw_disable_this_cpu, NULL, 1);
	mutex_unlock(&kvmx_hw_lock);
	return NOTIFY_OK;
}

static struct notifier_block kvmx_reboot_nb = {
	.notifier_call = kvmx_reboot,
	.priority = 0,
};

/* Capabilities of VMs and memory, whether or not the backend runs vCPUs. */
static long kvmx_check_vm_extension(long cap)
{
	switch (cap) {
	case KVM_CAP_CHECK_EXTENSION_VM:
	case KVM_CAP_USER_MEMORY:
	case KVM_CAP_DESTROY_MEMORY_REGION_WORKS:
	case KVM_CAP_JOIN_MEMORY_REGIONS_WORKS:
	case KVM_CAP_SET_TSS_ADDR:
	case KVM_CAP_SET_IDENTITY_MAP_ADDR:
	case KVM_CAP_READONLY_MEM:
	case KVM_CAP_BINARY_STATS_FD:
		return 1;
	case KVM_CAP_NR_MEMSLOTS:
		return KVMX_USER_MEM_SLOTS;
	case KVMX_CAP_KVMX:
		return KVMX_ABI_REVISION;
	default:
		return 0;
	}
}

/* Capabilities that only a backend running vCPUs has. */
static long kvmx_check_vcpu_extension(long cap)
{
	switch (cap) {
	case KVM_CAP_EXT_CPUID:
	case KVM_CAP_IMMEDIATE_EXIT:
	case KVM_CAP_VCPU_EVENTS:
	case KVM_CAP_GET_MSR_FEATURES:
	case KVM_CAP_USER_NMI:
	case KVM_CAP_MP_STATE:
	case KVM_CAP_INTERNAL_ERROR_DATA:
		return 1;
	case KVM_CAP_NR_VCPUS:
		return min_t(int, num_online_cpus(), KVMX_MAX_VCPUS);
	case KVM_CAP_MAX_VCPUS:
	case KVM_CAP_MAX_VCPU_ID:
		return KVMX_MAX_VCPUS;
	case KVM_CAP_XSAVE:
	case KVM_CAP_XCRS:
		return boot_cpu_has(X86_FEATURE_XSAVE);
	default:
		return 0;
	}
}

/*
 * Return what KVM_CHECK_EXTENSION answers for @cap, on the system fd
 * (@vm == NULL) or on a VM fd.  Truthful: only what works today is non-zero.
 */
long kvmx_check_extension(struct kvmx_vm *vm, long cap)
{
	long r = kvmx_check_vm_extension(cap);

	if (cap == KVMX_CAP_MMU_MODE) {
		/* A VM's own mode; on /dev/kvmx the modes vCPUs can run in. */
		if (vm)
			return vm->mmu.mode;
		return kvmx_vendor_has_vcpus() ? kvmx_vendor->mmu_modes : 0;
	}
	if (cap == KVMX_CAP_REAL_MODE) {
		u32 modes = kvmx_vendor_has_vcpus() ?
			    kvmx_vendor->mmu_modes & kvmx_vendor->real_mode_modes : 0;

		if (vm)
			return !!(modes & vm->mmu.mode);
		return modes;
	}
	if (r || !kvmx_vm_runs_vcpus(vm))
		return r;
	return kvmx_check_vcpu_extension(cap);
}

static long kvmx_dev_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	switch (ioctl) {
	case KVM_GET_API_VERSION:
		if (arg)
			return -EINVAL;
		return KVM_API_VERSION;
	case KVM_CREATE_VM:
		return kvmx_create_vm(arg);
	case KVM_CHECK_EXTENSION:
		return kvmx_check_extension(NULL, arg);
	case KVM_GET_VCPU_MMAP_SIZE:
		if (arg)
			return -EINVAL;
		return KVMX_VCPU_MMAP_PAGES * PAGE_SIZE;
	case KVM_GET_SUPPORTED_CPUID:
		return kvmx_dev_get_supported_cpuid((void __user *)arg);
	case KVM_GET_MSR_INDEX_LIST:
		return kvmx_dev_get_msr_index_list((void __user *)arg, false);
	case KVM_GET_MSR_FEATURE_INDEX_LIST:
		return kvmx_dev_get_msr_index_list((void __user *)arg, true);
	case KVM_GET_MSRS:
		return kvmx_dev_get_feature_msrs((void __user *)arg);
	default:
		/* As in-tree KVM answers unknown system ioctls. */
		return -EINVAL;
	}
}

/* Not const: .owner is the backend module, known only at registration. */
static struct file_operations kvmx_chardev_ops = {
	.unlocked_ioctl = kvmx_dev_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static struct miscdevice kvmx_dev = {
	.minor = MISC_DYNAMIC_MINOR,
	.name = "kvmx",
	.fops = &kvmx_chardev_ops,
	.mode = 0660,
};

/* The hooks of kvmx/vendor-ops.h that a backend must fill. */
static const struct kvmx_required_op {
	const char *name;
	size_t offset;
	bool vcpu;	/* required only of a backend that runs vCPUs */
} kvmx_required_ops[] = {
#define KVMX_VENDOR_OP(func) { #func, offsetof(struct kvmx_vendor_ops, func), false },
#define KVMX_VENDOR_OP_VCPU(func) { #func, offsetof(struct kvmx_vendor_ops, func), true },
#define KVMX_VENDOR_OP_OPTIONAL(func)
#include <kvmx/vendor-ops.h>
};

static bool kvmx_has_op(const struct kvmx_vendor_ops *ops, const struct kvmx_required_op *op)
{
	const void *const *hook = (const void *)ops + op->offset;

	return *hook;
}

static int kvmx_check_vendor_ops(const struct kvmx_vendor_ops *ops)
{
	bool vcpus = ops->vcpu_create;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kvmx_required_ops); i++) {
		const struct kvmx_required_op *op = &kvmx_required_ops[i];

		if (op->vcpu && kvmx_has_op(ops, op) != vcpus) {
			pr_err("backend %s: vCPU hook %s is %s but vcpu_create is %s\n",
			       ops->name, op->name, vcpus ? "missing" : "set",
			       vcpus ? "set" : "not");
			return -EINVAL;
		}
		if (!op->vcpu && !kvmx_has_op(ops, op)) {
			pr_err("backend %s lacks mandatory hook %s\n", ops->name, op->name);
			return -EINVAL;
		}
	}

	if (ops->vm_size < sizeof(struct kvmx_vm)) {
		pr_err("backend %s: vm_size %zu too small\n", ops->name, ops->vm_size);
		return -EINVAL;
	}
	return 0;
}

/* The MMU modes, which a backend may fill from what check_hardware() found. */
static int kvmx_check_vendor_modes(const struct kvmx_vendor_ops *ops)
{
	if (ops->mmu_modes & ~(KVMX_MMU_MODE_TDP | KVMX_MMU_MODE_SHADOW) ||
	    (ops->vcpu_create && !ops->mmu_modes)) {
		pr_err("backend %s: bad MMU modes %#x\n", ops->name, ops->mmu_modes);
		return -EINVAL;
	}
	if (ops->real_mode_modes & ~ops->mmu_modes) {
		pr_err("backend %s: real mode in MMU modes %#x it does not run\n", ops->name,
		       ops->real_mode_modes & ~ops->mmu_modes);
		return -EINVAL;
	}
	return 0;
}

/**
 * kvmx_register_vendor - make a backend live and create /dev/kvmx
 * @ops: the backend's hooks; must stay valid until kvmx_unregister_vendor()
 * @owner: the backend module; every kvmx file pins it
 *
 * Returns 0, -EEXIST if a backend is already registered (as KVM answers a
 * second vendor module), what @ops->check_hardware() returns, -EINVAL if @ops lacks
 * a mandatory hook or declares impossible MMU modes, or the error from registering
 * the device node.
 */
int kvmx_register_vendor(const struct kvmx_vendor_ops *ops, struct module *owner)
{
	int r;

	r = kvmx_check_vendor_ops(ops);
	if (r)
		return r;

	mutex_lock(&kvmx_vendor_lock);
	if (kvmx_vendor) {
		pr_err("already loaded vendor module '%s'\n", kvmx_vendor->name);
		r = -EEXIST;
		goto out_unlock;
	}
	r = ops->check_hardware();
	if (r)
		goto out_unlock;
	r = kvmx_check_vendor_modes(ops);
	if (r)
		goto out_unlock;
	kvmx_vendor = ops;
	kvmx_chardev_ops.owner = owner;
	kvmx_vm_set_owner(owner);
	kvmx_vcpu_set_owner(owner);
	kvmx_stats_set_owner(owner);

	/* Last: after this, userspace can reach us. */
	r = misc_register(&kvmx_dev);
	if (r) {
		pr_err("cannot register /dev/kvmx: %d\n", r);
		goto out_clear;
	}
	pr_info("/dev/kvmx ready: backend %s, default MMU %s%s\n", ops->name,
		kvmx_tdp_default ? "tdp" : "shadow",
		kvmx_vm_runs_vcpus(NULL) ? "" : " (no vCPUs offered)");
	mutex_unlock(&kvmx_vendor_lock);
	return 0;

out_clear:
	kvmx_stats_set_owner(NULL);
	kvmx_vcpu_set_owner(NULL);
	kvmx_vm_set_owner(NULL);
	kvmx_chardev_ops.owner = NULL;
	kvmx_vendor = NULL;
out_unlock:
	mutex_unlock(&kvmx_vendor_lock);
	return r;
}
EXPORT_SYMBOL_GPL(kvmx_register_vendor);

/**
 * kvmx_unregister_vendor - remove /dev/kvmx and forget the backend
 * @ops: what was passed to kvmx_register_vendor()
 *
 * Called from the backend's module exit, so no kvmx file can be open: each
 * one holds a reference on that module.
 */
void kvmx_unregister_vendor(const struct kvmx_vendor_ops *ops)
{
	mutex_lock(&kvmx_vendor_lock);
	if (!WARN_ON(kvmx_vendor != ops)) {
		misc_deregister(&kvmx_dev);
		kvmx_stats_set_owner(NULL);
		kvmx_vcpu_set_owner(NULL);
		kvmx_vm_set_owner(NULL);
		kvmx_chardev_ops.owner = NULL;
		kvmx_vendor = NULL;
		pr_info("/dev/kvmx removed: backend %s\n", ops->name);
	}
	mutex_unlock(&kvmx_vendor_lock);
}
EXPORT_SYMBOL_GPL(kvmx_unregister_vendor);

static int __init kvmx_init(void)
{
	int r;

	r = cpuhp_setup_state_nocalls(CPUHP_AP_ONLINE_DYN, "kvmx:online",
				      kvmx_cpu_online, kvmx_cpu_offline);
	if (r < 0)
		return r;
	kvmx_cpuhp_state = r;
	register_reboot_notifier(&kvmx_reboot_nb);
	return 0;
}

static void __exit kvmx_exit(void)
{
	unregister_reboot_notifier(&kvmx_reboot_nb);
	cpuhp_remove_state_nocalls(kvmx_cpuhp_state);
}

module_init(kvmx_init);
module_exit(kvmx_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("kvmx maintainers");
MODULE_DESCRIPTION("kvmx: a KVM-compatible hypervisor (core)");
