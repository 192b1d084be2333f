// One fixture per VM shape. Each opens the device named by --device / $KVMX_DEVICE; a failure
// to set up fails the test with the library's message (which names the module to load).
#pragma once

#include <gtest/gtest.h>

#include <optional>

#include "kvmx/kvmx.hpp"
#include "kvmx/test/assert.hpp"
#include "kvmx/test/env.hpp"

namespace kvmx::test {

// The device only.
class SystemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto r = System::try_open(env().device);
    ASSERT_TRUE(is_ok(r));
    sys_.emplace(std::move(r).value());
    // As KVM's selftests TEST_REQUIRE before creating vCPUs: a device without them (kvmx's Intel
    // backend for now) skips every test of a fixture that needs one.
    if (needs_vcpus() && !has_cap(KVM_CAP_MAX_VCPUS)) {
      GTEST_SKIP() << "needs vCPUs: KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS) is 0";
    }
  }
  System& sys() { return *sys_; }

  // Fixtures whose tests create vCPUs return true (VcpuTest, and suites' GuestTest fixtures).
  virtual bool needs_vcpus() const { return false; }

  // GTEST_SKIP unless KVM_CHECK_EXTENSION(cap) > 0; use as KVMX_REQUIRE_CAP(KVM_CAP_X).
  bool has_cap(long cap) { return sys().try_check_extension(cap).value_or(0) > 0; }

 private:
  std::optional<System> sys_;
};

// One empty VM (KVM_CREATE_VM type 0).
class VmTest : public SystemTest {
 protected:
  void SetUp() override {
    SystemTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto r = sys().try_create_vm();
    ASSERT_TRUE(is_ok(r));
    vm_.emplace(std::move(r).value());
  }
  Vm& vm() { return *vm_; }

 private:
  std::optional<Vm> vm_;
};

// One VM with vCPU 0 and no memory.
class VcpuTest : public VmTest {
 protected:
  bool needs_vcpus() const override { return true; }
  void SetUp() override {
    VmTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto r = vm().try_create_vcpu(0);
    ASSERT_TRUE(is_ok(r));
    vcpu_.emplace(std::move(r).value());
  }
  Vcpu& vcpu() { return *vcpu_; }

 private:
  std::optional<Vcpu> vcpu_;
};

}  // namespace kvmx::test

#define KVMX_REQUIRE_CAP(cap) \
  do {                        \
    if (!has_cap(cap)) GTEST_SKIP() << "needs " #cap; \
  } while (0)
