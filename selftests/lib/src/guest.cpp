#include "kvmx/test/guest.hpp"

namespace kvmx::test {

::testing::AssertionResult is_sync(const HostUcall& uc, std::uint64_t stage) {
  if (uc.kind == guest::UcallKind::sync && !uc.values.empty() && uc.values[0] == stage) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "wanted guest SYNC " << stage << ", got " << uc.describe();
}

::testing::AssertionResult is_done(const HostUcall& uc) {
  if (uc.kind == guest::UcallKind::done) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "wanted guest DONE, got " << uc.describe();
}

::testing::AssertionResult is_exception(const HostUcall& uc, std::uint8_t vector) {
  if (uc.kind == guest::UcallKind::exception && !uc.values.empty() && uc.values[0] == vector) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "wanted guest exception vector " << unsigned{vector} << ", got "
                                       << uc.describe();
}

std::string real_mode_unavailable(const Vm& vm) {
  if (vm.runs_real_mode()) return {};
  const int mode = vm.try_check_extension(KVMX_CAP_MMU_MODE).value_or(0);
  const std::string mode_name = mode == KVMX_MMU_MODE_TDP      ? "TDP"
                                : mode == KVMX_MMU_MODE_SHADOW ? "shadow"
                                                               : std::to_string(mode);
  return "this VM (MMU mode " + mode_name +
         ") does not run real mode: KVMX_CAP_REAL_MODE is 0 on its fd (VMX without EPT has no unrestricted guest)";
}

void GuestTest::SetUp() {
  SystemTest::SetUp();
  if (HasFatalFailure() || IsSkipped()) return;
  // Like KVM's selftests: a device that offers no vCPUs (kvmx under tdp=0, for now) skips
  // every guest test instead of failing it.
  if (sys().try_check_extension(KVM_CAP_MAX_VCPUS).value_or(0) <= 0) {
    GTEST_SKIP() << "the device offers no vCPUs (KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS) is 0)";
  }
  try {
    guest_.emplace(sys(), guest_options());
  } catch (const Failure& f) {
    FAIL() << "setting up the guest VM: " << f.what();
  }
}

}  // namespace kvmx::test
