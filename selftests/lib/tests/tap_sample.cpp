// One test of each outcome, to pin down the TAP the suite main prints.
#include <gtest/gtest.h>
#include <unistd.h>

#include "kvmx/test/suite.hpp"

namespace {

TEST(Sample, Passes) { EXPECT_EQ(1, 1); }

TEST(Sample, FailsTwice) {
  EXPECT_EQ(2, 1 + 2) << "first";
  ADD_FAILURE() << "second\nwith two lines";
}

TEST(Sample, Skips) { GTEST_SKIP() << "needs KVM_CAP_NOTHING"; }

TEST(Sample, SkipsWithoutReason) { GTEST_SKIP(); }

TEST(Sample, ThrowsFailure) { throw std::runtime_error("KVM_RUN: EFAULT (Bad address)"); }

// Run only on purpose (--gtest_also_run_disabled_tests) to check the crash and timeout reports.
TEST(Sample, DISABLED_Crashes) {
  volatile int* null = nullptr;
  *null = 1;
}

TEST(Sample, DISABLED_Hangs) {
  for (;;) pause();
}

}  // namespace

int main(int argc, char** argv) { return kvmx::test::run_suite(argc, argv, {.needs_device = false}); }
