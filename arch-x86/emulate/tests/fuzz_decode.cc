// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for kvmx_decode().  The first input byte picks the CPU
 * mode and flags; the rest are the instruction bytes, copied into a buffer
 * of exactly that size so AddressSanitizer catches any read past them.
 *
 * Properties checked on every input:
 *  - the return value is 0, -ENODATA, -E2BIG or -EINVAL;
 *  - a decoded length is 1..15 and within the bytes given;
 *  - decoding is deterministic (same struct, byte for byte);
 *  - the length does not depend on bytes after the instruction, and the
 *    instruction cut one byte short asks for more (-ENODATA);
 *  - -ENODATA only when fewer than 15 bytes were given;
 *  - a supported op has consistent sizes and registers, and the operand
 *    helpers run on it (UndefinedBehaviorSanitizer watches the shifts).
 */
#include <cstdlib>
#include <cstring>

#include "operand.h"

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

static int Decode(const u8 *data, size_t n, enum kvmx_cpu_mode mode,
		  unsigned int flags, struct kvmx_insn *insn)
{
	u8 *copy = static_cast<u8 *>(malloc(n ? n : 1));
	int r;

	memcpy(copy, data, n);
	r = kvmx_decode(copy, n, mode, flags, insn);
	free(copy);
	return r;
}

static bool valid_size(u8 size)
{
	return size == 1 || size == 2 || size == 4 || size == 8;
}

static void check_semantics(const struct kvmx_insn *insn)
{
	u64 regs[16] = { 0 }, rflags = 0x2;

	CHECK(valid_size(insn->op_size));
	CHECK(insn->addr_size == 2 || insn->addr_size == 4 ||
	      insn->addr_size == 8);
	if (insn->op == KVMX_OP_UNSUPPORTED)
		return;
	CHECK(insn->has_mem);
	CHECK(valid_size(insn->mem_size));
	CHECK(insn->access & (KVMX_ACCESS_READ | KVMX_ACCESS_WRITE));
	CHECK(insn->reg < 16 || insn->reg == KVMX_REG_NONE);
	CHECK(!insn->reg_high8 || (insn->reg < 4 && insn->reg_size == 1));
	CHECK(insn->reg == KVMX_REG_NONE || valid_size(insn->reg_size));
	CHECK(insn->reg == KVMX_REG_NONE || insn->reg_size >= insn->mem_size ||
	      insn->op == KVMX_OP_MOVS);
	CHECK(insn->ea.base < 16 || insn->ea.base == KVMX_REG_NONE);
	CHECK(insn->ea.index < 16 || insn->ea.index == KVMX_REG_NONE);
	CHECK(insn->mode == KVMX_MODE_LONG64 || insn->reg < 8 ||
	      insn->reg == KVMX_REG_NONE);
	(void)kvmx_insn_load(insn, ~0ULL, 0x8899aabbccddeeffULL);
	(void)kvmx_insn_store_data(insn, 0x0123456789abcdefULL);
	(void)kvmx_insn_ea_offset(insn, regs, 0);
	if (insn->op == KVMX_OP_ALU)
		(void)kvmx_insn_alu(insn, 0x80, 0x7f, &rflags);
}

extern "C" int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct kvmx_insn a, b;
	enum kvmx_cpu_mode mode;
	unsigned int flags;
	int r, r2;

	if (!size)
		return 0;
	mode = (enum kvmx_cpu_mode)(data[0] & 3);
	flags = (data[0] & 4) ? KVMX_DECODE_INTEL : 0;
	data++;
	size--;

	r = Decode(data, size, mode, flags, &a);
	CHECK(r == 0 || r == -ENODATA || r == -E2BIG || r == -EINVAL);
	r2 = Decode(data, size, mode, flags, &b);
	CHECK(r2 == r && !memcmp(&a, &b, sizeof(a)));
	if (r == -ENODATA)
		CHECK(size < KVMX_INSN_MAX_LEN);
	if (r)
		return 0;

	CHECK(a.len >= 1 && a.len <= KVMX_INSN_MAX_LEN && a.len <= size);
	CHECK(a.imm_size <= 8);
	r2 = Decode(data, a.len, mode, flags, &b);
	CHECK(r2 == 0 && !memcmp(&a, &b, sizeof(a)));
	r2 = Decode(data, a.len - 1, mode, flags, &b);
	CHECK(r2 == -ENODATA);
	check_semantics(&a);
	return 0;
}
