// SPDX-License-Identifier: GPL-2.0
/*
 * KVM's binary statistics: KVM_GET_STATS_FD on a VM or vCPU fd.
 *
 * A stats fd reads as KVM's does (Documentation/virt/kvm/api.rst), four
 * blocks back to back:
 *
 *   struct kvm_stats_header
 *   the id string, KVM_STATS_NAME_SIZE bytes, NUL padded
 *   num_desc descriptors, each a struct kvm_stats_desc and then
 *     KVM_STATS_NAME_SIZE bytes of NUL-padded name
 *   the data: one u64 per stat (every stat here has size 1), at
 *     data_offset + desc.offset, snapshot at each read
 *
 * Only the data changes; a read at any offset and of any size returns the
 * part of those blocks it covers, and stops at their end.  docs/abi.md
 * lists the stats and what they mean.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/build_bug.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/kvm.h>

#include "core.h"

/*
 * A descriptor as the fd shows it: the fields of struct kvm_stats_desc, then
 * KVM_STATS_NAME_SIZE (linux/kvm_types.h) bytes of name.  The uapi header
 * declares that name as a flexible array (6.1) or, for the kernel, as a
 * KVM_STATS_NAME_SIZE array (6.12), so kvmx spells the layout out and checks
 * it against theirs.
 */
struct kvmx_stats_desc {
	__u32 flags;
	__s16 exponent;
	__u16 size;
	__u32 offset;
	__u32 bucket_size;
	char name[KVM_STATS_NAME_SIZE];
};

static_assert(offsetof(struct kvmx_stats_desc, flags) == offsetof(struct kvm_stats_desc, flags));
static_assert(offsetof(struct kvmx_stats_desc, exponent) ==
	      offsetof(struct kvm_stats_desc, exponent));
static_assert(offsetof(struct kvmx_stats_desc, size) == offsetof(struct kvm_stats_desc, size));
static_assert(offsetof(struct kvmx_stats_desc, offset) == offsetof(struct kvm_stats_desc, offset));
static_assert(offsetof(struct kvmx_stats_desc, bucket_size) ==
	      offsetof(struct kvm_stats_desc, bucket_size));
static_assert(offsetof(struct kvmx_stats_desc, name) == offsetof(struct kvm_stats_desc, name));
static_assert(sizeof(struct kvmx_stats_desc) ==
	      offsetof(struct kvm_stats_desc, name) + KVM_STATS_NAME_SIZE);

/*
 * Stat @_field of data block struct @_stats: one u64 without unit, named as
 * the field.
 */
#define KVMX_STAT(_stats, _field, _type)				\
	{								\
		.flags = (_type) | KVM_STATS_UNIT_NONE | KVM_STATS_BASE_POW10, \
		.exponent = 0,						\
		.size = 1,						\
		.offset = offsetof(struct _stats, _field),		\
		.bucket_size = 0,					\
		.name = #_field,					\
	}

/*
 * The header of a stats fd with descriptor table @_descs; the blocks follow
 * each other without gaps.
 */
#define KVMX_STATS_HEADER(_descs)					\
	{								\
		.flags = 0,						\
		.name_size = KVM_STATS_NAME_SIZE,			\
		.num_desc = ARRAY_SIZE(_descs),				\
		.id_offset = sizeof(struct kvm_stats_header),		\
		.desc_offset = sizeof(struct kvm_stats_header) +	\
			       KVM_STATS_NAME_SIZE,			\
		.data_offset = sizeof(struct kvm_stats_header) +	\
			       KVM_STATS_NAME_SIZE + sizeof(_descs),	\
	}

/* The data block of a VM stats fd; docs/abi.md describes each stat. */
struct kvmx_vm_stats {
	u64 mmu_mode;
	u64 shadow_pages;
	u64 shadow_faults;
	u64 shadow_unprotects;
	u64 shadow_zap_alls;
	u64 tdp_table_pages;
};

static const struct kvmx_stats_desc kvmx_vm_stats_desc[] = {
	KVMX_STAT(kvmx_vm_stats, mmu_mode, KVM_STATS_TYPE_INSTANT),
	KVMX_STAT(kvmx_vm_stats, shadow_pages, KVM_STATS_TYPE_INSTANT),
	KVMX_STAT(kvmx_vm_stats, shadow_faults, KVM_STATS_TYPE_CUMULATIVE),
	KVMX_STAT(kvmx_vm_stats, shadow_unprotects, KVM_STATS_TYPE_CUMULATIVE),
	KVMX_STAT(kvmx_vm_stats, shadow_zap_alls, KVM_STATS_TYPE_CUMULATIVE),
	KVMX_STAT(kvmx_vm_stats, tdp_table_pages, KVM_STATS_TYPE_INSTANT),
};

/* Every u64 of the data block has its descriptor. */
static_assert(ARRAY_SIZE(kvmx_vm_stats_desc) * sizeof(u64) == sizeof(struct kvmx_vm_stats));

static const struct kvm_stats_header kvmx_vm_stats_header =
	KVMX_STATS_HEADER(kvmx_vm_stats_desc);

/* The data block of a vCPU stats fd. */
struct kvmx_vcpu_stats {
	u64 exits;
};

static const struct kvmx_stats_desc kvmx_vcpu_stats_desc[] = {
	KVMX_STAT(kvmx_vcpu_stats, exits, KVM_STATS_TYPE_CUMULATIVE),
};

static_assert(ARRAY_SIZE(kvmx_vcpu_stats_desc) * sizeof(u64) == sizeof(struct kvmx_vcpu_stats));

static const struct kvm_stats_header kvmx_vcpu_stats_header =
	KVMX_STATS_HEADER(kvmx_vcpu_stats_desc);

/*
 * What a stats fd points to.  It holds a reference on @vm, so the VM, and
 * @vcpu with it (vCPUs are freed with their VM), outlive every other fd.
 */
struct kvmx_stats_file {
	struct kvmx_vm *vm;
	struct kvmx_vcpu *vcpu;		/* NULL for the VM's stats */
	char id[KVM_STATS_NAME_SIZE];	/* fixed at KVM_GET_STATS_FD */
};

/* One block of the fd's contents. */
struct kvmx_stats_block {
	const void *src;
	size_t len;
};

/*
 * Copy what [*@ppos, *@ppos + @size) covers of @blocks, laid end to end, to
 * @buf and advance *@ppos.  Returns the bytes copied (0 at or past the end)
 * or -EFAULT.
 */
static ssize_t kvmx_stats_copy(const struct kvmx_stats_block *blocks, int nr_blocks,
			       char __user *buf, size_t size, loff_t *ppos)
{
	loff_t pos = *ppos, start = 0;
	size_t done = 0;
	int i;

	if (pos < 0)
		return -EINVAL;
	for (i = 0; i < nr_blocks && done < size; i++) {
		loff_t end = start + blocks[i].len;

		if (pos < end) {
			size_t off = pos - start;
			size_t n = min_t(size_t, blocks[i].len - off, size - done);

			if (copy_to_user(buf + done, blocks[i].src + off, n))
				return -EFAULT;
			done += n;
			pos += n;
		}
		start = end;
	}
	*ppos = pos;
	return done;
}

/* A consistent snapshot of the VM's stats: all read under mmu.lock. */
static void kvmx_vm_stats_snapshot(struct kvmx_vm *vm, struct kvmx_vm_stats *data)
{
	struct kvmx_mmu *mmu = &vm->mmu;

	spin_lock(&mmu->lock);
	data->mmu_mode = mmu->mode;
	data->shadow_pages = mmu->nr_sps;
	data->shadow_faults = mmu->nr_shadow_faults;
	data->shadow_unprotects = mmu->nr_shadow_unprotects;
	data->shadow_zap_alls = mmu->nr_shadow_zap_alls;
	data->tdp_table_pages = mmu->nr_table_pages;
	spin_unlock(&mmu->lock);
}

static ssize_t kvmx_vm_stats_read(struct file *file, char __user *buf, size_t size,
				  loff_t *ppos)
{
	struct kvmx_stats_file *sf = file->private_data;
	struct kvmx_vm_stats data;
	const struct kvmx_stats_block blocks[] = {
		{ &kvmx_vm_stats_header, sizeof(kvmx_vm_stats_header) },
		{ sf->id, sizeof(sf->id) },
		{ kvmx_vm_stats_desc, sizeof(kvmx_vm_stats_desc) },
		{ &data, sizeof(data) },
	};

	kvmx_vm_stats_snapshot(sf->vm, &data);
	return kvmx_stats_copy(blocks, ARRAY_SIZE(blocks), buf, size, ppos);
}

static ssize_t kvmx_vcpu_stats_read(struct file *file, char __user *buf, size_t size,
				    loff_t *ppos)
{
	struct kvmx_stats_file *sf = file->private_data;
	struct kvmx_vcpu_stats data;
	const struct kvmx_stats_block blocks[] = {
		{ &kvmx_vcpu_stats_header, sizeof(kvmx_vcpu_stats_header) },
		{ sf->id, sizeof(sf->id) },
		{ kvmx_vcpu_stats_desc, sizeof(kvmx_vcpu_stats_desc) },
		{ &data, sizeof(data) },
	};

	/* Written by the vCPU thread alone, with WRITE_ONCE (kvmx_host.h). */
	data.exits = READ_ONCE(sf->vcpu->stat.exits);
	return kvmx_stats_copy(blocks, ARRAY_SIZE(blocks), buf, size, ppos);
}

static int kvmx_stats_release(struct inode *inode, struct file *file)
{
	struct kvmx_stats_file *sf = file->private_data;

	kvmx_put_vm(sf->vm);
	kfree(sf);
	return 0;
}

/*
 * Not const: .owner is the backend module, set by kvmx_stats_set_owner(),
 * so a stats fd pins it as the VM fd does.  As KVM's, the fds are read-only,
 * and pread() is the way to read them repeatedly.
 */
static struct file_operations kvmx_vm_stats_fops = {
	.read = kvmx_vm_stats_read,
	.release = kvmx_stats_release,
	.llseek = noop_llseek,
};

static struct file_operations kvmx_vcpu_stats_fops = {
	.read = kvmx_vcpu_stats_read,
	.release = kvmx_stats_release,
	.llseek = noop_llseek,
};

void kvmx_stats_set_owner(struct module *owner)
{
	kvmx_vm_stats_fops.owner = owner;
	kvmx_vcpu_stats_fops.owner = owner;
}

/* Make a stats fd for @vm, or for @vcpu of @vm; returns the fd or an errno. */
static int kvmx_get_stats_fd(struct kvmx_vm *vm, struct kvmx_vcpu *vcpu)
{
	const struct file_operations *fops;
	struct kvmx_stats_file *sf;
	struct file *file;
	int fd, r;

	sf = kzalloc(sizeof(*sf), GFP_KERNEL_ACCOUNT);
	if (!sf)
		return -ENOMEM;
	sf->vm = vm;
	sf->vcpu = vcpu;
	/* The process the VM belongs to: the ioctl comes only from its mm. */
	if (vcpu) {
		snprintf(sf->id, sizeof(sf->id), "kvmx-%d/vcpu-%u", task_tgid_nr(current),
			 vcpu->vcpu_id);
		fops = &kvmx_vcpu_stats_fops;
	} else {
		snprintf(sf->id, sizeof(sf->id), "kvmx-%d", task_tgid_nr(current));
		fops = &kvmx_vm_stats_fops;
	}

	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto out_free;
	}
	file = anon_inode_getfile(vcpu ? "kvmx-vcpu-stats" : "kvmx-vm-stats", fops, sf,
				  O_RDONLY);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		goto out_put_fd;
	}
	file->f_mode |= FMODE_PREAD;
	kvmx_get_vm(vm);
	fd_install(fd, file);
	return fd;

out_put_fd:
	put_unused_fd(fd);
out_free:
	kfree(sf);
	return r;
}

int kvmx_vm_get_stats_fd(struct kvmx_vm *vm)
{
	return kvmx_get_stats_fd(vm, NULL);
}

int kvmx_vcpu_get_stats_fd(struct kvmx_vcpu *vcpu)
{
	return kvmx_get_stats_fd(vcpu->vm, vcpu);
}
