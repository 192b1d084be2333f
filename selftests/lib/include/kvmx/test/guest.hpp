// GoogleTest glue for guest code: a fixture with a GuestVm and assertions on ucalls that print
// what the guest reported (a guest assertion shows its condition, expected and actual values).
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "kvmx/test/fixtures.hpp"
#include "kvmx/test/guest_vm.hpp"

namespace kvmx::test {

::testing::AssertionResult is_sync(const HostUcall& uc, std::uint64_t stage);
::testing::AssertionResult is_done(const HostUcall& uc);
::testing::AssertionResult is_exception(const HostUcall& uc, std::uint8_t vector);

// Why `vm`'s vCPUs do not run real mode (CR0.PE clear), or empty if they do
// (Vm::runs_real_mode(): always on in-tree KVM, KVMX_CAP_REAL_MODE on the VM fd on kvmx).
std::string real_mode_unavailable(const Vm& vm);

// A 64-bit guest VM per test; add vCPUs with guest().add_vcpu(entry).
class GuestTest : public SystemTest {
 protected:
  void SetUp() override;
  GuestVm& guest() { return *guest_; }
  virtual GuestOptions guest_options() const { return {}; }

 private:
  std::optional<GuestVm> guest_;
};

}  // namespace kvmx::test

#define KVMX_ASSERT_SYNC(uc, stage) ASSERT_TRUE(::kvmx::test::is_sync((uc), (stage)))
#define KVMX_EXPECT_SYNC(uc, stage) EXPECT_TRUE(::kvmx::test::is_sync((uc), (stage)))
#define KVMX_ASSERT_DONE(uc) ASSERT_TRUE(::kvmx::test::is_done(uc))
#define KVMX_EXPECT_DONE(uc) EXPECT_TRUE(::kvmx::test::is_done(uc))
#define KVMX_ASSERT_GUEST_EXCEPTION(uc, vector) ASSERT_TRUE(::kvmx::test::is_exception((uc), (vector)))

// As KVMX_REQUIRE_CAP, for guests that run with CR0.PE clear: GTEST_SKIP with the reason unless
// the VM runs real mode.
#define KVMX_REQUIRE_REAL_MODE(vm)                                                  \
  do {                                                                              \
    const std::string kvmx_no_real_mode_ = ::kvmx::test::real_mode_unavailable(vm); \
    if (!kvmx_no_real_mode_.empty()) GTEST_SKIP() << kvmx_no_real_mode_;            \
  } while (0)
