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
#include <linux/kvm.h>
#include <linux/kvmx.h>

#include "core.h"

bool kvmx_tdp_default = true;
module_param_named(tdp, kvmx_tdp_default, bool, 0444);
MODULE_PARM_DESC(tdp, "Default MMU mode of new VMs: 1 = NPT/EPT, 0 = shadow paging");

static DEFINE_MUTEX(kvmx_vendor_lock);
const struct kvmx_vendor_ops *kvmx_vendor;

/*
 * Return what KVM_CHECK_EXTENSION answers for @cap, on the system fd
 * (@vm == NULL) or on a VM fd.  Truthful: only what works today is non-zero.
 */
long kvmx_check_extension(struct kvmx_vm *vm, long cap)
{
	switch (cap) {
	case KVM_CAP_CHECK_EXTENSION_VM:
		return 1;
	case KVMX_CAP_KVMX:
		return KVMX_ABI_REVISION;
	default:
		return 0;
	}
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

/* Offsets of the hooks kvmx/vendor-ops.h marks mandatory. */
static const struct {
	const char *name;
	size_t offset;
} kvmx_mandatory_ops[] = {
#define KVMX_VENDOR_OP(func) { #func, offsetof(struct kvmx_vendor_ops, func) },
#define KVMX_VENDOR_OP_OPTIONAL(func)
#include <kvmx/vendor-ops.h>
};

static int kvmx_check_vendor_ops(const struct kvmx_vendor_ops *ops)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(kvmx_mandatory_ops); i++) {
		const void *const *hook = (const void *)ops + kvmx_mandatory_ops[i].offset;

		if (!*hook) {
			pr_err("backend %s lacks mandatory hook %s\n", ops->name,
			       kvmx_mandatory_ops[i].name);
			return -EINVAL;
		}
	}

	if (ops->vm_size < sizeof(struct kvmx_vm)) {
		pr_err("backend %s: vm_size %zu too small\n", ops->name, ops->vm_size);
		return -EINVAL;
	}
	return 0;
}

/**
 * kvmx_register_vendor - make a backend live and create /dev/kvmx
 * @ops: the backend's hooks; must stay valid until kvmx_unregister_vendor()
 * @owner: the backend module; every kvmx file pins it
 *
 * Returns 0, -EBUSY if a backend is already registered, -EINVAL if @ops lacks
 * a mandatory hook, or the error from registering the device node.
 */
int kvmx_register_vendor(const struct kvmx_vendor_ops *ops, struct module *owner)
{
	int r;

	r = kvmx_check_vendor_ops(ops);
	if (r)
		return r;

	mutex_lock(&kvmx_vendor_lock);
	if (kvmx_vendor) {
		pr_err("backend %s already registered\n", kvmx_vendor->name);
		r = -EBUSY;
		goto out_unlock;
	}
	kvmx_vendor = ops;
	kvmx_chardev_ops.owner = owner;
	kvmx_vm_set_owner(owner);

	/* Last: after this, userspace can reach us. */
	r = misc_register(&kvmx_dev);
	if (r) {
		pr_err("cannot register /dev/kvmx: %d\n", r);
		goto out_clear;
	}
	pr_info("/dev/kvmx ready: backend %s, default MMU %s\n", ops->name,
		kvmx_tdp_default ? "tdp" : "shadow");
	mutex_unlock(&kvmx_vendor_lock);
	return 0;

out_clear:
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
		kvmx_vm_set_owner(NULL);
		kvmx_chardev_ops.owner = NULL;
		kvmx_vendor = NULL;
		pr_info("/dev/kvmx removed: backend %s\n", ops->name);
	}
	mutex_unlock(&kvmx_vendor_lock);
}
EXPORT_SYMBOL_GPL(kvmx_unregister_vendor);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("kvmx maintainers");
MODULE_DESCRIPTION("kvmx: a KVM-compatible hypervisor (core)");
