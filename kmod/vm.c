// SPDX-License-Identifier: GPL-2.0
/*
 * VM objects and the VM fd.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/sched/mm.h>
#include <linux/kvm.h>

#include "core.h"

static void kvmx_put_vm(struct kvmx_vm *vm)
{
	if (!refcount_dec_and_test(&vm->users))
		return;

	if (kvmx_vendor->vm_destroy)
		kvmx_vendor->vm_destroy(vm);
	mmdrop(vm->mm);
	kfree(vm);
}

static int kvmx_vm_release(struct inode *inode, struct file *filp)
{
	kvmx_put_vm(filp->private_data);
	return 0;
}

static long kvmx_vm_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	struct kvmx_vm *vm = filp->private_data;

	/* A VM belongs to the process that made it, and a dead VM stays dead. */
	if (vm->mm != current->mm || READ_ONCE(vm->dead))
		return -EIO;

	switch (ioctl) {
	case KVM_CHECK_EXTENSION:
		return kvmx_check_extension(vm, arg);
	default:
		/* As in-tree KVM answers unknown VM ioctls on x86. */
		return -ENOTTY;
	}
}

/* Not const: .owner is the backend module, set by kvmx_vm_set_owner(). */
static struct file_operations kvmx_vm_fops = {
	.release = kvmx_vm_release,
	.unlocked_ioctl = kvmx_vm_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

/* Make every VM fd pin the backend module, as /dev/kvmx does. */
void kvmx_vm_set_owner(struct module *owner)
{
	kvmx_vm_fops.owner = owner;
}

/* KVM_CREATE_VM: returns the new VM's fd or a negative errno. */
int kvmx_create_vm(unsigned long type)
{
	struct kvmx_vm *vm;
	struct file *file;
	int r, fd;

	/* x86 offers only the default VM type (KVM_X86_DEFAULT_VM, 0). */
	if (type)
		return -EINVAL;

	vm = kzalloc(kvmx_vendor->vm_size, GFP_KERNEL_ACCOUNT);
	if (!vm)
		return -ENOMEM;
	refcount_set(&vm->users, 1);
	vm->mm = current->mm;
	mmgrab(vm->mm);

	r = kvmx_vendor->vm_init(vm);
	if (r)
		goto out_free;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto out_destroy;
	}

	file = anon_inode_getfile("kvmx-vm", &kvmx_vm_fops, vm, O_RDWR);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		goto out_put_fd;
	}
	fd_install(fd, file);
	return fd;

out_put_fd:
	put_unused_fd(fd);
out_destroy:
	if (kvmx_vendor->vm_destroy)
		kvmx_vendor->vm_destroy(vm);
out_free:
	mmdrop(vm->mm);
	kfree(vm);
	return r;
}
