// SPDX-License-Identifier: GPL-2.0
/*
 * kvmx-intel: the Intel VMX backend.  This file: VMX on/off per CPU, the
 * capability MSRs, VMCS life cycle and CPU migration, VPIDs and INVEPT, and
 * entry/exit around vmenter.S.  Guest register state lives in state.c, exit
 * handlers in exits.c.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/slab.h>
#include <linux/percpu.h>
#include <linux/hw_breakpoint.h>
#include <linux/spinlock.h>
#include <asm/cpufeature.h>
#include <asm/msr.h>
#include <asm/tlbflush.h>
#include <asm/desc.h>
#include <asm/debugreg.h>
#include <asm/nospec-branch.h>
#include <asm/fpu/xcr.h>
#include <asm/processor.h>
#include <asm/fsgsbase.h>
#include <asm/mtrr.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/cpu.h>

#include "vmx.h"

/* Set before an emergency reboot turns VMX off: see the fixup in vmenter.S. */
bool kvmx_vmx_rebooting;
struct vmx_config vmx_cfg;

static DEFINE_PER_CPU(struct vmx_cpu_data, vmx_data);
static u64 vmx_host_xcr0;
static u32 vmx_vmcs_size;

/* VPIDs 1..VMX_NR_VPIDS-1 (0 is the host's), one per vCPU. */
static DEFINE_SPINLOCK(vmx_vpid_lock);
static unsigned long *vmx_vpid_bitmap;

void vmx_insn_fault(const char *insn, unsigned long field)
{
	/* After an emergency VMXOFF every VMX instruction faults: expected. */
	if (READ_ONCE(kvmx_vmx_rebooting))
		return;
	WARN_ONCE(1, "kvmx-intel: %s failed (field/address %#lx)\n", insn, field);
}

/*
 * The VMX instructions that take a physical address in memory.  Each
 * returns true on success; false on VMfail (CF or ZF set) or on a fault,
 * which means VMX is off (SDM: "Conventions" of the VMX instruction
 * reference).
 */
static bool vmx_vmxon(u64 pa)
{
	bool ok;

	asm volatile("1: vmxon %[pa]\n\t"
		     "seta %[ok]\n\t"
		     "jmp 3f\n\t"
		     "2: movb $0, %[ok]\n\t"
		     "3:\n\t"
		     _ASM_EXTABLE(1b, 2b)
		     : [ok] "=qm" (ok) : [pa] "m" (pa) : "memory", "cc");
	return ok;
}

static void vmx_vmxoff(void)
{
	asm volatile("1: vmxoff\n\t"
		     "2:\n\t"
		     _ASM_EXTABLE(1b, 2b)
		     : : : "memory", "cc");
	cr4_clear_bits(X86_CR4_VMXE);
}

static void vmx_vmclear(struct vmcs *vmcs)
{
	u64 pa = __pa(vmcs);
	bool ok;

	asm volatile("1: vmclear %[pa]\n\t"
		     "seta %[ok]\n\t"
		     "jmp 3f\n\t"
		     "2: movb $0, %[ok]\n\t"
		     "3:\n\t"
		     _ASM_EXTABLE(1b, 2b)
		     : [ok] "=qm" (ok) : [pa] "m" (pa) : "memory", "cc");
	if (unlikely(!ok))
		vmx_insn_fault("vmclear", pa);
}

static void vmx_vmptrld(struct vmcs *vmcs)
{
	u64 pa = __pa(vmcs);
	bool ok;

	asm volatile("1: vmptrld %[pa]\n\t"
		     "seta %[ok]\n\t"
		     "jmp 3f\n\t"
		     "2: movb $0, %[ok]\n\t"
		     "3:\n\t"
		     _ASM_EXTABLE(1b, 2b)
		     : [ok] "=qm" (ok) : [pa] "m" (pa) : "memory", "cc");
	if (unlikely(!ok))
		vmx_insn_fault("vmptrld", pa);
}

static void vmx_invept(unsigned long type, u64 eptp)
{
	struct {
		u64 eptp, reserved;
	} desc = { eptp, 0 };
	bool ok;

	asm volatile("1: invept %[desc], %[type]\n\t"
		     "seta %[ok]\n\t"
		     "jmp 3f\n\t"
		     "2: movb $0, %[ok]\n\t"
		     "3:\n\t"
		     _ASM_EXTABLE(1b, 2b)
		     : [ok] "=qm" (ok)
		     : [desc] "m" (desc), [type] "r" (type)
		     : "memory", "cc");
	if (unlikely(!ok))
		vmx_insn_fault("invept", type);
}

static u64 vmx_eptp(struct kvmx_vm *vm)
{
	u64 eptp = kvmx_mmu_root_pa(vm) | VMX_EPTP_MT_WB | VMX_EPTP_PWL_4;

	if (vmx_cfg.ept_ad)
		eptp |= VMX_EPTP_AD_ENABLE_BIT;
	return eptp;
}

/*
 * Drop what this CPU caches of the VM's guest-physical and combined
 * mappings, for every VPID (SDM: "Invalidation of TLBs and Paging-Structure
 * Caches").  The TDP MMU's flush requests and a vCPU's move to another CPU
 * come here.
 */
static void vmx_flush_guest_tlb(struct vcpu_vmx *vmx)
{
	/* Shadow paging runs without EPT or VPID: every entry and exit flushes. */
	if (kvmx_vm_shadow(vmx->vcpu.vm))
		return;
	if (vmx_cfg.invept_single)
		vmx_invept(VMX_EPT_EXTENT_CONTEXT, vmx_eptp(vmx->vcpu.vm));
	else
		vmx_invept(VMX_EPT_EXTENT_GLOBAL, 0);
}

/* VMCLEAR every VMCS active on this CPU; interrupts are off. */
static void vmx_clear_loaded_vmcss(void)
{
	struct vmx_cpu_data *cd = this_cpu_ptr(&vmx_data);
	struct vcpu_vmx *vmx, *tmp;

	list_for_each_entry_safe(vmx, tmp, &cd->loaded, loaded_link) {
		vmx_vmclear(vmx->vmcs);
		list_del(&vmx->loaded_link);
		vmx->launched = false;
		/* The list update is seen before the CPU field (see vmx_vcpu_load()). */
		smp_wmb();
		WRITE_ONCE(vmx->loaded_cpu, -1);
	}
	cd->current_vmcs = NULL;
}

static void vmx_emergency_disable(void)
{
	kvmx_vmx_rebooting = true;
	if (!(__read_cr4() & X86_CR4_VMXE))
		return;
	/* VMCLEAR writes the VMCSs back to memory, where a crash dump finds them. */
	vmx_clear_loaded_vmcss();
	vmx_vmxoff();
}

/*
 * Turn VMX on for this CPU (SDM: "Enabling and Entering VMX Operation"):
 * IA32_FEATURE_CONTROL must allow VMXON outside SMX, CR0 and CR4 must obey
 * the fixed-bit MSRs, CR4.VMXE must be set, and VMXON gets the CPU's region.
 */
static int vmx_hardware_enable(void)
{
	struct vmx_cpu_data *cd = this_cpu_ptr(&vmx_data);
	unsigned long cr0 = read_cr0(), cr4 = __read_cr4() | X86_CR4_VMXE;
	u64 fc;

	if (__read_cr4() & X86_CR4_VMXE) {
		pr_err("CPU %d: VMX is in use by another hypervisor\n", smp_processor_id());
		return -EBUSY;
	}
	rdmsrl(MSR_IA32_FEAT_CTL, fc);
	if (!(fc & FEAT_CTL_LOCKED) || !(fc & FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX)) {
		pr_err("CPU %d: VMX is disabled by the firmware\n", smp_processor_id());
		return -EPERM;
	}
	if ((cr0 & vmx_cfg.cr0_fixed0) != vmx_cfg.cr0_fixed0 || (cr0 & ~vmx_cfg.cr0_fixed1) ||
	    (cr4 & vmx_cfg.cr4_fixed0) != vmx_cfg.cr4_fixed0 || (cr4 & ~vmx_cfg.cr4_fixed1)) {
		pr_err("CPU %d: CR0 %#lx / CR4 %#lx break the VMX fixed bits\n",
		       smp_processor_id(), cr0, cr4);
		return -EIO;
	}

	INIT_LIST_HEAD(&cd->loaded);
	cd->current_vmcs = NULL;
	cd->last_vcpu = NULL;
	cd->vmxon_region->revision_id = vmx_cfg.revision_id;
	cr4_set_bits(X86_CR4_VMXE);
	if (!vmx_vmxon(__pa(cd->vmxon_region))) {
		cr4_clear_bits(X86_CR4_VMXE);
		pr_err("CPU %d: VMXON failed\n", smp_processor_id());
		return -EIO;
	}
	/* Nothing an earlier owner of VMX left in the TLBs may be used. */
	if (vmx_cfg.ept && (vmx_cfg.ept_vpid_cap & VMX_EPT_EXTENT_GLOBAL_BIT))
		vmx_invept(VMX_EPT_EXTENT_GLOBAL, 0);
	cd->enabled = true;
	return 0;
}

static void vmx_hardware_disable(void)
{
	struct vmx_cpu_data *cd = this_cpu_ptr(&vmx_data);

	vmx_clear_loaded_vmcss();
	vmx_vmxoff();
	cd->enabled = false;
}

/* VMCLEAR @arg's VMCS on the CPU it is active on; runs there, interrupts off. */
static void __vmx_vmcs_clear(void *arg)
{
	struct vcpu_vmx *vmx = arg;
	struct vmx_cpu_data *cd = this_cpu_ptr(&vmx_data);

	/* The CPU went through hardware_disable meanwhile: nothing is active. */
	if (READ_ONCE(vmx->loaded_cpu) != raw_smp_processor_id())
		return;
	if (cd->current_vmcs == vmx->vmcs)
		cd->current_vmcs = NULL;
	vmx_vmclear(vmx->vmcs);
	list_del(&vmx->loaded_link);
	vmx->launched = false;
	/* The list update is seen before the CPU field (see vmx_vcpu_load()). */
	smp_wmb();
	WRITE_ONCE(vmx->loaded_cpu, -1);
}

static void vmx_vmcs_clear(struct vcpu_vmx *vmx)
{
	int cpu = READ_ONCE(vmx->loaded_cpu);

	if (cpu != -1)
		smp_call_function_single(cpu, __vmx_vmcs_clear, vmx, 1);
}

/* The base of the descriptor @sel selects in the GDT at @gdt (a system descriptor). */
static unsigned long vmx_tss_base(unsigned long gdt, u16 sel)
{
	struct ldttss_desc *d = (struct ldttss_desc *)(gdt + (sel & ~7));

	return get_desc_base((struct desc_struct *)d) | ((unsigned long)d->base3 << 32);
}

/*
 * Make the vCPU's VMCS current on @cpu, with preemption disabled.  A VMCS
 * active on another CPU is VMCLEARed there first (SDM: "Software Use of the
 * VMCS and Related Structures"); the host state that differs per CPU (TR and
 * GDT bases, SYSENTER_ESP) is written whenever the CPU changes.
 */
static void vmx_vcpu_load(struct kvmx_vcpu *vcpu, int cpu)
{
	struct vmx_cpu_data *cd = per_cpu_ptr(&vmx_data, cpu);
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	bool moved = READ_ONCE(vmx->loaded_cpu) != cpu;
	struct desc_ptr gdt;
	unsigned long flags;

	if (moved) {
		vmx_vmcs_clear(vmx);
		/* Read the CPU field before the list entry (pairs with the smp_wmb()s). */
		smp_rmb();
		local_irq_save(flags);
		list_add(&vmx->loaded_link, &cd->loaded);
		WRITE_ONCE(vmx->loaded_cpu, cpu);
		local_irq_restore(flags);
	}
	if (cd->current_vmcs != vmx->vmcs) {
		cd->current_vmcs = vmx->vmcs;
		vmx_vmptrld(vmx->vmcs);
	}
	if (cd->last_vcpu != vmx) {
		/* Another guest's branch predictions must not steer this one. */
		cd->last_vcpu = vmx;
		indirect_branch_prediction_barrier();
	}
	if (moved) {
		u64 sysenter_esp, gs_base;

		native_store_gdt(&gdt);
		vmcs_writel(HOST_GDTR_BASE, gdt.address);
		vmcs_writel(HOST_TR_BASE, vmx_tss_base(gdt.address, GDT_ENTRY_TSS * 8));
		/* Each CPU has its own SYSENTER stack (its entry stack, for 32-bit tasks). */
		rdmsrl(MSR_IA32_SYSENTER_ESP, sysenter_esp);
		vmcs_writel(HOST_IA32_SYSENTER_ESP, sysenter_esp);
		/* The kernel's GS base: this CPU's per-CPU area. */
		rdmsrl(MSR_GS_BASE, gs_base);
		vmcs_writel(HOST_GS_BASE, gs_base);
		/* This CPU may hold stale entries of our EPTP from an earlier visit. */
		vmx->flush_pending = true;
	}

	/*
	 * The task's FS base and user GS base (KERNEL_GS_BASE while in the
	 * kernel): every KVM_RUN and every return from preemption comes here
	 * in the task that is about to enter, after the context switch put its
	 * values back, and nothing changes them before the entry.
	 */
	rdmsrl(MSR_FS_BASE, vmx->host_fs_base);
	vmcs_writel(HOST_FS_BASE, vmx->host_fs_base);
	rdmsrl(MSR_KERNEL_GS_BASE, vmx->host_msrs[VMX_MSR_KERNEL_GS_BASE].value);
}

static void vmx_vcpu_put(struct kvmx_vcpu *vcpu)
{
	/* The VMCS stays active here until the vCPU runs elsewhere. */
}

/*
 * Register and event hooks run outside KVM_RUN, where the core has not
 * loaded the vCPU: make the VMCS current for them.
 */
void vmx_get_vmcs(struct vcpu_vmx *vmx)
{
	int cpu = get_cpu();

	vmx_vcpu_load(&vmx->vcpu, cpu);
}

void vmx_put_vmcs(struct vcpu_vmx *vmx)
{
	put_cpu();
}

static u16 vmx_alloc_vpid(void)
{
	unsigned long vpid;

	if (!vmx_cfg.vpid)
		return 0;
	spin_lock(&vmx_vpid_lock);
	vpid = find_first_zero_bit(vmx_vpid_bitmap, VMX_NR_VPIDS);
	if (vpid < VMX_NR_VPIDS)
		__set_bit(vpid, vmx_vpid_bitmap);
	else
		vpid = 0;	/* share the host's tag; every entry then flushes */
	spin_unlock(&vmx_vpid_lock);
	return vpid;
}

static void vmx_free_vpid(u16 vpid)
{
	if (!vpid)
		return;
	spin_lock(&vmx_vpid_lock);
	__clear_bit(vpid, vmx_vpid_bitmap);
	spin_unlock(&vmx_vpid_lock);
}

/* Host state that never changes while the module is loaded (SDM: "Host-State Area"). */
static void vmx_set_constant_host_state(void)
{
	struct desc_ptr idt;

	vmcs_writel(HOST_CR0, read_cr0());
	vmcs_write16(HOST_CS_SELECTOR, __KERNEL_CS);
	vmcs_write16(HOST_SS_SELECTOR, __KERNEL_DS);
	vmcs_write16(HOST_DS_SELECTOR, 0);
	vmcs_write16(HOST_ES_SELECTOR, 0);
	vmcs_write16(HOST_FS_SELECTOR, 0);
	vmcs_write16(HOST_GS_SELECTOR, 0);
	vmcs_write16(HOST_TR_SELECTOR, GDT_ENTRY_TSS * 8);
	store_idt(&idt);
	vmcs_writel(HOST_IDTR_BASE, idt.address);
	vmcs_writel(HOST_RIP, (unsigned long)__kvmx_vmx_vmexit);
	vmcs_write32(HOST_IA32_SYSENTER_CS, vmx_cfg.host_sysenter_cs);
	vmcs_writel(HOST_IA32_SYSENTER_EIP, vmx_cfg.host_sysenter_eip);
	vmcs_write64(HOST_IA32_EFER, vmx_cfg.host_efer);
	vmcs_write64(HOST_IA32_PAT, vmx_cfg.host_pat);
}

/*
 * The execution controls of a VM's MMU mode.  With EPT: unrestricted guest,
 * and the guest owns CR3 and INVLPG.  With shadow paging (mm/shadow.c), as
 * KVM's ept=0: no EPT (so no unrestricted guest), CR3 loads and stores,
 * INVLPG and #PF exit, and no VPID: kvmx then needs no INVVPID, since VM
 * entries and exits flush the guest's linear mappings (SDM: "VPID and the
 * TLB"), which covers the guest's CR3 loads and INVLPGs as well as changes
 * to the shadow tables (those kick the vCPUs that use them).
 */
static void vmx_init_vmcs(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	bool shadow = kvmx_vm_shadow(vcpu->vm);
	u32 proc = vmx_cfg.proc, proc2 = vmx_cfg.proc2;
	u32 exceptions = BIT(MC_VECTOR) | BIT(AC_VECTOR);

	if (shadow) {
		proc |= CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_CR3_STORE_EXITING |
			CPU_BASED_INVLPG_EXITING;
		proc2 &= ~(SECONDARY_EXEC_ENABLE_EPT | SECONDARY_EXEC_UNRESTRICTED_GUEST);
		exceptions |= BIT(PF_VECTOR);
	}
	vmcs_write32(PIN_BASED_VM_EXEC_CONTROL, vmx_cfg.pin);
	vmcs_write32(CPU_BASED_VM_EXEC_CONTROL, proc);
	if (!vmx->vpid)
		proc2 &= ~SECONDARY_EXEC_ENABLE_VPID;
	vmcs_write32(SECONDARY_VM_EXEC_CONTROL, proc2);
	vmcs_write32(VM_EXIT_CONTROLS, vmx_cfg.exit);
	vmcs_write32(VM_ENTRY_CONTROLS, vmx_cfg.entry);
	if (vmx->vpid)
		vmcs_write16(VIRTUAL_PROCESSOR_ID, vmx->vpid);
	if (!shadow)
		vmcs_write64(EPT_POINTER, vmx_eptp(vcpu->vm));
	vmcs_write64(VMCS_LINK_POINTER, ~0ULL);

	/*
	 * Machine checks go to the host; #AC is reflected so no #AC loop can
	 * hang a CPU; #PF is the shadow MMU's, every one (PFEC mask and match 0).
	 */
	vmcs_write32(EXCEPTION_BITMAP, exceptions);
	vmcs_write32(PAGE_FAULT_ERROR_CODE_MASK, 0);
	vmcs_write32(PAGE_FAULT_ERROR_CODE_MATCH, 0);
	vmcs_write32(CR3_TARGET_COUNT, 0);
	/* The guest owns CR0.TS (its FPU state is live); every other CR0/CR4 write exits. */
	vmcs_writel(CR0_GUEST_HOST_MASK, ~(unsigned long)X86_CR0_TS);
	vmcs_writel(CR4_GUEST_HOST_MASK, ~0UL);

	vmcs_write64(VM_EXIT_MSR_STORE_ADDR, __pa(vmx->guest_msrs));
	vmcs_write32(VM_EXIT_MSR_STORE_COUNT, VMX_NR_AUTOLOAD);
	vmcs_write64(VM_ENTRY_MSR_LOAD_ADDR, __pa(vmx->guest_msrs));
	vmcs_write32(VM_ENTRY_MSR_LOAD_COUNT, VMX_NR_AUTOLOAD);
	vmcs_write64(VM_EXIT_MSR_LOAD_ADDR, __pa(vmx->host_msrs));
	vmcs_write32(VM_EXIT_MSR_LOAD_COUNT, VMX_NR_AUTOLOAD);

	vmx_set_constant_host_state();
	vmx->host_cr3 = 0;
	vmx->host_cr4 = 0;
	vmx_reset_vcpu(vmx);
}

static int vmx_vcpu_create(struct kvmx_vcpu *vcpu)
{
	static const u32 autoload[VMX_NR_AUTOLOAD] = {
		[VMX_MSR_STAR] = MSR_STAR,
		[VMX_MSR_LSTAR] = MSR_LSTAR,
		[VMX_MSR_SFMASK] = MSR_SYSCALL_MASK,
		[VMX_MSR_KERNEL_GS_BASE] = MSR_KERNEL_GS_BASE,
	};
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	struct page *page;
	int i;

	page = alloc_pages_node(cpu_to_node(raw_smp_processor_id()),
				GFP_KERNEL_ACCOUNT | __GFP_ZERO, 0);
	if (!page)
		return -ENOMEM;
	vmx->vmcs = page_address(page);
	vmx->vmcs->revision_id = vmx_cfg.revision_id;

	vmx->guest_msrs = (void *)get_zeroed_page(GFP_KERNEL_ACCOUNT);
	if (!vmx->guest_msrs) {
		free_page((unsigned long)vmx->vmcs);
		return -ENOMEM;
	}
	/* Both lists in one page, each 16-byte aligned as the SDM requires. */
	vmx->host_msrs = vmx->guest_msrs + VMX_NR_AUTOLOAD;
	for (i = 0; i < VMX_NR_AUTOLOAD; i++) {
		vmx->guest_msrs[i].index = autoload[i];
		vmx->host_msrs[i].index = autoload[i];
	}
	vmx->host_msrs[VMX_MSR_STAR].value = vmx_cfg.host_star;
	vmx->host_msrs[VMX_MSR_LSTAR].value = vmx_cfg.host_lstar;
	vmx->host_msrs[VMX_MSR_SFMASK].value = vmx_cfg.host_sfmask;

	vmx->loaded_cpu = -1;
	INIT_LIST_HEAD(&vmx->loaded_link);
	vmx->vpid = kvmx_vm_shadow(vcpu->vm) ? 0 : vmx_alloc_vpid();
	vmx->emul.ops = &vmx_emul_ops;

	vmx_get_vmcs(vmx);
	vmx_init_vmcs(vmx);
	vmx_put_vmcs(vmx);
	return 0;
}

static void vmx_vcpu_free(struct kvmx_vcpu *vcpu)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	int cpu;

	vmx_vmcs_clear(vmx);
	/* Forget us in every CPU's "last vCPU" so no stale pointer compares equal. */
	for_each_possible_cpu(cpu)
		cmpxchg(&per_cpu_ptr(&vmx_data, cpu)->last_vcpu, vmx, NULL);
	vmx_free_vpid(vmx->vpid);
	free_page((unsigned long)vmx->guest_msrs);
	free_page((unsigned long)vmx->vmcs);
}

/*
 * Host state that can change between entries: CR3 (the task's page tables,
 * and PCID) and CR4.  The FS/GS bases and KERNEL_GS_BASE are the task's and
 * the CPU's, written in vmx_vcpu_load(); the syscall MSRs are the same on
 * every CPU.  Interrupts are off.
 */
static void vmx_prepare_host_state(struct vcpu_vmx *vmx)
{
	unsigned long cr3 = __read_cr3(), cr4 = cr4_read_shadow();

	if (cr3 != vmx->host_cr3) {
		vmcs_writel(HOST_CR3, cr3);
		vmx->host_cr3 = cr3;
	}
	if (cr4 != vmx->host_cr4) {
		vmcs_writel(HOST_CR4, cr4);
		vmx->host_cr4 = cr4;
	}
}

/*
 * Host segment state the VM exit does not restore (it loads null selectors,
 * LDTR 0); the bases to put back are those vmx_vcpu_load() read.
 */
struct vmx_host_segs {
	u16 ds, es, fs, gs, ldt;
};

static void vmx_save_host_segs(struct vmx_host_segs *h)
{
	savesegment(ds, h->ds);
	savesegment(es, h->es);
	savesegment(fs, h->fs);
	savesegment(gs, h->gs);
	asm volatile("sldt %0" : "=g" (h->ldt));
}

static void vmx_restore_host_segs(struct vcpu_vmx *vmx, struct vmx_host_segs *h)
{
	if (h->ldt)
		asm volatile("lldt %0" : : "rm" (h->ldt));
	if (h->gs) {
		/* Loading GS from a selector writes the user GS base (KERNEL_GS_BASE now). */
		load_gs_index(h->gs);
		wrmsrl(MSR_KERNEL_GS_BASE, vmx->host_msrs[VMX_MSR_KERNEL_GS_BASE].value);
	}
	if (h->fs) {
		loadsegment(fs, h->fs);
		wrmsrl(MSR_FS_BASE, vmx->host_fs_base);
	}
	if (h->ds | h->es) {
		loadsegment(ds, h->ds);
		loadsegment(es, h->es);
	}
	/* The VM exit set the TR limit to 0x67 and the GDT limit to 0xffff. */
	invalidate_tss_limit();
	load_fixmap_gdt(raw_smp_processor_id());
}

/* L1TF: flush the L1 data cache before an entry unless the host turned that off. */
static bool vmx_l1d_flush;

static int vmx_fail_entry(struct vcpu_vmx *vmx)
{
	struct kvm_run *run = vmx->vcpu.run;

	/*
	 * VMfail (bad controls or host state: a kvmx bug, or VMRESUME after a
	 * failed entry): as KVM, report the VM-instruction error number.
	 */
	run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	run->fail_entry.hardware_entry_failure_reason = vmcs_read32(VM_INSTRUCTION_ERROR);
	run->fail_entry.cpu = vmx->loaded_cpu;
	vmx_dump_vmcs(vmx);
	return 0;
}

/*
 * Real mode runs on VMX only as an unrestricted guest, which needs EPT (SDM:
 * "Unrestricted Guests").  A shadow-paging VM does not enter it: KVM_RUN
 * reports what the CPU reports for that guest state, a VM-entry failure for
 * invalid guest state, before anything of the vCPU changes
 * (KVMX_CAP_REAL_MODE, uapi/linux/kvmx.h).  In-tree KVM emulates real mode
 * there with virtual-8086 mode and its instruction emulator; kvmx has
 * neither yet.
 */
static int vmx_refuse_real_mode(struct vcpu_vmx *vmx)
{
	struct kvm_run *run = vmx->vcpu.run;

	run->exit_reason = KVM_EXIT_FAIL_ENTRY;
	run->fail_entry.hardware_entry_failure_reason =
		VMX_EXIT_REASONS_FAILED_VMENTRY | EXIT_REASON_INVALID_STATE;
	run->fail_entry.cpu = vmx->loaded_cpu;
	return 0;
}

/* Enter the guest once; interrupts are off from here to after the exit. */
static int vmx_vcpu_run(struct kvmx_vcpu *vcpu)
{
	struct vcpu_vmx *vmx = to_vmx(vcpu);
	struct vmx_cpu_data *cd;
	struct vmx_host_segs host;
	u64 debugctl;

	if (kvmx_vm_shadow(vcpu->vm)) {
		struct kvmx_paging p;
		int r;

		if (!(vmx->cr0 & X86_CR0_PE))
			return vmx_refuse_real_mode(vmx);
		vmx_get_paging(vcpu, &p);
		r = kvmx_shadow_load(vcpu, &p);
		if (r)
			return r;
		vmcs_writel(GUEST_CR3, vcpu->shadow.root_pa);
	}

	vmx_inject_events(vmx);

	local_irq_disable();
	cd = this_cpu_ptr(&vmx_data);
	if (KVMX_KILL_VM_ON(!cd->enabled || cd->current_vmcs != vmx->vmcs, vcpu->vm)) {
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
	if (test_and_clear_bit(KVMX_REQ_TLB_FLUSH, &vcpu->requests) || vmx->flush_pending) {
		vmx_flush_guest_tlb(vmx);
		vmx->flush_pending = false;
	}

	vmcs_writel(GUEST_RSP, vcpu->regs[KVMX_RSP]);
	vmcs_write32(VM_ENTRY_INTR_INFO_FIELD, vmx->event_inj);
	if (vmx->event_inj & INTR_INFO_VALID_MASK) {
		vmcs_write32(VM_ENTRY_EXCEPTION_ERROR_CODE, vmx->event_inj_err);
		vmcs_write32(VM_ENTRY_INSTRUCTION_LEN, vmx->event_inj_len);
	}
	vmx_prepare_host_state(vmx);
	vmx_save_host_segs(&host);
	debugctl = get_debugctlmsr();

	if (vcpu->xcr0 != vmx_host_xcr0)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, vcpu->xcr0);
	if (vmx_l1d_flush)
		wrmsrl(MSR_IA32_FLUSH_CMD, L1D_FLUSH);
	/* VMX does not switch CR2; the host's is dead here (no #PF with IRQs off). */
	if (native_read_cr2() != vmx->cr2)
		native_write_cr2(vmx->cr2);

	vmx->fail = __kvmx_vmx_vcpu_run(vmx, vmx->launched);
	vmx->cr2 = native_read_cr2();

	if (vcpu->xcr0 != vmx_host_xcr0)
		xsetbv(XCR_XFEATURE_ENABLED_MASK, vmx_host_xcr0);
	/* The VM exit cleared DEBUGCTL and set DR7 to 0x400. */
	if (debugctl)
		update_debugctlmsr(debugctl);
	if (hw_breakpoint_active())
		hw_breakpoint_restore();
	vmx_restore_host_segs(vmx, &host);

	WRITE_ONCE(vcpu->mode, KVMX_OUTSIDE_GUEST_MODE);

	if (!vmx->fail) {
		vmx->launched = true;
		vcpu->regs[KVMX_RSP] = vmcs_readl(GUEST_RSP);
		vmx->exit_reason = vmcs_read32(VM_EXIT_REASON);
		vmx->exit_qual = vmcs_readl(EXIT_QUALIFICATION);
		vmx->exit_intr_info = vmcs_read32(VM_EXIT_INTR_INFO);
		vmx->idt_vectoring_info = 0;
		if (!(vmx->exit_reason & VMX_EXIT_REASONS_FAILED_VMENTRY))
			vmx->idt_vectoring_info = vmcs_read32(IDT_VECTORING_INFO_FIELD);
		/* A machine check (SDM) or an NMI that made us exit is the host's: take it now. */
		vmx_handle_exit_irqoff(vmx);
	}

	/* Host interrupts that made us exit are taken here. */
	local_irq_enable();

	if (vmx->fail)
		return vmx_fail_entry(vmx);
	vmx->event_inj = 0;
	vmx_complete_interrupts(vmx);
	return vmx_handle_exit(vmx);
}

static int vmx_vm_init(struct kvmx_vm *vm)
{
	return 0;
}

/*
 * EPT entries (SDM: "EPT Translation Mechanism"): read/write/execute in bits
 * 0-2, the memory type in bits 3-5 of leaves (write-back, ignoring the
 * guest's PAT as KVM does without non-coherent DMA), bit 7 for 2 MiB leaves,
 * accessed/dirty in bits 8/9 when EPTP enables them.  Every entry kvmx makes
 * is readable, so bit 0 tells present entries apart.
 */
static struct kvmx_tdp_format vmx_ept_format = {
	.present = VMX_EPT_READABLE_MASK,
	.writable = VMX_EPT_WRITABLE_MASK,
	.huge = BIT_ULL(7),
	.table = VMX_EPT_RWX_MASK,
	.leaf = VMX_EPT_READABLE_MASK | VMX_EPT_EXECUTABLE_MASK |
		(MTRR_TYPE_WRBACK << VMX_EPT_MT_EPTE_SHIFT) | VMX_EPT_IPAT_BIT,
	.pfn_mask = GENMASK_ULL(51, 12),
	.levels = 4,
};

static int vmx_check_hardware(void);

/* mmu_modes and real_mode_modes come from the capability MSRs (vmx_setup_config()). */
static struct kvmx_vendor_ops vmx_ops = {
	.name = "intel-vmx",
	.check_hardware = vmx_check_hardware,
	.vm_size = sizeof(struct kvmx_vm),
	.vcpu_size = sizeof(struct vcpu_vmx),
	.tdp_format = &vmx_ept_format,
	.hardware_enable = vmx_hardware_enable,
	.hardware_disable = vmx_hardware_disable,
	.emergency_disable = vmx_emergency_disable,
	.vm_init = vmx_vm_init,
	.vcpu_create = vmx_vcpu_create,
	.vcpu_free = vmx_vcpu_free,
	.vcpu_load = vmx_vcpu_load,
	.vcpu_put = vmx_vcpu_put,
	.vcpu_run = vmx_vcpu_run,
	.complete_userspace_io = vmx_complete_userspace_io,
	.get_regs = vmx_get_regs,
	.set_regs = vmx_set_regs,
	.get_sregs = vmx_get_sregs,
	.set_sregs = vmx_set_sregs,
	.get_msr = vmx_get_msr_hook,
	.set_msr = vmx_set_msr_hook,
	.get_events = vmx_get_events,
	.set_events = vmx_set_events,
	.interrupt_allowed = vmx_interrupt_allowed_hook,
	.get_if_flag = vmx_get_if_flag,
};

/*
 * One control word from its capability MSR (SDM: "VMX Capability
 * Reporting Facility"): the low half says which bits must be 1, the high
 * half which may be 1.  Returns -EIO when a bit of @min is not allowed.
 */
static int vmx_adjust_controls(u32 min, u32 opt, u32 msr, u32 *result)
{
	u32 lo, hi, ctl = min | opt;

	rdmsr(msr, lo, hi);
	ctl &= hi;
	ctl |= lo;
	if (min & ~ctl) {
		pr_err("VMX control MSR %#x lacks required bits %#x\n", msr, min & ~ctl);
		return -EIO;
	}
	*result = ctl;
	return 0;
}

static int vmx_setup_config(void)
{
	bool true_ctls;
	u64 basic;
	u32 min, opt;
	int r;

	rdmsrl(MSR_IA32_VMX_BASIC, basic);
	vmx_cfg.revision_id = basic & GENMASK_ULL(30, 0);
	vmx_vmcs_size = (basic & GENMASK_ULL(44, 32)) >> 32;
	if (vmx_vmcs_size > PAGE_SIZE || (basic & BIT_ULL(48)) ||
	    ((basic & GENMASK_ULL(53, 50)) >> 50) != MTRR_TYPE_WRBACK) {
		pr_err("unusable VMX_BASIC %#llx\n", basic);
		return -EIO;
	}
	/* The TRUE_* MSRs let default-1 controls (CR3 exiting, ...) be cleared. */
	true_ctls = basic & VMX_BASIC_TRUE_CTLS;

	min = PIN_BASED_EXT_INTR_MASK | PIN_BASED_NMI_EXITING | PIN_BASED_VIRTUAL_NMIS;
	r = vmx_adjust_controls(min, 0, true_ctls ? MSR_IA32_VMX_TRUE_PINBASED_CTLS :
				MSR_IA32_VMX_PINBASED_CTLS, &vmx_cfg.pin);
	if (r)
		return r;

	min = CPU_BASED_HLT_EXITING | CPU_BASED_CR8_LOAD_EXITING |
	      CPU_BASED_CR8_STORE_EXITING | CPU_BASED_MOV_DR_EXITING |
	      CPU_BASED_UNCOND_IO_EXITING | CPU_BASED_MWAIT_EXITING |
	      CPU_BASED_MONITOR_EXITING | CPU_BASED_RDPMC_EXITING |
	      CPU_BASED_USE_TSC_OFFSETTING | CPU_BASED_ACTIVATE_SECONDARY_CONTROLS;
	r = vmx_adjust_controls(min, 0, true_ctls ? MSR_IA32_VMX_TRUE_PROCBASED_CTLS :
				MSR_IA32_VMX_PROCBASED_CTLS, &vmx_cfg.proc);
	if (r)
		return r;
	/* With EPT the guest owns CR3 and INVLPG; without TRUE_* these may be forced on. */
	vmx_cfg.proc &= ~(CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_CR3_STORE_EXITING |
			  CPU_BASED_INVLPG_EXITING);
	if (true_ctls) {
		u64 must;

		/* The low half: the controls that must be 1. */
		rdmsrl(MSR_IA32_VMX_TRUE_PROCBASED_CTLS, must);
		vmx_cfg.proc |= (u32)must;
	} else {
		vmx_cfg.proc |= CPU_BASED_CR3_LOAD_EXITING | CPU_BASED_CR3_STORE_EXITING |
				CPU_BASED_INVLPG_EXITING;
	}

	opt = SECONDARY_EXEC_ENABLE_EPT | SECONDARY_EXEC_UNRESTRICTED_GUEST |
	      SECONDARY_EXEC_ENABLE_VPID | SECONDARY_EXEC_WBINVD_EXITING;
	r = vmx_adjust_controls(0, opt, MSR_IA32_VMX_PROCBASED_CTLS2, &vmx_cfg.proc2);
	if (r)
		return r;

	min = VM_EXIT_HOST_ADDR_SPACE_SIZE | VM_EXIT_SAVE_IA32_EFER | VM_EXIT_LOAD_IA32_EFER |
	      VM_EXIT_SAVE_IA32_PAT | VM_EXIT_LOAD_IA32_PAT;
	r = vmx_adjust_controls(min, 0, true_ctls ? MSR_IA32_VMX_TRUE_EXIT_CTLS :
				MSR_IA32_VMX_EXIT_CTLS, &vmx_cfg.exit);
	if (r)
		return r;
	/* External interrupts stay pending in the APIC: the host takes them on STI. */
	vmx_cfg.exit &= ~VM_EXIT_ACK_INTR_ON_EXIT;

	min = VM_ENTRY_LOAD_IA32_EFER | VM_ENTRY_LOAD_IA32_PAT;
	r = vmx_adjust_controls(min, 0, true_ctls ? MSR_IA32_VMX_TRUE_ENTRY_CTLS :
				MSR_IA32_VMX_ENTRY_CTLS, &vmx_cfg.entry);
	if (r)
		return r;
	vmx_cfg.entry &= ~VM_ENTRY_IA32E_MODE;

	/* It exists only where EPT or VPID may be on (SDM: "VPID and EPT Capabilities"). */
	if (vmx_cfg.proc2 & (SECONDARY_EXEC_ENABLE_EPT | SECONDARY_EXEC_ENABLE_VPID))
		rdmsrl(MSR_IA32_VMX_EPT_VPID_CAP, vmx_cfg.ept_vpid_cap);
	/*
	 * Two-dimensional paging needs EPT with 4-level walks, write-back
	 * tables and INVEPT, and unrestricted guest: kvmx has no virtual-8086
	 * emulation of real mode.  It also needs the TRUE_* MSRs, without
	 * which CR3 and INVLPG exits may be forced on (EPT CPUs have them).
	 * Without all of that VMs run on shadow paging only, and none of them
	 * runs real mode (KVMX_CAP_REAL_MODE).
	 */
	vmx_cfg.ept = true_ctls && (vmx_cfg.proc2 & SECONDARY_EXEC_ENABLE_EPT) &&
		      (vmx_cfg.proc2 & SECONDARY_EXEC_UNRESTRICTED_GUEST) &&
		      (vmx_cfg.ept_vpid_cap & VMX_EPT_PAGE_WALK_4_BIT) &&
		      (vmx_cfg.ept_vpid_cap & VMX_EPTP_WB_BIT) &&
		      (vmx_cfg.ept_vpid_cap & VMX_EPT_INVEPT_BIT) &&
		      (vmx_cfg.ept_vpid_cap & (VMX_EPT_EXTENT_CONTEXT_BIT |
					       VMX_EPT_EXTENT_GLOBAL_BIT));
	if (!vmx_cfg.ept) {
		vmx_cfg.proc2 &= ~(SECONDARY_EXEC_ENABLE_EPT | SECONDARY_EXEC_UNRESTRICTED_GUEST);
		vmx_cfg.ept_vpid_cap &= ~(u64)VMX_EPT_AD_BIT;
	}
	vmx_ops.mmu_modes = KVMX_MMU_MODE_SHADOW | (vmx_cfg.ept ? KVMX_MMU_MODE_TDP : 0);
	vmx_ops.real_mode_modes = vmx_cfg.ept ? KVMX_MMU_MODE_TDP : 0;
	vmx_cfg.invept_single = vmx_cfg.ept_vpid_cap & VMX_EPT_EXTENT_CONTEXT_BIT;
	vmx_cfg.ept_ad = vmx_cfg.ept_vpid_cap & VMX_EPT_AD_BIT;
	vmx_cfg.vpid = vmx_cfg.proc2 & SECONDARY_EXEC_ENABLE_VPID;
	if (vmx_cfg.ept_ad)
		vmx_ept_format.leaf |= VMX_EPT_ACCESS_BIT;
	vmx_ept_format.dirty = vmx_cfg.ept_ad ? VMX_EPT_DIRTY_BIT : 0;

	rdmsrl(MSR_IA32_VMX_CR0_FIXED0, vmx_cfg.cr0_fixed0);
	rdmsrl(MSR_IA32_VMX_CR0_FIXED1, vmx_cfg.cr0_fixed1);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED0, vmx_cfg.cr4_fixed0);
	rdmsrl(MSR_IA32_VMX_CR4_FIXED1, vmx_cfg.cr4_fixed1);

	rdmsrl(MSR_EFER, vmx_cfg.host_efer);
	rdmsrl(MSR_IA32_CR_PAT, vmx_cfg.host_pat);
	/* syscall_init() gives every CPU the same syscall MSRs. */
	rdmsrl(MSR_STAR, vmx_cfg.host_star);
	rdmsrl(MSR_LSTAR, vmx_cfg.host_lstar);
	rdmsrl(MSR_SYSCALL_MASK, vmx_cfg.host_sfmask);
	rdmsrl(MSR_IA32_SYSENTER_CS, vmx_cfg.host_sysenter_cs);
	rdmsrl(MSR_IA32_SYSENTER_EIP, vmx_cfg.host_sysenter_eip);

	vmx_l1d_flush = boot_cpu_has_bug(X86_BUG_L1TF) && boot_cpu_has(X86_FEATURE_FLUSH_L1D) &&
			l1tf_mitigation != L1TF_MITIGATION_OFF;
	return 0;
}

/*
 * Check that this CPU can give VMX to us: the CPUID bit (the kernel clears it
 * when IA32_FEATURE_CONTROL forbids VMX), the feature-control lock and enable
 * bits themselves (SDM: "Enabling and Entering VMX Operation"), and CR4.VMXE
 * clear, since a set VMXE means another hypervisor owns VMX on this CPU.
 */
static int vmx_check_hardware(void)
{
	u64 feature_control;

	if (!boot_cpu_has(X86_FEATURE_VMX)) {
		pr_err("this %s CPU has no usable VMX (VT-x)%s\n", kvmx_host_vendor_name(),
		       boot_cpu_has(X86_FEATURE_SVM) ? ": load kvmx-amd instead" : "");
		return -EOPNOTSUPP;
	}
	rdmsrl(MSR_IA32_FEAT_CTL, feature_control);
	if (!(feature_control & FEAT_CTL_LOCKED) ||
	    !(feature_control & FEAT_CTL_VMX_ENABLED_OUTSIDE_SMX)) {
		pr_err("VMX is disabled by the firmware (IA32_FEATURE_CONTROL %#llx)\n",
		       feature_control);
		return -EOPNOTSUPP;
	}
	if (cr4_read_shadow() & X86_CR4_VMXE) {
		pr_err("VMX is in use by another hypervisor (CR4.VMXE set): unload kvm_intel first\n");
		return -EBUSY;
	}
	/* What the capability MSRs offer (EPT with unrestricted guest, or shadow paging only). */
	return vmx_setup_config() ? -EOPNOTSUPP : 0;
}

static void vmx_free_cpu_data(void)
{
	int cpu;

	for_each_possible_cpu(cpu) {
		struct vmx_cpu_data *cd = per_cpu_ptr(&vmx_data, cpu);

		free_page((unsigned long)cd->vmxon_region);
		cd->vmxon_region = NULL;
	}
	bitmap_free(vmx_vpid_bitmap);
	vmx_vpid_bitmap = NULL;
}

static int vmx_alloc_cpu_data(void)
{
	int cpu;

	vmx_vpid_bitmap = bitmap_zalloc(VMX_NR_VPIDS, GFP_KERNEL);
	if (!vmx_vpid_bitmap)
		return -ENOMEM;
	__set_bit(0, vmx_vpid_bitmap);	/* the host's */
	for_each_possible_cpu(cpu) {
		struct vmx_cpu_data *cd = per_cpu_ptr(&vmx_data, cpu);
		struct page *page = alloc_pages_node(cpu_to_node(cpu), GFP_KERNEL | __GFP_ZERO, 0);

		if (!page) {
			vmx_free_cpu_data();
			return -ENOMEM;
		}
		cd->vmxon_region = page_address(page);
		INIT_LIST_HEAD(&cd->loaded);
	}
	return 0;
}

static int __init vmx_init(void)
{
	int r;

	if (boot_cpu_has(X86_FEATURE_XSAVE))
		vmx_host_xcr0 = xgetbv(XCR_XFEATURE_ENABLED_MASK);
	r = vmx_alloc_cpu_data();
	if (r)
		return r;
	r = kvmx_register_vendor(&vmx_ops, THIS_MODULE);
	if (r) {
		vmx_free_cpu_data();
		return r;
	}
	if (vmx_cfg.ept)
		pr_info("EPT%s with unrestricted guest, and shadow paging; VPID %s\n",
			vmx_cfg.ept_ad ? " with A/D bits" : "", vmx_cfg.vpid ? "on" : "off");
	else
		pr_info("no EPT with unrestricted guest: shadow paging only, without real mode\n");
	return 0;
}

static void __exit vmx_exit(void)
{
	kvmx_unregister_vendor(&vmx_ops);
	vmx_free_cpu_data();
}

module_init(vmx_init);
module_exit(vmx_exit);
MODULE_LICENSE("GPL");
MODULE_AUTHOR("kvmx maintainers");
MODULE_DESCRIPTION("kvmx: Intel VMX backend");
