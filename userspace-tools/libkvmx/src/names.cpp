#include "kvmx/names.hpp"

#include "kvmx/linux_kvm.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace kvmx {
namespace {

// Each list names the macros of <linux/kvm.h> or <errno.h>; NAMED() turns each into
// {value, "NAME"}. The values come from the system headers, never typed here.
#define NAMED(name) NamedValue{(name), #name},

// Exit reasons of the linux-libc-dev headers we build against (6.1). Newer reasons print as
// "unknown exit reason (N)" until the headers are updated.
#define KVMX_EXIT_REASONS(X)                                                                   \
  X(KVM_EXIT_UNKNOWN) X(KVM_EXIT_EXCEPTION) X(KVM_EXIT_IO) X(KVM_EXIT_HYPERCALL)                 \
  X(KVM_EXIT_DEBUG) X(KVM_EXIT_HLT) X(KVM_EXIT_MMIO) X(KVM_EXIT_IRQ_WINDOW_OPEN)                 \
  X(KVM_EXIT_SHUTDOWN) X(KVM_EXIT_FAIL_ENTRY) X(KVM_EXIT_INTR) X(KVM_EXIT_SET_TPR)               \
  X(KVM_EXIT_TPR_ACCESS) X(KVM_EXIT_S390_SIEIC) X(KVM_EXIT_S390_RESET) X(KVM_EXIT_DCR)           \
  X(KVM_EXIT_NMI) X(KVM_EXIT_INTERNAL_ERROR) X(KVM_EXIT_OSI) X(KVM_EXIT_PAPR_HCALL)              \
  X(KVM_EXIT_S390_UCONTROL) X(KVM_EXIT_WATCHDOG) X(KVM_EXIT_S390_TSCH) X(KVM_EXIT_EPR)           \
  X(KVM_EXIT_SYSTEM_EVENT) X(KVM_EXIT_S390_STSI) X(KVM_EXIT_IOAPIC_EOI) X(KVM_EXIT_HYPERV)       \
  X(KVM_EXIT_ARM_NISV) X(KVM_EXIT_X86_RDMSR) X(KVM_EXIT_X86_WRMSR) X(KVM_EXIT_DIRTY_RING_FULL)   \
  X(KVM_EXIT_AP_RESET_HOLD) X(KVM_EXIT_X86_BUS_LOCK) X(KVM_EXIT_XEN) X(KVM_EXIT_RISCV_SBI)       \
  X(KVM_EXIT_RISCV_CSR) X(KVM_EXIT_NOTIFY)

// Aliases (EWOULDBLOCK, EDEADLOCK, ENOTSUP) are left out so each value has one name.
#define KVMX_ERRNOS(X)                                                                         \
  X(EPERM) X(ENOENT) X(ESRCH) X(EINTR) X(EIO) X(ENXIO) X(E2BIG) X(ENOEXEC) X(EBADF) X(ECHILD)    \
  X(EAGAIN) X(ENOMEM) X(EACCES) X(EFAULT) X(ENOTBLK) X(EBUSY) X(EEXIST) X(EXDEV) X(ENODEV)       \
  X(ENOTDIR) X(EISDIR) X(EINVAL) X(ENFILE) X(EMFILE) X(ENOTTY) X(ETXTBSY) X(EFBIG) X(ENOSPC)    \
  X(ESPIPE) X(EROFS) X(EMLINK) X(EPIPE) X(EDOM) X(ERANGE) X(EDEADLK) X(ENAMETOOLONG) X(ENOLCK)  \
  X(ENOSYS) X(ENOTEMPTY) X(ELOOP) X(ENOMSG) X(EIDRM) X(ENODATA) X(ETIME) X(EPROTO)              \
  X(EBADMSG) X(EOVERFLOW) X(EBADFD) X(EILSEQ) X(EOPNOTSUPP) X(EADDRINUSE) X(ENOBUFS)            \
  X(ETIMEDOUT) X(EALREADY) X(EINPROGRESS) X(ECANCELED) X(EOWNERDEAD) X(ENOTRECOVERABLE)         \
  X(ERFKILL) X(EHWPOISON)

// The capabilities kvmx implements or plans to, in the order the demo prints them.
#define KVMX_CAPS(X)                                                                           \
  X(KVM_CAP_USER_MEMORY) X(KVM_CAP_SET_TSS_ADDR) X(KVM_CAP_EXT_CPUID) X(KVM_CAP_NR_VCPUS)       \
  X(KVM_CAP_MAX_VCPUS) X(KVM_CAP_MAX_VCPU_ID) X(KVM_CAP_NR_MEMSLOTS) X(KVM_CAP_READONLY_MEM)    \
  X(KVM_CAP_SYNC_MMU) X(KVM_CAP_IMMEDIATE_EXIT) X(KVM_CAP_SYNC_REGS) X(KVM_CAP_VCPU_EVENTS)     \
  X(KVM_CAP_XSAVE) X(KVM_CAP_XCRS) X(KVM_CAP_DEBUGREGS) X(KVM_CAP_SET_GUEST_DEBUG)              \
  X(KVM_CAP_SET_IDENTITY_MAP_ADDR) X(KVM_CAP_ADJUST_CLOCK) X(KVM_CAP_GET_TSC_KHZ)               \
  X(KVM_CAP_TSC_CONTROL) X(KVM_CAP_MCE) X(KVM_CAP_X86_ROBUST_SINGLESTEP) X(KVM_CAP_IRQCHIP)     \
  X(KVM_CAP_INTERNAL_ERROR_DATA) X(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) X(KVM_CAP_DIRTY_LOG_RING) \
  X(KVM_CAP_EXIT_ON_EMULATION_FAILURE) X(KVM_CAP_X86_USER_SPACE_MSR) X(KVM_CAP_BINARY_STATS_FD) \
  X(KVMX_CAP_KVMX) X(KVMX_CAP_MMU_MODE) X(KVMX_CAP_REAL_MODE)

constexpr NamedValue kExitReasons[] = {KVMX_EXIT_REASONS(NAMED)};
constexpr NamedValue kErrnos[] = {KVMX_ERRNOS(NAMED)};
constexpr NamedValue kCaps[] = {KVMX_CAPS(NAMED)};

std::string_view find_name(std::span<const NamedValue> table, long value) {
  const auto it =
      std::find_if(table.begin(), table.end(), [&](const NamedValue& n) { return n.value == value; });
  return it == table.end() ? std::string_view{} : it->name;
}

constexpr std::string_view kExitPrefix = "KVM_EXIT_";

}  // namespace

std::span<const NamedValue> exit_reason_table() { return kExitReasons; }
std::span<const NamedValue> errno_table() { return kErrnos; }
std::span<const NamedValue> cap_table() { return kCaps; }

std::string_view exit_reason_name(std::uint32_t reason) {
  std::string_view name = find_name(kExitReasons, reason);
  if (name.starts_with(kExitPrefix)) name.remove_prefix(kExitPrefix.size());
  return name;
}

std::string describe_exit_reason(std::uint32_t reason) {
  const std::string_view name = exit_reason_name(reason);
  const std::string number = std::to_string(reason);
  if (name.empty()) return "unknown exit reason (" + number + ")";
  return std::string(name) + " (" + number + ")";
}

std::string_view errno_name(int err) { return find_name(kErrnos, err); }

std::string describe_errno(int err) {
  const std::string_view name = errno_name(err);
  const std::string text = strerrordesc_np(err) ? strerrordesc_np(err) : "no description";
  if (name.empty()) return "errno " + std::to_string(err) + " (" + text + ")";
  return std::string(name) + " (" + text + ")";
}

std::string_view cap_name(long cap) { return find_name(kCaps, cap); }

}  // namespace kvmx
