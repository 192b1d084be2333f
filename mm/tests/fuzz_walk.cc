// SPDX-License-Identifier: GPL-2.0
//
// libFuzzer target for kvmx_walk(): the input is the CPU state, the address,
// the access, a pattern of guest writes racing the accessed/dirty updates,
// and up to 16 pages of guest-physical memory holding whatever tables the
// fuzzer makes up.  Memory starts at GPA 0; beyond it a read fails, or, in
// "alias" runs, every GPA folds onto the pages given, so deep walks happen;
// "tame" runs clear the high bits of every entry.
//
// Properties checked on every input:
//  - every read and compare-and-exchange is of a naturally aligned 4- or
//    8-byte entry (the width of the mode), within one page, below 2^52;
//  - a walk ends: at most (levels + 1) reads per pass and a bounded number
//    of passes;
//  - the outcome is KVMX_WALK_OK, KVMX_WALK_FAULT, -EFAULT or -EAGAIN and
//    is consistent: page size and offset, error-code bits that match the
//    access, no updates on a fault or with PEEK, updates that only set A/D;
//  - the same input gives the same result and the same memory afterwards.
#include <cstdlib>
#include <cstring>
#include <vector>

#include <kvmx/walk.h>

#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)

namespace {

constexpr size_t kPage = 4096;
constexpr size_t kMaxPages = 16;

struct Mem {
	std::vector<u8> buf;
	bool alias;
	unsigned int width;	// 4 in 32-bit paging, else 8
	u32 race;		// bit i: a guest write races the i-th update
	u64 race_xor;
	int reads = 0, cmpxchgs = 0;

	u8 *At(u64 gpa, unsigned int len)
	{
		u64 pfn = gpa / kPage, npages = buf.size() / kPage;

		CHECK(len == width);
		CHECK(gpa % len == 0);
		CHECK(gpa < (1ULL << 52));
		if (alias)
			pfn %= npages;
		else if (pfn >= npages)
			return nullptr;
		return &buf[pfn * kPage + gpa % kPage];
	}

	static int Read(void *ctx, u64 gpa, void *val, unsigned int len)
	{
		Mem *m = static_cast<Mem *>(ctx);
		u8 *p = m->At(gpa, len);

		m->reads++;
		if (!p)
			return -EFAULT;
		memcpy(val, p, len);
		return 0;
	}

	static int Cmpxchg(void *ctx, u64 gpa, u64 old, u64 val, unsigned int len)
	{
		Mem *m = static_cast<Mem *>(ctx);
		u8 *p = m->At(gpa, len);
		u64 cur = 0;

		CHECK((val & ~old) && !((val & ~old) & ~(KVMX_PTE_A | KVMX_PTE_D)));
		CHECK(!(old & ~val));
		if (!p)
			return -EFAULT;
		if (m->cmpxchgs < 32 && (m->race >> m->cmpxchgs) & 1) {
			memcpy(&cur, p, len);
			cur ^= m->race_xor;
			memcpy(p, &cur, len);
		}
		m->cmpxchgs++;
		memcpy(&cur, p, len);
		if (cur != old)
			return -EAGAIN;
		memcpy(p, &val, len);
		return 0;
	}
};

struct Input {
	const u8 *data;
	size_t size;

	template <typename T> T Take()
	{
		T v = 0;
		size_t n = size < sizeof(T) ? size : sizeof(T);

		memcpy(&v, data, n);
		data += n;
		size -= n;
		return v;
	}
};

const kvmx_walk_ops kOps = { Mem::Read, Mem::Cmpxchg };

int Run(const kvmx_paging &p, Mem *m, u64 gva, u32 access, kvmx_walk_result *res)
{
	memset(res, 0xa5, sizeof(*res));
	return kvmx_walk(&p, &kOps, m, gva, access, res);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	Input in = { data, size };
	kvmx_paging p = {};
	u8 modes = in.Take<u8>();
	u8 cr4 = in.Take<u8>();
	u8 misc = in.Take<u8>();

	p.cr0 = ((modes & 1) ? KVMX_CR0_PG : 0) | ((modes & 2) ? KVMX_CR0_WP : 0);
	p.cr4 = ((cr4 & 1) ? KVMX_CR4_PSE : 0) | ((cr4 & 2) ? KVMX_CR4_PAE : 0) |
		((cr4 & 4) ? KVMX_CR4_LA57 : 0) | ((cr4 & 8) ? KVMX_CR4_SMEP : 0) |
		((cr4 & 16) ? KVMX_CR4_SMAP : 0) | ((cr4 & 32) ? KVMX_CR4_PKE : 0);
	p.efer = ((modes & 4) ? KVMX_EFER_LMA : 0) | ((modes & 8) ? KVMX_EFER_NXE : 0);
	p.rflags = (modes & 16) ? KVMX_RFLAGS_AC : 0;
	p.cpl = (modes >> 5) & 3;
	p.pdptes_valid = (modes >> 7) & 1;
	p.model = misc & 7;
	p.maxphyaddr = in.Take<u8>() & 63;
	p.pkru = in.Take<u32>();
	p.cr3 = in.Take<u64>();
	for (u64 &e : p.pdptes)
		e = in.Take<u64>();
	u64 gva = in.Take<u64>();
	u32 access = in.Take<u8>();
	access = (access & 0x16) | ((access & 1) ? KVMX_ACC_IMPLICIT : 0) |
		 ((access & 8) ? KVMX_ACC_PEEK : 0);

	Mem m;
	m.alias = misc & 8;
	m.race = in.Take<u32>();
	m.race_xor = in.Take<u64>() | 1;
	kvmx_paging_mode mode = kvmx_paging_mode_of(&p);
	m.width = mode == KVMX_PAGING_32 ? 4 : 8;

	size_t npages = (in.size + kPage - 1) / kPage;
	npages = npages < 1 ? 1 : npages > kMaxPages ? kMaxPages : npages;
	m.buf.assign(npages * kPage, 0);
	memcpy(m.buf.data(), in.data, in.size < m.buf.size() ? in.size : m.buf.size());
	// Random entries nearly always set a reserved high bit; in "tame" runs
	// keep address bits 35:0 and XD only, so walks go deep.
	if (misc & 16) {
		for (size_t i = 0; i < m.buf.size(); i += 8) {
			u64 w;

			memcpy(&w, &m.buf[i], 8);
			w &= 0x8000000fffffffffULL;
			memcpy(&m.buf[i], &w, 8);
		}
	}
	Mem m2 = m;

	kvmx_walk_result a, b;
	int r = Run(p, &m, gva, access, &a);
	int r2 = Run(p, &m2, gva, access, &b);

	CHECK(r == r2 && !memcmp(&a, &b, sizeof(a)) && m.buf == m2.buf);
	CHECK(m.reads == m2.reads && m.cmpxchgs == m2.cmpxchgs);
	CHECK(r == KVMX_WALK_OK || r == KVMX_WALK_FAULT || r == -EFAULT || r == -EAGAIN);
	CHECK(m.reads <= 5 * (KVMX_WALK_RETRIES + 1));
	CHECK(m.cmpxchgs <= 5 * (KVMX_WALK_RETRIES + 1));
	if (access & KVMX_ACC_PEEK)
		CHECK(m.cmpxchgs == 0);
	if (mode == KVMX_PAGING_OFF)
		CHECK(m.reads == 0 && r == KVMX_WALK_OK && a.gpa == (gva & 0xffffffffULL));
	if (r == -EAGAIN)
		CHECK(m.race);
	CHECK(a.nr_updates <= KVMX_WALK_MAX_LEVELS);

	if (r == KVMX_WALK_OK) {
		u64 mask = (1ULL << a.page_shift) - 1;
		u64 lin = mode <= KVMX_PAGING_PAE ? gva & 0xffffffffULL : gva;

		CHECK(a.page_shift == 12 || a.page_shift == 21 || a.page_shift == 22 ||
		      a.page_shift == 30);
		CHECK((a.gpa & mask) == (lin & mask));
		CHECK(a.gpa < (1ULL << 52));
		CHECK(a.level >= 1 && a.level <= 3);
		CHECK(!(a.access & ~7));
		if (access & KVMX_ACC_PEEK)
			CHECK(a.nr_updates == 0);
		for (int i = 0; i < a.nr_updates; i++) {
			const kvmx_walk_update &u = a.updates[i];

			CHECK(u.level >= a.level && u.len == m.width);
			CHECK(!(u.old & ~u.val) && !((u.val & ~u.old) & ~(KVMX_PTE_A | KVMX_PTE_D)));
			CHECK(!((u.val & ~u.old) & KVMX_PTE_D) ||
			      (u.level == a.level && (access & KVMX_ACC_WRITE)));
		}
	}
	if (r == KVMX_WALK_FAULT) {
		u32 ec = a.error_code;

		CHECK(!(ec & ~0x3fu));
		CHECK(a.nr_updates == 0);
		CHECK(!(ec & KVMX_PFERR_WRITE) ||
		      ((access & KVMX_ACC_WRITE) && !(access & KVMX_ACC_FETCH)));
		CHECK(!(ec & KVMX_PFERR_USER) ||
		      ((access & KVMX_ACC_USER) && !(access & KVMX_ACC_IMPLICIT)));
		CHECK(!(ec & KVMX_PFERR_FETCH) || (access & KVMX_ACC_FETCH));
		CHECK(!(ec & (KVMX_PFERR_RSVD | KVMX_PFERR_PK)) || (ec & KVMX_PFERR_PRESENT));
		CHECK(!(ec & KVMX_PFERR_PK) || mode >= KVMX_PAGING_4LEVEL);
	}
	return 0;
}
