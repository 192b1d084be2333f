// mmu: the per-VM MMU mode (KVMX_CAP_MMU_MODE, uapi/linux/kvmx.h). KVM_CHECK_EXTENSION on the
// system fd gives the modes offered, on a VM fd the VM's mode; KVM_ENABLE_CAP on a VM fd sets it
// until the first vCPU. In-tree KVM does not have the capability: every test skips there.
#include <gtest/gtest.h>

#include <bit>
#include <cstring>

#include "access.hpp"
#include "kvmx/guest/x86.h"
#include "kvmx/test/env.hpp"

namespace mmu_suite {
namespace {

using kvmx::test::env;
using kvmx::test::GuestVm;
using kvmx::test::Mmu;

constexpr std::uint32_t kModes[] = {KVMX_MMU_MODE_TDP, KVMX_MMU_MODE_SHADOW};

const char* mode_name(std::uint64_t mode) {
  return mode == KVMX_MMU_MODE_TDP ? "TDP" : mode == KVMX_MMU_MODE_SHADOW ? "shadow" : "unknown";
}

kvm_enable_cap mode_request(std::uint64_t mode) {
  kvm_enable_cap request{};
  request.cap = KVMX_CAP_MMU_MODE;
  request.args[0] = mode;
  return request;
}

class MmuMode : public kvmx::test::VmTest {
 protected:
  void SetUp() override {
    VmTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    KVMX_REQUIRE_CAP(KVMX_CAP_MMU_MODE);
    offered_ = static_cast<std::uint32_t>(sys().check_extension(KVMX_CAP_MMU_MODE));
  }
  int vm_mode(const kvmx::Vm& vm) { return vm.try_check_extension(KVMX_CAP_MMU_MODE).value_or(-1); }
  bool offers_vcpus() { return has_cap(KVM_CAP_MAX_VCPUS); }

  std::uint32_t offered_ = 0;
};

// Guards: the system fd offers a nonzero mask of known modes.
TEST_F(MmuMode, ModesOffered) {
  EXPECT_NE(offered_, 0u);
  EXPECT_EQ(offered_ & ~(KVMX_MMU_MODE_TDP | KVMX_MMU_MODE_SHADOW), 0u) << "mask " << offered_;
}

// Guards: a new VM reports the module default (the test host's --mmu cell): one mode, which
// the backend runs, or else the VM offers no vCPUs.
TEST_F(MmuMode, NewVmReportsTheDefault) {
  const int mode = vm_mode(vm());
  ASSERT_GT(mode, 0);
  EXPECT_EQ(std::popcount(static_cast<unsigned>(mode)), 1) << "mode " << mode;
  if (!(offered_ & mode)) {
    // The module default names a mode this backend does not run (kvmx-intel has no shadow
    // paging yet): the VM keeps that mode and, truthfully, offers no vCPUs, rather than
    // quietly running in the other mode.
    EXPECT_EQ(vm().try_check_extension(KVM_CAP_MAX_VCPUS).value_or(-1), 0)
        << "mode " << mode << " is not in the offered mask " << offered_ << " but the VM offers vCPUs";
  }
  if (env().mmu == Mmu::tdp) {
    EXPECT_EQ(mode, int{KVMX_MMU_MODE_TDP});
  } else if (env().mmu == Mmu::shadow) {
    EXPECT_EQ(mode, int{KVMX_MMU_MODE_SHADOW});
  }
}

// Guards: before the first vCPU, each offered mode can be set, set again and reported.
TEST_F(MmuMode, SetBeforeTheFirstVcpu) {
  for (int pass = 0; pass < 2; ++pass) {
    for (std::uint32_t mode : kModes) {
      if (!(offered_ & mode)) continue;
      KVMX_ASSERT_OK(vm().try_enable_cap(KVMX_CAP_MMU_MODE, mode)) << mode_name(mode);
      EXPECT_EQ(vm_mode(vm()), int(mode)) << mode_name(mode);
    }
  }
}

// Guards: an unknown mode, several modes at once, nonzero flags or args[1..3] are EINVAL and
// leave the mode as it was.
TEST_F(MmuMode, InvalidRequests) {
  const int before = vm_mode(vm());
  for (std::uint64_t mode : std::initializer_list<std::uint64_t>{0, 1ull << 2, 1ull << 31, 1ull << 32,
                                                                 KVMX_MMU_MODE_TDP | KVMX_MMU_MODE_SHADOW}) {
    KVMX_EXPECT_ERRNO(vm().try_enable_cap(mode_request(mode)), EINVAL) << "mode " << mode;
  }
  const std::uint32_t valid = before > 0 ? static_cast<std::uint32_t>(before) : KVMX_MMU_MODE_SHADOW;
  kvm_enable_cap flags = mode_request(valid);
  flags.flags = 1;
  KVMX_EXPECT_ERRNO(vm().try_enable_cap(flags), EINVAL) << "flags 1";
  for (int i = 1; i < 4; ++i) {
    kvm_enable_cap request = mode_request(valid);
    request.args[i] = 1;
    KVMX_EXPECT_ERRNO(vm().try_enable_cap(request), EINVAL) << "args[" << i << "] 1";
  }
  EXPECT_EQ(vm_mode(vm()), before);
}

// Guards: a mode the host does not offer is EOPNOTSUPP.
TEST_F(MmuMode, UnofferedModeIsRefused) {
  bool tried = false;
  for (std::uint32_t mode : kModes) {
    if (offered_ & mode) continue;
    tried = true;
    KVMX_EXPECT_ERRNO(vm().try_enable_cap(mode_request(mode)), EOPNOTSUPP) << mode_name(mode);
  }
  if (!tried) GTEST_SKIP() << "this host offers every mode";
}

// Guards: once the VM has a vCPU, setting any mode (even the current one) is EBUSY and the mode
// stays.
TEST_F(MmuMode, BusyOnceAVcpuExists) {
  if (!offers_vcpus()) GTEST_SKIP() << "needs vCPUs: KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS) is 0";
  const int before = vm_mode(vm());
  auto vcpu = vm().try_create_vcpu(0);
  KVMX_ASSERT_OK(vcpu);
  for (std::uint32_t mode : kModes) {
    if (!(offered_ & mode)) continue;
    KVMX_EXPECT_ERRNO(vm().try_enable_cap(mode_request(mode)), EBUSY) << mode_name(mode);
  }
  EXPECT_EQ(vm_mode(vm()), before);
}

// One VM of a given mode running the 4 KiB and 2 MiB access matrices.
struct ModeRun {
  std::vector<TestWalk> walks;
  CaseSet set;
  std::vector<AccessResult> results;
  std::vector<std::string> mismatches;
};

::testing::AssertionResult run_in_mode(const kvmx::System& sys, std::uint32_t mode, ModeRun& run) {
  GuestVm guest(sys);
  auto set_mode = guest.vm().try_enable_cap(KVMX_CAP_MMU_MODE, mode);
  if (!set_mode) return ::testing::AssertionFailure() << "setting " << mode_name(mode) << ": " << set_mode.error().message();
  if (guest.vm().try_check_extension(KVMX_CAP_MMU_MODE).value_or(-1) != int(mode)) {
    return ::testing::AssertionFailure() << "the VM does not report mode " << mode_name(mode);
  }
  MmuGuest mmu(guest);
  const Features f = features_of(sys);
  run.walks.reserve(2);  // the case set points into it
  run.walks.push_back(build_test_walk(mmu, PageSize::k4K, f));
  run.walks.push_back(build_test_walk(mmu, PageSize::k2M, f));
  add_cases(run.set, run.walks[0], rights_variants(), f);
  add_cases(run.set, run.walks[1], rights_variants(), f);
  add_cases(run.set, run.walks[0], not_present_variants(), f);
  auto ok = run_cases(mmu, run.set, run.results);
  if (!ok) return ok << " (" << mode_name(mode) << ")";
  run.mismatches = mismatches(run.set, run.results, f, mode == KVMX_MMU_MODE_TDP);
  return ::testing::AssertionSuccess();
}

// Whether the TDP and the shadow result of case `c` agree on everything the architecture fixes:
// fault, error code (up to the CPU's P bit on reserved-bit faults, see error_code_matches()), CR2,
// the value read and the entries, except the accessed bits above the leaf of a faulting walk.
bool same_outcome(const AccessCase& c, AccessResult tdp, AccessResult shadow) {
  if (error_code_matches(static_cast<std::uint32_t>(shadow.error_code), tdp.error_code, true)) {
    tdp.error_code = shadow.error_code;
  }
  if (tdp.faulted) {
    for (std::uint32_t i = 0; i + 1 < c.nentries; ++i) {
      tdp.entry[i] &= ~kvmx::x86::kPteAccessed;
      shadow.entry[i] &= ~kvmx::x86::kPteAccessed;
    }
  }
  return std::memcmp(&tdp, &shadow, sizeof tdp) == 0;
}

// Guards: one process runs a TDP VM and a shadow VM side by side; the same access matrices give
// the same results in both, and both follow the architectural rule.
TEST_F(MmuMode, BothModesInOneProcess) {
  if (!offers_vcpus()) GTEST_SKIP() << "needs vCPUs: KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS) is 0";
  if ((offered_ & KVMX_MMU_MODE_TDP) == 0 || (offered_ & KVMX_MMU_MODE_SHADOW) == 0) {
    GTEST_SKIP() << "needs both MMU modes; this host offers mask " << offered_;
  }
  ModeRun tdp, shadow;
  ASSERT_TRUE(run_in_mode(sys(), KVMX_MMU_MODE_TDP, tdp));
  ASSERT_TRUE(run_in_mode(sys(), KVMX_MMU_MODE_SHADOW, shadow));
  ASSERT_EQ(tdp.results.size(), shadow.results.size());
  std::size_t differ = 0;
  for (std::size_t n = 0; n < tdp.results.size(); ++n) {
    const AccessResult &a = tdp.results[n], &b = shadow.results[n];
    if (same_outcome(tdp.set.cases[n], a, b)) continue;
    if (++differ <= 10) {
      ADD_FAILURE() << describe_case(tdp.set, n) << ": TDP #PFs " << a.faulted << " error code " << a.error_code
                    << " leaf " << std::hex << a.entry[tdp.set.cases[n].nentries - 1] << std::dec << "; shadow #PFs "
                    << b.faulted << " error code " << b.error_code << " leaf " << std::hex
                    << b.entry[tdp.set.cases[n].nentries - 1];
    }
  }
  EXPECT_EQ(differ, 0u) << "cases whose results differ between the modes, of " << tdp.results.size();
  for (std::size_t i = 0; i < tdp.mismatches.size() && i < 10; ++i) ADD_FAILURE() << "TDP: " << tdp.mismatches[i];
  for (std::size_t i = 0; i < shadow.mismatches.size() && i < 10; ++i) ADD_FAILURE() << "shadow: " << shadow.mismatches[i];
  EXPECT_TRUE(tdp.mismatches.empty() && shadow.mismatches.empty());
}

}  // namespace
}  // namespace mmu_suite
