// SPDX-License-Identifier: GPL-2.0
/*
 * Guest page-table walker: linear to guest-physical through the guest's own
 * paging structures, in every paging mode (32-bit with PSE and PSE-36, PAE,
 * 4-level, 5-level), deciding what the hardware would: the translation and
 * its rights, or a #PF and its error code, and which accessed/dirty flags it
 * sets.  Facts from the Intel SDM ("Paging": "Access Rights", "Accessed and
 * Dirty Flags", "Page-Fault Exceptions", the entry format tables) and the AMD
 * APM ("Page Translation and Protection").
 *
 * One walker body serves every mode.  What the two entry formats (32-bit
 * entries of 32-bit paging; 64-bit entries of PAE, 4- and 5-level paging)
 * differ in is data in struct walk_fmt; what modes, CPU state and CPU model
 * change is data in struct walk_params, derived from struct kvmx_paging at
 * the start of a walk.  This plays the part of KVM's paging_tmpl.h compiled
 * per PTTYPE, and of its reserved-bit masks indexed by [large][level].
 *
 * Pure logic: builds in the kernel and in userspace (include/kvmx/shim.h).
 */
#include <kvmx/walk.h>

/* Bits @lo..@hi set; none when @lo > @hi. */
static u64 bit_range(int lo, int hi)
{
	if (lo > hi)
		return 0;
	return (~0ULL >> (63 - hi)) & (~0ULL << lo);
}

struct walk_fmt {
	u8 pte_size;		/* bytes per entry */
	u8 index_bits;		/* linear-address bits decoded per level */
	u8 pse36;		/* 4 MiB pages keep address bits 39:32 in 20:13 */
	u64 frame_mask;		/* address bits of a table or 4 KiB frame */
};

static const struct walk_fmt fmt32 = {
	.pte_size = 4, .index_bits = 10, .pse36 = 1,
	.frame_mask = 0xfffff000ULL,
};

static const struct walk_fmt fmt64 = {
	.pte_size = 8, .index_bits = 9, .pse36 = 0,
	.frame_mask = 0x000ffffffffff000ULL,
};

struct walk_params {
	const struct walk_fmt *fmt;
	union kvmx_walk_role role;
	u8 top;			/* level of the table CR3 points to */
	u8 max_large;		/* highest level whose PS bit ends the walk */
	u8 rights_levels;	/* BIT(level - 1): entries with R/W, U/S, XD, A */
	u8 cached_pdptes;	/* PAE: level 3 comes from pdptes[] */
	u8 ac;			/* RFLAGS.AC */
	u8 cpl;
	u32 pkru;
	u64 root;		/* address of the top table */
	u64 nx;			/* the XD bit, or 0 where nothing is XD */
	u64 rsvd[2][KVMX_WALK_MAX_LEVELS];	/* [leaf][level - 1] */
	u64 pdptes[4];
};

enum kvmx_paging_mode kvmx_paging_mode_of(const struct kvmx_paging *p)
{
	if (!(p->cr0 & KVMX_CR0_PG))
		return KVMX_PAGING_OFF;
	if (!(p->cr4 & KVMX_CR4_PAE))
		return KVMX_PAGING_32;
	if (!(p->efer & KVMX_EFER_LMA))
		return KVMX_PAGING_PAE;
	return (p->cr4 & KVMX_CR4_LA57) ? KVMX_PAGING_5LEVEL : KVMX_PAGING_4LEVEL;
}

union kvmx_walk_role kvmx_walk_role(const struct kvmx_paging *p)
{
	union kvmx_walk_role r = { .word = 0 };
	int m = p->maxphyaddr ? p->maxphyaddr : 52;

	r.mode = kvmx_paging_mode_of(p);
	if (r.mode == KVMX_PAGING_OFF)
		return r;
	r.wp = !!(p->cr0 & KVMX_CR0_WP);
	/* PAE and longer modes have large pages whatever CR4.PSE says. */
	r.pse = r.mode == KVMX_PAGING_32 && (p->cr4 & KVMX_CR4_PSE);
	r.smep = !!(p->cr4 & KVMX_CR4_SMEP);
	r.smap = !!(p->cr4 & KVMX_CR4_SMAP);
	/* 32-bit entries have no XD bit; EFER.NXE means nothing to them. */
	r.nxe = r.mode != KVMX_PAGING_32 && (p->efer & KVMX_EFER_NXE);
	/* Protection keys exist in 4-level and 5-level paging only. */
	r.pke = r.mode >= KVMX_PAGING_4LEVEL && (p->cr4 & KVMX_CR4_PKE);
	r.amd = !!(p->model & KVMX_MODEL_AMD);
	r.gbpages = !(p->model & KVMX_MODEL_NO_GBPAGES);
	r.pse36 = !(p->model & KVMX_MODEL_NO_PSE36);
	r.maxphyaddr = m < 32 ? 32 : m > 52 ? 52 : m;
	return r;
}

/*
 * The bits each entry must have clear (SDM tables "Format of a ... that
 * Maps/References ...", APM "MBZ" fields), by whether the entry is a leaf
 * and by its level.  A set bit makes a #PF with RSVD = 1.
 */
static void setup_rsvd(struct walk_params *w)
{
	union kvmx_walk_role r = w->role;
	int m = r.maxphyaddr;
	u64 xd = r.nxe ? 0 : KVMX_PTE_NX;
	u64 high, upper;
	int level;

	switch (r.mode) {
	case KVMX_PAGING_32:
		/*
		 * Only 4 MiB pages have reserved bits: bit 21, and the address
		 * bits 39:32 kept in 20:13 beyond MAXPHYADDR (at most 40 bits)
		 * or all of them without PSE-36.
		 */
		if (r.pse36)
			w->rsvd[1][1] = bit_range((m > 40 ? 40 : m) - 19, 21);
		else
			w->rsvd[1][1] = bit_range(13, 21);
		break;
	case KVMX_PAGING_PAE:
		/* No ignored high bits in PAE entries: 62:M are reserved. */
		high = bit_range(m, 62) | xd;
		/* PDPTEs: no R/W, U/S, A, PS or XD; bits 2:1, 8:5 and 63:M. */
		w->rsvd[0][2] = bit_range(m, 63) | bit_range(5, 8) | bit_range(1, 2);
		w->rsvd[1][2] = w->rsvd[0][2];
		w->rsvd[0][1] = high;
		w->rsvd[1][1] = high | bit_range(13, 20);
		w->rsvd[0][0] = high;
		w->rsvd[1][0] = high;
		break;
	case KVMX_PAGING_4LEVEL:
	case KVMX_PAGING_5LEVEL:
		/* Bits 62:52 are ignored or protection keys. */
		high = bit_range(m, 51) | xd;
		/* PS is reserved in PML4Es and PML5Es, and so is bit 8 on AMD. */
		upper = high | KVMX_PTE_PS | (r.amd ? BIT_ULL(8) : 0);
		for (level = 4; level <= 5; level++) {
			w->rsvd[0][level - 1] = upper;
			w->rsvd[1][level - 1] = upper;
		}
		w->rsvd[0][2] = high;
		w->rsvd[1][2] = high | bit_range(13, 29) |
				(r.gbpages ? 0 : KVMX_PTE_PS);
		w->rsvd[0][1] = high;
		w->rsvd[1][1] = high | bit_range(13, 20);
		w->rsvd[0][0] = high;
		w->rsvd[1][0] = high;
		break;
	default:
		break;
	}
}

static void walk_setup(struct walk_params *w, const struct kvmx_paging *p)
{
	union kvmx_walk_role r = kvmx_walk_role(p);

	memset(w, 0, sizeof(*w));
	w->role = r;
	w->ac = !!(p->rflags & KVMX_RFLAGS_AC);
	w->cpl = p->cpl & 3;
	w->pkru = p->pkru;
	w->nx = r.nxe ? KVMX_PTE_NX : 0;

	switch (r.mode) {
	case KVMX_PAGING_32:
		w->fmt = &fmt32;
		w->top = 2;
		/* Without CR4.PSE the PS bit of a PDE is ignored. */
		w->max_large = r.pse ? 2 : 1;
		w->rights_levels = 0x3;
		w->root = p->cr3 & 0xfffff000ULL;
		break;
	case KVMX_PAGING_PAE:
		w->fmt = &fmt64;
		w->top = 3;
		w->max_large = 2;
		/* PDPTEs carry no rights and no accessed flag. */
		w->rights_levels = 0x3;
		w->root = p->cr3 & 0xffffffe0ULL;
		if (p->pdptes_valid) {
			w->cached_pdptes = 1;
			memcpy(w->pdptes, p->pdptes, sizeof(w->pdptes));
		}
		break;
	case KVMX_PAGING_4LEVEL:
	case KVMX_PAGING_5LEVEL:
		w->fmt = &fmt64;
		w->top = r.mode == KVMX_PAGING_5LEVEL ? 5 : 4;
		w->max_large = 3;
		w->rights_levels = 0x1f;
		/* CR3 bits 11:0 are flags or the PCID. */
		w->root = p->cr3 & bit_range(12, r.maxphyaddr - 1);
		break;
	default:
		break;
	}
	setup_rsvd(w);
}

static int read_pte(const struct kvmx_walk_ops *ops, void *ctx, u64 gpa,
		    unsigned int len, u64 *pte)
{
	u32 v32 = 0;
	u64 v64 = 0;
	int r;

	if (len == 4) {
		r = ops->read(ctx, gpa, &v32, 4);
		*pte = v32;
	} else {
		r = ops->read(ctx, gpa, &v64, 8);
		*pte = v64;
	}
	if (r)
		return r < 0 ? r : -EFAULT;
	return 0;
}

/* Fill in the error-code bits that describe the access, not the entry. */
static int fault(const struct walk_params *w, struct kvmx_walk_result *res,
		 u32 access, u32 ec)
{
	ec |= access & (KVMX_PFERR_WRITE | KVMX_PFERR_USER);
	/* I/D is reported only where fetches can fault: SMEP, or XD in use. */
	if ((access & KVMX_ACC_FETCH) && (w->role.smep || w->role.nxe))
		ec |= KVMX_PFERR_FETCH;
	res->error_code = ec;
	return KVMX_WALK_FAULT;
}

/*
 * SDM "Access Rights": 0, or the error-code bits of a protection fault
 * (P, and PK for a protection-key violation, which is reported together
 * with any other violation of the same access).
 */
static u32 permission_fault(const struct walk_params *w, u32 access,
			    u8 rights, u64 pte)
{
	bool user = access & KVMX_ACC_USER;
	bool write = access & KVMX_ACC_WRITE;
	bool fetch = access & KVMX_ACC_FETCH;
	bool upage = rights & KVMX_WALK_U;
	/* At CPL 3 every supervisor-mode access is an implicit one. */
	bool implicit = !user && ((access & KVMX_ACC_IMPLICIT) || w->cpl == 3);
	bool bad;
	u32 ec = 0;

	if (fetch)
		bad = !(rights & KVMX_WALK_X) ||
		      (user ? !upage : upage && w->role.smep);
	else if (user)
		bad = !upage || (write && !(rights & KVMX_WALK_W));
	else
		bad = (upage && w->role.smap && (implicit || !w->ac)) ||
		      (write && !(rights & KVMX_WALK_W) && w->role.wp);
	if (bad)
		ec = KVMX_PFERR_PRESENT;

	/* Keys guard data accesses to user-mode addresses, from any CPL. */
	if (w->role.pke && !fetch && upage) {
		u32 key = (pte >> 59) & 0xf;
		u32 ad = (w->pkru >> (2 * key)) & 1;
		u32 wd = (w->pkru >> (2 * key + 1)) & 1;

		if (ad || (wd && write && (user || w->role.wp)))
			ec = KVMX_PFERR_PRESENT | KVMX_PFERR_PK;
	}
	return ec;
}

/*
 * SDM "Accessed and Dirty Flags": a successful access sets A in every entry
 * it used and, for a write, D in the entry that maps the page.  Nothing is
 * set on a walk that faults (KVM and the APM agree).  Each update is a
 * compare-and-exchange against the value the walk read, so a racing guest
 * write is never lost: the walk starts again instead.
 */
static int update_ad(const struct walk_params *w, const struct kvmx_walk_ops *ops,
		     void *ctx, u32 access, struct kvmx_walk_result *res)
{
	unsigned int len = w->fmt->pte_size;
	int level, i, r;
	u8 n = 0;

	for (level = w->top; level >= res->level; level--) {
		u64 old = res->ptes[level - 1];
		u64 val = old | KVMX_PTE_A;

		if (!(w->rights_levels & BIT(level - 1)))
			continue;
		if (level == res->level && (access & KVMX_ACC_WRITE))
			val |= KVMX_PTE_D;
		if (val == old)
			continue;
		res->updates[n].gpa = res->pte_gpa[level - 1];
		res->updates[n].old = old;
		res->updates[n].val = val;
		res->updates[n].len = len;
		res->updates[n].level = level;
		n++;
	}
	res->nr_updates = n;
	if (n && res->updates[n - 1].level == res->level)
		res->pte = res->updates[n - 1].val;
	if (!ops->cmpxchg_pte)
		return KVMX_WALK_OK;

	for (i = 0; i < n; i++) {
		const struct kvmx_walk_update *u = &res->updates[i];

		r = ops->cmpxchg_pte(ctx, u->gpa, u->old, u->val, u->len);
		if (r) {
			res->level = u->level;
			return r < 0 ? r : -EFAULT;
		}
	}
	return KVMX_WALK_OK;
}

/* One pass over the tables; -EAGAIN asks for another. */
static int walk_once(const struct walk_params *w, const struct kvmx_walk_ops *ops,
		     void *ctx, u64 gva, u32 access, struct kvmx_walk_result *res)
{
	const struct walk_fmt *f = w->fmt;
	u8 rights = KVMX_WALK_W | KVMX_WALK_U | KVMX_WALK_X;
	u64 table = w->root, pte = 0, frame, offset;
	int level, shift = 12, r;
	u32 ec;

	memset(res, 0, sizeof(*res));
	for (level = w->top; level >= 1; level--) {
		u64 index, gpa;
		bool leaf;

		shift = 12 + f->index_bits * (level - 1);
		index = (gva >> shift) & ((1U << f->index_bits) - 1);
		res->level = level;
		if (level == 3 && w->cached_pdptes) {
			pte = w->pdptes[index & 3];
			res->pte_gpa[level - 1] = ~0ULL;
		} else {
			gpa = table + index * f->pte_size;
			res->pte_gpa[level - 1] = gpa;
			r = read_pte(ops, ctx, gpa, f->pte_size, &pte);
			if (r)
				return r;
		}
		res->ptes[level - 1] = pte;

		if (!(pte & KVMX_PTE_P))
			return fault(w, res, access, 0);
		leaf = level == 1 || (level <= w->max_large && (pte & KVMX_PTE_PS));
		if (pte & w->rsvd[leaf][level - 1])
			return fault(w, res, access,
				     KVMX_PFERR_PRESENT | KVMX_PFERR_RSVD);
		if (w->rights_levels & BIT(level - 1)) {
			if (!(pte & KVMX_PTE_RW))
				rights &= ~KVMX_WALK_W;
			if (!(pte & KVMX_PTE_US))
				rights &= ~KVMX_WALK_U;
			if (pte & w->nx)
				rights &= ~KVMX_WALK_X;
		}
		if (leaf)
			break;
		table = pte & f->frame_mask;
	}

	offset = gva & ((1ULL << shift) - 1);
	if (shift > 12 && f->pse36)
		frame = (pte & 0xffc00000ULL) | ((pte & bit_range(13, 20)) << 19);
	else
		frame = pte & f->frame_mask & ~((1ULL << shift) - 1);
	res->gpa = frame | offset;
	res->pte = pte;
	res->page_shift = shift;
	res->access = rights;

	if (access & KVMX_ACC_PEEK)
		return KVMX_WALK_OK;
	ec = permission_fault(w, access, rights, pte);
	if (ec)
		return fault(w, res, access, ec);
	return update_ad(w, ops, ctx, access, res);
}

/**
 * kvmx_walk - translate @gva as the hardware would for @access
 * @p: the guest's paging state
 * @ops: guest-physical memory
 * @ctx: passed to @ops
 * @gva: linear address (canonical checks are the caller's: they are #GP)
 * @access: KVMX_ACC_*
 * @res: the outcome; see struct kvmx_walk_result
 *
 * Returns KVMX_WALK_OK, KVMX_WALK_FAULT, or -errno as the header says.  With
 * paging off the translation is the address itself, with every right.
 */
int kvmx_walk(const struct kvmx_paging *p, const struct kvmx_walk_ops *ops,
	      void *ctx, u64 gva, u32 access, struct kvmx_walk_result *res)
{
	struct walk_params w;
	int tries, r;

	walk_setup(&w, p);
	if (access & KVMX_ACC_FETCH)
		access &= ~KVMX_ACC_WRITE;
	if (access & KVMX_ACC_IMPLICIT)
		access &= ~KVMX_ACC_USER;

	if (w.role.mode == KVMX_PAGING_OFF) {
		memset(res, 0, sizeof(*res));
		res->gpa = gva & 0xffffffffULL;
		res->level = 1;
		res->page_shift = 12;
		res->access = KVMX_WALK_W | KVMX_WALK_U | KVMX_WALK_X;
		return KVMX_WALK_OK;
	}
	/* Outside long mode linear addresses have 32 bits. */
	if (w.role.mode <= KVMX_PAGING_PAE)
		gva &= 0xffffffffULL;

	for (tries = 0; ; tries++) {
		r = walk_once(&w, ops, ctx, gva, access, res);
		if (r != -EAGAIN || tries == KVMX_WALK_RETRIES)
			return r;
	}
}

/**
 * kvmx_walk_load_pdptes - read the four PDPTEs at CR3, as a PAE-mode CR3 load
 * @p: the guest's paging state (PAE mode)
 * @ops: guest-physical memory
 * @ctx: passed to @ops
 * @pdptes: the PDPTE registers' new values
 *
 * Returns 0; -EINVAL when @p is not PAE mode or a present PDPTE has reserved
 * bits set (the load is a #GP, SDM "PDPTE Registers"); or a read error.
 */
int kvmx_walk_load_pdptes(const struct kvmx_paging *p,
			  const struct kvmx_walk_ops *ops, void *ctx,
			  u64 pdptes[4])
{
	struct walk_params w;
	int i, r;

	walk_setup(&w, p);
	if (w.role.mode != KVMX_PAGING_PAE)
		return -EINVAL;
	for (i = 0; i < 4; i++) {
		r = read_pte(ops, ctx, w.root + 8 * i, 8, &pdptes[i]);
		if (r)
			return r;
		if ((pdptes[i] & KVMX_PTE_P) && (pdptes[i] & w.rsvd[0][2]))
			return -EINVAL;
	}
	return 0;
}
