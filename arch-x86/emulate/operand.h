/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Operand helpers for a decoded MMIO instruction (struct kvmx_insn): the one
 * implementation of x86's register-width rules that the kernel's MMIO
 * completion and the unit tests share.
 *
 * An MMIO exit carries the mem_size bytes of the access; in these helpers
 * they travel as a u64 holding those bytes little-endian, zero-extended
 * (memcpy of kvm_run->mmio.data into a zeroed u64 on an x86 host).
 */
#ifndef _KVMX_EMULATE_OPERAND_H
#define _KVMX_EMULATE_OPERAND_H

#include "decode.h"

#define KVMX_RFLAGS_CF		BIT_ULL(0)
#define KVMX_RFLAGS_PF		BIT_ULL(2)
#define KVMX_RFLAGS_AF		BIT_ULL(4)
#define KVMX_RFLAGS_ZF		BIT_ULL(6)
#define KVMX_RFLAGS_SF		BIT_ULL(7)
#define KVMX_RFLAGS_OF		BIT_ULL(11)
#define KVMX_RFLAGS_ARITH	(KVMX_RFLAGS_CF | KVMX_RFLAGS_PF | \
				 KVMX_RFLAGS_AF | KVMX_RFLAGS_ZF | \
				 KVMX_RFLAGS_SF | KVMX_RFLAGS_OF)

/* The low @size bytes of @val (size 0 or 8 and up: all of it). */
static inline u64 kvmx_trunc(u64 val, unsigned int size)
{
	if (!size || size >= 8)
		return val;
	return val & ((1ULL << (8 * size)) - 1);
}

static inline u64 kvmx_sign_extend(u64 val, unsigned int size)
{
	unsigned int shift = 64 - 8 * size;

	if (!size || size >= 8)
		return val;
	return (u64)((s64)(val << shift) >> shift);
}

static inline u64 kvmx_bswap(u64 val, unsigned int size)
{
	u64 out = 0;
	unsigned int i;

	for (i = 0; i < size && i < 8; i++)
		out |= ((val >> (8 * i)) & 0xff) << (8 * (size - 1 - i));
	return out;
}

/*
 * A register write of @size bytes, as x86-64 does it: 8- and 16-bit writes
 * (and AH..BH) keep the other bits, a 32-bit write zeroes bits 63:32.
 */
static inline u64 kvmx_reg_merge(u64 old, u64 val, unsigned int size,
				 bool high8)
{
	if (high8)
		return (old & ~0xff00ULL) | ((val & 0xff) << 8);
	switch (size) {
	case 1:
		return (old & ~0xffULL) | (val & 0xff);
	case 2:
		return (old & ~0xffffULL) | (val & 0xffff);
	case 4:
		return (u32)val;
	default:
		return val;
	}
}

/*
 * MMIO completion of a load: the new value of register insn->reg, given
 * its value @old and the @data read.  Applies MOVBE swapping and
 * zero/sign extension from mem_size to reg_size.
 */
static inline u64 kvmx_insn_load(const struct kvmx_insn *insn, u64 old,
				 u64 data)
{
	u64 val = kvmx_trunc(data, insn->mem_size);

	if (insn->bswap)
		val = kvmx_bswap(val, insn->mem_size);
	if (insn->ext == KVMX_EXT_SIGN)
		val = kvmx_sign_extend(val, insn->mem_size);
	return kvmx_reg_merge(old, val, insn->reg_size, insn->reg_high8);
}

/* The register operand insn->reg at its width, given the GPR's value. */
static inline u64 kvmx_insn_reg_operand(const struct kvmx_insn *insn,
					u64 reg_val)
{
	if (insn->reg_high8)
		return (reg_val >> 8) & 0xff;
	return kvmx_trunc(reg_val, insn->reg_size);
}

/*
 * The data a store writes (its low mem_size bytes), given the value of
 * register insn->reg (ignored when the source is the immediate).
 */
static inline u64 kvmx_insn_store_data(const struct kvmx_insn *insn,
				       u64 reg_val)
{
	u64 val;

	if (insn->has_imm)
		val = insn->imm;
	else
		val = kvmx_insn_reg_operand(insn, reg_val);
	val = kvmx_trunc(val, insn->mem_size);
	return insn->bswap ? kvmx_bswap(val, insn->mem_size) : val;
}

/*
 * KVMX_OP_ALU: @dst op @src at insn->mem_size, updating the arithmetic
 * flags in *@rflags (the logic ops clear AF, which the SDM leaves
 * undefined).  The operands:
 *   insn->dst_mem:  dst = the memory value,
 *                   src = kvmx_insn_store_data(insn, reg) (reg or imm);
 *                   the result is stored back to memory.
 *   otherwise:      dst = kvmx_insn_reg_operand(insn, reg),
 *                   src = the memory value; the result goes to the
 *                   register: kvmx_reg_merge(reg, res, insn->reg_size,
 *                   insn->reg_high8).
 * CMP and TEST store nothing (insn->access has no KVMX_ACCESS_WRITE).
 */
static inline u64 kvmx_insn_alu(const struct kvmx_insn *insn, u64 dst,
				u64 src, u64 *rflags)
{
	unsigned int size = insn->mem_size >= 1 && insn->mem_size <= 8 ?
			    insn->mem_size : 8;
	u64 sign = 1ULL << (8 * size - 1);
	u64 carry = *rflags & KVMX_RFLAGS_CF;
	u64 res, flags = 0;
	u8 parity;

	dst = kvmx_trunc(dst, size);
	src = kvmx_trunc(src, size);
	switch (insn->alu) {
	case KVMX_ALU_ADD:
	case KVMX_ALU_ADC:
		if (insn->alu == KVMX_ALU_ADD)
			carry = 0;
		res = kvmx_trunc(dst + src + carry, size);
		if (res < dst || (carry && res == dst))
			flags |= KVMX_RFLAGS_CF;
		if ((dst ^ res) & (src ^ res) & sign)
			flags |= KVMX_RFLAGS_OF;
		flags |= (dst ^ src ^ res) & KVMX_RFLAGS_AF;
		break;
	case KVMX_ALU_SUB:
	case KVMX_ALU_SBB:
	case KVMX_ALU_CMP:
		if (insn->alu != KVMX_ALU_SBB)
			carry = 0;
		res = kvmx_trunc(dst - src - carry, size);
		if (dst < src || (carry && dst == src))
			flags |= KVMX_RFLAGS_CF;
		if ((dst ^ src) & (dst ^ res) & sign)
			flags |= KVMX_RFLAGS_OF;
		flags |= (dst ^ src ^ res) & KVMX_RFLAGS_AF;
		break;
	case KVMX_ALU_OR:
		res = dst | src;
		break;
	case KVMX_ALU_XOR:
		res = dst ^ src;
		break;
	default:	/* AND, TEST */
		res = dst & src;
		break;
	}
	if (!res)
		flags |= KVMX_RFLAGS_ZF;
	if (res & sign)
		flags |= KVMX_RFLAGS_SF;
	parity = res & 0xff;
	parity ^= parity >> 4;
	parity ^= parity >> 2;
	parity ^= parity >> 1;
	if (!(parity & 1))
		flags |= KVMX_RFLAGS_PF;
	*rflags = (*rflags & ~KVMX_RFLAGS_ARITH) | flags;
	return res;
}

/*
 * The effective address (offset within the segment) of the memory operand,
 * given the 16 GPRs and the RIP of the next instruction.
 */
static inline u64 kvmx_insn_ea_offset(const struct kvmx_insn *insn,
				      const u64 *regs, u64 next_rip)
{
	const struct kvmx_insn_ea *ea = &insn->ea;
	u64 addr = (u64)ea->disp;

	if (ea->base < 16)
		addr += regs[ea->base];
	if (ea->index < 16)
		addr += regs[ea->index] * ea->scale;
	if (ea->rip_relative)
		addr += next_rip;
	return kvmx_trunc(addr, insn->addr_size);
}

#endif /* _KVMX_EMULATE_OPERAND_H */
