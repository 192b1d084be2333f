// kvmx-bench: workloads in minimal VMs, timed from the host, each checking its own result.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "kvmx/kvmx.hpp"

namespace kvmx::bench {

// Sizes and iteration counts of one run. "check" is what `make test` runs (correctness only),
// "small" fits an emulated test host, "full" is for real hardware.
struct Sizes {
  std::string scale;
  std::uint64_t exit_iterations = 0;
  std::uint64_t exit_warmup = 0;
  std::uint64_t touch_mib = 0;
  std::uint64_t random_mib = 0;
  std::uint64_t random_reads = 0;
  std::uint64_t churn_iterations = 0;
  std::uint64_t cr3_spaces = 0;
  std::uint64_t cr3_iterations = 0;
  std::uint64_t fork_pages = 0;
  unsigned reps = 0;

  static std::optional<Sizes> for_scale(std::string_view scale);
};

// The device and the MMU its VMs use.
struct Target {
  std::string device;
  std::string impl;       // "kvmx" or "kvm"
  std::string requested;  // "tdp", "shadow" or "default"
  std::string mode;       // what the VMs use: "tdp", "shadow" or "unknown"
  std::string how;        // how the mode was chosen or learned
  std::uint32_t per_vm_mode = 0;  // KVMX_MMU_MODE_* to set on each VM with KVMX_CAP_MMU_MODE, or 0
  std::optional<std::string> unavailable;  // why no workload can run on this target
};

// Which implementation is behind `sys` and whether it can run VMs in the `requested` MMU mode
// ("tdp", "shadow", "default"). Never throws for an unavailable mode: that is `unavailable`.
Target probe(const System& sys, std::string_view requested);

struct Rep {
  double seconds = 0;          // the timed part
  std::uint64_t iterations = 0;
  std::map<std::string, std::uint64_t> exits;  // userspace exits during the timed part, by reason
};

struct Result {
  std::string workload;
  std::string unit;  // what one iteration is
  std::vector<Rep> reps;
  std::optional<std::string> failure;  // wrong result or error: the workload failed
  double median_ns = 0, min_ns = 0, max_ns = 0;  // per iteration
};

struct Workload {
  std::string_view name;
  std::string_view unit;
  std::string_view description;
  Rep (*run_once)(const System& sys, const Target& target, const Sizes& sizes, unsigned rep);
};

const std::vector<Workload>& workloads();
const Workload* find_workload(std::string_view name);

// Every repetition of one workload; a wrong result or an error ends it with `failure` set.
Result run(const Workload& w, const System& sys, const Target& target, const Sizes& sizes);

// {"tool": "kvmx-bench", "target": {...}, "sizes": {...}, "results": [...]} on one line.
std::string to_json(const Target& target, const Sizes& sizes, const std::vector<Result>& results);

}  // namespace kvmx::bench
