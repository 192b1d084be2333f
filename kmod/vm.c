// SPDX-License-Identifier: GPL-2.0
/*
 * VM objects and the VM fd.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/sched/mm.h>
#include <linux/kvm.h>

#include "core.h"

void kvmx_get_vm(struct kvmx_vm *vm)
{
	refcount_inc(&vm->users);
}

/* Destroy in the reverse order of kvmx_create_vm(). */
static void kvmx_destroy_vm(struct kvmx_vm *vm)
{
	struct kvmx_vcpu *vcpu;
	unsigned long i;

	xa_for_each(&vm->vcpus, i, vcpu)
		kvmx_vcpu_destroy(vcpu);
	xa_destroy(&vm->vcpus);
	if (kvmx_vendor->vm_destroy)
		kvmx_vendor->vm_destroy(vm);
	kvmx_mmu_destroy(vm);
	kvmx_memslots_free(vm);
	cleanup_srcu_struct(&vm->srcu);
	kvmx_hw_put();
	free_page((unsigned long)vm->coalesced_mmio_ring);
	mmdrop(vm->mm);
	kfree(vm);
}

void kvmx_put_vm(struct kvmx_vm *vm)
{
	if (refcount_dec_and_test(&vm->users))
		kvmx_destroy_vm(vm);
}

static int kvmx_vm_release(struct inode *inode, struct file *filp)
{
	kvmx_put_vm(filp->private_data);
	return 0;
}

static long kvmx_vm_set_identity_map_addr(struct kvmx_vm *vm, u64 __user *uaddr)
{
	u64 addr;
	long r;

	/* As x86 KVM: only before the first vCPU; SVM has no use for it. */
	mutex_lock(&vm->lock);
	r = -EINVAL;
	if (vm->created_vcpus)
		goto out;
	r = -EFAULT;
	if (copy_from_user(&addr, uaddr, sizeof(addr)))
		goto out;
	r = 0;
out:
	mutex_unlock(&vm->lock);
	return r;
}

/*
 * KVM_ENABLE_CAP on a VM.  The only capability kvmx enables per VM is its
 * MMU mode (KVMX_CAP_MMU_MODE, uapi/linux/kvmx.h), and only before the first
 * vCPU: vCPUs are set up for the mode, and the shadow MMU keeps per-vCPU
 * roots.  Everything else is -EINVAL, as KVM answers a capability it cannot
 * enable.
 */
static long kvmx_vm_enable_cap(struct kvmx_vm *vm, struct kvm_enable_cap __user *ucap)
{
	struct kvm_enable_cap cap;
	long r;

	if (copy_from_user(&cap, ucap, sizeof(cap)))
		return -EFAULT;
	if (cap.cap != KVMX_CAP_MMU_MODE || cap.flags ||
	    cap.args[1] || cap.args[2] || cap.args[3])
		return -EINVAL;
	if (cap.args[0] != KVMX_MMU_MODE_TDP && cap.args[0] != KVMX_MMU_MODE_SHADOW)
		return -EINVAL;
	if (!kvmx_vendor_has_vcpus() || !(kvmx_vendor->mmu_modes & cap.args[0]))
		return -EOPNOTSUPP;

	mutex_lock(&vm->lock);
	r = -EBUSY;
	if (vm->created_vcpus)
		goto out;
	/* No vCPU: nothing is mapped yet, in either mode. */
	spin_lock(&vm->mmu.lock);
	vm->mmu.mode = cap.args[0];
	spin_unlock(&vm->mmu.lock);
	r = 0;
out:
	mutex_unlock(&vm->lock);
	return r;
}

static long kvmx_vm_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	struct kvmx_vm *vm = filp->private_data;
	void __user *argp = (void __user *)arg;

	/* A VM belongs to the process that made it, and a dead VM stays dead. */
	if (vm->mm != current->mm || READ_ONCE(vm->dead))
		return -EIO;

	switch (ioctl) {
	case KVM_CHECK_EXTENSION:
		return kvmx_check_extension(vm, arg);
	case KVM_CREATE_VCPU:
		return kvmx_vm_create_vcpu(vm, arg);
	case KVM_ENABLE_CAP:
		return kvmx_vm_enable_cap(vm, argp);
	case KVM_SET_USER_MEMORY_REGION: {
		struct kvm_userspace_memory_region mem;

		if (copy_from_user(&mem, argp, sizeof(mem)))
			return -EFAULT;
		return kvmx_set_user_memory_region(vm, &mem);
	}
	case KVM_GET_DIRTY_LOG: {
		struct kvm_dirty_log log;

		if (copy_from_user(&log, argp, sizeof(log)))
			return -EFAULT;
		return kvmx_get_dirty_log(vm, &log);
	}
	case KVM_SET_TSS_ADDR:
		/* Only VMX without unrestricted guest uses the TSS; SVM accepts it. */
		return 0;
	case KVM_SET_IDENTITY_MAP_ADDR:
		return kvmx_vm_set_identity_map_addr(vm, argp);
	case KVM_GET_STATS_FD:
		return kvmx_vm_get_stats_fd(vm);
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
	mutex_init(&vm->lock);
	mutex_init(&vm->slots_lock);
	xa_init(&vm->vcpus);

	r = -ENOMEM;
	vm->coalesced_mmio_ring = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vm->coalesced_mmio_ring)
		goto out_mmdrop;
	r = kvmx_hw_get();
	if (r)
		goto out_free_ring;
	r = init_srcu_struct(&vm->srcu);
	if (r)
		goto out_hw_put;
	r = kvmx_memslots_init(vm);
	if (r)
		goto out_cleanup_srcu;
	r = kvmx_mmu_init(vm);
	if (r)
		goto out_free_memslots;
	r = kvmx_vendor->vm_init(vm);
	if (r)
		goto out_mmu_destroy;

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto out_vm_destroy;
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
out_vm_destroy:
	if (kvmx_vendor->vm_destroy)
		kvmx_vendor->vm_destroy(vm);
out_mmu_destroy:
	kvmx_mmu_destroy(vm);
out_free_memslots:
	kvmx_memslots_free(vm);
out_cleanup_srcu:
	cleanup_srcu_struct(&vm->srcu);
out_hw_put:
	kvmx_hw_put();
out_free_ring:
	free_page((unsigned long)vm->coalesced_mmio_ring);
out_mmdrop:
	mmdrop(vm->mm);
	kfree(vm);
	return r;
}
