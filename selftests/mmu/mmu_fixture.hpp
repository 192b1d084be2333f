// The mmu suite's host side: a GuestVm prepared for page-table tests (ring 3, a #PF handler that
// resumes after the faulting access, page tables the host builds outside the identity map) and
// the CPU features the tests depend on.
#pragma once

#include <cstdint>
#include <string>

#include "kvmx/test/guest.hpp"
#include "mmu_guest.hpp"

namespace mmu_suite {

// What the guest CPUID (KVM_GET_SUPPORTED_CPUID) offers.
struct Features {
  bool nx = false;
  bool smep = false;
  bool smap = false;
  bool gbpages = false;
  unsigned maxphyaddr = 36;
};
Features features_of(const kvmx::System& sys);

// A guest prepared for the suite. Tables are guest-physical addresses (GVA == GPA in the identity
// map, so guest code reaches them at the same address).
class MmuGuest {
 public:
  explicit MmuGuest(kvmx::test::GuestVm& guest);

  kvmx::test::GuestVm& guest() { return guest_; }

  // A 64-bit vCPU at `entry` with ring 3 available and the suite's #PF and INT 0x80 handlers.
  template <class... Args>
  kvmx::Vcpu add_vcpu(void (*entry)(Args...), std::initializer_list<std::uint64_t> args = {}) {
    kvmx::Vcpu vcpu = guest_.add_vcpu(entry, args);
    use_suite_gdt(vcpu);
    return vcpu;
  }

  std::uint64_t new_table();  // a zeroed 4 KiB page
  std::uint64_t& entry(std::uint64_t table, unsigned index);
  std::uint64_t pml4() const { return pml4_; }
  // A page table path from `pml4` down to the table of `level` (1: PT, 2: PD, 3: PDPT) for `va`,
  // created as needed with P|W|U entries; returns that table.
  std::uint64_t table_for(std::uint64_t pml4, std::uint64_t va, int level);

  // Fill a 4 KiB page with page_tag(tag, i) in quadword i.
  void fill_tagged(std::uint64_t gpa, std::uint64_t tag);

 private:
  void use_suite_gdt(kvmx::Vcpu& vcpu);

  kvmx::test::GuestVm& guest_;
  std::uint64_t pml4_;
  std::uint64_t gdt_ = 0;
};

// GuestTest with an MmuGuest.
class MmuTest : public kvmx::test::GuestTest {
 protected:
  void SetUp() override;
  MmuGuest& mmu() { return *mmu_; }
  const Features& features() const { return features_; }

 private:
  std::optional<MmuGuest> mmu_;
  Features features_;
};

}  // namespace mmu_suite
