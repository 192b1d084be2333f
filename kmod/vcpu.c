// SPDX-License-Identifier: GPL-2.0
/*
 * vCPU objects, the vCPU fd, its mmap'd kvm_run page and the KVM_RUN loop.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/uaccess.h>
#include <linux/sched/signal.h>
#include <linux/kvm.h>
#include <asm/fpu/api.h>
#include <asm/fpu/xcr.h>

#include "core.h"

static struct kvmx_vcpu *preempt_notifier_to_vcpu(struct preempt_notifier *pn)
{
	return container_of(pn, struct kvmx_vcpu, preempt_notifier);
}

static void kvmx_sched_in(struct preempt_notifier *pn, int cpu)
{
	struct kvmx_vcpu *vcpu = preempt_notifier_to_vcpu(pn);

	WRITE_ONCE(vcpu->cpu, cpu);
	kvmx_vendor->vcpu_load(vcpu, cpu);
}

static void kvmx_sched_out(struct preempt_notifier *pn, struct task_struct *next)
{
	struct kvmx_vcpu *vcpu = preempt_notifier_to_vcpu(pn);

	kvmx_vendor->vcpu_put(vcpu);
	WRITE_ONCE(vcpu->cpu, -1);
}

static struct preempt_ops kvmx_preempt_ops = {
	.sched_in = kvmx_sched_in,
	.sched_out = kvmx_sched_out,
};

/*
 * Make @vcpu current on this CPU for an ioctl; the preempt notifier follows
 * it across preemption and migration until kvmx_vcpu_unload().
 */
static void kvmx_vcpu_load(struct kvmx_vcpu *vcpu)
{
	int cpu = get_cpu();

	lockdep_assert_held(&vcpu->mutex);
	preempt_notifier_register(&vcpu->preempt_notifier);
	WRITE_ONCE(vcpu->cpu, cpu);
	kvmx_vendor->vcpu_load(vcpu, cpu);
	put_cpu();
}

static void kvmx_vcpu_unload(struct kvmx_vcpu *vcpu)
{
	preempt_disable();
	kvmx_vendor->vcpu_put(vcpu);
	WRITE_ONCE(vcpu->cpu, -1);
	preempt_notifier_unregister(&vcpu->preempt_notifier);
	preempt_enable();
}

static void kvmx_ipi_nop(void *unused)
{
}

/**
 * kvmx_flush_remote_tlbs - make every vCPU drop its guest TLB entries
 * @vm: the VM
 *
 * Each vCPU serves KVMX_REQ_TLB_FLUSH right before its next VMRUN, after
 * publishing IN_GUEST_MODE with a full barrier; a vCPU that is in guest mode
 * now gets an IPI and is waited for, so on return no vCPU can use an entry
 * cached before the call.  Must not be called with interrupts disabled.
 */
void kvmx_flush_remote_tlbs(struct kvmx_vm *vm)
{
	struct kvmx_vcpu *vcpu;
	unsigned long i;

	xa_for_each(&vm->vcpus, i, vcpu) {
		set_bit(KVMX_REQ_TLB_FLUSH, &vcpu->requests);
		/* Request before mode: pairs with the barrier in the vendor entry path. */
		smp_mb__after_atomic();
		if (READ_ONCE(vcpu->mode) == KVMX_IN_GUEST_MODE) {
			int cpu = READ_ONCE(vcpu->cpu);

			if (cpu >= 0)
				smp_call_function_single(cpu, kvmx_ipi_nop, NULL, 1);
		}
	}
}
EXPORT_SYMBOL_GPL(kvmx_flush_remote_tlbs);

/**
 * kvmx_fill_io_exit - describe a port I/O access in kvm_run, as KVM does
 * @vcpu: the vCPU
 * @in: true for IN/INS
 * @port: the port
 * @size: bytes per element (1, 2, 4)
 * @count: elements; the data lives at io.data_offset in the vCPU mmap
 * @next_rip: where the guest continues once the access is done
 *
 * For OUT the caller has already put the data in vcpu->pio_data.  Returns 0
 * (exit to userspace).
 */
int kvmx_fill_io_exit(struct kvmx_vcpu *vcpu, bool in, u16 port, int size,
		      u32 count, u64 next_rip)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_IO;
	run->io.direction = in ? KVM_EXIT_IO_IN : KVM_EXIT_IO_OUT;
	run->io.size = size;
	run->io.port = port;
	run->io.count = count;
	run->io.data_offset = KVMX_PIO_PAGE_OFFSET * PAGE_SIZE;
	/* Start from nothing: a string access earlier must not leak into this one. */
	vcpu->io = (struct kvmx_pending_io){
		.active = true, .in = in, .size = size, .count = count,
		.next_rip = next_rip,
	};
	return 0;
}
EXPORT_SYMBOL_GPL(kvmx_fill_io_exit);

/**
 * kvmx_internal_error - report KVM_EXIT_INTERNAL_ERROR to userspace
 * @vcpu: the vCPU
 * @suberror: KVM_INTERNAL_ERROR_*
 * @ndata: entries in @data (at most 16)
 * @data: the values KVM would report (e.g. the raw exit code)
 */
void kvmx_internal_error(struct kvmx_vcpu *vcpu, u32 suberror, int ndata, const u64 *data)
{
	struct kvm_run *run = vcpu->run;
	int i;

	ndata = min_t(int, ndata, ARRAY_SIZE(run->internal.data));
	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->internal.suberror = suberror;
	run->internal.ndata = ndata;
	for (i = 0; i < ndata; i++)
		run->internal.data[i] = data[i];
}
EXPORT_SYMBOL_GPL(kvmx_internal_error);

static bool kvmx_ready_for_interrupt_injection(struct kvmx_vcpu *vcpu)
{
	return kvmx_vendor->interrupt_allowed(vcpu) && !vcpu->irq_pending;
}

/* What KVM's post_kvm_run_save() leaves in kvm_run after every KVM_RUN. */
static void kvmx_post_run_save(struct kvmx_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;

	run->if_flag = kvmx_vendor->get_if_flag(vcpu);
	run->ready_for_interrupt_injection = kvmx_ready_for_interrupt_injection(vcpu);
}

/*
 * The run loop.  Every exit handler, and the vendor's vcpu_run hook that calls
 * it, returns:
 *   1    the exit is handled, re-enter the guest;
 *   0    go back to userspace, kvm_run->exit_reason and its union filled;
 *   < 0  an error KVM_RUN returns (kvm_run->exit_reason may say more, e.g.
 *        KVM_EXIT_INTR with -EINTR).
 * Before each entry: a pending signal ends the loop with -EINTR and
 * KVM_EXIT_INTR, and the scheduler gets its chance.  After each entry that
 * wants to continue: if userspace asked for an interrupt window and one is
 * open, exit with KVM_EXIT_IRQ_WINDOW_OPEN.
 */
static int kvmx_vcpu_run_loop(struct kvmx_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int r;

	for (;;) {
		if (signal_pending(current)) {
			run->exit_reason = KVM_EXIT_INTR;
			return -EINTR;
		}
		cond_resched();
		/* Pairs with KVMX_KILL_VM_ON()'s WRITE_ONCE: a dead VM runs no more. */
		if (READ_ONCE(vcpu->vm->dead))
			return -EIO;

		vcpu->has_run = true;
		r = kvmx_vendor->vcpu_run(vcpu);
		/* One guest entry and its exit (or a retry just before entry). */
		WRITE_ONCE(vcpu->stat.exits, vcpu->stat.exits + 1);
		if (r <= 0)
			return r;

		if (READ_ONCE(run->request_interrupt_window) &&
		    kvmx_ready_for_interrupt_injection(vcpu)) {
			run->exit_reason = KVM_EXIT_IRQ_WINDOW_OPEN;
			return 0;
		}
	}
}

/*
 * Since v6.10 the kernel's view of kvm_run renames the field through
 * HINT_UNSAFE_IN_KVM() so that KVM reads it only once; the ABI (and the
 * userspace name) is unchanged.  Test for the macro, not a version.
 */
#ifndef HINT_UNSAFE_IN_KVM
#define HINT_UNSAFE_IN_KVM(field) field
#endif

static bool kvmx_immediate_exit(struct kvm_run *run)
{
	return READ_ONCE(run->HINT_UNSAFE_IN_KVM(immediate_exit));
}

static long kvmx_vcpu_ioctl_run(struct kvmx_vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	int r;

	if (vcpu->sigset_active)
		sigprocmask(SIG_SETMASK, &vcpu->sigset, &current->real_blocked);

	kvmx_vcpu_load(vcpu);
	fpu_swap_kvm_fpstate(&vcpu->guest_fpu, true);
	run->flags = 0;

	/* Finish what userspace completed first, as KVM does. */
	if (vcpu->io.active) {
		vcpu->io.active = false;
		r = kvmx_vendor->complete_userspace_io(vcpu);
		if (r <= 0)
			goto out;
	}
	if (kvmx_immediate_exit(run)) {
		r = -EINTR;
		goto out;
	}
	r = kvmx_vcpu_run_loop(vcpu);
out:
	kvmx_post_run_save(vcpu);
	fpu_swap_kvm_fpstate(&vcpu->guest_fpu, false);
	kvmx_vcpu_unload(vcpu);

	if (vcpu->sigset_active) {
		sigprocmask(SIG_SETMASK, &current->real_blocked, NULL);
		sigemptyset(&current->real_blocked);
	}
	return r;
}

static long kvmx_vcpu_set_signal_mask(struct kvmx_vcpu *vcpu, void __user *argp)
{
	struct kvm_signal_mask __user *usigmask = argp;
	struct kvm_signal_mask sigmask;
	sigset_t sigset;

	if (!argp) {
		vcpu->sigset_active = false;
		return 0;
	}
	if (copy_from_user(&sigmask, argp, sizeof(sigmask)))
		return -EFAULT;
	if (sigmask.len != sizeof(sigset))
		return -EINVAL;
	if (copy_from_user(&sigset, usigmask->sigset, sizeof(sigset)))
		return -EFAULT;
	sigdelsetmask(&sigset, sigmask(SIGKILL) | sigmask(SIGSTOP));
	vcpu->sigset = sigset;
	vcpu->sigset_active = true;
	return 0;
}

/*
 * KVM_GET/SET_FPU move what KVM's kvm_arch_vcpu_ioctl_get/set_fpu() move:
 * not MXCSR (it reads back as 0 and is left alone), which only
 * KVM_GET/SET_XSAVE carry.
 */
static long kvmx_vcpu_get_fpu(struct kvmx_vcpu *vcpu, void __user *argp)
{
	struct fxregs_state *fx = &vcpu->guest_fpu.fpstate->regs.fxsave;
	struct kvm_fpu *fpu;
	long r = 0;

	fpu = kzalloc(sizeof(*fpu), GFP_KERNEL_ACCOUNT);
	if (!fpu)
		return -ENOMEM;
	memcpy(fpu->fpr, fx->st_space, sizeof(fpu->fpr));
	fpu->fcw = fx->cwd;
	fpu->fsw = fx->swd;
	fpu->ftwx = fx->twd;
	fpu->last_opcode = fx->fop;
	fpu->last_ip = fx->rip;
	fpu->last_dp = fx->rdp;
	memcpy(fpu->xmm, fx->xmm_space, sizeof(fpu->xmm));
	if (copy_to_user(argp, fpu, sizeof(*fpu)))
		r = -EFAULT;
	kfree(fpu);
	return r;
}

static long kvmx_vcpu_set_fpu(struct kvmx_vcpu *vcpu, void __user *argp)
{
	struct fxregs_state *fx = &vcpu->guest_fpu.fpstate->regs.fxsave;
	struct kvm_fpu *fpu;

	fpu = memdup_user(argp, sizeof(*fpu));
	if (IS_ERR(fpu))
		return PTR_ERR(fpu);
	memcpy(fx->st_space, fpu->fpr, sizeof(fpu->fpr));
	fx->cwd = fpu->fcw;
	fx->swd = fpu->fsw;
	fx->twd = fpu->ftwx;
	fx->fop = fpu->last_opcode;
	fx->rip = fpu->last_ip;
	fx->rdp = fpu->last_dp;
	memcpy(fx->xmm_space, fpu->xmm, sizeof(fpu->xmm));
	kfree(fpu);
	return 0;
}

static long kvmx_vcpu_get_xsave(struct kvmx_vcpu *vcpu, void __user *argp)
{
	struct kvm_xsave *xsave;
	long r = 0;

	xsave = kzalloc(sizeof(*xsave), GFP_KERNEL_ACCOUNT);
	if (!xsave)
		return -ENOMEM;
	fpu_copy_guest_fpstate_to_uabi(&vcpu->guest_fpu, xsave->region,
				       sizeof(xsave->region), kvmx_supported_xcr0(), 0);
	if (copy_to_user(argp, xsave, sizeof(*xsave)))
		r = -EFAULT;
	kfree(xsave);
	return r;
}

static long kvmx_vcpu_set_xsave(struct kvmx_vcpu *vcpu, void __user *argp)
{
	struct kvm_xsave *xsave;
	u32 pkru = 0;
	long r;

	xsave = memdup_user(argp, sizeof(*xsave));
	if (IS_ERR(xsave))
		return PTR_ERR(xsave);
	/* PKU is not offered to guests: the permitted features stop short of it. */
	r = fpu_copy_uabi_to_guest_fpstate(&vcpu->guest_fpu, xsave->region,
					   kvmx_supported_xcr0() & ~XFEATURE_MASK_PKRU,
					   &pkru);
	kfree(xsave);
	return r;
}

static long kvmx_vcpu_get_xcrs(struct kvmx_vcpu *vcpu, void __user *argp)
{
	struct kvm_xcrs xcrs = {};

	if (boot_cpu_has(X86_FEATURE_XSAVE)) {
		xcrs.nr_xcrs = 1;
		xcrs.xcrs[0].xcr = XCR_XFEATURE_ENABLED_MASK;
		xcrs.xcrs[0].value = vcpu->xcr0;
	}
	if (copy_to_user(argp, &xcrs, sizeof(xcrs)))
		return -EFAULT;
	return 0;
}

static long kvmx_vcpu_set_xcrs(struct kvmx_vcpu *vcpu, void __user *argp)
{
	struct kvm_xcrs xcrs;
	u32 i;

	if (!boot_cpu_has(X86_FEATURE_XSAVE))
		return -EINVAL;
	if (copy_from_user(&xcrs, argp, sizeof(xcrs)))
		return -EFAULT;
	if (xcrs.nr_xcrs > KVM_MAX_XCRS || xcrs.flags)
		return -EINVAL;
	for (i = 0; i < xcrs.nr_xcrs; i++) {
		if (xcrs.xcrs[i].xcr == XCR_XFEATURE_ENABLED_MASK) {
			if (kvmx_set_xcr0(vcpu, xcrs.xcrs[i].value))
				return -EINVAL;
			break;
		}
	}
	return 0;
}

static long kvmx_vcpu_interrupt(struct kvmx_vcpu *vcpu, void __user *argp)
{
	struct kvm_interrupt irq;

	if (copy_from_user(&irq, argp, sizeof(irq)))
		return -EFAULT;
	/* As KVM without an in-kernel irqchip: one queued vector at a time. */
	if (irq.irq >= 256)
		return -EINVAL;
	if (vcpu->irq_pending)
		return -ENXIO;
	vcpu->irq_pending = true;
	vcpu->irq_vector = irq.irq;
	return 0;
}

static long kvmx_vcpu_ioctl_locked(struct kvmx_vcpu *vcpu, unsigned int ioctl,
				   void __user *argp)
{
	long r;

	switch (ioctl) {
	case KVM_RUN:
		if (argp)
			return -EINVAL;
		return kvmx_vcpu_ioctl_run(vcpu);
	case KVM_GET_REGS: {
		struct kvm_regs regs = {};

		kvmx_vendor->get_regs(vcpu, &regs);
		return copy_to_user(argp, &regs, sizeof(regs)) ? -EFAULT : 0;
	}
	case KVM_SET_REGS: {
		struct kvm_regs regs;

		if (copy_from_user(&regs, argp, sizeof(regs)))
			return -EFAULT;
		kvmx_vendor->set_regs(vcpu, &regs);
		return 0;
	}
	case KVM_GET_SREGS: {
		struct kvm_sregs sregs = {};

		kvmx_vendor->get_sregs(vcpu, &sregs);
		return copy_to_user(argp, &sregs, sizeof(sregs)) ? -EFAULT : 0;
	}
	case KVM_SET_SREGS: {
		struct kvm_sregs sregs;

		if (copy_from_user(&sregs, argp, sizeof(sregs)))
			return -EFAULT;
		return kvmx_vendor->set_sregs(vcpu, &sregs);
	}
	case KVM_GET_FPU:
		return kvmx_vcpu_get_fpu(vcpu, argp);
	case KVM_SET_FPU:
		return kvmx_vcpu_set_fpu(vcpu, argp);
	case KVM_GET_XSAVE:
		if (!boot_cpu_has(X86_FEATURE_XSAVE))
			return -EINVAL;
		return kvmx_vcpu_get_xsave(vcpu, argp);
	case KVM_SET_XSAVE:
		if (!boot_cpu_has(X86_FEATURE_XSAVE))
			return -EINVAL;
		return kvmx_vcpu_set_xsave(vcpu, argp);
	case KVM_GET_XCRS:
		return kvmx_vcpu_get_xcrs(vcpu, argp);
	case KVM_SET_XCRS:
		return kvmx_vcpu_set_xcrs(vcpu, argp);
	case KVM_GET_MSRS:
		return kvmx_vcpu_msrs(vcpu, argp, false);
	case KVM_SET_MSRS:
		return kvmx_vcpu_msrs(vcpu, argp, true);
	case KVM_SET_CPUID2:
		return kvmx_vcpu_set_cpuid2(vcpu, argp);
	case KVM_GET_CPUID2:
		return kvmx_vcpu_get_cpuid2(vcpu, argp);
	case KVM_INTERRUPT:
		return kvmx_vcpu_interrupt(vcpu, argp);
	case KVM_NMI:
		vcpu->nmi_pending = true;
		return 0;
	case KVM_GET_VCPU_EVENTS: {
		struct kvm_vcpu_events ev = {};

		kvmx_vendor->get_events(vcpu, &ev);
		return copy_to_user(argp, &ev, sizeof(ev)) ? -EFAULT : 0;
	}
	case KVM_SET_VCPU_EVENTS: {
		struct kvm_vcpu_events ev;

		if (copy_from_user(&ev, argp, sizeof(ev)))
			return -EFAULT;
		return kvmx_vendor->set_events(vcpu, &ev);
	}
	case KVM_SET_SIGNAL_MASK:
		return kvmx_vcpu_set_signal_mask(vcpu, argp);
	case KVM_GET_MP_STATE: {
		/* Without an in-kernel local APIC every vCPU is always runnable. */
		struct kvm_mp_state mp_state = { .mp_state = KVM_MP_STATE_RUNNABLE };

		return copy_to_user(argp, &mp_state, sizeof(mp_state)) ? -EFAULT : 0;
	}
	case KVM_SET_MP_STATE: {
		struct kvm_mp_state mp_state;

		if (copy_from_user(&mp_state, argp, sizeof(mp_state)))
			return -EFAULT;
		/* As KVM without an in-kernel irqchip: only RUNNABLE. */
		return mp_state.mp_state == KVM_MP_STATE_RUNNABLE ? 0 : -EINVAL;
	}
	default:
		r = -EINVAL;
	}
	return r;
}

static long kvmx_vcpu_ioctl(struct file *filp, unsigned int ioctl, unsigned long arg)
{
	struct kvmx_vcpu *vcpu = filp->private_data;
	long r;

	if (vcpu->vm->mm != current->mm || READ_ONCE(vcpu->vm->dead))
		return -EIO;
	if (_IOC_TYPE(ioctl) != KVMIO)
		return -EINVAL;
	/* Needs no vCPU state: answered without waiting for a running vCPU. */
	if (ioctl == KVM_GET_STATS_FD)
		return kvmx_vcpu_get_stats_fd(vcpu);

	if (mutex_lock_killable(&vcpu->mutex))
		return -EINTR;
	r = kvmx_vcpu_ioctl_locked(vcpu, ioctl, (void __user *)arg);
	mutex_unlock(&vcpu->mutex);
	return r;
}

static vm_fault_t kvmx_vcpu_fault(struct vm_fault *vmf)
{
	struct kvmx_vcpu *vcpu = vmf->vma->vm_file->private_data;
	struct page *page;

	if (vmf->pgoff == 0)
		page = virt_to_page(vcpu->run);
	else if (vmf->pgoff == KVMX_PIO_PAGE_OFFSET)
		page = virt_to_page(vcpu->pio_data);
	else if (vmf->pgoff == KVMX_COALESCED_MMIO_PAGE_OFFSET)
		page = virt_to_page(vcpu->vm->coalesced_mmio_ring);
	else
		return VM_FAULT_SIGBUS;
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct kvmx_vcpu_vm_ops = {
	.fault = kvmx_vcpu_fault,
};

static int kvmx_vcpu_mmap(struct file *file, struct vm_area_struct *vma)
{
	vma->vm_ops = &kvmx_vcpu_vm_ops;
	return 0;
}

static int kvmx_vcpu_release(struct inode *inode, struct file *filp)
{
	struct kvmx_vcpu *vcpu = filp->private_data;

	kvmx_put_vm(vcpu->vm);
	return 0;
}

/* Not const: .owner is the backend module, set by kvmx_vcpu_set_owner(). */
static struct file_operations kvmx_vcpu_fops = {
	.release = kvmx_vcpu_release,
	.unlocked_ioctl = kvmx_vcpu_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.mmap = kvmx_vcpu_mmap,
	.llseek = noop_llseek,
};

void kvmx_vcpu_set_owner(struct module *owner)
{
	kvmx_vcpu_fops.owner = owner;
}

/* Free a vCPU that never ran or whose fd is closed (VM teardown). */
void kvmx_vcpu_destroy(struct kvmx_vcpu *vcpu)
{
	kvmx_vendor->vcpu_free(vcpu);
	kvmx_shadow_vcpu_free(vcpu);
	fpu_free_guest_fpstate(&vcpu->guest_fpu);
	kfree(vcpu->cpuid_entries);
	free_page((unsigned long)vcpu->pio_data);
	free_page((unsigned long)vcpu->run);
	preempt_notifier_dec();
	kfree(vcpu);
}

static bool kvmx_vcpu_id_taken(struct kvmx_vm *vm, u32 id)
{
	struct kvmx_vcpu *v;
	unsigned long i;

	lockdep_assert_held(&vm->lock);
	xa_for_each(&vm->vcpus, i, v)
		if (v->vcpu_id == id)
			return true;
	return false;
}

/* KVM_CREATE_VCPU: returns the vCPU fd. */
int kvmx_vm_create_vcpu(struct kvmx_vm *vm, unsigned long id)
{
	struct kvmx_vcpu *vcpu;
	struct file *file;
	char name[16];
	int r, fd;

	/* No vCPU id is valid when the backend runs none (KVM_CAP_MAX_VCPU_ID 0). */
	if (id >= KVMX_MAX_VCPUS || !kvmx_vm_runs_vcpus(vm))
		return -EINVAL;

	mutex_lock(&vm->lock);
	if (vm->created_vcpus >= KVMX_MAX_VCPUS) {
		mutex_unlock(&vm->lock);
		return -EINVAL;
	}
	vm->created_vcpus++;
	mutex_unlock(&vm->lock);

	r = -ENOMEM;
	vcpu = kzalloc(kvmx_vendor->vcpu_size, GFP_KERNEL_ACCOUNT);
	if (!vcpu)
		goto out_uncount;
	vcpu->vm = vm;
	vcpu->vcpu_id = id;
	vcpu->cpu = -1;
	mutex_init(&vcpu->mutex);
	preempt_notifier_inc();
	preempt_notifier_init(&vcpu->preempt_notifier, &kvmx_preempt_ops);

	vcpu->run = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	vcpu->pio_data = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vcpu->run || !vcpu->pio_data)
		goto out_free;
	if (!fpu_alloc_guest_fpstate(&vcpu->guest_fpu))
		goto out_free;
	vcpu->xcr0 = XFEATURE_MASK_FP;

	r = kvmx_shadow_vcpu_init(vcpu);
	if (r)
		goto out_free_fpu;
	r = kvmx_vendor->vcpu_create(vcpu);
	if (r)
		goto out_free_shadow;

	mutex_lock(&vm->lock);
	if (kvmx_vcpu_id_taken(vm, id)) {
		r = -EEXIST;
		goto out_unlock;
	}
	vcpu->vcpu_idx = atomic_read(&vm->online_vcpus);
	r = xa_insert(&vm->vcpus, vcpu->vcpu_idx, vcpu, GFP_KERNEL_ACCOUNT);
	if (r)
		goto out_unlock;

	/* The fd holds a VM reference; the VM frees the vCPU when it goes. */
	kvmx_get_vm(vm);
	snprintf(name, sizeof(name), "kvmx-vcpu:%lu", id);
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		r = fd;
		goto out_put_vm;
	}
	file = anon_inode_getfile(name, &kvmx_vcpu_fops, vcpu, O_RDWR);
	if (IS_ERR(file)) {
		r = PTR_ERR(file);
		put_unused_fd(fd);
		goto out_put_vm;
	}
	/* Publish the count only once the vCPU is complete. */
	atomic_inc(&vm->online_vcpus);
	mutex_unlock(&vm->lock);
	fd_install(fd, file);
	return fd;

out_put_vm:
	refcount_dec(&vm->users);
	xa_erase(&vm->vcpus, vcpu->vcpu_idx);
out_unlock:
	mutex_unlock(&vm->lock);
	kvmx_vendor->vcpu_free(vcpu);
out_free_shadow:
	kvmx_shadow_vcpu_free(vcpu);
out_free_fpu:
	fpu_free_guest_fpstate(&vcpu->guest_fpu);
out_free:
	free_page((unsigned long)vcpu->pio_data);
	free_page((unsigned long)vcpu->run);
	preempt_notifier_dec();
	kfree(vcpu);
out_uncount:
	mutex_lock(&vm->lock);
	vm->created_vcpus--;
	mutex_unlock(&vm->lock);
	return r;
}
