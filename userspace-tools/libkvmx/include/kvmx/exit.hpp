// Typed vCPU exits decoded from kvm_run.
//
// An Exit refers into the vCPU's kvm_run mapping (the I/O data page, the MMIO data bytes, the
// internal-error words) and is valid until the next run() of that vCPU. Writing through the
// spans of IoIn and Mmio (reads) is how userspace completes the guest's access before re-entry.
#pragma once

#include "kvmx/linux_kvm.h"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <variant>

namespace kvmx {
namespace exit {

// Little-endian value of up to 8 bytes, as the guest's access width gives them.
std::uint64_t load_le(std::span<const std::byte> bytes);
void store_le(std::span<std::byte> bytes, std::uint64_t value);

struct IoIn {  // KVM_EXIT_IO, direction in: fill `data` (size * count bytes) before re-entry
  static constexpr std::uint32_t reason = KVM_EXIT_IO;
  std::uint16_t port;
  std::uint8_t size;
  std::uint32_t count;
  std::span<std::byte> data;
  void set_value(std::uint64_t v) const { store_le(data.first(size), v); }
};

struct IoOut {  // KVM_EXIT_IO, direction out
  static constexpr std::uint32_t reason = KVM_EXIT_IO;
  std::uint16_t port;
  std::uint8_t size;
  std::uint32_t count;
  std::span<const std::byte> data;
  std::uint64_t value() const { return load_le(data.first(size)); }  // the first element
};

struct Mmio {  // KVM_EXIT_MMIO: for a read, fill `data` before re-entry
  static constexpr std::uint32_t reason = KVM_EXIT_MMIO;
  std::uint64_t addr;
  bool is_write;
  std::span<std::byte> data;  // len bytes
  std::uint64_t value() const { return load_le(data); }
  void set_value(std::uint64_t v) const { store_le(data, v); }
};

struct Hlt {
  static constexpr std::uint32_t reason = KVM_EXIT_HLT;
};
struct Shutdown {  // triple fault
  static constexpr std::uint32_t reason = KVM_EXIT_SHUTDOWN;
};
struct FailEntry {  // VMRUN/VMLAUNCH refused the guest state
  static constexpr std::uint32_t reason = KVM_EXIT_FAIL_ENTRY;
  std::uint64_t hardware_reason;
  std::uint32_t cpu;
};
struct InternalError {
  static constexpr std::uint32_t reason = KVM_EXIT_INTERNAL_ERROR;
  std::uint32_t suberror;
  std::span<const __u64> data;  // ndata words, capped at the array size
};
struct Intr {  // a signal or immediate_exit interrupted KVM_RUN
  static constexpr std::uint32_t reason = KVM_EXIT_INTR;
};
struct IrqWindowOpen {
  static constexpr std::uint32_t reason = KVM_EXIT_IRQ_WINDOW_OPEN;
};
struct Debug {
  static constexpr std::uint32_t reason = KVM_EXIT_DEBUG;
  kvm_debug_exit_arch arch;
};
struct SystemEvent {
  static constexpr std::uint32_t reason = KVM_EXIT_SYSTEM_EVENT;
  std::uint32_t type;
  std::span<const __u64> data;
};
struct Exception {
  static constexpr std::uint32_t reason = KVM_EXIT_EXCEPTION;
  std::uint32_t vector;
  std::uint32_t error_code;
};
struct Hypercall {
  static constexpr std::uint32_t reason = KVM_EXIT_HYPERCALL;
  std::uint64_t nr;
  std::span<const __u64> args;
  bool longmode;
};
struct Unknown {  // KVM_EXIT_UNKNOWN: the vendor exit code KVM could not handle
  static constexpr std::uint32_t reason = KVM_EXIT_UNKNOWN;
  std::uint64_t hardware_reason;
};
struct Unhandled {  // a valid exit reason that libkvmx does not decode
  std::uint32_t reason;
};
struct Malformed {  // kvm_run contradicts itself, e.g. I/O data outside the mapping
  std::uint32_t reason;
  const char* why;
};

}  // namespace exit

using Exit = std::variant<exit::IoIn, exit::IoOut, exit::Mmio, exit::Hlt, exit::Shutdown,
                          exit::FailEntry, exit::InternalError, exit::Intr, exit::IrqWindowOpen,
                          exit::Debug, exit::SystemEvent, exit::Exception, exit::Hypercall,
                          exit::Unknown, exit::Unhandled, exit::Malformed>;

// Decode the exit in a vCPU's kvm_run mapping of `mapping_size` bytes. Never reads or hands out
// memory outside the mapping: a hypervisor under test may fill kvm_run with nonsense.
Exit decode_exit(kvm_run& run, std::size_t mapping_size);

std::uint32_t exit_reason(const Exit& e);
// "HLT (5)", "IO out port 0x3f8 size 1 count 1 value 0x41", "MMIO write 0xd0000000 len 4 ...".
std::string describe(const Exit& e);

}  // namespace kvmx
