#include <gtest/gtest.h>

#include <set>
#include <string>

#include "kvmx/bench/bench.hpp"
#include "kvmx/bench/guest_abi.h"

namespace {

using namespace kvmx::bench;

// Guards: every scale exists, and each bigger scale does at least as much work.
TEST(Sizes, ScalesGrow) {
  const auto check = Sizes::for_scale("check"), small = Sizes::for_scale("small"), full = Sizes::for_scale("full");
  ASSERT_TRUE(check && small && full);
  EXPECT_FALSE(Sizes::for_scale("huge"));
  EXPECT_EQ(check->reps, 1u);
  EXPECT_LT(check->exit_iterations, small->exit_iterations);
  EXPECT_LT(small->random_mib, full->random_mib);
  EXPECT_LE(full->fork_pages, 512u);  // one leaf table
}

// Guards: workload names are unique and findable, as the suite and --only rely on.
TEST(Workloads, NamesAreUnique) {
  std::set<std::string_view> names;
  for (const Workload& w : workloads()) {
    EXPECT_TRUE(names.insert(w.name).second) << w.name;
    EXPECT_EQ(find_workload(w.name), &w);
  }
  EXPECT_EQ(find_workload("nope"), nullptr);
}

// Guards: the record escapes strings and carries failures and unavailability as the reader
// (ci/testhost_lib/bench.py) expects.
TEST(Json, EscapesAndFields) {
  Target t;
  t.device = "/dev/kvmx";
  t.impl = "kvmx";
  t.requested = "shadow";
  t.mode = "shadow";
  t.how = "quote \" backslash \\ newline \n";
  t.unavailable = "no vCPUs";
  Result ok;
  ok.workload = "pio";
  ok.unit = "exit";
  ok.reps.push_back({0.5, 1000, {{"io", 1000}}});
  ok.median_ns = ok.min_ns = ok.max_ns = 500000;
  Result bad;
  bad.workload = "hlt";
  bad.unit = "exit";
  bad.failure = "wake-ups: expected 0x2, got 0x1";
  const std::string j = to_json(t, *Sizes::for_scale("check"), {ok, bad});
  EXPECT_NE(j.find(R"("how":"quote \" backslash \\ newline \n")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("available":false,"unavailable":"no vCPUs")"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("workload":"pio","unit":"exit","ok":true,"ns_per_iter":{"median":500000)"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("exits":{"io":1000})"), std::string::npos) << j;
  EXPECT_NE(j.find(R"("workload":"hlt","unit":"exit","ok":false,"failure":"wake-ups)"), std::string::npos) << j;
  EXPECT_EQ(j.find('\n'), std::string::npos);  // one console line
}

// Guards: the walk index stays in range (the host replays exactly what the guest computes).
TEST(Walk, IndexInRange) {
  std::uint64_t x = 1;
  for (int i = 0; i < 100000; ++i) {
    ASSERT_LT(walk_index(x, 1000), 1000u);
    x = walk_next(x, i);
  }
}

}  // namespace
