// kvmx-bench: shadow paging against NPT/EPT, kvmx against in-tree KVM (docs/bench.md).
//
//   kvmx-bench [--device PATH] [--mmu tdp|shadow|default] [--scale check|small|full] [--reps N]
//              [--only NAME,...] [--json FILE] [--list]
//
// Prints TAP (one test point per workload: ok when it computed the right thing, with its timing as
// a comment), a "# KVMX-BENCH-JSON {...}" line with every number, and a closing "N passed, N
// failed" line. Timings are measurements, never pass/fail criteria. A target that cannot run the
// requested MMU mode skips every workload, saying why, and exits 0.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "kvmx/bench/bench.hpp"

namespace {

using namespace kvmx::bench;

void usage(std::FILE* f) {
  std::fprintf(f,
               "usage: kvmx-bench [--device PATH] [--mmu tdp|shadow|default] [--scale check|small|full]\n"
               "                  [--reps N] [--only NAME,...] [--json FILE] [--list]\n"
               "  --device  /dev/kvmx or /dev/kvm (default $KVMX_DEVICE, else /dev/kvmx)\n"
               "  --mmu     MMU of the VMs (default $KVMX_MMU, else the device's default); on kvmx\n"
               "            set per VM with KVMX_CAP_MMU_MODE, on KVM read from kvm_amd.npt/kvm_intel.ept\n"
               "  --scale   check: correctness at a small size (make test); small: emulated test\n"
               "            hosts (default); full: real hardware\n"
               "  --reps    repetitions per workload (median, min, max)\n");
}

std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const auto comma = s.find(',');
    out.emplace_back(s.substr(0, comma));
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  return out;
}

std::string exits_text(const Rep& rep) {
  std::string s;
  for (const auto& [name, count] : rep.exits) {
    s += s.empty() ? "" : " ";
    s += name + "=" + std::to_string(count);
  }
  return s.empty() ? "none" : s;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = kvmx::System::default_device();
  const char* env_mmu = std::getenv("KVMX_MMU");
  std::string mmu = env_mmu && *env_mmu ? env_mmu : "default";
  std::string scale = "small", json_file;
  unsigned reps = 0;
  std::vector<std::string> only;
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "kvmx-bench: %s needs a value\n", argv[i]);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--device") {
      device = value();
    } else if (a == "--mmu") {
      mmu = value();
    } else if (a == "--scale") {
      scale = value();
    } else if (a == "--reps") {
      reps = static_cast<unsigned>(std::strtoul(value().c_str(), nullptr, 10));
      if (reps == 0) {
        std::fprintf(stderr, "kvmx-bench: --reps must be at least 1\n");
        return 2;
      }
    } else if (a == "--only") {
      only = split(value());
    } else if (a == "--json") {
      json_file = value();
    } else if (a == "--list") {
      for (const Workload& w : workloads()) {
        std::printf("%-11s per %-6s %s\n", std::string(w.name).c_str(), std::string(w.unit).c_str(),
                    std::string(w.description).c_str());
      }
      return 0;
    } else if (a == "--help" || a == "-h") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "kvmx-bench: unknown argument %s\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (mmu != "tdp" && mmu != "shadow" && mmu != "default") {
    std::fprintf(stderr, "kvmx-bench: --mmu must be tdp, shadow or default\n");
    return 2;
  }
  auto sizes = Sizes::for_scale(scale);
  if (!sizes) {
    std::fprintf(stderr, "kvmx-bench: --scale must be check, small or full\n");
    return 2;
  }
  if (reps) sizes->reps = reps;
  std::vector<const Workload*> selected;
  for (const Workload& w : workloads()) {
    if (only.empty()) selected.push_back(&w);
  }
  for (const std::string& name : only) {
    const Workload* w = find_workload(name);
    if (!w) {
      std::fprintf(stderr, "kvmx-bench: no workload %s (see --list)\n", name.c_str());
      return 2;
    }
    selected.push_back(w);
  }

  std::printf("TAP version 13\n1..%zu\n", selected.size());
  auto sys = kvmx::System::try_open(device);
  if (!sys) {
    std::printf("Bail out! %s\n", sys.error().message().c_str());
    return 1;
  }
  const Target target = probe(*sys, mmu);
  std::printf("# kvmx-bench: %s (%s), MMU %s: %s; scale %s, %u repetitions\n", target.device.c_str(),
              target.impl.c_str(), target.mode.c_str(), target.how.c_str(), sizes->scale.c_str(), sizes->reps);
  std::fflush(stdout);

  std::vector<Result> results;
  int n = 0, passed = 0, failed = 0, skipped = 0;
  for (const Workload* w : selected) {
    ++n;
    const std::string name(w->name);
    if (target.unavailable) {
      std::printf("ok %d %s # SKIP %s MMU not available: %s\n", n, name.c_str(), target.requested.c_str(),
                  target.unavailable->c_str());
      ++skipped;
      continue;
    }
    Result r = run(*w, *sys, target, *sizes);
    if (r.failure) {
      std::printf("# %s: %s\nnot ok %d %s\n", name.c_str(), r.failure->c_str(), n, name.c_str());
      ++failed;
    } else {
      std::printf("# %s: %.1f ns/%s (min %.1f, max %.1f over %zu), userspace exits per run: %s\n", name.c_str(),
                  r.median_ns, r.unit.c_str(), r.min_ns, r.max_ns, r.reps.size(), exits_text(r.reps.back()).c_str());
      std::printf("ok %d %s\n", n, name.c_str());
      ++passed;
    }
    std::fflush(stdout);
    results.push_back(std::move(r));
  }
  const std::string json = to_json(target, *sizes, results);
  std::printf("# KVMX-BENCH-JSON %s\n", json.c_str());
  if (!json_file.empty()) {
    std::ofstream out(json_file);
    out << json << "\n";
    if (!out) std::fprintf(stderr, "kvmx-bench: cannot write %s\n", json_file.c_str());
  }
  std::printf("%d passed, %d failed", passed, failed);
  if (skipped) std::printf(", %d skipped", skipped);
  std::printf("\n");
  return failed ? 1 : 0;
}
