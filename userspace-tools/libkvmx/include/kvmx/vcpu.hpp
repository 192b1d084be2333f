// A vCPU: its fd and its kvm_run mapping.
#pragma once

#include "kvmx/linux_kvm.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "kvmx/error.hpp"
#include "kvmx/exit.hpp"
#include "kvmx/fd.hpp"
#include "kvmx/ioctl.hpp"
#include "kvmx/stats.hpp"

namespace kvmx {

// CPUID leaves as KVM_GET_SUPPORTED_CPUID returns them and KVM_SET_CPUID2 takes them.
struct Cpuid {
  std::vector<kvm_cpuid_entry2> entries;

  kvm_cpuid_entry2* find(std::uint32_t function, std::uint32_t index = 0);
  const kvm_cpuid_entry2* find(std::uint32_t function, std::uint32_t index = 0) const;
};

// Lets another thread stop a vCPU: set_immediate_exit(true) makes the next (or a signalled,
// current) KVM_RUN return EINTR. Copyable; valid while the Vcpu lives.
class ImmediateExit {
 public:
  explicit ImmediateExit(kvm_run* run) : run_(run) {}
  void set(bool on) const {
    std::atomic_ref<std::uint8_t>(run_->immediate_exit).store(on ? 1 : 0, std::memory_order_release);
  }

 private:
  kvm_run* run_;
};

class Vcpu {
 public:
  // Take ownership of a vCPU fd and map its kvm_run (`mmap_size` from KVM_GET_VCPU_MMAP_SIZE).
  static Result<Vcpu> try_adopt(Fd fd, unsigned id, std::size_t mmap_size);

  Vcpu(Vcpu&& other) noexcept;
  Vcpu& operator=(Vcpu&& other) noexcept;
  Vcpu(const Vcpu&) = delete;
  Vcpu& operator=(const Vcpu&) = delete;
  ~Vcpu();

  int fd() const noexcept { return fd_.get(); }
  unsigned id() const noexcept { return id_; }

  // KVM_RUN and decode the exit. The Exit refers into kvm_run and is valid until the next run.
  // try_run() returns KVM_RUN's error as is (EINTR included). run() turns EINTR (a signal, or
  // immediate_exit) into exit::Intr without reading kvm_run, whose exit_reason KVM sets to
  // KVM_EXIT_INTR for a signal but leaves stale for immediate_exit; any other error throws.
  Result<Exit> try_run();
  Exit run();

  // The flag is an atomic store into the shared page: never keep a plain reference to
  // kvm_run::immediate_exit across KVM_RUN.
  void set_immediate_exit(bool on) { immediate_exit_handle().set(on); }
  ImmediateExit immediate_exit_handle() const { return ImmediateExit(run_); }

  // Raw kvm_run access (request_interrupt_window, cr8, sync regs, ...).
  kvm_run& run_struct() const noexcept { return *run_; }
  std::span<std::byte> run_mapping() const noexcept {
    return {reinterpret_cast<std::byte*>(run_), run_size_};
  }

  Result<kvm_regs> try_get_regs() const;
  Result<void> try_set_regs(const kvm_regs& regs);
  Result<kvm_sregs> try_get_sregs() const;
  Result<void> try_set_sregs(const kvm_sregs& sregs);
  Result<kvm_fpu> try_get_fpu() const;
  Result<void> try_set_fpu(const kvm_fpu& fpu);
  Result<kvm_vcpu_events> try_get_vcpu_events() const;
  Result<void> try_set_vcpu_events(const kvm_vcpu_events& events);
  Result<kvm_mp_state> try_get_mp_state() const;
  Result<void> try_set_mp_state(const kvm_mp_state& state);
  Result<std::uint64_t> try_get_msr(std::uint32_t index) const;
  Result<void> try_set_msr(std::uint32_t index, std::uint64_t value);
  Result<void> try_set_cpuid(const Cpuid& cpuid);
  Result<void> try_interrupt(std::uint32_t vector);

  kvm_regs get_regs() const { return try_get_regs().value(); }
  void set_regs(const kvm_regs& regs) { try_set_regs(regs).value(); }
  kvm_sregs get_sregs() const { return try_get_sregs().value(); }
  void set_sregs(const kvm_sregs& sregs) { try_set_sregs(sregs).value(); }
  kvm_fpu get_fpu() const { return try_get_fpu().value(); }
  void set_fpu(const kvm_fpu& fpu) { try_set_fpu(fpu).value(); }
  kvm_vcpu_events get_vcpu_events() const { return try_get_vcpu_events().value(); }
  void set_vcpu_events(const kvm_vcpu_events& e) { try_set_vcpu_events(e).value(); }
  kvm_mp_state get_mp_state() const { return try_get_mp_state().value(); }
  void set_mp_state(const kvm_mp_state& s) { try_set_mp_state(s).value(); }
  std::uint64_t get_msr(std::uint32_t index) const { return try_get_msr(index).value(); }
  void set_msr(std::uint32_t index, std::uint64_t value) { try_set_msr(index, value).value(); }
  void set_cpuid(const Cpuid& cpuid) { try_set_cpuid(cpuid).value(); }
  void interrupt(std::uint32_t vector) { try_interrupt(vector).value(); }

  // KVM_GET_STATS_FD: the vCPU's binary statistics (KVM_CAP_BINARY_STATS_FD).
  Result<Stats> try_stats() const;
  Stats stats() const { return try_stats().value(); }

  // Any other vCPU ioctl, typed by its kvmx::op descriptor.
  template <class Op, class... Args>
  Result<int> try_ioctl(const Op& op, Args... args) const {
    return kvmx::ioctl(fd(), op, args...);
  }
  template <class Op, class... Args>
  int ioctl(const Op& op, Args... args) const {
    return try_ioctl(op, args...).value();
  }

 private:
  Vcpu(Fd fd, unsigned id, kvm_run* run, std::size_t run_size)
      : fd_(std::move(fd)), id_(id), run_(run), run_size_(run_size) {}
  void unmap() noexcept;

  Fd fd_;
  unsigned id_ = 0;
  kvm_run* run_ = nullptr;
  std::size_t run_size_ = 0;
};

}  // namespace kvmx
