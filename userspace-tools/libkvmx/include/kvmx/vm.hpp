// A VM: its fd and the guest memory it owns.
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "kvmx/error.hpp"
#include "kvmx/fd.hpp"
#include "kvmx/ioctl.hpp"
#include "kvmx/memory.hpp"
#include "kvmx/stats.hpp"
#include "kvmx/vcpu.hpp"

namespace kvmx {

class Vm {
 public:
  // `device` is the system fd the VM came from; vCPU creation asks it for the kvm_run size
  // (KVM_GET_VCPU_MMAP_SIZE is a system ioctl), so the VM keeps it open. May be null for a VM
  // fd obtained some other way; creating a vCPU then fails with EBADF.
  Vm(Fd fd, std::shared_ptr<const Fd> device) : device_(std::move(device)), fd_(std::move(fd)) {}
  Vm(Vm&&) noexcept = default;
  Vm& operator=(Vm&&) noexcept = default;
  Vm(const Vm&) = delete;
  Vm& operator=(const Vm&) = delete;

  int fd() const noexcept { return fd_.get(); }
  // Close the VM fd now (the VM lives on in the kernel while vCPU fds hold it).
  Result<void> try_close() { return fd_.try_close(); }
  void close() { try_close().value(); }

  Result<int> try_check_extension(long cap) const;
  int check_extension(long cap) const { return try_check_extension(cap).value(); }

  // Whether this VM's vCPUs run with CR0.PE clear (real mode, a vCPU's reset state). In-tree KVM
  // always does (KVMX_CAP_KVMX is 0 there); kvmx says per VM with KVMX_CAP_REAL_MODE on the VM fd
  // (uapi/linux/kvmx.h: VMX without EPT has no unrestricted guest).
  Result<bool> try_runs_real_mode() const;
  bool runs_real_mode() const { return try_runs_real_mode().value(); }

  Result<Vcpu> try_create_vcpu(unsigned id);
  Vcpu create_vcpu(unsigned id) { return try_create_vcpu(id).value(); }

  Result<void> try_set_user_memory_region(const kvm_userspace_memory_region& region);
  void set_user_memory_region(const kvm_userspace_memory_region& r) { try_set_user_memory_region(r).value(); }

  // Allocate anonymous memory and register it as memslot `slot` at `gpa`. The VM owns it.
  Result<MemoryRegion*> try_add_memory(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size,
                                       MemoryOptions options = {});
  MemoryRegion& add_memory(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size, MemoryOptions options = {}) {
    return *try_add_memory(slot, gpa, size, options).value();
  }
  // Delete the memslot (size 0) and free its memory.
  Result<void> try_remove_memory(std::uint32_t slot);
  void remove_memory(std::uint32_t slot) { try_remove_memory(slot).value(); }

  const std::map<std::uint32_t, MemoryRegion>& regions() const noexcept { return regions_; }
  const MemoryRegion* region_at(std::uint64_t gpa) const;
  // Host address of [gpa, gpa + len) if one region holds all of it, else nullptr.
  std::byte* host_address(std::uint64_t gpa, std::uint64_t len = 1) const;

  // KVM_GET_STATS_FD: the VM's binary statistics (KVM_CAP_BINARY_STATS_FD).
  Result<Stats> try_stats() const;
  Stats stats() const { return try_stats().value(); }

  Result<void> try_enable_cap(std::uint32_t cap, std::uint64_t arg0 = 0);
  void enable_cap(std::uint32_t cap, std::uint64_t arg0 = 0) { try_enable_cap(cap, arg0).value(); }
  // The whole request, flags and args[1..3] included (for tests of their validation).
  Result<void> try_enable_cap(const kvm_enable_cap& request);

  // Any other VM ioctl, typed by its kvmx::op descriptor.
  template <class Op, class... Args>
  Result<int> try_ioctl(const Op& op, Args... args) const {
    return kvmx::ioctl(fd(), op, args...);
  }
  template <class Op, class... Args>
  int ioctl(const Op& op, Args... args) const {
    return try_ioctl(op, args...).value();
  }

 private:
  std::shared_ptr<const Fd> device_;
  // Declared before fd_ so the VM fd is closed before the memory behind its slots is unmapped.
  std::map<std::uint32_t, MemoryRegion> regions_;
  Fd fd_;
  int vcpu_mmap_size_ = 0;
};

}  // namespace kvmx
