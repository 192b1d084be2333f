// SPDX-License-Identifier: GPL-2.0
//
// The access-permutation matrix (access_matrix.hpp) against kvmx_walk(): for
// each paging mode and leaf size, every U/S, R/W, XD combination in every
// entry that carries rights, times every access and CPU state.  Checks the
// fault decision, the whole error code, and the accessed/dirty updates (A in
// every entry and D in the leaf for a write on success; nothing on a fault),
// both in the returned list and in guest memory.
#include <gtest/gtest.h>

#include <sstream>
#include <vector>

#include "access_matrix.hpp"
#include "guest_mem.hpp"

namespace {

using namespace walktest;
using kvmx_access::Access;
using kvmx_access::Cpu;
using kvmx_access::Entry;
using kvmx_access::Mode;
using kvmx_access::Op;

struct Shape {
	kvmx_paging_mode mode;
	int leaf_level;
	const char *name;
};

void PrintTo(const Shape &s, std::ostream *os)
{
	*os << s.name;
}

class AccessMatrix : public testing::TestWithParam<Shape> {};

u32 AccessFlags(const Access &a, kvmx_paging *p)
{
	u32 f = 0;

	if (a.op == Op::Write)
		f |= KVMX_ACC_WRITE;
	if (a.op == Op::Fetch)
		f |= KVMX_ACC_FETCH;
	p->cpl = a.mode == Mode::User ? 3 : 0;
	if (a.mode == Mode::User)
		f |= KVMX_ACC_USER;
	if (a.mode == Mode::Implicit)
		f |= KVMX_ACC_IMPLICIT;
	return f;
}

TEST_P(AccessMatrix, EveryCombination)
{
	const Shape s = GetParam();
	const bool has_xd = s.mode != KVMX_PAGING_32;
	const int top = LevelsOf(s.mode);
	// PAE's PDPTE carries no rights.
	const int rights_top = s.mode == KVMX_PAGING_PAE ? 2 : top;
	const int nr = rights_top - s.leaf_level + 1;
	const int bits_per = has_xd ? 3 : 2;
	const u64 gva = 0x40000000ULL * 3 + 0x12345000ULL;
	const u64 frame = s.leaf_level == 3 ? 0x80000000ULL : 0x800000ULL;
	Guest g(s.mode);
	std::vector<u64> at(top + 1);
	long walks = 0, failures = 0;

	g.Map(gva, frame, s.leaf_level);
	for (int l = top; l >= s.leaf_level; l--)
		at[l] = g.EntryGpa(gva, l);
	const u64 leaf_base = g.mem.Get(at[s.leaf_level], g.PteSize());

	for (u32 combo = 0; combo < (1u << (bits_per * nr)); combo++) {
		std::vector<Entry> entries;
		std::vector<u64> value(top + 1);

		for (int i = 0; i < nr; i++) {
			u32 b = combo >> (bits_per * i);
			int l = rights_top - i;
			Entry e = { !!(b & 1), !!(b & 2), has_xd && (b & 4) };
			u64 v = (l == s.leaf_level) ? leaf_base :
				g.mem.Get(at[l], g.PteSize());

			v &= ~(KVMX_PTE_US | KVMX_PTE_RW | KVMX_PTE_NX |
			       KVMX_PTE_A | KVMX_PTE_D);
			v |= (e.user ? KVMX_PTE_US : 0) | (e.writable ? KVMX_PTE_RW : 0) |
			     (e.xd ? KVMX_PTE_NX : 0);
			value[l] = v;
			entries.push_back(e);
		}

		for (unsigned int ci = 0; ci < 32; ci++) {
			Cpu cpu = Cpu::FromIndex(ci);

			if (!has_xd && cpu.nxe)
				continue;	// NXE means nothing to 32-bit paging
			for (const Access &a : kvmx_access::kAccesses) {
				kvmx_walk_result res;
				u32 acc;
				int r;

				for (int l = rights_top; l >= s.leaf_level; l--)
					g.mem.Set(at[l], value[l], g.PteSize());
				g.p.cr0 = KVMX_CR0_PG | 1 | (cpu.wp ? KVMX_CR0_WP : 0);
				g.p.cr4 = (g.p.cr4 & ~(KVMX_CR4_SMEP | KVMX_CR4_SMAP)) |
					  (cpu.smep ? KVMX_CR4_SMEP : 0) |
					  (cpu.smap ? KVMX_CR4_SMAP : 0);
				g.p.efer = (g.p.efer & ~KVMX_EFER_NXE) |
					   (cpu.nxe ? KVMX_EFER_NXE : 0);
				g.p.rflags = 2 | (cpu.ac ? KVMX_RFLAGS_AC : 0);
				acc = AccessFlags(a, &g.p);

				auto want = kvmx_access::Expected(entries.begin(), entries.end(),
								  has_xd, cpu, a);
				r = g.Walk(gva, acc, &res);
				walks++;

				std::ostringstream why;
				if (want.fault) {
					if (r != KVMX_WALK_FAULT)
						why << "wanted #PF, got " << r;
					else if (res.error_code != want.error_code)
						why << "error code: wanted 0x" << std::hex
						    << want.error_code << ", got 0x"
						    << res.error_code;
					else if (res.nr_updates)
						why << "faulting walk lists updates";
					for (int l = rights_top; l >= s.leaf_level; l--)
						if (g.mem.Get(at[l], g.PteSize()) != value[l])
							why << " level " << l << " changed";
				} else {
					if (r != KVMX_WALK_OK) {
						why << "wanted success, got " << r
						    << " ec 0x" << std::hex << res.error_code;
					} else if (res.gpa != (frame | (gva & ((1ULL << res.page_shift) - 1)))) {
						why << "wrong gpa";
					} else if (res.nr_updates != nr) {
						why << "wanted " << nr << " updates, got "
						    << int(res.nr_updates);
					}
					for (int l = rights_top; l >= s.leaf_level; l--) {
						u64 exp = value[l] | KVMX_PTE_A;

						if (l == s.leaf_level && want.sets_dirty)
							exp |= KVMX_PTE_D;
						if (g.mem.Get(at[l], g.PteSize()) != exp)
							why << " level " << l << " A/D wrong";
					}
				}
				if (!why.str().empty() && failures++ < 20)
					ADD_FAILURE() << s.name << " combo 0x" << std::hex << combo
						      << std::dec << " " << kvmx_access::Describe(cpu, a)
						      << ": " << why.str();
			}
		}
	}
	EXPECT_EQ(failures, 0) << "of " << walks << " walks";
	RecordProperty("walks", std::to_string(walks));
}

INSTANTIATE_TEST_SUITE_P(
	Shapes, AccessMatrix,
	testing::Values(Shape{ KVMX_PAGING_32, 1, "Paging32_4K" },
			Shape{ KVMX_PAGING_32, 2, "Paging32_4M" },
			Shape{ KVMX_PAGING_PAE, 1, "Pae_4K" },
			Shape{ KVMX_PAGING_PAE, 2, "Pae_2M" },
			Shape{ KVMX_PAGING_4LEVEL, 1, "Level4_4K" },
			Shape{ KVMX_PAGING_4LEVEL, 2, "Level4_2M" },
			Shape{ KVMX_PAGING_4LEVEL, 3, "Level4_1G" },
			Shape{ KVMX_PAGING_5LEVEL, 2, "Level5_2M" },
			Shape{ KVMX_PAGING_5LEVEL, 3, "Level5_1G" }),
	[](const testing::TestParamInfo<Shape> &i) { return std::string(i.param.name); });

} // namespace
