// Which device and which test-host cell a suite runs in (docs/build-layout.md).
#pragma once

#include <string>
#include <string_view>

namespace kvmx::test {

enum class Impl { kvmx, kvm };
enum class Cpu { amd, intel, unknown };
enum class Mmu { tdp, shadow, unknown };

struct TestEnv {
  std::string device;  // --device, else $KVMX_DEVICE, else /dev/kvmx
  Impl impl;           // $KVMX_IMPL, else from the device name (".../kvm" is kvm)
  Cpu cpu;             // $KVMX_CPU, else the host's CPUID vendor
  Mmu mmu;             // $KVMX_MMU, else unknown
  unsigned timeout_s;  // --timeout / $KVMX_TEST_TIMEOUT: per-test limit in seconds, 0 for none
};

// Valid after init_env(); tests read it, never write it.
const TestEnv& env();

// Take --device PATH / --device=PATH and --timeout N / --timeout=N out of argv, read the
// environment, export KVMX_DEVICE so the library default and child processes agree. Returns an
// error message for a malformed option or environment value, else empty.
std::string init_env(int& argc, char** argv);

std::string_view name(Impl impl);
std::string_view name(Cpu cpu);
std::string_view name(Mmu mmu);

}  // namespace kvmx::test
