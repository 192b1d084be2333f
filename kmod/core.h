/* SPDX-License-Identifier: GPL-2.0 */
/* Declarations private to kvmx.ko. */
#ifndef _KVMX_CORE_H
#define _KVMX_CORE_H

#include <kvmx/kvmx_host.h>
#include <linux/kvmx.h>

/*
 * The registered backend.  Written under kvmx_vendor_lock by register and
 * unregister only.  Every file kvmx hands out (/dev/kvmx, VM fds) holds a
 * reference on the backend's module, so any code running on behalf of such a
 * file may read it without the lock: it cannot change underneath.
 */
extern const struct kvmx_vendor_ops *kvmx_vendor;

/* Module default for the VM's MMU mode (NPT/EPT or shadow); read-only. */
extern bool kvmx_tdp_default;

/* The MMU mode new VMs get: the module default (tdp=), as the backend offers it. */
static inline u32 kvmx_default_mmu_mode(void)
{
	if (kvmx_tdp_default && (kvmx_vendor->mmu_modes & KVMX_MMU_MODE_TDP))
		return KVMX_MMU_MODE_TDP;
	if (kvmx_vendor->mmu_modes & KVMX_MMU_MODE_SHADOW)
		return KVMX_MMU_MODE_SHADOW;
	return kvmx_tdp_default ? KVMX_MMU_MODE_TDP : KVMX_MMU_MODE_SHADOW;
}

/* The backend runs vCPUs at all (see kvmx/vendor-ops.h). */
static inline bool kvmx_vendor_has_vcpus(void)
{
	return kvmx_vendor->vcpu_create;
}

/*
 * Whether @vm (NULL: a new VM) can run vCPUs: the backend must run them at
 * all, in the VM's MMU mode.  A VM whose mode the backend does not run (e.g.
 * shadow paging on a backend without it) offers no vCPUs: its vCPU
 * capabilities read 0, instead of quietly running in another mode.
 */
static inline bool kvmx_vm_runs_vcpus(struct kvmx_vm *vm)
{
	u32 mode = vm ? vm->mmu.mode : kvmx_default_mmu_mode();

	return kvmx_vendor_has_vcpus() && (kvmx_vendor->mmu_modes & mode);
}

long kvmx_check_extension(struct kvmx_vm *vm, long cap);
int kvmx_create_vm(unsigned long type);
void kvmx_vm_set_owner(struct module *owner);
void kvmx_vcpu_set_owner(struct module *owner);
void kvmx_get_vm(struct kvmx_vm *vm);
void kvmx_put_vm(struct kvmx_vm *vm);

/* Virtualization on every CPU while any VM exists (main.c). */
int kvmx_hw_get(void);
void kvmx_hw_put(void);

/* vcpu.c */
int kvmx_vm_create_vcpu(struct kvmx_vm *vm, unsigned long id);
void kvmx_vcpu_destroy(struct kvmx_vcpu *vcpu);

/* stats.c: KVM_GET_STATS_FD (KVM's binary statistics). */
int kvmx_vm_get_stats_fd(struct kvmx_vm *vm);
int kvmx_vcpu_get_stats_fd(struct kvmx_vcpu *vcpu);
void kvmx_stats_set_owner(struct module *owner);

/* memslot.c */
int kvmx_memslots_init(struct kvmx_vm *vm);
void kvmx_memslots_free(struct kvmx_vm *vm);
int kvmx_set_user_memory_region(struct kvmx_vm *vm,
				const struct kvm_userspace_memory_region *mem);
int kvmx_get_dirty_log(struct kvmx_vm *vm, struct kvm_dirty_log *log);

/* arch-x86/x86.c: CPUID and MSR lists of the system fd, vCPU CPUID/MSR ioctls. */
long kvmx_dev_get_supported_cpuid(struct kvm_cpuid2 __user *ucpuid);
long kvmx_dev_get_msr_index_list(struct kvm_msr_list __user *ulist, bool features);
long kvmx_dev_get_feature_msrs(struct kvm_msrs __user *umsrs);
long kvmx_vcpu_set_cpuid2(struct kvmx_vcpu *vcpu, struct kvm_cpuid2 __user *ucpuid);
long kvmx_vcpu_get_cpuid2(struct kvmx_vcpu *vcpu, struct kvm_cpuid2 __user *ucpuid);
u64 kvmx_supported_xcr0(void);
long kvmx_vcpu_msrs(struct kvmx_vcpu *vcpu, struct kvm_msrs __user *umsrs, bool set);

/* mm/shadow.c: a vCPU's part of the shadow MMU. */
int kvmx_shadow_vcpu_init(struct kvmx_vcpu *vcpu);
void kvmx_shadow_vcpu_free(struct kvmx_vcpu *vcpu);

/* mm/npt.c: zap / write-protect NPT entries of a gfn range. */
void kvmx_mmu_zap_gfn_range(struct kvmx_vm *vm, gfn_t start, gfn_t end);
void kvmx_mmu_write_protect_mask(struct kvmx_vm *vm, struct kvmx_memory_slot *slot,
				 gfn_t gfn_offset, unsigned long mask);
void kvmx_mmu_write_protect_slot(struct kvmx_vm *vm, struct kvmx_memory_slot *slot);

#endif /* _KVMX_CORE_H */
