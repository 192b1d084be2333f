// SPDX-License-Identifier: GPL-2.0
/*
 * VMX exit handlers, in one table indexed by basic exit reason.  Every
 * handler follows the convention written above kvmx_vcpu_run_loop()
 * (kmod/vcpu.c): 1 re-enter, 0 to userspace with kvm_run filled, < 0 an
 * error.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/nospec.h>
#include <linux/ratelimit.h>
#include <asm/processor-flags.h>
#include <asm/traps.h>
#include <asm/vmx.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/cpu.h>

#include "vmx.h"

/* Exit qualification of control-register accesses (SDM: "Exit Qualification"). */
#define CR_QUAL_CR(q)		((q) & 15)
#define CR_QUAL_TYPE(q)		(((q) >> 4) & 3)
#define CR_QUAL_REG(q)		(((q) >> 8) & 15)
#define CR_QUAL_LMSW(q)		(((q) >> 16) & 0xffff)
enum { CR_MOV_TO, CR_MOV_FROM, CR_CLTS, CR_LMSW };

/* ... and of I/O instructions. */
#define IO_QUAL_SIZE(q)		(((q) & 7) + 1)
#define IO_QUAL_IN		BIT(3)
#define IO_QUAL_STRING		BIT(4)
#define IO_QUAL_PORT(q)		((q) >> 16)

void vmx_dump_vmcs(struct vcpu_vmx *vmx)
{
	pr_err_ratelimited("VMCS: exit %#x qual %#lx intr_info %#x idt_vec %#x vpid %u insn_err %u\n",
			   vmx->exit_reason, vmx->exit_qual, vmx->exit_intr_info,
			   vmx->idt_vectoring_info, vmx->vpid, vmcs_read32(VM_INSTRUCTION_ERROR));
	pr_err_ratelimited("VMCS: cr0 %#lx/%#lx cr3 %#lx cr4 %#lx/%#lx efer %#llx rip %#lx rflags %#lx\n",
			   vmcs_readl(GUEST_CR0), vmx->cr0, vmcs_readl(GUEST_CR3),
			   vmcs_readl(GUEST_CR4), vmx->cr4, vmcs_read64(GUEST_IA32_EFER),
			   vmcs_readl(GUEST_RIP), vmcs_readl(GUEST_RFLAGS));
	pr_err_ratelimited("VMCS: cs %#x/%#x/%#lx/%#x ss %#x/%#x tr %#x/%#x intr %#x inj %#x entry %#x\n",
			   vmcs_read16(GUEST_CS_SELECTOR), vmcs_read32(GUEST_CS_AR_BYTES),
			   vmcs_readl(GUEST_CS_BASE), vmcs_read32(GUEST_CS_LIMIT),
			   vmcs_read16(GUEST_SS_SELECTOR), vmcs_read32(GUEST_SS_AR_BYTES),
			   vmcs_read16(GUEST_TR_SELECTOR), vmcs_read32(GUEST_TR_AR_BYTES),
			   vmcs_read32(GUEST_INTERRUPTIBILITY_INFO), vmx->event_inj,
			   vmcs_read32(VM_ENTRY_CONTROLS));
}

/* Complete an intercepted instruction: advance RIP, drop the STI/MOV SS shadow. */
static int vmx_skip_instruction(struct vcpu_vmx *vmx)
{
	u64 rip = vmcs_readl(GUEST_RIP) + vmcs_read32(VM_EXIT_INSTRUCTION_LEN);

	if (vmx_cpu_mode(&vmx->vcpu) != KVMX_MODE_LONG64)
		rip = (u32)rip;
	vmx_emul_ops.set_rip(&vmx->vcpu, rip);
	return 1;
}

static void vmx_inject_gp(struct vcpu_vmx *vmx)
{
	vmx_inject_exception(vmx, GP_VECTOR, true, 0);
}

static void vmx_inject_ud(struct vcpu_vmx *vmx)
{
	vmx_inject_exception(vmx, UD_VECTOR, false, 0);
}

static int unexpected_exit(struct vcpu_vmx *vmx)
{
	u64 data[2] = { vmx->exit_reason, vmx->loaded_cpu };

	pr_err_ratelimited("unexpected exit reason %#x\n", vmx->exit_reason);
	vmx_dump_vmcs(vmx);
	kvmx_internal_error(&vmx->vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, 2, data);
	return 0;
}

/*
 * With interrupts still off after the exit: an NMI or machine check that
 * made the guest exit was meant for the host; hand it to the host's handler
 * (NMI exiting consumed the NMI; SDM: "VM Exits Caused by Events").
 */
void vmx_handle_exit_irqoff(struct vcpu_vmx *vmx)
{
	u32 info = vmx->exit_intr_info;
	u16 basic = vmx->exit_reason;

	if (basic == EXIT_REASON_MCE_DURING_VMENTRY) {
		asm volatile("int $0x12");
		return;
	}
	if (basic != EXIT_REASON_EXCEPTION_NMI || !(info & INTR_INFO_VALID_MASK))
		return;
	if ((info & INTR_INFO_INTR_TYPE_MASK) == INTR_TYPE_NMI_INTR)
		asm volatile("int $2");
	else if ((info & INTR_INFO_VECTOR_MASK) == MC_VECTOR)
		asm volatile("int $0x12");
}

/* Host events: they are taken when the caller re-enables interrupts. */
static int host_event_exit(struct vcpu_vmx *vmx)
{
	return 1;
}

static int triple_fault_exit(struct vcpu_vmx *vmx)
{
	/* As KVM on VMX: the vCPU keeps its state; userspace decides. */
	vmx->vcpu.run->exit_reason = KVM_EXIT_SHUTDOWN;
	return 0;
}

/*
 * Deliver a #PF the guest takes (shadow paging).  If the fault hit while
 * another event was being delivered (vmx_complete_interrupts() queued that
 * one again), combine them as the hardware would (kvmx_pf_after_exception()):
 * a double fault, a triple fault, or the #PF alone; an interrupt or NMI cut
 * short goes back to pending and is delivered after the #PF.  Returns what
 * an exit handler returns.
 */
static int vmx_reflect_pf(struct vcpu_vmx *vmx, u64 gva, u32 error)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	u32 inj = vmx->event_inj;

	if (inj & INTR_INFO_VALID_MASK) {
		vmx->event_inj = 0;
		switch (inj & INTR_INFO_INTR_TYPE_MASK) {
		case INTR_TYPE_HARD_EXCEPTION:
			switch (kvmx_pf_after_exception(inj & INTR_INFO_VECTOR_MASK)) {
			case KVMX_FAULT_TRIPLE:
				return triple_fault_exit(vmx);
			case KVMX_FAULT_DOUBLE:
				vmx_inject_exception(vmx, DF_VECTOR, true, 0);
				return 1;
			case KVMX_FAULT_SERIAL:
				break;
			}
			break;
		case INTR_TYPE_NMI_INTR:
			vcpu->nmi_pending = true;
			break;
		case INTR_TYPE_EXT_INTR:
			vcpu->irq_pending = true;
			vcpu->irq_vector = inj & INTR_INFO_VECTOR_MASK;
			break;
		}
	}
	vmx->cr2 = gva;
	vmx_inject_exception(vmx, PF_VECTOR, true, error);
	return 1;
}

/*
 * An exit during event delivery that kvmx cannot complete (KVM's
 * KVM_INTERNAL_ERROR_DELIVERY_EV): the vectoring information, the exit
 * reason and qualification, and the guest-physical address.
 */
static int vmx_delivery_failure(struct vcpu_vmx *vmx, gpa_t gpa)
{
	u64 data[4] = { vmx->idt_vectoring_info, vmx->exit_reason, vmx->exit_qual, gpa };

	kvmx_internal_error(&vmx->vcpu, KVM_INTERNAL_ERROR_DELIVERY_EV, ARRAY_SIZE(data), data);
	return 0;
}

/*
 * A #PF under shadow paging (mm/shadow.c): ours to fix, the guest's, MMIO,
 * or a store to a shadowed page table to make for the guest.  The exit
 * qualification is the linear address (SDM: "Exit Qualification for
 * Exceptions").
 */
static int pf_exit(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	u32 error = vmcs_read32(VM_EXIT_INTR_ERROR_CODE);
	u64 gva = vmx->exit_qual;
	struct kvmx_walk_result res;
	struct kvmx_paging p;
	int r;

	if (KVMX_KILL_VM_ON(!kvmx_vm_shadow(vcpu->vm), vcpu->vm))
		return -EIO;

	vmx_get_paging(vcpu, &p);
	r = kvmx_shadow_page_fault(vcpu, &p, gva, error, &res);
	switch (r) {
	case KVMX_SHADOW_FIXED:
		return 1;
	case KVMX_SHADOW_REFLECT:
		return vmx_reflect_pf(vmx, gva, res.error_code);
	case KVMX_SHADOW_MMIO:
	case KVMX_SHADOW_EMULATE_WRITE:
		/*
		 * Delivering an event touched MMIO or a page table kvmx must
		 * write itself (the IDT, GDT or stack): not the instruction at
		 * RIP, which is all kvmx emulates.  As KVM, report it.
		 */
		if (vmx->idt_vectoring_info & VECTORING_INFO_VALID_MASK)
			return vmx_delivery_failure(vmx, res.gpa);
		if (r == KVMX_SHADOW_MMIO)
			return kvmx_emulate_mmio(vcpu, &vmx->emul, res.gpa);
		return kvmx_emulate_pt_write(vcpu, &vmx->emul, res.gpa);
	default:
		return r;
	}
}

/*
 * INVLPG under shadow paging.  The shadow tables follow the guest's (its
 * page tables are write-protected), so only the TLB can be stale, and the
 * entry flushes it (no VPID with shadow paging, vmx_init_vmcs()).
 */
static int invlpg_exit(struct vcpu_vmx *vmx)
{
	if (KVMX_KILL_VM_ON(!kvmx_vm_shadow(vmx->vcpu.vm), vmx->vcpu.vm))
		return -EIO;
	return vmx_skip_instruction(vmx);
}

static int exception_nmi_exit(struct vcpu_vmx *vmx)
{
	u32 info = vmx->exit_intr_info;
	u8 vector = info & INTR_INFO_VECTOR_MASK;

	if ((info & INTR_INFO_INTR_TYPE_MASK) == INTR_TYPE_NMI_INTR)
		return 1;
	/*
	 * An IRET that unblocked NMIs faulted: block them again before the
	 * guest retries it (SDM: "Resuming Guest Software after Handling an
	 * Exception"; KVM's vmx_recover_nmi_blocking()).
	 */
	if (!(vmx->idt_vectoring_info & VECTORING_INFO_VALID_MASK) &&
	    (info & INTR_INFO_UNBLOCK_NMI))
		vmcs_set_bits(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STATE_NMI);
	if (vector == MC_VECTOR)
		return 1;
	if (vector == PF_VECTOR)
		return pf_exit(vmx);
	if (vector == AC_VECTOR) {
		/* Reflected: intercepting it only guarantees an exit per #AC. */
		vmx_inject_exception(vmx, AC_VECTOR, true, vmcs_read32(VM_EXIT_INTR_ERROR_CODE));
		return 1;
	}
	return unexpected_exit(vmx);
}

static int interrupt_window_exit(struct vcpu_vmx *vmx)
{
	vmcs_clear_bits(CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_INTR_WINDOW_EXITING);
	return 1;
}

static int nmi_window_exit(struct vcpu_vmx *vmx)
{
	vmcs_clear_bits(CPU_BASED_VM_EXEC_CONTROL, CPU_BASED_NMI_WINDOW_EXITING);
	return 1;
}

static int ud_exit(struct vcpu_vmx *vmx)
{
	/* VMX instructions and VMCALL: nested virtualization is not offered. */
	vmx_inject_ud(vmx);
	return 1;
}

static int gp_exit(struct vcpu_vmx *vmx)
{
	/* RDPMC: no PMU is offered. */
	vmx_inject_gp(vmx);
	return 1;
}

static int nop_exit(struct vcpu_vmx *vmx)
{
	return vmx_skip_instruction(vmx);
}

static int hlt_exit(struct vcpu_vmx *vmx)
{
	vmx_skip_instruction(vmx);
	/* No in-kernel local APIC: the VMM decides what a halted vCPU waits for. */
	vmx->vcpu.run->exit_reason = KVM_EXIT_HLT;
	return 0;
}

static int cpuid_exit(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;

	kvmx_emulate_cpuid(vcpu, vmx->cr4 & X86_CR4_OSXSAVE);
	return vmx_skip_instruction(vmx);
}

static int msr_read_exit(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	u64 data;

	if (vmx_get_msr(vcpu, vcpu->regs[KVMX_RCX], &data, false)) {
		vmx_inject_gp(vmx);
		return 1;
	}
	vcpu->regs[KVMX_RAX] = (u32)data;
	vcpu->regs[KVMX_RDX] = data >> 32;
	return vmx_skip_instruction(vmx);
}

static int msr_write_exit(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	u64 data = (u32)vcpu->regs[KVMX_RAX] | ((u64)(u32)vcpu->regs[KVMX_RDX] << 32);

	if (vmx_set_msr(vcpu, vcpu->regs[KVMX_RCX], data, false)) {
		vmx_inject_gp(vmx);
		return 1;
	}
	return vmx_skip_instruction(vmx);
}

static int xsetbv_exit(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	u64 val = (u32)vcpu->regs[KVMX_RAX] | ((u64)(u32)vcpu->regs[KVMX_RDX] << 32);
	u32 ss_ar = vmcs_read32(GUEST_SS_AR_BYTES);

	if (((ss_ar >> 5) & 3) || (u32)vcpu->regs[KVMX_RCX] != 0 || kvmx_set_xcr0(vcpu, val)) {
		vmx_inject_gp(vmx);
		return 1;
	}
	return vmx_skip_instruction(vmx);
}

/* MOV to/from CR0, CR4, CR8, CLTS and LMSW; CR3 too with shadow paging (EPT gives it the guest). */
static int cr_access_exit(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	unsigned long q = vmx->exit_qual;
	int cr = CR_QUAL_CR(q), reg = CR_QUAL_REG(q), err = 0;
	unsigned long val, cr0;

	switch (CR_QUAL_TYPE(q)) {
	case CR_MOV_TO:
		val = vcpu->regs[reg];
		if (vmx_cpu_mode(vcpu) != KVMX_MODE_LONG64)
			val = (u32)val;
		if (cr == 0)
			err = vmx_set_cr0(vmx, val);
		else if (cr == 3 && kvmx_vm_shadow(vcpu->vm))
			err = vmx_set_cr3(vmx, val);
		else if (cr == 4)
			err = vmx_set_cr4(vmx, val);
		else if (cr == 8 && !(val & ~0xfUL))
			vmx->cr8 = val;
		else
			err = 1;
		break;
	case CR_MOV_FROM:
		if (cr == 3 && kvmx_vm_shadow(vcpu->vm)) {
			val = vmx_read_cr3(vmx);
			vcpu->regs[reg] = vmx_cpu_mode(vcpu) == KVMX_MODE_LONG64 ? val : (u32)val;
			break;
		}
		if (cr != 8)
			return unexpected_exit(vmx);
		vcpu->regs[reg] = vmx->cr8;
		break;
	case CR_CLTS:
		cr0 = (vmx->cr0 & ~X86_CR0_TS) | (vmcs_readl(GUEST_CR0) & X86_CR0_TS);
		err = vmx_set_cr0(vmx, cr0 & ~X86_CR0_TS);
		break;
	case CR_LMSW:
		/* LMSW writes PE, MP, EM, TS and can set PE but not clear it. */
		cr0 = (vmx->cr0 & ~X86_CR0_TS) | (vmcs_readl(GUEST_CR0) & X86_CR0_TS);
		err = vmx_set_cr0(vmx, (cr0 & ~0xeUL) | (CR_QUAL_LMSW(q) & 0xf));
		break;
	}
	if (err) {
		vmx_inject_gp(vmx);
		return 1;
	}
	return vmx_skip_instruction(vmx);
}

static int io_exit(struct vcpu_vmx *vmx)
{
	struct kvmx_vcpu *vcpu = &vmx->vcpu;
	unsigned long q = vmx->exit_qual;
	bool in = q & IO_QUAL_IN;
	int size = IO_QUAL_SIZE(q);
	u16 port = IO_QUAL_PORT(q);
	u64 next;

	if (q & IO_QUAL_STRING)
		return kvmx_emulate_string_io(vcpu, &vmx->emul, in, port, size);

	next = vmcs_readl(GUEST_RIP) + vmcs_read32(VM_EXIT_INSTRUCTION_LEN);
	if (vmx_cpu_mode(vcpu) != KVMX_MODE_LONG64)
		next = (u32)next;
	if (!in)
		memcpy(vcpu->pio_data, &vcpu->regs[KVMX_RAX], size);
	return kvmx_fill_io_exit(vcpu, in, port, size, 1, next);
}

static int ept_violation_exit(struct vcpu_vmx *vmx)
{
	unsigned long q = vmx->exit_qual;
	gpa_t gpa = vmcs_read64(GUEST_PHYSICAL_ADDRESS);
	int r;

	/*
	 * An IRET that unblocked NMIs faulted: block them again before the
	 * guest retries it (SDM: "Information for VM Exits Due to Vectored
	 * Events"; the same bit of the EPT violation qualification).
	 */
	if (!(vmx->idt_vectoring_info & VECTORING_INFO_VALID_MASK) &&
	    (q & INTR_INFO_UNBLOCK_NMI))
		vmcs_set_bits(GUEST_INTERRUPTIBILITY_INFO, GUEST_INTR_STATE_NMI);

	r = kvmx_mmu_page_fault(&vmx->vcpu, gpa, q & EPT_VIOLATION_ACC_WRITE,
				q & EPT_VIOLATION_ACC_INSTR);
	if (r)
		return r;
	return kvmx_emulate_mmio(&vmx->vcpu, &vmx->emul, gpa);
}

/* kvmx never writes a misconfigured EPT entry: one means a bug, unless it is MMIO. */
static int ept_misconfig_exit(struct vcpu_vmx *vmx)
{
	gpa_t gpa = vmcs_read64(GUEST_PHYSICAL_ADDRESS);
	struct kvmx_vm *vm = vmx->vcpu.vm;
	bool ram;
	int idx;

	idx = srcu_read_lock(&vm->srcu);
	ram = kvmx_gfn_to_memslot(vm, gpa >> PAGE_SHIFT);
	srcu_read_unlock(&vm->srcu, idx);
	if (ram)
		return unexpected_exit(vmx);
	return kvmx_emulate_mmio(&vmx->vcpu, &vmx->emul, gpa);
}

static int (*const vmx_exit_handlers[])(struct vcpu_vmx *vmx) = {
	[EXIT_REASON_EXCEPTION_NMI]		= exception_nmi_exit,
	[EXIT_REASON_EXTERNAL_INTERRUPT]	= host_event_exit,
	[EXIT_REASON_TRIPLE_FAULT]		= triple_fault_exit,
	[EXIT_REASON_INIT_SIGNAL]		= host_event_exit,
	[EXIT_REASON_SIPI_SIGNAL]		= host_event_exit,
	[EXIT_REASON_INTERRUPT_WINDOW]		= interrupt_window_exit,
	[EXIT_REASON_NMI_WINDOW]		= nmi_window_exit,
	[EXIT_REASON_TASK_SWITCH]		= unexpected_exit,
	[EXIT_REASON_CPUID]			= cpuid_exit,
	[EXIT_REASON_HLT]			= hlt_exit,
	[EXIT_REASON_INVLPG]			= invlpg_exit,
	[EXIT_REASON_INVD]			= nop_exit,
	[EXIT_REASON_RDPMC]			= gp_exit,
	[EXIT_REASON_VMCALL]			= ud_exit,
	[EXIT_REASON_VMCLEAR]			= ud_exit,
	[EXIT_REASON_VMLAUNCH]			= ud_exit,
	[EXIT_REASON_VMPTRLD]			= ud_exit,
	[EXIT_REASON_VMPTRST]			= ud_exit,
	[EXIT_REASON_VMREAD]			= ud_exit,
	[EXIT_REASON_VMRESUME]			= ud_exit,
	[EXIT_REASON_VMWRITE]			= ud_exit,
	[EXIT_REASON_VMOFF]			= ud_exit,
	[EXIT_REASON_VMON]			= ud_exit,
	[EXIT_REASON_CR_ACCESS]			= cr_access_exit,
	[EXIT_REASON_IO_INSTRUCTION]		= io_exit,
	[EXIT_REASON_MSR_READ]			= msr_read_exit,
	[EXIT_REASON_MSR_WRITE]			= msr_write_exit,
	[EXIT_REASON_MWAIT_INSTRUCTION]		= ud_exit,
	[EXIT_REASON_MONITOR_INSTRUCTION]	= ud_exit,
	[EXIT_REASON_EPT_VIOLATION]		= ept_violation_exit,
	[EXIT_REASON_EPT_MISCONFIG]		= ept_misconfig_exit,
	[EXIT_REASON_INVEPT]			= ud_exit,
	[EXIT_REASON_INVVPID]			= ud_exit,
	[EXIT_REASON_WBINVD]			= nop_exit,
	[EXIT_REASON_XSETBV]			= xsetbv_exit,
	[EXIT_REASON_VMFUNC]			= ud_exit,
};

int vmx_handle_exit(struct vcpu_vmx *vmx)
{
	struct kvm_run *run = vmx->vcpu.run;
	u32 reason = vmx->exit_reason;
	u16 basic = reason;

	/*
	 * VM-entry failure while loading guest state (invalid guest state, MSR
	 * loading, machine check): as KVM, report the full exit reason, bit 31
	 * included.
	 */
	if (reason & VMX_EXIT_REASONS_FAILED_VMENTRY) {
		vmx_dump_vmcs(vmx);
		run->exit_reason = KVM_EXIT_FAIL_ENTRY;
		run->fail_entry.hardware_entry_failure_reason = reason;
		run->fail_entry.cpu = vmx->loaded_cpu;
		return 0;
	}
	if (basic >= ARRAY_SIZE(vmx_exit_handlers))
		return unexpected_exit(vmx);
	basic = array_index_nospec(basic, ARRAY_SIZE(vmx_exit_handlers));
	if (!vmx_exit_handlers[basic])
		return unexpected_exit(vmx);
	return vmx_exit_handlers[basic](vmx);
}
