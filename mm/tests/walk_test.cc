// SPDX-License-Identifier: GPL-2.0
//
// Unit tests for the guest page-table walker (mm/walk.c).
//
// What each group guards:
//  - Translate: addresses, page sizes and levels in every mode, 4 KiB and
//    large pages (4 MiB with PSE and PSE-36, 2 MiB, 1 GiB), PS ignored
//    without CR4.PSE, the 5-level path, paging off.
//  - Reserved: each reserved bit per mode and level gives P|RSVD, and the
//    bits that are not reserved (ignored, PAT, keys) do not; PDPTE loads.
//  - AccessedDirty: the update list and memory, already-set flags, PDPTEs
//    untouched, racing guest writes (retry, bounded), no cmpxchg callback,
//    PEEK.
//  - ErrorCode: I/D reporting rules, implicit accesses at CPL 3, protection
//    keys, unreadable tables.
#include <gtest/gtest.h>

#include "guest_mem.hpp"

namespace {

using namespace walktest;

constexpr u64 kRW = KVMX_PTE_P | KVMX_PTE_RW;
constexpr u64 kURW = KVMX_PTE_P | KVMX_PTE_RW | KVMX_PTE_US;
constexpr u32 kPR = KVMX_PFERR_PRESENT | KVMX_PFERR_RSVD;

// --- Translate --------------------------------------------------------------

TEST(Translate, Paging32SmallPage)
{
	Guest g(KVMX_PAGING_32);
	kvmx_walk_result res;

	g.Map(0x80401000, 0x1234000);
	ASSERT_EQ(g.Walk(0x80401abc, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x1234abcu);
	EXPECT_EQ(res.level, 1);
	EXPECT_EQ(res.page_shift, 12);
	EXPECT_EQ(res.access, KVMX_WALK_W | KVMX_WALK_U | KVMX_WALK_X);
	// Bits above 31 of the linear address do not exist outside long mode.
	ASSERT_EQ(g.Walk(0xffffffff80401abcULL, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x1234abcu);
}

TEST(Translate, Paging32LargePageAndPse36)
{
	Guest g(KVMX_PAGING_32);
	kvmx_walk_result res;

	g.Map(0x00c00000, 0x01c00000, 2);
	ASSERT_EQ(g.Walk(0x00e12345, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x01e12345u);
	EXPECT_EQ(res.level, 2);
	EXPECT_EQ(res.page_shift, 22);

	// PSE-36: PDE bits 20:13 are physical-address bits 39:32.
	g.p.maxphyaddr = 40;
	u64 at = g.EntryGpa(0x00c00000, 2);
	g.mem.Set(at, 0x01c00000 | (0xabULL << 13) | KVMX_PTE_PS | kURW, 4);
	ASSERT_EQ(g.Walk(0x00e12345, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0xab01e12345ULL);
}

TEST(Translate, Paging32PsIgnoredWithoutPse)
{
	Guest g(KVMX_PAGING_32);
	kvmx_walk_result res;

	g.Map(0x00c01000, 0x5000);
	u64 at = g.EntryGpa(0x00c01000, 2);
	g.mem.Set(at, g.mem.Get(at, 4) | KVMX_PTE_PS, 4);
	g.p.cr4 &= ~KVMX_CR4_PSE;
	ASSERT_EQ(g.Walk(0x00c01010, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x5010u);
	EXPECT_EQ(res.level, 1);
	// With PSE the same PDE maps a 4 MiB page.
	g.p.cr4 |= KVMX_CR4_PSE;
	ASSERT_EQ(g.Walk(0x00c01010, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.level, 2);
}

TEST(Translate, PaePdptesFromMemoryOrRegisters)
{
	Guest g(KVMX_PAGING_PAE);
	kvmx_walk_result res;

	g.Map(0xc0201000, 0x77777000);
	g.Map(0x40200000, 0x40000000, 2);
	ASSERT_EQ(g.Walk(0xc0201008, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x77777008u);
	ASSERT_EQ(g.Walk(0x40312345, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x40112345u);
	EXPECT_EQ(res.page_shift, 21);

	// Loaded PDPTE registers win over what memory says now.
	u64 regs[4];
	ASSERT_EQ(kvmx_walk_load_pdptes(&g.p, &GuestMem::kOps, &g.mem, regs), 0);
	memcpy(g.p.pdptes, regs, sizeof(regs));
	g.p.pdptes_valid = 1;
	g.mem.Set(g.p.cr3 + 3 * 8, 0, 8);
	ASSERT_EQ(g.Walk(0xc0201008, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.pte_gpa[2], ~0ULL);
	g.p.pdptes_valid = 0;
	ASSERT_EQ(g.Walk(0xc0201008, 0, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, 0u);
	EXPECT_EQ(res.level, 3);
}

TEST(Translate, FourLevelAllSizes)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	g.Map(0x00007f0000001000ULL, 0xabcdef000ULL);
	g.Map(0x00007f0000200000ULL, 0x40000000ULL, 2);
	g.Map(0xffff800040000000ULL, 0x3c0000000ULL, 3);
	ASSERT_EQ(g.Walk(0x00007f0000001fffULL, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0xabcdeffffULL);
	EXPECT_EQ(res.level, 1);
	ASSERT_EQ(g.Walk(0x00007f00003fffffULL, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x401fffffULL);
	EXPECT_EQ(res.level, 2);
	ASSERT_EQ(g.Walk(0xffff80007fffffffULL, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x3ffffffffULL);
	EXPECT_EQ(res.level, 3);
	EXPECT_EQ(res.page_shift, 30);
	// Large-page PAT (bit 12) is not an address bit.
	u64 at = g.EntryGpa(0x00007f0000200000ULL, 2);
	g.mem.Set(at, g.mem.Get(at, 8) | BIT_ULL(12), 8);
	ASSERT_EQ(g.Walk(0x00007f0000200000ULL, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x40000000ULL);
}

TEST(Translate, FiveLevelUsesBits56To48)
{
	Guest g(KVMX_PAGING_5LEVEL);
	kvmx_walk_result res;

	g.Map(0x00ff000000003000ULL, 0x1000);
	g.Map(0x0001000000003000ULL, 0x2000);
	g.Map(0xff00000000000000ULL, 0x80000000ULL, 3);
	ASSERT_EQ(g.Walk(0x00ff000000003004ULL, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x1004u);
	ASSERT_EQ(g.Walk(0x0001000000003004ULL, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x2004u);
	ASSERT_EQ(g.Walk(0xff00000000000010ULL, KVMX_ACC_WRITE, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x80000010u);
	EXPECT_EQ(res.nr_updates, 3);
	for (int l = 5; l >= 3; l--)
		EXPECT_NE(res.pte_gpa[l - 1], 0u) << l;
	// The same tables read as 4-level: the PML5 is taken as the PML4.
	g.p.cr4 &= ~KVMX_CR4_LA57;
	EXPECT_EQ(g.Walk(0x00ff000000003004ULL, 0, &res), KVMX_WALK_FAULT);
}

TEST(Translate, PagingOff)
{
	Guest g(KVMX_PAGING_32);
	kvmx_walk_result res;

	g.p.cr0 = 1;
	ASSERT_EQ(g.Walk(0x1ffffabcdULL, KVMX_ACC_WRITE | KVMX_ACC_USER, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0xffffabcdULL);
	EXPECT_EQ(res.nr_updates, 0);
	EXPECT_EQ(g.mem.reads, 0);
}

TEST(Translate, RoleIsData)
{
	Guest a(KVMX_PAGING_4LEVEL), b(KVMX_PAGING_4LEVEL);

	b.p.cr3 = 0x555000;		// CR3 is not part of the role
	EXPECT_EQ(kvmx_walk_role(&a.p).word, kvmx_walk_role(&b.p).word);
	b.p.cr0 &= ~KVMX_CR0_WP;
	EXPECT_NE(kvmx_walk_role(&a.p).word, kvmx_walk_role(&b.p).word);
	EXPECT_EQ(kvmx_walk_role(&a.p).mode, KVMX_PAGING_4LEVEL);
	// CR4.PSE changes nothing outside 32-bit paging.
	b = Guest(KVMX_PAGING_4LEVEL);
	b.p.cr4 |= KVMX_CR4_PSE;
	EXPECT_EQ(kvmx_walk_role(&a.p).word, kvmx_walk_role(&b.p).word);
}

// --- Reserved ---------------------------------------------------------------

struct RsvdCase {
	kvmx_paging_mode mode;
	int level;		// entry that gets the bit
	int leaf_level;		// where the translation ends
	int bit;
	bool reserved;
	u8 maxphyaddr;
	u8 model;
	bool nxe;
	const char *name;
};

void PrintTo(const RsvdCase &c, std::ostream *os)
{
	*os << c.name;
}

class Reserved : public testing::TestWithParam<RsvdCase> {};

TEST_P(Reserved, Bit)
{
	const RsvdCase c = GetParam();
	Guest g(c.mode);
	kvmx_walk_result res;
	u64 gva = 0x40000000;
	u64 frame = c.leaf_level == 3 ? 0x40000000 : c.leaf_level == 2 ? 0x400000 : 0x9000;

	g.p.maxphyaddr = c.maxphyaddr;
	g.p.model = c.model;
	if (!c.nxe)
		g.p.efer &= ~KVMX_EFER_NXE;
	g.Map(gva, frame, c.leaf_level);
	u64 at = g.EntryGpa(gva, c.level);
	g.mem.Set(at, g.mem.Get(at, g.PteSize()) | BIT_ULL(c.bit), g.PteSize());

	int r = g.Walk(gva, KVMX_ACC_WRITE, &res);
	if (c.reserved) {
		ASSERT_EQ(r, KVMX_WALK_FAULT);
		EXPECT_EQ(res.error_code, kPR | KVMX_PFERR_WRITE);
		EXPECT_EQ(res.level, c.level);
		EXPECT_EQ(res.nr_updates, 0);
	} else {
		ASSERT_EQ(r, KVMX_WALK_OK) << "ec 0x" << std::hex << res.error_code;
	}
}

INSTANTIATE_TEST_SUITE_P(
	Modes, Reserved,
	testing::Values(
		// 4-level: MAXPHYADDR..51, XD without NXE, PS high up, AMD bit 8.
		RsvdCase{ KVMX_PAGING_4LEVEL, 1, 1, 40, true, 40, 0, true, "L4_Pte_Maxphy" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 1, 1, 39, false, 40, 0, true, "L4_Pte_BelowMaxphy" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 4, 1, 51, true, 40, 0, true, "L4_Pml4_Bit51" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 3, 1, 46, true, 46, 0, true, "L4_Pdpte_Maxphy46" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 2, 1, 52, false, 40, 0, true, "L4_Pde_Bit52Ignored" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 1, 1, 62, false, 40, 0, true, "L4_Pte_Bit62Ignored" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 1, 1, 63, true, 40, 0, false, "L4_Pte_XdWithoutNxe" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 4, 1, 63, true, 40, 0, false, "L4_Pml4_XdWithoutNxe" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 4, 1, 63, false, 40, 0, true, "L4_Pml4_XdWithNxe" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 4, 1, 7, true, 40, 0, true, "L4_Pml4_Ps" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 4, 1, 8, false, 40, 0, true, "L4_Pml4_Bit8Intel" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 4, 1, 8, true, 40, KVMX_MODEL_AMD, true, "L4_Pml4_Bit8Amd" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 3, 1, 8, false, 40, KVMX_MODEL_AMD, true, "L4_Pdpte_Bit8Amd" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 1, 1, 7, false, 40, 0, true, "L4_Pte_PatNotReserved" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 2, 2, 13, true, 40, 0, true, "L4_2M_Bit13" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 2, 2, 20, true, 40, 0, true, "L4_2M_Bit20" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 2, 2, 12, false, 40, 0, true, "L4_2M_Pat" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 3, 3, 29, true, 40, 0, true, "L4_1G_Bit29" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 3, 3, 13, true, 40, 0, true, "L4_1G_Bit13" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 3, 3, 12, false, 40, 0, true, "L4_1G_Pat" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 3, 3, 40, true, 40, 0, true, "L4_1G_Maxphy" },
		RsvdCase{ KVMX_PAGING_4LEVEL, 3, 3, 9, true, 40, KVMX_MODEL_NO_GBPAGES, true, "L4_1G_NoGbpages" },
		// 5-level: the PML5E like a PML4E.
		RsvdCase{ KVMX_PAGING_5LEVEL, 5, 1, 7, true, 52, 0, true, "L5_Pml5_Ps" },
		RsvdCase{ KVMX_PAGING_5LEVEL, 5, 1, 8, true, 52, KVMX_MODEL_AMD, true, "L5_Pml5_Bit8Amd" },
		RsvdCase{ KVMX_PAGING_5LEVEL, 5, 1, 9, false, 52, 0, true, "L5_Pml5_Bit9Ignored" },
		RsvdCase{ KVMX_PAGING_5LEVEL, 5, 1, 48, true, 48, 0, true, "L5_Pml5_Maxphy48" },
		// PAE: 62:MAXPHYADDR reserved too; PDPTE rules.
		RsvdCase{ KVMX_PAGING_PAE, 1, 1, 52, true, 36, 0, true, "Pae_Pte_Bit52" },
		RsvdCase{ KVMX_PAGING_PAE, 1, 1, 62, true, 36, 0, true, "Pae_Pte_Bit62" },
		RsvdCase{ KVMX_PAGING_PAE, 2, 1, 36, true, 36, 0, true, "Pae_Pde_Maxphy" },
		RsvdCase{ KVMX_PAGING_PAE, 2, 1, 63, true, 36, 0, false, "Pae_Pde_XdWithoutNxe" },
		RsvdCase{ KVMX_PAGING_PAE, 2, 2, 13, true, 36, 0, true, "Pae_2M_Bit13" },
		RsvdCase{ KVMX_PAGING_PAE, 2, 2, 12, false, 36, 0, true, "Pae_2M_Pat" },
		RsvdCase{ KVMX_PAGING_PAE, 3, 1, 1, true, 36, 0, true, "Pae_Pdpte_Bit1" },
		RsvdCase{ KVMX_PAGING_PAE, 3, 1, 2, true, 36, 0, true, "Pae_Pdpte_Bit2" },
		RsvdCase{ KVMX_PAGING_PAE, 3, 1, 5, true, 36, 0, true, "Pae_Pdpte_Bit5" },
		RsvdCase{ KVMX_PAGING_PAE, 3, 1, 7, true, 36, 0, true, "Pae_Pdpte_Ps" },
		RsvdCase{ KVMX_PAGING_PAE, 3, 1, 8, true, 36, 0, true, "Pae_Pdpte_Bit8" },
		RsvdCase{ KVMX_PAGING_PAE, 3, 1, 63, true, 36, 0, true, "Pae_Pdpte_XdEvenWithNxe" },
		RsvdCase{ KVMX_PAGING_PAE, 3, 1, 3, false, 36, 0, true, "Pae_Pdpte_Pwt" },
		RsvdCase{ KVMX_PAGING_PAE, 3, 1, 9, false, 36, 0, true, "Pae_Pdpte_Bit9Ignored" },
		// 32-bit: only 4 MiB PDEs reserve anything.
		RsvdCase{ KVMX_PAGING_32, 2, 2, 21, true, 40, 0, false, "P32_4M_Bit21" },
		RsvdCase{ KVMX_PAGING_32, 2, 2, 20, false, 40, 0, false, "P32_4M_Bit20Maxphy40" },
		RsvdCase{ KVMX_PAGING_32, 2, 2, 17, true, 36, 0, false, "P32_4M_Bit17Maxphy36" },
		RsvdCase{ KVMX_PAGING_32, 2, 2, 16, false, 36, 0, false, "P32_4M_Bit16Maxphy36" },
		RsvdCase{ KVMX_PAGING_32, 2, 2, 20, false, 52, 0, false, "P32_4M_Bit20Maxphy52" },
		RsvdCase{ KVMX_PAGING_32, 2, 2, 13, true, 40, KVMX_MODEL_NO_PSE36, false, "P32_4M_NoPse36" },
		RsvdCase{ KVMX_PAGING_32, 2, 1, 8, false, 36, 0, false, "P32_Pde_Bit8" },
		RsvdCase{ KVMX_PAGING_32, 1, 1, 31, false, 36, 0, false, "P32_Pte_Bit31" }),
	[](const testing::TestParamInfo<RsvdCase> &i) { return std::string(i.param.name); });

TEST(Reserved, NotPresentHidesReservedBits)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	u64 at = g.Map(0x1000, 0x2000);
	g.mem.Set(at, BIT_ULL(51) | KVMX_PTE_PS | BIT_ULL(1), 8);
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_USER, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, KVMX_PFERR_USER);
	EXPECT_EQ(res.level, 1);
}

TEST(Reserved, HigherLevelFirst)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	g.p.maxphyaddr = 40;
	u64 pte = g.Map(0x1000, 0x2000);
	u64 pde = g.EntryGpa(0x1000, 2);
	g.mem.Set(pte, g.mem.Get(pte, 8) | BIT_ULL(45), 8);
	g.mem.Set(pde, g.mem.Get(pde, 8) & ~KVMX_PTE_US, 8);
	// The reserved bit wins over the (later checked) U/S violation.
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_USER, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, kPR | KVMX_PFERR_USER);
	EXPECT_EQ(res.level, 1);
}

TEST(Reserved, LoadPdptes)
{
	Guest g(KVMX_PAGING_PAE);
	u64 regs[4];

	g.Map(0x1000, 0x2000);
	ASSERT_EQ(kvmx_walk_load_pdptes(&g.p, &GuestMem::kOps, &g.mem, regs), 0);
	EXPECT_EQ(regs[0] & ~0xfffULL, g.EntryGpa(0x1000, 2) & ~0xfffULL);
	EXPECT_EQ(regs[1], 0u);
	// A non-present PDPTE may hold anything.
	g.mem.Set(g.p.cr3 + 8, 0xfffffffffffffffeULL, 8);
	ASSERT_EQ(kvmx_walk_load_pdptes(&g.p, &GuestMem::kOps, &g.mem, regs), 0);
	g.mem.Set(g.p.cr3 + 8, 0x5000 | 1 | BIT_ULL(2), 8);
	EXPECT_EQ(kvmx_walk_load_pdptes(&g.p, &GuestMem::kOps, &g.mem, regs), -EINVAL);
	g.p.cr4 &= ~KVMX_CR4_PAE;
	EXPECT_EQ(kvmx_walk_load_pdptes(&g.p, &GuestMem::kOps, &g.mem, regs), -EINVAL);
}

// --- AccessedDirty ----------------------------------------------------------

TEST(AccessedDirty, ReadSetsAccessedTopDown)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	g.Map(0x7000, 0x9000);
	ASSERT_EQ(g.Walk(0x7000, 0, &res), KVMX_WALK_OK);
	ASSERT_EQ(res.nr_updates, 4);
	for (int i = 0; i < 4; i++) {
		const kvmx_walk_update &u = res.updates[i];

		EXPECT_EQ(u.level, 4 - i);
		EXPECT_EQ(u.gpa, res.pte_gpa[u.level - 1]);
		EXPECT_EQ(u.val, u.old | KVMX_PTE_A);
		EXPECT_EQ(u.len, 8);
		EXPECT_EQ(g.mem.Get(u.gpa, 8), u.val);
	}
	EXPECT_TRUE(res.pte & KVMX_PTE_A);
	EXPECT_FALSE(res.pte & KVMX_PTE_D);
	// Nothing left to set.
	ASSERT_EQ(g.Walk(0x7000, 0, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.nr_updates, 0);
	EXPECT_EQ(g.mem.cmpxchgs, 4);
}

TEST(AccessedDirty, WriteSetsDirtyOnLeafOnly)
{
	for (int leaf = 1; leaf <= 3; leaf++) {
		Guest g(KVMX_PAGING_4LEVEL);
		kvmx_walk_result res;

		g.Map(0x40000000, 0x80000000ULL, leaf);
		ASSERT_EQ(g.Walk(0x40000000, 0, &res), KVMX_WALK_OK);
		ASSERT_EQ(g.Walk(0x40000000, KVMX_ACC_WRITE, &res), KVMX_WALK_OK);
		ASSERT_EQ(res.nr_updates, 1) << leaf;
		EXPECT_EQ(res.updates[0].level, leaf);
		EXPECT_EQ(res.updates[0].val, res.updates[0].old | KVMX_PTE_D);
		for (int l = 4; l > leaf; l--)
			EXPECT_FALSE(g.mem.Get(res.pte_gpa[l - 1], 8) & KVMX_PTE_D);
		EXPECT_TRUE(res.pte & KVMX_PTE_D);
	}
}

TEST(AccessedDirty, Paging32AndPae)
{
	Guest g32(KVMX_PAGING_32);
	Guest pae(KVMX_PAGING_PAE);
	kvmx_walk_result res;

	g32.Map(0x1000, 0x2000);
	ASSERT_EQ(g32.Walk(0x1000, KVMX_ACC_WRITE, &res), KVMX_WALK_OK);
	ASSERT_EQ(res.nr_updates, 2);
	EXPECT_EQ(res.updates[0].len, 4);
	EXPECT_EQ(res.updates[1].val, res.updates[1].old | KVMX_PTE_A | KVMX_PTE_D);
	EXPECT_EQ(g32.mem.Get(res.pte_gpa[0], 4), res.updates[1].val);

	// PDPTEs have no accessed flag.
	pae.Map(0x1000, 0x2000);
	u64 pdpte = pae.mem.Get(pae.p.cr3, 8);
	ASSERT_EQ(pae.Walk(0x1000, KVMX_ACC_WRITE, &res), KVMX_WALK_OK);
	ASSERT_EQ(res.nr_updates, 2);
	EXPECT_EQ(res.updates[0].level, 2);
	EXPECT_EQ(pae.mem.Get(pae.p.cr3, 8), pdpte);
}

TEST(AccessedDirty, NoneOnFault)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	u64 pte = g.Map(0x1000, 0x2000, 1, KVMX_PTE_P | KVMX_PTE_US);
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_WRITE | KVMX_ACC_USER, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, KVMX_PFERR_PRESENT | KVMX_PFERR_WRITE | KVMX_PFERR_USER);
	EXPECT_EQ(res.nr_updates, 0);
	EXPECT_EQ(g.mem.cmpxchgs, 0);
	EXPECT_EQ(g.mem.Get(pte, 8), 0x2000 | KVMX_PTE_P | KVMX_PTE_US);
}

TEST(AccessedDirty, RacingWriteRetries)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;
	int raced = 0;

	u64 pte = g.Map(0x1000, 0x2000);
	// The guest remaps the page under the walker, once.
	g.mem.race = [&](u64 gpa) {
		if (gpa == pte && !raced++)
			g.mem.Set(pte, 0x3000 | kURW, 8);
	};
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_WRITE, &res), KVMX_WALK_OK);
	EXPECT_EQ(raced, 2);
	EXPECT_EQ(res.gpa, 0x3000u);
	EXPECT_EQ(g.mem.Get(pte, 8), 0x3000 | kURW | KVMX_PTE_A | KVMX_PTE_D);
	// Upper levels were set by the first pass; the second sets the leaf only.
	EXPECT_EQ(res.nr_updates, 1);

	// The guest unmaps it instead: the retry reports the not-present fault.
	g.mem.Set(pte, 0x2000 | kURW, 8);
	g.mem.race = [&](u64 gpa) {
		if (gpa == pte)
			g.mem.Set(pte, 0, 8);
	};
	ASSERT_EQ(g.Walk(0x1000, 0, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, 0u);
}

TEST(AccessedDirty, EndlessRaceGivesUp)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;
	u64 flip = 0;

	u64 pte = g.Map(0x1000, 0x2000);
	g.mem.race = [&](u64 gpa) {
		if (gpa == pte)
			g.mem.Set(pte, (0x2000 | kURW) ^ (++flip << 9 & 0xe00), 8);
	};
	EXPECT_EQ(g.Walk(0x1000, 0, &res), -EAGAIN);
	EXPECT_EQ(int(flip), KVMX_WALK_RETRIES + 1);
}

TEST(AccessedDirty, WithoutCmpxchgOnlyReported)
{
	Guest g(KVMX_PAGING_5LEVEL);
	kvmx_walk_result res;

	u64 pte = g.Map(0x1000, 0x2000);
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_WRITE, &res, &GuestMem::kReadOnlyOps), KVMX_WALK_OK);
	EXPECT_EQ(res.nr_updates, 5);
	EXPECT_EQ(res.pte, 0x2000 | kURW | KVMX_PTE_A | KVMX_PTE_D);
	EXPECT_EQ(g.mem.Get(pte, 8), 0x2000 | kURW);
}

TEST(AccessedDirty, PeekChecksNoRightsAndSetsNothing)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	g.p.cr4 |= KVMX_CR4_SMAP | KVMX_CR4_SMEP;
	u64 pte = g.Map(0x1000, 0x2000, 1, KVMX_PTE_P | KVMX_PTE_US | KVMX_PTE_NX);
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_PEEK | KVMX_ACC_FETCH, &res), KVMX_WALK_OK);
	EXPECT_EQ(res.gpa, 0x2000u);
	EXPECT_EQ(res.access, KVMX_WALK_U);
	EXPECT_EQ(g.mem.cmpxchgs, 0);
	EXPECT_EQ(g.mem.Get(pte, 8), 0x2000 | KVMX_PTE_P | KVMX_PTE_US | KVMX_PTE_NX);
	// Presence and reserved bits still count.
	g.mem.Set(pte, g.mem.Get(pte, 8) | BIT_ULL(51), 8);
	g.p.maxphyaddr = 48;
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_PEEK, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, kPR);
}

TEST(AccessedDirty, UnwritableTable)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;
	u64 pte = g.Map(0x1000, 0x2000);
	const kvmx_walk_ops ops = {
		GuestMem::Read,
		[](void *ctx, u64 gpa, u64 old, u64 val, unsigned int len) {
			auto *m = static_cast<GuestMem *>(ctx);

			(void)old;
			(void)val;
			(void)len;
			return gpa == m->Get(0, 8) ? -EFAULT : 0;
		},
	};

	g.mem.Add(0);
	g.mem.Set(0, pte, 8);
	EXPECT_EQ(g.Walk(0x1000, 0, &res, &ops), -EFAULT);
	EXPECT_EQ(res.level, 1);
}

// --- ErrorCode --------------------------------------------------------------

TEST(ErrorCode, FetchBitOnlyWithNxeOrSmep)
{
	for (kvmx_paging_mode mode : { KVMX_PAGING_32, KVMX_PAGING_PAE, KVMX_PAGING_4LEVEL }) {
		for (int smep = 0; smep < 2; smep++) {
			for (int nxe = 0; nxe < 2; nxe++) {
				Guest g(mode);
				kvmx_walk_result res;

				g.p.efer = (g.p.efer & ~KVMX_EFER_NXE) | (nxe ? KVMX_EFER_NXE : 0);
				g.p.cr4 |= smep ? KVMX_CR4_SMEP : 0;
				// Not present: the fetch fault is about presence.
				ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_FETCH | KVMX_ACC_USER, &res),
					  KVMX_WALK_FAULT);
				bool id = smep || (nxe && mode != KVMX_PAGING_32);
				EXPECT_EQ(res.error_code,
					  KVMX_PFERR_USER | (id ? KVMX_PFERR_FETCH : 0))
					<< mode << smep << nxe;
			}
		}
	}
}

TEST(ErrorCode, FetchIsNeverWrite)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_FETCH | KVMX_ACC_WRITE, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, KVMX_PFERR_FETCH);
}

TEST(ErrorCode, SupervisorAccessAtCpl3IsImplicit)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	g.p.cr4 |= KVMX_CR4_SMAP;
	g.p.rflags = KVMX_RFLAGS_AC;
	g.Map(0x1000, 0x2000);
	g.p.cpl = 0;
	EXPECT_EQ(g.Walk(0x1000, 0, &res), KVMX_WALK_OK);
	g.p.cpl = 3;
	ASSERT_EQ(g.Walk(0x1000, 0, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, KVMX_PFERR_PRESENT);
	// Implicit wins over a user flag: it is a supervisor-mode access.
	g.p.cpl = 0;
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_IMPLICIT | KVMX_ACC_USER | KVMX_ACC_WRITE, &res),
		  KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, KVMX_PFERR_PRESENT | KVMX_PFERR_WRITE);
}

TEST(ErrorCode, ProtectionKeys)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;
	const u64 key5 = 5ULL << 59;

	g.p.cr4 |= KVMX_CR4_PKE;
	g.Map(0x1000, 0x2000, 1, kURW | key5);
	g.Map(0x3000, 0x4000, 1, kRW | key5);		// supervisor page: no key check
	g.p.pkru = 1u << 10;				// AD5
	g.p.cpl = 3;
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_USER, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, KVMX_PFERR_PRESENT | KVMX_PFERR_USER | KVMX_PFERR_PK);
	EXPECT_EQ(res.nr_updates, 0);
	EXPECT_EQ(g.Walk(0x1000, KVMX_ACC_USER | KVMX_ACC_FETCH, &res), KVMX_WALK_OK);
	g.p.cpl = 0;
	EXPECT_EQ(g.Walk(0x3000, KVMX_ACC_WRITE, &res), KVMX_WALK_OK);
	ASSERT_EQ(g.Walk(0x1000, 0, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, KVMX_PFERR_PRESENT | KVMX_PFERR_PK);

	g.p.pkru = 2u << 10;				// WD5
	EXPECT_EQ(g.Walk(0x1000, 0, &res), KVMX_WALK_OK);
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_WRITE, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code, KVMX_PFERR_PRESENT | KVMX_PFERR_WRITE | KVMX_PFERR_PK);
	g.p.cr0 &= ~KVMX_CR0_WP;			// supervisor writes ignore WD then
	EXPECT_EQ(g.Walk(0x1000, KVMX_ACC_WRITE, &res), KVMX_WALK_OK);
	g.p.cpl = 3;
	ASSERT_EQ(g.Walk(0x1000, KVMX_ACC_WRITE | KVMX_ACC_USER, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code,
		  KVMX_PFERR_PRESENT | KVMX_PFERR_WRITE | KVMX_PFERR_USER | KVMX_PFERR_PK);

	// Together with an ordinary violation both are reported.
	g.Map(0x5000, 0x6000, 1, KVMX_PTE_P | KVMX_PTE_US | key5);
	ASSERT_EQ(g.Walk(0x5000, KVMX_ACC_WRITE | KVMX_ACC_USER, &res), KVMX_WALK_FAULT);
	EXPECT_EQ(res.error_code,
		  KVMX_PFERR_PRESENT | KVMX_PFERR_WRITE | KVMX_PFERR_USER | KVMX_PFERR_PK);
	// No keys in PAE paging; none without CR4.PKE.
	g.p.cr4 &= ~KVMX_CR4_PKE;
	EXPECT_EQ(g.Walk(0x1000, KVMX_ACC_WRITE | KVMX_ACC_USER, &res), KVMX_WALK_OK);
}

TEST(ErrorCode, UnbackedTableIsNotAFault)
{
	Guest g(KVMX_PAGING_4LEVEL);
	kvmx_walk_result res;

	u64 pde = g.EntryGpa(0x1000, 2);
	g.mem.Set(pde, 0x7fff0000000ULL | kURW, 8);
	EXPECT_EQ(g.Walk(0x1000, 0, &res), -EFAULT);
	EXPECT_EQ(res.level, 1);
	EXPECT_EQ(res.pte_gpa[0], 0x7fff0000008ULL);
}

} // namespace
