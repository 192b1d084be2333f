// SPDX-License-Identifier: GPL-2.0
/*
 * kvmx-amd: the AMD SVM backend.  This file: SVM on/off per CPU, ASIDs, the
 * VMCB, entry and exit around vmenter.S, and the register state hooks.
 * Exit handlers live in exits.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/percpu.h>
#include <linux/hw_breakpoint.h>
#include <linux/io.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/svm.h>
#include <asm/reboot.h>
#include <asm/spec-ctrl.h>
#include <asm/nospec-branch.h>
#include <asm/fpu/xcr.h>
#include <asm/debugreg.h>
#include <asm/processor-flags.h>
#include <asm/tlbflush.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/cpu.h>

#include "svm.h"

/* Sizes of the permission maps (APM: "I/O Interception", "MSR Intercepts"). */
#define SVM_IOPM_SIZE		(3 * PAGE_SIZE)
#define SVM_MSRPM_SIZE		(2 * PAGE_SIZE)
/* Reset values of DR6 and DR7, and the PAT's (SDM/APM reset state tables). */
#define SVM_DR6_RESET		0xffff0ff0ULL
#define SVM_DR7_RESET		0x400ULL
#define SVM_PAT_RESET		0x0007040600070406ULL

/* Set before an emergency reboot turns SVM off: see the fixups in vmenter.S. */
bool kvmx_svm_rebooting;

static DEFINE_PER_CPU(struct svm_cpu_data, svm_data);

/* One all-ones I/O permission map (12 KiB) and MSR permission map (8 KiB). */
static void *svm_iopm;
static void *svm_msrpm;
static u64 svm_host_xcr0;
static bool svm_has_flush_by_asid;

struct kvmx_svm_vm {
	struct kvmx_vm vm;
};

/* Turn SVM off on this CPU, forcing GIF on first so INIT and NMI get through. */
static void svm_cpu_disable(void)
{
	u64 efer;

	rdmsrl(MSR_EFER, efer);
	if (efer & EFER_SVME) {
		asm volatile("stgi" ::: "memory");
		wrmsrl(MSR_VM_HSAVE_PA, 0);
		wrmsrl(MSR_EFER, efer & ~EFER_SVME);
	}
}

static void svm_emergency_disable(void)
{
	kvmx_svm_rebooting = true;
	svm_cpu_disable();
}

static int svm_hardware_enable(void)
{
	struct svm_cpu_data *sd = this_cpu_ptr(&svm_data);
	u64 efer;

	rdmsrl(MSR_EFER, efer);
	if (efer & EFER_SVME) {
		pr_err("CPU %d: SVM is in use by another hypervisor\n", smp_processor_id());
		return -EBUSY;
	}
	sd->asid_generation = 1;
	sd->max_asid = cpuid_ebx(SVM_CPUID_FUNC) - 1;
	sd->next_asid = sd->max_asid + 1;
	sd->min_asid = 1;
	sd->last_vcpu = NULL;
	wrmsrl(MSR_EFER, efer | EFER_SVME);
	wrmsrl(MSR_VM_HSAVE_PA, page_to_phys(sd->hsave_page));
	sd->enabled = true;
	return 0;
}

static void svm_hardware_disable(void)
{
	struct svm_cpu_data *sd = this_cpu_ptr(&svm_data);

	svm_cpu_disable();
	sd->enabled = false;
}

/*
 * ASIDs, as KVM hands them out: per CPU, from a generation.  An ASID is used
 * by one vCPU per CPU and generation, so its TLB entries there are that
 * vCPU's; running out starts a new generation with a flush of all ASIDs.  A
 * vCPU that moves to another CPU takes a fresh ASID there.
 */
static void svm_new_asid(struct vcpu_svm *svm, struct svm_cpu_data *sd)
{
	if (sd->next_asid > sd->max_asid) {
		++sd->asid_generation;
		sd->next_asid = sd->min_asid;
		svm->vmcb->control.tlb_ctl = TLB_CONTROL_FLUSH_ALL_ASID;
	}
	svm->asid_generation = sd->asid_generation;
	svm->vmcb->control.asid = sd->next_asid++;
}

static void svm_vcpu_load(struct kvmx_vcpu *vcpu, int cpu)
{
	struct svm_cpu_data *sd = per_cpu_ptr(&svm_data, cpu);
	struct vcpu_svm *svm = to_svm(vcpu);

	if (sd->last_vcpu != svm) {
		/* Another guest's branch predictions must not steer this one. */
		sd->last_vcpu = svm;
		indirect_branch_prediction_barrier();
	}
	svm->host_vmcb_pa = page_to_phys(sd->host_vmcb_page);
	if (svm->last_cpu != cpu) {
		svm->asid_generation = 0;
		svm->last_cpu = cpu;
	}
}

static void svm_vcpu_put(struct kvmx_vcpu *vcpu)
{
}

static void svm_init_seg(struct vmcb_seg *seg, u16 attrib)
{
	seg->selector = 0;
	seg->attrib = SVM_SELECTOR_P_MASK | attrib;
	seg->limit = 0xffff;
	seg->base = 0;
}

/*
 * Control registers and EFER: the guest's view lives in struct vcpu_svm,
 * what the hardware runs with in the VMCB, and svm_sync_hw_cr() derives the
 * second from the first.
 *
 * With NPT, as KVM does it: the guest's CD and NW never reach the hardware
 * (KVM_X86_QUIRK_CD_NW_CLEARED: host memory stays cacheable); while the
 * guest has either set, CR0 accesses are intercepted so it reads back what
 * it wrote.  CR4 writes are always intercepted, to refuse bits for features
 * the guest was not given; the hardware keeps the host's CR4.MCE so that
 * machine checks reach the host, and reads are intercepted whenever that
 * makes the VMCB differ from what the guest wrote.
 *
 * With shadow paging (mm/shadow.c), as KVM does it too: the hardware always
 * pages (CR0.PG, and CR0.WP so that read-only shadow entries hold against
 * the guest kernel), always with 64-bit entries (CR4.PAE) and EFER.NX,
 * through the shadow root in CR3; a guest with paging off runs on an
 * identity map, with SMEP/SMAP/PKE off and EFER.LME kept from the hardware
 * until the guest's long mode is active.  CR0, CR3 and CR4 accesses, INVLPG and #PF are all
 * intercepted.
 */
static void svm_sync_hw_cr(struct vcpu_svm *svm)
{
	bool shadow = kvmx_vm_shadow(svm->vcpu.vm);
	struct vmcb *vmcb = svm->vmcb;
	u64 cr0 = svm->guest_cr0 & ~(X86_CR0_CD | X86_CR0_NW);
	u64 cr4 = svm->guest_cr4 | (cr4_read_shadow() & X86_CR4_MCE);
	u64 efer = svm->guest_efer | EFER_SVME;

	if (shadow) {
		if (!(svm->guest_cr0 & X86_CR0_PG))
			cr4 &= ~(X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE);
		cr0 |= X86_CR0_PG | X86_CR0_WP;
		cr4 |= X86_CR4_PAE;
		if (!(efer & EFER_LMA))
			efer &= ~EFER_LME;
		/*
		 * EFER.NX always: the #PF error code then tells a fetch from
		 * a read (the walker reports it to the guest only if its own
		 * NXE or SMEP would), and shadow leaves may use XD.
		 */
		efer |= EFER_NX;
	}
	vmcb->save.cr0 = cr0;
	vmcb->save.cr4 = cr4;
	vmcb->save.efer = efer;

	if (shadow || (svm->guest_cr0 & (X86_CR0_CD | X86_CR0_NW))) {
		svm_set_intercept(vmcb, INTERCEPT_CR0_READ);
		svm_set_intercept(vmcb, INTERCEPT_CR0_WRITE);
	} else {
		svm_clr_intercept(vmcb, INTERCEPT_CR0_READ);
		svm_clr_intercept(vmcb, INTERCEPT_CR0_WRITE);
	}
	svm_set_intercept(vmcb, INTERCEPT_CR4_WRITE);
	if (cr4 != svm->guest_cr4)
		svm_set_intercept(vmcb, INTERCEPT_CR4_READ);
	else
		svm_clr_intercept(vmcb, INTERCEPT_CR4_READ);
	if (shadow) {
		svm_set_intercept(vmcb, INTERCEPT_CR3_READ);
		svm_set_intercept(vmcb, INTERCEPT_CR3_WRITE);
		svm_set_intercept(vmcb, INTERCEPT_INVLPG);
		svm_set_intercept(vmcb, INTERCEPT_EXCEPTION_OFFSET + PF_VECTOR);
	}
}

/*
 * With NPT the guest writes CR0 (unless CD/NW are set) without an exit, and
 * the CPU flips EFER.LMA with CR0.PG: take both back from the VMCB after
 * each exit, so svm_sync_hw_cr() never writes a stale value over them.
 */
static void svm_sync_guest_cr(struct vcpu_svm *svm)
{
	struct vmcb_save_area *s = &svm->vmcb->save;

	if (kvmx_vm_shadow(svm->vcpu.vm))
		return;
	svm->guest_cr0 = s->cr0 | (svm->guest_cr0 & (X86_CR0_CD | X86_CR0_NW));
	svm->guest_efer = s->efer & ~EFER_SVME;
}

u64 svm_read_cr0(struct vcpu_svm *svm)
{
	return svm->guest_cr0;
}

void svm_write_cr0(struct vcpu_svm *svm, u64 cr0)
{
	svm->guest_cr0 = cr0;
	svm_sync_hw_cr(svm);
}

u64 svm_read_cr4(struct vcpu_svm *svm)
{
	return svm->guest_cr4;
}

void svm_write_cr4(struct vcpu_svm *svm, u64 cr4)
{
	svm->guest_cr4 = cr4;
	svm_sync_hw_cr(svm);
}

/* EFER as the guest sees it, without SVME. */
u64 svm_read_efer(struct vcpu_svm *svm)
{
	return svm->guest_efer;
}

void svm_write_efer(struct vcpu_svm *svm, u64 efer)
{
	svm->guest_efer = efer & ~EFER_SVME;
	svm_sync_hw_cr(svm);
}

u64 svm_read_cr3(struct vcpu_svm *svm)
{
	return kvmx_vm_shadow(svm->vcpu.vm) ? svm->guest_cr3 : svm->vmcb->save.cr3;
}

/* The hardware's CR3 is the shadow root, set before each entry. */
void svm_write_cr3(struct vcpu_svm *svm, u64 cr3)
{
	if (kvmx_vm_shadow(svm->vcpu.vm))
		svm->guest_cr3 = cr3;
	else
		svm->vmcb->save.cr3 = cr3;
}

/* Architectural reset state (APM: "Processor Initialization State"). */
void svm_reinit_vmcb(struct vcpu_svm *svm)
{
	struct vmcb_control_area *c = &svm->vmcb->control;
	struct vmcb_save_area *s = &svm->vmcb->save;
	static const u32 intercepts[] = {
		INTERCEPT_INTR, INTERCEPT_NMI, INTERCEPT_SMI, INTERCEPT_INIT,
		INTERCEPT_CPUID, INTERCEPT_INVD, INTERCEPT_HLT, INTERCEPT_INVLPGA,
		INTERCEPT_IOIO_PROT, INTERCEPT_MSR_PROT, INTERCEPT_TASK_SWITCH,
		INTERCEPT_SHUTDOWN, INTERCEPT_VMRUN, INTERCEPT_VMMCALL,
		INTERCEPT_VMLOAD, INTERCEPT_VMSAVE, INTERCEPT_STGI, INTERCEPT_CLGI,
		INTERCEPT_SKINIT, INTERCEPT_WBINVD, INTERCEPT_MONITOR,
		INTERCEPT_MWAIT, INTERCEPT_XSETBV, INTERCEPT_RDPRU, INTERCEPT_RSM,
	};
	int i;

	for (i = 0; i < ARRAY_SIZE(intercepts); i++)
		svm_set_intercept(svm->vmcb, intercepts[i]);
	/* Debug registers: DR0-3 are not switched, so the guest may not touch them. */
	for (i = INTERCEPT_DR0_READ; i <= INTERCEPT_DR7_READ; i++)
		svm_set_intercept(svm->vmcb, i);
	for (i = INTERCEPT_DR0_WRITE; i <= INTERCEPT_DR7_WRITE; i++)
		svm_set_intercept(svm->vmcb, i);
	/* Machine checks go to the host (#MC intercept), as KVM does. */
	svm_set_intercept(svm->vmcb, INTERCEPT_EXCEPTION_OFFSET + MC_VECTOR);

	c->iopm_base_pa = virt_to_phys(svm_iopm);
	c->msrpm_base_pa = virt_to_phys(svm_msrpm);
	c->int_ctl = V_INTR_MASKING_MASK;
	if (!kvmx_vm_shadow(svm->vcpu.vm)) {
		c->nested_ctl = SVM_NESTED_CTL_NP_ENABLE;
		c->nested_cr3 = kvmx_mmu_root_pa(svm->vcpu.vm);
	}
	c->clean = 0;

	svm_init_seg(&s->cs, SVM_SELECTOR_S_MASK | SVM_SELECTOR_READ_MASK |
		     SVM_SELECTOR_CODE_MASK);
	s->cs.selector = 0xf000;
	s->cs.base = 0xffff0000;
	svm_init_seg(&s->ds, SVM_SELECTOR_S_MASK | SVM_SELECTOR_WRITE_MASK);
	svm_init_seg(&s->es, SVM_SELECTOR_S_MASK | SVM_SELECTOR_WRITE_MASK);
	svm_init_seg(&s->ss, SVM_SELECTOR_S_MASK | SVM_SELECTOR_WRITE_MASK);
	svm_init_seg(&s->fs, SVM_SELECTOR_S_MASK | SVM_SELECTOR_WRITE_MASK);
	svm_init_seg(&s->gs, SVM_SELECTOR_S_MASK | SVM_SELECTOR_WRITE_MASK);
	svm_init_seg(&s->ldtr, SVM_SELECTOR_P_MASK | 2);	/* LDT */
	svm_init_seg(&s->tr, SVM_SELECTOR_P_MASK | 3);		/* busy 16-bit TSS */
	s->gdtr.limit = 0xffff;
	s->idtr.limit = 0xffff;

	svm->guest_cr0 = X86_CR0_NW | X86_CR0_CD | X86_CR0_ET;
	svm->guest_cr4 = 0;
	svm->guest_efer = 0;
	svm_sync_hw_cr(svm);
	svm_write_cr3(svm, 0);
	svm->pdptes_valid = false;
	kvmx_shadow_reset(&svm->vcpu);
	s->dr6 = SVM_DR6_RESET;
	s->dr7 = SVM_DR7_RESET;
	s->rflags = X86_EFLAGS_FIXED;
	s->rip = 0xfff0;
	s->g_pat = SVM_PAT_RESET;

	svm->vcpu.regs[KVMX_RDX] = 0x600;	/* family 6, as KVM's reset */
	svm->apic_base = APIC_DEFAULT_PHYS_BASE | MSR_IA32_APICBASE_ENABLE |
			 (svm->vcpu.vcpu_id == 0 ? MSR_IA32_APICBASE_BSP : 0);
}

static int svm_vcpu_create(struct kvmx_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct page *page = alloc_page(GFP_KERNEL_ACCOUNT | __GFP_ZERO);

	if (!page)
		return -ENOMEM;
	svm->vmcb = page_address(page);
	svm->vmcb_pa = page_to_phys(page);
	svm->last_cpu = -1;
	svm->emul.ops = &svm_emul_ops;
	svm_reinit_vmcb(svm);
	return 0;
}

static void svm_vcpu_free(struct kvmx_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	int cpu;

	/* Forget us in every CPU's "last vCPU" so no stale pointer compares equal. */
	for_each_possible_cpu(cpu)
		cmpxchg(&per_cpu_ptr(&svm_data, cpu)->last_vcpu, svm, NULL);
	free_page((unsigned long)svm->vmcb);
}

void svm_set_vintr(struct vcpu_svm *svm, bool on)
{
	struct vmcb_control_area *c = &svm->vmcb->control;

	if (on) {
		/* A virtual interrupt the guest can never take: only the window matters. */
		c->int_ctl |= V_IRQ_MASK | (0xf << V_INTR_PRIO_SHIFT);
		c->int_vector = 0;
		svm_set_intercept(svm->vmcb, INTERCEPT_VINTR);
	} else {
		c->int_ctl &= ~(V_IRQ_MASK | V_INTR_PRIO_MASK);
		svm_clr_intercept(svm->vmcb, INTERCEPT_VINTR);
	}
}

void svm_inject_exception(struct vcpu_svm *svm, u8 vector, bool has_error, u32 error)
{
	svm->vmcb->control.event_inj = vector | SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_EXEPT |
				       (has_error ? SVM_EVTINJ_VALID_ERR : 0);
	svm->vmcb->control.event_inj_err = error;
}

static bool svm_interrupt_allowed(struct kvmx_vcpu *vcpu)
{
	struct vmcb *vmcb = to_svm(vcpu)->vmcb;

	return (vmcb->save.rflags & X86_EFLAGS_IF) &&
	       !(vmcb->control.int_state & SVM_INTERRUPT_SHADOW_MASK) &&
	       !(vmcb->control.event_inj & SVM_EVTINJ_VALID);
}

static bool svm_get_if_flag(struct kvmx_vcpu *vcpu)
{
	return !!(to_svm(vcpu)->vmcb->save.rflags & X86_EFLAGS_IF);
}

/* Queue NMIs and the KVM_INTERRUPT vector, or ask for a window to do so. */
static void svm_inject_events(struct vcpu_svm *svm)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	struct vmcb_control_area *c = &svm->vmcb->control;
	bool want_window = READ_ONCE(vcpu->run->request_interrupt_window);

	if (!(c->event_inj & SVM_EVTINJ_VALID) && vcpu->nmi_pending && !svm->nmi_masked &&
	    !(c->int_state & SVM_INTERRUPT_SHADOW_MASK)) {
		c->event_inj = NMI_VECTOR | SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_NMI;
		vcpu->nmi_pending = false;
		svm->nmi_masked = true;
		/* IRET ends NMI blocking; see iret_interception(). */
		svm_set_intercept(svm->vmcb, INTERCEPT_IRET);
	}
	if (vcpu->irq_pending && svm_interrupt_allowed(vcpu)) {
		c->event_inj = vcpu->irq_vector | SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_INTR;
		vcpu->irq_pending = false;
	}
	svm_set_vintr(svm, (vcpu->irq_pending || want_window) &&
		      !svm_interrupt_allowed(vcpu));
}

/* Enter the guest once; interrupts are off from here to the exit's STGI. */
static int svm_vcpu_run(struct kvmx_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct svm_cpu_data *sd;
	struct vmcb *vmcb = svm->vmcb;

	svm_inject_events(svm);

	if (kvmx_vm_shadow(vcpu->vm)) {
		struct kvmx_paging p = svm_paging(svm);
		int r = kvmx_shadow_load(vcpu, &p);

		if (r)
			return r;
		vmcb->save.cr3 = vcpu->shadow.root_pa;
	}

	local_irq_disable();
	sd = this_cpu_ptr(&svm_data);
	if (KVMX_KILL_VM_ON(!sd->enabled, vcpu->vm)) {
		local_irq_enable();
		return -EIO;
	}

	WRITE_ONCE(vcpu->mode, KVMX_IN_GUEST_MODE);
	/* Pairs with kvmx_flush_remote_tlbs(): set request, barrier, read mode. */
	smp_mb();
	/* The shadow tables under our root went meanwhile: load it again. */
	if (test_bit(KVMX_REQ_MMU_RELOAD, &vcpu->requests)) {
		WRITE_ONCE(vcpu->mode, KVMX_OUTSIDE_GUEST_MODE);
		local_irq_enable();
		return 1;
	}
	if (svm->asid_generation != sd->asid_generation)
		svm_new_asid(svm, sd);
	if (test_and_clear_bit(KVMX_REQ_TLB_FLUSH, &vcpu->requests)) {
		if (svm_has_flush_by_asid)
			vmcb->control.tlb_ctl = TLB_CONTROL_FLUSH_ASID;
		else
			svm_new_asid(svm, sd);
	}

	vmcb->save.rax = vcpu->regs[KVMX_RAX];
	vmcb->save.rsp = vcpu->regs[KVMX_RSP];
	vmcb->control.clean = 0;

	asm volatile("clgi" ::: "memory");
	if (vcpu->xcr0 != svm_host_xcr0)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, vcpu->xcr0);
	/* The guest never sees SPEC_CTRL or VIRT_SPEC_CTRL: its value is 0. */
	x86_spec_ctrl_set_guest(0);

	__kvmx_svm_vcpu_run(svm);

	x86_spec_ctrl_restore_host(0);
	if (vcpu->xcr0 != svm_host_xcr0)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, svm_host_xcr0);
	/* #VMEXIT reset DR7; give the host its breakpoints back. */
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
	asm volatile("stgi" ::: "memory");

	WRITE_ONCE(vcpu->mode, KVMX_OUTSIDE_GUEST_MODE);
	svm_sync_guest_cr(svm);
	vcpu->regs[KVMX_RAX] = vmcb->save.rax;
	vcpu->regs[KVMX_RSP] = vmcb->save.rsp;
	vmcb->control.tlb_ctl = TLB_CONTROL_DO_NOTHING;

	/* Host interrupts and NMIs that made us exit are taken here. */
	local_irq_enable();

	return svm_handle_exit(svm);
}

static void svm_get_regs(struct kvmx_vcpu *vcpu, struct kvm_regs *r)
{
	struct vmcb_save_area *s = &to_svm(vcpu)->vmcb->save;
	unsigned long *g = vcpu->regs;

	r->rax = g[KVMX_RAX]; r->rbx = g[KVMX_RBX]; r->rcx = g[KVMX_RCX]; r->rdx = g[KVMX_RDX];
	r->rsi = g[KVMX_RSI]; r->rdi = g[KVMX_RDI]; r->rsp = g[KVMX_RSP]; r->rbp = g[KVMX_RBP];
	r->r8 = g[KVMX_R8]; r->r9 = g[KVMX_R9]; r->r10 = g[KVMX_R10]; r->r11 = g[KVMX_R11];
	r->r12 = g[KVMX_R12]; r->r13 = g[KVMX_R13]; r->r14 = g[KVMX_R14]; r->r15 = g[KVMX_R15];
	r->rip = s->rip;
	r->rflags = s->rflags;
}

static void svm_set_regs(struct kvmx_vcpu *vcpu, const struct kvm_regs *r)
{
	struct vmcb_save_area *s = &to_svm(vcpu)->vmcb->save;
	unsigned long *g = vcpu->regs;

	g[KVMX_RAX] = r->rax; g[KVMX_RBX] = r->rbx; g[KVMX_RCX] = r->rcx; g[KVMX_RDX] = r->rdx;
	g[KVMX_RSI] = r->rsi; g[KVMX_RDI] = r->rdi; g[KVMX_RSP] = r->rsp; g[KVMX_RBP] = r->rbp;
	g[KVMX_R8] = r->r8; g[KVMX_R9] = r->r9; g[KVMX_R10] = r->r10; g[KVMX_R11] = r->r11;
	g[KVMX_R12] = r->r12; g[KVMX_R13] = r->r13; g[KVMX_R14] = r->r14; g[KVMX_R15] = r->r15;
	s->rip = r->rip;
	/* As KVM: the fixed bit 1 is always set. */
	s->rflags = r->rflags | X86_EFLAGS_FIXED;
	/* A new RIP abandons any instruction waiting for userspace. */
	vcpu->io.active = false;
}

/* Segment conversions, as KVM's svm_get_segment()/svm_set_segment(). */
static void svm_get_seg(struct vcpu_svm *svm, const struct vmcb_seg *s,
			struct kvm_segment *v, bool is_tr, bool is_ss, bool is_data)
{
	v->base = s->base;
	v->limit = s->limit;
	v->selector = s->selector;
	v->type = s->attrib & SVM_SELECTOR_TYPE_MASK;
	v->s = (s->attrib >> SVM_SELECTOR_S_SHIFT) & 1;
	v->dpl = (s->attrib >> SVM_SELECTOR_DPL_SHIFT) & 3;
	v->present = (s->attrib >> SVM_SELECTOR_P_SHIFT) & 1;
	v->avl = (s->attrib >> SVM_SELECTOR_AVL_SHIFT) & 1;
	v->l = (s->attrib >> SVM_SELECTOR_L_SHIFT) & 1;
	v->db = (s->attrib >> SVM_SELECTOR_DB_SHIFT) & 1;
	v->g = s->limit > 0xfffff;
	v->unusable = !v->present;
	v->padding = 0;
	if (is_tr)
		v->type |= 0x2;
	if (is_data && !v->unusable)
		v->type |= 0x1;
	if (is_ss) {
		if (v->unusable)
			v->db = 0;
		v->dpl = svm->vmcb->save.cpl;
	}
}

static void svm_set_seg(struct vmcb_seg *s, const struct kvm_segment *v)
{
	s->base = v->base;
	s->limit = v->limit;
	s->selector = v->selector;
	s->attrib = v->type & SVM_SELECTOR_TYPE_MASK;
	s->attrib |= (v->s & 1) << SVM_SELECTOR_S_SHIFT;
	s->attrib |= (v->dpl & 3) << SVM_SELECTOR_DPL_SHIFT;
	s->attrib |= ((v->present & 1) && !v->unusable) << SVM_SELECTOR_P_SHIFT;
	s->attrib |= (v->avl & 1) << SVM_SELECTOR_AVL_SHIFT;
	s->attrib |= (v->l & 1) << SVM_SELECTOR_L_SHIFT;
	s->attrib |= (v->db & 1) << SVM_SELECTOR_DB_SHIFT;
	s->attrib |= (v->g & 1) << SVM_SELECTOR_G_SHIFT;
}

static void svm_get_sregs(struct kvmx_vcpu *vcpu, struct kvm_sregs *sr)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb_save_area *s = &svm->vmcb->save;

	svm_get_seg(svm, &s->cs, &sr->cs, false, false, false);
	svm_get_seg(svm, &s->ds, &sr->ds, false, false, true);
	svm_get_seg(svm, &s->es, &sr->es, false, false, true);
	svm_get_seg(svm, &s->fs, &sr->fs, false, false, true);
	svm_get_seg(svm, &s->gs, &sr->gs, false, false, true);
	svm_get_seg(svm, &s->ss, &sr->ss, false, true, false);
	svm_get_seg(svm, &s->tr, &sr->tr, true, false, false);
	svm_get_seg(svm, &s->ldtr, &sr->ldt, false, false, false);
	sr->gdt.base = s->gdtr.base;
	sr->gdt.limit = s->gdtr.limit;
	sr->idt.base = s->idtr.base;
	sr->idt.limit = s->idtr.limit;
	sr->cr0 = svm_read_cr0(svm);
	sr->cr2 = s->cr2;
	sr->cr3 = svm_read_cr3(svm);
	sr->cr4 = svm_read_cr4(svm);
	sr->cr8 = svm->vmcb->control.int_ctl & V_TPR_MASK;
	sr->efer = svm_read_efer(svm);
	sr->apic_base = svm->apic_base;
	memset(sr->interrupt_bitmap, 0, sizeof(sr->interrupt_bitmap));
	if (vcpu->irq_pending)
		__set_bit(vcpu->irq_vector, (unsigned long *)sr->interrupt_bitmap);
}

static int svm_set_sregs(struct kvmx_vcpu *vcpu, const struct kvm_sregs *sr)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb_save_area *s = &svm->vmcb->save;
	int irq;

	if (!kvmx_sregs_valid(vcpu, sr, kvmx_cr4_reserved_bits(vcpu), svm->apic_base))
		return -EINVAL;

	svm_set_seg(&s->cs, &sr->cs);
	svm_set_seg(&s->ds, &sr->ds);
	svm_set_seg(&s->es, &sr->es);
	svm_set_seg(&s->fs, &sr->fs);
	svm_set_seg(&s->gs, &sr->gs);
	svm_set_seg(&s->ss, &sr->ss);
	svm_set_seg(&s->tr, &sr->tr);
	svm_set_seg(&s->ldtr, &sr->ldt);
	s->cpl = sr->ss.dpl & 3;
	/* Real mode runs at CPL 0 whatever SS says. */
	if (!(sr->cr0 & X86_CR0_PE))
		s->cpl = 0;
	s->gdtr.base = sr->gdt.base;
	s->gdtr.limit = sr->gdt.limit;
	s->idtr.base = sr->idt.base;
	s->idtr.limit = sr->idt.limit;
	svm->guest_cr0 = sr->cr0;
	svm->guest_cr4 = sr->cr4;
	svm->guest_efer = sr->efer;
	svm_sync_hw_cr(svm);
	s->cr2 = sr->cr2;
	svm_write_cr3(svm, sr->cr3);
	/* New paging state: the guest's cached translations are stale. */
	set_bit(KVMX_REQ_TLB_FLUSH, &vcpu->requests);
	kvmx_shadow_reset(vcpu);
	svm->pdptes_valid = false;
	if ((sr->cr0 & X86_CR0_PG) && (sr->cr4 & X86_CR4_PAE) && !(sr->efer & EFER_LMA))
		svm_load_pdptes(svm);
	svm->vmcb->control.int_ctl = (svm->vmcb->control.int_ctl & ~V_TPR_MASK) |
				     (sr->cr8 & V_TPR_MASK);
	svm->apic_base = sr->apic_base;

	irq = find_first_bit((const unsigned long *)sr->interrupt_bitmap, 256);
	if (irq < 256) {
		vcpu->irq_pending = true;
		vcpu->irq_vector = irq;
	}
	return 0;
}

int svm_get_msr(struct kvmx_vcpu *vcpu, u32 index, u64 *data, bool host)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb_save_area *s = &svm->vmcb->save;

	switch (index) {
	case MSR_EFER:
		*data = svm_read_efer(svm);
		break;
	case MSR_STAR:
		*data = s->star;
		break;
	case MSR_LSTAR:
		*data = s->lstar;
		break;
	case MSR_CSTAR:
		*data = s->cstar;
		break;
	case MSR_SYSCALL_MASK:
		*data = s->sfmask;
		break;
	case MSR_KERNEL_GS_BASE:
		*data = s->kernel_gs_base;
		break;
	case MSR_FS_BASE:
		*data = s->fs.base;
		break;
	case MSR_GS_BASE:
		*data = s->gs.base;
		break;
	case MSR_IA32_SYSENTER_CS:
		*data = s->sysenter_cs;
		break;
	case MSR_IA32_SYSENTER_ESP:
		*data = (u32)s->sysenter_esp | ((u64)svm->sysenter_esp_hi << 32);
		break;
	case MSR_IA32_SYSENTER_EIP:
		*data = (u32)s->sysenter_eip | ((u64)svm->sysenter_eip_hi << 32);
		break;
	case MSR_IA32_TSC:
		*data = rdtsc() + svm->vmcb->control.tsc_offset;
		break;
	case MSR_IA32_CR_PAT:
		*data = s->g_pat;
		break;
	case MSR_IA32_APICBASE:
		*data = svm->apic_base;
		break;
	case MSR_IA32_MISC_ENABLE:
		*data = svm->misc_enable;
		break;
	default:
		return 1;
	}
	return 0;
}

/* "GenuineIntel" in CPUID leaf 0's EBX, EDX, ECX. */
#define SVM_INTEL_EBX	0x756e6547
#define SVM_INTEL_EDX	0x49656e69
#define SVM_INTEL_ECX	0x6c65746e

/* The guest's CPUID says GenuineIntel (KVM's guest_cpuid_is_intel()). */
static bool svm_guest_is_intel(struct kvmx_vcpu *vcpu)
{
	const struct kvm_cpuid_entry2 *e = kvmx_find_cpuid_entry(vcpu, 0, 0);

	return e && e->ebx == SVM_INTEL_EBX && e->ecx == SVM_INTEL_ECX &&
	       e->edx == SVM_INTEL_EDX;
}

int svm_set_msr(struct kvmx_vcpu *vcpu, u32 index, u64 data, bool host)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb_save_area *s = &svm->vmcb->save;

	switch (index) {
	case MSR_EFER:
		if (data & ~(EFER_SCE | EFER_LME | EFER_LMA | EFER_NX | EFER_FFXSR))
			return 1;
		/*
		 * A guest may not flip LME while paging is on.  LMA is the CPU's,
		 * for the VMM too (as KVM's set_efer()): only KVM_SET_SREGS sets
		 * it, with the CR0.PG and CR4.PAE it needs.  With shadow paging an
		 * LMA without them would make the CPU walk the legacy root as a
		 * PML4.
		 */
		if (!host && (svm_read_cr0(svm) & X86_CR0_PG) &&
		    ((data ^ svm_read_efer(svm)) & EFER_LME))
			return 1;
		data = (data & ~EFER_LMA) | (svm_read_efer(svm) & EFER_LMA);
		svm_write_efer(svm, data);
		break;
	case MSR_STAR:
		s->star = data;
		break;
	case MSR_LSTAR:
	case MSR_CSTAR:
	case MSR_KERNEL_GS_BASE:
	case MSR_FS_BASE:
	case MSR_GS_BASE:
		if (!__is_canonical_address(data, 48))
			return 1;
		if (index == MSR_LSTAR)
			s->lstar = data;
		else if (index == MSR_CSTAR)
			s->cstar = data;
		else if (index == MSR_KERNEL_GS_BASE)
			s->kernel_gs_base = data;
		else if (index == MSR_FS_BASE)
			s->fs.base = data;
		else
			s->gs.base = data;
		break;
	case MSR_SYSCALL_MASK:
		s->sfmask = data;
		break;
	case MSR_IA32_SYSENTER_CS:
		s->sysenter_cs = data;
		break;
	/*
	 * AMD CPUs keep 32 bits of SYSENTER_ESP/EIP (SYSENTER is legacy-mode
	 * only there); as KVM, only a guest told it is on Intel gets the high
	 * halves, kept aside and never seen by the hardware.
	 */
	case MSR_IA32_SYSENTER_ESP:
		s->sysenter_esp = (u32)data;
		svm->sysenter_esp_hi = svm_guest_is_intel(vcpu) ? data >> 32 : 0;
		break;
	case MSR_IA32_SYSENTER_EIP:
		s->sysenter_eip = (u32)data;
		svm->sysenter_eip_hi = svm_guest_is_intel(vcpu) ? data >> 32 : 0;
		break;
	case MSR_IA32_TSC:
		svm->vmcb->control.tsc_offset = data - rdtsc();
		break;
	case MSR_IA32_CR_PAT:
		if (!kvmx_pat_valid(data))
			return 1;
		s->g_pat = data;
		break;
	case MSR_IA32_APICBASE:
		if (!kvmx_apic_base_valid(vcpu, svm->apic_base, data, host))
			return 1;
		svm->apic_base = data;
		break;
	case MSR_IA32_MISC_ENABLE:
		svm->misc_enable = data;
		break;
	default:
		return 1;
	}
	return 0;
}

static void svm_get_events(struct kvmx_vcpu *vcpu, struct kvm_vcpu_events *ev)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb_control_area *c = &svm->vmcb->control;
	u32 inj = c->event_inj;

	if ((inj & SVM_EVTINJ_VALID) && (inj & SVM_EVTINJ_TYPE_MASK) == SVM_EVTINJ_TYPE_EXEPT) {
		ev->exception.injected = 1;
		ev->exception.nr = inj & SVM_EVTINJ_VEC_MASK;
		ev->exception.has_error_code = !!(inj & SVM_EVTINJ_VALID_ERR);
		ev->exception.error_code = c->event_inj_err;
	}
	if ((inj & SVM_EVTINJ_VALID) && (inj & SVM_EVTINJ_TYPE_MASK) == SVM_EVTINJ_TYPE_INTR) {
		ev->interrupt.injected = 1;
		ev->interrupt.nr = inj & SVM_EVTINJ_VEC_MASK;
	}
	ev->interrupt.shadow = (c->int_state & SVM_INTERRUPT_SHADOW_MASK) ?
			       KVM_X86_SHADOW_INT_MOV_SS | KVM_X86_SHADOW_INT_STI : 0;
	ev->nmi.injected = (inj & SVM_EVTINJ_VALID) &&
			   (inj & SVM_EVTINJ_TYPE_MASK) == SVM_EVTINJ_TYPE_NMI;
	ev->nmi.pending = vcpu->nmi_pending;
	ev->nmi.masked = svm->nmi_masked;
	ev->sipi_vector = 0;
	ev->flags = KVM_VCPUEVENT_VALID_SHADOW;
}

static int svm_set_events(struct kvmx_vcpu *vcpu, const struct kvm_vcpu_events *ev)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct vmcb_control_area *c = &svm->vmcb->control;

	/* The flags KVM accepts on x86, less those kvmx does not offer. */
	if (ev->flags & ~(KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR |
			  KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT_VALID_SMM))
		return -EINVAL;
	if (ev->flags & KVM_VCPUEVENT_VALID_SMM)
		return -EINVAL;
	if (ev->exception.injected && (ev->exception.nr > 31 || ev->exception.nr == NMI_VECTOR))
		return -EINVAL;

	c->event_inj = 0;
	if (ev->exception.injected)
		c->event_inj = ev->exception.nr | SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_EXEPT |
			       (ev->exception.has_error_code ? SVM_EVTINJ_VALID_ERR : 0);
	else if (ev->interrupt.injected)
		c->event_inj = ev->interrupt.nr | SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_INTR;
	else if (ev->nmi.injected)
		c->event_inj = NMI_VECTOR | SVM_EVTINJ_VALID | SVM_EVTINJ_TYPE_NMI;
	c->event_inj_err = ev->exception.error_code;

	if (ev->flags & KVM_VCPUEVENT_VALID_SHADOW) {
		if (ev->interrupt.shadow)
			c->int_state |= SVM_INTERRUPT_SHADOW_MASK;
		else
			c->int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
	}
	if (ev->flags & KVM_VCPUEVENT_VALID_NMI_PENDING)
		vcpu->nmi_pending = ev->nmi.pending;
	svm->nmi_masked = ev->nmi.masked;
	svm->awaiting_iret = false;
	if (svm->nmi_masked)
		svm_set_intercept(svm->vmcb, INTERCEPT_IRET);
	return 0;
}

static int svm_vm_init(struct kvmx_vm *vm)
{
	return 0;
}

static int svm_check_hardware(void);

static struct kvmx_vendor_ops svm_ops = {
	.name = "amd-svm",
	.check_hardware = svm_check_hardware,
	.vm_size = sizeof(struct kvmx_svm_vm),
	.vcpu_size = sizeof(struct vcpu_svm),
	.tdp_format = &kvmx_tdp_format_x86,
	.hardware_enable = svm_hardware_enable,
	.hardware_disable = svm_hardware_disable,
	.emergency_disable = svm_emergency_disable,
	.vm_init = svm_vm_init,
	.vcpu_create = svm_vcpu_create,
	.vcpu_free = svm_vcpu_free,
	.vcpu_load = svm_vcpu_load,
	.vcpu_put = svm_vcpu_put,
	.vcpu_run = svm_vcpu_run,
	.complete_userspace_io = svm_complete_userspace_io,
	.get_regs = svm_get_regs,
	.set_regs = svm_set_regs,
	.get_sregs = svm_get_sregs,
	.set_sregs = svm_set_sregs,
	.get_msr = svm_get_msr,
	.set_msr = svm_set_msr,
	.get_events = svm_get_events,
	.set_events = svm_set_events,
	.interrupt_allowed = svm_interrupt_allowed,
	.get_if_flag = svm_get_if_flag,
};

/*
 * Check that this CPU can give SVM to us: the CPUID bit, the firmware lock in
 * VM_CR (APM: "Enabling SVM"), and EFER.SVME clear, since a set SVME means
 * another hypervisor (in-tree kvm_amd, say) owns SVM on this CPU.  Without
 * NPT, VMs run on shadow paging only (svm_init()).
 */
static int svm_check_hardware(void)
{
	u64 vm_cr, efer;

	if (!boot_cpu_has(X86_FEATURE_SVM)) {
		pr_err("this %s CPU has no SVM (AMD-V)%s\n", kvmx_host_vendor_name(),
		       boot_cpu_has(X86_FEATURE_VMX) ? ": load kvmx-intel instead" : "");
		return -EOPNOTSUPP;
	}
	rdmsrl(MSR_VM_CR, vm_cr);
	if (vm_cr & SVM_VM_CR_SVM_DIS_MASK) {
		pr_err("SVM is disabled by the firmware (VM_CR.SVMDIS)\n");
		return -EOPNOTSUPP;
	}
	rdmsrl(MSR_EFER, efer);
	if (efer & EFER_SVME) {
		pr_err("SVM is in use by another hypervisor (EFER.SVME set): unload kvm_amd first\n");
		return -EBUSY;
	}
	return 0;
}

static void svm_free_cpu_data(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct svm_cpu_data *sd = per_cpu_ptr(&svm_data, cpu);

		if (sd->hsave_page)
			__free_page(sd->hsave_page);
		if (sd->host_vmcb_page)
			__free_page(sd->host_vmcb_page);
		sd->hsave_page = NULL;
		sd->host_vmcb_page = NULL;
	}
	free_pages((unsigned long)svm_iopm, get_order(SVM_IOPM_SIZE));
	free_pages((unsigned long)svm_msrpm, get_order(SVM_MSRPM_SIZE));
}

static int svm_alloc_cpu_data(void)
{
	int cpu;

	svm_iopm = (void *)__get_free_pages(GFP_KERNEL, get_order(SVM_IOPM_SIZE));
	svm_msrpm = (void *)__get_free_pages(GFP_KERNEL, get_order(SVM_MSRPM_SIZE));
	if (!svm_iopm || !svm_msrpm)
		goto fail;
	memset(svm_iopm, 0xff, PAGE_SIZE << get_order(SVM_IOPM_SIZE));
	memset(svm_msrpm, 0xff, PAGE_SIZE << get_order(SVM_MSRPM_SIZE));

	for_each_possible_cpu(cpu) {
		struct svm_cpu_data *sd = per_cpu_ptr(&svm_data, cpu);

		sd->hsave_page = alloc_pages_node(cpu_to_node(cpu), GFP_KERNEL | __GFP_ZERO, 0);
		sd->host_vmcb_page = alloc_pages_node(cpu_to_node(cpu),
						      GFP_KERNEL | __GFP_ZERO, 0);
		if (!sd->hsave_page || !sd->host_vmcb_page)
			goto fail;
	}
	return 0;
fail:
	svm_free_cpu_data();
	return -ENOMEM;
}

static int __init svm_init(void)
{
	int r;

	svm_has_flush_by_asid = boot_cpu_has(X86_FEATURE_FLUSHBYASID);
	svm_ops.mmu_modes = KVMX_MMU_MODE_SHADOW |
			    (boot_cpu_has(X86_FEATURE_NPT) ? KVMX_MMU_MODE_TDP : 0);
	/* SVM runs real mode as it is, with either MMU (paged real mode with shadow paging). */
	svm_ops.real_mode_modes = svm_ops.mmu_modes;
	if (boot_cpu_has(X86_FEATURE_XSAVE))
		svm_host_xcr0 = xgetbv(XCR_XFEATURE_ENABLED_MASK);
	r = svm_alloc_cpu_data();
	if (r)
		return r;
	r = kvmx_register_vendor(&svm_ops, THIS_MODULE);
	if (r)
		svm_free_cpu_data();
	return r;
}

static void __exit svm_exit(void)
{
	kvmx_unregister_vendor(&svm_ops);
	svm_free_cpu_data();
}

module_init(svm_init);
module_exit(svm_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("kvmx maintainers");
MODULE_DESCRIPTION("kvmx: AMD SVM backend");
