#include "kvmx/exit.hpp"

#include <algorithm>
#include <cstdio>
#include <type_traits>

#include "kvmx/names.hpp"

namespace kvmx {
namespace exit {

std::uint64_t load_le(std::span<const std::byte> bytes) {
  std::uint64_t v = 0;
  const std::size_t n = std::min<std::size_t>(bytes.size(), 8);
  for (std::size_t i = 0; i < n; ++i) v |= std::uint64_t(bytes[i]) << (8 * i);
  return v;
}

void store_le(std::span<std::byte> bytes, std::uint64_t value) {
  const std::size_t n = std::min<std::size_t>(bytes.size(), 8);
  for (std::size_t i = 0; i < n; ++i) bytes[i] = std::byte(value >> (8 * i));
}

}  // namespace exit

namespace {

Exit decode_io(kvm_run& run, std::size_t mapping_size) {
  const auto& io = run.io;
  if (io.size != 1 && io.size != 2 && io.size != 4) return exit::Malformed{run.exit_reason, "io.size is not 1, 2 or 4"};
  if (io.direction != KVM_EXIT_IO_IN && io.direction != KVM_EXIT_IO_OUT) {
    return exit::Malformed{run.exit_reason, "io.direction is neither in nor out"};
  }
  // size <= 4 and count < 2^32, so the product cannot overflow 64 bits.
  const std::uint64_t len = std::uint64_t(io.size) * io.count;
  if (io.count == 0 || io.data_offset < sizeof(kvm_run) || io.data_offset > mapping_size ||
      len > mapping_size - io.data_offset) {
    return exit::Malformed{run.exit_reason, "io data is not inside the vCPU mapping after struct kvm_run"};
  }
  auto* data = reinterpret_cast<std::byte*>(&run) + io.data_offset;
  if (io.direction == KVM_EXIT_IO_IN) return exit::IoIn{io.port, io.size, io.count, {data, len}};
  return exit::IoOut{io.port, io.size, io.count, {data, len}};
}

Exit decode_mmio(kvm_run& run) {
  const auto& m = run.mmio;
  if (m.len == 0 || m.len > sizeof(m.data)) return exit::Malformed{run.exit_reason, "mmio.len is not 1..8"};
  return exit::Mmio{m.phys_addr, m.is_write != 0, {reinterpret_cast<std::byte*>(run.mmio.data), m.len}};
}

template <class Array>
std::span<const __u64> words(const Array& array, std::uint32_t n) {
  return std::span<const __u64>(array).first(std::min<std::size_t>(n, std::size(array)));
}

}  // namespace

Exit decode_exit(kvm_run& run, std::size_t mapping_size) {
  switch (run.exit_reason) {
    case KVM_EXIT_IO:
      return decode_io(run, mapping_size);
    case KVM_EXIT_MMIO:
      return decode_mmio(run);
    case KVM_EXIT_HLT:
      return exit::Hlt{};
    case KVM_EXIT_SHUTDOWN:
      return exit::Shutdown{};
    case KVM_EXIT_FAIL_ENTRY:
      return exit::FailEntry{run.fail_entry.hardware_entry_failure_reason, run.fail_entry.cpu};
    case KVM_EXIT_INTERNAL_ERROR:
      return exit::InternalError{run.internal.suberror, words(run.internal.data, run.internal.ndata)};
    case KVM_EXIT_INTR:
      return exit::Intr{};
    case KVM_EXIT_IRQ_WINDOW_OPEN:
      return exit::IrqWindowOpen{};
    case KVM_EXIT_DEBUG:
      return exit::Debug{run.debug.arch};
    case KVM_EXIT_SYSTEM_EVENT:
      return exit::SystemEvent{run.system_event.type,
                               words(run.system_event.data, run.system_event.ndata)};
    case KVM_EXIT_EXCEPTION:
      return exit::Exception{run.ex.exception, run.ex.error_code};
    case KVM_EXIT_HYPERCALL:
      return exit::Hypercall{run.hypercall.nr, run.hypercall.args, run.hypercall.longmode != 0};
    case KVM_EXIT_UNKNOWN:
      return exit::Unknown{run.hw.hardware_exit_reason};
    default:
      return exit::Unhandled{run.exit_reason};
  }
}

std::uint32_t exit_reason(const Exit& e) {
  return std::visit([](const auto& x) -> std::uint32_t { return x.reason; }, e);
}

std::string describe(const Exit& e) {
  char buf[160];
  const std::string reason = describe_exit_reason(exit_reason(e));
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, exit::IoIn>) {
          std::snprintf(buf, sizeof buf, " in port 0x%x size %u count %u", x.port, x.size, x.count);
        } else if constexpr (std::is_same_v<T, exit::IoOut>) {
          std::snprintf(buf, sizeof buf, " out port 0x%x size %u count %u value 0x%llx", x.port, x.size,
                        x.count, static_cast<unsigned long long>(x.value()));
        } else if constexpr (std::is_same_v<T, exit::Mmio>) {
          if (x.is_write) {
            std::snprintf(buf, sizeof buf, " write 0x%llx len %zu value 0x%llx",
                          static_cast<unsigned long long>(x.addr), x.data.size(),
                          static_cast<unsigned long long>(x.value()));
          } else {
            std::snprintf(buf, sizeof buf, " read 0x%llx len %zu", static_cast<unsigned long long>(x.addr),
                          x.data.size());
          }
        } else if constexpr (std::is_same_v<T, exit::FailEntry>) {
          std::snprintf(buf, sizeof buf, " hardware reason 0x%llx cpu %u",
                        static_cast<unsigned long long>(x.hardware_reason), x.cpu);
        } else if constexpr (std::is_same_v<T, exit::InternalError>) {
          int n = std::snprintf(buf, sizeof buf, " suberror %u", x.suberror);
          for (std::size_t i = 0; i < x.data.size() && n > 0 && std::size_t(n) < sizeof buf; ++i) {
            n += std::snprintf(buf + n, sizeof buf - n, " 0x%llx", static_cast<unsigned long long>(x.data[i]));
          }
        } else if constexpr (std::is_same_v<T, exit::SystemEvent>) {
          std::snprintf(buf, sizeof buf, " type %u", x.type);
        } else if constexpr (std::is_same_v<T, exit::Exception>) {
          std::snprintf(buf, sizeof buf, " vector %u error code 0x%x", x.vector, x.error_code);
        } else if constexpr (std::is_same_v<T, exit::Hypercall>) {
          std::snprintf(buf, sizeof buf, " nr 0x%llx", static_cast<unsigned long long>(x.nr));
        } else if constexpr (std::is_same_v<T, exit::Unknown>) {
          std::snprintf(buf, sizeof buf, " hardware reason 0x%llx", static_cast<unsigned long long>(x.hardware_reason));
        } else if constexpr (std::is_same_v<T, exit::Malformed>) {
          std::snprintf(buf, sizeof buf, " malformed: %s", x.why);
        } else {
          buf[0] = '\0';
        }
        return reason + buf;
      },
      e);
}

}  // namespace kvmx
