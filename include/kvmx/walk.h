/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The guest page-table walker (mm/walk.c): guest-linear to guest-physical
 * through the guest's own paging structures, with the access rights, reserved
 * bits, #PF error code and accessed/dirty updates the hardware would produce.
 *
 * Pure logic (include/kvmx/shim.h): the walker builds into kvmx.ko and into
 * the userspace unit tests and fuzz target (mm/tests).  Guest memory is
 * reached only through struct kvmx_walk_ops, so the kernel reads through the
 * memslots and the tests through a buffer.
 */
#ifndef _KVMX_WALK_H
#define _KVMX_WALK_H

#include <kvmx/shim.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Architectural bits of the CPU state a walk depends on. */
#define KVMX_CR0_WP		BIT_ULL(16)
#define KVMX_CR0_PG		BIT_ULL(31)
#define KVMX_CR4_PSE		BIT_ULL(4)
#define KVMX_CR4_PAE		BIT_ULL(5)
#define KVMX_CR4_LA57		BIT_ULL(12)
#define KVMX_CR4_SMEP		BIT_ULL(20)
#define KVMX_CR4_SMAP		BIT_ULL(21)
#define KVMX_CR4_PKE		BIT_ULL(22)
#define KVMX_EFER_LMA		BIT_ULL(10)
#define KVMX_EFER_NXE		BIT_ULL(11)
#define KVMX_RFLAGS_AC		BIT_ULL(18)

/* Paging-structure entry bits common to both formats. */
#define KVMX_PTE_P		BIT_ULL(0)
#define KVMX_PTE_RW		BIT_ULL(1)
#define KVMX_PTE_US		BIT_ULL(2)
#define KVMX_PTE_A		BIT_ULL(5)
#define KVMX_PTE_D		BIT_ULL(6)
#define KVMX_PTE_PS		BIT_ULL(7)
#define KVMX_PTE_NX		BIT_ULL(63)

/* #PF error code bits (SDM "Page-Fault Exceptions"). */
#define KVMX_PFERR_PRESENT	BIT(0)
#define KVMX_PFERR_WRITE	BIT(1)
#define KVMX_PFERR_USER		BIT(2)
#define KVMX_PFERR_RSVD		BIT(3)
#define KVMX_PFERR_FETCH	BIT(4)
#define KVMX_PFERR_PK		BIT(5)

/*
 * The access a walk checks.  Write, user and fetch are the error-code bits
 * they report; a fetch is never a write.
 *  IMPLICIT: an implicit supervisor-mode access (descriptor tables, TSS,
 *	shadow stack at CPL 3...): SMAP applies whatever RFLAGS.AC says.  A
 *	supervisor access while CPL is 3 is implicit too.
 *  PEEK: look up the translation of an access the hardware already made:
 *	check presence and reserved bits only, update no accessed/dirty bit.
 */
#define KVMX_ACC_WRITE		KVMX_PFERR_WRITE
#define KVMX_ACC_USER		KVMX_PFERR_USER
#define KVMX_ACC_FETCH		KVMX_PFERR_FETCH
#define KVMX_ACC_IMPLICIT	BIT(16)
#define KVMX_ACC_PEEK		BIT(17)

/* Effective rights of a translation: every level allows it. */
#define KVMX_WALK_W		BIT(0)
#define KVMX_WALK_U		BIT(1)
#define KVMX_WALK_X		BIT(2)

#define KVMX_WALK_MAX_LEVELS	5

/* How often a walk restarts after a racing guest write before giving up. */
#define KVMX_WALK_RETRIES	8

enum kvmx_paging_mode {
	KVMX_PAGING_OFF,	/* CR0.PG = 0: linear is physical */
	KVMX_PAGING_32,		/* two levels of 32-bit entries */
	KVMX_PAGING_PAE,	/* PDPTEs, then two levels of 64-bit entries */
	KVMX_PAGING_4LEVEL,
	KVMX_PAGING_5LEVEL,	/* CR4.LA57 */
};

/* CPU-model facts for struct kvmx_paging::model; zero is the common case. */
#define KVMX_MODEL_AMD		BIT(0)	/* bit 8 of PML4Es/PML5Es is reserved */
#define KVMX_MODEL_NO_GBPAGES	BIT(1)	/* no 1 GiB pages: PDPTE.PS is reserved */
#define KVMX_MODEL_NO_PSE36	BIT(2)	/* 4 MiB pages address 32 bits only */

/*
 * The guest state a walk depends on.  Callers fill what they know; zero
 * means "unused" or the default noted.
 */
struct kvmx_paging {
	u64 cr0, cr3, cr4, efer;
	u64 rflags;		/* AC only */
	u64 pdptes[4];		/* PAE: the PDPTE registers, if pdptes_valid */
	u32 pkru;		/* with CR4.PKE */
	u8 cpl;
	u8 maxphyaddr;		/* guest CPUID.80000008H:EAX[7:0]; 0 means 52 */
	u8 model;		/* KVMX_MODEL_* */
	bool pdptes_valid;	/* else PAE walks read the PDPTEs at CR3 */
};

/*
 * What decides the meaning of a guest entry, packed in one word so it
 * compares and hashes as an integer (the shadow MMU keys on it): two walks
 * with equal roles interpret the same tables the same way.
 */
union kvmx_walk_role {
	u32 word;
	struct {
		u32 mode:3;		/* enum kvmx_paging_mode */
		u32 wp:1;		/* CR0.WP: supervisor writes obey R/W */
		u32 pse:1;		/* CR4.PSE: 4 MiB pages in 32-bit paging */
		u32 smep:1;
		u32 smap:1;
		u32 nxe:1;		/* EFER.NXE: bit 63 is XD, not reserved */
		u32 pke:1;		/* CR4.PKE in 4/5-level paging */
		u32 amd:1;
		u32 gbpages:1;
		u32 pse36:1;
		u32 maxphyaddr:6;
		u32 unused:14;
	};
};

/*
 * Guest-physical memory, as the walker sees it.
 *  read: copy the @len-byte (4 or 8, naturally aligned) entry at @gpa into
 *	@val; 0, or -errno if no memory backs @gpa.
 *  cmpxchg_pte: replace the @len-byte entry at @gpa with @val if it still holds
 *	@old; 0, -EAGAIN if it changed (the walk starts again), or another
 *	-errno if it cannot be written.  May be NULL: the walk then reports
 *	the accessed/dirty updates without making them.
 */
struct kvmx_walk_ops {
	int (*read)(void *ctx, u64 gpa, void *val, unsigned int len);
	int (*cmpxchg_pte)(void *ctx, u64 gpa, u64 old, u64 val, unsigned int len);
};

/* One accessed/dirty update: the entry at @gpa goes from @old to @val. */
struct kvmx_walk_update {
	u64 gpa;
	u64 old;
	u64 val;
	u8 len;
	u8 level;
};

/*
 * The outcome of a walk.  Per-level arrays are indexed by level - 1 (1 is
 * the PTE, 5 the PML5E) and hold the levels from the top down to @level;
 * pte_gpa is ~0 for PDPTE registers, which live in no memory.
 */
struct kvmx_walk_result {
	u64 gpa;		/* translation, offset within the page included */
	u64 pte;		/* the leaf entry, after the updates */
	u32 error_code;		/* KVMX_WALK_FAULT: the #PF error code */
	u8 level;		/* leaf level, or the level that faulted */
	u8 page_shift;		/* 12, 21, 22 or 30 */
	u8 access;		/* KVMX_WALK_W/U/X */
	u8 nr_updates;
	u64 ptes[KVMX_WALK_MAX_LEVELS];
	u64 pte_gpa[KVMX_WALK_MAX_LEVELS];
	struct kvmx_walk_update updates[KVMX_WALK_MAX_LEVELS];
};

/*
 * kvmx_walk() returns one of these, or -errno: -EFAULT (or the callback's
 * error) when an entry cannot be read or updated, with @level and pte_gpa
 * naming it; -EAGAIN when the guest kept changing the entries.
 */
#define KVMX_WALK_OK		0
#define KVMX_WALK_FAULT		1	/* deliver #PF(error_code), CR2 = the address */

enum kvmx_paging_mode kvmx_paging_mode_of(const struct kvmx_paging *p);
union kvmx_walk_role kvmx_walk_role(const struct kvmx_paging *p);
int kvmx_walk(const struct kvmx_paging *p, const struct kvmx_walk_ops *ops,
	      void *ctx, u64 gva, u32 access, struct kvmx_walk_result *res);
int kvmx_walk_load_pdptes(const struct kvmx_paging *p,
			  const struct kvmx_walk_ops *ops, void *ctx,
			  u64 pdptes[4]);

#ifdef __cplusplus
}
#endif

#ifdef __KERNEL__
#include <linux/kvm_types.h>

struct kvmx_vm;

/*
 * Kernel side (mm/guest_virt.c): walks through the VM's memslots, from the
 * VMM's task with srcu_read_lock(&vm->srcu) held.
 */
int kvmx_walk_guest(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva,
		    u32 access, struct kvmx_walk_result *res);
int kvmx_gva_to_gpa(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva, gpa_t *gpa);
int kvmx_guest_load_pdptes(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 pdptes[4]);
int kvmx_read_guest_virt(struct kvmx_vm *vm, const struct kvmx_paging *p, u64 gva,
			 void *data, int len);
#endif

#endif /* _KVMX_WALK_H */
