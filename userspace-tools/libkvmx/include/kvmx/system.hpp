// The hypervisor device (/dev/kvmx, or /dev/kvm as the reference).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "kvmx/error.hpp"
#include "kvmx/fd.hpp"
#include "kvmx/ioctl.hpp"
#include "kvmx/vcpu.hpp"
#include "kvmx/vm.hpp"

namespace kvmx {

inline constexpr std::string_view kDefaultDevice = "/dev/kvmx";
inline constexpr int kApiVersion = KVM_API_VERSION;  // 12

class System {
 public:
  // $KVMX_DEVICE if set and not empty, else /dev/kvmx.
  static std::string default_device();
  // What to load when `path` is missing: "modprobe kvmx-amd (AMD) or modprobe kvmx-intel (Intel)"
  // for .../kvmx, the same with kvm_amd/kvm_intel for .../kvm; empty for other names.
  static std::string module_hint(std::string_view path);

  static Result<System> try_open(const std::string& path);
  static System open(const std::string& path) { return try_open(path).value(); }
  static System open() { return open(default_device()); }
  // Wrap an fd opened elsewhere (or a deliberately bad one, for negative tests).
  static System adopt(Fd fd, std::string path);

  System(System&&) noexcept = default;
  System& operator=(System&&) noexcept = default;
  System(const System&) = delete;
  System& operator=(const System&) = delete;

  int fd() const noexcept { return device_ ? device_->get() : -1; }
  const std::string& path() const noexcept { return path_; }

  Result<int> try_api_version() const;
  int api_version() const { return try_api_version().value(); }
  Result<int> try_check_extension(long cap) const;
  int check_extension(long cap) const { return try_check_extension(cap).value(); }
  Result<int> try_vcpu_mmap_size() const;
  int vcpu_mmap_size() const { return try_vcpu_mmap_size().value(); }

  // KVM_CREATE_VM; the Vm shares the device fd (see Vm).
  Result<Vm> try_create_vm(unsigned long type = 0) const;
  Vm create_vm(unsigned long type = 0) const { return try_create_vm(type).value(); }

  Result<Cpuid> try_supported_cpuid() const;
  Cpuid supported_cpuid() const { return try_supported_cpuid().value(); }

  // Any other system ioctl, typed by its kvmx::op descriptor.
  template <class Op, class... Args>
  Result<int> try_ioctl(const Op& op, Args... args) const {
    return kvmx::ioctl(fd(), op, args...);
  }
  template <class Op, class... Args>
  int ioctl(const Op& op, Args... args) const {
    return try_ioctl(op, args...).value();
  }

 private:
  System(std::shared_ptr<const Fd> device, std::string path)
      : device_(std::move(device)), path_(std::move(path)) {}

  std::shared_ptr<const Fd> device_;
  std::string path_;
};

}  // namespace kvmx
