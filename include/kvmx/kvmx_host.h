/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmx core objects shared by the core module and the vendor modules.
 */
#ifndef _KVMX_HOST_H
#define _KVMX_HOST_H

#include <linux/types.h>
#include <linux/refcount.h>
#include <linux/mm_types.h>
#include <linux/module.h>

struct kvmx_vm;

/*
 * The vendor backend (kvmx-amd or kvmx-intel).  Filled with designated
 * initializers by the backend and handed to kvmx_register_vendor().  Every
 * hook is also listed in kvmx/vendor-ops.h, which says whether it is
 * mandatory; registration checks that list.
 */
struct kvmx_vendor_ops {
	const char *name;
	/* Size of the vendor's VM object, which embeds struct kvmx_vm first. */
	size_t vm_size;

	int (*vm_init)(struct kvmx_vm *vm);
	void (*vm_destroy)(struct kvmx_vm *vm);
};

/*
 * A VM.  Created by KVM_CREATE_VM, owned by the file that ioctl returns; the
 * reference count lets vCPUs and other objects outlive that file.
 */
struct kvmx_vm {
	/* Who created the VM.  VM ioctls from any other mm fail with -EIO. */
	struct mm_struct *mm;
	refcount_t users;
	/*
	 * Set once by KVMX_KILL_VM_ON() when kvmx found itself inconsistent; every
	 * later ioctl on the VM fails with -EIO.  Written with WRITE_ONCE and read
	 * with READ_ONCE: no lock, it only ever goes from false to true.
	 */
	bool dead;
};

/*
 * Kill the VM, not the host: warn once, mark the VM dead, evaluate to the
 * condition so callers can bail out.
 */
#define KVMX_KILL_VM_ON(cond, vm)					\
({								\
	bool __ret = !!(cond);					\
								\
	if (WARN_ON_ONCE(__ret))				\
		WRITE_ONCE((vm)->dead, true);			\
	unlikely(__ret);					\
})

int kvmx_register_vendor(const struct kvmx_vendor_ops *ops, struct module *owner);
void kvmx_unregister_vendor(const struct kvmx_vendor_ops *ops);

#endif /* _KVMX_HOST_H */
