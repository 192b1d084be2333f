// SPDX-License-Identifier: GPL-2.0
/*
 * SVM exit handlers, in one table indexed by exit code.  Every handler
 * follows the convention written above kvmx_vcpu_run_loop() (kmod/vcpu.c):
 * 1 re-enter, 0 to userspace with kvm_run filled, < 0 an error.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/nospec.h>
#include <linux/ratelimit.h>
#include <asm/svm.h>
#include <asm/processor-flags.h>
#include <asm/traps.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/walk.h>

#include "svm.h"
#include "../emulate/operand.h"

struct kvmx_paging svm_paging(struct vcpu_svm *svm)
{
	struct vmcb_save_area *s = &svm->vmcb->save;

	return (struct kvmx_paging){ .cr0 = s->cr0, .cr3 = s->cr3, .cr4 = s->cr4,
				     .efer = s->efer };
}

enum kvmx_cpu_mode svm_cpu_mode(struct vcpu_svm *svm)
{
	struct vmcb_save_area *s = &svm->vmcb->save;

	return kvmx_decode_mode(s->cr0 & X86_CR0_PE, s->rflags & X86_EFLAGS_VM,
			     s->efer & EFER_LMA, s->cs.attrib & SVM_SELECTOR_L_MASK,
			     s->cs.attrib & SVM_SELECTOR_DB_MASK);
}

/*
 * Fetch and decode the instruction at CS:RIP.  The VMCB's instruction bytes
 * need DecodeAssists, which QEMU's TCG lacks, so read guest memory through
 * the guest's page tables.  Returns 0 or a negative errno.
 */
int svm_decode_at_rip(struct vcpu_svm *svm, struct kvmx_insn *insn)
{
	struct kvmx_paging p = svm_paging(svm);
	struct kvmx_vm *vm = svm->vcpu.vm;
	u8 bytes[KVMX_INSN_MAX_LEN];
	u64 linear = svm->vmcb->save.rip;
	int n, idx;

	if (svm_cpu_mode(svm) != KVMX_MODE_LONG64)
		linear = (u32)(linear + svm->vmcb->save.cs.base);
	idx = srcu_read_lock(&vm->srcu);
	n = kvmx_read_guest_virt(vm, &p, linear, bytes, sizeof(bytes));
	srcu_read_unlock(&vm->srcu, idx);
	if (n <= 0)
		return -EFAULT;
	return kvmx_decode(bytes, n, svm_cpu_mode(svm), 0, insn);
}

/* The RIP after the intercepted instruction: NRIP save, or our decoder. */
static int svm_next_rip(struct vcpu_svm *svm, u64 *next)
{
	struct kvmx_insn insn;
	int r;

	if (boot_cpu_has(X86_FEATURE_NRIPS) && svm->vmcb->control.next_rip) {
		*next = svm->vmcb->control.next_rip;
		return 0;
	}
	r = svm_decode_at_rip(svm, &insn);
	if (r)
		return r;
	*next = svm->vmcb->save.rip + insn.len;
	if (svm_cpu_mode(svm) != KVMX_MODE_LONG64)
		*next = (u32)*next;
	return 0;
}

int svm_emulation_failure(struct vcpu_svm *svm)
{
	u64 data[2] = { svm->vmcb->control.exit_code, svm->vmcb->save.rip };

	kvmx_internal_error(&svm->vcpu, KVM_INTERNAL_ERROR_EMULATION, 2, data);
	return 0;
}

/* Complete an intercepted instruction: advance RIP, drop the STI/MOV SS shadow. */
int svm_skip_instruction(struct vcpu_svm *svm)
{
	u64 next;

	if (svm_next_rip(svm, &next))
		return svm_emulation_failure(svm);
	svm->vmcb->save.rip = next;
	svm->vmcb->control.int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
	return 1;
}

static void svm_inject_gp(struct vcpu_svm *svm)
{
	svm_inject_exception(svm, GP_VECTOR, true, 0);
}

static void svm_inject_ud(struct vcpu_svm *svm)
{
	svm_inject_exception(svm, UD_VECTOR, false, 0);
}

static void svm_dump_vmcb(struct vcpu_svm *svm)
{
	struct vmcb_control_area *c = &svm->vmcb->control;
	struct vmcb_save_area *s = &svm->vmcb->save;

	pr_err_ratelimited("VMCB: exit %#llx info1 %#llx info2 %#llx int_info %#x asid %u\n",
			   (u64)c->exit_code, c->exit_info_1, c->exit_info_2,
			   c->exit_int_info, c->asid);
	pr_err_ratelimited("VMCB: cr0 %#llx cr3 %#llx cr4 %#llx efer %#llx rip %#llx rflags %#llx\n",
			   s->cr0, s->cr3, s->cr4, s->efer, s->rip, s->rflags);
	pr_err_ratelimited("VMCB: cs %#x/%#x/%#llx ss %#x/%#x cpl %u event_inj %#x\n",
			   s->cs.selector, s->cs.attrib, s->cs.base, s->ss.selector,
			   s->ss.attrib, s->cpl, c->event_inj);
}

static int unexpected_exit(struct vcpu_svm *svm)
{
	u64 data[2] = { svm->vmcb->control.exit_code, raw_smp_processor_id() };

	pr_err_ratelimited("unexpected exit reason %#llx\n", (u64)svm->vmcb->control.exit_code);
	svm_dump_vmcb(svm);
	kvmx_internal_error(&svm->vcpu, KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON, 2, data);
	return 0;
}

/* Host events: they are taken when the caller re-enables interrupts. */
static int host_event_exit(struct vcpu_svm *svm)
{
	return 1;
}

static int mc_interception(struct vcpu_svm *svm)
{
	/* A machine check in guest mode belongs to the host's handler. */
	asm volatile("int $0x12");
	return 1;
}

static int ud_interception(struct vcpu_svm *svm)
{
	/* SVM instructions and VMMCALL: nested virtualization is not offered. */
	svm_inject_ud(svm);
	return 1;
}

static int nop_interception(struct vcpu_svm *svm)
{
	return svm_skip_instruction(svm);
}

static int halt_interception(struct vcpu_svm *svm)
{
	int r = svm_skip_instruction(svm);

	if (r <= 0)
		return r;
	/* No in-kernel local APIC: the VMM decides what a halted vCPU waits for. */
	svm->vcpu.run->exit_reason = KVM_EXIT_HLT;
	return 0;
}

static int cpuid_interception(struct vcpu_svm *svm)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	u32 fn = vcpu->regs[KVMX_RAX], idx = vcpu->regs[KVMX_RCX];
	const struct kvm_cpuid_entry2 *e = kvmx_find_cpuid_entry(vcpu, fn, idx);
	u32 eax = 0, ebx = 0, ecx = 0, edx = 0;

	if (e) {
		eax = e->eax;
		ebx = e->ebx;
		ecx = e->ecx;
		edx = e->edx;
		/* OSXSAVE mirrors CR4, as on hardware. */
		if (fn == 1) {
			ecx &= ~BIT(X86_FEATURE_OSXSAVE & 31);
			if (svm->vmcb->save.cr4 & X86_CR4_OSXSAVE)
				ecx |= BIT(X86_FEATURE_OSXSAVE & 31);
		}
	}
	vcpu->regs[KVMX_RAX] = eax;
	vcpu->regs[KVMX_RBX] = ebx;
	vcpu->regs[KVMX_RCX] = ecx;
	vcpu->regs[KVMX_RDX] = edx;
	return svm_skip_instruction(svm);
}

static int msr_interception(struct vcpu_svm *svm)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	u32 index = vcpu->regs[KVMX_RCX];
	u64 data;

	if (svm->vmcb->control.exit_info_1) {
		data = (u32)vcpu->regs[KVMX_RAX] | ((u64)(u32)vcpu->regs[KVMX_RDX] << 32);
		if (svm_set_msr(vcpu, index, data, false)) {
			svm_inject_gp(svm);
			return 1;
		}
	} else {
		if (svm_get_msr(vcpu, index, &data, false)) {
			svm_inject_gp(svm);
			return 1;
		}
		vcpu->regs[KVMX_RAX] = (u32)data;
		vcpu->regs[KVMX_RDX] = data >> 32;
	}
	return svm_skip_instruction(svm);
}

static int xsetbv_interception(struct vcpu_svm *svm)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	u64 val = (u32)vcpu->regs[KVMX_RAX] | ((u64)(u32)vcpu->regs[KVMX_RDX] << 32);

	if (svm->vmcb->save.cpl || (u32)vcpu->regs[KVMX_RCX] != 0 ||
	    kvmx_set_xcr0(vcpu, val)) {
		svm_inject_gp(svm);
		return 1;
	}
	return svm_skip_instruction(svm);
}

static int shutdown_interception(struct vcpu_svm *svm)
{
	/* The VMCB is undefined after a shutdown (APM): start from reset state. */
	memset(svm->vmcb, 0, PAGE_SIZE);
	svm->asid_generation = 0;
	svm_reinit_vmcb(svm);
	svm->vcpu.run->exit_reason = KVM_EXIT_SHUTDOWN;
	return 0;
}

static int vintr_interception(struct vcpu_svm *svm)
{
	svm_set_vintr(svm, false);
	return 1;
}

static int iret_interception(struct vcpu_svm *svm)
{
	/*
	 * The IRET has not run yet; without NRIP save we cannot single-step
	 * past it, so NMIs become injectable again from the next entry on.
	 */
	svm->nmi_masked = false;
	svm_clr_intercept(svm->vmcb, INTERCEPT_IRET);
	return 1;
}

static int io_interception(struct vcpu_svm *svm)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	u32 info = svm->vmcb->control.exit_info_1;
	bool in = info & SVM_IOIO_TYPE_MASK;
	int size = (info & SVM_IOIO_SIZE_MASK) >> SVM_IOIO_SIZE_SHIFT;
	u16 port = info >> 16;

	if (info & SVM_IOIO_STR_MASK)
		return svm_string_io(svm, in, port, size);

	if (!in)
		memcpy(vcpu->pio_data, &vcpu->regs[KVMX_RAX], size);
	/* EXITINFO2 is the next RIP for IOIO, NRIP save or not. */
	return kvmx_fill_io_exit(vcpu, in, port, size, 1, svm->vmcb->control.exit_info_2);
}

/* EXITINFO1 of a nested page fault: a #PF error code (APM: "Nested Paging"). */
#define NPF_ERR_WRITE	BIT_ULL(1)
#define NPF_ERR_FETCH	BIT_ULL(4)

static int npf_interception(struct vcpu_svm *svm)
{
	u64 error = svm->vmcb->control.exit_info_1;
	gpa_t gpa = svm->vmcb->control.exit_info_2;
	int r;

	r = kvmx_mmu_page_fault(&svm->vcpu, gpa, error & NPF_ERR_WRITE,
				error & NPF_ERR_FETCH);
	if (r)
		return r;
	return svm_emulate_mmio(svm, gpa);
}

static int (*const svm_exit_handlers[])(struct vcpu_svm *svm) = {
	[SVM_EXIT_EXCP_BASE + MC_VECTOR]	= mc_interception,
	[SVM_EXIT_INTR]				= host_event_exit,
	[SVM_EXIT_NMI]				= host_event_exit,
	[SVM_EXIT_SMI]				= host_event_exit,
	[SVM_EXIT_INIT]				= host_event_exit,
	[SVM_EXIT_VINTR]			= vintr_interception,
	[SVM_EXIT_CPUID]			= cpuid_interception,
	[SVM_EXIT_IRET]				= iret_interception,
	[SVM_EXIT_INVD]				= nop_interception,
	[SVM_EXIT_HLT]				= halt_interception,
	[SVM_EXIT_INVLPGA]			= ud_interception,
	[SVM_EXIT_IOIO]				= io_interception,
	[SVM_EXIT_MSR]				= msr_interception,
	[SVM_EXIT_TASK_SWITCH]			= unexpected_exit,
	[SVM_EXIT_SHUTDOWN]			= shutdown_interception,
	[SVM_EXIT_VMRUN]			= ud_interception,
	[SVM_EXIT_VMMCALL]			= ud_interception,
	[SVM_EXIT_VMLOAD]			= ud_interception,
	[SVM_EXIT_VMSAVE]			= ud_interception,
	[SVM_EXIT_STGI]				= ud_interception,
	[SVM_EXIT_CLGI]				= ud_interception,
	[SVM_EXIT_SKINIT]			= ud_interception,
	[SVM_EXIT_WBINVD]			= nop_interception,
	[SVM_EXIT_MONITOR]			= ud_interception,
	[SVM_EXIT_MWAIT]			= ud_interception,
	[SVM_EXIT_XSETBV]			= xsetbv_interception,
	[SVM_EXIT_RDPRU]			= ud_interception,
	[SVM_EXIT_NPF]				= npf_interception,
};

/* An event cut short by the exit (e.g. an NPF while delivering it) is re-injected. */
static void svm_complete_interrupts(struct vcpu_svm *svm)
{
	struct vmcb_control_area *c = &svm->vmcb->control;
	u32 info = c->exit_int_info;
	u32 type = info & SVM_EXITINTINFO_TYPE_MASK;

	if (!(info & SVM_EXITINTINFO_VALID))
		return;
	/* Software interrupts and INT3/INTO re-execute from RIP instead. */
	if (type == SVM_EXITINTINFO_TYPE_SOFT)
		return;
	if (type == SVM_EXITINTINFO_TYPE_EXEPT &&
	    ((info & SVM_EXITINTINFO_VEC_MASK) == BP_VECTOR ||
	     (info & SVM_EXITINTINFO_VEC_MASK) == OF_VECTOR))
		return;
	if (type == SVM_EXITINTINFO_TYPE_NMI)
		svm->nmi_masked = false;
	c->event_inj = info;
	c->event_inj_err = c->exit_int_info_err;
}

int svm_handle_exit(struct vcpu_svm *svm)
{
	u64 code = svm->vmcb->control.exit_code;
	struct kvm_run *run = svm->vcpu.run;

	svm->vmcb->control.event_inj = 0;
	svm_complete_interrupts(svm);

	/*
	 * VMEXIT_INVALID.  As KVM on SVM, the reason is the raw exit code field,
	 * whose width differs between kernels (u32 in 6.1, u64 in 6.12).
	 */
	if (svm->vmcb->control.exit_code == SVM_EXIT_ERR) {
		run->exit_reason = KVM_EXIT_FAIL_ENTRY;
		run->fail_entry.hardware_entry_failure_reason = code;
		run->fail_entry.cpu = svm->last_cpu;
		svm_dump_vmcb(svm);
		return 0;
	}
	if (code >= ARRAY_SIZE(svm_exit_handlers))
		return unexpected_exit(svm);
	code = array_index_nospec(code, ARRAY_SIZE(svm_exit_handlers));
	if (!svm_exit_handlers[code])
		return unexpected_exit(svm);
	return svm_exit_handlers[code](svm);
}
