#include "kvmx/vm.hpp"

#include <cerrno>

namespace kvmx {

Result<int> Vm::try_check_extension(long cap) const {
  return kvmx::ioctl(fd(), op::check_extension, static_cast<unsigned long>(cap));
}

Result<bool> Vm::try_runs_real_mode() const {
  auto kvmx = try_check_extension(KVMX_CAP_KVMX);
  if (!kvmx) return kvmx.error();
  if (*kvmx <= 0) return true;
  auto real_mode = try_check_extension(KVMX_CAP_REAL_MODE);
  if (!real_mode) return real_mode.error();
  return *real_mode > 0;
}

Result<Vcpu> Vm::try_create_vcpu(unsigned id) {
  auto r = kvmx::ioctl(fd(), op::create_vcpu, id);
  if (!r) return r.error();
  Fd vcpu_fd(*r);
  if (vcpu_mmap_size_ == 0) {
    if (!device_) return Error{EBADF, "KVM_GET_VCPU_MMAP_SIZE", "this Vm has no system fd to ask"};
    auto size = kvmx::ioctl(device_->get(), op::get_vcpu_mmap_size);
    if (!size) return size.error();
    vcpu_mmap_size_ = *size;
  }
  return Vcpu::try_adopt(std::move(vcpu_fd), id, static_cast<std::size_t>(vcpu_mmap_size_));
}

Result<void> Vm::try_set_user_memory_region(const kvm_userspace_memory_region& region) {
  auto r = kvmx::ioctl(fd(), op::set_user_memory_region, &region);
  if (!r) return r.error();
  return {};
}

Result<MemoryRegion*> Vm::try_add_memory(std::uint32_t slot, std::uint64_t gpa, std::uint64_t size,
                                         MemoryOptions options) {
  if (regions_.contains(slot)) {
    return Error{EEXIST, "add_memory(slot " + std::to_string(slot) + ")", "the slot is already in use"};
  }
  auto mapping = Mapping::try_create(size, {.huge_pages = options.huge_pages});
  if (!mapping) return mapping.error();
  std::uint32_t flags = 0;
  if (options.read_only) flags |= KVM_MEM_READONLY;
  if (options.log_dirty) flags |= KVM_MEM_LOG_DIRTY_PAGES;
  const kvm_userspace_memory_region region{
      .slot = slot,
      .flags = flags,
      .guest_phys_addr = gpa,
      .memory_size = size,
      .userspace_addr = reinterpret_cast<std::uint64_t>(mapping->data()),
  };
  auto r = try_set_user_memory_region(region);
  if (!r) return r.error();
  auto [it, inserted] = regions_.try_emplace(slot, slot, gpa, flags, std::move(mapping).value());
  return &it->second;
}

Result<void> Vm::try_remove_memory(std::uint32_t slot) {
  const auto it = regions_.find(slot);
  if (it == regions_.end()) {
    return Error{ENOENT, "remove_memory(slot " + std::to_string(slot) + ")", "no such slot"};
  }
  const kvm_userspace_memory_region region{
      .slot = slot, .flags = 0, .guest_phys_addr = it->second.gpa(), .memory_size = 0, .userspace_addr = 0};
  auto r = try_set_user_memory_region(region);
  if (!r) return r;
  regions_.erase(it);
  return {};
}

const MemoryRegion* Vm::region_at(std::uint64_t gpa) const {
  for (const auto& [slot, region] : regions_) {
    if (region.contains(gpa)) return &region;
  }
  return nullptr;
}

std::byte* Vm::host_address(std::uint64_t gpa, std::uint64_t len) const {
  const MemoryRegion* region = region_at(gpa);
  if (!region || !region->contains(gpa, len)) return nullptr;
  return region->host() + (gpa - region->gpa());
}

Result<Stats> Vm::try_stats() const {
  auto r = kvmx::ioctl(fd(), op::get_stats_fd);
  if (!r) return r.error();
  return Stats::try_adopt(Fd(*r));
}

Result<void> Vm::try_enable_cap(std::uint32_t cap, std::uint64_t arg0) {
  kvm_enable_cap request{};
  request.cap = cap;
  request.args[0] = arg0;
  return try_enable_cap(request);
}

Result<void> Vm::try_enable_cap(const kvm_enable_cap& request) {
  auto r = kvmx::ioctl(fd(), op::enable_cap, &request);
  if (!r) return r.error();
  return {};
}

}  // namespace kvmx
