// mmu: page-table churn. The guest changes its own page tables while using them and checks that
// the translation it gets is one the architecture allows: the new one after INVLPG or a CR3
// reload, and after a not-present entry becomes present; either one before a flush.
#include <gtest/gtest.h>

#include <cstring>

#include "kvmx/guest/x86.h"
#include "mmu_fixture.hpp"

namespace mmu_suite {
namespace {

namespace x86 = kvmx::x86;
using kvmx::test::HostUcall;

constexpr std::uint64_t kPageFlags = x86::kPtePresent | x86::kPteWritable;

class MmuChurn : public MmuTest {
 protected:
  // `count` pages, page i tagged i; returns the guest address of an array of their addresses.
  std::uint64_t tagged_pages(std::uint64_t count) {
    const std::uint64_t array = guest().alloc(count * 8, 8);
    for (std::uint64_t i = 0; i < count; ++i) {
      const std::uint64_t page = guest().alloc(kvmx::kPageSize);
      mmu().fill_tagged(page, i);
      pages_.push_back(page);
      std::memcpy(guest().host_ptr(array + 8 * i, 8), &page, 8);
    }
    return array;
  }
  std::uint64_t word(std::uint64_t page, unsigned i) {
    std::uint64_t v;
    std::memcpy(&v, guest().host_ptr(page + 8 * i, 8), 8);
    return v;
  }
  // The page table of kVaChurn in the framework's address space. kVaChurn is its entry 0, so the
  // table's address is also the address of that PTE.
  std::uint64_t churn_pt() { return mmu().table_for(mmu().pml4(), kVaChurn, 1); }

  std::vector<std::uint64_t> pages_;
};

// Guards: after INVLPG, a changed PTE is used for reads and writes (16 pages, 8 rounds).
TEST_F(MmuChurn, RemapWithInvlpg) {
  constexpr std::uint64_t kPages = 16, kRounds = 8;
  const std::uint64_t pages = tagged_pages(kPages);
  auto vcpu = mmu().add_vcpu(guest_remap, {churn_pt(), kVaChurn, pages, kPages, kRounds, 0});
  KVMX_ASSERT_DONE(guest().run(vcpu));
  for (std::uint64_t p = 0; p < kPages; ++p) EXPECT_EQ(word(pages_[p], 256), page_tag(p, 256) + kRounds) << "page " << p;
}

// Guards: after a CR3 reload (same value), a changed PTE is used.
TEST_F(MmuChurn, RemapWithCr3Reload) {
  constexpr std::uint64_t kPages = 16, kRounds = 8;
  const std::uint64_t pages = tagged_pages(kPages);
  auto vcpu = mmu().add_vcpu(guest_remap, {churn_pt(), kVaChurn, pages, kPages, kRounds, 1});
  KVMX_ASSERT_DONE(guest().run(vcpu));
  for (std::uint64_t p = 0; p < kPages; ++p) EXPECT_EQ(word(pages_[p], 256), page_tag(p, 256) + kRounds) << "page " << p;
}

// Guards: before a flush a changed PTE gives the old or the new page (never anything else); after
// INVLPG, the new one.
TEST_F(MmuChurn, RemapWithoutFlush) {
  constexpr std::uint64_t kPages = 32;
  const std::uint64_t pages = tagged_pages(kPages);
  auto vcpu = mmu().add_vcpu(guest_remap_without_flush, {churn_pt(), kVaChurn, pages, kPages});
  KVMX_ASSERT_DONE(guest().run(vcpu));
}

// Guards: unmapping with INVLPG makes reads and writes fault (P = 0, W/R, CR2); making the entry
// present again needs no flush.
TEST_F(MmuChurn, UnmapAndRemap) {
  tagged_pages(1);
  auto vcpu = mmu().add_vcpu(guest_present_toggle, {churn_pt(), kVaChurn, pages_[0], 32});
  KVMX_ASSERT_DONE(guest().run(vcpu));
}

// Guards: switching CR3 among 48 address spaces that map one linear address to 48 different pages
// always reads and writes the page of the current one.
TEST_F(MmuChurn, Cr3Switch) {
  constexpr std::uint64_t kSpaces = 48, kRounds = 8;
  const std::uint64_t cr3s = guest().alloc(kSpaces * 8, 8);
  tagged_pages(kSpaces);
  for (std::uint64_t i = 0; i < kSpaces; ++i) {
    // A copy of the framework's PML4 (identity map, ring-3 pages) with its own PML4 slot 4.
    const std::uint64_t pml4 = mmu().new_table();
    std::memcpy(guest().host_ptr(pml4, kvmx::kPageSize), guest().host_ptr(mmu().pml4(), kvmx::kPageSize), kvmx::kPageSize);
    mmu().entry(pml4, kVaChurn >> 39) = 0;
    mmu().entry(mmu().table_for(pml4, kVaChurn, 1), 0) = pages_[i] | kPageFlags;
    const std::uint64_t zero = 0;
    std::memcpy(guest().host_ptr(pages_[i] + 8, 8), &zero, 8);  // the visit count
    std::memcpy(guest().host_ptr(cr3s + 8 * i, 8), &pml4, 8);
  }
  auto vcpu = mmu().add_vcpu(guest_cr3_switch, {cr3s, kSpaces, kVaChurn, kRounds});
  KVMX_ASSERT_DONE(guest().run(vcpu));
  for (std::uint64_t i = 0; i < kSpaces; ++i) EXPECT_EQ(word(pages_[i], 1), kRounds) << "visits of space " << i;
}

// Guards: a PDE switched between a 2 MiB page and a page table over the same frames (in reverse
// order) translates by whichever it holds after a CR3 reload.
TEST_F(MmuChurn, LargePageSplitAndMerge) {
  const std::uint64_t large = guest().alloc(2u << 20, 2u << 20);
  const std::uint64_t pt = mmu().new_table();
  for (std::uint64_t k = 0; k < 512; ++k) {
    mmu().fill_tagged(large + k * kvmx::kPageSize, k);
    mmu().entry(pt, static_cast<unsigned>(k)) = (large + (511 - k) * kvmx::kPageSize) | kPageFlags;
  }
  constexpr std::uint64_t kVa = kVaChurn + (2u << 20);
  const std::uint64_t pde = mmu().table_for(mmu().pml4(), kVa, 2) + 8 * 1;
  auto vcpu = mmu().add_vcpu(guest_large_page_split, {pde, kVa, large | kPageFlags | x86::kPteLarge, pt | kPageFlags, 8});
  KVMX_ASSERT_DONE(guest().run(vcpu));
}

// Guards: writes to a live page table through a second mapping of it (the table maps itself)
// take effect after INVLPG, and the walk's A and D updates show through that mapping.
TEST_F(MmuChurn, GuestEditsItsOwnPageTable) {
  constexpr std::uint64_t kPages = 16;
  const std::uint64_t pages = tagged_pages(kPages);
  const std::uint64_t pt = churn_pt();
  mmu().entry(pt, 1) = pt | kPageFlags;  // the table itself at kVaChurn + 4 KiB
  auto vcpu = mmu().add_vcpu(guest_self_map, {kVaChurn + kvmx::kPageSize, kVaChurn, pages, kPages});
  KVMX_ASSERT_DONE(guest().run(vcpu));
}

}  // namespace
}  // namespace mmu_suite
