// SPDX-License-Identifier: GPL-2.0
/*
 * Instructions that need userspace to finish, for both backends: MMIO loads
 * and stores, and string port I/O.  The decoder (arch-x86/emulate) gives
 * their length and operands; guest memory is reached through the guest's
 * page tables; the backend's guest state through struct kvmx_emul_ops.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/kernel.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <asm/processor-flags.h>

#include <kvmx/kvmx_host.h>
#include <kvmx/walk.h>

#include "mmio.h"
#include "emulate/operand.h"

static bool emul_long64(struct kvmx_vcpu *vcpu, struct kvmx_emul *em)
{
	return em->ops->cpu_mode(vcpu) == KVMX_MODE_LONG64;
}

/*
 * Fetch and decode the instruction at CS:RIP through the guest's page
 * tables.  Returns 0 or a negative errno.
 */
int kvmx_emul_decode_at_rip(struct kvmx_vcpu *vcpu, struct kvmx_emul *em,
			    struct kvmx_insn *insn)
{
	struct kvmx_vm *vm = vcpu->vm;
	u8 bytes[KVMX_INSN_MAX_LEN];
	struct kvmx_paging p = {};
	u64 linear = em->ops->get_rip(vcpu);
	enum kvmx_cpu_mode mode = em->ops->cpu_mode(vcpu);
	int n, idx;

	em->ops->get_paging(vcpu, &p);
	if (mode != KVMX_MODE_LONG64)
		linear = (u32)(linear + em->ops->seg_base(vcpu, KVMX_SEG_CS));
	idx = srcu_read_lock(&vm->srcu);
	n = kvmx_read_guest_virt(vm, &p, linear, bytes, sizeof(bytes));
	srcu_read_unlock(&vm->srcu, idx);
	if (n <= 0)
		return -EFAULT;
	return kvmx_decode(bytes, n, mode, 0, insn);
}
EXPORT_SYMBOL_GPL(kvmx_emul_decode_at_rip);

static u64 emul_next_rip(struct kvmx_vcpu *vcpu, struct kvmx_emul *em,
			 const struct kvmx_insn *insn)
{
	u64 next = em->ops->get_rip(vcpu) + insn->len;

	return emul_long64(vcpu, em) ? next : (u32)next;
}

static u64 emul_addr_mask(u8 addr_size)
{
	return addr_size >= 8 ? ~0ULL : (1ULL << (8 * addr_size)) - 1;
}

/* A write exit: userspace gets the data, the guest has moved on. */
static int emul_mmio_write_exit(struct kvmx_vcpu *vcpu, gpa_t gpa, u8 size, u64 data)
{
	struct kvm_run *run = vcpu->run;

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
static int emul_mmio_read_exit(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, gpa_t gpa,
			       u8 size, u8 stage, u64 next_rip)
{
	struct kvm_run *run = vcpu->run;

	run->exit_reason = KVM_EXIT_MMIO;
	run->mmio.phys_addr = gpa;
	run->mmio.len = size;
	run->mmio.is_write = 0;
	em->stage = stage;
	em->gpa = gpa;
	vcpu->io = (struct kvmx_pending_io){
		.active = true, .in = true, .mmio = true, .size = size,
		.next_rip = next_rip,
	};
	return 0;
}

/* The linear address of a string operand: @seg:@reg, wrapped to the address size. */
static u64 emul_string_linear(struct kvmx_vcpu *vcpu, struct kvmx_emul *em,
			      const struct kvmx_insn *insn, u8 seg, enum kvmx_reg reg)
{
	u64 linear = em->ops->seg_base(vcpu, seg) +
		     (vcpu->regs[reg] & emul_addr_mask(insn->addr_size));

	return emul_long64(vcpu, em) ? linear : (u32)linear;
}

/*
 * Translate @linear through the guest's page tables.  Returns true when it is
 * memory the access may use directly (a slot, writable for @write); @gpa is
 * set whenever the translation exists.  Caller holds vm->srcu.
 */
static bool emul_linear_is_ram(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, u64 linear,
			       bool write, gpa_t *gpa, bool *translated)
{
	struct kvmx_paging p = {};
	struct kvmx_memory_slot *slot;

	em->ops->get_paging(vcpu, &p);
	*translated = !kvmx_gva_to_gpa(vcpu->vm, &p, linear, gpa);
	if (!*translated)
		return false;
	slot = kvmx_gfn_to_memslot(vcpu->vm, *gpa >> PAGE_SHIFT);
	return slot && !(write && (slot->flags & KVM_MEM_READONLY));
}

/*
 * One element of a string instruction is done: move rSI and/or rDI on by
 * the element size (backwards with RFLAGS.DF) and, with REP, count rCX down.
 * The instruction retires when it has no REP or rCX reached 0; otherwise RIP
 * stays, and the guest executes it again for the next element.
 */
static void emul_string_step(struct kvmx_vcpu *vcpu, struct kvmx_emul *em,
			     const struct kvmx_insn *insn, bool si, bool di, u64 next_rip)
{
	unsigned long *regs = vcpu->regs;
	u64 mask = emul_addr_mask(insn->addr_size);
	s64 step = (em->ops->get_rflags(vcpu) & X86_EFLAGS_DF) ?
		   -insn->mem_size : insn->mem_size;

	if (si)
		regs[KVMX_RSI] = (regs[KVMX_RSI] & ~mask) | ((regs[KVMX_RSI] + step) & mask);
	if (di)
		regs[KVMX_RDI] = (regs[KVMX_RDI] & ~mask) | ((regs[KVMX_RDI] + step) & mask);
	if (insn->rep != KVMX_REP_NONE) {
		regs[KVMX_RCX] = (regs[KVMX_RCX] & ~mask) | ((regs[KVMX_RCX] - 1) & mask);
		if (regs[KVMX_RCX] & mask)
			return;
	}
	em->ops->set_rip(vcpu, next_rip);
}

/*
 * MOVS with one side in MMIO.  From memory to MMIO: read the source now and
 * exit with a write.  From MMIO: exit with a read; the completion stores the
 * data at ES:rDI (or, MMIO to MMIO, exits once more with the write).
 */
static int emul_mmio_movs(struct kvmx_vcpu *vcpu, struct kvmx_emul *em,
			  const struct kvmx_insn *insn, u64 next_rip)
{
	struct kvmx_vm *vm = vcpu->vm;
	u64 src = emul_string_linear(vcpu, em, insn, insn->seg, KVMX_RSI);
	u64 dst = emul_string_linear(vcpu, em, insn, KVMX_SEG_ES, KVMX_RDI);
	gpa_t src_gpa = 0, dst_gpa = 0;
	bool src_ok, dst_ok = false, src_ram;
	u64 data = 0;
	int idx, r = 0;

	idx = srcu_read_lock(&vm->srcu);
	src_ram = emul_linear_is_ram(vcpu, em, src, false, &src_gpa, &src_ok);
	if (src_ram) {
		emul_linear_is_ram(vcpu, em, dst, true, &dst_gpa, &dst_ok);
		r = -EFAULT;
		if (dst_ok)
			r = kvmx_read_guest(vm, src_gpa, &data, insn->mem_size);
	}
	srcu_read_unlock(&vm->srcu, idx);

	if (!src_ok)
		return em->ops->emulation_failure(vcpu);
	if (!src_ram)
		return emul_mmio_read_exit(vcpu, em, src_gpa, insn->mem_size, KVMX_MMIO_MOVS,
					   next_rip);
	if (r)
		return em->ops->emulation_failure(vcpu);
	emul_string_step(vcpu, em, insn, true, true, next_rip);
	return emul_mmio_write_exit(vcpu, dst_gpa, insn->mem_size, data);
}

/**
 * kvmx_emulate_mmio - finish an access to guest-physical memory no slot backs
 * @vcpu: the vCPU, stopped on the instruction
 * @em: its emulation state
 * @gpa: the address (outside every slot, or a write to a read-only one)
 *
 * Emulate the instruction and exit with KVM_EXIT_MMIO.  As KVM, a store has
 * completed (RIP advanced) when userspace sees it; a load, and the
 * read-modify-write forms (XCHG, ALU), complete on the next KVM_RUN.  String
 * forms with REP do one element per exit.  Returns what an exit handler
 * returns.
 */
int kvmx_emulate_mmio(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, gpa_t gpa)
{
	struct kvmx_insn *insn = &em->insn;
	bool has_reg;
	u64 next, data;

	if (kvmx_emul_decode_at_rip(vcpu, em, insn) || !insn->has_mem ||
	    !insn->mem_size || insn->mem_size > sizeof(vcpu->run->mmio.data))
		return em->ops->emulation_failure(vcpu);
	next = emul_next_rip(vcpu, em, insn);
	has_reg = insn->reg < KVMX_NR_REGS;

	switch (insn->op) {
	case KVMX_OP_MOV:
		if (insn->access & KVMX_ACCESS_WRITE) {
			if (!insn->has_imm && !has_reg)
				break;
			em->ops->set_rip(vcpu, next);
			data = kvmx_insn_store_data(insn, has_reg ? vcpu->regs[insn->reg] : 0);
			return emul_mmio_write_exit(vcpu, gpa, insn->mem_size, data);
		}
		if (!has_reg)
			break;
		return emul_mmio_read_exit(vcpu, em, gpa, insn->mem_size, KVMX_MMIO_LOAD, next);
	case KVMX_OP_LODS:
		if (!has_reg)
			break;
		return emul_mmio_read_exit(vcpu, em, gpa, insn->mem_size, KVMX_MMIO_LOAD, next);
	case KVMX_OP_STOS:
		if (!has_reg)
			break;
		emul_string_step(vcpu, em, insn, false, true, next);
		return emul_mmio_write_exit(vcpu, gpa, insn->mem_size,
					    kvmx_insn_store_data(insn, vcpu->regs[insn->reg]));
	case KVMX_OP_MOVS:
		return emul_mmio_movs(vcpu, em, insn, next);
	case KVMX_OP_XCHG:
		if (!has_reg)
			break;
		return emul_mmio_read_exit(vcpu, em, gpa, insn->mem_size, KVMX_MMIO_XCHG, next);
	case KVMX_OP_ALU:
		if (insn->dst_mem ? !has_reg && !insn->has_imm : !has_reg)
			break;
		return emul_mmio_read_exit(vcpu, em, gpa, insn->mem_size, KVMX_MMIO_ALU, next);
	default:
		break;
	}
	return em->ops->emulation_failure(vcpu);
}
EXPORT_SYMBOL_GPL(kvmx_emulate_mmio);

/*
 * A store to a guest page table that the vCPU cannot run without shadowing
 * (its own root, or a table on the store's own path; mm/shadow.c): make the
 * store here, through the VMM's mapping of @gpa, and let the table's shadow
 * pages be rebuilt from the new contents when next needed.  Plain stores,
 * XCHG and read-modify-write ALU instructions are what guests update
 * entries with; anything else is an emulation failure.  Returns what an
 * exit handler returns.
 */
int kvmx_emulate_pt_write(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, gpa_t gpa)
{
	struct kvmx_insn *insn = &em->insn;
	struct kvmx_vm *vm = vcpu->vm;
	u64 old = 0, val, next, rflags = em->ops->get_rflags(vcpu);
	bool has_reg;
	int idx, r;

	if (kvmx_emul_decode_at_rip(vcpu, em, insn) || !insn->has_mem || !insn->mem_size ||
	    insn->mem_size > sizeof(old) ||
	    offset_in_page(gpa) + insn->mem_size > PAGE_SIZE ||
	    !(insn->access & KVMX_ACCESS_WRITE))
		return em->ops->emulation_failure(vcpu);
	has_reg = insn->reg < KVMX_NR_REGS;
	next = emul_next_rip(vcpu, em, insn);

	idx = srcu_read_lock(&vm->srcu);
	r = kvmx_read_guest(vm, gpa, &old, insn->mem_size);
	if (r)
		goto fail;
	switch (insn->op) {
	case KVMX_OP_MOV:
		if (!insn->has_imm && !has_reg)
			goto fail;
		val = kvmx_insn_store_data(insn, has_reg ? vcpu->regs[insn->reg] : 0);
		break;
	case KVMX_OP_XCHG:
		if (!has_reg)
			goto fail;
		val = kvmx_insn_store_data(insn, vcpu->regs[insn->reg]);
		break;
	case KVMX_OP_ALU:
		if (!insn->dst_mem || (!insn->has_imm && !has_reg))
			goto fail;
		val = kvmx_insn_alu(insn, old,
				    kvmx_insn_store_data(insn, has_reg ? vcpu->regs[insn->reg] : 0),
				    &rflags);
		break;
	default:
		goto fail;
	}
	r = kvmx_write_guest(vm, gpa, &val, insn->mem_size);
	srcu_read_unlock(&vm->srcu, idx);
	if (r)
		return em->ops->emulation_failure(vcpu);
	if (insn->op == KVMX_OP_XCHG)
		vcpu->regs[insn->reg] = kvmx_insn_load(insn, vcpu->regs[insn->reg], old);
	em->ops->set_rflags(vcpu, rflags);
	em->ops->set_rip(vcpu, next);
	return 1;
fail:
	srcu_read_unlock(&vm->srcu, idx);
	return em->ops->emulation_failure(vcpu);
}
EXPORT_SYMBOL_GPL(kvmx_emulate_pt_write);

/* MOVS from MMIO: the element read is @data; store it at ES:rDI. */
static int emul_complete_mmio_movs(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, u64 data,
				   u64 next_rip)
{
	const struct kvmx_insn *insn = &em->insn;
	struct kvmx_vm *vm = vcpu->vm;
	u64 dst = emul_string_linear(vcpu, em, insn, KVMX_SEG_ES, KVMX_RDI);
	bool dst_ok, dst_ram;
	gpa_t dst_gpa = 0;
	int idx, r = 0;

	idx = srcu_read_lock(&vm->srcu);
	dst_ram = emul_linear_is_ram(vcpu, em, dst, true, &dst_gpa, &dst_ok);
	if (dst_ram)
		r = kvmx_write_guest(vm, dst_gpa, &data, insn->mem_size);
	srcu_read_unlock(&vm->srcu, idx);
	if (!dst_ok || r)
		return em->ops->emulation_failure(vcpu);
	emul_string_step(vcpu, em, insn, true, true, next_rip);
	if (dst_ram)
		return 1;
	return emul_mmio_write_exit(vcpu, dst_gpa, insn->mem_size, data);
}

/* Complete an MMIO read with the @data userspace supplied. */
static int emul_complete_mmio(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, u64 data,
			      u64 next_rip)
{
	const struct kvmx_insn *insn = &em->insn;
	unsigned long *regs = vcpu->regs;
	u64 rflags, res, old;

	switch (em->stage) {
	case KVMX_MMIO_LOAD:
		regs[insn->reg] = kvmx_insn_load(insn, regs[insn->reg], data);
		if (insn->op == KVMX_OP_LODS)
			emul_string_step(vcpu, em, insn, true, false, next_rip);
		else
			em->ops->set_rip(vcpu, next_rip);
		return 1;
	case KVMX_MMIO_MOVS:
		return emul_complete_mmio_movs(vcpu, em, data, next_rip);
	case KVMX_MMIO_XCHG:
		old = kvmx_insn_reg_operand(insn, regs[insn->reg]);
		regs[insn->reg] = kvmx_insn_load(insn, regs[insn->reg], data);
		em->ops->set_rip(vcpu, next_rip);
		return emul_mmio_write_exit(vcpu, em->gpa, insn->mem_size,
					    kvmx_trunc(old, insn->mem_size));
	case KVMX_MMIO_ALU:
		rflags = em->ops->get_rflags(vcpu);
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
		em->ops->set_rflags(vcpu, rflags);
		em->ops->set_rip(vcpu, next_rip);
		if (insn->dst_mem && (insn->access & KVMX_ACCESS_WRITE))
			return emul_mmio_write_exit(vcpu, em->gpa, insn->mem_size, res);
		return 1;
	}
	/* Only the stages above are ever recorded: kvmx itself is confused. */
	KVMX_KILL_VM_ON(true, vcpu->vm);
	return -EIO;
}

/* Bytes of port input one exit may carry (KVM's emulator read-ahead cache). */
#define KVMX_INS_BATCH_BYTES	1024

/*
 * How many elements one REP INS exit asks userspace for, as KVM's
 * pio_in_emulated() computes it: what rCX still wants, what fits the
 * read-ahead cache, and no more than the bytes left in rDI's page (KVM
 * compares that byte count with an element count, and so do we).
 */
static u32 emul_ins_batch(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, bool rep, int size,
			  u64 mask)
{
	unsigned long rdi = vcpu->regs[KVMX_RDI];
	u64 rcx = vcpu->regs[KVMX_RCX] & mask;
	u64 in_page, n;

	if (!rep)
		return 1;
	in_page = (em->ops->get_rflags(vcpu) & X86_EFLAGS_DF) ? offset_in_page(rdi) :
								PAGE_SIZE - offset_in_page(rdi);
	n = min3(in_page, (u64)(KVMX_INS_BATCH_BYTES / size), rcx);
	return n ? n : 1;
}

/**
 * kvmx_emulate_string_io - INS/OUTS, with or without REP
 * @vcpu: the vCPU, stopped on the instruction
 * @em: its emulation state
 * @in: INS
 * @port: the port
 * @size: bytes per element
 *
 * OUTS moves one element per exit to userspace, read now; INS asks for a
 * batch (emul_ins_batch()) and stores it on completion, as KVM's emulator
 * does.  Returns what an exit handler returns.
 */
int kvmx_emulate_string_io(struct kvmx_vcpu *vcpu, struct kvmx_emul *em, bool in,
			   u16 port, int size)
{
	struct kvmx_paging p = {};
	struct kvmx_insn insn;
	u64 mask, linear, next;
	u32 count;
	bool rep;
	int idx, n;

	if (kvmx_emul_decode_at_rip(vcpu, em, &insn))
		return em->ops->emulation_failure(vcpu);
	mask = emul_addr_mask(insn.addr_size);
	/* The decoder's rep field covers MOVS/STOS/LODS; INS/OUTS look at the prefixes. */
	rep = insn.prefixes & (KVMX_PFX_REPE | KVMX_PFX_REPNE);
	next = emul_next_rip(vcpu, em, &insn);
	if (rep && !(vcpu->regs[KVMX_RCX] & mask)) {
		em->ops->set_rip(vcpu, next);
		return 1;
	}

	if (in)
		linear = em->ops->seg_base(vcpu, KVMX_SEG_ES) + (vcpu->regs[KVMX_RDI] & mask);
	else
		linear = em->ops->seg_base(vcpu, insn.seg) + (vcpu->regs[KVMX_RSI] & mask);
	if (!emul_long64(vcpu, em))
		linear = (u32)linear;

	if (!in) {
		em->ops->get_paging(vcpu, &p);
		idx = srcu_read_lock(&vcpu->vm->srcu);
		n = kvmx_read_guest_virt(vcpu->vm, &p, linear, vcpu->pio_data, size);
		srcu_read_unlock(&vcpu->vm->srcu, idx);
		if (n != size)
			return em->ops->emulation_failure(vcpu);
		count = 1;
	} else {
		count = emul_ins_batch(vcpu, em, rep, size, mask);
	}
	kvmx_fill_io_exit(vcpu, in, port, size, count, next);
	vcpu->io.string = true;
	vcpu->io.rep = rep;
	vcpu->io.addr_size = insn.addr_size;
	vcpu->io.linear = linear;
	return 0;
}
EXPORT_SYMBOL_GPL(kvmx_emulate_string_io);

static int emul_complete_string_io(struct kvmx_vcpu *vcpu, struct kvmx_emul *em)
{
	struct kvmx_pending_io *io = &vcpu->io;
	struct kvmx_paging p = {};
	u64 mask = emul_addr_mask(io->addr_size);
	enum kvmx_reg index = io->in ? KVMX_RDI : KVMX_RSI;
	s64 step = (em->ops->get_rflags(vcpu) & X86_EFLAGS_DF) ? -io->size : io->size;
	bool long64 = emul_long64(vcpu, em);
	unsigned long *r = &vcpu->regs[index], *rcx = &vcpu->regs[KVMX_RCX];
	u64 linear;
	gpa_t gpa;
	int idx, err = 0;
	u32 i;

	if (KVMX_KILL_VM_ON(io->count * io->size > PAGE_SIZE, vcpu->vm))
		return -EIO;
	if (io->in)
		em->ops->get_paging(vcpu, &p);
	idx = srcu_read_lock(&vcpu->vm->srcu);
	for (i = 0; i < io->count && !err; i++) {
		if (io->in) {
			/* Each element at ES:rDI as it is now, wrapped to the address size. */
			linear = em->ops->seg_base(vcpu, KVMX_SEG_ES) + (*r & mask);
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
		return em->ops->emulation_failure(vcpu);
	/* More to do: run the same instruction again. */
	if (io->rep && (*rcx & mask))
		return 1;
	em->ops->set_rip(vcpu, io->next_rip);
	return 1;
}

/**
 * kvmx_emul_complete_userspace_io - finish what the last exit left open
 * @vcpu: the vCPU; vcpu->io says what is pending
 * @em: its emulation state
 *
 * Returns what an exit handler returns.
 */
int kvmx_emul_complete_userspace_io(struct kvmx_vcpu *vcpu, struct kvmx_emul *em)
{
	struct kvmx_pending_io *io = &vcpu->io;
	struct kvm_run *run = vcpu->run;
	u64 data = 0;

	if (io->mmio) {
		if (KVMX_KILL_VM_ON(io->size > sizeof(data), vcpu->vm))
			return -EIO;
		memcpy(&data, run->mmio.data, io->size);
		return emul_complete_mmio(vcpu, em, data, io->next_rip);
	}
	if (io->string)
		return emul_complete_string_io(vcpu, em);
	if (io->in) {
		/* A 32-bit IN clears RAX[63:32]; narrower ones merge. */
		data = io->size < 4 ? vcpu->regs[KVMX_RAX] : 0;
		memcpy(&data, vcpu->pio_data, io->size);
		vcpu->regs[KVMX_RAX] = data;
	}
	em->ops->set_rip(vcpu, io->next_rip);
	return 1;
}
EXPORT_SYMBOL_GPL(kvmx_emul_complete_userspace_io);
