// kvmx-demo: show what the hypervisor device can do, and run a guest if it can.
//
//   kvmx-demo [--device PATH]        (default $KVMX_DEVICE, else /dev/kvmx)
//
// Prints TAP and a closing "N passed, N failed" line. A device that cannot create vCPUs yet, or a
// VM that does not run real mode (where the guest starts; KVMX_CAP_REAL_MODE), is not a failure:
// the guest step is skipped with the reason, and the exit status is 0.
#include "kvmx/linux_kvm.h"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <string_view>

#include "demo_guest.h"
#include "kvmx/kvmx.hpp"

namespace {

class Tap {
 public:
  explicit Tap(int planned) { std::printf("TAP version 13\n1..%d\n", planned); }
  void note(const std::string& text) { std::printf("# %s\n", text.c_str()); }
  void ok(const std::string& what) {
    std::printf("ok %d %s\n", ++n_, what.c_str());
    ++passed_;
  }
  void not_ok(const std::string& what, const std::string& why) {
    note(why);
    std::printf("not ok %d %s\n", ++n_, what.c_str());
    ++failed_;
  }
  void skip(const std::string& what, const std::string& why) {
    std::printf("ok %d %s # SKIP %s\n", ++n_, what.c_str(), why.c_str());
    ++skipped_;
  }
  int finish() {
    std::printf("%d passed, %d failed", passed_, failed_);
    if (skipped_) std::printf(", %d skipped", skipped_);
    std::printf("\n");
    return failed_ == 0 ? 0 : 1;
  }

 private:
  int n_ = 0, passed_ = 0, failed_ = 0, skipped_ = 0;
};

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

void print_capabilities(Tap& tap, const kvmx::System& sys) {
  tap.note("KVM_CHECK_EXTENSION:");
  for (const kvmx::NamedValue& cap : kvmx::cap_table()) {
    auto r = sys.try_check_extension(cap.value);
    char line[128];
    if (r) {
      std::snprintf(line, sizeof line, "  %-36.*s %d", static_cast<int>(cap.name.size()), cap.name.data(), *r);
    } else {
      std::snprintf(line, sizeof line, "  %-36.*s error %s", static_cast<int>(cap.name.size()), cap.name.data(),
                    std::string(kvmx::errno_name(r.err())).c_str());
    }
    tap.note(line);
  }
}

// Result of running the demo guest: empty on success, else what went wrong.
struct GuestRun {
  std::string failure;
  std::string console;
  std::map<std::uint32_t, int> exits;  // by reason
};

// Real mode at 0:kLoadAddress with the reset state's other segments (base 0).
void enter_real_mode_at_load_address(kvmx::Vcpu& vcpu) {
  kvm_sregs sregs = vcpu.get_sregs();
  sregs.cs.selector = 0;
  sregs.cs.base = 0;
  vcpu.set_sregs(sregs);
  kvm_regs regs{};
  regs.rip = demo::kLoadAddress;
  regs.rflags = 0x2;
  vcpu.set_regs(regs);
}

GuestRun run_guest(const kvmx::System& sys, kvmx::Vm& vm, kvmx::Vcpu& vcpu) {
  GuestRun result;
  kvmx::MemoryRegion& memory = vm.add_memory(0, 0, demo::kMemorySize);
  const std::size_t blob = static_cast<std::size_t>(demo_guest_end - demo_guest_start);
  std::memcpy(memory.host() + demo::kLoadAddress, demo_guest_start, blob);

  // Long mode needs CPUID.LM in the guest's CPUID (KVM refuses EFER.LME otherwise).
  if (sys.try_check_extension(KVM_CAP_EXT_CPUID).value_or(0) > 0) vcpu.set_cpuid(sys.supported_cpuid());
  enter_real_mode_at_load_address(vcpu);

  std::vector<std::uint32_t> reports;
  bool mmio_written = false, mmio_read = false;
  for (int i = 0; i < 1000; ++i) {
    kvmx::Exit e = vcpu.run();
    ++result.exits[kvmx::exit_reason(e)];
    if (auto* out = std::get_if<kvmx::exit::IoOut>(&e); out && out->port == demo::kConsolePort && out->size == 1) {
      result.console.append(reinterpret_cast<const char*>(out->data.data()), out->data.size());
    } else if (out && out->port == demo::kReportPort && out->size == 4) {
      reports.push_back(static_cast<std::uint32_t>(out->value()));
    } else if (auto* mmio = std::get_if<kvmx::exit::Mmio>(&e); mmio && mmio->addr == demo::kMmioAddress) {
      if (mmio->is_write) {
        if (mmio->value() != demo::kMmioWriteValue) result.failure = "MMIO write of " + hex(mmio->value());
        mmio_written = true;
      } else {
        mmio->set_value(demo::kMmioReadValue);
        mmio_read = true;
      }
    } else if (std::holds_alternative<kvmx::exit::Hlt>(e)) {
      break;
    } else {
      result.failure = "unexpected exit " + kvmx::describe(e);
      return result;
    }
    if (!result.failure.empty()) return result;
  }

  // Check what the guest did against what it was told to do.
  std::uint64_t expected_sum = 0;
  const auto* words = reinterpret_cast<const std::uint64_t*>(memory.host() + demo::kPatternAddress);
  for (std::uint64_t i = 0; i < demo::kPatternWords; ++i) {
    if (words[i] != i * demo::kPatternStep) {
      result.failure = "guest memory word " + std::to_string(i) + " is " + hex(words[i]);
      return result;
    }
    expected_sum += i * demo::kPatternStep;
  }
  if (result.exits[KVM_EXIT_HLT] == 0) result.failure = "the guest never halted";
  else if (!mmio_written || !mmio_read) result.failure = "the guest's MMIO write and read did not both exit";
  else if (reports.size() != 3) result.failure = "the guest reported " + std::to_string(reports.size()) + " values, not 3";
  else if ((std::uint64_t{reports[1]} << 32 | reports[0]) != expected_sum) result.failure = "the guest's memory sum is wrong";
  else if (reports[2] != demo::kMmioReadValue) result.failure = "the guest read " + hex(reports[2]) + " from MMIO";
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  std::string device = kvmx::System::default_device();
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--device" && i + 1 < argc) {
      device = argv[++i];
    } else if (arg.starts_with("--device=")) {
      device = std::string(arg.substr(9));
    } else {
      std::fprintf(stderr, "usage: %s [--device PATH]\n", argv[0]);
      return 2;
    }
  }

  Tap tap(4);
  auto opened = kvmx::System::try_open(device);
  if (!opened) {
    tap.not_ok("open " + device, opened.error().message());
    return tap.finish();
  }
  const kvmx::System sys = std::move(opened).value();
  auto version = sys.try_api_version();
  if (!version || *version != kvmx::kApiVersion) {
    tap.not_ok("open " + device + " and read the API version",
               version ? "API version " + std::to_string(*version) + ", wanted 12" : version.error().message());
    return tap.finish();
  }
  tap.ok("open " + device + ": API version 12");

  print_capabilities(tap, sys);
  tap.ok("KVM_CHECK_EXTENSION answered for " + std::to_string(kvmx::cap_table().size()) + " capabilities");

  auto vm = sys.try_create_vm();
  if (!vm) {
    tap.not_ok("create a VM", vm.error().message());
    return tap.finish();
  }
  {
    auto spare = sys.try_create_vm();
    auto closed = spare ? spare->try_close() : kvmx::Result<void>(spare.error());
    if (!closed.ok()) {
      tap.not_ok("create and close a VM", closed.error().message());
      return tap.finish();
    }
  }
  tap.ok("create and close a VM");

  const std::string guest = "run a guest: real mode -> protected mode -> long mode, port I/O, memory, MMIO, HLT";
  auto vcpu = vm->try_create_vcpu(0);
  if (!vcpu) {
    tap.not_ok(guest, "creating vCPU 0: " + vcpu.error().message());
    return tap.finish();
  }
  if (!vm->try_runs_real_mode().value_or(true)) {
    tap.skip(guest, "this VM does not run real mode, where the guest starts (KVMX_CAP_REAL_MODE is 0 on its fd: "
                    "VMX without EPT has no unrestricted guest)");
    return tap.finish();
  }
  try {
    const GuestRun run = run_guest(sys, *vm, *vcpu);
    std::string console = run.console;
    while (!console.empty() && console.back() == '\n') console.pop_back();
    tap.note("guest console: " + console);
    std::string exits = "exits by reason:";
    for (const auto& [reason, count] : run.exits) exits += " " + kvmx::describe_exit_reason(reason) + " x" + std::to_string(count);
    tap.note(exits);
    if (run.failure.empty()) tap.ok(guest);
    else tap.not_ok(guest, run.failure);
  } catch (const kvmx::Failure& f) {
    tap.not_ok(guest, f.what());
  }
  return tap.finish();
}
