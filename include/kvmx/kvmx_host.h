/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kvmx core objects shared by the core module and the vendor modules.
 */
#ifndef _KVMX_HOST_H
#define _KVMX_HOST_H

#include <linux/types.h>
#include <linux/kvm_types.h>
#include <linux/refcount.h>
#include <linux/mm_types.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/srcu.h>
#include <linux/xarray.h>
#include <linux/mmu_notifier.h>
#include <linux/preempt.h>
#include <linux/kvm.h>
#include <linux/kvmx.h>
#include <asm/fpu/api.h>
#include <asm/fpu/types.h>

struct kvmx_vm;
struct kvmx_vcpu;

/* Limits, as in-tree KVM on x86 advertises them (KVM_CAP_NR_VCPUS & co). */
#define KVMX_MAX_VCPUS		64
#define KVMX_USER_MEM_SLOTS	32764
#define KVMX_MEM_MAX_NR_PAGES	((1UL << 31) - 1)
#define KVMX_MAX_CPUID_ENTRIES	256

/*
 * Pages of the vCPU mmap after kvm_run, as x86 KVM lays them out: port I/O
 * data (KVM_PIO_PAGE_OFFSET) and the VM's coalesced MMIO ring
 * (KVM_COALESCED_MMIO_PAGE_OFFSET).  kvmx offers no coalesced MMIO, so its
 * ring stays empty, but the size KVM_GET_VCPU_MMAP_SIZE reports is ABI.
 */
#define KVMX_PIO_PAGE_OFFSET		1
#define KVMX_COALESCED_MMIO_PAGE_OFFSET	2
#define KVMX_VCPU_MMAP_PAGES		3

/* General purpose registers, in the encoding order of the ModRM reg field. */
enum kvmx_reg {
	KVMX_RAX, KVMX_RCX, KVMX_RDX, KVMX_RBX, KVMX_RSP, KVMX_RBP, KVMX_RSI, KVMX_RDI,
	KVMX_R8, KVMX_R9, KVMX_R10, KVMX_R11, KVMX_R12, KVMX_R13, KVMX_R14, KVMX_R15,
	KVMX_NR_REGS
};

/*
 * How a backend's two-dimensional page tables encode entries; mm/npt.c
 * builds them.  NPT uses the host's x86 format (kvmx_tdp_format_x86), EPT
 * its own bits (kvmx-intel).  An entry is present when it has @present.
 */
struct kvmx_tdp_format {
	u64 present;	/* set in every present entry */
	u64 writable;	/* write permission */
	u64 huge;	/* a leaf above level 1 (2 MiB) */
	u64 table;	/* an entry pointing to the next table */
	u64 leaf;	/* every leaf; writable ones add @writable | @dirty */
	u64 dirty;
	u64 pfn_mask;	/* the address bits */
	int levels;	/* table depth; 0: as deep as the host pages */
};

extern const struct kvmx_tdp_format kvmx_tdp_format_x86;

/*
 * The vendor backend (kvmx-amd or kvmx-intel).  Filled with designated
 * initializers by the backend and handed to kvmx_register_vendor().  Every
 * hook is also listed in kvmx/vendor-ops.h, which says whether it is
 * mandatory; registration checks that list.
 */
struct kvmx_vendor_ops {
	const char *name;
	/*
	 * Whether this CPU can run the backend: 0, or -EOPNOTSUPP (no SVM/VMX,
	 * or the firmware disabled it) or -EBUSY (another hypervisor owns it),
	 * with a message.  Called by kvmx_register_vendor() once it knows no
	 * other backend is registered, the order in-tree KVM checks in.
	 */
	int (*check_hardware)(void);
	/* Size of the vendor's VM object, which embeds struct kvmx_vm first. */
	size_t vm_size;
	/* Size of the vendor's vCPU object, which embeds struct kvmx_vcpu first. */
	size_t vcpu_size;
	/* The entry format of its NPT/EPT tables; required. */
	const struct kvmx_tdp_format *tdp_format;
	/*
	 * MMU modes the backend runs vCPUs in: KVMX_MMU_MODE_TDP and/or
	 * KVMX_MMU_MODE_SHADOW (uapi/linux/kvmx.h).  Read after check_hardware
	 * succeeded, so a backend may fill it from what the CPU offers.
	 */
	u32 mmu_modes;
	/*
	 * The MMU modes (of @mmu_modes) in which vCPUs also run with CR0.PE
	 * clear; in the others, the backend refuses to enter real mode
	 * (KVMX_CAP_REAL_MODE, uapi/linux/kvmx.h).
	 */
	u32 real_mode_modes;

	/* Turn virtualization on/off on the calling CPU (preemption disabled). */
	int (*hardware_enable)(void);
	void (*hardware_disable)(void);
	/*
	 * Turn virtualization off on the calling CPU on a crash or emergency
	 * reboot (NMI context, anything may be held).  The core registers it
	 * with cpu_emergency_register_virt_callback() only while virtualization
	 * is on, as KVM does, so a backend that is refused, or idle, never
	 * holds that single system-wide slot.
	 */
	void (*emergency_disable)(void);

	int (*vm_init)(struct kvmx_vm *vm);
	void (*vm_destroy)(struct kvmx_vm *vm);

	int (*vcpu_create)(struct kvmx_vcpu *vcpu);
	void (*vcpu_free)(struct kvmx_vcpu *vcpu);
	/* The vCPU becomes / stops being current on @cpu (preemption disabled). */
	void (*vcpu_load)(struct kvmx_vcpu *vcpu, int cpu);
	void (*vcpu_put)(struct kvmx_vcpu *vcpu);
	/*
	 * Enter the guest once and handle the exit.  Returns what an exit
	 * handler returns: 1 re-enter, 0 back to userspace (kvm_run filled),
	 * < 0 an error for KVM_RUN.
	 */
	int (*vcpu_run)(struct kvmx_vcpu *vcpu);
	/* Finish an instruction userspace completed (I/O in, MMIO read). */
	int (*complete_userspace_io)(struct kvmx_vcpu *vcpu);

	void (*get_regs)(struct kvmx_vcpu *vcpu, struct kvm_regs *regs);
	void (*set_regs)(struct kvmx_vcpu *vcpu, const struct kvm_regs *regs);
	void (*get_sregs)(struct kvmx_vcpu *vcpu, struct kvm_sregs *sregs);
	int (*set_sregs)(struct kvmx_vcpu *vcpu, const struct kvm_sregs *sregs);
	int (*get_msr)(struct kvmx_vcpu *vcpu, u32 index, u64 *data, bool host);
	int (*set_msr)(struct kvmx_vcpu *vcpu, u32 index, u64 data, bool host);
	void (*get_events)(struct kvmx_vcpu *vcpu, struct kvm_vcpu_events *ev);
	int (*set_events)(struct kvmx_vcpu *vcpu, const struct kvm_vcpu_events *ev);
	/* Guest RFLAGS.IF and whether an external interrupt could be injected now. */
	bool (*interrupt_allowed)(struct kvmx_vcpu *vcpu);
	bool (*get_if_flag)(struct kvmx_vcpu *vcpu);
};

/*
 * A memslot.  Published slots are immutable, apart from the bits in
 * dirty_bitmap; a change publishes a new struct kvmx_memslots and frees the
 * old structures after synchronize_srcu(&vm->srcu).
 */
struct kvmx_memory_slot {
	u16 id;
	u32 flags;
	gfn_t base_gfn;
	unsigned long npages;
	unsigned long userspace_addr;
	/* One bit per page, set by the MMU on a write (KVM_MEM_LOG_DIRTY_PAGES). */
	unsigned long *dirty_bitmap;
};

struct kvmx_memslots {
	int nr;
	struct kvmx_memory_slot *slots[];
};

/* Buckets of the shadow-page hash (by guest frame number). */
#define KVMX_SP_HASH_BITS	10

/*
 * The MMU of a VM: the two-dimensional page table (mm/npt.c) or the shadow
 * page tables (mm/shadow.c), as @mode says.  The tables, their entries and
 * every shadow-page structure are protected by @lock; the notifier sequence
 * protocol (@invalidate_seq, @invalidate_in_progress) is described in
 * mm/npt.c.
 */
struct kvmx_mmu {
	/*
	 * KVMX_MMU_MODE_TDP or KVMX_MMU_MODE_SHADOW.  Written under vm->lock
	 * while the VM has no vCPU (KVM_ENABLE_CAP), constant afterwards.
	 */
	u32 mode;
	/* Protects the tables and every field below. */
	spinlock_t lock;
	u64 *root;		/* TDP: top-level table, a kernel page */
	int levels;		/* TDP: 4 or 5, the host's paging depth */
	unsigned long invalidate_seq;
	long invalidate_in_progress;
	unsigned long invalidate_start, invalidate_end;
	unsigned long nr_table_pages;
	struct mmu_notifier notifier;
	bool notifier_registered;

	/* Shadow paging: see mm/shadow.c for the rules. */
	struct hlist_head *sp_hash;	/* valid shadow pages, by guest frame */
	struct list_head sp_list;	/* every shadow page, valid or zapped */
	unsigned long nr_sps;
	/* Bumped by a zap of everything: vCPU roots from before are gone. */
	unsigned long shadow_gen;
	/* Statistics, for the VM's stats and the benchmark. */
	u64 nr_shadow_faults, nr_shadow_unprotects, nr_shadow_zap_alls;
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

	/* Serializes vCPU creation; protects @vcpus and @created_vcpus. */
	struct mutex lock;
	/* vCPUs by index; an entry, once stored, stays until the VM is freed. */
	struct xarray vcpus;
	atomic_t online_vcpus;
	int created_vcpus;

	/*
	 * Memslots: written under @slots_lock, published with rcu_assign_pointer
	 * and read under srcu_read_lock(&@srcu).
	 */
	struct mutex slots_lock;
	struct kvmx_memslots __rcu *memslots;
	struct srcu_struct srcu;

	struct kvmx_mmu mmu;

	/* The (always empty) coalesced MMIO ring; see KVMX_VCPU_MMAP_PAGES. */
	void *coalesced_mmio_ring;
};

/* vcpu->mode: written by the vCPU thread, read by kvmx_kick_vcpu(). */
enum kvmx_vcpu_mode { KVMX_OUTSIDE_GUEST_MODE, KVMX_IN_GUEST_MODE };

/*
 * vcpu->requests bits, made by other threads and served before each entry.
 * KVMX_REQ_MMU_RELOAD: the shadow tables the vCPU's root reaches were zapped;
 * it must load a root again (kvmx_shadow_load()) before it enters the guest.
 */
#define KVMX_REQ_TLB_FLUSH	0
#define KVMX_REQ_MMU_RELOAD	1

struct kvmx_sp;

/*
 * A vCPU's view of the shadow MMU (mm/shadow.c), touched by the vCPU thread
 * only, under vm->mmu.lock where it points into the shared tables.
 */
struct kvmx_shadow_vcpu {
	/* What the hardware's CR3 gets: @root's table, or @pae_root. */
	phys_addr_t root_pa;
	/* 4-level guests: the root shadow page (holds a root_count). */
	struct kvmx_sp *root;
	/*
	 * Legacy (non-long) modes: a private PAE page-directory-pointer table
	 * below 4 GiB, its four entries pointing to shadow page directories.
	 */
	u64 *pae_root;
	/* The guest state the root was loaded for. */
	u64 cr3;
	u32 walk_role;
	u64 pdptes[4];
	unsigned long gen;
	bool loaded;
	/* Allocations made before taking mmu.lock, consumed under it. */
	void *page_cache[12];
	int nr_pages;
	struct kvmx_sp *sp_cache[4];
	int nr_sps;
};

/* What an instruction waiting for userspace completes into. */
struct kvmx_pending_io {
	bool active;
	bool in;		/* I/O in or MMIO read: a value comes back */
	bool mmio;
	u8 size;		/* bytes per element */
	u32 count;
	enum kvmx_reg reg;	/* destination of a read */
	bool sign_extend;
	u8 dst_size;		/* width written to @reg */
	u64 next_rip;
	/*
	 * INS/OUTS: @count elements (REP INS batches, OUTS moves one), the
	 * first at @linear; rSI/rDI/rCX move on completion.
	 */
	bool string;
	bool rep;
	u8 addr_size;
	u64 linear;
};

/*
 * A vCPU.  Created by KVM_CREATE_VCPU.  @mutex serializes every vCPU ioctl;
 * fields without another note are touched only under it.
 */
struct kvmx_vcpu {
	struct kvmx_vm *vm;
	u32 vcpu_id;
	int vcpu_idx;
	struct mutex mutex;	/* serializes the vCPU ioctls */
	struct kvm_run *run;	/* page 0 of the vCPU mmap */
	void *pio_data;		/* page 1 */
	/* The physical CPU we are loaded on, or -1. Written with preemption off. */
	int cpu;
	struct preempt_notifier preempt_notifier;
	struct pid *pid;

	int mode;			/* enum kvmx_vcpu_mode */
	/* Entered the guest at least once (KVM's kvm_vcpu_has_run()). */
	bool has_run;
	unsigned long requests;		/* KVMX_REQ_* bits, atomic bitops */

	unsigned long regs[KVMX_NR_REGS];

	bool sigset_active;
	sigset_t sigset;

	int cpuid_nent;
	struct kvm_cpuid_entry2 *cpuid_entries;
	bool cpuid_set;		/* KVM_SET_CPUID2 was called (even with 0 entries) */

	struct fpu_guest guest_fpu;
	u64 xcr0;

	struct kvmx_pending_io io;

	/* Events: the interrupt queued by KVM_INTERRUPT, a pending NMI. */
	bool irq_pending;
	u8 irq_vector;
	bool nmi_pending;

	struct kvmx_shadow_vcpu shadow;

	/*
	 * Statistics for the vCPU's stats fd (kmod/stats.c): written by the
	 * vCPU thread with WRITE_ONCE, read by the stats fd with READ_ONCE.
	 */
	struct {
		u64 exits;
	} stat;
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

/* Memslots (kmod/memslot.c); callers hold srcu_read_lock(&vm->srcu). */
struct kvmx_memory_slot *kvmx_gfn_to_memslot(struct kvmx_vm *vm, gfn_t gfn);
int kvmx_read_guest(struct kvmx_vm *vm, gpa_t gpa, void *data, unsigned long len);
int kvmx_write_guest(struct kvmx_vm *vm, gpa_t gpa, const void *data, unsigned long len);

/* MMU (mm/npt.c). */
int kvmx_mmu_init(struct kvmx_vm *vm);
void kvmx_mmu_destroy(struct kvmx_vm *vm);
phys_addr_t kvmx_mmu_root_pa(struct kvmx_vm *vm);
/* Returns 1 when the fault is fixed, 0 when @gpa is MMIO, < 0 on error. */
int kvmx_mmu_page_fault(struct kvmx_vcpu *vcpu, gpa_t gpa, bool write, bool fetch);

/* Shadow paging (mm/shadow.c), for the backends; see there. */
struct kvmx_paging;
struct kvmx_walk_result;
static inline bool kvmx_vm_shadow(struct kvmx_vm *vm)
{
	return vm->mmu.mode == KVMX_MMU_MODE_SHADOW;
}

int kvmx_shadow_load(struct kvmx_vcpu *vcpu, const struct kvmx_paging *p);
void kvmx_shadow_reset(struct kvmx_vcpu *vcpu);
#define KVMX_SHADOW_FIXED	1	/* retry the access */
#define KVMX_SHADOW_MMIO	0	/* emulate an MMIO access at res->gpa */
#define KVMX_SHADOW_REFLECT	2	/* inject #PF(res->error_code), CR2 = gva */
#define KVMX_SHADOW_EMULATE_WRITE 3	/* emulate the write to guest RAM at res->gpa */
int kvmx_shadow_page_fault(struct kvmx_vcpu *vcpu, const struct kvmx_paging *p,
			   u64 gva, u32 error_code, struct kvmx_walk_result *res);

/*
 * How a #PF raised while the CPU delivered exception @vector combines with
 * it (SDM: "Conditions for Generating a Double Fault"; APM: "#DF"), for a
 * backend that reflects shadow-paging faults itself: after a #PF it is a
 * double fault, after a double fault a triple fault (shutdown); after a
 * benign or contributory exception the #PF is delivered alone, and a fault
 * comes back when its instruction runs again (KVM's kvm_multiple_exception()).
 */
enum kvmx_fault_combo {
	KVMX_FAULT_SERIAL,
	KVMX_FAULT_DOUBLE,
	KVMX_FAULT_TRIPLE,
};

static inline enum kvmx_fault_combo kvmx_pf_after_exception(u8 vector)
{
	if (vector == DF_VECTOR)
		return KVMX_FAULT_TRIPLE;
	if (vector == PF_VECTOR)
		return KVMX_FAULT_DOUBLE;
	return KVMX_FAULT_SERIAL;
}

/* Core services for the backends (kmod/vcpu.c). */
void kvmx_flush_remote_tlbs(struct kvmx_vm *vm);
const struct kvm_cpuid_entry2 *kvmx_find_cpuid_entry(struct kvmx_vcpu *vcpu,
						     u32 function, u32 index);
int kvmx_fill_io_exit(struct kvmx_vcpu *vcpu, bool in, u16 port, int size,
		      u32 count, u64 next_rip);
/* Returns 0, or 1 when @xcr0 is not valid for the guest (#GP / -EINVAL). */
int kvmx_set_xcr0(struct kvmx_vcpu *vcpu, u64 xcr0);
u64 kvmx_cr4_reserved_bits(struct kvmx_vcpu *vcpu);
void kvmx_paging_model(struct kvmx_vcpu *vcpu, struct kvmx_paging *p);
bool kvmx_apic_base_valid(struct kvmx_vcpu *vcpu, u64 old, u64 data, bool host);
bool kvmx_sregs_valid(struct kvmx_vcpu *vcpu, const struct kvm_sregs *sr, u64 cr4_reserved,
		      u64 apic_base);
bool kvmx_pat_valid(u64 pat);
void kvmx_internal_error(struct kvmx_vcpu *vcpu, u32 suberror, int ndata, const u64 *data);

#endif /* _KVMX_HOST_H */
