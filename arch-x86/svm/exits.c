// SPDX-License-Identifier: GPL-2.0
/*
 * SVM exit handlers, in one table indexed by exit code.  Every handler
 * follows the convention written above kvmx_vcpu_run_loop() (kmod/vcpu.c):
 * 1 re-enter, 0 to userspace with kvm_run filled, < 0 an error.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/nospec.h>
#include <linux/ratelimit.h>
#include <asm/svm.h>
#include <asm/processor-flags.h>
#include <asm/traps.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/cpu.h>
#include <kvmx/walk.h>

#include "svm.h"
#include "../emulate/operand.h"

/*
 * PAE paging: refresh the PDPTEs from CR3, as KVM's load_pdptrs() does for
 * NPT whenever it needs them.  A set of entries with reserved bits (QEMU's
 * TCG, for one, sets bit 5 of PDPTEs it used) keeps the last good copy,
 * which the hardware is using too: it loaded them before setting the bit.
 */
void svm_load_pdptes(struct vcpu_svm *svm)
{
	struct kvmx_vm *vm = svm->vcpu.vm;
	struct kvmx_paging p = {
		.cr0 = svm_read_cr0(svm), .cr3 = svm_read_cr3(svm),
		.cr4 = svm_read_cr4(svm), .efer = svm_read_efer(svm),
	};
	u64 pdptes[4];
	int idx, r;

	kvmx_paging_model(&svm->vcpu, &p);
	idx = srcu_read_lock(&vm->srcu);
	r = kvmx_guest_load_pdptes(vm, &p, pdptes);
	srcu_read_unlock(&vm->srcu, idx);
	if (r)
		return;
	memcpy(svm->pdptes, pdptes, sizeof(pdptes));
	svm->pdptes_valid = true;
}

/*
 * The guest's paging state, for the walker.  With NPT, PAE PDPTEs are read
 * afresh (the hardware holds the live ones); with shadow paging they are the
 * registers kvmx loaded when the guest last loaded CR3, as the hardware's.
 */
struct kvmx_paging svm_paging(struct vcpu_svm *svm)
{
	struct vmcb_save_area *s = &svm->vmcb->save;
	struct kvmx_paging p = { .cr0 = svm_read_cr0(svm), .cr3 = svm_read_cr3(svm),
				 .cr4 = svm_read_cr4(svm), .efer = svm_read_efer(svm),
				 .rflags = s->rflags, .cpl = s->cpl };

	kvmx_paging_model(&svm->vcpu, &p);
	if ((p.cr0 & X86_CR0_PG) && (p.cr4 & X86_CR4_PAE) && !(p.efer & EFER_LMA)) {
		if (!kvmx_vm_shadow(svm->vcpu.vm))
			svm_load_pdptes(svm);
		if (svm->pdptes_valid) {
			memcpy(p.pdptes, svm->pdptes, sizeof(p.pdptes));
			p.pdptes_valid = true;
		}
	}
	return p;
}

/* PAE paging is on: the PDPTE registers come from CR3 (MOV CR3, CR0, CR4). */
static void svm_reload_pdptes_if_pae(struct vcpu_svm *svm)
{
	if ((svm_read_cr0(svm) & X86_CR0_PG) && (svm_read_cr4(svm) & X86_CR4_PAE) &&
	    !(svm_read_efer(svm) & EFER_LMA))
		svm_load_pdptes(svm);
}

enum kvmx_cpu_mode svm_cpu_mode(struct vcpu_svm *svm)
{
	struct vmcb_save_area *s = &svm->vmcb->save;

	return kvmx_decode_mode(s->cr0 & X86_CR0_PE, s->rflags & X86_EFLAGS_VM,
			     s->efer & EFER_LMA, s->cs.attrib & SVM_SELECTOR_L_MASK,
			     s->cs.attrib & SVM_SELECTOR_DB_MASK);
}

u64 svm_seg_base(struct vcpu_svm *svm, u8 seg)
{
	struct vmcb_save_area *s = &svm->vmcb->save;

	switch (seg) {
	case KVMX_SEG_ES:
		return s->es.base;
	case KVMX_SEG_CS:
		return s->cs.base;
	case KVMX_SEG_SS:
		return s->ss.base;
	case KVMX_SEG_FS:
		return s->fs.base;
	case KVMX_SEG_GS:
		return s->gs.base;
	default:
		return s->ds.base;
	}
}

/*
 * Fetch and decode the instruction at CS:RIP.  The VMCB's instruction bytes
 * need DecodeAssists, which QEMU's TCG lacks, so read guest memory through
 * the guest's page tables.  Returns 0 or a negative errno.
 */
int svm_decode_at_rip(struct vcpu_svm *svm, struct kvmx_insn *insn)
{
	return kvmx_emul_decode_at_rip(&svm->vcpu, &svm->emul, insn);
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

/*
 * An instruction kvmx cannot finish, handled as KVM's
 * handle_emulation_failure(): #UD is queued for the guest; at CPL 0 KVM_RUN
 * also returns KVM_EXIT_INTERNAL_ERROR with what
 * prepare_emulation_failure_exit() reports: flags, the instruction bytes as
 * far as the first fetch reaches (to the end of the page, at most 15), and
 * the exit reason, EXITINFO1/2, EXITINTINFO and its error code.
 */
int svm_emulation_failure(struct vcpu_svm *svm)
{
	struct vmcb_control_area *c = &svm->vmcb->control;
	struct kvm_run *run = svm->vcpu.run;
	struct kvmx_paging p = svm_paging(svm);
	struct kvmx_vm *vm = svm->vcpu.vm;
	u64 linear = svm->vmcb->save.rip, info[5];
	u8 bytes[KVMX_INSN_MAX_LEN];
	int n, idx, start = 1;

	svm_inject_exception(svm, UD_VECTOR, false, 0);
	if (svm->vmcb->save.cpl)
		return 1;

	if (svm_cpu_mode(svm) != KVMX_MODE_LONG64)
		linear = (u32)(linear + svm->vmcb->save.cs.base);
	n = min_t(int, sizeof(bytes), PAGE_SIZE - offset_in_page(linear));
	idx = srcu_read_lock(&vm->srcu);
	n = kvmx_read_guest_virt(vm, &p, linear, bytes, n);
	srcu_read_unlock(&vm->srcu, idx);

	run->exit_reason = KVM_EXIT_INTERNAL_ERROR;
	run->emulation_failure.suberror = KVM_INTERNAL_ERROR_EMULATION;
	run->emulation_failure.flags = 0;
	if (n > 0) {
		run->emulation_failure.flags = KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES;
		run->emulation_failure.insn_size = n;
		memset(run->emulation_failure.insn_bytes, 0x90,
		       sizeof(run->emulation_failure.insn_bytes));
		memcpy(run->emulation_failure.insn_bytes, bytes, n);
		start += 2;
	}
	info[0] = (u32)c->exit_code;
	info[1] = c->exit_info_1;
	info[2] = c->exit_info_2;
	info[3] = c->exit_int_info;
	info[4] = (c->exit_int_info & SVM_EXITINTINFO_VALID) &&
		  (c->exit_int_info & SVM_EXITINTINFO_VALID_ERR) ? c->exit_int_info_err : 0;
	memcpy(&run->internal.data[start], info, sizeof(info));
	run->emulation_failure.ndata = start + ARRAY_SIZE(info);
	return 0;
}

/* What the common MMIO and string I/O emulation needs of the guest. */
static u64 svm_emul_get_rip(struct kvmx_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.rip;
}

static void svm_emul_set_rip(struct kvmx_vcpu *vcpu, u64 rip)
{
	struct vcpu_svm *svm = to_svm(vcpu);

	svm->vmcb->save.rip = rip;
	svm->vmcb->control.int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
}

static u64 svm_emul_get_rflags(struct kvmx_vcpu *vcpu)
{
	return to_svm(vcpu)->vmcb->save.rflags;
}

static void svm_emul_set_rflags(struct kvmx_vcpu *vcpu, u64 rflags)
{
	to_svm(vcpu)->vmcb->save.rflags = rflags;
}

static u64 svm_emul_seg_base(struct kvmx_vcpu *vcpu, u8 seg)
{
	return svm_seg_base(to_svm(vcpu), seg);
}

static void svm_emul_get_paging(struct kvmx_vcpu *vcpu, struct kvmx_paging *p)
{
	*p = svm_paging(to_svm(vcpu));
}

static enum kvmx_cpu_mode svm_emul_cpu_mode(struct kvmx_vcpu *vcpu)
{
	return svm_cpu_mode(to_svm(vcpu));
}

static int svm_emul_failure(struct kvmx_vcpu *vcpu)
{
	return svm_emulation_failure(to_svm(vcpu));
}

const struct kvmx_emul_ops svm_emul_ops = {
	.get_rip = svm_emul_get_rip,
	.set_rip = svm_emul_set_rip,
	.get_rflags = svm_emul_get_rflags,
	.set_rflags = svm_emul_set_rflags,
	.seg_base = svm_emul_seg_base,
	.get_paging = svm_emul_get_paging,
	.cpu_mode = svm_emul_cpu_mode,
	.emulation_failure = svm_emul_failure,
};

/* Finish what the last exit to userspace left open; see vcpu->io. */
int svm_complete_userspace_io(struct kvmx_vcpu *vcpu)
{
	return kvmx_emul_complete_userspace_io(vcpu, &to_svm(vcpu)->emul);
}

/* Complete an intercepted instruction: advance RIP, drop the STI/MOV SS shadow. */
int svm_skip_instruction(struct vcpu_svm *svm)
{
	u64 next;

	if (svm_next_rip(svm, &next))
		return svm_emulation_failure(svm);
	svm_emul_set_rip(&svm->vcpu, next);
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
	u64 data[2] = { svm->vmcb->control.exit_code, svm->last_cpu };

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
	/* OSXSAVE mirrors the guest's view of CR4. */
	kvmx_emulate_cpuid(&svm->vcpu, svm_read_cr4(svm) & X86_CR4_OSXSAVE);
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
	 * The IRET has not run yet.  As KVM, note where it is: NMIs stay
	 * blocked until an exit finds RIP elsewhere, i.e. the IRET retired
	 * (svm_complete_interrupts()).
	 */
	svm->awaiting_iret = true;
	svm->nmi_iret_rip = svm->vmcb->save.rip;
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
		return kvmx_emulate_string_io(vcpu, &svm->emul, in, port, size);

	if (!in)
		memcpy(vcpu->pio_data, &vcpu->regs[KVMX_RAX], size);
	/* EXITINFO2 is the next RIP for IOIO, NRIP save or not. */
	return kvmx_fill_io_exit(vcpu, in, port, size, 1, svm->vmcb->control.exit_info_2);
}

/*
 * A guest write of CR0, with the checks of KVM's kvm_set_cr0() and the
 * EFER.LMA transitions of svm_set_cr0().  Returns 0, or 1 for #GP.
 */
static int svm_guest_set_cr0(struct vcpu_svm *svm, u64 cr0)
{
	struct vmcb_save_area *s = &svm->vmcb->save;
	u64 old = svm_read_cr0(svm), efer = svm_read_efer(svm);

	if (cr0 >> 32)
		return 1;
	if ((cr0 & X86_CR0_NW) && !(cr0 & X86_CR0_CD))
		return 1;
	if ((cr0 & X86_CR0_PG) && !(cr0 & X86_CR0_PE))
		return 1;
	/* ET is hardwired; writes to reserved bits are ignored, even on Intel. */
	cr0 |= X86_CR0_ET;
	cr0 &= X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | X86_CR0_ET |
	       X86_CR0_NE | X86_CR0_WP | X86_CR0_AM | X86_CR0_NW | X86_CR0_CD | X86_CR0_PG;

	if ((efer & EFER_LME) && !(old & X86_CR0_PG) && (cr0 & X86_CR0_PG)) {
		if (!(svm_read_cr4(svm) & X86_CR4_PAE) || (s->cs.attrib & SVM_SELECTOR_L_MASK))
			return 1;
		efer |= EFER_LMA;
	}
	if (!(cr0 & X86_CR0_PG) &&
	    (svm_cpu_mode(svm) == KVMX_MODE_LONG64 || (svm_read_cr4(svm) & X86_CR4_PCIDE)))
		return 1;
	if ((old & X86_CR0_PG) && !(cr0 & X86_CR0_PG))
		efer &= ~EFER_LMA;

	svm->guest_efer = efer;
	svm_write_cr0(svm, cr0);
	if (cr0 != old) {
		set_bit(KVMX_REQ_TLB_FLUSH, &svm->vcpu.requests);
		if ((cr0 ^ old) & X86_CR0_PG)
			svm_reload_pdptes_if_pae(svm);
	}
	return 0;
}

/* A guest write of CR4, with the checks of KVM's kvm_set_cr4(). */
static int svm_guest_set_cr4(struct vcpu_svm *svm, u64 cr4)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	u64 old = svm_read_cr4(svm);
	bool lma = svm->vmcb->save.efer & EFER_LMA;

	if (cr4 & kvmx_cr4_reserved_bits(vcpu))
		return 1;
	if (lma && (!(cr4 & X86_CR4_PAE) || ((cr4 ^ old) & X86_CR4_LA57)))
		return 1;
	/* PCIDE is reserved: PCID is not offered (kvmx_cr4_reserved_bits()). */
	svm_write_cr4(svm, cr4);
	if (cr4 != old) {
		set_bit(KVMX_REQ_TLB_FLUSH, &vcpu->requests);
		svm_reload_pdptes_if_pae(svm);
	}
	return 0;
}

/*
 * A guest write of CR3 (intercepted with shadow paging only).  Bits above
 * MAXPHYADDR are reserved in long mode (#GP); the next entry switches to
 * the shadow root of the new address space.  PCID is not offered, so every
 * load flushes the guest's TLB.
 */
static int svm_guest_set_cr3(struct vcpu_svm *svm, u64 cr3)
{
	struct kvmx_paging p = svm_paging(svm);

	if ((svm_read_efer(svm) & EFER_LMA) && (cr3 >> p.maxphyaddr))
		return 1;
	svm_write_cr3(svm, cr3);
	svm_reload_pdptes_if_pae(svm);
	set_bit(KVMX_REQ_TLB_FLUSH, &svm->vcpu.requests);
	return 0;
}

/* Two-byte opcodes (0F xx) that touch CR0 or CR4. */
#define OPC_MOV_FROM_CR	0x20
#define OPC_MOV_TO_CR	0x22
#define OPC_CLTS	0x06
#define OPC_GROUP7	0x01
#define GROUP7_SMSW	4
#define GROUP7_LMSW	6

/* The guest-linear address of a memory operand. */
static u64 svm_insn_linear(struct vcpu_svm *svm, const struct kvmx_insn *insn, u64 next)
{
	u64 regs[KVMX_NR_REGS], linear;
	int i;

	for (i = 0; i < KVMX_NR_REGS; i++)
		regs[i] = svm->vcpu.regs[i];
	linear = kvmx_insn_ea_offset(insn, regs, next) + svm_seg_base(svm, insn->seg);
	return svm_cpu_mode(svm) == KVMX_MODE_LONG64 ? linear : (u32)linear;
}

/*
 * LMSW and SMSW with a memory operand: move the 16-bit machine status word
 * between CR0 and guest memory.  Returns 0, or -EFAULT.
 */
static int svm_msw_mem(struct vcpu_svm *svm, const struct kvmx_insn *insn, u64 next,
		       u16 *msw, bool write)
{
	struct kvmx_paging p = svm_paging(svm);
	struct kvmx_vm *vm = svm->vcpu.vm;
	u64 linear = svm_insn_linear(svm, insn, next);
	gpa_t gpa;
	int idx, r;

	idx = srcu_read_lock(&vm->srcu);
	if (write)
		r = kvmx_gva_to_gpa(vm, &p, linear, &gpa) ? -EFAULT :
		    kvmx_write_guest(vm, gpa, msw, sizeof(*msw));
	else
		r = kvmx_read_guest_virt(vm, &p, linear, msw, sizeof(*msw)) ==
		    sizeof(*msw) ? 0 : -EFAULT;
	srcu_read_unlock(&vm->srcu, idx);
	return r;
}

/*
 * CR0/CR4 reads and writes: MOV to/from CR, CLTS, LMSW, SMSW.  Without
 * DecodeAssists (QEMU's TCG has none) the instruction says which register
 * and which GPR; decode it.  Returns the handler convention.
 */
static int cr_interception(struct vcpu_svm *svm)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	bool long64 = svm_cpu_mode(svm) == KVMX_MODE_LONG64;
	struct kvmx_insn insn;
	u64 next, val;
	int cr, gpr, r = 0;
	u16 msw;

	if (svm_decode_at_rip(svm, &insn) || insn.map != KVMX_MAP_0F)
		return svm_emulation_failure(svm);
	next = svm->vmcb->save.rip + insn.len;
	if (!long64)
		next = (u32)next;

	cr = ((insn.modrm >> 3) & 7) | ((insn.rex & 0x4) ? 8 : 0);
	gpr = (insn.modrm & 7) | ((insn.rex & 0x1) ? 8 : 0);
	switch (insn.opcode) {
	case OPC_CLTS:
		if (svm->vmcb->save.cpl) {
			svm_inject_gp(svm);
			return 1;
		}
		r = svm_guest_set_cr0(svm, svm_read_cr0(svm) & ~X86_CR0_TS);
		break;
	case OPC_MOV_TO_CR:
	case OPC_MOV_FROM_CR:
		/* Privileged; CR0 and CR4 are intercepted, CR3 with shadow paging. */
		if (svm->vmcb->save.cpl) {
			svm_inject_gp(svm);
			return 1;
		}
		if (cr != 0 && cr != 4 && !(cr == 3 && kvmx_vm_shadow(vcpu->vm)))
			return svm_emulation_failure(svm);
		if (insn.opcode == OPC_MOV_FROM_CR) {
			val = cr == 4 ? svm_read_cr4(svm) :
			      cr == 3 ? svm_read_cr3(svm) : svm_read_cr0(svm);
			vcpu->regs[gpr] = long64 ? val : (u32)val;
			break;
		}
		val = long64 ? vcpu->regs[gpr] : (u32)vcpu->regs[gpr];
		if (cr == 3)
			r = svm_guest_set_cr3(svm, val);
		else
			r = cr ? svm_guest_set_cr4(svm, val) : svm_guest_set_cr0(svm, val);
		break;
	case OPC_GROUP7:
		if (((insn.modrm >> 3) & 7) == GROUP7_SMSW) {
			val = svm_read_cr0(svm);
			if (insn.has_mem) {
				msw = val;
				if (svm_msw_mem(svm, &insn, next, &msw, true))
					return svm_emulation_failure(svm);
			} else {
				vcpu->regs[gpr] = kvmx_reg_merge(vcpu->regs[gpr], val,
								 insn.op_size, false);
			}
			break;
		}
		if (((insn.modrm >> 3) & 7) != GROUP7_LMSW)
			return svm_emulation_failure(svm);
		if (svm->vmcb->save.cpl) {
			svm_inject_gp(svm);
			return 1;
		}
		msw = vcpu->regs[gpr];
		if (insn.has_mem && svm_msw_mem(svm, &insn, next, &msw, false))
			return svm_emulation_failure(svm);
		/* LMSW sets PE, MP, EM, TS and cannot clear PE. */
		val = svm_read_cr0(svm);
		r = svm_guest_set_cr0(svm, (val & ~0xeULL) | (msw & 0xf));
		break;
	default:
		return svm_emulation_failure(svm);
	}
	if (r) {
		svm_inject_gp(svm);
		return 1;
	}
	svm->vmcb->save.rip = next;
	svm->vmcb->control.int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
	return 1;
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
	return kvmx_emulate_mmio(&svm->vcpu, &svm->emul, gpa);
}

/*
 * INVLPG under shadow paging.  The shadow tables follow the guest's (its
 * page tables are write-protected), so only the hardware's TLB can be
 * stale: flush this vCPU's.  The address needs DecodeAssists to know
 * without decoding; the whole ASID goes instead.
 */
static int invlpg_interception(struct vcpu_svm *svm)
{
	if (svm->vmcb->save.cpl) {
		svm_inject_gp(svm);
		return 1;
	}
	set_bit(KVMX_REQ_TLB_FLUSH, &svm->vcpu.requests);
	return svm_skip_instruction(svm);
}

/*
 * Deliver a #PF the guest takes.  If the fault hit while another event was
 * being delivered, combine them as the hardware would
 * (kvmx_pf_after_exception()): a double fault, a triple fault (shutdown), or
 * the #PF alone; an interrupt or NMI cut short goes back to pending and is
 * delivered after the #PF.  Returns what an exit handler returns.
 */
static int svm_reflect_pf(struct vcpu_svm *svm, u64 gva, u32 error)
{
	struct vmcb_control_area *c = &svm->vmcb->control;
	u32 inj = c->event_inj;

	if (inj & SVM_EVTINJ_VALID) {
		switch (inj & SVM_EVTINJ_TYPE_MASK) {
		case SVM_EVTINJ_TYPE_EXEPT:
			switch (kvmx_pf_after_exception(inj & SVM_EVTINJ_VEC_MASK)) {
			case KVMX_FAULT_TRIPLE:
				c->event_inj = 0;
				return shutdown_interception(svm);
			case KVMX_FAULT_DOUBLE:
				svm_inject_exception(svm, DF_VECTOR, true, 0);
				return 1;
			case KVMX_FAULT_SERIAL:
				break;
			}
			break;
		case SVM_EVTINJ_TYPE_NMI:
			svm->vcpu.nmi_pending = true;
			svm->nmi_masked = false;
			break;
		case SVM_EVTINJ_TYPE_INTR:
			svm->vcpu.irq_pending = true;
			svm->vcpu.irq_vector = inj & SVM_EVTINJ_VEC_MASK;
			break;
		}
	}
	svm->vmcb->save.cr2 = gva;
	svm_inject_exception(svm, PF_VECTOR, true, error);
	return 1;
}

/* A #PF under shadow paging (mm/shadow.c): ours to fix, the guest's, or MMIO. */
static int pf_interception(struct vcpu_svm *svm)
{
	u32 error = svm->vmcb->control.exit_info_1;
	u64 gva = svm->vmcb->control.exit_info_2;
	struct kvmx_paging p = svm_paging(svm);
	struct kvmx_walk_result res;
	int r;

	r = kvmx_shadow_page_fault(&svm->vcpu, &p, gva, error, &res);
	switch (r) {
	case KVMX_SHADOW_FIXED:
		return 1;
	case KVMX_SHADOW_REFLECT:
		return svm_reflect_pf(svm, gva, res.error_code);
	case KVMX_SHADOW_MMIO:
	case KVMX_SHADOW_EMULATE_WRITE:
		/*
		 * Delivering an event touched MMIO or a page table kvmx must
		 * write itself (the IDT, GDT or stack): not the instruction at
		 * RIP, which is all kvmx emulates.  As KVM, report it.
		 */
		if (svm->vmcb->control.exit_int_info & SVM_EXITINTINFO_VALID) {
			u64 data[4] = { svm->vmcb->control.exit_int_info,
					svm->vmcb->control.exit_code, gva, res.gpa };

			kvmx_internal_error(&svm->vcpu, KVM_INTERNAL_ERROR_DELIVERY_EV,
					    ARRAY_SIZE(data), data);
			return 0;
		}
		if (r == KVMX_SHADOW_MMIO)
			return kvmx_emulate_mmio(&svm->vcpu, &svm->emul, res.gpa);
		return kvmx_emulate_pt_write(&svm->vcpu, &svm->emul, res.gpa);
	default:
		return r;
	}
}

static int (*const svm_exit_handlers[])(struct vcpu_svm *svm) = {
	[SVM_EXIT_READ_CR0]			= cr_interception,
	[SVM_EXIT_READ_CR3]			= cr_interception,
	[SVM_EXIT_WRITE_CR3]			= cr_interception,
	[SVM_EXIT_INVLPG]			= invlpg_interception,
	[SVM_EXIT_EXCP_BASE + PF_VECTOR]	= pf_interception,
	[SVM_EXIT_READ_CR4]			= cr_interception,
	[SVM_EXIT_WRITE_CR0]			= cr_interception,
	[SVM_EXIT_WRITE_CR4]			= cr_interception,
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

	/* Progress since the IRET intercept: the IRET ran and ended NMI blocking. */
	if (svm->awaiting_iret && svm->vmcb->save.rip != svm->nmi_iret_rip) {
		svm->awaiting_iret = false;
		svm->nmi_masked = false;
	}
	if (!(info & SVM_EXITINTINFO_VALID))
		return;
	/* Software interrupts and INT3/INTO re-execute from RIP instead. */
	if (type == SVM_EXITINTINFO_TYPE_SOFT)
		return;
	if (type == SVM_EXITINTINFO_TYPE_EXEPT &&
	    ((info & SVM_EXITINTINFO_VEC_MASK) == BP_VECTOR ||
	     (info & SVM_EXITINTINFO_VEC_MASK) == OF_VECTOR))
		return;
	/* A re-injected NMI keeps NMIs blocked, as its first injection did. */
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
