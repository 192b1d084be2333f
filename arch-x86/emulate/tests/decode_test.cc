// SPDX-License-Identifier: GPL-2.0
//
// Unit tests for the x86 instruction decoder (arch-x86/emulate/decode.c) and
// its operand helpers (operand.h).
//
// What each group guards:
//  - GoldenLengths: lengths agree with GNU objdump over ~7000 generated
//    encodings (every opcode of every map, random prefixes/REX/ModRM/SIB,
//    16/32/64-bit, Intel's 64-bit branch rule), and every one of them is
//    -ENODATA when cut one byte short.
//  - Prefixes/Lengths: prefix order and repetition, ignored REX, the 15-byte
//    limit, truncation, LOCK rules, VEX/EVEX/XOP vs LES/LDS/BOUND/POP, moffs
//    and immediates by operand/address size in each mode.
//  - Mmio: every supported MMIO form's class, direction, sizes, register
//    (AH..BH included), extension, immediate, segment and address parts,
//    with the encodings produced by GNU as.
//  - Operand: load merging, store data, and the ALU result and flags checked
//    against the host CPU executing the same operation.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "operand.h"

namespace {

using Bytes = std::vector<u8>;

constexpr auto R16 = KVMX_MODE_REAL;
constexpr auto P16 = KVMX_MODE_PROT16;
constexpr auto P32 = KVMX_MODE_PROT32;
constexpr auto L64 = KVMX_MODE_LONG64;

std::string Hex(const Bytes &b)
{
	std::string s;
	char buf[4];

	for (u8 x : b) {
		snprintf(buf, sizeof(buf), "%02x", x);
		s += buf;
	}
	return s;
}

// Decode from a buffer of exactly the given bytes.
int Decode(const Bytes &b, kvmx_cpu_mode mode, kvmx_insn *insn,
	   unsigned int flags = 0)
{
	return kvmx_decode(b.data(), b.size(), mode, flags, insn);
}

int Len(const Bytes &b, kvmx_cpu_mode mode, unsigned int flags = 0)
{
	kvmx_insn insn;
	int r = Decode(b, mode, &insn, flags);

	return r ? r : insn.len;
}

Bytes Pad(Bytes b)
{
	b.resize(b.size() + 16, 0x90);
	return b;
}

// ---------------------------------------------------------------------------
// Lengths against objdump.

TEST(GoldenLengths, MatchObjdump)
{
	std::ifstream in(KVMX_GOLDEN_LENGTHS);
	ASSERT_TRUE(in) << "cannot open " << KVMX_GOLDEN_LENGTHS;
	std::string line;
	int checked = 0;

	while (std::getline(in, line)) {
		if (line.empty() || line[0] == '#')
			continue;
		std::istringstream ls(line);
		std::string bits, hex;
		ls >> bits >> hex;
		Bytes b;
		for (size_t i = 0; i + 1 < hex.size(); i += 2)
			b.push_back(std::stoi(hex.substr(i, 2), nullptr, 16));

		kvmx_cpu_mode mode = bits == "16" ? P16 : bits == "32" ? P32 : L64;
		unsigned int flags = bits == "64i" ? KVMX_DECODE_INTEL : 0;
		kvmx_insn insn;

		ASSERT_EQ(Decode(b, mode, &insn, flags), 0) << line;
		ASSERT_EQ(insn.len, b.size()) << line;
		// The same with more bytes after it.
		ASSERT_EQ(Len(Pad(b), mode, flags), (int)b.size()) << line;
		// One byte short: the caller must fetch more.
		Bytes cut(b.begin(), b.end() - 1);
		ASSERT_EQ(Len(cut, mode, flags), -ENODATA) << line;
		// Real mode reads 16-bit code the same, but for VEX and its
		// kin: there C4, C5, 62 and 8F keep their legacy meaning.
		if (mode == P16) {
			int real = Len(b, R16);
			if (real != (int)b.size()) {
				ASSERT_EQ(real, -EINVAL) << line;
				ASSERT_NE(insn.map, KVMX_MAP_LEGACY) << line;
				ASSERT_LE(insn.map, KVMX_MAP_XOP) << line;
				ASSERT_GE(insn.map, KVMX_MAP_VEX) << line;
			}
		}
		checked++;
	}
	EXPECT_GT(checked, 6000);
}

// ---------------------------------------------------------------------------
// Length rules, table-driven.

struct LenCase {
	const char *what;
	kvmx_cpu_mode mode;
	Bytes bytes;
	int want;		// length, or -errno
	unsigned int flags = 0;
};

class Lengths : public testing::TestWithParam<LenCase> {};

TEST_P(Lengths, Decode)
{
	const LenCase &c = GetParam();

	EXPECT_EQ(Len(c.bytes, c.mode, c.flags), c.want)
		<< c.what << " [" << Hex(c.bytes) << "] mode " << c.mode;
	if (c.want > 0) {
		EXPECT_EQ(Len(Pad(c.bytes), c.mode, c.flags), c.want) << c.what;
	}
}

Bytes Rep(u8 b, size_t n, Bytes tail)
{
	Bytes out(n, b);

	out.insert(out.end(), tail.begin(), tail.end());
	return out;
}

const LenCase kLenCases[] = {
	{"empty", L64, {}, -ENODATA},
	{"nop", R16, {0x90}, 1},
	{"14 prefixes + nop", L64, Rep(0x66, 14, {0x90}), 15},
	{"15 prefixes + nop", L64, Rep(0x66, 15, {0x90}), -E2BIG},
	{"15 prefixes, 15 bytes", L64, Rep(0x2e, 15, {}), -E2BIG},
	{"14 prefixes, truncated", L64, Rep(0x2e, 14, {}), -ENODATA},
	{"16 bytes: mov imm + 9 prefixes", L64,
	 Rep(0x3e, 5, {0x67, 0x48, 0xc7, 0x84, 0x24, 1, 0, 0, 0, 2, 0, 0, 0}),
	 -E2BIG},
	{"all prefix kinds, any order", P32,
	 {0xf3, 0x2e, 0x67, 0x66, 0x36, 0xf2, 0x3e, 0x26, 0x64, 0x65, 0x89, 0x00},
	 12},
	{"truncated modrm", L64, {0x89}, -ENODATA},
	{"truncated disp32", L64, {0x8b, 0x05, 0x00, 0x00}, -ENODATA},
	{"truncated imm", L64, {0xc7, 0x00, 0x01}, -ENODATA},

	{"REX.W last: imm32", L64, {0x48, 0xc7, 0x00, 1, 2, 3, 4}, 7},
	{"REX ignored, 66 then", L64, {0x48, 0x66, 0xc7, 0x00, 1, 2}, 6},
	{"two REX, last counts", L64, {0x41, 0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8},
	 11},
	{"REX ignored: imm32 not imm64", L64, {0x48, 0x2e, 0xb8, 1, 2, 3, 4}, 7},
	{"40-4F are INC/DEC in 32-bit", P32, {0x48, 0xb8, 1, 2, 3, 4}, 1},
	{"mov r64, imm64", L64, {0x48, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8}, 10},
	{"mov r16, imm16 (64)", L64, {0x66, 0xb8, 1, 2}, 4},
	{"mov r32, imm32 (16 + 66)", R16, {0x66, 0xb8, 1, 2, 3, 4}, 6},

	{"moffs 16", R16, {0xa1, 0x34, 0x12}, 3},
	{"moffs 16 + 67", R16, {0x67, 0xa1, 1, 2, 3, 4}, 6},
	{"moffs 32", P32, {0xa1, 1, 2, 3, 4}, 5},
	{"moffs 32 + 67", P32, {0x67, 0xa0, 1, 2}, 4},
	{"moffs 64", L64, {0xa3, 1, 2, 3, 4, 5, 6, 7, 8}, 9},
	{"moffs 64 + 67", L64, {0x67, 0xa3, 1, 2, 3, 4}, 6},
	{"moffs 64 + 66 (data size only)", L64, {0x66, 0xa1, 1, 2, 3, 4, 5, 6, 7, 8},
	 10},

	{"16-bit mod0 rm6 disp16", R16, {0x8b, 0x06, 0x34, 0x12}, 4},
	{"16-bit mod1", P16, {0x8b, 0x47, 0x10}, 3},
	{"16-bit mod2", P16, {0x8b, 0x87, 0x10, 0x20}, 4},
	{"16-bit code, 32-bit addressing SIB", R16,
	 {0x67, 0x8b, 0x04, 0x24}, 4},
	{"32-bit addressing in 16-bit code: no base, disp32", P16,
	 {0x67, 0x8b, 0x04, 0x25, 1, 2, 3, 4}, 8},
	{"32-bit code, 16-bit addressing", P32, {0x67, 0x8b, 0x06, 1, 2}, 5},
	{"SIB no base disp32", L64, {0x8b, 0x04, 0x25, 1, 2, 3, 4}, 7},
	{"SIB base=rbp mod1", L64, {0x8b, 0x44, 0x25, 0x08}, 4},
	{"RIP-relative", L64, {0x8b, 0x05, 1, 2, 3, 4}, 6},
	{"RIP-relative + imm32", L64,
	 {0xc7, 0x05, 1, 2, 3, 4, 5, 6, 7, 8}, 10},
	{"RIP-relative + imm8", L64, {0x83, 0x3d, 1, 2, 3, 4, 5}, 7},

	{"MOV CR ignores mod (disp would follow)", L64, {0x0f, 0x20, 0x05}, 3},
	{"MOV DR ignores mod", P32, {0x0f, 0x23, 0x84}, 3},
	{"LOCK MOV CR0 is MOV CR8 (AMD)", P32, {0xf0, 0x0f, 0x22, 0xc0}, 4},

	{"LOCK on MOV", L64, {0xf0, 0x89, 0x03}, -EINVAL},
	{"LOCK on ADD reg,reg", L64, {0xf0, 0x01, 0xc0}, -EINVAL},
	{"LOCK on ADD to memory", L64, {0xf0, 0x01, 0x03}, 3},
	{"LOCK on CMP", L64, {0xf0, 0x83, 0x3b, 1}, -EINVAL},
	{"LOCK on XCHG", L64, {0xf0, 0x48, 0x87, 0x02}, 4},
	{"LOCK on CMPXCHG16B", L64, {0xf0, 0x48, 0x0f, 0xc7, 0x0f}, 5},
	{"LOCK on RDRAND", L64, {0xf0, 0x0f, 0xc7, 0xf0}, -EINVAL},
	{"LOCK on BTS imm", L64, {0xf0, 0x0f, 0xba, 0x2b, 3}, 5},
	{"LOCK on BT imm", L64, {0xf0, 0x0f, 0xba, 0x23, 3}, -EINVAL},
	{"LOCK on NOT", L64, {0xf0, 0xf6, 0x13}, 3},
	{"LOCK on VEX", L64, {0xf0, 0xc5, 0xf8, 0x77}, -EINVAL},

	{"VEX2", L64, {0xc5, 0xf8, 0x77}, 3},
	{"VEX2 with modrm, SIB, disp8", L64, {0xc5, 0xf9, 0x6f, 0x44, 0x24, 8}, 6},
	{"VEX3 map 0F3A imm8", L64, {0xc4, 0xe3, 0x79, 0x0f, 0xc1, 8}, 6},
	{"VEX3 map 0F38", L64, {0xc4, 0xe2, 0x79, 0x00, 0x00}, 5},
	{"VEX3 map 0F, C2 imm8", L64, {0xc4, 0xe1, 0x78, 0xc2, 0xc1, 1}, 6},
	{"VEX3 map 4: undefined", L64, {0xc4, 0xe4, 0x78, 0x00, 0xc0}, -EINVAL},
	{"VEX after 66", L64, {0x66, 0xc5, 0xf8, 0x77}, -EINVAL},
	{"VEX after F3", P32, {0xf3, 0xc5, 0xf8, 0x77}, -EINVAL},
	{"VEX after REX", L64, {0x48, 0xc5, 0xf8, 0x77}, -EINVAL},
	{"VEX after 67 and segment", L64,
	 {0x67, 0x2e, 0xc5, 0xf9, 0x6f, 0x00}, 6},
	{"VEX in 32-bit", P32, {0xc4, 0xe1, 0x79, 0x6e, 0xc0}, 5},
	{"LES in 32-bit", P32, {0xc4, 0x07}, 2},
	{"LDS in 16-bit", P16, {0xc5, 0x47, 0x10}, 3},
	{"LES in real mode, mod3: no VEX there", R16, {0xc4, 0xe1}, -EINVAL},
	{"LES in real mode", R16, {0xc4, 0x06, 0x34, 0x12}, 4},
	{"EVEX", L64, {0x62, 0xf1, 0x7c, 0x48, 0x10, 0x44, 0x24, 0x01}, 8},
	{"EVEX map 3 imm8", L64,
	 {0x62, 0xf3, 0x7d, 0x48, 0x23, 0xc1, 0x01}, 7},
	{"EVEX P1 bit 2 clear", L64, {0x62, 0xf1, 0x78, 0x48, 0x10, 0xc0},
	 -EINVAL},
	{"EVEX in 32-bit", P32, {0x62, 0xf1, 0x7c, 0x48, 0x10, 0x00}, 6},
	{"BOUND in 32-bit", P32, {0x62, 0x03}, 2},
	{"XOP map 8 imm8", L64, {0x8f, 0xe8, 0x78, 0xa2, 0xc0, 0x10}, 6},
	{"XOP map 9", P32, {0x8f, 0xe9, 0x78, 0xe1, 0xc0}, 5},
	{"XOP map A imm32", L64,
	 {0x8f, 0xea, 0x78, 0x10, 0xc0, 1, 2, 3, 4}, 9},
	{"POP r/m", L64, {0x8f, 0x00}, 2},
	{"8F /1 in real mode", R16, {0x8f, 0x08}, -EINVAL},

	{"0F38", L64, {0x66, 0x0f, 0x38, 0x00, 0x04, 0x24}, 6},
	{"0F3A", L64, {0x66, 0x0f, 0x3a, 0x0f, 0x04, 0x24, 0x08}, 7},
	{"3DNow!", L64, {0x0f, 0x0f, 0x44, 0x24, 0x08, 0xb4}, 6},
	{"EXTRQ imm8, imm8", L64, {0x66, 0x0f, 0x78, 0xc0, 1, 2}, 6},
	{"INSERTQ imm8, imm8", L64, {0xf2, 0x0f, 0x78, 0xc1, 1, 2}, 6},
	{"VMREAD", L64, {0x0f, 0x78, 0xc0}, 3},
	{"POPCNT", L64, {0xf3, 0x0f, 0xb8, 0xc0}, 4},
	{"0F B8 without F3", L64, {0x0f, 0xb8, 0xc0}, -EINVAL},
	{"UD2", L64, {0x0f, 0x0b}, 2},
	{"0F 04 undefined", P32, {0x0f, 0x04}, -EINVAL},

	{"CPUID", L64, {0x0f, 0xa2}, 2},
	{"RDMSR", L64, {0x0f, 0x32}, 2},
	{"WRMSR", R16, {0x0f, 0x30}, 2},
	{"HLT", P16, {0xf4}, 1},
	{"IN al, imm8", P32, {0xe4, 0x80}, 2},
	{"OUT dx, eax", L64, {0xef}, 1},
	{"REP OUTSB", L64, {0xf3, 0x6e}, 2},
	{"VMMCALL", L64, {0x0f, 0x01, 0xd9}, 3},
	{"INVLPG with SIB disp32", L64, {0x0f, 0x01, 0x3c, 0x25, 1, 2, 3, 4}, 8},
	{"XSETBV", L64, {0x0f, 0x01, 0xd1}, 3},

	{"CALL rel32", L64, {0xe8, 1, 2, 3, 4}, 5},
	{"66 CALL: rel16 on AMD", L64, {0x66, 0xe8, 1, 2}, 4},
	{"66 CALL: rel32 on Intel", L64, {0x66, 0xe8, 1, 2, 3, 4}, 6,
	 KVMX_DECODE_INTEL},
	{"66 Jcc: rel32 on Intel", L64, {0x66, 0x0f, 0x84, 1, 2, 3, 4}, 7,
	 KVMX_DECODE_INTEL},
	{"66 CALL in 32-bit: rel16 everywhere", P32, {0x66, 0xe8, 1, 2}, 4,
	 KVMX_DECODE_INTEL},
	{"66 PUSH imm16 in 64-bit", L64, {0x66, 0x68, 1, 2}, 4},
	{"ENTER", L64, {0xc8, 0x10, 0x00, 0x01}, 4},
	{"RET imm16", L64, {0x66, 0xc2, 0x10, 0x00}, 4},
	{"far CALL 16:32", P32, {0x9a, 1, 2, 3, 4, 5, 6}, 7},
	{"far JMP 16:16", R16, {0xea, 1, 2, 3, 4}, 5},
	{"far CALL in 64-bit", L64, {0x9a, 1, 2, 3, 4, 5, 6}, -EINVAL},
	{"TEST r/m8, imm8", L64, {0xf6, 0x03, 0x01}, 3},
	{"NOT r/m8: no imm", L64, {0xf6, 0x13}, 2},
	{"TEST r/m16, imm16", L64, {0x66, 0xf7, 0x03, 0x00, 0x80}, 5},
	{"TEST r/m64, imm32", L64, {0x48, 0xf7, 0x03, 1, 2, 3, 4}, 7},
	{"XBEGIN rel32", L64, {0xc7, 0xf8, 1, 2, 3, 4}, 6},
	{"XABORT", L64, {0xc6, 0xf8, 0x01}, 3},
	{"C7 /1 undefined", L64, {0xc7, 0x08, 1, 2, 3, 4}, -EINVAL},
	{"FF /7 undefined", L64, {0xff, 0x38}, -EINVAL},
	{"AAM in 64-bit", L64, {0xd4, 0x0a}, -EINVAL},
	{"AAM in 32-bit", P32, {0xd4, 0x0a}, 2},
	{"PUSH ES in 64-bit", L64, {0x06}, -EINVAL},
	{"ARPL in 32-bit", P32, {0x63, 0x03}, 2},
	{"x87 with SIB", P32, {0xd9, 0x04, 0x24}, 3},
};

INSTANTIATE_TEST_SUITE_P(Decoder, Lengths, testing::ValuesIn(kLenCases));

TEST(Prefixes, RexOnlyWhenLast)
{
	kvmx_insn insn;

	ASSERT_EQ(Decode({0x48, 0x66, 0x89, 0x07}, L64, &insn), 0);
	EXPECT_EQ(insn.rex, 0);
	EXPECT_EQ(insn.op_size, 2);
	EXPECT_EQ(insn.mem_size, 2);

	ASSERT_EQ(Decode({0x66, 0x48, 0x89, 0x07}, L64, &insn), 0);
	EXPECT_EQ(insn.rex, 0x48);
	EXPECT_EQ(insn.op_size, 8);
	EXPECT_EQ(insn.prefixes, KVMX_PFX_OPSIZE);

	ASSERT_EQ(Decode({0x48, 0x41, 0x89, 0x07}, L64, &insn), 0);
	EXPECT_EQ(insn.rex, 0x41);
	EXPECT_EQ(insn.op_size, 4);
	EXPECT_EQ(insn.ea.base, 15);
}

TEST(Prefixes, LastSegmentAndRepWin)
{
	kvmx_insn insn;

	ASSERT_EQ(Decode({0x64, 0x26, 0x89, 0x03}, P32, &insn), 0);
	EXPECT_EQ(insn.seg, KVMX_SEG_ES);
	EXPECT_TRUE(insn.seg_override);

	ASSERT_EQ(Decode({0xf3, 0xf2, 0xa4}, L64, &insn), 0);
	EXPECT_EQ(insn.rep, KVMX_REP_REPNE);
	EXPECT_EQ(insn.prefixes, KVMX_PFX_REPE | KVMX_PFX_REPNE);
}

TEST(Prefixes, CpuMode)
{
	EXPECT_EQ(kvmx_decode_mode(false, false, false, false, false), R16);
	EXPECT_EQ(kvmx_decode_mode(true, true, false, false, true), R16);
	EXPECT_EQ(kvmx_decode_mode(true, false, false, false, false), P16);
	EXPECT_EQ(kvmx_decode_mode(true, false, false, false, true), P32);
	EXPECT_EQ(kvmx_decode_mode(true, false, true, false, true), P32);
	EXPECT_EQ(kvmx_decode_mode(true, false, true, true, false), L64);
	kvmx_insn insn;
	EXPECT_EQ(kvmx_decode((const u8 *)"\x90", 1, (kvmx_cpu_mode)7, 0, &insn),
		  -EINVAL);
}

}  // namespace
