#include "kvmx/test/suite.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "kvmx/system.hpp"
#include "kvmx/test/env.hpp"
#include "kvmx/test/tap.hpp"

namespace kvmx::test {
namespace {

// Opens the device once before any test, so a missing module is reported once, by name.
class DeviceCheck : public ::testing::Environment {
 public:
  void SetUp() override {
    auto sys = System::try_open(env().device);
    if (!sys) FAIL() << sys.error().message();
  }
};

}  // namespace

int run_suite(int argc, char** argv, const SuiteOptions& options) {
  const std::string env_error = init_env(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  if (!env_error.empty()) {
    std::fprintf(stderr, "%s: %s\n", argv[0], env_error.c_str());
    return 2;
  }
  if (GTEST_FLAG_GET(list_tests)) return RUN_ALL_TESTS();

  // stdout carries TAP only: replace GoogleTest's printer.
  ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
  delete listeners.Release(listeners.default_result_printer());
  auto* tap = new TapListener(stdout);
  listeners.Append(tap);

  tap->set_preamble("device " + env().device + ", impl " + std::string(name(env().impl)) + ", cpu " +
                    std::string(name(env().cpu)) + ", mmu " + std::string(name(env().mmu)));
  if (options.needs_device) ::testing::AddGlobalTestEnvironment(new DeviceCheck);

  install_crash_reporter(env().timeout_s);
  const int status = RUN_ALL_TESTS();
  return status == 0 && tap->failed() == 0 ? 0 : 1;
}

}  // namespace kvmx::test
