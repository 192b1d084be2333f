// SPDX-License-Identifier: GPL-2.0
/*
 * Instructions that need userspace to finish: MMIO loads and stores, and
 * string port I/O.  The decoder (arch-x86/emulate) gives their length and
 * operands; guest memory is reached through the guest's page tables.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <asm/svm.h>
#include <asm/processor-flags.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/walk.h>

#include "svm.h"
#include "../emulate/operand.h"

static u64 svm_next_rip_of(struct vcpu_svm *svm, const struct kvmx_insn *insn)
{
	u64 next = svm->vmcb->save.rip + insn->len;

	return svm_cpu_mode(svm) == KVMX_MODE_LONG64 ? next : (u32)next;
}

static void svm_set_rip(struct vcpu_svm *svm, u64 rip)
{
	svm->vmcb->save.rip = rip;
	svm->vmcb->control.int_state &= ~SVM_INTERRUPT_SHADOW_MASK;
}

/*
 * An access to @gpa that no memslot backs (or a write to a read-only one):
 * exit with KVM_EXIT_MMIO.  As KVM, a store has completed (RIP advanced) when
 * userspace sees it; a load completes on the next KVM_RUN.  Like KVM, only a
 * store writes mmio.data (its first len bytes).
 */
int svm_emulate_mmio(struct vcpu_svm *svm, gpa_t gpa)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	struct kvmx_insn *insn = &svm->mmio_insn;
	struct kvm_run *run = vcpu->run;
	u64 data;

	if (svm_decode_at_rip(svm, insn) || insn->op != KVMX_OP_MOV || !insn->has_mem ||
	    insn->mem_size > sizeof(run->mmio.data))
		return svm_emulation_failure(svm);

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = insn->mem_size;

	if (insn->access & KVMX_ACCESS_WRITE) {
		data = kvmx_insn_store_data(insn, insn->reg < KVMX_NR_REGS ?
						  vcpu->regs[insn->reg] : 0);
		memcpy(run->mmio.data, &data, insn->mem_size);
		run->mmio.is_write = 1;
		svm_set_rip(svm, svm_next_rip_of(svm, insn));
		return 0;
	}
	if (insn->reg >= KVMX_NR_REGS)
		return svm_emulation_failure(svm);
	run->mmio.is_write = 0;
	vcpu->io = (struct kvmx_pending_io){
		.active = true, .in = true, .mmio = true, .size = insn->mem_size,
		.reg = insn->reg, .next_rip = svm_next_rip_of(svm, insn),
	};
	return 0;
}

static u64 svm_seg_base(struct vcpu_svm *svm, u8 seg)
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

static u64 svm_addr_mask(u8 addr_size)
{
	return addr_size >= 8 ? ~0ULL : (1ULL << (8 * addr_size)) - 1;
}

/*
 * INS/OUTS, with or without REP: one element per exit to userspace.  The
 * element for OUTS is read now; INS stores it on completion.
 */
int svm_string_io(struct vcpu_svm *svm, bool in, u16 port, int size)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	struct kvmx_paging p = svm_paging(svm);
	struct kvmx_insn insn;
	u64 mask, linear, next;
	bool rep;
	int idx, n;

	if (svm_decode_at_rip(svm, &insn))
		return svm_emulation_failure(svm);
	mask = svm_addr_mask(insn.addr_size);
	/* The decoder's rep field covers MOVS/STOS/LODS; INS/OUTS look at the prefixes. */
	rep = insn.prefixes & (KVMX_PFX_REPE | KVMX_PFX_REPNE);
	next = svm_next_rip_of(svm, &insn);
	if (rep && !(vcpu->regs[KVMX_RCX] & mask)) {
		svm_set_rip(svm, next);
		return 1;
	}

	if (in)
		linear = svm->vmcb->save.es.base + (vcpu->regs[KVMX_RDI] & mask);
	else
		linear = svm_seg_base(svm, insn.seg) + (vcpu->regs[KVMX_RSI] & mask);
	if (svm_cpu_mode(svm) != KVMX_MODE_LONG64)
		linear = (u32)linear;

	if (!in) {
		idx = srcu_read_lock(&vcpu->vm->srcu);
		n = kvmx_read_guest_virt(vcpu->vm, &p, linear, vcpu->pio_data, size);
		srcu_read_unlock(&vcpu->vm->srcu, idx);
		if (n != size)
			return svm_emulation_failure(svm);
	}
	kvmx_fill_io_exit(vcpu, in, port, size, 1, next);
	vcpu->io.string = true;
	vcpu->io.rep = rep;
	vcpu->io.addr_size = insn.addr_size;
	vcpu->io.linear = linear;
	return 0;
}

static int svm_complete_string_io(struct vcpu_svm *svm)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	struct kvmx_pending_io *io = &vcpu->io;
	struct kvmx_paging p = svm_paging(svm);
	u64 mask = svm_addr_mask(io->addr_size);
	enum kvmx_reg index = io->in ? KVMX_RDI : KVMX_RSI;
	s64 step = (svm->vmcb->save.rflags & X86_EFLAGS_DF) ? -io->size : io->size;
	unsigned long *r;
	gpa_t gpa;
	int idx, err = 0;

	if (io->in) {
		idx = srcu_read_lock(&vcpu->vm->srcu);
		err = kvmx_gva_to_gpa(vcpu->vm, &p, io->linear, &gpa) ||
		      kvmx_write_guest(vcpu->vm, gpa, vcpu->pio_data, io->size);
		srcu_read_unlock(&vcpu->vm->srcu, idx);
		if (err)
			return svm_emulation_failure(svm);
	}
	r = &vcpu->regs[index];
	*r = (*r & ~mask) | ((*r + step) & mask);
	if (io->rep) {
		r = &vcpu->regs[KVMX_RCX];
		*r = (*r & ~mask) | ((*r - 1) & mask);
		/* More to do: run the same instruction again. */
		if (*r & mask)
			return 1;
	}
	svm_set_rip(svm, io->next_rip);
	return 1;
}

/* Finish what the last exit to userspace left open; see vcpu->io. */
int svm_complete_userspace_io(struct kvmx_vcpu *vcpu)
{
	struct vcpu_svm *svm = to_svm(vcpu);
	struct kvmx_pending_io *io = &vcpu->io;
	struct kvm_run *run = vcpu->run;
	u64 data = 0;

	if (io->mmio) {
		memcpy(&data, run->mmio.data, io->size);
		vcpu->regs[io->reg] = kvmx_insn_load(&svm->mmio_insn, vcpu->regs[io->reg], data);
		svm_set_rip(svm, io->next_rip);
		return 1;
	}
	if (io->string)
		return svm_complete_string_io(svm);
	if (io->in) {
		/* A 32-bit IN clears RAX[63:32]; narrower ones merge. */
		data = io->size < 4 ? vcpu->regs[KVMX_RAX] : 0;
		memcpy(&data, vcpu->pio_data, io->size);
		vcpu->regs[KVMX_RAX] = data;
	}
	svm_set_rip(svm, io->next_rip);
	return 1;
}
