// Which implementation answers on the device, and which MMU its VMs will use.
#include <linux/kvmx.h>

#include <fstream>
#include <string>

#include "kvmx/bench/bench.hpp"

namespace kvmx::bench {
namespace {

// "Y"/"1" -> "tdp", "N"/"0" -> "shadow", else empty.
std::string mode_of_param(const std::string& path) {
  std::ifstream in(path);
  std::string v;
  if (!(in >> v)) return {};
  if (v == "Y" || v == "1") return "tdp";
  if (v == "N" || v == "0") return "shadow";
  return {};
}

std::string mode_of_mask(int mask) {
  if (mask == KVMX_MMU_MODE_TDP) return "tdp";
  if (mask == KVMX_MMU_MODE_SHADOW) return "shadow";
  return "unknown";
}

std::string modes_of_mask(int mask) {
  std::string s;
  if (mask & KVMX_MMU_MODE_TDP) s += "tdp";
  if (mask & KVMX_MMU_MODE_SHADOW) s += s.empty() ? "shadow" : " and shadow";
  return s.empty() ? "none" : s;
}

void probe_kvmx(const System& sys, Target& t) {
  const std::string param = mode_of_param("/sys/module/kvmx/parameters/tdp");
  const std::string param_text = param.empty() ? "kvmx.tdp unreadable" : "kvmx.tdp=" + std::string(param == "tdp" ? "1" : "0");
  const int mask = sys.try_check_extension(KVMX_CAP_MMU_MODE).value_or(0);
  if (mask <= 0) {
    // The per-VM choice is not there: every VM takes the module default.
    t.mode = param.empty() ? "unknown" : param;
    t.how = "module default " + param_text + " (KVMX_CAP_MMU_MODE is 0: no per-VM choice)";
    if (t.requested != "default" && t.requested != t.mode) {
      t.unavailable = "kvmx offers no per-VM MMU mode (KVMX_CAP_MMU_MODE is 0) and its module default is " +
                      t.mode + ", not " + t.requested;
    }
    return;
  }
  if (t.requested == "default") {
    auto vm = sys.try_create_vm();
    const int mode = vm ? vm->try_check_extension(KVMX_CAP_MMU_MODE).value_or(0) : 0;
    t.mode = mode_of_mask(mode);
    t.how = "new VMs' default (" + param_text + "), read back with KVMX_CAP_MMU_MODE";
    return;
  }
  const std::uint32_t bit = t.requested == "tdp" ? KVMX_MMU_MODE_TDP : KVMX_MMU_MODE_SHADOW;
  if (!(static_cast<std::uint32_t>(mask) & bit)) {
    t.mode = t.requested;
    t.unavailable = "this host offers MMU mode " + modes_of_mask(mask) + " (KVMX_CAP_MMU_MODE = " +
                    std::to_string(mask) + "), not " + t.requested;
    return;
  }
  t.mode = t.requested;
  t.per_vm_mode = bit;
  t.how = "set per VM with KVM_ENABLE_CAP(KVMX_CAP_MMU_MODE)";
}

void probe_kvm(Target& t) {
  std::string key = "kvm_amd.npt";
  std::string mode = mode_of_param("/sys/module/kvm_amd/parameters/npt");
  if (mode.empty()) {
    key = "kvm_intel.ept";
    mode = mode_of_param("/sys/module/kvm_intel/parameters/ept");
  }
  if (mode.empty()) {
    t.mode = "unknown";
    t.how = "neither kvm_amd.npt nor kvm_intel.ept is readable under /sys/module";
    if (t.requested != "default") t.unavailable = "cannot tell which MMU in-tree KVM uses (" + t.how + ")";
    return;
  }
  t.mode = mode;
  t.how = "module parameter " + key + "=" + (mode == "tdp" ? "Y" : "N");
  if (t.requested != "default" && t.requested != mode) {
    t.unavailable = "in-tree KVM's MMU is chosen when its module loads: " + key + "=" +
                    (mode == "tdp" ? "Y" : "N") + "; reload it to measure " + t.requested;
  }
}

}  // namespace

Target probe(const System& sys, std::string_view requested) {
  Target t;
  t.device = sys.path();
  t.requested = std::string(requested);
  const bool kvmx = sys.try_check_extension(KVMX_CAP_KVMX).value_or(0) > 0;
  t.impl = kvmx ? "kvmx" : "kvm";
  if (kvmx) {
    probe_kvmx(sys, t);
  } else {
    probe_kvm(t);
  }
  if (t.unavailable) return t;

  // A VM of this mode must offer vCPUs (kvmx's shadow paging offers none until it exists).
  auto vm = sys.try_create_vm();
  if (!vm) {
    t.unavailable = "KVM_CREATE_VM failed: " + vm.error().message();
    return t;
  }
  if (t.per_vm_mode) {
    auto set = vm->try_enable_cap(KVMX_CAP_MMU_MODE, t.per_vm_mode);
    if (!set) {
      t.unavailable = "KVM_ENABLE_CAP(KVMX_CAP_MMU_MODE, " + t.requested + ") failed: " + set.error().message();
      return t;
    }
  }
  auto vcpus = vm->try_check_extension(KVM_CAP_MAX_VCPUS);
  if (!vcpus) vcpus = sys.try_check_extension(KVM_CAP_MAX_VCPUS);
  if (vcpus && *vcpus <= 0) {
    t.unavailable = "the device offers no vCPUs to a " + t.mode + " VM (KVM_CHECK_EXTENSION(KVM_CAP_MAX_VCPUS) is 0)";
  }
  return t;
}

}  // namespace kvmx::bench
