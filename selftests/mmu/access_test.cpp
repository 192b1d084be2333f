// mmu: access permutations in 4-level paging (access.hpp), judged case by case against the
// architectural rule. Each test runs all its cases in one guest call.
#include <gtest/gtest.h>

#include "access.hpp"
#include "kvmx/test/env.hpp"

namespace mmu_suite {
namespace {

constexpr std::size_t kMaxReported = 25;

class MmuAccess : public MmuTest {
 protected:
  // Whether this VM's guest walks run on the CPU (TDP): the VM's KVMX_CAP_MMU_MODE where the
  // device has it, else the test-host cell (and, unknown, possibly).
  bool cpu_walks() {
    const int mode = guest().vm().try_check_extension(KVMX_CAP_MMU_MODE).value_or(0);
    if (mode > 0) return mode == KVMX_MMU_MODE_TDP;
    return kvmx::test::env().mmu != kvmx::test::Mmu::shadow;
  }

  // Build the walks of `sizes`, add `variants_of(walk)` on each, run and compare.
  template <class VariantsOf>
  void run_matrix(std::initializer_list<PageSize> sizes, VariantsOf variants_of) {
    std::vector<TestWalk> walks;
    walks.reserve(sizes.size());
    CaseSet set;
    for (PageSize size : sizes) {
      if (size == PageSize::k1G && !features().gbpages) continue;  // reported by CpuFeatures
      walks.push_back(build_test_walk(mmu(), size, features()));
      add_cases(set, walks.back(), variants_of(walks.back()), features());
    }
    if (set.cases.empty()) GTEST_SKIP() << "no case applies to this CPU";
    std::vector<AccessResult> results;
    ASSERT_TRUE(run_cases(mmu(), set, results));
    const std::vector<std::string> bad = mismatches(set, results, features(), cpu_walks());
    for (std::size_t i = 0; i < bad.size() && i < kMaxReported; ++i) ADD_FAILURE() << bad[i];
    EXPECT_EQ(bad.size(), 0u) << "cases that break the rule, of " << set.cases.size();
  }
};

// Guards: nothing; reports which CPU features the matrices below run without, as a skip naming
// them (they are gated on the guest CPUID from KVM_GET_SUPPORTED_CPUID).
TEST_F(MmuAccess, CpuFeatures) {
  std::string missing;
  if (!features().nx) missing += " NX (EFER.NXE)";
  if (!features().smep) missing += " SMEP";
  if (!features().smap) missing += " SMAP";
  if (!features().gbpages) missing += " 1GiB-pages";
  if (!missing.empty()) GTEST_SKIP() << "KVM_GET_SUPPORTED_CPUID does not offer" << missing << "; the matrices run without";
}

// Guards: every combination of R/W, U/S and NX in the leaf PTE and the PDE above it, for user and
// supervisor reads, writes and fetches under each CR0.WP, CR4.SMEP, CR4.SMAP (with and without
// RFLAGS.AC) and EFER.NXE: fault or success, error code, CR2, A/D bits (4 KiB pages).
TEST_F(MmuAccess, Rights4K) {
  run_matrix({PageSize::k4K}, [](const TestWalk&) { return rights_variants(); });
}

// Guards: the same with a 2 MiB page (the PDE is the leaf, the PDPTE varies above it).
TEST_F(MmuAccess, Rights2M) {
  run_matrix({PageSize::k2M}, [](const TestWalk&) { return rights_variants(); });
}

// Guards: the same with a 1 GiB page (PDPTE leaf, PML4E above it), where the CPU offers them.
TEST_F(MmuAccess, Rights1G) {
  if (!features().gbpages) GTEST_SKIP() << "KVM_GET_SUPPORTED_CPUID does not offer 1GiB pages (CPUID 0x80000001 EDX.26)";
  run_matrix({PageSize::k1G}, [](const TestWalk&) { return rights_variants(); });
}

// Guards: a not-present leaf or upper entry faults with P = 0 and the access bits, whatever its
// other bits (NX included, even without EFER.NXE), and leaves the accessed bits of the leaf alone.
TEST_F(MmuAccess, NotPresent) {
  run_matrix({PageSize::k4K, PageSize::k2M, PageSize::k1G}, [](const TestWalk&) { return not_present_variants(); });
}

// Guards: a physical-address bit at MAXPHYADDR in a present entry, and bit 13 of a large-page
// entry, fault with RSVD (and P) in the error code; the same bits in a not-present entry do not.
TEST_F(MmuAccess, ReservedBits) {
  run_matrix({PageSize::k4K, PageSize::k2M, PageSize::k1G},
             [this](const TestWalk& w) { return reserved_variants(w, features()); });
}

}  // namespace
}  // namespace mmu_suite
