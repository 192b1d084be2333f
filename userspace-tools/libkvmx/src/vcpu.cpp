#include "kvmx/vcpu.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

namespace kvmx {
namespace {

template <class T, class Op>
Result<T> get_struct(int fd, const Op& op) {
  T value{};
  auto r = kvmx::ioctl(fd, op, &value);
  if (!r) return r.error();
  return value;
}

template <class T, class Op>
Result<void> set_struct(int fd, const Op& op, const T& value) {
  auto r = kvmx::ioctl(fd, op, &value);
  if (!r) return r.error();
  return {};
}

// kvm_msrs followed by one entry, laid out as the ioctl expects.
class OneMsr {
 public:
  explicit OneMsr(std::uint32_t index, std::uint64_t data = 0) {
    header()->nmsrs = 1;
    entry().index = index;
    entry().data = data;
  }
  kvm_msrs* header() { return reinterpret_cast<kvm_msrs*>(storage_); }
  kvm_msr_entry& entry() { return header()->entries[0]; }

 private:
  alignas(kvm_msrs) std::byte storage_[sizeof(kvm_msrs) + sizeof(kvm_msr_entry)]{};
};

std::string msr_call(const char* ioctl_name, std::uint32_t index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%s(0x%x)", ioctl_name, index);
  return buf;
}

}  // namespace

kvm_cpuid_entry2* Cpuid::find(std::uint32_t function, std::uint32_t index) {
  const auto it = std::find_if(entries.begin(), entries.end(), [&](const kvm_cpuid_entry2& e) {
    const bool indexed = e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
    return e.function == function && (!indexed || e.index == index);
  });
  return it == entries.end() ? nullptr : &*it;
}

const kvm_cpuid_entry2* Cpuid::find(std::uint32_t function, std::uint32_t index) const {
  return const_cast<Cpuid*>(this)->find(function, index);
}

Result<Vcpu> Vcpu::try_adopt(Fd fd, unsigned id, std::size_t mmap_size) {
  if (mmap_size < sizeof(kvm_run)) {
    return Error{EINVAL, "mmap of kvm_run",
                 "KVM_GET_VCPU_MMAP_SIZE said " + std::to_string(mmap_size) + ", less than sizeof(struct kvm_run)"};
  }
  void* p = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) return errno_error("mmap of kvm_run");
  return Vcpu(std::move(fd), id, static_cast<kvm_run*>(p), mmap_size);
}

Vcpu::Vcpu(Vcpu&& other) noexcept
    : fd_(std::move(other.fd_)),
      id_(other.id_),
      run_(std::exchange(other.run_, nullptr)),
      run_size_(std::exchange(other.run_size_, 0)) {}

Vcpu& Vcpu::operator=(Vcpu&& other) noexcept {
  if (this != &other) {
    unmap();
    fd_ = std::move(other.fd_);
    id_ = other.id_;
    run_ = std::exchange(other.run_, nullptr);
    run_size_ = std::exchange(other.run_size_, 0);
  }
  return *this;
}

Vcpu::~Vcpu() { unmap(); }

void Vcpu::unmap() noexcept {
  if (run_) ::munmap(run_, run_size_);
  run_ = nullptr;
  run_size_ = 0;
}

Result<Exit> Vcpu::try_run() {
  auto r = kvmx::ioctl(fd(), op::run);
  if (!r) return r.error();
  return decode_exit(*run_, run_size_);
}

Exit Vcpu::run() {
  auto r = try_run();
  if (!r && r.err() == EINTR) return exit::Intr{};
  return std::move(r).value();
}

Result<Stats> Vcpu::try_stats() const {
  auto r = kvmx::ioctl(fd(), op::get_stats_fd);
  if (!r) return r.error();
  return Stats::try_adopt(Fd(*r));
}

Result<kvm_regs> Vcpu::try_get_regs() const { return get_struct<kvm_regs>(fd(), op::get_regs); }
Result<void> Vcpu::try_set_regs(const kvm_regs& v) { return set_struct(fd(), op::set_regs, v); }
Result<kvm_sregs> Vcpu::try_get_sregs() const { return get_struct<kvm_sregs>(fd(), op::get_sregs); }
Result<void> Vcpu::try_set_sregs(const kvm_sregs& v) { return set_struct(fd(), op::set_sregs, v); }
Result<kvm_fpu> Vcpu::try_get_fpu() const { return get_struct<kvm_fpu>(fd(), op::get_fpu); }
Result<void> Vcpu::try_set_fpu(const kvm_fpu& v) { return set_struct(fd(), op::set_fpu, v); }
Result<kvm_vcpu_events> Vcpu::try_get_vcpu_events() const {
  return get_struct<kvm_vcpu_events>(fd(), op::get_vcpu_events);
}
Result<void> Vcpu::try_set_vcpu_events(const kvm_vcpu_events& v) { return set_struct(fd(), op::set_vcpu_events, v); }
Result<kvm_mp_state> Vcpu::try_get_mp_state() const { return get_struct<kvm_mp_state>(fd(), op::get_mp_state); }
Result<void> Vcpu::try_set_mp_state(const kvm_mp_state& v) { return set_struct(fd(), op::set_mp_state, v); }

Result<std::uint64_t> Vcpu::try_get_msr(std::uint32_t index) const {
  OneMsr msrs(index);
  auto r = kvmx::ioctl(fd(), op::get_msrs, msrs.header());
  if (!r) return Error{r.err(), msr_call("KVM_GET_MSRS", index), {}};
  // KVM returns how many MSRs it processed and stops at the first it refuses.
  if (*r != 1) return Error{EINVAL, msr_call("KVM_GET_MSRS", index), "the MSR was refused (0 of 1 processed)"};
  return msrs.entry().data;
}

Result<void> Vcpu::try_set_msr(std::uint32_t index, std::uint64_t value) {
  OneMsr msrs(index, value);
  auto r = kvmx::ioctl(fd(), op::set_msrs, msrs.header());
  if (!r) return Error{r.err(), msr_call("KVM_SET_MSRS", index), {}};
  if (*r != 1) return Error{EINVAL, msr_call("KVM_SET_MSRS", index), "the MSR was refused (0 of 1 processed)"};
  return {};
}

Result<void> Vcpu::try_set_cpuid(const Cpuid& cpuid) {
  const std::size_t bytes = sizeof(kvm_cpuid2) + cpuid.entries.size() * sizeof(kvm_cpuid_entry2);
  std::vector<std::uint64_t> buffer((bytes + 7) / 8);
  auto* header = reinterpret_cast<kvm_cpuid2*>(buffer.data());
  header->nent = static_cast<std::uint32_t>(cpuid.entries.size());
  std::copy(cpuid.entries.begin(), cpuid.entries.end(), header->entries);
  auto r = kvmx::ioctl(fd(), op::set_cpuid2, header);
  if (!r) return r.error();
  return {};
}

Result<void> Vcpu::try_interrupt(std::uint32_t vector) {
  const kvm_interrupt irq{.irq = vector};
  auto r = kvmx::ioctl(fd(), op::interrupt, &irq);
  if (!r) return r.error();
  return {};
}

}  // namespace kvmx
