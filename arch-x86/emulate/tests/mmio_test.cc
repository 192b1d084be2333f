// SPDX-License-Identifier: GPL-2.0
//
// The MMIO side of the decoder: for every supported form, what the
// hypervisor needs to fill KVM_EXIT_MMIO and complete it (class, direction,
// size, register, extension, immediate, segment, address parts), and the
// operand helpers that apply the result.  Encodings come from GNU as (the
// AT&T text is each row's name).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "operand.h"

namespace {

using Bytes = std::vector<u8>;

constexpr auto R16 = KVMX_MODE_REAL;
constexpr auto P32 = KVMX_MODE_PROT32;
constexpr auto L64 = KVMX_MODE_LONG64;
constexpr u8 NONE = KVMX_REG_NONE;
constexpr u8 RD = KVMX_ACCESS_READ;
constexpr u8 WR = KVMX_ACCESS_WRITE;
constexpr u8 RW = KVMX_ACCESS_READ | KVMX_ACCESS_WRITE;

struct MmioCase {
	const char *what;
	kvmx_cpu_mode mode;
	Bytes bytes;
	u8 op;
	u8 access;
	u8 mem_size;
	u8 reg;
	u8 reg_size;
	bool high8 = false;
	u8 ext = KVMX_EXT_NONE;
};

class Mmio : public testing::TestWithParam<MmioCase> {};

TEST_P(Mmio, Decode)
{
	const MmioCase &c = GetParam();
	kvmx_insn insn;

	ASSERT_EQ(kvmx_decode(c.bytes.data(), c.bytes.size(), c.mode, 0, &insn),
		  0) << c.what;
	EXPECT_EQ(insn.len, c.bytes.size()) << c.what;
	EXPECT_EQ(insn.op, c.op) << c.what;
	EXPECT_TRUE(insn.has_mem) << c.what;
	EXPECT_EQ(insn.access, c.access) << c.what;
	EXPECT_EQ(insn.mem_size, c.mem_size) << c.what;
	EXPECT_EQ(insn.reg, c.reg) << c.what;
	if (c.reg != NONE) {
		EXPECT_EQ(insn.reg_size, c.reg_size) << c.what;
		EXPECT_EQ(insn.reg_high8, c.high8) << c.what;
	}
	EXPECT_EQ(insn.ext, c.ext) << c.what;
}

const MmioCase kMmioCases[] = {
	{"mov %eax,(%rbx)", L64, {0x89, 0x03}, KVMX_OP_MOV, WR, 4, 0, 4},
	{"mov %rax,0x10(%rbx)", L64, {0x48, 0x89, 0x43, 0x10}, KVMX_OP_MOV, WR,
	 8, 0, 8},
	{"mov %ax,(%rbx,%rcx,4)", L64, {0x66, 0x89, 0x04, 0x8b}, KVMX_OP_MOV,
	 WR, 2, 0, 2},
	{"mov %al,(%rdi)", L64, {0x88, 0x07}, KVMX_OP_MOV, WR, 1, 0, 1},
	{"mov %ah,(%rdi)", L64, {0x88, 0x27}, KVMX_OP_MOV, WR, 1, 0, 1, true},
	{"mov %sil,(%rdi)", L64, {0x40, 0x88, 0x37}, KVMX_OP_MOV, WR, 1, 6, 1},
	{"mov %r9b,(%rdi)", L64, {0x44, 0x88, 0x0f}, KVMX_OP_MOV, WR, 1, 9, 1},
	{"mov (%rsi),%r10d", L64, {0x44, 0x8b, 0x16}, KVMX_OP_MOV, RD, 4, 10, 4},
	{"mov 0x1234(%rip),%rcx", L64, {0x48, 0x8b, 0x0d, 0x34, 0x12, 0, 0},
	 KVMX_OP_MOV, RD, 8, 1, 8},
	{"mov (%rsi),%dh", L64, {0x8a, 0x36}, KVMX_OP_MOV, RD, 1, 2, 1, true},
	{"mov (%rsi),%bpl", L64, {0x40, 0x8a, 0x2e}, KVMX_OP_MOV, RD, 1, 5, 1},
	{"mov (%r12),%r15w", L64, {0x66, 0x45, 0x8b, 0x3c, 0x24}, KVMX_OP_MOV,
	 RD, 2, 15, 2},
	{"movb $0x80,(%rdx)", L64, {0xc6, 0x02, 0x80}, KVMX_OP_MOV, WR, 1, NONE,
	 0},
	{"movw $0xfffe,(%rdx)", L64, {0x66, 0xc7, 0x02, 0xfe, 0xff},
	 KVMX_OP_MOV, WR, 2, NONE, 0},
	{"movq $-2,(%rdx)", L64, {0x48, 0xc7, 0x02, 0xfe, 0xff, 0xff, 0xff},
	 KVMX_OP_MOV, WR, 8, NONE, 0},
	{"movabs 0x1122334455667788,%al", L64,
	 {0xa0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}, KVMX_OP_MOV,
	 RD, 1, 0, 1},
	{"movabs 0x1122334455667788,%rax", L64,
	 {0x48, 0xa1, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11},
	 KVMX_OP_MOV, RD, 8, 0, 8},
	{"movabs %eax,0x1122334455667788", L64,
	 {0xa3, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}, KVMX_OP_MOV,
	 WR, 4, 0, 4},
	{"movzbl (%rax),%ecx", L64, {0x0f, 0xb6, 0x08}, KVMX_OP_MOV, RD, 1, 1,
	 4, false, KVMX_EXT_ZERO},
	{"movzwq (%rax),%r8", L64, {0x4c, 0x0f, 0xb7, 0x00}, KVMX_OP_MOV, RD, 2,
	 8, 8, false, KVMX_EXT_ZERO},
	{"movsbw (%rax),%dx", L64, {0x66, 0x0f, 0xbe, 0x10}, KVMX_OP_MOV, RD, 1,
	 2, 2, false, KVMX_EXT_SIGN},
	{"movswl (%rax),%eax", L64, {0x0f, 0xbf, 0x00}, KVMX_OP_MOV, RD, 2, 0,
	 4, false, KVMX_EXT_SIGN},
	{"movsbq (%rax),%rax", L64, {0x48, 0x0f, 0xbe, 0x00}, KVMX_OP_MOV, RD,
	 1, 0, 8, false, KVMX_EXT_SIGN},
	{"movzbl (%rax),%esp: no high byte with 0F B6's dest", L64,
	 {0x0f, 0xb6, 0x20}, KVMX_OP_MOV, RD, 1, 4, 4, false, KVMX_EXT_ZERO},
	{"movslq (%rax),%r11", L64, {0x4c, 0x63, 0x18}, KVMX_OP_MOV, RD, 4, 11,
	 8, false, KVMX_EXT_SIGN},
	{"movsxd (%rax),%eax", L64, {0x63, 0x00}, KVMX_OP_MOV, RD, 4, 0, 4},
	{"movnti %ecx,(%rdi)", L64, {0x0f, 0xc3, 0x0f}, KVMX_OP_MOV, WR, 4, 1,
	 4},
	{"movnti %r8,(%rdi)", L64, {0x4c, 0x0f, 0xc3, 0x07}, KVMX_OP_MOV, WR, 8,
	 8, 8},
	{"movbe (%rsi),%eax", L64, {0x0f, 0x38, 0xf0, 0x06}, KVMX_OP_MOV, RD, 4,
	 0, 4},
	{"movbe %r9w,(%rsi)", L64, {0x66, 0x44, 0x0f, 0x38, 0xf1, 0x0e},
	 KVMX_OP_MOV, WR, 2, 9, 2},
	{"rep movsb", L64, {0xf3, 0xa4}, KVMX_OP_MOVS, RW, 1, NONE, 0},
	{"rep movsq", L64, {0xf3, 0x48, 0xa5}, KVMX_OP_MOVS, RW, 8, NONE, 0},
	{"addr32 rep stosl", L64, {0x67, 0xf3, 0xab}, KVMX_OP_STOS, WR, 4, 0, 4},
	{"stosw", L64, {0x66, 0xab}, KVMX_OP_STOS, WR, 2, 0, 2},
	{"lodsb", L64, {0xac}, KVMX_OP_LODS, RD, 1, 0, 1},
	{"rep lods %fs:(%rsi),%rax", L64, {0x64, 0xf3, 0x48, 0xad},
	 KVMX_OP_LODS, RD, 8, 0, 8},
	{"xchg %ecx,(%rdx)", L64, {0x87, 0x0a}, KVMX_OP_XCHG, RW, 4, 1, 4},
	{"xchg (%rdx),%bh", L64, {0x86, 0x3a}, KVMX_OP_XCHG, RW, 1, 3, 1, true},
	{"lock xchg %rax,(%rdx)", L64, {0xf0, 0x48, 0x87, 0x02}, KVMX_OP_XCHG,
	 RW, 8, 0, 8},
	{"add %ecx,(%rdx)", L64, {0x01, 0x0a}, KVMX_OP_ALU, RW, 4, 1, 4},
	{"or (%rdx),%r8", L64, {0x4c, 0x0b, 0x02}, KVMX_OP_ALU, RD, 8, 8, 8},
	{"andb $0xf,(%rdx)", L64, {0x80, 0x22, 0x0f}, KVMX_OP_ALU, RW, 1, NONE,
	 0},
	{"subl $-1,(%rdx)", L64, {0x83, 0x2a, 0xff}, KVMX_OP_ALU, RW, 4, NONE,
	 0},
	{"cmpq $0x12345678,(%rdx)", L64,
	 {0x48, 0x81, 0x3a, 0x78, 0x56, 0x34, 0x12}, KVMX_OP_ALU, RD, 8, NONE,
	 0},
	{"xor %al,(%rdx)", L64, {0x30, 0x02}, KVMX_OP_ALU, RW, 1, 0, 1},
	{"test %edx,(%rbx)", L64, {0x85, 0x13}, KVMX_OP_ALU, RD, 4, 2, 4},
	{"testw $0x8000,(%rbx)", L64, {0x66, 0xf7, 0x03, 0x00, 0x80},
	 KVMX_OP_ALU, RD, 2, NONE, 0},
	{"lock orl $1,(%rbx)", L64, {0xf0, 0x83, 0x0b, 0x01}, KVMX_OP_ALU, RW,
	 4, NONE, 0},
	{"sbb (%rbx),%ah", L64, {0x1a, 0x23}, KVMX_OP_ALU, RD, 1, 0, 1, true},
	{"cmp (%rbx),%ebx", L64, {0x3b, 0x1b}, KVMX_OP_ALU, RD, 4, 3, 4},

	{"mov %ax,(%ebx) [32]", P32, {0x66, 0x89, 0x03}, KVMX_OP_MOV, WR, 2, 0,
	 2},
	{"mov 0(%ebp),%ah [32]", P32, {0x8a, 0x65, 0x00}, KVMX_OP_MOV, RD, 1, 0,
	 1, true},
	{"movzbw (%eax),%cx [32]", P32, {0x66, 0x0f, 0xb6, 0x08}, KVMX_OP_MOV,
	 RD, 1, 1, 2, false, KVMX_EXT_ZERO},
	{"movl $0x12345678,%fs:4(%esp) [32]", P32,
	 {0x64, 0xc7, 0x44, 0x24, 0x04, 0x78, 0x56, 0x34, 0x12}, KVMX_OP_MOV,
	 WR, 4, NONE, 0},
	{"addr16 rep stosb [32]", P32, {0x67, 0xf3, 0xaa}, KVMX_OP_STOS, WR, 1,
	 0, 1},
	{"mov %eax,(%bx,%si) [16]", R16, {0x66, 0x89, 0x00}, KVMX_OP_MOV, WR, 4,
	 0, 4},
	{"mov 0x10(%bp,%di),%cl [16]", R16, {0x8a, 0x4b, 0x10}, KVMX_OP_MOV,
	 RD, 1, 1, 1},
	{"mov 0x1234,%ax [16]", R16, {0xa1, 0x34, 0x12}, KVMX_OP_MOV, RD, 2, 0,
	 2},
	{"movw $0x1234,%es:0x5678 [16]", R16,
	 {0x26, 0xc7, 0x06, 0x78, 0x56, 0x34, 0x12}, KVMX_OP_MOV, WR, 2, NONE,
	 0},
	{"rep movsw [16]", R16, {0xf3, 0xa5}, KVMX_OP_MOVS, RW, 2, NONE, 0},
	{"lodsl [16]", R16, {0x66, 0xad}, KVMX_OP_LODS, RD, 4, 0, 4},
};

INSTANTIATE_TEST_SUITE_P(Decoder, Mmio, testing::ValuesIn(kMmioCases));

kvmx_insn Decode(const Bytes &b, kvmx_cpu_mode mode = L64)
{
	kvmx_insn insn;

	EXPECT_EQ(kvmx_decode(b.data(), b.size(), mode, 0, &insn), 0);
	return insn;
}

TEST(MmioForms, NotEmulated)
{
	// Register forms, LEA, ARPL, MOVSXD outside 64-bit, SSE moves.
	const std::pair<Bytes, kvmx_cpu_mode> cases[] = {
		{{0x89, 0xc0}, L64},
		{{0x8d, 0x03}, L64},
		{{0x63, 0x03}, P32},
		{{0x0f, 0x10, 0x00}, L64},
		{{0xc5, 0xf9, 0x6f, 0x00}, L64},
		{{0xff, 0x00}, L64},
		{{0xf2, 0x0f, 0x38, 0xf0, 0x00}, L64},	// CRC32
	};

	for (const auto &[b, mode] : cases)
		EXPECT_EQ(Decode(b, mode).op, KVMX_OP_UNSUPPORTED);
}

TEST(MmioForms, ImmediatesAndOffsets)
{
	kvmx_insn i = Decode({0x48, 0xc7, 0x02, 0xfe, 0xff, 0xff, 0xff});
	EXPECT_TRUE(i.has_imm);
	EXPECT_EQ(i.imm, 0xfffffffffffffffeULL);
	EXPECT_EQ(kvmx_insn_store_data(&i, 0), 0xfffffffffffffffeULL);

	i = Decode({0x66, 0xc7, 0x02, 0xfe, 0xff});
	EXPECT_EQ(kvmx_insn_store_data(&i, 0), 0xfffeULL);

	i = Decode({0x83, 0x2a, 0xff});
	EXPECT_EQ(i.imm_size, 1);
	EXPECT_EQ(kvmx_trunc(i.imm, 4), 0xffffffffULL);

	i = Decode({0xa0, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x91});
	EXPECT_EQ((u64)i.ea.disp, 0x9122334455667788ULL);
	EXPECT_EQ(i.ea.base, NONE);
	EXPECT_EQ(i.addr_size, 8);

	i = Decode({0x67, 0xa1, 0x44, 0x33, 0x22, 0x91});
	EXPECT_EQ((u64)i.ea.disp, 0x91223344ULL);
	EXPECT_EQ(i.addr_size, 4);

	i = Decode({0x67, 0xa0, 0x22, 0x91}, P32);
	EXPECT_EQ((u64)i.ea.disp, 0x9122ULL);
	EXPECT_EQ(i.addr_size, 2);
}

TEST(MmioForms, EffectiveAddress)
{
	u64 regs[16];

	for (int r = 0; r < 16; r++)
		regs[r] = 0x1000ULL * (r + 1);

	// mov 0x1234(%rip),%rcx
	kvmx_insn i = Decode({0x48, 0x8b, 0x0d, 0x34, 0x12, 0, 0});
	EXPECT_TRUE(i.ea.rip_relative);
	EXPECT_EQ(kvmx_insn_ea_offset(&i, regs, 0x400000 + i.len), 0x40123bULL);

	// mov 0x8(,%r14,8),%eax
	i = Decode({0x42, 0x8b, 0x04, 0xf5, 0x08, 0, 0, 0});
	EXPECT_EQ(i.ea.base, NONE);
	EXPECT_EQ(i.ea.index, 14);
	EXPECT_EQ(i.ea.scale, 8);
	EXPECT_EQ(kvmx_insn_ea_offset(&i, regs, 0), 0xf000ULL * 8 + 8);

	// mov -0x10(%rbx,%rcx,4),%ax
	i = Decode({0x66, 0x8b, 0x44, 0x8b, 0xf0});
	EXPECT_EQ(kvmx_insn_ea_offset(&i, regs, 0), 0x4000ULL + 0x2000 * 4 - 16);

	// mov (%rax,%riz,1): SIB index 4 is "none"
	i = Decode({0x8b, 0x04, 0x20});
	EXPECT_EQ(i.ea.index, NONE);
	// ... but with REX.X it is r12
	i = Decode({0x42, 0x8b, 0x04, 0x20});
	EXPECT_EQ(i.ea.index, 12);

	// mov %eax,(%eax) with 67: truncated to 32 bits
	regs[0] = 0x1'0000'0010ULL;
	i = Decode({0x67, 0x89, 0x40, 0xf8});
	EXPECT_EQ(kvmx_insn_ea_offset(&i, regs, 0), 0x8ULL);

	// 16-bit: mov 0x10(%bp,%di),%cl wraps at 64K, default SS
	regs[5] = 0xfff0;
	regs[7] = 0x0008;
	i = Decode({0x8a, 0x4b, 0x10}, R16);
	EXPECT_EQ(i.ea.base, 5);
	EXPECT_EQ(i.ea.index, 7);
	EXPECT_EQ(i.seg, KVMX_SEG_SS);
	EXPECT_EQ(kvmx_insn_ea_offset(&i, regs, 0), 0x0008ULL);

	// 16-bit disp16 only
	i = Decode({0x8b, 0x06, 0x34, 0x12}, R16);
	EXPECT_EQ(i.ea.base, NONE);
	EXPECT_EQ(i.ea.disp, 0x1234);
}

TEST(MmioForms, Segments)
{
	struct {
		Bytes b;
		kvmx_cpu_mode mode;
		u8 seg;
		bool override;
	} cases[] = {
		{{0x65, 0x89, 0x03}, L64, KVMX_SEG_GS, true},
		{{0x26, 0x89, 0x45, 0x00}, L64, KVMX_SEG_SS, false},	// ES ignored
		{{0x26, 0x89, 0x45, 0x00}, P32, KVMX_SEG_ES, true},
		{{0x8b, 0x45, 0x00}, L64, KVMX_SEG_SS, false},		// (%rbp)
		{{0x8b, 0x04, 0x24}, L64, KVMX_SEG_SS, false},		// (%rsp)
		{{0x41, 0x8b, 0x45, 0x00}, L64, KVMX_SEG_DS, false},	// (%r13)
		{{0x8b, 0x44, 0x25, 0x00}, L64, KVMX_SEG_SS, false},	// (%rbp,%riz)
		{{0x8b, 0x04, 0x25, 0, 0, 0, 0}, L64, KVMX_SEG_DS, false},
		{{0x8b, 0x46, 0x00}, R16, KVMX_SEG_SS, false},		// 0(%bp)
		{{0x8b, 0x06, 0, 0}, R16, KVMX_SEG_DS, false},		// disp16
		{{0x64, 0xaa}, L64, KVMX_SEG_ES, false},		// STOS: no override
		{{0x64, 0xa4}, L64, KVMX_SEG_FS, true},			// MOVS source
		{{0x2e, 0xac}, P32, KVMX_SEG_CS, true},
		{{0xa1, 0, 0, 0, 0}, P32, KVMX_SEG_DS, false},
	};

	for (const auto &c : cases) {
		kvmx_insn i = Decode(c.b, c.mode);
		EXPECT_EQ(i.seg, c.seg) << (int)c.b[0] << " " << (int)c.b[1];
		EXPECT_EQ(i.seg_override, c.override) << (int)c.b[0];
	}
}

TEST(MmioForms, Strings)
{
	kvmx_insn i = Decode({0xf3, 0x48, 0xa5});
	EXPECT_EQ(i.rep, KVMX_REP_REPE);
	EXPECT_EQ(i.addr_size, 8);
	EXPECT_EQ(i.ea.base, 6);

	i = Decode({0xf2, 0xaa});
	EXPECT_EQ(i.rep, KVMX_REP_REPNE);
	EXPECT_EQ(i.ea.base, 7);

	i = Decode({0x67, 0xf3, 0xaa}, P32);
	EXPECT_EQ(i.addr_size, 2);

	i = Decode({0xac});
	EXPECT_EQ(i.rep, KVMX_REP_NONE);
}

TEST(MmioForms, LockRecorded)
{
	EXPECT_TRUE(Decode({0xf0, 0x01, 0x03}).lock);
	EXPECT_FALSE(Decode({0x01, 0x03}).lock);
}

// ---------------------------------------------------------------------------
// Operand helpers.

struct LoadCase {
	const char *what;
	Bytes bytes;
	u64 old, data, want;
};

TEST(Operand, Load)
{
	const LoadCase cases[] = {
		{"mov (%rsi),%dh", {0x8a, 0x36}, 0x1111111111111111ULL, 0xab,
		 0x111111111111ab11ULL},
		{"mov (%rsi),%bpl", {0x40, 0x8a, 0x2e}, ~0ULL, 0x12,
		 0xffffffffffffff12ULL},
		{"mov (%r12),%r15w", {0x66, 0x45, 0x8b, 0x3c, 0x24}, ~0ULL,
		 0x1234, 0xffffffffffff1234ULL},
		{"mov (%rsi),%r10d zeroes 63:32", {0x44, 0x8b, 0x16}, ~0ULL,
		 0x80000000, 0x80000000ULL},
		{"mov 0x1234(%rip),%rcx", {0x48, 0x8b, 0x0d, 0x34, 0x12, 0, 0},
		 0, 0x8877665544332211ULL, 0x8877665544332211ULL},
		{"movzbl (%rax),%ecx", {0x0f, 0xb6, 0x08}, ~0ULL, 0x80, 0x80},
		{"movzwq (%rax),%r8", {0x4c, 0x0f, 0xb7, 0x00}, ~0ULL, 0x8001,
		 0x8001},
		{"movsbw (%rax),%dx", {0x66, 0x0f, 0xbe, 0x10},
		 0x1111111111111111ULL, 0x80, 0x111111111111ff80ULL},
		{"movswl (%rax),%eax", {0x0f, 0xbf, 0x00}, ~0ULL, 0x8000,
		 0xffff8000ULL},
		{"movsbq (%rax),%rax", {0x48, 0x0f, 0xbe, 0x00}, 0, 0xfe,
		 ~1ULL},
		{"movslq (%rax),%r11", {0x4c, 0x63, 0x18}, 0, 0x80000000,
		 0xffffffff80000000ULL},
		{"movslq, positive", {0x4c, 0x63, 0x18}, ~0ULL, 0x7fffffff,
		 0x7fffffffULL},
		{"movbe (%rsi),%eax", {0x0f, 0x38, 0xf0, 0x06}, ~0ULL,
		 0x11223344, 0x44332211ULL},
		{"movbe (%rsi),%ax", {0x66, 0x0f, 0x38, 0xf0, 0x06}, ~0ULL,
		 0x1122, 0xffffffffffff2211ULL},
		{"lodsb", {0xac}, 0x1234, 0x56, 0x1256},
		{"data above mem_size ignored", {0x8a, 0x06}, 0, 0xff01, 0x01},
		{"mov 0(%ebp),%ah [32]", {0x8a, 0x65, 0x00}, 0xaabbccdd, 0x11,
		 0xaabb11dd},
	};

	for (const auto &c : cases) {
		kvmx_cpu_mode mode = std::string(c.what).find("[32]") !=
				     std::string::npos ? P32 : L64;
		kvmx_insn i = Decode(c.bytes, mode);
		EXPECT_EQ(kvmx_insn_load(&i, c.old, c.data), c.want) << c.what;
	}
}

TEST(Operand, Store)
{
	const LoadCase cases[] = {	// old = register value, want = data
		{"mov %ah,(%rdi)", {0x88, 0x27}, 0x1234, 0, 0x12},
		{"mov %al,(%rdi)", {0x88, 0x07}, 0x1234, 0, 0x34},
		{"mov %ax,(%rbx,%rcx,4)", {0x66, 0x89, 0x04, 0x8b},
		 0x1122334455667788ULL, 0, 0x7788},
		{"mov %eax,(%rbx)", {0x89, 0x03}, 0x1122334455667788ULL, 0,
		 0x55667788},
		{"mov %rax,0x10(%rbx)", {0x48, 0x89, 0x43, 0x10},
		 0x1122334455667788ULL, 0, 0x1122334455667788ULL},
		{"movbe %r9w,(%rsi)", {0x66, 0x44, 0x0f, 0x38, 0xf1, 0x0e},
		 0x1122, 0, 0x2211},
		{"movbe %rcx,(%rsi)", {0x48, 0x0f, 0x38, 0xf1, 0x0e},
		 0x1122334455667788ULL, 0, 0x8877665544332211ULL},
		{"movb $0x80,(%rdx)", {0xc6, 0x02, 0x80}, ~0ULL, 0, 0x80},
		{"movl $0x80000000,(%rdx)", {0xc7, 0x02, 0, 0, 0, 0x80}, 0, 0,
		 0x80000000},
		{"stosw", {0x66, 0xab}, 0xabcd1234, 0, 0x1234},
	};

	for (const auto &c : cases) {
		kvmx_insn i = Decode(c.bytes);
		EXPECT_EQ(kvmx_insn_store_data(&i, c.old), c.want) << c.what;
	}
}

TEST(Operand, XchgRoundTrip)
{
	// xchg (%rdx),%bh: memory gets BH, BH gets memory.
	kvmx_insn i = Decode({0x86, 0x3a});
	u64 rbx = 0x1111111111115566ULL;

	EXPECT_EQ(kvmx_insn_store_data(&i, rbx), 0x55ULL);
	EXPECT_EQ(kvmx_insn_load(&i, rbx, 0xee), 0x111111111111ee66ULL);
}

TEST(Operand, AluCompletion)
{
	// or (%rdx),%r8: register destination.
	kvmx_insn i = Decode({0x4c, 0x0b, 0x02});
	u64 r8 = 0xf0f0000000000000ULL, fl = 0x2;
	u64 res = kvmx_insn_alu(&i, kvmx_insn_reg_operand(&i, r8), 0x0f, &fl);
	EXPECT_FALSE(i.dst_mem);
	EXPECT_EQ(kvmx_reg_merge(r8, res, i.reg_size, i.reg_high8),
		  0xf0f000000000000fULL);
	EXPECT_EQ(fl & KVMX_RFLAGS_SF, KVMX_RFLAGS_SF);

	// sbb (%rbx),%ah with CF set: AH = 0x10 - 0x0f - 1 = 0.
	i = Decode({0x1a, 0x23});
	u64 rax = 0x1234567812341099ULL;
	fl = 0x2 | KVMX_RFLAGS_CF;
	res = kvmx_insn_alu(&i, kvmx_insn_reg_operand(&i, rax), 0x0f, &fl);
	EXPECT_EQ(kvmx_reg_merge(rax, res, i.reg_size, i.reg_high8),
		  0x1234567812340099ULL);
	EXPECT_EQ(fl & (KVMX_RFLAGS_ZF | KVMX_RFLAGS_CF), KVMX_RFLAGS_ZF);

	// subl $-1,(%rdx): memory destination, imm8 sign-extended.
	i = Decode({0x83, 0x2a, 0xff});
	fl = 0x2;
	res = kvmx_insn_alu(&i, 5, kvmx_insn_store_data(&i, 0), &fl);
	EXPECT_TRUE(i.dst_mem);
	EXPECT_EQ(res, 6ULL);
	EXPECT_EQ(fl & KVMX_RFLAGS_CF, KVMX_RFLAGS_CF);

	// cmpq $0x12345678,(%rdx): read only.
	i = Decode({0x48, 0x81, 0x3a, 0x78, 0x56, 0x34, 0x12});
	EXPECT_EQ(i.access, RD);
	fl = 0x2;
	kvmx_insn_alu(&i, 0x12345678, kvmx_insn_store_data(&i, 0), &fl);
	EXPECT_EQ(fl & KVMX_RFLAGS_ZF, KVMX_RFLAGS_ZF);
}

// The host CPU as the oracle for ALU results and flags.
#define HOST_ALU(insn, type, cons)					\
	[](u64 d, u64 s, u64 *fl) -> u64 {				\
		type dd = (type)d, ss = (type)s;			\
		u64 f = *fl;						\
		asm volatile("lea -128(%%rsp), %%rsp\n\t"		\
			     "push %[f]\n\tpopfq\n\t"			\
			     insn " %[s], %[d]\n\t"			\
			     "pushfq\n\tpop %[f]\n\t"			\
			     "lea 128(%%rsp), %%rsp"			\
			     : [d] "+" cons(dd), [f] "+r"(f)		\
			     : [s] cons(ss) : "cc", "memory");		\
		*fl = f;						\
		return (u64)dd;						\
	}

using HostFn = u64 (*)(u64, u64, u64 *);

#define HOST_ALL_SIZES(insn)						\
	{ HOST_ALU(insn "b", u8, "q"), HOST_ALU(insn "w", u16, "r"),	\
	  HOST_ALU(insn "l", u32, "r"), HOST_ALU(insn "q", u64, "r") }

TEST(Operand, AluMatchesHostCpu)
{
	// One opcode per ALU op, memory destination, 8-bit and full size.
	const struct {
		u8 alu;
		u8 opcode;	// byte form; +1 for the full-size form
		HostFn host[4];
	} ops[] = {
		{KVMX_ALU_ADD, 0x00, HOST_ALL_SIZES("add")},
		{KVMX_ALU_OR, 0x08, HOST_ALL_SIZES("or")},
		{KVMX_ALU_ADC, 0x10, HOST_ALL_SIZES("adc")},
		{KVMX_ALU_SBB, 0x18, HOST_ALL_SIZES("sbb")},
		{KVMX_ALU_AND, 0x20, HOST_ALL_SIZES("and")},
		{KVMX_ALU_SUB, 0x28, HOST_ALL_SIZES("sub")},
		{KVMX_ALU_XOR, 0x30, HOST_ALL_SIZES("xor")},
		{KVMX_ALU_CMP, 0x38, HOST_ALL_SIZES("cmp")},
		{KVMX_ALU_TEST, 0x84, HOST_ALL_SIZES("test")},
	};
	const u64 interesting[] = { 0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0x8000,
				    0xffff, 0x7fffffff, 0x80000000, 0xffffffff,
				    0x7fffffffffffffffULL,
				    0x8000000000000000ULL, ~0ULL, 0x0f, 0x10 };
	std::mt19937_64 rng(1);
	int checked = 0;

	for (const auto &op : ops) {
		for (int s = 0; s < 4; s++) {
			Bytes b;
			if (s == 1)
				b.push_back(0x66);
			if (s == 3)
				b.push_back(0x48);
			b.push_back(op.opcode + (s ? 1 : 0));
			b.push_back(0x03);	// (%rbx), reg = eax
			kvmx_insn i = Decode(b);
			ASSERT_EQ(i.op, KVMX_OP_ALU);
			ASSERT_EQ(i.alu, op.alu);
			ASSERT_EQ(i.mem_size, 1 << s);
			ASSERT_TRUE(i.dst_mem);

			for (int n = 0; n < 600; n++) {
				u64 d = n < 256 ? interesting[n % 16] : rng();
				u64 src = n < 256 ? interesting[n / 16] : rng();
				u64 cf = (n / 3) & 1;
				u64 hf = 0x2 | cf, kf = 0x2 | cf;
				u64 want = op.host[s](d, src, &hf);
				u64 got = kvmx_insn_alu(&i, d, src, &kf);
				u64 mask = KVMX_RFLAGS_ARITH;

				// AF is undefined after the logic ops.
				if (op.alu == KVMX_ALU_AND || op.alu == KVMX_ALU_OR ||
				    op.alu == KVMX_ALU_XOR || op.alu == KVMX_ALU_TEST)
					mask &= ~KVMX_RFLAGS_AF;
				if (op.alu != KVMX_ALU_CMP && op.alu != KVMX_ALU_TEST) {
					ASSERT_EQ(got, kvmx_trunc(want, 1 << s))
						<< (int)op.alu << " " << d << " " << src;
				}
				ASSERT_EQ(kf & mask, hf & mask)
					<< "alu " << (int)op.alu << " size " << (1 << s)
					<< " d=" << std::hex << d << " s=" << src
					<< " cf=" << cf;
				checked++;
			}
		}
	}
	EXPECT_EQ(checked, 9 * 4 * 600);
}

}  // namespace
