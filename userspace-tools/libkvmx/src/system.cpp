#include "kvmx/system.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <vector>

namespace kvmx {
namespace {

std::string_view basename_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string System::default_device() {
  const char* env = std::getenv("KVMX_DEVICE");
  return env && *env ? std::string(env) : std::string(kDefaultDevice);
}

std::string System::module_hint(std::string_view path) {
  const std::string_view name = basename_of(path);
  if (name == "kvmx") return "load kvmx: modprobe kvmx-amd (AMD) or modprobe kvmx-intel (Intel)";
  if (name == "kvm") return "load KVM: modprobe kvm_amd (AMD) or modprobe kvm_intel (Intel)";
  return {};
}

Result<System> System::try_open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    const int code = errno;
    Error error{code, "open(" + path + ")", {}};
    if (code == ENOENT || code == ENODEV || code == ENXIO) {
      error.hint = module_hint(path);
    } else if (code == EACCES || code == EPERM) {
      error.hint = "the device needs read/write access (root, or the group owning " + path + ")";
    }
    return error;
  }
  return adopt(Fd(fd), path);
}

System System::adopt(Fd fd, std::string path) {
  return System(std::make_shared<const Fd>(std::move(fd)), std::move(path));
}

Result<int> System::try_api_version() const { return kvmx::ioctl(fd(), op::get_api_version); }

Result<int> System::try_check_extension(long cap) const {
  return kvmx::ioctl(fd(), op::check_extension, static_cast<unsigned long>(cap));
}

Result<int> System::try_vcpu_mmap_size() const { return kvmx::ioctl(fd(), op::get_vcpu_mmap_size); }

Result<Vm> System::try_create_vm(unsigned long type) const {
  auto r = kvmx::ioctl(fd(), op::create_vm, type);
  if (!r) return r.error();
  return Vm(Fd(*r), device_);
}

Result<Cpuid> System::try_supported_cpuid() const {
  // The kernel says E2BIG until the buffer holds every entry; start generous and grow.
  for (std::uint32_t n = 128; n <= 4096; n *= 2) {
    const std::size_t bytes = sizeof(kvm_cpuid2) + n * sizeof(kvm_cpuid_entry2);
    std::vector<std::uint64_t> buffer((bytes + 7) / 8);
    auto* cpuid = reinterpret_cast<kvm_cpuid2*>(buffer.data());
    cpuid->nent = n;
    auto r = kvmx::ioctl(fd(), op::get_supported_cpuid, cpuid);
    if (!r && r.err() == E2BIG) continue;
    if (!r) return r.error();
    return Cpuid{{cpuid->entries, cpuid->entries + cpuid->nent}};
  }
  return Error{E2BIG, "KVM_GET_SUPPORTED_CPUID", "more than 4096 CPUID entries"};
}

}  // namespace kvmx
