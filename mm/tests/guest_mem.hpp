// SPDX-License-Identifier: GPL-2.0
//
// Guest-physical memory for walker tests: sparse 4 KiB pages behind the
// kvmx_walk_ops callbacks, plus a builder that lays out page tables in any
// paging mode.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <vector>

#include <kvmx/walk.h>

namespace walktest {

class GuestMem {
public:
	// Back [gpa, gpa + 4 KiB) with zeroes.
	void Add(u64 gpa) { pages_[gpa >> 12]; }

	bool Has(u64 gpa) const { return pages_.count(gpa >> 12); }

	u64 Get(u64 gpa, unsigned int len) const
	{
		u64 v = 0;

		memcpy(&v, &pages_.at(gpa >> 12)[gpa & 0xfff], len);
		return v;
	}

	void Set(u64 gpa, u64 v, unsigned int len)
	{
		memcpy(&pages_.at(gpa >> 12)[gpa & 0xfff], &v, len);
	}

	int reads = 0;
	int cmpxchgs = 0;
	// Runs before each compare-and-exchange: a guest racing the walker.
	std::function<void(u64 gpa)> race;

	static int Read(void *ctx, u64 gpa, void *val, unsigned int len)
	{
		auto *m = static_cast<GuestMem *>(ctx);

		m->reads++;
		if (!m->Has(gpa))
			return -EFAULT;
		u64 v = m->Get(gpa, len);
		memcpy(val, &v, len);
		return 0;
	}

	static int Cmpxchg(void *ctx, u64 gpa, u64 old, u64 val, unsigned int len)
	{
		auto *m = static_cast<GuestMem *>(ctx);

		m->cmpxchgs++;
		if (m->race)
			m->race(gpa);
		if (!m->Has(gpa))
			return -EFAULT;
		if (m->Get(gpa, len) != old)
			return -EAGAIN;
		m->Set(gpa, val, len);
		return 0;
	}

	static constexpr kvmx_walk_ops kOps = { Read, Cmpxchg };
	static constexpr kvmx_walk_ops kReadOnlyOps = { Read, nullptr };

private:
	std::map<u64, std::array<u8, 4096>> pages_;
};

inline int LevelsOf(kvmx_paging_mode mode)
{
	switch (mode) {
	case KVMX_PAGING_32: return 2;
	case KVMX_PAGING_PAE: return 3;
	case KVMX_PAGING_4LEVEL: return 4;
	case KVMX_PAGING_5LEVEL: return 5;
	default: return 0;
	}
}

inline int ShiftOf(kvmx_paging_mode mode, int level)
{
	return mode == KVMX_PAGING_32 ? 12 + 10 * (level - 1) : 12 + 9 * (level - 1);
}

// A guest with paging in @mode; tables come from a bump allocator at 1 MiB.
class Guest {
public:
	explicit Guest(kvmx_paging_mode mode, u64 table_base = 0x100000)
		: mode_(mode), next_(table_base)
	{
		p.cr0 = KVMX_CR0_PG | KVMX_CR0_WP | 1;
		switch (mode) {
		case KVMX_PAGING_32:
			p.cr4 = KVMX_CR4_PSE;
			break;
		case KVMX_PAGING_PAE:
			p.cr4 = KVMX_CR4_PAE;
			p.efer = KVMX_EFER_NXE;
			break;
		case KVMX_PAGING_5LEVEL:
			p.cr4 = KVMX_CR4_PAE | KVMX_CR4_LA57;
			p.efer = KVMX_EFER_NXE | KVMX_EFER_LMA;
			break;
		default:
			p.cr4 = KVMX_CR4_PAE;
			p.efer = KVMX_EFER_NXE | KVMX_EFER_LMA;
			break;
		}
		p.cr3 = Alloc();
	}

	u64 Alloc()
	{
		u64 gpa = next_;

		next_ += 0x1000;
		mem.Add(gpa);
		return gpa;
	}

	unsigned int PteSize() const { return mode_ == KVMX_PAGING_32 ? 4 : 8; }

	// Where the entry for @gva at @level lives, creating tables above it
	// with @upper flags (the PDPTE gets P only).  Returns 0 if a level above
	// is a leaf.
	u64 EntryGpa(u64 gva, int level, u64 upper = KVMX_PTE_P | KVMX_PTE_RW | KVMX_PTE_US)
	{
		u64 table = mode_ == KVMX_PAGING_PAE ? (p.cr3 & 0xffffffe0) : (p.cr3 & ~0xfffULL);
		int top = LevelsOf(mode_);
		unsigned int size = PteSize();

		for (int l = top; ; l--) {
			int shift = ShiftOf(mode_, l);
			u64 mask = (mode_ == KVMX_PAGING_PAE && l == 3) ? 3 :
				   mode_ == KVMX_PAGING_32 ? 0x3ff : 0x1ff;
			u64 gpa = table + ((gva >> shift) & mask) * size;

			if (l == level)
				return gpa;
			u64 e = mem.Get(gpa, size);
			if (!(e & KVMX_PTE_P)) {
				u64 flags = (mode_ == KVMX_PAGING_PAE && l == 3) ? KVMX_PTE_P : upper;

				e = Alloc() | flags;
				mem.Set(gpa, e, size);
			}
			table = e & 0x000ffffffffff000ULL;
			if (size == 4)
				table &= 0xfffff000;
		}
	}

	// Map @gva to @gpa with a leaf at @level carrying @flags (PS added for
	// large pages); the entry's address is returned.
	u64 Map(u64 gva, u64 gpa, int level = 1,
		u64 flags = KVMX_PTE_P | KVMX_PTE_RW | KVMX_PTE_US)
	{
		u64 at = EntryGpa(gva, level);
		u64 e = gpa | flags | (level > 1 ? KVMX_PTE_PS : 0);

		mem.Set(at, e, PteSize());
		return at;
	}

	int Walk(u64 gva, u32 access, kvmx_walk_result *res,
		 const kvmx_walk_ops *ops = &GuestMem::kOps)
	{
		return kvmx_walk(&p, ops, &mem, gva, access, res);
	}

	kvmx_paging p = {};
	GuestMem mem;

private:
	kvmx_paging_mode mode_;
	u64 next_;
};

} // namespace walktest
