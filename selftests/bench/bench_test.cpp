// bench: every kvmx-bench workload, at --scale check, computes the right thing on this device in
// this cell's MMU mode. The numbers are thrown away: performance is never a test assertion.
#include <gtest/gtest.h>

#include <string>

#include "kvmx/bench/bench.hpp"
#include "kvmx/test/env.hpp"
#include "kvmx/test/fixtures.hpp"

namespace {

using kvmx::bench::Result;
using kvmx::bench::Sizes;
using kvmx::bench::Target;
using kvmx::bench::Workload;

class Workloads : public kvmx::test::SystemTest, public ::testing::WithParamInterface<std::string> {
 protected:
  bool needs_vcpus() const override { return true; }
};

// Guards: the workload's guest computes what the host expects (sums, tags, fault counts, exits
// by reason), at the cell's MMU mode ($KVMX_MMU; on kvmx chosen per VM with KVMX_CAP_MMU_MODE
// when the device offers it).
TEST_P(Workloads, ComputeTheRightResult) {
  const kvmx::test::Mmu mmu = kvmx::test::env().mmu;
  const std::string requested = mmu == kvmx::test::Mmu::unknown ? "default" : std::string(kvmx::test::name(mmu));
  const Target target = kvmx::bench::probe(sys(), requested);
  if (target.unavailable) GTEST_SKIP() << requested << " MMU not available: " << *target.unavailable;
  const Workload* w = kvmx::bench::find_workload(GetParam());
  ASSERT_NE(w, nullptr);
  const Result r = kvmx::bench::run(*w, sys(), target, *Sizes::for_scale("check"));
  EXPECT_FALSE(r.failure) << *r.failure;
  EXPECT_EQ(r.reps.size(), 1u);
}

std::vector<std::string> names() {
  std::vector<std::string> out;
  for (const Workload& w : kvmx::bench::workloads()) out.emplace_back(w.name);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Bench, Workloads, ::testing::ValuesIn(names()), [](const auto& info) {
  std::string n = info.param;
  for (char& c : n) {
    if (c == '-') c = '_';
  }
  return n;
});

}  // namespace
