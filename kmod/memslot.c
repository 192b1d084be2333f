// SPDX-License-Identifier: GPL-2.0
/*
 * Memslots: KVM_SET_USER_MEMORY_REGION and KVM_GET_DIRTY_LOG.
 *
 * The set of slots is an array published with RCU and read under the VM's
 * SRCU (readers may sleep in get_user_pages).  A writer holds slots_lock,
 * builds a new array, publishes it, waits for readers with
 * synchronize_srcu() and only then frees what the old array alone used.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/slab.h>
#include <linux/vmalloc.h>
#include <linux/uaccess.h>
#include <linux/mm.h>
#include <linux/kvm.h>

#include "core.h"

static struct kvmx_memslots *kvmx_memslots_locked(struct kvmx_vm *vm)
{
	return rcu_dereference_protected(vm->memslots, lockdep_is_held(&vm->slots_lock));
}

int kvmx_memslots_init(struct kvmx_vm *vm)
{
	struct kvmx_memslots *slots = kzalloc(sizeof(*slots), GFP_KERNEL_ACCOUNT);

	if (!slots)
		return -ENOMEM;
	RCU_INIT_POINTER(vm->memslots, slots);
	return 0;
}

static void kvmx_free_memslot(struct kvmx_memory_slot *slot)
{
	if (!slot)
		return;
	kvfree(slot->dirty_bitmap);
	kfree(slot);
}

/* Only when no reader can exist any more (VM teardown). */
void kvmx_memslots_free(struct kvmx_vm *vm)
{
	struct kvmx_memslots *slots = rcu_dereference_protected(vm->memslots, 1);
	int i;

	if (!slots)
		return;
	for (i = 0; i < slots->nr; i++)
		kvmx_free_memslot(slots->slots[i]);
	kfree(slots);
}

/**
 * kvmx_gfn_to_memslot - the slot holding @gfn, or NULL
 * @vm: the VM
 * @gfn: guest frame number
 *
 * The caller holds srcu_read_lock(&vm->srcu); the slot stays valid until it
 * drops it.
 */
struct kvmx_memory_slot *kvmx_gfn_to_memslot(struct kvmx_vm *vm, gfn_t gfn)
{
	struct kvmx_memslots *slots = srcu_dereference(vm->memslots, &vm->srcu);
	int i;

	for (i = 0; i < slots->nr; i++) {
		struct kvmx_memory_slot *s = slots->slots[i];

		if (gfn >= s->base_gfn && gfn - s->base_gfn < s->npages)
			return s;
	}
	return NULL;
}
EXPORT_SYMBOL_GPL(kvmx_gfn_to_memslot);

/**
 * kvmx_read_guest - copy guest-physical memory through the memslots
 * @vm: the VM
 * @gpa: guest-physical address
 * @data: destination
 * @len: bytes to copy
 *
 * Called from the VMM's task with srcu_read_lock(&vm->srcu) held.  Returns 0,
 * or -EFAULT when part of the range is outside every slot or unreadable.
 */
int kvmx_read_guest(struct kvmx_vm *vm, gpa_t gpa, void *data, unsigned long len)
{
	while (len) {
		gfn_t gfn = gpa >> PAGE_SHIFT;
		unsigned long off = offset_in_page(gpa);
		unsigned long n = min(len, PAGE_SIZE - off);
		struct kvmx_memory_slot *slot = kvmx_gfn_to_memslot(vm, gfn);
		unsigned long hva;

		if (!slot)
			return -EFAULT;
		hva = slot->userspace_addr + ((gfn - slot->base_gfn) << PAGE_SHIFT) + off;
		if (copy_from_user(data, (void __user *)hva, n))
			return -EFAULT;
		gpa += n;
		data += n;
		len -= n;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(kvmx_read_guest);

/**
 * kvmx_write_guest - copy into guest-physical memory, marking pages dirty
 * @vm: the VM
 * @gpa: guest-physical address
 * @data: source
 * @len: bytes
 *
 * As kvmx_read_guest(); a read-only slot counts as outside every slot.
 */
int kvmx_write_guest(struct kvmx_vm *vm, gpa_t gpa, const void *data, unsigned long len)
{
	while (len) {
		gfn_t gfn = gpa >> PAGE_SHIFT;
		unsigned long off = offset_in_page(gpa);
		unsigned long n = min(len, PAGE_SIZE - off);
		struct kvmx_memory_slot *slot = kvmx_gfn_to_memslot(vm, gfn);
		unsigned long hva;

		if (!slot || (slot->flags & KVM_MEM_READONLY))
			return -EFAULT;
		hva = slot->userspace_addr + ((gfn - slot->base_gfn) << PAGE_SHIFT) + off;
		if (copy_to_user((void __user *)hva, data, n))
			return -EFAULT;
		if (slot->dirty_bitmap)
			set_bit(gfn - slot->base_gfn, slot->dirty_bitmap);
		gpa += n;
		data += n;
		len -= n;
	}
	return 0;
}
EXPORT_SYMBOL_GPL(kvmx_write_guest);

static bool kvmx_overlaps(struct kvmx_memslots *slots, u16 id, gfn_t start, gfn_t end)
{
	int i;

	for (i = 0; i < slots->nr; i++) {
		struct kvmx_memory_slot *s = slots->slots[i];

		if (s->id == id)
			continue;
		if (start < s->base_gfn + s->npages && s->base_gfn < end)
			return true;
	}
	return false;
}

/*
 * Publish a copy of the current array with @old replaced by @new (either may
 * be NULL), wait for readers, and free the old array.  The caller frees @old.
 */
static int kvmx_replace_memslot(struct kvmx_vm *vm, struct kvmx_memory_slot *old,
				struct kvmx_memory_slot *new)
{
	struct kvmx_memslots *cur = kvmx_memslots_locked(vm);
	struct kvmx_memslots *next;
	int i, n = 0;

	next = kzalloc(struct_size(next, slots, cur->nr + 1), GFP_KERNEL_ACCOUNT);
	if (!next)
		return -ENOMEM;
	for (i = 0; i < cur->nr; i++)
		if (cur->slots[i] != old)
			next->slots[n++] = cur->slots[i];
	if (new)
		next->slots[n++] = new;
	next->nr = n;
	rcu_assign_pointer(vm->memslots, next);
	synchronize_srcu(&vm->srcu);
	kfree(cur);
	return 0;
}

static struct kvmx_memory_slot *kvmx_id_to_memslot(struct kvmx_vm *vm, u16 id)
{
	struct kvmx_memslots *slots = kvmx_memslots_locked(vm);
	int i;

	for (i = 0; i < slots->nr; i++)
		if (slots->slots[i]->id == id)
			return slots->slots[i];
	return NULL;
}

static int kvmx_alloc_dirty_bitmap(struct kvmx_memory_slot *slot)
{
	slot->dirty_bitmap = kvcalloc(BITS_TO_LONGS(slot->npages), sizeof(long),
				      GFP_KERNEL_ACCOUNT);
	return slot->dirty_bitmap ? 0 : -ENOMEM;
}

/* The highest gfn the NPT can map: the host's physical address width. */
static gfn_t kvmx_max_gfn(void)
{
	return (1ULL << (boot_cpu_data.x86_phys_bits - PAGE_SHIFT)) - 1;
}

/*
 * KVM_SET_USER_MEMORY_REGION, with the checks and errnos of KVM's
 * check_memory_region_flags() and __kvm_set_memory_region() (v6.1), and
 * x86's limit on the highest guest frame.  Address space 1 (SMM) is not
 * offered (KVM_CAP_MULTI_ADDRESS_SPACE is 0), so it is rejected like any
 * other bad address space.
 */
static int __kvmx_set_user_memory_region(struct kvmx_vm *vm,
					 const struct kvm_userspace_memory_region *mem)
{
	struct kvmx_memory_slot *old, *new;
	u16 as_id = mem->slot >> 16, id = (u16)mem->slot;
	gfn_t base_gfn;
	unsigned long npages;
	bool move = false;
	int r;

	lockdep_assert_held(&vm->slots_lock);

	if (mem->flags & ~(KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY))
		return -EINVAL;
	if ((mem->memory_size & (PAGE_SIZE - 1)) ||
	    mem->memory_size != (unsigned long)mem->memory_size)
		return -EINVAL;
	if (mem->guest_phys_addr & (PAGE_SIZE - 1))
		return -EINVAL;
	if ((mem->userspace_addr & (PAGE_SIZE - 1)) ||
	    mem->userspace_addr != untagged_addr(mem->userspace_addr) ||
	    !access_ok((void __user *)(unsigned long)mem->userspace_addr, mem->memory_size))
		return -EINVAL;
	if (as_id >= 1 || id >= KVMX_USER_MEM_SLOTS)
		return -EINVAL;
	if (mem->guest_phys_addr + mem->memory_size < mem->guest_phys_addr)
		return -EINVAL;
	if ((mem->memory_size >> PAGE_SHIFT) > KVMX_MEM_MAX_NR_PAGES)
		return -EINVAL;

	old = kvmx_id_to_memslot(vm, id);

	if (!mem->memory_size) {
		if (!old)
			return -EINVAL;
		r = kvmx_replace_memslot(vm, old, NULL);
		if (r)
			return r;
		kvmx_mmu_zap_gfn_range(vm, old->base_gfn, old->base_gfn + old->npages);
		kvmx_free_memslot(old);
		return 0;
	}

	base_gfn = mem->guest_phys_addr >> PAGE_SHIFT;
	npages = mem->memory_size >> PAGE_SHIFT;

	if (old) {
		if (mem->userspace_addr != old->userspace_addr || npages != old->npages ||
		    ((mem->flags ^ old->flags) & KVM_MEM_READONLY))
			return -EINVAL;
		if (base_gfn != old->base_gfn)
			move = true;
		else if (mem->flags == old->flags)
			return 0;
	}

	if ((!old || move) &&
	    kvmx_overlaps(kvmx_memslots_locked(vm), id, base_gfn, base_gfn + npages))
		return -EEXIST;
	if ((!old || move) && base_gfn + npages - 1 > kvmx_max_gfn())
		return -EINVAL;

	new = kzalloc(sizeof(*new), GFP_KERNEL_ACCOUNT);
	if (!new)
		return -ENOMEM;
	new->id = id;
	new->flags = mem->flags;
	new->base_gfn = base_gfn;
	new->npages = npages;
	new->userspace_addr = mem->userspace_addr;

	if (new->flags & KVM_MEM_LOG_DIRTY_PAGES) {
		if (old && !move && old->dirty_bitmap) {
			/* Keep what is logged so far: only the flags change. */
			new->dirty_bitmap = old->dirty_bitmap;
			old->dirty_bitmap = NULL;
		} else {
			r = kvmx_alloc_dirty_bitmap(new);
			if (r)
				goto out_free;
		}
	}

	if (move) {
		/* Like KVM: the old range disappears before the new one exists. */
		r = kvmx_replace_memslot(vm, old, NULL);
		if (r)
			goto out_free;
		kvmx_mmu_zap_gfn_range(vm, old->base_gfn, old->base_gfn + old->npages);
		r = kvmx_replace_memslot(vm, NULL, new);
		if (r) {
			/* The old slot is gone already; report and drop it. */
			kvmx_free_memslot(old);
			goto out_free;
		}
	} else {
		r = kvmx_replace_memslot(vm, old, new);
		if (r) {
			if (old && !old->dirty_bitmap && new->dirty_bitmap &&
			    (old->flags & KVM_MEM_LOG_DIRTY_PAGES)) {
				old->dirty_bitmap = new->dirty_bitmap;
				new->dirty_bitmap = NULL;
			}
			goto out_free;
		}
		/* Logging starts: later writes must fault to be seen. */
		if (old && (new->flags & KVM_MEM_LOG_DIRTY_PAGES) &&
		    !(old->flags & KVM_MEM_LOG_DIRTY_PAGES))
			kvmx_mmu_write_protect_slot(vm, new);
	}
	kvmx_free_memslot(old);
	return 0;

out_free:
	kvmx_free_memslot(new);
	return r;
}

int kvmx_set_user_memory_region(struct kvmx_vm *vm,
				const struct kvm_userspace_memory_region *mem)
{
	int r;

	/* As KVM's kvm_vm_ioctl_set_memory_region(): private slot ids are not for users. */
	if ((u16)mem->slot >= KVMX_USER_MEM_SLOTS)
		return -EINVAL;
	mutex_lock(&vm->slots_lock);
	r = __kvmx_set_user_memory_region(vm, mem);
	mutex_unlock(&vm->slots_lock);
	return r;
}

/*
 * KVM_GET_DIRTY_LOG, as KVM without manual dirty-log protection: for each
 * word of the bitmap, take and clear it atomically, write-protect the pages
 * it names, flush the TLBs, and only then report it.  A guest write that
 * lands after the exchange either hits a page still writable (and is in this
 * report, since its bit was set) or faults on the protected page and sets the
 * bit for the next report.
 */
int kvmx_get_dirty_log(struct kvmx_vm *vm, struct kvm_dirty_log *log)
{
	struct kvmx_memory_slot *slot;
	u16 as_id = log->slot >> 16, id = (u16)log->slot;
	unsigned long n, i, *buf;
	bool flush = false;
	int r;

	if (as_id >= 1 || id >= KVMX_USER_MEM_SLOTS)
		return -EINVAL;

	mutex_lock(&vm->slots_lock);
	slot = kvmx_id_to_memslot(vm, id);
	r = -ENOENT;
	if (!slot || !slot->dirty_bitmap)
		goto out_unlock;

	n = BITS_TO_LONGS(slot->npages);
	r = -ENOMEM;
	buf = kvcalloc(n, sizeof(long), GFP_KERNEL_ACCOUNT);
	if (!buf)
		goto out_unlock;

	for (i = 0; i < n; i++) {
		unsigned long mask;

		if (!READ_ONCE(slot->dirty_bitmap[i]))
			continue;
		mask = xchg(&slot->dirty_bitmap[i], 0);
		buf[i] = mask;
		if (mask) {
			kvmx_mmu_write_protect_mask(vm, slot, i * BITS_PER_LONG, mask);
			flush = true;
		}
	}
	if (flush)
		kvmx_flush_remote_tlbs(vm);

	r = 0;
	if (copy_to_user(log->dirty_bitmap, buf, n * sizeof(long)))
		r = -EFAULT;
	kvfree(buf);
out_unlock:
	mutex_unlock(&vm->slots_lock);
	return r;
}
