// SPDX-License-Identifier: GPL-2.0
/*
 * The two-dimensional MMU: NPT tables that map guest-physical to
 * host-physical addresses, filled on demand from the VMM's page tables and
 * kept coherent with them by an MMU notifier.
 *
 * Table format: the backend's (struct kvmx_tdp_format): for NPT the host's
 * long-mode format (4 or 5 levels, as the host pages), for EPT 4 levels of
 * EPT entries.  Leaves are 4 KiB, or 2 MiB where the host maps the
 * same 2 MiB with one huge page.  Only leaves are ever removed; table pages
 * stay until the VM goes, so a walker holding mmu.lock never sees a table
 * disappear.
 *
 * No long-term pins: a fault takes a page reference with gup, installs the
 * leaf under mmu.lock and drops the reference.  The notifier protocol keeps
 * that safe (as KVM's mmu_invalidate_seq):
 *  - invalidate_range_start, under mmu.lock: bump invalidate_in_progress,
 *    widen [invalidate_start, invalidate_end), zap the leaves of the range
 *    and flush every vCPU's TLB before returning;
 *  - invalidate_range_end, under mmu.lock: bump invalidate_seq, then drop
 *    invalidate_in_progress;
 *  - a fault samples invalidate_seq before gup and, under mmu.lock, gives up
 *    (the guest simply faults again) when the sequence moved or an
 *    invalidation covering its hva is in progress.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/pgtable.h>
#include <linux/huge_mm.h>
#include <linux/mmu_notifier.h>
#include <linux/kvm.h>
#include <asm/pgtable.h>
#include <asm/io.h>

#include "../kmod/core.h"
#include "mmu_internal.h"

/*
 * The entry format is the backend's (kvmx_vendor_ops.tdp_format): NPT takes
 * the host's x86 format below, EPT has its own bits.  The names keep their
 * NPT meaning: P present, RW writable, PS a 2 MiB leaf.  The backend cannot
 * change while a VM exists (see kvmx_vendor).
 */
#define TDP_FMT		(kvmx_vendor->tdp_format)
#define NPT_P		(TDP_FMT->present)
#define NPT_RW		(TDP_FMT->writable)
#define NPT_PS		(TDP_FMT->huge)
#define NPT_PFN_MASK	(TDP_FMT->pfn_mask)
#define NPT_TABLE	(TDP_FMT->table)
#define NPT_ENTRIES	512

/* Every guest access counts as a user access for NPT: present entries carry U/S. */
const struct kvmx_tdp_format kvmx_tdp_format_x86 = {
	.present = _PAGE_PRESENT,
	.writable = _PAGE_RW,
	.huge = _PAGE_PSE,
	.table = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED,
	.leaf = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED,
	.dirty = _PAGE_DIRTY,
	.pfn_mask = GENMASK_ULL(51, 12),
};
EXPORT_SYMBOL_GPL(kvmx_tdp_format_x86);

/* Guest frames covered by one entry at @level (1 = 4 KiB leaves). */
static inline u64 npt_level_gfns(int level)
{
	return 1ULL << (9 * (level - 1));
}

static inline int npt_index(gfn_t gfn, int level)
{
	return (gfn >> (9 * (level - 1))) & (NPT_ENTRIES - 1);
}

static inline u64 *npt_table(u64 entry)
{
	return phys_to_virt(entry & NPT_PFN_MASK);
}

static inline bool npt_is_leaf(u64 entry, int level)
{
	return level == 1 || (entry & NPT_PS);
}

static struct kvmx_vm *notifier_to_vm(struct mmu_notifier *mn)
{
	return container_of(mn, struct kvmx_vm, mmu.notifier);
}

phys_addr_t kvmx_mmu_root_pa(struct kvmx_vm *vm)
{
	return virt_to_phys(vm->mmu.root);
}
EXPORT_SYMBOL_GPL(kvmx_mmu_root_pa);

/*
 * Remove leaves of [start, end) below @table, or with @wp only take their
 * write permission.  Returns true when an entry changed and TLBs need a flush.
 */
static bool npt_zap_range(u64 *table, int level, gfn_t base, gfn_t start, gfn_t end,
			  bool wp)
{
	u64 span = npt_level_gfns(level);
	int shift = 9 * (level - 1);
	bool changed = false;
	u64 i, last;

	/* Only the entries that overlap [start, end): one page is not a scan of 4 tables. */
	if (end <= base)
		return false;
	i = start > base ? (start - base) >> shift : 0;
	last = min_t(u64, NPT_ENTRIES, ((end - base - 1) >> shift) + 1);
	for (; i < last; i++) {
		gfn_t lo = base + i * span, hi = lo + span;
		u64 e = table[i];

		if (hi <= start || lo >= end)
			continue;
		if (!(e & NPT_P))
			continue;
		if (npt_is_leaf(e, level)) {
			if (wp && !(e & NPT_RW))
				continue;
			/* A huge leaf only partly in range goes entirely. */
			WRITE_ONCE(table[i], wp ? e & ~NPT_RW : 0);
			changed = true;
			continue;
		}
		changed |= npt_zap_range(npt_table(e), level - 1, lo, start, end, wp);
	}
	return changed;
}

/*
 * Zap or write-protect what maps [start, end): the NPT/EPT leaves, or in
 * shadow mode the shadow leaves of those guest frames.
 */
static bool npt_zap_locked(struct kvmx_vm *vm, gfn_t start, gfn_t end, bool wp)
{
	lockdep_assert_held(&vm->mmu.lock);
	if (kvmx_vm_shadow(vm))
		return kvmx_shadow_zap_leaves(vm, start, end, wp);
	return npt_zap_range(vm->mmu.root, vm->mmu.levels, 0, start, end, wp);
}

/*
 * A memslot goes or moves.  In shadow mode the guest's page tables may have
 * lived there too, so every shadow table goes (as KVM's zap of all pages).
 */
void kvmx_mmu_zap_gfn_range(struct kvmx_vm *vm, gfn_t start, gfn_t end)
{
	bool flush;

	if (kvmx_vm_shadow(vm)) {
		kvmx_shadow_zap_all(vm);
		return;
	}

	spin_lock(&vm->mmu.lock);
	flush = npt_zap_locked(vm, start, end, false);
	spin_unlock(&vm->mmu.lock);
	if (flush)
		kvmx_flush_remote_tlbs(vm);
}

/* Take write access from the pages of @slot named by @mask; the caller flushes. */
void kvmx_mmu_write_protect_mask(struct kvmx_vm *vm, struct kvmx_memory_slot *slot,
				 gfn_t gfn_offset, unsigned long mask)
{
	spin_lock(&vm->mmu.lock);
	if (kvmx_vm_shadow(vm) && mask) {
		/*
		 * One pass over the shadow leaves for the whole word: a frame
		 * whose bit is clear was not written since it was last
		 * protected, so it has no writable leaf to lose.
		 */
		gfn_t base = slot->base_gfn + gfn_offset;

		kvmx_shadow_zap_leaves(vm, base + __ffs(mask), base + __fls(mask) + 1, true);
		mask = 0;
	}
	while (mask) {
		gfn_t gfn = slot->base_gfn + gfn_offset + __ffs(mask);

		npt_zap_locked(vm, gfn, gfn + 1, true);
		mask &= mask - 1;
	}
	spin_unlock(&vm->mmu.lock);
}

void kvmx_mmu_write_protect_slot(struct kvmx_vm *vm, struct kvmx_memory_slot *slot)
{
	bool flush;

	spin_lock(&vm->mmu.lock);
	flush = npt_zap_locked(vm, slot->base_gfn, slot->base_gfn + slot->npages, true);
	spin_unlock(&vm->mmu.lock);
	if (flush)
		kvmx_flush_remote_tlbs(vm);
}

/*
 * Does the host map @hva with a 2 MiB leaf?  Walk the VMM's page tables with
 * interrupts off, as GUP-fast does, so no table can be freed under us.  The
 * answer may be stale at once; the notifier sequence catches that.
 */
static bool npt_host_pmd_mapped(struct mm_struct *mm, unsigned long hva)
{
	unsigned long flags;
	bool huge = false;
	pgd_t pgd;
	p4d_t p4d;
	pud_t pud;
	pmd_t pmd;

	local_irq_save(flags);
	pgd = READ_ONCE(*pgd_offset(mm, hva));
	if (pgd_none(pgd) || !pgd_present(pgd))
		goto out;
	p4d = READ_ONCE(*p4d_offset(&pgd, hva));
	if (p4d_none(p4d) || !p4d_present(p4d))
		goto out;
	pud = READ_ONCE(*pud_offset(&p4d, hva));
	if (pud_none(pud) || !pud_present(pud) || pud_leaf(pud))
		goto out;
	pmd = READ_ONCE(*pmd_offset(&pud, hva));
	huge = pmd_present(pmd) && pmd_leaf(pmd);
out:
	local_irq_restore(flags);
	return huge;
}

/*
 * The table pages a fault at @gfn may need: the missing tables on its walk
 * down to the 4 KiB level, counted without mmu.lock.  Tables are only ever
 * added while the VM lives, so the count can only drop before npt_install()
 * runs, except where a 2 MiB leaf appears meanwhile; the install then runs
 * short and the guest simply faults again.
 */
static int npt_tables_needed(struct kvmx_vm *vm, gfn_t gfn)
{
	u64 *table = vm->mmu.root;
	int level;

	for (level = vm->mmu.levels; level > 1; level--) {
		u64 e = READ_ONCE(table[npt_index(gfn, level)]);

		if (!(e & NPT_P) || (e & NPT_PS))
			return level - 1;
		table = npt_table(e);
	}
	return 0;
}

struct npt_fault {
	gfn_t gfn;
	unsigned long hva;
	struct kvmx_memory_slot *slot;
	bool write, writable, huge;
	bool split;		/* npt_install() removed a 2 MiB leaf */
	struct page *page;
	u64 *cache[5];		/* zeroed table pages for the walk */
	int ncache;
};

static u64 *npt_cache_pop(struct npt_fault *f)
{
	return f->ncache ? f->cache[--f->ncache] : NULL;
}

/* Install the leaf for @f under mmu.lock.  Returns 0, or -ENOMEM (retry). */
static int npt_install(struct kvmx_vm *vm, struct npt_fault *f)
{
	int target = f->huge ? 2 : 1;
	u64 *table = vm->mmu.root;
	int level = vm->mmu.levels;
	u64 leaf, pa;

	lockdep_assert_held(&vm->mmu.lock);
	for (; level > target; level--) {
		u64 *e = &table[npt_index(f->gfn, level)];

		if ((*e & NPT_P) && (*e & NPT_PS)) {
			/*
			 * A 2 MiB leaf where a 4 KiB one is wanted: split by
			 * zapping; the caller flushes the TLBs that may still
			 * hold the large translation.
			 */
			WRITE_ONCE(*e, 0);
			f->split = true;
		}
		if (!(*e & NPT_P)) {
			u64 *next = npt_cache_pop(f);

			if (!next)
				return -ENOMEM;
			vm->mmu.nr_table_pages++;
			WRITE_ONCE(*e, virt_to_phys(next) | NPT_TABLE);
		}
		table = npt_table(*e);
		if (level - 1 == target && target == 2 &&
		    (table[npt_index(f->gfn, 2)] & NPT_P) &&
		    !(table[npt_index(f->gfn, 2)] & NPT_PS)) {
			/* A table is there already: stay with 4 KiB leaves. */
			target = 1;
			f->huge = false;
		}
	}

	pa = page_to_phys(f->page);
	if (f->huge)
		pa = (pa & ~(u64)(PMD_SIZE - 1)) | NPT_PS;
	leaf = pa | TDP_FMT->leaf | (f->writable ? NPT_RW | TDP_FMT->dirty : 0);
	WRITE_ONCE(table[npt_index(f->gfn, level)], leaf);
	return 0;
}

/* The retry test of the notifier protocol; see the top of this file. */
bool kvmx_mmu_invalidated(struct kvmx_vm *vm, unsigned long seq, unsigned long hva)
{
	lockdep_assert_held(&vm->mmu.lock);
	if (vm->mmu.invalidate_in_progress &&
	    hva >= vm->mmu.invalidate_start && hva < vm->mmu.invalidate_end)
		return true;
	return vm->mmu.invalidate_seq != seq;
}

int kvmx_mmu_get_host_page(unsigned long hva, bool write, bool *writable,
			   struct page **page)
{
	unsigned int flags = write ? FOLL_WRITE : 0;
	long n;

	/* A read still maps writable when the host page is writable already. */
	if (!write && *writable &&
	    get_user_pages_fast_only(hva, 1, FOLL_WRITE, page) == 1)
		return 0;
	if (!write)
		*writable = false;
	n = get_user_pages_unlocked(hva, 1, page, flags);
	if (n == 1)
		return 0;
	return n < 0 ? n : -EFAULT;
}

/**
 * kvmx_mmu_page_fault - resolve a nested page fault
 * @vcpu: the faulting vCPU, in its VMM's task
 * @gpa: the guest-physical address
 * @write: the access was a write
 * @fetch: the access was an instruction fetch
 *
 * Returns 1 when the guest can retry the access (mapped, or raced with an
 * invalidation), 0 when @gpa is MMIO (outside every slot, or a write to a
 * read-only slot) and the caller must emulate, < 0 when the VMM's memory
 * cannot be faulted in (-EFAULT, as KVM).
 */
int kvmx_mmu_page_fault(struct kvmx_vcpu *vcpu, gpa_t gpa, bool write, bool fetch)
{
	struct kvmx_vm *vm = vcpu->vm;
	struct npt_fault f = { .gfn = gpa >> PAGE_SHIFT, .write = write };
	unsigned long seq;
	int idx, r, i, need;

	idx = srcu_read_lock(&vm->srcu);
	f.slot = kvmx_gfn_to_memslot(vm, f.gfn);
	r = 0;
	if (!f.slot || (write && (f.slot->flags & KVM_MEM_READONLY)))
		goto out_unlock_srcu;

	f.hva = f.slot->userspace_addr + ((f.gfn - f.slot->base_gfn) << PAGE_SHIFT);
	f.writable = !(f.slot->flags & KVM_MEM_READONLY);

	/* Most faults (every re-fault of dirty logging) need no new table. */
	need = npt_tables_needed(vm, f.gfn);
	for (i = 0; i < need; i++) {
		f.cache[i] = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
		if (!f.cache[i])
			break;
		f.ncache++;
	}
	r = -ENOMEM;
	if (f.ncache < need)
		goto out_free_cache;

	seq = READ_ONCE(vm->mmu.invalidate_seq);
	/* Sample the sequence before gup looks at the host page tables. */
	smp_rmb();

	r = kvmx_mmu_get_host_page(f.hva, f.write, &f.writable, &f.page);
	if (r)
		goto out_free_cache;

	/* Dirty logging sees every first write of a 4 KiB page. */
	if (f.slot->dirty_bitmap && !write)
		f.writable = false;

	spin_lock(&vm->mmu.lock);
	r = 1;
	if (kvmx_mmu_invalidated(vm, seq, f.hva))
		goto out_unlock;

	f.huge = !f.slot->dirty_bitmap &&
		 ((f.gfn ^ (f.hva >> PAGE_SHIFT)) & (PTRS_PER_PMD - 1)) == 0 &&
		 ALIGN_DOWN(f.gfn, PTRS_PER_PMD) >= f.slot->base_gfn &&
		 ALIGN_DOWN(f.gfn, PTRS_PER_PMD) + PTRS_PER_PMD <=
			f.slot->base_gfn + f.slot->npages &&
		 PageTransCompound(f.page) && npt_host_pmd_mapped(vm->mm, f.hva);

	if (f.slot->dirty_bitmap && f.writable)
		set_bit(f.gfn - f.slot->base_gfn, f.slot->dirty_bitmap);
	r = npt_install(vm, &f);
	/* Short of table pages: see npt_tables_needed(). */
	if (!r || r == -ENOMEM)
		r = 1;
out_unlock:
	spin_unlock(&vm->mmu.lock);
	if (f.split)
		kvmx_flush_remote_tlbs(vm);
	put_page(f.page);
out_free_cache:
	while (f.ncache)
		free_page((unsigned long)npt_cache_pop(&f));
out_unlock_srcu:
	srcu_read_unlock(&vm->srcu, idx);
	return r;
}
EXPORT_SYMBOL_GPL(kvmx_mmu_page_fault);

/* Zap what the memslots map of [start, end) in the VMM's address space. */
static bool npt_zap_hva_range(struct kvmx_vm *vm, unsigned long start, unsigned long end)
{
	struct kvmx_memslots *slots;
	bool flush = false;
	int idx, i;

	idx = srcu_read_lock(&vm->srcu);
	slots = srcu_dereference(vm->memslots, &vm->srcu);
	for (i = 0; i < slots->nr; i++) {
		struct kvmx_memory_slot *s = slots->slots[i];
		unsigned long s_end = s->userspace_addr + (s->npages << PAGE_SHIFT);
		unsigned long lo = max(start, s->userspace_addr), hi = min(end, s_end);

		if (lo >= hi)
			continue;
		lo = (lo - s->userspace_addr) >> PAGE_SHIFT;
		hi = (hi - s->userspace_addr + PAGE_SIZE - 1) >> PAGE_SHIFT;
		flush |= npt_zap_locked(vm, s->base_gfn + lo, s->base_gfn + hi, false);
	}
	srcu_read_unlock(&vm->srcu, idx);
	return flush;
}

static int npt_invalidate_range_start(struct mmu_notifier *mn,
				      const struct mmu_notifier_range *range)
{
	struct kvmx_vm *vm = notifier_to_vm(mn);
	bool flush;

	spin_lock(&vm->mmu.lock);
	if (!vm->mmu.invalidate_in_progress++) {
		vm->mmu.invalidate_start = range->start;
		vm->mmu.invalidate_end = range->end;
	} else {
		vm->mmu.invalidate_start = min(vm->mmu.invalidate_start, range->start);
		vm->mmu.invalidate_end = max(vm->mmu.invalidate_end, range->end);
	}
	flush = npt_zap_hva_range(vm, range->start, range->end);
	spin_unlock(&vm->mmu.lock);
	if (flush)
		kvmx_flush_remote_tlbs(vm);
	return 0;
}

static void npt_invalidate_range_end(struct mmu_notifier *mn,
				     const struct mmu_notifier_range *range)
{
	struct kvmx_vm *vm = notifier_to_vm(mn);

	spin_lock(&vm->mmu.lock);
	vm->mmu.invalidate_seq++;
	/* The new sequence is visible before the invalidation counts as over. */
	smp_wmb();
	KVMX_KILL_VM_ON(--vm->mmu.invalidate_in_progress < 0, vm);
	spin_unlock(&vm->mmu.lock);
}

/* The VMM's address space is going: nothing may stay mapped. */
static void npt_release(struct mmu_notifier *mn, struct mm_struct *mm)
{
	struct kvmx_vm *vm = notifier_to_vm(mn);
	bool flush;

	spin_lock(&vm->mmu.lock);
	flush = npt_zap_locked(vm, 0, ~0ULL >> PAGE_SHIFT, false);
	spin_unlock(&vm->mmu.lock);
	if (flush)
		kvmx_flush_remote_tlbs(vm);
}

/*
 * Accessed-bit aging is not wired up yet: report "not young" and let reclaim
 * decide; an invalidation zaps our mapping before the host page goes.
 */
static const struct mmu_notifier_ops npt_notifier_ops = {
	.invalidate_range_start = npt_invalidate_range_start,
	.invalidate_range_end = npt_invalidate_range_end,
	.release = npt_release,
};

int kvmx_mmu_init(struct kvmx_vm *vm)
{
	int r;

	if (WARN_ON_ONCE(!TDP_FMT))
		return -EINVAL;
	spin_lock_init(&vm->mmu.lock);
	vm->mmu.mode = kvmx_default_mmu_mode();
	r = kvmx_shadow_init(vm);
	if (r)
		return r;
	vm->mmu.levels = TDP_FMT->levels ?: (pgtable_l5_enabled() ? 5 : 4);
	vm->mmu.root = (u64 *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vm->mmu.root) {
		kvmx_shadow_destroy(vm);
		return -ENOMEM;
	}
	vm->mmu.notifier.ops = &npt_notifier_ops;
	r = mmu_notifier_register(&vm->mmu.notifier, vm->mm);
	if (r) {
		free_page((unsigned long)vm->mmu.root);
		vm->mmu.root = NULL;
		kvmx_shadow_destroy(vm);
		return r;
	}
	vm->mmu.notifier_registered = true;
	return 0;
}

static void npt_free_tables(u64 *table, int level)
{
	int i;

	for (i = 0; level > 1 && i < NPT_ENTRIES; i++) {
		u64 e = table[i];

		if ((e & NPT_P) && !(e & NPT_PS))
			npt_free_tables(npt_table(e), level - 1);
	}
	free_page((unsigned long)table);
}

void kvmx_mmu_destroy(struct kvmx_vm *vm)
{
	if (vm->mmu.notifier_registered) {
		mmu_notifier_unregister(&vm->mmu.notifier, vm->mm);
		vm->mmu.notifier_registered = false;
	}
	if (vm->mmu.root)
		npt_free_tables(vm->mmu.root, vm->mmu.levels);
	vm->mmu.root = NULL;
	kvmx_shadow_destroy(vm);
}
