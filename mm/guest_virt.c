// SPDX-License-Identifier: GPL-2.0
/*
 * The guest page-table walker (mm/walk.c, pure C) on a VM's memory: entries
 * are read through the memslots, and accessed/dirty flags are set with a
 * locked compare-and-exchange on the VMM's mapping of the page, so a guest
 * vCPU writing the same entry meanwhile is never overwritten.
 */
#include <linux/mm.h>
#include <linux/uaccess.h>
#include <linux/kvm.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/walk.h>

/*
 * The walker is pure C shared with the userspace tests; export it here for
 * backends with their own guest-memory callbacks.
 */
EXPORT_SYMBOL_GPL(kvmx_walk);

static int guest_read(void *ctx, u64 gpa, void *val, unsigned int len)
{
	return kvmx_read_guest(ctx, gpa, val, len);
}

static int guest_cmpxchg(void *ctx, u64 gpa, u64 old, u64 val, unsigned int len)
{
	struct kvmx_vm *vm = ctx;
	gfn_t gfn = gpa >> PAGE_SHIFT;
	struct kvmx_memory_slot *slot = kvmx_gfn_to_memslot(vm, gfn);
	unsigned long hva;
	bool ok;

	if (!slot || (slot->flags & KVM_MEM_READONLY))
		return -EFAULT;
	hva = slot->userspace_addr + ((gfn - slot->base_gfn) << PAGE_SHIFT) +
	      offset_in_page(gpa);
	if (!user_access_begin((void __user *)hva, len))
		return -EFAULT;
	if (len == 4) {
		u32 old32 = old;

		ok = unsafe_try_cmpxchg_user((u32 __user *)hva, &old32, (u32)val, efault);
	} else {
		ok = unsafe_try_cmpxchg_user((u64 __user *)hva, &old, val, efault);
	}
	user_access_end();
	if (!ok)
		return -EAGAIN;
	if (slot->dirty_bitmap)
		set_bit(gfn - slot->base_gfn, slot->dirty_bitmap);
	return 0;
efault:
	user_access_end();
	return -EFAULT;
}

static const struct kvmx_walk_ops guest_walk_ops = {
	.read = guest_read,
	.cmpxchg_pte = guest_cmpxchg,
};

/**
 * kvmx_walk_guest - kvmx_walk() through @vm's memslots
 * @vm: the VM (srcu_read_lock(&vm->srcu) held, in the VMM's task)
 * @p: the guest's paging state
 * @gva: linear address
 * @access: KVMX_ACC_*
 * @res: the outcome
 *
 * Returns as kvmx_walk().
 */
int kvmx_walk_guest(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva,
		    u32 access, struct kvmx_walk_result *res)
{
	return kvmx_walk(p, &guest_walk_ops, vm, gva, access, res);
}
EXPORT_SYMBOL_GPL(kvmx_walk_guest);

/*
 * PAE paging (@p): the four PDPTEs at CR3, as a CR3 load reads them, or
 * -EINVAL when one that is present has reserved bits set (SDM: "PDPTE
 * Registers"); -EFAULT when they are not in guest RAM.  Caller holds vm->srcu.
 */
int kvmx_guest_load_pdptes(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 pdptes[4])
{
	return kvmx_walk_load_pdptes(p, &guest_walk_ops, vm, pdptes);
}
EXPORT_SYMBOL_GPL(kvmx_guest_load_pdptes);

/**
 * kvmx_gva_to_gpa - the translation of an access the guest already made
 * @vm: the VM (srcu_read_lock(&vm->srcu) held by the caller)
 * @p: the guest's CR0, CR3, CR4 and EFER
 * @gva: linear address
 * @gpa: result
 *
 * For the instruction bytes and string operands of an intercepted
 * instruction: the hardware ran the access and took no guest #PF, so only
 * presence and reserved bits are checked and no accessed bit is set (barring
 * a concurrent change by another vCPU, where the caller's retry is harmless).
 *
 * Returns 0, or -EFAULT when the walk faults or leaves the memslots.
 */
int kvmx_gva_to_gpa(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva, gpa_t *gpa)
{
	struct kvmx_walk_result res;

	if (kvmx_walk_guest(vm, p, gva, KVMX_ACC_PEEK, &res) != KVMX_WALK_OK)
		return -EFAULT;
	*gpa = res.gpa;
	return 0;
}
EXPORT_SYMBOL_GPL(kvmx_gva_to_gpa);

/**
 * kvmx_read_guest_virt - copy @len bytes at linear address @gva
 * @vm: the VM (srcu read side held)
 * @p: the guest's paging state
 * @gva: linear address
 * @data: destination
 * @len: bytes
 *
 * Translates as kvmx_gva_to_gpa().  Returns the number of bytes copied
 * before the first untranslatable page.
 */
int kvmx_read_guest_virt(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva,
			 void *data, int len)
{
	int done = 0;

	while (done < len) {
		int n = min_t(int, len - done, PAGE_SIZE - offset_in_page(gva + done));
		gpa_t gpa;

		if (kvmx_gva_to_gpa(vm, p, gva + done, &gpa) ||
		    kvmx_read_guest(vm, gpa, data + done, n))
			break;
		done += n;
	}
	return done;
}
EXPORT_SYMBOL_GPL(kvmx_read_guest_virt);
