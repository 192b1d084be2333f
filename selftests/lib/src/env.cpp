#include "kvmx/test/env.hpp"

#include <cpuid.h>

#include <cstdlib>
#include <cstring>
#include <optional>

#include "kvmx/system.hpp"

namespace kvmx::test {
namespace {

TestEnv g_env{std::string(kDefaultDevice), Impl::kvmx, Cpu::unknown, Mmu::unknown, 60};

Cpu host_cpu() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return Cpu::unknown;
  char vendor[13];
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  vendor[12] = '\0';
  if (std::strcmp(vendor, "AuthenticAMD") == 0 || std::strcmp(vendor, "HygonGenuine") == 0) return Cpu::amd;
  if (std::strcmp(vendor, "GenuineIntel") == 0) return Cpu::intel;
  return Cpu::unknown;
}

const char* getenv_nonempty(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

// Removes argv[i] (and argv[i + 1] when `with_value`), returning the value.
std::optional<std::string> take_option(int& argc, char** argv, std::string_view option, std::string& error) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    int used = 0;
    std::string value;
    if (arg == option) {
      if (i + 1 >= argc) {
        error = std::string(option) + " needs a value";
        return std::nullopt;
      }
      value = argv[i + 1];
      used = 2;
    } else if (arg.starts_with(option) && arg.size() > option.size() && arg[option.size()] == '=') {
      value = std::string(arg.substr(option.size() + 1));
      used = 1;
    } else {
      continue;
    }
    for (int j = i; j + used <= argc; ++j) argv[j] = argv[j + used];
    argc -= used;
    return value;
  }
  return std::nullopt;
}

bool parse_unsigned(const std::string& s, unsigned& out) {
  char* end = nullptr;
  const unsigned long v = std::strtoul(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v > 86400) return false;
  out = static_cast<unsigned>(v);
  return true;
}

}  // namespace

const TestEnv& env() { return g_env; }

std::string_view name(Impl impl) { return impl == Impl::kvm ? "kvm" : "kvmx"; }
std::string_view name(Cpu cpu) {
  return cpu == Cpu::amd ? "amd" : cpu == Cpu::intel ? "intel" : "unknown";
}
std::string_view name(Mmu mmu) {
  return mmu == Mmu::tdp ? "tdp" : mmu == Mmu::shadow ? "shadow" : "unknown";
}

std::string init_env(int& argc, char** argv) {
  std::string error;
  TestEnv e;
  const auto device = take_option(argc, argv, "--device", error);
  const auto timeout = take_option(argc, argv, "--timeout", error);
  if (!error.empty()) return error;

  e.device = device ? *device : System::default_device();
  setenv("KVMX_DEVICE", e.device.c_str(), 1);

  const std::string_view device_name = std::string_view(e.device).substr(e.device.rfind('/') + 1);
  e.impl = device_name == "kvm" ? Impl::kvm : Impl::kvmx;
  if (const char* v = getenv_nonempty("KVMX_IMPL")) {
    if (std::strcmp(v, "kvm") == 0) e.impl = Impl::kvm;
    else if (std::strcmp(v, "kvmx") == 0) e.impl = Impl::kvmx;
    else return std::string("KVMX_IMPL must be kvm or kvmx, not ") + v;
  }

  e.cpu = host_cpu();
  if (const char* v = getenv_nonempty("KVMX_CPU")) {
    if (std::strcmp(v, "amd") == 0) e.cpu = Cpu::amd;
    else if (std::strcmp(v, "intel") == 0) e.cpu = Cpu::intel;
    else return std::string("KVMX_CPU must be amd or intel, not ") + v;
  }

  e.mmu = Mmu::unknown;
  if (const char* v = getenv_nonempty("KVMX_MMU")) {
    if (std::strcmp(v, "tdp") == 0) e.mmu = Mmu::tdp;
    else if (std::strcmp(v, "shadow") == 0) e.mmu = Mmu::shadow;
    else return std::string("KVMX_MMU must be tdp or shadow, not ") + v;
  }

  e.timeout_s = 60;
  if (const char* v = getenv_nonempty("KVMX_TEST_TIMEOUT")) {
    if (!parse_unsigned(v, e.timeout_s)) return std::string("KVMX_TEST_TIMEOUT must be seconds, not ") + v;
  }
  if (timeout && !parse_unsigned(*timeout, e.timeout_s)) return "--timeout must be seconds, not " + *timeout;

  g_env = std::move(e);
  return {};
}

}  // namespace kvmx::test
