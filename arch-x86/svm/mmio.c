// SPDX-License-Identifier: GPL-2.0
/*
 * Instructions that need userspace to finish: MMIO loads and stores, and
 * string port I/O.  The decoder (arch-x86/emulate) gives their length and
 * operands; guest memory is reached through the guest's page tables.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/mm.h>
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

static u64 svm_addr_mask(u8 addr_size)
{
	return addr_size >= 8 ? ~0ULL : (1ULL << (8 * addr_size)) - 1;
}

/* A write exit: userspace gets the data, the guest has moved on. */
static int svm_mmio_write_exit(struct vcpu_svm *svm, gpa_t gpa, u8 size, u64 data)
{
	struct kvm_run *run = svm->vcpu.run;

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = size;
	run->mmio.is_write = 1;
	memcpy(run->mmio.data, &data, size);
	return 0;
}

/*
 * A read exit: the data comes back in kvm_run on the next KVM_RUN and
 * completes @stage.  Like KVM, leave mmio.data alone.
 */
static int svm_mmio_read_exit(struct vcpu_svm *svm, gpa_t gpa, u8 size, u8 stage,
			      u64 next_rip)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = size;
	run->mmio.is_write = 0;
	svm->mmio_stage = stage;
	svm->mmio_gpa = gpa;
	vcpu->io = (struct kvmx_pending_io){
		.active = true, .in = true, .mmio = true, .size = size,
		.next_rip = next_rip,
	};
	return 0;
}

/* The linear address of a string operand: @seg:@reg, wrapped to the address size. */
static u64 svm_string_linear(struct vcpu_svm *svm, const struct kvmx_insn *insn, u8 seg,
			     enum kvmx_reg reg)
{
	u64 linear = svm_seg_base(svm, seg) +
		     (svm->vcpu.regs[reg] & svm_addr_mask(insn->addr_size));

	return svm_cpu_mode(svm) == KVMX_MODE_LONG64 ? linear : (u32)linear;
}

/*
 * Translate @linear through the guest's page tables.  Returns true when it is
 * memory the access may use directly (a slot, writable for @write); @gpa is
 * set whenever the translation exists.  Caller holds vm->srcu.
 */
static bool svm_linear_is_ram(struct vcpu_svm *svm, u64 linear, bool write, gpa_t *gpa,
			      bool *translated)
{
	struct kvmx_paging p = svm_paging(svm);
	struct kvmx_memory_slot *slot;

	*translated = !kvmx_gva_to_gpa(svm->vcpu.vm, &p, linear, gpa);
	if (!*translated)
		return false;
	slot = kvmx_gfn_to_memslot(svm->vcpu.vm, *gpa >> PAGE_SHIFT);
	return slot && !(write && (slot->flags & KVM_MEM_READONLY));
}

/*
 * One element of a string instruction is done: move rSI and/or rDI on by
 * the element size (backwards with RFLAGS.DF) and, with REP, count rCX down.
 * The instruction retires when it has no REP or rCX reached 0; otherwise RIP
 * stays, and the guest executes it again for the next element.
 */
static void svm_string_step(struct vcpu_svm *svm, const struct kvmx_insn *insn,
			    bool si, bool di, u64 next_rip)
{
	unsigned long *regs = svm->vcpu.regs;
	u64 mask = svm_addr_mask(insn->addr_size);
	s64 step = (svm->vmcb->save.rflags & X86_EFLAGS_DF) ? -insn->mem_size : insn->mem_size;

	if (si)
		regs[KVMX_RSI] = (regs[KVMX_RSI] & ~mask) | ((regs[KVMX_RSI] + step) & mask);
	if (di)
		regs[KVMX_RDI] = (regs[KVMX_RDI] & ~mask) | ((regs[KVMX_RDI] + step) & mask);
	if (insn->rep != KVMX_REP_NONE) {
		regs[KVMX_RCX] = (regs[KVMX_RCX] & ~mask) | ((regs[KVMX_RCX] - 1) & mask);
		if (regs[KVMX_RCX] & mask)
			return;
	}
	svm_set_rip(svm, next_rip);
}

/*
 * MOVS with one side in MMIO.  From memory to MMIO: read the source now and
 * exit with a write.  From MMIO: exit with a read; the completion stores the
 * data at ES:rDI (or, MMIO to MMIO, exits once more with the write).
 */
static int svm_mmio_movs(struct vcpu_svm *svm, const struct kvmx_insn *insn, u64 next_rip)
{
	struct kvmx_vm *vm = svm->vcpu.vm;
	u64 src = svm_string_linear(svm, insn, insn->seg, KVMX_RSI);
	u64 dst = svm_string_linear(svm, insn, KVMX_SEG_ES, KVMX_RDI);
	gpa_t src_gpa, dst_gpa;
	bool src_ok, dst_ok, src_ram;
	u64 data = 0;
	int idx, r;

	idx = srcu_read_lock(&vm->srcu);
	src_ram = svm_linear_is_ram(svm, src, false, &src_gpa, &src_ok);
	if (src_ram) {
		svm_linear_is_ram(svm, dst, true, &dst_gpa, &dst_ok);
		r = -EFAULT;
		if (dst_ok)
			r = kvmx_read_guest(vm, src_gpa, &data, insn->mem_size);
	}
	srcu_read_unlock(&vm->srcu, idx);

	if (!src_ok)
		return svm_emulation_failure(svm);
	if (!src_ram)
		return svm_mmio_read_exit(svm, src_gpa, insn->mem_size, SVM_MMIO_MOVS, next_rip);
	if (r)
		return svm_emulation_failure(svm);
	svm_string_step(svm, insn, true, true, next_rip);
	return svm_mmio_write_exit(svm, dst_gpa, insn->mem_size, data);
}

/*
 * An access to @gpa that no memslot backs (or a write to a read-only one):
 * emulate the instruction and exit with KVM_EXIT_MMIO.  As KVM, a store has
 * completed (RIP advanced) when userspace sees it; a load, and the
 * read-modify-write forms (XCHG, ALU), complete on the next KVM_RUN.  String
 * forms with REP do one element per exit.
 */
int svm_emulate_mmio(struct vcpu_svm *svm, gpa_t gpa)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	struct kvmx_insn *insn = &svm->mmio_insn;
	bool has_reg;
	u64 next;

	if (svm_decode_at_rip(svm, insn) || !insn->has_mem ||
	    !insn->mem_size || insn->mem_size > sizeof(vcpu->run->mmio.data))
		return svm_emulation_failure(svm);
	next = svm_next_rip_of(svm, insn);
	has_reg = insn->reg < KVMX_NR_REGS;

	switch (insn->op) {
	case KVMX_OP_MOV:
		if (insn->access & KVMX_ACCESS_WRITE) {
			if (!insn->has_imm && !has_reg)
				break;
			svm_set_rip(svm, next);
			return svm_mmio_write_exit(svm, gpa, insn->mem_size,
						   kvmx_insn_store_data(insn, has_reg ?
									vcpu->regs[insn->reg] : 0));
		}
		if (!has_reg)
			break;
		return svm_mmio_read_exit(svm, gpa, insn->mem_size, SVM_MMIO_LOAD, next);
	case KVMX_OP_LODS:
		if (!has_reg)
			break;
		return svm_mmio_read_exit(svm, gpa, insn->mem_size, SVM_MMIO_LOAD, next);
	case KVMX_OP_STOS:
		if (!has_reg)
			break;
		svm_string_step(svm, insn, false, true, next);
		return svm_mmio_write_exit(svm, gpa, insn->mem_size,
					   kvmx_insn_store_data(insn, vcpu->regs[insn->reg]));
	case KVMX_OP_MOVS:
		return svm_mmio_movs(svm, insn, next);
	case KVMX_OP_XCHG:
		if (!has_reg)
			break;
		return svm_mmio_read_exit(svm, gpa, insn->mem_size, SVM_MMIO_XCHG, next);
	case KVMX_OP_ALU:
		if (insn->dst_mem ? !has_reg && !insn->has_imm : !has_reg)
			break;
		return svm_mmio_read_exit(svm, gpa, insn->mem_size, SVM_MMIO_ALU, next);
	default:
		break;
	}
	return svm_emulation_failure(svm);
}

/* MOVS from MMIO: the element read is @data; store it at ES:rDI. */
static int svm_complete_mmio_movs(struct vcpu_svm *svm, u64 data, u64 next_rip)
{
	const struct kvmx_insn *insn = &svm->mmio_insn;
	struct kvmx_vm *vm = svm->vcpu.vm;
	u64 dst = svm_string_linear(svm, insn, KVMX_SEG_ES, KVMX_RDI);
	bool dst_ok, dst_ram;
	gpa_t dst_gpa;
	int idx, r = 0;

	idx = srcu_read_lock(&vm->srcu);
	dst_ram = svm_linear_is_ram(svm, dst, true, &dst_gpa, &dst_ok);
	if (dst_ram)
		r = kvmx_write_guest(vm, dst_gpa, &data, insn->mem_size);
	srcu_read_unlock(&vm->srcu, idx);
	if (!dst_ok || r)
		return svm_emulation_failure(svm);
	svm_string_step(svm, insn, true, true, next_rip);
	if (dst_ram)
		return 1;
	return svm_mmio_write_exit(svm, dst_gpa, insn->mem_size, data);
}

/* Complete an MMIO read with the @data userspace supplied. */
static int svm_complete_mmio(struct vcpu_svm *svm, u64 data, u64 next_rip)
{
	const struct kvmx_insn *insn = &svm->mmio_insn;
	unsigned long *regs = svm->vcpu.regs;
	u64 rflags, res, old;

	switch (svm->mmio_stage) {
	case SVM_MMIO_LOAD:
		regs[insn->reg] = kvmx_insn_load(insn, regs[insn->reg], data);
		if (insn->op == KVMX_OP_LODS)
			svm_string_step(svm, insn, true, false, next_rip);
		else
			svm_set_rip(svm, next_rip);
		return 1;
	case SVM_MMIO_MOVS:
		return svm_complete_mmio_movs(svm, data, next_rip);
	case SVM_MMIO_XCHG:
		old = kvmx_insn_reg_operand(insn, regs[insn->reg]);
		regs[insn->reg] = kvmx_insn_load(insn, regs[insn->reg], data);
		svm_set_rip(svm, next_rip);
		return svm_mmio_write_exit(svm, svm->mmio_gpa, insn->mem_size,
					   kvmx_trunc(old, insn->mem_size));
	case SVM_MMIO_ALU:
		rflags = svm->vmcb->save.rflags;
		if (insn->dst_mem) {
			res = kvmx_insn_alu(insn, data,
					    kvmx_insn_store_data(insn, insn->reg < KVMX_NR_REGS ?
								 regs[insn->reg] : 0),
					    &rflags);
		} else {
			res = kvmx_insn_alu(insn, kvmx_insn_reg_operand(insn, regs[insn->reg]),
					    data, &rflags);
			if (insn->alu != KVMX_ALU_CMP && insn->alu != KVMX_ALU_TEST)
				regs[insn->reg] = kvmx_reg_merge(regs[insn->reg], res,
								 insn->reg_size, insn->reg_high8);
		}
		svm->vmcb->save.rflags = rflags;
		svm_set_rip(svm, next_rip);
		if (insn->dst_mem && (insn->access & KVMX_ACCESS_WRITE))
			return svm_mmio_write_exit(svm, svm->mmio_gpa, insn->mem_size, res);
		return 1;
	}
	/* Only the stages above are ever recorded: kvmx itself is confused. */
	KVMX_KILL_VM_ON(true, svm->vcpu.vm);
	return -EIO;
}

/* Bytes of port input one exit may carry (KVM's emulator read-ahead cache). */
#define SVM_INS_BATCH_BYTES	1024

/*
 * How many elements one REP INS exit asks userspace for, as KVM's
 * pio_in_emulated() computes it: what rCX still wants, what fits the
 * read-ahead cache, and no more than the bytes left in rDI's page (KVM
 * compares that byte count with an element count, and so do we).
 */
static u32 svm_ins_batch(struct vcpu_svm *svm, bool rep, int size, u64 mask)
{
	unsigned long rdi = svm->vcpu.regs[KVMX_RDI];
	u64 rcx = svm->vcpu.regs[KVMX_RCX] & mask;
	u64 in_page, n;

	if (!rep)
		return 1;
	in_page = (svm->vmcb->save.rflags & X86_EFLAGS_DF) ? offset_in_page(rdi) :
							      PAGE_SIZE - offset_in_page(rdi);
	n = min3(in_page, (u64)(SVM_INS_BATCH_BYTES / size), rcx);
	return n ? n : 1;
}

/*
 * INS/OUTS, with or without REP.  OUTS moves one element per exit, read
 * now; INS asks for a batch (svm_ins_batch()) and stores it on completion,
 * as KVM's emulator does.
 */
int svm_string_io(struct vcpu_svm *svm, bool in, u16 port, int size)
{
	struct kvmx_vcpu *vcpu = &svm->vcpu;
	struct kvmx_paging p = svm_paging(svm);
	struct kvmx_insn insn;
	u64 mask, linear, next;
	u32 count;
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
		count = 1;
	} else {
		count = svm_ins_batch(svm, rep, size, mask);
	}
	kvmx_fill_io_exit(vcpu, in, port, size, count, next);
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
	bool long64 = svm_cpu_mode(svm) == KVMX_MODE_LONG64;
	unsigned long *r = &vcpu->regs[index], *rcx = &vcpu->regs[KVMX_RCX];
	u64 linear;
	gpa_t gpa;
	int idx, err = 0;
	u32 i;

	if (KVMX_KILL_VM_ON(io->count * io->size > PAGE_SIZE, vcpu->vm))
		return -EIO;
	idx = srcu_read_lock(&vcpu->vm->srcu);
	for (i = 0; i < io->count && !err; i++) {
		if (io->in) {
			/* Each element at ES:rDI as it is now, wrapped to the address size. */
			linear = svm->vmcb->save.es.base + (*r & mask);
			if (!long64)
				linear = (u32)linear;
			err = kvmx_gva_to_gpa(vcpu->vm, &p, linear, &gpa) ||
			      kvmx_write_guest(vcpu->vm, gpa, vcpu->pio_data + i * io->size,
					       io->size);
		}
		*r = (*r & ~mask) | ((*r + step) & mask);
		if (io->rep)
			*rcx = (*rcx & ~mask) | ((*rcx - 1) & mask);
	}
	srcu_read_unlock(&vcpu->vm->srcu, idx);
	if (err)
		return svm_emulation_failure(svm);
	/* More to do: run the same instruction again. */
	if (io->rep && (*rcx & mask))
		return 1;
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
		if (KVMX_KILL_VM_ON(io->size > sizeof(data), vcpu->vm))
			return -EIO;
		memcpy(&data, run->mmio.data, io->size);
		return svm_complete_mmio(svm, data, io->next_rip);
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
