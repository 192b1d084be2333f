// SPDX-License-Identifier: GPL-2.0
/*
 * Shadow paging: the hardware walks tables kvmx builds from the guest's own
 * page tables, guest-linear straight to host-physical.
 *
 * Shape (the classic one, as KVM's shadow MMU):
 *  - A shadow page (struct kvmx_sp) shadows one guest page table at one
 *    level, read with one set of paging rules (its role), or, when "direct",
 *    a stretch of guest-physical memory that a guest large page (or a guest
 *    with paging off) maps in one piece.  The hardware always runs with
 *    64-bit entries: long-mode guests get 4-level shadow tables, every other
 *    mode (paging off, 32-bit, PAE) a PAE root private to the vCPU, below
 *    4 GiB, whose four entries point to shadow page directories.  A 32-bit
 *    guest table (1024 entries) is shadowed by several shadow pages, told
 *    apart by their quadrant.
 *  - Permissions are folded downwards: shadow entries that point to tables
 *    allow everything, and a shadow page's role carries the rights of the
 *    guest entries above it, so every leaf holds the complete rights of its
 *    translation.  Leaves are 4 KiB; guest large pages are split.
 *  - Coherence by write protection: the guest frames that hold shadowed
 *    page tables are mapped read-only in every shadow leaf.  A guest write
 *    there faults; the shadow pages of that frame are zapped (and rebuilt
 *    on demand), and the write proceeds.  A write the guest needs a
 *    shadowed frame for (its own active root) is emulated instead
 *    (KVMX_SHADOW_EMULATE_WRITE, by the backend).
 *  - Accessed and dirty bits: the walker sets them in the guest's entries
 *    when it resolves a fault, as the hardware would; a leaf is writable
 *    only once the guest's dirty bit is set, so the first write faults.
 *  - Roots are cached by (CR3, role) in the shadow-page hash: switching back
 *    to an address space finds its tables built.  Shadow pages are bounded
 *    (shadow_max_pages); past the bound everything is zapped and rebuilt.
 *
 * Lifetime: a zapped shadow page leaves the hash and has its entries
 * cleared at once, so nothing walks through it, but its memory stays until
 * the next zap of everything (other tables may still point at it; they find
 * it invalid and replace the pointer).  A zap of everything frees every
 * shadow page no vCPU holds as its root, after every vCPU left guest mode
 * and was told to reload (KVMX_REQ_MMU_RELOAD); roots go when their last
 * vCPU lets go.
 *
 * Locking: every shadow page, the hash, the list and every shadow entry are
 * protected by vm->mmu.lock, which the MMU notifier takes too; a vCPU's
 * struct kvmx_shadow_vcpu is its own, and touched under mmu.lock where it
 * refers to shadow pages.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/hash.h>
#include <linux/moduleparam.h>
#include <linux/kvm.h>
#include <asm/io.h>
#include <asm/pgtable_types.h>

#include <kvmx/walk.h>

#include "../kmod/core.h"
#include "mmu_internal.h"

#define SP_ENTRIES	512
#define SPTE_P		_PAGE_PRESENT
#define SPTE_RW		_PAGE_RW
#define SPTE_US		_PAGE_USER
#define SPTE_A		_PAGE_ACCESSED
#define SPTE_D		_PAGE_DIRTY
#define SPTE_NX		_PAGE_NX
#define SPTE_PFN_MASK	GENMASK_ULL(51, 12)
/* An entry that points to a shadow table allows everything (see above). */
#define SPTE_TABLE	(SPTE_P | SPTE_RW | SPTE_US | SPTE_A)
/* A PAE PDPTE has no permission bits: bits 2:1 and 8:5 are reserved. */
#define SPTE_PDPTE	SPTE_P

/* The most shadow pages a VM holds before they are all zapped. */
static unsigned int shadow_max_pages = 8192;
module_param(shadow_max_pages, uint, 0644);
MODULE_PARM_DESC(shadow_max_pages,
		 "Shadow page tables per VM before all are dropped and rebuilt (min 64)");

#define SP_ACCESS_ALL	(KVMX_WALK_W | KVMX_WALK_U | KVMX_WALK_X)

/* What a shadow page shadows, as one comparable word. */
union sp_role {
	u64 word;
	struct {
		u32 walk;		/* union kvmx_walk_role of the guest tables */
		u32 level:3;		/* 1: leaves */
		u32 direct:1;		/* guest-physical memory, not a guest table */
		u32 quadrant:2;		/* which part of a 32-bit guest table */
		u32 access:3;		/* KVMX_WALK_*: rights of the entries above */
		u32 dirty:1;		/* direct: the guest large page's D bit */
		u32 unused:22;
	};
};

struct kvmx_sp {
	struct hlist_node hash;		/* in mmu.sp_hash, while valid */
	struct list_head link;		/* in mmu.sp_list */
	union sp_role role;
	gfn_t gfn;			/* the guest table, or the first frame mapped */
	u64 *spt;			/* the table the hardware walks */
	gfn_t *gfns;			/* indirect leaves: the frame each entry maps */
	int root_count;			/* vCPUs holding it as their root */
	bool invalid;			/* zapped: out of the hash, entries cleared */
};

static struct hlist_head *sp_bucket(struct kvmx_mmu *mmu, gfn_t gfn)
{
	return &mmu->sp_hash[hash_64(gfn, KVMX_SP_HASH_BITS)];
}

static struct kvmx_sp *spte_to_sp(u64 spte)
{
	return (struct kvmx_sp *)page_private(pfn_to_page((spte & SPTE_PFN_MASK) >> PAGE_SHIFT));
}

static bool spte_present(u64 spte)
{
	return spte & SPTE_P;
}

/* Guest frames a shadow entry at @level spans. */
static u64 level_gfns(int level)
{
	return 1ULL << (9 * (level - 1));
}

static struct kvmx_sp *sp_find(struct kvmx_mmu *mmu, gfn_t gfn, union sp_role role)
{
	struct kvmx_sp *sp;

	hlist_for_each_entry(sp, sp_bucket(mmu, gfn), hash)
		if (sp->gfn == gfn && sp->role.word == role.word)
			return sp;
	return NULL;
}

/* Does some shadow page shadow the guest table in @gfn (write-protecting it)? */
static bool gfn_shadowed(struct kvmx_mmu *mmu, gfn_t gfn)
{
	struct kvmx_sp *sp;

	hlist_for_each_entry(sp, sp_bucket(mmu, gfn), hash)
		if (sp->gfn == gfn && !sp->role.direct)
			return true;
	return false;
}

static void sp_clear(struct kvmx_sp *sp)
{
	int i;

	for (i = 0; i < SP_ENTRIES; i++)
		WRITE_ONCE(sp->spt[i], 0);
}

/* Take @sp out of use; its memory stays (see the top of this file). */
static void sp_zap(struct kvmx_mmu *mmu, struct kvmx_sp *sp)
{
	lockdep_assert_held(&mmu->lock);
	if (sp->invalid)
		return;
	hlist_del(&sp->hash);
	sp->invalid = true;
	sp_clear(sp);
}

static void sp_free(struct kvmx_sp *sp)
{
	set_page_private(virt_to_page(sp->spt), 0);
	free_page((unsigned long)sp->spt);
	free_page((unsigned long)sp->gfns);
	kfree(sp);
}

/* Zap the shadow pages of the guest table in @gfn.  Returns whether any went. */
static bool unprotect_gfn(struct kvmx_mmu *mmu, gfn_t gfn)
{
	struct hlist_node *tmp;
	struct kvmx_sp *sp;
	bool zapped = false;

	hlist_for_each_entry_safe(sp, tmp, sp_bucket(mmu, gfn), hash) {
		if (sp->gfn == gfn && !sp->role.direct) {
			sp_zap(mmu, sp);
			zapped = true;
		}
	}
	if (zapped)
		mmu->nr_shadow_unprotects++;
	return zapped;
}

/*
 * Zap every shadow page.  Those no vCPU holds as a root move to @doomed, to
 * be freed by the caller once every vCPU is out of guest mode and knows to
 * reload (shadow_kick_reload()).
 */
static void zap_all_locked(struct kvmx_mmu *mmu, struct list_head *doomed)
{
	struct kvmx_sp *sp, *tmp;

	lockdep_assert_held(&mmu->lock);
	list_for_each_entry_safe(sp, tmp, &mmu->sp_list, link) {
		sp_zap(mmu, sp);
		if (!sp->root_count) {
			list_move(&sp->link, doomed);
			mmu->nr_sps--;
		}
	}
	mmu->shadow_gen++;
	mmu->nr_shadow_zap_alls++;
}

static void shadow_kick_reload(struct kvmx_vm *vm)
{
	struct kvmx_vcpu *vcpu;
	unsigned long i;

	xa_for_each(&vm->vcpus, i, vcpu)
		set_bit(KVMX_REQ_MMU_RELOAD, &vcpu->requests);
	/* Kicks every vCPU out of guest mode and waits; they reload on entry. */
	kvmx_flush_remote_tlbs(vm);
}

static void free_doomed(struct list_head *doomed)
{
	struct kvmx_sp *sp, *tmp;

	list_for_each_entry_safe(sp, tmp, doomed, link) {
		list_del(&sp->link);
		sp_free(sp);
	}
}

void kvmx_shadow_zap_all(struct kvmx_vm *vm)
{
	LIST_HEAD(doomed);

	spin_lock(&vm->mmu.lock);
	zap_all_locked(&vm->mmu, &doomed);
	spin_unlock(&vm->mmu.lock);
	shadow_kick_reload(vm);
	free_doomed(&doomed);
}

/**
 * kvmx_shadow_zap_leaves - remove (or write-protect) the shadow leaves
 * that map guest frames [start, end)
 * @vm: the VM, with mmu.lock held
 * @start: first frame
 * @end: frame after the last
 * @wp: only take write access away
 *
 * Returns whether an entry changed, i.e. the caller must flush TLBs.
 */
bool kvmx_shadow_zap_leaves(struct kvmx_vm *vm, gfn_t start, gfn_t end, bool wp)
{
	struct kvmx_sp *sp;
	bool changed = false;
	int i;

	lockdep_assert_held(&vm->mmu.lock);
	list_for_each_entry(sp, &vm->mmu.sp_list, link) {
		if (sp->role.level != 1 || sp->invalid)
			continue;
		if (sp->role.direct && (sp->gfn >= end || sp->gfn + SP_ENTRIES <= start))
			continue;
		for (i = 0; i < SP_ENTRIES; i++) {
			u64 e = sp->spt[i];
			gfn_t gfn = sp->role.direct ? sp->gfn + i : sp->gfns[i];

			if (!spte_present(e) || gfn < start || gfn >= end)
				continue;
			if (wp && !(e & SPTE_RW))
				continue;
			WRITE_ONCE(sp->spt[i], wp ? e & ~(SPTE_RW | SPTE_D) : 0);
			changed = true;
		}
	}
	return changed;
}

/* Fill the vCPU's allocation cache; may sleep.  Returns 0 or -ENOMEM. */
static int cache_topup(struct kvmx_shadow_vcpu *c)
{
	while (c->nr_pages < ARRAY_SIZE(c->page_cache)) {
		void *page = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);

		if (!page)
			return -ENOMEM;
		c->page_cache[c->nr_pages++] = page;
	}
	while (c->nr_sps < ARRAY_SIZE(c->sp_cache)) {
		struct kvmx_sp *sp = kzalloc(sizeof(*sp), GFP_KERNEL_ACCOUNT);

		if (!sp)
			return -ENOMEM;
		c->sp_cache[c->nr_sps++] = sp;
	}
	return 0;
}

/*
 * The shadow page for (@gfn, @role), made if there is none.  A new shadow
 * page of a guest table write-protects that table: *@flush says TLBs must
 * go.  Returns NULL only if the cache ran dry, which cache_topup() and the
 * fault's bound on new pages rule out.
 */
static struct kvmx_sp *sp_get(struct kvmx_vm *vm, struct kvmx_shadow_vcpu *c,
			      gfn_t gfn, union sp_role role, bool *flush)
{
	struct kvmx_mmu *mmu = &vm->mmu;
	bool leaves = !role.direct && role.level == 1;
	struct kvmx_sp *sp = sp_find(mmu, gfn, role);

	if (sp)
		return sp;
	if (WARN_ON_ONCE(!c->nr_sps || c->nr_pages < 1 + leaves))
		return NULL;
	sp = c->sp_cache[--c->nr_sps];
	sp->spt = c->page_cache[--c->nr_pages];
	sp->gfns = leaves ? c->page_cache[--c->nr_pages] : NULL;
	sp->gfn = gfn;
	sp->role = role;
	sp->root_count = 0;
	sp->invalid = false;
	set_page_private(virt_to_page(sp->spt), (unsigned long)sp);
	if (!role.direct)
		*flush |= kvmx_shadow_zap_leaves(vm, gfn, gfn + 1, true);
	hlist_add_head(&sp->hash, sp_bucket(mmu, gfn));
	list_add(&sp->link, &mmu->sp_list);
	mmu->nr_sps++;
	return sp;
}

static void put_root(struct kvmx_mmu *mmu, struct kvmx_shadow_vcpu *s)
{
	struct kvmx_sp *root = s->root;

	s->root = NULL;
	if (!root || --root->root_count || !root->invalid)
		return;
	/* Zapped while we held it, and nobody else does: ours to free. */
	list_del(&root->link);
	mmu->nr_sps--;
	sp_free(root);
}

static bool mode_is_long(enum kvmx_paging_mode mode)
{
	return mode == KVMX_PAGING_4LEVEL || mode == KVMX_PAGING_5LEVEL;
}

/* Is the loaded root the one for @p, and still whole?  Under mmu.lock. */
static bool root_current(struct kvmx_vm *vm, struct kvmx_shadow_vcpu *s,
			 const struct kvmx_paging *p, union kvmx_walk_role role)
{
	if (!s->loaded || s->gen != vm->mmu.shadow_gen || s->walk_role != role.word ||
	    s->cr3 != p->cr3)
		return false;
	if (role.mode == KVMX_PAGING_PAE &&
	    memcmp(s->pdptes, p->pdptes, sizeof(s->pdptes)))
		return false;
	return !s->root || !s->root->invalid;
}

/**
 * kvmx_shadow_load - make the vCPU's shadow root match the guest's paging
 * @vcpu: the vCPU, before it enters the guest (preemption enabled)
 * @p: the guest's paging state
 *
 * Cheap when nothing changed.  Otherwise the root for (CR3, role) is looked
 * up in the shadow-page cache or made, and the vCPU's TLB is flushed.  The
 * backend then enters with vcpu->shadow.root_pa as the hardware CR3, and
 * gives up the entry if KVMX_REQ_MMU_RELOAD is set once it is in guest mode.
 * Returns 0, -ENOMEM, or -EIO when the guest's EFER.LMA disagrees with its
 * paging mode (a backend bug: the CPU would walk the legacy PAE root as a
 * PML4, and guest RAM as page tables of the host's memory).
 */
int kvmx_shadow_load(struct kvmx_vcpu *vcpu, const struct kvmx_paging *p)
{
	union kvmx_walk_role role = kvmx_walk_role(p);
	struct kvmx_shadow_vcpu *s = &vcpu->shadow;
	struct kvmx_vm *vm = vcpu->vm;
	struct kvmx_mmu *mmu = &vm->mmu;
	bool flush = false;
	int r, i;

	/* The CPU walks 4 levels exactly when EFER.LMA is set; so must the root. */
	if (KVMX_KILL_VM_ON(!!(p->efer & EFER_LMA) !=
			    (role.mode == KVMX_PAGING_4LEVEL || role.mode == KVMX_PAGING_5LEVEL),
			    vm))
		return -EIO;

	clear_bit(KVMX_REQ_MMU_RELOAD, &vcpu->requests);
	/* Pairs with shadow_kick_reload(): clear the request, then look. */
	smp_mb__after_atomic();

	spin_lock(&mmu->lock);
	if (root_current(vm, s, p, role)) {
		spin_unlock(&mmu->lock);
		return 0;
	}
	spin_unlock(&mmu->lock);

	r = cache_topup(s);
	if (r)
		return r;

	spin_lock(&mmu->lock);
	put_root(mmu, s);
	for (i = 0; i < 4; i++)
		WRITE_ONCE(s->pae_root[i], 0);
	if (mode_is_long(role.mode)) {
		union sp_role sr = { .walk = role.word, .access = SP_ACCESS_ALL,
				     .level = role.mode == KVMX_PAGING_5LEVEL ? 5 : 4 };
		gfn_t gfn = (p->cr3 & SPTE_PFN_MASK) >> PAGE_SHIFT;
		struct kvmx_sp *root = sp_get(vm, s, gfn, sr, &flush);

		if (!root) {
			spin_unlock(&mmu->lock);
			return -ENOMEM;
		}
		root->root_count++;
		s->root = root;
		s->root_pa = __pa(root->spt);
	} else {
		s->root_pa = __pa(s->pae_root);
	}
	s->gen = mmu->shadow_gen;
	s->walk_role = role.word;
	s->cr3 = p->cr3;
	memcpy(s->pdptes, p->pdptes, sizeof(s->pdptes));
	s->loaded = true;
	spin_unlock(&mmu->lock);

	/* Another address space, or rebuilt tables: nothing cached may stay. */
	set_bit(KVMX_REQ_TLB_FLUSH, &vcpu->requests);
	if (flush)
		kvmx_flush_remote_tlbs(vm);
	return 0;
}
EXPORT_SYMBOL_GPL(kvmx_shadow_load);

/* Forget the loaded root (the guest's paging changed under KVM_SET_SREGS). */
void kvmx_shadow_reset(struct kvmx_vcpu *vcpu)
{
	vcpu->shadow.loaded = false;
}
EXPORT_SYMBOL_GPL(kvmx_shadow_reset);

/* The rights guest entry @pte at @level grants to the levels below it. */
static u32 guest_entry_rights(union kvmx_walk_role role, int level, u64 pte)
{
	u32 rights = SP_ACCESS_ALL;

	/* PAE PDPTEs carry no permissions. */
	if (role.mode == KVMX_PAGING_PAE && level == 3)
		return rights;
	if (!(pte & KVMX_PTE_RW))
		rights &= ~KVMX_WALK_W;
	if (!(pte & KVMX_PTE_US))
		rights &= ~KVMX_WALK_U;
	if (role.nxe && role.mode != KVMX_PAGING_32 && (pte & KVMX_PTE_NX))
		rights &= ~KVMX_WALK_X;
	return rights;
}

static int guest_top_level(enum kvmx_paging_mode mode)
{
	switch (mode) {
	case KVMX_PAGING_5LEVEL:
		return 5;
	case KVMX_PAGING_4LEVEL:
		return 4;
	case KVMX_PAGING_PAE:
		return 3;
	case KVMX_PAGING_32:
		return 2;
	default:
		return 0;
	}
}

/*
 * The shadow page a fault at @gva needs at @level, below a shadow entry of
 * level + 1: the guest's table at that level if the guest walk went through
 * one, else direct memory under the guest's large page (or paging off).
 */
static void wanted_child(union kvmx_walk_role walk, const struct kvmx_walk_result *res,
			 u64 gva, int level, gfn_t *gfn, union sp_role *role)
{
	int top = guest_top_level(walk.mode), l;

	role->word = 0;
	role->walk = walk.word;
	role->level = level;
	if (walk.mode == KVMX_PAGING_OFF || level < res->level) {
		role->direct = 1;
		role->access = walk.mode == KVMX_PAGING_OFF ? SP_ACCESS_ALL : res->access;
		role->dirty = walk.mode != KVMX_PAGING_OFF && (res->pte & KVMX_PTE_D);
		*gfn = (res->gpa >> PAGE_SHIFT) & ~(level_gfns(level + 1) - 1);
		return;
	}
	role->access = SP_ACCESS_ALL;
	for (l = top; l > level; l--)
		role->access &= guest_entry_rights(walk, l, res->ptes[l - 1]);
	*gfn = res->pte_gpa[level - 1] >> PAGE_SHIFT;
	if (walk.mode == KVMX_PAGING_32)
		role->quadrant = level == 2 ? (gva >> 30) & 3 : (gva >> 21) & 1;
}

/* The index of @gva's entry in a shadow table at @level (PAE root: 3). */
static int spte_index(u64 gva, int level, bool pae_root)
{
	if (pae_root)
		return (gva >> 30) & 3;
	return (gva >> (PAGE_SHIFT + 9 * (level - 1))) & (SP_ENTRIES - 1);
}

struct shadow_fault {
	gfn_t gfn;
	bool write, writable, user_trick;
	struct page *page;
	struct kvmx_memory_slot *slot;
};

/*
 * Install the leaf for @gva under mmu.lock, making the shadow pages on the
 * way.  Returns KVMX_SHADOW_FIXED, or -ENOMEM.
 */
static int shadow_map(struct kvmx_vcpu *vcpu, union kvmx_walk_role walk,
		      const struct kvmx_walk_result *res, u64 gva,
		      struct shadow_fault *f, bool *flush)
{
	struct kvmx_shadow_vcpu *s = &vcpu->shadow;
	struct kvmx_vm *vm = vcpu->vm;
	bool pae_root = !s->root;
	u64 *table = pae_root ? s->pae_root : s->root->spt;
	int level = pae_root ? 3 : s->root->role.level;
	struct kvmx_sp *leaf_sp = NULL;
	u64 spte, old;
	int i;

	for (; level > 1; level--) {
		union sp_role role;
		struct kvmx_sp *child;
		gfn_t gfn;
		u64 *e;

		wanted_child(walk, res, gva, level - 1, &gfn, &role);
		e = &table[spte_index(gva, level, pae_root && level == 3)];
		child = spte_present(*e) ? spte_to_sp(*e) : NULL;
		if (!child || child->invalid || child->gfn != gfn ||
		    child->role.word != role.word) {
			child = sp_get(vm, s, gfn, role, flush);
			if (!child)
				return -ENOMEM;
			if (spte_present(*e))
				*flush = true;
			WRITE_ONCE(*e, __pa(child->spt) |
				   (pae_root && level == 3 ? SPTE_PDPTE : SPTE_TABLE));
		}
		table = child->spt;
		leaf_sp = child;
		pae_root = false;
	}

	i = spte_index(gva, 1, false);
	spte = page_to_phys(f->page) | SPTE_P | SPTE_A;
	/*
	 * A guest page table stays read-only, whoever made it one: an earlier
	 * fault, or a shadow page made on the way down just now.  (A write to
	 * it is the caller's business: it unprotected the table first.)
	 */
	if (!f->write && gfn_shadowed(&vm->mmu, f->gfn))
		f->writable = false;
	if (f->user_trick) {
		/*
		 * CR0.WP = 0: a supervisor write to a page the guest maps
		 * read-only succeeds.  The hardware runs with WP = 1, so map
		 * the page writable for supervisor only; a user access faults
		 * and gets the guest's own rights back (as KVM does).
		 */
		spte |= SPTE_RW | SPTE_D;
		if (walk.smep)
			spte |= SPTE_NX;
	} else {
		if (res->access & KVMX_WALK_U)
			spte |= SPTE_US;
		if (f->writable)
			spte |= SPTE_RW | SPTE_D;
		if (!(res->access & KVMX_WALK_X))
			spte |= SPTE_NX;
	}
	old = table[i];
	if (spte_present(old) && old != spte)
		*flush = true;
	if (leaf_sp->gfns)
		leaf_sp->gfns[i] = f->gfn;
	WRITE_ONCE(table[i], spte);
	return KVMX_SHADOW_FIXED;
}

/**
 * kvmx_shadow_page_fault - resolve a #PF the guest took under shadow paging
 * @vcpu: the vCPU, in its VMM's task
 * @p: the guest's paging state (the one kvmx_shadow_load() was given)
 * @gva: the faulting linear address (CR2)
 * @error_code: the hardware's #PF error code
 * @res: the guest walk, for the caller
 *
 * Returns KVMX_SHADOW_FIXED when the guest can retry (mapped now, or raced),
 * KVMX_SHADOW_REFLECT when the guest itself faults (inject #PF with
 * res->error_code and CR2 = @gva), KVMX_SHADOW_MMIO when @gva translates to
 * res->gpa outside RAM (or a write to a read-only slot), to be emulated,
 * KVMX_SHADOW_EMULATE_WRITE when the access is a write to a guest page table
 * the vCPU cannot run without (the backend emulates the instruction), or
 * -errno (-EFAULT: the VMM's memory cannot be faulted in).
 */
int kvmx_shadow_page_fault(struct kvmx_vcpu *vcpu, const struct kvmx_paging *p,
			   u64 gva, u32 error_code, struct kvmx_walk_result *res)
{
	union kvmx_walk_role walk = kvmx_walk_role(p);
	u32 access = error_code & (KVMX_PFERR_WRITE | KVMX_PFERR_USER | KVMX_PFERR_FETCH);
	struct kvmx_vm *vm = vcpu->vm;
	struct kvmx_mmu *mmu = &vm->mmu;
	struct shadow_fault f = { .write = error_code & KVMX_PFERR_WRITE };
	bool flush = false, zapped_all = false;
	LIST_HEAD(doomed);
	unsigned long seq, hva;
	int idx, r;

	idx = srcu_read_lock(&vm->srcu);
	r = kvmx_walk_guest(vm, p, gva, access, res);
	if (r == -EAGAIN) {
		r = KVMX_SHADOW_FIXED;
		goto out_srcu;
	}
	if (r < 0) {
		/* A guest table outside RAM: the guest faults, not-present. */
		res->error_code = access;
		r = KVMX_SHADOW_REFLECT;
		goto out_srcu;
	}
	if (r == KVMX_WALK_FAULT) {
		r = KVMX_SHADOW_REFLECT;
		goto out_srcu;
	}

	f.gfn = res->gpa >> PAGE_SHIFT;
	f.slot = kvmx_gfn_to_memslot(vm, f.gfn);
	if (!f.slot || (f.write && (f.slot->flags & KVM_MEM_READONLY))) {
		r = KVMX_SHADOW_MMIO;
		goto out_srcu;
	}
	hva = f.slot->userspace_addr + ((f.gfn - f.slot->base_gfn) << PAGE_SHIFT);

	/* A supervisor write that only CR0.WP = 0 allows. */
	f.user_trick = f.write && !(res->access & KVMX_WALK_W);
	/* Writable once the guest's D bit is set (the walk sets it on a write). */
	f.writable = !(f.slot->flags & KVM_MEM_READONLY) && (res->access & KVMX_WALK_W) &&
		     (walk.mode == KVMX_PAGING_OFF || (res->pte & KVMX_PTE_D));

	r = cache_topup(&vcpu->shadow);
	if (r)
		goto out_srcu;

	seq = READ_ONCE(mmu->invalidate_seq);
	/* Sample the sequence before gup looks at the host page tables. */
	smp_rmb();
	r = kvmx_mmu_get_host_page(hva, f.write, &f.writable, &f.page);
	if (r)
		goto out_srcu;
	if (f.slot->dirty_bitmap && !f.write)
		f.writable = false;

	spin_lock(&mmu->lock);
	mmu->nr_shadow_faults++;
	r = KVMX_SHADOW_FIXED;
	if (kvmx_mmu_invalidated(vm, seq, hva) || !root_current(vm, &vcpu->shadow, p, walk))
		goto out_unlock;
	if (mmu->nr_sps + 8 > max(shadow_max_pages, 64U)) {
		zap_all_locked(mmu, &doomed);
		zapped_all = true;
		goto out_unlock;
	}

	/* The guest may write its page table: stop shadowing it. */
	if (f.write && gfn_shadowed(mmu, f.gfn)) {
		flush |= unprotect_gfn(mmu, f.gfn);
		if (vcpu->shadow.root && vcpu->shadow.root->invalid) {
			/* Its own root: the vCPU cannot run without it. */
			r = KVMX_SHADOW_EMULATE_WRITE;
			goto out_unlock;
		}
	}
	r = shadow_map(vcpu, walk, res, gva, &f, &flush);
	/* The write target is a table on its own path: shadowed again. */
	if (r == KVMX_SHADOW_FIXED && f.write && gfn_shadowed(mmu, f.gfn)) {
		unprotect_gfn(mmu, f.gfn);
		flush = true;
		r = KVMX_SHADOW_EMULATE_WRITE;
	}
	if ((f.writable || f.user_trick) && f.slot->dirty_bitmap)
		set_bit(f.gfn - f.slot->base_gfn, f.slot->dirty_bitmap);
out_unlock:
	spin_unlock(&mmu->lock);
	put_page(f.page);
	if (zapped_all) {
		shadow_kick_reload(vm);
		free_doomed(&doomed);
	} else if (flush) {
		kvmx_flush_remote_tlbs(vm);
	}
out_srcu:
	srcu_read_unlock(&vm->srcu, idx);
	return r;
}
EXPORT_SYMBOL_GPL(kvmx_shadow_page_fault);

/* A vCPU of a shadow VM gets its PAE root; called from vCPU creation. */
int kvmx_shadow_vcpu_init(struct kvmx_vcpu *vcpu)
{
	struct page *page;

	if (!kvmx_vm_shadow(vcpu->vm))
		return 0;
	/* The hardware's CR3 is 32 bits wide in legacy PAE mode. */
	page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_DMA32 | __GFP_ZERO);
	if (!page)
		return -ENOMEM;
	vcpu->shadow.pae_root = page_address(page);
	return 0;
}

void kvmx_shadow_vcpu_free(struct kvmx_vcpu *vcpu)
{
	struct kvmx_shadow_vcpu *s = &vcpu->shadow;

	if (s->root) {
		spin_lock(&vcpu->vm->mmu.lock);
		put_root(&vcpu->vm->mmu, s);
		spin_unlock(&vcpu->vm->mmu.lock);
	}
	while (s->nr_pages)
		free_page((unsigned long)s->page_cache[--s->nr_pages]);
	while (s->nr_sps)
		kfree(s->sp_cache[--s->nr_sps]);
	free_page((unsigned long)s->pae_root);
	s->pae_root = NULL;
}

int kvmx_shadow_init(struct kvmx_vm *vm)
{
	int i;

	INIT_LIST_HEAD(&vm->mmu.sp_list);
	vm->mmu.sp_hash = kvmalloc_array(1 << KVMX_SP_HASH_BITS, sizeof(*vm->mmu.sp_hash),
					 GFP_KERNEL_ACCOUNT);
	if (!vm->mmu.sp_hash)
		return -ENOMEM;
	for (i = 0; i < 1 << KVMX_SP_HASH_BITS; i++)
		INIT_HLIST_HEAD(&vm->mmu.sp_hash[i]);
	return 0;
}

/* The VM goes: no vCPU is left, nothing walks the tables. */
void kvmx_shadow_destroy(struct kvmx_vm *vm)
{
	struct kvmx_sp *sp, *tmp;

	if (!vm->mmu.sp_hash)
		return;
	list_for_each_entry_safe(sp, tmp, &vm->mmu.sp_list, link) {
		WARN_ON_ONCE(sp->root_count);
		list_del(&sp->link);
		sp_free(sp);
	}
	vm->mmu.nr_sps = 0;
	kvfree(vm->mmu.sp_hash);
	vm->mmu.sp_hash = NULL;
}
