// TAP version 13 output for GoogleTest, as kselftest prints it, plus the closing line the
// test-host harness reads (docs/build-layout.md):
//
//   TAP version 13
//   1..3
//   ok 1 Smoke.ApiVersion
//   # smoke_test.cpp:40: Failure
//   # Expected equality of these values: ...
//   not ok 2 Smoke.CreateVm
//   ok 3 Smoke.Huge # SKIP needs KVM_CAP_X
//   1 passed, 1 failed, 1 skipped
//
// When a global environment fails to set up (the device does not open), GoogleTest runs no test:
// the listener prints "Bail out!" and counts every planned test as failed.
//
// Failure messages go out as "# " lines the moment they happen, before the test's result line,
// so they survive a later crash or hang.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <string_view>

namespace kvmx::test {

class TapListener : public ::testing::EmptyTestEventListener {
 public:
  explicit TapListener(std::FILE* out) : out_(out) {}

  // A "# " line printed right after the plan (the device and cell the suite runs in).
  void set_preamble(std::string preamble) { preamble_ = std::move(preamble); }

  void OnTestIterationStart(const ::testing::UnitTest& unit, int iteration) override;
  void OnEnvironmentsSetUpEnd(const ::testing::UnitTest& unit) override;
  void OnTestStart(const ::testing::TestInfo& info) override;
  void OnTestPartResult(const ::testing::TestPartResult& result) override;
  void OnTestEnd(const ::testing::TestInfo& info) override;
  void OnTestIterationEnd(const ::testing::UnitTest& unit, int iteration) override;

  int passed() const { return passed_; }
  int failed() const { return failed_; }
  int skipped() const { return skipped_; }

 private:
  void diagnostic(std::string_view text);

  std::FILE* out_;
  std::string preamble_;
  bool bailed_out_ = false;
  bool header_done_ = false;
  int number_ = 0;
  int passed_ = 0;
  int failed_ = 0;
  int skipped_ = 0;
  bool failure_outside_tests_ = false;
};

// While a test runs, SIGSEGV/SIGBUS/SIGILL/SIGFPE/SIGABRT print "not ok N Name # crashed by SIGSEGV"
// and "Bail out!", then kill the process with the same signal; a test running longer than
// `timeout_s` (0: no limit) is reported the same way as "# timed out after Ns".
void install_crash_reporter(unsigned timeout_s);

}  // namespace kvmx::test
